//! RRDtool's own number reading, reproduced exactly.
//!
//! RRDtool converts update values, times, DS limits and xff with a private
//! decimal parser that is *not* correctly rounded (it multiplies by ten digit
//! by digit and scales by binary powering). Bit-for-bit agreement needs the
//! same arithmetic, so this module ports that algorithm rather than using
//! `str::parse::<f64>`. See `rrd-semantics.md` §3.2.
//!
//! It also holds the exact decimal difference RRDtool takes between two
//! COUNTER/DERIVE readings (§3.4).

/// What RRDtool's parser made of a text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Parsed<'a> {
    /// The whole text was a number (or a `nan`/`inf` spelling).
    Number(f64),
    /// A number was read, but text is left after it (`12x`, `1.2.3`).
    Trailing(f64, &'a str),
    /// Nothing could be converted (`""`, `abc`, `1e5000`).
    Nothing,
}

/// Smallest and largest decimal exponent RRDtool scales by (C's `DBL_MIN_EXP`/`DBL_MAX_EXP`).
const MIN_EXP: i32 = -1021;
const MAX_EXP: i32 = 1024;

fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The C string view of `text`: it ends at the first NUL, as it would in RRDtool.
fn c_str(text: &str) -> &str {
    match text.find('\0') {
        Some(end) => text.get(..end).unwrap_or(text),
        None => text,
    }
}

/// Reads `text` the way RRDtool's `rrd_strtodbl` does.
///
/// ```
/// use rrdcore::number::{parse, Parsed};
/// assert_eq!(parse("3.14159"), Parsed::Number(3.1415900000000003));
/// assert_eq!(parse("1e3"), Parsed::Number(1000.0));
/// assert!(matches!(parse("nanny"), Parsed::Number(x) if x.is_nan()));
/// assert_eq!(parse("12x"), Parsed::Trailing(12.0, "x"));
/// assert_eq!(parse(""), Parsed::Nothing);
/// ```
pub fn parse(text: &str) -> Parsed<'_> {
    let text = c_str(text);
    match strtod(text.as_bytes()) {
        Some((value, consumed)) => match text.get(consumed..) {
            Some("") | None => Parsed::Number(value),
            Some(rest) => Parsed::Trailing(value, rest),
        },
        None => special(text),
    }
}

/// Reads `text` as a whole number, or `None` when RRDtool would report an error.
pub fn parse_full(text: &str) -> Option<f64> {
    match parse(text) {
        Parsed::Number(v) => Some(v),
        Parsed::Trailing(..) | Parsed::Nothing => None,
    }
}

/// The `nan` / `inf` prefixes RRDtool accepts when no digits were converted.
fn special(text: &str) -> Parsed<'_> {
    let starts = |prefix: &str| {
        text.len() >= prefix.len()
            && text
                .as_bytes()
                .iter()
                .zip(prefix.as_bytes())
                .all(|(a, b)| a.eq_ignore_ascii_case(b))
    };
    if starts("-nan") || starts("nan") {
        Parsed::Number(f64::NAN)
    } else if starts("inf") {
        Parsed::Number(f64::INFINITY)
    } else if starts("-inf") {
        Parsed::Number(f64::NEG_INFINITY)
    } else {
        Parsed::Nothing
    }
}

/// Reads an optional `+` or `-` at `*i`; true for `-`.
fn read_sign(s: &[u8], i: &mut usize) -> bool {
    match s.get(*i) {
        Some(b'-') => {
            *i += 1;
            true
        }
        Some(b'+') => {
            *i += 1;
            false
        }
        _ => false,
    }
}

/// The core conversion: `Some((value, bytes consumed))`, or `None` for "no conversion".
fn strtod(s: &[u8]) -> Option<(f64, usize)> {
    let mut i = 0;
    let at = |i: usize| s.get(i).copied().unwrap_or(0);
    while is_c_space(at(i)) {
        i += 1;
    }
    let negative = read_sign(s, &mut i);
    let mut number = 0.0_f64;
    let mut exponent: i32 = 0;
    let mut digits = 0;
    while at(i).is_ascii_digit() {
        number = number * 10.0 + f64::from(at(i) - b'0');
        i += 1;
        digits += 1;
    }
    if at(i) == b'.' {
        i += 1;
        let mut decimals: i32 = 0;
        while at(i).is_ascii_digit() {
            number = number * 10.0 + f64::from(at(i) - b'0');
            i += 1;
            digits += 1;
            decimals = decimals.wrapping_add(1);
        }
        exponent = exponent.wrapping_sub(decimals);
    }
    if digits == 0 {
        return None;
    }
    if negative {
        number = -number;
    }
    if matches!(at(i), b'e' | b'E') {
        i += 1;
        let negative_exp = read_sign(s, &mut i);
        let mut n: i32 = 0;
        while at(i).is_ascii_digit() {
            n = n.wrapping_mul(10).wrapping_add(i32::from(at(i) - b'0'));
            i += 1;
        }
        exponent = if negative_exp {
            exponent.wrapping_sub(n)
        } else {
            exponent.wrapping_add(n)
        };
    }
    if !(MIN_EXP..=MAX_EXP).contains(&exponent) {
        return None;
    }
    let mut p10 = 10.0_f64;
    let mut n = exponent.unsigned_abs();
    while n != 0 {
        if n & 1 == 1 {
            if exponent < 0 {
                number /= p10;
            } else {
                number *= p10;
            }
        }
        n >>= 1;
        p10 *= p10;
    }
    Some((number, i))
}

