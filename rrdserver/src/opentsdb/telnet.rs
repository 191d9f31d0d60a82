//! The telnet line protocol (`opentsdb-api.md` §3): one command per line;
//! `put` validated with OpenTSDB's error lines.

use std::borrow::Cow;

use super::point::{check_metric, check_tag_pairs, parse_value, timestamp_ms};
use super::put::PointRef;

/// Longest line accepted; a longer one is a protocol error.
pub const MAX_LINE: usize = 64 * 1024;

/// One parsed line.
#[derive(Debug, Clone, PartialEq)]
pub enum Command<'a> {
    /// `put`: a valid point (borrowing from the line), or the error line to
    /// send back (without newline).
    Put(Result<PointRef<'a>, String>),
    /// `version`.
    Version,
    /// `stats`.
    Stats,
    /// `help`.
    Help,
    /// `dropcaches`.
    DropCaches,
    /// `status`.
    Status,
    /// `exit`: close the connection.
    Exit,
    /// An empty line (ignored).
    Empty,
    /// Anything else: the reply line (without newline).
    Unknown(String),
}

/// The command names `help` lists.
pub const COMMANDS: &[&str] = &["put", "version", "stats", "help", "dropcaches", "status", "exit"];

/// Parses one line (without its line ending).
pub fn parse_line(line: &str, max_tags: usize) -> Command<'_> {
    // On ASCII without vertical tabs (the one ASCII character `char` calls
    // whitespace and `u8` does not), the byte split gives the same words
    // without decoding characters.
    if line.is_ascii() && !line.contains('\x0B') {
        command(line.split_ascii_whitespace(), max_tags)
    } else {
        command(line.split_whitespace(), max_tags)
    }
}

fn command<'a>(mut words: impl Iterator<Item = &'a str> + Clone, max_tags: usize) -> Command<'a> {
    let Some(cmd) = words.next() else { return Command::Empty };
    match cmd {
        "put" => Command::Put(put(words, max_tags)),
        "version" => Command::Version,
        "stats" => Command::Stats,
        "help" => Command::Help,
        "dropcaches" => Command::DropCaches,
        "status" => Command::Status,
        "exit" => Command::Exit,
        other => Command::Unknown(format!("unknown command: {other}.  Try `help'.")),
    }
}

fn illegal(msg: impl std::fmt::Display) -> String {
    format!("put: illegal argument: {msg}")
}

/// A Java `parseLong`-style read: optional sign, digits; the first bad character is named.
fn parse_long(text: &str) -> Result<i64, String> {
    // The usual timestamp: up to 18 plain digits, which cannot overflow.
    if (1..=18).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(text.bytes().fold(0, |n, b| n * 10 + i64::from(b - b'0')));
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if let Some(c) = digits.chars().find(|c| !c.is_ascii_digit()) {
        return Err(format!("put: invalid value: Invalid character '{c}' in {text}"));
    }
    if digits.is_empty() {
        return Err(format!("put: invalid value: Invalid character '{text}' in {text}"));
    }
    text.parse().map_err(|_| format!("put: invalid value: Value out of range: {text}"))
}

/// A telnet timestamp in milliseconds; `seconds.fraction` is seconds plus fraction.
fn telnet_time(text: &str) -> Result<u64, String> {
    let (whole, frac) = match text.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (text, None),
    };
    let secs = parse_long(whole)?;
    let Some(frac) = frac else {
        return timestamp_ms(secs).map_err(|_| illegal(format!("invalid timestamp: {secs}")));
    };
    if let Some(c) = frac.chars().find(|c| !c.is_ascii_digit()) {
        return Err(format!("put: invalid value: Invalid character '{c}' in {text}"));
    }
    if secs <= 0 || secs > 4_294_967_295 {
        return Err(illegal(format!("invalid timestamp: {text}")));
    }
    let millis: u64 = format!("{frac:0<3}").get(..3).and_then(|m| m.parse().ok()).unwrap_or(0);
    Ok(secs.unsigned_abs() * 1000 + millis)
}

