//! The log and its tree as c2sp.org/tlog-tiles, over HTTP (`tiles = "ADDR"` in anxind's
//! configuration): immutable, cacheable resources that auditors and mirrors fetch with
//! standard tools.
//!
//! - `GET /checkpoint`: the latest checkpoint's signed note (not cached); when the ledger
//!   has a witness policy, the latest *witnessed* one with its cosignatures (as logs that
//!   publish only witnessed checkpoints do), 503 until one is;
//! - `GET /tile/<L>/<N>[.p/<W>]`: hash tiles, 256 hashes wide (8,192 bytes) when full;
//! - `GET /tile/entries/<N>[.p/<W>]`: entry bundles, each record as a big-endian u16
//!   length and its canonical bytes (the Merkle entries are the records themselves).
//!
//! Every request carries `Authorization: Bearer <token>`. Checkpoints and hash tiles are
//! every principal's (they reveal nothing); an entry bundle only a principal who may read
//! every record in it (`auth::may_read_record`), since a bundle with a record cut out
//! would no longer hash to its tile: a bank or a contractor reads its records through
//! `ReadEvents`, which gives it the others as hashes. A principal has as many requests in
//! flight here as its gRPC call limit allows (429 over it), counted with its gRPC calls. A record longer than 65,535 bytes
//! (a very large payroll) cannot be written in a bundle: its bundle is refused with 422.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::Api;

/// Hashes (or entries) in a full tile.
pub const TILE_WIDTH: u64 = 256;

/// A tile's coordinates from its path below `tile/`: `(level, index, width)`, level
/// `None` for an entry bundle.
fn parse_path(path: &str) -> Option<(Option<u32>, u64, u64)> {
    let (level, rest) = path.split_once('/')?;
    let level = if level == "entries" { None } else { Some(crate::chain::note::decimal(level).filter(|l| *l < 64)? as u32) };
    let (n_path, width) = match rest.split_once(".p/") {
        Some((n, w)) => (n, crate::chain::note::decimal(w).filter(|w| (1..TILE_WIDTH).contains(w))?),
        None => (rest, TILE_WIDTH),
    };
    let parts: Vec<&str> = n_path.split('/').collect();
    let mut index: u64 = 0;
    for (i, p) in parts.iter().enumerate() {
        let digits = if i + 1 < parts.len() { p.strip_prefix('x')? } else { p };
        if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        index = index.checked_mul(1000)?.checked_add(digits.parse().ok()?)?;
    }
    // One spelling per index: no leading `x000/` groups.
    if parts.len() > 1 && parts[0] == "x000" {
        return None;
    }
    Some((level, index, width))
}

