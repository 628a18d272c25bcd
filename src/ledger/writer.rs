//! The single writer thread and its group commit.
//!
//! The writer drains what is waiting in its queue (a group, at most `GROUP_JOBS_MAX`
//! jobs) and commits it in named phases:
//!
//! 1. **decide and encode** (`decide_group`): under the state's write lock, with a
//!    journal level open for the whole group, each job is checked against the
//!    idempotency index, then decided batch by batch (`decide_batch`: authority, rules,
//!    apply) and its records encoded and chained. A batch whose records are too large is
//!    dropped, which takes it back out of the state.
//! 2. **make durable** (`make_durable`): the group's frames are appended to the log and
//!    made durable with one `fdatasync`.
//! 3. **take back** (`take_back`), only if the log refused: the group's journal level is
//!    dropped (the state is as before the group) and the log rewound to where the group
//!    started; every submitter is told nothing was recorded. A failed `fdatasync` cannot
//!    be taken back (the kernel may have dropped the pages): the ledger stops writing.
//! 4. **publish and answer** (`publish`): the level is committed, the Merkle files get
//!    the group's leaves, the head and tree move, the lock is released and every
//!    submitter is answered.
//! 5. **follow up** (`follow_up`), off the acknowledgement path: the group's sled batch
//!    (frame positions, idempotency entries, applied position), a snapshot every
//!    `snapshot_records` records, a signed checkpoint at most every interval, a lazy
//!    index flush.
//!
//! A fault the writer cannot take back stops it (`WriterFault::Stopped`: writes are
//! refused, reads go on); a panic (a bug) is caught and becomes `WriterFault::Panicked`
//! (reads stop too: the state may be half-changed). Either is published on the ledger's
//! fault watch, so the server turns NOT_SERVING and exits for a supervisor to restart it;
//! a restart recovers from the log.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::chain::codec;
use crate::chain::merkle::Leaf;
use crate::chain::record::{record_hash, request_digest, Hash, RecordRef, FORMAT_VERSION};
use crate::decide::{check_request_id, decide_prepared};
use crate::domain::command::{Command, Event};
use crate::domain::ids::RequestId;
use crate::domain::principal::Principal;
use crate::domain::rejection::{BatchRejection, Rejection};
use crate::limits::{BATCH_BYTES_MAX, FRAME_BYTES_MAX, RECORD_BYTES_MAX};
use crate::projection::state::{Seq, State};
use crate::store::index::{Applied, IdemEntry, IdemKey, IndexBatch};
use crate::store::log::{LogWriter, Position};
use crate::store::merkle::MerkleWriter;
use crate::store::StoreError;

use super::signer::TreeHead;
use super::{Receipt, Shared, SubmitResult, WriterFault};

/// How many jobs one group commit takes at most.
const GROUP_JOBS_MAX: usize = 256;

/// What the writer's queue carries: a submitted batch, or the replication driver's work.
pub(super) enum Work {
    Submit(Job),
    Replica(crate::replica::ToWriter),
}

/// One submitted batch, waiting for the writer.
pub(super) struct Job {
    pub principal: Principal,
    pub request_id: RequestId,
    pub commands: Vec<Command>,
    pub reply: Box<dyn FnOnce(SubmitResult) + Send>,
    /// What depends on the commands alone, worked out by the submitting thread (in
    /// parallel with the writer): the request's digest, and the fingerprint of each
    /// command's external number.
    pub digest: Hash,
    pub numbers: Vec<Option<u128>>,
}

impl Job {
    /// A job, with its digest and fingerprints taken on the calling thread.
    pub fn new(principal: Principal, request_id: RequestId, commands: Vec<Command>, reply: Box<dyn FnOnce(SubmitResult) + Send>) -> Job {
        let digest = request_digest(&commands);
        let numbers = crate::decide::fingerprints(&commands);
        Job { principal, request_id, commands, reply, digest, numbers }
    }
}

