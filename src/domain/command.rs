//! Commands (requests, in the imperative) and events (facts, in the past tense).
//!
//! Each accepted command becomes exactly one event. Most events carry their command's
//! payload unchanged; the two whose outcome depends on the ledger's state
//! (`WageAccountClosed`, `DepositReleased`) add the amount the state decided. The order
//! of the variants is part of the canonical format (`docs/FORMAT.md`): append only.

use serde::{Deserialize, Serialize};

use super::date::{Date, Period};
use super::ids::{BankCode, CardRef, CountyCode, DocNo, ProjectId, Text, Uscc, WorkerRef};
use super::money::Money;

pub use super::casework::{CaseOutcome, CaseSource, CloseCase, DecideCase, DelistEmployer, ExtendCase, IssueOrder, ListEmployer, ListingBasis, OpenCase, RecordCards, RecordInspection, RecordReferralOutcome, ReferOrder, ReferralOutcome, ResolveOrder};

/// A project's lifecycle status.
/// In canonical bytes a `u32` variant index (0, 1, 2); in JSON its lowercase name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProjectStatus {
    /// In construction (在建).
    Active,
    /// Stopped (停工).
    Suspended,
    /// Completed (竣工); terminal.
    Completed,
}

impl ProjectStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ProjectStatus::Active => "active",
            ProjectStatus::Suspended => "suspended",
            ProjectStatus::Completed => "completed",
        }
    }
}


/// Serde for a command whose later fields exist only from format 2 on
/// (`super::layout`): in format 1 they are neither written nor read (they decode as
/// their defaults, and a value that is not the default cannot be written in format 1).
macro_rules! versioned {
    ($name:ident { $($old:ident: $oty:ty,)* } + { $($new:ident: $nty:ty,)* }) => {
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::{Error, SerializeStruct};
                let two = super::layout::current() >= 2;
                let n = [$(stringify!($old)),*].len() + if two { [$(stringify!($new)),*].len() } else { 0 };
                let mut st = s.serialize_struct(stringify!($name), n)?;
                $(st.serialize_field(stringify!($old), &self.$old)?;)*
                if two {
                    $(st.serialize_field(stringify!($new), &self.$new)?;)*
                } else if $(self.$new != <$nty>::default())||* {
                    return Err(S::Error::custom(concat!(stringify!($name), ": fields of format 2 cannot be written in format 1")));
                }
                st.end()
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                const ONE: &[&str] = &[$(stringify!($old)),*];
                const TWO: &[&str] = &[$(stringify!($old),)* $(stringify!($new)),*];
                struct V(bool);
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str(concat!("a ", stringify!($name)))
                    }
                    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<$name, A::Error> {
                        let mut i = 0usize;
                        $(let $old: $oty = a.next_element()?.ok_or_else(|| serde::de::Error::invalid_length(i, &self))?; i += 1;)*
                        $(let $new: $nty = if self.0 { a.next_element()?.ok_or_else(|| serde::de::Error::invalid_length(i, &self))? } else { <$nty>::default() }; i += 1;)*
                        let _ = i;
                        Ok($name { $($old,)* $($new,)* })
                    }
                }
                let two = super::layout::current() >= 2;
                d.deserialize_struct(stringify!($name), if two { TWO } else { ONE }, V(two))
            }
        }
    };
}

/// How a project's wage guarantee deposit is decided (format 2; format 1 records read
/// as `ByPrice`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DepositBasis {
    /// By the contract price: exempt below the policy's threshold (¥3M by default).
    #[default]
    ByPrice,
    /// Required whatever the price (a small project the county does not exempt).
    Required,
    /// Exempt, on the stated basis (e.g. a county's exemption for a good payment record).
    Exempt(Text),
}

/// Who funds the project (format 2; format 1 records read as `Unstated`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Funding {
    #[default]
    Unstated,
    /// Government-invested (政府投资项目): the owner may not have the contractor advance
    /// the works' funds, and arrears are the owner's to clear first.
    Government,
    /// Any other funding.
    Other,
}

/// The county registers a construction project (项目登记).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisterProject {
    pub project: ProjectId,
    pub county: CountyCode,
    pub name: Text,
    /// General contractor (施工总承包单位), who answers for the wages.
    pub general_contractor: Uscc,
    /// Owner (建设单位), who makes the progress payments.
    pub owner: Uscc,
    pub contract_price: Money,
    /// Date of the construction contract: the wage-account deadline counts from it.
    pub contract_date: Date,
    /// Construction permit (施工许可证) date, if one is needed: the deposit deadline counts from it.
    pub permit_date: Option<Date>,
    pub start_date: Date,
    pub planned_end: Date,
    /// The contract's own labour-cost ratio in basis points, overriding the county's.
    pub labour_ratio_bp: Option<u32>,
    /// The deposit rate set for this project in basis points, overriding the county's.
    pub deposit_rate_bp: Option<u32>,
    /// Format 2: the day the county registered it (项目登记日期), which dates the
    /// registration; none in format 1 (dated by the contract and start dates).
    pub registered_on: Option<Date>,
    /// Format 2: how its deposit is decided.
    pub deposit_basis: DepositBasis,
    /// Format 2: who funds it.
    pub funding: Funding,
}

