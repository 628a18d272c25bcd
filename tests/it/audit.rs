//! Audit without trust: every tampering is caught and named, proofs agree with a naive
//! recomputation, and the independent Python verifier agrees with the Rust one.

use std::path::Path;

use anxin::audit::{self, check_consistency, AuditError, Catchup};
use anxin::chain::merkle::{self, leaf_hash, verify_inclusion, MemNodes};
use anxin::ledger::{Ledger, LedgerOptions};
use anxin::store::merkle::MerkleWriter;
use proptest::prelude::*;

use crate::common::*;
use crate::store::{operator, ok, opts, rid};

/// A ledger with `n` top-ups after a project and account: 2 + n records.
fn ledger_with(dir: &Path, n: usize) -> Ledger {
    let l = Ledger::open(dir, opts()).unwrap();
    ok(&l, "setup", vec![register("P1"), open_account("P1")]);
    for i in 0..n {
        ok(&l, &format!("t{i}"), vec![topup("P1", &format!("T{i}"), "1")]);
    }
    l
}

fn export(l: &Ledger, path: &Path) {
    let cp = l.checkpoint().unwrap();
    let recs = l.read_records(1, cp.checkpoint.tree_size).unwrap();
    let mut f = std::fs::File::create(path).unwrap();
    audit::write_archive(&mut f, &l.public_key(), &cp, &mut recs.into_iter()).unwrap();
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap().lines().map(str::to_owned).collect()
}

fn write_lines(path: &Path, l: &[String]) {
    std::fs::write(path, l.join("\n") + "\n").unwrap();
}

fn python(archive: &Path, key: Option<&str>) -> (bool, String) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/verify_archive.py");
    let mut c = std::process::Command::new("python3");
    c.arg(script).arg(archive);
    if let Some(k) = key {
        c.args(["--key", k]);
    }
    let out = c.output().expect("python3 runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!text.contains("ModuleNotFoundError"), "the Python verifier needs `pip install blake3 pynacl` (tests/run installs them): {text}");
    (out.status.success(), text)
}

#[test]
fn an_exported_archive_verifies_in_rust_and_in_independent_python() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger_with(dir.path(), 70);
    let arch = dir.path().join("a.jsonl");
    export(&l, &arch);
    let key = anxin::chain::checkpoint::key_to_text(&l.public_key());
    let rep = audit::verify_archive(&arch, Some(&l.public_key()), &mut |_| {}).unwrap();
    assert_eq!(rep.records, 72);
    let (good, text) = python(&arch, Some(&key));
    assert!(good && text.contains("OK: 72 records"), "{text}");
}

