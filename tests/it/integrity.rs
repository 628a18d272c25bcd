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
    type Damage<'a> = (&'a str, &'a dyn Fn(&Path));
    let cases: [Damage; 4] = [
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
        let mut off = f.records_at;
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

/// Waits (up to 20 s) for the ledger's background scrub to find damage.
fn damage_found(l: &Ledger) -> ledger::Damage {
    let t0 = std::time::Instant::now();
    loop {
        if let Some(d) = l.damage() {
            return d;
        }
        assert!(t0.elapsed() < std::time::Duration::from_secs(20), "the scrub found nothing");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn no_scrub() -> LedgerOptions {
    LedgerOptions { scrub_at_start: false, ..small() }
}

#[test]
fn damage_under_a_snapshot_is_found_by_the_scrub_and_the_ledger_turns_read_only() {
    for recompute in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        several_segments(dir.path(), 30);
        // Record 5 is far below the closing snapshot: the start replays nothing before it.
        if recompute {
            alter_with_checksums(dir.path(), "anxin-test", 5, 70);
        } else {
            let (start, _) = crate::store::record_range(dir.path(), 5);
            crate::store::flip(&log::segment_path(&dir.path().join("log"), 1), start + 70);
        }
        let what = if recompute { "with checksums recomputed" } else { "a flipped byte" };
        let l = Ledger::open(dir.path(), small()).unwrap_or_else(|e| panic!("{what}: the start itself reads nothing before the snapshot: {e}"));
        let d = damage_found(&l);
        assert!(d.at.contains("record 5") || d.at.contains("record 6") || d.at.contains("00000000000000000001.seg"), "{what}: names the place: {d}");
        // Writes stop, with the reason; reads of the state go on; a read of the damaged
        // record answers with the damage.
        match l.submit(crate::store::operator(), crate::store::rid("after"), vec![topup("P1", "after", "1")]) {
            Err(StoreError::Damaged(why)) => assert!(why.contains(&d.at), "{why}"),
            other => panic!("{what}: expected DAMAGED, got {other:?}"),
        }
        assert!(l.state().unwrap().projects.contains(&pid("P1")));
        assert!(matches!(l.read_records(1, 10), Err(StoreError::Corruption { .. }) | Err(StoreError::Chain(_))), "{what}");
        l.close().unwrap();
        // `verify --data` names it too.
        assert!(ledger::verify(dir.path(), &mut |_| {}).unwrap().error.is_some());
    }
}

#[test]
fn a_snapshot_forged_without_the_key_is_never_believed() {
    let dir = tempfile::tempdir().unwrap();
    several_segments(dir.path(), 30);
    let balance = Ledger::open(dir.path(), no_scrub()).map(|l| l.state().unwrap().wage_balance(&pid("P1"))).unwrap();
    // A holder of snapshots/ alone: change a byte, recompute the old unkeyed digest.
    let (_, newest) = anxin::store::snapshot::list(dir.path()).unwrap().remove(0);
    let mut bytes = std::fs::read(&newest).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 1;
    let digest = blake3::Hasher::new_derive_key("anxin v1 snapshot").update(&bytes[..n - 32]).finalize();
    bytes[n - 32..].copy_from_slice(digest.as_bytes());
    std::fs::write(&newest, &bytes).unwrap();
    let l = Ledger::open(dir.path(), no_scrub()).unwrap();
    assert!(l.recovery().rebuilt || l.recovery().replayed > 0, "the forged snapshot was passed over and the log replayed");
    assert_eq!(l.state().unwrap().wage_balance(&pid("P1")), balance);
    l.scrub_now().unwrap();
    l.close().unwrap();
}

#[test]
fn a_snapshot_forged_with_the_key_is_caught_by_the_scrub_against_a_replay_of_the_log() {
    let dir = tempfile::tempdir().unwrap();
    several_segments(dir.path(), 30);
    let key = crate::store::snapshot_key(dir.path());
    // A holder of the whole data directory, key included: a false wage balance, with a
    // valid MAC.
    let (_, newest) = anxin::store::snapshot::list(dir.path()).unwrap().remove(0);
    let (header, mut state) = anxin::store::snapshot::read(&newest, "anxin-test", &key).unwrap();
    let wage = anxin::domain::posting::Account::Wage(pid("P1"));
    *state.balances.get_mut(&wage) += 99_000_000;
    anxin::store::snapshot::write(dir.path(), &header, &state, &key).unwrap();
    // The start believes it (it is the cache the start is for) ...
    let l = Ledger::open(dir.path(), no_scrub()).unwrap();
    let served = l.state().unwrap().wage_balance(&pid("P1"));
    // ... until the scrub replays the log up to it and compares.
    let d = l.scrub_now().expect_err("the scrub catches the forged snapshot");
    assert!(d.at.contains("snap") && d.why.contains("differs from a replay of the log"), "{d}");
    // Neither writes nor queries trust the state it gave.
    assert!(matches!(l.state(), Err(StoreError::Damaged(_))), "the forged balances are no longer served");
    assert!(matches!(l.submit(crate::store::operator(), crate::store::rid("x"), vec![topup("P1", "x", "1")]), Err(StoreError::Damaged(_))));
    l.close().unwrap();
    // With the snapshot moved away, the log alone gives the true balance.
    std::fs::remove_dir_all(dir.path().join("snapshots")).unwrap();
    let l = Ledger::open(dir.path(), no_scrub()).unwrap();
    assert_eq!(l.state().unwrap().wage_balance(&pid("P1")) + 99_000_000, served);
    l.close().unwrap();
}

/// Waits (up to 20 s) for the background scrub's first pass to end clean.
fn scrubbed(l: &Ledger) -> ledger::ScrubReport {
    let t0 = std::time::Instant::now();
    loop {
        if let Some(r) = l.last_scrub() {
            return r;
        }
        assert!(l.damage().is_none(), "the scrub found damage: {:?}", l.damage());
        assert!(t0.elapsed() < std::time::Duration::from_secs(20), "the scrub did not end");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The Merkle files are a cache: damage in a leaf or a stored subtree root is put back
/// from the log by the scrub, in place; the ledger is not made read-only for it and
/// takes writes after.
#[test]
fn damaged_merkle_files_are_repaired_in_place_by_the_scrub() {
    for file in ["leaves", "level-06"] {
        let dir = tempfile::tempdir().unwrap();
        let records = several_segments(dir.path(), 30);
        let path = dir.path().join("merkle").join(file);
        let original = std::fs::read(&path).unwrap();
        assert!(original.len() >= 64, "{file} holds hashes");
        crate::store::flip(&path, 40);
        let l = Ledger::open(dir.path(), small()).unwrap();
        let r = scrubbed(&l);
        assert_eq!(r.merkle_repaired, 1, "{file}: one entry put back");
        assert_eq!(std::fs::read(&path).unwrap()[..original.len()], original[..], "{file}: as it was");
        let signed = l.checkpoint().unwrap().checkpoint;
        for seq in 1..=records.min(200) {
            let proof = l.inclusion_proof(seq, signed.tree_size).unwrap();
            let rec = l.read_records(seq, seq).unwrap();
            let leaf = anxin::chain::merkle::leaf_hash(&rec[0].1);
            anxin::chain::merkle::verify_inclusion(&leaf, seq - 1, signed.tree_size, &proof, &signed.root).unwrap();
        }
        ok(&l, "after", vec![topup("P1", "after", "1")]);
        l.close().unwrap();
        assert_eq!(ledger::verify(dir.path(), &mut |_| {}).unwrap().error, None);
    }
}

#[test]
fn a_clean_ledger_scrubs_clean_and_the_scrub_covers_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let records = several_segments(dir.path(), 30);
    let l = Ledger::open(dir.path(), no_scrub()).unwrap();
    let r = l.scrub_now().unwrap();
    assert_eq!(r.records, records);
    assert_eq!(r.snapshot_checked, Some(records), "the closing snapshot was compared against a replay");
    assert!(l.damage().is_none());
    l.close().unwrap();
}

/// A real `anxind` restarted on a log damaged under its snapshot: it serves, its scrub
/// finds the damage, posting turns NOT_SERVING and answers UNAVAILABLE / `DAMAGED` naming
/// the place, queries go on, and `ReadEvents` answers DATA_LOSS naming the record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anxind_on_a_damaged_log_turns_read_only_and_says_where() {
    use anxin::api::pb;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = crate::process::start(&data).await;
    let mut p = server.posting().await;
    p.submit(pb::SubmitRequest { request_id: "setup".into(), commands: vec![crate::harness::register("P1", crate::harness::COUNTY), crate::harness::open_account("P1", "ICBC")] }).await.unwrap();
    for b in 0..20 {
        let cmds = (0..10).map(|i| crate::harness::topup("P1", &format!("T{b}-{i}"), "1")).collect();
        p.submit(pb::SubmitRequest { request_id: format!("b{b}"), commands: cmds }).await.unwrap();
    }
    server.signal("-TERM");
    let id = std::fs::read_to_string(data.join("LEDGER")).unwrap().trim().to_owned();
    assert!(tokio::task::spawn_blocking(move || server.child.wait().unwrap()).await.unwrap().success());
    alter_with_checksums(&data, &id, 50, 80);

    let server = crate::process::start(&data).await;
    let ch = tonic::transport::Channel::from_shared(server.addr.clone()).unwrap().connect().await.unwrap();
    let mut h = tonic_health::pb::health_client::HealthClient::new(ch.clone());
    let t0 = std::time::Instant::now();
    loop {
        let st = h.check(tonic_health::pb::HealthCheckRequest { service: "anxin.v1.LedgerPosting".into() }).await.unwrap().into_inner().status;
        if st == tonic_health::pb::health_check_response::ServingStatus::NotServing as i32 {
            break;
        }
        assert!(t0.elapsed() < std::time::Duration::from_secs(20), "the scrub did not find the damage");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let q_status = h.check(tonic_health::pb::HealthCheckRequest { service: "anxin.v1.LedgerQuery".into() }).await.unwrap().into_inner().status;
    assert_eq!(q_status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32, "queries go on");
    let mut p = server.posting().await;
    let st = p.submit(pb::SubmitRequest { request_id: "after".into(), commands: vec![crate::harness::topup("P1", "after", "1")] }).await.unwrap_err();
    assert_eq!((st.code(), anxin::api::error::reason_of(&st).0.as_deref()), (tonic::Code::Unavailable, Some("DAMAGED")), "{st:?}");
    assert!(st.message().contains("record 5"), "names the record: {}", st.message());
    let mut q = pb::ledger_query_client::LedgerQueryClient::with_interceptor(ch.clone(), crate::harness::Auth(Some(server.token.clone())));
    q.get_project(pb::GetProjectRequest { at_seq: 0, project: "P1".into(), as_of: String::new() }).await.unwrap();
    let mut a = pb::ledger_audit_client::LedgerAuditClient::with_interceptor(ch, crate::harness::Auth(Some(server.token.clone())));
    let mut stream = a.read_events(pb::ReadEventsRequest { from_seq: 40, to_seq: 60 }).await.unwrap().into_inner();
    let err = loop {
        match tokio::time::timeout(std::time::Duration::from_secs(20), stream.message()).await.expect("no hang") {
            Ok(Some(_)) => {}
            Ok(None) => panic!("the damaged range read whole"),
            Err(e) => break e,
        }
    };
    assert_eq!(err.code(), tonic::Code::DataLoss, "{err:?}");
    server.signal("-TERM");
}

/// A proof from damaged Merkle files is never sent: it is checked first, the files are
/// repaired from the log when it does not check, and the proof made again is the right
/// one; the ledger does not turn read-only for a cache it could repair.
#[test]
fn a_proof_from_damaged_merkle_files_is_never_sent_and_the_files_are_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let records = several_segments(dir.path(), 30);
    let original = std::fs::read(dir.path().join("merkle/leaves")).unwrap();
    // Leaf 1 (record 2): below the stored level-06 nodes, so the roots still check out
    // at the start, but record 2's inclusion proof would be wrong.
    crate::store::flip(&dir.path().join("merkle/leaves"), 40);
    let l = Ledger::open(dir.path(), no_scrub()).unwrap();
    let signed = l.checkpoint().unwrap().checkpoint;
    assert_eq!(signed.tree_size, records);
    // Records 1 and 3 (their proofs use the damaged leaf, as a sibling or inside a
    // subtree recomputed from the leaves): the first request repairs, both get the
    // right proof.
    for seq in [1, 3, 2, records - 1] {
        let proof = l.inclusion_proof(seq, records).unwrap_or_else(|e| panic!("record {seq}: {e:?}"));
        let rec = l.read_records(seq, seq).unwrap();
        let leaf = anxin::chain::merkle::leaf_hash(&rec[0].1);
        anxin::chain::merkle::verify_inclusion(&leaf, seq - 1, records, &proof, &signed.root).unwrap_or_else(|e| panic!("record {seq}: a wrong proof was sent: {e}"));
    }
    assert!(l.damage().is_none(), "a repaired cache is not damage: {:?}", l.damage());
    assert_eq!(l.last_scrub().map(|r| r.merkle_repaired), Some(1), "the repair pass put one leaf back");
    assert_eq!(std::fs::read(dir.path().join("merkle/leaves")).unwrap()[..original.len()], original[..]);
    l.consistency_proof(1, records).unwrap();
    ok(&l, "after", vec![topup("P1", "after", "1")]);
    l.close().unwrap();
}

#[test]
fn verify_pins_the_auditors_key_and_notices_a_cut_log_without_its_checkpoint() {
    use anxin::chain::checkpoint::SignedCheckpoint;
    let dir = tempfile::tempdir().unwrap();
    let records = several_segments(dir.path(), 30);
    let original = Ledger::open(dir.path(), no_scrub()).map(|l| l.public_key()).unwrap();
    // A holder of the directory replaces the key and re-signs the same checkpoint.
    let cp = SignedCheckpoint::from_note(&std::fs::read(dir.path().join("checkpoints/latest")).unwrap()).unwrap();
    let forger = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    std::fs::write(dir.path().join("checkpoints/latest"), cp.checkpoint.clone().sign(&forger).to_note()).unwrap();
    std::fs::write(dir.path().join("keys/checkpoint.ed25519"), forger.to_bytes()).unwrap();
    assert_eq!(ledger::verify(dir.path(), &mut |_| {}).unwrap().error, None, "the directory agrees with itself");
    let pinned = ledger::verify_pinned(dir.path(), Some(&original), &mut |_| {}).unwrap();
    assert!(pinned.error.as_deref().is_some_and(|e| e.contains("not the pinned key")), "{:?}", pinned.error);

    // A log cut at a frame boundary with checkpoints/latest deleted: the index (and the
    // snapshot) written after those records were durable still say there were more.
    let dir = tempfile::tempdir().unwrap();
    several_segments(dir.path(), 30);
    std::fs::remove_dir_all(dir.path().join("checkpoints")).unwrap();
    std::fs::remove_file(last_segment(dir.path())).unwrap();
    let rep = ledger::verify(dir.path(), &mut |_| {}).unwrap();
    assert!(rep.error.as_deref().is_some_and(|e| e.contains("records are missing")), "{:?} ({records} before)", rep.error);
}

#[test]
fn an_archive_whose_plain_header_copies_disagree_with_what_is_signed_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(dir.path(), no_scrub()).unwrap();
    ok(&l, "setup", vec![register("P1"), open_account("P1"), topup("P1", "T1", "1")]);
    let cp = l.checkpoint().unwrap();
    let recs = l.read_records(1, cp.checkpoint.tree_size).unwrap();
    let arch = dir.path().join("a.jsonl");
    anxin::audit::write_archive(&mut std::fs::File::create(&arch).unwrap(), &l.public_key(), &cp, &mut recs.into_iter()).unwrap();
    let key = l.public_key();
    l.close().unwrap();
    anxin::audit::verify_archive(&arch, Some(&key), &mut |_| {}).unwrap();
    let text = std::fs::read_to_string(&arch).unwrap();
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let header = lines[0].clone();
    for (what, mutate, says) in [
        ("tree_size", 0, "tree_size"),
        ("root_hex", 0, "root_hex"),
        ("a line's seq", 2, "the line says seq 7 but the record is 2"),
    ] {
        let mut v = lines.clone();
        if mutate == 0 {
            let mut j: serde_json::Value = serde_json::from_str(&header).unwrap();
            if what == "tree_size" {
                j["tree_size"] = 99.into();
            } else {
                j["root_hex"] = "00".repeat(32).into();
            }
            v[0] = j.to_string();
        } else {
            let mut j: serde_json::Value = serde_json::from_str(&v[mutate]).unwrap();
            j["seq"] = 7.into();
            v[mutate] = j.to_string();
        }
        let p = dir.path().join("t.jsonl");
        std::fs::write(&p, v.join("\n") + "\n").unwrap();
        let e = anxin::audit::verify_archive(&p, Some(&key), &mut |_| {}).unwrap_err().to_string();
        assert!(e.contains(says), "{what}: {e}");
    }
}

#[test]
fn merkle_files_that_disagree_with_the_signed_root_are_rebuilt_at_the_start_not_believed() {
    // A stored subtree root on the signed root's path damaged: the start rebuilds the
    // files from the log (they are a cache) instead of refusing a healthy log.
    let dir = tempfile::tempdir().unwrap();
    let records = several_segments(dir.path(), 30);
    assert!(records >= 256);
    crate::store::flip(&dir.path().join("merkle/level-08"), 5);
    let l = Ledger::open(dir.path(), no_scrub()).unwrap_or_else(|e| panic!("a healthy log with damaged Merkle files starts: {e}"));
    l.scrub_now().unwrap();
    l.inclusion_proof(1, records).unwrap();
    l.close().unwrap();

    // Leaves past the signed checkpoint (a crash before the next one was signed) are
    // taken from the log, never from the files: a damaged one is not signed into a root.
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(dir.path(), small()).unwrap();
    ok(&l, "setup", vec![register("P1"), open_account("P1")]);
    for b in 0..10 {
        ok(&l, &format!("a{b}"), (0..10).map(|i| topup("P1", &format!("A{b}-{i}"), "1")).collect());
    }
    let early = l.checkpoint().unwrap();
    for b in 0..10 {
        ok(&l, &format!("b{b}"), (0..10).map(|i| topup("P1", &format!("B{b}-{i}"), "1")).collect());
    }
    l.close().unwrap();
    std::fs::write(dir.path().join("checkpoints/latest"), early.to_note()).unwrap();
    // The leaf of a record after the early checkpoint.
    let leaf = early.checkpoint.tree_size + 5;
    crate::store::flip(&dir.path().join("merkle/leaves"), (leaf - 1) * 32 + 3);
    let l = Ledger::open(dir.path(), no_scrub()).unwrap();
    let signed = l.checkpoint().unwrap();
    assert_eq!(signed.checkpoint.tree_size, l.head().0);
    l.scrub_now().unwrap_or_else(|d| panic!("the root signed at the start is the log's: {d}"));
    l.close().unwrap();
    assert_eq!(ledger::verify(dir.path(), &mut |_| {}).unwrap().error, None);
}

/// What a start on a tampered data directory did: refused, or started and the scrub
/// found damage (then writes stop), or neither (the tampering went unnoticed).
#[derive(Debug, PartialEq, Eq)]
enum Noticed {
    Refused,
    Scrubbed,
    Missed,
}

fn start_and_scrub(dir: &Path) -> Noticed {
    match Ledger::open(dir, no_scrub()) {
        Err(_) => Noticed::Refused,
        Ok(l) => {
            let n = match l.scrub_now() {
                Err(_) => {
                    assert!(matches!(l.submit(crate::store::operator(), crate::store::rid("after"), vec![topup("P1", "after", "1")]), Err(StoreError::Damaged(_))), "writes stop");
                    Noticed::Scrubbed
                }
                Ok(_) => Noticed::Missed,
            };
            l.close().unwrap();
            n
        }
    }
}

/// The tamper sweep: one byte changed at positions spread over every log segment (the
/// headers, frame headers, record lengths and checksums, record bytes), with and without
/// the checksums recomputed, on a closed ledger with a snapshot, an index and a signed
/// checkpoint: every case is refused at the start or found by the scrub, never missed.
#[test]
fn no_changed_byte_anywhere_in_the_log_goes_unnoticed() {
    let base = tempfile::tempdir().unwrap();
    several_segments(base.path(), 30);
    let segments = log::list_segments(&base.path().join("log")).unwrap();
    let mut cases = 0;
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for seg in &segments {
        let path = log::segment_path(&base.path().join("log"), *seg);
        let len = std::fs::metadata(&path).unwrap().len();
        // Positions: the header, the first frame's header, then spread over the file.
        let mut at: Vec<u64> = vec![0, 9, 12, 30, 40, 44, 48, 52, 60];
        at.extend((1..12).map(|k| len * k / 12));
        at.push(len - 1);
        for pos in at.into_iter().filter(|p| *p < len) {
            let dir = tempfile::tempdir().unwrap();
            copy_dir(base.path(), dir.path());
            crate::store::flip(&log::segment_path(&dir.path().join("log"), *seg), pos);
            let n = start_and_scrub(dir.path());
            assert_ne!(n, Noticed::Missed, "segment {seg} byte {pos} changed and nobody noticed");
            *outcomes.entry(format!("{n:?}")).or_default() += 1;
            cases += 1;
        }
    }
    // With the checksums recomputed: only the chain can tell, for records anywhere.
    let records = Ledger::open(base.path(), no_scrub()).map(|l| l.head().0).unwrap();
    for seq in (1..=records).step_by((records / 15).max(1) as usize) {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(base.path(), dir.path());
        alter_with_checksums(dir.path(), "anxin-test", seq, 50);
        let n = start_and_scrub(dir.path());
        assert_ne!(n, Noticed::Missed, "record {seq} rewritten with its checksums and nobody noticed");
        *outcomes.entry(format!("{n:?} (checksums recomputed)")).or_default() += 1;
        cases += 1;
    }
    eprintln!("{cases} tampered copies: {outcomes:?}");
    assert!(cases > 60);
}

#[test]
fn a_changed_byte_in_the_checkpoint_or_the_merkle_files_is_refused_repaired_or_found() {
    let base = tempfile::tempdir().unwrap();
    let records = several_segments(base.path(), 30);
    // The checkpoint: every byte (it is small).
    let cp_len = std::fs::metadata(base.path().join("checkpoints/latest")).unwrap().len();
    for pos in 0..cp_len {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(base.path(), dir.path());
        crate::store::flip(&dir.path().join("checkpoints/latest"), pos);
        assert!(Ledger::open(dir.path(), no_scrub()).is_err(), "checkpoint byte {pos}: the start is refused");
    }
    // The Merkle files: rebuilt at the start (disagreeing with the signed root), or found
    // by the scrub; the log is never refused for them, and no wrong proof is ever sent.
    for file in ["leaves", "level-06", "level-07", "level-08"] {
        let len = std::fs::metadata(base.path().join("merkle").join(file)).unwrap().len();
        for pos in (0..len).step_by(((len / 8).max(1)) as usize) {
            let dir = tempfile::tempdir().unwrap();
            copy_dir(base.path(), dir.path());
            crate::store::flip(&dir.path().join("merkle").join(file), pos);
            let l = Ledger::open(dir.path(), no_scrub()).unwrap_or_else(|e| panic!("merkle/{file} byte {pos}: a healthy log starts: {e}"));
            let scrubbed = l.scrub_now();
            for seq in [1, records / 2, records] {
                match l.inclusion_proof(seq, records) {
                    Ok(proof) => {
                        let rec = l.read_records(seq, seq).unwrap();
                        let leaf = anxin::chain::merkle::leaf_hash(&rec[0].1);
                        let root = l.checkpoint().unwrap().checkpoint.root;
                        anxin::chain::merkle::verify_inclusion(&leaf, seq - 1, records, &proof, &root).unwrap_or_else(|e| panic!("merkle/{file} byte {pos}: a wrong proof was sent: {e}"));
                    }
                    Err(_) => assert!(scrubbed.is_err() || l.damage().is_some(), "merkle/{file} byte {pos}: refused a proof without naming damage"),
                }
            }
            l.close().unwrap();
        }
    }
}

/// A restore writes the log again in frames of its own; a frame must hold whole
/// requests, as the writer's do, or the idempotency index rebuilt from the restored log
/// splits a request in two (its retry would get the receipt of its second half, or be
/// refused as another request). One request of 9,000 records (more than a restore
/// frame's 8,192) answers its retry on the restored ledger with its original receipt.
#[test]
fn a_restored_log_keeps_every_request_whole_and_its_retry_gets_the_original_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(&dir.path().join("live"), opts()).unwrap();
    ok(&l, "setup", vec![register("P1"), open_account("P1")]);
    let small_one = ok(&l, "small", (0..10).map(|i| topup("P1", &format!("S{i}"), "1")).collect());
    let big_cmds: Vec<_> = (0..9_000).map(|i| topup("P1", &format!("B{i}"), "1")).collect();
    let big = ok(&l, "big", big_cmds.clone());
    let after = ok(&l, "after", vec![topup("P1", "A1", "1")]);
    let vault = anxin::vault::Vault::open(&dir.path().join("live").join("vault")).unwrap();
    let mut file = Vec::new();
    anxin::backup::write_backup(&l, &vault, &mut file).unwrap();
    l.close().unwrap();
    let restored = dir.path().join("restored");
    anxin::backup::restore(&mut file.as_slice(), &restored, None, &mut |_| {}).unwrap();
    let r = Ledger::open(&restored, opts()).unwrap();
    for (id, cmds, original) in [("big", big_cmds, &big), ("small", (0..10).map(|i| topup("P1", &format!("S{i}"), "1")).collect(), &small_one), ("after", vec![topup("P1", "A1", "1")], &after)] {
        let again = r.submit(crate::store::operator(), crate::store::rid(id), cmds).expect("no fault").unwrap_or_else(|e| panic!("{id}: the retry is refused: {e:?}"));
        assert!(again.replayed, "{id}: recognised as a retry");
        assert_eq!((again.first_seq, again.last_seq, again.head), (original.first_seq, original.last_seq, original.head), "{id}: the original receipt");
    }
    // The frames of the restored log hold whole requests.
    let mut cuts = Vec::new();
    log::scan(&restored.join("log"), "anxin-test", None, false, &mut |f| {
        cuts.push(f.first_seq);
        Ok(())
    })
    .unwrap();
    assert!(cuts.len() >= 2, "the restore wrote several frames: {cuts:?}");
    for c in cuts {
        assert!(!(big.first_seq + 1..=big.last_seq).contains(&c), "a frame starts inside the big request, at {c}");
    }
    r.close().unwrap();
}

