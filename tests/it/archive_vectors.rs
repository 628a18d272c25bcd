//! Golden vectors of damaged archives: `tests/vectors/archives/`, one archive per kind of
//! damage and `verdicts.json` with the verdict both verifiers must give (the Rust one,
//! `anxin verify --archive`, and the independent Python one written from FORMAT.md,
//! `examples/verify_archive.py`). A second implementation of the format can run the same
//! files and compare.
//!
//! The files are generated (deterministically: a fixed clock, ledger id and signing seed)
//! by `ANXIN_WRITE_ARCHIVE_VECTORS=1 cargo test --test it archive_vectors`, and checked in.
//! `tests/vectors/archives-v1/` holds the same set in archive version 1 (checkpoint format
//! 1, a BLAKE3 tree), frozen as written before format 2: both verifiers still read them.

use std::path::{Path, PathBuf};

use anxin::audit;
use anxin::ledger::{Ledger, LedgerOptions};
use serde_json::{json, Value};

use crate::common::*;
use crate::store::{ok, opts};

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/archives")
}

/// The seed of the vectors' signing key (its public key is in `verdicts.json`).
const SEED: [u8; 32] = [1; 32];

/// A clean archive of a small ledger, every event kind that carries money included.
fn clean_archive(dir: &Path) -> (Vec<String>, String) {
    let key_path = dir.join("seed");
    std::fs::write(&key_path, SEED).unwrap();
    let l = Ledger::open(&dir.join("d"), LedgerOptions { ledger_id: Some("anxin-archive-vectors".into()), signing_key: Some(key_path), scrub_at_start: false, ..opts() }).unwrap();
    ok(&l, "r1", vec![register("P1"), open_account("P1"), enrol("P1", 1), contract("P1", 1)]);
    ok(&l, "r2", vec![deposit("P1", "D1", "2000", "2026-01-20"), progress("P1", "G1", "10000", "3000", "2026-02-05")]);
    ok(&l, "r3", vec![payroll("P1", "2026-01", &[(1, "1500")]), pay("P1", "W1", 1, "1500", Some("2026-01"))]);
    ok(&l, "r4", vec![letter("P1", "L1", "500", "2026-01-01", "2026-12-31"), topup("P1", "T1", "10.50")]);
    let cp = l.checkpoint().unwrap();
    let recs = l.read_records(1, cp.checkpoint.tree_size).unwrap();
    let mut out = Vec::new();
    audit::write_archive(&mut out, &l.public_key(), &cp, &mut recs.into_iter()).unwrap();
    let key = anxin::chain::checkpoint::vkey("anxin-archive-vectors", &l.public_key());
    l.close().unwrap();
    (String::from_utf8(out).unwrap().lines().map(str::to_owned).collect(), key)
}

fn rehex(line: &str, f: &dyn Fn(&mut Vec<u8>)) -> String {
    let mut j: Value = serde_json::from_str(line).unwrap();
    let mut bytes = hex::decode(j["hex"].as_str().unwrap()).unwrap();
    f(&mut bytes);
    j["hex"] = hex::encode(bytes).into();
    j.to_string()
}

fn header_with(line: &str, field: &str, v: Value) -> String {
    let mut j: Value = serde_json::from_str(line).unwrap();
    j[field] = v;
    j.to_string()
}

/// The clean archive with record `seq` changed by `f`, every later link and the tree
/// recomputed, and the checkpoint signed again with the vectors' key: the chain and the
/// signature hold, so only the value rules (FORMAT.md section 1) can refuse it.
fn resigned(clean: &[String], seq: u64, f: &dyn Fn(&mut Vec<u8>)) -> Vec<String> {
    use anxin::chain::{checkpoint::SignedCheckpoint, merkle, record::record_hash};
    let header: Value = serde_json::from_str(&clean[0]).unwrap();
    let cp = SignedCheckpoint::from_note(header["checkpoint"].as_str().unwrap().as_bytes()).unwrap();
    let mut records: Vec<Vec<u8>> = clean[1..].iter().map(|l| hex::decode(serde_json::from_str::<Value>(l).unwrap()["hex"].as_str().unwrap()).unwrap()).collect();
    f(&mut records[(seq - 1) as usize]);
    // Each record's prev_hash (after version u16 and seq u64) is the hash of the one before.
    for i in seq as usize..records.len() {
        let prev = record_hash(&records[i - 1]);
        records[i][10..42].copy_from_slice(&prev);
    }
    let leaves = merkle::MemNodes(records.iter().map(|r| merkle::leaf_hash(r)).collect());
    let mut c = cp.checkpoint.clone();
    c.root = merkle::root(&leaves, records.len() as u64).unwrap();
    c.chain_head = record_hash(records.last().unwrap());
    let key = ed25519_dalek::SigningKey::from_bytes(&SEED);
    let cp = c.sign(&key);
    let mut out = Vec::new();
    audit::write_archive(&mut out, &key.verifying_key(), &cp, &mut records.into_iter().enumerate().map(|(i, r)| (i as u64 + 1, r))).unwrap();
    String::from_utf8(out).unwrap().lines().map(str::to_owned).collect()
}

