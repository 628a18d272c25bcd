//! `LedgerQuery`: read models at a point in the ledger's past (`projection::when`),
//! filtered to what the caller may see.

use tonic::{Request, Response, Status};


use crate::domain::date::Date;
use crate::domain::money::format_fen;
use crate::domain::posting::Account;
use crate::domain::principal::Principal;
use crate::limits::{PAGE_ROWS_DEFAULT, PAGE_ROWS_MAX};
use crate::projection::views;
use crate::projection::when::When;

use super::error::ApiError;
use super::{auth, convert, pb, stamped, Api};

pub struct Query(pub Api);

/// The point a query asked about: `at_seq` (0 = the latest record) and its date.
#[derive(Clone, Copy)]
struct Asked {
    at_seq: u64,
    date: Date,
}

impl Asked {
    /// The point, given the latest record the state holds.
    fn when(self, head: u64) -> When {
        When { seq: if self.at_seq == 0 { head } else { self.at_seq.min(head) }, date: self.date }
    }

    fn point(self, head: u64) -> Option<pb::Point> {
        let w = self.when(head);
        Some(pb::Point { at_seq: w.seq, as_of: w.date.to_string(), head_seq: head })
    }
}

impl Api {
    fn as_of(&self, s: &str) -> Result<Date, ApiError> {
        if s.is_empty() { Ok(self.ledger.today()) } else { convert::date("as_of", s) }
    }

    /// Reads `at_seq` and `as_of`, and waits until this node holds record `at_seq`.
    async fn asked(&self, at_seq: u64, as_of: &str) -> Result<Asked, ApiError> {
        let date = self.as_of(as_of)?;
        self.reach_seq(at_seq, None).await?;
        Ok(Asked { at_seq, date })
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
        let asked = self.0.asked(r.at_seq, &r.as_of).await?;
        let (state, seq) = self.0.read()?;
        may_read_account(&who, &state, &account)?;
        let balance = state.balance_at(&account, asked.when(seq));
        Ok(stamped(seq, pb::Balance { account: account.to_string(), balance: format_fen(balance), point: asked.point(seq) }))
    }

    async fn list_accounts(&self, req: Request<pb::ListAccountsRequest>) -> Result<Response<pb::ListAccountsResponse>, Status> {
        let caller = self.0.admit(&req)?;
        self.0.reach(req.metadata()).await?;
        let who = caller.principal.clone();
        let r = req.into_inner();
        let (offset, size) = page(r.page_size, &r.page_token)?;
        let only = if r.project.is_empty() { None } else { Some(convert::project(&r.project)?) };
        let asked = self.0.asked(r.at_seq, &r.as_of).await?;
        let (state, seq) = self.0.read()?;
        let w = asked.when(seq);
        let all: Vec<pb::Balance> = state
            .balances
            .iter()
            .filter(|(a, _)| match a {
                Account::Deposit(p) | Account::Wage(p) => only.as_ref().is_none_or(|o| o == p) && auth::may_read_project(&who, &state, p),
                _ => only.is_none() && matches!(who, Principal::Operator | Principal::Auditor),
            })
            .filter_map(|(a, _)| {
                // An account the point sees no posting of did not exist yet.
                let sums = state.postings.get(a)?.at(w);
                (sums.count > 0).then(|| pb::Balance { account: a.to_string(), balance: format_fen(sums.balance), point: None })
            })
            .collect();
        let (accounts, next_page_token) = paged(all, offset, size);
        Ok(stamped(seq, pb::ListAccountsResponse { accounts, next_page_token, point: asked.point(seq) }))
    }

