//! The crash loop: `anxind` as a real process, driven by concurrent clients, killed with
//! SIGKILL at a random moment, restarted, again and again. After every round:
//!
//! - every acknowledged batch is in the log exactly once, at the sequence numbers its
//!   answer gave;
//! - no batch is half there (batches are atomic: all 20 records of a request or none);
//! - the chain verifies and the Merkle root of the log equals the signed checkpoint's at
//!   its size, recomputed here from the records;
//! - the projections the ledger recovers (snapshot + replay) equal a rebuild from the log;
//! - the signed checkpoint never goes backwards, and `checkpoints/latest` is always a
//!   whole checkpoint signed by the ledger's key;
//! - the scrub finds nothing (every record, Merkle leaf and stored node, the newest
//!   snapshot against a replay of the log).
//!
//! Every third round the kill is not a signal from outside: the server is started with
//! `ANXIN_FAILPOINTS=<point>=kill@K` and kills itself at the K-th pass of a point, in
//! turn: inside a small-file write (`atomic.write`: a checkpoint written to a temporary
//! file and fsynced, not yet renamed over the old one), inside a snapshot write
//! (`snapshot.write`: likewise) and inside the background scrub (`scrub.frame`), the
//! moments a crash is most likely to leave half a file.
//!
//! Rounds: `ANXIN_CRASH_ROUNDS` (default 20; CI runs the default); `ANXIN_CRASH_SEED`
//! replays the kill moments of a printed seed. Every `ANXIN_CRASH_EPOCH` rounds (default
//! 30) the loop starts a fresh ledger, so that each round's checks stay whole (every
//! record read, a rebuild compared, the scrub) while a long run's rounds stay as fast as
//! its first ones.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anxin::api::pb;
use anxin::chain::checkpoint::SignedCheckpoint;
use anxin::chain::merkle::{self, MemNodes};
use anxin::ledger::{self, Ledger, LedgerOptions};

use crate::harness::{open_account, register, COUNTY};
use crate::process::{post_until_gone, start_full, Acked, BATCH};
use crate::store::copy_dir;

fn epoch_rounds() -> usize {
    // A multiple of 3, so that an epoch's first round (which posts the setup) is never a
    // failpoint round.
    std::env::var("ANXIN_CRASH_EPOCH").ok().and_then(|v| v.parse::<usize>().ok()).map_or(30, |n| n.max(3) / 3 * 3)
}

