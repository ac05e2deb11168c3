//! The series `cronpush sidecar` pushes when a run ends (DESIGN.md "Grouping key and metrics").
//!
//! The run succeeded only when every main container is known to have exited 0. When a
//! container's end could not be learned, the run is `unknown`, never a success.
//!
//! A POST replaces a metric's series in the group only when the push carries that metric, so
//! every push carries every per-run metric, or the previous run's series would stand in for
//! this one: a container whose end is not known gets exit code -1 and reason `Unknown`; when
//! not even the containers are known (the relay unreachable, the token refused), one series
//! for the container `unknown` says so; and the completion time and the duration, when the
//! containers' own times are not known, are the sidecar's own view of the run ([`Watch`]).

use jiff::Timestamp;

use super::run::Run;
use super::skipped_slots::next_slot_after_skipped;
use super::start_metrics::{NEXT_SCHEDULED, NEXT_SCHEDULED_HELP};
use crate::exit_status::{ContainerExit, ExitReport, Terminated};
use crate::exposition::families::{gauge, gauges, label, unix_seconds};
use crate::exposition::text_write;
use crate::proto::client::MetricFamily;
use crate::schedule::Schedule;

/// The slot of the run whose attempt was retried: a retried attempt's end names its run here,
/// not in `cronjob_last_ended_scheduled_timestamp_seconds` (the run is not over). The gateway's
/// run history reads it (gateway/store/runs.rs).
pub const RETRIED_SCHEDULED: &str = "cronjob_last_retried_scheduled_timestamp_seconds";

/// The exit code pushed for a container whose end is not known.
pub const UNKNOWN_EXIT_CODE: f64 = -1.0;
/// The `container` label when the sidecar learned nothing, not even the containers' names
/// (the injection contract does not carry them).
pub const UNKNOWN_CONTAINER: &str = "unknown";
/// The termination reason of a container whose end is not known.
pub const UNKNOWN_REASON: &str = "Unknown";
/// The reason said for a Pod that was deleted (by the Job controller for its deadline or its
/// `backoffLimit`, by `kubectl delete`, a drain) with no reason or disruption condition of its own.
pub const POD_DELETED_REASON: &str = "PodDeleted";
/// The kubelet's reasons that tell that a container ended badly but not why: when the Pod was
/// ended as a whole (`DeadlineExceeded`, `Evicted`), the Pod's reason says why.
const GENERIC_REASONS: [&str; 2] = ["Error", "ContainerStatusUnknown"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunResult {
    Success,
    Failure,
    /// This attempt failed, and the Job will run another Pod: the run is not over.
    Retrying,
    Unknown,
}

impl RunResult {
    pub fn as_str(self) -> &'static str {
        match self {
            RunResult::Success => "success",
            RunResult::Failure => "failure",
            RunResult::Retrying => "retrying",
            RunResult::Unknown => "unknown",
        }
    }
}

/// The run as the sidecar saw it by itself: the kubelet starts the main containers only once
/// the sidecar has started, and sends it SIGTERM only once they have all exited (also when the
/// Pod is deleted: main containers stop first, sidecars after). So `from..until` holds the run,
/// give or take the kubelet's status loop (about a second; less of it if the sidecar was
/// restarted mid-run); it stands in for the containers' own start and finish times when those
/// are not known.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Watch {
    /// When the sidecar started.
    pub from: Timestamp,
    /// When the end of the run reached it (SIGTERM).
    pub until: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EndMetrics {
    pub result: RunResult,
    /// The last main container's finish, or the sidecar's SIGTERM when an end is not known.
    pub completed: Timestamp,
    /// From the first main container's start to the last one's end, or the sidecar's [`Watch`]
    /// when an end is not known.
    pub duration_seconds: f64,
    /// Never empty: a single `unknown` container when nothing was learned.
    pub containers: Vec<ContainerExit>,
    /// The Pod's own termination reason (`DeadlineExceeded`, `Evicted`), if it was ended whole.
    pub pod_reason: Option<String>,
    /// Which attempt of its Job the run's Pod was, when the relay could read the Job.
    pub attempt: Option<u32>,
    /// The next slot the CronJob controller will start, when it is not the one the start pushed
    /// (see `skipped_slots`).
    pub next_scheduled: Option<Timestamp>,
    /// The run's schedule slot, its identity; `None` for a run by hand.
    pub slot: Option<Timestamp>,
    /// The slot before the run's: with the success slot, it tells whether two scheduled runs in
    /// a row went without a success, also while the next run is going.
    pub previous_slot: Option<Timestamp>,
    /// On success, the slot the success answers for: the run's own, or for a run by hand the
    /// last slot before its end (a run by hand after a failed slot makes up for it).
    pub success_slot: Option<Timestamp>,
}

