//! Every bound the ledger enforces, in one place, each with why it has its value.
//!
//! A bound exists so that no input, however hostile, can make the ledger allocate
//! without limit, hold its single writer for long, or write a record that a verifier
//! in another language would struggle to read. Changing a value here never changes
//! the canonical format; it only changes what is accepted.

/// Largest amount of money one command may move, in fen: ¥1,000,000,000,000.00 (10^12 yuan).
/// The largest construction contracts are ~10^11 yuan; 10^12 leaves headroom while keeping
/// sums of millions of amounts far from `i64::MAX` (9.2 * 10^18 fen).
pub const AMOUNT_FEN_MAX: i64 = 100_000_000_000_000;

/// Seconds between two scrubs of the whole log, the Merkle files and the newest snapshot
/// (after the one at every start): how long a byte damaged at rest may go unnoticed, plus
/// one pass (about 4 s per million records here). An hour keeps the scrub's share of the
/// disk and one core small; `anxind`'s `scrub_interval_s` changes it.
pub const SCRUB_INTERVAL_S: u64 = 3_600;

/// Largest running total (a balance, a project's progress total) the rules let the ledger
/// reach, in fen: 1,000 times the largest amount. An amount recorded from a total (a
/// released deposit, a closing residual) is at most this, so it is also the bound every
/// `Money` read back from bytes is checked against.
pub const TOTAL_FEN_MAX: i64 = AMOUNT_FEN_MAX * 1_000;

/// Commands in one atomic batch. A bank's month-end payroll run for a large project is a few
/// thousand payouts; 10,000 keeps one batch under ~3 MB of records and the writer's
/// per-batch undo journal small.
pub const BATCH_COMMANDS_MAX: usize = 10_000;

/// Lines in one payroll (工资支付表). The largest sites employ a few thousand workers.
pub const PAYROLL_LINES_MAX: usize = 5_000;

/// Payees in one county-ordered deposit drawdown.
pub const DRAWDOWN_PAYEES_MAX: usize = 5_000;

/// Workers named in one case (a mass complaint of a whole site's crews).
pub const CASE_WORKERS_MAX: usize = 5_000;

/// Payout records one case closure cites.
pub const CASE_PAYOUTS_MAX: usize = 10_000;

/// Bytes of a free-text field (project name, account number, document numbers).
/// Names of Chinese projects run to ~60 characters (180 bytes of UTF-8).
pub const TEXT_BYTES_MAX: usize = 256;

/// Bytes of an identifier chosen by a client (project id, request id, payment number).
pub const ID_BYTES_MAX: usize = 64;

/// Bytes of one encoded record. The largest legitimate record is a payroll of
/// `PAYROLL_LINES_MAX` lines at ~120 bytes each (~600 KB); the decoder refuses more, so
/// corrupted length fields cannot make it allocate gigabytes.
pub const RECORD_BYTES_MAX: usize = 1 << 20;

/// Bytes of one log frame (a group commit). Bounded so that recovery reads a frame into
/// memory in one piece; a group commit that would exceed it is split into several frames.
pub const FRAME_BYTES_MAX: usize = 64 << 20;

/// Encoded bytes of the records of one batch. A batch never spans two log frames (so
/// recovery rebuilds idempotency entries frame by frame); a batch whose records would
/// exceed this is refused as too large.
pub const BATCH_BYTES_MAX: usize = 32 << 20;

/// A log segment is closed and a new one started once it passes this size, so that a
/// segment can be copied, checksummed or archived in one piece.
pub const SEGMENT_BYTES_MAX: u64 = 256 << 20;

/// Evidence sequence numbers carried by one flag: enough to point a clerk at the
/// events, bounded so a long-running flag does not grow without limit.
pub const FLAG_EVIDENCE_MAX: usize = 32;

/// Submissions waiting for the writer. A full queue pushes back on submitters instead of
/// growing memory without bound.
pub const WRITER_QUEUE_DEPTH: usize = 1_024;

/// How often the writer flushes the sled index at most. The index is derived: what a
/// crash loses of it is replayed from the log on restart, so this bounds restart work,
/// not durability.
pub const INDEX_FLUSH_INTERVAL_MS: u64 = 500;

