//! `anxind`'s configuration and its run loop, as a library so tests start the same
//! server in-process on `127.0.0.1:0`.
//!
//! Configuration comes from a TOML file, then flags and environment variables override
//! it. With no configuration at all the server serves `127.0.0.1:50051` from
//! `./anxin-data` and, the first time, creates a principals file there with one operator
//! token, which it prints once and keeps in `dev-token` (mode 0600).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::api::auth::{self, Principals};
use crate::api::{self, Api, Tls};
use crate::domain::date::{Calendar, CalendarBook};
use crate::domain::ids::CountyCode;
use crate::domain::policy::{PolicyBook, PolicyOverride};
use crate::domain::principal::Principal;
use crate::ledger::{Ledger, LedgerOptions};
use crate::store::StoreError;
use crate::vault::Vault;

/// Why the server did not start, or stopped other than by a shutdown signal. `anxind`
/// prints it and exits non-zero, so a supervisor restarts it.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The configuration, a calendar, the principals or TLS files.
    #[error("{0}")]
    Config(String),
    /// The data directory did not open (damage is named).
    #[error("the ledger in {dir} did not open: {source}")]
    Open { dir: String, source: StoreError },
    #[error("listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    /// The gRPC or dashboard server failed.
    #[error("serving failed: {0}")]
    Serve(String),
    /// The ledger's writer failed while serving: a restart recovers from the log.
    #[error("stopped after a ledger fault, for a restart to recover from the log: {0}")]
    WriterFault(String),
    /// Closing the ledger failed (the final index flush).
    #[error("closing the ledger failed: {0}")]
    Close(StoreError),
}

