//! The ledger: one writer that owns the sequence and the decision state, and the read
//! side that queries share. One file per job:
//!
//! - `mod.rs` (here): the handle, `Ledger`: submitting batches, reading the state and
//!   the log, the fault state, closing.
//! - `writer.rs`: the single writer thread and its group commit, in named phases.
//! - `snapshots.rs`: the writer's snapshots (a forked child writes them while it goes on).
//! - `recovery.rs`: what `open` does before the writer starts (snapshot, replay, checks).
//! - `signer.rs`: the checkpoint signing key and the signed checkpoint files.
//! - `proofs.rs`: checkpoints and Merkle proofs for the audit API.
//! - `verify.rs`: offline `verify` and `rebuild` of a data directory.
//! - `requests.rs`: the requests (idempotency entries) a run of records holds.
//!
//! Submitters hand batches to the writer thread over a bounded channel; the writer
//! decides, applies, encodes, makes durable, and only then answers (`writer.rs`).
//! Readers take the state's read lock; the writer holds the write lock from deciding
//! until the group is durable, so a query never sees a record that could still be lost.

mod proofs;
mod recovery;
mod reads;
mod replicated;
mod requests;
mod scrub;
mod signer;
mod snapshots;
mod upgrade;
mod verify;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;

use crate::chain::record::Hash;
use crate::domain::command::Command;
use crate::domain::date::{CalendarBook, Date};
use crate::domain::ids::{LedgerId, RequestId};
use crate::domain::policy::PolicyBook;
use crate::domain::principal::Principal;
use crate::domain::rejection::BatchRejection;
use crate::limits::WRITER_QUEUE_DEPTH;
use crate::projection::state::{Seq, State};
use crate::store::index::Index;
use crate::store::merkle::MerkleFiles;
use crate::store::StoreError;

pub use proofs::ProofRequestError;
pub use scrub::{Damage, ScrubReport};
pub(crate) use recovery::create_ledger_id;
pub(crate) use signer::save_checkpoint;
pub use verify::{decode_record, rebuild, verify, verify_pinned, Finding, VerifyReport};

use signer::{Signer, TreeHead};
use writer::{Job, Work, Writer};

/// The tree size of the signed checkpoint a data directory holds (`checkpoints/latest`),
/// if it holds a readable one: a floor under what its log held, read without opening it.
pub fn signed_size_on_disk(dir: &Path) -> Option<Seq> {
    signer::load_checkpoint(dir).ok().flatten().map(|c| c.checkpoint.tree_size)
}

/// Unix milliseconds now. Injected so that tests and replays control time.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(|| {
        // Outside data (the machine's clock), refused rather than recorded: a record
        // stamped before 1970 or past year 292 million would be a lie. On the writer a
        // panic becomes a visible fault (`WriterFault::Panicked`), not a silent stamp.
        let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("the system clock is set before 1970: fix the clock");
        i64::try_from(d.as_millis()).expect("the system clock is past year 292,000,000: fix the clock")
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
    /// Scrub the whole log, the Merkle files and the newest snapshot in the background
    /// right after the start (`scrub.rs`).
    pub scrub_at_start: bool,
    /// ... and again this long after each pass ends (`None`: only at the start).
    pub scrub_interval: Option<std::time::Duration>,
    /// Run as a node of a replicated ledger (`crate::replica`); `None`: embedded.
    pub replication: Option<crate::replica::ReplicaOptions>,
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
            scrub_at_start: true,
            scrub_interval: Some(std::time::Duration::from_secs(crate::limits::SCRUB_INTERVAL_S)),
            replication: None,
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

/// Why the writer stopped: the ledger's visible fault state, published on a watch
/// (`Ledger::watch_fault`) so the server can turn NOT_SERVING and exit for a supervisor
/// to restart it (a restart recovers from the log).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriterFault {
    /// A write the writer could not take back (a failed `fdatasync`, the index, Merkle
    /// files or checkpoint failing after the log took a group): writes are refused
    /// (`LEDGER_POISONED`); reads go on, the state is whole.
    Stopped(String),
    /// The writer thread panicked (a bug): the state may be half-changed, so reads are
    /// refused too (`WRITER_FAILED`).
    Panicked(String),
}

