//! RRDtool's text layouts, so scripts that read `rrdtool` output keep working.

use std::fmt::Write as _;

use rrdcore::{Fetched, Info};

/// C's `%0.10e`: `1.2345678900e+01`, `-nan`/`nan` by sign, `inf`, `-inf`.
pub fn sci(v: f64) -> String {
    if v.is_nan() {
        return if v.is_sign_negative() { "-nan".into() } else { "nan".into() };
    }
    if v.is_infinite() {
        return if v < 0.0 { "-inf".into() } else { "inf".into() };
    }
    let s = format!("{v:.10e}");
    match s.split_once('e') {
        Some((mantissa, exp)) => {
            let (sign, digits) = exp.strip_prefix('-').map_or(("+", exp), |d| ("-", d));
            format!("{mantissa}e{sign}{digits:0>2}")
        }
        None => s,
    }
}

/// `rrdtool info`'s doubles: `%0.10e`, but `NaN` for any NaN.
fn info_num(v: f64) -> String {
    if v.is_nan() { "NaN".into() } else { sci(v) }
}

/// `rrdtool fetch` output.
pub fn fetch(f: &Fetched) -> String {
    let mut out = String::from("           ");
    for name in &f.ds_names {
        let _ = write!(out, "{name:>20}");
    }
    out.push_str("\n\n");
    for (t, row) in f.rows() {
        let _ = write!(out, "{t:>10}:");
        for v in row {
            let _ = write!(out, " {}", sci(*v));
        }
        out.push('\n');
    }
    out
}

/// The RRDtool file version a database of this schema has (`0005` with
/// DCOUNTER/DDERIVE, else `0003`).
pub fn rrd_version(info: &Info) -> &'static str {
    let d = info
        .schema
        .data_sources
        .iter()
        .any(|d| matches!(d.kind, rrdcore::DsType::DCounter | rrdcore::DsType::DDerive));
    if d { "0005" } else { "0003" }
}

/// `rrdtool info` output. `filename` is printed as given.
pub fn info(filename: &str, info: &Info) -> String {
    let mut o = String::new();
    let s = &info.schema;
    let st = &info.state;
    let _ = writeln!(o, "filename = \"{filename}\"");
    let _ = writeln!(o, "rrd_version = \"{}\"", rrd_version(info));
    let _ = writeln!(o, "step = {}", s.step);
    let _ = writeln!(o, "last_update = {}", st.last_update.sec);
    let _ = writeln!(o, "header_size = {}", info.header_size);
    for (i, (d, ds)) in s.data_sources.iter().zip(&st.ds).enumerate() {
        let n = &d.name;
        let _ = writeln!(o, "ds[{n}].index = {i}");
        let _ = writeln!(o, "ds[{n}].type = \"{}\"", d.kind.name());
        let _ = writeln!(o, "ds[{n}].minimal_heartbeat = {}", d.heartbeat);
        let _ = writeln!(o, "ds[{n}].min = {}", info_num(d.min.unwrap_or(f64::NAN)));
        let _ = writeln!(o, "ds[{n}].max = {}", info_num(d.max.unwrap_or(f64::NAN)));
        let _ = writeln!(o, "ds[{n}].last_ds = \"{}\"", ds.last_ds.as_str());
        let _ = writeln!(o, "ds[{n}].value = {}", info_num(ds.pdp_value));
        let _ = writeln!(o, "ds[{n}].unknown_sec = {}", ds.unknown_sec);
    }
    let nds = s.data_sources.len();
    for (r, rra) in s.archives.iter().enumerate() {
        let _ = writeln!(o, "rra[{r}].cf = \"{}\"", rra.cf.name());
        let _ = writeln!(o, "rra[{r}].rows = {}", rra.rows);
        let _ = writeln!(o, "rra[{r}].cur_row = {}", st.cur_row.get(r).copied().unwrap_or(0));
        let _ = writeln!(o, "rra[{r}].pdp_per_row = {}", rra.steps);
        let _ = writeln!(o, "rra[{r}].xff = {}", info_num(rra.xff));
        for (j, c) in st.cdp.iter().skip(r * nds).take(nds).enumerate() {
            let _ = writeln!(o, "rra[{r}].cdp_prep[{j}].value = {}", info_num(c.value));
            let _ = writeln!(o, "rra[{r}].cdp_prep[{j}].unknown_datapoints = {}", c.unknown_pdps);
        }
    }
    o
}

/// `rrdtool lastupdate` output.
pub fn lastupdate(info: &Info) -> String {
    let mut o = String::new();
    for d in &info.schema.data_sources {
        let _ = write!(o, " {}", d.name);
    }
    let _ = write!(o, "\n\n{}:", info.state.last_update.sec);
    for ds in &info.state.ds {
        let _ = write!(o, " {}", ds.last_ds.as_str());
    }
    o.push('\n');
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_printf_e_format() {
        assert_eq!(sci(10.073581352), "1.0073581352e+01");
        assert_eq!(sci(0.000123), "1.2300000000e-04");
        assert_eq!(sci(1e100), "1.0000000000e+100");
        assert_eq!(sci(0.0), "0.0000000000e+00");
        assert_eq!(sci(-0.0), "-0.0000000000e+00");
        assert_eq!(sci(rrdcore::DNAN), "-nan");
        assert_eq!(sci(f64::NAN), "nan");
        assert_eq!(sci(f64::NEG_INFINITY), "-inf");
    }
}
