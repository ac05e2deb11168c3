//! The series `cronpush start` pushes when a run begins (DESIGN.md "Grouping key and metrics"):
//! all gauges in base units, with no labels but the info series' own, since the grouping key
//! carries job, namespace and cronjob.

use jiff::{SignedDuration, Timestamp};

use super::run::Run;
use crate::exposition::families::{gauge_family, labels, unix_seconds};
use crate::exposition::text_write;
use crate::proto::client::MetricFamily;
use crate::schedule::Schedule;

/// The grace when the CronJob sets none. Without `startingDeadlineSeconds` the controller
/// starts a missed slot late rather than never, after its resync, the scheduling of the Pod
/// and the image pulls; five minutes covers those, and rules only call a run missed after it.
pub const DEFAULT_GRACE_SECONDS: f64 = 300.0;

/// The next slot, pushed by `start` and, after a Forbid run that outlasted its slots, by the
/// sidecar (`skipped_slots`); one help text for both, as the Pushgateway keeps one per name.
pub const NEXT_SCHEDULED: &str = "cronjob_next_scheduled_timestamp_seconds";
pub const NEXT_SCHEDULED_HELP: &str =
    "The schedule slot after that of the CronJob's last scheduled run, in Unix seconds.";

/// What the start of one run tells about its CronJob.
///
/// A scheduled run is the one the timing rules follow: its slot is its identity (the CronJob
/// controller creates one Job per slot, and the sidecar pushes the slot of the run it ends), so
/// that an end never closes another run than its own, whatever the Pods' clocks say. A run by
/// hand (`kubectl create job --from`) has no slot: it pushes its start under a name of its own,
/// so that it neither moves nor hides the scheduled run the rules are judging.
#[derive(Debug, Clone, PartialEq)]
pub struct StartMetrics {
    /// `spec.schedule` as given, `""` when unknown.
    pub schedule: String,
    pub time_zone: String,
    pub concurrency_policy: String,
    pub started: Timestamp,
    /// The run's slot; `None` for a run started by hand.
    pub last_scheduled: Option<Timestamp>,
    /// The slot before the run's, where the period behind it begins.
    pub previous_scheduled: Option<Timestamp>,
    /// The slot after the run's.
    pub next_scheduled: Option<Timestamp>,
    /// From the run's slot to the next.
    pub period: Option<SignedDuration>,
    pub grace_seconds: f64,
    pub max_run_seconds: Option<f64>,
    /// When the CronJob was created, if the webhook could tell.
    pub cronjob_created: Option<Timestamp>,
    /// The CronJob's `status.lastSuccessfulTime` when the run's Pod was created.
    pub cronjob_last_success: Option<Timestamp>,
}

impl StartMetrics {
    /// The metrics of `run`, started at `started`; `schedule` is the run's schedule if it parsed.
    pub fn new(run: &Run, schedule: Option<&Schedule>, started: Timestamp) -> StartMetrics {
        let slot = run.scheduled_time;
        let slots = slot.zip(schedule);
        let next_scheduled = slots.and_then(|(slot, schedule)| schedule.next_after(slot));
        let period = next_scheduled.zip(slot).map(|(next, slot)| next.duration_since(slot));
        StartMetrics {
            schedule: run.schedule.clone().unwrap_or_default(),
            time_zone: info_time_zone(run.time_zone.as_deref(), schedule),
            concurrency_policy: run.concurrency_policy.clone(),
            started,
            last_scheduled: slot,
            previous_scheduled: slots.and_then(|(slot, schedule)| schedule.previous_before(slot)),
            next_scheduled,
            period,
            grace_seconds: run.grace_seconds.unwrap_or(DEFAULT_GRACE_SECONDS),
            // A run that takes longer than its period overlaps the next one: it is stuck.
            max_run_seconds: run.max_run_seconds.or(period.map(|p| p.as_secs_f64())),
            cronjob_created: run.cronjob_created,
            cronjob_last_success: run.cronjob_last_success,
        }
    }

