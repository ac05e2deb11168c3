//! One CronJob run from admission to alertable series, with every cronpush part real: the
//! webhook patches the Job's Pod, `cronpush start` and `cronpush sidecar` run as the kubelet
//! would run them, the relay answers the sidecar, and the series land in a real cronpush gateway.
//!
//! The test plays the kubelet, as kubernetes.md §3 describes it:
//! - it resolves each injected container's environment (plain values, and the Downward API's
//!   `metadata.namespace` and `metadata.name`) and mounts its volumes (the projected token is a
//!   file in a temporary directory, mapped at its mountPath), and runs the image's entrypoint
//!   (this binary) with the container's args, with nothing else in the environment;
//! - it runs the init container to completion, then starts the native sidecar, then the main
//!   "container" (a shell command that exits 0, exits 3, or is killed by a signal);
//! - it writes the main container's terminated state into the Pod's status in the fake API
//!   server, as the kubelet's status manager does, sometimes only after it has sent the sidecar
//!   SIGTERM (the status sync is asynchronous);
//! - it sends the sidecar SIGTERM once the main container has exited and waits for it no longer
//!   than the Pod's grace period.
//!
//! kube-apiserver's part (the Job and CronJob, the Pod, the TokenReview of the projected token)
//! is the fake API server of tests/support/kube_api.rs; the kubelet's, tests/support/kubelet.rs.
//!
//! Why on the fake: these runs need what a real API server cannot easily be made to do: a
//! status written after the sidecar's SIGTERM at a chosen moment, a relay that is down or signed
//! by a foreign CA, an expired token, a Pod ended whole by the kubelet with its reason. A whole
//! run against the real API server (TokenRequest, TokenReview, the Pod watch and the Job
//! controller's verdict) is in tests/cluster.rs.

use std::process::Child;
use std::time::Duration;

use serde_json::{Value, json};
use support::Server;
use support::kubelet::{
    MAIN, MainContainer, PodContainers as _, Run, kill_pod, run_main, run_start, run_to_end, sigterm, start_main,
    stop_sidecar, wait,
};
use support::webhook::{NAMESPACE, SERVICE};

/// The gateway's series of this CronJob's group, without the instance label's noise.
fn group_series(gateway: &Server) -> Vec<String> {
    gateway.pushed_series().into_iter().filter(|s| s.contains("cronjob=\"sample-cronjob\"")).collect()
}

fn has(series: &[String], prefix: &str, value: &str) -> bool {
    series.iter().any(|s| s.starts_with(prefix) && s.ends_with(&format!(" {value}")))
}

