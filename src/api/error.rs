//! The one place where errors become gRPC statuses.
//!
//! Every answer that is not a success leaves the server as an `ApiError` (the services
//! build no `Status` of their own: `tests/it/architecture.rs` holds them to it), and an
//! `ApiError`'s message can only be made through `ApiError::build`, which masks every
//! run of 11 or more digits (`mask_personal_numbers`): a national ID, a bank card or a
//! phone number sent in any field, and quoted back by any message, leaves the server
//! masked, whichever rule or parser wrote the message.
//!
//! Every refusal carries a stable reason code in the response metadata key
//! `anxin-reason` and, for a command of a batch, its 0-based index in
//! `anxin-command-index`. Rejections map by kind (`INVALID_ARGUMENT`,
//! `FAILED_PRECONDITION`, `ALREADY_EXISTS`, `NOT_FOUND`, `RESOURCE_EXHAUSTED`); faults map
//! to `DATA_LOSS` (damage) or `UNAVAILABLE` (I/O, a stopped writer), and are logged here.
//!
//! The same facts also travel as the standard rich error details that gRPC client
//! libraries read (the `grpc-status-details-bin` trailer): a `google.rpc.ErrorInfo` with
//! the reason, the domain `anxin.v1` and, as metadata, the command index, the leader and
//! the sequence number; a `google.rpc.BadRequest` naming the field of an invalid value
//! (`commands[3].pay_wage.amount`); and a `google.rpc.RetryInfo` for the reasons a client
//! retries (`reasons.rs`, which also says what a client does about every other one).

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::domain::rejection::{BatchRejection, RejectionKind};
use crate::store::StoreError;

pub const REASON_KEY: &str = "anxin-reason";
pub const INDEX_KEY: &str = "anxin-command-index";
/// On `NOT_LEADER`: where the leader is (its advertised address), when known.
pub const LEADER_KEY: &str = "anxin-leader";

pub use crate::domain::ids::{mask_personal_numbers, MASKED_DIGITS_MIN, MASKED_HYPHENATED_DIGITS_MIN};

/// A refusal on its way to the client. Its message is masked when it is made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub code: Code,
    pub reason: &'static str,
    message: String,
    pub index: Option<usize>,
    /// `NOT_LEADER`: the leader's address.
    pub leader: Option<String>,
    /// `SEQ_NOT_REACHED`: the sequence number this node holds (`api::SEQ_KEY`).
    pub seq: Option<u64>,
    /// The field whose value is refused, as a path inside the request or its command
    /// (`pay_wage.amount`; `commands[i].` is put before it with the index).
    pub field: Option<String>,
}

impl ApiError {
    /// The only way to make one: every message is masked here.
    fn build(code: Code, reason: &'static str, message: &str, index: Option<usize>) -> ApiError {
        ApiError { code, reason, message: mask_personal_numbers(message), index, leader: None, seq: None, field: None }
    }

    pub fn new(code: Code, reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::build(code, reason, &message.into(), None)
    }

    /// The message, as it leaves the server (masked).
    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(Code::Internal, "INTERNAL", message)
    }

    pub fn invalid(reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(Code::InvalidArgument, reason, message)
    }

    /// The same refusal with `what: ` before its message.
    pub fn context(self, what: &str) -> ApiError {
        let field = self.field.clone();
        ApiError { field, ..ApiError::build(self.code, self.reason, &format!("{what}: {}", self.message), self.index) }
    }

    /// The path of the refused field inside the request (`commands[3].pay_wage.amount`),
    /// as `BadRequest` and a stream's `Refusal` name it.
    pub fn field_path(&self) -> Option<String> {
        let field = self.field.as_ref()?;
        Some(match self.index {
            Some(i) => format!("commands[{i}].{field}"),
            None => field.clone(),
        })
    }

    /// What a client does about it (retry, fix or stop: `api::reasons`).
    pub fn action(&self) -> Option<&'static str> {
        super::reasons::action(self.reason).map(super::reasons::Action::as_str)
    }

    /// How long a client waits before it retries, for a refusal it retries.
    pub fn retry_delay(&self) -> Option<std::time::Duration> {
        super::reasons::retry_delay(self.reason)
    }

    /// The refused value is in `field`.
    pub fn on(mut self, field: &str) -> ApiError {
        self.field = Some(field.to_owned());
        self
    }

    /// The refused field is inside `outer` (`lines[2]`, `pay_wage`): its path gets
    /// `outer.` before it. A refusal without a field is left as it is.
    pub fn under(mut self, outer: &str) -> ApiError {
        if let Some(f) = self.field.take() {
            self.field = Some(format!("{outer}.{f}"));
        }
        self
    }

    pub fn at(mut self, index: usize) -> ApiError {
        self.index = Some(index);
        self
    }

    pub fn denied(message: impl Into<String>) -> ApiError {
        ApiError::new(Code::PermissionDenied, "PERMISSION_DENIED", message)
    }

    pub fn not_found(reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(Code::NotFound, reason, message)
    }
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Status {
        let (path, action, delay) = (e.field_path(), e.action(), e.retry_delay());
        let message = match e.index {
            Some(i) => format!("command {i}: {}", e.message),
            None => e.message,
        };
        let mut metadata = tonic::metadata::MetadataMap::new();
        let mut info = std::collections::HashMap::new();
        if let Ok(v) = e.reason.parse() {
            metadata.insert(REASON_KEY, v);
        }
        if let Some(i) = e.index {
            if let Ok(v) = i.to_string().parse() {
                metadata.insert(INDEX_KEY, v);
            }
            info.insert("command_index".to_owned(), i.to_string());
        }
        if let Some(leader) = &e.leader {
            if let Ok(v) = leader.parse() {
                metadata.insert(LEADER_KEY, v);
            }
            info.insert("leader".to_owned(), leader.clone());
        }
        if let Some(seq) = e.seq {
            metadata.insert(super::SEQ_KEY, seq.into());
            info.insert("seq".to_owned(), seq.to_string());
        }
        if let Some(action) = action {
            info.insert("action".to_owned(), action.to_owned());
        }
        let mut details = ErrorDetails::with_error_info(e.reason, super::reasons::ERROR_DOMAIN, info);
        if let Some(path) = path {
            details.add_bad_request_violation(path, message.clone());
        }
        if let Some(delay) = delay {
            details.set_retry_info(Some(delay));
        }
        Status::with_error_details_and_metadata(e.code, message, details, metadata)
    }
}

