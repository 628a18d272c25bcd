//! The county's casework (issue 17, record format 3): complaints and leads about unpaid
//! wages (线索/投诉), from receipt to closure, on the same chain as the money.
//!
//! A case is received from a source, against an employer and, where known, a project;
//! the workers it names are worker references (`WorkerRef`: the vault's commitments of
//! their national IDs, whether or not they were ever enrolled), so a complainant's
//! identity never enters the log in clear, and a complainant's phone number is not
//! recorded at all (free texts are checked for personal numbers like every other).
//!
//! Time limits, as policy (`Policy::case_accept_working_days`, `case_close_working_days`,
//! `case_extension_working_days`) with these defaults:
//! - a complaint is accepted (受理, and filed the same day) or declined within **5 working
//!   days** of its receipt: 《关于实施〈劳动保障监察条例〉若干规定》 (劳动和社会保障部令第25号)
//!   art. 18;
//! - the investigation is completed within **60 working days** of filing, extendable once
//!   by **30 working days** with approval: 《劳动保障监察条例》 (国务院令第423号) art. 17.
//!
//! A closure that says wages were recovered cites the payout records that paid them: each
//! a payment (a `WagePaid`, or a `DepositDrawn` payee) to one of the case's workers in the
//! case's county, dated on or after the case's receipt, none cited by another case, and
//! together exactly the amount recovered. Otherwise it is refused.

use serde::{Deserialize, Serialize};

/// Years an employer stays on the credit list (人社部令第45号 art. 13: 3 years). A national
/// rule the ledger refuses by (`decide` reads no policy), not a local figure.
pub const CREDIT_LIST_YEARS: i32 = 3;

/// Months after listing before an employer may leave the list early, its arrears repaid
/// (人社部令第45号 art. 14: 6 months).
pub const CREDIT_DELIST_MIN_MONTHS: u32 = 6;

use super::date::Date;
use super::ids::{CountyCode, DocNo, ProjectId, Text, Uscc, WorkerRef};
use super::money::Money;

/// Where a case came from, as county reports count them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum CaseSource {
    /// A complaint by telephone (12333 hotline) or in person.
    Complaint,
    /// The national wage-arrears lead platform (全国根治欠薪线索反映平台).
    NationalPlatform,
    /// The provincial platform.
    ProvincialPlatform,
    /// Found in an inspection.
    Inspection,
}

impl CaseSource {
    pub const ALL: [CaseSource; 4] = [CaseSource::Complaint, CaseSource::NationalPlatform, CaseSource::ProvincialPlatform, CaseSource::Inspection];

    pub fn as_str(self) -> &'static str {
        match self {
            CaseSource::Complaint => "complaint",
            CaseSource::NationalPlatform => "national_platform",
            CaseSource::ProvincialPlatform => "provincial_platform",
            CaseSource::Inspection => "inspection",
        }
    }
}

/// How a case ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum CaseOutcome {
    /// Wages were paid: the closure cites the payouts, which sum to the amount recovered.
    Recovered,
    /// The investigation found no wages owed.
    NoArrears,
    /// The complainant withdrew.
    Withdrawn,
    /// Handed on (labour arbitration, a court, the police).
    Transferred,
}

/// A case is received (立案前的登记).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenCase {
    /// The county's own case number, unique in the county.
    pub case_no: DocNo,
    pub county: CountyCode,
    pub source: CaseSource,
    pub received_on: Date,
    /// The employer complained about (the subcontractor or general contractor).
    pub employer: Uscc,
    /// The project, where known; it must be registered in the county.
    pub project: Option<ProjectId>,
    /// The workers involved, as worker references (1 to `CASE_WORKERS_MAX`, distinct).
    pub workers: Vec<WorkerRef>,
    /// The wages claimed (zero where the amount is not known yet).
    pub amount_claimed: Money,
    /// What it is about, in a sentence (no personal numbers).
    pub summary: Option<Text>,
}

/// The case is accepted and filed (受理立案), or declined (不予受理).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecideCase {
    pub case_no: DocNo,
    pub county: CountyCode,
    pub date: Date,
    pub accepted: bool,
    /// Why it was declined (required then), or a note.
    pub reason: Option<Text>,
}

/// The investigation's time limit is extended once, with approval (延长办案期限).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtendCase {
    pub case_no: DocNo,
    pub county: CountyCode,
    pub date: Date,
    pub reason: Text,
}

/// The case is closed (结案) with its outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseCase {
    pub case_no: DocNo,
    pub county: CountyCode,
    pub date: Date,
    pub outcome: CaseOutcome,
    /// Wages recovered: exactly the sum of the cited payouts to the case's workers.
    pub recovered: Money,
    /// The records (sequence numbers) of the payouts that paid the workers.
    pub payouts: Vec<u64>,
    pub note: Option<Text>,
}

