//! Running the gateway: restore the store from its file, bind every listen address, serve
//! until SIGTERM, SIGINT or `/-/quit`, drain (in-flight pushes are answered once written), and
//! close the file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::Gateway;
use super::config::{Config, WithoutEffect};
use super::durable::persistence::{self, PersistError, StoreFile};
use super::expiry;
use super::http::app;
use super::journal_writer;
use super::store::Store;
use super::store::clock::nanos_since_epoch;
use super::view::own_metrics::BUILTIN;
use super::web::{self, WebConfigError};
use crate::http_server::{self, ServeOptions};
use crate::shutdown::{DRAIN_LIMIT, Shutdown, SignalsError};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Persistence(#[from] PersistError),
    #[error("cannot listen on {address}: {source}")]
    Listen { address: String, source: std::io::Error },
    #[error(transparent)]
    Signals(#[from] SignalsError),
    #[error(transparent)]
    Tls(#[from] WebConfigError),
    #[error("cannot start: {0}")]
    Start(String),
    #[error("--web.systemd-socket: {0}")]
    SystemdSocket(#[from] SystemdSocketError),
}

/// Why the sockets systemd passed cannot be served on.
#[derive(Debug, thiserror::Error)]
pub enum SystemdSocketError {
    /// exporter-toolkit's words (web/tls_config.go) for the same case.
    #[error("no socket activation file descriptors found")]
    NoSockets,
    #[error("socket {index} from systemd: {source}")]
    Take { index: usize, source: std::io::Error },
    #[error("socket {index} from systemd is not a TCP listening socket (ListenStream= takes host:port or a port)")]
    NotTcp { index: usize },
}

pub async fn run(config: Config) -> Result<(), ServeError> {
    // Before the store is read or a port bound: from here on SIGTERM drains instead of killing.
    let shutdown = Shutdown::install()?;
    for &flag in &config.without_effect {
        match flag {
            WithoutEffect::PersistenceInterval => tracing::info!("{}", flag.message()),
        }
    }
    let mut store = Store::new(BUILTIN);
    store.keep_runs(config.history_runs, config.history_max_runs);
    store.keep_log_bytes(config.history_max_log_bytes);
    let file = match config.persistence_file.clone() {
        Some(path) => Some(open_store_file(path, config.start_empty_if_damaged, &mut store).await?),
        None => None,
    };
    // The handle keeps the certificate reloading until the servers are done.
    let (tls, _reloading) = web::start_tls(&config.web)?.unzip();
    let gateway = Gateway::new(config, store);
    if let Some(file) = &file {
        gateway.own.count_store_writes(file.counts());
    }
    let gateway = Arc::new(if file.is_some() { gateway.with_journal() } else { gateway });
    let listeners = if gateway.config.systemd_socket {
        let listeners = systemd_listeners()?;
        for listener in &listeners {
            let address = listener.local_addr().map_or_else(|_| "?".into(), |a| a.to_string());
            tracing::info!(%address, "listening on a socket from systemd");
        }
        listeners
    } else {
        let mut listeners = Vec::new();
        for address in &gateway.config.listen_addresses {
            let listener =
                bind(address).await.map_err(|source| ServeError::Listen { address: address.clone(), source })?;
            tracing::info!(address = %listener.local_addr().map_or_else(|_| address.clone(), |a| a.to_string()), "listening");
            listeners.push(listener);
        }
        listeners
    };
    tokio::spawn(stop_on_signal(shutdown, gateway.clone()));
    let (stop_writer, writer_stop) = oneshot::channel();
    let writer = file.map(|file| tokio::spawn(journal_writer::write_changes(gateway.clone(), file, writer_stop)));
    // Only now, with the store restored, may groups expire.
    let expirer =
        gateway.config.expire_after.map(|after| tokio::spawn(expiry::expire_periodically(gateway.clone(), after)));
    let mut servers = Vec::new();
    for listener in listeners {
        let mut stop = gateway.shutdown_requested();
        let service = web::protect(app(gateway.clone()), &gateway.config.web);
        let stopped = async move {
            let _ = stop.wait_for(|stopping| *stopping).await;
        };
        let (tls, options) = (tls.clone(), serve_options(&gateway.config));
        servers.push(tokio::spawn(async move {
            let _ = http_server::serve_with(listener, tls, service, stopped, options).await;
        }));
    }
    let _ = gateway.shutdown_requested().wait_for(|stopping| *stopping).await;
    // In-flight requests finish (a push is answered once it is on disk) within the drain limit
    // (http_server/); a stuck client does not hold the stop for ever: its connection ends with
    // the process.
    let drained_by = tokio::time::Instant::now() + DRAIN_LIMIT;
    for server in servers {
        if tokio::time::timeout_at(drained_by, server).await.is_err() {
            tracing::warn!(
                grace_seconds = DRAIN_LIMIT.as_secs_f64(),
                "closing connections still busy after the drain limit"
            );
        }
    }
    if let Some(task) = expirer {
        task.abort();
        let _ = task.await;
    }
    if let Some(writer) = writer {
        // The writer writes whatever is left, then the file is closed.
        let _ = stop_writer.send(());
        let _ = writer.await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Every listener's connection timeouts, plain HTTP and TLS alike.
fn serve_options(config: &Config) -> ServeOptions {
    ServeOptions {
        header_read_timeout: config.timeouts.read_header,
        idle_timeout: config.timeouts.idle,
        body_timeout: config.timeouts.read_body,
        grace_period: DRAIN_LIMIT,
        // hyper's default, as the gateway always had on plain HTTP: a long grouping key in the
        // path gets the gateway's own answer, not hyper's bare 431.
        http1_read_buffer: None,
    }
}

/// Opens the store file and puts its groups into `store`.
async fn open_store_file(
    path: PathBuf,
    start_empty_if_damaged: bool,
    store: &mut Store,
) -> Result<Arc<StoreFile>, ServeError> {
    // Opening checks every page of the file: a blocking read, off the async threads.
    let (file, groups, _moved_aside) =
        tokio::task::spawn_blocking(move || StoreFile::open(&path, start_empty_if_damaged))
            .await
            .map_err(|e| ServeError::Start(e.to_string()))??;
    let skipped = persistence::restore(store, groups, nanos_since_epoch(SystemTime::now()));
    for why in skipped {
        tracing::warn!(reason = %why, "left a stored group out");
    }
    tracing::info!(groups = store.group_count(), "restored the stored groups");
    Ok(Arc::new(file))
}

/// The listening sockets systemd passed (LISTEN_FDS, for this process's LISTEN_PID), all of
/// them, in order, as exporter-toolkit serves them (web/tls_config.go, ListenAndServe with
/// --web.systemd-socket); --web.listen-address is then not bound, as there.
fn systemd_listeners() -> Result<Vec<TcpListener>, SystemdSocketError> {
    let mut passed = listenfd::ListenFd::from_env();
    if passed.len() == 0 {
        return Err(SystemdSocketError::NoSockets);
    }
    (0..passed.len())
        .map(|index| {
            let listener = passed
                .take_tcp_listener(index)
                .map_err(|source| SystemdSocketError::Take { index, source })?
                .ok_or(SystemdSocketError::NotTcp { index })?;
            listener.set_nonblocking(true).map_err(|source| SystemdSocketError::Take { index, source })?;
            TcpListener::from_std(listener).map_err(|source| SystemdSocketError::Take { index, source })
        })
        .collect()
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

async fn stop_on_signal(shutdown: Shutdown, gateway: Arc<Gateway>) {
    // The reference dies on SIGHUP without saving, and Debian's unit sends it on reload:
    // `Shutdown` logs it and keeps serving.
    let signal = shutdown.requested().await;
    tracing::info!("received {}, exiting gracefully", signal.name());
    gateway.shutdown();
}
