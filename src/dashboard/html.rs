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
        "skip" => ("跳到正文", "Skip to the content"),
        "cash" => ("现金", "cash"),
        "red" => ("红色", "red"),
        "yellow" => ("黄色", "yellow"),
        "green" => ("正常", "green"),
        "wan" => ("万元", "10k yuan"),
        "axis_yuan" => ("金额(元)", "yuan"),
        "report_from" => ("起始日期", "From"),
        "report_to" => ("截止日期", "To"),
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

pub use crate::domain::money::grouped;

/// Money as an office reads it: "¥54,704,450.00" ("-¥12.50" below zero).
pub fn yuan(s: &str) -> String {
    match s.strip_prefix('-') {
        Some(r) => format!("-¥{}", grouped(r)),
        None => format!("¥{}", grouped(s)),
    }
}

/// Money in 万元 (ten thousand yuan), as Chinese reports state large sums: "5,470.45万元",
/// to the nearest 0.01 万元 (half away from zero); `None` for what is not money.
pub fn wan(s: &str) -> Option<String> {
    use rust_decimal::{Decimal, RoundingStrategy};
    let d: Decimal = s.parse().ok()?;
    let w = (d / Decimal::from(10_000)).round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    Some(format!("{}万元", grouped(&format!("{w:.2}"))))
}

/// A flag's code in the page's language (the code itself stays in the exports and in
/// the tag's title).
pub fn flag_name(l: Lang, code: &str) -> String {
    let (zh, en) = match code {
        "WAGE_SHORTFALL" => ("专户余额不足", "Wage account short"),
        "WAGES_OVERDUE" => ("工资逾期未付", "Wages overdue"),
        "SPLIT_BELOW_RATIO" => ("人工费拨付不足", "Wage share below ratio"),
        "DEPOSIT_SHORTFALL" => ("保证金不足", "Deposit short"),
        "LETTER_EXPIRING" => ("保函即将到期", "Letter expiring"),
        "DRAWDOWN_NOT_REPLENISHED" => ("保证金动用未补足", "Drawdown not made good"),
        "PAYROLL_MISSING" => ("工资表未报送", "Payroll missing"),
        "NO_WAGE_ACCOUNT" => ("未开设工资专户", "No wage account"),
        "CONTRACT_MISSING" => ("未签劳动合同", "Contracts missing"),
        "BALANCE_MISMATCH" => ("银行对账不符", "Bank balance differs"),
        "STATEMENT_MISSING" => ("对账单未报送", "Statement missing"),
        "CASE_OVERDUE" => ("案件办理超期", "Case overdue"),
        "ORDER_UNMET" => ("整改指令未履行", "Order unmet"),
        "REFERRAL_DUE" => ("应移送公安", "Referral due"),
        other => (other, other),
    };
    match l {
        Lang::Zh => zh.to_owned(),
        Lang::En => en.to_owned(),
    }
}

pub fn status_key(s: i32) -> &'static str {
    match pb::ProjectStatus::try_from(s) {
        Ok(pb::ProjectStatus::Active) => "active",
        Ok(pb::ProjectStatus::Suspended) => "suspended",
        Ok(pb::ProjectStatus::Completed) => "completed",
        _ => "?",
    }
}

/// Red if any red flag, yellow if any flag, else green: the grades of the flag policy.
pub fn grade(p: &pb::Project) -> &'static str {
    if p.flags.iter().any(|f| f.grade == "red") {
        "red"
    } else if p.flags.is_empty() {
        "green"
    } else {
        "yellow"
    }
}

