//! The gRPC API: `LedgerPosting`, `LedgerQuery`, `LedgerAudit`, `LedgerAdmin`, health and
//! reflection.
//!
//! Wire -> `convert` (validation, PII to commitments) -> `auth` (who may do what) ->
//! `Ledger::enqueue` (the writer) -> receipt or refusal (`error`, the one mapping to
//! gRPC statuses). Queries read the ledger's projections through the view functions, the
//! same ones the CLI prints; nothing here computes a figure of its own.
//!
//! **Invariant**: only `api` touches generated proto types.

pub mod auth;
pub mod batchfile;
pub mod codec;
pub mod convert;
pub mod demo;
pub mod error;
pub mod https;
mod admin;
pub(crate) mod audit;
mod posting;
pub mod query;
pub mod reasons;
pub mod tiles;
pub mod metered;

use std::future::Future;
use std::sync::Arc;

use tonic::transport::{Identity, Server, ServerTlsConfig};

use crate::ledger::Ledger;
use crate::limits::MESSAGE_BYTES_MAX;
use crate::vault::Vault;

use auth::{CallLimits, Caller, Principals};

/// Generated protobuf and gRPC types of package `anxin.v1`.
#[allow(clippy::all, missing_docs)]
pub mod pb {
    tonic::include_proto!("anxin.v1");

    /// The encoded descriptor set, for gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/anxin_descriptor.bin"));
}

/// What every service shares.
#[derive(Clone)]
pub struct Api {
    pub ledger: Arc<Ledger>,
    pub vault: Arc<Vault>,
    pub principals: Arc<Principals>,
    pub calls: Arc<CallLimits>,
}

/// Request metadata: answer only once this node holds at least this record (a decimal
/// sequence number, e.g. a receipt's `last_seq`: read-your-writes on a follower).
pub const MIN_SEQ_KEY: &str = "anxin-min-seq";
/// Response metadata of every `LedgerQuery` answer: the sequence number of the last record
/// the answer reflects (the ledger exactly as it stood after it).
pub const SEQ_KEY: &str = "anxin-seq";

/// `msg`, saying that it reflects the ledger as of record `seq` (`SEQ_KEY`).
pub(crate) fn stamped<T>(seq: u64, msg: T) -> tonic::Response<T> {
    let mut r = tonic::Response::new(msg);
    r.metadata_mut().insert(SEQ_KEY, seq.into());
    r
}

impl Api {
    /// Waits until this node holds the record the request asks for (`MIN_SEQ_KEY`), at
    /// most `limits::MIN_SEQ_WAIT_MS` (or the call's deadline, if sooner). A follower
    /// that lags answers only once it has caught up to it, never with an older state.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` / `INVALID_MIN_SEQ`; `UNAVAILABLE` / `SEQ_NOT_REACHED` with
    /// the sequence number this node holds (`SEQ_KEY`) if it did not arrive in time.
    pub(crate) async fn reach(&self, md: &tonic::metadata::MetadataMap) -> Result<(), error::ApiError> {
        let Some(v) = md.get(MIN_SEQ_KEY) else { return Ok(()) };
        let want: u64 = v.to_str().ok().and_then(|s| s.trim().parse().ok()).ok_or_else(|| error::ApiError::invalid("INVALID_MIN_SEQ", format!("{MIN_SEQ_KEY} is a decimal sequence number")))?;
        let deadline = md.get("grpc-timeout").and_then(|v| v.to_str().ok()).and_then(grpc_timeout);
        self.reach_seq(want, deadline).await
    }

