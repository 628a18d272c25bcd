//! Restart, torn tails, lost indexes and damage, on real data directories.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use anxin::domain::command::Command;
use anxin::domain::ids::RequestId;
use anxin::domain::principal::Principal;
use anxin::ledger::{self, Ledger, LedgerOptions, Receipt};
use anxin::store::log;

use crate::common::*;

pub fn opts() -> LedgerOptions {
    LedgerOptions { ledger_id: Some("anxin-test".into()), clock: std::sync::Arc::new(|| 1_767_225_600_000), ..Default::default() }
}

/// The ledger's operator, who may post anything: these tests are about storage, not
/// about who may post what (`tests/it/authority.rs`).
pub fn operator() -> Principal {
    Principal::Operator
}

pub fn rid(s: &str) -> RequestId {
    RequestId::parse(s).unwrap()
}

#[track_caller]
pub fn ok(l: &Ledger, id: &str, cmds: Vec<Command>) -> Receipt {
    l.submit(operator(), rid(id), cmds).expect("no fault").expect("accepted")
}

/// A ledger with a project, two workers and some money movements: 11 records.
fn populate(l: &Ledger) -> Vec<Receipt> {
    let mut out = vec![ok(l, "r1", vec![register("P1"), open_account("P1"), enrol("P1", 1), enrol("P1", 2), contract("P1", 1)])];
    out.push(ok(l, "r2", vec![deposit("P1", "D1", "200000", "2026-01-20"), progress("P1", "G1", "100000", "30000", "2026-02-05")]));
    out.push(ok(l, "r3", vec![payroll("P1", "2026-01", &[(1, "5000"), (2, "6000")])]));
    out.push(ok(l, "r4", vec![pay("P1", "W1", 1, "5000", Some("2026-01")), pay("P1", "W2", 2, "6000", Some("2026-01"))]));
    out.push(ok(l, "r5", vec![topup("P1", "T1", "10.50")]));
    out
}

fn segment(dir: &Path) -> std::path::PathBuf {
    let segs = log::list_segments(&dir.join("log")).unwrap();
    log::segment_path(&dir.join("log"), segs[0])
}

#[test]
fn close_and_reopen_gives_identical_state_and_head_without_replay() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(dir.path(), opts()).unwrap();
    populate(&l);
    let (entries, head) = (l.state().unwrap().entries(), l.head());
    assert_eq!(head.0, 11);
    l.close().unwrap();
    let l = Ledger::open(dir.path(), opts()).unwrap();
    assert_eq!(l.head(), head);
    assert!(l.state().unwrap().entries() == entries);
    assert_eq!(l.recovery().replayed, 0, "a clean close leaves nothing to replay");
    // And it goes on: the next record links to the old head.
    let r = ok(&l, "r6", vec![topup("P1", "T2", "1")]);
    assert_eq!(r.first_seq, 12);
    l.close().unwrap();
    let rep = ledger::verify(dir.path(), &mut |_| {}).unwrap();
    assert_eq!((rep.records, rep.error, rep.index_agrees), (12, None, Some(true)));
}

#[test]
fn retries_return_the_original_answer_even_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(dir.path(), opts()).unwrap();
    let receipts = populate(&l);
    let again = l.submit(operator(), rid("r3"), vec![payroll("P1", "2026-01", &[(1, "5000"), (2, "6000")])]).unwrap().unwrap();
    assert!(again.replayed);
    assert_eq!((again.first_seq, again.last_seq, again.head), (receipts[2].first_seq, receipts[2].last_seq, receipts[2].head));
    l.close().unwrap();
    let l = Ledger::open(dir.path(), opts()).unwrap();
    let again = l.submit(operator(), rid("r4"), vec![pay("P1", "W1", 1, "5000", Some("2026-01")), pay("P1", "W2", 2, "6000", Some("2026-01"))]).unwrap().unwrap();
    assert_eq!((again.first_seq, again.last_seq, again.head, again.replayed), (receipts[3].first_seq, receipts[3].last_seq, receipts[3].head, true));
    let clash = l.submit(operator(), rid("r4"), vec![topup("P1", "T9", "1")]).unwrap().unwrap_err();
    assert_eq!(clash.rejection.code(), "REQUEST_ID_REUSED");
    // The same request id from another principal is another request.
    let other = l.submit(Principal::parse("bank:ICBC").unwrap(), rid("r4"), vec![topup("P1", "T9", "1")]).unwrap().unwrap();
    assert_eq!(other.first_seq, 12);
    assert_eq!(l.head().0, 12, "retries appended nothing");
}

