//! The background thread: applies held points whose reorder window has
//! passed, and checkpoints every `checkpoint_interval_ms` or when the
//! journal segment passes `checkpoint_journal_bytes`.
//!
//! A checkpoint: rotate the journal (every point of the old segments is
//! held or applied by then: points are held under the append lock the
//! rotation takes), apply every held point, make every database durable
//! ([`rrdcore::Store::flush`]), then delete the old segments. If a step
//! fails the segments stay, and the next checkpoint (or a restart's replay)
//! covers them; a failed sync stops every later one (fail-stop).

use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use super::super::app::App;

/// Why a checkpoint did not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// A sync failed, now or earlier: nothing more is checkpointed.
    #[error("{0}")]
    Failed(String),
    /// The journal could not be rotated.
    #[error("journal rotation: {0}")]
    Rotate(String),
    /// Some held points could not be applied (a disk failure); they stay held.
    #[error("some held points could not be applied yet")]
    Apply,
    /// Old segments could not be removed.
    #[error("removing checkpointed journal segments: {0}")]
    Remove(String),
}

/// Starts the thread; dropping the returned sender stops it.
pub fn start(app: &Arc<App>) -> std::io::Result<(mpsc::Sender<()>, std::thread::JoinHandle<()>)> {
    let (tx, rx) = mpsc::channel::<()>();
    let weak = Arc::downgrade(app);
    let window = app.config.reorder_window_ms;
    let tick = Duration::from_millis((window / 2).clamp(10, 1000));
    let thread = std::thread::Builder::new().name("checkpoint".into()).spawn(move || {
        let mut last = Instant::now();
        loop {
            match rx.recv_timeout(tick) {
                Err(RecvTimeoutError::Timeout) => {}
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
            }
            let Some(app) = weak.upgrade() else { return };
            release_due(&app);
            let interval = Duration::from_millis(app.config.checkpoint_interval_ms);
            let big = app.write.journal.as_ref().is_some_and(|j| j.segment_len() >= app.config.checkpoint_journal_bytes);
            if (last.elapsed() >= interval || big) && app.write.failure().is_none() {
                if let Err(e) = checkpoint(&app) {
                    tracing::error!(error = %e, "checkpoint failed; the journal is kept and the next one retries");
                }
                last = Instant::now();
            }
        }
    })?;
    Ok((tx, thread))
}

/// Applies the held points that waited their window.
fn release_due(app: &App) {
    let list = std::mem::take(&mut *app.write.held_list.lock().unwrap_or_else(PoisonError::into_inner));
    if !app.write.writers.release(list, false) {
        tracing::warn!("some held points could not be applied yet");
    }
}

/// One checkpoint (see the module documentation).
pub fn checkpoint(app: &App) -> Result<(), CheckpointError> {
    let w = &app.write;
    if let Some(why) = w.failure() {
        return Err(CheckpointError::Failed(why));
    }
    let new_seq = match &w.journal {
        Some(j) => Some(j.rotate().map_err(|e| CheckpointError::Rotate(e.to_string()))?),
        None => None,
    };
    let list = std::mem::take(&mut *w.held_list.lock().unwrap_or_else(PoisonError::into_inner));
    let applied = w.writers.release(list, true);
    let flushed = app.store.flush();
    for q in app.store.take_quarantined() {
        app.counters.quarantined.fetch_add(1, Ordering::Relaxed);
        tracing::error!(path = %q.path.display(), reason = %q.reason, "damaged database moved aside; its series starts afresh");
    }
    if let Err(e) = flushed {
        let why = e.to_string();
        w.fail(&why);
        return Err(CheckpointError::Failed(why));
    }
    if !applied {
        return Err(CheckpointError::Apply);
    }
    if let (Some(j), Some(seq)) = (&w.journal, new_seq) {
        j.remove_before(seq).map_err(|e| CheckpointError::Remove(e.to_string()))?;
    }
    app.counters.checkpoints.fetch_add(1, Ordering::Relaxed);
    Ok(())
}
