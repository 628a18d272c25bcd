//! Running `anxind` like production: `--check-config` before a start, `--log-format json`
//! for log shippers (every line of a call with its request id and the caller's role,
//! nothing personal), and the systemd unit shipped in `examples/systemd/`.

use std::process::Command;

use anxin::api::pb;

use crate::harness::{enrol, nid, register, topup, COUNTY};
use crate::process::{free_port, start_logging};

fn check_config(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_anxind")).arg("--check-config").args(args).env_remove("ANXIN_CONFIG").output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn check_config_names_every_problem_and_starts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let principals = dir.path().join("principals.toml");
    std::fs::write(&principals, anxin::api::auth::principals_entry(&anxin::domain::principal::Principal::Operator, &anxin::api::auth::new_token())).unwrap();
    let port = free_port();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, format!("listen = \"127.0.0.1:{port}\"\nprincipals = {:?}\nmetrics = \"127.0.0.1:{}\"\n", principals.to_str().unwrap(), free_port())).unwrap();
    let data = dir.path().join("data");
    let (code, out, err) = check_config(&["--config", good.to_str().unwrap(), "--data", data.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("the configuration is good") && out.contains("1 token(s)") && out.contains("created at the first start"), "{out}");
    assert!(!data.exists(), "nothing was opened or created");
    assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(), "nothing listens");
    // Every problem at once, each naming its file or key.
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndashboard = \"127.0.0.1:{port}\"\nprincipals = {:?}\nsigning_key = {:?}\nwitness_policy = {:?}\n[county.620121]\ncalendar = {:?}\n",
            dir.path().join("missing-principals.toml").to_str().unwrap(),
            good.to_str().unwrap(),
            good.to_str().unwrap(),
            dir.path().join("no-such-calendar.txt").to_str().unwrap()
        ),
    )
    .unwrap();
    let (code, out, err) = check_config(&["--config", bad.to_str().unwrap(), "--data", data.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}{err}");
    for named in ["missing-principals.toml", "no-such-calendar.txt", "dashboard and listen are both", "the signing key is", "good.toml: the witness policy"] {
        assert!(err.contains(named), "{named} in: {err}");
    }
    // A key the server does not know, or a file that is not TOML: exit 2, named.
    let unknown = dir.path().join("unknown.toml");
    std::fs::write(&unknown, "lisen = \"127.0.0.1:1\"\n").unwrap();
    let (code, _, err) = check_config(&["--config", unknown.to_str().unwrap()]);
    assert!(code == 2 && err.contains("unknown field") && err.contains("lisen"), "{err}");
    // TLS: a certificate and its key pass; a key of another certificate is named.
    let (one, other) = (rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap(), rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap());
    let (cert, key, wrong) = (dir.path().join("cert.pem"), dir.path().join("key.pem"), dir.path().join("other-key.pem"));
    std::fs::write(&cert, one.cert.pem()).unwrap();
    std::fs::write(&key, one.key_pair.serialize_pem()).unwrap();
    std::fs::write(&wrong, other.key_pair.serialize_pem()).unwrap();
    let tls = |k: &std::path::Path| check_config(&["--config", good.to_str().unwrap(), "--data", data.to_str().unwrap(), "--tls-cert", cert.to_str().unwrap(), "--tls-key", k.to_str().unwrap()]);
    let (code, out, err) = tls(&key);
    assert!(code == 0 && out.contains("TLS certificate") && out.contains("TLS key"), "{out}{err}");
    let (code, out, err) = tls(&wrong);
    assert!(code == 2 && err.contains("other-key.pem") && err.contains("the TLS certificate and key"), "{out}{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_the_request_id_and_role_of_every_call_and_nothing_personal() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("anxind.log");
    let mut server = start_logging(&data, &["--log-format", "json"], "debug,h2=info,tower=info,hyper=info", Some(&log)).await;
    let mut p = server.posting().await;
    p.submit(pb::SubmitRequest { request_id: "setup".into(), commands: vec![register("P1", COUNTY), enrol("P1", 1)] }).await.unwrap();
    // A refusal with the client's request id; one whose header holds an ID number (the
    // server uses one of its own, and the number is logged nowhere).
    let with_id = |id: &str, cmds: Vec<pb::Command>| {
        let mut r = tonic::Request::new(pb::SubmitRequest { request_id: "r-1".into(), commands: cmds });
        r.metadata_mut().insert("x-request-id", id.parse().unwrap());
        r
    };
    let refused = p.submit(with_id("req-7f3a", vec![topup("P1", "T1", "1.001")])).await.unwrap_err();
    assert_eq!(refused.metadata().get("x-request-id").unwrap(), "req-7f3a", "the answer carries the request id back");
    let secret = nid(1);
    let e = p.submit(with_id(&format!("id-{secret}"), vec![topup("P1", "T2", "0")])).await.unwrap_err();
    let own = e.metadata().get("x-request-id").unwrap().to_str().unwrap().to_owned();
    assert!(own.starts_with("anx-"), "{own}");
    server.signal("-TERM");
    assert!(tokio::task::spawn_blocking(move || server.child.wait().unwrap()).await.unwrap().success());

    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect();
    assert!(lines.len() > 5, "{text}");
    for l in &lines {
        assert!(l["timestamp"].is_string() && l["level"].is_string() && l["fields"].is_object(), "{l}");
    }
    let refusal = |id: &str| lines.iter().find(|l| l["fields"]["message"] == "refused" && l["span"]["request_id"] == id).unwrap_or_else(|| panic!("no refusal line for {id}: {text}"));
    let r = refusal("req-7f3a");
    assert_eq!((r["span"]["role"].as_str(), r["span"]["rpc"].as_str(), r["fields"]["code"].as_str()), (Some("operator"), Some("LedgerPosting/Submit"), Some("INVALID_ARGUMENT")), "{r}");
    refusal(&own);
    // Every line logged inside a call carries both.
    let in_calls: Vec<&serde_json::Value> = lines.iter().filter(|l| l.get("span").is_some()).collect();
    assert!(in_calls.len() >= 3);
    for l in in_calls {
        assert!(l["span"]["request_id"].is_string() && l["span"]["role"].is_string(), "{l}");
    }
    for needle in [secret.as_str(), &secret[..17]] {
        assert!(!text.contains(needle), "{needle} is in the log");
    }
}

/// The shipped unit is one systemd accepts (`systemd-analyze verify`, where the machine
/// has it), with the hardening the README promises.
#[test]
fn the_systemd_unit_is_hardened_and_checks_its_configuration_first() {
    let unit = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/systemd/anxind.service")).unwrap();
    for line in ["User=anxind", "ProtectSystem=strict", "NoNewPrivileges=yes", "StateDirectory=anxind", "Restart=on-failure", "--check-config", "KillSignal=SIGTERM", "ProtectHome=yes", "CapabilityBoundingSet="] {
        assert!(unit.lines().any(|l| l.contains(line)), "{line}");
    }
    // The configuration it names is one the server accepts.
    let dir = tempfile::tempdir().unwrap();
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/systemd/anxind.toml")).unwrap();
    let principals = dir.path().join("principals.toml");
    std::fs::write(&principals, anxin::api::auth::principals_entry(&anxin::domain::principal::Principal::Operator, &anxin::api::auth::new_token())).unwrap();
    let cfg = dir.path().join("anxind.toml");
    std::fs::write(&cfg, example.replace("/etc/anxind/principals.toml", principals.to_str().unwrap())).unwrap();
    let (code, out, err) = check_config(&["--config", cfg.to_str().unwrap(), "--data", dir.path().join("data").to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let Ok(v) = Command::new("systemd-analyze").arg("--version").output() else { return };
    if !v.status.success() {
        return;
    }
    // Verified with the paths of this machine (the binary built here).
    let local = dir.path().join("anxind.service");
    std::fs::write(&local, unit.replace("/usr/local/bin/anxind", env!("CARGO_BIN_EXE_anxind")).replace("User=anxind", "User=root").replace("Group=anxind", "Group=root")).unwrap();
    let out = Command::new("systemd-analyze").args(["verify", "--man=no", local.to_str().unwrap()]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    // verify exits 0 even over a key it ignores: every complaint names the file, and there
    // must be none (a misspelt key or value would be ignored silently by systemd).
    let about_unit: Vec<&str> = text.lines().filter(|l| l.contains("anxind.service")).collect();
    assert!(about_unit.is_empty(), "{text}");
}

/// `anxind --help` documents every flag and every configuration key: each field of the
/// configuration's structs (read from their source) is named in it.
#[test]
fn help_names_every_flag_and_configuration_key() {
    let out = Command::new(env!("CARGO_BIN_EXE_anxind")).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    let fields = |file: &str, structs: &[&str]| -> Vec<String> {
        let src = std::fs::read_to_string(format!("{}/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let mut out = Vec::new();
        for s in structs {
            let start = src.find(&format!("pub struct {s} {{")).unwrap_or_else(|| panic!("{s} in {file}"));
            let body = &src[start..start + src[start..].find("\n}").unwrap()];
            out.extend(body.lines().filter_map(|l| l.trim().strip_prefix("pub ")).filter_map(|l| l.split_once(':')).map(|(name, _)| name.trim().to_owned()).filter(|n| !n.contains(' ')));
        }
        out
    };
    let mut keys = fields("src/server.rs", &["FileConfig", "ReplicationConfig", "TlsFiles", "CountyConfig"]);
    keys.extend(fields("src/domain/policy.rs", &["PolicyOverride"]));
    assert!(keys.len() > 40, "{keys:?}");
    for k in keys {
        assert!(help.contains(&k), "the configuration key {k} is not in anxind --help");
    }
    for flag in ["--config", "--listen", "--data", "--principals", "--dashboard", "--metrics", "--log-format", "--check-config", "--tls-cert", "--tls-key", "--replicate", "--node-id", "--advertise"] {
        assert!(help.contains(flag), "{flag}");
    }
}
