//! The `/api/put` body (`opentsdb-api.md` §2.1-2.2): one object or an array
//! of them. Type errors fail the whole request, as in OpenTSDB; the semantic
//! checks fail single points, in OpenTSDB's order and with its texts.

use std::collections::BTreeMap;

use serde_json::{Map, Value as Json};

use super::point::{DataPoint, Value, check_metric, check_tags, parse_value, timestamp_ms};

/// Why a whole request was refused (a 400 envelope; nothing stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// An empty body.
    Empty,
    /// The first byte is neither `{` nor `[`.
    NotObjectOrArray,
    /// Malformed JSON or a field of the wrong type; the details.
    Json(String),
    /// `[]`.
    NoPoints,
}

impl BodyError {
    /// The envelope's message.
    pub fn message(&self) -> &'static str {
        match self {
            BodyError::Empty => "Missing request content",
            BodyError::NotObjectOrArray => "The JSON must start as an object or an array",
            BodyError::Json(_) => "Unable to parse the given JSON",
            BodyError::NoPoints => "No datapoints found in content",
        }
    }

    /// The envelope's details, when there are any.
    pub fn details(&self) -> Option<&str> {
        match self {
            BodyError::Json(d) => Some(d),
            _ => None,
        }
    }
}

/// A point refused on its own: the point as received (value as a string,
/// absent fields left out) and OpenTSDB's error text.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    /// The point as it came, for the `details` answer.
    pub datapoint: Json,
    /// Why.
    pub error: String,
}

/// Decodes a (decompressed) body: each point validated, or rejected alone.
pub fn parse(body: &[u8], max_tags: usize) -> Result<Vec<Result<DataPoint, Rejected>>, BodyError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace()).ok_or(BodyError::Empty)?;
    if !matches!(first, b'{' | b'[') {
        return Err(BodyError::NotObjectOrArray);
    }
    let json: Json = serde_json::from_slice(body).map_err(|e| BodyError::Json(e.to_string()))?;
    let items = match json {
        Json::Array(items) if items.is_empty() => return Err(BodyError::NoPoints),
        Json::Array(items) => items,
        other => vec![other],
    };
    let raw: Vec<Option<Raw>> = items
        .iter()
        .map(|item| match item {
            Json::Null => Ok(None),
            Json::Object(fields) => Raw::from_json(fields).map(Some),
            other => Err(BodyError::Json(format!("expected a data point object, found {other}"))),
        })
        .collect::<Result<_, _>>()?;
    Ok(raw.into_iter().map(|r| check(r, max_tags)).collect())
}

/// A point's fields after the type checks.
#[derive(Debug, Default)]
struct Raw {
    metric: Option<String>,
    timestamp: Option<i64>,
    /// The value's text, and whether it came as a JSON number.
    value: Option<(String, Option<Value>)>,
    tags: Option<BTreeMap<String, String>>,
}

fn type_error(field: &str, found: &Json) -> BodyError {
    BodyError::Json(format!("field '{field}': unexpected {found}"))
}

