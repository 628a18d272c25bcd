//! `anxind`: the ledger server. Until the gRPC API lands it opens (and recovers) the
//! store, reports what recovery did, and holds the data directory until SIGINT/SIGTERM,
//! then closes cleanly.

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;

#[derive(Parser)]
#[command(name = "anxind", version, about = "Anxin (安薪) wage escrow ledger server")]
struct Args {
    /// Data directory (log, index, vault).
    #[arg(long, env = "ANXIN_DATA", default_value = "./anxin-data")]
    data: PathBuf,
    /// Id of a new ledger (ignored for an existing one).
    #[arg(long, env = "ANXIN_LEDGER_ID")]
    ledger_id: Option<String>,
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("ANXIN_LOG").unwrap_or_else(|_| "info".into()))
        .init();
    let args = Args::parse();
    let ledger = anxin::ledger::Ledger::open(&args.data, anxin::ledger::LedgerOptions { ledger_id: args.ledger_id, ..Default::default() })?;
    let (last, head) = ledger.head();
    let r = ledger.recovery();
    tracing::info!(ledger = ledger.ledger_id(), records = last, head = %hex::encode(head), replayed = r.replayed, "store open; gRPC API not yet served");
    shutdown_signal().await;
    tracing::info!("shutting down");
    tokio::task::spawn_blocking(move || ledger.close()).await??;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
