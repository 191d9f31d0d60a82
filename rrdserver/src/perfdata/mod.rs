//! Nagios plugin performance data: the grammar of one perfdata string, as
//! the plugin guidelines define it and PNP4Nagios reads it.
//!
//! `'label'=value[UOM];[warn];[crit];[min];[max]`, several items separated
//! by spaces. Labels may be quoted with `'` (then they may hold spaces and
//! `=`; a doubled `''` is a quote). The value is a decimal number (a decimal
//! comma is read as a point, exponents are allowed) or `U` for unknown;
//! the unit is what follows it (`s`, `ms`, `us`, `%`, `B`, `KB`, `MB`, `GB`,
//! `TB`, `c` for a counter, or any other word, kept as given). Thresholds
//! are ranges (`10`, `10:`, `~:10`, `10:20`, `@10:20`); any field after the
//! value may be empty or missing. An invalid item is an error for itself
//! only.
//!
//! ```
//! use rrdserver::perfdata::parse;
//! let items = parse("'time taken'=0,25s;1;2;0; load=1.5e1 size=U");
//! let time = items[0].as_ref().unwrap();
//! assert_eq!((time.label.as_str(), time.value, time.unit.as_str()), ("time taken", Some(0.25), "s"));
//! assert_eq!(items[1].as_ref().unwrap().value, Some(15.0));
//! assert_eq!(items[2].as_ref().unwrap().value, None);
//! ```

pub mod import;
pub mod spool;

/// A threshold range (`[@][start:][end]`, `~` for minus infinity).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    /// Lower bound; `None` is minus infinity.
    pub start: Option<f64>,
    /// Upper bound; `None` is plus infinity.
    pub end: Option<f64>,
    /// `@`: alert inside the range instead of outside.
    pub inside: bool,
}

/// One perfdata item.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// The label, unquoted.
    pub label: String,
    /// The value; `None` for `U` (unknown).
    pub value: Option<f64>,
    /// The unit as given (empty when none).
    pub unit: String,
    /// Warning threshold.
    pub warn: Option<Range>,
    /// Critical threshold.
    pub crit: Option<Range>,
    /// Minimum possible value.
    pub min: Option<f64>,
    /// Maximum possible value.
    pub max: Option<f64>,
}

impl Item {
    /// Whether the unit marks a counter (`c`).
    pub fn is_counter(&self) -> bool {
        self.unit == "c"
    }
}

/// An item that could not be read: its text and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemError {
    /// The item as written.
    pub text: String,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for ItemError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.text, self.reason)
    }
}

/// Parses a perfdata string into its items, in order.
pub fn parse(perfdata: &str) -> Vec<Result<Item, ItemError>> {
    let mut out = Vec::new();
    let mut rest = perfdata.trim_start();
    while !rest.is_empty() {
        let (item, after) = one(rest);
        out.push(item);
        rest = after.trim_start();
    }
    out
}

/// Reads one item from the start of `s`; the rest after it.
fn one(s: &str) -> (Result<Item, ItemError>, &str) {
    let (label, after_label) = match label(s) {
        Ok(v) => v,
        Err(reason) => {
            let end = s.find(char::is_whitespace).unwrap_or(s.len());
            let (text, rest) = s.split_at(end);
            return (Err(ItemError { text: text.to_owned(), reason }), rest);
        }
    };
    let end = after_label.find(char::is_whitespace).unwrap_or(after_label.len());
    let (fields, rest) = after_label.split_at(end);
    let text_len = s.len() - rest.len();
    let text = s.get(..text_len).unwrap_or(s);
    let item = fields_of(label, fields).map_err(|reason| ItemError { text: text.to_owned(), reason });
    (item, rest)
}

/// The label and what follows its `=`.
fn label(s: &str) -> Result<(String, &str), String> {
    if let Some(inner) = s.strip_prefix('\'') {
        let mut label = String::new();
        let mut chars = inner.char_indices();
        while let Some((i, c)) = chars.next() {
            if c != '\'' {
                label.push(c);
                continue;
            }
            if inner.get(i + 1..).is_some_and(|r| r.starts_with('\'')) {
                label.push('\'');
                chars.next();
                continue;
            }
            let after = inner.get(i + 1..).unwrap_or_default();
            let value = after.strip_prefix('=').ok_or("no '=' after the quoted label")?;
            return check_label(label).map(|l| (l, value));
        }
        return Err("quoted label without its closing quote".into());
    }
    let end = s.find(|c: char| c == '=' || c.is_whitespace()).unwrap_or(s.len());
    let (label, rest) = s.split_at(end);
    let value = rest.strip_prefix('=').ok_or("no '=' after the label")?;
    check_label(label.to_owned()).map(|l| (l, value))
}

