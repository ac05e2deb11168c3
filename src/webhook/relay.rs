//! The relay: tells a sidecar how its Pod's main containers ended, without giving Job Pods any
//! RBAC. The sidecar presents its projected service-account token (audience-bound, pod-bound);
//! a TokenReview proves it and names the Pod (the `authentication.kubernetes.io/pod-name` and
//! `pod-uid` extras, as Istio reads them), and a verified token is remembered for a minute (see
//! `verified_tokens`). A token proves one Pod; it can never ask about another.
//!
//! The relay learns the Pod's state from the webhook's one shared watch of injected Pods
//! (`injected_pods`) and waits there until every main container has terminated, since the
//! kubelet's status update can arrive after it has signalled the sidecar. A Pod the shared watch
//! does not hold (injected by a version without the label) is read and watched on its own, as
//! before. The Job and the CronJob come from the webhook's caches.
//! The answer carries each main container's end and the Pod's own reason when it was ended as
//! a whole (`DeadlineExceeded`, `Evicted`), and, when the sidecar asks (`logLines`) and the
//! webhook runs with `--failed-run-logs`, the last lines of the failed containers' logs
//! (`failed_run_logs`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use kube::runtime::reflector::ObjectRef;
use tokio::sync::watch;
use tokio::time::Instant;

use super::failed_run_logs::{FETCH_TIME, failed_containers_logs};
use super::injected_pods::{InjectedPods, WatchedPod, controller};
use super::job_caches::JobCaches;
use super::verified_tokens::{TokenPod, VerifiedTokens};
use crate::exit_status::{Attempt, ExitReport, watch_until_exited};

const POD_NAME_EXTRA: &str = "authentication.kubernetes.io/pod-name";
const POD_UID_EXTRA: &str = "authentication.kubernetes.io/pod-uid";
const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";
/// What reading the Pod may take beyond the sidecar's wait.
const READ_TIME: Duration = Duration::from_secs(1);
/// Verified tokens remembered at most: a burst's worth of sidecars, about 100 bytes each.
const VERIFIED_TOKENS: usize = 50_000;

/// What a sidecar asks: its own Pod, and how long it can wait.
#[derive(Debug, Default)]
pub struct RelayQuery {
    pub namespace: Option<String>,
    pub pod: Option<String>,
    pub wait: Option<Duration>,
    /// How many of the last lines of each failed main container's log to answer with.
    pub log_lines: Option<u32>,
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
    /// A push over the relay's size limit.
    #[error("{0}")]
    TooLarge(String),
    /// A Pod pushing faster than the relay lets it; it may push again after `retry_after`.
    #[error("{why}")]
    TooMany { why: String, retry_after: Duration },
    /// The gateway could not take a push the relay forwarded; `retried` when trying again may
    /// help (the gateway is away), not when the same failure would come back (its certificate,
    /// the relay's credentials).
    #[error("{why}")]
    Gateway { why: String, retried: bool },
}

impl RelayError {
    pub fn outcome(&self) -> &'static str {
        match self {
            RelayError::BadRequest(_) => "bad_request",
            RelayError::Unauthenticated(_) => "unauthenticated",
            RelayError::Forbidden(_) => "forbidden",
            RelayError::NotFound(_) => "not_found",
            RelayError::Unavailable(_) => "unavailable",
            RelayError::TooLarge(_) => "too_large",
            RelayError::TooMany { .. } => "rate_limited",
            RelayError::Gateway { .. } => "gateway_failed",
        }
    }
}

pub struct Relay {
    client: Option<kube::Client>,
    /// The shared watch of injected Pods and the Job and CronJob caches, when there is an API.
    pods: Option<InjectedPods>,
    caches: Option<JobCaches>,
    tokens: VerifiedTokens,
    audience: String,
    max_wait: Duration,
    /// How many sidecars may wait at once.
    max_waiting: usize,
    waiting: AtomicUsize,
    /// Whether the webhook deletes the groups of deleted CronJobs: then the relay tells a
    /// sidecar whose CronJob is gone not to bring its group back.
    deletes_groups_of_deleted_cronjobs: bool,
    /// `--failed-run-logs`: whether a sidecar's `logLines` is answered.
    fetches_failed_run_logs: bool,
}

impl Relay {
    pub fn new(client: Option<kube::Client>, audience: String, max_wait: Duration, max_waiting: usize) -> Relay {
        Relay {
            client,
            pods: None,
            caches: None,
            tokens: VerifiedTokens::new(VERIFIED_TOKENS),
            audience,
            max_wait,
            max_waiting,
            waiting: AtomicUsize::new(0),
            deletes_groups_of_deleted_cronjobs: false,
            fetches_failed_run_logs: false,
        }
    }

