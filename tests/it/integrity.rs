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

/// Changes byte `at` of record `seq`'s canonical bytes and recomputes the record's and
/// its frame's checksums, as a forger (or a disk that rewrote a whole block) would:
/// only the chain can tell. Returns the segment changed.
pub fn alter_with_checksums(dir: &Path, ledger_id: &str, seq: u64, at: usize) -> PathBuf {
    let log_dir = dir.join("log");
    let mut hit: Option<(u64, u64, u64, u64)> = None; // (segment, frame offset, frame end, record offset)
    log::scan(&log_dir, ledger_id, None, false, &mut |f| {
        let mut off = f.pos.offset + 8 + 12;
        for (i, r) in f.records.iter().enumerate() {
            if f.first_seq + i as u64 == seq {
                hit = Some((f.pos.segment, f.pos.offset, f.end, off));
            }
            off += 8 + r.len() as u64;
        }
        Ok(())
    })
    .unwrap();
    let (seg, frame, end, rec) = hit.expect("the record is in the log");
    let path = log::segment_path(&log_dir, seg);
    let mut bytes = std::fs::read(&path).unwrap();
    let (rec, frame, end) = (rec as usize, frame as usize, end as usize);
    let len = u32::from_be_bytes(bytes[rec..rec + 4].try_into().unwrap()) as usize;
    bytes[rec + 8 + at] ^= 0x01;
    let crc = crc32fast::hash(&bytes[rec + 8..rec + 8 + len]);
    bytes[rec + 4..rec + 8].copy_from_slice(&crc.to_be_bytes());
    let body_crc = crc32fast::hash(&bytes[frame + 8..end]);
    bytes[frame + 4..frame + 8].copy_from_slice(&body_crc.to_be_bytes());
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Reads every record as an auditor would, through `ReadEvents` on a real server, with a
/// deadline: the answer must be an error naming `record N` (DATA_LOSS), not a hang.
async fn read_all(s: &crate::harness::TestServer) -> Result<usize, tonic::Status> {
    use tokio_stream::StreamExt;
    let mut a = s.audit("auditor").await;
    let work = async {
        let mut stream = a.read_events(anxin::api::pb::ReadEventsRequest { from_seq: 1, to_seq: 0 }).await?.into_inner();
        let mut n = 0;
        while let Some(r) = stream.next().await {
            r?;
            n += 1;
        }
        Ok(n)
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), work).await.expect("ReadEvents answered instead of hanging")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_that_meet_damage_answer_data_loss_naming_the_record_never_hang() {
    type Damage = fn(&Path);
    let cases: [(&str, Damage); 4] = [
        ("the last frame zeroed", |dir| {
            let seg = last_segment(dir);
            let len = std::fs::metadata(&seg).unwrap().len();
            let mut f = OpenOptions::new().write(true).open(&seg).unwrap();
            f.seek(SeekFrom::Start(len - 300)).unwrap();
            f.write_all(&[0u8; 300]).unwrap();
        }),
        ("a record rewritten with its checksums recomputed", |dir| {
            alter_with_checksums(dir, crate::harness::LEDGER_ID, 3, 60);
        }),
        ("the last segment truncated", |dir| {
            let seg = last_segment(dir);
            let len = std::fs::metadata(&seg).unwrap().len();
            OpenOptions::new().write(true).open(&seg).unwrap().set_len(len / 2).unwrap();
        }),
        ("the log directory deleted", |dir| std::fs::remove_dir_all(dir.join("log")).unwrap()),
    ];
    for (what, damage) in cases {
        let s = crate::harness::TestServer::start().await;
        s.setup_project(3).await;
        let n = read_all(&s).await.unwrap_or_else(|e| panic!("{what}: the intact log reads: {e:?}"));
        assert!(n > 5);
        damage(s.dir.path());
        let st = read_all(&s).await.expect_err(what);
        assert_eq!(st.code(), tonic::Code::DataLoss, "{what}: {st:?}");
        assert!(st.message().contains("record "), "{what}: names the record: {}", st.message());
        s.stop().await;
    }
}
