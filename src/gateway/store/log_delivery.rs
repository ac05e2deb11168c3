//! The last log lines of a failed run's containers, as `cronpush sidecar` delivers them after
//! its end push (`PUT /api/v1/runs/logs/job/<job>/<labels...>`, README "The failed run's last
//! lines"): the JSON body and the checks it passes before the store keeps anything.
//!
//! ```json
//! {"slot": 1763769600, "attempt": 1,
//!  "logs": [{"container": "main", "text": "last lines\n", "truncated": false}]}
//! ```
//!
//! `slot` (the run's schedule slot, Unix seconds; absent for a run by hand) and `attempt` (which
//! attempt of its Job ended; absent when not known) name the run's end, as its end push did.
//! Fields the gateway does not know are ignored, so that a newer sidecar can say more.

use serde::Deserialize;

use super::runs::{ContainerLog, EndedAttempt, MAX_LOG_TEXT_BYTES};

/// The most containers one delivery may name: a Job's Pod has a few main containers.
pub const MAX_LOG_CONTAINERS: usize = 10;
/// The longest container name: a DNS label is 63 bytes; anything longer is not a container.
const MAX_CONTAINER_NAME: usize = 253;
/// The largest body: every container's text at its limit, each byte written as a six-byte JSON
/// escape (`\u0001`), and room for the rest.
pub const MAX_LOG_BODY_BYTES: usize = MAX_LOG_CONTAINERS * (MAX_LOG_TEXT_BYTES * 6 + 1024);

/// A delivery, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct LogDelivery {
    pub ended: EndedAttempt,
    pub logs: Vec<ContainerLog>,
}

#[derive(Deserialize)]
struct Body {
    #[serde(default)]
    slot: Option<f64>,
    #[serde(default)]
    attempt: Option<u32>,
    logs: Vec<BodyLog>,
}

#[derive(Deserialize)]
struct BodyLog {
    container: String,
    text: String,
    #[serde(default)]
    truncated: bool,
}

/// Why a delivery is refused; the store is not touched.
#[derive(Debug, thiserror::Error)]
pub enum LogDeliveryError {
    #[error(
        "the body is not the JSON of log lines ({{\"slot\",\"attempt\",\"logs\":[{{\"container\",\"text\",\"truncated\"}}]}}): {0}"
    )]
    NotJson(#[from] serde_json::Error),
    #[error("\"logs\" names no container")]
    NoLogs,
    #[error("\"logs\" names {count} containers, more than the {MAX_LOG_CONTAINERS} allowed")]
    TooManyContainers { count: usize },
    #[error("container name {0:?} is empty, longer than {MAX_CONTAINER_NAME} bytes or holds control characters")]
    ContainerName(String),
    #[error("container {0:?} is named twice")]
    DuplicateContainer(String),
    #[error("the text of container {container:?} is {bytes} bytes, more than the {MAX_LOG_TEXT_BYTES} allowed")]
    TextTooLong { container: String, bytes: usize },
    #[error("\"slot\" {0} is not a time in Unix seconds")]
    Slot(f64),
    #[error("\"attempt\" counts from 1")]
    Attempt,
}

/// Reads and checks a delivery's body.
pub fn parse(body: &[u8]) -> Result<LogDelivery, LogDeliveryError> {
    let body: Body = serde_json::from_slice(body)?;
    if body.logs.is_empty() {
        return Err(LogDeliveryError::NoLogs);
    }
    if body.logs.len() > MAX_LOG_CONTAINERS {
        return Err(LogDeliveryError::TooManyContainers { count: body.logs.len() });
    }
    if let Some(slot) = body.slot.filter(|s| !s.is_finite() || *s < 0.0) {
        return Err(LogDeliveryError::Slot(slot));
    }
    if body.attempt == Some(0) {
        return Err(LogDeliveryError::Attempt);
    }
    let mut logs: Vec<ContainerLog> = Vec::with_capacity(body.logs.len());
    for log in body.logs {
        let name = &log.container;
        if name.is_empty() || name.len() > MAX_CONTAINER_NAME || name.chars().any(char::is_control) {
            return Err(LogDeliveryError::ContainerName(log.container));
        }
        if logs.iter().any(|l| l.container == *name) {
            return Err(LogDeliveryError::DuplicateContainer(log.container));
        }
        if log.text.len() > MAX_LOG_TEXT_BYTES {
            return Err(LogDeliveryError::TextTooLong { container: log.container, bytes: log.text.len() });
        }
        logs.push(ContainerLog { container: log.container, text: log.text, truncated: log.truncated });
    }
    Ok(LogDelivery { ended: EndedAttempt { slot: body.slot, attempt: body.attempt }, logs })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refusal(body: serde_json::Value) -> String {
        parse(body.to_string().as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn reads_the_lines_and_the_end_they_are_for() {
        let body = json!({"slot": 1_763_769_600, "attempt": 2, "future": "ignored",
                          "logs": [{"container": "main", "text": "<script>alert(1)</script>\n", "truncated": true},
                                   {"container": "helper", "text": ""}]});
        let delivery = parse(body.to_string().as_bytes()).unwrap();
        assert_eq!(delivery.ended, EndedAttempt { slot: Some(1_763_769_600.0), attempt: Some(2) });
        assert_eq!(delivery.logs[0].text, "<script>alert(1)</script>\n", "kept as sent: the pages escape it");
        assert!(delivery.logs[0].truncated && !delivery.logs[1].truncated);
        let by_hand = parse(br#"{"logs":[{"container":"main","text":"x"}]}"#).unwrap();
        assert_eq!(by_hand.ended, EndedAttempt { slot: None, attempt: None });
    }

    #[test]
    fn refuses_what_a_sidecar_never_sends_with_a_clear_reason() {
        let log = |name: &str, text: String| json!({"container": name, "text": text});
        let at_limit = "x".repeat(MAX_LOG_TEXT_BYTES);
        assert!(parse(json!({"logs": [log("main", at_limit.clone())]}).to_string().as_bytes()).is_ok());
        let over = refusal(json!({"logs": [log("main", format!("{at_limit}y"))]}));
        assert_eq!(
            over,
            format!("the text of container \"main\" is {} bytes, more than the 16384 allowed", MAX_LOG_TEXT_BYTES + 1)
        );
        assert!(refusal(json!({"logs": []})).contains("names no container"));
        let many: Vec<_> = (0..=MAX_LOG_CONTAINERS).map(|i| log(&format!("c{i}"), String::new())).collect();
        assert!(refusal(json!({"logs": many})).contains("11 containers, more than the 10 allowed"));
        assert!(refusal(json!({"logs": [log("", String::new())]})).contains("container name \"\""));
        assert!(refusal(json!({"logs": [log("a\nb", String::new())]})).contains("control characters"));
        assert!(refusal(json!({"logs": [log("main", "a".into()), log("main", "b".into())]})).contains("named twice"));
        assert!(refusal(json!({"attempt": 0, "logs": [log("main", String::new())]})).contains("counts from 1"));
        assert!(refusal(json!({"slot": -5, "logs": [log("main", String::new())]})).contains("\"slot\" -5"));
        assert!(refusal(json!({"logs": "main"})).starts_with("the body is not the JSON of log lines"));
        assert!(parse(b"\xff\xfe").is_err());
        assert!(parse(br#"{"logs":[{"container":"main","text":"\ud800"}]}"#).is_err(), "a lone surrogate is no text");
    }
}