#[test]
fn a_rejected_batch_leaves_no_trace_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(dir.path(), opts()).unwrap();
    populate(&l);
    let before = std::fs::metadata(segment(dir.path())).unwrap().len();
    let mut cmds: Vec<Command> = (0..499).map(|i| topup("P1", &format!("X{i}"), "1")).collect();
    cmds.push(pay("P1", "W9", 9, "1", None));
    let rej = l.submit(operator(), rid("bad"), cmds).unwrap().unwrap_err();
    assert_eq!((rej.index, rej.rejection.code()), (Some(499), "PAYEE_NOT_ENROLLED"));
    assert_eq!(std::fs::metadata(segment(dir.path())).unwrap().len(), before);
    assert_eq!(l.head().0, 11);
    // A retry of the rejected request id with good content is a new request.
    assert_eq!(ok(&l, "bad", vec![topup("P1", "X1", "1")]).first_seq, 12);
}

#[test]
fn a_torn_tail_frame_is_cut_off_and_reported() {
    for torn in [TornKind::CutShort, TornKind::Zeros] {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::open(dir.path(), opts()).unwrap();
        populate(&l);
        let (entries, head) = (l.state().unwrap().entries(), l.head());
        l.close().unwrap();
        let seg = segment(dir.path());
        let good_len = std::fs::metadata(&seg).unwrap().len();
        // What a crash mid-append leaves: part of a frame that was never acknowledged.
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        match torn {
            TornKind::CutShort => f.write_all(&[0, 0, 1, 0, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0, 0, 0, 0, 12, 0, 0]).unwrap(),
            TornKind::Zeros => f.write_all(&[0u8; 4096]).unwrap(),
        }
        drop(f);
        let rep = ledger::verify(dir.path(), &mut |_| {}).unwrap();
        assert_eq!(rep.error, None);
        assert!(rep.torn_tail.is_some(), "verify reports the torn tail");
        let l = Ledger::open(dir.path(), opts()).unwrap();
        let cut = l.recovery().cut.expect("the cut is reported");
        assert_eq!(cut.1, good_len);
        assert_eq!(std::fs::metadata(&seg).unwrap().len(), good_len);
        assert_eq!(l.head(), head);
        assert!(l.state().unwrap().entries() == entries);
        ok(&l, "after", vec![topup("P1", "T2", "1")]);
        l.close().unwrap();
        let rep = ledger::verify(dir.path(), &mut |_| {}).unwrap();
        assert_eq!((rep.records, rep.error, rep.torn_tail), (12, None, None));
    }
}

enum TornKind {
    CutShort,
    Zeros,
}

#[test]
fn a_deleted_index_is_rebuilt_from_the_log_with_identical_projections() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(dir.path(), opts()).unwrap();
    let receipts = populate(&l);
    let (entries, head) = (l.state().unwrap().entries(), l.head());
    l.close().unwrap();
    std::fs::remove_dir_all(dir.path().join("index")).unwrap();
    let l = Ledger::open(dir.path(), opts()).unwrap();
    // The projections come from the closing snapshot; the index is rebuilt from the log.
    assert_eq!((l.recovery().rebuilt, l.recovery().replayed, l.recovery().reindexed), (false, 0, 11));
    assert_eq!(l.head(), head);
    assert!(l.state().unwrap().entries() == entries);
    let again = l.submit(operator(), rid("r2"), vec![deposit("P1", "D1", "200000", "2026-01-20"), progress("P1", "G1", "100000", "30000", "2026-02-05")]).unwrap().unwrap();
    assert_eq!((again.first_seq, again.head, again.replayed), (receipts[1].first_seq, receipts[1].head, true));
    // Without snapshots either, everything comes from the log alone.
    l.close().unwrap();
    std::fs::remove_dir_all(dir.path().join("index")).unwrap();
    std::fs::remove_dir_all(dir.path().join("snapshots")).unwrap();
    let l = Ledger::open(dir.path(), opts()).unwrap();
    assert_eq!((l.recovery().rebuilt, l.recovery().replayed, l.recovery().reindexed), (true, 11, 11));
    assert!(l.state().unwrap().entries() == entries, "rebuilt projections equal the incremental ones");
    // And by the rebuild command, too.
    l.close().unwrap();
    let l = ledger::rebuild(dir.path(), opts()).unwrap();
    assert_eq!((l.recovery().rebuilt, l.recovery().replayed), (true, 11));
    assert!(l.state().unwrap().entries() == entries);
}