    async fn get_project(&self, req: Request<pb::GetProjectRequest>) -> Result<Response<pb::Project>, Status> {
        let caller = self.0.admit(&req)?;
        self.0.reach(req.metadata()).await?;
        let who = caller.principal.clone();
        let r = req.into_inner();
        let id = convert::project(&r.project)?;
        let asked = self.0.asked(r.at_seq, &r.as_of).await?;
        let (state, seq) = self.0.read()?;
        if !auth::may_read_project(&who, &state, &id) {
            return Err(ApiError::denied(format!("{who} may not read project {id}")).into());
        }
        let v = views::project_view(&state, self.0.ledger.policies(), self.0.ledger.calendars(), &id, asked.when(seq))
            .ok_or_else(|| ApiError::not_found("UNKNOWN_PROJECT", format!("project {id} is not registered at that point")))?;
        let mut m = convert::project_view(&v, asked.date, true);
        m.point = asked.point(seq);
        Ok(stamped(seq, m))
    }

    async fn list_projects(&self, req: Request<pb::ListProjectsRequest>) -> Result<Response<pb::ListProjectsResponse>, Status> {
        let caller = self.0.admit(&req)?;
        self.0.reach(req.metadata()).await?;
        let who = caller.principal.clone();
        let r = req.into_inner();
        let (offset, size) = page(r.page_size, &r.page_token)?;
        let county = opt_county(&r.county)?;
        let status = if r.status == 0 { None } else { Some(convert::status_from(r.status)?) };
        let asked = self.0.asked(r.at_seq, &r.as_of).await?;
        let (state, seq) = self.0.read()?;
        let w = asked.when(seq);
        let ids: Vec<_> = state
            .projects
            .iter()
            .filter(|(id, p)| p.seen(w) && county.is_none_or(|c| p.reg.county == c) && status.is_none_or(|s| p.status_at(w, w.date) == s) && auth::may_read_project(&who, &state, id))
            .map(|(id, _)| id.clone())
            .collect();
        let (ids, next_page_token) = paged(ids, offset, size);
        let projects = ids
            .iter()
            .filter_map(|id| views::project_view(&state, self.0.ledger.policies(), self.0.ledger.calendars(), id, w))
            .map(|v| convert::project_view(&v, w.date, false))
            .collect();
        Ok(stamped(seq, pb::ListProjectsResponse { projects, next_page_token, point: asked.point(seq) }))
    }

    async fn list_flags(&self, req: Request<pb::ListFlagsRequest>) -> Result<Response<pb::ListFlagsResponse>, Status> {
        let caller = self.0.admit(&req)?;
        self.0.reach(req.metadata()).await?;
        let who = caller.principal.clone();
        let r = req.into_inner();
        let (offset, size) = page(r.page_size, &r.page_token)?;
        let county = opt_county(&r.county)?;
        let project = if r.project.is_empty() { None } else { Some(convert::project(&r.project)?) };
        let asked = self.0.asked(r.at_seq, &r.as_of).await?;
        let (state, seq) = self.0.read()?;
        let all: Vec<pb::Flag> = crate::projection::flags::flags(&state, self.0.ledger.policies(), self.0.ledger.calendars(), asked.when(seq))
            .iter()
            .filter(|f| project.as_ref().is_none_or(|p| *p == f.project))
            .filter(|f| county.is_none_or(|c| state.projects.get(&f.project).is_some_and(|p| p.reg.county == c)))
            .filter(|f| auth::may_read_project(&who, &state, &f.project))
            .map(convert::flag)
            .chain(
                // The casework's flags (CASE_OVERDUE), for those who may read the county's
                // casework, after the projects'.
                crate::projection::casework::cases(&state, self.0.ledger.policies(), self.0.ledger.calendars(), county, asked.when(seq))
                    .iter()
                    .filter(|c| auth::may_read_county(&who, Some(c.county)))
                    .filter(|c| project.is_none() || c.project == project)
                    .filter_map(convert::case_flag),
            )
            .collect();
        let (flags, next_page_token) = paged(all, offset, size);
        Ok(stamped(seq, pb::ListFlagsResponse { flags, next_page_token, point: asked.point(seq) }))
    }

