//! Storage faults the operator does not cause on purpose: a full disk, missing files.
//!
//! The disk-full tests need a small file system of their own: a tmpfs mounted for the
//! test (root, as in CI). Where mounting is not allowed they say so and pass, except
//! under CI (`CI` set), where they fail: CI must run them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anxin::api::pb;
use anxin::ledger::{self, Ledger, LedgerOptions};
use anxin::store::StoreError;
use rust_decimal::Decimal;
use tonic::Code;

use crate::common::{open_account as open_account_cmd, register as register_cmd, topup as topup_cmd};
use crate::harness::{open_account, register, topup, Auth, COUNTY};
use crate::process::start_with;
use crate::store::rid;

/// A tmpfs of `mib` MiB at `dir`, unmounted on drop.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    pub fn mount(dir: &Path, mib: u64) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={mib}m,mode=0700"), "tmpfs"]).arg(dir).status().is_ok_and(|s| s.success());
        if !ok {
            assert!(std::env::var_os("CI").is_none(), "CI must be able to mount a tmpfs for the disk-full tests (run as root)");
            eprintln!("skipped: cannot mount a tmpfs at {} (not root?)", dir.display());
            return None;
        }
        Some(Tmpfs(dir.to_owned()))
    }

    /// Gives the file system `mib` MiB: space returns.
    pub fn resize(&self, mib: u64) {
        let ok = Command::new("mount").args(["-o", &format!("remount,size={mib}m"), "tmpfs"]).arg(&self.0).status().unwrap().success();
        assert!(ok, "remount");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// The `anxind` way: with a reserve, a full disk refuses batches before anything is
/// decided (RESOURCE_EXHAUSTED, reason DISK_FULL), reads go on, and writes resume by
/// themselves when space returns; after a restart every acknowledged batch is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_batches_with_disk_full_loses_nothing_and_recovers_when_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fs) = Tmpfs::mount(&dir.path().join("mnt"), 12) else { return };
    let data = fs.0.join("data");
    let config = dir.path().join("anxind.toml");
    std::fs::write(&config, "min_free_bytes = 4194304\n").unwrap();
    let mut server = start_with(&data, &["--config", config.to_str().unwrap()]).await;
    let mut p = server.posting().await;
    p.submit(pb::SubmitRequest { request_id: "setup".into(), commands: vec![register("P1", COUNTY), open_account("P1", "ICBC")] }).await.unwrap();

    // Batches of 500 top-ups of 1 yuan until the disk is full.
    let mut acked: Vec<(String, u64, u64)> = Vec::new();
    let refusal = loop {
        let id = format!("b{}", acked.len());
        let cmds = (0..500).map(|i| topup("P1", &format!("{id}-{i}"), "1")).collect();
        match p.submit(pb::SubmitRequest { request_id: id.clone(), commands: cmds }).await {
            Ok(r) => {
                let r = r.into_inner();
                acked.push((id, r.first_seq, r.last_seq));
                assert!(acked.len() < 1_000, "12 MiB never filled up");
            }
            Err(s) => break s,
        }
    };
    assert_eq!(refusal.code(), Code::ResourceExhausted, "{refusal:?}");
    assert_eq!(anxin::api::error::reason_of(&refusal).0.as_deref(), Some("DISK_FULL"));
    assert!(refusal.message().contains("disk full"), "{}", refusal.message());
    assert!(acked.len() >= 3, "some batches fit before the disk filled: {}", acked.len());
    eprintln!("disk full (12 MiB tmpfs, 4 MiB reserve) after {} acknowledged batches of 500", acked.len());
    // Refused again while full; a retry of an acknowledged batch still gets its answer.
    let cmds = (0..500).map(|i| topup("P1", &format!("again-{i}"), "1")).collect();
    assert_eq!(p.submit(pb::SubmitRequest { request_id: "again".into(), commands: cmds }).await.unwrap_err().code(), Code::ResourceExhausted);

    // Reads go on and show exactly the acknowledged top-ups.
    let expected = Decimal::from(500 * acked.len() as i64);
    let balance = |addr: String, token: String| async move {
        let ch = tonic::transport::Channel::from_shared(addr).unwrap().connect().await.unwrap();
        let mut q = pb::ledger_query_client::LedgerQueryClient::with_interceptor(ch, Auth(Some(token)));
        let b = q.get_balance(pb::GetBalanceRequest { as_of: String::new(), at_seq: 0, account: "wage:P1".into() }).await.unwrap().into_inner().balance;
        b.parse::<Decimal>().unwrap()
    };
    assert_eq!(balance(server.addr.clone(), server.token.clone()).await, expected);

    // Space returns: the same server takes the refused request, with no restart.
    fs.resize(64);
    let cmds: Vec<_> = (0..500).map(|i| topup("P1", &format!("again-{i}"), "1")).collect();
    let r = p.submit(pb::SubmitRequest { request_id: "again".into(), commands: cmds }).await.expect("accepted once space returned").into_inner();
    assert!(!r.replayed);
    acked.push(("again".into(), r.first_seq, r.last_seq));
    assert_eq!(balance(server.addr.clone(), server.token.clone()).await, expected + Decimal::from(500));

    server.signal("-TERM");
    let status = tokio::task::spawn_blocking(move || server.child.wait().unwrap()).await.unwrap();
    assert!(status.success(), "{status:?}");
    check_acknowledged(&data, &acked);
}

