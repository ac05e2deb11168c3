//! `cronpush gateway`: a drop-in replacement for the Prometheus Pushgateway.
//!
//! One room a concern, as the Pushgateway's own code has storage, handlers and API:
//! - `store/`: the in-memory model: groups, families, grouping keys, prepared pushes and their
//!   way in (limits, then consistency checks), and the clock every room reads time with;
//! - `durable/`: the store kept in a file, and group commit (handlers wait until it is written);
//! - `http/`: the route table, the handlers and how answers look;
//! - `view/`: what is shown of the store: scrape, JSON API, pages, CronJob board, own metrics;
//! - `web/`: the exporter-toolkit web configuration: the file, TLS and basic auth;
//! - here: the [`Gateway`] the handlers share, the command line (`config.rs`), running and
//!   stopping (`server.rs`), and the two tasks that run on the `Gateway`: the expiry sweep
//!   (`expiry.rs`) and the journal's writer (`journal_writer.rs`).
//!
//! Imports go one way, so that each room can be read and tested without those above it: the
//! store imports nothing else of the gateway; the views read the store and the configuration;
//! the store file knows the store; the handlers use all three; the tasks and the server sit on
//! top. Only http/, server.rs and web/ (for the basic-auth layer) use axum.

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
use durable::journal::{Journal, WriteError};
#[cfg(feature = "roles")]
use store::{SeriesHasher, Store};
#[cfg(feature = "roles")]
use view::own_metrics::OwnMetrics;

/// Why [`Gateway::change`] did not return a durable change.
#[cfg(feature = "roles")]
#[derive(Debug, thiserror::Error)]
pub enum ChangeError<E> {
    /// The change refused itself; the store holds what it did before refusing, if anything.
    #[error(transparent)]
    Refused(E),
    /// The change was made but could not be written to the store file: it is retried in the
    /// background, and not acknowledged.
    #[error(transparent)]
    NotWritten(WriteError),
}

/// Everything the handlers share.
#[cfg(feature = "roles")]
pub struct Gateway {
    pub config: Config,
    store: Mutex<Store>,
    /// The store's series hasher, so that pushes are prepared before taking its lock.
    pub hasher: SeriesHasher,
    pub own: OwnMetrics,
    /// Signalled by [`Gateway::change`] after every change, for the journal's writer.
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
    async fn written(&self, generation: u64) -> Result<(), WriteError> {
        match &self.journal {
            Some(journal) => journal.written(generation).await,
            None => Ok(()),
        }
    }

    /// Changes the store the one way every writer does (push, delete, wipe, expiry), and
    /// returns once the change is on disk (at once without a store file).
    ///
    /// `change` runs under the store's lock, so it should only check and keep; whatever can be
    /// done without the store is done before. The journal's writer is told whenever the store
    /// changed (its generation moved). What `change` returns decides whether to wait: `Ok` is
    /// acknowledged only once on disk; `Err` is a refusal, answered at once, and what it changed
    /// (a refused push's failure time) is written with the next batch.
    pub async fn change<T, E>(&self, change: impl FnOnce(&mut Store) -> Result<T, E>) -> Result<T, ChangeError<E>> {
        let (outcome, changed, generation) = {
            let mut store = self.store();
            let before = store.generation();
            let outcome = change(&mut store);
            (outcome, store.generation() != before, store.generation())
        };
        if changed {
            self.changed.notify_one();
        }
        let value = outcome.map_err(ChangeError::Refused)?;
        self.written(generation).await.map_err(ChangeError::NotWritten)?;
        Ok(value)
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