/// Records with every field format 2 added set, and the events formats 2 and 3 added:
/// both verifiers read them (the archive vectors, `archive_vectors.rs`, hold format 1
/// records).
#[test]
fn format_2_records_with_every_new_field_verify_in_rust_and_in_independent_python() {
    use anxin::domain::command::*;
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(dir.path(), opts()).unwrap();
    let Command::RegisterProject(mut reg) = register("P1") else { unreachable!() };
    reg.registered_on = Some(d("2026-01-08"));
    reg.deposit_basis = DepositBasis::Exempt(anxin::domain::ids::Text::parse("县人社局 2026 年第 3 号文").unwrap());
    reg.funding = Funding::Government;
    let Command::IssueGuaranteeLetter(mut gl) = letter("P1", "BH-1", "200000", "2026-01-20", "2026-12-31") else { unreachable!() };
    gl.issued_on = Some(d("2026-01-18"));
    gl.applicant = Some(gc());
    gl.beneficiary = Some(anxin::domain::ids::Text::parse("榆中县人力资源和社会保障局").unwrap());
    let Command::SubmitPayroll(mut pr) = payroll("P1", "2026-01", &[(1, "5000")]) else { unreachable!() };
    pr.payroll_no = Some(doc("GZ-1"));
    pr.submitted_on = Some(d("2026-02-03"));
    let Command::DrawDeposit(mut dd) = draw("P1", "DY-1", "2026-03-02", &[(1, "5000", Some("2026-01"))]) else { unreachable!() };
    dd.order_date = Some(d("2026-02-27"));
    dd.reason = Some(anxin::domain::ids::Text::parse("一月工资逾期未付").unwrap());
    ok(&l, "a", vec![Command::RegisterProject(reg), open_account("P1"), enrol("P1", 1), deposit("P1", "D1", "9000", "2026-01-20")]);
    ok(&l, "b", vec![Command::IssueGuaranteeLetter(gl), Command::SubmitPayroll(pr), Command::DrawDeposit(dd)]);
    let statement = AttestBalance {
        project: pid("P1"),
        account: StatementAccount::Deposit,
        bank: anxin::domain::ids::BankCode::parse("ICBC").unwrap(),
        date: d("2026-03-02"),
        closing_balance: yuan("4000"),
        bank_ref: doc("ST-1"),
    };
    ok(&l, "c", vec![Command::AttestBalance(statement)]);
    // Format 3: a case from receipt to a closure citing the drawdown's payout (record 7).
    let c = anxin::domain::ids::CountyCode::parse("620121").unwrap();
    ok(&l, "d", vec![
        Command::OpenCase(OpenCase {
            case_no: doc("TS-1"),
            county: c,
            source: CaseSource::Complaint,
            received_on: d("2026-02-25"),
            employer: gc(),
            project: Some(pid("P1")),
            workers: vec![worker(1), worker(9)],
            amount_claimed: yuan("5000"),
            summary: Some(anxin::domain::ids::Text::parse("一月工资未发").unwrap()),
        }),
        Command::DecideCase(DecideCase { case_no: doc("TS-1"), county: c, date: d("2026-02-26"), accepted: true, reason: None }),
        Command::ExtendCase(ExtendCase { case_no: doc("TS-1"), county: c, date: d("2026-02-27"), reason: anxin::domain::ids::Text::parse("经批准延长").unwrap() }),
        Command::CloseCase(CloseCase { case_no: doc("TS-1"), county: c, date: d("2026-03-03"), outcome: CaseOutcome::Recovered, recovered: yuan("5000"), payouts: vec![7], note: None }),
    ]);
    let order = |no: &str| IssueOrder {
        order_no: doc(no),
        county: c,
        project: pid("P1"),
        employer: gc(),
        case_no: Some(doc("TS-1")),
        issued_on: d("2026-02-26"),
        deadline: d("2026-03-05"),
        amount: yuan("5000"),
        workers: 1,
        largest: yuan("5000"),
        demand: anxin::domain::ids::Text::parse("限期支付一月工资").unwrap(),
    };
    ok(&l, "e", vec![
        Command::IssueOrder(order("LZ-1")),
        Command::ResolveOrder(ResolveOrder { order_no: doc("LZ-1"), county: c, date: d("2026-03-03"), complied: true, records: vec![7], note: None }),
        Command::IssueOrder(order("LZ-2")),
        Command::ResolveOrder(ResolveOrder { order_no: doc("LZ-2"), county: c, date: d("2026-03-06"), complied: false, records: vec![], note: None }),
        Command::ReferOrder(ReferOrder { order_no: doc("LZ-2"), county: c, date: d("2026-03-09"), police_ref: doc("GA-1") }),
        Command::RecordReferralOutcome(RecordReferralOutcome { order_no: doc("LZ-2"), county: c, date: d("2026-03-12"), outcome: ReferralOutcome::Filed, reference: Some(doc("LA-1")), note: None }),
        Command::ListEmployer(ListEmployer { county: c, employer: gc(), listed_on: d("2026-03-10"), basis: ListingBasis::MassIncident(anxin::domain::ids::Text::parse("三十余人聚集讨薪").unwrap()) }),
        Command::DelistEmployer(DelistEmployer { county: c, employer: gc(), date: d("2026-09-10"), note: None }),
        Command::RecordInspection(RecordInspection { county: c, employer: gc(), date: d("2026-03-11"), project: None, contracts_signed: 4, findings: anxin::domain::ids::Text::parse("补签劳动合同").unwrap() }),
        Command::RecordCards(RecordCards { county: c, bank: anxin::domain::ids::BankCode::parse("ICBC").unwrap(), date: d("2026-03-31"), issued: 12, activated: 9 }),
    ]);
    let arch = dir.path().join("a.jsonl");
    export(&l, &arch);
    let key = anxin::chain::checkpoint::key_to_text(&l.public_key());
    assert_eq!(audit::verify_archive(&arch, Some(&l.public_key()), &mut |_| {}).unwrap().records, 22);
    let (good, text) = python(&arch, Some(&key));
    assert!(good && text.contains("OK: 22 records"), "{text}");
    let recs = l.read_records(1, 22).unwrap();
    assert!(recs.iter().all(|(_, r)| anxin::chain::record::Record::decode(r).unwrap().version == 3));
}

