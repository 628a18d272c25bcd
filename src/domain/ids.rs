//! Validated identifiers: county codes, unified social credit codes, national IDs,
//! bank cards, and the client-chosen ids and texts the ledger stores.
//!
//! National IDs and bank card numbers are personal data: their types exist only at the
//! edge, long enough to be validated and turned into a keyed commitment by
//! `crate::vault`. Neither type is `Serialize`, so neither can reach a record.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::limits::{ID_BYTES_MAX, TEXT_BYTES_MAX};

/// Why an identifier was refused. Each variant names the offending value (masked for
/// personal data) and maps to a stable reason code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("county code {0:?} is not a 6-digit administrative division code")]
    CountyCode(String),
    #[error("unified social credit code {0:?} is invalid: {1}")]
    Uscc(String, &'static str),
    #[error("national ID {0} is invalid: {1}")]
    NationalId(String, &'static str),
    #[error("bank card {0} is invalid: {1}")]
    BankCard(String, &'static str),
    #[error("{what} {value:?} is invalid: {why}")]
    Text { what: &'static str, value: String, why: &'static str },
}

impl IdError {
    pub fn code(&self) -> &'static str {
        match self {
            IdError::CountyCode(_) => "INVALID_COUNTY_CODE",
            IdError::Uscc(..) => "INVALID_USCC",
            IdError::NationalId(..) => "INVALID_NATIONAL_ID",
            IdError::BankCard(..) => "INVALID_BANK_CARD",
            IdError::Text { .. } => "INVALID_TEXT",
        }
    }
}

/// Runs of at least this many digits are masked in every error message that leaves the
/// server (`api::error`) and in every refused value a message quotes (`clip`).
/// 11 is a mobile phone number (the shortest personal number); no value the ledger
/// itself quotes is that long (record numbers, amounts in yuan, dates, codes).
pub const MASKED_DIGITS_MIN: usize = 11;

/// Runs joined by hyphens are masked from this many digits (an ID or a card written in
/// groups), so that document numbers such as "T-20260201-0001" stay readable; a phone
/// number written 3-4-4 with hyphens is masked too.
pub const MASKED_HYPHENATED_DIGITS_MIN: usize = 15;

/// The kind of personal number `text` holds, if it holds one: what the log must never
/// hold in clear (FORMAT.md section 3, "Personal data"). A candidate is a run of ASCII
/// digits (an ID's may end in `X`), taken as it is and, when its groups are in a shape
/// these numbers are written in (3-4-4, 4-4-4-4, 4-4-4-4-1..3, 6-8-4), with the single
/// spaces or hyphens between them removed; it is
/// - a resident ID number if it is 18 characters that `NationalId::parse` accepts (a
///   birth date and the MOD 11-2 check) with a province 11 to 82 and a birth year up to
///   `PERSONAL_BIRTH_YEAR_MAX` (first-generation 15-digit IDs expired in 2013);
/// - a mobile number if it is 11 digits starting `13` to `19`;
/// - a bank card number if it is 13 to 19 digits, starts with 3, 4, 5, 6 or 9 (the
///   issuers' ranges: UnionPay 62, Visa 4, Mastercard 5, JCB and others 3, old domestic
///   cards 9) and passes the Luhn check.
///
/// Narrower than `mask_personal_numbers` (which masks any long run in a message): a
/// bank's own reference, such as a date and a counter, is not refused.
pub fn personal_number_in(text: &str) -> Option<&'static str> {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        // A group run: digits, single separators between digits, a final X.
        let start = i;
        let mut end = i;
        let mut j = i;
        while j < b.len() {
            if b[j].is_ascii_digit() {
                j += 1;
                end = j;
            } else if matches!(b[j], b' ' | b'-') && j + 1 < b.len() && b[j + 1].is_ascii_digit() && j > start {
                j += 1;
            } else {
                break;
            }
        }
        if end < b.len() && matches!(b[end], b'X' | b'x') {
            end += 1;
        }
        let span = &text[start..end];
        // The common case, no separator: the run itself, with no allocation.
        if !span.contains([' ', '-']) {
            if let Some(kind) = personal_number_kind(span) {
                return Some(kind);
            }
            i = end.max(start + 1);
            continue;
        }
        // Separators also join a reference's parts (`P13-2025-01`, `GS-620102-20260131-018`):
        // a run counts whole only in the shapes people write these numbers in.
        let groups: Vec<usize> = span.split([' ', '-']).map(str::len).collect();
        if matches!(groups.as_slice(), [3, 4, 4] | [4, 4, 4, 4] | [4, 4, 4, 4, 1..=3] | [6, 8, 4]) {
            let joined: String = span.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
            if let Some(kind) = personal_number_kind(&joined) {
                return Some(kind);
            }
        }
        for piece in span.split([' ', '-']) {
            if let Some(kind) = personal_number_kind(piece) {
                return Some(kind);
            }
        }
        i = end.max(start + 1);
    }
    None
}

