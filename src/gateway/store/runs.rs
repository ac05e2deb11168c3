//! Run history: the last runs of a CronJob's group, read from the pushes the gateway already
//! receives (DESIGN.md "Grouping key and metrics"). `cronpush start` opens a run with its start
//! push (`cronjob_last_start_timestamp_seconds`); `cronpush sidecar` closes it with its end push
//! (`cronjob_last_result`). Reading them changes nothing about the push or its answer: a plain
//! Pushgateway client's pushes carry neither family and make no run.
//!
//! The history keeps facts, not judgements: a run whose end never came stays open here, and the
//! views decide when an open run is still running and when it is lost.

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;

use super::cronjob_series::{ContainerEnd, container_ends, label, value};
use super::grouping::GroupingKey;
use crate::proto::client::MetricFamily;

/// How many runs a CronJob's history keeps unless told otherwise (`--history.runs`).
pub const DEFAULT_RUNS: usize = 50;
/// How many runs the histories of all CronJobs keep together unless told otherwise
/// (`--history.max-runs`): some 400 bytes each in memory, so about 8 MiB, which a Pi spares.
pub const DEFAULT_TOTAL_RUNS: usize = 20_000;
/// How many bytes of log lines the histories of all CronJobs hold together unless told otherwise
/// (`--history.max-log-bytes`): 256 failed containers' worth at the most each may bring.
pub const DEFAULT_MAX_LOG_BYTES: usize = 4 << 20;
/// The most one container's log text may hold: what the relay asks `pods/log` for.
pub const MAX_LOG_TEXT_BYTES: usize = 16 << 10;

/// What one push tells about a run. Times are Unix seconds, as pushed.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEvent {
    /// A start push: a run, or another attempt of it, began.
    Started { slot: Option<f64>, start: f64 },
    /// An end push: an attempt of a run ended. `retrying` when its Job runs another Pod, so the
    /// run goes on.
    Ended(RunEnd),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunEnd {
    /// The run's schedule slot, when the end push named it (not for a run by hand; a retried
    /// attempt's from a sidecar older than `cronjob_last_retried_scheduled_timestamp_seconds`).
    pub slot: Option<f64>,
    pub completed: f64,
    pub duration_seconds: Option<f64>,
    /// `success`, `failure`, `unknown` or `retrying`.
    pub result: String,
    /// Which attempt of its Job the ending Pod was, when known.
    pub attempt: Option<u32>,
    pub containers: Vec<ContainerEnd>,
    /// The last lines of the failed main containers' logs, when the sidecar delivered them
    /// (opt-in: the webhook's `--failed-run-logs` and the CronJob's `cronpush.io/log-lines`).
    /// Forgotten first when the logs of all histories pass `--history.max-log-bytes`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<ContainerLog>,
}

/// The last lines of one container's log, as the relay fetched them from `pods/log`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerLog {
    pub container: String,
    /// Valid UTF-8, at most [`MAX_LOG_TEXT_BYTES`]; shown as text, never as markup.
    pub text: String,
    /// Whether lines before the text were left out to keep it within the byte limit: the text is
    /// the end of the lines asked for.
    pub truncated: bool,
}

impl ContainerLog {
    /// What it costs to hold, counted against `--history.max-log-bytes`.
    pub fn bytes(&self) -> usize {
        self.container.len() + self.text.len()
    }
}

fn logs_bytes(logs: &[ContainerLog]) -> usize {
    logs.iter().map(ContainerLog::bytes).sum()
}

/// One run of a CronJob: opened by its start, closed by its end, either of which may be missing
/// when a push did not arrive.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRecord {
    /// The schedule slot it ran for; none for a run started by hand.
    pub slot: Option<f64>,
    /// Its first attempt's start; none when only its end was heard.
    pub start: Option<f64>,
    /// How many start pushes it had: more than one when its Job retried in a new Pod.
    pub starts: u32,
    /// How its last attempt ended; none while it is open.
    pub end: Option<RunEnd>,
    /// A failed attempt's end while the Job runs another one.
    pub retried: Option<RunEnd>,
}

