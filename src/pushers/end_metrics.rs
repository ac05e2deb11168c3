//! The series `cronpush sidecar` pushes when a run ends (DESIGN.md "Grouping key and metrics").
//!
//! The run succeeded only when every main container is known to have exited 0. When a
//! container's end could not be learned, the run is `unknown`, never a success; its exit code
//! is pushed as -1, so that the previous run's code cannot stand in for it (a POST replaces a
//! metric's series in the group only when the push carries that metric).

use jiff::Timestamp;

use crate::exit_status::{ExitReport, Terminated};
use crate::exposition::text_write;
use crate::proto::client::{Gauge, LabelPair, Metric, MetricFamily, MetricType};

/// The exit code pushed for a container whose end is not known.
pub const UNKNOWN_EXIT_CODE: f64 = -1.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunResult {
    Success,
    Failure,
    Unknown,
}

impl RunResult {
    pub fn as_str(self) -> &'static str {
        match self {
            RunResult::Success => "success",
            RunResult::Failure => "failure",
            RunResult::Unknown => "unknown",
        }
    }
}

/// How one main container ended, or that it is not known.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerEnd {
    pub name: String,
    pub terminated: Option<Terminated>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EndMetrics {
    pub result: RunResult,
    pub completed: Timestamp,
    /// From the first main container's start to the last one's end, when both are known.
    pub duration_seconds: Option<f64>,
    pub containers: Vec<ContainerEnd>,
}

impl EndMetrics {
    /// The end of a run from what was learned about its containers (`None`: nothing at all),
    /// with `now` standing in for the completion time when no container reported one.
    pub fn new(report: Option<&ExitReport>, now: Timestamp) -> EndMetrics {
        let containers: Vec<ContainerEnd> = report
            .map(|r| {
                r.containers
                    .iter()
                    .map(|c| ContainerEnd { name: c.name.clone(), terminated: c.terminated.clone() })
                    .collect()
            })
            .unwrap_or_default();
        let known: Vec<&Terminated> = containers.iter().filter_map(|c| c.terminated.as_ref()).collect();
        let all_known = !containers.is_empty() && known.len() == containers.len();
        let result = if known.iter().any(|t| t.exit_code != 0) {
            // One known failure fails the run, whatever the others did.
            RunResult::Failure
        } else if all_known {
            RunResult::Success
        } else {
            RunResult::Unknown
        };
        let time = |t: &Option<String>| t.as_deref().and_then(|t| t.parse::<Timestamp>().ok());
        let finished = known.iter().filter_map(|t| time(&t.finished_at)).max();
        let started = known.iter().filter_map(|t| time(&t.started_at)).min();
        let completed = finished.unwrap_or(now);
        let duration_seconds = match (started, finished, all_known) {
            (Some(started), Some(finished), true) => {
                Some((finished - started).total(jiff::Unit::Second).unwrap_or(0.0).max(0.0))
            }
            _ => None,
        };
        EndMetrics { result, completed, duration_seconds, containers }
    }

    pub fn families(&self) -> Vec<MetricFamily> {
        let completed = seconds(self.completed);
        let mut families = vec![
            family(
                "cronjob_last_completion_timestamp_seconds",
                "When the CronJob's last run ended, in Unix seconds.",
                vec![gauge(Vec::new(), completed)],
            ),
            family(
                "cronjob_last_result",
                "How the CronJob's last run ended: success, failure or unknown (the exit status could not be learned); always 1.",
                vec![gauge(vec![label("result", self.result.as_str())], 1.0)],
            ),
            family(
                "cronjob_last_exit_code",
                "Exit code of each main container in the CronJob's last run; -1 when not known.",
                self.containers
                    .iter()
                    .map(|c| {
                        let code = c.terminated.as_ref().map_or(UNKNOWN_EXIT_CODE, |t| f64::from(t.exit_code));
                        gauge(vec![label("container", &c.name)], code)
                    })
                    .collect(),
            ),
            family(
                "cronjob_last_termination_info",
                "Why each main container of the CronJob's last run ended (the kubelet's reason, and the signal that killed it); always 1.",
                self.containers
                    .iter()
                    .map(|c| {
                        let (reason, signal) =
                            c.terminated.as_ref().map_or(("Unknown".to_string(), String::new()), |t| {
                                (t.reason.clone().unwrap_or_else(|| default_reason(t.exit_code).into()), signal_name(t))
                            });
                        gauge(
                            vec![label("container", &c.name), label("reason", &reason), label("signal", &signal)],
                            1.0,
                        )
                    })
                    .collect(),
            ),
        ];
        if let Some(duration) = self.duration_seconds {
            families.push(family(
                "cronjob_last_duration_seconds",
                "How long the CronJob's last run took, from its first main container's start to its last one's end.",
                vec![gauge(Vec::new(), duration)],
            ));
        }
        match self.result {
            RunResult::Success => families.push(family(
                "cronjob_last_success_timestamp_seconds",
                "When the CronJob's last successful run ended, in Unix seconds.",
                vec![gauge(Vec::new(), completed)],
            )),
            RunResult::Failure => families.push(family(
                "cronjob_last_failure_timestamp_seconds",
                "When the CronJob's last failed run ended, in Unix seconds.",
                vec![gauge(Vec::new(), completed)],
            )),
            RunResult::Unknown => {}
        }
        // An empty family would render nothing and be refused by nobody, but it says nothing.
        families.retain(|f| !f.metric.is_empty());
        families
    }

