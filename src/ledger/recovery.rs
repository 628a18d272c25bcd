//! Recovery: what `Ledger::open` does before the writer starts.
//!
//! It loads the newest whole snapshot of the projections, then replays only the log after
//! it and after the position the sled index reflects (all of it if both are gone),
//! verifying the chain as it goes and cutting a torn, never-acknowledged tail. One thread
//! reads, decodes and hashes frames; this one checks the chain and applies. Then it
//! checks the log against the latest signed checkpoint (never shorter, same root) and
//! the key against that checkpoint's signature.

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use ed25519_dalek::SigningKey;

use crate::chain::checkpoint::SignedCheckpoint;
use crate::chain::merkle::{self, Leaf};
use crate::chain::record::{genesis_hash, record_hash, ChainVerifier, Hash, Record};
use crate::domain::ids::LedgerId;
use crate::projection::state::{Seq, State};
use crate::store::index::{Applied, Index, IndexBatch};
use crate::store::log::{self, LogWriter, Position};
use crate::store::merkle::MerkleWriter;
use crate::store::snapshot::SnapshotKey;
use crate::store::StoreError;

use super::requests::RequestRuns;
use super::signer::{self, TreeHead};
use super::{LedgerOptions, Recovery};

/// Everything the writer and the handle start from.
pub(super) struct Recovered {
    pub ledger_id: LedgerId,
    pub index: Index,
    pub state: State,
    pub log: LogWriter,
    pub merkle: MerkleWriter,
    pub tree: TreeHead,
    /// The record the newest snapshot reflects.
    pub snapshot_seq: Seq,
    pub signing_key: SigningKey,
    pub snapshot_key: SnapshotKey,
    pub checkpoint: SignedCheckpoint,
    pub recovery: Recovery,
}

/// A point in the log some derived store reflects: every record up to `seq`, whose hash
/// is `head`, ending at `pos` (`None`: the log's start).
#[derive(Clone, Copy, Debug)]
struct Mark {
    seq: Seq,
    head: Hash,
    pos: Option<Position>,
}

impl Mark {
    fn genesis(ledger_id: &LedgerId) -> Mark {
        Mark { seq: 0, head: genesis_hash(ledger_id.as_str()), pos: None }
    }
}

/// Reads (or, for a new data directory, writes) the `LEDGER` file.
pub(super) fn read_ledger_id(dir: &Path, wanted: Option<&str>) -> Result<LedgerId, StoreError> {
    let path = dir.join("LEDGER");
    if path.exists() {
        let text = std::fs::read_to_string(&path).map_err(|e| StoreError::DataDir(format!("{}: {e}", path.display())))?;
        return LedgerId::parse(text.trim()).map_err(|e| StoreError::DataDir(format!("{}: {e}", path.display())));
    }
    if !log::list_segments(&dir.join("log"))?.is_empty() {
        return Err(StoreError::DataDir(format!("{} is missing but the log exists: restore it from a backup", path.display())));
    }
    let id = match wanted {
        Some(id) => id.to_owned(),
        None => {
            let mut r = [0u8; 8];
            getrandom::getrandom(&mut r).map_err(|e| StoreError::DataDir(format!("no randomness: {e}")))?;
            format!("anxin-{}", hex::encode(r))
        }
    };
    let id = LedgerId::parse(&id).map_err(|e| StoreError::DataDir(format!("{e}: 1-64 printable ASCII characters")))?;
    crate::fsutil::write_atomic(&path, format!("{id}\n").as_bytes(), id.as_str())?;
    Ok(id)
}

/// Writes the `LEDGER` file of a new data directory (a restore).
pub(crate) fn create_ledger_id(dir: &Path, id: &str) -> Result<(), StoreError> {
    if dir.join("LEDGER").exists() {
        return Err(StoreError::DataDir(format!("{} exists", dir.join("LEDGER").display())));
    }
    read_ledger_id(dir, Some(id)).map(|_| ())
}

