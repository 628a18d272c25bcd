//! Money: yuan with exactly two decimals, held as an integer number of fen.
//!
//! `Money` is the only money type in the ledger. At the edges it is parsed from and
//! printed as a decimal string (`"1234.50"`) or converted from a `rust_decimal::Decimal`;
//! in canonical bytes it is an `i64` of fen so that a verifier in any language reads it
//! without a decimal library. There are no floats anywhere near it.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::limits::AMOUNT_FEN_MAX;

/// A validated amount of money in fen (分, 1/100 yuan).
///
/// INVARIANT: `0 <= fen <= AMOUNT_FEN_MAX` for amounts that come from outside; sums
/// and balances are `Balance`, which may be larger and, for external accounts, negative.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Default)]
#[serde(transparent)]
pub struct Money(i64);

/// Read back from bytes (a record, a snapshot, JSON) only through validation: never
/// negative, never past the largest total the rules allow (`limits::TOTAL_FEN_MAX`).
impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Money, D::Error> {
        let fen = i64::deserialize(d)?;
        if !(0..=crate::limits::TOTAL_FEN_MAX).contains(&fen) {
            return Err(serde::de::Error::custom(format!("{} fen is not an amount of money (0 to {} fen)", fen, crate::limits::TOTAL_FEN_MAX)));
        }
        Ok(Money(fen))
    }
}

/// Why a piece of text or a decimal is not a valid amount.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("amount {0:?} is not a decimal number of yuan like \"1234.50\"")]
    Malformed(String),
    #[error("amount {0:?} has more than 2 decimal places (fen); it is never rounded")]
    TooPrecise(String),
    #[error("amount {0:?} is negative")]
    Negative(String),
    #[error("amount {0:?} must be greater than zero")]
    Zero(String),
    #[error("amount {0:?} exceeds the maximum of 10^12 yuan")]
    TooLarge(String),
}

impl MoneyError {
    /// The stable reason code of each cause (all are `INVALID_ARGUMENT`): integrators
    /// tell a rounding bug from a sign bug from a unit bug without reading the text.
    pub fn code(&self) -> &'static str {
        match self {
            MoneyError::Malformed(_) => "AMOUNT_NOT_A_NUMBER",
            MoneyError::TooPrecise(_) => "AMOUNT_TOO_PRECISE",
            MoneyError::Negative(_) | MoneyError::Zero(_) => "AMOUNT_NOT_POSITIVE",
            MoneyError::TooLarge(_) => "AMOUNT_TOO_LARGE",
        }
    }
}

impl Money {
    pub const ZERO: Money = Money(0);
    pub const MAX: Money = Money(AMOUNT_FEN_MAX);

    /// An amount from fen, bounded to `0..=AMOUNT_FEN_MAX`.
    ///
    /// # Errors
    /// `Negative` or `TooLarge` when out of bounds.
    pub fn from_fen(fen: i64) -> Result<Money, MoneyError> {
        if fen < 0 {
            return Err(MoneyError::Negative(fen_to_string(fen)));
        }
        if fen > AMOUNT_FEN_MAX {
            return Err(MoneyError::TooLarge(fen_to_string(fen)));
        }
        Ok(Money(fen))
    }

    /// A strictly positive amount, as every moved amount must be.
    ///
    /// # Errors
    /// As `from_fen`, plus `Zero`.
    pub fn positive_from_fen(fen: i64) -> Result<Money, MoneyError> {
        let m = Money::from_fen(fen)?;
        if m.0 == 0 {
            return Err(MoneyError::Zero(fen_to_string(fen)));
        }
        Ok(m)
    }

    /// Parses the strict wire form: ASCII digits, optionally a point and one or two
    /// digits. No sign, exponent, grouping separator, whitespace or third decimal.
    ///
    /// # Errors
    /// `Malformed`, `TooPrecise`, `Negative` (a leading `-`, including `-0.00`) or `TooLarge`.
    pub fn parse(text: &str) -> Result<Money, MoneyError> {
        let owned = || text.chars().take(40).collect::<String>();
        if text.starts_with('-') {
            return Err(MoneyError::Negative(owned()));
        }
        let (int_part, frac_part) = match text.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (text, None),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(int_part) {
            return Err(MoneyError::Malformed(owned()));
        }
        let frac_fen = match frac_part {
            None => 0,
            Some(f) if !digits(f) => return Err(MoneyError::Malformed(owned())),
            Some(f) if f.len() > 2 => return Err(MoneyError::TooPrecise(owned())),
            Some(f) if f.len() == 1 => i64::from(f.as_bytes()[0] - b'0') * 10,
            Some(f) => i64::from(f.as_bytes()[0] - b'0') * 10 + i64::from(f.as_bytes()[1] - b'0'),
        };
        // 13 integer digits is the most that can be in range; longer text is too large
        // (after leading zeros are stripped) and must not overflow the parse.
        let trimmed = int_part.trim_start_matches('0');
        if trimmed.len() > 13 {
            return Err(MoneyError::TooLarge(owned()));
        }
        let yuan: i64 = if trimmed.is_empty() { 0 } else { trimmed.parse().map_err(|_| MoneyError::Malformed(owned()))? };
        let fen = yuan * 100 + frac_fen;
        if fen > AMOUNT_FEN_MAX {
            return Err(MoneyError::TooLarge(owned()));
        }
        Ok(Money(fen))
    }