    /// Waits until this node holds record `want`, at most `limits::MIN_SEQ_WAIT_MS` (or
    /// `deadline`, if sooner).
    ///
    /// # Errors
    /// `UNAVAILABLE` / `SEQ_NOT_REACHED` with the sequence number this node holds.
    pub(crate) async fn reach_seq(&self, want: u64, deadline: Option<std::time::Duration>) -> Result<(), error::ApiError> {
        let mut durable = self.ledger.watch_durable();
        if *durable.borrow() >= want {
            return Ok(());
        }
        let bound = std::time::Duration::from_millis(crate::limits::MIN_SEQ_WAIT_MS).min(deadline.unwrap_or(std::time::Duration::MAX));
        if matches!(tokio::time::timeout(bound, durable.wait_for(|s| *s >= want)).await, Ok(Ok(_))) {
            return Ok(());
        }
        let have = *durable.borrow();
        let mut e = error::ApiError::new(
            tonic::Code::Unavailable,
            "SEQ_NOT_REACHED",
            format!("this node holds records up to {have}; record {want} did not arrive within {} ms: retry, or ask the leader", bound.as_millis()),
        );
        e.seq = Some(have);
        Err(e)
    }

    /// The state for a query and the sequence number it reflects (taken together: the
    /// writer moves both under the state's write lock).
    ///
    /// # Errors
    /// As `Ledger::state`.
    pub(crate) fn read(&self) -> Result<(std::sync::RwLockReadGuard<'_, crate::projection::state::State>, u64), error::ApiError> {
        let state = self.ledger.state()?;
        let seq = self.ledger.head().0;
        Ok((state, seq))
    }

    /// Authenticates the call and takes one of its principal's call places (see
    /// `CallLimits`), held while the returned `Caller` lives.
    ///
    /// # Errors
    /// `UNAUTHENTICATED`, or `RESOURCE_EXHAUSTED` / `TOO_MANY_CALLS`.
    pub fn admit<T>(&self, req: &tonic::Request<T>) -> Result<Caller, tonic::Status> {
        let who = self.principals.check(req)?;
        self.calls.admit(who)
    }
}

/// TLS material, PEM encoded.
#[derive(Clone)]
pub struct Tls {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

/// Serves the API on `listener` until `shutdown` resolves, then stops accepting, lets
/// in-flight calls finish, and returns. The caller closes the ledger afterwards.
///
/// # Errors
/// A transport error (bad TLS material, a listener failure).
pub async fn serve(api: Api, listener: tokio::net::TcpListener, tls: Option<Tls>, shutdown: impl Future<Output = ()> + Send) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<pb::ledger_posting_server::LedgerPostingServer<posting::Posting>>().await;
    health_reporter.set_serving::<pb::ledger_query_server::LedgerQueryServer<query::Query>>().await;
    health_reporter.set_serving::<pb::ledger_audit_server::LedgerAuditServer<audit::Audit>>().await;
    health_reporter.set_serving::<pb::ledger_admin_server::LedgerAdminServer<admin::Admin>>().await;
    // A ledger fault (the writer stopped or died) turns every service NOT_SERVING at
    // once, for load balancers and supervisors; calls are answered UNAVAILABLE with the
    // reason until the server exits (`server::run`).
    let mut faults = api.ledger.watch_fault();
    let reporter = health_reporter.clone();
    tokio::spawn(async move {
        if faults.wait_for(Option::is_some).await.is_ok() {
            reporter.set_not_serving::<pb::ledger_posting_server::LedgerPostingServer<posting::Posting>>().await;
            reporter.set_not_serving::<pb::ledger_query_server::LedgerQueryServer<query::Query>>().await;
            reporter.set_not_serving::<pb::ledger_audit_server::LedgerAuditServer<audit::Audit>>().await;
            reporter.set_not_serving::<pb::ledger_admin_server::LedgerAdminServer<admin::Admin>>().await;
            reporter.set_service_status("", tonic_health::ServingStatus::NotServing).await;
        }
    });
    // Damage the scrub found makes the ledger read-only: posting turns NOT_SERVING, the
    // other services go on (a read that meets the damage answers DATA_LOSS itself).
    let mut damage = api.ledger.watch_damage();
    let reporter = health_reporter.clone();
    tokio::spawn(async move {
        if damage.wait_for(Option::is_some).await.is_ok() {
            reporter.set_not_serving::<pb::ledger_posting_server::LedgerPostingServer<posting::Posting>>().await;
        }
    });
    // A node of a replicated ledger: posting is SERVING only while it leads (load
    // balancers send writes to the leader; followers answer NOT_LEADER anyway).
    if api.ledger.role().is_some() {
        let reporter = health_reporter.clone();
        let ledger = api.ledger.clone();
        tokio::spawn(async move {
            let mut was: Option<bool> = None;
            let closed = ledger.watch_closed();
            while !*closed.borrow() {
                let leads = matches!(ledger.role(), Some(crate::replica::Role::Leader { .. }));
                if was != Some(leads) && ledger.damage().is_none() && ledger.fault().is_none() {
                    if leads {
                        reporter.set_serving::<pb::ledger_posting_server::LedgerPostingServer<posting::Posting>>().await;
                    } else {
                        reporter.set_not_serving::<pb::ledger_posting_server::LedgerPostingServer<posting::Posting>>().await;
                    }
                    was = Some(leads);
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        });
    }
    // Reflection in both versions: v1, and v1alpha, the only one Python's
    // grpcio-reflection and older GUI clients speak.
    let reflection = tonic_reflection::server::Builder::configure().register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET).build_v1()?;
    let reflection_alpha = tonic_reflection::server::Builder::configure().register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET).build_v1alpha()?;