/// The writer snapshots the projections after this many records (and on close), so a
/// restart after a crash replays at most about this many (plus what came while a
/// snapshot was being written). A periodic snapshot costs the writer only a fork (a child
/// process writes it), but the child takes the other core for 0.6-4.5 s at 1-9M events.
pub const SNAPSHOT_RECORDS: u64 = 1_000_000;

/// Free space the data directory's file system must keep: below it the writer refuses
/// new batches (RESOURCE_EXHAUSTED, reason DISK_FULL) before changing anything, so the
/// index, the Merkle files, checkpoints and snapshots still have room to follow the
/// records already acknowledged. Accepting resumes by itself once space returns.
/// `anxind` config `min_free_bytes`.
pub const MIN_FREE_BYTES: u64 = 64 << 20;

/// Bytes of one gRPC message. A full batch of 10,000 payouts is ~2 MB of protobuf and a
/// 5,000-line payroll ~0.5 MB; 16 MiB leaves room without letting one client pin memory.
pub const MESSAGE_BYTES_MAX: usize = 16 << 20;

/// Calls in flight at once for one principal (unary calls, and streams while open);
/// more are refused with RESOURCE_EXHAUSTED / TOO_MANY_CALLS. `anxind` config
/// `calls_per_principal`. The benchmark's 64 clients sharing one token fit.
pub const CALLS_PER_PRINCIPAL_MAX: usize = 128;

/// A call's handler must answer within this (streams: must start); a client's shorter
/// `grpc-timeout` wins. Long-lived streams (Subscribe) are not cut by it.
pub const CALL_TIMEOUT_S: u64 = 60;

/// TCP keepalive on accepted connections, with HTTP/2 pings every 30 s answered within
/// 20 s: a peer that vanished is dropped within about a minute. A live connection with
/// no call is kept: a Subscribe stream may rightly be quiet for hours.
pub const TCP_KEEPALIVE_S: u64 = 60;

/// On SIGTERM, calls in flight get this long to finish before the server cuts them
/// (a live Subscribe never ends by itself) and closes the ledger.
pub const SHUTDOWN_GRACE_S: u64 = 10;

/// Concurrent HTTP/2 streams (calls) on one connection.
pub const STREAMS_PER_CONNECTION_MAX: u32 = 256;

/// Batches in flight on one SubmitStream before the server stops reading more from it.
pub const STREAM_BATCHES_IN_FLIGHT_MAX: usize = 64;

/// Records buffered per ReadEvents or Subscribe stream: a client that reads slowly
/// only fills its own buffer; it never holds up the writer.
pub const STREAM_RECORDS_BUFFER: usize = 1_024;

/// Records read from the log per step of a ReadEvents or Subscribe stream.
pub const STREAM_READ_CHUNK: u64 = 4_096;

/// A new signed checkpoint after a group commit at most this often: under heavy load one
/// Ed25519 signature per 100 ms costs nothing measurable, and an auditor never waits
/// longer than this for a checkpoint that covers an acknowledged record (and can ask for
/// one on demand).
pub const CHECKPOINT_INTERVAL_MS: u64 = 100;

/// How long a read that asks for at least a sequence number (`anxin-min-seq`) waits for
/// this node to hold it (a follower catching up), unless the call's deadline is sooner.
pub const MIN_SEQ_WAIT_MS: u64 = 5_000;

/// Rows in one page of a listing when the client does not say.
pub const PAGE_ROWS_DEFAULT: usize = 100;

/// Rows in one page of a listing.
pub const PAGE_ROWS_MAX: usize = 1_000;

const _: () = assert!(PAYROLL_LINES_MAX <= BATCH_COMMANDS_MAX);
const _: () = assert!(RECORD_BYTES_MAX < BATCH_BYTES_MAX);
const _: () = assert!(BATCH_BYTES_MAX < FRAME_BYTES_MAX);
const _: () = assert!((FRAME_BYTES_MAX as u64) < SEGMENT_BYTES_MAX);
// Sum of a full batch of maximal amounts stays representable.
const _: () = assert!((BATCH_COMMANDS_MAX as i64) * AMOUNT_FEN_MAX < i64::MAX);
// Totals stay far from overflow when a batch's amounts are added to one.
const _: () = assert!(TOTAL_FEN_MAX < i64::MAX / 4);
