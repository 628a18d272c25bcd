//! Verification without trusting the operator: the checks an auditor, a bank holding a
//! receipt, or anyone with an exported archive runs. Nothing here reads the ledger's
//! files or trusts its decoding: it takes canonical bytes, hashes and signatures, and
//! recomputes everything (`docs/FORMAT.md` says how, for re-implementations).

use std::io::{BufRead, Write};
use std::path::Path;

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use crate::chain::checkpoint::{key_from_text, key_to_text, vkey, Checkpoint, CheckpointError, SignedCheckpoint};
use crate::chain::checkpoint_v1;
use crate::chain::merkle::{self, leaf_hash, Frontier, ProofError, TreeHash};
use crate::chain::record::{record_hash, ChainError, ChainVerifier, Hash};

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("a format-1 checkpoint: {0}")]
    CheckpointV1(#[from] checkpoint_v1::CheckpointV1Error),
    #[error("consistency from tree size {from} to {to} fails: {why} (the log was rewritten or forked)")]
    Inconsistent { from: u64, to: u64, why: ProofError },
    #[error("SPLIT VIEW: two checkpoints of {size} records, both signed by the pinned key, with different roots: the operator has shown two histories of the same size (each signed note is evidence; keep both)")]
    SplitView { size: u64 },
    #[error("the new checkpoint's tree size {to} is smaller than the saved {from}: the log went backwards")]
    Backwards { from: u64, to: u64 },
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error("after {size} records the Merkle root differs from the checkpoint's")]
    RootMismatch { size: u64 },
    #[error("the checkpoint's chain head is not the hash of record {size}")]
    HeadMismatch { size: u64 },
    #[error("expected records up to {expected}, got {got}: records are missing (the log was truncated)")]
    Missing { expected: u64, got: u64 },
    #[error("record {seq}: {why}")]
    Receipt { seq: u64, why: String },
    #[error("inclusion of record {seq} in tree size {size}: {why}")]
    Inclusion { seq: u64, size: u64, why: ProofError },
    #[error("archive line {line}: {why}")]
    Archive { line: usize, why: String },
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("the saved audit state {path}: {why} (it is damaged: restore it, or start again from genesis without it)")]
    SavedState { path: String, why: String },
}

/// What an auditor keeps between visits (state format 2; a format-1 state, written
/// before checkpoints were signed notes, is read and upgraded: `saved`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AuditState {
    /// 2; absent in a format-1 state.
    #[serde(default = "state_format_1")]
    pub version: u32,
    pub ledger_id: String,
    /// The pinned key, as given (`ed25519:<hex>` or a verifier key).
    pub public_key: String,
    /// Format 2: the last checkpoint verified, as its signed note.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub checkpoint: String,
    /// Format 1: the last checkpoint verified (its canonical bytes, hex).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub checkpoint_hex: String,
    /// The tree's compact range at that size, so new records extend it without rehashing.
    pub frontier: Frontier,
    /// Hash of the last record verified.
    pub chain_head_hex: String,
}

fn state_format_1() -> u32 {
    1
}

/// The checkpoint an auditor saved: today's, or a format-1 one to re-verify from genesis.
#[derive(Clone, Debug)]
pub enum Saved {
    Note(SignedCheckpoint),
    V1(checkpoint_v1::SignedCheckpoint),
}

impl Saved {
    pub fn tree_size(&self) -> u64 {
        match self {
            Saved::Note(c) => c.checkpoint.tree_size,
            Saved::V1(c) => c.checkpoint.tree_size,
        }
    }
}

impl AuditState {
    /// Reads and checks a saved state: every field must decode, so that a damaged file
    /// is an error naming it, never a panic later.
    ///
    /// # Errors
    /// `AuditError::SavedState` naming the file and what is wrong; `Io` if unreadable.
    pub fn load(path: &std::path::Path) -> Result<AuditState, AuditError> {
        let bad = |why: String| AuditError::SavedState { path: path.display().to_string(), why };
        let text = std::fs::read_to_string(path)?;
        let s: AuditState = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        s.saved().map_err(|e| bad(e.to_string()))?;
        s.chain_head().map_err(|e| bad(e.to_string()))?;
        Ok(s)
    }

