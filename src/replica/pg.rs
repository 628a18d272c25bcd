//! What the replicated ledger keeps in PostgreSQL, and the statements on it.
//!
//! Two tables per database, shared by every ledger (county) it carries:
//! - `anxin_ledger`: one row per ledger: the lease (`epoch`, `leader`, `address`,
//!   `lease_until`, on the database's clock) and the tip of its frames (`frames`,
//!   `last_seq`, `head`).
//! - `anxin_frame`: one row per frame: `(ledger, frame_no)`, its first and last sequence
//!   numbers, the chain head before it (`prev_head`) and after it (`head`), the epoch of
//!   the leader that wrote it, and its records (`u32` length, then the canonical bytes,
//!   for each).
//!
//! A trigger on `anxin_frame` is the history's guard, in the database itself: a frame is
//! inserted only if it is the next one (`frame_no`, `first_seq`) and starts at the tip's
//! head (`prev_head`), and only by the current lease holder (`epoch`) while the lease
//! runs; it then moves the tip. Frames are never updated or deleted. So neither a bug of
//! ours nor an old leader resumed after a pause can fork the history there.

use std::time::Duration;

use postgres::{Client, NoTls};

use crate::chain::record::Hash;

/// The schema, created if missing (idempotent; one transaction).
const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS anxin_ledger (
    ledger      text PRIMARY KEY,
    epoch       bigint NOT NULL DEFAULT 0,
    leader      text,
    address     text,
    lease_until timestamptz NOT NULL DEFAULT '-infinity',
    frames      bigint NOT NULL DEFAULT 0,
    last_seq    bigint NOT NULL DEFAULT 0,
    head        bytea NOT NULL,
    public_key  bytea NOT NULL
);
CREATE TABLE IF NOT EXISTS anxin_frame (
    ledger    text NOT NULL REFERENCES anxin_ledger (ledger),
    frame_no  bigint NOT NULL,
    first_seq bigint NOT NULL,
    last_seq  bigint NOT NULL,
    prev_head bytea NOT NULL,
    head      bytea NOT NULL,
    epoch     bigint NOT NULL,
    records   bytea NOT NULL,
    PRIMARY KEY (ledger, frame_no)
);
ALTER TABLE anxin_frame ALTER COLUMN records SET STORAGE EXTERNAL;
CREATE OR REPLACE FUNCTION anxin_frame_append() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE l anxin_ledger%ROWTYPE;
BEGIN
    SELECT * INTO l FROM anxin_ledger WHERE ledger = NEW.ledger FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'ANXIN_UNKNOWN_LEDGER: %', NEW.ledger;
    END IF;
    IF NEW.epoch <> l.epoch OR l.lease_until <= clock_timestamp() THEN
        RAISE EXCEPTION 'ANXIN_FENCED: epoch % does not hold the lease (epoch %, until %)', NEW.epoch, l.epoch, l.lease_until;
    END IF;
    IF NEW.frame_no <> l.frames + 1 OR NEW.first_seq <> l.last_seq + 1 OR NEW.last_seq < NEW.first_seq OR NEW.prev_head <> l.head THEN
        RAISE EXCEPTION 'ANXIN_FORK: frame % (records % to %) does not follow frame % (record %)', NEW.frame_no, NEW.first_seq, NEW.last_seq, l.frames, l.last_seq;
    END IF;
    UPDATE anxin_ledger SET frames = NEW.frame_no, last_seq = NEW.last_seq, head = NEW.head WHERE ledger = NEW.ledger;
    PERFORM pg_notify('anxin_frames', NEW.ledger);
    RETURN NEW;
END $$;
CREATE OR REPLACE FUNCTION anxin_frame_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ANXIN_IMMUTABLE: frames are never changed or deleted';
END $$;
DROP TRIGGER IF EXISTS anxin_frame_append ON anxin_frame;
CREATE TRIGGER anxin_frame_append BEFORE INSERT ON anxin_frame FOR EACH ROW EXECUTE FUNCTION anxin_frame_append();
DROP TRIGGER IF EXISTS anxin_frame_immutable ON anxin_frame;
CREATE TRIGGER anxin_frame_immutable BEFORE UPDATE OR DELETE ON anxin_frame FOR EACH ROW EXECUTE FUNCTION anxin_frame_immutable();
"#;

/// Why talking to the database failed.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The lease is another's (or ran out): the frame was refused, nothing was written.
    #[error("fenced: {0}")]
    Fenced(String),
    /// The frame does not follow the database's tip: refused, nothing was written.
    #[error("the frame does not follow the database's history: {0}")]
    Fork(String),
    /// The database answered with an error: nothing was written.
    #[error("the database refused: {0}")]
    Refused(String),
    /// The connection failed; for a commit, whether it happened is not known.
    #[error("the database could not be reached: {0}")]
    Connection(String),
    #[error("{0}")]
    Setup(String),
}

