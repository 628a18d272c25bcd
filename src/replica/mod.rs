//! The replicated ledger (issue 14): nodes of one ledger share its history through
//! PostgreSQL with synchronous streaming replication; one of them, the leader, writes.
//!
//! What PostgreSQL does for us: a commit returns only once a synchronous standby has
//! flushed it, so a frame the leader committed survives the loss of either database
//! machine. What this module adds around it (`pg.rs` has the tables and the trigger
//! that guards them):
//! - **the lease**: a row per ledger with an epoch, taken when it ran out and renewed
//!   against the database's clock; every frame insert checks the epoch and the lease in
//!   the same transaction (fencing), so a leader that lost it cannot write, whatever its
//!   own clock says;
//! - **the leader's commit** (`FrameSink`, used by the writer thread): a group's frames
//!   go into the database first, then into the local log (`fdatasync`), and only then is
//!   anything acknowledged. A frame whose commit was refused or whose outcome is unknown
//!   is taken back out of the state and never acknowledged; the node steps down, and the
//!   frames the database holds decide (the driver fetches them back if they committed);
//! - **followers** (`Driver`): tail the frames (LISTEN/NOTIFY wakes them, range reads
//!   fetch), hand each to the writer, which checks every record's hash and link against
//!   its own head before it appends and applies it; submissions to a follower are
//!   refused with `NOT_LEADER` and the leader's address;
//! - **takeover**: when the lease ran out a follower takes it (a new epoch), reads every
//!   frame up to the database's tip and applies them, puts any records of its own log the
//!   database lacks into it, and only then becomes the leader.

pub mod pg;
pub mod salts;

use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use postgres::Client;

use crate::chain::record::Hash;

pub use pg::{FrameRow, PgError};

/// How a node of a replicated ledger runs.
#[derive(Clone, Debug)]
pub struct ReplicaOptions {
    /// Connection strings of the database's primary and its standbys, tried in order
    /// (only a primary is used: after a failover, the promoted standby).
    pub dsns: Vec<String>,
    /// This node's name, unique among the ledger's nodes.
    pub node_id: String,
    /// Where clients reach this node (told to them by followers).
    pub advertise: String,
    /// How long a lease runs without renewal (renewed every third of it).
    pub lease: Duration,
    /// Run even if commits do not wait for a synchronous standby.
    pub allow_async: bool,
}

impl ReplicaOptions {
    /// Defaults for one node: a 2 s lease.
    pub fn new(dsns: Vec<String>, node_id: &str, advertise: &str) -> ReplicaOptions {
        ReplicaOptions { dsns, node_id: node_id.to_owned(), advertise: advertise.to_owned(), lease: Duration::from_secs(2), allow_async: false }
    }
}

/// What this node is now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// Writes, fenced by `epoch`.
    Leader { epoch: i64 },
    /// Reads only; the leader's advertised address, if one is known.
    Follower { leader: Option<String> },
}

/// The leader's side of the database, owned by the writer thread.
pub struct FrameSink {
    client: Client,
    /// Raised by the server's warning that a commit stopped waiting for the standby.
    unconfirmed: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ledger: String,
    pub epoch: i64,
    /// The number the next frame gets.
    pub next_frame: i64,
}

/// A frame the leader commits: consecutive records and the chain heads around them.
pub struct OutFrame<'a> {
    pub first_seq: u64,
    pub records: &'a [Vec<u8>],
    pub prev_head: Hash,
    pub head: Hash,
}

