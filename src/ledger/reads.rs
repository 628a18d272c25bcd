//! Reading records back from the log, each checked before it is handed out.

use crate::chain::record::Hash;
use crate::projection::state::Seq;
use crate::store::log;
use crate::store::StoreError;

use super::Shared;

impl Shared {
    /// The canonical bytes of records `from..=to` (bounded by what is durable), each
    /// checked before it is handed out: its frame's and its own checksum (the scan), its
    /// sequence number, and its link to the record before it (read too) and to the one
    /// after it, or to the durable head. Exactly the records asked for, or an error.
    ///
    /// # Errors
    /// `StoreError::Corruption` naming the first record that is missing, out of place or
    /// does not chain (damage: the API answers DATA_LOSS); I/O errors.
    pub(super) fn read_records(&self, from: Seq, to: Seq) -> Result<Vec<(Seq, Vec<u8>)>, StoreError> {
        let (last, head) = *self.head.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let to = to.min(last);
        if from == 0 || from > to {
            return Ok(Vec::new());
        }
        // One record either side, for the links: the one before `from` (or the genesis
        // hash) and the one after `to` (or the durable head).
        let lo = from - 1;
        let hi = if to < last { to + 1 } else { to };
        // The frame holding `lo`, or an earlier one if the index has not written the
        // newest frames yet (then the scan reads a little more).
        let pos = self.index.frame_of(lo.max(1))?.map(|(_, pos, _)| pos);
        let log_dir = self.dir.join("log");
        let mut got: Vec<(Seq, Vec<u8>)> = Vec::with_capacity((hi - lo + 1) as usize);
        let scanned = log::scan_while(&log_dir, self.ledger_id.as_str(), pos, false, &mut |f| {
            let last_in_frame = f.first_seq + f.records.len() as u64 - 1;
            for (i, bytes) in f.records.into_iter().enumerate() {
                let seq = f.first_seq + i as u64;
                if seq > hi {
                    return Ok(false);
                }
                if seq >= lo.max(1) {
                    got.push((seq, bytes));
                }
            }
            // Read on only while the records asked for go past this frame.
            Ok(last_in_frame < hi)
        });
        let missing = |seq: Seq, why: &str| StoreError::Corruption { at: format!("record {seq}"), why: why.to_owned() };
        match scanned {
            Ok(_) => {}
            // A log directory or segment gone from under a running ledger is damage.
            Err(StoreError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => return Err(missing(from, &format!("the log cannot be read ({e}): a segment or the log directory is missing"))),
            Err(StoreError::Corruption { at, why }) => return Err(missing(from, &format!("reading it met damage at {at}: {why}"))),
            Err(e) => return Err(e),
        }
        // Exactly lo..=hi, in order, each naming its own sequence number and linking to
        // the one before.
        let mut prev: Hash = if lo == 0 { crate::chain::record::genesis_hash(self.ledger_id.as_str()) } else { [0; 32] };
        let mut expect = lo.max(1);
        for (seq, bytes) in &got {
            if *seq != expect {
                return Err(missing(expect, "the log does not hold it where it should (missing, cut or out of order)"));
            }
            let Some((_, named, prev_hash)) = crate::chain::record::header(bytes) else {
                return Err(missing(*seq, "shorter than a record header"));
            };
            if named != *seq {
                return Err(missing(*seq, &format!("it names itself record {named}")));
            }
            if (*seq > lo.max(1) || lo == 0) && prev_hash != prev {
                return Err(missing(*seq, &format!("it does not link to record {} (one of the two was altered)", seq - 1)));
            }
            prev = crate::chain::record::record_hash(bytes);
            expect += 1;
        }
        if expect != hi + 1 {
            return Err(missing(expect, "the log ends before it: acknowledged records are missing or damaged"));
        }
        if hi == last && prev != head {
            return Err(missing(last, "it does not hash to the ledger's head (the log was altered)"));
        }
        Ok(got.into_iter().filter(|(seq, _)| (from..=to).contains(seq)).collect())
    }
}
