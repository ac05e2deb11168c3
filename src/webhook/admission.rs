//! AdmissionReview `admission.k8s.io/v1` on the wire: the request read with kube's types, the
//! response written here, because kube's `AdmissionResponse` serializes `patch` as an array of
//! numbers (kube-rs#1781) where the API server wants a base64 string.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use json_patch::PatchOperation;
use k8s_openapi::api::core::v1::Pod;
use kube::core::admission::{AdmissionRequest, AdmissionReview};
use serde_json::json;

/// The API server shows warnings to the client; it asks for fewer than 120 characters each.
const WARNING_LIMIT: usize = 120;

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("malformed AdmissionReview: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("the AdmissionReview carries no request")]
    NoRequest,
}

pub fn parse(body: &[u8]) -> Result<AdmissionRequest<Pod>, ReviewError> {
    let review: AdmissionReview<Pod> = serde_json::from_slice(body)?;
    review.try_into().map_err(|_| ReviewError::NoRequest)
}

/// The answer to one review: always allowed, with a patch or without.
#[derive(Debug, Default)]
pub struct Answer {
    pub patch: Option<Vec<PatchOperation>>,
    pub warnings: Vec<String>,
}

pub fn respond(uid: &str, answer: &Answer) -> Vec<u8> {
    let mut response = json!({ "uid": uid, "allowed": true });
    if let Some(patch) = &answer.patch {
        let bytes = serde_json::to_vec(patch).expect("a JSON patch serializes");
        response["patchType"] = json!("JSONPatch");
        response["patch"] = json!(STANDARD.encode(bytes));
    }
    if !answer.warnings.is_empty() {
        let warnings: Vec<String> = answer.warnings.iter().map(|w| shorten(w)).collect();
        response["warnings"] = json!(warnings);
    }
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": response,
    }))
    .expect("JSON values serialize")
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
