//! A real server on a loopback port, clients with tokens, and wire commands.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use anxin::api::auth::{new_token, Principals};
use anxin::api::pb;
use anxin::api::pb::command::Kind;
use anxin::api::{self, Api, Tls};
use anxin::domain::ids::{BankCard, NationalId, Uscc};
use anxin::domain::principal::Principal;
use anxin::ledger::{Ledger, LedgerOptions};
use anxin::vault::Vault;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub const LEDGER_ID: &str = "anxin-api-test";
pub const COUNTY: &str = "620121";
pub const OTHER_COUNTY: &str = "620102";

pub fn gc() -> Uscc {
    Uscc::with_check("91620121MA0000001")
}

pub fn other_gc() -> Uscc {
    Uscc::with_check("91620121MA0000002")
}

pub fn owner() -> Uscc {
    Uscc::with_check("91620121MB0000001")
}

pub fn employer() -> Uscc {
    Uscc::with_check("91620121MC0000001")
}

pub fn nid(n: u32) -> String {
    NationalId::with_check(&format!("62012119{:02}0101{:03}", 70 + n % 30, n % 1000)).expose_clear().to_owned()
}

pub fn card(n: u32) -> String {
    BankCard::with_check(&format!("621700{:012}", 500_000 + n)).expose_clear().to_owned()
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub tokens: BTreeMap<String, String>,
    pub dir: tempfile::TempDir,
    pub ledger: Arc<Ledger>,
    pub api: Api,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

pub fn roles() -> Vec<Principal> {
    [
        "operator".to_owned(),
        "auditor".to_owned(),
        format!("county:{COUNTY}"),
        format!("county:{OTHER_COUNTY}"),
        "bank:ICBC".to_owned(),
        "bank:ABC".to_owned(),
        format!("contractor:{}", gc()),
        format!("contractor:{}", other_gc()),
    ]
    .iter()
    .map(|s| Principal::parse(s).unwrap())
    .collect()
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(None).await
    }

    pub async fn start_with(tls: Option<Tls>) -> TestServer {
        TestServer::start_limited(tls, anxin::limits::CALLS_PER_PRINCIPAL_MAX).await
    }

    /// With at most `calls` calls in flight per principal.
    pub async fn start_limited(tls: Option<Tls>, calls: usize) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let mut principals = Principals::default();
        let mut tokens = BTreeMap::new();
        for p in roles() {
            let t = new_token();
            principals.add(p.clone(), &t);
            tokens.insert(p.to_string(), t);
        }
        let ledger = Arc::new(Ledger::open(dir.path(), LedgerOptions { ledger_id: Some(LEDGER_ID.into()), ..Default::default() }).unwrap());
        let vault = Arc::new(Vault::open(&dir.path().join("vault")).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let api = Api { ledger: ledger.clone(), vault, principals: Arc::new(principals), calls: Arc::new(anxin::api::auth::CallLimits::new(calls)) };
        let kept = api.clone();
        let task = tokio::spawn(async move {
            api::serve(api, listener, tls, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        TestServer { addr, tokens, dir, ledger, api: kept, shutdown: Some(tx), task: Some(task) }
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
    }

    pub fn token(&self, who: &str) -> String {
        self.tokens.get(who).unwrap_or_else(|| panic!("no token for {who}")).clone()
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr)).unwrap().connect().await.unwrap()
    }

    pub async fn posting(&self, who: &str) -> pb::ledger_posting_client::LedgerPostingClient<InterceptedService<Channel, Auth>> {
        pb::ledger_posting_client::LedgerPostingClient::with_interceptor(self.channel().await, Auth(Some(self.token(who))))
    }

    pub async fn query(&self, who: &str) -> pb::ledger_query_client::LedgerQueryClient<InterceptedService<Channel, Auth>> {
        pb::ledger_query_client::LedgerQueryClient::with_interceptor(self.channel().await, Auth(Some(self.token(who))))
    }

    pub async fn audit(&self, who: &str) -> pb::ledger_audit_client::LedgerAuditClient<InterceptedService<Channel, Auth>> {
        pb::ledger_audit_client::LedgerAuditClient::with_interceptor(self.channel().await, Auth(Some(self.token(who))))
    }

    /// Submits as `who`; panics unless accepted.
    pub async fn ok(&self, who: &str, request_id: &str, commands: Vec<pb::Command>) -> pb::SubmitResponse {
        self.posting(who)
            .await
            .submit(pb::SubmitRequest { request_id: request_id.into(), commands })
            .await
            .unwrap_or_else(|s| panic!("{request_id} as {who}: {s:?}"))
            .into_inner()
    }

    /// Submits as `who`; returns (code, reason, index) of the refusal.
    pub async fn refused(&self, who: &str, request_id: &str, commands: Vec<pb::Command>) -> (tonic::Code, String, Option<usize>) {
        let s = self.posting(who).await.submit(pb::SubmitRequest { request_id: request_id.into(), commands }).await.expect_err("expected a refusal");
        let (reason, index) = anxin::api::error::reason_of(&s);
        (s.code(), reason.unwrap_or_default(), index)
    }

    /// A project P1 in COUNTY, an open wage account at ICBC, a deposit, `workers`
    /// enrolled with contracts, and a progress payment of ¥100,000 with ¥30,000 to wages.
    pub async fn setup_project(&self, workers: u32) {
        let county = format!("county:{COUNTY}");
        let gcp = format!("contractor:{}", gc());
        self.ok(&county, "setup-register", vec![register("P1", COUNTY)]).await;
        self.ok("bank:ICBC", "setup-bank", vec![open_account("P1", "ICBC"), deposit("P1", "ICBC", "D1", "200000"), progress("P1", "G1", "100000", "30000")]).await;
        let mut cmds = Vec::new();
        for n in 1..=workers {
            cmds.push(enrol("P1", n));
            cmds.push(cmd(Kind::RecordContract(pb::RecordContract { project: "P1".into(), national_id: nid(n), contract_no: format!("HT-{n}"), date: "2026-01-16".into() })));
        }
        if !cmds.is_empty() {
            self.ok(&gcp, "setup-enrol", cmds).await;
        }
    }
}

#[derive(Clone)]
pub struct Auth(pub Option<String>);

impl tonic::service::Interceptor for Auth {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(t) = &self.0 {
            req.metadata_mut().insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        Ok(req)
    }
}

pub fn cmd(kind: Kind) -> pb::Command {
    pb::Command { kind: Some(kind) }
}

pub fn register(p: &str, county: &str) -> pb::Command {
    cmd(Kind::RegisterProject(pb::RegisterProject { registered_on: String::new(), deposit_basis: 0, deposit_exemption_basis: String::new(), funding: 0,
        project: p.into(),
        county: county.into(),
        name: "兰州新区安置房一期".into(),
        general_contractor: gc().to_string(),
        owner: owner().to_string(),
        contract_price: "10000000".into(),
        contract_date: "2026-01-05".into(),
        permit_date: "2026-01-12".into(),
        start_date: "2026-01-15".into(),
        planned_end: "2026-12-31".into(),
        labour_ratio_bp: 0,
        deposit_rate_bp: 0,
    }))
}

pub fn open_account(p: &str, bank: &str) -> pb::Command {
    cmd(Kind::OpenWageAccount(pb::OpenWageAccount { project: p.into(), bank: bank.into(), account_no: format!("2703001209-{p}"), date: "2026-01-10".into() }))
}

pub fn deposit(p: &str, bank: &str, no: &str, amount: &str) -> pb::Command {
    cmd(Kind::PayDeposit(pb::PayDeposit { project: p.into(), bank: bank.into(), payment_no: no.into(), amount: amount.into(), date: "2026-01-20".into() }))
}

pub fn progress(p: &str, no: &str, total: &str, share: &str) -> pb::Command {
    cmd(Kind::MakeProgressPayment(pb::MakeProgressPayment { project: p.into(), payment_no: no.into(), total: total.into(), wage_share: share.into(), date: "2026-02-05".into() }))
}

pub fn topup(p: &str, no: &str, amount: &str) -> pb::Command {
    cmd(Kind::TopUpWageAccount(pb::TopUpWageAccount { project: p.into(), payment_no: no.into(), amount: amount.into(), date: "2026-02-06".into() }))
}

pub fn enrol(p: &str, n: u32) -> pb::Command {
    cmd(Kind::EnrolWorker(pb::EnrolWorker { project: p.into(), national_id: nid(n), employer: employer().to_string(), bank_card: card(n), date: "2026-01-16".into() }))
}

pub fn payroll(p: &str, period: &str, lines: &[(u32, &str)]) -> pb::Command {
    cmd(Kind::SubmitPayroll(pb::SubmitPayroll { payroll_no: String::new(), submitted_on: String::new(),
        project: p.into(),
        period: period.into(),
        due_date: String::new(),
        lines: lines.iter().map(|(n, a)| pb::PayrollLine { national_id: nid(*n), employer: employer().to_string(), days: 22, amount_due: (*a).into() }).collect(),
    }))
}

pub fn pay(p: &str, no: &str, n: u32, amount: &str, period: &str) -> pb::Command {
    cmd(Kind::PayWage(pb::PayWage { project: p.into(), payment_no: no.into(), national_id: nid(n), bank_card: card(n), amount: amount.into(), date: "2026-02-10".into(), period: period.into() }))
}

pub fn status(p: &str, s: pb::ProjectStatus) -> pb::Command {
    cmd(Kind::ChangeProjectStatus(pb::ChangeProjectStatus { project: p.into(), status: s as i32, date: "2026-03-01".into() }))
}

/// Reads every record through ReadEvents and checks them as a chain from their bytes.
pub async fn read_and_verify(s: &TestServer) -> Vec<anxin::chain::record::Record> {
    use tokio_stream::StreamExt;
    let mut stream = s.audit("auditor").await.read_events(pb::ReadEventsRequest { from_seq: 1, to_seq: 0 }).await.unwrap().into_inner();
    let mut v = anxin::chain::record::ChainVerifier::new(LEDGER_ID);
    let mut out = Vec::new();
    while let Some(r) = stream.next().await {
        let r = r.unwrap();
        let (rec, hash) = v.check(&r.canonical).unwrap();
        assert_eq!((rec.seq, hash.to_vec()), (r.seq, r.hash));
        out.push(rec);
    }
    out
}
