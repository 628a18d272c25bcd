//! `anxin`: the command-line tool of the Anxin wage ledger.
//!
//! Offline commands work on a data directory directly (the server must not be running on
//! it): `demo`, `verify`, `rebuild`. `token` makes principals' tokens. The others talk to a
//! running `anxind` over gRPC (`client.rs`).

mod bench;
mod client;
mod demo;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};

use anxin::ledger::{self, LedgerOptions};

#[derive(Parser)]
#[command(name = "anxin", version, about = "Anxin (安薪) wage escrow ledger: demo, verify, rebuild, and the client of anxind")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
    #[command(flatten)]
    conn: client::Conn,
}

#[derive(Subcommand)]
enum Cmd {
    /// Post a year of a realistic county into a ledger, verify the chain, and print the
    /// county summary and the open flags.
    Demo {
        /// Data directory (kept afterwards). Default: a fresh temporary directory.
        #[arg(long)]
        data: Option<PathBuf>,
        /// Seed of the generated county.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Exit after printing instead of serving the dashboard (for scripts).
        #[arg(long)]
        no_serve: bool,
        /// The embedded gRPC server's address.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
        /// The dashboard's address.
        #[arg(long, default_value = "127.0.0.1:8080")]
        dashboard: std::net::SocketAddr,
    },
    /// Recompute every record hash of a data directory (--data) or of an exported archive
    /// (--archive, also checking its signed checkpoint and Merkle root); report the first bad record.
    Verify {
        #[arg(long, required_unless_present = "archive", conflicts_with = "archive")]
        data: Option<PathBuf>,
        #[arg(long)]
        archive: Option<PathBuf>,
        /// The pinned public key (`ed25519:<hex>`): the checkpoint must be signed by it,
        /// not merely by the key the data directory or archive carries.
        #[arg(long)]
        key: Option<String>,
    },
    /// Restore a backup (from `anxin backup`) into a new data directory, after checking
    /// every record against its signed checkpoint. Start anxind on it afterwards.
    Restore {
        /// The backup file.
        #[arg(long)]
        from: PathBuf,
        /// The data directory to create (must not exist, or be empty).
        #[arg(long)]
        data: PathBuf,
        /// The pinned public key (`ed25519:<hex>`) the backup must be signed by.
        #[arg(long)]
        key: Option<String>,
    },
    /// Delete a data directory's index and rebuild every projection from the log alone.
    Rebuild {
        #[arg(long)]
        data: PathBuf,
    },
    /// Tokens for the principals file.
    Token {
        #[command(subcommand)]
        cmd: TokenCmd,
    },
    /// Run a transparency-log witness (c2sp.org/tlog-witness) for Anxin ledgers, or any
    /// C2SP log: `POST /add-checkpoint` cosigns a checkpoint the log signed only if it is
    /// consistent with the last one this witness cosigned for that log; a fork is
    /// refused (422), kept as evidence, and refused again. The state is durable.
    Witness {
        /// Where to listen, e.g. 127.0.0.1:7380.
        #[arg(long)]
        listen: std::net::SocketAddr,
        /// The witness's 32-byte Ed25519 seed (created, mode 0600, if absent).
        #[arg(long)]
        key: PathBuf,
        /// The witness's name (its key name), e.g. court.example/witness.
        #[arg(long)]
        name: String,
        /// The logs it witnesses: one `log <verifier key>` line each (`anxin public-key`).
        #[arg(long)]
        logs: PathBuf,
        /// Its state directory (the last cosigned checkpoint of each log, the evidence).
        #[arg(long)]
        state: PathBuf,
    },
    #[command(flatten)]
    Client(client::ClientCmd),
}

#[derive(Subcommand)]
enum TokenCmd {
    /// Make a new random token and print it with the lines to add to anxind's principals file.
    New {
        /// bank, contractor, county, auditor or operator.
        #[arg(long)]
        role: String,
        /// The bank code, contractor USCC or county code (not for auditor and operator).
        #[arg(long)]
        scope: Option<String>,
    },
}

/// `anxin witness`: prints the tlog-policy line that names it, then serves until SIGTERM
/// or Ctrl-C.
fn run_witness(listen: std::net::SocketAddr, key: &std::path::Path, name: &str, logs: &std::path::Path, state: &std::path::Path) -> Result<()> {
    let signing = anxin::witness::load_or_create_key(key).map_err(anyhow::Error::msg)?;
    let cosigner = anxin::chain::cosignature::Cosigner::new(name, signing).map_err(anyhow::Error::msg)?;
    let text = std::fs::read_to_string(logs).map_err(|e| anyhow::anyhow!("{}: {e}", logs.display()))?;
    let known = anxin::witness::parse_logs(&text).map_err(|e| anyhow::anyhow!("{}: {e}", logs.display()))?;
    if known.is_empty() {
        bail!("{} names no log (`log <verifier key>` lines)", logs.display());
    }
    let vkey = cosigner.public().vkey();
    let w = std::sync::Arc::new(anxin::witness::Witness::open(state, cosigner, known).map_err(anyhow::Error::msg)?);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(async move {
        let l = tokio::net::TcpListener::bind(listen).await?;
        let at = l.local_addr()?;
        // The line a policy file needs for this witness, with its submission URL.
        println!("witness {} {vkey} http://{at}", name.replace(['/', '.'], "-"));
        let stop = async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("a SIGTERM handler");
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        };
        anxin::witness::serve(w, l, stop).await?;
        Ok(())
    })
}

