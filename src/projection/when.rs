//! `When`: a point in the ledger's past.
//!
//! Two kinds of "when" meet in one point: a log position (`seq`: the ledger exactly as it
//! stood after that record) and a business date (`date`: of those records, the facts
//! dated on or before it, each by its value date, `Event::dated`; and the rules judged on
//! it). A fact counts at a point when the point sees it: recorded at or before `seq` and
//! dated on or before `date`. So an event posted late but dated earlier changes the
//! answers about dates before it was posted, and only answers at a position after its
//! record see it.

use crate::domain::date::Date;

use super::state::Seq;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct When {
    /// The last record counted.
    pub seq: Seq,
    /// The last day counted, and the day the rules are judged on.
    pub date: Date,
}

impl When {
    /// Every record, as of `date`.
    pub fn date(date: Date) -> When {
        When { seq: Seq::MAX, date }
    }

    /// Whether a fact recorded at `seq` and dated `date` counts at this point.
    pub fn sees(&self, seq: Seq, date: Date) -> bool {
        seq <= self.seq && date <= self.date
    }
}
