//! `anxin demo`: an embedded server, a year of a realistic county posted through the real
//! gRPC API by the parties themselves (county, bank, contractors), an audit of the result
//! against the signed checkpoint, the county summary and flags as the API answers them,
//! and the dashboard until Ctrl-C.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use tonic::transport::Channel;

use anxin::api::auth::{new_token, principals_entry, Principals};
use anxin::api::pb;
use anxin::api::Api;
use anxin::demo;
use anxin::domain::principal::Principal;

pub struct DemoArgs {
    pub data: Option<PathBuf>,
    pub seed: u64,
    pub json: bool,
    pub serve: bool,
    pub listen: SocketAddr,
    pub dashboard: SocketAddr,
}

fn req<T>(msg: T, token: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut().insert("authorization", format!("Bearer {token}").parse().expect("ASCII token"));
    r
}

pub async fn run(a: DemoArgs) -> Result<()> {
    let (dir, tmp) = match &a.data {
        Some(d) => (d.clone(), false),
        None => (std::env::temp_dir().join(format!("anxin-demo-{}", std::process::id())), true),
    };
    if dir.join("LEDGER").exists() {
        bail!("{} already holds a ledger; the demo needs a fresh directory", dir.display());
    }
    let result = run_in(&a, &dir).await;
    if tmp {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

async fn run_in(a: &DemoArgs, dir: &std::path::Path) -> Result<()> {
    let t0 = Instant::now();
    let mut cfg = anxin::server::Config::load(None, Some(a.listen), Some(dir.to_owned()), None, None).map_err(anyhow::Error::msg)?;
    cfg.ledger_id = Some(format!("anxin-demo-{}", demo::COUNTY));
    let (ledger, vault) = anxin::server::open(&cfg)?;
    let plan = demo::plan(a.seed, &vault)?;
    let batches = anxin::api::demo::wire_batches(&plan);

    // A token for every party of the plan, an auditor, and the county office's dashboard.
    let mut parties: BTreeMap<String, Principal> = BTreeMap::new();
    for (p, _, _) in &batches {
        parties.insert(p.to_string(), p.clone());
    }
    parties.insert("auditor".into(), Principal::Auditor);
    let mut principals = Principals::default();
    let mut tokens = BTreeMap::new();
    let mut file = String::from("# Tokens of the demo's parties, hashed. The tokens themselves are in demo-tokens.txt.\n\n");
    let mut clear = String::new();
    for (name, p) in &parties {
        let t = new_token();
        principals.add(p.clone(), &t);
        file.push_str(&principals_entry(p, &t));
        clear.push_str(&format!("{name} {t}\n"));
        tokens.insert(name.clone(), t);
    }
    write_private(&dir.join("principals.toml"), &file)?;
    write_private(&dir.join("demo-tokens.txt"), &clear)?;

    let api = Api { ledger: ledger.clone(), vault, principals: Arc::new(principals), calls: Default::default() };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let grpc_l = tokio::net::TcpListener::bind(a.listen).await.with_context(|| format!("listen on {}", a.listen))?;
    let grpc_addr = grpc_l.local_addr()?;
    let grpc = tokio::spawn(anxin::api::serve(api.clone(), grpc_l, None, stopped(stop_rx.clone())));
    let ch = Channel::from_shared(format!("http://{grpc_addr}"))?.connect().await?;

    // Post the year, each batch as the party that would post it.
    let mut posting = pb::ledger_posting_client::LedgerPostingClient::new(ch.clone()).max_decoding_message_size(16 << 20).max_encoding_message_size(16 << 20);
    let mut commands = 0;
    let mut last = pb::SubmitResponse::default();
    for (p, id, cmds) in &batches {
        commands += cmds.len();
        last = posting
            .submit(req(pb::SubmitRequest { request_id: id.clone(), commands: cmds.clone() }, &tokens[&p.to_string()]))
            .await
            .map_err(|s| anyhow::anyhow!("demo batch {id} was refused: {s:?}"))?
            .into_inner();
    }
    let posted = t0.elapsed();

    // Audit it as an auditor would: signed checkpoint, every record, the Merkle root.
    let auditor = &tokens["auditor"];
    let mut audit = pb::ledger_audit_client::LedgerAuditClient::new(ch.clone());
    let key = ledger.public_key();
    let cp = audit.get_checkpoint(req(pb::GetCheckpointRequest::default(), auditor)).await?.into_inner();
    let signed = anxin::api::convert::checkpoint_from_pb(&cp).map_err(anyhow::Error::msg)?;
    let mut catchup = anxin::audit::Catchup::from_genesis(&cp.ledger_id);
    let mut stream = audit.read_events(req(pb::ReadEventsRequest { from_seq: 1, to_seq: cp.tree_size }, auditor)).await?.into_inner();
    while let Some(r) = stream.message().await? {
        catchup.feed(&r.canonical)?;
    }
    signed.verify(&key).context("the demo's checkpoint does not verify with the ledger's key")?;
    catchup.finish(&signed, &anxin::chain::checkpoint::vkey(&cp.ledger_id, &key)).context("the demo's own audit failed")?;

    // The county's figures and flags, as the API answers them.
    let county_token = &tokens[&format!("county:{}", demo::COUNTY)];
    let mut q = pb::ledger_query_client::LedgerQueryClient::new(ch.clone());
    let as_of = plan.as_of.to_string();
    let summary = q.get_county_summary(req(pb::GetCountySummaryRequest { county: demo::COUNTY.into(), as_of: as_of.clone(), at_seq: 0 }, county_token)).await?.into_inner();
    let year_from = format!("{}-01-01", plan.as_of.year());
    let report = q
        .get_county_report(req(pb::GetCountyReportRequest { county: demo::COUNTY.into(), from: year_from, to: as_of.clone(), at_seq: 0 }, county_token))
        .await?
        .into_inner();
    // The year's work report, as `anxin report` writes it, in the data directory.
    for (lang, tag) in [(anxin::dashboard::report::Lang::Zh, "zh"), (anxin::dashboard::report::Lang::En, "en")] {
        write_private(&dir.join(format!("report-{tag}.md")), &anxin::dashboard::report::markdown(&report, lang))?;
        write_private(&dir.join(format!("report-{tag}.html")), &anxin::dashboard::report::html(&report, lang))?;
    }
    let flags = q.list_flags(req(pb::ListFlagsRequest { county: demo::COUNTY.into(), project: String::new(), as_of: as_of.clone(), at_seq: 0, page_size: 1000, page_token: String::new() }, county_token)).await?.into_inner().flags;

    let dash = if a.serve {
        let l = tokio::net::TcpListener::bind(a.dashboard).await.with_context(|| format!("dashboard on {}", a.dashboard))?;
        let addr = l.local_addr()?;
        tokio::spawn(anxin::dashboard::serve(api.clone(), l, Some(as_of.clone()), None, stopped(stop_rx.clone())));
        Some(addr)
    } else {
        None
    };

    if a.json {
        let out = serde_json::json!({
            "data_dir": dir.display().to_string(),
            "records": last.last_seq,
            "chain_head": hex::encode(&last.chain_head),
            "verified": cp.tree_size,
            "checkpoint_root": hex::encode(&cp.root),
            "public_key": anxin::chain::checkpoint::vkey(&cp.ledger_id, &key),
            "summary": summary,
            "flags": flags,
            "report": report,
            "dashboard": dash.map(|d| format!("http://{d}/")),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("Anxin demo: county {} as of {}", demo::COUNTY, as_of);
        println!("  posted {commands} commands in {} batches through gRPC as {} parties -> {} records in {:.2?}", batches.len(), parties.len() - 1, last.last_seq, posted);
        println!("  audited: {} records chain from genesis into the Merkle root {} signed by {}", cp.tree_size, hex::encode(&cp.root), anxin::chain::checkpoint::vkey(&cp.ledger_id, &key));
        println!("  data directory: {}{}", dir.display(), if a.data.is_none() { " (temporary, removed on exit; pass --data DIR to keep it)" } else { "" });
        println!();
        print_summary(&summary);
        println!();
        print_casework(&report);
        println!("  the year's work report: {} (and report-en.*, .html to print)", dir.join("report-zh.md").display());
        println!();
        println!("Open flags ({} red, {} yellow):", summary.flags_red, summary.flags_yellow);
        println!("  {:<7} {:<26} {:<6} {:>14} {:<10}  evidence (seq)", "project", "code", "grade", "gap (yuan)", "since");
        for f in &flags {
            let ev: Vec<String> = f.evidence.iter().take(4).map(u64::to_string).collect();
            let more = if f.evidence.len() > 4 { format!(" +{}", f.evidence.len() - 4) } else { String::new() };
            println!("  {:<7} {:<26} {:<6} {:>14} {:<10}  {}{}", f.project, f.code, f.grade, f.gap, f.since, ev.join(","), more);
            println!("          {}", f.detail);
        }
    }
    if let Some(d) = dash {
        println!();
        println!("Dashboard (as county {}): http://{d}/login#{county_token}", demo::COUNTY);
        println!("  (pages show figures as of {as_of}, the demo's date; add ?as_of=YYYY-MM-DD to a page for another)");
        println!("gRPC API: http://{grpc_addr}  (tokens in {})", dir.join("demo-tokens.txt").display());
        println!("Serving until Ctrl-C.");
        tokio::signal::ctrl_c().await?;
    }
    let _ = stop_tx.send(true);
    let _ = grpc.await;
    tokio::task::spawn_blocking(move || ledger.shutdown()).await??;
    Ok(())
}

fn write_private(path: &std::path::Path, text: &str) -> Result<()> {
    anxin::fsutil::write_atomic(path, text.as_bytes(), "demo").with_context(|| path.display().to_string())
}

fn rate(num: u32, den: u32) -> String {
    match anxin::projection::views::CountySummary::rate_bp(num, den) {
        Some(bp) => format!("{}.{:02}%", bp / 100, bp % 100),
        None => "n/a".into(),
    }
}

fn print_summary(s: &pb::CountySummary) {
    println!("County summary (县治欠办)");
    println!("  projects                     {} (active {}, completed {}, suspended {})", s.projects_total, s.projects_active, s.projects_completed, s.projects_suspended);
    println!("  workers registered (实名制)   {}, on site {}", s.workers_registered, s.workers_on_site);
    println!("  labour contracts             {} of {} ({})", s.enrolments_with_contract, s.enrolments, rate(s.enrolments_with_contract, s.enrolments));
    println!("  wage accounts bound          {} of {} projects ({})", s.wage_accounts_bound, s.projects_total, rate(s.wage_accounts_bound, s.projects_total));
    println!("  deposit cover met            {} of {} projects ({}); cash {}, letters {}", s.deposit_covered_projects, s.deposit_required_projects, rate(s.deposit_covered_projects, s.deposit_required_projects), s.deposit_cash_total, s.letters_valid_total);
    println!("  progress payments            {}, of which to wage accounts {}", s.progress_total, s.wage_share_total);
    println!("  wages paid this year         {} to {} workers", s.wages_paid_year, s.workers_paid_year);
    println!("  arrears (past due, unpaid)   {} owed to {} workers", s.arrears, s.arrears_workers);
}

fn print_casework(r: &pb::CountyReport) {
    println!("Casework {} to {} (治欠工作)", r.from, r.to);
    println!("  {:<22} {:>8} {:>8} {:>8} {:>8} {:>8} {:>14}", "cases by source", "received", "accepted", "closed", "rate", "workers", "recovered");
    for c in &r.cases {
        println!("  {:<22} {:>8} {:>8} {:>8} {:>8} {:>8} {:>14}", c.source, c.received, c.accepted, c.closed, rate(c.closed, c.received), c.workers_paid, c.recovered);
    }
    println!(
        "  orders to pay                {} issued, {} complied with, {} unmet; {} referred to the police ({} opened by the police, {} convicted)",
        r.orders_issued, r.orders_complied, r.orders_unmet, r.orders_referred, r.referrals_filed, r.referrals_convicted
    );
    println!("  credit list                  {} listed in the period; on the list: {}", r.listed, if r.on_list.is_empty() { "none".to_owned() } else { r.on_list.join(", ") });
    println!("  inspections                  {} of {} employers, {} contracts signed on the spot", r.inspections, r.employers_inspected, r.contracts_signed);
    println!("  wage cards                   {} issued, {} activated", r.cards_issued, r.cards_activated);
    println!("  wages paid                   {} to {} workers", r.wages_paid, r.workers_paid);
}
