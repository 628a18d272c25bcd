//! The ledger's state: every projection, rebuilt from events by `apply`.
//!
//! `apply(state, event, seq)` only updates; it never rejects and never reads the clock,
//! so replaying the same log always gives the same state. Business rules live in
//! `crate::decide`, which reads this state. The state lives in memory and is persisted
//! whole, in snapshots (`crate::store::snapshot`) that name the record they reflect.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::command::*;
use crate::domain::date::{Date, Period};
use crate::domain::ids::{BankCode, CardRef, Commitment, CountyCode, DocNo, ProjectId, Text, Uscc, WorkerRef};
use crate::domain::money::{Fen, Money};
use crate::domain::posting::{transfer, Account, Leg};

use super::fingerprints::{fingerprint, FingerprintSet};
use super::history::{Histories, Posting, PAID};
use super::table::{Hashed, Table};
use super::when::When;

/// The legs of one event.
pub type Legs = smallvec::SmallVec<[Leg; 4]>;

/// A sequence number: the position of a record in the log, starting at 1.
pub type Seq = u64;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    pub date: Date,
    pub status: ProjectStatus,
    pub seq: Seq,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WageAccount {
    pub bank: BankCode,
    pub account_no: Text,
    pub opened: Date,
    pub seq: Seq,
    pub closed: Option<(Date, Seq)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoneyIn {
    pub seq: Seq,
    pub date: Date,
    pub fen: Fen,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressEntry {
    pub seq: Seq,
    pub date: Date,
    pub total: Fen,
    pub share: Fen,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrawdownEntry {
    pub seq: Seq,
    pub date: Date,
    pub fen: Fen,
    pub order_no: DocNo,
    /// Format 2: the day of the order and why.
    pub order_date: Option<Date>,
    pub reason: Option<Text>,
    /// How much of it has been made good by later deposits or letters.
    pub replenished: Fen,
}

/// A bank's statement of one of a project's accounts (`AttestBalance`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    pub seq: Seq,
    pub bank: BankCode,
    pub closing: Fen,
    pub bank_ref: DocNo,
}

/// A case of the county's casework (`domain::casework`), with each step's record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Case {
    pub open: OpenCase,
    pub seq: Seq,
    pub decided: Option<(DecideCase, Seq)>,
    pub extended: Option<(ExtendCase, Seq)>,
    /// The closure, and the distinct workers its cited payouts paid.
    pub closed: Option<(CloseCase, Seq, u32)>,
}

impl Case {
    /// Received as the point `w` sees it.
    pub fn seen(&self, w: When) -> bool {
        w.sees(self.seq, self.open.received_on)
    }

    pub fn decided_at(&self, w: When) -> Option<&DecideCase> {
        self.decided.as_ref().filter(|(d, s)| w.sees(*s, d.date)).map(|(d, _)| d)
    }

    pub fn extended_at(&self, w: When) -> Option<&ExtendCase> {
        self.extended.as_ref().filter(|(e, s)| w.sees(*s, e.date)).map(|(e, _)| e)
    }

    pub fn closed_at(&self, w: When) -> Option<(&CloseCase, u32)> {
        self.closed.as_ref().filter(|(c, s, _)| w.sees(*s, c.date)).map(|(c, _, n)| (c, *n))
    }
}

/// An order to pay (`IssueOrder`) with what followed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WageOrder {
    pub order: IssueOrder,
    pub seq: Seq,
    /// Found not complied with, then perhaps complied with late: in record order.
    pub resolutions: Vec<(ResolveOrder, Seq)>,
    pub referral: Option<(ReferOrder, Seq)>,
    /// What became of the referral, in record (and date) order.
    pub outcomes: Vec<(RecordReferralOutcome, Seq)>,
}

impl WageOrder {
    pub fn seen(&self, w: When) -> bool {
        w.sees(self.seq, self.order.issued_on)
    }

    /// The compliance the point sees, if any.
    pub fn complied_at(&self, w: When) -> Option<&ResolveOrder> {
        self.resolutions.iter().find(|(r, s)| r.complied && w.sees(*s, r.date)).map(|(r, _)| r)
    }

    pub fn referral_at(&self, w: When) -> Option<&ReferOrder> {
        self.referral.as_ref().filter(|(r, s)| w.sees(*s, r.date)).map(|(r, _)| r)
    }

    /// The referral's latest outcome the point sees, if any.
    pub fn referral_outcome_at(&self, w: When) -> Option<&RecordReferralOutcome> {
        self.outcomes.iter().rev().find(|(o, s)| w.sees(*s, o.date)).map(|(o, _)| o)
    }

    /// Unmet at the point: past its deadline on the point's day, not complied with.
    pub fn unmet_at(&self, w: When) -> bool {
        self.seen(w) && w.date > self.order.deadline && self.complied_at(w).is_none()
    }
}

/// An employer's listing on the credit list, and its early removal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listing {
    pub listing: ListEmployer,
    pub seq: Seq,
    pub delisted: Option<(DelistEmployer, Seq)>,
}

impl Listing {
    /// The day its period ends (the first day off the list).
    pub fn until(&self) -> Date {
        self.listing.listed_on.add_years(crate::domain::casework::CREDIT_LIST_YEARS)
    }

