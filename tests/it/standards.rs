//! The transparency-log standards (issue 18): checkpoints, signatures, proofs and records
//! checked by implementations we did not write (the `signed_note` and `tlog_tiles`
//! crates, ports of Go's `golang.org/x/mod/sumdb/note` and `tlog`), and the upgrade from
//! checkpoint format 1 of a data directory and of an auditor's saved state.

use std::path::Path;

use anxin::audit::{AuditError, AuditState, Catchup, Saved};
use anxin::chain::checkpoint::{vkey, SignedCheckpoint};
use anxin::chain::checkpoint_v1;
use anxin::chain::merkle::{Frontier, TreeHash};
use anxin::chain::record::record_hash;
use anxin::ledger::Ledger;
use signed_note::{Note, StandardVerifier, VerifierList};
use tlog_tiles::{check_record, check_tree, Hash as TlogHash};

use crate::common::*;
use crate::store::{ok, opts};

fn ledger_with(dir: &Path, n: usize) -> Ledger {
    let l = Ledger::open(dir, opts()).unwrap();
    ok(&l, "setup", vec![register("P1"), open_account("P1")]);
    for i in 0..n {
        ok(&l, &format!("t{i}"), vec![topup("P1", &format!("T{i}"), "1")]);
    }
    l
}

fn verifiers(vk: &str) -> VerifierList {
    VerifierList::new(vec![Box::new(StandardVerifier::new(vk).unwrap())])
}

#[test]
fn checkpoints_proofs_and_records_check_with_an_independent_library() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger_with(dir.path(), 40);
    let cp = l.checkpoint().unwrap();
    let n = cp.checkpoint.tree_size;
    assert_eq!(n, 42);
    let records = l.read_records(1, n).unwrap();
    let vk = vkey(l.ledger_id(), &l.public_key());

    // The signed note verifies with the standard verifier key, and another key's does not.
    let note = cp.to_note();
    let parsed = Note::from_bytes(note.as_bytes()).unwrap();
    let (verified, unknown) = parsed.verify(&verifiers(&vk)).unwrap();
    assert_eq!((verified.len(), unknown.len()), (1, 0));
    let other = vkey(l.ledger_id(), &ed25519_dalek::SigningKey::from_bytes(&[9; 32]).verifying_key());
    assert!(parsed.verify(&verifiers(&other)).is_err(), "another key does not verify it");
    // A changed tree size: the independent verifier refuses the note.
    let forged = note.replacen("\n42\n", "\n43\n", 1);
    assert!(Note::from_bytes(forged.as_bytes()).unwrap().verify(&verifiers(&vk)).is_err());

    // Its text is a standard checkpoint: origin, size, root; our two extension lines.
    let body = tlog_tiles::Checkpoint::from_bytes(cp.checkpoint.body().as_bytes()).unwrap();
    assert_eq!(body.origin(), format!("anxin/{}", l.ledger_id()));
    assert_eq!(body.size(), n);
    assert_eq!(body.hash().0, cp.checkpoint.root);
    assert!(body.extension().starts_with("chain-head ") && body.extension().contains("\ntimestamp-ms "), "{}", body.extension());

    // Every record's inclusion, from the record's own bytes (the leaf is the record), and
    // every consistency proof, checked by the independent proof code; a changed hash fails.
    let th = TlogHash(cp.checkpoint.root);
    for (seq, bytes) in &records {
        let proof: Vec<TlogHash> = l.inclusion_proof(*seq, n).unwrap().into_iter().map(TlogHash).collect();
        check_record(&proof, n, th, seq - 1, tlog_tiles::record_hash(bytes)).unwrap_or_else(|e| panic!("record {seq}: {e:?}"));
        if let Some(first) = proof.first() {
            let mut bad = proof.clone();
            bad[0] = TlogHash([first.0[0] ^ 1; 32]);
            assert!(check_record(&bad, n, th, seq - 1, tlog_tiles::record_hash(bytes)).is_err());
        }
        // The leaf of another record is not at this index.
        let other = &records[(*seq as usize) % records.len()].1;
        assert!(check_record(&proof, n, th, seq - 1, tlog_tiles::record_hash(other)).is_err());
    }
    for m in 1..=n {
        let proof: Vec<TlogHash> = l.consistency_proof(m, n).unwrap().into_iter().map(TlogHash).collect();
        let old = TlogHash(l.root_at(m).unwrap());
        check_tree(&proof, n, th, m, old).unwrap_or_else(|e| panic!("{m} -> {n}: {e:?}"));
        if m < n {
            assert!(check_tree(&proof, n, th, m, TlogHash([7; 32])).is_err(), "a forked root at {m}");
        }
    }
    // The root of every size, recomputed by the independent code from the records alone.
    let hashes: Vec<TlogHash> = records.iter().map(|(_, b)| tlog_tiles::record_hash(b)).collect();
    for m in [1, 2, 3, 7, 8, 9, 16, 41, 42] {
        assert_eq!(naive_root(&hashes[..m]).0, l.root_at(m as u64).unwrap(), "size {m}");
    }
}

