//! Bosun's surface, replaying the real scollector traffic of
//! `../shared/fixtures/scollector-capture.txt` (a copy is committed in
//! `tests/fixtures/`) and comparing with Bosun's answers (`bosun-api.md`
//! §3.1.1 computed by hand for that capture, §E of the fixture), timestamps
//! shifted to now. Then Opserver's own requests.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use common::{Server, gzip};
use serde_json::{Value, json};

/// The capture's second collection cycle.
const T2: i64 = 1_795_318_239;

fn fixture() -> String {
    let shared = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/scollector-capture.txt");
    let local = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scollector-capture.txt");
    std::fs::read_to_string(shared).or_else(|_| std::fs::read_to_string(local)).unwrap()
}

/// JSON lines of a section (from `start` up to the next line starting with `stop`).
fn lines_between(text: &str, start: &str, stop: &str) -> Vec<Value> {
    let mut on = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with(start) {
            on = true;
            continue;
        }
        if on && line.starts_with(stop) {
            break;
        }
        if on && line.starts_with('{') {
            out.push(serde_json::from_str(line).unwrap());
        }
    }
    out
}

fn now() -> i64 {
    i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()).unwrap()
}

/// Moves every point's timestamp by `shift`.
fn shifted(points: &[Value], shift: i64) -> Vec<Value> {
    points
        .iter()
        .map(|p| {
            let mut p = p.clone();
            p["timestamp"] = json!(p["timestamp"].as_i64().unwrap() + shift);
            p
        })
        .collect()
}

/// A server fed the capture up to its second cycle, as scollector and a
/// tsdbrelay in front would send it; and the time shift applied.
fn fed() -> (tempfile::TempDir, Server, i64) {
    fed_after(|_, _| {})
}

/// As [`fed`], with `history(server, shift)` run first (for older points).
fn fed_after(history: impl FnOnce(&Server, i64)) -> (tempfile::TempDir, Server, i64) {
    let text = fixture();
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let shift = now() - T2 - 60;
    history(&s, shift);
    let cycles: Vec<Value> = lines_between(&text, "## Section A", "## Section B").into_iter().filter(|p| p["timestamp"].as_i64().unwrap() <= T2).collect();
    assert!(cycles.len() > 30);
    // scollector: gzip JSON arrays, Content-Type JSON, exactly 204 expected.
    let body = gzip(json!(shifted(&cycles, shift)).to_string().as_bytes());
    let r = s.client().send("POST", "/api/put", &[("Content-Type", "application/json"), ("Content-Encoding", "gzip")], &body);
    assert_eq!(r.status, 204, "{}", r.text());
    // Metadata: a plain JSON array.
    let meta = lines_between(&text, "# C3.", "#     counts by Name");
    assert!(meta.len() > 50);
    let r = s.client().send("POST", "/api/metadata/put", &[("Content-Type", "application/json")], json!(meta).to_string().as_bytes());
    assert_eq!(r.status, 204, "{}", r.text());
    (dir, s, shift)
}

