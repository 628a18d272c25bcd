//! Wire <-> domain: proto messages become validated domain commands, and read models
//! become proto messages. Clear national IDs and card numbers are validated here and
//! replaced by vault commitments; they go no further.
//!
//! **Invariant**: only `api` touches generated proto types.

use crate::domain::command::{self as c, Command};
use crate::domain::date::{Date, Period};
use crate::domain::ids::*;
use crate::domain::money::{format_fen, Money, MoneyError};
use crate::projection::flags::{Flag, Grade};
use crate::projection::views::{CountySummary, PayrollLineView, ProjectView, WorkerView};
use crate::vault::Vault;

use super::error::ApiError;
use super::pb;

type R<T> = Result<T, ApiError>;

fn money_err(field: &str, e: MoneyError) -> ApiError {
    ApiError::invalid(e.code(), format!("{field}: {e}")).on(field)
}

pub fn money(field: &str, s: &str) -> R<Money> {
    Money::parse(s).map_err(|e| money_err(field, e))
}

/// Money that moves: positive.
pub fn amount(field: &str, s: &str) -> R<Money> {
    Money::parse_positive(s).map_err(|e| money_err(field, e))
}

pub fn date(field: &str, s: &str) -> R<Date> {
    if s.is_empty() {
        return Err(ApiError::invalid("MISSING_FIELD", format!("{field} is required")).on(field));
    }
    Date::parse(s).map_err(|e| ApiError::invalid("INVALID_DATE", format!("{field}: {e}")).on(field))
}

pub fn opt_date(field: &str, s: &str) -> R<Option<Date>> {
    if s.is_empty() { Ok(None) } else { date(field, s).map(Some) }
}

pub fn period(field: &str, s: &str) -> R<Period> {
    Period::parse(s).map_err(|e| ApiError::invalid("INVALID_PERIOD", format!("{field}: {e}")).on(field))
}

pub fn opt_period(field: &str, s: &str) -> R<Option<Period>> {
    if s.is_empty() { Ok(None) } else { period(field, s).map(Some) }
}

fn id_err(field: &str, e: IdError) -> ApiError {
    ApiError::invalid(e.code(), format!("{field}: {e}")).on(field)
}

pub fn project(s: &str) -> R<ProjectId> {
    ProjectId::parse(s).map_err(|e| id_err("project", e))
}

pub fn county(s: &str) -> R<CountyCode> {
    CountyCode::parse(s).map_err(|e| id_err("county", e))
}

fn uscc(field: &str, s: &str) -> R<Uscc> {
    Uscc::parse(s).map_err(|e| id_err(field, e))
}

fn bank(s: &str) -> R<BankCode> {
    BankCode::parse(s).map_err(|e| id_err("bank", e))
}

fn doc(field: &str, s: &str) -> R<DocNo> {
    DocNo::parse(s).map_err(|e| id_err(field, e))
}

fn text(field: &str, s: &str) -> R<Text> {
    Text::parse(s).map_err(|e| id_err(field, e))
}

pub fn national_id(s: &str) -> R<NationalId> {
    NationalId::parse(s).map_err(|e| id_err("national_id", e))
}

pub fn card(s: &str) -> R<BankCard> {
    BankCard::parse(s).map_err(|e| id_err("bank_card", e))
}

fn bp(field: &str, v: u32) -> R<Option<u32>> {
    match v {
        0 => Ok(None),
        1..=10_000 => Ok(Some(v)),
        _ => Err(ApiError::invalid("INVALID_POLICY_OVERRIDE", format!("{field}: {v} basis points is above 100%")).on(field)),
    }
}

pub fn status_from(v: i32) -> R<c::ProjectStatus> {
    match pb::ProjectStatus::try_from(v) {
        Ok(pb::ProjectStatus::Active) => Ok(c::ProjectStatus::Active),
        Ok(pb::ProjectStatus::Suspended) => Ok(c::ProjectStatus::Suspended),
        Ok(pb::ProjectStatus::Completed) => Ok(c::ProjectStatus::Completed),
        Ok(pb::ProjectStatus::Unspecified) => Err(ApiError::invalid("MISSING_FIELD", "status is required").on("status")),
        Err(_) => Err(ApiError::invalid("UNKNOWN_ENUM_VALUE", format!("status {v} is not a ProjectStatus")).on("status")),
    }
}

pub fn status_to(s: c::ProjectStatus) -> pb::ProjectStatus {
    match s {
        c::ProjectStatus::Active => pb::ProjectStatus::Active,
        c::ProjectStatus::Suspended => pb::ProjectStatus::Suspended,
        c::ProjectStatus::Completed => pb::ProjectStatus::Completed,
    }
}

fn worker_text(masked: String) -> Text {
    Text::parse(&masked).expect("a masked id is short printable text")
}

