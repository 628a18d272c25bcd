//! A realistic county, generated deterministically: the demo's data and the scenario test's.
//!
//! One county (永登县, 620121), 21 projects in the proportions of a real county report
//! (5 active, 11 completed, 5 suspended), 42 subcontractors, 1,200 workers registered of
//! whom 300 are on site at the end of the year, a year (January to November 2025) of
//! progress payments with their wage splits, payrolls and payouts to cards, and four
//! projects in trouble the way projects get into trouble:
//! - `P02`: from July the owner moves only 20% of each progress payment into the wage
//!   account and the contractor tops up the rest: `SPLIT_BELOW_RATIO`.
//! - `P03`: its deposit is a guarantee letter that lapses on 2025-12-15 and is not
//!   replaced: `LETTER_EXPIRING` (red) and `DEPOSIT_SHORTFALL`.
//! - `P04`: the owner pays nothing for October and November, so October's wages are
//!   overdue: `WAGES_OVERDUE`, and the account cannot cover what is owed: `WAGE_SHORTFALL`.
//! - `P17`: suspended in October; the county draws the deposit to pay October's wages and
//!   the contractor never replenishes it: `DRAWDOWN_NOT_REPLENISHED` and `DEPOSIT_SHORTFALL`.
//!
//! And a year of the county's casework (`casework`): 48 cases from complaints, the national
//! and provincial lead platforms and inspections, 45 of them closed (44 with the payouts
//! that paid the workers cited), 11 orders to pay, a referral to the police and a listing
//! on the credit list (`P04`'s general contractor), an overdue case (`P06`), 40
//! inspections, the bank's card counts.
//!
//! The plan carries, beside its commands, the figures its generator booked while writing
//! them (balances, wages paid, arrears), so that a test can hold the ledger's projections
//! against an independent account of the same money.

use std::collections::{BTreeMap, BTreeSet};

use crate::domain::command::*;
use crate::domain::date::{Date, Period};
use crate::domain::ids::*;
use crate::domain::money::{Fen, Money};
use crate::domain::policy::Policy;
use crate::domain::principal::Principal;
use crate::projection::casework::SourceFigures;
use crate::projection::report::OrderFigures;
use crate::store::StoreError;
use crate::vault::Vault;

/// The as-of date the demo's figures are reported at.
pub const AS_OF: (i32, u32, u32) = (2025, 12, 31);
pub const COUNTY: &str = "620121";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    Active,
    Completed,
    Suspended,
}

#[derive(Clone, Debug)]
pub struct WorkerPlan {
    pub national_id: NationalId,
    pub card: BankCard,
    pub worker: WorkerRef,
    pub card_ref: CardRef,
    pub employer: Uscc,
    pub monthly_fen: Fen,
}

/// One project of the plan with the figures its generator booked.
#[derive(Clone, Debug)]
pub struct ProjectPlan {
    pub id: ProjectId,
    pub fate: Fate,
    pub end_month: u8,
    pub contract_price: Money,
    pub general_contractor: Uscc,
    pub workers: Vec<WorkerPlan>,
    pub wage_balance: Fen,
    pub deposit_cash: Fen,
    pub letters_valid_at_end: Fen,
    pub progress_total: Fen,
    pub wage_share_total: Fen,
    pub paid_total: Fen,
    pub owed: Fen,
    pub overdue: Fen,
    pub overdue_workers: u32,
    /// Flag codes this project must show as of `AS_OF`, sorted.
    pub expected_flags: Vec<&'static str>,
}

#[derive(Clone, Debug)]
pub struct PlannedBatch {
    pub date: Date,
    pub principal: Principal,
    pub request_id: RequestId,
    pub commands: Vec<Command>,
}

#[derive(Clone, Debug)]
pub struct Plan {
    pub county: CountyCode,
    pub as_of: Date,
    pub projects: Vec<ProjectPlan>,
    /// The year's casework as its generator counted it.
    pub casework: CaseworkPlan,
    pub batches: Vec<PlannedBatch>,
}

impl Plan {
    pub fn command_count(&self) -> usize {
        self.batches.iter().map(|b| b.commands.len()).sum()
    }
}

/// A small deterministic generator (xorshift64*), so the plan depends on the seed alone.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn d(y: i32, m: u32, day: u32) -> Date {
    Date::from_ymd(y, m, day).expect("demo dates are valid")
}

/// The date `day` of the month after `period`.
fn next_month_day(p: Period, day: u32) -> Date {
    let n = p.next();
    n.first_day().add_days(i64::from(day) - 1)
}

fn fen(f: Fen) -> Money {
    Money::from_fen(f).expect("demo amounts are in range")
}