/// Every segment the index knows of is there. A replay reads only the segments after the
/// index's position, so a segment missing before it would go unnoticed until its records
/// were read; one index lookup per segment boundary finds it at the start instead.
fn check_segments(log_dir: &Path, index: &Index, indexed: Seq) -> Result<(), StoreError> {
    let segments = log::list_segments(log_dir)?;
    let missing = |seg: u64, why: String| StoreError::Corruption { at: log::segment_path(log_dir, seg).display().to_string(), why };
    if let Some(&first) = segments.first() {
        if first != 1 {
            return Err(missing(1, format!("is missing: records 1 to {} are gone; restore the log from a backup", first - 1)));
        }
    }
    for pair in segments.windows(2) {
        let (this, next) = (pair[0], pair[1]);
        if next - 1 > indexed {
            break;
        }
        if let Some((first, pos, count)) = index.frame_of(next - 1)? {
            if pos.segment != this || first + u64::from(count) != next {
                return Err(missing(pos.segment, format!("is missing: the index has records {first} to {} in it; restore the log from a backup", first + u64::from(count) - 1)));
            }
        }
    }
    Ok(())
}

/// A frame whose records were decoded and hashed by the scanning thread.
struct DecodedFrame {
    pos: Position,
    end: u64,
    first_seq: Seq,
    /// Each record decoded, with its chain hash and its Merkle leaf.
    records: Vec<(Result<Record, crate::chain::codec::CodecError>, Hash, Leaf)>,
}

impl DecodedFrame {
    fn of(f: log::Frame) -> DecodedFrame {
        let records = f.records.iter().map(|b| (Record::decode(b), record_hash(b), Leaf::of_record(b))).collect();
        DecodedFrame { pos: f.pos, end: f.end, first_seq: f.first_seq, records }
    }
}

/// Replays frames: records after the snapshot into the state, records after the index's
/// position into an index batch (frame positions and idempotency entries). A request
/// never spans two frames, so every request is closed at its frame's end.
struct Replayer<'a> {
    state: &'a mut State,
    merkle: &'a mut MerkleWriter,
    verifier: ChainVerifier,
    batch: IndexBatch,
    /// What the state already holds (a snapshot); its head is checked against the log
    /// when the replay passes it.
    snapshot: Mark,
    /// What the index already holds.
    indexed: Seq,
    replayed: u64,
    reindexed: u64,
    last_end: Option<Position>,
}

impl Replayer<'_> {
    fn frame(&mut self, frame: DecodedFrame, index: &Index) -> Result<(), StoreError> {
        if frame.first_seq != self.verifier.next_seq() {
            return Err(StoreError::Corruption {
                at: format!("segment {:020}.seg offset {}", frame.pos.segment, frame.pos.offset),
                why: format!("frame starts at record {} but record {} was expected", frame.first_seq, self.verifier.next_seq()),
            });
        }
        let to_index = frame.first_seq > self.indexed;
        if to_index {
            self.batch.frame(frame.first_seq, frame.pos, frame.records.len() as u32);
        }
        let mut requests = to_index.then(RequestRuns::default);
        for (decoded, hash, leaf) in frame.records {
            let rec = self.verifier.accept(decoded, hash)?;
            if rec.seq > self.snapshot.seq {
                self.state.apply(&rec.event, rec.seq);
                self.replayed += 1;
            } else if rec.seq == self.snapshot.seq && hash != self.snapshot.head {
                return Err(StoreError::Corruption {
                    at: format!("record {}", rec.seq),
                    why: "the newest snapshot names another chain head for this record: the log was rewritten after it (move snapshots/ away to replay the log alone)".into(),
                });
            }
            if rec.seq == self.merkle.size() + 1 {
                self.merkle.push(leaf);
            }
            if let Some(r) = requests.as_mut() {
                r.push(&rec, hash);
                self.reindexed += 1;
            }
        }
        for (key, entry) in requests.map(RequestRuns::finish).unwrap_or_default() {
            self.batch.idem(&key, &entry);
        }
        self.last_end = Some(Position { segment: frame.pos.segment, offset: frame.end });
        if self.batch.entries > 50_000 {
            self.flush(index)?;
        }
        Ok(())
    }

    /// Writes what was replayed into the index so far, with the position it reflects.
    fn flush(&mut self, index: &Index) -> Result<(), StoreError> {
        let Some(end) = self.last_end else { return Ok(()) };
        if self.verifier.next_seq() - 1 <= self.indexed {
            return Ok(());
        }
        let mut batch = std::mem::take(&mut self.batch);
        batch.applied(Applied { seq: self.verifier.next_seq() - 1, head: self.verifier.head(), log_end: end });
        index.apply(batch)
    }
}

