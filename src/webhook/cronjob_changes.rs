//! What the rules cannot learn from the runs: a CronJob suspended, resumed, or given another
//! schedule, time zone or concurrency policy. Runs push the schedule facts of their own slot
//! only, so without this a suspended CronJob looks late, and after a resume or an edit the
//! next slot its last run pushed is the old schedule's (NotScheduled and NotSucceededRecently
//! for hours to a day, for a CronJob doing what it was told).
//!
//! The webhook follows CronJobs and pushes into the group of each one whose declared state
//! changed, as long as the group exists (a CronJob whose Pods cronpush never injected has none,
//! and gets none): `cronjob_suspended` (1 while `spec.suspend`), `cronjob_info` with the new
//! schedule, and, unless suspended, the next slot after now and its period, as the CronJob
//! controller will count them (cronjob_controllerv2.go `nextScheduleTime`: from now on; a slot
//! missed while suspended or under the old schedule is started at once or not at all, and
//! that run's start pushes its own facts). After every complete list of CronJobs (start-up,
//! watch restarts) the groups are compared with the CronJobs, so that changes made while no
//! webhook ran are caught up. Every replica does it; the pushes are the same.

use std::collections::HashMap;

use futures::StreamExt as _;
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::CronJob;
use kube::Api;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event, watcher};

use super::gateway_groups::{GatewayGroups, GroupOnGateway, Name, REQUEST_TIMEOUT, name_of};
use crate::exposition::families::gauge_family;
use crate::exposition::text_write;
use crate::pushers::run::DEFAULT_CONCURRENCY_POLICY;
use crate::pushers::start_metrics::{NEXT_SCHEDULED, NEXT_SCHEDULED_HELP, info_family, info_time_zone};
use crate::schedule::Schedule;

pub const SUSPENDED: &str = "cronjob_suspended";
const SUSPENDED_HELP: &str =
    "Whether the CronJob is suspended (spec.suspend), as the cronpush webhook last saw it: 1 or 0.";

/// What a CronJob declares that its runs cannot tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    pub suspended: bool,
    pub schedule: String,
    /// The `timezone` label of `cronjob_info`.
    pub time_zone: String,
    pub concurrency_policy: String,
}

impl Declared {
    pub fn of(cronjob: &CronJob) -> Declared {
        let spec = cronjob.spec.as_ref();
        let schedule = spec.map(|s| s.schedule.clone()).unwrap_or_default();
        let zone = spec.and_then(|s| s.time_zone.clone()).filter(|z| !z.is_empty());
        let parsed = Schedule::parse(&schedule, zone.as_deref()).ok();
        Declared {
            suspended: spec.and_then(|s| s.suspend).unwrap_or(false),
            time_zone: info_time_zone(zone.as_deref(), parsed.as_ref()),
            concurrency_policy: spec
                .and_then(|s| s.concurrency_policy.clone())
                .unwrap_or_else(|| DEFAULT_CONCURRENCY_POLICY.to_string()),
            schedule,
        }
    }

    /// Whether the group on the gateway says otherwise: a suspension it does not show (no
    /// `cronjob_suspended` is not suspended), or, for a CronJob that is not suspended, another
    /// schedule, time zone or policy in its `cronjob_info` (a group without one has had no
    /// start yet, and its first start brings it).
    pub fn differs_from(&self, group: &GroupOnGateway) -> bool {
        let suspended = group.value(SUSPENDED).is_some_and(|v| v == 1.0);
        let info = |label: &str| group.label("cronjob_info", label);
        let info_differs = info("schedule").is_some()
            && (info("schedule") != Some(self.schedule.as_str())
                || info("timezone") != Some(self.time_zone.as_str())
                || info("concurrency_policy") != Some(self.concurrency_policy.as_str()));
        suspended != self.suspended || (!self.suspended && info_differs)
    }

