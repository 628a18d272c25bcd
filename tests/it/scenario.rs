//! A county as its report would describe it, posted through a real ledger on a real data
//! directory: 21 projects (5 active, 11 completed, 5 suspended), 1,200 workers, a year of
//! payrolls, and four projects in trouble. Every balance, flag and county figure is held
//! against the generator's own bookkeeping of the same money (`demo::Plan`).

use anxin::projection::when::When;
use std::collections::BTreeMap;

use anxin::demo::{self, Fate};
use anxin::domain::command::ProjectStatus;
use anxin::domain::posting::Account;
use anxin::ledger::{self, Ledger, LedgerOptions};
use anxin::projection::flags::{flags, Grade};
use anxin::projection::views::{county_summary, project_view, worker_view};
use anxin::vault::Vault;

fn run(seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::open(&dir.path().join("vault")).unwrap();
    let plan = demo::plan(seed, &vault).unwrap();
    let led = Ledger::open(dir.path(), LedgerOptions { ledger_id: Some("anxin-scenario".into()), ..Default::default() }).unwrap();
    for b in &plan.batches {
        led.submit(b.principal.clone(), b.request_id.clone(), b.commands.clone()).unwrap().unwrap_or_else(|e| panic!("{}: {e}", b.request_id));
    }
    assert_eq!(led.head().0 as usize, plan.command_count());
    let as_of = plan.as_of;

    {
        let state = led.state().unwrap();
        let (pol, cal) = (led.policies(), led.calendars());

        // The county report's figures.
        let s = county_summary(&state, pol, cal, Some(plan.county), When::date(as_of));
        assert_eq!((s.projects_total, s.projects_active, s.projects_completed, s.projects_suspended), (21, 5, 11, 5));
        assert_eq!((s.workers_registered, s.workers_on_site), (1_200, 300));
        assert_eq!((s.enrolments, s.enrolments_with_contract), (1_200, 1_200));
        assert_eq!(s.wage_accounts_bound, 21);
        assert_eq!((s.deposit_required_projects, s.deposit_covered_projects), (10, 8));
        assert_eq!(s.wages_paid_year, plan.projects.iter().map(|p| p.paid_total).sum::<i64>());
        assert_eq!(s.workers_paid_year, 1_200);
        let p04 = &plan.projects[3];
        assert_eq!((s.arrears, s.arrears_workers), (p04.overdue, 60));
        assert!(s.arrears > 0);
        assert_eq!(s.progress_total, plan.projects.iter().map(|p| p.progress_total).sum::<i64>());
        assert_eq!(s.wage_share_total, plan.projects.iter().map(|p| p.wage_share_total).sum::<i64>());
        assert_eq!(s.deposit_cash_total, plan.projects.iter().map(|p| p.deposit_cash).sum::<i64>());
        assert_eq!(s.letters_valid_total, 0, "the only letter lapsed on 2025-12-15");
        assert_eq!((s.flags_red, s.flags_yellow), (5, 2));
        let by_code: BTreeMap<&str, u32> = [
            ("DEPOSIT_SHORTFALL", 2),
            ("DRAWDOWN_NOT_REPLENISHED", 1),
            ("LETTER_EXPIRING", 1),
            ("SPLIT_BELOW_RATIO", 1),
            ("WAGES_OVERDUE", 1),
            ("WAGE_SHORTFALL", 1),
        ]
        .into_iter()
        .collect();
        assert_eq!(s.flags_by_code.iter().map(|(k, v)| (k.as_str(), *v)).collect::<BTreeMap<_, _>>(), by_code);

        // Each project: balances as booked, status as planned, exactly the expected flags.
        let all = flags(&state, pol, cal, When::date(as_of));
        for p in &plan.projects {
            let v = project_view(&state, pol, cal, &p.id, When::date(as_of)).unwrap();
            assert_eq!(v.wage_balance, p.wage_balance, "{} wage balance", p.id);
            assert_eq!(state.balance(&Account::Wage(p.id.clone())), p.wage_balance);
            assert_eq!(v.deposit_cash, p.deposit_cash, "{} deposit", p.id);
            assert_eq!(v.letters_valid, p.letters_valid_at_end);
            assert_eq!((v.progress_total, v.wage_share_total), (p.progress_total, p.wage_share_total), "{}", p.id);
            assert_eq!(v.wages_paid_total, p.paid_total, "{} paid", p.id);
            assert_eq!((v.owed, v.overdue), (p.owed, p.overdue), "{} owed", p.id);
            let status = match p.fate {
                Fate::Active => ProjectStatus::Active,
                Fate::Completed => ProjectStatus::Completed,
                Fate::Suspended => ProjectStatus::Suspended,
            };
            assert_eq!(v.status, status);
            assert_eq!(v.wage_account_open, p.fate != Fate::Completed);
            assert_eq!(v.workers_on_site, if p.fate == Fate::Active { 60 } else { 0 });
            // Month by month, the money adds up to the same totals.
            let h = anxin::projection::views::project_history(&state, pol, cal, &p.id, When::date(as_of)).unwrap();
            assert_eq!(h.last().unwrap().wage_balance_end, p.wage_balance, "{} history balance", p.id);
            assert_eq!(h.iter().map(|m| m.payroll_paid).sum::<i64>(), p.paid_total, "{} history paid", p.id);
            assert_eq!(h.iter().map(|m| m.progress).sum::<i64>(), p.progress_total, "{} history progress", p.id);
            assert!(h.windows(2).all(|w| w[0].period.next() == w[1].period), "every month, in order");
            let mut codes: Vec<&str> = all.iter().filter(|f| f.project == p.id).map(|f| f.code.as_str()).collect();
            codes.sort_unstable();
            assert_eq!(codes, p.expected_flags, "{} flags", p.id);
            // Every flag points at evidence that is in the log.
            for f in all.iter().filter(|f| f.project == p.id) {
                assert!(!f.evidence.is_empty() && f.evidence.iter().all(|s| *s >= 1 && *s <= led.head().0), "{f:?}");
            }
        }

        // Money is conserved: every balance of every account sums to zero.
        assert_eq!(state.balances.iter().map(|(_, b)| *b).sum::<i64>(), 0);

        // The overdue project's flag names the overdue month's payroll and its workers.
        let overdue = all.iter().find(|f| f.code.as_str() == "WAGES_OVERDUE").unwrap();
        assert_eq!((overdue.project.as_str(), overdue.grade, overdue.count, overdue.gap), ("P04", Grade::Red, 60, p04.overdue));
        assert_eq!(overdue.since, anxin::domain::date::Date::parse("2025-12-01").unwrap());

        // A worker, found by national ID through the vault, sees their own wages.
        let w = &p04.workers[0];
        let wref = vault.find_worker(&w.national_id).unwrap().unwrap();
        let wv = worker_view(&state, &wref, When::date(as_of)).unwrap();
        assert_eq!(wv.paid_total, w.monthly_fen * 9, "paid January to September");
        assert_eq!(wv.owed_total, w.monthly_fen * 2, "October and November unpaid");
        assert_eq!(wv.masked, w.national_id.masked());
    }

    // The same figures after a restart, and after a rebuild from the log alone.
    let entries = led.state().unwrap().entries();
    led.close().unwrap();
    let rep = ledger::verify(dir.path(), &mut |_| {}).unwrap();
    assert_eq!((rep.error, rep.records as usize), (None, plan.command_count()));
    let led = ledger::rebuild(dir.path(), LedgerOptions::default()).unwrap();
    assert!(led.state().unwrap().entries() == entries);

    // No clear national ID or card number anywhere in the log or the index.
    let mut haystack = Vec::new();
    for e in walk(dir.path()) {
        if !e.starts_with(dir.path().join("vault")) {
            haystack.extend(std::fs::read(&e).unwrap());
        }
    }
    for w in plan.projects.iter().flat_map(|p| p.workers.iter()).step_by(97) {
        assert!(!contains(&haystack, w.national_id.expose_clear().as_bytes()), "a clear national ID reached the log or index");
        assert!(!contains(&haystack, w.card.expose_clear().as_bytes()), "a clear card number reached the log or index");
        assert!(contains(&haystack, w.national_id.masked().as_bytes()), "the masked form is what is stored");
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_county_year_mirrors_its_report() {
    run(7);
}

#[test]
fn the_report_does_not_depend_on_the_seed() {
    run(20_261_128);
}