/// Converts one wire command, committing personal data through the vault.
///
/// # Errors
/// `INVALID_ARGUMENT` naming the field, or a vault fault (`UNAVAILABLE`).
pub fn command(cmd: &pb::Command, vault: &Vault) -> R<Command> {
    let kind = cmd.kind.as_ref().ok_or_else(|| ApiError::invalid("MISSING_FIELD", "command has no kind (an unknown or empty oneof)"))?;
    command_of(kind, vault).map_err(|e| e.under(&oneof_name(kind)))
}

/// The name of the `Command.kind` field a command is in (`pay_wage`): the field number its
/// encoding starts with, named by the proto's own descriptor (the one reflection serves).
/// Only on the error path.
fn oneof_name(kind: &pb::command::Kind) -> String {
    static NAMES: std::sync::OnceLock<std::collections::HashMap<u32, String>> = std::sync::OnceLock::new();
    let names = NAMES.get_or_init(|| {
        use prost::Message;
        let set = prost_types::FileDescriptorSet::decode(pb::FILE_DESCRIPTOR_SET).expect("the descriptor set build.rs wrote decodes");
        set.file
            .iter()
            .filter(|f| f.package() == "anxin.v1")
            .flat_map(|f| &f.message_type)
            .filter(|m| m.name() == "Command")
            .flat_map(|m| &m.field)
            .filter(|f| f.oneof_index.is_some())
            .map(|f| (f.number() as u32, f.name().to_owned()))
            .collect()
    });
    let mut buf = Vec::with_capacity(kind.encoded_len());
    kind.encode(&mut buf);
    let number = prost::encoding::decode_key(&mut buf.as_slice()).map_or(0, |(n, _)| n);
    names.get(&number).cloned().unwrap_or_else(|| format!("kind_{number}"))
}