/// Every acknowledged batch is in the log at its answered sequence numbers, the chain
/// verifies, and the recovered projections equal a rebuild.
fn check_acknowledged(data: &Path, acked: &[(String, u64, u64)]) {
    let led = Ledger::open(data, LedgerOptions::default()).unwrap();
    let mut next = 3; // after the two setup records
    for (id, first, last) in acked {
        assert_eq!(*first, next, "{id} follows the previous batch with no gap");
        let recs = led.read_records(*first, *last).unwrap();
        assert_eq!(recs.len() as u64, last - first + 1, "{id}");
        for (_, bytes) in recs {
            assert_eq!(ledger::decode_record(&bytes).unwrap().request_id.as_str(), id);
        }
        next = last + 1;
    }
    assert_eq!(led.head().0, next - 1, "nothing beyond the acknowledged batches");
    let recovered = led.state().unwrap().entries();
    led.close().unwrap();
    assert_eq!(ledger::verify(data, &mut |_| {}).unwrap().error, None);
    let copy = tempfile::tempdir().unwrap();
    crate::store::copy_dir(data, copy.path());
    let rebuilt = ledger::rebuild(copy.path(), LedgerOptions::default()).unwrap();
    assert!(rebuilt.state().unwrap().entries() == recovered, "recovered projections equal a rebuild");
    rebuilt.close().unwrap();
}

/// With no reserve the log itself runs into ENOSPC in the middle of a write. The group is
/// taken back out of the state and the log (DISK_FULL again), and the ledger goes on
/// when space returns; if the index or the Merkle files hit the wall first, the ledger
/// stops writing (fail-stop) and a restart recovers. Either way nothing acknowledged is
/// lost and nothing unacknowledged stays.
#[test]
fn with_no_reserve_a_write_that_hits_enospc_is_taken_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fs) = Tmpfs::mount(&dir.path().join("mnt"), 6) else { return };
    let data = fs.0.join("data");
    let opts = || LedgerOptions { min_free_bytes: 0, ..LedgerOptions::default() };
    let led = Ledger::open(&data, opts()).unwrap();
    let operator = anxin::domain::principal::Principal::Operator;
    led.submit(operator.clone(), rid("setup"), vec![register_cmd("P1"), open_account_cmd("P1")]).unwrap().unwrap();
    let mut acked = Vec::new();
    let mut n = 0;
    let fault = loop {
        let id = format!("b{n}");
        n += 1;
        let cmds = (0..1_000).map(|i| topup_cmd("P1", &format!("{id}-{i}"), "1")).collect();
        match led.submit(operator.clone(), rid(&id), cmds) {
            Ok(Ok(r)) => acked.push((id, r.first_seq, r.last_seq)),
            Ok(Err(rej)) => panic!("{id} rejected: {rej:?}"),
            Err(e) => break e,
        }
        assert!(n < 1_000, "6 MiB never filled up");
    };
    let poisoned = match &fault {
        StoreError::DiskFull { .. } => false,
        StoreError::Poisoned(why) => {
            assert!(why.contains("No space left") || why.contains("disk full"), "{why}");
            true
        }
        other => panic!("a full disk answered as {other:?}"),
    };
    assert!(acked.len() >= 2, "some batches fit: {}", acked.len());
    eprintln!("ENOSPC (6 MiB tmpfs, no reserve) after {} acknowledged batches of 1,000: {}", acked.len(), if poisoned { "fail-stop" } else { "taken back, the ledger went on" });
    assert_eq!(led.head().0, acked.last().unwrap().2, "the state ends at the last acknowledged record");
    fs.resize(64);
    if !poisoned {
        // No restart needed: the refused request is accepted as soon as there is room.
        let cmds = (0..1_000).map(|i| topup_cmd("P1", &format!("after-{i}"), "1")).collect();
        let r = led.submit(operator.clone(), rid("after"), cmds).unwrap().unwrap();
        assert_eq!(r.first_seq, acked.last().unwrap().2 + 1, "the taken-back group left no gap");
        acked.push(("after".into(), r.first_seq, r.last_seq));
    } else {
        eprintln!("the index or Merkle files filled first: fail-stop, recovered by the restart below");
    }
    let _ = led.close();
    std::thread::sleep(Duration::from_millis(50));
    check_acknowledged(&data, &acked);
}

