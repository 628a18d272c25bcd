//! Golden vectors: fixed records pinned to fixed canonical bytes and hashes
//! (`tests/vectors/chain-v1.json`, `-v2`, `-v3`: one per record format). A change here is
//! a format break and needs a new format version. Regenerate only on purpose: `ANXIN_WRITE_VECTORS=1 cargo test vectors`.

use anxin::chain::codec;
use anxin::chain::record::{genesis_hash, record_hash, ChainVerifier, Record, FORMAT_VERSION};
use anxin::domain::command::*;
use anxin::domain::ids::*;
use anxin::domain::principal::Principal;
use serde_json::{json, Value};

use crate::common::*;

const LEDGER_ID: &str = "anxin-vectors";
const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/chain-v1.json");
const PATH_V2: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/chain-v2.json");
const PATH_V3: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/chain-v3.json");

fn events() -> Vec<(&'static str, Principal, Event)> {
    let county = Principal::parse("county:620121").unwrap();
    let bank = Principal::parse("bank:ICBC").unwrap();
    let gc_p = Principal::Contractor(gc());
    let Command::RegisterProject(reg) = register("P1") else { unreachable!() };
    let Command::OpenWageAccount(acct) = open_account_no("P1", "2703001209") else { unreachable!() };
    let Command::EnrolWorker(en) = enrol("P1", 1) else { unreachable!() };
    let Command::MakeProgressPayment(pp) = progress("P1", "GCK-1", "100000.00", "30000.00", "2026-02-05") else { unreachable!() };
    let Command::SubmitPayroll(pr) = payroll("P1", "2026-01", &[(1, "5200.50")]) else { unreachable!() };
    let Command::PayWage(pw) = pay("P1", "DF-1", 1, "5200.50", Some("2026-01")) else { unreachable!() };
    let Command::IssueGuaranteeLetter(gl) = letter("P1", "BH-1", "200000", "2026-01-20", "2026-12-31") else { unreachable!() };
    vec![
        ("ProjectRegistered", county.clone(), Event::ProjectRegistered(reg)),
        ("WageAccountOpened", bank.clone(), Event::WageAccountOpened(acct)),
        ("WorkerEnrolled", gc_p.clone(), Event::WorkerEnrolled(en)),
        ("ProgressPaymentMade", bank.clone(), Event::ProgressPaymentMade(pp)),
        ("PayrollSubmitted", gc_p, Event::PayrollSubmitted(pr)),
        ("WagePaid", bank.clone(), Event::WagePaid(pw)),
        ("GuaranteeLetterIssued", bank, Event::GuaranteeLetterIssued(gl)),
        ("DepositReleased", county, Event::DepositReleased(DepositReleased { project: pid("P1"), date: d("2026-12-31"), amount: yuan("0.01") })),
    ]
}

/// Format 2's records: the same, with every field format 2 added set, and a drawdown.
fn events_v2() -> Vec<(&'static str, Principal, Event)> {
    let mut out = events();
    for (_, _, e) in &mut out {
        match e {
            Event::ProjectRegistered(r) => {
                r.registered_on = Some(d("2026-01-08"));
                r.deposit_basis = DepositBasis::Exempt(Text::parse("县人社局2026年第3号: 连续三年无欠薪").unwrap());
                r.funding = Funding::Government;
            }
            Event::PayrollSubmitted(p) => {
                p.payroll_no = Some(DocNo::parse("GZ-2026-01").unwrap());
                p.submitted_on = Some(d("2026-02-03"));
            }
            Event::GuaranteeLetterIssued(l) => {
                l.issued_on = Some(d("2026-01-18"));
                l.applicant = Some(gc());
                l.beneficiary = Some(Text::parse("榆中县人力资源和社会保障局").unwrap());
            }
            _ => {}
        }
    }
    let Command::DrawDeposit(mut dd) = draw("P1", "DY-1", "2026-03-02", &[(1, "5200.50", Some("2026-01"))]) else { unreachable!() };
    dd.order_date = Some(d("2026-02-27"));
    dd.reason = Some(Text::parse("2026年1月工资逾期未付").unwrap());
    out.push(("DepositDrawn", Principal::parse("county:620121").unwrap(), Event::DepositDrawn(dd)));
    out
}

