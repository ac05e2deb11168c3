//! Serving an axum app over TLS: HTTP/1.1 and HTTP/2, bounded handshakes, and a graceful drain
//! on shutdown. The gateway's HTTPS listeners and the webhook's port use it.
//!
//! hyper-util's `server-graceful` feature is not enabled in this build, so the drain is done
//! here: one watch channel tells every connection to finish what it is doing, and a JoinSet
//! says when they all have.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

/// hyper's minimum `max_buf_size` (proto/h1/io.rs, MINIMUM_MAX_BUFFER_SIZE).
const HTTP1_READ_BUFFER: usize = 8192;

#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// How long a client may take to complete the TLS handshake. A client that connects and
    /// says nothing would otherwise hold a task and a socket for ever.
    pub handshake_timeout: Duration,
    /// How long an HTTP/1.1 client may take to send a request's headers.
    pub header_read_timeout: Duration,
    /// How long in-flight requests may take to finish once shutdown is signalled; connections
    /// still busy after that are closed.
    pub grace_period: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(30),
            grace_period: crate::shutdown::DRAIN_LIMIT,
        }
    }
}

/// Serves `app` over TLS on `listener` until `shutdown` completes, with the default options.
pub async fn serve(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    app: axum::Router,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    serve_with(listener, config, app, shutdown, ServeOptions::default()).await
}

/// Serves `app` over TLS on `listener` until `shutdown` completes; then stops accepting (new
/// connections are refused), lets in-flight requests finish within the grace period, and
/// returns. Errors of one connection are that connection's: they are logged, never returned.
pub async fn serve_with(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    app: axum::Router,
    shutdown: impl Future<Output = ()>,
    options: ServeOptions,
) -> io::Result<()> {
    let acceptor = TlsAcceptor::from(config);
    let (drain, draining) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            // Shutdown first: once signalled, not one more connection is accepted.
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let (acceptor, app, options) = (acceptor.clone(), app.clone(), options.clone());
                    let connection = Connection { acceptor, app, peer, options };
                    connections.spawn(connection.serve(tcp, draining.clone()));
                }
                Err(error) => pause_after_accept_error(&error).await,
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

/// Accept errors are about one connection (reset before accept) or about resources (out of
/// file descriptors): neither should stop the server, and the second must not spin.
async fn pause_after_accept_error(error: &io::Error) {
    tracing::warn!(%error, "cannot accept a connection");
    tokio::time::sleep(Duration::from_millis(50)).await;
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

/// Completes when shutdown has been signalled, or when the server is gone.
async fn drained(draining: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns must not live across an await in the connection's task.
    let _ = draining.wait_for(|draining| *draining).await;
}

struct Connection {
    acceptor: TlsAcceptor,
    app: axum::Router,
    peer: SocketAddr,
    options: ServeOptions,
}

impl Connection {
    async fn serve(self, tcp: TcpStream, mut draining: watch::Receiver<bool>) {
        // An HTTP/2 answer is several writes (HEADERS, DATA, the TLS records around them);
        // with Nagle's algorithm the later ones wait for the client's delayed ACK, tens of ms.
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(peer = %self.peer, %error, "cannot disable Nagle's algorithm");
        }
        let handshake = tokio::time::timeout(self.options.handshake_timeout, self.acceptor.accept(tcp));
        let tls = tokio::select! {
            biased;
            // A connection that has not sent a request yet has nothing in flight to finish.
            () = drained(&mut draining) => return,
            finished = handshake => match finished {
                Ok(Ok(tls)) => tls,
                Ok(Err(error)) => return tracing::debug!(peer = %self.peer, %error, "TLS handshake failed"),
                Err(_) => return tracing::debug!(peer = %self.peer, "TLS handshake timed out"),
            },
        };
        let mut http = auto::Builder::new(TokioExecutor::new());
        // hyper's smallest read buffer. Its default ceiling makes a connection whose request
        // arrives in two reads (the HTTP/2 sniffing above hands the first bytes over apart)
        // double the buffer to 16 KiB; a sidecar waiting at the relay holds it for minutes, and
        // thousands wait at the top of the hour (benches/relay.rs). Request heads stay far below
        // it; bodies are read through it in pieces.
        http.http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.options.header_read_timeout)
            .max_buf_size(HTTP1_READ_BUFFER);
        http.http2().timer(TokioTimer::new());
        let connection = http.serve_connection(TokioIo::new(tls), TowerToHyperService::new(self.app));
        tokio::pin!(connection);
        let finished = tokio::select! {
            finished = connection.as_mut() => finished,
            () = drained(&mut draining) => {
                // HTTP/1.1 closes once the current response is sent; HTTP/2 sends GOAWAY and
                // finishes the streams already open.
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        };
        if let Err(error) = finished {
            tracing::debug!(peer = %self.peer, %error, "connection ended with an error");
        }
    }
}
