//! The county office dashboard: read-only HTML pages and CSV exports over HTTP.
//!
//! Every figure on every page is what `LedgerQuery` answers: the handlers call the same
//! gRPC service implementation in-process, with the visitor's token, so the dashboard
//! shows exactly what the API would and enforces exactly its authorization. Nothing is
//! computed here but layout. Server-side rendered; a few lines of inline JavaScript sort
//! and filter tables and submit the login form.
//!
//! Authentication: a county, auditor or operator token, sent as `Authorization: Bearer`
//! or kept in an `HttpOnly`, `SameSite=Strict` cookie set by the login form. Labels in
//! Chinese and English (`?lang=zh|en`, remembered in a cookie).

mod html;
pub mod report;

use std::future::Future;
use std::sync::Arc;

use axum::extract::{Form, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use tonic::Code;

use crate::api::pb::ledger_query_server::LedgerQuery;
use crate::api::{pb, query::Query as QueryService, Api};

use html::{Lang, Page};

#[derive(Clone)]
struct Dash {
    query: Arc<QueryService>,
    /// For workers' receipts (`GetReceipt`).
    audit: Arc<crate::api::audit::Audit>,
    /// The as-of date of pages that do not name one; `None` = today (CST).
    as_of: Option<String>,
    /// Served over TLS: the token's cookie is `Secure`.
    secure: bool,
}

/// The dashboard's routes; pages without `?as_of=` show figures as of `as_of` (or today).
pub fn router(api: Api, as_of: Option<String>) -> Router {
    router_with(api, as_of, false)
}

/// The routes; `secure`: served over TLS, so the token's cookie is sent only over TLS.
fn router_with(api: Api, as_of: Option<String>, secure: bool) -> Router {
    let dash = Dash { query: Arc::new(QueryService(api.clone())), audit: Arc::new(crate::api::audit::Audit(api)), as_of, secure };
    Router::new()
        .route("/", get(summary_page))
        .route("/login", get(login_page).post(login))
        .route("/logout", get(logout))
        .route("/project/{id}", get(project_page))
        .route("/flags", get(flags_page))
        .route("/workers", get(workers_page))
        .route("/receipt/{seq}", get(receipt_page))
        .route("/receipt/{seq}/proof", get(receipt_file))
        .route("/cases", get(cases_page))
        .route("/report", get(report_page))
        .route("/projects.csv", get(projects_csv))
        .route("/flags.csv", get(flags_csv))
        .route("/summary.csv", get(summary_csv))
        .route("/workers.csv", get(workers_csv))
        .route("/project/{id}/months.csv", get(months_csv))
        .route("/project/{id}/payrolls.csv", get(payrolls_csv))
        .with_state(dash)
}

/// Serves the dashboard on `listener` until `shutdown`: over TLS with `tls`
/// (`api::https`, the server's certificate), else plain HTTP.
///
/// # Errors
/// A listener failure.
pub async fn serve(
    api: Api,
    listener: tokio::net::TcpListener,
    as_of: Option<String>,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let secure = tls.is_some();
    match tls {
        // Each connection with TCP_NODELAY, there too.
        Some(config) => axum::serve(crate::api::https::TlsListener::new(listener, config)?, router_with(api, as_of, secure)).with_graceful_shutdown(shutdown).await,
        None => {
            // As for gRPC (`api::serve`): small answers must not wait on the peer's delayed ACK.
            let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!(error = %e, "TCP_NODELAY on a dashboard connection");
                }
            });
            axum::serve(listener, router_with(api, as_of, secure)).with_graceful_shutdown(shutdown).await
        }
    }
}

fn token(headers: &HeaderMap) -> Option<String> {
    if let Some(v) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        return crate::api::auth::bearer(v).map(str::to_owned);
    }
    cookie(headers, "anxin_token")
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

fn lang(headers: &HeaderMap, q: &Common) -> Lang {
    match q.lang.as_deref().or(cookie(headers, "anxin_lang").as_deref()) {
        Some("en") => Lang::En,
        _ => Lang::Zh,
    }
}

