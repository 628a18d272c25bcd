//! A county's work report for a period, in Chinese or English, as Markdown and as
//! printable HTML (`anxin report`, and the dashboard's `/report`). Every figure comes from one `GetCountyReport` answer and is
//! footnoted with the query and the answer's field that produced it, so anyone with read
//! access can reproduce it at the same record.

use crate::api::pb;

/// One figure: how it reads, and the field of the answer it comes from.
struct Fig {
    text: String,
    field: String,
}

/// A sentence: text and figures in turn.
enum Part {
    Text(String),
    Fig(Fig),
}

struct Report {
    title: String,
    sections: Vec<(String, Vec<Vec<Part>>)>,
    query: String,
    lang: Lang,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

/// ¥1,234,567.50, as Chinese offices write amounts (one definition, the dashboard's).
pub use super::html::yuan;

/// `num` of `den` as a percentage with two decimals, truncated (integers only), or a dash.
pub(crate) fn rate(num: u32, den: u32) -> String {
    crate::projection::views::CountySummary::rate_bp(num, den).map_or_else(|| "—".to_owned(), |bp| format!("{}.{:02}%", bp / 100, bp % 100))
}

pub(crate) fn source_name(source: &str, lang: Lang) -> &str {
    match (source, lang) {
        ("complaint", Lang::Zh) => "来电来访投诉",
        ("national_platform", Lang::Zh) => "全国根治欠薪线索反映平台",
        ("provincial_platform", Lang::Zh) => "省级平台",
        ("inspection", Lang::Zh) => "检查发现",
        ("complaint", Lang::En) => "complaints (hotline and walk-in)",
        ("national_platform", Lang::En) => "the national wage-arrears lead platform",
        ("provincial_platform", Lang::En) => "the provincial platform",
        ("inspection", Lang::En) => "inspections",
        (other, _) => other,
    }
}

/// Builds the report's text from the answer.
fn build(r: &pb::CountyReport, lang: Lang) -> Report {
    let s = r.summary.clone().unwrap_or_default();
    let at = r.point.as_ref().map_or(0, |p| p.at_seq);
    let fig = |text: String, field: &str| Part::Fig(Fig { text, field: field.to_owned() });
    let t = |x: &str| Part::Text(x.to_owned());
    let zh = lang == Lang::Zh;
    let mut sections: Vec<(String, Vec<Vec<Part>>)> = Vec::new();

    // 1. Projects and real-name registration.
    sections.push((
        if zh { "一、在建项目与实名制管理".into() } else { "1. Projects and real-name registration".into() },
        vec![
            if zh {
                vec![t("全县纳入监管的工程建设项目 "), fig(s.projects_total.to_string(), "summary.projects_total"), t(" 个，其中在建 "), fig(s.projects_active.to_string(), "summary.projects_active"), t(" 个、停工 "), fig(s.projects_suspended.to_string(), "summary.projects_suspended"), t(" 个、完工 "), fig(s.projects_completed.to_string(), "summary.projects_completed"), t(" 个。")]
            } else {
                vec![t("The county supervises "), fig(s.projects_total.to_string(), "summary.projects_total"), t(" construction projects: "), fig(s.projects_active.to_string(), "summary.projects_active"), t(" in construction, "), fig(s.projects_suspended.to_string(), "summary.projects_suspended"), t(" suspended and "), fig(s.projects_completed.to_string(), "summary.projects_completed"), t(" completed.")]
            },
            if zh {
                vec![t("实名登记工人 "), fig(s.workers_registered.to_string(), "summary.workers_registered"), t(" 人，期末在场 "), fig(s.workers_on_site.to_string(), "summary.workers_on_site"), t(" 人；签订劳动合同 "), fig(format!("{} / {}", s.enrolments_with_contract, s.enrolments), "summary.enrolments_with_contract / summary.enrolments"), t("，签订率 "), fig(rate(s.enrolments_with_contract, s.enrolments), "summary.enrolments_with_contract / summary.enrolments"), t("。")]
            } else {
                vec![t("Workers registered by real name: "), fig(s.workers_registered.to_string(), "summary.workers_registered"), t(", on site at the end "), fig(s.workers_on_site.to_string(), "summary.workers_on_site"), t("; labour contracts "), fig(format!("{} of {}", s.enrolments_with_contract, s.enrolments), "summary.enrolments_with_contract / summary.enrolments"), t(" ("), fig(rate(s.enrolments_with_contract, s.enrolments), "summary.enrolments_with_contract / summary.enrolments"), t(").")]
            },
        ],
    ));

    // 2. Deposits and wage accounts.
    sections.push((
        if zh { "二、工资保证金与农民工工资专用账户".into() } else { "2. Wage deposits and dedicated wage accounts".into() },
        vec![if zh {
            vec![t("应缴存工资保证金项目 "), fig(s.deposit_required_projects.to_string(), "summary.deposit_required_projects"), t(" 个，足额缴存（含银行保函） "), fig(s.deposit_covered_projects.to_string(), "summary.deposit_covered_projects"), t(" 个，缴存率 "), fig(rate(s.deposit_covered_projects, s.deposit_required_projects), "summary.deposit_covered_projects / summary.deposit_required_projects"), t("；现金 "), fig(yuan(&s.deposit_cash_total), "summary.deposit_cash_total"), t("，有效保函 "), fig(yuan(&s.letters_valid_total), "summary.letters_valid_total"), t("。开设农民工工资专用账户 "), fig(format!("{} / {}", s.wage_accounts_bound, s.projects_total), "summary.wage_accounts_bound / summary.projects_total"), t("，开户率 "), fig(rate(s.wage_accounts_bound, s.projects_total), "summary.wage_accounts_bound / summary.projects_total"), t("。")]
        } else {
            vec![t("Projects that must hold a wage deposit: "), fig(s.deposit_required_projects.to_string(), "summary.deposit_required_projects"), t("; covered in full (cash and bank guarantee letters): "), fig(s.deposit_covered_projects.to_string(), "summary.deposit_covered_projects"), t(" ("), fig(rate(s.deposit_covered_projects, s.deposit_required_projects), "summary.deposit_covered_projects / summary.deposit_required_projects"), t("); cash "), fig(yuan(&s.deposit_cash_total), "summary.deposit_cash_total"), t(", valid letters "), fig(yuan(&s.letters_valid_total), "summary.letters_valid_total"), t(". Dedicated wage accounts: "), fig(format!("{} of {}", s.wage_accounts_bound, s.projects_total), "summary.wage_accounts_bound / summary.projects_total"), t(" projects ("), fig(rate(s.wage_accounts_bound, s.projects_total), "summary.wage_accounts_bound / summary.projects_total"), t(").")]
        }],
    ));

    // 3. Wages paid and cards.
    sections.push((
        if zh { "三、工资支付与工资卡".into() } else { "3. Wages paid and wage cards".into() },
        vec![if zh {
            vec![t("期内通过专用账户向工人本人银行卡发放工资 "), fig(yuan(&r.wages_paid), "wages_paid"), t("，惠及 "), fig(r.workers_paid.to_string(), "workers_paid"), t(" 人；发放联名工资卡 "), fig(r.cards_issued.to_string(), "cards_issued"), t(" 张，激活 "), fig(r.cards_activated.to_string(), "cards_activated"), t(" 张。期末拖欠（逾期未付） "), fig(yuan(&s.arrears), "summary.arrears"), t("，涉及 "), fig(s.arrears_workers.to_string(), "summary.arrears_workers"), t(" 人。")]
        } else {
            vec![t("Wages paid through the dedicated accounts straight to workers' own cards in the period: "), fig(yuan(&r.wages_paid), "wages_paid"), t(", to "), fig(r.workers_paid.to_string(), "workers_paid"), t(" workers; co-branded wage cards issued "), fig(r.cards_issued.to_string(), "cards_issued"), t(", activated "), fig(r.cards_activated.to_string(), "cards_activated"), t(". Arrears at the end (past due, unpaid): "), fig(yuan(&s.arrears), "summary.arrears"), t(" owed to "), fig(s.arrears_workers.to_string(), "summary.arrears_workers"), t(" workers.")]
        }],
    ));

    // 4. Cases by source.
    let mut cases = Vec::new();
    if r.cases.is_empty() {
        cases.push(vec![t(if zh { "期内未受理欠薪投诉或线索。" } else { "No complaint or lead was received in the period." })]);
    }
    for (i, c) in r.cases.iter().enumerate() {
        let f = |name: &str| format!("cases[{i}].{name}");
        cases.push(if zh {
            vec![t(&format!("{}：收到 ", source_name(&c.source, lang))), fig(c.received.to_string(), &f("received")), t(" 件，受理 "), fig(c.accepted.to_string(), &f("accepted")), t(" 件，办结 "), fig(c.closed.to_string(), &f("closed")), t(" 件，办结率 "), fig(rate(c.closed, c.received), &f("closed / received")), t("；为 "), fig(c.workers_paid.to_string(), &f("workers_paid")), t(" 名工人追回工资 "), fig(yuan(&c.recovered), &f("recovered")), t("（均有发放记录可查）。")]
        } else {
            vec![t(&format!("From {}: ", source_name(&c.source, lang))), fig(c.received.to_string(), &f("received")), t(" received, "), fig(c.accepted.to_string(), &f("accepted")), t(" accepted, "), fig(c.closed.to_string(), &f("closed")), t(" closed ("), fig(rate(c.closed, c.received), &f("closed / received")), t("); "), fig(yuan(&c.recovered), &f("recovered")), t(" recovered for "), fig(c.workers_paid.to_string(), &f("workers_paid")), t(" workers, each payout on record.")]
        });
    }
    sections.push((if zh { "四、欠薪投诉与线索办理".into() } else { "4. Complaints and leads".into() }, cases));

    // 5. Enforcement.
    sections.push((
        if zh { "五、执法检查、指令与惩戒".into() } else { "5. Inspections, orders and sanctions".into() },
        vec![if zh {
            vec![t("检查用人单位 "), fig(r.inspections.to_string(), "inspections"), t(" 家次（"), fig(r.employers_inspected.to_string(), "employers_inspected"), t(" 家），现场签订劳动合同 "), fig(r.contracts_signed.to_string(), "contracts_signed"), t(" 份；下达限期整改指令书 "), fig(r.orders_issued.to_string(), "orders_issued"), t(" 份，已履行 "), fig(r.orders_complied.to_string(), "orders_complied"), t(" 份，逾期未履行 "), fig(r.orders_unmet.to_string(), "orders_unmet"), t(" 份；移送公安机关 "), fig(r.orders_referred.to_string(), "orders_referred"), t(" 件（公安机关立案 "), fig(r.referrals_filed.to_string(), "referrals_filed"), t(" 件，判决 "), fig(r.referrals_convicted.to_string(), "referrals_convicted"), t(" 件）；列入拖欠农民工工资失信联合惩戒对象名单 "), fig(r.listed.to_string(), "listed"), t(" 家，期末在列 "), fig(r.on_list.len().to_string(), "on_list"), t(" 家。")]
        } else {
            vec![t("Inspections: "), fig(r.inspections.to_string(), "inspections"), t(" of "), fig(r.employers_inspected.to_string(), "employers_inspected"), t(" employers, "), fig(r.contracts_signed.to_string(), "contracts_signed"), t(" labour contracts signed on the spot. Orders to pay within a deadline: "), fig(r.orders_issued.to_string(), "orders_issued"), t(" issued, "), fig(r.orders_complied.to_string(), "orders_complied"), t(" complied with, "), fig(r.orders_unmet.to_string(), "orders_unmet"), t(" unmet; "), fig(r.orders_referred.to_string(), "orders_referred"), t(" referred to the police (the police opened "), fig(r.referrals_filed.to_string(), "referrals_filed"), t(", convictions "), fig(r.referrals_convicted.to_string(), "referrals_convicted"), t("). Employers put on the credit list of wage defaulters: "), fig(r.listed.to_string(), "listed"), t("; on it at the end: "), fig(r.on_list.len().to_string(), "on_list"), t(".")]
        }],
    ));

    // 6. Open flags and the problems behind them.
    let mut problems = vec![if zh {
        vec![t("期末预警：红色 "), fig(s.flags_red.to_string(), "summary.flags_red"), t(" 项、黄色 "), fig(s.flags_yellow.to_string(), "summary.flags_yellow"), t(" 项。")]
    } else {
        vec![t("Open flags at the end: "), fig(s.flags_red.to_string(), "summary.flags_red"), t(" red, "), fig(s.flags_yellow.to_string(), "summary.flags_yellow"), t(" yellow.")]
    }];
    for (i, p) in r.problems.iter().enumerate() {
        let grade = match (p.grade.as_str(), zh) {
            ("red", true) => "红色",
            ("yellow", true) => "黄色",
            (g, _) => g,
        };
        let projects = if p.projects.is_empty() { if zh { "（案件，无项目）".to_owned() } else { "(cases without a project)".to_owned() } } else { p.projects.join(if zh { "、" } else { ", " }) };
        let label = if zh { flag_name_zh(&p.code).map_or_else(|| p.code.clone(), |n| format!("{n}（{}）", p.code)) } else { p.code.clone() };
        problems.push(vec![t(&format!("{label} ({grade}): ")), fig(projects, &format!("problems[{i}].projects"))]);
    }
    sections.push((if zh { "六、预警与发现的问题".into() } else { "6. Flags and the problems found".into() }, problems));

    Report {
        title: if zh { format!("{} 县（区）根治欠薪工作报告（{} 至 {}）", r.county, r.from, r.to) } else { format!("County {}: wage-arrears work report, {} to {}", r.county, r.from, r.to) },
        sections,
        query: format!("GetCountyReport county={} from={} to={} at_seq={at}", r.county, r.from, r.to),
        lang,
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The report as Markdown, figures footnoted.
pub fn markdown(r: &pb::CountyReport, lang: Lang) -> String {
    let rep = build(r, lang);
    let mut out = format!("# {}\n\n", rep.title);
    let mut notes = Vec::new();
    for (head, sentences) in &rep.sections {
        out.push_str(&format!("## {head}\n\n"));
        for parts in sentences {
            for p in parts {
                match p {
                    Part::Text(x) => out.push_str(x),
                    Part::Fig(f) => {
                        notes.push(f.field.clone());
                        out.push_str(&format!("**{}**[^{}]", f.text, notes.len()));
                    }
                }
            }
            out.push_str("\n\n");
        }
    }
    out.push_str(if rep.lang == Lang::Zh { "---\n\n每个数字均由账本计算，脚注为产生该数字的查询及其字段：\n\n" } else { "---\n\nEvery figure is computed from the ledger; each footnote names the query and the field of its answer:\n\n" });
    for (i, field) in notes.iter().enumerate() {
        out.push_str(&format!("[^{}]: `{}` → `{}`\n", i + 1, rep.query, field));
    }
    out
}

/// The report as a printable HTML page, figures footnoted.
pub fn html(r: &pb::CountyReport, lang: Lang) -> String {
    let rep = build(r, lang);
    let mut body = String::new();
    let mut notes = Vec::new();
    for (head, sentences) in &rep.sections {
        body.push_str(&format!("<h2>{}</h2>\n", esc(head)));
        for parts in sentences {
            body.push_str("<p>");
            for p in parts {
                match p {
                    Part::Text(x) => body.push_str(&esc(x)),
                    Part::Fig(f) => {
                        notes.push(f.field.clone());
                        let n = notes.len();
                        body.push_str(&format!("<b class=\"fig\">{}</b><sup><a href=\"#fn{n}\" id=\"ref{n}\">{n}</a></sup>", esc(&f.text)));
                    }
                }
            }
            body.push_str("</p>\n");
        }
    }
    let intro = if rep.lang == Lang::Zh { "每个数字均由账本计算，脚注为产生该数字的查询及其字段：" } else { "Every figure is computed from the ledger; each footnote names the query and the field of its answer:" };
    let mut foot = format!("<hr><p class=\"intro\">{}</p><ol class=\"notes\">\n", esc(intro));
    for (i, field) in notes.iter().enumerate() {
        foot.push_str(&format!("<li id=\"fn{}\"><code>{}</code> → <code>{}</code> <a href=\"#ref{}\">↩</a></li>\n", i + 1, esc(&rep.query), esc(field), i + 1));
    }
    foot.push_str("</ol>\n");
    format!(
        "<!doctype html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{}</title>\n<style>\nbody{{font-family:\"Noto Sans CJK SC\",\"PingFang SC\",\"Microsoft YaHei\",sans-serif;max-width:52em;margin:2em auto;padding:0 1em;line-height:1.7;color:#111}}\nh1{{font-size:1.5em;text-align:center}}h2{{font-size:1.15em;margin-top:1.6em}}\n.fig{{font-variant-numeric:tabular-nums}}sup a{{text-decoration:none;font-size:.7em;color:#555}}\n.notes{{font-size:.8em;color:#444}}code{{font-size:.95em}}\n@media print{{body{{margin:0;max-width:none}}a{{color:inherit}}h2{{break-after:avoid}}}}\n</style></head>\n<body>\n<h1>{}</h1>\n{body}{foot}</body></html>\n",
        if rep.lang == Lang::Zh { "zh-CN" } else { "en" },
        esc(&rep.title),
        esc(&rep.title),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_as_an_office_writes_them() {
        assert_eq!(yuan("54704450.00"), "¥54,704,450.00");
        assert_eq!(yuan("260100.00"), "¥260,100.00");
        assert_eq!(yuan("999.50"), "¥999.50");
        assert_eq!(yuan("-1000.00"), "-¥1,000.00");
        assert_eq!(rate(47, 47), "100.00%");
        assert_eq!(rate(1325, 1410), "93.97%");
        assert_eq!(rate(1, 0), "—");
    }

    #[test]
    fn every_figure_is_footnoted_with_the_query_and_its_field() {
        let r = pb::CountyReport { county: "620121".into(), from: "2026-01-01".into(), to: "2026-05-31".into(), wages_paid: "1660000.00".into(), workers_paid: 113, ..Default::default() };
        for lang in [Lang::Zh, Lang::En] {
            let md = markdown(&r, lang);
            // Each figure is bold and followed by its reference; each reference has a note.
            let figures = md.matches("**[^").count();
            let notes = md.lines().filter(|l| l.starts_with("[^")).count();
            assert!(notes > 20, "{md}");
            assert_eq!(figures, notes, "{md}");
            assert!(md.contains("¥1,660,000.00"), "{md}");
            assert!(md.contains("GetCountyReport county=620121 from=2026-01-01 to=2026-05-31 at_seq=0"));
            let page = html(&r, lang);
            assert_eq!(page.matches("<li id=\"fn").count(), notes);
        }
    }
}

/// A flag code's name in a Chinese report (the code follows it, as the dashboard shows it).
fn flag_name_zh(code: &str) -> Option<&'static str> {
    Some(match code {
        "WAGE_SHORTFALL" => "专用账户余额不足以支付应付工资",
        "WAGES_OVERDUE" => "工资逾期未足额支付",
        "SPLIT_BELOW_RATIO" => "人工费用拨付比例不足",
        "DEPOSIT_SHORTFALL" => "工资保证金未足额存储",
        "LETTER_EXPIRING" => "银行保函到期未续",
        "DRAWDOWN_NOT_REPLENISHED" => "保证金动用后未按期补足",
        "PAYROLL_MISSING" => "工资支付表未报送",
        "NO_WAGE_ACCOUNT" => "未开设农民工工资专用账户",
        "CONTRACT_MISSING" => "未签订劳动合同",
        "BALANCE_MISMATCH" => "账户余额与银行对账不符",
        "STATEMENT_MISSING" => "银行对账单未报送",
        "CASE_OVERDUE" => "案件超过办理时限",
        "ORDER_UNMET" => "限期整改指令书逾期未履行",
        "REFERRAL_DUE" => "达到移送标准未移送公安机关",
        _ => return None,
    })
}

#[cfg(test)]
mod flag_name_tests {
    /// A new flag code gets its Chinese name, or a Chinese report shows a bare code.
    #[test]
    fn every_flag_code_has_a_chinese_name() {
        for c in crate::projection::flags::FlagCode::ALL {
            assert!(super::flag_name_zh(c.as_str()).is_some(), "{} has no Chinese name", c.as_str());
        }
    }
}
