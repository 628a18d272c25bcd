//! The county's work report for a period (issue 17): every figure a county work report
//! quotes, computed from the ledger at one point, so that each can be footnoted with the
//! query that produced it (`GetCountyReport` with the same county, period and record).
//!
//! Figures "at the end" are the county summary at the period's last day (projects by
//! status, registration, contracts, deposits, wage accounts, open flags); figures "in the
//! period" count what is dated in it: wages paid and to how many workers, cards issued
//! and activated, cases received (and of those, closed by the end, with the wages they
//! recovered and the workers paid), orders issued (complied with, unmet at the end),
//! referrals, listings, inspections.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::domain::casework::ReferralOutcome;
use crate::domain::date::{CalendarBook, Date};
use crate::domain::ids::{CountyCode, ProjectId, Uscc};
use crate::domain::money::Fen;
use crate::domain::policy::PolicyBook;

use super::casework::{cases, SourceFigures};
use super::flags::{flags, FlagCode, Grade};
use super::state::State;
use super::views::{county_summary, CountySummary};
use super::when::When;

/// What the county did with its orders in the period.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderFigures {
    /// Orders issued in the period.
    pub issued: u32,
    /// Of those, complied with by the end.
    pub complied: u32,
    /// Of those, unmet at the end (past the deadline, not complied with).
    pub unmet: u32,
    /// Orders referred to the police in the period (any issue date).
    pub referred: u32,
    /// Of those, the ones the police opened a case on by the end (whatever came after),
    /// and the ones that ended in a conviction by the end.
    pub referrals_filed: u32,
    pub referrals_convicted: u32,
}

/// The report's figures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountyReport {
    pub county: CountyCode,
    pub from: Date,
    pub to: Date,
    /// The record the report was computed at.
    pub at_seq: u64,
    /// The county at the period's end.
    pub summary: CountySummary,
    /// Wages paid to workers' cards in the period, and to how many workers.
    pub wages_paid: Fen,
    pub workers_paid: u32,
    /// Co-branded wage cards the banks reported issued and activated in the period.
    pub cards_issued: u32,
    pub cards_activated: u32,
    /// Cases received in the period, by source (closed: of those, by the end).
    pub cases: BTreeMap<String, SourceFigures>,
    pub orders: OrderFigures,
    /// Employers listed in the period, and those on the list at the end.
    pub listed: u32,
    pub on_list: Vec<Uscc>,
    /// Inspections in the period, the employers they covered, contracts signed on the spot.
    pub inspections: u32,
    pub employers_inspected: u32,
    pub contracts_signed: u32,
    /// Problems found: each open flag code at the end with the projects behind it.
    pub problems: BTreeMap<String, (Grade, Vec<ProjectId>)>,
}

/// The report of `county` for `from ..= to`, counting the records up to `seq`.
pub fn county_report(state: &State, policies: &PolicyBook, cal: &CalendarBook, county: CountyCode, from: Date, to: Date, seq: u64) -> CountyReport {
    let end = When { seq, date: to };
    let before = When { seq, date: from.add_days(-1) };
    let in_period = |d: Date| from <= d && d <= to;
    let summary = county_summary(state, policies, cal, Some(county), end);

    let (mut wages_paid, mut workers_paid) = (0, 0);
    for ((c, _), h) in state.payees.iter() {
        if *c != county {
            continue;
        }
        let paid = h.at(end).balance - h.at(before).balance;
        if paid > 0 {
            wages_paid += paid;
            workers_paid += 1;
        }
    }

    let (mut cards_issued, mut cards_activated) = (0, 0);
    for ((_, s), c) in state.card_reports.range((county, 0)..=(county, u64::MAX)) {
        if *s <= seq && in_period(c.date) {
            cards_issued += c.issued;
            cards_activated += c.activated;
        }
    }

    let all_cases = cases(state, policies, cal, Some(county), end);
    let received: Vec<_> = all_cases.iter().filter(|c| in_period(c.received_on)).cloned().collect();
    // Of the cases received in the period: accepted, declined, closed by the end (a closed
    // case counts as accepted too), overdue at the end, recovered and workers paid.
    let case_figures = super::casework::figures(&received);

    let mut orders = OrderFigures::default();
    for o in state.wage_orders.iter().map(|(_, o)| o).filter(|o| o.order.county == county && o.seen(end)) {
        if in_period(o.order.issued_on) {
            orders.issued += 1;
            if o.complied_at(end).is_some() {
                orders.complied += 1;
            } else if o.unmet_at(end) {
                orders.unmet += 1;
            }
        }
        if o.referral_at(end).is_some_and(|r| in_period(r.date)) {
            orders.referred += 1;
            let outcome = o.referral_outcome_at(end).map(|x| x.outcome);
            if matches!(outcome, Some(ReferralOutcome::Filed | ReferralOutcome::Convicted | ReferralOutcome::Dropped)) {
                orders.referrals_filed += 1;
            }
            if outcome == Some(ReferralOutcome::Convicted) {
                orders.referrals_convicted += 1;
            }
        }
    }

    let mut listed = 0;
    let mut on_list = BTreeSet::new();
    for (_, l) in state.listings.iter().filter(|(_, l)| l.listing.county == county) {
        if l.seq <= seq && in_period(l.listing.listed_on) {
            listed += 1;
        }
        if l.in_force_on(to, end) {
            on_list.insert(l.listing.employer.clone());
        }
    }

    let (mut inspections, mut contracts_signed) = (0, 0);
    let mut employers = BTreeSet::new();
    for ((_, s), i) in state.inspections.range((county, 0)..=(county, u64::MAX)) {
        if *s <= seq && in_period(i.date) {
            inspections += 1;
            contracts_signed += i.contracts_signed;
            employers.insert(i.employer.clone());
        }
    }

    let mut problems: BTreeMap<String, (Grade, Vec<ProjectId>)> = BTreeMap::new();
    for f in flags(state, policies, cal, end) {
        if state.projects.get(&f.project).is_some_and(|p| p.reg.county == county) {
            let e = problems.entry(f.code.as_str().to_owned()).or_insert((f.grade, Vec::new()));
            e.0 = e.0.min(f.grade);
            if !e.1.contains(&f.project) {
                e.1.push(f.project.clone());
            }
        }
    }
    let overdue: Vec<_> = all_cases.into_iter().filter_map(|c| c.overdue.map(|(g, _)| (g, c.project))).collect();
    if !overdue.is_empty() {
        let e = problems.entry(FlagCode::CaseOverdue.as_str().to_owned()).or_insert((Grade::Yellow, Vec::new()));
        for (g, p) in overdue {
            e.0 = e.0.min(g);
            if let Some(p) = p {
                if !e.1.contains(&p) {
                    e.1.push(p);
                }
            }
        }
    }

    CountyReport {
        county,
        from,
        to,
        at_seq: seq,
        summary,
        wages_paid,
        workers_paid,
        cards_issued,
        cards_activated,
        cases: case_figures,
        orders,
        listed,
        on_list: on_list.into_iter().collect(),
        inspections,
        employers_inspected: employers.len() as u32,
        contracts_signed,
        problems,
    }
}