fn command_of(kind: &pb::command::Kind, vault: &Vault) -> R<Command> {
    use pb::command::Kind;
    let known_worker = |s: &str| -> R<WorkerRef> { Ok(vault.worker_or_phantom(&national_id(s)?)?) };
    let known_card = |s: &str| -> R<CardRef> { Ok(vault.card_or_phantom(&card(s)?)?) };
    Ok(match kind {
        Kind::RegisterProject(m) => Command::RegisterProject(c::RegisterProject {
            project: project(&m.project)?,
            county: county(&m.county)?,
            name: text("name", &m.name)?,
            general_contractor: uscc("general_contractor", &m.general_contractor)?,
            owner: uscc("owner", &m.owner)?,
            contract_price: amount("contract_price", &m.contract_price)?,
            contract_date: date("contract_date", &m.contract_date)?,
            permit_date: opt_date("permit_date", &m.permit_date)?,
            start_date: date("start_date", &m.start_date)?,
            planned_end: date("planned_end", &m.planned_end)?,
            labour_ratio_bp: bp("labour_ratio_bp", m.labour_ratio_bp)?,
            deposit_rate_bp: bp("deposit_rate_bp", m.deposit_rate_bp)?,
            registered_on: opt_date("registered_on", &m.registered_on)?,
            deposit_basis: match (pb::DepositBasis::try_from(m.deposit_basis), m.deposit_exemption_basis.is_empty()) {
                (Ok(pb::DepositBasis::ByPrice), true) => c::DepositBasis::ByPrice,
                (Ok(pb::DepositBasis::Required), true) => c::DepositBasis::Required,
                (Ok(pb::DepositBasis::Exempt), false) => c::DepositBasis::Exempt(text("deposit_exemption_basis", &m.deposit_exemption_basis)?),
                (Ok(pb::DepositBasis::Exempt), true) => return Err(ApiError::invalid("MISSING_FIELD", "deposit_exemption_basis is required with DEPOSIT_BASIS_EXEMPT").on("deposit_exemption_basis")),
                (Ok(_), false) => return Err(ApiError::invalid("UNEXPECTED_FIELD", "deposit_exemption_basis is given only with DEPOSIT_BASIS_EXEMPT").on("deposit_exemption_basis")),
                (Err(_), _) => return Err(ApiError::invalid("UNKNOWN_ENUM_VALUE", format!("deposit_basis {} is not a DepositBasis", m.deposit_basis)).on("deposit_basis")),
            },
            funding: match pb::Funding::try_from(m.funding) {
                Ok(pb::Funding::Unstated) => c::Funding::Unstated,
                Ok(pb::Funding::Government) => c::Funding::Government,
                Ok(pb::Funding::Other) => c::Funding::Other,
                Err(_) => return Err(ApiError::invalid("UNKNOWN_ENUM_VALUE", format!("funding {} is not a Funding", m.funding)).on("funding")),
            },
        }),
        Kind::ChangeProjectStatus(m) => Command::ChangeProjectStatus(c::ChangeProjectStatus {
            project: project(&m.project)?,
            status: status_from(m.status)?,
            date: date("date", &m.date)?,
        }),
        Kind::OpenWageAccount(m) => Command::OpenWageAccount(c::OpenWageAccount {
            project: project(&m.project)?,
            bank: bank(&m.bank)?,
            account_no: text("account_no", &m.account_no)?,
            date: date("date", &m.date)?,
        }),
        Kind::CloseWageAccount(m) => Command::CloseWageAccount(c::CloseWageAccount { project: project(&m.project)?, date: date("date", &m.date)? }),
        Kind::EnrolWorker(m) => {
            let nid = national_id(&m.national_id)?;
            let bc = card(&m.bank_card)?;
            let (worker, worker_masked) = vault.worker(&nid)?;
            let (card_ref, card_masked) = vault.card(&bc)?;
            Command::EnrolWorker(c::EnrolWorker {
                project: project(&m.project)?,
                worker,
                worker_masked: worker_text(worker_masked),
                employer: uscc("employer", &m.employer)?,
                card: card_ref,
                card_masked: worker_text(card_masked),
                date: date("date", &m.date)?,
            })
        }
        Kind::RecordContract(m) => Command::RecordContract(c::RecordContract {
            project: project(&m.project)?,
            worker: known_worker(&m.national_id)?,
            contract_no: doc("contract_no", &m.contract_no)?,
            date: date("date", &m.date)?,
        }),
        Kind::ExitWorker(m) => Command::ExitWorker(c::ExitWorker { project: project(&m.project)?, worker: known_worker(&m.national_id)?, date: date("date", &m.date)? }),
        Kind::SubmitPayroll(m) => {
            let per = period("period", &m.period)?;
            if m.lines.len() > crate::limits::PAYROLL_LINES_MAX {
                return Err(ApiError::new(tonic::Code::ResourceExhausted, "LIMIT_EXCEEDED", format!("{} payroll lines; the limit is {}", m.lines.len(), crate::limits::PAYROLL_LINES_MAX)));
            }
            let mut lines = Vec::with_capacity(m.lines.len());
            for (i, l) in m.lines.iter().enumerate() {
                let line = (|| -> R<c::PayrollLine> {
                    Ok(c::PayrollLine {
                        worker: known_worker(&l.national_id)?,
                        employer: uscc("employer", &l.employer)?,
                        days: u8::try_from(l.days).map_err(|_| ApiError::invalid("INVALID_DAYS", format!("{} days in one month", l.days)).on("days"))?,
                        amount_due: money("amount_due", &l.amount_due)?,
                    })
                })()
                .map_err(|e| e.context(&format!("line {i}")).under(&format!("lines[{i}]")))?;
                lines.push(line);
            }
            Command::SubmitPayroll(c::SubmitPayroll {
                project: project(&m.project)?,
                period: per,
                due_date: opt_date("due_date", &m.due_date)?.unwrap_or_else(|| per.next().last_day()),
                lines,
                payroll_no: if m.payroll_no.is_empty() { None } else { Some(doc("payroll_no", &m.payroll_no)?) },
                submitted_on: opt_date("submitted_on", &m.submitted_on)?,
            })
        }
        Kind::PayDeposit(m) => Command::PayDeposit(c::PayDeposit {
            project: project(&m.project)?,
            bank: bank(&m.bank)?,
            payment_no: doc("payment_no", &m.payment_no)?,
            amount: amount("amount", &m.amount)?,
            date: date("date", &m.date)?,
        }),
        Kind::IssueGuaranteeLetter(m) => Command::IssueGuaranteeLetter(c::IssueGuaranteeLetter {
            project: project(&m.project)?,
            letter_no: doc("letter_no", &m.letter_no)?,
            bank: bank(&m.bank)?,
            amount: amount("amount", &m.amount)?,
            valid_from: date("valid_from", &m.valid_from)?,
            valid_to: date("valid_to", &m.valid_to)?,
            issued_on: opt_date("issued_on", &m.issued_on)?,
            applicant: if m.applicant.is_empty() { None } else { Some(uscc("applicant", &m.applicant)?) },
            beneficiary: if m.beneficiary.is_empty() { None } else { Some(text("beneficiary", &m.beneficiary)?) },
        }),
        Kind::CancelGuaranteeLetter(m) => Command::CancelGuaranteeLetter(c::CancelGuaranteeLetter {
            project: project(&m.project)?,
            letter_no: doc("letter_no", &m.letter_no)?,
            date: date("date", &m.date)?,
        }),
        Kind::MakeProgressPayment(m) => Command::MakeProgressPayment(c::MakeProgressPayment {
            project: project(&m.project)?,
            payment_no: doc("payment_no", &m.payment_no)?,
            total: amount("total", &m.total)?,
            wage_share: money("wage_share", &m.wage_share)?,
            date: date("date", &m.date)?,
        }),
        Kind::TopUpWageAccount(m) => Command::TopUpWageAccount(c::TopUpWageAccount {
            project: project(&m.project)?,
            payment_no: doc("payment_no", &m.payment_no)?,
            amount: amount("amount", &m.amount)?,
            date: date("date", &m.date)?,
        }),
        Kind::PayWage(m) => Command::PayWage(c::PayWage {
            project: project(&m.project)?,
            payment_no: doc("payment_no", &m.payment_no)?,
            worker: known_worker(&m.national_id)?,
            card: known_card(&m.bank_card)?,
            amount: amount("amount", &m.amount)?,
            date: date("date", &m.date)?,
            period: opt_period("period", &m.period)?,
        }),
        Kind::DrawDeposit(m) => {
            if m.payees.len() > crate::limits::DRAWDOWN_PAYEES_MAX {
                return Err(ApiError::new(tonic::Code::ResourceExhausted, "LIMIT_EXCEEDED", format!("{} payees; the limit is {}", m.payees.len(), crate::limits::DRAWDOWN_PAYEES_MAX)));
            }
            let mut payees = Vec::with_capacity(m.payees.len());
            for p in &m.payees {
                payees.push(c::DrawdownPayee {
                    worker: known_worker(&p.national_id)?,
                    card: known_card(&p.bank_card)?,
                    amount: amount("amount", &p.amount)?,
                    period: opt_period("period", &p.period)?,
                });
            }
            Command::DrawDeposit(c::DrawDeposit {
                project: project(&m.project)?,
                order_no: doc("order_no", &m.order_no)?,
                date: date("date", &m.date)?,
                payees,
                order_date: opt_date("order_date", &m.order_date)?,
                reason: if m.reason.is_empty() { None } else { Some(text("reason", &m.reason)?) },
            })
        }
        Kind::ReleaseDeposit(m) => Command::ReleaseDeposit(c::ReleaseDeposit { project: project(&m.project)?, date: date("date", &m.date)? }),
        Kind::AttestBalance(m) => Command::AttestBalance(c::AttestBalance {
            project: project(&m.project)?,
            account: match pb::StatementAccount::try_from(m.account) {
                Ok(pb::StatementAccount::Wage) => c::StatementAccount::Wage,
                Ok(pb::StatementAccount::Deposit) => c::StatementAccount::Deposit,
                Err(_) => return Err(ApiError::invalid("UNKNOWN_ENUM_VALUE", format!("account {} is not a StatementAccount", m.account)).on("account")),
            },
            bank: bank(&m.bank)?,
            date: date("date", &m.date)?,
            closing_balance: money("closing_balance", &m.closing_balance)?,
            bank_ref: doc("bank_ref", &m.bank_ref)?,
        }),
        Kind::OpenCase(m) => {
            if m.national_ids.len() > crate::limits::CASE_WORKERS_MAX {
                return Err(ApiError::new(tonic::Code::ResourceExhausted, "LIMIT_EXCEEDED", format!("{} workers; the limit is {}", m.national_ids.len(), crate::limits::CASE_WORKERS_MAX)));
            }
            let mut workers = Vec::with_capacity(m.national_ids.len());
            for n in &m.national_ids {
                // A complainant need not be enrolled: a worker the vault knows is named by
                // their commitment (which their payouts carry), one it does not by a
                // phantom commitment; nothing is stored for a case, so a refused one
                // leaves no trace in the vault either.
                workers.push(vault.worker_or_phantom(&national_id(n)?)?);
            }
            Command::OpenCase(c::OpenCase {
                case_no: doc("case_no", &m.case_no)?,
                county: county(&m.county)?,
                source: case_source_from(m.source)?,
                received_on: date("received_on", &m.received_on)?,
                employer: uscc("employer", &m.employer)?,
                project: if m.project.is_empty() { None } else { Some(project(&m.project)?) },
                workers,
                amount_claimed: money("amount_claimed", &m.amount_claimed)?,
                summary: opt_text("summary", &m.summary)?,
            })
        }
        Kind::DecideCase(m) => Command::DecideCase(c::DecideCase {
            case_no: doc("case_no", &m.case_no)?,
            county: county(&m.county)?,
            date: date("date", &m.date)?,
            accepted: m.accepted,
            reason: opt_text("reason", &m.reason)?,
        }),
        Kind::ExtendCase(m) => Command::ExtendCase(c::ExtendCase {
            case_no: doc("case_no", &m.case_no)?,
            county: county(&m.county)?,
            date: date("date", &m.date)?,
            reason: text("reason", &m.reason)?,
        }),
        Kind::CloseCase(m) => {
            if m.payout_seqs.len() > crate::limits::CASE_PAYOUTS_MAX {
                return Err(ApiError::new(tonic::Code::ResourceExhausted, "LIMIT_EXCEEDED", format!("{} payouts; the limit is {}", m.payout_seqs.len(), crate::limits::CASE_PAYOUTS_MAX)));
            }
            Command::CloseCase(c::CloseCase {
                case_no: doc("case_no", &m.case_no)?,
                county: county(&m.county)?,
                date: date("date", &m.date)?,
                outcome: match pb::CaseOutcome::try_from(m.outcome) {
                    Ok(pb::CaseOutcome::Recovered) => c::CaseOutcome::Recovered,
                    Ok(pb::CaseOutcome::NoArrears) => c::CaseOutcome::NoArrears,
                    Ok(pb::CaseOutcome::Withdrawn) => c::CaseOutcome::Withdrawn,
                    Ok(pb::CaseOutcome::Transferred) => c::CaseOutcome::Transferred,
                    Ok(pb::CaseOutcome::Unspecified) | Err(_) => return Err(ApiError::invalid("UNKNOWN_ENUM_VALUE", format!("outcome {} is not a CaseOutcome", m.outcome)).on("outcome")),
                },
                recovered: money("recovered", &m.recovered)?,
                payouts: m.payout_seqs.clone(),
                note: opt_text("note", &m.note)?,
            })
        }
        Kind::IssueOrder(m) => Command::IssueOrder(c::IssueOrder {
            order_no: doc("order_no", &m.order_no)?,
            county: county(&m.county)?,
            project: project(&m.project)?,
            employer: uscc("employer", &m.employer)?,
            case_no: if m.case_no.is_empty() { None } else { Some(doc("case_no", &m.case_no)?) },
            issued_on: date("issued_on", &m.issued_on)?,
            deadline: date("deadline", &m.deadline)?,
            amount: money("amount", &m.amount)?,
            workers: m.workers,
            largest: money("largest", &m.largest)?,
            demand: text("demand", &m.demand)?,
        }),
        Kind::ResolveOrder(m) => {
            if m.record_seqs.len() > crate::limits::CASE_PAYOUTS_MAX {
                return Err(ApiError::new(tonic::Code::ResourceExhausted, "LIMIT_EXCEEDED", format!("{} records; the limit is {}", m.record_seqs.len(), crate::limits::CASE_PAYOUTS_MAX)));
            }
            Command::ResolveOrder(c::ResolveOrder {
                order_no: doc("order_no", &m.order_no)?,
                county: county(&m.county)?,
                date: date("date", &m.date)?,
                complied: m.complied,
                records: m.record_seqs.clone(),
                note: opt_text("note", &m.note)?,
            })
        }
        Kind::ReferOrder(m) => Command::ReferOrder(c::ReferOrder {
            order_no: doc("order_no", &m.order_no)?,
            county: county(&m.county)?,
            date: date("date", &m.date)?,
            police_ref: doc("police_ref", &m.police_ref)?,
        }),
        Kind::ListEmployer(m) => Command::ListEmployer(c::ListEmployer {
            county: county(&m.county)?,
            employer: uscc("employer", &m.employer)?,
            listed_on: date("listed_on", &m.listed_on)?,
            basis: match (m.unmet_order_no.is_empty(), m.mass_incident.is_empty()) {
                (false, true) => c::ListingBasis::UnmetOrder(doc("unmet_order_no", &m.unmet_order_no)?),
                (true, false) => c::ListingBasis::MassIncident(text("mass_incident", &m.mass_incident)?),
                _ => return Err(ApiError::invalid("INVALID_LISTING_BASIS", "a listing gives exactly one basis: unmet_order_no or mass_incident")),
            },
        }),
        Kind::DelistEmployer(m) => Command::DelistEmployer(c::DelistEmployer {
            county: county(&m.county)?,
            employer: uscc("employer", &m.employer)?,
            date: date("date", &m.date)?,
            note: opt_text("note", &m.note)?,
        }),
        Kind::RecordInspection(m) => Command::RecordInspection(c::RecordInspection {
            county: county(&m.county)?,
            employer: uscc("employer", &m.employer)?,
            date: date("date", &m.date)?,
            project: if m.project.is_empty() { None } else { Some(project(&m.project)?) },
            contracts_signed: m.contracts_signed,
            findings: text("findings", &m.findings)?,
        }),
        Kind::RecordCards(m) => Command::RecordCards(c::RecordCards {
            county: county(&m.county)?,
            bank: bank(&m.bank)?,
            date: date("date", &m.date)?,
            issued: m.issued,
            activated: m.activated,
        }),
        Kind::RecordReferralOutcome(m) => Command::RecordReferralOutcome(c::RecordReferralOutcome {
            order_no: doc("order_no", &m.order_no)?,
            county: county(&m.county)?,
            date: date("date", &m.date)?,
            outcome: match pb::ReferralOutcome::try_from(m.outcome) {
                Ok(pb::ReferralOutcome::Filed) => c::ReferralOutcome::Filed,
                Ok(pb::ReferralOutcome::NotFiled) => c::ReferralOutcome::NotFiled,
                Ok(pb::ReferralOutcome::Convicted) => c::ReferralOutcome::Convicted,
                Ok(pb::ReferralOutcome::Dropped) => c::ReferralOutcome::Dropped,
                Ok(pb::ReferralOutcome::Unspecified) | Err(_) => return Err(ApiError::invalid("UNKNOWN_ENUM_VALUE", format!("outcome {} is not a ReferralOutcome", m.outcome)).on("outcome")),
            },
            reference: if m.reference.is_empty() { None } else { Some(doc("reference", &m.reference)?) },
            note: opt_text("note", &m.note)?,
        }),
    })
}

