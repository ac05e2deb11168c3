//! The failed run's last log lines (issue 17, README "The failed run's last lines"), through
//! whole runs with every cronpush part real: the webhook admits the Job's Pod and serves the
//! relay, `cronpush start` and `cronpush sidecar` run as the kubelet runs them
//! (tests/support/kubelet.rs), the main container's output is its log in the fake API server's
//! `pods/log` (tests/support/kube_api.rs, which follows the real endpoint's `tailLines` and
//! `limitBytes`), and the lines land in a real cronpush gateway, or are refused by the reference
//! Pushgateway.
//!
//! What a user relies on: the lines come only when both the cluster's operator
//! (`--failed-run-logs`) and the CronJob (`cronpush.io/log-lines`) asked, only for a failed run,
//! as text (a `<script>` is kept as written; the pages escape it), at most 16 KiB a container
//! and flagged when cut, kept over a crash of the gateway, bounded in total; and nothing about
//! the metrics changes when the lines cannot be had (no RBAC, a plain Pushgateway).

use std::time::Duration;

use serde_json::{Value, json};
use support::Server;
use support::kubelet::{CronJobRun, MAIN, PodContainers as _, Run, run_to_end};

const RUNS: &str = "/api/v1/cronjobs/batch/sample-cronjob/runs";
const GROUP: &str = "/metrics/job/cronpush/namespace/batch/cronjob/sample-cronjob";
const LOGS: &str = "/api/v1/runs/logs/job/cronpush/namespace/batch/cronjob/sample-cronjob";

/// A main container that writes 100 lines, a hostile one among the last, and fails with 3.
const FAILING: &str = "for i in $(seq 1 99); do echo \"line $i of the backup\"; done; \
                       echo '<script>alert(1)</script>' >&2; exit 3";

/// The article's CronJob's run, admitted by a webhook with `flags`, the CronJob annotated with
/// `cronpush.io/log-lines: lines` when given, pushing to `gateway`.
fn admit(gateway: &Server, flags: &[&'static str], lines: Option<&str>) -> Run {
    let annotations = lines.map_or_else(|| json!({}), |n| json!({"cronpush.io/log-lines": n}));
    let spec = CronJobRun { cronjob_annotations: annotations, webhook_flags: flags.to_vec(), ..CronJobRun::article() };
    Run::admit_run(spec, &gateway.base, |_| {})
}

fn log_path(run: &Run) -> String {
    format!("/api/v1/namespaces/{}/pods/{}/log", run.spec.namespace, run.spec.pod)
}

/// The runs of the CronJob's group, newest first.
fn runs(gateway: &Server) -> Vec<Value> {
    let reply = gateway.get(RUNS);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let json: Value = serde_json::from_str(&reply.body).unwrap();
    json["data"]["cronjobs"][0]["runs"].as_array().cloned().unwrap_or_default()
}

fn sidecar_env(run: &Run, name: &str) -> Option<String> {
    run.environment("cronpush-sidecar").into_iter().find(|(n, _)| n == name).map(|(_, v)| v)
}

/// The last `n` lines that [`FAILING`] writes.
fn last_lines(n: usize) -> String {
    let mut lines: Vec<String> = (1..=99).map(|i| format!("line {i} of the backup\n")).collect();
    lines.push("<script>alert(1)</script>\n".into());
    lines[lines.len() - n..].concat()
}

#[test]
fn a_failed_runs_last_lines_are_kept_with_it_as_text_and_over_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let file = format!("--persistence.file={}", dir.path().join("gateway.redb").display());
    let mut gateway = Server::cronpush(&[&file]);
    let run = admit(&gateway, &["--failed-run-logs"], Some("40"));
    assert_eq!(sidecar_env(&run, "CRONPUSH_LOG_LINES").as_deref(), Some("40"));
    let terminated = run_to_end(&run, FAILING);
    assert_eq!(terminated["exitCode"], 3);
    let sidecar = run.log("cronpush-sidecar");
    assert!(sidecar.contains("delivered the failed run's last log lines"), "{sidecar}");
    assert_eq!(run.api.requests(&log_path(&run)), 1, "one read of pods/log, for the failed container");

    let expected = json!([{"container": MAIN, "text": last_lines(40), "truncated": false}]);
    let kept = runs(&gateway);
    assert_eq!(kept.len(), 1, "{kept:#?}");
    let end = &kept[0]["end"];
    assert_eq!(end["result"], "failure");
    assert_eq!(end["logs"], expected, "the last 40 lines, the <script> kept as written");
    assert!(gateway.pushed_series().iter().any(|s| s.starts_with("cronjob_last_exit_code{") && s.ends_with(" 3")));

    // Acknowledged means on disk: a kill -9 loses no line.
    gateway.signal("KILL");
    gateway.wait_exit(Duration::from_secs(10));
    let gateway = Server::cronpush(&[&file]);
    assert_eq!(runs(&gateway)[0]["end"]["logs"], expected, "kept over a crash of the gateway");
}