/// Builds a gRPC request carrying the visitor's token.
fn req<T>(headers: &HeaderMap, msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    if let Some(t) = token(headers) {
        if let Ok(v) = format!("Bearer {t}").parse() {
            r.metadata_mut().insert("authorization", v);
        }
    }
    r
}

/// A query's failure as an HTTP answer: no token sends a browser to the login page.
fn fail(s: tonic::Status, lang: Lang, html_page: bool) -> Response {
    let code = match s.code() {
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::InvalidArgument => StatusCode::BAD_REQUEST,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    if html_page && code == StatusCode::UNAUTHORIZED {
        return Redirect::to("/login").into_response();
    }
    if html_page {
        let mut p = Page::new(lang, "error");
        p.para(&format!("{}: {}", code.as_u16(), s.message()));
        return (code, p.finish()).into_response();
    }
    (code, format!("{}\n", s.message())).into_response()
}

#[derive(Deserialize, Default)]
struct Common {
    lang: Option<String>,
    county: Option<String>,
    as_of: Option<String>,
    /// A log position (`?at_seq=`): the ledger as it stood after that record.
    at_seq: Option<u64>,
    masked: Option<String>,
}

fn with_lang_cookie(resp: Response, q: &Common) -> Response {
    match q.lang.as_deref() {
        Some(l @ ("en" | "zh")) => ([(header::SET_COOKIE, format!("anxin_lang={l}; Path=/; SameSite=Strict"))], resp).into_response(),
        _ => resp,
    }
}

async fn login_page(headers: HeaderMap, Query(q): Query<Common>) -> Response {
    html::login(lang(&headers, &q)).into_response()
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(State(d): State<Dash>, Form(f): Form<LoginForm>) -> Response {
    let t: String = f.token.trim().chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    let secure = if d.secure { "; Secure" } else { "" };
    ([(header::SET_COOKIE, format!("anxin_token={t}; Path=/; HttpOnly; SameSite=Strict; Max-Age=28800{secure}"))], Redirect::to("/")).into_response()
}

async fn logout() -> Response {
    ([(header::SET_COOKIE, "anxin_token=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0".to_owned())], Redirect::to("/login")).into_response()
}

async fn all_projects(d: &Dash, headers: &HeaderMap, q: &Common) -> Result<Vec<pb::Project>, tonic::Status> {
    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let r = d
            .query
            .list_projects(req(headers, pb::ListProjectsRequest { at_seq: q.at_seq.unwrap_or(0), county: q.county.clone().unwrap_or_default(), status: 0, as_of: q.as_of.clone().unwrap_or_default(), page_size: 1000, page_token: token }))
            .await?
            .into_inner();
        all.extend(r.projects);
        if r.next_page_token.is_empty() {
            return Ok(all);
        }
        token = r.next_page_token;
    }
}

async fn all_flags(d: &Dash, headers: &HeaderMap, q: &Common, project: &str) -> Result<Vec<pb::Flag>, tonic::Status> {
    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let r = d
            .query
            .list_flags(req(headers, pb::ListFlagsRequest { at_seq: q.at_seq.unwrap_or(0), county: q.county.clone().unwrap_or_default(), project: project.to_owned(), as_of: q.as_of.clone().unwrap_or_default(), page_size: 1000, page_token: token }))
            .await?
            .into_inner();
        all.extend(r.flags);
        if r.next_page_token.is_empty() {
            return Ok(all);
        }
        token = r.next_page_token;
    }
}

/// The county a summary is for: the one asked, else the visitor's own (a county
/// principal), else all (auditors and operators).
async fn summary(d: &Dash, headers: &HeaderMap, q: &Common) -> Result<pb::CountySummary, tonic::Status> {
    let mut county = q.county.clone().unwrap_or_default();
    if county.is_empty() {
        if let Some(t) = token(headers) {
            if let Some(crate::domain::principal::Principal::County(c)) = d.query.0.principals.authenticate(&t) {
                county = c.to_string();
            }
        }
    }
    Ok(d.query.get_county_summary(req(headers, pb::GetCountySummaryRequest { at_seq: q.at_seq.unwrap_or(0), county, as_of: q.as_of.clone().unwrap_or_default() })).await?.into_inner())
}

