//! The checkpoint signing key and the signed checkpoint files.
//!
//! The key (a 32-byte Ed25519 seed, mode 0600) is created on a ledger's first start and
//! never again: a ledger that has signed refuses to start without it, or with another.
//! `checkpoints/latest` is replaced atomically (`fsutil::write_atomic`: temporary file,
//! fsync, rename, directory fsync), so a crash leaves the old checkpoint or the new one.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use ed25519_dalek::SigningKey;

use crate::chain::checkpoint::{Checkpoint, SignedCheckpoint};
use crate::chain::record::{genesis_hash, Hash};
use crate::domain::ids::LedgerId;
use crate::projection::state::Seq;
use crate::store::StoreError;

/// The Merkle tree as of a group commit: what a checkpoint signs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TreeHead {
    pub size: Seq,
    pub root: Hash,
    /// The hash of record `size` (the genesis hash for an empty log).
    pub chain_head: Hash,
}

/// Loads the signing key, or creates it when `may_create` (a ledger that never signed).
pub(super) fn load_or_create_key(path: &Path, may_create: bool, scope: &str) -> Result<SigningKey, StoreError> {
    if path.exists() {
        let bytes = std::fs::read(path)?;
        let seed: [u8; 32] = bytes.try_into().map_err(|_| StoreError::DataDir(format!("{} is not a 32-byte Ed25519 seed", path.display())))?;
        return Ok(SigningKey::from_bytes(&seed));
    }
    if !may_create {
        return Err(StoreError::DataDir(format!(
            "the checkpoint signing key {} is missing, but this ledger has signed checkpoints with it: restore it from a backup (a new key would break every auditor's pinned key)",
            path.display()
        )));
    }
    let seed = crate::fsutil::create_seed(path, scope)?;
    tracing::info!(path = %path.display(), "created the checkpoint signing key");
    Ok(SigningKey::from_bytes(&seed))
}

pub(super) fn checkpoint_path(dir: &Path) -> PathBuf {
    dir.join("checkpoints").join("latest")
}

/// The latest checkpoint whose witnesses' cosignatures met the policy (`witness::submit`).
pub(super) fn witnessed_path(dir: &Path) -> PathBuf {
    dir.join("checkpoints").join("witnessed")
}

/// The latest signed checkpoint of `dir`, if it has one.
pub(super) fn load_checkpoint(dir: &Path) -> Result<Option<SignedCheckpoint>, StoreError> {
    let p = checkpoint_path(dir);
    if !p.exists() {
        return Ok(None);
    }
    let bytes = std::fs::read(&p)?;
    SignedCheckpoint::from_note(&bytes).map(Some).map_err(|e| {
        let why = if crate::chain::codec::decode::<crate::chain::checkpoint_v1::SignedCheckpoint>(&bytes).is_ok() {
            "a checkpoint of format 1 that was not upgraded (anxind upgrades it on start, after checking it against the log)".to_owned()
        } else {
            e.to_string()
        };
        StoreError::Corruption { at: p.display().to_string(), why }
    })
}

/// Replaces `checkpoints/latest` with `cp`, atomically and durably.
pub(crate) fn save_checkpoint(dir: &Path, cp: &SignedCheckpoint, scope: &str) -> Result<(), StoreError> {
    let d = dir.join("checkpoints");
    crate::fsutil::create_private_dir(&d)?;
    crate::failpoint::pass("checkpoint.write", scope)?;
    crate::fsutil::write_atomic(&checkpoint_path(dir), cp.to_note().as_bytes(), scope)?;
    Ok(())
}

pub(super) fn sign(ledger_id: &LedgerId, tree: TreeHead, now_ms: i64, key: &SigningKey) -> SignedCheckpoint {
    let chain_head = if tree.size == 0 { genesis_hash(ledger_id.as_str()) } else { tree.chain_head };
    Checkpoint { ledger_id: ledger_id.to_string(), tree_size: tree.size, root: tree.root, chain_head, timestamp_ms: now_ms }.sign(key)
}

