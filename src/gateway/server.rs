//! Running the gateway: restore the store, bind every listen address, serve until SIGTERM,
//! SIGINT or `/-/quit`, drain, and save.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::net::TcpListener;
use tokio::time::Instant;

use super::Gateway;
use super::api::nanos_since_epoch;
use super::config::Config;
use super::expiry;
use super::http::app;
use super::own_metrics::BUILTIN;
use super::persistence::{self, PersistError, Persistence, SnapshotFile};
use super::store::Store;
use super::web_config::{self, WebConfigError};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Persistence(#[from] PersistError),
    #[error("cannot listen on {address}: {source}")]
    Listen { address: String, source: std::io::Error },
    #[error("cannot install the signal handlers: {0}")]
    Signals(std::io::Error),
    #[error(transparent)]
    Tls(#[from] WebConfigError),
}

pub async fn run(config: Config) -> Result<(), ServeError> {
    let persistence: Option<Arc<dyn Persistence>> =
        config.persistence_file.as_ref().map(|p| Arc::new(SnapshotFile::new(p)) as Arc<dyn Persistence>);
    if let Some(dir) = config.persistence_file.as_ref().and_then(|f| f.parent()).filter(|d| !d.as_os_str().is_empty()) {
        // The README's run command keeps its file under data/; a first start creates it.
        if let Err(e) = std::fs::create_dir_all(dir) {
            tracing::error!(error = %e, dir = %dir.display(), "cannot create the persistence directory");
        }
    }
    let mut store = Store::new(BUILTIN);
    if let Some(p) = &persistence {
        if let Some(snapshot) = p.load()? {
            let skipped = persistence::restore(&mut store, snapshot, nanos_since_epoch(SystemTime::now()));
            for why in skipped {
                tracing::warn!(reason = %why, "left a saved group out");
            }
            tracing::info!(groups = store.group_count(), "restored the saved groups");
        }
    }
    // The handle keeps the certificate reloading until the servers are done.
    let (tls, _reloading) = web_config::start_tls(&config.web)?.unzip();
    let gateway = Arc::new(Gateway::new(config, store));
    let mut listeners = Vec::new();
    for address in &gateway.config.listen_addresses {
        let listener = bind(address).await.map_err(|source| ServeError::Listen { address: address.clone(), source })?;
        tracing::info!(address = %listener.local_addr().map_or_else(|_| address.clone(), |a| a.to_string()), "listening");
        listeners.push(listener);
    }
    tokio::spawn(watch_signals(gateway.clone()));
    let saver = persistence.clone().map(|p| tokio::spawn(save_periodically(gateway.clone(), p)));
    // Only now, with the store restored, may groups expire.
    let expirer =
        gateway.config.expire_after.map(|after| tokio::spawn(expiry::expire_periodically(gateway.clone(), after)));
    let mut servers = Vec::new();
    for listener in listeners {
        let mut stop = gateway.shutdown_requested();
        let service = web_config::protect(app(gateway.clone()), &gateway.config.web);
        let stopped = async move {
            let _ = stop.wait_for(|stopping| *stopping).await;
        };
        let tls = tls.clone();
        servers.push(tokio::spawn(async move {
            let _ = match tls {
                Some(tls) => crate::tls::serve(listener, tls, service, stopped).await,
                None => axum::serve(listener, service).with_graceful_shutdown(stopped).await,
            };
        }));
    }
    let _ = gateway.shutdown_requested().wait_for(|stopping| *stopping).await;
    for server in servers {
        // In-flight requests finish; a stuck client does not hold the shutdown forever.
        let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
    }
    for task in expirer.into_iter().chain(saver) {
        task.abort();
        let _ = task.await;
    }
    if let Some(p) = persistence {
        save(&gateway, p).await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Binds `host:port`, where an empty host (`:9091`) means every interface, IPv6 and IPv4.
async fn bind(address: &str) -> std::io::Result<TcpListener> {
    if let Some(port) = address.strip_prefix(':') {
        let port: u16 = port.parse().map_err(|_| std::io::Error::other(format!("bad port in {address:?}")))?;
        return match TcpListener::bind(SocketAddr::from(([0u16; 8], port))).await {
            Ok(listener) => Ok(listener),
            // A host without IPv6.
            Err(_) => TcpListener::bind(SocketAddr::from(([0u8; 4], port))).await,
        };
    }
    TcpListener::bind(address).await
}

async fn watch_signals(gateway: Arc<Gateway>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) =
        (signal(SignalKind::terminate()), signal(SignalKind::interrupt()), signal(SignalKind::hangup()))
    else {
        tracing::error!("{}", ServeError::Signals(std::io::Error::last_os_error()));
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("received SIGTERM, exiting gracefully"); break; }
            _ = int.recv() => { tracing::info!("received SIGINT, exiting gracefully"); break; }
            // The reference dies on SIGHUP without saving, and Debian's unit sends it on reload.
            // There is nothing to reload; say so and keep serving.
            _ = hup.recv() => tracing::info!("received SIGHUP; there is no configuration to reload"),
        }
    }
    gateway.shutdown();
}

/// Saves after changes, at most once per `--persistence.interval`, as the reference does.
async fn save_periodically(gateway: Arc<Gateway>, persistence: Arc<dyn Persistence>) {
    let interval = gateway.config.persistence_interval;
    let mut last = Instant::now();
    loop {
        gateway.changed.notified().await;
        tokio::time::sleep_until(last + interval).await;
        save(&gateway, persistence.clone()).await;
        last = Instant::now();
    }
}

async fn save(gateway: &Gateway, persistence: Arc<dyn Persistence>) {
    let snapshot = persistence::snapshot(&gateway.store());
    let groups = snapshot.groups.len();
    // The file is written outside the store's lock, on a thread that may block on the disk.
    match tokio::task::spawn_blocking(move || persistence.save(&snapshot)).await {
        Ok(Ok(())) => tracing::debug!(groups, "saved the store"),
        Ok(Err(e)) => tracing::error!(error = %e, "could not save the store"),
        Err(e) => tracing::error!(error = %e, "the save was interrupted"),
    }
}
