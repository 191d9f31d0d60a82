//! `rrdserver serve`: settings from defaults, file and flags; logging; a
//! tokio runtime; the listener; SIGINT/SIGTERM for a clean stop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::CliError;
use crate::server::{App, Config, run};

/// Runs the server until SIGINT or SIGTERM.
pub fn serve(listen: Option<SocketAddr>, data_dir: Option<PathBuf>, config: Option<&Path>) -> Result<(), CliError> {
    let mut c = match config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    if let Some(l) = listen {
        c.listen = l;
    }
    if let Some(d) = data_dir {
        c.data_dir = d;
    }
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| c.log.clone());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter).map_err(|e| CliError(format!("config key `log`: {e}")))?;
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).try_init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        catch_file_size_signal();
        let app = tokio::task::spawn_blocking({
            let c = c.clone();
            move || App::open(c)
        })
        .await
        .map_err(|e| CliError(e.to_string()))?
        .map_err(|e| CliError(format!("cannot open the data directory {}: {e}", c.data_dir.display())))?;
        let listener = tokio::net::TcpListener::bind(c.listen).await.map_err(|e| CliError(format!("cannot listen on {}: {e}", c.listen)))?;
        let (metrics, _, _, series) = app.index.counts();
        tracing::info!(listen = %listener.local_addr()?, data_dir = %c.data_dir.display(), series, metrics, "rrdserver ready");
        run(listener, app, stop_signal()).await?;
        Ok(())
    })
}

/// A file size limit (`ulimit -f`, RLIMIT_FSIZE) raises SIGXFSZ, which
/// kills a process by default. Caught, the write fails with EFBIG instead,
/// and the server answers 503 as for a full disk.
fn catch_file_size_signal() {
    #[cfg(target_os = "linux")]
    {
        const SIGXFSZ: i32 = 25;
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(SIGXFSZ)) {
            Ok(mut s) => {
                tokio::spawn(async move { while s.recv().await.is_some() {} });
            }
            Err(e) => tracing::warn!(error = %e, "cannot catch SIGXFSZ"),
        }
    }
}

/// Completes on SIGINT or SIGTERM.
async fn stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
