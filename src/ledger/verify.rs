//! Offline checks of a data directory: `verify` (every hash, link and record of the log,
//! against the index's and the signed checkpoint's claims, and the rules' findings) and
//! `rebuild` (everything derived, from the log alone).

use std::path::Path;

use ed25519_dalek::SigningKey;

use crate::chain::record::{genesis_hash, ChainError, ChainVerifier, Hash, Record};
use crate::projection::fingerprints::fingerprint;
use crate::projection::state::Seq;
use crate::store::index::Index;
use crate::store::log;
use crate::store::StoreError;

use super::signer::load_checkpoint;
use super::{Ledger, LedgerOptions};

/// A rule the log breaks although every hash and link holds: a record the ledger would
/// refuse today, recorded by an earlier build whose checks did not cover it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The record that breaks the rule.
    pub seq: Seq,
    /// The stable code of the rule (the rejection code the command would get now).
    pub code: &'static str,
    /// What it is, naming the earlier record it conflicts with.
    pub what: String,
}

/// What `verify` found.
#[derive(Clone, Debug, Default)]
pub struct VerifyReport {
    pub ledger_id: String,
    pub records: u64,
    pub frames: u64,
    pub head: Hash,
    /// The first problem, naming the record (or frame) where it is.
    pub error: Option<String>,
    /// A torn tail left by a crash (never acknowledged): segment, offset, bytes.
    pub torn_tail: Option<(u64, u64, u64)>,
    /// Whether the index's chain head at its sequence number agrees with the log.
    pub index_agrees: Option<bool>,
    /// The size of the signed checkpoint (`checkpoints/latest`) found to agree with the
    /// log: the log holds that many records and the chain head at it is the one signed.
    /// A checkpoint that disagrees is an `error` (records missing or rewritten).
    pub checkpoint: Option<u64>,
    /// Records that repeat an external number (`crate::domain::numbers`) in its scope, in
    /// log order. The chain is intact; the ledger replays them as recorded.
    pub findings: Vec<Finding>,
    /// The checkpoint was checked against a key pinned by the caller, not the one the
    /// data directory holds.
    pub key_pinned: bool,
    /// The largest checkpoint size the log's frames record as signed before them
    /// (`log::Frame::signed`): `checkpoints/latest` must cover at least that many.
    pub log_signed: u64,
}

/// What one decoder thread found: the first record it could not decode, and the
/// fingerprint of every external number it saw, with its record.
#[derive(Default)]
struct Decoded {
    undecodable: Option<(Seq, String)>,
    numbers: Vec<(u128, Seq)>,
}

/// Recomputes every hash of the log in `dir` from its bytes alone, without changing
/// anything, and reports the first bad record and every finding.
///
/// # Errors
/// `StoreError` only if the directory cannot be read at all; damage is in the report.
pub fn verify(dir: &Path, progress: &mut dyn FnMut(u64)) -> Result<VerifyReport, StoreError> {
    verify_pinned(dir, None, progress)
}

