//! Receipts that need no server: a bank's batch or one worker's payout, as a
//! c2sp.org/tlog-proof (docs/FORMAT.md section 8.4):
//!
//! ```text
//! c2sp.org/tlog-proof@v1
//! extra <base64 of the records: for each, its length (u32, big-endian) and canonical bytes>
//! index <the last record's leaf index: its sequence number - 1>
//! <inclusion proof of that leaf, one base64 hash a line>
//!
//! <the checkpoint's signed note, with the witnesses' cosignatures>
//! ```
//!
//! The leaf is the last record itself (RFC 6962: SHA-256(0x00 || its bytes)), so any
//! tlog-proof verifier checks it; the records before it are bound to it by the chain
//! (each one's hash is the next one's previous hash). `verify` checks all of it with the
//! ledger's pinned key and, if given, a witness policy: a worker, a union or legal aid
//! can prove that a payout was recorded, offline, trusting neither the county's server
//! nor anyone's word.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::VerifyingKey;

use crate::chain::checkpoint::SignedCheckpoint;
use crate::chain::merkle::{self, leaf_hash};
use crate::chain::policy::Policy;
use crate::chain::record::{record_hash, Hash, Record};

pub const HEADER: &str = "c2sp.org/tlog-proof@v1";
/// The most records one receipt holds (a bank's batch is at most 10,000 commands).
pub const MAX_RECORDS: usize = 10_000;
/// The most bytes of records one receipt holds: base64 of them with the proof and the
/// checkpoint stays within one gRPC message (`limits::MESSAGE_BYTES_MAX`, 16 MiB). A
/// bank's batch of 10,000 payouts is about 2.5 MB; a range of large payrolls may not fit
/// and is asked for in parts.
pub const MAX_BYTES: usize = 8 << 20;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// Canonical bytes of consecutive records; the last one is the proven leaf.
    pub records: Vec<Vec<u8>>,
    /// The last record's leaf index.
    pub index: u64,
    pub proof: Vec<Hash>,
    pub checkpoint: SignedCheckpoint,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    #[error("not a receipt: {0}")]
    Malformed(String),
    #[error("record {seq}: {why}")]
    Record { seq: u64, why: String },
    #[error(transparent)]
    Checkpoint(#[from] crate::chain::checkpoint::CheckpointError),
    #[error("{0}")]
    NotWitnessed(String),
    #[error("record {seq} is not in the signed tree of {size} records: {why}")]
    NotIncluded { seq: u64, size: u64, why: String },
}

fn malformed<T>(why: impl Into<String>) -> Result<T, ReceiptError> {
    Err(ReceiptError::Malformed(why.into()))
}

/// What a verified receipt proves.
#[derive(Clone, Debug)]
pub struct Verified {
    pub records: Vec<Record>,
    pub tree_size: u64,
    /// The witnesses whose cosignatures met the policy (empty without one).
    pub witnesses: Vec<String>,
}

impl Receipt {
    pub fn encode(&self) -> String {
        let mut extra = Vec::new();
        for r in &self.records {
            extra.extend_from_slice(&(r.len() as u32).to_be_bytes());
            extra.extend_from_slice(r);
        }
        let mut out = format!("{HEADER}\nextra {}\nindex {}\n", B64.encode(extra), self.index);
        for h in &self.proof {
            out.push_str(&B64.encode(h));
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.checkpoint.to_note());
        out
    }