impl From<postgres::Error> for PgError {
    fn from(e: postgres::Error) -> PgError {
        if let Some(db) = e.as_db_error() {
            let m = db.message().to_owned();
            if m.starts_with("ANXIN_FENCED") {
                return PgError::Fenced(m);
            }
            if m.starts_with("ANXIN_FORK") {
                return PgError::Fork(m);
            }
            return PgError::Refused(m);
        }
        PgError::Connection(e.to_string())
    }
}

/// A frame as the database holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameRow {
    pub frame_no: i64,
    pub first_seq: u64,
    pub last_seq: u64,
    pub prev_head: Hash,
    pub head: Hash,
    pub epoch: i64,
    /// The records' canonical bytes.
    pub records: Vec<Vec<u8>>,
}

/// The ledger's row: the lease and the tip.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerRow {
    pub epoch: i64,
    pub leader: Option<String>,
    pub address: Option<String>,
    /// The lease runs (on the database's clock).
    pub lease_valid: bool,
    pub frames: i64,
    pub last_seq: u64,
    pub head: Hash,
}

/// Packs records as the `records` column holds them.
pub fn pack(records: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(records.iter().map(|r| r.len() + 4).sum());
    for r in records {
        out.extend_from_slice(&(r.len() as u32).to_be_bytes());
        out.extend_from_slice(r);
    }
    out
}

/// Unpacks the `records` column; `None` if it is not whole.
pub fn unpack(bytes: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let len = u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?) as usize;
        at += 4;
        out.push(bytes.get(at..at + len)?.to_vec());
        at += len;
    }
    Some(out)
}

fn hash_of(v: &[u8]) -> Result<Hash, PgError> {
    v.try_into().map_err(|_| PgError::Refused(format!("a hash of {} bytes in the database", v.len())))
}

/// Connects to the first of `dsns` that is a primary (accepts writes).
///
/// # Errors
/// `Connection` if none is.
pub fn connect_primary(dsns: &[String], timeout: Duration) -> Result<Client, PgError> {
    connect_watching(dsns, timeout, None)
}

/// `connect_primary`, raising `cancelled` when the server warns that a commit stopped
/// waiting for the synchronous standby (a cancel or a timeout: the commit then returns
/// success although only the primary holds it).
///
/// # Errors
/// As `connect_primary`.
pub fn connect_watching(dsns: &[String], timeout: Duration, cancelled: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>) -> Result<Client, PgError> {
    let mut why = Vec::new();
    for dsn in dsns {
        let mut config: postgres::Config = match dsn.parse() {
            Ok(c) => c,
            Err(e) => return Err(PgError::Setup(format!("{dsn:?} is not a PostgreSQL connection string: {e}"))),
        };
        config.connect_timeout(timeout);
        config.keepalives_idle(Duration::from_secs(5));
        if let Some(flag) = cancelled.clone() {
            config.notice_callback(move |notice| {
                if notice.message().contains("wait for synchronous replication") {
                    flag.store(true, std::sync::atomic::Ordering::Release);
                }
            });
        }
        match config.connect(NoTls) {
            Ok(mut c) => match c.query_one("SELECT pg_is_in_recovery()", &[]) {
                Ok(row) if !row.get::<_, bool>(0) => return Ok(c),
                Ok(_) => why.push(format!("{}: a standby", redact(dsn))),
                Err(e) => why.push(format!("{}: {e}", redact(dsn))),
            },
            Err(e) => why.push(format!("{}: {e}", redact(dsn))),
        }
    }
    Err(PgError::Connection(format!("no primary among the databases given ({})", why.join("; "))))
}

/// Settings of a session that commits frames or holds the lease: commits wait for the
/// standby (never cut short by a timeout set on the role), and a transaction left open by
/// a paused or cut-off node is ended by the server within `lease`, so that its lock on
/// the ledger's row never blocks a takeover for long.
///
/// # Errors
/// As the database's.
pub fn configure_session(c: &mut Client, lease: Duration, commits_frames: bool) -> Result<(), PgError> {
    let ms = lease.as_millis().max(100);
    // The sink waits for the standby as long as it takes (a cancelled wait is noticed:
    // `connect_watching`). The driver's lease updates do not wait for it: the fencing is
    // the epoch every frame insert checks on whichever primary there is, so a lease
    // update a failover loses can only shorten a lease, never let two leaders write; and
    // a dead standby never hangs the driver or a shutdown. Its statements give up within
    // two leases.
    let (commit, statement) = if commits_frames { ("on", 0) } else { ("local", ms * 2) };
    c.batch_execute(&format!(
        "SET synchronous_commit = {commit}; SET statement_timeout = {statement}; SET idle_in_transaction_session_timeout = {ms}; SET lock_timeout = {}",
        ms * 2
    ))?;
    Ok(())
}

