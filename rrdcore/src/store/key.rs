//! Series keys (a metric name and a tag set) and the file names they map to.
//!
//! A series lives at `DATA/<metric>/<tags>.rrd`, readable by a person:
//! `os.cpu/host=ny-web01,type=user.rrd`; a series without tags is `_.rrd`.
//! Bytes outside `[A-Za-z0-9._-]` (and a leading `.`) are written `%XX`, so
//! `=` and `,` only ever separate tags. A name part longer than 200 bytes is
//! cut and suffixed `~` plus a 64-bit FNV-1a hash of the whole; the full key
//! is then kept beside the file in `<name>.key`. The directory alone is
//! enough to list every series again.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Longest file-name part written as is; longer ones are hashed.
const MAX_COMPONENT: usize = 200;
/// How much of a long component is kept before the hash.
const HASHED_PREFIX: usize = 100;
/// File name of the series with no tags.
const NO_TAGS: &str = "_";
/// Extension of database files.
pub(crate) const EXTENSION: &str = "rrd";
/// Extension of the file holding a hashed series' full key.
pub(crate) const KEY_EXTENSION: &str = "key";

/// A series: a metric name and a set of tags (each key once, kept sorted).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    metric: String,
    tags: Vec<(String, String)>,
}

fn bad(value: &str, reason: &'static str) -> Error {
    Error::Schema {
        field: "series key",
        value: value.to_owned(),
        reason,
    }
}

impl SeriesKey {
    /// A series key; tags may come in any order. Names must be non-empty and
    /// free of control characters, and a tag key may appear only once.
    ///
    /// ```
    /// let k = rrdcore::SeriesKey::new("os.cpu", [("type", "user"), ("host", "web1")]).unwrap();
    /// assert_eq!(k.to_string(), "os.cpu{host=web1,type=user}");
    /// ```
    pub fn new<K: Into<String>, V: Into<String>>(
        metric: impl Into<String>,
        tags: impl IntoIterator<Item = (K, V)>,
    ) -> Result<SeriesKey> {
        let metric = metric.into();
        check_name(&metric, "the metric name must be non-empty, without control characters")?;
        let mut tags: Vec<(String, String)> = tags.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        for (k, v) in &tags {
            check_name(k, "tag keys must be non-empty, without control characters")?;
            check_name(v, "tag values must be non-empty, without control characters")?;
        }
        tags.sort();
        if tags.windows(2).any(|w| matches!(w, [a, b] if a.0 == b.0)) {
            return Err(bad(&metric, "a tag key appears twice"));
        }
        Ok(SeriesKey { metric, tags })
    }

    /// The metric name.
    pub fn metric(&self) -> &str {
        &self.metric
    }

    /// The tags, sorted by key.
    pub fn tags(&self) -> &[(String, String)] {
        &self.tags
    }

    /// The value of tag `key`.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The escaped, unhashed relative name `metric/tags`: unique per key, and
    /// the key the store's index uses.
    pub(crate) fn escaped(&self) -> String {
        let mut out = String::with_capacity(self.metric.len() + 32);
        self.escape_into(&mut out);
        out
    }

    /// Writes [`SeriesKey::escaped`] into `out` (cleared first), without allocating
    /// when `out` has room.
    pub(crate) fn escape_into(&self, out: &mut String) {
        out.clear();
        escape_to(&self.metric, out);
        out.push('/');
        self.escape_tags_into(out);
    }

    fn escaped_tags(&self) -> String {
        let mut out = String::new();
        self.escape_tags_into(&mut out);
        out
    }

    fn escape_tags_into(&self, out: &mut String) {
        if self.tags.is_empty() {
            out.push_str(NO_TAGS);
            return;
        }
        for (i, (k, v)) in self.tags.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            escape_to(k, out);
            out.push('=');
            escape_to(v, out);
        }
    }

    /// Where the series' file lives under `dir`, and whether its name is hashed.
    pub(crate) fn path_in(&self, dir: &Path) -> (PathBuf, bool) {
        let (metric, h1) = shorten(escape(&self.metric));
        let (tags, h2) = shorten(self.escaped_tags());
        (dir.join(metric).join(format!("{tags}.{EXTENSION}")), h1 || h2)
    }

    /// Reads a key back from its escaped relative name (`metric/tags`).
    pub(crate) fn from_escaped(text: &str) -> Result<SeriesKey> {
        let (metric, tags) = text.split_once('/').ok_or_else(|| bad(text, "expected metric/tags"))?;
        let metric = unescape(metric).ok_or_else(|| bad(text, "bad escape in the metric"))?;
        let mut pairs = Vec::new();
        if tags != NO_TAGS {
            for part in tags.split(',') {
                let (k, v) = part.split_once('=').ok_or_else(|| bad(text, "a tag without ="))?;
                let k = unescape(k).ok_or_else(|| bad(text, "bad escape in a tag key"))?;
                let v = unescape(v).ok_or_else(|| bad(text, "bad escape in a tag value"))?;
                pairs.push((k, v));
            }
        }
        SeriesKey::new(metric, pairs)
    }
}