    /// The push that tells the gateway, at `now`.
    pub fn push_body(&self, now: Timestamp) -> String {
        let mut families = vec![
            gauge_family(SUSPENDED, SUSPENDED_HELP, Vec::new(), if self.suspended { 1.0 } else { 0.0 }),
            info_family(&self.concurrency_policy, &self.schedule, &self.time_zone),
        ];
        // The zone given as spec.timeZone; a `CRON_TZ=` schedule names its own (and the two
        // together are refused, as the API server refuses them).
        let zone = (self.time_zone != "UTC" && !self.schedule.contains("TZ")).then_some(self.time_zone.as_str());
        let schedule = Schedule::parse(&self.schedule, zone).ok();
        let next = schedule.as_ref().and_then(|s| s.next_after(now));
        if let (false, Some(schedule), Some(next)) = (self.suspended, &schedule, next) {
            families.push(gauge_family(NEXT_SCHEDULED, NEXT_SCHEDULED_HELP, Vec::new(), next.as_second() as f64));
            if let Some(period) = schedule.period_at(next) {
                families.push(gauge_family(
                    "cronjob_schedule_period_seconds",
                    "The time from the last run's schedule slot to the next slot.",
                    Vec::new(),
                    period.as_secs_f64(),
                ));
            }
        }
        text_write::to_text(&families)
    }
}

/// Tells the gateway of CronJobs suspended, resumed and edited.
pub struct CronJobChanges {
    pub gateway: GatewayGroups,
}

impl CronJobChanges {
    /// Follows CronJobs for as long as the webhook runs.
    pub async fn run(self, client: kube::Client) {
        let mut events = watcher(Api::<CronJob>::all(client), watcher::Config::default()).default_backoff().boxed();
        let mut seen: HashMap<Name, Declared> = HashMap::new();
        let mut listed: HashMap<Name, Declared> = HashMap::new();
        while let Some(event) = events.next().await {
            match event {
                Ok(Event::Init) => listed.clear(),
                Ok(Event::InitApply(cronjob)) => {
                    listed.insert(name_of(&cronjob), Declared::of(&cronjob));
                }
                Ok(Event::InitDone) => {
                    self.catch_up(&listed).await;
                    seen = std::mem::take(&mut listed);
                }
                Ok(Event::Apply(cronjob)) => {
                    let (name, declared) = (name_of(&cronjob), Declared::of(&cronjob));
                    // A CronJob's status changes at every run; only its declared state matters.
                    if seen.insert(name.clone(), declared.clone()).is_some_and(|before| before != declared) {
                        self.changed(&name, &declared).await;
                    }
                }
                Ok(Event::Delete(cronjob)) => {
                    seen.remove(&name_of(&cronjob));
                }
                Err(e) => tracing::warn!(error = %e, "watching CronJobs for their changes failed; retrying"),
            }
        }
    }

    /// Pushes into every group whose CronJob declares something else than the group shows.
    async fn catch_up(&self, listed: &HashMap<Name, Declared>) {
        let groups = match self.gateway.read().await {
            Ok(groups) => groups,
            Err(e) => {
                // The next list (after a watch error or a restart) tries again.
                return tracing::warn!(error = %e, "cannot read the gateway's groups to compare them with the CronJobs");
            }
        };
        for group in groups {
            if let Some(declared) = listed.get(&group.name).filter(|d| d.differs_from(&group)) {
                self.push(&group.name, declared).await;
            }
        }
    }