/// RFC 6962 MTH over leaf hashes with the independent library's node hash.
fn naive_root(leaves: &[TlogHash]) -> TlogHash {
    match leaves.len() {
        1 => leaves[0],
        n => {
            let k = 1 << (usize::BITS - 1 - (n - 1).leading_zeros());
            tlog_tiles::node_hash(naive_root(&leaves[..k]), naive_root(&leaves[k..]))
        }
    }
}

/// Format 1's tree over the records: their BLAKE3 hashes under BLAKE3 nodes.
fn v1_root(records: &[(u64, Vec<u8>)]) -> [u8; 32] {
    let mut f = Frontier::default();
    for (_, b) in records {
        f.push_as(TreeHash::Blake3V1, TreeHash::Blake3V1.leaf(b, &record_hash(b)));
    }
    f.root_as(TreeHash::Blake3V1)
}

/// Puts `dir` back as a build of checkpoint format 1 left it: a binary checkpoint over
/// the BLAKE3 tree (with `root`, the right one unless a test says otherwise) and Merkle
/// files of that tree without a format file.
fn make_format_1(dir: &Path, records: &[(u64, Vec<u8>)], root: Option<[u8; 32]>) -> Vec<u8> {
    let seed: [u8; 32] = std::fs::read(dir.join("keys/checkpoint.ed25519")).unwrap().try_into().unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    let (_, last) = records.last().unwrap();
    let cp = checkpoint_v1::Checkpoint { version: 1, ledger_id: "anxin-test".into(), tree_size: records.len() as u64, root: root.unwrap_or_else(|| v1_root(records)), chain_head: record_hash(last), timestamp_ms: 1_767_225_600_000 }.sign(&key);
    let bytes = anxin::chain::codec::encode(&cp);
    std::fs::write(dir.join("checkpoints/latest"), &bytes).unwrap();
    let leaves: Vec<u8> = records.iter().flat_map(|(_, b)| TreeHash::Blake3V1.leaf(b, &record_hash(b))).collect();
    let _ = std::fs::remove_file(dir.join("merkle/format"));
    std::fs::write(dir.join("merkle/leaves"), leaves).unwrap();
    for e in std::fs::read_dir(dir.join("merkle")).unwrap() {
        let e = e.unwrap();
        if e.file_name().to_string_lossy().starts_with("level-") {
            std::fs::write(e.path(), []).unwrap();
        }
    }
    bytes
}

#[test]
fn a_format_1_data_directory_is_checked_against_its_log_then_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger_with(dir.path(), 70);
    let records = l.read_records(1, l.tree_size()).unwrap();
    l.close().unwrap();
    let old = make_format_1(dir.path(), &records, None);

    let l = Ledger::open(dir.path(), opts()).unwrap();
    let n = records.len() as u64;
    let cp = SignedCheckpoint::from_note(&std::fs::read(dir.path().join("checkpoints/latest")).unwrap()).unwrap();
    cp.verify(&l.public_key()).unwrap();
    assert_eq!((cp.checkpoint.tree_size, cp.checkpoint.chain_head, cp.checkpoint.timestamp_ms), (n, record_hash(&records[records.len() - 1].1), 1_767_225_600_000));
    let hashes: Vec<TlogHash> = records.iter().map(|(_, b)| tlog_tiles::record_hash(b)).collect();
    assert_eq!(cp.checkpoint.root, naive_root(&hashes).0, "the new root is the RFC 6962 root of the same records");
    // The old checkpoint is kept for the auditors who pinned it.
    assert_eq!(std::fs::read(dir.path().join("checkpoints/v1-latest")).unwrap(), old);
    // The Merkle files were rebuilt: proofs from them check independently.
    for seq in [1, 35, n] {
        let proof: Vec<TlogHash> = l.inclusion_proof(seq, n).unwrap().into_iter().map(TlogHash).collect();
        check_record(&proof, n, TlogHash(cp.checkpoint.root), seq - 1, hashes[(seq - 1) as usize]).unwrap();
    }
    // And the ledger goes on.
    ok(&l, "after", vec![topup("P1", "A1", "1")]);
    assert_eq!(l.checkpoint().unwrap().checkpoint.tree_size, n + 1);
    l.close().unwrap();
    Ledger::open(dir.path(), opts()).unwrap().close().unwrap();
}