fn personal_number_kind(c: &str) -> Option<&'static str> {
    let digits = c.bytes().all(|b| b.is_ascii_digit());
    match c.len() {
        // A province, a birth year of a person of working age (a county code, a date and
        // a counter of this decade is a reference), and the check character.
        18 if NationalId::parse(c).is_ok() && (11..=82).contains(&c[..2].parse::<u32>().ok()?) && c[6..10].parse::<u32>().ok()? <= PERSONAL_BIRTH_YEAR_MAX => Some("a resident ID number"),
        11 if digits && c.starts_with('1') && (b'3'..=b'9').contains(&c.as_bytes()[1]) => Some("a mobile number"),
        13..=19 if digits && matches!(c.as_bytes()[0], b'3' | b'4' | b'5' | b'6' | b'9') && BankCard::parse(c).is_ok() => Some("a bank card number"),
        _ => None,
    }
}

/// The latest birth year `personal_number_in` takes for a resident ID (workers are of
/// working age; references starting with a county code and a recent date are not IDs).
const PERSONAL_BIRTH_YEAR_MAX: u32 = 2012;

/// Masks every run of `MASKED_DIGITS_MIN` or more digits in `message` but for its first
/// 3 and last 2 digits. A run may be broken by single spaces (a card as "6217 0000 ...",
/// a phone as "138 1234 5678") or single hyphens (then from
/// `MASKED_HYPHENATED_DIGITS_MIN` digits, or in the 3-4-4 shape of a mobile number), and
/// may end in the check letter X of a national ID; full-width digits count as digits.
pub fn mask_personal_numbers(message: &str) -> String {
    let chars: Vec<char> = message.chars().collect();
    let is_digit = |c: char| c.is_ascii_digit() || ('０'..='９').contains(&c);
    let mut out = String::with_capacity(message.len());
    let mut i = 0;
    while i < chars.len() {
        if !is_digit(chars[i]) {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        // The run: digits, single separators between digits, a trailing X; the digit
        // count of each group between separators.
        let start = i;
        let mut end = i;
        let mut groups: Vec<usize> = vec![0];
        let mut hyphenated = false;
        while end < chars.len() {
            if is_digit(chars[end]) {
                *groups.last_mut().expect("one group at least") += 1;
                end += 1;
            } else if matches!(chars[end], ' ' | '-') && end + 1 < chars.len() && is_digit(chars[end + 1]) {
                hyphenated |= chars[end] == '-';
                groups.push(0);
                end += 1;
            } else {
                break;
            }
        }
        let mut digits: usize = groups.iter().sum();
        if end < chars.len() && matches!(chars[end], 'X' | 'x') && digits >= 14 {
            digits += 1;
            end += 1;
        }
        let phone_shape = groups == [3, 4, 4] && chars[start] == '1';
        // No ID, card or phone number starts with 0: leading zeros (a zero-padded segment
        // or record number) do not count, and a 0 put before a number does not hide it.
        let zeros = chars[start..end].iter().take_while(|c| matches!(**c, '0' | '０' | ' ' | '-')).filter(|c| matches!(**c, '0' | '０')).count();
        let significant = digits - zeros;
        let personal = if hyphenated { significant >= MASKED_HYPHENATED_DIGITS_MIN || phone_shape } else { significant >= MASKED_DIGITS_MIN };
        if personal {
            let mut seen = 0;
            for &c in &chars[start..end] {
                let counted = is_digit(c) || matches!(c, 'X' | 'x');
                if counted {
                    seen += 1;
                }
                out.push(if counted && seen > 3 && seen <= digits - 2 { '*' } else { c });
            }
        } else {
            out.extend(&chars[start..end]);
        }
        i = end;
    }
    out
}

/// A refused value as an error message may quote it: at most 40 characters, with its
/// personal numbers masked (`mask_personal_numbers`).
pub fn clip(s: &str) -> String {
    mask_personal_numbers(&s.chars().take(40).collect::<String>())
}

/// A county: 6-digit administrative division code (行政区划代码), e.g. `620102`.
/// INVARIANT: exactly 6 ASCII digits, province part 11..=82, not ending in `0000`
/// (that would be a province, not a county).
/// Encoded as the `u32` of its digits; decoding checks the rule (FORMAT.md section 1: a
/// record holding another value does not decode).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct CountyCode(u32);

impl<'de> Deserialize<'de> for CountyCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<CountyCode, D::Error> {
        let n = u32::deserialize(d)?;
        CountyCode::parse(&format!("{n:06}")).map_err(serde::de::Error::custom)
    }
}

