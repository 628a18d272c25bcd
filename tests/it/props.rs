//! Property tests: random command sequences against a model, and single-byte damage.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use proptest::prelude::*;

use anxin::domain::command::*;
use anxin::domain::money::Fen;
use anxin::domain::posting::Account;
use anxin::ledger::{self, Ledger};

use crate::common::*;
use crate::store::{operator, flip, opts, record_range, rid};

#[derive(Clone, Debug)]
enum Op {
    Register(u8),
    Open(u8),
    Enrol(u8, u32),
    Contract(u8, u32),
    Exit(u8, u32),
    Status(u8, u8),
    Progress(u8, i64, i64),
    TopUp(u8, i64),
    Payroll(u8, u8, Vec<(u32, i64)>),
    Pay(u8, u32, u32, i64, Option<u8>),
    Deposit(u8, i64),
    Draw(u8, Vec<(u32, i64, Option<u8>)>),
    Release(u8),
    Close(u8),
}

#[derive(Clone, Debug)]
enum Step {
    Batch(Vec<Op>),
    Reopen,
}

fn amount() -> impl Strategy<Value = i64> {
    prop_oneof![1i64..1_000, 1_000i64..500_000, Just(100_000i64)]
}

fn op() -> impl Strategy<Value = Op> {
    let p = 0u8..2;
    let w = 1u32..5;
    prop_oneof![
        1 => p.clone().prop_map(Op::Register),
        1 => p.clone().prop_map(Op::Open),
        2 => (p.clone(), w.clone()).prop_map(|(p, w)| Op::Enrol(p, w)),
        1 => (p.clone(), w.clone()).prop_map(|(p, w)| Op::Contract(p, w)),
        1 => (p.clone(), w.clone()).prop_map(|(p, w)| Op::Exit(p, w)),
        1 => (p.clone(), 0u8..3).prop_map(|(p, s)| Op::Status(p, s)),
        3 => (p.clone(), amount(), amount()).prop_map(|(p, t, s)| Op::Progress(p, t, s)),
        1 => (p.clone(), amount()).prop_map(|(p, a)| Op::TopUp(p, a)),
        2 => (p.clone(), 1u8..4, prop::collection::vec((w.clone(), amount()), 1..4)).prop_map(|(p, m, l)| Op::Payroll(p, m, l)),
        4 => (p.clone(), w.clone(), prop::option::weighted(0.15, w.clone()), amount(), prop::option::of(1u8..4)).prop_map(|(p, w, c, a, m)| Op::Pay(p, w, c.unwrap_or(w), a, m)),
        2 => (p.clone(), amount()).prop_map(|(p, a)| Op::Deposit(p, a)),
        1 => (p.clone(), prop::collection::vec((w, amount(), prop::option::of(1u8..4)), 1..3)).prop_map(|(p, l)| Op::Draw(p, l)),
        1 => p.clone().prop_map(Op::Release),
        1 => p.prop_map(Op::Close),
    ]
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    // Most histories start from two registered projects with workers, so that the
    // random commands are mostly about money, not about projects that do not exist.
    let setup = Step::Batch(vec![Op::Register(0), Op::Register(1), Op::Open(0), Op::Open(1), Op::Enrol(0, 1), Op::Enrol(0, 2), Op::Enrol(1, 3), Op::Deposit(0, 500_000)]);
    let body = prop::collection::vec(
        prop_oneof![
            6 => op().prop_map(|o| Step::Batch(vec![o])),
            2 => prop::collection::vec(op(), 2..4).prop_map(Step::Batch),
            1 => Just(Step::Reopen),
        ],
        1..60,
    );
    (body, prop::bool::weighted(0.9)).prop_map(move |(mut steps, with_setup)| {
        if with_setup {
            steps.insert(0, setup.clone());
        }
        steps
    })
}

fn fen_str(f: i64) -> String {
    anxin::domain::money::format_fen(f)
}

