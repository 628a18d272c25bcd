//! Projections: `(state, event) -> state`, and the read models and flags computed from it.
//!
//! **Invariant**: nothing in here rejects or reads the clock; `apply` only updates.

pub mod casework;
pub mod fingerprints;
pub mod flags;
pub mod history;
pub mod intervals;
pub mod reconcile;
pub mod report;
pub mod state;
pub mod table;
pub mod views;
pub mod when;
