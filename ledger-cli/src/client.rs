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
    /// Server URL (https:// for TLS); for a replicated ledger, its nodes separated by
    /// commas: reads go to the first that answers, posts follow the leader.
    #[arg(long, env = "ANXIN_SERVER", default_value = "http://127.0.0.1:50051", global = true)]
    pub server: String,
    /// Answer only once the server holds at least this record (a receipt's last_seq: read
    /// your writes on a follower); it waits up to 5 s for it.
    #[arg(long, global = true)]
    pub min_seq: Option<u64>,
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
    Balance {
        account: String,
        #[command(flatten)]
        at: At,
    },
    /// An account's postings in record order, each with the balance after it.
    History {
        account: String,
        #[command(flatten)]
        at: At,
        /// At most this many postings (the newest pages are fetched until then).
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
    /// One project (with an id) or every project you may see.
    Project {
        id: Option<String>,
        #[command(flatten)]
        at: At,
    },
    /// Open flags.
    Flags {
        #[arg(long)]
        county: Option<String>,
        #[arg(long)]
        project: Option<String>,
        /// Every interval in which a flag of `--project` was open, up to the point: the
        /// day it opened, the day it cleared and the records that cleared it.
        #[arg(long, requires = "project")]
        intervals: bool,
        #[command(flatten)]
        at: At,
    },
    /// A county's cases (complaints and leads): status, time limits, recovered wages;
    /// then the county's figures by source.
    Cases {
        county: Option<String>,
        #[command(flatten)]
        at: At,
    },
    /// A county's work report for a period, in Chinese (or English with --lang en), as
    /// Markdown and printable HTML, every figure footnoted with the query that produced it.
    Report {
        #[arg(long)]
        county: String,
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        /// zh (default) or en.
        #[arg(long, default_value = "zh")]
        lang: String,
        /// Write report.md and report.html into this directory (else print the Markdown).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// Compute it at this record (default: the latest).
        #[arg(long, default_value_t = 0)]
        at_seq: u64,
    },
    /// A county's summary.
    County {
        code: Option<String>,
        #[command(flatten)]
        at: At,
    },
    /// A worker, by national ID or commitment.
    Worker {
        #[arg(long, conflicts_with = "worker_ref")]
        national_id: Option<String>,
        #[arg(long = "ref")]
        worker_ref: Option<String>,
        #[command(flatten)]
        at: At,
    },
    /// Audit the ledger without trusting it: check the signed checkpoint against the pinned
    /// key, a consistency proof from the checkpoint saved in --state, download only the
    /// new records, verify their chain, recompute the Merkle root, save the new checkpoint.
    Audit {
        /// The ledger's public key as pinned (`ed25519:<hex>`, from `anxin public-key`).
        #[arg(long)]
        key: String,
        /// Where the auditor keeps its last verified checkpoint (created on the first visit).
        #[arg(long)]
        state: PathBuf,
        /// A witness policy (c2sp.org/tlog-policy): audit the latest *witnessed*
        /// checkpoint, and refuse one whose cosignatures do not meet the quorum.
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Read from c2sp.org/tlog-tiles at this URL (anxind's `tiles` address, or a
        /// mirror of it) instead of gRPC: the checkpoint, a consistency proof made from the
        /// hash tiles, the records from the entry bundles (an auditor's, a county's or the
        /// operator's token: entry bundles are theirs to read).
        #[arg(long)]
        tiles: Option<String>,
    },
    /// Print the ledger's public key, in the form to pin.
    PublicKey,
    /// Prove that record N is in the log: its inclusion proof against the latest checkpoint.
    Prove {
        #[arg(long)]
        seq: u64,
        /// The pinned key; without it the server's own key is used (and said so).
        #[arg(long)]
        key: Option<String>,
    },
    /// Check a receipt. `--proof FILE`: an offline receipt (`anxin receipt`), verified
    /// here without any server: the records, their chain, the last one's inclusion in a
    /// checkpoint signed by the pinned key (and, with --policy, cosigned by the quorum).
    /// `--receipt FILE`: a Submit receipt (the JSON `anxin post --json` prints), checked
    /// against the server: its last record hashes to the receipt's chain head and is in a
    /// signed checkpoint.
    CheckReceipt {
        /// File with the Submit receipt JSON (an object or an array of them).
        #[arg(long, required_unless_present = "proof", conflicts_with = "proof")]
        receipt: Option<PathBuf>,
        /// An offline receipt (c2sp.org/tlog-proof), checked without a server.
        #[arg(long)]
        proof: Option<PathBuf>,
        #[arg(long)]
        key: String,
        /// A witness policy: prove against the latest witnessed checkpoint, which must meet
        /// its quorum.
        #[arg(long)]
        policy: Option<PathBuf>,
    },
    /// An offline receipt for records --first..=--last (a bank's batch; one worker's
    /// payout with --first alone): a c2sp.org/tlog-proof that `anxin check-receipt
    /// --proof` verifies without any server.
    Receipt {
        #[arg(long)]
        first: u64,
        #[arg(long)]
        last: Option<u64>,
        /// Prove against the latest checkpoint the witnesses cosigned.
        #[arg(long)]
        witnessed: bool,
        /// Write it here (default: print it).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Take an online backup of the server (operator only) while writes go on: records up
    /// to a checkpoint signed now, the signing key and the vault. Checked before it is
    /// kept; restore it with `anxin restore`.
    Backup {
        #[arg(long)]
        out: PathBuf,
        /// Check the backup's signing key against this pinned key (`ed25519:<hex>`).
        #[arg(long)]
        key: Option<String>,
    },
    /// Export the records and the latest signed checkpoint as a self-describing archive.
    Export {
        #[arg(long)]
        out: PathBuf,
    },
    /// Load the server with concurrent clients posting a realistic mix, and measure it.
    Bench {
        /// Concurrent clients.
        #[arg(long, default_value_t = 4)]
        clients: usize,
        /// Commands per batch.
        #[arg(long, default_value_t = 1000)]
        batch: usize,
        /// Events to post (ignored with --duration).
        #[arg(long, default_value_t = 200_000)]
        count: u64,
        /// Post for this many seconds instead of a count.
        #[arg(long)]
        duration: Option<u64>,
        /// Projects to spread the load over.
        #[arg(long, default_value_t = 10)]
        projects: usize,
        /// Workers enrolled before the load (payouts go to their cards).
        #[arg(long, default_value_t = 10_000)]
        workers: usize,
        /// The server's process id, to report its RSS.
        #[arg(long)]
        server_pid: Option<u32>,
        /// The server's data directory, to report bytes on disk per event; with
        /// --in-process, the fresh directory to run the ledger in.
        #[arg(long)]
        data: Option<PathBuf>,
        /// Skip gRPC: submit the same mix straight to a ledger in this process.
        #[arg(long, requires = "data")]
        in_process: bool,
        /// A follower of a replicated ledger (URL): report how far behind the leader it
        /// makes each record visible (follower lag, p50/p99), from live subscriptions to both.
        #[arg(long, conflicts_with = "in_process")]
        follower: Option<String>,
    },
    /// A payroll with its lines.
    Payroll {
        project: String,
        period: String,
        #[command(flatten)]
        at: At,
    },
}

/// The point a query asks about (`projection::when`): both may be given.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct At {
    /// The business date: facts dated on or before it, rules judged on it (default today, CST).
    #[arg(long)]
    pub as_of: Option<String>,
    /// The log position: the ledger exactly as it stood after this record (default the latest).
    #[arg(long)]
    pub at_seq: Option<u64>,
}

impl At {
    fn as_of(&self) -> String {
        self.as_of.clone().unwrap_or_default()
    }

    fn seq(&self) -> u64 {
        self.at_seq.unwrap_or(0)
    }
}

/// "as of D at record N" for a person, from an answer's point.
fn point_text(p: &Option<pb::Point>) -> String {
    match p {
        Some(p) if p.at_seq < p.head_seq => format!("as of {} at record {} (the ledger holds {})", p.as_of, p.at_seq, p.head_seq),
        Some(p) => format!("as of {} at record {}", p.as_of, p.at_seq),
        None => String::new(),
    }
}

/// The bearer token, and the least record a read asks for (`--min-seq`), on every call.
#[derive(Clone)]
pub struct Bearer(String, Option<u64>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let v = format!("Bearer {}", self.0).parse().map_err(|_| tonic::Status::invalid_argument("token is not ASCII"))?;
        req.metadata_mut().insert("authorization", v);
        if let Some(n) = self.1 {
            req.metadata_mut().insert(anxin::api::MIN_SEQ_KEY, n.into());
        }
        Ok(req)
    }
}