impl EndMetrics {
    /// The end of a run from what was learned about its containers (`None`: nothing at all),
    /// with what the sidecar saw by itself standing in for the times nobody reported.
    pub fn new(report: Option<&ExitReport>, watch: Watch) -> EndMetrics {
        let mut containers: Vec<ContainerExit> = report.map(|r| r.containers.clone()).unwrap_or_default();
        if containers.is_empty() {
            containers.push(ContainerExit { name: UNKNOWN_CONTAINER.into(), terminated: None, restarts: 0 });
        }
        let known: Vec<&Terminated> = containers.iter().filter_map(|c| c.terminated.as_ref()).collect();
        let all_known = known.len() == containers.len();
        let retried = report.and_then(|r| r.attempt).is_some_and(|a| a.retried_if_failed);
        let result = if known.iter().any(|t| t.exit_code != 0) {
            // One known failure fails the attempt, whatever the others did; the run too, unless
            // the Job will try again.
            if retried { RunResult::Retrying } else { RunResult::Failure }
        } else if all_known {
            RunResult::Success
        } else {
            RunResult::Unknown
        };
        let time = |t: &Option<String>| t.as_deref().and_then(|t| t.parse::<Timestamp>().ok());
        let finished = known.iter().filter_map(|t| time(&t.finished_at)).max();
        let started = known.iter().filter_map(|t| time(&t.started_at)).min();
        // While some end is not known, the containers' times tell only part of the run; the
        // sidecar's watch holds the whole of it.
        let first = match started {
            Some(started) if all_known => started,
            started => started.map_or(watch.from, |s| s.min(watch.from)),
        };
        let last = match finished {
            Some(finished) if all_known => finished,
            finished => finished.map_or(watch.until, |f| f.max(watch.until)),
        };
        let duration_seconds = (last - first).total(jiff::Unit::Second).unwrap_or(0.0).max(0.0);
        // Failing a reason, the bare fact of the deletion.
        let pod_reason = report.and_then(|r| {
            r.ended_because()
                .map(str::to_string)
                .or_else(|| r.deletion.as_ref().map(|_| POD_DELETED_REASON.to_string()))
                .filter(|r| !r.is_empty())
        });
        let attempt = report.and_then(|r| r.attempt).map(|a| a.number);
        EndMetrics {
            result,
            completed: last,
            duration_seconds,
            containers,
            pod_reason,
            attempt,
            next_scheduled: None,
            slot: None,
            previous_slot: None,
            success_slot: None,
        }
    }

    /// Ties the end to its run: the run's slot, the slot a success answers for, and the next
    /// slot when a Forbid run made the controller skip some.
    pub fn of_run(mut self, run: &Run, schedule: Option<&Schedule>) -> EndMetrics {
        self.slot = run.scheduled_time;
        if let Some(schedule) = schedule {
            self.next_scheduled = next_slot_after_skipped(run, schedule, self.completed);
            self.previous_slot = self.slot.and_then(|slot| schedule.previous_before(slot));
        }
        if self.result == RunResult::Success {
            self.success_slot = self.slot.or_else(|| schedule.and_then(|s| s.last_at_or_before(self.completed)));
        }
        self
    }

