//! Flags: what the county must see, evaluated as of a date.
//!
//! A flag is a pure function of (state, as-of date, policy, calendar): nothing here is
//! stored, so a flag clears by itself as soon as the facts that raised it are cured.
//! Each flag carries its evidence: the sequence numbers of the records behind it.

use serde::{Deserialize, Serialize};

use crate::domain::command::ProjectStatus;
use crate::domain::date::{Calendar, CalendarBook, Date};
use crate::domain::ids::ProjectId;
use crate::domain::money::{format_fen, format_yuan, Fen};
use crate::domain::policy::{Policy, PolicyBook};
use crate::limits::FLAG_EVIDENCE_MAX;

use super::state::{DrawdownEntry, Project, Seq, State};
use super::when::When;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FlagCode {
    /// The wage account holds less than the wages owed on submitted payrolls.
    WageShortfall,
    /// Payroll lines are past their due date and not fully paid.
    WagesOverdue,
    /// Cumulative wage share of progress payments is below the labour-cost ratio.
    SplitBelowRatio,
    /// Deposit cash plus valid guarantee letters is below the required deposit.
    DepositShortfall,
    /// A guarantee letter the cover depends on lapses soon (yellow) or has lapsed (red).
    LetterExpiring,
    /// A drawdown was not made good within the replenishment deadline.
    DrawdownNotReplenished,
    /// A month with workers on site has no payroll after the pay deadline.
    PayrollMissing,
    /// No wage account opened within the deadline after the construction contract.
    NoWageAccount,
    /// Workers on site without a recorded labour contract.
    ContractMissing,
    /// A bank's statement of a wage or deposit account differs from the ledger's balance
    /// that day (`projection::reconcile`).
    BalanceMismatch,
    /// No statement of an account a bank attests, for more working days than allowed.
    StatementMissing,
    /// A case not accepted or declined in time (yellow), or not closed in time (red): a
    /// flag of the county's casework (`projection::casework`), not of a project's money.
    CaseOverdue,
    /// An order to pay past its deadline and not complied with.
    OrderUnmet,
    /// An unmet order with arrears at the referral thresholds, not referred to the police.
    ReferralDue,
}

impl FlagCode {
    pub const ALL: [FlagCode; 14] = [
        FlagCode::WageShortfall,
        FlagCode::WagesOverdue,
        FlagCode::SplitBelowRatio,
        FlagCode::DepositShortfall,
        FlagCode::LetterExpiring,
        FlagCode::DrawdownNotReplenished,
        FlagCode::PayrollMissing,
        FlagCode::NoWageAccount,
        FlagCode::ContractMissing,
        FlagCode::BalanceMismatch,
        FlagCode::StatementMissing,
        FlagCode::CaseOverdue,
        FlagCode::OrderUnmet,
        FlagCode::ReferralDue,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FlagCode::WageShortfall => "WAGE_SHORTFALL",
            FlagCode::WagesOverdue => "WAGES_OVERDUE",
            FlagCode::SplitBelowRatio => "SPLIT_BELOW_RATIO",
            FlagCode::DepositShortfall => "DEPOSIT_SHORTFALL",
            FlagCode::LetterExpiring => "LETTER_EXPIRING",
            FlagCode::DrawdownNotReplenished => "DRAWDOWN_NOT_REPLENISHED",
            FlagCode::PayrollMissing => "PAYROLL_MISSING",
            FlagCode::NoWageAccount => "NO_WAGE_ACCOUNT",
            FlagCode::ContractMissing => "CONTRACT_MISSING",
            FlagCode::BalanceMismatch => "BALANCE_MISMATCH",
            FlagCode::StatementMissing => "STATEMENT_MISSING",
            FlagCode::CaseOverdue => "CASE_OVERDUE",
            FlagCode::OrderUnmet => "ORDER_UNMET",
            FlagCode::ReferralDue => "REFERRAL_DUE",
        }
    }
}

/// Alert grade, as provincial platforms grade them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Grade {
    Red,
    Yellow,
}

