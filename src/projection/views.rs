//! Read models: what a query answers, computed from the state as of a date.
//!
//! The gRPC query service, the CLI and (later) the dashboard all show these and
//! nothing else, so a figure has one definition.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::domain::command::ProjectStatus;
use crate::domain::date::{CalendarBook, Date, Period};
use crate::domain::ids::{CountyCode, ProjectId, WorkerRef};
use crate::domain::money::Fen;
use crate::domain::policy::PolicyBook;

use super::flags::{deposit_cover, flags, project_flags, Flag, FlagCode, Grade};
use super::state::{Seq, State};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectView {
    pub project: ProjectId,
    pub name: String,
    pub county: CountyCode,
    pub general_contractor: String,
    pub owner: String,
    pub status: ProjectStatus,
    pub contract_price: Fen,
    pub registered_seq: Seq,
    pub wage_account_open: bool,
    pub wage_account_bank: Option<String>,
    pub wage_balance: Fen,
    pub deposit_required: Fen,
    pub deposit_cash: Fen,
    pub letters_valid: Fen,
    pub progress_total: Fen,
    pub wage_share_total: Fen,
    pub labour_ratio_bp: u32,
    pub wages_paid_total: Fen,
    pub workers_enrolled: u32,
    pub workers_on_site: u32,
    pub workers_with_contract: u32,
    pub owed: Fen,
    pub overdue: Fen,
    pub payroll_periods: Vec<Period>,
    pub flags: Vec<Flag>,
}

/// The view of one project as of `as_of`, or `None` if it is not registered.
pub fn project_view(state: &State, policies: &PolicyBook, cal: &CalendarBook, id: &ProjectId, as_of: Date) -> Option<ProjectView> {
    let p = state.projects.get(id)?;
    let reg = &p.reg;
    let policy = policies.for_project(reg.county, reg.labour_ratio_bp, reg.deposit_rate_bp);
    let (cash, letters) = deposit_cover(state, p, as_of);
    let mut enrolled = 0;
    let mut on_site = 0;
    let mut contract = 0;
    for (_, e) in state.enrolments_of(id) {
        enrolled += 1;
        if e.on_site(as_of) {
            on_site += 1;
        }
        if e.contract.is_some() {
            contract += 1;
        }
    }
    let mut owed = 0;
    let mut overdue = 0;
    let mut periods = Vec::new();
    for (per, h) in state.payrolls_of(id) {
        periods.push(per);
        let o = h.due_total - h.paid_total;
        owed += o;
        if h.due_date < as_of {
            overdue += o;
        }
    }
    let mut fl = Vec::new();
    project_flags(state, p, policies, cal, as_of, &mut fl);
    Some(ProjectView {
        project: id.clone(),
        name: reg.name.to_string(),
        county: reg.county,
        general_contractor: reg.general_contractor.to_string(),
        owner: reg.owner.to_string(),
        status: p.status_on(as_of),
        contract_price: reg.contract_price.fen(),
        registered_seq: p.seq,
        wage_account_open: p.wage_account_open(),
        wage_account_bank: p.wage_account.as_ref().map(|a| a.bank.to_string()),
        wage_balance: state.wage_balance(id),
        deposit_required: if p.status == ProjectStatus::Completed { 0 } else { policy.deposit_required(reg.contract_price).fen() },
        deposit_cash: cash,
        letters_valid: letters,
        progress_total: p.progress_total,
        wage_share_total: p.wage_share_total,
        labour_ratio_bp: policy.labour_ratio_bp,
        wages_paid_total: p.wages_paid_total,
        workers_enrolled: enrolled,
        workers_on_site: on_site,
        workers_with_contract: contract,
        owed,
        overdue,
        payroll_periods: periods,
        flags: fl,
    })
}

/// The figures a county report quotes (DOMAIN_RULES, "What the county reports count").
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountySummary {
    pub county: Option<CountyCode>,
    pub as_of: Option<Date>,
    pub projects_total: u32,
    pub projects_active: u32,
    pub projects_suspended: u32,
    pub projects_completed: u32,
    /// Distinct workers ever enrolled on the county's projects.
    pub workers_registered: u32,
    /// Distinct workers on site on the as-of date.
    pub workers_on_site: u32,
    pub enrolments: u32,
    pub enrolments_with_contract: u32,
    /// Projects that have (or had) a dedicated wage account.
    pub wage_accounts_bound: u32,
    /// Projects not completed that must hold a deposit, and those whose cover meets it.
    pub deposit_required_projects: u32,
    pub deposit_covered_projects: u32,
    pub deposit_cash_total: Fen,
    pub letters_valid_total: Fen,
    pub progress_total: Fen,
    pub wage_share_total: Fen,
    /// Wages paid to cards in the as-of date's calendar year, and to how many workers.
    pub wages_paid_year: Fen,
    pub workers_paid_year: u32,
    /// Wages past due and unpaid, and how many workers they are owed to.
    pub arrears: Fen,
    pub arrears_workers: u32,
    pub flags_red: u32,
    pub flags_yellow: u32,
    pub flags_by_code: BTreeMap<String, u32>,
}