type Authed = InterceptedService<Channel, Bearer>;

/// The servers given with `--server` (one, or a replicated ledger's nodes).
#[derive(Clone)]
pub struct Servers {
    urls: Vec<String>,
    ca: Option<Vec<u8>>,
}

impl Servers {
    fn new(c: &Conn) -> Result<Servers> {
        let urls: Vec<String> = c.server.split(',').map(|u| u.trim().to_owned()).filter(|u| !u.is_empty()).collect();
        if urls.is_empty() {
            bail!("--server names no server");
        }
        let ca = c.ca.as_ref().map(|ca| std::fs::read(ca).with_context(|| ca.display().to_string())).transpose()?;
        Ok(Servers { urls, ca })
    }

    /// A channel to `url`.
    pub async fn channel(&self, url: &str) -> Result<Channel> {
        let mut ep = Channel::from_shared(url.to_owned()).context("server URL")?.connect_timeout(std::time::Duration::from_secs(3));
        if url.starts_with("https://") {
            let mut tls = ClientTlsConfig::new();
            if let Some(ca) = &self.ca {
                tls = tls.ca_certificate(Certificate::from_pem(ca));
            }
            ep = ep.tls_config(tls)?;
        }
        ep.connect().await.with_context(|| format!("connecting to {url}"))
    }

    /// A channel to the first server that answers, from the `k`-th on.
    pub async fn any_from(&self, k: usize) -> Result<Channel> {
        let mut why = Vec::new();
        for i in 0..self.urls.len() {
            match self.channel(&self.urls[(k + i) % self.urls.len()]).await {
                Ok(ch) => return Ok(ch),
                Err(e) => why.push(format!("{e:#}")),
            }
        }
        bail!("no server answers: {}", why.join("; "))
    }
}

/// Submits `r`, following the leader of a replicated ledger: a follower's `NOT_LEADER`
/// names the leader, which is asked next; a server that cannot be reached, or that could
/// not tell whether the request was recorded (`OUTCOME_UNKNOWN`), is left for the next
/// one. The request id is the same every time, so a retry is answered with the first
/// answer, never recorded twice. Gives up after 30 s.
///
/// # Errors
/// The server's refusal, or the last error after 30 s.
pub async fn submit_following(servers: &Servers, ch: &mut Channel, token: &str, r: &pb::SubmitRequest) -> Result<pb::SubmitResponse, tonic::Status> {
    let t0 = std::time::Instant::now();
    let mut next = 1usize;
    loop {
        let mut client = pb::ledger_posting_client::LedgerPostingClient::with_interceptor(ch.clone(), Bearer(token.to_owned(), None))
            .max_encoding_message_size(16 << 20)
            .max_decoding_message_size(16 << 20);
        let e = match client.submit(r.clone()).await {
            Ok(resp) => return Ok(resp.into_inner()),
            Err(e) => e,
        };
        let leader = e.metadata().get(anxin::api::error::LEADER_KEY).and_then(|v| v.to_str().ok()).map(str::to_owned);
        // A transport error (a server closing its connections) reaches us as INTERNAL
        // with its cause: the request id makes a retry safe.
        let transport = e.code() == tonic::Code::Internal && std::error::Error::source(&e).is_some();
        let retry = transport || matches!(e.code(), tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled) || leader.is_some() || anxin::api::error::reason_of(&e).0.as_deref() == Some("NOT_LEADER");
        if !retry || t0.elapsed() > std::time::Duration::from_secs(30) {
            return Err(e);
        }
        // A pause before every retry (a takeover takes about a lease), then the leader a
        // follower named or, if it cannot be reached, the next server given.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let named = match leader {
            Some(url) => servers.channel(&url).await.ok(),
            None => None,
        };
        let switched = match named {
            Some(c) => Ok(c),
            None => {
                next += 1;
                servers.any_from(next).await
            }
        };
        if let Ok(c) = switched {
            *ch = c;
        }
    }
}

fn token_of(c: &Conn) -> Result<String> {
    match &c.token {
        Some(t) => Ok(t.clone()),
        None => std::fs::read_to_string("anxin-data/dev-token")
            .map(|s| s.trim().to_owned())
            .context("no token: pass --token or set ANXIN_TOKEN (anxind prints a dev token on its first start, in anxin-data/dev-token)"),
    }
}

