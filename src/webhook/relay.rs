//! The relay: tells a sidecar how its Pod's main containers ended, without giving Job Pods any
//! RBAC. The sidecar presents its projected service-account token (audience-bound, pod-bound);
//! a TokenReview proves it and names the Pod (the `authentication.kubernetes.io/pod-name` and
//! `pod-uid` extras, as Istio reads them); the relay then reads that one Pod with its own RBAC
//! and watches it until every main container has terminated, since the kubelet's status update
//! can arrive after it has signalled the sidecar. The answer carries each main container's end
//! and the Pod's own reason when it was ended as a whole (`DeadlineExceeded`, `Evicted`). A
//! token proves one Pod; it can never ask about another.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use tokio::time::Instant;

use crate::contract::{SIDECAR_CONTAINER, env};
use crate::exit_status::{Attempt, ExitReport, watch_until_exited};

const POD_NAME_EXTRA: &str = "authentication.kubernetes.io/pod-name";
const POD_UID_EXTRA: &str = "authentication.kubernetes.io/pod-uid";
const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";
/// What reading the Pod may take beyond the sidecar's wait.
const READ_TIME: Duration = Duration::from_secs(1);

/// What a sidecar asks: its own Pod, and how long it can wait.
#[derive(Debug, Default)]
pub struct RelayQuery {
    pub namespace: Option<String>,
    pub pod: Option<String>,
    pub wait: Option<Duration>,
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unavailable(String),
}

impl RelayError {
    pub fn outcome(&self) -> &'static str {
        match self {
            RelayError::BadRequest(_) => "bad_request",
            RelayError::Unauthenticated(_) => "unauthenticated",
            RelayError::Forbidden(_) => "forbidden",
            RelayError::NotFound(_) => "not_found",
            RelayError::Unavailable(_) => "unavailable",
        }
    }
}

pub struct Relay {
    client: Option<kube::Client>,
    audience: String,
    max_wait: Duration,
    max_waiting: usize,
    waiting: AtomicUsize,
    /// Whether the webhook deletes the groups of deleted CronJobs: then the relay tells a
    /// sidecar whose CronJob is gone not to bring its group back.
    deletes_groups_of_deleted_cronjobs: bool,
}

/// The Pod a token was issued to.
struct TokenPod {
    namespace: String,
    name: String,
    uid: String,
}

impl Relay {
    pub fn new(client: Option<kube::Client>, audience: String, max_wait: Duration, max_waiting: usize) -> Relay {
        Relay {
            client,
            audience,
            max_wait,
            max_waiting,
            waiting: AtomicUsize::new(0),
            deletes_groups_of_deleted_cronjobs: false,
        }
    }

    /// Tells sidecars whose CronJob is deleted that their group is gone with it.
    pub fn deleting_groups_of_deleted_cronjobs(self, deletes: bool) -> Relay {
        Relay { deletes_groups_of_deleted_cronjobs: deletes, ..self }
    }

