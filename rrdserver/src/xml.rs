//! RRDtool's XML interchange: `dump` writes exactly what `rrdtool dump`
//! writes; `restore` reads what `rrdtool dump` writes (element names in any
//! case, whitespace and comments ignored).

use std::fmt::Write as _;

use rrdcore::{
    Archive, CdpState, Cf, DNAN, DataSource, DsState, DsType, LastDs, Rrd, Schema, State, Timestamp, number,
    timespec::utc_datetime,
};

/// A dump's header line choice (`--header none|dtd|xsd`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Header {
    /// No XML declaration or DOCTYPE.
    None,
    /// The DTD reference (rrdtool's default).
    #[default]
    Dtd,
    /// The XSD reference.
    Xsd,
}

/// `%0.10e`, with `NaN` for any NaN as dump prints it.
fn num(v: f64) -> String {
    if v.is_nan() { "NaN".into() } else { crate::rrdtext::sci(v) }
}

/// `rrdtool dump` of a database.
pub fn dump(db: &Rrd, header: Header) -> String {
    let s = db.schema();
    let st = db.state();
    let info = db.info();
    let mut o = String::new();
    match header {
        Header::None => o.push_str("<!-- Round Robin Database Dump -->\n<rrd>\n"),
        Header::Dtd => o.push_str(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<!DOCTYPE rrd SYSTEM \"https://oss.oetiker.ch/rrdtool/rrdtool.dtd\">\n<!-- Round Robin Database Dump -->\n<rrd>\n",
        ),
        Header::Xsd => o.push_str(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<!-- Round Robin Database Dump -->\n<rrd xmlns=\"https://oss.oetiker.ch/rrdtool/rrdtool-dump.xsd\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n",
        ),
    }
    let last = st.last_update.sec;
    let _ = writeln!(o, "\t<version>{}</version>", crate::rrdtext::rrd_version(&info));
    let _ = writeln!(o, "\t<step>{}</step> <!-- Seconds -->", s.step);
    let _ = writeln!(o, "\t<lastupdate>{last}</lastupdate> <!-- {} -->\n", utc_datetime(last));
    for (d, ds) in s.data_sources.iter().zip(&st.ds) {
        let _ = writeln!(o, "\t<ds>\n\t\t<name> {} </name>\n\t\t<type> {} </type>", d.name, d.kind.name());
        let _ = writeln!(o, "\t\t<minimal_heartbeat>{}</minimal_heartbeat>", d.heartbeat);
        let _ = writeln!(o, "\t\t<min>{}</min>\n\t\t<max>{}</max>\n", num(d.min.unwrap_or(f64::NAN)), num(d.max.unwrap_or(f64::NAN)));
        let _ = writeln!(o, "\t\t<!-- PDP Status -->\n\t\t<last_ds>{}</last_ds>", ds.last_ds.as_str());
        let _ = writeln!(o, "\t\t<value>{}</value>\n\t\t<unknown_sec> {} </unknown_sec>\n\t</ds>\n", num(ds.pdp_value), ds.unknown_sec);
    }
    o.push_str("\t<!-- Round Robin Archives -->\n");
    let nds = s.data_sources.len();
    for (r, rra) in s.archives.iter().enumerate() {
        let rra_step = i64::try_from(rra.steps * s.step).unwrap_or(i64::MAX);
        let _ = writeln!(o, "\t<rra>\n\t\t<cf>{}</cf>", rra.cf.name());
        let _ = writeln!(o, "\t\t<pdp_per_row>{}</pdp_per_row> <!-- {rra_step} seconds -->\n", rra.steps);
        let _ = writeln!(o, "\t\t<params>\n\t\t<xff>{}</xff>\n\t\t</params>\n\t\t<cdp_prep>", num(rra.xff));
        for c in st.cdp.iter().skip(r * nds).take(nds) {
            let _ = writeln!(o, "\t\t\t<ds>\n\t\t\t<primary_value>{}</primary_value>", num(c.primary));
            let _ = writeln!(o, "\t\t\t<secondary_value>{}</secondary_value>", num(c.secondary));
            let _ = writeln!(o, "\t\t\t<value>{}</value>", num(c.value));
            let _ = writeln!(o, "\t\t\t<unknown_datapoints>{}</unknown_datapoints>\n\t\t\t</ds>", c.unknown_pdps);
        }
        o.push_str("\t\t</cdp_prep>\n\t\t<database>\n");
        let cur = st.cur_row.get(r).copied().unwrap_or(0);
        let cal_end = last - last.rem_euclid(rra_step);
        let rows = i64::try_from(rra.rows).unwrap_or(0);
        for k in 0..rra.rows {
            let slot = (cur + 1 + k) % rra.rows;
            let t = cal_end - (rows - 1 - i64::try_from(k).unwrap_or(0)) * rra_step;
            let _ = write!(o, "\t\t\t<!-- {} / {t} --> <row>", utc_datetime(t));
            for d in 0..nds {
                let _ = write!(o, "<v>{}</v>", num(db.stored_value(r, slot, d).unwrap_or(DNAN)));
            }
            o.push_str("</row>\n");
        }
        o.push_str("\t\t</database>\n\t</rra>\n");
    }
    o.push_str("</rrd>\n");
    o
}

