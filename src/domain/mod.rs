//! The domain: money, identifiers, dates and calendar, policy, commands, events,
//! rejections and postings. Pure data and pure functions.
//!
//! **Invariant**: `domain` knows nothing about sled, tonic, tokio, files or the clock.

pub mod casework;
pub mod command;
pub mod date;
pub mod ids;
pub mod layout;
pub mod money;
pub mod numbers;
pub mod policy;
pub mod posting;
pub mod rejection;
pub mod principal;