/// A closed ledger whose frames record signed checkpoints: a checkpoint is signed (on
/// demand) after each of `rounds` rounds of batches. Returns the checkpoint files as they
/// were after each round (oldest first).
fn signed_along_the_way(dir: &Path, rounds: usize) -> Vec<Vec<u8>> {
    let l = Ledger::open(dir, small()).unwrap();
    ok(&l, "setup", vec![register("P1"), open_account("P1")]);
    let mut files = Vec::new();
    for r in 0..rounds {
        for b in 0..8 {
            ok(&l, &format!("r{r}b{b}"), (0..10).map(|i| topup("P1", &format!("T{r}-{b}-{i}"), "1")).collect());
        }
        l.checkpoint().unwrap();
        files.push(std::fs::read(dir.join("checkpoints/latest")).unwrap());
    }
    ok(&l, "last", vec![topup("P1", "last", "1")]);
    l.close().unwrap();
    files
}

/// The log records the checkpoints signed while it was written (each frame: the size of
/// the newest checkpoint saved before it). Deleting `checkpoints/latest`, putting an
/// older one back, or doing either with the log cut at a frame boundary no longer lets a
/// start sign the shorter history again, and `verify --data` says so too.
#[test]
fn a_lost_or_rolled_back_checkpoint_is_noticed_from_the_log_itself() {
    let base = tempfile::tempdir().unwrap();
    let files = signed_along_the_way(base.path(), 4);
    type Case<'a> = (&'a str, &'a dyn Fn(&Path), &'a str);
    let cases: &[Case] = &[
        ("deleted", &|d| std::fs::remove_file(d.join("checkpoints/latest")).unwrap(), "checkpoints/latest is missing"),
        ("an older one put back", &|d| std::fs::write(d.join("checkpoints/latest"), &files[0]).unwrap(), "covers only"),
        ("deleted, with the index and snapshots, and the last segment cut off", &|d| {
            std::fs::remove_file(d.join("checkpoints/latest")).unwrap();
            std::fs::remove_dir_all(d.join("index")).unwrap();
            std::fs::remove_dir_all(d.join("snapshots")).unwrap();
            std::fs::remove_file(last_segment(d)).unwrap();
        }, "was signed"),
    ];
    for (what, damage, says) in cases {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(base.path(), dir.path());
        damage(dir.path());
        let err = Ledger::open(dir.path(), no_scrub()).err().unwrap_or_else(|| panic!("{what}: the start is refused"));
        assert!(err.to_string().contains(says) && err.to_string().contains("checkpoints/latest"), "{what}: {err}");
        let rep = ledger::verify(dir.path(), &mut |_| {}).unwrap();
        assert!(rep.error.as_deref().is_some_and(|e| e.contains("checkpoint")), "{what}: verify: {:?}", rep.error);
    }
    // Untouched, the same directory verifies and starts, and the log's record is there.
    let rep = ledger::verify(base.path(), &mut |_| {}).unwrap();
    assert_eq!(rep.error, None);
    assert!(rep.log_signed > 0 && rep.log_signed <= rep.checkpoint.unwrap(), "{rep:?}");
    Ledger::open(base.path(), no_scrub()).unwrap().close().unwrap();
}

