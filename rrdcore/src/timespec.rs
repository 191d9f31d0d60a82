//! RRDtool's time arguments, the forms people type: epoch seconds, `now`,
//! `N`, `now-1h`, `-1d`, `end-2w`, `start+6h`, `midnight`, `yesterday`.
//!
//! Offsets chain (`now-1d-2h`), take units from seconds to years, and count
//! months and years on the calendar (UTC). A bare number is epoch seconds; a
//! bare offset (`-1d`) is relative to now.

use crate::error::{Error, Result};

const DAY: i64 = 86_400;

fn err(text: &str, reason: &'static str) -> Error {
    Error::Time {
        value: text.to_owned(),
        reason,
    }
}

/// Reads an at-style time. `start` and `end` are what `s`/`start` and
/// `e`/`end` refer to (fetch's `--end` may refer to `--start` and vice versa);
/// `None` makes such a reference an error.
///
/// ```
/// use rrdcore::timespec::parse;
/// let now = 1_700_000_000;
/// assert_eq!(parse("now-1h", now, None, None).unwrap(), now - 3600);
/// assert_eq!(parse("-1d", now, None, None).unwrap(), now - 86_400);
/// assert_eq!(parse("1500000000", now, None, None).unwrap(), 1_500_000_000);
/// assert_eq!(parse("end-2w", now, None, Some(now)).unwrap(), now - 14 * 86_400);
/// ```
pub fn parse(text: &str, now: i64, start: Option<i64>, end: Option<i64>) -> Result<i64> {
    let lower = text.trim().to_ascii_lowercase();
    let s = lower.as_str();
    if s.is_empty() {
        return Err(err(text, "empty time"));
    }
    let (base, rest) = base(s, text, now, start, end)?;
    offsets(rest, base, text)
}

fn base<'a>(
    s: &'a str,
    text: &str,
    now: i64,
    start: Option<i64>,
    end: Option<i64>,
) -> Result<(i64, &'a str)> {
    if s.starts_with(['+', '-']) {
        return Ok((now, s));
    }
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 {
        let (num, rest) = s.split_at(digits);
        if rest.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return Err(err(text, "a time must start with a base such as now, start, end or epoch seconds"));
        }
        let value = num.parse::<i64>().map_err(|_| err(text, "number too large"))?;
        return Ok((value, rest));
    }
    let word_len = s.bytes().take_while(u8::is_ascii_alphabetic).count();
    let (word, rest) = s.split_at(word_len);
    let midnight = now.div_euclid(DAY) * DAY;
    let value = match word {
        "now" | "n" => now,
        "start" | "s" => start.ok_or_else(|| err(text, "`start` is not defined here"))?,
        "end" | "e" => end.ok_or_else(|| err(text, "`end` is not defined here"))?,
        "epoch" => 0,
        "midnight" | "today" => midnight,
        "noon" => midnight + DAY / 2,
        "yesterday" => midnight - DAY,
        "tomorrow" => midnight + DAY,
        _ => return Err(err(text, "unknown time base (use now, start, end, epoch seconds or an offset)")),
    };
    Ok((value, rest))
}

fn offsets(mut rest: &str, mut time: i64, text: &str) -> Result<i64> {
    while !rest.is_empty() {
        rest = rest.trim_start();
        let sign = match rest.as_bytes().first() {
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => return Err(err(text, "expected + or - before an offset")),
        };
        rest = rest.get(1..).unwrap_or("").trim_start();
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(err(text, "expected a number after + or -"));
        }
        let (num, after) = rest.split_at(digits);
        let n: i64 = num.parse().map_err(|_| err(text, "offset too large"))?;
        let n = n * sign;
        let after = after.trim_start();
        let unit_len = after.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, after) = after.split_at(unit_len);
        time = apply(time, n, unit).ok_or_else(|| err(text, "unknown unit or out of range (use s, m, h, d, w, mon, y)"))?;
        rest = after;
    }
    Ok(time)
}

fn apply(time: i64, n: i64, unit: &str) -> Option<i64> {
    let secs = match unit {
        "" | "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => DAY,
        "w" | "wk" | "wks" | "week" | "weeks" => 7 * DAY,
        "mon" | "mons" | "month" | "months" => return add_months(time, n),
        "y" | "yr" | "yrs" | "year" | "years" => return add_months(time, n.checked_mul(12)?),
        _ => return None,
    };
    time.checked_add(n.checked_mul(secs)?)
}

/// Adds calendar months in UTC, normalising an overflowing day as `mktime` does.
fn add_months(time: i64, months: i64) -> Option<i64> {
    let days = time.div_euclid(DAY);
    let secs = time.rem_euclid(DAY);
    let (y, m, d) = civil_from_days(days);
    let total = y.checked_mul(12)?.checked_add(m - 1)?.checked_add(months)?;
    let (ny, nm) = (total.div_euclid(12), total.rem_euclid(12) + 1);
    let first = days_from_civil(ny, nm, 1);
    first.checked_add(d - 1)?.checked_mul(DAY)?.checked_add(secs)
}

/// `YYYY-MM-DD HH:MM:SS UTC`, as RRDtool's dump comments print times (in UTC).
///
/// ```
/// assert_eq!(rrdcore::timespec::utc_datetime(1_598_384_910), "2020-08-25 19:48:30 UTC");
/// ```
pub fn utc_datetime(t: i64) -> String {
    let (y, m, d) = civil_from_days(t.div_euclid(DAY));
    let s = t.rem_euclid(DAY);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", s / 3600, s % 3600 / 60, s % 60)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (month 1-12).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000; // 2023-11-14T22:13:20Z

    #[test]
    fn forms() {
        assert_eq!(parse("now", NOW, None, None).unwrap(), NOW);
        assert_eq!(parse("N", NOW, None, None).unwrap(), NOW);
        assert_eq!(parse("now-1d-2h", NOW, None, None).unwrap(), NOW - 86_400 - 7200);
        assert_eq!(parse("now - 30 minutes", NOW, None, None).unwrap(), NOW - 1800);
        assert_eq!(parse("-3600", NOW, None, None).unwrap(), NOW - 3600);
        assert_eq!(parse("start+6h", NOW, Some(100), None).unwrap(), 100 + 21_600);
        assert_eq!(parse("midnight", NOW, None, None).unwrap(), 1_699_920_000);
        assert!(parse("end-1d", NOW, None, None).is_err());
        assert!(parse("banana", NOW, None, None).is_err());
        assert!(parse("now-1fortnight", NOW, None, None).is_err());
        assert!(parse("", NOW, None, None).is_err());
        assert!(parse("now-99999999999999999999", NOW, None, None).is_err());
    }

    #[test]
    fn calendar_months() {
        // 2024-01-31 00:00 UTC + 1 month = 2024-03-02 (mktime normalisation, leap year).
        let jan31 = days_from_civil(2024, 1, 31) * DAY;
        assert_eq!(add_months(jan31, 1), Some(days_from_civil(2024, 3, 2) * DAY));
        assert_eq!(parse("now-1y", NOW, None, None).unwrap(), NOW - 365 * DAY);
        for z in [-800_000, -1, 0, 1, 19_000, 2_000_000] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }
}