    /// On the list on `date`, as the point `w` sees it.
    pub fn in_force_on(&self, date: Date, w: When) -> bool {
        w.sees(self.seq, self.listing.listed_on)
            && self.listing.listed_on <= date
            && date < self.until()
            && !self.delisted.as_ref().is_some_and(|(d, s)| w.sees(*s, d.date) && d.date <= date)
    }
}

/// A project, with everything about it that fits in one entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    pub reg: RegisterProject,
    pub seq: Seq,
    pub status: ProjectStatus,
    pub status_changes: Vec<StatusChange>,
    pub wage_account: Option<WageAccount>,
    /// Sums over every record, for `decide` (past answers sum the entries they see).
    pub progress_total: Fen,
    pub wage_share_total: Fen,
    pub drawdowns: Vec<DrawdownEntry>,
    pub released: Option<MoneyIn>,
}

impl Project {
    /// The status on `date`, from the status history.
    pub fn status_on(&self, date: Date) -> ProjectStatus {
        self.status_at(When::date(date), date)
    }

    /// The status on `date` by the changes the point `w` sees.
    pub fn status_at(&self, w: When, date: Date) -> ProjectStatus {
        let mut s = ProjectStatus::Active;
        for c in &self.status_changes {
            if c.date <= date && w.sees(c.seq, c.date) {
                s = c.status;
            }
        }
        s
    }

    /// The day its registration is dated (`Event::dated`).
    pub fn dated(&self) -> Date {
        self.reg.dated()
    }

    /// Registered as the point `w` sees it.
    pub fn seen(&self, w: When) -> bool {
        w.sees(self.seq, self.dated())
    }

    /// The wage account as the point `w` sees it: opened, and whether closed.
    pub fn wage_account_at(&self, w: When) -> Option<(&WageAccount, bool)> {
        let a = self.wage_account.as_ref().filter(|a| w.sees(a.seq, a.opened))?;
        Some((a, a.closed.is_some_and(|(d, s)| w.sees(s, d))))
    }

    pub fn wage_account_open(&self) -> bool {
        self.wage_account.as_ref().is_some_and(|a| a.closed.is_none())
    }
}

/// A stay on site: from an enrolment to an exit, with the card and employer it was
/// enrolled with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    pub from: Date,
    /// The enrolment's record.
    pub from_seq: Seq,
    pub to: Option<Date>,
    /// The exit's record (0 while on site).
    pub to_seq: Seq,
    pub employer: Uscc,
    pub card: CardRef,
    pub card_masked: Text,
}

impl Span {
    /// The exit, if the point `w` sees it.
    pub fn end_at(&self, w: When) -> Option<Date> {
        self.to.filter(|d| w.sees(self.to_seq, *d))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContractInfo {
    pub contract_no: DocNo,
    pub date: Date,
    pub seq: Seq,
}

/// A worker's enrolment on one project (实名制), with its card and contract.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrolment {
    pub worker_masked: Text,
    pub employer: Uscc,
    pub card: CardRef,
    pub card_masked: Text,
    pub seq: Seq,
    /// Periods on site: re-enrolment after an exit opens a new span.
    pub spans: Vec<Span>,
    pub contract: Option<ContractInfo>,
}

impl Enrolment {
    pub fn is_current(&self) -> bool {
        self.spans.last().is_some_and(|s| s.to.is_none())
    }

    /// The stays the point `w` sees (enrolments it sees; an exit it does not see leaves
    /// the stay open).
    pub fn spans_at(&self, w: When) -> impl Iterator<Item = &Span> + '_ {
        self.spans.iter().filter(move |s| w.sees(s.from_seq, s.from))
    }

    /// Enrolled as the point `w` sees it.
    pub fn seen(&self, w: When) -> bool {
        self.spans_at(w).next().is_some()
    }

    /// On site at some time between `from` and `to` inclusive, as the point `w` sees it.
    pub fn on_site_between(&self, w: When, from: Date, to: Date) -> bool {
        self.spans_at(w).any(|s| s.from <= to && s.end_at(w).is_none_or(|end| end >= from))
    }

    /// On site on the point's own date.
    pub fn on_site(&self, w: When) -> bool {
        self.on_site_between(w, w.date, w.date)
    }

    /// The labour contract, if the point `w` sees it.
    pub fn contract_at(&self, w: When) -> Option<&ContractInfo> {
        self.contract.as_ref().filter(|c| w.sees(c.seq, c.date))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayrollHeader {
    pub seq: Seq,
    /// The day it is dated (`Event::dated`).
    pub dated: Date,
    /// Format 2: its own number and the day it was submitted.
    pub payroll_no: Option<DocNo>,
    pub submitted_on: Option<Date>,
    pub due_date: Date,
    pub line_count: u32,
    pub due_total: Fen,
    pub paid_total: Fen,
}

/// A payment against a payroll line (a payout, or a drawdown's share).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pay {
    pub seq: Seq,
    pub date: Date,
    pub fen: Fen,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub employer: Uscc,
    pub days: u8,
    pub due: Fen,
    /// Paid by every record, for `decide`.
    pub paid: Fen,
    /// Each payment (nearly always one).
    pub pays: smallvec::SmallVec<[Pay; 1]>,
}

impl Line {
    pub fn owed(&self) -> Fen {
        self.due - self.paid
    }

