//! HTML of the dashboard: labels in two languages, tables that sort and filter, and a
//! chart drawn as inline SVG. Everything shown is a field of a `LedgerQuery` answer.

use axum::response::Html;

use crate::api::pb;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

/// A label in the page's language.
pub fn t(l: Lang, key: &str) -> &'static str {
    let (zh, en) = match key {
        "title" => ("安薪 · 农民工工资监管", "Anxin · migrant wage escrow"),
        "point" => ("数据截至", "As of"),
        "reconciliation" => ("银行对账", "Reconciliation with the banks"),
        "accounts" => ("对账账户", "Accounts attested"),
        "agreed" => ("相符", "Agree"),
        "differ" => ("不符", "Differ"),
        "late" => ("对账单逾期", "Statement late"),
        "account" => ("账户", "Account"),
        "bank_balance" => ("银行余额", "Bank's balance"),
        "ledger_balance" => ("账本余额", "Ledger's balance"),
        "last_agreed" => ("最近相符", "Last agreed"),
        "wage_account" => ("工资专户", "wage account"),
        "deposit_account" => ("保证金账户", "deposit account"),
        "record" => ("第几条记录", "record"),
        "flag_intervals" => ("预警起止", "When each flag was open"),
        "opened" => ("出现日期", "Opened"),
        "cleared" => ("消除日期", "Cleared"),
        "cleared_by" => ("消除依据(记录序号)", "Cleared by (record seq)"),
        "still_open" => ("仍未消除", "still open"),
        "registered_on" => ("登记日期", "Registered"),
        "funding" => ("资金来源", "Funding"),
        "government" => ("政府投资", "government-invested"),
        "other" => ("社会投资", "other"),
        "unstated" => ("未填报", "not stated"),
        "deposit_basis" => ("保证金", "Deposit"),
        "by_price" => ("按合同价确定", "by contract price"),
        "required" => ("须缴纳", "required"),
        "exempt" => ("免缴", "exempt"),
        "letters" => ("银行保函", "Guarantee letters"),
        "letter_no" => ("保函编号", "Letter"),
        "bank" => ("银行", "Bank"),
        "amount" => ("金额", "Amount"),
        "valid" => ("有效期", "Valid"),
        "issued_on" => ("开具日期", "Issued"),
        "applicant" => ("申请人", "Applicant"),
        "beneficiary" => ("受益人", "Beneficiary"),
        "drawdowns" => ("保证金动用", "Deposit drawdowns"),
        "order_no" => ("指令书编号", "Order"),
        "order_date" => ("指令日期", "Ordered"),
        "date" => ("支付日期", "Paid"),
        "reason" => ("事由", "Reason"),
        "replenished" => ("已补足", "Made good"),
        "payroll_no" => ("工资表编号", "Payroll no."),
        "submitted_on" => ("报送日期", "Submitted"),
        "summary" => ("县域概况", "County summary"),
        "projects" => ("项目", "Projects"),
        "flags" => ("预警", "Flags"),
        "cases" => ("案件办理", "Cases"),
        "report" => ("工作报告", "Work report"),
        "case_no" => ("案件编号", "Case"),
        "source" => ("来源", "Source"),
        "received_on" => ("收到日期", "Received"),
        "decide_by" => ("受理时限", "Decide by"),
        "close_by" => ("办结时限", "Close by"),
        "recovered" => ("追回工资", "Recovered"),
        "casework" => ("按来源统计", "By source"),
        "received" => ("收到", "Received"),
        "closed" => ("办结", "Closed"),
        "closure_rate" => ("办结率", "Closure rate"),
        "report_period" => ("报告期", "Period"),
        "enforcement" => ("指令、移送与失信名单(本年)", "Orders, referrals and the credit list (this year)"),
        "credit_list" => ("失信联合惩戒名单(在列)", "On the credit list"),
        "orders_line" => ("限期整改指令书", "Orders to pay"),
        "workers" => ("工人查询", "Worker lookup"),
        "project" => ("项目", "Project"),
        "name" => ("名称", "Name"),
        "status" => ("状态", "Status"),
        "active" => ("在建", "active"),
        "suspended" => ("停工", "suspended"),
        "completed" => ("竣工", "completed"),
        "grade" => ("预警等级", "Alert"),
        "wage_balance" => ("专户余额", "Wage account balance"),
        "owed" => ("应付未付", "Owed"),
        "overdue" => ("逾期欠薪", "Overdue"),
        "on_site" => ("在场人数", "On site"),
        "deposit" => ("保证金覆盖", "Deposit cover"),
        "contract_rate" => ("劳动合同签订率", "Labour contract rate"),
        "accounts_bound" => ("专户绑定", "Wage accounts bound"),
        "deposit_rate" => ("保证金覆盖项目", "Projects with deposit cover"),
        "wages_paid" => ("本年代发工资", "Wages paid this year"),
        "workers_paid" => ("发放人数", "Workers paid"),
        "arrears" => ("欠薪金额", "Arrears"),
        "arrears_workers" => ("涉及人数", "Workers owed"),
        "registered" => ("实名登记人数", "Workers registered"),
        "projects_total" => ("项目总数", "Projects"),
        "open_flags" => ("在办预警", "Open flags"),
        "code" => ("类型", "Code"),
        "gap" => ("缺口", "Gap"),
        "since" => ("起始日期", "Since"),
        "evidence" => ("证据(记录序号)", "Evidence (record seq)"),
        "detail" => ("说明", "Detail"),
        "chart" => ("专户余额与应发工资(按月)", "Wage account balance vs payroll due, by month"),
        "payrolls" => ("工资支付表", "Payrolls"),
        "period" => ("月份", "Month"),
        "due" => ("应发", "Due"),
        "paid" => ("已发", "Paid"),
        "due_date" => ("支付期限", "Due date"),
        "filter" => ("筛选…", "Filter…"),
        "export" => ("导出CSV", "Export CSV"),
        "login" => ("登录", "Sign in"),
        "token" => ("访问令牌(县治欠办或审计)", "Access token (county office or auditor)"),
        "masked" => ("脱敏身份证号,如 6201**********123X", "Masked national ID, e.g. 6201**********123X"),
        "search" => ("查询", "Search"),
        "paid_total" => ("累计已发", "Paid"),
        "owed_total" => ("应付未付", "Owed"),
        "enrolments" => ("参建项目", "Projects"),
        "payments" => ("工资发放(可出具凭证)", "Payments (with receipts)"),
        "receipt" => ("工资发放凭证", "Payment receipt"),
        "receipt_help" => ("此凭证可离线核验:用 anxin check-receipt --proof 核对账本公钥(及见证方策略),无需信任县里的服务器。", "This receipt can be checked offline with anxin check-receipt --proof, the ledger's pinned key and the witness policy: nobody needs to trust the county's server."),
        "receipt_too_large" => ("凭证过长,无法生成二维码,请下载文件。", "The receipt is too long for a QR code: download the file."),
        "download" => ("下载凭证文件", "Download the receipt file"),
        "progress" => ("工程款", "Progress payments"),
        "wage_share" => ("拨入专户", "To wage account"),
        "ratio" => ("人工费比例", "Labour ratio"),
        "contractor" => ("总包单位", "General contractor"),
        "error" => ("错误", "Error"),
        "none" => ("无", "none"),
        "balance_line" => ("月末余额", "Balance at month end"),
        "due_bars" => ("当月应发工资", "Payroll due"),
        "logout" => ("退出", "Sign out"),
        _ => ("?", "?"),
    };
    match l {
        Lang::Zh => zh,
        Lang::En => en,
    }
}

pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

pub fn status_key(s: i32) -> &'static str {
    match pb::ProjectStatus::try_from(s) {
        Ok(pb::ProjectStatus::Active) => "active",
        Ok(pb::ProjectStatus::Suspended) => "suspended",
        Ok(pb::ProjectStatus::Completed) => "completed",
        _ => "?",
    }
}

/// Red if any red flag, amber (yellow) if any flag, else green.
pub fn grade(p: &pb::Project) -> &'static str {
    if p.flags.iter().any(|f| f.grade == "red") {
        "red"
    } else if p.flags.is_empty() {
        "green"
    } else {
        "amber"
    }
}

const STYLE: &str = "body{font-family:system-ui,'Noto Sans CJK SC','PingFang SC',sans-serif;margin:0;color:#1d2330;background:#f5f6f8}\
header{background:#0f4c81;color:#fff;padding:10px 24px;display:flex;gap:24px;align-items:center}header a{color:#fff;text-decoration:none}\
main{padding:16px 24px}h1{font-size:20px;margin:0}h2{font-size:17px;margin:18px 0 8px}\
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(190px,1fr));gap:10px}.card{background:#fff;border-radius:6px;padding:10px 12px;box-shadow:0 1px 2px #0002}\
.card b{display:block;font-size:20px;margin-top:4px}table{border-collapse:collapse;background:#fff;width:100%;font-size:13px}th,td{padding:5px 8px;border-bottom:1px solid #e3e6ea;text-align:left}\
th{cursor:pointer;background:#eef1f5}td.n{text-align:right;font-variant-numeric:tabular-nums}.dot{display:inline-block;width:11px;height:11px;border-radius:50%}\
.red{background:#d93025}.amber{background:#f5a623}.green{background:#1e8e3e}.tag{padding:1px 6px;border-radius:3px;color:#fff;font-size:12px}\
input{padding:5px 8px;margin:6px 0;min-width:260px}.muted{color:#667}";

