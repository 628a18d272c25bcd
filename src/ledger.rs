//! The ledger: one writer that owns the sequence and the decision state, and the
//! read side that queries share.
//!
//! Submitters hand batches to the writer thread over a bounded channel. The writer drains
//! what is waiting (a group), decides each batch against the current state (atomic per
//! batch, via `decide_batch`), encodes and hashes the accepted records, appends them to
//! the log as frames, makes the log durable with one `fdatasync` (group commit), and only
//! then answers every submitter of the group. Afterwards, off the acknowledgement path,
//! it appends the group's Merkle leaves, writes the group's frame positions and
//! idempotency entries to sled in one batch (flushed lazily), signs a checkpoint at most
//! every 100 ms, and writes a snapshot of the projections every `snapshot_records`
//! records. (A separate index thread was tried and measured slower on 2 cores: more
//! wake-ups for the same work.)
//!
//! Readers take the state's read lock; the writer holds the write lock from deciding until
//! the group is durable, so a query never sees a record that could still be lost.
//!
//! `open` recovers: it loads the newest whole snapshot of the projections, then replays
//! only the log after it and after the position the sled index reflects (all of it if
//! both are gone), cutting a torn tail.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::thread::JoinHandle;

use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::chain::checkpoint::{Checkpoint, SignedCheckpoint, CHECKPOINT_VERSION};
use crate::chain::merkle;
use crate::chain::record::{genesis_hash, record_hash, request_digest, ChainError, ChainVerifier, Hash, Record, RecordRef, FORMAT_VERSION};
use crate::store::merkle::{MerkleFiles, MerkleWriter};
use crate::chain::codec;
use crate::decide::decide_batch;
use crate::domain::command::{Command, Event};
use crate::domain::date::{CalendarBook, Date};
use crate::domain::ids::RequestId;
use crate::domain::policy::PolicyBook;
use crate::domain::principal::Principal;
use crate::domain::rejection::{BatchRejection, Rejection};
use crate::limits::{BATCH_BYTES_MAX, FRAME_BYTES_MAX, RECORD_BYTES_MAX, WRITER_QUEUE_DEPTH};
use crate::projection::state::{Seq, State};
use crate::store::index::{Applied, IdemEntry, Index, IndexBatch};
use crate::store::log::{self, LogWriter, Position};
use crate::store::StoreError;

/// Unix milliseconds now. Injected so that tests and replays control time.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(|| {
        let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970");
        i64::try_from(d.as_millis()).expect("in range")
    })
}

/// Today in China Standard Time by `clock`: the default as-of date of queries.
pub fn today(clock: &Clock) -> Date {
    Date::cst_from_unix_ms(clock())
}

#[derive(Clone)]
pub struct LedgerOptions {
    /// Id of a new ledger (ignored when the data directory already holds one). Default:
    /// `anxin-` and 16 random hex digits.
    pub ledger_id: Option<String>,
    pub policies: PolicyBook,
    /// Working-day calendars: the national one and any county's replacement.
    pub calendars: CalendarBook,
    pub clock: Clock,
    /// The Ed25519 key that signs checkpoints (a 32-byte seed, mode 0600); created on
    /// first start. Default: `<data>/keys/checkpoint.ed25519`.
    pub signing_key: Option<PathBuf>,
    /// A new signed checkpoint after a group commit at most this often (and on demand).
    pub checkpoint_interval_ms: u64,
    /// A snapshot of the projections after this many records (and on close).
    pub snapshot_records: u64,
    /// Free bytes the data directory's file system must keep; below, new batches are
    /// refused with `StoreError::DiskFull` (see `limits::MIN_FREE_BYTES`).
    pub min_free_bytes: u64,
    /// Log segments are closed once they pass this many bytes (`limits::SEGMENT_BYTES_MAX`);
    /// smaller only in tests.
    pub segment_bytes: u64,
}

impl Default for LedgerOptions {
    fn default() -> Self {
        LedgerOptions {
            ledger_id: None,
            policies: PolicyBook::default(),
            calendars: CalendarBook::china(),
            clock: system_clock(),
            signing_key: None,
            checkpoint_interval_ms: crate::limits::CHECKPOINT_INTERVAL_MS,
            snapshot_records: crate::limits::SNAPSHOT_RECORDS,
            min_free_bytes: crate::limits::MIN_FREE_BYTES,
            segment_bytes: crate::limits::SEGMENT_BYTES_MAX,
        }
    }
}

/// What an accepted batch was answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    pub first_seq: Seq,
    pub last_seq: Seq,
    /// Hash of the batch's last record: the chain head right after it.
    pub head: Hash,
    pub recorded_at_ms: i64,
    /// True when this answers a retry of an already accepted request.
    pub replayed: bool,
}

/// The outcome of a submission: a fault, or the business answer.
pub type SubmitResult = Result<Result<Receipt, BatchRejection>, StoreError>;

/// What recovery did when the ledger was opened.
#[derive(Clone, Debug, Default)]
pub struct Recovery {
    /// Records replayed into the projections (the log after the newest snapshot).
    pub replayed: u64,
    /// Records whose frame and idempotency entries were put back into the index (the log
    /// after what sled had flushed).
    pub reindexed: u64,
    /// A torn, never-acknowledged tail cut off: (segment, offset, bytes).
    pub cut: Option<(u64, u64, u64)>,
    /// True if there was no snapshot and the projections were rebuilt from the whole log.
    pub rebuilt: bool,
}

struct Job {
    principal: Principal,
    request_id: RequestId,
    commands: Vec<Command>,
    reply: Box<dyn FnOnce(SubmitResult) + Send>,
}

struct Shared {
    dir: PathBuf,
    ledger_id: String,
    state: RwLock<State>,
    index: Index,
    /// (last seq, chain head) of what is durable.
    head: Mutex<(Seq, Hash)>,
    poisoned: Mutex<Option<String>>,
    /// The last durable sequence number, for live subscribers (never blocks the writer).
    durable: tokio::sync::watch::Sender<Seq>,
    /// The Merkle tree's files, for proofs (read-only here; the writer appends).
    merkle: Arc<MerkleFiles>,
    /// The tree as of the last group commit: (size, root, chain head).
    tree: Mutex<(Seq, Hash, Hash)>,
    signing_key: SigningKey,
    /// The latest signed checkpoint, also kept in `checkpoints/latest`.
    checkpoint: Mutex<SignedCheckpoint>,
    policies: PolicyBook,
    calendars: CalendarBook,
    clock: Clock,
}