/// While the server runs, a lost or altered `checkpoints/latest` is written again from
/// the copy it holds (the scrub's check), under the signer's lock.
#[test]
fn the_scrub_writes_a_lost_checkpoint_file_again_from_memory() {
    let dir = tempfile::tempdir().unwrap();
    let files = signed_along_the_way(dir.path(), 2);
    let l = Ledger::open(dir.path(), no_scrub()).unwrap();
    let held = l.checkpoint().unwrap();
    assert!(!l.scrub_now().unwrap().checkpoint_rewritten, "nothing to do");
    for damage in [0, 1] {
        if damage == 0 {
            std::fs::remove_file(dir.path().join("checkpoints/latest")).unwrap();
        } else {
            std::fs::write(dir.path().join("checkpoints/latest"), &files[0]).unwrap();
        }
        assert!(l.scrub_now().unwrap().checkpoint_rewritten, "case {damage}");
        assert_eq!(std::fs::read(dir.path().join("checkpoints/latest")).unwrap(), held.to_note().into_bytes());
    }
    l.close().unwrap();
    Ledger::open(dir.path(), no_scrub()).unwrap().close().unwrap();
}

/// A version-1 segment of ledger `anxin-test` (frames without `signed`), as the build
/// before it wrote them: its header, then `frames` (first seq, records).
fn v1_segment(first: u64, frames: Vec<(u64, Vec<Vec<u8>>)>) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(log::SEGMENT_MAGIC);
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&("anxin-test".len() as u16).to_be_bytes());
    out.extend_from_slice(b"anxin-test");
    out.extend_from_slice(&first.to_be_bytes());
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    for (first, records) in frames {
        let mut body = Vec::new();
        body.extend_from_slice(&first.to_be_bytes());
        body.extend_from_slice(&(records.len() as u32).to_be_bytes());
        for r in &records {
            body.extend_from_slice(&(r.len() as u32).to_be_bytes());
            body.extend_from_slice(&crc32fast::hash(r).to_be_bytes());
            body.extend_from_slice(r);
        }
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
        out.extend_from_slice(&body);
    }
    out
}