fn check_label(label: String) -> Result<String, String> {
    if label.is_empty() {
        return Err("empty label".into());
    }
    Ok(label)
}

/// `value[UOM];warn;crit;min;max`.
fn fields_of(label: String, fields: &str) -> Result<Item, String> {
    let mut parts = fields.split(';');
    let (value, unit) = value(parts.next().unwrap_or_default())?;
    let warn = range(parts.next().unwrap_or_default()).map_err(|e| format!("warning threshold: {e}"))?;
    let crit = range(parts.next().unwrap_or_default()).map_err(|e| format!("critical threshold: {e}"))?;
    let min = optional_number(parts.next().unwrap_or_default()).map_err(|e| format!("min: {e}"))?;
    let max = optional_number(parts.next().unwrap_or_default()).map_err(|e| format!("max: {e}"))?;
    Ok(Item { label, value, unit: unit.to_owned(), warn, crit, min, max })
}

/// The value and its unit.
fn value(s: &str) -> Result<(Option<f64>, &str), String> {
    if s.is_empty() {
        return Err("no value".into());
    }
    if let Some(unit) = s.strip_prefix('U')
        && !unit.starts_with(|c: char| c.is_ascii_digit())
    {
        return Ok((None, unit));
    }
    let end = number_len(s);
    if end == 0 {
        return Err(format!("value {s:?} is not a number or U"));
    }
    let (num, unit) = s.split_at(end);
    if unit.contains(|c: char| c.is_ascii_digit() || c.is_control()) {
        return Err(format!("value {s:?} is not a number followed by a unit"));
    }
    Ok((Some(number(num)?), unit))
}

/// Length of the number at the start of `s` (sign, digits, one decimal
/// point or comma, exponent).
fn number_len(s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'-' | b'+')));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    let mut n = digits(&mut i);
    if matches!(b.get(i), Some(b'.' | b',')) && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
        i += 1;
        n += digits(&mut i);
    } else if matches!(b.get(i), Some(b'.')) && n > 0 {
        i += 1;
    }
    if n == 0 {
        return 0;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(b.get(j), Some(b'-' | b'+')) {
            j += 1;
        }
        if b.get(j).is_some_and(u8::is_ascii_digit) {
            i = j;
            digits(&mut i);
        }
    }
    i
}

/// A number with a decimal point or comma; finite.
fn number(s: &str) -> Result<f64, String> {
    let v: f64 = s.replace(',', ".").parse().map_err(|_| format!("{s:?} is not a number"))?;
    if v.is_finite() { Ok(v) } else { Err(format!("{s:?} is out of range")) }
}

fn optional_number(s: &str) -> Result<Option<f64>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    // A unit repeated after min/max is tolerated, as PNP4Nagios does.
    let end = number_len(s);
    if end == 0 {
        return Err(format!("{s:?} is not a number"));
    }
    number(s.get(..end).unwrap_or(s)).map(Some)
}

/// `[@][start:][end]`, `~` for an open start.
fn range(s: &str) -> Result<Option<Range>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let (inside, body) = match s.strip_prefix('@') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let bound = |t: &str| -> Result<Option<f64>, String> {
        match t {
            "" | "~" => Ok(None),
            t => number(t).map(Some),
        }
    };
    let (start, end) = match body.split_once(':') {
        Some((a, b)) => (bound(a)?, bound(b)?),
        None if body == "~" => return Err("`~` without `:`".into()),
        None => (Some(0.0), bound(body)?),
    };
    if let (Some(a), Some(b)) = (start, end)
        && a > b
    {
        return Err(format!("range {s:?} starts above its end"));
    }
    Ok(Some(Range { start, end, inside }))
}