pub(super) struct Writer {
    pub shared: Arc<Shared>,
    pub log: LogWriter,
    pub next_seq: Seq,
    pub head: Hash,
    pub merkle: MerkleWriter,
    pub last_index_flush: Instant,
    /// The index flush under way, if any (`flush_index`).
    pub index_flush: Option<std::thread::JoinHandle<Result<(), StoreError>>>,
    pub last_checkpoint: Instant,
    pub checkpoint_interval: Duration,
    /// The record the newest snapshot reflects.
    pub snapshot_seq: Seq,
    pub snapshot_records: u64,
    /// The snapshot a child process is writing, with the `snapshot_seq` before it.
    pub pending_snapshot: Option<(Seq, crate::store::snapshot::Pending)>,
    /// After a failed snapshot, when the next may be tried.
    pub snapshot_retry_at: Option<Instant>,
    pub min_free_bytes: u64,
    /// A node of a replicated ledger (`replicated.rs`); `None`: the embedded ledger.
    pub replica: Option<super::replicated::Replica>,
}

enum Outcome {
    Done(SubmitResult),
    /// Accepted: waiting for the group to be durable.
    Pending(Receipt),
}

/// Where a group starts: what to go back to if the log refuses it.
#[derive(Clone, Copy)]
struct GroupStart {
    next_seq: Seq,
    head: Hash,
    log_end: Position,
}

/// A frame of the group: consecutive records, within `FRAME_BYTES_MAX`.
pub(super) struct PendingFrame {
    pub first_seq: Seq,
    pub records: Vec<Vec<u8>>,
    bytes: usize,
}

/// Phase 1's result: an outcome per job, the frames to write, the idempotency entries
/// and Merkle leaves of the accepted batches.
#[derive(Default)]
struct DecidedGroup {
    outcomes: Vec<Outcome>,
    frames: Vec<PendingFrame>,
    idem: HashMap<IdemKey, IdemEntry>,
    leaves: Vec<Leaf>,
    /// A fault reading the idempotency index stopped the deciding: nothing of the group
    /// may be written.
    fault: Option<StoreError>,
}

/// A batch's records, encoded and chained.
struct Encoded {
    records: Vec<Vec<u8>>,
    bytes: usize,
    /// The records' chain hashes (BLAKE3) and Merkle leaves (SHA-256 of their bytes).
    hashes: Vec<Hash>,
    leaves: Vec<Leaf>,
}

/// Where a frame of the group went in the log.
pub(super) struct Written {
    pub first_seq: Seq,
    pub pos: Position,
    pub count: u32,
}

/// Why phase 2 failed.
pub(super) struct WriteFailure {
    pub error: StoreError,
    /// `fdatasync` itself failed: the file's state is no longer known.
    pub sync_failed: bool,
}

/// What a panic said, for the fault it becomes.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let what = payload.downcast_ref::<&str>().map(|s| (*s).to_owned()).or_else(|| payload.downcast_ref::<String>().cloned());
    format!("the writer thread panicked: {}", what.unwrap_or_else(|| "a panic with no message".into()))
}

/// The writer thread's body: runs the writer, and turns a panic into a visible fault
/// that answers the group it hit and every later submission.
pub(super) fn run(w: Writer, rx: Receiver<Work>) {
    let shared = w.shared.clone();
    let mut w = Some(w);
    // A panic inside a group is caught in `Writer::run` (its jobs are answered there);
    // this catches one outside any group (the opening or closing snapshot, say).
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        if let Some(w) = w.take() {
            w.run(&rx);
        }
    }));
    if let Err(payload) = r {
        let why = panic_message(&*payload);
        tracing::error!(error = %why, "ledger fault: the writer died; refusing reads and writes until restart");
        shared.set_fault(WriterFault::Panicked(why));
    }
    if let Some(f @ WriterFault::Panicked(_)) = shared.fault() {
        // Every job still queued, and every one queued until the ledger closes, gets the
        // fault as its answer instead of waiting forever.
        for work in rx.iter() {
            match work {
                Work::Submit(job) => (job.reply)(Err(f.to_store_error())),
                Work::Replica(crate::replica::ToWriter::Apply(_, reply)) => {
                    let _ = reply.send(Err((0, f.to_store_error().to_string())));
                }
                Work::Replica(_) => {}
            }
        }
    }
}

