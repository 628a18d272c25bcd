//! `LedgerQuery`: read models as of a date, filtered to what the caller may see.

use tonic::{Request, Response, Status};


use crate::domain::date::Date;
use crate::domain::money::format_fen;
use crate::domain::posting::Account;
use crate::domain::principal::Principal;
use crate::limits::{PAGE_ROWS_DEFAULT, PAGE_ROWS_MAX};
use crate::projection::views;

use super::error::ApiError;
use super::{auth, convert, pb, stamped, Api};

pub struct Query(pub Api);

impl Api {
    fn as_of(&self, s: &str) -> Result<Date, ApiError> {
        if s.is_empty() { Ok(self.ledger.today()) } else { convert::date("as_of", s) }
    }
}

/// (offset, size) of a page; the token is an opaque decimal offset.
fn page(size: u32, token: &str) -> Result<(usize, usize), ApiError> {
    let offset = if token.is_empty() { 0 } else { token.parse().map_err(|_| ApiError::invalid("INVALID_PAGE_TOKEN", "page_token was not issued by this server"))? };
    let size = match size as usize {
        0 => PAGE_ROWS_DEFAULT,
        n => n.min(PAGE_ROWS_MAX),
    };
    Ok((offset, size))
}

fn paged<T>(all: Vec<T>, offset: usize, size: usize) -> (Vec<T>, String) {
    let total = all.len();
    let items: Vec<T> = all.into_iter().skip(offset).take(size).collect();
    let next = if offset + items.len() < total { (offset + items.len()).to_string() } else { String::new() };
    (items, next)
}

fn opt_county(s: &str) -> Result<Option<crate::domain::ids::CountyCode>, ApiError> {
    if s.is_empty() { Ok(None) } else { convert::county(s).map(Some) }
}

#[tonic::async_trait]
impl pb::ledger_query_server::LedgerQuery for Query {
    async fn get_balance(&self, req: Request<pb::GetBalanceRequest>) -> Result<Response<pb::Balance>, Status> {
        let caller = self.0.admit(&req)?;
        self.0.reach(req.metadata()).await?;
        let who = caller.principal.clone();
        let r = req.into_inner();
        let account = Account::parse(&r.account).map_err(|e| ApiError::invalid("INVALID_ACCOUNT", e))?;
        let (state, seq) = self.0.read()?;
        let allowed = match (&account, &who) {
            (Account::Deposit(p) | Account::Wage(p), _) => auth::may_read_project(&who, &state, p),
            (Account::Contractor(u), Principal::Contractor(me)) => u == me,
            (_, Principal::Operator | Principal::Auditor) => true,
            _ => false,
        };
        if !allowed {
            return Err(ApiError::denied(format!("{who} may not read account {account}")).into());
        }
        Ok(stamped(seq, pb::Balance { account: account.to_string(), balance: format_fen(state.balance(&account)) }))
    }

    async fn list_accounts(&self, req: Request<pb::ListAccountsRequest>) -> Result<Response<pb::ListAccountsResponse>, Status> {
        let caller = self.0.admit(&req)?;
        self.0.reach(req.metadata()).await?;
        let who = caller.principal.clone();
        let r = req.into_inner();
        let (offset, size) = page(r.page_size, &r.page_token)?;
        let only = if r.project.is_empty() { None } else { Some(convert::project(&r.project)?) };
        let (state, seq) = self.0.read()?;
        let all: Vec<pb::Balance> = state
            .balances
            .iter()
            .filter(|(a, _)| match a {
                Account::Deposit(p) | Account::Wage(p) => only.as_ref().is_none_or(|o| o == p) && auth::may_read_project(&who, &state, p),
                _ => only.is_none() && matches!(who, Principal::Operator | Principal::Auditor),
            })
            .map(|(a, b)| pb::Balance { account: a.to_string(), balance: format_fen(*b) })
            .collect();
        let (accounts, next_page_token) = paged(all, offset, size);
        Ok(stamped(seq, pb::ListAccountsResponse { accounts, next_page_token }))
    }

    async fn get_project(&self, req: Request<pb::GetProjectRequest>) -> Result<Response<pb::Project>, Status> {
        let caller = self.0.admit(&req)?;
        self.0.reach(req.metadata()).await?;
        let who = caller.principal.clone();
        let r = req.into_inner();
        let id = convert::project(&r.project)?;
        let as_of = self.0.as_of(&r.as_of)?;
        let (state, seq) = self.0.read()?;
        if !auth::may_read_project(&who, &state, &id) {
            return Err(ApiError::denied(format!("{who} may not read project {id}")).into());
        }
        let v = views::project_view(&state, self.0.ledger.policies(), self.0.ledger.calendars(), &id, as_of)
            .ok_or_else(|| ApiError::not_found("UNKNOWN_PROJECT", format!("project {id} is not registered")))?;
        Ok(stamped(seq, convert::project_view(&v, as_of, true)))
    }