#[test]
fn a_format_1_checkpoint_the_log_does_not_give_is_refused_and_nothing_is_resigned() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger_with(dir.path(), 5);
    let records = l.read_records(1, l.tree_size()).unwrap();
    l.close().unwrap();
    // Signed by the ledger's key, over another history (a root the log does not give).
    let old = make_format_1(dir.path(), &records, Some([5; 32]));
    let e = Ledger::open(dir.path(), opts()).err().expect("refused").to_string();
    assert!(e.contains("format 1") && e.contains("do not give its root"), "{e}");
    assert_eq!(std::fs::read(dir.path().join("checkpoints/latest")).unwrap(), old, "nothing was re-signed");
    assert!(!dir.path().join("checkpoints/v1-latest").exists());
    // Signed by another key: refused too.
    make_format_1(dir.path(), &records, None);
    let mut bytes = std::fs::read(dir.path().join("checkpoints/latest")).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(dir.path().join("checkpoints/latest"), &bytes).unwrap();
    let e = Ledger::open(dir.path(), opts()).err().expect("refused").to_string();
    assert!(e.contains("signature"), "{e}");
}

#[test]
fn a_format_1_auditor_state_is_verified_again_from_genesis_and_must_give_its_root() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger_with(dir.path(), 9);
    let records = l.read_records(1, l.tree_size()).unwrap();
    let seed: [u8; 32] = std::fs::read(dir.path().join("keys/checkpoint.ed25519")).unwrap().try_into().unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    // What an auditor saved at record 6, before format 2.
    let state_at = |root: [u8; 32]| {
        let seen = &records[..6];
        let cp = checkpoint_v1::Checkpoint { version: 1, ledger_id: "anxin-test".into(), tree_size: 6, root, chain_head: record_hash(&seen[5].1), timestamp_ms: 1 }.sign(&key);
        let mut f = Frontier::default();
        for (_, b) in seen {
            f.push_as(TreeHash::Blake3V1, TreeHash::Blake3V1.leaf(b, &record_hash(b)));
        }
        let json = serde_json::json!({"ledger_id": "anxin-test", "public_key": anxin::chain::checkpoint::key_to_text(&key.verifying_key()), "checkpoint_hex": hex::encode(anxin::chain::codec::encode(&cp)), "frontier": f, "chain_head_hex": hex::encode(record_hash(&seen[5].1))});
        let path = dir.path().join("state.json");
        std::fs::write(&path, json.to_string()).unwrap();
        AuditState::load(&path).unwrap()
    };
    let cp = l.checkpoint().unwrap();
    let state = state_at(v1_root(&records[..6]));
    let Saved::V1(old) = state.saved().unwrap() else { panic!("a format-1 state") };
    old.verify(&l.public_key()).unwrap();
    let mut c = Catchup::upgrading("anxin-test", &old);
    for (_, b) in &records {
        c.feed(b).unwrap();
    }
    let upgraded = c.finish(&cp, "pinned").unwrap();
    assert_eq!(upgraded.version, 2);
    assert_eq!(upgraded.checkpoint().unwrap(), cp);
    // A saved root these records do not give: another history was shown before.
    let state = state_at([3; 32]);
    let Saved::V1(old) = state.saved().unwrap() else { panic!("a format-1 state") };
    let mut c = Catchup::upgrading("anxin-test", &old);
    let e = records.iter().map(|(_, b)| c.feed(b).map(drop)).find(Result::is_err).expect("caught at record 6");
    assert!(matches!(e, Err(AuditError::Inconsistent { from: 6, .. })), "{e:?}");
}