#[test]
fn a_long_log_keeps_its_last_16_kib_of_whole_lines_and_says_so() {
    let gateway = Server::cronpush(&[]);
    let run = admit(&gateway, &["--failed-run-logs"], Some("1000"));
    // 100 lines of 1000 bytes: the last 1000 lines are all of them, far over 16 KiB.
    run_to_end(&run, "for i in $(seq 1 100); do printf 'line %03d %0990d\\n' $i 0; done; exit 1");
    let logs = &runs(&gateway)[0]["end"]["logs"][0];
    let text = logs["text"].as_str().unwrap();
    assert_eq!(logs["truncated"], true);
    // limitBytes would keep the start of the selected lines (kuberuntime/logs/logs.go); the
    // relay keeps their end, where the error is: the last 16 whole lines.
    assert!(text.starts_with("line 085 "), "{}", &text[..40]);
    assert!(text.ends_with(&format!("line 100 {:0990}\n", 0)));
    assert_eq!(text.len(), 16 * 1000, "whole lines, within 16 KiB");
}

#[test]
fn without_the_flag_or_the_annotation_no_log_is_read_or_kept() {
    for (flags, lines) in [(&[][..], Some("40")), (&["--failed-run-logs"][..], None)] {
        let gateway = Server::cronpush(&[]);
        let run = admit(&gateway, flags, lines);
        assert_eq!(sidecar_env(&run, "CRONPUSH_LOG_LINES"), None, "{flags:?} {lines:?}");
        run_to_end(&run, FAILING);
        assert_eq!(run.api.requests(&log_path(&run)), 0, "{flags:?} {lines:?}: pods/log never asked");
        let kept = runs(&gateway);
        assert_eq!(kept[0]["end"]["result"], "failure", "{kept:#?}");
        assert_eq!(kept[0]["end"].get("logs"), None, "{flags:?} {lines:?}: no lines kept");
    }
}

#[test]
fn a_successful_run_has_no_lines() {
    let gateway = Server::cronpush(&[]);
    let run = admit(&gateway, &["--failed-run-logs"], Some("40"));
    run_to_end(&run, "echo all fine; exit 0");
    assert_eq!(run.api.requests(&log_path(&run)), 0);
    let kept = runs(&gateway);
    assert_eq!((kept[0]["end"]["result"].as_str(), kept[0]["end"].get("logs")), (Some("success"), None));
}

/// The series of the CronJob's group without their values: which series an end push left.
fn series_shape(gateway: &Server) -> Vec<String> {
    let mut shape: Vec<String> = gateway
        .pushed_series()
        .into_iter()
        .filter(|s| s.contains("cronjob=\"sample-cronjob\""))
        .map(|s| s.rsplit_once(' ').unwrap().0.to_string())
        .collect();
    shape.sort();
    shape
}

#[test]
fn without_the_pods_log_rbac_the_end_arrives_as_without_lines() {
    let plain = Server::cronpush(&[]);
    run_to_end(&admit(&plain, &[], None), FAILING);

    let gateway = Server::cronpush(&[]);
    let run = admit(&gateway, &["--failed-run-logs"], Some("40"));
    run.api.forbid_pod_logs();
    run_to_end(&run, FAILING);
    assert_eq!(series_shape(&gateway), series_shape(&plain), "the same end metrics as a run without lines");
    let series = gateway.pushed_series();
    assert!(series.iter().any(|s| s.starts_with("cronjob_last_exit_code{") && s.ends_with(" 3")), "{series:#?}");
    assert_eq!(runs(&gateway)[0]["end"].get("logs"), None);
    let webhook = run.webhook.log();
    assert!(webhook.contains("cannot read the failed container's last log lines"), "{webhook}");
    assert!(webhook.contains("pods/log RBAC"), "the log says what to do: {webhook}");
    assert!(run.log("cronpush-sidecar").contains("no log lines of the failed containers"));
}