/// An open ledger. Cloning is not offered: share it behind an `Arc`.
pub struct Ledger {
    shared: Arc<Shared>,
    /// The writer's queue; `None` once shut down.
    tx: Mutex<Option<SyncSender<Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    recovery: Recovery,
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

/// Writes the `LEDGER` file of a new data directory (a restore).
pub(crate) fn create_ledger_id(dir: &Path, id: &str) -> Result<(), StoreError> {
    if dir.join("LEDGER").exists() {
        return Err(StoreError::DataDir(format!("{} exists", dir.join("LEDGER").display())));
    }
    read_ledger_id(dir, Some(id)).map(|_| ())
}

/// Saves `cp` as the latest signed checkpoint of `dir` (a restore).
pub(crate) fn store_checkpoint(dir: &Path, cp: &SignedCheckpoint) -> Result<(), StoreError> {
    save_checkpoint(dir, cp)
}

fn read_ledger_id(dir: &Path, wanted: Option<&str>) -> Result<String, StoreError> {
    let path = dir.join("LEDGER");
    if path.exists() {
        let text = std::fs::read_to_string(&path)?;
        let id = text.trim().to_owned();
        if id.is_empty() {
            return Err(StoreError::DataDir(format!("{} is empty", path.display())));
        }
        return Ok(id);
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
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(StoreError::DataDir(format!("ledger id {id:?} must be 1-64 printable ASCII characters")));
    }
    let mut f = crate::fsutil::create_private_file(&path)?;
    std::io::Write::write_all(&mut f, format!("{id}\n").as_bytes())?;
    f.sync_all()?;
    crate::fsutil::sync_dir(dir)?;
    Ok(id)
}


/// Replays frames: records after `state_seq` into the state, records after `index_seq`
/// into an index batch (frame positions and idempotency entries). A request never spans
/// two frames, so every request is closed at its frame's end.
struct Replayer<'a> {
    state: &'a mut State,
    merkle: &'a mut MerkleWriter,
    verifier: ChainVerifier,
    batch: IndexBatch,
    /// The state already holds every record up to here (a snapshot).
    state_seq: Seq,
    /// ... and the chain head it names, checked against the log when replay passes it.
    state_head: Hash,
    /// The index already holds every record up to here.
    index_seq: Seq,
    replayed: u64,
    reindexed: u64,
    last_end: Option<Position>,
}

/// A frame whose records were decoded and hashed by the scanning thread.
struct DecodedFrame {
    pos: Position,
    end: u64,
    first_seq: Seq,
    records: Vec<(Result<Record, crate::chain::codec::CodecError>, Hash)>,
}

impl DecodedFrame {
    fn of(f: log::Frame) -> DecodedFrame {
        let records = f.records.iter().map(|b| (Record::decode(b), record_hash(b))).collect();
        DecodedFrame { pos: f.pos, end: f.end, first_seq: f.first_seq, records }
    }
}

impl Replayer<'_> {
    fn frame(&mut self, frame: DecodedFrame, index: &Index) -> Result<(), StoreError> {
        if frame.first_seq != self.verifier.next_seq() {
            return Err(StoreError::Corruption {
                at: format!("segment {:020}.seg offset {}", frame.pos.segment, frame.pos.offset),
                why: format!("frame starts at record {} but record {} was expected", frame.first_seq, self.verifier.next_seq()),
            });
        }
        let to_index = frame.first_seq > self.index_seq;
        if to_index {
            self.batch.frame(frame.first_seq, frame.pos, frame.records.len() as u32);
        }
        let mut open: Option<(Principal, RequestId, Vec<Command>, Seq, i64)> = None;
        let mut prev_hash = self.verifier.head();
        for (decoded, hash) in frame.records {
            let rec = self.verifier.accept(decoded, hash)?;
            if rec.seq > self.state_seq {
                self.state.apply(&rec.event, rec.seq);
                self.replayed += 1;
            } else if rec.seq == self.state_seq && hash != self.state_head {
                return Err(StoreError::Corruption {
                    at: format!("record {}", rec.seq),
                    why: "the newest snapshot names another chain head for this record: the log was rewritten after it (move snapshots/ away to replay the log alone)".into(),
                });
            }
            if rec.seq == self.merkle.size() + 1 {
                self.merkle.push(&hash);
            }
            if to_index {
                let same = matches!(&open, Some((p, r, ..)) if *p == rec.principal && *r == rec.request_id);
                if !same {
                    if let Some(o) = open.take() {
                        self.close(o, rec.seq - 1, prev_hash);
                    }
                    open = Some((rec.principal.clone(), rec.request_id.clone(), Vec::new(), rec.seq, rec.recorded_at_ms));
                }
                open.as_mut().expect("just opened").2.push(rec.event.to_command());
                self.reindexed += 1;
            }
            prev_hash = hash;
        }
        if let Some(o) = open.take() {
            self.close(o, self.verifier.next_seq() - 1, prev_hash);
        }
        let end = Position { segment: frame.pos.segment, offset: frame.end };
        self.last_end = Some(end);
        if self.batch.entries > 50_000 {
            self.flush(index)?;
        }
        Ok(())
    }

    fn close(&mut self, (principal, request_id, commands, first, at): (Principal, RequestId, Vec<Command>, Seq, i64), last: Seq, head: Hash) {
        let entry = IdemEntry { digest: request_digest(&commands), first_seq: first, last_seq: last, head, recorded_at_ms: at };
        self.batch.idem(&principal.to_string(), request_id.as_str(), &entry);
    }

    /// Writes what was replayed into the index so far, with the position it reflects.
    fn flush(&mut self, index: &Index) -> Result<(), StoreError> {
        let Some(end) = self.last_end else { return Ok(()) };
        if self.verifier.next_seq() - 1 <= self.index_seq {
            return Ok(());
        }
        let mut batch = std::mem::take(&mut self.batch);
        batch.applied(Applied { seq: self.verifier.next_seq() - 1, head: self.verifier.head(), log_end: end });
        index.apply(batch)
    }
}

