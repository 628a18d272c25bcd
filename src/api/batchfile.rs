//! Batch files for `anxin post`: CSV (a header row, then one command per row) or JSON
//! Lines (one object per line), both flat: a `type` column naming the command, and the
//! command's proto field names as the other columns, all values as text.
//!
//! Payroll lines and drawdown payees are rows of their own (`type` = `payroll_line` /
//! `drawdown_payee`) carrying the payroll's (`project`, `period`, `due_date`) or the
//! drawdown's (`project`, `order_no`, `date`) fields; consecutive rows of one payroll or
//! drawdown become one command. Lists in one cell (a case's `national_ids`, a closure's
//! `payout_seqs`) are separated by `;`. Empty cells are absent fields. Unknown columns are an
//! error, so a typo never silently drops a value.
//!
//! ```csv
//! type,project,payment_no,national_id,bank_card,amount,date,period
//! pay_wage,P01,DF-0001,62012119900101123X,6217000000000000011,5200.50,2026-02-10,2026-01
//! ```

use std::collections::BTreeMap;

use super::pb;
use super::pb::command::Kind;

/// One flat row: column -> value.
pub type Row = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("row {row}: {why}")]
pub struct BatchFileError {
    /// 1-based row (CSV: the header is row 1; JSONL: line number).
    pub row: usize,
    pub why: String,
}

/// Upper bound on rows in one batch file; `anxin post` splits larger sets of commands into
/// several batches anyway, this only bounds what is read into memory.
pub const FILE_ROWS_MAX: usize = 1_000_000;

/// Parses CSV text into rows.
///
/// # Errors
/// `BatchFileError` naming the bad row.
pub fn parse_csv(text: &str) -> Result<Vec<Row>, BatchFileError> {
    let mut rdr = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(text.as_bytes());
    let headers = rdr.headers().map_err(|e| BatchFileError { row: 1, why: e.to_string() })?.clone();
    let mut rows = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        if i >= FILE_ROWS_MAX {
            return Err(BatchFileError { row: i + 2, why: format!("more than {FILE_ROWS_MAX} rows") });
        }
        let rec = rec.map_err(|e| BatchFileError { row: i + 2, why: e.to_string() })?;
        let row: Row = headers.iter().zip(rec.iter()).filter(|(_, v)| !v.is_empty()).map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        rows.push(row);
    }
    Ok(rows)
}

/// Parses JSON Lines into rows; every value must be a string or a whole number. Amounts
/// are written as strings (`"1234.50"`): a JSON number with a fraction would pass through
/// a float, so it is refused.
///
/// # Errors
/// `BatchFileError` naming the bad line.
pub fn parse_jsonl(text: &str) -> Result<Vec<Row>, BatchFileError> {
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if rows.len() >= FILE_ROWS_MAX {
            return Err(BatchFileError { row: i + 1, why: format!("more than {FILE_ROWS_MAX} rows") });
        }
        let err = |why: String| BatchFileError { row: i + 1, why };
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| err(e.to_string()))?;
        let obj = v.as_object().ok_or_else(|| err("not a JSON object".into()))?;
        let mut row = Row::new();
        for (k, v) in obj {
            let s = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) if n.is_u64() => n.to_string(),
                serde_json::Value::Number(_) => return Err(err(format!("field {k:?}: write amounts as strings (\"1234.50\"), not JSON numbers"))),
                serde_json::Value::Null => continue,
                _ => return Err(err(format!("field {k:?} must be a string or a number"))),
            };
            if !s.is_empty() {
                row.insert(k.clone(), s);
            }
        }
        rows.push(row);
    }
    Ok(rows)
}

struct Fields<'a> {
    row: &'a Row,
    n: usize,
    used: Vec<&'static str>,
}

impl Fields<'_> {
    fn s(&mut self, name: &'static str) -> String {
        self.used.push(name);
        self.row.get(name).cloned().unwrap_or_default()
    }

    fn u32(&mut self, name: &'static str) -> Result<u32, BatchFileError> {
        let v = self.s(name);
        if v.is_empty() {
            return Ok(0);
        }
        v.parse().map_err(|_| BatchFileError { row: self.n, why: format!("{name} must be a whole number, not {v:?}") })
    }

    fn done(self) -> Result<(), BatchFileError> {
        for k in self.row.keys() {
            if k != "type" && !self.used.contains(&k.as_str()) {
                return Err(BatchFileError { row: self.n, why: format!("unknown column {k:?} for type {:?}", self.row.get("type").map_or("", String::as_str)) });
            }
        }
        Ok(())
    }
}

