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
//! is the fake API server of tests/support/kube_api.rs.

mod support;

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::Server;
use support::kube_api::{FakeApi, TokenIdentity};
use support::webhook::{Webhook, cronjob_owner, job, pod_review, sample_cronjob};

const JOB: &str = "sample-cronjob-29396160";
const POD: &str = "sample-cronjob-29396160-x7k2p";
const POD_UID: &str = "9b1e7c4a-run";
const MAIN: &str = "main-batch";

/// A Job Pod of the article's CronJob, admitted by the real webhook and then "scheduled".
struct Run {
    api: FakeApi,
    webhook: Webhook,
    /// The Pod as stored after admission, with the name, namespace and uid the API server gave.
    pod: Value,
    /// Host directories standing in for the Pod's volumes, by mountPath.
    mounts: HashMap<String, PathBuf>,
    dir: tempfile::TempDir,
}

impl Run {
    /// Admits the Pod with the webhook pushing to `gateway_url`, then stores it as the API
    /// server would, and issues its projected token as the kubelet would.
    fn admit(gateway_url: &str, grace_seconds: i64) -> Run {
        Run::admit_with(gateway_url, grace_seconds, |_| {})
    }

    /// As `admit`, with the Job's Pod template changed by `customize` first.
    fn admit_with(gateway_url: &str, grace_seconds: i64, customize: impl FnOnce(&mut Value)) -> Run {
        let api = FakeApi::start();
        let scheduled = json!({"batch.kubernetes.io/cronjob-scheduled-timestamp": "2025-11-22T00:00:00Z"});
        api.put(job(JOB, Some(cronjob_owner(true)), scheduled));
        api.put(sample_cronjob());
        let webhook = Webhook::start_with(&api.url(), gateway_url);
        let mut review = pod_review(JOB);
        review["request"]["object"]["spec"]["terminationGracePeriodSeconds"] = json!(grace_seconds);
        customize(&mut review["request"]["object"]);
        let response = webhook.review(&review);
        let mut pod = review["request"]["object"].clone();
        let patch: json_patch::Patch = {
            use base64::Engine;
            let bytes = base64::engine::general_purpose::STANDARD.decode(response["patch"].as_str().unwrap()).unwrap();
            serde_json::from_slice(&bytes).unwrap()
        };
        json_patch::patch(&mut pod, &patch).unwrap();
        pod["metadata"]["name"] = json!(POD);
        pod["metadata"]["namespace"] = json!("batch");
        pod["metadata"]["uid"] = json!(POD_UID);
        pod["status"] = json!({"phase": "Pending"});
        api.put(pod.clone());

        let dir = tempfile::tempdir().unwrap();
        let mut mounts = HashMap::new();
        let token_volume = pod["spec"]["volumes"].as_array().unwrap().iter().find(|v| v["name"] == "cronpush-token");
        let projection = &token_volume.expect("the token volume")["projected"]["sources"][0]["serviceAccountToken"];
        let token_dir = dir.path().join("cronpush-token");
        std::fs::create_dir(&token_dir).unwrap();
        std::fs::write(token_dir.join(projection["path"].as_str().unwrap()), "projected-token-of-the-pod").unwrap();
        let identity = TokenIdentity {
            namespace: "batch".into(),
            service_account: "default".into(),
            pod_name: POD.into(),
            pod_uid: POD_UID.into(),
            audiences: vec![projection["audience"].as_str().unwrap().into()],
        };
        api.add_token("projected-token-of-the-pod", identity);
        mounts.insert("cronpush-token".to_string(), token_dir);
        Run { api, webhook, pod, mounts, dir }
    }

