//! Named fault-injection points, for tests of what a crash or a bug at that very place
//! leaves behind. Off unless armed, and then only at the named place:
//!
//! - in a process, by the environment: `ANXIN_FAILPOINTS="name=action[@n],..."`, read
//!   once (e.g. `checkpoint.write=kill@3` kills the process at the third checkpoint
//!   write);
//! - in a test, by `arm(name, scope, action)`, for one ledger only (the scope is its
//!   ledger id), so tests running side by side in one process do not trip each other.
//!
//! Actions: `kill` (SIGKILL to this process: a crash, nothing runs after it), `panic`
//! (a bug), `error` (an I/O error returned to the caller). `@n` fires at the n-th pass
//! only (counted per name and scope); without it, at every pass.
//!
//! The points (each named where it is):
//! `atomic.write` (a small file written, before its rename: checkpoints, keys, vault
//! files, principals), `checkpoint.write` (a checkpoint file, likewise), `writer.group`
//! (the writer thread, deciding a group).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Kill,
    Panic,
    Error,
}

#[derive(Clone, Debug)]
struct Armed {
    action: Action,
    /// Fire only at this pass (1-based), if set.
    at: Option<u64>,
    passes: u64,
}

type Points = HashMap<(String, Option<String>), Armed>;

/// Whether any point was ever armed: unarmed, a pass is one atomic load (the writer
/// passes a point every group commit).
static ARMED: AtomicBool = AtomicBool::new(false);

fn points() -> &'static Mutex<Points> {
    static POINTS: OnceLock<Mutex<Points>> = OnceLock::new();
    POINTS.get_or_init(|| {
        let p = from_env(std::env::var("ANXIN_FAILPOINTS").ok().as_deref());
        if !p.is_empty() {
            ARMED.store(true, Ordering::SeqCst);
        }
        Mutex::new(p)
    })
}

fn from_env(spec: Option<&str>) -> Points {
    let mut out = Points::new();
    for item in spec.unwrap_or("").split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some((name, rest)) = item.split_once('=') else {
            eprintln!("ANXIN_FAILPOINTS: {item:?} is not name=action[@n]; ignored");
            continue;
        };
        let (action, at) = match rest.split_once('@') {
            Some((a, n)) => (a, n.parse().ok()),
            None => (rest, None),
        };
        let action = match action {
            "kill" => Action::Kill,
            "panic" => Action::Panic,
            "error" => Action::Error,
            other => {
                eprintln!("ANXIN_FAILPOINTS: unknown action {other:?}; ignored");
                continue;
            }
        };
        out.insert((name.to_owned(), None), Armed { action, at, passes: 0 });
    }
    out
}

/// Arms `name` for one scope (a ledger id), from a test.
pub fn arm(name: &str, scope: &str, action: Action, at: Option<u64>) {
    ARMED.store(true, Ordering::SeqCst);
    points().lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert((name.to_owned(), Some(scope.to_owned())), Armed { action, at, passes: 0 });
}

/// Disarms `name` for `scope`.
pub fn disarm(name: &str, scope: &str) {
    points().lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&(name.to_owned(), Some(scope.to_owned())));
}

/// Passes the point `name` in `scope`: does what it is armed to do, if it is.
///
/// # Errors
/// An I/O error when armed with `error`.
///
/// # Panics
/// When armed with `panic` (that is the point).
pub fn pass(name: &str, scope: &str) -> std::io::Result<()> {
    act(name, fires(name, scope))
}

/// Counts a pass of `name` in `scope` and says what it is armed to do now, without
/// doing it: for a point passed where no lock may be taken (a forked child), whose
/// action is decided before (`act` then does it).
pub fn fires(name: &str, scope: &str) -> Option<Action> {
    // The environment is read at the first pass; after that, unarmed costs one load.
    let _ = points();
    if !ARMED.load(Ordering::SeqCst) {
        return None;
    }
    let mut map = points().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut fire = None;
    for key in [(name.to_owned(), Some(scope.to_owned())), (name.to_owned(), None)] {
        if let Some(a) = map.get_mut(&key) {
            a.passes += 1;
            if a.at.is_none_or(|n| n == a.passes) {
                fire = Some(a.action);
            }
        }
    }
    fire
}

/// Does what `fires` said (nothing for `None`).
///
/// # Errors
/// An I/O error for `Action::Error`.
///
/// # Panics
/// For `Action::Panic`.
pub fn act(name: &str, fire: Option<Action>) -> std::io::Result<()> {
    match fire {
        None => Ok(()),
        Some(Action::Error) => Err(std::io::Error::other(format!("injected fault at {name}"))),
        Some(Action::Panic) => panic!("injected panic at {name}"),
        Some(Action::Kill) => {
            // Written straight to fd 2, not through `eprintln!`'s lock: a forked child
            // (the snapshot's) may do this too.
            let msg = format!("injected crash at {name}\n");
            // SAFETY: writes `msg`'s bytes, which live across the call, to stderr.
            unsafe {
                libc::write(2, msg.as_ptr().cast(), msg.len());
            }
            // SAFETY: kill(2) with our own pid; SIGKILL cannot be caught, so nothing of
            // this process runs after it, as in a power cut.
            unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
            unreachable!("SIGKILL ends the process")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_form_parses_and_bad_items_are_ignored() {
        let p = from_env(Some("a=kill@3, b=panic,c=oops,d"));
        assert_eq!(p.len(), 2);
        let a = &p[&("a".to_owned(), None)];
        assert_eq!((a.action, a.at), (Action::Kill, Some(3)));
        assert_eq!(p[&("b".to_owned(), None)].action, Action::Panic);
    }

    #[test]
    fn an_armed_point_fires_at_its_pass_and_only_in_its_scope() {
        arm("t.point", "scope-a", Action::Error, Some(2));
        assert!(pass("t.point", "scope-b").is_ok(), "another scope is not armed");
        assert!(pass("t.point", "scope-a").is_ok(), "first pass");
        assert!(pass("t.point", "scope-a").is_err(), "second pass fires");
        assert!(pass("t.point", "scope-a").is_ok(), "only the second");
        disarm("t.point", "scope-a");
    }
}