async fn summary_page(State(d): State<Dash>, headers: HeaderMap, Query(mut q): Query<Common>) -> Response {
    if q.as_of.is_none() {
        q.as_of = d.as_of.clone();
    }
    let l = lang(&headers, &q);
    let s = match summary(&d, &headers, &q).await {
        Ok(s) => s,
        Err(e) => return fail(e, l, true),
    };
    let projects = match all_projects(&d, &headers, &Common { county: Some(s.county.clone()), ..q_clone(&q) }).await {
        Ok(p) => p,
        Err(e) => return fail(e, l, true),
    };
    with_lang_cookie(html::summary(l, &s, &projects).into_response(), &q)
}

fn q_clone(q: &Common) -> Common {
    Common { lang: q.lang.clone(), county: q.county.clone(), as_of: q.as_of.clone(), at_seq: q.at_seq, masked: q.masked.clone() }
}

async fn project_page(State(d): State<Dash>, headers: HeaderMap, Path(id): Path<String>, Query(mut q): Query<Common>) -> Response {
    if q.as_of.is_none() {
        q.as_of = d.as_of.clone();
    }
    let l = lang(&headers, &q);
    let p = match d.query.get_project(req(&headers, pb::GetProjectRequest { at_seq: q.at_seq.unwrap_or(0), project: id.clone(), as_of: q.as_of.clone().unwrap_or_default() })).await {
        Ok(p) => p.into_inner(),
        Err(e) => return fail(e, l, true),
    };
    let h = match d.query.get_project_history(req(&headers, pb::GetProjectHistoryRequest { project: id.clone(), as_of: q.as_of.clone().unwrap_or_default(), at_seq: q.at_seq.unwrap_or(0) })).await {
        Ok(h) => h.into_inner(),
        Err(e) => return fail(e, l, true),
    };
    let mut payrolls = Vec::new();
    for per in &p.payroll_periods {
        match d.query.get_payroll(req(&headers, pb::GetPayrollRequest { at_seq: q.at_seq.unwrap_or(0), project: id.clone(), period: per.clone(), as_of: q.as_of.clone().unwrap_or_default(), page_size: 1, page_token: String::new() })).await {
            Ok(r) => payrolls.push(r.into_inner()),
            Err(e) => return fail(e, l, true),
        }
    }
    with_lang_cookie(html::project(l, &p, &h, &payrolls).into_response(), &q)
}

async fn cases_page(State(d): State<Dash>, headers: HeaderMap, Query(mut q): Query<Common>) -> Response {
    if q.as_of.is_none() {
        q.as_of = d.as_of.clone();
    }
    let l = lang(&headers, &q);
    let s = match summary(&d, &headers, &q).await {
        Ok(s) => s,
        Err(e) => return fail(e, l, true),
    };
    let cases = match d.query.list_cases(req(&headers, pb::ListCasesRequest { county: s.county.clone(), as_of: q.as_of.clone().unwrap_or_default(), at_seq: q.at_seq.unwrap_or(0), page_size: 10_000, page_token: String::new() })).await {
        Ok(r) => r.into_inner().cases,
        Err(e) => return fail(e, l, true),
    };
    // The year to the page's day, for its orders, referrals and credit list.
    let year = pb::GetCountyReportRequest { county: s.county.clone(), from: format!("{}-01-01", &s.as_of[..4.min(s.as_of.len())]), to: s.as_of.clone(), at_seq: q.at_seq.unwrap_or(0) };
    // (A report is of one county: across every county the section is left out.)
    let year = if s.county.is_empty() {
        None
    } else {
        match d.query.get_county_report(req(&headers, year)).await {
            Ok(r) => Some(r.into_inner()),
            Err(e) => return fail(e, l, true),
        }
    };
    with_lang_cookie(html::cases(l, &s, &cases, year.as_ref()).into_response(), &q)
}