impl Raw {
    fn from_json(f: &Map<String, Json>) -> Result<Raw, BodyError> {
        let mut raw = Raw::default();
        match f.get("metric") {
            None | Some(Json::Null) => {}
            Some(Json::String(s)) => raw.metric = Some(s.clone()),
            Some(other) => return Err(type_error("metric", other)),
        }
        match f.get("timestamp") {
            None | Some(Json::Null) => {}
            Some(Json::Number(n)) => {
                // Floats are truncated; integers beyond i64 are out of range.
                #[expect(clippy::cast_possible_truncation, reason = "OpenTSDB truncates a float timestamp")]
                let t = n.as_i64().or_else(|| n.as_f64().filter(|f| f.abs() < 9.2e18).map(|f| f as i64));
                raw.timestamp = Some(t.ok_or_else(|| type_error("timestamp", &Json::Number(n.clone())))?);
            }
            Some(Json::String(s)) => {
                raw.timestamp = Some(s.trim().parse().map_err(|_| type_error("timestamp", &Json::String(s.clone())))?);
            }
            Some(other) => return Err(type_error("timestamp", other)),
        }
        match f.get("value") {
            None | Some(Json::Null) => {}
            Some(Json::String(s)) => raw.value = Some((s.clone(), None)),
            Some(Json::Number(n)) => {
                let typed = if let Some(i) = n.as_i64() {
                    Some(Value::Int(i))
                } else if n.is_u64() {
                    None // beyond i64: not a number OpenTSDB accepts
                } else {
                    n.as_f64().filter(|f| f.is_finite()).map(Value::Float)
                };
                raw.value = Some((n.to_string(), typed));
            }
            Some(other) => return Err(type_error("value", other)),
        }
        match f.get("tags") {
            None | Some(Json::Null) => {}
            Some(Json::Object(m)) => {
                let mut tags = BTreeMap::new();
                for (k, v) in m {
                    let v = match v {
                        Json::String(s) => s.clone(),
                        Json::Number(n) => n.to_string(),
                        Json::Bool(b) => b.to_string(),
                        other => return Err(type_error("tags", other)),
                    };
                    tags.insert(k.clone(), v);
                }
                raw.tags = Some(tags);
            }
            Some(other) => return Err(type_error("tags", other)),
        }
        Ok(raw)
    }

    /// The point as received, for error details.
    fn echo(&self) -> Json {
        let mut m = Map::new();
        if let Some(metric) = &self.metric {
            m.insert("metric".into(), Json::String(metric.clone()));
        }
        if let Some(t) = self.timestamp {
            m.insert("timestamp".into(), Json::from(t));
        }
        if let Some((text, _)) = &self.value {
            m.insert("value".into(), Json::String(text.clone()));
        }
        if let Some(tags) = &self.tags {
            let t: Map<String, Json> = tags.iter().map(|(k, v)| (k.clone(), Json::String(v.clone()))).collect();
            m.insert("tags".into(), Json::Object(t));
        }
        Json::Object(m)
    }
}

