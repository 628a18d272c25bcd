//! Criterion benches, one per stage of the write path and of recovery, on the same mix
//! as `anxin bench` (80% payouts to enrolled workers' cards, 10% progress payments with
//! a wage split, 10% deposits and guarantee letters) in batches of 8,189:
//!
//! - `encode_hash`: canonical encoding of the records and their BLAKE3 chain;
//! - `decide`: the rules, each command against the state (nothing applied);
//! - `apply`: the projections, the batch's events applied to a copy of the state;
//! - `decide_batch`: both, atomically, as the writer does;
//! - `merkle_append`: the leaves pushed into the stored tree and written out;
//! - `log_append_durable`: the batch appended to the log and `fdatasync`'d;
//! - `submit`: the whole in-process path (`Ledger::submit`), durable;
//! - `verify`, `rebuild`: a log of 16 batches checked, and its projections rebuilt;
//! - `api/metered_call` against `api/bare_call`: what the metrics layer
//!   (`api::metered`) adds to every gRPC call (the token authenticated again for the
//!   role label, the request id, a span at INFO under a subscriber as anxind has, the
//!   counter and the histogram), around a service that answers at once.
//!
//! `cargo bench --bench stages` measures; `cargo test --benches` (CI) runs each once,
//! so that they keep compiling and working, without timing anything.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

use anxin::chain::codec;
use anxin::chain::record::{record_hash, RecordRef, FORMAT_VERSION};
use anxin::decide::{decide, decide_batch};
use anxin::domain::command::{Command, Event};
use anxin::domain::ids::RequestId;
use anxin::domain::principal::Principal;
use anxin::ledger::{self, Ledger, LedgerOptions};
use anxin::projection::state::State;

#[path = "../tests/it/common.rs"]
mod common;
use common::*;

const BATCH: usize = 8_189;
const PROJECTS: u32 = 10;
const WORKERS: u32 = 1_000;

fn project(p: u32) -> String {
    format!("P{p}")
}

/// Projects with wage accounts, funded, and their workers enrolled.
fn setup() -> Vec<Command> {
    let mut out = Vec::new();
    for p in 0..PROJECTS {
        let id = project(p);
        out.push(register(&id));
        out.push(open_account(&id));
        out.push(progress(&id, &format!("SETUP{p}"), "90000000", "90000000", "2026-01-05"));
    }
    for w in 0..WORKERS {
        out.push(enrol(&project(w % PROJECTS), w));
    }
    out
}

/// Batch number `b` of the mix; payment numbers are unique across batches.
fn batch(b: usize) -> Vec<Command> {
    (0..BATCH)
        .map(|i| {
            let n = b * BATCH + i;
            let w = (n as u32 * 7919) % WORKERS;
            let p = project(w % PROJECTS);
            match n % 10 {
                0 => progress(&p, &format!("G{n}"), "10000", "3000", "2026-02-05"),
                1 if n % 20 == 1 => deposit(&p, &format!("D{n}"), "500", "2026-02-06"),
                1 => letter(&p, &format!("L{n}"), "500", "2026-01-01", "2027-12-31"),
                _ => pay(&p, &format!("W{n}"), w, "123.45", None),
            }
        })
        .collect()
}

fn state_after_setup() -> State {
    let mut state = State::default();
    decide_batch(&mut state, &principal(), &setup(), 1).expect("setup is accepted").commit();
    state
}

fn principal() -> Principal {
    Principal::Operator
}

fn opts() -> LedgerOptions {
    LedgerOptions { ledger_id: Some("anxin-bench".into()), ..Default::default() }
}

/// A data directory holding the setup and `batches` batches of the mix.
fn ledger_dir(batches: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let l = Ledger::open(dir.path(), opts()).expect("open");
    l.submit(principal(), RequestId::parse("setup").unwrap(), setup()).unwrap().unwrap();
    for b in 0..batches {
        l.submit(principal(), RequestId::parse(&format!("b{b}")).unwrap(), batch(b)).unwrap().unwrap();
    }
    l.close().expect("close");
    dir
}