impl CountyCode {
    /// # Errors
    /// `IdError::CountyCode` unless `text` is a county-level division code.
    pub fn parse(text: &str) -> Result<CountyCode, IdError> {
        let err = || IdError::CountyCode(clip(text));
        if text.len() != 6 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        let n: u32 = text.parse().map_err(|_| err())?;
        let province = n / 10_000;
        if !(11..=82).contains(&province) || n.is_multiple_of(10_000) {
            return Err(err());
        }
        Ok(CountyCode(n))
    }
}

impl fmt::Display for CountyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:06}", self.0)
    }
}

const USCC_CHARSET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const USCC_WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];

/// Unified social credit code (统一社会信用代码, GB 32100-2015) of an enterprise.
/// INVARIANT: 18 characters of the GB 32100 charset, the last being the mod-31 check
/// character of the first 17.
/// Decoding checks the rule, as for `CountyCode`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
// Shared, immutable text, like the ids below: an `Arc<str>` copy is no allocation.
pub struct Uscc(std::sync::Arc<str>);

impl<'de> Deserialize<'de> for Uscc {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Uscc, D::Error> {
        parse_str(d, Uscc::parse)
    }
}

/// Decodes text with `parse`, from the decoder's own buffer when it lends one (a record
/// in memory): the value is then allocated once, as what it is, not first as a `String`.
fn parse_str<'de, D: serde::Deserializer<'de>, T>(d: D, parse: fn(&str) -> Result<T, IdError>) -> Result<T, D::Error> {
    struct Parse<T>(fn(&str) -> Result<T, IdError>);
    impl<T> serde::de::Visitor<'_> for Parse<T> {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }

        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
            (self.0)(v).map_err(E::custom)
        }
    }
    d.deserialize_str(Parse(parse))
}

impl Uscc {
    /// # Errors
    /// `IdError::Uscc` naming what is wrong.
    pub fn parse(text: &str) -> Result<Uscc, IdError> {
        let b = text.as_bytes();
        if b.len() != 18 {
            return Err(IdError::Uscc(clip(text), "must be 18 characters"));
        }
        let mut sum = 0u32;
        for (i, c) in b.iter().enumerate() {
            let Some(v) = USCC_CHARSET.iter().position(|x| x == c) else {
                return Err(IdError::Uscc(clip(text), "character outside 0-9 and A-Y without I, O, Z, S, V"));
            };
            if i < 17 {
                sum += USCC_WEIGHTS[i] * v as u32;
            }
        }
        let check = (31 - sum % 31) % 31;
        if b[17] != USCC_CHARSET[check as usize] {
            return Err(IdError::Uscc(clip(text), "check character does not match"));
        }
        Ok(Uscc(std::sync::Arc::from(text)))
    }