#[test]
fn a_plain_pushgateway_refuses_the_lines_and_gets_the_metrics_as_before() {
    let reference = Server::reference(&[]);
    let run = admit(&reference, &["--failed-run-logs"], Some("40"));
    // run_to_end asserts that the sidecar exits 0 within the grace period.
    run_to_end(&run, FAILING);
    assert_eq!(run.api.requests(&log_path(&run)), 1, "the lines were read, then refused");
    let series = reference.pushed_series();
    assert!(series.iter().any(|s| s.starts_with("cronjob_last_exit_code{") && s.ends_with(" 3")), "{series:#?}");
    assert!(series.iter().any(|s| s.starts_with("cronjob_last_result{") && s.contains("result=\"failure\"")));
    let sidecar = run.log("cronpush-sidecar");
    let refused: Vec<&str> = sidecar.lines().filter(|l| l.contains("the gateway does not keep log lines")).collect();
    assert_eq!(refused.len(), 1, "one line says so: {sidecar}");
    assert!(!sidecar.contains("ERROR") && !sidecar.contains("level=error"), "{sidecar}");
}

/// A failed run of `cronjob`, as the pushers leave it in the gateway: its start and end.
fn failed_run(gateway: &Server, cronjob: &str, slot: u64) {
    let group = GROUP.replace("sample-cronjob", cronjob);
    let start =
        format!("cronjob_last_start_timestamp_seconds {slot}\ncronjob_last_scheduled_timestamp_seconds {slot}\n");
    assert_eq!(gateway.post(&group, &start).status, 200);
    let end = format!(
        "cronjob_last_completion_timestamp_seconds {}\ncronjob_last_result{{result=\"failure\"}} 1\n\
         cronjob_last_exit_code{{container=\"main\"}} 3\ncronjob_last_ended_scheduled_timestamp_seconds {slot}\n",
        slot + 10
    );
    assert_eq!(gateway.post(&group, &end).status, 200);
}

fn deliver(gateway: &Server, cronjob: &str, body: &str) -> (u16, String) {
    let reply =
        gateway.request("PUT", &LOGS.replace("sample-cronjob", cronjob), &[("content-type", "application/json")], body);
    (reply.status, reply.body)
}

#[test]
fn the_lines_of_all_cronjobs_share_one_bound_and_the_runs_stay() {
    let gateway = Server::cronpush(&["--history.max-log-bytes=25000"]);
    let lines =
        |slot: u64| format!(r#"{{"slot":{slot},"logs":[{{"container":"main","text":"{}"}}]}}"#, "x".repeat(10_000));
    for (cronjob, slot) in [("first", 1_800_000_000), ("second", 1_800_000_060), ("third", 1_800_000_120)] {
        failed_run(&gateway, cronjob, slot);
        assert_eq!(deliver(&gateway, cronjob, &lines(slot)).0, 200);
    }
    let kept = |cronjob: &str| {
        let reply = gateway.get(&RUNS.replace("sample-cronjob", cronjob));
        let json: Value = serde_json::from_str(&reply.body).unwrap();
        let runs = json["data"]["cronjobs"][0]["runs"].as_array().unwrap().clone();
        (runs.len(), runs[0]["end"].get("logs").is_some())
    };
    assert_eq!(kept("first"), (1, false), "the oldest lines are forgotten; the run stays");
    assert_eq!((kept("second"), kept("third")), ((1, true), (1, true)));
}

#[test]
fn a_bad_delivery_is_refused_with_its_reason_and_changes_nothing() {
    let gateway = Server::cronpush(&[]);
    failed_run(&gateway, "sample-cronjob", 1_800_000_000);
    let before = gateway.get(RUNS).body;
    let too_long = format!(r#"{{"logs":[{{"container":"main","text":"{}"}}]}}"#, "x".repeat(16 * 1024 + 1));
    for (body, reason) in [
        ("{", "log lines refused: the body is not the JSON of log lines"),
        (r#"{"logs":[]}"#, "log lines refused: \"logs\" names no container"),
        (
            too_long.as_str(),
            "log lines refused: the text of container \"main\" is 16385 bytes, more than the 16384 allowed",
        ),
        (
            r#"{"logs":[{"container":"main","text":"a"},{"container":"main","text":"b"}]}"#,
            "log lines refused: container \"main\" is named twice",
        ),
    ] {
        let (status, text) = deliver(&gateway, "sample-cronjob", body);
        assert_eq!(status, 400, "{text}");
        assert!(text.starts_with(reason), "{text}");
    }
    let (status, text) = deliver(&gateway, "nothing-here", r#"{"logs":[{"container":"main","text":"a"}]}"#);
    assert_eq!(status, 404, "{text}");
    assert!(text.contains("no group"), "{text}");
    assert_eq!(gateway.get(RUNS).body, before, "nothing changed");
}
