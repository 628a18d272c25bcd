//! External numbers: the documents a command brings from outside the ledger (a bank's
//! payment number, a guarantee letter's number, a county's drawdown order, the month of
//! a payroll, a wage account's number), each unique in its scope.
//!
//! Every command kind declares here, once, which number it introduces (`Numbered`), and
//! both sides of the ledger go through that one declaration: `decide` refuses a command
//! whose number is already used (`DUPLICATE_*`), and `apply` records the number of every
//! event it applies. `Command::number` and `Event::number` match every variant without
//! a wildcard, so a new command kind does not compile until it says whether it carries
//! a number.
//!
//! Scopes, as DESIGN 4 and the API say: payment numbers (deposits, progress payments,
//! top-ups, payouts share one space), drawdown orders and payroll months are unique per
//! project, so two projects may use the same; guarantee letters are unique in the
//! ledger; a wage account number is unique per bank (one dedicated account per project).
//! A labour contract's number is the employer's own document and is not made unique:
//! two subcontractors on one project may number alike.

use std::fmt;

use super::command::*;
use super::date::Period;
use super::ids::{BankCode, DocNo, ProjectId, Text};

/// What kind of number, which decides its scope and its duplicate reason code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NumberKind {
    /// A bank's payment number: deposits, progress payments, top-ups and payouts.
    Payment,
    /// A guarantee letter's number.
    Letter,
    /// A county's drawdown order number.
    Order,
    /// The month of a payroll: one payroll per project and month.
    Payroll,
    /// A wage account's number at its bank.
    Account,
    /// A bank's own reference for a statement (format 2).
    Statement,
}

impl NumberKind {
    /// Every kind, for tests that go through them all.
    pub const ALL: [NumberKind; 6] = [NumberKind::Payment, NumberKind::Letter, NumberKind::Order, NumberKind::Payroll, NumberKind::Account, NumberKind::Statement];

    /// One byte that keeps the kinds apart in a fingerprint (`docs/FORMAT.md`).
    pub fn tag(self) -> u8 {
        match self {
            NumberKind::Payment => 1,
            NumberKind::Letter => 2,
            NumberKind::Order => 3,
            NumberKind::Payroll => 4,
            NumberKind::Account => 5,
            NumberKind::Statement => 6,
        }
    }

    /// The reason code of a command that repeats a number of this kind.
    pub fn duplicate_code(self) -> &'static str {
        match self {
            NumberKind::Payment => "DUPLICATE_PAYMENT_NO",
            NumberKind::Letter => "DUPLICATE_LETTER_NO",
            NumberKind::Order => "DUPLICATE_ORDER_NO",
            NumberKind::Payroll => "PAYROLL_EXISTS",
            NumberKind::Account => "DUPLICATE_ACCOUNT_NO",
            NumberKind::Statement => "DUPLICATE_STATEMENT_REF",
        }
    }

    fn what(self) -> &'static str {
        match self {
            NumberKind::Payment => "payment number",
            NumberKind::Letter => "guarantee letter",
            NumberKind::Order => "drawdown order",
            NumberKind::Payroll => "payroll for",
            NumberKind::Account => "wage account number",
            NumberKind::Statement => "statement reference",
        }
    }
}