/// Runs `anxind` on `data` and expects it to refuse to start: returns what it printed.
fn refused_start(data: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_anxind"))
        .args(["--data", data.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .env("ANXIN_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = out.id();
    // A server that starts anyway would never exit: stop it after a while and fail.
    let watchdog = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(30));
        let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
    });
    let out = out.wait_with_output().unwrap();
    drop(watchdog);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success() && out.status.code().is_some(), "anxind started (or was killed) on a damaged directory: {text}");
    text
}

/// A file missing from the data directory: `anxind` refuses to start and names it, and
/// `anxin verify` (the library call it makes) reports the damage, for everything it
/// cannot rebuild: the ledger id, a log segment, the signing key, the vault's key and
/// salts. (A missing index, Merkle directory or snapshot is rebuilt: `store.rs`,
/// `audit.rs`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_file_that_cannot_be_rebuilt_refuses_the_start_and_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = start_with(&data, &[]).await;
    let mut p = server.posting().await;
    let setup = vec![register("P1", COUNTY), open_account("P1", "ICBC"), crate::harness::enrol("P1", 1), topup("P1", "T1", "100")];
    p.submit(pb::SubmitRequest { request_id: "setup".into(), commands: setup }).await.unwrap();
    server.signal("-TERM");
    assert!(tokio::task::spawn_blocking(move || server.child.wait().unwrap()).await.unwrap().success());

    let cases: &[(&str, &str)] = &[
        ("LEDGER", "LEDGER"),
        ("log/00000000000000000001.seg", "00000000000000000001.seg"),
        ("keys/checkpoint.ed25519", "checkpoint.ed25519"),
        ("vault/secret.key", "secret.key"),
        ("vault/salts", "salts"),
    ];
    for (gone, named) in cases {
        let copy = dir.path().join(format!("copy-{}", gone.replace('/', "-")));
        crate::store::copy_dir(&data, &copy);
        let path = copy.join(gone);
        if path.is_dir() {
            std::fs::remove_dir_all(&path).unwrap();
        } else {
            std::fs::remove_file(&path).unwrap();
        }
        let said = refused_start(&copy);
        assert!(said.contains(named), "without {gone} anxind must say so: {said}");
        // Nothing was recreated in its place.
        assert!(!path.exists(), "{gone} was recreated");
        if matches!(*gone, "LEDGER" | "log/00000000000000000001.seg") {
            let report = ledger::verify(&copy, &mut |_| {});
            let said = match report {
                Ok(r) => r.error.unwrap_or_default(),
                Err(e) => e.to_string(),
            };
            assert!(said.contains(named) || said.contains("missing") || said.contains("no log"), "verify without {gone}: {said:?}");
        }
    }
    // The untouched original verifies, and the checkpoint signed on the stop covers
    // every record (the last write came less than 100 ms before the stop).
    let report = ledger::verify(&data, &mut |_| {}).unwrap();
    assert_eq!(report.error, None);
    assert_eq!(report.checkpoint, Some(report.records), "the latest checkpoint covers the last record");
    assert_eq!(report.records, 4);

    // A signing key replaced by another: refused, and verify says so.
    let copy = dir.path().join("copy-other-key");
    crate::store::copy_dir(&data, &copy);
    std::fs::remove_file(copy.join("keys/checkpoint.ed25519")).unwrap();
    std::fs::write(copy.join("keys/checkpoint.ed25519"), [9u8; 32]).unwrap();
    let said = refused_start(&copy);
    assert!(said.contains("replaced"), "{said}");
    let e = ledger::verify(&copy, &mut |_| {}).unwrap().error.unwrap_or_default();
    assert!(e.contains("does not verify with") && e.contains("signed by another key"), "{e}");
}

