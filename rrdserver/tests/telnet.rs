//! The telnet protocol on the shared port, and hostile connections: binary
//! garbage, half-closed sockets, clients that never read.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::Shutdown;

use common::Server;
use serde_json::json;

const B: u64 = 1_700_000_100;

fn dps(s: &Server, m: &str) -> serde_json::Value {
    let r = s.post("/api/query", &json!({"start": B, "end": B + 3000, "queries": [{"aggregator": "sum", "metric": m}]}).to_string());
    if r.status == 400 && r.text().contains("No such name for 'metrics'") {
        return serde_json::Value::Null;
    }
    assert_eq!(r.status, 200, "{}", r.text());
    r.json().get(0).map(|x| x["dps"].clone()).unwrap_or(serde_json::Value::Null)
}

#[test]
fn telnet_put_and_commands() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let mut c = s.connect();
    // Several commands in one segment, one split across two, CRLF and a bad put in between.
    write!(c, "put sys.t {B} 1 host=a\r\nput sys.t {} 2.5 host=a\nput sys.t {} fortytwo host=a\nput sys.t ", B + 300, B + 600).unwrap();
    c.flush().unwrap();
    write!(c, "{} 3 host=a\nversion\n", B + 900).unwrap();
    let mut r = BufReader::new(c.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert_eq!(line, "put: invalid value: Invalid character 'f' in fortytwo\n");
    line.clear();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with("net.opentsdb.tools "), "{line}");
    line.clear();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with("Built on "), "{line}");
    // version answers only after the earlier puts are stored: they are visible now.
    // (The row at B+600 has no point of its own: within the heartbeat, the
    // value that arrived at B+900 covers it, as in RRDtool.)
    assert_eq!(dps(&s, "sys.t"), json!({B.to_string(): 1, (B + 300).to_string(): 2.5, (B + 600).to_string(): 3, (B + 900).to_string(): 3}));
    for (cmd, expect) in [
        ("bogus", "unknown command: bogus.  Try `help'.\n"),
        ("help", "available commands: put version stats help dropcaches status exit\n"),
        ("dropcaches", "Caches dropped.\n"),
        ("status", "ok\n"),
        ("put a", "put: illegal argument: not enough arguments (need least 4, got 1)\n"),
        (&format!("put m {B} 1"), "put: illegal argument: Missing tags\n"),
        (&format!("put sys.t {B} 1 host=a"), ""),
    ] {
        writeln!(c, "{cmd}").unwrap();
        if expect.is_empty() {
            continue;
        }
        line.clear();
        r.read_line(&mut line).unwrap();
        if cmd.starts_with("put m ") {
            assert!(line.starts_with("put: illegal argument: "), "{line}");
        } else {
            assert_eq!(line, expect, "{cmd}");
        }
    }
    // The resend of B (same value) was silent; stats lists counters with a host tag.
    writeln!(c, "stats").unwrap();
    line.clear();
    r.read_line(&mut line).unwrap();
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words[0], "tsd.uptime");
    assert!(words.last().unwrap().starts_with("host="));
    // exit closes the connection.
    let mut rest = String::new();
    writeln!(c, "exit").unwrap();
    r.read_to_string(&mut rest).unwrap();
    assert!(rest.lines().all(|l| l.starts_with("tsd.")), "{rest}");
    // A last line without a newline is still read when the client closes.
    let mut c = s.connect();
    write!(c, "put sys.t {} 4 host=a", B + 1200).unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut rest = String::new();
    c.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "");
    assert_eq!(dps(&s, "sys.t")[(B + 1200).to_string()], json!(4));
}

#[test]
fn a_client_that_never_reads_does_not_stall_ingestion() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    // 200,000 bad lines (each earns an error line) and never a read.
    let mut silent = s.connect();
    let bad = "put m 1 x host=a\n".repeat(1000);
    for _ in 0..200 {
        silent.write_all(bad.as_bytes()).unwrap();
    }
    writeln!(silent, "put quiet {B} 5 host=a").unwrap();
    silent.flush().unwrap();
    // Another client's puts go through meanwhile, and so did the silent one's good line.
    let r = s.post("/api/put", &json!({"metric": "loud", "timestamp": B, "value": 1, "tags": {"h": "a"}}).to_string());
    assert_eq!(r.status, 204);
    let mut c = s.connect();
    writeln!(c, "version").unwrap();
    let mut line = String::new();
    BufReader::new(c).read_line(&mut line).unwrap();
    assert!(line.starts_with("net.opentsdb.tools"));
    // The silent connection's last line is stored once the server has read it all.
    let mut tries = 0;
    while dps(&s, "quiet").is_null() {
        tries += 1;
        assert!(tries < 2000, "the silent client's put never arrived");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(dps(&s, "quiet"), json!({B.to_string(): 5}));
    drop(silent);
}

#[test]
fn garbage_and_half_closed_connections_are_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    // Binary garbage (not a capital letter first: the telnet side) and a very long line.
    let mut c = s.connect();
    let garbage: Vec<u8> = (0..100_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let _ = c.write_all(&garbage);
    let _ = c.shutdown(Shutdown::Write);
    let mut sink = Vec::new();
    let _ = c.read_to_end(&mut sink);
    // Garbage after a capital letter: hyper answers 400 and closes.
    let mut c = s.connect();
    c.write_all(b"GARBAGE \x00\x01\x02 nonsense\r\n\r\n").unwrap();
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    assert!(out.starts_with(b"HTTP/1.1 400"), "{}", String::from_utf8_lossy(&out));
    // A request cut off in the middle of its body, then the write side closed.
    let mut c = s.connect();
    c.write_all(b"POST /api/put HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n[{\"metric\":").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    // Connect-and-leave probes.
    for _ in 0..20 {
        drop(s.connect());
    }
    // A line over the limit closes that telnet connection with a message.
    let mut c = s.connect();
    let long = format!("put m {B} 1 host={}\n", "a".repeat(70_000));
    let _ = c.write_all(long.as_bytes());
    let mut out = String::new();
    let _ = c.read_to_string(&mut out);
    assert!(out.contains("longer than"), "{out}");
    // The server is still fine.
    assert_eq!(s.get("/api/version").status, 200);
    let r = s.post("/api/put", &json!({"metric": "after", "timestamp": B, "value": 1, "tags": {"h": "a"}}).to_string());
    assert_eq!(r.status, 204);
}