impl Writer {
    fn run(mut self, rx: &Receiver<Work>) {
        // A long replay at open (no snapshot, or an old one) is not repeated by the next.
        self.snapshot_if_due();
        loop {
            // While idle, the tree's last records still get a signed checkpoint within
            // one interval: an auditor never waits on the next write for one.
            let first = match rx.recv_timeout(self.checkpoint_interval) {
                Ok(job) => job,
                Err(RecvTimeoutError::Timeout) => {
                    self.checkpoint_if_behind();
                    self.snapshot_if_due();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            // A group of submissions, up to the replication driver's next piece of work
            // (done right after, in order).
            let (mut jobs, mut replica_work) = match first {
                Work::Submit(j) => (vec![j], None),
                Work::Replica(r) => (Vec::new(), Some(r)),
            };
            while replica_work.is_none() && jobs.len() < GROUP_JOBS_MAX {
                match rx.try_recv() {
                    Ok(Work::Submit(j)) => jobs.push(j),
                    Ok(Work::Replica(r)) => replica_work = Some(r),
                    Err(_) => break,
                }
            }
            if jobs.is_empty() {
                if let Some(r) = replica_work.take() {
                    self.replica_work(r);
                }
                continue;
            }
            let m = crate::metrics::get();
            m.queue_depth.dec_by(jobs.len() as i64);
            m.group_batches.observe(jobs.len() as f64);
            let started = Instant::now();
            // `group` takes the jobs out of `jobs` only to answer them: a panic (a bug)
            // leaves the unanswered ones here, and they hear why.
            if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.group(&mut jobs))) {
                let why = panic_message(&*payload);
                tracing::error!(error = %why, "ledger fault: the writer died; refusing reads and writes until restart");
                self.shared.set_fault(WriterFault::Panicked(why.clone()));
                Self::answer_all(jobs, || StoreError::WriterFailed(why.clone()));
                return;
            }
            let busy = started.elapsed().as_secs_f64();
            m.group_commit_seconds.observe(busy);
            m.writer_busy_seconds.inc_by(busy);
            if let Some(r) = replica_work.take() {
                self.replica_work(r);
            }
        }
        // Closing: a checkpoint of every record, and a snapshot, so that the next start
        // replays nothing.
        self.checkpoint_if_behind();
        self.flush_index(true);
        self.abandon_snapshot();
        // Never a snapshot of a state found to differ from the log (it would carry a
        // forgery forward under a valid MAC).
        if self.shared.fault().is_none() && self.shared.damage().is_none() && self.next_seq - 1 > self.snapshot_seq {
            if let Err(e) = self.snapshot(true) {
                tracing::error!(error = %e, "the closing snapshot failed; the next start replays the log after the previous one");
            }
        }
    }

    fn tree(&self) -> TreeHead {
        TreeHead { size: self.next_seq - 1, root: self.merkle.root(), chain_head: self.head }
    }

