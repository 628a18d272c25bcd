//! Point-in-time truth (`projection::when`): answers at a log position (`at_seq`) and as
//! of a business date (`as_of`).
//!
//! - The oracle: a county's year posted in date order; every answer captured while the
//!   log was being filled (stopping after each month end) equals the answer asked
//!   afterwards as of that month end, and at that month end's log position.
//! - A property: for random histories and random N, the answers at `at_seq = N` equal
//!   those of a ledger that only ever received the first N records.
//! - Through the real server: a deposit drawn later does not make an earlier date short,
//!   a project registered later is not in earlier figures, a late posting changes the
//!   as-of answers and not the at-seq ones, account history pages, and a position the
//!   node does not hold is refused.

use std::collections::BTreeMap;

use proptest::prelude::*;

use anxin::api::pb;
use crate::common::reads_chinese;
use anxin::api::pb::command::Kind;
use anxin::domain::command::*;
use anxin::domain::date::{CalendarBook, Date};
use anxin::domain::policy::PolicyBook;
use anxin::domain::posting::Account;
use anxin::ledger::{Ledger, LedgerOptions};
use anxin::projection::state::State;
use anxin::projection::views;
use anxin::projection::when::When;
use anxin::vault::Vault;

/// Every answer the query API gives, at the point `w`, for the entities `keys` names,
/// each as JSON under a key naming the query.
fn answers(state: &State, keys: &Keys, w: When) -> BTreeMap<String, String> {
    let (pol, cal) = (PolicyBook::default(), CalendarBook::china());
    let json = |v: &dyn erased::Json| v.json();
    let mut out = BTreeMap::new();
    for c in &keys.counties {
        out.insert(format!("county/{c}"), json(&views::county_summary(state, &pol, &cal, Some(*c), w)));
    }
    out.insert("county/all".into(), json(&views::county_summary(state, &pol, &cal, None, w)));
    out.insert("flags".into(), json(&anxin::projection::flags::flags(state, &pol, &cal, w)));
    for p in &keys.projects {
        out.insert(format!("project/{p}"), json(&views::project_view(state, &pol, &cal, p, w)));
        out.insert(format!("months/{p}"), json(&views::project_history(state, &pol, &cal, p, w)));
        let intervals = state.projects.get(p).map(|x| anxin::projection::intervals::flag_intervals(state, x, &pol, &cal, w)).unwrap_or_default();
        out.insert(format!("flag-intervals/{p}"), json(&intervals));
    }
    for (p, per) in &keys.payrolls {
        out.insert(format!("payroll/{p}/{per}"), json(&views::payroll_view(state, p, *per, w)));
    }
    for wr in &keys.workers {
        out.insert(format!("worker/{}", wr.to_hex()), json(&views::worker_view(state, wr, w)));
    }
    for a in &keys.accounts {
        let (page, _) = state.postings.get(a).map_or((Vec::new(), false), |h| h.page(0, w, usize::MAX));
        let rows: Vec<String> = page.iter().map(|(p, after)| format!("{} {} {} {} {}", p.seq, p.date, p.amount, after, p.kind)).collect();
        out.insert(format!("account/{a}"), format!("{} | {}", state.balance_at(a, w), rows.join("; ")));
    }
    out
}

/// Object-safe JSON for the views.
mod erased {
    pub trait Json {
        fn json(&self) -> String;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> String {
            serde_json::to_string(self).expect("views serialize")
        }
    }
}

/// What to ask about: every entity the finished ledger knows.
#[derive(Default)]
struct Keys {
    counties: Vec<anxin::domain::ids::CountyCode>,
    projects: Vec<anxin::domain::ids::ProjectId>,
    payrolls: Vec<(anxin::domain::ids::ProjectId, anxin::domain::date::Period)>,
    workers: Vec<anxin::domain::ids::WorkerRef>,
    accounts: Vec<Account>,
}

fn keys(state: &State) -> Keys {
    let mut counties: Vec<_> = state.projects.iter().map(|(_, p)| p.reg.county).collect();
    counties.sort_unstable();
    counties.dedup();
    let mut accounts: Vec<Account> = state.balances.iter().map(|(a, _)| a.clone()).collect();
    accounts.sort_unstable();
    Keys {
        counties,
        projects: state.projects.iter().map(|(p, _)| p.clone()).collect(),
        payrolls: state.payrolls.iter().map(|((p, per), _)| (p.clone(), *per)).collect(),
        workers: state.workers.iter().map(|(w, _)| *w).collect(),
        accounts,
    }
}

