//! The watch-fed caches of every Job and CronJob, kept once per webhook and shared: admission
//! resolves a Pod's CronJob from them, and the relay reads the Job and CronJob of a run that
//! ended. Only metadata and a few spec fields are read, so the templates are dropped before an
//! object is stored: Jobs can be many and their Pod templates large.

use k8s_openapi::api::batch::v1::{CronJob, Job};
use kube::runtime::reflector::Store;
use kube::{Api, Client};

use super::watch_cache::watch_into_cache;

#[derive(Clone)]
pub struct JobCaches {
    pub jobs: Store<Job>,
    pub cronjobs: Store<CronJob>,
}

impl JobCaches {
    /// Starts watching Jobs and CronJobs in every namespace, in the background.
    pub fn start(client: Client) -> JobCaches {
        let jobs = watch_into_cache(Api::<Job>::all(client.clone()), "Jobs", |job: &mut Job| {
            if let Some(spec) = job.spec.as_mut() {
                spec.template = Default::default();
            }
        });
        let cronjobs = watch_into_cache(Api::<CronJob>::all(client), "CronJobs", |cronjob: &mut CronJob| {
            if let Some(spec) = cronjob.spec.as_mut() {
                spec.job_template = Default::default();
            }
        });
        JobCaches { jobs, cronjobs }
    }
}