    /// Saves the state so that a crash leaves the old one or the new one whole.
    ///
    /// # Errors
    /// `Io`.
    pub fn save(&self, path: &std::path::Path) -> Result<(), AuditError> {
        let json = serde_json::to_string_pretty(self).map_err(|e| AuditError::SavedState { path: path.display().to_string(), why: e.to_string() })?;
        crate::fsutil::write_atomic(path, json.as_bytes(), &self.ledger_id)?;
        Ok(())
    }

    /// The last checkpoint verified.
    ///
    /// # Errors
    /// `SavedState` if the saved text or bytes are not a signed checkpoint of the state's
    /// format.
    pub fn saved(&self) -> Result<Saved, AuditError> {
        match self.version {
            1 => {
                let bad = |why: String| AuditError::SavedState { path: "checkpoint_hex".into(), why };
                let bytes = hex::decode(&self.checkpoint_hex).map_err(|e| bad(format!("not hex: {e}")))?;
                crate::chain::codec::decode(&bytes).map(Saved::V1).map_err(|e| bad(format!("not a signed checkpoint: {e}")))
            }
            2 => SignedCheckpoint::from_note(self.checkpoint.as_bytes()).map(Saved::Note).map_err(|e| AuditError::SavedState { path: "checkpoint".into(), why: e.to_string() }),
            v => Err(AuditError::SavedState { path: "version".into(), why: format!("state format {v} (this build reads 1 and 2)") }),
        }
    }

    /// The last checkpoint verified, of a state in today's format.
    ///
    /// # Errors
    /// `SavedState` if it is not one.
    pub fn checkpoint(&self) -> Result<SignedCheckpoint, AuditError> {
        match self.saved()? {
            Saved::Note(c) => Ok(c),
            Saved::V1(_) => Err(AuditError::SavedState { path: "checkpoint_hex".into(), why: "a format-1 state: re-verify from genesis (`Catchup::upgrading`)".into() }),
        }
    }

    fn chain_head(&self) -> Result<Hash, AuditError> {
        let mut head = [0u8; 32];
        hex::decode_to_slice(&self.chain_head_hex, &mut head).map_err(|e| AuditError::SavedState { path: "chain_head_hex".into(), why: format!("not 64 hex digits: {e}") })?;
        Ok(head)
    }
}

/// Checks a checkpoint's signature and ledger.
///
/// # Errors
/// `AuditError::Checkpoint`.
pub fn check_checkpoint(cp: &SignedCheckpoint, key: &VerifyingKey, ledger_id: &str) -> Result<(), AuditError> {
    cp.verify(key)?;
    if cp.checkpoint.ledger_id != ledger_id {
        return Err(CheckpointError::WrongLedger { expected: ledger_id.into(), found: cp.checkpoint.ledger_id.clone() }.into());
    }
    Ok(())
}

/// Verifies records one by one from a known position and rebuilds the tree as it goes.
pub struct Catchup {
    verifier: ChainVerifier,
    frontier: Frontier,
    kind: TreeHash,
    /// Upgrading a format-1 state: the format-1 tree built alongside, checked against the
    /// saved checkpoint when it reaches its size.
    v1: Option<(Frontier, checkpoint_v1::Checkpoint)>,
}

impl Catchup {
    /// From the beginning of a ledger.
    pub fn from_genesis(ledger_id: &str) -> Catchup {
        Catchup { verifier: ChainVerifier::new(ledger_id), frontier: Frontier::default(), kind: TreeHash::Sha256, v1: None }
    }

    /// From the beginning, in the format-1 tree (a version-1 archive).
    fn from_genesis_v1(ledger_id: &str) -> Catchup {
        Catchup { kind: TreeHash::Blake3V1, ..Catchup::from_genesis(ledger_id) }
    }

    /// From the beginning, also checking that the records give the format-1 checkpoint an
    /// auditor saved before checkpoints were signed notes: its history is then this one.
    pub fn upgrading(ledger_id: &str, saved: &checkpoint_v1::SignedCheckpoint) -> Catchup {
        Catchup { v1: Some((Frontier::default(), saved.checkpoint.clone())), ..Catchup::from_genesis(ledger_id) }
    }

    /// From a saved state.
    ///
    /// # Errors
    /// `SavedState` if its chain head is not 32 bytes of hex.
    pub fn from_state(s: &AuditState) -> Result<Catchup, AuditError> {
        Ok(Catchup { verifier: ChainVerifier::resume(s.frontier.size + 1, s.chain_head()?), frontier: s.frontier.clone(), kind: TreeHash::Sha256, v1: None })
    }

