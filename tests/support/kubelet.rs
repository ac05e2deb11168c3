//! A kubelet emulation for one CronJob run, with every cronpush part real: the real webhook
//! admits the Job's Pod (resolving the Job and CronJob through the fake API server of
//! `kube_api.rs`), and the real `cronpush start` and `cronpush sidecar` run as the kubelet
//! would run the containers it injected.
//!
//! What each piece mirrors, as kubernetes.md §3 describes the kubelet:
//! - [`Run::admit_run`]: kube-apiserver's part. The Job (with the CronJob controller's
//!   `batch.kubernetes.io/cronjob-scheduled-timestamp` annotation) and its CronJob are stored,
//!   the Pod is sent through the mutating webhook, stored with the name, namespace and uid the
//!   API server gives it, and its projected service-account token is issued (a file in a
//!   temporary directory, which the TokenReview answers for);
//! - [`Run::environment`] and [`Run::spawn`]: the container runtime. Each injected container's
//!   environment is resolved (plain values, and the Downward API's `metadata.namespace` and
//!   `metadata.name`), its volumes are mounted (paths under a mountPath map to the host
//!   directory standing in for the volume), and the image's entrypoint (this binary) runs with
//!   the container's args and nothing else in the environment;
//! - [`run_start`]: the last init container runs to completion before anything else starts;
//! - [`Run::start_sidecar`]: the native sidecar starts, and the main containers only once it
//!   has started;
//! - [`run_main`]: the main "container", a shell command whose end becomes the terminated state
//!   containerd reports (a signal N is exit code 128 + N with reason Error); [`Run::run_main`]
//!   also keeps what it wrote, stdout and stderr interleaved, as the container's log that
//!   `pods/log` serves, as the runtime's CRI log file would hold it;
//! - [`Run::report_main`]: the kubelet's status manager writes that state into the Pod's status,
//!   asynchronously, so a caller may do it before or after the SIGTERM to the sidecar;
//! - [`stop_sidecar`]: once the main containers have exited, the sidecar gets SIGTERM and is
//!   waited for no longer than the Pod's termination grace period. A Pod that vanishes (node
//!   lost, eviction) is a sidecar killed without SIGTERM: `Child::kill`;
//! - [`Run::delete`] and [`kill_pod`]: a Pod deleted while its main container runs (the Job's
//!   deadline, `kubectl delete`, an eviction): the API server marks it, the kubelet stops the
//!   main container first, then the sidecar with what is left of the grace period but at least
//!   2 s, and writes the containers' ends only after both have stopped.

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::kube_api::{FakeApi, TokenIdentity};
use super::webhook::{Webhook, cronjob_owner, job, pod_review, sample_cronjob};

/// The main container of the fixtures' Job template.
pub const MAIN: &str = "main-batch";

/// Which CronJob run to admit: the objects the API server holds for it and the Pod's identity.
#[derive(Clone, Debug)]
pub struct CronJobRun {
    pub namespace: String,
    pub cronjob: String,
    /// The CronJob's annotations, e.g. `cronpush.io/grace-seconds` and
    /// `cronpush.io/max-run-seconds`, which set the pushed grace and maximum run time.
    pub cronjob_annotations: Value,
    pub job: String,
    /// The Job's schedule slot, as the CronJob controller annotates it.
    pub scheduled: jiff::Timestamp,
    pub pod: String,
    pub pod_uid: String,
    /// The Pod's `terminationGracePeriodSeconds`.
    pub termination_grace_seconds: i64,
    /// Flags of the webhook that admits the Pod and serves its relay.
    pub webhook_flags: Vec<&'static str>,
    /// The CronJob's `spec.concurrencyPolicy`.
    pub concurrency_policy: &'static str,
}

