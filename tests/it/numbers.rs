//! External numbers (payment, letter, order, payroll and wage-account numbers) are unique
//! in their scope, through the one declaration every command kind makes
//! (`anxin::domain::numbers`): at every moment a duplicate can arrive (in the same batch,
//! a later batch, after a restart, after a rebuild), for every kind; and a log recorded
//! before a kind was covered still replays, with `verify` naming each duplicate.

use std::path::Path;

use anxin::chain::codec;
use anxin::chain::record::{record_hash, RecordRef, FORMAT_VERSION};
use anxin::domain::command::*;
use anxin::domain::ids::{BankCode, RequestId, Text};
use anxin::domain::numbers::NumberKind;
use anxin::domain::principal::Principal;
use anxin::ledger::{self, Ledger};
use anxin::store::log;

use crate::common::*;
use crate::store::{ok, operator, opts, rid};

/// When the second use of a number arrives.
#[derive(Clone, Copy, Debug)]
enum When {
    SameBatch,
    LaterBatch,
    AfterRestart,
    AfterRebuild,
}

/// Projects P1 and P2, each with an open wage account, workers 1 and 2 enrolled, a cash
/// deposit and money in the wage account; P3 and P4 with no account yet.
fn setup(l: &Ledger) {
    let mut cmds = Vec::new();
    for p in ["P1", "P2"] {
        cmds.extend([register(p), open_account(p), enrol(p, 1), enrol(p, 2), deposit(p, &format!("SETUP-D-{p}"), "100000", "2026-01-20"), topup(p, &format!("SETUP-T-{p}"), "100000")]);
    }
    cmds.extend([register("P3"), register("P4")]);
    ok(l, "setup", cmds);
}

/// The `i`-th command of `kind` on project `p` carrying number `no`, otherwise valid
/// (`i` varies the other fields, and the payment kind: a deposit, then a top-up, shows
/// that all payments share one space).
fn numbered(kind: NumberKind, p: &str, no: &str, i: u32) -> Command {
    match kind {
        NumberKind::Payment if i == 0 => deposit(p, no, "100", "2026-02-01"),
        NumberKind::Payment => topup(p, no, "5"),
        NumberKind::Letter => letter(p, no, "1000", "2026-01-01", "2026-12-31"),
        NumberKind::Order => draw(p, no, "2026-03-01", &[(1 + i % 2, "10", None)]),
        // The number of a payroll is its month; `no` is ignored.
        NumberKind::Payroll => payroll(p, "2026-03", &[(1 + i % 2, "100")]),
        NumberKind::Account => open_account_no(p, no),
        // A bank's statement reference: unique per bank, whatever the project or day.
        NumberKind::Statement => statement(p, "ICBC", &format!("2026-03-{:02}", 1 + i), no),
    }
}

/// The project a second use goes to when it tries another project, and whether the
/// number's scope lets it through there.
fn other_project(kind: NumberKind) -> (&'static str, &'static str, bool) {
    match kind {
        // Accounts: P3 takes the number first, then P4 at the same bank is refused.
        NumberKind::Account => ("P3", "P4", false),
        NumberKind::Letter | NumberKind::Statement => ("P1", "P2", false),
        NumberKind::Payment | NumberKind::Order | NumberKind::Payroll => ("P1", "P2", true),
    }
}