    /// Like `parse`, but zero is refused: the form for every amount that moves money.
    ///
    /// # Errors
    /// As `parse`, plus `Zero`.
    pub fn parse_positive(text: &str) -> Result<Money, MoneyError> {
        let m = Money::parse(text)?;
        if m.0 == 0 {
            return Err(MoneyError::Zero(text.chars().take(40).collect()));
        }
        Ok(m)
    }

    /// Converts a decimal, refusing anything that is not a whole number of fen.
    ///
    /// # Errors
    /// `TooPrecise` (value below a fen), `Negative`, `TooLarge`.
    pub fn from_decimal(d: Decimal) -> Result<Money, MoneyError> {
        if d.is_sign_negative() && !d.is_zero() {
            return Err(MoneyError::Negative(d.to_string()));
        }
        if d.round_dp(2) != d {
            return Err(MoneyError::TooPrecise(d.to_string()));
        }
        let fen = d.checked_mul(Decimal::ONE_HUNDRED).ok_or_else(|| MoneyError::TooLarge(d.to_string()))?;
        let fen: i64 = fen.trunc().try_into().map_err(|_| MoneyError::TooLarge(d.to_string()))?;
        Money::from_fen(fen).map_err(|_| MoneyError::TooLarge(d.to_string()))
    }

    pub fn to_decimal(self) -> Decimal {
        Decimal::new(self.0, 2)
    }

    pub fn fen(self) -> i64 {
        self.0
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// `self + other`, or `None` past `i64` (never past it for bounded inputs in practice,
    /// but sums are always checked).
    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }

    /// `self - other`, or `None` if it would be negative.
    pub fn checked_sub(self, other: Money) -> Option<Money> {
        let d = self.0.checked_sub(other.0)?;
        (d >= 0).then_some(Money(d))
    }

    /// `self - other`, or zero.
    pub fn saturating_sub(self, other: Money) -> Money {
        Money((self.0 - other.0).max(0))
    }

    /// A sum of amounts (a total, a balance, or what a refused command asked for), which
    /// may exceed the per-command bound. Only a sum within `limits::TOTAL_FEN_MAX` (every
    /// balance the rules let the ledger reach) may go into an event: `Deserialize` refuses
    /// more. A refused command's sum may be larger; it only goes into a message.
    pub fn sum_unbounded(fen: i64) -> Money {
        assert!(fen >= 0, "a sum of amounts is never negative");
        Money(fen)
    }

    /// `self * basis_points / 10_000`, rounded up to the fen: what a rule requires is
    /// never rounded in the contractor's favour.
    pub fn mul_bp_ceil(self, basis_points: u32) -> Money {
        let p = i128::from(self.0) * i128::from(basis_points);
        let q = (p + 9_999) / 10_000;
        Money(i64::try_from(q).expect("bp <= 10_000 keeps the product in range"))
    }
}

fn fen_to_string(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let a = fen.unsigned_abs();
    format!("{sign}{}.{:02}", a / 100, a % 100)
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&fen_to_string(self.0))
    }
}

impl FromStr for Money {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Money::parse(s)
    }
}

/// A signed balance in fen: internal accounts never go negative (a rule), external ones
/// (owners, contractors) are sources and do.
pub type Fen = i64;

/// Formats a signed number of fen as yuan with two decimals.
pub fn format_fen(fen: Fen) -> String {
    fen_to_string(fen)
}

/// A signed number of fen as a Chinese sentence states money: "54,704,450.00元".
pub fn format_yuan(fen: Fen) -> String {
    format!("{}元", grouped(&fen_to_string(fen)))
}

