//! One connection: the TLS handshake when there is TLS, HTTP/1.1 or HTTP/2, and its deadlines
//! (`activity.rs`): a connection that is slow to send a head, or idle between requests for too
//! long, is closed, so that clients that connect and stop cannot hold every file descriptor.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use super::ServeOptions;
use super::activity::{Activity, Deadline, Limits, Waiting, Watched};
use super::requests::Requests;

pub(super) struct Connection {
    pub(super) tls: Option<TlsAcceptor>,
    pub(super) app: axum::Router,
    pub(super) peer: SocketAddr,
    pub(super) options: ServeOptions,
}

impl Connection {
    pub(super) async fn serve(self, tcp: TcpStream, mut draining: watch::Receiver<bool>) {
        // An HTTP/2 answer is several writes (HEADERS, DATA, the TLS records around them);
        // with Nagle's algorithm the later ones wait for the client's delayed ACK, tens of ms.
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(peer = %self.peer, %error, "cannot disable Nagle's algorithm");
        }
        let limits = Limits { header: self.options.header_read_timeout, idle: self.options.idle_timeout };
        let activity = Activity::new(limits);
        let tcp = Watched::new(tcp, activity.clone());
        let Some(acceptor) = self.tls.clone() else {
            return self.serve_http(TokioIo::new(tcp), activity, draining).await;
        };
        // The handshake counts in the first request's header timeout, as in Go.
        let deadline = activity.deadline().map_or_else(|| Instant::now() + limits.header, |deadline| deadline.at);
        let handshake = tokio::time::timeout_at(deadline, acceptor.accept(tcp));
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
        self.serve_http(TokioIo::new(tls), activity, draining).await;
    }

    async fn serve_http<I>(self, io: I, activity: Arc<Activity>, mut draining: watch::Receiver<bool>)
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let mut http = auto::Builder::new(TokioExecutor::new());
        // No hyper header timeout: it starts as soon as a connection goes idle, so it would
        // also end keep-alive after the header timeout. `Activity` bounds both, apart.
        http.http1().timer(TokioTimer::new()).header_read_timeout(None);
        if let Some(size) = self.options.http1_read_buffer {
            http.http1().max_buf_size(size);
        }
        http.http2().timer(TokioTimer::new());
        let service = Requests { app: self.app, activity: activity.clone(), body_timeout: self.options.body_timeout };
        let connection = http.serve_connection(io, service);
        tokio::pin!(connection);
        // Past the idle timeout the connection is told to end (graceful_shutdown), and ends when
        // the client has taken the news; `ended_by` bounds that wait, for a client that has gone
        // away without a word.
        let mut graceful = false;
        let mut ended_by: Option<Instant> = None;
        loop {
            let wake_at = match activity.deadline() {
                // In flight: no deadline; once told to end, hyper ends it after the answer.
                None => None,
                Some(Deadline { at, waiting_for: Waiting::Head }) => Some(at),
                Some(Deadline { at, waiting_for: Waiting::NextRequest }) => Some(ended_by.unwrap_or(at)),
            };
            let changed = activity.changed();
            tokio::select! {
                finished = connection.as_mut() => {
                    if let Err(error) = finished {
                        tracing::debug!(peer = %self.peer, %error, "connection ended with an error");
                    }
                    return;
                }
                () = drained(&mut draining), if !graceful => {
                    // HTTP/1.1 closes once the current response is sent; HTTP/2 sends GOAWAY and
                    // finishes the streams already open.
                    connection.as_mut().graceful_shutdown();
                    graceful = true;
                }
                () = changed => {}
                () = tokio::time::sleep_until(wake_at.unwrap_or_else(Instant::now)), if wake_at.is_some() => {
                    let now = Instant::now();
                    match (activity.deadline(), ended_by) {
                        // A head too slow: the client is mid-request or never sent one, and there
                        // is nothing to finish. Dropping the connection closes it.
                        (Some(Deadline { at, waiting_for: Waiting::Head }), _) if at <= now => {
                            return tracing::debug!(peer = %self.peer, "closing a connection past its header timeout");
                        }
                        // Idle too long: HTTP/1.1 closes at once, HTTP/2 says GOAWAY first, so that
                        // a client about to send a request sends it on a new connection.
                        (Some(Deadline { at, waiting_for: Waiting::NextRequest }), None) if at <= now => {
                            tracing::debug!(peer = %self.peer, "closing a connection past its idle timeout");
                            if !graceful {
                                connection.as_mut().graceful_shutdown();
                                graceful = true;
                            }
                            ended_by = Some(now + self.options.header_read_timeout);
                        }
                        (Some(Deadline { waiting_for: Waiting::NextRequest, .. }), Some(ended_by)) if ended_by <= now => {
                            return tracing::debug!(peer = %self.peer, "closing a connection that did not end when told to");
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}

/// Completes when shutdown has been signalled, or when the server is gone.
pub(super) async fn drained(draining: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns must not live across an await in the connection's task.
    let _ = draining.wait_for(|draining| *draining).await;
}
