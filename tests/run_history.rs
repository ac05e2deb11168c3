//! A CronJob's run history (`GET /api/v1/cronjobs/<namespace>/<cronjob>/runs`) as whole runs
//! leave it, with every cronpush part real: the webhook admits each Job's Pod (resolving the Job
//! and CronJob through the fake API server), `cronpush start` and `cronpush sidecar` run as the
//! kubelet runs the containers the webhook injected, the relay tells the sidecar how the main
//! container ended and which attempt of its Job the Pod was, and the gateway keeps the history
//! from the start and end pushes alone.
//!
//! What each part mirrors:
//! - several runs of one CronJob, one Job per schedule slot, as the CronJob controller creates
//!   them (pkg/controller/cronjob/cronjob_controllerv2.go: the Job named `<cronjob>-<Unix
//!   minutes>`, annotated `batch.kubernetes.io/cronjob-scheduled-timestamp`); the article's
//!   CronJob runs every minute, so the slots are the minutes before now;
//! - main containers that exit 0, exit 3 or are killed by a signal, their terminated state as
//!   containerd reports it (a signal N is exit code 128 + N with reason Error) and the kubelet's
//!   status manager writes it (kubernetes.md §3); the Job fixtures retry nothing
//!   (`backoffLimit: 0`), so a failed Pod is a failed run;
//! - a Job that may retry (`backoffLimit: 1`): its first Pod fails, the Job controller counts it
//!   in `status.failed` and creates another Pod of the same Job (job_controller.go `syncJob`,
//!   `manageJob`; kubernetes.md §6 "backoffLimit"), whose own start and end push the second
//!   attempt of the same run;
//! - the gateway stopped with SIGTERM or `kill -9` and started again on the same store file and
//!   address (a Pi's systemd restart, a Pod of the gateway rescheduled behind its Service), while
//!   two runs overlap (`concurrencyPolicy: Allow`) and one of them ends while it is down: its
//!   sidecar keeps retrying its push within the Pod's grace period;
//! - the group deleted by its push path (`curl -X DELETE`), and by the webhook's clean-up when
//!   the CronJob is deleted (`--delete-groups-of-deleted-cronjobs`; the fake API server's watch
//!   sends DELETED as kube-apiserver does), and the CronJob created again.
//!
//! kube-apiserver's part is tests/support/kube_api.rs, the kubelet's tests/support/kubelet.rs.
//! Unit tests of how pushes make runs are in src/gateway/store/runs.rs; the store file's side
//! with hand-made pushes in tests/persistence.rs.

use std::time::Duration;

use serde_json::{Value, json};
use support::Server;
use support::kubelet::{
    CronJobRun, PodContainers as _, Run, run_main, run_start, run_to_end, sigterm, start_main, stop_sidecar, wait,
};

const NAMESPACE: &str = "batch";
const CRONJOB: &str = "sample-cronjob";
const GROUP: &str = "/metrics/job/cronpush/namespace/batch/cronjob/sample-cronjob";

/// `count` schedule slots of the article's CronJob (`*/1 * * * *`), oldest first: the minutes
/// before now.
fn slots(count: i64) -> Vec<jiff::Timestamp> {
    let minute = jiff::Timestamp::now().as_second() / 60;
    (0..count).map(|i| jiff::Timestamp::from_second((minute - count + i) * 60).unwrap()).collect()
}

/// The run of `cronjob` for `slot`.
fn run_of(cronjob: &str, slot: jiff::Timestamp) -> CronJobRun {
    CronJobRun::at(NAMESPACE, cronjob, json!({}), slot)
}

/// The run history of batch/`cronjob` as the JSON API answers it, newest first: the runs of its
/// one group (none while it has no group, or an empty history).
fn history(gateway: &Server, cronjob: &str) -> Vec<Value> {
    let answer = gateway.get(&format!("/api/v1/cronjobs/{NAMESPACE}/{cronjob}/runs"));
    assert_eq!(answer.status, 200, "{}", answer.body);
    let body: Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(body["status"], "success", "{body}");
    match body["data"]["cronjobs"].as_array().unwrap().as_slice() {
        [] => Vec::new(),
        [group] => {
            assert_eq!(group["labels"], json!({"job": "cronpush", "namespace": NAMESPACE, "cronjob": cronjob}));
            group["runs"].as_array().unwrap().clone()
        }
        groups => panic!("one CronJob, one group: {groups:#?}"),
    }
}

