//! Signed checkpoints: (ledger id, tree size, Merkle root, chain head, time), signed with
//! the ledger's Ed25519 key. An auditor pins the public key and keeps the last checkpoint
//! it verified; a consistency proof from it to a newer one shows the log was only extended.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::codec;
use super::record::Hash;

/// Version of the checkpoint encoding.
pub const CHECKPOINT_VERSION: u16 = 1;
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
pub enum CheckpointError {
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
    /// `CheckpointError` if the version is unknown or the signature fails.
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), CheckpointError> {
        if self.checkpoint.version != CHECKPOINT_VERSION {
            return Err(CheckpointError::Version(self.checkpoint.version));
        }
        key.verify_strict(&self.checkpoint.signed_message(), &Signature::from_bytes(&self.signature)).map_err(|_| CheckpointError::BadSignature)
    }
}

/// A public key as an auditor pins it: `ed25519:` and 64 hex digits.
pub fn key_to_text(k: &VerifyingKey) -> String {
    format!("ed25519:{}", hex::encode(k.as_bytes()))
}

/// # Errors
/// A message if the text is not `ed25519:<64 hex>` of a valid point.
pub fn key_from_text(s: &str) -> Result<VerifyingKey, String> {
    let h = s.strip_prefix("ed25519:").unwrap_or(s);
    let mut b = [0u8; 32];
    hex::decode_to_slice(h, &mut b).map_err(|_| format!("{s:?} is not ed25519:<64 hex digits>"))?;
    VerifyingKey::from_bytes(&b).map_err(|e| format!("not an Ed25519 public key: {e}"))
}
