//! Every rule of `decide` and every rejection code, as given / when / then.

use anxin::domain::command::*;
use anxin::domain::posting::Account;
use anxin::limits::BATCH_COMMANDS_MAX;

use crate::common::*;

#[test]
fn registering_a_project_twice_is_rejected() {
    let mut w = World::new();
    w.given(vec![register("P1")]);
    w.rejects(register("P1"), "PROJECT_EXISTS");
}

#[test]
fn registration_with_a_zero_price_end_before_start_or_ratio_above_100_percent_is_invalid() {
    let mut w = World::new();
    let Command::RegisterProject(base) = register("P1") else { unreachable!() };
    let mut c = base.clone();
    c.contract_price = yuan("0");
    w.rejects(Command::RegisterProject(c), "AMOUNT_NOT_POSITIVE");
    let mut c = base.clone();
    c.planned_end = d("2025-01-01");
    w.rejects(Command::RegisterProject(c), "DATE_ORDER");
    let mut c = base;
    c.labour_ratio_bp = Some(10_001);
    w.rejects(Command::RegisterProject(c), "INVALID_POLICY_OVERRIDE");
}

#[test]
fn anything_for_an_unknown_project_is_rejected() {
    let mut w = World::new();
    w.rejects(open_account("NOPE"), "UNKNOWN_PROJECT");
    w.rejects(enrol("NOPE", 1), "UNKNOWN_PROJECT");
    w.rejects(deposit("NOPE", "D1", "100", "2026-01-20"), "UNKNOWN_PROJECT");
    w.rejects(pay("NOPE", "W1", 1, "100", None), "UNKNOWN_PROJECT");
    w.rejects(status("NOPE", ProjectStatus::Suspended, "2026-03-01"), "UNKNOWN_PROJECT");
}

#[test]
fn status_changes_follow_the_lifecycle_and_completed_is_terminal() {
    let mut w = World::new();
    w.given(vec![register("P1")]);
    w.rejects(status("P1", ProjectStatus::Active, "2026-03-01"), "INVALID_STATUS_TRANSITION");
    w.given(vec![status("P1", ProjectStatus::Suspended, "2026-03-01")]);
    w.rejects(status("P1", ProjectStatus::Active, "2026-02-01"), "DATE_ORDER");
    w.given(vec![status("P1", ProjectStatus::Active, "2026-04-01"), status("P1", ProjectStatus::Completed, "2026-12-01")]);
    w.rejects(status("P1", ProjectStatus::Active, "2026-12-02"), "INVALID_STATUS_TRANSITION");
}

#[test]
fn a_second_open_wage_account_is_rejected() {
    let mut w = World::new();
    w.given(vec![register("P1"), open_account("P1")]);
    w.rejects(open_account_no("P1", "another account"), "WAGE_ACCOUNT_EXISTS");
}

#[test]
fn money_into_a_missing_wage_account_is_rejected() {
    let mut w = World::new();
    w.project_with_workers("P1", 0);
    w.given(vec![register("P2")]);
    w.rejects(progress("P2", "G1", "1000", "300", "2026-02-01"), "NO_WAGE_ACCOUNT");
    w.rejects(topup("P2", "T1", "100"), "NO_WAGE_ACCOUNT");
    // A progress payment with no wage share needs no account: it is recorded and flagged.
    w.given(vec![progress("P2", "G1", "1000", "0", "2026-02-01")]);
}

#[test]
fn enrolment_requires_an_active_project_and_one_card_per_person() {
    let mut w = World::new();
    w.project_with_workers("P1", 1);
    w.rejects(enrol("P1", 1), "WORKER_ALREADY_ENROLLED");
    w.rejects(enrol_card("P1", 2, 1), "CARD_IN_USE");
    w.given(vec![register("P2"), status("P2", ProjectStatus::Suspended, "2026-02-01")]);
    w.rejects(enrol("P2", 3), "PROJECT_NOT_ACTIVE");
}

#[test]
fn contracts_and_exits_need_a_current_enrolment() {
    let mut w = World::new();
    w.project_with_workers("P1", 1);
    w.rejects(contract("P1", 1), "CONTRACT_EXISTS");
    w.rejects(contract("P1", 9), "WORKER_NOT_ENROLLED");
    w.rejects(exit("P1", 9, "2026-03-01"), "WORKER_NOT_ENROLLED");
    w.rejects(exit("P1", 1, "2026-01-01"), "DATE_ORDER");
    w.given(vec![exit("P1", 1, "2026-03-01")]);
    w.rejects(exit("P1", 1, "2026-03-02"), "WORKER_NOT_ENROLLED");
    // Re-enrolment after an exit opens a new span, not before the exit.
    let Command::EnrolWorker(mut e) = enrol("P1", 1) else { unreachable!() };
    e.date = d("2026-02-01");
    w.rejects(Command::EnrolWorker(e.clone()), "DATE_ORDER");
    e.date = d("2026-04-01");
    w.given(vec![Command::EnrolWorker(e)]);
    assert_eq!(w.state.enrolments.get(&(pid("P1"), worker(1))).unwrap().spans.len(), 2);
}

