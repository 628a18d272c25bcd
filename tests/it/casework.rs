//! The county's casework (issue 17) through a real server: a case from receipt to a
//! closure that cites the payouts that paid its workers, every refusal by reason code,
//! CASE_OVERDUE raised and cleared at both time limits, at past points too.

use anxin::api::pb;
use anxin::api::pb::command::Kind;

use crate::harness::{cmd, nid, pay, register, TestServer, COUNTY, OTHER_COUNTY};

fn open_case(no: &str, county: &str, project: &str, workers: &[u32], received_on: &str, summary: &str) -> pb::Command {
    cmd(Kind::OpenCase(pb::OpenCase {
        case_no: no.into(),
        county: county.into(),
        source: pb::CaseSource::Complaint as i32,
        received_on: received_on.into(),
        employer: crate::harness::gc().to_string(),
        project: project.into(),
        national_ids: workers.iter().map(|n| nid(*n)).collect(),
        amount_claimed: "12000".into(),
        summary: summary.into(),
    }))
}

fn decide(no: &str, date: &str, accepted: bool, reason: &str) -> pb::Command {
    cmd(Kind::DecideCase(pb::DecideCase { case_no: no.into(), county: COUNTY.into(), date: date.into(), accepted, reason: reason.into() }))
}

fn close(no: &str, date: &str, outcome: pb::CaseOutcome, recovered: &str, payouts: &[u64]) -> pb::Command {
    cmd(Kind::CloseCase(pb::CloseCase { case_no: no.into(), county: COUNTY.into(), date: date.into(), outcome: outcome as i32, recovered: recovered.into(), payout_seqs: payouts.to_vec(), note: String::new() }))
}

fn paid_on(p: &str, no: &str, n: u32, amount: &str, date: &str) -> pb::Command {
    let mut c = pay(p, no, n, amount, "");
    if let Some(Kind::PayWage(w)) = &mut c.kind {
        w.date = date.into();
    }
    c
}

fn flags_q(as_of: &str, at_seq: u64) -> pb::ListFlagsRequest {
    pb::ListFlagsRequest { county: COUNTY.into(), project: String::new(), as_of: as_of.into(), at_seq, page_size: 0, page_token: String::new() }
}

