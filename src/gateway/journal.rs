//! Group commit: the bridge between the in-memory store and its file. Every change to the
//! store bumps its generation and marks its group changed; a handler that changed something
//! waits, before answering, until the file holds that generation. One writer takes every
//! group changed so far, writes them in one transaction with one fsync, and releases every
//! handler waiting on them, so that many concurrent pushes share one flush. While it writes,
//! the next pushes gather for the next flush.
//!
//! A group is written as it is when the writer takes it (under the store's lock), so a record
//! never holds half a push, and a later push to the same group is in the same record or a later
//! one. When a write fails, its groups stay changed and are tried again, and the handlers that
//! waited on it answer with an error: nothing is acknowledged that is not on disk.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{oneshot, watch};

use super::Gateway;
use super::persistence::{self, Change, StoreFile};

/// How far the file has caught up with the store.
#[derive(Clone, Debug, Default)]
struct Progress {
    /// Every change up to this store generation is on disk.
    written: u64,
    /// The last write that failed, and the generation it was meant to reach.
    failed: Option<(u64, Arc<str>)>,
}

pub struct Journal {
    progress: watch::Sender<Progress>,
}

impl Journal {
    /// A journal for a store whose changes up to `generation` are already on disk.
    pub fn new(generation: u64) -> Journal {
        Journal { progress: watch::Sender::new(Progress { written: generation, failed: None }) }
    }

    /// Waits until the change that brought the store to `generation` is on disk, or its write
    /// failed.
    pub async fn written(&self, generation: u64) -> Result<(), Arc<str>> {
        let mut progress = self.progress.subscribe();
        let reached = progress
            .wait_for(|p| p.written >= generation || p.failed.as_ref().is_some_and(|(g, _)| *g >= generation))
            .await;
        match reached {
            Ok(p) if p.written >= generation => Ok(()),
            Ok(p) => Err(p.failed.as_ref().map(|(_, why)| why.clone()).unwrap_or_else(|| "".into())),
            Err(_) => Err("the gateway is stopping".into()),
        }
    }
}

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
    // Shutting down: the handlers have finished; whatever changed since (an expiry) is written.
    for _ in 0..3 {
        if let Flushed::Nothing = flush(&gateway, &file).await {
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
    let failure: Option<Arc<str>> = match tokio::task::spawn_blocking(move || writing.write(&changes)).await {
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