#[derive(Deserialize)]
struct ReportQuery {
    from: Option<String>,
    to: Option<String>,
    lang: Option<String>,
    county: Option<String>,
    at_seq: Option<u64>,
}

/// The county's work report for a period, as the printable page `anxin report` writes.
async fn report_page(State(d): State<Dash>, headers: HeaderMap, Query(r): Query<ReportQuery>) -> Response {
    let common = Common { lang: r.lang.clone(), county: r.county.clone(), as_of: r.to.clone(), at_seq: r.at_seq, masked: None };
    let l = lang(&headers, &common);
    let s = match summary(&d, &headers, &common).await {
        Ok(s) => s,
        Err(e) => return fail(e, l, true),
    };
    let to = r.to.clone().or_else(|| d.as_of.clone()).unwrap_or_else(|| s.as_of.clone());
    let from = r.from.clone().unwrap_or_else(|| format!("{}-01-01", &to[..4.min(to.len())]));
    match d.query.get_county_report(req(&headers, pb::GetCountyReportRequest { county: s.county.clone(), from, to, at_seq: r.at_seq.unwrap_or(0) })).await {
        Ok(x) => {
            let rl = if l == html::Lang::En { report::Lang::En } else { report::Lang::Zh };
            axum::response::Html(report::html(&x.into_inner(), rl)).into_response()
        }
        Err(e) => fail(e, l, true),
    }
}

async fn flags_page(State(d): State<Dash>, headers: HeaderMap, Query(mut q): Query<Common>) -> Response {
    if q.as_of.is_none() {
        q.as_of = d.as_of.clone();
    }
    let l = lang(&headers, &q);
    match all_flags(&d, &headers, &q, "").await {
        Ok(f) => with_lang_cookie(html::flags(l, &f).into_response(), &q),
        Err(e) => fail(e, l, true),
    }
}

async fn find_workers(d: &Dash, headers: &HeaderMap, q: &Common) -> Result<Vec<pb::Worker>, tonic::Status> {
    match q.masked.as_deref() {
        None | Some("") => Ok(Vec::new()),
        Some(m) => Ok(d.query.list_workers(req(headers, pb::ListWorkersRequest { at_seq: q.at_seq.unwrap_or(0), masked_id: m.to_owned(), project: String::new(), as_of: q.as_of.clone().unwrap_or_default(), page_size: 1000, page_token: String::new() })).await?.into_inner().workers),
    }
}

async fn workers_page(State(d): State<Dash>, headers: HeaderMap, Query(mut q): Query<Common>) -> Response {
    if q.as_of.is_none() {
        q.as_of = d.as_of.clone();
    }
    let l = lang(&headers, &q);
    // Check the token even for the empty form.
    if let Err(e) = d.query.get_county_summary(req(&headers, pb::GetCountySummaryRequest { at_seq: q.at_seq.unwrap_or(0), county: String::new(), as_of: String::new() })).await {
        if e.code() == Code::Unauthenticated {
            return fail(e, l, true);
        }
    }
    match find_workers(&d, &headers, &q).await {
        Ok(w) => with_lang_cookie(html::workers(l, q.masked.as_deref().unwrap_or(""), &w).into_response(), &q),
        Err(e) => fail(e, l, true),
    }
}

/// A payout's offline receipt, against the latest witnessed checkpoint if there is one
/// that covers it, else the latest.
async fn fetch_receipt(d: &Dash, headers: &HeaderMap, seq: u64) -> Result<pb::Receipt, tonic::Status> {
    use crate::api::pb::ledger_audit_server::LedgerAudit as _;
    let ask = |witnessed| req(headers, pb::GetReceiptRequest { first_seq: seq, last_seq: seq, witnessed });
    match d.audit.get_receipt(ask(true)).await {
        Ok(r) => Ok(r.into_inner()),
        Err(e) if e.code() == Code::FailedPrecondition => Ok(d.audit.get_receipt(ask(false)).await?.into_inner()),
        Err(e) => Err(e),
    }
}

