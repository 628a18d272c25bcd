//! Records, their canonical bytes and their hash chain.
//!
//! A record is what the log stores for each accepted event: format version, sequence
//! number, previous record's hash, recorded-at time, principal, request id and event.
//! Its hash is BLAKE3 in derive-key mode with `RECORD_CONTEXT` over its canonical bytes;
//! the first record's previous hash is derived from the ledger id. Every byte is
//! specified in `docs/FORMAT.md` and pinned by `tests/vectors/`.

use serde::{Deserialize, Serialize};

use crate::domain::command::Event;
use crate::domain::ids::RequestId;
use crate::domain::principal::Principal;

use super::codec::{self, CodecError};

/// The version of the record format written by this code (`domain::layout`): 2 since
/// issue 16; records of format 1 are read (and verify) as they are.
pub const FORMAT_VERSION: u16 = crate::domain::layout::CURRENT;

/// BLAKE3 derive-key context of a record hash.
pub const RECORD_CONTEXT: &str = "anxin v1 record";
/// BLAKE3 derive-key context of the genesis previous hash, keyed by the ledger id.
pub const GENESIS_CONTEXT: &str = "anxin v1 genesis";
/// BLAKE3 derive-key context of a request's content digest (idempotency).
pub const REQUEST_CONTEXT: &str = "anxin v1 request";

pub type Hash = [u8; 32];

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub version: u16,
    pub seq: u64,
    pub prev_hash: Hash,
    /// Server clock when the record was accepted, Unix milliseconds (UTC).
    pub recorded_at_ms: i64,
    pub principal: Principal,
    pub request_id: RequestId,
    pub event: Event,
}

/// The same fields borrowed, so that encoding a record never clones its event.
#[derive(Serialize)]
pub struct RecordRef<'a> {
    pub version: u16,
    pub seq: u64,
    pub prev_hash: &'a Hash,
    pub recorded_at_ms: i64,
    pub principal: &'a Principal,
    pub request_id: &'a RequestId,
    pub event: &'a Event,
}

impl Record {
    pub fn as_ref(&self) -> RecordRef<'_> {
        RecordRef {
            version: self.version,
            seq: self.seq,
            prev_hash: &self.prev_hash,
            recorded_at_ms: self.recorded_at_ms,
            principal: &self.principal,
            request_id: &self.request_id,
            event: &self.event,
        }
    }

    /// Its canonical bytes, in its own format.
    pub fn encode(&self) -> Vec<u8> {
        crate::domain::layout::with(self.version, || codec::encode(&self.as_ref()))
    }

    /// A record from its canonical bytes, read in the format its first two bytes name.
    ///
    /// # Errors
    /// `CodecError` if the bytes are not a canonical record of a format this build reads.
    pub fn decode(bytes: &[u8]) -> Result<Record, CodecError> {
        let version = match bytes.get(..2) {
            Some(b) => u16::from_be_bytes([b[0], b[1]]),
            None => return Err(CodecError::Decode("shorter than a record".into())),
        };
        if !(crate::domain::layout::OLDEST..=crate::domain::layout::CURRENT).contains(&version) {
            return Err(CodecError::Decode(format!("record format {version} is not one this build reads")));
        }
        let rec: Record = crate::domain::layout::with(version, || codec::decode(bytes))?;
        if version < rec.event.since_format() {
            return Err(CodecError::Decode(format!("event {} ({}) exists only from record format {}", rec.event.kind_index(), rec.event.name(), rec.event.since_format())));
        }
        Ok(rec)
    }
}

/// The hash of a record from its canonical bytes.
pub fn record_hash(canonical: &[u8]) -> Hash {
    // Deriving the context key costs as much as hashing a short record: derive it once.
    static BASE: std::sync::LazyLock<blake3::Hasher> = std::sync::LazyLock::new(|| blake3::Hasher::new_derive_key(RECORD_CONTEXT));
    let mut h = BASE.clone();
    h.update(canonical);
    *h.finalize().as_bytes()
}

/// The previous hash of record 1 of the ledger `ledger_id`.
pub fn genesis_hash(ledger_id: &str) -> Hash {
    blake3::derive_key(GENESIS_CONTEXT, ledger_id.as_bytes())
}

/// The digest of a request's content, for idempotent retries: the canonical bytes of its
/// command list under `REQUEST_CONTEXT`.
pub fn request_digest(commands: &[crate::domain::command::Command]) -> Hash {
    static BASE: std::sync::LazyLock<blake3::Hasher> = std::sync::LazyLock::new(|| blake3::Hasher::new_derive_key(REQUEST_CONTEXT));
    let mut h = BASE.clone();
    // Encoded first, then hashed in one call: feeding the hasher field by field is slower.
    h.update(&codec::encode(commands));
    *h.finalize().as_bytes()
}