    /// Paid as the point `w` sees it.
    pub fn paid_at(&self, w: When) -> Fen {
        self.pays.iter().filter(|p| w.sees(p.seq, p.date)).map(|p| p.fen).sum()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Letter {
    pub project: ProjectId,
    pub bank: BankCode,
    pub amount: Money,
    pub valid_from: Date,
    pub valid_to: Date,
    /// The day it is dated (`Event::dated`: issued, or first valid).
    pub dated: Date,
    pub seq: Seq,
    pub cancelled: Option<(Date, Seq)>,
    /// Format 2: the day it was issued, who applied, in whose favour.
    pub issued_on: Option<Date>,
    pub applicant: Option<Uscc>,
    pub beneficiary: Option<Text>,
}

impl Letter {
    /// Issued as the point `w` sees it.
    pub fn seen(&self, w: When) -> bool {
        w.sees(self.seq, self.dated)
    }

    /// The cancellation, if the point `w` sees it.
    pub fn cancelled_at(&self, w: When) -> Option<Date> {
        self.cancelled.filter(|(d, s)| w.sees(*s, *d)).map(|(d, _)| d)
    }

    /// Counts as cover on the point's date: issued, not lapsed, not cancelled by then.
    pub fn valid_at(&self, w: When) -> bool {
        self.seen(w) && self.valid_from <= w.date && w.date <= self.valid_to && self.cancelled_at(w).is_none()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Worker {
    pub masked: Text,
    /// Shared, so that the undo journal's copy of a worker (at every payout) is no
    /// allocation; changed only at an enrolment.
    pub projects: std::sync::Arc<Vec<ProjectId>>,
    /// Paid by every record.
    pub paid_total: Fen,
}

pub const PERIOD_MIN: Period = match Period::new(2000, 1) {
    Some(p) => p,
    None => unreachable!(),
};
pub const PERIOD_MAX: Period = match Period::new(2199, 12) {
    Some(p) => p,
    None => unreachable!(),
};
pub const REF_MIN: Commitment = Commitment([0; 32]);
pub const REF_MAX: Commitment = Commitment([0xff; 32]);

macro_rules! state_tables {
    ($($name:ident: $k:ty => $v:ty, $b:ident = $prefix:literal,)*) => {
        /// Every projection of the ledger.
        #[derive(Clone, Debug, Default)]
        pub struct State {
            $(pub $name: Table<$k, $v, $b<$k, $v>>,)*
            /// Fingerprints of every external number used (`crate::domain::numbers`): see `fingerprints`.
            pub numbers: FingerprintSet,
            /// Every posting of every account, in record order, with its value date.
            pub postings: Histories<Account>,
            /// Every payment to a worker, per county, in record order, with its value date.
            pub payees: Histories<(CountyCode, WorkerRef)>,
        }

        impl State {
            pub(crate) fn begin(&mut self) { $(self.$name.begin();)* self.numbers.begin(); self.postings.begin(); self.payees.begin(); }
            pub(crate) fn commit(&mut self) { $(self.$name.commit();)* self.numbers.commit(); self.postings.commit(); self.payees.commit(); }
            pub(crate) fn rollback(&mut self) { $(self.$name.rollback();)* self.numbers.rollback(); self.postings.rollback(); self.payees.rollback(); }

            /// Writes every table, in a fixed order, with the encoding `config`.
            ///
            /// # Errors
            /// If the writer fails.
            pub(crate) fn write_to<W: std::io::Write, C: bincode::config::Config>(&self, w: &mut W, config: C) -> Result<(), bincode::error::EncodeError> {
                $(self.$name.write_to(w, config)?;)*
                bincode::serde::encode_into_std_write(&self.numbers, w, config)?;
                bincode::serde::encode_into_std_write(self.postings.sorted(), w, config)?;
                bincode::serde::encode_into_std_write(self.payees.sorted(), w, config)?;
                Ok(())
            }

            /// Reads what `write_to` wrote.
            ///
            /// # Errors
            /// If the bytes are not a state.
            pub(crate) fn read_from<R: std::io::Read, C: bincode::config::Config>(r: &mut R, config: C) -> Result<State, String> {
                Ok(State {
                    // Read as the sorted list of pairs it was written as (a map and a list
                    // of pairs have the same bytes), then built in one pass.
                    $($name: Table::from_sorted({
                        let pairs: Vec<($k, $v)> = bincode::serde::decode_from_std_read(r, config).map_err(|e| format!("table {}: {e}", stringify!($name)))?;
                        if pairs.windows(2).any(|w| w[0].0 >= w[1].0) {
                            return Err(format!("table {}: keys are not in increasing order", stringify!($name)));
                        }
                        pairs
                    }),)*
                    numbers: FingerprintSet::from_sorted(bincode::serde::decode_from_std_read(r, config).map_err(|e| format!("payment numbers: {e}"))?)?,
                    postings: Histories::from_sorted(bincode::serde::decode_from_std_read(r, config).map_err(|e| format!("postings: {e}"))?)?,
                    payees: Histories::from_sorted(bincode::serde::decode_from_std_read(r, config).map_err(|e| format!("payees: {e}"))?)?,
                })
            }

            /// The first table in which `self` and `other` differ, if any: for comparing a
            /// snapshot with a replay without encoding either.
            pub fn differs_from(&self, other: &State) -> Option<&'static str> {
                $(if !self.$name.same_entries(&other.$name) {
                    return Some(stringify!($name));
                })*
                if self.numbers != other.numbers {
                    return Some("numbers");
                }
                if !self.postings.same(&other.postings) {
                    return Some("postings");
                }
                if !self.payees.same(&other.payees) {
                    return Some("payees");
                }
                None
            }

            /// Every entry, as (key, value) bytes in key order per table: for comparing states.
            pub fn entries(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
                let mut out = Vec::new();
                $(for (k, v) in self.$name.iter() {
                    out.push((super::table::key_bytes($prefix, k), crate::chain::codec::encode(v)));
                })*
                self.numbers.for_each_sorted(&mut |fp| out.push((vec![7], fp.to_be_bytes().to_vec())));
                for (k, h) in self.postings.sorted() {
                    out.push((super::table::key_bytes(15, k), crate::chain::codec::encode(h)));
                }
                for (k, h) in self.payees.sorted() {
                    out.push((super::table::key_bytes(16, k), crate::chain::codec::encode(h)));
                }
                out
            }
        }
    };
}

// Tables the writer looks up and changes for nearly every event are `Hashed`; those
// mostly appended to and read in order stay B-trees (see `table::Backing`).
state_tables! {
    projects: ProjectId => Project, Hashed = 1,
    enrolments: (ProjectId, WorkerRef) => Enrolment, Hashed = 2,
    cards: (ProjectId, CardRef) => WorkerRef, Hashed = 3,
    payrolls: (ProjectId, Period) => PayrollHeader, Hashed = 4,
    lines: (ProjectId, Period, WorkerRef) => Line, Hashed = 5,
    letters: DocNo => Letter, BTreeMap = 6,
    orders: (ProjectId, DocNo) => Seq, BTreeMap = 8,
    balances: Account => Fen, Hashed = 9,
    workers: WorkerRef => Worker, Hashed = 10,
    progress: (ProjectId, Seq) => ProgressEntry, BTreeMap = 12,
    deposits: (ProjectId, Seq) => MoneyIn, BTreeMap = 13,
    project_letters: (ProjectId, DocNo) => Seq, BTreeMap = 14,
    statements: (ProjectId, StatementAccount, Date) => Statement, BTreeMap = 17,
    cases: (CountyCode, DocNo) => Case, BTreeMap = 18,
    // The payouts closed cases cite: a payout is cited by one case at most.
    citations: Seq => (CountyCode, DocNo), BTreeMap = 19,
    wage_orders: (ProjectId, DocNo) => WageOrder, BTreeMap = 20,
    // An order's number is unique in its county: the project it names.
    order_numbers: (CountyCode, DocNo) => ProjectId, BTreeMap = 21,
    // Every listing of an employer on the credit list, by the day it was listed.
    listings: (Uscc, Date) => Listing, BTreeMap = 22,
    inspections: (CountyCode, Seq) => RecordInspection, BTreeMap = 23,
    card_reports: (CountyCode, Seq) => RecordCards, BTreeMap = 24,
}

/// A level of the state's undo journal, open while it lives: `commit` keeps what was
/// applied through it, dropping it without `commit` takes all of it back. Levels nest
/// (the writer holds one for a group commit, `decide_batch` one per batch inside it).
pub struct Txn<'a> {
    state: &'a mut State,
    open: bool,
}

impl Txn<'_> {
    /// Keeps every change made since this level began (into the enclosing level, if any).
    pub fn commit(mut self) {
        self.state.commit();
        self.open = false;
    }
}

impl Drop for Txn<'_> {
    fn drop(&mut self) {
        if self.open {
            self.state.rollback();
        }
    }
}

impl std::ops::Deref for Txn<'_> {
    type Target = State;

