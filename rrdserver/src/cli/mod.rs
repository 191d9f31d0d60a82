//! `rrdserver`'s command line: RRDtool's verbs over rrdcore files, importing
//! native RRDtool files, and checks. Output uses RRDtool's text layouts.

mod import;
mod monitor;
mod serve;
mod tune;

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use rrdcore::{Cf, FetchRequest, Rrd, Schema, UpdateOptions, timespec};

use crate::rrdtext;

/// The `rrdserver` command line.
#[derive(Debug, Parser)]
#[command(name = "rrdserver", version, about = "A round-robin time-series store: RRDtool's verbs, and a server")]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a database: `create FILE [--start T] [--step S] [--no-overwrite] DS:... RRA:...`
    Create {
        /// The new file.
        file: PathBuf,
        /// `--start`, `--step`, `--no-overwrite`, `DS:` and `RRA:` arguments, as rrdtool takes them.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 1..)]
        args: Vec<String>,
    },
    /// Feed values: `update FILE [-t ds:ds...] [-s] TIME:V1[:V2...] ...`
    Update {
        /// The database.
        file: PathBuf,
        /// The data sources the values are for (others get U).
        #[arg(short = 't', long = "template")]
        template: Option<String>,
        /// Skip, silently, updates not after the last one.
        #[arg(short = 's', long = "skip-past-updates")]
        skip_past: bool,
        /// `TIME:V1:V2...` (TIME: epoch seconds, N, a negative offset, or AT-TIME@).
        #[arg(required = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Read rows: `fetch FILE CF [-r RES] [-s START] [-e END] [-a]`
    Fetch {
        /// The database (rrdcore or native RRDtool file).
        file: PathBuf,
        /// AVERAGE, MIN, MAX or LAST.
        cf: String,
        /// Preferred seconds per row (a duration such as 5m works).
        #[arg(short = 'r', long = "resolution", default_value = "1")]
        resolution: String,
        /// Start (default end-1d); epoch seconds, now-1h, end-2d, ...
        #[arg(short = 's', long = "start", allow_hyphen_values = true)]
        start: Option<String>,
        /// End (default now).
        #[arg(short = 'e', long = "end", allow_hyphen_values = true)]
        end: Option<String>,
        /// Align start (and end) to a multiple of the resolution.
        #[arg(short = 'a', long = "align-start")]
        align_start: bool,
    },
    /// Show the full definition and state.
    Info {
        /// The database (rrdcore or native RRDtool file).
        file: PathBuf,
    },
    /// Print the time of the last update.
    Last {
        /// The database.
        file: PathBuf,
    },
    /// Print the time of the first row of an archive.
    First {
        /// The database.
        file: PathBuf,
        /// Which archive (default 0).
        #[arg(long = "rraindex", default_value_t = 0)]
        rraindex: usize,
    },
    /// Print the last update time and each data source's last value.
    Lastupdate {
        /// The database.
        file: PathBuf,
    },
    /// Write RRDtool's XML dump: `dump FILE [OUT]`
    Dump {
        /// The database (rrdcore or native RRDtool file).
        file: PathBuf,
        /// Where to write (default: standard output).
        out: Option<PathBuf>,
        /// `none`, `dtd` (default) or `xsd`.
        #[arg(long = "header", default_value = "dtd")]
        header: String,
        /// The same as `--header none`.
        #[arg(short = 'n', long = "no-header")]
        no_header: bool,
    },
    /// Create a database from an RRDtool XML dump: `restore [-r] [-f] XML FILE`
    Restore {
        /// Row values outside a data source's min/max become unknown.
        #[arg(short = 'r', long = "range-check")]
        range_check: bool,
        /// Replace FILE if it exists.
        #[arg(short = 'f', long = "force-overwrite")]
        force: bool,
        /// The XML dump.
        xml: PathBuf,
        /// The new database.
        file: PathBuf,
    },
    /// Change a database's definition, keeping its history.
    #[command(disable_help_flag = true)]
    Tune {
        /// Print help.
        #[arg(long = "help", action = clap::ArgAction::Help)]
        help: Option<bool>,
        /// The database.
        file: PathBuf,
        /// `ds-name:heartbeat`
        #[arg(short = 'h', long = "heartbeat")]
        heartbeat: Vec<String>,
        /// `ds-name:min` (U for none)
        #[arg(short = 'i', long = "minimum", allow_hyphen_values = true)]
        minimum: Vec<String>,
        /// `ds-name:max` (U for none)
        #[arg(short = 'a', long = "maximum", allow_hyphen_values = true)]
        maximum: Vec<String>,
        /// `ds-name:DST`
        #[arg(short = 'd', long = "data-source-type")]
        ds_type: Vec<String>,
        /// `old-name:new-name`
        #[arg(short = 'r', long = "data-source-rename")]
        rename: Vec<String>,
        /// `archive-index:xff`
        #[arg(long = "xff")]
        xff: Vec<String>,
        /// Archive changes: `RRA#i:[+-=]rows`, `DELRRA:i`, `RRA:CF:xff:steps:rows`.
        ops: Vec<String>,
    },
    /// Change archives keeping history: `resize FILE RRA#i:[+-=]rows | DELRRA:i | RRA:spec ...`
    /// (also rrdtool's `resize FILE RRA-NUM GROW|SHRINK ROWS`, applied in place)
    Resize {
        /// The database.
        file: PathBuf,
        /// The archive changes.
        #[arg(required = true)]
        ops: Vec<String>,
    },
    /// Import native RRDtool files: `import SRC.rrd DEST`, or `import --tree SRC DEST`.
    Import {
        /// Import every `.rrd` file below SRC into the same layout below DEST.
        #[arg(long)]
        tree: bool,
        /// Replace existing destination files.
        #[arg(long)]
        overwrite: bool,
        /// A native RRDtool file (or a directory with --tree).
        src: PathBuf,
        /// The new rrdcore file (or directory with --tree).
        dest: PathBuf,
    },
    /// Verify files (checksums, torn writes, ring pointers); non-zero exit on any fault.
    Check {
        /// A file or a directory tree.
        path: PathBuf,
    },
    /// Import Nagios perfdata spool files (PNP4Nagios bulk, Nagios templates,
    /// time||host||service||output||perfdata) into the store; each file is
    /// deleted once everything in it is stored.
    ImportPerfdata {
        /// The spool directory.
        spool: PathBuf,
        /// The data directory (default ./data, or the config's).
        #[arg(long = "data-dir")]
        data_dir: Option<PathBuf>,
        /// The server's TOML settings (schema rules, durability...).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Import a tree laid out as HOST/SERVICE/METRIC/value.rrd (native RRDtool
    /// or rrdcore files) into the store, keeping all history.
    ImportTree {
        /// The tree.
        src: PathBuf,
        /// The data directory (default ./data, or the config's).
        #[arg(long = "data-dir")]
        data_dir: Option<PathBuf>,
        /// The server's TOML settings.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Replace series that already exist.
        #[arg(short = 'f', long = "force")]
        force: bool,
    },
    /// Write every series with exactly the tags host and service as
    /// DEST/HOST/SERVICE/METRIC/value.rrd, native RRDtool files.
    ExportTree {
        /// Where to write the tree.
        dest: PathBuf,
        /// The data directory (default ./data, or the config's).
        #[arg(long = "data-dir")]
        data_dir: Option<PathBuf>,
        /// The server's TOML settings.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Run the OpenTSDB-compatible server (HTTP and telnet on one port) until SIGINT/SIGTERM.
    Serve {
        /// Address to listen on (default 127.0.0.1:4242).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// The data directory (default ./data).
        #[arg(long = "data-dir")]
        data_dir: Option<PathBuf>,
        /// A TOML file whose keys override the defaults (see rrdserver.example.toml).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

/// A command failure, printed as RRDtool does (`ERROR: ...`).
#[derive(Debug)]
pub struct CliError(pub String);

impl<E: std::error::Error> From<E> for CliError {
    fn from(e: E) -> Self {
        CliError(e.to_string())
    }
}

fn fail(msg: impl Into<String>) -> CliError {
    CliError(msg.into())
}

/// Runs one command, writing its output to `out`.
pub fn run(cli: Cli, out: &mut dyn Write) -> Result<(), CliError> {
    let now = rrdcore::now();
    match cli.command {
        Command::Create { file, args } => {
            let parsed = Schema::from_rrdtool_args(&args, now.sec)?;
            let opts = rrdcore::CreateOptions {
                start: parsed.start,
                overwrite: !parsed.no_overwrite,
                ..rrdcore::CreateOptions::default()
            };
            Rrd::create(&file, &parsed.schema, &opts)?;
        }
        Command::Update { file, template, skip_past, args } => {
            let mut db = open_writable(&file)?;
            let opts = UpdateOptions {
                template: template.map(|t| t.split(':').map(str::to_owned).collect()),
                skip_past,
                now: Some(now),
            };
            db.update_args(&args, &opts)?;
        }
        Command::Fetch { file, cf, resolution, start, end, align_start } => {
            let cf = Cf::from_name(&cf).ok_or_else(|| fail(format!("unknown consolidation function '{cf}'")))?;
            let resolution = rrdcore::parse_duration(&resolution, 1, "resolution")?;
            let (start, end) = start_end(start.as_deref(), end.as_deref(), now.sec)?;
            let req = FetchRequest { cf, start, end, resolution, align_start };
            let db = open_any(&file)?;
            out.write_all(rrdtext::fetch(&db.fetch(&req)?).as_bytes())?;
        }
        Command::Info { file } => {
            let db = open_any(&file)?;
            out.write_all(rrdtext::info(&file.to_string_lossy(), &db.info()).as_bytes())?;
        }
        Command::Last { file } => writeln!(out, "{}", open_any(&file)?.last_update().sec)?,
        Command::First { file, rraindex } => {
            let db = open_any(&file)?;
            let s = db.schema();
            let rra = s.archives.get(rraindex).ok_or_else(|| fail("invalid rraindex number"))?;
            let st = i64::try_from(rra.steps * s.step).map_err(|_| fail("step too large"))?;
            let last = db.last_update().sec;
            let rows = i64::try_from(rra.rows).map_err(|_| fail("too many rows"))?;
            writeln!(out, "{}", last - last.rem_euclid(st) - (rows - 1) * st)?;
        }
        Command::Lastupdate { file } => out.write_all(rrdtext::lastupdate(&open_any(&file)?.info()).as_bytes())?,
        Command::Dump { file, out: target, header, no_header } => {
            let header = match (no_header, header.as_str()) {
                (true, _) | (false, "none") => crate::xml::Header::None,
                (false, "dtd") => crate::xml::Header::Dtd,
                (false, "xsd") => crate::xml::Header::Xsd,
                (false, other) => return Err(fail(format!("unknown header type '{other}' (none, dtd or xsd)"))),
            };
            let text = crate::xml::dump(&open_any(&file)?, header);
            match target {
                Some(path) => std::fs::write(&path, text).map_err(|e| fail(format!("{}: {e}", path.display())))?,
                None => out.write_all(text.as_bytes())?,
            }
        }
        Command::Restore { range_check, force, xml, file } => restore(&xml, &file, range_check, force)?,
        Command::Tune { file, heartbeat, minimum, maximum, ds_type, rename, xff, ops, .. } => {
            let changes = tune::Changes { heartbeat, minimum, maximum, ds_type, rename, xff, archive_ops: ops };
            tune::apply(&file, &changes)?;
        }
        Command::Resize { file, ops } => {
            let ops = match tune::legacy_resize(&ops)? {
                Some(op) => vec![op],
                None => ops,
            };
            tune::apply(&file, &tune::Changes { archive_ops: ops, ..tune::Changes::default() })?;
        }
        Command::Import { tree, overwrite, src, dest } => {
            if tree {
                import::tree(&src, &dest, overwrite, out)?;
            } else {
                import::file(&src, &dest, overwrite)?;
            }
        }
        Command::Check { path } => import::check(&path, out)?,
        Command::Serve { listen, data_dir, config } => serve::serve(listen, data_dir, config.as_deref())?,
        Command::ImportPerfdata { spool, data_dir, config } => monitor::import_perfdata(&spool, data_dir, config.as_deref(), out)?,
        Command::ImportTree { src, data_dir, config, force } => monitor::import_tree(&src, data_dir, config.as_deref(), force, out)?,
        Command::ExportTree { dest, data_dir, config } => monitor::export_tree(&dest, data_dir, config.as_deref(), out)?,
    }
    Ok(())
}

/// Creates `file` from the XML dump at `xml`.
pub(crate) fn restore(xml: &Path, file: &Path, range_check: bool, overwrite: bool) -> Result<(), CliError> {
    let text = std::fs::read_to_string(xml).map_err(|e| fail(format!("{}: {e}", xml.display())))?;
    let r = crate::xml::restore(&text, range_check).map_err(|e| fail(format!("{}: {e}", xml.display())))?;
    Rrd::create_restored(file, &r.schema, &r.state, &r.rows, overwrite).map_err(|e| fail(format!("{}: {e}", xml.display())))?;
    Ok(())
}

/// Resolves fetch's start and end, either of which may refer to the other.
fn start_end(start: Option<&str>, end: Option<&str>, now: i64) -> Result<(i64, i64), CliError> {
    let (s, e) = (start.unwrap_or("end-24h"), end.unwrap_or("now"));
    let pe = |start| timespec::parse(e, now, start, None).map_err(|err| fail(format!("end time: {err}")));
    let ps = |end| timespec::parse(s, now, None, end).map_err(|err| fail(format!("start time: {err}")));
    match timespec::parse(e, now, None, None) {
        Ok(end) => Ok((ps(Some(end))?, end)),
        Err(_) => {
            let start = ps(None)?;
            Ok((start, pe(Some(start))?))
        }
    }
}

/// What the first bytes of a database file say it is.
#[derive(Debug, PartialEq, Eq)]
enum Kind {
    Ours,
    Native,
    Unknown,
}

fn kind(path: &Path) -> Result<Kind, CliError> {
    use std::io::Read;
    let mut head = [0u8; 8];
    let mut f = std::fs::File::open(path).map_err(|e| fail(format!("opening '{}': {e}", path.display())))?;
    let n = f.read(&mut head).map_err(|e| fail(format!("reading '{}': {e}", path.display())))?;
    Ok(match head.get(..n) {
        Some(h) if h.starts_with(b"RRDCORE\0") => Kind::Ours,
        Some(h) if h.starts_with(b"RRD\0") => Kind::Native,
        _ => Kind::Unknown,
    })
}

/// Opens an rrdcore file read-only, or reads a native RRDtool file into memory.
fn open_any(path: &Path) -> Result<Rrd, CliError> {
    match kind(path)? {
        Kind::Native => {
            let bytes = std::fs::read(path)?;
            rrdcore::native::read(&bytes)
                .and_then(|n| n.to_memory())
                .map_err(|e| fail(format!("{}: {e}", path.display())))
        }
        _ => Ok(Rrd::open_read_only(path)?),
    }
}

fn open_writable(path: &Path) -> Result<Rrd, CliError> {
    if kind(path)? == Kind::Native {
        return Err(fail(format!(
            "{} is a native RRDtool file; import it first (rrdserver import {} NEW.rrd)",
            path.display(),
            path.display()
        )));
    }
    Ok(Rrd::open(path)?)
}
