//! What a query asks for (`opentsdb-api.md` §4.1-4.8): time specifications,
//! the `m=` sub-query grammar, downsample specifiers, filters, rate options
//! and aggregator names, with OpenTSDB's error texts.

/// Every aggregator OpenTSDB 2.4 lists (`GET /api/aggregators`).
pub const AGGREGATORS: &[&str] = &[
    "sum", "min", "max", "avg", "none", "median", "mult", "dev", "diff", "count", "zimsum", "mimmin", "mimmax", "first",
    "last", "pfsum", "squareSum", "p999", "p99", "p95", "p90", "p75", "p50", "ep999r3", "ep99r3", "ep95r3", "ep90r3",
    "ep75r3", "ep50r3", "ep999r7", "ep99r7", "ep95r7", "ep90r7", "ep75r7", "ep50r7",
];

/// Whether `name` is an aggregator.
pub fn is_aggregator(name: &str) -> bool {
    AGGREGATORS.contains(&name)
}

const SECOND: u64 = 1000;

/// Milliseconds in one `unit` (`ms s m h d w n y`, case-insensitive).
fn unit_ms(unit: &str) -> Option<u64> {
    Some(match unit.to_ascii_lowercase().as_str() {
        "ms" => 1,
        "s" => SECOND,
        "m" => 60 * SECOND,
        "h" => 3600 * SECOND,
        "d" => 86_400 * SECOND,
        "w" => 7 * 86_400 * SECOND,
        "n" => 30 * 86_400 * SECOND,
        "y" => 365 * 86_400 * SECOND,
        _ => return None,
    })
}

/// A duration such as `5m` or `500ms`, in milliseconds.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (num, unit) = text.split_at(digits);
    let n: u64 = num.parse().map_err(|_| format!("Invalid duration (number): {text}"))?;
    let per = unit_ms(unit).ok_or_else(|| format!("Invalid duration (suffix): {text}"))?;
    n.checked_mul(per).ok_or_else(|| format!("Invalid duration (too large): {text}"))
}

/// A query time (§4.1) in milliseconds: `now`, `<N><unit>-ago`, epoch
/// seconds (up to 10 digits) or milliseconds, `s.fff`, `<digits>ms`, or an
/// absolute `yyyy/MM/dd[( |-)HH:mm[:ss]]` in UTC.
pub fn parse_time(text: &str, now_ms: u64) -> Result<u64, String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("now") {
        return Ok(now_ms);
    }
    if let Some(d) = t.strip_suffix("-ago") {
        return Ok(now_ms.saturating_sub(parse_duration(d)?));
    }
    if t.contains('/') {
        return absolute(t);
    }
    if let Some(ms) = t.strip_suffix("ms").filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())) {
        return ms.parse().map_err(|_| format!("Invalid time: {text}"));
    }
    if let Some((s, frac)) = t.split_once('.') {
        let ok = !s.is_empty() && s.len() <= 10 && (1..=3).contains(&frac.len());
        if ok && s.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
            let secs: u64 = s.parse().map_err(|_| format!("Invalid time: {text}"))?;
            let ms: u64 = format!("{frac:0<3}").parse().map_err(|_| format!("Invalid time: {text}"))?;
            return Ok(secs * SECOND + ms);
        }
        return Err(format!("Invalid time: {text}"));
    }
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        let n: u64 = t.parse().map_err(|_| format!("Invalid time: {text}"))?;
        return Ok(if t.len() <= 10 { n * SECOND } else { n });
    }
    Err(format!("Invalid time: {text}"))
}

