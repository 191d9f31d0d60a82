//! A server on port 0 for tests, and a raw HTTP/1.1 client over std sockets.
#![allow(dead_code, reason = "each test binary uses a different part")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use rrdserver::server::{App, Config, run};

/// The `rrdserver` binary.
pub const BIN: &str = env!("CARGO_BIN_EXE_rrdserver");

/// Starts `rrdserver serve` on port 0 with `extra` arguments; the child and
/// the address it reports. Its log is drained on a thread.
pub fn serve_binary(dir: &Path, extra: &[&str]) -> (std::process::Child, SocketAddr) {
    use std::process::{Command, Stdio};
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .args(extra)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("the server said it was ready").unwrap();
        if let Some(rest) = line.split("listen=").nth(1) {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    };
    // Keep draining its log so it never blocks on a full pipe
    // (RRD_TEST_LOG=1 shows it).
    let show = std::env::var_os("RRD_TEST_LOG").is_some();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if show {
                eprintln!("server: {line}");
            }
        }
    });
    (child, addr)
}

/// Copies a directory tree (a data directory as a crash would leave it;
/// a file that goes while copying is left out).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else if let Err(err) = std::fs::copy(e.path(), dest) {
            // A temporary file renamed while copying: a crash sees either.
            assert_eq!(err.kind(), std::io::ErrorKind::NotFound, "{}: {err}", e.path().display());
        }
    }
}

/// Whether real `rrdtool` is installed.
pub fn have_rrdtool() -> bool {
    std::process::Command::new("rrdtool").arg("--version").output().is_ok_and(|o| o.status.success())
}

/// Kills a server process (SIGKILL) if the test fails while it runs, so
/// no server outlives a failed test.
pub struct KillOnPanic(pub u32);

impl Drop for KillOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = std::process::Command::new("kill").arg("-9").arg(self.0.to_string()).status();
        }
    }
}

/// Sends `signal` (`TERM`, `INT`) and requires exit status 0 within 10 s.
pub fn stop_binary(mut child: std::process::Child, signal: &str) {
    let started = std::time::Instant::now();
    assert!(std::process::Command::new("kill").arg(format!("-{signal}")).arg(child.id().to_string()).status().unwrap().success());
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no clean stop within 10 s of SIG{signal}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status after SIG{signal}: {status}");
}

/// A running server; dropping it stops it (and waits for the clean stop).
pub struct Server {
    pub addr: SocketAddr,
    /// The server's state (dropped with the server).
    pub app: std::sync::Arc<App>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl Server {
    /// Starts a server over `dir` with default settings.
    pub fn start(dir: &Path) -> Server {
        Server::with_config(Config { data_dir: dir.to_path_buf(), ..Config::default() })
    }

    /// Starts a server with `config` (its `listen` is replaced by port 0).
    pub fn with_config(config: Config) -> Server {
        Server::spawn(config, false)
    }

    /// Starts a server over `dir` on a single-threaded tokio runtime.
    pub fn start_current_thread(dir: &Path) -> Server {
        Server::spawn(Config { data_dir: dir.to_path_buf(), ..Config::default() }, true)
    }

    fn spawn(config: Config, current_thread: bool) -> Server {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = if current_thread {
                tokio::runtime::Builder::new_current_thread().enable_all().build()?
            } else {
                tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?
            };
            rt.block_on(async move {
                let app = App::open(config).map_err(std::io::Error::other)?;
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                addr_tx.send((listener.local_addr()?, std::sync::Arc::clone(&app))).map_err(std::io::Error::other)?;
                run(listener, app, async move {
                    let _ = stop_rx.await;
                })
                .await
            })
        });
        let (addr, app) = addr_rx.recv_timeout(Duration::from_secs(30)).expect("server started");
        Server { addr, app, stop: Some(stop_tx), thread: Some(thread) }
    }

    /// Stops the server and waits until it has flushed and exited.
    pub fn stop(mut self) {
        self.shutdown();
    }

    /// Stops the server; how it ended (an error after a failed sync).
    pub fn stop_result(mut self) -> std::io::Result<()> {
        self.ended()
    }

    fn ended(&mut self) -> std::io::Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.thread.take().map_or(Ok(()), |t| t.join().expect("server thread"))
    }

    fn shutdown(&mut self) {
        self.ended().expect("server ran cleanly");
    }

    /// A new keep-alive HTTP client.
    pub fn client(&self) -> Client {
        Client::connect(self.addr)
    }

    /// One request on a fresh connection.
    pub fn req(&self, method: &str, path: &str, body: &[u8]) -> Response {
        self.client().send(method, path, &[], body)
    }

    /// GET on a fresh connection.
    pub fn get(&self, path: &str) -> Response {
        self.req("GET", path, b"")
    }

    /// POST on a fresh connection.
    pub fn post(&self, path: &str, body: &str) -> Response {
        self.req("POST", path, body.as_bytes())
    }

    /// The value of the `/api/stats` counter `name`.
    pub fn stat(&self, name: &str) -> u64 {
        let stats = self.get("/api/stats").json();
        let v = stats.as_array().unwrap().iter().find(|x| x["metric"] == name).unwrap_or_else(|| panic!("no stat {name}"))["value"].clone();
        v.as_str().unwrap().parse().unwrap()
    }

    /// The `dps` of `metric{host=...}` from `from` to `to` (seconds), as `/api/query` answers them.
    pub fn dps(&self, metric: &str, host: &str, from: u64, to: u64) -> serde_json::Map<String, serde_json::Value> {
        let q = serde_json::json!({"start": from, "end": to, "queries": [{"aggregator": "sum", "metric": metric, "tags": {"host": host}}]});
        let got = self.post("/api/query", &q.to_string()).json();
        got.get(0).and_then(|g| g["dps"].as_object().cloned()).unwrap_or_default()
    }

    /// A raw TCP connection (for telnet).
    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
        s
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.shutdown();
        } else if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Bytes of journal in `data`'s `.wal` segments past their headers (16 bytes each).