impl RunRecord {
    pub fn is_open(&self) -> bool {
        self.end.is_none()
    }

    fn log_bytes(&self) -> usize {
        [&self.end, &self.retried].into_iter().flatten().map(|e| logs_bytes(&e.logs)).sum()
    }
}

/// What a push of `families` into the group of `key` tells about a run, if anything: only a
/// CronJob's group, named as cronpush's pushers name it, has runs.
pub fn event(key: &GroupingKey, families: &BTreeMap<String, MetricFamily>) -> Option<RunEvent> {
    key.get("namespace")?;
    key.get("cronjob")?;
    let family = |name: &str| families.get(name);
    let gauge = |name: &str| family(name).and_then(first_value);
    if let Some(result) = family("cronjob_last_result").and_then(result) {
        let completed = gauge("cronjob_last_completion_timestamp_seconds")?;
        // A retried attempt did not end its run, and names it apart (pushers/end_metrics.rs).
        let slot = if result == "retrying" {
            gauge("cronjob_last_retried_scheduled_timestamp_seconds")
        } else {
            gauge("cronjob_last_ended_scheduled_timestamp_seconds")
        };
        return Some(RunEvent::Ended(RunEnd {
            slot,
            completed,
            duration_seconds: gauge("cronjob_last_duration_seconds"),
            result,
            attempt: gauge("cronjob_last_attempt").filter(|a| *a >= 1.0).map(|a| a as u32),
            containers: containers(family("cronjob_last_exit_code"), family("cronjob_last_termination_info")),
            logs: Vec::new(),
        }));
    }
    // A run by hand pushes its start under a name of its own, and no slot (`start_metrics`).
    if let Some(start) = gauge("cronjob_last_manual_start_timestamp_seconds") {
        return Some(RunEvent::Started { slot: None, start });
    }
    let start = gauge("cronjob_last_start_timestamp_seconds")?;
    let slot = gauge("cronjob_last_scheduled_timestamp_seconds");
    Some(RunEvent::Started { slot, start })
}

/// The last runs of one CronJob, oldest first, at most `limit`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunHistory {
    runs: VecDeque<RunRecord>,
    /// The bytes of the log lines its runs hold, kept as they change so that the store can
    /// bound all histories' logs without reading every run.
    #[serde(skip)]
    log_bytes: usize,
}

/// Which end of a run log lines are for: the run's slot (none for a run by hand) and the
/// attempt of its Job that ended (none when the relay could not read the Job).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EndedAttempt {
    pub slot: Option<f64>,
    pub attempt: Option<u32>,
}

impl RunHistory {
    /// A history as it was kept, oldest first.
    pub fn from_runs(runs: impl IntoIterator<Item = RunRecord>) -> RunHistory {
        let runs: VecDeque<RunRecord> = runs.into_iter().collect();
        let log_bytes = runs.iter().map(RunRecord::log_bytes).sum();
        RunHistory { runs, log_bytes }
    }

    /// The bytes of log lines its runs hold.
    pub fn log_bytes(&self) -> usize {
        self.log_bytes
    }

    /// Keeps `logs` with the end of the run that `ended` names: the run of that slot whose end,
    /// or failed attempt before a retry, is that attempt; else the latest run that ended, since
    /// the delivery follows the end push at once. Replaces what that end held. False when no run
    /// has ended.
    pub fn attach_logs(&mut self, ended: EndedAttempt, logs: Vec<ContainerLog>) -> bool {
        let is_it =
            |end: &Option<RunEnd>| end.as_ref().is_some_and(|e| ended.attempt.is_none() || e.attempt == ended.attempt);
        // Newest first: a slot's run is the latest of that slot.
        let named = self
            .runs
            .iter()
            .rposition(|r| r.slot == ended.slot && (is_it(&r.end) || is_it(&r.retried)))
            .map(|i| (i, is_it(&self.runs[i].end)));
        let latest = || {
            self.runs
                .iter()
                .rposition(|r| r.end.is_some() || r.retried.is_some())
                .map(|i| (i, self.runs[i].end.is_some()))
        };
        let Some((index, to_end)) = named.or_else(latest) else {
            return false;
        };
        let run = &mut self.runs[index];
        let before = run.log_bytes();
        if let Some(end) = if to_end { run.end.as_mut() } else { run.retried.as_mut() } {
            end.logs = logs;
        }
        self.log_bytes = self.log_bytes - before + run.log_bytes();
        true
    }

