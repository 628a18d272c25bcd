//! The rules: `decide(state, command) -> event | rejection`.
//!
//! Every business rule of the ledger that can refuse a command lives here, and nothing
//! here changes state or reads the clock. What already happened at a bank and breaks a
//! rule (a split below the ratio, a late payment) is recorded, not refused: the county
//! must see it, through `crate::projection::flags`.
//!
//! `decide_batch` makes a batch atomic: each command is checked against its principal's
//! authority (`authorize`) and decided against the state left by the ones before it,
//! and one rejection rolls the whole batch back. It runs on the writer thread, so what
//! it checks is exactly the state the batch is recorded on.
//!
//! External numbers (payment, letter, order, payroll, account numbers) are kept unique
//! by one check here, over what every command kind declares in
//! `crate::domain::numbers`; `State::apply` records them through the same declaration.

pub mod authorize;
mod casework;

use std::collections::BTreeSet;

use crate::domain::command::*;
use crate::domain::ids::ProjectId;
use crate::domain::money::{Fen, Money};
use crate::domain::policy::BP_MAX;
use crate::domain::principal::Principal;
use crate::domain::rejection::{BatchRejection, Rejection};
use crate::limits::{BATCH_COMMANDS_MAX, DRAWDOWN_PAYEES_MAX, PAYROLL_LINES_MAX, TOTAL_FEN_MAX};
use crate::projection::fingerprints::fingerprint;
use crate::projection::state::{Project, Seq, State, Txn};

type Decision = Result<Event, Rejection>;

fn project<'a>(state: &'a State, id: &ProjectId) -> Result<&'a Project, Rejection> {
    state.projects.get(id).ok_or_else(|| Rejection::UnknownProject(id.clone()))
}

/// A project that may still receive money and registrations: known and not completed.
fn open_project<'a>(state: &'a State, id: &ProjectId) -> Result<&'a Project, Rejection> {
    let p = project(state, id)?;
    if p.status == ProjectStatus::Completed {
        return Err(Rejection::ProjectCompleted(id.clone()));
    }
    Ok(p)
}

/// The worker's enrolment on a known project, if they are on it now.
fn current_enrolment<'a>(state: &'a State, project_id: &ProjectId, worker: crate::domain::ids::WorkerRef) -> Result<&'a crate::projection::state::Enrolment, Rejection> {
    project(state, project_id)?;
    state
        .enrolments
        .get(&(project_id.clone(), worker))
        .filter(|e| e.is_current())
        .ok_or(Rejection::WorkerNotEnrolled { project: project_id.clone(), worker })
}

/// The command's external number, if it declares one, is not used yet in its scope
/// (`fp`: its fingerprint, if the caller took it already).
fn unique_number(state: &State, command: &Command, fp: Option<u128>) -> Result<(), Rejection> {
    if let Some(n) = command.number() {
        if state.numbers.contains(fp.unwrap_or_else(|| fingerprint(&n))) {
            return Err(Rejection::Duplicate(n.to_duplicate()));
        }
    }
    Ok(())
}

fn money(fen: Fen) -> Money {
    Money::sum_unbounded(fen.max(0))
}

/// A running total stays within the bound of the ledger (10^3 times the largest amount,
/// so that any sum of totals remains far from `i64::MAX`).
fn bounded_total(total: Fen, add: Fen) -> Result<(), Rejection> {
    match total.checked_add(add) {
        Some(t) if t <= TOTAL_FEN_MAX => Ok(()),
        _ => Err(Rejection::AmountOverflow),
    }
}

/// Decides one command against `state`.
///
/// # Errors
/// The `Rejection` of the first rule the command breaks.
pub fn decide(state: &State, command: &Command) -> Decision {
    decide_numbered(state, command, command.number().map(|n| fingerprint(&n)))
}