/// Rewrites every segment of `dir`'s log in segment version 1.
fn to_version_1(dir: &Path) {
    let log_dir = dir.join("log");
    for seg in log::list_segments(&log_dir).unwrap() {
        let path = log::segment_path(&log_dir, seg);
        let mut frames: Vec<(u64, Vec<Vec<u8>>)> = Vec::new();
        log::scan_while(&log_dir, "anxin-test", Some(log::Position { segment: seg, offset: log::read_segment_header(&path).unwrap().len }), false, &mut |f| {
            if f.pos.segment != seg {
                return Ok(false);
            }
            frames.push((f.first_seq, f.records));
            Ok(true)
        })
        .unwrap();
        std::fs::write(&path, v1_segment(seg, frames)).unwrap();
    }
}

/// The log writer never puts a version-2 frame into a version-1 segment: opened at the
/// end of one it starts a new segment, again after a write taken back (`rewind`, a full
/// disk); and opened on one holding no frame yet it rewrites the header in place (a
/// new segment would need the same name).
#[test]
fn a_writer_on_a_version_1_segment_never_writes_a_version_2_frame_into_it() {
    let rec = |n: u8| vec![n; 40];
    // A version-1 segment with one frame; the writer rolls, a write is taken back, it
    // rolls again.
    let dir = tempfile::tempdir().unwrap();
    let log_dir = dir.path().join("log");
    std::fs::create_dir_all(&log_dir).unwrap();
    let bytes = v1_segment(1, vec![(1, vec![rec(1), rec(2)])]);
    let end = log::Position { segment: 1, offset: bytes.len() as u64 };
    std::fs::write(log::segment_path(&log_dir, 1), &bytes).unwrap();
    let mut w = log::LogWriter::open(&log_dir, "anxin-test", Some(end)).unwrap();
    w.append(3, 0, &[rec(3)]).unwrap();
    w.rewind(end).unwrap();
    assert_eq!(log::list_segments(&log_dir).unwrap(), vec![1], "the new segment was taken back");
    w.append(3, 0, &[rec(3)]).unwrap();
    w.append(4, 0, &[rec(4)]).unwrap();
    w.sync().unwrap();
    assert_eq!(log::read_segment_header(&log::segment_path(&log_dir, 3)).unwrap().version, log::SEGMENT_VERSION);
    let mut seen = Vec::new();
    let scan = log::scan(&log_dir, "anxin-test", None, false, &mut |f| {
        seen.extend(f.records);
        Ok(())
    })
    .unwrap();
    assert_eq!(seen, vec![rec(1), rec(2), rec(3), rec(4)]);
    assert_eq!(scan.cut, None);
    assert_eq!(std::fs::read(log::segment_path(&log_dir, 1)).unwrap(), bytes, "the version-1 segment is as it was");

    // A version-1 segment holding only its header (a crash right after an older build
    // created it): the header is rewritten, the frame goes in.
    let dir = tempfile::tempdir().unwrap();
    let log_dir = dir.path().join("log");
    std::fs::create_dir_all(&log_dir).unwrap();
    let header = v1_segment(1, vec![]);
    std::fs::write(log::segment_path(&log_dir, 1), &header).unwrap();
    let mut w = log::LogWriter::open(&log_dir, "anxin-test", Some(log::Position { segment: 1, offset: header.len() as u64 })).unwrap();
    w.append(1, 0, &[rec(1)]).unwrap();
    w.sync().unwrap();
    assert_eq!(log::read_segment_header(&log::segment_path(&log_dir, 1)).unwrap().version, log::SEGMENT_VERSION);
    let mut n = 0;
    log::scan(&log_dir, "anxin-test", None, false, &mut |f| {
        n += f.records.len();
        Ok(())
    })
    .unwrap();
    assert_eq!(n, 1);
}

