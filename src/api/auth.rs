//! Authentication (bearer tokens, stored hashed) and authorization (DESIGN 9).
//!
//! Tokens are `anx_` and 64 hex digits of randomness. The principals file stores only
//! `BLAKE3-derive("anxin v1 token", token)` of each, so a leaked file grants nothing.
//! Every token hash is compared in constant time (`blake3::Hash`'s `==`), against every
//! entry, so the time taken does not say which entry came close.
//!
//! Who may post what is `crate::decide::authorize` (the role at the edge, here; the
//! authority over each project, account and letter on the writer thread). Who may read:
//! - `county:<code>` its county only; `bank:<code>` the projects it serves;
//!   `contractor:<USCC>` the projects where it is the general contractor;
//! - `auditor` and `operator` everything.
//!   Every principal may use the audit service: the log holds no personal data.

use std::path::Path;

use serde::{Deserialize, Serialize};
use tonic::{Request, Status};

use crate::domain::command::Command;
use crate::domain::ids::{CountyCode, ProjectId};
use crate::domain::rejection::BatchRejection;
use crate::domain::principal::Principal;
use crate::projection::state::State;

use super::error::ApiError;

pub const TOKEN_CONTEXT: &str = "anxin v1 token";

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalEntry {
    /// `bank:ICBC`, `contractor:<USCC>`, `county:620121`, `auditor` or `operator`.
    pub principal: String,
    /// 64 hex digits: BLAKE3-derive("anxin v1 token", token).
    pub token_blake3: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalsFile {
    #[serde(default)]
    pub principal: Vec<PrincipalEntry>,
}

/// The principals the server knows, by token hash.
#[derive(Clone, Debug, Default)]
pub struct Principals {
    entries: Vec<(blake3::Hash, Principal)>,
}

pub fn token_hash(token: &str) -> blake3::Hash {
    blake3::Hash::from(blake3::derive_key(TOKEN_CONTEXT, token.as_bytes()))
}

/// A new random token.
///
/// # Panics
/// If the operating system has no randomness to give.
pub fn new_token() -> String {
    let mut r = [0u8; 32];
    getrandom::getrandom(&mut r).expect("the OS provides randomness");
    format!("anx_{}", hex::encode(r))
}

impl Principals {
    /// # Errors
    /// A message naming the file and the bad entry.
    pub fn load(path: &Path) -> Result<Principals, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Principals::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// # Errors
    /// A message naming the bad entry.
    pub fn parse(text: &str) -> Result<Principals, String> {
        let file: PrincipalsFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut entries = Vec::new();
        for (i, e) in file.principal.iter().enumerate() {
            let p = Principal::parse(&e.principal).map_err(|err| format!("principal {i}: {err}"))?;
            let h = blake3::Hash::from_hex(&e.token_blake3).map_err(|_| format!("principal {i}: token_blake3 must be 64 hex digits"))?;
            entries.push((h, p));
        }
        Ok(Principals { entries })
    }

    pub fn add(&mut self, principal: Principal, token: &str) {
        self.entries.push((token_hash(token), principal));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The principal a bearer token belongs to.
    pub fn authenticate(&self, token: &str) -> Option<Principal> {
        let h = token_hash(token);
        let mut found = None;
        for (eh, p) in &self.entries {
            // Constant-time comparison; keep scanning so every token costs the same.
            if *eh == h && found.is_none() {
                found = Some(p.clone());
            }
        }
        found
    }

    /// Checks `authorization: Bearer <token>` and returns the principal.
    ///
    /// # Errors
    /// `UNAUTHENTICATED` without a valid token.
    pub fn check<T>(&self, req: &Request<T>) -> Result<Principal, Status> {
        let header = req.metadata().get("authorization").ok_or_else(|| unauthenticated("missing authorization: Bearer <token>"))?;
        let text = header.to_str().map_err(|_| unauthenticated("authorization header is not ASCII"))?;
        let token = bearer(text).ok_or_else(|| unauthenticated("authorization must be \"Bearer <token>\""))?;
        self.authenticate(token).ok_or_else(|| unauthenticated("unknown token"))
    }
}

/// The token of an `Authorization` value, `Bearer <token>` (the scheme's name in any
/// case, RFC 7235 2.1): the one parser of every edge (gRPC, tiles, dashboard, metrics).
pub fn bearer(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// The bearer token of an HTTP request's headers.
pub fn bearer_of(headers: &tonic::codegen::http::HeaderMap) -> Option<&str> {
    headers.get(tonic::codegen::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(bearer)
}

fn unauthenticated(msg: &str) -> Status {
    ApiError::new(tonic::Code::Unauthenticated, "UNAUTHENTICATED", msg).into()
}

/// The TOML lines that add a principal with this token to a principals file.
pub fn principals_entry(principal: &Principal, token: &str) -> String {
    format!("[[principal]]\nprincipal = \"{principal}\"\ntoken_blake3 = \"{}\"\n", token_hash(token).to_hex())
}

/// May `who`'s role post every command of `batch` (`decide::authorize::role_may_post`)?
/// Checked at the edge; the writer checks it again with the principal's authority over
/// each command's project, account or letter (`decide::authorize::may_post`).
///
/// # Errors
/// `PERMISSION_DENIED` / `NOT_PERMITTED` naming the first command refused (its index).
pub fn may_post_batch(who: &Principal, batch: &[Command]) -> Result<(), ApiError> {
    for (index, cmd) in batch.iter().enumerate() {
        crate::decide::authorize::role_may_post(who, cmd).map_err(|rejection| ApiError::from(BatchRejection { index: Some(index), rejection }))?;
    }
    Ok(())
}

/// May `who` read project `p`?
pub fn may_read_project(who: &Principal, state: &State, p: &ProjectId) -> bool {
    let Some(x) = state.projects.get(p) else { return matches!(who, Principal::Operator | Principal::Auditor) };
    match who {
        Principal::Operator | Principal::Auditor => true,
        Principal::County(c) => x.reg.county == *c,
        Principal::Contractor(u) => x.reg.general_contractor == *u,
        Principal::Bank(b) => {
            x.wage_account.as_ref().is_some_and(|a| a.bank == *b)
                || state.letters_of(p).any(|(_, l)| l.bank == *b)
        }
    }
}

/// May `who` read record `rec` in full (issue 18's rule)? Operators, auditors and
/// county offices read every record. A bank or a contractor reads the records it posted
/// and those of the projects it may read (`may_read_project`: a wage account or a
/// guarantee letter at the bank; the contractor's own projects) except the county's
/// casework (it names who complained; a bank's own card counts are its own). Of any other record it gets the header, the chain
/// hash and the Merkle leaf: every hash, checkpoint, cosignature and proof is everyone's,
/// since they reveal nothing. Decided against the state as it is now: a bank that lost a
/// project's account (closed, reopened elsewhere) no longer reads that project's records.
pub fn may_read_record(who: &Principal, state: &State, rec: &crate::chain::record::Record) -> bool {
    reads_every_record(who) || rec.principal == *who || (!rec.event.is_casework() && rec.event.project().is_some_and(|p| may_read_project(who, state, p)))
}

/// Whether `who` reads every record (`may_read_record` without looking at the state).
pub fn reads_every_record(who: &Principal) -> bool {
    matches!(who, Principal::Operator | Principal::Auditor | Principal::County(_))
}

/// May `who` read the figures of a whole county (`None` = every county)?
pub fn may_read_county(who: &Principal, county: Option<CountyCode>) -> bool {
    match who {
        Principal::Operator | Principal::Auditor => true,
        Principal::County(c) => county == Some(*c),
        _ => false,
    }
}

/// How many calls (unary, or streams while open) one principal may have in flight at
/// once: one misbehaving client (a retry storm, a leak of open streams) cannot take
/// every connection slot and writer queue place from the others. Over the limit a call
/// is refused at once with RESOURCE_EXHAUSTED, reason `TOO_MANY_CALLS`.
pub struct CallLimits {
    per_principal: usize,
    open: std::sync::Mutex<std::collections::HashMap<Principal, std::sync::Arc<tokio::sync::Semaphore>>>,
}

impl CallLimits {
    pub fn new(per_principal: usize) -> CallLimits {
        CallLimits { per_principal: per_principal.max(1), open: Default::default() }
    }

    /// A place for one call of `who`, held until the `Caller` is dropped.
    ///
    /// # Errors
    /// `RESOURCE_EXHAUSTED` / `TOO_MANY_CALLS` if `who` has the limit in flight.
    pub fn admit(&self, who: Principal) -> Result<Caller, Status> {
        let sem = self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner).entry(who.clone()).or_insert_with(|| std::sync::Arc::new(tokio::sync::Semaphore::new(self.per_principal))).clone();
        match sem.try_acquire_owned() {
            Ok(permit) => Ok(Caller { principal: who, _permit: permit }),
            Err(_) => Err(ApiError::new(
                tonic::Code::ResourceExhausted,
                "TOO_MANY_CALLS",
                format!("{who} already has {} calls in flight (the limit per principal): wait for some to finish, then retry", self.per_principal),
            )
            .into()),
        }
    }
}

impl Default for CallLimits {
    fn default() -> Self {
        CallLimits::new(crate::limits::CALLS_PER_PRINCIPAL_MAX)
    }
}

/// An authenticated caller holding one of its principal's call places.
pub struct Caller {
    pub principal: Principal,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl std::ops::Deref for Caller {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.principal
    }
}


#[cfg(test)]
mod tests {
    use super::bearer;

    #[test]
    fn the_bearer_scheme_is_read_in_any_case_and_nothing_else_is() {
        assert_eq!(bearer("Bearer anx_1"), Some("anx_1"));
        assert_eq!(bearer("bearer  anx_1 "), Some("anx_1"));
        assert_eq!(bearer("BEARER anx_1"), Some("anx_1"));
        for no in ["Basic anx_1", "Bearer", "Bearer ", "Bearer   ", "anx_1", "", "Bearerx anx_1"] {
            assert_eq!(bearer(no), None, "{no:?}");
        }
    }
}