/// Where a number must be unique.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope<'a> {
    Ledger,
    Project(&'a ProjectId),
    Bank(&'a BankCode),
}

/// The number itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NumberValue<'a> {
    Doc(&'a DocNo),
    Text(&'a Text),
    Month(Period),
}

/// One external number a command introduces, with its kind and scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExternalNo<'a> {
    pub kind: NumberKind,
    pub scope: Scope<'a>,
    pub value: NumberValue<'a>,
}

impl ExternalNo<'_> {
    /// The bytes a fingerprint is taken of: kind tag, scope, value (`docs/FORMAT.md`).
    pub fn key_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_key(&mut |b| out.extend_from_slice(b));
        out
    }

    /// Hands `key_bytes` to `out` piece by piece (a fingerprint hashes them without
    /// gathering them first).
    pub fn write_key(&self, out: &mut dyn FnMut(&[u8])) {
        out(&[self.kind.tag()]);
        match self.scope {
            Scope::Ledger => out(&[0]),
            Scope::Project(p) => {
                out(&[1]);
                out(p.as_str().as_bytes());
            }
            Scope::Bank(b) => {
                out(&[2]);
                out(b.as_str().as_bytes());
            }
        }
        out(&[0]);
        match self.value {
            NumberValue::Doc(d) => out(d.as_str().as_bytes()),
            // An account number as a bank writes it: "2703 0012-09" and "27030012 09" are
            // one account, so spaces and hyphens are left out and letters upper-cased.
            NumberValue::Text(t) => {
                for c in t.as_str().chars().filter(|c| !c.is_whitespace() && *c != '-') {
                    let mut buf = [0u8; 4];
                    out(c.to_ascii_uppercase().encode_utf8(&mut buf).as_bytes());
                }
            }
            NumberValue::Month(m) => out(m.to_string().as_bytes()),
        }
    }

    /// An owned description, for a rejection.
    pub fn to_duplicate(&self) -> Duplicate {
        let value = match self.value {
            NumberValue::Doc(d) => d.to_string(),
            NumberValue::Text(t) => t.to_string(),
            NumberValue::Month(m) => m.to_string(),
        };
        let scope = match self.scope {
            Scope::Ledger => "in this ledger".to_owned(),
            Scope::Project(p) => format!("on project {p}"),
            Scope::Bank(b) => format!("at bank {b}"),
        };
        Duplicate { kind: self.kind, value, scope }
    }
}

/// A number found already used: what a `DUPLICATE_*` rejection says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Duplicate {
    pub kind: NumberKind,
    pub value: String,
    pub scope: String,
}

impl fmt::Display for Duplicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} is already recorded {}", self.kind.what(), self.value, self.scope)
    }
}

/// The external number a command's payload introduces, if any: declared once per kind.
pub trait Numbered {
    fn number(&self) -> Option<ExternalNo<'_>>;
}

fn payment<'a>(project: &'a ProjectId, no: &'a DocNo) -> Option<ExternalNo<'a>> {
    Some(ExternalNo { kind: NumberKind::Payment, scope: Scope::Project(project), value: NumberValue::Doc(no) })
}

macro_rules! no_number {
    ($($t:ty: $why:literal,)*) => {
        $(impl Numbered for $t {
            #[doc = $why]
            fn number(&self) -> Option<ExternalNo<'_>> {
                None
            }
        })*
    };
}

no_number! {
    RegisterProject: "The project id is the project's own key (PROJECT_EXISTS).",
    ChangeProjectStatus: "Refers to a project; introduces nothing.",
    CloseWageAccount: "Refers to the open account.",
    EnrolWorker: "The worker's commitment is the enrolment's key (WORKER_ALREADY_ENROLLED).",
    RecordContract: "The employer's own contract number: not made unique (see the module doc).",
    ExitWorker: "Refers to an enrolment.",
    CancelGuaranteeLetter: "Refers to a letter already issued.",
    ReleaseDeposit: "Refers to the deposit.",
    WageAccountClosed: "Refers to the open account.",
    DepositReleased: "Refers to the deposit.",
}

impl Numbered for OpenWageAccount {
    fn number(&self) -> Option<ExternalNo<'_>> {
        Some(ExternalNo { kind: NumberKind::Account, scope: Scope::Bank(&self.bank), value: NumberValue::Text(&self.account_no) })
    }
}

impl Numbered for SubmitPayroll {
    fn number(&self) -> Option<ExternalNo<'_>> {
        Some(ExternalNo { kind: NumberKind::Payroll, scope: Scope::Project(&self.project), value: NumberValue::Month(self.period) })
    }
}

impl Numbered for PayDeposit {
    fn number(&self) -> Option<ExternalNo<'_>> {
        payment(&self.project, &self.payment_no)
    }
}

impl Numbered for IssueGuaranteeLetter {
    fn number(&self) -> Option<ExternalNo<'_>> {
        Some(ExternalNo { kind: NumberKind::Letter, scope: Scope::Ledger, value: NumberValue::Doc(&self.letter_no) })
    }
}

impl Numbered for MakeProgressPayment {
    fn number(&self) -> Option<ExternalNo<'_>> {
        payment(&self.project, &self.payment_no)
    }
}

