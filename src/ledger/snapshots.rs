//! The writer's snapshots of the projections: due every `snapshot_records` records,
//! written by a forked child while the writer goes on (`store::snapshot::write_in_child`),
//! one at a time; at close, by the writer itself.

use std::time::{Duration, Instant};

use crate::chain::record::genesis_hash;
use crate::store::StoreError;

use super::writer::Writer;

/// After a snapshot failed, the next is not tried before this long.
const SNAPSHOT_RETRY: Duration = Duration::from_secs(2);

impl Writer {
    /// Writes a snapshot of the projections as of the last durable record: at close
    /// here, otherwise in a child process while the writer goes on
    /// (`snapshot::write_in_child`: the writer pauses only for the fork).
    pub(super) fn snapshot(&mut self, closing: bool) -> Result<(), StoreError> {
        let started = Instant::now();
        let seq = self.next_seq - 1;
        let header = crate::store::snapshot::SnapshotHeader {
            version: crate::store::snapshot::SNAPSHOT_VERSION,
            ledger_id: self.shared.ledger_id.to_string(),
            seq,
            head: if seq == 0 { genesis_hash(self.shared.ledger_id.as_str()) } else { self.head },
            log_end: (self.log.end().segment, self.log.end().offset),
        };
        // A read lock: queries go on; only this writer could change the state.
        let state = self.shared.read_state()?;
        if closing {
            let bytes = crate::store::snapshot::write(&self.shared.dir, &header, &state, &self.shared.snapshot_key)?;
            tracing::info!(seq, bytes, ms = started.elapsed().as_millis() as u64, "wrote a snapshot of the projections");
            crate::metrics::get().snapshot_pause_seconds.observe(started.elapsed().as_secs_f64());
        } else {
            // Installed only if the ledger is still whole when the child is done: damage
            // the scrub finds meanwhile may be in the state the child was forked with.
            let shared = self.shared.clone();
            let still_whole = Box::new(move || match (shared.fault(), shared.damage()) {
                (None, None) => Ok(()),
                (Some(f), _) => Err(format!("the writer stopped meanwhile ({f:?})")),
                (None, Some(d)) => Err(format!("damage was found meanwhile ({d:?})")),
            });
            let pending = crate::store::snapshot::write_in_child(&self.shared.dir, &header, &state, &self.shared.snapshot_key, still_whole)?;
            tracing::info!(seq, pause_us = started.elapsed().as_micros() as u64, "a child process writes a snapshot of the projections (the writer paused for the fork)");
            crate::metrics::get().snapshot_pause_seconds.observe(started.elapsed().as_secs_f64());
            self.pending_snapshot = Some((self.snapshot_seq, pending));
        }
        self.snapshot_seq = seq;
        Ok(())
    }

    /// Starts a snapshot if `snapshot_records` records came since the last one and none
    /// is being written (after a group, and while idle: a snapshot held back by the one
    /// before it is not held back until the next write).
    pub(super) fn snapshot_if_due(&mut self) {
        self.reap_snapshot();
        let due = self.next_seq - 1 - self.snapshot_seq >= self.snapshot_records;
        // Never from a state the log may not bear out (a fault: the log may hold frames
        // the state does not; damage), and not again at once after a failure.
        let whole = self.shared.fault().is_none() && self.shared.damage().is_none();
        let backing_off = self.snapshot_retry_at.is_some_and(|t| Instant::now() < t);
        if due && whole && !backing_off && self.pending_snapshot.is_none() {
            if let Err(e) = self.snapshot(false) {
                // Not a fault of the ledger: the log holds everything; restart replays more.
                self.snapshot_failed(self.next_seq - 1, &e);
            }
        }
    }

    /// Ends the snapshot a child is writing, if it is done: a failed one is due again.
    fn reap_snapshot(&mut self) {
        if !self.pending_snapshot.as_ref().is_some_and(|(_, p)| p.is_finished()) {
            return;
        }
        let (before, pending) = self.pending_snapshot.take().expect("checked");
        let seq = pending.seq;
        match pending.wait() {
            Ok((bytes, took)) => tracing::info!(seq, bytes, ms = took.as_millis() as u64, "wrote a snapshot of the projections"),
            Err(e) => {
                self.snapshot_seq = self.snapshot_seq.min(before);
                self.snapshot_failed(seq, &e);
            }
        }
    }

    /// A snapshot that could not be started (the fork refused) or finished: said, and
    /// not tried again for `SNAPSHOT_RETRY`.
    fn snapshot_failed(&mut self, seq: u64, e: &StoreError) {
        tracing::error!(seq, error = %e, "a snapshot of the projections failed; will try again in {} s", SNAPSHOT_RETRY.as_secs());
        self.snapshot_retry_at = Some(Instant::now() + SNAPSHOT_RETRY);
    }

    /// At close: the child's snapshot is not waited for (the closing one is written next,
    /// by the writer): the child is ended and its file removed.
    pub(super) fn abandon_snapshot(&mut self) {
        if let Some((before, pending)) = self.pending_snapshot.take() {
            pending.abandon();
            self.snapshot_seq = self.snapshot_seq.min(before);
        }
    }
}