impl From<BatchRejection> for ApiError {
    fn from(r: BatchRejection) -> ApiError {
        let code = match r.rejection.kind() {
            RejectionKind::Invalid => Code::InvalidArgument,
            RejectionKind::Rule => Code::FailedPrecondition,
            RejectionKind::Exists => Code::AlreadyExists,
            RejectionKind::Missing => Code::NotFound,
            RejectionKind::Limit => Code::ResourceExhausted,
            RejectionKind::Permission => Code::PermissionDenied,
        };
        let field = match &r.rejection {
            crate::domain::rejection::Rejection::Invalid { field, .. } => Some((*field).to_owned()),
            _ => None,
        };
        ApiError { field, ..ApiError::build(code, r.rejection.code(), &r.rejection.to_string(), r.index) }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        tracing::error!(error = %e, code = e.code(), "fault while serving a request");
        let leader = match &e {
            StoreError::NotLeader { leader } => leader.clone(),
            _ => None,
        };
        let code = match e {
            StoreError::NotLeader { .. } => Code::FailedPrecondition,
            StoreError::Corruption { .. } | StoreError::Chain(_) => Code::DataLoss,
            StoreError::WriterFailed(_) | StoreError::Poisoned(_) | StoreError::Damaged(_) => Code::Unavailable,
            StoreError::DiskFull { .. } => Code::ResourceExhausted,
            _ => Code::Unavailable,
        };
        ApiError { leader, ..ApiError::new(code, e.code(), e.to_string()) }
    }
}

impl From<StoreError> for Status {
    fn from(e: StoreError) -> Status {
        ApiError::from(e).into()
    }
}

/// Reads the reason code and command index back from a status (for clients and tests).
pub fn reason_of(s: &Status) -> (Option<String>, Option<usize>) {
    let get = |k| s.metadata().get(k).and_then(|v| v.to_str().ok()).map(str::to_owned);
    (get(REASON_KEY), get(INDEX_KEY).and_then(|v| v.parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personal_numbers_are_masked_wherever_they_stand() {
        let m = mask_personal_numbers;
        assert_eq!(m("project 620121199202022341 is not registered"), "project 620*************41 is not registered");
        assert_eq!(m("id 62012119920202234X"), "id 620*************4X");
        assert_eq!(m("payment number 6217000000000056782 is already recorded"), "payment number 621**************82 is already recorded");
        assert_eq!(m("call 13812345678"), "call 138******78");
        assert_eq!(m("call 138 1234 5678 now"), "call 138 **** **78 now");
        assert_eq!(m("call 138-1234-5678 now"), "call 138-****-**78 now");
        assert_eq!(m("card 6217-0000-0000-0005-678"), "card 621*-****-****-****-*78");
        assert_eq!(m("id 620121-1992-0202-2341"), "id 620***-****-****-**41");
        assert_eq!(m("card 6217 0000 0000 0005 678"), "card 621* **** **** **** *78");
        let full_width: String = "6217000000000056782".chars().map(|c| char::from_u32(c as u32 - '0' as u32 + '０' as u32).unwrap()).collect();
        assert_eq!(m(&format!("amount \"{full_width}\"")), format!("amount \"６２１{}８２\"", "*".repeat(14)));
        // What the ledger itself quotes stays readable.
        assert_eq!(m("card 06217000000000056782"), "card 062***************82", "a leading 0 does not hide a number");
        for keep in ["segment 00000000000000000523.seg", "record 13721 of 1000000", "wage account holds 242000.00", "2026-01-21", "T-20260201-0001", "county 620121", "1234567890"] {
            assert_eq!(m(keep), keep);
        }
    }

    #[test]
    fn an_api_error_cannot_carry_a_number_in_clear() {
        let e = ApiError::invalid("X", "request id \"6217000000000033336\" was already used");
        assert!(!e.message().contains("6217000000000033336"));
        let s: Status = e.into();
        assert!(!s.message().contains("6217000000000033336"));
    }
}
