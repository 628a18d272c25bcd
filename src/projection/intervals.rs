//! Flag intervals: the days each flag of a project was open, as the facts a point sees
//! tell it.
//!
//! A flag is a function of the facts and the day it is judged on (`flags`). Its interval
//! is the run of days on which it holds: opened on the first, cleared on the first day
//! after it that it no longer holds. Both are facts, not a rule's estimate: each is a day
//! on which `project_flags` was evaluated and changed, and the day before it was
//! evaluated too. A flag is followed by its code, its grade and its `instance` (the
//! drawdown, letter or account it is about); a letter's yellow warning that turns red is
//! one interval cleared and another opened.
//!
//! How the days are found without judging every day. Between two days on which some fact
//! of the project is dated, the facts are the same and only the calendar moves: deadlines
//! pass. The set of open flags is evaluated on each fact day and on the day before the
//! next one; where the two ends of such a stretch differ, the stretch is halved until the
//! change is pinned to one day. This misses only a flag that opens and clears again inside
//! one stretch with no fact dated in it, which the rules cannot do: with the facts fixed,
//! a passing deadline only opens a flag (or turns it red), and only a fact clears one.
//! `tests/it/pointintime.rs` checks the intervals against a day-by-day evaluation.
//!
//! Cost: about two evaluations of the project's flags per distinct day its facts are
//! dated, plus a few per deadline that passes between them.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::domain::command::StatementAccount;
use crate::domain::date::{CalendarBook, Date};
use crate::domain::policy::PolicyBook;
use crate::domain::posting::Account;

use super::flags::{project_flags, Flag, FlagCode, Grade};
use super::state::{Project, Seq, State};
use super::when::When;

/// One run of days on which a flag held.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagInterval {
    pub code: FlagCode,
    pub grade: Grade,
    /// The first day it held.
    pub opened: Date,
    /// The first day after `opened` it no longer held; `None` while it still holds on the
    /// point's day.
    pub cleared: Option<Date>,
    /// The records dated on the day it cleared, or whose deadline fell on it (at most
    /// `FLAG_EVIDENCE_MAX`): what cleared it.
    pub cleared_by: Vec<Seq>,
    /// The flag as it stood on the day it opened: its figures and evidence.
    pub first: Flag,
    /// The flag as it stood on its last day open (the point's day if still open).
    pub last: Flag,
}

type Key = (FlagCode, Grade, Seq);

fn key(f: &Flag) -> Key {
    (f.code, f.grade, f.instance)
}

/// Every interval of every flag of project `p` up to the point `w`, by opening day then
/// code.
pub fn flag_intervals(state: &State, p: &Project, policies: &PolicyBook, calendars: &CalendarBook, w: When) -> Vec<FlagInterval> {
    if !p.seen(w) {
        return Vec::new();
    }
    let start = p.reg.contract_date.min(p.reg.start_date).max(p.dated());
    if w.date < start {
        return Vec::new();
    }
    let eval = |d: Date| {
        let mut out = Vec::new();
        project_flags(state, p, policies, calendars, When { seq: w.seq, date: d }, &mut out);
        out.sort_by_key(key);
        out
    };
    let facts = fact_days(state, p, w);
    let mut judged: BTreeMap<Date, Vec<Flag>> = BTreeMap::new();
    let mut days = vec![start];
    if w.date > start {
        days.extend(facts.range(start.add_days(1)..=w.date).map(|(d, _)| *d));
    }
    for (i, &a) in days.iter().enumerate() {
        let fa = eval(a);
        // The stretch a ..= b holds the same facts.
        let b = days.get(i + 1).map_or(w.date, |next| next.add_days(-1));
        if b > a {
            let fb = eval(b);
            pin(&eval, a, &fa, b, &fb, &mut judged);
            judged.insert(b, fb);
        }
        judged.insert(a, fa);
    }
    let mut out = intervals(judged);
    for i in &mut out {
        if let Some(day) = i.cleared {
            i.cleared_by = facts.get(&day).map(|s| s.iter().copied().take(crate::limits::FLAG_EVIDENCE_MAX).collect()).unwrap_or_default();
        }
    }
    out
}

/// Judges days between `a` and `b` until every change of the set of open flags between
/// them is pinned to the day it happened.
fn pin(eval: &impl Fn(Date) -> Vec<Flag>, a: Date, fa: &[Flag], b: Date, fb: &[Flag], judged: &mut BTreeMap<Date, Vec<Flag>>) {
    if b.days_until(a) >= -1 || fa.iter().map(key).eq(fb.iter().map(key)) {
        return;
    }
    let m = a.add_days(a.days_until(b) / 2);
    let fm = eval(m);
    pin(eval, a, fa, m, &fm, judged);
    pin(eval, m, &fm, b, fb, judged);
    judged.insert(m, fm);
}