impl CronJobRun {
    /// The article's run: `batch/sample-cronjob` (`*/1 * * * *`, startingDeadlineSeconds 30),
    /// its Job for the slot 2025-11-22T00:00:00Z.
    pub fn article() -> CronJobRun {
        CronJobRun {
            namespace: "batch".into(),
            cronjob: "sample-cronjob".into(),
            cronjob_annotations: json!({}),
            job: "sample-cronjob-29396160".into(),
            scheduled: "2025-11-22T00:00:00Z".parse().unwrap(),
            pod: "sample-cronjob-29396160-x7k2p".into(),
            pod_uid: "9b1e7c4a-run".into(),
            termination_grace_seconds: 30,
            webhook_flags: Vec::new(),
            concurrency_policy: "Allow",
        }
    }

    /// The run of the article's CronJob (schedule and spec) as `namespace/cronjob` for the slot
    /// `scheduled`, with the Job named as the CronJob controller names it (`<cronjob>-<minutes>`).
    pub fn at(namespace: &str, cronjob: &str, annotations: Value, scheduled: jiff::Timestamp) -> CronJobRun {
        let job = format!("{cronjob}-{}", scheduled.as_second() / 60);
        CronJobRun {
            namespace: namespace.into(),
            cronjob: cronjob.into(),
            cronjob_annotations: annotations,
            pod: format!("{job}-x7k2p"),
            pod_uid: format!("uid-{namespace}-{job}"),
            job,
            scheduled,
            termination_grace_seconds: 30,
            webhook_flags: Vec::new(),
            concurrency_policy: "Allow",
        }
    }
}

/// A Job Pod of a CronJob, admitted by the real webhook and then "scheduled".
pub struct Run {
    pub api: FakeApi,
    pub webhook: Webhook,
    pub spec: CronJobRun,
    /// The Pod as stored after admission, with the name, namespace and uid the API server gave.
    pub pod: Value,
    /// Host directories standing in for the Pod's volumes, by volume name.
    pub mounts: HashMap<String, PathBuf>,
    pub dir: tempfile::TempDir,
}

impl Run {
    /// Admits the article's Pod with the webhook pushing to `gateway_url`, then stores it as the
    /// API server would, and issues its projected token as the kubelet would.
    pub fn admit(gateway_url: &str, grace_seconds: i64) -> Run {
        Run::admit_with(gateway_url, grace_seconds, |_| {})
    }

    /// As `admit`, with the Job's Pod template changed by `customize` first.
    pub fn admit_with(gateway_url: &str, grace_seconds: i64, customize: impl FnOnce(&mut Value)) -> Run {
        let spec = CronJobRun { termination_grace_seconds: grace_seconds, ..CronJobRun::article() };
        Run::admit_run(spec, gateway_url, customize)
    }

    /// Admits the Pod of `spec`'s run (its own fake API server and webhook), with the Pod
    /// changed by `customize` before admission.
    pub fn admit_run(spec: CronJobRun, gateway_url: &str, customize: impl FnOnce(&mut Value)) -> Run {
        let api = FakeApi::start();
        store_job_and_cronjob(&api, &spec);
        let webhook = Webhook::start_with_flags(&api.url(), gateway_url, &spec.webhook_flags);
        Run::admit_pod(api, webhook, spec, customize)
    }

    /// Another CronJob run on the same API server and webhook (still pushing where they were
    /// started to push, with the flags they were started with: `spec.webhook_flags` is not
    /// read): its Job and CronJob stored as `admit_run` stores them (a CronJob stored again is
    /// a MODIFIED event, as an apply that changes nothing), then its Pod admitted. This run's
    /// Pod stays as it is: the two may run side by side.
    pub fn next_run(&self, spec: CronJobRun, customize: impl FnOnce(&mut Value)) -> Run {
        store_job_and_cronjob(&self.api, &spec);
        Run::admit_pod(self.api.clone(), self.webhook.clone(), spec, customize)
    }