impl WriterFault {
    /// The error every submission (and, for a panic, every read) is answered with.
    pub fn to_store_error(&self) -> StoreError {
        match self {
            WriterFault::Stopped(why) => StoreError::Poisoned(why.clone()),
            WriterFault::Panicked(why) => StoreError::WriterFailed(why.clone()),
        }
    }
}

/// What the handle and the writer share.
struct Shared {
    dir: PathBuf,
    ledger_id: LedgerId,
    state: RwLock<State>,
    index: Index,
    /// (last seq, chain head) of what is durable.
    head: Mutex<(Seq, Hash)>,
    fault: tokio::sync::watch::Sender<Option<WriterFault>>,
    /// Damage the scrub found: the ledger is read-only while it is set.
    damage: tokio::sync::watch::Sender<Option<Damage>>,
    last_scrub: Mutex<Option<ScrubReport>>,
    /// Held by a repair of the Merkle files that a proof asked for (one at a time).
    repairing: Mutex<()>,
    /// The last durable sequence number, for live subscribers (never blocks the writer).
    durable: tokio::sync::watch::Sender<Seq>,
    /// The Merkle tree's files, for proofs (read-only here; the writer appends).
    merkle: Arc<MerkleFiles>,
    /// The tree as of the last group commit.
    tree: Mutex<TreeHead>,
    signer: Signer,
    /// The key of the snapshots' MAC (from the signing key).
    snapshot_key: crate::store::snapshot::SnapshotKey,
    policies: PolicyBook,
    calendars: CalendarBook,
    clock: Clock,
}

impl Shared {
    fn fault(&self) -> Option<WriterFault> {
        self.fault.borrow().clone()
    }

    /// Records the first fault (a later one does not hide the cause).
    fn set_fault(&self, f: WriterFault) {
        self.fault.send_if_modified(|cur| {
            if cur.is_none() || matches!((&*cur, &f), (Some(WriterFault::Stopped(_)), WriterFault::Panicked(_))) {
                *cur = Some(f);
                true
            } else {
                false
            }
        });
    }

    /// Records the first damage found (the place a repair starts from).
    fn set_damage(&self, d: Damage) {
        self.damage.send_if_modified(|cur| {
            if cur.is_none() {
                *cur = Some(d);
                true
            } else {
                false
            }
        });
    }

    fn damage(&self) -> Option<Damage> {
        self.damage.borrow().clone()
    }

    /// The state for reading, unless the writer died in the middle of changing it.
    fn read_state(&self) -> Result<RwLockReadGuard<'_, State>, StoreError> {
        if let Some(f @ WriterFault::Panicked(_)) = self.fault() {
            return Err(f.to_store_error());
        }
        // A state found to differ from the log (a forged snapshot) is not served.
        if let Some(d) = self.damage().filter(|d| d.state_suspect) {
            return Err(StoreError::Damaged(d.to_string()));
        }
        self.state.read().map_err(|_| StoreError::WriterFailed("the writer panicked while changing the state".into()))
    }

    fn write_state(&self) -> Result<RwLockWriteGuard<'_, State>, StoreError> {
        self.state.write().map_err(|_| StoreError::WriterFailed("the writer panicked while changing the state".into()))
    }

    fn tree(&self) -> TreeHead {
        *self.tree.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A group is durable and its leaves are in the Merkle files: the tree, the head and
    /// the durable watch move to it.
    fn publish(&self, tree: TreeHead) {
        // The head first: whoever sees the tree at a size finds its records readable.
        *self.head.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = (tree.size, tree.chain_head);
        *self.tree.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = tree;
        self.durable.send_replace(tree.size);
    }
}

/// An open ledger. Cloning is not offered: share it behind an `Arc`.
pub struct Ledger {
    shared: Arc<Shared>,
    /// The writer's queue; `None` once shut down.
    tx: Mutex<Option<SyncSender<Work>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// The background scrub: a channel that stops it, and its thread.
    scrubber: Mutex<Option<(mpsc::Sender<()>, JoinHandle<()>)>>,
    /// A node of a replicated ledger: its role, and the replication driver.
    role: Option<crate::replica::RoleCell>,
    driver: Mutex<Option<replicated::DriverHandle>>,
    recovery: Recovery,
    /// Set once shut down: live streams and watchers let go of the ledger.
    closed: tokio::sync::watch::Sender<bool>,
}