fn to_command(op: &Op, n: &mut u32) -> Command {
    *n += 1;
    let no = format!("N{n}");
    let pn = |p: u8| format!("P{p}");
    let month = |m: u8| format!("2026-{m:02}");
    match op {
        Op::Register(p) => register(&pn(*p)),
        Op::Open(p) => open_account(&pn(*p)),
        Op::Enrol(p, w) => enrol(&pn(*p), *w),
        Op::Contract(p, w) => contract(&pn(*p), *w),
        Op::Exit(p, w) => exit(&pn(*p), *w, "2026-03-01"),
        Op::Status(p, s) => status(&pn(*p), [ProjectStatus::Active, ProjectStatus::Suspended, ProjectStatus::Completed][*s as usize], "2026-04-01"),
        Op::Progress(p, t, s) => progress(&pn(*p), &no, &fen_str(*t), &fen_str(*s), "2026-02-05"),
        Op::TopUp(p, a) => topup(&pn(*p), &no, &fen_str(*a)),
        Op::Payroll(p, m, lines) => {
            let ls: Vec<(u32, String)> = lines.iter().map(|(w, a)| (*w, fen_str(*a))).collect();
            let refs: Vec<(u32, &str)> = ls.iter().map(|(w, a)| (*w, a.as_str())).collect();
            payroll(&pn(*p), &month(*m), &refs)
        }
        Op::Pay(p, w, c, a, m) => {
            let Command::PayWage(mut pw) = pay(&pn(*p), &no, *w, &fen_str(*a), m.map(month).as_deref()) else { unreachable!() };
            pw.card = card(*c);
            Command::PayWage(pw)
        }
        Op::Deposit(p, a) => deposit(&pn(*p), &no, &fen_str(*a), "2026-01-20"),
        Op::Draw(p, payees) => {
            let ps: Vec<(u32, String, Option<String>)> = payees.iter().map(|(w, a, m)| (*w, fen_str(*a), m.map(month))).collect();
            let refs: Vec<(u32, &str, Option<&str>)> = ps.iter().map(|(w, a, m)| (*w, a.as_str(), m.as_deref())).collect();
            draw(&pn(*p), &no, "2026-03-02", &refs)
        }
        Op::Release(p) => Command::ReleaseDeposit(ReleaseDeposit { project: pid(&pn(*p)), date: d("2026-05-01") }),
        Op::Close(p) => Command::CloseWageAccount(CloseWageAccount { project: pid(&pn(*p)), date: d("2026-05-01") }),
    }
}

/// The model: escrow balances per project, booked from accepted events by the test's
/// own reading of what each event does to money.
#[derive(Default, Debug, PartialEq)]
struct Model {
    wage: BTreeMap<String, Fen>,
    deposit: BTreeMap<String, Fen>,
}

impl Model {
    fn book(&mut self, e: &Event) {
        let Some(p) = e.project().map(ToString::to_string) else { return };
        let (wage, dep) = (self.wage.entry(p.clone()).or_default(), self.deposit.entry(p).or_default());
        match e {
            Event::ProgressPaymentMade(c) => *wage += c.wage_share.fen(),
            Event::WageAccountToppedUp(c) => *wage += c.amount.fen(),
            Event::WagePaid(c) => *wage -= c.amount.fen(),
            Event::WageAccountClosed(c) => *wage -= c.residual.fen(),
            Event::DepositPaid(c) => *dep += c.amount.fen(),
            Event::DepositDrawn(c) => *dep -= c.payees.iter().map(|p| p.amount.fen()).sum::<i64>(),
            Event::DepositReleased(c) => *dep -= c.amount.fen(),
            _ => {}
        }
    }
}

static ACCEPTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn random_histories_keep_every_invariant(steps in steps()) {
        let dir = tempfile::tempdir().unwrap();
        let mut led = Ledger::open(dir.path(), opts()).unwrap();
        let mut shadow = World::new();
        let mut model = Model::default();
        let mut n = 0u32;
        let mut accepted = 0u64;
        for (i, step) in steps.iter().enumerate() {
            match step {
                Step::Reopen => {
                    let (entries, head) = (led.state().unwrap().entries(), led.head());
                    led.close().unwrap();
                    led = Ledger::open(dir.path(), opts()).unwrap();
                    prop_assert!(led.state().unwrap().entries() == entries);
                    prop_assert_eq!(led.head(), head);
                }
                Step::Batch(ops) => {
                    let cmds: Vec<Command> = ops.iter().map(|o| to_command(o, &mut n)).collect();
                    let expected = shadow.try_batch(cmds.clone());
                    let got = led.submit(operator(), rid(&format!("s{i}")), cmds).unwrap();
                    match (&expected, &got) {
                        (Ok(events), Ok(r)) => {
                            prop_assert_eq!(r.last_seq - r.first_seq + 1, events.len() as u64);
                            accepted += events.len() as u64;
                            for e in events {
                                model.book(e);
                            }
                        }
                        (Err(a), Err(b)) => prop_assert_eq!(a, b),
                        _ => prop_assert!(false, "ledger and pure decide disagree: {:?} vs {:?}", expected, got),
                    }
                    let state = led.state().unwrap();
                    for (acct, bal) in state.balances.iter() {
                        if acct.is_internal() {
                            prop_assert!(*bal >= 0, "{} went negative", acct);
                        }
                    }
                    let total: i64 = state.balances.iter().map(|(_, b)| *b).sum();
                    prop_assert_eq!(total, 0, "double entry: all balances sum to zero");
                    for (p, w) in &model.wage {
                        prop_assert_eq!(state.balance(&Account::Wage(pid(p))), *w);
                    }
                    for (p, dep) in &model.deposit {
                        prop_assert_eq!(state.balance(&Account::Deposit(pid(p))), *dep);
                    }
                }
            }
        }
        prop_assert_eq!(led.head().0, accepted);
        ACCEPTED.fetch_add(accepted, std::sync::atomic::Ordering::Relaxed);
        if std::env::var("ANXIN_PROP_STATS").is_ok() { eprintln!("accepted {accepted} of {} steps", steps.len()); }
        let entries = led.state().unwrap().entries();
        prop_assert!(entries == shadow.state.entries(), "the ledger's projections equal a pure replay");
        led.close().unwrap();
        let rep = ledger::verify(dir.path(), &mut |_| {}).unwrap();
        prop_assert_eq!(rep.error, None);
        prop_assert_eq!(rep.records, accepted);
        let rebuilt = ledger::rebuild(dir.path(), opts()).unwrap();
        prop_assert!(rebuilt.state().unwrap().entries() == entries, "rebuilt projections equal incremental ones");
    }
}

/// A ledger of 11 records in 5 frames, built once; each case damages a copy.
fn template() -> &'static tempfile::TempDir {
    static T: OnceLock<tempfile::TempDir> = OnceLock::new();
    T.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::open(dir.path(), opts()).unwrap();
        let ok = |id: &str, c: Vec<Command>| l.submit(operator(), rid(id), c).unwrap().unwrap();
        ok("r1", vec![register("P1"), open_account("P1"), enrol("P1", 1), enrol("P1", 2), contract("P1", 1)]);
        ok("r2", vec![deposit("P1", "D1", "200000", "2026-01-20"), progress("P1", "G1", "100000", "30000", "2026-02-05")]);
        ok("r3", vec![payroll("P1", "2026-01", &[(1, "5000"), (2, "6000")])]);
        ok("r4", vec![pay("P1", "W1", 1, "5000", Some("2026-01")), pay("P1", "W2", 2, "6000", Some("2026-01"))]);
        ok("r5", vec![topup("P1", "T1", "10.50")]);
        l.close().unwrap();
        dir
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn flipping_any_byte_of_any_record_is_detected_at_that_record(seq in 1u64..=11, at in 0.0f64..1.0, mask in 1u8..=255) {
        let t = template();
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(t.path().join("LEDGER"), dir.path().join("LEDGER")).unwrap();
        crate::store::copy_dir(&t.path().join("log"), &dir.path().join("log"));
        let (start, end) = record_range(dir.path(), seq);
        let offset = start + ((end - start) as f64 * at) as u64;
        let seg = anxin::store::log::segment_path(&dir.path().join("log"), 1);
        let mut bytes = std::fs::read(&seg).unwrap();
        bytes[offset as usize] ^= mask;
        std::fs::write(&seg, bytes).unwrap();
        let _ = flip;
        let rep = ledger::verify(dir.path(), &mut |_| {}).unwrap();
        let err = rep.error.unwrap_or_default();
        prop_assert!(err.contains(&format!("record {seq}")), "flip at record {} gave {:?}", seq, err);
    }
}
