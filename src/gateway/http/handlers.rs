//! The handlers: requests in, the route table consulted, the store called or a view rendered,
//! answers out (shaped in responses.rs) with the reference's status codes, headers and bodies.
//! The store and the formats know nothing of HTTP.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use flate2::Compression;
use flate2::write::GzEncoder;

use super::body::read_body;
use super::error::{Error, PathError, Result};
use super::responses::{html, json, json_error, plain_error, redirect, with_cors};
use super::router::{PushPath, Route, RouteTable, Routing};
use crate::exposition::escaping::Escaping;
use crate::exposition::protobuf::{self, MediaType};
use crate::exposition::text_parse;
use crate::gateway::store::clock::{nanos_since_epoch, now};
use crate::gateway::store::log_delivery::{self, MAX_LOG_BODY_BYTES};
use crate::gateway::store::push_pipeline::{self, Refusal};
use crate::gateway::store::{GroupingKey, PushMethod};
use crate::gateway::view::board::BOARD_STATUSES;
use crate::gateway::view::selection::Selection;
use crate::gateway::view::{api, cronjob_page, runs, scrape, ui};
use crate::gateway::{ChangeError, Gateway};

const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";
const PROTOBUF_FORMAT: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

pub fn app(gateway: Arc<Gateway>) -> Router {
    Router::new().fallback(handle).with_state(gateway)
}

async fn handle(State(gw): State<Arc<Gateway>>, method: Method, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    let path = match decode_path(uri.path()) {
        Ok(path) => path,
        Err(e) => return Error::from(e).into_response(),
    };
    let table = RouteTable {
        prefix: &gw.config.route_prefix,
        telemetry_path: &gw.config.telemetry_path,
        admin_api: gw.config.enable_admin_api,
    };
    match table.route(method.as_str(), &path) {
        Routing::Handle(route) => dispatch(&gw, route, &method, uri.query(), &headers, body).await,
        Routing::Options { allow } => (StatusCode::OK, [(header::ALLOW, allow)]).into_response(),
        Routing::MethodNotAllowed { allow } if path.ends_with("/-/quit") && method == Method::GET => {
            (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, allow)], "Only POST or PUT requests allowed.")
                .into_response()
        }
        Routing::MethodNotAllowed { allow } => {
            (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, allow)], "Method Not Allowed\n").into_response()
        }
        Routing::Redirect(location) => redirect(&method, &location, uri.query()),
        Routing::NotFound => Error::NotFound.into_response(),
    }
}