/// Opens the index of `dir`, checking that it belongs to this ledger.
fn open_index(dir: &Path, ledger_id: &LedgerId) -> Result<Index, StoreError> {
    let index = Index::open(&dir.join("index"))?;
    match index.ledger_id()? {
        Some(id) if id != ledger_id.as_str() => Err(StoreError::Corruption {
            at: "index".into(),
            why: format!("the index belongs to ledger {id:?}, the log to {:?}: delete index/ to rebuild it", ledger_id.as_str()),
        }),
        Some(_) => Ok(index),
        None => {
            index.set_ledger_id(ledger_id.as_str())?;
            Ok(index)
        }
    }
}

/// The signing key, checked against the latest checkpoint: a ledger that has signed
/// must keep its key (a new one would break every auditor's pinned key).
fn signing_key(dir: &Path, opts: &LedgerOptions, ledger_id: &LedgerId, latest: Option<&SignedCheckpoint>) -> Result<SigningKey, StoreError> {
    let key_path: PathBuf = opts.signing_key.clone().unwrap_or_else(|| dir.join("keys").join("checkpoint.ed25519"));
    // Only a new ledger gets a new key: one with a log has signed (its first start did),
    // even if its checkpoint is gone now.
    let is_new = !signer::checkpoint_path(dir).exists() && log::list_segments(&dir.join("log"))?.is_empty();
    let key = signer::load_or_create_key(&key_path, is_new, ledger_id.as_str())?;
    if let Some(cp) = latest {
        if cp.verify(&key.verifying_key()).is_err() {
            // A damaged checkpoint and a replaced key look alike here; a snapshot made
            // with this key (its MAC key comes from the seed) tells them apart.
            let snapshot_key = SnapshotKey::from_signing_seed(&key.to_bytes());
            let key_wrote_snapshots = crate::store::snapshot::list(dir)?.iter().any(|(_, p)| crate::store::snapshot::read(p, ledger_id.as_str(), &snapshot_key).is_ok());
            return Err(if key_wrote_snapshots {
                StoreError::Corruption {
                    at: "checkpoints/latest".into(),
                    why: format!("its signature does not verify with the key at {}, which made this ledger's snapshots: the checkpoint is damaged; restore it from a backup", key_path.display()),
                }
            } else {
                StoreError::DataDir(format!(
                    "checkpoints/latest does not verify with the key at {}: the checkpoint is damaged or the signing key was replaced (`anxin verify --data --key <the auditors' pinned key>` tells which); restore the original from a backup",
                    key_path.display()
                ))
            });
        }
    }
    Ok(key)
}

/// The replay resumes after record `from.seq`, trusting a snapshot or the index for
/// everything before it: that record must still be in the log and hash to the head they
/// name, or the log under them was damaged or rewritten (one frame read, found through
/// the index). The whole log is checked again in the background (`scrub`). Returns the
/// signed checkpoint size the anchor's frame records (`log::Frame::signed`).
fn check_anchor(log_dir: &Path, ledger_id: &LedgerId, index: &Index, from: Mark) -> Result<u64, StoreError> {
    if from.seq == 0 {
        return Ok(0);
    }
    let Some((_, pos, _)) = index.frame_of(from.seq)? else { return Ok(0) };
    let mut found: Option<Hash> = None;
    let scan = log::scan_while(log_dir, ledger_id.as_str(), Some(pos), false, &mut |f| {
        let last = f.first_seq + f.records.len() as u64 - 1;
        if (f.first_seq..=last).contains(&from.seq) {
            found = Some(record_hash(&f.records[(from.seq - f.first_seq) as usize]));
            return Ok(false);
        }
        Ok(last < from.seq)
    })?;
    match found {
        Some(h) if h == from.head => Ok(scan.signed),
        Some(_) => Err(StoreError::Corruption {
            at: format!("record {}", from.seq),
            why: "it does not hash to the head the snapshot or index names: the log under them was damaged or rewritten (run `anxin verify --data`)".into(),
        }),
        None => Err(StoreError::Corruption {
            at: format!("record {}", from.seq),
            why: "acknowledged records are damaged or missing: the snapshot or index reaches this record but the log does not hold it (the log was truncated or replaced); nothing was cut".into(),
        }),
    }
}