    fn deref(&self) -> &State {
        self.state
    }
}

impl std::ops::DerefMut for Txn<'_> {
    fn deref_mut(&mut self) -> &mut State {
        self.state
    }
}

impl State {
    /// Opens a level of the undo journal (see `Txn`).
    pub fn txn(&mut self) -> Txn<'_> {
        self.begin();
        Txn { state: self, open: true }
    }

    pub fn balance(&self, a: &Account) -> Fen {
        self.balances.get(a).copied().unwrap_or(0)
    }

    pub fn wage_balance(&self, p: &ProjectId) -> Fen {
        self.balance(&Account::Wage(p.clone()))
    }

    pub fn deposit_cash(&self, p: &ProjectId) -> Fen {
        self.balance(&Account::Deposit(p.clone()))
    }

    pub fn enrolments_of<'a>(&'a self, p: &ProjectId) -> impl Iterator<Item = (&'a WorkerRef, &'a Enrolment)> + 'a {
        self.enrolments.range((p.clone(), REF_MIN)..=(p.clone(), REF_MAX)).map(|((_, w), e)| (w, e))
    }

    pub fn payrolls_of<'a>(&'a self, p: &ProjectId) -> impl Iterator<Item = (Period, &'a PayrollHeader)> + 'a {
        self.payrolls.range((p.clone(), PERIOD_MIN)..=(p.clone(), PERIOD_MAX)).map(|((_, per), h)| (*per, h))
    }

    /// A project's progress payments, in record order.
    pub fn progress_of<'a>(&'a self, p: &ProjectId) -> impl Iterator<Item = &'a ProgressEntry> + 'a {
        self.progress.range((p.clone(), 0)..=(p.clone(), Seq::MAX)).map(|(_, e)| e)
    }

    /// A project's guarantee letters.
    pub fn letters_of<'a>(&'a self, p: &ProjectId) -> impl Iterator<Item = (&'a DocNo, &'a Letter)> + 'a {
        let lo = (p.clone(), DocNo::min());
        let p = p.clone();
        self.project_letters
            .range(lo..)
            .take_while(move |((q, _), _)| *q == p)
            .filter_map(move |((_, n), _)| self.letters.get(n).map(|l| (n, l)))
    }

    /// The statements of one of a project's accounts, by date.
    pub fn statements_of<'a>(&'a self, p: &ProjectId, account: StatementAccount) -> impl Iterator<Item = (Date, &'a Statement)> + 'a {
        self.statements.range((p.clone(), account, crate::domain::date::DATE_MIN)..=(p.clone(), account, crate::domain::date::DATE_MAX)).map(|((_, _, d), s)| (*d, s))
    }

    /// A project's cash deposits (lodged and replenished), in record order.
    pub fn deposits_of<'a>(&'a self, p: &ProjectId) -> impl Iterator<Item = &'a MoneyIn> + 'a {
        self.deposits.range((p.clone(), 0)..=(p.clone(), Seq::MAX)).map(|(_, e)| e)
    }

    pub fn lines_of<'a>(&'a self, p: &ProjectId, per: Period) -> impl Iterator<Item = (&'a WorkerRef, &'a Line)> + 'a {
        self.lines.range((p.clone(), per, REF_MIN)..=(p.clone(), per, REF_MAX)).map(|((_, _, w), l)| (w, l))
    }

    /// The balance of an account at the point `w`.
    pub fn balance_at(&self, a: &Account, w: When) -> Fen {
        self.postings.get(a).map_or(0, |h| h.at(w).balance)
    }

    /// A project's payrolls the point `w` sees.
    pub fn payrolls_at<'a>(&'a self, p: &ProjectId, w: When) -> impl Iterator<Item = (Period, &'a PayrollHeader)> + 'a {
        self.payrolls_of(p).filter(move |(_, h)| w.sees(h.seq, h.dated))
    }

    /// Paid against a payroll at the point `w`.
    pub fn payroll_paid_at(&self, p: &ProjectId, per: Period, w: When) -> Fen {
        self.lines_of(p, per).map(|(_, l)| l.paid_at(w)).sum()
    }

    /// Of the records `cited`, the payments to `workers` in `county`: per record, the
    /// amount paid to them, its value date and which of them it paid. Reads each
    /// worker's payee history once (a worker's payments, not the log).
    pub fn cited_payouts(&self, county: CountyCode, workers: &[WorkerRef], cited: &std::collections::BTreeSet<Seq>) -> BTreeMap<Seq, (Fen, Date, Vec<WorkerRef>)> {
        let mut out: BTreeMap<Seq, (Fen, Date, Vec<WorkerRef>)> = BTreeMap::new();
        for w in workers {
            let Some(h) = self.payees.get(&(county, *w)) else { continue };
            for p in h.iter().filter(|p| cited.contains(&p.seq)) {
                let e = out.entry(p.seq).or_insert((0, p.date, Vec::new()));
                e.0 += p.amount;
                if e.2.last() != Some(w) {
                    e.2.push(*w);
                }
            }
        }
        out
    }

    /// What the payout recorded at `seq` paid out of project `p`'s wage or deposit
    /// account (a `WagePaid` or a `DepositDrawn`), with its value date, if it is one.
    pub fn payout_of_project(&self, p: &ProjectId, seq: Seq) -> Option<(Fen, Date)> {
        let mut found: Option<(Fen, Date)> = None;
        for a in [Account::Wage(p.clone()), Account::Deposit(p.clone())] {
            let Some(h) = self.postings.get(&a) else { continue };
            let (page, _) = h.page(seq.saturating_sub(1), When { seq, date: crate::domain::date::DATE_MAX }, usize::MAX);
            for (x, _) in page.iter().filter(|(x, _)| x.seq == seq && x.kind & PAID != 0) {
                let e = found.get_or_insert((0, x.date));
                e.0 -= x.amount;
            }
        }
        found
    }

    /// The key of `employer`'s listing in force on `date` by every record, if any.
    pub fn listing_of(&self, employer: &Uscc, date: Date) -> Option<(Uscc, Date)> {
        let all = When::date(crate::domain::date::DATE_MAX);
        self.listings
            .range((employer.clone(), crate::domain::date::DATE_MIN)..=(employer.clone(), date))
            .filter(|(_, l)| l.in_force_on(date, all))
            .last()
            .map(|(k, _)| k.clone())
    }

    /// The orders of a project.
    pub fn orders_of<'a>(&'a self, p: &ProjectId) -> impl Iterator<Item = &'a WageOrder> + 'a {
        let p2 = p.clone();
        self.wage_orders.range((p.clone(), DocNo::min())..).take_while(move |((q, _), _)| *q == p2).map(|(_, o)| o)
    }

    /// Wages due on submitted payrolls and not yet paid, for one project.
    pub fn owed_total(&self, p: &ProjectId) -> Fen {
        self.payrolls_of(p).map(|(_, h)| h.due_total - h.paid_total).sum()
    }

    /// The legs an event posts, given the state before it (inline: no allocation for
    /// the two or four legs of nearly every event).
    pub fn legs(&self, event: &Event) -> Legs {
        let project = |p: &ProjectId| self.projects.get(p).expect("decide checked the project exists");
        match event {
            Event::DepositPaid(c) => {
                let gc = project(&c.project).reg.general_contractor.clone();
                transfer(Account::Contractor(gc), Account::Deposit(c.project.clone()), c.amount.fen()).into_iter().collect()
            }
            Event::ProgressPaymentMade(c) => {
                let reg = &project(&c.project).reg;
                let mut legs = Legs::new();
                legs.extend(transfer(Account::Owner(reg.owner.clone()), Account::Wage(c.project.clone()), c.wage_share.fen()));
                legs.extend(transfer(
                    Account::Owner(reg.owner.clone()),
                    Account::Contractor(reg.general_contractor.clone()),
                    c.total.fen() - c.wage_share.fen(),
                ));
                legs.retain(|l| l.fen != 0);
                legs
            }
            Event::WageAccountToppedUp(c) => {
                let gc = project(&c.project).reg.general_contractor.clone();
                transfer(Account::Contractor(gc), Account::Wage(c.project.clone()), c.amount.fen()).into_iter().collect()
            }
            Event::WagePaid(c) => transfer(Account::Wage(c.project.clone()), Account::Card(c.card), c.amount.fen()).into_iter().collect(),
            Event::DepositDrawn(c) => c
                .payees
                .iter()
                .flat_map(|p| transfer(Account::Deposit(c.project.clone()), Account::Card(p.card), p.amount.fen()))
                .collect(),
            Event::DepositReleased(e) if e.amount.fen() > 0 => {
                let gc = project(&e.project).reg.general_contractor.clone();
                transfer(Account::Deposit(e.project.clone()), Account::Contractor(gc), e.amount.fen()).into_iter().collect()
            }
            Event::WageAccountClosed(e) if e.residual.fen() > 0 => {
                let gc = project(&e.project).reg.general_contractor.clone();
                transfer(Account::Wage(e.project.clone()), Account::Contractor(gc), e.residual.fen()).into_iter().collect()
            }
            _ => Legs::new(),
        }
    }

    /// Posts an event's legs to the balances and to the accounts' histories.
    fn post(&mut self, legs: Legs, seq: Seq, date: Date, kind: u8) {
        let sum: i128 = legs.iter().map(|l| i128::from(l.fen)).sum();
        assert_eq!(sum, 0, "the legs of an event sum to zero");
        for leg in legs {
            let internal = leg.account.is_internal();
            self.postings.push(&leg.account, Posting { seq, date, amount: leg.fen, kind });
            let b = self.balances.entry_or(leg.account, || 0);
            *b = b.checked_add(leg.fen).expect("decide bounds every total");
            assert!(!internal || *b >= 0, "an escrow account never goes negative");
        }
    }

    /// Pays `fen` against a payroll line if the payout names a period, and counts it as
    /// wages paid to the worker.
    fn count_payout(&mut self, project: &ProjectId, worker: &WorkerRef, period: Option<Period>, fen: Fen, date: Date, seq: Seq, kind: u8) {
        if let Some(per) = period {
            let line = self.lines.get_mut(&(project.clone(), per, *worker));
            line.paid += fen;
            line.pays.push(Pay { seq, date, fen });
            let h = self.payrolls.get_mut(&(project.clone(), per));
            h.paid_total += fen;
        }
        let county = self.projects.get(project).expect("decide checked the project exists").reg.county;
        self.workers.get_mut(worker).paid_total += fen;
        self.payees.push(&(county, *worker), Posting { seq, date, amount: fen, kind });
    }

    /// Makes good outstanding drawdowns, oldest first, with newly lodged cover.
    fn replenish(&mut self, project: &ProjectId, mut fen: Fen) {
        let p = self.projects.get_mut(project);
        for d in p.drawdowns.iter_mut() {
            let gap = d.fen - d.replenished;
            if gap > 0 && fen > 0 {
                let take = gap.min(fen);
                d.replenished += take;
                fen -= take;
            }
        }
    }

    /// Applies one accepted event at sequence number `seq`.
    ///
    /// # Panics
    /// If the event breaks an invariant that `decide` guarantees (an unknown project,
    /// an escrow account going negative): that is a bug, not a rejection.
    pub fn apply(&mut self, event: &Event, seq: Seq) {
        if let Some(n) = event.number() {
            // A log that holds a number twice (recorded before the check covered its
            // kind) replays: the second is not inserted again.
            self.numbers.insert(fingerprint(&n));
        }
        self.apply_rest(event, seq);
    }

    /// `apply` of an event `decide` just accepted, given the fingerprint of its external
    /// number, which `decide` found absent (`decide_batch`).
    pub(crate) fn apply_decided(&mut self, event: &Event, seq: Seq, fp: Option<u128>) {
        if let Some(fp) = fp {
            self.numbers.insert_absent(fp);
        }
        self.apply_rest(event, seq);
    }

    /// Everything `apply` does but recording the external number (every external
    /// number is recorded through the one declaration `decide` checks).
    fn apply_rest(&mut self, event: &Event, seq: Seq) {
        let legs = self.legs(event);
        let date = event.dated();
        let kind = event.kind_index() | if matches!(event, Event::WagePaid(_) | Event::DepositDrawn(_)) { PAID } else { 0 };
        self.post(legs, seq, date, kind);
        match event {
            Event::ProjectRegistered(c) => {
                self.projects.insert(
                    c.project.clone(),
                    Project {
                        reg: c.clone(),
                        seq,
                        status: ProjectStatus::Active,
                        status_changes: Vec::new(),
                        wage_account: None,
                        progress_total: 0,
                        wage_share_total: 0,
                        drawdowns: Vec::new(),
                        released: None,
                    },
                );
            }
            Event::ProjectStatusChanged(c) => {
                let p = self.projects.get_mut(&c.project);
                p.status = c.status;
                p.status_changes.push(StatusChange { date: c.date, status: c.status, seq });
            }
            Event::WageAccountOpened(c) => {
                self.projects.get_mut(&c.project).wage_account = Some(WageAccount {
                    bank: c.bank.clone(),
                    account_no: c.account_no.clone(),
                    opened: c.date,
                    seq,
                    closed: None,
                });
            }
            Event::WageAccountClosed(e) => {
                let p = self.projects.get_mut(&e.project);
                p.wage_account.as_mut().expect("decide checked it is open").closed = Some((e.date, seq));
            }
            Event::WorkerEnrolled(c) => {
                let span = Span {
                    from: c.date,
                    from_seq: seq,
                    to: None,
                    to_seq: 0,
                    employer: c.employer.clone(),
                    card: c.card,
                    card_masked: c.card_masked.clone(),
                };
                let e = self.enrolments.entry_or((c.project.clone(), c.worker), || Enrolment {
                    worker_masked: c.worker_masked.clone(),
                    employer: c.employer.clone(),
                    card: c.card,
                    card_masked: c.card_masked.clone(),
                    seq,
                    spans: Vec::new(),
                    contract: None,
                });
                if e.card != c.card {
                    // Re-enrolled with a new card: the old card is unbound.
                    let old = e.card;
                    e.card = c.card;
                    e.card_masked = c.card_masked.clone();
                    e.employer = c.employer.clone();
                    e.seq = seq;
                    e.spans.push(span);
                    self.cards.remove(&(c.project.clone(), old));
                } else {
                    e.employer = c.employer.clone();
                    e.seq = seq;
                    e.spans.push(span);
                }
                self.cards.insert((c.project.clone(), c.card), c.worker);
                let w = self.workers.entry_or(c.worker, || Worker { masked: c.worker_masked.clone(), projects: Default::default(), paid_total: 0 });
                if !w.projects.contains(&c.project) {
                    std::sync::Arc::make_mut(&mut w.projects).push(c.project.clone());
                }
            }
            Event::ContractRecorded(c) => {
                self.enrolments.get_mut(&(c.project.clone(), c.worker)).contract =
                    Some(ContractInfo { contract_no: c.contract_no.clone(), date: c.date, seq });
            }
            Event::WorkerExited(c) => {
                let e = self.enrolments.get_mut(&(c.project.clone(), c.worker));
                let span = e.spans.last_mut().expect("decide checked the worker is on site");
                span.to = Some(c.date);
                span.to_seq = seq;
            }
            Event::PayrollSubmitted(c) => {
                let mut due_total = 0;
                for l in &c.lines {
                    due_total += l.amount_due.fen();
                    self.lines.insert(
                        (c.project.clone(), c.period, l.worker),
                        Line { employer: l.employer.clone(), days: l.days, due: l.amount_due.fen(), paid: 0, pays: Default::default() },
                    );
                }
                self.payrolls.insert(
                    (c.project.clone(), c.period),
                    PayrollHeader {
                        seq,
                        dated: event.dated(),
                        payroll_no: c.payroll_no.clone(),
                        submitted_on: c.submitted_on,
                        due_date: c.due_date,
                        line_count: u32::try_from(c.lines.len()).expect("bounded by PAYROLL_LINES_MAX"),
                        due_total,
                        paid_total: 0,
                    },
                );
            }
            Event::DepositPaid(c) => {
                self.deposits.insert((c.project.clone(), seq), MoneyIn { seq, date: c.date, fen: c.amount.fen() });
                self.replenish(&c.project, c.amount.fen());
            }
            Event::GuaranteeLetterIssued(c) => {
                self.letters.insert(
                    c.letter_no.clone(),
                    Letter {
                        project: c.project.clone(),
                        bank: c.bank.clone(),
                        amount: c.amount,
                        valid_from: c.valid_from,
                        valid_to: c.valid_to,
                        dated: event.dated(),
                        seq,
                        cancelled: None,
                        issued_on: c.issued_on,
                        applicant: c.applicant.clone(),
                        beneficiary: c.beneficiary.clone(),
                    },
                );
                self.project_letters.insert((c.project.clone(), c.letter_no.clone()), seq);
                self.replenish(&c.project, c.amount.fen());
            }
            Event::GuaranteeLetterCancelled(c) => {
                self.letters.get_mut(&c.letter_no).cancelled = Some((c.date, seq));
            }
            Event::ProgressPaymentMade(c) => {
                self.progress.insert((c.project.clone(), seq), ProgressEntry { seq, date: c.date, total: c.total.fen(), share: c.wage_share.fen() });
                let p = self.projects.get_mut(&c.project);
                p.progress_total += c.total.fen();
                p.wage_share_total += c.wage_share.fen();
            }
            Event::WageAccountToppedUp(_) => {}
            Event::WagePaid(c) => {
                self.count_payout(&c.project, &c.worker, c.period, c.amount.fen(), c.date, seq, kind);
            }
            Event::DepositDrawn(c) => {
                self.orders.insert((c.project.clone(), c.order_no.clone()), seq);
                let total: Fen = c.payees.iter().map(|p| p.amount.fen()).sum();
                for payee in &c.payees {
                    self.count_payout(&c.project, &payee.worker, payee.period, payee.amount.fen(), c.date, seq, kind);
                }
                self.projects.get_mut(&c.project).drawdowns.push(DrawdownEntry {
                    seq,
                    date: c.date,
                    fen: total,
                    order_no: c.order_no.clone(),
                    order_date: c.order_date,
                    reason: c.reason.clone(),
                    replenished: 0,
                });
            }
            Event::DepositReleased(e) => {
                self.projects.get_mut(&e.project).released = Some(MoneyIn { seq, date: e.date, fen: e.amount.fen() });
            }
            Event::CaseOpened(c) => {
                self.cases.insert((c.county, c.case_no.clone()), Case { open: c.clone(), seq, decided: None, extended: None, closed: None });
            }
            Event::CaseDecided(c) => {
                self.cases.get_mut(&(c.county, c.case_no.clone())).decided = Some((c.clone(), seq));
            }
            Event::CaseExtended(c) => {
                self.cases.get_mut(&(c.county, c.case_no.clone())).extended = Some((c.clone(), seq));
            }
            Event::CaseClosed(c) => {
                let key = (c.county, c.case_no.clone());
                let cited: std::collections::BTreeSet<Seq> = c.payouts.iter().copied().collect();
                let workers = &self.cases.get(&key).expect("decide checked the case exists").open.workers;
                let paid: std::collections::BTreeSet<WorkerRef> = self.cited_payouts(c.county, workers, &cited).into_values().flat_map(|(_, _, ws)| ws).collect();
                for &s in &cited {
                    self.citations.insert(s, key.clone());
                }
                self.cases.get_mut(&key).closed = Some((c.clone(), seq, paid.len() as u32));
            }
            Event::OrderIssued(c) => {
                self.order_numbers.insert((c.county, c.order_no.clone()), c.project.clone());
                self.wage_orders.insert((c.project.clone(), c.order_no.clone()), WageOrder { order: c.clone(), seq, resolutions: Vec::new(), referral: None, outcomes: Vec::new() });
            }
            Event::OrderResolved(c) => {
                let p = self.order_numbers.get(&(c.county, c.order_no.clone())).expect("decide checked the order exists").clone();
                self.wage_orders.get_mut(&(p, c.order_no.clone())).resolutions.push((c.clone(), seq));
            }
            Event::OrderReferred(c) => {
                let p = self.order_numbers.get(&(c.county, c.order_no.clone())).expect("decide checked the order exists").clone();
                self.wage_orders.get_mut(&(p, c.order_no.clone())).referral = Some((c.clone(), seq));
            }
            Event::ReferralOutcomeRecorded(c) => {
                let p = self.order_numbers.get(&(c.county, c.order_no.clone())).expect("decide checked the order exists").clone();
                self.wage_orders.get_mut(&(p, c.order_no.clone())).outcomes.push((c.clone(), seq));
            }
            Event::EmployerListed(c) => {
                self.listings.insert((c.employer.clone(), c.listed_on), Listing { listing: c.clone(), seq, delisted: None });
            }
            Event::EmployerDelisted(c) => {
                let key = self.listing_of(&c.employer, c.date).expect("decide checked the employer is listed");
                self.listings.get_mut(&key).delisted = Some((c.clone(), seq));
            }
            Event::InspectionRecorded(c) => {
                self.inspections.insert((c.county, seq), c.clone());
            }
            Event::CardsRecorded(c) => {
                self.card_reports.insert((c.county, seq), c.clone());
            }
            Event::BalanceAttested(c) => {
                self.statements.insert(
                    (c.project.clone(), c.account, c.date),
                    Statement { seq, bank: c.bank.clone(), closing: c.closing_balance.fen(), bank_ref: c.bank_ref.clone() },
                );
            }
        }
    }
}