/// Whether the database's commits wait for a synchronous standby now.
///
/// # Errors
/// As the database's.
pub fn synchronous(c: &mut Client) -> Result<(bool, String), PgError> {
    let names: String = c.query_one("SHOW synchronous_standby_names", &[])?.get(0);
    // The server's (and role's) setting, not this session's own (the driver's sessions
    // set theirs to `local`; the sink's to `on`).
    let commit: String = c.query_one("SELECT reset_val FROM pg_settings WHERE name = 'synchronous_commit'", &[])?.get(0);
    let sync = !names.trim().is_empty() && matches!(commit.as_str(), "on" | "remote_apply");
    Ok((sync, format!("synchronous_standby_names = {names:?}, synchronous_commit = {commit:?}")))
}

/// A connection string without its password, for messages.
pub fn redact(dsn: &str) -> String {
    dsn.split_whitespace().map(|kv| if kv.starts_with("password=") { "password=***" } else { kv }).collect::<Vec<_>>().join(" ")
}

/// Creates the tables and triggers if missing, and checks that commits wait for a
/// synchronous standby (unless `allow_async`).
///
/// # Errors
/// `Setup` naming what is missing.
pub fn prepare(c: &mut Client, allow_async: bool) -> Result<(), PgError> {
    // One at a time across nodes starting together (DDL races on CREATE IF NOT EXISTS).
    let mut tx = c.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock(7311)", &[])?;
    tx.batch_execute(SCHEMA)?;
    tx.batch_execute(super::salts::SCHEMA)?;
    tx.commit()?;
    let (sync, settings) = synchronous(c)?;
    if !sync {
        if !allow_async {
            return Err(PgError::Setup(format!(
                "the database does not wait for a synchronous standby ({settings}): an acknowledged batch would live on one machine; set them, or allow_async = true to run anyway"
            )));
        }
        tracing::warn!(settings = %settings, "allow_async: commits do not wait for a standby; losing the database's primary can lose acknowledged batches");
    }
    Ok(())
}

/// Registers `ledger` (its genesis head and the public key its checkpoints are signed
/// with) if the database does not know it yet; a node whose key is another refuses to
/// join (the nodes of one ledger share its key: auditors pin one).
///
/// # Errors
/// `Setup` for another key; as the database's.
pub fn register(c: &mut Client, ledger: &str, genesis: &Hash, public_key: &[u8; 32]) -> Result<(), PgError> {
    c.execute("INSERT INTO anxin_ledger (ledger, head, public_key) VALUES ($1, $2, $3) ON CONFLICT (ledger) DO NOTHING", &[&ledger, &genesis.as_slice(), &public_key.as_slice()])?;
    let theirs: Vec<u8> = c.query_one("SELECT public_key FROM anxin_ledger WHERE ledger = $1", &[&ledger])?.get(0);
    if theirs != public_key {
        return Err(PgError::Setup(format!(
            "ledger {ledger:?} in the database is signed by ed25519:{}, this node's key is ed25519:{}: the nodes of one ledger share its signing key (signing_key = the same file on every node)",
            hex::encode(&theirs),
            hex::encode(public_key)
        )));
    }
    Ok(())
}

/// The ledger's row.
///
/// # Errors
/// `Setup` if the ledger is not registered.
pub fn ledger_row(c: &mut Client, ledger: &str) -> Result<LedgerRow, PgError> {
    let row = c
        .query_opt("SELECT epoch, leader, address, lease_until > clock_timestamp(), frames, last_seq, head FROM anxin_ledger WHERE ledger = $1", &[&ledger])?
        .ok_or_else(|| PgError::Setup(format!("ledger {ledger:?} is not in the database")))?;
    Ok(LedgerRow {
        epoch: row.get(0),
        leader: row.get(1),
        address: row.get(2),
        lease_valid: row.get(3),
        frames: row.get(4),
        last_seq: row.get::<_, i64>(5) as u64,
        head: hash_of(row.get::<_, &[u8]>(6))?,
    })
}

