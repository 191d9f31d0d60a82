//! The monitoring engines' layouts: Nagios perfdata spools
//! (`import-perfdata`) and trees of `HOST/SERVICE/METRIC/value.rrd`
//! (`import-tree`, `export-tree`), mapped to series `METRIC{host,service}`.

use std::io::Write;
use std::path::{Path, PathBuf};

use rrdcore::native::NativeRrd;
use rrdcore::{Rrd, SeriesKey, Store, StoreConfig};

use super::{CliError, fail};
use crate::perfdata::opentsdb_name;
use crate::server::{App, Config};

/// The file name of a series in a tree.
pub const TREE_FILE: &str = "value.rrd";

fn config(data_dir: Option<PathBuf>, file: Option<&Path>) -> Result<Config, CliError> {
    let mut c = match file {
        Some(p) => Config::from_file(p)?,
        None => Config::default(),
    };
    if let Some(d) = data_dir {
        c.data_dir = d;
    }
    Ok(c)
}

fn open_store(c: &Config) -> Result<Store, CliError> {
    Store::open(&c.data_dir, StoreConfig { max_open: c.max_open_databases, rules: c.rules.clone() })
        .map_err(|e| fail(format!("cannot open the data directory {}: {e}", c.data_dir.display())))
}

/// `import-perfdata SPOOL`: every file in the spool, through the journal.
pub(super) fn import_perfdata(spool: &Path, data_dir: Option<PathBuf>, file: Option<&Path>, out: &mut dyn Write) -> Result<(), CliError> {
    let c = config(data_dir, file)?;
    let app = App::open(c.clone()).map_err(|e| fail(format!("cannot open the data directory {}: {e}", c.data_dir.display())))?;
    let report = crate::perfdata::import::import_dir(&app, spool, false);
    let closed = app.close();
    let report = report.map_err(fail)?;
    for line in report.skipped.iter().chain(&report.refused).chain(&report.failed) {
        eprintln!("WARNING: {line}");
    }
    writeln!(
        out,
        "imported {} values from {} files; {} lines or items skipped, {} values refused, {} files kept",
        report.values,
        report.files,
        report.skipped.len(),
        report.refused.len(),
        report.failed.len()
    )?;
    closed.map_err(|e| fail(e.to_string()))?;
    if !report.failed.is_empty() {
        return Err(fail(format!("{} spool files could not be stored and were kept", report.failed.len())));
    }
    Ok(())
}

/// The series of a tree file `HOST/SERVICE/METRIC/value.rrd` below `root`.
fn tree_key(root: &Path, path: &Path) -> Result<SeriesKey, String> {
    let rel = path.strip_prefix(root).map_err(|e| e.to_string())?;
    let parts: Vec<String> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
    let [host, service, metric, name] = parts.as_slice() else {
        return Err(format!("not laid out as HOST/SERVICE/METRIC/{TREE_FILE}"));
    };
    if name != TREE_FILE {
        return Err(format!("not laid out as HOST/SERVICE/METRIC/{TREE_FILE}"));
    }
    SeriesKey::new(opentsdb_name(metric), [("host", opentsdb_name(host).as_str()), ("service", opentsdb_name(service).as_str())]).map_err(|e| e.to_string())
}

/// A tree file read whole: native RRDtool, or an rrdcore file.
fn read_any(path: &Path) -> Result<NativeRrd, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    if bytes.starts_with(b"RRD\0") {
        return rrdcore::native::read(&bytes).map_err(|e| e.to_string());
    }
    Rrd::from_bytes(bytes).map(|db| NativeRrd::from_rrd(&db)).map_err(|e| e.to_string())
}

/// `import-tree SRC`: each file with all its history and state.
pub(super) fn import_tree(src: &Path, data_dir: Option<PathBuf>, file: Option<&Path>, force: bool, out: &mut dyn Write) -> Result<(), CliError> {
    let c = config(data_dir, file)?;
    let store = open_store(&c)?;
    let files = super::import::rrd_files(src)?;
    let bar = super::import::progress(files.len());
    let mut failures = Vec::new();
    for path in &files {
        let done = tree_key(src, path).and_then(|key| {
            let n = read_any(path)?;
            store.insert_image(&key, &n.schema, &n.state, &n.rows, force).map_err(|e| e.to_string())
        });
        if let Err(e) = done {
            let line = format!("{}: {e}", path.display());
            bar.suspend(|| eprintln!("ERROR: {line}"));
            failures.push(line);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    store.flush()?;
    writeln!(out, "imported {} of {} files, {} failed", files.len() - failures.len(), files.len(), failures.len())?;
    if failures.is_empty() { Ok(()) } else { Err(fail(format!("{} files could not be imported", failures.len()))) }
}

/// A path component for a name: `/` cannot be one.
fn component(s: &str) -> String {
    s.replace('/', "_")
}

/// `export-tree DEST`: series with exactly `host` and `service` tags.
pub(super) fn export_tree(dest: &Path, data_dir: Option<PathBuf>, file: Option<&Path>, out: &mut dyn Write) -> Result<(), CliError> {
    let c = config(data_dir, file)?;
    let store = open_store(&c)?;
    let series: Vec<SeriesKey> = store.series().into_iter().filter(|k| k.tags().len() == 2 && k.tag("host").is_some() && k.tag("service").is_some()).collect();
    let bar = super::import::progress(series.len());
    for key in &series {
        let bytes = store.with_db(key, |db| NativeRrd::from_rrd(db).to_bytes())?;
        let dir = dest.join(component(key.tag("host").unwrap_or_default())).join(component(key.tag("service").unwrap_or_default())).join(component(key.metric()));
        std::fs::create_dir_all(&dir).map_err(|e| fail(format!("{}: {e}", dir.display())))?;
        let path = dir.join(TREE_FILE);
        std::fs::write(&path, bytes).map_err(|e| fail(format!("{}: {e}", path.display())))?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    writeln!(out, "exported {} series to {}", series.len(), dest.display())?;
    Ok(())
}
