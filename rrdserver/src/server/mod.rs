//! `rrdserver serve`: OpenTSDB's HTTP API and telnet protocol on one port,
//! over a [`rrdcore::Store`].
//!
//! * [`run`] takes a bound listener and a shutdown future, so tests bind
//!   port 0 and the binary binds the configured address.
//! * Each connection is told apart by its first byte (`opentsdb-api.md`
//!   §0.1): a capital letter starts HTTP/1.x (served by hyper), anything
//!   else the telnet line protocol.
//! * Storage work runs on tokio's blocking threads, never on the async ones.
//! * Writes are decided, journaled and applied by the write path
//!   ([`write`](mod@write), whose documentation has every rule); a checkpoint thread
//!   makes databases durable and empties the journal; startup replays what
//!   a crash left.
//! * On shutdown: stop accepting, let open connections finish what they
//!   are doing (HTTP gracefully; telnet stores its pending lines), then a
//!   last checkpoint ([`App::close`]).

pub mod api;
pub mod app;
pub mod bosun;
pub mod config;
pub mod http;
pub mod index;
pub mod query;
pub mod recall;
pub mod telnet;
pub mod write;

pub use write::{checkpoint, journal, recovery};

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

pub use app::App;
pub use config::{Config, ConfigError};

/// Runs storage work off the async scheduling: on a multi-threaded
/// runtime in place (tokio moves this thread's other tasks elsewhere, and
/// no thread hop is paid, which matters for 100 µs queries), otherwise on
/// the blocking pool.
pub(crate) async fn off_async<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> Result<R, http::ApiError> {
    if tokio::runtime::Handle::current().runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread {
        return Ok(tokio::task::block_in_place(f));
    }
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| http::ApiError::new(hyper::StatusCode::INTERNAL_SERVER_ERROR, "An unknown exception occurred").with_details(e.to_string()))
}

/// How long shutdown waits for open connections.
const DRAIN: Duration = Duration::from_secs(5);

/// Serves `listener` until `shutdown` completes, then drains and flushes.
pub async fn run(listener: TcpListener, app: Arc<App>, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    // Every connection task holds a sender; recv() yields None once all ended.
    let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (app, stop, alive) = (Arc::clone(&app), stop_rx.clone(), alive_tx.clone());
        tokio::spawn(async move {
            connection(app, stream, stop).await;
            tracing::trace!(%peer, "connection closed");
            drop(alive);
        });
    }
    tracing::info!("shutting down: draining connections");
    let _ = stop_tx.send(true);
    drop(alive_tx);
    if tokio::time::timeout(DRAIN, alive_rx.recv()).await.is_err() {
        tracing::warn!("some connections did not finish in time");
    }
    let app2 = Arc::clone(&app);
    tokio::task::spawn_blocking(move || app2.close()).await.map_err(std::io::Error::other)?.map_err(std::io::Error::other)?;
    tracing::info!("stopped; every database written to disk and the journal emptied");
    Ok(())
}

/// One connection: sniff the first byte, then HTTP or telnet.
async fn connection(app: Arc<App>, stream: TcpStream, mut stop: watch::Receiver<bool>) {
    let mut first = [0u8; 1];
    let peeked = tokio::select! {
        p = stream.peek(&mut first) => p,
        _ = stop.changed() => return,
    };
    match peeked {
        Ok(0) | Err(_) => {} // connected and left without a word: normal
        Ok(_) if first[0].is_ascii_uppercase() => http_connection(app, stream, stop).await,
        Ok(_) => telnet::serve(app, stream, stop).await,
    }
}

async fn http_connection(app: Arc<App>, stream: TcpStream, mut stop: watch::Receiver<bool>) {
    let recall = Arc::new(std::sync::Mutex::new(recall::Recall::default()));
    let service = service_fn(move |req| api::handle(Arc::clone(&app), req, Arc::clone(&recall)));
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "http connection ended with an error");
            }
        }
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}
