//! Prometheus metrics (`metrics = "ADDR"` in anxind's configuration, or `--metrics ADDR`):
//! one registry per process (prometheus-client), served as the OpenMetrics text format at
//! `GET /metrics`, which Prometheus reads.
//!
//! Counters and histograms are updated where things happen (the writer, the log, the gRPC
//! layer); gauges that describe the ledger (open flags, tree size, role, disk) are read
//! from it at each scrape. No label carries personal data: RPC names, status codes,
//! roles, flag codes and grades only.

use std::sync::LazyLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// A gRPC call's labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    /// `Service/Method`, e.g. `LedgerPosting/Submit`.
    pub rpc: String,
    /// The gRPC status code's name, e.g. `OK`, `INVALID_ARGUMENT`.
    pub code: String,
    /// The caller's role (`operator`, `bank`, ...), `unauthenticated` without a valid token.
    pub role: String,
}

/// An RPC's name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabels {
    pub rpc: String,
}

/// An open flag's code and grade.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FlagLabels {
    pub code: String,
    pub grade: String,
}

/// Every metric of the process.
pub struct Metrics {
    registry: Registry,
    pub calls: Family<CallLabels, Counter>,
    pub call_seconds: Family<RpcLabels, Histogram>,
    pub group_batches: Histogram,
    pub group_records: Histogram,
    pub group_commit_seconds: Histogram,
    pub fdatasync_seconds: Histogram,
    pub queue_depth: Gauge,
    pub writer_busy_seconds: Counter<f64, std::sync::atomic::AtomicU64>,
    pub records: Counter,
    pub log_bytes: Counter,
    pub snapshot_pause_seconds: Histogram,
    pub checkpoint_seconds: Histogram,
    pub open_flags: Family<FlagLabels, Gauge>,
    pub tree_size: Gauge,
    pub leading: Gauge,
    pub leader_epoch: Gauge,
    pub replication_lag_records: Gauge,
    pub disk_free_bytes: Gauge,
    pub disk_reserve_bytes: Gauge,
    pub damaged: Gauge,
}

fn seconds() -> Histogram {
    // 50 µs to ~3.3 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 17))
}

impl Metrics {
    fn new() -> Metrics {
        let mut r = Registry::with_prefix("anxin");
        let calls = Family::<CallLabels, Counter>::default();
        r.register("grpc_calls", "gRPC calls answered, by RPC, status code and the caller's role", calls.clone());
        let call_seconds = Family::<RpcLabels, Histogram>::new_with_constructor(seconds as fn() -> Histogram);
        r.register("grpc_call_seconds", "Time to a gRPC call's response head, by RPC", call_seconds.clone());
        let group_batches = Histogram::new(exponential_buckets(1.0, 2.0, 12));
        r.register("group_commit_batches", "Batches (submitted requests) in one group commit", group_batches.clone());
        let group_records = Histogram::new(exponential_buckets(1.0, 2.0, 16));
        r.register("group_commit_records", "Records written by one group commit", group_records.clone());
        let group_commit_seconds = seconds();
        r.register("group_commit_seconds", "One group commit, from deciding to answering (fdatasync and replication included)", group_commit_seconds.clone());
        let fdatasync_seconds = seconds();
        r.register("fdatasync_seconds", "One fdatasync of the log", fdatasync_seconds.clone());
        let queue_depth = Gauge::default();
        r.register("writer_queue_depth", "Requests waiting for the writer", queue_depth.clone());
        let writer_busy_seconds = Counter::<f64, std::sync::atomic::AtomicU64>::default();
        r.register("writer_busy_seconds", "Time the writer spent on group commits (its busy ratio is this counter's rate)", writer_busy_seconds.clone());
        let records = Counter::default();
        r.register("records", "Records written to the log by this process", records.clone());
        let log_bytes = Counter::default();
        r.register("log_record_bytes", "Bytes of records written to the log by this process", log_bytes.clone());
        let snapshot_pause_seconds = seconds();
        r.register("snapshot_pause_seconds", "How long the writer paused to start a snapshot (the fork), or wrote a closing one", snapshot_pause_seconds.clone());
        let checkpoint_seconds = seconds();
        r.register("checkpoint_seconds", "Signing and saving one checkpoint", checkpoint_seconds.clone());
        let open_flags = Family::<FlagLabels, Gauge>::default();
        r.register("open_flags", "Open compliance flags, by code and grade (policy grade names)", open_flags.clone());
        let tree_size = Gauge::default();
        r.register("tree_size", "Records in the log (the Merkle tree's size)", tree_size.clone());
        let leading = Gauge::default();
        r.register("replication_leading", "1 if this node leads its replicated ledger, 0 if it follows (absent when embedded)", leading.clone());
        let leader_epoch = Gauge::default();
        r.register("replication_leader_epoch", "The fencing epoch this node leads with (0 when following)", leader_epoch.clone());
        let replication_lag_records = Gauge::default();
        r.register("replication_lag_records", "Records a follower had yet to apply at its last look at the database (at least; 0 when caught up)", replication_lag_records.clone());
        let disk_free_bytes = Gauge::default();
        r.register("disk_free_bytes", "Free bytes on the data directory's file system", disk_free_bytes.clone());
        let disk_reserve_bytes = Gauge::default();
        r.register("disk_reserve_bytes", "The reserve below which new batches are refused (min_free_bytes)", disk_reserve_bytes.clone());
        let damaged = Gauge::default();
        r.register("ledger_unhealthy", "1 if the ledger found damage or its writer faulted (read-only or stopped), else 0", damaged.clone());
        Metrics {
            registry: r,
            calls,
            call_seconds,
            group_batches,
            group_records,
            group_commit_seconds,
            fdatasync_seconds,
            queue_depth,
            writer_busy_seconds,
            records,
            log_bytes,
            snapshot_pause_seconds,
            checkpoint_seconds,
            open_flags,
            tree_size,
            leading,
            leader_epoch,
            replication_lag_records,
            disk_free_bytes,
            disk_reserve_bytes,
            damaged,
        }
    }

