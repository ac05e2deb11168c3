//! Opt-in (`--delete-groups-of-deleted-cronjobs`): when a CronJob is deleted, its group
//! (`/metrics/job/<job>/namespace/<ns>/cronjob/<name>`) is deleted from the gateway, so that
//! its series and its alerts go with it. The reference Pushgateway keeps groups forever, and a
//! deleted CronJob would otherwise look like one that stopped being scheduled.
//!
//! Deletions missed while no webhook ran, or hidden by a watch that had to list again, are
//! caught up after every complete list of CronJobs: the groups of this job label whose CronJob
//! is not in the list are deleted, unless they were pushed after the list began (a CronJob
//! created meanwhile). Every replica does it; deleting a group twice is harmless.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use futures::StreamExt as _;
use k8s_openapi::api::batch::v1::CronJob;
use kube::Api;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event, watcher};

use crate::pushers::group::Group;

/// Where the groups are, and which of them are cronpush's.
pub struct Cleanup {
    pub gateway_url: String,
    pub job_label: String,
    pub http: reqwest::Client,
}

/// A CronJob, as its group names it.
type Name = (String, String);

fn name_of(cronjob: &CronJob) -> Name {
    (cronjob.metadata.namespace.clone().unwrap_or_default(), cronjob.metadata.name.clone().unwrap_or_default())
}

impl Cleanup {
    /// Follows CronJobs for as long as the webhook runs.
    pub async fn run(self, client: kube::Client) {
        let mut events = watcher(Api::<CronJob>::all(client), watcher::Config::default()).default_backoff().boxed();
        let mut listed: HashSet<Name> = HashSet::new();
        let mut list_began = SystemTime::now();
        while let Some(event) = events.next().await {
            match event {
                Ok(Event::Delete(cronjob)) => self.delete(&name_of(&cronjob), "the CronJob was deleted").await,
                Ok(Event::Init) => {
                    listed.clear();
                    list_began = SystemTime::now();
                }
                Ok(Event::InitApply(cronjob)) => {
                    listed.insert(name_of(&cronjob));
                }
                Ok(Event::InitDone) => self.catch_up(&listed, list_began).await,
                Ok(Event::Apply(_)) => {}
                Err(e) => tracing::warn!(error = %e, "watching CronJobs for clean-up failed; retrying"),
            }
        }
    }

    /// Deletes the groups of CronJobs that are not in `listed` and were last pushed before the
    /// list began.
    async fn catch_up(&self, listed: &HashSet<Name>, list_began: SystemTime) {
        let groups = match self.groups().await {
            Ok(groups) => groups,
            Err(e) => {
                // The next list (after a watch error or a restart) tries again.
                tracing::warn!(error = %e, "cannot read the gateway's groups to clean up after deleted CronJobs");
                return;
            }
        };
        let began = list_began.duration_since(SystemTime::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        for (name, pushed) in groups {
            if !listed.contains(&name) && pushed < began {
                self.delete(&name, "its CronJob no longer exists").await;
            }
        }
    }

    /// This job label's CronJob groups on the gateway, with their last push time (Unix seconds).
    async fn groups(&self) -> Result<Vec<(Name, f64)>, String> {
        let url = format!("{}/api/v1/metrics", self.gateway_url.trim_end_matches('/'));
        let response = self.http.get(&url).timeout(Duration::from_secs(30)).send().await.map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("{url} answered {}", response.status()));
        }
        let bytes = response.bytes().await.map_err(|e| format!("{url}: {e}"))?;
        let body: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| format!("{url}: {e}"))?;
        let mut groups = Vec::new();
        for group in body["data"].as_array().into_iter().flatten() {
            let label = |name: &str| group["labels"][name].as_str().map(str::to_string);
            if label("job").as_deref() != Some(self.job_label.as_str()) {
                continue;
            }
            let (Some(namespace), Some(cronjob)) = (label("namespace"), label("cronjob")) else { continue };
            // A group never pushed successfully has none; it is as old as can be.
            let pushed = group["push_time_seconds"]["metrics"][0]["value"]
                .as_str()
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0);
            groups.push(((namespace, cronjob), pushed));
        }
        Ok(groups)
    }

    async fn delete(&self, (namespace, cronjob): &Name, why: &str) {
        let group = Group { job: self.job_label.clone(), namespace: namespace.clone(), cronjob: cronjob.clone() };
        let url = match group.url(Some(&self.gateway_url)) {
            Ok(url) => url,
            Err(e) => return tracing::warn!(error = %e, "cannot name the group to delete"),
        };
        match self.http.delete(url).timeout(Duration::from_secs(30)).send().await {
            Ok(r) if r.status().is_success() => {
                tracing::info!(%group, reason = why, "deleted the group from the gateway")
            }
            Ok(r) => tracing::warn!(%group, status = %r.status(), "the gateway refused to delete the group"),
            Err(e) => tracing::warn!(%group, error = %e, "cannot delete the group from the gateway"),
        }
    }
}
