//! The scrub: the server checks what it stands on, in the background, at every start
//! and then every `scrub_interval` (`LedgerOptions`).
//!
//! One pass reads the whole log up to the durable head seen when it began and checks:
//! every frame's and record's checksum (the scan), every record's decoding, sequence
//! number, hash and link (`ChainVerifier`), that the chain ends at the ledger's head;
//! every Merkle leaf and every stored subtree root against the records; and the newest
//! snapshot's state against a replay of the log up to its record (a snapshot forged with
//! the key, or written from a damaged state, is caught here).
//!
//! Damage turns the ledger read-only (`Ledger::damage`): submissions are refused with
//! `DAMAGED` naming the place, health turns NOT_SERVING for posting, reads go on (a read
//! that meets the damage answers DATA_LOSS itself). A damaged byte goes unnoticed for at
//! most one interval plus one pass (see RELIABILITY.md for the figures).

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::chain::merkle::{leaf_hash, Frontier, Nodes};
use crate::chain::record::{ChainVerifier, Hash, Record};
use crate::projection::state::{Seq, State};
use crate::store::log;
use crate::store::merkle::STORED_LEVEL_MIN;
use crate::store::StoreError;

use super::{Ledger, Shared};

impl Ledger {
    /// Damage the scrub found, if any: the ledger is read-only while there is some.
    pub fn damage(&self) -> Option<Damage> {
        self.shared.damage()
    }

    /// Watches for damage: it changes once, from `None` to the first damage found.
    pub fn watch_damage(&self) -> tokio::sync::watch::Receiver<Option<Damage>> {
        self.shared.damage.subscribe()
    }

    /// The last scrub pass that found nothing wrong.
    pub fn last_scrub(&self) -> Option<ScrubReport> {
        self.shared.last_scrub.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Runs one scrub pass now, on this thread; damage found is published as by the
    /// background scrub (the ledger turns read-only).
    ///
    /// # Errors
    /// The damage found.
    pub fn scrub_now(&self) -> Result<ScrubReport, Damage> {
        let r = scrub_with_retries(&self.shared, &|| false);
        match &r {
            Ok(rep) => *self.shared.last_scrub.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(rep.clone()),
            Err(d) => self.shared.set_damage(d.clone()),
        }
        r
    }
}

/// Where the scrub found damage, and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// The place: a segment and offset, a record, a Merkle file or a snapshot.
    pub at: String,
    pub why: String,
    /// The state in memory may be wrong (it came from a snapshot found to differ from
    /// the log): queries are refused too, not only submissions.
    pub state_suspect: bool,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.at, self.why)
    }
}

/// What one pass checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScrubReport {
    pub records: u64,
    pub bytes: u64,
    /// The snapshot compared against a replay, if one was: its record.
    pub snapshot_checked: Option<Seq>,
    /// Merkle entries (leaves and stored subtree roots) found damaged and put back from
    /// the log: the files are a cache, repaired in place, never a reason to stop.
    pub merkle_repaired: u64,
    /// `checkpoints/latest` was missing, damaged or older than the one the server signed
    /// last, and was written again from memory.
    pub checkpoint_rewritten: bool,
    pub millis: u64,
}

/// Why a pass ended without a verdict or with one.
#[derive(Debug)]
pub(super) enum PassError {
    Damage(Damage),
    /// The pass could not read what it checks (a transient I/O error): no verdict; it is
    /// tried again, and only an error that persists counts as damage.
    Incomplete(String),
}

impl From<Damage> for PassError {
    fn from(d: Damage) -> PassError {
        PassError::Damage(d)
    }
}

fn damage(at: impl Into<String>, why: impl Into<String>) -> Damage {
    Damage { at: at.into(), why: why.into(), state_suspect: false }
}