#[test]
fn host_inventory_matches_bosun() {
    let (_dir, s, shift) = fed();
    let r = s.get("/api/host");
    assert_eq!(r.status, 200);
    let got = r.json();
    let t = |x: i64| x + shift;
    // bosun-api.md §3.1.1, the answer for this capture after its second cycle,
    // except ICMPData: null rather than {} (an empty object marks the host
    // unreachable in Opserver, §6.3).
    let expected = json!({"vm": {
        "CPU": {"PercentUsed": 19.466666666666665, "StatsLastUpdated": t(1_795_318_239)},
        "ICMPData": null,
        "Disks": {"/": {"UsedBytes": 13_510_262_784_i64, "TotalBytes": 270_553_174_016_i64, "StatsLastUpdated": t(1_795_318_224)}},
        "OpenIncidents": null,
        "Interfaces": {
            "eth0": {"IPAddresses": ["192.0.2.2/24", "fd00::2/64", "fe80::fc:ff:fe00:1/64"],
                     "Inbps": 13_317_632, "LinkSpeed": -1, "MAC": "02FC00000001", "Name": "eth0",
                     "Outbps": 14_200, "StatsLastUpdated": t(1_795_318_239), "Type": ""},
            "ifb0": {"Inbps": 0, "MAC": "BEAEB023414C", "Name": "ifb0", "Outbps": 0, "StatsLastUpdated": 0, "Type": ""},
            "ifb1": {"Inbps": 0, "MAC": "F6FC8BBF43D6", "Name": "ifb1", "Outbps": 0, "StatsLastUpdated": 0, "Type": ""}},
        "UptimeSeconds": 471,
        "Memory": {"TotalBytes": 25_276_063_744_i64, "UsedBytes": 617_103_360, "StatsLastUpdated": t(1_795_318_239)},
        "Name": "vm",
        "OS": {"Caption": "Linux vm 6.18.44-fc-v769 #1 SMP PREEMPT_DYNAMIC @0 x86_64 GNU/Linux", "Version": "Debian GNU/Linux 12 (bookworm)"}
    }});
    assert_eq!(got, expected, "\ngot:  {got}\nwant: {expected}");
    // Integer fields are JSON integers (Opserver reads them into int/long).
    assert!(got["vm"]["UptimeSeconds"].is_i64() && got["vm"]["Disks"]["/"]["TotalBytes"].is_i64());
}