async fn dispatch(
    gw: &Arc<Gateway>,
    route: Route,
    method: &Method,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    let lower_method = lower(method);
    match route {
        Route::Push(path) => push_or_delete(gw, method, &path, headers, body).await,
        Route::Scrape => scrape(gw, headers),
        Route::Healthy | Route::Ready => {
            let handler = if route == Route::Healthy { "healthy" } else { "ready" };
            gw.own.count_request(200, handler, lower_method);
            (StatusCode::OK, "OK").into_response()
        }
        Route::Quit => {
            if !gw.config.enable_lifecycle {
                return (StatusCode::FORBIDDEN, "Lifecycle API is not enabled.").into_response();
            }
            tracing::info!("received termination request via web service, exiting gracefully");
            gw.shutdown();
            (StatusCode::OK, "Requesting termination... Goodbye!").into_response()
        }
        Route::ApiStatus => {
            gw.own.count_request(200, "api/v1/status", lower_method);
            json(api::status(&gw.config, gw.started))
        }
        Route::ApiMetrics => {
            selected(gw, (query, ui::GROUP_STATUSES), ("api/v1/metrics", lower_method), json_error, |selection| {
                json(api::metrics(&gw.store(), selection))
            })
        }
        Route::ApiOptions => {
            gw.own.count_request(200, "api/v1/options", lower_method);
            with_cors(StatusCode::OK.into_response())
        }
        Route::ApiWipe => {
            let wiped = gw
                .change(|store| {
                    store.wipe();
                    Ok::<(), Infallible>(())
                })
                .await;
            if let Err(ChangeError::NotWritten(why)) = wiped {
                return Error::NotWritten { what: "wipe", why }.into_response();
            }
            tracing::info!("wiped every group through the admin API");
            gw.own.count_request(202, "wipe", lower_method);
            with_cors(StatusCode::ACCEPTED.into_response())
        }
        Route::ApiCronJobs => {
            selected(gw, (query, BOARD_STATUSES), ("api/v1/cronjobs", lower_method), json_error, |selection| {
                json(ui::board_json(&gw.store(), selection, now()))
            })
        }
        Route::ApiCronJobRuns { namespace, cronjob } => {
            gw.own.count_request(200, "api/v1/cronjobs/runs", lower_method);
            let cluster = query_value(query, "cluster");
            json(runs::runs_json(&gw.store(), &namespace, &cronjob, cluster.as_deref()))
        }
        Route::ApiRunLogs(path) => {
            let outcome = run_logs(gw, &path, headers, body).await;
            let status = outcome.as_ref().map_or_else(Error::status, |status| *status);
            gw.own.count_request(status.as_u16(), "api/v1/runs/logs", lower_method);
            match outcome {
                Ok(status) => status.into_response(),
                Err(e) => {
                    tracing::info!(status = status.as_u16(), error = %e, "refused log lines");
                    e.into_response()
                }
            }
        }
        Route::UiGroups => {
            selected(gw, (query, ui::GROUP_STATUSES), ("static", lower_method), plain_error, |selection| {
                html(ui::groups_page(&gw.store(), &gw.config, selection, now()))
            })
        }
        Route::UiCronJobs => {
            selected(gw, (query, BOARD_STATUSES), ("cronjobs", lower_method), plain_error, |selection| {
                html(ui::board_page(&gw.store(), &gw.config, selection, now()))
            })
        }
        Route::UiCronJob { namespace, cronjob } => {
            let cluster = query_value(query, "cluster").filter(|c| !c.is_empty());
            match cronjob_page::page(&gw.store(), &gw.config, &namespace, &cronjob, cluster.as_deref(), now()) {
                Some(page) => {
                    gw.own.count_request(200, "cronjob", lower_method);
                    html(page)
                }
                None => {
                    gw.own.count_request(404, "cronjob", lower_method);
                    plain_error(
                        StatusCode::NOT_FOUND,
                        format!("no CronJob {namespace}/{cronjob} has reported to this gateway"),
                    )
                }
            }
        }
        Route::UiStatus => {
            gw.own.count_request(200, "status", lower_method);
            html(ui::status_page(&gw.store(), &gw.config, nanos_since_epoch(gw.started), now()))
        }
        Route::UiAsset(name) => match ui::asset(&name) {
            Some((content_type, bytes)) => {
                gw.own.count_request(200, "static", lower_method);
                ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "max-age=300")], bytes).into_response()
            }
            None => Error::NotFound.into_response(),
        },
    }
}

async fn push_or_delete(
    gw: &Arc<Gateway>,
    method: &Method,
    path: &PushPath,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let lower_method = lower(method);
    let handler = if *method == Method::DELETE { "delete" } else { "push" };
    let mut size = 0;
    let outcome = push_outcome(gw, method, path, headers, body, &mut size).await;
    let status = outcome.as_ref().map_or_else(Error::status, |status| *status);
    if handler == "push" {
        gw.own.count_push(status.as_u16(), lower_method, started.elapsed(), size);
    } else {
        gw.own.count_request(status.as_u16(), handler, lower_method);
    }
    match outcome {
        Ok(status) => status.into_response(),
        Err(e) => {
            tracing::debug!(status = status.as_u16(), error = %e, "refused push");
            e.into_response()
        }
    }
}

