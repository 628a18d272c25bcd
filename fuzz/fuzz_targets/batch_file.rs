//! The CSV and JSONL batch-file reader behind `anxin post --file`: any text is rows or a
//! typed error naming the line, never a panic.
#![no_main]

use anxin::api::batchfile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(rows) = batchfile::parse_csv(text) {
        let _ = batchfile::commands(&rows, 1);
    }
    if let Ok(rows) = batchfile::parse_jsonl(text) {
        let _ = batchfile::commands(&rows, 1);
    }
});
