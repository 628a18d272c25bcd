//! Snapshots of the projections: the whole state as of one record, in one file.
//!
//! The projections live in memory and are derived from the log, so they need not be
//! written as they change: the writer writes a snapshot every `SNAPSHOT_RECORDS` records
//! (off the acknowledgement path, after a group commit) and when the ledger closes, and
//! recovery loads the newest snapshot that is whole and replays only the log after it.
//! A snapshot is never the truth: a damaged, forged or missing one costs a longer replay,
//! never a wrong balance. Its MAC is keyed with a key derived from the ledger's signing
//! key (`SnapshotKey`), which is not in the snapshot's directory, so a holder of the
//! snapshots alone cannot make one that is believed; the record the replay resumes after
//! must hash to the chain head it names; and the scrub replays the log up to it and
//! compares (`crate::ledger`).
//!
//! `snapshots/state-<seq, 20 digits>.snap` (0600, written to `.tmp`, fsync'd, renamed):
//!
//! | bytes | what |
//! |---|---|
//! | 8 | magic `ANXSNAP1` |
//! | var | `SnapshotHeader`, then each table of `State::write_to` (bincode 2, big-endian, fixed-width integers, no length limit) |
//! | 32 | BLAKE3 keyed with the `SnapshotKey` (BLAKE3-derive `anxin v1 snapshot key` of the signing key's seed), of every byte before it |

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::chain::record::Hash;
use crate::projection::state::State;

use super::log::Position;
use super::StoreError;

pub const MAGIC: &[u8; 8] = b"ANXSNAP1";
/// BLAKE3 derive-key context of the snapshot MAC key, from the signing key's seed.
pub const SNAPSHOT_KEY_CONTEXT: &str = "anxin v1 snapshot key";

/// The key of the snapshots' MAC: derived from the signing key's seed, kept beside it
/// (`keys/`), never in `snapshots/`.
#[derive(Clone, Copy)]
pub struct SnapshotKey([u8; 32]);

impl SnapshotKey {
    pub fn from_signing_seed(seed: &[u8; 32]) -> SnapshotKey {
        SnapshotKey(blake3::derive_key(SNAPSHOT_KEY_CONTEXT, seed))
    }
}
/// 6: each order's referral outcomes (`WageOrder::outcomes`); 5: the county's casework (cases, citations, orders, listings, inspections, card
/// counts: issue 17); 4: the state holds every account's and payee's posting history, and each fact's
/// record and value date (`projection::history`, `projection::when`); 3: a keyed MAC
/// instead of an unkeyed checksum (2: the fingerprint set holds every external number,
/// `crate::domain::numbers`). An older snapshot is ignored and the log replayed.
pub const SNAPSHOT_VERSION: u16 = 6;
/// Snapshots kept: the newest and the one before (in case the newest is damaged).
const KEEP: usize = 2;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotHeader {
    pub version: u16,
    pub ledger_id: String,
    /// Every record up to and including `seq` is in the state, none after.
    pub seq: u64,
    /// The hash of record `seq` (the genesis hash when `seq` is 0).
    pub head: Hash,
    /// Where the log continues after record `seq`.
    pub log_end: (u64, u64),
}

impl SnapshotHeader {
    pub fn log_end(&self) -> Position {
        Position { segment: self.log_end.0, offset: self.log_end.1 }
    }
}

type Config = bincode::config::Configuration<bincode::config::BigEndian, bincode::config::Fixint, bincode::config::NoLimit>;

fn config() -> Config {
    bincode::config::standard().with_big_endian().with_fixed_int_encoding().with_no_limit()
}

struct Hashing<T> {
    inner: T,
    hasher: blake3::Hasher,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn dir_of(data: &Path) -> PathBuf {
    data.join("snapshots")
}

fn name(seq: u64) -> String {
    format!("state-{seq:020}.snap")
}

/// The snapshots in `data`, newest first: (seq, path).
pub fn list(data: &Path) -> Result<Vec<(u64, PathBuf)>, StoreError> {
    let dir = dir_of(data);
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir)? {
        let e = e?;
        let n = e.file_name();
        let Some(n) = n.to_str() else { continue };
        if let Some(seq) = n.strip_prefix("state-").and_then(|r| r.strip_suffix(".snap")).and_then(|d| d.parse::<u64>().ok()) {
            out.push((seq, e.path()));
        }
    }
    out.sort_by_key(|s| std::cmp::Reverse(s.0));
    Ok(out)
}

