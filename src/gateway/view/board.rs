//! The CronJob board: one row per CronJob that cronpush's pushers report on, read from the
//! series of its group (DESIGN.md "Grouping key and metrics"), with a status a person reads at
//! a glance. The statuses follow the shipped alert rules (manifests/prometheus/rules.yml), so
//! that the board and the alerts tell the same story:
//! - `failed`: the last finished run failed (CronJobFailed);
//! - `late`: no start by the next slot plus its grace (CronJobNotScheduled), or a run past its
//!   maximum run time (CronJobRunningTooLong);
//! - `unknown`: the last run's exit status could not be learned (CronJobExitStatusUnknown), or
//!   nothing but a start has ever been heard;
//! - `running`: a run started and has not ended, within its maximum run time, or an attempt of
//!   it failed and its Job runs another (`retrying`, which no alert pages on);
//! - `suspended`: the CronJob is suspended (`cronjob_suspended`, pushed by the webhook) and
//!   nothing above holds: it is not late, as CronJobNotScheduled is quiet;
//! - `ok`: the last run succeeded and the next one is not overdue.
//!
//! A group is a CronJob's when its grouping key has `namespace` and `cronjob` labels and it
//! holds at least one `cronjob_*` family, whatever its `job` value (configurable).

use serde::Serialize;

use super::selection::Page;
use crate::gateway::store::clock::seconds;
use crate::gateway::store::cronjob_series::{ContainerEnd, container_ends, label, value};
use crate::gateway::store::{Group, GroupingKey, Nanos, Store};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    // In the order the board lists them: problems first.
    Failed,
    Late,
    Unknown,
    Running,
    /// `spec.suspend`, as the webhook pushed it: no run starts, and none is late.
    Suspended,
    Ok,
}

/// The statuses by name, as the filters take them, in the board's order.
pub const BOARD_STATUSES: &[&str] = &["failed", "late", "unknown", "running", "suspended", "ok"];

impl Status {
    pub const ALL: [Status; 6] =
        [Status::Failed, Status::Late, Status::Unknown, Status::Running, Status::Suspended, Status::Ok];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Failed => "failed",
            Status::Late => "late",
            Status::Unknown => "unknown",
            Status::Running => "running",
            Status::Suspended => "suspended",
            Status::Ok => "ok",
        }
    }
}

/// One CronJob on the board. Times are Unix seconds, as pushed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CronJobRow {
    /// The grouping key's `cluster` (`cronpush webhook --cluster-name`), when one gateway
    /// serves several clusters: the same namespace and name may be in each.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    pub namespace: String,
    pub cronjob: String,
    /// The group's `job` label.
    pub job: String,
    /// The whole grouping key, which may hold more labels than these three.
    #[serde(skip)]
    pub key: GroupingKey,
    pub status: Status,
    /// Why the status is what it is, in a sentence.
    pub reason: String,
    pub schedule: Option<String>,
    pub timezone: Option<String>,
    pub concurrency_policy: Option<String>,
    pub last_scheduled: Option<f64>,
    pub last_start: Option<f64>,
    /// The end of the last finished run; before `last_start` while a run is going on.
    pub last_completion: Option<f64>,
    pub last_duration_seconds: Option<f64>,
    /// `success`, `failure` or `unknown`, of the last finished run.
    pub last_result: Option<String>,
    pub containers: Vec<ContainerEnd>,
    pub last_success: Option<f64>,
    pub last_failure: Option<f64>,
    pub next_scheduled: Option<f64>,
    pub schedule_period_seconds: Option<f64>,
    pub grace_seconds: Option<f64>,
    pub max_run_duration_seconds: Option<f64>,
    /// Whether a run is going on now (started after the last completion).
    pub running: bool,
    /// Whether the CronJob is suspended (`cronjob_suspended`, pushed by the webhook).
    pub suspended: bool,
    /// When the gateway last accepted a push for the group, and last refused one.
    pub last_push: Option<f64>,
    pub last_push_failure: Option<f64>,
}

