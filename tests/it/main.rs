//! The integration tests, as one binary (one link on 2 cores).

mod api;
mod audit;
mod common;
mod crashloop;
mod dashboard;
mod faults;
mod harness;
mod flags;
mod hostile;
mod process;
mod privacy;
mod props;
mod rules;
mod scenario;
mod store;
mod vectors;
