//! Rejections: a business rule said no. Returned to the client, never logged as events.
//!
//! Each variant has a stable reason code (`code()`), which clients match on; the message
//! names the offending value. A caller should show the message to the person who sent the
//! command and fix the command: retrying the same command gets the same answer unless the
//! ledger's state changed in between (for example a top-up before a retried payout).

use super::command::ProjectStatus;
use super::date::{Date, Period};
use super::ids::{DocNo, ProjectId, WorkerRef};
use super::money::Money;
use super::numbers::Duplicate;

/// How a rejection maps onto gRPC status codes (the API layer does the mapping).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectionKind {
    /// The command is malformed on its own, whatever the state: `INVALID_ARGUMENT`.
    Invalid,
    /// The command is well formed but a rule forbids it now: `FAILED_PRECONDITION`.
    Rule,
    /// It would create something that exists: `ALREADY_EXISTS`.
    Exists,
    /// It refers to something that does not exist: `NOT_FOUND`.
    Missing,
    /// It is over a limit: `RESOURCE_EXHAUSTED`.
    Limit,
    /// The principal may not post it (not its project, account or letter):
    /// `PERMISSION_DENIED`.
    Permission,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("invalid {field}: {why}")]
    Invalid { code: &'static str, field: &'static str, why: String },
    #[error("project {0} is already registered")]
    ProjectExists(ProjectId),
    #[error("project {0} is not registered")]
    UnknownProject(ProjectId),
    #[error("project {0} is completed; nothing more can be posted to it but closing entries")]
    ProjectCompleted(ProjectId),
    #[error("project {0} is {1:?}, not active")]
    ProjectNotActive(ProjectId, ProjectStatus),
    #[error("project {0} is not completed")]
    ProjectNotCompleted(ProjectId),
    #[error("project {project} cannot go from {from:?} to {to:?}")]
    InvalidStatusTransition { project: ProjectId, from: ProjectStatus, to: ProjectStatus },
    #[error("project {0} already has an open wage account")]
    WageAccountExists(ProjectId),
    #[error("project {0} has no open wage account")]
    NoWageAccount(ProjectId),
    #[error("worker {worker} is already enrolled on project {project}")]
    WorkerAlreadyEnrolled { project: ProjectId, worker: WorkerRef },
    #[error("card {card} is bound to another worker on project {project} (one person, one card)")]
    CardInUse { project: ProjectId, card: String },
    #[error("worker {worker} is not currently enrolled on project {project}")]
    WorkerNotEnrolled { project: ProjectId, worker: WorkerRef },
    #[error("payee {worker} was never enrolled on project {project}")]
    PayeeNotEnrolled { project: ProjectId, worker: WorkerRef },
    #[error("card {card} is not the card bound to worker {worker}")]
    CardNotBound { worker: WorkerRef, card: String },
    #[error("worker {worker} already has a labour contract recorded on project {project}")]
    ContractExists { project: ProjectId, worker: WorkerRef },
    #[error("payroll for {period} lists worker {worker} twice")]
    DuplicatePayrollLine { period: Period, worker: WorkerRef },
    /// An external number already used in its scope (`crate::domain::numbers`); the
    /// code names the kind: `DUPLICATE_PAYMENT_NO`, `DUPLICATE_LETTER_NO`,
    /// `DUPLICATE_ORDER_NO`, `PAYROLL_EXISTS`, `DUPLICATE_ACCOUNT_NO`, `DUPLICATE_STATEMENT_REF`.
    #[error("{0}")]
    Duplicate(Duplicate),
    /// The principal may post commands of this kind, but not for this project, account
    /// or letter; decided by the writer against the state the command is decided on.
    #[error("{principal} may not {command}: {why}")]
    NotPermitted { principal: String, command: &'static str, why: String },
    #[error("guarantee letter {0} is not recorded for this project")]
    UnknownLetter(DocNo),
    #[error("guarantee letter {0} is already cancelled")]
    LetterCancelled(DocNo),
    #[error("wage account holds {balance}, payout of {amount} refused")]
    InsufficientWageBalance { balance: Money, amount: Money },
    #[error("no payroll line for worker {worker} in {period}")]
    UnknownPayrollLine { worker: WorkerRef, period: Period },
    #[error("payroll line for {worker} in {period} still owes {owed}; {amount} is more")]
    ExceedsPayrollOwed { worker: WorkerRef, period: Period, owed: Money, amount: Money },
    #[error("deposit holds {cash} in cash; a drawdown of {amount} is more")]
    DrawdownExceedsDeposit { cash: Money, amount: Money },
    #[error("project {project} has {amount} of wages unpaid")]
    ArrearsOutstanding { project: ProjectId, amount: Money },
    #[error("project {0} holds no cash deposit to release")]
    DepositEmpty(ProjectId),
    #[error("the total would overflow the ledger's bounds")]
    AmountOverflow,
    #[error("{what} dated {date} is before {before}")]
    DateOrder { what: &'static str, date: Date, before: Date },
    #[error("a batch holds {count} commands; the limit is {max}")]
    BatchTooLarge { count: usize, max: usize },
    #[error("a batch's records would take {bytes} bytes; the limit is {max}")]
    BatchBytesTooLarge { bytes: usize, max: usize },
    #[error("a batch must hold at least one command")]
    EmptyBatch,
    #[error("the {account:?} account of project {project} already has a statement for {date}")]
    StatementExists { project: ProjectId, account: super::command::StatementAccount, date: Date },
    #[error("request id {0:?} was already used by this principal for different content")]
    RequestIdReused(String),
    /// A casework rule (`domain::casework`); `code` is one of `CASEWORK_CODES`.
    #[error("{why}")]
    Casework { code: &'static str, why: String },
}

/// The reason codes of the casework rules.
pub const CASEWORK_CODES: [&str; 24] = [
    "CASE_EXISTS",
    "UNKNOWN_CASE",
    "CASE_ALREADY_DECIDED",
    "CASE_NOT_ACCEPTED",
    "CASE_CLOSED",
    "CASE_ALREADY_EXTENDED",
    "PROJECT_OUTSIDE_COUNTY",
    "PAYOUT_NOT_CITABLE",
    "PAYOUT_ALREADY_CITED",
    "RECOVERED_NOT_CITED",
    "ORDER_EXISTS",
    "UNKNOWN_ORDER",
    "ORDER_COMPLIED",
    "ORDER_NOT_CURED",
    "ORDER_NOT_UNMET",
    "ORDER_REFERRED",
    "EMPLOYER_LISTED",
    "EMPLOYER_NOT_LISTED",
    "DELIST_TOO_EARLY",
    "ARREARS_NOT_REPAID",
    "ORDER_NOT_REFERRED",
    "REFERRAL_NOT_FILED",
    "REFERRAL_ALREADY_FILED",
    "REFERRAL_CONCLUDED",
];

impl Rejection {
    /// The stable, machine-readable reason code.
    pub fn code(&self) -> &'static str {
        use Rejection::*;
        match self {
            Invalid { code, .. } => code,
            ProjectExists(_) => "PROJECT_EXISTS",
            UnknownProject(_) => "UNKNOWN_PROJECT",
            ProjectCompleted(_) => "PROJECT_COMPLETED",
            ProjectNotActive(..) => "PROJECT_NOT_ACTIVE",
            ProjectNotCompleted(_) => "PROJECT_NOT_COMPLETED",
            InvalidStatusTransition { .. } => "INVALID_STATUS_TRANSITION",
            WageAccountExists(_) => "WAGE_ACCOUNT_EXISTS",
            NoWageAccount(_) => "NO_WAGE_ACCOUNT",
            WorkerAlreadyEnrolled { .. } => "WORKER_ALREADY_ENROLLED",
            CardInUse { .. } => "CARD_IN_USE",
            WorkerNotEnrolled { .. } => "WORKER_NOT_ENROLLED",
            PayeeNotEnrolled { .. } => "PAYEE_NOT_ENROLLED",
            CardNotBound { .. } => "CARD_NOT_BOUND",
            ContractExists { .. } => "CONTRACT_EXISTS",
            DuplicatePayrollLine { .. } => "DUPLICATE_PAYROLL_LINE",
            Duplicate(d) => d.kind.duplicate_code(),
            NotPermitted { .. } => "NOT_PERMITTED",
            UnknownLetter(_) => "UNKNOWN_LETTER",
            LetterCancelled(_) => "LETTER_CANCELLED",
            InsufficientWageBalance { .. } => "INSUFFICIENT_WAGE_BALANCE",
            UnknownPayrollLine { .. } => "UNKNOWN_PAYROLL_LINE",
            ExceedsPayrollOwed { .. } => "EXCEEDS_PAYROLL_OWED",
            DrawdownExceedsDeposit { .. } => "DRAWDOWN_EXCEEDS_DEPOSIT",
            ArrearsOutstanding { .. } => "ARREARS_OUTSTANDING",
            DepositEmpty(_) => "DEPOSIT_EMPTY",
            AmountOverflow => "AMOUNT_OVERFLOW",
            DateOrder { .. } => "DATE_ORDER",
            BatchTooLarge { .. } => "BATCH_TOO_LARGE",
            BatchBytesTooLarge { .. } => "BATCH_TOO_LARGE",
            EmptyBatch => "EMPTY_BATCH",
            StatementExists { .. } => "STATEMENT_EXISTS",
            RequestIdReused(_) => "REQUEST_ID_REUSED",
            Casework { code, .. } => code,
        }
    }

    pub fn kind(&self) -> RejectionKind {
        use Rejection::*;
        match self {
            Invalid { .. } | DuplicatePayrollLine { .. } | DateOrder { .. } | EmptyBatch => RejectionKind::Invalid,
            ProjectExists(_) | WageAccountExists(_) | WorkerAlreadyEnrolled { .. } | ContractExists { .. }
            | Duplicate(_) | RequestIdReused(_) | StatementExists { .. } => RejectionKind::Exists,
            Casework { code: "CASE_EXISTS" | "PAYOUT_ALREADY_CITED" | "ORDER_EXISTS" | "ORDER_REFERRED" | "REFERRAL_ALREADY_FILED" | "EMPLOYER_LISTED", .. } => RejectionKind::Exists,
            Casework { code: "UNKNOWN_CASE" | "UNKNOWN_ORDER" | "EMPLOYER_NOT_LISTED", .. } => RejectionKind::Missing,
            NotPermitted { .. } => RejectionKind::Permission,
            UnknownProject(_) | UnknownLetter(_) | UnknownPayrollLine { .. } => RejectionKind::Missing,
            BatchTooLarge { .. } | BatchBytesTooLarge { .. } | AmountOverflow => RejectionKind::Limit,
            _ => RejectionKind::Rule,
        }
    }

    pub(crate) fn invalid(code: &'static str, field: &'static str, why: impl Into<String>) -> Rejection {
        Rejection::Invalid { code, field, why: why.into() }
    }
}

/// A batch was refused: the command at `index` (0-based) was rejected, and with it the
/// whole batch. Nothing of the batch was recorded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{} ({}): {rejection}", match index { Some(i) => format!("command {i} of the batch was rejected"), None => "the batch was rejected".to_owned() }, rejection.code())]
pub struct BatchRejection {
    /// Index of the failing command; `None` for a rejection of the batch as a whole.
    pub index: Option<usize>,
    pub rejection: Rejection,
}

#[cfg(test)]
mod casework_code_tests {
    /// Every code the casework rules refuse with is listed, so that the list (and what
    /// reads it) cannot fall behind the rules.
    #[test]
    fn every_casework_refusal_code_is_listed() {
        let src = include_str!("../decide/casework.rs");
        let codes: Vec<&str> = src.split("refuse(\"").skip(1).map(|p| &p[..p.find('"').expect("a closing quote")]).collect();
        assert!(codes.len() >= 24, "found the rules' codes: {codes:?}");
        for c in codes {
            assert!(super::CASEWORK_CODES.contains(&c), "{c} is missing from CASEWORK_CODES");
        }
    }
}