impl Ledger {
    /// Opens (or creates) the ledger in `dir` and recovers it.
    ///
    /// # Errors
    /// `StoreError` if the data directory is damaged (naming the damage) or unreadable.
    pub fn open(dir: &Path, opts: LedgerOptions) -> Result<Ledger, StoreError> {
        crate::fsutil::create_private_dir(dir)?;
        let ledger_id = read_ledger_id(dir, opts.ledger_id.as_deref())?;
        let index = Index::open(&dir.join("index"))?;
        match index.ledger_id()? {
            Some(id) if id != ledger_id => {
                return Err(StoreError::Corruption {
                    at: "index".into(),
                    why: format!("the index belongs to ledger {id:?}, the log to {ledger_id:?}: delete index/ to rebuild it"),
                })
            }
            Some(_) => {}
            None => index.set_ledger_id(&ledger_id)?,
        }
        let applied = index.applied()?;
        // The newest snapshot that reads back whole; without one, the log is replayed
        // from its start.
        let snapshot = crate::store::snapshot::load_newest(dir, &ledger_id)?;
        let (state_seq, state_head, mut state) = match snapshot {
            Some((h, st)) => (h.seq, h.head, Some((h.log_end(), st))),
            None => (0, genesis_hash(&ledger_id), None),
        };
        let index_at = applied.map_or((0, genesis_hash(&ledger_id), None), |a| (a.seq, a.head, Some(a.log_end)));
        // Replay from whichever of the two is behind.
        let (from_seq, from_head, from_pos) = match &state {
            Some((pos, _)) if state_seq <= index_at.0 => (state_seq, state_head, Some(*pos)),
            Some(_) => index_at,
            None => (0, genesis_hash(&ledger_id), None),
        };
        let mut state = state.take().map(|(_, st)| st).unwrap_or_default();
        let verifier = ChainVerifier::resume(from_seq + 1, from_head);
        let log_dir = dir.join("log");
        check_segments(&log_dir, &index, index_at.0)?;
        let key_path = opts.signing_key.clone().unwrap_or_else(|| dir.join("keys").join("checkpoint.ed25519"));
        // A ledger that has signed before must keep its key: a new one would break every
        // auditor's pinned key. Only a ledger with no checkpoint yet creates one.
        let has_signed = checkpoint_path(dir).exists();
        let signing_key = load_or_create_key(&key_path, !has_signed)?;
        if let Some(cp) = load_checkpoint(dir)? {
            if cp.verify(&signing_key.verifying_key()).is_err() {
                return Err(StoreError::DataDir(format!(
                    "checkpoints/latest was not signed by the key at {}: the signing key was replaced; restore the original from a backup",
                    key_path.display()
                )));
            }
        }
        let mut merkle = MerkleWriter::open(&dir.join("merkle"), u64::MAX)?;
        // Leaves the Merkle files lost (a crash before the OS wrote them) that come before
        // the replay: read them back from the log. Usually nothing.
        let replay_from = from_seq + 1;
        if merkle.size() + 1 < replay_from {
            let from = index.frame_of(merkle.size() + 1)?.map(|(_, pos, _)| pos);
            log::scan(&log_dir, &ledger_id, from, false, &mut |f| {
                for (i, bytes) in f.records.iter().enumerate() {
                    let seq = f.first_seq + i as u64;
                    if seq == merkle.size() + 1 && seq < replay_from {
                        merkle.push(&record_hash(bytes));
                    }
                }
                Ok(())
            })?;
        }
        let mut rep = Replayer {
            state: &mut state,
            merkle: &mut merkle,
            verifier,
            batch: IndexBatch::default(),
            state_seq,
            state_head,
            index_seq: index_at.0,
            replayed: 0,
            reindexed: 0,
            last_end: from_pos,
        };
        // Two threads: one reads, decodes and hashes frames, this one checks the chain and
        // applies; a fault on either side stops both and is reported.
        let (ftx, frx) = mpsc::sync_channel::<DecodedFrame>(4);
        let scan = std::thread::scope(|s| -> Result<log::ScanEnd, StoreError> {
            let (dir, id) = (&log_dir, &ledger_id);
            // `ftx` moves in: the channel ends when the scan does.
            let scanner = s.spawn(move || log::scan(dir, id, from_pos, true, &mut |f| ftx.send(DecodedFrame::of(f)).map_err(|_| StoreError::Closed)));
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
        rep.flush(&index)?;
        // Refused below, after the checkpoint check, which names the damage better.
        let snapshot_ahead = (rep.verifier.next_seq() - 1 < state_seq).then(|| StoreError::Corruption {
            at: "snapshots/".into(),
            why: format!("the newest snapshot reflects {state_seq} records but the log has only {}: the log was truncated (move snapshots/ away to replay the log alone)", rep.verifier.next_seq() - 1),
        });
        let (next_seq, head, replayed, reindexed) = (rep.verifier.next_seq(), rep.verifier.head(), rep.replayed, rep.reindexed);
        index.flush()?;
        merkle.flush()?;
        if merkle.size() != next_seq - 1 {
            // Files ahead of the log (never written so by this code) or a gap: trim or rebuild.
            drop(merkle);
            merkle = MerkleWriter::open(&dir.join("merkle"), next_seq - 1)?;
            if merkle.size() != next_seq - 1 {
                return Err(StoreError::Corruption { at: "merkle/".into(), why: format!("the tree has {} leaves but the log {} records: delete merkle/ to rebuild it", merkle.size(), next_seq - 1) });
            }
        }
        merkle.flush()?;
        let recovery = Recovery { replayed, reindexed, cut: scan.cut, rebuilt: state_seq == 0 && replayed > 0 };
        if let Some((seg, off, bytes)) = scan.cut {
            tracing::warn!(segment = seg, offset = off, bytes, "recovery cut a torn tail that was never acknowledged");
        }
        tracing::info!(ledger = %ledger_id, records = next_seq - 1, replayed, reindexed, "ledger opened");
        let writer_log = LogWriter::open(&log_dir, &ledger_id, scan.end)?.with_segment_bytes(opts.segment_bytes);
        // The signed checkpoint never goes backwards: a log shorter than the last one
        // signed, or one whose tree disagrees with it, was rewritten.
        let tree = (next_seq - 1, merkle.root(), head);
        let latest = load_checkpoint(dir)?;
        if let Some(cp) = &latest {
            let c = &cp.checkpoint;
            let at = merkle::root(&*merkle.reader(), c.tree_size.min(tree.0))?;
            if c.tree_size > tree.0 || at != c.root {
                return Err(StoreError::Corruption {
                    at: "checkpoints/latest".into(),
                    why: format!("a checkpoint of {} records was signed, but the log {}: the log was truncated or rewritten", c.tree_size, if c.tree_size > tree.0 { format!("has only {}", tree.0) } else { "disagrees with its root".into() }),
                });
            }
        }
        if let Some(e) = snapshot_ahead {
            return Err(e);
        }
        let now = (opts.clock)();
        let checkpoint = match latest {
            Some(cp) if cp.checkpoint.tree_size == tree.0 => cp,
            _ => {
                let cp = sign_checkpoint(&ledger_id, tree, now, &signing_key);
                save_checkpoint(dir, &cp)?;
                cp
            }
        };
        let shared = Arc::new(Shared {
            dir: dir.to_owned(),
            ledger_id,
            state: RwLock::new(state),
            index,
            head: Mutex::new((next_seq - 1, head)),
            poisoned: Mutex::new(None),
            durable: tokio::sync::watch::Sender::new(next_seq - 1),
            merkle: merkle.reader(),
            tree: Mutex::new(tree),
            signing_key,
            checkpoint: Mutex::new(checkpoint),
            policies: opts.policies,
            calendars: opts.calendars,
            clock: opts.clock,
        });
        let (tx, rx) = mpsc::sync_channel(WRITER_QUEUE_DEPTH);
        let w = Writer {
            shared: shared.clone(),
            last_index_flush: std::time::Instant::now(),
            log: writer_log,
            next_seq,
            head,
            merkle,
            last_checkpoint: std::time::Instant::now(),
            checkpoint_interval: std::time::Duration::from_millis(opts.checkpoint_interval_ms),
            snapshot_seq: state_seq,
            snapshot_records: opts.snapshot_records.max(1),
            min_free_bytes: opts.min_free_bytes,
        };
        let writer = std::thread::Builder::new().name("anxin-writer".into()).spawn(move || w.run(rx))?;
        Ok(Ledger { shared, tx: Mutex::new(Some(tx)), writer: Mutex::new(Some(writer)), recovery })
    }

    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    pub fn ledger_id(&self) -> &str {
        &self.shared.ledger_id
    }

    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// (last durable sequence number, chain head).
    pub fn head(&self) -> (Seq, Hash) {
        *self.shared.head.lock().expect("head lock")
    }

    pub fn policies(&self) -> &PolicyBook {
        &self.shared.policies
    }

    pub fn calendars(&self) -> &CalendarBook {
        &self.shared.calendars
    }

    /// Today in China Standard Time, by the ledger's clock.
    pub fn today(&self) -> Date {
        today(&self.shared.clock)
    }

    /// The state, for queries. Hold the guard briefly: the writer waits for it.
    pub fn state(&self) -> RwLockReadGuard<'_, State> {
        self.shared.state.read().expect("state lock")
    }

    /// Queues a batch and calls `reply` with the outcome once it is durable (or refused).
    ///
    /// # Errors
    /// `StoreError::Closed` if the ledger is shutting down; `Rejection`-free back-pressure
    /// is by blocking while the writer's queue is full.
    pub fn submit_with(
        &self,
        principal: Principal,
        request_id: RequestId,
        commands: Vec<Command>,
        reply: Box<dyn FnOnce(SubmitResult) + Send>,
    ) -> Result<(), StoreError> {
        let tx = self.sender()?;
        let job = Job { principal, request_id, commands, reply };
        match tx.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(job)) => tx.send(job).map_err(|_| StoreError::Closed),
            Err(TrySendError::Disconnected(_)) => Err(StoreError::Closed),
        }
    }

    /// Queues a batch from async code and returns where its answer will arrive. Batches
    /// queued in order are decided in that order (a pipelined stream relies on it).
    /// Back-pressure: while the writer's queue is full, the send waits on a blocking
    /// thread, never on the async runtime's.
    ///
    /// # Errors
    /// `StoreError::Closed` if the ledger is shutting down.
    pub async fn enqueue(&self, principal: Principal, request_id: RequestId, commands: Vec<Command>) -> Result<tokio::sync::oneshot::Receiver<SubmitResult>, StoreError> {
        let tx = self.sender()?;
        let (reply_tx, reply_rx) = tokio::sync::oneshot::channel();
        let job = Job { principal, request_id, commands, reply: Box::new(move |r| {
            let _ = reply_tx.send(r);
        }) };
        match tx.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(job)) => {
                tokio::task::spawn_blocking(move || tx.send(job)).await.map_err(|_| StoreError::Closed)?.map_err(|_| StoreError::Closed)?;
            }
            Err(TrySendError::Disconnected(_)) => return Err(StoreError::Closed),
        }
        Ok(reply_rx)
    }

    /// Submits a batch from async code and waits until it is durable or refused.
    pub async fn submit_async(&self, principal: Principal, request_id: RequestId, commands: Vec<Command>) -> SubmitResult {
        self.enqueue(principal, request_id, commands).await?.await.map_err(|_| StoreError::Closed)?
    }

    /// Watches the last durable sequence number (for live tails).
    pub fn watch_durable(&self) -> tokio::sync::watch::Receiver<Seq> {
        self.shared.durable.subscribe()
    }

    /// Whether an earlier fault stopped writes, and why.
    pub fn poisoned(&self) -> Option<String> {
        self.shared.poisoned.lock().expect("poison lock").clone()
    }

    /// Submits one atomic batch and waits until it is durable or refused.
    ///
    /// # Errors
    /// Outer `Err`: a fault (the ledger stops accepting writes). Inner `Err`: the batch was
    /// rejected and nothing of it was recorded.
    pub fn submit(&self, principal: Principal, request_id: RequestId, commands: Vec<Command>) -> SubmitResult {
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit_with(principal, request_id, commands, Box::new(move |r| {
            let _ = tx.send(r);
        }))?;
        rx.recv().map_err(|_| StoreError::Closed)?
    }

    /// The canonical bytes of records `from..=to` (bounded by what is durable).
    ///
    /// # Errors
    /// `StoreError` if the log cannot be read or is damaged.
    pub fn read_records(&self, from: Seq, to: Seq) -> Result<Vec<(Seq, Vec<u8>)>, StoreError> {
        let (last, _) = self.head();
        let to = to.min(last);
        let mut out = Vec::new();
        if from == 0 || from > to {
            return Ok(out);
        }
        // The frame holding `from`, or an earlier one if the index thread has not written
        // the newest frames yet (then the scan reads a little more).
        let pos = self.shared.index.frame_of(from)?.map(|(_, pos, _)| pos);
        let log_dir = self.shared.dir.join("log");
        let r = log::scan_while(&log_dir, &self.shared.ledger_id, pos, false, &mut |f| {
            let last_in_frame = f.first_seq + f.records.len() as u64 - 1;
            for (i, bytes) in f.records.into_iter().enumerate() {
                let seq = f.first_seq + i as u64;
                if seq > to {
                    return Ok(false);
                }
                if seq >= from {
                    out.push((seq, bytes));
                }
            }
            // Read on only while the records asked for go past this frame.
            Ok(last_in_frame < to)
        });
        r?;
        Ok(out)
    }

    fn sender(&self) -> Result<SyncSender<Job>, StoreError> {
        self.tx.lock().expect("sender lock").clone().ok_or(StoreError::Closed)
    }

    /// Stops the writer after it has answered everything queued, and flushes the index.
    ///
    /// # Errors
    /// `StoreError` if the final flush fails.
    pub fn close(self) -> Result<(), StoreError> {
        self.shutdown()
    }

    /// Like `close`, for a ledger shared behind an `Arc`: later submissions get
    /// `StoreError::Closed`; reads keep working.
    ///
    /// # Errors
    /// `StoreError` if the final flush fails.
    pub fn shutdown(&self) -> Result<(), StoreError> {
        self.tx.lock().expect("sender lock").take();
        let writer = self.writer.lock().expect("writer lock").take();
        if let Some(w) = writer {
            let _ = w.join();
        }
        self.shared.index.flush()
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        // Idempotent: after `close`/`shutdown` only the (cheap) index flush repeats.
        if let Err(e) = self.shutdown() {
            tracing::error!(error = %e, "closing the ledger failed");
        }
    }
}