/// Every key of the configuration file, as `anxind --help` prints them (a test checks
/// that each field of `FileConfig` and its sections is here).
pub const CONFIG_KEYS: &str = "\
CONFIGURATION FILE (--config FILE, TOML; every key optional; flags override; an unknown key is refused):
  listen = \"ADDR\"                   gRPC address [127.0.0.1:50051]
  data = \"DIR\"                      data directory [./anxin-data]
  principals = \"FILE\"               principals (hashed tokens) [<data>/principals.toml, created with a dev token]
  ledger_id = \"ID\"                  id of a new ledger (names it in every checkpoint)
  signing_key = \"FILE\"              32-byte Ed25519 seed signing checkpoints [<data>/keys/checkpoint.ed25519, created]
  vault_key = \"FILE\"                the PII vault's 32-byte secret [<data>/vault/secret.key, created]
  calendar = \"FILE\"                 replaces the national working-day calendar
  checkpoint_interval_ms = N        sign a checkpoint at most this often after writes [100]
  snapshot_records = N              snapshot the projections after this many records [1000000]
  min_free_bytes = N                below this many free bytes new batches are refused (DISK_FULL)
  calls_per_principal = N           calls in flight per principal [128] (TOO_MANY_CALLS over it)
  segment_bytes = N                 close a log segment past this size [268435456]
  dashboard = \"ADDR\"                serve the county dashboard (HTTP)
  tiles = \"ADDR\"                    serve the log as c2sp.org/tlog-tiles (HTTP, bearer tokens)
  metrics = \"ADDR\"                  serve Prometheus metrics at /metrics (no token: a private address)
  fault_exit_delay_ms = N           after a ledger fault, answer UNAVAILABLE this long, then exit non-zero [2000]
  scrub_interval_s = N              seconds between scrubs of the whole log [3600; 0: only at the start]
  witness_policy = \"FILE\"           c2sp.org/tlog-policy: witnesses to submit checkpoints to, and the quorum
  [tls]         cert = \"FILE\"  key = \"FILE\"     serve gRPC and the dashboard over TLS (PEM)
  [replication] dsns = [\"DSN\", ...]  node_id = \"NAME\"  advertise = \"URL\"  lease_ms = N [2000]  allow_async = BOOL [false]
  [policy]      national rule changes: labour_ratio_bp, deposit_rate_bp, deposit_exempt_below,
                deposit_cap, deposit_lodge_working_days, replenish_working_days,
                wage_account_open_days, letter_warn_days, payroll_grace_days,
                statement_working_days, case_accept_working_days, case_close_working_days,
                case_extension_working_days, referral_one_worker, referral_workers,
                referral_total, credit_list_deposit_bp (basis points, yuan, days; DOMAIN_RULES.md)
  [county.CODE] calendar = \"FILE\"  [county.CODE.policy] the same keys as [policy], for one county

ENVIRONMENT: ANXIN_CONFIG, ANXIN_LISTEN, ANXIN_DATA, ANXIN_PRINCIPALS, ANXIN_DASHBOARD, ANXIN_METRICS,
  ANXIN_TLS_CERT, ANXIN_TLS_KEY, ANXIN_LOG_FORMAT (as the flags); ANXIN_LOG (log filter, e.g. info,anxin=debug).
";

/// The configuration file (all optional).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Address to listen on, e.g. `127.0.0.1:50051`.
    pub listen: Option<SocketAddr>,
    /// Data directory.
    pub data: Option<PathBuf>,
    /// Principals file (hashed tokens); default `<data>/principals.toml`.
    pub principals: Option<PathBuf>,
    /// Id of a new ledger.
    pub ledger_id: Option<String>,
    /// TLS certificate and key (PEM); both or neither.
    pub tls: Option<TlsFiles>,
    /// Replacement for the national working-day calendar file.
    pub calendar: Option<PathBuf>,
    /// The checkpoint signing key (32-byte Ed25519 seed, created if absent);
    /// default `<data>/keys/checkpoint.ed25519`.
    pub signing_key: Option<PathBuf>,
    /// The PII vault's secret (32 bytes, created if absent); default
    /// `<data>/vault/secret.key`. The nodes of a replicated ledger share it, as they
    /// share the signing key.
    pub vault_key: Option<PathBuf>,
    /// Sign a checkpoint after a group commit at most this often (default 100).
    pub checkpoint_interval_ms: Option<u64>,
    /// Snapshot the projections after this many records (default 1,000,000): a restart
    /// after a crash replays at most about this many.
    pub snapshot_records: Option<u64>,
    /// Free bytes to keep on the data directory's file system; below, new batches are
    /// refused with RESOURCE_EXHAUSTED / DISK_FULL until space returns.
    pub min_free_bytes: Option<u64>,
    /// Calls in flight at once per principal (default 128); more get RESOURCE_EXHAUSTED
    /// / TOO_MANY_CALLS.
    pub calls_per_principal: Option<usize>,
    /// Close a log segment once it passes this many bytes (default 256 MiB). Smaller
    /// segments are for tests (the crash loop kills the server during segment rolls).
    pub segment_bytes: Option<u64>,
    /// Serve the read-only county dashboard (HTTP) on this address; off when absent.
    pub dashboard: Option<SocketAddr>,
    /// Serve the log and its tree as c2sp.org/tlog-tiles (HTTP, bearer tokens) on this
    /// address; off when absent (docs/FORMAT.md section 8.5).
    pub tiles: Option<SocketAddr>,
    /// Serve Prometheus metrics (`GET /metrics`, OpenMetrics text, no authentication: a
    /// private address) on this address; off when absent (README "Operations").
    pub metrics: Option<SocketAddr>,
    /// After a ledger fault (the writer stopped or died), keep answering for this long
    /// (health NOT_SERVING, calls UNAVAILABLE with the reason) before exiting non-zero for
    /// a supervisor to restart the server (default 2000).
    pub fault_exit_delay_ms: Option<u64>,
    /// Seconds between two scrubs of the whole log, the Merkle files and the newest
    /// snapshot, after the one at every start (default 3600; 0: only at the start).
    pub scrub_interval_s: Option<u64>,
    /// Changes to the national policy defaults.
    #[serde(default)]
    pub policy: PolicyOverride,
    /// Per county (by 6-digit code): policy changes and a calendar of its own.
    #[serde(default)]
    pub county: BTreeMap<String, CountyConfig>,
    /// A witness policy (c2sp.org/tlog-policy: `witness <name> <vkey> [<url>]` lines,
    /// groups and a quorum): each new checkpoint is submitted to the witnesses with a
    /// URL, their cosignatures kept, and the latest checkpoint meeting the quorum served
    /// as the witnessed one (docs/FORMAT.md section 8.3). Absent: no witnesses.
    pub witness_policy: Option<PathBuf>,
    /// Run as a node of a replicated ledger on PostgreSQL (absent: the embedded store).
    pub replication: Option<ReplicationConfig>,
}