/// Periodic snapshots are written by a forked child while the writer goes on. A child
/// that dies (SIGKILL) or fails before writing leaves no snapshot and no temporary file
/// behind, and the snapshot is due again: the next one is written, and reopening uses it.
#[test]
fn a_snapshot_child_that_dies_or_fails_leaves_nothing_and_is_tried_again() {
    use anxin::failpoint::{self, Action};
    for (id, action) in [("anxin-snapchild-kill", Action::Kill), ("anxin-snapchild-error", Action::Error)] {
        let dir = tempfile::tempdir().unwrap();
        let small = || LedgerOptions { snapshot_records: 4, ledger_id: Some(id.into()), ..opts() };
        failpoint::arm("snapshot.child", id, action, Some(1));
        let l = Ledger::open(dir.path(), small()).unwrap();
        populate(&l); // groups of 5, 2, 1, 2, 1 records: the child of the first snapshot (5) fails
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let seqs = loop {
            let seqs: Vec<u64> = anxin::store::snapshot::list(dir.path()).unwrap().iter().map(|s| s.0).collect();
            if !seqs.is_empty() || std::time::Instant::now() > deadline {
                break seqs;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        assert!(!seqs.is_empty() && !seqs.contains(&5), "{action:?}: the failed child's snapshot (5) is missing, a later one is written: {seqs:?}");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("snapshots")).unwrap().map(|e| e.unwrap().file_name()).filter(|n| n.to_string_lossy().ends_with(".tmp")).collect();
        assert!(leftovers.is_empty(), "{action:?}: no temporary file is left: {leftovers:?}");
        let entries = l.state().unwrap().entries();
        l.close().unwrap();
        failpoint::disarm("snapshot.child", id);
        let l = Ledger::open(dir.path(), small()).unwrap();
        assert!(l.state().unwrap().entries() == entries, "{action:?}");
        l.close().unwrap();
    }
}

#[test]
fn periodic_snapshots_bound_the_replay_and_a_damaged_one_is_passed_over() {
    let dir = tempfile::tempdir().unwrap();
    let old = tempfile::tempdir().unwrap();
    let small = || LedgerOptions { snapshot_records: 4, ..opts() };
    let l = Ledger::open(dir.path(), small()).unwrap();
    populate(&l); // groups of 5, 2, 1, 2, 1 records: snapshots after 5 and 10 (or 11)
    // Written by child processes while the writer goes on: one is started once 4 or more
    // records came since the last and none is being written (after a group, or while
    // idle), so the second reflects record 10, or 11 if the first was still being written.
    let wanted = |seqs: &[u64]| seqs == [10, 5] || seqs == [11, 5];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let seqs = loop {
        let seqs: Vec<u64> = anxin::store::snapshot::list(dir.path()).unwrap().iter().map(|s| s.0).collect();
        if wanted(&seqs) || std::time::Instant::now() > deadline {
            break seqs;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    assert!(wanted(&seqs), "a snapshot after every 4 or more records, two kept: {seqs:?}");
    copy_dir(&dir.path().join("snapshots"), old.path());
    ok(&l, "r6", vec![topup("P1", "T2", "1")]);
    ok(&l, "r7", vec![topup("P1", "T3", "2"), topup("P1", "T4", "3")]);
    let (entries, head) = (l.state().unwrap().entries(), l.head());
    l.close().unwrap();
    // As if the process died before the next snapshot: only the records after it replay.
    std::fs::remove_dir_all(dir.path().join("snapshots")).unwrap();
    copy_dir(old.path(), &dir.path().join("snapshots"));
    let l = Ledger::open(dir.path(), small()).unwrap();
    assert_eq!((l.recovery().replayed, l.recovery().rebuilt), (14 - seqs[0], false), "records {}..=14", seqs[0] + 1);
    assert_eq!(l.head(), head);
    assert!(l.state().unwrap().entries() == entries);
    l.close().unwrap();
    // The newest snapshot damaged (one byte): the one before it is used, the log replays more.
    std::fs::remove_dir_all(dir.path().join("snapshots")).unwrap();
    copy_dir(old.path(), &dir.path().join("snapshots"));
    let newest = anxin::store::snapshot::list(dir.path()).unwrap()[0].1.clone();
    let len = std::fs::metadata(&newest).unwrap().len();
    flip(&newest, len / 2);
    assert!(anxin::store::snapshot::read(&newest, "anxin-test", &snapshot_key(dir.path())).unwrap_err().to_string().contains("damaged"));
    let l = Ledger::open(dir.path(), small()).unwrap();
    assert_eq!(l.recovery().replayed, 9, "records 6..=14 after the snapshot of 5");
    assert!(l.state().unwrap().entries() == entries, "never a wrong balance from a damaged snapshot");
    l.close().unwrap();
    // A snapshot of another ledger is not used either.
    let other = tempfile::tempdir().unwrap();
    let o = Ledger::open(other.path(), LedgerOptions { ledger_id: Some("anxin-other".into()), ..small() }).unwrap();
    populate(&o);
    o.close().unwrap();
    std::fs::remove_dir_all(dir.path().join("snapshots")).unwrap();
    copy_dir(&other.path().join("snapshots"), &dir.path().join("snapshots"));
    let l = Ledger::open(dir.path(), small()).unwrap();
    assert_eq!((l.recovery().replayed, l.recovery().rebuilt), (14, true));
    assert!(l.state().unwrap().entries() == entries);
}

#[test]
fn a_snapshot_ahead_of_a_truncated_log_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(dir.path(), opts()).unwrap();
    populate(&l);
    l.close().unwrap();
    // Drop the last frame (record 11) and what would catch it first: index and checkpoint.
    let (off, _) = record_range(dir.path(), 11);
    let seg = segment(dir.path());
    let frame = frame_of(dir.path(), 11);
    OpenOptions::new().write(true).open(&seg).unwrap().set_len(frame).unwrap();
    assert!(frame < off);
    std::fs::remove_dir_all(dir.path().join("index")).unwrap();
    std::fs::remove_dir_all(dir.path().join("checkpoints")).unwrap();
    let err = Ledger::open(dir.path(), opts()).err().expect("refuses to start");
    assert!(err.to_string().contains("snapshot"), "{err}");
}

#[test]
fn an_index_behind_the_log_replays_only_the_tail() {
    let dir = tempfile::tempdir().unwrap();
    let old_index = tempfile::tempdir().unwrap();
    let l = Ledger::open(dir.path(), opts()).unwrap();
    populate(&l);
    l.close().unwrap();
    copy_dir(&dir.path().join("index"), old_index.path());
    let l = Ledger::open(dir.path(), opts()).unwrap();
    ok(&l, "r6", vec![topup("P1", "T2", "1")]);
    ok(&l, "r7", vec![topup("P1", "T3", "2"), topup("P1", "T4", "3")]);
    let (entries, head) = (l.state().unwrap().entries(), l.head());
    l.close().unwrap();
    // As if the process died before sled flushed the last group commits.
    std::fs::remove_dir_all(dir.path().join("index")).unwrap();
    copy_dir(old_index.path(), &dir.path().join("index"));
    let l = Ledger::open(dir.path(), opts()).unwrap();
    assert_eq!((l.recovery().reindexed, l.recovery().replayed), (3, 0), "only the records after the index's position");
    assert_eq!(l.head(), head);
    assert!(l.state().unwrap().entries() == entries);
    let again = l.submit(operator(), rid("r7"), vec![topup("P1", "T3", "2"), topup("P1", "T4", "3")]).unwrap().unwrap();
    assert!(again.replayed && again.first_seq == 13);
}

#[test]
fn damage_in_the_middle_of_the_log_stops_the_start_and_names_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(dir.path(), opts()).unwrap();
    populate(&l);
    l.close().unwrap();
    std::fs::remove_dir_all(dir.path().join("index")).unwrap();
    // Records: r1 = 1..=5, r2 = 6..=7, r3 (the payroll) = 8, r4 = 9..=10, r5 = 11.
    // Flip a byte inside record 8, the payroll.
    let (off, _) = record_range(dir.path(), 8);
    flip(&segment(dir.path()), off + 20);
    let err = Ledger::open(dir.path(), opts()).err().expect("refuses to start");
    assert!(err.to_string().contains("record 8"), "{err}");
    let rep = ledger::verify(dir.path(), &mut |_| {}).unwrap();
    assert!(rep.error.as_deref().unwrap().contains("record 8"), "{:?}", rep.error);
    assert_eq!(rep.records, 7, "records before the damage were verified");
}

#[test]
fn a_log_shorter_than_the_index_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(dir.path(), opts()).unwrap();
    populate(&l);
    l.close().unwrap();
    let seg = segment(dir.path());
    let len = std::fs::metadata(&seg).unwrap().len();
    OpenOptions::new().write(true).open(&seg).unwrap().set_len(len - 30).unwrap();
    let err = Ledger::open(dir.path(), opts()).err().expect("refuses to start");
    assert!(err.to_string().contains("truncated"), "{err}");
    // The index was right (the log is what was cut): it is left as it was.
    assert!(dir.path().join("index").exists() && !dir.path().join("index.suspect").exists() && !dir.path().join("index.damaged-1").exists());
}