struct Writer {
    shared: Arc<Shared>,
    log: LogWriter,
    next_seq: Seq,
    head: Hash,
    last_index_flush: std::time::Instant,
    merkle: MerkleWriter,
    last_checkpoint: std::time::Instant,
    checkpoint_interval: std::time::Duration,
    /// The record the newest snapshot reflects.
    snapshot_seq: Seq,
    snapshot_records: u64,
    min_free_bytes: u64,
}

/// How many jobs one group commit takes at most.
const GROUP_JOBS_MAX: usize = 256;

enum Outcome {
    Done(SubmitResult),
    /// Accepted: waiting for the group to be durable.
    Pending(Receipt),
}

impl Writer {
    fn run(mut self, rx: Receiver<Job>) {
        // A long replay at open (no snapshot, or an old one) is not repeated by the next.
        if self.next_seq - 1 - self.snapshot_seq >= self.snapshot_records {
            if let Err(e) = self.snapshot() {
                tracing::error!(error = %e, "a snapshot of the projections failed");
            }
        }
        loop {
            // While idle, the tree's last records still get a signed checkpoint within
            // one interval: an auditor never waits on the next write for one.
            let first = match rx.recv_timeout(self.checkpoint_interval) {
                Ok(job) => job,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    self.checkpoint_if_behind();
                    continue;
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            };
            let mut jobs = vec![first];
            while jobs.len() < GROUP_JOBS_MAX {
                match rx.try_recv() {
                    Ok(j) => jobs.push(j),
                    Err(_) => break,
                }
            }
            self.group(jobs);
        }
        // Closing: a checkpoint of every record, and a snapshot, so that the next start
        // replays nothing.
        self.checkpoint_if_behind();
        if self.poisoned().is_none() && self.next_seq - 1 > self.snapshot_seq {
            if let Err(e) = self.snapshot() {
                tracing::error!(error = %e, "the closing snapshot failed; the next start replays the log after the previous one");
            }
        }
    }