    /// The push body, text format 0.0.4.
    pub fn to_text(&self) -> String {
        text_write::to_text(&self.families())
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

fn label(name: &str, value: &str) -> LabelPair {
    LabelPair { name: Some(name.into()), value: Some(value.into()) }
}

fn gauge(label: Vec<LabelPair>, value: f64) -> Metric {
    Metric { label, gauge: Some(Gauge { value: Some(value) }), ..Metric::default() }
}

fn family(name: &str, help: &str, metric: Vec<Metric>) -> MetricFamily {
    MetricFamily {
        name: Some(name.into()),
        help: Some(help.into()),
        r#type: Some(MetricType::Gauge as i32),
        metric,
        unit: None,
    }
}

/// Unix seconds to the millisecond.
fn seconds(t: Timestamp) -> f64 {
    t.as_millisecond() as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit_status::ContainerExit;

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
                .map(|(name, t)| ContainerExit { name: name.to_string(), terminated: t.clone() })
                .collect(),
        }
    }

    fn now() -> Timestamp {
        "2025-11-22T00:05:00Z".parse().unwrap()
    }

    #[test]
    fn a_clean_exit_is_a_success_with_its_times() {
        let text = EndMetrics::new(Some(&report(&[("main", ended(0, Some("Completed"), None))])), now()).to_text();
        for line in [
            "cronjob_last_completion_timestamp_seconds 1.7637698505e+09",
            "cronjob_last_result{result=\"success\"} 1",
            "cronjob_last_exit_code{container=\"main\"} 0",
            "cronjob_last_termination_info{container=\"main\",reason=\"Completed\",signal=\"\"} 1",
            "cronjob_last_duration_seconds 247.5",
            "cronjob_last_success_timestamp_seconds 1.7637698505e+09",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert!(!text.contains("failure_timestamp"));
    }

    #[test]
    fn any_failed_container_fails_the_run_and_says_which() {
        let r =
            report(&[("main", ended(0, Some("Completed"), None)), ("uploader", ended(137, Some("OOMKilled"), None))]);
        let end = EndMetrics::new(Some(&r), now());
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
        let text = EndMetrics::new(Some(&r), now()).to_text();
        assert!(text.contains("{container=\"main\",reason=\"Error\",signal=\"SIGTERM\"}"), "{text}");
        assert!(text.contains("{container=\"other\",reason=\"Error\",signal=\"SIGTERM\"}"), "{text}");
    }

    #[test]
    fn an_unlearned_end_is_unknown_never_a_success() {
        for end in [EndMetrics::new(None, now()), EndMetrics::new(Some(&report(&[("main", None)])), now())] {
            assert_eq!(end.result, RunResult::Unknown);
            let text = end.to_text();
            assert!(text.contains("cronjob_last_result{result=\"unknown\"} 1"), "{text}");
            assert!(!text.contains("success_timestamp") && !text.contains("failure_timestamp"), "{text}");
            assert!(text.contains("cronjob_last_completion_timestamp_seconds 1.7637699e+09"), "now stands in: {text}");
        }
        let partly = report(&[("main", ended(0, None, None)), ("uploader", None)]);
        let text = EndMetrics::new(Some(&partly), now()).to_text();
        assert!(text.contains("cronjob_last_exit_code{container=\"uploader\"} -1"), "{text}");
        assert!(text.contains("{container=\"uploader\",reason=\"Unknown\",signal=\"\"}"), "{text}");
        assert!(!text.contains("cronjob_last_duration_seconds"), "no duration from half the run: {text}");
    }
}