    /// The Job's next Pod after this one failed, as the Job controller makes it when the Job's
    /// `backoffLimit` allows another attempt (job_controller.go `syncJob`, `manageJob`): the
    /// failed Pod counted in the Job's `status.failed`, a new Pod of the same Job (another
    /// generated name, another uid: the controller creates it from the Job's template with
    /// `generateName`, pkg/controller/controller_utils.go `CreatePodsWithGenerateName`) created
    /// and admitted, `active` 1 again. The Job, its
    /// schedule-slot annotation and its CronJob stay as they are.
    pub fn next_attempt(&self) -> Run {
        let mut attempt = 1;
        self.api.modify("jobs", &self.spec.namespace, &self.spec.job, |job| {
            let failed = job["status"]["failed"].as_i64().unwrap_or(0) + 1;
            job["status"]["failed"] = json!(failed);
            job["status"]["active"] = json!(1);
            attempt = failed + 1;
        });
        let spec = CronJobRun {
            pod: format!("{}-r{attempt:04}", self.spec.job),
            pod_uid: format!("{}-attempt-{attempt}", self.spec.pod_uid),
            ..self.spec.clone()
        };
        Run::admit_pod(self.api.clone(), self.webhook.clone(), spec, |_| {})
    }

    /// kube-apiserver's part of a Pod's creation: the review through the mutating webhook, the
    /// patched Pod stored with the name, namespace and uid the API server gives it, and its
    /// projected token issued (one per Pod, as the kubelet's token manager requests one bound to
    /// each Pod: pkg/kubelet/token/token_manager.go, TokenRequest in
    /// pkg/registry/core/serviceaccount/storage/token.go).
    fn admit_pod(api: FakeApi, webhook: Webhook, spec: CronJobRun, customize: impl FnOnce(&mut Value)) -> Run {
        let namespace = spec.namespace.as_str();
        let mut review = pod_review(&spec.job);
        // Each admission request has its own uid (admission/v1 AdmissionRequest.UID, "uniquely
        // identifies this admission call"; staging/src/k8s.io/api/admission/v1/types.go).
        review["request"]["uid"] = json!(format!("review-{}", spec.pod_uid));
        review["request"]["namespace"] = json!(namespace);
        review["request"]["object"]["spec"]["terminationGracePeriodSeconds"] = json!(spec.termination_grace_seconds);
        customize(&mut review["request"]["object"]);
        let response = webhook.review(&review);
        let mut pod = review["request"]["object"].clone();
        let patch: json_patch::Patch = {
            use base64::Engine;
            let bytes = base64::engine::general_purpose::STANDARD.decode(response["patch"].as_str().unwrap()).unwrap();
            serde_json::from_slice(&bytes).unwrap()
        };
        json_patch::patch(&mut pod, &patch).unwrap();
        pod["metadata"]["name"] = json!(spec.pod);
        pod["metadata"]["namespace"] = json!(namespace);
        pod["metadata"]["uid"] = json!(spec.pod_uid);
        pod["status"] = json!({"phase": "Pending"});
        api.put(pod.clone());

        let dir = tempfile::tempdir().unwrap();
        let mut mounts = HashMap::new();
        let token_volume = pod["spec"]["volumes"].as_array().unwrap().iter().find(|v| v["name"] == "cronpush-token");
        let projection = &token_volume.expect("the token volume")["projected"]["sources"][0]["serviceAccountToken"];
        let token_dir = dir.path().join("cronpush-token");
        std::fs::create_dir(&token_dir).unwrap();
        let token = format!("projected-token-of-{}", spec.pod_uid);
        std::fs::write(token_dir.join(projection["path"].as_str().unwrap()), &token).unwrap();
        let identity = TokenIdentity {
            namespace: namespace.into(),
            service_account: "default".into(),
            pod_name: spec.pod.clone(),
            pod_uid: spec.pod_uid.clone(),
            audiences: vec![projection["audience"].as_str().unwrap().into()],
        };
        api.add_token(&token, identity);
        mounts.insert("cronpush-token".to_string(), token_dir);
        // Every other volume is an empty directory here (emptyDir, or a volume whose content no
        // test reads): the kubelet mounts every volume before it starts any container
        // (pkg/kubelet/kubelet.go SyncPod, volumeManager.WaitForAttachAndMount).
        for volume in pod["spec"]["volumes"].as_array().into_iter().flatten() {
            let name = volume["name"].as_str().unwrap().to_string();
            if let std::collections::hash_map::Entry::Vacant(entry) = mounts.entry(name) {
                let host = dir.path().join(format!("volume-{}", entry.key()));
                std::fs::create_dir(&host).unwrap();
                entry.insert(host);
            }
        }
        Run { api, webhook, spec, pod, mounts, dir }
    }

