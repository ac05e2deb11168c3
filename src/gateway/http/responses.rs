//! How the gateway's answers look, beside what they say: errors as Go's `http.Error` writes
//! them, JSON with the reference's CORS headers, pages with their content security policy,
//! redirects to a cleaned path (the status and text of each error are in error.rs). One place,
//! so that every handler answers the same way.

use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::Error;
use crate::gateway::view::api::CORS_HEADERS;
use crate::gateway::view::ui;

/// A redirect to the cleaned path, as the reference's router (httprouter's fixed-path redirect,
/// router.go) answers it since Pushgateway 1.6: 301 for GET, 307 for other methods, so that a
/// client repeats its PUT, POST or DELETE with the body rather than turning it into a GET
/// (1.5.1 answered 301 to every method).
pub(super) fn redirect(method: &Method, location: &str, query: Option<&str>) -> Response {
    let status = if method == Method::GET { StatusCode::MOVED_PERMANENTLY } else { StatusCode::TEMPORARY_REDIRECT };
    let encoded = percent_encoding::utf8_percent_encode(location, PATH_ESCAPES).to_string();
    let target = match query {
        Some(q) => format!("{encoded}?{q}"),
        None => encoded,
    };
    match HeaderValue::from_str(&target) {
        Ok(value) => (status, [(header::LOCATION, value)]).into_response(),
        Err(_) => Error::Redirect.into_response(),
    }
}

const PATH_ESCAPES: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// An error as Go's `http.Error` writes it.
pub(super) fn plain_error(status: StatusCode, msg: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8"), (header::X_CONTENT_TYPE_OPTIONS, "nosniff")],
        format!("{msg}\n"),
    )
        .into_response()
}

pub(super) fn json(body: String) -> Response {
    with_cors(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// A request the JSON API cannot answer, in the envelope of its answers (Prometheus's
/// `bad_data`), with its status.
pub(super) fn json_error(status: StatusCode, message: String) -> Response {
    let body = serde_json::json!({"status": "error", "errorType": "bad_data", "error": message}).to_string();
    let mut response = json(body);
    *response.status_mut() = status;
    response
}

pub(super) fn html(body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, ui::CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

pub(super) fn with_cors(mut response: Response) -> Response {
    for (name, value) in CORS_HEADERS {
        response.headers_mut().insert(name, HeaderValue::from_static(value));
    }
    response
}