const SCRIPT: &str = "document.querySelectorAll('table.sortable').forEach(function(t){t.querySelectorAll('th').forEach(function(th,i){th.onclick=function(){\
var rows=Array.from(t.tBodies[0].rows),asc=th.dataset.asc!=='1';th.dataset.asc=asc?'1':'0';rows.sort(function(a,b){var x=a.cells[i].dataset.v||a.cells[i].innerText,y=b.cells[i].dataset.v||b.cells[i].innerText;\
var nx=parseFloat(x.replace(/,/g,'')),ny=parseFloat(y.replace(/,/g,''));var c=(!isNaN(nx)&&!isNaN(ny))?nx-ny:x.localeCompare(y);return asc?c:-c});rows.forEach(function(r){t.tBodies[0].appendChild(r)})}})});\
document.querySelectorAll('input.filter').forEach(function(f){f.oninput=function(){var q=f.value.toLowerCase();document.querySelectorAll(f.dataset.table+' tbody tr').forEach(function(r){r.style.display=r.innerText.toLowerCase().indexOf(q)<0?'none':''})}});";

pub struct Page {
    lang: Lang,
    body: String,
}

impl Page {
    pub fn new(lang: Lang, title_key: &str) -> Page {
        let mut p = Page { lang, body: String::new() };
        let other = if lang == Lang::Zh { ("en", "English") } else { ("zh", "中文") };
        p.body.push_str(&format!(
            "<header><h1>{}</h1><a href=\"/\">{}</a><a href=\"/flags\">{}</a><a href=\"/workers\">{}</a><a href=\"/cases\">{}</a><span style=\"flex:1\"></span><a href=\"?lang={}\">{}</a><a href=\"/logout\">{}</a></header><main><h2>{}</h2>",
            t(lang, "title"), t(lang, "summary"), t(lang, "flags"), t(lang, "workers"), t(lang, "cases"), other.0, other.1, t(lang, "logout"), t(lang, title_key)
        ));
        p
    }

    pub fn para(&mut self, s: &str) {
        self.body.push_str(&format!("<p>{}</p>", esc(s)));
    }

    pub fn raw(&mut self, s: &str) {
        self.body.push_str(s);
    }

    pub fn h2(&mut self, key: &str) {
        let h = format!("<h2>{}</h2>", t(self.lang, key));
        self.body.push_str(&h);
    }

    /// A sortable, filterable table; cells are already escaped HTML.
    pub fn table(&mut self, id: &str, headers: &[&str], rows: &[Vec<String>], csv: Option<&str>) {
        let l = self.lang;
        self.body.push_str(&format!("<input class=\"filter\" data-table=\"#{id}\" placeholder=\"{}\">", t(l, "filter")));
        if let Some(href) = csv {
            self.body.push_str(&format!(" <a href=\"{href}\">{}</a>", t(l, "export")));
        }
        self.body.push_str(&format!("<table id=\"{id}\" class=\"sortable\"><thead><tr>"));
        for h in headers {
            self.body.push_str(&format!("<th>{}</th>", t(l, h)));
        }
        self.body.push_str("</tr></thead><tbody>");
        for r in rows {
            self.body.push_str("<tr>");
            for c in r {
                self.body.push_str(c);
            }
            self.body.push_str("</tr>");
        }
        self.body.push_str("</tbody></table>");
    }

    pub fn finish(self) -> Html<String> {
        let lang = if self.lang == Lang::Zh { "zh-CN" } else { "en" };
        Html(format!(
            "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>{}</title><style>{STYLE}</style></head><body>{}</main><script>{SCRIPT}</script></body></html>",
            t(self.lang, "title"),
            self.body
        ))
    }
}