/// A segment missing from the middle of the log: the start is refused naming it (even
/// though a restart replays only what follows the index), and `verify` reports records
/// missing where it was.
#[test]
fn a_missing_middle_segment_refuses_the_start_and_verify_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let small = || LedgerOptions { segment_bytes: 16 << 10, ..LedgerOptions::default() };
    let led = Ledger::open(&data, small()).unwrap();
    let operator = anxin::domain::principal::Principal::Operator;
    led.submit(operator.clone(), rid("setup"), vec![register_cmd("P1"), open_account_cmd("P1")]).unwrap().unwrap();
    for b in 0..60 {
        let cmds = (0..20).map(|i| topup_cmd("P1", &format!("b{b}-{i}"), "1")).collect();
        led.submit(operator.clone(), rid(&format!("b{b}")), cmds).unwrap().unwrap();
    }
    led.close().unwrap();
    let segments = anxin::store::log::list_segments(&data.join("log")).unwrap();
    assert!(segments.len() >= 4, "small segments: {segments:?}");
    let gone = segments[segments.len() / 2];
    let name = format!("{gone:020}.seg");
    std::fs::remove_file(data.join("log").join(&name)).unwrap();

    let e = Ledger::open(&data, small()).err().expect("the start is refused");
    assert!(e.to_string().contains(&name) && e.to_string().contains("missing"), "{e}");
    let report = ledger::verify(&data, &mut |_| {}).unwrap();
    let said = report.error.expect("verify reports the gap");
    assert!(said.contains(&format!("record {gone}")) && said.contains("missing"), "{said}");
}

/// A crash while a new segment was being created leaves it empty or with half a header:
/// that is a torn tail (nothing in it was ever acknowledged), cut on the next start, not
/// damage that refuses it.
#[test]
fn a_segment_torn_while_it_was_created_is_cut_at_the_next_start() {
    for torn in [0usize, 7, 20] {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let led = Ledger::open(&data, LedgerOptions::default()).unwrap();
        let operator = anxin::domain::principal::Principal::Operator;
        led.submit(operator.clone(), rid("setup"), vec![register_cmd("P1"), open_account_cmd("P1")]).unwrap().unwrap();
        led.close().unwrap();
        // The header a real next segment would have, cut short.
        let first = anxin::store::log::segment_path(&data.join("log"), 1);
        let header = std::fs::read(&first).unwrap()[..torn.min(20)].to_vec();
        let next = anxin::store::log::segment_path(&data.join("log"), 3);
        std::fs::write(&next, &header).unwrap();
        let led = Ledger::open(&data, LedgerOptions::default()).unwrap_or_else(|e| panic!("a {torn}-byte new segment refused the start: {e}"));
        assert_eq!(led.head().0, 2);
        let r = led.submit(operator, rid("after"), vec![topup_cmd("P1", "T1", "1")]).unwrap().unwrap();
        assert_eq!(r.first_seq, 3);
        led.close().unwrap();
        assert_eq!(ledger::verify(&data, &mut |_| {}).unwrap().error, None, "{torn}");
    }
}
