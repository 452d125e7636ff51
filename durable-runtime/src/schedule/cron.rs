//! Cron expressions: parsing (each error names its field) and the next fire time in a time
//! zone.
//!
//! Five fields (`minute hour day-of-month month day-of-week`) or six with seconds first.
//! Each field is `*`, a value, a range `a-b`, a step `*/n` or `a-b/n` or `a/n`, or a list of
//! those separated by commas. Months take `JAN`–`DEC`, days of the week `SUN`–`SAT` (0 or 7 is
//! Sunday). As in Vixie cron, when both day fields are restricted a day matches either. The
//! shorthands `@yearly` (`@annually`), `@monthly`, `@weekly`, `@daily` (`@midnight`) and
//! `@hourly` are accepted.

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// Why a cron expression or time zone was refused: the field and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldError {
    pub field: String,
    pub reason: String,
}

fn err(field: &str, reason: String) -> FieldError {
    FieldError { field: field.to_string(), reason }
}

/// A parsed cron expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cron {
    seconds: u64,
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    days_restricted: bool,
    weekdays_restricted: bool,
}

const MONTHS: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
    names_from: u32,
}

const SECOND: FieldSpec = FieldSpec { name: "second", min: 0, max: 59, names: &[], names_from: 0 };
const MINUTE: FieldSpec = FieldSpec { name: "minute", min: 0, max: 59, names: &[], names_from: 0 };
const HOUR: FieldSpec = FieldSpec { name: "hour", min: 0, max: 23, names: &[], names_from: 0 };
const DAY: FieldSpec = FieldSpec { name: "day-of-month", min: 1, max: 31, names: &[], names_from: 0 };
const MONTH: FieldSpec = FieldSpec { name: "month", min: 1, max: 12, names: &MONTHS, names_from: 1 };
// 7 is Sunday too; folded onto 0 after parsing.
const WEEKDAY: FieldSpec = FieldSpec { name: "day-of-week", min: 0, max: 7, names: &WEEKDAYS, names_from: 0 };

impl Cron {
    /// Parse `text`; the error names the field that is wrong.
    pub(crate) fn parse(text: &str) -> Result<Cron, FieldError> {
        let trimmed = text.trim();
        let expanded = match trimmed.to_ascii_lowercase().as_str() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            s if s.starts_with('@') => {
                return Err(err(
                    "expression",
                    format!(
                        "unknown shorthand `{trimmed}`: use @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly"
                    ),
                ));
            }
            _ => trimmed,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let (sec, rest) = match fields.len() {
            5 => ("0", &fields[..]),
            6 => (fields[0], &fields[1..]),
            n => {
                return Err(err(
                    "expression",
                    format!(
                        "`{trimmed}` has {n} fields; a cron expression has 5 (minute hour day-of-month month day-of-week) or 6 (second first)"
                    ),
                ));
            }
        };
        let seconds = parse_field(sec, &SECOND)?;
        let minutes = parse_field(rest[0], &MINUTE)?;
        let hours = parse_field(rest[1], &HOUR)?;
        let days = parse_field(rest[2], &DAY)?;
        let months = parse_field(rest[3], &MONTH)?;
        let mut weekdays = parse_field(rest[4], &WEEKDAY)?;
        if weekdays & (1 << 7) != 0 {
            weekdays = (weekdays & !(1 << 7)) | 1;
        }
        // Only the day of the month restricts the day: one of its days must be in a month it
        // allows (February has a 29th in leap years), or the expression would never fire.
        let days_restricted = !rest[2].starts_with('*');
        let weekdays_restricted = !rest[4].starts_with('*');
        const LONGEST: [u32; 13] = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        let some_day =
            (1..=12u32).any(|m| months & (1 << m) != 0 && days & ((1u64 << (LONGEST[m as usize] + 1)) - 1) != 0);
        if days_restricted && !weekdays_restricted && !some_day {
            return Err(err(
                DAY.name,
                format!(
                    "`{}`: no month allowed by the month field `{}` has that day, so the schedule would never fire",
                    rest[2], rest[3]
                ),
            ));
        }
        Ok(Cron { seconds, minutes, hours, days, months, weekdays, days_restricted, weekdays_restricted })
    }

    fn day_matches(&self, date: Date) -> bool {
        let d = self.days & (1 << date.day()) != 0;
        let w = self.weekdays & (1 << date.weekday().to_sunday_zero_offset()) != 0;
        if self.days_restricted && self.weekdays_restricted { d || w } else { d && w }
    }

