//! The webhook's HTTP routes (served over TLS only, see `server`): `POST /mutate` for the API
//! server, `/healthz` and `/readyz` for the kubelet, `/metrics` for Prometheus.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::admission;
use super::admit::Admitter;
use super::metrics::WebhookMetrics;

/// An AdmissionReview carries one Pod; the API server itself refuses objects over ~3 MiB.
const MAX_REVIEW_BYTES: usize = 8 << 20;

pub struct WebhookState {
    pub admitter: Admitter,
    pub metrics: WebhookMetrics,
}

pub fn app(state: Arc<WebhookState>) -> Router {
    Router::new()
        .route("/mutate", post(mutate))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(MAX_REVIEW_BYTES))
        .with_state(state)
}

async fn mutate(State(state): State<Arc<WebhookState>>, body: Bytes) -> Response {
    let started = Instant::now();
    let request = match admission::parse(&body) {
        Ok(request) => request,
        Err(e) => {
            state.metrics.observe(None, started.elapsed());
            tracing::warn!(error = %e, "refused a malformed AdmissionReview");
            return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response();
        }
    };
    let (answer, outcome) = state.admitter.admit(&request).await;
    state.metrics.observe(Some(outcome), started.elapsed());
    let pod = request.object.as_ref().and_then(|p| p.metadata.generate_name.clone()).unwrap_or_default();
    tracing::debug!(uid = %request.uid, namespace = ?request.namespace, pod = %pod, ?outcome, "admitted");
    for warning in &answer.warnings {
        tracing::warn!(uid = %request.uid, pod = %pod, "{warning}");
    }
    ([(header::CONTENT_TYPE, "application/json")], admission::respond(&request.uid, &answer)).into_response()
}

async fn metrics(State(state): State<Arc<WebhookState>>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.metrics.text()).into_response()
}
