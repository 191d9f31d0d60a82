//! A telnet-protocol connection (`opentsdb-api.md` §3): lines in, `put`s
//! stored in batches, replies through a small bounded queue that drops
//! lines a client does not read, so a silent client never stalls ingestion.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use super::api::stats_lines;
use super::app::{App, Resolved};
use crate::opentsdb::telnet::{COMMANDS, Command, parse_line};

/// Points gathered before they are stored (fewer when the input pauses).
const BATCH: usize = 4096;
/// Reply lines queued before further ones are dropped.
const REPLY_QUEUE: usize = 256;

/// Serves one telnet connection until the client leaves, sends `exit`, or
/// the server stops (pending points are stored first).
pub async fn serve(app: Arc<App>, stream: TcpStream, mut stop: watch::Receiver<bool>) {
    app.counters.telnet_connections.fetch_add(1, Ordering::Relaxed);
    let (rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<String>(REPLY_QUEUE);
    let writer = tokio::spawn(async move {
        while let Some(line) = rx.recv().await {
            if wr.write_all(line.as_bytes()).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    let mut reader = BufReader::with_capacity(128 * 1024, rd);
    let mut batch: Vec<Resolved> = Vec::with_capacity(BATCH);
    let mut line = Vec::with_capacity(256);
    let mut key = String::new();
    let mut recall = super::recall::Recall::default();
    // Lines read, added to the shared counter once per batch (an atomic add
    // per line would bounce its cache line between connections' threads).
    let mut lines = 0u64;
    let max = app.config.max_line_bytes;
    loop {
        line.clear();
        // Lines already buffered are read straight away; only a read that
        // may wait also watches for the stop signal.
        let read = if reader.buffer().contains(&b'\n') {
            read_line(&mut reader, &mut line, max).await
        } else {
            tokio::select! {
                r = read_line(&mut reader, &mut line, max) => r,
                _ = stop.changed() => break,
            }
        };
        match read {
            Ok(true) => {}
            Ok(false) => break,
            Err(msg) => {
                reply(&tx, msg);
                break;
            }
        }
        lines += 1;
        // Valid UTF-8 (the rule) is checked by the fast validator; only
        // other bytes go through the replacing decoder.
        let text = std::str::from_utf8(&line).map_or_else(|_| String::from_utf8_lossy(&line), std::borrow::Cow::Borrowed);
        let text = text.trim_end_matches(['\r', '\n']);
        match parse_line(text, app.config.max_tags) {
            // Resolved at once: the line's text is not kept.
            Command::Put(Ok(p)) => match recall.resolve(&app, &p, &mut key) {
                Ok(series) => batch.push(Resolved { series, timestamp_ms: p.timestamp_ms, value: p.value }),
                Err(e) => {
                    app.counters.points_received.fetch_add(1, Ordering::Relaxed);
                    app.counters.points_rejected.fetch_add(1, Ordering::Relaxed);
                    reply(&tx, format!("put: illegal argument: {e}\n"));
                }
            },
            Command::Put(Err(e)) => {
                app.counters.points_received.fetch_add(1, Ordering::Relaxed);
                app.counters.points_rejected.fetch_add(1, Ordering::Relaxed);
                reply(&tx, format!("{e}\n"));
            }
            Command::Empty => {}
            other => {
                store(&app, &mut batch, &mut lines, &tx).await;
                if !answer(&app, other, &tx) {
                    break;
                }
            }
        }
        // Store when the batch is full or nothing more is waiting to be read.
        if batch.len() >= BATCH || (reader.buffer().is_empty() && !batch.is_empty()) {
            store(&app, &mut batch, &mut lines, &tx).await;
        }
    }
    store(&app, &mut batch, &mut lines, &tx).await;
    drop(tx);
    let _ = writer.await;
}

/// Reads one line into `line` (with its end). `Ok(false)` at the end of the
/// stream; an error text when the line is longer than `max`.
async fn read_line<R: tokio::io::AsyncRead + Unpin>(reader: &mut BufReader<R>, line: &mut Vec<u8>, max: usize) -> Result<bool, String> {
    loop {
        let buf = match reader.fill_buf().await {
            Ok(b) => b,
            Err(_) => return Ok(false),
        };
        if buf.is_empty() {
            // A last line without a newline still counts.
            return Ok(!line.is_empty());
        }
        let (take, done) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        line.extend_from_slice(buf.get(..take).unwrap_or_default());
        reader.consume(take);
        if line.len() > max {
            return Err(format!("error: line longer than {max} bytes; closing the connection\n"));
        }
        if done {
            return Ok(true);
        }
    }
}

/// Queues a reply line, dropping it when the client is not reading.
fn reply(tx: &mpsc::Sender<String>, line: String) {
    let _ = tx.try_send(line);
}

/// Stores the pending points; failures get an error line each. `lines`
/// (read since the last call) go to the shared counter first.
async fn store(app: &Arc<App>, batch: &mut Vec<Resolved>, lines: &mut u64, tx: &mpsc::Sender<String>) {
    app.counters.telnet_lines.fetch_add(std::mem::take(lines), Ordering::Relaxed);
    if batch.is_empty() {
        return;
    }
    let points = std::mem::take(batch);
    let app2 = Arc::clone(app);
    let done = super::off_async(move || {
        let results = app2.ingest_waiting(&points, false);
        (points, results)
    })
    .await;
    match done {
        Ok((mut points, results)) => {
            match results {
                Ok(results) => {
                    for e in results.into_iter().filter_map(Result::err) {
                        reply(tx, format!("put: illegal argument: {e}\n"));
                    }
                }
                Err(e) => reply(tx, format!("put: HBase error: {e}\n")),
            }
            points.clear();
            *batch = points;
        }
        Err(e) => reply(tx, format!("put: HBase error: {}\n", e.message)),
    }
}

/// Answers a non-put command; false to close the connection.
fn answer(app: &App, cmd: Command, tx: &mpsc::Sender<String>) -> bool {
    match cmd {
        Command::Version => reply(
            tx,
            format!("{}\nBuilt on 1970/01/01 00:00:00 +0000 by rrd@{}:rrdserver\n", super::api::version_line(), app.hostname),
        ),
        Command::Stats => {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            let mut out = String::new();
            for (metric, value, tag) in stats_lines(app) {
                let extra = tag.map(|(k, v)| format!(" {k}={v}")).unwrap_or_default();
                out.push_str(&format!("{metric} {now} {value}{extra} host={}\n", app.hostname));
            }
            reply(tx, out);
        }
        Command::Help => reply(tx, format!("available commands: {}\n", COMMANDS.join(" "))),
        Command::DropCaches => {
            let _ = app.store.flush();
            reply(tx, "Caches dropped.\n".into());
        }
        Command::Status => reply(tx, "ok\n".into()),
        Command::Exit => return false,
        Command::Unknown(msg) => reply(tx, format!("{msg}\n")),
        Command::Put(_) | Command::Empty => {}
    }
    true
}
