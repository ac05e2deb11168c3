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
//!   Asked for 16 KiB, it would give the first lines of the selection and lose the last ones,
//!   which hold the error a person looks for. So the relay reads up to [`READ_BYTES`] and keeps
//!   the last 16 KiB of it, from the first whole line on; the flag says something was left out.
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
/// The most of one container's selected lines read (`limitBytes`), of which the last
/// [`MAX_LOG_TEXT_BYTES`] are kept: 1,000 lines of 256 bytes. It bounds what a burst of failed
/// runs costs the relay: at most 2.5 MiB for a Pod of ten failed containers.
pub const READ_BYTES: usize = 256 << 10;

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
        limit_bytes: Some(READ_BYTES as i64),
        ..LogParams::default()
    };
    let stream = pods.log_stream(pod, &params).await.map_err(|e| match e {
        kube::Error::Api(status) if status.code == 403 => NotRead::Forbidden(status),
        e => NotRead::Api(e),
    })?;
    let mut bytes = Vec::new();
    // The API server honours limitBytes; this keeps the relay bounded even if one does not.
    stream.take(READ_BYTES as u64).read_to_end(&mut bytes).await.map_err(NotRead::Read)?;
    let (text, truncated) = log_tail(&bytes);
    Ok(ContainerLog { container: container.to_string(), text, truncated })
}

/// The last lines of a log that fit in [`MAX_LOG_TEXT_BYTES`], as valid UTF-8 (invalid bytes
/// replaced), and whether anything before them was left out. The text starts with a whole line
/// when one ends within the kept part; one line longer than the limit keeps its end.
pub fn log_tail(bytes: &[u8]) -> (String, bool) {
    let text = String::from_utf8_lossy(bytes);
    if text.len() <= MAX_LOG_TEXT_BYTES {
        return (text.into_owned(), false);
    }
    let mut start = text.len() - MAX_LOG_TEXT_BYTES;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    let kept = &text[start..];
    // Start after the first line break, unless the kept part is one cut line (or ends in its
    // only break): some of a line beats nothing.
    let whole_lines = kept.find('\n').map(|i| &kept[i + 1..]).filter(|rest| !rest.is_empty());
    (whole_lines.unwrap_or(kept).to_string(), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_within_the_limit_is_kept_whole() {
        assert_eq!(log_tail(b"line 1\nline 2\n"), ("line 1\nline 2\n".to_string(), false));
        let exactly = vec![b'x'; MAX_LOG_TEXT_BYTES];
        assert_eq!(log_tail(&exactly), (String::from_utf8(exactly).unwrap(), false), "ends at the limit");
    }

    #[test]
    fn a_long_log_keeps_its_last_whole_lines_and_says_so() {
        let log: String = (1..=1000).map(|i| format!("line {i:04} {}\n", "x".repeat(90))).collect();
        let (text, truncated) = log_tail(log.as_bytes());
        assert!(truncated);
        assert!(text.len() <= MAX_LOG_TEXT_BYTES, "{}", text.len());
        assert!(text.starts_with("line 0839 "), "from the first whole line: {}", &text[..20]);
        assert!(text.ends_with(&format!("line 1000 {}\n", "x".repeat(90))), "to the last");
        assert_eq!(text.lines().count(), MAX_LOG_TEXT_BYTES / 101, "as many whole lines as fit");
    }

    #[test]
    fn one_line_longer_than_the_limit_keeps_its_end() {
        let mut line = "é".repeat(MAX_LOG_TEXT_BYTES);
        line.push_str("the error\n");
        let (text, truncated) = log_tail(line.as_bytes());
        assert!(truncated && text.ends_with("the error\n"));
        assert!(text.len() <= MAX_LOG_TEXT_BYTES && text.starts_with('é'), "cut at a character, not inside one");
    }

    #[test]
    fn bytes_that_are_not_utf8_are_replaced_and_the_text_stays_within_the_limit() {
        assert_eq!(log_tail(b"ok \xff\xfe\n").0, "ok \u{fffd}\u{fffd}\n");
        let (text, truncated) = log_tail(&vec![0xff; MAX_LOG_TEXT_BYTES]);
        assert!(text.len() <= MAX_LOG_TEXT_BYTES && text.chars().all(|c| c == '\u{fffd}'));
        assert!(truncated, "replacements made it longer than the limit");
    }
}