/// Takes the lease if it ran out (or is already this node's): a new epoch. Returns it,
/// or `None` if another node holds a running lease.
///
/// # Errors
/// As the database's.
pub fn try_acquire(c: &mut Client, ledger: &str, node: &str, address: &str, lease: Duration) -> Result<Option<i64>, PgError> {
    let ms = lease.as_millis() as i64;
    let row = c.query_opt(
        "UPDATE anxin_ledger SET epoch = epoch + 1, leader = $2, address = $3, lease_until = clock_timestamp() + $4 * interval '1 millisecond'
         WHERE ledger = $1 AND (lease_until <= clock_timestamp() OR leader = $2) RETURNING epoch",
        &[&ledger, &node, &address, &(ms as f64)],
    )?;
    Ok(row.map(|r| r.get(0)))
}

/// Extends the lease of `epoch`. `false`: it is no longer this epoch's.
///
/// # Errors
/// As the database's.
pub fn renew(c: &mut Client, ledger: &str, epoch: i64, lease: Duration) -> Result<bool, PgError> {
    let ms = lease.as_millis() as i64;
    let n = c.execute(
        "UPDATE anxin_ledger SET lease_until = clock_timestamp() + $3 * interval '1 millisecond' WHERE ledger = $1 AND epoch = $2 AND lease_until > clock_timestamp()",
        &[&ledger, &epoch, &(ms as f64)],
    )?;
    Ok(n == 1)
}

/// Gives the lease up (a clean shutdown): another node need not wait for it to run out.
///
/// # Errors
/// As the database's.
pub fn release(c: &mut Client, ledger: &str, epoch: i64) -> Result<(), PgError> {
    c.execute("UPDATE anxin_ledger SET lease_until = '-infinity' WHERE ledger = $1 AND epoch = $2", &[&ledger, &epoch])?;
    Ok(())
}

/// Inserts `frames` (consecutive, from `first_frame_no`) in one transaction, as the
/// leader of `epoch`. Returns once the commit returned: with a synchronous standby, once
/// it has flushed them.
///
/// # Errors
/// `Fenced` / `Fork` / `Refused`: nothing was written. `Connection`: not known.
pub fn insert_frames(c: &mut Client, ledger: &str, epoch: i64, first_frame_no: i64, frames: &[FrameRow]) -> Result<(), PgError> {
    let mut tx = c.transaction()?;
    let stmt = tx.prepare("INSERT INTO anxin_frame (ledger, frame_no, first_seq, last_seq, prev_head, head, epoch, records) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")?;
    for (i, f) in frames.iter().enumerate() {
        let packed = pack(&f.records);
        tx.execute(&stmt, &[&ledger, &(first_frame_no + i as i64), &(f.first_seq as i64), &(f.last_seq as i64), &f.prev_head.as_slice(), &f.head.as_slice(), &epoch, &packed])?;
    }
    // The trigger refuses at INSERT: an error at COMMIT (a shutdown or a cancelled wait
    // for the standby after the local commit) leaves the outcome unknown.
    tx.commit().map_err(|e| PgError::Connection(format!("the commit did not return: {e}")))?;
    Ok(())
}

/// Frames after `frame_no`, at most `limit`, in order.
///
/// # Errors
/// As the database's; `Refused` for a row that does not unpack.
pub fn frames_after(c: &mut Client, ledger: &str, frame_no: i64, limit: i64) -> Result<Vec<FrameRow>, PgError> {
    let rows = c.query(
        "SELECT frame_no, first_seq, last_seq, prev_head, head, epoch, records FROM anxin_frame WHERE ledger = $1 AND frame_no > $2 ORDER BY frame_no LIMIT $3",
        &[&ledger, &frame_no, &limit],
    )?;
    rows.iter()
        .map(|r| {
            let frame_no: i64 = r.get(0);
            Ok(FrameRow {
                frame_no,
                first_seq: r.get::<_, i64>(1) as u64,
                last_seq: r.get::<_, i64>(2) as u64,
                prev_head: hash_of(r.get::<_, &[u8]>(3))?,
                head: hash_of(r.get::<_, &[u8]>(4))?,
                epoch: r.get(5),
                records: unpack(r.get::<_, &[u8]>(6)).ok_or_else(|| PgError::Refused(format!("frame {frame_no}: its records are not whole")))?,
            })
        })
        .collect()
}

/// The frame holding record `seq`, if the database has it: (frame_no, last_seq).
///
/// # Errors
/// As the database's.
pub fn frame_holding(c: &mut Client, ledger: &str, seq: u64) -> Result<Option<(i64, u64)>, PgError> {
    let row = c.query_opt("SELECT frame_no, last_seq FROM anxin_frame WHERE ledger = $1 AND first_seq <= $2 AND last_seq >= $2", &[&ledger, &(seq as i64)])?;
    Ok(row.map(|r| (r.get(0), r.get::<_, i64>(1) as u64)))
}