    /// Runs the main container's command as [`run_main`] does, and keeps what it wrote to stdout
    /// and stderr (one file for both, so in the order written, as the CRI log interleaves the
    /// streams: pkg/kubelet/kuberuntime/logs/logs.go reads them back in file order) as its log in
    /// the API server.
    pub fn run_main(&self, command: &str) -> Value {
        let path = self.dir.path().join(format!("{MAIN}.container.log"));
        let out = std::fs::File::create(&path).unwrap();
        let started = jiff::Timestamp::now();
        let status = Command::new("sh")
            .args(["-c", command])
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .status()
            .unwrap();
        let terminated = terminated_state(status, started, jiff::Timestamp::now());
        self.api.set_log(&self.spec.namespace, &self.spec.pod, MAIN, std::fs::read(&path).unwrap());
        terminated
    }

    /// The kubelet's status update for the main container, as kube-apiserver stores it.
    pub fn report_main(&self, terminated: &Value) {
        self.report_pod_ended(terminated, None);
    }

    /// As `report_main`, for a Pod the kubelet ended as a whole and marked with `reason`:
    /// `DeadlineExceeded` when its `activeDeadlineSeconds` passed (the kubelet then kills the
    /// containers, which end with a plain `Error`), `Evicted` under node pressure.
    fn report_pod_ended(&self, terminated: &Value, reason: Option<&str>) {
        self.api.modify("pods", &self.spec.namespace, &self.spec.pod, |pod| {
            // Conditions that others set (DisruptionTarget) stay: the kubelet keeps the ones it
            // does not own when it writes a status (kubelet_pods.go `generateAPIPodStatus`).
            let conditions = pod["status"]["conditions"].take();
            pod["status"] = json!({"conditions": conditions,"phase": if terminated["exitCode"] == 0 && reason.is_none() { "Succeeded" } else { "Failed" },
                "containerStatuses": [{"name": MAIN, "image": "busybox", "imageID": "", "ready": false,
                                       "restartCount": 0, "state": {"terminated": terminated}}]});
            if let Some(reason) = reason {
                pod["status"]["reason"] = json!(reason);
                pod["status"]["message"] = json!(format!("the kubelet ended the Pod: {reason}"));
            }
        });
    }

    /// The status the kubelet writes when it starts ending a Pod as a whole, before it stops any
    /// container (kubelet.go `SyncTerminatingPod`, with the `podStatusFn` of the active deadline
    /// or the eviction manager): phase Failed, the Pod's `reason`, and the main container still
    /// running. Its end follows in the next status, once every container has stopped.
    pub fn report_pod_ending(&self, reason: &str, main_started: jiff::Timestamp) {
        self.api.modify("pods", &self.spec.namespace, &self.spec.pod, |pod| {
            pod["status"] = json!({"phase": "Failed", "reason": reason, "message": format!("the kubelet ended the Pod: {reason}"),
                "containerStatuses": [{"name": MAIN, "image": "busybox", "imageID": "", "ready": true, "restartCount": 0,
                                       "state": {"running": {"startedAt": main_started.to_string()}}}]});
        });
    }

    /// kube-apiserver's graceful deletion of the Pod: `deletionTimestamp` is now plus the grace
    /// period, which `deletionGracePeriodSeconds` records (apiserver registry/rest/delete.go
    /// `BeforeDelete`). A `disruption` reason is the `DisruptionTarget` condition that the
    /// initiator (the Eviction API, the scheduler's preemption, the taint manager) sets before it
    /// deletes (website concepts/workloads/pods/disruptions.md).
    pub fn delete(&self, grace_seconds: i64, disruption: Option<&str>) {
        let at = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(grace_seconds);
        // metav1.Time is whole seconds on the wire.
        let at = jiff::Timestamp::from_second(at.as_second()).unwrap();
        self.api.modify("pods", &self.spec.namespace, &self.spec.pod, |pod| {
            pod["metadata"]["deletionTimestamp"] = json!(at.to_string());
            pod["metadata"]["deletionGracePeriodSeconds"] = json!(grace_seconds);
            if let Some(reason) = disruption {
                pod["status"]["conditions"] = json!([{"type": "DisruptionTarget", "status": "True", "reason": reason,
                    "message": format!("{reason}: the Pod is being deleted"),
                    "lastTransitionTime": jiff::Timestamp::now().to_string()}]);
            }
        });
    }