fn value_of(series: &[String], prefix: &str) -> f64 {
    let line = series.iter().find(|s| s.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix} in {series:#?}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// A whole run: start, sidecar, main command, status (before or after SIGTERM), stop.
fn whole_run(command: &str, status_after_sigterm: bool) -> (Server, Run, Value) {
    let gateway = Server::cronpush(&[]);
    let run = Run::admit(&gateway.base, 30);
    run_start(&run);
    let mut sidecar = run.start_sidecar();
    let terminated = run_main(command);
    if status_after_sigterm {
        sigterm(&sidecar);
        // The sidecar is now waiting at the relay; the kubelet's update lands a moment later.
        std::thread::sleep(Duration::from_millis(700));
        run.report_main(&terminated);
        let (status, _) = wait(&mut sidecar, Duration::from_secs(30)).expect("the sidecar ended");
        assert_eq!(status.code(), Some(0), "{}", run.log("cronpush-sidecar"));
    } else {
        run.report_main(&terminated);
        stop_sidecar(&run, &mut sidecar, Duration::from_secs(30));
    }
    (gateway, run, terminated)
}

#[test]
fn a_successful_run_pushes_its_start_and_its_success() {
    let (gateway, run, terminated) = whole_run("exit 0", false);
    let series = group_series(&gateway);
    let group = "{cronjob=\"sample-cronjob\",instance=\"\",job=\"cronpush\",namespace=\"batch\"}";
    // The start, from the facts the webhook resolved through the API.
    assert!(has(&series, &format!("cronjob_last_scheduled_timestamp_seconds{group}"), "1.7637696e+09"), "{series:#?}");
    assert!(has(&series, &format!("cronjob_next_scheduled_timestamp_seconds{group}"), "1.76376966e+09"));
    assert!(has(&series, &format!("cronjob_schedule_grace_seconds{group}"), "30"), "startingDeadlineSeconds");
    // The end.
    assert!(
        has(
            &series,
            "cronjob_last_result{cronjob=\"sample-cronjob\",instance=\"\",job=\"cronpush\",namespace=\"batch\",result=\"success\"}",
            "1"
        ),
        "{series:#?}"
    );
    assert!(has(&series, "cronjob_last_exit_code{container=\"main-batch\",cronjob=\"sample-cronjob\"", "0"));
    let finished: jiff::Timestamp = terminated["finishedAt"].as_str().unwrap().parse().unwrap();
    let completed = value_of(&series, "cronjob_last_completion_timestamp_seconds{");
    assert!((completed - finished.as_millisecond() as f64 / 1000.0).abs() < 0.001, "the kubelet's finishedAt");
    assert_eq!(value_of(&series, "cronjob_last_success_timestamp_seconds{"), completed);
    assert!(series.iter().all(|s| !s.starts_with("cronjob_last_failure_timestamp_seconds")));
    let started = value_of(&series, "cronjob_last_start_timestamp_seconds{");
    assert!(started <= completed, "the start was pushed before the end");
    assert!(run.log("cronpush-sidecar").contains("pushed the end metrics"));
}

#[test]
fn a_failing_run_whose_status_arrives_late_is_a_failure_with_its_code() {
    let (gateway, _run, _) = whole_run("exit 3", true);
    let series = group_series(&gateway);
    assert!(has(&series, "cronjob_last_exit_code{container=\"main-batch\"", "3"), "{series:#?}");
    assert!(series.iter().any(|s| s.starts_with("cronjob_last_result{") && s.contains("result=\"failure\"")));
    assert!(series.iter().any(|s| s.starts_with("cronjob_last_failure_timestamp_seconds{")));
    assert!(series.iter().any(|s| s.contains("reason=\"Error\",signal=\"\"")), "{series:#?}");
}

#[test]
fn a_run_killed_by_a_signal_says_which() {
    let (gateway, _run, terminated) = whole_run("kill -KILL $$", false);
    assert_eq!(terminated["exitCode"], 137);
    let series = group_series(&gateway);
    assert!(has(&series, "cronjob_last_exit_code{container=\"main-batch\"", "137"), "{series:#?}");
    assert!(series.iter().any(|s| s.starts_with("cronjob_last_termination_info{") && s.contains("signal=\"SIGKILL\"")));
}

#[test]
fn with_the_gateway_down_the_job_still_succeeds_and_nothing_waits_long() {
    let closed = format!("http://127.0.0.1:{}", support::free_port());
    let grace = 6;
    let run = Run::admit(&closed, grace);
    let took = run_start(&run);
    assert!(took < Duration::from_secs(7), "start gave up within its timeout (5 s): {took:?}");
    let mut sidecar = run.start_sidecar();
    run.report_main(&run_main("exit 0"));
    let took = stop_sidecar(&run, &mut sidecar, Duration::from_secs(grace as u64));
    assert!(took < Duration::from_secs(grace as u64), "{took:?}");
    assert!(run.log("cronpush-sidecar").contains("could not push the end metrics"), "{}", run.log("cronpush-sidecar"));
    assert!(run.log("cronpush-start").contains("could not push the start metrics"));
}

/// The series of a group that one run of the fixture's CronJob cannot change: its schedule
/// facts and the slots that name its runs (every run here is the same slot's, so an end names
/// the same run as the one before), the push times (reduced to `T`), and the last success and
/// the slot it answered for, which a run that did not succeed leaves standing: it still is
/// the last success.
const NOT_PER_RUN: [&str; 14] = [
    "cronjob_info{",
    "cronjob_last_scheduled_timestamp_seconds{",
    "cronjob_last_created_scheduled_timestamp_seconds{",
    "cronjob_previous_scheduled_timestamp_seconds{",
    "cronjob_last_ended_scheduled_timestamp_seconds{",
    "cronjob_last_ended_previous_scheduled_timestamp_seconds{",
    "cronjob_last_success_scheduled_timestamp_seconds{",
    "cronjob_next_scheduled_timestamp_seconds{",
    "cronjob_schedule_period_seconds{",
    "cronjob_schedule_grace_seconds{",
    "cronjob_max_run_duration_seconds{",
    "cronjob_last_success_timestamp_seconds{",
    "push_time_seconds{",
    "push_failure_time_seconds{",
];

fn seconds(t: jiff::Timestamp) -> f64 {
    t.as_millisecond() as f64 / 1000.0
}

#[test]
fn with_the_relay_down_a_wrong_token_or_an_untrusted_relay_the_end_is_unknown_never_a_success() {
    for broken in ["relay down", "wrong token", "untrusted relay"] {
        let gateway = Server::cronpush(&[]);
        // The previous run of the same CronJob succeeded, into the same group.
        let earlier = Run::admit(&gateway.base, 30);
        run_to_end(&earlier, "exit 0");
        drop(earlier);
        let before = group_series(&gateway);
        assert!(has(&before, "cronjob_last_exit_code{container=\"main-batch\"", "0"), "{broken}: {before:#?}");
        assert!(before.iter().any(|s| s.starts_with("cronjob_last_duration_seconds{")), "{broken}: {before:#?}");

        let grace = 6;
        let mut run = Run::admit(&gateway.base, grace);
        if broken == "untrusted relay" {
            // A CA of the same shape for the same names, but not the one that signed the relay's
            // certificate: someone else's relay, as far as the sidecar can tell.
            let other = run.dir.path().join("other-certs");
            support::issue_certs(
                &other,
                &["--service", SERVICE, "--namespace", NAMESPACE, "--extra-name", "127.0.0.1"],
            );
            run.set_relay_ca(&std::fs::read_to_string(other.join("ca.crt")).unwrap());
        }
        run_start(&run);
        let sidecar_spawned = jiff::Timestamp::now();
        let mut sidecar = run.start_sidecar();
        run.report_main(&run_main("sleep 1"));
        match broken {
            "relay down" => run.webhook.stop(),
            "wrong token" => {
                std::fs::write(run.mounts["cronpush-token"].join("token"), "a-token-nobody-issued").unwrap()
            }
            _ => {}
        }
        let took = stop_sidecar(&run, &mut sidecar, Duration::from_secs(grace as u64));
        let sidecar_stopped = jiff::Timestamp::now();
        let log = run.log("cronpush-sidecar");
        let after = group_series(&gateway);
        assert!(took < Duration::from_secs(grace as u64), "{broken}: {took:?}");

        // The end is unknown, for a container the sidecar could not even name.
        let end = |name: &str| -> Vec<&String> { after.iter().filter(|s| s.starts_with(name)).collect() };
        let results = end("cronjob_last_result{");
        assert!(results.len() == 1 && results[0].contains("result=\"unknown\""), "{broken}: {after:#?}\n{log}");
        let codes = end("cronjob_last_exit_code{");
        assert!(
            codes.len() == 1 && has(&after, "cronjob_last_exit_code{container=\"unknown\"", "-1"),
            "{broken}: {codes:#?}"
        );
        let reasons = end("cronjob_last_termination_info{");
        assert!(
            reasons.len() == 1
                && reasons[0].contains("container=\"unknown\"")
                && reasons[0].contains("reason=\"Unknown\""),
            "{broken}: {reasons:#?}"
        );
        assert!(end("cronjob_last_failure_timestamp_seconds{").is_empty(), "{broken}");
        // No series of the earlier run stands for this one...
        let standing: Vec<&String> =
            after.iter().filter(|s| before.contains(s) && !NOT_PER_RUN.iter().any(|p| s.starts_with(p))).collect();
        assert!(standing.is_empty(), "{broken}: the earlier run's {standing:#?} stand for the unknown one");
        // ...neither its times: the completion and the duration are the sidecar's watch, which
        // held the 1 s main container.
        let completed = value_of(&after, "cronjob_last_completion_timestamp_seconds{");
        assert!(
            (seconds(sidecar_spawned)..=seconds(sidecar_stopped)).contains(&completed),
            "{broken}: completion {completed} not within the run"
        );
        let duration = value_of(&after, "cronjob_last_duration_seconds{");
        let window = (sidecar_stopped - sidecar_spawned).total(jiff::Unit::Second).unwrap();
        assert!(duration >= 1.0 && duration <= window, "{broken}: duration {duration}, the run's window {window}");
        // The last success stays the earlier run's: an unknown end is never a success.
        let earlier_completed = value_of(&before, "cronjob_last_completion_timestamp_seconds{");
        assert_eq!(value_of(&after, "cronjob_last_success_timestamp_seconds{"), earlier_completed, "{broken}");
        assert!(
            value_of(&after, "cronjob_last_start_timestamp_seconds{")
                > value_of(&before, "cronjob_last_start_timestamp_seconds{")
        );

        if broken == "untrusted relay" {
            // The handshake failed before any request: the token never left the sidecar, so the
            // relay had nothing to review.
            assert!(run.api.token_reviews().is_empty(), "the token reached the relay: {:#?}", run.api.token_reviews());
            assert!(log.to_lowercase().contains("certificate"), "{log}");
        }
    }
}

/// The `reason` label of the run's termination info (the fixtures' Pod has one main container).
fn termination_reason(series: &[String]) -> String {
    let info = series.iter().find(|s| s.starts_with("cronjob_last_termination_info{")).expect("termination info");
    info.split("reason=\"").nth(1).unwrap().split('"').next().unwrap().to_string()
}

/// A run whose main container `command` is running: the Pod admitted with a 30 s grace
/// period, `cronpush start` done, the sidecar listening for SIGTERM.
fn running(command: &str) -> (Server, Run, Child, MainContainer) {
    let gateway = Server::cronpush(&[]);
    let run = Run::admit(&gateway.base, 30);
    run_start(&run);
    let sidecar = run.start_sidecar();
    let main = start_main(command);
    (gateway, run, sidecar, main)
}

#[test]
fn a_pod_past_its_active_deadline_says_deadline_exceeded() {
    let (gateway, run, mut sidecar, main) = running("exec sleep 60");
    // At the Pod's activeDeadlineSeconds the kubelet marks the Pod DeadlineExceeded, then
    // stops the main container (SIGTERM: 143) and the sidecar, and only then reports how the
    // main container ended.
    run.report_pod_ending("DeadlineExceeded", main.started);
    let killed = kill_pod(&run, main, &mut sidecar, Duration::from_secs(30));
    assert_eq!(killed.main["exitCode"], 143);
    let (status, took) = killed.sidecar_exit.expect("the sidecar exited before its SIGKILL");
    assert_eq!(status.code(), Some(0), "{}", run.log("cronpush-sidecar"));
    assert!(took < Duration::from_secs(2), "nothing more to learn: it does not linger ({took:?})");
    let series = group_series(&gateway);
    // The exit code reaches the Pod only after the sidecar has gone: what was known is pushed.
    assert!(has(&series, "cronjob_last_exit_code{container=\"main-batch\"", "-1"), "{series:#?}");
    assert_eq!(termination_reason(&series), "DeadlineExceeded", "{series:#?}");
    assert!(series.iter().any(|s| s.starts_with("cronjob_last_result{") && s.contains("result=\"unknown\"")));
    assert!(run.log("cronpush-sidecar").contains("DeadlineExceeded"), "{}", run.log("cronpush-sidecar"));
}

#[test]
fn a_deleted_pod_whose_main_container_ignores_sigterm_still_pushes_its_end_in_the_kubelets_last_two_seconds() {
    // A shell script as PID 1 that never handles SIGTERM. The Pod's own grace period is 30 s,
    // but the deletion's is what counts.
    let (gateway, run, mut sidecar, main) = running("trap '' TERM; exec sleep 60");
    main.wait_until_ignoring_sigterm();
    // The Job controller deletes the Pod at the Job's activeDeadlineSeconds (grace 3 s here).
    run.delete(3, None);
    let killed = kill_pod(&run, main, &mut sidecar, Duration::from_secs(3));
    assert_eq!(killed.main["exitCode"], 137, "SIGKILL at the end of the grace period");
    let (status, took) = killed.sidecar_exit.unwrap_or_else(|| {
        panic!("the kubelet killed the sidecar at the end of its 2 s: {}", run.log("cronpush-sidecar"))
    });
    assert_eq!(status.code(), Some(0), "{}", run.log("cronpush-sidecar"));
    assert!(took < Duration::from_secs(2), "{took:?}");
    let series = group_series(&gateway);
    assert_eq!(termination_reason(&series), "PodDeleted", "{series:#?}");
    assert!(has(&series, "cronjob_last_exit_code{container=\"main-batch\"", "-1"), "{series:#?}");
    assert!(series.iter().any(|s| s.starts_with("cronjob_last_result{") && s.contains("result=\"unknown\"")));
    // The end is the moment the main container was stopped, not whenever the sidecar pushed.
    let completed = value_of(&series, "cronjob_last_completion_timestamp_seconds{");
    let finished: jiff::Timestamp = killed.main["finishedAt"].as_str().unwrap().parse().unwrap();
    assert!((completed - seconds(finished)).abs() < 1.0, "{completed} against {finished}");
    assert!(run.log("cronpush-sidecar").contains("the Pod was deleted"), "{}", run.log("cronpush-sidecar"));
}

#[test]
fn an_evicted_pod_says_which_disruption_ended_it_and_its_sidecar_does_not_linger() {
    let (gateway, run, mut sidecar, main) = running("exec sleep 60");
    // A node drain: the Eviction API sets DisruptionTarget, then deletes with the Pod's 30 s.
    run.delete(30, Some("EvictionByEvictionAPI"));
    let killed = kill_pod(&run, main, &mut sidecar, Duration::from_secs(30));
    assert_eq!(killed.main["exitCode"], 143);
    let (status, took) = killed.sidecar_exit.expect("the sidecar exited");
    assert_eq!(status.code(), Some(0), "{}", run.log("cronpush-sidecar"));
    // Its ends come only after the sidecar is gone, so waiting out the 30 s would hold the
    // Pod in Terminating for nothing.
    assert!(took < Duration::from_secs(2), "{took:?}");
    let series = group_series(&gateway);
    assert_eq!(termination_reason(&series), "EvictionByEvictionAPI", "{series:#?}");
}

#[test]
fn a_crash_looping_container_of_a_deleted_pod_reports_its_last_end_and_its_restarts() {
    let gateway = Server::cronpush(&[]);
    let run = Run::admit_with(&gateway.base, 30, |pod| pod["spec"]["restartPolicy"] = json!("OnFailure"));
    run_start(&run);
    let mut sidecar = run.start_sidecar();
    // restartPolicy OnFailure: the main container failed three times and waits in
    // CrashLoopBackOff, its last end in lastState (kuberuntime_manager.go; kubernetes.md §6).
    let last = run_main("exit 4");
    run.api.modify("pods", "batch", &run.spec.pod, |pod| {
        pod["status"] = json!({"phase": "Running", "containerStatuses": [{"name": MAIN, "image": "busybox", "imageID": "",
            "ready": false, "restartCount": 3,
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}},
            "lastState": {"terminated": last}}]});
    });
    // The Job's backoffLimit is reached: the Job controller deletes the Pod. Nothing runs in
    // the main container, so the kubelet goes on to the sidecar at once.
    run.delete(30, None);
    sigterm(&sidecar);
    let (status, took) = wait(&mut sidecar, Duration::from_secs(30)).expect("the sidecar exited");
    assert_eq!(status.code(), Some(0), "{}", run.log("cronpush-sidecar"));
    assert!(took < Duration::from_secs(2), "{took:?}");
    let series = group_series(&gateway);
    assert!(has(&series, "cronjob_last_exit_code{container=\"main-batch\"", "4"), "{series:#?}");
    assert!(has(&series, "cronjob_last_restarts{container=\"main-batch\"", "3"), "{series:#?}");
    assert!(series.iter().any(|s| s.starts_with("cronjob_last_result{") && s.contains("result=\"failure\"")));
}