/// An element of the parsed dump.
#[derive(Debug, Default)]
struct Node {
    name: String,
    text: String,
    children: Vec<Node>,
}

impl Node {
    fn child(&self, name: &str) -> Result<&Node, String> {
        self.children.iter().find(|c| c.name == name).ok_or_else(|| format!("<{}> has no <{name}>", self.name))
    }
    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }
    fn text_of(&self, name: &str) -> Result<&str, String> {
        Ok(self.child(name)?.text.trim())
    }
    fn int<T: std::str::FromStr>(&self, name: &str) -> Result<T, String> {
        let t = self.text_of(name)?;
        t.parse().map_err(|_| format!("<{name}> {t:?} is not a whole number"))
    }
    fn float(&self, name: &str) -> Result<f64, String> {
        value(self.text_of(name)?).map_err(|e| format!("<{name}>: {e}"))
    }
}

/// A number as a dump writes it; `NaN` reads back as RRDtool's unknown.
fn value(t: &str) -> Result<f64, String> {
    match number::parse_full(t) {
        Some(v) if v.is_nan() => Ok(DNAN),
        Some(v) => Ok(v),
        None => Err(format!("{t:?} is not a number")),
    }
}

/// The character an entity or character reference stands for.
fn entity(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => {
            let code = name.strip_prefix("#x").map_or_else(
                || name.strip_prefix('#').and_then(|d| d.parse().ok()),
                |h| u32::from_str_radix(h, 16).ok(),
            )?;
            char::from_u32(code)
        }
    }
}

