//! Storage: the log (source of truth) and the sled index (everything derived).
//!
//! Layout of a data directory:
//! - `LEDGER`: the ledger id, written once when the ledger is created.
//! - `log/*.seg`: the append-only log (`log.rs`), fdatasync'd once per group commit.
//! - `index/`: a sled 0.34 database holding the frame index (seq -> position), the
//!   idempotency index and the sequence number, chain head and log position they
//!   reflect, updated in one sled batch per group commit and flushed lazily. It can be
//!   deleted at any time: it is rebuilt from the log.
//! - `snapshots/`: the projections as of one record (`snapshot.rs`), written every
//!   `SNAPSHOT_RECORDS` records and on close; recovery replays the log after the newest.
//! - `merkle/`: the Merkle tree's leaves and subtree roots (`merkle.rs`).
//! - `vault/`: the PII vault (`crate::vault`), which is *not* derived and must be backed up.
//!
//! **Invariant**: only `store` (and `vault`) import sled; only `store::log` touches log files.

pub mod index;
pub mod log;
pub mod merkle;
pub mod snapshot;

use crate::chain::record::ChainError;

/// A fault: the machine or the data failed. Never converted into a rejection. A caller
/// should stop serving writes (fail-stop) and report it; `Corruption` needs an operator.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("index (sled) error: {0} (the index is derived from the log: `anxin rebuild --data DIR` recreates it)")]
    Index(String),
    #[error("corruption at {at}: {why}")]
    Corruption { at: String, why: String },
    #[error("chain does not verify: {0}")]
    Chain(#[from] ChainError),
    #[error("the ledger stopped accepting writes after an earlier fault: {0}")]
    Poisoned(String),
    #[error("the ledger's writer failed ({0}): nothing more is served until the server restarts and recovers from the log")]
    WriterFailed(String),
    #[error("the ledger is read-only: its data is damaged at {0}; reads go on, writes wait for a repair")]
    Damaged(String),
    #[error("data directory: {0}")]
    DataDir(String),
    #[error("the ledger is shut down")]
    Closed,
    #[error("disk full: {free} bytes free where the ledger keeps at least {reserve} in reserve; nothing of this request was recorded, retry when space is freed")]
    DiskFull { free: u64, reserve: u64 },
    #[error("the write could not be made ({0}); nothing of this request was recorded, retry")]
    NotWritten(String),
    #[error("this node does not lead the replicated ledger; {}", match .leader { Some(a) => format!("the leader is at {a}"), None => "no leader is known yet: retry".to_owned() })]
    NotLeader { leader: Option<String> },
    #[error("the database did not confirm the commit ({0}): whether this request was recorded is not known; retry it with the same request id (the next leader answers it from the replicated log)")]
    OutcomeUnknown(String),
    #[error("the replicated ledger's database could not be reached ({0}); nothing of this request was recorded, retry")]
    DatabaseUnavailable(String),
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> StoreError {
        match e {
            // The machine's fault (a full disk, a permission, EIO), not the index's content:
            // an index is set aside and rebuilt only for what it holds (`recovery::recover`).
            sled::Error::Io(e) => StoreError::Io(e),
            e => StoreError::Index(e.to_string()),
        }
    }
}

impl StoreError {
    /// The file system is full (or the quota reached): space may return.
    pub fn is_disk_full(&self) -> bool {
        match self {
            StoreError::Io(e) => matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT)),
            StoreError::DiskFull { .. } => true,
            _ => false,
        }
    }

    /// A stable code for the fault, as for rejections.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::Io(_) => "IO_ERROR",
            StoreError::Index(_) => "INDEX_ERROR",
            StoreError::Corruption { .. } => "CORRUPTION",
            StoreError::Chain(_) => "CHAIN_BROKEN",
            StoreError::Poisoned(_) => "LEDGER_POISONED",
            StoreError::WriterFailed(_) => "WRITER_FAILED",
            StoreError::Damaged(_) => "DAMAGED",
            StoreError::DataDir(_) => "DATA_DIR",
            StoreError::Closed => "SHUT_DOWN",
            StoreError::DiskFull { .. } => "DISK_FULL",
            StoreError::NotWritten(_) => "WRITE_FAILED",
            StoreError::NotLeader { .. } => "NOT_LEADER",
            StoreError::OutcomeUnknown(_) => "OUTCOME_UNKNOWN",
            StoreError::DatabaseUnavailable(_) => "DATABASE_UNAVAILABLE",
        }
    }
}

/// Opens a sled database, waiting up to 10 s for the directory lock.
///
/// sled 0.34 releases its lock file only when its background flusher thread exits,
/// which can be a moment after the last handle is dropped (spacejam/sled#1234, #1289),
/// so a prompt reopen of the same directory (restart, rebuild, tests) can find it still
/// held. Any other error, or a lock still held after the wait, is returned as it is.
pub(crate) fn open_sled(config: &sled::Config) -> Result<sled::Db, StoreError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match config.open() {
            // sled reports the held lock as an `Other` I/O error with this message.
            Err(sled::Error::Io(e)) if e.to_string().starts_with("could not acquire lock") && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            // Held past the wait: another process has this data directory open.
            Err(sled::Error::Io(e)) if e.to_string().starts_with("could not acquire lock") => {
                return Err(StoreError::DataDir(format!("{}: {e} (is another anxind using this data directory?)", config.get_path().display())));
            }
            other => return other.map_err(StoreError::from),
        }
    }
}