    /// Completes 17 characters with their check character: for tests and demo data.
    pub fn with_check(first17: &str) -> Uscc {
        assert_eq!(first17.len(), 17);
        let sum: u32 = first17
            .bytes()
            .enumerate()
            .map(|(i, c)| USCC_WEIGHTS[i] * USCC_CHARSET.iter().position(|x| *x == c).expect("charset") as u32)
            .sum();
        let check = USCC_CHARSET[((31 - sum % 31) % 31) as usize] as char;
        Uscc::parse(&format!("{first17}{check}")).expect("completed with its check character")
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Uscc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK: &[u8; 11] = b"10X98765432";

/// A resident's 18-digit national ID (居民身份证号码, GB 11643), in clear.
/// Exists only at the edge: not `Serialize`, `Debug` prints the masked form.
/// INVARIANT: 17 digits with a valid birth date, then the ISO 7064 MOD 11-2 check.
#[derive(Clone, PartialEq, Eq)]
pub struct NationalId(String);

impl NationalId {
    /// # Errors
    /// `IdError::NationalId` with the masked value and what is wrong.
    pub fn parse(text: &str) -> Result<NationalId, IdError> {
        let t = text.to_ascii_uppercase();
        let b = t.as_bytes();
        let masked = || mask(&t, 4, 4);
        if b.len() != 18 {
            return Err(IdError::NationalId(masked(), "must be 18 characters"));
        }
        if !b[..17].iter().all(u8::is_ascii_digit) || !(b[17].is_ascii_digit() || b[17] == b'X') {
            return Err(IdError::NationalId(masked(), "must be 17 digits and a digit or X"));
        }
        let y: i32 = t[6..10].parse().expect("digits");
        let m: u32 = t[10..12].parse().expect("digits");
        let d: u32 = t[12..14].parse().expect("digits");
        if !(1900..=2100).contains(&y) || chrono::NaiveDate::from_ymd_opt(y, m, d).is_none() {
            return Err(IdError::NationalId(masked(), "birth date is not a calendar date"));
        }
        let sum: u32 = b[..17].iter().zip(ID_WEIGHTS).map(|(c, w)| u32::from(c - b'0') * w).sum();
        if b[17] != ID_CHECK[(sum % 11) as usize] {
            return Err(IdError::NationalId(masked(), "check digit (ISO 7064 MOD 11-2) does not match"));
        }
        Ok(NationalId(t))
    }

    /// Completes 17 digits with their check digit: for tests and demo data.
    pub fn with_check(first17: &str) -> NationalId {
        let sum: u32 = first17.bytes().zip(ID_WEIGHTS).map(|(c, w)| u32::from(c - b'0') * w).sum();
        let c = ID_CHECK[(sum % 11) as usize] as char;
        NationalId::parse(&format!("{first17}{c}")).expect("completed with its check digit")
    }

    /// `6201**********123X`: region and last four, as Chinese platforms display it.
    pub fn masked(&self) -> String {
        mask(&self.0, 4, 4)
    }

    /// The clear value: for the vault's keyed commitment and the edge that received it.
    /// Never log it, never put it in a record or an error.
    pub fn expose_clear(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for NationalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NationalId({})", self.masked())
    }
}

/// A bank card number (银行卡号), in clear, Luhn-checked. Edge only, like `NationalId`.
#[derive(Clone, PartialEq, Eq)]
pub struct BankCard(String);

impl BankCard {
    /// # Errors
    /// `IdError::BankCard` with the masked value and what is wrong.
    pub fn parse(text: &str) -> Result<BankCard, IdError> {
        let masked = || mask(text, 4, 4);
        if !(13..=19).contains(&text.len()) || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(IdError::BankCard(masked(), "must be 13 to 19 digits"));
        }
        if !luhn_sum(text.as_bytes()).is_multiple_of(10) {
            return Err(IdError::BankCard(masked(), "Luhn check digit does not match"));
        }
        Ok(BankCard(text.to_owned()))
    }

    /// Completes a digit string with its Luhn check digit: for tests and demo data.
    pub fn with_check(body: &str) -> BankCard {
        let mut s = format!("{body}0");
        let r = luhn_sum(s.as_bytes()) % 10;
        s.pop();
        s.push(char::from(b'0' + ((10 - r) % 10) as u8));
        BankCard::parse(&s).expect("completed with its Luhn digit")
    }

    /// `6222***********1234`.
    pub fn masked(&self) -> String {
        mask(&self.0, 4, 4)
    }

    pub fn expose_clear(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for BankCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BankCard({})", self.masked())
    }
}

fn luhn_sum(digits: &[u8]) -> u32 {
    digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, c)| {
            let d = u32::from(c - b'0');
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum()
}

/// Keeps `head` leading and `tail` trailing characters and stars the rest.
fn mask(s: &str, head: usize, tail: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= head + tail {
        return "*".repeat(chars.len());
    }
    let mut out: String = chars[..head].iter().collect();
    out.extend(std::iter::repeat_n('*', chars.len() - head - tail));
    out.extend(&chars[chars.len() - tail..]);
    out
}

/// A keyed commitment to a worker's national ID or to a bank card: 32 bytes of
/// BLAKE3-keyed hash made by `crate::vault`. It identifies the person or card inside the
/// ledger without revealing it; destroying the vault's salt forgets the link.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Commitment(pub [u8; 32]);

impl Commitment {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// # Errors
    /// `IdError::Text` unless 64 hex digits.
    pub fn from_hex(text: &str) -> Result<Commitment, IdError> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out)
            .map_err(|_| IdError::Text { what: "commitment", value: clip(text), why: "must be 64 hex digits" })?;
        Ok(Commitment(out))
    }
}