/// Format 3's records: format 2's, a bank statement, a case from receipt to closure, an
/// order unmet, referred, its employer listed, the order complied with late and the
/// employer delisted, an inspection and a bank's card counts.
fn events_v3() -> Vec<(&'static str, Principal, Event)> {
    let county = Principal::parse("county:620121").unwrap();
    let c = CountyCode::parse("620121").unwrap();
    let case_no = DocNo::parse("TS-2026-031").unwrap();
    let mut out = events_v2();
    let Command::AttestBalance(st) = statement("P1", "ICBC", "2026-02-05", "ICBC-ST-1") else { unreachable!() };
    out.push(("BalanceAttested", Principal::parse("bank:ICBC").unwrap(), Event::BalanceAttested(st)));
    out.push(("CaseOpened", county.clone(), Event::CaseOpened(OpenCase {
        case_no: case_no.clone(),
        county: c,
        source: CaseSource::NationalPlatform,
        received_on: d("2026-02-02"),
        employer: gc(),
        project: Some(pid("P1")),
        workers: vec![worker(1), worker(2)],
        amount_claimed: yuan("10401.00"),
        summary: Some(Text::parse("1月工资未发").unwrap()),
    })));
    out.push(("CaseDecided", county.clone(), Event::CaseDecided(DecideCase { case_no: case_no.clone(), county: c, date: d("2026-02-04"), accepted: true, reason: None })));
    out.push(("CaseExtended", county.clone(), Event::CaseExtended(ExtendCase { case_no: case_no.clone(), county: c, date: d("2026-04-20"), reason: Text::parse("经批准延长").unwrap() })));
    out.push(("CaseClosed", county.clone(), Event::CaseClosed(CloseCase {
        case_no,
        county: c,
        date: d("2026-05-06"),
        outcome: CaseOutcome::Recovered,
        recovered: yuan("5200.50"),
        payouts: vec![6],
        note: None,
    })));
    let order_no = DocNo::parse("LZ-2026-007").unwrap();
    out.push(("OrderIssued", county.clone(), Event::OrderIssued(IssueOrder {
        order_no: order_no.clone(),
        county: c,
        project: pid("P1"),
        employer: gc(),
        case_no: Some(DocNo::parse("TS-2026-031").unwrap()),
        issued_on: d("2026-03-02"),
        deadline: d("2026-03-16"),
        amount: yuan("36000"),
        workers: 12,
        largest: yuan("6000"),
        demand: Text::parse("限期支付拖欠的2026年1月工资").unwrap(),
    })));
    out.push(("OrderResolved", county.clone(), Event::OrderResolved(ResolveOrder { order_no: order_no.clone(), county: c, date: d("2026-03-17"), complied: false, records: vec![], note: None })));
    out.push(("OrderReferred", county.clone(), Event::OrderReferred(ReferOrder { order_no: order_no.clone(), county: c, date: d("2026-03-20"), police_ref: DocNo::parse("GA-2026-015").unwrap() })));
    out.push(("EmployerListed", county.clone(), Event::EmployerListed(ListEmployer { county: c, employer: gc(), listed_on: d("2026-03-25"), basis: ListingBasis::UnmetOrder(order_no.clone()) })));
    out.push(("OrderResolved", county.clone(), Event::OrderResolved(ResolveOrder { order_no, county: c, date: d("2026-04-30"), complied: true, records: vec![6], note: Some(Text::parse("已补发").unwrap()) })));
    out.push(("EmployerDelisted", county.clone(), Event::EmployerDelisted(DelistEmployer { county: c, employer: gc(), date: d("2026-09-25"), note: None })));
    out.push(("InspectionRecorded", county, Event::InspectionRecorded(RecordInspection { county: c, employer: gc(), date: d("2026-04-08"), project: Some(pid("P1")), contracts_signed: 23, findings: Text::parse("劳动合同未全部签订").unwrap() })));
    out.push(("CardsRecorded", Principal::parse("bank:ICBC").unwrap(), Event::CardsRecorded(RecordCards { county: c, bank: BankCode::parse("ICBC").unwrap(), date: d("2026-05-31"), issued: 861, activated: 872 })));
    out.push((
        "ReferralOutcomeRecorded",
        Principal::parse("county:620121").unwrap(),
        Event::ReferralOutcomeRecorded(RecordReferralOutcome {
            order_no: DocNo::parse("LZ-2026-007").unwrap(),
            county: c,
            date: d("2026-06-02"),
            outcome: ReferralOutcome::Filed,
            reference: Some(DocNo::parse("LA-2026-041").unwrap()),
            note: Some(Text::parse("以涉嫌拒不支付劳动报酬罪立案侦查").unwrap()),
        }),
    ));
    out
}