/// A referral outcome for the wire.
pub fn referral_outcome_to(o: c::ReferralOutcome) -> pb::ReferralOutcome {
    match o {
        c::ReferralOutcome::Filed => pb::ReferralOutcome::Filed,
        c::ReferralOutcome::NotFiled => pb::ReferralOutcome::NotFiled,
        c::ReferralOutcome::Convicted => pb::ReferralOutcome::Convicted,
        c::ReferralOutcome::Dropped => pb::ReferralOutcome::Dropped,
    }
}

fn opt_text(field: &str, s: &str) -> R<Option<Text>> {
    if s.is_empty() {
        Ok(None)
    } else {
        text(field, s).map(Some)
    }
}

fn case_source_from(v: i32) -> R<c::CaseSource> {
    match pb::CaseSource::try_from(v) {
        Ok(pb::CaseSource::Complaint) => Ok(c::CaseSource::Complaint),
        Ok(pb::CaseSource::NationalPlatform) => Ok(c::CaseSource::NationalPlatform),
        Ok(pb::CaseSource::ProvincialPlatform) => Ok(c::CaseSource::ProvincialPlatform),
        Ok(pb::CaseSource::Inspection) => Ok(c::CaseSource::Inspection),
        Ok(pb::CaseSource::Unspecified) | Err(_) => Err(ApiError::invalid("UNKNOWN_ENUM_VALUE", format!("source {v} is not a CaseSource")).on("source")),
    }
}