/// Unix seconds, as the history keeps times.
fn seconds(t: jiff::Timestamp) -> f64 {
    t.as_nanosecond() as f64 / 1e9
}

/// A time of a terminated state (`startedAt`, `finishedAt`) in Unix seconds.
fn state_time(terminated: &Value, field: &str) -> f64 {
    seconds(terminated[field].as_str().unwrap().parse().unwrap())
}

fn close(a: &Value, b: f64) -> bool {
    a.as_f64().is_some_and(|a| (a - b).abs() < 0.001)
}

/// Each run's slot, in Unix seconds.
fn slots_of(runs: &[Value]) -> Vec<f64> {
    runs.iter().map(|r| r["slot"].as_f64().unwrap()).collect()
}

/// Checks an end (a run's, or its retried attempt's) against the main container's terminated
/// state: when it ended, how long it ran, the result and attempt, and how the container ended.
fn assert_end(end: &Value, terminated: &Value, result: &str, attempt: u64, signal: &str) {
    let finished = state_time(terminated, "finishedAt");
    let took = finished - state_time(terminated, "startedAt");
    assert!(close(&end["completed"], finished), "the kubelet's finishedAt {finished}: {end:#}");
    assert!(close(&end["duration_seconds"], took), "finishedAt less startedAt, {took}: {end:#}");
    assert_eq!(end["result"], result, "{end:#}");
    assert_eq!(end["attempt"], attempt, "{end:#}");
    let code = terminated["exitCode"].as_i64().unwrap();
    assert_eq!(
        end["containers"],
        json!([{"container": "main-batch", "exit_code": code as f64, "reason": terminated["reason"], "signal": signal}]),
        "{end:#}"
    );
}

/// Runs the Job's Pod to its end: start, sidecar, the main container `command`, its status, the
/// sidecar stopped. The sidecar's log says that the gateway acknowledged the end.
fn whole_run(run: &Run, command: &str) -> Value {
    let terminated = run_to_end(run, command);
    assert!(run.log("cronpush-sidecar").contains("pushed the end metrics"), "{}", run.log("cronpush-sidecar"));
    terminated
}

