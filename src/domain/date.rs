//! Business dates, pay periods and the working-day calendar.
//!
//! A business date is a calendar date in China Standard Time (UTC+8) supplied by the
//! client. The domain never reads the clock: "today" is passed in by whoever asks.
//! In canonical bytes a date is the `u32` `yyyymmdd` and a period the `u32` `yyyymm`,
//! so that a hex dump reads as the date.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A calendar date (China Standard Time), years 2000..=2199.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(NaiveDate);

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    #[error("date {0:?} is not a calendar date in the form YYYY-MM-DD (years 2000 to 2199)")]
    Date(String),
    #[error("period {0:?} is not a month in the form YYYY-MM (years 2000 to 2199)")]
    Period(String),
}

/// The first and last dates a `Date` can hold.
pub const DATE_MIN: Date = Date(NaiveDate::from_ymd_opt(2000, 1, 1).expect("a date"));
pub const DATE_MAX: Date = Date(NaiveDate::from_ymd_opt(2199, 12, 31).expect("a date"));

impl Date {
    /// # Errors
    /// `DateError::Date` unless `YYYY-MM-DD` names a real day (so `2026-02-30` is refused).
    pub fn parse(text: &str) -> Result<Date, DateError> {
        let err = || DateError::Date(text.chars().take(20).collect());
        let b = text.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(err());
        }
        let num = |r: std::ops::Range<usize>| -> Result<u32, DateError> {
            let s = &text[r];
            if !s.bytes().all(|c| c.is_ascii_digit()) {
                return Err(err());
            }
            s.parse().map_err(|_| err())
        };
        let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        Date::from_ymd(y as i32, m, d).ok_or_else(err)
    }

    pub fn from_ymd(y: i32, m: u32, d: u32) -> Option<Date> {
        if !(2000..=2199).contains(&y) {
            return None;
        }
        NaiveDate::from_ymd_opt(y, m, d).map(Date)
    }

    /// `yyyymmdd`, the canonical form.
    pub fn to_u32(self) -> u32 {
        (self.0.year() as u32) * 10_000 + self.0.month() * 100 + self.0.day()
    }

    pub fn from_u32(v: u32) -> Option<Date> {
        Date::from_ymd((v / 10_000) as i32, (v / 100) % 100, v % 100)
    }

    pub fn year(self) -> i32 {
        self.0.year()
    }

    pub fn period(self) -> Period {
        Period { year: self.0.year() as u16, month: self.0.month() as u8 }
    }

    pub fn add_days(self, days: i64) -> Date {
        Date(self.0 + Duration::days(days))
    }

    /// The same day `months` months later (the month's last day where it has fewer days:
    /// 2028-02-29 plus 12 months is 2029-02-28).
    pub fn add_months(self, months: u32) -> Date {
        Date(self.0.checked_add_months(chrono::Months::new(months)).unwrap_or(NaiveDate::MAX))
    }

    pub fn add_years(self, years: i32) -> Date {
        self.add_months(years.max(0) as u32 * 12)
    }

    /// Whole days from `self` to `later` (negative if `later` is earlier).
    pub fn days_until(self, later: Date) -> i64 {
        (later.0 - self.0).num_days()
    }

    pub fn is_weekend(self) -> bool {
        matches!(self.0.weekday(), Weekday::Sat | Weekday::Sun)
    }

    /// Today's date in China Standard Time (UTC+8), from a Unix time in milliseconds.
    /// The caller reads the clock; the domain never does.
    pub fn cst_from_unix_ms(unix_ms: i64) -> Date {
        let secs = unix_ms.div_euclid(1000) + 8 * 3600;
        let days = secs.div_euclid(86_400);
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
        Date(epoch + Duration::days(days))
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}

impl Serialize for Date {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(self.to_u32())
    }
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Date, D::Error> {
        let v = u32::deserialize(d)?;
        Date::from_u32(v).ok_or_else(|| serde::de::Error::custom(format!("invalid date {v}")))
    }
}

/// A pay period: one calendar month.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period {
    year: u16,
    month: u8,
}

