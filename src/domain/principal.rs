//! Principals: who submitted a command. Every record names one.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ids::{BankCode, CountyCode, IdError, Uscc};

/// A party that may talk to the ledger (DESIGN 9). In canonical bytes and on the wire it
/// is its text form: `bank:<code>`, `contractor:<USCC>`, `county:<code>`, `auditor`,
/// or `operator` (the ledger's own operator, for tools and the demo).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Principal {
    Bank(BankCode),
    Contractor(Uscc),
    County(CountyCode),
    Auditor,
    Operator,
}

impl Principal {
    /// # Errors
    /// `IdError` if the text is not one of the forms above with a valid id.
    pub fn parse(text: &str) -> Result<Principal, IdError> {
        match text.split_once(':') {
            Some(("bank", c)) => Ok(Principal::Bank(BankCode::parse(c)?)),
            Some(("contractor", u)) => Ok(Principal::Contractor(Uscc::parse(u)?)),
            Some(("county", c)) => Ok(Principal::County(CountyCode::parse(c)?)),
            None if text == "auditor" => Ok(Principal::Auditor),
            None if text == "operator" => Ok(Principal::Operator),
            _ => Err(IdError::Text { what: "principal", value: text.chars().take(40).collect(), why: "must be bank:, contractor:, county:, auditor or operator" }),
        }
    }
}

impl Principal {
    /// The role alone, without the id (`bank`, `contractor`, `county`, `auditor`,
    /// `operator`): what metrics and logs say of a caller.
    pub fn role(&self) -> &'static str {
        match self {
            Principal::Bank(_) => "bank",
            Principal::Contractor(_) => "contractor",
            Principal::County(_) => "county",
            Principal::Auditor => "auditor",
            Principal::Operator => "operator",
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::Bank(c) => write!(f, "bank:{c}"),
            Principal::Contractor(u) => write!(f, "contractor:{u}"),
            Principal::County(c) => write!(f, "county:{c}"),
            Principal::Auditor => f.write_str("auditor"),
            Principal::Operator => f.write_str("operator"),
        }
    }
}

impl Serialize for Principal {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Principal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Principal, D::Error> {
        let s = String::deserialize(d)?;
        Principal::parse(&s).map_err(serde::de::Error::custom)
    }
}
