//! `cronpush webhook`: the mutating admission webhook that adds cronpush's start pusher and
//! exit-status sidecar to the Pods of Jobs that CronJobs create.

pub mod admission_review;
pub mod cleanup;
pub mod config;
pub mod created_runs;
pub mod cronjob_changes;
pub mod decision;
pub mod failed_run_logs;
pub mod gateway_groups;
pub mod http;
pub mod injected_pods;
pub mod injection;
pub mod job_caches;
pub mod kube_resolver;
pub mod limit_range;
pub mod metrics;
pub mod namespace_policies;
pub mod node_affinity;
pub mod node_cache;
pub mod node_fit;
pub mod pod_resources;
pub mod push_rates;
pub mod quantity;
pub mod relay;
pub mod relay_ca;
pub mod relay_push;
pub mod resolve;
pub mod resource_fit;
pub mod resource_quota;
pub mod selection;
pub mod server;
pub mod verified_tokens;
pub mod watch_cache;

#[cfg(test)]
mod tests;
