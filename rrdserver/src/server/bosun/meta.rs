//! Bosun's metadata (`bosun-api.md` §2.3, §3.3) and the index-only series
//! fed by `/api/index`, kept in an embedded redb database
//! (`DATA/.bosun.redb`; `DATA/bosun.redb` in the earlier layout is moved
//! there; a damaged one is moved aside and started afresh) with an in-memory copy for reads. Every write is
//! committed durably before the request is answered.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::RwLock;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde_json::{Value as Json, json};

/// File name of the metadata database in the data directory (a leading
/// `.`: no series name reaches it).
pub const FILE: &str = ".bosun.redb";
/// Its name in the earlier layout.
const LEGACY_FILE: &str = "bosun.redb";

/// metric -> {"desc","unit","rate","touched"}.
const METRICS: TableDefinition<&str, &str> = TableDefinition::new("metric_meta");
/// "{k=v,...}\u{1f}name" -> {"value","time"}.
const TAGS: TableDefinition<&str, &str> = TableDefinition::new("tag_meta");
/// canonical series text -> {"value","time_ms"}: series known only from `/api/index`.
const INDEXED: TableDefinition<&str, &str> = TableDefinition::new("indexed_series");

/// A metric's metadata (Bosun keeps it per metric name, tags ignored).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricMeta {
    /// `desc`.
    pub desc: String,
    /// `unit`.
    pub unit: String,
    /// `rate`: gauge, counter or rate.
    pub rate: String,
    /// Unix seconds of the last write.
    pub touched: i64,
}

/// One tag metadata record.
#[derive(Debug, Clone, PartialEq)]
pub struct TagMeta {
    /// The tag set, sorted by key.
    pub tags: Vec<(String, String)>,
    /// The name (`mac`, `addresses`, `uname`, ...).
    pub name: String,
    /// The value, as text.
    pub value: String,
    /// Unix seconds of the write.
    pub time: i64,
}

/// A metadata write as `/api/metadata/put` sends it.
#[derive(Debug, Clone, PartialEq)]
pub struct MetaWrite {
    /// `Metric` (required for desc, unit and rate).
    pub metric: String,
    /// `Tags`, sorted by key.
    pub tags: Vec<(String, String)>,
    /// `Name`.
    pub name: String,
    /// `Value`, as text (Go's default formatting for numbers).
    pub value: String,
}

#[derive(Debug, Default)]
struct Mem {
    metrics: HashMap<String, MetricMeta>,
    /// (tag set text, name) -> record.
    tags: BTreeMap<(String, String), TagMeta>,
}

/// The metadata database.
#[derive(Debug)]
pub struct MetaDb {
    db: Database,
    mem: RwLock<Mem>,
}

/// A storage failure, as text.
fn err(e: impl std::fmt::Display) -> String {
    format!("metadata storage: {e}")
}