fn rounds() -> usize {
    std::env::var("ANXIN_CRASH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(20)
}

/// A small pseudo-random generator (the moment of each kill), seeded per run and printed.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_never_loses_or_half_applies_an_acknowledged_batch() {
    // `ANXIN_CRASH_SEED` replays the kill moments of a printed run (the load itself is
    // concurrent, so a replay is close, not identical).
    let mut seed = std::env::var("ANXIN_CRASH_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64) | 1;
    eprintln!("crash loop seed {seed}");
    let dir = tempfile::tempdir().unwrap();
    let mut data = dir.path().join("data0");
    // Frequent snapshots, so that kills land before, during and after them.
    let config = dir.path().join("anxind.toml");
    // Small segments, so that kills also land during segment rolls.
    std::fs::write(&config, "snapshot_records = 300\ncheckpoint_interval_ms = 20\nsegment_bytes = 65536\n").unwrap();
    let extra = ["--config", config.to_str().unwrap()];
    let mut acked: Acked = Arc::default();
    let mut last_checkpoint = 0u64;
    let mut key = None;
    let mut total = 0;
    let mut self_killed = 0;
    for round in 0..rounds() {
        if round > 0 && round % epoch_rounds() == 0 {
            // A fresh ledger: what the last one held was checked whole after every round.
            total += acked.lock().unwrap().len();
            std::fs::remove_dir_all(&data).unwrap();
            data = dir.path().join(format!("data{}", round / epoch_rounds()));
            acked = Arc::default();
            last_checkpoint = 0;
            key = None;
        }
        // Every third round (not the first, which posts the setup): a kill inside the
        // K-th checkpoint write.
        let in_checkpoint_write = round % 3 == 2;
        // In turn: inside a checkpoint write, inside a snapshot write, inside the scrub.
        let point = ["atomic.write", "snapshot.write", "scrub.frame"][(round / 3) % 3];
        let failpoint = format!("{point}=kill@{}", 2 + next(&mut seed) % 12);
        let env: Vec<(&str, &str)> = if in_checkpoint_write { vec![("ANXIN_FAILPOINTS", failpoint.as_str())] } else { Vec::new() };
        let mut server = start_full(&data, &extra, "warn", None, &env).await;
        if server.child.try_wait().unwrap().is_some() {
            // Killed inside the start's scrub, before serving: a round with no load.
            self_killed += 1;
        } else if round % epoch_rounds() == 0 {
            let mut p = server.posting().await;
            p.submit(pb::SubmitRequest { request_id: "setup".into(), commands: vec![register("P1", COUNTY), open_account("P1", "ICBC")] }).await.unwrap();
        }
        let clients = if server.child.try_wait().unwrap().is_some() { Vec::new() } else { post_until_gone(&server, &format!("r{round}-"), "1.01", &acked).await };
        if server.child.try_wait().unwrap().is_some() {
            // Already dead (counted above).
        } else if in_checkpoint_write {
            // The server kills itself when the failpoint fires; if the load is too short
            // to reach it, an outside kill ends the round all the same.
            let t0 = std::time::Instant::now();
            while server.child.try_wait().unwrap().is_none() && t0.elapsed() < Duration::from_secs(5) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            if server.child.try_wait().unwrap().is_some() {
                self_killed += 1;
            } else {
                server.signal("-KILL");
            }
        } else {
            // Kill at a random moment between 20 and 400 ms into the load.
            tokio::time::sleep(Duration::from_millis(20 + next(&mut seed) % 380)).await;
            server.signal("-KILL");
        }
        let _ = tokio::task::spawn_blocking(move || server.child.wait().unwrap()).await.unwrap();
        for c in clients {
            c.await.unwrap();
        }

        // What the killed server left signed (read before anything reopens the ledger,
        // which would sign afresh).
        let left = SignedCheckpoint::from_note(&std::fs::read(data.join("checkpoints/latest")).unwrap()).unwrap();
        // Recover in-process, as the next start will, and check everything.
        let led = Ledger::open(&data, LedgerOptions::default()).unwrap();
        let (size, _) = led.head();
        let records = led.read_records(1, size).unwrap();
        assert_eq!(records.len() as u64, size);
        let mut by_request: HashMap<String, Vec<u64>> = HashMap::new();
        for (seq, bytes) in &records {
            by_request.entry(ledger::decode_record(bytes).unwrap().request_id.as_str().to_owned()).or_default().push(*seq);
        }
        let acked_now = acked.lock().unwrap().clone();
        for (id, first, last) in &acked_now {
            let seqs = by_request.get(id).unwrap_or_else(|| panic!("round {round}: acknowledged batch {id} is missing"));
            assert_eq!(seqs, &(*first..=*last).collect::<Vec<_>>(), "round {round}: {id} is not exactly where its answer said");
        }
        for (id, seqs) in &by_request {
            if id != "setup" {
                assert_eq!(seqs.len(), BATCH, "round {round}: request {id} is half applied");
                assert_eq!(seqs.last().unwrap() - seqs[0] + 1, BATCH as u64, "round {round}: request {id} is not contiguous");
            }
        }
        // The checkpoint: signed by the same key, never backwards, and its root is the
        // root of the log's first records, recomputed here from their bytes.
        let k = *key.get_or_insert(led.public_key());
        let now = SignedCheckpoint::from_note(&std::fs::read(data.join("checkpoints/latest")).unwrap()).unwrap();
        for cp in [&left, &now] {
            cp.verify(&k).unwrap();
            assert!(cp.checkpoint.tree_size >= last_checkpoint, "round {round}: checkpoint went back from {last_checkpoint} to {}", cp.checkpoint.tree_size);
            assert!(cp.checkpoint.tree_size <= size);
            last_checkpoint = cp.checkpoint.tree_size;
            let leaves: Vec<_> = records.iter().take(cp.checkpoint.tree_size as usize).map(|(_, b)| merkle::leaf_hash(b)).collect();
            assert_eq!(merkle::root(&MemNodes(leaves), cp.checkpoint.tree_size).unwrap(), cp.checkpoint.root, "round {round}");
        }
        assert_eq!(led.root_at(size).unwrap(), merkle::root(&MemNodes(records.iter().map(|(_, b)| merkle::leaf_hash(b)).collect()), size).unwrap());
        // The scrub finds nothing: every record, Merkle leaf and stored node, and the
        // newest snapshot against a replay of the log.
        led.scrub_now().unwrap_or_else(|d| panic!("round {round}: the scrub found damage after a crash: {d}"));
        // Recovered projections equal a rebuild from the log alone (on a copy).
        let entries = led.state().unwrap().entries();
        led.close().unwrap();
        let copy = dir.path().join(format!("copy{round}"));
        copy_dir(&data, &copy);
        let rebuilt = ledger::rebuild(&copy, LedgerOptions::default()).unwrap();
        assert!(rebuilt.state().unwrap().entries() == entries, "round {round}: recovered projections differ from a rebuild");
        assert_eq!(rebuilt.recovery().replayed, size);
        rebuilt.close().unwrap();
        std::fs::remove_dir_all(&copy).unwrap();
        let rep = ledger::verify(&data, &mut |_| {}).unwrap();
        assert_eq!(rep.error, None, "round {round}");
        eprintln!("round {round}: {size} records, {} batches acknowledged so far, the killed server had signed {}", acked_now.len(), left.checkpoint.tree_size);
    }
    let total = total + acked.lock().unwrap().len();
    assert!(total >= rounds(), "the clients got answers ({total})");
    eprintln!("{} rounds, {total} acknowledged batches checked, none lost or half-applied", rounds());
    eprintln!("{self_killed} of {} failpoint rounds died at their point", rounds() / 3);
    assert!(rounds() < 3 || self_killed > 0, "a kill at a failpoint was reached");
}