/// A log written before frames recorded signed checkpoints (segment version 1) still
/// opens and verifies; new frames go into a new version-2 segment. Segments renamed or
/// emptied are refused by the segment rules (named after their first record; only the
/// newest may hold no frame).
#[test]
fn a_version_1_log_still_opens_and_segments_must_start_where_they_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let records = several_segments(dir.path(), 30);
    to_version_1(dir.path());
    std::fs::remove_dir_all(dir.path().join("index")).unwrap();
    assert_eq!(ledger::verify(dir.path(), &mut |_| {}).unwrap().error, None, "the version-1 log verifies");
    let l = Ledger::open(dir.path(), no_scrub()).unwrap();
    assert_eq!(l.head().0, records);
    ok(&l, "after", vec![topup("P1", "after", "1")]);
    l.scrub_now().unwrap();
    l.close().unwrap();
    let newest = last_segment(dir.path());
    assert_eq!(log::read_segment_header(&newest).unwrap().version, log::SEGMENT_VERSION, "new frames went into a new segment");
    assert_eq!(log::read_segment_header(&newest).unwrap().first_seq, records + 1);
    assert_eq!(ledger::verify(dir.path(), &mut |_| {}).unwrap().error, None);
    Ledger::open(dir.path(), no_scrub()).unwrap().close().unwrap();

    let segs = log::list_segments(&dir.path().join("log")).unwrap();
    // A middle segment renamed one record later: its first frame no longer starts where
    // it is named.
    let copy = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), copy.path());
    let log_dir = copy.path().join("log");
    let (a, b) = (segs[1], segs[2]);
    let bytes = std::fs::read(log::segment_path(&log_dir, a)).unwrap();
    std::fs::remove_file(log::segment_path(&log_dir, a)).unwrap();
    let mut renamed = bytes.clone();
    // The header must name the file too (it does, after this): only the frames tell.
    let id_len = u16::from_be_bytes([renamed[10], renamed[11]]) as usize;
    renamed[12 + id_len..20 + id_len].copy_from_slice(&(a + 1).to_be_bytes());
    let crc = crc32fast::hash(&renamed[..20 + id_len]);
    renamed[20 + id_len..24 + id_len].copy_from_slice(&crc.to_be_bytes());
    std::fs::write(log::segment_path(&log_dir, a + 1), renamed).unwrap();
    let rep = ledger::verify(copy.path(), &mut |_| {}).unwrap();
    assert!(rep.error.as_deref().is_some_and(|e| e.contains("named after")), "{:?}", rep.error);
    // A middle segment emptied to its header.
    let copy = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), copy.path());
    let path = log::segment_path(&copy.path().join("log"), b);
    let header = log::read_segment_header(&path).unwrap().len;
    OpenOptions::new().write(true).open(&path).unwrap().set_len(header).unwrap();
    let rep = ledger::verify(copy.path(), &mut |_| {}).unwrap();
    assert!(rep.error.as_deref().is_some_and(|e| e.contains("holds no records but is not the last")), "an emptied middle segment: {:?}", rep.error);
    assert_ne!(start_and_scrub(copy.path()), Noticed::Missed, "and the server notices");
}