    /// The next record's canonical bytes.
    ///
    /// # Errors
    /// `AuditError::Chain` naming the record.
    pub fn feed(&mut self, canonical: &[u8]) -> Result<Hash, AuditError> {
        self.feed_decoded(canonical).map(|(_, h)| h)
    }

    /// `feed`, also giving the record decoded.
    ///
    /// # Errors
    /// As `feed`.
    pub fn feed_decoded(&mut self, canonical: &[u8]) -> Result<(crate::chain::record::Record, Hash), AuditError> {
        let (rec, h) = self.verifier.check(canonical)?;
        self.push(self.kind.leaf(canonical, &h), &h)?;
        Ok((rec, h))
    }

    /// The next record, withheld from this reader (`RecordBytes.withheld`): its header,
    /// its chain hash and its Merkle leaf (`ChainVerifier::accept_withheld`). The hash is
    /// bound by the next record's link and the signed chain head, the leaf by the signed
    /// root; that the two are of the same bytes only a reader of the record can check.
    ///
    /// # Errors
    /// `AuditError::Chain` naming the record.
    pub fn feed_withheld(&mut self, header: &[u8], hash: Hash, leaf: Hash) -> Result<(), AuditError> {
        self.verifier.accept_withheld(header, hash)?;
        self.push(leaf, &hash)
    }

    fn push(&mut self, leaf: Hash, hash: &Hash) -> Result<(), AuditError> {
        self.frontier.push_as(self.kind, leaf);
        if let Some((tree, old)) = &mut self.v1 {
            if tree.size < old.tree_size {
                tree.push_as(TreeHash::Blake3V1, TreeHash::Blake3V1.leaf(&[], hash));
                if tree.size == old.tree_size && (tree.root_as(TreeHash::Blake3V1) != old.root || *hash != old.chain_head) {
                    return Err(AuditError::Inconsistent { from: old.tree_size, to: self.frontier.size, why: ProofError::RootMismatch });
                }
            }
        }
        Ok(())
    }

    pub fn size(&self) -> u64 {
        self.frontier.size
    }

    /// The root of the tree fed so far.
    pub fn root(&self) -> Hash {
        self.frontier.root_as(self.kind)
    }

    /// Checks that what was fed is exactly a tree of `size` with this root and chain head.
    fn check_end(&self, size: u64, root: &Hash, chain_head: &Hash) -> Result<(), AuditError> {
        if self.frontier.size != size {
            return Err(AuditError::Missing { expected: size, got: self.frontier.size });
        }
        if self.frontier.root_as(self.kind) != *root {
            return Err(AuditError::RootMismatch { size });
        }
        if self.verifier.head() != *chain_head {
            return Err(AuditError::HeadMismatch { size });
        }
        if let Some((tree, old)) = &self.v1 {
            if tree.size < old.tree_size {
                return Err(AuditError::Backwards { from: old.tree_size, to: size });
            }
        }
        Ok(())
    }

    /// Checks that what was fed is exactly what `cp` commits to, and returns the new state.
    ///
    /// # Errors
    /// `Missing`, `RootMismatch` or `HeadMismatch`; `Backwards` if upgrading a format-1
    /// state and the log is now shorter than it was.
    pub fn finish(self, cp: &SignedCheckpoint, public_key: &str) -> Result<AuditState, AuditError> {
        let c = &cp.checkpoint;
        self.check_end(c.tree_size, &c.root, &c.chain_head)?;
        Ok(AuditState {
            version: 2,
            ledger_id: c.ledger_id.clone(),
            public_key: public_key.to_owned(),
            checkpoint: cp.to_note(),
            checkpoint_hex: String::new(),
            frontier: self.frontier,
            chain_head_hex: hex::encode(self.verifier.head()),
        })
    }
}

/// Checks that `new` extends the saved checkpoint, by its consistency proof.
///
/// # Errors
/// `Backwards` or `Inconsistent` naming the sizes.
pub fn check_consistency(old: &Checkpoint, new: &Checkpoint, proof: &[Hash]) -> Result<(), AuditError> {
    let (from, to) = (old.tree_size, new.tree_size);
    if to < from {
        return Err(AuditError::Backwards { from, to });
    }
    if from == 0 {
        return Ok(());
    }
    if from == to && old.root != new.root {
        return Err(AuditError::SplitView { size: to });
    }
    merkle::verify_consistency(from, to, &old.root, &new.root, proof).map_err(|why| AuditError::Inconsistent { from, to, why })
}

