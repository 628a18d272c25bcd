//! The casework rules (`domain::casework`): a case moves received -> accepted or declined
//! -> (extended once) -> closed, each step once and in date order; a closure that says
//! wages were recovered proves it with the payouts that paid the case's workers. An order
//! is complied with by payouts of its project that cure at least its amount; only an
//! unmet order is referred to the police or lists its employer; an employer leaves the
//! list early only after six months and, listed for an order, once it is complied with.

use std::collections::BTreeSet;

use crate::domain::command::*;
use crate::domain::ids::{CountyCode, DocNo, ProjectId};
use crate::domain::money::Fen;
use crate::domain::rejection::Rejection;
use crate::limits::{CASE_PAYOUTS_MAX, CASE_WORKERS_MAX};
use crate::projection::state::{Case, Seq, State, WageOrder};

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
    let after = x.extended.as_ref().map_or(accepted.date, |(e, _)| e.date);
    if c.date < after {
        return Err(Rejection::DateOrder { what: "closure", date: c.date, before: after });
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
        // A case about a project is settled by that project's payouts.
        if let Some(p) = &x.open.project {
            if state.payout_of_project(p, *s).is_none() {
                return Err(refuse("PAYOUT_NOT_CITABLE", format!("record {s} is not a payout of project {p}, which the case is about")));
            }
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

/// The project a county's order names, and the order.
fn order<'a>(state: &'a State, county: CountyCode, no: &DocNo) -> Result<&'a WageOrder, Rejection> {
    state
        .order_numbers
        .get(&(county, no.clone()))
        .and_then(|p| state.wage_orders.get(&(p.clone(), no.clone())))
        .ok_or_else(|| refuse("UNKNOWN_ORDER", format!("county {county} has no order {no}")))
}

/// A project of `county`.
fn county_project(state: &State, county: CountyCode, p: &ProjectId) -> Result<(), Rejection> {
    let x = state.projects.get(p).ok_or_else(|| Rejection::UnknownProject(p.clone()))?;
    if x.reg.county != county {
        return Err(refuse("PROJECT_OUTSIDE_COUNTY", format!("project {p} is in county {}, not {county}", x.reg.county)));
    }
    Ok(())
}

pub(super) fn issue_order(state: &State, c: &IssueOrder) -> Decision {
    if state.order_numbers.contains(&(c.county, c.order_no.clone())) {
        return Err(refuse("ORDER_EXISTS", format!("county {} already issued an order {}", c.county, c.order_no)));
    }
    county_project(state, c.county, &c.project)?;
    if let Some(k) = &c.case_no {
        case(state, c.county, k)?;
    }
    if c.deadline < c.issued_on {
        return Err(Rejection::DateOrder { what: "deadline", date: c.deadline, before: c.issued_on });
    }
    if c.largest > c.amount || (c.amount.is_zero() != (c.workers == 0)) {
        return Err(Rejection::invalid("INVALID_ORDER_AMOUNTS", "largest", "the most owed to one worker is at most the amount, and an amount is owed to at least one worker (none without an amount)"));
    }
    Ok(Event::OrderIssued(c.clone()))
}

pub(super) fn resolve_order(state: &State, c: &ResolveOrder) -> Decision {
    let o = order(state, c.county, &c.order_no)?;
    if o.resolutions.iter().any(|(r, _)| r.complied) {
        return Err(refuse("ORDER_COMPLIED", format!("order {} was complied with already", c.order_no)));
    }
    if c.date < o.order.issued_on {
        return Err(Rejection::DateOrder { what: "resolution", date: c.date, before: o.order.issued_on });
    }
    if let Some((prev, _)) = o.resolutions.last() {
        if c.date < prev.date {
            return Err(Rejection::DateOrder { what: "resolution", date: c.date, before: prev.date });
        }
        if !c.complied {
            return Err(refuse("ORDER_NOT_UNMET", format!("order {} was found not complied with already", c.order_no)));
        }
    }
    if !c.complied {
        if !c.records.is_empty() {
            return Err(refuse("ORDER_NOT_CURED", "an order not complied with cites no payout".to_owned()));
        }
        return Ok(Event::OrderResolved(c.clone()));
    }
    if c.records.len() > CASE_PAYOUTS_MAX {
        return Err(Rejection::invalid("TOO_MANY_PAYOUTS", "records", format!("a compliance cites at most {CASE_PAYOUTS_MAX} payouts")));
    }
    let cited: BTreeSet<Seq> = c.records.iter().copied().collect();
    if cited.len() != c.records.len() {
        return Err(refuse("PAYOUT_ALREADY_CITED", "a payout is cited twice".to_owned()));
    }
    let mut total: Fen = 0;
    for s in &cited {
        let Some((fen, date)) = state.payout_of_project(&o.order.project, *s) else {
            return Err(refuse("PAYOUT_NOT_CITABLE", format!("record {s} is not a payout of project {}", o.order.project)));
        };
        if date < o.order.issued_on || date > c.date {
            return Err(refuse("PAYOUT_NOT_CITABLE", format!("record {s} paid on {date}, outside the order ({} to {})", o.order.issued_on, c.date)));
        }
        total += fen;
    }
    if total < o.order.amount.fen() {
        return Err(refuse(
            "ORDER_NOT_CURED",
            format!("the cited payouts paid {}, less than the {} ordered", crate::domain::money::format_fen(total), o.order.amount),
        ));
    }
    Ok(Event::OrderResolved(c.clone()))
}