fn td(s: &str) -> String {
    format!("<td>{}</td>", esc(s))
}

fn num(s: &str) -> String {
    format!("<td class=\"n\">{}</td>", esc(s))
}

fn dot(g: &str) -> String {
    format!("<td data-v=\"{}\"><span class=\"dot {g}\" title=\"{g}\"></span> {g}</td>", match g { "red" => 0, "amber" => 1, _ => 2 })
}

pub fn login(l: Lang) -> Html<String> {
    let mut p = Page::new(l, "login");
    p.raw(&format!(
        "<form method=\"post\" action=\"/login\" id=\"login\"><label>{}<br><input name=\"token\" type=\"password\" autocomplete=\"off\"></label> <button>{}</button></form>\
         <script>if(location.hash.length>1){{var f=document.getElementById('login');f.token.value=decodeURIComponent(location.hash.slice(1));history.replaceState(null,'','/login');f.submit();}}</script>",
        t(l, "token"),
        t(l, "login")
    ));
    p.finish()
}

fn pct(num: u32, den: u32) -> String {
    if den == 0 {
        return "–".into();
    }
    let bp = u64::from(num) * 10_000 / u64::from(den);
    format!("{}.{:02}%", bp / 100, bp % 100)
}

/// (label, value) rows of a county summary, as shown and as exported.
pub fn summary_rows(l: Lang, s: &pb::CountySummary) -> Vec<(String, String)> {
    vec![
        (t(l, "projects_total").into(), format!("{} ({} {}, {} {}, {} {})", s.projects_total, s.projects_active, t(l, "active"), s.projects_completed, t(l, "completed"), s.projects_suspended, t(l, "suspended"))),
        (t(l, "registered").into(), s.workers_registered.to_string()),
        (t(l, "on_site").into(), s.workers_on_site.to_string()),
        (t(l, "contract_rate").into(), format!("{} ({}/{})", pct(s.enrolments_with_contract, s.enrolments), s.enrolments_with_contract, s.enrolments)),
        (t(l, "accounts_bound").into(), format!("{} ({}/{})", pct(s.wage_accounts_bound, s.projects_total), s.wage_accounts_bound, s.projects_total)),
        (t(l, "deposit_rate").into(), format!("{} ({}/{})", pct(s.deposit_covered_projects, s.deposit_required_projects), s.deposit_covered_projects, s.deposit_required_projects)),
        (t(l, "wages_paid").into(), format!("¥{}", s.wages_paid_year)),
        (t(l, "workers_paid").into(), s.workers_paid_year.to_string()),
        (t(l, "arrears").into(), format!("¥{}", s.arrears)),
        (t(l, "arrears_workers").into(), s.arrears_workers.to_string()),
        (t(l, "open_flags").into(), format!("{} red, {} yellow", s.flags_red, s.flags_yellow)),
    ]
}

/// "As of D, record N (of H)": which point an answer reflects.
pub fn point_text(l: Lang, point: &Option<pb::Point>) -> String {
    match point {
        Some(pt) if pt.at_seq < pt.head_seq => format!("{} {} · {} {} / {}", t(l, "point"), esc(&pt.as_of), t(l, "record"), pt.at_seq, pt.head_seq),
        Some(pt) => format!("{} {} · {} {}", t(l, "point"), esc(&pt.as_of), t(l, "record"), pt.at_seq),
        None => String::new(),
    }
}