fn deposit_basis(v: &str, row: usize) -> Result<i32, BatchFileError> {
    Ok(match v {
        "" | "by_price" => pb::DepositBasis::ByPrice,
        "required" => pb::DepositBasis::Required,
        "exempt" => pb::DepositBasis::Exempt,
        _ => return Err(BatchFileError { row, why: format!("deposit_basis must be by_price, required or exempt, not {v:?}") }),
    } as i32)
}

fn funding(v: &str, row: usize) -> Result<i32, BatchFileError> {
    Ok(match v {
        "" => pb::Funding::Unstated,
        "government" => pb::Funding::Government,
        "other" => pb::Funding::Other,
        _ => return Err(BatchFileError { row, why: format!("funding must be government or other, not {v:?}") }),
    } as i32)
}

fn status(v: &str, row: usize) -> Result<i32, BatchFileError> {
    Ok(match v {
        "active" => pb::ProjectStatus::Active,
        "suspended" => pb::ProjectStatus::Suspended,
        "completed" => pb::ProjectStatus::Completed,
        _ => return Err(BatchFileError { row, why: format!("status must be active, suspended or completed, not {v:?}") }),
    } as i32)
}

/// Turns rows into wire commands. `first_row` is the number of the first row (for messages).
///
/// # Errors
/// `BatchFileError` naming the bad row.
pub fn commands(rows: &[Row], first_row: usize) -> Result<Vec<pb::Command>, BatchFileError> {
    let mut out: Vec<pb::Command> = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let n = first_row + i;
        let ty = row.get("type").map(String::as_str).unwrap_or("");
        let mut f = Fields { row, n, used: Vec::new() };
        let kind = match ty {
            "register_project" => Kind::RegisterProject(pb::RegisterProject {
                project: f.s("project"),
                county: f.s("county"),
                name: f.s("name"),
                general_contractor: f.s("general_contractor"),
                owner: f.s("owner"),
                contract_price: f.s("contract_price"),
                contract_date: f.s("contract_date"),
                permit_date: f.s("permit_date"),
                start_date: f.s("start_date"),
                planned_end: f.s("planned_end"),
                labour_ratio_bp: f.u32("labour_ratio_bp")?,
                deposit_rate_bp: f.u32("deposit_rate_bp")?,
                registered_on: f.s("registered_on"),
                deposit_basis: deposit_basis(&f.s("deposit_basis"), n)?,
                deposit_exemption_basis: f.s("deposit_exemption_basis"),
                funding: funding(&f.s("funding"), n)?,
            }),
            "change_project_status" => Kind::ChangeProjectStatus(pb::ChangeProjectStatus { project: f.s("project"), status: status(&f.s("status"), n)?, date: f.s("date") }),
            "open_wage_account" => Kind::OpenWageAccount(pb::OpenWageAccount { project: f.s("project"), bank: f.s("bank"), account_no: f.s("account_no"), date: f.s("date") }),
            "close_wage_account" => Kind::CloseWageAccount(pb::CloseWageAccount { project: f.s("project"), date: f.s("date") }),
            "enrol_worker" => Kind::EnrolWorker(pb::EnrolWorker { project: f.s("project"), national_id: f.s("national_id"), employer: f.s("employer"), bank_card: f.s("bank_card"), date: f.s("date") }),
            "record_contract" => Kind::RecordContract(pb::RecordContract { project: f.s("project"), national_id: f.s("national_id"), contract_no: f.s("contract_no"), date: f.s("date") }),
            "exit_worker" => Kind::ExitWorker(pb::ExitWorker { project: f.s("project"), national_id: f.s("national_id"), date: f.s("date") }),
            "payroll_line" => {
                let (project, period, due_date) = (f.s("project"), f.s("period"), f.s("due_date"));
                let (payroll_no, submitted_on) = (f.s("payroll_no"), f.s("submitted_on"));
                let line = pb::PayrollLine { national_id: f.s("national_id"), employer: f.s("employer"), days: f.u32("days")?, amount_due: f.s("amount_due") };
                f.done()?;
                if let Some(pb::Command { kind: Some(Kind::SubmitPayroll(p)) }) = out.last_mut() {
                    if p.project == project && p.period == period && p.due_date == due_date && p.payroll_no == payroll_no && p.submitted_on == submitted_on {
                        p.lines.push(line);
                        continue;
                    }
                }
                out.push(pb::Command { kind: Some(Kind::SubmitPayroll(pb::SubmitPayroll { project, period, due_date, lines: vec![line], payroll_no, submitted_on })) });
                continue;
            }
            "pay_deposit" => Kind::PayDeposit(pb::PayDeposit { project: f.s("project"), bank: f.s("bank"), payment_no: f.s("payment_no"), amount: f.s("amount"), date: f.s("date") }),
            "issue_guarantee_letter" => Kind::IssueGuaranteeLetter(pb::IssueGuaranteeLetter {
                project: f.s("project"),
                letter_no: f.s("letter_no"),
                bank: f.s("bank"),
                amount: f.s("amount"),
                valid_from: f.s("valid_from"),
                valid_to: f.s("valid_to"),
                issued_on: f.s("issued_on"),
                applicant: f.s("applicant"),
                beneficiary: f.s("beneficiary"),
            }),
            "cancel_guarantee_letter" => Kind::CancelGuaranteeLetter(pb::CancelGuaranteeLetter { project: f.s("project"), letter_no: f.s("letter_no"), date: f.s("date") }),
            "make_progress_payment" => Kind::MakeProgressPayment(pb::MakeProgressPayment { project: f.s("project"), payment_no: f.s("payment_no"), total: f.s("total"), wage_share: f.s("wage_share"), date: f.s("date") }),
            "top_up_wage_account" => Kind::TopUpWageAccount(pb::TopUpWageAccount { project: f.s("project"), payment_no: f.s("payment_no"), amount: f.s("amount"), date: f.s("date") }),
            "pay_wage" => Kind::PayWage(pb::PayWage {
                project: f.s("project"),
                payment_no: f.s("payment_no"),
                national_id: f.s("national_id"),
                bank_card: f.s("bank_card"),
                amount: f.s("amount"),
                date: f.s("date"),
                period: f.s("period"),
            }),
            "drawdown_payee" => {
                let (project, order_no, date) = (f.s("project"), f.s("order_no"), f.s("date"));
                let (order_date, reason) = (f.s("order_date"), f.s("reason"));
                let payee = pb::DrawdownPayee { national_id: f.s("national_id"), bank_card: f.s("bank_card"), amount: f.s("amount"), period: f.s("period") };
                f.done()?;
                if let Some(pb::Command { kind: Some(Kind::DrawDeposit(d)) }) = out.last_mut() {
                    if d.project == project && d.order_no == order_no && d.date == date && d.order_date == order_date && d.reason == reason {
                        d.payees.push(payee);
                        continue;
                    }
                }
                out.push(pb::Command { kind: Some(Kind::DrawDeposit(pb::DrawDeposit { project, order_no, date, payees: vec![payee], order_date, reason })) });
                continue;
            }
            "release_deposit" => Kind::ReleaseDeposit(pb::ReleaseDeposit { project: f.s("project"), date: f.s("date") }),
            "attest_balance" => Kind::AttestBalance(pb::AttestBalance {
                project: f.s("project"),
                account: match f.s("account").as_str() {
                    "wage" => pb::StatementAccount::Wage,
                    "deposit" => pb::StatementAccount::Deposit,
                    other => return Err(BatchFileError { row: n, why: format!("account must be wage or deposit, not {other:?}") }),
                } as i32,
                bank: f.s("bank"),
                date: f.s("date"),
                closing_balance: f.s("closing_balance"),
                bank_ref: f.s("bank_ref"),
            }),
            "open_case" => Kind::OpenCase(pb::OpenCase {
                case_no: f.s("case_no"),
                county: f.s("county"),
                source: match f.s("source").as_str() {
                    "complaint" => pb::CaseSource::Complaint,
                    "national_platform" => pb::CaseSource::NationalPlatform,
                    "provincial_platform" => pb::CaseSource::ProvincialPlatform,
                    "inspection" => pb::CaseSource::Inspection,
                    other => return Err(BatchFileError { row: n, why: format!("source must be complaint, national_platform, provincial_platform or inspection, not {other:?}") }),
                } as i32,
                received_on: f.s("received_on"),
                employer: f.s("employer"),
                project: f.s("project"),
                // Several workers: national IDs separated by ";".
                national_ids: f.s("national_ids").split(';').map(str::trim).filter(|x| !x.is_empty()).map(str::to_owned).collect(),
                amount_claimed: f.s("amount_claimed"),
                summary: f.s("summary"),
            }),
            "decide_case" => Kind::DecideCase(pb::DecideCase {
                case_no: f.s("case_no"),
                county: f.s("county"),
                date: f.s("date"),
                accepted: match f.s("accepted").as_str() {
                    "true" | "yes" => true,
                    "false" | "no" => false,
                    other => return Err(BatchFileError { row: n, why: format!("accepted must be true or false, not {other:?}") }),
                },
                reason: f.s("reason"),
            }),
            "extend_case" => Kind::ExtendCase(pb::ExtendCase { case_no: f.s("case_no"), county: f.s("county"), date: f.s("date"), reason: f.s("reason") }),
            "close_case" => Kind::CloseCase(pb::CloseCase {
                case_no: f.s("case_no"),
                county: f.s("county"),
                date: f.s("date"),
                outcome: match f.s("outcome").as_str() {
                    "recovered" => pb::CaseOutcome::Recovered,
                    "no_arrears" => pb::CaseOutcome::NoArrears,
                    "withdrawn" => pb::CaseOutcome::Withdrawn,
                    "transferred" => pb::CaseOutcome::Transferred,
                    other => return Err(BatchFileError { row: n, why: format!("outcome must be recovered, no_arrears, withdrawn or transferred, not {other:?}") }),
                } as i32,
                recovered: f.s("recovered"),
                // The payout records' sequence numbers, separated by ";".
                payout_seqs: seqs(&f.s("payout_seqs"), n)?,
                note: f.s("note"),
            }),
            "record_referral_outcome" => Kind::RecordReferralOutcome(pb::RecordReferralOutcome {
                order_no: f.s("order_no"),
                county: f.s("county"),
                date: f.s("date"),
                outcome: match f.s("outcome").as_str() {
                    "filed" => pb::ReferralOutcome::Filed,
                    "not_filed" => pb::ReferralOutcome::NotFiled,
                    "convicted" => pb::ReferralOutcome::Convicted,
                    "dropped" => pb::ReferralOutcome::Dropped,
                    other => return Err(BatchFileError { row: n, why: format!("outcome must be filed, not_filed, convicted or dropped, not {other:?}") }),
                } as i32,
                reference: f.s("reference"),
                note: f.s("note"),
            }),
            "issue_order" => Kind::IssueOrder(pb::IssueOrder {
                order_no: f.s("order_no"),
                county: f.s("county"),
                project: f.s("project"),
                employer: f.s("employer"),
                case_no: f.s("case_no"),
                issued_on: f.s("issued_on"),
                deadline: f.s("deadline"),
                amount: f.s("amount"),
                workers: f.u32("workers")?,
                largest: f.s("largest"),
                demand: f.s("demand"),
            }),
            "resolve_order" => Kind::ResolveOrder(pb::ResolveOrder {
                order_no: f.s("order_no"),
                county: f.s("county"),
                date: f.s("date"),
                complied: match f.s("complied").as_str() {
                    "true" | "yes" => true,
                    "false" | "no" => false,
                    other => return Err(BatchFileError { row: n, why: format!("complied must be true or false, not {other:?}") }),
                },
                record_seqs: seqs(&f.s("record_seqs"), n)?,
                note: f.s("note"),
            }),
            "refer_order" => Kind::ReferOrder(pb::ReferOrder { order_no: f.s("order_no"), county: f.s("county"), date: f.s("date"), police_ref: f.s("police_ref") }),
            "list_employer" => Kind::ListEmployer(pb::ListEmployer {
                county: f.s("county"),
                employer: f.s("employer"),
                listed_on: f.s("listed_on"),
                unmet_order_no: f.s("unmet_order_no"),
                mass_incident: f.s("mass_incident"),
            }),
            "delist_employer" => Kind::DelistEmployer(pb::DelistEmployer { county: f.s("county"), employer: f.s("employer"), date: f.s("date"), note: f.s("note") }),
            "record_inspection" => Kind::RecordInspection(pb::RecordInspection {
                county: f.s("county"),
                employer: f.s("employer"),
                date: f.s("date"),
                project: f.s("project"),
                contracts_signed: f.u32("contracts_signed")?,
                findings: f.s("findings"),
            }),
            "record_cards" => Kind::RecordCards(pb::RecordCards { county: f.s("county"), bank: f.s("bank"), date: f.s("date"), issued: f.u32("issued")?, activated: f.u32("activated")? }),
            "" => return Err(BatchFileError { row: n, why: "missing the type column".into() }),
            other => return Err(BatchFileError { row: n, why: format!("unknown type {other:?}") }),
        };
        f.done()?;
        out.push(pb::Command { kind: Some(kind) });
    }
    Ok(out)
}

