//! Online backup and restore.
//!
//! A backup holds what cannot be rebuilt from anything else: the records up to a
//! checkpoint signed when the backup starts, that checkpoint, the key that signed it, and
//! the PII vault (its secret and every salt). The index, the Merkle files and the
//! snapshots are derived and are rebuilt when the restored directory is first opened.
//!
//! It is taken while writes go on: the checkpoint is signed first and fixes the size,
//! records 1..=size are read from the append-only log (they never change), and the
//! vault is copied after, so it knows every worker those records name (a salt is made
//! before the record that uses it is written). Salts of later enrolments come along and
//! are harmless.
//!
//! `restore` trusts nothing in the file: it checks the file's digest, chains every
//! record from genesis, recomputes the Merkle root and checks the signed checkpoint
//! (against a pinned key if given) before anything is renamed into place.
//! `docs/FORMAT.md` section 11 gives the layout.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::audit::{AuditError, Catchup};
use crate::chain::checkpoint::{key_to_text, Checkpoint, SignedCheckpoint};
use crate::chain::codec;
use crate::ledger::Ledger;
use crate::store::log::LogWriter;
use crate::store::StoreError;
use crate::vault::Vault;

pub const MAGIC: &[u8; 8] = b"ANXBAK01";
const DIGEST_CONTEXT: &str = "anxin v1 backup";
const TAG_HEADER: u8 = 1;
const TAG_RECORDS: u8 = 2;
const TAG_SALTS: u8 = 3;
const TAG_END: u8 = 4;
/// Payload bytes of one section at most (a reader refuses larger).
const SECTION_BYTES_MAX: usize = 16 << 20;
/// A section is closed once its payload passes this.
const SECTION_BYTES: usize = 1 << 20;
/// Records read from the log per step.
const READ_CHUNK: u64 = 4_096;
/// Records per log frame when restoring.
const FRAME_RECORDS: usize = 8_192;
/// The backup version this build writes (1: a format-1 checkpoint, still restored).
pub const BACKUP_VERSION: u32 = 2;


#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupHeader {
    pub version: u32,
    pub ledger_id: String,
    pub created_at_ms: i64,
    /// The signed checkpoint the backup ends at: its signed note (version 2), or its
    /// canonical bytes in checkpoint format 1 (version 1, still restored).
    pub checkpoint: Vec<u8>,
    /// The Ed25519 seed that signs checkpoints.
    pub signing_seed: [u8; 32],
    /// The vault's secret.
    pub vault_secret: [u8; 32],
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct BackupEnd {
    records: u64,
    salts: u64,
    /// BLAKE3 (derive-key `DIGEST_CONTEXT`) of every byte before the end section.
    digest: [u8; 32],
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a usable backup: {0}")]
    Format(String),
    #[error("the backup's records do not match its signed checkpoint: {0}")]
    Audit(#[from] AuditError),
    #[error("{0} exists and is not empty: restore into a new directory")]
    TargetExists(PathBuf),
    #[error("the backup is signed by {found}, not by the pinned key {pinned}")]
    WrongKey { found: String, pinned: String },
}

/// What a backup holds.
#[derive(Clone, Debug)]
pub struct BackupSummary {
    pub ledger_id: String,
    pub records: u64,
    pub salts: u64,
    pub checkpoint: SignedCheckpoint,
    pub public_key: String,
    pub bytes: u64,
}

/// Sections, each `tag u8 | len u32 BE | payload`, hashed as they are written.
struct SectionWriter<'a> {
    out: &'a mut dyn Write,
    hasher: blake3::Hasher,
    bytes: u64,
}

impl SectionWriter<'_> {
    fn raw(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.hasher.update(b);
        self.bytes += b.len() as u64;
        self.out.write_all(b)
    }

    fn section(&mut self, tag: u8, payload: &[u8]) -> std::io::Result<()> {
        debug_assert!(payload.len() <= SECTION_BYTES_MAX);
        self.raw(&[tag])?;
        self.raw(&(payload.len() as u32).to_be_bytes())?;
        self.raw(payload)
    }
}

fn push_item(buf: &mut Vec<u8>, item: &[u8]) {
    buf.extend_from_slice(&(item.len() as u32).to_be_bytes());
    buf.extend_from_slice(item);
}