impl Ledger {
    /// Opens (or creates) the ledger in `dir` and recovers it (`recovery.rs`), then
    /// starts the writer thread.
    ///
    /// # Errors
    /// `StoreError` if the data directory is damaged (naming the damage) or unreadable.
    pub fn open(dir: &Path, opts: LedgerOptions) -> Result<Ledger, StoreError> {
        let r = recovery::recover(dir, &opts)?;
        let shared = Arc::new(Shared {
            dir: dir.to_owned(),
            ledger_id: r.ledger_id.clone(),
            state: RwLock::new(r.state),
            index: r.index,
            head: Mutex::new((r.tree.size, r.tree.chain_head)),
            fault: tokio::sync::watch::Sender::new(None),
            damage: tokio::sync::watch::Sender::new(None),
            last_scrub: Mutex::new(None),
            repairing: Mutex::new(()),
            durable: tokio::sync::watch::Sender::new(r.tree.size),
            merkle: r.merkle.reader(),
            tree: Mutex::new(r.tree),
            signer: Signer::new(r.signing_key, r.checkpoint, dir.to_owned(), r.ledger_id),
            snapshot_key: r.snapshot_key,
            policies: opts.policies,
            calendars: opts.calendars,
            clock: opts.clock,
        });
        let (tx, rx) = mpsc::sync_channel(WRITER_QUEUE_DEPTH);
        let w = Writer {
            shared: shared.clone(),
            log: r.log,
            next_seq: r.tree.size + 1,
            head: r.tree.chain_head,
            merkle: r.merkle,
            last_index_flush: std::time::Instant::now(),
            index_flush: None,
            last_checkpoint: std::time::Instant::now(),
            checkpoint_interval: std::time::Duration::from_millis(opts.checkpoint_interval_ms),
            snapshot_seq: r.snapshot_seq,
            pending_snapshot: None,
            snapshot_retry_at: None,
            snapshot_records: opts.snapshot_records.max(1),
            min_free_bytes: opts.min_free_bytes,
            replica: None,
        };
        let role = opts.replication.as_ref().map(|_| replicated::new_role());
        let w = Writer { replica: role.clone().map(replicated::Replica::new), ..w };
        let writer = std::thread::Builder::new().name("anxin-writer".into()).spawn(move || writer::run(w, rx))?;
        let driver = match (opts.replication.clone(), &role) {
            (Some(r), Some(role)) => match replicated::start(&shared, tx.clone(), r, role.clone()) {
                Ok(d) => Some(d),
                Err(e) => {
                    drop(tx);
                    let _ = writer.join();
                    return Err(e);
                }
            },
            _ => None,
        };
        let scrubber = if opts.scrub_at_start {
            let (stop_tx, stop_rx) = mpsc::channel();
            let s = shared.clone();
            let interval = opts.scrub_interval;
            let handle = std::thread::Builder::new().name("anxin-scrub".into()).spawn(move || scrub::run(s, interval, stop_rx))?;
            Some((stop_tx, handle))
        } else {
            None
        };
        Ok(Ledger { shared, tx: Mutex::new(Some(tx)), writer: Mutex::new(Some(writer)), scrubber: Mutex::new(scrubber), role, driver: Mutex::new(driver), recovery: r.recovery, closed: tokio::sync::watch::Sender::new(false) })
    }