pub(super) fn refer(state: &State, c: &ReferOrder) -> Decision {
    let o = order(state, c.county, &c.order_no)?;
    if o.referral.is_some() {
        return Err(refuse("ORDER_REFERRED", format!("order {} was referred already", c.order_no)));
    }
    let at = crate::projection::when::When::date(c.date);
    if !o.unmet_at(at) {
        return Err(refuse("ORDER_NOT_UNMET", format!("order {} is not unmet on {} (deadline {}, or complied with)", c.order_no, c.date, o.order.deadline)));
    }
    Ok(Event::OrderReferred(c.clone()))
}

/// A referral's outcome: first whether the police opened a case, then how an opened case
/// ended; each dated from the referral and the outcome before it on; nothing after a
/// final one.
pub(super) fn referral_outcome(state: &State, c: &RecordReferralOutcome) -> Decision {
    let o = order(state, c.county, &c.order_no)?;
    let Some((referral, _)) = &o.referral else {
        return Err(refuse("ORDER_NOT_REFERRED", format!("order {} was not referred to the police", c.order_no)));
    };
    let last = o.outcomes.last().map(|(x, _)| x.outcome);
    if let Some(prev) = last.filter(|p| p.is_final()) {
        return Err(refuse("REFERRAL_CONCLUDED", format!("the referral of order {} ended already ({})", c.order_no, prev.as_str())));
    }
    let after = o.outcomes.last().map_or(referral.date, |(x, _)| x.date);
    if c.date < after {
        return Err(Rejection::DateOrder { what: "referral outcome", date: c.date, before: after });
    }
    match (last, c.outcome) {
        (None, ReferralOutcome::Filed | ReferralOutcome::NotFiled) | (Some(ReferralOutcome::Filed), ReferralOutcome::Convicted | ReferralOutcome::Dropped) => {
            Ok(Event::ReferralOutcomeRecorded(c.clone()))
        }
        (None, x) => Err(refuse("REFERRAL_NOT_FILED", format!("a referral is {} only after the police opened a case", x.as_str()))),
        (Some(_), x) => Err(refuse("REFERRAL_ALREADY_FILED", format!("the police opened a case on order {} already: it is not {} now", c.order_no, x.as_str()))),
    }
}

pub(super) fn list(state: &State, c: &ListEmployer) -> Decision {
    if state.listing_of(&c.employer, c.listed_on).is_some() {
        return Err(refuse("EMPLOYER_LISTED", format!("employer {} is on the credit list on {}", c.employer, c.listed_on)));
    }
    if state.listings.range((c.employer.clone(), c.listed_on.add_days(1))..=(c.employer.clone(), crate::domain::date::DATE_MAX)).next().is_some() {
        return Err(refuse("EMPLOYER_LISTED", format!("employer {} has a later listing", c.employer)));
    }
    if let ListingBasis::UnmetOrder(no) = &c.basis {
        let o = order(state, c.county, no)?;
        if o.order.employer != c.employer {
            return Err(refuse("ORDER_NOT_UNMET", format!("order {no} was issued to {}, not {}", o.order.employer, c.employer)));
        }
        if !o.unmet_at(crate::projection::when::When::date(c.listed_on)) {
            return Err(refuse("ORDER_NOT_UNMET", format!("order {no} is not unmet on {}", c.listed_on)));
        }
    }
    Ok(Event::EmployerListed(c.clone()))
}

pub(super) fn delist(state: &State, c: &DelistEmployer) -> Decision {
    let key = state.listing_of(&c.employer, c.date).ok_or_else(|| refuse("EMPLOYER_NOT_LISTED", format!("employer {} is not on the credit list on {}", c.employer, c.date)))?;
    let l = state.listings.get(&key).expect("listing_of found it");
    if l.listing.county != c.county {
        return Err(refuse("EMPLOYER_NOT_LISTED", format!("employer {} was listed by county {}", c.employer, l.listing.county)));
    }
    let earliest = l.listing.listed_on.add_months(crate::domain::casework::CREDIT_DELIST_MIN_MONTHS);
    if c.date < earliest {
        return Err(refuse("DELIST_TOO_EARLY", format!("listed on {}: early removal from {earliest}", l.listing.listed_on)));
    }
    if let ListingBasis::UnmetOrder(no) = &l.listing.basis {
        let o = order(state, c.county, no)?;
        if o.complied_at(crate::projection::when::When::date(c.date)).is_none() {
            return Err(refuse("ARREARS_NOT_REPAID", format!("order {no} is not complied with: the arrears are not repaid")));
        }
    }
    Ok(Event::EmployerDelisted(c.clone()))
}

pub(super) fn inspect(state: &State, c: &RecordInspection) -> Decision {
    if let Some(p) = &c.project {
        county_project(state, c.county, p)?;
    }
    Ok(Event::InspectionRecorded(c.clone()))
}

/// Card counts are a bank's report: recorded as it says (more cards may be activated in a
/// period than issued in it, issued earlier).
pub(super) fn cards(c: &RecordCards) -> Decision {
    Ok(Event::CardsRecorded(c.clone()))
}