#[test]
fn successes_failures_and_a_retried_run_are_the_cronjobs_history_newest_first() {
    let gateway = Server::cronpush(&[]);
    let slots = slots(4);
    let first = Run::admit_run(run_of(CRONJOB, slots[0]), &gateway.base, |_| {});
    let succeeded = whole_run(&first, "exit 0");
    let exit_3 = first.next_run(run_of(CRONJOB, slots[1]), |_| {});
    let failed = whole_run(&exit_3, "sleep 0.2; exit 3");
    let sigkill = first.next_run(run_of(CRONJOB, slots[2]), |_| {});
    let killed = whole_run(&sigkill, "kill -KILL $$");
    assert_eq!(killed["exitCode"], 137);

    // The fourth run's Job may retry once; its first Pod fails.
    let retrying = first.next_run(run_of(CRONJOB, slots[3]), |_| {});
    retrying.api.modify("jobs", NAMESPACE, &retrying.spec.job, |job| job["spec"]["backoffLimit"] = json!(1));
    let before_retry = jiff::Timestamp::now();
    let first_attempt = whole_run(&retrying, "exit 3");
    let runs = history(&gateway, CRONJOB);
    assert_eq!(runs.len(), 4, "{runs:#?}");
    assert!(runs[0]["end"].is_null(), "the Job runs another Pod: the run goes on: {:#}", runs[0]);
    assert_eq!(runs[0]["starts"], 1);
    assert_end(&runs[0]["retried"], &first_attempt, "retrying", 1, "");
    assert_eq!(runs[0]["retried"]["slot"], runs[0]["slot"], "a retried attempt names its run: {:#}", runs[0]);

    // The Job controller's second Pod: the same run, started again.
    let second = retrying.next_attempt();
    run_start(&second);
    let runs = history(&gateway, CRONJOB);
    assert_eq!((runs.len(), &runs[0]["starts"]), (4, &json!(2)), "{runs:#?}");
    assert!(runs[0]["end"].is_null());
    let mut sidecar = second.start_sidecar();
    let second_attempt = run_main("sleep 0.1; exit 0");
    second.report_main(&second_attempt);
    stop_sidecar(&second, &mut sidecar, Duration::from_secs(30));

    let runs = history(&gateway, CRONJOB);
    let expected_slots: Vec<f64> = slots.iter().rev().map(|s| s.as_second() as f64).collect();
    assert_eq!(slots_of(&runs), expected_slots, "newest first: {runs:#?}");
    let starts: Vec<&Value> = runs.iter().map(|r| &r["starts"]).collect();
    assert_eq!(starts, [&json!(2), &json!(1), &json!(1), &json!(1)]);
    assert_end(&runs[0]["end"], &second_attempt, "success", 2, "");
    assert_end(&runs[0]["retried"], &first_attempt, "retrying", 1, "");
    assert_eq!(runs[0]["retried"]["slot"], runs[0]["slot"]);
    assert_end(&runs[1]["end"], &killed, "failure", 1, "SIGKILL");
    assert_end(&runs[2]["end"], &failed, "failure", 1, "");
    assert_end(&runs[3]["end"], &succeeded, "success", 1, "");
    for (run, terminated) in runs.iter().zip([&first_attempt, &killed, &failed, &succeeded]) {
        assert!(run["retried"].is_null() || run["slot"] == expected_slots[0], "{run:#}");
        assert_eq!(run["end"]["slot"], run["slot"], "the end names its run: {run:#}");
        // The start is `cronpush start`'s, before the main container ran (for the retried run,
        // its first attempt's).
        let start = run["start"].as_f64().unwrap();
        assert!(start >= run["slot"].as_f64().unwrap() && start <= state_time(terminated, "startedAt"), "{run:#}");
    }
    assert!(runs[0]["start"].as_f64().unwrap() >= seconds(before_retry), "the first attempt's start: {:#}", runs[0]);
}

/// `concurrencyPolicy: Allow` (the default): the older run's main container outlasts the next
/// slot, then fails, and its Job retries it in a new Pod while the newer run is still open. The
/// retried attempt is the older run's; the newer run has none.
#[test]
fn a_retried_attempt_stays_with_its_run_while_a_newer_run_is_open() {
    let gateway = Server::cronpush(&[]);
    let slots = slots(2);
    let older = Run::admit_run(run_of(CRONJOB, slots[0]), &gateway.base, |_| {});
    older.api.modify("jobs", NAMESPACE, &older.spec.job, |job| job["spec"]["backoffLimit"] = json!(1));
    run_start(&older);
    let mut older_sidecar = older.start_sidecar();
    let newer = older.next_run(run_of(CRONJOB, slots[1]), |_| {});
    run_start(&newer);
    let mut newer_sidecar = newer.start_sidecar();
    let failed = run_main("exit 3");
    older.report_main(&failed);
    stop_sidecar(&older, &mut older_sidecar, Duration::from_secs(30));
    let retried = whole_run(&older.next_attempt(), "exit 0");
    let newer_end = run_main("exit 0");
    newer.report_main(&newer_end);
    stop_sidecar(&newer, &mut newer_sidecar, Duration::from_secs(30));

    let runs = history(&gateway, CRONJOB);
    assert_eq!(slots_of(&runs), [slots[1].as_second() as f64, slots[0].as_second() as f64], "{runs:#?}");
    assert!(runs[0]["retried"].is_null(), "the newer run retried nothing: {:#}", runs[0]);
    assert_eq!(runs[0]["starts"], 1);
    assert_end(&runs[0]["end"], &newer_end, "success", 1, "");
    assert_eq!(runs[1]["starts"], 2);
    assert_end(&runs[1]["retried"], &failed, "retrying", 1, "");
    assert_end(&runs[1]["end"], &retried, "success", 2, "");
}

