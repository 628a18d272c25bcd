//! The ledger as a node of a replicated ledger (`crate::replica`): the writer's side
//! (commit to the database before the local log; apply the frames a follower fetches)
//! and the driver's view of the ledger.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::chain::record::{record_hash, ChainVerifier, Hash};
use crate::chain::merkle::Leaf;
use crate::replica::{FrameRow, FrameSink, OutFrame, PgError, ReplicaOptions, Role, RoleCell, ToWriter};
use crate::store::index::{IdemEntry, IdemKey};
use crate::store::StoreError;

use super::writer::{PendingFrame, Work, Writer, Written};
use super::Shared;

/// The writer's replication state.
pub(crate) struct Replica {
    /// Set while this node leads: the connection frames are committed through.
    sink: Option<FrameSink>,
    role: RoleCell,
}

impl Replica {
    pub(super) fn new(role: RoleCell) -> Replica {
        Replica { sink: None, role }
    }

    /// `Some(leader's address)` unless this node leads.
    pub(super) fn not_leading(&self) -> Option<Option<String>> {
        if self.sink.is_some() {
            return None;
        }
        match &*self.role.lock().unwrap_or_else(std::sync::PoisonError::into_inner) {
            Role::Follower { leader } => Some(leader.clone()),
            Role::Leader { .. } => Some(None),
        }
    }

    fn set_role(&self, role: Role) {
        *self.role.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = role;
    }
}