#[test]
fn a_failed_attempt_that_the_job_retries_is_retrying_and_its_last_attempt_is_a_failure() {
    for (failed_before, result, attempt) in [(0, "retrying", "1"), (2, "failure", "3")] {
        let gateway = Server::cronpush(&[]);
        let run = Run::admit(&gateway.base, 30);
        // backoffLimit 2: the Job fails when more than 2 of its Pods have failed
        // (job_controller.go), so the first failure is retried and the third is the Job's end.
        run.api.modify("jobs", "batch", &run.spec.job, |job| {
            job["spec"]["backoffLimit"] = json!(2);
            job["status"] = json!({"failed": failed_before, "active": 1});
        });
        run_to_end(&run, "exit 3");
        let series = group_series(&gateway);
        assert!(
            series.iter().any(|s| s.starts_with("cronjob_last_result{") && s.contains(&format!("result=\"{result}\""))),
            "{series:#?}"
        );
        assert!(has(&series, "cronjob_last_attempt{", attempt), "{series:#?}");
        assert!(has(&series, "cronjob_last_exit_code{container=\"main-batch\"", "3"), "{series:#?}");
        let failure_stamped = series.iter().any(|s| s.starts_with("cronjob_last_failure_timestamp_seconds{"));
        assert_eq!(failure_stamped, result == "failure", "{series:#?}");
    }
}

