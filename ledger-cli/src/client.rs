//! The commands that talk to a running `anxind` over gRPC.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

use anxin::api::batchfile;
use anxin::api::pb;
use anxin::limits::BATCH_COMMANDS_MAX;

/// Where the server is and who we are.
#[derive(Args, Clone)]
pub struct Conn {
    /// Server URL (https:// for TLS).
    #[arg(long, env = "ANXIN_SERVER", default_value = "http://127.0.0.1:50051", global = true)]
    pub server: String,
    /// Bearer token (anx_...). Default: $ANXIN_TOKEN, else ./anxin-data/dev-token if present.
    #[arg(long, env = "ANXIN_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// CA certificate (PEM) to trust for an https server.
    #[arg(long, env = "ANXIN_CA", global = true)]
    pub ca: Option<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Subcommand)]
pub enum ClientCmd {
    /// Post commands: a CSV or JSONL batch file, or one command as TYPE key=value...
    Post {
        /// A batch file (.csv or .jsonl); files over 10,000 commands are posted as several batches.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Request id (idempotency key). Default: derived from the content, so posting the
        /// same file again is a retry that changes nothing.
        #[arg(long)]
        request_id: Option<String>,
        /// TYPE key=value ... (e.g. `top_up_wage_account project=P01 payment_no=T1 amount=500 date=2026-02-01`).
        command: Vec<String>,
    },
    /// The balance of an account (deposit:P, wage:P, owner:USCC, contractor:USCC, card:HEX).
    Balance { account: String },
    /// One project (with an id) or every project you may see.
    Project {
        id: Option<String>,
        #[arg(long)]
        as_of: Option<String>,
    },
    /// Open flags.
    Flags {
        #[arg(long)]
        county: Option<String>,
        #[arg(long)]
        project: Option<String>,
        #[arg(long)]
        as_of: Option<String>,
    },
    /// A county's summary.
    County {
        code: Option<String>,
        #[arg(long)]
        as_of: Option<String>,
    },
    /// A worker, by national ID or commitment.
    Worker {
        #[arg(long, conflicts_with = "worker_ref")]
        national_id: Option<String>,
        #[arg(long = "ref")]
        worker_ref: Option<String>,
        #[arg(long)]
        as_of: Option<String>,
    },
    /// A payroll with its lines.
    Payroll {
        project: String,
        period: String,
        #[arg(long)]
        as_of: Option<String>,
    },
}

#[derive(Clone)]
pub struct Bearer(String);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let v = format!("Bearer {}", self.0).parse().map_err(|_| tonic::Status::invalid_argument("token is not ASCII"))?;
        req.metadata_mut().insert("authorization", v);
        Ok(req)
    }
}

type Authed = InterceptedService<Channel, Bearer>;

async fn connect(c: &Conn) -> Result<(Channel, Bearer)> {
    let token = match &c.token {
        Some(t) => t.clone(),
        None => std::fs::read_to_string("anxin-data/dev-token")
            .map(|s| s.trim().to_owned())
            .context("no token: pass --token or set ANXIN_TOKEN (anxind prints a dev token on its first start, in anxin-data/dev-token)")?,
    };
    let mut ep = Channel::from_shared(c.server.clone()).context("server URL")?;
    if c.server.starts_with("https://") {
        let mut tls = ClientTlsConfig::new();
        if let Some(ca) = &c.ca {
            tls = tls.ca_certificate(Certificate::from_pem(std::fs::read(ca).with_context(|| ca.display().to_string())?));
        }
        ep = ep.tls_config(tls)?;
    }
    let ch = ep.connect().await.with_context(|| format!("connecting to {}", c.server))?;
    Ok((ch, Bearer(token)))
}

fn status_err(s: tonic::Status) -> anyhow::Error {
    let (reason, index) = anxin::api::error::reason_of(&s);
    anyhow::anyhow!("{:?} {}: {}{}", s.code(), reason.unwrap_or_default(), s.message(), index.map(|i| format!(" (command {i})")).unwrap_or_default())
}

