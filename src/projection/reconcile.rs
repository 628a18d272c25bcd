//! Reconciliation with the banks' own books (issue 16).
//!
//! The ledger's balances are what banks posted; the money itself sits in accounts at the
//! banks. A bank attests an account's closing balance per business day
//! (`AttestBalance`); the ledger compares it with its own balance of that account as of
//! that day, counting every record the point sees, so a posting recorded later but dated
//! on or before the statement's day takes part in the comparison (it can open or clear a
//! difference). Two flags follow, both computed, never stored:
//! - `BALANCE_MISMATCH` (red): the latest statement the point sees differs from the
//!   ledger's balance on its day: money moved that nobody posted (or a posting that never
//!   happened at the bank). Since the first statement of the run of differing ones that
//!   ends with it; the last day they agreed is in the detail.
//! - `STATEMENT_MISSING` (yellow): an account a bank has attested before, still in use,
//!   with no statement for more than `statement_working_days` working days.

use serde::{Deserialize, Serialize};

use crate::domain::command::StatementAccount;
use crate::domain::date::{Calendar, Date};
use crate::domain::money::{format_fen, format_yuan, Fen};
use crate::domain::policy::Policy;
use crate::domain::posting::Account;

use super::flags::{Flag, FlagCode, Grade};
use super::state::{Project, Seq, State};
use super::when::When;

/// How one account stands against its bank's statements at a point.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountReconciliation {
    pub account: StatementAccount,
    /// The bank of the latest statement.
    pub bank: String,
    /// The latest statement's day, the bank's closing balance and the ledger's balance
    /// that day.
    pub date: Date,
    pub bank_balance: Fen,
    pub ledger_balance: Fen,
    /// The latest day a statement agreed with the ledger, if any.
    pub last_agreed: Option<Date>,
    /// The first day of the run of differing statements that ends with the latest.
    pub differs_since: Option<Date>,
    /// The records of that run (or of the latest statement).
    pub evidence: Vec<Seq>,
    /// No statement for more than the policy's working days after `date`.
    pub late_since: Option<Date>,
}

impl AccountReconciliation {
    pub fn agrees(&self) -> bool {
        self.differs_since.is_none()
    }
}

fn ledger_account(p: &Project, account: StatementAccount) -> Account {
    match account {
        StatementAccount::Wage => Account::Wage(p.reg.project.clone()),
        StatementAccount::Deposit => Account::Deposit(p.reg.project.clone()),
    }
}

/// One account's reconciliation at the point `w`, if a bank has attested it by then.
pub fn account_reconciliation(state: &State, p: &Project, account: StatementAccount, policy: &Policy, calendar: &Calendar, w: When) -> Option<AccountReconciliation> {
    let acct = ledger_account(p, account);
    let seen: Vec<(Date, &super::state::Statement)> = state.statements_of(&p.reg.project, account).filter(|(d, s)| w.sees(s.seq, *d)).collect();
    let (date, latest) = *seen.last()?;
    let ledger_on = |d: Date| state.balance_at(&acct, When { seq: w.seq, date: d });
    let mut last_agreed = None;
    let mut run: Vec<(Date, Seq)> = Vec::new();
    for (d, s) in seen.iter().rev() {
        if ledger_on(*d) == s.closing {
            last_agreed = Some(*d);
            break;
        }
        run.push((*d, s.seq));
    }
    let still_used = match account {
        StatementAccount::Wage => p.wage_account_at(w).is_some_and(|(_, closed)| !closed),
        StatementAccount::Deposit => p.released.as_ref().is_none_or(|r| !w.sees(r.seq, r.date)),
    };
    let deadline = calendar.add_working_days(date, policy.statement_working_days);
    Some(AccountReconciliation {
        account,
        bank: latest.bank.to_string(),
        date,
        bank_balance: latest.closing,
        ledger_balance: ledger_on(date),
        last_agreed,
        differs_since: run.last().map(|(d, _)| *d),
        evidence: if run.is_empty() { vec![latest.seq] } else { run.iter().rev().map(|(_, s)| *s).collect() },
        late_since: (still_used && w.date > deadline).then(|| deadline.add_days(1)),
    })
}

/// The reconciliation flags of one project at the point `w`.
pub fn reconciliation_flags(state: &State, p: &Project, policy: &Policy, calendar: &Calendar, w: When, out: &mut Vec<Flag>) {
    for account in [StatementAccount::Wage, StatementAccount::Deposit] {
        let Some(r) = account_reconciliation(state, p, account, policy, calendar, w) else { continue };
        let instance = match account {
            StatementAccount::Wage => 1,
            StatementAccount::Deposit => 2,
        };
        let (name, name_zh) = match account {
            StatementAccount::Wage => ("wage account", "工资专户"),
            StatementAccount::Deposit => ("deposit account", "保证金账户"),
        };
        if let Some(since) = r.differs_since {
            let diff = r.ledger_balance - r.bank_balance;
            let mut evidence = r.evidence.clone();
            evidence.truncate(crate::limits::FLAG_EVIDENCE_MAX);
            out.push(Flag {
                code: FlagCode::BalanceMismatch,
                grade: Grade::Red,
                project: p.reg.project.clone(),
                gap: diff.abs(),
                count: r.evidence.len() as u32,
                since,
                evidence,
                instance,
                detail: format!(
                    "bank {} states the {name} held {} at the close of {}; the ledger shows {} (the ledger {} by {}); last agreed {}",
                    r.bank,
                    format_fen(r.bank_balance),
                    r.date,
                    format_fen(r.ledger_balance),
                    if diff > 0 { "is higher" } else { "is lower" },
                    format_fen(diff.abs()),
                    r.last_agreed.map_or("never".to_owned(), |d| d.to_string()),
                ),
                detail_zh: format!(
                    "银行{}对账单载{}于{}日终余额{}，账本为{}（账本{}{}）；{}",
                    r.bank,
                    name_zh,
                    r.date,
                    format_yuan(r.bank_balance),
                    format_yuan(r.ledger_balance),
                    if diff > 0 { "多" } else { "少" },
                    format_yuan(diff.abs()),
                    r.last_agreed.map_or("从未相符".to_owned(), |d| format!("上次相符于{d}")),
                ),
            });
        }
        if let Some(since) = r.late_since {
            out.push(Flag {
                code: FlagCode::StatementMissing,
                grade: Grade::Yellow,
                project: p.reg.project.clone(),
                gap: 0,
                count: 0,
                since,
                evidence: vec![*r.evidence.last().expect("at least the latest statement")],
                instance,
                detail: format!("no statement of the {name} from bank {} since {} ({} working days allowed)", r.bank, r.date, policy.statement_working_days),
                detail_zh: format!("银行{}自{}起未报送{}对账单（限{}个工作日）", r.bank, r.date, name_zh, policy.statement_working_days),
            });
        }
    }
}