/// Applies a push or delete; `size` learns how many body bytes came in.
async fn push_outcome(
    gw: &Arc<Gateway>,
    method: &Method,
    path: &PushPath,
    headers: &HeaderMap,
    body: Body,
    size: &mut usize,
) -> Result<StatusCode> {
    let key = GroupingKey::from_path_with(&path.job, path.job_is_base64, &path.labels, gw.config.name_rules)?;
    let body = read_body(headers, body, gw.config.limits.body_bytes(), size).await?;
    if *method == Method::DELETE {
        return match gw
            .change(|store| {
                store.delete(&key);
                Ok::<(), Infallible>(())
            })
            .await
        {
            Ok(()) => Ok(StatusCode::ACCEPTED),
            Err(ChangeError::NotWritten(why)) => Err(Error::NotWritten { what: "delete", why }),
            Err(ChangeError::Refused(never)) => match never {},
        };
    }
    let push_method = if *method == Method::PUT { PushMethod::Replace } else { PushMethod::Update };
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let families = if protobuf::is_delimited_protobuf(content_type) {
        protobuf::decode_delimited(&body)?
    } else {
        text_parse::parse_with(&body, gw.config.name_rules)?
    };
    let limits = &gw.config.limits;
    let mut prepared = push_pipeline::prepare(&gw.hasher, limits, key.clone(), push_method, families)?;
    let now = nanos_since_epoch(SystemTime::now());
    // The lock is held for the checks and the bookkeeping only; `prepared` is dropped after it.
    // Acknowledged only once on disk; a refused push is answered at once.
    let result = gw.change(|store| push_pipeline::apply(store, limits, &mut prepared, now)).await;
    match result {
        Ok(()) if gw.config.consistency_check => Ok(StatusCode::OK),
        Ok(()) => Ok(StatusCode::ACCEPTED),
        Err(ChangeError::NotWritten(why)) => Err(Error::NotWritten { what: "push", why }),
        Err(ChangeError::Refused(Refusal::Invalid(e))) if !gw.config.consistency_check => {
            // The client was promised a 202 before the check; the refusal is only logged.
            tracing::warn!(group = %key, error = %e, "dropped an inconsistent push");
            Ok(StatusCode::ACCEPTED)
        }
        Err(ChangeError::Refused(refusal)) => Err(refusal.into()),
    }
}

/// Keeps the last log lines of a run's failed containers with its end, in the group the path
/// names: checked whole before the store is touched, acknowledged once on disk.
async fn run_logs(gw: &Arc<Gateway>, path: &PushPath, headers: &HeaderMap, body: Body) -> Result<StatusCode> {
    let key = GroupingKey::from_path_with(&path.job, path.job_is_base64, &path.labels, gw.config.name_rules)?;
    let body = read_body(headers, body, MAX_LOG_BODY_BYTES, &mut 0).await?;
    let delivery = log_delivery::parse(&body)?;
    let containers = delivery.logs.len();
    match gw.change(|store| store.attach_logs(&key, delivery.ended, delivery.logs)).await {
        Ok(()) => {
            tracing::debug!(group = %key, containers, "kept a failed run's log lines");
            Ok(StatusCode::OK)
        }
        Err(ChangeError::Refused(refusal)) => Err(refusal.into()),
        Err(ChangeError::NotWritten(why)) => Err(Error::NotWritten { what: "log lines", why }),
    }
}

fn scrape(gw: &Arc<Gateway>, headers: &HeaderMap) -> Response {
    let own = gw.own.families();
    let (wants_protobuf, escaping) = negotiate(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or(""));
    let (body, format): (Vec<u8>, &str) = if wants_protobuf {
        let mut body = Vec::new();
        scrape::write_protobuf(&gw.store(), &own, escaping, &mut body);
        (body, PROTOBUF_FORMAT)
    } else {
        let mut text = String::with_capacity(1 << 16);
        scrape::write_text(&gw.store(), &own, escaping, &mut text);
        (text.into_bytes(), TEXT_FORMAT)
    };
    // The scheme is said even when nothing needed it, as the reference does since 1.11.
    let content_type = format!("{format}; escaping={}", escaping.as_str());
    let content_type = content_type.as_str();
    let gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("gzip")));
    if gzip {
        use std::io::Write;
        let mut encoder = GzEncoder::new(Vec::with_capacity(body.len() / 4), Compression::fast());
        if encoder.write_all(&body).is_ok()
            && let Ok(compressed) = encoder.finish()
        {
            return ([(header::CONTENT_TYPE, content_type), (header::CONTENT_ENCODING, "gzip")], compressed)
                .into_response();
        }
    }
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// Whether the client prefers delimited protobuf over text, and the name escaping it asked
/// for, by the reference's rules (prometheus/common's expfmt `NegotiateAccept`): entries are
/// read in order of quality, each known `escaping` parameter read on the way replacing the one
/// before, until one that is served; anything else gets text 0.0.4.
fn negotiate(accept: &str) -> (bool, Escaping) {
    let mut entries: Vec<(f64, MediaType)> = accept
        .split(',')
        .filter_map(MediaType::parse)
        .map(|m| (m.param("q").and_then(|q| q.parse().ok()).unwrap_or(1.0), m))
        .collect();
    entries.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut escaping = Escaping::DEFAULT;
    for (_, media) in entries {
        if let Some(asked) = media.param("escaping").and_then(Escaping::parse) {
            escaping = asked;
        }
        if media.essence == "application/vnd.google.protobuf"
            && media.param("proto") == Some("io.prometheus.client.MetricFamily")
            && media.param("encoding") == Some("delimited")
        {
            return (true, escaping);
        }
        if media.essence == "text/plain" && matches!(media.param("version"), None | Some("0.0.4")) {
            return (false, escaping);
        }
    }
    (false, escaping)
}