    async fn list_projects(&self, req: Request<pb::ListProjectsRequest>) -> Result<Response<pb::ListProjectsResponse>, Status> {
        let caller = self.0.admit(&req)?;
        self.0.reach(req.metadata()).await?;
        let who = caller.principal.clone();
        let r = req.into_inner();
        let (offset, size) = page(r.page_size, &r.page_token)?;
        let county = opt_county(&r.county)?;
        let status = if r.status == 0 { None } else { Some(convert::status_from(r.status)?) };
        let as_of = self.0.as_of(&r.as_of)?;
        let (state, seq) = self.0.read()?;
        let ids: Vec<_> = state
            .projects
            .iter()
            .filter(|(id, p)| county.is_none_or(|c| p.reg.county == c) && status.is_none_or(|s| p.status_on(as_of) == s) && auth::may_read_project(&who, &state, id))
            .map(|(id, _)| id.clone())
            .collect();
        let (ids, next_page_token) = paged(ids, offset, size);
        let projects = ids
            .iter()
            .filter_map(|id| views::project_view(&state, self.0.ledger.policies(), self.0.ledger.calendars(), id, as_of))
            .map(|v| convert::project_view(&v, as_of, false))
            .collect();
        Ok(stamped(seq, pb::ListProjectsResponse { projects, next_page_token }))
    }

    async fn list_flags(&self, req: Request<pb::ListFlagsRequest>) -> Result<Response<pb::ListFlagsResponse>, Status> {
        let caller = self.0.admit(&req)?;
        self.0.reach(req.metadata()).await?;
        let who = caller.principal.clone();
        let r = req.into_inner();
        let (offset, size) = page(r.page_size, &r.page_token)?;
        let county = opt_county(&r.county)?;
        let project = if r.project.is_empty() { None } else { Some(convert::project(&r.project)?) };
        let as_of = self.0.as_of(&r.as_of)?;
        let (state, seq) = self.0.read()?;
        let all: Vec<pb::Flag> = crate::projection::flags::flags(&state, self.0.ledger.policies(), self.0.ledger.calendars(), as_of)
            .iter()
            .filter(|f| project.as_ref().is_none_or(|p| *p == f.project))
            .filter(|f| county.is_none_or(|c| state.projects.get(&f.project).is_some_and(|p| p.reg.county == c)))
            .filter(|f| auth::may_read_project(&who, &state, &f.project))
            .map(convert::flag)
            .collect();
        let (flags, next_page_token) = paged(all, offset, size);
        Ok(stamped(seq, pb::ListFlagsResponse { flags, next_page_token }))
    }

    async fn get_worker(&self, req: Request<pb::GetWorkerRequest>) -> Result<Response<pb::Worker>, Status> {
        let caller = self.0.admit(&req)?;
        self.0.reach(req.metadata()).await?;
        let who = caller.principal.clone();
        let r = req.into_inner();
        let as_of = self.0.as_of(&r.as_of)?;
        let worker = match r.who {
            Some(pb::get_worker_request::Who::NationalId(id)) => {
                let nid = convert::national_id(&id)?;
                let vault = self.0.vault.clone();
                tokio::task::spawn_blocking(move || vault.find_worker(&nid))
                    .await
                    .map_err(|e| ApiError::new(tonic::Code::Internal, "INTERNAL", e.to_string()))?
                    .map_err(ApiError::from)?
                    .ok_or_else(|| ApiError::not_found("UNKNOWN_WORKER", "no worker with that national ID"))?
            }
            Some(pb::get_worker_request::Who::WorkerRef(h)) => {
                crate::domain::ids::Commitment::from_hex(&h).map_err(|e| ApiError::invalid("INVALID_WORKER_REF", e.to_string()))?
            }
            None => return Err(ApiError::invalid("MISSING_FIELD", "national_id or worker_ref is required").into()),
        };
        let (state, seq) = self.0.read()?;
        let v = views::worker_view(&state, &worker, as_of).ok_or_else(|| ApiError::not_found("UNKNOWN_WORKER", "no worker with that national ID"))?;
        // A worker is visible to whoever may read one of the projects they were enrolled on.
        if !v.enrolments.iter().any(|e| auth::may_read_project(&who, &state, &e.project)) {
            return Err(ApiError::denied(format!("{who} may not read this worker")).into());
        }
        Ok(stamped(seq, convert::worker_view(&v)))
    }

