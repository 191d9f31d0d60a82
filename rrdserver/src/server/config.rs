//! The server's settings: built-in defaults, overridden key by key from a
//! TOML file (`rrdserver.example.toml` lists every key with its default),
//! then by command-line flags. An unknown key or a bad value stops startup
//! with a message naming it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use rrdcore::{Pattern, Schema, SchemaRules};

use super::journal::Durability;

/// Everything `rrdserver serve` can be told.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Address of the shared HTTP + telnet port. Default `127.0.0.1:4242`.
    pub listen: SocketAddr,
    /// The data directory. Default `./data`.
    pub data_dir: PathBuf,
    /// Most databases mapped at once. Default 32,768.
    pub max_open_databases: usize,
    /// Most tags per point (`tsd.storage.max_tags`). Default 8.
    pub max_tags: usize,
    /// Largest request body, after gzip inflation. Default 32 MiB.
    pub max_body_bytes: usize,
    /// Longest telnet line. Default 64 KiB.
    pub max_line_bytes: usize,
    /// Write `null` instead of OpenTSDB's `"NaN"` string for `nan` fills
    /// (Go clients cannot decode the string). Default false.
    pub nan_as_null: bool,
    /// The `tracing` filter (`info`, `debug`, `rrdserver=debug`...). Default `info`.
    pub log: String,
    /// Which schema a new series gets, by metric glob, first match wins;
    /// unmatched metrics get the monitoring default.
    pub rules: SchemaRules,
    /// tsdbrelay's `-denormalize` rules (`metric__tagk,...`); default
    /// Opserver's set. Empty turns the `__<host>.<metric>` names off.
    pub denormalize: crate::server::bosun::denorm::Rules,
    /// When a put is answered: `sync` (default) after the journal is on
    /// disk, `interval` after it is written (synced every
    /// `sync_interval_ms`), `none` without a journal.
    pub durability: Durability,
    /// How often the journal is synced under `interval`. Default 1000.
    pub sync_interval_ms: u64,
    /// How often databases are made durable and the journal emptied. Default 60,000.
    pub checkpoint_interval_ms: u64,
    /// A journal segment this big brings the checkpoint forward. Default 256 MiB.
    pub checkpoint_journal_bytes: u64,
    /// Points queued for the writers before puts get 503. Default 1,000,000.
    pub max_queued_points: usize,
    /// How long accepted points wait so that late ones are stored in order.
    /// Default 10,000; 0 applies points at once.
    pub reorder_window_ms: u64,
    /// Writer threads; 0 (default) means one per core.
    pub writer_threads: usize,
    /// A Nagios perfdata spool directory to import from (none by default).
    pub perfdata_spool: Option<PathBuf>,
    /// How often the spool is looked at. Default 1000.
    pub perfdata_poll_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 4242)),
            data_dir: PathBuf::from("data"),
            max_open_databases: 32_768,
            max_tags: crate::opentsdb::point::DEFAULT_MAX_TAGS,
            max_body_bytes: 32 << 20,
            max_line_bytes: crate::opentsdb::telnet::MAX_LINE,
            nan_as_null: false,
            log: "info".into(),
            rules: SchemaRules::new(),
            denormalize: crate::server::bosun::denorm::Rules::parse(crate::server::bosun::denorm::OPSERVER_RULES).unwrap_or_default(),
            durability: Durability::Sync,
            sync_interval_ms: 1000,
            checkpoint_interval_ms: 60_000,
            checkpoint_journal_bytes: 256 << 20,
            max_queued_points: 1_000_000,
            reorder_window_ms: 10_000,
            writer_threads: 0,
            perfdata_spool: None,
            perfdata_poll_ms: 1000,
        }
    }
}

/// A config problem, naming the key and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

fn bad(key: &str, why: impl std::fmt::Display) -> ConfigError {
    ConfigError(format!("config key `{key}`: {why}"))
}

impl Config {
    /// Reads a TOML file over the defaults.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError(format!("cannot read config file {}: {e}", path.display())))?;
        Config::from_toml(&text).map_err(|e| ConfigError(format!("{}: {}", path.display(), e.0)))
    }

    /// Parses TOML text over the defaults.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| ConfigError(format!("not valid TOML: {}", e.message())))?;
        let mut c = Config::default();
        for (key, value) in &table {
            match key.as_str() {
                "listen" => c.listen = string(key, value)?.parse().map_err(|e| bad(key, format!("not an address:port ({e})")))?,
                "data_dir" => c.data_dir = PathBuf::from(string(key, value)?),
                "max_open_databases" => c.max_open_databases = positive(key, value)?,
                "max_tags" => c.max_tags = positive(key, value)?,
                "max_body_bytes" => c.max_body_bytes = positive(key, value)?,
                "max_line_bytes" => c.max_line_bytes = positive(key, value)?,
                "nan_as_null" => c.nan_as_null = value.as_bool().ok_or_else(|| bad(key, "expected true or false"))?,
                "log" => c.log = string(key, value)?.to_owned(),
                "schema" => c.rules = rules(value)?,
                "denormalize" => c.denormalize = crate::server::bosun::denorm::Rules::parse(string(key, value)?).map_err(|e| bad(key, e))?,
                "durability" => {
                    c.durability = Durability::parse(string(key, value)?).ok_or_else(|| bad(key, format!("expected \"sync\", \"interval\" or \"none\", got {value}")))?;
                }
                "sync_interval_ms" => c.sync_interval_ms = positive(key, value)? as u64,
                "checkpoint_interval_ms" => c.checkpoint_interval_ms = positive(key, value)? as u64,
                "checkpoint_journal_bytes" => c.checkpoint_journal_bytes = positive(key, value)? as u64,
                "max_queued_points" => c.max_queued_points = positive(key, value)?,
                "reorder_window_ms" => c.reorder_window_ms = non_negative(key, value)? as u64,
                "writer_threads" => c.writer_threads = non_negative(key, value)?,
                "perfdata_spool" => c.perfdata_spool = Some(PathBuf::from(string(key, value)?)).filter(|p| !p.as_os_str().is_empty()),
                "perfdata_poll_ms" => c.perfdata_poll_ms = positive(key, value)? as u64,
                other => return Err(ConfigError(format!("unknown config key `{other}`"))),
            }
        }
        Ok(c)
    }
}