fn cases_q(as_of: &str) -> pb::ListCasesRequest {
    pb::ListCasesRequest { county: COUNTY.into(), as_of: as_of.into(), at_seq: 0, page_size: 0, page_token: String::new() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_runs_from_receipt_to_a_closure_that_cites_the_payouts_that_paid_its_workers() {
    use pb::CaseOutcome::{NoArrears, Recovered};
    let s = TestServer::start().await;
    let county = format!("county:{COUNTY}");
    s.setup_project(3).await;
    // Worker 99 complains without ever having been enrolled: a reference, like the others.
    let opened = s.ok(&county, "c1", vec![open_case("TS-1", COUNTY, "P1", &[1, 2, 99], "2026-02-02", "1月工资未发")]).await;
    let p1 = s.ok("bank:ICBC", "pay", vec![paid_on("P1", "DF-1", 1, "5000", "2026-02-10"), paid_on("P1", "DF-2", 2, "4000", "2026-02-11"), paid_on("P1", "DF-3", 3, "1000", "2026-02-11")]).await;
    let (df1, df2, df3) = (p1.first_seq, p1.first_seq + 1, p1.first_seq + 2);
    let mut q = s.query(&county).await;

    // Received on Monday 2026-02-02: to be accepted or declined within 5 working days,
    // by 2026-02-09; yellow from the 10th.
    let codes = |fs: &[pb::Flag]| fs.iter().filter(|f| f.code == "CASE_OVERDUE").cloned().collect::<Vec<_>>();
    assert!(codes(&q.list_flags(flags_q("2026-02-09", 0)).await.unwrap().into_inner().flags).is_empty());
    let late = codes(&q.list_flags(flags_q("2026-02-10", 0)).await.unwrap().into_inner().flags);
    assert_eq!(late.len(), 1, "{late:?}");
    assert_eq!((late[0].grade.as_str(), late[0].since.as_str(), late[0].case_no.as_str(), late[0].project.as_str()), ("yellow", "2026-02-10", "TS-1", "P1"));
    assert_eq!(late[0].evidence, vec![opened.first_seq]);

    // Refusals, each by its code; nothing of a refused batch is recorded.
    let refused = |who: &'static str, id: &'static str, c: pb::Command| {
        let s = &s;
        async move { s.refused(who, id, vec![c]).await }
    };
    assert_eq!(refused("county:620121", "r1", close("TS-1", "2026-02-12", Recovered, "5000", &[df1])).await.1, "CASE_NOT_ACCEPTED");
    let (code, reason, _) = refused("county:620121", "r2", decide("TS-1", "2026-02-09", false, "")).await;
    assert_eq!((code, reason.as_str()), (tonic::Code::InvalidArgument, "REASON_REQUIRED"));
    assert_eq!(refused("county:620121", "r3", decide("TS-1", "2026-02-01", true, "")).await.1, "DATE_ORDER");
    let (code, reason, _) = refused("county:620121", "r4", open_case("TS-1", COUNTY, "P1", &[1], "2026-02-03", "")).await;
    assert_eq!((code, reason.as_str()), (tonic::Code::AlreadyExists, "CASE_EXISTS"));
    let (code, reason, _) = refused("bank:ICBC", "r5", open_case("TS-9", COUNTY, "P1", &[1], "2026-02-03", "")).await;
    assert_eq!((code, reason.as_str()), (tonic::Code::PermissionDenied, "NOT_PERMITTED"));
    let (code, reason, _) = s.refused(&format!("county:{OTHER_COUNTY}"), "r6", vec![open_case("TS-9", COUNTY, "P1", &[1], "2026-02-03", "")]).await;
    assert_eq!((code, reason.as_str()), (tonic::Code::PermissionDenied, "NOT_PERMITTED"));
    s.ok(&format!("county:{OTHER_COUNTY}"), "p9", vec![register("P9", OTHER_COUNTY)]).await;
    assert_eq!(refused("county:620121", "r7", open_case("TS-9", COUNTY, "P9", &[1], "2026-02-03", "")).await.1, "PROJECT_OUTSIDE_COUNTY");
    assert_eq!(refused("county:620121", "r8", open_case("TS-9", COUNTY, "P1", &[1, 1], "2026-02-03", "")).await.1, "INVALID_CASE_WORKERS");
    assert_eq!(refused("county:620121", "r9", open_case("TS-9", COUNTY, "P1", &[1], "2026-02-03", "联系电话 13912345678")).await.1, "PERSONAL_NUMBER_IN_TEXT");
    assert_eq!(refused("county:620121", "r10", open_case("TS-9", COUNTY, "P1", &[], "2026-02-03", "")).await.1, "INVALID_CASE_WORKERS");

    // Accepted on the last day: at a position before the decision the flag is still
    // there, at the latest it never was (the decision is dated within the limit).
    let accepted = s.ok(&county, "accept", vec![decide("TS-1", "2026-02-09", true, "")]).await;
    assert!(codes(&q.list_flags(flags_q("2026-02-10", 0)).await.unwrap().into_inner().flags).is_empty());
    assert_eq!(codes(&q.list_flags(flags_q("2026-02-10", accepted.first_seq - 1)).await.unwrap().into_inner().flags).len(), 1);
    assert_eq!(refused("county:620121", "r11", decide("TS-1", "2026-02-10", true, "")).await.1, "CASE_ALREADY_DECIDED");

    // A closure must prove what it says was recovered.
    let not_citable = [
        (close("TS-1", "2026-02-20", Recovered, "1000", &[df3]), "PAYOUT_NOT_CITABLE"),            // worker 3 is not in the case
        (close("TS-1", "2026-02-20", Recovered, "5000", &[opened.first_seq]), "PAYOUT_NOT_CITABLE"), // not a payout
        (close("TS-1", "2026-02-20", Recovered, "9000", &[df1]), "RECOVERED_NOT_CITED"),           // cites 5,000
        (close("TS-1", "2026-02-20", Recovered, "9000", &[df1, df1, df2]), "PAYOUT_ALREADY_CITED"), // twice
        (close("TS-1", "2026-02-20", Recovered, "0", &[]), "RECOVERED_NOT_CITED"),
        (close("TS-1", "2026-02-20", NoArrears, "9000", &[df1, df2]), "RECOVERED_NOT_CITED"),
        (close("TS-1", "2026-02-10", Recovered, "9000", &[df1, df2]), "PAYOUT_NOT_CITABLE"),       // DF-2 paid after the closure
        (close("TS-1", "2026-02-08", Recovered, "9000", &[df1, df2]), "DATE_ORDER"),               // before its acceptance
    ];
    for (i, (c, want)) in not_citable.into_iter().enumerate() {
        let (_, reason, _) = s.refused(&county, &format!("bad-close-{i}"), vec![c]).await;
        assert_eq!(reason, want, "closure {i}");
    }
    let closed = s.ok(&county, "close", vec![close("TS-1", "2026-02-20", Recovered, "9000", &[df1, df2])]).await;
    assert_eq!(refused("county:620121", "r12", close("TS-1", "2026-02-21", NoArrears, "0", &[])).await.1, "CASE_CLOSED");

    // A payout pays one case's claim only.
    s.ok(&county, "c2", vec![open_case("TS-2", COUNTY, "", &[1], "2026-02-05", ""), decide("TS-2", "2026-02-06", true, "")]).await;
    let (code, reason, _) = refused("county:620121", "r13", close("TS-2", "2026-02-20", Recovered, "5000", &[df1])).await;
    assert_eq!((code, reason.as_str()), (tonic::Code::AlreadyExists, "PAYOUT_ALREADY_CITED"));

    // The cases as the county reads them, and its figures by source.
    let cases = q.list_cases(cases_q("2026-03-01")).await.unwrap().into_inner().cases;
    assert_eq!(cases.len(), 2);
    let c1 = &cases[0];
    assert_eq!((c1.case_no.as_str(), c1.status.as_str(), c1.recovered.as_str(), c1.workers_paid, c1.workers), ("TS-1", "closed", "9000.00", 2, 3));
    assert_eq!(c1.payout_seqs, vec![df1, df2]);
    assert_eq!(c1.records, vec![opened.first_seq, accepted.first_seq, closed.first_seq]);
    assert_eq!(c1.outcome, Recovered as i32);
    let sum = q.get_county_summary(pb::GetCountySummaryRequest { county: COUNTY.into(), as_of: "2026-03-01".into(), at_seq: 0 }).await.unwrap().into_inner();
    let complaints = sum.casework.iter().find(|f| f.source == "complaint").expect("complaints");
    assert_eq!((complaints.received, complaints.accepted, complaints.closed, complaints.recovered.as_str(), complaints.workers_paid), (2, 2, 1, "9000.00", 2));
    // Before the closure is dated, the case is open and recovered nothing.
    let then = q.list_cases(cases_q("2026-02-19")).await.unwrap().into_inner().cases;
    assert_eq!((then[0].status.as_str(), then[0].recovered.as_str()), ("accepted", "0.00"));

    // TS-2, accepted on 2026-02-06, must close within 60 working days: red the day after;
    // an extension by 30 clears it.
    let close_by = cases[1].close_by.clone();
    let next = anxin::domain::date::Date::parse(&close_by).unwrap().add_days(1).to_string();
    let red = codes(&q.list_flags(flags_q(&next, 0)).await.unwrap().into_inner().flags);
    assert_eq!(red.len(), 1, "{red:?}");
    assert_eq!((red[0].grade.as_str(), red[0].since.as_str(), red[0].case_no.as_str(), red[0].project.as_str()), ("red", next.as_str(), "TS-2", ""));
    assert_eq!(sum.flags_by_code.get("CASE_OVERDUE"), None, "not yet on 2026-03-01");
    let sum_late = q.get_county_summary(pb::GetCountySummaryRequest { county: COUNTY.into(), as_of: next.clone(), at_seq: 0 }).await.unwrap().into_inner();
    assert_eq!(sum_late.flags_by_code.get("CASE_OVERDUE"), Some(&1));
    s.ok(&county, "extend", vec![cmd(Kind::ExtendCase(pb::ExtendCase { case_no: "TS-2".into(), county: COUNTY.into(), date: "2026-04-01".into(), reason: "经批准延长".into() }))]).await;
    assert!(codes(&q.list_flags(flags_q(&next, 0)).await.unwrap().into_inner().flags).is_empty());
    let extended = q.list_cases(cases_q(&next)).await.unwrap().into_inner().cases;
    assert!(extended[1].close_by > close_by, "{} after {close_by}", extended[1].close_by);
    let again = cmd(Kind::ExtendCase(pb::ExtendCase { case_no: "TS-2".into(), county: COUNTY.into(), date: "2026-04-02".into(), reason: "再次".into() }));
    assert_eq!(s.refused(&county, "r14", vec![again]).await.1, "CASE_ALREADY_EXTENDED");

    // Who may read the casework: the county and the auditor; a bank may not.
    let denied = s.query("bank:ICBC").await.list_cases(cases_q("2026-03-01")).await.unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    assert!(codes(&s.query("bank:ICBC").await.list_flags(pb::ListFlagsRequest { county: String::new(), ..flags_q(&next, 0) }).await.unwrap().into_inner().flags).is_empty());
    assert_eq!(s.query("auditor").await.list_cases(cases_q("2026-03-01")).await.unwrap().into_inner().cases.len(), 2);

    // No complainant's ID anywhere in the log: only references.
    let records = crate::harness::read_and_verify(&s).await;
    for r in &records {
        let bytes = r.encode();
        for n in [1, 2, 99] {
            let id = nid(n);
            assert!(!bytes.windows(id.len()).any(|w| w == id.as_bytes()), "record {} holds a national ID in clear", r.seq);
        }
    }
    s.stop().await;
}

mod property {
    use std::collections::{BTreeMap, BTreeSet};

    use proptest::prelude::*;

    use anxin::domain::command::*;
    use anxin::domain::ids::CountyCode;
    use anxin::domain::money::Fen;

    use crate::common::*;

    fn county() -> CountyCode {
        CountyCode::parse("620121").unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Whatever closures are attempted (right sums, wrong sums, payouts of other
        /// workers, payouts cited before, records that are no payouts), every case the
        /// ledger closed recovered exactly what the payouts it cites paid its workers, and
        /// no payout is cited by two cases.
        #[test]
        fn a_closed_case_recovered_exactly_what_its_cited_payouts_paid_and_no_payout_is_cited_twice(
            ops in prop::collection::vec((0u8..4, 0u32..6, 1i64..50_000, prop::collection::vec(0usize..40, 0..4), prop::bool::weighted(0.8)), 1..50),
        ) {
            let mut w = World::new();
            let mut events: BTreeMap<u64, Event> = BTreeMap::new();
            let setup = vec![register("P1"), open_account("P1"), topup("P1", "T0", "900000"), enrol("P1", 1), enrol("P1", 2), enrol("P1", 3), enrol("P1", 4), enrol("P1", 5)];
            for e in w.given(setup) {
                events.insert(events.len() as u64 + 1, e);
            }
            let mut cases = 0u32;
            for (i, (op, n, amount, picks, exact)) in ops.iter().enumerate() {
                let date = d("2026-03-01").add_days(i as i64);
                let no = format!("N{i}");
                let case_no = |k: u32| doc(&format!("C{k}"));
                let cmds = match op {
                    0 => {
                        let Command::PayWage(mut p) = pay("P1", &no, 1 + n % 5, &anxin::domain::money::format_fen(*amount), None) else { unreachable!() };
                        p.date = date;
                        vec![Command::PayWage(p)]
                    }
                    1 => {
                        cases += 1;
                        let workers = (1..=5).filter(|k| (n + k) % 2 == 0 || *k == 1 + n % 5).map(worker).collect();
                        vec![
                            Command::OpenCase(OpenCase { case_no: case_no(cases), county: county(), source: CaseSource::Complaint, received_on: d("2026-03-01"), employer: gc(), project: None, workers, amount_claimed: yuan("0"), summary: None }),
                            Command::DecideCase(DecideCase { case_no: case_no(cases), county: county(), date, accepted: true, reason: None }),
                        ]
                    }
                    _ => {
                        // Cite records picked among those so far; claim their true sum to
                        // the case's workers, or a wrong one.
                        let k = 1 + n % cases.max(1);
                        // Mostly payouts, now and then any record.
                        let payouts: Vec<u64> = events.iter().filter(|(_, e)| matches!(e, Event::WagePaid(_))).map(|(s, _)| *s).collect();
                        let seqs: Vec<u64> = picks
                            .iter()
                            .map(|p| if p % 7 == 0 || payouts.is_empty() { 1 + (*p as u64) % events.len() as u64 } else { payouts[p % payouts.len()] })
                            .collect();
                        let case = w.state.cases.get(&(county(), case_no(k)));
                        let mine: BTreeSet<_> = case.map(|c| c.open.workers.iter().copied().collect()).unwrap_or_default();
                        let truth: Fen = seqs.iter().collect::<BTreeSet<_>>().into_iter().map(|s| paid_to(&events[s], &mine)).sum();
                        let claim = if *exact { truth } else { truth + amount };
                        vec![Command::CloseCase(CloseCase { case_no: case_no(k), county: county(), date, outcome: CaseOutcome::Recovered, recovered: yuan(&anxin::domain::money::format_fen(claim)), payouts: seqs, note: None })]
                    }
                };
                if let Ok(evs) = w.try_batch(cmds) {
                    for e in evs {
                        events.insert(events.len() as u64 + 1, e);
                    }
                }
            }
            if std::env::var("ANXIN_PROP_STATS").is_ok() {
                eprintln!("closed {}", events.values().filter(|e| matches!(e, Event::CaseClosed(_))).count());
            }
            let mut cited_by: BTreeMap<u64, String> = BTreeMap::new();
            for e in events.values() {
                let Event::CaseClosed(c) = e else { continue };
                let case = w.state.cases.get(&(c.county, c.case_no.clone())).unwrap();
                let mine: BTreeSet<_> = case.open.workers.iter().copied().collect();
                let paid: Fen = c.payouts.iter().map(|s| paid_to(&events[s], &mine)).sum();
                prop_assert_eq!(paid, c.recovered.fen(), "case {}", c.case_no);
                for s in &c.payouts {
                    prop_assert!(paid_to(&events[s], &mine) > 0, "record {} paid none of case {}'s workers", s, c.case_no);
                    prop_assert!(cited_by.insert(*s, c.case_no.to_string()).is_none(), "record {} cited twice", s);
                }
            }
        }
    }

    /// What an event paid to any of `workers` (a payout or a drawdown's payees).
    fn paid_to(e: &Event, workers: &BTreeSet<anxin::domain::ids::WorkerRef>) -> Fen {
        match e {
            Event::WagePaid(p) if workers.contains(&p.worker) => p.amount.fen(),
            Event::DepositDrawn(dd) => dd.payees.iter().filter(|p| workers.contains(&p.worker)).map(|p| p.amount.fen()).sum(),
            _ => 0,
        }
    }
}
