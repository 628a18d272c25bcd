//! The invariants ARCHITECTURE.md states about who may use what, checked against the
//! source itself, so that the change that breaks one fails here, naming the line.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every line of code under `src/` that is not a comment and not in a unit-test module:
/// (path relative to `src/`, line number, code).
fn code_lines() -> Vec<(String, usize, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut out = Vec::new();
    for f in files {
        let rel = f.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
        for (i, line) in std::fs::read_to_string(&f).unwrap().lines().enumerate() {
            let t = line.trim_start();
            if t.starts_with("#[cfg(test)]") {
                break;
            }
            if t.starts_with("//") {
                continue;
            }
            let code = match t.find(" //") {
                Some(c) => &t[..c],
                None => t,
            };
            out.push((rel.clone(), i + 1, code.to_owned()));
        }
    }
    assert!(out.len() > 5_000, "the source was found ({} lines)", out.len());
    out
}

/// Lines outside `allowed` (path prefixes) that contain any of `needles`.
fn offenders(lines: &[(String, usize, String)], needles: &[&str], allowed: &[&str]) -> Vec<String> {
    lines
        .iter()
        .filter(|(f, _, _)| !allowed.iter().any(|a| f.starts_with(a)))
        .filter(|(_, _, code)| needles.iter().any(|n| code.contains(n)))
        .map(|(f, n, code)| format!("src/{f}:{n}: {code}"))
        .collect()
}

#[test]
fn domain_knows_nothing_about_storage_the_network_files_or_the_clock() {
    let lines = code_lines();
    let domain: Vec<_> = lines.iter().filter(|(f, _, _)| f.starts_with("domain/")).cloned().collect();
    let bad = offenders(
        &domain,
        &["crate::store", "crate::api", "crate::ledger", "crate::vault", "crate::server", "sled", "tonic", "tokio", "std::fs", "File::", "SystemTime", "Instant::now", "std::env"],
        &[],
    );
    assert!(bad.is_empty(), "domain imports what it must not:\n{}", bad.join("\n"));
}

#[test]
fn only_store_and_vault_use_sled() {
    let bad = offenders(&code_lines(), &["sled::", "use sled"], &["store/", "vault.rs"]);
    assert!(bad.is_empty(), "sled outside store/ and vault.rs:\n{}", bad.join("\n"));
}

#[test]
fn only_the_api_edges_touch_generated_proto_types() {
    // `api` converts; `dashboard` is an in-process client of `LedgerQuery`.
    let bad = offenders(&code_lines(), &["pb::", "include_proto!", "prost::"], &["api/", "dashboard/"]);
    assert!(bad.is_empty(), "proto types outside api/ and dashboard/:\n{}", bad.join("\n"));
}

#[test]
fn only_store_log_knows_the_log_files() {
    let bad = offenders(&code_lines(), &[".seg\"", "\"seg\""], &["store/log.rs"]);
    assert!(bad.is_empty(), "log file names outside store/log.rs:\n{}", bad.join("\n"));
}

#[test]
fn every_error_leaves_the_server_through_api_error() {
    // A `Status` made anywhere else would skip the masking of personal numbers.
    let needles = ["Status::new(", "Status::internal(", "Status::invalid_argument(", "Status::unavailable(", "Status::not_found(", "Status::permission_denied(", "Status::unauthenticated(", "Status::already_exists(", "Status::failed_precondition(", "Status::resource_exhausted(", "Status::data_loss(", "Status::unknown(", "Status::aborted(", "Status::cancelled(", "Status::with_"];
    let bad = offenders(&code_lines(), &needles, &["api/error.rs"]);
    assert!(bad.is_empty(), "a gRPC status made outside api/error.rs:\n{}", bad.join("\n"));
}

#[test]
fn the_ledger_s_rooms_stay_small() {
    // The writer's room was one 1,358-line file doing six jobs; each job has its file now.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ledger");
    for f in ["mod.rs", "writer.rs", "recovery.rs", "signer.rs", "proofs.rs", "verify.rs"] {
        let n = std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("src/ledger/{f}: {e}")).lines().count();
        assert!(n < 600, "src/ledger/{f} has {n} lines: split it by job");
    }
}

/// The process forks in one place, the snapshot's child, and that child's code (from the
/// fork to its `_exit`) takes no lock and logs nothing: a lock another thread held at the
/// fork would never be released in the child.
#[test]
fn only_the_snapshot_child_forks_and_it_takes_no_lock() {
    let lines = code_lines();
    let bad = offenders(&lines, &["libc::fork", "fork()"], &["store/snapshot.rs"]);
    assert!(bad.is_empty(), "a fork outside store/snapshot.rs:\n{}", bad.join("\n"));
    let snap: Vec<_> = lines.iter().filter(|(f, _, _)| f == "store/snapshot.rs").collect();
    let from = snap.iter().position(|(_, _, c)| c.contains("if pid == 0 {")).expect("the child's branch");
    let to = from + snap[from..].iter().position(|(_, _, c)| c.contains("libc::_exit(code)")).expect("the child's exit");
    let child: Vec<_> = snap[from..=to].iter().map(|(f, n, c)| (f.clone(), *n, c.clone())).collect();
    let bad = offenders(&child, &["lock()", "tracing::", "println!", "eprintln!", "failpoint::pass", "failpoint::fires", "Mutex", "RwLock"], &[]);
    assert!(bad.is_empty(), "the snapshot's child takes a lock or logs:\n{}", bad.join("\n"));
    assert!(child.iter().any(|(_, _, c)| c.contains("write_file(")), "the child's branch was found: it writes the file");
}

