//! A transparency-log witness (c2sp.org/tlog-witness) that a county, a bank or a court can
//! run with `anxin witness`: it keeps the latest checkpoint it cosigned for each log it
//! knows (by origin), cosigns (c2sp.org/tlog-cosignature) only a checkpoint that the log
//! signed and that is consistent with that one, and refuses anything else with the
//! standard status. It is what stops the operator showing one history to the county and
//! another to a bank: a witness that cosigned one never cosigns the other.
//!
//! `add_checkpoint` is the whole protocol, without HTTP, so that it is tested directly;
//! `serve` puts it on `POST /add-checkpoint`. The state (origin -> size and root) is one
//! JSON file, replaced atomically (written, fsynced, renamed, directory fsynced) before a
//! cosignature is returned, under one lock that also covers the check, so that two
//! requests can never roll it back (the race the specification warns of). A request
//! that the log signed but that is inconsistent with what was cosigned is evidence of a
//! fork: it is appended to `evidence.log` beside the state, and refused, then and after.

pub mod submit;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::chain::cosignature::Cosigner;
use crate::chain::merkle::{self, empty_root};
use crate::chain::note::{self, Note, SIG_ED25519};
use crate::chain::record::Hash;

/// The most consistency proof lines a request may carry (the specification's bound).
pub const MAX_PROOF_LINES: usize = 63;
/// The largest request body read.
pub const MAX_REQUEST_BYTES: usize = 128 * 1024;
/// `evidence.log` stops growing past this.
pub const MAX_EVIDENCE_BYTES: usize = 16 << 20;

/// What a witness answers: an HTTP status, a content type and a body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

fn answer(status: u16, body: impl Into<String>) -> Answer {
    Answer { status, content_type: "text/plain; charset=utf-8", body: body.into() }
}

/// A witness's key: the 32-byte Ed25519 seed at `path`, created (mode 0600) if absent.
///
/// # Errors
/// A message if it cannot be read, is not 32 bytes, or cannot be created.
pub fn load_or_create_key(path: &Path) -> Result<ed25519_dalek::SigningKey, String> {
    let seed: [u8; 32] = match std::fs::read(path) {
        Ok(b) => b.try_into().map_err(|_| format!("{} is not a 32-byte Ed25519 seed", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => crate::fsutil::create_seed(path, "witness").map_err(|e| format!("{}: {e}", path.display()))?,
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    Ok(ed25519_dalek::SigningKey::from_bytes(&seed))
}

/// One log the witness knows: its origin and the keys whose signatures it trusts.
#[derive(Clone, Debug)]
pub struct KnownLog {
    pub origin: String,
    pub keys: Vec<VerifyingKey>,
}

/// Reads the logs a witness knows: one `log <verifier key>` line each (the tlog-policy
/// form; the key's name is the log's origin), comments and blank lines ignored.
///
/// # Errors
/// A message naming the line.
pub fn parse_logs(text: &str) -> Result<Vec<KnownLog>, String> {
    let mut logs: Vec<KnownLog> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [] => {}
            [w, ..] if w.starts_with('#') => {}
            ["log", vkey, ..] => {
                let (name, t, public) = note::parse_vkey(vkey).map_err(|e| format!("line {}: {e}", i + 1))?;
                if t != SIG_ED25519 {
                    return Err(format!("line {}: the key of {name} is not an Ed25519 log key (type 0x01)", i + 1));
                }
                let key = VerifyingKey::from_bytes(&public.try_into().map_err(|_| format!("line {}: not a 32-byte key", i + 1))?).map_err(|e| format!("line {}: {e}", i + 1))?;
                match logs.iter_mut().find(|l| l.origin == name) {
                    Some(l) => l.keys.push(key),
                    None => logs.push(KnownLog { origin: name, keys: vec![key] }),
                }
            }
            _ => return Err(format!("line {}: not `log <verifier key>`", i + 1)),
        }
    }
    Ok(logs)
}

/// The latest cosigned checkpoint of one log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Latest {
    pub size: u64,
    /// Its root, base64.
    pub root: String,
}

pub struct Witness {
    cosigner: Cosigner,
    logs: Vec<KnownLog>,
    dir: PathBuf,
    state: Mutex<BTreeMap<String, Latest>>,
    clock: Box<dyn Fn() -> u64 + Send + Sync>,
    /// `LOCK` in the state directory, locked while the witness is open: two witnesses on
    /// one state would each cosign from what it last read, and one could cosign a fork.
    _lock: std::fs::File,
}

