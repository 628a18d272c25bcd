//! The replicated ledger as real `anxind` processes on a real PostgreSQL pair: the leader
//! killed (SIGKILL) at random moments under load from clients that retry, and paused
//! (SIGSTOP) past its lease. `ANXIN_REPL_ROUNDS` (CI: 3) sets how many leaders die.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anxin::api::pb;
use anxin::ledger::{Ledger, LedgerOptions};

use crate::harness::{enrol, nid, open_account, register, topup, Auth, COUNTY};
use crate::pg::PgPair;
use crate::process::{start_on, Anxind, BATCH};

/// A node: its data directory, port and config file, and the process when it runs.
struct Node {
    name: String,
    data: PathBuf,
    port: u16,
    config: PathBuf,
    proc: Option<Anxind>,
}

impl Node {
    fn addr(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

fn config(dir: &Path, pair: &PgPair, name: &str, port: u16, key: &Path) -> PathBuf {
    config_with(dir, pair, name, port, key, &dir.join("vault.key"))
}

fn config_with(dir: &Path, pair: &PgPair, name: &str, port: u16, key: &Path, vault_key: &Path) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let dsns: Vec<String> = pair.dsns().iter().map(|d| format!("{d:?}")).collect();
    std::fs::write(
        &path,
        format!(
            "ledger_id = \"anxin-test\"\nsigning_key = {key:?}\nvault_key = {vault_key:?}\nscrub_interval_s = 0\nfault_exit_delay_ms = 100\n[replication]\ndsns = [{}]\nnode_id = \"{name}\"\nadvertise = \"http://127.0.0.1:{port}\"\nlease_ms = 1000\n",
            dsns.join(", ")
        ),
    )
    .unwrap();
    path
}

async fn launch(n: &mut Node) {
    let cfg = n.config.to_str().unwrap().to_owned();
    n.proc = Some(start_on(n.port, &n.data, &["--config", &cfg], "warn,anxin::replica=info", Some(&n.data.with_extension("log")), &[]).await);
}

/// Whether the node's posting service is SERVING (it leads).
async fn leads(n: &Node) -> bool {
    let Ok(ch) = tonic::transport::Channel::from_shared(n.addr()).unwrap().connect_timeout(Duration::from_millis(300)).connect().await else { return false };
    let mut h = tonic_health::pb::health_client::HealthClient::new(ch);
    matches!(
        tokio::time::timeout(Duration::from_millis(500), h.check(tonic_health::pb::HealthCheckRequest { service: "anxin.v1.LedgerPosting".into() })).await,
        Ok(Ok(r)) if r.get_ref().status == tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    )
}

/// Where clients find the nodes: (address, token) of each running one.
type Directory = Arc<Mutex<Vec<(String, String)>>>;

/// Submits one batch until some node acknowledges it (retrying the same request id on
/// the leader a follower names, or on the next node): its (first, last) seq.
async fn submit_until_acked(dir: &Directory, id: &str, cmds: Vec<pb::Command>, stop: &AtomicBool) -> Option<(u64, u64, String)> {
    let mut hint: Option<String> = None;
    let mut k = 0usize;
    let t0 = Instant::now();
    loop {
        let nodes = dir.lock().unwrap().clone();
        let (addr, token) = match hint.take().and_then(|h| nodes.iter().find(|(a, _)| *a == h).cloned()) {
            Some(n) => n,
            None => {
                k += 1;
                nodes[k % nodes.len()].clone()
            }
        };
        let attempt = async {
            let ch = tonic::transport::Channel::from_shared(addr.clone()).unwrap().connect_timeout(Duration::from_millis(300)).connect().await.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
            let mut p = pb::ledger_posting_client::LedgerPostingClient::with_interceptor(ch, Auth(Some(token)));
            p.submit(pb::SubmitRequest { request_id: id.to_owned(), commands: cmds.clone() }).await
        };
        match tokio::time::timeout(Duration::from_secs(5), attempt).await {
            Ok(Ok(r)) => return Some((r.get_ref().first_seq, r.get_ref().last_seq, addr)),
            Ok(Err(s)) => {
                hint = s.metadata().get(anxin::api::error::LEADER_KEY).and_then(|v| v.to_str().ok()).map(str::to_owned);
                let (reason, _) = anxin::api::error::reason_of(&s);
                // (A node restarted by the test has a new token until the directory says
                // so: UNAUTHENTICATED is the harness's, and retried.)
                assert!(
                    matches!(s.code(), tonic::Code::Unavailable | tonic::Code::FailedPrecondition | tonic::Code::Unknown | tonic::Code::Cancelled | tonic::Code::DeadlineExceeded | tonic::Code::Unauthenticated),
                    "{id}: an answer that is neither an acknowledgement nor a retryable refusal: {s:?} ({reason:?})"
                );
            }
            Err(_) => {}
        }
        // A client gives up a batch only when told to stop, and then it was never
        // acknowledged (it may still be in the log, once).
        if stop.load(Ordering::Acquire) && t0.elapsed() > Duration::from_secs(20) {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

type Acked = Arc<Mutex<Vec<(String, u64, u64, String, Instant)>>>;

/// Three nodes of ledger `anxin-test` on `pair`, started, with the project set up.
async fn cluster(pair: &PgPair, dir: &Path) -> (Vec<Node>, Directory, PathBuf) {
    let key = dir.join("ledger.key");
    std::fs::write(&key, [5u8; 32]).unwrap();
    std::fs::write(dir.join("vault.key"), [6u8; 32]).unwrap();
    let mut nodes: Vec<Node> = ["a", "b", "c"]
        .iter()
        .map(|name| {
            let port = crate::process::free_port();
            Node { name: (*name).to_owned(), data: dir.join(name), port, config: config(dir, pair, name, port, &key), proc: None }
        })
        .collect();
    for n in &mut nodes {
        launch(n).await;
    }
    let directory: Directory = Arc::new(Mutex::new(nodes.iter().map(|n| (n.addr(), n.proc.as_ref().unwrap().token.clone())).collect()));
    let setup = submit_until_acked(&directory, "setup", vec![register("P1", COUNTY), open_account("P1", "ICBC")], &AtomicBool::new(false)).await;
    assert!(setup.is_some());
    (nodes, directory, key)
}

/// Four clients posting batches of `BATCH` top-ups until `stop`, each retried until
/// acknowledged.
fn clients(directory: &Directory, stop: &Arc<AtomicBool>, acked: &Acked) -> Vec<tokio::task::JoinHandle<()>> {
    (0..4)
        .map(|c| {
            let (directory, stop, acked) = (directory.clone(), stop.clone(), acked.clone());
            tokio::spawn(async move {
                for b in 0.. {
                    if stop.load(Ordering::Acquire) {
                        return;
                    }
                    let id = format!("c{c}-{b}");
                    let cmds = (0..BATCH).map(|i| topup("P1", &format!("{id}-{i}"), "1")).collect();
                    if let Some((first, last, by)) = submit_until_acked(&directory, &id, cmds, &stop).await {
                        acked.lock().unwrap().push((id, first, last, by, Instant::now()));
                    }
                }
            })
        })
        .collect()
}

async fn leader(nodes: &[Node]) -> usize {
    let t0 = Instant::now();
    loop {
        for (i, n) in nodes.iter().enumerate() {
            if n.proc.is_some() && leads(n).await {
                return i;
            }
        }
        assert!(t0.elapsed() < Duration::from_secs(15), "no leader");
    }
}

/// Stops every node, then checks their logs: one history (a node may trail), every
/// acknowledged batch exactly once where its receipt said, every batch whole or absent.
async fn stop_and_check(nodes: &mut [Node], key: &Path, acked: &Acked) -> usize {
    tokio::time::sleep(Duration::from_secs(2)).await;
    for n in nodes.iter_mut() {
        let p = n.proc.take().unwrap();
        p.signal("-TERM");
        let st = tokio::task::spawn_blocking({
            let mut p = p;
            move || p.child.wait().unwrap()
        })
        .await
        .unwrap();
        if !st.success() {
            let log = std::fs::read_to_string(n.data.with_extension("log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect();
            panic!("{} exits cleanly: {st:?}; its log ends:\n{}", n.name, tail.join("\n"));
        }
    }
    let mut logs: Vec<(String, Vec<Vec<u8>>)> = Vec::new();
    for n in nodes.iter() {
        let l = Ledger::open(&n.data, LedgerOptions { ledger_id: Some("anxin-test".into()), signing_key: Some(key.to_owned()), scrub_at_start: false, ..Default::default() }).unwrap_or_else(|e| panic!("{}: {e}", n.name));
        let (last, _) = l.head();
        logs.push((n.name.clone(), l.read_records(1, last).unwrap().into_iter().map(|(_, b)| b).collect()));
        l.close().unwrap();
    }
    logs.sort_by_key(|(_, r)| std::cmp::Reverse(r.len()));
    let longest = &logs[0].1;
    for (name, recs) in &logs[1..] {
        assert!(longest.len() - recs.len() < 2_000, "{name} trails by {} records", longest.len() - recs.len());
        assert!(recs[..] == longest[..recs.len()], "{name}'s history differs from {}'s", logs[0].0);
    }
    let mut by_request: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (i, bytes) in longest.iter().enumerate() {
        let rec = anxin::ledger::decode_record(bytes).unwrap();
        by_request.entry(rec.request_id.to_string()).or_default().push(i as u64 + 1);
    }
    for (id, first, last, _, _) in acked.lock().unwrap().iter() {
        let seqs = by_request.get(id).unwrap_or_else(|| panic!("acknowledged batch {id} is in no log"));
        assert_eq!(seqs.len(), BATCH, "{id} is in the log exactly once");
        assert_eq!((seqs[0], seqs[BATCH - 1]), (*first, *last), "{id} is where its receipt said");
    }
    for (id, seqs) in &by_request {
        assert!(seqs.len() == BATCH || id == "setup", "{id}: {} records (a batch is whole or absent)", seqs.len());
    }
    longest.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_killed_at_random_moments_loses_no_acknowledged_batch_and_answers_every_retry_once() {
    if !crate::pg::available() {
        return;
    }
    let rounds: usize = std::env::var("ANXIN_REPL_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let pair = tokio::task::block_in_place(PgPair::start);
    let dir = tempfile::tempdir().unwrap();
    let (mut nodes, directory, key) = cluster(&pair, dir.path()).await;
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Acked = Arc::default();
    let clients = clients(&directory, &stop, &acked);
    let seed = std::env::var("ANXIN_REPL_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64);
    eprintln!("seed {seed} (ANXIN_REPL_SEED replays the kill moments)");
    let mut rng = seed;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut takeovers = Vec::new();
    for round in 0..rounds {
        tokio::time::sleep(Duration::from_millis(300 + next() % 700)).await;
        let li = leader(&nodes).await;
        let mut p = nodes[li].proc.take().unwrap();
        p.signal("-KILL");
        let killed = Instant::now();
        let _ = tokio::task::spawn_blocking(move || p.child.wait()).await;
        // The first acknowledgement by another node: the new leader serving.
        let dead = nodes[li].addr();
        let took = loop {
            if let Some(t) = acked.lock().unwrap().iter().filter(|a| a.3 != dead && a.4 > killed).map(|a| a.4).min() {
                break t - killed;
            }
            assert!(killed.elapsed() < Duration::from_secs(20), "round {round}: no acknowledgement after the leader died");
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        takeovers.push(took);
        eprintln!("round {round}: killed {} (leader), the next leader's first acknowledgement after {took:?}, {} batches acknowledged", nodes[li].name, acked.lock().unwrap().len());
        // It comes back, as a follower.
        launch(&mut nodes[li]).await;
        let token = nodes[li].proc.as_ref().unwrap().token.clone();
        directory.lock().unwrap()[li].1 = token;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Release);
    for c in clients {
        c.await.unwrap();
    }
    let records = stop_and_check(&mut nodes, &key, &acked).await;
    let n = acked.lock().unwrap().len();
    assert!(n > 10 * rounds, "load ran: {n} batches");
    takeovers.sort();
    eprintln!("{rounds} leaders killed, {n} batches acknowledged, {records} records; kill to the next leader's first acknowledgement: min {:?}, median {:?}, max {:?}", takeovers[0], takeovers[takeovers.len() / 2], takeovers[takeovers.len() - 1]);
}

/// A leader paused (SIGSTOP) past its lease: another takes over; resumed (SIGCONT), the
/// old one acknowledges nothing (its commits are fenced by the epoch in the database)
/// and follows the new leader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_paused_past_its_lease_acknowledges_nothing_after_and_rejoins_as_a_follower() {
    if !crate::pg::available() {
        return;
    }
    let pair = tokio::task::block_in_place(PgPair::start);
    let dir = tempfile::tempdir().unwrap();
    let (mut nodes, directory, key) = cluster(&pair, dir.path()).await;
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Acked = Arc::default();
    let clients = clients(&directory, &stop, &acked);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let li = leader(&nodes).await;
    let old = nodes[li].addr();
    nodes[li].proc.as_ref().unwrap().signal("-STOP");
    let paused = Instant::now();
    // Another leads and acknowledges.
    loop {
        if acked.lock().unwrap().iter().any(|a| a.3 != old && a.4 > paused) {
            break;
        }
        assert!(paused.elapsed() < Duration::from_secs(20), "no other leader");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    nodes[li].proc.as_ref().unwrap().signal("-CONT");
    let resumed = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Nothing the old leader acknowledged comes after what the new one wrote: every
    // answer it gave (some may arrive after the pause, for commits that returned before
    // the lease ran out) is for records before the new leader's first.
    let acks = acked.lock().unwrap().clone();
    let new_first = acks.iter().filter(|a| a.3 != old && a.4 > paused).map(|a| a.1).min().expect("the new leader acknowledged");
    let late: Vec<_> = acks.iter().filter(|a| a.3 == old && a.2 >= new_first).map(|a| (a.0.clone(), a.1)).collect();
    assert!(late.is_empty(), "the paused leader acknowledged records after the new leader's first ({new_first}): {late:?}");
    // Resumed, it refuses writes with the new leader's address.
    let token = nodes[li].proc.as_ref().unwrap().token.clone();
    let ch = tonic::transport::Channel::from_shared(old.clone()).unwrap().connect().await.unwrap();
    let mut p = pb::ledger_posting_client::LedgerPostingClient::with_interceptor(ch, Auth(Some(token)));
    let e = p.submit(pb::SubmitRequest { request_id: "to-the-old-leader".into(), commands: vec![topup("P1", "OLD-1", "1")] }).await.expect_err("a follower refuses");
    assert_eq!(anxin::api::error::reason_of(&e).0.as_deref(), Some("NOT_LEADER"), "{e:?}");
    let named = e.metadata().get(anxin::api::error::LEADER_KEY).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let ni = leader(&nodes).await;
    assert_eq!(named, Some(nodes[ni].addr()), "it names the new leader");
    assert!(!leads(&nodes[li]).await, "the old leader follows");
    eprintln!("paused {:?}, resumed {:?} ago", resumed - paused, resumed.elapsed());
    stop.store(true, Ordering::Release);
    for c in clients {
        c.await.unwrap();
    }
    stop_and_check(&mut nodes, &key, &acked).await;
}

/// The worker's reference `node` answers for national ID `n`, once it knows it.
async fn worker_ref_on(n: &Node, id: u32) -> String {
    let token = n.proc.as_ref().unwrap().token.clone();
    let ch = tonic::transport::Channel::from_shared(n.addr()).unwrap().connect().await.unwrap();
    let mut q = pb::ledger_query_client::LedgerQueryClient::with_interceptor(ch, Auth(Some(token)));
    let t0 = Instant::now();
    loop {
        match q.get_worker(pb::GetWorkerRequest { who: Some(pb::get_worker_request::Who::NationalId(nid(id))), as_of: String::new() }).await {
            Ok(w) => return w.into_inner().worker_ref,
            Err(e) => assert!(t0.elapsed() < Duration::from_secs(15), "{} never found worker {id}: {e:?}", n.name),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The vault's salts live with the frames: a worker enrolled through one leader keeps
/// one commitment on every node and after the leader dies, so the retried enrolment is
/// answered with its original receipt (not refused as a different request) and every
/// node finds the worker by national ID; a node with another vault secret is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vault_is_replicated_so_a_worker_is_one_person_on_every_node_and_after_a_failover() {
    if !crate::pg::available() {
        return;
    }
    let pair = tokio::task::block_in_place(PgPair::start);
    let dir = tempfile::tempdir().unwrap();
    let (mut nodes, directory, _key) = cluster(&pair, dir.path()).await;
    let never = AtomicBool::new(false);
    let batch = vec![enrol("P1", 1), enrol("P1", 2)];
    let (first, last, by) = submit_until_acked(&directory, "enrol-1", batch.clone(), &never).await.unwrap();
    let li = nodes.iter().position(|n| n.addr() == by).unwrap();
    let before: Vec<String> = futures_join(&nodes, 1).await;
    assert!(before.windows(2).all(|w| w[0] == w[1]), "one commitment for worker 1 on every node: {before:?}");
    // The leader dies; the same request again, to whoever leads next.
    let mut p = nodes[li].proc.take().unwrap();
    p.signal("-KILL");
    let _ = tokio::task::spawn_blocking(move || p.child.wait()).await;
    directory.lock().unwrap().remove(li);
    let again = submit_until_acked(&directory, "enrol-1", batch, &never).await.unwrap();
    assert_eq!((again.0, again.1), (first, last), "the retried enrolment is answered with its original receipt");
    assert_ne!(again.2, by);
    // A worker enrolled by the new leader; the old one comes back as a follower and
    // knows both.
    submit_until_acked(&directory, "enrol-3", vec![enrol("P1", 3)], &never).await.unwrap();
    launch(&mut nodes[li]).await;
    let one: Vec<String> = futures_join(&nodes, 1).await;
    let three: Vec<String> = futures_join(&nodes, 3).await;
    assert!(one.iter().all(|r| *r == before[0]), "worker 1 is the same person on every node after the failover: {one:?} vs {:?}", before[0]);
    assert!(three.windows(2).all(|w| w[0] == w[1]) && three[0] != one[0], "worker 3: one commitment everywhere: {three:?}");
    // A node with a vault secret of its own is refused: it would make a second person.
    let other = dir.path().join("other-vault.key");
    std::fs::write(&other, [9u8; 32]).unwrap();
    let port = crate::process::free_port();
    let cfg = config_with(dir.path(), &pair, "d", port, &dir.path().join("ledger.key"), &other);
    let data_d = dir.path().join("d");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_anxind")).args(["--data", data_d.to_str().unwrap(), "--config", cfg.to_str().unwrap()]).env("ANXIN_LOG", "warn").output().unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success() && text.contains("vault secret is not ledger"), "refused: {:?} {text}", out.status);
    for n in &mut nodes {
        if let Some(p) = n.proc.take() {
            p.signal("-TERM");
            let mut p = p;
            let _ = tokio::task::spawn_blocking(move || p.child.wait()).await;
        }
    }
}

/// `worker_ref_on` on every running node.
async fn futures_join(nodes: &[Node], id: u32) -> Vec<String> {
    let mut out = Vec::new();
    for n in nodes.iter().filter(|n| n.proc.is_some()) {
        out.push(worker_ref_on(n, id).await);
    }
    out
}

/// GetBalance of P1's wage account on `n`, asking for at least `min_seq`: (the balance in
/// fen, the sequence number the answer says it reflects), or the refusal.
async fn balance_on(n: &Node, min_seq: Option<u64>) -> Result<(i64, u64), tonic::Status> {
    let token = n.proc.as_ref().unwrap().token.clone();
    let ch = tonic::transport::Channel::from_shared(n.addr()).unwrap().connect().await.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let mut q = pb::ledger_query_client::LedgerQueryClient::with_interceptor(ch, Auth(Some(token)));
    let mut req = tonic::Request::new(pb::GetBalanceRequest { account: "wage:P1".into() });
    if let Some(m) = min_seq {
        req.metadata_mut().insert(anxin::api::MIN_SEQ_KEY, m.into());
    }
    let r = q.get_balance(req).await?;
    let seq: u64 = r.metadata().get(anxin::api::SEQ_KEY).expect("every answer says its sequence number").to_str().unwrap().parse().unwrap();
    let fen = anxin::domain::money::Money::parse(&r.get_ref().balance).expect("a balance").fen();
    Ok((fen, seq))
}

/// Record `seq` as `n` serves it, asked for at once (no waiting).
async fn record_on(n: &Node, seq: u64) -> Result<Vec<u8>, tonic::Status> {
    use tokio_stream::StreamExt;
    let token = n.proc.as_ref().unwrap().token.clone();
    let ch = tonic::transport::Channel::from_shared(n.addr()).unwrap().connect().await.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let mut a = pb::ledger_audit_client::LedgerAuditClient::with_interceptor(ch, Auth(Some(token)));
    let mut s = a.read_events(pb::ReadEventsRequest { from_seq: seq, to_seq: seq }).await?.into_inner();
    let r = s.next().await.ok_or_else(|| tonic::Status::not_found("no record"))??;
    assert_eq!(r.seq, seq);
    Ok(r.canonical)
}

/// A follower paused under load falls behind and catches up. Every answer it gives in
/// between says the record it reflects, holds that record, and is exactly the ledger at
/// it (every record after the set-up is a top-up of ¥1 to P1, so the balance after record
/// S is S - 2 yuan); a read that asks for a receipt's record waits for it, and reads the
/// write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_that_falls_behind_catches_up_and_never_claims_a_record_it_lacks() {
    if !crate::pg::available() {
        return;
    }
    let pair = tokio::task::block_in_place(PgPair::start);
    let dir = tempfile::tempdir().unwrap();
    let (mut nodes, directory, key) = cluster(&pair, dir.path()).await;
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Acked = Arc::default();
    let clients = clients(&directory, &stop, &acked);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let li = leader(&nodes).await;
    let fi = (li + 1) % nodes.len();
    let check = |fen: i64, seq: u64, who: &str| assert_eq!(fen, (seq as i64 - 2) * 100, "{who}: the answer that says it reflects record {seq} is the ledger at record {seq}");
    // Steady: reads from the follower, each checked.
    let mut answers = 0;
    for _ in 0..20 {
        let (fen, seq) = balance_on(&nodes[fi], None).await.unwrap();
        check(fen, seq, "follower");
        record_on(&nodes[fi], seq).await.unwrap_or_else(|e| panic!("the follower said it reflects record {seq} but does not serve it: {e:?}"));
        answers += 1;
    }
    // Paused: it falls behind while the leader goes on.
    nodes[fi].proc.as_ref().unwrap().signal("-STOP");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, leader_seq) = balance_on(&nodes[li], None).await.unwrap();
    nodes[fi].proc.as_ref().unwrap().signal("-CONT");
    let resumed = Instant::now();
    // Read-your-writes: a receipt's record, asked of the follower, is waited for.
    let (fen, seq) = balance_on(&nodes[fi], Some(leader_seq)).await.expect("the follower catches up within the wait");
    assert!(seq >= leader_seq, "asked for at least {leader_seq}, answered at {seq}");
    check(fen, seq, "follower after the pause");
    let caught_up = resumed.elapsed();
    // And every answer while it catches up and after is whole.
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(2) {
        let (fen, seq) = balance_on(&nodes[fi], None).await.unwrap();
        check(fen, seq, "follower");
        let on_f = record_on(&nodes[fi], seq).await.unwrap_or_else(|e| panic!("the follower said it reflects record {seq} but does not serve it: {e:?}"));
        let on_l = record_on(&nodes[li], seq).await.unwrap();
        assert_eq!(on_f, on_l, "record {seq} is the same on the follower and the leader");
        answers += 1;
    }
    // A record no node has yet: refused after the wait, saying what the node holds.
    let far = leader_seq + 100_000_000;
    let e = balance_on(&nodes[fi], Some(far)).await.expect_err("a record nobody has");
    assert_eq!(anxin::api::error::reason_of(&e).0.as_deref(), Some("SEQ_NOT_REACHED"), "{e:?}");
    let have: u64 = e.metadata().get(anxin::api::SEQ_KEY).unwrap().to_str().unwrap().parse().unwrap();
    assert!(have >= leader_seq && have < far);
    eprintln!("the follower, paused 1.5 s while the leader reached record {leader_seq}, answered for it {caught_up:?} after it resumed; {answers} answers checked");
    stop.store(true, Ordering::Release);
    for c in clients {
        c.await.unwrap();
    }
    stop_and_check(&mut nodes, &key, &acked).await;
}