/// The per-point checks, in OpenTSDB's order.
fn check(raw: Option<Raw>, max_tags: usize) -> Result<DataPoint, Rejected> {
    let Some(raw) = raw else {
        return Err(Rejected { datapoint: Json::Null, error: "Unexpected null datapoint encountered in set.".into() });
    };
    let reject = |error: String| Rejected { datapoint: raw.echo(), error };
    let metric = raw.metric.clone().filter(|m| !m.is_empty()).ok_or_else(|| reject("Metric name was empty".into()))?;
    let t = raw.timestamp.filter(|t| *t > 0).ok_or_else(|| reject("Invalid timestamp".into()))?;
    let (text, typed) = raw.value.clone().filter(|(t, _)| !t.is_empty()).ok_or_else(|| reject("Empty value".into()))?;
    let tags = raw.tags.clone().filter(|t| !t.is_empty()).ok_or_else(|| reject("Missing tags".into()))?;
    let value = match typed {
        Some(v) => v,
        None => parse_value(&text).map_err(|e| {
            if e.starts_with("value is NaN or Infinite") { reject(e) } else { reject("Unable to parse value to a number".into()) }
        })?,
    };
    check_metric(&metric).map_err(reject)?;
    check_tags(&tags, max_tags).map_err(reject)?;
    let timestamp_ms = timestamp_ms(t).map_err(reject)?;
    Ok(DataPoint { metric, timestamp_ms, value, tags })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(body: &str) -> Result<DataPoint, Rejected> {
        parse(body.as_bytes(), 8).unwrap().remove(0)
    }

    #[test]
    fn bodies() {
        let p = one(r#"{"metric":"sys.if.bytes","timestamp":1700000000,"value":1234,"tags":{"host":"web01","iface":"eth0"}}"#).unwrap();
        assert_eq!((p.timestamp_ms, p.value), (1_700_000_000_000, Value::Int(1234)));
        let all = parse(br#"[{"metric":"sys.load1","timestamp":1700000000123,"value":"0.75","tags":{"host":"web01"}},
            {"metric":"sys.load1","timestamp":"1700000000","value":3.5e-2,"tags":{"host":"web02"}}]"#, 8).unwrap();
        assert_eq!(all[0].as_ref().unwrap().value, Value::Float(0.75));
        assert_eq!(all[0].as_ref().unwrap().timestamp_ms, 1_700_000_000_123);
        assert_eq!(all[1].as_ref().unwrap().value, Value::Float(0.035));
        let p = one(r#"{"metric":"m","timestamp":1700000000.9,"value":1,"tags":{"cpu":0,"host":"a","host":"b"}}"#).unwrap();
        assert_eq!(p.timestamp_ms, 1_700_000_000_000);
        assert_eq!(p.tags.get("host").map(String::as_str), Some("b"), "the last key wins");
        assert_eq!(p.tags.get("cpu").map(String::as_str), Some("0"));
    }

    #[test]
    fn whole_request_failures() {
        assert_eq!(parse(b"  ", 8).unwrap_err(), BodyError::Empty);
        assert_eq!(parse(b"hello", 8).unwrap_err(), BodyError::NotObjectOrArray);
        assert_eq!(parse(b"[]", 8).unwrap_err(), BodyError::NoPoints);
        assert!(matches!(parse(b"{\"metric\":", 8).unwrap_err(), BodyError::Json(_)));
        assert!(matches!(parse(br#"{"metric":"m","tags":["a"]}"#, 8).unwrap_err(), BodyError::Json(_)));
        assert!(matches!(parse(br#"{"metric":"m","value":true}"#, 8).unwrap_err(), BodyError::Json(_)));
        assert!(matches!(parse(b"[1]", 8).unwrap_err(), BodyError::Json(_)));
    }

    #[test]
    fn per_point_errors_in_order() {
        let err = |body: &str| one(body).unwrap_err().error;
        assert_eq!(parse(b"[null]", 8).unwrap()[0].as_ref().unwrap_err().error, "Unexpected null datapoint encountered in set.");
        assert_eq!(err(r#"{"timestamp":1,"value":1,"tags":{"a":"b"}}"#), "Metric name was empty");
        assert_eq!(err(r#"{"metric":"m","timestamp":0,"value":1,"tags":{"a":"b"}}"#), "Invalid timestamp");
        assert_eq!(err(r#"{"metric":"m","timestamp":1,"value":"","tags":{"a":"b"}}"#), "Empty value");
        assert_eq!(err(r#"{"metric":"m","timestamp":1,"value":1,"tags":{}}"#), "Missing tags");
        assert_eq!(err(r#"{"metric":"m","timestamp":1,"value":"NaN","tags":{"a":"b"}}"#), "Unable to parse value to a number");
        assert_eq!(err(r#"{"metric":"m","timestamp":1,"value":"1e999","tags":{"a":"b"}}"#), "value is NaN or Infinite: 1e999");
        assert_eq!(err(r#"{"metric":"a b","timestamp":1,"value":1,"tags":{"a":"b"}}"#), "Invalid metric name (\"a b\"): illegal character:  ");
        let r = one(r#"{"metric":"sys.load1","timestamp":1700000000,"value":"NaN","tags":{"host":"web01"}}"#).unwrap_err();
        assert_eq!(r.datapoint, serde_json::json!({"metric":"sys.load1","timestamp":1700000000,"value":"NaN","tags":{"host":"web01"}}));
        let r = one(r#"{"metric":"m","value":12,"tags":{"a":"b"}}"#).unwrap_err();
        assert_eq!(r.datapoint, serde_json::json!({"metric":"m","value":"12","tags":{"a":"b"}}));
    }
}