    pub fn families(&self) -> Vec<MetricFamily> {
        let mut families = vec![info_family(&self.concurrency_policy, &self.schedule, &self.time_zone)];
        let scheduled = self.last_scheduled.is_some();
        let started = unix_seconds(self.started);
        let optional = [
            (
                "cronjob_last_start_timestamp_seconds",
                "When the CronJob's last scheduled run started, in Unix seconds.",
                scheduled.then_some(started),
            ),
            (
                "cronjob_last_manual_start_timestamp_seconds",
                "When the CronJob's last run by hand (kubectl create job --from) started, in Unix seconds.",
                (!scheduled).then_some(started),
            ),
            (
                "cronjob_last_scheduled_timestamp_seconds",
                "The schedule slot of the CronJob's last scheduled run, in Unix seconds: the run's identity.",
                self.last_scheduled.map(unix_seconds),
            ),
            (
                "cronjob_previous_scheduled_timestamp_seconds",
                "The schedule slot before that of the CronJob's last scheduled run, in Unix seconds.",
                self.previous_scheduled.map(unix_seconds),
            ),
            (NEXT_SCHEDULED, NEXT_SCHEDULED_HELP, self.next_scheduled.map(unix_seconds)),
            (
                "cronjob_schedule_period_seconds",
                "The time from the last run's schedule slot to the next slot.",
                self.period.map(|p| p.as_secs_f64()),
            ),
            (
                "cronjob_schedule_grace_seconds",
                "How late a run may start before it counts as missed.",
                scheduled.then_some(self.grace_seconds),
            ),
            (
                "cronjob_max_run_duration_seconds",
                "How long a run may take before it counts as stuck.",
                self.max_run_seconds.filter(|_| scheduled),
            ),
            (
                "cronjob_created_timestamp_seconds",
                "When the CronJob was created, in Unix seconds: until its first success, the rules count from it.",
                self.cronjob_created.map(unix_seconds),
            ),
            (
                "cronjob_status_last_successful_timestamp_seconds",
                "When the CronJob's last successful Job finished, in Unix seconds, as the CronJob controller had recorded it (status.lastSuccessfulTime) when the last run started.",
                self.cronjob_last_success.map(unix_seconds),
            ),
        ];
        families.extend(
            optional.into_iter().filter_map(|(name, help, value)| Some(gauge_family(name, help, Vec::new(), value?))),
        );
        families
    }

    /// The push body, text format 0.0.4.
    pub fn to_text(&self) -> String {
        text_write::to_text(&self.families())
    }
}

/// The `timezone` label of `cronjob_info`: `spec.timeZone`, else a `CRON_TZ=` prefix's zone,
/// else UTC (the controller's default).
pub fn info_time_zone(time_zone: Option<&str>, schedule: Option<&Schedule>) -> String {
    time_zone.or_else(|| schedule.and_then(|s| s.time_zone().iana_name())).unwrap_or("UTC").to_string()
}