/// Writes a snapshot of `state` as of `header.seq` and removes all but the newest `KEEP`.
/// Returns its size in bytes.
///
/// # Errors
/// `StoreError::Io` if it cannot be written; an older snapshot then stays the newest.
pub fn write(data: &Path, header: &SnapshotHeader, state: &State, key: &SnapshotKey) -> Result<u64, StoreError> {
    let (dir, tmp, path) = paths(data, header.seq)?;
    // A snapshot that cannot be finished (a full disk) must not keep its space.
    let size = match write_file(&tmp, header, state, key) {
        Ok(size) => size,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    install(data, &dir, &tmp, &path, &header.ledger_id)?;
    Ok(size)
}

/// The snapshots' directory (created), and the temporary and final paths of the
/// snapshot of record `seq` (no stale temporary file left).
fn paths(data: &Path, seq: u64) -> Result<(PathBuf, PathBuf, PathBuf), StoreError> {
    let dir = dir_of(data);
    crate::fsutil::create_private_dir(&dir)?;
    let path = dir.join(name(seq));
    let tmp = dir.join(format!("{}.tmp", name(seq)));
    // Whatever an earlier writer left unfinished (a crash, a killed child): one snapshot
    // is written at a time, so no other is being written now.
    for e in std::fs::read_dir(&dir)?.flatten() {
        if e.file_name().to_str().is_some_and(|n| n.starts_with("state-") && n.ends_with(".snap.tmp")) {
            let _ = std::fs::remove_file(e.path());
        }
    }
    Ok((dir, tmp, path))
}

/// Makes a written temporary file the newest snapshot, and removes all but `KEEP`.
fn install(data: &Path, dir: &Path, tmp: &Path, path: &Path, ledger_id: &str) -> Result<(), StoreError> {
    crate::failpoint::pass("snapshot.write", ledger_id)?;
    std::fs::rename(tmp, path)?;
    crate::fsutil::sync_dir(dir)?;
    for (_, old) in list(data)?.into_iter().skip(KEEP) {
        let _ = std::fs::remove_file(old);
    }
    Ok(())
}

/// A child process gets this long to write a snapshot before the kernel ends it
/// (`alarm`): a child that hangs must not hold a snapshot back forever.
const CHILD_SECONDS_MAX: u32 = 900;

/// The child's niceness: it yields the CPU to the server when both want it.
const CHILD_NICE: libc::c_int = 10;

/// A snapshot being written by a child process (`write_in_child`).
pub struct Pending {
    /// The record it reflects.
    pub seq: u64,
    /// The child, as a pidfd: a signal through it reaches the child or nothing, never a
    /// process that took its pid after the finishing thread reaped it.
    pidfd: Option<std::os::fd::OwnedFd>,
    started: std::time::Instant,
    done: std::thread::JoinHandle<Result<u64, StoreError>>,
}

impl Pending {
    pub fn is_finished(&self) -> bool {
        self.done.is_finished()
    }

    /// Ends the child now (SIGKILL) and waits for it: nothing is installed, its file is
    /// removed.
    pub fn abandon(self) {
        if let Some(fd) = &self.pidfd {
            use std::os::fd::AsRawFd;
            // SAFETY: pidfd_send_signal(2) on a pidfd we own; no siginfo, no flags. If
            // the child is gone already it fails with ESRCH, which is fine.
            unsafe {
                libc::syscall(libc::SYS_pidfd_send_signal, fd.as_raw_fd(), libc::SIGKILL, std::ptr::null::<libc::siginfo_t>(), 0);
            }
        }
        let _ = self.wait();
    }

    /// Waits for it: its size in bytes once it is the newest snapshot, and how long it took.
    ///
    /// # Errors
    /// Why it was not written; an older snapshot then stays the newest.
    pub fn wait(self) -> Result<(u64, std::time::Duration), StoreError> {
        let size = self.done.join().map_err(|_| StoreError::Index("the snapshot thread panicked".into()))??;
        Ok((size, self.started.elapsed()))
    }
}

/// Writes a snapshot of `state` like `write`, without holding up the caller for the
/// encoding and the disk: the process forks, and the child, which sees the state as it
/// was at the fork in pages the kernel copies only when the parent changes them, encodes
/// and writes it, syncs it and exits; a thread of the parent waits for the child and
/// installs the file. The caller is held up only for the fork (copying the page tables).
///
/// The child runs only this crate's encoding over memory it owns (no lock of another
/// thread is taken: glibc's allocator is reset in the child by its own fork handlers),
/// writes only its temporary file, never returns into the parent's code (`_exit`), dies
/// with the thread that forked it (`PR_SET_PDEATHSIG`: the writer, which waits for its
/// child before it ends) and within `CHILD_SECONDS_MAX` (`alarm`).
///
/// The file is installed only if `still_whole` says so once the child is done (the
/// ledger found no damage and no fault meanwhile).
///
/// # Errors
/// `StoreError::Io` if the process cannot fork.
pub fn write_in_child(data: &Path, header: &SnapshotHeader, state: &State, key: &SnapshotKey, still_whole: Box<dyn FnOnce() -> Result<(), String> + Send>) -> Result<Pending, StoreError> {
    let (dir, tmp, path) = paths(data, header.seq)?;
    let started = std::time::Instant::now();
    let parent = std::process::id();
    // Decided here: the child takes no lock (see above).
    let injected = crate::failpoint::fires("snapshot.child", &header.ledger_id);
    // SAFETY: `fork` itself is always sound to call; what the child may do after it in a
    // multi-threaded process is restricted, and the child below does only what the doc
    // comment lists, then `_exit`s without unwinding into the parent's frames.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(StoreError::Io(std::io::Error::last_os_error()));
    }
    if pid == 0 {
        // SAFETY: plain system calls of the child on itself.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
            if libc::getppid() as u32 != parent {
                libc::_exit(CHILD_ORPHANED);
            }
            libc::alarm(CHILD_SECONDS_MAX);
            // Background work: the writer and the server's threads come first for the CPU.
            libc::setpriority(libc::PRIO_PROCESS, 0, CHILD_NICE);
            // The server's signal handlers are not the child's: a Ctrl-C or a SIGTERM to
            // the process group ends it.
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGTERM, libc::SIG_DFL);
        }
        let write = || crate::failpoint::act("snapshot.child", injected).map_err(StoreError::Io).and_then(|()| write_file(&tmp, header, state, key));
        let code = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(write)) {
            Ok(Ok(_)) => 0,
            // The parent rebuilds the error from its number (a full disk stays a full disk).
            Ok(Err(StoreError::Io(e))) => e.raw_os_error().filter(|n| (1..CHILD_OTHER).contains(n)).unwrap_or(CHILD_OTHER),
            _ => CHILD_OTHER,
        };
        // SAFETY: ends the child without running the parent's destructors or atexit handlers.
        unsafe { libc::_exit(code) }
    }
    // SAFETY: pidfd_open(2) of our own child, not reaped yet (only the thread below
    // reaps it); a kernel without pidfds gives -1, and the child is then never signalled.
    let pidfd = unsafe {
        use std::os::fd::FromRawFd;
        let fd = libc::syscall(libc::SYS_pidfd_open, pid, 0);
        (fd >= 0).then(|| std::os::fd::OwnedFd::from_raw_fd(fd as std::os::fd::RawFd))
    };
    let data = data.to_owned();
    let ledger_id = header.ledger_id.clone();
    let tmp_left = tmp.clone();
    let done = std::thread::Builder::new().name("anxin-snapshot".into()).spawn(move || {
        let outcome = match wait_child(pid) {
            Ok(0) => match still_whole() {
                Ok(()) => std::fs::metadata(&tmp).map_err(StoreError::Io).and_then(|m| install(&data, &dir, &tmp, &path, &ledger_id).map(|()| m.len())),
                Err(why) => Err(StoreError::Index(format!("the snapshot was not installed: {why}"))),
            },
            Ok(code) if code < CHILD_OTHER => Err(StoreError::Io(std::io::Error::from_raw_os_error(code))),
            Ok(code) => Err(StoreError::Io(std::io::Error::other(format!("the snapshot's child process failed (exit status {code})")))),
            Err(e) => Err(e),
        };
        if outcome.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        outcome
    });
    match done {
        Ok(done) => Ok(Pending { seq: header.seq, pidfd, started, done }),
        Err(e) => {
            // No thread to wait for it: the child is ended and reaped here (not reaped
            // before, so the pid is still the child's), and its file dropped.
            // SAFETY: kill(2) of our own unreaped child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
            let _ = wait_child(pid);
            let _ = std::fs::remove_file(&tmp_left);
            Err(StoreError::Io(e))
        }
    }
}

