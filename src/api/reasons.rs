//! Every reason code the server answers with, and what a client should do about it.
//!
//! A refusal's reason code (`anxin-reason`, and `google.rpc.ErrorInfo.reason`) is the
//! client's to match on; this table says which of three things a client does:
//!
//! - [`Action::Retry`]: nothing was recorded, or whether it was is not known; send the
//!   same request again, with the same request id (a batch already recorded answers
//!   with its original receipt, `replayed`), after the delay, on the leader when the
//!   answer names one. These errors carry a `google.rpc.RetryInfo`.
//! - [`Action::Fix`]: the request itself is refused, and the same request gets the same
//!   answer until its input (or the ledger's state, such as a top-up before a payout)
//!   changes. Show the message to whoever sent it.
//! - [`Action::Stop`]: the client cannot help: its credentials, or the server, need a
//!   person. Stop sending, keep the request for later, and alert.
//!
//! README.md ("Errors") lists every code with its action and meaning, and
//! `tests/it/architecture.rs` holds the three together: every reason code literal in the
//! server's source is in this table, and every code of the table is in the README with
//! the same action.

use std::time::Duration;

/// What a client does about a refusal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Retry,
    Fix,
    Stop,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Retry => "retry",
            Action::Fix => "fix",
            Action::Stop => "stop",
        }
    }
}

/// The domain of `google.rpc.ErrorInfo`: the reasons are this API's.
pub const ERROR_DOMAIN: &str = "anxin.v1";

/// Codes a client retries, with the delay its `RetryInfo` suggests.
const RETRY: &[(&str, Duration)] = &[
    // Send it to the leader named in `anxin-leader` (or the next node) at once.
    ("NOT_LEADER", Duration::ZERO),
    ("OUTCOME_UNKNOWN", Duration::from_millis(500)),
    ("DATABASE_UNAVAILABLE", Duration::from_secs(1)),
    ("WRITE_FAILED", Duration::from_secs(1)),
    ("SHUT_DOWN", Duration::from_secs(1)),
    ("TOO_MANY_CALLS", Duration::from_millis(200)),
    ("SEQ_NOT_REACHED", Duration::from_millis(100)),
    ("NOT_YET_CHECKPOINTED", Duration::from_secs(1)),
    ("NOT_WITNESSED", Duration::from_secs(5)),
    ("BACKUP_FAILED", Duration::from_secs(5)),
    // Nothing was recorded; the operator frees space.
    ("DISK_FULL", Duration::from_secs(60)),
];

/// Codes that need a person: credentials, or a server that cannot go on.
const STOP: &[&str] = &[
    "UNAUTHENTICATED",
    "PERMISSION_DENIED",
    "WRITER_FAILED",
    "LEDGER_POISONED",
    "DAMAGED",
    "CORRUPTION",
    "CHAIN_BROKEN",
    "DATA_DIR",
    "INDEX_ERROR",
    "IO_ERROR",
    "INTERNAL",
];