    /// The registry in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String");
        out
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn get() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    /// Reads the gauges that describe `ledger` now: open flags (projects', as of today),
    /// tree size, role, disk, health.
    pub fn observe_ledger(&self, ledger: &crate::ledger::Ledger, reserve: u64) {
        self.tree_size.set(ledger.tree_size() as i64);
        match ledger.role() {
            Some(crate::replica::Role::Leader { epoch }) => {
                self.leading.set(1);
                self.leader_epoch.set(epoch);
            }
            Some(crate::replica::Role::Follower { .. }) => {
                self.leading.set(0);
                self.leader_epoch.set(0);
            }
            None => {}
        }
        if let Ok(free) = crate::fsutil::free_bytes(ledger.dir()) {
            self.disk_free_bytes.set(i64::try_from(free).unwrap_or(i64::MAX));
        }
        self.disk_reserve_bytes.set(i64::try_from(reserve).unwrap_or(i64::MAX));
        self.damaged.set(i64::from(ledger.damage().is_some() || ledger.fault().is_some()));
        if let Ok(state) = ledger.state() {
            let when = crate::projection::when::When { seq: ledger.tree_size(), date: ledger.today() };
            let flags = crate::projection::flags::flags(&state, ledger.policies(), ledger.calendars(), when);
            drop(state);
            let mut counts: std::collections::BTreeMap<(&'static str, &'static str), i64> = std::collections::BTreeMap::new();
            for f in &flags {
                *counts.entry((f.code.as_str(), f.grade.as_str())).or_default() += 1;
            }
            // Every code and grade is present (0 when none is open): alerts see a flag go.
            for code in crate::projection::flags::FlagCode::ALL {
                for grade in [crate::projection::flags::Grade::Red, crate::projection::flags::Grade::Yellow] {
                    let n = counts.get(&(code.as_str(), grade.as_str())).copied().unwrap_or(0);
                    self.open_flags.get_or_create(&FlagLabels { code: code.as_str().to_owned(), grade: grade.as_str().to_owned() }).set(n);
                }
            }
        }
    }
}

/// The content type of the OpenMetrics text format.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves `GET /metrics` on `listener` until `shutdown`, reading `ledger`'s gauges at each
/// scrape (no authentication: bind it to a private address; nothing in it is personal).
///
/// # Errors
/// The server's I/O errors.
pub async fn serve(ledger: std::sync::Arc<crate::ledger::Ledger>, reserve: u64, listener: tokio::net::TcpListener, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
    use axum::http::header;
    use axum::response::IntoResponse;
    let scrape = move || {
        let ledger = ledger.clone();
        async move {
            let text = tokio::task::spawn_blocking(move || {
                get().observe_ledger(&ledger, reserve);
                get().encode()
            })
            .await
            .unwrap_or_else(|e| format!("# the scrape failed: {e}\n"));
            ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response()
        }
    };
    let app = axum::Router::new().route("/metrics", axum::routing::get(scrape));
    // Small answers must not wait on the peer's delayed ACK (as for gRPC).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY on a metrics connection");
        }
    });
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}