impl Period {
    /// # Errors
    /// `DateError::Period` unless `YYYY-MM`.
    pub fn parse(text: &str) -> Result<Period, DateError> {
        let err = || DateError::Period(text.chars().take(20).collect());
        let b = text.as_bytes();
        if b.len() != 7 || b[4] != b'-' || !text[..4].bytes().chain(text[5..].bytes()).all(|c| c.is_ascii_digit()) {
            return Err(err());
        }
        let y: u16 = text[..4].parse().map_err(|_| err())?;
        let m: u8 = text[5..].parse().map_err(|_| err())?;
        Period::new(y, m).ok_or_else(err)
    }

    pub const fn new(year: u16, month: u8) -> Option<Period> {
        if year >= 2000 && year <= 2199 && month >= 1 && month <= 12 {
            Some(Period { year, month })
        } else {
            None
        }
    }

    pub fn first_day(self) -> Date {
        Date::from_ymd(i32::from(self.year), u32::from(self.month), 1).expect("valid period")
    }

    pub fn last_day(self) -> Date {
        self.next().first_day().add_days(-1)
    }

    pub fn next(self) -> Period {
        if self.month == 12 {
            Period { year: self.year + 1, month: 1 }
        } else {
            Period { year: self.year, month: self.month + 1 }
        }
    }

    pub fn to_u32(self) -> u32 {
        u32::from(self.year) * 100 + u32::from(self.month)
    }

    pub fn from_u32(v: u32) -> Option<Period> {
        Period::new(u16::try_from(v / 100).ok()?, u8::try_from(v % 100).ok()?)
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl Serialize for Period {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(self.to_u32())
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Period, D::Error> {
        let v = u32::deserialize(d)?;
        Period::from_u32(v).ok_or_else(|| serde::de::Error::custom(format!("invalid period {v}")))
    }
}

/// What kind of day a calendar entry declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DayKind {
    /// A public holiday (法定节假日) or a rest day moved into a holiday block.
    Holiday,
    /// A make-up working day (调休上班) on a weekend.
    Workday,
}

/// The working-day calendar: weekends, public holidays and make-up working days.
///
/// Shipped as data (`calendar/cn-holidays.txt`, years 2024 to 2026 as published by the
/// State Council's General Office) and replaceable per county. For a year the file does
/// not cover, `covers` is false and callers say so: only weekends are known there.
#[derive(Clone, Debug)]
pub struct Calendar {
    days: BTreeMap<Date, DayKind>,
    years: std::collections::BTreeSet<i32>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("calendar line {line}: {why}")]
pub struct CalendarError {
    pub line: usize,
    pub why: String,
}

/// The national calendar shipped with the ledger.
pub const CN_CALENDAR: &str = include_str!("../../calendar/cn-holidays.txt");

impl Calendar {
    /// Parses the calendar format: `# comment`, `year YYYY` (declares a covered year),
    /// and `YYYY-MM-DD holiday|workday [comment]`.
    ///
    /// # Errors
    /// `CalendarError` naming the first bad line.
    pub fn parse(text: &str) -> Result<Calendar, CalendarError> {
        let mut cal = Calendar { days: BTreeMap::new(), years: Default::default() };
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let err = |why: &str| CalendarError { line: i + 1, why: why.to_owned() };
            let mut parts = line.split_whitespace();
            let first = parts.next().unwrap_or("");
            let second = parts.next().ok_or_else(|| err("expected two fields"))?;
            if first == "year" {
                let y: i32 = second.parse().map_err(|_| err("bad year"))?;
                cal.years.insert(y);
                continue;
            }
            let date = Date::parse(first).map_err(|e| err(&e.to_string()))?;
            let kind = match second {
                "holiday" => DayKind::Holiday,
                "workday" => DayKind::Workday,
                _ => return Err(err("kind must be holiday or workday")),
            };
            if kind == DayKind::Workday && !date.is_weekend() {
                return Err(err("a make-up workday must fall on a weekend"));
            }
            if !cal.years.contains(&date.year()) {
                return Err(err("date's year not declared with a `year` line"));
            }
            cal.days.insert(date, kind);
        }
        Ok(cal)
    }