/// A bank's check of its receipt: record `seq`'s bytes hash to the receipt's chain head,
/// and the record is in the tree of a checkpoint signed by the pinned key.
///
/// # Errors
/// `Receipt`, `Inclusion` or `Checkpoint`.
pub fn check_receipt(seq: u64, chain_head: &Hash, canonical: &[u8], proof: &[Hash], cp: &SignedCheckpoint, key: &VerifyingKey) -> Result<(), AuditError> {
    cp.verify(key)?;
    let rec = crate::chain::record::Record::decode(canonical).map_err(|e| AuditError::Receipt { seq, why: e.to_string() })?;
    if rec.seq != seq {
        return Err(AuditError::Receipt { seq, why: format!("the bytes are of record {}", rec.seq) });
    }
    let h = record_hash(canonical);
    if &h != chain_head {
        return Err(AuditError::Receipt { seq, why: "its hash is not the chain head of the receipt".into() });
    }
    let size = cp.checkpoint.tree_size;
    merkle::verify_inclusion(&leaf_hash(canonical), seq - 1, size, proof, &cp.checkpoint.root).map_err(|why| AuditError::Inclusion { seq, size, why })
}

/// The first line of an archive.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ArchiveHeader {
    /// `anxin-archive`.
    pub format: String,
    /// 2 (1: checkpoint format 1, still read).
    pub version: u32,
    pub ledger_id: String,
    /// The ledger's key: a verifier key (version 2) or `ed25519:<hex>` (version 1).
    pub public_key: String,
    /// Version 2: the signed checkpoint the archive ends at, as its signed note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
    /// Version 1: the signed checkpoint's canonical bytes, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_hex: Option<String>,
    pub tree_size: u64,
    pub root_hex: String,
}

/// The archive version this build writes.
pub const ARCHIVE_VERSION: u32 = 2;

/// Writes an archive: a JSON header line, then one line per record: `{"seq":N,"hex":"..."}`.
///
/// # Errors
/// I/O errors.
pub fn write_archive(out: &mut dyn Write, key: &VerifyingKey, cp: &SignedCheckpoint, records: &mut dyn Iterator<Item = (u64, Vec<u8>)>) -> Result<u64, AuditError> {
    let c = &cp.checkpoint;
    let header = ArchiveHeader {
        format: "anxin-archive".into(),
        version: ARCHIVE_VERSION,
        ledger_id: c.ledger_id.clone(),
        public_key: vkey(&c.ledger_id, key),
        checkpoint: Some(cp.to_note()),
        checkpoint_hex: None,
        tree_size: c.tree_size,
        root_hex: hex::encode(c.root),
    };
    writeln!(out, "{}", serde_json::to_string(&header).expect("serializable"))?;
    let mut n = 0;
    for (seq, bytes) in records {
        writeln!(out, "{{\"seq\":{seq},\"hex\":\"{}\"}}", hex::encode(bytes))?;
        n += 1;
    }
    Ok(n)
}

#[derive(Clone, Debug)]
pub struct ArchiveReport {
    pub ledger_id: String,
    pub records: u64,
    pub root: Hash,
    pub public_key: String,
    /// The archive's version (1: a BLAKE3 tree and a binary checkpoint).
    pub version: u32,
}

/// What the header's checkpoint commits to, whichever its format.
struct Signed {
    ledger_id: String,
    tree_size: u64,
    root: Hash,
    chain_head: Hash,
}