#[test]
fn listings_last_and_metadata_match_bosun() {
    let (_dir, s, shift) = fed();
    // E2: denormalized names are listed under the host, beside the real ones.
    let by_host = s.get("/api/metric/host").json();
    let names: Vec<&str> = by_host["vm"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    for n in ["__vm.os.cpu", "__vm.os.mem.used", "__vm.os.net.bytes", "os.cpu", "os.mem.used", "os.net.bytes", "os.system.uptime", "os.disk.fs.space_used"] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    assert!(!names.iter().any(|n| n.starts_with("__vm.os.disk")));
    let plain = s.get("/api/metric").json();
    assert!(plain.as_array().unwrap().iter().all(|m| !m.as_str().unwrap().starts_with("__")));
    assert!(s.get("/api/metric?unfiltered").json().as_array().unwrap().contains(&json!("__vm.os.cpu")));
    assert!(s.get("/api/metric/host/vm").json().as_array().unwrap().contains(&json!("__vm.os.net.bytes")));
    // E3.
    assert_eq!(s.get("/api/tagk/os.net.bytes").json(), json!(["direction", "host", "iface"]));
    assert_eq!(s.get("/api/tagv/iface/os.net.bytes").json(), json!(["eth0"]));
    assert_eq!(s.get("/api/tagv/host").json(), json!(["vm"]));
    assert_eq!(
        s.get("/api/tagsets/os.net.bytes").json(),
        json!([{"direction": "in", "host": "vm", "iface": "eth0"}, {"direction": "out", "host": "vm", "iface": "eth0"}])
    );
    assert_eq!(s.get("/api/tagsets/os.net.bytes?tags=direction=out").json().as_array().unwrap().len(), 1);
    assert_eq!(s.get("/api/last?metric=os.cpu&tagset=%7Bhost=vm%7D").json(), json!({"Value": 11285, "Timestamp": T2 + shift}));
    assert_eq!(s.get("/api/last?metric=os.cpu&tagset=%7Bhost=vm%7D&counter=1").json(), json!({"Value": 19.466666666666665, "Timestamp": T2 + shift}));
    assert_eq!(s.get("/api/last?metric=os.cpu&tagset=%7Bhost=nope%7D").status, 404);
    let m = s.get("/api/metadata/metrics?metric=os.cpu").json();
    assert_eq!((m["Unit"].clone(), m["Rate"].clone(), m["TagKeys"].clone()), (json!("percent"), json!("counter"), json!(["host"])));
    assert!(m["LastTouched"].is_i64() && m.get("Desc").is_none());
    assert_eq!(s.get("/api/metadata/metrics?metric=__vm.os.cpu").json()["Unit"], "percent");
    let all = s.get("/api/metadata/metrics").json();
    assert_eq!(all["os.mem.used"]["Desc"], "The amount of used memory. In Linux this metric excludes buffers, cache, from used memory.");
    assert!(all.get("__vm.os.cpu").is_none());
    let mut got = s.get("/api/metadata/get?metric=os.cpu").json().as_array().unwrap().clone();
    got.sort_by_key(Value::to_string);
    assert_eq!(got, vec![json!({"Metric": "os.cpu", "Name": "rate", "Value": "counter"}), json!({"Metric": "os.cpu", "Name": "unit", "Value": "percent"})]);
    let recs = s.get("/api/metadata/get?tagk=host&tagv=vm&tagk=iface&tagv=eth0").json();
    let mut names: Vec<&str> = recs.as_array().unwrap().iter().map(|r| r["Name"].as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(names, ["addresses", "mac", "name"]);
    assert!(recs.as_array().unwrap().iter().all(|r| r["Tags"] == json!({"host": "vm", "iface": "eth0"}) && r["Value"].is_string() && r["Time"].as_str().unwrap().ends_with('Z')));
    // Numbers are kept as Go prints them; desc/unit/rate need a metric (a 4xx here).
    assert_eq!(s.post("/api/metadata/put", r#"[{"Tags":{"host":"vm"},"Name":"speed","Value":1000000000}]"#).status, 204);
    let speed = s.get("/api/metadata/get?tagk=host&tagv=vm").json();
    assert!(speed.as_array().unwrap().iter().any(|r| r["Name"] == "speed" && r["Value"] == "1e+09"));
    let r = s.post("/api/metadata/put", r#"[{"Name":"desc","Value":"d"}]"#);
    assert_eq!(r.status, 400);
    assert!(r.text().contains("desc, rate, and unit require metric name"));
    for bad in ["", "{", "[1]", "\u{0}\u{1}binary", "[{\"Value\":1}]"] {
        assert_eq!(s.post("/api/metadata/put", bad).status, 400, "{bad:?}");
    }
}

#[test]
fn a_tsdbrelay_in_front_adds_nothing_twice() {
    let (dir, s, shift) = fed();
    let text = fixture();
    // tsdbrelay sends its denormalized batch to /api/put and the same bytes to /api/index.
    let c1 = shifted(&lines_between(&text, "# C1.", "# C2."), shift);
    assert_eq!(c1.len(), 4);
    let body = gzip(json!(c1).to_string().as_bytes());
    let r = s.client().send("POST", "/api/put", &[("Content-Encoding", "gzip")], &body);
    assert_eq!(r.status, 204);
    let r = s.client().send("POST", "/api/index", &[], &body);
    assert_eq!(r.status, 200);
    // No series was created for the __ names: the data directory has none.
    let dirs: Vec<String> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(dirs.iter().all(|d| !d.starts_with("__")), "{dirs:?}");
    let stats = s.get("/api/stats").json();
    let stat = |name: &str| stats.as_array().unwrap().iter().find(|x| x["metric"] == name).map(|x| x["value"].clone());
    assert_eq!(stat("tsd.series.count"), Some(json!(cycles_series_count(&text).to_string())));
    // /api/index alone teaches names without storing: a new series appears in listings.
    let idx = json!([{"metric": "app.only.indexed", "timestamp": T2 + shift, "value": 3, "tags": {"host": "vm"}}]);
    assert_eq!(s.client().send("POST", "/api/index", &[], &gzip(idx.to_string().as_bytes())).status, 200);
    assert!(s.get("/api/metric/host").json()["vm"].as_array().unwrap().contains(&json!("app.only.indexed")));
    assert_eq!(s.get("/api/last?metric=app.only.indexed&tagset=%7Bhost=vm%7D").json()["Value"], 3.0);
    // ... and it survives a restart (redb), as do the metadata.
    s.stop();
    let s = Server::start(dir.path());
    assert!(s.get("/api/metric/host").json()["vm"].as_array().unwrap().contains(&json!("app.only.indexed")));
    assert_eq!(s.get("/api/metadata/metrics?metric=os.cpu").json()["Unit"], "percent");
    assert_eq!(s.get("/api/host").json()["vm"]["OS"]["Version"], "Debian GNU/Linux 12 (bookworm)");
}

fn cycles_series_count(text: &str) -> usize {
    let mut set: Vec<String> = lines_between(text, "## Section A", "## Section B")
        .into_iter()
        .filter(|p| p["timestamp"].as_i64().unwrap() <= T2)
        .map(|p| format!("{}{}", p["metric"], p["tags"]))
        .collect();
    set.sort();
    set.dedup();
    set.len()
}

/// Two hours of scollector-like counters before the capture, at the
/// capture's rates: eth0 in 1,664,704 B/s, out 1,775 B/s, os.cpu 19.47 %/s.
fn history(s: &Server, shift: i64) {
    let mut pts = Vec::new();
    for k in (2..480).rev() {
        let t = T2 - 15 * k;
        let dt = t - 1_795_318_224;
        pts.push(json!({"metric": "os.net.bytes", "timestamp": t + shift, "value": 113_152_611 + 1_664_704 * dt, "tags": {"direction": "in", "host": "vm", "iface": "eth0"}}));
        pts.push(json!({"metric": "os.net.bytes", "timestamp": t + shift, "value": 335_717 + 1_775 * dt, "tags": {"direction": "out", "host": "vm", "iface": "eth0"}}));
        pts.push(json!({"metric": "os.cpu", "timestamp": t + shift, "value": 10_993 + (292 * dt) / 15, "tags": {"host": "vm"}}));
    }
    assert_eq!(s.post("/api/put", &json!(pts).to_string()).status, 204);
}

#[test]
fn opserver_requests() {
    let (_dir, s, shift) = fed_after(history);
    // Opserver's graph request (§6.2): json spliced into the URL, percent-encoded by .NET.
    let start = rrd_date(T2 + shift - 86_400);
    let q = json!({"start": start, "queries": [{"metric": "__vm.os.net.bytes", "aggregator": "sum",
        "tags": {"host": "vm", "direction": "*"}, "rate": true, "rateOptions": {"resetValue": 1, "counter": true}}]});
    let encoded: String = q.to_string().bytes().map(|b| if b.is_ascii_alphanumeric() || b"-_.".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") }).collect();
    let r = s.get(&format!("/api/graph?json={encoded}&autods=500"));
    assert_eq!(r.status, 200, "{}", r.text());
    let g = r.json();
    assert_eq!(g["Annotations"], Value::Null);
    assert_eq!(g["Warnings"], json!([]));
    let series = g["Series"].as_array().unwrap();
    assert_eq!(series.len(), 2, "{g}");
    for (sr, dir) in series.iter().zip(["in", "out"]) {
        assert_eq!(sr["Metric"], "__vm.os.net.bytes");
        assert_eq!(sr["Tags"]["direction"], dir, "network series carry direction");
        assert_eq!(sr["Tags"]["host"], "vm");
        assert_eq!(sr["Name"], format!("__vm.os.net.bytes{{direction={dir},host=vm,iface=eth0}}"));
        let data = sr["Data"].as_array().unwrap();
        assert!(data.len() >= 20, "two hours in 172 s buckets of 5-minute rows: {}", data.len());
        assert!(data.windows(2).all(|w| w[0][0].as_u64() < w[1][0].as_u64()));
        let want = if dir == "in" { 1_664_704.0 } else { 1_775.0 };
        // The series' first row holds only part of its interval, so the first rate is off. The rest
        // match to 1e-4: the capture's own last points differ from the synthetic line by a few bytes.
        for p in &data[1..] {
            let v = p[1].as_f64().unwrap();
            assert!((v - want).abs() / want < 1e-4, "{dir}: {v} vs {want}: {data:?}");
        }
        assert_eq!(sr["Unit"], "");
    }
    // In and out are bucketed alike (Opserver joins them by timestamp).
    let stamps = |i: usize| -> Vec<u64> { series[i]["Data"].as_array().unwrap().iter().map(|p| p[0].as_u64().unwrap()).collect() };
    assert_eq!(stamps(0), stamps(1));
    // 24 hours over 500 points: 172 s buckets.
    let qtext = g["Queries"][0].as_str().unwrap_or_else(|| panic!("{g}"));
    assert!(qtext.starts_with("q(\"sum:172s-avg:rate{counter,,1}:__vm.os.net.bytes{direction=*,host=vm}"), "{qtext}");
    // The day cache query (host=*), with only the characters .NET escapes escaped.
    let day = json!({"start": start, "queries": [{"metric": "os.cpu", "aggregator": "sum", "tags": {"host": "*"}, "rate": true, "rateOptions": {"resetValue": 1, "counter": true}}]});
    let r = s.get(&format!("/api/graph?json={}&autods=500", day.to_string().replace('"', "%22").replace(' ', "%20")));
    assert_eq!(r.status, 200, "{}", r.text());
    let cpu = r.json();
    assert_eq!(cpu["Series"][0]["Tags"]["host"], "vm");
    let points = cpu["Series"][0]["Data"].as_array().unwrap();
    assert!(points[1..].iter().all(|p| (p[1].as_f64().unwrap() - 19.466_666).abs() < 0.01), "{points:?}");
    // Nothing matched: Series is null, never [].
    let empty = json!({"start": rrd_date(T2 + shift - 7200), "end": rrd_date(T2 + shift - 3600), "queries": [{"metric": "os.mem.used", "aggregator": "sum", "tags": {"host": "*"}}]});
    let r = s.get(&format!("/api/graph?json={}", empty.to_string().replace('"', "%22").replace(' ', "%20")));
    assert_eq!(r.json(), json!({"Queries": [], "Series": null, "Annotations": null, "Warnings": []}));
    // b64 form, and bad input.
    let r = s.get("/api/graph?json=%7Bnot%20json");
    assert_eq!(r.status, 400);
    assert_eq!(s.get("/api/graph").status, 400);
}

/// `yyyy/MM/dd-HH:mm:ss` in UTC, as Opserver formats times.
fn rrd_date(t: i64) -> String {
    // "YYYY-MM-DD HH:MM:SS UTC"
    let text = rrdcore::timespec::utc_datetime(t);
    format!("{}-{}", text[..10].replace('-', "/"), &text[11..19])
}

#[test]
fn hardware_disks_and_bad_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let t = now() - 30;
    let p = |m: &str, v: f64, tags: Value| json!({"metric": m, "timestamp": t, "value": v, "tags": tags});
    let pts = json!([
        p("os.disk.fs.space_total", 0.0, json!({"host": "db1", "disk": "/empty"})),
        p("os.disk.fs.space_total", 100.0, json!({"host": "db1", "disk": "/data"})),
        p("os.disk.fs.space_used", 40.0, json!({"host": "db1", "disk": "/data"})),
        p("hw.chassis", 0.0, json!({"host": "db1", "component": "fans"})),
        p("hw.chassis", 2.0, json!({"host": "db1", "component": "psu"})),
        p("hw.chassis.temps.reading", 41.5, json!({"host": "db1", "name": "CPU1"})),
        p("hw.chassis.temps", 0.0, json!({"host": "db1", "name": "CPU1"})),
        p("hw.chassis.power.reading", 252.0, json!({"host": "db1"})),
        p("hw.storage.pdisk", 0.0, json!({"host": "db1", "id": "0_1"})),
        p("hw.ps", 0.0, json!({"host": "db1", "id": "0"})),
        p("hw.chassis.current.reading", 0.6, json!({"host": "db1", "id": "PS1"})),
        p("hw.chassis.volts.reading", 230.0, json!({"host": "db1", "name": "PS1_Voltage_1"})),
        p("os.service.running", 1.0, json!({"host": "db1", "name": "sshd"})),
        p("bosun.ping.timeout", 0.0, json!({"host": "bosun1", "dst_host": "db1"})),
        p("bosun.ping.rtt", 0.25, json!({"host": "bosun1", "dst_host": "db1"})),
    ]);
    assert_eq!(s.post("/api/put", &pts.to_string()).status, 204);
    let meta = json!([{"Tags": {"host": "db1", "id": "0_1"}, "Name": "physicalDiskMeta", "Value": "{\"Name\":\"Disk 0:1\",\"NegotatiedSpeed\":\"6 Gbps\"}"},
                      {"Tags": {"host": "db1"}, "Name": "model", "Value": "PowerEdge R640"},
                      {"Tags": {"host": "db1", "id": "0"}, "Name": "psMeta", "Value": "{\"RatedInputWattage\":\"900\",\"RatedOutputWattage\":\"750\"}"},
                      {"Tags": {"host": "db1", "disk": "/data"}, "Name": "label", "Value": "DATA"}]);
    assert_eq!(s.post("/api/metadata/put", &meta.to_string()).status, 204);
    let h = s.get("/api/host").json();
    let db1 = &h["db1"];
    assert_eq!(db1["Disks"], json!({"/data": {"UsedBytes": 40, "TotalBytes": 100, "Label": "DATA", "StatsLastUpdated": t}}), "no zero-size disk");
    let hw = &db1["Hardware"];
    assert_eq!(hw["ChassisComponents"], json!({"fans": {"Status": "Ok", "StatusLastUpdated": t}, "psu": {"Status": "Bad", "StatusLastUpdated": t}}));
    assert_eq!(hw["Temps"]["CPU1"], json!({"Celsius": 41.5, "Status": "Ok", "StatusLastUpdated": t, "CelsiusLastUpdated": t}));
    assert_eq!(hw["BoardPowerReading"], json!({"Watts": 252, "WattsLastUpdated": t}));
    assert_eq!(hw["Storage"]["PhysicalDisks"]["0_1"]["NegotatiedSpeed"], "6 Gbps");
    assert_eq!(hw["Storage"]["PhysicalDisks"]["0_1"]["Status"], "Ok");
    assert_eq!(
        hw["PowerSupplies"]["0"],
        json!({"Status": "Ok", "StatusLastUpdated": t, "Amps": 0.6, "AmpsLastUpdated": t, "Volts": 230, "VoltsLastUpdated": t, "RatedInputWattage": "900", "RatedOutputWattage": "750"})
    );
    assert_eq!(db1["Services"], json!({"sshd": {"Running": true, "RunningLastUpdated": t}}));
    assert_eq!(db1["Model"], "PowerEdge R640");
    assert_eq!(db1["ICMPData"]["bosun1"]["TimedOut"], false);
    assert_eq!(db1["ICMPData"]["bosun1"]["RTTMS"], 0.25);
    // bosun1 only pings: it has series (host=bosun1) and shows as a host without hardware.
    assert!(h["bosun1"].get("Hardware").is_none());
    // Bad bodies: 4xx, nothing lost.
    for body in [&b"\x1f\x8b\x08\x00garbage"[..], b"\x00\x01\x02\x03", b"{\"metric\":", b"[]"] {
        let r = s.client().send("POST", "/api/index", &[], body);
        assert!((400..500).contains(&r.status), "{body:?}: {}", r.status);
    }
    let r = s.req("POST", "/api/index", &vec![b'['; 40 << 20]);
    assert_eq!(r.status, 413);
    assert_eq!(s.get("/api/host").json()["db1"]["Disks"]["/data"]["TotalBytes"], 100);
}
