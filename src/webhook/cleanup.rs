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
use std::time::SystemTime;

use futures::StreamExt as _;
use k8s_openapi::api::batch::v1::CronJob;
use kube::Api;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event, watcher};

use super::gateway_groups::{GatewayGroups, Name, name_of};

/// Deletes the groups of deleted CronJobs from the gateway.
pub struct Cleanup {
    pub gateway: GatewayGroups,
}

impl Cleanup {
    /// Follows CronJobs for as long as the webhook runs.
    pub async fn run(self, client: kube::Client) {
        let mut events = watcher(Api::<CronJob>::all(client), watcher::Config::default()).default_backoff().boxed();
        let mut listed: HashSet<Name> = HashSet::new();
        let mut list_began = SystemTime::now();
        while let Some(event) = events.next().await {
            match event {
                Ok(Event::Delete(cronjob)) => self.gateway.delete(&name_of(&cronjob), "the CronJob was deleted").await,
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
        let groups = match self.gateway.read().await {
            Ok(groups) => groups,
            Err(e) => {
                // The next list (after a watch error or a restart) tries again.
                tracing::warn!(error = %e, "cannot read the gateway's groups to clean up after deleted CronJobs");
                return;
            }
        };
        let began = list_began.duration_since(SystemTime::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        for group in groups {
            if !listed.contains(&group.name) && group.pushed < began {
                self.gateway.delete(&group.name, "its CronJob no longer exists").await;
            }
        }
    }
}