#[test]
fn the_history_survives_sigterm_and_kill_9_and_a_run_that_ends_across_a_kill_closes_its_own_record() {
    let dir = tempfile::tempdir().unwrap();
    let file = format!("--persistence.file={}", dir.path().join("gateway.redb").display());
    let mut gateway = Server::cronpush(&[&file]);
    // Started again, the gateway listens where the Pods' pushes go (the webhook injected this
    // address): the Service's, or a Pi's fixed port.
    let same_address = format!("--web.listen-address=127.0.0.1:{}", gateway.port);
    let slots = slots(5);
    let first = Run::admit_run(run_of(CRONJOB, slots[0]), &gateway.base, |_| {});
    whole_run(&first, "exit 0");
    whole_run(&first.next_run(run_of(CRONJOB, slots[1]), |_| {}), "exit 3");
    let before = history(&gateway, CRONJOB);
    assert_eq!(before.len(), 2, "{before:#?}");

    gateway.signal("TERM");
    assert_eq!(gateway.wait_exit(Duration::from_secs(15)), Some(0));
    gateway = Server::cronpush(&[&file, &same_address]);
    assert_eq!(history(&gateway, CRONJOB), before, "after SIGTERM");

    // Every end the sidecar saw acknowledged is on disk.
    whole_run(&first.next_run(run_of(CRONJOB, slots[2]), |_| {}), "exit 0");
    let before = history(&gateway, CRONJOB);
    assert_eq!(before.len(), 3, "{before:#?}");
    gateway.signal("KILL");
    gateway.wait_exit(Duration::from_secs(10));
    gateway = Server::cronpush(&[&file, &same_address]);
    assert_eq!(history(&gateway, CRONJOB), before, "after kill -9");

    // Two runs overlap: the older one's main container outlasts the next slot's start.
    let mut older = first.next_run(run_of(CRONJOB, slots[3]), |_| {});
    // Its sidecar logs each failed push, to show that it pushed while the gateway was down.
    let init = older.pod["spec"]["initContainers"].as_array_mut().unwrap();
    let sidecar = init.iter_mut().find(|c| c["name"] == "cronpush-sidecar").unwrap();
    sidecar["args"].as_array_mut().unwrap().push(json!("--log.level=debug"));
    run_start(&older);
    let mut older_sidecar = older.start_sidecar();
    let older_main = start_main("sleep 1");
    let newer = first.next_run(run_of(CRONJOB, slots[4]), |_| {});
    run_start(&newer);
    let mut newer_sidecar = newer.start_sidecar();
    let runs = history(&gateway, CRONJOB);
    assert_eq!(slots_of(&runs[..2]), [slots[4].as_second() as f64, slots[3].as_second() as f64], "{runs:#?}");
    assert!(runs[0]["end"].is_null() && runs[1]["end"].is_null(), "both running: {runs:#?}");
    let open = runs;

    gateway.signal("KILL");
    gateway.wait_exit(Duration::from_secs(10));
    // The older run ends while the gateway is down: its sidecar learns the end from the relay
    // and pushes until the gateway is back.
    let older_end = older_main.wait_end();
    older.report_main(&older_end);
    sigterm(&older_sidecar);
    let failed_push =
        support::eventually(Duration::from_secs(10), || older.log("cronpush-sidecar").contains("push failed"));
    assert!(failed_push, "{}", older.log("cronpush-sidecar"));
    gateway = Server::cronpush(&[&file, &same_address]);
    let (status, _) = wait(&mut older_sidecar, Duration::from_secs(30)).expect("the sidecar ended within its grace");
    assert_eq!(status.code(), Some(0));
    assert!(older.log("cronpush-sidecar").contains("pushed the end metrics"), "{}", older.log("cronpush-sidecar"));
    let runs = history(&gateway, CRONJOB);
    assert_eq!(runs.len(), 5, "{runs:#?}");
    assert_eq!(runs[0], open[0], "the newer run is still running");
    assert_eq!(runs[1]["start"], open[1]["start"], "the record opened before the kill: {:#}", runs[1]);
    assert_eq!(runs[1]["starts"], 1);
    assert_end(&runs[1]["end"], &older_end, "success", 1, "");
    assert_eq!(runs[2..], before[..], "the earlier runs as they were");

    let newer_end = run_main("exit 3");
    newer.report_main(&newer_end);
    stop_sidecar(&newer, &mut newer_sidecar, Duration::from_secs(30));
    let runs = history(&gateway, CRONJOB);
    let expected: Vec<f64> = slots.iter().rev().map(|s| s.as_second() as f64).collect();
    assert_eq!(slots_of(&runs), expected, "{runs:#?}");
    assert_eq!(runs[0]["start"], open[0]["start"]);
    assert_end(&runs[0]["end"], &newer_end, "failure", 1, "");
}

