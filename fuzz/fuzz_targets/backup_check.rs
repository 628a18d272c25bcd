//! `anxin restore`'s reader: any bytes as a backup file are refused with a typed error
//! (or, only for a real backup, accepted), never a panic or an unbounded allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = data;
    let _ = anxin::backup::check(&mut input, None, &mut |_| {});
});
