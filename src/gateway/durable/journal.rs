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
//!
//! Here is the [`Journal`], which the `Gateway` holds and the handlers wait on. The writer is in
//! gateway/journal_writer.rs, beside the `Gateway` it runs on: the journal needs nothing of the gateway,
//! so the `Gateway` holds it without a circle of imports.

use std::sync::Arc;

use tokio::sync::watch;

/// How far the file has caught up with the store.
#[derive(Clone, Debug, Default)]
pub(crate) struct Progress {
    /// Every change up to this store generation is on disk.
    pub(crate) written: u64,
    /// The last write that failed, and the generation it was meant to reach.
    pub(crate) failed: Option<(u64, Arc<str>)>,
}

/// Why a change is not on disk.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    /// Writing it failed, for this reason; the writer tries again.
    #[error("{0}")]
    Failed(Arc<str>),
    #[error("the gateway is stopping")]
    Stopping,
}

pub struct Journal {
    /// Moved on by the writer (gateway/journal_writer.rs), watched by the handlers.
    pub(crate) progress: watch::Sender<Progress>,
}

impl Journal {
    /// A journal for a store whose changes up to `generation` are already on disk.
    pub fn new(generation: u64) -> Journal {
        Journal { progress: watch::Sender::new(Progress { written: generation, failed: None }) }
    }

    /// Waits until the change that brought the store to `generation` is on disk, or its write
    /// failed.
    pub async fn written(&self, generation: u64) -> Result<(), WriteError> {
        let mut progress = self.progress.subscribe();
        let reached = progress
            .wait_for(|p| p.written >= generation || p.failed.as_ref().is_some_and(|(g, _)| *g >= generation))
            .await;
        match reached {
            Ok(p) if p.written >= generation => Ok(()),
            Ok(p) => {
                Err(WriteError::Failed(p.failed.as_ref().map(|(_, why)| why.clone()).unwrap_or_else(|| "".into())))
            }
            Err(_) => Err(WriteError::Stopping),
        }
    }
}
