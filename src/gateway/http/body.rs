//! A request body as the handlers parse it: read within the limit, then decoded as its
//! `Content-Encoding` says, as the reference's main.go (`decodeRequest`) does: `gzip` since 1.5,
//! `snappy` since 1.6, anything else read as it is. The limit holds again for the decoded
//! body, so that a small compressed body cannot grow past it in memory.

use std::io::Read;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use flate2::read::MultiGzDecoder;

use super::error::{Error, GzipError, Result, SnappyError};
use crate::gateway::store::limits::LimitError;
use crate::http_server::BodyTimedOut;

/// How a push body is encoded, by its `Content-Encoding` (one value, any case, as main.go
/// lower-cases it; upstream compares the whole header, cronpush trims spaces as well).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Identity,
    Gzip,
    Snappy,
}

fn encoding(headers: &HeaderMap) -> Encoding {
    let value = headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()).map(str::trim);
    match value {
        Some(v) if v.eq_ignore_ascii_case("gzip") => Encoding::Gzip,
        Some(v) if v.eq_ignore_ascii_case("snappy") => Encoding::Snappy,
        _ => Encoding::Identity,
    }
}

/// The body, at most `limit` bytes as received and again once decoded; `size` is set to the
/// received size (for the push size metric) as soon as it is known.
pub(super) async fn read_body(headers: &HeaderMap, body: Body, limit: usize, size: &mut usize) -> Result<Bytes> {
    let raw = axum::body::to_bytes(body, limit).await.map_err(|e| {
        let over_limit = std::error::Error::source(&e)
            .is_some_and(|s| s.downcast_ref::<http_body_util::LengthLimitError>().is_some());
        if over_limit {
            too_large(limit)
        } else if let Some(timeout) = BodyTimedOut::cause_of(&e) {
            Error::BodyTimedOut(timeout)
        } else {
            Error::ReadBody(e)
        }
    })?;
    *size = raw.len();
    match encoding(headers) {
        Encoding::Identity => Ok(raw),
        Encoding::Gzip => gunzip(&raw, limit),
        Encoding::Snappy => unsnap(&raw, limit),
    }
}

fn too_large(limit: usize) -> Error {
    Error::Limit(LimitError::BodyTooLarge { limit })
}

fn gunzip(raw: &[u8], limit: usize) -> Result<Bytes> {
    // Go's gzip reader reads the whole 10-byte header before it looks at the magic number.
    if raw.is_empty() {
        return Err(GzipError::Empty.into());
    }
    if raw.len() < 10 {
        return Err(GzipError::Truncated.into());
    }
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return Err(GzipError::InvalidHeader.into());
    }
    // A stream cut short ends in Go's io.ErrUnexpectedEOF, which the reference answers with
    // as it is (since 1.6; 1.5.1 took whatever inflated).
    let decoded = read_within(MultiGzDecoder::new(raw), limit).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => GzipError::Truncated,
        _ => GzipError::Decode(e),
    })?;
    decoded.map(Bytes::from).ok_or_else(|| too_large(limit))
}

/// The framed (streaming) snappy format, not the bare block format: main.go wraps the body in
/// golang/snappy's `NewReader`, which reads the framing format's stream identifier, chunks
/// and their CRC-32C checksums. An empty body is an empty push there, and here.
fn unsnap(raw: &[u8], limit: usize) -> Result<Bytes> {
    let decoded = read_within(snap::read::FrameDecoder::new(raw), limit).map_err(SnappyError::from_io)?;
    decoded.map(Bytes::from).ok_or_else(|| too_large(limit))
}

/// Everything `reader` gives, or `None` once it gives more than `limit` bytes.
fn read_within(reader: impl Read, limit: usize) -> std::io::Result<Option<Vec<u8>>> {
    let mut decoded = Vec::new();
    reader.take((limit as u64).saturating_add(1)).read_to_end(&mut decoded)?;
    Ok((decoded.len() <= limit).then_some(decoded))
}
