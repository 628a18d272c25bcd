//! Signed checkpoints and Merkle proofs, as the audit API serves them.

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
        Ok(merkle::inclusion_proof(&*self.shared.merkle, seq - 1, size)?)
    }

    /// The consistency proof from the tree of `from` records to the tree of `to`.
    ///
    /// # Errors
    /// `Invalid` unless `1 <= from <= to <= tree size`.
    pub fn consistency_proof(&self, from: Seq, to: Seq) -> Result<Vec<Hash>, ProofRequestError> {
        if from == 0 || from > to || to > self.tree_size() {
            return Err(ProofRequestError::Invalid(format!("no consistency proof from {from} to {to} (the log has {})", self.tree_size())));
        }
        Ok(merkle::consistency_proof(&*self.shared.merkle, from, to)?)
    }
}
