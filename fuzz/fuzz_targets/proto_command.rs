//! The wire edge: bytes as a SubmitRequest, every command converted to a domain command
//! (validation, PII committed by the vault). Errors are typed; nothing panics; an
//! accepted amount is positive with at most 2 decimals.
#![no_main]

use std::sync::OnceLock;

use anxin::api::{convert, pb};
use anxin::vault::Vault;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fn vault() -> &'static Vault {
    static V: OnceLock<(tempfile::TempDir, Vault)> = OnceLock::new();
    &V.get_or_init(|| {
        let d = tempfile::tempdir().expect("a temporary directory");
        let v = Vault::open(d.path()).expect("a vault");
        (d, v)
    })
    .1
}

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = pb::SubmitRequest::decode(data) {
        for c in &req.commands {
            if let Err(e) = convert::command(c, vault()) {
                assert!(!e.reason.is_empty(), "an error without a reason code");
            }
        }
    }
});