/// The path as the reference routes on it: percent-decoded, so `%2F` separates.
pub(crate) fn decode_path(raw: &str) -> Result<String, PathError> {
    let bytes = raw.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'%'
            && !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
        {
            return Err(PathError::InvalidEscape(raw.to_string()));
        }
    }
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map(|p| p.into_owned())
        .map_err(|_| PathError::NotUtf8(raw.to_string()))
}

fn lower(method: &Method) -> &'static str {
    match *method {
        Method::GET => "get",
        Method::HEAD => "head",
        Method::PUT => "put",
        Method::POST => "post",
        Method::DELETE => "delete",
        Method::OPTIONS => "options",
        _ => "other",
    }
}

/// The percent-decoded value of `name` in a URL's query, if given.
/// A page's or an API's answer to the selection its query asks for (`statuses`: those it
/// knows), or the 400 that says what of the query cannot be read, written by `refuse` (in the
/// JSON API's envelope, or as text for a page).
fn selected(
    gw: &Gateway,
    (query, statuses): (Option<&str>, &[&str]),
    (handler, method): (&'static str, &'static str),
    refuse: fn(StatusCode, String) -> Response,
    answer: impl FnOnce(&Selection) -> Response,
) -> Response {
    match Selection::from_query(query, statuses) {
        Ok(selection) => {
            gw.own.count_request(200, handler, method);
            answer(&selection)
        }
        Err(e) => {
            gw.own.count_request(400, handler, method);
            refuse(StatusCode::BAD_REQUEST, e.to_string())
        }
    }
}

fn query_value(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').filter_map(|pair| pair.split_once('=')).find(|(key, _)| *key == name).map(|(_, value)| {
        let value = value.replace('+', " ");
        percent_encoding::percent_decode_str(&value).decode_utf8_lossy().into_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates_like_expfmt() {
        assert_eq!(negotiate(PROTOBUF_FORMAT), (true, Escaping::Underscores));
        assert!(negotiate(
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3"
        ).0);
        assert!(!negotiate(
            "text/plain;version=0.0.4;q=0.9,application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.3"
        ).0);
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(negotiate(prometheus), (false, Escaping::Underscores));
        assert_eq!(negotiate(""), (false, Escaping::Underscores));
        // Prometheus 3 with UTF-8 names asks like this; an unknown scheme is ignored, and an
        // entry not served still sets the scheme for the one that is.
        assert_eq!(negotiate("text/plain;version=1.0.0;escaping=allow-utf-8;q=0.5"), (false, Escaping::AllowUtf8));
        assert_eq!(negotiate("text/plain;version=0.0.4;escaping=bogus"), (false, Escaping::Underscores));
        assert_eq!(
            negotiate("application/openmetrics-text;escaping=values,text/plain;q=0.5"),
            (false, Escaping::Values)
        );
    }

    #[test]
    fn decodes_paths_like_go() {
        assert_eq!(decode_path("/metrics/job/a%2Fb").unwrap(), "/metrics/job/a/b");
        assert_eq!(decode_path("/metrics/job/a+b%20c").unwrap(), "/metrics/job/a+b c");
        assert!(decode_path("/metrics/job/%zz").is_err());
        assert!(decode_path("/metrics/job/%ff").is_err());
    }
}