impl FrameSink {
    /// Commits `frames` as the next ones. `Ok` once the commit returned.
    ///
    /// # Errors
    /// `PgError` (`Connection`: whether they were committed is not known).
    pub fn commit(&mut self, frames: &[OutFrame<'_>]) -> Result<(), PgError> {
        let rows: Vec<FrameRow> = frames
            .iter()
            .map(|f| FrameRow {
                frame_no: 0,
                first_seq: f.first_seq,
                last_seq: f.first_seq + f.records.len() as u64 - 1,
                prev_head: f.prev_head,
                head: f.head,
                epoch: self.epoch,
                records: f.records.to_vec(),
            })
            .collect();
        pg::insert_frames(&mut self.client, &self.ledger, self.epoch, self.next_frame, &rows)?;
        self.next_frame += frames.len() as i64;
        // Committed on the primary, but the standby's confirmation was given up: not
        // acknowledged (only one machine may hold it); the caller steps down.
        if self.unconfirmed.swap(false, std::sync::atomic::Ordering::AcqRel) {
            return Err(PgError::Connection("the commit stopped waiting for the synchronous standby".into()));
        }
        Ok(())
    }
}

/// What the driver hands the writer.
pub enum ToWriter {
    /// Append and apply a frame the database holds (a follower's work). The reply says
    /// whether it was applied (an error: the frame is refused, nothing past it is).
    /// Applied as one group: `Ok(n)` all of them; `Err((k, why))` the first `k`, frame
    /// `k` refused.
    Apply(Vec<FrameRow>, SyncSender<Result<usize, (usize, String)>>),
    /// Become the leader with this sink (after the catch-up); the writer answers once it
    /// leads (the driver counts itself leading only then).
    Lead(FrameSink, SyncSender<()>),
    /// Stop writing: the lease is lost or could not be renewed in time.
    StepDown(Option<String>),
}

/// Where the node's role is published (the API reads it, the writer and driver set it).
pub type RoleCell = Arc<Mutex<Role>>;

/// The driver thread's view of the ledger it runs: its id, genesis and durable head.
pub trait Local: Send + Sync {
    /// (last seq, chain head) of what the local log holds durably.
    fn head(&self) -> (u64, Hash);
    /// Records `from..=to`, canonical bytes, from the local log.
    fn records(&self, from: u64, to: u64) -> Result<Vec<Vec<u8>>, String>;
    /// The role the writer last took (it steps down by itself when a commit fails).
    fn role(&self) -> Role;
    /// The writer's queue.
    fn send(&self, w: ToWriter) -> Result<(), String>;
    /// Whether the ledger is closing.
    fn closing(&self) -> bool;
    /// Whether the ledger may write (no damage, no fault): one that may not gives its
    /// lease up and does not take it.
    fn healthy(&self) -> bool;
}

/// The driver: follows while another leads, takes over when the lease runs out, renews
/// it while leading. One thread; its own connection.
pub struct Driver {
    opts: ReplicaOptions,
    ledger: String,
    local: Arc<dyn Local>,
    /// The database frame the local log's head ends in (0: none).
    applied_frame: i64,
    client: Option<Client>,
    /// Leading: the epoch, and until when (this node's clock) the lease surely runs.
    leading: Option<(i64, Instant)>,
}

const FETCH_FRAMES: i64 = 64;

/// Records a follower applies as one group at most (unless one frame holds more).
const APPLY_GROUP_RECORDS: usize = 16_384;

impl Driver {
    pub fn new(opts: ReplicaOptions, ledger: &str, local: Arc<dyn Local>) -> Driver {
        Driver { opts, ledger: ledger.to_owned(), local, applied_frame: -1, client: None, leading: None }
    }

    fn client(&mut self) -> Result<&mut Client, PgError> {
        if self.client.as_mut().is_none_or(|c| c.is_closed()) {
            let mut c = pg::connect_primary(&self.opts.dsns, Duration::from_secs(2))?;
            pg::configure_session(&mut c, self.opts.lease, false)?;
            c.batch_execute("LISTEN anxin_frames")?;
            self.client = Some(c);
        }
        Ok(self.client.as_mut().expect("connected above"))
    }

