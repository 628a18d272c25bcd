//! Each flag raising, as of a date, and clearing when its facts are cured.

use anxin::projection::when::When;
use anxin::domain::command::*;
use anxin::domain::date::{Calendar, CalendarBook, Date};
use anxin::domain::policy::PolicyBook;
use anxin::projection::flags::{flags, Flag, FlagCode, Grade};

use crate::common::*;

/// The flags open as of a date; each one's sentence is also in Chinese (a county office
/// reads the Chinese page).
fn open_flags(w: &World, as_of: &str) -> Vec<Flag> {
    let all = flags(&w.state, &PolicyBook::default(), &CalendarBook::china(), When::date(d(as_of)));
    for f in &all {
        assert!(reads_chinese(&f.detail_zh) && !f.detail.is_empty(), "{:?}: {:?} / {:?}", f.code, f.detail, f.detail_zh);
    }
    all
}

fn codes(w: &World, as_of: &str) -> Vec<FlagCode> {
    open_flags(w, as_of).into_iter().map(|f| f.code).collect()
}

fn one(w: &World, as_of: &str, code: FlagCode) -> Flag {
    let mut all: Vec<Flag> = open_flags(w, as_of).into_iter().filter(|f| f.code == code).collect();
    assert_eq!(all.len(), 1, "expected one {code:?} as of {as_of}");
    all.remove(0)
}

/// A compliant project: deposit lodged, account open, one worker with a contract.
/// Contract price ¥10M: deposit required 2% = ¥200,000.
fn compliant() -> World {
    let mut w = World::new();
    w.project_with_workers("P1", 1);
    w.given(vec![deposit("P1", "D1", "200000", "2026-01-20")]);
    w
}

#[test]
fn a_compliant_project_raises_nothing() {
    let mut w = compliant();
    w.given(vec![progress("P1", "G1", "100000", "30000", "2026-02-05"), payroll("P1", "2026-01", &[(1, "5000")]), pay("P1", "W1", 1, "5000", Some("2026-01"))]);
    assert_eq!(codes(&w, "2026-02-20"), vec![]);
}

#[test]
fn wages_overdue_raises_after_the_due_date_and_clears_when_paid() {
    let mut w = compliant();
    w.given(vec![progress("P1", "G1", "100000", "30000", "2026-02-05"), payroll("P1", "2026-01", &[(1, "5000")])]);
    // Due on 2026-02-28: not yet overdue that day.
    assert!(!codes(&w, "2026-02-28").contains(&FlagCode::WagesOverdue));
    let f = one(&w, "2026-03-01", FlagCode::WagesOverdue);
    assert_eq!((f.grade, f.gap, f.count, f.since), (Grade::Red, 500_000, 1, d("2026-03-01")));
    // Records: 1 register, 2 account, 3 enrol, 4 contract, 5 deposit, 6 progress, 7 payroll.
    assert_eq!(f.evidence, vec![7]);
    w.given(vec![pay("P1", "W1", 1, "5000", Some("2026-01"))]);
    assert!(!codes(&w, "2026-03-01").contains(&FlagCode::WagesOverdue));
}

#[test]
fn wage_shortfall_warns_before_wages_are_missed_and_clears_when_funded() {
    let mut w = compliant();
    w.given(vec![progress("P1", "G1", "10000", "3000", "2026-02-05"), payroll("P1", "2026-01", &[(1, "5000")])]);
    let f = one(&w, "2026-02-10", FlagCode::WageShortfall);
    assert_eq!((f.grade, f.gap), (Grade::Yellow, 200_000));
    assert!(!codes(&w, "2026-02-10").contains(&FlagCode::WagesOverdue), "not due yet");
    w.given(vec![topup("P1", "T1", "2000")]);
    assert!(!codes(&w, "2026-02-10").contains(&FlagCode::WageShortfall));
}

