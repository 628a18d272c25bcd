//! No error carries a personal number in clear, whatever field it was sent in. Every RPC
//! of the proto (read from its descriptor, so a new RPC or field is covered without
//! being listed here) is called with a national ID, a bank card number or a phone number
//! in each of its string fields in turn, every other field holding a plausible value so
//! that the call gets as deep into the rules as it can; every refusal (a status, or a
//! refusal inside a stream) must not contain the number.

use std::collections::HashMap;

use prost::Message;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FileDescriptorSet};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::Status;

use anxin::api::pb;

use crate::harness::{card, nid, TestServer};

/// Sends and receives raw protobuf bytes.
#[derive(Clone, Copy, Default)]
struct Raw;

struct RawEncoder;
struct RawDecoder;

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let n = bytes::Buf::remaining(src);
        let mut v = vec![0u8; n];
        bytes::Buf::copy_to_slice(src, &mut v);
        Ok(Some(v))
    }
}

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn field(number: i32, wire: u64, out: &mut Vec<u8>) {
    varint(((number as u64) << 3) | wire, out);
}

fn bytes_field(number: i32, b: &[u8], out: &mut Vec<u8>) {
    field(number, 2, out);
    varint(b.len() as u64, out);
    out.extend_from_slice(b);
}

/// A plausible value for a string field, by its name: the call should fail, if at all,
/// on the field under test. A field missing here fails the test: add it.
fn plausible(name: &str, n: usize) -> String {
    match name {
        "project" => "P1".into(),
        "request_id" => format!("mask-{n}"),
        "county" => "620121".into(),
        "name" => "兰州新区安置房".into(),
        "general_contractor" | "owner" | "employer" => crate::harness::gc().to_string(),
        "contract_price" | "amount" | "total" | "wage_share" | "amount_due" | "closing_balance" => "100".into(),
        "contract_date" | "permit_date" | "start_date" | "date" | "valid_from" | "as_of" => "2026-02-10".into(),
        "planned_end" | "valid_to" | "due_date" => "2026-12-31".into(),
        "period" => "2026-01".into(),
        "national_id" => nid(1),
        "bank_card" => card(1),
        "bank" => "ICBC".into(),
        "account_no" | "payment_no" | "letter_no" | "order_no" | "contract_no" => format!("N-{n}"),
        "account" => "wage:P1".into(),
        "page_token" | "deposit_exemption_basis" => String::new(),
        "registered_on" | "submitted_on" | "issued_on" | "order_date" => "2026-02-10".into(),
        "beneficiary" | "reason" => "榆中县人力资源和社会保障局".into(),
        "payroll_no" => format!("GZ-{n}"),
        "bank_ref" => format!("ST-{n}"),
        "applicant" => crate::harness::gc().to_string(),
        "masked_id" => "6201**********123X".into(),
        "received_on" => "2026-02-10".into(),
        "case_no" => format!("TS-{n}"),
        "amount_claimed" | "recovered" => "100".into(),
        "summary" | "note" => "一月工资未发".into(),
        "national_ids" => nid(1),
        "deadline" | "listed_on" => "2026-03-10".into(),
        "largest" => "50".into(),
        "demand" | "findings" | "mass_incident" => "限期支付拖欠工资".into(),
        "police_ref" => format!("GA-{n}"),
        "reference" => format!("LA-{n}"),
        "unmet_order_no" => format!("LZ-{n}"),
        "from" => "2026-01-01".into(),
        "to" => "2026-03-31".into(),
        other => panic!("no plausible value for string field {other:?}: add one to masking.rs"),
    }
}

/// An RPC: path, input type, output type, client streaming, server streaming.
type Method = (String, String, String, bool, bool);

struct Protos {
    messages: HashMap<String, DescriptorProto>,
}

impl Protos {
    fn load() -> (Protos, Vec<Method>) {
        let set = FileDescriptorSet::decode(pb::FILE_DESCRIPTOR_SET).unwrap();
        let mut messages = HashMap::new();
        let mut methods = Vec::new();
        for file in &set.file {
            let pkg = file.package();
            for m in &file.message_type {
                messages.insert(format!(".{pkg}.{}", m.name()), m.clone());
                for nested in &m.nested_type {
                    messages.insert(format!(".{pkg}.{}.{}", m.name(), nested.name()), nested.clone());
                }
            }
            for s in &file.service {
                for m in &s.method {
                    methods.push((format!("/{pkg}.{}/{}", s.name(), m.name()), m.input_type().to_owned(), m.output_type().to_owned(), m.client_streaming(), m.server_streaming()));
                }
            }
        }
        (Protos { messages }, methods)
    }

