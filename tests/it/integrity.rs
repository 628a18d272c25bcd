//! Integrity at rest (issue 13): the server checks what it stands on. A start never cuts
//! what a signed checkpoint or the index says was acknowledged; a read that meets damage
//! answers with it, never hangs; a snapshot is believed only with its key's MAC and
//! against a replay of the log (the scrub); damage found turns the ledger read-only.

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anxin::ledger::{self, Ledger, LedgerOptions};
use anxin::store::log;
use anxin::store::StoreError;

use crate::common::*;
use crate::store::{copy_dir, ok, opts};

/// Options with 16 KiB log segments, so that a few hundred records span several.
fn small() -> LedgerOptions {
    LedgerOptions { segment_bytes: 16 << 10, ..opts() }
}

/// A closed ledger of `batches` batches of 10 top-ups over several segments; its signed
/// checkpoint covers every record.
fn several_segments(dir: &Path, batches: usize) -> u64 {
    let l = Ledger::open(dir, small()).unwrap();
    ok(&l, "setup", vec![register("P1"), open_account("P1")]);
    for b in 0..batches {
        ok(&l, &format!("b{b}"), (0..10).map(|i| topup("P1", &format!("T{b}-{i}"), "1")).collect());
    }
    let (n, _) = l.head();
    l.close().unwrap();
    assert!(log::list_segments(&dir.join("log")).unwrap().len() >= 3, "several segments");
    n
}

fn last_segment(dir: &Path) -> PathBuf {
    let segs = log::list_segments(&dir.join("log")).unwrap();
    log::segment_path(&dir.join("log"), *segs.last().unwrap())
}

#[test]
fn a_checkpointed_tail_cut_short_or_zeroed_refuses_the_start_and_nothing_is_cut() {
    let base = tempfile::tempdir().unwrap();
    several_segments(base.path(), 60);
    let cases: [(&str, &dyn Fn(&Path)); 4] = [
        ("the last segment cut to 0 bytes", &|seg| OpenOptions::new().write(true).open(seg).unwrap().set_len(0).unwrap()),
        ("the last segment cut to 20 bytes", &|seg| OpenOptions::new().write(true).open(seg).unwrap().set_len(20).unwrap()),
        ("the last frame cut short", &|seg| {
            let len = std::fs::metadata(seg).unwrap().len();
            OpenOptions::new().write(true).open(seg).unwrap().set_len(len - 10).unwrap()
        }),
        ("the last frame's end zeroed", &|seg| {
            let len = std::fs::metadata(seg).unwrap().len();
            let mut f = OpenOptions::new().write(true).open(seg).unwrap();
            f.seek(SeekFrom::Start(len - 600)).unwrap();
            f.write_all(&[0u8; 600]).unwrap();
        }),
    ];
    for (what, damage) in cases {
        // With and without the index (the signed checkpoint alone must hold it too).
        for drop_index in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            copy_dir(base.path(), dir.path());
            if drop_index {
                std::fs::remove_dir_all(dir.path().join("index")).unwrap();
            }
            let seg = last_segment(dir.path());
            damage(&seg);
            let len = std::fs::metadata(&seg).unwrap().len();
            let e = Ledger::open(dir.path(), small()).err().unwrap_or_else(|| panic!("{what}: the start was not refused"));
            let msg = e.to_string();
            assert!(matches!(e, StoreError::Corruption { .. }), "{what}: {msg}");
            assert!(msg.contains("acknowledged records are damaged or missing") || msg.contains("does not hash to the head"), "{what}: says why: {msg}");
            let seg_name = seg.file_name().unwrap().to_string_lossy().to_string();
            assert!(msg.contains(&seg_name) || msg.contains("record "), "{what}: names the place: {msg}");
            assert_eq!(std::fs::metadata(&seg).map(|m| m.len()).ok(), Some(len), "{what}: nothing was cut or deleted");
            // A second start says the same: nothing changed in between.
            assert!(Ledger::open(dir.path(), small()).is_err(), "{what}");
            let rep = ledger::verify(dir.path(), &mut |_| {}).unwrap();
            assert!(rep.error.is_some(), "{what}: verify reports it too");
        }
    }
}

#[test]
fn a_torn_tail_past_everything_acknowledged_is_still_cut() {
    let dir = tempfile::tempdir().unwrap();
    let records = several_segments(dir.path(), 30);
    let seg = last_segment(dir.path());
    let good = std::fs::metadata(&seg).unwrap().len();
    let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(&[0u8; 4096]).unwrap();
    drop(f);
    let l = Ledger::open(dir.path(), small()).unwrap();
    assert_eq!(l.recovery().cut.map(|c| c.1), Some(good));
    assert_eq!(l.head().0, records);
    ok(&l, "after", vec![topup("P1", "after", "1")]);
    l.close().unwrap();
}