fn main() -> Result<()> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::try_from_env("ANXIN_LOG").unwrap_or_else(|_| "warn".into())).with_writer(std::io::stderr).init();
    let cli = Cli::parse();
    match cli.command {
        Cmd::Demo { data, seed, no_serve, listen, dashboard } => {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
            rt.block_on(demo::run(demo::DemoArgs { data, seed, json: cli.conn.json, serve: !no_serve, listen, dashboard }))
        }
        Cmd::Verify { data: Some(data), key, .. } => run_verify(&data, key.as_deref(), cli.conn.json),
        Cmd::Verify { archive: Some(a), key, .. } => run_verify_archive(&a, key.as_deref(), cli.conn.json),
        Cmd::Verify { .. } => bail!("give --data DIR or --archive FILE"),
        Cmd::Rebuild { data } => run_rebuild(&data),
        Cmd::Restore { from, data, key } => run_restore(&from, &data, key.as_deref(), cli.conn.json),
        Cmd::Token { cmd: TokenCmd::New { role, scope } } => {
            let text = match (role.as_str(), scope) {
                ("auditor" | "operator", None) => role.clone(),
                ("auditor" | "operator", Some(_)) => bail!("{role} takes no --scope"),
                (_, Some(s)) => format!("{role}:{s}"),
                (_, None) => bail!("--role {role} needs --scope (bank code, contractor USCC or county code)"),
            };
            let principal = anxin::domain::principal::Principal::parse(&text).map_err(|e| anyhow::anyhow!("{e}"))?;
            let token = anxin::api::auth::new_token();
            println!("token (give it to {principal}; it is shown only now):\n  {token}\n");
            println!("add to anxind's principals file:\n{}", anxin::api::auth::principals_entry(&principal, &token));
            Ok(())
        }
        Cmd::Witness { listen, key, name, logs, state } => run_witness(listen, &key, &name, &logs, &state),
        Cmd::Client(c) => {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
            rt.block_on(client::run(c, cli.conn))
        }
    }
}

fn run_verify(dir: &std::path::Path, key: Option<&str>, json: bool) -> Result<()> {
    let pinned = key.map(anxin::chain::checkpoint::key_from_text).transpose().map_err(anyhow::Error::msg)?;
    let t0 = Instant::now();
    let bar = indicatif::ProgressBar::new_spinner();
    let report = ledger::verify_pinned(dir, pinned.as_ref(), &mut |n| {
        if n % 65_536 < 8_192 {
            bar.set_message(format!("{n} records verified"));
            bar.tick();
        }
    })?;
    bar.finish_and_clear();
    let secs = t0.elapsed().as_secs_f64();
    if json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({
            "ledger_id": report.ledger_id,
            "records": report.records,
            "frames": report.frames,
            "head": hex_str(&report.head),
            "error": report.error,
            "torn_tail": report.torn_tail,
            "index_agrees": report.index_agrees,
            "checkpoint_agrees_at": report.checkpoint,
            "key_pinned": report.key_pinned,
            "findings": report.findings.iter().map(|f| serde_json::json!({"seq": f.seq, "code": f.code, "what": f.what})).collect::<Vec<_>>(),
            "seconds": secs,
        }))?);
    } else {
        println!("ledger {}: {} records in {} frames checked in {:.3}s", report.ledger_id, report.records, report.frames, secs);
        println!("chain head {}", hex_str(&report.head));
        if let Some((seg, off, bytes)) = report.torn_tail {
            println!("note: a torn, never-acknowledged tail of {bytes} bytes at segment {seg:020}.seg offset {off} (cut on next start)");
        }
        match report.index_agrees {
            Some(false) => println!("WARNING: the index's chain head disagrees with the log: run `anxin rebuild`"),
            Some(true) => println!("index agrees with the log"),
            None => {}
        }
        match (report.checkpoint, report.key_pinned) {
            (Some(n), true) => println!("the checkpoint of {n} records, signed by the pinned key, agrees with the log"),
            (Some(n), false) => println!("the signed checkpoint of {n} records agrees with the log (signed by the key in the data directory: pin the auditors' key with --key)"),
            (None, _) => println!("WARNING: no signed checkpoint: a log cut at a frame boundary cannot be told from a shorter one here; check it against an auditor's saved state (`anxin audit`)"),
        }
        // Records whose chain is intact but that break a rule the ledger enforces now
        // (recorded by an earlier build): the county should know, the log stays as it is.
        for f in &report.findings {
            println!("FINDING {}: {}", f.code, f.what);
        }
    }
    if let Some(e) = report.error {
        bail!("verification FAILED: {e}");
    }
    if !json {
        match report.findings.len() {
            0 => println!("OK"),
            n => println!("OK: the chain is intact, with {n} finding(s) above"),
        }
    }
    Ok(())
}