/// Every CronJob in `store`, by cluster (none first), then problems first, then by namespace
/// and name; `now` in Unix seconds.
pub fn rows(store: &Store, now: f64) -> Vec<CronJobRow> {
    let mut rows: Vec<CronJobRow> = store.groups().filter_map(|group| row(group, now)).collect();
    rows.sort_by(|a, b| {
        (&a.cluster, a.status, &a.namespace, &a.cronjob, &a.job).cmp(&(
            &b.cluster,
            b.status,
            &b.namespace,
            &b.cronjob,
            &b.job,
        ))
    });
    rows
}

/// The board as JSON (`GET /api/v1/cronjobs`), in the envelope of the other API answers; with
/// where the rows are in the whole selection when one page of it was asked for.
pub fn json(rows: &[CronJobRow], now: f64, page: Option<Page>) -> String {
    let mut data = serde_json::json!({"now": now, "cronjobs": rows});
    if let Some(page) = page {
        data["total"] = page.total.into();
        data["page"] = page.number.into();
        data["pages"] = page.count.into();
    }
    serde_json::json!({"status": "success", "data": data}).to_string()
}

/// The board's row of a group, if it is a CronJob's.
pub fn row(group: &Group, now: f64) -> Option<CronJobRow> {
    let namespace = group.key.get("namespace")?.to_string();
    let cronjob = group.key.get("cronjob")?.to_string();
    if !group.families.keys().any(|name| name.starts_with("cronjob_")) {
        return None;
    }
    let gauge = |name: &str| group.families.get(name).and_then(|f| f.metrics().first().and_then(|m| value(f.ty(), m)));
    let info = group.families.get("cronjob_info").and_then(|f| f.metrics().into_iter().next());
    let info_label = |name: &str| info.as_ref().and_then(|m| label(m, name)).map(str::to_string);
    let last_result = group.families.get("cronjob_last_result").and_then(|f| {
        f.metrics().iter().find(|m| value(f.ty(), m) == Some(1.0)).and_then(|m| label(m, "result").map(str::to_string))
    });

    let mut row = CronJobRow {
        cluster: group.key.get("cluster").map(str::to_string),
        namespace,
        cronjob,
        job: group.key.get("job").unwrap_or_default().to_string(),
        key: group.key.clone(),
        status: Status::Unknown,
        reason: String::new(),
        schedule: info_label("schedule").filter(|s| !s.is_empty()),
        timezone: info_label("timezone").filter(|s| !s.is_empty()),
        concurrency_policy: info_label("concurrency_policy").filter(|s| !s.is_empty()),
        last_scheduled: gauge("cronjob_last_scheduled_timestamp_seconds"),
        last_start: gauge("cronjob_last_start_timestamp_seconds"),
        last_completion: gauge("cronjob_last_completion_timestamp_seconds"),
        last_duration_seconds: gauge("cronjob_last_duration_seconds"),
        last_result,
        containers: containers(group),
        last_success: gauge("cronjob_last_success_timestamp_seconds"),
        last_failure: gauge("cronjob_last_failure_timestamp_seconds"),
        next_scheduled: gauge("cronjob_next_scheduled_timestamp_seconds"),
        schedule_period_seconds: gauge("cronjob_schedule_period_seconds"),
        grace_seconds: gauge("cronjob_schedule_grace_seconds"),
        max_run_duration_seconds: gauge("cronjob_max_run_duration_seconds"),
        running: false,
        suspended: gauge("cronjob_suspended") == Some(1.0),
        last_push: seconds_if_ever(group.last_push),
        last_push_failure: seconds_if_ever(group.last_failure),
    };
    row.running = row.last_start.is_some()
        && !last_scheduled_run_is_over(
            &row,
            gauge("cronjob_last_ended_scheduled_timestamp_seconds"),
            gauge("cronjob_previous_scheduled_timestamp_seconds"),
        );
    (row.status, row.reason) = judge(&row, now);
    Some(row)
}