    /// Stops leading: the writer steps down, the lease is given up (best effort), and the
    /// frame the local head ends in is found again (the frames written while leading are
    /// the node's own).
    fn step_down(&mut self, leader: Option<String>, why: &str) {
        if let Some((epoch, _)) = self.leading.take() {
            tracing::warn!(epoch, why, "replication: stepping down");
            let ledger = self.ledger.clone();
            if let Ok(c) = self.client() {
                let _ = pg::release(c, &ledger, epoch);
            }
        }
        let _ = self.local.send(ToWriter::StepDown(leader));
        self.applied_frame = -1;
    }

    /// The thread's body: runs until the ledger closes.
    pub fn run(mut self) {
        let mut backoff = Duration::from_millis(50);
        while !self.local.closing() {
            match self.step() {
                Ok(wait) => {
                    backoff = Duration::from_millis(50);
                    self.wait(wait);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "replication: the database step failed; trying again");
                    self.client = None;
                    if let Some((_, until)) = self.leading {
                        if Instant::now() >= until {
                            self.step_down(None, "the lease could not be renewed in time");
                        }
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_millis(500));
                }
            }
        }
        if let Some((epoch, _)) = self.leading {
            let ledger = self.ledger.clone();
            if let Ok(c) = self.client() {
                let _ = pg::release(c, &ledger, epoch);
            }
        }
    }

    /// Waits up to `d` for a notification of new frames (or the end). A leader's own
    /// frames notify too: it only drains them.
    fn wait(&mut self, d: Duration) {
        let deadline = Instant::now() + d;
        let leading = self.leading.is_some();
        while Instant::now() < deadline && !self.local.closing() {
            let Some(c) = self.client.as_mut() else { return };
            let left = deadline.saturating_duration_since(Instant::now()).min(Duration::from_millis(50));
            let mut n = c.notifications();
            let mut it = n.timeout_iter(left);
            let got = postgres::fallible_iterator::FallibleIterator::next(&mut it);
            match got {
                Ok(Some(_)) if !leading => return,
                Ok(_) => {}
                Err(_) => return,
            }
        }
    }

    /// One step. Returns how long to wait before the next.
    fn step(&mut self) -> Result<Duration, PgError> {
        let ledger = self.ledger.clone();
        let lease = self.opts.lease;
        if self.applied_frame < 0 {
            self.applied_frame = self.frame_of_local_head()?;
        }
        // The writer may have stepped down by itself (a commit failed).
        if self.leading.is_some() && !matches!(self.local.role(), Role::Leader { .. }) {
            self.step_down(None, "a commit failed");
            return Ok(Duration::ZERO);
        }
        if self.leading.is_some() && !self.local.healthy() {
            self.step_down(None, "the ledger is damaged or faulted: it gives the lease up");
            return Ok(lease / 4);
        }
        if let Some((epoch, _)) = self.leading {
            let sent = Instant::now();
            let allow_async = self.opts.allow_async;
            let c = self.client()?;
            if pg::renew(c, &ledger, epoch, lease)? {
                // Commits must still wait for a standby (an operator may have turned it
                // off when a standby died).
                let (sync, settings) = pg::synchronous(c)?;
                // Surely ours until a little before the lease's end, measured from when the
                // renewal was sent (the database's clock started later).
                self.leading = Some((epoch, sent + lease.mul_f64(0.8)));
                if !sync && !allow_async {
                    tracing::error!(settings = %settings, "replication: the database no longer waits for a synchronous standby: refusing to acknowledge writes");
                    self.step_down(None, "the database is not synchronous");
                }
                return Ok(lease / 4);
            }
            let row = pg::ledger_row(c, &ledger)?;
            self.step_down(row.address, "the lease was taken over");
            return Ok(Duration::ZERO);
        }
        // Following: apply what the database has.
        if self.catch_up()? > 0 {
            return Ok(Duration::ZERO);
        }
        let (node, allow_async) = (self.opts.node_id.clone(), self.opts.allow_async);
        let c = self.client()?;
        let row = pg::ledger_row(c, &ledger)?;
        if row.lease_valid {
            // A lease still held in this node's name (it restarted) is nobody's to
            // point clients at.
            let leader = if row.leader.as_deref() == Some(node.as_str()) { None } else { row.address.clone() };
            if let Role::Follower { leader: known } = self.local.role() {
                if known != leader {
                    let _ = self.local.send(ToWriter::StepDown(leader));
                }
            }
            return Ok(lease / 4);
        }
        if !self.local.healthy() {
            return Ok(lease / 4);
        }
        let c = self.client()?;
        let (sync, settings) = pg::synchronous(c)?;
        if !sync && !allow_async {
            tracing::warn!(settings = %settings, "replication: the database does not wait for a synchronous standby: not taking the lease");
            return Ok(lease);
        }
        // The lease ran out: take it, then catch up (nobody else can write now), put
        // in what only this node's log has, and lead.
        let (node, address) = (self.opts.node_id.clone(), self.opts.advertise.clone());
        let c = self.client()?;
        let Some(epoch) = pg::try_acquire(c, &ledger, &node, &address, lease)? else { return Ok(Duration::ZERO) };
        let taken = Instant::now();
        tracing::info!(epoch, node = %self.opts.node_id, "replication: took the lease");
        match self.take_over(epoch) {
            Ok(()) => {
                self.leading = Some((epoch, taken + lease.mul_f64(0.8)));
                Ok(lease / 4)
            }
            Err(e) => {
                // Not leading after all: the lease is given up at once, not left to run out.
                if let Ok(c) = self.client() {
                    let _ = pg::release(c, &ledger, epoch);
                }
                Err(e)
            }
        }
    }

