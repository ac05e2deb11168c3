//! The journal's writer: the one task that takes every group changed so far, writes them to
//! the store file in one transaction, and moves the journal on so that the handlers waiting on
//! them answer (group commit, told whole in durable/journal.rs). It runs on the `Gateway`, which
//! holds the journal, so it lives beside the `Gateway`, as the expiry sweep does, and not in
//! durable/: there it would close a circle of imports (the Gateway needs the Journal, the
//! writer the Gateway).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use super::Gateway;
use super::durable::persistence::{self, Change, StoreFile};

/// Writes the store's changes to `file` until `stop` fires, then writes what is left and
/// returns.
pub async fn write_changes(gateway: Arc<Gateway>, file: Arc<StoreFile>, mut stop: oneshot::Receiver<()>) {
    let mut retry_after = Duration::ZERO;
    loop {
        tokio::select! {
            () = gateway.changed.notified() => {}
            _ = &mut stop => break,
        }
        // Until nothing is left: the pushes that arrived during one write make the next batch.
        loop {
            match flush(&gateway, &file).await {
                Flushed::Nothing => break,
                Flushed::Batch => retry_after = Duration::ZERO,
                Flushed::Failed => {
                    // A full or failing disk: try again, less and less often, without spinning,
                    // and without holding up a shutdown.
                    retry_after = (retry_after * 2).clamp(Duration::from_millis(100), Duration::from_secs(5));
                    tokio::time::sleep(retry_after).await;
                    gateway.changed.notify_one();
                    break;
                }
            }
        }
    }
    // Shutting down: the handlers have finished; whatever changed since (an expiry) is written,
    // and then the push log goes into the store file, which alone then holds every group.
    for _ in 0..3 {
        if let Flushed::Nothing = flush(&gateway, &file).await {
            let checkpoint = tokio::task::spawn_blocking(move || file.checkpoint()).await;
            if let Ok(Err(e)) = checkpoint {
                tracing::warn!(error = %e, "could not move the push log into the store file; it is read at the next start");
            }
            return;
        }
    }
    tracing::error!("stopped with changes that could not be written");
}

enum Flushed {
    Nothing,
    Batch,
    Failed,
}

async fn flush(gateway: &Gateway, file: &Arc<StoreFile>) -> Flushed {
    let Some(journal) = &gateway.journal else { return Flushed::Nothing };
    let (changes, keys, generation) = {
        let mut store = gateway.store();
        let keys = store.take_changes();
        let changes: Vec<Change> =
            keys.iter().map(|key| (key.to_string(), store.group(key).map(persistence::record))).collect();
        (changes, keys, store.generation())
    };
    if changes.is_empty() {
        // Changes that touched no group (a refused push that created none) wait on nothing.
        journal.progress.send_if_modified(|p| {
            let behind = p.written < generation;
            p.written = p.written.max(generation);
            behind
        });
        return Flushed::Nothing;
    }
    let batch = changes.len();
    let writing = file.clone();
    let failure: Option<Arc<str>> = match tokio::task::spawn_blocking(move || writing.write(changes)).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string().into()),
        Err(e) => Some(format!("the write was interrupted: {e}").into()),
    };
    match failure {
        None => {
            tracing::trace!(groups = batch, generation, "wrote a batch");
            journal.progress.send_modify(|p| p.written = p.written.max(generation));
            Flushed::Batch
        }
        Some(why) => {
            tracing::error!(error = %why, groups = batch, "could not write changes to the store file; will retry");
            gateway.store().mark_changed(keys);
            journal.progress.send_modify(|p| p.failed = Some((generation, why)));
            Flushed::Failed
        }
    }
}