/// The index is a cache too: one byte changed anywhere in `index/` never panics the
/// start, never refuses a healthy log (an index sled cannot read, or whose claims the
/// log does not bear out, is set aside and rebuilt), and never serves a wrong answer
/// (the head, the state and a retry's receipt are a clean start's).
#[test]
fn a_changed_byte_in_the_index_never_refuses_a_healthy_log_nor_answers_wrong() {
    let base = tempfile::tempdir().unwrap();
    let records = several_segments(base.path(), 30);
    let clean = Ledger::open(base.path(), no_scrub()).unwrap();
    let (head, balance) = (clean.head(), clean.state().unwrap().wage_balance(&pid("P1")));
    let receipt = clean.submit(crate::store::operator(), crate::store::rid("b7"), (0..10).map(|i| topup("P1", &format!("T7-{i}"), "1")).collect()).unwrap().unwrap();
    clean.close().unwrap();
    let mut files = Vec::new();
    for e in std::fs::read_dir(base.path().join("index")).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() && std::fs::metadata(&p).unwrap().len() > 0 {
            files.push(p.file_name().unwrap().to_owned());
        }
    }
    assert!(!files.is_empty());
    let mut outcomes = std::collections::BTreeMap::<&str, usize>::new();
    for name in &files {
        let len = std::fs::metadata(base.path().join("index").join(name)).unwrap().len();
        for pos in (0..len).step_by((len / 12).max(1) as usize) {
            let dir = tempfile::tempdir().unwrap();
            copy_dir(base.path(), dir.path());
            crate::store::flip(&dir.path().join("index").join(name), pos);
            let what = format!("index/{} byte {pos}", name.to_string_lossy());
            let opened = std::panic::catch_unwind(|| Ledger::open(dir.path(), no_scrub()));
            match opened {
                Err(_) => panic!("{what}: the start panicked"),
                Ok(Err(e)) => panic!("{what}: a healthy log was refused for its index: {e}"),
                Ok(Ok(l)) => {
                    assert_eq!(l.head(), head, "{what}: the head");
                    assert_eq!(l.state().unwrap().wage_balance(&pid("P1")), balance, "{what}: the state");
                    let again = l.submit(crate::store::operator(), crate::store::rid("b7"), (0..10).map(|i| topup("P1", &format!("T7-{i}"), "1")).collect()).unwrap().unwrap();
                    assert_eq!((again.first_seq, again.head), (receipt.first_seq, receipt.head), "{what}: a retry's receipt");
                    l.scrub_now().unwrap_or_else(|d| panic!("{what}: {d}"));
                    l.close().unwrap();
                    let rebuilt = dir.path().join("index.damaged-1").exists();
                    *outcomes.entry(if rebuilt { "set aside and rebuilt" } else { "started on it, answers right" }).or_default() += 1;
                }
            }
        }
    }
    eprintln!("{records} records; index damage: {outcomes:?}");
    assert!(outcomes.get("set aside and rebuilt").is_some_and(|n| *n > 0), "the sweep reached the set-aside path: {outcomes:?}");
}

