//! `anxind` as a real process: SIGTERM while clients post, then every acknowledged batch
//! must be in the log, exactly where its receipt said.

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anxin::api::auth::{new_token, principals_entry};
use anxin::api::pb;
use anxin::domain::principal::Principal;
use anxin::ledger::{self, Ledger, LedgerOptions};

use crate::harness::{open_account, register, topup, Auth, COUNTY};

pub struct Anxind {
    pub child: Child,
    pub addr: String,
    pub token: String,
}

impl Drop for Anxind {
    /// A test that fails (panics) before it stops its servers does not leave them
    /// running: killed and reaped here (a no-op for one already waited for).
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts `anxind` on `data` with an operator token, and waits until it accepts calls.
pub async fn start(data: &std::path::Path) -> Anxind {
    start_with(data, &[]).await
}

/// `start` with more flags (`--config FILE`, say).
pub async fn start_with(data: &std::path::Path, extra: &[&str]) -> Anxind {
    start_logging(data, extra, "warn", None).await
}

/// `start_with`, logging at `level` (an `ANXIN_LOG` filter) to `log` if given.
pub async fn start_logging(data: &std::path::Path, extra: &[&str], level: &str, log: Option<&std::path::Path>) -> Anxind {
    start_full(data, extra, level, log, &[]).await
}

/// `start_logging` with more environment variables (`ANXIN_FAILPOINTS`, say).
pub async fn start_full(data: &std::path::Path, extra: &[&str], level: &str, log: Option<&std::path::Path>, env: &[(&str, &str)]) -> Anxind {
    start_on(free_port(), data, extra, level, log, env).await
}

/// `start_full` on a given port (a replicated node advertises it before it starts).
pub async fn start_on(port: u16, data: &std::path::Path, extra: &[&str], level: &str, log: Option<&std::path::Path>, env: &[(&str, &str)]) -> Anxind {
    let token = new_token();
    let principals = data.with_extension("principals.toml");
    std::fs::write(&principals, principals_entry(&Principal::Operator, &token)).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_anxind"))
        .args(["--data", data.to_str().unwrap(), "--listen", &format!("127.0.0.1:{port}"), "--principals", principals.to_str().unwrap()])
        .args(extra)
        .env("ANXIN_LOG", level)
        .envs(env.iter().copied())
        .stdout(log.map_or(Stdio::null(), |p| Stdio::from(std::fs::File::create(p).unwrap())))
        .stderr(log.map_or(Stdio::inherit(), |p| Stdio::from(std::fs::OpenOptions::new().append(true).open(p).unwrap())))
        .spawn()
        .unwrap();
    let addr = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(ch) = tonic::transport::Channel::from_shared(addr.clone()).unwrap().connect().await {
            let mut h = tonic_health::pb::health_client::HealthClient::new(ch);
            if h.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await.is_ok() {
                break;
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            // A failpoint may end the process while it starts (a kill inside the start's
            // scrub): the caller sees a dead server. Otherwise that is a failure.
            assert!(!env.is_empty(), "anxind exited while starting: {status:?}");
            break;
        }
        assert!(Instant::now() < deadline, "anxind did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Anxind { child, addr, token }
}

/// Acknowledged batches: (request id, first seq, last seq).
pub type Acked = Arc<Mutex<Vec<(String, u64, u64)>>>;

/// Records in each batch `post_until_gone` posts.
pub const BATCH: usize = 20;

/// Four clients, each posting batches of `BATCH` top-ups of `amount` to project P1 (ids
/// `{prefix}c{client}-{n}`) until the server stops answering; every answer goes to `acked`.
pub async fn post_until_gone(server: &Anxind, prefix: &str, amount: &'static str, acked: &Acked) -> Vec<tokio::task::JoinHandle<()>> {
    let mut clients = Vec::new();
    for c in 0..4 {
        let mut p = server.posting().await;
        let acked = acked.clone();
        let prefix = prefix.to_owned();
        clients.push(tokio::spawn(async move {
            for b in 0.. {
                let id = format!("{prefix}c{c}-{b}");
                let cmds = (0..BATCH).map(|i| topup("P1", &format!("{id}-{i}"), amount)).collect();
                match p.submit(pb::SubmitRequest { request_id: id.clone(), commands: cmds }).await {
                    Ok(r) => {
                        let r = r.into_inner();
                        acked.lock().unwrap().push((id, r.first_seq, r.last_seq));
                    }
                    Err(_) => return, // the server is going away
                }
            }
        }));
    }
    clients
}

impl Anxind {
    pub async fn posting(&self) -> pb::ledger_posting_client::LedgerPostingClient<tonic::service::interceptor::InterceptedService<tonic::transport::Channel, Auth>> {
        let ch = tonic::transport::Channel::from_shared(self.addr.clone()).unwrap().connect().await.unwrap();
        pb::ledger_posting_client::LedgerPostingClient::with_interceptor(ch, Auth(Some(self.token.clone())))
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill").args([sig, &self.child.id().to_string()]).status().unwrap().success();
        assert!(ok, "kill {sig}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_load_loses_no_acknowledged_batch() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = start(&data).await;
    let mut p = server.posting().await;
    p.submit(pb::SubmitRequest { request_id: "setup".into(), commands: vec![register("P1", COUNTY), open_account("P1", "ICBC")] }).await.unwrap();

    let acked: Acked = Arc::default();
    let clients = post_until_gone(&server, "", "1", &acked).await;
    // Let load build up, then ask the server to stop while clients are still posting.
    let t0 = Instant::now();
    while acked.lock().unwrap().len() < 40 && t0.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.signal("-TERM");
    let status = tokio::task::spawn_blocking(move || server.child.wait().unwrap()).await.unwrap();
    assert!(status.success(), "anxind exits cleanly on SIGTERM: {status:?}");
    for c in clients {
        c.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 40);

    let led = Ledger::open(&data, LedgerOptions::default()).unwrap();
    assert_eq!(led.recovery().replayed, 0, "a graceful stop leaves the index complete");
    for (id, first, last) in &acked {
        let recs = led.read_records(*first, *last).unwrap();
        assert_eq!(recs.len() as u64, last - first + 1, "{id}");
        for (_, bytes) in recs {
            assert_eq!(ledger::decode_record(&bytes).unwrap().request_id.as_str(), id);
        }
    }
    led.close().unwrap();
    let rep = ledger::verify(&data, &mut |_| {}).unwrap();
    assert_eq!(rep.error, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_configuration_anxind_serves_and_prints_a_dev_token_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // The default data directory is ./anxin-data; only the port is chosen here.
    let mut child = Command::new(env!("CARGO_BIN_EXE_anxind"))
        .current_dir(dir.path())
        .env("ANXIN_LISTEN", format!("127.0.0.1:{port}"))
        .env("ANXIN_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let token_file = dir.path().join("anxin-data/dev-token");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !token_file.exists() {
        assert!(Instant::now() < deadline, "no dev token written");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let token = std::fs::read_to_string(&token_file).unwrap().trim().to_owned();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(dir.path().join("anxin-data")).unwrap().permissions().mode() & 0o777, 0o700);
    let server = Anxind { child: Command::new("true").spawn().unwrap(), addr: format!("http://127.0.0.1:{port}"), token };
    let mut p = loop {
        if tonic::transport::Channel::from_shared(server.addr.clone()).unwrap().connect().await.is_ok() {
            break server.posting().await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    p.submit(pb::SubmitRequest { request_id: "dev".into(), commands: vec![register("P1", COUNTY)] }).await.unwrap();
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    assert!(child.wait().unwrap().success(), "SIGINT stops it cleanly");
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    assert!(out.contains(&server.token), "the dev token is printed once: {out}");
}

/// A live Subscribe stream does not hold up a stop: after SIGTERM the server waits the
/// grace period for it, cuts it, closes the ledger and exits cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_live_subscriber_still_stops() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = start(&data).await;
    let mut p = server.posting().await;
    p.submit(pb::SubmitRequest { request_id: "setup".into(), commands: vec![register("P1", COUNTY), open_account("P1", "ICBC")] }).await.unwrap();
    let ch = tonic::transport::Channel::from_shared(server.addr.clone()).unwrap().connect().await.unwrap();
    let mut a = pb::ledger_audit_client::LedgerAuditClient::with_interceptor(ch, Auth(Some(server.token.clone())));
    let mut stream = a.subscribe(pb::SubscribeRequest { from_seq: 1 }).await.unwrap().into_inner();
    assert_eq!(stream.message().await.unwrap().unwrap().seq, 1);
    let t0 = Instant::now();
    server.signal("-TERM");
    let status = tokio::task::spawn_blocking(move || server.child.wait().unwrap()).await.unwrap();
    let took = t0.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(anxin::limits::SHUTDOWN_GRACE_S + 10), "stopped in {took:?}");
    // The subscriber sees its stream end (an error or the end), not a hang.
    tokio::time::timeout(Duration::from_secs(5), async { while let Ok(Some(_)) = stream.message().await {} }).await.expect("the stream ended");
    assert_eq!(ledger::verify(&data, &mut |_| {}).unwrap().error, None);
}