/// Writes a consistent backup of a running ledger and its vault to `out`.
///
/// # Errors
/// `BackupError` if the log cannot be read or `out` refuses the bytes (a client that
/// went away).
pub fn write_backup(ledger: &Ledger, vault: &Vault, out: &mut dyn Write) -> Result<BackupSummary, BackupError> {
    // Signed first: it fixes what the backup holds.
    let cp = ledger.checkpoint()?;
    let size = cp.checkpoint.tree_size;
    let header = BackupHeader {
        version: BACKUP_VERSION,
        ledger_id: ledger.ledger_id().to_owned(),
        created_at_ms: chrono::Utc::now().timestamp_millis(),
        checkpoint: cp.to_note().into_bytes(),
        signing_seed: ledger.signing_seed(),
        vault_secret: vault.secret(),
    };
    let mut w = SectionWriter { out, hasher: blake3::Hasher::new_derive_key(DIGEST_CONTEXT), bytes: 0 };
    w.raw(MAGIC)?;
    w.section(TAG_HEADER, &codec::encode(&header))?;
    let mut buf = Vec::with_capacity(SECTION_BYTES + (64 << 10));
    let mut next = 1;
    while next <= size {
        let to = size.min(next + READ_CHUNK - 1);
        for (_, bytes) in ledger.read_records(next, to)? {
            push_item(&mut buf, &bytes);
            if buf.len() >= SECTION_BYTES {
                w.section(TAG_RECORDS, &buf)?;
                buf.clear();
            }
        }
        next = to + 1;
    }
    if !buf.is_empty() {
        w.section(TAG_RECORDS, &buf)?;
        buf.clear();
    }
    // After the checkpoint: every salt the records above need is already in the vault.
    let mut salts = 0u64;
    vault.refresh()?;
    for entry in vault.salt_entries() {
        let (k, v) = entry?;
        push_item(&mut buf, &k);
        push_item(&mut buf, &v);
        salts += 1;
        if buf.len() >= SECTION_BYTES {
            w.section(TAG_SALTS, &buf)?;
            buf.clear();
        }
    }
    if !buf.is_empty() {
        w.section(TAG_SALTS, &buf)?;
    }
    let digest = *w.hasher.finalize().as_bytes();
    let end = codec::encode(&BackupEnd { records: size, salts, digest });
    w.out.write_all(&[TAG_END])?;
    w.out.write_all(&(end.len() as u32).to_be_bytes())?;
    w.out.write_all(&end)?;
    w.out.flush()?;
    let bytes = w.bytes + 5 + end.len() as u64;
    let public_key = key_to_text(&SigningKey::from_bytes(&header.signing_seed).verifying_key());
    Ok(BackupSummary { ledger_id: header.ledger_id, records: size, salts, checkpoint: cp, public_key, bytes })
}

/// Reads sections back, hashing everything before the end section.
struct SectionReader<'a> {
    input: &'a mut dyn Read,
    hasher: blake3::Hasher,
    offset: u64,
}

impl SectionReader<'_> {
    fn exact(&mut self, n: usize) -> Result<Vec<u8>, BackupError> {
        let mut b = vec![0u8; n];
        self.input.read_exact(&mut b).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => BackupError::Format(format!("the file ends at byte {} in the middle of a section: it was cut short", self.offset)),
            _ => BackupError::Io(e),
        })?;
        self.offset += n as u64;
        Ok(b)
    }

    /// The next section: (tag, payload). The end section is not hashed.
    fn next(&mut self) -> Result<(u8, Vec<u8>), BackupError> {
        let head = self.exact(5)?;
        let tag = head[0];
        let len = u32::from_be_bytes(head[1..5].try_into().expect("4 bytes")) as usize;
        if len > SECTION_BYTES_MAX {
            return Err(BackupError::Format(format!("a section of {len} bytes at byte {}", self.offset - 5)));
        }
        let payload = self.exact(len)?;
        if tag != TAG_END {
            self.hasher.update(&head);
            self.hasher.update(&payload);
        }
        Ok((tag, payload))
    }
}

/// Splits a payload of `len u32 | bytes` items.
fn items(payload: &[u8]) -> Result<Vec<&[u8]>, BackupError> {
    let mut out = Vec::new();
    let mut rest = payload;
    while !rest.is_empty() {
        if rest.len() < 4 {
            return Err(BackupError::Format("an item's length is cut short".into()));
        }
        let n = u32::from_be_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        if rest.len() - 4 < n {
            return Err(BackupError::Format("an item is cut short".into()));
        }
        out.push(&rest[4..4 + n]);
        rest = &rest[4 + n..];
    }
    Ok(out)
}

/// What a restore put in place.
#[derive(Clone, Debug)]
pub struct RestoreReport {
    pub ledger_id: String,
    pub records: u64,
    pub salts: u64,
    pub checkpoint: SignedCheckpoint,
    pub public_key: String,
}