/// `cronjob_info`, pushed by the start and, when the CronJob changes, by the webhook.
pub fn info_family(concurrency_policy: &str, schedule: &str, time_zone: &str) -> MetricFamily {
    let info = labels(&[("concurrency_policy", concurrency_policy), ("schedule", schedule), ("timezone", time_zone)]);
    gauge_family("cronjob_info", "The CronJob's schedule, time zone and concurrency policy; always 1.", info, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pushers::run::RunArgs;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn run(schedule: &str, time_zone: &str, scheduled_time: &str) -> Run {
        let args = RunArgs {
            cronjob: Some("backup".into()),
            job_name: Some("backup-29542410".into()),
            schedule: Some(schedule.into()),
            time_zone: Some(time_zone.into()),
            scheduled_time: Some(scheduled_time.into()),
            ..RunArgs::default()
        };
        args.resolve().0
    }

    fn metrics(run: &Run, started: &str) -> StartMetrics {
        let schedule = run.schedule().and_then(Result::ok);
        StartMetrics::new(run, schedule.as_ref(), at(started))
    }

    #[test]
    fn a_scheduled_run_pushes_its_slot_the_next_and_the_period() {
        // 1772544600 is 2026-03-03T13:30:00Z; the next quarter hour is 13:45.
        let m = metrics(&run("*/15 * * * *", "", "1772544600"), "2026-03-03T13:30:07.25Z");
        assert_eq!(m.last_scheduled, Some(at("2026-03-03T13:30:00Z")));
        assert_eq!(m.next_scheduled, Some(at("2026-03-03T13:45:00Z")));
        assert_eq!(m.period, Some(SignedDuration::from_mins(15)));
        assert_eq!((m.grace_seconds, m.max_run_seconds), (300.0, Some(900.0)));
        assert_eq!(m.time_zone, "UTC");
        assert_eq!(
            m.to_text(),
            "# HELP cronjob_info The CronJob's schedule, time zone and concurrency policy; always 1.\n\
             # TYPE cronjob_info gauge\n\
             cronjob_info{concurrency_policy=\"Allow\",schedule=\"*/15 * * * *\",timezone=\"UTC\"} 1\n\
             # HELP cronjob_last_start_timestamp_seconds When the CronJob's last scheduled run started, in Unix \
             seconds.\n\
             # TYPE cronjob_last_start_timestamp_seconds gauge\n\
             cronjob_last_start_timestamp_seconds 1.77254460725e+09\n\
             # HELP cronjob_last_scheduled_timestamp_seconds The schedule slot of the CronJob's last scheduled run, \
             in Unix seconds: the run's identity.\n\
             # TYPE cronjob_last_scheduled_timestamp_seconds gauge\n\
             cronjob_last_scheduled_timestamp_seconds 1.7725446e+09\n\
             # HELP cronjob_previous_scheduled_timestamp_seconds The schedule slot before that of the CronJob's last \
             scheduled run, in Unix seconds.\n\
             # TYPE cronjob_previous_scheduled_timestamp_seconds gauge\n\
             cronjob_previous_scheduled_timestamp_seconds 1.7725437e+09\n\
             # HELP cronjob_next_scheduled_timestamp_seconds The schedule slot after that of the CronJob's last \
             scheduled run, in Unix seconds.\n\
             # TYPE cronjob_next_scheduled_timestamp_seconds gauge\n\
             cronjob_next_scheduled_timestamp_seconds 1.7725455e+09\n\
             # HELP cronjob_schedule_period_seconds The time from the last run's schedule slot to the next slot.\n\
             # TYPE cronjob_schedule_period_seconds gauge\n\
             cronjob_schedule_period_seconds 900\n\
             # HELP cronjob_schedule_grace_seconds How late a run may start before it counts as missed.\n\
             # TYPE cronjob_schedule_grace_seconds gauge\n\
             cronjob_schedule_grace_seconds 300\n\
             # HELP cronjob_max_run_duration_seconds How long a run may take before it counts as stuck.\n\
             # TYPE cronjob_max_run_duration_seconds gauge\n\
             cronjob_max_run_duration_seconds 900\n"
        );
    }

    /// A run by hand pushes its start under its own name and no slot: the scheduled run that the
    /// timing rules judge (maybe hung) stays the one they judge.
    #[test]
    fn a_run_by_hand_pushes_its_start_apart_and_no_slots() {
        let mut r = run("0 9 * * 1-5", "", "");
        r.cronjob_created = Some(at("2026-01-01T00:00:00Z"));
        let m = metrics(&r, "2026-03-07T10:00:00Z");
        assert_eq!((m.last_scheduled, m.next_scheduled, m.period), (None, None, None));
        let names: Vec<String> = m.families().iter().map(|f| f.name().to_string()).collect();
        assert_eq!(
            names,
            ["cronjob_info", "cronjob_last_manual_start_timestamp_seconds", "cronjob_created_timestamp_seconds"]
        );
    }

    #[test]
    fn the_controllers_last_success_is_passed_on() {
        let mut r = run("*/15 * * * *", "", "1772544600");
        r.cronjob_last_success = Some(at("2026-03-03T13:15:42Z"));
        let text = metrics(&r, "2026-03-03T13:30:07Z").to_text();
        assert!(
            text.lines().any(|l| l == "cronjob_status_last_successful_timestamp_seconds 1.772543742e+09"),
            "{text}"
        );
    }

    #[test]
    fn every_has_its_interval_as_period() {
        let m = metrics(&run("@every 90m", "", "1772544600"), "2026-03-03T13:30:01Z");
        assert_eq!(m.next_scheduled, Some(at("2026-03-03T15:00:00Z")));
        assert_eq!(m.period, Some(SignedDuration::from_mins(90)));
        assert_eq!(m.previous_scheduled, Some(at("2026-03-03T12:00:00Z")));
    }

    #[test]
    fn slots_are_counted_in_the_time_zone() {
        // 03:00 in Berlin on 2026-03-28 is 02:00Z; the clocks go forward that night, so the
        // next 03:00 is 01:00Z, 23 hours later.
        let m = metrics(&run("0 3 * * *", "Europe/Berlin", "1774663200"), "2026-03-28T02:00:01Z");
        assert_eq!(m.next_scheduled, Some(at("2026-03-29T01:00:00Z")));
        assert_eq!(m.period, Some(SignedDuration::from_hours(23)));
        assert_eq!(m.time_zone, "Europe/Berlin");
        let prefixed = metrics(&run("CRON_TZ=Asia/Tokyo 0 3 * * *", "", "1774663200"), "2026-03-28T02:00:01Z");
        assert_eq!(prefixed.time_zone, "Asia/Tokyo");
    }

    #[test]
    fn an_unreadable_schedule_still_gives_what_is_known() {
        let mut r = run("61 * * * *", "", "1772544600");
        r.max_run_seconds = Some(120.0);
        let m = metrics(&r, "2026-03-03T13:30:01Z");
        assert_eq!((m.next_scheduled, m.period, m.max_run_seconds), (None, None, Some(120.0)));
        assert_eq!(m.schedule, "61 * * * *");
        let names: Vec<String> = m.families().iter().map(|f| f.name().to_string()).collect();
        assert_eq!(
            names,
            [
                "cronjob_info",
                "cronjob_last_start_timestamp_seconds",
                "cronjob_last_scheduled_timestamp_seconds",
                "cronjob_schedule_grace_seconds",
                "cronjob_max_run_duration_seconds"
            ]
        );
    }

    #[test]
    fn the_text_is_what_the_gateway_parses() {
        let m = metrics(&run("@weekly", "", "1772323200"), "2026-03-01T00:00:03Z");
        let families = crate::exposition::text_parse::parse(m.to_text().as_bytes()).unwrap();
        assert_eq!(families, m.families());
    }
}
