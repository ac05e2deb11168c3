//! How a run's main containers ended, as the kubelet reports it in the Pod's status. The relay
//! (in `cronpush webhook`) answers it, and the sidecar reads it either from the relay or, in
//! `--exit-status-source=api` mode, from its own Pod: one form and one reading of the Pod for
//! both, so that the two sources cannot disagree.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use kube::api::{Api, WatchEvent, WatchParams};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// The API server ends a watch after at most this long (it must be under ~5 minutes); the
/// watcher starts another from where it was.
const WATCH_SECONDS: u32 = 60;

/// The relay's answer and the sidecar's input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExitReport {
    pub namespace: String,
    pub pod: String,
    pub uid: String,
    /// Whether every main container has terminated. When false (the wait ran out), the
    /// containers still running or waiting are listed without `terminated`.
    pub complete: bool,
    /// The main containers (`spec.containers`, not init containers or sidecars), in spec order.
    pub containers: Vec<ContainerExit>,
    /// The Pod's own `status.reason`, set when the Pod as a whole was ended: `DeadlineExceeded`
    /// (its `activeDeadlineSeconds` passed), `Evicted`, a node shutdown. Its containers then
    /// show only a generic `Error` or no end at all. Optional on the wire, so that sidecars and
    /// relays from before it understand each other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The reason of the Pod's `DisruptionTarget` condition: `PreemptionByScheduler`,
    /// `DeletionByTaintManager`, `EvictionByEvictionAPI`, `TerminationByKubelet` (set since 1.26
    /// before such a Pod is deleted or killed; website concepts/workloads/pods/disruptions.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disruption: Option<String>,
    /// Set once the Pod is being deleted. The kubelet then stops the main containers first and
    /// gives the sidecar only what is left of the deletion's grace period, at least 2 s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion: Option<Deletion>,
    /// Why the Pod's Job ended it, from the Job's `FailureTarget` or `Failed` condition
    /// (`DeadlineExceeded`, `BackoffLimitExceeded`, `PodFailurePolicy`, ...): the Job controller
    /// deletes the Pod and gives it no reason of its own (job_controller.go). Only the relay
    /// reads the Job; a Pod reading itself cannot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_reason: Option<String>,
    /// Which attempt of its Job the Pod is, and whether the Job will try again should it fail.
    /// Only the relay reads the Job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<Attempt>,
    /// Set by a relay whose webhook deletes the groups of deleted CronJobs
    /// (`--delete-groups-of-deleted-cronjobs`) when the Pod's CronJob is gone or being deleted:
    /// its group is deleted (or about to be), and the end of this run would bring it back, with
    /// a failure nobody can mend (the garbage collector deletes the Jobs of a deleted CronJob
    /// and so kills their running Pods). Only the relay reads the CronJob.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cronjob_deleted: bool,
    /// The last lines of each failed main container's log, when the sidecar asked for them
    /// (`logLines`) and the webhook runs with `--failed-run-logs`. Only the relay reads them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<ContainerLog>,
}

/// The last lines of one main container's log, as `pods/log` gave them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerLog {
    pub container: String,
    /// Valid UTF-8 (what was not is replaced), at most [`MAX_LOG_TEXT_BYTES`].
    pub text: String,
    /// Whether lines before the text were left out to keep it within [`MAX_LOG_TEXT_BYTES`]:
    /// the text is the end of the lines asked for.
    #[serde(default)]
    pub truncated: bool,
}

/// The most of one container's log that the relay reads and the gateway keeps.
pub const MAX_LOG_TEXT_BYTES: usize = 16 << 10;

/// A Pod's place among its Job's attempts, as the Job controller counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    /// 1 for the Job's first Pod: the Job's failed Pods so far, plus one. The Pod itself is not
    /// among them yet: its phase stays Running while its sidecar runs (kubelet_pods.go
    /// `getPhase`), and the Job controller counts only finished Pods.
    pub number: u32,
    /// Whether the Job controller will start another Pod if this one fails: `restartPolicy:
    /// Never`, no `podFailurePolicy` or `backoffLimitPerIndex` that could end the Job on this
    /// failure, no verdict on the Job yet, and `backoffLimit` (6 when unset) not exceeded by
    /// this failure (job_controller.go: the Job fails when its failed Pods are more than
    /// `backoffLimit`).
    pub retried_if_failed: bool,
}