/// The rules' "the last scheduled run is over" (rules.yml's header): an end push named its slot.
/// A group last pushed by a cronpush that did not name runs by their slots (it has no previous
/// slot) is judged by its timestamps: the start is stamped to the millisecond and the
/// completion is the kubelet's finishedAt, in whole seconds, so a run that ended within the
/// second it started has completion < start; the rules floor the start for the same reason.
fn last_scheduled_run_is_over(row: &CronJobRow, ended_slot: Option<f64>, previous_slot: Option<f64>) -> bool {
    match (ended_slot, row.last_scheduled) {
        (Some(ended), Some(slot)) if ended >= slot => true,
        _ if previous_slot.is_some() => false,
        _ => {
            matches!((row.last_start, row.last_completion), (Some(start), Some(completion)) if completion >= start.floor())
        }
    }
}

/// The status of a row and the sentence that explains it.
fn judge(row: &CronJobRow, now: f64) -> (Status, String) {
    // A suspended CronJob starts no run, as it was told (CronJobNotScheduled is quiet too).
    let overdue = match (row.next_scheduled, row.grace_seconds) {
        (Some(next), Some(grace)) if now - next > grace && !row.suspended => Some(now - next),
        _ => None,
    };
    if row.running {
        let start = row.last_start.unwrap_or(now);
        let running_for = now - start;
        return match row.max_run_duration_seconds {
            Some(max) if running_for > max => (
                Status::Late,
                format!(
                    "running for {}, longer than its maximum run time of {}",
                    duration_words(running_for),
                    duration_words(max)
                ),
            ),
            _ => (Status::Running, format!("running for {}", duration_words(running_for))),
        };
    }
    let ended = match row.last_result.as_deref() {
        Some("failure") => {
            let what = failed_containers(row);
            Some((Status::Failed, format!("the last run failed: {what}")))
        }
        Some("retrying") => {
            let what = failed_containers(row);
            Some((Status::Running, format!("an attempt failed ({what}); its Job runs another")))
        }
        Some("unknown") => {
            Some((Status::Unknown, "the last run ended, but its exit status could not be learned".to_string()))
        }
        Some(_) => None,
        None if row.last_start.is_some() => {
            Some((Status::Unknown, "a run started, and how it ended was never reported".to_string()))
        }
        None => Some((Status::Unknown, "no run has been reported yet".to_string())),
    };
    match (ended, overdue) {
        (Some((Status::Failed, why)), Some(late)) => {
            (Status::Failed, format!("{why}; and the next run is {} overdue", duration_words(late)))
        }
        (_, Some(late)) => (
            Status::Late,
            format!("the next run should have started {} ago, and its grace is over", duration_words(late)),
        ),
        (Some(ended), None) => ended,
        (None, None) if row.suspended => {
            (Status::Suspended, "suspended: no run starts until it is resumed; the last run succeeded".to_string())
        }
        (None, None) => (Status::Ok, "the last run succeeded".to_string()),
    }
}

/// `main exited with 3 (Error)` for each main container that failed.
fn failed_containers(row: &CronJobRow) -> String {
    let failed = failed_words(&row.containers);
    if failed.is_empty() { "a container failed".to_string() } else { failed.join(", ") }
}

/// `main exited with 3 (Error)`, for each of `containers` that exited with an error.
pub fn failed_words(containers: &[ContainerEnd]) -> Vec<String> {
    containers
        .iter()
        .filter(|c| c.exit_code > 0.0)
        .map(|c| format!("{} exited with {}", c.container, exit_words(c)))
        .collect()
}

/// `3 (Error)`, `137 (Error, SIGKILL)`, or `unknown` for the -1 of an exit code not learned.
pub fn exit_words(end: &ContainerEnd) -> String {
    if end.exit_code < 0.0 {
        return "unknown".to_string();
    }
    let mut words = format!("{}", end.exit_code);
    let details: Vec<&str> = [end.reason.as_str(), end.signal.as_str()].into_iter().filter(|s| !s.is_empty()).collect();
    if !details.is_empty() {
        words.push_str(&format!(" ({})", details.join(", ")));
    }
    words
}