#[test]
fn every_kind_of_tampering_is_detected_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger_with(dir.path(), 10); // 12 records
    let arch = dir.path().join("a.jsonl");
    export(&l, &arch);
    let key = l.public_key();
    let key_text = anxin::chain::checkpoint::key_to_text(&key);
    let orig = lines(&arch);
    let check = |mutate: &dyn Fn(&mut Vec<String>), rust_says: &str, python_says: &str| {
        let mut v = orig.clone();
        mutate(&mut v);
        let p = dir.path().join("t.jsonl");
        write_lines(&p, &v);
        let e = audit::verify_archive(&p, Some(&key), &mut |_| {}).unwrap_err().to_string();
        assert!(e.contains(rust_says), "rust: {e}");
        let (good, text) = python(&p, Some(&key_text));
        assert!(!good && text.contains(python_says), "python: {text}");
    };
    // A changed byte in record 5 (line 6: the low byte of its date, 20260201 becomes
    // 20260200): both verifiers decode every record and name record 5.
    check(
        &|v| {
            let mut j: serde_json::Value = serde_json::from_str(&v[5]).unwrap();
            let mut bytes = hex::decode(j["hex"].as_str().unwrap()).unwrap();
            let last = bytes.len() - 1;
            bytes[last] ^= 1;
            j["hex"] = hex::encode(bytes).into();
            v[5] = j.to_string();
        },
        "record 5",
        "record 5: cannot decode",
    );
    // A changed byte in record 5's link to record 4: both name record 5.
    check(
        &|v| {
            let mut j: serde_json::Value = serde_json::from_str(&v[5]).unwrap();
            let mut bytes = hex::decode(j["hex"].as_str().unwrap()).unwrap();
            bytes[20] ^= 1;
            j["hex"] = hex::encode(bytes).into();
            v[5] = j.to_string();
        },
        "record 5: previous hash does not match the hash of record 4",
        "record 5: previous hash does not match the hash of record 4",
    );
    // A deleted record.
    check(&|v| { v.remove(4); }, "record 4: carries sequence number 5", "record 4: carries sequence number 5");
    // Two records swapped.
    check(&|v| v.swap(7, 8), "record 7: carries sequence number 8", "record 7: carries sequence number 8");
    // A truncated log: the checkpoint covers more than the archive holds.
    check(&|v| { v.truncate(10); }, "expected records up to 12, got 9", "covers 12 records but the archive holds 9");
    // A checkpoint signed with another key.
    let other = Ledger::open(tempfile::tempdir().unwrap().path(), opts()).unwrap();
    let foreign = other.checkpoint().unwrap();
    // The ledger's line (its name and key ID) with another key's signature of the text.
    let mut forged = l.checkpoint().unwrap();
    forged.signatures[0].sig = ed25519_dalek::Signer::sign(&ed25519_dalek::SigningKey::from_bytes(&[7; 32]), forged.checkpoint.body().as_bytes()).to_bytes().to_vec();
    let _ = foreign;
    check(
        &|v| {
            let mut h: serde_json::Value = serde_json::from_str(&v[0]).unwrap();
            h["checkpoint"] = forged.to_note().into();
            v[0] = h.to_string();
        },
        "signature does not verify",
        "signature does not verify",
    );
}