fn build() -> Value {
    build_version(1, events())
}

fn build_version(version: u16, events: Vec<(&'static str, Principal, Event)>) -> Value {
    let mut prev = genesis_hash(LEDGER_ID);
    let mut records = Vec::new();
    for (i, (name, principal, event)) in events.into_iter().enumerate() {
        let rec = Record {
            version,
            seq: i as u64 + 1,
            prev_hash: prev,
            recorded_at_ms: 1_767_225_600_000 + i as i64,
            principal,
            request_id: RequestId::parse(&format!("req-{}", i + 1)).unwrap(),
            event,
        };
        let bytes = rec.encode();
        let hash = record_hash(&bytes);
        records.push(json!({
            "name": name,
            "seq": rec.seq,
            "principal": rec.principal.to_string(),
            "request_id": rec.request_id.as_str(),
            "recorded_at_ms": rec.recorded_at_ms,
            "prev_hash": hex::encode(prev),
            "canonical_hex": hex::encode(&bytes),
            "hash": hex::encode(hash),
        }));
        prev = hash;
    }
    json!({
        "format_version": version,
        "ledger_id": LEDGER_ID,
        "genesis_prev_hash": hex::encode(genesis_hash(LEDGER_ID)),
        "head": hex::encode(prev),
        "scalars": {
            "money 1234.50 yuan as i64 fen": hex::encode(codec::encode(&yuan("1234.50"))),
            "date 2026-02-05 as u32 yyyymmdd": hex::encode(codec::encode(&d("2026-02-05"))),
            "period 2026-01 as u32 yyyymm": hex::encode(codec::encode(&per("2026-01"))),
            "text \"P1\" as u64 length + UTF-8": hex::encode(codec::encode(&pid("P1"))),
            "Option<u32> None": hex::encode(codec::encode(&None::<u32>)),
            "Option<u32> Some(3000)": hex::encode(codec::encode(&Some(3000u32))),
            "county 620121 as u32": hex::encode(codec::encode(&CountyCode::parse("620121").unwrap())),
        },
        "records": records,
    })
}

#[test]
fn golden_vectors_match_the_canonical_encoding() {
    assert_eq!(FORMAT_VERSION, 3, "new records are written in format 3; formats 1 and 2 are pinned in chain-v1.json and chain-v2.json");
    for (path, now) in [(PATH, build()), (PATH_V2, build_version(2, events_v2())), (PATH_V3, build_version(3, events_v3()))] {
        if std::env::var("ANXIN_WRITE_VECTORS").is_ok() {
            std::fs::write(path, serde_json::to_string_pretty(&now).unwrap() + "\n").unwrap();
        }
        let pinned: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("tests/vectors/chain-v*.json")).unwrap();
        assert_eq!(pinned, now, "{path}: canonical bytes or hashes changed: that is a format break");
    }
}

