//! Which record format the domain's types are encoded in.
//!
//! Format 1 is the first ledger's; format 2 (issue 16) adds fields to four commands
//! (registration, payroll, guarantee letter, drawdown: `command::versioned!`) and the
//! bank statement; format 3 (issue 17) adds the county's casework events and changes
//! nothing else. A record carries its format (`Record::version`), and its bytes are
//! read and written in that format: `chain::record` sets the format around each
//! record's encoding and decoding (`with`), so a record of format 1 decodes with the new
//! fields absent and encodes back to exactly its bytes. Everything else (a request's
//! digest, snapshots) is in the current format.

use std::cell::Cell;

/// The format new records are written in.
pub const CURRENT: u16 = 3;

/// The oldest format this build reads.
pub const OLDEST: u16 = 1;

thread_local! {
    static FORMAT: Cell<u16> = const { Cell::new(CURRENT) };
}

/// The format values are being encoded or decoded in on this thread.
pub fn current() -> u16 {
    FORMAT.with(Cell::get)
}

/// Runs `f` with values encoded and decoded in `format`.
pub fn with<R>(format: u16, f: impl FnOnce() -> R) -> R {
    struct Restore(u16);
    impl Drop for Restore {
        fn drop(&mut self) {
            FORMAT.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(FORMAT.with(|c| c.replace(format)));
    f()
}
