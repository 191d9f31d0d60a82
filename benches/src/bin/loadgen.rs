//! Ingest and query load against `rrdserver`, and side by side in the same
//! run against VictoriaMetrics (Debian's `victoria-metrics`), both started
//! here on loopback with fresh data directories.
//!
//! ```sh
//! cargo build --release -p rrdserver -p rrd-benches
//! target/release/loadgen [--rounds N] [--conns C] [--series S] [--batch B] [--no-vm] [--durability sync|interval|none] [--reorder-ms W]
//! ```
//!
//! For each server and protocol it sends `rounds` rounds of one point per
//! series (current timestamps, one second apart per round): over HTTP as
//! `/api/put` JSON arrays of `batch` points on `conns` keep-alive
//! connections, over telnet as `put` lines on `conns` connections. It waits
//! until the server reports every point ingested (rrdserver: accepted into
//! its journal and writers; VictoriaMetrics: rows inserted), then prints points/s
//! (wall clock) and the server's CPU seconds per million points (from
//! /proc, so the load generator's own CPU is not counted). Last, it times
//! single-series 2-day queries over one keep-alive connection (rrdserver).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Clone, Copy)]
struct Opts {
    rounds: u64,
    conns: usize,
    series: usize,
    batch: usize,
    vm: bool,
    /// rrdserver's `durability`: `sync`, `interval` or `none`.
    durability: &'static str,
    /// rrdserver's `reorder_window_ms`.
    reorder_ms: u64,
    /// Which protocols to run: `--only http` or `--only telnet` (profiling one).
    only: Option<bool>,
}

fn parse_opts() -> Opts {
    let mut o = Opts { rounds: 30, conns: 2, series: 10_000, batch: 1000, vm: true, durability: "interval", reorder_ms: 0, only: None };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = || it.next().and_then(|v| v.parse::<u64>().ok()).unwrap_or_else(|| die(&format!("{a} needs a number")));
        match a.as_str() {
            "--rounds" => o.rounds = num(),
            "--conns" => o.conns = usize::try_from(num()).unwrap_or(1).max(1),
            "--series" => o.series = usize::try_from(num()).unwrap_or(1).max(1),
            "--batch" => o.batch = usize::try_from(num()).unwrap_or(1).max(1),
            "--no-vm" => o.vm = false,
            "--reorder-ms" => o.reorder_ms = num(),
            "--only" => {
                o.only = match it.next().map(String::as_str) {
                    Some("http") => Some(false),
                    Some("telnet") => Some(true),
                    _ => die("--only takes http or telnet"),
                }
            }
            "--durability" => {
                o.durability = match it.next().map(String::as_str) {
                    Some("sync") => "sync",
                    Some("interval") => "interval",
                    Some("none") => "none",
                    _ => die("--durability takes sync, interval or none"),
                }
            }
            other => die(&format!("unknown argument {other}")),
        }
    }
    o
}

/// Servers started, stopped by [`die`] too.
static CHILDREN: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

fn die(msg: &str) -> ! {
    eprintln!("loadgen: {msg}");
    for pid in CHILDREN.lock().map(|c| c.clone()).unwrap_or_default() {
        let _ = Command::new("kill").arg(pid.to_string()).status();
    }
    std::process::exit(2)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or_else(|e| die(&format!("no free port: {e}")))
}

fn now_s() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// CPU seconds (user + system) a process has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at ')'.
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0) + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    ticks as f64 / 100.0 // USER_HZ on Linux
}

