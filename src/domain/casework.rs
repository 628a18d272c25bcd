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