/// Walks the judged days in order. Two judged days in a row with the same set of flags
/// are one stretch (`pin` guarantees it); where the set differs they are adjacent days.
fn intervals(judged: BTreeMap<Date, Vec<Flag>>) -> Vec<FlagInterval> {
    let mut open: BTreeMap<Key, FlagInterval> = BTreeMap::new();
    let mut done = Vec::new();
    for (day, flags) in judged {
        let now: BTreeMap<Key, Flag> = flags.into_iter().map(|f| (key(&f), f)).collect();
        let gone: Vec<Key> = open.keys().filter(|k| !now.contains_key(k)).copied().collect();
        for k in gone {
            let mut i = open.remove(&k).expect("open");
            i.cleared = Some(day);
            done.push(i);
        }
        for (k, f) in now {
            match open.get_mut(&k) {
                Some(i) => i.last = f,
                None => {
                    open.insert(k, FlagInterval { code: f.code, grade: f.grade, opened: day, cleared: None, cleared_by: Vec::new(), first: f.clone(), last: f });
                }
            }
        }
    }
    done.extend(open.into_values());
    done.sort_by(|a, b| (a.opened, a.code, a.grade, a.first.instance).cmp(&(b.opened, b.code, b.grade, b.first.instance)));
    done
}

/// Every day on which a fact of project `p` the point `w` sees is dated, or a deadline
/// that a fact names falls (a letter's validity, a payroll's due date), with the records.
fn fact_days(state: &State, p: &Project, w: When) -> BTreeMap<Date, BTreeSet<Seq>> {
    let id = &p.reg.project;
    let mut days: BTreeMap<Date, BTreeSet<Seq>> = BTreeMap::new();
    let mut add = |seq: Seq, d: Date| {
        if seq <= w.seq {
            days.entry(d).or_default().insert(seq);
        }
    };
    add(p.seq, p.dated());
    add(p.seq, p.reg.contract_date);
    add(p.seq, p.reg.start_date);
    for c in &p.status_changes {
        add(c.seq, c.date);
    }
    if let Some(a) = &p.wage_account {
        add(a.seq, a.opened);
        if let Some((d, s)) = a.closed {
            add(s, d);
        }
    }
    for account in [Account::Wage(id.clone()), Account::Deposit(id.clone())] {
        if let Some(h) = state.postings.get(&account) {
            for posting in h.iter() {
                add(posting.seq, posting.date);
            }
        }
    }
    for e in state.progress_of(id) {
        add(e.seq, e.date);
    }
    for d in &p.drawdowns {
        add(d.seq, d.date);
    }
    for (_, e) in state.enrolments_of(id) {
        for s in &e.spans {
            add(s.from_seq, s.from);
            if let Some(to) = s.to {
                add(s.to_seq, to);
                add(s.to_seq, to.add_days(1));
            }
        }
        if let Some(c) = &e.contract {
            add(c.seq, c.date);
        }
    }
    for (per, h) in state.payrolls_of(id) {
        add(h.seq, h.dated);
        add(h.seq, h.due_date.add_days(1));
        for (_, l) in state.lines_of(id, per) {
            for pay in &l.pays {
                add(pay.seq, pay.date);
            }
        }
    }
    for (_, l) in state.letters_of(id) {
        add(l.seq, l.dated);
        add(l.seq, l.valid_from);
        add(l.seq, l.valid_to.add_days(1));
        if let Some((d, s)) = l.cancelled {
            add(s, d);
        }
    }
    for account in [StatementAccount::Wage, StatementAccount::Deposit] {
        for (d, s) in state.statements_of(id, account) {
            add(s.seq, d);
        }
    }
    for o in state.orders_of(id) {
        add(o.seq, o.order.issued_on);
        add(o.seq, o.order.deadline.add_days(1));
        for (r, s) in &o.resolutions {
            add(*s, r.date);
        }
        if let Some((r, s)) = &o.referral {
            add(*s, r.date);
        }
    }
    // The general contractor's listings change the deposit it must hold.
    let gc = &p.reg.general_contractor;
    for (_, l) in state.listings.range((gc.clone(), crate::domain::date::DATE_MIN)..=(gc.clone(), crate::domain::date::DATE_MAX)) {
        add(l.seq, l.listing.listed_on);
        if let Some((d, s)) = &l.delisted {
            add(*s, d.date);
        }
    }
    days
}
