//! The gRPC API on a real server on a loopback port: every RPC, its errors, the
//! authorization matrix, idempotency, atomicity, concurrency, live tails and TLS.

use std::collections::BTreeSet;

use anxin::api::pb;
use anxin::api::pb::command::Kind;
use tokio_stream::StreamExt;
use tonic::Code;

use crate::harness::*;

const COUNTY_P: &str = "county:620121";

fn gcp() -> String {
    format!("contractor:{}", gc())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_month_end_to_end_and_every_query() {
    let s = TestServer::start().await;
    s.setup_project(3).await;
    s.ok(&gcp(), "payroll-jan", vec![payroll("P1", "2026-01", &[(1, "5000"), (2, "6000.50"), (3, "4000")])]).await;
    let r = s.ok("bank:ICBC", "payout-jan", vec![pay("P1", "W1", 1, "5000", "2026-01"), pay("P1", "W2", 2, "6000.50", "2026-01")]).await;
    assert_eq!(r.last_seq - r.first_seq, 1);
    assert_eq!(r.chain_head.len(), 32);

    let mut q = s.query(COUNTY_P).await;
    let p = q.get_project(pb::GetProjectRequest { at_seq: 0, project: "P1".into(), as_of: "2026-02-20".into() }).await.unwrap().into_inner();
    assert_eq!((p.wage_balance.as_str(), p.wages_paid_total.as_str(), p.owed.as_str()), ("18999.50", "11000.50", "4000.00"));
    assert_eq!((p.workers_enrolled, p.workers_with_contract, p.status), (3, 3, pb::ProjectStatus::Active as i32));
    assert_eq!(p.payroll_periods, vec!["2026-01".to_owned()]);
    assert_eq!((p.deposit_required.as_str(), p.deposit_cash.as_str()), ("200000.00", "200000.00"));

    let b = q.get_balance(pb::GetBalanceRequest { as_of: String::new(), at_seq: 0, account: "wage:P1".into() }).await.unwrap().into_inner();
    assert_eq!(b.balance, "18999.50");
    let accts = q.list_accounts(pb::ListAccountsRequest { as_of: String::new(), at_seq: 0, project: "P1".into(), page_size: 1, page_token: String::new() }).await.unwrap().into_inner();
    assert_eq!((accts.accounts.len(), accts.next_page_token.as_str()), (1, "1"));
    let rest = q.list_accounts(pb::ListAccountsRequest { as_of: String::new(), at_seq: 0, project: "P1".into(), page_size: 10, page_token: "1".into() }).await.unwrap().into_inner();
    assert_eq!((rest.accounts.len(), rest.next_page_token.as_str()), (1, ""));

    let list = q.list_projects(pb::ListProjectsRequest { at_seq: 0, county: COUNTY.into(), status: 0, as_of: "2026-02-20".into(), page_size: 0, page_token: String::new() }).await.unwrap().into_inner();
    assert_eq!(list.projects.iter().map(|p| p.project.as_str()).collect::<Vec<_>>(), vec!["P1"]);

    // As of 2026-03-01 the January payroll (due 2026-02-28) is overdue for worker 3.
    let flags = q.list_flags(pb::ListFlagsRequest { at_seq: 0, county: String::new(), project: "P1".into(), as_of: "2026-03-01".into(), page_size: 0, page_token: String::new() }).await.unwrap().into_inner();
    let overdue = flags.flags.iter().find(|f| f.code == "WAGES_OVERDUE").expect("WAGES_OVERDUE");
    assert_eq!((overdue.grade.as_str(), overdue.gap.as_str(), overdue.count), ("red", "4000.00", 1));
    assert!(!overdue.evidence.is_empty());

    let w = q.get_worker(pb::GetWorkerRequest { at_seq: 0, who: Some(pb::get_worker_request::Who::NationalId(nid(2))), as_of: "2026-02-20".into() }).await.unwrap().into_inner();
    assert_eq!((w.paid_total.as_str(), w.owed_total.as_str()), ("6000.50", "0.00"));
    assert!(w.masked_id.contains("****") && !w.masked_id.contains(&nid(2)[6..14]));
    let by_ref = q.get_worker(pb::GetWorkerRequest { at_seq: 0, who: Some(pb::get_worker_request::Who::WorkerRef(w.worker_ref.clone())), as_of: String::new() }).await.unwrap().into_inner();
    assert_eq!(by_ref.masked_id, w.masked_id);

    let hist = q.get_project_history(pb::GetProjectHistoryRequest { as_of: String::new(), at_seq: 0, project: "P1".into() }).await.unwrap().into_inner();
    let jan = hist.months.iter().find(|m| m.period == "2026-01").unwrap();
    assert_eq!((jan.payroll_due.as_str(), jan.payroll_paid.as_str()), ("15000.50", "11000.50"));
    assert_eq!(hist.months.last().unwrap().wage_balance_end, "18999.50");
    let found = q.list_workers(pb::ListWorkersRequest { masked_id: w.masked_id.clone(), ..Default::default() }).await.unwrap().into_inner();
    assert!(found.workers.iter().any(|x| x.worker_ref == w.worker_ref));
    assert_eq!(q.list_workers(pb::ListWorkersRequest { masked_id: "6201".into(), ..Default::default() }).await.unwrap_err().code(), Code::InvalidArgument);
    let pr = q.get_payroll(pb::GetPayrollRequest { at_seq: 0, project: "P1".into(), period: "2026-01".into(), as_of: "2026-03-01".into(), page_size: 2, page_token: String::new() }).await.unwrap().into_inner();
    assert_eq!((pr.due_total.as_str(), pr.paid_total.as_str(), pr.overdue, pr.lines.len(), pr.next_page_token.as_str()), ("15000.50", "11000.50", true, 2, "2"));

    let c = q.get_county_summary(pb::GetCountySummaryRequest { at_seq: 0, county: COUNTY.into(), as_of: "2026-03-01".into() }).await.unwrap().into_inner();
    assert_eq!((c.projects_total, c.workers_registered, c.enrolments_with_contract, c.arrears.as_str(), c.arrears_workers), (1, 3, 3, "4000.00", 1));
    assert_eq!(c.flags_by_code.get("WAGES_OVERDUE"), Some(&1));

    // ReadEvents: the records' bytes chain from the genesis hash; principals are named.
    let recs = read_and_verify(&s).await;
    assert_eq!(recs.len() as u64, r.last_seq);
    assert_eq!(recs[0].principal.to_string(), COUNTY_P);
    assert_eq!(recs.last().unwrap().principal.to_string(), "bank:ICBC");
    let mut a = s.audit("bank:ICBC").await;
    let part: Vec<_> = a.read_events(pb::ReadEventsRequest { from_seq: 2, to_seq: 3 }).await.unwrap().into_inner().collect::<Vec<_>>().await;
    assert_eq!(part.into_iter().map(|r| r.unwrap().seq).collect::<Vec<_>>(), vec![2, 3]);

    // The signed checkpoint, the public key and proofs against them.
    let key = a.get_public_key(pb::GetPublicKeyRequest {}).await.unwrap().into_inner();
    assert_eq!((key.ledger_id.as_str(), key.ed25519.len()), (LEDGER_ID, 32));
    let cp = a.get_checkpoint(pb::GetCheckpointRequest::default()).await.unwrap().into_inner();
    assert_eq!((cp.tree_size, cp.version, cp.chain_head.clone()), (r.last_seq, 2, r.chain_head.clone()));
    let signed = anxin::api::convert::checkpoint_from_pb(&cp).unwrap();
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&key.ed25519.clone().try_into().unwrap()).unwrap();
    signed.verify(&vk).unwrap();
    let incl = a.get_inclusion_proof(pb::GetInclusionProofRequest { seq: 2, tree_size: 0 }).await.unwrap().into_inner();
    let path: Vec<[u8; 32]> = incl.path.iter().map(|h| h.clone().try_into().unwrap()).collect();
    let leaf = anxin::chain::merkle::leaf_hash(&recs[1].encode());
    anxin::chain::merkle::verify_inclusion(&leaf, 1, cp.tree_size, &path, &signed.checkpoint.root).unwrap();
    let cons = a.get_consistency_proof(pb::GetConsistencyProofRequest { from_size: 3, to_size: 0 }).await.unwrap().into_inner();
    assert_eq!(cons.to_size, cp.tree_size);
    assert_eq!(a.get_inclusion_proof(pb::GetInclusionProofRequest { seq: 99, tree_size: 0 }).await.unwrap_err().code(), Code::InvalidArgument);
    assert_eq!(a.get_consistency_proof(pb::GetConsistencyProofRequest { from_size: 0, to_size: 2 }).await.unwrap_err().code(), Code::InvalidArgument);

    // Health and reflection answer without a token.
    let mut h = tonic_health::pb::health_client::HealthClient::new(s.channel().await);
    let st = h.check(tonic_health::pb::HealthCheckRequest { service: "anxin.v1.LedgerPosting".into() }).await.unwrap().into_inner();
    assert_eq!(st.status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);
    // Reflection v1, and v1alpha (Python's grpcio-reflection and older GUI clients speak
    // only that one), each lists the ledger's services.
    {
        use tonic_reflection::pb::v1::{server_reflection_client::ServerReflectionClient, server_reflection_request::MessageRequest, server_reflection_response::MessageResponse, ServerReflectionRequest};
        let mut r = ServerReflectionClient::new(s.channel().await);
        let req = ServerReflectionRequest { host: String::new(), message_request: Some(MessageRequest::ListServices(String::new())) };
        let resp = r.server_reflection_info(tokio_stream::iter(vec![req])).await.unwrap().into_inner().message().await.unwrap().unwrap();
        let Some(MessageResponse::ListServicesResponse(l)) = resp.message_response else { panic!("v1: {resp:?}") };
        assert!(l.service.iter().any(|s| s.name == "anxin.v1.LedgerPosting"), "v1: {l:?}");
    }
    {
        use tonic_reflection::pb::v1alpha::{server_reflection_client::ServerReflectionClient, server_reflection_request::MessageRequest, server_reflection_response::MessageResponse, ServerReflectionRequest};
        let mut r = ServerReflectionClient::new(s.channel().await);
        let req = ServerReflectionRequest { host: String::new(), message_request: Some(MessageRequest::ListServices(String::new())) };
        let resp = r.server_reflection_info(tokio_stream::iter(vec![req])).await.unwrap().into_inner().message().await.unwrap().unwrap();
        let Some(MessageResponse::ListServicesResponse(l)) = resp.message_response else { panic!("v1alpha: {resp:?}") };
        assert!(l.service.iter().any(|s| s.name == "anxin.v1.LedgerAudit"), "v1alpha: {l:?}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_gets_a_clear_status_reason_and_index_and_leaves_no_trace() {
    let s = TestServer::start().await;
    s.setup_project(1).await;
    let head = s.ledger.head();
    let bad_amount = |a: &str| topup("P1", "T1", a);
    for (cmds, code, reason, index) in [
        (vec![bad_amount("1e9")], Code::InvalidArgument, "AMOUNT_NOT_A_NUMBER", Some(0)),
        (vec![topup("P1", "T0", "1"), bad_amount("-0.00")], Code::InvalidArgument, "AMOUNT_NOT_POSITIVE", Some(1)),
        (vec![bad_amount("0.001")], Code::InvalidArgument, "AMOUNT_TOO_PRECISE", Some(0)),
        (vec![bad_amount("12,34")], Code::InvalidArgument, "AMOUNT_NOT_A_NUMBER", Some(0)),
        (vec![bad_amount("0")], Code::InvalidArgument, "AMOUNT_NOT_POSITIVE", Some(0)),
        (vec![bad_amount("-5")], Code::InvalidArgument, "AMOUNT_NOT_POSITIVE", Some(0)),
        (vec![bad_amount("92233720368547758.08")], Code::InvalidArgument, "AMOUNT_TOO_LARGE", Some(0)),
        (vec![bad_amount("１２")], Code::InvalidArgument, "AMOUNT_NOT_A_NUMBER", Some(0)),
        (vec![topup("P1", "T0", "1"), topup("P1", &"x".repeat(100_000), "1")], Code::InvalidArgument, "INVALID_TEXT", Some(1)),
        (vec![topup("P1", "T\u{0}0", "1")], Code::InvalidArgument, "INVALID_TEXT", Some(0)),
        (vec![pb::Command { kind: None }], Code::InvalidArgument, "MISSING_FIELD", Some(0)),
        (vec![cmd(Kind::TopUpWageAccount(pb::TopUpWageAccount { project: "P1".into(), payment_no: "T9".into(), amount: "1".into(), date: "2026-02-30".into() }))], Code::InvalidArgument, "INVALID_DATE", Some(0)),
        (vec![cmd(Kind::ChangeProjectStatus(pb::ChangeProjectStatus { project: "P1".into(), status: 42, date: "2026-03-01".into() }))], Code::InvalidArgument, "UNKNOWN_ENUM_VALUE", Some(0)),
        (vec![], Code::InvalidArgument, "EMPTY_BATCH", None),
    ] {
        let who = if reason == "UNKNOWN_ENUM_VALUE" { COUNTY_P } else { "bank:ICBC" };
        let (c, r, i) = s.refused(who, "bad", cmds).await;
        assert_eq!((c, r.as_str(), i), (code, reason, index));
    }
    // The same facts as the standard rich details (google.rpc.*) that gRPC libraries read,
    // beside the metadata keys.
    {
        use tonic_types::StatusExt;
        let st = s.posting("bank:ICBC").await.submit(pb::SubmitRequest { request_id: "rich".into(), commands: vec![topup("P1", "T0", "1"), bad_amount("12,34")] }).await.unwrap_err();
        let info = st.get_details_error_info().expect("an ErrorInfo");
        assert_eq!((info.reason.as_str(), info.domain.as_str()), ("AMOUNT_NOT_A_NUMBER", "anxin.v1"));
        assert_eq!(info.metadata.get("command_index").map(String::as_str), Some("1"));
        assert_eq!(info.metadata.get("action").map(String::as_str), Some("fix"), "what a client does, from the server");
        let bad = st.get_details_bad_request().expect("a BadRequest");
        assert_eq!(bad.field_violations.iter().map(|v| v.field.as_str()).collect::<Vec<_>>(), ["commands[1].top_up_wage_account.amount"]);
        assert!(bad.field_violations[0].description.contains("12,34"), "{:?}", bad.field_violations);
        assert!(st.get_details_retry_info().is_none(), "an input to fix carries no RetryInfo");
        assert_eq!(anxin::api::error::reason_of(&st), (Some("AMOUNT_NOT_A_NUMBER".into()), Some(1)), "the metadata keys stay");
        // A rule of the ledger: a reason, no field, nothing to retry.
        let st = s.posting("bank:ICBC").await.submit(pb::SubmitRequest { request_id: "rich-rule".into(), commands: vec![pay("P1", "W1", 1, "30000.01", "")] }).await.unwrap_err();
        assert_eq!(st.get_details_error_info().map(|i| i.reason), Some("INSUFFICIENT_WAGE_BALANCE".into()));
        assert!(st.get_details_bad_request().is_none() && st.get_details_retry_info().is_none(), "{st:?}");
        // A payroll line's field is named inside its line.
        let mut payroll = cmd(Kind::SubmitPayroll(pb::SubmitPayroll { project: "P1".into(), period: "2026-01".into(), ..Default::default() }));
        if let Some(Kind::SubmitPayroll(p)) = &mut payroll.kind {
            for d in ["5200.00", "1.001"] {
                p.lines.push(pb::PayrollLine { national_id: nid(1), employer: gc().to_string(), days: 20, amount_due: d.into() });
            }
        }
        let st = s.posting(&gcp()).await.submit(pb::SubmitRequest { request_id: "rich-line".into(), commands: vec![payroll] }).await.unwrap_err();
        let bad = st.get_details_bad_request().expect("a BadRequest");
        assert_eq!(bad.field_violations[0].field, "commands[0].submit_payroll.lines[1].amount_due", "{st:?}");
    }
    let mut bad_id = enrol("P1", 9);
    if let Some(Kind::EnrolWorker(e)) = &mut bad_id.kind {
        e.national_id.replace_range(17..18, if e.national_id.ends_with('0') { "1" } else { "0" });
    }
    let (c, r, _) = s.refused(&gcp(), "bad-id", vec![bad_id]).await;
    assert_eq!((c, r.as_str()), (Code::InvalidArgument, "INVALID_NATIONAL_ID"));
    // The error names the masked ID only.
    let mut bad_card = enrol("P1", 9);
    if let Some(Kind::EnrolWorker(e)) = &mut bad_card.kind {
        e.bank_card.push('1');
    }
    let st = s.posting(&gcp()).await.submit(pb::SubmitRequest { request_id: "bad-card".into(), commands: vec![bad_card] }).await.unwrap_err();
    assert!(!st.message().contains(&card(9)), "{}", st.message());
    // Rules: FAILED_PRECONDITION / ALREADY_EXISTS / NOT_FOUND with their reason codes.
    assert_eq!(s.refused("bank:ICBC", "r1", vec![pay("P1", "W1", 1, "30000.01", "")]).await, (Code::FailedPrecondition, "INSUFFICIENT_WAGE_BALANCE".into(), Some(0)));
    assert_eq!(s.refused("bank:ICBC", "r2", vec![pay("P1", "W1", 7, "1", "")]).await, (Code::FailedPrecondition, "PAYEE_NOT_ENROLLED".into(), Some(0)));
    assert_eq!(s.refused("bank:ICBC", "r3", vec![progress("P1", "G1", "1", "0")]).await, (Code::AlreadyExists, "DUPLICATE_PAYMENT_NO".into(), Some(0)));
    assert_eq!(s.refused(COUNTY_P, "r4", vec![status("NOPE", pb::ProjectStatus::Suspended)]).await, (Code::NotFound, "UNKNOWN_PROJECT".into(), Some(0)));
    // Too many commands, too large a message, a bad request id.
    let many = vec![topup("P1", "T", "1"); 10_001];
    assert_eq!(s.refused("bank:ICBC", "big", many).await.0, Code::ResourceExhausted);
    let huge = topup("P1", &"x".repeat(17 << 20), "1");
    let st = s.posting("bank:ICBC").await.submit(pb::SubmitRequest { request_id: "huge".into(), commands: vec![huge] }).await.unwrap_err();
    assert!(matches!(st.code(), Code::ResourceExhausted | Code::OutOfRange), "{st:?}");
    assert_eq!(s.refused("bank:ICBC", "has space", vec![topup("P1", "T1", "1")]).await.1, "INVALID_REQUEST_ID");
    // Queries.
    let mut q = s.query(COUNTY_P).await;
    assert_eq!(q.get_project(pb::GetProjectRequest { at_seq: 0, project: "NOPE".into(), as_of: String::new() }).await.unwrap_err().code(), Code::PermissionDenied);
    let mut op = s.query("operator").await;
    assert_eq!(op.get_project(pb::GetProjectRequest { at_seq: 0, project: "NOPE".into(), as_of: String::new() }).await.unwrap_err().code(), Code::NotFound);
    assert_eq!(q.get_project(pb::GetProjectRequest { at_seq: 0, project: "P1".into(), as_of: "2026-13-01".into() }).await.unwrap_err().code(), Code::InvalidArgument);
    assert_eq!(q.list_flags(pb::ListFlagsRequest { page_token: "zz".into(), ..Default::default() }).await.unwrap_err().code(), Code::InvalidArgument);
    assert_eq!(q.get_balance(pb::GetBalanceRequest { as_of: String::new(), at_seq: 0, account: "nonsense".into() }).await.unwrap_err().code(), Code::InvalidArgument);
    assert_eq!(q.get_worker(pb::GetWorkerRequest { at_seq: 0, who: Some(pb::get_worker_request::Who::NationalId(nid(77))), as_of: String::new() }).await.unwrap_err().code(), Code::NotFound);
    assert_eq!(q.get_payroll(pb::GetPayrollRequest { project: "P1".into(), period: "2026-05".into(), ..Default::default() }).await.unwrap_err().code(), Code::NotFound);
    let mut a = s.audit("auditor").await;
    assert_eq!(a.read_events(pb::ReadEventsRequest { from_seq: 0, to_seq: 0 }).await.unwrap_err().code(), Code::InvalidArgument);
    // Nothing of any of it reached the log.
    assert_eq!(s.ledger.head(), head);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_or_a_wrong_token_is_unauthenticated_on_every_service() {
    let s = TestServer::start().await;
    for token in [None, Some("anx_wrong".to_owned())] {
        let ch = s.channel().await;
        let mut p = pb::ledger_posting_client::LedgerPostingClient::with_interceptor(ch.clone(), Auth(token.clone()));
        let e = p.submit(pb::SubmitRequest { request_id: "x".into(), commands: vec![register("P1", COUNTY)] }).await.unwrap_err();
        assert_eq!((e.code(), anxin::api::error::reason_of(&e).0.as_deref()), (Code::Unauthenticated, Some("UNAUTHENTICATED")));
        let mut q = pb::ledger_query_client::LedgerQueryClient::with_interceptor(ch.clone(), Auth(token.clone()));
        assert_eq!(q.get_county_summary(pb::GetCountySummaryRequest::default()).await.unwrap_err().code(), Code::Unauthenticated);
        let mut a = pb::ledger_audit_client::LedgerAuditClient::with_interceptor(ch, Auth(token));
        assert_eq!(a.subscribe(pb::SubscribeRequest { from_seq: 1 }).await.unwrap_err().code(), Code::Unauthenticated);
    }
    assert_eq!(s.ledger.head().0, 0);
    s.stop().await;
}

/// The authorization tests' ledger: P1 with two workers and a January payroll; and the
/// roles beyond the harness's defaults (the other county, the other contractor, P1's
/// general contractor).
async fn matrix_server() -> (TestServer, String, String, String) {
    let s = TestServer::start().await;
    s.setup_project(2).await;
    s.ok(&gcp(), "payroll", vec![payroll("P1", "2026-01", &[(1, "100")])]).await;
    (s, format!("county:{OTHER_COUNTY}"), format!("contractor:{}", other_gc()), gcp())
}

/// Each role against each command family: exactly the allowed ones pass authorization.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authorization_matrix() {
    let (s, other_c, other_gc, gcp) = matrix_server().await;
    let gcp = gcp.as_str();
    // (family, a command, the roles that may post it)
    let families: Vec<(&str, pb::Command, Vec<&str>)> = vec![
        ("register in 620121", register("P2", COUNTY), vec!["operator", COUNTY_P]),
        ("status", status("P1", pb::ProjectStatus::Suspended), vec!["operator", COUNTY_P]),
        ("open account at ICBC", open_account("P1", "ICBC"), vec!["operator", "bank:ICBC"]),
        ("deposit at ICBC", deposit("P1", "ICBC", "D9", "1"), vec!["operator", "bank:ICBC"]),
        ("progress via ICBC account", progress("P1", "G9", "100", "30"), vec!["operator", "bank:ICBC"]),
        ("payout via ICBC account", pay("P1", "W9", 1, "1", ""), vec!["operator", "bank:ICBC"]),
        ("enrol on GC's project", enrol("P1", 5), vec!["operator", gcp]),
        ("payroll on GC's project", payroll("P1", "2026-02", &[(1, "1")]), vec!["operator", gcp]),
        (
            "drawdown",
            cmd(Kind::DrawDeposit(pb::DrawDeposit { order_date: String::new(), reason: String::new(),
                project: "P1".into(),
                order_no: "O1".into(),
                date: "2026-03-01".into(),
                payees: vec![pb::DrawdownPayee { national_id: nid(1), bank_card: card(1), amount: "1".into(), period: String::new() }],
            })),
            vec!["operator", COUNTY_P],
        ),
    ];
    let all = ["operator", "auditor", COUNTY_P, &other_c, "bank:ICBC", "bank:ABC", gcp, &other_gc];
    let mut n = 0;
    for (family, command, allowed) in &families {
        for who in all {
            n += 1;
            let r = s.posting(who).await.submit(pb::SubmitRequest { request_id: format!("m{n}"), commands: vec![command.clone()] }).await;
            let denied = matches!(&r, Err(st) if st.code() == Code::PermissionDenied);
            assert_eq!(denied, !allowed.contains(&who), "{who} / {family}: {r:?}");
        }
    }
    // Reads: a county reads its own county only; a bank the projects it serves; a
    // contractor its own projects; everyone may audit.
    for (who, may_read_p1, may_read_county) in [
        ("operator", true, true),
        ("auditor", true, true),
        (COUNTY_P, true, true),
        (other_c.as_str(), false, false),
        ("bank:ICBC", true, false),
        ("bank:ABC", false, false),
        (gcp, true, false),
        (other_gc.as_str(), false, false),
    ] {
        let mut q = s.query(who).await;
        let r = q.get_project(pb::GetProjectRequest { at_seq: 0, project: "P1".into(), as_of: String::new() }).await;
        assert_eq!(r.is_ok(), may_read_p1, "{who} GetProject");
        let r = q.get_county_summary(pb::GetCountySummaryRequest { at_seq: 0, county: COUNTY.into(), as_of: String::new() }).await;
        assert_eq!(r.is_ok(), may_read_county, "{who} GetCountySummary");
        let listed: Vec<String> = q.list_projects(pb::ListProjectsRequest::default()).await.unwrap().into_inner().projects.into_iter().map(|p| p.project).collect();
        assert_eq!(listed.contains(&"P1".to_owned()), may_read_p1, "{who} ListProjects: {listed:?}");
        let r = s.audit(who).await.read_events(pb::ReadEventsRequest { from_seq: 1, to_seq: 1 }).await;
        assert!(r.is_ok(), "{who} ReadEvents");
    }
    // Every record names the principal that posted it.
    let recs = read_and_verify(&s).await;
    assert!(recs.iter().any(|r| r.principal.to_string() == "bank:ICBC"));
    assert!(recs.iter().any(|r| r.principal.to_string() == gcp));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_are_idempotent_and_a_reused_id_with_other_content_is_refused() {
    let s = TestServer::start().await;
    s.setup_project(1).await;
    let first = s.ok("bank:ICBC", "t-1", vec![topup("P1", "T1", "10")]).await;
    let again = s.ok("bank:ICBC", "t-1", vec![topup("P1", "T1", "10")]).await;
    assert_eq!((again.first_seq, again.last_seq, again.chain_head.clone(), again.replayed), (first.first_seq, first.last_seq, first.chain_head.clone(), true));
    assert_eq!(s.refused("bank:ICBC", "t-1", vec![topup("P1", "T1", "11")]).await, (Code::AlreadyExists, "REQUEST_ID_REUSED".into(), None));
    assert_eq!(s.ledger.head().0, first.last_seq);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_whose_500th_command_fails_appends_nothing() {
    let s = TestServer::start().await;
    s.setup_project(1).await;
    let head = s.ledger.head();
    let mut cmds: Vec<pb::Command> = (0..499).map(|i| topup("P1", &format!("T{i}"), "1")).collect();
    cmds.push(pay("P1", "W1", 1, "1000000", ""));
    cmds.extend((0..10).map(|i| topup("P1", &format!("U{i}"), "1")));
    assert_eq!(s.refused("bank:ICBC", "atomic", cmds).await, (Code::FailedPrecondition, "INSUFFICIENT_WAGE_BALANCE".into(), Some(499)));
    assert_eq!(s.ledger.head(), head);
    assert_eq!(read_and_verify(&s).await.len() as u64, head.0);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_concurrent_clients_leave_no_gap_and_no_duplicate() {
    let s = std::sync::Arc::new(TestServer::start().await);
    s.setup_project(0).await;
    let base = s.ledger.head().0;
    let mut tasks = Vec::new();
    for c in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = s.posting("bank:ICBC").await;
            let mut seqs = Vec::new();
            for b in 0..20 {
                let cmds = (0..50).map(|i| topup("P1", &format!("C{c}-{b}-{i}"), "0.01")).collect();
                let r = client.submit(pb::SubmitRequest { request_id: format!("c{c}-b{b}"), commands: cmds }).await.unwrap().into_inner();
                assert_eq!(r.last_seq - r.first_seq + 1, 50);
                seqs.extend(r.first_seq..=r.last_seq);
            }
            seqs
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_unstable();
    let expected: Vec<u64> = (base + 1..=base + 8_000).collect();
    assert_eq!(all, expected, "every acknowledged seq once, no gap");
    let recs = read_and_verify(&s).await;
    assert_eq!(recs.len() as u64, base + 8_000);
    let balance = s.query(COUNTY_P).await.get_balance(pb::GetBalanceRequest { as_of: String::new(), at_seq: 0, account: "wage:P1".into() }).await.unwrap().into_inner().balance;
    assert_eq!(balance, "30080.00");
    std::sync::Arc::try_unwrap(s).ok().unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_sees_every_record_exactly_once_across_a_live_append() {
    let s = std::sync::Arc::new(TestServer::start().await);
    s.setup_project(0).await;
    let before = s.ledger.head().0;
    let mut sub = s.audit("auditor").await.subscribe(pb::SubscribeRequest { from_seq: 1 }).await.unwrap().into_inner();
    let writer = {
        let s = s.clone();
        tokio::spawn(async move {
            for b in 0..30 {
                let cmds = (0..10).map(|i| topup("P1", &format!("S{b}-{i}"), "1")).collect();
                s.ok("bank:ICBC", &format!("live-{b}"), cmds).await;
            }
        })
    };
    let total = before + 300;
    let mut seen = Vec::new();
    while (seen.len() as u64) < total {
        let r = tokio::time::timeout(std::time::Duration::from_secs(20), sub.next()).await.expect("the live tail keeps coming").unwrap().unwrap();
        seen.push(r.seq);
    }
    writer.await.unwrap();
    assert_eq!(seen, (1..=total).collect::<Vec<_>>());
    // Nothing more arrives: no duplicate after the last record.
    assert!(tokio::time::timeout(std::time::Duration::from_millis(300), sub.next()).await.is_err());
    drop(sub);
    std::sync::Arc::try_unwrap(s).ok().unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_stops_reading_does_not_stall_the_writer_and_catches_up_later() {
    let s = std::sync::Arc::new(TestServer::start().await);
    s.setup_project(0).await;
    let mut sub = s.audit("auditor").await.subscribe(pb::SubscribeRequest { from_seq: 1 }).await.unwrap().into_inner();
    let first = sub.next().await.unwrap().unwrap();
    assert_eq!(first.seq, 1);
    // The subscriber now reads nothing while far more than its buffer (1,024 records)
    // and the HTTP/2 windows are appended: every submission must still be answered.
    let before = s.ledger.head().0;
    for b in 0..40 {
        let cmds = (0..100).map(|i| topup("P1", &format!("SL{b}-{i}"), "1")).collect();
        tokio::time::timeout(std::time::Duration::from_secs(60), s.ok("bank:ICBC", &format!("slow-{b}"), cmds)).await.expect("the writer is not stalled by a slow reader");
    }
    let total = before + 4_000;
    assert_eq!(s.ledger.head().0, total);
    // Reading again, it gets everything, in order, exactly once.
    let mut seen = vec![first.seq];
    while (seen.len() as u64) < total {
        let r = tokio::time::timeout(std::time::Duration::from_secs(30), sub.next()).await.expect("the stream resumes").unwrap().unwrap();
        seen.push(r.seq);
    }
    assert_eq!(seen, (1..=total).collect::<Vec<_>>());
    drop(sub);
    std::sync::Arc::try_unwrap(s).ok().unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_stream_pipelines_batches_and_answers_in_order() {
    let s = TestServer::start().await;
    s.setup_project(1).await;
    let base = s.ledger.head().0;
    let mut reqs = Vec::new();
    for b in 0..40 {
        let cmds = if b == 7 {
            vec![pay("P1", "X", 1, "99999999", "")]
        } else if b == 12 {
            vec![topup("P1", "SV", "1"), topup("P1", "SW", "12,34")]
        } else { vec![topup("P1", &format!("ST{b}"), "1"), topup("P1", &format!("SU{b}"), "1")] };
        reqs.push(pb::SubmitRequest { request_id: format!("st-{b}"), commands: cmds });
    }
    let out: Vec<pb::SubmitStreamResponse> = s.posting("bank:ICBC").await.submit_stream(tokio_stream::iter(reqs)).await.unwrap().into_inner().map(|r| r.unwrap()).collect().await;
    assert_eq!(out.len(), 40);
    let mut next = base + 1;
    for (b, r) in out.iter().enumerate() {
        assert_eq!(r.request_id, format!("st-{b}"));
        match r.outcome.as_ref().unwrap() {
            pb::submit_stream_response::Outcome::Receipt(rc) => {
                assert_eq!((rc.first_seq, rc.last_seq), (next, next + 1), "in order");
                next += 2;
            }
            // The same facts as a unary call's rich details: the field, what to do, when.
            pb::submit_stream_response::Outcome::Refusal(f) if b == 7 => {
                assert_eq!((f.reason.as_str(), f.command_index, f.status_code), ("INSUFFICIENT_WAGE_BALANCE", 0, Code::FailedPrecondition as i32));
                assert_eq!((f.field.as_str(), f.action.as_str(), f.retry_after_ms), ("", "fix", 0));
            }
            pb::submit_stream_response::Outcome::Refusal(f) => {
                assert_eq!((b, f.reason.as_str(), f.command_index, f.status_code), (12, "AMOUNT_NOT_A_NUMBER", 1, Code::InvalidArgument as i32));
                assert_eq!((f.field.as_str(), f.action.as_str(), f.retry_after_ms), ("commands[1].top_up_wage_account.amount", "fix", 0));
            }
        }
    }
    assert_eq!(s.ledger.head().0, base + 76);
    let seen: BTreeSet<u64> = read_and_verify(&s).await.iter().map(|r| r.seq).collect();
    assert_eq!(seen.len() as u64, base + 76);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_on_loopback_with_a_generated_certificate() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let tls = anxin::api::Tls { cert_pem: cert.cert.pem().into_bytes(), key_pem: cert.key_pair.serialize_pem().into_bytes() };
    let s = TestServer::start_with(Some(tls)).await;
    let ca = tonic::transport::Certificate::from_pem(cert.cert.pem());
    let ch = tonic::transport::Channel::from_shared(format!("https://localhost:{}", s.addr.port()))
        .unwrap()
        .tls_config(tonic::transport::ClientTlsConfig::new().ca_certificate(ca).domain_name("localhost"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut p = pb::ledger_posting_client::LedgerPostingClient::with_interceptor(ch.clone(), Auth(Some(s.token(COUNTY_P))));
    let r = p.submit(pb::SubmitRequest { request_id: "tls-1".into(), commands: vec![register("P1", COUNTY)] }).await.unwrap().into_inner();
    assert_eq!(r.first_seq, 1);
    // Plain text to a TLS port fails.
    let plain = tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{}", s.addr.port())).unwrap().connect().await;
    if let Ok(ch) = plain {
        let mut q = pb::ledger_query_client::LedgerQueryClient::with_interceptor(ch, Auth(Some(s.token(COUNTY_P))));
        assert!(q.get_county_summary(pb::GetCountySummaryRequest { at_seq: 0, county: COUNTY.into(), as_of: String::new() }).await.is_err());
    }
    s.stop().await;
}

/// One principal's calls in flight are bounded (here 2): a third is refused at once with
/// RESOURCE_EXHAUSTED / TOO_MANY_CALLS, other principals are not affected, and the place
/// comes back when a stream closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_in_flight_are_bounded_per_principal() {
    let s = TestServer::start_limited(None, 2).await;
    s.setup_project(1).await;
    let mut a1 = s.audit("auditor").await;
    let mut a2 = s.audit("auditor").await;
    let held1 = a1.subscribe(pb::SubscribeRequest { from_seq: 1 }).await.unwrap().into_inner();
    let held2 = a2.subscribe(pb::SubscribeRequest { from_seq: 1 }).await.unwrap().into_inner();
    let third = s.audit("auditor").await.get_checkpoint(pb::GetCheckpointRequest::default()).await.unwrap_err();
    assert_eq!(third.code(), Code::ResourceExhausted, "{third:?}");
    assert_eq!(anxin::api::error::reason_of(&third).0.as_deref(), Some("TOO_MANY_CALLS"));
    // A refusal to retry says when, in the standard RetryInfo.
    let delay = tonic_types::StatusExt::get_details_retry_info(&third).and_then(|r| r.retry_delay);
    assert_eq!(delay, anxin::api::reasons::retry_delay("TOO_MANY_CALLS"), "{third:?}");
    let info = tonic_types::StatusExt::get_details_error_info(&third).expect("an ErrorInfo");
    assert_eq!(info.metadata.get("action").map(String::as_str), Some("retry"));
    // Another principal is not held up.
    s.audit("operator").await.get_checkpoint(pb::GetCheckpointRequest::default()).await.unwrap();
    // Closing one stream gives its place back.
    drop(held1);
    drop(a1);
    let t0 = std::time::Instant::now();
    loop {
        match s.audit("auditor").await.get_checkpoint(pb::GetCheckpointRequest::default()).await {
            Ok(_) => break,
            Err(e) => {
                assert_eq!(e.code(), Code::ResourceExhausted);
                assert!(t0.elapsed() < std::time::Duration::from_secs(10), "the closed stream's place never came back");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    }
    drop((held2, a2));
    s.stop().await;
}

/// Every RPC of every service, tried by every role: what each may do, and a
/// PERMISSION_DENIED (never another failure) for what it may not. Reads: a county its
/// own county, a bank the projects whose accounts it holds, a contractor its own
/// projects, the operator and the auditor everything; the log and its proofs are open to
/// every principal (records hold commitments, never personal data, and a bank or a
/// contractor checks its receipts with them); a backup is the operator's alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_with_every_role() {
    let (s, other_c, other_gc, gcp) = matrix_server().await;
    let all = ["operator", "auditor", COUNTY_P, other_c.as_str(), "bank:ICBC", "bank:ABC", gcp.as_str(), other_gc.as_str()];
    let reads_p1 = ["operator", "auditor", COUNTY_P, "bank:ICBC", gcp.as_str()];
    let reads_county = ["operator", "auditor", COUNTY_P];
    let posts_topup = ["operator", "bank:ICBC"];
    let denied = |r: &Result<(), tonic::Status>| matches!(r, Err(st) if st.code() == Code::PermissionDenied);
    let mut tried = 0;
    for (n, who) in all.into_iter().enumerate() {
        let p1 = reads_p1.contains(&who);
        let mut check = |rpc: &str, r: Result<(), tonic::Status>, allowed: bool| {
            tried += 1;
            if allowed {
                assert!(r.is_ok(), "{who} {rpc}: {r:?}");
            } else {
                assert!(denied(&r), "{who} {rpc} must be PERMISSION_DENIED: {r:?}");
            }
        };
        let mut q = s.query(who).await;
        let mut a = s.audit(who).await;
        let r = s.posting(who).await.submit(pb::SubmitRequest { request_id: format!("rpc-{n}"), commands: vec![topup("P1", &format!("RT{n}"), "1")] }).await.map(drop);
        check("Submit", r, posts_topup.contains(&who));
        let mut st = s.posting(who).await.submit_stream(tokio_stream::iter(vec![pb::SubmitRequest { request_id: format!("rpcs-{n}"), commands: vec![topup("P1", &format!("RS{n}"), "1")] }])).await.unwrap().into_inner();
        let answer = st.next().await.unwrap().unwrap().outcome.unwrap();
        let r = match answer {
            pb::submit_stream_response::Outcome::Receipt(_) => Ok(()),
            pb::submit_stream_response::Outcome::Refusal(f) => Err(tonic::Status::new(Code::from_i32(f.status_code), f.message)),
        };
        check("SubmitStream", r, posts_topup.contains(&who));
        check("GetBalance", q.get_balance(pb::GetBalanceRequest { as_of: String::new(), at_seq: 0, account: "wage:P1".into() }).await.map(drop), p1);
        let accounts = q.list_accounts(pb::ListAccountsRequest::default()).await.map(|r| r.into_inner().accounts);
        check("ListAccounts", accounts.as_ref().map(drop).map_err(Clone::clone), true);
        assert_eq!(accounts.unwrap().iter().any(|b| b.account == "wage:P1"), p1, "{who} ListAccounts shows wage:P1");
        check("GetProject", q.get_project(pb::GetProjectRequest { at_seq: 0, project: "P1".into(), as_of: String::new() }).await.map(drop), p1);
        let projects = q.list_projects(pb::ListProjectsRequest::default()).await.map(|r| r.into_inner().projects);
        check("ListProjects", projects.as_ref().map(drop).map_err(Clone::clone), true);
        assert_eq!(projects.unwrap().iter().any(|p| p.project == "P1"), p1, "{who} ListProjects shows P1");
        check("ListFlags", q.list_flags(pb::ListFlagsRequest::default()).await.map(drop), true);
        let w = pb::GetWorkerRequest { at_seq: 0, who: Some(pb::get_worker_request::Who::NationalId(nid(1))), as_of: String::new() };
        check("GetWorker", q.get_worker(w).await.map(drop), p1);
        check("GetPayroll", q.get_payroll(pb::GetPayrollRequest { project: "P1".into(), period: "2026-01".into(), ..Default::default() }).await.map(drop), p1);
        check("GetCountySummary", q.get_county_summary(pb::GetCountySummaryRequest { at_seq: 0, county: COUNTY.into(), as_of: String::new() }).await.map(drop), reads_county.contains(&who));
        check("GetProjectHistory", q.get_project_history(pb::GetProjectHistoryRequest { as_of: String::new(), at_seq: 0, project: "P1".into() }).await.map(drop), p1);
        let workers = q.list_workers(pb::ListWorkersRequest { masked_id: format!("{}**********{}", &nid(1)[..4], &nid(1)[14..]), ..Default::default() }).await.map(|r| r.into_inner().workers);
        check("ListWorkers", workers.as_ref().map(drop).map_err(Clone::clone), true);
        assert_eq!(!workers.unwrap().is_empty(), p1, "{who} ListWorkers shows P1's workers");
        check("GetCheckpoint", a.get_checkpoint(pb::GetCheckpointRequest::default()).await.map(drop), true);
        check("GetPublicKey", a.get_public_key(pb::GetPublicKeyRequest {}).await.map(drop), true);
        check("ReadEvents", a.read_events(pb::ReadEventsRequest { from_seq: 1, to_seq: 2 }).await.map(drop), true);
        check("GetInclusionProof", a.get_inclusion_proof(pb::GetInclusionProofRequest { seq: 1, tree_size: 0 }).await.map(drop), true);
        check("GetConsistencyProof", a.get_consistency_proof(pb::GetConsistencyProofRequest { from_size: 1, to_size: 2 }).await.map(drop), true);
        let sub = a.subscribe(pb::SubscribeRequest { from_seq: 1 }).await.map(|r| r.into_inner());
        check("Subscribe", sub.as_ref().map(drop).map_err(Clone::clone), true);
        drop(sub);
        let mut admin = pb::ledger_admin_client::LedgerAdminClient::with_interceptor(s.channel().await, Auth(Some(s.token(who))));
        let r = match admin.backup(pb::BackupRequest {}).await {
            // Read the first chunk: the backup really started.
            Ok(r) => r.into_inner().message().await.map(|c| assert!(c.is_some_and(|c| c.data.starts_with(anxin::backup::MAGIC)))),
            Err(e) => Err(e),
        };
        check("Backup", r, who == "operator");
    }
    assert_eq!(tried, 8 * 19, "19 RPCs by 8 roles");
    s.stop().await;
}

/// Who reads which records (issue 18): operators, auditors and county offices every one;
/// a bank or a contractor the records it posted and those of its projects except the
/// county's casework; the rest as header, hash and leaf only, with which every reader
/// still checks the chain and the signed root. Pinned per role against the rule written
/// out here from the records themselves, for `ReadEvents` and `GetReceipt`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_reads_which_records() {
    use anxin::domain::principal::Principal;
    use tokio_stream::StreamExt;
    let s = TestServer::start().await;
    let county = format!("county:{COUNTY}");
    // P1: its wage account at ICBC, its contractor gc(). P2: at ABC, its contractor other_gc().
    let mut p2 = register("P2", COUNTY);
    if let Some(pb::command::Kind::RegisterProject(r)) = &mut p2.kind {
        r.general_contractor = crate::harness::other_gc().to_string();
    }
    s.ok(&county, "reg", vec![register("P1", COUNTY), p2]).await;
    s.ok("bank:ICBC", "icbc-0", vec![open_account("P1", "ICBC")]).await;
    s.ok("bank:ABC", "abc-0", vec![open_account("P2", "ABC")]).await;
    s.ok("bank:ICBC", "icbc-1", vec![deposit("P1", "ICBC", "D1", "1000"), topup("P1", "T1", "500")]).await;
    s.ok("bank:ABC", "abc-1", vec![deposit("P2", "ABC", "D2", "1000"), topup("P2", "T2", "700")]).await;
    // ICBC posts for a project it does not hold (a deposit it collected for P2): its own record.
    s.ok("bank:ICBC", "icbc-2", vec![deposit("P2", "ICBC", "D3", "300")]).await;
    s.ok(&format!("contractor:{}", gc()), "gc-1", vec![enrol("P1", 1)]).await;
    // The bank's own card counts (casework, but its own); an inspection of P1 (casework:
    // not ICBC's or the contractor's to read, though P1 is theirs).
    s.ok("bank:ICBC", "cards", vec![cmd(pb::command::Kind::RecordCards(pb::RecordCards { county: COUNTY.into(), bank: "ICBC".into(), date: "2026-02-01".into(), issued: 5, activated: 3 }))]).await;
    s.ok(&county, "insp", vec![cmd(pb::command::Kind::RecordInspection(pb::RecordInspection { county: COUNTY.into(), employer: gc().to_string(), date: "2026-02-03".into(), project: "P1".into(), contracts_signed: 2, findings: "补签劳动合同".into(), ..Default::default() }))]).await;
    let all: Vec<pb::RecordBytes> = s.audit("auditor").await.read_events(pb::ReadEventsRequest { from_seq: 1, to_seq: 0 }).await.unwrap().into_inner().map(|r| r.unwrap()).collect().await;
    let recs: Vec<anxin::chain::record::Record> = all.iter().map(|r| anxin::chain::record::Record::decode(&r.canonical).unwrap()).collect();
    let cp = anxin::api::convert::checkpoint_from_pb(&s.audit("auditor").await.get_checkpoint(pb::GetCheckpointRequest::default()).await.unwrap().into_inner()).unwrap();
    // The rule, from the records alone: whose project is which.
    let holds = |who: &Principal, project: Option<&str>| match (who, project) {
        (Principal::Bank(b), Some(p)) => (b.as_str() == "ICBC" && p == "P1") || (b.as_str() == "ABC" && p == "P2"),
        (Principal::Contractor(u), Some(p)) => (*u == gc() && p == "P1") || (*u == crate::harness::other_gc() && p == "P2"),
        _ => false,
    };
    let expect = |who: &Principal, r: &anxin::chain::record::Record| match who {
        Principal::Operator | Principal::Auditor | Principal::County(_) => true,
        _ => r.principal == *who || (!r.event.is_casework() && holds(who, r.event.project().map(|p| p.as_str()))),
    };
    for who in ["operator".to_owned(), "auditor".to_owned(), county.clone(), "bank:ICBC".into(), "bank:ABC".into(), format!("contractor:{}", gc()), format!("contractor:{}", crate::harness::other_gc())] {
        let principal = Principal::parse(&who).unwrap();
        let seen: Vec<pb::RecordBytes> = s.audit(&who).await.read_events(pb::ReadEventsRequest { from_seq: 1, to_seq: 0 }).await.unwrap().into_inner().map(|r| r.unwrap()).collect().await;
        assert_eq!(seen.len(), all.len(), "{who}");
        let mut v = anxin::audit::Catchup::from_genesis(LEDGER_ID);
        let mut readable = 0;
        for ((full, got), rec) in all.iter().zip(&seen).zip(&recs) {
            let want = expect(&principal, rec);
            assert_eq!(!got.withheld, want, "{who}: record {} ({}, posted by {})", rec.seq, rec.event.name(), rec.principal);
            assert_eq!((&got.hash, &got.leaf_hash), (&full.hash, &full.leaf_hash), "every hash is everyone's");
            if got.withheld {
                assert_eq!(got.canonical.len(), anxin::chain::record::HEADER_BYTES);
                v.feed_withheld(&got.canonical, got.hash.clone().try_into().unwrap(), got.leaf_hash.clone().try_into().unwrap()).unwrap();
            } else {
                readable += 1;
                assert_eq!(got.canonical, full.canonical);
                v.feed(&got.canonical).unwrap();
                // A receipt for what it reads; none for what it does not.
            }
            let receipt = s.audit(&who).await.get_receipt(pb::GetReceiptRequest { first_seq: rec.seq, last_seq: 0, witnessed: false }).await;
            assert_eq!(receipt.is_ok(), want, "{who}: the receipt of record {}", rec.seq);
        }
        v.finish(&cp, "pinned").unwrap_or_else(|e| panic!("{who}: {e}"));
        match principal {
            Principal::Bank(_) | Principal::Contractor(_) => assert!(readable > 0 && readable < all.len(), "{who} reads some, not all: {readable}"),
            _ => assert_eq!(readable, all.len()),
        }
    }
}