pub fn case_source_to(s: c::CaseSource) -> pb::CaseSource {
    match s {
        c::CaseSource::Complaint => pb::CaseSource::Complaint,
        c::CaseSource::NationalPlatform => pb::CaseSource::NationalPlatform,
        c::CaseSource::ProvincialPlatform => pb::CaseSource::ProvincialPlatform,
        c::CaseSource::Inspection => pb::CaseSource::Inspection,
    }
}

pub fn case_outcome_to(o: c::CaseOutcome) -> pb::CaseOutcome {
    match o {
        c::CaseOutcome::Recovered => pb::CaseOutcome::Recovered,
        c::CaseOutcome::NoArrears => pb::CaseOutcome::NoArrears,
        c::CaseOutcome::Withdrawn => pb::CaseOutcome::Withdrawn,
        c::CaseOutcome::Transferred => pb::CaseOutcome::Transferred,
    }
}

/// A case for the wire.
pub fn case(v: &crate::projection::casework::CaseView) -> pb::Case {
    let d = |d: Option<Date>| d.map(|d| d.to_string()).unwrap_or_default();
    pb::Case {
        county: v.county.to_string(),
        case_no: v.case_no.to_string(),
        source: case_source_to(v.source) as i32,
        received_on: v.received_on.to_string(),
        employer: v.employer.to_string(),
        project: v.project.as_ref().map(|p| p.to_string()).unwrap_or_default(),
        workers: v.workers,
        amount_claimed: format_fen(v.amount_claimed),
        status: serde_json::to_value(v.status).ok().and_then(|x| x.as_str().map(str::to_owned)).unwrap_or_default(),
        decided_on: d(v.decided_on),
        decide_by: v.decide_by.to_string(),
        close_by: d(v.close_by),
        extended_on: d(v.extended_on),
        closed_on: d(v.closed_on),
        outcome: v.outcome.map_or(0, |o| case_outcome_to(o) as i32),
        recovered: format_fen(v.recovered),
        workers_paid: v.workers_paid,
        payout_seqs: v.payouts.clone(),
        records: v.records.clone(),
        overdue_grade: v.overdue.map(|(g, _)| grade(g).to_owned()).unwrap_or_default(),
        overdue_since: d(v.overdue.map(|(_, s)| s)),
    }
}