#[test]
fn split_below_ratio_raises_on_the_cumulative_share_and_clears_when_made_up() {
    let mut w = compliant();
    w.given(vec![progress("P1", "G1", "100000", "30000", "2026-02-05"), progress("P1", "G2", "100000", "10000", "2026-03-05")]);
    let f = one(&w, "2026-03-10", FlagCode::SplitBelowRatio);
    assert_eq!((f.gap, f.since, f.count), (2_000_000, d("2026-03-05"), 1));
    // As of a date before the short payment, the flag is not there.
    assert!(!codes(&w, "2026-03-01").contains(&FlagCode::SplitBelowRatio));
    w.given(vec![progress("P1", "G3", "100000", "50000", "2026-04-05")]);
    assert!(!codes(&w, "2026-04-10").contains(&FlagCode::SplitBelowRatio));
}

#[test]
fn a_project_override_of_the_ratio_is_honoured() {
    let mut w = World::new();
    let Command::RegisterProject(mut r) = register("P1") else { unreachable!() };
    r.labour_ratio_bp = Some(2_000);
    w.given(vec![Command::RegisterProject(r), open_account("P1"), deposit("P1", "D1", "200000", "2026-01-20")]);
    w.given(vec![progress("P1", "G1", "100000", "25000", "2026-02-05")]);
    assert!(!codes(&w, "2026-02-10").contains(&FlagCode::SplitBelowRatio));
    let mut book = PolicyBook::default();
    book.counties.insert(county(), anxin::domain::policy::PolicyOverride { labour_ratio_bp: Some(3_500), ..Default::default() });
    // The project's own term still wins over the county's.
    assert!(flags(&w.state, &book, &CalendarBook::china(), When::date(d("2026-02-10"))).iter().all(|f| f.code != FlagCode::SplitBelowRatio));
}

#[test]
fn deposit_shortfall_counts_working_days_from_the_permit() {
    let mut w = World::new();
    w.project_with_workers("P1", 1);
    // Permit 2026-01-12 (Monday) + 20 working days = 2026-02-09 (no holiday in between).
    assert!(!codes(&w, "2026-02-09").contains(&FlagCode::DepositShortfall));
    let f = one(&w, "2026-02-10", FlagCode::DepositShortfall);
    assert_eq!((f.gap, f.since, f.grade), (20_000_000, d("2026-02-10"), Grade::Red));
    w.given(vec![deposit("P1", "D1", "150000", "2026-02-11"), letter("P1", "L1", "50000", "2026-02-11", "2027-06-30")]);
    assert!(!codes(&w, "2026-02-12").contains(&FlagCode::DepositShortfall));
}

#[test]
fn a_letter_lapsing_before_the_planned_end_warns_then_turns_red_and_clears_when_replaced() {
    let mut w = World::new();
    w.project_with_workers("P1", 1);
    w.given(vec![letter("P1", "L1", "200000", "2026-01-20", "2026-06-30")]);
    assert!(!codes(&w, "2026-05-30").contains(&FlagCode::LetterExpiring));
    let f = one(&w, "2026-06-01", FlagCode::LetterExpiring);
    assert_eq!((f.grade, f.since), (Grade::Yellow, d("2026-05-31")));
    let f = one(&w, "2026-07-01", FlagCode::LetterExpiring);
    assert_eq!((f.grade, f.gap), (Grade::Red, 20_000_000));
    assert!(codes(&w, "2026-07-01").contains(&FlagCode::DepositShortfall));
    w.given(vec![letter("P1", "L2", "200000", "2026-07-02", "2027-03-31")]);
    let now = codes(&w, "2026-07-03");
    assert!(!now.contains(&FlagCode::LetterExpiring) && !now.contains(&FlagCode::DepositShortfall), "{now:?}");
}