#[test]
fn a_forked_history_is_caught_by_the_consistency_proof_against_the_saved_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let older = tempfile::tempdir().unwrap();
    let l = ledger_with(dir.path(), 3); // 5 records
    l.close().unwrap();
    crate::store::copy_dir(dir.path(), older.path()); // an older copy, at 5 records
    let l = Ledger::open(dir.path(), opts()).unwrap();
    for i in 0..5 {
        ok(&l, &format!("u{i}"), vec![topup("P1", &format!("U{i}"), "2")]);
    }
    // The auditor verifies everything up to 10 and saves its state.
    let cp10 = l.checkpoint().unwrap();
    assert_eq!(cp10.checkpoint.tree_size, 10);
    let mut c = Catchup::from_genesis("anxin-test");
    for (_, b) in l.read_records(1, 10).unwrap() {
        c.feed(&b).unwrap();
    }
    let saved = c.finish(&cp10, &anxin::chain::checkpoint::key_to_text(&l.public_key())).unwrap();
    l.close().unwrap();
    // The operator restarts from the older copy (same key) and appends different records.
    let forked = Ledger::open(older.path(), opts()).unwrap();
    for i in 0..7 {
        ok(&forked, &format!("f{i}"), vec![topup("P1", &format!("F{i}"), "3")]);
    }
    let cp12 = forked.checkpoint().unwrap();
    assert_eq!(cp12.checkpoint.tree_size, 12);
    audit::check_checkpoint(&cp12, &forked.public_key(), "anxin-test").unwrap(); // the signature alone is fine
    let proof = forked.consistency_proof(10, 12).unwrap();
    let e = check_consistency(&saved.checkpoint().unwrap().checkpoint, &cp12.checkpoint, &proof).unwrap_err();
    assert!(matches!(e, AuditError::Inconsistent { from: 10, to: 12, .. }), "{e}");
    assert!(e.to_string().contains("from tree size 10 to 12"));
    // And the honest extension is consistent.
    let honest = Ledger::open(dir.path(), opts()).unwrap();
    ok(&honest, "h", vec![topup("P1", "H", "1")]);
    let cp11 = honest.checkpoint().unwrap();
    check_consistency(&cp10.checkpoint, &cp11.checkpoint, &honest.consistency_proof(10, 11).unwrap()).unwrap();
    // A checkpoint smaller than the saved one is "backwards".
    let e = check_consistency(&cp11.checkpoint, &cp10.checkpoint, &[]).unwrap_err();
    assert!(matches!(e, AuditError::Backwards { from: 11, to: 10 }));
}

#[test]
fn inclusion_proofs_prove_receipts_and_refuse_records_that_are_not_there() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger_with(dir.path(), 20);
    let r = ok(&l, "receipt", vec![topup("P1", "R1", "5"), topup("P1", "R2", "5")]);
    let cp = l.checkpoint().unwrap();
    let bytes = l.read_records(r.last_seq, r.last_seq).unwrap().remove(0).1;
    let proof = l.inclusion_proof(r.last_seq, cp.checkpoint.tree_size).unwrap();
    audit::check_receipt(r.last_seq, &r.head, &bytes, &proof, &cp, &l.public_key()).unwrap();
    // The same proof does not prove another record, and a wrong head is refused.
    let other = l.read_records(3, 3).unwrap().remove(0).1;
    assert!(matches!(audit::check_receipt(3, &anxin::chain::record::record_hash(&other), &other, &proof, &cp, &l.public_key()), Err(AuditError::Inclusion { seq: 3, .. })));
    assert!(matches!(audit::check_receipt(r.last_seq, &[0; 32], &bytes, &proof, &cp, &l.public_key()), Err(AuditError::Receipt { .. })));
    // No proof for a record beyond the log.
    let size = cp.checkpoint.tree_size;
    assert!(l.inclusion_proof(size + 1, size + 1).is_err());
    assert!(l.inclusion_proof(0, size).is_err());
}

