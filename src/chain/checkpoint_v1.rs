//! Checkpoint format 1 (read only): (ledger id, tree size, BLAKE3 Merkle root, chain head,
//! time) in canonical bytes, signed with the ledger's Ed25519 key over a context string
//! (docs/FORMAT.md section 8.2). Kept so that version-1 archives and backups still verify,
//! and so that a data directory or an auditor's state signed with it is upgraded after its
//! records are checked against it (`TreeHash::Blake3V1`). Nothing new is signed in it.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::codec;
use super::record::Hash;

/// Version of the checkpoint encoding.
pub const CHECKPOINT_VERSION_1: u16 = 1;
/// Prefix of the signed message: the context string and a zero byte, then the
/// checkpoint's canonical bytes.
pub const CHECKPOINT_CONTEXT: &[u8] = b"anxin v1 checkpoint\0";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub version: u16,
    pub ledger_id: String,
    pub tree_size: u64,
    pub root: Hash,
    /// Hash of record `tree_size` (the genesis hash for an empty tree).
    pub chain_head: Hash,
    pub timestamp_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedCheckpoint {
    pub checkpoint: Checkpoint,
    #[serde(with = "sig_bytes")]
    pub signature: [u8; 64],
}

mod sig_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8; 64], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 64], D::Error> {
        let v: Vec<u8> = Vec::deserialize(d)?;
        v.try_into().map_err(|_| serde::de::Error::custom("a signature is 64 bytes"))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointV1Error {
    #[error("the checkpoint's signature does not verify with the pinned key")]
    BadSignature,
    #[error("the checkpoint belongs to ledger {found:?}, not {expected:?}")]
    WrongLedger { expected: String, found: String },
    #[error("unknown checkpoint version {0}")]
    Version(u16),
}

impl Checkpoint {
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// The exact bytes the signature covers.
    pub fn signed_message(&self) -> Vec<u8> {
        let mut m = CHECKPOINT_CONTEXT.to_vec();
        m.extend(self.encode());
        m
    }

    pub fn sign(self, key: &SigningKey) -> SignedCheckpoint {
        let signature = key.sign(&self.signed_message()).to_bytes();
        SignedCheckpoint { checkpoint: self, signature }
    }
}

impl SignedCheckpoint {
    /// Checks the signature against a pinned public key, strictly (RFC 8032 with small-order
    /// keys and `R` and a non-canonical `S` refused, as libsodium does).
    ///
    /// # Errors
    /// `CheckpointV1Error` if the version is unknown or the signature fails.
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), CheckpointV1Error> {
        if self.checkpoint.version != CHECKPOINT_VERSION_1 {
            return Err(CheckpointV1Error::Version(self.checkpoint.version));
        }
        key.verify_strict(&self.checkpoint.signed_message(), &Signature::from_bytes(&self.signature)).map_err(|_| CheckpointV1Error::BadSignature)
    }
}
