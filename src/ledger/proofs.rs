//! Signed checkpoints and Merkle proofs, as the audit API serves them.
//!
//! The Merkle files are a cache: every proof is checked before it is handed out. An
//! inclusion proof must lead from the record's own leaf (read from the log) to the root of
//! its tree size, and that root must be consistent with the latest signed checkpoint's; a
//! consistency proof must join the two roots, likewise anchored. A proof that does not is
//! never sent (never a wrong proof that would raise a false tamper alarm): the Merkle
//! files are repaired from the log in place and the proof made again; only if that fails
//! too does the ledger turn read-only naming them, and the caller gets DATA_LOSS.

use ed25519_dalek::VerifyingKey;

use crate::chain::checkpoint::SignedCheckpoint;
use crate::chain::merkle;
use crate::chain::record::Hash;
use crate::projection::state::Seq;
use crate::store::StoreError;

use super::Ledger;

/// Why a proof cannot be given.
#[derive(Debug, thiserror::Error)]
pub enum ProofRequestError {
    #[error("{0}")]
    Invalid(String),
    /// The records exist but no (witnessed) checkpoint covers them yet: ask again.
    #[error("{0}")]
    NotYet(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Ledger {
    /// The key that verifies this ledger's checkpoints.
    pub fn public_key(&self) -> VerifyingKey {
        self.shared.signer.key.verifying_key()
    }

    /// The latest signed checkpoint, made now if the last one is behind the log.
    ///
    /// # Errors
    /// `StoreError` if it cannot be saved.
    pub fn checkpoint(&self) -> Result<SignedCheckpoint, StoreError> {
        self.shared.signer.sign_if_behind(self.shared.tree(), (self.shared.clock)())
    }

    /// The latest signed checkpoint as kept (never signing one), with the witnesses'
    /// cosignatures gathered for it so far.
    pub fn latest_checkpoint(&self) -> SignedCheckpoint {
        self.shared.signer.latest()
    }

    /// Adds verified cosignature lines to the latest checkpoint if it is of `size`.
    ///
    /// # Errors
    /// `StoreError` if it cannot be saved.
    pub fn attach_cosignatures(&self, size: Seq, lines: &[crate::chain::note::NoteSignature]) -> Result<bool, StoreError> {
        self.shared.signer.attach(size, lines)
    }

    /// The latest checkpoint that met the witness policy (`checkpoints/witnessed`), if
    /// any: signed by this ledger's key, with its cosignatures.
    pub fn witnessed_checkpoint(&self) -> Option<SignedCheckpoint> {
        let bytes = std::fs::read(super::signer::witnessed_path(&self.shared.dir)).ok()?;
        let cp = SignedCheckpoint::from_note(&bytes).ok()?;
        (cp.verify(&self.public_key()).is_ok() && cp.checkpoint.ledger_id == self.ledger_id() && cp.checkpoint.tree_size <= self.tree_size()).then_some(cp)
    }

    /// Keeps `cp` as the latest witnessed checkpoint unless one at least as large is kept
    /// (one caller: the submission task, `witness::submit`).
    ///
    /// # Errors
    /// `StoreError` if it cannot be saved.
    pub fn save_witnessed(&self, cp: &SignedCheckpoint) -> Result<bool, StoreError> {
        if self.witnessed_checkpoint().is_some_and(|w| w.checkpoint.tree_size >= cp.checkpoint.tree_size) {
            return Ok(false);
        }
        crate::fsutil::write_atomic(&super::signer::witnessed_path(&self.shared.dir), cp.to_note().as_bytes(), self.ledger_id())?;
        Ok(true)
    }

    /// The roots of the perfect subtrees of height `level` numbered `from .. from + n`
    /// (the hashes of a tlog-tile at level `level / 8`), every one wholly inside the tree.
    /// Leaves are checked against the log's records (a damaged leaf is repaired, never
    /// served); higher subtrees come from the stored roots, which the scrub checks against
    /// the log. A client authenticates every tile against the signed root anyway.
    ///
    /// # Errors
    /// `Invalid` if a subtree is not complete in the tree.
    pub fn subtree_hashes(&self, level: u32, from: u64, n: u64) -> Result<Vec<Hash>, ProofRequestError> {
        let end = from.checked_add(n).and_then(|e| e.checked_mul(1u64.checked_shl(level)?)).filter(|e| *e <= self.tree_size());
        if end.is_none() || n == 0 {
            return Err(ProofRequestError::Invalid(format!("subtrees {from} to {} of level {level} are not all in the tree of {}", from.saturating_add(n), self.tree_size())));
        }
        use merkle::Nodes as _;
        self.checked(|| {
            let files = &*self.shared.merkle;
            let hashes = (from..from + n).map(|i| files.subtree(level, i)).collect::<Result<Vec<_>, _>>()?;
            if level == 0 {
                let records = self.read_records(from + 1, from + n)?;
                if let Some((seq, _)) = records.iter().zip(&hashes).find(|((_, b), h)| merkle::leaf_hash(b) != **h).map(|(r, _)| r) {
                    return Ok(Err(format!("the Merkle leaf of record {seq} is not the hash of its bytes")));
                }
            }
            Ok(Ok(hashes))
        })
    }

    /// An offline receipt (`crate::receipt`) for records `first..=last`: their bytes and
    /// the last one's inclusion proof in the latest checkpoint, or with `witnessed` in the
    /// latest witnessed one.
    ///
    /// # Errors
    /// `Invalid` for a bad range; `NotYet` if no such checkpoint covers `last` yet.
    pub fn receipt(&self, first: Seq, last: Seq, witnessed: bool) -> Result<crate::receipt::Receipt, ProofRequestError> {
        if first == 0 || first > last || last - first >= crate::receipt::MAX_RECORDS as u64 {
            return Err(ProofRequestError::Invalid(format!("records {first} to {last}: a receipt holds 1 to {} consecutive records", crate::receipt::MAX_RECORDS)));
        }
        let cp = if witnessed {
            self.witnessed_checkpoint().ok_or_else(|| ProofRequestError::NotYet("no checkpoint of this ledger has met its witness policy yet".into()))?
        } else {
            self.checkpoint()?
        };
        let size = cp.checkpoint.tree_size;
        if last > size {
            return Err(ProofRequestError::NotYet(format!("record {last} is not yet in the {}checkpoint of {size} records: ask again", if witnessed { "witnessed " } else { "" })));
        }
        let records: Vec<Vec<u8>> = self.read_records(first, last)?.into_iter().map(|(_, b)| b).collect();
        let bytes: usize = records.iter().map(Vec::len).sum();
        if bytes > crate::receipt::MAX_BYTES {
            return Err(ProofRequestError::Invalid(format!("records {first} to {last} are {bytes} bytes, more than a receipt's {} MiB: ask for fewer records in each", crate::receipt::MAX_BYTES >> 20)));
        }
        let proof = self.inclusion_proof(last, size)?;
        Ok(crate::receipt::Receipt { records, index: last - 1, proof, checkpoint: cp })
    }

    /// The seed of the checkpoint signing key, for a backup (`crate::backup`) only.
    pub(crate) fn signing_seed(&self) -> [u8; 32] {
        self.shared.signer.key.to_bytes()
    }

    /// The size of the tree as of the last group commit.
    pub fn tree_size(&self) -> Seq {
        self.shared.tree().size
    }

    /// The Merkle root of the first `size` records.
    ///
    /// # Errors
    /// `Invalid` beyond the tree; `Store` if the Merkle files cannot be read.
    pub fn root_at(&self, size: Seq) -> Result<Hash, ProofRequestError> {
        if size > self.tree_size() {
            return Err(ProofRequestError::Invalid(format!("tree size {size} is beyond the log's {}", self.tree_size())));
        }
        Ok(merkle::root(&*self.shared.merkle, size)?)
    }

    /// The inclusion proof of record `seq` in the tree of `size` records.
    ///
    /// # Errors
    /// `Invalid` unless `1 <= seq <= size <= tree size`.
    pub fn inclusion_proof(&self, seq: Seq, size: Seq) -> Result<Vec<Hash>, ProofRequestError> {
        if seq == 0 || seq > size || size > self.tree_size() {
            return Err(ProofRequestError::Invalid(format!("no record {seq} in a tree of {size} (the log has {})", self.tree_size())));
        }
        self.checked(|| {
            let proof = merkle::inclusion_proof(&*self.shared.merkle, seq - 1, size)?;
            let record = self.read_records(seq, seq)?;
            let Some((_, bytes)) = record.first() else {
                return Err(ProofRequestError::Invalid(format!("record {seq} is not durable yet")));
            };
            let leaf = merkle::leaf_hash(bytes);
            let root = match self.anchored_root(size)? {
                Ok(root) => root,
                Err(why) => return Ok(Err(why)),
            };
            Ok(merkle::verify_inclusion(&leaf, seq - 1, size, &proof, &root).map(|()| proof).map_err(|e| format!("the inclusion proof of record {seq} in the tree of {size}: {e}")))
        })
    }

    /// The consistency proof from the tree of `from` records to the tree of `to`.
    ///
    /// # Errors
    /// `Invalid` unless `1 <= from <= to <= tree size`.
    pub fn consistency_proof(&self, from: Seq, to: Seq) -> Result<Vec<Hash>, ProofRequestError> {
        if from == 0 || from > to || to > self.tree_size() {
            return Err(ProofRequestError::Invalid(format!("no consistency proof from {from} to {to} (the log has {})", self.tree_size())));
        }
        self.checked(|| {
            let proof = merkle::consistency_proof(&*self.shared.merkle, from, to)?;
            // Anchoring `to` is enough: a proof that joins `from`'s root to a trusted
            // root proves `from`'s root too.
            let from_root = merkle::root(&*self.shared.merkle, from)?;
            let to_root = match self.anchored_root(to)? {
                Ok(root) => root,
                Err(why) => return Ok(Err(why)),
            };
            Ok(merkle::verify_consistency(from, to, &from_root, &to_root, &proof).map(|()| proof).map_err(|e| format!("the consistency proof from {from} to {to}: {e}")))
        })
    }

    /// Runs `make` (a proof from the Merkle files, checked: `Ok(Err(why))` when it does
    /// not check). A proof that does not check is never sent: the files are repaired from
    /// the log (one scrub pass, which puts back every damaged entry) and the proof made
    /// again; only if it still does not check is it damage, published like the scrub's
    /// (the ledger turns read-only) and answered as such.
    fn checked<T>(&self, make: impl Fn() -> Result<Result<T, String>, ProofRequestError>) -> Result<T, ProofRequestError> {
        let why = match make()? {
            Ok(proof) => return Ok(proof),
            Err(why) => why,
        };
        // Damage already published: no pass for every request that meets it.
        if let Some(d) = self.shared.damage() {
            return Err(ProofRequestError::Store(StoreError::Damaged(d.to_string())));
        }
        {
            // One repair at a time; a request that waited for another's may find the
            // files repaired already.
            let _one = self.shared.repairing.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Ok(proof) = make()? {
                return Ok(proof);
            }
            tracing::warn!(why = %why, "a proof from the Merkle files does not check: repairing them from the log");
            self.repair_merkle()?;
        }
        match make()? {
            Ok(proof) => Ok(proof),
            Err(again) => Err(self.merkle_damaged(format!("{again} (and still after a repair from the log; first: {why})"))),
        }
    }

    /// One scrub pass now (the caller holds `repairing`), which puts back damaged Merkle
    /// entries.
    fn repair_merkle(&self) -> Result<(), ProofRequestError> {
        match super::scrub::scrub_with_retries(&self.shared, &|| false) {
            Ok(r) => {
                tracing::info!(repaired = r.merkle_repaired, records = r.records, "Merkle files checked against the log");
                *self.shared.last_scrub.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(r);
                Ok(())
            }
            Err(d) => {
                tracing::error!(at = %d.at, why = %d.why, "the repair pass found damage: the ledger is read-only until it is repaired");
                self.shared.set_damage(d.clone());
                Err(ProofRequestError::Store(StoreError::Damaged(d.to_string())))
            }
        }
    }

    /// The Merkle files gave something that does not check even after a repair: damage,
    /// published like the scrub's (the ledger turns read-only), and answered as such.
    fn merkle_damaged(&self, why: String) -> ProofRequestError {
        let d = super::Damage { at: "merkle/".into(), why: format!("{why} (the Merkle files are damaged: delete merkle/ and restart to rebuild it from the log)"), state_suspect: false };
        tracing::error!(at = %d.at, why = %d.why, "a proof from the Merkle files does not check");
        self.shared.set_damage(d.clone());
        ProofRequestError::Store(StoreError::Corruption { at: d.at, why: d.why })
    }

    /// The root of the first `size` records, from the Merkle files, checked against the
    /// latest signed checkpoint's root by a consistency proof (in whichever direction):
    /// `Ok(Err(why))` if it does not check.
    fn anchored_root(&self, size: Seq) -> Result<Result<Hash, String>, ProofRequestError> {
        let files = &*self.shared.merkle;
        let root = merkle::root(files, size)?;
        // The latest signed checkpoint as kept: a proof never signs (nor waits on) one.
        let cp = self.shared.signer.latest().checkpoint;
        let (small, large, small_root, large_root) = if size <= cp.tree_size { (size, cp.tree_size, root, cp.root) } else { (cp.tree_size, size, cp.root, root) };
        if small == 0 || small == large {
            if small == large && small_root != large_root {
                return Ok(Err(format!("the root of {size} records is not the signed one")));
            }
            return Ok(Ok(root));
        }
        let proof = merkle::consistency_proof(files, small, large)?;
        Ok(merkle::verify_consistency(small, large, &small_root, &large_root, &proof)
            .map(|()| root)
            .map_err(|e| format!("the root of {size} records is not consistent with the signed checkpoint of {}: {e}", cp.tree_size)))
    }
}