#[test]
fn each_cronjob_keeps_its_last_runs_and_no_more() {
    let gateway = Server::cronpush(&["--history.runs=3"]);
    let slots = slots(5);
    let other = Run::admit_run(run_of("other-cronjob", slots[0]), &gateway.base, |_| {});
    whole_run(&other, "exit 3");
    let others = history(&gateway, "other-cronjob");
    assert_eq!(others.len(), 1, "{others:#?}");

    for (i, slot) in slots.iter().enumerate() {
        whole_run(&other.next_run(run_of(CRONJOB, *slot), |_| {}), if i % 2 == 0 { "exit 0" } else { "exit 3" });
        let runs = history(&gateway, CRONJOB);
        assert_eq!(runs.len(), (i + 1).min(3), "{runs:#?}");
    }
    let runs = history(&gateway, CRONJOB);
    let last_three: Vec<f64> = slots[2..].iter().rev().map(|s| s.as_second() as f64).collect();
    assert_eq!(slots_of(&runs), last_three, "the oldest went first: {runs:#?}");
    let results: Vec<&Value> = runs.iter().map(|r| &r["end"]["result"]).collect();
    assert_eq!(results, [&json!("success"), &json!("failure"), &json!("success")]);
    assert_eq!(history(&gateway, "other-cronjob"), others, "another CronJob's runs are its own");

    // The other CronJob's next run goes into its own history.
    whole_run(&other.next_run(run_of("other-cronjob", slots[4]), |_| {}), "exit 0");
    let others = history(&gateway, "other-cronjob");
    assert_eq!(slots_of(&others), [slots[4].as_second() as f64, slots[0].as_second() as f64], "{others:#?}");
    assert_eq!(history(&gateway, CRONJOB), runs);
}

#[test]
fn the_history_goes_with_its_group_and_the_next_run_starts_a_new_one() {
    let gateway = Server::cronpush(&[]);
    let slots = slots(4);
    let spec = CronJobRun { webhook_flags: vec!["--delete-groups-of-deleted-cronjobs"], ..run_of(CRONJOB, slots[0]) };
    let first = Run::admit_run(spec, &gateway.base, |_| {});
    whole_run(&first, "exit 0");
    whole_run(&first.next_run(run_of(CRONJOB, slots[1]), |_| {}), "exit 3");
    assert_eq!(history(&gateway, CRONJOB).len(), 2);

    // `curl -X DELETE` of the group's push path.
    assert_eq!(gateway.delete(GROUP).status, 202);
    assert_eq!(history(&gateway, CRONJOB), Vec::<Value>::new());
    let third = first.next_run(run_of(CRONJOB, slots[2]), |_| {});
    let ended = whole_run(&third, "exit 0");
    let runs = history(&gateway, CRONJOB);
    assert_eq!(slots_of(&runs), [slots[2].as_second() as f64], "a new history: {runs:#?}");
    assert_eq!(runs[0]["starts"], 1);
    assert_end(&runs[0]["end"], &ended, "success", 1, "");

    // The CronJob deleted: the webhook deletes its group, and the history with it.
    first.api.remove("cronjobs", NAMESPACE, CRONJOB);
    let gone = support::eventually(Duration::from_secs(20), || history(&gateway, CRONJOB).is_empty());
    assert!(gone, "{:#?}", history(&gateway, CRONJOB));
    assert!(
        !support::group_names(&gateway, &["cronjob"]).contains(&CRONJOB.to_string()),
        "the group went with the CronJob"
    );

    // Created again under the same name (`kubectl apply`), its next run starts a new history.
    let fourth = first.next_run(run_of(CRONJOB, slots[3]), |_| {});
    let ended = whole_run(&fourth, "kill -TERM $$");
    let runs = history(&gateway, CRONJOB);
    assert_eq!(slots_of(&runs), [slots[3].as_second() as f64], "{runs:#?}");
    assert_eq!(runs[0]["starts"], 1);
    assert_end(&runs[0]["end"], &ended, "failure", 1, "SIGTERM");
}