fn text(s: &str) -> Text {
    Text::parse(s).expect("demo text is valid")
}

fn doc(s: String) -> DocNo {
    DocNo::parse(&s).expect("demo doc numbers are valid")
}

fn uscc(kind: &str, n: u32) -> Uscc {
    Uscc::with_check(&format!("91620121{kind}{n:07}"))
}

struct Builder {
    batches: Vec<(Date, usize, usize, PlannedBatch)>,
    counter: usize,
    /// Commands that cite payout records, by batch counter: the payment numbers (of a
    /// `PayWage`) or drawdown order numbers (of a `DrawDeposit`) they cite, turned into
    /// sequence numbers once the batches are in their final order.
    cites: BTreeMap<usize, Vec<String>>,
}

impl Builder {
    fn add(&mut self, project: usize, date: Date, principal: &Principal, name: String, commands: Vec<Command>) {
        self.counter += 1;
        let request_id = RequestId::parse(&format!("demo-{name}")).expect("demo request ids are valid");
        self.batches.push((date, project, self.counter, PlannedBatch { date, principal: principal.clone(), request_id, commands }));
    }

    /// A batch of one command citing the payout records `refs` (its citation is filled in
    /// by `finish`).
    fn add_citing(&mut self, project: usize, date: Date, principal: &Principal, name: String, command: Command, refs: Vec<String>) {
        self.add(project, date, principal, name, vec![command]);
        self.cites.insert(self.counter, refs);
    }

    /// The batches in posting order (by date, then project, then as written), each command
    /// that cites payouts given the sequence numbers the ledger will record them at: one
    /// record per command, from 1. The server refuses a citation of anything but the
    /// right payouts, so a mistake here fails the demo rather than passing unseen.
    fn finish(mut self) -> Vec<PlannedBatch> {
        self.batches.sort_by_key(|(date, project, n, _)| (*date, *project, *n));
        let mut seq_of: BTreeMap<String, u64> = BTreeMap::new();
        let mut seq = 0u64;
        for (_, _, _, b) in &self.batches {
            for c in &b.commands {
                seq += 1;
                match c {
                    Command::PayWage(p) => seq_of.insert(p.payment_no.to_string(), seq),
                    Command::DrawDeposit(d) => seq_of.insert(d.order_no.to_string(), seq),
                    _ => None,
                };
            }
        }
        for (_, _, n, b) in &mut self.batches {
            let Some(refs) = self.cites.get(n) else { continue };
            let mut seqs: Vec<u64> = refs.iter().map(|r| seq_of[r]).collect();
            seqs.sort_unstable();
            seqs.dedup();
            for c in &mut b.commands {
                match c {
                    Command::CloseCase(x) => x.payouts.clone_from(&seqs),
                    Command::ResolveOrder(x) => x.records.clone_from(&seqs),
                    _ => unreachable!("only closures and compliances cite payouts"),
                }
            }
        }
        self.batches.into_iter().map(|(.., pb)| pb).collect()
    }
}