    /// Every path (field numbers) from `msg` to one of its string fields.
    fn string_paths(&self, msg: &str, depth: usize) -> Vec<Vec<i32>> {
        let d = &self.messages[msg];
        let mut out = Vec::new();
        for f in &d.field {
            match f.r#type() {
                Type::String => out.push(vec![f.number()]),
                Type::Message if depth < 5 && self.messages.contains_key(f.type_name()) => {
                    for p in self.string_paths(f.type_name(), depth + 1) {
                        out.push([vec![f.number()], p].concat());
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// `msg` with `value` in the string field at `path` and plausible values elsewhere.
    fn encode(&self, msg: &str, path: &[i32], value: &str, n: usize) -> Vec<u8> {
        let d = &self.messages[msg];
        // One member per oneof: the one on the path, or the first.
        let mut chosen: HashMap<i32, i32> = HashMap::new();
        for f in &d.field {
            if let Some(o) = f.oneof_index {
                if !f.proto3_optional() {
                    let on_path = path.first() == Some(&f.number());
                    if on_path || !chosen.contains_key(&o) {
                        chosen.insert(o, f.number());
                    }
                }
            }
        }
        let mut out = Vec::new();
        for f in &d.field {
            if let Some(o) = f.oneof_index {
                if !f.proto3_optional() && chosen.get(&o) != Some(&f.number()) {
                    continue;
                }
            }
            let on_path = path.first() == Some(&f.number());
            match f.r#type() {
                Type::String => {
                    let v = if on_path && path.len() == 1 { value.to_owned() } else { plausible(f.name(), n) };
                    if !v.is_empty() {
                        bytes_field(f.number(), v.as_bytes(), &mut out);
                    }
                }
                Type::Message if self.messages.contains_key(f.type_name()) => {
                    let rest: &[i32] = if on_path { &path[1..] } else { &[] };
                    let sub = self.encode(f.type_name(), rest, value, n);
                    bytes_field(f.number(), &sub, &mut out);
                }
                Type::Enum => {
                    // The first value past UNSPECIFIED (an active status, say).
                    field(f.number(), 0, &mut out);
                    varint(if f.label() == Label::Repeated { 0 } else { 2 }, &mut out);
                }
                _ => {}
            }
        }
        out
    }
}

fn with_auth<T>(mut r: tonic::Request<T>, token: &str) -> tonic::Request<T> {
    r.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_refusal_of_any_rpc_echoes_a_personal_number_sent_in_any_string_field() {
    let s = TestServer::start().await;
    s.setup_project(2).await;
    let (protos, methods) = Protos::load();
    // A card written in groups of four with hyphens, a phone 3-4-4 with hyphens.
    let grouped_card = card(8).as_bytes().chunks(4).map(|c| std::str::from_utf8(c).unwrap()).collect::<Vec<_>>().join("-");
    let secrets = [nid(7), card(7), "13812345678".to_owned(), grouped_card, "138-1234-5678".to_owned()];
    let token = s.token("operator");
    let ch = s.channel().await;
    let mut calls = 0;
    let mut refusals = 0;
    let mut leaks = Vec::new();
    for (path, input, _output, client_streaming, server_streaming) in &methods {
        let fields = protos.string_paths(input, 0);
        for fp in &fields {
            for secret in &secrets {
                calls += 1;
                let body = protos.encode(input, fp, secret, calls);
                let mut grpc = tonic::client::Grpc::new(ch.clone());
                grpc.ready().await.unwrap();
                let pq = PathAndQuery::try_from(path.clone()).unwrap();
                let auth = |r| with_auth(r, &token);
                let auth_stream = |r| with_auth(r, &token);
                // Every message that came back that could carry text: refusals.
                let mut said: Vec<String> = Vec::new();
                let result: Result<Vec<Vec<u8>>, Status> = match (client_streaming, server_streaming) {
                    (false, false) => grpc.unary(auth(tonic::Request::new(body)), pq, Raw).await.map(|r| vec![r.into_inner()]),
                    (false, true) => match grpc.server_streaming(auth(tonic::Request::new(body)), pq, Raw).await {
                        Ok(r) => {
                            let mut st = r.into_inner();
                            let mut got = Vec::new();
                            // The first answers are enough: a refusal comes first.
                            while let Ok(Ok(Some(m))) = tokio::time::timeout(std::time::Duration::from_millis(200), st.message()).await {
                                got.push(m);
                                if got.len() > 3 {
                                    break;
                                }
                            }
                            Ok(got)
                        }
                        Err(e) => Err(e),
                    },
                    (true, _) => {
                        let stream = tokio_stream::iter(vec![body]);
                        match grpc.streaming(auth_stream(tonic::Request::new(stream)), pq, Raw).await {
                            Ok(r) => {
                                let mut st = r.into_inner();
                                let mut got = Vec::new();
                                while let Ok(Some(m)) = st.message().await {
                                    got.push(m);
                                }
                                Ok(got)
                            }
                            Err(e) => Err(e),
                        }
                    }
                };
                match result {
                    Err(st) => {
                        refusals += 1;
                        said.push(st.message().to_owned());
                    }
                    Ok(msgs) if path.ends_with("/SubmitStream") => {
                        for m in msgs {
                            let r = pb::SubmitStreamResponse::decode(m.as_slice()).unwrap();
                            if let Some(pb::submit_stream_response::Outcome::Refusal(f)) = r.outcome {
                                refusals += 1;
                                said.push(f.message);
                            }
                        }
                    }
                    Ok(_) => {}
                }
                for text in said {
                    if text.contains(secret.as_str()) {
                        leaks.push(format!("{path} field path {fp:?}: {text}"));
                    }
                }
            }
        }
    }
    eprintln!("{calls} calls over {} RPCs, {refusals} refusals", methods.len());
    assert!(calls > 300 && refusals > 200, "the sweep reached the rules ({calls} calls, {refusals} refusals)");
    assert!(leaks.is_empty(), "personal numbers echoed in clear:\n{}", leaks.join("\n"));
    s.stop().await;
}
