//! The demo county's plan (`crate::demo`) as the wire carries it, for `anxin demo`,
//! which posts it through the gRPC API as each party would.

use crate::demo::Plan;
use crate::domain::command::*;
use crate::domain::date::{Date, Period};
use crate::domain::ids::{CardRef, WorkerRef};
use crate::domain::principal::Principal;

/// The plan's batches as the wire carries them: clear national IDs and card numbers (the
/// server commits them), amounts and dates as text.
pub fn wire_batches(plan: &Plan) -> Vec<(Principal, String, Vec<super::pb::Command>)> {
    use super::pb;
    use super::pb::command::Kind;
    use std::collections::HashMap;
    let mut ids: HashMap<WorkerRef, String> = HashMap::new();
    let mut cards: HashMap<CardRef, String> = HashMap::new();
    for p in &plan.projects {
        for w in &p.workers {
            ids.insert(w.worker, w.national_id.expose_clear().to_owned());
            cards.insert(w.card_ref, w.card.expose_clear().to_owned());
        }
    }
    let id = |w: &WorkerRef| ids.get(w).cloned().expect("every demo worker is in the plan");
    let card = |c: &CardRef| cards.get(c).cloned().expect("every demo card is in the plan");
    let opt_date = |d: Option<Date>| d.map(|d| d.to_string()).unwrap_or_default();
    let opt_per = |p: Option<Period>| p.map(|p| p.to_string()).unwrap_or_default();
    let wire = |c: &Command| -> pb::Command {
        let kind = match c {
            Command::RegisterProject(m) => Kind::RegisterProject(pb::RegisterProject {
                project: m.project.to_string(),
                county: m.county.to_string(),
                name: m.name.to_string(),
                general_contractor: m.general_contractor.to_string(),
                owner: m.owner.to_string(),
                contract_price: m.contract_price.to_string(),
                contract_date: m.contract_date.to_string(),
                permit_date: opt_date(m.permit_date),
                start_date: m.start_date.to_string(),
                planned_end: m.planned_end.to_string(),
                labour_ratio_bp: m.labour_ratio_bp.unwrap_or(0),
                deposit_rate_bp: m.deposit_rate_bp.unwrap_or(0),
                registered_on: opt_date(m.registered_on),
                deposit_basis: match m.deposit_basis {
                    DepositBasis::ByPrice => pb::DepositBasis::ByPrice,
                    DepositBasis::Required => pb::DepositBasis::Required,
                    DepositBasis::Exempt(_) => pb::DepositBasis::Exempt,
                } as i32,
                deposit_exemption_basis: match &m.deposit_basis {
                    DepositBasis::Exempt(b) => b.to_string(),
                    _ => String::new(),
                },
                funding: match m.funding {
                    Funding::Unstated => pb::Funding::Unstated,
                    Funding::Government => pb::Funding::Government,
                    Funding::Other => pb::Funding::Other,
                } as i32,
            }),
            Command::ChangeProjectStatus(m) => Kind::ChangeProjectStatus(pb::ChangeProjectStatus { project: m.project.to_string(), status: crate::api::convert::status_to(m.status) as i32, date: m.date.to_string() }),
            Command::OpenWageAccount(m) => Kind::OpenWageAccount(pb::OpenWageAccount { project: m.project.to_string(), bank: m.bank.to_string(), account_no: m.account_no.to_string(), date: m.date.to_string() }),
            Command::CloseWageAccount(m) => Kind::CloseWageAccount(pb::CloseWageAccount { project: m.project.to_string(), date: m.date.to_string() }),
            Command::EnrolWorker(m) => Kind::EnrolWorker(pb::EnrolWorker { project: m.project.to_string(), national_id: id(&m.worker), employer: m.employer.to_string(), bank_card: card(&m.card), date: m.date.to_string() }),
            Command::RecordContract(m) => Kind::RecordContract(pb::RecordContract { project: m.project.to_string(), national_id: id(&m.worker), contract_no: m.contract_no.to_string(), date: m.date.to_string() }),
            Command::ExitWorker(m) => Kind::ExitWorker(pb::ExitWorker { project: m.project.to_string(), national_id: id(&m.worker), date: m.date.to_string() }),
            Command::SubmitPayroll(m) => Kind::SubmitPayroll(pb::SubmitPayroll {
                project: m.project.to_string(),
                period: m.period.to_string(),
                due_date: m.due_date.to_string(),
                lines: m.lines.iter().map(|l| pb::PayrollLine { national_id: id(&l.worker), employer: l.employer.to_string(), days: u32::from(l.days), amount_due: l.amount_due.to_string() }).collect(),
                payroll_no: m.payroll_no.as_ref().map(|n| n.to_string()).unwrap_or_default(),
                submitted_on: opt_date(m.submitted_on),
            }),
            Command::PayDeposit(m) => Kind::PayDeposit(pb::PayDeposit { project: m.project.to_string(), bank: m.bank.to_string(), payment_no: m.payment_no.to_string(), amount: m.amount.to_string(), date: m.date.to_string() }),
            Command::IssueGuaranteeLetter(m) => Kind::IssueGuaranteeLetter(pb::IssueGuaranteeLetter {
                project: m.project.to_string(),
                letter_no: m.letter_no.to_string(),
                bank: m.bank.to_string(),
                amount: m.amount.to_string(),
                valid_from: m.valid_from.to_string(),
                valid_to: m.valid_to.to_string(),
                issued_on: opt_date(m.issued_on),
                applicant: m.applicant.as_ref().map(|u| u.to_string()).unwrap_or_default(),
                beneficiary: m.beneficiary.as_ref().map(|b| b.to_string()).unwrap_or_default(),
            }),
            Command::CancelGuaranteeLetter(m) => Kind::CancelGuaranteeLetter(pb::CancelGuaranteeLetter { project: m.project.to_string(), letter_no: m.letter_no.to_string(), date: m.date.to_string() }),
            Command::MakeProgressPayment(m) => Kind::MakeProgressPayment(pb::MakeProgressPayment { project: m.project.to_string(), payment_no: m.payment_no.to_string(), total: m.total.to_string(), wage_share: m.wage_share.to_string(), date: m.date.to_string() }),
            Command::TopUpWageAccount(m) => Kind::TopUpWageAccount(pb::TopUpWageAccount { project: m.project.to_string(), payment_no: m.payment_no.to_string(), amount: m.amount.to_string(), date: m.date.to_string() }),
            Command::PayWage(m) => Kind::PayWage(pb::PayWage {
                project: m.project.to_string(),
                payment_no: m.payment_no.to_string(),
                national_id: id(&m.worker),
                bank_card: card(&m.card),
                amount: m.amount.to_string(),
                date: m.date.to_string(),
                period: opt_per(m.period),
            }),
            Command::DrawDeposit(m) => Kind::DrawDeposit(pb::DrawDeposit {
                project: m.project.to_string(),
                order_no: m.order_no.to_string(),
                date: m.date.to_string(),
                payees: m.payees.iter().map(|p| pb::DrawdownPayee { national_id: id(&p.worker), bank_card: card(&p.card), amount: p.amount.to_string(), period: opt_per(p.period) }).collect(),
                order_date: opt_date(m.order_date),
                reason: m.reason.as_ref().map(|r| r.to_string()).unwrap_or_default(),
            }),
            Command::ReleaseDeposit(m) => Kind::ReleaseDeposit(pb::ReleaseDeposit { project: m.project.to_string(), date: m.date.to_string() }),
            Command::AttestBalance(m) => Kind::AttestBalance(pb::AttestBalance {
                project: m.project.to_string(),
                account: crate::api::convert::statement_account_to(m.account) as i32,
                bank: m.bank.to_string(),
                date: m.date.to_string(),
                closing_balance: m.closing_balance.to_string(),
                bank_ref: m.bank_ref.to_string(),
            }),
            Command::OpenCase(m) => Kind::OpenCase(pb::OpenCase {
                case_no: m.case_no.to_string(),
                county: m.county.to_string(),
                source: crate::api::convert::case_source_to(m.source) as i32,
                received_on: m.received_on.to_string(),
                employer: m.employer.to_string(),
                project: m.project.as_ref().map(|p| p.to_string()).unwrap_or_default(),
                national_ids: m.workers.iter().map(id).collect(),
                amount_claimed: m.amount_claimed.to_string(),
                summary: m.summary.as_ref().map(|t| t.to_string()).unwrap_or_default(),
            }),
            Command::DecideCase(m) => Kind::DecideCase(pb::DecideCase {
                case_no: m.case_no.to_string(),
                county: m.county.to_string(),
                date: m.date.to_string(),
                accepted: m.accepted,
                reason: m.reason.as_ref().map(|t| t.to_string()).unwrap_or_default(),
            }),
            Command::ExtendCase(m) => Kind::ExtendCase(pb::ExtendCase { case_no: m.case_no.to_string(), county: m.county.to_string(), date: m.date.to_string(), reason: m.reason.to_string() }),
            Command::CloseCase(m) => Kind::CloseCase(pb::CloseCase {
                case_no: m.case_no.to_string(),
                county: m.county.to_string(),
                date: m.date.to_string(),
                outcome: crate::api::convert::case_outcome_to(m.outcome) as i32,
                recovered: m.recovered.to_string(),
                payout_seqs: m.payouts.clone(),
                note: m.note.as_ref().map(|t| t.to_string()).unwrap_or_default(),
            }),
            Command::IssueOrder(m) => Kind::IssueOrder(pb::IssueOrder {
                order_no: m.order_no.to_string(),
                county: m.county.to_string(),
                project: m.project.to_string(),
                employer: m.employer.to_string(),
                case_no: m.case_no.as_ref().map(|t| t.to_string()).unwrap_or_default(),
                issued_on: m.issued_on.to_string(),
                deadline: m.deadline.to_string(),
                amount: m.amount.to_string(),
                workers: m.workers,
                largest: m.largest.to_string(),
                demand: m.demand.to_string(),
            }),
            Command::ResolveOrder(m) => Kind::ResolveOrder(pb::ResolveOrder {
                order_no: m.order_no.to_string(),
                county: m.county.to_string(),
                date: m.date.to_string(),
                complied: m.complied,
                record_seqs: m.records.clone(),
                note: m.note.as_ref().map(|t| t.to_string()).unwrap_or_default(),
            }),
            Command::ReferOrder(m) => Kind::ReferOrder(pb::ReferOrder { order_no: m.order_no.to_string(), county: m.county.to_string(), date: m.date.to_string(), police_ref: m.police_ref.to_string() }),
            Command::ListEmployer(m) => Kind::ListEmployer(pb::ListEmployer {
                county: m.county.to_string(),
                employer: m.employer.to_string(),
                listed_on: m.listed_on.to_string(),
                unmet_order_no: match &m.basis {
                    ListingBasis::UnmetOrder(n) => n.to_string(),
                    ListingBasis::MassIncident(_) => String::new(),
                },
                mass_incident: match &m.basis {
                    ListingBasis::MassIncident(t) => t.to_string(),
                    ListingBasis::UnmetOrder(_) => String::new(),
                },
            }),
            Command::DelistEmployer(m) => Kind::DelistEmployer(pb::DelistEmployer {
                county: m.county.to_string(),
                employer: m.employer.to_string(),
                date: m.date.to_string(),
                note: m.note.as_ref().map(|t| t.to_string()).unwrap_or_default(),
            }),
            Command::RecordInspection(m) => Kind::RecordInspection(pb::RecordInspection {
                county: m.county.to_string(),
                employer: m.employer.to_string(),
                date: m.date.to_string(),
                project: m.project.as_ref().map(|p| p.to_string()).unwrap_or_default(),
                contracts_signed: m.contracts_signed,
                findings: m.findings.to_string(),
            }),
            Command::RecordReferralOutcome(m) => Kind::RecordReferralOutcome(pb::RecordReferralOutcome {
                order_no: m.order_no.to_string(),
                county: m.county.to_string(),
                date: m.date.to_string(),
                outcome: crate::api::convert::referral_outcome_to(m.outcome) as i32,
                reference: m.reference.as_ref().map(|t| t.to_string()).unwrap_or_default(),
                note: m.note.as_ref().map(|t| t.to_string()).unwrap_or_default(),
            }),
            Command::RecordCards(m) => Kind::RecordCards(pb::RecordCards { county: m.county.to_string(), bank: m.bank.to_string(), date: m.date.to_string(), issued: m.issued, activated: m.activated }),
        };
        pb::Command { kind: Some(kind) }
    };
    plan.batches.iter().map(|b| (b.principal.clone(), b.request_id.to_string(), b.commands.iter().map(wire).collect())).collect()
}
