//! The casework rules (`domain::casework`): a case moves received -> accepted or declined
//! -> (extended once) -> closed, each step once and in date order; a closure that says
//! wages were recovered proves it with the payouts that paid the case's workers.

use std::collections::BTreeSet;

use crate::domain::command::*;
use crate::domain::ids::{CountyCode, DocNo};
use crate::domain::money::Fen;
use crate::domain::rejection::Rejection;
use crate::limits::{CASE_PAYOUTS_MAX, CASE_WORKERS_MAX};
use crate::projection::state::{Case, Seq, State};

type Decision = Result<Event, Rejection>;

fn refuse(code: &'static str, why: String) -> Rejection {
    Rejection::Casework { code, why }
}

fn case<'a>(state: &'a State, county: CountyCode, no: &DocNo) -> Result<&'a Case, Rejection> {
    state.cases.get(&(county, no.clone())).ok_or_else(|| refuse("UNKNOWN_CASE", format!("county {county} has no case {no}")))
}

/// A case that is accepted and not closed.
fn open_case<'a>(state: &'a State, county: CountyCode, no: &DocNo) -> Result<(&'a Case, &'a DecideCase), Rejection> {
    let c = case(state, county, no)?;
    if c.closed.is_some() {
        return Err(refuse("CASE_CLOSED", format!("case {no} is closed")));
    }
    match &c.decided {
        Some((d, _)) if d.accepted => Ok((c, d)),
        Some(_) => Err(refuse("CASE_NOT_ACCEPTED", format!("case {no} was declined"))),
        None => Err(refuse("CASE_NOT_ACCEPTED", format!("case {no} has not been accepted yet"))),
    }
}

pub(super) fn open(state: &State, c: &OpenCase) -> Decision {
    if state.cases.contains(&(c.county, c.case_no.clone())) {
        return Err(refuse("CASE_EXISTS", format!("county {} already has a case {}", c.county, c.case_no)));
    }
    if c.workers.is_empty() || c.workers.len() > CASE_WORKERS_MAX {
        return Err(Rejection::invalid("INVALID_CASE_WORKERS", "workers", format!("a case names 1 to {CASE_WORKERS_MAX} workers, not {}", c.workers.len())));
    }
    if c.workers.iter().collect::<BTreeSet<_>>().len() != c.workers.len() {
        return Err(Rejection::invalid("INVALID_CASE_WORKERS", "workers", "a worker is named twice"));
    }
    if let Some(p) = &c.project {
        let x = state.projects.get(p).ok_or_else(|| Rejection::UnknownProject(p.clone()))?;
        if x.reg.county != c.county {
            return Err(refuse("PROJECT_OUTSIDE_COUNTY", format!("project {p} is in county {}, not {}", x.reg.county, c.county)));
        }
    }
    Ok(Event::CaseOpened(c.clone()))
}

pub(super) fn decide_case(state: &State, c: &DecideCase) -> Decision {
    let x = case(state, c.county, &c.case_no)?;
    if x.decided.is_some() {
        return Err(refuse("CASE_ALREADY_DECIDED", format!("case {} was already accepted or declined", c.case_no)));
    }
    if c.date < x.open.received_on {
        return Err(Rejection::DateOrder { what: "decision", date: c.date, before: x.open.received_on });
    }
    if !c.accepted && c.reason.is_none() {
        return Err(Rejection::invalid("REASON_REQUIRED", "reason", "a declined case says why (the notice to the complainant gives the reason)"));
    }
    Ok(Event::CaseDecided(c.clone()))
}

pub(super) fn extend(state: &State, c: &ExtendCase) -> Decision {
    let (x, accepted) = open_case(state, c.county, &c.case_no)?;
    if x.extended.is_some() {
        return Err(refuse("CASE_ALREADY_EXTENDED", format!("case {} was extended already (once, by the regulation)", c.case_no)));
    }
    if c.date < accepted.date {
        return Err(Rejection::DateOrder { what: "extension", date: c.date, before: accepted.date });
    }
    Ok(Event::CaseExtended(c.clone()))
}

pub(super) fn close(state: &State, c: &CloseCase) -> Decision {
    let (x, accepted) = open_case(state, c.county, &c.case_no)?;
    if c.date < accepted.date {
        return Err(Rejection::DateOrder { what: "closure", date: c.date, before: accepted.date });
    }
    if c.payouts.len() > CASE_PAYOUTS_MAX {
        return Err(Rejection::invalid("TOO_MANY_PAYOUTS", "payouts", format!("a closure cites at most {CASE_PAYOUTS_MAX} payouts")));
    }
    let cited: BTreeSet<Seq> = c.payouts.iter().copied().collect();
    if cited.len() != c.payouts.len() {
        return Err(refuse("PAYOUT_ALREADY_CITED", "a payout is cited twice in this closure".to_owned()));
    }
    match (c.outcome, c.recovered.is_zero(), cited.is_empty()) {
        (CaseOutcome::Recovered, false, false) => {}
        (CaseOutcome::Recovered, _, _) => {
            return Err(refuse("RECOVERED_NOT_CITED", "a closure with wages recovered states the amount and cites the payouts that paid it".to_owned()));
        }
        (_, true, true) => return Ok(Event::CaseClosed(c.clone())),
        (outcome, _, _) => {
            return Err(refuse("RECOVERED_NOT_CITED", format!("a closure as {outcome:?} recovers nothing and cites no payout")));
        }
    }
    for s in &cited {
        if let Some((county, no)) = state.citations.get(s) {
            return Err(refuse("PAYOUT_ALREADY_CITED", format!("record {s} is cited by case {no} of county {county}")));
        }
    }
    let found = state.cited_payouts(c.county, &x.open.workers, &cited);
    let mut total: Fen = 0;
    for s in &cited {
        let Some((fen, date, _)) = found.get(s) else {
            return Err(refuse("PAYOUT_NOT_CITABLE", format!("record {s} is not a payment to a worker of case {} in county {}", c.case_no, c.county)));
        };
        if *date < x.open.received_on || *date > c.date {
            return Err(refuse("PAYOUT_NOT_CITABLE", format!("record {s} paid on {date}, outside the case ({} to its closure on {})", x.open.received_on, c.date)));
        }
        total += fen;
    }
    if total != c.recovered.fen() {
        return Err(refuse(
            "RECOVERED_NOT_CITED",
            format!("the cited payouts paid the case's workers {}, not the {} recovered", crate::domain::money::format_fen(total), c.recovered),
        ));
    }
    Ok(Event::CaseClosed(c.clone()))
}
