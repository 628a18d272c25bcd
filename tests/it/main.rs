//! The integration tests, as one binary (one link on 2 cores).

mod api;
mod archive_vectors;
mod architecture;
mod audit;
mod authority;
mod common;
mod crashloop;
mod dashboard;
mod faults;
mod harness;
mod flags;
mod hostile;
mod integrity;
mod masking;
mod numbers;
mod process;
mod privacy;
mod replication;
mod replication_process;
mod pg;
mod props;
mod rules;
mod scenario;
mod store;
mod vectors;
mod writer_fault;