#[test]
fn an_offline_receipt_verifies_alone_and_every_forgery_of_it_is_refused() {
    use anxin::receipt::{Receipt, ReceiptError};
    let dir = tempfile::tempdir().unwrap();
    let l = ledger_with(dir.path(), 30);
    let key = l.public_key();
    // A bank's batch (records 10 to 14) and one record alone.
    let batch = l.receipt(10, 14, false).unwrap();
    let text = batch.encode();
    assert!(text.starts_with("c2sp.org/tlog-proof@v1\nextra "), "{text}");
    let back = Receipt::parse(&text).unwrap();
    assert_eq!(back, batch);
    let v = back.verify(&key, None).unwrap();
    assert_eq!((v.records.len(), v.records[0].seq, v.tree_size), (5, 10, 32));
    let one = l.receipt(7, 7, false).unwrap();
    one.verify(&key, None).unwrap();
    // The independent library checks the same leaf (the last record) in the same tree.
    let c = &batch.checkpoint.checkpoint;
    let proof: Vec<TlogHash> = batch.proof.iter().copied().map(TlogHash).collect();
    check_record(&proof, c.tree_size, TlogHash(c.root), batch.index, tlog_tiles::record_hash(batch.records.last().unwrap())).unwrap();

    let refused = |r: &Receipt, what: &str| {
        let e = r.verify(&key, None).err().unwrap_or_else(|| panic!("{what}: accepted"));
        // And through the text, if it still parses.
        if let Ok(p) = Receipt::parse(&r.encode()) {
            assert!(p.verify(&key, None).is_err(), "{what}: accepted after a round trip");
        }
        e
    };
    // A byte of a record changed (an amount, a worker): the last one's leaf, or an earlier
    // one's link, no longer holds.
    for i in [0usize, 4] {
        let mut r = batch.clone();
        let n = r.records[i].len();
        r.records[i][n - 3] ^= 1;
        refused(&r, "a changed byte");
    }
    // A record taken out of the middle, two swapped, one from elsewhere added in front.
    let mut r = batch.clone();
    r.records.remove(2);
    assert!(matches!(refused(&r, "a record taken out"), ReceiptError::Record { .. }));
    let mut r = batch.clone();
    r.records.swap(1, 2);
    refused(&r, "two swapped");
    let mut r = batch.clone();
    r.records.insert(0, one.records[0].clone());
    refused(&r, "a record from elsewhere");
    // The proof of another leaf, another index, a shorter proof.
    let mut r = batch.clone();
    r.proof = one.proof.clone();
    assert!(matches!(refused(&r, "another leaf's proof"), ReceiptError::NotIncluded { .. }));
    let mut r = batch.clone();
    r.index -= 1;
    refused(&r, "another index");
    let mut r = batch.clone();
    r.proof.pop();
    refused(&r, "a hash short");
    // A checkpoint of another size or root, or signed by another key.
    let mut r = batch.clone();
    r.checkpoint.checkpoint.root[0] ^= 1;
    assert!(matches!(refused(&r, "another root"), ReceiptError::Checkpoint(_)));
    let mut r = batch.clone();
    r.checkpoint = anxin::chain::checkpoint::Checkpoint { root: [0; 32], ..batch.checkpoint.checkpoint.clone() }.sign(&ed25519_dalek::SigningKey::from_bytes(&[5; 32]));
    refused(&r, "signed by another key");
    // Indexes at the edge of u64: refused, never a panic.
    let mut r = batch.clone();
    r.index = u64::MAX;
    refused(&r, "index u64::MAX");
    // Garbage is not a receipt.
    for t in ["", "c2sp.org/tlog-proof@v1\n", "c2sp.org/tlog-proof@v1\nextra !!\nindex 1\n\n", &text.replacen("index 13", "index 013", 1)] {
        assert!(Receipt::parse(t).is_err(), "{t:?}");
    }
    // Records beyond a receipt's 8 MiB: refused unread (one record of 9 MiB here).
    let mut r = batch.clone();
    r.records = vec![vec![0; anxin::receipt::MAX_BYTES + (1 << 20)]];
    let e = Receipt::parse(&r.encode()).unwrap_err();
    assert!(e.to_string().contains("8 MiB"), "{e}");
    // Not yet checkpointed, or never: refused with the reason.
    assert!(matches!(l.receipt(5, 40, false), Err(anxin::ledger::ProofRequestError::NotYet(_))));
    assert!(matches!(l.receipt(5, 4, false), Err(anxin::ledger::ProofRequestError::Invalid(_))));
    assert!(matches!(l.receipt(5, 5, true), Err(anxin::ledger::ProofRequestError::NotYet(_))), "no witnessed checkpoint without witnesses");
}