    let posting = pb::ledger_posting_server::LedgerPostingServer::new(posting::Posting(api.clone()))
        .max_decoding_message_size(MESSAGE_BYTES_MAX)
        .max_encoding_message_size(MESSAGE_BYTES_MAX);
    let query = pb::ledger_query_server::LedgerQueryServer::new(query::Query(api.clone()))
        .max_decoding_message_size(MESSAGE_BYTES_MAX)
        .max_encoding_message_size(MESSAGE_BYTES_MAX);
    let audit = pb::ledger_audit_server::LedgerAuditServer::new(audit::Audit(api.clone()))
        .max_decoding_message_size(MESSAGE_BYTES_MAX)
        .max_encoding_message_size(MESSAGE_BYTES_MAX);

    let admin = pb::ledger_admin_server::LedgerAdminServer::new(admin::Admin(api.clone()))
        .max_decoding_message_size(MESSAGE_BYTES_MAX)
        .max_encoding_message_size(MESSAGE_BYTES_MAX);

    // The TCP options go on the incoming stream: `serve_with_incoming_shutdown` ignores
    // the builder's (`tcp_nodelay`, `tcp_keepalive`), and without TCP_NODELAY a small
    // answer waited on the peer's delayed ACK (one request per call: p99 44 ms).
    let mut builder = Server::builder()
        .timeout(std::time::Duration::from_secs(crate::limits::CALL_TIMEOUT_S))
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(std::time::Duration::from_secs(20)))
        .max_concurrent_streams(Some(crate::limits::STREAMS_PER_CONNECTION_MAX));
    if let Some(t) = tls {
        builder = builder.tls_config(ServerTlsConfig::new().identity(Identity::from_pem(t.cert_pem, t.key_pem)))?;
    }
    let incoming = tonic::transport::server::TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .with_keepalive(Some(std::time::Duration::from_secs(crate::limits::TCP_KEEPALIVE_S)));
    builder
        .layer(metered::MeteredLayer::new(api.principals.clone()))
        .add_service(health)
        .add_service(reflection)
        .add_service(reflection_alpha)
        .add_service(posting)
        .add_service(query)
        .add_service(audit)
        .add_service(admin)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await?;
    Ok(())
}

/// A `grpc-timeout` header's duration (`<digits><unit>`, units H M S m u n).
fn grpc_timeout(v: &str) -> Option<std::time::Duration> {
    let (n, unit) = v.split_at(v.len().checked_sub(1)?);
    let n: u64 = n.parse().ok()?;
    Some(match unit {
        "H" => std::time::Duration::from_secs(n.saturating_mul(3600)),
        "M" => std::time::Duration::from_secs(n.saturating_mul(60)),
        "S" => std::time::Duration::from_secs(n),
        "m" => std::time::Duration::from_millis(n),
        "u" => std::time::Duration::from_micros(n),
        "n" => std::time::Duration::from_nanos(n),
        _ => return None,
    })
}