versioned!(RegisterProject {
    project: ProjectId, county: CountyCode, name: Text, general_contractor: Uscc, owner: Uscc, contract_price: Money,
    contract_date: Date, permit_date: Option<Date>, start_date: Date, planned_end: Date, labour_ratio_bp: Option<u32>, deposit_rate_bp: Option<u32>,
} + { registered_on: Option<Date>, deposit_basis: DepositBasis, funding: Funding, });

impl RegisterProject {
    /// The day a registration is dated: its registration date (format 2), else the
    /// earlier of its contract and start dates.
    pub fn dated(&self) -> Date {
        self.registered_on.unwrap_or(self.contract_date.min(self.start_date))
    }
}

/// The county records a status change (active, suspended, completed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeProjectStatus {
    pub project: ProjectId,
    pub status: ProjectStatus,
    pub date: Date,
}

/// A bank opens the project's dedicated wage account (农民工工资专用账户).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenWageAccount {
    pub project: ProjectId,
    pub bank: BankCode,
    /// The account number as the bank writes it (an enterprise account, not personal data).
    pub account_no: Text,
    pub date: Date,
}

/// A bank closes the wage account after completion; any residual goes to the general contractor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseWageAccount {
    pub project: ProjectId,
    pub date: Date,
}

/// Real-name registration (实名制) of a worker on a project, with the bank card bound to them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolWorker {
    pub project: ProjectId,
    /// Keyed commitment to the national ID; the clear ID never enters the log.
    pub worker: WorkerRef,
    /// Masked national ID (`6201**********123X`), for display.
    pub worker_masked: Text,
    /// The employing subcontractor (or the general contractor).
    pub employer: Uscc,
    /// Keyed commitment to the worker's own bank card (一人一卡).
    pub card: CardRef,
    pub card_masked: Text,
    pub date: Date,
}

/// The worker's labour contract (劳动合同) is recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordContract {
    pub project: ProjectId,
    pub worker: WorkerRef,
    pub contract_no: DocNo,
    pub date: Date,
}

/// The worker leaves the project (退场).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitWorker {
    pub project: ProjectId,
    pub worker: WorkerRef,
    pub date: Date,
}

/// One line of a payroll (工资支付表).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayrollLine {
    pub worker: WorkerRef,
    pub employer: Uscc,
    /// Days worked in the period (0..=31).
    pub days: u8,
    pub amount_due: Money,
}

/// The monthly payroll of a project, submitted by the general contractor's labour officer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubmitPayroll {
    pub project: ProjectId,
    pub period: Period,
    /// When the wages must be paid: by default the last day of the next month.
    pub due_date: Date,
    pub lines: Vec<PayrollLine>,
    /// Format 2: the payroll's own number (工资表编号), if it has one.
    pub payroll_no: Option<DocNo>,
    /// Format 2: the day it was submitted, which dates it (format 1: the first day of
    /// the next month).
    pub submitted_on: Option<Date>,
}

versioned!(SubmitPayroll { project: ProjectId, period: Period, due_date: Date, lines: Vec<PayrollLine>, } + { payroll_no: Option<DocNo>, submitted_on: Option<Date>, });

/// Cash wage guarantee deposit (工资保证金) lodged, or replenished after a drawdown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayDeposit {
    pub project: ProjectId,
    pub bank: BankCode,
    pub payment_no: DocNo,
    pub amount: Money,
    pub date: Date,
}

/// A bank guarantee letter (银行保函) replacing cash deposit, valid for a date range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssueGuaranteeLetter {
    pub project: ProjectId,
    pub letter_no: DocNo,
    pub bank: BankCode,
    pub amount: Money,
    pub valid_from: Date,
    pub valid_to: Date,
    /// Format 2: the day the bank issued it (on or before `valid_from`), which dates it
    /// (format 1: `valid_from`).
    pub issued_on: Option<Date>,
    /// Format 2: who applied for it (申请人), usually the general contractor.
    pub applicant: Option<Uscc>,
    /// Format 2: whom it is in favour of (受益人), e.g. the county's human resources bureau.
    pub beneficiary: Option<Text>,
}

versioned!(IssueGuaranteeLetter { project: ProjectId, letter_no: DocNo, bank: BankCode, amount: Money, valid_from: Date, valid_to: Date, } + { issued_on: Option<Date>, applicant: Option<Uscc>, beneficiary: Option<Text>, });

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelGuaranteeLetter {
    pub project: ProjectId,
    pub letter_no: DocNo,
    pub date: Date,
}