impl Writer {
    /// Before the local log: the group's frames go into the database (the leader's
    /// commit). Nothing is acknowledged unless this returned `Ok`; on any failure the node
    /// steps down (the group is taken back by the caller).
    pub(super) fn replicate(&mut self, frames: &[PendingFrame], start_head: Hash) -> Result<(), super::writer::WriteFailure> {
        let Some(replica) = self.replica.as_mut() else { return Ok(()) };
        let Some(sink) = replica.sink.as_mut() else {
            return Err(super::writer::WriteFailure { error: StoreError::NotLeader { leader: None }, sync_failed: false });
        };
        let mut prev = start_head;
        let out: Vec<OutFrame<'_>> = frames
            .iter()
            .map(|f| {
                let head = record_hash(f.records.last().expect("a frame holds records"));
                let o = OutFrame { first_seq: f.first_seq, records: &f.records, prev_head: prev, head };
                prev = head;
                o
            })
            .collect();
        let r = sink.commit(&out);
        let epoch = sink.epoch;
        match r {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::warn!(epoch, error = %e, "replication: a commit failed: stepping down");
                replica.sink = None;
                replica.set_role(Role::Follower { leader: None });
                let error = match e {
                    PgError::Fenced(_) => StoreError::NotLeader { leader: None },
                    PgError::Connection(why) => StoreError::OutcomeUnknown(why),
                    other => StoreError::NotWritten(other.to_string()),
                };
                Err(super::writer::WriteFailure { error, sync_failed: false })
            }
        }
    }

    /// The local log failed a group the database already holds: not "nothing recorded"
    /// but unknown to the client (the frame is in the history; the node steps down and
    /// its catch-up fills its own log in). Unchanged for the embedded ledger.
    pub(super) fn after_replicated(&mut self, mut failure: super::writer::WriteFailure) -> super::writer::WriteFailure {
        if let Some(r) = self.replica.as_mut().filter(|r| r.sink.is_some()) {
            r.sink = None;
            r.set_role(Role::Follower { leader: None });
            tracing::error!(error = %failure.error, "replication: the local log failed a group the database holds: stepping down; catch-up fills the log in");
            failure.error = StoreError::OutcomeUnknown(format!("committed to the database, but this node's log failed: {}", failure.error));
        }
        failure
    }

    /// Work the replication driver sends.
    pub(super) fn replica_work(&mut self, w: ToWriter) {
        match w {
            ToWriter::Apply(rows, reply) => {
                let numbers: Vec<i64> = rows.iter().map(|r| r.frame_no).collect();
                let leading = self.replica.as_ref().is_some_and(|r| r.sink.is_some());
                let r = self.apply_frames(rows);
                if let (Err((k, why)), false) = (&r, leading) {
                    // A frame that does not check is refused, and nothing after it is
                    // applied: the node stays read-only at what it has, naming the frame.
                    let frame = numbers.get(*k).copied().unwrap_or(0);
                    tracing::error!(frame, why = %why, "replication: a frame from the database does not check: following stops here");
                    self.shared.set_damage(super::Damage { at: format!("database frame {frame}"), why: why.clone(), state_suspect: false });
                }
                let _ = reply.send(r);
            }
            ToWriter::Lead(sink, done) => {
                if let Some(r) = self.replica.as_mut() {
                    tracing::info!(epoch = sink.epoch, next_frame = sink.next_frame, head = self.next_seq - 1, "replication: leading");
                    r.set_role(Role::Leader { epoch: sink.epoch });
                    r.sink = Some(sink);
                }
                let _ = done.send(());
            }
            ToWriter::StepDown(leader) => {
                if let Some(r) = self.replica.as_mut() {
                    if r.sink.take().is_some() {
                        tracing::warn!("replication: stepped down");
                    }
                    r.set_role(Role::Follower { leader });
                }
            }
        }
    }

    /// A follower appends and applies frames the database holds, after checking every
    /// record's hash and link against its own head (records it already has are skipped):
    /// every frame that checks, up to the first that does not, as one group (one turn of
    /// the state's lock, one `fdatasync`). `Ok(n)`: all `n` applied; `Err((k, why))`: the
    /// first `k` applied, frame `k` refused, nothing after it.
    fn apply_frames(&mut self, rows: Vec<FrameRow>) -> Result<usize, (usize, String)> {
        if self.replica.as_ref().is_some_and(|r| r.sink.is_some()) {
            return Err((0, "this node leads: it applies no frames".into()));
        }
        if let Some(f) = self.shared.fault() {
            return Err((0, f.to_store_error().to_string()));
        }
        let n = rows.len();
        let (mut next, mut head) = (self.next_seq, self.head);
        let mut checked = Vec::with_capacity(n);
        let mut refused = None;
        for (k, row) in rows.into_iter().enumerate() {
            match check_frame(row, next, head) {
                Ok(Some(c)) => {
                    next = c.last_seq + 1;
                    head = c.head;
                    checked.push(c);
                }
                Ok(None) => {}
                Err(why) => {
                    refused = Some((k, why));
                    break;
                }
            }
        }
        let applied = refused.as_ref().map_or(n, |(k, _)| *k);
        if !checked.is_empty() {
            self.apply_checked(checked).map_err(|why| (0, why))?;
        }
        match refused {
            Some(r) => Err(r),
            None => Ok(applied),
        }
    }

    /// Appends, syncs once, applies and publishes frames `check_frame` passed.
    fn apply_checked(&mut self, frames: Vec<CheckedFrame>) -> Result<(), String> {
        let shared = self.shared.clone();
        let mut guard = shared.write_state().map_err(|e| e.to_string())?;
        let mut txn = guard.txn();
        for f in &frames {
            for rec in &f.decoded {
                txn.apply(&rec.event, rec.seq);
            }
        }
        let start = self.log.end();
        let signed = self.shared.signer.signed_size();
        let mut written = Vec::with_capacity(frames.len());
        for f in &frames {
            match self.log.append(f.first, signed, &f.records) {
                Ok(pos) => written.push(Written { first_seq: f.first, pos, count: f.records.len() as u32 }),
                Err(e) => {
                    drop(txn);
                    drop(guard);
                    if let Err(r) = self.log.rewind(start) {
                        self.stop(format!("{e}; taking the frames back out of the log failed too: {r}"));
                    }
                    return Err(format!("frame {} could not be written to the local log: {e}", f.frame_no));
                }
            }
        }
        if let Err(e) = self.log.sync() {
            // As for a group: after a failed fdatasync the file's state is unknown.
            drop(txn);
            drop(guard);
            self.stop(format!("fdatasync of frames {} to {} failed: {e}", frames[0].frame_no, frames[frames.len() - 1].frame_no));
            return Err(e.to_string());
        }
        txn.commit();
        let last = frames.last().expect("at least one frame");
        self.next_seq = last.last_seq + 1;
        self.head = last.head;
        let leaves: Vec<Leaf> = frames.iter().flat_map(|f| f.leaves.iter().copied()).collect();
        if let Err(e) = self.publish(&leaves) {
            drop(guard);
            self.stop(e.to_string());
            return Err(e.to_string());
        }
        drop(guard);
        let mut idem = HashMap::new();
        for f in frames {
            idem.extend(f.idem);
        }
        self.follow_up(written, idem, true);
        Ok(())
    }
}

/// A frame from the database that checks against the node's head, decoded.
struct CheckedFrame {
    frame_no: i64,
    first: u64,
    last_seq: u64,
    head: Hash,
    records: Vec<Vec<u8>>,
    decoded: Vec<crate::chain::record::Record>,
    /// The records' Merkle leaves.
    leaves: Vec<Leaf>,
    idem: HashMap<IdemKey, IdemEntry>,
}

