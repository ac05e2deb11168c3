//! A push body as the handlers parse it: read within the limit and gunzipped when the client
//! says so, the limit holding again for the decoded body.

use std::io::Read;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use flate2::read::MultiGzDecoder;

use super::error::{Error, GzipError, Result};
use crate::gateway::store::limits::LimitError;

/// Reads a push body, gunzipping it when the client says so, within `limit` bytes both ways.
pub(super) async fn read_body(headers: &HeaderMap, body: Body, limit: usize, size: &mut usize) -> Result<Bytes> {
    let too_large = || Error::Limit(LimitError::BodyTooLarge { limit });
    let raw = axum::body::to_bytes(body, limit).await.map_err(|e| {
        let over_limit = std::error::Error::source(&e)
            .is_some_and(|s| s.downcast_ref::<http_body_util::LengthLimitError>().is_some());
        if over_limit { too_large() } else { Error::ReadBody(e) }
    })?;
    *size = raw.len();
    let gzipped = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
    if !gzipped {
        return Ok(raw);
    }
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
    let mut decoded = Vec::new();
    MultiGzDecoder::new(&raw[..])
        .take((limit as u64).saturating_add(1))
        .read_to_end(&mut decoded)
        .map_err(GzipError::Decode)?;
    if decoded.len() > limit {
        return Err(too_large());
    }
    Ok(decoded.into())
}