/// A progress payment (工程款) from the owner, with the part moved into the wage account (分账).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MakeProgressPayment {
    pub project: ProjectId,
    pub payment_no: DocNo,
    pub total: Money,
    /// The labour-cost share (人工费用) that went to the wage account; may be zero, which
    /// is recorded and flagged, never refused: it already happened at the bank.
    pub wage_share: Money,
    pub date: Date,
}

/// The general contractor tops up the wage account from its own funds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopUpWageAccount {
    pub project: ProjectId,
    pub payment_no: DocNo,
    pub amount: Money,
    pub date: Date,
}

/// A payout from the wage account to a worker's own card (代发工资).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayWage {
    pub project: ProjectId,
    pub payment_no: DocNo,
    pub worker: WorkerRef,
    pub card: CardRef,
    pub amount: Money,
    pub date: Date,
    /// The payroll period this pays against; `None` for a payout outside any payroll.
    pub period: Option<Period>,
}

/// One payee of a drawdown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrawdownPayee {
    pub worker: WorkerRef,
    pub card: CardRef,
    pub amount: Money,
    pub period: Option<Period>,
}

/// The county orders the deposit drawn (动用) to pay named workers' arrears.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DrawDeposit {
    pub project: ProjectId,
    pub order_no: DocNo,
    /// The day the money was paid out.
    pub date: Date,
    pub payees: Vec<DrawdownPayee>,
    /// Format 2: the day the order was made (on or before `date`).
    pub order_date: Option<Date>,
    /// Format 2: why (e.g. "欠薪投诉 2026-031: 3月工资未发").
    pub reason: Option<Text>,
}

versioned!(DrawDeposit { project: ProjectId, order_no: DocNo, date: Date, payees: Vec<DrawdownPayee>, } + { order_date: Option<Date>, reason: Option<Text>, });

/// Which of a project's escrow accounts a bank statement is of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum StatementAccount {
    Wage,
    Deposit,
}

/// A bank attests one of a project's accounts' closing balance at the end of a business
/// day, as its own books show it (对账, format 2): what the ledger's balance is reconciled
/// against (`projection::reconcile`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttestBalance {
    pub project: ProjectId,
    pub account: StatementAccount,
    /// The attesting bank: the wage account's bank, or a bank that holds the deposit.
    pub bank: BankCode,
    /// The business day whose closing balance this is.
    pub date: Date,
    /// The balance at the close of `date` (zero allowed).
    pub closing_balance: Money,
    /// The bank's own reference for the statement, unique per bank.
    pub bank_ref: DocNo,
}

/// The county releases (返还) the cash deposit after completion with no arrears.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseDeposit {
    pub project: ProjectId,
    pub date: Date,
}

/// `CloseWageAccount` as decided: with the residual paid to the general contractor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WageAccountClosed {
    pub project: ProjectId,
    pub date: Date,
    pub residual: Money,
}

/// `ReleaseDeposit` as decided: with the cash released.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepositReleased {
    pub project: ProjectId,
    pub date: Date,
    pub amount: Money,
}

/// A request to change the ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    RegisterProject(RegisterProject),
    ChangeProjectStatus(ChangeProjectStatus),
    OpenWageAccount(OpenWageAccount),
    CloseWageAccount(CloseWageAccount),
    EnrolWorker(EnrolWorker),
    RecordContract(RecordContract),
    ExitWorker(ExitWorker),
    SubmitPayroll(SubmitPayroll),
    PayDeposit(PayDeposit),
    IssueGuaranteeLetter(IssueGuaranteeLetter),
    CancelGuaranteeLetter(CancelGuaranteeLetter),
    MakeProgressPayment(MakeProgressPayment),
    TopUpWageAccount(TopUpWageAccount),
    PayWage(PayWage),
    DrawDeposit(DrawDeposit),
    ReleaseDeposit(ReleaseDeposit),
    /// Format 2.
    AttestBalance(AttestBalance),
    /// Format 3: the county's casework (`super::casework`): cases, orders, referrals,
    /// the credit list, inspections and card counts.
    OpenCase(OpenCase),
    DecideCase(DecideCase),
    ExtendCase(ExtendCase),
    CloseCase(CloseCase),
    IssueOrder(IssueOrder),
    ResolveOrder(ResolveOrder),
    ReferOrder(ReferOrder),
    ListEmployer(ListEmployer),
    DelistEmployer(DelistEmployer),
    RecordInspection(RecordInspection),
    RecordCards(RecordCards),
    /// Format 3, added after the events above (issue 17).
    RecordReferralOutcome(RecordReferralOutcome),
}