/// A worker's receipt for one payout: the QR code to print or show, and the file.
async fn receipt_page(State(d): State<Dash>, headers: HeaderMap, Path(seq): Path<u64>, Query(q): Query<Common>) -> Response {
    let l = lang(&headers, &q);
    match fetch_receipt(&d, &headers, seq).await {
        Ok(r) => with_lang_cookie(html::receipt(l, seq, &r.proof).into_response(), &q),
        Err(e) => fail(e, l, true),
    }
}

/// The receipt as a file (c2sp.org/tlog-proof), for `anxin check-receipt --proof`.
async fn receipt_file(State(d): State<Dash>, headers: HeaderMap, Path(seq): Path<u64>, Query(q): Query<Common>) -> Response {
    match fetch_receipt(&d, &headers, seq).await {
        Ok(r) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8".to_owned()), (header::CONTENT_DISPOSITION, format!("attachment; filename=\"receipt-{seq}.tlog-proof\""))], r.proof).into_response(),
        Err(e) => fail(e, lang(&headers, &q), false),
    }
}

/// CSV as UTF-8 with a byte-order mark, so that spreadsheet software opens Chinese text.
fn csv_response(name: &str, header_row: &[&str], rows: Vec<Vec<String>>) -> Response {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(header_row);
    for r in rows {
        let _ = w.write_record(&r);
    }
    let mut body = vec![0xEF, 0xBB, 0xBF];
    body.extend(w.into_inner().unwrap_or_default());
    ([(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()), (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\""))], body).into_response()
}

async fn projects_csv(State(d): State<Dash>, headers: HeaderMap, Query(mut q): Query<Common>) -> Response {
    if q.as_of.is_none() {
        q.as_of = d.as_of.clone();
    }
    let l = lang(&headers, &q);
    match all_projects(&d, &headers, &q).await {
        Ok(ps) => csv_response(
            "projects.csv",
            &["project", "name", "county", "status", "grade", "wage_balance", "deposit_required", "deposit_cash", "letters_valid", "progress_total", "wage_share_total", "wages_paid_total", "owed", "overdue", "workers_enrolled", "workers_on_site", "workers_with_contract", "flags"],
            ps.iter()
                .map(|p| {
                    vec![
                        p.project.clone(), p.name.clone(), p.county.clone(), html::status_key(p.status).into(), html::grade(p).into(), p.wage_balance.clone(),
                        p.deposit_required.clone(), p.deposit_cash.clone(), p.letters_valid.clone(), p.progress_total.clone(), p.wage_share_total.clone(),
                        p.wages_paid_total.clone(), p.owed.clone(), p.overdue.clone(), p.workers_enrolled.to_string(), p.workers_on_site.to_string(),
                        p.workers_with_contract.to_string(), p.flags.iter().map(|f| f.code.clone()).collect::<Vec<_>>().join(" "),
                    ]
                })
                .collect(),
        ),
        Err(e) => fail(e, l, false),
    }
}

async fn flags_csv(State(d): State<Dash>, headers: HeaderMap, Query(mut q): Query<Common>) -> Response {
    if q.as_of.is_none() {
        q.as_of = d.as_of.clone();
    }
    let l = lang(&headers, &q);
    match all_flags(&d, &headers, &q, "").await {
        Ok(fs) => csv_response(
            "flags.csv",
            &["project", "code", "grade", "gap", "count", "since", "evidence", "detail", "detail_zh"],
            fs.iter()
                .map(|f| vec![f.project.clone(), f.code.clone(), f.grade.clone(), f.gap.clone(), f.count.to_string(), f.since.clone(), f.evidence.iter().map(u64::to_string).collect::<Vec<_>>().join(" "), f.detail.clone(), f.detail_zh.clone()])
                .collect(),
        ),
        Err(e) => fail(e, l, false),
    }
}