impl fmt::Display for SeriesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{{", self.metric)?;
        for (i, (k, v)) in self.tags.iter().enumerate() {
            write!(f, "{}{k}={v}", if i == 0 { "" } else { "," })?;
        }
        write!(f, "}}")
    }
}

fn check_name(s: &str, reason: &'static str) -> Result<()> {
    if s.is_empty() || s.chars().any(char::is_control) {
        return Err(bad(s, reason));
    }
    Ok(())
}

fn is_plain(b: u8) -> bool {
    PLAIN[usize::from(b)]
}

/// Which bytes a file name keeps as they are: `[A-Za-z0-9._-]`. A table,
/// because every lookup of a series by key escapes its names.
static PLAIN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        #[expect(clippy::cast_possible_truncation, reason = "b < 256")]
        let byte = b as u8;
        table[b] = byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-');
        b += 1;
    }
    table
};

/// Escapes a name for use in a file name.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape_to(s, &mut out);
    out
}

fn escape_to(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    // The usual name has nothing to escape: one tight scan, one copy (a
    // third of the loop's instructions below).
    if s.as_bytes().first() != Some(&b'.') && s.bytes().all(is_plain) {
        out.push_str(s);
        return;
    }
    // Runs of plain bytes (ASCII, so every run starts and ends on a
    // character boundary) are copied whole.
    let mut plain_from = 0;
    for (i, b) in s.bytes().enumerate() {
        if is_plain(b) && !(i == 0 && b == b'.') {
            continue;
        }
        out.push_str(s.get(plain_from..i).unwrap_or_default());
        out.push('%');
        out.push(char::from(HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0')));
        out.push(char::from(HEX.get(usize::from(b & 15)).copied().unwrap_or(b'0')));
        plain_from = i + 1;
    }
    out.push_str(s.get(plain_from..).unwrap_or_default());
}

fn unescape(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else if is_plain(b) {
            out.push(b);
            i += 1;
        } else {
            return None;
        }
    }
    String::from_utf8(out).ok()
}

/// FNV-1a, 64 bits: a stable hash for long file names.
fn fnv1a(s: &str) -> u64 {
    s.bytes()
        .fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// Cuts a long component to a prefix and a hash of the whole.
fn shorten(component: String) -> (String, bool) {
    if component.len() <= MAX_COMPONENT {
        return (component, false);
    }
    let mut cut = HASHED_PREFIX;
    while !component.is_char_boundary(cut) {
        cut -= 1;
    }
    let prefix = component.get(..cut).unwrap_or_default();
    (format!("{prefix}~{:016x}", fnv1a(&component)), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readable_names() {
        let k = SeriesKey::new("os.cpu", [("type", "user"), ("host", "ny-web01")]).unwrap();
        let (p, hashed) = k.path_in(Path::new("d"));
        assert_eq!(p, Path::new("d/os.cpu/host=ny-web01,type=user.rrd"));
        assert!(!hashed);
        let k = SeriesKey::new("proc.loadavg.1m", Vec::<(String, String)>::new()).unwrap();
        assert_eq!(k.path_in(Path::new("d")).0, Path::new("d/proc.loadavg.1m/_.rrd"));
    }

    #[test]
    fn escaping_round_trips() {
        for (m, tags) in [
            ("..", vec![("a=b", "c,d")]),
            ("a/b c%", vec![("ключ", "значение"), ("_", "x")]),
            (".hidden", vec![]),
        ] {
            let k = SeriesKey::new(m, tags).unwrap();
            let e = k.escaped();
            assert!(!e.split('/').next().unwrap().starts_with('.'), "{e}");
            assert_eq!(SeriesKey::from_escaped(&e).unwrap(), k, "{e}");
        }
    }

    /// File names must never change: the escaping is checked byte for byte.
    #[test]
    fn escaping_is_exact() {
        for (raw, want) in [
            ("os.cpu", "os.cpu"),
            ("a/b c%.é", "a%2Fb%20c%25.%C3%A9"),
            (".x", "%2Ex"),
            ("..", "%2E."),
            ("ключ", "%D0%BA%D0%BB%D1%8E%D1%87"),
            ("", ""),
            ("A-z_9", "A-z_9"),
        ] {
            let mut out = String::from("kept/");
            escape_to(raw, &mut out);
            assert_eq!(out, format!("kept/{want}"), "{raw:?}");
        }
    }

    #[test]
    fn long_names_are_hashed() {
        let long = "x".repeat(300);
        let k = SeriesKey::new("m", [("t", long.as_str())]).unwrap();
        let (p, hashed) = k.path_in(Path::new("d"));
        assert!(hashed);
        let name = p.file_name().unwrap().to_str().unwrap();
        assert!(name.len() < 130 && name.contains('~'), "{name}");
        let other = SeriesKey::new("m", [("t", format!("{long}y"))]).unwrap();
        assert_ne!(other.path_in(Path::new("d")).0, p);
    }

    #[test]
    fn invalid_keys() {
        assert!(SeriesKey::new("", Vec::<(String, String)>::new()).is_err());
        assert!(SeriesKey::new("m", [("a", "1"), ("a", "2")]).is_err());
        assert!(SeriesKey::new("m", [("a", "")]).is_err());
        assert!(SeriesKey::new("m\n", Vec::<(String, String)>::new()).is_err());
    }
}