/// A fact the ledger recorded. Variant `i` is the outcome of `Command` variant `i`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    ProjectRegistered(RegisterProject),
    ProjectStatusChanged(ChangeProjectStatus),
    WageAccountOpened(OpenWageAccount),
    WageAccountClosed(WageAccountClosed),
    WorkerEnrolled(EnrolWorker),
    ContractRecorded(RecordContract),
    WorkerExited(ExitWorker),
    PayrollSubmitted(SubmitPayroll),
    DepositPaid(PayDeposit),
    GuaranteeLetterIssued(IssueGuaranteeLetter),
    GuaranteeLetterCancelled(CancelGuaranteeLetter),
    ProgressPaymentMade(MakeProgressPayment),
    WageAccountToppedUp(TopUpWageAccount),
    WagePaid(PayWage),
    DepositDrawn(DrawDeposit),
    DepositReleased(DepositReleased),
    /// Format 2 only: a format 1 record holding it does not decode (`chain::record`).
    BalanceAttested(AttestBalance),
    /// Format 3 only, like the three after it.
    CaseOpened(OpenCase),
    CaseDecided(DecideCase),
    CaseExtended(ExtendCase),
    CaseClosed(CloseCase),
    OrderIssued(IssueOrder),
    OrderResolved(ResolveOrder),
    OrderReferred(ReferOrder),
    EmployerListed(ListEmployer),
    EmployerDelisted(DelistEmployer),
    InspectionRecorded(RecordInspection),
    CardsRecorded(RecordCards),
    ReferralOutcomeRecorded(RecordReferralOutcome),
}