/// A case past a time limit, as a flag (CASE_OVERDUE).
pub fn case_flag(v: &crate::projection::casework::CaseView) -> Option<pb::Flag> {
    let (g, since) = v.overdue?;
    let (detail, detail_zh) = match v.close_by {
        Some(by) => {
            let on = v.decided_on.map(|d| d.to_string()).unwrap_or_default();
            (format!("case {} accepted on {on} is not closed by {by}", v.case_no), format!("案件{}于{on}受理，{by}前未办结", v.case_no))
        }
        None => (
            format!("case {} received on {} is not accepted or declined by {}", v.case_no, v.received_on, v.decide_by),
            format!("案件{}于{}收到，{}前未决定是否受理", v.case_no, v.received_on, v.decide_by),
        ),
    };
    Some(pb::Flag {
        code: crate::projection::flags::FlagCode::CaseOverdue.as_str().to_owned(),
        grade: grade(g).to_owned(),
        project: v.project.as_ref().map(|p| p.to_string()).unwrap_or_default(),
        gap: format_fen(0),
        count: v.workers,
        since: since.to_string(),
        evidence: v.records.clone(),
        detail,
        detail_zh,
        case_no: v.case_no.to_string(),
    })
}

pub fn grade(g: Grade) -> &'static str {
    g.as_str()
}

