//! `anxin` as a client of a real server on a loopback port: the README's month-end, run
//! from the example files in `examples/month-end/`.

use std::path::PathBuf;
use std::process::Command;

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/month-end")
}

struct Server {
    addr: String,
    token: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

fn start() -> Server {
    start_configured(|_, _| {})
}

/// `start` with the configuration changed by `f` (given the server's temporary directory).
fn start_configured(f: impl FnOnce(&mut anxin::server::Config, &std::path::Path)) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let token = anxin::api::auth::new_token();
    let principals = dir.path().join("principals.toml");
    std::fs::write(&principals, anxin::api::auth::principals_entry(&anxin::domain::principal::Principal::Operator, &token)).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}").parse().unwrap();
    let mut cfg = anxin::server::Config::load(None, Some(listen), Some(dir.path().join("data")), Some(principals), None).unwrap();
    f(&mut cfg, dir.path());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(anxin::server::run(cfg, async {
            let _ = rx.await;
        }))
        .unwrap();
    });
    let addr = format!("http://127.0.0.1:{port}");
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    Server { addr, token, stop: Some(tx), thread: Some(thread), _dir: dir }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn anxin(s: &Server, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_anxin")).args(args).env("ANXIN_SERVER", &s.addr).env("ANXIN_TOKEN", &s.token).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_bank_posts_a_month_end_and_the_county_reads_it() {
    let s = start();
    let ex = examples();
    let file = |f: &str| ex.join(f).to_str().unwrap().to_owned();
    for f in ["setup.csv", "workers.jsonl", "progress.csv", "payroll.csv", "payouts.csv"] {
        let (ok, out, err) = anxin(&s, &["post", "--file", &file(f)]);
        assert!(ok, "{f}: {err}");
        assert!(out.contains("recorded as"), "{out}");
    }
    // Posting the same file again is a retry: nothing new is recorded.
    let (ok, out, _) = anxin(&s, &["post", "--file", &file("payouts.csv")]);
    assert!(ok && out.contains("already recorded"), "{out}");
    // One command from the command line.
    let (ok, out, err) = anxin(&s, &["post", "top_up_wage_account", "project=P01", "payment_no=BF-1", "amount=100.00", "date=2026-02-11"]);
    assert!(ok, "{err}{out}");
    // A refusal says why, with its reason code, and the exit status says so.
    let (ok, _, err) = anxin(&s, &["post", "top_up_wage_account", "project=P01", "payment_no=BF-2", "amount=1.001", "date=2026-02-11"]);
    assert!(!ok && err.contains("AMOUNT_TOO_PRECISE"), "{err}");
    // The deposit setup.csv paid cannot be counted again under the same payment number,
    // whatever the request id (issue 12: it was, twice, and the cover was overstated).
    for day in ["2026-01-21", "2026-01-22"] {
        let (ok, _, err) = anxin(&s, &["post", "pay_deposit", "project=P01", "bank=ICBC", "payment_no=BZJ-P01-1", "amount=1000", &format!("date={day}")]);
        assert!(!ok && err.contains("DUPLICATE_PAYMENT_NO"), "{err}");
    }
    let (ok, out, _) = anxin(&s, &["project", "P01", "--json"]);
    assert!(ok, "{out}");
    let p: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(p["deposit_cash"], "240000.00", "the deposit is counted once: {p}");

    let (ok, out, _) = anxin(&s, &["balance", "wage:P01"]);
    assert!(ok && out.contains("1949.50"), "{out}"); // 18000 - 16150.50 + 100
    let (ok, out, _) = anxin(&s, &["project", "P01", "--as-of", "2026-02-20", "--json"]);
    assert!(ok, "{out}");
    let p: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((p["wages_paid_total"].as_str(), p["workers_with_contract"].as_u64()), (Some("16150.50"), Some(3)));
    let (ok, out, _) = anxin(&s, &["county", "620121", "--as-of", "2026-02-20"]);
    assert!(ok && out.contains("registered 3") && out.contains("16150.50 to 3 workers"), "{out}");
    let (ok, out, _) = anxin(&s, &["flags", "--as-of", "2026-02-20"]);
    assert!(ok && out.contains("no open flags"), "{out}");
    let (ok, out, _) = anxin(&s, &["payroll", "P01", "2026-01", "--as-of", "2026-02-20"]);
    assert!(ok && out.contains("paid 16150.50"), "{out}");
    let (ok, out, _) = anxin(&s, &["worker", "--national-id", "62012119851103013X"]);
    assert!(ok && out.contains("paid 6100.00") && !out.contains("19851103"), "{out}");
    let (ok, out, _) = anxin(&s, &["project", "--as-of", "2026-02-20"]);
    assert!(ok && out.contains("P01") && out.contains("green"), "{out}");
}

