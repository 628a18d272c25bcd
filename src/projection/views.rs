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

use crate::domain::posting::Account;

use super::flags::{deposit_cover, flags, project_flags, Flag, FlagCode, Grade};
use super::state::{Seq, State};
use super::when::When;

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
    /// The day its registration is dated, and whether the record said so (format 2).
    pub registered_on: Date,
    pub registered_on_recorded: bool,
    /// How its deposit is decided (with an exemption's basis), and who funds it.
    pub deposit_basis: crate::domain::command::DepositBasis,
    pub funding: crate::domain::command::Funding,
    /// Its guarantee letters the point sees.
    pub letters: Vec<LetterView>,
    /// Its drawdowns the point sees, with how much of each was made good.
    pub drawdowns: Vec<DrawdownView>,
    /// Its accounts against their banks' statements (those a bank has attested).
    pub reconciliation: Vec<super::reconcile::AccountReconciliation>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LetterView {
    pub letter_no: String,
    pub bank: String,
    pub amount: Fen,
    pub valid_from: Date,
    pub valid_to: Date,
    pub issued_on: Option<Date>,
    pub applicant: Option<String>,
    pub beneficiary: Option<String>,
    pub cancelled: Option<Date>,
    /// Counts as cover on the point's date.
    pub valid: bool,
    pub seq: Seq,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrawdownView {
    pub order_no: String,
    pub order_date: Option<Date>,
    pub date: Date,
    pub reason: Option<String>,
    pub amount: Fen,
    pub replenished: Fen,
    pub seq: Seq,
}

/// Wages a project paid to cards at the point `w` (payouts from the wage account and
/// drawdowns from the deposit).
fn wages_paid_at(state: &State, id: &ProjectId, w: When) -> Fen {
    let paid = |a: Account| state.postings.get(&a).map_or(0, |h| h.at(w).paid);
    -(paid(Account::Wage(id.clone())) + paid(Account::Deposit(id.clone())))
}

/// The view of one project at the point `w`, or `None` if the point does not see it
/// registered.
pub fn project_view(state: &State, policies: &PolicyBook, cal: &CalendarBook, id: &ProjectId, w: When) -> Option<ProjectView> {
    let p = state.projects.get(id).filter(|p| p.seen(w))?;
    let as_of = w.date;
    let reg = &p.reg;
    let policy = policies.for_project(reg.county, reg.labour_ratio_bp, reg.deposit_rate_bp);
    let (cash, letters) = deposit_cover(state, p, w);
    let mut enrolled = 0;
    let mut on_site = 0;
    let mut contract = 0;
    for (_, e) in state.enrolments_of(id).filter(|(_, e)| e.seen(w)) {
        enrolled += 1;
        if e.on_site(w) {
            on_site += 1;
        }
        if e.contract_at(w).is_some() {
            contract += 1;
        }
    }
    let mut owed = 0;
    let mut overdue = 0;
    let mut periods = Vec::new();
    for (per, h) in state.payrolls_at(id, w) {
        periods.push(per);
        let o = h.due_total - state.payroll_paid_at(id, per, w);
        owed += o;
        if h.due_date < as_of {
            overdue += o;
        }
    }
    let (mut progress_total, mut wage_share_total) = (0, 0);
    for e in state.progress_of(id).filter(|e| w.sees(e.seq, e.date)) {
        progress_total += e.total;
        wage_share_total += e.share;
    }
    let mut fl = Vec::new();
    project_flags(state, p, policies, cal, w, &mut fl);
    let status = p.status_at(w, as_of);
    let account = p.wage_account_at(w);
    Some(ProjectView {
        project: id.clone(),
        name: reg.name.to_string(),
        county: reg.county,
        general_contractor: reg.general_contractor.to_string(),
        owner: reg.owner.to_string(),
        status,
        contract_price: reg.contract_price.fen(),
        registered_seq: p.seq,
        wage_account_open: account.is_some_and(|(_, closed)| !closed),
        wage_account_bank: account.map(|(a, _)| a.bank.to_string()),
        wage_balance: state.balance_at(&Account::Wage(id.clone()), w),
        deposit_required: if status == ProjectStatus::Completed { 0 } else { super::flags::deposit_required(state, &policy, p, w) },
        deposit_cash: cash,
        letters_valid: letters,
        progress_total,
        wage_share_total,
        labour_ratio_bp: policy.labour_ratio_bp,
        wages_paid_total: wages_paid_at(state, id, w),
        workers_enrolled: enrolled,
        workers_on_site: on_site,
        workers_with_contract: contract,
        owed,
        overdue,
        payroll_periods: periods,
        flags: fl,
        registered_on: p.dated(),
        registered_on_recorded: reg.registered_on.is_some(),
        deposit_basis: reg.deposit_basis.clone(),
        funding: reg.funding,
        letters: state
            .letters_of(id)
            .filter(|(_, l)| l.seen(w))
            .map(|(n, l)| LetterView {
                letter_no: n.to_string(),
                bank: l.bank.to_string(),
                amount: l.amount.fen(),
                valid_from: l.valid_from,
                valid_to: l.valid_to,
                issued_on: l.issued_on,
                applicant: l.applicant.as_ref().map(ToString::to_string),
                beneficiary: l.beneficiary.as_ref().map(ToString::to_string),
                cancelled: l.cancelled_at(w),
                valid: l.valid_at(w),
                seq: l.seq,
            })
            .collect(),
        drawdowns: super::flags::drawdowns_at(state, p, w)
            .into_iter()
            .map(|d| DrawdownView {
                order_no: d.order_no.to_string(),
                order_date: d.order_date,
                date: d.date,
                reason: d.reason.as_ref().map(ToString::to_string),
                amount: d.fen,
                replenished: d.replenished,
                seq: d.seq,
            })
            .collect(),
        reconciliation: [crate::domain::command::StatementAccount::Wage, crate::domain::command::StatementAccount::Deposit]
            .into_iter()
            .filter_map(|a| super::reconcile::account_reconciliation(state, p, a, &policy, cal.for_county(reg.county), w))
            .collect(),
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
    /// Per bank: the accounts it attests (statements, issue 16) and how they stand.
    pub reconciliation: BTreeMap<String, BankReconciliation>,
    /// The casework by source (`projection::casework`, issue 17).
    pub casework: BTreeMap<String, super::casework::SourceFigures>,
}

/// How the accounts one bank attests stand against the ledger, at a point.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankReconciliation {
    /// Accounts it has sent a statement for.
    pub accounts: u32,
    /// Whose latest statement agrees with the ledger.
    pub agreed: u32,
    /// Whose latest statement differs (BALANCE_MISMATCH).
    pub differ: u32,
    /// Whose statements stopped coming (STATEMENT_MISSING).
    pub late: u32,
}

impl CountySummary {
    /// A rate in basis points (10000 = 100%), or `None` when the denominator is zero.
    pub fn rate_bp(num: u32, den: u32) -> Option<u32> {
        (den > 0).then(|| ((u64::from(num) * 10_000) / u64::from(den)) as u32)
    }
}

/// The county summary at the point `w`; `county = None` sums over every county.
pub fn county_summary(state: &State, policies: &PolicyBook, cal: &CalendarBook, county: Option<CountyCode>, w: When) -> CountySummary {
    let as_of = w.date;
    let mut s = CountySummary { county, as_of: Some(as_of), ..Default::default() };
    let mut registered = BTreeSet::new();
    let mut on_site = BTreeSet::new();
    let mut arrears_workers: BTreeSet<WorkerRef> = BTreeSet::new();
    let in_county = |c: CountyCode| county.is_none_or(|x| x == c);
    for (id, p) in state.projects.iter().filter(|(_, p)| in_county(p.reg.county) && p.seen(w)) {
        s.projects_total += 1;
        let status = p.status_at(w, as_of);
        match status {
            ProjectStatus::Active => s.projects_active += 1,
            ProjectStatus::Suspended => s.projects_suspended += 1,
            ProjectStatus::Completed => s.projects_completed += 1,
        }
        for (wr, e) in state.enrolments_of(id).filter(|(_, e)| e.seen(w)) {
            registered.insert(*wr);
            s.enrolments += 1;
            if e.contract_at(w).is_some() {
                s.enrolments_with_contract += 1;
            }
            if e.on_site(w) {
                on_site.insert(*wr);
            }
        }
        if p.wage_account_at(w).is_some() {
            s.wage_accounts_bound += 1;
        }
        let (cash, letters) = deposit_cover(state, p, w);
        s.deposit_cash_total += cash;
        s.letters_valid_total += letters;
        let policy = policies.for_project(p.reg.county, p.reg.labour_ratio_bp, p.reg.deposit_rate_bp);
        if status != ProjectStatus::Completed {
            let required = super::flags::deposit_required(state, &policy, p, w);
            if required > 0 {
                s.deposit_required_projects += 1;
                if cash + letters >= required {
                    s.deposit_covered_projects += 1;
                }
            }
        }
        for e in state.progress_of(id).filter(|e| w.sees(e.seq, e.date)) {
            s.progress_total += e.total;
            s.wage_share_total += e.share;
        }
        for account in [crate::domain::command::StatementAccount::Wage, crate::domain::command::StatementAccount::Deposit] {
            if let Some(r) = super::reconcile::account_reconciliation(state, p, account, &policy, cal.for_county(p.reg.county), w) {
                let b = s.reconciliation.entry(r.bank.clone()).or_default();
                b.accounts += 1;
                if r.agrees() {
                    b.agreed += 1;
                } else {
                    b.differ += 1;
                }
                if r.late_since.is_some() {
                    b.late += 1;
                }
            }
        }
        for (per, h) in state.payrolls_at(id, w) {
            let owed = h.due_total - state.payroll_paid_at(id, per, w);
            if h.due_date < as_of && owed > 0 {
                s.arrears += owed;
                arrears_workers.extend(state.lines_of(id, per).filter(|(_, l)| l.due - l.paid_at(w) > 0).map(|(wr, _)| *wr));
            }
        }
    }
    // Paid in the as-of date's calendar year, up to the point.
    let year_before = Date::from_ymd(as_of.year() - 1, 12, 31);
    let mut paid_workers = BTreeSet::new();
    for ((c, wr), h) in state.payees.iter() {
        if !in_county(*c) {
            continue;
        }
        let before = year_before.map_or(0, |d| h.at(When { seq: w.seq, date: d }).balance);
        let paid = h.at(w).balance - before;
        if paid > 0 {
            s.wages_paid_year += paid;
            paid_workers.insert(*wr);
        }
    }
    s.workers_paid_year = paid_workers.len() as u32;
    s.workers_registered = registered.len() as u32;
    s.workers_on_site = on_site.len() as u32;
    s.arrears_workers = arrears_workers.len() as u32;
    for f in flags(state, policies, cal, w) {
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
    // Cases past a time limit are flags of the county (CASE_OVERDUE).
    let cases = super::casework::cases(state, policies, cal, county, w);
    for (grade, _) in cases.iter().filter_map(|c| c.overdue) {
        match grade {
            Grade::Red => s.flags_red += 1,
            Grade::Yellow => s.flags_yellow += 1,
        }
        *s.flags_by_code.entry(FlagCode::CaseOverdue.as_str().to_owned()).or_default() += 1;
    }
    s.casework = super::casework::figures(&cases);
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
    /// The payments to their cards the point sees, newest first, at most
    /// `WORKER_PAYMENTS_SHOWN`: each one's record, for a receipt (`GetReceipt`).
    pub payments: Vec<PaymentView>,
}

/// The payments a worker's view lists (the newest; `paid_total` counts them all).
pub const WORKER_PAYMENTS_SHOWN: usize = 50;

/// One payment to a worker's card: the record that made it, its value date, the amount.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentView {
    pub seq: Seq,
    pub date: Date,
    pub amount: Fen,
}

/// A worker at the point `w`, or `None` if the point sees no enrolment of theirs.
pub fn worker_view(state: &State, worker: &WorkerRef, w: When) -> Option<WorkerView> {
    let wk = state.workers.get(worker)?;
    let mut v = WorkerView { worker: *worker, masked: wk.masked.to_string(), paid_total: 0, owed_total: 0, enrolments: Vec::new(), payments: Vec::new() };
    let mut counties = BTreeSet::new();
    for p in wk.projects.iter() {
        let Some(e) = state.enrolments.get(&(p.clone(), *worker)).filter(|e| e.seen(w)) else { continue };
        if let Some(proj) = state.projects.get(p) {
            counties.insert(proj.reg.county);
        }
        let owed: Fen = state
            .payrolls_at(p, w)
            .filter_map(|(per, _)| state.lines.get(&(p.clone(), per, *worker)))
            .map(|l| l.due - l.paid_at(w))
            .sum();
        v.owed_total += owed;
        let first = e.spans_at(w).next().expect("seen");
        let last = e.spans_at(w).last().expect("seen");
        v.enrolments.push(WorkerEnrolmentView {
            project: p.clone(),
            employer: last.employer.to_string(),
            card_masked: last.card_masked.to_string(),
            on_site: e.on_site(w),
            first_day: first.from,
            last_exit: last.end_at(w),
            contract_no: e.contract_at(w).map(|c| c.contract_no.to_string()),
            owed,
        });
    }
    if v.enrolments.is_empty() {
        return None;
    }
    v.paid_total = counties.iter().filter_map(|c| state.payees.get(&(*c, *worker))).map(|h| h.at(w).balance).sum();
    let mut payments: Vec<PaymentView> = counties.iter().filter_map(|c| state.payees.get(&(*c, *worker))).flat_map(|h| h.iter()).filter(|p| p.seq <= w.seq && p.date <= w.date).map(|p| PaymentView { seq: p.seq, date: p.date, amount: p.amount }).collect();
    payments.sort_by(|a, b| b.seq.cmp(&a.seq));
    payments.truncate(WORKER_PAYMENTS_SHOWN);
    v.payments = payments;
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
    /// Format 2: its own number and the day it was submitted.
    pub payroll_no: Option<String>,
    pub submitted_on: Option<Date>,
    pub due_date: Date,
    pub due_total: Fen,
    pub paid_total: Fen,
    pub overdue: bool,
    pub lines: Vec<PayrollLineView>,
}

/// A payroll at the point `w`, or `None` if the point does not see it submitted.
pub fn payroll_view(state: &State, project: &ProjectId, period: Period, w: When) -> Option<PayrollView> {
    let h = state.payrolls.get(&(project.clone(), period)).filter(|h| w.sees(h.seq, h.dated))?;
    let lines: Vec<PayrollLineView> = state
        .lines_of(project, period)
        .map(|(wr, l)| PayrollLineView {
            worker: *wr,
            worker_masked: state.workers.get(wr).map(|x| x.masked.to_string()).unwrap_or_default(),
            employer: l.employer.to_string(),
            days: l.days,
            due: l.due,
            paid: l.paid_at(w),
        })
        .collect();
    let paid_total = lines.iter().map(|l| l.paid).sum();
    Some(PayrollView {
        project: project.clone(),
        period,
        seq: h.seq,
        payroll_no: h.payroll_no.as_ref().map(ToString::to_string),
        submitted_on: h.submitted_on,
        due_date: h.due_date,
        due_total: h.due_total,
        paid_total,
        overdue: h.due_date < w.date && paid_total < h.due_total,
        lines,
    })
}

/// One month of a project's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthView {
    pub period: Period,
    /// Into the wage account (wage shares and top-ups) dated in the month.
    pub wage_in: Fen,
    /// Out of the wage account (payouts and the closing residual) dated in the month.
    pub wage_out: Fen,
    /// Wage account balance at the end of the month (by value dates).
    pub wage_balance_end: Fen,
    /// Progress payments dated in the month.
    pub progress: Fen,
    /// Due on the payroll for this month (by period).
    pub payroll_due: Fen,
    /// Paid against this month's payroll (payouts and drawdowns, whenever made).
    pub payroll_paid: Fen,
    /// The project's figures at the month's end (or the point's date, in its last
    /// month), as `project_view` gives them there: deposit required and held (cash and
    /// valid letters), wages owed and overdue, open flags by grade.
    pub deposit_required: Fen,
    pub deposit_cover: Fen,
    pub owed: Fen,
    pub overdue: Fen,
    pub flags_red: u32,
    pub flags_yellow: u32,
}

/// A project month by month at the point `w`, from its first month with money or a
/// payroll to the point's month: the money of each month, and its figures at each month's end
/// (each a view at that date, seeing the records the point sees).
pub fn project_history(state: &State, policies: &PolicyBook, cal: &CalendarBook, id: &ProjectId, w: When) -> Option<Vec<MonthView>> {
    state.projects.get(id).filter(|p| p.seen(w))?;
    let mut months: BTreeMap<Period, MonthView> = BTreeMap::new();
    fn month(months: &mut BTreeMap<Period, MonthView>, per: Period) -> &mut MonthView {
        months.entry(per).or_insert_with(|| MonthView::empty(per))
    }
    if let Some(h) = state.postings.get(&Account::Wage(id.clone())) {
        for p in h.iter().take_while(|p| p.seq <= w.seq).filter(|p| p.date <= w.date) {
            let m = month(&mut months, p.date.period());
            if p.amount > 0 {
                m.wage_in += p.amount;
            } else {
                m.wage_out -= p.amount;
            }
        }
    }
    for e in state.progress_of(id).filter(|e| w.sees(e.seq, e.date)) {
        month(&mut months, e.date.period()).progress += e.total;
    }
    for (per, h) in state.payrolls_at(id, w) {
        let paid = state.payroll_paid_at(id, per, w);
        let m = month(&mut months, per);
        m.payroll_due += h.due_total;
        m.payroll_paid += paid;
    }
    let (Some(&first), Some(&last)) = (months.keys().next(), months.keys().next_back()) else { return Some(Vec::new()) };
    // Up to the point's own month: the figures go on after the money stops.
    let last = last.max(w.date.period());
    let mut out = Vec::new();
    let mut balance = 0;
    let mut per = first;
    loop {
        let mut m = months.get(&per).cloned().unwrap_or_else(|| MonthView::empty(per));
        balance += m.wage_in - m.wage_out;
        m.wage_balance_end = balance;
        if let Some(v) = project_view(state, policies, cal, id, When { seq: w.seq, date: per.last_day().min(w.date) }) {
            m.deposit_required = v.deposit_required;
            m.deposit_cover = v.deposit_cash + v.letters_valid;
            m.owed = v.owed;
            m.overdue = v.overdue;
            m.flags_red = v.flags.iter().filter(|f| f.grade == Grade::Red).count() as u32;
            m.flags_yellow = v.flags.iter().filter(|f| f.grade == Grade::Yellow).count() as u32;
        }
        out.push(m);
        if per == last {
            break;
        }
        per = per.next();
    }
    Some(out)
}

impl MonthView {
    fn empty(period: Period) -> MonthView {
        MonthView {
            period,
            wage_in: 0,
            wage_out: 0,
            wage_balance_end: 0,
            progress: 0,
            payroll_due: 0,
            payroll_paid: 0,
            deposit_required: 0,
            deposit_cover: 0,
            owed: 0,
            overdue: 0,
            flags_red: 0,
            flags_yellow: 0,
        }
    }
}

/// Workers whose masked ID matches `masked` (`*` in the pattern matches any one
/// character; an unmasked digit must be equal), optionally on one project, at the
/// point `w`.
pub fn find_workers(state: &State, masked: &str, project: Option<&ProjectId>, w: When) -> Vec<WorkerView> {
    let pat: Vec<char> = masked.chars().collect();
    let matches = |m: &str| {
        let c: Vec<char> = m.chars().collect();
        c.len() == pat.len() && c.iter().zip(&pat).all(|(a, b)| *b == '*' || *a == '*' || a.eq_ignore_ascii_case(b))
    };
    state
        .workers
        .iter()
        .filter(|(_, wk)| matches(wk.masked.as_str()))
        .filter(|(_, wk)| project.is_none_or(|p| wk.projects.contains(p)))
        .filter_map(|(r, _)| worker_view(state, r, w))
        .filter(|v| project.is_none_or(|p| v.enrolments.iter().any(|e| e.project == *p)))
        .collect()
}