/// An order to pay or to rectify within a deadline (责令支付 / 限期整改指令书), issued by
/// the county's labour inspectors to an employer for a project.
///
/// Unmet past its deadline it is `ORDER_UNMET` (red); unmet with arrears at the amounts of
/// the judicial interpretation on refusing to pay wages (最高人民法院《关于审理拒不支付劳动报酬
/// 刑事案件适用法律若干问题的解释》, 法释〔2013〕3号, art. 3: one worker's wages of at least
/// ¥5,000 to ¥20,000, or ten or more workers' totalling at least ¥30,000 to ¥100,000,
/// each province fixing its figure within the range; art. 4: still unpaid after an order
/// within its deadline) it is also `REFERRAL_DUE` (red) until referred to the police.
/// The thresholds are policy (`Policy::referral_*`), defaulting to the range's lower ends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueOrder {
    /// The order's number, unique in the county.
    pub order_no: DocNo,
    pub county: CountyCode,
    /// The project (registered in the county).
    pub project: ProjectId,
    /// The employer ordered.
    pub employer: Uscc,
    /// The case it follows from, if any (a case of the county).
    pub case_no: Option<DocNo>,
    pub issued_on: Date,
    /// The last day to comply (not before `issued_on`).
    pub deadline: Date,
    /// The wages ordered paid (zero for a rectification without a sum).
    pub amount: Money,
    /// The workers owed them.
    pub workers: u32,
    /// The most owed to one worker (at most `amount`).
    pub largest: Money,
    /// What must be cured, in a sentence.
    pub demand: Text,
}

/// An order is complied with, citing the payouts of its project that cured it (at least
/// its amount, dated from its issue on), or found not complied with. A non-compliance
/// can be followed by a late compliance; nothing follows a compliance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolveOrder {
    pub order_no: DocNo,
    pub county: CountyCode,
    pub date: Date,
    pub complied: bool,
    /// The records (sequence numbers) of the payouts that cured it; none if not complied.
    pub records: Vec<u64>,
    pub note: Option<Text>,
}

/// An unmet order is referred to the police (移送公安机关, 拒不支付劳动报酬罪).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferOrder {
    pub order_no: DocNo,
    pub county: CountyCode,
    pub date: Date,
    /// The police's case reference.
    pub police_ref: DocNo,
}

/// What became of a referral, as the police, the prosecutor or the court notify the
/// county: the police decide whether to open a criminal case (立案 or 不予立案,
/// 《刑事诉讼法》 art. 112); an opened case ends in a conviction for refusing to pay wages
/// (《刑法》 art. 276-1) or without one (撤销案件, 不起诉, or the arrears paid before
/// prosecution, art. 276-1 para. 3, 免除或减轻处罚).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ReferralOutcome {
    /// The police opened a criminal case (立案侦查).
    Filed,
    /// The police declined to open one (不予立案): final.
    NotFiled,
    /// The employer was convicted (判决有罪): final.
    Convicted,
    /// The opened case ended without a conviction: final.
    Dropped,
}

impl ReferralOutcome {
    pub const ALL: [ReferralOutcome; 4] = [ReferralOutcome::Filed, ReferralOutcome::NotFiled, ReferralOutcome::Convicted, ReferralOutcome::Dropped];

    pub fn as_str(self) -> &'static str {
        match self {
            ReferralOutcome::Filed => "filed",
            ReferralOutcome::NotFiled => "not_filed",
            ReferralOutcome::Convicted => "convicted",
            ReferralOutcome::Dropped => "dropped",
        }
    }

    /// Whether nothing may follow it.
    pub fn is_final(self) -> bool {
        self != ReferralOutcome::Filed
    }
}

/// An outcome of an order's referral to the police (移送后的处理结果), as notified to the
/// county: first whether the police opened a case, then, if they did, how it ended. Each
/// dated no earlier than the referral and the outcome before it; nothing follows a final
/// one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordReferralOutcome {
    pub order_no: DocNo,
    pub county: CountyCode,
    pub date: Date,
    pub outcome: ReferralOutcome,
    /// The notifying document's number (立案决定书, 不予立案通知书, 判决书), if any.
    pub reference: Option<DocNo>,
    pub note: Option<Text>,
}

/// Why an employer is listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ListingBasis {
    /// An order of the county unmet past its deadline (with the arrears of the referral
    /// thresholds: the county's judgement, recorded by the listing).
    UnmetOrder(DocNo),
    /// A mass incident (群体性事件) over wages, described.
    MassIncident(Text),
}

/// An employer is put on the credit list of wage defaulters (拖欠农民工工资失信联合惩戒
/// 对象名单, 人社部令第45号): for `Policy::credit_list_years` (3) years; while listed, the
/// deposit of a project it registers as general contractor is required whatever the
/// price, at the rate times `Policy::credit_list_deposit_bp` (+100% by default, a
/// provincial figure).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListEmployer {
    pub county: CountyCode,
    pub employer: Uscc,
    pub listed_on: Date,
    pub basis: ListingBasis,
}

/// An employer leaves the list before its period ends: no earlier than
/// `Policy::credit_delist_months` (6) months after listing, and, when listed for an
/// order, once the order is complied with (the arrears repaid).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelistEmployer {
    pub county: CountyCode,
    pub employer: Uscc,
    pub date: Date,
    pub note: Option<Text>,
}

/// An inspection of an employer (劳动保障监察检查).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordInspection {
    pub county: CountyCode,
    pub employer: Uscc,
    pub date: Date,
    pub project: Option<ProjectId>,
    /// Labour contracts signed or re-signed on the spot.
    pub contracts_signed: u32,
    /// What was found, in a sentence.
    pub findings: Text,
}

/// Co-branded wage cards (工资卡) a bank issued and activated in the county since its
/// previous report there, up to `date`: counts only, never card numbers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordCards {
    pub county: CountyCode,
    pub bank: super::ids::BankCode,
    pub date: Date,
    pub issued: u32,
    pub activated: u32,
}