    /// The first wall-clock time strictly after `after` (whole seconds) that matches, within
    /// the next 30 years.
    fn next_civil(&self, after: DateTime) -> Option<DateTime> {
        let start = after.checked_add(1.second()).ok()?;
        let limit = start.year().saturating_add(30);
        let mut date = start.date();
        let (mut h, mut m, mut s) = (start.hour() as u32, start.minute() as u32, start.second() as u32);
        loop {
            if date.year() > limit {
                return None;
            }
            if self.months & (1 << date.month()) == 0 {
                date = date.last_of_month().tomorrow().ok()?;
                (h, m, s) = (0, 0, 0);
                continue;
            }
            if !self.day_matches(date) {
                date = date.tomorrow().ok()?;
                (h, m, s) = (0, 0, 0);
                continue;
            }
            match next_bit(self.hours, h, 23) {
                None => {
                    date = date.tomorrow().ok()?;
                    (h, m, s) = (0, 0, 0);
                    continue;
                }
                Some(nh) if nh != h => (h, m, s) = (nh, 0, 0),
                Some(_) => {}
            }
            match next_bit(self.minutes, m, 59) {
                None => {
                    (h, m, s) = (h + 1, 0, 0);
                    if h > 23 {
                        date = date.tomorrow().ok()?;
                        h = 0;
                    }
                    continue;
                }
                Some(nm) if nm != m => (m, s) = (nm, 0),
                Some(_) => {}
            }
            match next_bit(self.seconds, s, 59) {
                None => {
                    (m, s) = (m + 1, 0);
                    if m > 59 {
                        (h, m) = (h + 1, 0);
                        if h > 23 {
                            date = date.tomorrow().ok()?;
                            h = 0;
                        }
                    }
                    continue;
                }
                Some(ns) => s = ns,
            }
            return Some(date.at(h as i8, m as i8, s as i8, 0));
        }
    }

    /// The first fire time strictly after `after` (milliseconds since the epoch) in zone `tz`.
    /// A wall-clock time skipped by a DST change fires at the instant the clocks jump to (02:30
    /// on a night the clocks go from 02:00 to 03:00 fires at 03:30 — as ever, one hour after
    /// 01:30); a wall-clock time that occurs twice fires once, at its first occurrence.
    pub(crate) fn next_after(&self, tz: &TimeZone, after: u64) -> Option<u64> {
        let after_ts = Timestamp::from_millisecond(i64::try_from(after).ok()?).ok()?;
        let mut civil = tz.to_datetime(after_ts);
        civil = civil.date().at(civil.hour(), civil.minute(), civil.second(), 0);
        for _ in 0..10_000 {
            let next = self.next_civil(civil)?;
            let zoned = tz.to_ambiguous_timestamp(next).compatible().ok()?;
            let ms = zoned.as_millisecond();
            if ms > after as i64 {
                return u64::try_from(ms).ok();
            }
            civil = next;
        }
        None
    }
}

/// The lowest set bit of `bits` at or above `from` (and at most `max`).
fn next_bit(bits: u64, from: u32, max: u32) -> Option<u32> {
    (from..=max).find(|b| bits & (1 << b) != 0)
}

fn parse_field(text: &str, spec: &FieldSpec) -> Result<u64, FieldError> {
    let field_err = |reason: String| err(spec.name, format!("`{text}`: {reason}"));
    let mut bits = 0u64;
    for part in text.split(',') {
        if part.is_empty() {
            return Err(field_err("an empty item in the list".into()));
        }
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s.parse().map_err(|_| field_err(format!("the step `{s}` is not a positive number")))?;
                if step == 0 {
                    return Err(field_err("a step of 0".into()));
                }
                (r, Some(step))
            }
            None => (part, None),
        };
        let (lo, hi) = if range == "*" {
            (spec.min, spec.max)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (value(a, spec).map_err(field_err)?, value(b, spec).map_err(field_err)?);
            if a > b {
                return Err(field_err(format!("the range {a}-{b} is backwards")));
            }
            (a, b)
        } else {
            let a = value(range, spec).map_err(field_err)?;
            // `a/n` means from `a` to the end in steps of `n`.
            (a, if step.is_some() { spec.max } else { a })
        };
        let step = step.unwrap_or(1);
        let mut v = lo;
        while v <= hi {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok(bits)
}

fn value(text: &str, spec: &FieldSpec) -> Result<u32, String> {
    if let Some(i) = spec.names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
        return Ok(i as u32 + spec.names_from);
    }
    let v: u32 = text.parse().map_err(|_| {
        if spec.names.is_empty() {
            format!("`{text}` is not a number")
        } else {
            format!("`{text}` is not a number or one of {}", spec.names.join(", "))
        }
    })?;
    if v < spec.min || v > spec.max {
        return Err(format!("{v} is out of range {}-{}", spec.min, spec.max));
    }
    Ok(v)
}

/// The time zone named `name` (IANA, e.g. `Europe/Paris`; `UTC`).
pub(crate) fn time_zone(name: &str) -> Result<TimeZone, FieldError> {
    TimeZone::get(name).map_err(|e| {
        err("time zone", format!("`{name}` is not a time zone of the IANA database (e.g. `Europe/Paris`, `UTC`): {e}"))
    })
}