/// The key and the latest checkpoint it signed, shared by the writer (which signs after
/// group commits and when idle) and the handle (which signs on demand).
pub(super) struct Signer {
    pub key: SigningKey,
    latest: Mutex<SignedCheckpoint>,
    /// `latest`'s size, read by the writer for every group commit without the lock.
    signed_size: AtomicU64,
    dir: PathBuf,
    ledger_id: LedgerId,
}

impl Signer {
    pub fn new(key: SigningKey, latest: SignedCheckpoint, dir: PathBuf, ledger_id: LedgerId) -> Signer {
        let signed_size = AtomicU64::new(latest.checkpoint.tree_size);
        Signer { key, latest: Mutex::new(latest), signed_size, dir, ledger_id }
    }

    /// The latest signed checkpoint, as kept (no signing).
    pub fn latest(&self) -> SignedCheckpoint {
        self.latest.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// The size of the latest checkpoint, durably saved.
    pub fn signed_size(&self) -> u64 {
        self.signed_size.load(Ordering::Acquire)
    }

    /// Checks that `checkpoints/latest` holds the latest checkpoint, and writes it again
    /// from memory if it is missing, damaged or another (older) one. Returns whether it
    /// did. Under the lock: a checkpoint signed meanwhile is never overwritten.
    pub fn rewrite_file_if_lost(&self) -> Result<bool, StoreError> {
        let mut latest = self.latest.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let on_disk = std::fs::read(checkpoint_path(&self.dir));
        if on_disk.as_ref().is_ok_and(|bytes| *bytes == latest.to_note().as_bytes()) {
            return Ok(false);
        }
        // A newer one of ours on disk (a save whose directory sync failed after the
        // rename): kept, and taken as the latest, never written over.
        if let Some(newer) = on_disk.as_ref().ok().and_then(|b| SignedCheckpoint::from_note(b).ok()) {
            let c = &newer.checkpoint;
            if c.tree_size > latest.checkpoint.tree_size && c.ledger_id == self.ledger_id.as_str() && newer.verify(&self.key.verifying_key()).is_ok() {
                self.signed_size.store(c.tree_size, Ordering::Release);
                *latest = newer;
                return Ok(false);
            }
        }
        let why = match &on_disk {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => "missing".to_owned(),
            Err(e) => format!("unreadable ({e})"),
            Ok(_) => "not the latest signed (damaged or replaced)".to_owned(),
        };
        tracing::warn!(size = latest.checkpoint.tree_size, "checkpoints/latest was {why}: written again from the server's copy");
        save_checkpoint(&self.dir, &latest, self.ledger_id.as_str())?;
        Ok(true)
    }

    /// Adds witnesses' cosignature lines to the latest checkpoint if it is still of `size`
    /// (a line of the same witness and key replaces the older one), and saves it.
    /// Returns whether they were added. The caller has verified them.
    pub fn attach(&self, size: u64, lines: &[crate::chain::note::NoteSignature]) -> Result<bool, StoreError> {
        let mut latest = self.latest.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if latest.checkpoint.tree_size != size || lines.is_empty() {
            return Ok(false);
        }
        let mut next = latest.clone();
        for l in lines {
            next.signatures.retain(|s| !(s.name == l.name && s.key_id == l.key_id));
            next.signatures.push(l.clone());
        }
        save_checkpoint(&self.dir, &next, self.ledger_id.as_str())?;
        *latest = next;
        Ok(true)
    }

    /// Signs a checkpoint of `tree` unless the latest one already covers it, and keeps it.
    pub fn sign_if_behind(&self, tree: TreeHead, now_ms: i64) -> Result<SignedCheckpoint, StoreError> {
        // Only this signer changes the checkpoint: a poisoned lock still holds a whole one.
        let mut latest = self.latest.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if latest.checkpoint.tree_size >= tree.size {
            return Ok(latest.clone());
        }
        let started = std::time::Instant::now();
        let cp = sign(&self.ledger_id, tree, now_ms, &self.key);
        save_checkpoint(&self.dir, &cp, self.ledger_id.as_str())?;
        crate::metrics::get().checkpoint_seconds.observe(started.elapsed().as_secs_f64());
        self.signed_size.store(cp.checkpoint.tree_size, Ordering::Release);
        *latest = cp.clone();
        Ok(cp)
    }
}