    /// After taking the lease: catch up to the tip, put in what only this node has, and
    /// hand the writer a sink; returns once the writer leads.
    fn take_over(&mut self, epoch: i64) -> Result<(), PgError> {
        let ledger = self.ledger.clone();
        while self.catch_up()? > 0 {}
        self.upload_local_tail(epoch)?;
        let c = self.client()?;
        let row = pg::ledger_row(c, &ledger)?;
        let unconfirmed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut client = pg::connect_watching(&self.opts.dsns, Duration::from_secs(2), Some(unconfirmed.clone()))?;
        pg::configure_session(&mut client, self.opts.lease, true)?;
        let sink = FrameSink { client, unconfirmed, ledger: ledger.clone(), epoch, next_frame: row.frames + 1 };
        self.applied_frame = row.frames;
        let (tx, rx) = mpsc::sync_channel(1);
        self.local.send(ToWriter::Lead(sink, tx)).map_err(PgError::Setup)?;
        rx.recv().map_err(|_| PgError::Setup("the writer did not take the lead".into()))
    }

    /// The database frame the local head ends in: 0 for an empty log. A local head the
    /// database does not have (yet) counts as the database's tip, if the log is longer.
    fn frame_of_local_head(&mut self) -> Result<i64, PgError> {
        let (seq, _) = self.local.head();
        if seq == 0 {
            return Ok(0);
        }
        let ledger = self.ledger.clone();
        let c = self.client()?;
        match pg::frame_holding(c, &ledger, seq)? {
            // The head inside a frame (a log restored with other frame boundaries): the
            // frame is fetched again, and its records up to the head are skipped.
            Some((frame, last)) if last == seq => Ok(frame),
            Some((frame, _)) => Ok(frame - 1),
            None => Ok(pg::ledger_row(c, &ledger)?.frames),
        }
    }