/// A name as OpenTSDB can hold it: characters it cannot hold become `_`.
pub fn opentsdb_name(s: &str) -> String {
    let out: String = s
        .trim()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/') || (!c.is_ascii() && c.is_alphabetic()) { c } else { '_' })
        .collect();
    if out.is_empty() { "_".into() } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Vec<Item> {
        parse(s).into_iter().map(|r| r.unwrap_or_else(|e| panic!("{s}: {e}"))).collect()
    }

    #[test]
    fn full_form_and_units() {
        let i = &ok("'/ used'=12.5KB;80:90;@10:20;0;100")[0];
        assert_eq!((i.label.as_str(), i.value, i.unit.as_str()), ("/ used", Some(12.5), "KB"));
        assert_eq!(i.warn, Some(Range { start: Some(80.0), end: Some(90.0), inside: false }));
        assert_eq!(i.crit, Some(Range { start: Some(10.0), end: Some(20.0), inside: true }));
        assert_eq!((i.min, i.max), (Some(0.0), Some(100.0)));
        let units: Vec<String> = ok("a=1s b=2ms c=3us d=4% e=5B f=6KB g=7MB h=8GB i=9TB j=10c k=11 l=12rpm").into_iter().map(|i| i.unit).collect();
        assert_eq!(units, ["s", "ms", "us", "%", "B", "KB", "MB", "GB", "TB", "c", "", "rpm"]);
        assert!(ok("j=10c")[0].is_counter());
    }

    #[test]
    fn quoted_labels() {
        let items = ok("'a b'=1 'x=y'=2 'it''s'=3 'trail '=4");
        let labels: Vec<&str> = items.iter().map(|i| i.label.as_str()).collect();
        assert_eq!(labels, ["a b", "x=y", "it's", "trail "]);
    }

    #[test]
    fn missing_and_trailing_fields() {
        let i = &ok("rta=0.5ms;;;0;")[0];
        assert_eq!((i.warn, i.crit, i.min, i.max), (None, None, Some(0.0), None));
        let i = &ok("rta=0.5ms;;;;;;")[0];
        assert_eq!(i.value, Some(0.5));
        assert_eq!(ok("x=1;10;20")[0].crit, Some(Range { start: Some(0.0), end: Some(20.0), inside: false }));
        let r = ok("x=1;10:;~:5")[0].clone();
        assert_eq!(r.warn, Some(Range { start: Some(10.0), end: None, inside: false }));
        assert_eq!(r.crit, Some(Range { start: None, end: Some(5.0), inside: false }));
    }

    #[test]
    fn numbers() {
        let v: Vec<Option<f64>> = ok("a=0,75 b=-3 c=+4.5 d=1e3 e=2.5E-2s f=U g=Us h=7. i=.5").into_iter().map(|i| i.value).collect();
        assert_eq!(v, [Some(0.75), Some(-3.0), Some(4.5), Some(1000.0), Some(0.025), None, None, Some(7.0), Some(0.5)]);
    }

    #[test]
    fn bad_items_skip_only_themselves() {
        let r = parse("good=1 =2 noequals bad=abc 'open=3 worse=1e999 fine=2");
        let good: Vec<String> = r.iter().filter_map(|x| x.as_ref().ok().map(|i| i.label.clone())).collect();
        assert_eq!(good, ["good", "fine"], "{r:?}");
        let r = parse("a=1 b=x1 c=2;abc d=3 e=1;5:2");
        let good: Vec<String> = r.iter().filter_map(|x| x.as_ref().ok().map(|i| i.label.clone())).collect();
        assert_eq!(good, ["a", "d"]);
        let errors: Vec<String> = r.iter().filter_map(|x| x.as_ref().err().map(ToString::to_string)).collect();
        assert!(errors[0].contains("b=x1") && errors[0].contains("not a number"), "{errors:?}");
        assert!(errors[1].contains("warning threshold"), "{errors:?}");
        assert!(errors[2].contains("starts above its end"), "{errors:?}");
    }

    #[test]
    fn odd_input_never_panics() {
        for s in ["", "   ", "'", "''", "'''", "=", "==", "a==1", "a=;", "a=-", "a=+.", "a=1e", "a=1e+", "\u{0}=1", "é=1", "a=1\u{7f}"] {
            let _ = parse(s);
        }
        assert_eq!(opentsdb_name("disk /var: used"), "disk_/var__used");
        assert_eq!(opentsdb_name("  "), "_");
    }
}