/// A frame written twice (a disk or a copy repeating a block) is named where the copy
/// is, not at the end of the file: by `verify --data`, by the start or by the scrub.
#[test]
fn a_duplicated_frame_is_named_where_it_is() {
    let base = tempfile::tempdir().unwrap();
    several_segments(base.path(), 30);
    let log_dir = base.path().join("log");
    let seg = log::list_segments(&log_dir).unwrap()[1];
    let mut frames = Vec::new();
    log::scan(&log_dir, "anxin-test", None, false, &mut |f| {
        if f.pos.segment == seg {
            frames.push((f.pos.offset, f.end));
        }
        Ok(())
    })
    .unwrap();
    assert!(frames.len() >= 3);
    let (start, end) = frames[1];
    let dir = tempfile::tempdir().unwrap();
    copy_dir(base.path(), dir.path());
    let path = log::segment_path(&dir.path().join("log"), seg);
    let mut bytes = std::fs::read(&path).unwrap();
    let copy = bytes[start as usize..end as usize].to_vec();
    bytes.splice(end as usize..end as usize, copy);
    std::fs::write(&path, bytes).unwrap();
    let place = format!("offset {end}");
    let rep = ledger::verify(dir.path(), &mut |_| {}).unwrap();
    let e = rep.error.expect("verify notices");
    assert!(e.contains(&place) && e.contains("repeated"), "{e}");
    match Ledger::open(dir.path(), no_scrub()) {
        Err(e) => assert!(e.to_string().contains(&place), "{e}"),
        Ok(l) => {
            let d = l.scrub_now().expect_err("the scrub notices");
            assert!(d.to_string().contains(&place), "{d}");
            l.close().unwrap();
        }
    }
}