fn put<'a>(words: impl Iterator<Item = &'a str> + Clone, max_tags: usize) -> Result<PointRef<'a>, String> {
    let mut rest = words.clone();
    let (Some(metric), Some(time), Some(value)) = (rest.next(), rest.next(), rest.next()) else {
        return Err(illegal(format!("not enough arguments (need least 4, got {})", words.count())));
    };
    if rest.clone().next().is_none() {
        return Err(illegal(format!("not enough arguments (need least 4, got {})", words.count())));
    }
    let tag_words = rest;
    let timestamp_ms = telnet_time(time)?;
    let value = parse_value(value).map_err(|e| {
        if e.starts_with("value is NaN or Infinite") { illegal(e) } else { format!("put: invalid value: {e}") }
    })?;
    let mut tags: Vec<(Cow<'a, str>, Cow<'a, str>)> = Vec::with_capacity(4);
    for word in tag_words {
        let Some((k, v)) = word.split_once('=').filter(|(k, v)| !k.is_empty() && !v.is_empty() && !v.contains('=')) else {
            return Err(illegal(format!("invalid tag: {word}")));
        };
        match tags.iter().find(|(key, _)| key == k) {
            Some((_, old)) if old == v => {}
            Some(_) => {
                let shown: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
                return Err(illegal(format!("duplicate tag: {word}, tags={{{}}}", shown.join(", "))));
            }
            None => tags.push((Cow::Borrowed(k), Cow::Borrowed(v))),
        }
    }
    tags.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    check_metric(metric).map_err(illegal)?;
    check_tag_pairs(tags.iter().map(|(k, v)| (k.as_ref(), v.as_ref())), tags.len(), max_tags).map_err(illegal)?;
    Ok(PointRef { metric: Cow::Borrowed(metric), timestamp_ms, value, tags })
}

#[cfg(test)]
mod tests {
    use super::super::point::Value;
    use super::*;

    fn err(line: &str) -> String {
        match parse_line(line, 8) {
            Command::Put(Err(e)) => e,
            other => panic!("{line}: {other:?}"),
        }
    }

    /// The digits-only fast path reads what `i64::from_str` reads.
    #[test]
    fn long_numbers() {
        for t in ["0", "7", "000123", "1700000000", "999999999999999999", "9223372036854775807", "-5", "+7"] {
            assert_eq!(parse_long(t), Ok(t.parse::<i64>().unwrap()), "{t}");
        }
        for t in ["", "12a", "-", "9223372036854775808", "1.5"] {
            assert!(parse_long(t).is_err(), "{t}");
        }
    }

    /// The byte split of ASCII lines gives what the character split gives.
    #[test]
    fn ascii_and_unicode_splits_agree() {
        let lines = [
            "put m 1700000000 1 host=a",
            "put\tm\t1700000000  2\x0Chost=a\r",
            "put m 1700000000 3 host=a\x0Bb",
            "put m 1700000000 4 host=\u{a0}b",
            "  put m 1700000000 5 host=a cpu=0 ",
            "put m 1700000000",
            "\x1f put m 1 2 a=b",
            "version",
            " \t ",
        ];
        for line in lines {
            assert_eq!(parse_line(line, 8), command(line.split_whitespace(), 8), "{line:?}");
        }
    }

    #[test]
    fn puts() {
        let Command::Put(Ok(p)) = parse_line("put sys.cpu.user 1700000000 42.5 host=web01 cpu=0", 8) else { panic!() };
        assert_eq!((p.timestamp_ms, p.value, p.tags.len()), (1_700_000_000_000, Value::Float(42.5), 2));
        let Command::Put(Ok(p)) = parse_line("put  m  1500000000.123 7   host=a ", 8) else { panic!() };
        assert_eq!((p.timestamp_ms, p.value), (1_500_000_000_123, Value::Int(7)));
        let Command::Put(Ok(p)) = parse_line("put m 1500000000.5 7 host=a host=a", 8) else { panic!() };
        assert_eq!(p.timestamp_ms, 1_500_000_000_500);
    }

    #[test]
    fn error_lines() {
        assert_eq!(err("put sys.cpu.user 1700000000 fortytwo host=web01"), "put: invalid value: Invalid character 'f' in fortytwo");
        assert_eq!(err("put m 1700000000 1"), "put: illegal argument: not enough arguments (need least 4, got 3)");
        assert_eq!(err("put m 17000x 1 a=b"), "put: invalid value: Invalid character 'x' in 17000x");
        assert_eq!(err("put m 0 1 a=b"), "put: illegal argument: invalid timestamp: 0");
        assert_eq!(err("put m -5 1 a=b"), "put: illegal argument: invalid timestamp: -5");
        assert_eq!(err("put m 1 1 ab"), "put: illegal argument: invalid tag: ab");
        assert_eq!(err("put m 1 1 a="), "put: illegal argument: invalid tag: a=");
        assert_eq!(err("put m 1 1 host=a host=b"), "put: illegal argument: duplicate tag: host=b, tags={host=a}");
        assert_eq!(err("put m 1 1e999 a=b"), "put: illegal argument: value is NaN or Infinite: 1e999");
        assert_eq!(err("put a:b 1 1 a=b"), "put: illegal argument: Invalid metric name (\"a:b\"): illegal character: :");
    }

    #[test]
    fn other_commands() {
        assert_eq!(parse_line("version", 8), Command::Version);
        assert_eq!(parse_line("  ", 8), Command::Empty);
        assert_eq!(parse_line("exit", 8), Command::Exit);
        assert_eq!(parse_line("bogus x", 8), Command::Unknown("unknown command: bogus.  Try `help'.".into()));
    }
}