    async fn get_payroll(&self, req: Request<pb::GetPayrollRequest>) -> Result<Response<pb::Payroll>, Status> {
        let caller = self.0.admit(&req)?;
        self.0.reach(req.metadata()).await?;
        let who = caller.principal.clone();
        let r = req.into_inner();
        let id = convert::project(&r.project)?;
        let period = convert::period("period", &r.period)?;
        let as_of = self.0.as_of(&r.as_of)?;
        let (offset, size) = page(r.page_size, &r.page_token)?;
        let (state, seq) = self.0.read()?;
        if !auth::may_read_project(&who, &state, &id) {
            return Err(ApiError::denied(format!("{who} may not read project {id}")).into());
        }
        let v = views::payroll_view(&state, &id, period, as_of).ok_or_else(|| ApiError::not_found("UNKNOWN_PAYROLL", format!("project {id} has no payroll for {period}")))?;
        let lines: Vec<pb::PayrollLineView> = v.lines.iter().map(convert::payroll_line).collect();
        let (lines, next_page_token) = paged(lines, offset, size);
        Ok(stamped(seq, pb::Payroll {
            project: id.to_string(),
            period: period.to_string(),
            seq: v.seq,
            due_date: v.due_date.to_string(),
            due_total: format_fen(v.due_total),
            paid_total: format_fen(v.paid_total),
            overdue: v.overdue,
            lines,
            next_page_token,
        }))
    }

    async fn get_county_summary(&self, req: Request<pb::GetCountySummaryRequest>) -> Result<Response<pb::CountySummary>, Status> {
        let caller = self.0.admit(&req)?;
        self.0.reach(req.metadata()).await?;
        let who = caller.principal.clone();
        let r = req.into_inner();
        let county = opt_county(&r.county)?;
        let as_of = self.0.as_of(&r.as_of)?;
        if !auth::may_read_county(&who, county) {
            return Err(ApiError::denied(format!("{who} may not read the figures of {}", county.map_or("every county".to_owned(), |c| format!("county {c}")))).into());
        }
        let (state, seq) = self.0.read()?;
        let s = views::county_summary(&state, self.0.ledger.policies(), self.0.ledger.calendars(), county, as_of);
        Ok(stamped(seq, convert::county_summary(&s)))
    }

    async fn get_project_history(&self, req: Request<pb::GetProjectHistoryRequest>) -> Result<Response<pb::ProjectHistory>, Status> {
        let caller = self.0.admit(&req)?;
        self.0.reach(req.metadata()).await?;
        let who = caller.principal.clone();
        let id = convert::project(&req.get_ref().project)?;
        let (state, seq) = self.0.read()?;
        if !auth::may_read_project(&who, &state, &id) {
            return Err(ApiError::denied(format!("{who} may not read project {id}")).into());
        }
        let months = views::project_history(&state, &id).ok_or_else(|| ApiError::not_found("UNKNOWN_PROJECT", format!("project {id} is not registered")))?;
        Ok(stamped(seq, pb::ProjectHistory {
            project: id.to_string(),
            months: months
                .iter()
                .map(|m| pb::MonthFigures {
                    period: m.period.to_string(),
                    wage_in: format_fen(m.wage_in),
                    wage_out: format_fen(m.wage_out),
                    wage_balance_end: format_fen(m.wage_balance_end),
                    progress: format_fen(m.progress),
                    payroll_due: format_fen(m.payroll_due),
                    payroll_paid: format_fen(m.payroll_paid),
                })
                .collect(),
        }))
    }

    async fn list_workers(&self, req: Request<pb::ListWorkersRequest>) -> Result<Response<pb::ListWorkersResponse>, Status> {
        let caller = self.0.admit(&req)?;
        self.0.reach(req.metadata()).await?;
        let who = caller.principal.clone();
        let r = req.into_inner();
        if r.masked_id.chars().count() != 18 {
            return Err(ApiError::invalid("INVALID_MASKED_ID", "a masked national ID has 18 characters, e.g. 6201**********123X").into());
        }
        let (offset, size) = page(r.page_size, &r.page_token)?;
        let project = if r.project.is_empty() { None } else { Some(convert::project(&r.project)?) };
        let as_of = self.0.as_of(&r.as_of)?;
        let (state, seq) = self.0.read()?;
        let all: Vec<pb::Worker> = views::find_workers(&state, &r.masked_id, project.as_ref(), as_of)
            .into_iter()
            .filter(|w| w.enrolments.iter().any(|e| auth::may_read_project(&who, &state, &e.project)))
            .map(|w| convert::worker_view(&w))
            .collect();
        let (workers, next_page_token) = paged(all, offset, size);
        Ok(stamped(seq, pb::ListWorkersResponse { workers, next_page_token }))
    }
}
