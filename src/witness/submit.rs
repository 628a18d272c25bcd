//! `anxind`'s side of c2sp.org/tlog-witness: each new checkpoint is submitted, with a
//! consistency proof from the size the witness last cosigned, to every witness of the
//! ledger's policy that has a submission URL; the cosignatures that come back are
//! verified with the policy's keys and added to the checkpoint (`GetCheckpoint` serves
//! them), and a checkpoint whose cosignatures meet the policy's quorum is kept as the
//! latest *witnessed* one (`checkpoints/witnessed`, `GetCheckpoint { witnessed: true }`).
//!
//! A witness that is down, slow or refusing delays nothing but its own cosignature: the
//! ledger goes on writing and signing; each witness is tried again with the next
//! checkpoint. A witness that answers 409 says which size it last cosigned: the proof is
//! made from there and the submission tried once more at once.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::chain::checkpoint::SignedCheckpoint;
use crate::chain::note::NoteSignature;
use crate::chain::policy::{Policy, Witness};
use crate::ledger::Ledger;

/// How often the latest checkpoint is looked at.
const POLL: Duration = Duration::from_millis(200);
/// How often a checkpoint short of its quorum is submitted again.
const RETRY: Duration = Duration::from_secs(2);
/// How long one submission may take.
const TIMEOUT: Duration = Duration::from_secs(5);

type Http = Client<HttpConnector, Full<Bytes>>;

/// What one witness said to one submission.
#[derive(Debug)]
enum Reply {
    Cosigned(NoteSignature),
    /// 409: the size it last cosigned.
    Conflict(u64),
    Refused(u16, String),
    Unreachable(String),
}

async fn post(http: &Http, url: &str, body: String) -> Result<(u16, String), String> {
    let req = hyper::Request::post(format!("{url}/add-checkpoint")).header("content-type", "text/plain; charset=utf-8").body(Full::new(Bytes::from(body))).map_err(|e| e.to_string())?;
    let resp = tokio::time::timeout(TIMEOUT, http.request(req)).await.map_err(|_| "timed out".to_owned())?.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    // A witness's answer is a few signature lines: more than 64 KiB is refused unread.
    let limited = http_body_util::Limited::new(resp.into_body(), 64 * 1024);
    let body = tokio::time::timeout(TIMEOUT, limited.collect()).await.map_err(|_| "timed out".to_owned())?.map_err(|e| e.to_string())?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body[..body.len().min(4096)]).into_owned()))
}

/// The request body: the old size, the proof from it, a blank line, the log-signed note.
fn request_body(old: u64, proof: &[[u8; 32]], note: &str) -> String {
    let mut b = format!("old {old}\n");
    for h in proof {
        b.push_str(&B64.encode(h));
        b.push('\n');
    }
    b.push('\n');
    b.push_str(note);
    b
}

async fn submit_once(http: &Http, ledger: &Arc<Ledger>, w: &Witness, url: &str, cp: &SignedCheckpoint, note: &str, old: u64) -> Reply {
    let size = cp.checkpoint.tree_size;
    let proof = if old == 0 || old >= size {
        Vec::new()
    } else {
        let l = ledger.clone();
        match tokio::task::spawn_blocking(move || l.consistency_proof(old, size)).await {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => return Reply::Unreachable(format!("no consistency proof from {old}: {e}")),
            Err(e) => return Reply::Unreachable(e.to_string()),
        }
    };
    match post(http, url, request_body(old, &proof, note)).await {
        Err(e) => Reply::Unreachable(e),
        Ok((200, body)) => {
            let text = cp.checkpoint.body();
            // Only this witness's lines that verify over this checkpoint are kept.
            let line = body.lines().filter_map(|l| NoteSignature::parse_line(l).ok()).find(|s| w.key.owns(s) && w.key.verify(&text, s).is_ok());
            line.map_or_else(|| Reply::Refused(200, "no valid cosignature of this witness in the answer".into()), Reply::Cosigned)
        }
        Ok((409, body)) => body.trim().parse().map_or_else(|_| Reply::Refused(409, body), Reply::Conflict),
        Ok((status, body)) => Reply::Refused(status, body.trim().chars().take(200).collect()),
    }
}

