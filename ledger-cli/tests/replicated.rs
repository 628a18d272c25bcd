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

/// Two nodes of one replicated ledger on a fresh PostgreSQL pair, with an operator's token.
struct Cluster {
    // Dropped in this order: the nodes stop before their database does.
    nodes: [Node; 2],
    leader: usize,
    token: String,
    dir: tempfile::TempDir,
    _pair: pg::PgPair,
}

impl Cluster {
    fn start() -> Cluster {
        let pair = pg::PgPair::start();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ledger.key"), [3u8; 32]).unwrap();
        std::fs::write(dir.path().join("vault.key"), [4u8; 32]).unwrap();
        let token = anxin::api::auth::new_token();
        let principals = dir.path().join("principals.toml");
        std::fs::write(&principals, anxin::api::auth::principals_entry(&anxin::domain::principal::Principal::Operator, &token)).unwrap();
        let nodes = [node(dir.path(), "a", &pair, &principals), node(dir.path(), "b", &pair, &principals)];
        let t0 = Instant::now();
        let leader = loop {
            if let Some(i) = nodes.iter().position(|n| leads(&n.addr)) {
                break i;
            }
            assert!(t0.elapsed() < Duration::from_secs(15), "no leader");
            std::thread::sleep(Duration::from_millis(50));
        };
        Cluster { nodes, leader, token, dir, _pair: pair }
    }

    fn leader(&self) -> &Node {
        &self.nodes[self.leader]
    }

    fn follower(&self) -> &Node {
        &self.nodes[1 - self.leader]
    }
}