#[test]
fn the_jobs_own_metrics_file_is_pushed_into_the_same_group() {
    let gateway = Server::cronpush(&[]);
    // The Job mounts an emptyDir at /out and names its file in the annotation; the webhook
    // mounts the same volume into the sidecar.
    let mut run = Run::admit_with(&gateway.base, 30, |pod| {
        pod["metadata"]["annotations"] = json!({"cronpush.io/metrics-file": "/out/job.prom"});
        pod["spec"]["volumes"] = json!([{"name": "out", "emptyDir": {}}]);
        pod["spec"]["containers"][0]["volumeMounts"] = json!([{"name": "out", "mountPath": "/out"}]);
    });
    let out = run.dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    run.mounts.insert("out".into(), out.clone());
    // What the main container writes into /out/job.prom.
    std::fs::write(out.join("job.prom"), "# TYPE backup_bytes gauge\nbackup_bytes 12345\n").unwrap();
    run_start(&run);
    let mut sidecar = run.start_sidecar();
    run.report_main(&run_main("exit 0"));
    stop_sidecar(&run, &mut sidecar, Duration::from_secs(30));
    let series = group_series(&gateway);
    assert!(
        has(
            &series,
            "backup_bytes{cronjob=\"sample-cronjob\",instance=\"\",job=\"cronpush\",namespace=\"batch\"}",
            "12345"
        ),
        "{series:#?}"
    );
    assert!(series.iter().any(|s| s.starts_with("cronjob_last_result{") && s.contains("success")));
}