#[test]
fn payroll_rules() {
    let mut w = World::new();
    w.project_with_workers("P1", 2);
    w.rejects(payroll("P1", "2026-02", &[]), "EMPTY_PAYROLL");
    w.rejects(payroll("P1", "2026-02", &[(1, "100"), (1, "200")]), "DUPLICATE_PAYROLL_LINE");
    w.rejects(payroll("P1", "2026-02", &[(1, "100"), (7, "200")]), "PAYEE_NOT_ENROLLED");
    let Command::SubmitPayroll(mut p) = payroll("P1", "2026-02", &[(1, "100")]) else { unreachable!() };
    p.lines[0].days = 32;
    w.rejects(Command::SubmitPayroll(p.clone()), "INVALID_DAYS");
    p.lines[0].days = 20;
    p.lines[0].amount_due = yuan("0");
    w.rejects(Command::SubmitPayroll(p.clone()), "AMOUNT_NOT_POSITIVE");
    p.lines[0].amount_due = yuan("100");
    p.due_date = d("2026-01-31");
    w.rejects(Command::SubmitPayroll(p.clone()), "DATE_ORDER");
    let many: Vec<(u32, &str)> = (0..5_001).map(|i| (i, "1")).collect();
    w.rejects(payroll("P1", "2026-02", &many), "LIMIT_EXCEEDED");
    w.given(vec![payroll("P1", "2026-02", &[(1, "100"), (2, "200")])]);
    w.rejects(payroll("P1", "2026-02", &[(1, "100")]), "PAYROLL_EXISTS");
}

#[test]
fn payouts_go_only_to_enrolled_workers_own_cards_and_never_above_balance_or_owed() {
    let mut w = World::new();
    w.project_with_workers("P1", 2);
    w.given(vec![progress("P1", "G1", "10000", "3000", "2026-02-01"), payroll("P1", "2026-02", &[(1, "1000"), (2, "1500")])]);
    w.rejects(pay("P1", "W1", 9, "100", None), "PAYEE_NOT_ENROLLED");
    let Command::PayWage(mut other_card) = pay("P1", "W1", 1, "100", None) else { unreachable!() };
    other_card.card = card(2);
    w.rejects(Command::PayWage(other_card), "CARD_NOT_BOUND");
    w.rejects(pay("P1", "W1", 1, "3000.01", None), "INSUFFICIENT_WAGE_BALANCE");
    w.rejects(pay("P1", "W1", 1, "1000.01", Some("2026-02")), "EXCEEDS_PAYROLL_OWED");
    w.rejects(pay("P1", "W1", 1, "10", Some("2026-03")), "UNKNOWN_PAYROLL_LINE");
    w.rejects(pay("P1", "W1", 1, "0", None), "AMOUNT_NOT_POSITIVE");
    w.given(vec![pay("P1", "W1", 1, "600", Some("2026-02"))]);
    w.rejects(pay("P1", "W1", 1, "400", Some("2026-02")), "DUPLICATE_PAYMENT_NO");
    w.given(vec![pay("P1", "W2", 1, "400", Some("2026-02"))]);
    w.rejects(pay("P1", "W3", 1, "0.01", Some("2026-02")), "EXCEEDS_PAYROLL_OWED");
    assert_eq!(w.state.wage_balance(&pid("P1")), 200_000);
    assert_eq!(w.state.balance(&Account::Card(card(1))), 100_000);
    // An exited worker can still be paid what they are owed.
    w.given(vec![exit("P1", 2, "2026-02-28"), pay("P1", "W4", 2, "1500", Some("2026-02"))]);
}

#[test]
fn progress_payments_reject_duplicates_and_shares_above_the_total() {
    let mut w = World::new();
    w.project_with_workers("P1", 0);
    w.rejects(progress("P1", "G1", "100", "100.01", "2026-02-01"), "WAGE_SHARE_EXCEEDS_TOTAL");
    w.rejects(progress("P1", "G1", "0", "0", "2026-02-01"), "AMOUNT_NOT_POSITIVE");
    w.given(vec![progress("P1", "G1", "100", "10", "2026-02-01")]);
    w.rejects(progress("P1", "G1", "100", "30", "2026-03-01"), "DUPLICATE_PAYMENT_NO");
    w.rejects(topup("P1", "G1", "5"), "DUPLICATE_PAYMENT_NO");
}