/// Exit statuses of a snapshot's child beyond an error number.
const CHILD_OTHER: i32 = 200;
const CHILD_ORPHANED: i32 = 201;

/// Waits for the child `pid` to end: its exit status.
fn wait_child(pid: libc::pid_t) -> Result<i32, StoreError> {
    let mut status = 0;
    loop {
        // SAFETY: waits for our own child; `status` is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(StoreError::Io(e));
        }
    }
    if libc::WIFEXITED(status) {
        Ok(libc::WEXITSTATUS(status))
    } else {
        Err(StoreError::Io(std::io::Error::other(format!("the snapshot's child process was ended by signal {}", libc::WTERMSIG(status)))))
    }
}

fn write_file(tmp: &Path, header: &SnapshotHeader, state: &State, key: &SnapshotKey) -> Result<u64, StoreError> {
    let file = crate::fsutil::create_private_file(tmp)?;
    let mut w = Hashing { inner: BufWriter::with_capacity(1 << 20, file), hasher: blake3::Hasher::new_keyed(&key.0) };
    let enc = |e: bincode::error::EncodeError| match e {
        bincode::error::EncodeError::Io { inner, .. } => StoreError::Io(inner),
        other => StoreError::Index(format!("snapshot: {other}")),
    };
    w.write_all(MAGIC)?;
    bincode::serde::encode_into_std_write(header, &mut w, config()).map_err(enc)?;
    state.write_to(&mut w, config()).map_err(enc)?;
    let sum = *w.hasher.finalize().as_bytes();
    let mut inner = w.inner;
    inner.write_all(&sum)?;
    let file = inner.into_inner().map_err(|e| StoreError::Io(e.into_error()))?;
    file.sync_all()?;
    let size = file.metadata()?.len();
    drop(file);
    Ok(size)
}

