//! `GET /api/host` (`bosun-api.md` §3.1): the host inventory Opserver
//! polls, built from the last-value table and tag metadata, with the traps
//! of §6.3 handled: `ICMPData` is null without ping data, integer fields
//! are JSON integers, no disk has a zero size, `OpenIncidents` is null.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value as Json, json};

use super::meta::TagMeta;
use super::meta::MetaDb;
use crate::server::app::Reads;
use crate::server::index::{Last, Series};

/// A host shows while it has a point this recent.
pub const FRESH_MS: u64 = 48 * 3_600_000;

/// The inventory of every host seen in the last 48 hours, at `now_ms`.
pub fn hosts(r: &Reads<'_>, meta: &MetaDb, now_ms: u64) -> Json {
    let fresh = |l: &Last| l.time_ms + FRESH_MS >= now_ms;
    // Series by host, for the metrics the inventory reads.
    let mut by_host: BTreeMap<String, Vec<Arc<Series>>> = BTreeMap::new();
    for s in r.index.all_series() {
        if let Some(h) = s.tag("host") {
            by_host.entry(h.to_owned()).or_default().push(s);
        }
    }
    // Tag metadata, read once: by host, and the guests each hypervisor runs.
    let mut meta_by_host: BTreeMap<String, Vec<TagMeta>> = BTreeMap::new();
    let mut guests: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for m in meta.tags_containing(&[]) {
        let Some(h) = m.tags.iter().find(|(k, _)| k == "host").map(|(_, v)| v.clone()) else { continue };
        if m.name == "hypervisor" {
            guests.entry(m.value.clone()).or_default().push(h.clone());
        }
        meta_by_host.entry(h).or_default().push(m);
    }
    let mut out = Map::new();
    for (host, series) in by_host {
        let seen = series.iter().filter_map(|s| r.last_point(s)).any(|l| fresh(&l));
        if !seen {
            continue;
        }
        let meta = meta_by_host.remove(&host).unwrap_or_default();
        let h = Host { r, host: &host, series: &series, now_ms, meta, guests: guests.get(&host).map_or(&[], Vec::as_slice) };
        out.insert(host.clone(), h.build());
    }
    Json::Object(out)
}

struct Host<'a> {
    r: &'a Reads<'a>,
    host: &'a str,
    series: &'a [Arc<Series>],
    now_ms: u64,
    /// Tag metadata whose tag set holds this host.
    meta: Vec<TagMeta>,
    /// Hosts whose `hypervisor` metadata names this host.
    guests: &'a [String],
}

fn secs(l: &Last) -> u64 {
    l.time_ms / 1000
}

#[expect(clippy::cast_possible_truncation, reason = "Bosun truncates to an integer")]
fn int(v: f64) -> i64 {
    if v.is_finite() { v as i64 } else { 0 }
}

/// A float64 field as Go's encoder writes it: integral values without a
/// fraction (`25276063744`, not `25276063744.0`).
pub fn num(v: f64) -> Json {
    if !v.is_finite() {
        return json!(0);
    }
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        #[expect(clippy::cast_possible_truncation, reason = "integral and below 2^53")]
        return json!(v as i64);
    }
    json!(v)
}