fn absolute(t: &str) -> Result<u64, String> {
    let bad = || format!("Invalid absolute date: {t}");
    let (date, time) = match t.split_once([' ', '-']) {
        Some((d, tm)) => (d, Some(tm)),
        None => (t, None),
    };
    let num = |s: &str| s.parse::<i64>().map_err(|_| bad());
    let ymd: Vec<&str> = date.split('/').collect();
    let [y, mo, d] = ymd.as_slice() else { return Err(bad()) };
    let (y, mo, d) = (num(y)?, num(mo)?, num(d)?);
    let (h, mi, s) = match time {
        None => (0, 0, 0),
        Some(tm) => {
            let parts: Vec<&str> = tm.split(':').collect();
            match parts.as_slice() {
                [h, m] => (num(h)?, num(m)?, 0),
                [h, m, s] => (num(h)?, num(m)?, num(s)?),
                _ => return Err(bad()),
            }
        }
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || !(0..24).contains(&h) || !(0..60).contains(&mi) || !(0..60).contains(&s) || y < 1970 {
        return Err(bad());
    }
    let days = rrdcore::timespec::days_from_civil(y, mo, d);
    u64::try_from(((days * 24 + h) * 60 + mi) * 60 + s).map(|secs| secs * SECOND).map_err(|_| bad())
}

/// How empty downsample buckets are emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    /// Skip them (the default).
    None,
    /// Emit NaN.
    Nan,
    /// Emit null.
    Null,
    /// Emit 0.
    Zero,
}

/// A downsample specifier (§4.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downsample {
    /// Bucket width in ms; `None` for `0all` (one bucket for the whole range).
    pub interval_ms: Option<u64>,
    /// Calendar-aligned (`1dc`).
    pub calendar: bool,
    /// The aggregator applied within a bucket.
    pub aggregator: String,
    /// The fill policy.
    pub fill: Fill,
    /// The specifier as given (echoed back by `showQuery`).
    pub spec: String,
}

/// Parses `<interval><unit>[c]-<aggregator>[-<fill>]`.
pub fn parse_downsample(text: &str) -> Result<Downsample, String> {
    let parts: Vec<&str> = text.split('-').collect();
    let (interval, agg, fill) = match parts.as_slice() {
        [i, a] => (*i, *a, None),
        [i, a, f] => (*i, *a, Some(*f)),
        _ => return Err(format!("Invalid downsampling specifier '{text}': must provide at least interval and function")),
    };
    let (interval_ms, calendar) = if interval == "0all" {
        (None, false)
    } else {
        let (base, calendar) = match interval.strip_suffix('c') {
            Some(b) if b.ends_with(|c: char| c.is_ascii_alphabetic()) => (b, true),
            _ => (interval, false),
        };
        let ms = parse_duration(base).map_err(|e| format!("Invalid downsampling specifier '{text}': {e}"))?;
        if ms == 0 {
            return Err(format!("Invalid downsampling specifier '{text}': the interval must be positive"));
        }
        (Some(ms), calendar)
    };
    if agg == "none" {
        return Err("cannot use the NONE aggregator for downsampling".into());
    }
    if !is_aggregator(agg) {
        return Err(format!("No such downsampling function: {agg}"));
    }
    let fill = match fill {
        None | Some("none") => Fill::None,
        Some("nan") => Fill::Nan,
        Some("null") => Fill::Null,
        Some("zero") => Fill::Zero,
        Some(f) => return Err(format!("No such fill policy: '{f}': must be one of: none zero nan null scalar")),
    };
    Ok(Downsample { interval_ms, calendar, aggregator: agg.to_owned(), fill, spec: text.to_owned() })
}

/// The tag-value filter types (§4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterType {
    /// One of `|`-separated literals.
    LiteralOr,
    /// The same, ignoring case.
    ILiteralOr,
    /// Present and none of the literals.
    NotLiteralOr,
    /// The same, ignoring case.
    NotILiteralOr,
    /// A `*` glob.
    Wildcard,
    /// The same, ignoring case.
    IWildcard,
    /// A regular expression found anywhere in the value.
    Regexp,
    /// The key is absent.
    NotKey,
}

impl FilterType {
    /// Every type, with its name.
    pub const ALL: [(FilterType, &'static str); 8] = [
        (FilterType::LiteralOr, "literal_or"),
        (FilterType::ILiteralOr, "iliteral_or"),
        (FilterType::NotLiteralOr, "not_literal_or"),
        (FilterType::NotILiteralOr, "not_iliteral_or"),
        (FilterType::Wildcard, "wildcard"),
        (FilterType::IWildcard, "iwildcard"),
        (FilterType::Regexp, "regexp"),
        (FilterType::NotKey, "not_key"),
    ];

    /// The type called `name`.
    pub fn from_name(name: &str) -> Result<FilterType, String> {
        FilterType::ALL
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(t, _)| *t)
            .ok_or_else(|| format!("Could not find a tag value filter of the type: {name}"))
    }
}

