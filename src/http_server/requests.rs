//! The app as one connection serves it: each request counted in flight from its head until its
//! answer's last byte is handed to the connection (so the connection's idle deadline waits for
//! long answers, such as the relay's), and its body given its read deadline.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::http::{Request, Response, Version};
use hyper::body::{Frame, Incoming, SizeHint};
use tower::Service;

use super::activity::{Activity, InFlight};
use super::body_deadline::ReadDeadline;

#[derive(Clone)]
pub(super) struct Requests {
    pub(super) app: axum::Router,
    pub(super) activity: Arc<Activity>,
    pub(super) body_timeout: Option<Duration>,
}

impl hyper::service::Service<Request<Incoming>> for Requests {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let in_flight = self.activity.request_started(request.version() == Version::HTTP_2);
        let request = request.map(|body| Body::new(ReadDeadline::new(body, self.body_timeout)));
        let mut app = self.app.clone();
        Box::pin(async move {
            // If the connection drops this future, `in_flight` goes with it.
            let response = app.call(request).await?;
            Ok(response.map(|body| Body::new(Answering { body, _in_flight: in_flight })))
        })
    }
}

/// An answer's body that keeps its request in flight until it is sent or dropped.
struct Answering {
    body: Body,
    _in_flight: InFlight,
}

impl HttpBody for Answering {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