    /// Learns Pods from the shared watch, and Jobs and CronJobs from the caches.
    pub fn watching(self, pods: InjectedPods, caches: JobCaches) -> Relay {
        Relay { pods: Some(pods), caches: Some(caches), ..self }
    }

    /// Tells sidecars whose CronJob is deleted that their group is gone with it.
    pub fn deleting_groups_of_deleted_cronjobs(self, deletes: bool) -> Relay {
        Relay { deletes_groups_of_deleted_cronjobs: deletes, ..self }
    }

    /// Answers a sidecar that asks for log lines with the failed containers' last lines.
    pub fn fetching_failed_run_logs(self, fetches: bool) -> Relay {
        Relay { fetches_failed_run_logs: fetches, ..self }
    }

    /// Sidecars waiting right now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Pods in the shared watch.
    pub fn watched_pods(&self) -> usize {
        self.pods.as_ref().map_or(0, InjectedPods::len)
    }

    /// The exit report of the token's Pod: at once when every main container has terminated,
    /// else when they have or the wait runs out (then `complete` is false).
    pub async fn exit_status(&self, token: Option<&str>, query: RelayQuery) -> Result<ExitReport, RelayError> {
        let (client, owner) = self.verified_pod(token).await?;
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
        // Reading the Pod is not waiting: a sidecar that asks for no wait (the first question
        // after its SIGTERM) still gets the Pod as it stands.
        let read_by = deadline.max(Instant::now() + READ_TIME);
        let followed = match &self.pods {
            Some(pods) => pods.follow(&owner.namespace, &owner.name, read_by).await,
            None => None,
        };
        // Each waiting sidecar holds a TLS connection and its request (about 23 KiB, see
        // benches/relay.rs), and admission shares this process: beyond the limit, refuse.
        let waiting = Waiting::enter(&self.waiting);
        if waiting.count > self.max_waiting {
            return Err(RelayError::Unavailable(format!(
                "{} sidecars are already waiting; try again",
                self.max_waiting
            )));
        }
        let pod = match followed {
            Some(pod) => wait_in_shared_watch(pod, &owner, deadline).await?,
            None => Box::pin(self.wait_in_own_watch(&client, &owner, deadline, read_by)).await?,
        };
        drop(waiting);
        let mut report = pod.report.clone();
        if report.complete || report.deletion.is_some() {
            let read_by = read_by.max(deadline).max(Instant::now() + READ_TIME);
            let job = match &pod.job {
                Some(name) => {
                    Box::pin(self.read_job(&client, &owner.namespace, name, report.deletion.is_some(), read_by)).await
                }
                None => None,
            };
            if let Some(job) = job {
                if report.deletion.is_some() {
                    report.job_reason = failure_reason(&job);
                }
                report.attempt = Some(attempt(&job, pod.restarted_in_place));
            }
            if let (true, Some(cronjob)) = (self.deletes_groups_of_deleted_cronjobs, &pod.cronjob) {
                report.cronjob_deleted =
                    Box::pin(self.cronjob_deleted(&client, &owner.namespace, cronjob, read_by)).await;
            }
        }
        match query.log_lines {
            Some(lines) if self.fetches_failed_run_logs => {
                let by = Instant::now() + FETCH_TIME;
                report.logs = Box::pin(failed_containers_logs(&client, &report, lines, by)).await;
            }
            Some(_) => tracing::debug!(pod = %owner.name, "log lines asked for, but --failed-run-logs is off"),
            None => {}
        }
        Ok(report)
    }

    /// The API client, and the Pod that `token` (a projected service-account token) was issued
    /// to, verified by a TokenReview or remembered from one a moment ago.
    pub(super) async fn verified_pod(&self, token: Option<&str>) -> Result<(kube::Client, TokenPod), RelayError> {
        let client = self.client.clone().ok_or_else(|| {
            RelayError::Unavailable("the webhook has no Kubernetes configuration to verify tokens with".into())
        })?;
        let token = token.filter(|t| !t.is_empty()).ok_or_else(|| {
            RelayError::Unauthenticated(
                "a bearer token (the sidecar's projected service-account token) is required".into(),
            )
        })?;
        let owner = match self.tokens.get(token) {
            Some(owner) => owner,
            None => {
                // Boxed, as are the other API calls below: a sidecar's request lives for as long
                // as it waits, thousands at once, and the future of a rarely taken branch would
                // otherwise be part of every one of them.
                let owner = Box::pin(self.review(&client, token)).await?;
                self.tokens.insert(token, owner.clone());
                owner
            }
        };
        Ok((client, owner))
    }

