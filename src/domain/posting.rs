//! Double entry: every money event becomes legs between accounts that sum to zero.
//!
//! Internal accounts (`Deposit`, `Wage`) hold escrowed money and never go negative.
//! External accounts (`Owner`, `Contractor`) are where money comes from or goes back
//! to; their balances are the negative of what they put in. A worker's `Card` holds
//! what reached that card. Guarantee letters are contingent cover and post nothing.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::ids::{CardRef, ProjectId, Uscc};
use super::money::Fen;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Account {
    /// The project's cash wage guarantee deposit (工资保证金).
    Deposit(ProjectId),
    /// The project's dedicated wage account (农民工工资专用账户).
    Wage(ProjectId),
    /// A worker's bank card, by commitment.
    Card(CardRef),
    /// A project owner (建设单位), source of progress payments.
    Owner(Uscc),
    /// A general contractor, source of deposits and top-ups, recipient of releases.
    Contractor(Uscc),
}

impl Account {
    /// Internal accounts are escrow and must never be negative.
    pub fn is_internal(&self) -> bool {
        matches!(self, Account::Deposit(_) | Account::Wage(_))
    }

    /// # Errors
    /// A message if the text is not `kind:id`.
    pub fn parse(text: &str) -> Result<Account, String> {
        let (kind, id) = text.split_once(':').ok_or_else(|| format!("account {text:?} is not kind:id"))?;
        let p = |s: &str| ProjectId::parse(s).map_err(|e| e.to_string());
        let u = |s: &str| Uscc::parse(s).map_err(|e| e.to_string());
        Ok(match kind {
            "deposit" => Account::Deposit(p(id)?),
            "wage" => Account::Wage(p(id)?),
            "card" => Account::Card(super::ids::Commitment::from_hex(id).map_err(|e| e.to_string())?),
            "owner" => Account::Owner(u(id)?),
            "contractor" => Account::Contractor(u(id)?),
            _ => return Err(format!("account kind {kind:?} is not deposit, wage, card, owner or contractor")),
        })
    }
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Account::Deposit(p) => write!(f, "deposit:{p}"),
            Account::Wage(p) => write!(f, "wage:{p}"),
            Account::Card(c) => write!(f, "card:{}", c.to_hex()),
            Account::Owner(u) => write!(f, "owner:{u}"),
            Account::Contractor(u) => write!(f, "contractor:{u}"),
        }
    }
}

/// One side of a posting: `fen` is added to `account` (negative = money leaves it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leg {
    pub account: Account,
    pub fen: Fen,
}

/// Legs moving `fen` from `from` to `to`.
pub fn transfer(from: Account, to: Account, fen: Fen) -> [Leg; 2] {
    [Leg { account: from, fen: -fen }, Leg { account: to, fen }]
}
