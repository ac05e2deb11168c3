//! What one connection is doing, as its deadlines need to know it: answering requests, waiting
//! between them, or receiving the head of the next one. hyper bounds none of this by itself the
//! way Go's `ReadHeaderTimeout` and `IdleTimeout` do (its HTTP/1 header timeout starts as soon
//! as a connection goes idle, so it cannot tell a keep-alive pause from a slow head, and HTTP/2
//! and the HTTP/1-or-2 sniffing of the first bytes have none), so the connection keeps this
//! record and `connection.rs` closes it when its deadline passes.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

/// The limits a connection is held to while no request is in flight.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// From the connection's start to its first request's head, TLS handshake included; and from
    /// the first byte of any later request to the end of its head.
    pub header: Duration,
    /// From the end of one request to the first byte of the next.
    pub idle: Duration,
}

/// The record one connection keeps; shared by its socket (bytes arriving), its requests
/// (started, answered) and its supervisor (the deadline).
#[derive(Debug)]
pub(super) struct Activity {
    state: Mutex<State>,
    limits: Limits,
    /// Wakes the supervisor when the deadline may have moved earlier or appeared.
    changed: Notify,
}

#[derive(Debug)]
struct State {
    in_flight: usize,
    answered: u64,
    /// HTTP/2 sends frames between requests (PING, WINDOW_UPDATE, SETTINGS) and a request's head
    /// in one HEADERS frame: its bytes do not start a head, so only the idle timeout applies
    /// between its requests.
    http2: bool,
    /// When the last request was answered, or the connection accepted.
    idle_since: Instant,
    /// When the first byte since `idle_since` arrived: a request's head is on its way.
    head_started: Option<Instant>,
}

impl Activity {
    pub(super) fn new(limits: Limits) -> Arc<Activity> {
        let state = State { in_flight: 0, answered: 0, http2: false, idle_since: Instant::now(), head_started: None };
        Arc::new(Activity { state: Mutex::new(state), limits, changed: Notify::new() })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state is a few counters, consistent after every statement: a panic elsewhere
        // while holding the lock leaves nothing half-written.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// When the connection is to be closed if nothing changes, and why; `None` while a request
    /// is in flight (its body has its own deadline, and a relay's answer legitimately takes
    /// minutes).
    pub(super) fn deadline(&self) -> Option<Deadline> {
        let state = self.state();
        if state.in_flight > 0 {
            return None;
        }
        let (from, limit, waiting_for) = match (state.answered, state.head_started) {
            // The first request: the handshake and the head within one header timeout of the
            // accept, as Go's ReadHeaderTimeout also bounds the TLS handshake.
            (0, _) => (state.idle_since, self.limits.header, Waiting::Head),
            (_, Some(started)) => (started, self.limits.header, Waiting::Head),
            (_, None) => (state.idle_since, self.limits.idle, Waiting::NextRequest),
        };
        Some(Deadline { at: from + limit, waiting_for })
    }

    /// Completes when the deadline may have changed.
    pub(super) async fn changed(&self) {
        self.changed.notified().await;
    }

    fn bytes_arrived(&self) {
        let mut state = self.state();
        if state.in_flight == 0 && state.head_started.is_none() && !state.http2 {
            state.head_started = Some(Instant::now());
            drop(state);
            // A header deadline is sooner than the idle one the supervisor may be sleeping on.
            self.changed.notify_one();
        }
    }

    /// A request's head has been read: no deadline until it is answered.
    pub(super) fn request_started(self: &Arc<Self>, http2: bool) -> InFlight {
        let mut state = self.state();
        state.http2 = http2;
        state.in_flight += 1;
        state.head_started = None;
        InFlight(self.clone())
    }
}

/// When a connection with nothing in flight is to be closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Deadline {
    pub at: Instant,
    pub waiting_for: Waiting,
}

/// What a connection past its deadline was waiting for, which says how to close it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Waiting {
    /// The TLS handshake or a request's head: the client is mid-request, or never sent one.
    Head,
    /// The next request on a kept-alive connection: the client may send one as it is closed,
    /// so HTTP/2 is told first (GOAWAY).
    NextRequest,
}

/// A request in flight; dropped when its answer has been sent (or abandoned).
#[derive(Debug)]
pub(super) struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = self.0.state();
        state.in_flight = state.in_flight.saturating_sub(1);
        if state.in_flight == 0 {
            state.answered += 1;
            state.idle_since = Instant::now();
            state.head_started = None;
            drop(state);
            self.0.changed.notify_one();
        }
    }
}

/// A connection's socket (beneath TLS, so that handshake bytes count too) that tells its
/// [`Activity`] when bytes arrive.
pub(super) struct Watched<T> {
    io: T,
    activity: Arc<Activity>,
}

impl<T> Watched<T> {
    pub(super) fn new(io: T, activity: Arc<Activity>) -> Watched<T> {
        Watched { io, activity }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let read = Pin::new(&mut this.io).poll_read(cx, buf);
        if matches!(read, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.bytes_arrived();
        }
        read
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits { header: Duration::from_secs(10), idle: Duration::from_secs(120) };

    /// `deadline` is `limit` after a moment between `before` and now, waiting for `what`.
    fn is_after(deadline: Option<Deadline>, before: Instant, limit: Duration, what: Waiting) -> bool {
        deadline.is_some_and(|deadline| {
            deadline.at >= before + limit && deadline.at <= Instant::now() + limit && deadline.waiting_for == what
        })
    }

    #[test]
    fn each_phase_has_its_deadline() {
        let before = Instant::now();
        let activity = Activity::new(LIMITS);
        let first = activity.deadline();
        assert!(is_after(first, before, LIMITS.header, Waiting::Head), "the first head, from the accept");
        activity.bytes_arrived();
        assert_eq!(activity.deadline(), first, "the first head stays bounded from the accept");
        let request = activity.request_started(false);
        assert_eq!(activity.deadline(), None, "a request in flight has no connection deadline");
        let before = Instant::now();
        drop(request);
        assert!(is_after(activity.deadline(), before, LIMITS.idle, Waiting::NextRequest), "keep-alive");
        let before = Instant::now();
        activity.bytes_arrived();
        assert!(is_after(activity.deadline(), before, LIMITS.header, Waiting::Head), "the next head");
    }

    #[test]
    fn http2_frames_between_requests_do_not_start_a_head() {
        let activity = Activity::new(LIMITS);
        let before = Instant::now();
        drop(activity.request_started(true));
        activity.bytes_arrived();
        assert!(is_after(activity.deadline(), before, LIMITS.idle, Waiting::NextRequest), "a PING is not a head");
    }

    #[test]
    fn concurrent_requests_keep_it_busy_until_the_last_is_answered() {
        let activity = Activity::new(LIMITS);
        let (first, second) = (activity.request_started(true), activity.request_started(true));
        drop(first);
        assert_eq!(activity.deadline(), None);
        let before = Instant::now();
        drop(second);
        assert!(is_after(activity.deadline(), before, LIMITS.idle, Waiting::NextRequest));
    }
}