/// The chain hash of record `seq`, read from the log (found through the index).
fn record_hash_at(log_dir: &Path, ledger_id: &LedgerId, index: &Index, seq: Seq) -> Result<Option<Hash>, StoreError> {
    let start = index.frame_of(seq)?.map(|(_, pos, _)| pos);
    let mut found = None;
    log::scan_while(log_dir, ledger_id.as_str(), start, false, &mut |f| {
        if let Some(bytes) = seq.checked_sub(f.first_seq).and_then(|i| f.records.get(i as usize)) {
            found = Some(record_hash(bytes));
        }
        Ok(found.is_none() && f.first_seq <= seq)
    })?;
    Ok(found)
}

/// Appends to `merkle` the leaves of records `merkle.size() + 1 ..= upto`, hashed from the
/// log (found through the index), and flushes.
fn push_leaves_from_log(log_dir: &Path, ledger_id: &LedgerId, index: &Index, merkle: &mut MerkleWriter, upto: Seq) -> Result<(), StoreError> {
    if merkle.size() < upto {
        let start = index.frame_of(merkle.size() + 1)?.map(|(_, pos, _)| pos);
        log::scan_while(log_dir, ledger_id.as_str(), start, false, &mut |f| {
            for (i, bytes) in f.records.iter().enumerate() {
                let seq = f.first_seq + i as u64;
                if seq > upto {
                    return Ok(false);
                }
                if seq == merkle.size() + 1 {
                    merkle.push(Leaf::of_record(bytes));
                }
            }
            Ok(merkle.size() < upto)
        })?;
    }
    merkle.flush()
}

/// Recovers the ledger in `dir` (see the module doc).
///
/// The index is derived: when sled cannot read it, or the record it anchors the replay
/// to does not check, a second attempt runs without it (it is moved to `index.suspect`),
/// reading and checking the whole log from its first record into a new index. If that
/// succeeds, the index was at fault and is kept for a look as `index.damaged-<n>`; if
/// it fails, the log is, the index is put back as it was, and the start is refused with
/// what the log's fault is.
pub(super) fn recover(dir: &Path, opts: &LedgerOptions) -> Result<Recovered, StoreError> {
    let (index_dir, suspect) = (dir.join("index"), dir.join("index.suspect"));
    // Left by a start that died in its second attempt: the index it was building is
    // whole as far as it goes (sled batches); the suspect one is not needed.
    if suspect.exists() {
        std::fs::remove_dir_all(&suspect)?;
    }
    let mut anchor_failure: Option<StoreError> = None;
    match recover_once(dir, opts, &mut anchor_failure) {
        Err(first @ StoreError::Index(_)) if index_dir.exists() => {
            std::fs::rename(&index_dir, &suspect)?;
            crate::fsutil::sync_dir(dir)?;
            match recover_once(dir, opts, &mut None) {
                Ok(r) => {
                    let aside = (1..).map(|n| dir.join(format!("index.damaged-{n}"))).find(|p| !p.exists()).expect("a free name");
                    std::fs::rename(&suspect, &aside)?;
                    crate::fsutil::sync_dir(dir)?;
                    tracing::warn!(error = %anchor_failure.as_ref().unwrap_or(&first), aside = %aside.display(), "the index could not be believed: rebuilt from the whole log, the old one set aside");
                    Ok(r)
                }
                Err(second) => {
                    if index_dir.exists() {
                        std::fs::remove_dir_all(&index_dir)?;
                    }
                    std::fs::rename(&suspect, &index_dir)?;
                    crate::fsutil::sync_dir(dir)?;
                    // The anchor's failure says best what happened to the log (a cut, a
                    // rewrite); an unreadable index says nothing about it.
                    Err(anchor_failure.unwrap_or(second))
                }
            }
        }
        other => other,
    }
}

