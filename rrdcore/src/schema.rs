//! What a database holds: its base step, data sources and archives.
//!
//! A [`Schema`] is built in code or parsed from RRDtool's own `rrdtool create`
//! arguments (`--step 300 DS:value:GAUGE:600:U:U RRA:AVERAGE:0.5:1:600`).
//! [`Schema::validate`] checks every field; errors name the field and value.

use crate::error::{Error, Result};
use crate::number;

/// Longest data source name RRDtool allows.
pub const MAX_DS_NAME: usize = 19;
/// Earliest start time RRDtool accepts (1979-12-30).
pub const MIN_START: i64 = 315_360_000;
/// Most data sources, and most archives, in one database.
pub const MAX_COUNT: usize = 65_535;
/// Largest database file this engine creates, as a guard against typos (1 TiB).
pub const MAX_FILE_BYTES: u64 = 1 << 40;

/// How a data source turns input into a rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DsType {
    /// The value is the rate itself (temperatures, queue lengths).
    Gauge,
    /// An ever-increasing integer counter; wraps at 32 and 64 bits are corrected.
    Counter,
    /// Like COUNTER, but may decrease (negative rates), no wrap correction.
    Derive,
    /// COUNTER over floating-point readings; a decrease is a reset (unknown).
    DCounter,
    /// DERIVE over floating-point readings.
    DDerive,
    /// Each value is a count since the previous update (reset on read).
    Absolute,
}

impl DsType {
    /// RRDtool's spelling, e.g. `"GAUGE"`.
    pub fn name(self) -> &'static str {
        match self {
            DsType::Gauge => "GAUGE",
            DsType::Counter => "COUNTER",
            DsType::Derive => "DERIVE",
            DsType::DCounter => "DCOUNTER",
            DsType::DDerive => "DDERIVE",
            DsType::Absolute => "ABSOLUTE",
        }
    }

    /// Parses RRDtool's exact (upper-case) spelling.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "GAUGE" => DsType::Gauge,
            "COUNTER" => DsType::Counter,
            "DERIVE" => DsType::Derive,
            "DCOUNTER" => DsType::DCounter,
            "DDERIVE" => DsType::DDerive,
            "ABSOLUTE" => DsType::Absolute,
            _ => return None,
        })
    }

    /// All types, in a fixed order (their on-disk codes are their indices).
    pub const ALL: [DsType; 6] = [
        DsType::Gauge,
        DsType::Counter,
        DsType::Derive,
        DsType::DCounter,
        DsType::DDerive,
        DsType::Absolute,
    ];
}

/// How an archive consolidates primary data points into rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cf {
    /// Mean of the known PDPs.
    Average,
    /// Smallest known PDP.
    Min,
    /// Largest known PDP.
    Max,
    /// The last PDP of the period.
    Last,
}

impl Cf {
    /// RRDtool's spelling, e.g. `"AVERAGE"`.
    pub fn name(self) -> &'static str {
        match self {
            Cf::Average => "AVERAGE",
            Cf::Min => "MIN",
            Cf::Max => "MAX",
            Cf::Last => "LAST",
        }
    }

    /// Parses RRDtool's exact (upper-case) spelling.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "AVERAGE" => Cf::Average,
            "MIN" => Cf::Min,
            "MAX" => Cf::Max,
            "LAST" => Cf::Last,
            _ => return None,
        })
    }

    /// All functions, in a fixed order (their on-disk codes are their indices).
    pub const ALL: [Cf; 4] = [Cf::Average, Cf::Min, Cf::Max, Cf::Last];
}

/// One input column.
#[derive(Debug, Clone, PartialEq)]
pub struct DataSource {
    /// 1 to 19 characters from `[A-Za-z0-9_-]`.
    pub name: String,
    /// How input becomes a rate.
    pub kind: DsType,
    /// Longest interval between updates, in seconds, before the data is unknown.
    pub heartbeat: u64,
    /// Rates below this are stored as unknown (`None`: no limit).
    pub min: Option<f64>,
    /// Rates above this are stored as unknown (`None`: no limit).
    pub max: Option<f64>,
}

