//! A data point as OpenTSDB accepts it: metric and tag names (§1.1), tags on
//! writes (§1.2), timestamps (§1.3) and values (§1.4).

use std::collections::BTreeMap;

/// Most tag pairs a point may carry (OpenTSDB's `tsd.storage.max_tags`).
pub const DEFAULT_MAX_TAGS: usize = 8;

/// Largest timestamp read as seconds; larger ones are milliseconds.
const MAX_SECONDS: u64 = 4_294_967_295;
/// Largest millisecond timestamp (13 digits).
const MAX_MILLIS: u64 = 9_999_999_999_999;

/// A value, kept as OpenTSDB keeps it: integers and floats are distinct.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// A signed 64-bit integer.
    Int(i64),
    /// A finite double.
    Float(f64),
}

impl Value {
    /// The value as a double.
    pub fn as_f64(self) -> f64 {
        match self {
            #[expect(clippy::cast_precision_loss, reason = "stored as f64 like every RRD value")]
            Value::Int(i) => i as f64,
            Value::Float(f) => f,
        }
    }
}

/// A validated data point.
#[derive(Debug, Clone, PartialEq)]
pub struct DataPoint {
    /// The metric name.
    pub metric: String,
    /// Milliseconds since the epoch.
    pub timestamp_ms: u64,
    /// The value.
    pub value: Value,
    /// Tag pairs, sorted by key.
    pub tags: BTreeMap<String, String>,
}

/// Whether `c` may appear in a metric, tag key or tag value.
fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/') || (!c.is_ascii() && c.is_alphabetic())
}

/// The first illegal character of `s`, if any.
fn illegal(s: &str) -> Option<char> {
    // Names are nearly always ASCII: checked byte by byte, without decoding.
    if s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/')) {
        return None;
    }
    s.chars().find(|c| !allowed(*c))
}

/// Checks a metric name; the error is OpenTSDB's message.
pub fn check_metric(m: &str) -> Result<(), String> {
    if m.is_empty() {
        return Err("Invalid metric name (\"\"): empty string".into());
    }
    match illegal(m) {
        Some(c) => Err(format!("Invalid metric name (\"{m}\"): illegal character: {c}")),
        None => Ok(()),
    }
}

/// Checks the tags of a write: 1 to `max_tags` pairs, legal names.
pub fn check_tags(tags: &BTreeMap<String, String>, max_tags: usize) -> Result<(), String> {
    check_tag_pairs(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())), tags.len(), max_tags)
}

/// [`check_tags`] over `count` pairs sorted by key.
pub fn check_tag_pairs<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)> + Clone, count: usize, max_tags: usize) -> Result<(), String> {
    if count == 0 {
        return Err("Missing tags".into());
    }
    if count > max_tags {
        let inner: Vec<String> = pairs.map(|(k, v)| format!("{k}={v}")).collect();
        return Err(format!("Too many tags: {count} maximum allowed: {max_tags}, tags: {{{}}}", inner.join(", ")));
    }
    for (k, v) in pairs {
        if k.is_empty() {
            return Err(format!("Invalid tag name with value [{v}] (\"\"): empty string"));
        }
        if let Some(c) = illegal(k) {
            return Err(format!("Invalid tag name with value [{v}] (\"{k}\"): illegal character: {c}"));
        }
        if v.is_empty() {
            return Err(format!("Invalid tag value with key [{k}]: empty string"));
        }
        if let Some(c) = illegal(v) {
            return Err(format!("Invalid tag value with key [{k}] (\"{v}\"): illegal character: {c}"));
        }
    }
    Ok(())
}

/// `{k=v, k2=v2}` as OpenTSDB prints a tag map.
pub fn show_tags(tags: &BTreeMap<String, String>) -> String {
    let inner: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{{{}}}", inner.join(", "))
}

/// A write timestamp in milliseconds: up to 4,294,967,295 is seconds, above
/// that milliseconds (at most 13 digits); zero and negatives are refused.
pub fn timestamp_ms(t: i64) -> Result<u64, String> {
    let Ok(u) = u64::try_from(t) else { return Err("Invalid timestamp".into()) };
    match u {
        0 => Err("Invalid timestamp".into()),
        1..=MAX_SECONDS => Ok(u * 1000),
        4_294_967_296..=MAX_MILLIS => Ok(u),
        _ => Err(format!("Timestamp is too large (more than 13 digits): {t}")),
    }
}

/// Classifies and reads a value's text (§1.4): no `.`, `e` or `E` means a
/// signed 64-bit integer; otherwise a finite double.
pub fn parse_value(text: &str) -> Result<Value, String> {
    if !text.contains(['.', 'e', 'E']) {
        let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
        if let Some(c) = digits.chars().find(|c| !c.is_ascii_digit()) {
            return Err(format!("Invalid character '{c}' in {text}"));
        }
        if digits.is_empty() {
            return Err(format!("Invalid number: \"{text}\""));
        }
        return text.parse::<i64>().map(Value::Int).map_err(|_| format!("Value out of range: {text}"));
    }
    let ok_chars = text.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    let f: f64 = if ok_chars { text.parse().map_err(|_| format!("Invalid float: {text}"))? } else { return Err(format!("Invalid float: {text}")) };
    if !f.is_finite() {
        return Err(format!("value is NaN or Infinite: {text}"));
    }
    Ok(Value::Float(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_metric("sys.cpu.user-1_x/y").is_ok());
        assert!(check_metric("température").is_ok());
        assert_eq!(check_metric("a b").unwrap_err(), "Invalid metric name (\"a b\"): illegal character:  ");
        let mut tags = BTreeMap::new();
        tags.insert("ho st".to_owned(), "web01".to_owned());
        assert_eq!(check_tags(&tags, 8).unwrap_err(), "Invalid tag name with value [web01] (\"ho st\"): illegal character:  ");
        let mut tags = BTreeMap::new();
        tags.insert("host".to_owned(), String::new());
        assert_eq!(check_tags(&tags, 8).unwrap_err(), "Invalid tag value with key [host]: empty string");
        assert_eq!(check_tags(&BTreeMap::new(), 8).unwrap_err(), "Missing tags");
        let many: BTreeMap<String, String> = (0..9).map(|i| (format!("k{i}"), "v".to_owned())).collect();
        assert!(check_tags(&many, 8).unwrap_err().starts_with("Too many tags: 9 maximum allowed: 8, tags: {k0=v, "));
    }

    #[test]
    fn timestamps() {
        assert_eq!(timestamp_ms(1_700_000_000), Ok(1_700_000_000_000));
        assert_eq!(timestamp_ms(4_294_967_295), Ok(4_294_967_295_000));
        assert_eq!(timestamp_ms(4_294_967_296), Ok(4_294_967_296));
        assert_eq!(timestamp_ms(1_700_000_000_123), Ok(1_700_000_000_123));
        assert!(timestamp_ms(10_000_000_000_000).is_err());
        assert!(timestamp_ms(0).is_err() && timestamp_ms(-5).is_err());
    }

    #[test]
    fn values() {
        assert_eq!(parse_value("42"), Ok(Value::Int(42)));
        assert_eq!(parse_value("-7"), Ok(Value::Int(-7)));
        assert_eq!(parse_value("0.75"), Ok(Value::Float(0.75)));
        assert_eq!(parse_value("3.5e-2"), Ok(Value::Float(0.035)));
        for bad in ["NaN", "Infinity", "0x10", "abc", " 42", "", "9223372036854775808", "1.2.3"] {
            assert!(parse_value(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_value("1e999").unwrap_err(), "value is NaN or Infinite: 1e999");
    }
}