/// A tag filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// Its type.
    pub kind: FilterType,
    /// The tag key.
    pub tagk: String,
    /// The expression (literals, glob, regex; empty for `not_key`).
    pub filter: String,
    /// Whether the results are grouped by this key.
    pub group_by: bool,
}

impl Filter {
    /// A filter from a `k=v` value written without a type: `*` is any value,
    /// a value with `*` a case-insensitive wildcard, otherwise literals.
    pub fn shortcut(tagk: &str, value: &str, group_by: bool) -> Filter {
        let kind = if value.contains('*') { if value == "*" { FilterType::Wildcard } else { FilterType::IWildcard } } else { FilterType::LiteralOr };
        Filter { kind, tagk: tagk.to_owned(), filter: value.to_owned(), group_by }
    }
}

/// Rate options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Treat the series as a monotonic counter.
    pub counter: bool,
    /// Skip points where the counter went down.
    pub drop_resets: bool,
    /// The counter's maximum (default i64::MAX).
    pub counter_max: i64,
    /// Rates above this are reported as 0 (0 = off).
    pub reset_value: i64,
}

impl Default for Rate {
    fn default() -> Self {
        Rate { counter: false, drop_resets: false, counter_max: i64::MAX, reset_value: 0 }
    }
}

/// One sub-query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubQuery {
    /// The cross-series aggregator.
    pub aggregator: String,
    /// The metric.
    pub metric: String,
    /// Rate conversion, when asked for.
    pub rate: Option<Rate>,
    /// Downsampling, when asked for.
    pub downsample: Option<Downsample>,
    /// Tag filters.
    pub filters: Vec<Filter>,
    /// Only series whose tag keys are exactly the filtered keys.
    pub explicit_tags: bool,
}

fn bad_m(m: &str, why: &str) -> String {
    format!("Invalid parameter m={m} ({why})")
}

