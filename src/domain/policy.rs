//! Policy parameters: the numbers of the national rules, with their defaults and
//! sources, overridable per county and per project.
//!
//! Policy is configuration, not history: it is never written to the log, and the flags
//! are a function of (log prefix, as-of date, policy). A project's own overrides are
//! part of its registration event, because they are facts of its contract.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ids::CountyCode;
use super::money::Money;

/// The policy in force for one project.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// Labour-cost share of every progress payment that must reach the wage account
    /// (分账管理), in basis points. Default 30% from the county reports [S]; Yunnan uses
    /// 25% (local). Source: 《保障农民工工资支付条例》 art. 24, 29.
    pub labour_ratio_bp: u32,
    /// Wage guarantee deposit (工资保证金) as a share of the contract price, in basis
    /// points. Default 2%; the national range is 1%-3% (人社部发〔2021〕65号).
    pub deposit_rate_bp: u32,
    /// Contracts below this price are exempt from the deposit (default ¥3,000,000, 65号文).
    pub deposit_exempt_below: Money,
    /// Provincial cap on one project's deposit (Hebei and Fujian: ¥5,000,000); none by default.
    pub deposit_cap: Option<Money>,
    /// Working days after the construction permit (or contract) within which the deposit
    /// must be lodged (65号文 art. 8: 20 working days).
    pub deposit_lodge_working_days: u32,
    /// Working days after a drawdown within which the deposit must be replenished
    /// (补足, 65号文: 10 working days).
    pub replenish_working_days: u32,
    /// Calendar days after the construction contract within which the wage account must
    /// be opened (人社部发〔2021〕53号: 30 days).
    pub wage_account_open_days: u32,
    /// Days before a guarantee letter's expiry when its lapse starts to be warned about
    /// (local practice: a month).
    pub letter_warn_days: u32,
    /// A month's payroll is missing once this many days have passed after the end of
    /// the following month (pay date in the current or the next period, 条例 art. 13-14).
    pub payroll_grace_days: u32,
    /// Once a bank attests an account's closing balances (reconciliation, issue 16), a
    /// statement is missing when none came for this many working days after the last
    /// one (banks attest each business day; a few days' slack for holidays and batch
    /// delays, local practice).
    pub statement_working_days: u32,
    /// A complaint is accepted or declined within this many working days of its receipt
    /// (5: 《关于实施〈劳动保障监察条例〉若干规定》 劳社部令第25号 art. 18).
    pub case_accept_working_days: u32,
    /// A filed case is closed within this many working days of its acceptance (60:
    /// 《劳动保障监察条例》 国务院令第423号 art. 17) ...
    pub case_close_working_days: u32,
    /// ... extendable once, with approval, by this many (30: the same article).
    pub case_extension_working_days: u32,
    /// An unmet order is due for referral to the police when one worker is owed at least
    /// this (¥5,000, the lower end of 法释〔2013〕3号 art. 3's ¥5,000-20,000, which each
    /// province's high court fixes: Henan ¥8,000, Liaoning ¥10,000) ...
    pub referral_one_worker: Money,
    /// ... or at least this many workers (10, art. 3) ...
    pub referral_workers: u32,
    /// ... are owed at least this in total (¥30,000, the lower end of ¥30,000-100,000).
    pub referral_total: Money,
    /// While its general contractor is on the credit list, a project's deposit rate is
    /// multiplied by this (basis points of the rate: 20,000 = +100%, a provincial figure;
    /// DOMAIN_RULES "credit blacklist").
    pub credit_list_deposit_bp: u32,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            labour_ratio_bp: 3_000,
            deposit_rate_bp: 200,
            deposit_exempt_below: Money::from_fen(300_000_000).expect("in range"),
            deposit_cap: None,
            deposit_lodge_working_days: 20,
            replenish_working_days: 10,
            wage_account_open_days: 30,
            letter_warn_days: 30,
            payroll_grace_days: 0,
            statement_working_days: 3,
            case_accept_working_days: 5,
            case_close_working_days: 60,
            case_extension_working_days: 30,
            referral_one_worker: Money::from_fen(500_000).expect("in range"),
            referral_workers: 10,
            referral_total: Money::from_fen(3_000_000).expect("in range"),
            credit_list_deposit_bp: 20_000,
        }
    }
}

/// A county's changes to the national defaults: every field optional.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyOverride {
    pub labour_ratio_bp: Option<u32>,
    pub deposit_rate_bp: Option<u32>,
    pub deposit_exempt_below: Option<Money>,
    pub deposit_cap: Option<Money>,
    pub deposit_lodge_working_days: Option<u32>,
    pub replenish_working_days: Option<u32>,
    pub wage_account_open_days: Option<u32>,
    pub letter_warn_days: Option<u32>,
    pub payroll_grace_days: Option<u32>,
    pub statement_working_days: Option<u32>,
    pub case_accept_working_days: Option<u32>,
    pub case_close_working_days: Option<u32>,
    pub case_extension_working_days: Option<u32>,
    pub referral_one_worker: Option<Money>,
    pub referral_workers: Option<u32>,
    pub referral_total: Option<Money>,
    pub credit_list_deposit_bp: Option<u32>,
}