/// Rows from `key=value` words (for a single command on the command line).
///
/// # Errors
/// A message naming a word without `=`.
pub fn row_from_pairs(ty: &str, pairs: &[String]) -> Result<Row, BatchFileError> {
    let mut row = Row::new();
    row.insert("type".into(), ty.into());
    for p in pairs {
        let (k, v) = p.split_once('=').ok_or_else(|| BatchFileError { row: 1, why: format!("{p:?} is not key=value") })?;
        row.insert(k.into(), v.into());
    }
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_become_commands_and_payroll_lines_group() {
        let csv = "type,project,period,due_date,national_id,employer,days,amount_due\n\
                   payroll_line,P1,2026-01,,A,E,22,100.50\n\
                   payroll_line,P1,2026-01,,B,E,20,99\n\
                   payroll_line,P2,2026-01,,C,E,20,1\n";
        let cmds = commands(&parse_csv(csv).unwrap(), 2).unwrap();
        assert_eq!(cmds.len(), 2);
        let Some(Kind::SubmitPayroll(p)) = &cmds[0].kind else { panic!() };
        assert_eq!((p.lines.len(), p.lines[0].amount_due.as_str(), p.lines[1].days), (2, "100.50", 20));
    }

    #[test]
    fn jsonl_amounts_are_strings_and_unknown_columns_are_refused() {
        let rows = parse_jsonl("{\"type\":\"top_up_wage_account\",\"project\":\"P1\",\"payment_no\":\"T1\",\"amount\":\"1234.50\",\"date\":\"2026-02-01\"}\n").unwrap();
        let cmds = commands(&rows, 1).unwrap();
        let Some(Kind::TopUpWageAccount(t)) = &cmds[0].kind else { panic!() };
        assert_eq!(t.amount, "1234.50");
        assert!(parse_jsonl("{\"type\":\"top_up_wage_account\",\"amount\":1234.5}").unwrap_err().why.contains("strings"));
        assert_eq!(parse_jsonl("{\"type\":\"payroll_line\",\"days\":22}").unwrap()[0]["days"], "22");
        let bad = parse_jsonl("{\"type\":\"top_up_wage_account\",\"amout\":\"1\"}").unwrap();
        assert!(commands(&bad, 1).unwrap_err().why.contains("amout"));
        assert!(parse_jsonl("[1]").is_err());
        assert!(commands(&parse_jsonl("{\"type\":\"nope\"}").unwrap(), 1).is_err());
    }
}

/// Sequence numbers in one cell, separated by `;`.
fn seqs(cell: &str, row: usize) -> Result<Vec<u64>, BatchFileError> {
    cell.split(';')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(|x| x.parse::<u64>().map_err(|_| BatchFileError { row, why: format!("{x:?} is not a sequence number") }))
        .collect()
}