/// The header's checkpoint, its signature checked with `key`.
fn header_checkpoint(header: &ArchiveHeader, key: &VerifyingKey) -> Result<Signed, AuditError> {
    let bad = |why: &str| AuditError::Archive { line: 1, why: why.into() };
    if header.version == 1 {
        let cp: checkpoint_v1::SignedCheckpoint = header
            .checkpoint_hex
            .as_deref()
            .and_then(|h| hex::decode(h).ok())
            .and_then(|b| crate::chain::codec::decode(&b).ok())
            .ok_or_else(|| bad("checkpoint_hex is not a signed checkpoint"))?;
        cp.verify(key).map_err(|_| CheckpointError::BadSignature)?;
        let c = cp.checkpoint;
        return Ok(Signed { ledger_id: c.ledger_id, tree_size: c.tree_size, root: c.root, chain_head: c.chain_head });
    }
    let cp = SignedCheckpoint::from_note(header.checkpoint.as_deref().ok_or_else(|| bad("no checkpoint"))?.as_bytes()).map_err(|e| bad(&format!("checkpoint: {e}")))?;
    cp.verify(key)?;
    let c = cp.checkpoint;
    Ok(Signed { ledger_id: c.ledger_id, tree_size: c.tree_size, root: c.root, chain_head: c.chain_head })
}

/// Verifies an archive offline: the signature (against `pinned` if given, else the key the
/// archive carries), the chain of every record, and the Merkle root. Reads versions 1
/// (BLAKE3 tree, binary checkpoint) and 2 (RFC 6962 tree, signed note).
///
/// # Errors
/// `AuditError` naming the record or size at fault.
pub fn verify_archive(path: &Path, pinned: Option<&VerifyingKey>, progress: &mut dyn FnMut(u64)) -> Result<ArchiveReport, AuditError> {
    let f = std::io::BufReader::new(std::fs::File::open(path)?);
    let mut lines = f.lines();
    let first = lines.next().ok_or(AuditError::Archive { line: 1, why: "empty file".into() })??;
    let header: ArchiveHeader = serde_json::from_str(&first).map_err(|e| AuditError::Archive { line: 1, why: e.to_string() })?;
    if header.format != "anxin-archive" || !(1..=ARCHIVE_VERSION).contains(&header.version) {
        return Err(AuditError::Archive { line: 1, why: format!("not an anxin-archive of version 1 or 2 ({} v{})", header.format, header.version) });
    }
    let carried = key_from_text(&header.public_key).map_err(|why| AuditError::Archive { line: 1, why })?;
    if pinned.is_some_and(|p| *p != carried) {
        return Err(AuditError::Archive { line: 1, why: format!("public_key {} is not the pinned key", header.public_key.chars().take(80).collect::<String>()) });
    }
    let key = pinned.unwrap_or(&carried);
    let cp = header_checkpoint(&header, key)?;
    if cp.ledger_id != header.ledger_id {
        return Err(CheckpointError::WrongLedger { expected: header.ledger_id.clone(), found: cp.ledger_id }.into());
    }
    // The header's plain copies of what is signed must say the same: a reader that
    // trusted them would be misled.
    if header.tree_size != cp.tree_size {
        return Err(AuditError::Archive { line: 1, why: format!("tree_size {} is not the signed checkpoint's {}", header.tree_size, cp.tree_size) });
    }
    if header.root_hex != hex::encode(cp.root) {
        return Err(AuditError::Archive { line: 1, why: format!("root_hex {} is not the signed checkpoint's root", header.root_hex.chars().take(64).collect::<String>()) });
    }
    let mut c = if header.version == 1 { Catchup::from_genesis_v1(&header.ledger_id) } else { Catchup::from_genesis(&header.ledger_id) };
    #[derive(Deserialize)]
    struct Line {
        seq: u64,
        hex: String,
    }
    for (i, line) in lines.enumerate() {
        let line = line?;
        let l: Line = serde_json::from_str(&line).map_err(|e| AuditError::Archive { line: i + 2, why: e.to_string() })?;
        let bytes = hex::decode(&l.hex).map_err(|e| AuditError::Archive { line: i + 2, why: e.to_string() })?;
        c.feed(&bytes)?;
        // The line's `seq` is a plain copy of the record's own (checked by the chain
        // first, so a missing or swapped record is named as such): both must agree.
        if l.seq != c.size() {
            return Err(AuditError::Archive { line: i + 2, why: format!("the line says seq {} but the record is {}", l.seq, c.size()) });
        }
        if c.size().is_multiple_of(65_536) {
            progress(c.size());
        }
    }
    let records = c.size();
    c.check_end(cp.tree_size, &cp.root, &cp.chain_head)?;
    let public_key = if header.version == 1 { key_to_text(key) } else { vkey(&header.ledger_id, key) };
    Ok(ArchiveReport { ledger_id: header.ledger_id, records, root: cp.root, public_key, version: header.version })
}