#[test]
fn guarantee_letters_are_unique_cancellable_once_and_well_dated() {
    let mut w = World::new();
    w.given(vec![register("P1"), register("P2")]);
    w.rejects(letter("P1", "L1", "100", "2026-03-01", "2026-02-01"), "DATE_ORDER");
    w.rejects(letter("P1", "L1", "0", "2026-01-01", "2026-12-01"), "AMOUNT_NOT_POSITIVE");
    w.given(vec![letter("P1", "L1", "100", "2026-01-01", "2026-12-01")]);
    w.rejects(letter("P2", "L1", "100", "2026-01-01", "2026-12-01"), "DUPLICATE_LETTER_NO");
    let cancel = |p: &str, n: &str| Command::CancelGuaranteeLetter(CancelGuaranteeLetter { project: pid(p), letter_no: doc(n), date: d("2026-05-01") });
    w.rejects(cancel("P1", "L9"), "UNKNOWN_LETTER");
    w.rejects(cancel("P2", "L1"), "UNKNOWN_LETTER");
    w.given(vec![cancel("P1", "L1")]);
    w.rejects(cancel("P1", "L1"), "LETTER_CANCELLED");
}

#[test]
fn drawdowns_pay_named_workers_from_the_deposit_and_never_more_than_it_holds() {
    let mut w = World::new();
    w.project_with_workers("P1", 2);
    w.given(vec![deposit("P1", "D1", "1000", "2026-01-20"), payroll("P1", "2026-02", &[(1, "700"), (2, "700")])]);
    w.rejects(draw("P1", "O1", "2026-04-01", &[(1, "700", None), (2, "300.01", None)]), "DRAWDOWN_EXCEEDS_DEPOSIT");
    w.rejects(draw("P1", "O1", "2026-04-01", &[]), "EMPTY_DRAWDOWN");
    w.rejects(draw("P1", "O1", "2026-04-01", &[(9, "1", None)]), "PAYEE_NOT_ENROLLED");
    w.rejects(draw("P1", "O1", "2026-04-01", &[(1, "400", Some("2026-02")), (1, "400", Some("2026-02"))]), "EXCEEDS_PAYROLL_OWED");
    w.given(vec![draw("P1", "O1", "2026-04-01", &[(1, "700", Some("2026-02")), (2, "300", Some("2026-02"))])]);
    w.rejects(draw("P1", "O1", "2026-04-02", &[(2, "1", None)]), "DUPLICATE_ORDER_NO");
    assert_eq!(w.state.deposit_cash(&pid("P1")), 0);
    assert_eq!(w.state.lines.get(&(pid("P1"), per("2026-02"), worker(2))).unwrap().owed(), 40_000);
}

#[test]
fn release_and_closing_need_completion_no_arrears_and_something_to_release() {
    let mut w = World::new();
    w.project_with_workers("P1", 1);
    w.given(vec![deposit("P1", "D1", "1000", "2026-01-20"), topup("P1", "T1", "50"), payroll("P1", "2026-02", &[(1, "10")])]);
    let release = Command::ReleaseDeposit(ReleaseDeposit { project: pid("P1"), date: d("2026-12-20") });
    let close = Command::CloseWageAccount(CloseWageAccount { project: pid("P1"), date: d("2026-12-20") });
    w.rejects(release.clone(), "PROJECT_NOT_COMPLETED");
    w.rejects(close.clone(), "PROJECT_NOT_COMPLETED");
    w.given(vec![status("P1", ProjectStatus::Completed, "2026-12-01")]);
    w.rejects(release.clone(), "ARREARS_OUTSTANDING");
    w.rejects(close.clone(), "ARREARS_OUTSTANDING");
    w.rejects(deposit("P1", "D2", "5", "2026-12-02"), "PROJECT_COMPLETED");
    w.rejects(open_account_no("P1", "another account"), "PROJECT_COMPLETED");
    w.given(vec![pay("P1", "W1", 1, "10", Some("2026-02"))]);
    let ev = w.given(vec![release.clone(), close.clone()]);
    assert!(matches!(&ev[0], Event::DepositReleased(e) if e.amount == yuan("1000")));
    assert!(matches!(&ev[1], Event::WageAccountClosed(e) if e.residual == yuan("40")));
    // Contractor: -1000 deposit, -50 top-up, +1000 released, +40 residual = -10, the wage it funded.
    assert_eq!(w.state.balance(&Account::Contractor(gc())), -1_000);
    w.rejects(release, "DEPOSIT_EMPTY");
    w.rejects(close, "NO_WAGE_ACCOUNT");
}

