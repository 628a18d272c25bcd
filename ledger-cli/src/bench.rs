//! `anxin bench`: a gRPC load generator, run as its own process against a running `anxind`.
//!
//! It sets up its own projects and 10,000 enrolled workers (with an operator token), then
//! posts batches from concurrent clients with a realistic mix: about 80% payouts to the
//! workers' cards, 10% progress payments with their wage splits, 10% deposits and guarantee
//! letters. It reports events per second, latency percentiles per batch (hdrhistogram),
//! errors, and, when told where the server is, its RSS and bytes on disk per event.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use tonic::transport::Channel;

use anxin::api::pb;
use anxin::api::pb::command::Kind;
use anxin::domain::ids::{BankCard, NationalId, Uscc};

pub struct BenchArgs {
    pub clients: usize,
    pub batch: usize,
    pub count: u64,
    pub duration: Option<u64>,
    pub projects: usize,
    pub workers: usize,
    pub server_pid: Option<u32>,
    pub data: Option<std::path::PathBuf>,
    pub json: bool,
}

fn cmd(k: Kind) -> pb::Command {
    pb::Command { kind: Some(k) }
}

fn worker_id(run: u64, i: usize) -> (String, String) {
    // Distinct per run so a bench can be repeated against the same ledger.
    let n = (run % 1000) as usize * 100_000 + i;
    let nid = NationalId::with_check(&format!("62012119{:02}{:02}{:02}{:03}", 70 + n % 30, 1 + (n / 30) % 12, 1 + (n / 360) % 28, n % 1000));
    let card = BankCard::with_check(&format!("6217{:014}", 10_000_000 + n as u64 * 7));
    (nid.expose_clear().to_owned(), card.expose_clear().to_owned())
}

fn req<T>(m: T, token: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(m);
    r.metadata_mut().insert("authorization", format!("Bearer {token}").parse().expect("ASCII"));
    r
}

/// The k-th command of client `c` in the mix.
fn mixed(run: u64, c: usize, k: u64, a: &BenchArgs, gc: &str) -> pb::Command {
    let p = format!("B{run}-{}", (k as usize + c) % a.projects);
    let no = format!("c{c}-{k}");
    match k % 10 {
        0 => cmd(Kind::MakeProgressPayment(pb::MakeProgressPayment { project: p, payment_no: no, total: "50000.00".into(), wage_share: "20000.00".into(), date: "2026-02-05".into() })),
        1 => {
            if k % 20 == 1 {
                cmd(Kind::PayDeposit(pb::PayDeposit { project: p, bank: "ICBC".into(), payment_no: no, amount: "1000.00".into(), date: "2026-02-05".into() }))
            } else {
                cmd(Kind::IssueGuaranteeLetter(pb::IssueGuaranteeLetter { issued_on: String::new(), applicant: String::new(), beneficiary: String::new(), project: p, letter_no: format!("L{run}-{no}"), bank: "ICBC".into(), amount: "5000.00".into(), valid_from: "2026-01-01".into(), valid_to: "2027-06-30".into() }))
            }
        }
        _ => {
            let project_idx = (k as usize + c) % a.projects;
            let per_project = a.workers / a.projects;
            let w = project_idx * per_project + (k as usize * 7 + c) % per_project;
            let (nid, card) = worker_id(run, w);
            let _ = gc;
            cmd(Kind::PayWage(pb::PayWage { project: p, payment_no: no, national_id: nid, bank_card: card, amount: "1.00".into(), date: "2026-02-10".into(), period: String::new() }))
        }
    }
}

/// Arrival time of every 16th record of a live subscription from `from`, until `stop`.
fn watch(ch: Channel, token: String, from: u64, stop: Arc<std::sync::atomic::AtomicBool>) -> tokio::task::JoinHandle<std::collections::HashMap<u64, Instant>> {
    tokio::spawn(async move {
        let mut seen = std::collections::HashMap::new();
        let mut a = pb::ledger_audit_client::LedgerAuditClient::new(ch).max_decoding_message_size(16 << 20);
        let Ok(stream) = a.subscribe(req(pb::SubscribeRequest { from_seq: from }, &token)).await else { return seen };
        let mut stream = stream.into_inner();
        while !stop.load(Ordering::Relaxed) {
            match tokio::time::timeout(Duration::from_millis(200), stream.message()).await {
                Ok(Ok(Some(r))) => {
                    if r.seq % 16 == 0 {
                        seen.insert(r.seq, Instant::now());
                    }
                }
                Ok(_) => break,
                Err(_) => {}
            }
        }
        seen
    })
}