fn status(code: StatusCode, why: impl Into<String>) -> Response {
    (code, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{}\n", why.into())).into_response()
}

/// An immutable tile. Hash tiles reveal nothing and any cache may keep them; an entry
/// bundle holds records, so only the reader's own cache may (`private`): a shared cache
/// must never hand one principal's bundle to another. Both vary by the credentials.
fn immutable(body: Vec<u8>, shared: bool) -> Response {
    let cache = if shared { "public, max-age=31536000, immutable" } else { "private, max-age=31536000, immutable" };
    ([(header::CONTENT_TYPE, "application/octet-stream"), (header::CACHE_CONTROL, cache), (header::VARY, "Authorization")], body).into_response()
}

/// The tiles server's state: the API's, and whether `/checkpoint` is the witnessed one.
#[derive(Clone)]
struct Tiles {
    api: Api,
    witnessed: bool,
}

/// The caller, from its bearer token, holding one of its principal's call places.
fn caller(api: &Api, headers: &HeaderMap) -> Result<super::auth::Caller, Response> {
    let who = super::auth::bearer_of(headers).and_then(|t| api.principals.authenticate(t)).ok_or_else(|| status(StatusCode::UNAUTHORIZED, "a bearer token of a principal of this ledger is required"))?;
    api.calls.admit(who).map_err(|s| {
        let mut r = status(StatusCode::TOO_MANY_REQUESTS, s.message());
        r.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        r
    })
}

async fn checkpoint(State(t): State<Tiles>, headers: HeaderMap) -> Response {
    let _call = match caller(&t.api, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let l = t.api.ledger.clone();
    let witnessed = t.witnessed;
    match tokio::task::spawn_blocking(move || if witnessed { Ok(l.witnessed_checkpoint()) } else { l.checkpoint().map(Some) }).await {
        Ok(Ok(Some(cp))) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], cp.to_note()).into_response(),
        Ok(Ok(None)) => status(StatusCode::SERVICE_UNAVAILABLE, "no checkpoint meets the witness policy yet: ask again later"),
        Ok(Err(e)) => status(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e) => status(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn tile(State(t): State<Tiles>, headers: HeaderMap, Path(path): Path<String>) -> Response {
    let api = t.api;
    let call = match caller(&api, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let who = call.principal.clone();
    let Some((level, index, width)) = parse_path(&path) else {
        return status(StatusCode::NOT_FOUND, format!("tile/{path} is not a tile path"));
    };
    let l = api.ledger.clone();
    let made = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, Response> {
        let first = index.checked_mul(TILE_WIDTH).filter(|f| f.checked_add(TILE_WIDTH).is_some()).ok_or_else(|| status(StatusCode::NOT_FOUND, "no such tile"))?;
        match level {
            Some(level) => {
                let hashes = l.subtree_hashes(level * 8, first, width).map_err(|e| match e {
                    crate::ledger::ProofRequestError::Invalid(m) | crate::ledger::ProofRequestError::NotYet(m) => status(StatusCode::NOT_FOUND, m),
                    crate::ledger::ProofRequestError::Store(e) => status(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
                })?;
                Ok(hashes.concat())
            }
            None => {
                let last = first + width;
                if last > l.tree_size() {
                    return Err(status(StatusCode::NOT_FOUND, format!("records {} to {last} are not all in the tree of {}", first + 1, l.tree_size())));
                }
                let records = l.read_records(first + 1, last).map_err(|e| status(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
                if !super::auth::reads_every_record(&who) {
                    let state = l.state().map_err(|e| status(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
                    if let Some((seq, _)) = records.iter().find(|(_, b)| !crate::chain::record::Record::decode(b).is_ok_and(|r| super::auth::may_read_record(&who, &state, &r))) {
                        return Err(status(StatusCode::FORBIDDEN, format!("record {seq} of this bundle is not {who}'s to read: read your records with ReadEvents")));
                    }
                }
                let mut out = Vec::new();
                for (seq, b) in records {
                    let Ok(len) = u16::try_from(b.len()) else {
                        return Err(status(StatusCode::UNPROCESSABLE_ENTITY, format!("record {seq} is {} bytes, more than an entry bundle's 65,535: read it with ReadEvents", b.len())));
                    };
                    out.extend_from_slice(&len.to_be_bytes());
                    out.extend_from_slice(&b);
                }
                Ok(out)
            }
        }
    })
    .await;
    match made {
        Ok(Ok(body)) => immutable(body, level.is_some()),
        Ok(Err(r)) => r,
        Err(e) => status(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The tiles router; `witnessed`: `/checkpoint` serves the latest witnessed checkpoint.
pub fn router(api: Api, witnessed: bool) -> Router {
    Router::new().route("/checkpoint", get(checkpoint)).route("/tile/{*path}", get(tile)).with_state(Tiles { api, witnessed })
}

/// Serves the tiles on `listener` until `shutdown`.
///
/// # Errors
/// The server's I/O errors.
pub async fn serve(api: Api, witnessed: bool, listener: tokio::net::TcpListener, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
    // Small answers must not wait on the peer's delayed ACK (as for gRPC).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY on a tiles connection");
        }
    });
    axum::serve(listener, router(api, witnessed)).with_graceful_shutdown(shutdown).await
}

#[cfg(test)]
mod tests {
    use super::parse_path;

    #[test]
    fn tile_paths_parse_in_their_one_spelling() {
        assert_eq!(parse_path("0/000"), Some((Some(0), 0, 256)));
        assert_eq!(parse_path("1/x001/x234/067.p/17"), Some((Some(1), 1_234_067, 17)));
        assert_eq!(parse_path("entries/005.p/3"), Some((None, 5, 3)));
        for bad in ["0/0", "0/x001", "01/000", "0/000.p/256", "0/000.p/0", "0/x000/001", "0/000.p/", "x/000", "64/000", "0/1234"] {
            assert_eq!(parse_path(bad), None, "{bad}");
        }
    }
}
