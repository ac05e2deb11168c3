//! `cronpush start`, the init container: pushes the run's start metrics, then gets out of the
//! way. It always ends within its timeout and always exits 0: a failed push costs a metric,
//! a failed init container would cost the run.

use std::time::Duration;

use jiff::Timestamp;
use tokio::time::Instant;

use super::gateway_client::Pusher;
use super::process::run_contained;
use super::run::{Run, RunArgs};
use super::start_metrics::StartMetrics;
use crate::schedule::Schedule;

/// The deadline when `CRONPUSH_TIMEOUT_SECONDS` is not given: the webhook's default too.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Beyond the push's own deadline, a last bound on the whole push, in case the client ever
/// overruns its timeouts.
const OVERRUN: Duration = Duration::from_millis(200);

/// The role's whole process; returns, never exits or panics, so that the caller exits 0.
pub fn main(args: RunArgs) {
    crate::logging::init(args.log_level(), args.log_format());
    run_contained("start", run(args));
}

pub async fn run(args: RunArgs) {
    // The run started when its first init container did, which is now.
    let started = Timestamp::now();
    let (run, ignored) = args.resolve();
    let deadline = Instant::now() + run.timeout.unwrap_or(DEFAULT_TIMEOUT);
    for input in &ignored {
        tracing::warn!("{input}");
    }
    if run.group.cronjob.is_empty() {
        tracing::warn!("no CronJob name ({}); its label in the group is empty", crate::contract::env::CRONJOB);
    }
    let schedule = schedule(&run);
    let body = StartMetrics::new(&run, schedule.as_ref(), started).to_text();
    tracing::debug!(body, "start metrics");
    let url = match run.group.url(run.gateway_url.as_deref()) {
        Ok(url) => url,
        Err(e) => {
            tracing::error!(error = %e, group = %run.group, "cannot push the start metrics; the Job goes on");
            return;
        }
    };
    let target = super::group::redacted(&url);
    let access = match args.access.resolve() {
        Ok(access) => access,
        Err(e) => {
            tracing::error!(error = %e, url = target, "cannot push the start metrics; the Job goes on");
            return;
        }
    };
    let pusher = match Pusher::new(&access) {
        Ok(pusher) => pusher,
        Err(e) => {
            tracing::error!(error = %e, url = target, "cannot push the start metrics; the Job goes on");
            return;
        }
    };
    match tokio::time::timeout_at(deadline + OVERRUN, pusher.post(&url, body, deadline)).await {
        Ok(Ok(attempts)) => tracing::info!(
            attempts = attempts.0,
            group = %run.group,
            url = target,
            pod = run.pod_name,
            "pushed the start metrics"
        ),
        Ok(Err(e)) => tracing::error!(
            error = %e,
            attempts = e.attempts().0,
            group = %run.group,
            url = target,
            "could not push the start metrics; the Job goes on"
        ),
        Err(_) => tracing::error!(url = target, "the push overran its deadline; the Job goes on"),
    }
}

/// The run's schedule, if it has one that reads; what cannot be read is said, not fatal.
fn schedule(run: &Run) -> Option<Schedule> {
    match run.schedule()? {
        Ok(schedule) => Some(schedule),
        Err(e) => {
            tracing::warn!(
                schedule = run.schedule,
                time_zone = run.time_zone,
                error = %e,
                "cannot read the schedule; pushing the start metrics without its slots"
            );
            None
        }
    }
}
