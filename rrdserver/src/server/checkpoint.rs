//! The background thread: applies held points whose reorder window has
//! passed, and checkpoints every `checkpoint_interval_ms` or when the
//! journal segment passes `checkpoint_journal_bytes`.
//!
//! A checkpoint: rotate the journal (under the write gate, so every batch
//! in the old segments is already queued to the writers), wait for the
//! writers to take what was queued, apply every held point, make every
//! database durable ([`rrdcore::Store::flush`]), then delete the old
//! segments. If any step fails the segments stay, and the next checkpoint
//! (or a restart's replay) covers them.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use super::app::App;

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
            let big = app.journal.as_ref().is_some_and(|j| j.segment_len() >= app.config.checkpoint_journal_bytes);
            if last.elapsed() >= interval || big {
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
    let list = std::mem::take(&mut *app.held_list.lock().unwrap_or_else(PoisonError::into_inner));
    if !app.writers.release(list, false) {
        tracing::warn!("some held points could not be applied yet");
    }
}

/// One checkpoint (see the module documentation).
pub fn checkpoint(app: &App) -> Result<(), String> {
    let new_seq = {
        let _gate = app.gate.write().unwrap_or_else(PoisonError::into_inner);
        match &app.journal {
            Some(j) => Some(j.rotate().map_err(|e| format!("journal rotation: {e}"))?),
            None => None,
        }
    };
    // Every batch of the old segments was queued before the rotation: an
    // (empty) release sent to every shard now runs after them.
    app.writers.barrier();
    let list = std::mem::take(&mut *app.held_list.lock().unwrap_or_else(PoisonError::into_inner));
    let applied = app.writers.release(list, true);
    let flushed = app.store.flush();
    for q in app.store.take_quarantined() {
        app.counters.quarantined.fetch_add(1, Ordering::Relaxed);
        tracing::error!(path = %q.path.display(), reason = %q.reason, "damaged database moved aside; its series starts afresh");
    }
    flushed.map_err(|e| format!("flushing databases: {e}"))?;
    if !applied {
        return Err("some held points could not be applied".into());
    }
    if let (Some(j), Some(seq)) = (&app.journal, new_seq) {
        j.remove_before(seq).map_err(|e| format!("removing checkpointed journal segments: {e}"))?;
    }
    app.counters.checkpoints.fetch_add(1, Ordering::Relaxed);
    Ok(())
}