/// `{k=v,k2=v2}`.
pub fn tagset_text(tags: &[(String, String)]) -> String {
    let mut out = String::new();
    crate::server::index::canonical(&mut out, "", tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    out
}

fn parse_tagset(text: &str) -> Vec<(String, String)> {
    text.trim_start_matches('{')
        .trim_end_matches('}')
        .split(',')
        .filter_map(|p| p.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect()
}

impl MetaDb {
    /// Opens (creating) `DATA/.bosun.redb` and loads it (see the module
    /// documentation for the earlier layout and a damaged file).
    pub fn open(dir: &Path) -> Result<MetaDb, String> {
        let path = dir.join(FILE);
        let legacy = dir.join(LEGACY_FILE);
        if !path.exists() && std::fs::symlink_metadata(&legacy).is_ok_and(|m| m.is_file()) {
            std::fs::rename(&legacy, &path).and_then(|()| rrdcore::sync::dir(dir)).map_err(|e| format!("moving {} to {}: {e}", legacy.display(), path.display()))?;
        }
        let db = match Database::create(&path) {
            Err(redb::DatabaseError::Storage(redb::StorageError::Corrupted(why))) => {
                let aside = dir.join(format!("{FILE}.corrupt"));
                std::fs::rename(&path, &aside).and_then(|()| rrdcore::sync::dir(dir)).map_err(|e| format!("moving the damaged {} aside: {e}", path.display()))?;
                tracing::error!(path = %aside.display(), reason = %why, "the metadata database is damaged: moved aside, starting afresh");
                Database::create(&path).map_err(err)?
            }
            other => other.map_err(err)?,
        };
        {
            let w = db.begin_write().map_err(err)?;
            w.open_table(METRICS).map_err(err)?;
            w.open_table(TAGS).map_err(err)?;
            w.open_table(INDEXED).map_err(err)?;
            w.commit().map_err(err)?;
        }
        let mut mem = Mem::default();
        let r = db.begin_read().map_err(err)?;
        for entry in r.open_table(METRICS).map_err(err)?.iter().map_err(err)? {
            let (k, v) = entry.map_err(err)?;
            let j: Json = serde_json::from_str(v.value()).unwrap_or_default();
            let text = |f: &str| j.get(f).and_then(Json::as_str).unwrap_or_default().to_owned();
            let meta = MetricMeta { desc: text("desc"), unit: text("unit"), rate: text("rate"), touched: j.get("touched").and_then(Json::as_i64).unwrap_or(0) };
            mem.metrics.insert(k.value().to_owned(), meta);
        }
        for entry in r.open_table(TAGS).map_err(err)?.iter().map_err(err)? {
            let (k, v) = entry.map_err(err)?;
            let Some((set, name)) = k.value().split_once('\u{1f}') else { continue };
            let j: Json = serde_json::from_str(v.value()).unwrap_or_default();
            let rec = TagMeta {
                tags: parse_tagset(set),
                name: name.to_owned(),
                value: j.get("value").and_then(Json::as_str).unwrap_or_default().to_owned(),
                time: j.get("time").and_then(Json::as_i64).unwrap_or(0),
            };
            mem.tags.insert((set.to_owned(), name.to_owned()), rec);
        }
        Ok(MetaDb { db, mem: RwLock::new(mem) })
    }

    /// Applies metadata writes at `now` (Unix seconds) in one durable commit.
    pub fn put(&self, writes: &[MetaWrite], now: i64) -> Result<(), String> {
        let mut mem = self.mem.write().map_err(err)?;
        let w = self.db.begin_write().map_err(err)?;
        {
            let mut metrics = w.open_table(METRICS).map_err(err)?;
            let mut tags = w.open_table(TAGS).map_err(err)?;
            for m in writes {
                if matches!(m.name.as_str(), "desc" | "unit" | "rate") {
                    let entry = mem.metrics.entry(m.metric.clone()).or_default();
                    match m.name.as_str() {
                        "desc" => entry.desc.clone_from(&m.value),
                        "unit" => entry.unit.clone_from(&m.value),
                        _ => entry.rate.clone_from(&m.value),
                    }
                    entry.touched = now;
                    let j = json!({"desc": entry.desc, "unit": entry.unit, "rate": entry.rate, "touched": now}).to_string();
                    metrics.insert(m.metric.as_str(), j.as_str()).map_err(err)?;
                } else {
                    let set = tagset_text(&m.tags);
                    let key = format!("{set}\u{1f}{}", m.name);
                    let j = json!({"value": m.value, "time": now}).to_string();
                    tags.insert(key.as_str(), j.as_str()).map_err(err)?;
                    let rec = TagMeta { tags: m.tags.clone(), name: m.name.clone(), value: m.value.clone(), time: now };
                    mem.tags.insert((set, m.name.clone()), rec);
                }
            }
        }
        w.commit().map_err(err)
    }

    /// A metric's metadata.
    pub fn metric(&self, metric: &str) -> Option<MetricMeta> {
        self.mem.read().ok()?.metrics.get(metric).cloned()
    }

    /// Every metric with metadata.
    pub fn metrics(&self) -> Vec<(String, MetricMeta)> {
        self.mem.read().map(|m| m.metrics.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default()
    }

    /// Tag metadata whose tag set contains every pair of `pairs`.
    pub fn tags_containing(&self, pairs: &[(&str, &str)]) -> Vec<TagMeta> {
        let Ok(mem) = self.mem.read() else { return Vec::new() };
        mem.tags
            .values()
            .filter(|r| pairs.iter().all(|(k, v)| r.tags.iter().any(|(rk, rv)| rk == k && rv == v)))
            .cloned()
            .collect()
    }

    /// Remembers series seen only through `/api/index` (their last point) in one durable commit.
    pub fn put_indexed(&self, series: &[(String, f64, u64)]) -> Result<(), String> {
        if series.is_empty() {
            return Ok(());
        }
        let w = self.db.begin_write().map_err(err)?;
        {
            let mut t = w.open_table(INDEXED).map_err(err)?;
            for (text, value, time_ms) in series {
                let j = json!({"value": value, "time_ms": time_ms}).to_string();
                t.insert(text.as_str(), j.as_str()).map_err(err)?;
            }
        }
        w.commit().map_err(err)
    }

    /// Every series remembered from `/api/index`: (text, last value, time ms).
    pub fn indexed(&self) -> Result<Vec<(String, f64, u64)>, String> {
        let r = self.db.begin_read().map_err(err)?;
        let t = r.open_table(INDEXED).map_err(err)?;
        let mut out = Vec::new();
        for entry in t.iter().map_err(err)? {
            let (k, v) = entry.map_err(err)?;
            let j: Json = serde_json::from_str(v.value()).unwrap_or_default();
            out.push((k.value().to_owned(), j.get("value").and_then(Json::as_f64).unwrap_or(f64::NAN), j.get("time_ms").and_then(Json::as_u64).unwrap_or(0)));
        }
        Ok(out)
    }
}

/// Go's `%v` of a JSON value decoded into `interface{}` (numbers are
/// float64): how Bosun turns a metadata value into text, so `1000000000`
/// becomes `1e+09`.
pub fn go_text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Null => "<nil>".into(),
        Json::Bool(b) => b.to_string(),
        Json::Number(n) => go_float(n.as_f64().unwrap_or(f64::NAN)),
        other => other.to_string(),
    }
}

/// `strconv.FormatFloat(f, 'g', -1, 64)` with `%v`'s exponent threshold:
/// the shortest digits, exponent form when the exponent is < -4 or >= 6
/// (Go uses precision 6 for that decision when printing shortest).
pub fn go_float(f: f64) -> String {
    if !f.is_finite() {
        return if f.is_nan() { "NaN".into() } else if f > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    // Shortest round-trip digits and exponent, from Rust's `{:e}` form.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if negative { "-" } else { "" };
    if !(-4..6).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() { String::new() } else { format!(".{rest}") };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{frac}e{esign}{:02}", exp.unsigned_abs());
    }
    format!("{sign}{}", plain(&digits, exp))
}

/// Digits d1d2d3... with the decimal point after position exp+1.
fn plain(digits: &str, exp: i32) -> String {
    let point = exp + 1;
    if point <= 0 {
        return format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize));
    }
    let point = point as usize;
    if digits.len() <= point {
        return format!("{digits}{}", "0".repeat(point - digits.len()));
    }
    let (a, b) = digits.split_at(point);
    format!("{a}.{b}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_formatting() {
        // Go: fmt.Sprint(float64(x)).
        assert_eq!(go_float(1_000_000_000.0), "1e+09");
        assert_eq!(go_float(100.0), "100");
        assert_eq!(go_float(123_456.0), "123456");
        assert_eq!(go_float(1_234_567.0), "1.234567e+06");
        assert_eq!(go_float(0.5), "0.5");
        assert_eq!(go_float(0.0001), "0.0001");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(go_float(-2.5), "-2.5");
        assert_eq!(go_text(&json!("x")), "x");
        assert_eq!(go_text(&json!(true)), "true");
    }

    #[test]
    fn persists() {
        let dir = tempfile::tempdir().unwrap();
        let db = MetaDb::open(dir.path()).unwrap();
        let tags = vec![("host".to_owned(), "vm".to_owned()), ("iface".to_owned(), "eth0".to_owned())];
        db.put(
            &[
                MetaWrite { metric: "os.cpu".into(), tags: vec![], name: "rate".into(), value: "counter".into() },
                MetaWrite { metric: "os.cpu".into(), tags: vec![], name: "unit".into(), value: "percent".into() },
                MetaWrite { metric: String::new(), tags: tags.clone(), name: "mac".into(), value: "02FC00000001".into() },
            ],
            1_795_318_989,
        )
        .unwrap();
        db.put_indexed(&[("m{h=a}".into(), 1.5, 1_700_000_000_000)]).unwrap();
        drop(db);
        let db = MetaDb::open(dir.path()).unwrap();
        assert_eq!(db.metric("os.cpu").unwrap(), MetricMeta { desc: String::new(), unit: "percent".into(), rate: "counter".into(), touched: 1_795_318_989 });
        let found = db.tags_containing(&[("host", "vm"), ("iface", "eth0")]);
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].name.as_str(), found[0].value.as_str(), found[0].tags.clone()), ("mac", "02FC00000001", tags));
        assert!(db.tags_containing(&[("host", "other")]).is_empty());
        assert_eq!(db.indexed().unwrap(), vec![("m{h=a}".to_owned(), 1.5, 1_700_000_000_000)]);
    }
}