/// Reads and checks one snapshot file.
///
/// # Errors
/// `StoreError::Corruption` naming the file if it is not a whole, well-formed snapshot
/// of `ledger_id`.
pub fn read(path: &Path, ledger_id: &str, key: &SnapshotKey) -> Result<(SnapshotHeader, State), StoreError> {
    let bad = |why: String| StoreError::Corruption { at: path.display().to_string(), why };
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    if len < (MAGIC.len() + 32) as u64 {
        return Err(bad("shorter than a snapshot".into()));
    }
    // The MAC (the last 32 bytes) is checked first, in large reads, and only bytes it
    // vouches for are decoded: a length prefix the MAC did not check could ask the
    // decoder for any amount of memory (and an allocation that fails aborts the
    // process). The second read comes from the page cache.
    let checksum = {
        let path = path.to_owned();
        let key = key.0;
        (move || -> std::io::Result<bool> {
            let mut f = File::open(&path)?;
            let mut h = blake3::Hasher::new_keyed(&key);
            let mut left = len - 32;
            let mut buf = vec![0u8; 1 << 20];
            while left > 0 {
                let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                f.read_exact(&mut buf[..n])?;
                h.update(&buf[..n]);
                left -= n as u64;
            }
            let mut stored = [0u8; 32];
            f.read_exact(&mut stored)?;
            // Compared in constant time (`blake3::Hash`'s `==`).
            Ok(h.finalize() == blake3::Hash::from(stored))
        })()
    };
    if !checksum? {
        return Err(bad("its MAC does not match: the file is damaged, forged, or made with another signing key".into()));
    }
    let decoded = (|| {
        let mut r = BufReader::with_capacity(1 << 20, file).take(len - 32);
        let mut magic = [0u8; 8];
        r.read_exact(&mut magic)?;
        if &magic != MAGIC {
            return Err(bad("not a snapshot (bad magic)".into()));
        }
        let header: SnapshotHeader = bincode::serde::decode_from_std_read(&mut r, config()).map_err(|e| bad(format!("header: {e}")))?;
        if header.version != SNAPSHOT_VERSION {
            return Err(bad(format!("snapshot version {} is not one this build reads", header.version)));
        }
        if header.ledger_id != ledger_id {
            return Err(bad(format!("snapshot of ledger {:?}, not {ledger_id:?}", header.ledger_id)));
        }
        let state = State::read_from(&mut r, config()).map_err(bad)?;
        if r.limit() != 0 {
            return Err(bad(format!("{} unexpected bytes before the checksum", r.limit())));
        }
        Ok((header, state))
    })();
    decoded
}

/// The newest snapshot of `ledger_id` in `data` that reads back whole, skipping (and
/// reporting) damaged ones.
pub fn load_newest(data: &Path, ledger_id: &str, key: &SnapshotKey) -> Result<Option<(SnapshotHeader, State)>, StoreError> {
    for (_, path) in list(data)? {
        match read(&path, ledger_id, key) {
            Ok(s) => return Ok(Some(s)),
            Err(e) => tracing::warn!(error = %e, "ignoring a snapshot that does not read back; the log is replayed instead"),
        }
    }
    Ok(None)
}
