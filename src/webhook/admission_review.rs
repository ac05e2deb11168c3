//! AdmissionReview `admission.k8s.io/v1` on the wire: the request read with kube's types, the
//! response written here, because kube's `AdmissionResponse` serializes `patch` as an array of
//! numbers (kube-rs#1781) where the API server wants a base64 string.
//!
//! The review and the Pod it carries are read apart: a body that is no AdmissionReview is the
//! caller's mistake (HTTP 400), but a Pod this build's types cannot read is an internal error,
//! answered like every other one, allowed and unchanged (see `admit`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use k8s_openapi::api::core::v1::Pod;
use kube::core::TypeMeta;
use kube::core::admission::{AdmissionRequest, AdmissionReview, META_API_VERSION_V1, META_KIND};
use serde_json::Value;

/// The API server shows warnings to the client; it asks for fewer than 120 characters each.
const WARNING_LIMIT: usize = 120;

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("malformed AdmissionReview: not JSON: {0}")]
    NotJson(serde_json::Error),
    #[error("malformed AdmissionReview: {api_version:?} {kind:?} is not {META_API_VERSION_V1} {META_KIND}")]
    WrongType { api_version: String, kind: String },
    #[error("malformed AdmissionReview: it carries no request")]
    NoRequest,
    #[error("malformed AdmissionReview: unreadable request: {0}")]
    BadRequest(serde_json::Error),
    #[error("malformed AdmissionReview: the request has no uid")]
    NoUid,
}

/// A review as read off the wire.
#[derive(Debug)]
pub struct Review {
    /// The request; its `object` is the Pod when the Pod decodes, and `old_object` is never
    /// read (only CREATE is admitted).
    pub request: AdmissionRequest<Pod>,
    /// Why `request.object` is empty although the review carried an object.
    pub undecodable_pod: Option<serde_json::Error>,
}

pub fn parse(body: &[u8]) -> Result<Review, ReviewError> {
    // Nearly every review is a well-formed one of a Pod: one typed read, as fast as it gets on
    // the cluster's Pod-creation path. Anything else is read again, apart, to tell a malformed
    // review from a Pod that does not decode, and to say which.
    if let Ok(AdmissionReview { types, request: Some(mut request), .. }) =
        serde_json::from_slice::<AdmissionReview<Pod>>(body)
        && types.api_version == META_API_VERSION_V1
        && types.kind == META_KIND
        && !request.uid.is_empty()
    {
        request.types = types;
        request.old_object = None;
        return Ok(Review { request, undecodable_pod: None });
    }
    parse_apart(body)
}

fn parse_apart(body: &[u8]) -> Result<Review, ReviewError> {
    let mut review: Value = serde_json::from_slice(body).map_err(ReviewError::NotJson)?;
    let text = |key: &str| review.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
    let (api_version, kind) = (text("apiVersion"), text("kind"));
    if api_version != META_API_VERSION_V1 || kind != META_KIND {
        return Err(ReviewError::WrongType { api_version, kind });
    }
    let mut raw = review.get_mut("request").map(Value::take).filter(|r| !r.is_null()).ok_or(ReviewError::NoRequest)?;
    // Taken out before the typed read, so that an object that is no Pod fails alone.
    let object = raw.get_mut("object").map(Value::take).filter(|o| !o.is_null());
    if let Some(old) = raw.get_mut("oldObject") {
        *old = Value::Null;
    }
    let mut request: AdmissionRequest<Pod> = serde_json::from_value(raw).map_err(ReviewError::BadRequest)?;
    if request.uid.is_empty() {
        return Err(ReviewError::NoUid);
    }
    request.types = TypeMeta { api_version, kind };
    let mut undecodable_pod = None;
    match object.map(serde_json::from_value::<Pod>) {
        Some(Ok(pod)) => request.object = Some(pod),
        Some(Err(e)) => undecodable_pod = Some(e),
        None => {}
    }
    Ok(Review { request, undecodable_pod })
}

/// The answer to one review: always allowed, with a patch or without.
#[derive(Debug, Default)]
pub struct Answer {
    /// The JSON patch, as JSON.
    pub patch: Option<Vec<u8>>,
    pub warnings: Vec<String>,
}

/// The AdmissionReview that answers `uid`, written by hand rather than through a JSON tree: the
/// base64 patch (some 8 KiB) is copied as it is, since its alphabet needs no escaping, where
/// serde_json's string escaping, byte by byte, was half of the instructions of writing the answer
/// (cachegrind). The keys are in the order serde_json's maps write them (sorted), as they were.
pub fn respond(uid: &str, answer: &Answer) -> Vec<u8> {
    let patch_len = answer.patch.as_ref().map_or(0, |p| base64::encoded_len(p.len(), true).expect("a patch fits"));
    let mut out = Vec::with_capacity(256 + patch_len + uid.len());
    out.extend_from_slice(
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"allowed":true"#,
    );
    if let Some(patch) = &answer.patch {
        out.extend_from_slice(br#","patch":""#);
        let start = out.len();
        out.resize(start + patch_len, 0);
        STANDARD.encode_slice(patch, &mut out[start..]).expect("the buffer is the encoded length");
        out.extend_from_slice(br#"","patchType":"JSONPatch""#);
    }
    out.extend_from_slice(br#","uid":"#);
    serde_json::to_writer(&mut out, uid).expect("a string serializes");
    if !answer.warnings.is_empty() {
        let warnings: Vec<String> = answer.warnings.iter().map(|w| shorten(w)).collect();
        out.extend_from_slice(br#","warnings":"#);
        serde_json::to_writer(&mut out, &warnings).expect("strings serialize");
    }
    out.extend_from_slice(b"}}");
    out
}

fn shorten(warning: &str) -> String {
    if warning.len() < WARNING_LIMIT {
        return warning.to_string();
    }
    let mut end = WARNING_LIMIT - 4;
    while !warning.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &warning[..end])
}