impl fmt::Debug for Commitment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", &self.to_hex()[..16])
    }
}

impl fmt::Display for Commitment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex()[..16])
    }
}

/// A worker inside the ledger: the commitment to their national ID.
pub type WorkerRef = Commitment;
/// A bank card inside the ledger: the commitment to its number.
pub type CardRef = Commitment;

macro_rules! bounded_text {
    ($(#[$m:meta])* $name:ident, $what:literal, $max:expr, $id_like:expr) => {
        $(#[$m])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        // Shared, immutable text: the state copies ids into many keys (and the undo
        // journal), and an `Arc<str>` copy is a counter increment, not an allocation.
        pub struct $name(std::sync::Arc<str>);

        /// Decoding checks the same rule as `parse` (a record holding another value
        /// does not decode).
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<$name, D::Error> {
                parse_str(d, $name::parse)
            }
        }

        impl $name {
            /// # Errors
            /// `IdError::Text` if empty, too long, or (for ids) not printable ASCII.
            pub fn parse(text: &str) -> Result<$name, IdError> {
                validate_text($what, text, $max, $id_like)?;
                Ok($name(std::sync::Arc::from(text)))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

fn validate_text(what: &'static str, text: &str, max: usize, id_like: bool) -> Result<(), IdError> {
    let err = |why| Err(IdError::Text { what, value: clip(text), why });
    if text.is_empty() {
        return err("must not be empty");
    }
    if text.len() > max {
        return err("too long");
    }
    if id_like && !text.bytes().all(|b| b.is_ascii_graphic()) {
        return err("must be printable ASCII without spaces");
    }
    if text.chars().any(char::is_control) {
        return err("must not contain control characters");
    }
    Ok(())
}

bounded_text!(
    /// A project's id, chosen by the county when it registers the project (e.g. `GS-620102-2026-001`).
    ProjectId, "project id", ID_BYTES_MAX, true);
bounded_text!(
    /// A bank's code (e.g. `ICBC`, `ABC`, `CCB`, or a 12-digit CNAPS code).
    BankCode, "bank code", ID_BYTES_MAX, true);
bounded_text!(
    /// A document number chosen by whoever issued it: payment, letter, order, contract.
    DocNo, "document number", ID_BYTES_MAX, true);

impl DocNo {
    /// Sorts before every valid document number (for range scans).
    pub fn min() -> DocNo {
        DocNo(std::sync::Arc::from(""))
    }
}
bounded_text!(
    /// Free text: a project's name, an account number as the bank writes it.
    Text, "text", TEXT_BYTES_MAX, false);
bounded_text!(
    /// A client's request id: unique per principal, the key of idempotent retries.
    RequestId, "request id", ID_BYTES_MAX, true);
bounded_text!(
    /// A ledger's id (the `LEDGER` file, every segment header, the genesis hash), e.g.
    /// `anxin-620121-2026`: 1 to 64 printable ASCII characters without spaces.
    LedgerId, "ledger id", ID_BYTES_MAX, true);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personal_numbers_in_free_text_are_found_and_bank_references_are_not() {
        let id = NationalId::with_check("62012119900101123").expose_clear().to_owned();
        let card = BankCard::with_check("621700000000500001").expose_clear().to_owned();
        for (text, kind) in [
            (id.clone(), "a resident ID number"),
            (format!("req-{}", id.to_lowercase()), "a resident ID number"),
            (format!("{} {} {}", &id[..6], &id[6..14], &id[14..]), "a resident ID number"),
            ("13812345678".to_owned(), "a mobile number"),
            ("call 138-1234-5678".to_owned(), "a mobile number"),
            (card.clone(), "a bank card number"),
            (card.as_bytes().chunks(4).map(|c| std::str::from_utf8(c).unwrap()).collect::<Vec<_>>().join(" "), "a bank card number"),
            (card.as_bytes().chunks(4).map(|c| std::str::from_utf8(c).unwrap()).collect::<Vec<_>>().join("-"), "a bank card number"),
            (format!("PAY-{card}"), "a bank card number"),
        ] {
            assert_eq!(personal_number_in(&text), Some(kind), "{text}");
        }
        let reference = NationalId::with_check("62012120260131000").expose_clear().to_owned();
        assert_eq!(personal_number_in(&reference), None, "a county code, this decade's date and a counter");
        let luhn_ref = BankCard::with_check("6201022026013101").expose_clear().to_owned();
        assert_eq!(personal_number_in(&format!("GS-{}-{}-{}", &luhn_ref[..6], &luhn_ref[6..14], &luhn_ref[14..])), None, "a hyphenated reference whose digits pass Luhn");
        for ok in ["620121260131001", "DF-620121-2026-00007", "DF-P13-2025-01-001", "GCK-P13-2025-01", "T-20260201-0001", "2026013100000012", "20260131000123", "GS-620102-2026-001", "P1", "620*************1X", "621*************017", "12345678901", "测试项目"] {
            assert_eq!(personal_number_in(ok), None, "{ok}");
        }
    }

    #[test]
    fn quoted_values_mask_long_digit_runs() {
        assert_eq!(clip("card:6217000000005000017"), "card:621**************17");
        assert_eq!(clip("62012119700101001X"), "620*************1X");
        assert_eq!(clip("T-20260201-0001"), "T-20260201-0001", "short runs stay");
        assert_eq!(clip("P1"), "P1");
        assert_eq!(clip(&"x".repeat(50)).len(), 40);
    }

    #[test]
    fn county_codes_are_six_digit_county_divisions() {
        assert!(CountyCode::parse("620102").is_ok());
        assert_eq!(CountyCode::parse("620102").unwrap().to_string(), "620102");
        for bad in ["62010", "6201020", "62010a", "620000", "000102", "990102"] {
            assert!(CountyCode::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn uscc_check_character_is_validated() {
        // A real code published on a company's licence.
        assert!(Uscc::parse("91350100M000100Y43").is_ok());
        assert!(Uscc::parse("91350100M000100Y44").is_err());
        assert!(Uscc::parse("91350100M000100Y4").is_err());
        assert!(Uscc::parse("9135010OM000100Y43").is_err()); // letter O is not in the charset
        let made = Uscc::with_check("91620102MA7X0000A");
        assert!(Uscc::parse(made.as_str()).is_ok());
    }

    #[test]
    fn national_id_check_digit_and_birth_date_are_validated() {
        // The GB 11643 standard's own example.
        assert!(NationalId::parse("11010519491231002X").is_ok());
        assert!(NationalId::parse("11010519491231002x").is_ok());
        assert!(NationalId::parse("110105194912310021").is_err());
        assert!(NationalId::parse("110105194902300021").is_err()); // 30 February
        let e = NationalId::parse("110105194912310021").unwrap_err();
        assert!(e.to_string().contains("1101**********0021"), "error shows only the masked form: {e}");
        let id = NationalId::with_check("62010219900101123");
        assert_eq!(id.masked().len(), 18);
        assert!(!format!("{id:?}").contains("19900101"));
    }

    #[test]
    fn bank_cards_are_luhn_checked() {
        assert!(BankCard::parse("4111111111111111").is_ok());
        assert!(BankCard::parse("4111111111111112").is_err());
        assert!(BankCard::parse("411111111111").is_err());
        let c = BankCard::with_check("621700000000000001");
        assert_eq!(c.expose_clear().len(), 19);
        assert_eq!(c.masked(), "6217***********0019".replace("0019", &c.expose_clear()[15..]));
    }

    #[test]
    fn ids_refuse_empty_long_and_control_text() {
        assert!(ProjectId::parse("").is_err());
        assert!(ProjectId::parse(&"x".repeat(65)).is_err());
        assert!(ProjectId::parse("has space").is_err());
        assert!(Text::parse("兰州新区 安置房 一期").is_ok());
        assert!(Text::parse("bad\u{0}").is_err());
    }
}
