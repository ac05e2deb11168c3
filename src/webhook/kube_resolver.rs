//! The resolver that asks Kubernetes. Jobs and CronJobs come from watch-fed caches, so that
//! admission does not wait on the API; a Job can be younger than the cache (the Job controller
//! creates its Pod right after it), so a miss is a direct GET, and so is a CronJob miss. The
//! watches retry with backoff forever, so the webhook starts and serves while the API server is
//! unreachable.

use std::sync::{Arc, OnceLock};

use k8s_openapi::api::batch::v1::{CronJob, Job};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Client};

use super::job_caches::JobCaches;
use super::resolve::{FactsSource, Resolution, Resolve, ResolveFuture, RunFacts};
use super::selection::Candidate;
use crate::contract::{GRACE_ANNOTATION, LOG_LINES_ANNOTATION, MAX_RUN_ANNOTATION, SCHEDULED_TIMESTAMP_ANNOTATION};
use crate::schedule;

/// kubectl marks the Jobs it creates with `kubectl create job --from=cronjob/x` this way.
const INSTANTIATE_ANNOTATION: &str = "cronjob.kubernetes.io/instantiate";

pub struct KubeResolver {
    client: Client,
    caches: JobCaches,
    /// Set once the API server's version is known and too old.
    unsupported: Arc<OnceLock<Option<String>>>,
}

impl KubeResolver {
    /// Resolves from `caches`; learns the API server's version in the background.
    pub fn start(client: Client, caches: JobCaches) -> KubeResolver {
        let unsupported = Arc::new(OnceLock::new());
        tokio::spawn(learn_version(client.clone(), unsupported.clone()));
        KubeResolver { client, caches, unsupported }
    }

    async fn resolve_job(&self, candidate: &Candidate) -> Resolution {
        let key = ObjectRef::new(&candidate.job_name).within(&candidate.namespace);
        let job = match self.caches.jobs.get(&key) {
            Some(job) => job,
            None => {
                let api = Api::<Job>::namespaced(self.client.clone(), &candidate.namespace);
                match api.get_opt(&candidate.job_name).await {
                    Ok(Some(job)) => Arc::new(job),
                    Ok(None) => {
                        let why = format!("Job {}/{} not found", candidate.namespace, candidate.job_name);
                        return Resolution::UnknownOwner(why);
                    }
                    Err(e) => return Resolution::Unreachable(format!("reading Job {}: {e}", candidate.job_name)),
                }
            }
        };
        let Some(owner) = job.metadata.owner_references.iter().flatten().find(|o| o.kind == "CronJob") else {
            return Resolution::NotCronJob;
        };
        let key = ObjectRef::new(&owner.name).within(&candidate.namespace);
        let cronjob = match self.caches.cronjobs.get(&key) {
            Some(cronjob) => cronjob,
            None => {
                match Api::<CronJob>::namespaced(self.client.clone(), &candidate.namespace).get_opt(&owner.name).await {
                    Ok(Some(cronjob)) => Arc::new(cronjob),
                    Ok(None) => {
                        let why = format!("CronJob {}/{} not found", candidate.namespace, owner.name);
                        return Resolution::UnknownOwner(why);
                    }
                    Err(e) => return Resolution::Unreachable(format!("reading CronJob {}: {e}", owner.name)),
                }
            }
        };
        Resolution::Run(Box::new(facts(&job, &cronjob)))
    }
}

impl Resolve for KubeResolver {
    fn resolve<'a>(&'a self, candidate: &'a Candidate) -> ResolveFuture<'a> {
        Box::pin(self.resolve_job(candidate))
    }

    fn unsupported(&self) -> Option<String> {
        self.unsupported.get().cloned().flatten()
    }
}

/// Asks the API server for its version until it answers; until then nothing is refused.
async fn learn_version(client: Client, unsupported: Arc<OnceLock<Option<String>>>) {
    let mut delay = std::time::Duration::from_millis(500);
    loop {
        match client.apiserver_version().await {
            Ok(info) => {
                let verdict = super::resolve::too_old(&info.major, &info.minor);
                match &verdict {
                    Some(why) => tracing::error!("{why}; injecting nothing"),
                    None => tracing::info!(version = %info.git_version, "Kubernetes version supported"),
                }
                let _ = unsupported.set(verdict);
                return;
            }
            Err(e) => {
                tracing::debug!(error = %e, "the API server's version is not known yet");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(std::time::Duration::from_secs(60));
            }
        }
    }
}