    fn container(&self, name: &str) -> &Value {
        let init = self.pod["spec"]["initContainers"].as_array().unwrap();
        init.iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("no container {name}"))
    }

    /// The container's environment as the kubelet builds it, with mounted paths mapped to
    /// their host directories.
    fn environment(&self, name: &str) -> Vec<(String, String)> {
        let container = self.container(name);
        let mut mapped: Vec<(String, PathBuf)> = Vec::new();
        for mount in container["volumeMounts"].as_array().into_iter().flatten() {
            let host = &self.mounts[mount["name"].as_str().unwrap()];
            mapped.push((mount["mountPath"].as_str().unwrap().to_string(), host.clone()));
        }
        let field = |path: &str| match path {
            "metadata.namespace" => self.pod["metadata"]["namespace"].as_str().unwrap().to_string(),
            "metadata.name" => self.pod["metadata"]["name"].as_str().unwrap().to_string(),
            other => panic!("the kubelet emulation does not know the field {other}"),
        };
        let mut env = Vec::new();
        for var in container["env"].as_array().unwrap() {
            let name = var["name"].as_str().unwrap().to_string();
            let value = match var.get("value") {
                Some(v) => v.as_str().unwrap().to_string(),
                None => field(var["valueFrom"]["fieldRef"]["fieldPath"].as_str().unwrap()),
            };
            // A path inside a mounted volume is, on the host, inside the volume's directory.
            let value = mapped
                .iter()
                .find_map(|(at, host)| value.strip_prefix(at.as_str()).map(|rest| format!("{}{rest}", host.display())))
                .unwrap_or(value);
            env.push((name, value));
        }
        env
    }

    /// Starts a container's process: the image's entrypoint with the container's args.
    fn spawn(&self, name: &str) -> Child {
        let args: Vec<String> =
            self.container(name)["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect();
        Command::new(env!("CARGO_BIN_EXE_cronpush"))
            .args(&args)
            .env_clear()
            .envs(self.environment(name))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.path().join(format!("{name}.log"))).unwrap())
            .spawn()
            .unwrap()
    }

    /// Starts the native sidecar and waits until it listens for SIGTERM. The kubelet starts
    /// the main containers once the sidecar has started, and notices their exit only at its
    /// next status pass (PLEG), so a real sidecar always has this moment; a test must wait for
    /// it explicitly.
    fn start_sidecar(&self) -> Child {
        let sidecar = self.spawn("cronpush-sidecar");
        let ready = support::eventually(Duration::from_secs(10), || {
            self.log("cronpush-sidecar").contains("waiting for the end of the run")
        });
        assert!(ready, "the sidecar did not start: {}", self.log("cronpush-sidecar"));
        sidecar
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap_or_default()
    }

    /// The kubelet's status update for the main container, as kube-apiserver stores it.
    fn report_main(&self, terminated: &Value) {
        self.api.modify("pods", "batch", POD, |pod| {
            pod["status"] = json!({"phase": if terminated["exitCode"] == 0 { "Succeeded" } else { "Failed" },
                "containerStatuses": [{"name": MAIN, "image": "busybox", "imageID": "", "ready": false,
                                       "restartCount": 0, "state": {"terminated": terminated}}]});
        });
    }
}

/// Runs a main "container" command and returns its terminated state as the kubelet reports it:
/// a signal becomes exit code 128 + N with reason Error, as containerd reports it.
fn run_main(command: &str) -> Value {
    let started = jiff::Timestamp::now();
    let status = Command::new("sh").args(["-c", command]).status().unwrap();
    let finished = jiff::Timestamp::now();
    let (exit_code, reason) = match (status.code(), status.signal()) {
        (Some(0), _) => (0, "Completed"),
        (Some(code), _) => (code, "Error"),
        (None, Some(signal)) => (128 + signal, "Error"),
        (None, None) => unreachable!("a process ends by exit or by signal"),
    };
    json!({"exitCode": exit_code, "reason": reason, "startedAt": started.to_string(), "finishedAt": finished.to_string()})
}

fn wait(child: &mut Child, within: Duration) -> Option<(ExitStatus, Duration)> {
    let started = Instant::now();
    while started.elapsed() < within {
        if let Some(status) = child.try_wait().unwrap() {
            return Some((status, started.elapsed()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    None
}

fn sigterm(child: &Child) {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

/// The init container: it must end, with 0, within its timeout (a few seconds).
fn run_start(run: &Run) -> Duration {
    let mut start = run.spawn("cronpush-start");
    let (status, took) = wait(&mut start, Duration::from_secs(10)).expect("cronpush start ended");
    assert_eq!(status.code(), Some(0), "start must never fail the Pod: {}", run.log("cronpush-start"));
    took
}

/// SIGTERM to the sidecar; it must exit 0 within the Pod's grace period.
fn stop_sidecar(run: &Run, sidecar: &mut Child, grace: Duration) -> Duration {
    sigterm(sidecar);
    let (status, took) = wait(sidecar, grace).unwrap_or_else(|| panic!("the sidecar outlived its grace period"));
    assert_eq!(status.code(), Some(0), "{}", run.log("cronpush-sidecar"));
    took
}

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

#[test]
fn with_the_relay_down_or_a_wrong_token_the_end_is_unknown_never_a_success() {
    for broken in ["relay down", "wrong token"] {
        let gateway = Server::cronpush(&[]);
        let grace = 6;
        let mut run = Run::admit(&gateway.base, grace);
        run_start(&run);
        let mut sidecar = run.start_sidecar();
        run.report_main(&run_main("exit 0"));
        match broken {
            "relay down" => run.webhook.stop(),
            _ => std::fs::write(run.mounts["cronpush-token"].join("token"), "a-token-nobody-issued").unwrap(),
        }
        let took = stop_sidecar(&run, &mut sidecar, Duration::from_secs(grace as u64));
        let series = group_series(&gateway);
        assert!(
            series.iter().any(|s| s.starts_with("cronjob_last_result{") && s.contains("result=\"unknown\"")),
            "{broken}: {series:#?}\n{}",
            run.log("cronpush-sidecar")
        );
        assert!(series.iter().all(|s| !s.starts_with("cronjob_last_success_timestamp_seconds")), "{broken}");
        assert!(took < Duration::from_secs(grace as u64), "{broken}: {took:?}");
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
