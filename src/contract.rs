//! The names cronpush's roles agree on: what the webhook writes into a Pod is what `cronpush
//! start` and `cronpush sidecar` read. Fixed by DESIGN.md ("Names"); change them here only.

/// Namespace label: `enabled` opts a namespace in (per-namespace mode).
pub const NAMESPACE_INJECT_LABEL: &str = "cronpush.io/inject";
/// Pod label: `disabled` opts a Pod out; the webhook configuration's objectSelector enforces it.
pub const POD_INJECT_LABEL: &str = "cronpush.io/inject";
pub const INJECT_DISABLED: &str = "disabled";
/// Pod label the webhook adds to every Pod it injects: the relay learns how runs ended from one
/// shared watch of the Pods that carry it (`labelSelector=cronpush.io/injected`).
pub const INJECTED_LABEL: &str = "cronpush.io/injected";
pub const INJECTED_LABEL_VALUE: &str = "true";
/// Pod annotation recording what was injected, by which version: idempotency and audit.
pub const STATUS_ANNOTATION: &str = "cronpush.io/status";
/// CronJob annotations that override the derived grace and maximum run time, in seconds.
pub const GRACE_ANNOTATION: &str = "cronpush.io/grace-seconds";
pub const MAX_RUN_ANNOTATION: &str = "cronpush.io/max-run-seconds";
/// CronJob annotation: how many of the last lines of each failed main container's log to keep
/// with the run (from 1 to [`MAX_LOG_LINES`]); only with the webhook's `--failed-run-logs`.
pub const LOG_LINES_ANNOTATION: &str = "cronpush.io/log-lines";
/// The most lines `cronpush.io/log-lines` may ask for: more would be cut at 16 KiB anyway.
pub const MAX_LOG_LINES: u32 = 1000;
/// Pod (template) annotation: the absolute path of a Prometheus text file that the Job writes
/// on a volume mounted into a main container; the sidecar pushes it after the end metrics.
pub const METRICS_FILE_ANNOTATION: &str = "cronpush.io/metrics-file";
/// The Job annotation the CronJob controller sets to the run's scheduled time (RFC 3339).
pub const SCHEDULED_TIMESTAMP_ANNOTATION: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

pub const START_CONTAINER: &str = "cronpush-start";
pub const SIDECAR_CONTAINER: &str = "cronpush-sidecar";
/// The projected service-account token the sidecar presents to the relay.
pub const TOKEN_VOLUME: &str = "cronpush-token";
pub const TOKEN_DIR: &str = "/var/run/secrets/cronpush.io/serviceaccount";
pub const TOKEN_FILE: &str = "/var/run/secrets/cronpush.io/serviceaccount/token";
/// An empty volume mounted, read-only, over the Pod's API token path in both injected containers.
/// kube-apiserver runs its ServiceAccount admission plugin again after a webhook changed a Pod
/// (apiserver/pkg/admission/reinvocation.go), and it mounts the Pod's `kube-api-access-*` token
/// into every container without a mount at that path (plugin/pkg/admission/serviceaccount
/// `mountServiceAccountToken`): ours would otherwise hold the Pod's API credentials.
pub const NO_API_TOKEN_VOLUME: &str = "cronpush-no-api-token";
pub const API_TOKEN_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// Why a `cronpush.io/log-lines` value (or `CRONPUSH_LOG_LINES`) asks for no lines.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a number of lines from 1 to {MAX_LOG_LINES}")]
pub struct BadLogLines(pub String);

/// Reads a number of log lines as the webhook and the sidecar both read it.
pub fn parse_log_lines(text: &str) -> Result<u32, BadLogLines> {
    text.trim()
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=MAX_LOG_LINES).contains(n))
        .ok_or_else(|| BadLogLines(text.to_string()))
}