/// `verify`, with the checkpoint checked against `pinned` (the key an auditor pinned out
/// of band) rather than the key the data directory holds, which a holder of the
/// directory could have replaced along with the checkpoint.
///
/// # Errors
/// As `verify`.
pub fn verify_pinned(dir: &Path, pinned: Option<&ed25519_dalek::VerifyingKey>, progress: &mut dyn FnMut(u64)) -> Result<VerifyReport, StoreError> {
    let ledger_id = std::fs::read_to_string(dir.join("LEDGER"))
        .map_err(|e| StoreError::DataDir(format!("{}: {e}", dir.join("LEDGER").display())))?
        .trim()
        .to_owned();
    let mut report = VerifyReport { ledger_id: ledger_id.clone(), head: genesis_hash(&ledger_id), ..Default::default() };
    let mut verifier = ChainVerifier::new(&ledger_id);
    let mut hash_at_claim: Option<Hash> = None;
    // The signed checkpoint's claim: records up to its size, with its chain head and
    // root. A file that does not decode is damage, not "no checkpoint".
    let (signed, unreadable_checkpoint) = match load_checkpoint(dir) {
        Ok(cp) => (cp, None),
        Err(e) => (None, Some(e.to_string())),
    };
    let mut hash_at_signed: Option<Hash> = None;
    let mut root_at_signed: Option<Hash> = None;
    let mut frontier = crate::chain::merkle::Frontier::default();
    // The index's claim, checked against the log if the index is there and readable.
    let claim = if dir.join("index").exists() { Index::open(&dir.join("index")).ok().and_then(|i| i.applied().ok().flatten()) } else { None };
    // This thread checks every link and hash in order; decoder threads (one per core)
    // decode every record (a record must also be well-formed), in chunks.
    let (tx, rx) = std::sync::mpsc::sync_channel::<(u64, Vec<Vec<u8>>)>(64);
    let rx = std::sync::Mutex::new(rx);
    let decoders = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut decoded = Decoded::default();
    let r = std::thread::scope(|s| {
        let handles: Vec<_> = (0..decoders)
            .map(|_| {
                s.spawn(|| -> Decoded {
                    let mut out = Decoded::default();
                    loop {
                        // A poisoned lock means another decoder panicked: stop too.
                        let next = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return out,
                        };
                        let Ok((first, records)) = next else { return out };
                        for (i, bytes) in records.iter().enumerate() {
                            let seq = first + i as u64;
                            match Record::decode(bytes) {
                                Ok(rec) => {
                                    if let Some(n) = rec.event.number() {
                                        out.numbers.push((fingerprint(&n), seq));
                                    }
                                }
                                Err(e) => {
                                    out.undecodable = Some((seq, e.to_string()));
                                    return out;
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        let r = log::scan(&dir.join("log"), &ledger_id, None, false, &mut |f| {
            if f.first_seq != verifier.next_seq() {
                return Err(StoreError::Corruption {
                    at: format!("record {} (segment {:020}.seg, the frame at offset {})", verifier.next_seq(), f.pos.segment, f.pos.offset),
                    why: format!(
                        "the frame starts at record {}: {}",
                        f.first_seq,
                        if f.first_seq < verifier.next_seq() { "records are repeated (a frame duplicated or put back)" } else { "records are missing or out of order" }
                    ),
                });
            }
            report.frames += 1;
            for bytes in &f.records {
                let seq = verifier.next_seq();
                let hash = verifier.check_link(bytes)?;
                if claim.is_some_and(|c| c.seq == seq) {
                    hash_at_claim = Some(hash);
                }
                if signed.as_ref().is_some_and(|c| c.checkpoint.tree_size >= seq) {
                    frontier.push(crate::chain::merkle::leaf_hash(bytes));
                    if signed.as_ref().is_some_and(|c| c.checkpoint.tree_size == seq) {
                        hash_at_signed = Some(hash);
                        root_at_signed = Some(frontier.root());
                    }
                }
                report.records += 1;
            }
            progress(report.records);
            let mut first = f.first_seq;
            let mut records = f.records;
            while !records.is_empty() {
                let rest = records.split_off(records.len().min(1024));
                let n = records.len() as u64;
                // Decoders that stopped (one found a bad record) close the channel.
                let _ = tx.send((first, records));
                first += n;
                records = rest;
            }
            Ok(())
        });
        drop(tx);
        for h in handles {
            let found = h.join().unwrap_or_else(|_| Decoded { undecodable: Some((0, "a decoder thread panicked".into())), numbers: Vec::new() });
            if let Some((seq, why)) = found.undecodable {
                if decoded.undecodable.as_ref().is_none_or(|(s, _)| seq < *s) {
                    decoded.undecodable = Some((seq, why));
                }
            }
            decoded.numbers.extend(found.numbers);
        }
        r
    });
    // The first problem in log order: the decoder only sees frames whose every link
    // checked, so a record it could not decode comes before any other problem.
    let r = match decoded.undecodable {
        Some((seq, why)) => {
            report.records = seq - 1;
            Err(StoreError::Chain(ChainError::Undecodable { seq, why }))
        }
        None => r,
    };
    report.head = verifier.head();
    match r {
        Ok(end) => {
            report.torn_tail = end.cut;
            report.log_signed = end.signed;
        }
        Err(e) => report.error = Some(e.to_string()),
    }
    if report.error.is_none() {
        report.findings = duplicate_findings(dir, &ledger_id, decoded.numbers)?;
    }
    if let Some(c) = claim {
        report.index_agrees = Some(c.seq == 0 || hash_at_claim == Some(c.head));
        // The index is derived, but it was written after the records it names were
        // durable: an index ahead of the log is evidence that the log was cut.
        if report.error.is_none() && c.seq > report.records {
            report.error = Some(format!("the index reflects {} records but the log holds only {}: records are missing (a truncated log?)", c.seq, report.records));
        }
    }
    // The seed of the key the data directory holds, read once: the snapshots' MAC key
    // comes from it, and the checkpoint is checked with it unless a key is pinned.
    let key = dir.join("keys").join("checkpoint.ed25519");
    let seed = std::fs::read(&key).ok().and_then(|b| <[u8; 32]>::try_from(b).ok());
    let dir_key = seed.map(|s| SigningKey::from_bytes(&s).verifying_key());
    // Likewise the newest snapshot that reads back with its MAC (one that does not is
    // passed over by the server too, and proves nothing).
    if let (None, Some(seed)) = (&report.error, seed) {
        let k = crate::store::snapshot::SnapshotKey::from_signing_seed(&seed);
        let newest = crate::store::snapshot::list(dir).unwrap_or_default().into_iter().find_map(|(_, p)| crate::store::snapshot::read(&p, &ledger_id, &k).ok().map(|(h, _)| h.seq));
        if let Some(seq) = newest {
            if seq > report.records {
                report.error = Some(format!("a snapshot of {seq} records exists but the log holds only {}: records are missing (a truncated log?)", report.records));
            }
        }
    }
    report.key_pinned = pinned.is_some();
    if let (Some(p), Some(k), None) = (pinned, dir_key, &report.error) {
        if *p != k {
            report.error = Some(format!("the data directory's signing key ({}) is not the pinned key ({}): it was replaced", crate::chain::checkpoint::key_to_text(&k), crate::chain::checkpoint::key_to_text(p)));
        }
    }
    // A running server may have signed again during the scan (frames read late record
    // it): the file read again then covers them.
    let covered = |cp: &Option<crate::chain::checkpoint::SignedCheckpoint>| cp.as_ref().map_or(0, |cp| cp.checkpoint.tree_size) >= report.log_signed;
    if report.error.is_none() && !covered(&signed) && !covered(&load_checkpoint(dir).ok().flatten()) {
        report.error = Some(format!(
            "the log records that a checkpoint of {} records was signed, but {}: it was deleted, lost or replaced by an older one",
            report.log_signed,
            match &signed {
                Some(cp) => format!("checkpoints/latest covers only {}", cp.checkpoint.tree_size),
                None if dir.join("checkpoints/latest").exists() => "checkpoints/latest does not decode".to_owned(),
                None => "checkpoints/latest is missing".to_owned(),
            }
        ));
    }
    if let (Some(why), None) = (unreadable_checkpoint, &report.error) {
        report.error = Some(format!("checkpoints/latest cannot be read: {why}"));
    }
    if let (Some(cp), None) = (&signed, &report.error) {
        // Every field of the checkpoint is checked: the signature (with the pinned key,
        // or the directory's), the ledger, the size, the chain head and the root.
        let c = &cp.checkpoint;
        let signer = pinned.copied().or(dir_key);
        let by = if pinned.is_some() { "the pinned key".to_owned() } else { key.display().to_string() };
        let genesis = genesis_hash(&ledger_id);
        report.error = if signer.is_none() {
            Some(format!("checkpoints/latest cannot be checked: {} is missing and no key was pinned (--key)", key.display()))
        } else if signer.is_some_and(|k| cp.verify(&k).is_err()) {
            Some(format!("checkpoints/latest does not verify with {by}: the checkpoint is damaged or was signed by another key"))
        } else if c.ledger_id != ledger_id {
            Some(format!("checkpoints/latest is of ledger {:?}, the log of {ledger_id:?}", c.ledger_id))
        } else if c.tree_size > report.records {
            Some(format!("checkpoints/latest signed {} records but the log holds only {}: records are missing (a deleted or truncated segment?)", c.tree_size, report.records))
        } else if (c.tree_size == 0 && c.chain_head != genesis) || (c.tree_size > 0 && hash_at_signed != Some(c.chain_head)) {
            Some(format!("record {} is not the one checkpoints/latest signed: the log was rewritten", c.tree_size))
        } else if c.tree_size > 0 && root_at_signed != Some(c.root) {
            Some(format!("the Merkle root of the log's first {} records is not the one checkpoints/latest signed", c.tree_size))
        } else {
            report.checkpoint = Some(c.tree_size);
            None
        };
    }
    Ok(report)
}

/// Every record whose external number an earlier record already used, described from
/// the records themselves (read again: duplicates are rare, so this costs a second scan
/// only when there are some).
fn duplicate_findings(dir: &Path, ledger_id: &str, mut numbers: Vec<(u128, Seq)>) -> Result<Vec<Finding>, StoreError> {
    numbers.sort_unstable();
    // (later record, first record with the same number)
    let mut pairs: Vec<(Seq, Seq)> = Vec::new();
    for run in numbers.chunk_by(|a, b| a.0 == b.0) {
        for later in &run[1..] {
            pairs.push((later.1, run[0].1));
        }
    }
    if pairs.is_empty() {
        return Ok(Vec::new());
    }
    pairs.sort_unstable();
    let wanted: std::collections::HashSet<Seq> = pairs.iter().map(|p| p.0).collect();
    let mut findings = Vec::with_capacity(pairs.len());
    let mut at = 0;
    log::scan(&dir.join("log"), ledger_id, None, false, &mut |f| {
        for (i, bytes) in f.records.iter().enumerate() {
            let seq = f.first_seq + i as u64;
            if !wanted.contains(&seq) {
                continue;
            }
            let rec = Record::decode(bytes).map_err(|e| StoreError::Chain(ChainError::Undecodable { seq, why: e.to_string() }))?;
            while at < pairs.len() && pairs[at].0 == seq {
                if let Some(n) = rec.event.number() {
                    let d = n.to_duplicate();
                    findings.push(Finding { seq, code: d.kind.duplicate_code(), what: format!("record {seq} ({}): {d} by record {}", rec.event.name(), pairs[at].1) });
                }
                at += 1;
            }
        }
        Ok(())
    })?;
    Ok(findings)
}

/// Deletes the index and the snapshots of `dir` and rebuilds every projection and index
/// entry from the log alone.
///
/// # Errors
/// `StoreError` if the log is damaged or the index cannot be written.
pub fn rebuild(dir: &Path, opts: LedgerOptions) -> Result<Ledger, StoreError> {
    for derived in ["index", "snapshots"] {
        let d = dir.join(derived);
        if d.exists() {
            std::fs::remove_dir_all(&d)?;
        }
    }
    Ledger::open(dir, opts)
}

/// Decodes a record's canonical bytes (for tools that print records).
///
/// # Errors
/// `CodecError` as `Record::decode`.
pub fn decode_record(bytes: &[u8]) -> Result<Record, crate::chain::codec::CodecError> {
    Record::decode(bytes)
}