#[test]
fn in_api_mode_the_sidecar_reads_its_own_pod() {
    let gateway = Server::cronpush(&[]);
    let mut run = Run::admit(&gateway.base, 30);
    // A cluster that lets the Pod's service account read its Pod: the operator sets the source
    // to api, and the sidecar finds the API server as any client does (here, a kubeconfig).
    let kubeconfig = run.api.kubeconfig(run.dir.path());
    let sidecar_env = run.pod["spec"]["initContainers"][1]["env"].as_array_mut().unwrap();
    sidecar_env.push(json!({"name": "CRONPUSH_EXIT_STATUS_SOURCE", "value": "api"}));
    sidecar_env.push(json!({"name": "KUBECONFIG", "value": kubeconfig.display().to_string()}));
    run_start(&run);
    let mut sidecar = run.start_sidecar();
    run.webhook.stop(); // not the relay: it is gone
    let terminated = run_main("exit 4");
    sigterm(&sidecar);
    std::thread::sleep(Duration::from_millis(500));
    run.report_main(&terminated);
    let (status, _) = wait(&mut sidecar, Duration::from_secs(30)).expect("the sidecar ended");
    assert_eq!(status.code(), Some(0));
    let series = group_series(&gateway);
    assert!(
        has(&series, "cronjob_last_exit_code{container=\"main-batch\"", "4"),
        "{series:#?}\n{}",
        run.log("cronpush-sidecar")
    );
}