    /// Hands the sidecar another relay CA (PEM) than the one the webhook injected, as a stale
    /// or tampered `CRONPUSH_RELAY_CA` would.
    pub fn set_relay_ca(&mut self, pem: &str) {
        let sidecar = self.pod["spec"]["initContainers"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|c| c["name"] == "cronpush-sidecar")
            .expect("the sidecar");
        let var = sidecar["env"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|v| v["name"] == "CRONPUSH_RELAY_CA")
            .expect("the sidecar gets the relay's CA");
        var["value"] = json!(pem);
    }
}

/// What the API server holds of a CronJob run before its Pod is created: the Job, with the
/// CronJob controller's owner reference and `batch.kubernetes.io/cronjob-scheduled-timestamp`,
/// and its CronJob (the article's, named and annotated as `spec` says).
fn store_job_and_cronjob(api: &FakeApi, spec: &CronJobRun) {
    let namespace = spec.namespace.as_str();
    let scheduled = json!({"batch.kubernetes.io/cronjob-scheduled-timestamp": spec.scheduled.to_string()});
    let mut owner = cronjob_owner(true);
    owner["name"] = json!(spec.cronjob);
    let mut job_object = job(&spec.job, Some(owner), scheduled);
    job_object["metadata"]["namespace"] = json!(namespace);
    api.put(job_object);
    let mut cronjob = sample_cronjob();
    cronjob["metadata"]["name"] = json!(spec.cronjob);
    cronjob["metadata"]["namespace"] = json!(namespace);
    cronjob["metadata"]["annotations"] = spec.cronjob_annotations.clone();
    cronjob["spec"]["concurrencyPolicy"] = json!(spec.concurrency_policy);
    api.put(cronjob);
}

/// A Pod's containers as the container runtime runs them, whichever API server the Pod came
/// from: the Pod as stored, host directories standing in for its volumes, and a directory for
/// the containers' logs.
pub trait PodContainers {
    /// The Pod as the API server stored it.
    fn pod(&self) -> &Value;
    /// Host directories standing in for the Pod's volumes, by volume name.
    fn mounts(&self) -> &HashMap<String, PathBuf>;
    /// Where each container's stderr goes, as `<name>.log`.
    fn logs(&self) -> &std::path::Path;

