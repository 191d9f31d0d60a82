//! The `/api/put` body (`opentsdb-api.md` §2.1-2.2): one object or an array
//! of them. Type errors fail the whole request, as in OpenTSDB; the semantic
//! checks fail single points, in OpenTSDB's order and with its texts.

use std::borrow::Cow;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value as Json};

use super::point::{DataPoint, Value, check_metric, check_tag_pairs, parse_value, timestamp_ms};

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

/// A validated point that borrows its names from the request body.
#[derive(Debug, Clone, PartialEq)]
pub struct PointRef<'a> {
    /// The metric name.
    pub metric: Cow<'a, str>,
    /// Milliseconds since the epoch.
    pub timestamp_ms: u64,
    /// The value.
    pub value: Value,
    /// Tag pairs, sorted by key, each key once (the last given wins).
    pub tags: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl PointRef<'_> {
    /// The owned form.
    pub fn to_owned_point(&self) -> DataPoint {
        DataPoint {
            metric: self.metric.clone().into_owned(),
            timestamp_ms: self.timestamp_ms,
            value: self.value,
            tags: self.tags.iter().map(|(k, v)| (k.clone().into_owned(), v.clone().into_owned())).collect(),
        }
    }
}

/// Decodes a (decompressed) body: each point validated, or rejected alone.
pub fn parse(body: &[u8], max_tags: usize) -> Result<Vec<Result<DataPoint, Rejected>>, BodyError> {
    Ok(parse_borrowed(body, max_tags)?.into_iter().map(|r| r.map(|p| p.to_owned_point())).collect())
}

/// As [`parse`], without copying names out of the body (the server's path).
pub fn parse_borrowed(body: &[u8], max_tags: usize) -> Result<Vec<Result<PointRef<'_>, Rejected>>, BodyError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace()).ok_or(BodyError::Empty)?;
    if !matches!(first, b'{' | b'[') {
        return Err(BodyError::NotObjectOrArray);
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let Body(items) = Body::deserialize(&mut de).map_err(|e| BodyError::Json(e.to_string()))?;
    de.end().map_err(|e| BodyError::Json(e.to_string()))?;
    if items.is_empty() {
        return Err(BodyError::NoPoints);
    }
    Ok(items.into_iter().map(|r| check(r, max_tags)).collect())
}

/// A JSON scalar as received.
#[derive(Debug, Clone, PartialEq)]
enum Scalar<'a> {
    Null,
    Str(Cow<'a, str>),
    Int(i64),
    /// An integer beyond i64.
    Big(u64),
    Float(f64),
    Bool(bool),
    /// An object or array where a scalar belongs.
    Nested(&'static str),
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Null)
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<Self::Value, E> {
                Ok(Scalar::Bool(b))
            }
            fn visit_i64<E>(self, i: i64) -> Result<Self::Value, E> {
                Ok(Scalar::Int(i))
            }
            fn visit_u64<E>(self, u: u64) -> Result<Self::Value, E> {
                Ok(i64::try_from(u).map_or(Scalar::Big(u), Scalar::Int))
            }
            fn visit_f64<E>(self, f: f64) -> Result<Self::Value, E> {
                Ok(Scalar::Float(f))
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(s.to_owned())))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::Nested("object"))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar::Nested("array"))
            }
        }
        d.deserialize_any(V)
    }
}

impl Scalar<'_> {
    fn show(&self) -> String {
        match self {
            Scalar::Null => "null".into(),
            Scalar::Str(s) => format!("string \"{s}\""),
            Scalar::Int(i) => i.to_string(),
            Scalar::Big(u) => u.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Bool(b) => b.to_string(),
            Scalar::Nested(kind) => (*kind).to_owned(),
        }
    }
}

/// A key, borrowed from the body when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(s.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