/// `ms` as RFC 3339 in UTC (`2026-03-29T01:30:00Z`).
pub(crate) fn rfc3339(ms: u64) -> String {
    match Timestamp::from_millisecond(ms as i64) {
        Ok(t) => t.to_string(),
        Err(_) => ms.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> u64 {
        s.parse::<Timestamp>().unwrap().as_millisecond() as u64
    }

    fn next(cron: &str, zone: &str, after: &str) -> String {
        let c = Cron::parse(cron).unwrap();
        rfc3339(c.next_after(&time_zone(zone).unwrap(), ms(after)).unwrap())
    }

    #[test]
    fn fields_and_shorthands() {
        assert_eq!(next("0 2 * * *", "UTC", "2026-01-01T00:00:00Z"), "2026-01-01T02:00:00Z");
        assert_eq!(next("0 2 * * *", "UTC", "2026-01-01T02:00:00Z"), "2026-01-02T02:00:00Z");
        assert_eq!(next("*/15 * * * *", "UTC", "2026-01-01T00:07:00Z"), "2026-01-01T00:15:00Z");
        assert_eq!(next("*/10 * * * * *", "UTC", "2026-01-01T00:00:05Z"), "2026-01-01T00:00:10Z");
        assert_eq!(next("0 9 * * MON-FRI", "UTC", "2026-01-02T10:00:00Z"), "2026-01-05T09:00:00Z");
        assert_eq!(next("0 0 29 FEB *", "UTC", "2026-01-01T00:00:00Z"), "2028-02-29T00:00:00Z");
        assert_eq!(next("@hourly", "UTC", "2026-01-01T00:59:59Z"), "2026-01-01T01:00:00Z");
        assert_eq!(next("0 0 * * 7", "UTC", "2026-01-01T00:00:00Z"), "2026-01-04T00:00:00Z");
        // Both day fields restricted: either matches (the 13th, or any Friday).
        assert_eq!(next("0 0 13 * FRI", "UTC", "2026-02-01T00:00:00Z"), "2026-02-06T00:00:00Z");
        assert_eq!(next("59 23 31 12 *", "UTC", "2026-01-01T00:00:00Z"), "2026-12-31T23:59:00Z");
    }

    #[test]
    fn paris_across_both_dst_changes() {
        // 02:00 in Paris is 01:00 UTC in winter and 00:00 UTC in summer.
        assert_eq!(next("0 2 * * *", "Europe/Paris", "2026-01-10T12:00:00Z"), "2026-01-11T01:00:00Z");
        assert_eq!(next("0 2 * * *", "Europe/Paris", "2026-07-10T12:00:00Z"), "2026-07-11T00:00:00Z");
        // 2026-03-29: 02:00 -> 03:00. 02:30 does not exist: it fires at 03:30 CEST.
        assert_eq!(next("30 2 * * *", "Europe/Paris", "2026-03-28T12:00:00Z"), "2026-03-29T01:30:00Z");
        assert_eq!(next("30 2 * * *", "Europe/Paris", "2026-03-29T01:30:00Z"), "2026-03-30T00:30:00Z");
        // 2026-10-25: 03:00 -> 02:00. 02:30 happens twice: it fires once, the first time.
        assert_eq!(next("30 2 * * *", "Europe/Paris", "2026-10-24T12:00:00Z"), "2026-10-25T00:30:00Z");
        assert_eq!(next("30 2 * * *", "Europe/Paris", "2026-10-25T00:30:00Z"), "2026-10-26T01:30:00Z");
    }

    #[test]
    fn errors_name_the_field() {
        let e = Cron::parse("0 25 * * *").unwrap_err();
        assert_eq!(e.field, "hour");
        assert!(e.reason.contains("25 is out of range 0-23"), "{}", e.reason);
        assert_eq!(Cron::parse("61 * * * *").unwrap_err().field, "minute");
        assert_eq!(Cron::parse("0 0 0 * *").unwrap_err().field, "day-of-month");
        assert_eq!(Cron::parse("0 0 * FOO *").unwrap_err().field, "month");
        assert_eq!(Cron::parse("0 0 * * 8").unwrap_err().field, "day-of-week");
        assert_eq!(Cron::parse("99 0 0 * * *").unwrap_err().field, "second");
        assert_eq!(Cron::parse("0 0 * *").unwrap_err().field, "expression");
        assert_eq!(Cron::parse("*/0 * * * *").unwrap_err().field, "minute");
        assert_eq!(Cron::parse("5-1 * * * *").unwrap_err().field, "minute");
        assert_eq!(Cron::parse("@often").unwrap_err().field, "expression");
        assert_eq!(time_zone("Mars/Olympus").unwrap_err().field, "time zone");
    }
}