pub fn flag(f: &Flag) -> pb::Flag {
    pb::Flag {
        code: f.code.as_str().to_owned(),
        grade: grade(f.grade).to_owned(),
        project: f.project.to_string(),
        gap: format_fen(f.gap),
        count: f.count,
        since: f.since.to_string(),
        evidence: f.evidence.clone(),
        detail: f.detail.clone(),
        detail_zh: f.detail_zh.clone(),
        case_no: String::new(),
    }
}

pub fn project_view(v: &ProjectView, as_of: Date, with_periods: bool) -> pb::Project {
    pb::Project {
        point: None,
        project: v.project.to_string(),
        name: v.name.clone(),
        county: v.county.to_string(),
        general_contractor: v.general_contractor.clone(),
        owner: v.owner.clone(),
        status: status_to(v.status) as i32,
        contract_price: format_fen(v.contract_price),
        registered_seq: v.registered_seq,
        wage_account_open: v.wage_account_open,
        wage_account_bank: v.wage_account_bank.clone().unwrap_or_default(),
        wage_balance: format_fen(v.wage_balance),
        deposit_required: format_fen(v.deposit_required),
        deposit_cash: format_fen(v.deposit_cash),
        letters_valid: format_fen(v.letters_valid),
        progress_total: format_fen(v.progress_total),
        wage_share_total: format_fen(v.wage_share_total),
        labour_ratio_bp: v.labour_ratio_bp,
        wages_paid_total: format_fen(v.wages_paid_total),
        workers_enrolled: v.workers_enrolled,
        workers_on_site: v.workers_on_site,
        workers_with_contract: v.workers_with_contract,
        owed: format_fen(v.owed),
        overdue: format_fen(v.overdue),
        payroll_periods: if with_periods { v.payroll_periods.iter().map(ToString::to_string).collect() } else { Vec::new() },
        flags: v.flags.iter().map(flag).collect(),
        as_of: as_of.to_string(),
        registered_on: v.registered_on.to_string(),
        deposit_basis: match v.deposit_basis {
            c::DepositBasis::ByPrice => pb::DepositBasis::ByPrice,
            c::DepositBasis::Required => pb::DepositBasis::Required,
            c::DepositBasis::Exempt(_) => pb::DepositBasis::Exempt,
        } as i32,
        deposit_exemption_basis: match &v.deposit_basis {
            c::DepositBasis::Exempt(b) => b.to_string(),
            _ => String::new(),
        },
        funding: match v.funding {
            c::Funding::Unstated => pb::Funding::Unstated,
            c::Funding::Government => pb::Funding::Government,
            c::Funding::Other => pb::Funding::Other,
        } as i32,
        letters: if with_periods { v.letters.iter().map(letter_view).collect() } else { Vec::new() },
        drawdowns: if with_periods { v.drawdowns.iter().map(drawdown_view).collect() } else { Vec::new() },
        reconciliation: if with_periods {
            v.reconciliation
                .iter()
                .map(|r| pb::AccountReconciliation {
                    account: statement_account_to(r.account) as i32,
                    bank: r.bank.clone(),
                    date: r.date.to_string(),
                    bank_balance: format_fen(r.bank_balance),
                    ledger_balance: format_fen(r.ledger_balance),
                    last_agreed: opt_date_text(r.last_agreed),
                    differs_since: opt_date_text(r.differs_since),
                    late_since: opt_date_text(r.late_since),
                })
                .collect()
        } else {
            Vec::new()
        },
    }
}

pub fn statement_account_to(a: c::StatementAccount) -> pb::StatementAccount {
    match a {
        c::StatementAccount::Wage => pb::StatementAccount::Wage,
        c::StatementAccount::Deposit => pb::StatementAccount::Deposit,
    }
}

fn opt_date_text(d: Option<Date>) -> String {
    d.map(|d| d.to_string()).unwrap_or_default()
}

fn letter_view(l: &crate::projection::views::LetterView) -> pb::LetterView {
    pb::LetterView {
        letter_no: l.letter_no.clone(),
        bank: l.bank.clone(),
        amount: format_fen(l.amount),
        valid_from: l.valid_from.to_string(),
        valid_to: l.valid_to.to_string(),
        issued_on: opt_date_text(l.issued_on),
        applicant: l.applicant.clone().unwrap_or_default(),
        beneficiary: l.beneficiary.clone().unwrap_or_default(),
        cancelled: opt_date_text(l.cancelled),
        valid: l.valid,
        seq: l.seq,
    }
}

fn drawdown_view(d: &crate::projection::views::DrawdownView) -> pb::DrawdownView {
    pb::DrawdownView {
        order_no: d.order_no.clone(),
        order_date: opt_date_text(d.order_date),
        date: d.date.to_string(),
        reason: d.reason.clone().unwrap_or_default(),
        amount: format_fen(d.amount),
        replenished: format_fen(d.replenished),
        seq: d.seq,
    }
}

