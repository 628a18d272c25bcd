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

fn config_with(dir: &Path, dsns: &[String], name: &str, port: u16, key: &Path, vault_key: &Path) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let dsns: Vec<String> = dsns.iter().map(|d| format!("{d:?}")).collect();
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

/// Sends `sig` to the node's process and waits for it to end: the moment it was sent.
async fn stop_node(n: &mut Node, sig: &str) -> Instant {
    let mut p = n.proc.take().expect("the node runs");
    p.signal(sig);
    let sent = Instant::now();
    let _ = tokio::task::spawn_blocking(move || p.child.wait()).await;
    sent
}

/// `launch`, and clients find the node (its new token) in the directory at `i`.
async fn relaunch(n: &mut Node, directory: &Directory, i: usize) {
    launch(n).await;
    directory.lock().unwrap()[i].1 = n.proc.as_ref().unwrap().token.clone();
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

/// `OUTCOME_UNKNOWN` answers the clients got (each then retried).
static OUTCOME_UNKNOWN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

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
                if reason.as_deref() == Some("OUTCOME_UNKNOWN") {
                    OUTCOME_UNKNOWN.fetch_add(1, Ordering::Relaxed);
                }
                // (A node restarted by the test has a new token until the directory says
                // so: UNAUTHENTICATED is the harness's, and retried.)
                // (A transport error, such as a server ending its connections with GOAWAY
                // while it rebuilds its copy, reaches the client as INTERNAL with its cause.)
                let transport = s.code() == tonic::Code::Internal && std::error::Error::source(&s).is_some();
                assert!(
                    transport || matches!(s.code(), tonic::Code::Unavailable | tonic::Code::FailedPrecondition | tonic::Code::Unknown | tonic::Code::Cancelled | tonic::Code::DeadlineExceeded | tonic::Code::Unauthenticated),
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
    cluster_on(dir, &[pair.dsns(), pair.dsns(), pair.dsns()]).await
}

/// `cluster`, node `i` reaching the database by `dsns[i]`.
async fn cluster_on(dir: &Path, dsns: &[Vec<String>]) -> (Vec<Node>, Directory, PathBuf) {
    let key = dir.join("ledger.key");
    std::fs::write(&key, [5u8; 32]).unwrap();
    std::fs::write(dir.join("vault.key"), [6u8; 32]).unwrap();
    let mut nodes: Vec<Node> = ["a", "b", "c"]
        .iter()
        .zip(dsns)
        .map(|(name, dsns)| {
            let port = crate::process::free_port();
            Node { name: (*name).to_owned(), data: dir.join(name), port, config: config_with(dir, dsns, name, port, &key, &dir.join("vault.key")), proc: None }
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

/// An auditor that asks whichever node it reaches (in turn) for the latest checkpoint,
/// at least as large as the last it verified (`anxin-min-seq`), checks its signature
/// against the pinned key and its consistency with the last (a proof from the same node),
/// until `stop`: the checkpoints it was shown, in order.
fn auditor(directory: &Directory, stop: &Arc<AtomicBool>) -> tokio::task::JoinHandle<Vec<(u64, String)>> {
    let (directory, stop) = (directory.clone(), stop.clone());
    tokio::spawn(async move {
        let key = ed25519_dalek::SigningKey::from_bytes(&[5u8; 32]).verifying_key();
        let mut last: Option<anxin::chain::checkpoint::SignedCheckpoint> = None;
        let mut seen = Vec::new();
        let mut k = 0usize;
        while !stop.load(Ordering::Acquire) {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let nodes = directory.lock().unwrap().clone();
            k += 1;
            let (addr, token) = nodes[k % nodes.len()].clone();
            let Ok(Ok(ch)) = tokio::time::timeout(Duration::from_millis(500), tonic::transport::Channel::from_shared(addr.clone()).unwrap().connect()).await else { continue };
            let mut a = pb::ledger_audit_client::LedgerAuditClient::with_interceptor(ch, Auth(Some(token)));
            let mut req = tonic::Request::new(pb::GetCheckpointRequest::default());
            if let Some(l) = &last {
                req.metadata_mut().insert(anxin::api::MIN_SEQ_KEY, l.checkpoint.tree_size.into());
            }
            let Ok(Ok(r)) = tokio::time::timeout(Duration::from_secs(6), a.get_checkpoint(req)).await else { continue };
            let cp = anxin::api::convert::checkpoint_from_pb(r.get_ref()).unwrap();
            anxin::audit::check_checkpoint(&cp, &key, "anxin-test").unwrap_or_else(|e| panic!("{addr}: a checkpoint the pinned key did not sign: {e}"));
            if let Some(l) = &last {
                let (from, to) = (l.checkpoint.tree_size, cp.checkpoint.tree_size);
                assert!(to >= from, "{addr} showed a checkpoint of {to} records after one of {from} was verified: it went backwards");
                let proof = if from == 0 || from == to {
                    Vec::new()
                } else {
                    match a.get_consistency_proof(pb::GetConsistencyProofRequest { from_size: from, to_size: to }).await {
                        Ok(p) => p.into_inner().path.iter().map(|h| h.as_slice().try_into().unwrap()).collect(),
                        Err(_) => continue, // the node died meanwhile
                    }
                };
                anxin::audit::check_consistency(&l.checkpoint, &cp.checkpoint, &proof).unwrap_or_else(|e| panic!("{addr}: checkpoint {to} is not consistent with {from}: {e}"));
            }
            seen.push((cp.checkpoint.tree_size, addr));
            last = Some(cp);
        }
        seen
    })
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
    let audit = auditor(&directory, &stop);
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
        let killed = stop_node(&mut nodes[li], "-KILL").await;
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
        relaunch(&mut nodes[li], &directory, li).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Release);
    for c in clients {
        c.await.unwrap();
    }
    let seen = audit.await.unwrap();
    let shown_by: std::collections::BTreeSet<&str> = seen.iter().map(|(_, a)| a.as_str()).collect();
    assert!(seen.len() > 5 * rounds && shown_by.len() >= 2, "the auditor checked checkpoints across takeovers from several nodes: {} from {shown_by:?}", seen.len());
    eprintln!("auditor: {} checkpoints from {} nodes, each signed by the pinned key and consistent with the one before, never smaller", seen.len(), shown_by.len());
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
        match q.get_worker(pb::GetWorkerRequest { at_seq: 0, who: Some(pb::get_worker_request::Who::NationalId(nid(id))), as_of: String::new() }).await {
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
    stop_node(&mut nodes[li], "-KILL").await;
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
    let cfg = config_with(dir.path(), &pair.dsns(), "d", port, &dir.path().join("ledger.key"), &other);
    let data_d = dir.path().join("d");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_anxind")).args(["--data", data_d.to_str().unwrap(), "--config", cfg.to_str().unwrap()]).env("ANXIN_LOG", "warn").output().unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success() && text.contains("vault secret is not ledger"), "refused: {:?} {text}", out.status);
    for n in nodes.iter_mut().filter(|n| n.proc.is_some()) {
        stop_node(n, "-TERM").await;
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
    let mut req = tonic::Request::new(pb::GetBalanceRequest { as_of: String::new(), at_seq: 0, account: "wage:P1".into() });
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
    record_on_at_least(n, seq, None).await
}

/// `record_on`, asking the node to answer only once it holds record `min_seq`.
async fn record_on_at_least(n: &Node, seq: u64, min_seq: Option<u64>) -> Result<Vec<u8>, tonic::Status> {
    use tokio_stream::StreamExt;
    let token = n.proc.as_ref().unwrap().token.clone();
    let ch = tonic::transport::Channel::from_shared(n.addr()).unwrap().connect().await.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let mut a = pb::ledger_audit_client::LedgerAuditClient::with_interceptor(ch, Auth(Some(token)));
    let mut req = tonic::Request::new(pb::ReadEventsRequest { from_seq: seq, to_seq: seq });
    if let Some(m) = min_seq {
        req.metadata_mut().insert(anxin::api::MIN_SEQ_KEY, m.to_string().parse().unwrap());
    }
    let mut s = a.read_events(req).await?.into_inner();
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
        // The leader writes its own copy after the database's commit, which the
        // follower may already have read: ask it for the record once it holds it.
        let on_l = record_on_at_least(&nodes[li], seq, Some(seq)).await.unwrap();
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

/// A TCP proxy between one node and the database's primary that the test cuts: at the
/// next `COMMIT` the node sends (forwarding it first, or not), every connection through
/// it is closed and new ones are refused until it is healed.
struct Proxy {
    port: u16,
    /// 0 passes; 1 cuts after forwarding the next COMMIT; 2 cuts before it; 3 is cut.
    mode: Arc<std::sync::atomic::AtomicU8>,
    conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Proxy {
    async fn start(upstream: u16) -> Proxy {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(std::sync::atomic::AtomicU8::new(0));
        let conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (m, cs) = (mode.clone(), conns.clone());
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else { return };
                if m.load(Ordering::Acquire) == 3 {
                    continue; // dropped: refused
                }
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await else { continue };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let (m2, cs2) = (m.clone(), cs.clone());
                let up = tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match cr.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        let mode = m2.load(Ordering::Acquire);
                        let commit = buf[..n].windows(6).any(|w| w == b"COMMIT");
                        if mode == 3 {
                            return;
                        }
                        if commit && (mode == 1 || mode == 2) {
                            if mode == 1 {
                                let _ = sw.write_all(&buf[..n]).await;
                            }
                            m2.store(3, Ordering::Release);
                            for h in cs2.lock().unwrap().drain(..) {
                                h.abort();
                            }
                            return;
                        }
                        if sw.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
                let down = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut sr, &mut cw).await;
                });
                let mut c = cs.lock().unwrap();
                c.push(up.abort_handle());
                c.push(down.abort_handle());
            }
        });
        Proxy { port, mode, conns }
    }

    fn arm(&self, after_forwarding: bool) {
        self.mode.store(if after_forwarding { 1 } else { 2 }, Ordering::Release);
    }

    fn is_cut(&self) -> bool {
        self.mode.load(Ordering::Acquire) == 3
    }

    fn heal(&self) {
        self.conns.lock().unwrap().retain(|h| !h.is_finished());
        self.mode.store(0, Ordering::Release);
    }
}

/// The leader cut off the database in the middle of a commit, while its clients still
/// reach it: after the commit reached the database (the frame is there, its answer is
/// not) and before (the frame is not there). Nothing whose outcome the leader could not
/// know is acknowledged (clients are answered OUTCOME_UNKNOWN and retry the same request
/// id); the leader steps down, another takes over and its catch-up decides; every
/// request id ends with exactly one outcome, at the place the log holds it, on every
/// node. `ANXIN_CUT_ROUNDS` (CI: 2) sets how many cuts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_the_database_mid_commit_acknowledges_nothing_unknown_and_the_next_leader_decides() {
    if !crate::pg::available() {
        return;
    }
    let rounds: usize = std::env::var("ANXIN_CUT_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    let pair = tokio::task::block_in_place(PgPair::start);
    let dir = tempfile::tempdir().unwrap();
    let mut proxies = Vec::new();
    for _ in 0..3 {
        proxies.push(Proxy::start(pair.primary).await);
    }
    // Each node reaches the primary only through its proxy (the standby is no primary).
    let dsns: Vec<Vec<String>> = proxies.iter().map(|p| vec![crate::pg::dsn(p.port), crate::pg::dsn(pair.standby)]).collect();
    let (mut nodes, directory, key) = cluster_on(dir.path(), &dsns).await;
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Acked = Arc::default();
    let clients = clients(&directory, &stop, &acked);
    let unknown_before = OUTCOME_UNKNOWN.load(Ordering::Relaxed);
    for round in 0..rounds {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let li = leader(&nodes).await;
        let after = round % 2 == 0;
        proxies[li].arm(after);
        let armed = Instant::now();
        while !proxies[li].is_cut() {
            assert!(armed.elapsed() < Duration::from_secs(20), "round {round}: the leader made no commit");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let cut = Instant::now();
        // Another node leads and acknowledges; the cut one acknowledges nothing after.
        let old = nodes[li].addr();
        let took = loop {
            if let Some(t) = acked.lock().unwrap().iter().filter(|a| a.3 != old && a.4 > cut).map(|a| a.4).min() {
                break t - cut;
            }
            assert!(cut.elapsed() < Duration::from_secs(20), "round {round}: no other leader after the cut");
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let late: Vec<String> = acked.lock().unwrap().iter().filter(|a| a.3 == old && a.4 > cut + Duration::from_millis(50)).map(|a| a.0.clone()).collect();
        assert!(late.is_empty(), "round {round}: the cut leader acknowledged {late:?} after it lost the database");
        eprintln!("round {round}: {} cut off {} forwarding a COMMIT; the next leader's first acknowledgement after {took:?}", nodes[li].name, if after { "after" } else { "before" });
        tokio::time::sleep(Duration::from_millis(500)).await;
        proxies[li].heal();
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::Release);
    for c in clients {
        c.await.unwrap();
    }
    let unknown = OUTCOME_UNKNOWN.load(Ordering::Relaxed) - unknown_before;
    assert!(unknown > 0, "a cut after the COMMIT was forwarded leaves its outcome unknown: the clients were told so");
    let records = stop_and_check(&mut nodes, &key, &acked).await;
    eprintln!("{rounds} cuts, {unknown} OUTCOME_UNKNOWN answers retried, {} batches acknowledged, {records} records, one history", acked.lock().unwrap().len());
}

/// Changes one byte of `node`'s log, a `fraction` of the way into its first segment.
fn damage_log(n: &Node, fraction: f64) -> u64 {
    let seg = std::fs::read_dir(n.data.join("log")).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "seg")).min().expect("a segment");
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = (bytes.len() as f64 * fraction) as usize;
    bytes[at] ^= 0x20;
    std::fs::write(&seg, bytes).unwrap();
    at as u64
}

/// Waits until `n`'s server log says it rebuilt its copy from the database.
async fn wait_for_repair(n: &Node) -> String {
    let t0 = Instant::now();
    loop {
        let log = std::fs::read_to_string(n.data.with_extension("log")).unwrap_or_default();
        if let Some(line) = log.lines().find(|l| l.contains("REPAIR")) {
            return line.to_owned();
        }
        assert!(t0.elapsed() < Duration::from_secs(40), "{} never said it repaired its copy", n.name);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A node whose own log is damaged (a byte changed while it was down) finds it, by its
/// start (no snapshot: the whole log is replayed) or by its scrub (a snapshot past the
/// damage: the start does not read there), sets its copy aside, rebuilds it from the
/// database's frames, says so in its log, and then holds the same history as the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_own_log_is_damaged_rebuilds_it_from_the_database_and_says_so() {
    if !crate::pg::available() {
        return;
    }
    let pair = tokio::task::block_in_place(PgPair::start);
    let dir = tempfile::tempdir().unwrap();
    let (mut nodes, directory, key) = cluster(&pair, dir.path()).await;
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Acked = Arc::default();
    let clients = clients(&directory, &stop, &acked);
    let li = leader(&nodes).await;
    let (by_scrub, by_start) = ((li + 1) % 3, (li + 2) % 3);
    // The one the scrub must find takes snapshots often.
    let cfg = std::fs::read_to_string(&nodes[by_scrub].config).unwrap().replace("[replication]", "snapshot_records = 300\n[replication]");
    std::fs::write(&nodes[by_scrub].config, cfg).unwrap();
    for i in [by_scrub, by_start] {
        stop_node(&mut nodes[i], "-TERM").await;
        relaunch(&mut nodes[i], &directory, i).await;
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    for (i, fraction) in [(by_scrub, 0.1), (by_start, 0.5)] {
        stop_node(&mut nodes[i], "-TERM").await;
        let at = damage_log(&nodes[i], fraction);
        if i == by_start {
            // No snapshot (a clean stop leaves one): the start replays the whole log.
            std::fs::remove_dir_all(nodes[i].data.join("snapshots")).unwrap();
        }
        eprintln!("{}: one byte changed at offset {at} of its first segment", nodes[i].name);
    }
    for i in [by_scrub, by_start] {
        relaunch(&mut nodes[i], &directory, i).await;
    }
    for (i, found_by) in [(by_scrub, "the scrub"), (by_start, "the start")] {
        let line = wait_for_repair(&nodes[i]).await;
        eprintln!("{}: {line}", nodes[i].name);
        assert!(line.contains(found_by), "{}: found by {found_by}: {line}", nodes[i].name);
        let aside = std::fs::read_dir(dir.path()).unwrap().filter_map(|e| e.ok()).any(|e| e.file_name().to_string_lossy().starts_with(&format!("{}.damaged-", nodes[i].name)));
        assert!(aside, "{}: the damaged copy is kept aside", nodes[i].name);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Release);
    for c in clients {
        c.await.unwrap();
    }
    stop_and_check(&mut nodes, &key, &acked).await;
}

/// A damaged copy holding records the database lacks (here: a ledger that ran on one
/// machine before it was replicated) is never set aside for a rebuild: its records may
/// exist nowhere else. The node refuses to start, says why, and leaves the copy in place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_copy_with_records_the_database_lacks_is_left_for_an_operator() {
    if !crate::pg::available() {
        return;
    }
    let pair = tokio::task::block_in_place(PgPair::start);
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("ledger.key");
    std::fs::write(&key, [5u8; 32]).unwrap();
    std::fs::write(dir.path().join("vault.key"), [6u8; 32]).unwrap();
    let data = dir.path().join("alone");
    {
        let l = Ledger::open(&data, LedgerOptions { ledger_id: Some("anxin-test".into()), signing_key: Some(key.clone()), scrub_at_start: false, ..Default::default() }).unwrap();
        for b in 0..20 {
            let cmds = if b == 0 { vec![crate::common::register("P1"), crate::common::open_account("P1")] } else { (0..10).map(|i| crate::common::topup("P1", &format!("T{b}-{i}"), "1")).collect() };
            l.submit(anxin::domain::principal::Principal::Operator, anxin::domain::ids::RequestId::parse(&format!("r{b}")).unwrap(), cmds).unwrap().unwrap();
        }
        l.close().unwrap();
    }
    std::fs::remove_dir_all(data.join("snapshots")).unwrap();
    // The ledger is known to the database, with none of those records.
    tokio::task::block_in_place(|| {
        let mut c = pair.client(pair.primary);
        anxin::replica::pg::prepare(&mut c, false).unwrap();
        let pk = ed25519_dalek::SigningKey::from_bytes(&[5u8; 32]).verifying_key().to_bytes();
        anxin::replica::pg::register(&mut c, "anxin-test", &anxin::chain::record::genesis_hash("anxin-test"), &pk).unwrap();
    });
    let n = Node { name: "alone".into(), data: data.clone(), port: 0, config: PathBuf::new(), proc: None };
    damage_log(&n, 0.5);
    let port = crate::process::free_port();
    let cfg = config_with(dir.path(), &pair.dsns(), "alone", port, &key, &dir.path().join("vault.key"));
    let data_s = data.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_anxind")).args(["--data", data_s.to_str().unwrap(), "--config", cfg.to_str().unwrap(), "--listen", &format!("127.0.0.1:{port}")]).env("ANXIN_LOG", "warn").output().unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success() && text.contains("not rebuilt from the database") && text.contains("may exist nowhere else"), "refused, saying why: {:?} {text}", out.status);
    assert!(data.join("log").exists(), "the copy stays where it was");
    let aside = std::fs::read_dir(dir.path()).unwrap().filter_map(|e| e.ok()).any(|e| e.file_name().to_string_lossy().contains(".damaged-"));
    assert!(!aside, "nothing was set aside");
}