#[test]
fn totals_beyond_the_ledgers_bound_are_refused_as_overflow() {
    let mut w = World::new();
    w.given(vec![register("P1")]);
    let max = anxin::domain::money::Money::MAX.to_string();
    let batch: Vec<Command> = (0..1_000).map(|i| deposit("P1", &format!("D{i}"), &max, "2026-01-20")).collect();
    w.given(batch);
    w.rejects(deposit("P1", "DX", "0.01", "2026-01-20"), "AMOUNT_OVERFLOW");
}

#[test]
fn a_batch_is_atomic_and_reports_the_failing_index() {
    let mut w = World::new();
    w.project_with_workers("P1", 1);
    let before = w.state.entries();
    let mut cmds: Vec<Command> = (0..499).map(|i| topup("P1", &format!("T{i}"), "1")).collect();
    cmds.push(pay("P1", "W1", 1, "1000", None)); // more than the 499 yuan topped up
    cmds.push(topup("P1", "TX", "1"));
    let e = w.try_batch(cmds).unwrap_err();
    assert_eq!(e.index, Some(499));
    assert_eq!(e.rejection.code(), "INSUFFICIENT_WAGE_BALANCE");
    assert!(before == w.state.entries(), "nothing of the batch remains");
    assert_eq!(w.next_seq, 1 + 2 + 2);
}

#[test]
fn empty_and_oversized_batches_are_refused_whole() {
    let mut w = World::new();
    assert_eq!(w.try_batch(vec![]).unwrap_err().rejection.code(), "EMPTY_BATCH");
    let e = w.try_batch(vec![register("P1"); BATCH_COMMANDS_MAX + 1]).unwrap_err();
    assert_eq!(e.rejection.code(), "BATCH_TOO_LARGE");
    assert_eq!(e.index, None);
}

#[test]
fn every_money_event_posts_legs_that_sum_to_zero() {
    let mut w = World::new();
    w.project_with_workers("P1", 1);
    let cmds = vec![
        deposit("P1", "D1", "500", "2026-01-20"),
        progress("P1", "G1", "1000", "300", "2026-02-01"),
        topup("P1", "T1", "10"),
        payroll("P1", "2026-02", &[(1, "200")]),
        pay("P1", "W1", 1, "100", Some("2026-02")),
        draw("P1", "O1", "2026-03-01", &[(1, "100", Some("2026-02"))]),
    ];
    for c in cmds {
        let ev = anxin::decide::decide(&w.state, &c).unwrap();
        let legs = w.state.legs(&ev);
        assert_eq!(legs.iter().map(|l| l.fen).sum::<i64>(), 0, "{}", ev.name());
        w.given(vec![c]);
    }
    assert_eq!(w.state.wage_balance(&pid("P1")), 21_000);
    assert_eq!(w.state.deposit_cash(&pid("P1")), 40_000);
    assert_eq!(w.state.balance(&Account::Owner(owner())), -100_000);
}

/// What a refused command asks for may be past every bound the ledger keeps (it is only
/// quoted in the message); what is recorded never is: every inflow of the wage account
/// is bounded, so a balance (and a closing residual recorded from it) always decodes.
#[test]
fn sums_past_every_bound_are_refused_never_a_crash_and_the_wage_balance_stays_bounded() {
    let mut w = World::new();
    w.given(vec![register("P1"), open_account("P1"), enrol("P1", 1), deposit("P1", "D1", "100", "2026-01-20")]);
    // 1,001 payees of 10^12 yuan each: far past any balance the ledger can hold.
    let payees: Vec<(u32, &str, Option<&str>)> = (0..1_001).map(|_| (1, "1000000000000", None)).collect();
    w.rejects(draw("P1", "O1", "2026-03-01", &payees), "DRAWDOWN_EXCEEDS_DEPOSIT");
    // The wage account filled to the ledger's bound by top-ups...
    let topups: Vec<Command> = (0..1_000).map(|i| topup("P1", &format!("T{i}"), "1000000000000")).collect();
    w.given(topups);
    assert_eq!(w.state.wage_balance(&pid("P1")), anxin::limits::TOTAL_FEN_MAX);
    // ... takes not one fen more, by a top-up or by a progress payment's wage share.
    w.rejects(topup("P1", "T-more", "0.01"), "AMOUNT_OVERFLOW");
    w.rejects(progress("P1", "G1", "1", "0.01", "2026-02-01"), "AMOUNT_OVERFLOW");
}