/// Format 1 records read with the fields of format 2 absent and encode back to their
/// very bytes; a format 2 record read as format 1 is refused; a format 1 record cannot
/// carry a field of format 2.
#[test]
fn each_record_is_read_and_written_in_its_own_format() {
    for r in build()["records"].as_array().unwrap() {
        let bytes = hex::decode(r["canonical_hex"].as_str().unwrap()).unwrap();
        let rec = Record::decode(&bytes).unwrap();
        assert_eq!(rec.version, 1);
        if let Event::ProjectRegistered(reg) = &rec.event {
            assert_eq!((reg.registered_on, &reg.deposit_basis, reg.funding), (None, &DepositBasis::ByPrice, Funding::Unstated));
        }
        assert_eq!(rec.encode(), bytes);
    }
    let mut refused = 0;
    for r in build_version(2, events_v2())["records"].as_array().unwrap() {
        let mut bytes = hex::decode(r["canonical_hex"].as_str().unwrap()).unwrap();
        assert_eq!(Record::decode(&bytes).unwrap().version, 2);
        bytes[..2].copy_from_slice(&1u16.to_be_bytes());
        if ["ProjectRegistered", "PayrollSubmitted", "GuaranteeLetterIssued", "DepositDrawn"].contains(&r["name"].as_str().unwrap()) {
            assert!(Record::decode(&bytes).is_err(), "{}: format 2 bytes do not read as format 1", r["name"]);
            refused += 1;
        } else {
            assert!(Record::decode(&bytes).is_ok(), "{}: an event format 2 did not change reads either way", r["name"]);
        }
    }
    assert_eq!(refused, 4);
    let (_, principal, event) = events_v2().remove(0);
    let v1 = Record { version: 1, seq: 1, prev_hash: [0; 32], recorded_at_ms: 0, principal, request_id: RequestId::parse("r").unwrap(), event };
    assert!(std::panic::catch_unwind(|| v1.encode()).is_err(), "a registration date cannot be written in format 1");
    // Format 3 changes no field: format 2's records read the same relabelled as format 3;
    // the casework events and the statement are refused in the formats before theirs.
    for r in build_version(3, events_v3())["records"].as_array().unwrap() {
        let mut bytes = hex::decode(r["canonical_hex"].as_str().unwrap()).unwrap();
        let rec = Record::decode(&bytes).unwrap();
        assert_eq!(rec.version, 3);
        bytes[..2].copy_from_slice(&2u16.to_be_bytes());
        assert_eq!(Record::decode(&bytes).is_ok(), rec.event.since_format() <= 2, "{} relabelled as format 2", r["name"]);
        bytes[..2].copy_from_slice(&1u16.to_be_bytes());
        if rec.event.since_format() == 2 {
            assert!(Record::decode(&bytes).is_err(), "{} relabelled as format 1", r["name"]);
        }
    }
    let mut unknown = hex::decode(build()["records"][0]["canonical_hex"].as_str().unwrap()).unwrap();
    unknown[..2].copy_from_slice(&4u16.to_be_bytes());
    assert!(Record::decode(&unknown).is_err());
}

#[test]
fn the_pinned_records_verify_as_a_chain_from_their_bytes_alone() {
    for path in [PATH, PATH_V2, PATH_V3] {
        pinned_chain_verifies(path);
    }
}

fn pinned_chain_verifies(path: &str) {
    let pinned: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut v = ChainVerifier::new(pinned["ledger_id"].as_str().unwrap());
    for r in pinned["records"].as_array().unwrap() {
        let bytes = hex::decode(r["canonical_hex"].as_str().unwrap()).unwrap();
        let (rec, hash) = v.check(&bytes).unwrap();
        assert_eq!(hex::encode(hash), r["hash"].as_str().unwrap());
        assert_eq!(rec.event.name(), r["name"].as_str().unwrap());
        // Decoding then encoding gives the same bytes: one value, one encoding.
        assert_eq!(rec.encode(), bytes);
    }
    assert_eq!(hex::encode(v.head()), pinned["head"].as_str().unwrap());
    // Trailing bytes are refused, so no record has two encodings.
    let mut bytes = hex::decode(pinned["records"][0]["canonical_hex"].as_str().unwrap()).unwrap();
    bytes.push(0);
    assert!(Record::decode(&bytes).is_err());
}