    /// The CronJob whose run the token's Pod is, as the API server holds them now: the Pod's
    /// controller is a Job, and the Job's controller a CronJob, each the very object (by uid)
    /// that its owner reference names. The Pod comes from the shared watch and the Job and
    /// CronJob from the caches; what they do not hold yet is read from the API server.
    pub(super) async fn cronjob_of(&self, client: &kube::Client, owner: &TokenPod) -> Result<String, RelayError> {
        let by = Instant::now() + READ_TIME;
        let namespace = owner.namespace.as_str();
        let not_a_run = |why: &str| {
            RelayError::Forbidden(format!("Pod {}/{} is not a CronJob's run: {why}", owner.namespace, owner.name))
        };
        let followed = match &self.pods {
            Some(pods) => pods.follow(namespace, &owner.name, by).await.map(|pod| pod.borrow().clone()),
            None => None,
        };
        let pod = match followed {
            Some(pod) => pod,
            None => Arc::new(WatchedPod::of(&Box::pin(self.read_pod(client, owner, by)).await?)),
        };
        if pod.uid != owner.uid {
            return Err(earlier_pod(owner));
        }
        let (Some(job_name), Some(job_uid)) = (&pod.job, &pod.job_uid) else {
            return Err(not_a_run("no Job controls it"));
        };
        let job = self.current::<Job>(client, namespace, job_name, by).await?;
        let job = match job {
            Some(job) if job.metadata.uid.as_deref() == Some(job_uid.as_str()) => job,
            _ => return Err(not_a_run(&format!("its Job {job_name} no longer exists"))),
        };
        let Some((cronjob_name, cronjob_uid)) = controller(&job.metadata, "CronJob") else {
            return Err(not_a_run(&format!("no CronJob controls its Job {job_name}")));
        };
        match self.current::<CronJob>(client, namespace, &cronjob_name, by).await? {
            Some(cronjob) if cronjob.metadata.uid.as_deref() == Some(cronjob_uid.as_str()) => Ok(cronjob_name),
            _ => Err(RelayError::NotFound(format!("the CronJob {namespace}/{cronjob_name} no longer exists"))),
        }
    }

    /// The Pod of the token, read from the API server.
    async fn read_pod(&self, client: &kube::Client, owner: &TokenPod, by: Instant) -> Result<Pod, RelayError> {
        let pods: Api<Pod> = Api::namespaced(client.clone(), &owner.namespace);
        match tokio::time::timeout_at(by, pods.get(&owner.name)).await {
            Ok(Ok(pod)) => Ok(pod),
            Ok(Err(kube::Error::Api(e))) if e.code == 404 => {
                Err(RelayError::NotFound(format!("Pod {}/{} no longer exists", owner.namespace, owner.name)))
            }
            Ok(Err(e)) => Err(RelayError::Unavailable(format!("reading Pod {}/{}: {e}", owner.namespace, owner.name))),
            Err(_) => Err(RelayError::Unavailable("the API server did not answer in time".into())),
        }
    }

    /// A Job or CronJob as the cache holds it, or as the API server has it when the cache does
    /// not (created a moment ago); `None` when it does not exist.
    async fn current<K: CachedKind>(
        &self,
        client: &kube::Client,
        namespace: &str,
        name: &str,
        by: Instant,
    ) -> Result<Option<Arc<K>>, RelayError> {
        match self.cached::<K>(namespace, name) {
            Some(cached) => Ok(Some(cached)),
            None => fetch(client, namespace, name, by).await,
        }
    }

    /// A Job or CronJob as the webhook's caches hold it.
    fn cached<K: CachedKind>(&self, namespace: &str, name: &str) -> Option<Arc<K>> {
        self.caches.as_ref().and_then(|c| K::cached(c, &ObjectRef::new(name).within(namespace)))
    }

    /// A Pod that the shared watch does not hold: read it, and watch it alone until its main
    /// containers have ended (one watch on the API server per such sidecar).
    async fn wait_in_own_watch(
        &self,
        client: &kube::Client,
        owner: &TokenPod,
        deadline: Instant,
        read_by: Instant,
    ) -> Result<WatchedPod, RelayError> {
        let pod = self.read_pod(client, owner, read_by).await?;
        let pods: Api<Pod> = Api::namespaced(client.clone(), &owner.namespace);
        // A token outlives nothing: a Pod re-created under the same name is another run.
        if pod.metadata.uid.as_deref() != Some(owner.uid.as_str()) {
            return Err(earlier_pod(owner));
        }
        let watched = WatchedPod::of(&pod);
        let report = watch_until_exited(&pods, pod, deadline).await;
        Ok(WatchedPod { report, ..watched })
    }

