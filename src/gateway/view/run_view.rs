//! How a run of the history looks to a person: its outcome in a word and a colour, shared by the
//! board's strip and the CronJob page. The history keeps facts (store/runs.rs); whether a run
//! that never ended is still going or was lost is decided here, when it is shown.

use super::board::{duration_words, failed_words};
use crate::gateway::store::runs::{RunHistory, RunRecord};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    /// It ended, and how could not be learned.
    Unknown,
    Running,
    /// An attempt failed and its Job runs another.
    Retrying,
    /// It started and its end never came, and it cannot be running any more.
    Lost,
}

impl Outcome {
    /// The outcome of `run`, now; `newest` when no run started after it. A run that has not
    /// ended is still going while within the CronJob's maximum run time; without one, only the
    /// newest run is taken to be going (a CronJob's runs seldom overlap, and one that never
    /// ended is shown as lost rather than as running forever).
    pub fn of(run: &RunRecord, newest: bool, max_run_seconds: Option<f64>, now: f64) -> Outcome {
        if let Some(end) = &run.end {
            return match end.result.as_str() {
                "success" => Outcome::Success,
                "failure" => Outcome::Failure,
                _ => Outcome::Unknown,
            };
        }
        let live = match (max_run_seconds, run.start) {
            (Some(max), Some(start)) => now - start <= max,
            _ => newest,
        };
        match (live, &run.retried) {
            (true, Some(_)) => Outcome::Retrying,
            (true, None) => Outcome::Running,
            (false, _) => Outcome::Lost,
        }
    }

    /// The CSS class of its mark: `run-success` and so on.
    pub fn class(self) -> &'static str {
        match self {
            Outcome::Success => "run-success",
            Outcome::Failure => "run-failure",
            Outcome::Unknown => "run-unknown",
            Outcome::Running => "run-running",
            Outcome::Retrying => "run-retrying",
            Outcome::Lost => "run-lost",
        }
    }

    /// In one word, for a table's cell.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failed",
            Outcome::Unknown => "unknown",
            Outcome::Running => "running",
            Outcome::Retrying => "retrying",
            Outcome::Lost => "lost",
        }
    }

    pub fn words(self) -> &'static str {
        match self {
            Outcome::Success => "succeeded",
            Outcome::Failure => "failed",
            Outcome::Unknown => "ended, how is unknown",
            Outcome::Running => "running",
            Outcome::Retrying => "retrying after a failed attempt",
            Outcome::Lost => "lost: its end was never reported",
        }
    }
}

/// Each run of `history`, oldest first, with its outcome now (`now` in Unix seconds).
pub fn judged(history: &RunHistory, max_run_seconds: Option<f64>, now: f64) -> Vec<(&RunRecord, Outcome)> {
    let count = history.len();
    history.runs().enumerate().map(|(i, run)| (run, Outcome::of(run, i + 1 == count, max_run_seconds, now))).collect()
}

/// How long a run took, or has been going.
pub fn duration(run: &RunRecord, outcome: Outcome, now: f64) -> Option<f64> {
    match (&run.end, run.start) {
        (Some(end), start) => end.duration_seconds.or_else(|| start.map(|s| end.completed - s)),
        (None, Some(start)) if matches!(outcome, Outcome::Running | Outcome::Retrying) => Some(now - start),
        _ => None,
    }
}

/// `failed, 12s`: what a run's mark says when pointed at, with when it ran.
pub fn summary(run: &RunRecord, outcome: Outcome, now: f64, when: &str) -> String {
    let mut words = outcome.words().to_string();
    match duration(run, outcome, now) {
        Some(d) if matches!(outcome, Outcome::Running | Outcome::Retrying) => {
            words.push_str(&format!(", {} so far", duration_words(d)))
        }
        Some(d) => words.push_str(&format!(", {}", duration_words(d))),
        None => {}
    }
    if let Some(end) = run.end.as_ref().filter(|_| outcome == Outcome::Failure) {
        let failed = failed_words(&end.containers);
        if !failed.is_empty() {
            words.push_str(&format!(" ({})", failed.join(", ")));
        }
    }
    if !when.is_empty() {
        words.push_str(&format!(", {when}"));
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::store::cronjob_series::ContainerEnd;
    use crate::gateway::store::runs::RunEnd;

    const NOW: f64 = 1_800_000_000.0;

    fn run(start: f64, result: Option<&str>, retried: bool) -> RunRecord {
        let end = |result: &str, took: f64| RunEnd {
            slot: Some(start),
            completed: start + took,
            duration_seconds: Some(took),
            result: result.into(),
            attempt: None,
            containers: vec![ContainerEnd {
                container: "main".into(),
                exit_code: if result == "success" { 0.0 } else { 3.0 },
                reason: "Error".into(),
                signal: String::new(),
            }],
            logs: Vec::new(),
        };
        RunRecord {
            slot: Some(start),
            start: Some(start),
            starts: 1,
            end: result.map(|r| end(r, 12.0)),
            retried: retried.then(|| end("retrying", 5.0)),
        }
    }

    #[test]
    fn an_ended_run_is_what_its_end_said() {
        assert_eq!(Outcome::of(&run(NOW - 60.0, Some("success"), false), true, None, NOW), Outcome::Success);
        assert_eq!(Outcome::of(&run(NOW - 60.0, Some("failure"), true), false, None, NOW), Outcome::Failure);
        assert_eq!(Outcome::of(&run(NOW - 60.0, Some("unknown"), false), true, None, NOW), Outcome::Unknown);
    }

    #[test]
    fn a_run_without_its_end_is_running_only_while_it_can_be() {
        let open = run(NOW - 600.0, None, false);
        assert_eq!(Outcome::of(&open, true, Some(3600.0), NOW), Outcome::Running);
        assert_eq!(Outcome::of(&open, false, Some(3600.0), NOW), Outcome::Running, "runs may overlap");
        assert_eq!(Outcome::of(&open, true, Some(300.0), NOW), Outcome::Lost, "past its maximum run time");
        assert_eq!(Outcome::of(&open, true, None, NOW), Outcome::Running);
        assert_eq!(Outcome::of(&open, false, None, NOW), Outcome::Lost, "a newer run started");
        assert_eq!(Outcome::of(&run(NOW - 60.0, None, true), true, None, NOW), Outcome::Retrying);
    }

    #[test]
    fn the_summary_says_what_a_person_asks_first() {
        let failed = run(NOW - 60.0, Some("failure"), false);
        assert_eq!(
            summary(&failed, Outcome::Failure, NOW, "1m ago"),
            "failed, 12s (main exited with 3 (Error)), 1m ago"
        );
        let going = run(NOW - 65.0, None, false);
        assert_eq!(summary(&going, Outcome::Running, NOW, ""), "running, 1m 5s so far");
        assert_eq!(summary(&going, Outcome::Lost, NOW, ""), "lost: its end was never reported");
    }
}