/// `metadata.deletionTimestamp` and `deletionGracePeriodSeconds` of a Pod being deleted: the
/// time by which the kubelet kills what still runs, on the API server's clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deletion {
    /// RFC 3339.
    pub timestamp: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_seconds: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerExit {
    pub name: String,
    /// `None` while the container has not terminated (or no status was reported yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminated: Option<Terminated>,
    /// How many times the kubelet restarted it in this Pod (`restartCount`; `restartPolicy:
    /// OnFailure` restarts a failing main container in place).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub restarts: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// `status.containerStatuses[].state.terminated`, as the kubelet writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Terminated {
    pub exit_code: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// E.g. `Completed`, `Error`, `OOMKilled`, `DeadlineExceeded`, `ContainerCannotRun`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// RFC 3339, as in the Pod's status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
}

impl ExitReport {
    /// Reads the main containers' states out of a Pod.
    pub fn from_pod(pod: &Pod) -> ExitReport {
        let statuses = pod.status.as_ref().and_then(|s| s.container_statuses.as_deref()).unwrap_or_default();
        let containers: Vec<ContainerExit> = pod
            .spec
            .as_ref()
            .map(|spec| spec.containers.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|c| {
                let status = statuses.iter().find(|s| s.name == c.name);
                ContainerExit {
                    name: c.name.clone(),
                    terminated: status.and_then(terminated),
                    restarts: status.map_or(0, |s| u32::try_from(s.restart_count).unwrap_or(0)),
                }
            })
            .collect();
        let status = pod.status.as_ref();
        ExitReport {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            pod: pod.metadata.name.clone().unwrap_or_default(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            complete: !containers.is_empty() && containers.iter().all(|c| c.terminated.is_some()),
            containers,
            reason: status.and_then(|s| s.reason.clone()).filter(|r| !r.is_empty()),
            disruption: status
                .and_then(|s| s.conditions.as_deref())
                .unwrap_or_default()
                .iter()
                .find(|c| c.type_ == "DisruptionTarget" && c.status == "True")
                .and_then(|c| c.reason.clone())
                .filter(|r| !r.is_empty()),
            deletion: pod.metadata.deletion_timestamp.as_ref().map(|time| Deletion {
                timestamp: time.0.to_string(),
                grace_seconds: pod.metadata.deletion_grace_period_seconds,
            }),
            job_reason: None,
            attempt: None,
            cronjob_deleted: false,
            logs: Vec::new(),
        }
    }

    /// The main containers not known to have succeeded: those whose log lines tell why.
    pub fn failed_containers(&self) -> impl Iterator<Item = &ContainerExit> {
        self.containers.iter().filter(|c| c.terminated.as_ref().is_none_or(|t| t.exit_code != 0))
    }

    /// The reason a Pod that is ended whole gives, in the order that says most: the kubelet's
    /// own (it acted on the node), the disruption that asked for the end, the Job's verdict.
    pub fn ended_because(&self) -> Option<&str> {
        self.reason.as_deref().or(self.disruption.as_deref()).or(self.job_reason.as_deref())
    }

    /// Whether the Pod as a whole is being ended (deleted, disrupted, failed by the kubelet)
    /// rather than finishing by itself. Then the kubelet may give the sidecar as little as
    /// 2 s after the main containers stopped, and writes their ends only after the sidecar
    /// has stopped too (kubelet.go `SyncTerminatingPod`: one status before `killPod`, the
    /// next after every container is gone).
    pub fn pod_ending(&self) -> bool {
        self.deletion.is_some() || self.disruption.is_some() || self.reason.is_some()
    }
}

/// Watches one Pod from `pod`'s resourceVersion until its main containers have all terminated
/// or the deadline passes, and reports the last state seen.
pub async fn watch_until_exited(pods: &Api<Pod>, pod: Pod, deadline: Instant) -> ExitReport {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let mut report = ExitReport::from_pod(&pod);
    let mut version = pod.metadata.resource_version.clone().unwrap_or_default();
    let params = WatchParams::default().fields(&format!("metadata.name={name}")).timeout(WATCH_SECONDS);
    let mut gone = false;
    while !report.complete && !gone && Instant::now() < deadline {
        let watched = async {
            let mut events = pods.watch(&params, &version).await?.boxed();
            while let Some(event) = events.try_next().await? {
                match event {
                    WatchEvent::Added(pod) | WatchEvent::Modified(pod) => {
                        version = pod.metadata.resource_version.clone().unwrap_or_default();
                        report = ExitReport::from_pod(&pod);
                        if report.complete {
                            return Ok(());
                        }
                    }
                    WatchEvent::Deleted(pod) => {
                        report = ExitReport::from_pod(&pod);
                        gone = true;
                        return Ok(());
                    }
                    WatchEvent::Bookmark(b) => version = b.metadata.resource_version,
                    // 410 Gone: the version is too old; read the Pod afresh.
                    WatchEvent::Error(e) => return Err(kube::Error::Api(e)),
                }
            }
            Ok::<(), kube::Error>(())
        };
        match tokio::time::timeout_at(deadline, watched).await {
            Err(_) => break,
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::debug!(pod = %name, error = %e, "watching the Pod failed; reading it again");
                tokio::time::sleep(Duration::from_millis(200)).await;
                if let Ok(Ok(pod)) = tokio::time::timeout_at(deadline, pods.get(&name)).await {
                    version = pod.metadata.resource_version.clone().unwrap_or_default();
                    report = ExitReport::from_pod(&pod);
                }
            }
        }
    }
    report
}