/// A money string ("54704450.00", "-12.50") with thousands separators
/// ("54,704,450.00"); anything else is returned as it is.
pub fn grouped(s: &str) -> String {
    let (sign, rest) = s.strip_prefix('-').map_or(("", s), |r| ("-", r));
    let (int, frac) = rest.split_once('.').unwrap_or((rest, ""));
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(int.len() + int.len() / 3 + frac.len() + 2);
    out.push_str(sign);
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_strict_wire_form() {
        assert_eq!(Money::parse("1234.50").unwrap().fen(), 123_450);
        assert_eq!(Money::parse("1234.5").unwrap().fen(), 123_450);
        assert_eq!(Money::parse("1234").unwrap().fen(), 123_400);
        assert_eq!(Money::parse("0.01").unwrap().fen(), 1);
        assert_eq!(Money::parse("000.01").unwrap().fen(), 1);
        assert_eq!(Money::parse("1000000000000.00").unwrap(), Money::MAX);
    }

    #[test]
    fn hostile_amounts_are_refused_never_rounded() {
        assert!(matches!(Money::parse("0.001"), Err(MoneyError::TooPrecise(_))));
        assert!(matches!(Money::parse("-0.00"), Err(MoneyError::Negative(_))));
        assert!(matches!(Money::parse("-5"), Err(MoneyError::Negative(_))));
        for bad in ["1e9", "12,34", " 1", "1 ", "", ".", "1.", ".5", "NaN", "inf", "+1", "1.2.3", "１２"] {
            assert!(matches!(Money::parse(bad), Err(MoneyError::Malformed(_))), "{bad:?}");
        }
        assert!(matches!(Money::parse("1000000000000.01"), Err(MoneyError::TooLarge(_))));
        assert!(matches!(Money::parse("92233720368547758.07"), Err(MoneyError::TooLarge(_))));
        assert!(matches!(Money::parse("99999999999999999999999999"), Err(MoneyError::TooLarge(_))));
        assert!(matches!(Money::parse_positive("0.00"), Err(MoneyError::Zero(_))));
    }

    #[test]
    fn decimals_convert_only_when_whole_fen() {
        use std::str::FromStr;
        assert_eq!(Money::from_decimal(Decimal::from_str("12.30").unwrap()).unwrap().fen(), 1230);
        assert_eq!(Money::from_decimal(Decimal::from_str("12.300").unwrap()).unwrap().fen(), 1230);
        assert!(Money::from_decimal(Decimal::from_str("12.305").unwrap()).is_err());
        assert!(Money::from_decimal(Decimal::from_str("-1").unwrap()).is_err());
        assert!(Money::from_decimal(Decimal::MAX).is_err());
        assert_eq!(Money::parse("7.05").unwrap().to_decimal().to_string(), "7.05");
    }

    #[test]
    fn each_cause_has_its_own_code() {
        let code = |s: &str| Money::parse_positive(s).unwrap_err().code();
        assert_eq!(code("0.001"), "AMOUNT_TOO_PRECISE");
        assert_eq!(code("-5"), "AMOUNT_NOT_POSITIVE");
        assert_eq!(code("0"), "AMOUNT_NOT_POSITIVE");
        assert_eq!(code("1e9"), "AMOUNT_NOT_A_NUMBER");
        assert_eq!(code("12,34"), "AMOUNT_NOT_A_NUMBER");
        assert_eq!(code("1000000000000.01"), "AMOUNT_TOO_LARGE");
    }

    #[test]
    fn deserializing_goes_through_validation() {
        let cfg = bincode::config::standard();
        let bytes = |v: i64| bincode::serde::encode_to_vec(v, cfg).unwrap();
        let back = |v: i64| bincode::serde::decode_from_slice::<Money, _>(&bytes(v), cfg).map(|(m, _)| m);
        assert_eq!(back(123).unwrap().fen(), 123);
        assert!(back(-1).is_err(), "a negative amount does not decode");
        assert!(back(crate::limits::TOTAL_FEN_MAX + 1).is_err(), "nor one past the ledger's bound");
        assert!(serde_json::from_str::<Money>("-5").is_err());
    }

    #[test]
    fn display_round_trips() {
        for s in ["0.00", "0.01", "1.10", "123456789.99"] {
            assert_eq!(Money::parse(s).unwrap().to_string(), s);
        }
        assert_eq!(format_fen(-105), "-1.05");
    }

    #[test]
    fn required_shares_round_up_to_the_fen() {
        assert_eq!(Money::parse("100.01").unwrap().mul_bp_ceil(3000).fen(), 3001);
        assert_eq!(Money::parse("100.00").unwrap().mul_bp_ceil(3000).fen(), 3000);
    }
}