#[test]
fn a_drawdown_must_be_replenished_within_ten_working_days() {
    let mut w = compliant();
    w.given(vec![payroll("P1", "2026-01", &[(1, "5000")]), draw("P1", "O1", "2026-03-02", &[(1, "5000", Some("2026-01"))])]);
    // 2026-03-02 (Monday) + 10 working days = 2026-03-16.
    let within = codes(&w, "2026-03-16");
    assert!(!within.contains(&FlagCode::DrawdownNotReplenished) && !within.contains(&FlagCode::DepositShortfall), "{within:?}");
    let f = one(&w, "2026-03-17", FlagCode::DrawdownNotReplenished);
    assert_eq!((f.gap, f.since, f.evidence.len()), (500_000, d("2026-03-17"), 1));
    let s = one(&w, "2026-03-17", FlagCode::DepositShortfall);
    assert_eq!(s.since, d("2026-03-17"));
    w.given(vec![deposit("P1", "D2", "3000", "2026-03-18")]);
    assert_eq!(one(&w, "2026-03-19", FlagCode::DrawdownNotReplenished).gap, 200_000);
    w.given(vec![deposit("P1", "D3", "2000", "2026-03-19")]);
    assert_eq!(codes(&w, "2026-03-20"), vec![]);
}

#[test]
fn payroll_missing_for_a_month_with_workers_on_site() {
    let mut w = compliant();
    // January had a worker on site; its payroll is due by the end of February.
    assert!(!codes(&w, "2026-02-28").contains(&FlagCode::PayrollMissing));
    let f = one(&w, "2026-03-01", FlagCode::PayrollMissing);
    assert_eq!((f.count, f.grade), (1, Grade::Red));
    w.given(vec![progress("P1", "G1", "100000", "30000", "2026-02-05"), payroll("P1", "2026-01", &[(1, "5000")]), pay("P1", "W1", 1, "5000", Some("2026-01"))]);
    assert!(!codes(&w, "2026-03-01").contains(&FlagCode::PayrollMissing));
    // A suspended month with nobody on site needs no payroll.
    w.given(vec![exit("P1", 1, "2026-01-31"), status("P1", ProjectStatus::Suspended, "2026-02-01")]);
    assert_eq!(codes(&w, "2026-05-01"), vec![]);
}

#[test]
fn no_wage_account_within_thirty_days_of_the_contract() {
    let mut w = World::new();
    w.given(vec![register("P1"), deposit("P1", "D1", "200000", "2026-01-20")]);
    // Contract 2026-01-05 + 30 days = 2026-02-04.
    assert!(!codes(&w, "2026-02-04").contains(&FlagCode::NoWageAccount));
    assert_eq!(one(&w, "2026-02-05", FlagCode::NoWageAccount).since, d("2026-02-05"));
    w.given(vec![open_account("P1")]);
    assert!(!codes(&w, "2026-02-05").contains(&FlagCode::NoWageAccount));
}

#[test]
fn contract_missing_for_workers_on_site() {
    let mut w = compliant();
    w.given(vec![enrol("P1", 2)]);
    let f = one(&w, "2026-01-20", FlagCode::ContractMissing);
    assert_eq!((f.count, f.grade), (1, Grade::Yellow));
    w.given(vec![contract("P1", 2)]);
    assert!(!codes(&w, "2026-01-20").contains(&FlagCode::ContractMissing));
    // A worker who left without a contract is no longer on site.
    w.given(vec![enrol("P1", 3), exit("P1", 3, "2026-01-18")]);
    assert!(!codes(&w, "2026-01-20").contains(&FlagCode::ContractMissing));
}

#[test]
fn a_county_calendar_replaces_the_national_one_for_its_projects() {
    let mut w = World::new();
    w.project_with_workers("P1", 1);
    // The county declares 2026-02-09 a local holiday: the deposit deadline moves a day.
    let local = Calendar::parse("year 2026\n2026-02-09 holiday\n").unwrap();
    let mut cals = CalendarBook::china();
    cals.counties.insert(county(), local);
    let at = |cals: &CalendarBook| flags(&w.state, &PolicyBook::default(), cals, When::date(d("2026-02-10"))).iter().any(|f| f.code == FlagCode::DepositShortfall);
    assert!(at(&CalendarBook::china()));
    assert!(!at(&cals));
}

#[test]
fn flags_before_a_project_starts_are_empty() {
    let w = compliant();
    let _ = Date::parse("2026-01-01");
    assert_eq!(codes(&w, "2025-12-01"), vec![]);
}