fn string<'a>(key: &str, v: &'a toml::Value) -> Result<&'a str, ConfigError> {
    v.as_str().ok_or_else(|| bad(key, "expected a string"))
}

fn positive(key: &str, v: &toml::Value) -> Result<usize, ConfigError> {
    v.as_integer()
        .and_then(|i| usize::try_from(i).ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| bad(key, format!("expected a positive integer, got {v}")))
}

fn non_negative(key: &str, v: &toml::Value) -> Result<usize, ConfigError> {
    v.as_integer().and_then(|i| usize::try_from(i).ok()).ok_or_else(|| bad(key, format!("expected an integer of 0 or more, got {v}")))
}

impl Config {
    /// Writer threads to start: `writer_threads`, or one per core.
    pub fn writers(&self) -> usize {
        if self.writer_threads > 0 {
            return self.writer_threads;
        }
        std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
    }
}

/// `[[schema]]` entries: `metric = "glob"`, `create = "--step 60 DS:... RRA:..."`.
fn rules(value: &toml::Value) -> Result<SchemaRules, ConfigError> {
    let list = value.as_array().ok_or_else(|| bad("schema", "expected [[schema]] tables"))?;
    let mut rules = SchemaRules::new();
    for (i, entry) in list.iter().enumerate() {
        let key = format!("schema[{i}]");
        let table = entry.as_table().ok_or_else(|| bad(&key, "expected a table"))?;
        let (mut metric, mut create) = (None, None);
        for (k, v) in table {
            match k.as_str() {
                "metric" => metric = Some(string(&format!("{key}.metric"), v)?),
                "create" => create = Some(string(&format!("{key}.create"), v)?),
                other => return Err(ConfigError(format!("unknown config key `{key}.{other}`"))),
            }
        }
        let metric = metric.ok_or_else(|| bad(&key, "missing `metric` (a glob such as \"os.net.*\")"))?;
        let create = create.ok_or_else(|| bad(&key, "missing `create` (rrdtool create arguments)"))?;
        let pattern = Pattern::new(metric).map_err(|e| bad(&format!("{key}.metric"), e))?;
        let args: Vec<&str> = create.split_whitespace().collect();
        let schema: Schema = Schema::from_rrdtool_args(&args, 0).map_err(|e| bad(&format!("{key}.create"), e))?.schema;
        rules.push(pattern, schema).map_err(|e| bad(&key, e))?;
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        assert_eq!(Config::from_toml("").unwrap(), Config::default());
        let c = Config::from_toml("listen = \"0.0.0.0:4343\"\nmax_tags = 12\n[[schema]]\nmetric = \"os.*\"\ncreate = \"--step 60 DS:value:COUNTER:120:U:U RRA:AVERAGE:0.5:1:1440\"\n").unwrap();
        assert_eq!(c.listen.port(), 4343);
        assert_eq!(c.max_tags, 12);
        assert_eq!(c.rules.schema_for("os.cpu").step, 60);
        assert_eq!(c.rules.schema_for("app.x"), Schema::monitoring_default());
        assert_eq!(c.data_dir, PathBuf::from("data"));
    }

    #[test]
    fn errors_name_the_key() {
        assert_eq!(Config::from_toml("bogus = 1").unwrap_err().0, "unknown config key `bogus`");
        assert!(Config::from_toml("max_tags = 0").unwrap_err().0.starts_with("config key `max_tags`"));
        assert!(Config::from_toml("listen = \"nowhere\"").unwrap_err().0.starts_with("config key `listen`"));
        assert!(Config::from_toml("[[schema]]\nmetric = \"a\"\ncreate = \"DS:x:BOGUS:1:U:U\"").unwrap_err().0.starts_with("config key `schema[0].create`"));
        assert!(Config::from_toml("listen = ").unwrap_err().0.starts_with("not valid TOML"));
        assert!(Config::from_toml("denormalize = \"os.cpu\"").unwrap_err().0.starts_with("config key `denormalize`"));
        assert!(Config::from_toml("denormalize = \"\"").unwrap().denormalize.rules().is_empty());
        assert!(Config::from_toml("durability = \"fast\"").unwrap_err().0.starts_with("config key `durability`"));
        assert!(Config::from_toml("reorder_window_ms = -1").unwrap_err().0.starts_with("config key `reorder_window_ms`"));
        let c = Config::from_toml("durability = \"interval\"\nreorder_window_ms = 0\nwriter_threads = 3").unwrap();
        assert_eq!((c.durability, c.reorder_window_ms, c.writers()), (Durability::Interval, 0, 3));
    }

    #[test]
    fn example_file_is_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rrdserver.example.toml");
        let c = Config::from_file(&path).unwrap();
        assert_eq!(c, Config::default());
    }
}