    pub fn families(&self) -> Vec<MetricFamily> {
        let completed = unix_seconds(self.completed);
        let mut families = vec![
            gauges(
                "cronjob_last_completion_timestamp_seconds",
                "When the CronJob's last run ended, in Unix seconds.",
                vec![gauge(Vec::new(), completed)],
            ),
            gauges(
                "cronjob_last_result",
                "How the CronJob's last run ended: success, failure or unknown (the exit status could not be learned); always 1.",
                vec![gauge(vec![label("result", self.result.as_str())], 1.0)],
            ),
            gauges(
                "cronjob_last_exit_code",
                "Exit code of each main container in the CronJob's last run; -1 when not known (container \"unknown\" when not even the containers are).",
                self.containers
                    .iter()
                    .map(|c| {
                        let code = c.terminated.as_ref().map_or(UNKNOWN_EXIT_CODE, |t| f64::from(t.exit_code));
                        gauge(vec![label("container", &c.name)], code)
                    })
                    .collect(),
            ),
            gauges(
                "cronjob_last_termination_info",
                "Why each main container of the CronJob's last run ended (the kubelet's reason, or the Pod's when it was ended whole, and the signal that killed it); always 1.",
                self.containers
                    .iter()
                    .map(|c| {
                        let signal = c.terminated.as_ref().map(signal_name).unwrap_or_default();
                        gauge(
                            vec![
                                label("container", &c.name),
                                label("reason", &self.termination_reason(c)),
                                label("signal", &signal),
                            ],
                            1.0,
                        )
                    })
                    .collect(),
            ),
            gauges(
                "cronjob_last_restarts",
                "How many times the kubelet restarted each main container of the CronJob's last run in place (restartPolicy OnFailure) before it ended.",
                self.containers
                    .iter()
                    .map(|c| gauge(vec![label("container", &c.name)], f64::from(c.restarts)))
                    .collect(),
            ),
            gauges(
                "cronjob_last_attempt",
                "Which attempt of its Job the CronJob's last finished Pod was (1 for the first; the Job runs another Pod after a failure, up to its backoffLimit); 0 when not known.",
                vec![gauge(Vec::new(), f64::from(self.attempt.unwrap_or(0)))],
            ),
            gauges(
                "cronjob_last_duration_seconds",
                "How long the CronJob's last run took, from its first main container's start to its last one's end; when those are not known, from the cronpush sidecar's start to its SIGTERM, which holds the run.",
                vec![gauge(Vec::new(), self.duration_seconds)],
            ),
        ];
        match self.result {
            RunResult::Success => families.push(gauges(
                "cronjob_last_success_timestamp_seconds",
                "When the CronJob's last successful run ended, in Unix seconds.",
                vec![gauge(Vec::new(), completed)],
            )),
            RunResult::Failure => families.push(gauges(
                "cronjob_last_failure_timestamp_seconds",
                "When the CronJob's last failed run ended, in Unix seconds.",
                vec![gauge(Vec::new(), completed)],
            )),
            RunResult::Retrying | RunResult::Unknown => {}
        }
        // A retried attempt did not end the run: the Job's next Pod goes on with it.
        if let Some(slot) = self.slot.filter(|_| self.result != RunResult::Retrying) {
            families.push(gauges(
                "cronjob_last_ended_scheduled_timestamp_seconds",
                "The schedule slot of the CronJob's last scheduled run that ended, in Unix seconds: equal to cronjob_last_scheduled_timestamp_seconds once the latest scheduled run is over.",
                vec![gauge(Vec::new(), unix_seconds(slot))],
            ));
            if let Some(previous) = self.previous_slot {
                families.push(gauges(
                    "cronjob_last_ended_previous_scheduled_timestamp_seconds",
                    "The schedule slot before that of the CronJob's last scheduled run that ended, in Unix seconds.",
                    vec![gauge(Vec::new(), unix_seconds(previous))],
                ));
            }
        }
        // It still names its run apart from the runs that ended, so that the gateway's run
        // history keeps it with its own run when runs overlap (`concurrencyPolicy: Allow`).
        if let Some(slot) = self.slot.filter(|_| self.result == RunResult::Retrying) {
            families.push(gauges(
                RETRIED_SCHEDULED,
                "The schedule slot of the CronJob's last scheduled run whose failed attempt its Job retried in another Pod, in Unix seconds.",
                vec![gauge(Vec::new(), unix_seconds(slot))],
            ));
        }
        if let Some(slot) = self.success_slot {
            families.push(gauges(
                "cronjob_last_success_scheduled_timestamp_seconds",
                "The schedule slot of the CronJob's last successful run (for a run by hand, the last slot before it ended), in Unix seconds.",
                vec![gauge(Vec::new(), unix_seconds(slot))],
            ));
        }
        if let Some(next) = self.next_scheduled {
            families.push(gauges(NEXT_SCHEDULED, NEXT_SCHEDULED_HELP, vec![gauge(Vec::new(), unix_seconds(next))]));
        }
        families
    }