#[test]
fn anxin_posts_through_the_leader_reads_its_writes_from_a_follower_and_measures_its_lag() {
    if !pg::available() {
        return;
    }
    let cluster = Cluster::start();
    let (leader, follower, token) = (cluster.leader(), cluster.follower(), &cluster.token);
    // The follower first: it answers NOT_LEADER with the leader's address, and anxin posts there.
    let both = format!("{},{}", follower.addr, leader.addr);
    let ex = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/month-end");
    let (ok, out, err) = anxin(&both, token, &["post", "--json", "--file", ex.join("setup.csv").to_str().unwrap()]);
    assert!(ok, "{err}");
    let (ok, out2, err) = anxin(&both, token, &["post", "--json", "top_up_wage_account", "project=P01", "payment_no=RYW-1", "amount=123.45", "date=2026-02-11"]);
    assert!(ok, "{err}");
    let receipts: serde_json::Value = serde_json::from_str(&out2).unwrap();
    let last = receipts[0]["last_seq"].as_u64().unwrap();
    assert!(!out.is_empty());
    // Read-your-writes on the follower alone.
    let (ok, out, err) = anxin(&follower.addr, token, &["balance", "wage:P01", "--min-seq", &last.to_string(), "--json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["seq"].as_str().unwrap().parse::<u64>().unwrap() >= last, "{out}");
    assert!(v["balance"].as_str().unwrap() != "0.00", "the follower shows the top-up: {out}");
    // A bench through the follower's address finds the leader and reports the follower's lag.
    let (ok, out, err) = anxin(&both, token, &["bench", "--json", "--clients", "2", "--batch", "200", "--count", "4000", "--projects", "2", "--workers", "40", "--follower", &follower.addr]);
    assert!(ok, "{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["errors"], 0, "{out}");
    assert!(r["events"].as_u64().unwrap() >= 4000, "{out}");
    let lag = &r["follower_lag_us"];
    assert!(lag["samples"].as_u64().unwrap() > 100 && lag["never_seen"] == 0, "every sampled record reached the follower: {out}");
    eprintln!("follower lag: {lag}");
}

/// Runs an example client; (exit code, stdout, stderr).
fn client(program: &str, script: &str, args: &[&str]) -> (i32, String, String) {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(program).arg(root.join(script)).args(args).output().unwrap_or_else(|e| panic!("{program}: {e} (tests/run installs it)"));
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The integrators' examples (README, "Clients in other languages"), each run against a
/// replicated ledger given a dead address and the follower before the leader: they post
/// the month end, follow the leader, keep and check the payouts' receipt, and handle a
/// refusal by its reason code from the standard rich details. The Node client then
/// reruns the Python client's requests, which are answered as replays and recorded
/// once, and checks the Python client's receipt; a forged receipt and a wrong token stop both.
#[test]
fn python_and_node_clients_post_a_month_end_follow_the_leader_and_check_receipts() {
    if !pg::available() {
        return;
    }
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    assert!(
        root.join("examples/clients/node/node_modules/@grpc/grpc-js").exists(),
        "examples/clients/node has no node_modules: tests/run installs them (npm ci --prefix examples/clients/node)"
    );
    let cluster = Cluster::start();
    let (leader, follower, token) = (cluster.leader(), cluster.follower(), cluster.token.as_str());
    let (ok, key, err) = anxin(&leader.addr, token, &["public-key"]);
    assert!(ok, "{err}");
    let key = key.split_whitespace().next().unwrap().to_owned();
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let servers = format!("http://127.0.0.1:{dead},{},{}", follower.addr, leader.addr);
    // One more batch: a top-up, then a payout whose amount is not money.
    let extra = cluster.dir.path().join("extra.jsonl");
    std::fs::write(
        &extra,
        concat!(
            r#"{"type":"top_up_wage_account","project":"P01","payment_no":"RYW-9","amount":"100.00","date":"2026-02-12"}"#, "\n",
            r#"{"type":"pay_wage","project":"P01","payment_no":"DF-9","national_id":"620121198503010112","bank_card":"6217000000009000112","amount":"12,50","date":"2026-02-12","period":"2026-01"}"#, "\n",
        ),
    )
    .unwrap();
    let receipts = cluster.dir.path().join("receipts");
    let common = ["--server", &servers, "--token", token, "--key", &key, "--receipts", receipts.to_str().unwrap(), "--extra", extra.to_str().unwrap()];

    let (code, py, err) = client("python3", "examples/clients/python/month_end.py", &common);
    assert_eq!(code, 0, "{py}\n{err}");
    eprintln!("the Python client:\n{py}{err}");
    for step in ["setup", "workers", "payroll", "progress", "payouts"] {
        assert!(py.contains(&format!("{step}: recorded ")) && !py.contains("(replayed)"), "{step}:\n{py}");
    }
    assert!(err.contains("NOT_LEADER on Submit"), "it was sent to the follower first and followed the leader: {err}");
    assert!(
        py.contains("extra: refused INVALID_ARGUMENT AMOUNT_NOT_A_NUMBER at command 1 (field commands[1].pay_wage.amount), action fix"),
        "the refusal is read from the rich details, by reason code:\n{py}"
    );
    assert!(py.contains("wage:P01 holds 1849.50"), "{py}");
    assert!(py.contains("receipt kept in") && py.contains("signed by the pinned key"), "{py}");
    let kept: Vec<_> = std::fs::read_dir(&receipts).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(kept.len(), 1, "{kept:?}");

    // The same requests from Node: every one is a replay, nothing is recorded twice.
    let (code, js, err) = client("node", "examples/clients/node/month_end.js", &common);
    assert_eq!(code, 0, "{js}\n{err}");
    for line in py.lines().filter(|l| l.contains(": recorded ")) {
        assert!(js.contains(&format!("{line} (replayed)")), "Node replays {line:?}:\n{js}");
    }
    assert!(err.contains("NOT_LEADER on Submit"), "{err}");
    assert!(js.contains("extra: refused INVALID_ARGUMENT AMOUNT_NOT_A_NUMBER at command 1 (field commands[1].pay_wage.amount), action fix"), "{js}");
    assert!(js.contains("wage:P01 holds 1849.50"), "the balance is the same: nothing was posted twice:\n{js}");
    assert!(js.contains("receipt kept in") && js.contains("signed by the pinned key"), "{js}");

    // Each checks the other's kept receipt offline; a forged one does not check.
    let py_receipt = kept[0].to_str().unwrap().to_owned();
    let (code, out, err) = client("node", "examples/clients/node/month_end.js", &["--check", &py_receipt, "--key", &key]);
    assert_eq!(code, 0, "{out}{err}");
    let text = std::fs::read_to_string(&kept[0]).unwrap();
    let proof_line = text.lines().nth(3).unwrap().to_owned();
    assert_eq!(proof_line.len(), 44, "a base64 hash of 32 bytes: {proof_line}");
    // Another first letter: another first byte of the first proof hash, still base64.
    let other = if proof_line.starts_with('A') { "B" } else { "A" };
    let forged = cluster.dir.path().join("forged.tlog-proof");
    std::fs::write(&forged, text.replacen(&proof_line, &format!("{other}{}", &proof_line[1..]), 1)).unwrap();
    for (program, script) in [("python3", "examples/clients/python/month_end.py"), ("node", "examples/clients/node/month_end.js")] {
        let (code, out, err) = client(program, script, &["--check", forged.to_str().unwrap(), "--key", &key]);
        assert_eq!(code, 4, "{program} refuses a forged receipt: {out}{err}");
        assert!(out.contains("does NOT check"), "{out}");
        let (code, out, err) = client(program, script, &["--check", &py_receipt, "--key", &key]);
        assert_eq!(code, 0, "{program}: {out}{err}");
    }
    // A wrong token is a refusal to stop on, not to retry.
    let wrong = anxin::api::auth::new_token();
    for (program, script) in [("python3", "examples/clients/python/month_end.py"), ("node", "examples/clients/node/month_end.js")] {
        let (code, out, err) = client(program, script, &["--server", &leader.addr, "--token", &wrong, "--key", &key, "--receipts", receipts.to_str().unwrap(), "--run", "other"]);
        assert_eq!(code, 3, "{program}: {out}{err}");
        assert!(out.contains("setup: refused UNAUTHENTICATED UNAUTHENTICATED") && out.contains("action stop"), "{program}: {out}");
    }
}