    fn container(&self, name: &str) -> &Value {
        let init = self.pod()["spec"]["initContainers"].as_array().unwrap();
        init.iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("no container {name}"))
    }

    /// The container's environment as the kubelet builds it, with mounted paths mapped to
    /// their host directories.
    fn environment(&self, name: &str) -> Vec<(String, String)> {
        let container = self.container(name);
        let mut mapped: Vec<(String, PathBuf)> = Vec::new();
        for mount in container["volumeMounts"].as_array().into_iter().flatten() {
            let host = &self.mounts()[mount["name"].as_str().unwrap()];
            mapped.push((mount["mountPath"].as_str().unwrap().to_string(), host.clone()));
        }
        let field = |path: &str| match path {
            "metadata.namespace" => self.pod()["metadata"]["namespace"].as_str().unwrap().to_string(),
            "metadata.name" => self.pod()["metadata"]["name"].as_str().unwrap().to_string(),
            other => panic!("the kubelet emulation does not know the field {other}"),
        };
        let mut env = Vec::new();
        for var in container["env"].as_array().unwrap() {
            let name = var["name"].as_str().unwrap().to_string();
            // A variable with neither (the API server drops an empty value) is set empty, as
            // the kubelet's makeEnvironmentVariables (kubelet_pods.go) sets it.
            let value = match (var.get("value"), var["valueFrom"]["fieldRef"]["fieldPath"].as_str()) {
                (Some(v), _) => v.as_str().unwrap().to_string(),
                (None, Some(path)) => field(path),
                (None, None) => String::new(),
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
        Command::new(super::cronpush_binary())
            .args(&args)
            .env_clear()
            .envs(self.environment(name))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.logs().join(format!("{name}.log"))).unwrap())
            .spawn()
            .unwrap()
    }

    /// Starts the native sidecar and waits until it listens for SIGTERM. The kubelet starts
    /// the main containers once the sidecar has started, and notices their exit only at its
    /// next status pass (PLEG), so a real sidecar always has this moment; a test must wait for
    /// it explicitly.
    fn start_sidecar(&self) -> Child {
        let sidecar = self.spawn("cronpush-sidecar");
        let ready = super::eventually(Duration::from_secs(10), || {
            self.log("cronpush-sidecar").contains("waiting for the end of the run")
        });
        assert!(ready, "the sidecar did not start: {}", self.log("cronpush-sidecar"));
        sidecar
    }

    /// What a container wrote to stderr.
    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.logs().join(format!("{name}.log"))).unwrap_or_default()
    }
}

impl PodContainers for Run {
    fn pod(&self) -> &Value {
        &self.pod
    }

    fn mounts(&self) -> &HashMap<String, PathBuf> {
        &self.mounts
    }

    fn logs(&self) -> &std::path::Path {
        self.dir.path()
    }
}

/// Runs a main "container" command and returns its terminated state as the kubelet reports it:
/// a signal becomes exit code 128 + N with reason Error, as containerd reports it.
pub fn run_main(command: &str) -> Value {
    let started = jiff::Timestamp::now();
    let status = Command::new("sh").args(["-c", command]).status().unwrap();
    terminated_state(status, started, jiff::Timestamp::now())
}

/// A process's end as containerd reports it: a signal N is exit code 128 + N with reason Error.
fn terminated_state(status: ExitStatus, started: jiff::Timestamp, finished: jiff::Timestamp) -> Value {
    let (exit_code, reason) = match (status.code(), status.signal()) {
        (Some(0), _) => (0, "Completed"),
        (Some(code), _) => (code, "Error"),
        (None, Some(signal)) => (128 + signal, "Error"),
        (None, None) => unreachable!("a process ends by exit or by signal"),
    };
    json!({"exitCode": exit_code, "reason": reason, "startedAt": started.to_string(), "finishedAt": finished.to_string()})
}

/// A main "container" started and left running: a shell command, and when it started.
pub struct MainContainer {
    pub child: Child,
    pub started: jiff::Timestamp,
}

impl MainContainer {
    /// Waits for the container to end by itself and returns its terminated state, as
    /// [`run_main`] does for a container run to its end at once.
    pub fn wait_end(mut self) -> Value {
        let status = self.child.wait().unwrap();
        terminated_state(status, self.started, jiff::Timestamp::now())
    }