async fn connect(c: &Conn) -> Result<(Channel, Bearer, Servers)> {
    let token = token_of(c)?;
    let servers = Servers::new(c)?;
    let ch = servers.any_from(0).await?;
    Ok((ch, Bearer(token, c.min_seq), servers))
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
    // An offline receipt needs no server.
    if let ClientCmd::CheckReceipt { proof: Some(proof), key, policy, .. } = &cmd {
        return check_offline_receipt(proof, key, load_policy(policy.as_deref())?.as_ref(), c.json);
    }
    if let ClientCmd::Bench { clients, batch, count, duration, projects, workers, server_pid, data: Some(data), in_process: true, .. } = cmd {
        let a = crate::bench::BenchArgs { clients, batch, count, duration, projects, workers, server_pid, data: None, json: c.json };
        return tokio::task::spawn_blocking(move || crate::bench::run_in_process(&data, a)).await?;
    }
    // Tiles are read over HTTP, without the gRPC server.
    if let ClientCmd::Audit { key, state, policy, tiles: Some(url) } = &cmd {
        let source = anxin::tiles_client::TileClient::new(url, &token_of(&c)?)?;
        return audit(Via::Tiles(source), key, state, load_policy(policy.as_deref())?.as_ref(), c.json).await;
    }
    let (ch, bearer, servers) = connect(&c).await?;
    let query = || pb::ledger_query_client::LedgerQueryClient::with_interceptor(ch.clone(), bearer.clone());
    match cmd {
        ClientCmd::Post { file, request_id, command } => post(&servers, ch.clone(), &bearer.0, file, request_id, command, c.json).await,
        ClientCmd::Balance { account, at } => {
            let b = query().get_balance(pb::GetBalanceRequest { account, as_of: at.as_of(), at_seq: at.seq() }).await.map_err(status_err)?.into_inner();
            if c.json {
                let p = b.point.clone().unwrap_or_default();
                // "seq" (a string) is the latest record the node held, as before the point existed.
                print_json(&serde_json::json!({"account": b.account, "balance": b.balance, "seq": p.head_seq.to_string(), "at_seq": p.at_seq, "as_of": p.as_of}))
            } else {
                println!("{}  {}  ({})", b.account, b.balance, point_text(&b.point));
                Ok(())
            }
        }
        ClientCmd::History { account, at, limit } => {
            let mut all = Vec::new();
            let mut token = String::new();
            let mut point = None;
            loop {
                let page_size = u32::try_from((limit - all.len()).min(1000)).unwrap_or(1000);
                let r = query()
                    .get_account_history(pb::GetAccountHistoryRequest { account: account.clone(), as_of: at.as_of(), at_seq: at.seq(), page_size, page_token: token })
                    .await
                    .map_err(status_err)?
                    .into_inner();
                // Later pages are asked at the point the first one reflects.
                if point.is_none() {
                    point = r.point.clone();
                }
                all.extend(r.postings);
                if r.next_page_token.is_empty() || all.len() >= limit { break; }
                token = r.next_page_token;
            }
            if c.json {
                return print_json(&all);
            }
            println!("{}  {}", account, point_text(&point));
            println!("{:>10}  {:<10}  {:>16}  {:>16}  kind", "record", "date", "amount", "balance after");
            for p in &all {
                println!("{:>10}  {:<10}  {:>16}  {:>16}  {}", p.seq, p.date, p.amount, p.balance_after, p.kind);
            }
            Ok(())
        }
        ClientCmd::Project { id: Some(id), at } => {
            let p = query().get_project(pb::GetProjectRequest { project: id, as_of: at.as_of(), at_seq: at.seq() }).await.map_err(status_err)?.into_inner();
            if c.json {
                return print_json(&p);
            }
            println!("{} {} ({}), county {}, {}", p.project, p.name, status_name(p.status), p.county, point_text(&p.point));
            println!("  general contractor {}  owner {}", p.general_contractor, p.owner);
            println!("  wage account       {} at {}  balance {}", if p.wage_account_open { "open" } else { "closed/none" }, p.wage_account_bank, p.wage_balance);
            println!("  deposit            required {}  cash {}  letters {}", p.deposit_required, p.deposit_cash, p.letters_valid);
            println!("  progress payments  {}  to wages {}  (ratio {}.{:02}%)", p.progress_total, p.wage_share_total, p.labour_ratio_bp / 100, p.labour_ratio_bp % 100);
            println!("  workers            enrolled {}  on site {}  with contract {}", p.workers_enrolled, p.workers_on_site, p.workers_with_contract);
            println!("  wages              paid {}  owed {}  overdue {}", p.wages_paid_total, p.owed, p.overdue);
            println!("  payrolls           {}", p.payroll_periods.join(" "));
            for r in &p.reconciliation {
                let account = if r.account == pb::StatementAccount::Deposit as i32 { "deposit" } else { "wage" };
                println!(
                    "  statement          {account} account, bank {} on {}: bank {} ledger {}{}{}",
                    r.bank,
                    r.date,
                    r.bank_balance,
                    r.ledger_balance,
                    if r.differs_since.is_empty() { String::new() } else { format!("  DIFFERS since {} (last agreed {})", r.differs_since, if r.last_agreed.is_empty() { "never" } else { &r.last_agreed }) },
                    if r.late_since.is_empty() { String::new() } else { format!("  LATE since {}", r.late_since) },
                );
            }
            print_flags(&p.flags);
            Ok(())
        }
        ClientCmd::Project { id: None, at } => {
            let mut all = Vec::new();
            let mut token = String::new();
            loop {
                let r = query().list_projects(pb::ListProjectsRequest { as_of: at.as_of(), at_seq: at.seq(), page_size: 1000, page_token: token, ..Default::default() }).await.map_err(status_err)?.into_inner();
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
        ClientCmd::Flags { project: Some(project), intervals: true, at, .. } => {
            let h = query().get_project_history(pb::GetProjectHistoryRequest { project, as_of: at.as_of(), at_seq: at.seq() }).await.map_err(status_err)?.into_inner();
            if c.json {
                return print_json(&h.flag_intervals);
            }
            println!("Flags of {} {}", h.project, point_text(&h.point));
            println!("{:<26} {:<6} {:<10} {:<10} {:>14}  evidence / cleared by", "code", "grade", "opened", "cleared", "gap (last)");
            for i in &h.flag_intervals {
                let last = i.last.clone().unwrap_or_default();
                let first = i.first.clone().unwrap_or_default();
                println!("{:<26} {:<6} {:<10} {:<10} {:>14}  {:?} / {:?}", i.code, i.grade, i.opened, if i.cleared.is_empty() { "open" } else { &i.cleared }, last.gap, first.evidence, i.cleared_by);
                println!("{:<26} {}", "", last.detail);
            }
            Ok(())
        }
        ClientCmd::Flags { county, project, at, .. } => {
            let mut all = Vec::new();
            let mut token = String::new();
            loop {
                let r = query()
                    .list_flags(pb::ListFlagsRequest { county: county.clone().unwrap_or_default(), project: project.clone().unwrap_or_default(), as_of: at.as_of(), at_seq: at.seq(), page_size: 1000, page_token: token })
                    .await
                    .map_err(status_err)?
                    .into_inner();
                all.extend(r.flags);
                if r.next_page_token.is_empty() { break; }
                token = r.next_page_token;
            }
            if c.json { print_json(&all) } else { print_flags(&all); Ok(()) }
        }
        ClientCmd::Cases { county, at } => {
            let mut all = Vec::new();
            let mut token = String::new();
            let mut point = None;
            loop {
                let r = query().list_cases(pb::ListCasesRequest { county: county.clone().unwrap_or_default(), as_of: at.as_of(), at_seq: at.seq(), page_size: 1000, page_token: token }).await.map_err(status_err)?.into_inner();
                all.extend(r.cases);
                point = r.point.or(point);
                if r.next_page_token.is_empty() { break; }
                token = r.next_page_token;
            }
            if c.json {
                return print_json(&all);
            }
            println!("Cases {}", point_text(&point));
            println!("{:<16} {:<20} {:<10} {:<9} {:>7} {:<10} {:<10} {:>12} {:>5}  overdue", "case", "source", "received", "status", "workers", "decide by", "close by", "recovered", "paid");
            for x in &all {
                let source = pb::CaseSource::try_from(x.source).map(|s| s.as_str_name().trim_start_matches("CASE_SOURCE_").to_lowercase()).unwrap_or_default();
                let overdue = if x.overdue_grade.is_empty() { String::new() } else { format!("{} since {}", x.overdue_grade, x.overdue_since) };
                println!("{:<16} {:<20} {:<10} {:<9} {:>7} {:<10} {:<10} {:>12} {:>5}  {overdue}", x.case_no, source, x.received_on, x.status, x.workers, x.decide_by, x.close_by, x.recovered, x.workers_paid);
            }
            if let Some(code) = county {
                let s = query().get_county_summary(pb::GetCountySummaryRequest { county: code, as_of: at.as_of(), at_seq: at.seq() }).await.map_err(status_err)?.into_inner();
                for f in &s.casework {
                    println!("  {:<20} received {}, accepted {}, declined {}, closed {}, overdue {}; recovered {} for {} workers", f.source, f.received, f.accepted, f.declined, f.closed, f.overdue, f.recovered, f.workers_paid);
                }
            }
            Ok(())
        }
        ClientCmd::Report { county, from, to, lang, out, at_seq } => {
            let lang = match lang.as_str() {
                "zh" => anxin::dashboard::report::Lang::Zh,
                "en" => anxin::dashboard::report::Lang::En,
                other => bail!("--lang is zh or en, not {other:?}"),
            };
            let r = query().get_county_report(pb::GetCountyReportRequest { county, from, to, at_seq }).await.map_err(status_err)?.into_inner();
            if c.json {
                return print_json(&r);
            }
            let md = anxin::dashboard::report::markdown(&r, lang);
            match out {
                None => print!("{md}"),
                Some(dir) => {
                    std::fs::create_dir_all(&dir)?;
                    std::fs::write(dir.join("report.md"), &md)?;
                    std::fs::write(dir.join("report.html"), anxin::dashboard::report::html(&r, lang))?;
                    println!("wrote {} and {}", dir.join("report.md").display(), dir.join("report.html").display());
                }
            }
            Ok(())
        }
        ClientCmd::County { code, at } => {
            let s = query().get_county_summary(pb::GetCountySummaryRequest { county: code.unwrap_or_default(), as_of: at.as_of(), at_seq: at.seq() }).await.map_err(status_err)?.into_inner();
            if c.json {
                return print_json(&s);
            }
            println!("County {} {}", if s.county.is_empty() { "(all)" } else { &s.county }, point_text(&s.point));
            println!("  projects            {} (active {}, completed {}, suspended {})", s.projects_total, s.projects_active, s.projects_completed, s.projects_suspended);
            println!("  workers             registered {}, on site {}", s.workers_registered, s.workers_on_site);
            println!("  labour contracts    {} of {}", s.enrolments_with_contract, s.enrolments);
            println!("  wage accounts bound {} of {}", s.wage_accounts_bound, s.projects_total);
            println!("  deposit cover met   {} of {}  (cash {}, letters {})", s.deposit_covered_projects, s.deposit_required_projects, s.deposit_cash_total, s.letters_valid_total);
            println!("  wages paid (year)   {} to {} workers", s.wages_paid_year, s.workers_paid_year);
            println!("  arrears             {} owed to {} workers", s.arrears, s.arrears_workers);
            println!("  open flags          {} red, {} yellow  {:?}", s.flags_red, s.flags_yellow, s.flags_by_code);
            for r in &s.reconciliation {
                println!("  reconciliation      bank {}: {} accounts attested, {} agree, {} differ, {} late", r.bank, r.accounts, r.agreed, r.differ, r.late);
            }
            Ok(())
        }
        ClientCmd::Worker { national_id, worker_ref, at } => {
            let who = match (national_id, worker_ref) {
                (Some(n), _) => pb::get_worker_request::Who::NationalId(n),
                (None, Some(r)) => pb::get_worker_request::Who::WorkerRef(r),
                (None, None) => bail!("pass --national-id or --ref"),
            };
            let w = query().get_worker(pb::GetWorkerRequest { who: Some(who), as_of: at.as_of(), at_seq: at.seq() }).await.map_err(status_err)?.into_inner();
            if c.json {
                return print_json(&w);
            }
            println!("worker {} ({})  paid {}  owed {}", w.masked_id, &w.worker_ref[..16], w.paid_total, w.owed_total);
            for e in &w.enrolments {
                println!("  {:<10} employer {} card {} {} since {}{} contract {} owed {}", e.project, e.employer, e.card_masked, if e.on_site { "on site" } else { "left" }, e.first_day, if e.last_exit.is_empty() { String::new() } else { format!(" exit {}", e.last_exit) }, if e.contract_no.is_empty() { "-" } else { &e.contract_no }, e.owed);
            }
            Ok(())
        }
        ClientCmd::Bench { in_process: true, .. } => unreachable!("handled before connecting"),
        ClientCmd::Bench { clients, batch, count, duration, projects, workers, server_pid, data, in_process: false, follower } => {
            let token = bearer.0.clone();
            let follower = match follower {
                Some(url) => Some(servers.channel(&url).await?),
                None => None,
            };
            crate::bench::run(servers.clone(), ch.clone(), token, follower, crate::bench::BenchArgs { clients, batch, count, duration, projects, workers, server_pid, data, json: c.json }).await
        }
        ClientCmd::Audit { key, state, policy, tiles: _ } => audit(Via::Grpc(ch.clone(), bearer.clone()), &key, &state, load_policy(policy.as_deref())?.as_ref(), c.json).await,
        ClientCmd::PublicKey => {
            let k = pb::ledger_audit_client::LedgerAuditClient::with_interceptor(ch.clone(), bearer.clone()).get_public_key(pb::GetPublicKeyRequest {}).await.map_err(status_err)?.into_inner();
            let vk = ed25519_dalek::VerifyingKey::from_bytes(&k.ed25519.as_slice().try_into().context("a 32-byte key")?)?;
            // The standard verifier key first (what to pin), the bare key for older tools.
            println!("{}  (ledger {}; the same key as {})", anxin::chain::checkpoint::vkey(&k.ledger_id, &vk), k.ledger_id, anxin::chain::checkpoint::key_to_text(&vk));
            Ok(())
        }
        ClientCmd::Prove { seq, key } => prove(ch.clone(), bearer.clone(), seq, key.as_deref(), c.json).await,
        ClientCmd::CheckReceipt { receipt, key, policy, .. } => check_receipt(ch.clone(), bearer.clone(), &receipt.context("--receipt or --proof")?, &key, load_policy(policy.as_deref())?.as_ref()).await,
        ClientCmd::Receipt { first, last, witnessed, out } => {
            // A receipt may be as large as a message may (anxin::receipt::MAX_BYTES of records).
            let mut client = pb::ledger_audit_client::LedgerAuditClient::with_interceptor(ch.clone(), bearer.clone()).max_decoding_message_size(anxin::limits::MESSAGE_BYTES_MAX);
            let r = client.get_receipt(pb::GetReceiptRequest { first_seq: first, last_seq: last.unwrap_or(first), witnessed }).await.map_err(status_err)?.into_inner();
            match out {
                Some(p) => {
                    std::fs::write(&p, &r.proof).with_context(|| p.display().to_string())?;
                    eprintln!("receipt for records {first} to {} in the checkpoint of {} records written to {}", last.unwrap_or(first), r.tree_size, p.display());
                }
                None => print!("{}", r.proof),
            }
            Ok(())
        }
        ClientCmd::Export { out } => export(ch.clone(), bearer.clone(), &out).await,
        ClientCmd::Backup { out, key } => backup(ch.clone(), bearer.clone(), &out, key.as_deref(), c.json).await,
        ClientCmd::Payroll { project, period, at } => {
            let p = query().get_payroll(pb::GetPayrollRequest { project, period, as_of: at.as_of(), at_seq: at.seq(), page_size: 1000, page_token: String::new() }).await.map_err(status_err)?.into_inner();
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

async fn post(servers: &Servers, mut ch: Channel, token: &str, file: Option<PathBuf>, request_id: Option<String>, words: Vec<String>, json: bool) -> Result<()> {
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
        let r = submit_following(servers, &mut ch, token, &pb::SubmitRequest { request_id: id.clone(), commands: chunk.to_vec() }).await.map_err(|s| status_err(s).context(format!("batch {id}")))?;
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

type AuditClient = pb::ledger_audit_client::LedgerAuditClient<Authed>;

fn cp_from_pb(p: &pb::Checkpoint) -> Result<anxin::chain::checkpoint::SignedCheckpoint> {
    anxin::api::convert::checkpoint_from_pb(p).map_err(anyhow::Error::msg)
}

fn hashes(v: &[Vec<u8>]) -> Result<Vec<[u8; 32]>> {
    v.iter().map(|h| h.as_slice().try_into().map_err(|_| anyhow::anyhow!("a proof hash is not 32 bytes"))).collect()
}

fn bar(len: u64, what: &str) -> indicatif::ProgressBar {
    let b = indicatif::ProgressBar::new(len);
    b.set_style(indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({per_sec}, {eta})").expect("template").progress_chars("=> "));
    b.set_message(what.to_owned());
    if len < 10_000 {
        b.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    b
}

/// Streams records `from..=to` into `f`: (seq, canonical bytes, or only the header of a
/// record withheld from this reader with its hash).
/// Reads records `from..=to`, giving each one's sequence number, bytes, and for a record
/// withheld from this reader its chain hash and Merkle leaf.
async fn fetch(client: &mut AuditClient, from: u64, to: u64, f: &mut dyn FnMut(u64, Vec<u8>, Option<(Vec<u8>, Vec<u8>)>) -> Result<()>) -> Result<()> {
    use tokio_stream_lite::next;
    if from > to {
        return Ok(());
    }
    let mut stream = client.read_events(pb::ReadEventsRequest { from_seq: from, to_seq: to }).await.map_err(status_err)?.into_inner();
    let mut expect = from;
    while let Some(r) = next(&mut stream).await {
        let r = r.map_err(status_err)?;
        if r.seq != expect {
            bail!("the server sent record {} where {expect} was due", r.seq);
        }
        f(r.seq, r.canonical, r.withheld.then_some((r.hash, r.leaf_hash)))?;
        expect += 1;
    }
    if expect != to + 1 {
        bail!("the server sent records up to {} of {to}: records are missing", expect - 1);
    }
    Ok(())
}

mod tokio_stream_lite {
    /// The next item of a tonic stream.
    pub async fn next<T>(s: &mut tonic::Streaming<T>) -> Option<Result<T, tonic::Status>> {
        s.message().await.transpose()
    }
}

/// `check-receipt --proof`: everything from the file and the pinned key alone.
fn check_offline_receipt(path: &std::path::Path, key_text: &str, policy: Option<&anxin::chain::policy::Policy>, json: bool) -> Result<()> {
    let key = anxin::chain::checkpoint::key_from_text(key_text).map_err(anyhow::Error::msg)?;
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    let receipt = anxin::receipt::Receipt::parse(&text)?;
    if let Some(name) = anxin::chain::checkpoint::vkey_name(key_text) {
        if name != receipt.checkpoint.checkpoint.origin() {
            bail!("the pinned verifier key is for {name}, but the receipt's checkpoint is of {}", receipt.checkpoint.checkpoint.origin());
        }
    }
    let v = receipt.verify(&key, policy)?;
    let (first, last) = (v.records[0].seq, v.records[v.records.len() - 1].seq);
    if json {
        return print_json(&serde_json::json!({"ledger_id": receipt.checkpoint.checkpoint.ledger_id, "first_seq": first, "last_seq": last, "tree_size": v.tree_size, "witnesses": v.witnesses}));
    }
    println!("OK: records {first} to {last} of ledger {} are in the checkpoint of {} records signed by the pinned key{}", receipt.checkpoint.checkpoint.ledger_id, v.tree_size, if v.witnesses.is_empty() { String::new() } else { format!(", cosigned by {}", v.witnesses.join(", ")) });
    for r in &v.records {
        println!("  record {}: {} by {} ({})", r.seq, r.event.name(), r.principal, r.request_id);
    }
    Ok(())
}

/// A witness policy file, parsed.
fn load_policy(path: Option<&std::path::Path>) -> Result<Option<anxin::chain::policy::Policy>> {
    path.map(|p| {
        let text = std::fs::read_to_string(p).with_context(|| p.display().to_string())?;
        anxin::chain::policy::Policy::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))
    })
    .transpose()
}

/// The latest checkpoint, or with a policy the latest witnessed one, which must meet it.
async fn checkpoint_for(client: &mut AuditClient, policy: Option<&anxin::chain::policy::Policy>) -> Result<anxin::chain::checkpoint::SignedCheckpoint> {
    let cp = cp_from_pb(&client.get_checkpoint(pb::GetCheckpointRequest { witnessed: policy.is_some() }).await.map_err(status_err)?.into_inner())?;
    if let Some(p) = policy {
        let by = p.check(&cp).map_err(anyhow::Error::msg)?;
        eprintln!("witnessed: the checkpoint of {} records is cosigned by {}", cp.checkpoint.tree_size, by.join(", "));
    }
    Ok(cp)
}

/// Where an audit reads the ledger from.
enum Via {
    Grpc(Channel, Bearer),
    Tiles(anxin::tiles_client::TileClient),
}

/// An audit's source, connected.
enum Source {
    Grpc(AuditClient),
    Tiles(anxin::tiles_client::TileClient),
}

impl Source {
    /// The checkpoint to audit (unverified: the caller checks it).
    async fn checkpoint(&mut self, policy: Option<&anxin::chain::policy::Policy>) -> Result<anxin::chain::checkpoint::SignedCheckpoint> {
        match self {
            Source::Grpc(client) => checkpoint_for(client, policy).await,
            Source::Tiles(t) => {
                let cp = t.checkpoint().await?;
                if let Some(p) = policy {
                    let by = p.check(&cp).map_err(anyhow::Error::msg)?;
                    eprintln!("witnessed: the checkpoint of {} records is cosigned by {}", cp.checkpoint.tree_size, by.join(", "));
                }
                Ok(cp)
            }
        }
    }

    /// The consistency proof from `old` to `new` (whose signature was verified).
    async fn consistency(&mut self, old: u64, new: &anxin::chain::checkpoint::Checkpoint) -> Result<Vec<[u8; 32]>> {
        match self {
            Source::Grpc(client) => hashes(&client.get_consistency_proof(pb::GetConsistencyProofRequest { from_size: old, to_size: new.tree_size }).await.map_err(status_err)?.into_inner().path),
            Source::Tiles(t) => Ok(t.consistency_proof(old, new.tree_size, &new.root).await?),
        }
    }

    /// Records `from..=to` of the tree of `size`, as `fetch` gives them.
    async fn records(&mut self, from: u64, to: u64, size: u64, f: &mut dyn FnMut(u64, Vec<u8>, Option<(Vec<u8>, Vec<u8>)>) -> Result<()>) -> Result<()> {
        match self {
            Source::Grpc(client) => fetch(client, from, to, f).await,
            Source::Tiles(t) => t.records(from, to, size, &mut |seq, bytes| f(seq, bytes, None)).await.map_err(|e: anyhow::Error| match e.downcast_ref::<anxin::tiles_client::TilesError>() {
                Some(anxin::tiles_client::TilesError::Status { status: 403, .. }) => e.context("entry bundles are an auditor's, a county's or the operator's to read: audit over gRPC (without --tiles), which gives the records not yours as hashes"),
                _ => e,
            }),
        }
    }
}

async fn audit(via: Via, key_text: &str, state_path: &std::path::Path, policy: Option<&anxin::chain::policy::Policy>, json: bool) -> Result<()> {
    use anxin::audit::{check_checkpoint, check_consistency, AuditState, Catchup, Saved};
    let key = anxin::chain::checkpoint::key_from_text(key_text).map_err(anyhow::Error::msg)?;
    let saved: Option<AuditState> = if state_path.exists() { Some(AuditState::load(state_path)?) } else { None };
    let saved_cp = saved.as_ref().map(AuditState::saved).transpose()?;
    // At least the tree already verified: a follower of a replicated ledger that lags
    // waits for it instead of showing an older checkpoint.
    let at_least = saved_cp.as_ref().map(Saved::tree_size);
    let mut source = match via {
        Via::Grpc(ch, bearer) => Source::Grpc(pb::ledger_audit_client::LedgerAuditClient::with_interceptor(ch, Bearer(bearer.0, bearer.1.or(at_least)))),
        Via::Tiles(t) => Source::Tiles(t),
    };
    let cp = source.checkpoint(policy).await.map_err(|e| match at_least {
        Some(n) if e.to_string().contains("SEQ_NOT_REACHED") => anyhow::anyhow!("{e}\nthe server holds fewer records than the checkpoint of {n} you verified before: it lags behind (ask another node), or its log went backwards (a rollback)"),
        _ => e,
    })?;
    let ledger_id = saved.as_ref().map_or(cp.checkpoint.ledger_id.clone(), |s| s.ledger_id.clone());
    check_checkpoint(&cp, &key, &ledger_id)?;
    // A verifier key names the log it verifies: it must be this one.
    if let Some(name) = anxin::chain::checkpoint::vkey_name(key_text) {
        if name != cp.checkpoint.origin() {
            bail!("the pinned verifier key is for {name}, but the checkpoint's origin is {}", cp.checkpoint.origin());
        }
    }
    let mut upgraded = false;
    let mut catchup = match (&saved, saved_cp) {
        (Some(s), Some(Saved::Note(old))) => {
            // The witnessed checkpoint may trail one this auditor verified without a policy.
            if policy.is_some() && old.checkpoint.tree_size > cp.checkpoint.tree_size {
                bail!("nothing newer than your saved checkpoint of {} records is witnessed yet (the latest witnessed has {}): ask again later", old.checkpoint.tree_size, cp.checkpoint.tree_size);
            }
            let proof = if old.checkpoint.tree_size == 0 || old.checkpoint.tree_size > cp.checkpoint.tree_size { Vec::new() } else { source.consistency(old.checkpoint.tree_size, &cp.checkpoint).await? };
            if let Err(e) = check_consistency(&old.checkpoint, &cp.checkpoint, &proof) {
                // Two signed notes that cannot both be true: kept together, as evidence,
                // under a name of its own (an earlier piece of evidence is never overwritten).
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
                let evidence = state_path.with_extension(format!("evidence-{now}.txt"));
                let text = format!("# {e}\n# saved before:\n{}\n# shown now:\n{}\n# consistency proof from the server ({} hashes):\n{}\n", old.to_note(), cp.to_note(), proof.len(), proof.iter().map(hex::encode).collect::<Vec<_>>().join("\n"));
                anxin::fsutil::write_atomic(&evidence, text.as_bytes(), &ledger_id).with_context(|| evidence.display().to_string())?;
                bail!("{e}\nboth checkpoints and the proof are saved in {}", evidence.display());
            }
            Catchup::from_state(s)?
        }
        // Saved before checkpoints were signed notes (another tree): its signature is
        // checked, then every record from genesis, which must give its root on the way.
        (Some(_), Some(Saved::V1(old))) => {
            old.verify(&key).map_err(anxin::audit::AuditError::from)?;
            if old.checkpoint.tree_size > cp.checkpoint.tree_size {
                return Err(anxin::audit::AuditError::Backwards { from: old.checkpoint.tree_size, to: cp.checkpoint.tree_size }.into());
            }
            upgraded = true;
            Catchup::upgrading(&ledger_id, &old)
        }
        _ => Catchup::from_genesis(&ledger_id),
    };
    let from = catchup.size() + 1;
    let to = cp.checkpoint.tree_size;
    let pb_ = bar(to.saturating_sub(from - 1), "verifying records");
    let mut err: Option<anxin::audit::AuditError> = None;
    let mut withheld = 0u64;
    source
        .records(from, to, to, &mut |_, bytes, hash| {
            if err.is_none() {
                let fed = match hash.map(|(h, l)| (<[u8; 32]>::try_from(h.as_slice()), <[u8; 32]>::try_from(l.as_slice()))) {
                    None => catchup.feed(&bytes).map(drop),
                    Some((Ok(h), Ok(l))) => {
                        withheld += 1;
                        catchup.feed_withheld(&bytes, h, l)
                    }
                    Some(_) => Err(anxin::audit::AuditError::Chain(anxin::chain::record::ChainError::Undecodable { seq: catchup.size() + 1, why: "a withheld record's hash or leaf hash is not 32 bytes".into() })),
                };
                if let Err(e) = fed {
                    err = Some(e);
                }
            }
            pb_.inc(1);
            Ok(())
        })
        .await?;
    pb_.finish_and_clear();
    if let Some(e) = err {
        return Err(e.into());
    }
    let state = catchup.finish(&cp, key_text.trim())?;
    state.save(state_path)?;
    let new = to + 1 - from;
    if json {
        print_json(&serde_json::json!({"ledger_id": ledger_id, "tree_size": to, "root": hex::encode(cp.checkpoint.root), "new_records": new, "previous_size": from - 1, "withheld": withheld}))?;
    } else {
        println!("OK: ledger {ledger_id} checkpoint of {to} records signed by the pinned key; {new} new record(s) verified since size {}; root {}", from - 1, hex::encode(cp.checkpoint.root));
        if upgraded {
            println!("    the saved state was of checkpoint format 1: every record was verified again from genesis, and they give its root too; saved in format 2");
        }
        if withheld > 0 {
            println!("    {withheld} of them withheld from this reader (not its records nor its projects', or the county's casework): checked by their links, hashes and leaves, not their contents");
        }
    }
    Ok(())
}

async fn prove(ch: Channel, bearer: Bearer, seq: u64, key: Option<&str>, json: bool) -> Result<()> {
    let mut client = pb::ledger_audit_client::LedgerAuditClient::with_interceptor(ch, bearer);
    let key = match key {
        Some(k) => anxin::chain::checkpoint::key_from_text(k).map_err(anyhow::Error::msg)?,
        None => {
            eprintln!("note: no --key given: trusting the server's own key");
            let k = client.get_public_key(pb::GetPublicKeyRequest {}).await.map_err(status_err)?.into_inner();
            ed25519_dalek::VerifyingKey::from_bytes(&k.ed25519.as_slice().try_into().context("a 32-byte key")?)?
        }
    };
    let cp = cp_from_pb(&client.get_checkpoint(pb::GetCheckpointRequest::default()).await.map_err(status_err)?.into_inner())?;
    cp.verify(&key)?;
    let p = client.get_inclusion_proof(pb::GetInclusionProofRequest { seq, tree_size: cp.checkpoint.tree_size }).await.map_err(status_err)?.into_inner();
    let mut rec = None;
    fetch(&mut client, seq, seq, &mut |_, b, withheld| {
        if withheld.is_some() {
            bail!("record {seq} is withheld from this reader (neither its record nor one of its projects', or it is the county's casework)");
        }
        rec = Some(b);
        Ok(())
    })
    .await?;
    let bytes = rec.context("no such record")?;
    let h = anxin::chain::record::record_hash(&bytes);
    let path = hashes(&p.path)?;
    anxin::chain::merkle::verify_inclusion(&anxin::chain::merkle::leaf_hash(&bytes), seq - 1, cp.checkpoint.tree_size, &path, &cp.checkpoint.root)
        .map_err(|e| anyhow::anyhow!("inclusion of record {seq} in tree size {}: {e}", cp.checkpoint.tree_size))?;
    if json {
        print_json(&serde_json::json!({"seq": seq, "record_hash": hex::encode(h), "tree_size": cp.checkpoint.tree_size, "root": hex::encode(cp.checkpoint.root), "path": path.iter().map(hex::encode).collect::<Vec<_>>()}))?;
    } else {
        println!("OK: record {seq} (hash {}) is in the signed tree of {} records, root {}; proof of {} hashes", hex::encode(h), cp.checkpoint.tree_size, hex::encode(cp.checkpoint.root), path.len());
    }
    Ok(())
}

async fn check_receipt(ch: Channel, bearer: Bearer, file: &std::path::Path, key: &str, policy: Option<&anxin::chain::policy::Policy>) -> Result<()> {
    let key = anxin::chain::checkpoint::key_from_text(key).map_err(anyhow::Error::msg)?;
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(file)?)?;
    let items = match v {
        serde_json::Value::Array(a) => a,
        other => vec![other],
    };
    let mut client = pb::ledger_audit_client::LedgerAuditClient::with_interceptor(ch, bearer);
    let cp = checkpoint_for(&mut client, policy).await?;
    for r in items {
        let last = r["last_seq"].as_u64().context("receipt without last_seq")?;
        if last > cp.checkpoint.tree_size {
            bail!("record {last} is past the checkpoint of {} records{}: ask again once one covers it", cp.checkpoint.tree_size, if policy.is_some() { " the witnesses last cosigned" } else { "" });
        }
        let mut head = [0u8; 32];
        hex::decode_to_slice(r["chain_head"].as_str().context("receipt without chain_head")?, &mut head).context("chain_head is 64 hex digits")?;
        let p = client.get_inclusion_proof(pb::GetInclusionProofRequest { seq: last, tree_size: cp.checkpoint.tree_size }).await.map_err(status_err)?.into_inner();
        let mut rec = None;
        fetch(&mut client, last, last, &mut |_, b, withheld| {
            if withheld.is_some() {
                bail!("record {last} is withheld from this reader (neither its record nor one of its projects', or it is the county's casework)");
            }
            rec = Some(b);
            Ok(())
        })
        .await?;
        anxin::audit::check_receipt(last, &head, &rec.context("no such record")?, &hashes(&p.path)?, &cp, &key)?;
        println!("OK: receipt {} (records {}..={}) is in the signed tree of {} records", r["request_id"].as_str().unwrap_or("?"), r["first_seq"], last, cp.checkpoint.tree_size);
    }
    Ok(())
}

async fn backup(ch: Channel, bearer: Bearer, out: &std::path::Path, key: Option<&str>, json: bool) -> Result<()> {
    let pinned = key.map(anxin::chain::checkpoint::key_from_text).transpose().map_err(anyhow::Error::msg)?;
    if out.exists() {
        bail!("{} exists: a backup never overwrites a file", out.display());
    }
    let t0 = std::time::Instant::now();
    let mut client = pb::ledger_admin_client::LedgerAdminClient::with_interceptor(ch, bearer).max_decoding_message_size(anxin::limits::MESSAGE_BYTES_MAX);
    let mut stream = client.backup(pb::BackupRequest {}).await.map_err(status_err)?.into_inner();
    let partial = out.with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    let file = anxin::fsutil::create_private_file(&partial).with_context(|| partial.display().to_string())?;
    let mut w = std::io::BufWriter::new(file);
    let b = indicatif::ProgressBar::new_spinner();
    let mut bytes = 0u64;
    let received: Result<std::fs::File> = async {
        while let Some(chunk) = stream.message().await.map_err(status_err)? {
            bytes += chunk.data.len() as u64;
            std::io::Write::write_all(&mut w, &chunk.data)?;
            b.set_message(format!("{} MiB received", bytes >> 20));
            b.tick();
        }
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(file)
    }
    .await;
    b.finish_and_clear();
    if let Err(e) = received {
        let _ = std::fs::remove_file(&partial);
        bail!("the backup was not received whole, nothing kept: {e}");
    }
    // Kept only once it checks: digest, every record's chain, root, signature.
    let mut f = std::io::BufReader::new(std::fs::File::open(&partial)?);
    let report = match anxin::backup::check(&mut f, pinned.as_ref(), &mut |_| {}) {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            bail!("the backup received does not check, nothing kept: {e}");
        }
    };
    std::fs::rename(&partial, out)?;
    if let Some(dir) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        anxin::fsutil::sync_dir(dir)?;
    }
    let secs = t0.elapsed().as_secs_f64();
    let cp = &report.checkpoint.checkpoint;
    if json {
        return print_json(&serde_json::json!({
            "file": out, "bytes": bytes, "ledger_id": report.ledger_id, "records": report.records, "salts": report.salts,
            "tree_size": cp.tree_size, "root": hex::encode(cp.root), "key": report.public_key, "seconds": secs,
        }));
    }
    println!("backup of ledger {} to {}: {} records, {} vault salts, {} bytes in {secs:.2}s", report.ledger_id, out.display(), report.records, report.salts, bytes);
    println!("ends at the checkpoint of {} records, root {}, signed by {}{}", cp.tree_size, hex::encode(cp.root), report.public_key, if pinned.is_none() { " (pin it with --key to check)" } else { " (the pinned key)" });
    println!("it holds the signing key and the vault's secret: keep it as safe as they are");
    Ok(())
}

async fn export(ch: Channel, bearer: Bearer, out: &std::path::Path) -> Result<()> {
    let mut client = pb::ledger_audit_client::LedgerAuditClient::with_interceptor(ch, bearer);
    let k = client.get_public_key(pb::GetPublicKeyRequest {}).await.map_err(status_err)?.into_inner();
    let key = ed25519_dalek::VerifyingKey::from_bytes(&k.ed25519.as_slice().try_into().context("a 32-byte key")?)?;
    let cp = cp_from_pb(&client.get_checkpoint(pb::GetCheckpointRequest::default()).await.map_err(status_err)?.into_inner())?;
    cp.verify(&key)?;
    let n = cp.checkpoint.tree_size;
    let mut records = Vec::new();
    let b = bar(n, "exporting");
    fetch(&mut client, 1, n, &mut |seq, bytes, withheld| {
        if withheld.is_some() {
            bail!("record {seq} is withheld from this reader (neither its record nor one of its projects', or it is the county's casework): an archive is exported with an auditor's, a county's or the operator's token");
        }
        records.push((seq, bytes));
        b.inc(1);
        Ok(())
    })
    .await?;
    b.finish_and_clear();
    let tmp = out.with_extension("tmp");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    let written = anxin::audit::write_archive(&mut f, &key, &cp, &mut records.into_iter())?;
    // Whole or absent: written beside, made durable, then renamed into place.
    let f = f.into_inner().map_err(|e| e.into_error())?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, out)?;
    if let Some(dir) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        anxin::fsutil::sync_dir(dir)?;
    }
    println!("exported {written} records and the checkpoint of {n} signed by {} to {}", anxin::chain::checkpoint::key_to_text(&key), out.display());
    Ok(())
}
