//! Personal data never leaves the edge in clear: not into the data directory, not into
//! the server's own log (at its most verbose), not into an error message. A real
//! `anxind` is driven with known national IDs and card numbers, including ones it must
//! refuse, and everything it wrote is searched for them.

use std::path::Path;

use anxin::api::pb;
use anxin::api::pb::command::Kind;

use crate::harness::{card, cmd, enrol, nid, open_account, pay, register, topup, Auth, COUNTY};
use crate::process::start_logging;

fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_clear_id_or_card_number_in_the_data_directory_the_server_log_or_errors() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("anxind.log");
    let mut server = start_logging(&data, &[], "debug,anxin=trace,anxind=trace", Some(&log)).await;
    let mut p = server.posting().await;
    let ch = tonic::transport::Channel::from_shared(server.addr.clone()).unwrap().connect().await.unwrap();
    let mut q = pb::ledger_query_client::LedgerQueryClient::with_interceptor(ch, Auth(Some(server.token.clone())));

    let mut setup = vec![register("P1", COUNTY), open_account("P1", "ICBC"), topup("P1", "T1", "100000")];
    setup.extend((1..=3).map(|n| enrol("P1", n)));
    p.submit(pb::SubmitRequest { request_id: "setup".into(), commands: setup }).await.unwrap();
    p.submit(pb::SubmitRequest { request_id: "pay".into(), commands: vec![pay("P1", "W1", 1, "3000", "")] }).await.unwrap();

    // The secrets: every ID and card used, and refused variants of them.
    let bad_check = {
        let id = nid(7);
        let last = if id.ends_with('1') { '2' } else { '1' };
        format!("{}{last}", &id[..17])
    };
    let bad_luhn = {
        let c = card(8);
        let last = c.as_bytes()[c.len() - 1];
        format!("{}{}", &c[..c.len() - 1], if last == b'9' { '0' } else { (last + 1) as char })
    };
    let mut secrets: Vec<String> = (1..=9).flat_map(|n| [nid(n), card(n)]).collect();
    let phone = "13912345678".to_owned();
    secrets.extend([bad_check.clone(), bad_luhn.clone(), phone.clone()]);

    let mut errors = Vec::new();
    let refused: Vec<(&str, pb::Command)> = vec![
        ("an ID with a wrong check digit", cmd(Kind::EnrolWorker(pb::EnrolWorker { project: "P1".into(), national_id: bad_check.clone(), employer: crate::harness::employer().to_string(), bank_card: card(7), date: "2026-01-16".into() }))),
        ("a card failing Luhn", cmd(Kind::EnrolWorker(pb::EnrolWorker { project: "P1".into(), national_id: nid(8), employer: crate::harness::employer().to_string(), bank_card: bad_luhn.clone(), date: "2026-01-16".into() }))),
        ("a worker enrolled twice", enrol("P1", 2)),
        ("a payout to a worker never enrolled", pay("P1", "W9", 9, "10", "")),
        ("a payout to another worker's card", cmd(Kind::PayWage(pb::PayWage { project: "P1".into(), payment_no: "W3".into(), national_id: nid(3), bank_card: card(1), amount: "10".into(), date: "2026-02-10".into(), period: String::new() }))),
        ("a contract of an unknown worker", cmd(Kind::RecordContract(pb::RecordContract { project: "P1".into(), national_id: nid(6), contract_no: "HT-6".into(), date: "2026-01-16".into() }))),
    ];
    for (what, c) in refused {
        let e = p.submit(pb::SubmitRequest { request_id: format!("bad-{what}"), commands: vec![c] }).await.expect_err(what);
        errors.push(format!("{what}: {e:?}"));
    }
    // Free text carrying a personal number: refused whole, naming the field and the kind
    // of number, never the text (FORMAT.md section 3, "Personal data").
    let free_text: Vec<(String, pb::Command, &str)> = vec![
        (format!("req-{}", nid(9)), topup("P1", "T9", "1"), "request_id"),
        (format!("call-{phone}"), topup("P1", "T10", "1"), "request_id"),
        ("card-in-payment-no".into(), topup("P1", &card(9), "1"), "payment_no"),
        ("id-in-payment-no".into(), pay("P1", &format!("W-{}", nid(8)), 1, "1", ""), "payment_no"),
    ];
    for (request_id, c, field) in free_text {
        let e = p.submit(pb::SubmitRequest { request_id, commands: vec![c] }).await.expect_err(field);
        let text = format!("{e:?}");
        assert!(text.contains("PERSONAL_NUMBER_IN_TEXT") && text.contains(field), "{text}");
        errors.push(text);
    }
    // A bank's own reference (a date and a counter) is not a personal number.
    p.submit(pb::SubmitRequest { request_id: "ref-2026013100000012".into(), commands: vec![topup("P1", "2026013100000012", "1")] }).await.unwrap();
    for n in [1, 5] {
        let r = q.get_worker(pb::GetWorkerRequest { at_seq: 0, who: Some(pb::get_worker_request::Who::NationalId(nid(n))), as_of: String::new() }).await;
        errors.push(format!("{r:?}"));
    }
    let r = q.get_worker(pb::GetWorkerRequest { at_seq: 0, who: Some(pb::get_worker_request::Who::NationalId(bad_check.clone())), as_of: String::new() }).await;
    errors.push(format!("{r:?}"));
    let r = q.get_balance(pb::GetBalanceRequest { as_of: String::new(), at_seq: 0, account: format!("card:{}", card(1)) }).await;
    errors.push(format!("{r:?}"));

    server.signal("-TERM");
    assert!(tokio::task::spawn_blocking(move || server.child.wait().unwrap()).await.unwrap().success());

    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(log_text.contains("serving") && log_text.len() > 1_000, "the log was written at a verbose level: {} bytes", log_text.len());
    let mut files = Vec::new();
    files_under(&data, &mut files);
    assert!(files.len() > 5);
    let mut searched = 0usize;
    for s in &secrets {
        // The whole number, and the ID without its check character.
        let needles = [s.clone(), s[..s.len() - 1].to_owned()];
        for needle in &needles {
            assert!(!log_text.contains(needle.as_str()), "{needle} is in the server log");
            for e in &errors {
                assert!(!e.contains(needle.as_str()), "{needle} is in an error or answer: {e}");
            }
            for f in &files {
                let bytes = std::fs::read(f).unwrap();
                assert!(!bytes.windows(needle.len()).any(|w| w == needle.as_bytes()), "{needle} is in {}", f.display());
                searched += bytes.len();
            }
        }
    }
    assert!(searched > 10_000);
    // The refusals still said what was wrong.
    assert!(errors[0].contains("INVALID") && errors[1].contains("INVALID"), "{errors:?}");
}
