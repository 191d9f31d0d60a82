//! `tune` and `resize`: change a database's definition, keeping its history.

use std::path::Path;

use rrdcore::{ArchiveSource, DsType, parse_rra};

use super::{CliError, fail, open_writable};

/// The changes `tune` and `resize` take.
#[derive(Debug, Default)]
pub(super) struct Changes {
    pub heartbeat: Vec<String>,
    pub minimum: Vec<String>,
    pub maximum: Vec<String>,
    pub ds_type: Vec<String>,
    pub rename: Vec<String>,
    pub xff: Vec<String>,
    /// `RRA#i:[+-=]n`, `DELRRA:i`, `RRA:CF:xff:steps:rows`, in order.
    pub archive_ops: Vec<String>,
}

fn pair<'a>(text: &'a str, what: &str) -> Result<(&'a str, &'a str), CliError> {
    text.split_once(':').ok_or_else(|| fail(format!("{what} expects NAME:VALUE, got '{text}'")))
}

/// Applies `changes` to the database at `file`.
pub(super) fn apply(file: &Path, changes: &Changes) -> Result<(), CliError> {
    let db = open_writable(file)?;
    let mut schema = db.schema().clone();
    let ds_index = |schema: &rrdcore::Schema, name: &str| {
        schema.ds_index(name).ok_or_else(|| fail(format!("unknown data source name '{name}'")))
    };
    for h in &changes.heartbeat {
        let (name, v) = pair(h, "--heartbeat")?;
        let i = ds_index(&schema, name)?;
        schema.data_sources[i].heartbeat = rrdcore::parse_duration(v, 1, "heartbeat")?;
    }
    let limit = |v: &str| -> Result<Option<f64>, CliError> {
        if v == "U" { Ok(None) } else { rrdcore::number::parse_full(v).map(Some).ok_or_else(|| fail(format!("'{v}' is not a number or U"))) }
    };
    for m in &changes.minimum {
        let (name, v) = pair(m, "--minimum")?;
        let i = ds_index(&schema, name)?;
        schema.data_sources[i].min = limit(v)?;
    }
    for m in &changes.maximum {
        let (name, v) = pair(m, "--maximum")?;
        let i = ds_index(&schema, name)?;
        schema.data_sources[i].max = limit(v)?;
    }
    for d in &changes.ds_type {
        let (name, v) = pair(d, "--data-source-type")?;
        let i = ds_index(&schema, name)?;
        schema.data_sources[i].kind = DsType::from_name(v).ok_or_else(|| fail(format!("unknown data source type '{v}'")))?;
    }
    for r in &changes.rename {
        let (old, new) = pair(r, "--data-source-rename")?;
        let i = ds_index(&schema, old)?;
        schema.data_sources[i].name = new.to_owned();
    }
    let mut sources: Vec<ArchiveSource> = (0..schema.archives.len()).map(ArchiveSource::Existing).collect();
    for x in &changes.xff {
        let (idx, v) = pair(x, "--xff")?;
        let i: usize = idx.parse().map_err(|_| fail(format!("'{idx}' is not an archive index")))?;
        let xff = rrdcore::number::parse_full(v).ok_or_else(|| fail(format!("'{v}' is not a number")))?;
        schema.archives.get_mut(i).ok_or_else(|| fail(format!("no archive {i}")))?.xff = xff;
    }
    for op in &changes.archive_ops {
        archive_op(op, &mut schema, &mut sources)?;
    }
    schema.validate()?;
    db.reshape(&schema, &sources)?;
    Ok(())
}

fn archive_op(op: &str, schema: &mut rrdcore::Schema, sources: &mut Vec<ArchiveSource>) -> Result<(), CliError> {
    let index = |text: &str, len: usize| -> Result<usize, CliError> {
        text.parse::<usize>().ok().filter(|i| *i < len).ok_or_else(|| fail(format!("'{text}' is not an archive index (0 to {})", len.saturating_sub(1))))
    };
    if let Some(rest) = op.strip_prefix("RRA#") {
        let (idx, change) = pair(rest, "RRA#")?;
        let i = index(idx, schema.archives.len())?;
        let (sign, num) = change.split_at(change.find(|c: char| c.is_ascii_digit()).unwrap_or(0));
        let n: u64 = num.parse().map_err(|_| fail(format!("'{change}' is not [+-=]ROWS")))?;
        let rra = &mut schema.archives[i];
        rra.rows = match sign {
            "+" => rra.rows.saturating_add(n),
            "-" => rra.rows.checked_sub(n).filter(|r| *r > 0).ok_or_else(|| fail("an archive keeps at least one row"))?,
            "=" | "" => n,
            _ => return Err(fail(format!("'{change}' is not [+-=]ROWS"))),
        };
    } else if let Some(idx) = op.strip_prefix("DELRRA:") {
        let i = index(idx, schema.archives.len())?;
        schema.archives.remove(i);
        sources.remove(i);
    } else if op.starts_with("RRA:") {
        schema.archives.push(parse_rra(op, schema.step)?);
        sources.push(ArchiveSource::New);
    } else {
        return Err(fail(format!("unknown change '{op}' (RRA#i:[+-=]rows, DELRRA:i or RRA:CF:xff:steps:rows)")));
    }
    Ok(())
}

/// `resize FILE RRA-NUM GROW|SHRINK ROWS` (rrdtool's form) as an archive op.
pub(super) fn legacy_resize(args: &[String]) -> Result<Option<String>, CliError> {
    match args {
        [num, how, rows] if how == "GROW" || how == "SHRINK" => {
            let sign = if how == "GROW" { "+" } else { "-" };
            Ok(Some(format!("RRA#{num}:{sign}{rows}")))
        }
        _ => Ok(None),
    }
}