/// The facts of a run from its Job and CronJob.
pub fn facts(job: &Job, cronjob: &CronJob) -> RunFacts {
    let job_name = job.metadata.name.clone().unwrap_or_default();
    let job_annotations = job.metadata.annotations.as_ref();
    let manual = job_annotations.and_then(|a| a.get(INSTANTIATE_ANNOTATION)).is_some_and(|v| v == "manual");
    let cronjob_name = cronjob.metadata.name.clone().unwrap_or_default();
    // A manual run has no schedule slot; otherwise the controller's annotation, or the name.
    let scheduled_time = if manual {
        None
    } else {
        job_annotations
            .and_then(|a| a.get(SCHEDULED_TIMESTAMP_ANNOTATION))
            .and_then(|t| schedule::parse_scheduled_timestamp_annotation(t).ok())
            .or_else(|| schedule::scheduled_time_from_job_name(&cronjob_name, &job_name))
            .map(|t| t.as_second())
    };
    let spec = cronjob.spec.as_ref();
    let override_seconds = |name: &str| {
        cronjob.metadata.annotations.as_ref().and_then(|a| a.get(name)).and_then(|v| v.trim().parse::<i64>().ok())
    };
    RunFacts {
        cronjob: cronjob_name,
        job: job_name,
        schedule: spec.map(|s| s.schedule.clone()),
        time_zone: spec.and_then(|s| s.time_zone.clone()).filter(|z| !z.is_empty()),
        scheduled_time,
        concurrency_policy: spec.and_then(|s| s.concurrency_policy.clone()),
        cronjob_created: cronjob.metadata.creation_timestamp.as_ref().map(|t| t.0.as_second()),
        cronjob_last_success: cronjob
            .status
            .as_ref()
            .and_then(|s| s.last_successful_time.as_ref())
            .map(|t| t.0.as_second()),
        grace_seconds: override_seconds(GRACE_ANNOTATION).or_else(|| spec.and_then(|s| s.starting_deadline_seconds)),
        starting_deadline_seconds: spec.and_then(|s| s.starting_deadline_seconds),
        max_run_seconds: override_seconds(MAX_RUN_ANNOTATION)
            .or_else(|| job.spec.as_ref().and_then(|s| s.active_deadline_seconds)),
        log_lines: cronjob.metadata.annotations.as_ref().and_then(|a| a.get(LOG_LINES_ANNOTATION)).cloned(),
        source: FactsSource::Api,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(annotations: serde_json::Value) -> Job {
        serde_json::from_value(json!({
            "metadata": {"name": "backup-29396160", "namespace": "ops", "annotations": annotations,
                         "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "backup", "uid": "u", "controller": true}]},
            "spec": {"activeDeadlineSeconds": 900, "template": {"spec": {"containers": []}}}
        }))
        .unwrap()
    }

    fn cronjob(annotations: serde_json::Value) -> CronJob {
        serde_json::from_value(json!({
            "metadata": {"name": "backup", "namespace": "ops", "annotations": annotations,
                         "creationTimestamp": "2025-11-01T08:00:00Z"},
            "spec": {"schedule": "0 3 * * *", "timeZone": "Europe/Berlin", "startingDeadlineSeconds": 120,
                     "concurrencyPolicy": "Forbid", "jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}},
            "status": {"lastScheduleTime": "2025-11-20T02:00:00Z", "lastSuccessfulTime": "2025-11-19T02:01:40Z"}
        }))
        .unwrap()
    }

    #[test]
    fn takes_the_facts_from_the_job_and_its_cronjob() {
        let f = facts(&job(json!({SCHEDULED_TIMESTAMP_ANNOTATION: "2025-11-20T02:00:00Z"})), &cronjob(json!({})));
        assert_eq!(f.cronjob, "backup");
        assert_eq!(f.schedule.as_deref(), Some("0 3 * * *"));
        assert_eq!(f.time_zone.as_deref(), Some("Europe/Berlin"));
        assert_eq!(f.scheduled_time, Some(1_763_604_000));
        assert_eq!((f.grace_seconds, f.max_run_seconds), (Some(120), Some(900)));
        assert_eq!(f.concurrency_policy.as_deref(), Some("Forbid"));
        assert_eq!(f.cronjob_created, Some(1_761_984_000));
        assert_eq!(f.cronjob_last_success, Some(1_763_517_700));
    }

    #[test]
    fn annotations_override_and_manual_runs_have_no_slot() {
        let overrides = json!({GRACE_ANNOTATION: "600", MAX_RUN_ANNOTATION: " 3600 "});
        let f = facts(&job(json!({INSTANTIATE_ANNOTATION: "manual"})), &cronjob(overrides));
        assert_eq!(f.scheduled_time, None);
        assert_eq!((f.grace_seconds, f.max_run_seconds), (Some(600), Some(3600)));
        assert_eq!(f.log_lines, None);
        let f = facts(&job(json!({})), &cronjob(json!({LOG_LINES_ANNOTATION: "40"})));
        assert_eq!(f.log_lines.as_deref(), Some("40"), "read as written; the injection judges it");
        let f = facts(&job(json!({})), &cronjob(json!({GRACE_ANNOTATION: "soon"})));
        assert_eq!(f.scheduled_time, Some(29_396_160 * 60), "from the name without the annotation");
        assert_eq!(f.grace_seconds, Some(120), "an unreadable override is ignored");
    }
}
