//! A writer that dies is not hidden: its fault becomes a typed, visible state.
//! Submissions and reads answer `WRITER_FAILED` (UNAVAILABLE over gRPC) with the reason,
//! health turns NOT_SERVING, and `anxind` logs the cause and exits non-zero so that a
//! supervisor restarts it; the restart recovers every acknowledged record from the log.
//! The faults are injected (`anxin::failpoint`) in the writer thread itself.

use std::time::{Duration, Instant};

use anxin::api::pb;
use anxin::failpoint::{self, Action};
use anxin::ledger::{Ledger, LedgerOptions, WriterFault};
use anxin::store::StoreError;

use crate::common::*;
use crate::harness::{open_account as wire_open_account, register as wire_register, topup as wire_topup, Auth, COUNTY};
use crate::process::start_full;
use crate::store::{ok, operator, opts, rid};

#[test]
fn a_panic_in_the_writer_answers_every_later_call_with_the_fault_and_a_restart_recovers() {
    let id = "anxin-writer-panic-test";
    let dir = tempfile::tempdir().unwrap();
    let o = || LedgerOptions { ledger_id: Some(id.into()), ..opts() };
    failpoint::arm("writer.group", id, Action::Panic, Some(2));
    let l = Ledger::open(dir.path(), o()).unwrap();
    ok(&l, "one", vec![register("P1")]);
    let second = l.submit(operator(), rid("two"), vec![open_account("P1")]);
    failpoint::disarm("writer.group", id);
    let why = match second {
        Err(StoreError::WriterFailed(why)) => why,
        other => panic!("expected WRITER_FAILED, got {other:?}"),
    };
    assert!(why.contains("injected panic at writer.group"), "the reason names the cause: {why}");
    assert!(matches!(l.fault(), Some(WriterFault::Panicked(_))));
    // Reads are refused too (the state may be half-changed), never a panic of their own.
    assert!(matches!(l.state(), Err(StoreError::WriterFailed(_))));
    // Later submissions get the same answer at once, not a hang.
    let t0 = Instant::now();
    assert!(matches!(l.submit(operator(), rid("three"), vec![register("P2")]), Err(StoreError::WriterFailed(_))));
    assert!(t0.elapsed() < Duration::from_secs(5));
    l.close().unwrap();
    // A restart recovers what was acknowledged, and nothing else.
    let l = Ledger::open(dir.path(), o()).unwrap();
    assert_eq!(l.head().0, 1);
    ok(&l, "two-again", vec![open_account("P1")]);
    l.close().unwrap();
}

#[test]
fn a_write_the_writer_cannot_take_back_stops_writes_but_not_reads() {
    let id = "anxin-writer-stop-test";
    let dir = tempfile::tempdir().unwrap();
    let o = || LedgerOptions { ledger_id: Some(id.into()), ..opts() };
    let l = Ledger::open(dir.path(), o()).unwrap();
    ok(&l, "one", vec![register("P1")]);
    failpoint::arm("writer.group", id, Action::Error, None);
    let r = l.submit(operator(), rid("two"), vec![open_account("P1")]);
    failpoint::disarm("writer.group", id);
    assert!(matches!(r, Err(StoreError::Poisoned(_))), "{r:?}");
    assert!(matches!(l.fault(), Some(WriterFault::Stopped(_))));
    assert!(l.state().unwrap().projects.contains(&pid("P1")), "reads go on: the state is whole");
    assert!(matches!(l.submit(operator(), rid("three"), vec![register("P2")]), Err(StoreError::Poisoned(_))));
    l.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anxind_turns_not_serving_answers_unavailable_with_the_reason_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("anxind.log");
    let config = dir.path().join("anxind.toml");
    std::fs::write(&config, "fault_exit_delay_ms = 4000\n").unwrap();
    // The writer's third group panics.
    let mut server = start_full(&data, &["--config", config.to_str().unwrap()], "info", Some(&log), &[("ANXIN_FAILPOINTS", "writer.group=panic@3")]).await;
    let mut p = server.posting().await;
    p.submit(pb::SubmitRequest { request_id: "setup".into(), commands: vec![wire_register("P1", COUNTY), wire_open_account("P1", "ICBC")] }).await.unwrap();
    p.submit(pb::SubmitRequest { request_id: "t1".into(), commands: vec![wire_topup("P1", "T1", "5")] }).await.unwrap();
    let st = p.submit(pb::SubmitRequest { request_id: "t2".into(), commands: vec![wire_topup("P1", "T2", "5")] }).await.unwrap_err();
    let (reason, _) = anxin::api::error::reason_of(&st);
    assert_eq!((st.code(), reason.as_deref()), (tonic::Code::Unavailable, Some("WRITER_FAILED")), "{st:?}");
    assert!(st.message().contains("panicked"), "{}", st.message());

    let ch = tonic::transport::Channel::from_shared(server.addr.clone()).unwrap().connect().await.unwrap();
    let mut h = tonic_health::pb::health_client::HealthClient::new(ch.clone());
    for service in ["", "anxin.v1.LedgerPosting", "anxin.v1.LedgerQuery"] {
        let s = h.check(tonic_health::pb::HealthCheckRequest { service: service.into() }).await.unwrap().into_inner();
        assert_eq!(s.status, tonic_health::pb::health_check_response::ServingStatus::NotServing as i32, "{service:?}");
    }
    let mut q = pb::ledger_query_client::LedgerQueryClient::with_interceptor(ch, Auth(Some(server.token.clone())));
    let st = q.get_project(pb::GetProjectRequest { at_seq: 0, project: "P1".into(), as_of: String::new() }).await.unwrap_err();
    assert_eq!((st.code(), anxin::api::error::reason_of(&st).0.as_deref()), (tonic::Code::Unavailable, Some("WRITER_FAILED")), "{st:?}");

    let t0 = Instant::now();
    let status = tokio::task::spawn_blocking(move || server.child.wait().unwrap()).await.unwrap();
    assert!(!status.success(), "anxind exits non-zero for a supervisor to restart it: {status:?}");
    assert!(t0.elapsed() < Duration::from_secs(30));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("injected panic at writer.group") && text.contains("anxind stopped"), "the cause is logged:\n{text}");

    // The supervisor's restart: everything acknowledged is there.
    let l = Ledger::open(&data, LedgerOptions::default()).unwrap();
    assert_eq!(l.head().0, 3);
    l.close().unwrap();
}