/// Codes the input (or the ledger's state) must change for.
const FIX: &[&str] = &[
    // The wire form of a command or query.
    "MALFORMED_MESSAGE",
    "MISSING_FIELD",
    "UNEXPECTED_FIELD",
    "UNKNOWN_ENUM_VALUE",
    "INVALID_REQUEST_ID",
    "REQUEST_ID_REUSED",
    "INVALID_PAGE_TOKEN",
    "INVALID_SEQ",
    "INVALID_MIN_SEQ",
    "INVALID_TREE_SIZE",
    "INVALID_MASKED_ID",
    "INVALID_WORKER_REF",
    "EMPTY_BATCH",
    "BATCH_TOO_LARGE",
    "LIMIT_EXCEEDED",
    // Values.
    "AMOUNT_NOT_A_NUMBER",
    "AMOUNT_TOO_PRECISE",
    "AMOUNT_NOT_POSITIVE",
    "AMOUNT_TOO_LARGE",
    "AMOUNT_OVERFLOW",
    "INVALID_DATE",
    "INVALID_PERIOD",
    "DATE_ORDER",
    "INVALID_DAYS",
    "INVALID_NATIONAL_ID",
    "INVALID_BANK_CARD",
    "INVALID_USCC",
    "INVALID_COUNTY_CODE",
    "INVALID_ACCOUNT",
    "INVALID_TEXT",
    "PERSONAL_NUMBER_IN_TEXT",
    "INVALID_POLICY_OVERRIDE",
    "INVALID_STATUS_TRANSITION",
    "INVALID_LISTING_BASIS",
    "INVALID_CASE_WORKERS",
    "INVALID_ORDER_AMOUNTS",
    "WAGE_SHARE_EXCEEDS_TOTAL",
    "EMPTY_PAYROLL",
    "EMPTY_DRAWDOWN",
    "TOO_MANY_PAYOUTS",
    "REASON_REQUIRED",
    "DUPLICATE_PAYROLL_LINE",
    // What the command names does not exist.
    "UNKNOWN_PROJECT",
    "UNKNOWN_WORKER",
    "UNKNOWN_PAYROLL",
    "UNKNOWN_PAYROLL_LINE",
    "UNKNOWN_LETTER",
    "UNKNOWN_CASE",
    "UNKNOWN_ORDER",
    // What the command would create exists.
    "PROJECT_EXISTS",
    "WAGE_ACCOUNT_EXISTS",
    "WORKER_ALREADY_ENROLLED",
    "CONTRACT_EXISTS",
    "STATEMENT_EXISTS",
    "DUPLICATE_PAYMENT_NO",
    "DUPLICATE_LETTER_NO",
    "DUPLICATE_ORDER_NO",
    "DUPLICATE_ACCOUNT_NO",
    "DUPLICATE_STATEMENT_REF",
    "PAYROLL_EXISTS",
    // The ledger's rules, as its state stands.
    "NOT_PERMITTED",
    "PROJECT_COMPLETED",
    "PROJECT_NOT_ACTIVE",
    "PROJECT_NOT_COMPLETED",
    "NO_WAGE_ACCOUNT",
    "CARD_IN_USE",
    "WORKER_NOT_ENROLLED",
    "PAYEE_NOT_ENROLLED",
    "CARD_NOT_BOUND",
    "LETTER_CANCELLED",
    "INSUFFICIENT_WAGE_BALANCE",
    "EXCEEDS_PAYROLL_OWED",
    "DRAWDOWN_EXCEEDS_DEPOSIT",
    "ARREARS_OUTSTANDING",
    "DEPOSIT_EMPTY",
];

/// The county's casework rules' codes: all fixed by the input, or the casework's state.
const CASEWORK: &[&str] = &crate::domain::rejection::CASEWORK_CODES;

/// What a client does about `code`; `None` for a code the server never sends.
pub fn action(code: &str) -> Option<Action> {
    if RETRY.iter().any(|(c, _)| *c == code) {
        Some(Action::Retry)
    } else if STOP.contains(&code) {
        Some(Action::Stop)
    } else if FIX.contains(&code) || CASEWORK.contains(&code) {
        Some(Action::Fix)
    } else {
        None
    }
}

/// How long a client waits before it retries `code`, for the codes it retries.
pub fn retry_delay(code: &str) -> Option<Duration> {
    RETRY.iter().find(|(c, _)| *c == code).map(|(_, d)| *d)
}

/// Every code, with its action.
pub fn all() -> impl Iterator<Item = (&'static str, Action)> {
    RETRY
        .iter()
        .map(|(c, _)| (*c, Action::Retry))
        .chain(STOP.iter().map(|c| (*c, Action::Stop)))
        .chain(FIX.iter().chain(CASEWORK.iter()).map(|c| (*c, Action::Fix)))
}
