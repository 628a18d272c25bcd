//! Hostile bytes, as proptests that CI runs (the fuzz targets of issue 7 are to come):
//! no input makes the decoders panic, and whatever they accept is well-formed.

use anxin::api::{batchfile, convert, pb};
use anxin::chain::record::Record;
use prost::Message;
use proptest::prelude::*;

fn vault() -> &'static anxin::vault::Vault {
    static V: std::sync::OnceLock<(tempfile::TempDir, anxin::vault::Vault)> = std::sync::OnceLock::new();
    &V.get_or_init(|| {
        let d = tempfile::tempdir().unwrap();
        let v = anxin::vault::Vault::open(d.path()).unwrap();
        (d, v)
    })
    .1
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Arbitrary bytes as a record: an error or a record that encodes back to the same bytes.
    #[test]
    fn record_decoding_never_panics_and_is_canonical(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(r) = Record::decode(&bytes) {
            prop_assert_eq!(r.encode(), bytes);
        }
    }

    /// A valid record with bytes changed: decoding fails or gives a canonical record.
    #[test]
    fn damaged_records_never_panic(flips in proptest::collection::vec((0usize..400, any::<u8>()), 1..8)) {
        let mut bytes = crate::vectors::sample_record_bytes();
        for (at, b) in flips {
            let n = bytes.len();
            bytes[at % n] ^= b | 1;
        }
        if let Ok(r) = Record::decode(&bytes) {
            prop_assert_eq!(r.encode(), bytes);
        }
    }

    /// Arbitrary bytes as a wire request, then conversion of every command: never a panic.
    #[test]
    fn proto_to_command_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        if let Ok(req) = pb::SubmitRequest::decode(bytes.as_slice()) {
            for c in &req.commands {
                let _ = convert::command(c, vault());
            }
        }
    }

    /// Well-formed messages with hostile field values (any text, any length up to 300,
    /// control characters, digits in odd places): a typed error or a valid command.
    #[test]
    fn hostile_field_values_get_typed_errors(
        project in "(?s).{0,80}",
        no in "(?s).{0,80}",
        amount in "[-+0-9.,eE ]{0,30}|(?s).{0,20}",
        date in "[0-9-]{0,12}|(?s).{0,12}",
        id in "[0-9Xx]{0,20}|(?s).{0,20}",
        card in "[0-9]{0,25}|(?s).{0,25}",
    ) {
        use pb::command::Kind;
        let pay = pb::Command { kind: Some(Kind::PayWage(pb::PayWage {
            project: project.clone(), payment_no: no.clone(), national_id: id.clone(), bank_card: card.clone(),
            amount: amount.clone(), date: date.clone(), period: String::new(),
        })) };
        let top = pb::Command { kind: Some(Kind::TopUpWageAccount(pb::TopUpWageAccount { project, payment_no: no, amount: amount.clone(), date })) };
        for c in [pay, top] {
            match convert::command(&c, vault()) {
                Ok(anxin::domain::command::Command::TopUpWageAccount(t)) => {
                    // Accepted amounts are positive, with at most 2 decimals, in range.
                    prop_assert!(t.amount.fen() > 0 && t.amount.fen() <= anxin::limits::AMOUNT_FEN_MAX);
                }
                Ok(_) => {}
                Err(e) => {
                    let st: tonic::Status = e.into();
                    prop_assert_eq!(st.code(), tonic::Code::InvalidArgument);
                    prop_assert!(st.metadata().get("anxin-reason").is_some());
                    // An error never repeats a national ID or card number in clear.
                    if id.len() >= 15 { prop_assert!(!st.message().contains(&id)); }
                    if card.len() >= 13 { prop_assert!(!st.message().contains(&card)); }
                }
            }
        }
    }

    /// Arbitrary text as a CSV or JSONL batch file: an error naming a row, or rows that
    /// become commands or errors; never a panic.
    #[test]
    fn batch_files_never_panic(text in "(?s).{0,400}", csv_like in "[a-z_,\"0-9.\\- \n]{0,300}") {
        for t in [&text, &csv_like] {
            if let Ok(rows) = batchfile::parse_csv(t) {
                let _ = batchfile::commands(&rows, 1);
            }
            if let Ok(rows) = batchfile::parse_jsonl(t) {
                let _ = batchfile::commands(&rows, 1);
            }
        }
    }
}