fn parse_tree(xml: &str) -> Result<Node, String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack = vec![Node::default()];
    loop {
        let event = reader.read_event().map_err(|e| format!("XML error at byte {}: {e}", reader.buffer_position()))?;
        match event {
            Event::Start(e) => stack.push(Node {
                name: e.name().as_ref().to_lowercase(),
                ..Node::default()
            }),
            Event::Empty(e) => {
                let node = Node { name: e.name().as_ref().to_lowercase(), ..Node::default() };
                stack.last_mut().ok_or("unbalanced XML")?.children.push(node);
            }
            Event::Text(t) => {
                let text = t.xml10_content();
                stack.last_mut().ok_or("unbalanced XML")?.text.push_str(&text);
            }
            Event::GeneralRef(r) => {
                let name = r.xml10_content();
                let c = entity(&name).ok_or_else(|| format!("unknown XML entity &{name};"))?;
                stack.last_mut().ok_or("unbalanced XML")?.text.push(c);
            }
            Event::End(_) => {
                let node = stack.pop().ok_or("unbalanced XML")?;
                stack.last_mut().ok_or("unbalanced XML: more closing tags than opening ones")?.children.push(node);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if stack.len() != 1 {
        return Err("unbalanced XML: an element is not closed".into());
    }
    let root = stack.pop().ok_or("empty XML")?;
    root.children.into_iter().find(|n| n.name == "rrd").ok_or_else(|| "no <rrd> element".into())
}

/// What a dump describes: schema, state and rows (ring order, newest last).
pub struct Restored {
    /// Step, data sources, archives.
    pub schema: Schema,
    /// Live state; each ring's current row is its last.
    pub state: State,
    /// Per archive, rows oldest first.
    pub rows: Vec<Vec<f64>>,
}

/// Reads an `rrdtool dump`. With `range_check`, row values outside a data
/// source's min/max become unknown (`rrdtool restore --range-check`).
pub fn restore(xml: &str, range_check: bool) -> Result<Restored, String> {
    let rrd = parse_tree(xml)?;
    let version: u32 = rrd.int("version")?;
    if version > 5 {
        return Err(format!("unsupported RRD version {version}"));
    }
    let step: u64 = rrd.int("step")?;
    let last: i64 = rrd.int("lastupdate")?;
    let mut data_sources = Vec::new();
    let mut ds_state = Vec::new();
    for ds in rrd.all("ds") {
        let name = ds.text_of("name")?.to_owned();
        let kind_name = ds.text_of("type")?;
        let kind = DsType::from_name(kind_name).ok_or_else(|| format!("data source {name}: type {kind_name} is not supported"))?;
        let limit = |v: f64| if v.is_nan() { None } else { Some(v) };
        data_sources.push(DataSource {
            name: name.clone(),
            kind,
            heartbeat: ds.int("minimal_heartbeat")?,
            min: limit(ds.float("min")?),
            max: limit(ds.float("max")?),
        });
        let last_ds = ds.text_of("last_ds")?;
        ds_state.push(DsState {
            last_ds: LastDs::from_stored(last_ds.as_bytes()).ok_or_else(|| format!("data source {name}: last_ds longer than 29 bytes"))?,
            pdp_value: ds.float("value")?,
            unknown_sec: ds.int("unknown_sec")?,
        });
    }
    let nds = data_sources.len();
    let mut archives = Vec::new();
    let mut cdp = Vec::new();
    let mut rows = Vec::new();
    for (r, rra) in rrd.all("rra").enumerate() {
        let cf_name = rra.text_of("cf")?;
        let cf = Cf::from_name(cf_name).ok_or_else(|| format!("archive {r}: CF {cf_name} is not supported"))?;
        let xff = rra.child("params")?.float("xff")?;
        let steps: u64 = rra.int("pdp_per_row")?;
        for ds in rra.child("cdp_prep")?.all("ds") {
            cdp.push(CdpState {
                value: ds.float("value")?,
                unknown_pdps: ds.int("unknown_datapoints")?,
                primary: ds.float("primary_value")?,
                secondary: ds.float("secondary_value")?,
            });
        }
        let mut values = Vec::new();
        for row in rra.child("database")?.all("row") {
            let vs: Vec<f64> = row.all("v").map(|v| value(v.text.trim())).collect::<Result<_, _>>()?;
            if vs.len() != nds {
                return Err(format!("archive {r}: a row has {} values for {nds} data sources", vs.len()));
            }
            for (v, d) in vs.into_iter().zip(&data_sources) {
                let out = range_check && (d.min.is_some_and(|m| v < m) || d.max.is_some_and(|m| v > m));
                values.push(if out { DNAN } else { v });
            }
        }
        let row_count = (values.len() / nds.max(1)) as u64;
        archives.push(Archive { cf, xff, steps, rows: row_count });
        rows.push(values);
    }
    if cdp.len() != nds * archives.len() {
        return Err("each archive needs one <cdp_prep><ds> per data source".into());
    }
    let schema = Schema { step, data_sources, archives };
    schema.validate().map_err(|e| e.to_string())?;
    let cur_row = schema.archives.iter().map(|a| a.rows - 1).collect();
    let state = State { last_update: Timestamp::from_secs(last), ds: ds_state, cur_row, cdp };
    Ok(Restored { schema, state, rows })
}