fn second_use(dir: &Path, kind: NumberKind, when: When, no: &str) {
    let (p, other, other_allowed) = other_project(kind);
    let what = format!("{kind:?} {when:?}");
    let mut l = Ledger::open(dir, opts()).unwrap();
    setup(&l);
    let first = numbered(kind, p, no, 0);
    let again = numbered(kind, p, no, 1);
    let before = l.head();
    if let When::SameBatch = when {
        let rej = l.submit(operator(), rid("both"), vec![first.clone(), again.clone()]).unwrap().unwrap_err();
        assert_eq!((rej.index, rej.rejection.code()), (Some(1), kind.duplicate_code()), "{what}: {rej}");
        assert_eq!(l.head(), before, "{what}: a refused batch leaves no trace");
    }
    ok(&l, "first", vec![first]);
    match when {
        When::SameBatch | When::LaterBatch => {}
        When::AfterRestart => {
            l.close().unwrap();
            l = Ledger::open(dir, opts()).unwrap();
        }
        When::AfterRebuild => {
            l.close().unwrap();
            l = ledger::rebuild(dir, opts()).unwrap();
        }
    }
    let head = l.head();
    let rej = l.submit(operator(), rid("again"), vec![again]).unwrap().unwrap_err();
    assert_eq!(rej.rejection.code(), kind.duplicate_code(), "{what}: {rej}");
    assert!(rej.rejection.to_string().contains(if kind == NumberKind::Payroll { "2026-03" } else { no }), "{what}: the message names the number: {}", rej.rejection);
    assert_eq!(l.head(), head, "{what}: nothing recorded");
    // On another project: accepted only where the number's scope is the project.
    let elsewhere = l.submit(operator(), rid("elsewhere"), vec![numbered(kind, other, no, 0)]).unwrap();
    match (other_allowed, elsewhere) {
        (true, Ok(_)) => {}
        (false, Err(rej)) => assert_eq!(rej.rejection.code(), kind.duplicate_code(), "{what} on {other}: {rej}"),
        (allowed, got) => panic!("{what} on {other}: expected {}, got {got:?}", if allowed { "acceptance" } else { "a duplicate" }),
    }
    if kind == NumberKind::Account {
        // Another bank may have an account with the same number.
        let at_abc = Command::OpenWageAccount(OpenWageAccount { project: pid("P4"), bank: BankCode::parse("ABC").unwrap(), account_no: Text::parse(no).unwrap(), date: d("2026-01-10") });
        ok(&l, "at-abc", vec![at_abc]);
    }
    l.close().unwrap();
}

#[test]
fn every_kind_of_number_is_refused_twice_at_every_moment_and_reused_only_where_its_scope_allows() {
    let mut cases = 0;
    for kind in NumberKind::ALL {
        for when in [When::SameBatch, When::LaterBatch, When::AfterRestart, When::AfterRebuild] {
            let dir = tempfile::tempdir().unwrap();
            second_use(dir.path(), kind, when, &format!("N-{cases}-{kind:?}"));
            cases += 1;
        }
    }
    assert_eq!(cases, 4 * NumberKind::ALL.len());
}

#[test]
fn account_numbers_are_compared_without_spaces_and_hyphens() {
    let mut w = World::new();
    w.given(vec![register("P1"), register("P2"), open_account_no("P1", "2703 0012 0900 0001")]);
    w.rejects(open_account_no("P2", "2703-0012-0900-0001"), "DUPLICATE_ACCOUNT_NO");
    w.rejects(open_account_no("P2", "270300120900 0001"), "DUPLICATE_ACCOUNT_NO");
    w.given(vec![open_account_no("P2", "2703 0012 0900 0002")]);
}

/// Appends records to a closed ledger's log as an older build would have (its checks
/// did not cover these kinds), chained from the log's head.
fn append_raw(dir: &Path, events: Vec<Event>) {
    let ledger_id = std::fs::read_to_string(dir.join("LEDGER")).unwrap().trim().to_owned();
    let mut verifier = anxin::chain::record::ChainVerifier::new(&ledger_id);
    let end = log::scan(&dir.join("log"), &ledger_id, None, false, &mut |f| {
        for b in &f.records {
            verifier.check(b).unwrap();
        }
        Ok(())
    })
    .unwrap();
    let mut w = log::LogWriter::open(&dir.join("log"), &ledger_id, end.end).unwrap().with_signed_floor(end.signed);
    let (first, mut head) = (verifier.next_seq(), verifier.head());
    let request_id = RequestId::parse("legacy").unwrap();
    let mut records = Vec::new();
    for (i, event) in events.iter().enumerate() {
        let rec = RecordRef { version: FORMAT_VERSION, seq: first + i as u64, prev_hash: &head, recorded_at_ms: 1_767_225_600_000, principal: &Principal::Operator, request_id: &request_id, event };
        let bytes = codec::encode(&rec);
        head = record_hash(&bytes);
        records.push(bytes);
    }
    w.append(first, 0, &records).unwrap();
    w.sync().unwrap();
}