    /// Sidecars waiting right now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// The exit report of the token's Pod: at once when every main container has terminated,
    /// else when they have or the wait runs out (then `complete` is false).
    pub async fn exit_status(&self, token: Option<&str>, query: RelayQuery) -> Result<ExitReport, RelayError> {
        let client = self.client.clone().ok_or_else(|| {
            RelayError::Unavailable("the webhook has no Kubernetes configuration to verify tokens with".into())
        })?;
        let token = token.filter(|t| !t.is_empty()).ok_or_else(|| {
            RelayError::Unauthenticated(
                "a bearer token (the sidecar's projected service-account token) is required".into(),
            )
        })?;
        let owner = self.review(&client, token).await?;
        if query.namespace.as_ref().is_some_and(|ns| *ns != owner.namespace)
            || query.pod.as_ref().is_some_and(|pod| *pod != owner.name)
        {
            return Err(RelayError::Forbidden(format!(
                "the token belongs to Pod {}/{}, not to the Pod asked about",
                owner.namespace, owner.name
            )));
        }
        let wait = query.wait.unwrap_or(self.max_wait).min(self.max_wait);
        let deadline = Instant::now() + wait;
        let _waiting = self.enter()?;
        let pods: Api<Pod> = Api::namespaced(client.clone(), &owner.namespace);
        // Reading the Pod is not waiting: a sidecar that asks for no wait (the first question
        // after its SIGTERM) still gets the Pod as it stands.
        let read_by = deadline.max(Instant::now() + READ_TIME);
        let pod = match tokio::time::timeout_at(read_by, pods.get(&owner.name)).await {
            Ok(Ok(pod)) => pod,
            Ok(Err(kube::Error::Api(e))) if e.code == 404 => {
                return Err(RelayError::NotFound(format!("Pod {}/{} no longer exists", owner.namespace, owner.name)));
            }
            Ok(Err(e)) => {
                return Err(RelayError::Unavailable(format!("reading Pod {}/{}: {e}", owner.namespace, owner.name)));
            }
            Err(_) => return Err(RelayError::Unavailable("the API server did not answer in time".into())),
        };
        // A token outlives nothing: a Pod re-created under the same name is another run.
        if pod.metadata.uid.as_deref() != Some(owner.uid.as_str()) {
            return Err(RelayError::Forbidden(format!(
                "the token was issued to an earlier Pod named {}/{}",
                owner.namespace, owner.name
            )));
        }
        let job = owner_job(&pod);
        let cronjob = injected_cronjob(&pod);
        let restarted_in_place = pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()) != Some("Never");
        let mut report = watch_until_exited(&pods, pod, deadline).await;
        if report.complete || report.deletion.is_some() {
            let read_by = read_by.max(deadline).max(Instant::now() + READ_TIME);
            let job = match job {
                Some(name) => self.read_job(&client, &owner.namespace, name, read_by).await,
                None => None,
            };
            if let Some(job) = job {
                if report.deletion.is_some() {
                    report.job_reason = failure_reason(&job);
                }
                report.attempt = Some(attempt(&job, restarted_in_place));
            }
            if let (true, Some(cronjob)) = (self.deletes_groups_of_deleted_cronjobs, cronjob) {
                report.cronjob_deleted = self.cronjob_deleted(&client, &owner.namespace, cronjob, read_by).await;
            }
        }
        Ok(report)
    }

    /// Whether the CronJob is gone, or being deleted (the garbage collector deletes its Jobs,
    /// and so their Pods, in the background or before it: garbage-collection.md); `false` when
    /// that cannot be learned in time, so that the end is pushed as usual.
    async fn cronjob_deleted(&self, client: &kube::Client, namespace: &str, name: String, by: Instant) -> bool {
        let cronjobs: Api<CronJob> = Api::namespaced(client.clone(), namespace);
        match tokio::time::timeout_at(by, cronjobs.get_opt(&name)).await {
            Ok(Ok(None)) => true,
            Ok(Ok(Some(cronjob))) => cronjob.metadata.deletion_timestamp.is_some(),
            Ok(Err(e)) => {
                tracing::debug!(cronjob = name, error = %e, "cannot read the Pod's CronJob");
                false
            }
            Err(_) => false,
        }
    }

    /// The Pod's Job, or nothing when it cannot be read: the answer does not wait for it.
    async fn read_job(&self, client: &kube::Client, namespace: &str, name: String, by: Instant) -> Option<Job> {
        let jobs: Api<Job> = Api::namespaced(client.clone(), namespace);
        match tokio::time::timeout_at(by, jobs.get(&name)).await {
            Ok(Ok(job)) => Some(job),
            Ok(Err(e)) => {
                tracing::debug!(job = name, error = %e, "cannot read the Pod's Job");
                None
            }
            Err(_) => None,
        }
    }

    /// Verifies the token with a TokenReview for the relay's audience and reads the Pod it is
    /// bound to.
    async fn review(&self, client: &kube::Client, token: &str) -> Result<TokenPod, RelayError> {
        let review = TokenReview {
            spec: TokenReviewSpec { token: Some(token.to_string()), audiences: Some(vec![self.audience.clone()]) },
            ..TokenReview::default()
        };
        let reviewed = Api::<TokenReview>::all(client.clone())
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| RelayError::Unavailable(format!("the TokenReview failed: {e}")))?;
        let status = reviewed.status.unwrap_or_default();
        if status.authenticated != Some(true) {
            let why = status.error.unwrap_or_else(|| "not authenticated".into());
            return Err(RelayError::Unauthenticated(format!("the token was refused: {why}")));
        }
        // The API server answers the audiences it checked; an answer without ours is a token
        // for someone else, whatever an older server might say.
        if !status.audiences.iter().flatten().any(|a| *a == self.audience) {
            return Err(RelayError::Unauthenticated(format!("the token is not for the audience {:?}", self.audience)));
        }
        let user = status.user.unwrap_or_default();
        let namespace = user
            .username
            .as_deref()
            .and_then(|u| u.strip_prefix(SERVICE_ACCOUNT_PREFIX))
            .and_then(|rest| rest.split_once(':'))
            .map(|(ns, _)| ns.to_string())
            .ok_or_else(|| RelayError::Forbidden("the token is not a service account's".into()))?;
        let extra = |key: &str| user.extra.as_ref().and_then(|e| e.get(key)).and_then(|v| v.first()).cloned();
        match (extra(POD_NAME_EXTRA), extra(POD_UID_EXTRA)) {
            (Some(name), Some(uid)) => Ok(TokenPod { namespace, name, uid }),
            _ => Err(RelayError::Forbidden("the token is not bound to a Pod (use a projected token)".into())),
        }
    }

    /// Counts a waiting sidecar, refusing when too many wait: each holds a watch on the API
    /// server, and admission shares this process.
    fn enter(&self) -> Result<WaitingGuard<'_>, RelayError> {
        let now = self.waiting.fetch_add(1, Ordering::Relaxed) + 1;
        let guard = WaitingGuard(&self.waiting);
        if now > self.max_waiting {
            return Err(RelayError::Unavailable(format!(
                "{} sidecars are already waiting; try again",
                self.max_waiting
            )));
        }
        Ok(guard)
    }
}