impl Command {
    /// Every free-text field of the command, named: what `decide` checks for personal
    /// numbers (`ids::personal_number_in`) before anything is recorded. Exhaustive, so
    /// that a new command's text cannot go unchecked. The wage account number is a
    /// company's account, not a person's: only resident ID and mobile numbers are looked
    /// for in it (`account_no` is listed with `false`).
    /// (The project id, then up to two more; no allocation: the writer asks for every
    /// command.)
    pub fn free_text(&self) -> [Option<(&'static str, &str, bool)>; 5] {
        use Command::*;
        let project = self.project().map(|p| ("project", p.as_str(), true));
        match self {
            RegisterProject(c) => [
                project,
                Some(("name", c.name.as_str(), true)),
                match &c.deposit_basis {
                    DepositBasis::Exempt(basis) => Some(("deposit_exemption_basis", basis.as_str(), true)),
                    DepositBasis::ByPrice | DepositBasis::Required => None,
                },
                None,
                None,
            ],
            OpenWageAccount(c) => [project, Some(("bank", c.bank.as_str(), true)), Some(("account_no", c.account_no.as_str(), false)), None, None],
            EnrolWorker(c) => [project, Some(("worker_masked", c.worker_masked.as_str(), true)), Some(("card_masked", c.card_masked.as_str(), true)), None, None],
            RecordContract(c) => [project, Some(("contract_no", c.contract_no.as_str(), true)), None, None, None],
            PayDeposit(c) => [project, Some(("bank", c.bank.as_str(), true)), Some(("payment_no", c.payment_no.as_str(), true)), None, None],
            IssueGuaranteeLetter(c) => [
                project,
                Some(("letter_no", c.letter_no.as_str(), true)),
                Some(("bank", c.bank.as_str(), true)),
                c.beneficiary.as_ref().map(|b| ("beneficiary", b.as_str(), true)),
                None,
            ],
            CancelGuaranteeLetter(c) => [project, Some(("letter_no", c.letter_no.as_str(), true)), None, None, None],
            MakeProgressPayment(c) => [project, Some(("payment_no", c.payment_no.as_str(), true)), None, None, None],
            TopUpWageAccount(c) => [project, Some(("payment_no", c.payment_no.as_str(), true)), None, None, None],
            PayWage(c) => [project, Some(("payment_no", c.payment_no.as_str(), true)), None, None, None],
            DrawDeposit(c) => [project, Some(("order_no", c.order_no.as_str(), true)), c.reason.as_ref().map(|r| ("reason", r.as_str(), true)), None, None],
            SubmitPayroll(c) => [project, c.payroll_no.as_ref().map(|n| ("payroll_no", n.as_str(), true)), None, None, None],
            AttestBalance(c) => [project, Some(("bank", c.bank.as_str(), true)), Some(("bank_ref", c.bank_ref.as_str(), true)), None, None],
            ChangeProjectStatus(_) | CloseWageAccount(_) | ExitWorker(_) | ReleaseDeposit(_) => [project, None, None, None, None],
            OpenCase(c) => [project, Some(("case_no", c.case_no.as_str(), true)), c.summary.as_ref().map(|t| ("summary", t.as_str(), true)), None, None],
            DecideCase(c) => [None, Some(("case_no", c.case_no.as_str(), true)), c.reason.as_ref().map(|t| ("reason", t.as_str(), true)), None, None],
            ExtendCase(c) => [None, Some(("case_no", c.case_no.as_str(), true)), Some(("reason", c.reason.as_str(), true)), None, None],
            CloseCase(c) => [None, Some(("case_no", c.case_no.as_str(), true)), c.note.as_ref().map(|t| ("note", t.as_str(), true)), None, None],
            IssueOrder(c) => [project, Some(("order_no", c.order_no.as_str(), true)), c.case_no.as_ref().map(|t| ("case_no", t.as_str(), true)), Some(("demand", c.demand.as_str(), true)), None],
            ResolveOrder(c) => [None, Some(("order_no", c.order_no.as_str(), true)), c.note.as_ref().map(|t| ("note", t.as_str(), true)), None, None],
            ReferOrder(c) => [None, Some(("order_no", c.order_no.as_str(), true)), Some(("police_ref", c.police_ref.as_str(), true)), None, None],
            ListEmployer(c) => [
                None,
                match &c.basis {
                    ListingBasis::UnmetOrder(n) => Some(("basis", n.as_str(), true)),
                    ListingBasis::MassIncident(t) => Some(("basis", t.as_str(), true)),
                },
                None,
                None,
                None,
            ],
            DelistEmployer(c) => [None, c.note.as_ref().map(|t| ("note", t.as_str(), true)), None, None, None],
            RecordInspection(c) => [project, Some(("findings", c.findings.as_str(), true)), None, None, None],
            RecordCards(c) => [None, Some(("bank", c.bank.as_str(), true)), None, None, None],
            RecordReferralOutcome(c) => [
                None,
                Some(("order_no", c.order_no.as_str(), true)),
                c.reference.as_ref().map(|t| ("reference", t.as_str(), true)),
                c.note.as_ref().map(|t| ("note", t.as_str(), true)),
                None,
            ],
        }
    }

    /// The project the command concerns: every command of the money and the workers
    /// names one; a case names one where it is known.
    pub fn project(&self) -> Option<&ProjectId> {
        Some(match self {
            Command::RegisterProject(c) => &c.project,
            Command::ChangeProjectStatus(c) => &c.project,
            Command::OpenWageAccount(c) => &c.project,
            Command::CloseWageAccount(c) => &c.project,
            Command::EnrolWorker(c) => &c.project,
            Command::RecordContract(c) => &c.project,
            Command::ExitWorker(c) => &c.project,
            Command::SubmitPayroll(c) => &c.project,
            Command::PayDeposit(c) => &c.project,
            Command::IssueGuaranteeLetter(c) => &c.project,
            Command::CancelGuaranteeLetter(c) => &c.project,
            Command::MakeProgressPayment(c) => &c.project,
            Command::TopUpWageAccount(c) => &c.project,
            Command::PayWage(c) => &c.project,
            Command::DrawDeposit(c) => &c.project,
            Command::ReleaseDeposit(c) => &c.project,
            Command::AttestBalance(c) => &c.project,
            Command::OpenCase(c) => return c.project.as_ref(),
            Command::IssueOrder(c) => &c.project,
            Command::RecordInspection(c) => return c.project.as_ref(),
            Command::DecideCase(_)
            | Command::ExtendCase(_)
            | Command::CloseCase(_)
            | Command::ResolveOrder(_)
            | Command::ReferOrder(_)
            | Command::ListEmployer(_)
            | Command::DelistEmployer(_)
            | Command::RecordCards(_)
            | Command::RecordReferralOutcome(_) => return None,
        })
    }

    /// The county of a casework command (the office that keeps the case, the order, the
    /// listing, the inspection; the county a bank's card counts are for).
    pub fn case_county(&self) -> Option<CountyCode> {
        match self {
            Command::OpenCase(c) => Some(c.county),
            Command::DecideCase(c) => Some(c.county),
            Command::ExtendCase(c) => Some(c.county),
            Command::CloseCase(c) => Some(c.county),
            Command::IssueOrder(c) => Some(c.county),
            Command::ResolveOrder(c) => Some(c.county),
            Command::ReferOrder(c) => Some(c.county),
            Command::ListEmployer(c) => Some(c.county),
            Command::DelistEmployer(c) => Some(c.county),
            Command::RecordInspection(c) => Some(c.county),
            Command::RecordCards(c) => Some(c.county),
            Command::RecordReferralOutcome(c) => Some(c.county),
            _ => None,
        }
    }

    /// The stable name of the command, as in the API.
    pub fn name(&self) -> &'static str {
        match self {
            Command::RegisterProject(_) => "RegisterProject",
            Command::ChangeProjectStatus(_) => "ChangeProjectStatus",
            Command::OpenWageAccount(_) => "OpenWageAccount",
            Command::CloseWageAccount(_) => "CloseWageAccount",
            Command::EnrolWorker(_) => "EnrolWorker",
            Command::RecordContract(_) => "RecordContract",
            Command::ExitWorker(_) => "ExitWorker",
            Command::SubmitPayroll(_) => "SubmitPayroll",
            Command::PayDeposit(_) => "PayDeposit",
            Command::IssueGuaranteeLetter(_) => "IssueGuaranteeLetter",
            Command::CancelGuaranteeLetter(_) => "CancelGuaranteeLetter",
            Command::MakeProgressPayment(_) => "MakeProgressPayment",
            Command::TopUpWageAccount(_) => "TopUpWageAccount",
            Command::PayWage(_) => "PayWage",
            Command::DrawDeposit(_) => "DrawDeposit",
            Command::ReleaseDeposit(_) => "ReleaseDeposit",
            Command::AttestBalance(_) => "AttestBalance",
            Command::OpenCase(_) => "OpenCase",
            Command::DecideCase(_) => "DecideCase",
            Command::ExtendCase(_) => "ExtendCase",
            Command::CloseCase(_) => "CloseCase",
            Command::IssueOrder(_) => "IssueOrder",
            Command::ResolveOrder(_) => "ResolveOrder",
            Command::ReferOrder(_) => "ReferOrder",
            Command::ListEmployer(_) => "ListEmployer",
            Command::DelistEmployer(_) => "DelistEmployer",
            Command::RecordInspection(_) => "RecordInspection",
            Command::RecordCards(_) => "RecordCards",
            Command::RecordReferralOutcome(_) => "RecordReferralOutcome",
        }
    }
}