#[test]
fn a_log_already_holding_duplicates_replays_and_verify_names_each_one() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(dir.path(), opts()).unwrap();
    ok(&l, "setup", vec![register("P1"), open_account("P1"), deposit("P1", "BZJ-P1-1", "240000", "2026-01-20"), letter("P1", "BH-1", "1000", "2026-01-01", "2026-12-31")]);
    let (records, _) = l.head();
    l.close().unwrap();
    // What the earlier build recorded: the same deposit twice more, and the letter again.
    let Command::PayDeposit(dep) = deposit("P1", "BZJ-P1-1", "1000", "2026-01-21") else { unreachable!() };
    let Command::IssueGuaranteeLetter(gl) = letter("P1", "BH-1", "500", "2026-01-01", "2026-12-31") else { unreachable!() };
    append_raw(dir.path(), vec![Event::DepositPaid(dep.clone()), Event::DepositPaid(PayDeposit { date: d("2026-01-22"), ..dep }), Event::GuaranteeLetterIssued(gl)]);

    // It replays (apply never refuses), after a restart and after a rebuild alike, and
    // the balance is what the log says.
    for rebuild in [false, true] {
        let l = if rebuild { ledger::rebuild(dir.path(), opts()).unwrap() } else { Ledger::open(dir.path(), opts()).unwrap() };
        assert_eq!(l.head().0, records + 3);
        assert_eq!(l.state().unwrap().deposit_cash(&pid("P1")), 24_200_000, "242,000.00 yuan in fen");
        // The number is still taken: a fourth use is refused now.
        let rej = l.submit(operator(), rid(&format!("fourth-{rebuild}")), vec![deposit("P1", "BZJ-P1-1", "1", "2026-01-23")]).unwrap().unwrap_err();
        assert_eq!(rej.rejection.code(), "DUPLICATE_PAYMENT_NO");
        l.close().unwrap();
    }
    let rep = ledger::verify(dir.path(), &mut |_| {}).unwrap();
    assert_eq!(rep.error, None, "the chain itself is whole");
    let found: Vec<(u64, &str)> = rep.findings.iter().map(|f| (f.seq, f.code)).collect();
    assert_eq!(found, vec![(records + 1, "DUPLICATE_PAYMENT_NO"), (records + 2, "DUPLICATE_PAYMENT_NO"), (records + 3, "DUPLICATE_LETTER_NO")]);
    assert!(rep.findings[0].what.contains("BZJ-P1-1") && rep.findings[0].what.contains("record 3"), "{:?}", rep.findings[0]);
    // A clean log has no findings.
    let clean = tempfile::tempdir().unwrap();
    let l = Ledger::open(clean.path(), opts()).unwrap();
    ok(&l, "setup", vec![register("P1"), open_account("P1"), deposit("P1", "BZJ-P1-1", "240000", "2026-01-20")]);
    l.close().unwrap();
    assert!(ledger::verify(clean.path(), &mut |_| {}).unwrap().findings.is_empty());
}

mod property {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;

    /// One step: a command of `kind` on project `p`, at bank `bank` where it names one,
    /// with number `n` from a small pool (so that repeats are frequent), `variant`
    /// choosing among the payment commands.
    #[derive(Clone, Debug)]
    struct Step {
        kind: usize,
        p: usize,
        bank: usize,
        n: usize,
        variant: usize,
    }

    fn steps() -> impl Strategy<Value = Vec<Step>> {
        proptest::collection::vec((0..6usize, 0..3usize, 0..2usize, 0..3usize, 0..3usize).prop_map(|(kind, p, bank, n, variant)| Step { kind, p, bank, n, variant }), 1..60)
    }