    /// Pushes the CronJob's change into its group, if it has one.
    async fn changed(&self, name: &Name, declared: &Declared) {
        match self.gateway.read().await {
            Ok(groups) if groups.iter().any(|g| g.name == *name) => self.push(name, declared).await,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, cronjob = ?name, "cannot read the gateway's groups to push a CronJob's change")
            }
        }
    }

    async fn push(&self, name: &Name, declared: &Declared) {
        let group = self.gateway.group(name);
        match self.gateway.push(&group, declared.push_body(Timestamp::now()), REQUEST_TIMEOUT).await {
            Ok(()) => tracing::info!(
                %group,
                suspended = declared.suspended,
                schedule = declared.schedule,
                timezone = declared.time_zone,
                "pushed the CronJob's declared state"
            ),
            Err(e) => tracing::warn!(%group, error = %e, "cannot push the CronJob's declared state"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cronjob(spec: serde_json::Value) -> CronJob {
        serde_json::from_value(json!({"metadata": {"name": "nightly", "namespace": "batch"}, "spec": spec})).unwrap()
    }

    fn group(families: serde_json::Value) -> GroupOnGateway {
        GroupOnGateway { name: ("batch".into(), "nightly".into()), pushed: 1.0, json: families }
    }

    fn info(schedule: &str, timezone: &str) -> serde_json::Value {
        json!({"metrics": [{"labels": {"schedule": schedule, "timezone": timezone, "concurrency_policy": "Allow"}, "value": "1"}]})
    }

    #[test]
    fn the_declared_state_is_the_specs() {
        let declared = Declared::of(&cronjob(
            json!({"schedule": "CRON_TZ=Asia/Tokyo 0 3 * * *", "suspend": true, "jobTemplate": {}}),
        ));
        assert_eq!(
            declared,
            Declared {
                suspended: true,
                schedule: "CRON_TZ=Asia/Tokyo 0 3 * * *".into(),
                time_zone: "Asia/Tokyo".into(),
                concurrency_policy: "Allow".into()
            }
        );
    }

    #[test]
    fn a_group_differs_when_it_shows_another_suspension_or_schedule() {
        let running = Declared::of(&cronjob(json!({"schedule": "*/5 * * * *", "jobTemplate": {}})));
        let suspended = Declared { suspended: true, ..running.clone() };
        let as_run = group(json!({"cronjob_info": info("*/5 * * * *", "UTC")}));
        assert!(!running.differs_from(&as_run));
        assert!(suspended.differs_from(&as_run));
        let shown_suspended = group(
            json!({"cronjob_info": info("*/5 * * * *", "UTC"), "cronjob_suspended": {"metrics": [{"value": "1"}]}}),
        );
        assert!(!suspended.differs_from(&shown_suspended));
        assert!(running.differs_from(&shown_suspended), "resumed while no webhook ran");
        let edited = group(json!({"cronjob_info": info("0 3 * * *", "UTC")}));
        assert!(running.differs_from(&edited));
        assert!(
            !suspended.differs_from(&group(
                json!({"cronjob_info": info("0 3 * * *", "UTC"), "cronjob_suspended": {"metrics": [{"value": "1"}]}})
            )),
            "a suspended CronJob's schedule waits for its resume"
        );
        assert!(!running.differs_from(&group(json!({}))), "no start yet: its first start brings the facts");
    }

    #[test]
    fn a_resumed_cronjob_pushes_its_next_slot_from_now_and_a_suspended_one_none() {
        let now: Timestamp = "2026-12-07T10:02:03Z".parse().unwrap();
        let declared = Declared::of(&cronjob(json!({"schedule": "*/5 * * * *", "jobTemplate": {}})));
        let body = declared.push_body(now);
        for line in [
            "cronjob_suspended 0",
            "cronjob_info{concurrency_policy=\"Allow\",schedule=\"*/5 * * * *\",timezone=\"UTC\"} 1",
            "cronjob_next_scheduled_timestamp_seconds 1.7966379e+09",
            "cronjob_schedule_period_seconds 300",
        ] {
            assert!(body.lines().any(|l| l == line), "no {line:?} in\n{body}");
        }
        let suspended = Declared { suspended: true, ..declared.clone() }.push_body(now);
        assert!(suspended.lines().any(|l| l == "cronjob_suspended 1"), "{suspended}");
        assert!(!suspended.contains("next_scheduled") && !suspended.contains("period"), "{suspended}");
        // A zone named in the schedule: 03:00 in Tokyo is 18:00Z.
        let tokyo = Declared::of(&cronjob(json!({"schedule": "CRON_TZ=Asia/Tokyo 0 3 * * *", "jobTemplate": {}})));
        let body = tokyo.push_body(now);
        assert!(body.lines().any(|l| l == "cronjob_next_scheduled_timestamp_seconds 1.7966664e+09"), "{body}");
    }
}