pub async fn run(servers: crate::client::Servers, ch: Channel, token: String, follower: Option<Channel>, a: BenchArgs) -> Result<()> {
    if a.projects == 0 || a.workers < a.projects || a.batch == 0 || a.clients == 0 {
        bail!("need at least one project, client and command per batch, and a worker per project");
    }
    let run = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() % 100_000;
    let mut post_ch = ch.clone();
    let gc = Uscc::with_check("91620121MA0000001").to_string();
    let owner = Uscc::with_check("91620121MB0000001").to_string();
    let employer = Uscc::with_check("91620121MC0000001").to_string();

    // Set up: projects, accounts, generous wage funding, and the workers.
    let setup = Instant::now();
    let per_project = a.workers / a.projects;
    for p in 0..a.projects {
        let id = format!("B{run}-{p}");
        let cmds = vec![
            cmd(Kind::RegisterProject(pb::RegisterProject { registered_on: String::new(), deposit_basis: 0, deposit_exemption_basis: String::new(), funding: 0,
                project: id.clone(),
                county: "620121".into(),
                name: format!("bench {id}"),
                general_contractor: gc.clone(),
                owner: owner.clone(),
                contract_price: "100000000".into(),
                contract_date: "2026-01-05".into(),
                permit_date: String::new(),
                start_date: "2026-01-15".into(),
                planned_end: "2027-12-31".into(),
                labour_ratio_bp: 0,
                deposit_rate_bp: 0,
            })),
            cmd(Kind::OpenWageAccount(pb::OpenWageAccount { project: id.clone(), bank: "ICBC".into(), account_no: format!("BENCH-{id}"), date: "2026-01-10".into() })),
            cmd(Kind::TopUpWageAccount(pb::TopUpWageAccount { project: id.clone(), payment_no: "FUND".into(), amount: "900000000.00".into(), date: "2026-01-20".into() })),
        ];
        crate::client::submit_following(&servers, &mut post_ch, &token, &pb::SubmitRequest { request_id: format!("bench-{run}-setup-{p}"), commands: cmds }).await?;
        let mut enrol = Vec::new();
        for i in 0..per_project {
            let (nid, card) = worker_id(run, p * per_project + i);
            enrol.push(cmd(Kind::EnrolWorker(pb::EnrolWorker { project: id.clone(), national_id: nid, employer: employer.clone(), bank_card: card, date: "2026-01-16".into() })));
        }
        for (j, chunk) in enrol.chunks(5_000).enumerate() {
            crate::client::submit_following(&servers, &mut post_ch, &token, &pb::SubmitRequest { request_id: format!("bench-{run}-enrol-{p}-{j}"), commands: chunk.to_vec() }).await?;
        }
    }
    let setup_ms = setup.elapsed().as_millis();
    // The leader found by the set-up; with --follower, both watched from here on.
    let ch = post_ch;
    let watching = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watchers = match &follower {
        Some(f) => {
            let mut q = pb::ledger_query_client::LedgerQueryClient::new(ch.clone());
            let r = q.get_balance(req(pb::GetBalanceRequest { account: format!("wage:B{run}-0"), ..Default::default() }, &token)).await?;
            let head: u64 = r.metadata().get(anxin::api::SEQ_KEY).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(0);
            Some((watch(ch.clone(), token.clone(), head + 1, watching.clone()), watch(f.clone(), token.clone(), head + 1, watching.clone())))
        }
        None => None,
    };

    // The load.
    let sent = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let deadline = a.duration.map(|d| Instant::now() + Duration::from_secs(d));
    let bar = indicatif::ProgressBar::new(a.count);
    bar.set_style(indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} events ({per_sec})").expect("template").progress_chars("=> "));
    bar.set_message("posting");
    if a.json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let a = Arc::new(a);
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..a.clients {
        let (mut ch, servers, token, a, sent, errors, bar, gc) = (ch.clone(), servers.clone(), token.clone(), a.clone(), sent.clone(), errors.clone(), bar.clone(), gc.clone());
        tasks.push(tokio::spawn(async move {
            let mut hist = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).expect("bounds");
            let mut k = 0u64;
            let mut b = 0u64;
            loop {
                if deadline.is_some_and(|d| Instant::now() >= d) || (deadline.is_none() && sent.load(Ordering::Relaxed) >= a.count) {
                    break;
                }
                let cmds: Vec<pb::Command> = (0..a.batch).map(|_| {
                    k += 1;
                    mixed(run, c, k, &a, &gc)
                }).collect();
                let n = cmds.len() as u64;
                let start = Instant::now();
                let r = crate::client::submit_following(&servers, &mut ch, &token, &pb::SubmitRequest { request_id: format!("bench-{run}-{c}-{b}"), commands: cmds }).await;
                b += 1;
                let us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX).max(1);
                match r {
                    Ok(_) => {
                        let _ = hist.record(us);
                        sent.fetch_add(n, Ordering::Relaxed);
                        bar.inc(n);
                    }
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            hist
        }));
    }
    let mut hist = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    for t in tasks {
        hist.add(t.await?)?;
    }
    let micros = t0.elapsed().as_micros().max(1);
    bar.finish_and_clear();
    // Follower lag: when the follower made each (16th) record visible, after the leader did.
    let lag = match watchers {
        Some((l, f)) => {
            tokio::time::sleep(Duration::from_secs(2)).await;
            watching.store(true, Ordering::Relaxed);
            let (l, f) = (l.await?, f.await?);
            let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
            let mut missing = 0u64;
            for (seq, tl) in &l {
                match f.get(seq) {
                    Some(tf) => {
                        let _ = h.record(u64::try_from(tf.saturating_duration_since(*tl).as_micros()).unwrap_or(u64::MAX).max(1));
                    }
                    None => missing += 1,
                }
            }
            Some((h, missing))
        }
        None => None,
    };
    let events = sent.load(Ordering::Relaxed);
    // Integer arithmetic throughout: rates in events per second, latencies in microseconds.
    let rate = u128::from(events) * 1_000_000 / micros;
    let rss_kib = a.server_pid.and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok()).and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse::<u64>().ok()));
    let disk = a.data.as_ref().map(|d| dir_size(d));
    let head = {
        let mut q = pb::ledger_audit_client::LedgerAuditClient::new(ch.clone());
        q.get_checkpoint(req(pb::GetCheckpointRequest::default(), &token)).await.map(|r| r.into_inner().tree_size).unwrap_or(0)
    };
    // hdrhistogram takes the quantile as a float; the latencies themselves are integers.
    let us = |q: u32| hist.value_at_quantile(f64::from(q) / 1000.0);
    let ms = |v: u64| format!("{}.{:03}", v / 1000, v % 1000);
    let report = serde_json::json!({
        "clients": a.clients, "batch": a.batch, "events": events, "elapsed_ms": micros / 1000, "events_per_second": rate,
        "batch_latency_us": {"p50": us(500), "p90": us(900), "p99": us(990), "max": hist.max()},
        "errors": errors.load(Ordering::Relaxed), "setup_ms": setup_ms,
        "server_rss_mib": rss_kib.map(|k| k / 1024), "records_in_ledger": head,
        "disk_bytes_per_event": disk.map(|b| b.checked_div(head).unwrap_or(0)),
        "follower_lag_us": lag.as_ref().map(|(h, missing)| serde_json::json!({"samples": h.len(), "p50": h.value_at_quantile(0.5), "p99": h.value_at_quantile(0.99), "max": h.max(), "never_seen": missing})),
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{events} events in {} ms from {} clients, batches of {}: {rate} events/s", micros / 1000, a.clients, a.batch);
        println!("batch latency ms: p50 {}  p90 {}  p99 {}  max {}  (a command waits as long as its batch)", ms(us(500)), ms(us(900)), ms(us(990)), ms(hist.max()));
        println!("errors: {}   setup (projects, {} workers): {setup_ms} ms", errors.load(Ordering::Relaxed), a.workers);
        if let Some(k) = rss_kib {
            println!("server RSS: {} MiB", k / 1024);
        }
        if let Some((h, missing)) = &lag {
            println!("follower lag ms (a record visible on the follower after the leader, {} samples): p50 {}  p99 {}  max {}{}", h.len(), ms(h.value_at_quantile(0.5)), ms(h.value_at_quantile(0.99)), ms(h.max()), if *missing > 0 { format!("  ({missing} never seen on the follower)") } else { String::new() });
        }
        if let Some(b) = disk {
            println!("data directory: {} bytes for {head} records = {} bytes per event", b, b.checked_div(head).unwrap_or(0));
        }
    }
    Ok(())
}