    /// The command, and the key of its number as the model keeps it (kind, scope, value).
    fn command(s: &Step) -> (NumberKind, Command, (NumberKind, String, String)) {
        let p = format!("P{}", s.p);
        let kind = NumberKind::ALL[s.kind];
        let (cmd, scope, value) = match kind {
            NumberKind::Payment => {
                let no = format!("N{}", s.n);
                let cmd = match s.variant {
                    0 => deposit(&p, &no, "10", "2026-02-01"),
                    1 => topup(&p, &no, "10"),
                    _ => progress(&p, &no, "100", "0", "2026-02-01"),
                };
                (cmd, p.clone(), no)
            }
            NumberKind::Letter => (letter(&p, &format!("L{}", s.n), "10", "2026-01-01", "2026-12-31"), String::new(), format!("L{}", s.n)),
            NumberKind::Order => (draw(&p, &format!("O{}", s.n), "2026-03-01", &[(1, "1", None)]), p.clone(), format!("O{}", s.n)),
            NumberKind::Payroll => {
                let month = format!("2026-0{}", s.n + 1);
                (payroll(&p, &month, &[(1, "100")]), p.clone(), month)
            }
            NumberKind::Account => {
                let bank = ["ICBC", "ABC"][s.bank];
                let no = format!("ACC-{}", s.n);
                let cmd = Command::OpenWageAccount(OpenWageAccount { project: pid(&p), bank: BankCode::parse(bank).unwrap(), account_no: Text::parse(&no).unwrap(), date: d("2026-01-10") });
                (cmd, bank.to_owned(), no)
            }
            NumberKind::Statement => {
                // The day follows the reference, bank and variant: two statements of one
                // account and day always share their reference (refused as such first).
                let bank = ["ICBC", "ABC"][s.bank];
                let no = format!("ST-{}", s.n);
                let date = anxin::domain::date::Date::parse("2026-01-01").unwrap().add_days((s.n * 7 + s.bank * 3 + s.variant) as i64).to_string();
                (statement(&p, bank, &date, &no), bank.to_owned(), no)
            }
        };
        (kind, cmd, (kind, scope, value))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

        /// Whatever the order of commands: a number already used in its scope is always
        /// refused with its kind's code, a command is accepted only with a number not
        /// used yet, and replaying the accepted events from nothing gives the same state.
        #[test]
        fn a_number_is_accepted_once_in_its_scope_whatever_the_history(steps in steps()) {
            let mut w = World::new();
            let mut setup = Vec::new();
            for p in ["P0", "P1", "P2"] {
                setup.extend([register(p), enrol(p, 1), deposit(p, &format!("SETUP-{p}"), "100000", "2026-01-20")]);
            }
            let mut events = w.given(setup);
            let mut used: HashSet<(NumberKind, String, String)> = HashSet::new();
            for s in &steps {
                let (kind, cmd, key) = command(s);
                let before = w.state.entries();
                match w.try_batch(vec![cmd]) {
                    Ok(ev) => {
                        prop_assert!(used.insert(key.clone()), "{key:?} was accepted a second time");
                        events.extend(ev);
                    }
                    Err(rej) => {
                        if used.contains(&key) {
                            prop_assert_eq!(rej.rejection.code(), kind.duplicate_code(), "{:?}", key);
                        } else {
                            prop_assert_ne!(rej.rejection.code(), kind.duplicate_code(), "{:?} refused as a duplicate before its first use", key);
                        }
                        prop_assert!(before == w.state.entries(), "a refused command changed the state");
                    }
                }
            }
            let mut replayed = anxin::projection::state::State::default();
            for (i, e) in events.iter().enumerate() {
                replayed.apply(e, i as u64 + 1);
            }
            prop_assert!(replayed.entries() == w.state.entries(), "replaying the events gives the same state, numbers included");
        }
    }
}