/// Builds the plan. Worker and card commitments come from `vault`, as at the API edge.
///
/// # Errors
/// `StoreError` if the vault fails.
pub fn plan(seed: u64, vault: &Vault) -> Result<Plan, StoreError> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let county = CountyCode::parse(COUNTY).expect("valid county");
    let county_p = Principal::County(county);
    let bank = BankCode::parse("ICBC").expect("valid");
    let bank_p = Principal::Bank(bank.clone());
    let policy = Policy::default();
    let as_of = d(AS_OF.0, AS_OF.1, AS_OF.2);
    let mut b = Builder { batches: Vec::new(), counter: 0, cites: BTreeMap::new() };
    // Each project-month's payouts to its workers' cards (payment number and amount, by
    // worker), which the casework below cites.
    let mut paid: BTreeMap<(usize, u8), Vec<(String, Fen)>> = BTreeMap::new();
    let mut projects = Vec::new();
    let completed_ends = [3u8, 4, 5, 6, 7, 8, 9, 10, 11, 6, 8];
    let suspended_ends = [10u8, 8, 9, 10, 9];
    let mut worker_no = 0u32;
    let names = ["安置房", "学校教学楼", "人民医院门诊楼", "道路改造", "供水管网", "产业园厂房", "体育馆", "保障性住房"];

    for k in 0..21usize {
        let (fate, end_month) = match k {
            0..=4 => (Fate::Active, 11),
            5..=15 => (Fate::Completed, completed_ends[k - 5]),
            _ => (Fate::Suspended, suspended_ends[k - 16]),
        };
        let id = ProjectId::parse(&format!("P{:02}", k + 1)).expect("valid");
        let gc = uscc("MA", 100 + (k as u32 % 7));
        let gc_p = Principal::Contractor(gc.clone());
        let owner = uscc("MB", 200 + (k as u32 % 10));
        let employers = [uscc("MC", 300 + 2 * k as u32), uscc("MC", 301 + 2 * k as u32)];
        let price = fen((20_000_000 + rng.below(80) as i64 * 1_000_000) * 100);
        let headcount = match fate {
            Fate::Active => 60,
            Fate::Completed => 60,
            Fate::Suspended => 48,
        };
        let name = format!("永登县{}{}期", names[k % names.len()], k / names.len() + 1);
        b.add(k, d(2024, 12, 10), &county_p, format!("{id}-register"), vec![Command::RegisterProject(RegisterProject {
            project: id.clone(),
            county,
            name: text(&name),
            general_contractor: gc.clone(),
            owner: owner.clone(),
            contract_price: price,
            contract_date: d(2024, 12, 10),
            permit_date: Some(d(2024, 12, 16)),
            start_date: d(2025, 1, 1),
            planned_end: d(2026, 12, 31),
            labour_ratio_bp: None,
            deposit_rate_bp: None,
            registered_on: Some(d(2024, 12, 10)),
            deposit_basis: DepositBasis::ByPrice,
            funding: if k % 3 == 0 { Funding::Government } else { Funding::Other },
        })]);
        b.add(k, d(2024, 12, 20), &bank_p, format!("{id}-account"), vec![Command::OpenWageAccount(OpenWageAccount {
            project: id.clone(),
            bank: bank.clone(),
            account_no: text(&format!("2703 0012 09{:04} 1", k + 1)),
            date: d(2024, 12, 20),
        })]);
        let required = policy.deposit_required(price).fen();
        let mut deposit_cash: Fen = 0;
        let mut letters_valid_at_end: Fen = 0;
        if k == 2 {
            b.add(k, d(2025, 1, 6), &bank_p, format!("{id}-letter"), vec![Command::IssueGuaranteeLetter(IssueGuaranteeLetter {
                project: id.clone(),
                letter_no: doc(format!("BH-2025-{:03}", k + 1)),
                bank: bank.clone(),
                amount: fen(required),
                valid_from: d(2025, 1, 6),
                valid_to: d(2025, 12, 15),
                issued_on: Some(d(2025, 1, 6)),
                applicant: Some(gc.clone()),
                beneficiary: Some(text("榆中县人力资源和社会保障局")),
            })]);
        } else {
            b.add(k, d(2025, 1, 6), &bank_p, format!("{id}-deposit"), vec![Command::PayDeposit(PayDeposit {
                project: id.clone(),
                bank: bank.clone(),
                payment_no: doc(format!("BZJ-{:03}", k + 1)),
                amount: fen(required),
                date: d(2025, 1, 6),
            })]);
            deposit_cash = required;
        }

        // Real-name registration with cards and contracts.
        let mut workers = Vec::new();
        let mut enrol = Vec::new();
        for j in 0..headcount {
            let i = worker_no;
            worker_no += 1;
            let nid = NationalId::with_check(&format!("620121{}{:02}{:02}{:03}", 1970 + i % 30, 1 + (i / 30) % 12, 1 + (i / 360) % 28, i % 1000));
            let card = BankCard::with_check(&format!("621700{:012}", 100_000 + u64::from(i) * 13));
            let (worker, masked) = vault.worker(&nid)?;
            let (card_ref, card_masked) = vault.card(&card)?;
            let employer = employers[j % 2].clone();
            let monthly_fen = (4_000 + rng.below(31) as i64 * 100) * 100;
            enrol.push(Command::EnrolWorker(EnrolWorker {
                project: id.clone(),
                worker,
                worker_masked: text(&masked),
                employer: employer.clone(),
                card: card_ref,
                card_masked: text(&card_masked),
                date: d(2025, 1, 2),
            }));
            enrol.push(Command::RecordContract(RecordContract {
                project: id.clone(),
                worker,
                contract_no: doc(format!("HT-{id}-{j:03}")),
                date: d(2025, 1, 2),
            }));
            workers.push(WorkerPlan { national_id: nid, card, worker, card_ref, employer, monthly_fen });
        }
        b.add(k, d(2025, 1, 2), &gc_p, format!("{id}-enrol"), enrol);

        let mut wage_balance: Fen = 0;
        let mut progress_total: Fen = 0;
        let mut share_total: Fen = 0;
        let mut paid_total: Fen = 0;
        let mut owed: Fen = 0;
        let mut overdue: Fen = 0;
        let mut overdue_workers = 0;
        for m in 1..=end_month {
            let per = Period::new(2025, m).expect("valid");
            let last_month = m == end_month && fate != Fate::Active;
            let half = last_month && fate == Fate::Suspended;
            let lines: Vec<PayrollLine> = workers
                .iter()
                .map(|w| PayrollLine {
                    worker: w.worker,
                    employer: w.employer.clone(),
                    days: if half { 11 } else { 26 },
                    amount_due: fen(if half { w.monthly_fen / 2 } else { w.monthly_fen }),
                })
                .collect();
            let payroll_total: Fen = lines.iter().map(|l| l.amount_due.fen()).sum();
            if last_month {
                let (status, date, what) = match fate {
                    Fate::Completed => (ProjectStatus::Completed, per.last_day(), "complete"),
                    _ => (ProjectStatus::Suspended, d(2025, u32::from(m), 15), "suspend"),
                };
                b.add(k, date, &county_p, format!("{id}-{what}"), vec![Command::ChangeProjectStatus(ChangeProjectStatus { project: id.clone(), status, date })]);
                let exits = workers.iter().map(|w| Command::ExitWorker(ExitWorker { project: id.clone(), worker: w.worker, date })).collect();
                b.add(k, date, &gc_p, format!("{id}-exit"), exits);
            }
            let unfunded = (k == 3 && m >= 10) || (k == 16 && m == end_month);
            let mut money_in = Vec::new();
            if !unfunded {
                let total = (payroll_total * 100 + 34) / 35;
                let share = if k == 1 && m >= 7 { total / 5 } else { payroll_total + 100_000 };
                money_in.push(Command::MakeProgressPayment(MakeProgressPayment {
                    project: id.clone(),
                    payment_no: doc(format!("GCK-{id}-{per}")),
                    total: fen(total),
                    wage_share: fen(share),
                    date: next_month_day(per, 5),
                }));
                progress_total += total;
                share_total += share;
                wage_balance += share;
                if share < payroll_total + 100_000 {
                    let topup = payroll_total + 100_000 - share;
                    money_in.push(Command::TopUpWageAccount(TopUpWageAccount {
                        project: id.clone(),
                        payment_no: doc(format!("BF-{id}-{per}")),
                        amount: fen(topup),
                        date: next_month_day(per, 5),
                    }));
                    wage_balance += topup;
                }
                b.add(k, next_month_day(per, 5), &bank_p, format!("{id}-{per}-progress"), money_in);
            }
            let due_date = per.next().last_day();
            b.add(k, next_month_day(per, 5), &gc_p, format!("{id}-{per}-payroll"), vec![Command::SubmitPayroll(SubmitPayroll {
                project: id.clone(),
                period: per,
                due_date,
                lines: lines.clone(),
                payroll_no: Some(doc(format!("GZ-{id}-{per}"))),
                submitted_on: Some(next_month_day(per, 5)),
            })]);
            if k == 16 && m == end_month {
                // The county draws the deposit to pay the month the owner did not fund.
                let date = next_month_day(per, 12);
                let payees = workers
                    .iter()
                    .zip(&lines)
                    .map(|(w, l)| DrawdownPayee { worker: w.worker, card: w.card_ref, amount: l.amount_due, period: Some(per) })
                    .collect();
                paid.insert((k, m), lines.iter().map(|l| (format!("DY-{id}-{per}"), l.amount_due.fen())).collect());
                b.add(k, date, &county_p, format!("{id}-{per}-drawdown"), vec![Command::DrawDeposit(DrawDeposit {
                    project: id.clone(),
                    order_no: doc(format!("DY-{id}-{per}")),
                    date,
                    payees,
                    order_date: Some(next_month_day(per, 10)),
                    reason: Some(text(&format!("{per} 工资未按时足额支付，业主未拨付工程款"))),
                })]);
                deposit_cash -= payroll_total;
                paid_total += payroll_total;
            } else if unfunded {
                owed += payroll_total;
                if due_date < as_of {
                    overdue += payroll_total;
                    overdue_workers = workers.len() as u32;
                }
            } else {
                let payouts = workers
                    .iter()
                    .zip(&lines)
                    .enumerate()
                    .map(|(j, (w, l))| Command::PayWage(PayWage {
                        project: id.clone(),
                        payment_no: doc(format!("DF-{id}-{per}-{j:03}")),
                        worker: w.worker,
                        card: w.card_ref,
                        amount: l.amount_due,
                        date: next_month_day(per, 10),
                        period: Some(per),
                    }))
                    .collect();
                paid.insert((k, m), lines.iter().enumerate().map(|(j, l)| (format!("DF-{id}-{per}-{j:03}"), l.amount_due.fen())).collect());
                b.add(k, next_month_day(per, 10), &bank_p, format!("{id}-{per}-payout"), payouts);
                wage_balance -= payroll_total;
                paid_total += payroll_total;
            }
            if last_month && fate == Fate::Completed {
                let date = next_month_day(per, 15);
                b.add(k, date, &county_p, format!("{id}-release"), vec![Command::ReleaseDeposit(ReleaseDeposit { project: id.clone(), date })]);
                b.add(k, date, &bank_p, format!("{id}-close"), vec![Command::CloseWageAccount(CloseWageAccount { project: id.clone(), date })]);
                deposit_cash = 0;
                wage_balance = 0;
            }
        }
        let mut expected_flags = match k {
            1 => vec!["SPLIT_BELOW_RATIO"],
            2 => {
                letters_valid_at_end = 0;
                vec!["DEPOSIT_SHORTFALL", "LETTER_EXPIRING"]
            }
            3 => vec!["WAGES_OVERDUE", "WAGE_SHORTFALL"],
            16 => vec!["DEPOSIT_SHORTFALL", "DRAWDOWN_NOT_REPLENISHED"],
            _ => vec![],
        };
        expected_flags.sort_unstable();
        projects.push(ProjectPlan {
            id,
            fate,
            end_month,
            contract_price: price,
            general_contractor: gc,
            workers,
            wage_balance,
            deposit_cash,
            letters_valid_at_end,
            progress_total,
            wage_share_total: share_total,
            paid_total,
            owed,
            overdue,
            overdue_workers,
            expected_flags,
        });
    }
    vault.flush()?;
    let casework = casework(&mut rng, &mut b, &mut projects, &paid, county, &bank);
    Ok(Plan { county, as_of, projects, casework, batches: b.finish() })
}