impl Grade {
    /// The grade's name as the policy and the API write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Grade::Red => "red",
            Grade::Yellow => "yellow",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flag {
    pub code: FlagCode,
    pub grade: Grade,
    pub project: ProjectId,
    /// How much money is missing (0 where the flag is not about an amount).
    pub gap: Fen,
    /// A count that goes with the flag: workers unpaid or without contract, months missing.
    pub count: u32,
    /// Since when the condition holds.
    pub since: Date,
    /// Sequence numbers of the records behind the flag, at most `FLAG_EVIDENCE_MAX`.
    pub evidence: Vec<Seq>,
    pub detail: String,
    /// The same sentence in Chinese, for a county office's page.
    pub detail_zh: String,
    /// Tells apart flags of one code on one project: the record of the drawdown or letter
    /// it is about, 1 for the wage and 2 for the deposit account; 0 where a project has at
    /// most one (`projection::intervals` follows each through time by code, grade and this).
    pub instance: Seq,
}

fn evidence(seqs: impl IntoIterator<Item = Seq>) -> Vec<Seq> {
    let mut v: Vec<Seq> = seqs.into_iter().collect();
    v.sort_unstable();
    v.dedup();
    v.truncate(FLAG_EVIDENCE_MAX);
    v
}

/// Deposit cover of a project at the point `w`: cash plus letters valid on its date.
pub fn deposit_cover(state: &State, p: &Project, w: When) -> (Fen, Fen) {
    let cash = state.balance_at(&crate::domain::posting::Account::Deposit(p.reg.project.clone()), w);
    let letters = state.letters_of(&p.reg.project).filter(|(_, l)| l.valid_at(w)).map(|(_, l)| l.amount.fen()).sum();
    (cash, letters)
}

/// A project's drawdowns the point `w` sees, each with how much of it the deposits and
/// letters the point sees had made good (oldest first, in record order, as `apply`
/// does).
pub fn drawdowns_at(state: &State, p: &Project, w: When) -> Vec<DrawdownEntry> {
    let id = &p.reg.project;
    if !p.drawdowns.iter().any(|d| w.sees(d.seq, d.date)) {
        return Vec::new(); // nothing to make good: the deposits need not be walked
    }
    let mut cover: Vec<(Seq, Fen)> = state.deposits_of(id).filter(|d| w.sees(d.seq, d.date)).map(|d| (d.seq, d.fen)).collect();
    cover.extend(state.letters_of(id).filter(|(_, l)| l.seen(w)).map(|(_, l)| (l.seq, l.amount.fen())));
    cover.sort_unstable();
    let mut out: Vec<DrawdownEntry> = Vec::new();
    let mut cover = cover.into_iter().peekable();
    let replenish = |out: &mut Vec<DrawdownEntry>, mut fen: Fen| {
        for d in out.iter_mut() {
            let gap = d.fen - d.replenished;
            if gap > 0 && fen > 0 {
                let take = gap.min(fen);
                d.replenished += take;
                fen -= take;
            }
        }
    };
    for d in p.drawdowns.iter().filter(|d| w.sees(d.seq, d.date)) {
        while let Some((_, fen)) = cover.next_if(|(s, _)| *s < d.seq) {
            replenish(&mut out, fen);
        }
        out.push(DrawdownEntry { replenished: 0, ..d.clone() });
    }
    for (_, fen) in cover {
        replenish(&mut out, fen);
    }
    out
}

/// Every open flag of every project at the point `w`, ordered by project then code.
pub fn flags(state: &State, policies: &PolicyBook, calendar: &CalendarBook, w: When) -> Vec<Flag> {
    let mut out = Vec::new();
    for (_, p) in state.projects.iter() {
        project_flags(state, p, policies, calendar, w, &mut out);
    }
    out
}

/// The flags of one project at the point `w` (none before the point sees it registered).
pub fn project_flags(state: &State, p: &Project, policies: &PolicyBook, calendars: &CalendarBook, w: When, out: &mut Vec<Flag>) {
    let reg = &p.reg;
    let as_of = w.date;
    if !p.seen(w) || as_of < reg.contract_date.min(reg.start_date) {
        return;
    }
    let policy = policies.for_project(reg.county, reg.labour_ratio_bp, reg.deposit_rate_bp);
    let calendar = calendars.for_county(reg.county);
    let status = p.status_at(w, as_of);
    let id = &reg.project;
    let flag = |code, grade, gap, count, since, evidence, (detail, detail_zh): (String, String)| Flag { code, grade, project: id.clone(), gap, count, since, evidence, detail, detail_zh, instance: 0 };

    // Wages: what is owed, what is overdue, and whether the account can pay it.
    let mut owed_total: Fen = 0;
    let mut owed_seqs = Vec::new();
    let mut overdue: Fen = 0;
    let mut overdue_workers = std::collections::BTreeSet::new();
    let mut overdue_seqs = Vec::new();
    let mut overdue_since: Option<Date> = None;
    let mut first_owed: Option<Date> = None;
    for (per, h) in state.payrolls_at(id, w) {
        let owed = h.due_total - state.payroll_paid_at(id, per, w);
        if owed <= 0 {
            continue;
        }
        owed_total += owed;
        owed_seqs.push(h.seq);
        first_owed.get_or_insert(per.last_day());
        if h.due_date < as_of {
            overdue += owed;
            overdue_seqs.push(h.seq);
            overdue_since = Some(overdue_since.map_or(h.due_date.add_days(1), |d| d.min(h.due_date.add_days(1))));
            for (wr, l) in state.lines_of(id, per) {
                if l.due - l.paid_at(w) > 0 {
                    overdue_workers.insert(*wr);
                }
            }
        }
    }
    if let Some(since) = overdue_since {
        let n = overdue_workers.len() as u32;
        out.push(flag(FlagCode::WagesOverdue, Grade::Red, overdue, n, since, evidence(overdue_seqs),
            (format!("{n} workers owed {} past their due date", format_fen(overdue)), format!("{n}名工人被欠工资{}，已过支付期限", format_yuan(overdue)))));
    }
    let balance = state.balance_at(&crate::domain::posting::Account::Wage(id.clone()), w);
    if owed_total > balance {
        let gap = owed_total - balance;
        out.push(flag(FlagCode::WageShortfall, Grade::Yellow, gap, 0, first_owed.unwrap_or(as_of), evidence(owed_seqs),
            (format!("wage account holds {} against {} owed", format_fen(balance), format_fen(owed_total)), format!("专户余额{}，应付工资{}", format_yuan(balance), format_yuan(owed_total)))));
    }

    // Separate accounting: cumulative wage share against the labour-cost ratio.
    split_flag(state, p, &policy, w, out);

    if status != ProjectStatus::Completed {
        deposit_flags(state, p, &policy, calendar, w, out);

        // Dedicated wage account opened in time.
        let deadline = reg.contract_date.add_days(i64::from(policy.wage_account_open_days));
        if p.wage_account_at(w).is_none() && as_of > deadline {
            let days = policy.wage_account_open_days;
            out.push(flag(FlagCode::NoWageAccount, Grade::Red, 0, 0, deadline.add_days(1), evidence([p.seq]),
                (format!("no wage account opened by {deadline}, {days} days after the contract"), format!("合同签订后{days}日（{deadline}）前未开设工资专户"))));
        }

        // Contracts of the workers on site.
        let mut missing = Vec::new();
        let mut since: Option<Date> = None;
        for (_, e) in state.enrolments_of(id) {
            if e.on_site(w) && e.contract_at(w).is_none() {
                let span = e.spans_at(w).last().expect("on site");
                missing.push(span.from_seq);
                since = Some(since.map_or(span.from, |s| s.min(span.from)));
            }
        }
        if let Some(since) = since {
            let n = missing.len() as u32;
            out.push(flag(FlagCode::ContractMissing, Grade::Yellow, 0, n, since, evidence(missing),
                (format!("{n} workers on site without a recorded labour contract"), format!("{n}名在场工人未登记劳动合同"))));
        }
    }

    payroll_missing_flag(state, p, &policy, w, out);
    super::reconcile::reconciliation_flags(state, p, &policy, calendar, w, out);
    order_flags(state, p, &policy, w, out);
}

/// Orders to pay of the project unmet at the point (ORDER_UNMET), and those of them at
/// the referral thresholds not referred to the police (REFERRAL_DUE).
fn order_flags(state: &State, p: &Project, policy: &Policy, w: When, out: &mut Vec<Flag>) {
    for o in state.orders_of(&p.reg.project).filter(|o| o.unmet_at(w)) {
        let x = &o.order;
        let since = x.deadline.add_days(1);
        let mut evidence: Vec<Seq> = vec![o.seq];
        evidence.extend(o.resolutions.iter().filter(|(r, s)| w.sees(*s, r.date)).map(|(_, s)| *s));
        out.push(Flag {
            code: FlagCode::OrderUnmet,
            grade: Grade::Red,
            project: p.reg.project.clone(),
            gap: x.amount.fen(),
            count: x.workers,
            since,
            evidence: evidence.clone(),
            instance: o.seq,
            detail: format!("order {} to {} to pay {} to {} workers by {} is not complied with", x.order_no, x.employer, x.amount, x.workers, x.deadline),
            detail_zh: format!("责令{}于{}前向{}名工人支付{}的指令{}未履行", x.employer, x.deadline, x.workers, format_yuan(x.amount.fen()), x.order_no),
        });
        let one = x.largest >= policy.referral_one_worker && !x.largest.is_zero();
        let many = x.workers >= policy.referral_workers && x.amount >= policy.referral_total;
        if (one || many) && o.referral_at(w).is_none() {
            out.push(Flag {
                code: FlagCode::ReferralDue,
                grade: Grade::Red,
                project: p.reg.project.clone(),
                gap: x.amount.fen(),
                count: x.workers,
                since,
                evidence,
                instance: o.seq,
                detail: format!(
                    "order {} unmet with {} owed to {} workers (at most {} to one): at the thresholds for refusing to pay wages (one worker {}, or {} workers {}); refer to the police, after checking the three months",
                    x.order_no, x.amount, x.workers, x.largest, policy.referral_one_worker, policy.referral_workers, policy.referral_total
                ),
                detail_zh: format!(
                    "指令{}未履行，欠{}名工人{}（单人最多{}）：已达拒不支付劳动报酬的标准（单人{}，或{}人合计{}），经核实三个月情况后移送公安",
                    x.order_no,
                    x.workers,
                    format_yuan(x.amount.fen()),
                    format_yuan(x.largest.fen()),
                    format_yuan(policy.referral_one_worker.fen()),
                    policy.referral_workers,
                    format_yuan(policy.referral_total.fen())
                ),
            });
        }
    }
}

/// The deposit project `p` must hold, as the point `w` sees it: at a raised rate while its
/// general contractor was on the credit list on the day the project is dated (a project
/// registered while listed), else by the registration.
pub fn deposit_required(state: &State, policy: &Policy, p: &Project, w: When) -> Fen {
    let listed = state
        .listings
        .range((p.reg.general_contractor.clone(), crate::domain::date::DATE_MIN)..=(p.reg.general_contractor.clone(), p.dated()))
        .any(|(_, l)| l.in_force_on(p.dated(), w));
    if listed {
        policy.deposit_required_listed(&p.reg).fen()
    } else {
        policy.deposit_required_for(&p.reg).fen()
    }
}

fn split_flag(state: &State, p: &Project, policy: &Policy, w: When, out: &mut Vec<Flag>) {
    let (mut total, mut share) = (0i64, 0i64);
    let mut since: Option<Date> = None;
    let mut seqs = Vec::new();
    for e in state.progress_of(&p.reg.project).filter(|e| w.sees(e.seq, e.date)) {
        total += e.total;
        share += e.share;
        let required = crate::domain::money::Money::sum_unbounded(total).mul_bp_ceil(policy.labour_ratio_bp).fen();
        if share < required {
            since.get_or_insert(e.date);
            let own = crate::domain::money::Money::sum_unbounded(e.total).mul_bp_ceil(policy.labour_ratio_bp).fen();
            if e.share < own {
                seqs.push(e.seq);
            }
        } else {
            since = None;
            seqs.clear();
        }
    }
    if let Some(since) = since {
        let ratio = format!("{}.{:02}", policy.labour_ratio_bp / 100, policy.labour_ratio_bp % 100);
        let required = crate::domain::money::Money::sum_unbounded(total).mul_bp_ceil(policy.labour_ratio_bp).fen();
        out.push(Flag {
            code: FlagCode::SplitBelowRatio,
            grade: Grade::Yellow,
            project: p.reg.project.clone(),
            gap: required - share,
            count: seqs.len() as u32,
            since,
            evidence: evidence(seqs),
            instance: 0,
            detail: format!("wage share {} of progress payments {} is below {ratio}%", format_fen(share), format_fen(total)),
            detail_zh: format!("工程款{}中拨入专户的人工费{}，低于{ratio}%", format_yuan(total), format_yuan(share)),
        });
    }
}

fn deposit_flags(state: &State, p: &Project, policy: &Policy, calendar: &Calendar, w: When, out: &mut Vec<Flag>) {
    let reg = &p.reg;
    let id = &reg.project;
    let as_of = w.date;
    let required = deposit_required(state, policy, p, w);
    let (cash, letters) = deposit_cover(state, p, w);
    let cover = cash + letters;

    // Drawdowns still within their replenishment window are not yet a shortfall; those
    // past it are DRAWDOWN_NOT_REPLENISHED.
    let mut in_window: Fen = 0;
    let mut lapsed_drawdowns: Vec<(Date, Seq)> = Vec::new();
    for d in &drawdowns_at(state, p, w) {
        let gap = d.fen - d.replenished;
        if gap <= 0 {
            continue;
        }
        let deadline = calendar.add_working_days(d.date, policy.replenish_working_days);
        if as_of > deadline {
            lapsed_drawdowns.push((deadline.add_days(1), d.seq));
            out.push(Flag {
                code: FlagCode::DrawdownNotReplenished,
                grade: Grade::Red,
                project: id.clone(),
                gap,
                count: 1,
                since: deadline.add_days(1),
                evidence: vec![d.seq],
                instance: d.seq,
                detail: format!(
                    "drawdown of {} on {} not made good by {deadline} ({} working days){}",
                    format_fen(d.fen),
                    d.date,
                    policy.replenish_working_days,
                    coverage_note(calendar, deadline).0
                ),
                detail_zh: format!(
                    "{}动用的保证金{}未在{}个工作日内（{deadline}前）补足{}",
                    d.date,
                    format_yuan(d.fen),
                    policy.replenish_working_days,
                    coverage_note(calendar, deadline).1
                ),
            });
        } else {
            in_window += gap;
        }
    }

    let lodge_from = reg.permit_date.unwrap_or(reg.contract_date);
    let deadline = calendar.add_working_days(lodge_from, policy.deposit_lodge_working_days);
    let shortfall = required - cover - in_window;
    if required > 0 && as_of > deadline && shortfall > 0 {
        // Since the latest event that broke the cover: the lodging deadline, a letter's
        // lapse, or a drawdown's replenishment deadline.
        let mut since = deadline.add_days(1);
        let mut seqs = vec![p.seq];
        for (date, seq) in &lapsed_drawdowns {
            since = since.max(*date);
            seqs.push(*seq);
        }
        for (_, l) in state.letters_of(id).filter(|(_, l)| l.seen(w)) {
            if l.valid_to < as_of && l.valid_to.add_days(1) > since {
                since = l.valid_to.add_days(1);
                seqs.push(l.seq);
            }
        }
        out.push(Flag {
            code: FlagCode::DepositShortfall,
            grade: Grade::Red,
            project: id.clone(),
            gap: shortfall,
            count: 0,
            since,
            evidence: evidence(seqs.into_iter().chain(state.deposits_of(id).filter(|d| w.sees(d.seq, d.date)).map(|d| d.seq))),
            instance: 0,
            detail: format!(
                "deposit cover {} (cash {}, letters {}) below the required {}{}",
                format_fen(cover),
                format_fen(cash),
                format_fen(letters),
                format_fen(required),
                coverage_note(calendar, deadline).0
            ),
            detail_zh: format!(
                "保证金覆盖{}（现金{}，银行保函{}），低于应缴的{}{}",
                format_yuan(cover),
                format_yuan(cash),
                format_yuan(letters),
                format_yuan(required),
                coverage_note(calendar, deadline).1
            ),
        });
    }

    // Letters the cover depends on: lapsing within the warning window before the
    // planned end (yellow), or lapsed and not replaced (red).
    for (n, l) in state.letters_of(id).filter(|(_, l)| l.seen(w)) {
        if l.cancelled_at(w).is_some() || l.valid_to >= reg.planned_end || l.valid_from > as_of {
            continue;
        }
        let days_left = as_of.days_until(l.valid_to);
        if l.valid_at(w) && days_left <= i64::from(policy.letter_warn_days) && cover - l.amount.fen() < required {
            out.push(Flag {
                code: FlagCode::LetterExpiring,
                grade: Grade::Yellow,
                project: id.clone(),
                gap: required - (cover - l.amount.fen()),
                count: 1,
                since: l.valid_to.add_days(-i64::from(policy.letter_warn_days)),
                evidence: vec![l.seq],
                instance: l.seq,
                detail: format!("guarantee letter {n} lapses on {}, before the planned end {}", l.valid_to, reg.planned_end),
                detail_zh: format!("银行保函{n}于{}到期，早于计划竣工日{}", l.valid_to, reg.planned_end),
            });
        } else if l.valid_to < as_of && cover < required {
            out.push(Flag {
                code: FlagCode::LetterExpiring,
                grade: Grade::Red,
                project: id.clone(),
                gap: required - cover,
                count: 1,
                since: l.valid_to.add_days(1),
                evidence: vec![l.seq],
                instance: l.seq,
                detail: format!("guarantee letter {n} lapsed on {} and the cover was not restored", l.valid_to),
                detail_zh: format!("银行保函{n}已于{}到期，保证金覆盖未恢复", l.valid_to),
            });
        }
    }
}

/// Says so when a working-day deadline fell in a year the calendar does not cover:
/// there only weekends are known, and the county should load that year's holidays.
/// In English and in Chinese.
fn coverage_note(calendar: &Calendar, deadline: Date) -> (String, String) {
    if calendar.covers(deadline.year()) {
        (String::new(), String::new())
    } else {
        let y = deadline.year();
        (format!(" (the calendar does not cover {y}: counted without its public holidays)"), format!("（日历未载{y}年节假日，仅按周末计算）"))
    }
}

fn payroll_missing_flag(state: &State, p: &Project, policy: &Policy, w: When, out: &mut Vec<Flag>) {
    let as_of = w.date;
    let reg = &p.reg;
    let id = &reg.project;
    let mut per = reg.start_date.period();
    let mut missing = Vec::new();
    loop {
        let deadline = per.next().last_day().add_days(i64::from(policy.payroll_grace_days));
        if as_of <= deadline {
            break;
        }
        let (first, last) = (per.first_day(), per.last_day());
        let active = p.status_at(w, first) == ProjectStatus::Active || p.status_at(w, last) == ProjectStatus::Active;
        let completed_before = p.status_changes.iter().any(|c| c.status == ProjectStatus::Completed && c.date < first && w.sees(c.seq, c.date));
        if completed_before {
            break;
        }
        if active
            && !state.payrolls.get(&(id.clone(), per)).is_some_and(|h| w.sees(h.seq, h.dated))
            && state.enrolments_of(id).any(|(_, e)| e.on_site_between(w, first, last))
        {
            missing.push((per, deadline));
        }
        per = per.next();
    }
    if let Some((_, first_deadline)) = missing.first() {
        let months: Vec<String> = missing.iter().map(|(m, _)| m.to_string()).collect();
        out.push(Flag {
            code: FlagCode::PayrollMissing,
            grade: Grade::Red,
            project: id.clone(),
            gap: 0,
            count: missing.len() as u32,
            since: first_deadline.add_days(1),
            evidence: vec![p.seq],
            instance: 0,
            detail: format!("no payroll for {} with workers on site", months.join(", ")),
            detail_zh: format!("{}有工人在场，未报送工资表", months.join("、")),
        });
    }
}
