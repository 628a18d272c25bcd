//! The replicated ledger (issue 14) on a real PostgreSQL primary with a synchronous
//! standby (`pg.rs`): nodes in this process first; `anxind` processes killed and paused
//! in `replication_process.rs`.

use std::path::Path;
use std::time::{Duration, Instant};

use anxin::ledger::{Ledger, LedgerOptions, Receipt};
use anxin::replica::{ReplicaOptions, Role};
use anxin::store::StoreError;

use crate::common::*;
use crate::pg::PgPair;
use crate::store::{operator, opts, rid};

/// The ledger's signing key, shared by its nodes (kept beside the database's files).
fn shared_key(pair: &PgPair) -> std::path::PathBuf {
    let path = pair.dir.path().join("ledger.key");
    if !path.exists() {
        std::fs::write(&path, [9u8; 32]).unwrap();
    }
    path
}

fn node(dir: &Path, pair: &PgPair, name: &str) -> Ledger {
    let r = ReplicaOptions { lease: Duration::from_millis(1_500), ..ReplicaOptions::new(pair.dsns(), name, &format!("http://{name}:50051")) };
    Ledger::open(dir, LedgerOptions { replication: Some(r), scrub_at_start: false, signing_key: Some(shared_key(pair)), ..opts() }).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(t0.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn post(l: &Ledger, id: &str, n: usize) -> Receipt {
    l.submit(operator(), rid(id), (0..n).map(|i| topup("P1", &format!("{id}-{i}"), "1")).collect()).expect("no fault").expect("accepted")
}

fn leader_index(nodes: &[Option<Ledger>]) -> Option<usize> {
    let leaders: Vec<usize> = (0..nodes.len()).filter(|&i| nodes[i].as_ref().is_some_and(|l| matches!(l.role(), Some(Role::Leader { .. })))).collect();
    assert!(leaders.len() <= 1, "two leaders at once: {leaders:?}");
    leaders.first().copied()
}

const NAMES: [&str; 3] = ["a", "b", "c"];

#[test]
fn one_leader_writes_followers_follow_and_a_follower_takes_over_with_every_answer_kept() {
    if !crate::pg::available() {
        return;
    }
    let pair = PgPair::start();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes: Vec<Option<Ledger>> = (0..3).map(|i| Some(node(dirs[i].path(), &pair, NAMES[i]))).collect();
    let li = wait_for("a leader", Duration::from_secs(10), || leader_index(&nodes));
    let leader = nodes[li].as_ref().unwrap();
    leader.submit(operator(), rid("setup"), vec![register("P1"), open_account("P1")]).unwrap().unwrap();
    let receipts: Vec<Receipt> = (0..20).map(|k| post(leader, &format!("b{k}"), 10)).collect();
    let head = leader.head();
    // Followers: refuse writes naming the leader, and catch up.
    for fi in (0..3).filter(|&i| i != li) {
        let f = nodes[fi].as_ref().unwrap();
        match f.submit(operator(), rid("nope"), vec![topup("P1", "X", "1")]) {
            Err(StoreError::NotLeader { leader: addr }) => {
                let addr = wait_for("the leader's address", Duration::from_secs(5), || match f.role() {
                    Some(Role::Follower { leader: Some(a) }) => Some(a),
                    _ => addr.clone(),
                });
                assert_eq!(addr, format!("http://{}:50051", NAMES[li]));
            }
            other => panic!("a follower took a write: {other:?}"),
        }
        wait_for("a follower catching up", Duration::from_secs(10), || (f.head() == head).then_some(()));
        assert_eq!(f.read_records(1, head.0).unwrap(), leader.read_records(1, head.0).unwrap(), "the same records, byte for byte");
        assert_eq!(f.state().unwrap().wage_balance(&pid("P1")), leader.state().unwrap().wage_balance(&pid("P1")));
    }
    // The leader goes away (a clean stop gives its lease up); another takes over.
    nodes[li].take().unwrap().close().unwrap();
    let t0 = Instant::now();
    let ni = wait_for("a new leader", Duration::from_secs(10), || leader_index(&nodes));
    eprintln!("takeover after a clean stop: {:?}", t0.elapsed());
    let next = nodes[ni].as_ref().unwrap();
    // Every answer is kept: a retry gets the original receipt.
    for (k, r) in receipts.iter().enumerate().step_by(7) {
        let again = next.submit(operator(), rid(&format!("b{k}")), (0..10).map(|i| topup("P1", &format!("b{k}-{i}"), "1")).collect()).unwrap().unwrap();
        assert!(again.replayed, "b{k} is answered from the replicated log");
        assert_eq!((again.first_seq, again.last_seq, again.head), (r.first_seq, r.last_seq, r.head));
    }
    let after = post(next, "after", 5);
    assert_eq!(after.first_seq, head.0 + 1, "the history goes on where it was");
    let oi = (0..3).find(|&i| i != li && i != ni).unwrap();
    let other = nodes[oi].as_ref().unwrap();
    wait_for("the other follower", Duration::from_secs(10), || (other.head() == next.head()).then_some(()));
    // A node with another signing key is refused (auditors pin one key per ledger).
    let stranger = tempfile::tempdir().unwrap();
    let r = ReplicaOptions::new(pair.dsns(), "d", "http://d:50051");
    let e = Ledger::open(stranger.path(), LedgerOptions { replication: Some(r), scrub_at_start: false, ..opts() }).err().expect("another key is refused");
    assert!(e.to_string().contains("share its signing key"), "{e}");
    // The old leader's node comes back as a follower and catches up.
    let back = node(dirs[li].path(), &pair, NAMES[li]);
    wait_for("the old leader following", Duration::from_secs(10), || (back.head() == next.head()).then_some(()));
    assert!(matches!(back.role(), Some(Role::Follower { .. })));
    back.close().unwrap();
    for n in nodes.into_iter().flatten() {
        n.close().unwrap();
    }
}

/// Retries `id` on whichever node leads until one acknowledges it (a refusal or an
/// unknown outcome is retried; the request id makes the retry safe).
fn post_anywhere(nodes: &[Option<Ledger>], id: &str, n: usize, give_up: Duration) -> Option<Receipt> {
    let t0 = Instant::now();
    loop {
        for l in nodes.iter().flatten() {
            match l.submit(operator(), rid(id), (0..n).map(|i| topup("P1", &format!("{id}-{i}"), "1")).collect()) {
                Ok(Ok(r)) => return Some(r),
                Ok(Err(rej)) => panic!("{id}: refused: {rej:?}"),
                Err(_) => {}
            }
        }
        if t0.elapsed() > give_up {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The database's primary dies; the standby is promoted: the nodes find it in their
/// connection list, a leader goes on, and no acknowledged batch is lost.
#[test]
fn the_database_primary_lost_and_the_standby_promoted_loses_no_acknowledged_batch() {
    if !crate::pg::available() {
        return;
    }
    let pair = PgPair::start();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let nodes: Vec<Option<Ledger>> = (0..3).map(|i| Some(node(dirs[i].path(), &pair, NAMES[i]))).collect();
    wait_for("a leader", Duration::from_secs(10), || leader_index(&nodes));
    let li = leader_index(&nodes).unwrap();
    nodes[li].as_ref().unwrap().submit(operator(), rid("setup"), vec![register("P1"), open_account("P1")]).unwrap().unwrap();
    let mut acked = Vec::new();
    for k in 0..20 {
        acked.push((format!("before{k}"), post_anywhere(&nodes, &format!("before{k}"), 10, Duration::from_secs(10)).expect("acknowledged")));
    }
    pair.kill_primary();
    let killed = Instant::now();
    pair.promote_standby_and_rebuild();
    let first = post_anywhere(&nodes, "after0", 10, Duration::from_secs(30)).expect("a leader goes on after the failover");
    let without = killed.elapsed();
    acked.push(("after0".into(), first));
    for k in 1..20 {
        acked.push((format!("after{k}"), post_anywhere(&nodes, &format!("after{k}"), 10, Duration::from_secs(10)).expect("acknowledged")));
    }
    eprintln!("database failover: the first acknowledgement {without:?} after the primary died");
    let li = leader_index(&nodes).expect("a leader");
    let head = nodes[li].as_ref().unwrap().head();
    for l in nodes.iter().flatten() {
        wait_for("every node at the leader's head", Duration::from_secs(10), || (l.head() == head).then_some(()));
        for (id, r) in &acked {
            let recs = l.read_records(r.first_seq, r.last_seq).unwrap();
            assert_eq!(recs.len(), 10, "{id}");
            for (_, bytes) in recs {
                assert_eq!(anxin::ledger::decode_record(&bytes).unwrap().request_id.as_str(), id, "{id} where its receipt said");
            }
        }
    }
    for n in nodes.into_iter().flatten() {
        n.close().unwrap();
    }
}

/// A follower whose data directory is lost rebuilds itself from the database and serves
/// the same records; a frame altered in the database is refused by every node that
/// reads it, named, and nothing past it is applied.
#[test]
fn a_lost_follower_rebuilds_from_the_database_and_an_altered_frame_is_refused_by_name() {
    if !crate::pg::available() {
        return;
    }
    let pair = PgPair::start();
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes: Vec<Option<Ledger>> = (0..2).map(|i| Some(node(dirs[i].path(), &pair, NAMES[i]))).collect();
    let li = wait_for("a leader", Duration::from_secs(10), || leader_index(&nodes));
    let fi = 1 - li;
    let leader = nodes[li].as_ref().unwrap();
    leader.submit(operator(), rid("setup"), vec![register("P1"), open_account("P1")]).unwrap().unwrap();
    for k in 0..10 {
        post(leader, &format!("b{k}"), 10);
    }
    let head = leader.head();
    // The follower's directory is lost: a new one rebuilds from the database.
    nodes[fi].take().unwrap().close().unwrap();
    let lost = tempfile::tempdir().unwrap();
    let rebuilt = node(lost.path(), &pair, NAMES[fi]);
    wait_for("the rebuilt follower", Duration::from_secs(10), || (rebuilt.head() == head).then_some(()));
    assert_eq!(rebuilt.read_records(1, head.0).unwrap(), nodes[li].as_ref().unwrap().read_records(1, head.0).unwrap());
    assert_eq!(rebuilt.state().unwrap().wage_balance(&pid("P1")), nodes[li].as_ref().unwrap().state().unwrap().wage_balance(&pid("P1")));
    rebuilt.close().unwrap();
    // One byte of frame 5's records changed in the database (behind the trigger's back).
    let mut c = pair.client(pair.primary);
    c.batch_execute("SET session_replication_role = replica; UPDATE anxin_frame SET records = set_byte(records, 60, (get_byte(records, 60) + 1) % 256) WHERE frame_no = 5").unwrap();
    let fresh = tempfile::tempdir().unwrap();
    let reader = node(fresh.path(), &pair, "d");
    let d = wait_for("the altered frame refused", Duration::from_secs(10), || reader.damage());
    assert!(d.at.contains("database frame 5"), "{d}");
    let (seq, _) = reader.head();
    let row: i64 = c.query_one("SELECT first_seq FROM anxin_frame WHERE frame_no = 5", &[]).unwrap().get(0);
    assert_eq!(seq, row as u64 - 1, "nothing past the frame before it");
    reader.close().unwrap();
    for n in nodes.into_iter().flatten() {
        n.close().unwrap();
    }
}

/// The standby is gone, so a commit waits for it; an operator cancels the wait (or a
/// timeout ends it): PostgreSQL then returns the commit as a success with a warning,
/// although only the primary holds it. The leader does not acknowledge it: the client
/// hears OUTCOME_UNKNOWN (and the node steps down).
#[test]
fn a_commit_whose_wait_for_the_standby_was_cancelled_is_never_acknowledged() {
    if !crate::pg::available() {
        return;
    }
    let pair = PgPair::start();
    let dir = tempfile::tempdir().unwrap();
    let nodes = vec![Some(node(dir.path(), &pair, "a"))];
    wait_for("a leader", Duration::from_secs(10), || leader_index(&nodes));
    let l = nodes[0].as_ref().unwrap();
    l.submit(operator(), rid("setup"), vec![register("P1"), open_account("P1")]).unwrap().unwrap();
    pair.kill_standby();
    // Every wait for the standby is cancelled (the lease's renewals wait too) until the
    // submission has its answer.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let canceller = std::thread::spawn({
        let (port, done) = (pair.primary, done.clone());
        move || {
            let mut c = postgres::Client::connect(&crate::pg::dsn(port), postgres::NoTls).unwrap();
            let mut cancelled = 0i64;
            let t0 = Instant::now();
            while !done.load(std::sync::atomic::Ordering::Acquire) && t0.elapsed() < Duration::from_secs(30) {
                cancelled += c.query_one("SELECT count(pg_cancel_backend(pid)) FROM pg_stat_activity WHERE wait_event = 'SyncRep'", &[]).unwrap().get::<_, i64>(0);
                std::thread::sleep(Duration::from_millis(50));
            }
            cancelled
        }
    });
    let r = l.submit(operator(), rid("unconfirmed"), vec![topup("P1", "U1", "1")]);
    done.store(true, std::sync::atomic::Ordering::Release);
    assert!(canceller.join().unwrap() > 0, "the commit waited for the standby");
    assert!(matches!(r, Err(StoreError::OutcomeUnknown(_))), "not acknowledged: {r:?}");
    for n in nodes.into_iter().flatten() {
        n.close().unwrap();
    }
}