impl DataSource {
    /// A data source with no limits.
    pub fn new(name: &str, kind: DsType, heartbeat: u64) -> Self {
        DataSource {
            name: name.to_owned(),
            kind,
            heartbeat,
            min: None,
            max: None,
        }
    }
}

/// One round-robin archive.
#[derive(Debug, Clone, PartialEq)]
pub struct Archive {
    /// The consolidation function.
    pub cf: Cf,
    /// The fraction of a row's PDPs that may be unknown with the row still known, in `[0, 1)`.
    pub xff: f64,
    /// PDPs per row.
    pub steps: u64,
    /// Rows in the ring.
    pub rows: u64,
}

impl Archive {
    /// An archive of `rows` rows of `steps` PDPs each.
    pub fn new(cf: Cf, xff: f64, steps: u64, rows: u64) -> Self {
        Archive {
            cf,
            xff,
            steps,
            rows,
        }
    }
}

/// The shape of a database: base step, data sources, archives.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    /// Seconds per primary data point.
    pub step: u64,
    /// Input columns, in order.
    pub data_sources: Vec<DataSource>,
    /// Archives, in order.
    pub archives: Vec<Archive>,
}

impl Default for Schema {
    /// The built-in monitoring default; see [`Schema::monitoring_default`].
    fn default() -> Self {
        Schema::monitoring_default()
    }
}

/// What `rrdtool create` arguments describe: a schema and, optionally, a start time.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateArgs {
    /// The parsed schema.
    pub schema: Schema,
    /// `--start`, when given (seconds since the epoch).
    pub start: Option<i64>,
    /// `--no-overwrite` was given.
    pub no_overwrite: bool,
}

impl Schema {
    /// The monitoring default (the Opsview schema): step 300 s; one GAUGE `value`
    /// with heartbeat 4200 s and no limits; AVERAGE archives, xff 0.5, of
    /// 1 x 600 (50 h), 6 x 672 (2 weeks), 24 x 744 (2 months), 288 x 730 (2 years).
    pub fn monitoring_default() -> Self {
        Schema {
            step: 300,
            data_sources: vec![DataSource::new("value", DsType::Gauge, 4200)],
            archives: vec![
                Archive::new(Cf::Average, 0.5, 1, 600),
                Archive::new(Cf::Average, 0.5, 6, 672),
                Archive::new(Cf::Average, 0.5, 24, 744),
                Archive::new(Cf::Average, 0.5, 288, 730),
            ],
        }
    }

    /// Index of the data source called `name`.
    pub fn ds_index(&self, name: &str) -> Option<usize> {
        self.data_sources.iter().position(|d| d.name == name)
    }