/// A `value` field.
#[derive(Debug, Clone, PartialEq)]
enum RawValue<'a> {
    /// A string, parsed by OpenTSDB's rules.
    Text(Cow<'a, str>),
    /// A JSON number that is a valid value.
    Number(Value),
    /// A JSON number OpenTSDB refuses (an integer beyond i64), as text.
    Refused(u64),
}

impl RawValue<'_> {
    fn text(&self) -> String {
        match self {
            RawValue::Text(t) => t.to_string(),
            RawValue::Number(Value::Int(i)) => i.to_string(),
            RawValue::Number(Value::Float(f)) => f.to_string(),
            RawValue::Refused(u) => u.to_string(),
        }
    }
}

/// A point's fields after the type checks.
#[derive(Debug, Default)]
struct Raw<'a> {
    metric: Option<Cow<'a, str>>,
    timestamp: Option<i64>,
    /// The value as it came: text, or a JSON number.
    value: Option<RawValue<'a>>,
    tags: Option<Vec<(Cow<'a, str>, Cow<'a, str>)>>,
}

fn type_error<E: serde::de::Error>(field: &str, found: &Scalar<'_>) -> E {
    E::custom(format!("field '{field}': unexpected {}", found.show()))
}

/// The `tags` object: string (or number, as text) values.
struct Tags<'a>(Option<Vec<(Cow<'a, str>, Cow<'a, str>)>>);

impl<'de> Deserialize<'de> for Tags<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Tags<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("field 'tags': an object of tag names to values")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Tags(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut tags: Vec<(Cow<'de, str>, Cow<'de, str>)> = Vec::with_capacity(4);
                while let Some(Key(k)) = m.next_key::<Key<'de>>()? {
                    let v = match m.next_value::<Scalar<'de>>()? {
                        Scalar::Str(s) => s,
                        Scalar::Int(i) => Cow::Owned(i.to_string()),
                        Scalar::Big(u) => Cow::Owned(u.to_string()),
                        Scalar::Float(f) => Cow::Owned(f.to_string()),
                        Scalar::Bool(b) => Cow::Owned(b.to_string()),
                        other => return Err(type_error("tags", &other)),
                    };
                    // In JSON the last of repeated keys wins.
                    match tags.iter_mut().find(|(key, _)| *key == k) {
                        Some(slot) => slot.1 = v,
                        None => tags.push((k, v)),
                    }
                }
                tags.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                Ok(Tags(Some(tags)))
            }
        }
        d.deserialize_any(V)
    }
}

/// One element of the body: a point object, or null.
struct Item<'a>(Option<Raw<'a>>);

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a data point object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
        let mut raw = Raw::default();
        while let Some(Key(key)) = m.next_key::<Key<'de>>()? {
            match key.as_ref() {
                "metric" => match m.next_value::<Scalar<'de>>()? {
                    Scalar::Null => {}
                    Scalar::Str(s) => raw.metric = Some(s),
                    other => return Err(type_error("metric", &other)),
                },
                "timestamp" => match m.next_value::<Scalar<'de>>()? {
                    Scalar::Null => {}
                    Scalar::Int(i) => raw.timestamp = Some(i),
                    // Floats are truncated; integers beyond i64 are out of range.
                    #[expect(clippy::cast_possible_truncation, reason = "OpenTSDB truncates a float timestamp")]
                    Scalar::Float(f) if f.abs() < 9.2e18 => raw.timestamp = Some(f as i64),
                    Scalar::Str(s) => raw.timestamp = Some(s.trim().parse().map_err(|_| type_error("timestamp", &Scalar::Str(s.clone())))?),
                    other => return Err(type_error("timestamp", &other)),
                },
                "value" => match m.next_value::<Scalar<'de>>()? {
                    Scalar::Null => {}
                    Scalar::Str(s) => raw.value = Some(RawValue::Text(s)),
                    Scalar::Int(i) => raw.value = Some(RawValue::Number(Value::Int(i))),
                    // Beyond i64: not a number OpenTSDB accepts.
                    Scalar::Big(u) => raw.value = Some(RawValue::Refused(u)),
                    // JSON has no non-finite numbers.
                    Scalar::Float(f) => raw.value = Some(RawValue::Number(Value::Float(f))),
                    other => return Err(type_error("value", &other)),
                },
                "tags" => raw.tags = m.next_value::<Tags<'de>>()?.0,
                _ => {
                    m.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(raw)
    }
}

