//! The witness (c2sp.org/tlog-witness) against real ledgers: it cosigns a log's
//! consistent growth, answers every other request with the standard status, refuses a
//! fork and keeps refusing it (with evidence kept), and remembers across a restart.
//! Its cosignatures are checked with an independent note library (`signed_note`) and a
//! cosignature verifier written here from c2sp.org/tlog-cosignature alone.

use std::path::Path;

use anxin::chain::checkpoint::SignedCheckpoint;
use anxin::chain::cosignature::{Cosigner, WitnessKey};
use anxin::chain::note::NoteSignature;
use anxin::ledger::Ledger;
use anxin::witness::{Answer, KnownLog, Witness};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

use crate::common::*;
use crate::store::{ok, opts};

fn grow(l: &Ledger, tag: &str, n: usize) -> SignedCheckpoint {
    for i in 0..n {
        ok(l, &format!("{tag}{i}"), vec![topup("P1", &format!("{tag}{i}"), "1")]);
    }
    l.checkpoint().unwrap()
}

fn body(old: u64, proof: &[[u8; 32]], cp: &SignedCheckpoint) -> Vec<u8> {
    let mut b = format!("old {old}\n");
    for h in proof {
        b.push_str(&B64.encode(h));
        b.push('\n');
    }
    b.push('\n');
    b.push_str(&cp.to_note());
    b.into_bytes()
}

/// What the witness says to growing `l` from `old` to its checkpoint `cp`.
fn add(w: &Witness, l: &Ledger, old: u64, cp: &SignedCheckpoint) -> Answer {
    let proof = if old == 0 || old == cp.checkpoint.tree_size { Vec::new() } else { l.consistency_proof(old, cp.checkpoint.tree_size).unwrap() };
    w.add_checkpoint(&body(old, &proof, cp))
}

fn open_witness(dir: &Path, l: &Ledger) -> Witness {
    let cosigner = Cosigner::new("court.example/witness", ed25519_dalek::SigningKey::from_bytes(&[42; 32])).unwrap();
    Witness::open(dir, cosigner, vec![KnownLog { origin: format!("anxin/{}", l.ledger_id()), keys: vec![l.public_key()] }]).unwrap()
}

/// tlog-cosignature v1 written out from the specification (not from our module): the
/// signature line's bytes are the key ID, a big-endian u64 time and an Ed25519 signature
/// of "cosignature/v1\ntime <t>\n" and the checkpoint's text.
struct CosignatureV1 {
    name: String,
    id: u32,
    key: ed25519_dalek::VerifyingKey,
}

impl signed_note::Verifier for CosignatureV1 {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_id(&self) -> u32 {
        self.id
    }
    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        if sig.len() != 72 {
            return false;
        }
        let t = u64::from_be_bytes(sig[..8].try_into().unwrap());
        let mut m = format!("cosignature/v1\ntime {t}\n").into_bytes();
        m.extend_from_slice(msg);
        ed25519_dalek::Signature::from_slice(&sig[8..]).is_ok_and(|s| self.key.verify_strict(&m, &s).is_ok())
    }
}

fn independent(w: &Witness) -> CosignatureV1 {
    use sha2::Digest;
    let k = w.cosigner().public();
    let mut d = sha2::Sha256::new();
    d.update(k.name.as_bytes());
    d.update([b'\n', 0x04]);
    d.update(k.key.as_bytes());
    let id = u32::from_be_bytes(d.finalize()[..4].try_into().unwrap());
    CosignatureV1 { name: k.name, id, key: k.key }
}

