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
    let dir = tempfile::tempdir().unwrap();
    let token = anxin::api::auth::new_token();
    let principals = dir.path().join("principals.toml");
    std::fs::write(&principals, anxin::api::auth::principals_entry(&anxin::domain::principal::Principal::Operator, &token)).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}").parse().unwrap();
    let cfg = anxin::server::Config::load(None, Some(listen), Some(dir.path().join("data")), Some(principals), None).unwrap();
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
    assert!(!ok && err.contains("INVALID_AMOUNT"), "{err}");

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
    assert!(key.starts_with("ed25519:"));

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
    let py = Command::new("python3").arg(ex.join("../verify_archive.py")).arg(&arch).args(["--key", &key]).output().unwrap();
    assert!(py.status.success(), "{}{}", String::from_utf8_lossy(&py.stdout), String::from_utf8_lossy(&py.stderr));
}