    /// Signs a checkpoint of the tree if the latest one does not cover every record.
    fn checkpoint_if_behind(&mut self) {
        if self.shared.fault().is_some() {
            return;
        }
        self.last_checkpoint = Instant::now();
        match self.shared.signer.sign_if_behind(self.shared.tree(), (self.shared.clock)()) {
            Ok(_) => {}
            // The log holds every record; the checkpoint attesting them is signed again
            // once space returns (the disk reserve refuses new batches meanwhile).
            Err(e) if e.is_disk_full() => tracing::warn!(error = %e, "a checkpoint could not be saved: the disk is full; trying again"),
            Err(e) => self.stop(e.to_string()),
        }
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

    /// Stops all further writes (fail-stop): a fault the writer cannot take back.
    pub(super) fn stop(&self, why: String) {
        tracing::error!(error = %why, "ledger fault: refusing all further writes");
        self.shared.set_fault(WriterFault::Stopped(why));
    }

    /// Answers a whole group with one fault.
    pub(super) fn answer_all(jobs: Vec<Job>, e: impl Fn() -> StoreError) {
        for j in jobs {
            (j.reply)(Err(e()));
        }
    }

    fn group(&mut self, jobs: &mut Vec<Job>) {
        if let Some(f) = self.shared.fault() {
            return Self::answer_all(std::mem::take(jobs), || f.to_store_error());
        }
        if let Some(d) = self.shared.damage() {
            return Self::answer_all(std::mem::take(jobs), || StoreError::Damaged(d.to_string()));
        }
        // A follower of a replicated ledger writes only what the leader wrote.
        if let Some(leader) = self.replica.as_ref().and_then(super::replicated::Replica::not_leading) {
            return Self::answer_all(std::mem::take(jobs), || StoreError::NotLeader { leader: leader.clone() });
        }
        if let Err(e) = crate::failpoint::pass("writer.group", self.shared.ledger_id.as_str()) {
            self.stop(e.to_string());
            return Self::answer_all(std::mem::take(jobs), || StoreError::Poisoned(e.to_string()));
        }
        // Below the reserve nothing is decided: the request is refused whole, and the
        // next group tries again (space may have returned).
        match crate::fsutil::free_bytes(&self.shared.dir) {
            Ok(free) if free < self.min_free_bytes => {
                tracing::warn!(free, reserve = self.min_free_bytes, "disk full: refusing new batches until space returns");
                let reserve = self.min_free_bytes;
                return Self::answer_all(std::mem::take(jobs), || StoreError::DiskFull { free, reserve });
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read the free space of the data directory"),
        }
        let start = GroupStart { next_seq: self.next_seq, head: self.head, log_end: self.log.end() };
        let shared = self.shared.clone();
        let mut guard = match shared.write_state() {
            Ok(g) => g,
            Err(e) => return Self::answer_all(std::mem::take(jobs), || StoreError::WriterFailed(e.to_string())),
        };
        // One journal level for the whole group: dropped without commit, it takes every
        // batch of the group back out of the state.
        let mut group = guard.txn();

        // 1. Decide and encode.
        let DecidedGroup { outcomes, frames, idem, leaves, fault } = self.decide_group(&mut group, jobs);
        if let Some(error) = fault {
            drop(group);
            drop(guard);
            return self.take_back(start, WriteFailure { error, sync_failed: false }, std::mem::take(jobs), outcomes);
        }

        // 2. Make durable.
        let written = match self.replicate(&frames, start.head).and_then(|()| self.make_durable(&frames).map_err(|f| self.after_replicated(f))) {
            Ok(w) => w,
            Err(failure) => {
                // 3. Take back: the state first (dropping the level), then the log.
                drop(group);
                drop(guard);
                return self.take_back(start, failure, std::mem::take(jobs), outcomes);
            }
        };

        // 4. Publish and answer.
        group.commit();
        let m = crate::metrics::get();
        m.group_records.observe(leaves.len() as f64);
        m.records.inc_by(leaves.len() as u64);
        m.log_bytes.inc_by(frames.iter().flat_map(|f| &f.records).map(|r| r.len() as u64).sum());
        if let Err(e) = self.publish(&leaves) {
            drop(guard);
            self.stop(e.to_string());
            return Self::answer_all(std::mem::take(jobs), || StoreError::Poisoned(e.to_string()));
        }
        drop(guard);
        for (job, outcome) in std::mem::take(jobs).into_iter().zip(outcomes) {
            match outcome {
                Outcome::Done(r) => (job.reply)(r),
                Outcome::Pending(r) => (job.reply)(Ok(Ok(r))),
            }
        }

        // 5. Follow up.
        self.follow_up(written, idem, !leaves.is_empty());
    }

    /// Phase 1: an outcome for every job; accepted batches applied to `state` (inside the
    /// group's journal level) and encoded into frames. Stops at a fault reading the
    /// idempotency index (`DecidedGroup::fault`).
    fn decide_group(&mut self, state: &mut State, jobs: &[Job]) -> DecidedGroup {
        let now = (self.shared.clock)();
        let mut g = DecidedGroup { outcomes: Vec::with_capacity(jobs.len()), ..Default::default() };
        for job in jobs {
            let key = IdemKey { principal: job.principal.clone(), request_id: job.request_id.clone() };
            let digest = job.digest;
            let known = match g.idem.get(&key) {
                Some(e) => Some(e.clone()),
                None => match self.shared.index.idem(&key) {
                    Ok(e) => e,
                    Err(e) => {
                        g.fault = Some(e);
                        return g;
                    }
                },
            };
            if let Some(e) = known {
                let outcome = if e.digest == digest {
                    let r = Receipt { first_seq: e.first_seq, last_seq: e.last_seq, head: e.head, recorded_at_ms: e.recorded_at_ms, replayed: true };
                    // A retry of a request in this very group is answered once it is durable.
                    if g.idem.contains_key(&key) { Outcome::Pending(r) } else { Outcome::Done(Ok(Ok(r))) }
                } else {
                    Outcome::Done(Ok(Err(BatchRejection { index: None, rejection: Rejection::RequestIdReused(job.request_id.to_string()) })))
                };
                g.outcomes.push(outcome);
                continue;
            }
            let first_seq = self.next_seq;
            let batch = match check_request_id(&job.request_id).and_then(|()| decide_prepared(state, &job.principal, &job.commands, &job.numbers, first_seq)) {
                Ok(b) => b,
                Err(rej) => {
                    g.outcomes.push(Outcome::Done(Ok(Err(rej))));
                    continue;
                }
            };
            let enc = self.encode(&batch.events, first_seq, now, &job.principal, &job.request_id);
            if enc.bytes > BATCH_BYTES_MAX {
                // Dropping the decided batch takes it back out of the state.
                drop(batch);
                let rejection = Rejection::BatchBytesTooLarge { bytes: enc.bytes, max: BATCH_BYTES_MAX };
                g.outcomes.push(Outcome::Done(Ok(Err(BatchRejection { index: None, rejection }))));
                continue;
            }
            let count = batch.commit().len() as u64;
            let head = *enc.hashes.last().expect("a decided batch has at least one event");
            g.leaves.extend_from_slice(&enc.leaves);
            match g.frames.last_mut() {
                Some(f) if f.bytes + enc.bytes <= FRAME_BYTES_MAX => {
                    f.records.extend(enc.records);
                    f.bytes += enc.bytes;
                }
                _ => g.frames.push(PendingFrame { first_seq, records: enc.records, bytes: enc.bytes }),
            }
            self.next_seq += count;
            self.head = head;
            let receipt = Receipt { first_seq, last_seq: self.next_seq - 1, head, recorded_at_ms: now, replayed: false };
            g.idem.insert(key, IdemEntry { digest, first_seq, last_seq: receipt.last_seq, head, recorded_at_ms: now });
            g.outcomes.push(Outcome::Pending(receipt));
        }
        g
    }

    /// Phase 2: every frame appended, then one `fdatasync`.
    fn make_durable(&mut self, frames: &[PendingFrame]) -> Result<Vec<Written>, WriteFailure> {
        let mut written = Vec::with_capacity(frames.len());
        // The log records the newest checkpoint saved before these frames (see `log`).
        let signed = self.shared.signer.signed_size();
        for f in frames {
            match self.log.append(f.first_seq, signed, &f.records) {
                Ok(pos) => written.push(Written { first_seq: f.first_seq, pos, count: f.records.len() as u32 }),
                Err(error) => return Err(WriteFailure { error, sync_failed: false }),
            }
        }
        let synced = Instant::now();
        self.log.sync().map_err(|error| WriteFailure { error, sync_failed: true })?;
        crate::metrics::get().fdatasync_seconds.observe(synced.elapsed().as_secs_f64());
        Ok(written)
    }

    /// Phase 3: the group was not made durable and the state is already as before it;
    /// take it out of the log too and tell every submitter. Retries of requests
    /// acknowledged in earlier groups keep their answers.
    fn take_back(&mut self, start: GroupStart, failure: WriteFailure, jobs: Vec<Job>, outcomes: Vec<Outcome>) {
        self.next_seq = start.next_seq;
        self.head = start.head;
        let rewound = self.log.rewind(start.log_end);
        let e = self.write_fault(failure.error);
        // After a failed fdatasync the kernel may have dropped the dirty pages and
        // forgotten the error, so whether the file is whole is no longer known:
        // fail-stop, and let a restart check the log. Likewise if the rewind failed.
        let stop = if failure.sync_failed {
            Some(e.to_string())
        } else if let Err(r) = rewound {
            Some(format!("{e}; taking the group back out of the log failed too: {r}"))
        } else {
            None
        };
        if let Some(why) = stop {
            self.stop(why.clone());
            return Self::answer_all(jobs, || StoreError::Poisoned(why.clone()));
        }
        tracing::warn!(error = %e, "a group commit was refused by the log and taken back; the ledger goes on");
        let not_written = || match &e {
            StoreError::DiskFull { free, reserve } => StoreError::DiskFull { free: *free, reserve: *reserve },
            StoreError::NotLeader { leader } => StoreError::NotLeader { leader: leader.clone() },
            StoreError::OutcomeUnknown(why) => StoreError::OutcomeUnknown(why.clone()),
            other => StoreError::NotWritten(other.to_string()),
        };
        let mut outcomes = outcomes.into_iter();
        for job in jobs {
            match outcomes.next() {
                Some(Outcome::Done(r)) => (job.reply)(r),
                _ => (job.reply)(Err(not_written())),
            }
        }
    }

    /// Phase 4: the tree follows the log (proofs may be asked for any size up to it),
    /// then the head and the durable watch move.
    pub(super) fn publish(&mut self, leaves: &[Leaf]) -> Result<(), StoreError> {
        for l in leaves {
            self.merkle.push(*l);
        }
        self.merkle.flush()?;
        assert_eq!(self.merkle.size(), self.next_seq - 1, "one Merkle leaf per record (the writer pushes exactly the group's)");
        self.shared.publish(self.tree());
        Ok(())
    }

    /// Phase 5: the index, snapshots, checkpoints and flushes follow, off the
    /// acknowledgement path.
    pub(super) fn follow_up(&mut self, written: Vec<Written>, idem: HashMap<IdemKey, IdemEntry>, new_records: bool) {
        if written.is_empty() && idem.is_empty() {
            return;
        }
        let mut batch = IndexBatch::default();
        for w in written {
            batch.frame(w.first_seq, w.pos, w.count);
        }
        for (k, e) in &idem {
            batch.idem(k, e);
        }
        batch.applied(Applied { seq: self.next_seq - 1, head: self.head, log_end: self.log.end() });
        if let Err(e) = self.shared.index.apply(batch) {
            return self.stop(e.to_string());
        }
        self.snapshot_if_due();
        if new_records && self.last_checkpoint.elapsed() >= self.checkpoint_interval {
            self.checkpoint_if_behind();
            if self.shared.fault().is_some() {
                return;
            }
        }
        if self.last_index_flush.elapsed() >= Duration::from_millis(crate::limits::INDEX_FLUSH_INTERVAL_MS) {
            self.flush_index(false);
        }
    }

    /// Flushes the sled index on a thread of its own (a flush syncs sled's files: the
    /// writer does not wait for it), one at a time; with `wait`, waits for it. A flush
    /// that failed stops the writer, as it did when the writer flushed itself.
    pub(super) fn flush_index(&mut self, wait: bool) {
        if self.index_flush.as_ref().is_some_and(|h| wait || h.is_finished()) {
            let done = self.index_flush.take().expect("checked").join();
            match done {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return self.stop(e.to_string()),
                Err(_) => return self.stop("the index flush panicked".into()),
            }
        }
        if self.index_flush.is_none() && !wait {
            self.last_index_flush = Instant::now();
            let shared = self.shared.clone();
            match std::thread::Builder::new().name("anxin-index-flush".into()).spawn(move || shared.index.flush()) {
                Ok(h) => self.index_flush = Some(h),
                // No thread to spare: flushed here, as before.
                Err(_) => {
                    if let Err(e) = self.shared.index.flush() {
                        self.stop(e.to_string());
                    }
                }
            }
        }
    }

    /// Encodes and chains a batch's records.
    fn encode(&self, events: &[Event], first_seq: Seq, now: i64, principal: &Principal, request_id: &RequestId) -> Encoded {
        let mut head = self.head;
        let mut out = Encoded { records: Vec::with_capacity(events.len()), bytes: 0, hashes: Vec::with_capacity(events.len()), leaves: Vec::with_capacity(events.len()) };
        for (i, event) in events.iter().enumerate() {
            let rec = RecordRef { version: FORMAT_VERSION, seq: first_seq + i as u64, prev_hash: &head, recorded_at_ms: now, principal, request_id, event };
            let bytes = codec::encode(&rec);
            assert!(bytes.len() <= RECORD_BYTES_MAX, "command limits bound every record");
            head = record_hash(&bytes);
            out.hashes.push(head);
            out.leaves.push(Leaf::of_record(&bytes));
            out.bytes += bytes.len();
            out.records.push(bytes);
        }
        out
    }
}