impl Numbered for TopUpWageAccount {
    fn number(&self) -> Option<ExternalNo<'_>> {
        payment(&self.project, &self.payment_no)
    }
}

impl Numbered for PayWage {
    fn number(&self) -> Option<ExternalNo<'_>> {
        payment(&self.project, &self.payment_no)
    }
}

impl Numbered for AttestBalance {
    fn number(&self) -> Option<ExternalNo<'_>> {
        Some(ExternalNo { kind: NumberKind::Statement, scope: Scope::Bank(&self.bank), value: NumberValue::Doc(&self.bank_ref) })
    }
}

impl Numbered for DrawDeposit {
    fn number(&self) -> Option<ExternalNo<'_>> {
        Some(ExternalNo { kind: NumberKind::Order, scope: Scope::Project(&self.project), value: NumberValue::Doc(&self.order_no) })
    }
}

impl Command {
    /// The external number this command introduces, if any (unique in its scope).
    pub fn number(&self) -> Option<ExternalNo<'_>> {
        match self {
            Command::RegisterProject(c) => c.number(),
            Command::ChangeProjectStatus(c) => c.number(),
            Command::OpenWageAccount(c) => c.number(),
            Command::CloseWageAccount(c) => c.number(),
            Command::EnrolWorker(c) => c.number(),
            Command::RecordContract(c) => c.number(),
            Command::ExitWorker(c) => c.number(),
            Command::SubmitPayroll(c) => c.number(),
            Command::PayDeposit(c) => c.number(),
            Command::IssueGuaranteeLetter(c) => c.number(),
            Command::CancelGuaranteeLetter(c) => c.number(),
            Command::MakeProgressPayment(c) => c.number(),
            Command::TopUpWageAccount(c) => c.number(),
            Command::PayWage(c) => c.number(),
            Command::DrawDeposit(c) => c.number(),
            Command::ReleaseDeposit(c) => c.number(),
            Command::AttestBalance(c) => c.number(),
            // Case and order numbers are unique in their county: the `cases` and
            // `order_numbers` tables keep them.
            Command::OpenCase(_)
            | Command::DecideCase(_)
            | Command::ExtendCase(_)
            | Command::CloseCase(_)
            | Command::IssueOrder(_)
            | Command::ResolveOrder(_)
            | Command::ReferOrder(_)
            | Command::ListEmployer(_)
            | Command::DelistEmployer(_)
            | Command::RecordInspection(_)
            | Command::RecordCards(_)
            | Command::RecordReferralOutcome(_) => None,
        }
    }
}

impl Event {
    /// The external number this event recorded, if any: the one its command introduced.
    pub fn number(&self) -> Option<ExternalNo<'_>> {
        match self {
            Event::ProjectRegistered(c) => c.number(),
            Event::ProjectStatusChanged(c) => c.number(),
            Event::WageAccountOpened(c) => c.number(),
            Event::WageAccountClosed(e) => e.number(),
            Event::WorkerEnrolled(c) => c.number(),
            Event::ContractRecorded(c) => c.number(),
            Event::WorkerExited(c) => c.number(),
            Event::PayrollSubmitted(c) => c.number(),
            Event::DepositPaid(c) => c.number(),
            Event::GuaranteeLetterIssued(c) => c.number(),
            Event::GuaranteeLetterCancelled(c) => c.number(),
            Event::ProgressPaymentMade(c) => c.number(),
            Event::WageAccountToppedUp(c) => c.number(),
            Event::WagePaid(c) => c.number(),
            Event::DepositDrawn(c) => c.number(),
            Event::DepositReleased(e) => e.number(),
            Event::BalanceAttested(c) => c.number(),
            Event::CaseOpened(_)
            | Event::CaseDecided(_)
            | Event::CaseExtended(_)
            | Event::CaseClosed(_)
            | Event::OrderIssued(_)
            | Event::OrderResolved(_)
            | Event::OrderReferred(_)
            | Event::EmployerListed(_)
            | Event::EmployerDelisted(_)
            | Event::InspectionRecorded(_)
            | Event::CardsRecorded(_)
            | Event::ReferralOutcomeRecorded(_) => None,
        }
    }
}