/// Longest digit run RRDtool takes a counter difference over (`LAST_DS_LEN`).
const MAX_DIFF_DIGITS: usize = 30;

/// Splits a counter text as RRDtool's `rrd_diff` does: skip non-digits (noting a
/// `-` among them), then take the digit run that follows.
fn digit_run(text: &str) -> (bool, &[u8]) {
    let bytes = c_str(text).as_bytes();
    let start = bytes.iter().position(u8::is_ascii_digit).unwrap_or(bytes.len());
    let (lead, rest) = bytes.split_at(start);
    let negative = lead.contains(&b'-');
    let end = rest
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(rest.len());
    let (run, _) = rest.split_at(end);
    (negative, run)
}

fn decimal_value(run: &[u8]) -> u128 {
    run.iter()
        .fold(0u128, |acc, d| acc * 10 + u128::from(d - b'0'))
}

/// `new - old` for two COUNTER/DERIVE readings, exactly as RRDtool's `rrd_diff`:
/// an exact decimal difference, converted with RRDtool's parser; NaN when the
/// signs differ, when either has no digits, or when either is over 30 digits.
///
/// ```
/// use rrdcore::number::counter_diff;
/// assert_eq!(counter_diff("1005", "1000"), 5.0);
/// assert!(counter_diff("3", "-5").is_nan());
/// assert_eq!(counter_diff("-7", "-5"), -2.0);
/// ```
pub fn counter_diff(new: &str, old: &str) -> f64 {
    let (new_neg, a) = digit_run(new);
    let (old_neg, b) = digit_run(old);
    if a.is_empty() || b.is_empty() || new_neg != old_neg {
        return crate::state::DNAN;
    }
    if a.len().max(b.len()) > MAX_DIFF_DIGITS {
        return crate::state::DNAN;
    }
    let (x, y) = (decimal_value(a), decimal_value(b));
    let magnitude = x.abs_diff(y);
    let mut result = magnitude
        .to_string()
        .bytes()
        .fold(0.0_f64, |acc, d| acc * 10.0 + f64::from(d - b'0'));
    if x < y {
        result = -result;
    }
    if new_neg && old_neg {
        result = -result;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(s: &str) -> f64 {
        match parse(s) {
            Parsed::Number(v) => v,
            other => panic!("{s:?} gave {other:?}"),
        }
    }

    #[test]
    fn not_correctly_rounded_like_rrdtool() {
        // Read back from a real RRDtool file (rrd-semantics.md §3.2).
        assert_eq!(num("3.14159").to_bits(), 3.1415900000000003_f64.to_bits());
        assert_ne!(num("3.14159"), "3.14159".parse::<f64>().unwrap_or(0.0));
    }

    #[test]
    fn spellings() {
        assert_eq!(num("+1000000000"), 1e9);
        assert_eq!(num("1e9"), 1e9);
        assert_eq!(num("  7"), 7.0);
        assert_eq!(num("1e"), 1.0);
        assert_eq!(num(".5"), 0.5);
        assert_eq!(num("5."), 5.0);
        assert!(num("-0").is_sign_negative());
        assert_eq!(num("information"), f64::INFINITY);
        assert_eq!(num("-INF"), f64::NEG_INFINITY);
        assert!(num("NaN").is_nan());
        assert!(num("-nan").is_nan());
        assert_eq!(parse("+inf"), Parsed::Nothing);
        assert_eq!(parse("1e5000"), Parsed::Nothing);
        assert_eq!(parse("-"), Parsed::Nothing);
        assert_eq!(parse(" nan"), Parsed::Nothing);
        assert_eq!(parse("7 "), Parsed::Trailing(7.0, " "));
        assert_eq!(parse("1.2.3"), Parsed::Trailing(1.2, ".3"));
        assert_eq!(parse("5\0junk"), Parsed::Number(5.0));
    }

    #[test]
    fn counter_differences() {
        assert_eq!(counter_diff("10", "5"), 5.0);
        assert_eq!(counter_diff("5", "10"), -5.0);
        assert!(counter_diff("", "5").is_nan());
        assert!(counter_diff("5", "U").is_nan());
        assert_eq!(counter_diff("12x", "2"), 10.0);
        assert!(counter_diff("-5", "-5").is_sign_negative());
        let long = "1".repeat(31);
        assert!(counter_diff(&long, "1").is_nan());
        let thirty = "9".repeat(30);
        assert_eq!(counter_diff(&thirty, "0"), num(&thirty));
    }
}