/// The independent Python verifier (examples/verify_archive.py --receipt) on receipts and
/// cosignatures: the vector's, and a ledger's with forgeries.
#[test]
fn the_python_verifier_checks_receipts_and_cosignatures_independently() {
    let py = |file: &Path, key: &str, extra: &[&str]| {
        let out = std::process::Command::new("python3").arg(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/verify_archive.py")).arg(file).args(["--receipt", "--key", key]).args(extra).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        assert!(!text.contains("Traceback") && !text.contains("ModuleNotFoundError"), "{text}");
        (out.status.success(), text)
    };
    let dir = tempfile::tempdir().unwrap();
    // The vector receipt, cosigned by the vector witness.
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/tree-v2.json")).unwrap()).unwrap();
    let f = dir.path().join("vector.proof");
    std::fs::write(&f, v["receipt"]["text"].as_str().unwrap()).unwrap();
    let (key, w) = (v["checkpoint"]["vkey"].as_str().unwrap(), v["cosignature"]["witness_vkey"].as_str().unwrap());
    let (ok, text) = py(&f, key, &["--witness", w, "--quorum", "1"]);
    assert!(ok && text.contains("records 3 to 5") && text.contains("cosigned by witness.example/w1"), "{text}");
    assert!(!py(&f, key, &["--quorum", "1"]).0, "no witness given, a quorum of 1");
    // A ledger's receipts: good, then forged.
    let l = ledger_with(&dir.path().join("d"), 20);
    let vk = vkey(l.ledger_id(), &l.public_key());
    let witness = anxin::chain::cosignature::Cosigner::new("court.example/w", ed25519_dalek::SigningKey::from_bytes(&[4; 32])).unwrap();
    let mut r = l.receipt(5, 9, false).unwrap();
    let body = r.checkpoint.checkpoint.body();
    r.checkpoint.signatures.push(witness.cosign(&body, 1_767_225_600));
    let write = |name: &str, text: String| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let wv = witness.public().vkey();
    let (ok, text) = py(&write("good.proof", r.encode()), &vk, &["--witness", &wv, "--quorum", "1"]);
    assert!(ok && text.contains("records 5 to 9"), "{text}");
    let mut changed = r.clone();
    let n = changed.records[4].len();
    changed.records[4][n - 2] ^= 1;
    assert!(!py(&write("changed.proof", changed.encode()), &vk, &[]).0, "a changed byte");
    let mut other = r.clone();
    other.proof = l.receipt(3, 3, false).unwrap().proof;
    assert!(!py(&write("other.proof", other.encode()), &vk, &[]).0, "another leaf's proof");
    let mut cosig_elsewhere = r.clone();
    cosig_elsewhere.checkpoint.signatures.pop();
    cosig_elsewhere.checkpoint.signatures.push(witness.cosign(&body.replacen("\n22\n", "\n23\n", 1), 1_767_225_600));
    let (ok, text) = py(&write("cosig.proof", cosig_elsewhere.encode()), &vk, &["--witness", &wv, "--quorum", "1"]);
    assert!(!ok && text.contains("cosignature of court.example/w does not verify"), "a cosignature over another checkpoint: {text}");
    // The ledger's key under another log's name; one witness given twice under two names.
    let renamed = anxin::chain::note::vkey("anxin/another", anxin::chain::note::SIG_ED25519, l.public_key().as_bytes());
    let (ok, text) = py(&write("renamed.proof", r.encode()), &renamed, &[]);
    assert!(!ok && text.contains("is for anxin/another"), "{text}");
    let twice = anxin::chain::note::vkey("court.example/w2", anxin::chain::note::SIG_COSIGNATURE, witness.public().key.as_bytes());
    let (ok, text) = py(&write("twice.proof", r.encode()), &vk, &["--witness", &wv, "--witness", &twice, "--quorum", "2"]);
    assert!(!ok && text.contains("the same witness"), "{text}");
    let foreign = vkey(l.ledger_id(), &ed25519_dalek::SigningKey::from_bytes(&[6; 32]).verifying_key());
    let (ok, text) = py(&write("good2.proof", r.encode()), &foreign, &[]);
    assert!(!ok && text.contains("no signature of the pinned key"), "another key: {text}");
}