    /// Total rows over all archives.
    pub fn total_rows(&self) -> u64 {
        self.archives.iter().map(|a| a.rows).sum()
    }

    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        if self.step == 0 {
            return Err(bad("step", "0", "must be a positive number of seconds"));
        }
        if self.data_sources.is_empty() {
            return Err(bad("DS", "", "at least one data source is required"));
        }
        if self.archives.is_empty() {
            return Err(bad("RRA", "", "at least one archive is required"));
        }
        if self.data_sources.len() > MAX_COUNT {
            return Err(bad("DS", &self.data_sources.len().to_string(), "too many data sources (at most 65535)"));
        }
        if self.archives.len() > MAX_COUNT {
            return Err(bad("RRA", &self.archives.len().to_string(), "too many archives (at most 65535)"));
        }
        for (i, ds) in self.data_sources.iter().enumerate() {
            validate_ds(ds)?;
            if self.data_sources.iter().take(i).any(|d| d.name == ds.name) {
                return Err(bad("DS name", &ds.name, "duplicate data source name"));
            }
        }
        for rra in &self.archives {
            validate_rra(rra, self.step)?;
        }
        let cells = self
            .total_rows()
            .checked_mul(self.data_sources.len() as u64)
            .and_then(|c| c.checked_mul(8));
        match cells {
            Some(bytes) if bytes <= MAX_FILE_BYTES => Ok(()),
            _ => Err(bad(
                "RRA rows",
                &self.total_rows().to_string(),
                "the database would be larger than 1 TiB",
            )),
        }
    }

    /// Parses `rrdtool create` arguments (everything after the file name):
    /// `--step S` / `-s S`, `--start T` / `-b T`, `--no-overwrite` / `-O`,
    /// `DS:name:TYPE:heartbeat:min:max` and `RRA:CF:xff:steps:rows`. The step
    /// defaults to 300. `now` is used for relative start times.
    ///
    /// ```
    /// let args = rrdcore::Schema::from_rrdtool_args(
    ///     &["--step", "5m", "--start", "1000000000", "DS:in:COUNTER:600:0:U", "RRA:MAX:0.5:1h:1d"],
    ///     2_000_000_000,
    /// ).unwrap();
    /// assert_eq!(args.schema.step, 300);
    /// assert_eq!(args.schema.archives[0].steps, 12);
    /// assert_eq!(args.schema.archives[0].rows, 24);
    /// assert_eq!(args.start, Some(1_000_000_000));
    /// ```
    pub fn from_rrdtool_args<S: AsRef<str>>(args: &[S], now: i64) -> Result<CreateArgs> {
        let mut step = 300;
        let mut start = None;
        let mut no_overwrite = false;
        let mut ds_texts = Vec::new();
        let mut rra_texts = Vec::new();
        let mut iter = args.iter().map(AsRef::as_ref);
        while let Some(arg) = iter.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f, Some(v)),
                _ => (arg, None),
            };
            let mut value = |name: &'static str| {
                inline
                    .or_else(|| iter.next())
                    .ok_or_else(|| bad(name, "", "option needs a value"))
            };
            match flag {
                "--step" | "-s" => step = parse_duration(value("step")?, 1, "step")?,
                "--start" | "-b" => {
                    let text = value("start")?;
                    start = Some(crate::timespec::parse(text, now, None, None)?);
                }
                "--no-overwrite" | "-O" => no_overwrite = true,
                _ if arg.starts_with("DS:") => ds_texts.push(arg),
                _ if arg.starts_with("RRA:") => rra_texts.push(arg),
                _ => return Err(bad("argument", arg, "expected --step, --start, DS:... or RRA:...")),
            }
        }
        if let Some(s) = start
            && s < MIN_START
        {
            return Err(bad("start", &s.to_string(), "start time should be after 1980"));
        }
        let data_sources = ds_texts.into_iter().map(parse_ds).collect::<Result<Vec<_>>>()?;
        let archives = rra_texts
            .into_iter()
            .map(|t| parse_rra(t, step))
            .collect::<Result<Vec<_>>>()?;
        let schema = Schema {
            step,
            data_sources,
            archives,
        };
        schema.validate()?;
        Ok(CreateArgs {
            schema,
            start,
            no_overwrite,
        })
    }
}

fn bad(field: &'static str, value: &str, reason: &'static str) -> Error {
    Error::Schema {
        field,
        value: value.to_owned(),
        reason,
    }
}

fn fmt_limit(v: f64) -> String {
    v.to_string()
}

fn validate_ds(ds: &DataSource) -> Result<()> {
    let name_ok = !ds.name.is_empty()
        && ds.name.len() <= MAX_DS_NAME
        && ds
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !name_ok {
        return Err(bad("DS name", &ds.name, "must be 1 to 19 characters from [A-Za-z0-9_-]"));
    }
    if ds.heartbeat == 0 {
        return Err(bad("DS heartbeat", "0", "must be a positive number of seconds"));
    }
    if i64::try_from(ds.heartbeat).is_err() {
        return Err(bad("DS heartbeat", &ds.heartbeat.to_string(), "too large"));
    }
    if let Some(min) = ds.min
        && min.is_nan()
    {
        return Err(bad("DS min", &fmt_limit(min), "use no limit (U) instead of NaN"));
    }
    if let Some(max) = ds.max
        && max.is_nan()
    {
        return Err(bad("DS max", &fmt_limit(max), "use no limit (U) instead of NaN"));
    }
    if let (Some(min), Some(max)) = (ds.min, ds.max)
        && min >= max
    {
        return Err(bad("DS min", &fmt_limit(min), "min must be less than max"));
    }
    Ok(())
}