    /// A node of a replicated ledger: whether it leads now (`None`: embedded).
    pub fn role(&self) -> Option<crate::replica::Role> {
        self.role.as_ref().map(|r| r.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone())
    }

    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    pub fn ledger_id(&self) -> &str {
        self.shared.ledger_id.as_str()
    }

    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// (last durable sequence number, chain head).
    pub fn head(&self) -> (Seq, Hash) {
        *self.shared.head.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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
    ///
    /// # Errors
    /// `StoreError::WriterFailed` once the writer died (`WriterFault::Panicked`): the
    /// state may be half-changed and is not served.
    pub fn state(&self) -> Result<RwLockReadGuard<'_, State>, StoreError> {
        self.shared.read_state()
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
        let job = Work::Submit(Job::new(principal, request_id, commands, reply));
        crate::metrics::get().queue_depth.inc();
        let sent = match tx.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(job)) => tx.send(job).map_err(|_| StoreError::Closed),
            Err(TrySendError::Disconnected(_)) => Err(StoreError::Closed),
        };
        if sent.is_err() {
            crate::metrics::get().queue_depth.dec();
        }
        sent
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
        let job = Work::Submit(Job::new(principal, request_id, commands, Box::new(move |r| {
            let _ = reply_tx.send(r);
        })));
        crate::metrics::get().queue_depth.inc();
        let sent = match tx.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(job)) => tokio::task::spawn_blocking(move || tx.send(job)).await.map_err(|_| StoreError::Closed).and_then(|r| r.map_err(|_| StoreError::Closed)),
            Err(TrySendError::Disconnected(_)) => Err(StoreError::Closed),
        };
        if let Err(e) = sent {
            crate::metrics::get().queue_depth.dec();
            return Err(e);
        }
        Ok(reply_rx)
    }

    /// Submits a batch from async code and waits until it is durable or refused.
    pub async fn submit_async(&self, principal: Principal, request_id: RequestId, commands: Vec<Command>) -> SubmitResult {
        self.enqueue(principal, request_id, commands).await?.await.map_err(|_| self.unanswered())?
    }

    /// Watches the last durable sequence number (for live tails).
    pub fn watch_durable(&self) -> tokio::sync::watch::Receiver<Seq> {
        self.shared.durable.subscribe()
    }

    /// Whether a fault stopped the writer, and why.
    pub fn fault(&self) -> Option<WriterFault> {
        self.shared.fault()
    }

    /// Watches the fault state: it changes once, from `None` to the first fault.
    pub fn watch_fault(&self) -> tokio::sync::watch::Receiver<Option<WriterFault>> {
        self.shared.fault.subscribe()
    }

    /// Why a submission's answer never came: the writer's fault if it has one, else a
    /// shutdown.
    pub fn unanswered(&self) -> StoreError {
        self.shared.fault().map_or(StoreError::Closed, |f| f.to_store_error())
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
        rx.recv().map_err(|_| self.unanswered())?
    }

    /// The canonical bytes of records `from..=to` (bounded by what is durable), each
    /// checked before it is handed out (`reads.rs`).
    ///
    /// # Errors
    /// `StoreError::Corruption` naming the first record that is missing, out of place or
    /// does not chain (damage: the API answers DATA_LOSS); I/O errors.
    pub fn read_records(&self, from: Seq, to: Seq) -> Result<Vec<(Seq, Vec<u8>)>, StoreError> {
        self.shared.read_records(from, to)
    }

    fn sender(&self) -> Result<SyncSender<Work>, StoreError> {
        if let Some(f) = self.shared.fault() {
            return Err(f.to_store_error());
        }
        if let Some(d) = self.shared.damage() {
            return Err(StoreError::Damaged(d.to_string()));
        }
        self.tx.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone().ok_or(StoreError::Closed)
    }

    /// Stops the writer after it has answered everything queued, and flushes the index.
    ///
    /// # Errors
    /// `StoreError` if the final flush fails.
    pub fn close(self) -> Result<(), StoreError> {
        self.shutdown()
    }

    /// Turns `true` once the ledger is shut down: whoever holds it for a live stream or a
    /// watch lets it go then.
    pub fn watch_closed(&self) -> tokio::sync::watch::Receiver<bool> {
        self.closed.subscribe()
    }

    /// Like `close`, for a ledger shared behind an `Arc`: later submissions get
    /// `StoreError::Closed`; reads keep working.
    ///
    /// # Errors
    /// `StoreError` if the final flush fails.
    pub fn shutdown(&self) -> Result<(), StoreError> {
        self.closed.send_replace(true);
        // The replication driver first (it feeds the writer; a leader gives its lease up).
        let driver = self.driver.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some((closing, handle)) = driver {
            closing.store(true, std::sync::atomic::Ordering::Release);
            let _ = handle.join();
        }
        // The scrub stops between two frames.
        let scrubber = self.scrubber.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some((stop, handle)) = scrubber {
            let _ = stop.send(());
            // Dropped before the join: a scrub waiting for its next pass sees the
            // channel close, whatever it did with the message.
            drop(stop);
            let _ = handle.join();
        }
        self.tx.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        let writer = self.writer.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
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