/// The terminated state of a container. A main container that `restartPolicy: OnFailure`
/// restarts waits in CrashLoopBackOff between runs, with its last end in `lastState`: when the
/// Pod is then ended (the Job's `backoffLimit` or deadline), that last end is how it ended. A
/// container running again has not ended, whatever its `lastState` says.
fn terminated(status: &ContainerStatus) -> Option<Terminated> {
    let state = status.state.as_ref()?;
    let t = match (&state.terminated, &state.waiting) {
        (Some(t), _) => t,
        (None, Some(_)) => status.last_state.as_ref()?.terminated.as_ref()?,
        (None, None) => return None,
    };
    Some(Terminated {
        exit_code: t.exit_code,
        signal: t.signal,
        reason: t.reason.clone(),
        message: t.message.clone(),
        started_at: t.started_at.as_ref().map(|time| time.0.to_string()),
        finished_at: t.finished_at.as_ref().map(|time| time.0.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(statuses: serde_json::Value) -> Pod {
        pod_ended_as(statuses, None)
    }

    /// A Pod with the main containers' statuses and the Pod's own `status.reason`.
    fn pod_ended_as(statuses: serde_json::Value, reason: Option<&str>) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "backup-29396160-x7k2p", "namespace": "ops", "uid": "pod-uid"},
            "spec": {"initContainers": [{"name": "cronpush-start"}, {"name": "cronpush-sidecar", "restartPolicy": "Always"}],
                     "containers": [{"name": "main"}, {"name": "helper"}]},
            "status": {"initContainerStatuses": [{"name": "cronpush-sidecar", "image": "", "imageID": "", "ready": true, "restartCount": 0,
                                                  "state": {"running": {"startedAt": "2025-11-22T00:00:01Z"}}}],
                       "containerStatuses": statuses, "reason": reason}
        }))
        .unwrap()
    }

    fn status(name: &str, state: serde_json::Value) -> serde_json::Value {
        json!({"name": name, "image": "", "imageID": "", "ready": false, "restartCount": 0, "state": state})
    }

    #[test]
    fn reads_every_main_container_and_ignores_the_sidecars() {
        let report = ExitReport::from_pod(&pod(json!([
            status(
                "helper",
                json!({"terminated": {"exitCode": 137, "reason": "OOMKilled",
                                                   "startedAt": "2025-11-22T00:00:02Z", "finishedAt": "2025-11-22T00:01:00Z"}})
            ),
            status("main", json!({"terminated": {"exitCode": 0, "reason": "Completed"}})),
        ])));
        assert!(report.complete);
        assert_eq!(
            (report.namespace.as_str(), report.pod.as_str(), report.uid.as_str()),
            ("ops", "backup-29396160-x7k2p", "pod-uid")
        );
        let names: Vec<&str> = report.containers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["main", "helper"], "spec order, main containers only");
        let helper = report.containers[1].terminated.as_ref().unwrap();
        assert_eq!((helper.exit_code, helper.reason.as_deref()), (137, Some("OOMKilled")));
        assert_eq!(helper.finished_at.as_deref(), Some("2025-11-22T00:01:00Z"));
    }

    #[test]
    fn a_running_or_unreported_container_makes_the_report_incomplete() {
        let running = pod(json!([
            status("main", json!({"terminated": {"exitCode": 0}})),
            status("helper", json!({"running": {"startedAt": "2025-11-22T00:00:02Z"}}))
        ]));
        assert!(!ExitReport::from_pod(&running).complete);
        let unreported = pod(json!([status("main", json!({"terminated": {"exitCode": 0}}))]));
        let report = ExitReport::from_pod(&unreported);
        assert!(!report.complete);
        assert_eq!(report.containers[1].terminated, None);
    }

    #[test]
    fn the_wire_form_round_trips() {
        let report = ExitReport::from_pod(&pod(json!([
            status("main", json!({"terminated": {"exitCode": 143, "signal": 15, "reason": "Error"}})),
            status("helper", json!({"terminated": {"exitCode": 0}})),
        ])));
        let text = serde_json::to_string(&report).unwrap();
        assert!(text.contains("\"exitCode\":143") && text.contains("\"signal\":15"), "{text}");
        assert_eq!(serde_json::from_str::<ExitReport>(&text).unwrap(), report);
    }

    #[test]
    fn the_pods_own_reason_is_reported_and_optional_on_the_wire() {
        let ended = json!([
            status("main", json!({"terminated": {"exitCode": 137, "reason": "Error"}})),
            status("helper", json!({"terminated": {"exitCode": 0, "reason": "Completed"}})),
        ]);
        let report = ExitReport::from_pod(&pod_ended_as(ended.clone(), Some("DeadlineExceeded")));
        assert_eq!(report.reason.as_deref(), Some("DeadlineExceeded"));
        let text = serde_json::to_string(&report).unwrap();
        assert!(text.contains("\"reason\":\"DeadlineExceeded\""), "{text}");
        assert_eq!(serde_json::from_str::<ExitReport>(&text).unwrap(), report);
        // A Pod ended by its containers has no reason of its own, and says none.
        let plain = ExitReport::from_pod(&pod(ended));
        assert_eq!(plain.reason, None);
        let text = serde_json::to_string(&plain).unwrap();
        assert!(!text.contains("\"reason\":null"), "{text}");
        // An answer of a relay from before the field reads as no reason.
        let old: ExitReport =
            serde_json::from_str(r#"{"namespace":"ops","pod":"p","uid":"u","complete":true,"containers":[]}"#).unwrap();
        assert_eq!(old.reason, None);
    }

    #[test]
    fn a_crash_looping_container_ended_as_its_last_state_says_and_a_running_one_has_not() {
        let waiting = json!({"name": "main", "image": "", "imageID": "", "ready": false, "restartCount": 3,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 4, "reason": "Error"}}});
        let running = json!({"name": "helper", "image": "", "imageID": "", "ready": true, "restartCount": 1,
            "state": {"running": {"startedAt": "2025-11-22T00:00:09Z"}},
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}});
        let report = ExitReport::from_pod(&pod(json!([waiting, running])));
        let main = &report.containers[0];
        assert_eq!((main.terminated.as_ref().map(|t| t.exit_code), main.restarts), (Some(4), 3));
        assert_eq!(report.containers[1].terminated, None, "restarted and running again");
        assert_eq!(report.containers[1].restarts, 1);
        assert!(!report.complete);
    }

    #[test]
    fn a_deleted_or_disrupted_pod_says_so_and_old_answers_read_as_neither() {
        let mut deleted = pod(json!([status("main", json!({"running": {}}))]));
        deleted.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time("2025-11-22T00:05:00Z".parse().unwrap()));
        deleted.metadata.deletion_grace_period_seconds = Some(30);
        let status = deleted.status.as_mut().unwrap();
        status.conditions = Some(vec![
            serde_json::from_value(json!(
                {"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler"}
            ))
            .unwrap(),
        ]);
        let report = ExitReport::from_pod(&deleted);
        assert!(report.pod_ending());
        assert_eq!(report.disruption.as_deref(), Some("PreemptionByScheduler"));
        let deletion = report.deletion.as_ref().unwrap();
        assert_eq!((deletion.timestamp.as_str(), deletion.grace_seconds), ("2025-11-22T00:05:00Z", Some(30)));
        let text = serde_json::to_string(&report).unwrap();
        assert_eq!(serde_json::from_str::<ExitReport>(&text).unwrap(), report);
        let old: ExitReport = serde_json::from_str(
            r#"{"namespace":"ops","pod":"p","uid":"u","complete":false,"containers":[{"name":"main"}]}"#,
        )
        .unwrap();
        assert!(!old.pod_ending());
        assert_eq!(old.containers[0].restarts, 0);
    }
}
