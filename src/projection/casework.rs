//! The county's casework at a point (`domain::casework`): each case's status and time
//! limits, the `CASE_OVERDUE` flag, and the figures a county's report counts by source.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::casework::{CaseOutcome, CaseSource};
use crate::domain::date::{CalendarBook, Date};
use crate::domain::ids::{CountyCode, DocNo, ProjectId, Uscc};
use crate::domain::money::Fen;
use crate::domain::policy::PolicyBook;

use super::flags::Grade;
use super::state::{Case, Seq, State};
use super::when::When;

/// Where a case stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaseStatus {
    /// Received, not yet accepted or declined.
    Received,
    /// Accepted and filed: under investigation.
    Accepted,
    Declined,
    Closed,
}

/// A case as the point sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseView {
    pub county: CountyCode,
    pub case_no: DocNo,
    pub source: CaseSource,
    pub received_on: Date,
    pub employer: Uscc,
    pub project: Option<ProjectId>,
    pub workers: u32,
    pub amount_claimed: Fen,
    pub status: CaseStatus,
    /// The day it was accepted or declined.
    pub decided_on: Option<Date>,
    /// To be accepted or declined by this day.
    pub decide_by: Date,
    /// To be closed by this day, once accepted (the extension included).
    pub close_by: Option<Date>,
    pub extended_on: Option<Date>,
    pub closed_on: Option<Date>,
    pub outcome: Option<CaseOutcome>,
    pub recovered: Fen,
    /// Distinct workers of the case its cited payouts paid.
    pub workers_paid: u32,
    pub payouts: Vec<Seq>,
    /// The records of the case: opening, decision, extension, closure.
    pub records: Vec<Seq>,
    /// Past a time limit on the point's day: the grade and the first day past it.
    pub overdue: Option<(Grade, Date)>,
}

/// A case's view at the point `w`, if the point sees it received.
pub fn case_view(policies: &PolicyBook, calendars: &CalendarBook, c: &Case, w: When) -> Option<CaseView> {
    if !c.seen(w) {
        return None;
    }
    let o = &c.open;
    let policy = policies.for_project(o.county, None, None);
    let calendar = calendars.for_county(o.county);
    let decide_by = calendar.add_working_days(o.received_on, policy.case_accept_working_days);
    let decided = c.decided_at(w);
    let extended = c.extended_at(w);
    let closed = c.closed_at(w);
    // An extension counts only if made within the time limit it extends (art. 17 extends
    // a running limit, not one already run out): one dated later leaves the case overdue.
    let close_by = decided.filter(|d| d.accepted).map(|d| {
        let limit = calendar.add_working_days(d.date, policy.case_close_working_days);
        match extended {
            Some(e) if e.date <= limit => calendar.add_working_days(d.date, policy.case_close_working_days.saturating_add(policy.case_extension_working_days)),
            _ => limit,
        }
    });
    let status = match (decided, closed) {
        (_, Some(_)) => CaseStatus::Closed,
        (Some(d), None) if d.accepted => CaseStatus::Accepted,
        (Some(_), None) => CaseStatus::Declined,
        (None, None) => CaseStatus::Received,
    };
    let overdue = match status {
        CaseStatus::Received if w.date > decide_by => Some((Grade::Yellow, decide_by.add_days(1))),
        CaseStatus::Accepted => close_by.filter(|by| w.date > *by).map(|by| (Grade::Red, by.add_days(1))),
        _ => None,
    };
    let mut records = vec![c.seq];
    records.extend(c.decided.as_ref().filter(|_| decided.is_some()).map(|(_, s)| *s));
    records.extend(c.extended.as_ref().filter(|_| extended.is_some()).map(|(_, s)| *s));
    records.extend(c.closed.as_ref().filter(|_| closed.is_some()).map(|(_, s, _)| *s));
    Some(CaseView {
        county: o.county,
        case_no: o.case_no.clone(),
        source: o.source,
        received_on: o.received_on,
        employer: o.employer.clone(),
        project: o.project.clone(),
        workers: o.workers.len() as u32,
        amount_claimed: o.amount_claimed.fen(),
        status,
        decided_on: decided.map(|d| d.date),
        decide_by,
        close_by,
        extended_on: extended.map(|e| e.date),
        closed_on: closed.map(|(x, _)| x.date),
        outcome: closed.map(|(x, _)| x.outcome),
        recovered: closed.map_or(0, |(x, _)| x.recovered.fen()),
        workers_paid: closed.map_or(0, |(_, n)| n),
        payouts: closed.map(|(x, _)| x.payouts.clone()).unwrap_or_default(),
        records,
        overdue,
    })
}

/// Every case of `county` (or of every county) the point sees, by county and number.
pub fn cases(state: &State, policies: &PolicyBook, calendars: &CalendarBook, county: Option<CountyCode>, w: When) -> Vec<CaseView> {
    state
        .cases
        .iter()
        .filter(|((c, _), _)| county.is_none_or(|x| x == *c))
        .filter_map(|(_, c)| case_view(policies, calendars, c, w))
        .collect()
}

/// A county's casework from one source, at a point.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFigures {
    pub received: u32,
    pub accepted: u32,
    pub declined: u32,
    pub closed: u32,
    /// Past a time limit on the point's day.
    pub overdue: u32,
    /// Wages recovered by the closed cases, and the workers they paid.
    pub recovered: Fen,
    pub workers_paid: u32,
}

/// Casework figures by source (`CaseSource::as_str`): what a county report counts.
pub fn figures(views: &[CaseView]) -> BTreeMap<String, SourceFigures> {
    let mut out: BTreeMap<String, SourceFigures> = BTreeMap::new();
    for v in views {
        let f = out.entry(v.source.as_str().to_owned()).or_default();
        f.received += 1;
        match v.status {
            CaseStatus::Received => {}
            CaseStatus::Accepted => f.accepted += 1,
            CaseStatus::Declined => f.declined += 1,
            CaseStatus::Closed => {
                f.accepted += 1;
                f.closed += 1;
            }
        }
        f.overdue += u32::from(v.overdue.is_some());
        f.recovered += v.recovered;
        f.workers_paid += v.workers_paid;
    }
    out
}