impl Event {
    /// The command this event is the outcome of. Used to rebuild the idempotency index
    /// from the log alone: a retry's content is compared as commands.
    pub fn to_command(&self) -> Command {
        match self.clone() {
            Event::ProjectRegistered(c) => Command::RegisterProject(c),
            Event::ProjectStatusChanged(c) => Command::ChangeProjectStatus(c),
            Event::WageAccountOpened(c) => Command::OpenWageAccount(c),
            Event::WageAccountClosed(e) => Command::CloseWageAccount(CloseWageAccount { project: e.project, date: e.date }),
            Event::WorkerEnrolled(c) => Command::EnrolWorker(c),
            Event::ContractRecorded(c) => Command::RecordContract(c),
            Event::WorkerExited(c) => Command::ExitWorker(c),
            Event::PayrollSubmitted(c) => Command::SubmitPayroll(c),
            Event::DepositPaid(c) => Command::PayDeposit(c),
            Event::GuaranteeLetterIssued(c) => Command::IssueGuaranteeLetter(c),
            Event::GuaranteeLetterCancelled(c) => Command::CancelGuaranteeLetter(c),
            Event::ProgressPaymentMade(c) => Command::MakeProgressPayment(c),
            Event::WageAccountToppedUp(c) => Command::TopUpWageAccount(c),
            Event::WagePaid(c) => Command::PayWage(c),
            Event::DepositDrawn(c) => Command::DrawDeposit(c),
            Event::DepositReleased(e) => Command::ReleaseDeposit(ReleaseDeposit { project: e.project, date: e.date }),
            Event::BalanceAttested(c) => Command::AttestBalance(c),
            Event::CaseOpened(c) => Command::OpenCase(c),
            Event::CaseDecided(c) => Command::DecideCase(c),
            Event::CaseExtended(c) => Command::ExtendCase(c),
            Event::CaseClosed(c) => Command::CloseCase(c),
            Event::OrderIssued(c) => Command::IssueOrder(c),
            Event::OrderResolved(c) => Command::ResolveOrder(c),
            Event::OrderReferred(c) => Command::ReferOrder(c),
            Event::EmployerListed(c) => Command::ListEmployer(c),
            Event::EmployerDelisted(c) => Command::DelistEmployer(c),
            Event::InspectionRecorded(c) => Command::RecordInspection(c),
            Event::CardsRecorded(c) => Command::RecordCards(c),
            Event::ReferralOutcomeRecorded(c) => Command::RecordReferralOutcome(c),
        }
    }