/// A server under test.
struct Target {
    name: &'static str,
    child: Child,
    port: u16,
    /// Port of the HTTP API that reports counters (VictoriaMetrics' own).
    stats_port: u16,
    dir: PathBuf,
    /// Wait for points written to databases, not only accepted (rrdserver:
    /// its CPU then includes applying them and creating new series' files).
    wait_stored: bool,
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("loadgen-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap_or_else(|e| die(&format!("{}: {e}", d.display())));
    d
}

fn wait_http(port: u16, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(mut c) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = write!(c, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut s = String::new();
            let _ = c.read_to_string(&mut s);
            if s.starts_with("HTTP/1.1 200") {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    die(&format!("server on port {port} did not become ready"));
}

fn start_rrdserver(bin: &Path, o: &Opts) -> Target {
    let dir = temp_dir("rrd");
    let port = free_port();
    let config = dir.join("rrdserver.toml");
    std::fs::write(&config, format!("durability = \"{}\"\nreorder_window_ms = {}\n", o.durability, o.reorder_ms)).unwrap_or_else(|e| die(&format!("{}: {e}", config.display())));
    let child = Command::new(bin)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| die(&format!("cannot start {}: {e}", bin.display())));
    if let Ok(mut c) = CHILDREN.lock() {
        c.push(child.id());
    }
    wait_http(port, "/api/version");
    Target { name: "rrdserver", child, port, stats_port: port, dir, wait_stored: true }
}

fn start_vm() -> Option<Target> {
    let bin = ["/usr/bin/victoria-metrics", "/usr/local/bin/victoria-metrics"].into_iter().find(|p| Path::new(p).exists())?;
    let dir = temp_dir("vm");
    let (http, tsdb) = (free_port(), free_port());
    let child = Command::new(bin)
        .arg(format!("-storageDataPath={}", dir.display()))
        .args(["-retentionPeriod=1d", "-search.latencyOffset=0s", "-loggerLevel=ERROR"])
        .arg(format!("-httpListenAddr=127.0.0.1:{http}"))
        .arg(format!("-opentsdbListenAddr=127.0.0.1:{tsdb}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    if let Ok(mut c) = CHILDREN.lock() {
        c.push(child.id());
    }
    wait_http(http, "/health");
    Some(Target { name: "victoria-metrics", child, port: tsdb, stats_port: http, dir, wait_stored: false })
}

/// One HTTP exchange on a keep-alive connection; the status and body.
fn exchange(r: &mut BufReader<TcpStream>, head: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let s = r.get_mut();
    if s.write_all(head.as_bytes()).and_then(|()| s.write_all(body)).is_err() {
        die("connection lost while sending");
    }
    let mut line = String::new();
    let _ = r.read_line(&mut line);
    let status = line.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let mut len = 0usize;
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut out = vec![0; len];
    let _ = r.read_exact(&mut out);
    (status, out)
}

fn series_name(i: usize) -> (String, String) {
    (format!("lg.m{}", i % 10), format!("h{}", i / 10))
}

/// The body of `GET path` (HTTP/1.0, so never chunked).
fn get_body(port: u16, path: &str) -> String {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap_or_else(|e| die(&format!("stats: {e}")));
    let _ = write!(c, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n");
    let mut s = String::new();
    let _ = c.read_to_string(&mut s);
    s.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default()
}

/// A counter of rrdserver's `/api/stats` text.
fn stat(text: &str, name: &str) -> u64 {
    // {"metric":"tsd.rpc.received",...,"value":"N"}
    let Some(i) = text.find(&format!("\"{name}\"")) else { return 0 };
    let rest = text.get(i..).unwrap_or("");
    let v = rest.split("\"value\":\"").nth(1).and_then(|v| v.split('"').next()).unwrap_or("0");
    v.parse().unwrap_or(0)
}

/// Points ingested so far, as the server counts them: rrdserver's accepted
/// points (received less rejected: journaled and taken by its writers, as
/// VictoriaMetrics counts rows inserted into its buffers).
fn ingested(t: &Target) -> u64 {
    if t.name == "rrdserver" {
        let text = get_body(t.stats_port, "/api/stats");
        if t.wait_stored {
            return stat(&text, "tsd.datapoints.added");
        }
        stat(&text, "tsd.rpc.received").saturating_sub(stat(&text, "tsd.datapoints.rejected"))
    } else {
        get_body(t.stats_port, "/metrics")
            .lines()
            .filter(|l| l.starts_with("vm_rows_inserted_total{type=\"opentsdb"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }
}

fn wait_ingested(t: &Target, want: u64) {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let got = ingested(t);
        if got >= want {
            return;
        }
        if Instant::now() > deadline {
            die(&format!("{}: only {got} of {want} points arrived", t.name));
        }
        if std::env::var_os("LOADGEN_DEBUG").is_some() {
            eprintln!("{}: {got} of {want}", t.name);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Bodies (HTTP) or line blocks (telnet) per connection, built before timing.
fn build(o: &Opts, base: u64, telnet: bool) -> Vec<Vec<Vec<u8>>> {
    let mut per_conn: Vec<Vec<Vec<u8>>> = vec![Vec::new(); o.conns];
    for r in 0..o.rounds {
        let ts = base + r;
        // A series always goes through the same connection, so its points arrive in order.
        for (k, chunk) in (0..o.series).collect::<Vec<_>>().chunks(o.batch).enumerate() {
            let mut body = Vec::with_capacity(chunk.len() * 80);
            if !telnet {
                body.push(b'[');
            }
            for (n, i) in chunk.iter().enumerate() {
                let (m, h) = series_name(*i);
                let v = (r * 7 + *i as u64) % 1000;
                if telnet {
                    let _ = writeln!(body, "put {m} {ts} {v} host={h} dc=lga");
                } else {
                    if n > 0 {
                        body.push(b',');
                    }
                    let _ = write!(body, "{{\"metric\":\"{m}\",\"timestamp\":{ts},\"value\":{v},\"tags\":{{\"host\":\"{h}\",\"dc\":\"lga\"}}}}");
                }
            }
            if !telnet {
                body.push(b']');
            }
            if let Some(c) = per_conn.get_mut(k % o.conns) {
                c.push(body);
            }
        }
    }
    per_conn
}

/// Sends everything; (points/s wall, server CPU s per million points).
fn ingest(t: &Target, o: &Opts, base: u64, telnet: bool, already: u64) -> (f64, f64) {
    let work = build(o, base, telnet);
    let points = o.rounds * o.series as u64;
    let cpu0 = cpu_seconds(t.child.id());
    let start = Instant::now();
    std::thread::scope(|s| {
        for bodies in &work {
            let port = t.port;
            s.spawn(move || {
                let stream = TcpStream::connect(("127.0.0.1", port)).unwrap_or_else(|e| die(&format!("connect: {e}")));
                let _ = stream.set_nodelay(true);
                let mut r = BufReader::new(stream);
                for body in bodies {
                    if telnet {
                        if r.get_mut().write_all(body).is_err() {
                            die("telnet connection lost");
                        }
                    } else {
                        let head = format!("POST /api/put HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", body.len());
                        let (status, resp) = exchange(&mut r, &head, body);
                        if status != 204 {
                            die(&format!("put answered {status}: {}", String::from_utf8_lossy(&resp)));
                        }
                    }
                }
            });
        }
    });
    wait_ingested(t, already + points);
    let wall = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds(t.child.id()) - cpu0;
    (points as f64 / wall, cpu / (points as f64 / 1e6))
}

/// Median and p99 microseconds of a single-series 2-day query, and the
/// points in its answer. The series gets two days of 5-minute points first.
fn query_latency(t: &Target) -> (f64, f64, usize) {
    let end = now_s() - now_s() % 300;
    let start = end - 2 * 86_400;
    let points: Vec<String> = (0..=576u64).map(|i| format!("{{\"metric\":\"lg.query\",\"timestamp\":{},\"value\":{},\"tags\":{{\"host\":\"q\"}}}}", start + i * 300, i % 50)).collect();
    let body = format!("[{}]", points.join(","));
    let mut c = BufReader::new(TcpStream::connect(("127.0.0.1", t.port)).unwrap_or_else(|e| die(&format!("connect: {e}"))));
    let _ = c.get_mut().set_nodelay(true);
    let head = format!("POST /api/put HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", body.len());
    let (status, resp) = exchange(&mut c, &head, body.as_bytes());
    if status != 204 {
        die(&format!("query data put answered {status}: {}", String::from_utf8_lossy(&resp)));
    }
    let path = format!("/api/query?start={start}&end={end}&m=sum:lg.query%7Bhost=q%7D");
    let head = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
    let (status, body) = exchange(&mut c, &head, b"");
    if status != 200 {
        die(&format!("query answered {status}: {}", String::from_utf8_lossy(&body)));
    }
    let text = String::from_utf8_lossy(&body);
    let points = text.split("\"dps\":{").nth(1).map_or(0, |d| d.split('}').next().unwrap_or("").matches(':').count());
    let mut times = Vec::with_capacity(2000);
    for _ in 0..2000 {
        let t0 = Instant::now();
        let _ = exchange(&mut c, &head, b"");
        times.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], times[times.len() * 99 / 100], points)
}

fn main() {
    let o = parse_opts();
    let exe = std::env::current_exe().unwrap_or_default();
    let bin = exe.with_file_name("rrdserver");
    if !bin.exists() {
        die(&format!("{} not found: cargo build --release -p rrdserver first", bin.display()));
    }
    println!(
        "loadgen: {} series x {} rounds per protocol; HTTP arrays of {} points and telnet lines on {} connections; {} cores",
        o.series,
        o.rounds,
        o.batch,
        o.conns,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("rrdserver: durability = \"{}\", reorder_window_ms = {}", o.durability, o.reorder_ms);
    if o.reorder_ms > 0 {
        println!("(rrdserver is waited for until every point is written to its database: its points/s include the window; CPU per point is the figure to compare)");
    } else {
        println!("(rrdserver is waited for until every point is written to its database, new series' files included)");
    }
    let mut targets = vec![start_rrdserver(&bin, &o)];
    if o.vm {
        match start_vm() {
            Some(v) => targets.push(v),
            None => println!("victoria-metrics not installed (apt-get install victoria-metrics): rrdserver only"),
        }
    }
    // Timestamps: one warm-up round (creates every series; not timed), then
    // HTTP's rounds, then telnet's, the last ending about now.
    let base = now_s() - 2 * o.rounds - 10;
    println!("{:<18} {:<7} {:>14} {:>18} {:>20}", "server", "proto", "points/s", "CPU s / M points", "points/s per core");
    for t in &targets {
        let warm = Opts { rounds: 1, ..o };
        let (rate, cpu_per_m) = ingest(t, &warm, base - 1, false, 0);
        println!("{:<18} {:<7} {:>14.0} {:>18.3} {:>20.0}   (first point of each series: creates it)", t.name, "create", rate, cpu_per_m, 1e6 / cpu_per_m);
        let mut done = o.series as u64;
        for (proto, telnet, b) in [("http", false, base), ("telnet", true, base + o.rounds)] {
            if o.only.is_some_and(|only| only != telnet) {
                continue;
            }
            let (rate, cpu_per_m) = ingest(t, &o, b, telnet, done);
            done += o.rounds * o.series as u64;
            println!("{:<18} {:<7} {:>14.0} {:>18.3} {:>20.0}", t.name, proto, rate, cpu_per_m, 1e6 / cpu_per_m);
        }
    }
    if let Some(t) = targets.first() {
        let (median, p99, points) = query_latency(t);
        println!("rrdserver single-series 2-day query over keep-alive: median {median:.1} us, p99 {p99:.1} us ({points} points per answer)");
    }
}
