//! Builders shared by the tests: commands with sensible defaults, and a `World` that
//! decides and applies commands the way the writer does.

#![allow(dead_code)]

use anxin::decide::decide_batch;
use anxin::domain::command::*;
use anxin::domain::date::{Date, Period};
use anxin::domain::ids::*;
use anxin::domain::money::Money;
use anxin::domain::principal::Principal;
use anxin::domain::rejection::BatchRejection;
use anxin::projection::state::State;

/// Whether a flag's Chinese sentence reads as Chinese: it has Chinese characters and no
/// English word (identifiers such as "BH-2025-003" or "ICBC" are upper case or digits).
pub fn reads_chinese(s: &str) -> bool {
    let cjk = s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c));
    let english = s.split(|c: char| !c.is_ascii_alphabetic()).any(|w| w.len() >= 2 && w.bytes().any(|b| b.is_ascii_lowercase()));
    cjk && !english
}

pub fn d(s: &str) -> Date {
    Date::parse(s).unwrap()
}

pub fn per(s: &str) -> Period {
    Period::parse(s).unwrap()
}

pub fn yuan(s: &str) -> Money {
    Money::parse(s).unwrap()
}

pub fn pid(s: &str) -> ProjectId {
    ProjectId::parse(s).unwrap()
}

pub fn doc(s: &str) -> DocNo {
    DocNo::parse(s).unwrap()
}

pub fn county() -> CountyCode {
    CountyCode::parse("620121").unwrap()
}

pub fn gc() -> Uscc {
    Uscc::with_check("91620121MA0000001")
}

pub fn owner() -> Uscc {
    Uscc::with_check("91620121MB0000001")
}

pub fn employer() -> Uscc {
    Uscc::with_check("91620121MC0000001")
}

/// A commitment standing in for worker `n` (tests need no vault).
pub fn worker(n: u32) -> WorkerRef {
    Commitment(*blake3::hash(format!("worker {n}").as_bytes()).as_bytes())
}

pub fn card(n: u32) -> CardRef {
    Commitment(*blake3::hash(format!("card {n}").as_bytes()).as_bytes())
}

pub fn register(p: &str) -> Command {
    Command::RegisterProject(RegisterProject { registered_on: None, deposit_basis: anxin::domain::command::DepositBasis::ByPrice, funding: anxin::domain::command::Funding::Unstated,
        project: pid(p),
        county: county(),
        name: Text::parse("测试项目").unwrap(),
        general_contractor: gc(),
        owner: owner(),
        contract_price: yuan("10000000"),
        contract_date: d("2026-01-05"),
        permit_date: Some(d("2026-01-12")),
        start_date: d("2026-01-15"),
        planned_end: d("2026-12-31"),
        labour_ratio_bp: None,
        deposit_rate_bp: None,
    })
}

pub fn open_account(p: &str) -> Command {
    open_account_no(p, &format!("2703001209-{p}"))
}

/// A wage account at ICBC with its number given (numbers are unique per bank).
/// A statement of `p`'s deposit account by `bank` for `date`, with the bank's reference `no`.
pub fn statement(p: &str, bank: &str, date: &str, no: &str) -> Command {
    Command::AttestBalance(AttestBalance { project: pid(p), account: StatementAccount::Deposit, bank: BankCode::parse(bank).unwrap(), date: d(date), closing_balance: yuan("1"), bank_ref: doc(no) })
}

pub fn open_account_no(p: &str, no: &str) -> Command {
    Command::OpenWageAccount(OpenWageAccount { project: pid(p), bank: BankCode::parse("ICBC").unwrap(), account_no: Text::parse(no).unwrap(), date: d("2026-01-10") })
}

pub fn enrol(p: &str, n: u32) -> Command {
    enrol_card(p, n, n)
}

pub fn enrol_card(p: &str, n: u32, c: u32) -> Command {
    Command::EnrolWorker(EnrolWorker {
        project: pid(p),
        worker: worker(n),
        worker_masked: Text::parse("6201**********123X").unwrap(),
        employer: employer(),
        card: card(c),
        card_masked: Text::parse("6217***********0001").unwrap(),
        date: d("2026-01-16"),
    })
}

pub fn contract(p: &str, n: u32) -> Command {
    Command::RecordContract(RecordContract { project: pid(p), worker: worker(n), contract_no: doc(&format!("HT-{n}")), date: d("2026-01-16") })
}

pub fn exit(p: &str, n: u32, date: &str) -> Command {
    Command::ExitWorker(ExitWorker { project: pid(p), worker: worker(n), date: d(date) })
}