fn stages(c: &mut Criterion) {
    let state = state_after_setup();
    let cmds = batch(0);
    let first_seq = 10_000;
    let mut decided = state.clone();
    let events: Vec<Event> = decide_batch(&mut decided, &principal(), &cmds, first_seq).expect("the mix is accepted").commit();
    let principal = principal();
    let rid = RequestId::parse("bench").unwrap();

    let mut g = c.benchmark_group("stage");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.sample_size(10);

    g.bench_function("encode_hash", |b| {
        b.iter(|| {
            let mut head = [0u8; 32];
            let mut bytes = 0;
            for (i, event) in events.iter().enumerate() {
                let rec = RecordRef { version: FORMAT_VERSION, seq: first_seq + i as u64, prev_hash: &head, recorded_at_ms: 0, principal: &principal, request_id: &rid, event };
                let enc = codec::encode(&rec);
                head = record_hash(&enc);
                bytes += enc.len();
            }
            (head, bytes)
        })
    });

    g.bench_function("decide", |b| {
        b.iter(|| cmds.iter().map(|cmd| decide(&state, cmd).is_ok() as usize).sum::<usize>())
    });

    g.bench_function("apply", |b| {
        b.iter_batched_ref(
            || state.clone(),
            |s| {
                for (i, e) in events.iter().enumerate() {
                    s.apply(e, first_seq + i as u64);
                }
            },
            BatchSize::LargeInput,
        )
    });

    g.bench_function("decide_batch", |b| {
        b.iter_batched_ref(
            || state.clone(),
            |s| decide_batch(s, &principal, &cmds, first_seq).expect("accepted").commit().len(),
            BatchSize::LargeInput,
        )
    });

    let records: Vec<Vec<u8>> = events
        .iter()
        .enumerate()
        .map(|(i, event)| codec::encode(&RecordRef { version: FORMAT_VERSION, seq: first_seq + i as u64, prev_hash: &[0; 32], recorded_at_ms: 0, principal: &principal, request_id: &rid, event }))
        .collect();
    // The writer's Merkle step: each record's leaf (SHA-256 of its bytes), then the append.
    g.bench_function("merkle_append", |b| {
        let dir = tempfile::tempdir().unwrap();
        let mut m = anxin::store::merkle::MerkleWriter::open(dir.path(), u64::MAX).unwrap();
        b.iter(|| {
            for r in &records {
                m.push(anxin::chain::merkle::Leaf::of_record(r));
            }
            m.flush().unwrap();
            m.size()
        })
    });
    g.bench_function("log_append_durable", |b| {
        let dir = tempfile::tempdir().unwrap();
        let mut log = anxin::store::log::LogWriter::open(dir.path(), "anxin-bench", None).unwrap();
        let mut seq = 1;
        b.iter(|| {
            log.append(seq, 0, &records).unwrap();
            log.sync().unwrap();
            seq += records.len() as u64;
        })
    });

    g.bench_function("submit", |b| {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::open(dir.path(), opts()).unwrap();
        l.submit(principal.clone(), RequestId::parse("setup").unwrap(), setup()).unwrap().unwrap();
        let mut n = 0;
        b.iter_batched(
            || {
                n += 1;
                (n, batch(n))
            },
            |(n, cmds)| l.submit(principal.clone(), RequestId::parse(&format!("b{n}")).unwrap(), cmds).unwrap().unwrap(),
            BatchSize::LargeInput,
        );
        l.close().unwrap();
    });
    g.finish();

    // Recovery: a log of 16 batches (131,024 events and the setup).
    let batches = 16;
    let dir = ledger_dir(batches);
    let mut g = c.benchmark_group("recovery");
    g.throughput(Throughput::Elements((batches * BATCH) as u64));
    g.sample_size(10);
    g.bench_function("verify", |b| {
        b.iter(|| {
            let r = ledger::verify(dir.path(), &mut |_| {}).unwrap();
            assert_eq!(r.error, None);
            r.records
        })
    });
    g.bench_function("rebuild", |b| {
        b.iter(|| {
            let l = ledger::rebuild(dir.path(), opts()).unwrap();
            let n = l.recovery().replayed;
            l.close().unwrap();
            n
        })
    });
    g.finish();
}

/// A service that answers every request at once: what the layer wraps in `api`.
#[derive(Clone)]
struct Answer;

impl tower_service::Service<tonic::codegen::http::Request<()>> for Answer {
    type Response = tonic::codegen::http::Response<()>;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;
    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn call(&mut self, _: tonic::codegen::http::Request<()>) -> Self::Future {
        std::future::ready(Ok(tonic::codegen::http::Response::new(())))
    }
}

fn api(c: &mut Criterion) {
    use tower_layer::Layer as _;
    use tower_service::Service as _;
    let token = anxin::api::auth::new_token();
    let principals = anxin::api::auth::Principals::parse(&anxin::api::auth::principals_entry(&Principal::Operator, &token)).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let request = || {
        tonic::codegen::http::Request::builder()
            .uri("/anxin.v1.LedgerQuery/GetBalance")
            .header("authorization", format!("Bearer {token}"))
            .header("x-request-id", "bank-batch-000123")
            .body(())
            .unwrap()
    };
    // As anxind logs: INFO and above, formatted (here into nothing).
    let subscriber = tracing_subscriber::fmt().with_writer(std::io::sink).with_max_level(tracing::Level::INFO).finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let mut g = c.benchmark_group("api");
    g.throughput(Throughput::Elements(1));
    let mut bare = Answer;
    g.bench_function("bare_call", |b| b.iter(|| rt.block_on(bare.call(request())).unwrap()));
    let mut metered = anxin::api::metered::MeteredLayer::new(std::sync::Arc::new(principals)).layer(Answer);
    g.bench_function("metered_call", |b| b.iter(|| rt.block_on(metered.call(request())).unwrap()));
    g.finish();
}

criterion_group!(benches, stages, api);
criterion_main!(benches);