/// One pass over everything up to the durable head.
///
/// # Errors
/// The first damage found. `StoreError`s of the scan (damage in the log) become damage;
/// `stop` ends the pass early with what was checked so far.
pub(super) fn scrub_once(shared: &Shared, stop: &dyn Fn() -> bool) -> Result<ScrubReport, PassError> {
    let started = Instant::now();
    let (upto, head) = *shared.head.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let id = shared.ledger_id.as_str();
    // The newest snapshot at or below `upto`, read with its MAC, to compare against a
    // replay. One that is gone (the writer keeps two) or does not read is skipped: the
    // start already passed over it; it is never believed.
    let snapshot = crate::store::snapshot::list(&shared.dir)
        .unwrap_or_default()
        .into_iter()
        .filter(|(seq, _)| *seq <= upto && *seq > 0)
        .find_map(|(_, path)| crate::store::snapshot::read(&path, id, &shared.snapshot_key).ok().map(|(h, st)| (path, h, st)));
    let mut replay = snapshot.as_ref().map(|_| State::default());
    let mut verifier = ChainVerifier::new(id);
    let mut frontier = Frontier::default();
    let merkle = &*shared.merkle;
    let mut report = ScrubReport::default();
    let mut found: Option<Damage> = None;
    let mut stopped = false;
    let mut leaves: Vec<Hash> = Vec::new();
    let mut leaves_from = 0u64;
    // (level, index, the right hash, the place): Merkle entries to put back.
    let mut repairs: Vec<(u32, u64, Hash, String)> = Vec::new();
    let scanned = log::scan_while(&shared.dir.join("log"), id, None, false, &mut |f| {
        if stop() {
            stopped = true;
            return Ok(false);
        }
        crate::failpoint::pass("scrub.frame", id)?;
        for bytes in &f.records {
            let seq = verifier.next_seq();
            if seq > upto {
                return Ok(false);
            }
            let (rec, hash): (Record, Hash) = match verifier.check(bytes) {
                Ok(x) => x,
                Err(e) => {
                    found = Some(damage(format!("record {seq} (segment {:020}.seg, frame at offset {})", f.pos.segment, f.pos.offset), e.to_string()));
                    return Ok(false);
                }
            };
            report.records += 1;
            report.bytes += bytes.len() as u64;
            // The Merkle leaf (read in runs of 64Ki leaves), and every stored subtree root
            // this leaf completes.
            let leaf = leaf_hash(bytes);
            let index = seq - 1;
            if index < leaves_from || index >= leaves_from + leaves.len() as u64 {
                let n = (upto - index).min(1 << 16);
                match merkle.leaves(index, n) {
                    Ok(run) => {
                        leaves = run;
                        leaves_from = index;
                    }
                    Err(e) => {
                        found = Some(damage(format!("merkle/leaves, leaf of record {seq}"), e.to_string()));
                        return Ok(false);
                    }
                }
            }
            // A damaged entry is put back from the log, once the whole pass found the log
            // sound (a record rewritten in the log must not rewrite its leaf).
            if leaves[(index - leaves_from) as usize] != leaf {
                repairs.push((0, index, leaf, format!("merkle/leaves, leaf of record {seq}")));
            }
            for (level, index, node) in frontier.push(leaf) {
                if level >= STORED_LEVEL_MIN && merkle.subtree(level, index).ok() != Some(node) {
                    repairs.push((level, index, node, format!("merkle/level-{level:02}, subtree {index}")));
                }
            }
            if let (Some(st), Some((path, h, snap))) = (replay.as_mut(), snapshot.as_ref()) {
                if seq <= h.seq {
                    st.apply(&rec.event, seq);
                }
                if seq == h.seq {
                    if hash != h.head {
                        found = Some(damage(path.display().to_string(), format!("it names a chain head for record {seq} that the log does not have")));
                        return Ok(false);
                    }
                    if let Some(table) = st.differs_from(snap) {
                        let mut d = damage(path.display().to_string(), format!("its state ({table}) differs from a replay of the log up to record {seq}: the snapshot is forged or was written from a damaged state (move snapshots/ away; the next start replays the log)"));
                        // The state in memory came from it, if it is the one the start
                        // loaded: neither queries nor writes may trust it.
                        d.state_suspect = true;
                        found = Some(d);
                        return Ok(false);
                    }
                    report.snapshot_checked = Some(seq);
                    replay = None;
                }
            }
        }
        Ok(true)
    });
    report.millis = started.elapsed().as_millis() as u64;
    if let Some(d) = found {
        return Err(d.into());
    }
    let log_signed = scanned.as_ref().map_or(0, |end| end.signed);
    match scanned {
        Ok(_) => {}
        // Past what this pass checks: a frame the writer is appending, or one it took
        // back (a full disk), or a segment it rolled to and removed again.
        Err(_) if verifier.next_seq() > upto => {}
        Err(StoreError::Corruption { at, why }) => return Err(damage(at, why).into()),
        Err(StoreError::Chain(e)) => return Err(damage("the log", e.to_string()).into()),
        Err(StoreError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => return Err(damage("log/", format!("a segment the pass had to read is gone: {e}")).into()),
        Err(e) => return Err(PassError::Incomplete(format!("the log could not be read: {e}"))),
    }
    if stopped {
        return Ok(report);
    }
    if verifier.next_seq() - 1 < upto {
        return Err(damage(format!("record {}", verifier.next_seq()), format!("the log ends after record {} but {upto} were acknowledged: records are missing or cut", verifier.next_seq() - 1)).into());
    }
    if upto > 0 && verifier.head() != head {
        return Err(damage(format!("record {upto}"), "it does not hash to the ledger's head: the log was altered").into());
    }
    for (level, index, hash, at) in repairs {
        if let Err(e) = merkle.repair(level, index, &hash) {
            return Err(damage(at, format!("it does not match the log and could not be put back: {e} (delete merkle/ and restart to rebuild it from the log)")).into());
        }
        tracing::warn!(at = %at, "scrub: a damaged Merkle entry was put back from the log");
        report.merkle_repaired += 1;
    }
    // The signed checkpoint: the one the server holds covers what the log says was
    // signed, and the file says the same (written again from memory if not).
    let held = shared.signer.signed_size();
    if held < log_signed {
        return Err(damage("checkpoints/latest", format!("the log records that a checkpoint of {log_signed} records was signed, but the server holds one of {held}: frames were altered")).into());
    }
    match shared.signer.rewrite_file_if_lost() {
        Ok(rewritten) => report.checkpoint_rewritten = rewritten,
        Err(e) if e.is_disk_full() => tracing::warn!(error = %e, "scrub: checkpoints/latest could not be written again: the disk is full"),
        Err(e) => return Err(PassError::Incomplete(format!("checkpoints/latest could not be written again: {e}"))),
    }
    Ok(report)
}

/// A pass with its transient failures retried (three tries, a second apart): damage, or
/// an error that persists (then damage too: the data cannot be read).
pub(super) fn scrub_with_retries(shared: &Shared, stop: &dyn Fn() -> bool) -> Result<ScrubReport, Damage> {
    let mut last = String::new();
    for attempt in 0..3 {
        match scrub_once(shared, stop) {
            Ok(r) => return Ok(r),
            Err(PassError::Damage(d)) => return Err(d),
            Err(PassError::Incomplete(why)) => {
                tracing::warn!(attempt, error = %why, "a scrub pass could not read what it checks; trying again");
                last = why;
                if stop() {
                    break;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
    if stop() {
        return Ok(ScrubReport::default());
    }
    Err(damage("the log", format!("three scrub passes in a row could not read it: {last}")))
}

/// The background scrub: a pass at once, then one every `interval` (never, if `None`),
/// until `stop` says so (the ledger closing). Damage found is published on the ledger
/// and logged; the scrub then stops (the ledger is read-only until an operator acts).
pub(super) fn run(shared: Arc<Shared>, interval: Option<Duration>, stop: Receiver<()>) {
    // Below the writer and the API: on a busy machine the scrub takes what is left over.
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority on this thread's own id; no memory is touched.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 10);
    }
    let stopping = std::cell::Cell::new(false);
    let closing = || {
        if matches!(stop.try_recv(), Ok(()) | Err(std::sync::mpsc::TryRecvError::Disconnected)) {
            stopping.set(true);
        }
        stopping.get()
    };
    loop {
        let pass = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| scrub_with_retries(&shared, &closing)));
        let pass = match pass {
            Ok(p) => p,
            Err(_) => {
                // A bug in the scrub: logged; the ledger is not declared damaged for it.
                tracing::error!("the scrub thread panicked (a bug); scrubbing stops until the next start");
                return;
            }
        };
        if stopping.get() {
            return;
        }
        match pass {
            Ok(r) => {
                tracing::info!(records = r.records, bytes = r.bytes, ms = r.millis, snapshot = ?r.snapshot_checked, "scrub: the log, the Merkle files and the snapshot check out");
                *shared.last_scrub.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(r);
            }
            Err(d) => {
                tracing::error!(at = %d.at, why = %d.why, "scrub found damage: the ledger is read-only until it is repaired");
                shared.set_damage(d);
                return;
            }
        }
        let Some(every) = interval else { return };
        match stop.recv_timeout(every) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
    }
}