/// National defaults plus each county's overrides.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyBook {
    pub national: Policy,
    pub counties: BTreeMap<CountyCode, PolicyOverride>,
}

/// Largest accepted labour ratio and deposit rate: 100%.
pub const BP_MAX: u32 = 10_000;

impl PolicyBook {
    /// The policy for a project in `county`, with the project's own contract terms
    /// (`labour_ratio_bp`, `deposit_rate_bp`) applied last.
    pub fn for_project(&self, county: CountyCode, project_ratio_bp: Option<u32>, project_rate_bp: Option<u32>) -> Policy {
        let mut p = self.national.clone();
        if let Some(o) = self.counties.get(&county) {
            p.apply(o);
        }
        if let Some(r) = project_ratio_bp {
            p.labour_ratio_bp = r;
        }
        if let Some(r) = project_rate_bp {
            p.deposit_rate_bp = r;
        }
        p
    }
}

impl Policy {
    /// Applies every field an override sets.
    pub fn apply(&mut self, o: &PolicyOverride) {
        macro_rules! take {
            ($($f:ident),*) => { $( if let Some(v) = o.$f { self.$f = v; } )* };
        }
        take!(labour_ratio_bp, deposit_rate_bp, deposit_exempt_below, deposit_lodge_working_days,
              replenish_working_days, wage_account_open_days, letter_warn_days, payroll_grace_days, statement_working_days,
              case_accept_working_days, case_close_working_days, case_extension_working_days,
              referral_one_worker, referral_workers, referral_total, credit_list_deposit_bp);
        if o.deposit_cap.is_some() {
            self.deposit_cap = o.deposit_cap;
        }
    }

    /// The deposit a project registered with `reg` must hold: by its contract price,
    /// unless the registration says it is required whatever the price, or exempt.
    pub fn deposit_required_for(&self, reg: &super::command::RegisterProject) -> Money {
        match reg.deposit_basis {
            super::command::DepositBasis::ByPrice => self.deposit_required(reg.contract_price),
            super::command::DepositBasis::Required => self.deposit_at_rate(reg.contract_price),
            super::command::DepositBasis::Exempt(_) => Money::ZERO,
        }
    }

    /// The deposit of a project whose general contractor is on the credit list: required
    /// whatever the price (unless explicitly exempt), at the rate times
    /// `credit_list_deposit_bp`, capped like any other.
    pub fn deposit_required_listed(&self, reg: &super::command::RegisterProject) -> Money {
        if let super::command::DepositBasis::Exempt(_) = reg.deposit_basis {
            return Money::ZERO;
        }
        let mut raised = self.clone();
        raised.deposit_rate_bp = (u64::from(self.deposit_rate_bp) * u64::from(self.credit_list_deposit_bp) / 10_000).min(u64::from(BP_MAX)) as u32;
        raised.deposit_at_rate(reg.contract_price)
    }

    /// The deposit a project with this contract price must hold (exempt below the
    /// threshold).
    pub fn deposit_required(&self, contract_price: Money) -> Money {
        if contract_price < self.deposit_exempt_below {
            return Money::ZERO;
        }
        self.deposit_at_rate(contract_price)
    }

    /// The contract price at the rate, capped.
    fn deposit_at_rate(&self, contract_price: Money) -> Money {
        let r = contract_price.mul_bp_ceil(self.deposit_rate_bp);
        match self.deposit_cap {
            Some(cap) if cap < r => cap,
            _ => r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_terms_override_county_which_override_national() {
        let county = CountyCode::parse("530102").unwrap();
        let mut book = PolicyBook::default();
        book.counties.insert(county, PolicyOverride { labour_ratio_bp: Some(2_500), ..Default::default() });
        assert_eq!(book.for_project(county, None, None).labour_ratio_bp, 2_500);
        assert_eq!(book.for_project(county, Some(4_000), None).labour_ratio_bp, 4_000);
        let other = CountyCode::parse("620102").unwrap();
        assert_eq!(book.for_project(other, None, None).labour_ratio_bp, 3_000);
    }

    #[test]
    fn deposit_required_applies_exemption_rate_and_cap() {
        let mut p = Policy::default();
        assert_eq!(p.deposit_required(Money::parse("2999999.99").unwrap()), Money::ZERO);
        assert_eq!(p.deposit_required(Money::parse("10000000").unwrap()), Money::parse("200000").unwrap());
        p.deposit_cap = Some(Money::parse("5000000").unwrap());
        assert_eq!(p.deposit_required(Money::parse("500000000").unwrap()), Money::parse("5000000").unwrap());
    }
}