/// The year's casework as the generator counted it, for a test to hold the county report
/// against: cases by source (received, accepted, declined, closed, overdue at `AS_OF`,
/// wages recovered and workers paid), orders, listings, inspections and cards.
#[derive(Clone, Debug, Default)]
pub struct CaseworkPlan {
    pub cases: BTreeMap<String, SourceFigures>,
    pub orders: OrderFigures,
    pub listed: Vec<Uscc>,
    pub inspections: u32,
    pub employers_inspected: u32,
    pub contracts_signed: u32,
    pub cards_issued: u32,
    pub cards_activated: u32,
}

/// A case the generator closes with the wages recovered by the payouts it cites.
struct Recovered<'a> {
    no: String,
    source: CaseSource,
    k: usize,
    received_on: Date,
    closed_on: Date,
    workers: &'a [usize],
    summary: String,
}

/// A year of the county's casework, in the shape of a county work report: complaints
/// and leads from the national and provincial platforms, nearly all closed with the
/// payouts that paid the workers cited; orders to pay, complied with by citing the same
/// payouts; cards the bank reports; forty inspections. And the cases that go wrong:
/// - `P04`, unpaid since October: a national-platform lead (open at the year's end),
///   an order to its general contractor unmet past its deadline (`ORDER_UNMET`), referred
///   to the police (who open a case), and the contractor put on the credit list;
/// - `P06`: a provincial lead accepted in August and never closed (`CASE_OVERDUE`);
/// - `P17`: a provincial lead settled by the county's deposit drawdown.
fn casework(rng: &mut Rng, b: &mut Builder, projects: &mut [ProjectPlan], paid: &BTreeMap<(usize, u8), Vec<(String, Fen)>>, county: CountyCode, bank: &BankCode) -> CaseworkPlan {
    let county_p = Principal::County(county);
    let mut out = CaseworkPlan::default();
    // Project-months whose payouts a case may cite, each used by one case at most.
    let mut months: Vec<(usize, u8)> = paid.keys().copied().filter(|(k, _)| *k != 16).collect();
    let mut pick = |rng: &mut Rng| months.swap_remove(rng.below(months.len() as u64) as usize);
    let mut orders_left = 10u32;
    let mut order_n = 0u32;

    let mut recover = |b: &mut Builder, out: &mut CaseworkPlan, rng: &mut Rng, c: Recovered<'_>, m: u8, order: bool| {
        let p = &projects[c.k];
        let refs: Vec<(String, Fen)> = c.workers.iter().map(|j| paid[&(c.k, m)][*j].clone()).collect();
        let amount: Fen = refs.iter().map(|(_, f)| f).sum();
        let employer = p.workers[c.workers[0]].employer.clone();
        let case_no = doc(c.no.clone());
        b.add(c.k, c.received_on, &county_p, format!("case-{}-open", c.no), vec![Command::OpenCase(OpenCase {
            case_no: case_no.clone(),
            county,
            source: c.source,
            received_on: c.received_on,
            employer: employer.clone(),
            project: Some(p.id.clone()),
            workers: c.workers.iter().map(|j| p.workers[*j].worker).collect(),
            amount_claimed: fen(amount),
            summary: Some(text(&c.summary)),
        })]);
        let accepted_on = c.received_on.add_days(1 + rng.below(3) as i64);
        b.add(c.k, accepted_on, &county_p, format!("case-{}-accept", c.no), vec![Command::DecideCase(DecideCase { case_no: case_no.clone(), county, date: accepted_on, accepted: true, reason: None })]);
        let refs_no: Vec<String> = refs.iter().map(|(r, _)| r.clone()).collect();
        if order {
            order_n += 1;
            let order_no = format!("ZL-2025-{order_n:03}");
            let issued_on = accepted_on.add_days(1);
            let largest = refs.iter().map(|(_, f)| *f).max().unwrap_or(0);
            b.add(c.k, issued_on, &county_p, format!("order-{order_no}-issue"), vec![Command::IssueOrder(IssueOrder {
                order_no: doc(order_no.clone()),
                county,
                project: p.id.clone(),
                employer: employer.clone(),
                case_no: Some(case_no.clone()),
                issued_on,
                deadline: issued_on.add_days(10),
                amount: fen(amount),
                workers: c.workers.len() as u32,
                largest: fen(largest),
                demand: text("限期足额支付所欠农民工工资"),
            })]);
            b.add_citing(c.k, c.closed_on, &county_p, format!("order-{order_no}-complied"), Command::ResolveOrder(ResolveOrder {
                order_no: doc(order_no),
                county,
                date: c.closed_on,
                complied: true,
                records: Vec::new(),
                note: Some(text("已按指令书足额支付，代发记录见引用")),
            }), refs_no.clone());
            out.orders.issued += 1;
            out.orders.complied += 1;
        }
        b.add_citing(c.k, c.closed_on, &county_p, format!("case-{}-close", c.no), Command::CloseCase(CloseCase {
            case_no,
            county,
            date: c.closed_on,
            outcome: CaseOutcome::Recovered,
            recovered: fen(amount),
            payouts: Vec::new(),
            note: Some(text("工资已由专用账户代发至工人银行卡")),
        }), refs_no);
        let f = out.cases.entry(c.source.as_str().to_owned()).or_default();
        f.received += 1;
        f.accepted += 1;
        f.closed += 1;
        f.recovered += amount;
        f.workers_paid += c.workers.len() as u32;
    };

    // Cases settled by a month's payouts: received two days into the month after, paid by
    // the payout of the 10th, closed a week or two later.
    let sources = [(CaseSource::Complaint, "TS", 12u32, 3u64), (CaseSource::NationalPlatform, "GJ", 24, 6), (CaseSource::ProvincialPlatform, "SJ", 4, 8), (CaseSource::Inspection, "JC", 3, 10)];
    let mut worker_sets: Vec<Vec<usize>> = Vec::new();
    let mut planned = Vec::new();
    for (source, prefix, count, most) in sources {
        for n in 1..=count {
            let (k, m) = pick(rng);
            let size = 1 + rng.below(most) as usize;
            let heads = projects[k].workers.len();
            let first = rng.below((heads - 2 * size) as u64) as usize;
            // Workers of one employer (the employers alternate down the roster).
            worker_sets.push((0..size).map(|i| first + 2 * i).collect());
            planned.push((source, format!("{prefix}-2025-{n:03}"), k, m));
        }
    }
    for ((source, no, k, m), workers) in planned.into_iter().zip(&worker_sets) {
        let per = Period::new(2025, m).expect("valid");
        let received_on = next_month_day(per, 2);
        let closed_on = next_month_day(per, 16 + rng.below(10) as u32);
        let summary = match source {
            CaseSource::Complaint => format!("工人反映{per}工资未发放"),
            CaseSource::NationalPlatform => format!("全国根治欠薪线索反映平台转办：反映{per}工资拖欠"),
            CaseSource::ProvincialPlatform => format!("省平台转办：反映{per}工资拖欠"),
            CaseSource::Inspection => format!("检查发现{per}工资未按时支付"),
        };
        // The county orders the employer to pay in ten of the national platform's leads.
        let order = orders_left > 0 && source == CaseSource::NationalPlatform;
        orders_left -= u32::from(order);
        recover(b, &mut out, rng, Recovered { no, source, k, received_on, closed_on, workers, summary }, m, order);
    }

    // P17: a provincial lead about October, settled by the county's drawdown of the deposit.
    let p17_workers: Vec<usize> = (0..6).map(|i| 1 + 2 * i).collect();
    recover(b, &mut out, rng, Recovered {
        no: "SJ-2025-005".into(),
        source: CaseSource::ProvincialPlatform,
        k: 16,
        received_on: d(2025, 11, 3),
        closed_on: d(2025, 11, 20),
        workers: &p17_workers,
        summary: "省平台转办：项目停工，反映2025-10工资未发放".into(),
    }, projects[16].end_month, false);
    drop(recover);

    // Two complaints that recover nothing: one found paid in full, one declined (the
    // worker had gone to arbitration).
    for (n, accepted) in [(13u32, true), (14, false)] {
        let (k, m) = pick(rng);
        let p = &projects[k];
        let per = Period::new(2025, m).expect("valid");
        let no = format!("TS-2025-{n:03}");
        let received_on = next_month_day(per, 12);
        let decided_on = received_on.add_days(2);
        let j = rng.below(p.workers.len() as u64) as usize;
        b.add(k, received_on, &county_p, format!("case-{no}-open"), vec![Command::OpenCase(OpenCase {
            case_no: doc(no.clone()),
            county,
            source: CaseSource::Complaint,
            received_on,
            employer: p.workers[j].employer.clone(),
            project: Some(p.id.clone()),
            workers: vec![p.workers[j].worker],
            amount_claimed: fen(paid[&(k, m)][j].1),
            summary: Some(text(&format!("工人反映{per}工资未足额发放"))),
        })]);
        b.add(k, decided_on, &county_p, format!("case-{no}-decide"), vec![Command::DecideCase(DecideCase {
            case_no: doc(no.clone()),
            county,
            date: decided_on,
            accepted,
            reason: (!accepted).then(|| text("当事人已申请劳动人事争议仲裁，告知其依仲裁程序处理")),
        })]);
        let f = out.cases.entry(CaseSource::Complaint.as_str().to_owned()).or_default();
        f.received += 1;
        if accepted {
            let closed_on = decided_on.add_days(7);
            b.add(k, closed_on, &county_p, format!("case-{no}-close"), vec![Command::CloseCase(CloseCase {
                case_no: doc(no),
                county,
                date: closed_on,
                outcome: CaseOutcome::NoArrears,
                recovered: fen(0),
                payouts: Vec::new(),
                note: Some(text("核查代发记录，该月工资已按时足额支付至本人银行卡")),
            })]);
            f.accepted += 1;
            f.closed += 1;
        } else {
            f.declined += 1;
        }
    }

    // P06: a provincial lead about overtime pay after completion, accepted in August and
    // not closed: past the 60 working days by the year's end (CASE_OVERDUE).
    {
        let p = &projects[5];
        let no = "SJ-2025-006";
        let workers: Vec<WorkerRef> = (0..4).map(|i| p.workers[2 * i].worker).collect();
        b.add(5, d(2025, 8, 18), &county_p, format!("case-{no}-open"), vec![Command::OpenCase(OpenCase {
            case_no: doc(no.into()),
            county,
            source: CaseSource::ProvincialPlatform,
            received_on: d(2025, 8, 18),
            employer: p.workers[0].employer.clone(),
            project: Some(p.id.clone()),
            workers,
            amount_claimed: fen(1_860_000),
            summary: Some(text("省平台转办：反映竣工前加班工资未结清")),
        })]);
        b.add(5, d(2025, 8, 20), &county_p, format!("case-{no}-accept"), vec![Command::DecideCase(DecideCase { case_no: doc(no.into()), county, date: d(2025, 8, 20), accepted: true, reason: None })]);
        let f = out.cases.entry(CaseSource::ProvincialPlatform.as_str().to_owned()).or_default();
        f.received += 1;
        f.accepted += 1;
        // A flag of the county's casework (the report's problems name P06), not of the
        // project's money: not among `expected_flags`.
        f.overdue += 1;
    }

    // P04, unpaid since October: a national-platform lead, an order to the general
    // contractor unmet past its deadline, the referral to the police, the credit list.
    {
        let p = &projects[3];
        let gc = p.general_contractor.clone();
        let lead: Vec<usize> = (0..12).map(|i| 2 * i).collect();
        let claimed: Fen = lead.iter().map(|j| 2 * p.workers[*j].monthly_fen).sum();
        b.add(3, d(2025, 12, 2), &county_p, "case-GJ-2025-025-open".into(), vec![Command::OpenCase(OpenCase {
            case_no: doc("GJ-2025-025".into()),
            county,
            source: CaseSource::NationalPlatform,
            received_on: d(2025, 12, 2),
            employer: p.workers[0].employer.clone(),
            project: Some(p.id.clone()),
            workers: lead.iter().map(|j| p.workers[*j].worker).collect(),
            amount_claimed: fen(claimed),
            summary: Some(text("全国根治欠薪线索反映平台转办：反映2025-10、2025-11工资未发放")),
        })]);
        b.add(3, d(2025, 12, 4), &county_p, "case-GJ-2025-025-accept".into(), vec![Command::DecideCase(DecideCase { case_no: doc("GJ-2025-025".into()), county, date: d(2025, 12, 4), accepted: true, reason: None })]);
        let f = out.cases.entry(CaseSource::NationalPlatform.as_str().to_owned()).or_default();
        f.received += 1;
        f.accepted += 1;
        let october: Fen = p.workers.iter().map(|w| w.monthly_fen).sum();
        let largest = p.workers.iter().map(|w| w.monthly_fen).max().unwrap_or(0);
        let order_no = "ZL-2025-011";
        b.add(3, d(2025, 12, 8), &county_p, format!("order-{order_no}-issue"), vec![Command::IssueOrder(IssueOrder {
            order_no: doc(order_no.into()),
            county,
            project: p.id.clone(),
            employer: gc.clone(),
            case_no: Some(doc("GJ-2025-025".into())),
            issued_on: d(2025, 12, 8),
            deadline: d(2025, 12, 22),
            amount: fen(october),
            workers: p.workers.len() as u32,
            largest: fen(largest),
            demand: text("总承包单位先行清偿2025-10全部农民工工资"),
        })]);
        b.add(3, d(2025, 12, 23), &county_p, format!("order-{order_no}-unmet"), vec![Command::ResolveOrder(ResolveOrder {
            order_no: doc(order_no.into()),
            county,
            date: d(2025, 12, 23),
            complied: false,
            records: Vec::new(),
            note: Some(text("逾期未支付")),
        })]);
        b.add(3, d(2025, 12, 26), &county_p, format!("order-{order_no}-refer"), vec![Command::ReferOrder(ReferOrder {
            order_no: doc(order_no.into()),
            county,
            date: d(2025, 12, 26),
            police_ref: doc("YGX-2025-118".into()),
        })]);
        b.add(3, d(2025, 12, 30), &county_p, format!("order-{order_no}-filed"), vec![Command::RecordReferralOutcome(RecordReferralOutcome {
            order_no: doc(order_no.into()),
            county,
            date: d(2025, 12, 30),
            outcome: ReferralOutcome::Filed,
            reference: Some(doc("YGX-LA-2025-118".into())),
            note: Some(text("公安机关以涉嫌拒不支付劳动报酬罪立案侦查")),
        })]);
        b.add(3, d(2025, 12, 29), &county_p, format!("list-{gc}"), vec![Command::ListEmployer(ListEmployer {
            county,
            employer: gc.clone(),
            listed_on: d(2025, 12, 29),
            basis: ListingBasis::UnmetOrder(doc(order_no.into())),
        })]);
        out.orders.issued += 1;
        out.orders.unmet += 1;
        out.orders.referred += 1;
        out.orders.referrals_filed += 1;
        out.listed.push(gc);
        projects[3].expected_flags.push("ORDER_UNMET");
    }
    for p in projects.iter_mut() {
        p.expected_flags.sort_unstable();
    }

    // Forty inspections of subcontractors on site, contracts signed on the spot.
    let mut inspected = BTreeSet::new();
    for n in 0..40u32 {
        let k = (n as usize * 8) % 21;
        let p = &projects[k];
        let month = 1 + rng.below(u64::from(p.end_month)) as u32;
        let date = d(2025, month, 3 + rng.below(20) as u32);
        let employer = p.workers[n as usize % 2].employer.clone();
        let signed = rng.below(40) as u32;
        b.add(k, date, &county_p, format!("inspect-{n:02}"), vec![Command::RecordInspection(RecordInspection {
            county,
            employer: employer.clone(),
            date,
            project: Some(p.id.clone()),
            contracts_signed: signed,
            findings: text(&format!("实名制考勤与工资台账齐全，现场补签劳动合同{signed}份")),
        })]);
        inspected.insert(employer);
        out.inspections += 1;
        out.contracts_signed += signed;
    }
    out.employers_inspected = inspected.len() as u32;

    // The bank's co-branded wage cards, reported each quarter.
    let bank_p = Principal::Bank(bank.clone());
    for (m, issued, activated) in [(3u8, 1_200u32, 1_104u32), (6, 0, 61), (9, 0, 18), (12, 0, 9)] {
        let date = Period::new(2025, m).expect("valid").last_day();
        b.add(99, date, &bank_p, format!("cards-2025-{m:02}"), vec![Command::RecordCards(RecordCards { county, bank: bank.clone(), date, issued, activated })]);
        out.cards_issued += issued;
        out.cards_activated += activated;
    }
    out
}