fn first_difference(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Option<String> {
    for (k, v) in a {
        match b.get(k) {
            Some(u) if u == v => {}
            Some(u) => return Some(format!("{k}:\n  then:  {v}\n  later: {u}")),
            None => return Some(format!("{k}: missing later")),
        }
    }
    (a.len() != b.len()).then(|| "different keys".to_owned())
}

/// The oracle (issue 16): the county scenario, answers captured after each month end
/// while it is posted, asked again afterwards with as_of and with at_seq.
#[test]
fn answers_captured_while_filling_equal_as_of_and_at_seq_answers_afterwards() {
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::open(&dir.path().join("vault")).unwrap();
    let plan = anxin::demo::plan(7, &vault).unwrap();
    let led = Ledger::open(dir.path(), LedgerOptions { ledger_id: Some("anxin-oracle".into()), ..Default::default() }).unwrap();

    // The keys come from the finished plan, so that answers about entities that do not
    // exist yet (None, zero) are captured too.
    let mut shadow = State::default();
    let mut seq = 0;
    for b in &plan.batches {
        for c in &b.commands {
            seq += 1;
            let e = anxin::decide::decide(&shadow, c).unwrap_or_else(|r| panic!("{}: {r}", b.request_id));
            shadow.apply(&e, seq);
        }
    }
    let keys = keys(&shadow);
    drop(shadow);

    let mut captured: Vec<(Date, u64, BTreeMap<String, String>)> = Vec::new();
    let mut month_end = plan.batches[0].date.period().last_day();
    let capture = |led: &Ledger, end: Date, captured: &mut Vec<(Date, u64, BTreeMap<String, String>)>| {
        let state = led.state().unwrap();
        captured.push((end, led.head().0, answers(&state, &keys, When::date(end))));
    };
    for b in &plan.batches {
        while b.date > month_end {
            capture(&led, month_end, &mut captured);
            month_end = month_end.period().next().last_day();
        }
        led.submit(b.principal.clone(), b.request_id.clone(), b.commands.clone()).unwrap().unwrap_or_else(|e| panic!("{}: {e}", b.request_id));
    }
    capture(&led, month_end, &mut captured);
    assert!(captured.len() >= 12, "a year of month ends: {}", captured.len());

    let state = led.state().unwrap();
    let mut compared = 0;
    for (end, head, then) in &captured {
        let as_of = answers(&state, &keys, When::date(*end));
        if let Some(d) = first_difference(then, &as_of) {
            panic!("as of {end}: the answer changed although nothing dated on or before it was posted later: {d}");
        }
        let at_seq = answers(&state, &keys, When { seq: *head, date: *end });
        if let Some(d) = first_difference(then, &at_seq) {
            panic!("at record {head} as of {end}: {d}");
        }
        compared += then.len();
    }
    assert!(compared > 10_000, "every project, payroll, worker and account, every month: {compared} answers");
    // The answers moved over the year: the oracle compares something.
    assert_ne!(captured[2].2.get("county/all"), captured[8].2.get("county/all"));
}

/// Records of a random history (the property test's generator, `props.rs`, with dates
/// spread over five months and posted out of date order), decided one by one.
fn history(ops: &[(u8, u8, u32, i64, u8)]) -> Vec<Event> {
    use crate::common::*;
    let mut w = World::new();
    let mut setup = vec![register("P0"), register("P1"), open_account("P0"), open_account("P1"), deposit("P0", "D0", "500000", "2026-01-20"), deposit("P1", "D1", "500000", "2026-01-20"), topup("P0", "T0", "900000"), topup("P1", "T1", "900000")];
    for n in 1..=3 {
        setup.push(enrol("P0", n));
        setup.push(enrol("P1", n));
    }
    let mut events = w.given(setup);
    for (i, (kind, p, n, amount, day)) in ops.iter().enumerate() {
        let p = format!("P{}", p % 2);
        let no = format!("N{i}");
        let date = Date::from_ymd(2026, 1, 21).unwrap().add_days(i64::from(*day));
        let ds = date.to_string();
        let money = anxin::domain::money::format_fen(*amount);
        let month = |m: u32| format!("2026-{:02}", 1 + m % 4);
        let small = anxin::domain::money::format_fen(1 + amount / 50);
        let cmd = match kind % 15 {
            14 => {
                // A bank statement of the deposit account: agreeing or not, by the amount.
                let Command::AttestBalance(mut st) = statement(&p, "ICBC", &ds, &no) else { unreachable!() };
                st.closing_balance = yuan(&anxin::domain::money::format_fen(amount % 2 * 500_000_00));
                Command::AttestBalance(st)
            }
            11 | 12 => {
                // A payout against a payroll line (most lines exist: payrolls are frequent).
                let Command::PayWage(mut c) = pay(&p, &no, 1 + n % 3, &small, Some(&month(*n))) else { unreachable!() };
                c.date = date;
                Command::PayWage(c)
            }
            13 => payroll(&p, &month(*n), &[(1, &money), (2, &money), (3, &money)]),
            0 => deposit(&p, &no, &money, &ds),
            1 => progress(&p, &no, &money, &anxin::domain::money::format_fen(amount / 3), &ds),
            2 => Command::TopUpWageAccount(TopUpWageAccount { project: pid(&p), payment_no: doc(&no), amount: yuan(&money), date }),
            3 => {
                let Command::PayWage(mut c) = pay(&p, &no, 1 + n % 3, &money, (n % 2 == 0).then(|| month(*n)).as_deref()) else { unreachable!() };
                c.date = date;
                Command::PayWage(c)
            }
            4 => payroll(&p, &month(*n), &[(1 + n % 3, &money), (1 + (n + 1) % 3, "100")]),
            5 => draw(&p, &no, &ds, &[(1 + n % 3, &money, (n % 2 == 1).then(|| month(*n)).as_deref())]),
            6 => enrol(&p, 1 + n % 4),
            7 => exit(&p, 1 + n % 3, &ds),
            8 => Command::RecordContract(RecordContract { project: pid(&p), worker: worker(1 + n % 3), contract_no: doc(&no), date }),
            9 => status(&p, [ProjectStatus::Suspended, ProjectStatus::Active, ProjectStatus::Suspended, ProjectStatus::Active, ProjectStatus::Completed][(n % 5) as usize], &ds),
            _ => letter(&p, &no, &money, &ds, &date.add_days(i64::from(n % 90)).to_string()),
        };
        match w.try_batch(vec![cmd]) {
            Ok(evs) => events.extend(evs),
            Err(e) if std::env::var("ANXIN_PROP_STATS").is_ok() => eprintln!("refused: {e}"),
            Err(_) => {}
        }
    }
    events
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// The view at `at_seq = N` is the view of a ledger that received only the first N
    /// records, on any date.
    #[test]
    fn the_view_at_seq_n_is_the_view_of_the_first_n_records(
        ops in prop::collection::vec((0u8..15, 0u8..2, 0u32..12, 1i64..400_000, 0u8..120), 1..60),
        cut in 0.0f64..=1.0,
        day in 0i64..200,
    ) {
        let events = history(&ops);
        let mut full = State::default();
        for (i, e) in events.iter().enumerate() {
            full.apply(e, i as u64 + 1);
        }
        let n = ((events.len() as f64) * cut) as usize;
        let mut prefix = State::default();
        for (i, e) in events[..n].iter().enumerate() {
            prefix.apply(e, i as u64 + 1);
        }
        let keys = keys(&full);
        let date = Date::from_ymd(2026, 1, 1).unwrap().add_days(day);
        let at = answers(&full, &keys, When { seq: n as u64, date });
        let only = answers(&prefix, &keys, When::date(date));
        prop_assert!(first_difference(&only, &at).is_none(), "N = {} of {}, as of {}: {}", n, events.len(), date, first_difference(&only, &at).unwrap_or_default());
    }
}

/// Flag intervals read day by day: on every day from `from` to `w.date`, the flags of
/// project `p` judged that day; a flag's interval is each run of days it holds.
fn intervals_day_by_day(state: &State, p: &anxin::projection::state::Project, from: Date, w: When) -> Vec<(String, Date, Option<Date>, String, String)> {
    let (pol, cal) = (PolicyBook::default(), CalendarBook::china());
    type K = (anxin::projection::flags::FlagCode, anxin::projection::flags::Grade, u64);
    let mut open: BTreeMap<K, (Date, String, String)> = BTreeMap::new();
    let mut out = Vec::new();
    let mut day = from;
    while day <= w.date {
        let mut now = Vec::new();
        anxin::projection::flags::project_flags(state, p, &pol, &cal, When { seq: w.seq, date: day }, &mut now);
        let now: BTreeMap<K, String> = now.iter().map(|f| ((f.code, f.grade, f.instance), serde_json::to_string(f).unwrap())).collect();
        let gone: Vec<K> = open.keys().filter(|k| !now.contains_key(k)).copied().collect();
        for k in gone {
            let (opened, first, last) = open.remove(&k).unwrap();
            out.push((format!("{:?}/{:?}/{}", k.0, k.1, k.2), opened, Some(day), first, last));
        }
        for (k, f) in now {
            open.entry(k).and_modify(|e| e.2 = f.clone()).or_insert((day, f.clone(), f));
        }
        day = day.add_days(1);
    }
    out.extend(open.into_iter().map(|(k, (opened, first, last))| (format!("{:?}/{:?}/{}", k.0, k.1, k.2), opened, None, first, last)));
    out.sort();
    out
}

fn intervals_fast(state: &State, p: &anxin::projection::state::Project, w: When) -> Vec<(String, Date, Option<Date>, String, String)> {
    let (pol, cal) = (PolicyBook::default(), CalendarBook::china());
    let mut out: Vec<_> = anxin::projection::intervals::flag_intervals(state, p, &pol, &cal, w)
        .into_iter()
        .map(|i| (format!("{:?}/{:?}/{}", i.code, i.grade, i.first.instance), i.opened, i.cleared, serde_json::to_string(&i.first).unwrap(), serde_json::to_string(&i.last).unwrap()))
        .collect();
    out.sort();
    out
}

/// Issue 16: a flag's interval (opened, cleared, its figures then) is what judging every
/// single day gives, for every project of the county scenario, on the finished ledger and
/// at a position halfway through it.
#[test]
fn flag_intervals_are_what_judging_every_day_gives() {
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::open(&dir.path().join("vault")).unwrap();
    let plan = anxin::demo::plan(7, &vault).unwrap();
    let mut state = State::default();
    let mut seq = 0;
    for b in &plan.batches {
        for c in &b.commands {
            seq += 1;
            let e = anxin::decide::decide(&state, c).unwrap_or_else(|r| panic!("{}: {r}", b.request_id));
            state.apply(&e, seq);
        }
    }
    let from = plan.batches[0].date.add_days(-40);
    let (mut intervals, mut cleared) = (0, 0);
    for w in [When::date(plan.as_of), When { seq: seq / 2, date: plan.as_of }] {
        for (id, p) in state.projects.iter() {
            let slow = intervals_day_by_day(&state, p, from, w);
            let fast = intervals_fast(&state, p, w);
            assert_eq!(fast, slow, "project {id} at {w:?}");
            intervals += fast.len();
            cleared += fast.iter().filter(|i| i.2.is_some()).count();
        }
    }
    // The scenario opens flags and clears some: the comparison compares something.
    assert!(intervals >= 10 && cleared >= 3, "{intervals} intervals, {cleared} cleared");
    if std::env::var("ANXIN_PROP_STATS").is_ok() {
        eprintln!("scenario: {intervals} intervals, {cleared} cleared");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// The same on random histories: deposits, drawdowns, letters, payrolls, payouts,
    /// exits, status changes and statements, dated out of order, at a random position.
    #[test]
    fn flag_intervals_of_random_histories_are_what_judging_every_day_gives(
        ops in prop::collection::vec((0u8..15, 0u8..2, 0u32..12, 1i64..400_000, 0u8..120), 1..60),
        cut in 0.0f64..=1.0,
    ) {
        let events = history(&ops);
        let mut state = State::default();
        for (i, e) in events.iter().enumerate() {
            state.apply(e, i as u64 + 1);
        }
        let w = When { seq: ((events.len() as f64) * cut) as u64, date: Date::from_ymd(2026, 9, 30).unwrap() };
        for (id, p) in state.projects.iter() {
            let slow = intervals_day_by_day(&state, p, Date::from_ymd(2025, 12, 1).unwrap(), w);
            let fast = intervals_fast(&state, p, w);
            if std::env::var("ANXIN_PROP_STATS").is_ok() { eprintln!("intervals {} cleared {}", fast.len(), fast.iter().filter(|i| i.2.is_some()).count()); }
            prop_assert_eq!(fast, slow, "project {}", id);
        }
    }
}

// ---- through the real server ----

use crate::harness::{cmd, TestServer, COUNTY};

fn register_on(p: &str, contract: &str, start: &str) -> pb::Command {
    let Some(Kind::RegisterProject(mut r)) = crate::harness::register(p, COUNTY).kind else { unreachable!() };
    r.contract_date = contract.into();
    r.permit_date = String::new();
    r.start_date = start.into();
    cmd(Kind::RegisterProject(r))
}

fn dated_deposit(p: &str, no: &str, amount: &str, date: &str) -> pb::Command {
    cmd(Kind::PayDeposit(pb::PayDeposit { project: p.into(), bank: "ICBC".into(), payment_no: no.into(), amount: amount.into(), date: date.into() }))
}

fn county_q(as_of: &str, at_seq: u64) -> pb::GetCountySummaryRequest {
    pb::GetCountySummaryRequest { county: COUNTY.into(), as_of: as_of.into(), at_seq }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_answers_through_the_server_count_only_what_was_dated_and_recorded_by_then() {
    let s = TestServer::start().await;
    let county = format!("county:{COUNTY}");
    // P1: contract price ¥10M, deposit required ¥200,000 (2%), lodged in full in
    // January; a drawdown on 2026-09-10 takes ¥150,000 of it.
    s.setup_project(2).await;
    let r = s.ok(&county, "draw", vec![cmd(Kind::DrawDeposit(pb::DrawDeposit { order_date: String::new(), reason: String::new(),
        project: "P1".into(),
        order_no: "DY-1".into(),
        date: "2026-09-10".into(),
        payees: vec![pb::DrawdownPayee { national_id: crate::harness::nid(1), bank_card: crate::harness::card(1), amount: "150000".into(), period: String::new() }],
    }))]).await;
    let after_draw = r.last_seq;
    // P2: contract signed 2026-10-26, registered now.
    s.ok(&county, "p2", vec![register_on("P2", "2026-10-26", "2026-11-01")]).await;

    let mut q = s.query(&county).await;
    // As of 2026-06-15: full cover, no shortfall, and P2 is not in the figures.
    let june = q.get_county_summary(county_q("2026-06-15", 0)).await.unwrap().into_inner();
    assert_eq!(june.projects_total, 1, "a project registered with a contract of 2026-10-26 is not in June's figures");
    assert_eq!(june.deposit_cash_total, "200000.00");
    assert_eq!(june.deposit_covered_projects, 1);
    let point = june.point.clone().unwrap();
    assert_eq!((point.as_of.as_str(), point.at_seq, point.head_seq), ("2026-06-15", after_draw + 1, after_draw + 1));
    let flags = q.list_flags(pb::ListFlagsRequest { county: COUNTY.into(), project: "P1".into(), as_of: "2026-06-15".into(), at_seq: 0, page_size: 0, page_token: String::new() }).await.unwrap().into_inner();
    assert!(flags.flags.iter().all(|f| f.code != "DEPOSIT_SHORTFALL" && f.code != "DRAWDOWN_NOT_REPLENISHED"), "{:?}", flags.flags);
    assert_eq!(q.get_project(pb::GetProjectRequest { project: "P2".into(), as_of: "2026-06-15".into(), at_seq: 0 }).await.unwrap_err().code(), tonic::Code::NotFound);
    // As of 2026-11-30 the drawdown is past its replenishment window: the since-date is
    // the day after that window, not the lodging deadline.
    let nov = q.list_flags(pb::ListFlagsRequest { county: COUNTY.into(), project: "P1".into(), as_of: "2026-11-30".into(), at_seq: 0, page_size: 0, page_token: String::new() }).await.unwrap().into_inner();
    let short = nov.flags.iter().find(|f| f.code == "DEPOSIT_SHORTFALL").expect("short after the drawdown");
    assert!(short.since.as_str() > "2026-09-10", "since {} is after the drawdown", short.since);
    assert_eq!(q.get_county_summary(county_q("2026-11-30", 0)).await.unwrap().into_inner().projects_total, 2);

    // A deposit top-up dated 2026-09-20, posted late: the as-of answers about dates
    // after 2026-09-20 change; the answer at the position before it does not.
    let before_late = q.get_project(pb::GetProjectRequest { project: "P1".into(), as_of: "2026-11-30".into(), at_seq: 0 }).await.unwrap().into_inner();
    assert_eq!(before_late.deposit_cash, "50000.00");
    // The project's timeline: its figures at each month's end, as GetProject gives them there.
    let months = q.get_project_history(pb::GetProjectHistoryRequest { project: "P1".into(), as_of: "2026-11-30".into(), at_seq: 0 }).await.unwrap().into_inner().months;
    let month = |per: &str| months.iter().find(|m| m.period == per).unwrap_or_else(|| panic!("{per} in {months:?}")).clone();
    let (june, sept) = (month("2026-06"), month("2026-09"));
    assert_eq!((june.deposit_required.as_str(), june.deposit_cover.as_str()), ("200000.00", "200000.00"));
    assert_eq!(sept.deposit_cover, "50000.00", "drawn on 2026-09-10");
    let at_june = q.get_project(pb::GetProjectRequest { project: "P1".into(), as_of: "2026-06-30".into(), at_seq: 0 }).await.unwrap().into_inner();
    assert_eq!((june.owed.as_str(), june.overdue.as_str()), (at_june.owed.as_str(), at_june.overdue.as_str()));
    assert_eq!(june.flags_red as usize, at_june.flags.iter().filter(|f| f.grade == "red").count());
    assert!(at_june.flags.iter().all(|f| f.code != "DEPOSIT_SHORTFALL"));
    assert_eq!(month("2026-11").flags_red as usize, before_late.flags.iter().filter(|f| f.grade == "red").count());
    let late = s.ok("bank:ICBC", "late", vec![dated_deposit("P1", "D-LATE", "150000", "2026-09-20")]).await;
    let now = q.get_project(pb::GetProjectRequest { project: "P1".into(), as_of: "2026-11-30".into(), at_seq: 0 }).await.unwrap().into_inner();
    assert_eq!(now.deposit_cash, "200000.00");
    assert!(now.flags.iter().all(|f| f.code != "DEPOSIT_SHORTFALL"), "{:?}", now.flags);
    let then = q.get_project(pb::GetProjectRequest { project: "P1".into(), as_of: "2026-11-30".into(), at_seq: late.first_seq - 1 }).await.unwrap().into_inner();
    assert_eq!(then.deposit_cash, "50000.00", "at the position before the late deposit the answer is the one given then");
    assert_eq!(then.point.as_ref().unwrap().at_seq, late.first_seq - 1);
    assert_eq!(then.point.as_ref().unwrap().head_seq, late.last_seq);
    let sept15 = q.get_balance(pb::GetBalanceRequest { account: "deposit:P1".into(), as_of: "2026-09-15".into(), at_seq: 0 }).await.unwrap().into_inner();
    assert_eq!(sept15.balance, "50000.00", "dated 2026-09-20, the late deposit is not in 2026-09-15's balance");

    // Account history: every posting with the balance after it, in pages.
    let mut hist = Vec::new();
    let mut token = String::new();
    loop {
        let page = q.get_account_history(pb::GetAccountHistoryRequest { account: "deposit:P1".into(), as_of: String::new(), at_seq: 0, page_size: 1, page_token: token }).await.unwrap().into_inner();
        assert!(page.postings.len() <= 1);
        hist.extend(page.postings);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let rows: Vec<(&str, &str, &str, &str)> = hist.iter().map(|p| (p.date.as_str(), p.amount.as_str(), p.balance_after.as_str(), p.kind.as_str())).collect();
    assert_eq!(rows, vec![
        ("2026-01-20", "200000.00", "200000.00", "DepositPaid"),
        ("2026-09-10", "-150000.00", "50000.00", "DepositDrawn"),
        ("2026-09-20", "150000.00", "200000.00", "DepositPaid"),
    ]);
    // At a position, the history stops there.
    let cut = q.get_account_history(pb::GetAccountHistoryRequest { account: "deposit:P1".into(), as_of: String::new(), at_seq: late.first_seq - 1, page_size: 0, page_token: String::new() }).await.unwrap().into_inner();
    assert_eq!(cut.postings.len(), 2);

    // A bank may not read another's history; a position this node does not hold is refused.
    let mut other = s.query("bank:ABC").await;
    assert_eq!(other.get_account_history(pb::GetAccountHistoryRequest { account: "owner:".to_owned() + &crate::harness::owner().to_string(), ..Default::default() }).await.unwrap_err().code(), tonic::Code::PermissionDenied);
    let err = q.get_county_summary(county_q("", late.last_seq + 5)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable);
    assert_eq!(err.metadata().get("anxin-reason").unwrap(), "SEQ_NOT_REACHED");
    s.stop().await;
}

/// The facts format 2 added (issue 16), through the server: each validated, dating what
/// it should, and shown in the views.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fields_format_2_added_are_validated_date_their_facts_and_are_shown() {
    let s = TestServer::start().await;
    let county = format!("county:{COUNTY}");
    let reg = |p: &str, price: &str, f: &dyn Fn(&mut pb::RegisterProject)| {
        let Some(Kind::RegisterProject(mut r)) = crate::harness::register(p, COUNTY).kind else { unreachable!() };
        r.contract_price = price.into();
        f(&mut r);
        cmd(Kind::RegisterProject(r))
    };
    // A small project the county does not exempt, registered on 2026-03-01 for a
    // contract of 2026-01-05; government-funded.
    s.ok(&county, "small", vec![reg("S1", "1000000", &|r| {
        r.registered_on = "2026-03-01".into();
        r.deposit_basis = pb::DepositBasis::Required as i32;
        r.funding = pb::Funding::Government as i32;
    })]).await;
    // A large one exempt on a stated basis.
    s.ok(&county, "exempt", vec![reg("X1", "10000000", &|r| {
        r.deposit_basis = pb::DepositBasis::Exempt as i32;
        r.deposit_exemption_basis = "县人社局 2026 年第 3 号: 连续三年无欠薪".into();
    })]).await;
    let (code, reason, _) = s.refused(&county, "no-basis", vec![reg("X2", "10000000", &|r| r.deposit_basis = pb::DepositBasis::Exempt as i32)]).await;
    assert_eq!((code, reason.as_str()), (tonic::Code::InvalidArgument, "MISSING_FIELD"));
    let (code, reason, _) = s.refused(&county, "pii", vec![reg("X3", "10000000", &|r| {
        r.deposit_basis = pb::DepositBasis::Exempt as i32;
        r.deposit_exemption_basis = "经办人电话 13812345678".into();
    })]).await;
    assert_eq!((code, reason.as_str()), (tonic::Code::InvalidArgument, "PERSONAL_NUMBER_IN_TEXT"));

    let mut q = s.query(&county).await;
    let get = |p: &str, as_of: &str| pb::GetProjectRequest { project: p.into(), as_of: as_of.into(), at_seq: 0 };
    assert_eq!(q.get_project(get("S1", "2026-02-15")).await.unwrap_err().code(), tonic::Code::NotFound, "not registered yet on 2026-02-15");
    let s1 = q.get_project(get("S1", "2026-03-02")).await.unwrap().into_inner();
    assert_eq!((s1.registered_on.as_str(), s1.deposit_required.as_str()), ("2026-03-01", "20000.00"));
    assert_eq!((s1.deposit_basis, s1.funding), (pb::DepositBasis::Required as i32, pb::Funding::Government as i32));
    let x1 = q.get_project(get("X1", "2026-03-02")).await.unwrap().into_inner();
    assert_eq!((x1.deposit_required.as_str(), x1.deposit_exemption_basis.as_str()), ("0.00", "县人社局 2026 年第 3 号: 连续三年无欠薪"));
    assert_eq!(x1.registered_on, "2026-01-05", "no registration date: dated by the contract");

    // A letter issued before it is valid; one claiming to be issued after is refused.
    let letter = |no: &str, issued: &str| cmd(Kind::IssueGuaranteeLetter(pb::IssueGuaranteeLetter {
        project: "X1".into(), letter_no: no.into(), bank: "ICBC".into(), amount: "100000".into(),
        valid_from: "2026-04-01".into(), valid_to: "2026-12-31".into(), issued_on: issued.into(),
        applicant: crate::harness::gc().to_string(), beneficiary: "榆中县人力资源和社会保障局".into(),
    }));
    let (code, reason, _) = s.refused("bank:ICBC", "late-letter", vec![letter("BH-9", "2026-04-02")]).await;
    assert_eq!((code, reason.as_str()), (tonic::Code::InvalidArgument, "DATE_ORDER"));
    s.ok("bank:ICBC", "letter", vec![letter("BH-1", "2026-03-20")]).await;
    let on = q.get_project(get("X1", "2026-03-25")).await.unwrap().into_inner();
    let l = &on.letters[0];
    assert_eq!((l.issued_on.as_str(), l.beneficiary.as_str(), l.valid, on.letters_valid.as_str()), ("2026-03-20", "榆中县人力资源和社会保障局", false, "0.00"), "issued, not yet valid");
    assert!(q.get_project(get("X1", "2026-03-19")).await.unwrap().into_inner().letters.is_empty(), "not issued yet on 2026-03-19");

    // A payroll with its number and submission date, which dates it.
    s.ok("bank:ICBC", "x1-acct", vec![crate::harness::open_account("X1", "ICBC")]).await;
    s.ok(&format!("contractor:{}", crate::harness::gc()), "x1-enrol", vec![crate::harness::enrol("X1", 1)]).await;
    let Some(Kind::SubmitPayroll(mut pr)) = crate::harness::payroll("X1", "2026-01", &[(1, "5000")]).kind else { unreachable!() };
    pr.payroll_no = "GZ-2026-01".into();
    pr.submitted_on = "2026-02-04".into();
    s.ok(&format!("contractor:{}", crate::harness::gc()), "x1-payroll", vec![cmd(Kind::SubmitPayroll(pr))]).await;
    let pay = |as_of: &str| pb::GetPayrollRequest { project: "X1".into(), period: "2026-01".into(), as_of: as_of.into(), at_seq: 0, page_size: 0, page_token: String::new() };
    let p = q.get_payroll(pay("2026-02-04")).await.unwrap().into_inner();
    assert_eq!((p.payroll_no.as_str(), p.submitted_on.as_str()), ("GZ-2026-01", "2026-02-04"));
    assert_eq!(q.get_payroll(pay("2026-02-03")).await.unwrap_err().code(), tonic::Code::NotFound, "not submitted yet on 2026-02-03");

    // A drawdown's order date and reason; an order dated after the payment is refused.
    let draw = |no: &str, order_date: &str| cmd(Kind::DrawDeposit(pb::DrawDeposit {
        project: "S1".into(), order_no: no.into(), date: "2026-03-10".into(), payees: vec![], order_date: order_date.into(), reason: "一月工资逾期未付".into(),
    }));
    let (code, reason, _) = s.refused(&county, "late-order", vec![draw("DY-9", "2026-03-11")]).await;
    assert_eq!((code, reason.as_str()), (tonic::Code::InvalidArgument, "DATE_ORDER"));
    s.stop().await;
}

fn attest(p: &str, account: pb::StatementAccount, bank: &str, date: &str, closing: &str, bank_ref: &str) -> pb::Command {
    cmd(Kind::AttestBalance(pb::AttestBalance { project: p.into(), account: account as i32, bank: bank.into(), date: date.into(), closing_balance: closing.into(), bank_ref: bank_ref.into() }))
}

/// Reconciliation with the bank's own books (issue 16), through the server: a statement
/// that disagrees raises BALANCE_MISMATCH, the late posting of the movement clears it, a
/// bank that stops attesting raises STATEMENT_MISSING, and the county summary counts
/// each bank's accounts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_that_disagrees_raises_balance_mismatch_and_a_late_posting_clears_it() {
    use pb::StatementAccount::{Deposit, Wage};
    let s = TestServer::start().await;
    let county = format!("county:{COUNTY}");
    // P1: wage account at ICBC, deposit ¥200,000 (2026-01-20), ¥30,000 of wages in on 2026-02-05.
    s.setup_project(1).await;
    s.ok("bank:ICBC", "st-1", vec![attest("P1", Wage, "ICBC", "2026-02-05", "30000", "ICBC-ST-1"), attest("P1", Deposit, "ICBC", "2026-02-05", "200000", "ICBC-ST-2")]).await;
    let mut q = s.query(&county).await;
    let flags = |as_of: &str, at_seq: u64| pb::ListFlagsRequest { county: COUNTY.into(), project: "P1".into(), as_of: as_of.into(), at_seq, page_size: 0, page_token: String::new() };
    let codes = |fs: &[pb::Flag]| fs.iter().map(|f| f.code.clone()).collect::<Vec<_>>();
    let agreed = q.list_flags(flags("2026-02-06", 0)).await.unwrap().into_inner().flags;
    assert!(!codes(&agreed).iter().any(|c| c == "BALANCE_MISMATCH" || c == "STATEMENT_MISSING"), "{agreed:?}");

    // The treasurer takes ¥5,000 out at the counter on 2026-02-06; nobody posts it. The
    // bank's statement of that day says ¥25,000.
    let st = s.ok("bank:ICBC", "st-2", vec![attest("P1", Wage, "ICBC", "2026-02-06", "25000", "ICBC-ST-3")]).await;
    let red = q.list_flags(flags("2026-02-07", 0)).await.unwrap().into_inner().flags;
    let m = red.iter().find(|f| f.code == "BALANCE_MISMATCH").unwrap_or_else(|| panic!("{red:?}"));
    assert_eq!((m.grade.as_str(), m.gap.as_str(), m.since.as_str()), ("red", "5000.00", "2026-02-06"));
    assert_eq!(m.evidence, vec![st.first_seq]);
    assert!(m.detail.contains("last agreed 2026-02-05"), "{}", m.detail);
    assert!(m.detail_zh.contains("上次相符于2026-02-05") && m.detail_zh.contains("5,000.00元") && reads_chinese(&m.detail_zh), "{}", m.detail_zh);
    let sum = q.get_county_summary(county_q("2026-02-07", 0)).await.unwrap().into_inner();
    let icbc = sum.reconciliation.iter().find(|r| r.bank == "ICBC").expect("ICBC's accounts");
    assert_eq!((icbc.accounts, icbc.agreed, icbc.differ, icbc.late), (2, 1, 1, 0));
    assert_eq!(sum.flags_by_code.get("BALANCE_MISMATCH"), Some(&1));
    let p1 = q.get_project(pb::GetProjectRequest { project: "P1".into(), as_of: "2026-02-07".into(), at_seq: 0 }).await.unwrap().into_inner();
    let wage = p1.reconciliation.iter().find(|r| r.account == Wage as i32).unwrap();
    assert_eq!((wage.bank_balance.as_str(), wage.ledger_balance.as_str(), wage.last_agreed.as_str()), ("25000.00", "30000.00", "2026-02-05"));

    // The bank posts the payout it made that day, late: dated 2026-02-06, the comparison
    // now agrees; asked at the position before it, the difference is still there.
    let late = s.ok("bank:ICBC", "late-payout", vec![cmd(Kind::PayWage(pb::PayWage {
        project: "P1".into(), payment_no: "DF-LATE".into(), national_id: crate::harness::nid(1), bank_card: crate::harness::card(1),
        amount: "5000".into(), date: "2026-02-06".into(), period: String::new(),
    }))]).await;
    let now = q.list_flags(flags("2026-02-07", 0)).await.unwrap().into_inner().flags;
    assert!(!codes(&now).iter().any(|c| c == "BALANCE_MISMATCH"), "cleared by the late posting: {now:?}");
    let then = q.list_flags(flags("2026-02-07", late.first_seq - 1)).await.unwrap().into_inner().flags;
    assert!(codes(&then).iter().any(|c| c == "BALANCE_MISMATCH"), "the answer at the earlier position: {then:?}");
    // The flag's interval: open since the statement's day at the earlier position; at the
    // latest, the facts say the two books never differed, so there is no interval at all.
    let hist = |as_of: &str, at_seq: u64| pb::GetProjectHistoryRequest { project: "P1".into(), as_of: as_of.into(), at_seq };
    let intervals = q.get_project_history(hist("2026-02-07", late.first_seq - 1)).await.unwrap().into_inner().flag_intervals;
    let i = intervals.iter().find(|i| i.code == "BALANCE_MISMATCH").unwrap_or_else(|| panic!("{intervals:?}"));
    assert_eq!((i.grade.as_str(), i.opened.as_str(), i.cleared.as_str()), ("red", "2026-02-06", ""));
    assert_eq!(i.first.as_ref().unwrap().evidence, vec![st.first_seq]);
    let intervals = q.get_project_history(hist("2026-02-07", 0)).await.unwrap().into_inner().flag_intervals;
    assert!(!intervals.iter().any(|i| i.code == "BALANCE_MISMATCH"), "{intervals:?}");

    // ICBC stops attesting: after 3 working days without a statement, yellow.
    let later = q.list_flags(flags("2026-02-20", 0)).await.unwrap().into_inner().flags;
    let late_flags: Vec<&pb::Flag> = later.iter().filter(|f| f.code == "STATEMENT_MISSING").collect();
    assert_eq!(late_flags.len(), 2, "both accounts ICBC attests: {later:?}");
    assert!(late_flags.iter().all(|f| f.grade == "yellow" && f.since.as_str() > "2026-02-06" && reads_chinese(&f.detail_zh)));
    let st3 = s.ok("bank:ICBC", "st-3", vec![attest("P1", Wage, "ICBC", "2026-02-19", "25000", "ICBC-ST-4"), attest("P1", Deposit, "ICBC", "2026-02-19", "200000", "ICBC-ST-5")]).await;
    let back = q.list_flags(flags("2026-02-20", 0)).await.unwrap().into_inner().flags;
    assert!(!codes(&back).iter().any(|c| c == "STATEMENT_MISSING" || c == "BALANCE_MISMATCH"), "{back:?}");
    // Both yellow flags were open from the day the rule names to the day the statements
    // came, and say which records cleared them.
    let intervals = q.get_project_history(hist("2026-02-20", 0)).await.unwrap().into_inner().flag_intervals;
    let missing: Vec<&pb::FlagInterval> = intervals.iter().filter(|i| i.code == "STATEMENT_MISSING").collect();
    assert_eq!(missing.len(), 2, "{intervals:?}");
    for i in missing {
        // Opened the day its rule names (the deposit account's last statement is a day
        // older than the wage account's).
        assert_eq!((i.opened.as_str(), i.cleared.as_str()), (i.first.as_ref().unwrap().since.as_str(), "2026-02-19"), "{i:?}");
        assert!(late_flags.iter().any(|f| f.since == i.opened), "{i:?} {late_flags:?}");
        assert!(i.cleared_by.contains(&st3.first_seq) || i.cleared_by.contains(&(st3.first_seq + 1)), "{i:?}");
    }

    // Refusals: another bank's wage account, the same day twice, a reference used
    // twice, a project without a wage account, a contractor.
    let (code, reason, _) = s.refused("bank:ABC", "abc", vec![attest("P1", Wage, "ABC", "2026-02-20", "1", "ABC-1")]).await;
    assert_eq!((code, reason.as_str()), (tonic::Code::PermissionDenied, "NOT_PERMITTED"));
    let (code, reason, _) = s.refused("bank:ICBC", "again", vec![attest("P1", Wage, "ICBC", "2026-02-19", "25000", "ICBC-ST-9")]).await;
    assert_eq!((code, reason.as_str()), (tonic::Code::AlreadyExists, "STATEMENT_EXISTS"));
    let (code, reason, _) = s.refused("bank:ICBC", "ref", vec![attest("P1", Wage, "ICBC", "2026-02-21", "25000", "ICBC-ST-4")]).await;
    assert_eq!((code, reason.as_str()), (tonic::Code::AlreadyExists, "DUPLICATE_STATEMENT_REF"));
    s.ok(&county, "p9", vec![crate::harness::register("P9", COUNTY)]).await;
    let (_, reason, _) = s.refused("bank:ICBC", "p9", vec![attest("P9", Wage, "ICBC", "2026-02-21", "0", "ICBC-ST-10")]).await;
    assert_eq!(reason, "NO_WAGE_ACCOUNT");
    let (code, reason, _) = s.refused(&format!("contractor:{}", crate::harness::gc()), "gc", vec![attest("P1", Deposit, "ICBC", "2026-02-22", "0", "X-1")]).await;
    assert_eq!((code, reason.as_str()), (tonic::Code::PermissionDenied, "NOT_PERMITTED"));
    s.stop().await;
}