#[test]
fn records_read_back_are_the_chained_canonical_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(dir.path(), opts()).unwrap();
    let receipts = populate(&l);
    let recs = l.read_records(6, 9).unwrap();
    assert_eq!(recs.iter().map(|(s, _)| *s).collect::<Vec<_>>(), vec![6, 7, 8, 9]);
    let rec = ledger::decode_record(&recs[1].1).unwrap();
    assert_eq!((rec.seq, rec.event.name(), rec.principal.to_string()), (7, "ProgressPaymentMade", "operator".to_owned()));
    let last = l.read_records(11, 100).unwrap();
    assert_eq!(anxin::chain::record::record_hash(&last[0].1), receipts[4].head);
}

/// The snapshots' MAC key of a data directory (from its signing key).
pub fn snapshot_key(dir: &Path) -> anxin::store::snapshot::SnapshotKey {
    let seed: [u8; 32] = std::fs::read(dir.join("keys/checkpoint.ed25519")).unwrap().try_into().unwrap();
    anxin::store::snapshot::SnapshotKey::from_signing_seed(&seed)
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

pub fn flip(path: &Path, offset: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x5a;
    std::fs::write(path, bytes).unwrap();
}

/// Where the frame holding record `seq` starts in its segment.
pub fn frame_of(dir: &Path, seq: u64) -> u64 {
    let mut found = None;
    log::scan(&dir.join("log"), "anxin-test", None, false, &mut |f| {
        if (f.first_seq..f.first_seq + f.records.len() as u64).contains(&seq) {
            found = Some(f.pos.offset);
        }
        Ok(())
    })
    .unwrap();
    found.expect("record present")
}

/// Byte range (start, end) of record `seq`'s canonical bytes in the first segment.
pub fn record_range(dir: &Path, seq: u64) -> (u64, u64) {
    let mut found = None;
    log::scan(&dir.join("log"), "anxin-test", None, false, &mut |f| {
        let mut at = f.records_at;
        for (i, r) in f.records.iter().enumerate() {
            at += 8;
            if f.first_seq + i as u64 == seq {
                found = Some((at, at + r.len() as u64));
            }
            at += r.len() as u64;
        }
        Ok(())
    })
    .unwrap();
    found.expect("record present")
}

#[test]
fn a_retry_right_after_its_answer_is_recognized_before_and_after_the_index_has_it() {
    // The index thread writes idempotency entries after the answer; a retry that comes
    // first is answered from memory. Both must give the original receipt, never a second
    // append.
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(dir.path(), opts()).unwrap();
    populate(&l);
    for i in 0..200 {
        let id = format!("t{i}");
        let cmds = || vec![topup("P1", &format!("TT{i}"), "1")];
        let first = ok(&l, &id, cmds());
        let again = ok(&l, &id, cmds());
        assert!(again.replayed && !first.replayed);
        assert_eq!((again.first_seq, again.last_seq, again.head), (first.first_seq, first.last_seq, first.head));
    }
    assert_eq!(l.head().0, 11 + 200, "no retry appended anything");
    l.close().unwrap();
    let l = Ledger::open(dir.path(), opts()).unwrap();
    let again = ok(&l, "t7", vec![topup("P1", "TT7", "1")]);
    assert!(again.replayed && again.first_seq == 19);
}
