//! A deadline for reading a request's body.
//!
//! A total deadline, counted from the end of the head, as Go's `ReadTimeout` is, not a pause
//! between two reads as nginx's `client_body_timeout` is: a client that sends a byte every few
//! seconds never pauses long enough to trip a per-read timeout, and would hold its connection
//! (and a file descriptor) for as long as the body limit lets it trickle. A push is small
//! and its size is bounded (--push.max-body-bytes), so a whole-body deadline of tens of seconds
//! is generous for every honest client, even a Pi on a poor Wi-Fi link.

use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Bytes, HttpBody};
use hyper::body::{Frame, Incoming, SizeHint};
use tokio::time::{Instant, Sleep};

/// What reading a body gives once its deadline has passed; a handler finds it among the
/// error's sources ([`BodyTimedOut::cause_of`]) and answers 408.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the request body was not received within {}", crate::go_duration::format(*.0))]
pub struct BodyTimedOut(pub Duration);

impl BodyTimedOut {
    /// The timeout `error` comes from, however deeply the body's readers wrapped it.
    pub fn cause_of(error: &(dyn StdError + 'static)) -> Option<BodyTimedOut> {
        let mut cause = Some(error);
        while let Some(error) = cause {
            if let Some(timeout) = error.downcast_ref::<BodyTimedOut>() {
                return Some(*timeout);
            }
            cause = error.source();
        }
        None
    }
}

/// A request body that fails with [`BodyTimedOut`] once `limit` has passed since it was made,
/// unless it has been read to its end by then. Without a limit it is the body as it came.
pub(super) struct ReadDeadline {
    body: Incoming,
    deadline: Option<(Pin<Box<Sleep>>, Duration)>,
}

impl ReadDeadline {
    pub(super) fn new(body: Incoming, limit: Option<Duration>) -> ReadDeadline {
        let deadline = limit.map(|limit| (Box::pin(tokio::time::sleep_until(Instant::now() + limit)), limit));
        ReadDeadline { body, deadline }
    }
}

impl HttpBody for ReadDeadline {
    type Data = Bytes;
    type Error = Box<dyn StdError + Send + Sync>;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Some((sleep, limit)) = &mut this.deadline
            && sleep.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Some(Err(Box::new(BodyTimedOut(*limit)))));
        }
        Pin::new(&mut this.body).poll_frame(cx).map_err(Into::into)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeout_is_found_however_deeply_it_is_wrapped() {
        let timeout = BodyTimedOut(Duration::from_secs(1));
        assert_eq!(BodyTimedOut::cause_of(&timeout), Some(timeout));
        let wrapped = axum::Error::new(axum::Error::new(timeout));
        assert_eq!(BodyTimedOut::cause_of(&wrapped), Some(timeout));
        let other = axum::Error::new(std::io::Error::other("reset"));
        assert_eq!(BodyTimedOut::cause_of(&other), None);
        assert_eq!(timeout.to_string(), "the request body was not received within 1s");
    }
}