    /// The shipped national calendar.
    pub fn china() -> Calendar {
        Calendar::parse(CN_CALENDAR).expect("the shipped calendar parses")
    }

    pub fn covers(&self, year: i32) -> bool {
        self.years.contains(&year)
    }

    pub fn is_working_day(&self, d: Date) -> bool {
        match self.days.get(&d) {
            Some(DayKind::Holiday) => false,
            Some(DayKind::Workday) => true,
            None => !d.is_weekend(),
        }
    }

    /// The date `n` working days after `start` (not counting `start` itself).
    pub fn add_working_days(&self, start: Date, n: u32) -> Date {
        let mut d = start;
        let mut left = n;
        while left > 0 {
            d = d.add_days(1);
            if self.is_working_day(d) {
                left -= 1;
            }
        }
        d
    }
}

/// The national calendar and the counties that replaced it with their own.
#[derive(Clone, Debug)]
pub struct CalendarBook {
    pub national: Calendar,
    pub counties: BTreeMap<super::ids::CountyCode, Calendar>,
}

impl CalendarBook {
    /// The shipped national calendar, with no county replacing it.
    pub fn china() -> CalendarBook {
        CalendarBook { national: Calendar::china(), counties: BTreeMap::new() }
    }

    /// The calendar in force in `county`.
    pub fn for_county(&self, county: super::ids::CountyCode) -> &Calendar {
        self.counties.get(&county).unwrap_or(&self.national)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        Date::parse(s).unwrap()
    }

    #[test]
    fn dates_parse_strictly() {
        assert_eq!(d("2026-02-28").to_u32(), 20260228);
        for bad in ["2026-02-30", "2026-13-01", "2026-2-1", "20260201", "2026-02-01T00", "1999-01-01", "２026-01-01"] {
            assert!(Date::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Period::parse("2026-03").unwrap().last_day(), d("2026-03-31"));
        assert_eq!(Period::parse("2024-02").unwrap().last_day(), d("2024-02-29"));
        assert_eq!(Period::parse("2026-12").unwrap().next().to_string(), "2027-01");
        assert!(Period::parse("2026-00").is_err());
    }

    #[test]
    fn today_is_counted_in_china_standard_time() {
        // 2026-11-27T16:30:00Z is already 2026-11-28 00:30 in Beijing.
        assert_eq!(Date::cst_from_unix_ms(1_795_797_000_000), d("2026-11-28"));
        assert_eq!(Date::cst_from_unix_ms(1_795_795_200_000 - 1), d("2026-11-27"));
    }

    #[test]
    fn working_days_skip_holidays_and_count_make_up_days() {
        let cal = Calendar::china();
        assert!(cal.covers(2026));
        // Spring Festival 2026: 15-23 February off, Saturday 14 February worked.
        assert!(cal.is_working_day(d("2026-02-14")));
        assert!(!cal.is_working_day(d("2026-02-16")));
        assert!(!cal.is_working_day(d("2026-02-21")));
        assert!(cal.is_working_day(d("2026-02-24")));
        // Friday 13 Feb + 1 working day = Saturday 14 (make-up); + 2 = Tuesday 24.
        assert_eq!(cal.add_working_days(d("2026-02-13"), 1), d("2026-02-14"));
        assert_eq!(cal.add_working_days(d("2026-02-13"), 2), d("2026-02-24"));
        // National Day 2025 (1-8 October): 10 working days after 30 September.
        // 9, 10, 11 (make-up Saturday), 13 to 17, 20, 21 October.
        assert_eq!(cal.add_working_days(d("2025-09-30"), 10), d("2025-10-21"));
    }

    #[test]
    fn a_bad_calendar_line_is_named() {
        let e = Calendar::parse("year 2026\n2026-01-05 workday\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(Calendar::parse("2026-01-01 holiday").is_err());
    }
}