/// Parses the `m=` form: `AGG:[modifiers:]METRIC[{group-by filters}[{filters}]]`.
pub fn parse_m(m: &str) -> Result<SubQuery, String> {
    // Split on ':' outside braces (filter values may not contain ':', but be careful anyway).
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in m.char_indices() {
        match c {
            '{' | '(' | '[' => depth += 1,
            '}' | ')' | ']' => depth -= 1,
            ':' if depth == 0 => {
                parts.push(m.get(start..i).unwrap_or(""));
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(m.get(start..).unwrap_or(""));
    if parts.len() < 2 {
        return Err(bad_m(m, "not enough :-separated parts"));
    }
    if parts.len() > 5 {
        return Err(bad_m(m, "too many :-separated parts"));
    }
    let (aggregator, rest) = parts.split_first().ok_or_else(|| bad_m(m, "not enough :-separated parts"))?;
    let (metric_part, modifiers) = rest.split_last().ok_or_else(|| bad_m(m, "not enough :-separated parts"))?;
    if !is_aggregator(aggregator) {
        return Err(format!("No such aggregation function: {aggregator}"));
    }
    let mut q = SubQuery {
        aggregator: (*aggregator).to_owned(),
        metric: String::new(),
        rate: None,
        downsample: None,
        filters: Vec::new(),
        explicit_tags: false,
    };
    for md in modifiers {
        if md.starts_with("rate") {
            q.rate = Some(parse_rate(md)?);
        } else if md.starts_with(|c: char| c.is_ascii_digit()) {
            q.downsample = Some(parse_downsample(md)?);
        } else if *md == "explicit_tags" {
            q.explicit_tags = true;
        } else if md.starts_with("percentiles[") || *md == "show-histogram-buckets" || *md == "pre-agg" || md.starts_with("rollup_") {
            // Histogram and rollup hints: accepted, nothing to do for this store.
        } else {
            return Err(bad_m(m, &format!("unknown modifier '{md}'")));
        }
    }
    let (metric, braces) = match metric_part.find('{') {
        Some(i) => metric_part.split_at(i),
        None => (*metric_part, ""),
    };
    if metric.is_empty() {
        return Err(bad_m(m, "missing metric"));
    }
    q.metric = metric.to_owned();
    let mut rest = braces;
    for group_by in [true, false] {
        if rest.is_empty() {
            break;
        }
        let inner = rest.strip_prefix('{').ok_or_else(|| bad_m(m, "expected {"))?;
        let end = inner.find('}').ok_or_else(|| bad_m(m, "missing the closing }"))?;
        let (body, after) = inner.split_at(end);
        rest = after.get(1..).unwrap_or("");
        q.filters.extend(parse_filters(body, group_by).map_err(|e| bad_m(m, &e))?);
    }
    if !rest.is_empty() {
        return Err(bad_m(m, "unexpected text after the filters"));
    }
    Ok(q)
}

/// `rate` or `rate{counter|dropcounter[,max[,reset]]}`.
fn parse_rate(text: &str) -> Result<Rate, String> {
    let mut rate = Rate::default();
    let Some(opts) = text.strip_prefix("rate").filter(|o| !o.is_empty()) else { return Ok(rate) };
    let inner = opts.strip_prefix('{').and_then(|o| o.strip_suffix('}')).ok_or_else(|| format!("Invalid rate options: {text}"))?;
    let mut fields = inner.split(',');
    match fields.next().unwrap_or("") {
        "counter" => rate.counter = true,
        "dropcounter" => {
            rate.counter = true;
            rate.drop_resets = true;
        }
        "" => {}
        other => return Err(format!("Invalid rate options: expected counter or dropcounter, got '{other}'")),
    }
    let num = |s: &str, default: i64| -> Result<i64, String> {
        if s.is_empty() { Ok(default) } else { s.parse().map_err(|_| format!("Invalid rate options: '{s}' is not a number")) }
    };
    if let Some(max) = fields.next() {
        rate.counter_max = num(max, i64::MAX)?;
    }
    if let Some(reset) = fields.next() {
        rate.reset_value = num(reset, 0)?;
    }
    if fields.next().is_some() {
        return Err(format!("Invalid rate options: {text}"));
    }
    Ok(rate)
}

/// `k=v,k2=type(expr),...` inside one pair of braces.
fn parse_filters(body: &str, group_by: bool) -> Result<Vec<Filter>, String> {
    let mut out = Vec::new();
    // Split on commas outside parentheses (a regexp may contain commas).
    let (mut depth, mut start) = (0i32, 0);
    let mut pairs = Vec::new();
    for (i, c) in body.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                pairs.push(body.get(start..i).unwrap_or(""));
                start = i + 1;
            }
            _ => {}
        }
    }
    pairs.push(body.get(start..).unwrap_or(""));
    for pair in pairs.into_iter().filter(|p| !p.trim().is_empty()) {
        let (k, v) = pair.split_once('=').ok_or_else(|| format!("invalid filter '{pair}': expected tagk=value"))?;
        let (k, v) = (k.trim(), v.trim());
        if k.is_empty() {
            return Err(format!("invalid filter '{pair}': empty tag key"));
        }
        let typed = v.find('(').filter(|_| v.ends_with(')')).map(|i| v.split_at(i));
        let filter = match typed {
            Some((name, expr)) if FilterType::ALL.iter().any(|(_, n)| *n == name) => Filter {
                kind: FilterType::from_name(name)?,
                tagk: k.to_owned(),
                filter: expr.get(1..expr.len() - 1).unwrap_or("").to_owned(),
                group_by,
            },
            _ => Filter::shortcut(k, v, group_by),
        };
        out.push(filter);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000_000;

    #[test]
    fn times() {
        assert_eq!(parse_time("now", NOW), Ok(NOW));
        assert_eq!(parse_time("1h-ago", NOW), Ok(NOW - 3_600_000));
        assert_eq!(parse_time("2W-ago", NOW), Ok(NOW - 14 * 86_400_000));
        assert_eq!(parse_time("1700000000", NOW), Ok(1_700_000_000_000));
        assert_eq!(parse_time("1700000000123", NOW), Ok(1_700_000_000_123));
        assert_eq!(parse_time("1700000000.5", NOW), Ok(1_700_000_000_500));
        assert_eq!(parse_time("1700000000123ms", NOW), Ok(1_700_000_000_123));
        assert_eq!(parse_time("2023/11/14", NOW), Ok(1_699_920_000_000));
        assert_eq!(parse_time("2023/11/14-22:13:20", NOW), Ok(NOW));
        assert_eq!(parse_time("2023/11/14 22:13", NOW), Ok(NOW - 20_000));
        assert_eq!(parse_time("1x-ago", NOW).unwrap_err(), "Invalid duration (suffix): 1x");
        assert!(parse_time("2023/13/01", NOW).unwrap_err().starts_with("Invalid absolute date"));
        assert!(parse_time("yesterday", NOW).is_err());
    }

    #[test]
    fn downsamples() {
        let d = parse_downsample("5m-avg-zero").unwrap();
        assert_eq!((d.interval_ms, d.calendar, d.aggregator.as_str(), d.fill), (Some(300_000), false, "avg", Fill::Zero));
        assert!(parse_downsample("1dc-sum").unwrap().calendar);
        assert_eq!(parse_downsample("500ms-max").unwrap().interval_ms, Some(500));
        assert_eq!(parse_downsample("0all-sum").unwrap().interval_ms, None);
        assert_eq!(parse_downsample("1m-none").unwrap_err(), "cannot use the NONE aggregator for downsampling");
        assert_eq!(parse_downsample("1m-bogus").unwrap_err(), "No such downsampling function: bogus");
        assert_eq!(parse_downsample("1m-avg-scalar").unwrap_err(), "No such fill policy: 'scalar': must be one of: none zero nan null scalar");
        assert!(parse_downsample("1m").unwrap_err().contains("must provide at least interval and function"));
    }

    #[test]
    fn m_grammar() {
        let q = parse_m("sum:rate{counter}:5m-avg-zero:if.octets{host=web*}{dc=literal_or(lga|sjc)}").unwrap();
        assert_eq!(q.aggregator, "sum");
        assert_eq!(q.metric, "if.octets");
        assert!(q.rate.unwrap().counter && !q.rate.unwrap().drop_resets);
        assert_eq!(q.downsample.unwrap().interval_ms, Some(300_000));
        assert_eq!(q.filters[0], Filter { kind: FilterType::IWildcard, tagk: "host".into(), filter: "web*".into(), group_by: true });
        assert_eq!(q.filters[1], Filter { kind: FilterType::LiteralOr, tagk: "dc".into(), filter: "lga|sjc".into(), group_by: false });
        // Modifiers in any order; rate options.
        let q = parse_m("avg:1h-max:rate{dropcounter,,1000}:sys.cpu{}{host=*}").unwrap();
        let r = q.rate.unwrap();
        assert_eq!((r.counter, r.drop_resets, r.counter_max, r.reset_value), (true, true, i64::MAX, 1000));
        assert_eq!(q.filters[0].kind, FilterType::Wildcard);
        assert!(!q.filters[0].group_by);
        let q = parse_m("sum:sys.cpu{host=regexp(web[0-9]+,x)}").unwrap();
        assert_eq!(q.filters[0].filter, "web[0-9]+,x");
        assert_eq!(parse_m("sum").unwrap_err(), "Invalid parameter m=sum (not enough :-separated parts)");
        assert_eq!(parse_m("a:b:c:d:e:f").unwrap_err(), "Invalid parameter m=a:b:c:d:e:f (too many :-separated parts)");
        assert_eq!(parse_m("bogus:m").unwrap_err(), "No such aggregation function: bogus");
        assert!(parse_m("sum:rate{counter,x}:m").unwrap_err().contains("not a number"));
        assert!(parse_m("sum:m{host=a").is_err());
        assert!(parse_m("sum:m{host=a}x").is_err());
        assert_eq!(parse_m("sum:m{h=bogus(x)}").unwrap().filters[0].kind, FilterType::LiteralOr);
    }
}