/// `decide`, given the fingerprint of the command's external number.
fn decide_numbered(state: &State, command: &Command, fp: Option<u128>) -> Decision {
    no_personal_number(command)?;
    unique_number(state, command, fp)?;
    match command {
        Command::RegisterProject(c) => {
            if state.projects.contains(&c.project) {
                return Err(Rejection::ProjectExists(c.project.clone()));
            }
            if c.contract_price.is_zero() {
                return Err(Rejection::invalid("AMOUNT_NOT_POSITIVE", "contract_price", "must be greater than zero"));
            }
            if c.planned_end < c.start_date {
                return Err(Rejection::DateOrder { what: "planned end", date: c.planned_end, before: c.start_date });
            }
            for (field, bp) in [("labour_ratio_bp", c.labour_ratio_bp), ("deposit_rate_bp", c.deposit_rate_bp)] {
                if let Some(v) = bp {
                    if v > BP_MAX {
                        return Err(Rejection::invalid("INVALID_POLICY_OVERRIDE", field, format!("{v} basis points is above 100%")));
                    }
                }
            }
            Ok(Event::ProjectRegistered(c.clone()))
        }
        Command::ChangeProjectStatus(c) => {
            let p = project(state, &c.project)?;
            let allowed = matches!(
                (p.status, c.status),
                (ProjectStatus::Active, ProjectStatus::Suspended)
                    | (ProjectStatus::Suspended, ProjectStatus::Active)
                    | (ProjectStatus::Active | ProjectStatus::Suspended, ProjectStatus::Completed)
            );
            if !allowed {
                return Err(Rejection::InvalidStatusTransition { project: c.project.clone(), from: p.status, to: c.status });
            }
            if let Some(last) = p.status_changes.last() {
                if c.date < last.date {
                    return Err(Rejection::DateOrder { what: "status change", date: c.date, before: last.date });
                }
            }
            Ok(Event::ProjectStatusChanged(c.clone()))
        }
        Command::OpenWageAccount(c) => {
            let p = open_project(state, &c.project)?;
            if p.wage_account_open() {
                return Err(Rejection::WageAccountExists(c.project.clone()));
            }
            Ok(Event::WageAccountOpened(c.clone()))
        }
        Command::CloseWageAccount(c) => {
            let p = project(state, &c.project)?;
            if !p.wage_account_open() {
                return Err(Rejection::NoWageAccount(c.project.clone()));
            }
            if p.status != ProjectStatus::Completed {
                return Err(Rejection::ProjectNotCompleted(c.project.clone()));
            }
            let owed = state.owed_total(&c.project);
            if owed > 0 {
                return Err(Rejection::ArrearsOutstanding { project: c.project.clone(), amount: money(owed) });
            }
            let residual = money(state.wage_balance(&c.project));
            Ok(Event::WageAccountClosed(WageAccountClosed { project: c.project.clone(), date: c.date, residual }))
        }
        Command::EnrolWorker(c) => {
            let p = project(state, &c.project)?;
            if p.status != ProjectStatus::Active {
                return Err(Rejection::ProjectNotActive(c.project.clone(), p.status));
            }
            let existing = state.enrolments.get(&(c.project.clone(), c.worker));
            if let Some(e) = existing {
                if e.is_current() {
                    return Err(Rejection::WorkerAlreadyEnrolled { project: c.project.clone(), worker: c.worker });
                }
                let last_exit = e.spans.last().and_then(|s| s.to).expect("not current means exited");
                if c.date < last_exit {
                    return Err(Rejection::DateOrder { what: "re-enrolment", date: c.date, before: last_exit });
                }
            }
            if let Some(holder) = state.cards.get(&(c.project.clone(), c.card)) {
                if *holder != c.worker {
                    return Err(Rejection::CardInUse { project: c.project.clone(), card: c.card_masked.to_string() });
                }
            }
            Ok(Event::WorkerEnrolled(c.clone()))
        }
        Command::RecordContract(c) => {
            let e = current_enrolment(state, &c.project, c.worker)?;
            if e.contract.is_some() {
                return Err(Rejection::ContractExists { project: c.project.clone(), worker: c.worker });
            }
            Ok(Event::ContractRecorded(c.clone()))
        }
        Command::ExitWorker(c) => {
            let e = current_enrolment(state, &c.project, c.worker)?;
            let from = e.spans.last().expect("current").from;
            if c.date < from {
                return Err(Rejection::DateOrder { what: "exit", date: c.date, before: from });
            }
            Ok(Event::WorkerExited(c.clone()))
        }
        Command::SubmitPayroll(c) => {
            project(state, &c.project)?;
            if c.lines.is_empty() {
                return Err(Rejection::invalid("EMPTY_PAYROLL", "lines", "a payroll needs at least one line"));
            }
            if c.lines.len() > PAYROLL_LINES_MAX {
                return Err(Rejection::invalid("LIMIT_EXCEEDED", "lines", format!("{} lines; the limit is {PAYROLL_LINES_MAX}", c.lines.len())));
            }
            if c.due_date < c.period.first_day() {
                return Err(Rejection::DateOrder { what: "payroll due date", date: c.due_date, before: c.period.first_day() });
            }
            if let Some(on) = c.submitted_on.filter(|on| *on < c.period.first_day()) {
                return Err(Rejection::DateOrder { what: "payroll submission", date: on, before: c.period.first_day() });
            }
            let mut seen = BTreeSet::new();
            let mut total: Fen = 0;
            for l in &c.lines {
                if !seen.insert(l.worker) {
                    return Err(Rejection::DuplicatePayrollLine { period: c.period, worker: l.worker });
                }
                if l.days > 31 {
                    return Err(Rejection::invalid("INVALID_DAYS", "days", format!("{} days in one month", l.days)));
                }
                if l.amount_due.is_zero() {
                    return Err(Rejection::invalid("AMOUNT_NOT_POSITIVE", "amount_due", "must be greater than zero"));
                }
                if !state.enrolments.contains(&(c.project.clone(), l.worker)) {
                    return Err(Rejection::PayeeNotEnrolled { project: c.project.clone(), worker: l.worker });
                }
                bounded_total(total, l.amount_due.fen())?;
                total += l.amount_due.fen();
            }
            Ok(Event::PayrollSubmitted(c.clone()))
        }
        Command::PayDeposit(c) => {
            open_project(state, &c.project)?;
            positive(c.amount, "amount")?;
            bounded_total(state.deposit_cash(&c.project), c.amount.fen())?;
            Ok(Event::DepositPaid(c.clone()))
        }
        Command::IssueGuaranteeLetter(c) => {
            open_project(state, &c.project)?;
            positive(c.amount, "amount")?;
            if c.valid_to < c.valid_from {
                return Err(Rejection::DateOrder { what: "letter expiry", date: c.valid_to, before: c.valid_from });
            }
            if let Some(issued) = c.issued_on.filter(|on| *on > c.valid_from) {
                return Err(Rejection::DateOrder { what: "letter's first valid day", date: c.valid_from, before: issued });
            }
            Ok(Event::GuaranteeLetterIssued(c.clone()))
        }
        Command::CancelGuaranteeLetter(c) => {
            project(state, &c.project)?;
            let l = state.letters.get(&c.letter_no).filter(|l| l.project == c.project);
            let l = l.ok_or_else(|| Rejection::UnknownLetter(c.letter_no.clone()))?;
            if l.cancelled.is_some() {
                return Err(Rejection::LetterCancelled(c.letter_no.clone()));
            }
            Ok(Event::GuaranteeLetterCancelled(c.clone()))
        }
        Command::MakeProgressPayment(c) => {
            let p = project(state, &c.project)?;
            positive(c.total, "total")?;
            if c.wage_share > c.total {
                return Err(Rejection::invalid(
                    "WAGE_SHARE_EXCEEDS_TOTAL",
                    "wage_share",
                    format!("wage share {} is more than the payment {}", c.wage_share, c.total),
                ));
            }
            if !c.wage_share.is_zero() && !p.wage_account_open() {
                return Err(Rejection::NoWageAccount(c.project.clone()));
            }
            bounded_total(p.progress_total, c.total.fen())?;
            // Every inflow of the wage account is bounded, so that its balance (and a
            // closing residual recorded from it) stays within the ledger's bound.
            bounded_total(state.wage_balance(&c.project), c.wage_share.fen())?;
            Ok(Event::ProgressPaymentMade(c.clone()))
        }
        Command::TopUpWageAccount(c) => {
            let p = project(state, &c.project)?;
            positive(c.amount, "amount")?;
            if !p.wage_account_open() {
                return Err(Rejection::NoWageAccount(c.project.clone()));
            }
            bounded_total(state.wage_balance(&c.project), c.amount.fen())?;
            Ok(Event::WageAccountToppedUp(c.clone()))
        }
        Command::PayWage(c) => {
            let p = project(state, &c.project)?;
            positive(c.amount, "amount")?;
            if !p.wage_account_open() {
                return Err(Rejection::NoWageAccount(c.project.clone()));
            }
            check_payee(state, &c.project, c.worker, c.card)?;
            let balance = state.wage_balance(&c.project);
            if c.amount.fen() > balance {
                return Err(Rejection::InsufficientWageBalance { balance: money(balance), amount: c.amount });
            }
            if let Some(per) = c.period {
                check_line(state, &c.project, c.worker, per, c.amount.fen())?;
            }
            Ok(Event::WagePaid(c.clone()))
        }
        Command::DrawDeposit(c) => {
            project(state, &c.project)?;
            if let Some(ordered) = c.order_date.filter(|on| *on > c.date) {
                return Err(Rejection::DateOrder { what: "drawdown payment", date: c.date, before: ordered });
            }
            if c.payees.is_empty() {
                return Err(Rejection::invalid("EMPTY_DRAWDOWN", "payees", "a drawdown pays at least one worker"));
            }
            if c.payees.len() > DRAWDOWN_PAYEES_MAX {
                return Err(Rejection::invalid("LIMIT_EXCEEDED", "payees", format!("{} payees; the limit is {DRAWDOWN_PAYEES_MAX}", c.payees.len())));
            }
            let mut total: Fen = 0;
            let mut per_line: std::collections::BTreeMap<_, Fen> = Default::default();
            for payee in &c.payees {
                positive(payee.amount, "amount")?;
                check_payee(state, &c.project, payee.worker, payee.card)?;
                if let Some(per) = payee.period {
                    let sum = per_line.entry((payee.worker, per)).or_insert(0);
                    *sum += payee.amount.fen();
                    check_line(state, &c.project, payee.worker, per, *sum)?;
                }
                total += payee.amount.fen();
            }
            let cash = state.deposit_cash(&c.project);
            if total > cash {
                return Err(Rejection::DrawdownExceedsDeposit { cash: money(cash), amount: money(total) });
            }
            Ok(Event::DepositDrawn(c.clone()))
        }
        Command::ReleaseDeposit(c) => {
            let p = project(state, &c.project)?;
            if p.status != ProjectStatus::Completed {
                return Err(Rejection::ProjectNotCompleted(c.project.clone()));
            }
            let owed = state.owed_total(&c.project);
            if owed > 0 {
                return Err(Rejection::ArrearsOutstanding { project: c.project.clone(), amount: money(owed) });
            }
            let cash = state.deposit_cash(&c.project);
            if cash == 0 {
                return Err(Rejection::DepositEmpty(c.project.clone()));
            }
            Ok(Event::DepositReleased(DepositReleased { project: c.project.clone(), date: c.date, amount: money(cash) }))
        }
        Command::AttestBalance(c) => {
            // A statement is a fact of the bank's books: recorded whatever it says (a
            // difference is flagged, BALANCE_MISMATCH), once per account and day.
            let p = project(state, &c.project)?;
            if c.account == StatementAccount::Wage && p.wage_account.is_none() {
                return Err(Rejection::NoWageAccount(c.project.clone()));
            }
            if state.statements.contains(&(c.project.clone(), c.account, c.date)) {
                return Err(Rejection::StatementExists { project: c.project.clone(), account: c.account, date: c.date });
            }
            Ok(Event::BalanceAttested(c.clone()))
        }
        Command::OpenCase(c) => casework::open(state, c),
        Command::DecideCase(c) => casework::decide_case(state, c),
        Command::ExtendCase(c) => casework::extend(state, c),
        Command::CloseCase(c) => casework::close(state, c),
        Command::IssueOrder(c) => casework::issue_order(state, c),
        Command::ResolveOrder(c) => casework::resolve_order(state, c),
        Command::ReferOrder(c) => casework::refer(state, c),
        Command::ListEmployer(c) => casework::list(state, c),
        Command::DelistEmployer(c) => casework::delist(state, c),
        Command::RecordInspection(c) => casework::inspect(state, c),
        Command::RecordCards(c) => casework::cards(c),
        Command::RecordReferralOutcome(c) => casework::referral_outcome(state, c),
    }
}

