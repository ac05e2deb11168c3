//! The webhook's HTTP routes (served over TLS only, see `server`): `POST /mutate` for the API
//! server, `GET /v1/exit-status` for the sidecars (the relay), `/v1/push/...` for the pushers in
//! the relay's push mode, `/healthz` and `/readyz` for the kubelet, `/metrics` for Prometheus.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};

use super::admission_review;
use super::decision::Admitter;
use super::metrics::WebhookMetrics;
use super::relay::{Relay, RelayError, RelayQuery};
use super::relay_push::{Push, RelayPush, refusal_headers};

/// An AdmissionReview carries one Pod; the API server itself refuses objects over ~3 MiB.
const MAX_REVIEW_BYTES: usize = 8 << 20;

pub struct WebhookState {
    pub admitter: Admitter,
    pub relay: Relay,
    /// The relay's push mode; `None` with `--push-mode=direct`.
    pub relay_push: Option<RelayPush>,
    pub metrics: WebhookMetrics,
}

pub fn app(state: Arc<WebhookState>) -> Router {
    Router::new()
        .route("/mutate", post(mutate))
        .route("/v1/exit-status", get(exit_status))
        .route("/v1/push/{*rest}", any(push))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(MAX_REVIEW_BYTES))
        .with_state(state)
}

async fn mutate(State(state): State<Arc<WebhookState>>, body: Bytes) -> Response {
    let started = Instant::now();
    let review = match admission_review::parse(&body) {
        Ok(review) => review,
        Err(e) => {
            state.metrics.observe(None, started.elapsed());
            tracing::warn!(error = %e, "refused a malformed AdmissionReview");
            return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response();
        }
    };
    let (answer, outcome) = state.admitter.admit(&review).await;
    state.metrics.observe(Some(outcome), started.elapsed());
    let request = &review.request;
    let pod = request.object.as_ref().and_then(|p| p.metadata.generate_name.clone()).unwrap_or_default();
    tracing::debug!(uid = %request.uid, namespace = ?request.namespace, pod = %pod, ?outcome, "admitted");
    for warning in &answer.warnings {
        tracing::warn!(uid = %request.uid, pod = %pod, ?outcome, "{warning}");
    }
    ([(header::CONTENT_TYPE, "application/json")], admission_review::respond(&request.uid, &answer)).into_response()
}

/// The relay: `Authorization: Bearer <projected token>`, and the query `namespace`, `pod`
/// (both optional, checked against the token), `wait` (seconds, what is left of the sidecar's
/// own deadline) and `logLines` (optional: the failed containers' last lines, 1 to 1000).
async fn exit_status(State(state): State<Arc<WebhookState>>, headers: HeaderMap, query: RawQuery) -> Response {
    let token = bearer_token(&headers);
    // The header values share hyper's read buffer: held while the sidecar waits, they would
    // make hyper take a second one for the connection (16 KiB instead of 8 per waiting sidecar).
    drop(headers);
    let answer = match relay_query(query.0.as_deref().unwrap_or_default()) {
        Ok(query) => state.relay.exit_status(token.as_deref(), query).await,
        Err(e) => Err(e),
    };
    match answer {
        Ok(report) => {
            state.metrics.observe_relay(if report.complete { "complete" } else { "incomplete" });
            tracing::info!(namespace = %report.namespace, pod = %report.pod, complete = report.complete, "relayed an exit status");
            let body = serde_json::to_string(&report).unwrap_or_default();
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Err(e) => {
            state.metrics.observe_relay(e.outcome());
            tracing::warn!(outcome = e.outcome(), "relay refused: {e}");
            refusal(&e)
        }
    }
}

/// A push of a Pod's pusher, forwarded to its CronJob's group (see `relay_push`).
async fn push(
    State(state): State<Arc<WebhookState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let Some(relay_push) = &state.relay_push else {
        let why = "the relay takes no pushes: the webhook runs with --push-mode=direct\n";
        return (StatusCode::NOT_FOUND, why).into_response();
    };
    let path = uri.path().strip_prefix("/v1/push").unwrap_or_default().to_string();
    let push = Push { token: bearer_token(&headers), method, path, headers, body };
    match relay_push.push(&state.relay, push).await {
        Ok(answer) => {
            let outcome = if answer.status().is_success() { "forwarded" } else { "refused_by_gateway" };
            state.metrics.observe_relay_push(outcome);
            answer
        }
        Err(e) => {
            state.metrics.observe_relay_push(e.outcome());
            tracing::warn!(outcome = e.outcome(), "relay refused a push: {e}");
            let mut response = refusal(&e);
            refusal_headers(&e, &mut response);
            response
        }
    }
}

/// A relay refusal as an answer: its status, and why in one line.
fn refusal(e: &RelayError) -> Response {
    let status = match e {
        RelayError::BadRequest(_) => StatusCode::BAD_REQUEST,
        RelayError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        RelayError::Forbidden(_) => StatusCode::FORBIDDEN,
        RelayError::NotFound(_) => StatusCode::NOT_FOUND,
        RelayError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        RelayError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        RelayError::TooMany { .. } => StatusCode::TOO_MANY_REQUESTS,
        RelayError::Gateway { .. } => StatusCode::BAD_GATEWAY,
    };
    let mut response = (status, format!("{e}\n")).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
    }
    response
}

/// The token of an `Authorization: Bearer` header.
fn bearer_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(|token| token.trim().to_string())
}

fn relay_query(raw: &str) -> Result<RelayQuery, RelayError> {
    let mut query = RelayQuery::default();
    for (key, value) in raw.split('&').filter(|p| !p.is_empty()).map(|p| p.split_once('=').unwrap_or((p, ""))) {
        let value = percent_encoding::percent_decode_str(value).decode_utf8_lossy().into_owned();
        match key {
            "namespace" => query.namespace = Some(value),
            "pod" => query.pod = Some(value),
            // An unreadable count asks for no lines: the exit status matters more than they do.
            "logLines" => query.log_lines = crate::contract::parse_log_lines(&value).ok(),
            "wait" => {
                let seconds: f64 = value
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s >= 0.0)
                    .ok_or_else(|| RelayError::BadRequest(format!("wait={value:?} is not a number of seconds")))?;
                query.wait = Some(Duration::from_secs_f64(seconds.min(86_400.0)));
            }
            _ => {}
        }
    }
    Ok(query)
}

async fn metrics(State(state): State<Arc<WebhookState>>) -> Response {
    let text = state.metrics.text(state.relay.waiting(), state.relay.watched_pods());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}
