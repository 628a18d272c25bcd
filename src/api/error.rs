//! The one place where errors become gRPC statuses.
//!
//! Every refusal carries a stable reason code in the response metadata key
//! `anxin-reason` and, for a command of a batch, its 0-based index in
//! `anxin-command-index`. Rejections map by kind (`INVALID_ARGUMENT`,
//! `FAILED_PRECONDITION`, `ALREADY_EXISTS`, `NOT_FOUND`, `RESOURCE_EXHAUSTED`); faults map
//! to `DATA_LOSS` (damage) or `UNAVAILABLE` (I/O, a stopped writer), and are logged here.

use tonic::{Code, Status};

use crate::domain::rejection::{BatchRejection, RejectionKind};
use crate::store::StoreError;

pub const REASON_KEY: &str = "anxin-reason";
pub const INDEX_KEY: &str = "anxin-command-index";

/// A refusal on its way to the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub code: Code,
    pub reason: &'static str,
    pub message: String,
    pub index: Option<usize>,
}

impl ApiError {
    pub fn new(code: Code, reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { code, reason, message: message.into(), index: None }
    }

    pub fn invalid(reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(Code::InvalidArgument, reason, message)
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
        let message = match e.index {
            Some(i) => format!("command {i}: {}", e.message),
            None => e.message,
        };
        let mut s = Status::new(e.code, message);
        if let Ok(v) = e.reason.parse() {
            s.metadata_mut().insert(REASON_KEY, v);
        }
        if let Some(i) = e.index {
            if let Ok(v) = i.to_string().parse() {
                s.metadata_mut().insert(INDEX_KEY, v);
            }
        }
        s
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
        };
        ApiError { code, reason: r.rejection.code(), message: r.rejection.to_string(), index: r.index }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        tracing::error!(error = %e, code = e.code(), "fault while serving a request");
        let code = match e {
            StoreError::Corruption { .. } | StoreError::Chain(_) => Code::DataLoss,
            StoreError::DiskFull { .. } => Code::ResourceExhausted,
            _ => Code::Unavailable,
        };
        ApiError::new(code, e.code(), e.to_string())
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
