//! `anxin` against a replicated ledger: given every node (`--server a,b`), it posts
//! through whichever leads, reads its writes from a follower (`--min-seq`), and `anxin
//! bench --follower` measures the follower's lag. Two in-process `anxind` nodes on a
//! real PostgreSQL pair.

#[path = "../../tests/it/pg.rs"]
#[allow(dead_code)]
mod pg;

use std::process::Command;
use std::time::{Duration, Instant};

struct Node {
    addr: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn node(dir: &std::path::Path, name: &str, pair: &pg::PgPair, principals: &std::path::Path) -> Node {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("http://127.0.0.1:{port}");
    let mut cfg = anxin::server::Config::load(None, Some(format!("127.0.0.1:{port}").parse().unwrap()), Some(dir.join(name)), Some(principals.to_owned()), None).unwrap();
    cfg.ledger_id = Some("anxin-cli-test".into());
    cfg.file.signing_key = Some(dir.join("ledger.key"));
    cfg.file.vault_key = Some(dir.join("vault.key"));
    cfg.file.replication = Some(anxin::server::ReplicationConfig { dsns: pair.dsns(), node_id: name.into(), advertise: addr.clone(), lease_ms: Some(1000), allow_async: false });
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(anxin::server::run(cfg, async {
            let _ = rx.await;
        }))
        .unwrap();
    });
    for _ in 0..400 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    Node { addr, stop: Some(tx), thread: Some(thread) }
}

fn anxin(servers: &str, token: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_anxin")).args(args).env("ANXIN_SERVER", servers).env("ANXIN_TOKEN", token).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Whether `addr` leads (its posting service is SERVING).
fn leads(addr: &str) -> bool {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let Ok(ch) = tonic::transport::Channel::from_shared(addr.to_owned()).unwrap().connect().await else { return false };
        let mut h = tonic_health::pb::health_client::HealthClient::new(ch);
        matches!(h.check(tonic_health::pb::HealthCheckRequest { service: "anxin.v1.LedgerPosting".into() }).await,
            Ok(r) if r.get_ref().status == tonic_health::pb::health_check_response::ServingStatus::Serving as i32)
    })
}

#[test]
fn anxin_posts_through_the_leader_reads_its_writes_from_a_follower_and_measures_its_lag() {
    if !pg::available() {
        return;
    }
    let pair = pg::PgPair::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ledger.key"), [3u8; 32]).unwrap();
    std::fs::write(dir.path().join("vault.key"), [4u8; 32]).unwrap();
    let token = anxin::api::auth::new_token();
    let principals = dir.path().join("principals.toml");
    std::fs::write(&principals, anxin::api::auth::principals_entry(&anxin::domain::principal::Principal::Operator, &token)).unwrap();
    let a = node(dir.path(), "a", &pair, &principals);
    let b = node(dir.path(), "b", &pair, &principals);
    let t0 = Instant::now();
    let (leader, follower) = loop {
        if leads(&a.addr) {
            break (&a, &b);
        }
        if leads(&b.addr) {
            break (&b, &a);
        }
        assert!(t0.elapsed() < Duration::from_secs(15), "no leader");
        std::thread::sleep(Duration::from_millis(50));
    };
    // The follower first: it answers NOT_LEADER with the leader's address, and anxin posts there.
    let both = format!("{},{}", follower.addr, leader.addr);
    let ex = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/month-end");
    let (ok, out, err) = anxin(&both, &token, &["post", "--json", "--file", ex.join("setup.csv").to_str().unwrap()]);
    assert!(ok, "{err}");
    let (ok, out2, err) = anxin(&both, &token, &["post", "--json", "top_up_wage_account", "project=P01", "payment_no=RYW-1", "amount=123.45", "date=2026-02-11"]);
    assert!(ok, "{err}");
    let receipts: serde_json::Value = serde_json::from_str(&out2).unwrap();
    let last = receipts[0]["last_seq"].as_u64().unwrap();
    assert!(!out.is_empty());
    // Read-your-writes on the follower alone.
    let (ok, out, err) = anxin(&follower.addr, &token, &["balance", "wage:P01", "--min-seq", &last.to_string(), "--json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["seq"].as_str().unwrap().parse::<u64>().unwrap() >= last, "{out}");
    assert!(v["balance"].as_str().unwrap() != "0.00", "the follower shows the top-up: {out}");
    // A bench through the follower's address finds the leader and reports the follower's lag.
    let (ok, out, err) = anxin(&both, &token, &["bench", "--json", "--clients", "2", "--batch", "200", "--count", "4000", "--projects", "2", "--workers", "40", "--follower", &follower.addr]);
    assert!(ok, "{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["errors"], 0, "{out}");
    assert!(r["events"].as_u64().unwrap() >= 4000, "{out}");
    let lag = &r["follower_lag_us"];
    assert!(lag["samples"].as_u64().unwrap() > 100 && lag["never_seen"] == 0, "every sampled record reached the follower: {out}");
    eprintln!("follower lag: {lag}");
}