/// The fixed-position fields every record starts with: (format version, sequence
/// number, previous hash), as big-endian fixed-width integers and 32 raw bytes.
pub fn header(canonical: &[u8]) -> Option<(u16, u64, Hash)> {
    if canonical.len() < HEADER_BYTES {
        return None;
    }
    let version = u16::from_be_bytes(canonical[0..2].try_into().expect("2"));
    let seq = u64::from_be_bytes(canonical[2..10].try_into().expect("8"));
    Some((version, seq, canonical[10..42].try_into().expect("32")))
}

/// The bytes of a record's fixed-position header: format version (2), sequence number (8),
/// previous hash (32).
pub const HEADER_BYTES: usize = 42;

/// Why a chain does not verify, at which sequence number.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("record {seq}: cannot decode: {why}")]
    Undecodable { seq: u64, why: String },
    #[error("record {seq}: format version {version} is not one this verifier knows")]
    UnknownVersion { seq: u64, version: u16 },
    #[error("record {seq}: carries sequence number {found}")]
    SeqMismatch { seq: u64, found: u64 },
    #[error("record {seq}: previous hash does not match the hash of record {prev}")]
    BrokenLink { seq: u64, prev: u64 },
}

/// Checks records one at a time, in order, from sequence number 1.
#[derive(Clone, Debug)]
pub struct ChainVerifier {
    next_seq: u64,
    head: Hash,
}

impl ChainVerifier {
    pub fn new(ledger_id: &str) -> ChainVerifier {
        ChainVerifier { next_seq: 1, head: genesis_hash(ledger_id) }
    }

    /// Continues from a known position (the record `next_seq - 1` had hash `head`).
    pub fn resume(next_seq: u64, head: Hash) -> ChainVerifier {
        ChainVerifier { next_seq, head }
    }

    /// Verifies the next record's canonical bytes and returns it decoded with its hash.
    ///
    /// # Errors
    /// `ChainError` naming the record's expected sequence number.
    pub fn check(&mut self, canonical: &[u8]) -> Result<(Record, Hash), ChainError> {
        let hash = record_hash(canonical);
        self.accept(Record::decode(canonical), hash).map(|rec| (rec, hash))
    }

    /// The links of the next record: its format version, sequence number and previous
    /// hash against this verifier's position and head.
    fn link(&self, version: u16, found: u64, prev: &Hash) -> Result<(), ChainError> {
        let seq = self.next_seq;
        if !(crate::domain::layout::OLDEST..=crate::domain::layout::CURRENT).contains(&version) {
            return Err(ChainError::UnknownVersion { seq, version });
        }
        if found != seq {
            return Err(ChainError::SeqMismatch { seq, found });
        }
        if *prev != self.head {
            return Err(ChainError::BrokenLink { seq, prev: seq - 1 });
        }
        Ok(())
    }

    /// Like `check`, for a record decoded (and hashed) elsewhere, on another thread say.
    ///
    /// # Errors
    /// `ChainError` naming the record's expected sequence number.
    pub fn accept(&mut self, decoded: Result<Record, CodecError>, hash: Hash) -> Result<Record, ChainError> {
        let seq = self.next_seq;
        let rec = decoded.map_err(|e| ChainError::Undecodable { seq, why: e.to_string() })?;
        self.link(rec.version, rec.seq, &rec.prev_hash)?;
        self.head = hash;
        self.next_seq += 1;
        Ok(rec)
    }

    /// Takes the next record as withheld from the reader (`RecordBytes.withheld`): its
    /// header's links are checked, and its hash, which the reader cannot recompute, is
    /// taken as given: the next record's previous hash and the signed Merkle root bind it.
    ///
    /// # Errors
    /// `ChainError` naming the record's expected sequence number.
    pub fn accept_withheld(&mut self, header_bytes: &[u8], hash: Hash) -> Result<(), ChainError> {
        let Some((version, found, prev)) = header(header_bytes) else {
            return Err(ChainError::Undecodable { seq: self.next_seq, why: format!("{} bytes is shorter than a record header", header_bytes.len()) });
        };
        self.link(version, found, &prev)?;
        self.head = hash;
        self.next_seq += 1;
        Ok(())
    }

    /// Checks the next record's links from its fixed-position header fields alone
    /// (format version, sequence number, previous hash: the first 42 canonical bytes)
    /// and returns its hash, without decoding the event. `check` decodes as well.
    ///
    /// # Errors
    /// `ChainError` naming the record's expected sequence number.
    pub fn check_link(&mut self, canonical: &[u8]) -> Result<Hash, ChainError> {
        let Some((version, found, prev)) = header(canonical) else {
            return Err(ChainError::Undecodable { seq: self.next_seq, why: format!("{} bytes is shorter than a record header", canonical.len()) });
        };
        self.link(version, found, &prev)?;
        let hash = record_hash(canonical);
        self.head = hash;
        self.next_seq += 1;
        Ok(hash)
    }

    pub fn head(&self) -> Hash {
        self.head
    }

    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }
}
