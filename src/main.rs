//! `anxind`: the ledger server. Parses flags and calls `anxin::server::run`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

#[derive(Parser)]
#[command(name = "anxind", version, about = "Anxin (安薪) wage escrow ledger server", after_help = anxin::server::CONFIG_KEYS)]
struct Args {
    /// Configuration file (TOML); flags and environment variables override it.
    #[arg(long, env = "ANXIN_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:50051].
    #[arg(long, env = "ANXIN_LISTEN")]
    listen: Option<SocketAddr>,
    /// Data directory (log, index, vault) [default: ./anxin-data].
    #[arg(long, env = "ANXIN_DATA")]
    data: Option<PathBuf>,
    /// Principals file with hashed tokens [default: <data>/principals.toml, created with a dev operator token].
    #[arg(long, env = "ANXIN_PRINCIPALS")]
    principals: Option<PathBuf>,
    /// Serve the read-only county dashboard (HTTP) on this address, e.g. 127.0.0.1:8080.
    #[arg(long, env = "ANXIN_DASHBOARD")]
    dashboard: Option<SocketAddr>,
    /// Serve Prometheus metrics (GET /metrics) on this address, e.g. 127.0.0.1:9464.
    /// Overrides `metrics` in the configuration file.
    #[arg(long, env = "ANXIN_METRICS")]
    metrics: Option<SocketAddr>,
    /// Check the configuration (the file, these flags, the files they name) and exit: 0
    /// and what was checked, or 2 and every problem, one a line. Opens no ledger, listens
    /// nowhere (for `ExecStartPre=` or before a restart).
    #[arg(long)]
    check_config: bool,
    /// Log format: `text` for people, `json` for log shippers (one object a line; a line
    /// logged while a call is served carries its request id and the caller's role).
    #[arg(long, env = "ANXIN_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// TLS certificate (PEM) of the gRPC API and the dashboard; needs --tls-key.
    #[arg(long, env = "ANXIN_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM); needs --tls-cert.
    #[arg(long, env = "ANXIN_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Run as a node of a replicated ledger: a PostgreSQL connection string (repeat for
    /// the standbys); needs --node-id and --advertise. Overrides `[replication] dsns`.
    #[arg(long = "replicate", value_name = "DSN", requires_all = ["node_id", "advertise"])]
    replicate: Vec<String>,
    /// This node's name among the replicated ledger's nodes.
    #[arg(long)]
    node_id: Option<String>,
    /// Where clients reach this node, e.g. http://10.0.0.5:50051.
    #[arg(long)]
    advertise: Option<String>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("ANXIN_LOG").unwrap_or_else(|_| "info".into());
    match a.log_format {
        LogFormat::Text => tracing_subscriber::fmt().with_env_filter(filter).init(),
        // The call's span (request id, role) in every line, not the list of all spans.
        LogFormat::Json => tracing_subscriber::fmt().json().with_current_span(true).with_span_list(false).with_env_filter(filter).init(),
    }
    let tls = match (a.tls_cert, a.tls_key) {
        (Some(cert), Some(key)) => Some(anxin::server::TlsFiles { cert, key }),
        _ => None,
    };
    let loaded = anxin::server::Config::load_with_dashboard(a.config.as_deref(), a.listen, a.data, a.principals, tls, a.dashboard);
    let mut cfg = match (loaded, a.check_config) {
        (Ok(c), _) => c,
        (Err(e), true) => {
            eprintln!("anxind: the configuration has a problem:\n  {e}");
            std::process::exit(2);
        }
        (Err(e), false) => return Err(anyhow::Error::msg(e)),
    };
    if a.metrics.is_some() {
        cfg.file.metrics = a.metrics;
    }
    if let (false, Some(node_id), Some(advertise)) = (a.replicate.is_empty(), a.node_id, a.advertise) {
        let (lease_ms, allow_async) = cfg.file.replication.as_ref().map_or((None, false), |r| (r.lease_ms, r.allow_async));
        cfg.file.replication = Some(anxin::server::ReplicationConfig { dsns: a.replicate, node_id, advertise, lease_ms, allow_async });
    }
    if a.check_config {
        match anxin::config_check::check(&cfg) {
            Ok(lines) => {
                println!("anxind: the configuration is good:");
                for l in lines {
                    println!("  {l}");
                }
                return Ok(());
            }
            Err(problems) => {
                eprintln!("anxind: the configuration has {} problem(s):", problems.len());
                for p in problems {
                    eprintln!("  {p}");
                }
                std::process::exit(2);
            }
        }
    }
    if let Err(e) = anxin::server::run(cfg, shutdown_signal()).await {
        // Logged and printed: a supervisor's journal shows why it restarts the server.
        tracing::error!(error = %e, "anxind stopped");
        return Err(e.into());
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM; only Ctrl-C (SIGINT) stops the server gracefully");
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown signal: finishing in-flight calls");
}