fn positive(m: Money, field: &'static str) -> Result<(), Rejection> {
    if m.is_zero() {
        return Err(Rejection::invalid("AMOUNT_NOT_POSITIVE", field, "must be greater than zero"));
    }
    Ok(())
}

/// Money leaves only to this project's workers' own cards (条例 art. 26, 31; 53号文).
fn check_payee(state: &State, project: &ProjectId, worker: crate::domain::ids::WorkerRef, card: crate::domain::ids::CardRef) -> Result<(), Rejection> {
    let e = state
        .enrolments
        .get(&(project.clone(), worker))
        .ok_or(Rejection::PayeeNotEnrolled { project: project.clone(), worker })?;
    if e.card != card {
        return Err(Rejection::CardNotBound { worker, card: card.to_string() });
    }
    Ok(())
}

fn check_line(state: &State, project: &ProjectId, worker: crate::domain::ids::WorkerRef, period: crate::domain::date::Period, fen: Fen) -> Result<(), Rejection> {
    let line = state
        .lines
        .get(&(project.clone(), period, worker))
        .ok_or(Rejection::UnknownPayrollLine { worker, period })?;
    if fen > line.owed() {
        return Err(Rejection::ExceedsPayrollOwed { worker, period, owed: money(line.owed()), amount: money(fen) });
    }
    Ok(())
}