impl<'de> Deserialize<'de> for Item<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Item<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a data point object or null")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Item(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<Self::Value, A::Error> {
                RawVisitor.visit_map(m).map(|r| Item(Some(r)))
            }
        }
        d.deserialize_any(V)
    }
}

/// The whole body: one object or an array of them.
struct Body<'a>(Vec<Option<Raw<'a>>>);

impl<'de> Deserialize<'de> for Body<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Body<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object or an array")
            }
            fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<Self::Value, A::Error> {
                RawVisitor.visit_map(m).map(|r| Body(vec![Some(r)]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::with_capacity(s.size_hint().unwrap_or(0).min(1 << 16));
                while let Some(Item(item)) = s.next_element::<Item<'de>>()? {
                    items.push(item);
                }
                Ok(Body(items))
            }
        }
        d.deserialize_any(V)
    }
}

impl Raw<'_> {
    /// The point as received, for error details.
    fn echo(&self) -> Json {
        let mut m = Map::new();
        if let Some(metric) = &self.metric {
            m.insert("metric".into(), Json::String(metric.to_string()));
        }
        if let Some(t) = self.timestamp {
            m.insert("timestamp".into(), Json::from(t));
        }
        if let Some(v) = &self.value {
            m.insert("value".into(), Json::String(v.text()));
        }
        if let Some(tags) = &self.tags {
            let t: Map<String, Json> = tags.iter().map(|(k, v)| (k.to_string(), Json::String(v.to_string()))).collect();
            m.insert("tags".into(), Json::Object(t));
        }
        Json::Object(m)
    }
}

/// The per-point checks, in OpenTSDB's order.
fn check(raw: Option<Raw<'_>>, max_tags: usize) -> Result<PointRef<'_>, Rejected> {
    let Some(raw) = raw else {
        return Err(Rejected { datapoint: Json::Null, error: "Unexpected null datapoint encountered in set.".into() });
    };
    let reject = |error: String| Rejected { datapoint: raw.echo(), error };
    if raw.metric.as_ref().is_none_or(|m| m.is_empty()) {
        return Err(reject("Metric name was empty".into()));
    }
    let t = raw.timestamp.filter(|t| *t > 0).ok_or_else(|| reject("Invalid timestamp".into()))?;
    let Some(raw_value) = raw.value.as_ref().filter(|v| !matches!(v, RawValue::Text(t) if t.is_empty())) else {
        return Err(reject("Empty value".into()));
    };
    if raw.tags.as_ref().is_none_or(Vec::is_empty) {
        return Err(reject("Missing tags".into()));
    }
    let unparsable = || reject("Unable to parse value to a number".into());
    let value = match raw_value {
        RawValue::Number(v) => *v,
        RawValue::Refused(_) => return Err(unparsable()),
        RawValue::Text(text) => {
            parse_value(text).map_err(|e| if e.starts_with("value is NaN or Infinite") { reject(e) } else { unparsable() })?
        }
    };
    let metric = raw.metric.as_deref().unwrap_or_default();
    check_metric(metric).map_err(reject)?;
    let tags = raw.tags.as_deref().unwrap_or_default();
    check_tag_pairs(tags.iter().map(|(k, v)| (k.as_ref(), v.as_ref())), tags.len(), max_tags).map_err(reject)?;
    let timestamp_ms = timestamp_ms(t).map_err(reject)?;
    let Raw { metric, tags, .. } = raw;
    Ok(PointRef { metric: metric.unwrap_or_default(), timestamp_ms, value, tags: tags.unwrap_or_default() })
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
