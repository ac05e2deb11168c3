//! What every answer of the webhook must be, and the deep check applied to one in so many.

use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;

use cronpush::contract::{SIDECAR_CONTAINER, START_CONTAINER, STATUS_ANNOTATION, env};

use crate::fixtures::{CRONJOB, FIRST_MINUTES};

#[derive(Deserialize)]
struct ReviewReply<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'a str,
    #[serde(borrow)]
    response: Option<ReplyResponse<'a>>,
}

#[derive(Deserialize)]
struct ReplyResponse<'a> {
    uid: &'a str,
    allowed: bool,
    #[serde(rename = "patchType")]
    patch_type: Option<&'a str>,
    patch: Option<&'a str>,
    warnings: Option<Vec<String>>,
}

/// What every answer must be: 200, the uid echoed, allowed, a JSONPatch, no warning (a warning
/// means the webhook fell back to the Job's name: the cache path was not taken). With `deep`,
/// the Pod and its Job's index, the patch is also applied and read back.
pub fn check_answer(status: u16, body: &[u8], uid: &str, deep: Option<(&Value, usize)>) -> Result<(), String> {
    if status != 200 {
        return Err(format!("HTTP {status}: {}", String::from_utf8_lossy(body)));
    }
    let reply: ReviewReply = serde_json::from_slice(body).map_err(|e| format!("unreadable answer: {e}"))?;
    let response = reply.response.ok_or("an answer without a response")?;
    if reply.api_version != "admission.k8s.io/v1" || response.uid != uid || !response.allowed {
        return Err(format!("wrong answer for {uid}: {}", String::from_utf8_lossy(body)));
    }
    if let Some(warnings) = response.warnings {
        return Err(format!("a warning: {warnings:?}"));
    }
    match (response.patch_type, response.patch, deep) {
        (Some("JSONPatch"), Some(patch), Some((pod, job))) if !patch.is_empty() => deep_check(patch, pod, job),
        (Some("JSONPatch"), Some(patch), None) if !patch.is_empty() => Ok(()),
        _ => Err(format!("no patch for {uid}: {}", String::from_utf8_lossy(body))),
    }
}

/// Applies the patch to the Pod and reads the result as the kubelet would see it: both
/// containers, the run's CronJob and scheduled time, and facts taken from the API.
fn deep_check(patch: &str, pod: &Value, job: usize) -> Result<(), String> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(patch).map_err(|e| format!("patch base64: {e}"))?;
    let patch: json_patch::Patch = serde_json::from_slice(&bytes).map_err(|e| format!("patch JSON: {e}"))?;
    let mut patched = pod.clone();
    json_patch::patch(&mut patched, &patch).map_err(|e| format!("patch does not apply: {e}"))?;
    let init = patched["spec"]["initContainers"].as_array().cloned().unwrap_or_default();
    let start = init.iter().find(|c| c["name"] == START_CONTAINER).ok_or("no start container")?;
    init.iter().find(|c| c["name"] == SIDECAR_CONTAINER).ok_or("no sidecar container")?;
    let env_of = |name: &str| {
        start["env"].as_array()?.iter().find(|e| e["name"] == name).and_then(|e| e["value"].as_str().map(String::from))
    };
    let expected_time = ((FIRST_MINUTES + job as i64) * 60).to_string();
    if env_of(env::CRONJOB).as_deref() != Some(CRONJOB) || env_of(env::SCHEDULED_TIME) != Some(expected_time) {
        return Err(format!("wrong facts in {start}"));
    }
    let status = patched["metadata"]["annotations"][STATUS_ANNOTATION].as_str().unwrap_or_default();
    let status: Value = serde_json::from_str(status).map_err(|e| format!("status annotation: {e}"))?;
    if status["facts"] != "api" {
        return Err(format!("facts not from the API: {status}"));
    }
    Ok(())
}
