//! The requests a run of records holds, for the idempotency index: recovery rebuilds the
//! entries from its log, a follower from the frames it applies, and both must agree with
//! what the writer recorded when it answered (`writer.rs`).

use crate::chain::record::{request_digest, Hash, Record};
use crate::domain::command::Command;
use crate::store::index::{IdemEntry, IdemKey};

/// Gathers consecutive records into requests: a request's records are consecutive
/// within one frame, so a run of records with the same principal and request id is one
/// request (its digest over the commands, its first and last seq, the head after it).
#[derive(Default)]
pub(super) struct RequestRuns {
    open: Option<Open>,
    done: Vec<(IdemKey, IdemEntry)>,
}

struct Open {
    key: IdemKey,
    commands: Vec<Command>,
    first_seq: u64,
    last_seq: u64,
    head: Hash,
    recorded_at_ms: i64,
}

impl RequestRuns {
    /// The next record of the run, and its hash.
    pub(super) fn push(&mut self, rec: &Record, hash: Hash) {
        let same = self.open.as_ref().is_some_and(|o| o.key.principal == rec.principal && o.key.request_id == rec.request_id);
        if !same {
            self.close();
            let key = IdemKey { principal: rec.principal.clone(), request_id: rec.request_id.clone() };
            self.open = Some(Open { key, commands: Vec::new(), first_seq: rec.seq, last_seq: rec.seq, head: hash, recorded_at_ms: rec.recorded_at_ms });
        }
        let o = self.open.as_mut().expect("opened above");
        o.commands.push(rec.event.to_command());
        o.last_seq = rec.seq;
        o.head = hash;
    }

    fn close(&mut self) {
        if let Some(o) = self.open.take() {
            let entry = IdemEntry { digest: request_digest(&o.commands), first_seq: o.first_seq, last_seq: o.last_seq, head: o.head, recorded_at_ms: o.recorded_at_ms };
            self.done.push((o.key, entry));
        }
    }

    /// Every request of the run (the frame has ended).
    pub(super) fn finish(mut self) -> Vec<(IdemKey, IdemEntry)> {
        self.close();
        self.done
    }
}