/// A snapshot is believed only with its MAC: one byte changed anywhere in the newest
/// snapshot (header, tables, fingerprints, MAC) and it is passed over, the log replayed,
/// and the state served is exactly a clean start's.
#[test]
fn a_changed_byte_anywhere_in_a_snapshot_is_passed_over_and_the_log_replayed() {
    let base = tempfile::tempdir().unwrap();
    several_segments(base.path(), 30);
    let clean = Ledger::open(base.path(), no_scrub()).unwrap();
    let (head, balance) = (clean.head(), clean.state().unwrap().wage_balance(&pid("P1")));
    clean.close().unwrap();
    let snaps = anxin::store::snapshot::list(base.path()).unwrap();
    let (_, newest) = snaps.first().expect("a snapshot").clone();
    let name = newest.file_name().unwrap().to_owned();
    let len = std::fs::metadata(&newest).unwrap().len();
    let mut cases = 0;
    for pos in (0..len).step_by((len / 24).max(1) as usize).chain([len - 1]) {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(base.path(), dir.path());
        std::fs::remove_dir_all(dir.path().join("index")).unwrap();
        crate::store::flip(&dir.path().join("snapshots").join(&name), pos);
        let l = Ledger::open(dir.path(), no_scrub()).unwrap_or_else(|e| panic!("snapshot byte {pos}: a healthy log starts: {e}"));
        assert_eq!(l.head(), head, "snapshot byte {pos}");
        assert_eq!(l.state().unwrap().wage_balance(&pid("P1")), balance, "snapshot byte {pos}");
        assert!(l.recovery().replayed > 0, "snapshot byte {pos}: the log was replayed");
        l.scrub_now().unwrap_or_else(|d| panic!("snapshot byte {pos}: {d}"));
        l.close().unwrap();
        cases += 1;
    }
    assert!(cases >= 24);
}