pub fn summary(l: Lang, s: &pb::CountySummary, projects: &[pb::Project]) -> Html<String> {
    let mut p = Page::new(l, "summary");
    p.raw(&format!("<p class=\"muted\" id=\"point\">{} · {} · {}</p><div class=\"cards\" id=\"summary\">", if s.county.is_empty() { "*" } else { &s.county }, point_text(l, &s.point), "<a href=\"/summary.csv\">CSV</a>"));
    for (k, v) in summary_rows(l, s) {
        p.raw(&format!("<div class=\"card\">{}<b>{}</b></div>", esc(&k), esc(&v)));
    }
    p.raw("</div>");
    if !s.reconciliation.is_empty() {
        p.h2("reconciliation");
        let rows: Vec<Vec<String>> = s
            .reconciliation
            .iter()
            .map(|r| vec![td(&r.bank), num(&r.accounts.to_string()), num(&r.agreed.to_string()), num(&r.differ.to_string()), num(&r.late.to_string()), dot(if r.differ > 0 { "red" } else if r.late > 0 { "amber" } else { "green" })])
            .collect();
        p.table("reconciliation", &["bank", "accounts", "agreed", "differ", "late", "status"], &rows, None);
    }
    p.h2("projects");
    let rows: Vec<Vec<String>> = projects
        .iter()
        .map(|x| {
            vec![
                format!("<td><a href=\"/project/{0}\">{0}</a></td>", esc(&x.project)),
                td(&x.name),
                td(t(l, status_key(x.status))),
                dot(grade(x)),
                num(&x.wage_balance),
                num(&x.owed),
                num(&x.overdue),
                num(&format!("{} + {} / {}", x.deposit_cash, x.letters_valid, x.deposit_required)),
                num(&x.workers_on_site.to_string()),
                td(&x.flags.iter().map(|f| f.code.as_str()).collect::<Vec<_>>().join(" ")),
            ]
        })
        .collect();
    p.table("projects", &["project", "name", "status", "grade", "wage_balance", "owed", "overdue", "deposit", "on_site", "flags"], &rows, Some("/projects.csv"));
    p.finish()
}

/// The county's cases and its casework by source, with the work report's period form.
pub fn cases(l: Lang, s: &pb::CountySummary, cs: &[pb::Case], year: Option<&pb::CountyReport>) -> Html<String> {
    let mut p = Page::new(l, "cases");
    p.raw(&format!(
        "<form method=\"get\" action=\"/report\">{}: <input name=\"from\" value=\"{}-01-01\" size=\"10\"> – <input name=\"to\" value=\"{}\" size=\"10\"><input type=\"hidden\" name=\"lang\" value=\"{}\"> <button>{}</button></form>",
        t(l, "report_period"),
        esc(&s.as_of[..4.min(s.as_of.len())]),
        esc(&s.as_of),
        if l == Lang::Zh { "zh" } else { "en" },
        t(l, "report")
    ));
    p.h2("casework");
    let rows: Vec<Vec<String>> = s
        .casework
        .iter()
        .map(|f| {
            let rate = super::report::rate(f.closed, f.received);
            vec![td(source_name(l, &f.source)), num(&f.received.to_string()), num(&f.closed.to_string()), num(&rate), num(&f.recovered), num(&f.workers_paid.to_string())]
        })
        .collect();
    p.table("casework", &["source", "received", "closed", "closure_rate", "recovered", "workers_paid"], &rows, None);
    p.h2("cases");
    let rows: Vec<Vec<String>> = cs
        .iter()
        .map(|c| {
            let status = if !c.overdue_grade.is_empty() { if c.overdue_grade == "red" { "red" } else { "amber" } } else { "green" };
            let project = if c.project.is_empty() { "<td></td>".to_owned() } else { format!("<td><a href=\"/project/{0}\">{0}</a></td>", esc(&c.project)) };
            let source = pb::CaseSource::try_from(c.source).map(|x| x.as_str_name().trim_start_matches("CASE_SOURCE_").to_lowercase()).unwrap_or_default();
            vec![td(&c.case_no), td(source_name(l, &source)), td(&c.received_on), project, td(case_status(l, &c.status)), td(&c.decide_by), td(&c.close_by), num(&c.recovered), num(&c.workers_paid.to_string()), dot(status)]
        })
        .collect();
    p.table("case-list", &["case_no", "source", "received_on", "project", "status", "decide_by", "close_by", "recovered", "workers_paid", "grade"], &rows, None);
    // The year's orders and referrals, and who is on the credit list (their new projects
    // hold the deposit at the raised rate).
    let Some(year) = year else { return p.finish() };
    p.h2("enforcement");
    let orders = if l == Lang::Zh {
        format!(
            "下达 {} 份，已履行 {} 份，逾期未履行 {} 份；移送公安机关 {} 件（立案 {} 件，判决 {} 件）",
            year.orders_issued, year.orders_complied, year.orders_unmet, year.orders_referred, year.referrals_filed, year.referrals_convicted
        )
    } else {
        format!(
            "{} issued, {} complied with, {} unmet; {} referred to the police ({} opened by the police, {} convicted)",
            year.orders_issued, year.orders_complied, year.orders_unmet, year.orders_referred, year.referrals_filed, year.referrals_convicted
        )
    };
    p.raw(&format!("<p id=\"orders\">{}: {}</p>", t(l, "orders_line"), esc(&orders)));
    let listed = if year.on_list.is_empty() { t(l, "none").to_owned() } else { year.on_list.iter().map(|u| esc(u)).collect::<Vec<_>>().join(", ") };
    p.raw(&format!("<p id=\"credit-list\">{}: {}</p>", t(l, "credit_list"), listed));
    p.finish()
}