/// The environment of the injected containers.
pub mod env {
    pub const GATEWAY_URL: &str = "CRONPUSH_GATEWAY_URL";
    pub const JOB: &str = "CRONPUSH_JOB";
    /// The grouping key's `cluster` value; set only when the webhook has `--cluster-name`.
    pub const CLUSTER: &str = "CRONPUSH_CLUSTER";
    pub const NAMESPACE: &str = "CRONPUSH_NAMESPACE";
    pub const POD_NAME: &str = "CRONPUSH_POD_NAME";
    pub const CRONJOB: &str = "CRONPUSH_CRONJOB";
    pub const JOB_NAME: &str = "CRONPUSH_JOB_NAME";
    pub const SCHEDULE: &str = "CRONPUSH_SCHEDULE";
    pub const TIME_ZONE: &str = "CRONPUSH_TIME_ZONE";
    /// Unix seconds. Absent: derived from a job name `<cronjob>-<Unix minutes>`. Present and
    /// empty: a run started by hand, which has no schedule slot.
    pub const SCHEDULED_TIME: &str = "CRONPUSH_SCHEDULED_TIME";
    /// The CronJob's `spec.concurrencyPolicy`, for the `cronjob_info` series (not in DESIGN.md's
    /// list, which predates the info series' label set).
    pub const CONCURRENCY_POLICY: &str = "CRONPUSH_CONCURRENCY_POLICY";
    pub const GRACE_SECONDS: &str = "CRONPUSH_GRACE_SECONDS";
    /// Beyond DESIGN.md's list: the CronJob's `spec.startingDeadlineSeconds`, which decides
    /// whether the CronJob controller still starts a slot that a Forbid run made it skip.
    pub const STARTING_DEADLINE_SECONDS: &str = "CRONPUSH_STARTING_DEADLINE_SECONDS";
    /// Beyond DESIGN.md's list: the CronJob's `metadata.creationTimestamp`, Unix seconds. Until a
    /// CronJob's first success, "not succeeded recently" counts from its creation.
    pub const CRONJOB_CREATED: &str = "CRONPUSH_CRONJOB_CREATED";
    /// Beyond DESIGN.md's list: the CronJob's `status.lastSuccessfulTime`, Unix seconds, as the
    /// CronJob controller had recorded it when the run's Pod was created. It tells the rules of
    /// successes the gateway never heard of (a store lost, cronpush installed on an old CronJob).
    pub const CRONJOB_LAST_SUCCESS: &str = "CRONPUSH_CRONJOB_LAST_SUCCESS";
    pub const MAX_RUN_SECONDS: &str = "CRONPUSH_MAX_RUN_SECONDS";
    pub const RELAY_URL: &str = "CRONPUSH_RELAY_URL";
    pub const RELAY_CA: &str = "CRONPUSH_RELAY_CA";
    /// Beyond DESIGN.md's list: the CA bundle (PEM) that signed the gateway's certificate, and
    /// basic-auth credentials for it (pushers/gateway_access.rs).
    pub const GATEWAY_CA: &str = "CRONPUSH_GATEWAY_CA";
    pub const GATEWAY_USERNAME: &str = "CRONPUSH_GATEWAY_USERNAME";
    pub const GATEWAY_PASSWORD: &str = "CRONPUSH_GATEWAY_PASSWORD";
    /// Beyond DESIGN.md's list: a file holding the bearer token sent with every push. In the
    /// webhook's relay push mode it is the Pod's projected token, and the gateway URL the relay's.
    pub const GATEWAY_TOKEN_FILE: &str = "CRONPUSH_GATEWAY_TOKEN_FILE";
    pub const TOKEN_FILE: &str = "CRONPUSH_TOKEN_FILE";
    pub const METRICS_FILE: &str = "CRONPUSH_METRICS_FILE";
    pub const TIMEOUT_SECONDS: &str = "CRONPUSH_TIMEOUT_SECONDS";
    /// Beyond DESIGN.md's list: the sidecar's source of exit states (`relay` or `api`) and the
    /// Pod's grace period, which bounds the sidecar's work after SIGTERM.
    pub const EXIT_STATUS_SOURCE: &str = "CRONPUSH_EXIT_STATUS_SOURCE";
    pub const TERMINATION_GRACE_SECONDS: &str = "CRONPUSH_TERMINATION_GRACE_SECONDS";
    /// Beyond DESIGN.md's list: how many of the last lines of each failed main container's log
    /// the sidecar asks the relay for and delivers to the gateway. Set only when the webhook has
    /// `--failed-run-logs` and the CronJob `cronpush.io/log-lines`.
    pub const LOG_LINES: &str = "CRONPUSH_LOG_LINES";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_are_a_count_within_bounds() {
        assert_eq!(parse_log_lines("40"), Ok(40));
        assert_eq!(parse_log_lines(" 1000 "), Ok(1000));
        for bad in ["0", "1001", "-3", "forty", "", "4e1"] {
            assert_eq!(parse_log_lines(bad), Err(BadLogLines(bad.into())), "{bad}");
        }
        assert_eq!(BadLogLines("0".into()).to_string(), "\"0\" is not a number of lines from 1 to 1000");
    }
}