    /// Fetches and applies frames after the applied one. Returns how many.
    fn catch_up(&mut self) -> Result<usize, PgError> {
        let ledger = self.ledger.clone();
        let from = self.applied_frame;
        let rows = pg::frames_after(self.client()?, &ledger, from, FETCH_FRAMES)?;
        let n = rows.len();
        crate::metrics::get().replication_lag_records.set(rows.iter().map(|r| r.records.len() as i64).sum());
        // Applied in groups of up to APPLY_GROUP_RECORDS records (at least one frame):
        // one fdatasync each, and the state's lock held for a bounded time.
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let mut group = Vec::new();
            let mut records = 0usize;
            while let Some(r) = rows.next_if(|r| group.is_empty() || records + r.records.len() <= APPLY_GROUP_RECORDS) {
                records += r.records.len();
                group.push(r);
            }
            let numbers: Vec<i64> = group.iter().map(|r| r.frame_no).collect();
            let (tx, rx) = mpsc::sync_channel(1);
            self.local.send(ToWriter::Apply(group, tx)).map_err(PgError::Setup)?;
            match rx.recv() {
                Ok(Ok(_)) => self.applied_frame = numbers[numbers.len() - 1],
                Ok(Err((k, why))) => {
                    if k > 0 {
                        self.applied_frame = numbers[k - 1];
                    }
                    return Err(PgError::Refused(format!("frame {}: {why}", numbers[k.min(numbers.len() - 1)])));
                }
                Err(_) => return Err(PgError::Setup("the writer is gone".into())),
            }
        }
        Ok(n)
    }

    /// Puts records of the local log after the database's tip into the database (a
    /// ledger that ran alone before it was replicated, or frames a lost primary had
    /// shown but the standby never got), as the leader of `epoch`.
    fn upload_local_tail(&mut self, epoch: i64) -> Result<(), PgError> {
        let ledger = self.ledger.clone();
        let (local, _) = self.local.head();
        let c = self.client()?;
        let row = pg::ledger_row(c, &ledger)?;
        if local <= row.last_seq {
            return Ok(());
        }
        let mut next_frame = row.frames + 1;
        let mut prev = row.head;
        let mut seq = row.last_seq + 1;
        // Frames of whole requests, closed past 4,096 records or 16 MiB.
        let mut frames = crate::store::log::RequestFrames::new(4_096, 16 << 20);
        let mut first_in_frame = seq;
        while seq <= local {
            let to = (seq + 4_095).min(local);
            let records = self.local.records(seq, to).map_err(PgError::Setup)?;
            for (i, r) in records.into_iter().enumerate() {
                let n = seq + i as u64;
                let rec = crate::chain::record::Record::decode(&r).map_err(|e| PgError::Setup(format!("the local log's record {n}: {e}")))?;
                if n == row.last_seq + 1 && rec.prev_hash != prev {
                    return Err(PgError::Fork(format!("the local log's record {n} does not follow the database's tip: this node's log holds another history; move its data directory away to rebuild it from the database")));
                }
                if let Some(frame) = frames.push(r, (rec.principal, rec.request_id)) {
                    prev = self.put_frame(epoch, next_frame, first_in_frame, prev, frame)?;
                    next_frame += 1;
                    first_in_frame = n;
                }
            }
            seq = to + 1;
        }
        if let Some(frame) = frames.finish() {
            self.put_frame(epoch, next_frame, first_in_frame, prev, frame)?;
        }
        Ok(())
    }

    /// Inserts one frame of the node's own records; returns its head.
    fn put_frame(&mut self, epoch: i64, frame_no: i64, first_seq: u64, prev: Hash, records: Vec<Vec<u8>>) -> Result<Hash, PgError> {
        let ledger = self.ledger.clone();
        let head = crate::chain::record::record_hash(records.last().expect("a frame holds records"));
        let last_seq = first_seq + records.len() as u64 - 1;
        let frame = FrameRow { frame_no, first_seq, last_seq, prev_head: prev, head, epoch, records };
        pg::insert_frames(self.client()?, &ledger, epoch, frame_no, std::slice::from_ref(&frame))?;
        tracing::info!(first = first_seq, last = last_seq, "replication: put records only this node had into the database");
        Ok(head)
    }
}
