//! `cronpush gateway`: a drop-in replacement for the Prometheus Pushgateway.

// The store's grouping key and the push routes are pure and built without the `roles` feature
// (store/mod.rs, http/mod.rs); the rest serves, and needs it.
pub mod http;
pub mod store;

#[cfg(feature = "roles")]
pub mod config;
#[cfg(feature = "roles")]
pub mod durable;
#[cfg(feature = "roles")]
pub mod expiry;
#[cfg(feature = "roles")]
pub mod journal_writer;
#[cfg(feature = "roles")]
pub mod server;
#[cfg(feature = "roles")]
pub mod view;
#[cfg(feature = "roles")]
pub mod web;

#[cfg(feature = "roles")]
use std::sync::{Mutex, MutexGuard};
#[cfg(feature = "roles")]
use std::time::SystemTime;

#[cfg(feature = "roles")]
use tokio::sync::{Notify, watch};

#[cfg(feature = "roles")]
use config::Config;
#[cfg(feature = "roles")]
use durable::journal::Journal;
#[cfg(feature = "roles")]
use store::{SeriesHasher, Store};
#[cfg(feature = "roles")]
use view::own_metrics::OwnMetrics;

/// Everything the handlers share.
#[cfg(feature = "roles")]
pub struct Gateway {
    pub config: Config,
    store: Mutex<Store>,
    /// The store's series hasher, so that pushes are prepared before taking its lock.
    pub hasher: SeriesHasher,
    pub own: OwnMetrics,
    /// Signalled after every change, for the journal's writer.
    pub changed: Notify,
    /// Present when the store is kept in a file: handlers wait on it before answering.
    pub journal: Option<Journal>,
    shutdown: watch::Sender<bool>,
    pub started: SystemTime,
}

#[cfg(feature = "roles")]
impl Gateway {
    pub fn new(config: Config, store: Store) -> Gateway {
        Gateway {
            config,
            hasher: store.series_hasher(),
            store: Mutex::new(store),
            own: OwnMetrics::default(),
            changed: Notify::new(),
            journal: None,
            shutdown: watch::Sender::new(false),
            started: SystemTime::now(),
        }
    }

    /// Keeps the store in a file from now on: changes are tracked, and handlers wait until
    /// theirs are written before answering.
    pub fn with_journal(mut self) -> Gateway {
        let store = self.store.get_mut().unwrap_or_else(|e| e.into_inner());
        store.track_changes();
        self.journal = Some(Journal::new(store.generation()));
        self
    }

    /// Waits until the store's changes up to `generation` are on disk (at once without a
    /// file). The error says why they could not be written.
    pub async fn written(&self, generation: u64) -> Result<(), std::sync::Arc<str>> {
        match &self.journal {
            Some(journal) => journal.written(generation).await,
            None => Ok(()),
        }
    }

    pub fn store(&self) -> MutexGuard<'_, Store> {
        // The store's methods leave it consistent at every return; a panic in a handler
        // between them must not take every later request down.
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks every listener to stop taking requests and drain, then the process to exit.
    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    pub fn shutdown_requested(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }
}