const TREE_V1_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/tree-v1.json");
const TREE_V2_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/tree-v2.json");

/// The eight vector records' canonical bytes and hashes.
fn vector_records() -> (Vec<Vec<u8>>, Vec<[u8; 32]>) {
    let pinned: Value = build();
    let recs = pinned["records"].as_array().unwrap();
    let bytes = recs.iter().map(|r| hex::decode(r["canonical_hex"].as_str().unwrap()).unwrap()).collect();
    let hashes = recs.iter().map(|r| hex::decode(r["hash"].as_str().unwrap()).unwrap().try_into().unwrap()).collect();
    (bytes, hashes)
}

/// Format 1 (read only since format 2): the BLAKE3 tree over record hashes and the binary
/// checkpoint. Still pinned: version-1 archives and states are read with it.
fn build_tree_v1() -> Value {
    use anxin::chain::checkpoint::key_to_text;
    use anxin::chain::checkpoint_v1::{Checkpoint, CHECKPOINT_VERSION_1};
    use anxin::chain::merkle::{Frontier, TreeHash};
    let (bytes, hashes) = vector_records();
    let k = TreeHash::Blake3V1;
    let leaves: Vec<[u8; 32]> = bytes.iter().zip(&hashes).map(|(b, h)| k.leaf(b, h)).collect();
    let root_of = |n: usize| {
        let mut f = Frontier::default();
        for l in &leaves[..n] {
            f.push_as(k, *l);
        }
        f.root_as(k)
    };
    let hexes = |v: &[[u8; 32]]| v.iter().map(hex::encode).collect::<Vec<_>>();
    let roots: Vec<Value> = (0..=leaves.len()).map(|n| json!({"size": n, "root": hex::encode(root_of(n))})).collect();
    let key = ed25519_dalek::SigningKey::from_bytes(&[1u8; 32]);
    let n = leaves.len();
    let cp = Checkpoint { version: CHECKPOINT_VERSION_1, ledger_id: LEDGER_ID.into(), tree_size: n as u64, root: root_of(n), chain_head: hashes[n - 1], timestamp_ms: 1_767_225_600_000 };
    let signed = cp.clone().sign(&key);
    json!({
        "leaf_hashes": hexes(&leaves),
        "roots": roots,
        "empty_root": hex::encode(k.empty()),
        "checkpoint": {
            "signing_seed_hex": hex::encode([1u8; 32]),
            "public_key": key_to_text(&key.verifying_key()),
            "canonical_hex": hex::encode(cp.encode()),
            "signed_message_hex": hex::encode(cp.signed_message()),
            "signature_hex": hex::encode(signed.signature),
            "signed_checkpoint_hex": hex::encode(codec::encode(&signed)),
        },
    })
}