#[test]
fn a_witness_cosigns_consistent_growth_refuses_forks_for_good_and_remembers() {
    let dir = tempfile::tempdir().unwrap();
    let older = tempfile::tempdir().unwrap();
    let wdir = tempfile::tempdir().unwrap();
    let l = Ledger::open(dir.path(), opts()).unwrap();
    ok(&l, "setup", vec![register("P1"), open_account("P1")]);
    let cp5 = grow(&l, "a", 3);
    l.close().unwrap();
    crate::store::copy_dir(dir.path(), older.path());
    let l = Ledger::open(dir.path(), opts()).unwrap();
    let w = open_witness(wdir.path(), &l);

    // First contact: from 0, no proof. The cosignature verifies with our verifier and
    // with one written from the specification, through an independent note parser.
    let a = add(&w, &l, 0, &cp5);
    assert_eq!(a.status, 200, "{a:?}");
    let line = NoteSignature::parse_line(a.body.trim_end()).unwrap();
    let wk = WitnessKey::from_vkey(&w.cosigner().public().vkey()).unwrap();
    assert!(wk.verify(&cp5.checkpoint.body(), &line).is_ok());
    let cosigned = format!("{}{}", cp5.to_note(), a.body);
    let note = signed_note::Note::from_bytes(cosigned.as_bytes()).unwrap();
    let list = signed_note::VerifierList::new(vec![Box::new(independent(&w))]);
    let (verified, unknown) = note.verify(&list).unwrap();
    assert_eq!((verified.len(), unknown.len()), (1, 1), "the witness's line verifies; the log's is unknown to this list");

    // A stale old size: 409 with the size it cosigned, in the standard content type.
    let a = add(&w, &l, 0, &cp5);
    assert_eq!((a.status, a.content_type, a.body.as_str()), (409, "text/x.tlog.size", "5\n"));
    // Growth with a consistency proof: cosigned. The same size again: cosigned again.
    let cp10 = grow(&l, "b", 5);
    assert_eq!(add(&w, &l, 5, &cp10).status, 200);
    assert_eq!(add(&w, &l, 10, &cp10).status, 200);

    // A fork: the operator restarts from the older copy (same key) and grows it otherwise.
    let forked = Ledger::open(older.path(), opts()).unwrap();
    let f12 = grow(&forked, "f", 7);
    assert_eq!(f12.checkpoint.tree_size, 12);
    for _ in 0..3 {
        let a = add(&w, &forked, 10, &f12);
        assert_eq!(a.status, 422, "a fork is refused, every time: {a:?}");
    }
    let evidence = std::fs::read_to_string(wdir.path().join("evidence.log")).unwrap();
    assert!(evidence.contains(&f12.checkpoint.body()), "the forked checkpoint is kept as evidence");
    // A proof from the honest history, attached to the forked checkpoint: refused.
    assert_eq!(w.add_checkpoint(&body(10, &l.consistency_proof(5, 10).unwrap(), &f12)).status, 422);
    // The honest log goes on being cosigned.
    let cp15 = grow(&l, "c", 5);
    assert_eq!(add(&w, &l, 10, &cp15).status, 200);
    // The fork at the same size, another root (a split view): refused.
    let f15 = grow(&forked, "g", 3);
    assert_eq!(f15.checkpoint.tree_size, 15);
    assert_ne!(f15.checkpoint.root, cp15.checkpoint.root);
    assert_eq!(w.add_checkpoint(&body(15, &[], &f15)).status, 422);
    // The cosigned checkpoint again with a proof attached: malformed, not a fork, and no
    // evidence; a fork shown again adds nothing to the evidence either.
    let kept = std::fs::read(wdir.path().join("evidence.log")).unwrap().len();
    assert_eq!(w.add_checkpoint(&body(15, &[[1; 32]], &cp15)).status, 422);
    assert_eq!(w.add_checkpoint(&body(15, &[], &f15)).status, 422);
    assert_eq!(std::fs::read(wdir.path().join("evidence.log")).unwrap().len(), kept);

    // Everything else, with its standard status.
    let other = Ledger::open(tempfile::tempdir().unwrap().path(), anxin::ledger::LedgerOptions { ledger_id: Some("another-ledger".into()), ..opts() }).unwrap();
    let o = grow(&other, "o", 0);
    assert_eq!(add(&w, &other, 0, &o).status, 404, "an unknown log");
    let mut foreign = cp15.clone();
    foreign.signatures = o.signatures.clone();
    foreign.signatures[0].name = cp15.checkpoint.origin();
    assert_eq!(w.add_checkpoint(&body(15, &[], &foreign)).status, 403, "no signature of a trusted key");
    let mut bad = cp15.clone();
    bad.signatures[0].sig[0] ^= 1;
    assert_eq!(w.add_checkpoint(&body(15, &[], &bad)).status, 403, "a trusted key's signature that fails");
    assert_eq!(w.add_checkpoint(&body(20, &[], &cp15)).status, 400, "an old size past the checkpoint");
    assert_eq!(w.add_checkpoint(b"old 01\n\nx").status, 400);
    assert_eq!(w.add_checkpoint(b"nonsense").status, 400);

    // One witness per state: a second one on the same directory is refused while the
    // first runs (each would cosign from what it last read).
    let cosigner = Cosigner::new("court.example/witness", ed25519_dalek::SigningKey::from_bytes(&[42; 32])).unwrap();
    let second = Witness::open(wdir.path(), cosigner, Vec::new()).err().expect("a second witness on the same state");
    assert!(second.contains("another witness holds"), "{second}");
    // A restart remembers: the state is on disk.
    drop(w);
    let w = open_witness(wdir.path(), &l);
    let a = add(&w, &l, 0, &cp15);
    assert_eq!((a.status, a.body.as_str()), (409, "15\n"));
    assert_eq!(w.add_checkpoint(&body(15, &[], &f15)).status, 422, "the fork is still refused after the restart");
    // A damaged state file stops the witness rather than letting it forget.
    drop(w);
    std::fs::write(wdir.path().join("state.json"), b"{ not json").unwrap();
    let cosigner = Cosigner::new("court.example/witness", ed25519_dalek::SigningKey::from_bytes(&[42; 32])).unwrap();
    assert!(Witness::open(wdir.path(), cosigner, Vec::new()).is_err());
}

#[test]
fn a_first_submission_from_size_0_must_carry_no_proof_and_an_empty_tree_must_have_the_empty_root() {
    let dir = tempfile::tempdir().unwrap();
    let wdir = tempfile::tempdir().unwrap();
    let l = Ledger::open(dir.path(), opts()).unwrap();
    let w = open_witness(wdir.path(), &l);
    let empty = l.checkpoint().unwrap();
    assert_eq!(empty.checkpoint.tree_size, 0);
    assert_eq!(add(&w, &l, 0, &empty).status, 200, "the empty tree");
    ok(&l, "setup", vec![register("P1"), open_account("P1")]);
    let cp = l.checkpoint().unwrap();
    assert_eq!(w.add_checkpoint(&body(0, &[[1; 32]], &cp)).status, 422, "a proof from 0");
    assert_eq!(add(&w, &l, 0, &cp).status, 200);
}