    /// When the oldest log lines it holds were for: the completion of the end that holds them.
    pub fn oldest_logs(&self) -> Option<f64> {
        self.runs
            .iter()
            .flat_map(|r| [&r.retried, &r.end])
            .flatten()
            .filter(|e| !e.logs.is_empty())
            .map(|e| e.completed)
            .min_by(f64::total_cmp)
    }

    /// Forgets the oldest log lines it holds (those of one end); the run stays.
    pub fn forget_oldest_logs(&mut self) {
        let Some(oldest) = self.oldest_logs() else { return };
        let end = self
            .runs
            .iter_mut()
            .flat_map(|r| [&mut r.retried, &mut r.end])
            .flatten()
            .find(|e| !e.logs.is_empty() && e.completed == oldest);
        if let Some(end) = end {
            self.log_bytes -= logs_bytes(&end.logs);
            end.logs = Vec::new();
        }
    }

    pub fn runs(&self) -> impl DoubleEndedIterator<Item = &RunRecord> {
        self.runs.iter()
    }

    pub fn len(&self) -> usize {
        self.runs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// Takes in what a push told, keeping at most `limit` runs (the oldest go first).
    pub fn record(&mut self, event: RunEvent, limit: usize) {
        match event {
            RunEvent::Started { slot, start } => self.started(slot, start),
            RunEvent::Ended(end) => self.ended(end),
        }
        self.keep_last(limit);
    }

    /// Forgets the oldest run, if any.
    pub fn forget_oldest(&mut self) {
        if let Some(run) = self.runs.pop_front() {
            self.log_bytes -= run.log_bytes();
        }
    }

    /// Forgets the oldest runs beyond `limit`.
    pub fn keep_last(&mut self, limit: usize) {
        while self.runs.len() > limit {
            self.forget_oldest();
        }
    }

    fn started(&mut self, slot: Option<f64>, start: f64) {
        // The Job's next Pod after a failed attempt starts the same run again.
        if let Some(run) = self.runs.iter_mut().rev().find(|r| r.is_open() && r.slot.is_some() && r.slot == slot) {
            run.starts += 1;
            return;
        }
        self.runs.push_back(RunRecord { slot, start: Some(start), starts: 1, end: None, retried: None });
    }

    fn ended(&mut self, end: RunEnd) {
        let retrying = end.result == "retrying";
        // The open run of the slot the end names; without a slot (a run by hand, a retried
        // attempt pushed by an older sidecar), the latest open run.
        let run = match end.slot {
            Some(slot) => self.runs.iter_mut().rev().find(|r| r.is_open() && r.slot == Some(slot)),
            None => self.runs.iter_mut().rev().find(|r| r.is_open()),
        };
        match run {
            // An end pushed again (the sidecar's final push after a first one with less known)
            // replaces the one before, and the lines that came with it.
            Some(run) => {
                let before = run.log_bytes();
                if retrying {
                    run.retried = Some(end);
                } else {
                    run.end = Some(end);
                }
                self.log_bytes = self.log_bytes - before + run.log_bytes();
            }
            // An end whose start was never heard (the start push failed, or the history began
            // after it) is still a run.
            None => {
                let start = end.duration_seconds.map(|d| end.completed - d);
                let slot = end.slot;
                let (end, retried) = if retrying { (None, Some(end)) } else { (Some(end), None) };
                self.runs.push_back(RunRecord { slot, start, starts: 0, end, retried });
            }
        }
    }
}

fn first_value(family: &MetricFamily) -> Option<f64> {
    family.metric.first().and_then(|m| value(family.r#type(), m))
}

/// The `result` label of the series set to 1.
fn result(family: &MetricFamily) -> Option<String> {
    let metric = family.metric.iter().find(|m| value(family.r#type(), m) == Some(1.0))?;
    label(metric, "result").map(str::to_string)
}

fn containers(codes: Option<&MetricFamily>, terminations: Option<&MetricFamily>) -> Vec<ContainerEnd> {
    let Some(codes) = codes else { return Vec::new() };
    let terminations = terminations.map(|f| f.metric.as_slice()).unwrap_or_default();
    container_ends(codes.r#type(), &codes.metric, terminations)
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use super::*;
    use crate::exit_status::{ContainerExit, Terminated};
    use crate::gateway::store::{PreparedPush, PushMethod, SeriesHasher};
    use crate::pushers::end_metrics::{EndMetrics, RunResult};
    use crate::pushers::start_metrics::StartMetrics;

    const SLOT: f64 = 1_800_000_000.0;

    fn at(seconds: f64) -> Timestamp {
        Timestamp::from_millisecond((seconds * 1000.0) as i64).unwrap()
    }

    /// What a push tells, read as the store reads a push.
    fn told(families: Vec<MetricFamily>) -> Option<RunEvent> {
        let key = GroupingKey::from_path("cronpush", false, "/namespace/ns/cronjob/backup").unwrap();
        PreparedPush::new(&SeriesHasher::default(), key, PushMethod::Update, families).run
    }

    /// What `cronpush start` pushes for the run of `slot` (none: a run by hand), started 2 s
    /// after it.
    fn start(slot: Option<f64>) -> Vec<MetricFamily> {
        StartMetrics {
            schedule: "*/5 * * * *".into(),
            time_zone: String::new(),
            concurrency_policy: "Allow".into(),
            started: at(slot.unwrap_or(SLOT) + 2.0),
            last_scheduled: slot.map(at),
            previous_scheduled: slot.map(|s| at(s - 300.0)),
            next_scheduled: slot.map(|s| at(s + 300.0)),
            period: None,
            grace_seconds: 60.0,
            max_run_seconds: None,
            cronjob_created: None,
            cronjob_last_success: None,
        }
        .families()
    }

    /// What `cronpush sidecar` pushes for the run of `slot` (none: a run by hand), ended `took`
    /// seconds after its start, its container `main` exiting with `code` (none: not known).
    fn end(
        slot: Option<f64>,
        took: f64,
        result: RunResult,
        code: Option<i32>,
        attempt: Option<u32>,
    ) -> Vec<MetricFamily> {
        let terminated = code.map(|exit_code| Terminated {
            exit_code,
            signal: None,
            reason: Some(if exit_code == 0 { "Completed" } else { "Error" }.into()),
            message: None,
            started_at: None,
            finished_at: None,
        });
        EndMetrics {
            result,
            completed: at(slot.unwrap_or(SLOT) + 2.0 + took),
            duration_seconds: took,
            containers: vec![ContainerExit { name: "main".into(), terminated, restarts: 0 }],
            pod_reason: None,
            attempt,
            next_scheduled: None,
            slot: slot.map(at),
            previous_slot: None,
            success_slot: None,
        }
        .families()
    }

    fn history(pushes: &[Vec<MetricFamily>], limit: usize) -> Vec<RunRecord> {
        let mut history = RunHistory::default();
        for families in pushes {
            history.record(told(families.clone()).expect("a run event"), limit);
        }
        history.runs().cloned().collect()
    }

    #[test]
    fn a_start_opens_a_run_and_its_end_closes_it() {
        let runs = history(&[start(Some(SLOT)), end(Some(SLOT), 12.5, RunResult::Failure, Some(3), Some(1))], 50);
        assert_eq!(runs.len(), 1);
        let run = &runs[0];
        assert_eq!((run.slot, run.start, run.starts), (Some(SLOT), Some(SLOT + 2.0), 1));
        let end = run.end.as_ref().expect("closed");
        assert_eq!((end.result.as_str(), end.completed, end.duration_seconds), ("failure", SLOT + 14.5, Some(12.5)));
        assert_eq!(end.attempt, Some(1));
        assert_eq!(
            end.containers,
            vec![ContainerEnd {
                container: "main".into(),
                exit_code: 3.0,
                reason: "Error".into(),
                signal: String::new()
            }]
        );
    }

    #[test]
    fn a_plain_pushgateway_push_tells_nothing() {
        let parse = |body: &str| crate::exposition::text_parse::parse(body.as_bytes()).unwrap();
        assert_eq!(told(parse("backup_last_success 1.7e9\nbackup_bytes{volume=\"a\"} 12\n")), None);
        assert_eq!(told(parse("cronjob_info{schedule=\"@daily\"} 1\n")), None, "no start and no end");
    }

    #[test]
    fn a_run_that_never_ends_stays_open_beside_the_next() {
        let next = SLOT + 300.0;
        let runs = history(
            &[start(Some(SLOT)), start(Some(next)), end(Some(next), 1.0, RunResult::Success, Some(0), None)],
            50,
        );
        assert_eq!(runs.len(), 2);
        assert!(runs[0].is_open(), "its end never came: the views judge it, the history keeps the fact");
        assert_eq!(runs[1].end.as_ref().map(|e| e.result.as_str()), Some("success"));
    }

    #[test]
    fn overlapping_runs_are_closed_by_the_slot_their_end_names() {
        let pushes =
            [start(Some(SLOT)), start(Some(SLOT + 300.0)), end(Some(SLOT), 400.0, RunResult::Success, Some(0), None)];
        let runs = history(&pushes, 50);
        assert_eq!(runs[0].end.as_ref().map(|e| e.completed), Some(SLOT + 402.0));
        assert!(runs[1].is_open());
    }

    #[test]
    fn a_retried_attempt_is_the_same_run() {
        let pushes = [
            start(Some(SLOT)),
            end(Some(SLOT), 5.0, RunResult::Retrying, Some(1), Some(1)),
            start(Some(SLOT)),
            end(Some(SLOT), 6.0, RunResult::Success, Some(0), Some(2)),
        ];
        let runs = history(&pushes[..3], 50);
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].starts, 2);
        assert!(runs[0].is_open(), "the Job runs another Pod: the run goes on");
        assert_eq!(runs[0].retried.as_ref().map(|r| r.containers[0].exit_code), Some(1.0));
        let runs = history(&pushes, 50);
        let end = runs[0].end.as_ref().expect("the second attempt ended it");
        assert_eq!((end.result.as_str(), end.attempt), ("success", Some(2)));
    }

    /// Overlapping runs (`concurrencyPolicy: Allow`): the older run's attempt fails and its Job
    /// retries it while the newer run is open. The retried attempt is the older run's, not
    /// the latest open one's.
    #[test]
    fn a_retried_attempt_of_an_older_run_stays_with_it_while_a_newer_run_is_open() {
        let newer = SLOT + 300.0;
        let pushes = [
            start(Some(SLOT)),
            start(Some(newer)),
            end(Some(SLOT), 5.0, RunResult::Retrying, Some(3), Some(1)),
            start(Some(SLOT)),
            end(Some(SLOT), 6.0, RunResult::Success, Some(0), Some(2)),
        ];
        let runs = history(&pushes, 50);
        assert_eq!(runs.len(), 2);
        let (older, newer) = (&runs[0], &runs[1]);
        assert_eq!(older.retried.as_ref().map(|r| (r.slot, r.containers[0].exit_code)), Some((Some(SLOT), 3.0)));
        assert_eq!((older.starts, older.end.as_ref().map(|e| e.attempt)), (2, Some(Some(2))));
        assert!(newer.retried.is_none() && newer.is_open(), "{newer:?}");
    }

    #[test]
    fn an_end_without_its_start_is_still_a_run() {
        let runs = history(&[end(Some(SLOT), 10.0, RunResult::Unknown, None, None)], 50);
        assert_eq!(runs.len(), 1);
        assert_eq!((runs[0].start, runs[0].starts), (Some(SLOT + 2.0), 0), "the start is the end less the duration");
        let end = runs[0].end.as_ref().unwrap();
        assert_eq!((end.attempt, end.containers[0].exit_code), (None, -1.0), "neither is known");
    }

    #[test]
    fn a_run_by_hand_has_no_slot() {
        let pushes = [start(Some(SLOT)), start(None), end(None, 3.0, RunResult::Success, Some(0), Some(1))];
        let runs = history(&pushes, 50);
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[1].slot, None);
        assert!(runs[1].end.is_some(), "an end that names no slot closes the latest open run");
        assert!(runs[0].is_open());
    }

    fn lines(text: &str) -> Vec<ContainerLog> {
        vec![ContainerLog { container: "main".into(), text: text.into(), truncated: false }]
    }

    /// Lines go with the end of the attempt they name: a retried attempt's to its failure, the
    /// last attempt's to the run's end; lines for an end nobody heard of go to the latest end.
    #[test]
    fn log_lines_are_kept_with_the_end_of_their_attempt() {
        let mut history = RunHistory::default();
        let pushes = [
            start(Some(SLOT)),
            end(Some(SLOT), 5.0, RunResult::Retrying, Some(1), Some(1)),
            start(Some(SLOT)),
            end(Some(SLOT), 6.0, RunResult::Failure, Some(2), Some(2)),
        ];
        assert!(!history.attach_logs(EndedAttempt { slot: Some(SLOT), attempt: Some(1) }, lines("x")), "no run yet");
        for push in &pushes[..2] {
            history.record(told(push.clone()).unwrap(), 50);
        }
        assert!(history.attach_logs(EndedAttempt { slot: Some(SLOT), attempt: Some(1) }, lines("first\n")));
        for push in &pushes[2..] {
            history.record(told(push.clone()).unwrap(), 50);
        }
        assert!(history.attach_logs(EndedAttempt { slot: Some(SLOT), attempt: Some(2) }, lines("second\n")));
        let run = history.runs().next().unwrap();
        assert_eq!(run.retried.as_ref().unwrap().logs, lines("first\n"));
        assert_eq!(run.end.as_ref().unwrap().logs, lines("second\n"));
        assert_eq!(history.log_bytes(), 2 * "main".len() + "first\n".len() + "second\n".len());
        // Sent again: replaced, not added.
        assert!(history.attach_logs(EndedAttempt { slot: Some(SLOT), attempt: Some(2) }, lines("again\n")));
        assert_eq!(history.log_bytes(), 2 * "main".len() + "first\n".len() + "again\n".len());
        assert!(history.attach_logs(EndedAttempt { slot: Some(SLOT + 300.0), attempt: None }, lines("latest\n")));
        assert_eq!(history.runs().next().unwrap().end.as_ref().unwrap().logs, lines("latest\n"));
        history.forget_oldest_logs();
        assert!(history.runs().next().unwrap().retried.as_ref().unwrap().logs.is_empty(), "the earlier end's go first");
        history.forget_oldest();
        assert_eq!((history.len(), history.log_bytes()), (0, 0));
        let json = serde_json::to_string(&RunHistory::from_runs([])).unwrap();
        assert!(!json.contains("log_bytes"), "{json}");
    }

    #[test]
    fn the_history_keeps_the_last_runs_only() {
        let pushes: Vec<Vec<MetricFamily>> = (0..5)
            .map(|i| SLOT + 300.0 * f64::from(i))
            .flat_map(|slot| [start(Some(slot)), end(Some(slot), 1.0, RunResult::Success, Some(0), None)])
            .collect();
        let runs = history(&pushes, 3);
        let slots: Vec<f64> = runs.iter().map(|r| r.slot.unwrap()).collect();
        assert_eq!(slots, vec![SLOT + 600.0, SLOT + 900.0, SLOT + 1200.0]);
    }
}