/// A case source as the report names it, in the page's language.
fn source_name(l: Lang, source: &str) -> &str {
    super::report::source_name(source, if l == Lang::Zh { super::report::Lang::Zh } else { super::report::Lang::En })
}

/// A case's status in the page's language.
fn case_status(l: Lang, status: &str) -> &str {
    match (l, status) {
        (Lang::Zh, "received") => "待受理",
        (Lang::Zh, "accepted") => "已受理",
        (Lang::Zh, "declined") => "不予受理",
        (Lang::Zh, "closed") => "已办结",
        (_, other) => other,
    }
}

fn flag_rows(fs: &[pb::Flag]) -> Vec<Vec<String>> {
    fs.iter()
        .map(|f| {
            let g = if f.grade == "red" { "red" } else { "amber" };
            vec![
                if f.project.is_empty() { format!("<td>{}</td>", esc(&f.case_no)) } else { format!("<td><a href=\"/project/{0}\">{0}</a></td>", esc(&f.project)) },
                format!("<td><span class=\"tag {g}\">{}</span></td>", esc(&f.code)),
                dot(g),
                num(&f.gap),
                td(&f.since),
                format!("<td class=\"evidence\">{}</td>", f.evidence.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")),
                td(&f.detail),
            ]
        })
        .collect()
}

pub fn flags(l: Lang, fs: &[pb::Flag]) -> Html<String> {
    let mut p = Page::new(l, "flags");
    p.table("flags", &["project", "code", "grade", "gap", "since", "evidence", "detail"], &flag_rows(fs), Some("/flags.csv"));
    p.finish()
}

/// The wage account balance at each month end (line) against the payroll due for the
/// month (bars), as inline SVG.
fn chart(l: Lang, h: &pb::ProjectHistory) -> String {
    let fen = |s: &str| -> i64 {
        let (a, b) = s.split_once('.').unwrap_or((s, "0"));
        a.parse::<i64>().unwrap_or(0) * 100 + b.parse::<i64>().unwrap_or(0) * if a.starts_with('-') { -1 } else { 1 }
    };
    let months = &h.months;
    let (w, hgt, pad) = (760i64, 260i64, 40i64);
    let max = months.iter().flat_map(|m| [fen(&m.wage_balance_end), fen(&m.payroll_due)]).max().unwrap_or(1).max(1);
    let n = months.len().max(1) as i64;
    let step = (w - 2 * pad) / n;
    let y = |v: i64| hgt - pad - (v.max(0) as i128 * (hgt - 2 * pad) as i128 / max as i128) as i64;
    let mut svg = format!("<svg id=\"chart\" role=\"img\" aria-label=\"{}\" width=\"{w}\" height=\"{hgt}\" style=\"background:#fff;border-radius:6px\">", t(l, "chart"));
    svg.push_str(&format!("<line x1=\"{pad}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\" stroke=\"#999\"/>", hgt - pad, w - pad));
    let mut pts = Vec::new();
    for (i, m) in months.iter().enumerate() {
        let x = pad + i as i64 * step;
        let due = fen(&m.payroll_due);
        svg.push_str(&format!("<rect class=\"due\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#9cc3e6\"><title>{} {}: {}</title></rect>", x + 3, y(due), (step - 6).max(1), hgt - pad - y(due), esc(&m.period), t(l, "due_bars"), esc(&m.payroll_due)));
        pts.push(format!("{},{}", x + step / 2, y(fen(&m.wage_balance_end))));
        if i % 2 == 0 || n <= 12 {
            svg.push_str(&format!("<text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\">{}</text>", x + step / 2, hgt - pad + 14, esc(&m.period)));
        }
    }
    svg.push_str(&format!("<polyline class=\"balance\" points=\"{}\" fill=\"none\" stroke=\"#d93025\" stroke-width=\"2\"/>", pts.join(" ")));
    svg.push_str(&format!("<text x=\"{pad}\" y=\"16\" font-size=\"11\" fill=\"#d93025\">— {}</text><text x=\"{}\" y=\"16\" font-size=\"11\" fill=\"#3b7fc4\">▮ {}</text><text x=\"{}\" y=\"16\" font-size=\"11\">max ¥{}</text></svg>", t(l, "balance_line"), pad + 200, t(l, "due_bars"), w - 200, max / 100));
    svg
}

pub fn project(l: Lang, x: &pb::Project, h: &pb::ProjectHistory, payrolls: &[pb::Payroll]) -> Html<String> {
    let mut p = Page::new(l, "project");
    p.raw(&format!("<p><b>{}</b> {} · {} · {} {} · <span class=\"dot {g}\"></span> {g}</p>", esc(&x.project), esc(&x.name), t(l, status_key(x.status)), t(l, "contractor"), esc(&x.general_contractor), g = grade(x)));
    let basis = match pb::DepositBasis::try_from(x.deposit_basis) {
        Ok(pb::DepositBasis::Required) => t(l, "required").to_owned(),
        Ok(pb::DepositBasis::Exempt) => format!("{} ({})", t(l, "exempt"), esc(&x.deposit_exemption_basis)),
        _ => t(l, "by_price").to_owned(),
    };
    let funding = match pb::Funding::try_from(x.funding) {
        Ok(pb::Funding::Government) => "government",
        Ok(pb::Funding::Other) => "other",
        _ => "unstated",
    };
    p.raw(&format!(
        "<p class=\"muted\" id=\"point\">{} · {} {} · {} {} · {} {}</p>",
        point_text(l, &x.point),
        t(l, "registered_on"),
        esc(&x.registered_on),
        t(l, "funding"),
        t(l, funding),
        t(l, "deposit_basis"),
        basis
    ));
    let cards = [
        ("wage_balance", format!("¥{}", x.wage_balance)),
        ("deposit", format!("¥{} + ¥{} / ¥{}", x.deposit_cash, x.letters_valid, x.deposit_required)),
        ("progress", format!("¥{}", x.progress_total)),
        ("wage_share", format!("¥{} ({} {}.{:02}%)", x.wage_share_total, t(l, "ratio"), x.labour_ratio_bp / 100, x.labour_ratio_bp % 100)),
        ("paid_total", format!("¥{}", x.wages_paid_total)),
        ("owed", format!("¥{}", x.owed)),
        ("overdue", format!("¥{}", x.overdue)),
        ("on_site", format!("{} / {}", x.workers_on_site, x.workers_enrolled)),
    ];
    p.raw("<div class=\"cards\">");
    for (k, v) in cards {
        p.raw(&format!("<div class=\"card\">{}<b>{}</b></div>", t(l, k), esc(&v)));
    }
    p.raw("</div>");
    p.h2("chart");
    p.raw(&chart(l, h));
    p.raw(&format!(" <a href=\"/project/{}/months.csv\">{}</a>", esc(&x.project), t(l, "export")));
    p.h2("flags");
    if x.flags.is_empty() {
        p.para(t(l, "none"));
    } else {
        p.table("flags", &["project", "code", "grade", "gap", "since", "evidence", "detail"], &flag_rows(&x.flags), None);
    }
    if !h.flag_intervals.is_empty() {
        p.h2("flag_intervals");
        let rows: Vec<Vec<String>> = h
            .flag_intervals
            .iter()
            .map(|i| {
                let (first, last) = (i.first.clone().unwrap_or_default(), i.last.clone().unwrap_or_default());
                let seqs = |v: &[u64]| v.iter().map(u64::to_string).collect::<Vec<_>>().join(" ");
                vec![
                    td(&i.code),
                    dot(if i.grade == "red" { "red" } else { "amber" }),
                    td(&i.opened),
                    td(if i.cleared.is_empty() { t(l, "still_open") } else { &i.cleared }),
                    num(&last.gap),
                    td(&seqs(&first.evidence)),
                    td(&seqs(&i.cleared_by)),
                    td(&last.detail),
                ]
            })
            .collect();
        p.table("flag-intervals", &["code", "grade", "opened", "cleared", "gap", "evidence", "cleared_by", "detail"], &rows, None);
    }
    p.h2("payrolls");
    let rows: Vec<Vec<String>> = payrolls
        .iter()
        .map(|r| vec![td(&r.period), td(&r.payroll_no), td(&r.submitted_on), td(&r.due_date), num(&r.due_total), num(&r.paid_total), dot(if r.overdue { "red" } else if r.paid_total == r.due_total { "green" } else { "amber" })])
        .collect();
    p.table("payrolls", &["period", "payroll_no", "submitted_on", "due_date", "due", "paid", "status"], &rows, Some(&format!("/project/{}/payrolls.csv", esc(&x.project))));
    if !x.letters.is_empty() {
        p.h2("letters");
        let rows: Vec<Vec<String>> = x
            .letters
            .iter()
            .map(|g| vec![td(&g.letter_no), td(&g.bank), num(&g.amount), td(&format!("{} – {}", g.valid_from, g.valid_to)), td(&g.issued_on), td(&g.applicant), td(&g.beneficiary), dot(if g.valid { "green" } else { "amber" })])
            .collect();
        p.table("letters", &["letter_no", "bank", "amount", "valid", "issued_on", "applicant", "beneficiary", "status"], &rows, None);
    }
    if !x.reconciliation.is_empty() {
        p.h2("reconciliation");
        let rows: Vec<Vec<String>> = x
            .reconciliation
            .iter()
            .map(|r| {
                let account = if r.account == pb::StatementAccount::Deposit as i32 { "deposit_account" } else { "wage_account" };
                let status = if !r.differs_since.is_empty() { "red" } else if !r.late_since.is_empty() { "amber" } else { "green" };
                vec![td(t(l, account)), td(&r.bank), td(&r.date), num(&r.bank_balance), num(&r.ledger_balance), td(&r.last_agreed), dot(status)]
            })
            .collect();
        p.table("account-reconciliation", &["account", "bank", "date", "bank_balance", "ledger_balance", "last_agreed", "status"], &rows, None);
    }
    if !x.drawdowns.is_empty() {
        p.h2("drawdowns");
        let rows: Vec<Vec<String>> = x
            .drawdowns
            .iter()
            .map(|d| vec![td(&d.order_no), td(&d.order_date), td(&d.date), td(&d.reason), num(&d.amount), num(&d.replenished)])
            .collect();
        p.table("drawdowns", &["order_no", "order_date", "date", "reason", "amount", "replenished"], &rows, None);
    }
    p.finish()
}

/// One payout's offline receipt: its QR code (the whole c2sp.org/tlog-proof text, for a
/// phone to keep), the file, and what it proves.
pub fn receipt(l: Lang, seq: u64, proof: &str) -> Html<String> {
    let mut p = Page::new(l, "receipt");
    p.para(&format!("{} {seq}", t(l, "record")));
    match qrcode::QrCode::with_error_correction_level(proof.as_bytes(), qrcode::EcLevel::L) {
        Ok(code) => {
            let svg = code.render::<qrcode::render::svg::Color>().min_dimensions(320, 320).quiet_zone(true).build();
            p.raw(&format!("<div class=\"qr\" id=\"qr\">{svg}</div>"));
        }
        Err(_) => p.para(t(l, "receipt_too_large")),
    }
    p.raw(&format!("<p><a href=\"/receipt/{seq}/proof\">{}</a></p>", t(l, "download")));
    p.para(t(l, "receipt_help"));
    p.raw(&format!("<pre id=\"proof\">{}</pre>", esc(proof)));
    p.finish()
}

pub fn workers(l: Lang, masked: &str, ws: &[pb::Worker]) -> Html<String> {
    let mut p = Page::new(l, "workers");
    p.raw(&format!("<form method=\"get\" action=\"/workers\"><input name=\"masked\" value=\"{}\" placeholder=\"{}\"> <button>{}</button></form>", esc(masked), t(l, "masked"), t(l, "search")));
    let rows: Vec<Vec<String>> = ws
        .iter()
        .map(|w| {
            vec![
                td(&w.masked_id),
                num(&w.paid_total),
                num(&w.owed_total),
                format!("<td>{}</td>", w.enrolments.iter().map(|e| format!("<a href=\"/project/{0}\">{0}</a> ({1})", esc(&e.project), esc(&e.card_masked))).collect::<Vec<_>>().join(", ")),
                format!("<td>{}</td>", w.payments.iter().map(|p| format!("<a href=\"/receipt/{}\">{} ¥{}</a>", p.seq, esc(&p.date), esc(&p.amount))).collect::<Vec<_>>().join("<br>")),
            ]
        })
        .collect();
    if !masked.is_empty() {
        p.table("workers", &["masked", "paid_total", "owed_total", "enrolments", "payments"], &rows, Some(&format!("/workers.csv?masked={}", esc(masked))));
    }
    p.finish()
}