impl CountySummary {
    /// A rate in basis points (10000 = 100%), or `None` when the denominator is zero.
    pub fn rate_bp(num: u32, den: u32) -> Option<u32> {
        (den > 0).then(|| ((u64::from(num) * 10_000) / u64::from(den)) as u32)
    }
}

/// The county summary as of `as_of`; `county = None` sums over every county.
pub fn county_summary(state: &State, policies: &PolicyBook, cal: &CalendarBook, county: Option<CountyCode>, as_of: Date) -> CountySummary {
    let mut s = CountySummary { county, as_of: Some(as_of), ..Default::default() };
    let mut registered = BTreeSet::new();
    let mut on_site = BTreeSet::new();
    let mut arrears_workers: BTreeSet<WorkerRef> = BTreeSet::new();
    let in_county = |c: CountyCode| county.is_none_or(|x| x == c);
    for (id, p) in state.projects.iter().filter(|(_, p)| in_county(p.reg.county)) {
        s.projects_total += 1;
        let status = p.status_on(as_of);
        match status {
            ProjectStatus::Active => s.projects_active += 1,
            ProjectStatus::Suspended => s.projects_suspended += 1,
            ProjectStatus::Completed => s.projects_completed += 1,
        }
        for (w, e) in state.enrolments_of(id) {
            registered.insert(*w);
            s.enrolments += 1;
            if e.contract.is_some() {
                s.enrolments_with_contract += 1;
            }
            if e.on_site(as_of) {
                on_site.insert(*w);
            }
        }
        if p.wage_account.is_some() {
            s.wage_accounts_bound += 1;
        }
        let (cash, letters) = deposit_cover(state, p, as_of);
        s.deposit_cash_total += cash;
        s.letters_valid_total += letters;
        if status != ProjectStatus::Completed {
            let policy = policies.for_project(p.reg.county, p.reg.labour_ratio_bp, p.reg.deposit_rate_bp);
            let required = policy.deposit_required(p.reg.contract_price).fen();
            if required > 0 {
                s.deposit_required_projects += 1;
                if cash + letters >= required {
                    s.deposit_covered_projects += 1;
                }
            }
        }
        s.progress_total += p.progress_total;
        s.wage_share_total += p.wage_share_total;
        for (per, h) in state.payrolls_of(id) {
            if h.due_date < as_of && h.due_total > h.paid_total {
                s.arrears += h.due_total - h.paid_total;
                arrears_workers.extend(state.lines_of(id, per).filter(|(_, l)| l.owed() > 0).map(|(w, _)| *w));
            }
        }
    }
    let year = as_of.year();
    let mut paid_workers = BTreeSet::new();
    for ((c, y, w), fen) in state.paid_workers.iter() {
        if *y == year && in_county(*c) && *fen > 0 {
            s.wages_paid_year += fen;
            paid_workers.insert(*w);
        }
    }
    s.workers_paid_year = paid_workers.len() as u32;
    s.workers_registered = registered.len() as u32;
    s.workers_on_site = on_site.len() as u32;
    s.arrears_workers = arrears_workers.len() as u32;
    for f in flags(state, policies, cal, as_of) {
        let Some(p) = state.projects.get(&f.project) else { continue };
        if !in_county(p.reg.county) {
            continue;
        }
        match f.grade {
            Grade::Red => s.flags_red += 1,
            Grade::Yellow => s.flags_yellow += 1,
        }
        *s.flags_by_code.entry(f.code.as_str().to_owned()).or_default() += 1;
    }
    let _ = FlagCode::ALL;
    s
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerEnrolmentView {
    pub project: ProjectId,
    pub employer: String,
    pub card_masked: String,
    pub on_site: bool,
    pub first_day: Date,
    pub last_exit: Option<Date>,
    pub contract_no: Option<String>,
    pub owed: Fen,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerView {
    pub worker: WorkerRef,
    pub masked: String,
    pub paid_total: Fen,
    pub owed_total: Fen,
    pub enrolments: Vec<WorkerEnrolmentView>,
}

pub fn worker_view(state: &State, worker: &WorkerRef, as_of: Date) -> Option<WorkerView> {
    let w = state.workers.get(worker)?;
    let mut v = WorkerView { worker: *worker, masked: w.masked.to_string(), paid_total: w.paid_total, owed_total: 0, enrolments: Vec::new() };
    for p in w.projects.iter() {
        let Some(e) = state.enrolments.get(&(p.clone(), *worker)) else { continue };
        let owed: Fen = state
            .payrolls_of(p)
            .filter_map(|(per, _)| state.lines.get(&(p.clone(), per, *worker)))
            .map(|l| l.owed())
            .sum();
        v.owed_total += owed;
        v.enrolments.push(WorkerEnrolmentView {
            project: p.clone(),
            employer: e.employer.to_string(),
            card_masked: e.card_masked.to_string(),
            on_site: e.on_site(as_of),
            first_day: e.spans.first().expect("enrolled").from,
            last_exit: e.spans.last().and_then(|s| s.to),
            contract_no: e.contract.as_ref().map(|c| c.contract_no.to_string()),
            owed,
        });
    }
    Some(v)
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayrollLineView {
    pub worker: WorkerRef,
    pub worker_masked: String,
    pub employer: String,
    pub days: u8,
    pub due: Fen,
    pub paid: Fen,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayrollView {
    pub project: ProjectId,
    pub period: Period,
    pub seq: Seq,
    pub due_date: Date,
    pub due_total: Fen,
    pub paid_total: Fen,
    pub overdue: bool,
    pub lines: Vec<PayrollLineView>,
}

pub fn payroll_view(state: &State, project: &ProjectId, period: Period, as_of: Date) -> Option<PayrollView> {
    let h = state.payrolls.get(&(project.clone(), period))?;
    let lines = state
        .lines_of(project, period)
        .map(|(w, l)| PayrollLineView {
            worker: *w,
            worker_masked: state.workers.get(w).map(|x| x.masked.to_string()).unwrap_or_default(),
            employer: l.employer.to_string(),
            days: l.days,
            due: l.due,
            paid: l.paid,
        })
        .collect();
    Some(PayrollView {
        project: project.clone(),
        period,
        seq: h.seq,
        due_date: h.due_date,
        due_total: h.due_total,
        paid_total: h.paid_total,
        overdue: h.due_date < as_of && h.paid_total < h.due_total,
        lines,
    })
}

/// One month of a project's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthView {
    pub period: Period,
    pub wage_in: Fen,
    pub wage_out: Fen,
    /// Wage account balance at the end of the month (by value dates).
    pub wage_balance_end: Fen,
    pub progress: Fen,
    pub payroll_due: Fen,
    pub payroll_paid: Fen,
}

/// A project month by month, from its first month with money or a payroll to its last.
pub fn project_history(state: &State, id: &ProjectId) -> Option<Vec<MonthView>> {
    let p = state.projects.get(id)?;
    let (Some((&first, _)), Some((&last, _))) = (p.months.iter().next(), p.months.iter().next_back()) else { return Some(Vec::new()) };
    let mut out = Vec::new();
    let mut balance = 0;
    let mut per = first;
    loop {
        let m = p.months.get(&per).cloned().unwrap_or_default();
        balance += m.wage_in - m.wage_out;
        out.push(MonthView { period: per, wage_in: m.wage_in, wage_out: m.wage_out, wage_balance_end: balance, progress: m.progress, payroll_due: m.payroll_due, payroll_paid: m.payroll_paid });
        if per == last {
            break;
        }
        per = per.next();
    }
    Some(out)
}

/// Workers whose masked ID matches `masked` (`*` in the pattern matches any one
/// character; an unmasked digit must be equal), optionally on one project.
pub fn find_workers(state: &State, masked: &str, project: Option<&ProjectId>, as_of: Date) -> Vec<WorkerView> {
    let pat: Vec<char> = masked.chars().collect();
    let matches = |m: &str| {
        let c: Vec<char> = m.chars().collect();
        c.len() == pat.len() && c.iter().zip(&pat).all(|(a, b)| *b == '*' || *a == '*' || a.eq_ignore_ascii_case(b))
    };
    state
        .workers
        .iter()
        .filter(|(_, w)| matches(w.masked.as_str()))
        .filter(|(_, w)| project.is_none_or(|p| w.projects.contains(p)))
        .filter_map(|(r, _)| worker_view(state, r, as_of))
        .collect()
}