    /// The project the event concerns, if it names one (`Command::project`).
    pub fn project(&self) -> Option<&ProjectId> {
        Some(match self {
            Event::ProjectRegistered(c) => &c.project,
            Event::ProjectStatusChanged(c) => &c.project,
            Event::WageAccountOpened(c) => &c.project,
            Event::WageAccountClosed(e) => &e.project,
            Event::WorkerEnrolled(c) => &c.project,
            Event::ContractRecorded(c) => &c.project,
            Event::WorkerExited(c) => &c.project,
            Event::PayrollSubmitted(c) => &c.project,
            Event::DepositPaid(c) => &c.project,
            Event::GuaranteeLetterIssued(c) => &c.project,
            Event::GuaranteeLetterCancelled(c) => &c.project,
            Event::ProgressPaymentMade(c) => &c.project,
            Event::WageAccountToppedUp(c) => &c.project,
            Event::WagePaid(c) => &c.project,
            Event::DepositDrawn(c) => &c.project,
            Event::DepositReleased(e) => &e.project,
            Event::BalanceAttested(c) => &c.project,
            Event::CaseOpened(c) => return c.project.as_ref(),
            Event::OrderIssued(c) => &c.project,
            Event::InspectionRecorded(c) => return c.project.as_ref(),
            Event::CaseDecided(_)
            | Event::CaseExtended(_)
            | Event::CaseClosed(_)
            | Event::OrderResolved(_)
            | Event::OrderReferred(_)
            | Event::EmployerListed(_)
            | Event::EmployerDelisted(_)
            | Event::CardsRecorded(_)
            | Event::ReferralOutcomeRecorded(_) => return None,
        })
    }

    /// The event's position in `Event` (its tag in the canonical encoding): a byte that
    /// names its kind in posting histories.
    pub fn kind_index(&self) -> u8 {
        match self {
            Event::ProjectRegistered(_) => 0,
            Event::ProjectStatusChanged(_) => 1,
            Event::WageAccountOpened(_) => 2,
            Event::WageAccountClosed(_) => 3,
            Event::WorkerEnrolled(_) => 4,
            Event::ContractRecorded(_) => 5,
            Event::WorkerExited(_) => 6,
            Event::PayrollSubmitted(_) => 7,
            Event::DepositPaid(_) => 8,
            Event::GuaranteeLetterIssued(_) => 9,
            Event::GuaranteeLetterCancelled(_) => 10,
            Event::ProgressPaymentMade(_) => 11,
            Event::WageAccountToppedUp(_) => 12,
            Event::WagePaid(_) => 13,
            Event::DepositDrawn(_) => 14,
            Event::DepositReleased(_) => 15,
            Event::BalanceAttested(_) => 16,
            Event::CaseOpened(_) => 17,
            Event::CaseDecided(_) => 18,
            Event::CaseExtended(_) => 19,
            Event::CaseClosed(_) => 20,
            Event::OrderIssued(_) => 21,
            Event::OrderResolved(_) => 22,
            Event::OrderReferred(_) => 23,
            Event::EmployerListed(_) => 24,
            Event::EmployerDelisted(_) => 25,
            Event::InspectionRecorded(_) => 26,
            Event::CardsRecorded(_) => 27,
            Event::ReferralOutcomeRecorded(_) => 28,
        }
    }

    /// The names of the events, in `kind_index` order.
    pub const NAMES: [&'static str; 29] = [
        "ProjectRegistered",
        "ProjectStatusChanged",
        "WageAccountOpened",
        "WageAccountClosed",
        "WorkerEnrolled",
        "ContractRecorded",
        "WorkerExited",
        "PayrollSubmitted",
        "DepositPaid",
        "GuaranteeLetterIssued",
        "GuaranteeLetterCancelled",
        "ProgressPaymentMade",
        "WageAccountToppedUp",
        "WagePaid",
        "DepositDrawn",
        "DepositReleased",
        "BalanceAttested",
        "CaseOpened",
        "CaseDecided",
        "CaseExtended",
        "CaseClosed",
        "OrderIssued",
        "OrderResolved",
        "OrderReferred",
        "EmployerListed",
        "EmployerDelisted",
        "InspectionRecorded",
        "CardsRecorded",
        "ReferralOutcomeRecorded",
    ];

    /// The county's casework (cases, orders, referrals and their outcomes, listings,
    /// inspections: events 17 to 26 and 28): withheld from banks and contractors when they
    /// read the log, since a case names the workers who complained (`api::audit`). Every
    /// event is named here, none by a wildcard or a tag range, so a new event is classed
    /// on purpose or the build fails.
    pub fn is_casework(&self) -> bool {
        match self {
            Event::CaseOpened(_)
            | Event::CaseDecided(_)
            | Event::CaseExtended(_)
            | Event::CaseClosed(_)
            | Event::OrderIssued(_)
            | Event::OrderResolved(_)
            | Event::OrderReferred(_)
            | Event::ReferralOutcomeRecorded(_)
            | Event::EmployerListed(_)
            | Event::EmployerDelisted(_)
            | Event::InspectionRecorded(_) => true,
            // A bank's card counts: numbers, no person.
            Event::CardsRecorded(_)
            | Event::ProjectRegistered(_)
            | Event::ProjectStatusChanged(_)
            | Event::WageAccountOpened(_)
            | Event::WageAccountClosed(_)
            | Event::WorkerEnrolled(_)
            | Event::ContractRecorded(_)
            | Event::WorkerExited(_)
            | Event::PayrollSubmitted(_)
            | Event::DepositPaid(_)
            | Event::GuaranteeLetterIssued(_)
            | Event::GuaranteeLetterCancelled(_)
            | Event::ProgressPaymentMade(_)
            | Event::WageAccountToppedUp(_)
            | Event::WagePaid(_)
            | Event::DepositDrawn(_)
            | Event::DepositReleased(_)
            | Event::BalanceAttested(_) => false,
        }
    }