/// A parsed request: old size, proof, and the checkpoint note.
struct Request {
    old: u64,
    proof: Vec<Hash>,
    note: Note,
    origin: String,
    size: u64,
    root: Hash,
}

fn parse_request(body: &[u8]) -> Result<Request, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8".to_owned())?;
    let (head, rest) = text.split_once('\n').ok_or("no old size line")?;
    let old = head.strip_prefix("old ").ok_or("the first line is not `old <size>`")?;
    let old = note::decimal(old).ok_or("the old size is not a decimal without leading zeros")?;
    // Proof lines up to the first blank line; the checkpoint after it (its own blank line,
    // before its signatures, comes later).
    let (proof, note_text) = note::hash_lines(rest, MAX_PROOF_LINES)?;
    let note = Note::parse(note_text.as_bytes()).map_err(|e| e.to_string())?;
    let lines: Vec<&str> = note.text.strip_suffix('\n').unwrap_or(&note.text).split('\n').collect();
    let [origin, size, root, ext @ ..] = lines.as_slice() else { return Err("the checkpoint has fewer than three lines".into()) };
    if origin.is_empty() || ext.iter().any(|l| l.is_empty()) {
        return Err("an empty origin or extension line".into());
    }
    let size = note::decimal(size).ok_or("the tree size is not a decimal without leading zeros")?;
    let root = note::hash_b64(root).ok_or("the root is not a base64 32-byte hash")?;
    Ok(Request { old, proof, origin: (*origin).to_owned(), size, root, note })
}