/// A batch decided and applied to the state, not yet kept: `commit` keeps it, dropping
/// it takes it back out of the state (the writer drops it when the batch's records turn
/// out too large, or when the log refuses the group).
pub struct DecidedBatch<'s> {
    txn: Txn<'s>,
    pub events: Vec<Event>,
}

impl DecidedBatch<'_> {
    /// Keeps the batch's effects on the state and returns its events.
    pub fn commit(self) -> Vec<Event> {
        self.txn.commit();
        self.events
    }
}

/// A personal number in clear (an ID, a card, a mobile number) never enters the log:
/// every free-text field of a command is looked at (`Command::free_text`). The refusal
/// names the field and the kind of number, never the text.
fn no_personal_number(command: &Command) -> Result<(), Rejection> {
    for (field, text, cards_too) in command.free_text().into_iter().flatten() {
        if let Some(kind) = crate::domain::ids::personal_number_in(text) {
            if cards_too || kind != "a bank card number" {
                return Err(personal_number(field, kind));
            }
        }
    }
    Ok(())
}

fn personal_number(field: &'static str, kind: &str) -> Rejection {
    Rejection::invalid(
        "PERSONAL_NUMBER_IN_TEXT",
        field,
        format!("it holds what looks like {kind}: personal numbers never enter the ledger's log in clear (send a worker's ID and card in their own fields, which are committed, and keep them out of free text)"),
    )
}