fn print_json<T: serde::Serialize>(v: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

pub async fn run(cmd: ClientCmd, c: Conn) -> Result<()> {
    let (ch, bearer) = connect(&c).await?;
    let query = || pb::ledger_query_client::LedgerQueryClient::with_interceptor(ch.clone(), bearer.clone());
    let as_of = |a: Option<String>| a.unwrap_or_default();
    match cmd {
        ClientCmd::Post { file, request_id, command } => post(pb::ledger_posting_client::LedgerPostingClient::with_interceptor(ch.clone(), bearer.clone()), file, request_id, command, c.json).await,
        ClientCmd::Balance { account } => {
            let b = query().get_balance(pb::GetBalanceRequest { account }).await.map_err(status_err)?.into_inner();
            if c.json { print_json(&b) } else { println!("{}  {}", b.account, b.balance); Ok(()) }
        }
        ClientCmd::Project { id: Some(id), as_of: a } => {
            let p = query().get_project(pb::GetProjectRequest { project: id, as_of: as_of(a) }).await.map_err(status_err)?.into_inner();
            if c.json {
                return print_json(&p);
            }
            println!("{} {} ({}), county {}, as of {}", p.project, p.name, status_name(p.status), p.county, p.as_of);
            println!("  general contractor {}  owner {}", p.general_contractor, p.owner);
            println!("  wage account       {} at {}  balance {}", if p.wage_account_open { "open" } else { "closed/none" }, p.wage_account_bank, p.wage_balance);
            println!("  deposit            required {}  cash {}  letters {}", p.deposit_required, p.deposit_cash, p.letters_valid);
            println!("  progress payments  {}  to wages {}  (ratio {}.{:02}%)", p.progress_total, p.wage_share_total, p.labour_ratio_bp / 100, p.labour_ratio_bp % 100);
            println!("  workers            enrolled {}  on site {}  with contract {}", p.workers_enrolled, p.workers_on_site, p.workers_with_contract);
            println!("  wages              paid {}  owed {}  overdue {}", p.wages_paid_total, p.owed, p.overdue);
            println!("  payrolls           {}", p.payroll_periods.join(" "));
            print_flags(&p.flags);
            Ok(())
        }
        ClientCmd::Project { id: None, as_of: a } => {
            let mut all = Vec::new();
            let mut token = String::new();
            loop {
                let r = query().list_projects(pb::ListProjectsRequest { as_of: as_of(a.clone()), page_size: 1000, page_token: token, ..Default::default() }).await.map_err(status_err)?.into_inner();
                all.extend(r.projects);
                if r.next_page_token.is_empty() { break; }
                token = r.next_page_token;
            }
            if c.json {
                return print_json(&all);
            }
            println!("{:<12} {:<10} {:>14} {:>14} {:>14} {:>6}  flags", "project", "status", "wage balance", "owed", "overdue", "on site");
            for p in &all {
                let worst = if p.flags.iter().any(|f| f.grade == "red") { "red" } else if p.flags.is_empty() { "green" } else { "yellow" };
                println!("{:<12} {:<10} {:>14} {:>14} {:>14} {:>6}  {}", p.project, status_name(p.status), p.wage_balance, p.owed, p.overdue, p.workers_on_site, worst);
            }
            Ok(())
        }
        ClientCmd::Flags { county, project, as_of: a } => {
            let mut all = Vec::new();
            let mut token = String::new();
            loop {
                let r = query()
                    .list_flags(pb::ListFlagsRequest { county: county.clone().unwrap_or_default(), project: project.clone().unwrap_or_default(), as_of: as_of(a.clone()), page_size: 1000, page_token: token })
                    .await
                    .map_err(status_err)?
                    .into_inner();
                all.extend(r.flags);
                if r.next_page_token.is_empty() { break; }
                token = r.next_page_token;
            }
            if c.json { print_json(&all) } else { print_flags(&all); Ok(()) }
        }
        ClientCmd::County { code, as_of: a } => {
            let s = query().get_county_summary(pb::GetCountySummaryRequest { county: code.unwrap_or_default(), as_of: as_of(a) }).await.map_err(status_err)?.into_inner();
            if c.json {
                return print_json(&s);
            }
            println!("County {} as of {}", if s.county.is_empty() { "(all)" } else { &s.county }, s.as_of);
            println!("  projects            {} (active {}, completed {}, suspended {})", s.projects_total, s.projects_active, s.projects_completed, s.projects_suspended);
            println!("  workers             registered {}, on site {}", s.workers_registered, s.workers_on_site);
            println!("  labour contracts    {} of {}", s.enrolments_with_contract, s.enrolments);
            println!("  wage accounts bound {} of {}", s.wage_accounts_bound, s.projects_total);
            println!("  deposit cover met   {} of {}  (cash {}, letters {})", s.deposit_covered_projects, s.deposit_required_projects, s.deposit_cash_total, s.letters_valid_total);
            println!("  wages paid (year)   {} to {} workers", s.wages_paid_year, s.workers_paid_year);
            println!("  arrears             {} owed to {} workers", s.arrears, s.arrears_workers);
            println!("  open flags          {} red, {} yellow  {:?}", s.flags_red, s.flags_yellow, s.flags_by_code);
            Ok(())
        }
        ClientCmd::Worker { national_id, worker_ref, as_of: a } => {
            let who = match (national_id, worker_ref) {
                (Some(n), _) => pb::get_worker_request::Who::NationalId(n),
                (None, Some(r)) => pb::get_worker_request::Who::WorkerRef(r),
                (None, None) => bail!("pass --national-id or --ref"),
            };
            let w = query().get_worker(pb::GetWorkerRequest { who: Some(who), as_of: as_of(a) }).await.map_err(status_err)?.into_inner();
            if c.json {
                return print_json(&w);
            }
            println!("worker {} ({})  paid {}  owed {}", w.masked_id, &w.worker_ref[..16], w.paid_total, w.owed_total);
            for e in &w.enrolments {
                println!("  {:<10} employer {} card {} {} since {}{} contract {} owed {}", e.project, e.employer, e.card_masked, if e.on_site { "on site" } else { "left" }, e.first_day, if e.last_exit.is_empty() { String::new() } else { format!(" exit {}", e.last_exit) }, if e.contract_no.is_empty() { "-" } else { &e.contract_no }, e.owed);
            }
            Ok(())
        }
        ClientCmd::Payroll { project, period, as_of: a } => {
            let p = query().get_payroll(pb::GetPayrollRequest { project, period, as_of: as_of(a), page_size: 1000, page_token: String::new() }).await.map_err(status_err)?.into_inner();
            if c.json {
                return print_json(&p);
            }
            println!("payroll {} {} (record {}) due {}: due {} paid {}{}", p.project, p.period, p.seq, p.due_date, p.due_total, p.paid_total, if p.overdue { "  OVERDUE" } else { "" });
            for l in &p.lines {
                println!("  {}  {}  {:>2} days  due {:>12}  paid {:>12}", l.masked_id, l.employer, l.days, l.due, l.paid);
            }
            Ok(())
        }
    }
}

fn status_name(s: i32) -> &'static str {
    match pb::ProjectStatus::try_from(s) {
        Ok(pb::ProjectStatus::Active) => "active",
        Ok(pb::ProjectStatus::Suspended) => "suspended",
        Ok(pb::ProjectStatus::Completed) => "completed",
        _ => "?",
    }
}

