//! The last lines of a failed run's logs, read by the relay for a sidecar that asks for them
//! (`logLines`, set only when the webhook runs with `--failed-run-logs` and the CronJob has
//! `cronpush.io/log-lines`). Logs can hold secrets, so this is opt-in twice, and the webhook
//! needs the `pods/log` RBAC of the failed-run-logs overlay, which the base does not grant.
//!
//! What `pods/log` answers (kube-apiserver pkg/registry/core/pod/rest/log.go proxies to the
//! kubelet, which reads the CRI log in pkg/kubelet/kuberuntime/logs/logs.go `ReadLogs`; the
//! options are staging/src/k8s.io/api/core/v1 `PodLogOptions`):
//! - `tailLines=N` selects the last N lines of the container's current log file (`tail.
//!   FindTailLineStartIndex`), and `limitBytes` then caps the bytes written *from the start of
//!   that selection*, cutting a line, or a UTF-8 character, in the middle (`logWriter.write`).
//!   So a cut text lacks the last lines, not the first: the flag says so.
//! - stdout and stderr come interleaved, as the runtime wrote them.
//! - A Pod that is gone is 404; a webhook without the RBAC gets 403.
//!
//! Nothing here may hold up the end of the run: the reads run side by side within
//! [`FETCH_TIME`], and whatever fails is logged and leaves that container without lines.

use std::time::Duration;

use futures::{AsyncReadExt, future};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::LogParams;
use tokio::time::Instant;

use crate::exit_status::{ContainerLog, ExitReport, MAX_LOG_TEXT_BYTES};

/// How long reading the logs may take, all containers together: the sidecar asks after its end
/// push, with what is left of the Pod's grace period.
pub const FETCH_TIME: Duration = Duration::from_secs(2);
/// The most containers whose lines are read, as the gateway keeps at most this many a run.
const MAX_CONTAINERS: usize = 10;

/// Why a container's lines were not read.
#[derive(Debug, thiserror::Error)]
enum NotRead {
    #[error("the API server refused: {0} (does the webhook have the failed-run-logs overlay's pods/log RBAC?)")]
    Forbidden(#[source] Box<kube::core::Status>),
    #[error("{0}")]
    Api(#[source] kube::Error),
    #[error("reading the log: {0}")]
    Read(#[source] std::io::Error),
    #[error("no answer within {} s", FETCH_TIME.as_secs())]
    TimedOut,
}

/// The last `lines` lines of each main container of `report` that did not succeed, read before
/// `by` (and within [`FETCH_TIME`]); containers whose log cannot be read have none.
pub async fn failed_containers_logs(
    client: &kube::Client,
    report: &ExitReport,
    lines: u32,
    by: Instant,
) -> Vec<ContainerLog> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), &report.namespace);
    let by = by.min(Instant::now() + FETCH_TIME);
    let reads = report.failed_containers().take(MAX_CONTAINERS).map(|container| {
        let pods = &pods;
        async move {
            let read = tokio::time::timeout_at(by, read(pods, &report.pod, &container.name, lines)).await;
            match read.unwrap_or(Err(NotRead::TimedOut)) {
                Ok(log) => Some(log),
                Err(why) => {
                    tracing::warn!(
                        namespace = %report.namespace, pod = %report.pod, container = %container.name,
                        "cannot read the failed container's last log lines: {why}"
                    );
                    None
                }
            }
        }
    });
    future::join_all(reads).await.into_iter().flatten().collect()
}

async fn read(pods: &Api<Pod>, pod: &str, container: &str, lines: u32) -> Result<ContainerLog, NotRead> {
    let params = LogParams {
        container: Some(container.to_string()),
        tail_lines: Some(i64::from(lines)),
        // One byte more than is kept, so that a text cut at the limit is told from one that
        // ends there.
        limit_bytes: Some(MAX_LOG_TEXT_BYTES as i64 + 1),
        ..LogParams::default()
    };
    let stream = pods.log_stream(pod, &params).await.map_err(|e| match e {
        kube::Error::Api(status) if status.code == 403 => NotRead::Forbidden(status),
        e => NotRead::Api(e),
    })?;
    let mut bytes = Vec::new();
    // The API server honours limitBytes; this keeps the relay bounded even if one does not.
    stream.take(MAX_LOG_TEXT_BYTES as u64 + 1).read_to_end(&mut bytes).await.map_err(NotRead::Read)?;
    let (text, truncated) = log_text(bytes);
    Ok(ContainerLog { container: container.to_string(), text, truncated })
}

/// The text of a log read with one byte more than [`MAX_LOG_TEXT_BYTES`]: valid UTF-8 (invalid
/// bytes replaced, a character cut at the limit dropped) and at most the limit, and whether
/// something was cut.
pub fn log_text(mut bytes: Vec<u8>) -> (String, bool) {
    let mut truncated = bytes.len() > MAX_LOG_TEXT_BYTES;
    bytes.truncate(MAX_LOG_TEXT_BYTES);
    if truncated && let Err(e) = std::str::from_utf8(&bytes) {
        // A character cut by the limit is incomplete, not invalid: leave it out.
        if e.error_len().is_none() {
            bytes.truncate(e.valid_up_to());
        }
    }
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    // Each invalid byte became a three-byte replacement character: the text may have grown.
    if text.len() > MAX_LOG_TEXT_BYTES {
        let mut end = MAX_LOG_TEXT_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        truncated = true;
    }
    (text, truncated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_within_the_limit_is_kept_whole() {
        assert_eq!(log_text(b"line 1\nline 2\n".to_vec()), ("line 1\nline 2\n".to_string(), false));
        let exactly = vec![b'x'; MAX_LOG_TEXT_BYTES];
        assert_eq!(log_text(exactly.clone()), (String::from_utf8(exactly).unwrap(), false), "ends at the limit");
    }

    #[test]
    fn a_log_over_the_limit_is_cut_there_and_says_so() {
        let (text, truncated) = log_text(vec![b'x'; MAX_LOG_TEXT_BYTES + 1]);
        assert_eq!((text.len(), truncated), (MAX_LOG_TEXT_BYTES, true));
        // "é" is two bytes; the limit falls between them: the half character is left out.
        let mut cut = vec![b'x'; MAX_LOG_TEXT_BYTES - 1];
        cut.extend_from_slice("é".as_bytes());
        let (text, truncated) = log_text(cut);
        assert_eq!((text.len(), text.ends_with('x'), truncated), (MAX_LOG_TEXT_BYTES - 1, true, true));
    }

    #[test]
    fn bytes_that_are_not_utf8_are_replaced_and_the_text_stays_within_the_limit() {
        assert_eq!(log_text(b"ok \xff\xfe\n".to_vec()).0, "ok \u{fffd}\u{fffd}\n");
        let (text, truncated) = log_text(vec![0xff; MAX_LOG_TEXT_BYTES]);
        assert!(text.len() <= MAX_LOG_TEXT_BYTES && text.chars().all(|c| c == '\u{fffd}'));
        assert!(truncated, "replacements made it longer than the limit");
    }
}