    /// Signs a checkpoint of the tree if the latest one does not cover every record.
    fn checkpoint_if_behind(&mut self) {
        if self.poisoned().is_some() {
            return;
        }
        self.last_checkpoint = std::time::Instant::now();
        if let Err(e) = checkpoint_now(&self.shared) {
            self.poison(&e);
        }
    }

    /// Writes a snapshot of the projections as of the last durable record.
    fn snapshot(&mut self) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        let seq = self.next_seq - 1;
        let header = crate::store::snapshot::SnapshotHeader {
            version: crate::store::snapshot::SNAPSHOT_VERSION,
            ledger_id: self.shared.ledger_id.clone(),
            seq,
            head: if seq == 0 { genesis_hash(&self.shared.ledger_id) } else { self.head },
            log_end: (self.log.end().segment, self.log.end().offset),
        };
        // A read lock: queries go on; only this writer could change the state.
        let state = self.shared.state.read().expect("state lock");
        let bytes = crate::store::snapshot::write(&self.shared.dir, &header, &state)?;
        drop(state);
        self.snapshot_seq = seq;
        tracing::info!(seq, bytes, ms = started.elapsed().as_millis() as u64, "wrote a snapshot of the projections");
        Ok(())
    }

    fn poisoned(&self) -> Option<String> {
        self.shared.poisoned.lock().expect("poison lock").clone()
    }

    /// A write error as the client should hear it: a full disk (or quota) as `DiskFull`.
    fn write_fault(&self, e: StoreError) -> StoreError {
        match &e {
            StoreError::Io(io) if matches!(io.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT)) => {
                let free = crate::fsutil::free_bytes(&self.shared.dir).unwrap_or(0);
                StoreError::DiskFull { free, reserve: self.min_free_bytes }
            }
            _ => e,
        }
    }

    fn poison(&self, e: &StoreError) {
        self.poison_why(e.to_string());
    }

    fn poison_why(&self, why: String) {
        tracing::error!(error = %why, "ledger fault: refusing all further writes");
        *self.shared.poisoned.lock().expect("poison lock") = Some(why);
    }

    fn group(&mut self, jobs: Vec<Job>) {
        if let Some(why) = self.poisoned() {
            for j in jobs {
                (j.reply)(Err(StoreError::Poisoned(why.clone())));
            }
            return;
        }
        // Below the reserve nothing is decided: the request is refused whole, and the
        // next group tries again (space may have returned).
        match crate::fsutil::free_bytes(&self.shared.dir) {
            Ok(free) if free < self.min_free_bytes => {
                tracing::warn!(free, reserve = self.min_free_bytes, "disk full: refusing new batches until space returns");
                for j in jobs {
                    (j.reply)(Err(StoreError::DiskFull { free, reserve: self.min_free_bytes }));
                }
                return;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read the free space of the data directory"),
        }
        let now = (self.shared.clock)();
        // Where the group starts, to take it all back if the log refuses it.
        let (start_seq, start_head, start_end) = (self.next_seq, self.head, self.log.end());
        let mut state = self.shared.state.write().expect("state lock");
        state.begin();
        let mut outcomes: Vec<Outcome> = Vec::with_capacity(jobs.len());
        // Frames of this group: (first seq, records), each within FRAME_BYTES_MAX.
        let mut frames: Vec<(Seq, Vec<Vec<u8>>, usize)> = Vec::new();
        let mut new_idem: HashMap<(String, String), IdemEntry> = HashMap::new();
        let mut new_hashes: Vec<Hash> = Vec::new();
        let mut fault: Option<StoreError> = None;
        for job in &jobs {
            let key = (job.principal.to_string(), job.request_id.to_string());
            let digest = request_digest(&job.commands);
            let known = match new_idem.get(&key) {
                Some(e) => Some(e.clone()),
                None => match self.shared.index.idem(&key.0, &key.1) {
                    Ok(e) => e,
                    Err(e) => {
                        fault = Some(e);
                        break;
                    }
                },
            };
            if let Some(e) = known {
                let outcome = if e.digest == digest {
                    let r = Receipt { first_seq: e.first_seq, last_seq: e.last_seq, head: e.head, recorded_at_ms: e.recorded_at_ms, replayed: true };
                    // A retry of a request in this very group is answered once it is durable.
                    if new_idem.contains_key(&key) { Outcome::Pending(r) } else { Outcome::Done(Ok(Ok(r))) }
                } else {
                    Outcome::Done(Ok(Err(BatchRejection { index: None, rejection: Rejection::RequestIdReused(job.request_id.to_string()) })))
                };
                outcomes.push(outcome);
                continue;
            }
            let first_seq = self.next_seq;
            let mut encoded: Option<(Vec<Vec<u8>>, usize, Vec<Hash>)> = None;
            let decided = decide_batch(&mut state, &job.commands, first_seq, &mut |events| {
                let (records, bytes, hashes) = self.encode(events, first_seq, now, &job.principal, &job.request_id);
                if bytes > BATCH_BYTES_MAX {
                    return Err(Rejection::BatchBytesTooLarge { bytes, max: BATCH_BYTES_MAX });
                }
                encoded = Some((records, bytes, hashes));
                Ok(())
            });
            let events = match decided {
                Ok(ev) => ev,
                Err(rej) => {
                    outcomes.push(Outcome::Done(Ok(Err(rej))));
                    continue;
                }
            };
            let (records, bytes, hashes) = encoded.expect("accepted batches were encoded");
            let head = *hashes.last().expect("a batch has records");
            new_hashes.extend(hashes);
            match frames.last_mut() {
                Some((_, recs, size)) if *size + bytes <= FRAME_BYTES_MAX => {
                    recs.extend(records);
                    *size += bytes;
                }
                _ => frames.push((first_seq, records, bytes)),
            }
            self.next_seq += events.len() as u64;
            self.head = head;
            let receipt = Receipt { first_seq, last_seq: self.next_seq - 1, head, recorded_at_ms: now, replayed: false };
            new_idem.insert(key, IdemEntry { digest, first_seq, last_seq: receipt.last_seq, head, recorded_at_ms: now });
            outcomes.push(Outcome::Pending(receipt));
        }

        // Make the group durable: one fdatasync for every frame.
        let mut positions = Vec::with_capacity(frames.len());
        if fault.is_none() {
            for (first, recs, _) in &frames {
                match self.log.append(*first, recs) {
                    Ok(p) => positions.push((*first, p, recs.len() as u32)),
                    Err(e) => {
                        fault = Some(e);
                        break;
                    }
                }
            }
        }
        let mut sync_failed = false;
        if fault.is_none() {
            if let Err(e) = self.log.sync() {
                fault = Some(e);
                sync_failed = true;
            }
        }
        if let Some(e) = fault {
            // Nothing of the group was acknowledged: take it all back, from the state and
            // from the log, so that both again end at the last acknowledged record.
            state.rollback();
            drop(state);
            self.next_seq = start_seq;
            self.head = start_head;
            let rewound = self.log.rewind(start_end);
            let e = self.write_fault(e);
            // After a failed fdatasync the kernel may have dropped the dirty pages and
            // forgotten the error, so whether the file is whole is no longer known:
            // fail-stop, and let a restart check the log. Likewise if the rewind failed.
            let stop = if sync_failed {
                Some(e.to_string())
            } else if let Err(r) = rewound {
                Some(format!("{e}; taking the group back out of the log failed too: {r}"))
            } else {
                None
            };
            if let Some(why) = stop {
                self.poison_why(why.clone());
                for j in jobs {
                    (j.reply)(Err(StoreError::Poisoned(why.clone())));
                }
                return;
            }
            tracing::warn!(error = %e, "a group commit was refused by the log and taken back; the ledger goes on");
            for (job, outcome) in jobs.into_iter().zip(outcomes) {
                match outcome {
                    // A retry of a request acknowledged in an earlier group keeps its answer.
                    Outcome::Done(r) => (job.reply)(r),
                    Outcome::Pending(_) => (job.reply)(Err(match &e {
                        StoreError::DiskFull { free, reserve } => StoreError::DiskFull { free: *free, reserve: *reserve },
                        other => StoreError::NotWritten(other.to_string()),
                    })),
                }
            }
            return;
        }
        state.commit();
        // The tree follows the log; proofs may be asked for any size up to it.
        for h in &new_hashes {
            self.merkle.push(h);
        }
        if let Err(e) = self.merkle.flush() {
            fault = Some(e);
        }
        if let Some(e) = fault {
            self.poison(&e);
            drop(state);
            for j in jobs {
                (j.reply)(Err(StoreError::Poisoned(e.to_string())));
            }
            return;
        }
        assert_eq!(self.merkle.size(), self.next_seq - 1, "one leaf per record");
        *self.shared.tree.lock().expect("tree lock") = (self.next_seq - 1, self.merkle.root(), self.head);
        *self.shared.head.lock().expect("head lock") = (self.next_seq - 1, self.head);
        self.shared.durable.send_replace(self.next_seq - 1);
        let mut batch = IndexBatch::default();
        drop(state);

        for (job, outcome) in jobs.into_iter().zip(outcomes) {
            match outcome {
                Outcome::Done(r) => (job.reply)(r),
                Outcome::Pending(r) => (job.reply)(Ok(Ok(r))),
            }
        }

        // Off the acknowledgement path: the index follows the log.
        if positions.is_empty() && batch.entries == 0 {
            return;
        }
        for (first, pos, count) in positions {
            batch.frame(first, pos, count);
        }
        for ((p, r), e) in &new_idem {
            batch.idem(p, r, e);
        }
        batch.applied(Applied { seq: self.next_seq - 1, head: self.head, log_end: self.log.end() });
        if let Err(e) = self.shared.index.apply(batch) {
            self.poison(&e);
            return;
        }
        if self.next_seq - 1 - self.snapshot_seq >= self.snapshot_records {
            if let Err(e) = self.snapshot() {
                // Not a fault of the ledger: the log holds everything; restart replays more.
                tracing::error!(error = %e, "a snapshot of the projections failed; will try again after the next group");
            }
        }
        if !new_hashes.is_empty() && self.last_checkpoint.elapsed() >= self.checkpoint_interval {
            self.last_checkpoint = std::time::Instant::now();
            if let Err(e) = checkpoint_now(&self.shared) {
                self.poison(&e);
                return;
            }
        }
        if self.last_index_flush.elapsed() >= std::time::Duration::from_millis(crate::limits::INDEX_FLUSH_INTERVAL_MS) {
            self.last_index_flush = std::time::Instant::now();
            if let Err(e) = self.shared.index.flush() {
                self.poison(&e);
            }
        }
    }

    /// Encodes and chains a batch's records. Returns them, their total size, and the new head.
    fn encode(&self, events: &[Event], first_seq: Seq, now: i64, principal: &Principal, request_id: &RequestId) -> (Vec<Vec<u8>>, usize, Vec<Hash>) {
        let mut head = self.head;
        let mut hashes = Vec::with_capacity(events.len());
        let mut out = Vec::with_capacity(events.len());
        let mut total = 0;
        for (i, event) in events.iter().enumerate() {
            let rec = RecordRef {
                version: FORMAT_VERSION,
                seq: first_seq + i as u64,
                prev_hash: &head,
                recorded_at_ms: now,
                principal,
                request_id,
                event,
            };
            let bytes = codec::encode(&rec);
            assert!(bytes.len() <= RECORD_BYTES_MAX, "command limits bound every record");
            head = record_hash(&bytes);
            hashes.push(head);
            total += bytes.len();
            out.push(bytes);
        }
        (out, total, hashes)
    }
}

