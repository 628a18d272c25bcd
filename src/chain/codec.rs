//! The one canonical encoding: bincode 2 through serde, big-endian, fixed-width integers.
//!
//! Everything the ledger hashes or stores goes through `encode`/`decode` here, so there
//! is exactly one configuration to document (`docs/FORMAT.md`, "Canonical encoding") and
//! to pin with test vectors. Decoding is bounded by `RECORD_BYTES_MAX` and must consume
//! every byte: trailing bytes are an error, so one value has one encoding.

use bincode::config::{BigEndian, Configuration, Fixint, Limit};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::limits::RECORD_BYTES_MAX;

type Canonical = Configuration<BigEndian, Fixint, Limit<RECORD_BYTES_MAX>>;

fn config() -> Canonical {
    bincode::config::standard().with_big_endian().with_fixed_int_encoding().with_limit::<RECORD_BYTES_MAX>()
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("cannot decode: {0}")]
    Decode(String),
    #[error("{0} trailing bytes after the value")]
    Trailing(usize),
}

/// Canonical bytes of `v`.
///
/// # Panics
/// If `v` cannot be encoded, which for the ledger's own types (no maps with non-string
/// keys, no unsized sequences) cannot happen.
pub fn encode<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
    // Most records are a few hundred bytes: one allocation instead of a series of grows.
    let mut out = Vec::with_capacity(384);
    encode_into(v, &mut out);
    out
}

/// Appends the canonical bytes of `v` to `out`.
pub fn encode_into<T: Serialize + ?Sized>(v: &T, out: &mut Vec<u8>) {
    // encode_into_std_write to a Vec cannot fail with I/O.
    bincode::serde::encode_into_std_write(v, out, config()).expect("ledger types always encode");
}

/// Decodes exactly one value from all of `bytes`.
///
/// # Errors
/// `CodecError` if the bytes are not the canonical encoding of a `T`.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (v, used) = bincode::serde::decode_from_slice(bytes, config()).map_err(|e| CodecError::Decode(e.to_string()))?;
    if used != bytes.len() {
        return Err(CodecError::Trailing(bytes.len() - used));
    }
    Ok(v)
}