/// Restores a backup into `data`, a directory that must not exist or be empty. The
/// records are checked against the signed checkpoint (and `pinned`, if given) before the
/// directory is renamed into place; a failed restore leaves nothing at `data`.
///
/// # Errors
/// `BackupError` naming what does not check.
pub fn restore(input: &mut dyn Read, data: &Path, pinned: Option<&VerifyingKey>, progress: &mut dyn FnMut(u64)) -> Result<RestoreReport, BackupError> {
    if data.exists() && std::fs::read_dir(data)?.next().is_some() {
        return Err(BackupError::TargetExists(data.to_owned()));
    }
    let name = data.file_name().ok_or_else(|| BackupError::Format(format!("{} names no directory", data.display())))?;
    let staging = data.with_file_name(format!("{}.restoring", name.to_string_lossy()));
    if staging.exists() {
        std::fs::remove_dir_all(&staging)?;
    }
    let result = restore_into(input, Some(&staging), pinned, progress);
    match result {
        Ok(report) => {
            if data.exists() {
                std::fs::remove_dir(data)?;
            }
            std::fs::rename(&staging, data)?;
            if let Some(parent) = data.parent().filter(|p| !p.as_os_str().is_empty()) {
                crate::fsutil::sync_dir(parent)?;
            }
            Ok(report)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            Err(e)
        }
    }
}

/// Checks a backup as `restore` does (digest, chain, Merkle root, signed checkpoint,
/// `pinned` key) without writing anything.
///
/// # Errors
/// `BackupError` naming what does not check.
pub fn check(input: &mut dyn Read, pinned: Option<&VerifyingKey>, progress: &mut dyn FnMut(u64)) -> Result<RestoreReport, BackupError> {
    restore_into(input, None, pinned, progress)
}

