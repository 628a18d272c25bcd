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
//! The plan carries, beside its commands, the figures its generator booked while writing
//! them (balances, wages paid, arrears), so that a test can hold the ledger's projections
//! against an independent account of the same money.

use crate::domain::command::*;
use crate::domain::date::{Date, Period};
use crate::domain::ids::*;
use crate::domain::money::{Fen, Money};
use crate::domain::policy::Policy;
use crate::domain::principal::Principal;
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
}

impl Builder {
    fn add(&mut self, project: usize, date: Date, principal: &Principal, name: String, commands: Vec<Command>) {
        self.counter += 1;
        let request_id = RequestId::parse(&format!("demo-{name}")).expect("demo request ids are valid");
        self.batches.push((date, project, self.counter, PlannedBatch { date, principal: principal.clone(), request_id, commands }));
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
    let mut b = Builder { batches: Vec::new(), counter: 0 };
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
    b.batches.sort_by_key(|(date, project, n, _)| (*date, *project, *n));
    Ok(Plan { county, as_of, projects, batches: b.batches.into_iter().map(|(.., pb)| pb).collect() })
}