async fn summary_csv(State(d): State<Dash>, headers: HeaderMap, Query(mut q): Query<Common>) -> Response {
    if q.as_of.is_none() {
        q.as_of = d.as_of.clone();
    }
    let l = lang(&headers, &q);
    match summary(&d, &headers, &q).await {
        Ok(s) => csv_response("summary.csv", &["figure", "value"], html::summary_rows(l, &s).into_iter().map(|(k, v, _)| vec![k, v]).collect()),
        Err(e) => fail(e, l, false),
    }
}

async fn workers_csv(State(d): State<Dash>, headers: HeaderMap, Query(mut q): Query<Common>) -> Response {
    if q.as_of.is_none() {
        q.as_of = d.as_of.clone();
    }
    let l = lang(&headers, &q);
    match find_workers(&d, &headers, &q).await {
        Ok(ws) => csv_response(
            "workers.csv",
            &["masked_id", "worker_ref", "paid_total", "owed_total", "projects"],
            ws.iter().map(|w| vec![w.masked_id.clone(), w.worker_ref.clone(), w.paid_total.clone(), w.owed_total.clone(), w.enrolments.iter().map(|e| e.project.clone()).collect::<Vec<_>>().join(" ")]).collect(),
        ),
        Err(e) => fail(e, l, false),
    }
}

async fn months_csv(State(d): State<Dash>, headers: HeaderMap, Path(id): Path<String>, Query(mut q): Query<Common>) -> Response {
    if q.as_of.is_none() {
        q.as_of = d.as_of.clone();
    }
    let l = lang(&headers, &q);
    match d.query.get_project_history(req(&headers, pb::GetProjectHistoryRequest { project: id.clone(), as_of: q.as_of.clone().unwrap_or_default(), at_seq: q.at_seq.unwrap_or(0) })).await {
        Ok(h) => csv_response(
            &format!("{id}-months.csv"),
            &["period", "wage_in", "wage_out", "wage_balance_end", "progress", "payroll_due", "payroll_paid", "deposit_required", "deposit_cover", "owed", "overdue", "flags_red", "flags_yellow"],
            h.into_inner()
                .months
                .iter()
                .map(|m| {
                    vec![
                        m.period.clone(),
                        m.wage_in.clone(),
                        m.wage_out.clone(),
                        m.wage_balance_end.clone(),
                        m.progress.clone(),
                        m.payroll_due.clone(),
                        m.payroll_paid.clone(),
                        m.deposit_required.clone(),
                        m.deposit_cover.clone(),
                        m.owed.clone(),
                        m.overdue.clone(),
                        m.flags_red.to_string(),
                        m.flags_yellow.to_string(),
                    ]
                })
                .collect(),
        ),
        Err(e) => fail(e, l, false),
    }
}

async fn payrolls_csv(State(d): State<Dash>, headers: HeaderMap, Path(id): Path<String>, Query(mut q): Query<Common>) -> Response {
    if q.as_of.is_none() {
        q.as_of = d.as_of.clone();
    }
    let l = lang(&headers, &q);
    let p = match d.query.get_project(req(&headers, pb::GetProjectRequest { at_seq: q.at_seq.unwrap_or(0), project: id.clone(), as_of: q.as_of.clone().unwrap_or_default() })).await {
        Ok(p) => p.into_inner(),
        Err(e) => return fail(e, l, false),
    };
    let mut rows = Vec::new();
    for per in &p.payroll_periods {
        match d.query.get_payroll(req(&headers, pb::GetPayrollRequest { at_seq: q.at_seq.unwrap_or(0), project: id.clone(), period: per.clone(), as_of: q.as_of.clone().unwrap_or_default(), page_size: 1000, page_token: String::new() })).await {
            Ok(r) => {
                let r = r.into_inner();
                for line in &r.lines {
                    rows.push(vec![r.period.clone(), r.due_date.clone(), line.masked_id.clone(), line.employer.clone(), line.days.to_string(), line.due.clone(), line.paid.clone()]);
                }
            }
            Err(e) => return fail(e, l, false),
        }
    }
    csv_response(&format!("{id}-payrolls.csv"), &["period", "due_date", "masked_id", "employer", "days", "due", "paid"], rows)
}
