//! Authentication (bearer tokens, stored hashed) and authorization (DESIGN 9).
//!
//! Tokens are `anx_` and 64 hex digits of randomness. The principals file stores only
//! `BLAKE3-derive("anxin v1 token", token)` of each, so a leaked file grants nothing.
//! Every token hash is compared in constant time (`blake3::Hash`'s `==`), against every
//! entry, so the time taken does not say which entry came close.
//!
//! Who may do what:
//! - `county:<code>` registers projects in its county, changes their status, orders
//!   drawdowns and releases; reads its county only.
//! - `bank:<code>` posts what its accounts did: deposits and letters it holds, the wage
//!   accounts it keeps and the money through them; reads the projects it serves.
//! - `contractor:<USCC>` registers workers, contracts, exits and payrolls on projects where
//!   it is the general contractor; reads those projects.
//! - `auditor` reads everything and posts nothing.
//! - `operator` (the ledger's own operator, for tools and the demo) may do everything.
//!   Every principal may use the audit service: the log holds no personal data.

use std::path::Path;

use serde::{Deserialize, Serialize};
use tonic::{Request, Status};

use crate::domain::command::Command;
use crate::domain::ids::{CountyCode, ProjectId};
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
        let token = text.strip_prefix("Bearer ").ok_or_else(|| unauthenticated("authorization must be \"Bearer <token>\""))?;
        self.authenticate(token.trim()).ok_or_else(|| unauthenticated("unknown token"))
    }
}

fn unauthenticated(msg: &str) -> Status {
    ApiError::new(tonic::Code::Unauthenticated, "UNAUTHENTICATED", msg).into()
}

/// The TOML lines that add a principal with this token to a principals file.
pub fn principals_entry(principal: &Principal, token: &str) -> String {
    format!("[[principal]]\nprincipal = \"{principal}\"\ntoken_blake3 = \"{}\"\n", token_hash(token).to_hex())
}

/// What authorization needs to know about a project.
#[derive(Clone)]
struct ProjectFacts {
    county: CountyCode,
    general_contractor: String,
    wage_bank: Option<String>,
}

/// May `who` post every command of `batch`? Checked before the writer sees it, in one
/// pass: projects registered and accounts opened earlier in the batch count as known.
///
/// # Errors
/// `PERMISSION_DENIED` naming the first command refused (its index) and the reason.
pub fn may_post_batch(who: &Principal, state: &State, batch: &[Command]) -> Result<(), ApiError> {
    if matches!(who, Principal::Operator) {
        return Ok(());
    }
    // Facts of projects changed earlier in this batch, over the state's.
    let mut earlier: std::collections::HashMap<&ProjectId, ProjectFacts> = std::collections::HashMap::new();
    for (index, cmd) in batch.iter().enumerate() {
        let p = cmd.project();
        let f = match earlier.get(p) {
            Some(f) => Some(f.clone()),
            None => facts(state, p),
        };
        may_post(who, state, cmd, index, f)?;
        match cmd {
            Command::RegisterProject(r) => {
                earlier.insert(&r.project, ProjectFacts { county: r.county, general_contractor: r.general_contractor.to_string(), wage_bank: None });
            }
            Command::OpenWageAccount(o) => {
                if let Some(mut x) = earlier.get(&o.project).cloned().or_else(|| facts(state, &o.project)) {
                    x.wage_bank = Some(o.bank.to_string());
                    earlier.insert(&o.project, x);
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn facts(state: &State, p: &ProjectId) -> Option<ProjectFacts> {
    state.projects.get(p).map(|x| ProjectFacts {
        county: x.reg.county,
        general_contractor: x.reg.general_contractor.to_string(),
        wage_bank: x.wage_account.as_ref().filter(|a| a.closed.is_none()).map(|a| a.bank.to_string()),
    })
}

/// May `who` post `cmd` (the `index`-th of its batch), given what is known of its project?
fn may_post(who: &Principal, state: &State, cmd: &Command, index: usize, f: Option<ProjectFacts>) -> Result<(), ApiError> {
    let p = cmd.project();
    let deny = |why: String| Err(ApiError::denied(format!("{who} may not {}: {why}", cmd.name())).at(index));
    match who {
        Principal::Operator => Ok(()),
        Principal::Auditor => deny("an auditor reads, it does not post".into()),
        Principal::County(c) => match cmd {
            Command::RegisterProject(r) if r.county == *c => Ok(()),
            Command::RegisterProject(r) => deny(format!("the project is in county {}", r.county)),
            Command::ChangeProjectStatus(_) | Command::DrawDeposit(_) | Command::ReleaseDeposit(_) => match f {
                Some(f) if f.county == *c => Ok(()),
                Some(f) => deny(format!("project {p} is in county {}", f.county)),
                None => Ok(()), // unknown project: the rules answer UNKNOWN_PROJECT
            },
            _ => deny("a county office registers projects, changes their status and orders drawdowns and releases".into()),
        },
        Principal::Bank(b) => {
            let b = b.as_str();
            let own = |bank: &str| if bank == b { Ok(()) } else { deny(format!("that is bank {bank}'s business")) };
            match cmd {
                Command::OpenWageAccount(o) => own(o.bank.as_str()),
                Command::PayDeposit(d) => own(d.bank.as_str()),
                Command::IssueGuaranteeLetter(l) => own(l.bank.as_str()),
                Command::CancelGuaranteeLetter(l) => match state.letters.get(&l.letter_no) {
                    Some(letter) => own(letter.bank.as_str()),
                    None => Ok(()),
                },
                Command::CloseWageAccount(_) | Command::MakeProgressPayment(_) | Command::TopUpWageAccount(_) | Command::PayWage(_) => match f {
                    Some(ProjectFacts { wage_bank: Some(wb), .. }) => own(&wb),
                    Some(_) => Ok(()), // no open account: the rules answer NO_WAGE_ACCOUNT
                    None => Ok(()),
                },
                _ => deny("a bank posts deposits, letters and the money through the wage accounts it keeps".into()),
            }
        }
        Principal::Contractor(u) => match cmd {
            Command::EnrolWorker(_) | Command::RecordContract(_) | Command::ExitWorker(_) | Command::SubmitPayroll(_) => match f {
                Some(f) if f.general_contractor == u.as_str() => Ok(()),
                Some(_) => deny(format!("it is not the general contractor of project {p}")),
                None => Ok(()),
            },
            _ => deny("a contractor registers workers, contracts, exits and payrolls".into()),
        },
    }
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
        let sem = self.open.lock().expect("call limits lock").entry(who.clone()).or_insert_with(|| std::sync::Arc::new(tokio::sync::Semaphore::new(self.per_principal))).clone();
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