#[test]
fn checkpoints_follow_the_log_survive_restart_and_never_go_backwards() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger_with(dir.path(), 5);
    let cp = l.checkpoint().unwrap();
    assert_eq!((cp.checkpoint.tree_size, cp.checkpoint.chain_head), (7, l.head().1));
    cp.verify(&l.public_key()).unwrap();
    let key = l.public_key();
    l.close().unwrap();
    use std::os::unix::fs::PermissionsExt;
    let kp = dir.path().join("keys/checkpoint.ed25519");
    assert_eq!(std::fs::metadata(&kp).unwrap().permissions().mode() & 0o777, 0o600);
    // The same key after restart, and the tree is not rehashed from the log.
    let l = Ledger::open(dir.path(), opts()).unwrap();
    assert_eq!(l.public_key(), key);
    assert_eq!(l.checkpoint().unwrap(), cp);
    l.close().unwrap();
    // A log cut below the signed checkpoint (a restore from an old copy of the log with a
    // newer checkpoint beside it) refuses to start.
    let seg = anxin::store::log::segment_path(&dir.path().join("log"), 1);
    let (start, _) = crate::store::record_range(dir.path(), 7);
    std::fs::OpenOptions::new().write(true).open(&seg).unwrap().set_len(start - 8).unwrap();
    std::fs::remove_dir_all(dir.path().join("index")).unwrap();
    let e = Ledger::open(dir.path(), opts()).err().expect("refuses");
    assert!(e.to_string().contains("the signed checkpoint covers records up to 7"), "{e}");
}

#[test]
fn deleted_merkle_files_are_rebuilt_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger_with(dir.path(), 100);
    let root = l.root_at(102).unwrap();
    l.close().unwrap();
    std::fs::remove_dir_all(dir.path().join("merkle")).unwrap();
    let l = Ledger::open(dir.path(), LedgerOptions { ledger_id: Some("anxin-test".into()), ..opts() }).unwrap();
    assert_eq!(l.root_at(102).unwrap(), root);
    let _ = (operator(), rid("x"));
}

fn naive(leaves: &[[u8; 32]]) -> [u8; 32] {
    match leaves.len() {
        0 => merkle::empty_root(),
        1 => leaves[0],
        n => {
            let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
            merkle::node_hash(&naive(&leaves[..k]), &naive(&leaves[k..]))
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Proofs from the stored files, for random sizes, against a full recomputation.
    #[test]
    fn stored_tree_proofs_match_a_naive_recomputation(n in 1u64..2_500, a in any::<u64>(), b in any::<u64>()) {
        let dir = tempfile::tempdir().unwrap();
        let leaves: Vec<[u8; 32]> = (0..n).map(|i| leaf_hash(&i.to_le_bytes())).collect();
        let hashes = leaves.clone();
        let mut w = MerkleWriter::open(dir.path(), u64::MAX).unwrap();
        for h in &hashes {
            w.push(anxin::chain::merkle::Leaf(*h));
        }
        w.flush().unwrap();
        let files = w.reader();
        let size = 1 + a % n;
        let m = b % size;
        let root = naive(&leaves[..size as usize]);
        prop_assert_eq!(merkle::root(&*files, size).unwrap(), root);
        let p = merkle::inclusion_proof(&*files, m, size).unwrap();
        prop_assert_eq!(&p, &merkle::inclusion_proof(&MemNodes(leaves.clone()), m, size).unwrap());
        prop_assert!(verify_inclusion(&leaves[m as usize], m, size, &p, &root).is_ok());
        let from = 1 + b % size;
        let c = merkle::consistency_proof(&*files, from, size).unwrap();
        prop_assert!(merkle::verify_consistency(from, size, &naive(&leaves[..from as usize]), &root, &c).is_ok());
    }
}