pub fn progress(p: &str, no: &str, total: &str, share: &str, date: &str) -> Command {
    Command::MakeProgressPayment(MakeProgressPayment { project: pid(p), payment_no: doc(no), total: yuan(total), wage_share: yuan(share), date: d(date) })
}

pub fn topup(p: &str, no: &str, amount: &str) -> Command {
    Command::TopUpWageAccount(TopUpWageAccount { project: pid(p), payment_no: doc(no), amount: yuan(amount), date: d("2026-02-01") })
}

/// A payroll for `period` with one line per (worker, amount).
pub fn payroll(p: &str, period: &str, lines: &[(u32, &str)]) -> Command {
    let period = per(period);
    Command::SubmitPayroll(SubmitPayroll { payroll_no: None, submitted_on: None,
        project: pid(p),
        period,
        due_date: period.next().last_day(),
        lines: lines.iter().map(|(n, a)| PayrollLine { worker: worker(*n), employer: employer(), days: 22, amount_due: yuan(a) }).collect(),
    })
}

pub fn pay(p: &str, no: &str, n: u32, amount: &str, period: Option<&str>) -> Command {
    Command::PayWage(PayWage {
        project: pid(p),
        payment_no: doc(no),
        worker: worker(n),
        card: card(n),
        amount: yuan(amount),
        date: d("2026-02-10"),
        period: period.map(per),
    })
}

pub fn deposit(p: &str, no: &str, amount: &str, date: &str) -> Command {
    Command::PayDeposit(PayDeposit { project: pid(p), bank: BankCode::parse("ICBC").unwrap(), payment_no: doc(no), amount: yuan(amount), date: d(date) })
}

pub fn letter(p: &str, no: &str, amount: &str, from: &str, to: &str) -> Command {
    Command::IssueGuaranteeLetter(IssueGuaranteeLetter { issued_on: None, applicant: None, beneficiary: None,
        project: pid(p),
        letter_no: doc(no),
        bank: BankCode::parse("ICBC").unwrap(),
        amount: yuan(amount),
        valid_from: d(from),
        valid_to: d(to),
    })
}

pub fn draw(p: &str, order: &str, date: &str, payees: &[(u32, &str, Option<&str>)]) -> Command {
    Command::DrawDeposit(DrawDeposit { order_date: None, reason: None,
        project: pid(p),
        order_no: doc(order),
        date: d(date),
        payees: payees.iter().map(|(n, a, pe)| DrawdownPayee { worker: worker(*n), card: card(*n), amount: yuan(a), period: pe.map(per) }).collect(),
    })
}

pub fn status(p: &str, s: ProjectStatus, date: &str) -> Command {
    Command::ChangeProjectStatus(ChangeProjectStatus { project: pid(p), status: s, date: d(date) })
}

/// Decides and applies commands as the writer does, numbering records from 1, as the
/// operator (who may post anything) unless `principal` is changed.
pub struct World {
    pub state: State,
    pub next_seq: u64,
    pub principal: Principal,
}

impl Default for World {
    fn default() -> World {
        World::new()
    }
}

impl World {
    pub fn new() -> World {
        World { state: State::default(), next_seq: 1, principal: Principal::Operator }
    }

    pub fn try_batch(&mut self, cmds: Vec<Command>) -> Result<Vec<Event>, BatchRejection> {
        let r = decide_batch(&mut self.state, &self.principal, &cmds, self.next_seq).map(|d| d.commit());
        if let Ok(ev) = &r {
            self.next_seq += ev.len() as u64;
        }
        r
    }

    /// Given: these commands are accepted.
    #[track_caller]
    pub fn given(&mut self, cmds: Vec<Command>) -> Vec<Event> {
        self.try_batch(cmds).unwrap_or_else(|e| panic!("expected acceptance, got {e}"))
    }

    /// Then: the command is rejected with `code`, and the state did not change.
    #[track_caller]
    pub fn rejects(&mut self, cmd: Command, code: &str) {
        let before = self.state.entries();
        match self.try_batch(vec![cmd]) {
            Ok(_) => panic!("expected rejection {code}, but it was accepted"),
            Err(e) => assert_eq!(e.rejection.code(), code, "rejection was {e}"),
        }
        assert!(before == self.state.entries(), "a rejected command changed the state");
    }

    /// A project with an open wage account and workers 1..=n enrolled with contracts.
    pub fn project_with_workers(&mut self, p: &str, n: u32) {
        let mut cmds = vec![register(p), open_account(p)];
        for i in 1..=n {
            cmds.push(enrol(p, i));
            cmds.push(contract(p, i));
        }
        self.given(cmds);
    }
}
