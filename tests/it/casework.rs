//! The county's casework (issue 17) through a real server: a case from receipt to a
//! closure that cites the payouts that paid its workers, every refusal by reason code,
//! CASE_OVERDUE raised and cleared at both time limits, at past points too.

use anxin::api::pb;
use anxin::api::pb::command::Kind;

use crate::common::reads_chinese;
use crate::harness::{cmd, nid, pay, register, TestServer, COUNTY, OTHER_COUNTY};

pub(crate) fn open_case(no: &str, county: &str, project: &str, workers: &[u32], received_on: &str, summary: &str) -> pb::Command {
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

pub(crate) fn decide(no: &str, date: &str, accepted: bool, reason: &str) -> pb::Command {
    cmd(Kind::DecideCase(pb::DecideCase { case_no: no.into(), county: COUNTY.into(), date: date.into(), accepted, reason: reason.into() }))
}

pub(crate) fn close(no: &str, date: &str, outcome: pb::CaseOutcome, recovered: &str, payouts: &[u64]) -> pb::Command {
    cmd(Kind::CloseCase(pb::CloseCase { case_no: no.into(), county: COUNTY.into(), date: date.into(), outcome: outcome as i32, recovered: recovered.into(), payout_seqs: payouts.to_vec(), note: String::new() }))
}

pub(crate) fn paid_on(p: &str, no: &str, n: u32, amount: &str, date: &str) -> pb::Command {
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
    assert!(reads_chinese(&late[0].detail_zh) && late[0].detail_zh.contains("TS-1"), "{:?}", late[0].detail_zh);

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
    // Closed no earlier than its extension.
    assert_eq!(s.refused(&county, "r15", vec![close("TS-2", "2026-03-20", NoArrears, "0", &[])]).await.1, "DATE_ORDER");

    // A refused batch leaves no trace: a valid closure citing DF-4, then a command that
    // fails, is taken back whole, so DF-4 is still free for another case.
    let df4 = s.ok("bank:ICBC", "pay-4", vec![paid_on("P1", "DF-4", 1, "700", "2026-04-02")]).await.first_seq;
    let (_, reason, index) = s.refused(&county, "r16", vec![close("TS-2", "2026-04-03", Recovered, "700", &[df4]), decide("TS-1", "2026-04-03", true, "")]).await;
    assert_eq!((reason.as_str(), index), ("CASE_ALREADY_DECIDED", Some(1)));
    let c2 = &q.list_cases(cases_q("2026-04-05")).await.unwrap().into_inner().cases[1];
    assert_eq!((c2.status.as_str(), c2.payout_seqs.len()), ("accepted", 0), "the closure was taken back");
    s.ok(&county, "c3", vec![open_case("TS-3", COUNTY, "", &[1], "2026-04-01", ""), decide("TS-3", "2026-04-01", true, ""), close("TS-3", "2026-04-03", Recovered, "700", &[df4])]).await;

    // An extension made after the limit ran out does not revive it: TS-4 stays red.
    s.ok(&county, "c4", vec![open_case("TS-4", COUNTY, "", &[2], "2026-02-02", ""), decide("TS-4", "2026-02-03", true, "")]).await;
    let by = q.list_cases(cases_q("2026-03-01")).await.unwrap().into_inner().cases.into_iter().find(|c| c.case_no == "TS-4").unwrap().close_by;
    let late_ext = anxin::domain::date::Date::parse(&by).unwrap().add_days(3).to_string();
    s.ok(&county, "ext4", vec![cmd(Kind::ExtendCase(pb::ExtendCase { case_no: "TS-4".into(), county: COUNTY.into(), date: late_ext.clone(), reason: "逾期后延长".into() }))]).await;
    let ts4 = q.list_cases(cases_q(&late_ext)).await.unwrap().into_inner().cases.into_iter().find(|c| c.case_no == "TS-4").unwrap();
    assert_eq!((ts4.close_by.as_str(), ts4.overdue_grade.as_str(), ts4.extended_on.as_str()), (by.as_str(), "red", late_ext.as_str()));

    // Who may read the casework: the county and the auditor; a bank may not.
    let denied = s.query("bank:ICBC").await.list_cases(cases_q("2026-03-01")).await.unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    assert!(codes(&s.query("bank:ICBC").await.list_flags(pb::ListFlagsRequest { county: String::new(), ..flags_q(&next, 0) }).await.unwrap().into_inner().flags).is_empty());
    assert_eq!(s.query("auditor").await.list_cases(cases_q("2026-03-01")).await.unwrap().into_inner().cases.len(), 3, "TS-1, TS-2, TS-4");
    let report = |c: &str| pb::GetCountyReportRequest { county: c.into(), from: "2026-01-01".into(), to: "2026-03-31".into(), at_seq: 0 };
    assert_eq!(s.query("bank:ICBC").await.get_county_report(report(COUNTY)).await.unwrap_err().code(), tonic::Code::PermissionDenied);
    assert_eq!(s.query(&format!("county:{OTHER_COUNTY}")).await.get_county_report(report(COUNTY)).await.unwrap_err().code(), tonic::Code::PermissionDenied);
    // The report counts the cases received in the period: TS-1, TS-2 and TS-4 (TS-3 came
    // in April); TS-1 closed.
    let r = q.get_county_report(report(COUNTY)).await.unwrap().into_inner();
    let c = r.cases.iter().find(|f| f.source == "complaint").expect("complaints");
    assert_eq!((c.received, c.closed, c.recovered.as_str(), c.workers_paid), (3, 1, "9000.00", 2));
    assert_eq!((r.wages_paid.as_str(), r.workers_paid), ("10000.00", 3), "DF-1, DF-2 and DF-3 in the period");
    let before = q.get_county_report(pb::GetCountyReportRequest { to: "2026-02-10".into(), ..report(COUNTY) }).await.unwrap().into_inner();
    assert_eq!((before.wages_paid.as_str(), before.workers_paid), ("5000.00", 1), "only DF-1 is dated by 2026-02-10");

    // A bank or a contractor reading the log gets the casework as header and hash only:
    // it still checks the whole chain (and the Merkle tree) without learning who
    // complained; the auditor gets every byte.
    {
        use tokio_stream::StreamExt;
        let full: Vec<pb::RecordBytes> = s.audit("auditor").await.read_events(pb::ReadEventsRequest { from_seq: 1, to_seq: 0 }).await.unwrap().into_inner().map(|r| r.unwrap()).collect().await;
        let cp = anxin::api::convert::checkpoint_from_pb(&s.audit("auditor").await.get_checkpoint(pb::GetCheckpointRequest::default()).await.unwrap().into_inner()).unwrap();
        assert_eq!(cp.checkpoint.tree_size, full.len() as u64);
        for who in ["bank:ICBC".to_owned(), format!("contractor:{}", crate::harness::gc())] {
            let seen: Vec<pb::RecordBytes> = s.audit(&who).await.read_events(pb::ReadEventsRequest { from_seq: 1, to_seq: 0 }).await.unwrap().into_inner().map(|r| r.unwrap()).collect().await;
            assert_eq!(seen.len(), full.len());
            let mut v = anxin::audit::Catchup::from_genesis(crate::harness::LEDGER_ID);
            let mut withheld = 0;
            for (a, b) in full.iter().zip(&seen) {
                assert_eq!((a.seq, &a.hash), (b.seq, &b.hash));
                let casework = anxin::chain::record::Record::decode(&a.canonical).unwrap().event.is_casework();
                // Casework is always withheld from them (what else is, `api::who_reads_which_records`).
                assert!(b.withheld || !casework, "record {}", a.seq);
                if b.withheld {
                    withheld += 1;
                    assert_eq!(b.canonical.len(), anxin::chain::record::HEADER_BYTES);
                    assert_eq!(b.leaf_hash, anxin::chain::merkle::leaf_hash(&a.canonical).to_vec(), "the leaf of the withheld bytes");
                    v.feed_withheld(&b.canonical, b.hash.clone().try_into().unwrap(), b.leaf_hash.clone().try_into().unwrap()).unwrap();
                } else {
                    assert_eq!(a.canonical, b.canonical);
                    v.feed(&b.canonical).unwrap();
                }
            }
            assert!(withheld >= 5, "{who}: {withheld}");
            // Through the withheld records' hashes and leaves, the reader's tree is the signed one.
            v.finish(&cp, "pinned").unwrap();
            // A forged leaf for a withheld record: the chain still holds, the signed root does not.
            let mut lied = anxin::audit::Catchup::from_genesis(crate::harness::LEDGER_ID);
            let first = seen.iter().position(|r| r.withheld).unwrap();
            for (i, r) in seen.iter().enumerate() {
                if r.withheld {
                    let leaf = if i == first { [9; 32] } else { r.leaf_hash.clone().try_into().unwrap() };
                    lied.feed_withheld(&r.canonical, r.hash.clone().try_into().unwrap(), leaf).unwrap();
                } else {
                    lied.feed(&r.canonical).unwrap();
                }
            }
            assert!(matches!(lied.finish(&cp, "pinned"), Err(anxin::audit::AuditError::RootMismatch { .. })), "a forged withheld leaf is caught by the signed root");
            // A forged hash for a withheld record breaks the next record's link.
            let mut forged = anxin::audit::Catchup::from_genesis(crate::harness::LEDGER_ID);
            let first = seen.iter().position(|r| r.withheld).unwrap();
            for r in &seen[..first] {
                forged.feed(&r.canonical).unwrap();
            }
            forged.feed_withheld(&seen[first].canonical, [7; 32], seen[first].leaf_hash.clone().try_into().unwrap()).unwrap();
            let next = &seen[first + 1];
            let broken = if next.withheld { forged.feed_withheld(&next.canonical, next.hash.clone().try_into().unwrap(), next.leaf_hash.clone().try_into().unwrap()) } else { forged.feed(&next.canonical).map(drop) };
            assert!(broken.is_err(), "a forged withheld hash is caught at the next record");
        }
    }

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

fn issue(no: &str, amount: &str, workers: u32, largest: &str, deadline: &str) -> pb::Command {
    cmd(Kind::IssueOrder(pb::IssueOrder {
        order_no: no.into(),
        county: COUNTY.into(),
        project: "P1".into(),
        employer: crate::harness::gc().to_string(),
        case_no: String::new(),
        issued_on: "2026-03-02".into(),
        deadline: deadline.into(),
        amount: amount.into(),
        workers,
        largest: largest.into(),
        demand: "限期支付拖欠工资".into(),
    }))
}

fn resolve(no: &str, date: &str, complied: bool, records: &[u64]) -> pb::Command {
    cmd(Kind::ResolveOrder(pb::ResolveOrder { order_no: no.into(), county: COUNTY.into(), date: date.into(), complied, record_seqs: records.to_vec(), note: String::new() }))
}

fn flags_of(fs: &[pb::Flag], code: &str) -> Vec<pb::Flag> {
    let of: Vec<pb::Flag> = fs.iter().filter(|f| f.code == code).cloned().collect();
    assert!(of.iter().all(|f| reads_chinese(&f.detail_zh)), "{of:?}");
    of
}

/// Orders to pay: unmet past the deadline (ORDER_UNMET), at the referral thresholds
/// (REFERRAL_DUE) until referred, complied with only by payouts of the project that cure
/// the amount; the credit list raises a listed contractor's new projects' deposit; every
/// refusal by its code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_go_unmet_are_referred_list_their_employer_and_are_cured_only_by_payouts() {
    let s = TestServer::start().await;
    let county = format!("county:{COUNTY}");
    s.setup_project(3).await;
    let mut q = s.query(&county).await;
    let flags = |as_of: &str, at_seq: u64| pb::ListFlagsRequest { project: "P1".into(), ..flags_q(as_of, at_seq) };

    // Two orders: a small one (one worker, ¥3,000: below the referral thresholds) and a
    // large one (12 workers, ¥36,000: at the total threshold).
    let small = s.ok(&county, "o1", vec![issue("LZ-1", "3000", 1, "3000", "2026-03-16")]).await;
    let large = s.ok(&county, "o2", vec![issue("LZ-2", "36000", 12, "4000", "2026-03-16")]).await;
    assert!(flags_of(&q.list_flags(flags("2026-03-16", 0)).await.unwrap().into_inner().flags, "ORDER_UNMET").is_empty(), "within the deadline");
    let after = q.list_flags(flags("2026-03-17", 0)).await.unwrap().into_inner().flags;
    let unmet = flags_of(&after, "ORDER_UNMET");
    assert_eq!(unmet.len(), 2, "{after:?}");
    assert!(unmet.iter().all(|f| f.grade == "red" && f.since == "2026-03-17"));
    let due = flags_of(&after, "REFERRAL_DUE");
    assert_eq!(due.len(), 1, "only the large order meets a threshold: {due:?}");
    assert_eq!((due[0].gap.as_str(), due[0].count, due[0].evidence.clone()), ("36000.00", 12, vec![large.first_seq]));

    // Refusals.
    let r = |id: &'static str, c: pb::Command| {
        let (s, county) = (&s, county.clone());
        async move { s.refused(&county, id, vec![c]).await.1 }
    };
    assert_eq!(r("x1", issue("LZ-1", "1", 1, "1", "2026-03-16")).await, "ORDER_EXISTS");
    assert_eq!(r("x2", issue("LZ-9", "100", 1, "100", "2026-03-01")).await, "DATE_ORDER");
    assert_eq!(r("x3", issue("LZ-9", "100", 1, "200", "2026-03-16")).await, "INVALID_ORDER_AMOUNTS");
    assert_eq!(r("x4", issue("LZ-9", "100", 0, "0", "2026-03-16")).await, "INVALID_ORDER_AMOUNTS");
    let refer = |no: &str, date: &str| cmd(Kind::ReferOrder(pb::ReferOrder { order_no: no.into(), county: COUNTY.into(), date: date.into(), police_ref: "GA-1".into() }));
    assert_eq!(r("x5", refer("LZ-2", "2026-03-16")).await, "ORDER_NOT_UNMET");
    assert_eq!(r("x6", refer("LZ-8", "2026-03-20")).await, "UNKNOWN_ORDER");
    // A payout of the project cures the small order; one made before the order does not,
    // nor one too small.
    let before = s.ok("bank:ICBC", "pay-0", vec![paid_on("P1", "DF-0", 1, "3000", "2026-03-01")]).await;
    let pays = s.ok("bank:ICBC", "pay-1", vec![paid_on("P1", "DF-1", 1, "2000", "2026-03-18"), paid_on("P1", "DF-2", 2, "1000", "2026-03-18")]).await;
    assert_eq!(r("x7", resolve("LZ-1", "2026-03-19", true, &[before.first_seq])).await, "PAYOUT_NOT_CITABLE");
    assert_eq!(r("x8", resolve("LZ-1", "2026-03-19", true, &[pays.first_seq])).await, "ORDER_NOT_CURED");
    assert_eq!(r("x9", resolve("LZ-1", "2026-03-19", true, &[small.first_seq])).await, "PAYOUT_NOT_CITABLE");
    assert_eq!(r("x10", resolve("LZ-1", "2026-03-19", false, &[pays.first_seq])).await, "ORDER_NOT_CURED");
    let cured = s.ok(&county, "cure", vec![resolve("LZ-1", "2026-03-19", true, &[pays.first_seq, pays.first_seq + 1])]).await;
    assert_eq!(r("x11", resolve("LZ-1", "2026-03-20", false, &[])).await, "ORDER_COMPLIED");
    let now = q.list_flags(flags("2026-03-20", 0)).await.unwrap().into_inner().flags;
    assert_eq!(flags_of(&now, "ORDER_UNMET").len(), 1, "the small order is cured: {now:?}");
    // Its interval: opened the day after the deadline, cleared by the compliance.
    let h = q.get_project_history(pb::GetProjectHistoryRequest { project: "P1".into(), as_of: "2026-03-20".into(), at_seq: 0 }).await.unwrap().into_inner();
    let i = h.flag_intervals.iter().find(|i| i.code == "ORDER_UNMET" && !i.cleared.is_empty()).unwrap_or_else(|| panic!("{:?}", h.flag_intervals));
    assert_eq!((i.opened.as_str(), i.cleared.as_str(), i.cleared_by.clone()), ("2026-03-17", "2026-03-19", vec![cured.first_seq]));

    // The large order: found not complied with, referred (REFERRAL_DUE clears), its
    // employer listed; a project the listed contractor registers then must hold twice
    // the deposit rate, even below ¥3M.
    s.ok(&county, "unmet", vec![resolve("LZ-2", "2026-03-17", false, &[])]).await;
    s.ok(&county, "refer", vec![refer("LZ-2", "2026-03-20")]).await;
    assert_eq!(r("x12", refer("LZ-2", "2026-03-21")).await, "ORDER_REFERRED");
    // What became of the referral: first whether the police opened a case, then how it
    // ended; in date order; nothing after a final outcome; the county's record alone.
    let outcome = |no: &str, date: &str, o: i32| {
        cmd(Kind::RecordReferralOutcome(pb::RecordReferralOutcome { order_no: no.into(), county: COUNTY.into(), date: date.into(), outcome: o, reference: "LA-2026-7".into(), note: String::new() }))
    };
    use pb::ReferralOutcome as O;
    assert_eq!(r("y1", outcome("LZ-1", "2026-03-24", O::Filed as i32)).await, "ORDER_NOT_REFERRED");
    assert_eq!(r("y2", outcome("LZ-9", "2026-03-24", O::Filed as i32)).await, "UNKNOWN_ORDER");
    assert_eq!(r("y3", outcome("LZ-2", "2026-03-24", O::Convicted as i32)).await, "REFERRAL_NOT_FILED");
    assert_eq!(r("y4", outcome("LZ-2", "2026-03-24", O::Dropped as i32)).await, "REFERRAL_NOT_FILED");
    assert_eq!(r("y5", outcome("LZ-2", "2026-03-19", O::Filed as i32)).await, "DATE_ORDER");
    assert_eq!(r("y6", outcome("LZ-2", "2026-03-24", 0)).await, "UNKNOWN_ENUM_VALUE");
    assert_eq!(s.refused("bank:ICBC", "y7", vec![outcome("LZ-2", "2026-03-24", O::Filed as i32)]).await.1, "NOT_PERMITTED");
    // A refused batch takes its outcome back: the same outcome is then accepted.
    assert_eq!(s.refused(&county, "y12", vec![outcome("LZ-2", "2026-03-24", O::Filed as i32), outcome("LZ-9", "2026-03-24", O::Filed as i32)]).await.1, "UNKNOWN_ORDER");
    let filed = s.ok(&county, "filed", vec![outcome("LZ-2", "2026-03-24", O::Filed as i32)]).await;
    assert_eq!(r("y8", outcome("LZ-2", "2026-03-25", O::NotFiled as i32)).await, "REFERRAL_ALREADY_FILED");
    assert_eq!(r("y9", outcome("LZ-2", "2026-03-25", O::Filed as i32)).await, "REFERRAL_ALREADY_FILED");
    assert_eq!(r("y10", outcome("LZ-2", "2026-03-23", O::Convicted as i32)).await, "DATE_ORDER");
    s.ok(&county, "convicted", vec![outcome("LZ-2", "2026-06-30", O::Convicted as i32)]).await;
    assert_eq!(r("y11", outcome("LZ-2", "2026-07-01", O::Dropped as i32)).await, "REFERRAL_CONCLUDED");
    assert_eq!(r("y13", outcome("LZ-2", "2026-03-01", O::Dropped as i32)).await, "REFERRAL_CONCLUDED", "after a final outcome, whatever its date");
    // The report counts them as of its end, and at a past record.
    let report = |to: &str, at_seq: u64| pb::GetCountyReportRequest { county: COUNTY.into(), from: "2026-01-01".into(), to: to.into(), at_seq };
    let year = q.get_county_report(report("2026-12-31", 0)).await.unwrap().into_inner();
    assert_eq!((year.orders_referred, year.referrals_filed, year.referrals_convicted), (1, 1, 1));
    let march = q.get_county_report(report("2026-03-23", 0)).await.unwrap().into_inner();
    assert_eq!((march.orders_referred, march.referrals_filed, march.referrals_convicted), (1, 0, 0), "not opened by the police yet on 2026-03-23");
    let at_filing = q.get_county_report(report("2026-12-31", filed.first_seq)).await.unwrap().into_inner();
    assert_eq!((at_filing.referrals_filed, at_filing.referrals_convicted), (1, 0), "at the record of the filing, no conviction yet");
    let later = q.list_flags(flags("2026-03-21", 0)).await.unwrap().into_inner().flags;
    assert!(flags_of(&later, "REFERRAL_DUE").is_empty() && flags_of(&later, "ORDER_UNMET").len() == 1, "{later:?}");
    let list = |date: &str, order: &str| cmd(Kind::ListEmployer(pb::ListEmployer { county: COUNTY.into(), employer: crate::harness::gc().to_string(), listed_on: date.into(), unmet_order_no: order.into(), mass_incident: String::new() }));
    assert_eq!(r("x13", list("2026-03-21", "LZ-1")).await, "ORDER_NOT_UNMET");
    s.ok(&county, "list", vec![list("2026-03-21", "LZ-2")]).await;
    assert_eq!(r("x14", list("2026-03-22", "LZ-2")).await, "EMPLOYER_LISTED");
    let mut small_project = register("P2", COUNTY);
    let mut before_listing = register("P3", COUNTY);
    for (c, date) in [(&mut small_project, "2026-03-25"), (&mut before_listing, "2026-03-02")] {
        if let Some(Kind::RegisterProject(reg)) = &mut c.kind {
            reg.contract_price = "2000000".into();
            reg.registered_on = date.into();
            reg.contract_date = date.into();
            reg.start_date = date.into();
        }
    }
    s.ok(&county, "p2", vec![small_project, before_listing]).await;
    let p2 = q.get_project(pb::GetProjectRequest { project: "P2".into(), as_of: "2026-03-26".into(), at_seq: 0 }).await.unwrap().into_inner();
    let p3 = q.get_project(pb::GetProjectRequest { project: "P3".into(), as_of: "2026-03-26".into(), at_seq: 0 }).await.unwrap().into_inner();
    assert_eq!((p2.deposit_required.as_str(), p3.deposit_required.as_str()), ("80000.00", "0.00"), "2% x 2 of ¥2M while listed; exempt below ¥3M before");
    // Leaving the list: not before six months, not before the arrears are repaid.
    let delist = |date: &str| cmd(Kind::DelistEmployer(pb::DelistEmployer { county: COUNTY.into(), employer: crate::harness::gc().to_string(), date: date.into(), note: String::new() }));
    assert_eq!(r("x15", delist("2026-06-01")).await, "DELIST_TOO_EARLY");
    assert_eq!(r("x16", delist("2026-10-01")).await, "ARREARS_NOT_REPAID");
    let repaid = s.ok("bank:ICBC", "pay-2", vec![topup_cmd(), paid_on("P1", "DF-3", 3, "36000", "2026-09-30")]).await;
    s.ok(&county, "late", vec![resolve("LZ-2", "2026-09-30", true, &[repaid.first_seq + 1])]).await;
    s.ok(&county, "delist", vec![delist("2026-10-01")]).await;
    assert_eq!(r("x17", delist("2026-10-02")).await, "EMPLOYER_NOT_LISTED");

    // Inspections and cards: the county records inspections, a bank its cards; not the
    // other way round.
    let inspection = cmd(Kind::RecordInspection(pb::RecordInspection { county: COUNTY.into(), employer: crate::harness::gc().to_string(), date: "2026-04-08".into(), project: "P1".into(), contracts_signed: 23, findings: "补签劳动合同".into() }));
    let cards = cmd(Kind::RecordCards(pb::RecordCards { county: COUNTY.into(), bank: "ICBC".into(), date: "2026-04-30".into(), issued: 861, activated: 872 }));
    assert_eq!(s.refused("bank:ICBC", "x18", vec![inspection.clone()]).await.1, "NOT_PERMITTED");
    assert_eq!(s.refused(&county, "x19", vec![cards.clone()]).await.1, "NOT_PERMITTED");
    s.ok(&county, "inspect", vec![inspection]).await;
    s.ok("bank:ICBC", "cards", vec![cards]).await;
    s.stop().await;
}

fn topup_cmd() -> pb::Command {
    crate::harness::topup("P1", "BF-9", "40000")
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