/// `45s`, `3m 20s`, `2h 5m`, `3d 4h`: the two largest units, for people.
pub fn duration_words(seconds: f64) -> String {
    let total = seconds.abs().round() as u64;
    let (d, h, m, s) = (total / 86_400, total / 3_600 % 24, total / 60 % 60, total % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) if s == 0 => format!("{m}m"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, 0) => format!("{h}h"),
        (0, _, _) => format!("{h}h {m}m"),
        (_, 0, _) => format!("{d}d"),
        _ => format!("{d}d {h}h"),
    }
}

/// Each main container of the last finished run, with its termination reason and signal.
fn containers(group: &Group) -> Vec<ContainerEnd> {
    let Some(codes) = group.families.get("cronjob_last_exit_code") else { return Vec::new() };
    let terminations = group.families.get("cronjob_last_termination_info").map(|f| f.metrics()).unwrap_or_default();
    container_ends(codes.ty(), &codes.metrics(), &terminations)
}

fn seconds_if_ever(nanos: Nanos) -> Option<f64> {
    (nanos != 0).then(|| seconds(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::text_parse::parse;
    use crate::gateway::store::PushMethod;

    const NOW: f64 = 1_800_000_000.0;

    /// The start push of `cronpush start` for a run `ago` seconds ago in a `*/5` schedule.
    fn start(ago: f64, grace: f64, max: f64) -> String {
        let start = NOW - ago;
        format!(
            "cronjob_info{{schedule=\"*/5 * * * *\",timezone=\"Europe/Berlin\",concurrency_policy=\"Forbid\"}} 1\n\
             cronjob_last_scheduled_timestamp_seconds {start}\ncronjob_last_start_timestamp_seconds {start}.25\n\
             cronjob_next_scheduled_timestamp_seconds {}\ncronjob_schedule_period_seconds 300\n\
             cronjob_schedule_grace_seconds {grace}\ncronjob_max_run_duration_seconds {max}\n",
            start + 300.0
        )
    }

    /// The end push of `cronpush sidecar`, `took` seconds after the start `ago` seconds ago.
    fn end(ago: f64, took: f64, result: &str, code: i32, reason: &str, signal: &str) -> String {
        let end = NOW - ago + took;
        let outcome = match result {
            "success" => format!("cronjob_last_success_timestamp_seconds {end}\n"),
            "failure" => format!("cronjob_last_failure_timestamp_seconds {end}\n"),
            _ => String::new(),
        };
        format!(
            "cronjob_last_completion_timestamp_seconds {end}\ncronjob_last_result{{result=\"{result}\"}} 1\n\
             cronjob_last_exit_code{{container=\"main\"}} {code}\n\
             cronjob_last_termination_info{{container=\"main\",reason=\"{reason}\",signal=\"{signal}\"}} 1\n\
             cronjob_last_duration_seconds {took}\n{outcome}"
        )
    }

    fn board(groups: &[(&str, &str, String)]) -> Vec<CronJobRow> {
        let mut store = Store::new(&[]);
        for (namespace, cronjob, body) in groups {
            let key = GroupingKey::from_path("cronpush", false, &format!("/namespace/{namespace}/cronjob/{cronjob}"));
            let families = parse(body.as_bytes()).unwrap();
            store.apply_push(key.unwrap(), PushMethod::Update, families, 1_799_999_990_000_000_000).unwrap();
        }
        rows(&store, NOW)
    }

    fn status_of(body: String) -> (Status, String) {
        let row = board(&[("ns", "job", body)]).remove(0);
        (row.status, row.reason)
    }

    #[test]
    fn a_successful_run_within_its_schedule_is_ok() {
        let (status, why) = status_of(start(60.0, 120.0, 300.0) + &end(60.0, 12.0, "success", 0, "Completed", ""));
        assert_eq!((status, why.as_str()), (Status::Ok, "the last run succeeded"));
    }

    /// An end names its run by its slot (rules.yml's header): an earlier run that ends after
    /// the next one started (runs overlap, or its node's clock is ahead) closes only itself.
    #[test]
    fn only_its_own_end_closes_a_run() {
        let slot = NOW - 30.0;
        let named = |ended: f64| {
            format!(
                "cronjob_previous_scheduled_timestamp_seconds {}\ncronjob_last_ended_scheduled_timestamp_seconds {ended}\n",
                slot - 300.0
            )
        };
        // Completed 10 s ago, after this run's start 30 s ago: the run of the slot before.
        let earlier_end = start(30.0, 120.0, 300.0) + &end(30.0, 20.0, "success", 0, "Completed", "");
        let (status, why) = status_of(earlier_end.clone() + &named(slot - 300.0));
        assert_eq!((status, why.as_str()), (Status::Running, "running for 30s"));
        let (status, _) = status_of(earlier_end + &named(slot));
        assert_eq!(status, Status::Ok);
    }

    #[test]
    fn a_started_run_is_running_until_its_maximum_then_late() {
        let (status, why) = status_of(start(30.0, 120.0, 300.0));
        assert_eq!((status, why.as_str()), (Status::Running, "running for 30s"));
        // After a finished run, the next start makes it running again.
        let earlier = end(1_000.0, 10.0, "success", 0, "Completed", "");
        let (status, _) = status_of(earlier.clone() + &start(30.0, 120.0, 300.0));
        assert_eq!(status, Status::Running);
        let (status, why) = status_of(earlier + &start(400.0, 600.0, 300.0));
        assert_eq!(status, Status::Late);
        assert_eq!(why, "running for 6m 40s, longer than its maximum run time of 5m");
    }

    #[test]
    fn a_run_ending_in_the_second_it_started_is_not_running() {
        // Start stamped at .25, completion in whole seconds before it.
        let (status, _) = status_of(start(60.0, 120.0, 300.0) + &end(60.0, 0.0, "success", 0, "Completed", ""));
        assert_eq!(status, Status::Ok);
    }

    #[test]
    fn a_failed_run_says_which_container_and_how() {
        let (status, why) = status_of(start(60.0, 120.0, 300.0) + &end(60.0, 5.0, "failure", 137, "Error", "SIGKILL"));
        assert_eq!(status, Status::Failed);
        assert_eq!(why, "the last run failed: main exited with 137 (Error, SIGKILL)");
    }

    #[test]
    fn an_unlearned_exit_status_is_unknown_never_ok() {
        let (status, why) = status_of(start(60.0, 120.0, 300.0) + &end(60.0, 5.0, "unknown", -1, "Unknown", ""));
        assert_eq!(status, Status::Unknown);
        assert_eq!(why, "the last run ended, but its exit status could not be learned");
    }

    #[test]
    fn a_missed_slot_past_its_grace_is_late() {
        // Started 10 min ago: the next slot was 5 min ago, the grace 2 min.
        let (status, why) = status_of(start(600.0, 120.0, 300.0) + &end(600.0, 5.0, "success", 0, "Completed", ""));
        assert_eq!(status, Status::Late);
        assert_eq!(why, "the next run should have started 5m ago, and its grace is over");
        // Within the grace it is still ok.
        let (status, _) = status_of(start(400.0, 120.0, 300.0) + &end(400.0, 5.0, "success", 0, "Completed", ""));
        assert_eq!(status, Status::Ok);
        // A failed run stays failed, and says it is overdue too.
        let (status, why) = status_of(start(600.0, 120.0, 300.0) + &end(600.0, 5.0, "failure", 3, "Error", ""));
        assert_eq!(status, Status::Failed);
        assert_eq!(why, "the last run failed: main exited with 3 (Error); and the next run is 5m overdue");
    }

    /// A suspended CronJob starts nothing, as it was told: not late. What its last run did
    /// still shows.
    #[test]
    fn a_suspended_cronjob_is_suspended_not_late() {
        let late = start(600.0, 120.0, 300.0) + &end(600.0, 5.0, "success", 0, "Completed", "");
        let (status, why) = status_of(late.clone() + "cronjob_suspended 1\n");
        assert_eq!(
            (status, why.as_str()),
            (Status::Suspended, "suspended: no run starts until it is resumed; the last run succeeded")
        );
        assert_eq!(status_of(late + "cronjob_suspended 0\n").0, Status::Late, "resumed");
        let failed = start(600.0, 120.0, 300.0) + &end(600.0, 5.0, "failure", 3, "Error", "");
        let (status, why) = status_of(failed + "cronjob_suspended 1\n");
        assert_eq!((status, why.as_str()), (Status::Failed, "the last run failed: main exited with 3 (Error)"));
    }

    #[test]
    fn a_run_by_hand_has_no_slot_and_is_never_late() {
        let body = "cronjob_info{schedule=\"@daily\",timezone=\"UTC\",concurrency_policy=\"Allow\"} 1\n\
                    cronjob_last_start_timestamp_seconds 1799990000\ncronjob_schedule_grace_seconds 300\n"
            .to_string()
            + &end(10_000.0, 5.0, "success", 0, "Completed", "");
        let row = board(&[("ns", "manual", body)]).remove(0);
        assert_eq!((row.status, row.next_scheduled, row.last_scheduled), (Status::Ok, None, None));
    }

    #[test]
    fn problems_come_first_and_other_groups_are_not_cronjobs() {
        let ok = start(60.0, 120.0, 300.0) + &end(60.0, 5.0, "success", 0, "Completed", "");
        let failed = start(60.0, 120.0, 300.0) + &end(60.0, 5.0, "failure", 1, "Error", "");
        let rows = board(&[
            ("a", "ok", ok.clone()),
            ("b", "running", start(10.0, 120.0, 300.0)),
            ("c", "failed", failed),
            ("d", "late", start(900.0, 60.0, 300.0) + &end(900.0, 5.0, "success", 0, "Completed", "")),
            ("e", "nothing", "some_other_metric 1\n".to_string()),
            ("a", "also-ok", ok),
        ]);
        let order: Vec<(&str, Status)> = rows.iter().map(|r| (r.cronjob.as_str(), r.status)).collect();
        assert_eq!(
            order,
            [
                ("failed", Status::Failed),
                ("late", Status::Late),
                ("running", Status::Running),
                ("also-ok", Status::Ok),
                ("ok", Status::Ok)
            ]
        );
        let first = &rows[3];
        assert_eq!(first.schedule.as_deref(), Some("*/5 * * * *"));
        assert_eq!(first.timezone.as_deref(), Some("Europe/Berlin"));
        assert_eq!(
            first.containers,
            [ContainerEnd {
                container: "main".into(),
                exit_code: 0.0,
                reason: "Completed".into(),
                signal: String::new()
            }]
        );
    }

    #[test]
    fn durations_read_like_a_person_writes_them() {
        let cases =
            [(0.4, "0s"), (59.0, "59s"), (60.0, "1m"), (200.0, "3m 20s"), (7_500.0, "2h 5m"), (90_000.0, "1d 1h")];
        for (seconds, words) in cases {
            assert_eq!(duration_words(seconds), words, "{seconds}");
        }
    }

    #[test]
    fn an_attempt_that_its_job_retries_is_running_not_failed() {
        let (status, why) = status_of(start(60.0, 120.0, 300.0) + &end(60.0, 5.0, "retrying", 3, "Error", ""));
        assert_eq!(
            (status, why.as_str()),
            (Status::Running, "an attempt failed (main exited with 3 (Error)); its Job runs another")
        );
    }
}