impl Host<'_> {
    fn fresh(&self, l: &Last) -> bool {
        l.time_ms + FRESH_MS >= self.now_ms
    }

    /// Series of `metric` for this host, each with its last point.
    fn of(&self, metric: &str) -> Vec<(&Arc<Series>, Last)> {
        self.series.iter().filter(|s| s.key.metric() == metric).filter_map(|s| Some((s, self.r.last_point(s)?))).collect()
    }

    /// The host-level series of `metric`: `{host=H}` exactly if it exists,
    /// otherwise the one with the fewest tags (extra global tags allowed).
    fn single(&self, metric: &str) -> Option<Last> {
        let mut all = self.of(metric);
        all.sort_by_key(|(s, _)| s.key.tags().len());
        all.first().map(|(_, l)| *l)
    }

    /// The series of `metric` with exactly the tags of `like`.
    fn same_tags(&self, metric: &str, like: &Series) -> Option<Last> {
        self.series
            .iter()
            .find(|s| s.key.metric() == metric && s.key.tags() == like.key.tags())
            .and_then(|s| self.r.last_point(s))
    }

    fn meta_value(&self, name: &str) -> Option<&str> {
        self.meta.iter().filter(|m| m.name == name && m.tags.len() == 1).max_by_key(|m| m.time).map(|m| m.value.as_str())
    }

    fn build(&self) -> Json {
        let mut h = Map::new();
        h.insert("CPU".into(), self.cpu());
        h.insert("ICMPData".into(), self.icmp());
        h.insert("Disks".into(), self.disks());
        h.insert("OpenIncidents".into(), Json::Null);
        h.insert("Interfaces".into(), self.interfaces());
        if let Some(up) = self.single("os.system.uptime") {
            h.insert("UptimeSeconds".into(), json!(int(up.value)));
        }
        for (field, name) in [("Manufacturer", "manufacturer"), ("Model", "model"), ("SerialNumber", "serialNumber")] {
            if let Some(v) = self.meta_value(name) {
                h.insert(field.into(), json!(v));
            }
        }
        if let Some(hw) = self.hardware() {
            h.insert("Hardware".into(), hw);
        }
        h.insert("Memory".into(), self.memory());
        if let Some(p) = self.processes() {
            h.insert("Processes".into(), p);
        }
        if let Some(s) = self.services() {
            h.insert("Services".into(), s);
        }
        h.insert("Name".into(), json!(self.host));
        h.insert("OS".into(), self.os());
        if let Some(v) = self.meta_value("hypervisor") {
            h.insert("VM".into(), json!({"Host": v}));
        }
        if !self.guests.is_empty() {
            h.insert("Guests".into(), json!(self.guests));
        }
        Json::Object(h)
    }

    fn cpu(&self) -> Json {
        let mut cpu = Map::new();
        let (pct, t) = match self.single("os.cpu") {
            Some(l) => (l.rate, secs(&l)),
            None => self.single("cisco.cpu").map_or((0.0, 0), |l| (l.value, secs(&l))),
        };
        cpu.insert("PercentUsed".into(), num(pct));
        cpu.insert("StatsLastUpdated".into(), json!(t));
        let procs: Map<String, Json> = self
            .meta
            .iter()
            .filter(|m| m.name == "processor")
            .filter_map(|m| Some((m.tags.iter().find(|(k, _)| k == "name")?.1.clone(), json!(m.value))))
            .collect();
        if !procs.is_empty() {
            cpu.insert("Processors".into(), Json::Object(procs));
        }
        Json::Object(cpu)
    }

    fn memory(&self) -> Json {
        let total = self.single("os.mem.total");
        let used = self.single("os.mem.used");
        json!({
            "TotalBytes": num(total.map_or(0.0, |l| l.value)),
            "UsedBytes": num(used.map_or(0.0, |l| l.value)),
            "StatsLastUpdated": total.map_or(0, |l| secs(&l)),
        })
    }

    fn os(&self) -> Json {
        let mut os = Map::new();
        // Whichever of versionCaption and uname was written last wins, as in Bosun.
        let caption = self.meta.iter().filter(|m| (m.name == "versionCaption" || m.name == "uname") && m.tags.len() == 1).max_by_key(|m| m.time);
        if let Some(c) = caption {
            os.insert("Caption".into(), json!(c.value));
        }
        if let Some(v) = self.meta_value("version") {
            os.insert("Version".into(), json!(v));
        }
        Json::Object(os)
    }

    fn disks(&self) -> Json {
        let mut disks = Map::new();
        for (s, total) in self.of("os.disk.fs.space_total") {
            let Some(disk) = s.tag("disk") else { continue };
            // A zero-size disk makes Opserver divide by zero; a stale one is gone.
            if !self.fresh(&total) || int(total.value) <= 0 {
                continue;
            }
            let used = self.same_tags("os.disk.fs.space_used", s).map_or(0, |l| int(l.value));
            let mut d = Map::new();
            d.insert("UsedBytes".into(), json!(used));
            d.insert("TotalBytes".into(), json!(int(total.value)));
            if let Some(label) = self.meta.iter().find(|m| m.name == "label" && m.tags == s.key.tags()) {
                d.insert("Label".into(), json!(label.value));
            }
            d.insert("StatsLastUpdated".into(), json!(secs(&total)));
            disks.insert(disk.to_owned(), Json::Object(d));
        }
        if disks.is_empty() { Json::Null } else { Json::Object(disks) }
    }

    fn interfaces(&self) -> Json {
        let mut ifaces: BTreeMap<String, Map<String, Json>> = BTreeMap::new();
        let mut addresses: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for m in &self.meta {
            let Some(iface) = m.tags.iter().find(|(k, _)| k == "iface").map(|(_, v)| v.clone()) else { continue };
            let entry = ifaces.entry(iface.clone()).or_default();
            if let Some(iname) = m.tags.iter().find(|(k, _)| k == "iname") {
                entry.insert("Name".into(), json!(iname.1));
            }
            match m.name.as_str() {
                "name" => {
                    entry.insert("Name".into(), json!(m.value));
                }
                "description" | "alias" => {
                    entry.insert("Description".into(), json!(m.value));
                }
                "mac" => {
                    entry.insert("MAC".into(), json!(m.value));
                }
                "master" => {
                    entry.insert("Master".into(), json!(m.value));
                }
                "addresses" => {
                    let list: Vec<String> = serde_json::from_str(&m.value).unwrap_or_default();
                    addresses.entry(iface).or_default().extend(list);
                }
                "remoteMacs" | "cdpCacheEntries" => {
                    let field = if m.name == "remoteMacs" { "RemoteMacs" } else { "CDPCacheEntries" };
                    if let Ok(v) = serde_json::from_str::<Json>(&m.value) {
                        entry.insert(field.into(), v);
                    }
                }
                _ => {}
            }
        }
        for (iface, entry) in &mut ifaces {
            if let Some(list) = addresses.get(iface).filter(|l| !l.is_empty()) {
                entry.insert("IPAddresses".into(), json!(list));
            }
            let (mut inbps, mut outbps, mut updated, mut kind) = (0i64, 0i64, 0u64, "");
            let mut speed = None;
            for family in ["", "virtual", "bond", "tunnel", "other"] {
                let base = if family.is_empty() { "os.net".to_owned() } else { format!("os.net.{family}") };
                for (s, l) in self.of(&format!("{base}.bytes")) {
                    if s.tag("iface") != Some(iface.as_str()) {
                        continue;
                    }
                    match s.tag("direction") {
                        Some("in") => inbps = int(l.rate) * 8,
                        Some("out") => outbps = int(l.rate) * 8,
                        _ => continue,
                    }
                    updated = secs(&l);
                    kind = family;
                }
                for (s, l) in self.of(&format!("{base}.ifspeed")) {
                    if s.tag("iface") == Some(iface.as_str()) && self.fresh(&l) {
                        speed = Some(int(l.value));
                    }
                }
            }
            entry.insert("Inbps".into(), json!(inbps));
            if let Some(sp) = speed {
                entry.insert("LinkSpeed".into(), json!(sp));
            }
            entry.insert("Outbps".into(), json!(outbps));
            entry.insert("StatsLastUpdated".into(), json!(updated));
            entry.insert("Type".into(), json!(kind));
        }
        Json::Object(ifaces.into_iter().map(|(k, v)| (k, Json::Object(v))).collect())
    }

    fn processes(&self) -> Option<Json> {
        let mut out = Map::new();
        for (s, cpu) in self.of("os.proc.cpu") {
            let Some(name) = s.tag("name") else { continue };
            if !self.fresh(&cpu) {
                continue;
            }
            let get = |m: &str| self.same_tags(m, s);
            let (real, virt, count) = (get("os.proc.mem.real"), get("os.proc.mem.virtual"), get("os.proc.count"));
            out.insert(
                name.to_owned(),
                json!({
                    "CPUPercentUsed": num(cpu.rate), "CPUPercentLastUpdated": secs(&cpu),
                    "UsedRealBytes": real.map_or(0, |l| int(l.value)), "UsedRealBytesLastUpdated": real.map_or(0, |l| secs(&l)),
                    "UsedVirtualBytes": virt.map_or(0, |l| int(l.value)), "UsedVirtualBytesLastUpdated": virt.map_or(0, |l| secs(&l)),
                    "Count": count.map_or(0, |l| int(l.value)), "CountLastUpdated": count.map_or(0, |l| secs(&l)),
                }),
            );
        }
        (!out.is_empty()).then_some(Json::Object(out))
    }

    fn services(&self) -> Option<Json> {
        let out: Map<String, Json> = self
            .of("os.service.running")
            .into_iter()
            .filter(|(_, l)| self.fresh(l))
            .filter_map(|(s, l)| Some((s.tag("name")?.to_owned(), json!({"Running": l.value != 0.0, "RunningLastUpdated": secs(&l)}))))
            .collect();
        (!out.is_empty()).then_some(Json::Object(out))
    }

    /// Ping results Bosun itself records (`bosun.ping.*` with `dst_host`);
    /// null when there are none (an empty object marks the host unreachable in Opserver).
    fn icmp(&self) -> Json {
        let mut out = Map::new();
        for s in self.r.index.series_of("bosun.ping.timeout") {
            if s.tag("dst_host") != Some(self.host) {
                continue;
            }
            let Some(timeout) = self.r.last_point(&s).filter(|l| self.fresh(l)) else { continue };
            let Some(source) = s.tag("host") else { continue };
            let sibling = |metric: &str| self.r.index.series_of(metric).into_iter().find(|o| o.key.tags() == s.key.tags()).and_then(|o| self.r.last_point(&o));
            let rtt = sibling("bosun.ping.rtt");
            let resolved = sibling("bosun.ping.resolved");
            out.insert(
                source.to_owned(),
                json!({
                    "TimedOut": timeout.value == 1.0, "TimedOutLastUpdated": secs(&timeout),
                    "DNSResolved": resolved.is_some_and(|l| l.value == 1.0), "DNSResolvedLastUpdated": resolved.map_or(0, |l| secs(&l)),
                    "RTTMS": num(rtt.map_or(0.0, |l| l.value)), "RTTLastUpdated": rtt.map_or(0, |l| secs(&l)),
                }),
            );
        }
        if out.is_empty() { Json::Null } else { Json::Object(out) }
    }

    /// Dell OpenManage data (§3.1.3); omitted when there is none.
    fn hardware(&self) -> Option<Json> {
        let status = |l: &Last| if l.value == 0.0 { "Ok" } else { "Bad" };
        let by_tag = |metric: &str, tag: &str| -> Map<String, Json> {
            self.of(metric)
                .into_iter()
                .filter(|(_, l)| self.fresh(l))
                .filter_map(|(s, l)| Some((s.tag(tag)?.to_owned(), json!({"Status": status(&l), "StatusLastUpdated": secs(&l)}))))
                .collect()
        };
        let meta_json = |name: &str, s: &Series| -> Map<String, Json> {
            self.meta
                .iter()
                .find(|m| m.name == name && m.tags == s.key.tags())
                .and_then(|m| serde_json::from_str::<Map<String, Json>>(&m.value).ok())
                .unwrap_or_default()
        };
        let with_meta = |metric: &str, meta: &str| -> Map<String, Json> {
            self.of(metric)
                .into_iter()
                .filter(|(_, l)| self.fresh(l))
                .filter_map(|(s, l)| {
                    let mut o = meta_json(meta, s);
                    o.insert("Status".into(), json!(status(&l)));
                    o.insert("StatusLastUpdated".into(), json!(secs(&l)));
                    Some((s.tag("id")?.to_owned(), Json::Object(o)))
                })
                .collect()
        };
        let components = by_tag("hw.chassis", "component");
        let mut memory = by_tag("hw.chassis.memory", "name");
        for m in self.meta.iter().filter(|m| m.name == "memory") {
            if let Some((_, name)) = m.tags.iter().find(|(k, _)| k == "name")
                && let Some(Json::Object(o)) = memory.get_mut(name)
            {
                o.insert("Size".into(), json!(m.value));
            }
        }
        let temps: Map<String, Json> = self
            .of("hw.chassis.temps.reading")
            .into_iter()
            .filter(|(_, l)| self.fresh(l))
            .filter_map(|(s, reading)| {
                let st = self.same_tags("hw.chassis.temps", s);
                Some((
                    s.tag("name")?.to_owned(),
                    json!({"Celsius": num(reading.value), "Status": st.map_or("Bad", |l| status(&l)), "StatusLastUpdated": st.map_or(0, |l| secs(&l)), "CelsiusLastUpdated": secs(&reading)}),
                ))
            })
            .collect();
        let power = self.single("hw.chassis.power.reading").filter(|l| self.fresh(l));
        let controllers = with_meta("hw.storage.controller", "controllerMeta");
        let pdisks = with_meta("hw.storage.pdisk", "physicalDiskMeta");
        let vdisks = with_meta("hw.storage.vdisk", "");
        let batteries = with_meta("hw.storage.battery", "");
        let mut supplies = with_meta("hw.ps", "psMeta");
        // Amps and volts come from readings named after the supply's number (id + 1).
        for (id, entry) in &mut supplies {
            let (Ok(n), Json::Object(o)) = (id.parse::<u64>().map(|i| i + 1), entry) else { continue };
            let reading = |metric: &str, tag: &str, value: &str| {
                self.of(metric).into_iter().find(|(s, _)| s.tag(tag) == Some(value)).map(|(_, l)| l).filter(|l| self.fresh(l))
            };
            if let Some(a) = reading("hw.chassis.current.reading", "id", &format!("PS{n}")) {
                o.insert("Amps".into(), num(a.value));
                o.insert("AmpsLastUpdated".into(), json!(secs(&a)));
            }
            if let Some(v) = reading("hw.chassis.volts.reading", "name", &format!("PS{n}_Voltage_{n}")) {
                o.insert("Volts".into(), num(v.value));
                o.insert("VoltsLastUpdated".into(), json!(secs(&v)));
            }
        }
        let all_empty = [&components, &memory, &temps, &controllers, &pdisks, &vdisks, &batteries, &supplies].iter().all(|m| m.is_empty()) && power.is_none();
        if all_empty {
            return None;
        }
        Some(json!({
            "Memory": memory,
            "ChassisComponents": components,
            "Storage": {"Controllers": controllers, "PhysicalDisks": pdisks, "VirtualDisks": vdisks, "Batteries": batteries},
            "PowerSupplies": supplies,
            "Temps": temps,
            "BoardPowerReading": power.map(|l| json!({"Watts": int(l.value), "WattsLastUpdated": secs(&l)})),
        }))
    }
}
