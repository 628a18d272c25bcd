//! Who may post what (DESIGN 9), in two parts:
//!
//! - `role_may_post`: what a principal's role may post at all, from the command alone
//!   (an auditor posts nothing; a bank names only itself). The API checks it at the edge,
//!   so a batch that can never pass does not queue behind others.
//! - `may_post`: that, and the principal's authority over the very project, account or
//!   letter the command names, read from the state. `decide_batch` calls it on the
//!   writer thread for every command, against the state the command is decided on, so a
//!   project registered or an account opened by another party in the same group commit
//!   is seen exactly as it will be recorded. A project or letter that does not exist yet
//!   is left to the rules, which answer `UNKNOWN_PROJECT` / `UNKNOWN_LETTER`: with the
//!   check on the writer, "unknown" is a fact about the recorded state, not a race.
//!
//! - `county:<code>` registers projects in its county, changes their status, orders
//!   drawdowns and releases, and keeps its casework (cases of its own county only).
//! - `bank:<code>` posts what its accounts did: deposits and letters it holds, the wage
//!   accounts it keeps (or kept) and the money through them, the progress payments split
//!   into them, and the statements of those accounts (a wage account's only by the bank
//!   that keeps it); a project that never had a wage account has no bank to post one.
//! - `contractor:<USCC>` registers workers, contracts, exits and payrolls on projects
//!   where it is the general contractor.
//! - `auditor` posts nothing; `operator` (the ledger's own operator) may post anything.

use crate::domain::command::Command;
use crate::domain::principal::Principal;
use crate::domain::rejection::Rejection;
use crate::projection::state::State;

fn refuse(who: &Principal, cmd: &Command, why: String) -> Result<(), Rejection> {
    Err(Rejection::NotPermitted { principal: who.to_string(), command: cmd.name(), why })
}

/// May `who`'s role post `cmd` at all? Decided from the command alone.
///
/// # Errors
/// `Rejection::NotPermitted` naming the reason.
pub fn role_may_post(who: &Principal, cmd: &Command) -> Result<(), Rejection> {
    let deny = |why: &str| refuse(who, cmd, why.to_owned());
    match who {
        Principal::Operator => Ok(()),
        Principal::Auditor => deny("an auditor reads, it does not post"),
        Principal::County(c) => match cmd {
            Command::RegisterProject(r) if r.county == *c => Ok(()),
            Command::RegisterProject(r) => refuse(who, cmd, format!("the project is in county {}", r.county)),
            Command::ChangeProjectStatus(_) | Command::DrawDeposit(_) | Command::ReleaseDeposit(_) => Ok(()),
            // Its own casework only (card counts are the banks').
            Command::RecordCards(_) => deny("card counts are reported by the bank that issues the cards"),
            _ if cmd.case_county() == Some(*c) => Ok(()),
            _ if cmd.case_county().is_some() => refuse(who, cmd, format!("the case is county {}'s", cmd.case_county().expect("casework"))),
            _ => deny("a county office registers projects, changes their status, orders drawdowns and releases, and keeps its casework"),
        },
        Principal::Bank(b) => {
            let own = |bank: &str| if bank == b.as_str() { Ok(()) } else { refuse(who, cmd, format!("that is bank {bank}'s business")) };
            match cmd {
                Command::OpenWageAccount(o) => own(o.bank.as_str()),
                Command::PayDeposit(d) => own(d.bank.as_str()),
                Command::IssueGuaranteeLetter(l) => own(l.bank.as_str()),
                Command::AttestBalance(a) => own(a.bank.as_str()),
                Command::RecordCards(c) => own(c.bank.as_str()),
                Command::CancelGuaranteeLetter(_)
                | Command::CloseWageAccount(_)
                | Command::MakeProgressPayment(_)
                | Command::TopUpWageAccount(_)
                | Command::PayWage(_) => Ok(()),
                _ => deny("a bank posts deposits, letters, the money through the wage accounts it keeps, and their statements"),
            }
        }
        Principal::Contractor(_) => match cmd {
            Command::EnrolWorker(_) | Command::RecordContract(_) | Command::ExitWorker(_) | Command::SubmitPayroll(_) => Ok(()),
            _ => deny("a contractor registers workers, contracts, exits and payrolls"),
        },
    }
}

/// May `who` post `cmd` on `state`: its role may, and the project, account or letter the
/// command names is its own.
///
/// # Errors
/// `Rejection::NotPermitted` naming the reason.
pub fn may_post(who: &Principal, state: &State, cmd: &Command) -> Result<(), Rejection> {
    role_may_post(who, cmd)?;
    // Casework: the county that keeps the case (checked above) is the authority; a
    // project it names in another county is the rules' PROJECT_OUTSIDE_COUNTY.
    let Some(p) = cmd.project().filter(|_| cmd.case_county().is_none()) else { return Ok(()) };
    let project = state.projects.get(p);
    match who {
        Principal::Operator | Principal::Auditor => Ok(()),
        Principal::County(c) => match (cmd, project) {
            (Command::RegisterProject(_), _) | (_, None) => Ok(()),
            (_, Some(x)) if x.reg.county == *c => Ok(()),
            (_, Some(x)) => refuse(who, cmd, format!("project {p} is in county {}", x.reg.county)),
        },
        Principal::Bank(b) => match cmd {
            Command::CancelGuaranteeLetter(l) => match state.letters.get(&l.letter_no) {
                Some(letter) if letter.bank != *b => refuse(who, cmd, format!("letter {} was issued by bank {}", l.letter_no, letter.bank)),
                _ => Ok(()),
            },
            Command::CloseWageAccount(_) | Command::MakeProgressPayment(_) | Command::TopUpWageAccount(_) | Command::PayWage(_) => {
                // The bank that keeps the project's wage account (or kept it, once closed)
                // posts the money through it, and the progress payments split into it.
                match (project, project.and_then(|x| x.wage_account.as_ref())) {
                    (_, Some(a)) if a.bank != *b => refuse(who, cmd, format!("project {p}'s wage account is kept by bank {}", a.bank)),
                    (_, Some(_)) | (None, _) => Ok(()),
                    // No wage account was ever opened: no bank keeps one for the project,
                    // so none may post money for it (a progress payment that bypassed the
                    // system shows as NO_WAGE_ACCOUNT; the operator may record one).
                    (Some(_), None) => match cmd {
                        Command::MakeProgressPayment(_) => refuse(who, cmd, format!("no bank keeps a wage account for project {p}: a progress payment is posted by the bank that keeps it")),
                        // The rules answer NO_WAGE_ACCOUNT.
                        _ => Ok(()),
                    },
                }
            }
            // A wage account's statement comes from the bank that keeps (or kept) it.
            Command::AttestBalance(a) if a.account == crate::domain::command::StatementAccount::Wage => {
                match project.and_then(|x| x.wage_account.as_ref()) {
                    Some(acct) if acct.bank != *b => refuse(who, cmd, format!("project {p}'s wage account is kept by bank {}", acct.bank)),
                    _ => Ok(()),
                }
            }
            _ => Ok(()),
        },
        Principal::Contractor(u) => match project {
            Some(x) if x.reg.general_contractor != *u => refuse(who, cmd, format!("it is not the general contractor of project {p}")),
            _ => Ok(()),
        },
    }
}