fn print_flags(flags: &[pb::Flag]) {
    if flags.is_empty() {
        println!("  no open flags");
        return;
    }
    for f in flags {
        println!("  {:<8} {:<26} {:<6} gap {:>12} since {}  evidence {:?}", f.project, f.code, f.grade, f.gap, f.since, f.evidence);
        println!("           {}", f.detail);
    }
}

async fn post(mut client: pb::ledger_posting_client::LedgerPostingClient<Authed>, file: Option<PathBuf>, request_id: Option<String>, words: Vec<String>, json: bool) -> Result<()> {
    let (commands, content) = match (&file, words.split_first()) {
        (Some(path), None) => {
            let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
            let rows = match path.extension().and_then(|e| e.to_str()) {
                Some("csv") => batchfile::parse_csv(&text)?,
                Some("jsonl") | Some("ndjson") => batchfile::parse_jsonl(&text)?,
                _ => bail!("{}: a batch file ends in .csv or .jsonl", path.display()),
            };
            let first = if path.extension().and_then(|e| e.to_str()) == Some("csv") { 2 } else { 1 };
            (batchfile::commands(&rows, first)?, text)
        }
        (None, Some((ty, pairs))) => {
            let row = batchfile::row_from_pairs(ty, pairs)?;
            (batchfile::commands(&[row], 1)?, words.join(" "))
        }
        (Some(_), Some(_)) => bail!("give either --file or one command, not both"),
        (None, None) => bail!("nothing to post: give --file FILE or TYPE key=value ..."),
    };
    let base = request_id.unwrap_or_else(|| format!("cli-{}", &blake3::hash(content.as_bytes()).to_hex()[..32]));
    let chunks: Vec<&[pb::Command]> = commands.chunks(BATCH_COMMANDS_MAX).collect();
    let mut receipts = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let id = if chunks.len() == 1 { base.clone() } else { format!("{base}-{i}") };
        let r = client.submit(pb::SubmitRequest { request_id: id.clone(), commands: chunk.to_vec() }).await.map_err(|s| status_err(s).context(format!("batch {id}")))?.into_inner();
        if !json {
            println!("{id}: {} command(s) recorded as {}..={}{}, chain head {}", chunk.len(), r.first_seq, r.last_seq, if r.replayed { " (already recorded: this was a retry)" } else { "" }, hex::encode(&r.chain_head));
        }
        receipts.push(serde_json::json!({"request_id": id, "first_seq": r.first_seq, "last_seq": r.last_seq, "chain_head": hex::encode(&r.chain_head), "replayed": r.replayed}));
    }
    if json {
        print_json(&receipts)?;
    }
    Ok(())
}
