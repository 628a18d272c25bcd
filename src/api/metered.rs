//! Every gRPC call counted (`metrics::Metrics::calls`) by RPC, status code and the caller's
//! role, timed to its response head, and logged inside a span that carries its request id
//! and the caller's role: a tower layer around the whole server, so no handler can forget
//! it. Every line logged while the call is served carries both (`--log-format json` puts
//! them in each line's `span`).
//!
//! The request id is the client's `x-request-id` header when it is a plain token (letters,
//! digits, `.`, `_`, `-`, at most 64) holding no personal number, else one of the
//! server's own; either way the answer carries it back in `x-request-id`. A refusal is
//! logged at INFO (RPC, code, role, request id: never the message, which may name what
//! was wrong), an answered call at DEBUG.
//!
//! The status is the response head's `grpc-status` (tonic puts a refusal there, as a
//! trailers-only response), else OK: a stream that fails midway counts as OK. Methods the
//! server does not have (UNIMPLEMENTED) are counted under `rpc="unknown"`, so that a
//! client cannot grow the label set.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::Instant;

use tracing::Instrument as _;

use tonic::codegen::http;

use super::auth::Principals;
use crate::metrics::{get, CallLabels, RpcLabels};

/// The layer: `Server::builder().layer(Metered::layer(principals))`.
#[derive(Clone)]
pub struct MeteredLayer {
    principals: Arc<Principals>,
}

impl MeteredLayer {
    pub fn new(principals: Arc<Principals>) -> MeteredLayer {
        MeteredLayer { principals }
    }
}

impl<S> tower_layer::Layer<S> for MeteredLayer {
    type Service = Metered<S>;
    fn layer(&self, inner: S) -> Metered<S> {
        Metered { inner, principals: self.principals.clone() }
    }
}

#[derive(Clone)]
pub struct Metered<S> {
    inner: S,
    principals: Arc<Principals>,
}

/// `Service/Method` of a request path (`/anxin.v1.LedgerPosting/Submit` ->
/// `LedgerPosting/Submit`; health and reflection keep their package).
fn rpc_of(path: &str) -> String {
    let p = path.trim_start_matches('/');
    p.strip_prefix("anxin.v1.").unwrap_or(p).chars().take(96).collect()
}

/// The caller's role from its bearer token.
fn role_of(principals: &Principals, headers: &http::HeaderMap) -> &'static str {
    match super::auth::bearer_of(headers) {
        None => "none",
        Some(t) => principals.authenticate(t).map_or("unauthenticated", |p| p.role()),
    }
}

/// The request header (and answer header) carrying a call's request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// This process's request ids: a random prefix and a counter.
static NEXT_ID: AtomicU64 = AtomicU64::new(0);
static ID_PREFIX: LazyLock<String> = LazyLock::new(|| crate::api::auth::new_token().chars().rev().take(8).collect());

/// The client's request id if it may be logged, else a new one.
fn request_id_of(headers: &http::HeaderMap) -> String {
    let given = headers.get(REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()).filter(|v| {
        (1..=64).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) && crate::domain::ids::personal_number_in(v).is_none()
    });
    given.map_or_else(|| format!("anx-{}-{}", *ID_PREFIX, NEXT_ID.fetch_add(1, Ordering::Relaxed)), str::to_owned)
}

/// A gRPC status code's name.
pub fn code_name(code: i32) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "OTHER",
    }
}

impl<S, B, RB> tower_service::Service<http::Request<B>> for Metered<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<RB>> + Send,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let rpc = rpc_of(req.uri().path());
        let role = role_of(&self.principals, req.headers());
        let request_id = request_id_of(req.headers());
        let span = tracing::info_span!("call", rpc = %rpc, role, request_id = %request_id);
        let started = Instant::now();
        let fut = {
            let _in = span.enter();
            self.inner.call(req)
        };
        Box::pin(
            async move {
                let mut r = fut.await;
                let code = match &r {
                    Ok(resp) => resp.headers().get("grpc-status").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(0),
                    Err(_) => 2,
                };
                if let (Ok(resp), Ok(v)) = (&mut r, http::HeaderValue::from_str(&request_id)) {
                    resp.headers_mut().insert(REQUEST_ID_HEADER, v);
                }
                let rpc = if code == 12 { "unknown".to_owned() } else { rpc };
                let seconds = started.elapsed().as_secs_f64();
                let m = get();
                m.call_seconds.get_or_create(&RpcLabels { rpc: rpc.clone() }).observe(seconds);
                m.calls.get_or_create(&CallLabels { rpc, code: code_name(code).to_owned(), role: role.to_owned() }).inc();
                let ms = (seconds * 1000.0) as u64;
                if code == 0 {
                    tracing::debug!(code = code_name(code), ms, "answered");
                } else {
                    tracing::info!(code = code_name(code), ms, "refused");
                }
                r
            }
            .instrument(span),
        )
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rpc_names_drop_the_package() {
        assert_eq!(super::rpc_of("/anxin.v1.LedgerPosting/Submit"), "LedgerPosting/Submit");
        assert_eq!(super::rpc_of("/grpc.health.v1.Health/Check"), "grpc.health.v1.Health/Check");
    }
}