impl Witness {
    /// Opens a witness whose state lives in `dir` (created if absent).
    ///
    /// # Errors
    /// I/O errors; a state file that does not parse (never silently reset: a witness
    /// that forgot would cosign a fork).
    pub fn open(dir: &Path, cosigner: Cosigner, logs: Vec<KnownLog>) -> Result<Witness, String> {
        crate::fsutil::create_private_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let lock_path = dir.join("LOCK");
        let lock = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).map_err(|e| format!("{}: {e}", lock_path.display()))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(format!("{}: another witness holds this state directory (one process per state)", dir.display())),
            Err(std::fs::TryLockError::Error(e)) => return Err(format!("{}: {e}", lock_path.display())),
        }
        let path = dir.join("state.json");
        let state = match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| format!("{}: {e} (restore it from a backup: a witness that forgot what it cosigned would cosign a fork)", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let clock = Box::new(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()));
        Ok(Witness { cosigner, logs, dir: dir.to_owned(), state: Mutex::new(state), clock, _lock: lock })
    }

    /// The latest cosigned checkpoint of `origin`, if any.
    pub fn latest(&self, origin: &str) -> Option<Latest> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(origin).cloned()
    }

    pub fn cosigner(&self) -> &Cosigner {
        &self.cosigner
    }

    /// `POST <prefix>/add-checkpoint`: the whole of c2sp.org/tlog-witness's rules.
    pub fn add_checkpoint(&self, body: &[u8]) -> Answer {
        if body.len() > MAX_REQUEST_BYTES {
            return answer(400, "the request is too large\n");
        }
        let req = match parse_request(body) {
            Ok(r) => r,
            Err(why) => return answer(400, format!("{why}\n")),
        };
        let Some(log) = self.logs.iter().find(|l| l.origin == req.origin) else {
            return answer(404, format!("unknown log {:?}\n", req.origin.chars().take(100).collect::<String>()));
        };
        // The log's signature: lines of a trusted key (name = origin, its key ID) must
        // all verify, and there must be one.
        let mut signed = false;
        for key in &log.keys {
            let id = note::key_id(&req.origin, SIG_ED25519, key.as_bytes());
            for line in req.note.signatures.iter().filter(|s| s.name == req.origin && s.key_id == id) {
                let ok = Signature::from_slice(&line.sig).is_ok_and(|sig| key.verify_strict(req.note.text.as_bytes(), &sig).is_ok());
                if !ok {
                    return answer(403, "a signature of the log's key does not verify\n");
                }
                signed = true;
            }
        }
        if !signed {
            return answer(403, "no signature of a key trusted for this log\n");
        }
        if req.old > req.size {
            return answer(400, "the old size is larger than the checkpoint's\n");
        }
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let latest = state.get(&req.origin).cloned().unwrap_or_default();
        if req.old != latest.size {
            return Answer { status: 409, content_type: "text/x.tlog.size", body: format!("{}\n", latest.size) };
        }
        let inconsistent = |why: &str| -> Answer {
            self.keep_evidence(&req, &latest, why);
            answer(422, format!("{why}\n"))
        };
        if req.size == 0 && req.root != empty_root() {
            return answer(422, "a checkpoint of size 0 must have the empty tree's root\n");
        }
        if req.old == 0 {
            if !req.proof.is_empty() {
                return answer(422, "a proof from size 0 must be empty\n");
            }
        } else if req.old == req.size {
            let old_root = B64.decode(&latest.root).unwrap_or_default();
            if old_root != req.root {
                return inconsistent("the same size with another root: a fork");
            }
            if !req.proof.is_empty() {
                // The same checkpoint with a proof attached: malformed, not evidence.
                return answer(422, "a proof between equal sizes must be empty\n");
            }
        } else {
            let old_root: Hash = match note::hash_b64(&latest.root) {
                Some(r) => r,
                None => return answer(500, "the witness's state is damaged\n"),
            };
            if let Err(e) = merkle::verify_consistency(req.old, req.size, &old_root, &req.root, &req.proof) {
                return inconsistent(&format!("the consistency proof from {} to {} does not verify ({e}): a fork, or a bad proof", req.old, req.size));
            }
        }
        let mut next = state.clone();
        next.insert(req.origin.clone(), Latest { size: req.size, root: B64.encode(req.root) });
        // Persisted before the answer, under the lock.
        let json = serde_json::to_vec_pretty(&next).expect("serializable");
        if let Err(e) = crate::fsutil::write_atomic(&self.dir.join("state.json"), &json, "witness") {
            tracing::error!(error = %e, "the witness state could not be saved: nothing cosigned");
            return answer(503, "the witness cannot save its state\n");
        }
        *state = next;
        drop(state);
        let line = self.cosigner.cosign(&req.note.text, (self.clock)());
        tracing::info!(origin = %req.origin, size = req.size, "cosigned");
        Answer { status: 200, content_type: "text/plain; charset=utf-8", body: line.line() }
    }

    /// Appends a signed checkpoint inconsistent with what was cosigned to `evidence.log`.
    fn keep_evidence(&self, req: &Request, latest: &Latest, why: &str) {
        use std::io::Write as _;
        tracing::error!(origin = %req.origin, cosigned = latest.size, shown = req.size, why, "a log signed a checkpoint inconsistent with the one cosigned: evidence kept");
        let entry = format!("# {why}; cosigned before: size {} root {}\n{}\n", latest.size, latest.root, req.note.encode());
        let path = self.dir.join("evidence.log");
        // The same forked checkpoint shown again adds nothing; the file is capped, so a
        // flood of signed forks cannot fill the disk (the first ones are the evidence).
        let old = std::fs::read_to_string(&path).unwrap_or_default();
        if old.contains(&req.note.text) || old.len() > MAX_EVIDENCE_BYTES {
            return;
        }
        let written = std::fs::OpenOptions::new().create(true).append(true).open(&path).and_then(|mut f| {
            f.write_all(entry.as_bytes())?;
            f.sync_data()
        });
        if let Err(e) = written {
            tracing::error!(error = %e, "evidence.log could not be written");
        }
    }
}

/// Serves `POST /add-checkpoint` (and `GET /` saying what this is) until `shutdown`.
///
/// # Errors
/// The server's I/O errors.
pub async fn serve(w: Arc<Witness>, listener: tokio::net::TcpListener, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
    use axum::body::Bytes;
    use axum::extract::{DefaultBodyLimit, State};
    use axum::http::{header, StatusCode};
    use axum::response::IntoResponse;
    use axum::routing::{get, post};
    let add = |State(w): State<Arc<Witness>>, body: Bytes| async move {
        let a = match tokio::task::spawn_blocking(move || w.add_checkpoint(&body)).await {
            Ok(a) => a,
            Err(_) => answer(500, "internal error\n"),
        };
        (StatusCode::from_u16(a.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), [(header::CONTENT_TYPE, a.content_type)], a.body).into_response()
    };
    let about = |State(w): State<Arc<Witness>>| async move { format!("tlog-witness {}\nPOST /add-checkpoint\n", w.cosigner.public().vkey()) };
    // Small answers must not wait on the peer's delayed ACK (as for gRPC).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY on a witness connection");
        }
    });
    let app = axum::Router::new().route("/add-checkpoint", post(add)).route("/", get(about)).layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES)).with_state(w);
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}