/// The CronJob controller created the run's Job, whose Pod the webhook injects: the slot is
/// taken, however long the Pod takes to start (an image pull). The webhook pushes it at once,
/// off the admission path, before any container of the Pod runs; a dry-run admission
/// (`kubectl create --dry-run=server`) creates nothing and pushes nothing.
#[test]
fn the_webhook_pushes_the_slot_of_a_pod_it_injects_before_the_pod_starts() {
    let gateway = Server::cronpush(&[]);
    let run = Run::admit(&gateway.base, 30);
    let slot = run.spec.scheduled.as_second();
    let pushed = support::eventually(Duration::from_secs(10), || {
        let series = group_series(&gateway);
        series.iter().any(|s| s.starts_with("cronjob_last_created_scheduled_timestamp_seconds{"))
            && value_of(&series, "cronjob_last_created_scheduled_timestamp_seconds{") == slot as f64
    });
    assert!(pushed, "{:#?}", group_series(&gateway));
    assert!(!group_series(&gateway).iter().any(|s| s.starts_with("cronjob_last_start_timestamp_seconds")));

    let dry = Server::cronpush(&[]);
    let spec = support::kubelet::CronJobRun::article();
    let api = support::kube_api::FakeApi::start();
    api.put(support::webhook::job(&spec.job, Some(support::webhook::cronjob_owner(true)), json!({})));
    api.put(support::webhook::sample_cronjob());
    let webhook = support::webhook::Webhook::start_with(&api.url(), &dry.base);
    let mut review = support::webhook::pod_review(&spec.job);
    review["request"]["dryRun"] = json!(true);
    let answer = webhook.review(&review);
    assert!(answer["patch"].is_string(), "a dry run is injected like any: {answer}");
    std::thread::sleep(Duration::from_secs(1));
    assert!(dry.pushed_series().is_empty(), "{:#?}", dry.pushed_series());
}