/// `[replication]`: a node of a replicated ledger (`crate::replica`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicationConfig {
    /// PostgreSQL connection strings: the primary and its standbys, tried in order (the
    /// one that is a primary is used; after a failover, the promoted standby).
    pub dsns: Vec<String>,
    /// This node's name, unique among the ledger's nodes.
    pub node_id: String,
    /// Where clients reach this node (followers tell clients the leader's), e.g.
    /// `http://10.0.0.5:50051`.
    pub advertise: String,
    /// How long the leader's lease runs without renewal (default 2000; renewed every
    /// quarter of it).
    pub lease_ms: Option<u64>,
    /// Run even if the database's commits do not wait for a synchronous standby (an
    /// acknowledged batch could then be lost with the database's primary).
    #[serde(default)]
    pub allow_async: bool,
}

impl ReplicationConfig {
    pub fn options(&self) -> crate::replica::ReplicaOptions {
        crate::replica::ReplicaOptions {
            lease: std::time::Duration::from_millis(self.lease_ms.unwrap_or(2_000).max(100)),
            allow_async: self.allow_async,
            ..crate::replica::ReplicaOptions::new(self.dsns.clone(), &self.node_id, &self.advertise)
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountyConfig {
    pub calendar: Option<PathBuf>,
    #[serde(default)]
    pub policy: PolicyOverride,
}

/// The resolved configuration the server runs with.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub data: PathBuf,
    pub principals: Option<PathBuf>,
    pub ledger_id: Option<String>,
    pub tls: Option<TlsFiles>,
    pub dashboard: Option<SocketAddr>,
    pub file: FileConfig,
}

impl Config {
    /// Reads `path` (if any) and applies the overrides given on the command line.
    ///
    /// # Errors
    /// A message naming the file and what is wrong.
    pub fn load(path: Option<&Path>, listen: Option<SocketAddr>, data: Option<PathBuf>, principals: Option<PathBuf>, tls: Option<TlsFiles>) -> Result<Config, String> {
        Config::load_with_dashboard(path, listen, data, principals, tls, None)
    }

    /// As `load`, with the dashboard's address from the command line.
    ///
    /// # Errors
    /// A message naming the file and what is wrong.
    pub fn load_with_dashboard(path: Option<&Path>, listen: Option<SocketAddr>, data: Option<PathBuf>, principals: Option<PathBuf>, tls: Option<TlsFiles>, dashboard: Option<SocketAddr>) -> Result<Config, String> {
        let file: FileConfig = match path {
            Some(p) => toml::from_str(&std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?).map_err(|e| format!("{}: {e}", p.display()))?,
            None => FileConfig::default(),
        };
        Ok(Config {
            listen: listen.or(file.listen).unwrap_or_else(|| "127.0.0.1:50051".parse().expect("valid")),
            data: data.or(file.data.clone()).unwrap_or_else(|| PathBuf::from("./anxin-data")),
            principals: principals.or(file.principals.clone()),
            ledger_id: file.ledger_id.clone(),
            tls: tls.or(file.tls.clone()),
            dashboard: dashboard.or(file.dashboard),
            file,
        })
    }

    /// The policies and calendars the configuration describes.
    ///
    /// # Errors
    /// A message naming a bad county code or calendar file.
    pub fn policies_and_calendars(&self) -> Result<(PolicyBook, CalendarBook), String> {
        let mut book = PolicyBook::default();
        book.national.apply(&self.file.policy);
        let load_cal = |p: &Path| -> Result<Calendar, String> {
            Calendar::parse(&std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?).map_err(|e| format!("{}: {e}", p.display()))
        };
        let mut cals = CalendarBook::china();
        if let Some(p) = &self.file.calendar {
            cals.national = load_cal(p)?;
        }
        for (code, c) in &self.file.county {
            let county = CountyCode::parse(code).map_err(|e| format!("[county.{code}]: {e}"))?;
            book.counties.insert(county, c.policy.clone());
            if let Some(p) = &c.calendar {
                cals.counties.insert(county, load_cal(p)?);
            }
        }
        Ok((book, cals))
    }
}

/// Loads the principals file, or creates a development one with an operator token.
/// Returns the principals and, when it created one, the new token.
///
/// # Errors
/// A message naming the file and what is wrong.
pub fn principals(cfg: &Config) -> Result<(Principals, Option<String>), String> {
    match &cfg.principals {
        Some(p) => Ok((Principals::load(p)?, None)),
        None => {
            let path = cfg.data.join("principals.toml");
            if path.exists() {
                return Ok((Principals::load(&path)?, None));
            }
            crate::fsutil::create_private_dir(&cfg.data).map_err(|e| e.to_string())?;
            let token = auth::new_token();
            let text = format!(
                "# Principals of this ledger: one [[principal]] per token; tokens are stored hashed.\n# Add one with `anxin token new --role bank --scope ICBC`.\n\n{}",
                auth::principals_entry(&Principal::Operator, &token)
            );
            write_private(&path, text.as_bytes())?;
            write_private(&cfg.data.join("dev-token"), format!("{token}\n").as_bytes())?;
            Ok((Principals::parse(&text)?, Some(token)))
        }
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    crate::fsutil::write_atomic(path, bytes, "principals").map_err(|e| format!("{}: {e}", path.display()))
}

/// Opens the ledger and the vault of `cfg.data`.
///
/// # Errors
/// `ServerError` naming what failed (a damaged data directory refuses to open).
pub fn open(cfg: &Config) -> Result<(Arc<Ledger>, Arc<Vault>), ServerError> {
    let (policies, calendars) = cfg.policies_and_calendars().map_err(ServerError::Config)?;
    let opened = |source: StoreError| ServerError::Open { dir: cfg.data.display().to_string(), source };
    let ledger = Ledger::open(
        &cfg.data,
        LedgerOptions {
            ledger_id: cfg.ledger_id.clone(),
            policies,
            calendars,
            signing_key: cfg.file.signing_key.clone(),
            checkpoint_interval_ms: cfg.file.checkpoint_interval_ms.unwrap_or(crate::limits::CHECKPOINT_INTERVAL_MS),
            snapshot_records: cfg.file.snapshot_records.unwrap_or(crate::limits::SNAPSHOT_RECORDS),
            min_free_bytes: cfg.file.min_free_bytes.unwrap_or(crate::limits::MIN_FREE_BYTES),
            segment_bytes: cfg.file.segment_bytes.unwrap_or(crate::limits::SEGMENT_BYTES_MAX),
            scrub_interval: match cfg.file.scrub_interval_s.unwrap_or(crate::limits::SCRUB_INTERVAL_S) {
                0 => None,
                s => Some(std::time::Duration::from_secs(s)),
            },
            replication: cfg.file.replication.as_ref().map(ReplicationConfig::options),
            ..Default::default()
        },
    )
    .map_err(opened)?;
    let has_workers = !ledger.state().map_err(opened)?.workers.is_empty();
    let replicated = cfg.file.replication.as_ref().map(|r| (r.dsns.as_slice(), ledger.ledger_id()));
    let vault = Vault::open_with(&cfg.data.join("vault"), cfg.file.vault_key.as_deref(), has_workers, replicated).map_err(opened)?;
    let year = ledger.today().year();
    if !ledger.calendars().national.covers(year) {
        tracing::warn!(year, "the working-day calendar does not cover this year: deadlines count weekends only; load this year's holidays");
    }
    Ok((Arc::new(ledger), Arc::new(vault)))
}

/// Serves until `shutdown`, then closes the ledger (every acknowledged batch is durable
/// already; closing flushes the index so the next start replays nothing).
///
/// A ledger fault (its writer stopped or died) ends serving too: health turns
/// NOT_SERVING at once (`api::serve`), calls are answered UNAVAILABLE with the reason for
/// `fault_exit_delay_ms`, then the server stops and returns `ServerError::WriterFault`,
/// so `anxind` exits non-zero for a supervisor to restart it.
///
/// # Errors
/// `ServerError` naming what failed.
pub async fn run(cfg: Config, shutdown: impl std::future::Future<Output = ()> + Send) -> Result<(), ServerError> {
    // One shutdown signal, for every round of serving (a round ends without it only to
    // rebuild a damaged replicated copy).
    tokio::pin!(shutdown);
    let mut cfg = cfg;
    let mut repairs = 0u32;
    loop {
        let c = cfg.clone();
        // Off the async threads: opening may replay a log or wait for sled's lock.
        let opened = tokio::task::spawn_blocking(move || open(&c)).await.map_err(|e| ServerError::Serve(e.to_string()))?;
        let opened = match opened {
            // A node of a replicated ledger whose own copy will not open for damage has
            // the whole history in the database: it sets its copy aside and rebuilds.
            Err(ServerError::Open { source: e @ (StoreError::Corruption { .. } | StoreError::Chain(_) | StoreError::Damaged(_)), .. }) if cfg.file.replication.is_some() => {
                repairs += 1;
                let floor = crate::ledger::signed_size_on_disk(&cfg.data).unwrap_or(0);
                set_aside_and_rebuild(&mut cfg, &e.to_string(), "the start", floor, repairs).await?;
                continue;
            }
            r => r?,
        };
        match serve(&cfg, opened, &mut shutdown).await? {
            Served::Stopped => return Ok(()),
            Served::Damaged { why, head, ledger, vault } => {
                // The old copy's last holders (calls in flight, live streams) let go
                // once it is shut down; only then is it moved and opened again.
                let t0 = std::time::Instant::now();
                while ledger.strong_count() > 0 || vault.strong_count() > 0 {
                    if t0.elapsed() > std::time::Duration::from_secs(15) {
                        return Err(ServerError::Serve(format!("the damaged copy ({why}) is still in use after 15 s: exiting for a restart, which rebuilds it")));
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                repairs += 1;
                set_aside_and_rebuild(&mut cfg, &why, "the scrub", head, repairs).await?;
            }
        }
    }
}

/// How a round of serving ended.
enum Served {
    Stopped,
    /// A node of a replicated ledger found its own copy damaged (the scrub): closed, to
    /// be rebuilt from the database once nothing holds it any more.
    Damaged { why: String, head: u64, ledger: std::sync::Weak<Ledger>, vault: std::sync::Weak<Vault> },
}

/// Repairs of one process's copy, at most (each keeps the damaged copy aside): beyond,
/// the node exits for an operator.
const REPAIRS_MAX: u32 = 3;

/// Moves a replicated node's copy of the ledger (log, index, Merkle files, snapshots,
/// checkpoints) aside to `<data>.damaged-<unix ms>`, keeping its keys, vault and
/// principals, so that the next open rebuilds it from the database's frames, each
/// checked against the chain. Says so in the server's log.
///
/// Only if the database holds the ledger and at least `local_end` records (what this
/// copy held, or its signed checkpoint's size when the copy would not open): a copy
/// with records the database lacks (a ledger that ran alone before it was replicated,
/// `allow_async`) may hold the only copy of them, and is left for an operator.
async fn set_aside_and_rebuild(cfg: &mut Config, why: &str, found_by: &str, local_end: u64, repairs: u32) -> Result<(), ServerError> {
    let refuse = |what: String| ServerError::Open { dir: cfg.data.display().to_string(), source: StoreError::Damaged(format!("{why}; not rebuilt from the database: {what}")) };
    if repairs > REPAIRS_MAX {
        return Err(refuse(format!("{REPAIRS_MAX} repairs in this process already (copies kept aside); an operator should look at the disk")));
    }
    let id = std::fs::read_to_string(cfg.data.join("LEDGER")).ok().map(|t| t.trim().to_owned()).filter(|i| !i.is_empty()).or_else(|| cfg.ledger_id.clone());
    let Some(id) = id else { return Err(refuse("the ledger's id is unknown (no LEDGER file, no ledger_id)".into())) };
    let dsns = cfg.file.replication.as_ref().map(|r| r.dsns.clone()).unwrap_or_default();
    let ledger = id.clone();
    let tip = tokio::task::spawn_blocking(move || -> Result<u64, crate::replica::PgError> {
        let mut c = crate::replica::pg::connect_primary(&dsns, std::time::Duration::from_secs(5))?;
        Ok(crate::replica::pg::ledger_row(&mut c, &ledger)?.last_seq)
    })
    .await
    .map_err(|e| ServerError::Serve(e.to_string()))?
    .map_err(|e| refuse(format!("the database cannot tell what it holds ({e})")))?;
    if tip < local_end {
        return Err(refuse(format!("this copy held {local_end} records and the database only {tip}: the rest may exist nowhere else")));
    }
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    let aside = PathBuf::from(format!("{}.damaged-{stamp}", cfg.data.display()));
    let io = |e: std::io::Error| ServerError::Open { dir: cfg.data.display().to_string(), source: StoreError::Io(e) };
    std::fs::create_dir(&aside).map_err(io)?;
    for entry in std::fs::read_dir(&cfg.data).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let ledger_owned = matches!(name.as_str(), "LEDGER" | "log" | "index" | "index.suspect" | "merkle" | "checkpoints" | "snapshots") || name.starts_with("index.damaged-");
        if ledger_owned {
            std::fs::rename(entry.path(), aside.join(&name)).map_err(io)?;
        }
    }
    crate::fsutil::sync_dir(&cfg.data).map_err(io)?;
    cfg.ledger_id = Some(id);
    tracing::error!(damage = why, found_by, set_aside = %aside.display(), database_records = tip, "REPAIR: this node's copy of the replicated ledger is damaged; it was set aside and the node rebuilds it from the database's frames (each checked against the chain)");
    Ok(())
}

/// Serves one opened ledger until the shutdown, a fault, or (replicated) damage.
async fn serve(cfg: &Config, opened: (Arc<Ledger>, Arc<Vault>), shutdown: impl std::future::Future<Output = ()> + Send) -> Result<Served, ServerError> {
    let (ledger, vault) = opened;
    let vault_held = Arc::downgrade(&vault);
    let (principals, dev_token) = principals(&cfg).map_err(ServerError::Config)?;
    if let Some(t) = &dev_token {
        println!("anxind: created {} with an operator token (also in {}):\n  {t}", cfg.data.join("principals.toml").display(), cfg.data.join("dev-token").display());
    }
    let tls = match &cfg.tls {
        Some(t) => Some(Tls {
            cert_pem: std::fs::read(&t.cert).map_err(|e| ServerError::Config(format!("{}: {e}", t.cert.display())))?,
            key_pem: std::fs::read(&t.key).map_err(|e| ServerError::Config(format!("{}: {e}", t.key.display())))?,
        }),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(cfg.listen).await.map_err(|source| ServerError::Listen { addr: cfg.listen, source })?;
    let local = listener.local_addr().map_err(|source| ServerError::Listen { addr: cfg.listen, source })?;
    let (last, head) = ledger.head();
    tracing::info!(key = %crate::chain::checkpoint::key_to_text(&ledger.public_key()), "checkpoints are signed with this key: auditors pin it");
    tracing::info!(listen = %local, data = %cfg.data.display(), ledger = ledger.ledger_id(), records = last, head = %hex::encode(head), tls = tls.is_some(), principals = principals.len(), "serving");
    let api = Api { ledger: ledger.clone(), vault, principals: Arc::new(principals), calls: Arc::new(crate::api::auth::CallLimits::new(cfg.file.calls_per_principal.unwrap_or(crate::limits::CALLS_PER_PRINCIPAL_MAX))) };
    // One shutdown signal for both servers.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let dashboard = match cfg.dashboard {
        Some(addr) => {
            let l = tokio::net::TcpListener::bind(addr).await.map_err(|source| ServerError::Listen { addr, source })?;
            // Over TLS with the gRPC API's certificate, when it has one: a browser keeps a
            // principal's token in a cookie.
            let https = tls.as_ref().map(crate::api::https::server_config).transpose().map_err(ServerError::Config)?;
            let scheme = if https.is_some() { "https" } else { "http" };
            tracing::info!(dashboard = %format!("{scheme}://{}/", l.local_addr().map_err(|source| ServerError::Listen { addr, source })?), "serving the county dashboard");
            Some(tokio::spawn(crate::dashboard::serve(api.clone(), l, None, https, stopped(stop_rx.clone()))))
        }
        None => None,
    };
    let tiles = match cfg.file.tiles {
        Some(addr) => {
            let l = tokio::net::TcpListener::bind(addr).await.map_err(|source| ServerError::Listen { addr, source })?;
            tracing::info!(tiles = %format!("http://{}/", l.local_addr().map_err(|source| ServerError::Listen { addr, source })?), "serving the log as tlog-tiles");
            Some(tokio::spawn(crate::api::tiles::serve(api.clone(), cfg.file.witness_policy.is_some(), l, stopped(stop_rx.clone()))))
        }
        None => None,
    };
    let metrics = match cfg.file.metrics {
        Some(addr) => {
            let l = tokio::net::TcpListener::bind(addr).await.map_err(|source| ServerError::Listen { addr, source })?;
            tracing::info!(metrics = %format!("http://{}/metrics", l.local_addr().map_err(|source| ServerError::Listen { addr, source })?), "serving Prometheus metrics");
            let reserve = cfg.file.min_free_bytes.unwrap_or(crate::limits::MIN_FREE_BYTES);
            Some(tokio::spawn(crate::metrics::serve(ledger.clone(), reserve, l, stopped(stop_rx.clone()))))
        }
        None => None,
    };
    let witnessing = match &cfg.file.witness_policy {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| ServerError::Config(format!("{}: {e}", p.display())))?;
            let policy = crate::chain::policy::Policy::parse(&text).map_err(|e| ServerError::Config(format!("{}: {e}", p.display())))?;
            let origin = crate::chain::checkpoint::origin_of(ledger.ledger_id());
            if !policy.is_for(&origin, &ledger.public_key()) {
                return Err(ServerError::Config(format!("{}: the policy's log lines ({}) do not name this ledger ({origin} with its signing key): it is another ledger's policy", p.display(), policy.logs.join(", "))));
            }
            Some(tokio::spawn(crate::witness::submit::run(ledger.clone(), policy, stopped(stop_rx.clone()))))
        }
        None => None,
    };
    let grpc = api::serve(api, listener, tls, stopped(stop_rx));
    tokio::pin!(grpc);
    let mut faults = ledger.watch_fault();
    let mut damage = ledger.watch_damage();
    let replicated = cfg.file.replication.is_some();
    let mut damaged = None;
    let fault_delay = std::time::Duration::from_millis(cfg.file.fault_exit_delay_ms.unwrap_or(2_000));
    // Serving ends by itself (a transport error), by the shutdown signal, or by a ledger
    // fault; `finished` holds the gRPC server's result once it has ended.
    let mut finished = tokio::select! {
        r = &mut grpc => Some(r),
        () = shutdown => None,
        d = damage.wait_for(Option::is_some), if replicated => {
            damaged = d.ok().and_then(|d| d.clone()).map(|d| d.to_string());
            None
        }
        f = faults.wait_for(Option::is_some) => {
            let f = f.ok().and_then(|f| f.clone());
            tracing::error!(fault = ?f, delay_ms = fault_delay.as_millis() as u64, "ledger fault: health is NOT_SERVING; exiting after the delay for a supervisor to restart the server");
            // Calls go on being answered (UNAVAILABLE, with the reason) meanwhile.
            tokio::time::timeout(fault_delay, &mut grpc).await.ok()
        }
    };
    if finished.is_none() {
        let _ = stop_tx.send(true);
        // In-flight calls finish; a stream that would never end by itself (a live
        // Subscribe) is cut after the grace period, so a stop cannot hang.
        let grace = std::time::Duration::from_secs(crate::limits::SHUTDOWN_GRACE_S);
        finished = Some(match tokio::time::timeout(grace, &mut grpc).await {
            Ok(r) => r,
            Err(_) => {
                tracing::warn!(seconds = grace.as_secs(), "calls still open after the grace period (live streams): cutting them");
                Ok(())
            }
        });
    }
    let result = finished.unwrap_or(Ok(()));
    let _ = stop_tx.send(true);
    if let Some(d) = dashboard {
        let _ = d.await;
    }
    if let Some(w) = witnessing {
        let _ = w.await;
    }
    if let Some(t) = tiles {
        let _ = t.await;
    }
    if let Some(m) = metrics {
        let _ = m.await;
    }
    result.map_err(|e| ServerError::Serve(e.to_string()))?;
    tracing::info!("stopped accepting; closing the ledger");
    // Streams still open (a Subscribe) may hold the ledger; they see it closed.
    let closing = ledger.clone();
    let closed = tokio::task::spawn_blocking(move || closing.shutdown()).await.map_err(|e| ServerError::Serve(e.to_string()))?;
    // A fault at any moment (while serving, during the grace period, in the writer's
    // closing checkpoint or snapshot) ends in a non-zero exit: the restart recovers.
    if let Some(f) = ledger.fault() {
        return Err(ServerError::WriterFault(f.to_store_error().to_string()));
    }
    if let (Some(_), Err(e)) = (&damaged, &closed) {
        // The copy is set aside next: its closing flush is not needed.
        tracing::warn!(error = %e, "closing the damaged copy failed");
    } else {
        closed.map_err(ServerError::Close)?;
    }
    tracing::info!("closed");
    let head = ledger.head().0;
    Ok(match damaged {
        Some(why) => Served::Damaged { why, head, ledger: Arc::downgrade(&ledger), vault: vault_held },
        None => Served::Stopped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_file_sets_policies_and_calendars_and_flags_override_it() {
        let dir = tempfile::tempdir().unwrap();
        let cal = dir.path().join("local.txt");
        std::fs::write(&cal, "year 2026\n2026-03-02 holiday\n").unwrap();
        let path = dir.path().join("anxind.toml");
        std::fs::write(
            &path,
            format!("listen = \"127.0.0.1:6000\"\ndata = \"/tmp/x\"\n[policy]\ndeposit_rate_bp = 150\n[county.530102.policy]\nlabour_ratio_bp = 2500\n[county.530102]\ncalendar = {:?}\n", cal.display().to_string()),
        )
        .unwrap();
        let cfg = Config::load(Some(&path), Some("127.0.0.1:7000".parse().unwrap()), None, None, None).unwrap();
        assert_eq!(cfg.listen.port(), 7000, "a flag overrides the file");
        assert_eq!(cfg.data, PathBuf::from("/tmp/x"));
        let (book, cals) = cfg.policies_and_calendars().unwrap();
        let yunnan = CountyCode::parse("530102").unwrap();
        let gansu = CountyCode::parse("620121").unwrap();
        assert_eq!(book.for_project(yunnan, None, None).labour_ratio_bp, 2500);
        assert_eq!(book.for_project(yunnan, None, None).deposit_rate_bp, 150);
        assert_eq!(book.for_project(gansu, None, None).labour_ratio_bp, 3000);
        let d = crate::domain::date::Date::parse("2026-03-02").unwrap();
        assert!(!cals.for_county(yunnan).is_working_day(d));
        assert!(cals.for_county(gansu).is_working_day(d));
        std::fs::write(&path, "[policy]\nlabour_ratio = 1\n").unwrap();
        assert!(Config::load(Some(&path), None, None, None, None).unwrap_err().contains("labour_ratio"), "unknown keys are refused");
    }
}