/// Checks `row` against a node whose next record is `next_seq` after `head`: every
/// record's decoding, number, hash and link, and that they hash to the head the row
/// names. `None`: the node has all its records already.
fn check_frame(row: FrameRow, next_seq: u64, head: Hash) -> Result<Option<CheckedFrame>, String> {
    let frame = row.frame_no;
    if row.last_seq < next_seq {
        return Ok(None);
    }
    if row.first_seq > next_seq || row.records.len() as u64 != row.last_seq + 1 - row.first_seq {
        return Err(format!("frame {frame} holds records {} to {} ({} of them) but this node's next record is {next_seq}", row.first_seq, row.last_seq, row.records.len()));
    }
    let bytes: usize = row.records.iter().map(|r| r.len() + 8).sum::<usize>() + 20;
    if bytes > crate::limits::FRAME_BYTES_MAX || row.records.iter().any(|r| r.len() > crate::limits::RECORD_BYTES_MAX) {
        return Err(format!("frame {frame} is larger than a frame or its records may be"));
    }
    let skip = (next_seq - row.first_seq) as usize;
    if skip == 0 && row.prev_head != head {
        return Err(format!("frame {frame} does not start at this node's head: the histories differ"));
    }
    let first = next_seq;
    let records = row.records[skip..].to_vec();
    let mut verifier = ChainVerifier::resume(first, head);
    let mut decoded = Vec::with_capacity(records.len());
    let mut hashes = Vec::with_capacity(records.len());
    for (i, bytes) in records.iter().enumerate() {
        let (rec, h) = verifier.check(bytes).map_err(|e| format!("frame {frame}, record {}: {e}", first + i as u64))?;
        decoded.push(rec);
        hashes.push(h);
    }
    if verifier.head() != row.head {
        return Err(format!("frame {frame}: its records do not hash to the head it names (it was altered in the database)"));
    }
    let mut requests = super::requests::RequestRuns::default();
    for (rec, h) in decoded.iter().zip(&hashes) {
        requests.push(rec, *h);
    }
    let idem: HashMap<IdemKey, IdemEntry> = requests.finish().into_iter().collect();
    let leaves = records.iter().map(|b| Leaf::of_record(b)).collect();
    Ok(Some(CheckedFrame { frame_no: frame, first, last_seq: row.last_seq, head: row.head, records, decoded, leaves, idem }))
}

/// The driver's view of a ledger.
struct LocalLedger {
    shared: Arc<Shared>,
    tx: SyncSender<Work>,
    role: RoleCell,
    closing: Arc<AtomicBool>,
}

impl crate::replica::Local for LocalLedger {
    fn head(&self) -> (u64, Hash) {
        *self.shared.head.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn records(&self, from: u64, to: u64) -> Result<Vec<Vec<u8>>, String> {
        self.shared.read_records(from, to).map(|r| r.into_iter().map(|(_, b)| b).collect()).map_err(|e| e.to_string())
    }

    fn role(&self) -> Role {
        self.role.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn send(&self, w: ToWriter) -> Result<(), String> {
        self.tx.send(Work::Replica(w)).map_err(|_| "the writer is gone".to_owned())
    }

    fn closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    fn healthy(&self) -> bool {
        self.shared.fault().is_none() && self.shared.damage().is_none()
    }
}

/// The running driver: a flag that stops it, and its thread.
pub(super) type DriverHandle = (Arc<AtomicBool>, JoinHandle<()>);

/// Starts the replication driver of a ledger: it connects, prepares the database and
/// registers the ledger before it returns (a database that cannot be used refuses the
/// start), then follows or leads on its own thread.
pub(super) fn start(shared: &Arc<Shared>, tx: SyncSender<Work>, opts: ReplicaOptions, role: RoleCell) -> Result<DriverHandle, StoreError> {
    let ledger = shared.ledger_id.as_str().to_owned();
    let key = shared.signer.key.verifying_key().to_bytes();
    // On a thread of its own: the blocking client may not run on an async runtime's
    // thread (the server opens the ledger from one).
    let prepared = std::thread::scope(|s| {
        s.spawn(|| -> Result<(), crate::replica::PgError> {
            let mut c = crate::replica::pg::connect_primary(&opts.dsns, std::time::Duration::from_secs(5))?;
            crate::replica::pg::prepare(&mut c, opts.allow_async)?;
            crate::replica::pg::register(&mut c, &ledger, &crate::chain::record::genesis_hash(&ledger), &key)
        })
        .join()
    });
    match prepared {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(StoreError::DataDir(format!("replication: {e}"))),
        Err(_) => return Err(StoreError::DataDir("replication: the database setup panicked".into())),
    }
    let closing = Arc::new(AtomicBool::new(false));
    let local = Arc::new(LocalLedger { shared: shared.clone(), tx, role, closing: closing.clone() });
    let driver = crate::replica::Driver::new(opts, &ledger, local);
    let handle = std::thread::Builder::new().name("anxin-replica".into()).spawn(move || driver.run())?;
    Ok((closing, handle))
}

/// A role cell for a new node: a follower that knows no leader yet.
pub(super) fn new_role() -> RoleCell {
    Arc::new(Mutex::new(Role::Follower { leader: None }))
}