/// `serve_with_incoming*` ignores the builder's TCP options (tonic documents that it
/// "discards any provided Server TCP configuration"), and `axum::serve` sets none: a
/// server fed its own listener sets them on the incoming connections, or every small answer waits on the peer's delayed ACK
/// (one command per request had p99 44 ms from this alone).
#[test]
fn a_server_fed_its_own_listener_sets_tcp_nodelay_on_it() {
    let lines = code_lines();
    let files: std::collections::BTreeSet<_> = lines.iter().filter(|(_, _, c)| c.contains("serve_with_incoming") || c.contains("axum::serve(")).map(|(f, _, _)| f.clone()).collect();
    assert!(files.len() >= 2, "the gRPC server and the dashboard were found: {files:?}");
    for f in files {
        let has = lines.iter().any(|(g, _, c)| *g == f && (c.contains("with_nodelay(Some(true))") || c.contains("set_nodelay(true)")));
        assert!(has, "src/{f} serves an incoming stream without TCP_NODELAY");
        assert!(!lines.iter().any(|(g, _, c)| *g == f && (c.contains(".tcp_nodelay(") || c.contains(".tcp_keepalive("))), "src/{f}: builder TCP options are ignored with an incoming stream");
    }
}

/// The quoted all-capitals literals of a line of code (`"NOT_LEADER"`, `"P1"`).
fn capital_literals(code: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(start) = rest.find('"') {
        let tail = &rest[start + 1..];
        let Some(end) = tail.find('"') else { break };
        let lit = &tail[..end];
        if lit.len() >= 2
            && lit.starts_with(|c: char| c.is_ascii_uppercase())
            && lit.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            && !lit.ends_with('_')
        {
            out.push(lit);
        }
        rest = &tail[end + 1..];
    }
    out
}

#[test]
fn every_reason_code_has_an_action_and_a_line_in_the_readme() {
    use anxin::api::reasons::{self, Action};
    let table: std::collections::BTreeMap<&str, Action> = reasons::all().collect();
    assert!(table.len() > 100, "{}", table.len());
    let flags: Vec<&str> = anxin::projection::flags::FlagCode::ALL.iter().map(|f| f.as_str()).collect();
    // Capitals in the source that are not reason codes: gRPC status names (the metrics'
    // labels), file magics, placeholders of messages, the demo's sample values, and a
    // serde attribute.
    let not_reasons = [
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS", "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "UNAVAILABLE", "DATA_LOSS", "ANXBAK01", "ANXINLOG", "ANXSNAP1",
        "ADDR", "LEDGER", "OUT_DIR", "DSN", "CERTIFICATE", "LOCK", "OTHER", "P1", "ICBC", "GJ", "JC", "MA", "MB", "MC", "SJ", "TS",
        "SCREAMING_SNAKE_CASE",
    ];
    let lines = code_lines();
    let mut unknown = Vec::new();
    let mut used = std::collections::BTreeSet::new();
    for (f, n, code) in &lines {
        for lit in capital_literals(code) {
            if f != "api/reasons.rs" {
                used.insert(lit.to_owned());
            }
            if lit.starts_with("ANXIN_") || flags.contains(&lit) && !table.contains_key(lit) || not_reasons.contains(&lit) {
                continue;
            }
            if !table.contains_key(lit) {
                unknown.push(format!("src/{f}:{n}: {lit}"));
            }
        }
    }
    assert!(unknown.is_empty(), "reason codes with no action in api/reasons.rs (or capitals this test should learn are not reasons):\n{}", unknown.join("\n"));
    let dead: Vec<_> = table.keys().filter(|c| !used.contains(**c)).collect();
    assert!(dead.is_empty(), "codes in api/reasons.rs that the server never sends: {dead:?}");
    // The README's table: one row a code, `| `CODE` | STATUS | action | meaning |`.
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme.find("\n## Errors").expect("README has an Errors section");
    let section = &readme[start + 1..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |e| e + 3)];
    let mut rows = std::collections::BTreeMap::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let code = cells[1].trim_matches('`');
        assert!(rows.insert(code.to_owned(), cells[3].to_owned()).is_none(), "README lists {code} twice");
    }
    for (code, action) in &table {
        match rows.get(*code) {
            None => panic!("README's Errors section has no row for {code}"),
            Some(a) => assert_eq!(a, action.as_str(), "README says {code} is {a}; api/reasons.rs says {}", action.as_str()),
        }
    }
    let stale: Vec<_> = rows.keys().filter(|c| !table.contains_key(c.as_str())).collect();
    assert!(stale.is_empty(), "README lists codes the server does not send: {stale:?}");
}