fn load_or_create_key(path: &Path, may_create: bool) -> Result<SigningKey, StoreError> {
    if path.exists() {
        let bytes = std::fs::read(path)?;
        let seed: [u8; 32] = bytes.try_into().map_err(|_| StoreError::DataDir(format!("{} is not a 32-byte Ed25519 seed", path.display())))?;
        return Ok(SigningKey::from_bytes(&seed));
    }
    if !may_create {
        return Err(StoreError::DataDir(format!(
            "the checkpoint signing key {} is missing, but this ledger has signed checkpoints with it: restore it from a backup (a new key would break every auditor's pinned key)",
            path.display()
        )));
    }
    if let Some(parent) = path.parent() {
        crate::fsutil::create_private_dir(parent)?;
    }
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(|e| StoreError::DataDir(format!("no randomness: {e}")))?;
    let mut f = crate::fsutil::create_private_file(path)?;
    std::io::Write::write_all(&mut f, &seed)?;
    f.sync_all()?;
    if let Some(parent) = path.parent() {
        crate::fsutil::sync_dir(parent)?;
    }
    tracing::info!(path = %path.display(), "created the checkpoint signing key");
    Ok(SigningKey::from_bytes(&seed))
}

fn sign_checkpoint(ledger_id: &str, (size, root, head): (Seq, Hash, Hash), now: i64, key: &SigningKey) -> SignedCheckpoint {
    let chain_head = if size == 0 { genesis_hash(ledger_id) } else { head };
    Checkpoint { version: CHECKPOINT_VERSION, ledger_id: ledger_id.to_owned(), tree_size: size, root, chain_head, timestamp_ms: now }.sign(key)
}