fn validate_rra(rra: &Archive, step: u64) -> Result<()> {
    if !(0.0..1.0).contains(&rra.xff) {
        return Err(bad("RRA xff", &rra.xff.to_string(), "must be >= 0 and < 1"));
    }
    if rra.steps == 0 {
        return Err(bad("RRA steps", "0", "must be positive"));
    }
    if rra.rows == 0 {
        return Err(bad("RRA rows", "0", "must be positive"));
    }
    let span = rra.steps.checked_mul(step).and_then(|s| s.checked_mul(rra.rows));
    match span {
        Some(s) if i64::try_from(s).is_ok() => Ok(()),
        _ => Err(bad("RRA steps", &rra.steps.to_string(), "archive spans more time than fits in 64 bits")),
    }
}

/// Parses RRDtool's "(suffixed) positive number": a plain integer is taken as is;
/// with a suffix `s m h d w M y` it is a duration in seconds divided by `divisor`,
/// which must divide it evenly.
pub fn parse_duration(text: &str, divisor: u64, field: &'static str) -> Result<u64> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (num, suffix) = text.split_at(digits);
    if num.is_empty() {
        return Err(bad(field, text, "value must be (suffixed) positive number"));
    }
    let value: u64 = num
        .parse()
        .map_err(|_| bad(field, text, "value is too large"))?;
    if value == 0 {
        return Err(bad(field, text, "value must be positive"));
    }
    let unit: u64 = match suffix {
        "" => return Ok(value),
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "M" => 31 * 86_400,
        "y" => 366 * 86_400,
        _ => return Err(bad(field, text, "value has trailing garbage")),
    };
    let seconds = value
        .checked_mul(unit)
        .ok_or_else(|| bad(field, text, "value is too large"))?;
    if divisor == 0 || seconds % divisor != 0 {
        return Err(bad(field, text, "value would truncate when scaled"));
    }
    Ok(seconds / divisor)
}

/// RRDtool reads at most 18 characters of a DS min or max.
fn limit(text: &str, field: &'static str) -> Result<Option<f64>> {
    let cut: String = text.chars().take(18).collect();
    if cut == "U" {
        return Ok(None);
    }
    match number::parse_full(&cut) {
        Some(v) if !v.is_nan() => Ok(Some(v)),
        _ => Err(bad(field, text, "must be U or a number")),
    }
}

/// Parses `DS:name:TYPE:heartbeat:min:max`.
pub fn parse_ds(text: &str) -> Result<DataSource> {
    let fields: Vec<&str> = text.split(':').collect();
    let [tag, name, kind, heartbeat, min, max] = fields.as_slice() else {
        return Err(bad("DS", text, "expected DS:name:TYPE:heartbeat:min:max"));
    };
    if *tag != "DS" {
        return Err(bad("DS", text, "expected DS:name:TYPE:heartbeat:min:max"));
    }
    let kind = DsType::from_name(kind).ok_or_else(|| {
        bad("DS type", kind, "expected GAUGE, COUNTER, DERIVE, DCOUNTER, DDERIVE or ABSOLUTE")
    })?;
    let ds = DataSource {
        name: (*name).to_owned(),
        kind,
        heartbeat: parse_duration(heartbeat, 1, "DS heartbeat")?,
        min: limit(min, "DS min")?,
        max: limit(max, "DS max")?,
    };
    validate_ds(&ds)?;
    Ok(ds)
}