#[test]
fn token_new_prints_a_token_and_its_principals_entry() {
    let out = Command::new(env!("CARGO_BIN_EXE_anxin")).args(["token", "new", "--role", "bank", "--scope", "ICBC"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let token = text.split_whitespace().find(|w| w.starts_with("anx_")).unwrap();
    let entry = &text[text.find("[[principal]]").unwrap()..];
    let p = anxin::api::auth::Principals::parse(entry).unwrap();
    assert_eq!(p.authenticate(token).unwrap().to_string(), "bank:ICBC");
    let bad = Command::new(env!("CARGO_BIN_EXE_anxin")).args(["token", "new", "--role", "bank"]).output().unwrap();
    assert!(!bad.status.success());
}

#[test]
fn an_auditor_follows_the_readme_from_scratch() {
    let s = start();
    let ex = examples();
    let file = |f: &str| ex.join(f).to_str().unwrap().to_owned();
    for f in ["setup.csv", "workers.jsonl", "progress.csv"] {
        assert!(anxin(&s, &["post", "--file", &file(f)]).0);
    }
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("auditor-state.json");
    let state_s = state.to_str().unwrap();

    // Pin the key once.
    let (ok, out, _) = anxin(&s, &["public-key"]);
    assert!(ok);
    let key = out.split_whitespace().next().unwrap().to_owned();
    assert!(key.starts_with("anxin/") && key.contains('+'), "the standard verifier key: {key}");

    // First visit: everything from genesis.
    let (ok, out, err) = anxin(&s, &["audit", "--key", &key, "--state", state_s]);
    assert!(ok && out.contains("new record(s) verified since size 0"), "{out}{err}");
    // New records arrive; the second visit checks consistency and only the new ones.
    let (ok, out, _) = anxin(&s, &["post", "--json", "--file", &file("payroll.csv")]);
    assert!(ok);
    std::fs::write(dir.path().join("receipt.json"), &out).unwrap();
    let (ok, out, err) = anxin(&s, &["audit", "--key", &key, "--state", state_s]);
    assert!(ok && out.contains("1 new record(s) verified since size 10"), "{out}{err}");

    // A bank checks its receipt; anyone proves a record.
    let (ok, out, err) = anxin(&s, &["check-receipt", "--key", &key, "--receipt", dir.path().join("receipt.json").to_str().unwrap()]);
    assert!(ok && out.contains("is in the signed tree of 11 records"), "{out}{err}");
    let (ok, out, _) = anxin(&s, &["prove", "--seq", "5", "--key", &key]);
    assert!(ok && out.contains("record 5"), "{out}");

    // A wrong pinned key is refused.
    let wrong = format!("ed25519:{}", "11".repeat(32));
    let (ok, _, err) = anxin(&s, &["audit", "--key", &wrong, "--state", dir.path().join("other.json").to_str().unwrap()]);
    assert!(!ok, "{err}");

    // Export, then verify offline with anxin and with the independent Python verifier.
    let arch = dir.path().join("ledger.anxin");
    let (ok, out, err) = anxin(&s, &["export", "--out", arch.to_str().unwrap()]);
    assert!(ok && out.contains("exported 11 records"), "{out}{err}");
    let (ok, out, err) = anxin(&s, &["verify", "--archive", arch.to_str().unwrap(), "--key", &key]);
    assert!(ok && out.contains("11 records chain from genesis"), "{out}{err}");
    // Without a pinned key: the verdict is NOT PINNED (exit 2, as the Python verifier's).
    let (ok, out, err) = anxin(&s, &["verify", "--archive", arch.to_str().unwrap()]);
    assert!(!ok && out.contains("NOT PINNED") && err.contains("NO KEY PINNED"), "{out}{err}");
    let py = Command::new("python3").arg(ex.join("../verify_archive.py")).arg(&arch).args(["--key", &key]).output().unwrap();
    assert!(py.status.success(), "{}{}", String::from_utf8_lossy(&py.stdout), String::from_utf8_lossy(&py.stderr));
}

/// Posts batches of `n` top-ups to P01 over gRPC, ids `{prefix}{k}`; returns (first, last)
/// of each acknowledged batch.
async fn post_topups(addr: &str, token: &str, prefix: &str, batches: usize, n: usize, stop: Option<&std::sync::atomic::AtomicBool>) -> Vec<(u64, u64)> {
    use anxin::api::pb;
    let ch = tonic::transport::Channel::from_shared(addr.to_owned()).unwrap().connect().await.unwrap();
    let bearer: tonic::metadata::MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
    let mut p = pb::ledger_posting_client::LedgerPostingClient::with_interceptor(ch, move |mut r: tonic::Request<()>| {
        r.metadata_mut().insert("authorization", bearer.clone());
        Ok(r)
    });
    let mut out = Vec::new();
    for k in 0..batches {
        if stop.is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed)) {
            break;
        }
        let id = format!("{prefix}{k}");
        let commands = (0..n)
            .map(|i| pb::Command {
                kind: Some(pb::command::Kind::TopUpWageAccount(pb::TopUpWageAccount { project: "P01".into(), payment_no: format!("{id}-{i}"), amount: "1.00".into(), date: "2026-02-01".into() })),
            })
            .collect();
        let r = p.submit(pb::SubmitRequest { request_id: id, commands }).await.unwrap().into_inner();
        out.push((r.first_seq, r.last_seq));
    }
    out
}

