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

/// Sends raw bytes as the request message of a unary call.
#[derive(Default)]
struct RawCodec;

struct RawEncoder;

impl tonic::codec::Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(&mut self, item: Vec<u8>, buf: &mut tonic::codec::EncodeBuf<'_>) -> Result<(), tonic::Status> {
        prost::bytes::BufMut::put_slice(buf, &item);
        Ok(())
    }
}

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = pb::SubmitResponse;
    type Encoder = RawEncoder;
    type Decoder = <tonic_prost::ProstCodec<pb::SubmitRequest, pb::SubmitResponse> as tonic::codec::Codec>::Decoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        tonic::codec::Codec::decoder(&mut tonic_prost::ProstCodec::<pb::SubmitRequest, pb::SubmitResponse>::default())
    }
}

/// Malformed protobuf over the wire: truncated fields, a string that is not UTF-8, a
/// known field with the wrong wire type, a length past the end, unknown groups nested
/// 200 deep (past prost's recursion limit of 100). Each is INVALID_ARGUMENT with reason
/// MALFORMED_MESSAGE, never INTERNAL, and the log does not move.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_protobuf_is_invalid_argument_and_leaves_no_trace() {
    let s = crate::harness::TestServer::start().await;
    s.setup_project(1).await;
    let head = s.ledger.head();
    let mut deep = Vec::new();
    for _ in 0..200 {
        deep.extend_from_slice(&[0x9b, 0x06]); // field 99, start group
    }
    for _ in 0..200 {
        deep.extend_from_slice(&[0x9c, 0x06]); // field 99, end group
    }
    let mut valid_then_bad_utf8 = pb::SubmitRequest { request_id: "ok".into(), commands: vec![crate::harness::topup("P1", "T-X", "1")] }.encode_to_vec();
    valid_then_bad_utf8.extend_from_slice(&[0x0a, 0x02, 0xff, 0xfe]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated length", vec![0x0a, 0xff]),
        ("request_id not UTF-8", vec![0x0a, 0x02, 0xff, 0xfe]),
        ("a later request_id not UTF-8", valid_then_bad_utf8),
        ("wrong wire type", vec![0x08, 0x01]),
        ("length past the end", vec![0x0a, 0xff, 0xff, 0xff, 0x0f, 0x41]),
        ("nested 200 deep", deep),
        ("a command that is not a message", vec![0x12, 0x03, 0xff, 0xff, 0xff]),
    ];
    let token = s.token("operator");
    for (what, bytes) in &cases {
        let mut grpc = tonic::client::Grpc::new(s.channel().await);
        grpc.ready().await.unwrap();
        let mut req = tonic::Request::new(bytes.clone());
        req.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
        let path = tonic::codegen::http::uri::PathAndQuery::from_static("/anxin.v1.LedgerPosting/Submit");
        let err = grpc.unary(req, path, RawCodec).await.expect_err(what);
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{what}: {err:?}");
        assert_eq!(anxin::api::error::reason_of(&err).0.as_deref(), Some("MALFORMED_MESSAGE"), "{what}");
    }
    assert_eq!(s.ledger.head(), head, "no malformed request left a trace");
    s.stop().await;
}