/// One attempt. A failure that may be the index's is returned as `StoreError::Index`;
/// if it is the record the index anchors to, the error itself goes to `anchor_failure`.
fn recover_once(dir: &Path, opts: &LedgerOptions, anchor_failure: &mut Option<StoreError>) -> Result<Recovered, StoreError> {
    crate::fsutil::create_private_dir(dir)?;
    let ledger_id = read_ledger_id(dir, opts.ledger_id.as_deref())?;
    let index = open_index(dir, &ledger_id)?;
    let applied = index.applied()?;
    // A format-1 checkpoint is checked against the log and re-signed in format 2 first.
    super::upgrade::checkpoint_v1(dir, opts, &ledger_id)?;
    // The latest signed checkpoint, read once: the key, the torn-tail rule, the Merkle
    // files and the log are all checked against it below.
    let latest = signer::load_checkpoint(dir)?;
    let signing_key = signing_key(dir, opts, &ledger_id, latest.as_ref())?;
    let snapshot_key = SnapshotKey::from_signing_seed(&signing_key.to_bytes());
    // The newest snapshot that reads back whole with its MAC; without one, the log is
    // replayed from its start.
    let snapshot = crate::store::snapshot::load_newest(dir, ledger_id.as_str(), &snapshot_key)?;
    let (snapshot_mark, state) = match snapshot {
        Some((h, st)) => (Mark { seq: h.seq, head: h.head, pos: Some(h.log_end()) }, Some(st)),
        None => (Mark::genesis(&ledger_id), None),
    };
    let index_mark = applied.map_or(Mark::genesis(&ledger_id), |a| Mark { seq: a.seq, head: a.head, pos: Some(a.log_end) });
    // Replay from whichever of the two is behind.
    let from = match &state {
        Some(_) if snapshot_mark.seq <= index_mark.seq => snapshot_mark,
        Some(_) => index_mark,
        None => Mark::genesis(&ledger_id),
    };
    let mut state = state.unwrap_or_default();
    let log_dir = dir.join("log");
    check_segments(&log_dir, &index, index_mark.seq)?;
    // The anchor is found through the index: if it does not check, the index is suspect
    // first (the second attempt, without it, reads the whole log and names log damage).
    let anchor_signed = match check_anchor(&log_dir, &ledger_id, &index, from) {
        Ok(s) => s,
        Err(e @ StoreError::Corruption { .. }) if applied.is_some() => {
            let why = e.to_string();
            *anchor_failure = Some(e);
            return Err(StoreError::Index(why));
        }
        Err(e) => return Err(e),
    };
    let mut merkle = MerkleWriter::open(&dir.join("merkle"), u64::MAX)?;
    // Leaves the Merkle files lost (a crash before the OS wrote them) that come before
    // the replay: read them back from the log. Usually nothing.
    let replay_from = from.seq + 1;
    if merkle.size() + 1 < replay_from {
        let start = index.frame_of(merkle.size() + 1)?.map(|(_, pos, _)| pos);
        log::scan(&log_dir, ledger_id.as_str(), start, false, &mut |f| {
            for (i, bytes) in f.records.iter().enumerate() {
                let seq = f.first_seq + i as u64;
                if seq == merkle.size() + 1 && seq < replay_from {
                    merkle.push(Leaf::of_record(bytes));
                }
            }
            Ok(())
        })?;
    }
    let mut rep = Replayer {
        state: &mut state,
        merkle: &mut merkle,
        verifier: ChainVerifier::resume(from.seq + 1, from.head),
        batch: IndexBatch::default(),
        snapshot: snapshot_mark,
        indexed: index_mark.seq,
        replayed: 0,
        reindexed: 0,
        last_end: from.pos,
    };
    // Two threads: one reads, decodes and hashes frames, this one checks the chain and
    // applies; a fault on either side stops both and is reported.
    let (ftx, frx) = mpsc::sync_channel::<DecodedFrame>(4);
    let scan = std::thread::scope(|s| -> Result<log::ScanEnd, StoreError> {
        let (dir, id) = (&log_dir, ledger_id.as_str());
        // `ftx` moves in: the channel ends when the scan does.
        // Nothing is cut while scanning: a tail is cut below only once it is known that
        // no acknowledged record was in it.
        let scanner = s.spawn(move || log::scan(dir, id, from.pos, false, &mut |f| ftx.send(DecodedFrame::of(f)).map_err(|_| StoreError::Closed)));
        let mut applied: Result<(), StoreError> = Ok(());
        for frame in frx.iter() {
            applied = rep.frame(frame, &index);
            if applied.is_err() {
                break;
            }
        }
        drop(frx);
        let scanned = scanner.join().map_err(|_| StoreError::DataDir("the log scanning thread panicked".into()))?;
        applied?;
        scanned
    })?;
    let (next_seq, head, replayed, reindexed) = (rep.verifier.next_seq(), rep.verifier.head(), rep.replayed, rep.reindexed);
    let records = next_seq - 1;
    // A start never cuts what was acknowledged: a "torn" tail below what the signed
    // checkpoint, the index or the snapshot say the log held is damage, refused and named.
    if let Some((seg, offset, bytes)) = scan.cut {
        let signed = latest.as_ref().map_or(0, |cp| cp.checkpoint.tree_size);
        let acknowledged = [(snapshot_mark.seq, "the newest snapshot"), (index_mark.seq, "the index"), (signed, "the signed checkpoint")].into_iter().max_by_key(|(n, _)| *n).unwrap_or((0, ""));
        if records < acknowledged.0 {
            return Err(StoreError::Corruption {
                at: format!("{} offset {offset}", log::segment_path(&log_dir, seg).display()),
                why: format!(
                    "the log ends after record {records} with {bytes} unreadable bytes, but {} covers records up to {}: acknowledged records are damaged or missing, not a torn tail; nothing was cut (restore the log from a backup)",
                    acknowledged.1, acknowledged.0
                ),
            });
        }
        log::cut_tail(&log_dir, &scan)?;
    }
    rep.flush(&index)?;
    // Refused below, after the checkpoint check, which names the damage better.
    let snapshot_ahead = (records < snapshot_mark.seq).then(|| StoreError::Corruption {
        at: "snapshots/".into(),
        why: format!("the newest snapshot reflects {} records but the log has only {records}: the log was truncated (move snapshots/ away to replay the log alone)", snapshot_mark.seq),
    });
    index.flush()?;
    merkle.flush()?;
    // The Merkle files are a cache too. Leaves past the latest signed checkpoint were
    // never checked against a signature: they are taken from the log again (a few, the
    // checkpoint trails the log by at most an interval). Up to it, the files must give
    // the signed root; if they do not, they are rebuilt from the log, and only a log that
    // still disagrees is refused.
    let signed = latest.as_ref().map_or(0, |cp| cp.checkpoint.tree_size).min(records);
    let merkle_dir = dir.join("merkle");
    drop(merkle);
    let mut merkle = MerkleWriter::open(&merkle_dir, signed)?;
    push_leaves_from_log(&log_dir, &ledger_id, &index, &mut merkle, records)?;
    if let Some(cp) = &latest {
        let c = &cp.checkpoint;
        if c.tree_size <= records && merkle::root(&*merkle.reader(), c.tree_size)? != c.root {
            tracing::warn!(size = c.tree_size, "the Merkle files disagree with the signed root: rebuilding them from the log");
            drop(merkle);
            std::fs::remove_dir_all(&merkle_dir)?;
            merkle = MerkleWriter::open(&merkle_dir, 0)?;
            push_leaves_from_log(&log_dir, &ledger_id, &index, &mut merkle, records)?;
        }
    }
    if merkle.size() != records {
        return Err(StoreError::Corruption { at: "merkle/".into(), why: format!("the tree has {} leaves but the log {records} records: delete merkle/ to rebuild it", merkle.size()) });
    }
    let recovery = Recovery { replayed, reindexed, cut: scan.cut, rebuilt: snapshot_mark.seq == 0 && replayed > 0 };
    if let Some((seg, off, bytes)) = scan.cut {
        tracing::warn!(segment = seg, offset = off, bytes, "recovery cut a torn tail that was never acknowledged");
    }
    tracing::info!(ledger = %ledger_id, records, replayed, reindexed, "ledger opened");
    // The log records the checkpoints saved while it was written (`log::Frame::signed`):
    // one the log says was signed must still be there, or one at least as large.
    let log_signed = anchor_signed.max(scan.signed);
    // The signed checkpoint never goes backwards: a log shorter than the last one
    // signed, or one whose tree disagrees with it, was rewritten.
    let tree = TreeHead { size: records, root: merkle.root(), chain_head: head };
    if let Some(cp) = &latest {
        let c = &cp.checkpoint;
        let at = merkle::root(&*merkle.reader(), c.tree_size.min(records))?;
        if c.tree_size > records || at != c.root {
            return Err(StoreError::Corruption {
                at: "checkpoints/latest".into(),
                why: format!(
                    "a checkpoint of {} records was signed, but the log {}: the log was truncated or rewritten",
                    c.tree_size,
                    if c.tree_size > records { format!("has only {records}") } else { "disagrees with its root".into() }
                ),
            });
        }
        // Its other fields too (a checkpoint signed with wrong ones is the key holder's
        // doing, but it would mislead an auditor all the same).
        let head_ok = match c.tree_size {
            0 => c.chain_head == genesis_hash(ledger_id.as_str()),
            n if n == records => c.chain_head == head,
            n => record_hash_at(&log_dir, &ledger_id, &index, n)? == Some(c.chain_head),
        };
        if c.ledger_id != ledger_id.as_str() || !head_ok {
            return Err(StoreError::Corruption {
                at: "checkpoints/latest".into(),
                why: if head_ok { format!("it is of ledger {:?}, the log of {:?}", c.ledger_id, ledger_id.as_str()) } else { format!("its chain head is not the hash of record {}", c.tree_size) },
            });
        }
    }
    if let Some(e) = snapshot_ahead {
        return Err(e);
    }
    let have = latest.as_ref().map_or(0, |cp| cp.checkpoint.tree_size);
    if have < log_signed {
        return Err(StoreError::Corruption {
            at: "checkpoints/latest".into(),
            why: format!(
                "the log records that a checkpoint of {log_signed} records was signed, but {}: it was deleted, lost or replaced by an older one (restore it from a backup; a start would otherwise sign the log again without it)",
                if latest.is_some() { format!("checkpoints/latest covers only {have}") } else { "checkpoints/latest is missing".to_owned() }
            ),
        });
    }
    let checkpoint = match latest {
        Some(cp) if cp.checkpoint.tree_size == records => cp,
        latest => {
            let cp = signer::sign(&ledger_id, tree, (opts.clock)(), &signing_key);
            match (signer::save_checkpoint(dir, &cp, ledger_id.as_str()), latest) {
                (Ok(()), _) => cp,
                // A full disk does not stop the start: the log is whole and the older
                // checkpoint stands; the writer signs again once space returns.
                (Err(e), Some(older)) if e.is_disk_full() => {
                    tracing::warn!(error = %e, "the checkpoint of every record could not be saved: the disk is full; serving with the previous one");
                    older
                }
                (Err(e), _) => return Err(e),
            }
        }
    };
    // Opened last: a refused start creates nothing (not even a first segment).
    let log = LogWriter::open(&log_dir, ledger_id.as_str(), scan.end)?.with_segment_bytes(opts.segment_bytes).with_signed_floor(log_signed);
    Ok(Recovered { ledger_id, index, state, log, merkle, tree, snapshot_seq: snapshot_mark.seq, signing_key, snapshot_key, checkpoint, recovery })
}