fn checkpoint_path(dir: &Path) -> PathBuf {
    dir.join("checkpoints").join("latest")
}

fn load_checkpoint(dir: &Path) -> Result<Option<SignedCheckpoint>, StoreError> {
    let p = checkpoint_path(dir);
    if !p.exists() {
        return Ok(None);
    }
    let bytes = std::fs::read(&p)?;
    codec::decode(&bytes).map(Some).map_err(|e| StoreError::Corruption { at: p.display().to_string(), why: e.to_string() })
}

fn save_checkpoint(dir: &Path, cp: &SignedCheckpoint) -> Result<(), StoreError> {
    let d = dir.join("checkpoints");
    std::fs::create_dir_all(&d)?;
    let tmp = d.join("latest.tmp");
    std::fs::write(&tmp, codec::encode(cp))?;
    std::fs::rename(&tmp, checkpoint_path(dir))?;
    Ok(())
}

/// Signs a checkpoint of the tree as of the last group commit, unless the latest one
/// already covers it, and keeps it.
fn checkpoint_now(shared: &Shared) -> Result<SignedCheckpoint, StoreError> {
    let tree = *shared.tree.lock().expect("tree lock");
    let mut latest = shared.checkpoint.lock().expect("checkpoint lock");
    if latest.checkpoint.tree_size >= tree.0 {
        return Ok(latest.clone());
    }
    let cp = sign_checkpoint(&shared.ledger_id, tree, (shared.clock)(), &shared.signing_key);
    save_checkpoint(&shared.dir, &cp)?;
    *latest = cp.clone();
    Ok(cp)
}

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
        self.shared.signing_key.verifying_key()
    }

    /// The latest signed checkpoint, made now if the last one is behind the log.
    ///
    /// # Errors
    /// `StoreError` if it cannot be saved.
    pub fn checkpoint(&self) -> Result<SignedCheckpoint, StoreError> {
        checkpoint_now(&self.shared)
    }

    /// The seed of the checkpoint signing key, for a backup (`crate::backup`) only.
    pub(crate) fn signing_seed(&self) -> [u8; 32] {
        self.shared.signing_key.to_bytes()
    }

    /// The size of the tree as of the last group commit.
    pub fn tree_size(&self) -> Seq {
        self.shared.tree.lock().expect("tree lock").0
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
}

