//! Canonical record decoding: any bytes are refused with an error or decode to a record
//! that encodes back to exactly those bytes (one encoding per record, docs/FORMAT.md 1).
#![no_main]

use anxin::chain::record::Record;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = Record::decode(data) {
        assert_eq!(r.encode(), data, "a record decoded from non-canonical bytes");
    }
});