    /// Parses a receipt (nothing is verified: `verify`).
    ///
    /// # Errors
    /// `Malformed` naming what.
    pub fn parse(text: &str) -> Result<Receipt, ReceiptError> {
        let mut rest = text.strip_prefix(HEADER).and_then(|r| r.strip_prefix('\n')).ok_or_else(|| ReceiptError::Malformed(format!("the first line is not {HEADER}")))?;
        let mut line = || -> Result<&str, ReceiptError> {
            let (l, after) = rest.split_once('\n').ok_or_else(|| ReceiptError::Malformed("it ends before the checkpoint".into()))?;
            rest = after;
            Ok(l)
        };
        let extra = line()?.strip_prefix("extra ").ok_or_else(|| ReceiptError::Malformed("no extra line (an Anxin receipt carries its records there)".into()))?;
        let extra = B64.decode(extra).map_err(|_| ReceiptError::Malformed("the extra line is not base64".into()))?;
        let index = line()?.strip_prefix("index ").ok_or_else(|| ReceiptError::Malformed("no index line".into()))?;
        let index = crate::chain::note::decimal(index).ok_or_else(|| ReceiptError::Malformed("the index is not a decimal without leading zeros".into()))?;
        let (proof, rest) = crate::chain::note::hash_lines(rest, 64).map_err(ReceiptError::Malformed)?;
        let checkpoint = SignedCheckpoint::from_note(rest.as_bytes())?;
        if extra.len() > MAX_BYTES + 4 * MAX_RECORDS {
            return malformed("more records than a receipt holds (8 MiB)");
        }
        let mut records = Vec::new();
        let mut at = &extra[..];
        while !at.is_empty() {
            if at.len() < 4 || records.len() == MAX_RECORDS {
                return malformed("the extra data is not length-prefixed records");
            }
            let n = u32::from_be_bytes(at[..4].try_into().expect("4 bytes")) as usize;
            let Some(r) = at.get(4..4 + n) else { return malformed("a record in the extra data is cut short") };
            records.push(r.to_vec());
            at = &at[4 + n..];
        }
        if records.is_empty() {
            return malformed("no record in the extra data");
        }
        Ok(Receipt { records, index, proof, checkpoint })
    }

    /// Verifies the receipt: every record decodes, they are consecutive and chained, the
    /// last one is leaf `index`, its inclusion proof leads to the root of a checkpoint
    /// signed by `key`, and (with `policy`) the checkpoint's cosignatures meet it.
    ///
    /// # Errors
    /// `ReceiptError` saying what fails.
    pub fn verify(&self, key: &VerifyingKey, policy: Option<&Policy>) -> Result<Verified, ReceiptError> {
        let mut decoded: Vec<Record> = Vec::with_capacity(self.records.len());
        let mut prev: Option<Hash> = None;
        for bytes in &self.records {
            let seq = decoded.last().map_or(0, |r| r.seq.saturating_add(1));
            let rec = Record::decode(bytes).map_err(|e| ReceiptError::Record { seq, why: format!("cannot decode: {e}") })?;
            if let (Some(last), Some(p)) = (decoded.last(), prev) {
                if last.seq.checked_add(1) != Some(rec.seq) || rec.prev_hash != p {
                    return Err(ReceiptError::Record { seq: rec.seq, why: format!("does not follow record {} in the chain", last.seq) });
                }
            }
            prev = Some(record_hash(bytes));
            decoded.push(rec);
        }
        let last = decoded.last().expect("parse keeps at least one record");
        if self.index.checked_add(1) != Some(last.seq) {
            return Err(ReceiptError::Record { seq: last.seq, why: format!("the proof is of leaf {}, not of this record (leaf {})", self.index, last.seq.wrapping_sub(1)) });
        }
        self.checkpoint.verify(key)?;
        let witnesses = match policy {
            Some(p) => p.check(&self.checkpoint).map_err(ReceiptError::NotWitnessed)?,
            None => Vec::new(),
        };
        let c = &self.checkpoint.checkpoint;
        let leaf = leaf_hash(self.records.last().expect("at least one"));
        merkle::verify_inclusion(&leaf, self.index, c.tree_size, &self.proof, &c.root).map_err(|e| ReceiptError::NotIncluded { seq: last.seq, size: c.tree_size, why: e.to_string() })?;
        Ok(Verified { records: decoded, tree_size: c.tree_size, witnesses })
    }
}