#[test]
fn an_online_backup_while_writes_go_on_restores_and_verifies_against_its_signed_checkpoint() {
    let s = start();
    let ex = examples();
    for f in ["setup.csv", "workers.jsonl", "progress.csv"] {
        assert!(anxin(&s, &["post", "--file", ex.join(f).to_str().unwrap()]).0, "{f}");
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    // Enough records that the backup takes a while.
    rt.block_on(post_topups(&s.addr, &s.token, "pre-", 20, 2_000, None));
    let (_, key, _) = anxin(&s, &["public-key"]);
    let key = key.split_whitespace().next().unwrap().to_owned();

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ledger.anxbak");
    let file_s = file.to_str().unwrap();
    // Writers go on during the backup.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (addr, token, stop) = (s.addr.clone(), s.token.clone(), stop.clone());
        rt.spawn(async move { post_topups(&addr, &token, "during-", 10_000, 200, Some(&stop)).await })
    };
    std::thread::sleep(std::time::Duration::from_millis(100));
    let (ok, out, err) = anxin(&s, &["backup", "--out", file_s, "--key", &key, "--json"]);
    assert!(ok, "{err}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let during = rt.block_on(writer).unwrap();
    let b: serde_json::Value = serde_json::from_str(&out).unwrap();
    let size = b["tree_size"].as_u64().unwrap();
    assert_eq!(b["records"].as_u64(), Some(size));
    assert!(size > 40_000, "{size}");
    assert!(b["salts"].as_u64().unwrap() >= 6, "the vault came along: {b}");
    assert!(!during.is_empty() && during.last().unwrap().1 > size, "writes went on past the backup's checkpoint: {during:?} vs {size}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600, "the backup holds the keys");
    }

    // Restore into a new directory: every record checked against the signed checkpoint.
    let data = dir.path().join("restored");
    let data_s = data.to_str().unwrap();
    let (ok, out, err) = anxin(&s, &["restore", "--from", file_s, "--data", data_s, "--key", &key, "--json"]);
    assert!(ok, "{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((r["records"].as_u64(), r["root"].as_str()), (Some(size), b["root"].as_str()));
    let (ok, out, _) = anxin(&s, &["verify", "--data", data_s, "--json"]);
    assert!(ok, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((v["records"].as_u64(), v["checkpoint_agrees_at"].as_u64()), (Some(size), Some(size)));

    // The restored ledger is the live one's first `size` records, byte for byte, and its
    // latest checkpoint is the one the backup ended at.
    let live: Vec<Vec<u8>> = rt.block_on(async {
        use anxin::api::pb;
        let ch = tonic::transport::Channel::from_shared(s.addr.clone()).unwrap().connect().await.unwrap();
        let bearer: tonic::metadata::MetadataValue<_> = format!("Bearer {}", s.token).parse().unwrap();
        let mut a = pb::ledger_audit_client::LedgerAuditClient::with_interceptor(ch, move |mut r: tonic::Request<()>| {
            r.metadata_mut().insert("authorization", bearer.clone());
            Ok(r)
        });
        let mut st = a.read_events(pb::ReadEventsRequest { from_seq: 1, to_seq: size }).await.unwrap().into_inner();
        let mut out = Vec::new();
        while let Some(m) = st.message().await.unwrap() {
            out.push(m.canonical);
        }
        out
    });
    let restored = anxin::ledger::Ledger::open(&data, anxin::ledger::LedgerOptions::default()).unwrap();
    assert_eq!(restored.head().0, size);
    let ours: Vec<Vec<u8>> = restored.read_records(1, size).unwrap().into_iter().map(|(_, b)| b).collect();
    assert!(ours == live, "restored records differ from the live ledger's");
    let pinned = anxin::chain::checkpoint::key_from_text(&key).unwrap();
    let cp = restored.checkpoint().unwrap();
    cp.verify(&pinned).unwrap();
    assert_eq!((cp.checkpoint.tree_size, hex::encode(cp.checkpoint.root)), (size, b["root"].as_str().unwrap().to_owned()));
    // The vault came back too: a worker's national ID leads to the worker in the records.
    let vault = anxin::vault::Vault::open_for(&data.join("vault"), true).unwrap();
    let id = anxin::domain::ids::NationalId::parse("62012119851103013X").unwrap();
    let worker = vault.find_worker(&id).unwrap().expect("the restored vault knows the worker");
    assert!(restored.state().unwrap().workers.contains(&worker), "and its commitment is the one the records hold");
    drop(vault);
    restored.close().unwrap();

    // A damaged backup, a wrong key and an occupied directory are refused, writing nothing.
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    let damaged = dir.path().join("damaged.anxbak");
    std::fs::write(&damaged, &bytes).unwrap();
    let target = dir.path().join("from-damaged");
    let (ok, _, err) = anxin(&s, &["restore", "--from", damaged.to_str().unwrap(), "--data", target.to_str().unwrap()]);
    assert!(!ok && err.contains("restore FAILED"), "{err}");
    assert!(!target.exists() && !dir.path().join("from-damaged.restoring").exists(), "a failed restore leaves nothing");
    let other = ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key();
    let (ok, _, err) = anxin(&s, &["restore", "--from", file_s, "--data", target.to_str().unwrap(), "--key", &anxin::chain::checkpoint::key_to_text(&other)]);
    assert!(!ok && err.contains("not by the pinned key"), "{err}");
    let (ok, _, err) = anxin(&s, &["restore", "--from", file_s, "--data", data_s]);
    assert!(!ok && err.contains("not empty"), "{err}");
    let cut = dir.path().join("cut.anxbak");
    std::fs::write(&cut, &std::fs::read(&file).unwrap()[..mid]).unwrap();
    let (ok, _, err) = anxin(&s, &["restore", "--from", cut.to_str().unwrap(), "--data", target.to_str().unwrap()]);
    assert!(!ok && err.contains("cut short"), "{err}");
}

/// The README's casework and the county's work report (issue 17): a case from the
/// national platform closed citing the month-end's payouts, an order, an inspection and
/// a bank's card counts, then `anxin report` in Chinese and English, every figure exact
/// and footnoted with the query that produced it.
#[test]
fn the_casework_of_the_readme_and_the_work_report_it_prints() {
    let s = start();
    let ex = examples();
    for f in ["setup.csv", "workers.jsonl", "progress.csv", "payroll.csv", "payouts.csv"] {
        let (ok, _, err) = anxin(&s, &["post", "--file", ex.join(f).to_str().unwrap()]);
        assert!(ok, "{f}: {err}");
    }
    let post = |args: &[&str]| {
        let mut all = vec!["post"];
        all.extend_from_slice(args);
        let (ok, out, err) = anxin(&s, &all);
        assert!(ok, "{args:?}: {err}{out}");
    };
    post(&["open_case", "case_no=TS-2026-031", "county=620121", "source=national_platform", "received_on=2026-02-02", "employer=91620121MC00000011", "project=P01", "national_ids=620121198503010112;620121198507020123", "amount_claimed=10050.50"]);
    post(&["decide_case", "case_no=TS-2026-031", "county=620121", "date=2026-02-03", "accepted=true"]);
    // Citing a payout to a worker outside the case is refused, with its reason.
    let (ok, _, err) = anxin(&s, &["post", "close_case", "case_no=TS-2026-031", "county=620121", "date=2026-02-12", "outcome=recovered", "recovered=16150.50", "payout_seqs=12;13;14"]);
    assert!(!ok && err.contains("PAYOUT_NOT_CITABLE"), "{err}");
    post(&["close_case", "case_no=TS-2026-031", "county=620121", "date=2026-02-12", "outcome=recovered", "recovered=10050.50", "payout_seqs=12;13"]);
    post(&["open_case", "case_no=TS-2026-032", "county=620121", "source=complaint", "received_on=2026-03-02", "employer=91620121MC00000011", "national_ids=62012119851103013X", "amount_claimed=3000"]);
    post(&["issue_order", "order_no=LZ-2026-001", "county=620121", "project=P01", "employer=91620121MC00000011", "issued_on=2026-03-03", "deadline=2026-03-17", "amount=3000", "workers=1", "largest=3000", "demand=限期支付二月工资"]);
    post(&["record_inspection", "county=620121", "employer=91620121MC00000011", "date=2026-04-08", "project=P01", "contracts_signed=23", "findings=补签劳动合同"]);
    post(&["record_cards", "county=620121", "bank=ICBC", "date=2026-04-30", "issued=861", "activated=872"]);

    let (ok, out, _) = anxin(&s, &["cases", "620121", "--as-of", "2026-05-31"]);
    assert!(ok && out.contains("TS-2026-031") && out.contains("closed") && out.contains("10050.50"), "{out}");
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, err) = anxin(&s, &["report", "--county", "620121", "--from", "2026-01-01", "--to", "2026-05-31", "--out", dir.path().to_str().unwrap()]);
    assert!(ok, "{err}{out}");
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    for want in [
        "期内通过专用账户向工人本人银行卡发放工资 **¥16,150.50**",
        "惠及 **3**",
        "发放联名工资卡 **861**",
        "激活 **872**",
        "全国根治欠薪线索反映平台：收到 **1**",
        "办结率 **100.00%**",
        "为 **2**",
        "追回工资 **¥10,050.50**",
        "来电来访投诉：收到 **1**",
        "检查用人单位 **1**",
        "现场签订劳动合同 **23**",
        "下达限期整改指令书 **1**",
        "逾期未履行 **1**",
        "限期整改指令书逾期未履行（ORDER_UNMET） (红色): **P01**",
        "`GetCountyReport county=620121 from=2026-01-01 to=2026-05-31 at_seq=21` → `wages_paid`",
    ] {
        assert!(md.contains(want), "missing {want:?} in:\n{md}");
    }
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert_eq!(html.matches("<li id=\"fn").count(), md.lines().filter(|l| l.starts_with("[^")).count());
    let (ok, en, _) = anxin(&s, &["report", "--county", "620121", "--from", "2026-01-01", "--to", "2026-05-31", "--lang", "en"]);
    assert!(ok && en.contains("in the period: **¥16,150.50**") && en.contains("From the national wage-arrears lead platform: **1**[^"), "{en}");
    // A bank may not read the county's report.
    let (ok, _, err) = Command::new(env!("CARGO_BIN_EXE_anxin")).args(["report", "--county", "620121", "--from", "2026-01-01", "--to", "2026-05-31"]).env("ANXIN_SERVER", &s.addr).env("ANXIN_TOKEN", "anx_not-a-token").output().map(|o| (o.status.success(), (), String::from_utf8_lossy(&o.stderr).into_owned())).unwrap();
    assert!(!ok && err.contains("Unauthenticated"), "{err}");
}

/// A witness process (`anxin witness`) on a fixed port, key and state, killed on drop.
struct WitnessProc {
    name: String,
    port: u16,
    key: std::path::PathBuf,
    state: std::path::PathBuf,
    logs: std::path::PathBuf,
    child: Option<std::process::Child>,
}

impl WitnessProc {
    fn spawn(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_anxin"))
            .args(["witness", "--listen", &format!("127.0.0.1:{}", self.port), "--name", &self.name])
            .arg("--key")
            .arg(&self.key)
            .arg("--logs")
            .arg(&self.logs)
            .arg("--state")
            .arg(&self.state)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        for _ in 0..400 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("the witness {} did not start", self.name);
    }

    /// SIGKILL, as a crash.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The size it last cosigned for `origin`, from its state file.
    fn cosigned(&self, origin: &str) -> u64 {
        let Ok(b) = std::fs::read(self.state.join("state.json")) else { return 0 };
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        v[origin]["size"].as_u64().unwrap_or(0)
    }
}

impl Drop for WitnessProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Three witnesses, a 2-of-3 policy, and witnesses killed with SIGKILL and restarted
/// while batches are posted: every witness keeps what it cosigned across its crashes
/// (never going back), the ledger's witnessed checkpoint reaches the head with the
/// quorum, `anxin audit --policy` and `check-receipt --policy` accept it, and a policy
/// the cosignatures do not meet (3 of 3, one witness gone) is refused.
/// `ANXIN_WITNESS_ROUNDS` (default 6) sets the rounds.
#[test]
fn three_witnesses_two_needed_through_a_crash_loop() {
    use anxin::api::pb;
    let dir = tempfile::tempdir().unwrap();
    let ledger_id = "county-620121-witnessed";
    let seed_path = dir.path().join("ledger.seed");
    std::fs::write(&seed_path, [7u8; 32]).unwrap();
    let log_key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]).verifying_key();
    let log_vkey = anxin::chain::checkpoint::vkey(ledger_id, &log_key);
    let origin = format!("anxin/{ledger_id}");
    let logs = dir.path().join("logs.txt");
    std::fs::write(&logs, format!("# the county's ledger\nlog {log_vkey}\n")).unwrap();
    let mut ws: Vec<WitnessProc> = (0..3)
        .map(|i| {
            let key = dir.path().join(format!("w{i}.seed"));
            std::fs::write(&key, [20 + i as u8; 32]).unwrap();
            let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            WitnessProc { name: format!("w{i}.example/witness"), port, key, state: dir.path().join(format!("w{i}-state")), logs: logs.clone(), child: None }
        })
        .collect();
    let wkey = |i: usize| anxin::chain::cosignature::Cosigner::new(&ws[i].name, ed25519_dalek::SigningKey::from_bytes(&[20 + i as u8; 32])).unwrap().public().vkey();
    let policy = |q: &str| {
        let mut t = format!("log {log_vkey}\n");
        for (i, w) in ws.iter().enumerate() {
            t.push_str(&format!("witness w{i} {} http://127.0.0.1:{}\n", wkey(i), w.port));
        }
        t.push_str(&format!("group q {q} w0 w1 w2\nquorum q\n"));
        t
    };
    let two = dir.path().join("two-of-three.policy");
    std::fs::write(&two, policy("2")).unwrap();
    let all = dir.path().join("all-three.policy");
    std::fs::write(&all, policy("all")).unwrap();
    for w in &mut ws {
        w.spawn();
    }
    let (two_c, seed_c) = (two.clone(), seed_path.clone());
    let tiles = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let s = start_configured(move |cfg, _| {
        cfg.ledger_id = Some(ledger_id.into());
        cfg.file.signing_key = Some(seed_c);
        cfg.file.witness_policy = Some(two_c);
        cfg.file.tiles = Some(format!("127.0.0.1:{tiles}").parse().unwrap());
    });
    let ex = examples();
    for f in ["setup.csv", "workers.jsonl", "progress.csv", "payroll.csv"] {
        assert!(anxin(&s, &["post", "--json", "--file", ex.join(f).to_str().unwrap()]).0, "{f}");
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let rounds: usize = std::env::var("ANXIN_WITNESS_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(6);
    let mut high = [0u64; 3];
    for round in 0..rounds {
        rt.block_on(post_topups(&s.addr, &s.token, &format!("r{round}-"), 3, 50, None));
        let victim = round % 3;
        std::thread::sleep(std::time::Duration::from_millis(150 + 70 * (round as u64 % 4)));
        let before = ws[victim].cosigned(&origin);
        ws[victim].kill();
        rt.block_on(post_topups(&s.addr, &s.token, &format!("d{round}-"), 2, 50, None));
        ws[victim].spawn();
        let after = ws[victim].cosigned(&origin);
        assert!(after >= before, "round {round}: witness {victim} went back from {before} to {after} across a crash");
        for (i, w) in ws.iter().enumerate() {
            let now = w.cosigned(&origin);
            assert!(now >= high[i], "round {round}: witness {i} went back from {} to {now}", high[i]);
            high[i] = now;
        }
    }
    // The witnessed checkpoint catches up with the head, with the quorum.
    let head = rt.block_on(async {
        let ch = tonic::transport::Channel::from_shared(s.addr.clone()).unwrap().connect().await.unwrap();
        let bearer: tonic::metadata::MetadataValue<_> = format!("Bearer {}", s.token).parse().unwrap();
        let mut a = pb::ledger_audit_client::LedgerAuditClient::with_interceptor(ch, move |mut r: tonic::Request<()>| {
            r.metadata_mut().insert("authorization", bearer.clone());
            Ok(r)
        });
        let head = a.get_checkpoint(pb::GetCheckpointRequest::default()).await.unwrap().into_inner().tree_size;
        for _ in 0..150 {
            if let Ok(w) = a.get_checkpoint(pb::GetCheckpointRequest { witnessed: true }).await {
                let cp = anxin::api::convert::checkpoint_from_pb(&w.into_inner()).unwrap();
                if cp.checkpoint.tree_size == head {
                    let p = anxin::chain::policy::Policy::parse(&std::fs::read_to_string(&two).unwrap()).unwrap();
                    assert!(p.check(&cp).unwrap().len() >= 2);
                    return head;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("the witnessed checkpoint did not reach the head {head}");
    });
    assert!(head > 1_000, "{head}");
    // The auditor with the policy; the bank's receipt with it.
    let state = dir.path().join("auditor.json");
    let (ok, out, err) = anxin(&s, &["audit", "--key", &log_vkey, "--state", state.to_str().unwrap(), "--policy", two.to_str().unwrap()]);
    assert!(ok && out.contains(&format!("checkpoint of {head} records")) && err.contains("witnessed: the checkpoint"), "{out}{err}");
    // The tiles publish the witnessed checkpoint, cosignatures and all: audited from them.
    let out = Command::new(env!("CARGO_BIN_EXE_anxin")).args(["--token", &s.token, "audit", "--tiles", &format!("http://127.0.0.1:{tiles}"), "--key", &log_vkey, "--state", dir.path().join("tiles.json").to_str().unwrap(), "--policy", two.to_str().unwrap()]).output().unwrap();
    let (out, err) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.contains(&format!("checkpoint of {head} records")) && err.contains("witnessed: the checkpoint"), "{out}{err}");
    let (ok, receipt, err) = anxin(&s, &["post", "--json", "--file", ex.join("payouts.csv").to_str().unwrap()]);
    assert!(ok, "{err}");
    let rfile = dir.path().join("receipt.json");
    std::fs::write(&rfile, receipt).unwrap();
    let mut checked = false;
    for _ in 0..100 {
        let (ok, out, err) = anxin(&s, &["check-receipt", "--key", &log_vkey, "--receipt", rfile.to_str().unwrap(), "--policy", two.to_str().unwrap()]);
        if ok {
            assert!(out.contains("is in the signed tree"), "{out}");
            checked = true;
            break;
        }
        assert!(err.contains("ask again"), "{err}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(checked, "the receipt was never covered by a witnessed checkpoint");
    // A worker's payout as an offline receipt, checked with no server at all.
    let posted: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&rfile).unwrap()).unwrap();
    let payout = posted[0]["last_seq"].as_u64().unwrap();
    let proof = dir.path().join("payout.tlog-proof");
    let (ok, _, err) = anxin(&s, &["receipt", "--first", &payout.to_string(), "--witnessed", "--out", proof.to_str().unwrap()]);
    assert!(ok, "{err}");
    let offline = |file: &std::path::Path, policy: &std::path::Path| {
        let out = Command::new(env!("CARGO_BIN_EXE_anxin")).args(["check-receipt", "--key", &log_vkey, "--proof", file.to_str().unwrap(), "--policy", policy.to_str().unwrap()]).env("ANXIN_SERVER", "http://127.0.0.1:1").env_remove("ANXIN_TOKEN").output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
    };
    let (ok, out) = offline(&proof, &two);
    assert!(ok && out.contains(&format!("records {payout} to {payout}")) && out.contains("cosigned by") && out.contains("WagePaid"), "{out}");
    let forged = dir.path().join("forged.tlog-proof");
    let text = std::fs::read_to_string(&proof).unwrap();
    let tampered = text.replacen("\nindex ", "\nindex 1", 1);
    std::fs::write(&forged, tampered).unwrap();
    assert!(!offline(&forged, &two).0, "a receipt for another leaf");
    // One witness gone for good: the ledger is still witnessed 2 of 3, but not 3 of 3.
    ws[2].kill();
    rt.block_on(post_topups(&s.addr, &s.token, "late-", 2, 50, None));
    std::thread::sleep(std::time::Duration::from_millis(2_500));
    let (ok, _, err) = anxin(&s, &["audit", "--key", &log_vkey, "--state", dir.path().join("strict.json").to_str().unwrap(), "--policy", all.to_str().unwrap()]);
    assert!(!ok && err.contains("not witnessed by the policy's quorum"), "{err}");
}

/// What an auditor's saved state and the server's checkpoint cannot both be: a split view
/// (the same size, another root, both signed by the pinned key) and a rollback (the
/// server's tree smaller than one it signed before) are named, and the split view's two
/// signed notes are kept together as evidence.
#[test]
fn a_split_view_and_a_rollback_are_named_and_kept_as_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("ledger.seed");
    std::fs::write(&seed, [8u8; 32]).unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&[8u8; 32]);
    let tiles = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let s = start_configured(move |cfg, _| {
        cfg.ledger_id = Some("county-split".into());
        cfg.file.signing_key = Some(seed);
        cfg.file.tiles = Some(format!("127.0.0.1:{tiles}").parse().unwrap());
    });
    let url = format!("http://127.0.0.1:{tiles}");
    for f in ["setup.csv", "workers.jsonl", "progress.csv"] {
        assert!(anxin(&s, &["post", "--file", examples().join(f).to_str().unwrap()]).0, "{f}");
    }
    let vk = anxin::chain::checkpoint::vkey("county-split", &key.verifying_key());
    let state = dir.path().join("auditor.json");
    let (ok, _, err) = anxin(&s, &["audit", "--key", &vk, "--state", state.to_str().unwrap()]);
    assert!(ok, "{err}");
    let saved: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    let cp = anxin::chain::checkpoint::SignedCheckpoint::from_note(saved["checkpoint"].as_str().unwrap().as_bytes()).unwrap();
    // Another history of the same size, signed by the same key (the key holder's doing).
    let with = |c: anxin::chain::checkpoint::Checkpoint, name: &str| {
        let mut v = saved.clone();
        v["checkpoint"] = c.sign(&key).to_note().into();
        let p = dir.path().join(name);
        std::fs::write(&p, v.to_string()).unwrap();
        p
    };
    let split = with(anxin::chain::checkpoint::Checkpoint { root: [9; 32], ..cp.checkpoint.clone() }, "split.json");
    let (ok, _, err) = anxin(&s, &["audit", "--key", &vk, "--state", split.to_str().unwrap()]);
    assert!(!ok && err.contains("SPLIT VIEW") && err.contains("evidence"), "{err}");
    let found = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).find(|p| p.file_name().unwrap().to_string_lossy().starts_with("split.evidence-")).expect("the evidence file");
    let evidence = std::fs::read_to_string(found).unwrap();
    assert!(evidence.contains(&cp.checkpoint.body()) && evidence.contains(&anxin::chain::checkpoint::Checkpoint { root: [9; 32], ..cp.checkpoint.clone() }.body()), "{evidence}");
    // A rollback: the auditor saw more than the server shows now.
    let ahead = with(anxin::chain::checkpoint::Checkpoint { tree_size: cp.checkpoint.tree_size + 5, ..cp.checkpoint.clone() }, "ahead.json");
    let (ok, _, err) = anxin(&s, &["audit", "--key", &vk, "--state", ahead.to_str().unwrap()]);
    assert!(!ok && err.contains("went backwards (a rollback)"), "{err}");
    // The same through the tiles, and a fork: a smaller tree the log does not extend (its
    // consistency proof, computed from tiles that do hash to the new signed root, fails).
    let via_tiles = |state: &std::path::Path| {
        let out = Command::new(env!("CARGO_BIN_EXE_anxin")).args(["--token", &s.token, "audit", "--tiles", &url, "--key", &vk, "--state", state.to_str().unwrap()]).env("ANXIN_SERVER", "http://127.0.0.1:1").output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (ok, err) = via_tiles(&split);
    assert!(!ok && err.contains("SPLIT VIEW"), "{err}");
    let (ok, err) = via_tiles(&ahead);
    assert!(!ok && err.contains("went backwards"), "{err}");
    let fork = with(anxin::chain::checkpoint::Checkpoint { tree_size: cp.checkpoint.tree_size - 3, root: [7; 32], ..cp.checkpoint.clone() }, "fork.json");
    let (ok, err) = via_tiles(&fork);
    assert!(!ok && err.contains("rewritten or forked") && err.contains("fork.evidence-"), "{err}");
    let (ok, err) = via_tiles(&state);
    assert!(ok, "the honest state audits through the tiles: {err}");
    // A checkpoint under the pinned key's name but another key's key ID: not signed by it.
    let other = anxin::chain::checkpoint::vkey("county-split", &ed25519_dalek::SigningKey::from_bytes(&[3; 32]).verifying_key());
    let (ok, _, err) = anxin(&s, &["audit", "--key", &other, "--state", dir.path().join("o.json").to_str().unwrap()]);
    assert!(!ok && err.contains("no signature of the pinned key"), "{err}");
    // A verifier key of another log (the right key bytes under another name).
    let renamed = anxin::chain::note::vkey("anxin/another", anxin::chain::note::SIG_ED25519, key.verifying_key().as_bytes());
    let (ok, _, err) = anxin(&s, &["audit", "--key", &renamed, "--state", dir.path().join("r.json").to_str().unwrap()]);
    assert!(!ok && err.contains("is for anxin/another"), "{err}");
    // anxind refuses to start with a witness policy whose log lines name another ledger
    // (here: this key under another ledger's name), as an auditor refuses its checkpoints.
    let other_dir = tempfile::tempdir().unwrap();
    let policy = other_dir.path().join("other.policy");
    std::fs::write(&policy, format!("log {renamed}\nquorum none\n")).unwrap();
    let principals = other_dir.path().join("principals.toml");
    std::fs::write(&principals, anxin::api::auth::principals_entry(&anxin::domain::principal::Principal::Operator, &anxin::api::auth::new_token())).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut cfg = anxin::server::Config::load(None, Some(format!("127.0.0.1:{port}").parse().unwrap()), Some(other_dir.path().join("data")), Some(principals), None).unwrap();
    cfg.ledger_id = Some("county-split".into());
    cfg.file.signing_key = Some(dir.path().join("ledger.seed"));
    cfg.file.witness_policy = Some(policy);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let err = rt.block_on(anxin::server::run(cfg, async {})).err().expect("the start is refused").to_string();
    assert!(err.contains("another ledger's policy"), "{err}");
}

/// One HTTP/1.1 GET (the test's own, to keep the client independent of the server's
/// stack): (status, body).
fn http_get(port: u16, path: &str, token: Option<&str>) -> (u16, Vec<u8>) {
    let (status, _, body) = http_get_full(port, path, token);
    (status, body)
}

/// `http_get` with the response's head.
fn http_get_full(port: u16, path: &str, token: Option<&str>) -> (u16, String, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\n\r\n").unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let split = all.windows(4).position(|w| w == b"\r\n\r\n").expect("headers end");
    let head = String::from_utf8_lossy(&all[..split]).into_owned();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(!head.to_ascii_lowercase().contains("transfer-encoding: chunked"), "{head}");
    (status, head, all[split + 4..].to_vec())
}

/// The tiles (c2sp.org/tlog-tiles) read by an independent client: it authenticates every
/// hash tile it fetches against the signed root (Go's `tlog.TileHashReader`, ported),
/// recomputes the root and proves records from them; each entry of a bundle hashes to
/// its level-0 tile hash. Hash tiles are every principal's; a bundle holding records a
/// bank may not read is refused to it; no token, no tile.
#[test]
fn tiles_serve_the_tree_to_a_standard_client() {
    use tlog_tiles::{Hash as H, TileHashReader, TileReader};
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let bank = anxin::api::auth::new_token();
    let bank_c = bank.clone();
    let s = start_configured(move |cfg, dir| {
        cfg.file.tiles = Some(format!("127.0.0.1:{port}").parse().unwrap());
        let p = dir.join("principals.toml");
        let mut text = std::fs::read_to_string(&p).unwrap();
        text.push_str(&anxin::api::auth::principals_entry(&anxin::domain::principal::Principal::parse("bank:ABC").unwrap(), &bank_c));
        std::fs::write(&p, text).unwrap();
    });
    for f in ["setup.csv", "workers.jsonl", "progress.csv"] {
        assert!(anxin(&s, &["post", "--file", examples().join(f).to_str().unwrap()]).0, "{f}");
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(post_topups(&s.addr, &s.token, "tiles-", 4, 150, None));
    let (st, note) = http_get(port, "/checkpoint", Some(&s.token));
    assert_eq!(st, 200);
    let cp = anxin::chain::checkpoint::SignedCheckpoint::from_note(&note).unwrap();
    let (_, key, _) = anxin(&s, &["public-key"]);
    cp.verify(&anxin::chain::checkpoint::key_from_text(key.split_whitespace().next().unwrap()).unwrap()).unwrap();
    let size = cp.checkpoint.tree_size;
    assert!(size > 600, "{size}: full tiles at level 0, a partial one at level 1");

    struct Http<'a>(u16, &'a str, std::cell::Cell<usize>);
    impl TileReader for Http<'_> {
        fn height(&self) -> u8 {
            8
        }
        fn read_tiles(&self, tiles: &[tlog_tiles::Tile]) -> Result<Vec<Vec<u8>>, tlog_tiles::Error> {
            Ok(tiles
                .iter()
                .map(|t| {
                    // Go's path is tile/8/L/N; the C2SP one tile/L/N.
                    let path = t.path().replacen("tile/8/", "/tile/", 1);
                    let (st, body) = http_get(self.0, &path, Some(self.1));
                    assert_eq!(st, 200, "{path}: {}", String::from_utf8_lossy(&body));
                    self.2.set(self.2.get() + 1);
                    body
                })
                .collect())
        }
        fn save_tiles(&self, _: &[tlog_tiles::Tile], _: &[Vec<u8>]) {}
    }
    let reader = Http(port, &s.token, std::cell::Cell::new(0));
    let hr = TileHashReader::new(size, H(cp.checkpoint.root), &reader);
    assert_eq!(tlog_tiles::tree_hash(size, &hr).unwrap().0, cp.checkpoint.root, "the root from the tiles");
    // The entries: bundle 0 holds records 1 to 256, each hashing to tile 0's hash.
    let (st, bundle) = http_get(port, "/tile/entries/000", Some(&s.token));
    assert_eq!(st, 200);
    let (_, tile0) = http_get(port, "/tile/0/000", Some(&s.token));
    assert_eq!(tile0.len(), 8192);
    let mut at = &bundle[..];
    let mut entries = Vec::new();
    while !at.is_empty() {
        let n = u16::from_be_bytes([at[0], at[1]]) as usize;
        entries.push(at[2..2 + n].to_vec());
        at = &at[2 + n..];
    }
    assert_eq!(entries.len(), 256);
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(tlog_tiles::record_hash(e).0[..], tile0[32 * i..32 * i + 32], "entry {i}");
    }
    // Records proved from the tiles alone (each tile authenticated against the root).
    for n in [0u64, 100, 255, 256, size - 1] {
        let proof = tlog_tiles::prove_record(size, n, &hr).unwrap();
        let w = (n % 256) + 1;
        let path = if w == 256 { format!("/tile/entries/{:03}", n / 256) } else { format!("/tile/entries/{:03}.p/{w}", n / 256) };
        let (st, b) = http_get(port, &path, Some(&s.token));
        assert_eq!(st, 200, "{path}");
        let mut at = &b[..];
        let mut last = Vec::new();
        while !at.is_empty() {
            let len = u16::from_be_bytes([at[0], at[1]]) as usize;
            last = at[2..2 + len].to_vec();
            at = &at[2 + len..];
        }
        tlog_tiles::check_record(&proof, size, H(cp.checkpoint.root), n, tlog_tiles::record_hash(&last)).unwrap();
    }
    assert!(reader.2.get() >= 3, "tiles were fetched");
    // A partial tile's width past the tree, a tile past it: not found.
    assert_eq!(http_get(port, &format!("/tile/0/{:03}", size / 256), Some(&s.token)).0, 404);
    assert_eq!(http_get(port, "/tile/0/x001/000", Some(&s.token)).0, 404);
    assert_eq!(http_get(port, "/tile/entries/x072/x057/x594/x037/x927/935", Some(&s.token)).0, 404, "an index past u64 in records");
    // Hash tiles may sit in any cache; a bundle only in the reader's own.
    let (_, head, _) = http_get_full(port, "/tile/0/000", Some(&s.token));
    let head = head.to_ascii_lowercase();
    assert!(head.contains("cache-control: public") && head.contains("vary: authorization"), "{head}");
    let (_, head, _) = http_get_full(port, "/tile/entries/000", Some(&s.token));
    let head = head.to_ascii_lowercase();
    assert!(head.contains("cache-control: private") && head.contains("vary: authorization"), "{head}");
    // A bank reads the hashes, not a bundle of others' records; no token, nothing.
    assert_eq!(http_get(port, "/tile/0/000", Some(&bank)).0, 200);
    assert_eq!(http_get(port, "/checkpoint", Some(&bank)).0, 200);
    assert_eq!(http_get(port, "/tile/entries/000", Some(&bank)).0, 403);
    assert_eq!(http_get(port, "/tile/0/000", None).0, 401);
    assert_eq!(http_get(port, "/tile/0/000", Some("anx_wrong")).0, 401);

    // `anxin audit --tiles`: from genesis, then again after more records (the consistency
    // proof made from the hash tiles), giving the root the gRPC audit gives.
    let dir = tempfile::tempdir().unwrap();
    let key = key.split_whitespace().next().unwrap().to_owned();
    let url = format!("http://127.0.0.1:{port}");
    let state = dir.path().join("tiles.json");
    let audit_tiles = |url: &str, state: &std::path::Path, token: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_anxin")).args(["--json", "--token", token, "audit", "--tiles", url, "--key", &key, "--state", state.to_str().unwrap()]).env("ANXIN_SERVER", "http://127.0.0.1:1").output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (ok, out, err) = audit_tiles(&url, &state, &s.token);
    assert!(ok, "{err}");
    let first: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(first["tree_size"].as_u64().unwrap() >= size && first["previous_size"] == 0, "{out}");
    rt.block_on(post_topups(&s.addr, &s.token, "tiles-more-", 2, 200, None));
    let older = dir.path().join("older.json");
    std::fs::copy(&state, &older).unwrap();
    let (ok, out, err) = audit_tiles(&url, &state, &s.token);
    assert!(ok, "{err}");
    let second: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(second["previous_size"], first["tree_size"], "{out}");
    assert!(second["new_records"].as_u64().unwrap() >= 400, "{out}");
    let (ok, out, err) = anxin(&s, &["--json", "audit", "--key", &key, "--state", dir.path().join("grpc.json").to_str().unwrap()]);
    assert!(ok, "{err}");
    let grpc: serde_json::Value = serde_json::from_str(&out).unwrap();
    if grpc["tree_size"] == second["tree_size"] {
        assert_eq!(grpc["root"], second["root"]);
    }
    // A bank reads the hashes but not the bundles: told to audit over gRPC.
    let (ok, _, err) = audit_tiles(&url, &dir.path().join("bank.json"), &bank);
    assert!(!ok && err.contains("403") && err.contains("without --tiles"), "{err}");
    // A mirror that alters what it serves: a hash tile that no longer hashes to the signed
    // root is named as the tiles' damage (not a fork); an altered record fails its chain.
    for (what, tamper, expect) in [("hash tiles", "/tile/0/", "do not hash to its signed root"), ("an entry bundle", "/tile/entries/", "previous hash does not match")] {
        let mirror = tampering_mirror(port, tamper);
        let st = dir.path().join(format!("mirror-{}.json", tamper.len()));
        std::fs::copy(&older, &st).unwrap();
        let (ok, _, err) = audit_tiles(&format!("http://127.0.0.1:{mirror}"), &st, &s.token);
        assert!(!ok && err.contains(expect), "{what}: {err}");
        assert_eq!(std::fs::read(&st).unwrap(), std::fs::read(&older).unwrap(), "{what}: the saved state is kept");
    }
}