/// Reads and checks a backup; with `dir`, writes the data directory there as it goes.
fn restore_into(input: &mut dyn Read, dir: Option<&Path>, pinned: Option<&VerifyingKey>, progress: &mut dyn FnMut(u64)) -> Result<RestoreReport, BackupError> {
    let mut r = SectionReader { input, hasher: blake3::Hasher::new_derive_key(DIGEST_CONTEXT), offset: 0 };
    if r.exact(MAGIC.len())? != MAGIC {
        return Err(BackupError::Format("not an Anxin backup (no ANXBAK01 at its start)".into()));
    }
    r.hasher.update(MAGIC);
    let (tag, payload) = r.next()?;
    if tag != TAG_HEADER {
        return Err(BackupError::Format("the first section is not the header".into()));
    }
    let header: BackupHeader = codec::decode(&payload).map_err(|e| BackupError::Format(format!("header: {e}")))?;
    if !(1..=BACKUP_VERSION).contains(&header.version) {
        return Err(BackupError::Format(format!("backup version {} (this build reads 1 and {BACKUP_VERSION})", header.version)));
    }
    let key = SigningKey::from_bytes(&header.signing_seed);
    let public = key.verifying_key();
    if let Some(p) = pinned {
        if *p != public {
            return Err(BackupError::WrongKey { found: key_to_text(&public), pinned: key_to_text(p) });
        }
    }
    // Version 1 ends at a format-1 checkpoint: the records are checked against it as they
    // are read (`Catchup::upgrading`), and a format-2 one of the same size is signed with
    // the backup's own key once they are.
    let (cp, legacy) = if header.version == 1 {
        let old: crate::chain::checkpoint_v1::SignedCheckpoint = codec::decode(&header.checkpoint).map_err(|e| BackupError::Format(format!("checkpoint: {e}")))?;
        old.verify(&public).map_err(|e| BackupError::Audit(e.into()))?;
        let c = &old.checkpoint;
        (Checkpoint { ledger_id: c.ledger_id.clone(), tree_size: c.tree_size, root: [0; 32], chain_head: c.chain_head, timestamp_ms: c.timestamp_ms }.sign(&key), Some(old))
    } else {
        let cp = SignedCheckpoint::from_note(&header.checkpoint).map_err(|e| BackupError::Format(format!("checkpoint: {e}")))?;
        cp.verify(&public).map_err(|e| BackupError::Audit(e.into()))?;
        (cp, None)
    };
    if cp.checkpoint.ledger_id != header.ledger_id {
        return Err(BackupError::Format(format!("the checkpoint is of ledger {:?}, the backup of {:?}", cp.checkpoint.ledger_id, header.ledger_id)));
    }

    struct Target {
        log: LogWriter,
        salts: crate::vault::SaltLoader,
    }
    let mut target = match dir {
        Some(dir) => {
            crate::fsutil::create_private_dir(dir)?;
            crate::ledger::create_ledger_id(dir, &header.ledger_id)?;
            crate::fsutil::create_private_dir(&dir.join("keys"))?;
            crate::fsutil::write_atomic(&dir.join("keys").join("checkpoint.ed25519"), &header.signing_seed, &header.ledger_id)?;
            crate::fsutil::create_private_dir(&dir.join("vault"))?;
            crate::fsutil::write_atomic(&dir.join("vault").join("secret.key"), &header.vault_secret, &header.ledger_id)?;
            Some(Target { log: LogWriter::open(&dir.join("log"), &header.ledger_id, None)?, salts: crate::vault::SaltLoader::create(&dir.join("vault"))? })
        }
        None => None,
    };
    let mut catchup = match &legacy {
        Some(old) => Catchup::upgrading(&header.ledger_id, old),
        None => Catchup::from_genesis(&header.ledger_id),
    };
    // A request adds at most `BATCH_BYTES_MAX` to a full frame, which stays under the bound.
    let mut frames = crate::store::log::RequestFrames::new(FRAME_RECORDS, crate::limits::FRAME_BYTES_MAX / 4);
    let mut first = 1u64;
    let mut salts = 0u64;
    let end = loop {
        let (tag, payload) = r.next()?;
        match tag {
            TAG_RECORDS => {
                progress(catchup.size());
                for rec in items(&payload)? {
                    let (decoded, _) = catchup.feed_decoded(rec)?;
                    if catchup.size() > cp.checkpoint.tree_size {
                        return Err(BackupError::Format(format!("more records than the {} the checkpoint signed", cp.checkpoint.tree_size)));
                    }
                    let Some(t) = &mut target else { continue };
                    let request = (decoded.principal, decoded.request_id);
                    // A request is at most `BATCH_BYTES_MAX`, so a frame closed past a
                    // quarter of the bound stays under it; one that would not is a request
                    // no ledger wrote.
                    let open = if frames.closes_before(&request) { 0 } else { frames.bytes() };
                    if open + rec.len() + 8 > crate::limits::FRAME_BYTES_MAX - 64 {
                        return Err(BackupError::Format(format!("record {}: one request of more than {} bytes, more than a batch may hold", catchup.size(), crate::limits::BATCH_BYTES_MAX)));
                    }
                    if let Some(frame) = frames.push(rec.to_vec(), request) {
                        t.log.append(first, 0, &frame)?;
                        first += frame.len() as u64;
                    }
                }
            }
            TAG_SALTS => {
                let it = items(&payload)?;
                if it.len() % 2 != 0 {
                    return Err(BackupError::Format("a salt without its key".into()));
                }
                for kv in it.chunks(2) {
                    if let Some(t) = &target {
                        t.salts.insert(kv[0], kv[1])?;
                    }
                    salts += 1;
                }
            }
            TAG_END => break codec::decode::<BackupEnd>(&payload).map_err(|e| BackupError::Format(format!("end: {e}")))?,
            other => return Err(BackupError::Format(format!("an unknown section {other}"))),
        }
    };
    if let Some(t) = &mut target {
        if let Some(frame) = frames.finish() {
            t.log.append(first, 0, &frame)?;
        }
        t.log.sync()?;
    }
    let digest = *r.hasher.finalize().as_bytes();
    if digest != end.digest {
        return Err(BackupError::Format("the file's digest does not match: it was damaged or altered".into()));
    }
    if end.records != catchup.size() || end.salts != salts {
        return Err(BackupError::Format(format!("the end says {} records and {} salts, the file holds {} and {salts}", end.records, end.salts, catchup.size())));
    }
    let records = catchup.size();
    // A version-1 backup's records gave its format-1 checkpoint (checked as they were
    // read): the format-2 checkpoint of the same records is signed now.
    let cp = if legacy.is_some() { Checkpoint { root: catchup.root(), ..cp.checkpoint }.sign(&key) } else { cp };
    // Every record chains from genesis, and the root and head are the signed ones.
    catchup.finish(&cp, &key_to_text(&public))?;
    if let (Some(t), Some(dir)) = (target, dir) {
        t.salts.finish()?;
        drop(t.log);
        crate::ledger::save_checkpoint(dir, &cp, &header.ledger_id)?;
        crate::fsutil::sync_dir(dir)?;
    }
    Ok(RestoreReport { ledger_id: header.ledger_id, records, salts, checkpoint: cp, public_key: key_to_text(&public) })
}