    /// Waits until the container's process ignores SIGTERM (its `trap '' TERM` has run; the
    /// disposition survives the `exec`), so that a test of a container that ignores SIGTERM does
    /// not race the shell: a SIGTERM before the trap ends it with 143.
    pub fn wait_until_ignoring_sigterm(&self) {
        let status = format!("/proc/{}/status", self.child.id());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ignored = std::fs::read_to_string(&status).ok().and_then(|s| {
                s.lines().find_map(|l| l.strip_prefix("SigIgn:")).and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
            });
            // Signal n is bit n - 1 of the mask; SIGTERM is 15.
            if ignored.is_some_and(|mask| mask & (1 << 14) != 0) {
                return;
            }
            assert!(Instant::now() < deadline, "the main container never came to ignore SIGTERM");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

pub fn start_main(command: &str) -> MainContainer {
    let started = jiff::Timestamp::now();
    MainContainer { child: Command::new("sh").args(["-c", command]).spawn().unwrap(), started }
}

/// How the kubelet's stop of a deleted Pod went.
pub struct PodKilled {
    /// The main container's end, as the kubelet reported it after everything stopped.
    pub main: Value,
    /// When the sidecar got its SIGTERM.
    pub sidecar_sigterm: Instant,
    /// The sidecar's exit and how long after its SIGTERM, or `None`: killed at the end of its
    /// time (SIGKILL).
    pub sidecar_exit: Option<(ExitStatus, Duration)>,
}

/// The kubelet's stop of a Pod being deleted with `grace`, or ended by the kubelet itself
/// (its `activeDeadlineSeconds`, with the Pod's grace) (kubelet.go `SyncTerminatingPod`,
/// kuberuntime_container.go `killContainersWithSyncResult` and `killContainer`,
/// kuberuntime_termination_order.go): the main container gets SIGTERM and, if it is still
/// running when the grace period is over, SIGKILL; only then does the sidecar get SIGTERM, with
/// what is left of the grace period but at least 2 s (`minimumGracePeriodInSeconds`), and
/// SIGKILL after that. The caller writes the containers' ends into the Pod's status afterwards:
/// the kubelet does so only once all have stopped.
pub fn stop_pod(mut main: MainContainer, sidecar: &mut Child, grace: Duration) -> PodKilled {
    let deadline = Instant::now() + grace;
    sigterm(&main.child);
    let status = match wait(&mut main.child, grace) {
        Some((status, _)) => status,
        None => main.child.wait().unwrap(),
    };
    let finished = jiff::Timestamp::now();
    let sidecar_sigterm = Instant::now();
    sigterm(sidecar);
    let sidecar_exit = wait(sidecar, deadline.saturating_duration_since(sidecar_sigterm).max(Duration::from_secs(2)));
    PodKilled { main: terminated_state(status, main.started, finished), sidecar_sigterm, sidecar_exit }
}

/// [`stop_pod`] on the fake API server, then the status with the main container's end (the
/// Pod's own reason, if the kubelet ended it for its active deadline, stays).
pub fn kill_pod(run: &Run, main: MainContainer, sidecar: &mut Child, grace: Duration) -> PodKilled {
    let killed = stop_pod(main, sidecar, grace);
    let stored = run.api.get("pods", &run.spec.namespace, &run.spec.pod).unwrap();
    run.report_pod_ended(&killed.main, stored["status"]["reason"].as_str());
    killed
}

/// Waits for `child` to exit, at most `within`; kills it and returns `None` when it does not.
pub fn wait(child: &mut Child, within: Duration) -> Option<(ExitStatus, Duration)> {
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

pub fn sigterm(child: &Child) {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

/// The init container: it must end, with 0, within its timeout (a few seconds).
pub fn run_start(run: &impl PodContainers) -> Duration {
    let mut start = run.spawn("cronpush-start");
    let (status, took) = wait(&mut start, Duration::from_secs(10)).expect("cronpush start ended");
    assert_eq!(status.code(), Some(0), "start must never fail the Pod: {}", run.log("cronpush-start"));
    took
}

/// SIGTERM to the sidecar; it must exit 0 within the Pod's grace period.
pub fn stop_sidecar(run: &impl PodContainers, sidecar: &mut Child, grace: Duration) -> Duration {
    sigterm(sidecar);
    let (status, took) = wait(sidecar, grace).unwrap_or_else(|| panic!("the sidecar outlived its grace period"));
    assert_eq!(status.code(), Some(0), "{}", run.log("cronpush-sidecar"));
    took
}

/// A whole run the way the kubelet runs it: start, sidecar, the main command, its status
/// reported, the sidecar stopped. Returns the main container's terminated state.
pub fn run_to_end(run: &Run, command: &str) -> Value {
    run_start(run);
    let mut sidecar = run.start_sidecar();
    let terminated = run.run_main(command);
    run.report_main(&terminated);
    stop_sidecar(run, &mut sidecar, Duration::from_secs(run.spec.termination_grace_seconds as u64));
    terminated
}