pub fn county_summary(s: &CountySummary) -> pb::CountySummary {
    pb::CountySummary {
        point: None,
        county: s.county.map(|c| c.to_string()).unwrap_or_default(),
        as_of: s.as_of.map(|d| d.to_string()).unwrap_or_default(),
        projects_total: s.projects_total,
        projects_active: s.projects_active,
        projects_suspended: s.projects_suspended,
        projects_completed: s.projects_completed,
        workers_registered: s.workers_registered,
        workers_on_site: s.workers_on_site,
        enrolments: s.enrolments,
        enrolments_with_contract: s.enrolments_with_contract,
        wage_accounts_bound: s.wage_accounts_bound,
        deposit_required_projects: s.deposit_required_projects,
        deposit_covered_projects: s.deposit_covered_projects,
        deposit_cash_total: format_fen(s.deposit_cash_total),
        letters_valid_total: format_fen(s.letters_valid_total),
        progress_total: format_fen(s.progress_total),
        wage_share_total: format_fen(s.wage_share_total),
        wages_paid_year: format_fen(s.wages_paid_year),
        workers_paid_year: s.workers_paid_year,
        arrears: format_fen(s.arrears),
        arrears_workers: s.arrears_workers,
        flags_red: s.flags_red,
        flags_yellow: s.flags_yellow,
        flags_by_code: s.flags_by_code.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        reconciliation: s
            .reconciliation
            .iter()
            .map(|(bank, r)| pb::BankReconciliation { bank: bank.clone(), accounts: r.accounts, agreed: r.agreed, differ: r.differ, late: r.late })
            .collect(),
        casework: casework_figures(&s.casework),
    }
}

pub fn casework_figures(m: &std::collections::BTreeMap<String, crate::projection::casework::SourceFigures>) -> Vec<pb::CaseworkFigures> {
    m.iter()
        .map(|(source, f)| pb::CaseworkFigures {
            source: source.clone(),
            received: f.received,
            accepted: f.accepted,
            declined: f.declined,
            closed: f.closed,
            overdue: f.overdue,
            recovered: format_fen(f.recovered),
            workers_paid: f.workers_paid,
        })
        .collect()
}

pub fn worker_view(w: &WorkerView) -> pb::Worker {
    pb::Worker {
        point: None,
        payments: w.payments.iter().map(|p| pb::WorkerPayment { seq: p.seq, date: p.date.to_string(), amount: format_fen(p.amount) }).collect(),
        worker_ref: w.worker.to_hex(),
        masked_id: w.masked.clone(),
        paid_total: format_fen(w.paid_total),
        owed_total: format_fen(w.owed_total),
        enrolments: w
            .enrolments
            .iter()
            .map(|e| pb::WorkerEnrolment {
                project: e.project.to_string(),
                employer: e.employer.clone(),
                card_masked: e.card_masked.clone(),
                on_site: e.on_site,
                first_day: e.first_day.to_string(),
                last_exit: e.last_exit.map(|d| d.to_string()).unwrap_or_default(),
                contract_no: e.contract_no.clone().unwrap_or_default(),
                owed: format_fen(e.owed),
            })
            .collect(),
    }
}

pub fn payroll_line(l: &PayrollLineView) -> pb::PayrollLineView {
    pb::PayrollLineView {
        worker_ref: l.worker.to_hex(),
        masked_id: l.worker_masked.clone(),
        employer: l.employer.clone(),
        days: u32::from(l.days),
        due: format_fen(l.due),
        paid: format_fen(l.paid),
    }
}

/// A checkpoint as it came over the wire, for a client to verify: its signed note (the
/// other fields are display copies, never trusted).
///
/// # Errors
/// A message if the note is not a checkpoint of format 2.
pub fn checkpoint_from_pb(p: &pb::Checkpoint) -> Result<crate::chain::checkpoint::SignedCheckpoint, String> {
    if p.note.is_empty() {
        return Err(format!("the server sent a checkpoint of format {} without a signed note (this client reads format 2)", p.version));
    }
    crate::chain::checkpoint::SignedCheckpoint::from_note(p.note.as_bytes()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    /// Every field of the oneof, decoded from its key with an empty message, is named as
    /// the proto names it (and as prost names the variant, in snake case).
    #[test]
    fn every_command_kind_is_named_by_its_field() {
        let set = prost_types::FileDescriptorSet::decode(pb::FILE_DESCRIPTOR_SET).unwrap();
        let command = set.file.iter().flat_map(|f| &f.message_type).find(|m| m.name() == "Command").unwrap();
        let fields: Vec<_> = command.field.iter().filter(|f| f.oneof_index.is_some()).collect();
        assert!(fields.len() > 20, "{}", fields.len());
        for f in fields {
            let mut bytes = Vec::new();
            prost::encoding::encode_varint(u64::from((f.number() as u32) << 3 | 2), &mut bytes);
            bytes.push(0);
            let kind = pb::Command::decode(bytes.as_slice()).unwrap().kind.unwrap();
            assert_eq!(oneof_name(&kind), f.name());
            let variant = format!("{kind:?}");
            let variant = variant.split('(').next().unwrap();
            assert_eq!(variant.to_lowercase(), f.name().replace('_', ""), "{variant}");
        }
        assert_eq!(oneof_name(&pb::command::Kind::PayWage(Default::default())), "pay_wage");
    }
}