/// Parses `RRA:CF:xff:steps:rows` for a database of base step `step`.
pub fn parse_rra(text: &str, step: u64) -> Result<Archive> {
    let fields: Vec<&str> = text.split(':').collect();
    let [tag, cf, xff, steps, rows] = fields.as_slice() else {
        return Err(bad("RRA", text, "expected RRA:CF:xff:steps:rows"));
    };
    if *tag != "RRA" {
        return Err(bad("RRA", text, "expected RRA:CF:xff:steps:rows"));
    }
    let cf = Cf::from_name(cf).ok_or_else(|| bad("RRA CF", cf, "expected AVERAGE, MIN, MAX or LAST"))?;
    let xff = number::parse_full(xff)
        .filter(|x| (0.0..1.0).contains(x))
        .ok_or_else(|| bad("RRA xff", xff, "must be a number >= 0 and < 1"))?;
    let steps = parse_duration(steps, step, "RRA steps")?;
    let row_span = steps
        .checked_mul(step)
        .ok_or_else(|| bad("RRA steps", text, "too large"))?;
    let rows = parse_duration(rows, row_span, "RRA rows")?;
    let rra = Archive { cf, xff, steps, rows };
    validate_rra(&rra, step)?;
    Ok(rra)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_opsview() {
        let s = Schema::default();
        s.validate().unwrap();
        assert_eq!(s.total_rows(), 2746);
        assert_eq!(s.data_sources[0].heartbeat, 4200);
    }

    #[test]
    fn parses_rrdtool_strings() {
        let ds = parse_ds("DS:x_11:GAUGE:120:U:5000.0").unwrap();
        assert_eq!((ds.min, ds.max), (None, Some(5000.0)));
        let ds = parse_ds("DS:x:GAUGE:600:0:3.14159").unwrap();
        assert_eq!(ds.max, Some(3.1415900000000003));
        let ds = parse_ds("DS:x:GAUGE:10m:-inf:inf").unwrap();
        assert_eq!(ds.heartbeat, 600);
        let rra = parse_rra("RRA:LAST:0.99:3:100", 60).unwrap();
        assert_eq!((rra.steps, rra.rows), (3, 100));
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse_ds("DS:x:GAUGE:0:U:U").unwrap_err().to_string();
        assert!(e.contains("heartbeat"), "{e}");
        let e = parse_ds("DS:x:gauge:600:U:U").unwrap_err().to_string();
        assert!(e.contains("DS type") && e.contains("gauge"), "{e}");
        let e = parse_ds("DS:x:GAUGE:600:5:1").unwrap_err().to_string();
        assert!(e.contains("min"), "{e}");
        let e = parse_rra("RRA:MAXIMUM:0.5:1:10", 300).unwrap_err().to_string();
        assert!(e.contains("MAXIMUM"), "{e}");
        let e = parse_rra("RRA:AVERAGE:1:1:10", 300).unwrap_err().to_string();
        assert!(e.contains("xff"), "{e}");
        let e = parse_rra("RRA:AVERAGE:0.5:7m:10", 300).unwrap_err().to_string();
        assert!(e.contains("truncate"), "{e}");
        let e = parse_rra("RRA:AVERAGE:0.5:1:10:9", 300).unwrap_err().to_string();
        assert!(e.contains("RRA"), "{e}");
        let e = parse_ds("DS:a_name_that_is_far_too_long:GAUGE:600:U:U").unwrap_err().to_string();
        assert!(e.contains("DS name"), "{e}");
    }

    #[test]
    fn create_args() {
        let a = Schema::from_rrdtool_args(&["DS:a:GAUGE:600:U:U", "DS:a:GAUGE:600:U:U", "RRA:AVERAGE:0.5:1:10"], 0);
        assert!(a.unwrap_err().to_string().contains("duplicate"));
        let a = Schema::from_rrdtool_args(&["--start", "1000", "DS:a:GAUGE:600:U:U", "RRA:AVERAGE:0.5:1:10"], 0);
        assert!(a.unwrap_err().to_string().contains("1980"));
        let a = Schema::from_rrdtool_args(&["--start=now-1h", "DS:a:GAUGE:600:U:U", "RRA:AVERAGE:0.5:1:10"], 2_000_000_000).unwrap();
        assert_eq!(a.start, Some(2_000_000_000 - 3600));
        let a = Schema::from_rrdtool_args(&["DS:a:GAUGE:600:U:U"], 0);
        assert!(a.unwrap_err().to_string().contains("archive"));
    }
}