    /// The oldest record format that holds this event (`chain::record` refuses it in an
    /// older one).
    pub fn since_format(&self) -> u16 {
        match self.kind_index() {
            0..=15 => 1,
            16 => 2,
            _ => 3,
        }
    }

    /// The day the event's fact is dated (its value date, never when it was recorded):
    /// what an answer `as_of` a day counts. Most events carry their date; a
    /// registration is dated its registration date (format 1: the earlier of its
    /// contract and start dates), a payroll the day it was submitted (format 1: the
    /// first day after its month, when it can first be submitted), a guarantee letter
    /// the day it was issued (format 1: its first valid day).
    pub fn dated(&self) -> Date {
        match self {
            Event::ProjectRegistered(c) => c.dated(),
            Event::ProjectStatusChanged(c) => c.date,
            Event::WageAccountOpened(c) => c.date,
            Event::WageAccountClosed(e) => e.date,
            Event::WorkerEnrolled(c) => c.date,
            Event::ContractRecorded(c) => c.date,
            Event::WorkerExited(c) => c.date,
            Event::PayrollSubmitted(c) => c.submitted_on.unwrap_or(c.period.next().first_day()),
            Event::DepositPaid(c) => c.date,
            Event::GuaranteeLetterIssued(c) => c.issued_on.unwrap_or(c.valid_from),
            Event::GuaranteeLetterCancelled(c) => c.date,
            Event::ProgressPaymentMade(c) => c.date,
            Event::WageAccountToppedUp(c) => c.date,
            Event::WagePaid(c) => c.date,
            Event::DepositDrawn(c) => c.date,
            Event::DepositReleased(e) => e.date,
            Event::BalanceAttested(c) => c.date,
            Event::CaseOpened(c) => c.received_on,
            Event::CaseDecided(c) => c.date,
            Event::CaseExtended(c) => c.date,
            Event::CaseClosed(c) => c.date,
            Event::OrderIssued(c) => c.issued_on,
            Event::OrderResolved(c) => c.date,
            Event::OrderReferred(c) => c.date,
            Event::EmployerListed(c) => c.listed_on,
            Event::EmployerDelisted(c) => c.date,
            Event::InspectionRecorded(c) => c.date,
            Event::CardsRecorded(c) => c.date,
            Event::ReferralOutcomeRecorded(c) => c.date,
        }
    }

    /// The stable name of the event.
    pub fn name(&self) -> &'static str {
        match self {
            Event::ProjectRegistered(_) => "ProjectRegistered",
            Event::ProjectStatusChanged(_) => "ProjectStatusChanged",
            Event::WageAccountOpened(_) => "WageAccountOpened",
            Event::WageAccountClosed(_) => "WageAccountClosed",
            Event::WorkerEnrolled(_) => "WorkerEnrolled",
            Event::ContractRecorded(_) => "ContractRecorded",
            Event::WorkerExited(_) => "WorkerExited",
            Event::PayrollSubmitted(_) => "PayrollSubmitted",
            Event::DepositPaid(_) => "DepositPaid",
            Event::GuaranteeLetterIssued(_) => "GuaranteeLetterIssued",
            Event::GuaranteeLetterCancelled(_) => "GuaranteeLetterCancelled",
            Event::ProgressPaymentMade(_) => "ProgressPaymentMade",
            Event::WageAccountToppedUp(_) => "WageAccountToppedUp",
            Event::WagePaid(_) => "WagePaid",
            Event::DepositDrawn(_) => "DepositDrawn",
            Event::DepositReleased(_) => "DepositReleased",
            Event::BalanceAttested(_) => "BalanceAttested",
            Event::CaseOpened(_) => "CaseOpened",
            Event::CaseDecided(_) => "CaseDecided",
            Event::CaseExtended(_) => "CaseExtended",
            Event::CaseClosed(_) => "CaseClosed",
            Event::OrderIssued(_) => "OrderIssued",
            Event::OrderResolved(_) => "OrderResolved",
            Event::OrderReferred(_) => "OrderReferred",
            Event::EmployerListed(_) => "EmployerListed",
            Event::EmployerDelisted(_) => "EmployerDelisted",
            Event::InspectionRecorded(_) => "InspectionRecorded",
            Event::CardsRecorded(_) => "CardsRecorded",
            Event::ReferralOutcomeRecorded(_) => "ReferralOutcomeRecorded",
        }
    }
}