    async fn get_worker(&self, req: Request<pb::GetWorkerRequest>) -> Result<Response<pb::Worker>, Status> {
        let caller = self.0.admit(&req)?;
        self.0.reach(req.metadata()).await?;
        let who = caller.principal.clone();
        let r = req.into_inner();
        let asked = self.0.asked(r.at_seq, &r.as_of).await?;
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
        let v = views::worker_view(&state, &worker, asked.when(seq)).ok_or_else(|| ApiError::not_found("UNKNOWN_WORKER", "no worker with that national ID at that point"))?;
        // A worker is visible to whoever may read one of the projects they were enrolled on.
        if !v.enrolments.iter().any(|e| auth::may_read_project(&who, &state, &e.project)) {
            return Err(ApiError::denied(format!("{who} may not read this worker")).into());
        }
        let mut m = convert::worker_view(&v);
        m.point = asked.point(seq);
        Ok(stamped(seq, m))
    }

    async fn get_payroll(&self, req: Request<pb::GetPayrollRequest>) -> Result<Response<pb::Payroll>, Status> {
        let caller = self.0.admit(&req)?;
        self.0.reach(req.metadata()).await?;
        let who = caller.principal.clone();
        let r = req.into_inner();
        let id = convert::project(&r.project)?;
        let period = convert::period("period", &r.period)?;
        let (offset, size) = page(r.page_size, &r.page_token)?;
        let asked = self.0.asked(r.at_seq, &r.as_of).await?;
        let (state, seq) = self.0.read()?;
        if !auth::may_read_project(&who, &state, &id) {
            return Err(ApiError::denied(format!("{who} may not read project {id}")).into());
        }
        let v = views::payroll_view(&state, &id, period, asked.when(seq)).ok_or_else(|| ApiError::not_found("UNKNOWN_PAYROLL", format!("project {id} has no payroll for {period} at that point")))?;
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
            point: asked.point(seq),
            payroll_no: v.payroll_no.clone().unwrap_or_default(),
            submitted_on: v.submitted_on.map(|d| d.to_string()).unwrap_or_default(),
        }))
    }

    async fn get_county_summary(&self, req: Request<pb::GetCountySummaryRequest>) -> Result<Response<pb::CountySummary>, Status> {
        let caller = self.0.admit(&req)?;
        self.0.reach(req.metadata()).await?;
        let who = caller.principal.clone();
        let r = req.into_inner();
        let county = opt_county(&r.county)?;
        let asked = self.0.asked(r.at_seq, &r.as_of).await?;
        if !auth::may_read_county(&who, county) {
            return Err(ApiError::denied(format!("{who} may not read the figures of {}", county.map_or("every county".to_owned(), |c| format!("county {c}")))).into());
        }
        let (state, seq) = self.0.read()?;
        let s = views::county_summary(&state, self.0.ledger.policies(), self.0.ledger.calendars(), county, asked.when(seq));
        let mut m = convert::county_summary(&s);
        m.point = asked.point(seq);
        Ok(stamped(seq, m))
    }

    async fn get_project_history(&self, req: Request<pb::GetProjectHistoryRequest>) -> Result<Response<pb::ProjectHistory>, Status> {
        let caller = self.0.admit(&req)?;
        self.0.reach(req.metadata()).await?;
        let who = caller.principal.clone();
        let r = req.into_inner();
        let id = convert::project(&r.project)?;
        let asked = self.0.asked(r.at_seq, &r.as_of).await?;
        let (state, seq) = self.0.read()?;
        if !auth::may_read_project(&who, &state, &id) {
            return Err(ApiError::denied(format!("{who} may not read project {id}")).into());
        }
        let (policies, calendars, w) = (self.0.ledger.policies(), self.0.ledger.calendars(), asked.when(seq));
        let months = views::project_history(&state, policies, calendars, &id, w).ok_or_else(|| ApiError::not_found("UNKNOWN_PROJECT", format!("project {id} is not registered at that point")))?;
        let intervals = state.projects.get(&id).map(|p| intervals_pb(&state, p, policies, calendars, w)).unwrap_or_default();
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
                    deposit_required: format_fen(m.deposit_required),
                    deposit_cover: format_fen(m.deposit_cover),
                    owed: format_fen(m.owed),
                    overdue: format_fen(m.overdue),
                    flags_red: m.flags_red,
                    flags_yellow: m.flags_yellow,
                })
                .collect(),
            point: asked.point(seq),
            flag_intervals: intervals,
        }))
    }

    async fn list_cases(&self, req: Request<pb::ListCasesRequest>) -> Result<Response<pb::ListCasesResponse>, Status> {
        let caller = self.0.admit(&req)?;
        self.0.reach(req.metadata()).await?;
        let who = caller.principal.clone();
        let r = req.into_inner();
        let (offset, size) = page(r.page_size, &r.page_token)?;
        let county = opt_county(&r.county)?;
        if !auth::may_read_county(&who, county) && !(county.is_none() && matches!(who, Principal::County(_))) {
            return Err(ApiError::denied(format!("{who} may not read the casework of {}", county.map_or("every county".to_owned(), |c| format!("county {c}")))).into());
        }
        let asked = self.0.asked(r.at_seq, &r.as_of).await?;
        let (state, seq) = self.0.read()?;
        let all: Vec<pb::Case> = crate::projection::casework::cases(&state, self.0.ledger.policies(), self.0.ledger.calendars(), county, asked.when(seq))
            .iter()
            .filter(|c| auth::may_read_county(&who, Some(c.county)))
            .map(convert::case)
            .collect();
        let (cases, next_page_token) = paged(all, offset, size);
        Ok(stamped(seq, pb::ListCasesResponse { cases, next_page_token, point: asked.point(seq) }))
    }

    async fn get_county_report(&self, req: Request<pb::GetCountyReportRequest>) -> Result<Response<pb::CountyReport>, Status> {
        let caller = self.0.admit(&req)?;
        self.0.reach(req.metadata()).await?;
        let who = caller.principal.clone();
        let r = req.into_inner();
        let county = convert::county(&r.county)?;
        if !auth::may_read_county(&who, Some(county)) {
            return Err(ApiError::denied(format!("{who} may not read county {county}'s report")).into());
        }
        let (from, to) = (convert::date("from", &r.from)?, convert::date("to", &r.to)?);
        if to < from {
            return Err(ApiError::invalid("DATE_ORDER", format!("the period ends ({to}) before it begins ({from})")).into());
        }
        let asked = self.0.asked(r.at_seq, &r.to).await?;
        let (state, seq) = self.0.read()?;
        let at = asked.when(seq).seq;
        let x = crate::projection::report::county_report(&state, self.0.ledger.policies(), self.0.ledger.calendars(), county, from, to, at);
        let mut summary = convert::county_summary(&x.summary);
        summary.point = asked.point(seq);
        Ok(stamped(seq, pb::CountyReport {
            county: county.to_string(),
            from: from.to_string(),
            to: to.to_string(),
            point: asked.point(seq),
            summary: Some(summary),
            wages_paid: format_fen(x.wages_paid),
            workers_paid: x.workers_paid,
            cards_issued: x.cards_issued,
            cards_activated: x.cards_activated,
            cases: convert::casework_figures(&x.cases),
            orders_issued: x.orders.issued,
            orders_complied: x.orders.complied,
            orders_unmet: x.orders.unmet,
            orders_referred: x.orders.referred,
            referrals_filed: x.orders.referrals_filed,
            referrals_convicted: x.orders.referrals_convicted,
            listed: x.listed,
            on_list: x.on_list.iter().map(ToString::to_string).collect(),
            inspections: x.inspections,
            employers_inspected: x.employers_inspected,
            contracts_signed: x.contracts_signed,
            problems: x.problems.iter().map(|(code, (g, ps))| pb::Problem { code: code.clone(), grade: convert::grade(*g).to_owned(), projects: ps.iter().map(ToString::to_string).collect() }).collect(),
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
        let asked = self.0.asked(r.at_seq, &r.as_of).await?;
        let (state, seq) = self.0.read()?;
        let all: Vec<pb::Worker> = views::find_workers(&state, &r.masked_id, project.as_ref(), asked.when(seq))
            .into_iter()
            .filter(|w| w.enrolments.iter().any(|e| auth::may_read_project(&who, &state, &e.project)))
            .map(|w| convert::worker_view(&w))
            .collect();
        let (workers, next_page_token) = paged(all, offset, size);
        Ok(stamped(seq, pb::ListWorkersResponse { workers, next_page_token, point: asked.point(seq) }))
    }

    async fn get_account_history(&self, req: Request<pb::GetAccountHistoryRequest>) -> Result<Response<pb::AccountHistory>, Status> {
        let caller = self.0.admit(&req)?;
        self.0.reach(req.metadata()).await?;
        let who = caller.principal.clone();
        let r = req.into_inner();
        let account = Account::parse(&r.account).map_err(|e| ApiError::invalid("INVALID_ACCOUNT", e))?;
        // The token is the sequence number of the last posting of the previous page.
        let after: u64 = if r.page_token.is_empty() { 0 } else { r.page_token.parse().map_err(|_| ApiError::invalid("INVALID_PAGE_TOKEN", "page_token was not issued by this server"))? };
        let (_, size) = page(r.page_size, "")?;
        let asked = self.0.asked(r.at_seq, &r.as_of).await?;
        let (state, seq) = self.0.read()?;
        may_read_account(&who, &state, &account)?;
        let (page, more) = state.postings.get(&account).map_or((Vec::new(), false), |h| h.page(after, asked.when(seq), size));
        let next_page_token = if more { page.last().map_or(String::new(), |(p, _)| p.seq.to_string()) } else { String::new() };
        let postings = page
            .iter()
            .map(|(p, after)| pb::AccountPosting {
                seq: p.seq,
                date: p.date.to_string(),
                amount: format_fen(p.amount),
                balance_after: format_fen(*after),
                kind: crate::domain::command::Event::NAMES.get(usize::from(p.kind & !crate::projection::history::PAID)).copied().unwrap_or("unknown").to_owned(),
            })
            .collect();
        Ok(stamped(seq, pb::AccountHistory { account: account.to_string(), postings, next_page_token, point: asked.point(seq) }))
    }
}

/// Who may read an account's balance and history: a project's accounts, whoever may
/// read the project; a contractor, its own account; every account, operators and
/// auditors.
fn may_read_account(who: &Principal, state: &crate::projection::state::State, account: &Account) -> Result<(), ApiError> {
    let allowed = match (account, who) {
        (Account::Deposit(p) | Account::Wage(p), _) => auth::may_read_project(who, state, p),
        (Account::Contractor(u), Principal::Contractor(me)) => u == me,
        (_, Principal::Operator | Principal::Auditor) => true,
        _ => false,
    };
    if allowed { Ok(()) } else { Err(ApiError::denied(format!("{who} may not read account {account}"))) }
}

/// A project's flag intervals, for the wire.
fn intervals_pb(state: &crate::projection::state::State, p: &crate::projection::state::Project, policies: &crate::domain::policy::PolicyBook, calendars: &crate::domain::date::CalendarBook, w: crate::projection::when::When) -> Vec<pb::FlagInterval> {
    crate::projection::intervals::flag_intervals(state, p, policies, calendars, w)
        .iter()
        .map(|i| pb::FlagInterval {
            code: i.code.as_str().to_owned(),
            grade: convert::grade(i.grade).to_owned(),
            opened: i.opened.to_string(),
            cleared: i.cleared.map(|d| d.to_string()).unwrap_or_default(),
            cleared_by: i.cleared_by.clone(),
            first: Some(convert::flag(&i.first)),
            last: Some(convert::flag(&i.last)),
        })
        .collect()
}
