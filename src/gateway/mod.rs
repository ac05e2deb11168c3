//! `cronpush gateway`: a drop-in replacement for the Prometheus Pushgateway.

pub mod api;
pub mod config;
pub mod consistency;
pub mod expiry;
pub mod family;
pub mod grouping;
pub mod http;
pub mod limits;
pub mod own_metrics;
pub mod persistence;
pub mod push;
pub mod router;
pub mod scrape;
pub mod server;
pub mod store;
pub mod ui;
pub mod web_config;

use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

use tokio::sync::{Notify, watch};

use config::Config;
use own_metrics::OwnMetrics;
use push::SeriesHasher;
use store::Store;

/// Everything the handlers share.
pub struct Gateway {
    pub config: Config,
    store: Mutex<Store>,
    /// The store's series hasher, so that pushes are prepared before taking its lock.
    pub hasher: SeriesHasher,
    pub own: OwnMetrics,
    /// Signalled after every change, for the persistence loop.
    pub changed: Notify,
    shutdown: watch::Sender<bool>,
    pub started: SystemTime,
}

impl Gateway {
    pub fn new(config: Config, store: Store) -> Gateway {
        Gateway {
            config,
            hasher: store.series_hasher(),
            store: Mutex::new(store),
            own: OwnMetrics::default(),
            changed: Notify::new(),
            shutdown: watch::Sender::new(false),
            started: SystemTime::now(),
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