    /// Whether the CronJob is gone, or being deleted (the garbage collector deletes its Jobs,
    /// and so their Pods, in the background or before it: garbage-collection.md); `false` when
    /// that cannot be learned in time, so that the end is pushed as usual. The cache answers
    /// for a CronJob it holds; one it lacks is asked for, to tell deleted from not yet seen.
    async fn cronjob_deleted(&self, client: &kube::Client, namespace: &str, name: &str, by: Instant) -> bool {
        match self.current::<CronJob>(client, namespace, name, by).await {
            Ok(None) => true,
            Ok(Some(cronjob)) => cronjob.metadata.deletion_timestamp.is_some(),
            Err(e) => {
                tracing::debug!(cronjob = name, error = %e, "cannot read the Pod's CronJob");
                false
            }
        }
    }

    /// The Pod's Job, or nothing when it cannot be read: the answer does not wait for it. The
    /// cache answers, except for a deleted Pod whose Job has no verdict there yet: the Job
    /// controller writes it right after deleting the Pods, so the API server is asked.
    async fn read_job(
        &self,
        client: &kube::Client,
        namespace: &str,
        name: &str,
        pod_deleted: bool,
        by: Instant,
    ) -> Option<Arc<Job>> {
        let cached = self.cached::<Job>(namespace, name);
        if let Some(job) = cached.filter(|job| !pod_deleted || failure_reason(job).is_some()) {
            return Some(job);
        }
        match fetch::<Job>(client, namespace, name, by).await {
            Ok(job) => job,
            Err(e) => {
                tracing::debug!(job = name, error = %e, "cannot read the Pod's Job");
                None
            }
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
}

/// A Job or CronJob as the API server has it now; `None` when it does not exist.
async fn fetch<K: CachedKind>(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    by: Instant,
) -> Result<Option<Arc<K>>, RelayError> {
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    match tokio::time::timeout_at(by, api.get_opt(name)).await {
        Ok(Ok(found)) => Ok(found.map(Arc::new)),
        Ok(Err(e)) => Err(RelayError::Unavailable(format!("reading {namespace}/{name}: {e}"))),
        Err(_) => Err(RelayError::Unavailable("the API server did not answer in time".into())),
    }
}

/// Waits in the shared watch until the Pod's main containers have all ended, the Pod is gone,
/// or the deadline passes, and gives the last state seen.
async fn wait_in_shared_watch(
    mut pod: watch::Receiver<Arc<WatchedPod>>,
    owner: &TokenPod,
    deadline: Instant,
) -> Result<WatchedPod, RelayError> {
    let mut last = pod.borrow_and_update().clone();
    // A token outlives nothing: a Pod re-created under the same name is another run.
    if last.uid != owner.uid {
        return Err(earlier_pod(owner));
    }
    while !last.report.complete && !last.gone {
        match tokio::time::timeout_at(deadline, pod.changed()).await {
            Ok(Ok(())) => {
                let next = pod.borrow_and_update().clone();
                if next.uid != owner.uid {
                    // Deleted and created again under its name before this waiter looked.
                    return Ok(WatchedPod { gone: true, ..WatchedPod::clone(&last) });
                }
                last = next;
            }
            // The watch dropped the Pod, after telling that it was gone; or the wait ran out.
            Ok(Err(_)) | Err(_) => break,
        }
    }
    Ok(WatchedPod::clone(&last))
}

fn earlier_pod(owner: &TokenPod) -> RelayError {
    RelayError::Forbidden(format!("the token was issued to an earlier Pod named {}/{}", owner.namespace, owner.name))
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

/// The kinds the relay reads from the webhook's caches.
trait CachedKind:
    kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
    + Clone
    + serde::de::DeserializeOwned
    + std::fmt::Debug
{
    fn cached(caches: &JobCaches, at: &ObjectRef<Self>) -> Option<Arc<Self>>;
}

impl CachedKind for Job {
    fn cached(caches: &JobCaches, at: &ObjectRef<Job>) -> Option<Arc<Job>> {
        caches.jobs.get(at)
    }
}

impl CachedKind for CronJob {
    fn cached(caches: &JobCaches, at: &ObjectRef<CronJob>) -> Option<Arc<CronJob>> {
        caches.cronjobs.get(at)
    }
}

/// One sidecar counted in a gauge for as long as it waits.
struct Waiting<'a> {
    gauge: &'a AtomicUsize,
    /// The count with this one.
    count: usize,
}

impl Waiting<'_> {
    fn enter(gauge: &AtomicUsize) -> Waiting<'_> {
        Waiting { gauge, count: gauge.fetch_add(1, Ordering::Relaxed) + 1 }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.gauge.fetch_sub(1, Ordering::Relaxed);
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