    /// The push body, text format 0.0.4.
    pub fn to_text(&self) -> String {
        text_write::to_text(&self.families())
    }

    /// The container's own reason, unless it only says that the container failed (or nothing)
    /// and the Pod says why: a Pod past its `activeDeadlineSeconds` has its containers killed
    /// with a plain `Error`, and the Pod's `DeadlineExceeded` is the news.
    fn termination_reason(&self, end: &ContainerExit) -> String {
        let own = end.terminated.as_ref().map(|t| (t, t.reason.as_deref().filter(|r| !r.is_empty())));
        match (own, self.pod_reason.as_deref()) {
            (Some((t, reason)), Some(pod))
                if t.exit_code != 0 && reason.is_none_or(|r| GENERIC_REASONS.contains(&r)) =>
            {
                pod.into()
            }
            (Some((t, reason)), _) => reason.unwrap_or(default_reason(t.exit_code)).into(),
            (None, Some(pod)) => pod.into(),
            (None, None) => UNKNOWN_REASON.into(),
        }
    }
}

/// The kubelet leaves `reason` out only in unusual paths; name the result as it would.
fn default_reason(exit_code: i32) -> &'static str {
    if exit_code == 0 { "Completed" } else { "Error" }
}

/// The signal that ended a container: the runtime's `signal` field, else an exit code above
/// 128 read as the shell and container runtimes write it (128 + signal number).
fn signal_name(t: &Terminated) -> String {
    let number = t.signal.filter(|s| *s > 0).or((129..=192).contains(&t.exit_code).then(|| t.exit_code - 128));
    match number {
        None => String::new(),
        Some(1) => "SIGHUP".into(),
        Some(2) => "SIGINT".into(),
        Some(3) => "SIGQUIT".into(),
        Some(6) => "SIGABRT".into(),
        Some(9) => "SIGKILL".into(),
        Some(11) => "SIGSEGV".into(),
        Some(13) => "SIGPIPE".into(),
        Some(14) => "SIGALRM".into(),
        Some(15) => "SIGTERM".into(),
        Some(n) => format!("signal {n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ended(exit_code: i32, reason: Option<&str>, signal: Option<i32>) -> Option<Terminated> {
        Some(Terminated {
            exit_code,
            signal,
            reason: reason.map(String::from),
            message: None,
            started_at: Some("2025-11-22T00:00:03Z".into()),
            finished_at: Some("2025-11-22T00:04:10.5Z".into()),
        })
    }

    fn report(containers: &[(&str, Option<Terminated>)]) -> ExitReport {
        ExitReport {
            namespace: "ops".into(),
            pod: "backup-29396160-x7k2p".into(),
            uid: "u".into(),
            complete: containers.iter().all(|c| c.1.is_some()),
            containers: containers
                .iter()
                .map(|(name, t)| ContainerExit { name: name.to_string(), terminated: t.clone(), restarts: 0 })
                .collect(),
            reason: None,
            disruption: None,
            deletion: None,
            job_reason: None,
            attempt: None,
            cronjob_deleted: false,
            logs: Vec::new(),
        }
    }

    /// The sidecar started at 00:00:01 and got SIGTERM at 00:05:00.
    fn watch() -> Watch {
        Watch { from: "2025-11-22T00:00:01Z".parse().unwrap(), until: "2025-11-22T00:05:00Z".parse().unwrap() }
    }

    fn has_line(text: &str, line: &str) -> bool {
        text.lines().any(|l| l == line)
    }

    #[test]
    fn a_clean_exit_is_a_success_with_its_times() {
        let text = EndMetrics::new(Some(&report(&[("main", ended(0, Some("Completed"), None))])), watch()).to_text();
        for line in [
            "cronjob_last_completion_timestamp_seconds 1.7637698505e+09",
            "cronjob_last_result{result=\"success\"} 1",
            "cronjob_last_exit_code{container=\"main\"} 0",
            "cronjob_last_termination_info{container=\"main\",reason=\"Completed\",signal=\"\"} 1",
            "cronjob_last_duration_seconds 247.5",
            "cronjob_last_success_timestamp_seconds 1.7637698505e+09",
        ] {
            assert!(has_line(&text, line), "missing {line:?} in\n{text}");
        }
        assert!(!text.contains("failure_timestamp"));
    }

    #[test]
    fn any_failed_container_fails_the_run_and_says_which() {
        let r =
            report(&[("main", ended(0, Some("Completed"), None)), ("uploader", ended(137, Some("OOMKilled"), None))]);
        let end = EndMetrics::new(Some(&r), watch());
        assert_eq!(end.result, RunResult::Failure);
        let text = end.to_text();
        assert!(text.contains("cronjob_last_exit_code{container=\"uploader\"} 137"), "{text}");
        assert!(text.contains("reason=\"OOMKilled\",signal=\"SIGKILL\""), "{text}");
        assert!(text.contains("cronjob_last_failure_timestamp_seconds "), "{text}");
        assert!(!text.contains("success_timestamp"), "{text}");
    }

    #[test]
    fn a_signal_is_named_from_the_field_or_the_exit_code() {
        let r = report(&[("main", ended(143, Some("Error"), None)), ("other", ended(2, None, Some(15)))]);
        let text = EndMetrics::new(Some(&r), watch()).to_text();
        assert!(text.contains("{container=\"main\",reason=\"Error\",signal=\"SIGTERM\"}"), "{text}");
        assert!(text.contains("{container=\"other\",reason=\"Error\",signal=\"SIGTERM\"}"), "{text}");
    }

    #[test]
    fn an_unlearned_end_is_unknown_never_a_success() {
        let nothing = EndMetrics::new(None, watch());
        let unreported = EndMetrics::new(Some(&report(&[("main", None)])), watch());
        for (end, container) in [(nothing, UNKNOWN_CONTAINER), (unreported, "main")] {
            assert_eq!(end.result, RunResult::Unknown);
            let text = end.to_text();
            for line in [
                "cronjob_last_result{result=\"unknown\"} 1".to_string(),
                format!("cronjob_last_exit_code{{container=\"{container}\"}} -1"),
                format!("cronjob_last_termination_info{{container=\"{container}\",reason=\"Unknown\",signal=\"\"}} 1"),
                // The SIGTERM stands in for the completion, the sidecar's watch for the duration.
                "cronjob_last_completion_timestamp_seconds 1.7637699e+09".to_string(),
                "cronjob_last_duration_seconds 299".to_string(),
            ] {
                assert!(has_line(&text, &line), "missing {line:?} in\n{text}");
            }
            assert!(!text.contains("success_timestamp") && !text.contains("failure_timestamp"), "{text}");
        }
        let partly = report(&[("main", ended(0, None, None)), ("uploader", None)]);
        let end = EndMetrics::new(Some(&partly), watch());
        let text = end.to_text();
        assert!(has_line(&text, "cronjob_last_exit_code{container=\"uploader\"} -1"), "{text}");
        assert!(text.contains("{container=\"uploader\",reason=\"Unknown\",signal=\"\"}"), "{text}");
        // Not main's 247.5 s alone: the uploader may have run longer, up to the SIGTERM.
        assert!(has_line(&text, "cronjob_last_duration_seconds 299"), "{text}");
        assert_eq!(end.completed, watch().until);
    }

    /// A POST keeps the previous run's series of every metric it does not carry: each push
    /// must carry every per-run metric, whatever was learned.
    #[test]
    fn every_push_replaces_every_series_of_the_previous_run() {
        let per_run = [
            "cronjob_last_completion_timestamp_seconds",
            "cronjob_last_result",
            "cronjob_last_exit_code",
            "cronjob_last_termination_info",
            "cronjob_last_duration_seconds",
        ];
        let mut timeless = report(&[("main", ended(0, Some("Completed"), None))]);
        timeless.containers[0].terminated.as_mut().unwrap().started_at = None;
        let reports = [
            None,
            Some(report(&[("main", ended(0, Some("Completed"), None))])),
            Some(report(&[("main", ended(1, Some("Error"), None)), ("uploader", None)])),
            Some(report(&[("main", None)])),
            Some(report(&[])),
            Some(timeless),
        ];
        for r in &reports {
            let end = EndMetrics::new(r.as_ref(), watch());
            let families = end.families();
            for name in per_run {
                let family = families.iter().find(|f| f.name.as_deref() == Some(name));
                assert!(family.is_some_and(|f| !f.metric.is_empty()), "{name} missing for {r:?}");
            }
            assert!(end.duration_seconds.is_finite() && end.duration_seconds >= 0.0, "{r:?}");
        }
    }

    fn run(scheduled_time: &str) -> (Run, Schedule) {
        let args = crate::pushers::run::RunArgs {
            cronjob: Some("backup".into()),
            schedule: Some("0 * * * *".into()),
            scheduled_time: Some(scheduled_time.into()),
            ..Default::default()
        };
        let run = args.resolve().0;
        let schedule = run.schedule().unwrap().unwrap();
        (run, schedule)
    }

    fn series(end: &EndMetrics) -> Vec<String> {
        end.to_text()
            .lines()
            .filter(|l| !l.starts_with('#') && l.contains("scheduled_timestamp"))
            .map(String::from)
            .collect()
    }

    /// The slot is the run's identity: the end names the run it closes, and the run a success
    /// answers for, so that the rules never take one run's end for another's.
    #[test]
    fn the_end_names_its_run_by_its_slot() {
        // 1763769600 is 2025-11-22T00:00:00Z, the slot of the run that ended at 00:04:10.5.
        let (scheduled, schedule) = run("1763769600");
        let success = Some(report(&[("main", ended(0, Some("Completed"), None))]));
        let end = EndMetrics::new(success.as_ref(), watch()).of_run(&scheduled, Some(&schedule));
        assert_eq!(
            series(&end),
            [
                "cronjob_last_ended_scheduled_timestamp_seconds 1.7637696e+09",
                "cronjob_last_ended_previous_scheduled_timestamp_seconds 1.763766e+09",
                "cronjob_last_success_scheduled_timestamp_seconds 1.7637696e+09"
            ]
        );
        let failure = Some(report(&[("main", ended(1, Some("Error"), None))]));
        let end = EndMetrics::new(failure.as_ref(), watch()).of_run(&scheduled, Some(&schedule));
        assert_eq!(
            series(&end),
            [
                "cronjob_last_ended_scheduled_timestamp_seconds 1.7637696e+09",
                "cronjob_last_ended_previous_scheduled_timestamp_seconds 1.763766e+09"
            ]
        );
        // An attempt its Job retries ends nothing: the run goes on in the next Pod.
        let mut retried = report(&[("main", ended(1, Some("Error"), None))]);
        retried.attempt = Some(crate::exit_status::Attempt { number: 1, retried_if_failed: true });
        let end = EndMetrics::new(Some(&retried), watch()).of_run(&scheduled, Some(&schedule));
        assert_eq!(end.result, RunResult::Retrying);
        assert_eq!(series(&end), ["cronjob_last_retried_scheduled_timestamp_seconds 1.7637696e+09"]);
        // A run by hand closes no scheduled run; its success answers for the last slot before
        // its end (00:00 again: it ended at 00:04:10.5).
        let (by_hand, _) = run("");
        let end = EndMetrics::new(success.as_ref(), watch()).of_run(&by_hand, Some(&schedule));
        assert_eq!(series(&end), ["cronjob_last_success_scheduled_timestamp_seconds 1.7637696e+09"]);
        let end = EndMetrics::new(failure.as_ref(), watch()).of_run(&by_hand, Some(&schedule));
        assert!(series(&end).is_empty());
    }

    #[test]
    fn a_pod_ended_whole_gives_its_reason_to_containers_that_do_not_say_why() {
        let mut r = report(&[
            ("main", ended(137, Some("Error"), None)),
            ("quiet", ended(143, None, None)),
            ("oom", ended(137, Some("OOMKilled"), None)),
            ("done", ended(0, Some("Completed"), None)),
            ("waiting", None),
        ]);
        r.reason = Some("DeadlineExceeded".into());
        let end = EndMetrics::new(Some(&r), watch());
        assert_eq!(end.result, RunResult::Failure);
        let text = end.to_text();
        for line in [
            "cronjob_last_termination_info{container=\"main\",reason=\"DeadlineExceeded\",signal=\"SIGKILL\"} 1",
            "cronjob_last_termination_info{container=\"quiet\",reason=\"DeadlineExceeded\",signal=\"SIGTERM\"} 1",
            "cronjob_last_termination_info{container=\"oom\",reason=\"OOMKilled\",signal=\"SIGKILL\"} 1",
            "cronjob_last_termination_info{container=\"done\",reason=\"Completed\",signal=\"\"} 1",
            "cronjob_last_termination_info{container=\"waiting\",reason=\"DeadlineExceeded\",signal=\"\"} 1",
            "cronjob_last_exit_code{container=\"main\"} 137",
            "cronjob_last_exit_code{container=\"waiting\"} -1",
        ] {
            assert!(has_line(&text, line), "missing {line:?} in\n{text}");
        }
        // Without the Pod's reason, the containers' own.
        r.reason = None;
        let text = EndMetrics::new(Some(&r), watch()).to_text();
        assert!(text.contains("{container=\"main\",reason=\"Error\",signal=\"SIGKILL\"}"), "{text}");
        assert!(text.contains("{container=\"quiet\",reason=\"Error\",signal=\"SIGTERM\"}"), "{text}");
        assert!(text.contains("{container=\"waiting\",reason=\"Unknown\",signal=\"\"}"), "{text}");
    }

    #[test]
    fn an_evicted_pod_whose_containers_went_unreported_is_unknown_and_says_evicted() {
        let mut r = report(&[("main", None)]);
        r.reason = Some("Evicted".into());
        let end = EndMetrics::new(Some(&r), watch());
        assert_eq!(end.result, RunResult::Unknown, "the Pod's reason is not an exit code");
        let text = end.to_text();
        assert!(
            has_line(&text, "cronjob_last_termination_info{container=\"main\",reason=\"Evicted\",signal=\"\"} 1"),
            "{text}"
        );
        assert!(has_line(&text, "cronjob_last_exit_code{container=\"main\"} -1"), "{text}");
    }
}