/// The reason of the Job's `FailureTarget` or `Failed` condition, when the Job has failed: the
/// Job controller deletes the Pods of a Job past its `activeDeadlineSeconds` or `backoffLimit`
/// and records why only on the Job (job_controller.go `syncJob`: the Pods are deleted first, the
/// condition written in the same sync right after).
fn failure_reason(job: &Job) -> Option<String> {
    let conditions = job.status.as_ref().and_then(|s| s.conditions.as_deref()).unwrap_or_default();
    ["FailureTarget", "Failed"].iter().find_map(|kind| {
        conditions.iter().find(|c| c.type_ == *kind && c.status == "True").and_then(|c| c.reason.clone())
    })
}

/// Which attempt of `job` a Pod that is still running is, and whether the Job controller would
/// replace it should it fail (see [`Attempt`]). A Pod restarted in place (`OnFailure`) is
/// never replaced for a failure of its containers.
fn attempt(job: &Job, restarted_in_place: bool) -> Attempt {
    let spec = job.spec.as_ref();
    let status = job.status.as_ref();
    let failed = status.and_then(|s| s.failed).unwrap_or(0).max(0);
    let number = u32::try_from(failed).unwrap_or(u32::MAX - 1) + 1;
    // pkg/apis/batch/v1/defaults.go: an unset backoffLimit is 6.
    let backoff_limit = spec.and_then(|s| s.backoff_limit).unwrap_or(6);
    let decided = status.and_then(|s| s.conditions.as_deref()).unwrap_or_default().iter().any(|c| {
        c.status == "True" && matches!(c.type_.as_str(), "FailureTarget" | "Failed" | "SuccessCriteriaMet" | "Complete")
    });
    let only_backoff = spec.is_some_and(|s| s.pod_failure_policy.is_none() && s.backoff_limit_per_index.is_none());
    Attempt {
        number,
        retried_if_failed: !restarted_in_place
            && only_backoff
            && !decided
            && i64::from(number) <= i64::from(backoff_limit),
    }
}

/// The CronJob the webhook injected the Pod for: its sidecar's `CRONPUSH_CRONJOB`. The Job that
/// would tell it too may already be gone when its CronJob was deleted.
fn injected_cronjob(pod: &Pod) -> Option<String> {
    let sidecar = pod.spec.as_ref()?.init_containers.as_ref()?.iter().find(|c| c.name == SIDECAR_CONTAINER)?;
    let variable = sidecar.env.as_ref()?.iter().find(|e| e.name == env::CRONJOB)?;
    variable.value.clone().filter(|v| !v.is_empty())
}

/// The name of the Job that controls the Pod, if one does.
fn owner_job(pod: &Pod) -> Option<String> {
    pod.metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.kind == "Job" && o.api_version == "batch/v1" && o.controller == Some(true))
        .map(|o| o.name.clone())
}

struct WaitingGuard<'a>(&'a AtomicUsize);

impl Drop for WaitingGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(spec: serde_json::Value, status: serde_json::Value) -> Job {
        serde_json::from_value(json!({"metadata": {"name": "sync-29396160"}, "spec": spec, "status": status})).unwrap()
    }

    fn template() -> serde_json::Value {
        json!({"spec": {"containers": [{"name": "main"}]}})
    }

    #[test]
    fn an_attempt_is_retried_while_the_failures_stay_within_the_backoff_limit() {
        let first = job(json!({"template": template()}), json!({}));
        assert_eq!(attempt(&first, false), Attempt { number: 1, retried_if_failed: true }, "backoffLimit 6 by default");
        let sixth = job(json!({"template": template()}), json!({"failed": 5}));
        assert_eq!(attempt(&sixth, false), Attempt { number: 6, retried_if_failed: true });
        let seventh = job(json!({"template": template()}), json!({"failed": 6}));
        assert_eq!(attempt(&seventh, false), Attempt { number: 7, retried_if_failed: false });
        let no_retries = job(json!({"backoffLimit": 0, "template": template()}), json!({}));
        assert!(!attempt(&no_retries, false).retried_if_failed);
    }

    #[test]
    fn where_the_job_may_decide_otherwise_a_failure_is_not_taken_for_a_retry() {
        let policy = json!({"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]});
        let with_policy = job(json!({"template": template(), "podFailurePolicy": policy}), json!({}));
        assert!(!attempt(&with_policy, false).retried_if_failed);
        let per_index = job(json!({"template": template(), "backoffLimitPerIndex": 1}), json!({}));
        assert!(!attempt(&per_index, false).retried_if_failed);
        let decided = job(
            json!({"template": template()}),
            json!({"conditions": [{"type": "FailureTarget", "status": "True", "reason": "DeadlineExceeded"}]}),
        );
        assert!(!attempt(&decided, false).retried_if_failed);
        assert_eq!(failure_reason(&decided).as_deref(), Some("DeadlineExceeded"));
        let plain = job(json!({"template": template()}), json!({}));
        assert!(!attempt(&plain, true).retried_if_failed, "OnFailure restarts in place; no new Pod");
        assert_eq!(failure_reason(&plain), None);
    }
}