/// Replaces the first occurrence of `from` in `bytes` by `to` (same length).
fn replace(bytes: &mut [u8], from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len());
    let at = bytes.windows(from.len()).position(|w| w == from).expect("the bytes are in the record");
    bytes[at..at + from.len()].copy_from_slice(to);
}

/// (file, what, the lines, Rust's verdict substring, Python's) — "OK" for a clean one.
type Vector = (&'static str, &'static str, Vec<String>, &'static str, &'static str);

fn vectors(clean: &[String]) -> Vec<Vector> {
    let c = || clean.to_vec();
    let with = |i: usize, line: String| {
        let mut v = clean.to_vec();
        v[i] = line;
        v
    };
    // Record 7 is line 8 (line 1 is the header).
    // Record 7's event variant index: after version, seq and prev hash (42 bytes), the
    // recorded-at time (8), principal "operator" (8 + 8) and request id "r3" (8 + 2).
    let variant_at = 42 + 8 + 8 + 8 + 8 + 2;
    // The header's checkpoint note, changed by `f` (its text and signature lines).
    let note_with = |f: &dyn Fn(&mut anxin::chain::note::Note)| {
        let mut j: Value = serde_json::from_str(&clean[0]).unwrap();
        let mut n = anxin::chain::note::Note::parse(j["checkpoint"].as_str().unwrap().as_bytes()).unwrap();
        f(&mut n);
        j["checkpoint"] = n.encode().into();
        j.to_string()
    };
    let forged = note_with(&|n| {
        let s = &mut n.signatures[0].sig;
        let last = s.len() - 1;
        s[last] ^= 1;
    });
    vec![
        ("clean.jsonl", "the archive as exported", c(), "OK", "OK"),
        ("flipped-byte.jsonl", "one byte of record 5's request id changed", with(5, rehex(&clean[5], &|b| b[75] ^= 1)), "record 6", "record 6"),
        ("trailing-byte.jsonl", "a byte after record 7's event", with(7, rehex(&clean[7], &|b| b.push(0))), "record 7", "record 7: cannot decode"),
        ("unknown-variant.jsonl", "record 7's event variant set to 99", with(7, rehex(&clean[7], &|b| b[variant_at..variant_at + 4].copy_from_slice(&99u32.to_be_bytes()))), "record 7", "record 7: cannot decode"),
        ("deleted-record.jsonl", "record 4 deleted", {
            let mut v = c();
            v.remove(4);
            v
        }, "record 4: carries sequence number 5", "record 4: carries sequence number 5"),
        ("swapped-records.jsonl", "records 6 and 7 swapped", {
            let mut v = c();
            v.swap(6, 7);
            v
        }, "record 6: carries sequence number 7", "record 6: carries sequence number 7"),
        ("truncated.jsonl", "the last two records cut off", {
            let mut v = c();
            v.truncate(v.len() - 2);
            v
        }, "got", "holds"),
        ("header-tree-size.jsonl", "the header's plain tree_size changed", with(0, header_with(&clean[0], "tree_size", json!(99))), "tree_size", "tree_size"),
        ("header-root.jsonl", "the header's plain root_hex changed", with(0, header_with(&clean[0], "root_hex", json!("00".repeat(32)))), "root_hex", "root_hex"),
        ("line-seq.jsonl", "line 4's plain seq changed", with(3, header_with(&clean[3], "seq", json!(9))), "the line says seq 9", "the line says seq 9"),
        ("forged-signature.jsonl", "one bit of the checkpoint's signature changed", with(0, forged), "signature does not verify", "signature does not verify"),
        ("wrong-key-id.jsonl", "the log's signature line under another key ID", with(0, note_with(&|n| n.signatures[0].key_id ^= 1)), "no signature of the pinned key", "no signature of the pinned key"),
        ("note-origin.jsonl", "the checkpoint's origin line names another ledger (and the ledger id in the header with it)", with(0, {
            let line = note_with(&|n| n.text = n.text.replacen("anxin/anxin-archive-vectors", "anxin/anxin-archive-vector5", 1));
            header_with(&line, "ledger_id", json!("anxin-archive-vector5"))
        }), "no signature of the pinned key", "no signature of the pinned key"),
        ("note-extension.jsonl", "an extension line added to the checkpoint's text", with(0, note_with(&|n| n.text.push_str("extra\n"))), "not a checkpoint", "not a checkpoint"),
        ("not-json.jsonl", "a header that is not JSON", with(0, "this is not an archive".into()), "line 1", "line 1"),
        ("bad-hex.jsonl", "record 3's hex is not hex", with(3, r#"{"seq":3,"hex":"zz"}"#.into()), "line 4", "hex"),
        // Chain and signature valid (re-signed with the key): the value rules decide.
        ("resigned-clean.jsonl", "records re-linked and the checkpoint re-signed, nothing else changed", resigned(clean, 1, &|_| {}), "OK", "OK"),
        ("resigned-county-0.jsonl", "record 1's county code set to 0, re-linked and re-signed", resigned(clean, 1, &|b| {
            let county = county().to_string().parse::<u32>().unwrap();
            replace(b, &county.to_be_bytes(), &0u32.to_be_bytes());
        }), "record 1", "record 1: cannot decode"),
        ("resigned-uscc-check.jsonl", "record 1's general contractor USCC with a wrong check character, re-linked and re-signed", resigned(clean, 1, &|b| {
            let gc = gc();
            let gc = gc.as_str().as_bytes();
            let mut bad = gc.to_vec();
            bad[17] = if bad[17] == b'0' { b'1' } else { b'0' };
            replace(b, gc, &bad);
        }), "record 1", "record 1: cannot decode"),
        ("resigned-project-control.jsonl", "record 2's project id holding a control character, re-linked and re-signed", resigned(clean, 2, &|b| replace(b, b"P1", b"P\x01")), "record 2", "record 2: cannot decode"),
    ]
}

fn python(archive: &Path, key: &str) -> (bool, String) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/verify_archive.py");
    let out = std::process::Command::new("python3").arg(script).arg(archive).args(["--key", key]).output().expect("python3 runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!text.contains("ModuleNotFoundError"), "the Python verifier needs blake3 and pynacl (tests/run installs them): {text}");
    assert!(!text.contains("Traceback"), "the Python verifier fails in one line, never a traceback: {text}");
    (out.status.success(), text)
}

#[test]
fn golden_damaged_archives_get_the_same_verdict_from_both_verifiers() {
    let dir = vectors_dir();
    if std::env::var("ANXIN_WRITE_ARCHIVE_VECTORS").is_ok() {
        let tmp = tempfile::tempdir().unwrap();
        let (clean, key) = clean_archive(tmp.path());
        std::fs::create_dir_all(&dir).unwrap();
        let mut verdicts = Vec::new();
        for (file, what, lines, rust, python) in vectors(&clean) {
            std::fs::write(dir.join(file), lines.join("\n") + "\n").unwrap();
            verdicts.push(json!({"file": file, "damage": what, "rust_says": rust, "python_says": python}));
        }
        let manifest = json!({"key": key, "note": "Each archive and the verdict both verifiers must give: OK, or a failure whose message contains the text given.", "vectors": verdicts});
        std::fs::write(dir.join("verdicts.json"), serde_json::to_string_pretty(&manifest).unwrap() + "\n").unwrap();
    }
    check_vectors(&dir, 20);
    // Version 1, frozen: still read, with the same verdicts.
    check_vectors(&dir.with_file_name("archives-v1"), 17);
}

fn check_vectors(dir: &Path, at_least: usize) {
    let manifest: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("verdicts.json")).expect("the vectors are checked in")).unwrap();
    let key_text = manifest["key"].as_str().unwrap();
    let key = anxin::chain::checkpoint::key_from_text(key_text).unwrap();
    let vs = manifest["vectors"].as_array().unwrap();
    assert!(vs.len() >= at_least, "{}: {} vectors", dir.display(), vs.len());
    for v in vs {
        let file = dir.join(v["file"].as_str().unwrap());
        let (rust_says, python_says) = (v["rust_says"].as_str().unwrap(), v["python_says"].as_str().unwrap());
        let rust = audit::verify_archive(&file, Some(&key), &mut |_| {});
        let (py_ok, py_text) = python(&file, key_text);
        if rust_says == "OK" {
            rust.unwrap_or_else(|e| panic!("{}: rust: {e}", file.display()));
            assert!(py_ok && py_text.contains("OK"), "{}: python: {py_text}", file.display());
        } else {
            let e = rust.err().unwrap_or_else(|| panic!("{}: rust accepted it", file.display())).to_string();
            assert!(e.contains(rust_says), "{}: rust: {e}", file.display());
            assert!(!py_ok && py_text.contains(python_says), "{}: python: {py_text}", file.display());
        }
    }
}
