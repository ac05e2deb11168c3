//! Why a request is not done, typed until the edge: each kind has its status here, and its text
//! is the reference's (the differential tests compare both), written as Go's `http.Error` does.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::responses::plain_error;
use crate::exposition::text_parse::ParseError;
use crate::gateway::durable::journal::WriteError;
use crate::gateway::store::grouping::KeyError;
use crate::gateway::store::limits::LimitError;
use crate::gateway::store::log_delivery::LogDeliveryError;
use crate::gateway::store::{LogsRefusal, PushError, push_pipeline::Refusal};
use crate::http_server::BodyTimedOut;

pub(super) type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub(super) enum Error {
    #[error(transparent)]
    Path(#[from] PathError),
    #[error("404 page not found")]
    NotFound,
    #[error("cannot redirect to the cleaned path")]
    Redirect,
    #[error(transparent)]
    GroupingKey(#[from] KeyError),
    #[error("reading request body: {0}")]
    ReadBody(axum::Error),
    /// The body trickled in slower than --web.read-body-timeout allows.
    #[error("{0} (--web.read-body-timeout)")]
    BodyTimedOut(BodyTimedOut),
    #[error(transparent)]
    Gzip(#[from] GzipError),
    #[error(transparent)]
    Snappy(#[from] SnappyError),
    #[error(transparent)]
    Text(#[from] ParseError),
    #[error("protobuf parsing error: {0}")]
    Protobuf(#[from] prost::DecodeError),
    /// A limit refused the push; the store has not been touched.
    #[error(transparent)]
    Limit(#[from] LimitError),
    /// The push is invalid or inconsistent with the store (with the consistency check on).
    #[error(transparent)]
    Invalid(#[from] PushError),
    /// A change was applied but not acknowledged: the store file could not be written. It is
    /// retried in the background; the client should send the change again.
    /// A delivery of log lines that is not what a sidecar sends; nothing was kept.
    #[error("log lines refused: {0}")]
    LogDelivery(#[from] LogDeliveryError),
    /// No group, or no ended run in it, to keep log lines with.
    #[error("log lines not kept: {0}")]
    LogsNotKept(#[from] LogsRefusal),
    #[error("the {what} could not be saved to the store file and is not acknowledged ({why}); send it again")]
    NotWritten { what: &'static str, why: WriteError },
}

impl From<Refusal> for Error {
    fn from(refusal: Refusal) -> Error {
        match refusal {
            Refusal::Limit(e) => Error::Limit(e),
            Refusal::Invalid(e) => Error::Invalid(e),
        }
    }
}

impl Error {
    pub(super) fn status(&self) -> StatusCode {
        match self {
            Error::NotFound => StatusCode::NOT_FOUND,
            Error::Limit(LimitError::BodyTooLarge { .. } | LimitError::TooManySeries { .. }) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            Error::Limit(LimitError::LabelValueTooLong { .. }) => StatusCode::BAD_REQUEST,
            // Not 429: no rate is exceeded and waiting does not help. Not 403: nothing is
            // forbidden to this client. The push is valid and the gateway has no room for another
            // group until an operator deletes one or raises the limit, which is what 507
            // Insufficient Storage says; as a 5xx it also shows in the error-rate alerts that
            // should wake that operator.
            Error::Limit(LimitError::TooManyGroups { .. }) => StatusCode::INSUFFICIENT_STORAGE,
            Error::NotWritten { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Error::BodyTimedOut(_) => StatusCode::REQUEST_TIMEOUT,
            Error::LogsNotKept(_) => StatusCode::NOT_FOUND,
            Error::Path(_)
            | Error::Redirect
            | Error::GroupingKey(_)
            | Error::ReadBody(_)
            | Error::Gzip(_)
            | Error::Snappy(_)
            | Error::Text(_)
            | Error::Protobuf(_)
            | Error::Invalid(_)
            | Error::LogDelivery(_) => StatusCode::BAD_REQUEST,
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        plain_error(self.status(), self.to_string())
    }
}

/// Why a request path cannot be routed on.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PathError {
    #[error("invalid URL escape in path {0:?}")]
    InvalidEscape(String),
    #[error("the path {0:?} is not valid UTF-8 once decoded")]
    NotUtf8(String),
}

/// Why a gzipped push body cannot be read, in the words of Go's gzip reader.
#[derive(Debug, thiserror::Error)]
pub(super) enum GzipError {
    #[error("EOF")]
    Empty,
    #[error("unexpected EOF")]
    Truncated,
    #[error("gzip: invalid header")]
    InvalidHeader,
    #[error("gzip: {0}")]
    Decode(std::io::Error),
}

/// Why a snappy push body cannot be read, in the words of golang/snappy's framed reader
/// (decode.go, `ErrCorrupt` and `ErrUnsupported`), which main.go wraps the body in; the push
/// handler (handler/push.go) answers the reader's error as it is, with 400.
#[derive(Debug, thiserror::Error)]
pub(super) enum SnappyError {
    /// Not a snappy stream, a bad checksum, a cut chunk, a block that does not decode.
    #[error("snappy: corrupt input")]
    Corrupt(#[source] std::io::Error),
    /// A reserved chunk type that must not be skipped (0x02 to 0x7f), or a chunk longer than
    /// the reader's buffer: golang/snappy does not say corrupt but unsupported.
    #[error("snappy: unsupported input")]
    Unsupported(#[source] std::io::Error),
}

/// The longest chunk golang/snappy's reader takes before it says unsupported (decode.go: its
/// buffer, `maxEncodedLenOfMaxBlockSize + checksumSize`, the longest compressed 64 KiB block,
/// 32 + 65536 + 65536 / 6 bytes, and 4 bytes of CRC). A shorter chunk that is still wrong (a
/// stream identifier that is not 6 bytes, a data chunk shorter than its checksum) is corrupt.
const GO_SNAPPY_LONGEST_CHUNK: u64 = 32 + 65_536 + 65_536 / 6 + 4;

impl SnappyError {
    pub(super) fn from_io(error: std::io::Error) -> SnappyError {
        let unsupported = error.get_ref().and_then(|e| e.downcast_ref::<snap::Error>()).is_some_and(|e| match e {
            snap::Error::UnsupportedChunkType { byte } => (0x02..=0x7f).contains(byte),
            snap::Error::UnsupportedChunkLength { len, .. } => *len > GO_SNAPPY_LONGEST_CHUNK,
            _ => false,
        });
        if unsupported { SnappyError::Unsupported(error) } else { SnappyError::Corrupt(error) }
    }
}