const STYLE: &str = "body{font-family:system-ui,'Noto Sans CJK SC','PingFang SC',sans-serif;margin:0;color:#1d2330;background:#f5f6f8}\
header{background:#0f4c81;color:#fff;padding:10px 24px;display:flex;flex-wrap:wrap;gap:8px 24px;align-items:center}header a{color:#fff;text-decoration:none}header a:hover{text-decoration:underline}\
.skip{position:absolute;left:-999px}.skip:focus{left:8px;top:8px;background:#fff;color:#0f4c81;padding:6px 10px;z-index:9}\
:focus-visible{outline:3px solid #f5a623;outline-offset:2px}\
main{padding:16px 24px}h1{font-size:20px;margin:0}h2{font-size:17px;margin:18px 0 8px}\
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(190px,1fr));gap:10px}.card{background:#fff;border-radius:6px;padding:10px 12px;box-shadow:0 1px 2px #0002}\
.card b{display:block;font-size:20px;margin-top:4px;font-variant-numeric:tabular-nums}.card small{display:block;color:#4d5566;margin-top:2px}\
.scroll{overflow-x:auto}table{border-collapse:collapse;background:#fff;width:100%;font-size:13px}th,td{padding:5px 8px;border-bottom:1px solid #e3e6ea;text-align:left}\
th{cursor:pointer;background:#eef1f5;white-space:nowrap}th[aria-sort=ascending]::after{content:' \\25B2'}th[aria-sort=descending]::after{content:' \\25BC'}\
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}.dot{display:inline-block;width:11px;height:11px;border-radius:50%;vertical-align:-1px}\
.dot.red{background:#d93025}.dot.yellow{background:#f5a623}.dot.green{background:#1e8e3e}\
.tag{padding:1px 6px;border-radius:3px;font-size:12px;white-space:nowrap}.tag.red{background:#c5221f;color:#fff}.tag.yellow{background:#fce8b2;color:#3c2f00}\
input{padding:5px 8px;margin:6px 0;min-width:260px}.muted{color:#4d5566}\
.chart{max-width:820px;margin:0;background:#fff;border-radius:6px}.chart svg{width:100%;height:auto;display:block}.chart .pt:hover,.chart rect.due:hover{opacity:.75}\
@media (max-width:640px){header{padding:8px 12px;gap:6px 14px}h1{font-size:17px;width:100%}main{padding:10px 12px}\
.cards{grid-template-columns:repeat(2,minmax(0,1fr))}.card b{font-size:16px}input{min-width:0;width:100%;box-sizing:border-box}}\
@media print{header,.skip,input.filter,a.export,form{display:none}body{background:#fff;font-size:11pt}main{padding:0}\
.card{box-shadow:none;border:1px solid #bbb}.cards{grid-template-columns:repeat(4,1fr)}tr{break-inside:avoid}thead{display:table-header-group}\
a{color:inherit;text-decoration:none}th[aria-sort]::after{content:''}.scroll{overflow:visible}.chart{break-inside:avoid}}";

/// Sorting and filtering of every table, kept in the URL (`?f.<table>=text&s.<table>=3`,
/// `-3` descending), so that a filtered, sorted view can be shared and reloaded; headers
/// sort with the keyboard too (Enter or Space).
const SCRIPT: &str = "(function(){var q=new URLSearchParams(location.search);\
function keep(k,v){if(v)q.set(k,v);else q.delete(k);var s=q.toString();history.replaceState(null,'',location.pathname+(s?'?'+s:'')+location.hash)}\
function sortBy(t,i,asc){var rows=Array.from(t.tBodies[0].rows);rows.sort(function(a,b){var x=a.cells[i].dataset.v||a.cells[i].innerText,y=b.cells[i].dataset.v||b.cells[i].innerText;\
var nx=parseFloat(x.replace(/[,\\u00a5]/g,'')),ny=parseFloat(y.replace(/[,\\u00a5]/g,''));var c=(!isNaN(nx)&&!isNaN(ny))?nx-ny:x.localeCompare(y);return asc?c:-c});\
rows.forEach(function(r){t.tBodies[0].appendChild(r)});Array.from(t.tHead.rows[0].cells).forEach(function(h,j){h.setAttribute('aria-sort',j===i?(asc?'ascending':'descending'):'none')})}\
document.querySelectorAll('table.sortable').forEach(function(t){var hs=t.tHead.rows[0].cells;Array.from(hs).forEach(function(th,i){\
function go(){var asc=th.getAttribute('aria-sort')!=='ascending';sortBy(t,i,asc);keep('s.'+t.id,(asc?'':'-')+i)}\
th.onclick=go;th.onkeydown=function(e){if(e.key==='Enter'||e.key===' '){e.preventDefault();go()}}});\
var s=q.get('s.'+t.id);if(s&&/^-?[0-9]+$/.test(s)&&Math.abs(+s)<hs.length)sortBy(t,Math.abs(+s),s[0]!=='-')});\
document.querySelectorAll('input.filter').forEach(function(f){var t=document.querySelector(f.dataset.table);\
function apply(){var v=f.value.toLowerCase();t.querySelectorAll('tbody tr').forEach(function(r){r.style.display=r.innerText.toLowerCase().indexOf(v)<0?'none':''})}\
f.value=q.get('f.'+t.id)||'';if(f.value)apply();f.oninput=function(){apply();keep('f.'+t.id,f.value)}})})();";

