//! `import` (native RRDtool files into rrdcore files, one or a whole tree) and
//! `check` (verify files).

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{CliError, Kind, fail, kind};

/// Imports one native RRDtool file (or an RRDtool XML dump).
pub(super) fn file(src: &Path, dest: &Path, overwrite: bool) -> Result<(), CliError> {
    let bytes = std::fs::read(src).map_err(|e| fail(format!("{}: {e}", src.display())))?;
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<') {
        return super::restore(src, dest, false, overwrite);
    }
    let native = rrdcore::native::read(&bytes).map_err(|e| fail(format!("{}: {e}", src.display())))?;
    if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    native.import(dest, overwrite).map_err(|e| fail(format!("{}: {e}", dest.display())))?;
    Ok(())
}

/// Every `.rrd` file below `dir`, sorted.
pub(super) fn rrd_files(dir: &Path) -> Result<Vec<PathBuf>, CliError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(|e| fail(format!("{}: {e}", d.display())))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rrd") {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A progress bar over `n` files (drawn only on a terminal).
pub(super) fn progress(n: usize) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(n as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} files, {per_sec}, eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// Imports every `.rrd` file below `src` into the same layout below `dest`;
/// a file that cannot be read is reported and skipped.
pub(super) fn tree(src: &Path, dest: &Path, overwrite: bool, out: &mut dyn Write) -> Result<(), CliError> {
    let files = rrd_files(src)?;
    let bar = progress(files.len());
    let mut failures = Vec::new();
    for path in &files {
        let rel = path.strip_prefix(src).unwrap_or(path);
        if let Err(e) = file(path, &dest.join(rel), overwrite) {
            bar.suspend(|| eprintln!("ERROR: {}", e.0));
            failures.push(e.0);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    writeln!(out, "imported {} of {} files, {} failed", files.len() - failures.len(), files.len(), failures.len())?;
    if failures.is_empty() { Ok(()) } else { Err(fail(format!("{} files could not be imported", failures.len()))) }
}

/// Checks a file or every `.rrd` file below a directory.
pub(super) fn check(path: &Path, out: &mut dyn Write) -> Result<(), CliError> {
    let files = if path.is_dir() { rrd_files(path)? } else { vec![path.to_path_buf()] };
    let mut faults = 0;
    for f in &files {
        match check_one(f) {
            Ok(note) => writeln!(out, "ok {}{note}", f.display())?,
            Err(e) => {
                faults += 1;
                writeln!(out, "FAULT {}: {}", f.display(), e.0)?;
            }
        }
    }
    writeln!(out, "{} files checked, {} faults", files.len(), faults)?;
    if faults == 0 { Ok(()) } else { Err(fail(format!("{faults} of {} files are damaged", files.len()))) }
}

fn check_one(path: &Path) -> Result<String, CliError> {
    let bytes = std::fs::read(path)?;
    match kind(path)? {
        Kind::Native => {
            rrdcore::native::read(&bytes)?;
            Ok(" (native RRDtool file)".into())
        }
        Kind::Ours | Kind::Unknown => {
            let report = rrdcore::check_bytes(&bytes)?;
            Ok(match report.torn_slot {
                Some(why) => format!(" (the newest live-state write was torn and is not used: {why})"),
                None => String::new(),
            })
        }
    }
}