/// An HTTP mirror of the tiles on `port` that flips a byte of every answer to a path
/// starting with `tamper` (one request per connection).
fn tampering_mirror(port: u16, tamper: &'static str) -> u16 {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mirror = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { return };
            let mut head = Vec::new();
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && c.read(&mut b).unwrap_or(0) == 1 {
                head.push(b[0]);
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
            let token = head.lines().find_map(|l| l.strip_prefix("authorization: Bearer ").or_else(|| l.strip_prefix("Authorization: Bearer "))).map(str::trim);
            let (status, mut body) = http_get(port, &path, token);
            if path.starts_with(tamper) && !body.is_empty() {
                let at = body.len() / 2;
                body[at] ^= 1;
            }
            let _ = write!(c, "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            let _ = c.write_all(&body);
        }
    });
    mirror
}

/// The value of the sample `name{labels}` (labels as written, in order) in a scrape.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')).and_then(|v| v.split_whitespace().next()?.parse().ok()))
}

/// `--metrics`: a real server scraped before and after a month end moves every number it
/// should: calls by RPC, code and role, records and bytes, group commits and fdatasyncs,
/// open flags by code and grade; a refusal counts under its code; nothing personal.
#[test]
fn metrics_are_scraped_and_move_with_the_work() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let s = start_configured(move |cfg, _| cfg.file.metrics = Some(format!("127.0.0.1:{port}").parse().unwrap()));
    let scrape = || {
        let (status, head, body) = http_get_full(port, "/metrics", None);
        assert_eq!(status, 200);
        assert!(head.to_ascii_lowercase().contains("content-type: application/openmetrics-text"), "{head}");
        String::from_utf8(body).unwrap()
    };
    let before = scrape();
    assert!(before.ends_with("# EOF\n"), "an OpenMetrics exposition ends so");
    let ex = examples();
    for f in ["setup.csv", "workers.jsonl", "progress.csv", "payroll.csv", "payouts.csv"] {
        assert!(anxin(&s, &["post", "--file", ex.join(f).to_str().unwrap()]).0, "{f}");
    }
    let (ok, _, _) = anxin(&s, &["post", "top_up_wage_account", "project=P01", "payment_no=BF-9", "amount=1.001", "date=2026-02-11"]);
    assert!(!ok);
    let after = scrape();
    let n = |t: &str, series: &str| sample(t, series).unwrap_or(0.0);
    let submit_ok = "anxin_grpc_calls_total{rpc=\"LedgerPosting/Submit\",code=\"OK\",role=\"operator\"}";
    assert!(n(&after, submit_ok) >= 5.0, "{after}");
    assert!(n(&after, "anxin_grpc_calls_total{rpc=\"LedgerPosting/Submit\",code=\"INVALID_ARGUMENT\",role=\"operator\"}") >= 1.0, "the refusal, under its code: {after}");
    for series in ["anxin_records_total", "anxin_log_record_bytes_total", "anxin_fdatasync_seconds_count", "anxin_group_commit_seconds_count", "anxin_group_commit_records_sum", "anxin_writer_busy_seconds_total", "anxin_tree_size"] {
        assert!(n(&after, series) > n(&before, series), "{series} moved: {} -> {}", n(&before, series), n(&after, series));
    }
    // A checkpoint is promised within one interval of the last write, not with it: the
    // scrape waits for it (the server's own interval, 100 ms; 10 s allows a loaded machine).
    let checkpoints = n(&before, "anxin_checkpoint_seconds_count");
    let moved = (0..200).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        n(&scrape(), "anxin_checkpoint_seconds_count") > checkpoints
    });
    assert!(moved, "anxin_checkpoint_seconds_count never moved from {checkpoints}");
    // The registry is the process's: the other tests' servers in this binary write too, so
    // the queue is read until it is empty rather than once.
    let drained = (0..200).any(|_| n(&scrape(), "anxin_writer_queue_depth") == 0.0 || {
        std::thread::sleep(std::time::Duration::from_millis(50));
        false
    });
    assert!(drained, "nothing waits once every answer came");
    assert!(n(&after, "anxin_disk_free_bytes") > 0.0 && n(&after, "anxin_disk_reserve_bytes") > 0.0);
    assert_eq!(n(&after, "anxin_ledger_unhealthy"), 0.0);
    // The example month has open flags; every code and grade is a series, 0 when none.
    let open: f64 = after.lines().filter(|l| l.starts_with("anxin_open_flags{")).map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap()).sum();
    assert!(open >= 1.0, "{after}");
    assert!(after.contains("anxin_open_flags{code=\"WAGE_SHORTFALL\",grade=\"red\"}"), "{after}");
    // The Grafana dashboard and the alert rules name only series the server exports.
    let exported: Vec<&str> = after.lines().filter_map(|l| l.strip_prefix("# TYPE ")).filter_map(|l| l.split_whitespace().next()).collect();
    for file in ["../examples/grafana/anxind.json", "../examples/prometheus/alerts.yml"] {
        let text = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap();
        let mut named = 0;
        for (i, _) in text.match_indices("anxin_") {
            let name: String = text[i..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            let base = ["_bucket", "_total", "_count", "_sum"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(&name);
            assert!(exported.contains(&base), "{file} names {name}, which the server does not export");
            named += 1;
        }
        assert!(named >= 7, "{file}");
    }
    // No token, ID number or card number in it.
    for secret in [s.token.as_str(), "620121198503010112", "6217000000009000112"] {
        assert!(!after.contains(secret), "{secret} in the metrics");
    }
}