pub struct Page {
    lang: Lang,
    body: String,
}

impl Page {
    pub fn new(lang: Lang, title_key: &str) -> Page {
        let mut p = Page { lang, body: String::new() };
        let other = if lang == Lang::Zh { ("en", "English") } else { ("zh", "中文") };
        p.body.push_str(&format!(
            "<a class=\"skip\" href=\"#main\">{}</a><header><h1>{}</h1><a href=\"/\">{}</a><a href=\"/flags\">{}</a><a href=\"/workers\">{}</a><a href=\"/cases\">{}</a><span style=\"flex:1\"></span><a href=\"?lang={}\" lang=\"{}\">{}</a><a href=\"/logout\">{}</a></header><main id=\"main\"><h2>{}</h2>",
            t(lang, "skip"),
            t(lang, "title"), t(lang, "summary"), t(lang, "flags"), t(lang, "workers"), t(lang, "cases"), other.0, other.0, other.1, t(lang, "logout"), t(lang, title_key)
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
        self.body.push_str(&format!("<input class=\"filter\" type=\"search\" data-table=\"#{id}\" placeholder=\"{0}\" aria-label=\"{0}\">", t(l, "filter")));
        if let Some(href) = csv {
            self.body.push_str(&format!(" <a class=\"export\" href=\"{href}\">{}</a>", t(l, "export")));
        }
        self.body.push_str(&format!("<div class=\"scroll\"><table id=\"{id}\" class=\"sortable\"><thead><tr>"));
        for h in headers {
            self.body.push_str(&format!("<th scope=\"col\" tabindex=\"0\" aria-sort=\"none\">{}</th>", t(l, h)));
        }
        self.body.push_str("</tr></thead><tbody>");
        for r in rows {
            self.body.push_str("<tr>");
            for c in r {
                self.body.push_str(c);
            }
            self.body.push_str("</tr>");
        }
        self.body.push_str("</tbody></table></div>");
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

/// A money cell: grouped for reading, sorted by its value.
fn money(s: &str) -> String {
    format!("<td class=\"n\" data-v=\"{}\">{}</td>", esc(s), esc(&grouped(s)))
}

/// A grade cell: its dot and its name in the page's language (`red`, `yellow`, `green`).
fn dot(l: Lang, g: &str) -> String {
    format!("<td data-v=\"{}\"><span class=\"dot {g}\" aria-hidden=\"true\"></span> {}</td>", match g { "red" => 0, "yellow" => 1, _ => 2 }, t(l, g))
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

/// (label, value, the amount when the value is money) rows of a county summary, as
/// exported; the page shows the amounts grouped, and in 万元 too in Chinese.
pub fn summary_rows(l: Lang, s: &pb::CountySummary) -> Vec<(String, String, Option<String>)> {
    let plain = |k: &str, v: String| (t(l, k).to_owned(), v, None);
    let money = |k: &str, v: &str| (t(l, k).to_owned(), format!("¥{v}"), Some(v.to_owned()));
    let flags = match l {
        Lang::Zh => format!("红色 {} 项，黄色 {} 项", s.flags_red, s.flags_yellow),
        Lang::En => format!("{} red, {} yellow", s.flags_red, s.flags_yellow),
    };
    vec![
        plain("projects_total", format!("{} ({} {}, {} {}, {} {})", s.projects_total, s.projects_active, t(l, "active"), s.projects_completed, t(l, "completed"), s.projects_suspended, t(l, "suspended"))),
        plain("registered", s.workers_registered.to_string()),
        plain("on_site", s.workers_on_site.to_string()),
        plain("contract_rate", format!("{} ({}/{})", pct(s.enrolments_with_contract, s.enrolments), s.enrolments_with_contract, s.enrolments)),
        plain("accounts_bound", format!("{} ({}/{})", pct(s.wage_accounts_bound, s.projects_total), s.wage_accounts_bound, s.projects_total)),
        plain("deposit_rate", format!("{} ({}/{})", pct(s.deposit_covered_projects, s.deposit_required_projects), s.deposit_covered_projects, s.deposit_required_projects)),
        money("wages_paid", &s.wages_paid_year),
        plain("workers_paid", s.workers_paid_year.to_string()),
        money("arrears", &s.arrears),
        plain("arrears_workers", s.arrears_workers.to_string()),
        plain("open_flags", flags),
    ]
}

/// A summary card: money grouped ("¥54,704,450.00"), with 万元 under it in Chinese.
fn card(l: Lang, label: &str, value: &str, amount: Option<&str>) -> String {
    match amount {
        Some(a) => {
            let wan = if l == Lang::Zh { wan(a).map(|w| format!("<small>{}</small>", esc(&w))).unwrap_or_default() } else { String::new() };
            format!("<div class=\"card\">{}<b>{}</b>{wan}</div>", esc(label), esc(&yuan(a)))
        }
        None => format!("<div class=\"card\">{}<b>{}</b></div>", esc(label), esc(value)),
    }
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
    for (k, v, amount) in summary_rows(l, s) {
        p.raw(&card(l, &k, &v, amount.as_deref()));
    }
    p.raw("</div>");
    if !s.reconciliation.is_empty() {
        p.h2("reconciliation");
        let rows: Vec<Vec<String>> = s
            .reconciliation
            .iter()
            .map(|r| vec![td(&r.bank), num(&r.accounts.to_string()), num(&r.agreed.to_string()), num(&r.differ.to_string()), num(&r.late.to_string()), dot(l, if r.differ > 0 { "red" } else if r.late > 0 { "yellow" } else { "green" })])
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
                dot(l, grade(x)),
                money(&x.wage_balance),
                money(&x.owed),
                money(&x.overdue),
                format!("<td class=\"n\" data-v=\"{}\">{}</td>", esc(&x.deposit_cash), esc(&format!("{} + {} / {}", grouped(&x.deposit_cash), grouped(&x.letters_valid), grouped(&x.deposit_required)))),
                num(&x.workers_on_site.to_string()),
                format!("<td>{}</td>", x.flags.iter().map(|f| format!("<span title=\"{}\">{}</span>", esc(&f.code), esc(&flag_name(l, &f.code)))).collect::<Vec<_>>().join(if l == Lang::Zh { "、" } else { ", " })),
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
        "<form method=\"get\" action=\"/report\">{}: <input name=\"from\" aria-label=\"{}\" value=\"{}-01-01\" size=\"10\"> – <input name=\"to\" aria-label=\"{}\" value=\"{}\" size=\"10\"><input type=\"hidden\" name=\"lang\" value=\"{}\"> <button>{}</button></form>",
        t(l, "report_period"),
        t(l, "report_from"),
        esc(&s.as_of[..4.min(s.as_of.len())]),
        t(l, "report_to"),
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
            vec![td(source_name(l, &f.source)), num(&f.received.to_string()), num(&f.closed.to_string()), num(&rate), money(&f.recovered), num(&f.workers_paid.to_string())]
        })
        .collect();
    p.table("casework", &["source", "received", "closed", "closure_rate", "recovered", "workers_paid"], &rows, None);
    p.h2("cases");
    let rows: Vec<Vec<String>> = cs
        .iter()
        .map(|c| {
            let status = if !c.overdue_grade.is_empty() { if c.overdue_grade == "red" { "red" } else { "yellow" } } else { "green" };
            let project = if c.project.is_empty() { "<td></td>".to_owned() } else { format!("<td><a href=\"/project/{0}\">{0}</a></td>", esc(&c.project)) };
            let source = pb::CaseSource::try_from(c.source).map(|x| x.as_str_name().trim_start_matches("CASE_SOURCE_").to_lowercase()).unwrap_or_default();
            vec![td(&c.case_no), td(source_name(l, &source)), td(&c.received_on), project, td(case_status(l, &c.status)), td(&c.decide_by), td(&c.close_by), money(&c.recovered), num(&c.workers_paid.to_string()), dot(l, status)]
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

fn flag_rows(l: Lang, fs: &[pb::Flag]) -> Vec<Vec<String>> {
    fs.iter()
        .map(|f| {
            let g = if f.grade == "red" { "red" } else { "yellow" };
            vec![
                if f.project.is_empty() { format!("<td>{}</td>", esc(&f.case_no)) } else { format!("<td><a href=\"/project/{0}\">{0}</a></td>", esc(&f.project)) },
                format!("<td data-v=\"{0}\"><span class=\"tag {g}\" title=\"{0}\">{1}</span></td>", esc(&f.code), esc(&flag_name(l, &f.code))),
                dot(l, g),
                money(&f.gap),
                td(&f.since),
                format!("<td class=\"evidence\">{}</td>", f.evidence.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")),
                td(detail(l, f)),
            ]
        })
        .collect()
}

/// A flag's sentence in the page's language.
fn detail(l: Lang, f: &pb::Flag) -> &str {
    match l {
        Lang::Zh if !f.detail_zh.is_empty() => &f.detail_zh,
        _ => &f.detail,
    }
}

pub fn flags(l: Lang, fs: &[pb::Flag]) -> Html<String> {
    let mut p = Page::new(l, "flags");
    p.table("flags", &["project", "code", "grade", "gap", "since", "evidence", "detail"], &flag_rows(l, fs), Some("/flags.csv"));
    p.finish()
}

/// A round step for an axis up to `max` fen with about five ticks: 1, 2 or 5 times a
/// power of ten yuan.
fn tick_step(max: i64) -> i64 {
    let rough = (max / 5).max(100);
    let mut unit = 100i64;
    while unit * 10 <= rough {
        unit *= 10;
    }
    [1, 2, 5, 10].into_iter().map(|m| m * unit).find(|s| *s >= rough).unwrap_or(unit * 10)
}

/// The wage account balance at each month end (a line with a point a month) against the
/// payroll due for the month (bars), as inline SVG on one scale of yuan: a y axis with
/// round ticks, the months on the x axis, a legend, and each value on hover (and to a
/// screen reader) through the marks' titles.
fn chart(l: Lang, h: &pb::ProjectHistory) -> String {
    let fen = |s: &str| -> i64 {
        s.parse::<rust_decimal::Decimal>().ok().and_then(|d| rust_decimal::prelude::ToPrimitive::to_i64(&(d * rust_decimal::Decimal::from(100)))).unwrap_or(0)
    };
    let months = &h.months;
    let (w, hgt, left, right, top, bottom) = (820i64, 300i64, 96i64, 16i64, 40i64, 34i64);
    let max = months.iter().flat_map(|m| [fen(&m.wage_balance_end), fen(&m.payroll_due)]).max().unwrap_or(0).max(100);
    let step = tick_step(max);
    let top_value = max.div_euclid(step) * step + if max % step == 0 { 0 } else { step };
    let plot_h = hgt - top - bottom;
    let n = months.len().max(1) as i64;
    let slot = (w - left - right) / n;
    let y = |v: i64| top + plot_h - (v.clamp(0, top_value) as i128 * plot_h as i128 / top_value as i128) as i64;
    let label = |v: i64| yuan(&(v / 100).to_string());
    let mut svg = format!(
        "<figure class=\"chart\"><svg id=\"chart\" viewBox=\"0 0 {w} {hgt}\" role=\"img\" aria-labelledby=\"chart-title\"><title id=\"chart-title\">{}</title>",
        t(l, "chart")
    );
    // The y axis: gridlines and round amounts.
    let mut v = 0;
    while v <= top_value {
        svg.push_str(&format!(
            "<line x1=\"{left}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\" stroke=\"{2}\"/><text x=\"{3}\" y=\"{4}\" font-size=\"11\" text-anchor=\"end\" fill=\"#4d5566\">{5}</text>",
            y(v),
            w - right,
            if v == 0 { "#6b7280" } else { "#e3e6ea" },
            left - 6,
            y(v) + 4,
            label(v)
        ));
        v += step;
    }
    svg.push_str(&format!("<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{}\" stroke=\"#6b7280\"/>", top + plot_h));
    // Bars, month labels, and the balance's points.
    let mut pts = Vec::new();
    let mut marks = String::new();
    for (i, m) in months.iter().enumerate() {
        let x = left + i as i64 * slot;
        let due = fen(&m.payroll_due);
        let bal = fen(&m.wage_balance_end);
        svg.push_str(&format!(
            "<rect class=\"due\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#9cc3e6\"><title>{} {}: {}</title></rect>",
            x + 4,
            y(due),
            (slot - 8).max(1),
            top + plot_h - y(due),
            esc(&m.period),
            t(l, "due_bars"),
            esc(&yuan(&m.payroll_due))
        ));
        let cx = x + slot / 2;
        pts.push(format!("{cx},{}", y(bal)));
        marks.push_str(&format!(
            "<circle class=\"pt\" cx=\"{cx}\" cy=\"{}\" r=\"4\" fill=\"#c5221f\" stroke=\"#fff\" stroke-width=\"1.5\"><title>{} {}: {}</title></circle>",
            y(bal),
            esc(&m.period),
            t(l, "balance_line"),
            esc(&yuan(&m.wage_balance_end))
        ));
        if n <= 12 || i % 2 == 0 {
            svg.push_str(&format!("<text x=\"{cx}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\" fill=\"#1d2330\">{}</text>", top + plot_h + 16, esc(&m.period)));
        }
    }
    svg.push_str(&format!("<polyline class=\"balance\" points=\"{}\" fill=\"none\" stroke=\"#c5221f\" stroke-width=\"2\"/>", pts.join(" ")));
    svg.push_str(&marks);
    // The legend.
    svg.push_str(&format!(
        "<g font-size=\"12\" fill=\"#1d2330\"><rect x=\"{left}\" y=\"12\" width=\"12\" height=\"12\" fill=\"#9cc3e6\"/><text x=\"{}\" y=\"22\">{}</text>\
         <line x1=\"{}\" y1=\"18\" x2=\"{}\" y2=\"18\" stroke=\"#c5221f\" stroke-width=\"2\"/><circle cx=\"{}\" cy=\"18\" r=\"4\" fill=\"#c5221f\"/><text x=\"{}\" y=\"22\">{}</text></g></svg></figure>",
        left + 18,
        t(l, "due_bars"),
        left + 200,
        left + 224,
        left + 212,
        left + 230,
        t(l, "balance_line")
    ));
    svg
}

pub fn project(l: Lang, x: &pb::Project, h: &pb::ProjectHistory, payrolls: &[pb::Payroll]) -> Html<String> {
    let mut p = Page::new(l, "project");
    p.raw(&format!("<p><b>{}</b> {} · {} · {} {} · <span class=\"dot {g}\" aria-hidden=\"true\"></span> {}</p>", esc(&x.project), esc(&x.name), t(l, status_key(x.status)), t(l, "contractor"), esc(&x.general_contractor), t(l, grade(x)), g = grade(x)));
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
        ("wage_balance", yuan(&x.wage_balance), None),
        // As answered: cash and letters against what is required (the dashboard adds nothing up).
        ("deposit", format!("{} + {}", yuan(&x.deposit_cash), yuan(&x.letters_valid)), Some(format!("{} + {} · {} {}", t(l, "cash"), t(l, "letters"), t(l, "required"), yuan(&x.deposit_required)))),
        ("progress", yuan(&x.progress_total), None),
        ("wage_share", yuan(&x.wage_share_total), Some(format!("{} {}.{:02}%", t(l, "ratio"), x.labour_ratio_bp / 100, x.labour_ratio_bp % 100))),
        ("paid_total", yuan(&x.wages_paid_total), None),
        ("owed", yuan(&x.owed), None),
        ("overdue", yuan(&x.overdue), None),
        ("on_site", format!("{} / {}", x.workers_on_site, x.workers_enrolled), None),
    ];
    p.raw("<div class=\"cards\">");
    for (k, v, more) in cards {
        let more = more.map(|m| format!("<small>{}</small>", esc(&m))).unwrap_or_default();
        p.raw(&format!("<div class=\"card\">{}<b>{}</b>{more}</div>", t(l, k), esc(&v)));
    }
    p.raw("</div>");
    p.h2("chart");
    p.raw(&chart(l, h));
    p.raw(&format!("<p><a class=\"export\" href=\"/project/{}/months.csv\">{}</a></p>", esc(&x.project), t(l, "export")));
    p.h2("flags");
    if x.flags.is_empty() {
        p.para(t(l, "none"));
    } else {
        p.table("flags", &["project", "code", "grade", "gap", "since", "evidence", "detail"], &flag_rows(l, &x.flags), None);
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
                    format!("<td data-v=\"{0}\" title=\"{0}\">{1}</td>", esc(&i.code), esc(&flag_name(l, &i.code))),
                    dot(l, if i.grade == "red" { "red" } else { "yellow" }),
                    td(&i.opened),
                    td(if i.cleared.is_empty() { t(l, "still_open") } else { &i.cleared }),
                    money(&last.gap),
                    td(&seqs(&first.evidence)),
                    td(&seqs(&i.cleared_by)),
                    td(detail(l, &last)),
                ]
            })
            .collect();
        p.table("flag-intervals", &["code", "grade", "opened", "cleared", "gap", "evidence", "cleared_by", "detail"], &rows, None);
    }
    p.h2("payrolls");
    let rows: Vec<Vec<String>> = payrolls
        .iter()
        .map(|r| vec![td(&r.period), td(&r.payroll_no), td(&r.submitted_on), td(&r.due_date), money(&r.due_total), money(&r.paid_total), dot(l, if r.overdue { "red" } else if r.paid_total == r.due_total { "green" } else { "yellow" })])
        .collect();
    p.table("payrolls", &["period", "payroll_no", "submitted_on", "due_date", "due", "paid", "status"], &rows, Some(&format!("/project/{}/payrolls.csv", esc(&x.project))));
    if !x.letters.is_empty() {
        p.h2("letters");
        let rows: Vec<Vec<String>> = x
            .letters
            .iter()
            .map(|g| vec![td(&g.letter_no), td(&g.bank), money(&g.amount), td(&format!("{} – {}", g.valid_from, g.valid_to)), td(&g.issued_on), td(&g.applicant), td(&g.beneficiary), dot(l, if g.valid { "green" } else { "yellow" })])
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
                let status = if !r.differs_since.is_empty() { "red" } else if !r.late_since.is_empty() { "yellow" } else { "green" };
                vec![td(t(l, account)), td(&r.bank), td(&r.date), money(&r.bank_balance), money(&r.ledger_balance), td(&r.last_agreed), dot(l, status)]
            })
            .collect();
        p.table("account-reconciliation", &["account", "bank", "date", "bank_balance", "ledger_balance", "last_agreed", "status"], &rows, None);
    }
    if !x.drawdowns.is_empty() {
        p.h2("drawdowns");
        let rows: Vec<Vec<String>> = x
            .drawdowns
            .iter()
            .map(|d| vec![td(&d.order_no), td(&d.order_date), td(&d.date), td(&d.reason), money(&d.amount), money(&d.replenished)])
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
    p.raw(&format!("<form method=\"get\" action=\"/workers\"><input name=\"masked\" value=\"{0}\" placeholder=\"{1}\" aria-label=\"{1}\"> <button>{2}</button></form>", esc(masked), t(l, "masked"), t(l, "search")));
    let rows: Vec<Vec<String>> = ws
        .iter()
        .map(|w| {
            vec![
                td(&w.masked_id),
                money(&w.paid_total),
                money(&w.owed_total),
                format!("<td>{}</td>", w.enrolments.iter().map(|e| format!("<a href=\"/project/{0}\">{0}</a> ({1})", esc(&e.project), esc(&e.card_masked))).collect::<Vec<_>>().join(", ")),
                format!("<td>{}</td>", w.payments.iter().map(|p| format!("<a href=\"/receipt/{}\">{} {}</a>", p.seq, esc(&p.date), esc(&yuan(&p.amount)))).collect::<Vec<_>>().join("<br>")),
            ]
        })
        .collect();
    if !masked.is_empty() {
        p.table("workers", &["masked", "paid_total", "owed_total", "enrolments", "payments"], &rows, Some(&format!("/workers.csv?masked={}", esc(masked))));
    }
    p.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_as_an_office_reads_them() {
        assert_eq!(yuan("54704450.00"), "¥54,704,450.00");
        assert_eq!(yuan("100000.5"), "¥100,000.5");
        assert_eq!(yuan("999.99"), "¥999.99");
        assert_eq!(yuan("1000"), "¥1,000");
        assert_eq!(yuan("-1234567.00"), "-¥1,234,567.00");
        assert_eq!(yuan("0.00"), "¥0.00");
        assert_eq!(grouped("n/a"), "n/a", "what is not an amount is left as it is");
        assert_eq!(grouped("12,345.00"), "12,345.00");
        assert_eq!(wan("54704450.00").as_deref(), Some("5,470.45万元"));
        assert_eq!(wan("54704500.00").as_deref(), Some("5,470.45万元"), "5,470.45 exactly");
        assert_eq!(wan("54704950.00").as_deref(), Some("5,470.50万元"), "half away from zero");
        assert_eq!(wan("50.00").as_deref(), Some("0.01万元"));
        assert_eq!(wan("49.99").as_deref(), Some("0.00万元"));
        assert_eq!(wan("x"), None);
    }

    #[test]
    fn axis_steps_are_round() {
        assert_eq!(tick_step(33_910_000), 10_000_000, "¥339,100 in steps of ¥100,000");
        assert_eq!(tick_step(100), 100);
        assert_eq!(tick_step(1_200_000), 500_000);
        assert_eq!(tick_step(900_000), 200_000);
        for max in [100, 999, 12_345, 33_910_000, 9_999_999_999] {
            let s = tick_step(max);
            assert!(max / s <= 5 && max / s >= 1 || max < 500, "{max}: {s}");
        }
    }
}
