//! Anxin (安薪): a tamper-evident escrow ledger for migrant construction workers' wages.
//!
//! Modules in reading order: the limits, the pure domain, the rules (`decide`), the
//! projections (`apply`, flags, views), the chain (canonical bytes, hashes), the store
//! (log file and sled index), the PII vault, and the ledger that ties them together with
//! one writer. See `ARCHITECTURE.md` for the map and `docs/FORMAT.md` for every byte.

pub mod limits;
pub mod domain;
pub mod decide;
pub mod projection;
pub mod chain;
pub mod store;
pub mod failpoint;
pub mod fsutil;
pub mod vault;
pub mod ledger;
pub mod replica;
pub mod demo;
pub mod api;
pub mod audit;
pub mod backup;
pub mod receipt;
pub mod metrics;
pub mod tiles_client;
pub mod server;
pub mod config_check;
pub mod dashboard;
pub mod witness;
