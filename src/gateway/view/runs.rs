//! `GET /api/v1/cronjobs/<namespace>/<cronjob>/runs`: a CronJob's run history as JSON, newest
//! run first, for every group of that CronJob (one per `job` label, and per cluster when one
//! gateway serves several; `?cluster=NAME` keeps one cluster's).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::gateway::store::Store;
use crate::gateway::store::runs::RunRecord;

#[derive(Serialize)]
struct CronJobRuns<'a> {
    /// The group's grouping key.
    labels: BTreeMap<&'a str, &'a str>,
    runs: Vec<&'a RunRecord>,
}

pub fn runs_json(store: &Store, namespace: &str, cronjob: &str, cluster: Option<&str>) -> String {
    let cronjobs: Vec<CronJobRuns> = store
        .groups()
        .filter(|g| g.key.get("namespace") == Some(namespace) && g.key.get("cronjob") == Some(cronjob))
        .filter(|g| cluster.is_none_or(|c| g.key.get("cluster") == Some(c)))
        .filter(|g| !g.history.is_empty())
        .map(|g| CronJobRuns {
            labels: g.key.labels().iter().map(|(n, v)| (n.as_str(), v.as_str())).collect(),
            runs: g.history.runs().rev().collect(),
        })
        .collect();
    serde_json::json!({"status": "success", "data": {"cronjobs": cronjobs}}).to_string()
}