/// The request id is recorded with every record of the request: like a command's free
/// text, it must hold no personal number.
///
/// # Errors
/// `PERSONAL_NUMBER_IN_TEXT` for the batch as a whole.
pub fn check_request_id(request_id: &crate::domain::ids::RequestId) -> Result<(), BatchRejection> {
    match crate::domain::ids::personal_number_in(request_id.as_str()) {
        Some(kind) => Err(BatchRejection { index: None, rejection: personal_number("request_id", kind) }),
        None => Ok(()),
    }
}

/// Decides and applies a whole batch atomically for `who`, numbering its events from
/// `first_seq`. Each command is first checked against the principal's authority over
/// the project, account or letter it names (`authorize::may_post`), then decided, both
/// against the state left by the commands before it.
///
/// # Errors
/// `BatchRejection` with the index of the first rejected command (`None` if the batch
/// as a whole was refused); the state is then exactly as before.
pub fn decide_batch<'s>(state: &'s mut State, who: &Principal, commands: &[Command], first_seq: Seq) -> Result<DecidedBatch<'s>, BatchRejection> {
    decide_prepared(state, who, commands, &fingerprints(commands), first_seq)
}

/// The fingerprint of each command's external number (`None` for a kind without one).
pub fn fingerprints(commands: &[Command]) -> Vec<Option<u128>> {
    commands.iter().map(|c| c.number().map(|n| fingerprint(&n))).collect()
}

/// `decide_batch`, given `numbers`, the commands' `fingerprints` (taken by the
/// submitting thread, so that the writer does not).
///
/// # Errors
/// As `decide_batch`.
///
/// # Panics
/// If `numbers` is not one per command.
pub fn decide_prepared<'s>(state: &'s mut State, who: &Principal, commands: &[Command], numbers: &[Option<u128>], first_seq: Seq) -> Result<DecidedBatch<'s>, BatchRejection> {
    assert_eq!(numbers.len(), commands.len(), "one fingerprint (or none) per command");
    if commands.is_empty() {
        return Err(BatchRejection { index: None, rejection: Rejection::EmptyBatch });
    }
    if commands.len() > BATCH_COMMANDS_MAX {
        return Err(BatchRejection {
            index: None,
            rejection: Rejection::BatchTooLarge { count: commands.len(), max: BATCH_COMMANDS_MAX },
        });
    }
    let mut txn = state.txn();
    let mut events = Vec::with_capacity(commands.len());
    for (i, cmd) in commands.iter().enumerate() {
        // Each fingerprint is taken once: the check and the apply share it when the
        // event carries the command's number (every numbered kind does).
        let number = cmd.number();
        let fp = numbers[i];
        let decided = authorize::may_post(who, &txn, cmd).and_then(|()| decide_numbered(&txn, cmd, fp));
        match decided {
            Ok(ev) => {
                let seq = first_seq + i as u64;
                match ev.number() {
                    n if n == number => txn.apply_decided(&ev, seq, fp),
                    _ => txn.apply(&ev, seq),
                }
                events.push(ev);
            }
            // Dropping `txn` takes the batch back out of the state.
            Err(rejection) => return Err(BatchRejection { index: Some(i), rejection }),
        }
    }
    Ok(DecidedBatch { txn, events })
}