/// Recomputes every hash of the log in `dir` from its bytes alone, without changing
/// anything, and reports the first bad record.
///
/// # Errors
/// `StoreError` only if the directory cannot be read at all; damage is in the report.
pub fn verify(dir: &Path, progress: &mut dyn FnMut(u64)) -> Result<VerifyReport, StoreError> {
    let ledger_id = std::fs::read_to_string(dir.join("LEDGER"))
        .map_err(|e| StoreError::DataDir(format!("{}: {e}", dir.join("LEDGER").display())))?
        .trim()
        .to_owned();
    let mut report = VerifyReport { ledger_id: ledger_id.clone(), head: genesis_hash(&ledger_id), ..Default::default() };
    let mut verifier = ChainVerifier::new(&ledger_id);
    let mut hash_at_claim: Option<Hash> = None;
    // The signed checkpoint's claim: records up to its size, with its chain head.
    let signed = load_checkpoint(dir).ok().flatten();
    let mut hash_at_signed: Option<Hash> = None;
    // The index's claim, checked against the log if the index is there and readable.
    let claim = if dir.join("index").exists() {
        Index::open(&dir.join("index")).ok().and_then(|i| i.applied().ok().flatten())
    } else {
        None
    };
    // This thread checks every link and hash in order; decoder threads (one per core)
    // decode every record (a record must also be well-formed), in chunks.
    let (tx, rx) = std::sync::mpsc::sync_channel::<(u64, Vec<Vec<u8>>)>(64);
    let rx = std::sync::Mutex::new(rx);
    let decoders = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut undecodable: Option<(u64, String)> = None;
    let r = std::thread::scope(|s| {
        let handles: Vec<_> = (0..decoders)
            .map(|_| {
                s.spawn(|| -> Option<(u64, String)> {
                    loop {
                        let next = rx.lock().expect("decoder queue").recv();
                        let Ok((first, records)) = next else { return None };
                        for (i, bytes) in records.iter().enumerate() {
                            if let Err(e) = Record::decode(bytes) {
                                return Some((first + i as u64, e.to_string()));
                            }
                        }
                    }
                })
            })
            .collect();
        let r = log::scan(&dir.join("log"), &ledger_id, None, false, &mut |f| {
            if f.first_seq != verifier.next_seq() {
                return Err(StoreError::Corruption {
                    at: format!("record {}", verifier.next_seq()),
                    why: format!("frame starts at record {}: records are missing or out of order", f.first_seq),
                });
            }
            report.frames += 1;
            for bytes in &f.records {
                let seq = verifier.next_seq();
                let hash = verifier.check_link(bytes)?;
                if claim.is_some_and(|c| c.seq == seq) {
                    hash_at_claim = Some(hash);
                }
                if signed.as_ref().is_some_and(|c| c.checkpoint.tree_size == seq) {
                    hash_at_signed = Some(hash);
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
            let found = h.join().expect("decoder thread");
            if let Some((seq, why)) = found {
                if undecodable.as_ref().is_none_or(|(s, _)| seq < *s) {
                    undecodable = Some((seq, why));
                }
            }
        }
        r
    });
    // The first problem in log order: the decoder only sees frames whose every link
    // checked, so a record it could not decode comes before any other problem.
    let r = match undecodable {
        Some((seq, why)) => {
            report.records = seq - 1;
            Err(StoreError::Chain(ChainError::Undecodable { seq, why }))
        }
        None => r,
    };
    report.head = verifier.head();
    match r {
        Ok(end) => report.torn_tail = end.cut,
        Err(e) => report.error = Some(e.to_string()),
    }
    if let Some(c) = claim {
        report.index_agrees = Some(c.seq == 0 || hash_at_claim == Some(c.head));
    }
    if let (Some(cp), None) = (&signed, &report.error) {
        let c = &cp.checkpoint;
        let key = dir.join("keys").join("checkpoint.ed25519");
        let signer = std::fs::read(&key).ok().and_then(|b| <[u8; 32]>::try_from(b).ok()).map(|seed| SigningKey::from_bytes(&seed).verifying_key());
        if c.tree_size > report.records {
            report.error = Some(format!(
                "checkpoints/latest signed {} records but the log holds only {}: records are missing (a deleted or truncated segment?)",
                c.tree_size, report.records
            ));
        } else if c.tree_size > 0 && hash_at_signed != Some(c.chain_head) {
            report.error = Some(format!("record {} is not the one checkpoints/latest signed: the log was rewritten", c.tree_size));
        } else if signer.is_some_and(|k| cp.verify(&k).is_err()) {
            report.error = Some(format!("checkpoints/latest is not signed by {}: the key was replaced", key.display()));
        } else {
            report.checkpoint = Some(c.tree_size);
        }
    }
    Ok(report)
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
