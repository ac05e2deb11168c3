//! Serving an axum app over plain HTTP or TLS: HTTP/1.1 and HTTP/2, each connection held to a
//! header, body and idle timeout, accepting that survives running out of file descriptors, and
//! a graceful drain on shutdown. The gateway's listeners and the webhook's port use it.
//!
//! hyper-util's `server-graceful` feature is not enabled in this build, so the drain is done
//! here: one watch channel tells every connection to finish what it is doing, and a JoinSet
//! says when they all have.

mod accept;
mod activity;
mod body_deadline;
mod connection;
mod requests;

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use self::accept::AcceptErrors;
pub use self::body_deadline::BodyTimedOut;
use self::connection::Connection;

/// Go's `ReadHeaderTimeout` as a LAN service wants it: ample for any client that is sending.
pub const DEFAULT_READ_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Above the 90 s for which Go clients (client-go, Prometheus) keep an idle connection, so that
/// the client, not the server, closes it, and a request never races the close.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// How long a client may take to send a request's head: from the accept for the first
    /// request (the TLS handshake included), from its first byte for the next ones.
    pub header_read_timeout: Duration,
    /// How long a connection may wait for its next request once the last one is answered.
    pub idle_timeout: Duration,
    /// How long a client may take to send a request's body once its head is in; `None`: as
    /// long as it likes (the webhook, whose bodies come from kube-apiserver).
    pub body_timeout: Option<Duration>,
    /// How long in-flight requests may take to finish once shutdown is signalled; connections
    /// still busy after that are closed.
    pub grace_period: Duration,
    /// The most an HTTP/1.1 connection buffers of what it reads, a head included (longer
    /// heads get 431); `None`: hyper's default (about 400 KiB).
    pub http1_read_buffer: Option<usize>,
}

/// hyper's minimum `max_buf_size` (proto/h1/io.rs, MINIMUM_MAX_BUFFER_SIZE).
pub const SMALLEST_HTTP1_READ_BUFFER: usize = 8192;

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            header_read_timeout: DEFAULT_READ_HEADER_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            body_timeout: None,
            grace_period: crate::shutdown::DRAIN_LIMIT,
            http1_read_buffer: None,
        }
    }
}

/// Serves `app` on `listener` (over TLS with `tls`) until `shutdown` completes, with the
/// default options.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: axum::Router,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    serve_with(listener, tls, app, shutdown, ServeOptions::default()).await
}

/// Serves `app` on `listener` (over TLS with `tls`) until `shutdown` completes; then stops
/// accepting (new connections are refused), lets in-flight requests finish within the grace
/// period, and returns. Errors of one connection are that connection's: they are logged, never
/// returned; failing accepts are retried (`accept.rs`).
pub async fn serve_with(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: axum::Router,
    shutdown: impl Future<Output = ()>,
    options: ServeOptions,
) -> io::Result<()> {
    let acceptor = tls.map(TlsAcceptor::from);
    let (drain, draining) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut accept_errors = AcceptErrors::default();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            // Shutdown first: once signalled, not one more connection is accepted.
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    accept_errors.accepted();
                    let connection =
                        Connection { tls: acceptor.clone(), app: app.clone(), peer, options: options.clone() };
                    connections.spawn(connection.serve(tcp, draining.clone()));
                }
                Err(error) => accept_errors.failed(&error).await,
            },
            // Reaps finished connections so the set does not grow with every client ever seen.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = drain.send(true);
    drain_connections(connections, options.grace_period).await;
    Ok(())
}

async fn drain_connections(mut connections: JoinSet<()>, grace_period: Duration) {
    let all_done = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(grace_period, all_done).await.is_err() {
        tracing::warn!(
            connections = connections.len(),
            grace_seconds = grace_period.as_secs_f64(),
            "closing connections still busy after the grace period"
        );
        connections.shutdown().await;
    }
}