fn dir_size(p: &std::path::Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => total += dir_size(&e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

/// The same mix submitted in-process to a `Ledger` on `data` (no gRPC, no vault): what the
/// write path itself sustains. Worker and card commitments are stand-ins.
/// What answers about the past cost on this ledger (issue 16): each query timed over
/// repeated calls, at the latest record and at a past position or date.
fn past_queries(led: &anxin::ledger::Ledger, head: u64) -> Result<()> {
    use anxin::domain::date::{CalendarBook, Date};
    use anxin::domain::ids::ProjectId;
    use anxin::domain::policy::PolicyBook;
    use anxin::domain::posting::Account;
    use anxin::projection::{views, when::When};
    let state = led.state()?;
    let (pol, cal) = (PolicyBook::default(), CalendarBook::china());
    let p = ProjectId::parse("B0")?;
    let wage = Account::Wage(p.clone());
    let today = Date::parse("2026-12-01")?;
    let time = |what: &str, reps: u32, f: &dyn Fn() -> usize| {
        let t = Instant::now();
        let mut sink = 0usize;
        for _ in 0..reps {
            sink = sink.wrapping_add(f());
        }
        let us = t.elapsed().as_secs_f64() * 1e6 / f64::from(reps);
        println!("past queries: {what}: {us:.1} us ({sink})");
    };
    let postings = state.postings.get(&wage).map_or(0, |h| h.len());
    println!("past queries: {head} records; wage:B0 has {postings} postings");
    let now = When { seq: head, date: today };
    let half = When { seq: head / 2, date: today };
    // Between the bench's progress payments (02-05) and payouts (02-10), which it
    // posts interleaved: the worst case for a date inside an account's history.
    let between = When { seq: head, date: Date::parse("2026-02-07")? };
    time("balance of wage:B0, latest", 10_000, &|| state.balance_at(&wage, now) as usize);
    time("balance of wage:B0 at_seq = head/2", 10_000, &|| state.balance_at(&wage, half) as usize);
    time("balance of wage:B0 as_of 2026-02-07 (dates interleaved in every block)", 20, &|| state.balance_at(&wage, between) as usize);
    time("history of wage:B0, a page of 100 from head/2", 10_000, &|| state.postings.get(&wage).map_or(0, |h| h.page(head / 2, now, 100).0.len()));
    time("history of wage:B0, a page of 100 from head/2, at_seq = head*3/4", 10_000, &|| {
        state.postings.get(&wage).map_or(0, |h| h.page(head / 2, When { seq: head * 3 / 4, date: today }, 100).0.len())
    });
    time("project B0, latest", 5, &|| views::project_view(&state, &pol, &cal, &p, now).map_or(0, |v| v.flags.len()));
    time("project B0 at_seq = head/2", 5, &|| views::project_view(&state, &pol, &cal, &p, half).map_or(0, |v| v.flags.len()));
    time("flag intervals of project B0, latest", 3, &|| state.projects.get(&p).map_or(0, |x| anxin::projection::intervals::flag_intervals(&state, x, &pol, &cal, now).len()));
    time("flag intervals of project B0 at_seq = head/2", 3, &|| state.projects.get(&p).map_or(0, |x| anxin::projection::intervals::flag_intervals(&state, x, &pol, &cal, half).len()));
    time("county summary at_seq = head/2", 2, &|| views::county_summary(&state, &pol, &cal, None, half).projects_total as usize);
    Ok(())
}

pub fn run_in_process(data: &std::path::Path, a: BenchArgs) -> Result<()> {
    use anxin::domain::command::*;
    use anxin::domain::ids::*;
    use anxin::domain::money::Money;
    use anxin::domain::principal::Principal;
    use anxin::ledger::{Ledger, LedgerOptions};

    if data.join("LEDGER").exists() {
        bail!("{} already holds a ledger; the in-process bench needs a fresh directory", data.display());
    }
    let led = Arc::new(Ledger::open(data, LedgerOptions::default())?);
    let d = |s: &str| anxin::domain::date::Date::parse(s).expect("date");
    let m = |s: &str| Money::parse(s).expect("money");
    let wref = |i: usize| Commitment(*blake3::hash(format!("w{i}").as_bytes()).as_bytes());
    let cref = |i: usize| Commitment(*blake3::hash(format!("c{i}").as_bytes()).as_bytes());
    let pid = |p: usize| ProjectId::parse(&format!("B{p}")).expect("id");
    let op = Principal::Operator;
    let per_project = a.workers / a.projects;
    for p in 0..a.projects {
        let mut cmds = vec![
            Command::RegisterProject(RegisterProject { registered_on: None, deposit_basis: anxin::domain::command::DepositBasis::ByPrice, funding: anxin::domain::command::Funding::Unstated,
                project: pid(p),
                county: CountyCode::parse("620121")?,
                name: Text::parse("bench")?,
                general_contractor: Uscc::with_check("91620121MA0000001"),
                owner: Uscc::with_check("91620121MB0000001"),
                contract_price: m("100000000"),
                contract_date: d("2026-01-05"),
                permit_date: None,
                start_date: d("2026-01-15"),
                planned_end: d("2027-12-31"),
                labour_ratio_bp: None,
                deposit_rate_bp: None,
            }),
            Command::OpenWageAccount(OpenWageAccount { project: pid(p), bank: BankCode::parse("ICBC")?, account_no: Text::parse(&format!("X-{p}"))?, date: d("2026-01-10") }),
            Command::TopUpWageAccount(TopUpWageAccount { project: pid(p), payment_no: DocNo::parse("FUND")?, amount: m("900000000"), date: d("2026-01-20") }),
        ];
        for i in 0..per_project {
            let w = p * per_project + i;
            cmds.push(Command::EnrolWorker(EnrolWorker { project: pid(p), worker: wref(w), worker_masked: Text::parse("6201**********000X")?, employer: Uscc::with_check("91620121MC0000001"), card: cref(w), card_masked: Text::parse("6217***********0000")?, date: d("2026-01-16") }));
        }
        for (j, chunk) in cmds.chunks(5_000).enumerate() {
            led.submit(op.clone(), RequestId::parse(&format!("setup-{p}-{j}"))?, chunk.to_vec())?.map_err(|e| anyhow::anyhow!("{e}"))?;
        }
    }
    let sent = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let a = Arc::new(a);
    let mut threads = Vec::new();
    for c in 0..a.clients {
        let (led, a, sent) = (led.clone(), a.clone(), sent.clone());
        threads.push(std::thread::spawn(move || -> Result<hdrhistogram::Histogram<u64>> {
            let mut hist = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
            let (mut k, mut b) = (0u64, 0u64);
            while sent.load(Ordering::Relaxed) < a.count {
                let cmds: Vec<Command> = (0..a.batch)
                    .map(|_| {
                        k += 1;
                        let p = (k as usize + c) % a.projects;
                        let no = DocNo::parse(&format!("c{c}-{k}")).expect("doc");
                        match k % 10 {
                            0 => Command::MakeProgressPayment(MakeProgressPayment { project: pid(p), payment_no: no, total: m("50000"), wage_share: m("20000"), date: d("2026-02-05") }),
                            1 => Command::PayDeposit(PayDeposit { project: pid(p), bank: BankCode::parse("ICBC").expect("bank"), payment_no: no, amount: m("1000"), date: d("2026-02-05") }),
                            _ => {
                                let w = p * per_project + (k as usize * 7 + c) % per_project;
                                Command::PayWage(PayWage { project: pid(p), payment_no: no, worker: wref(w), card: cref(w), amount: m("1"), date: d("2026-02-10"), period: None })
                            }
                        }
                    })
                    .collect();
                let n = cmds.len() as u64;
                let start = Instant::now();
                led.submit(Principal::Operator, RequestId::parse(&format!("b{c}-{b}"))?, cmds)?.map_err(|e| anyhow::anyhow!("{e}"))?;
                b += 1;
                let _ = hist.record(u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX).max(1));
                sent.fetch_add(n, Ordering::Relaxed);
            }
            Ok(hist)
        }));
    }
    let mut hist = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    for t in threads {
        hist.add(t.join().map_err(|_| anyhow::anyhow!("a client thread panicked"))??)?;
    }
    let micros = t0.elapsed().as_micros().max(1);
    let events = sent.load(Ordering::Relaxed);
    let rate = u128::from(events) * 1_000_000 / micros;
    let us = |q: u32| hist.value_at_quantile(f64::from(q) / 1000.0);
    println!("in-process: {events} events in {} ms from {} threads, batches of {}: {rate} events/s; batch latency us p50 {} p99 {} max {}", micros / 1000, a.clients, a.batch, us(500), us(990), hist.max());
    let head = led.head().0;
    past_queries(&led, head)?;
    drop(led);
    let b = dir_size(data);
    println!("data directory: {b} bytes for {head} records = {} bytes per event", b / head.max(1));
    Ok(())
}
