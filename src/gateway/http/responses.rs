//! How the gateway's answers look, beside what they say: errors as Go's `http.Error` writes
//! them, JSON with the reference's CORS headers, pages with their content security policy,
//! redirects to a cleaned path, and the status each refusal gets. One place, so that every
//! handler answers the same way.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::gateway::store::limits::LimitError;
use crate::gateway::view::api::CORS_HEADERS;
use crate::gateway::view::ui;

/// Why a change was applied but not acknowledged: the store file could not be written. It is
/// retried in the background; the client should send the change again.
pub(super) fn not_written(what: &str, why: &str) -> String {
    format!("the {what} could not be saved to the store file and is not acknowledged ({why}); send it again")
}

/// The answer to a push a limit refuses; the store has not been touched.
pub(super) fn refused(e: LimitError) -> (StatusCode, String) {
    let status = match e {
        LimitError::BodyTooLarge { .. } | LimitError::TooManySeries { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        LimitError::LabelValueTooLong { .. } => StatusCode::BAD_REQUEST,
        // Not 429: no rate is exceeded and waiting does not help. Not 403: nothing is
        // forbidden to this client. The push is valid and the gateway has no room for another
        // group until an operator deletes one or raises the limit, which is what 507
        // Insufficient Storage says; as a 5xx it also shows in the error-rate alerts that
        // should wake that operator.
        LimitError::TooManyGroups { .. } => StatusCode::INSUFFICIENT_STORAGE,
    };
    (status, e.to_string())
}

pub(super) fn redirect(location: &str, query: Option<&str>) -> Response {
    let encoded = percent_encoding::utf8_percent_encode(location, PATH_ESCAPES).to_string();
    let target = match query {
        Some(q) => format!("{encoded}?{q}"),
        None => encoded,
    };
    match HeaderValue::from_str(&target) {
        Ok(value) => (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, value)]).into_response(),
        Err(_) => plain_error(StatusCode::BAD_REQUEST, "cannot redirect to the cleaned path".into()),
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