/// Submits `cp` to one witness; `known` is the size it last cosigned, as far as this
/// node knows, and is updated.
async fn submit(http: &Http, ledger: &Arc<Ledger>, w: &Witness, url: &str, cp: &SignedCheckpoint, note: &str, known: &mut u64) -> Reply {
    let mut reply = submit_once(http, ledger, w, url, cp, note, *known).await;
    if let Reply::Conflict(at) = reply {
        *known = at;
        // Ahead of this checkpoint (this node lags the others): nothing to submit.
        if at <= cp.checkpoint.tree_size {
            reply = submit_once(http, ledger, w, url, cp, note, at).await;
        }
    }
    if matches!(reply, Reply::Cosigned(_)) {
        *known = cp.checkpoint.tree_size;
    }
    reply
}

/// Runs until `shutdown`: submits every new checkpoint to the policy's witnesses.
pub async fn run(ledger: Arc<Ledger>, policy: Policy, shutdown: impl std::future::Future<Output = ()>) {
    let witnesses: Vec<(Witness, String)> = policy.witnesses.iter().filter_map(|w| w.url.clone().map(|u| (w.clone(), u))).collect();
    tracing::info!(witnesses = witnesses.len(), "submitting checkpoints to the witnesses of the policy");
    let http: Http = Client::builder(TokioExecutor::new()).build_http();
    let mut known = vec![0u64; witnesses.len()];
    let mut last_said: Vec<String> = vec![String::new(); witnesses.len()];
    let mut done = ledger.witnessed_checkpoint().map_or(0, |c| c.checkpoint.tree_size);
    let mut submitted = 0u64;
    let mut last_try = std::time::Instant::now();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(POLL) => {}
        }
        let cp = ledger.latest_checkpoint();
        let size = cp.checkpoint.tree_size;
        // A new checkpoint, or the last one still short of its quorum.
        if size == 0 || (size <= submitted && size <= done) {
            continue;
        }
        // The same checkpoint again (short of its quorum): not more than every few seconds.
        if size == submitted && last_try.elapsed() < RETRY {
            continue;
        }
        last_try = std::time::Instant::now();
        let id = crate::chain::checkpoint::log_key_id(&cp.checkpoint.ledger_id, &ledger.public_key());
        let origin = cp.checkpoint.origin();
        let log_only = SignedCheckpoint { checkpoint: cp.checkpoint.clone(), signatures: cp.signatures.iter().filter(|s| s.name == origin && s.key_id == id).cloned().collect() };
        let note = log_only.to_note();
        let mut tasks = tokio::task::JoinSet::new();
        for (i, (w, url)) in witnesses.iter().enumerate() {
            let (http, ledger, w, url, cp, note, mut k) = (http.clone(), ledger.clone(), w.clone(), url.clone(), cp.clone(), note.clone(), known[i]);
            tasks.spawn(async move {
                let r = submit(&http, &ledger, &w, &url, &cp, &note, &mut k).await;
                (i, k, r)
            });
        }
        let mut lines = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            let Ok((i, k, reply)) = joined else { continue };
            known[i] = k;
            let said = match reply {
                Reply::Cosigned(line) => {
                    lines.push(line);
                    "cosigning".to_owned()
                }
                Reply::Conflict(at) => format!("ahead of this node: it cosigned {at} records"),
                Reply::Refused(status, why) => format!("refused with {status}: {why}"),
                Reply::Unreachable(why) => format!("unreachable: {why}"),
            };
            // Said once per change, not once per checkpoint.
            if said != last_said[i] {
                if said == "cosigning" {
                    tracing::info!(witness = %witnesses[i].0.name, size, "the witness cosigns");
                } else {
                    tracing::warn!(witness = %witnesses[i].0.name, size, what = %said, "a witness did not cosign");
                }
                last_said[i] = said;
            }
        }
        submitted = size;
        let mut cosigned = log_only;
        cosigned.signatures.extend(lines.iter().cloned());
        if let Err(e) = ledger.attach_cosignatures(size, &lines) {
            tracing::warn!(error = %e, "the cosignatures could not be saved with the checkpoint");
        }
        if policy.check(&cosigned).is_ok() && size > done {
            match ledger.save_witnessed(&cosigned) {
                Ok(_) => done = size,
                Err(e) => tracing::warn!(error = %e, "the witnessed checkpoint could not be saved"),
            }
        }
    }
}