pub fn journal_payload(data: &Path) -> u64 {
    std::fs::read_dir(data.join(".journal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .map(|p| std::fs::metadata(p).unwrap().len().saturating_sub(16))
        .sum()
}

/// An HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A keep-alive HTTP/1.1 connection.
pub struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        Client { reader: BufReader::new(s) }
    }

    /// Sends a request with extra headers; reads the whole response.
    pub fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n", body.len());
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let s = self.reader.get_mut();
        s.write_all(head.as_bytes()).expect("send head");
        // A server may answer (413) and close before the whole body is sent.
        let _ = s.write_all(body);
        self.read_response()
    }

    /// Reads one response (Content-Length or chunked body).
    pub fn read_response(&mut self) -> Response {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("status line");
        let status: u16 = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("bad status line {line:?}"));
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line).expect("header");
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let (k, v) = l.split_once(':').expect("header line");
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
        let get = |n: &str| headers.iter().find(|(k, _): &&(String, String)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.clone());
        let mut body = Vec::new();
        if let Some(len) = get("content-length") {
            body.resize(len.parse().expect("length"), 0);
            self.reader.read_exact(&mut body).expect("body");
        } else if get("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
            loop {
                line.clear();
                self.reader.read_line(&mut line).expect("chunk size");
                let n = usize::from_str_radix(line.trim(), 16).expect("chunk size");
                let mut chunk = vec![0; n + 2];
                self.reader.read_exact(&mut chunk).expect("chunk");
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
        }
        Response { status, headers, body }
    }
}

/// Gzip-compresses `data`.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A POST of `body` to `path` on a kept connection that may fail in any
/// way (the server dies under it): the status, if one came.
pub fn try_put(conn: &mut Option<BufReader<TcpStream>>, addr: SocketAddr, path: &str, body: &str) -> Option<u16> {
    if conn.is_none() {
        let s = TcpStream::connect(addr).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        *conn = Some(BufReader::new(s));
    }
    let r = conn.as_mut()?;
    let head = format!("POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n", body.len());
    let ok = r.get_mut().write_all(head.as_bytes()).and_then(|()| r.get_mut().write_all(body.as_bytes()));
    let status = ok.ok().and_then(|()| read_status(r));
    if status.is_none() {
        *conn = None;
    }
    status
}

fn read_status(r: &mut BufReader<TcpStream>) -> Option<u16> {
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let status = line.split_whitespace().nth(1)?.parse().ok()?;
    let mut len = 0usize;
    loop {
        line.clear();
        r.read_line(&mut line).ok()?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some(status)
}

/// A small deterministic generator (xorshift64*).
pub struct Rng(pub u64);

impl Rng {
    /// The next number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}