fn run_restore(from: &std::path::Path, data: &std::path::Path, key: Option<&str>, json: bool) -> Result<()> {
    let pinned = key.map(anxin::chain::checkpoint::key_from_text).transpose().map_err(anyhow::Error::msg)?;
    let t0 = Instant::now();
    let mut f = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(from).map_err(|e| anyhow::anyhow!("{}: {e}", from.display()))?);
    let bar = indicatif::ProgressBar::new_spinner();
    let r = anxin::backup::restore(&mut f, data, pinned.as_ref(), &mut |n| {
        bar.set_message(format!("{n} records checked"));
        bar.tick();
    });
    bar.finish_and_clear();
    let r = r.map_err(|e| anyhow::anyhow!("restore FAILED, nothing written: {e}"))?;
    // The restored directory as anxind will see it: chain, checkpoint and key agree.
    let v = ledger::verify(data, &mut |_| {})?;
    if let Some(e) = v.error {
        bail!("the restored directory does not verify: {e}");
    }
    let cp = &r.checkpoint.checkpoint;
    if json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({
            "data": data, "ledger_id": r.ledger_id, "records": r.records, "salts": r.salts, "tree_size": cp.tree_size,
            "root": hex_str(&cp.root), "key": r.public_key, "seconds": t0.elapsed().as_secs_f64(),
        }))?);
    } else {
        println!("restored ledger {} into {}: {} records, {} vault salts ({:.2}s)", r.ledger_id, data.display(), r.records, r.salts, t0.elapsed().as_secs_f64());
        println!("every record checks against the checkpoint of {} records, root {}, signed by {}", cp.tree_size, hex_str(&cp.root), r.public_key);
        println!("start anxind --data {} (its first start rebuilds the index and the projections)", data.display());
    }
    Ok(())
}

fn run_verify_archive(path: &std::path::Path, key: Option<&str>, json: bool) -> Result<()> {
    let pinned = key.map(anxin::chain::checkpoint::key_from_text).transpose().map_err(anyhow::Error::msg)?;
    let bar = indicatif::ProgressBar::new_spinner();
    let t0 = Instant::now();
    let r = anxin::audit::verify_archive(path, pinned.as_ref(), &mut |n| bar.set_message(format!("{n} records")));
    bar.finish_and_clear();
    let r = r.map_err(|e| anyhow::anyhow!("verification FAILED: {e}"))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({"ledger_id": r.ledger_id, "records": r.records, "root": hex_str(&r.root), "key": r.public_key, "key_pinned": pinned.is_some()}))?);
    } else if pinned.is_some() {
        println!("OK: archive of ledger {}: {} records chain from genesis, Merkle root {} matches the checkpoint signed by the pinned key {} ({:.2}s)", r.ledger_id, r.records, hex_str(&r.root), r.public_key, t0.elapsed().as_secs_f64());
    } else {
        // The same verdict as examples/verify_archive.py: consistent, but not proven to
        // be the ledger's (anyone can write an archive signed by a key of their own).
        println!("NOT PINNED: archive of ledger {}: {} records chain from genesis, Merkle root {} matches the checkpoint signed by the archive's own key {} ({:.2}s)", r.ledger_id, r.records, hex_str(&r.root), r.public_key, t0.elapsed().as_secs_f64());
        eprintln!("WARNING: NO KEY PINNED. The checkpoint was checked only against the key the archive itself names: this proves the archive is consistent, not who made it. Pass --key with the auditors' pinned key.");
    }
    if pinned.is_none() {
        // Exit 2, as the Python verifier: not a failure, not a pass.
        std::process::exit(2);
    }
    Ok(())
}

fn run_rebuild(dir: &std::path::Path) -> Result<()> {
    if !dir.join("LEDGER").exists() {
        bail!("{} holds no ledger", dir.display());
    }
    let t0 = Instant::now();
    let led = ledger::rebuild(dir, LedgerOptions::default())?;
    let replayed = led.recovery().replayed;
    let (last, head) = led.head();
    led.close()?;
    println!("rebuilt every projection from {replayed} records in {:.3}s; {last} records, head {}", t0.elapsed().as_secs_f64(), hex_str(&head));
    Ok(())
}

fn hex_str(h: &[u8; 32]) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