/// Format 2: RFC 6962 with SHA-256 over the records' canonical bytes, proofs, and the
/// checkpoint as a signed note.
fn build_tree_v2() -> Value {
    use anxin::chain::checkpoint::{key_to_text, log_key_id, vkey, Checkpoint};
    use anxin::chain::merkle::{self, leaf_hash, MemNodes};
    let (bytes, hashes) = vector_records();
    let leaves: Vec<[u8; 32]> = bytes.iter().map(|b| leaf_hash(b)).collect();
    let nodes = MemNodes(leaves.clone());
    let hexes = |v: &[[u8; 32]]| v.iter().map(hex::encode).collect::<Vec<_>>();
    let roots: Vec<Value> = (0..=leaves.len() as u64).map(|n| json!({"size": n, "root": hex::encode(merkle::root(&nodes, n).unwrap())})).collect();
    let key = ed25519_dalek::SigningKey::from_bytes(&[1u8; 32]);
    let n = leaves.len() as u64;
    let cp = Checkpoint { ledger_id: LEDGER_ID.into(), tree_size: n, root: merkle::root(&nodes, n).unwrap(), chain_head: hashes[hashes.len() - 1], timestamp_ms: 1_767_225_600_000 };
    let signed = cp.clone().sign(&key);
    let witness = anxin::chain::cosignature::Cosigner::new("witness.example/w1", ed25519_dalek::SigningKey::from_bytes(&[2u8; 32])).unwrap();
    let cosig = witness.cosign(&cp.body(), 1_767_225_600);
    let mut cosigned = signed.clone();
    cosigned.signatures.push(cosig.clone());
    let receipt = anxin::receipt::Receipt { records: bytes[2..5].to_vec(), index: 4, proof: merkle::inclusion_proof(&nodes, 4, n).unwrap(), checkpoint: cosigned.clone() };
    receipt.verify(&key.verifying_key(), None).expect("the vector receipt verifies");
    json!({
        "leaf_hashes": hexes(&leaves),
        "roots": roots,
        "empty_root": hex::encode(merkle::empty_root()),
        "inclusion": {"leaf_index": 2, "tree_size": 7, "path": hexes(&merkle::inclusion_proof(&nodes, 2, 7).unwrap())},
        "consistency": {"from_size": 3, "to_size": 7, "path": hexes(&merkle::consistency_proof(&nodes, 3, 7).unwrap())},
        "checkpoint": {
            "signing_seed_hex": hex::encode([1u8; 32]),
            "public_key": key_to_text(&key.verifying_key()),
            "vkey": vkey(LEDGER_ID, &key.verifying_key()),
            "key_id_hex": format!("{:08x}", log_key_id(LEDGER_ID, &key.verifying_key())),
            "note_text": cp.body(),
            "signature_hex": hex::encode(signed.log_signature(&key.verifying_key()).unwrap()),
            "signed_note": signed.to_note(),
        },
        "cosignature": {
            "witness_seed_hex": hex::encode([2u8; 32]),
            "witness_vkey": witness.public().vkey(),
            "timestamp": 1_767_225_600u64,
            "signed_message": String::from_utf8(anxin::chain::cosignature::signed_message(&cp.body(), 1_767_225_600)).unwrap(),
            "line": cosig.line(),
            "cosigned_note": cosigned.to_note(),
        },
        "receipt": {
            "records": "3 to 5",
            "text": receipt.encode(),
        },
    })
}

#[test]
fn golden_tree_and_checkpoint_vectors_match() {
    let now = build_tree_v2();
    if std::env::var("ANXIN_WRITE_VECTORS").is_ok() {
        std::fs::write(TREE_V2_PATH, serde_json::to_string_pretty(&now).unwrap() + "\n").unwrap();
    }
    let pinned: Value = serde_json::from_str(&std::fs::read_to_string(TREE_V2_PATH).expect("tests/vectors/tree-v2.json")).unwrap();
    assert_eq!(pinned, now, "tree, proof or checkpoint bytes changed: that is a format break");
    // Format 1 is frozen history (never rewritten): what this build still computes of it
    // (to read version-1 archives and upgrade format-1 states) must match it exactly.
    let v1: Value = serde_json::from_str(&std::fs::read_to_string(TREE_V1_PATH).expect("tests/vectors/tree-v1.json")).unwrap();
    let now = build_tree_v1();
    for (k, v) in now.as_object().unwrap() {
        assert_eq!(&v1[k], v, "tree-v1.json {k}: format 1 is read as it was written");
    }
}

/// The canonical bytes of a sample record (the payroll, the largest of the vectors), for
/// the hostile-input tests.
pub fn sample_record_bytes() -> Vec<u8> {
    let (_, principal, event) = events().into_iter().nth(4).expect("the payroll");
    Record { version: FORMAT_VERSION, seq: 5, prev_hash: [7; 32], recorded_at_ms: 1_767_225_600_000, principal, request_id: RequestId::parse("req-5").unwrap(), event }.encode()
}
