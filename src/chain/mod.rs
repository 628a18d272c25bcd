//! The chain: canonical bytes, record hashes, and their verification.
//!
//! **Invariant**: the bytes hashed are exactly the bytes stored; nothing is hashed in a
//! form that a verifier in another language could not rebuild from `docs/FORMAT.md`.

pub mod checkpoint;
pub mod checkpoint_v1;
pub mod codec;
pub mod cosignature;
pub mod merkle;
pub mod note;
pub mod policy;
pub mod record;
