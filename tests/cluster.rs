//! cronpush in a real control plane (tests/support/control_plane.rs: etcd, kube-apiserver and
//! kube-controller-manager, built from the Kubernetes release pinned in
//! scripts/control-plane/go.mod). What is emulated is the scheduler's binding and the kubelet,
//! and only where a run needs them:
//! - the shipped manifests are rendered with kustomize and created as a cluster admin creates
//!   them; the API server validates every object and evaluates the MutatingWebhookConfiguration
//!   itself (namespaceSelector, objectSelector, the matchConditions CEL, failurePolicy,
//!   reinvocationPolicy), and the shipped RBAC is the webhook's only authority (it runs with a
//!   token of its own ServiceAccount from the TokenRequest API);
//! - runs start as in a cluster: the CronJob controller creates Jobs on the schedule, or a Job
//!   is created as `kubectl create job --from=cronjob/...` creates it; the Job controller creates
//!   the Pod, which passes through the whole admission chain (ServiceAccount, LimitRanger,
//!   PodSecurity, ResourceQuota) with our webhook in it;
//! - a run is played by the kubelet emulation of tests/support/node.rs (the Pod bound to a
//!   registered Node, its projected token from the TokenRequest API, status through
//!   `pods/status`), so the relay's TokenReview and Pod watch, and the Job controller's verdict
//!   on the Pod, are the real API server's and the real controller's.
//!
//! Each test installs the manifests under a case name of its own: its webhook configuration is
//! named after the case, and its namespaceSelector also requires the namespace label
//! `cronpush.test/case=<case>` (beside the shipped expressions, which stay as shipped), so that
//! the tests of this binary, which share one control plane, never see each other's Pods.

use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use support::Server;
use support::control_plane::{ControlPlane, control_plane};
use support::kubelet::PodContainers as _;
use support::kustomize;
use support::node::{NodeRun, register_node, register_tainted_node};
use support::tls_gateway::{GATEWAY_PASSWORD, GATEWAY_USER, TlsGateway};
use support::webhook::{HOST, Webhook};

/// The namespace label that scopes a test's webhook configuration to its own namespaces.
const CASE_LABEL: &str = "cronpush.test/case";

/// The webhook of one test, installed from the shipped manifests.
struct Installed {
    webhook: Webhook,
    case: String,
}

/// Renders `manifests/webhook/overlays/<overlay>`, creates every object in it (an object that
/// another test of this binary created already is left as it is: they are the same), starts the
/// webhook with a token of its ServiceAccount, and points the webhook configuration at it: a
/// `url` client config to the process on loopback instead of the Service, with the caBundle
/// from `cronpush certs`. Returns once the API server calls the webhook.
fn install(overlay: &str, case: &str, gateway_url: &str) -> Installed {
    install_with_flags(overlay, case, gateway_url, &[])
}

/// As `install`, the webhook started with more flags.
fn install_with_flags(overlay: &str, case: &str, gateway_url: &str, flags: &[&str]) -> Installed {
    let plane = control_plane();
    let rendered = kustomize::render(&format!("manifests/webhook/overlays/{overlay}"));
    let documents = kustomize::documents(&rendered).unwrap();
    let mut configuration = None;
    for (_, object) in documents {
        if object["kind"] == "MutatingWebhookConfiguration" {
            configuration = Some(object);
            continue;
        }
        let (status, reply) = plane.try_create(&object);
        assert!(status == 201 || status == 409, "the API server refused a shipped object: {status} {reply}");
    }
    let token = plane.token("cronpush", "cronpush-webhook", &[], None);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = plane.kubeconfig(dir.path(), &token);
    let webhook = Webhook::start_with_kubeconfig(&kubeconfig, gateway_url, flags);
    std::mem::forget(dir); // the webhook reads its kubeconfig for as long as it runs

    let mut configuration = configuration.expect("the overlay has a MutatingWebhookConfiguration");
    configuration["metadata"]["name"] = json!(format!("cronpush-{case}"));
    let hook = &mut configuration["webhooks"][0];
    hook["clientConfig"] = json!({
        "url": format!("https://127.0.0.1:{}/mutate", webhook.address.port()),
        "caBundle": base64::engine::general_purpose::STANDARD.encode(&webhook.ca),
    });
    hook["namespaceSelector"]["matchExpressions"]
        .as_array_mut()
        .expect("the shipped namespaceSelector has matchExpressions")
        .push(json!({"key": CASE_LABEL, "operator": "In", "values": [case]}));
    plane.create(&configuration);
    let installed = Installed { webhook, case: case.into() };
    installed.wait_until_called();
    installed
}

impl Installed {
    /// A namespace this test's webhook configuration may select, with more labels.
    fn namespace(&self, name: &str, labels: Value) -> String {
        let mut labels = labels;
        labels[CASE_LABEL] = json!(self.case);
        control_plane().create(&json!({"apiVersion": "v1", "kind": "Namespace",
                                       "metadata": {"name": name, "labels": labels}}));
        // The service-account controller creates `default`; Pods wait for it.
        control_plane().wait_for(&format!("/api/v1/namespaces/{name}/serviceaccounts/default"), WAIT, |_| true);
        name.into()
    }

    /// The API server picks up a new webhook configuration asynchronously: dry-run creations of
    /// a Job-owned Pod in a namespace of this case until the webhook counts one.
    fn wait_until_called(&self) {
        let plane = control_plane();
        let namespace = self.namespace(&format!("{}-probe", self.case), json!({"cronpush.io/inject": "enabled"}));
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "probe", "namespace": namespace,
                         "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "probe",
                                              "uid": "00000000-0000-0000-0000-000000000000", "controller": true}]},
            "spec": {"containers": [{"name": "main", "image": "busybox"}]}});
        let path = format!("/api/v1/namespaces/{namespace}/pods?dryRun=All");
        let deadline = Instant::now() + WAIT;
        while !self.webhook.metrics().contains("reason=\"unknown_owner\"") {
            assert!(Instant::now() < deadline, "the API server never called the webhook");
            plane.request("POST", &path, Some(&pod));
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

const WAIT: Duration = Duration::from_secs(60);

/// A CronJob whose Pods pass Pod Security "restricted" on their own, so that a namespace that
/// enforces it judges what cronpush adds.
fn cronjob(namespace: &str, name: &str, schedule: &str, pod_labels: Value) -> Value {
    json!({"apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"schedule": schedule, "startingDeadlineSeconds": 30, "concurrencyPolicy": "Allow",
            "jobTemplate": {"spec": {"backoffLimit": 0, "template": {
                "metadata": {"labels": pod_labels},
                "spec": {"restartPolicy": "Never",
                    "securityContext": {"runAsNonRoot": true, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{"name": "main-batch", "image": "busybox", "command": ["true"],
                        "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]}}}}}})
}

/// The Job `kubectl create job <name> --from=cronjob/<cronjob>` creates (kubectl's
/// pkg/cmd/create/create_job.go, createJobFromCronJob): the CronJob's job template, the
/// annotation `cronjob.kubernetes.io/instantiate: manual`, and the CronJob as its controller.
fn job_from(plane: &ControlPlane, cronjob: &Value, name: &str) -> Value {
    let template = &cronjob["spec"]["jobTemplate"];
    let mut annotations = template["metadata"]["annotations"].clone();
    if annotations.is_null() {
        annotations = json!({});
    }
    annotations["cronjob.kubernetes.io/instantiate"] = json!("manual");
    let job = json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": cronjob["metadata"]["namespace"],
                     "annotations": annotations, "labels": template["metadata"]["labels"].clone(),
                     "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob",
                                          "name": cronjob["metadata"]["name"], "uid": cronjob["metadata"]["uid"],
                                          "controller": true}]},
        "spec": template["spec"].clone()});
    plane.create(&job)
}

/// The first Pod the Job controller created for `job`, once it exists.
fn pod_of(plane: &ControlPlane, namespace: &str, job: &str) -> Value {
    pods_of(plane, namespace, job, 1).swap_remove(0)
}

fn init_container_names(pod: &Value) -> Vec<String> {
    pod["spec"]["initContainers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

fn env_of(pod: &Value, container: &str, name: &str) -> Option<String> {
    let containers = pod["spec"]["initContainers"].as_array()?;
    let container = containers.iter().find(|c| c["name"] == container)?;
    let var = container["env"].as_array()?.iter().find(|v| v["name"] == name)?;
    // The API server stores an empty value as no value (Go's omitempty); the kubelet sets such a
    // variable to the empty string.
    Some(var["value"].as_str().unwrap_or_default().to_string())
}

/// The names of the containers that mount `volume`.
fn mounting(pod: &Value, volume: &str) -> Vec<String> {
    let spec = &pod["spec"];
    spec["initContainers"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(spec["containers"].as_array().into_iter().flatten())
        .filter(|c| c["volumeMounts"].as_array().into_iter().flatten().any(|m| m["name"] == volume))
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

/// Seconds since the epoch of an RFC 3339 time the API server wrote.
fn seconds(time: &Value) -> i64 {
    time.as_str().unwrap().parse::<jiff::Timestamp>().unwrap().as_second()
}

#[test]
fn a_manual_run_is_injected_and_the_patched_pod_passes_the_real_admission_chain() {
    let plane = control_plane();
    let installed = install("cluster", "manual", "http://gateway.example:9091");
    let namespace = installed.namespace("manual-run", json!({"pod-security.kubernetes.io/enforce": "restricted"}));
    let cronjob = plane.create(&cronjob(&namespace, "nightly", "0 3 * * *", json!({})));
    job_from(plane, &cronjob, "nightly-by-hand");
    let pod = pod_of(plane, &namespace, "nightly-by-hand");

    // Stored by the API server after PodSecurity "restricted" judged it with our containers.
    assert_eq!(init_container_names(&pod), ["cronpush-start", "cronpush-sidecar"], "{pod}");
    assert_eq!(pod["spec"]["initContainers"][1]["restartPolicy"], "Always", "a native sidecar");
    assert_eq!(env_of(&pod, "cronpush-start", "CRONPUSH_CRONJOB").as_deref(), Some("nightly"));
    assert_eq!(env_of(&pod, "cronpush-start", "CRONPUSH_SCHEDULE").as_deref(), Some("0 3 * * *"));
    assert_eq!(
        env_of(&pod, "cronpush-start", "CRONPUSH_SCHEDULED_TIME").as_deref(),
        Some(""),
        "a manual run has no slot"
    );
    let created = seconds(&cronjob["metadata"]["creationTimestamp"]).to_string();
    assert_eq!(env_of(&pod, "cronpush-start", "CRONPUSH_CRONJOB_CREATED"), Some(created));
    let status: Value =
        serde_json::from_str(pod["metadata"]["annotations"]["cronpush.io/status"].as_str().unwrap()).unwrap();
    assert_eq!(status["facts"], "api", "the Job and CronJob were read with the shipped RBAC");
    let metrics = installed.webhook.metrics();
    assert!(metrics.contains("outcome=\"injected\",reason=\"api\"} 1\n"), "{metrics}");

    // The ServiceAccount plugin mounted the Pod's API token into the Job's own container, and
    // not into ours, though it ran again after our patch; our token reaches the sidecar alone.
    let api_access = pod["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|v| v["name"].as_str().filter(|n| n.starts_with("kube-api-access-")))
        .expect("the ServiceAccount plugin's token volume")
        .to_string();
    assert_eq!(mounting(&pod, &api_access), ["main-batch"], "{pod}");
    assert_eq!(mounting(&pod, "cronpush-token"), ["cronpush-sidecar"], "{pod}");
}

#[test]
fn the_namespace_overlay_the_pod_opt_out_and_the_owner_decide_in_the_api_server() {
    let plane = control_plane();
    let installed = install("namespace", "selection", "http://gateway.example:9091");
    let enabled = installed.namespace("selection-enabled", json!({"cronpush.io/inject": "enabled"}));
    let other = installed.namespace("selection-other", json!({}));
    let before = installed.webhook.metrics();

    // Only the labelled namespace is injected; the other's Pod never reaches the webhook.
    for namespace in [&enabled, &other] {
        let cronjob = plane.create(&cronjob(namespace, "hourly", "0 * * * *", json!({})));
        job_from(plane, &cronjob, "hourly-by-hand");
    }
    assert_eq!(
        init_container_names(&pod_of(plane, &enabled, "hourly-by-hand")),
        ["cronpush-start", "cronpush-sidecar"]
    );
    assert!(init_container_names(&pod_of(plane, &other, "hourly-by-hand")).is_empty());

    // The Pod label opt-out: the objectSelector keeps the Pod from the webhook.
    let opted_out = plane.create(&cronjob(&enabled, "quiet", "0 * * * *", json!({"cronpush.io/inject": "disabled"})));
    job_from(plane, &opted_out, "quiet-by-hand");
    assert!(init_container_names(&pod_of(plane, &enabled, "quiet-by-hand")).is_empty());

    // A Pod no Job controls: the matchConditions CEL keeps it from the webhook.
    plane.create(&json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "plain", "namespace": enabled},
                         "spec": {"containers": [{"name": "main", "image": "busybox"}]}}));

    // A Job of no CronJob reaches the webhook, which leaves its Pod alone.
    let job = cronjob(&enabled, "unused", "0 * * * *", json!({}))["spec"]["jobTemplate"]["spec"].clone();
    plane.create(&json!({"apiVersion": "batch/v1", "kind": "Job",
                         "metadata": {"name": "standalone", "namespace": enabled}, "spec": job}));
    assert!(init_container_names(&pod_of(plane, &enabled, "standalone")).is_empty());

    let after = installed.webhook.metrics();
    let count = |metrics: &str, series: &str| -> u64 {
        metrics.lines().find_map(|l| l.strip_prefix(series)).map_or(0, |v| v.trim().parse().unwrap())
    };
    let injected = "cronpush_webhook_admissions_total{outcome=\"injected\",reason=\"api\"}";
    let not_cronjob = "cronpush_webhook_admissions_total{outcome=\"skipped\",reason=\"not_cronjob_pod\"}";
    assert_eq!(count(&after, injected) - count(&before, injected), 1, "{after}");
    assert_eq!(count(&after, not_cronjob) - count(&before, not_cronjob), 1, "only the standalone Job's Pod: {after}");
    let reviews = |m: &str| -> u64 {
        m.lines()
            .filter(|l| l.starts_with("cronpush_webhook_admissions_total{"))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum()
    };
    // The injected Pod is reviewed once: the in-tree plugins that run again after our patch
    // (reinvocation) change nothing, so reinvocationPolicy IfNeeded calls us no second time.
    assert_eq!(reviews(&after) - reviews(&before), 2, "the webhook saw two Pods, and no other: {after}");
}

#[test]
fn the_cronjob_controller_creates_a_job_on_the_schedule_and_its_pod_carries_the_slot() {
    let plane = control_plane();
    let installed = install("cluster", "tick", "http://gateway.example:9091");
    let namespace = installed.namespace("tick", json!({}));
    plane.create(&cronjob(&namespace, "every-minute", "* * * * *", json!({})));
    // The next minute's slot, at most a minute and the controller's resync away.
    let jobs =
        plane.wait_for(&format!("/apis/batch/v1/namespaces/{namespace}/jobs"), Duration::from_secs(90), |list| {
            list["items"].as_array().is_some_and(|items| !items.is_empty())
        });
    let job = &jobs["items"][0];
    let name = job["metadata"]["name"].as_str().unwrap();
    let slot = seconds(&job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]);
    assert_eq!(name, format!("every-minute-{}", slot / 60), "the controller names a Job by its slot in minutes");
    let pod = pod_of(plane, &namespace, name);
    assert_eq!(init_container_names(&pod), ["cronpush-start", "cronpush-sidecar"]);
    assert_eq!(env_of(&pod, "cronpush-start", "CRONPUSH_SCHEDULED_TIME"), Some(slot.to_string()));
    assert_eq!(env_of(&pod, "cronpush-start", "CRONPUSH_JOB_NAME").as_deref(), Some(name));
}

/// The gateway's series of one CronJob's group.
fn series_of(gateway: &Server, cronjob: &str) -> Vec<String> {
    let label = format!("cronjob=\"{cronjob}\"");
    gateway.pushed_series().into_iter().filter(|s| s.contains(&label)).collect()
}

fn has(series: &[String], prefix: &str, value: &str) -> bool {
    series.iter().any(|s| s.starts_with(prefix) && s.ends_with(&format!(" {value}")))
}

/// Whether the Job has the condition `type` with status True (and `reason`, when given).
fn job_condition(job: &Value, kind: &str, reason: Option<&str>) -> bool {
    job["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == kind && c["status"] == "True" && reason.is_none_or(|r| c["reason"] == r))
}

#[test]
fn runs_report_their_end_through_the_relay_and_the_job_controller_judges_the_same_pods() {
    let plane = control_plane();
    register_node(plane, "node-amd64", &plane.version, "amd64");
    let gateway = Server::cronpush(&[]);
    let installed = install("cluster", "runs", &gateway.base);
    let namespace = installed.namespace("runs", json!({}));
    for (name, command, result, exit_code) in
        [("succeeds", "exit 0", "success", "0"), ("fails", "exit 3", "failure", "3")]
    {
        let object = plane.create(&cronjob(&namespace, name, "0 3 * * *", json!({})));
        let job = format!("{name}-by-hand");
        job_from(plane, &object, &job);
        let run = NodeRun::bind(plane, pod_of(plane, &namespace, &job), "node-amd64");
        run.run_to_end(command);

        // What the sidecar learned from the relay, which reviewed its token and learned its Pod
        // from its one watch of injected Pods (the label selector, through the shipped RBAC) on
        // the real API server.
        let series = series_of(&gateway, name);
        let group = format!("cronjob=\"{name}\",instance=\"\",job=\"cronpush\",namespace=\"{namespace}\"");
        assert!(has(&series, &format!("cronjob_last_result{{{group},result=\"{result}\"}}"), "1"), "{series:#?}");
        let exit = format!("cronjob_last_exit_code{{container=\"main-batch\",{group}}}");
        assert!(has(&series, &exit, exit_code), "{series:#?}\n{}", run.log("cronpush-sidecar"));
        // A Job made from the CronJob by hand: its start goes under a name of its own.
        assert!(series.iter().any(|s| s.starts_with("cronjob_last_manual_start_timestamp_seconds{")), "{series:#?}");

        // The Job controller judged the same Pod: complete, or failed with backoffLimit 0.
        let path = format!("/apis/batch/v1/namespaces/{namespace}/jobs/{job}");
        let verdict = if result == "success" { ("Complete", None) } else { ("Failed", Some("BackoffLimitExceeded")) };
        plane.wait_for(&path, WAIT, |job| job_condition(job, verdict.0, verdict.1));
    }
    let metrics = installed.webhook.metrics();
    assert!(metrics.contains("cronpush_webhook_relay_requests_total{outcome=\"complete\"} 2"), "{metrics}");
    // Both Pods are in the shared watch (they still exist, complete or failed), with the injected
    // Pods of the other tests that share this control plane.
    let watched = metrics.lines().find_map(|l| l.strip_prefix("cronpush_webhook_relay_watched_pods "));
    assert!(watched.and_then(|n| n.parse::<f64>().ok()).is_some_and(|n| n >= 2.0), "{metrics}");
}

/// The relay's push mode (the relay-push overlay) in the real control plane: `start` and the
/// sidecar push through the relay with their Pod's projected token from the TokenRequest API, the
/// relay reviews it with the real API server and follows the Pod to its Job and CronJob through
/// the owner references that the Job controller and `kubectl create job --from` wrote, and
/// forwards into the README's Pi gateway (TLS from a private CA, basic auth) with the webhook's
/// own CA and credentials. The same token cannot write another CronJob's group.
#[test]
fn through_the_relay_a_run_writes_its_own_cronjobs_group_in_a_tls_gateway_and_no_other() {
    let plane = control_plane();
    register_node(plane, "node-amd64", &plane.version, "amd64");
    let gateway = TlsGateway::start();
    let flags = [
        "--push-mode=relay".to_string(),
        format!("--gateway-ca-file={}", gateway.ca_file()),
        format!("--gateway-username={GATEWAY_USER}"),
        format!("--gateway-password={GATEWAY_PASSWORD}"),
    ];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let installed = install_with_flags("relay-push", "relay-push", &gateway.url, &flags);
    let namespace = installed.namespace("relay-push", json!({}));
    let nightly = plane.create(&cronjob(&namespace, "nightly", "0 3 * * *", json!({})));
    plane.create(&cronjob(&namespace, "other", "0 4 * * *", json!({})));
    job_from(plane, &nightly, "nightly-by-hand");
    let run = NodeRun::bind(plane, pod_of(plane, &namespace, "nightly-by-hand"), "node-amd64");
    run.run_to_end("exit 0");

    let scrape = gateway.scrape();
    let result = format!(
        "cronjob_last_result{{cronjob=\"nightly\",instance=\"\",job=\"cronpush\",namespace=\"{namespace}\",result=\"success\"}} 1"
    );
    assert!(scrape.lines().any(|l| l == result), "{scrape}\n{}", run.log("cronpush-sidecar"));
    let metrics = installed.webhook.metrics();
    assert!(metrics.contains("cronpush_webhook_relay_pushes_total{outcome=\"forwarded\"} 2"), "{metrics}");

    let token = std::fs::read_to_string(run.mounts()["cronpush-token"].join("token")).unwrap();
    let intrude = |path: &str, method: reqwest::Method| {
        let url = installed.webhook.url(&format!("/v1/push/metrics/job/cronpush/namespace/{namespace}/cronjob/{path}"));
        let reply = installed.webhook.client(HOST).request(method, url).bearer_auth(&token);
        let reply = reply.body("cronjob_last_result{result=\"success\"} 1\n").send().unwrap();
        (reply.status().as_u16(), reply.text().unwrap())
    };
    let (status, answer) = intrude("other", reqwest::Method::POST);
    assert_eq!(status, 403, "{answer}");
    assert!(answer.contains("may push only into its CronJob's group"), "{answer}");
    let (status, answer) = intrude("nightly", reqwest::Method::DELETE);
    assert_eq!(status, 403, "{answer}");
    let other_results =
        gateway.scrape().lines().filter(|l| l.contains("cronjob=\"other\"") && l.contains("result=")).count();
    assert_eq!(other_results, 0, "nothing reached the other CronJob's group");
}

/// The gateway's groups as `namespace/cronjob`.
fn groups(gateway: &Server) -> Vec<String> {
    let body: Value = serde_json::from_str(&gateway.get("/api/v1/metrics").body).unwrap();
    let mut groups: Vec<String> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| format!("{}/{}", g["labels"]["namespace"].as_str().unwrap(), g["labels"]["cronjob"].as_str().unwrap()))
        .collect();
    groups.sort();
    groups
}

#[test]
fn the_group_of_a_cronjob_deleted_through_the_api_goes_from_the_gateway() {
    let plane = control_plane();
    let gateway = Server::cronpush(&[]);
    for cronjob in ["kept", "deleted", "gone-before"] {
        let path = format!("/metrics/job/cronpush/namespace/cleanup/cronjob/{cronjob}");
        assert_eq!(gateway.post(&path, "cronjob_last_start_timestamp_seconds 1\n").status, 200);
    }
    // Created before the webhook starts, so that its first complete list holds both.
    let namespace = "cleanup";
    plane.create(&json!({"apiVersion": "v1", "kind": "Namespace",
                         "metadata": {"name": namespace, "labels": {CASE_LABEL: "cleanup"}}}));
    for cronjob_name in ["kept", "deleted"] {
        plane.create(&cronjob(namespace, cronjob_name, "0 3 * * *", json!({})));
    }
    let _installed = install_with_flags("cluster", "cleanup", &gateway.base, &["--delete-groups-of-deleted-cronjobs"]);
    // A CronJob deleted while no webhook ran: its group goes once the webhook has listed them.
    let caught_up = support::eventually(WAIT, || groups(&gateway) == ["cleanup/deleted", "cleanup/kept"]);
    assert!(caught_up, "{:?}", groups(&gateway));
    // `kubectl delete cronjob deleted`: the API server's DELETED event reaches the webhook's watch.
    plane.delete(&format!("/apis/batch/v1/namespaces/{namespace}/cronjobs/deleted"));
    let deleted = support::eventually(WAIT, || groups(&gateway) == ["cleanup/kept"]);
    assert!(deleted, "{:?}", groups(&gateway));
}

#[test]
fn a_windows_pod_is_created_as_written_and_a_pod_with_our_names_is_not_taken_for_ours() {
    let plane = control_plane();
    let installed = install("cluster", "edges", "http://gateway.example:9091");
    let namespace = installed.namespace("edges", json!({}));
    // The API server refuses runAsUser, seccompProfile and capabilities in a Pod for Windows
    // (validateWindows): injected, the Job controller could not create this Pod at all.
    let mut windows = cronjob(&namespace, "windows", "0 3 * * *", json!({}));
    let template = &mut windows["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    template["os"] = json!({"name": "windows"});
    template["securityContext"] = json!({});
    template["containers"][0]["securityContext"] = json!({});
    let windows = plane.create(&windows);
    job_from(plane, &windows, "windows-by-hand");
    assert!(init_container_names(&pod_of(plane, &namespace, "windows-by-hand")).is_empty());

    // A Job's own init container that happens to be named like ours: left alone, not "injected".
    let mut named = cronjob(&namespace, "named-like-us", "0 3 * * *", json!({}));
    let template = &mut named["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    let mut init = template["containers"][0].clone();
    init["name"] = json!("cronpush-start");
    template["initContainers"] = json!([init]);
    let named = plane.create(&named);
    job_from(plane, &named, "named-by-hand");
    assert_eq!(init_container_names(&pod_of(plane, &namespace, "named-by-hand")), ["cronpush-start"]);

    let metrics = installed.webhook.metrics();
    assert!(metrics.contains("outcome=\"skipped\",reason=\"windows_pod\"} 1\n"), "{metrics}");
    assert!(metrics.contains("outcome=\"skipped\",reason=\"name_collision\"} 1\n"), "{metrics}");
}

/// The Pods the Job controller has created for `job`, oldest first, once there are `count`.
fn pods_of(plane: &ControlPlane, namespace: &str, job: &str, count: usize) -> Vec<Value> {
    let path = format!("/api/v1/namespaces/{namespace}/pods?labelSelector=batch.kubernetes.io/job-name%3D{job}");
    let list = plane.wait_for(&path, WAIT, |list| list["items"].as_array().is_some_and(|items| items.len() >= count));
    let mut pods = list["items"].as_array().unwrap().clone();
    pods.sort_by_key(|p| {
        (p["metadata"]["creationTimestamp"].as_str().unwrap().to_string(), p["metadata"]["name"].to_string())
    });
    pods
}

#[test]
fn a_failed_pod_that_the_job_controller_retries_reports_each_attempt_and_the_job_ends_complete() {
    let plane = control_plane();
    register_node(plane, "node-amd64", &plane.version, "amd64");
    let gateway = Server::cronpush(&[]);
    let installed = install("cluster", "retries", &gateway.base);
    let namespace = installed.namespace("retries", json!({}));
    let mut object = cronjob(&namespace, "flaky", "0 3 * * *", json!({}));
    object["spec"]["jobTemplate"]["spec"]["backoffLimit"] = json!(1);
    let object = plane.create(&object);
    job_from(plane, &object, "flaky-by-hand");
    let group = format!("cronjob=\"flaky\",instance=\"\",job=\"cronpush\",namespace=\"{namespace}\"");

    let first = NodeRun::bind(plane, pods_of(plane, &namespace, "flaky-by-hand", 1)[0].clone(), "node-amd64");
    first.run_to_end("exit 3");
    // The relay read the real Job: its first failure is within backoffLimit, so it is retried.
    let series = series_of(&gateway, "flaky");
    assert!(has(&series, &format!("cronjob_last_result{{{group},result=\"retrying\"}}"), "1"), "{series:#?}");
    assert!(has(&series, &format!("cronjob_last_attempt{{{group}}}"), "1"), "{series:#?}");

    // The Job controller replaces the failed Pod (after its back-off) with a second attempt,
    // which the API server admits through the webhook like the first.
    let pods = pods_of(plane, &namespace, "flaky-by-hand", 2);
    assert_eq!(init_container_names(&pods[1]), ["cronpush-start", "cronpush-sidecar"]);
    let second = NodeRun::bind(plane, pods[1].clone(), "node-amd64");
    second.run_to_end("exit 0");
    let series = series_of(&gateway, "flaky");
    assert!(has(&series, &format!("cronjob_last_result{{{group},result=\"success\"}}"), "1"), "{series:#?}");
    assert!(has(&series, &format!("cronjob_last_attempt{{{group}}}"), "2"), "{series:#?}");
    let path = format!("/apis/batch/v1/namespaces/{namespace}/jobs/flaky-by-hand");
    let job = plane.wait_for(&path, WAIT, |job| job_condition(job, "Complete", None));
    assert_eq!((job["status"]["failed"].as_i64(), job["status"]["succeeded"].as_i64()), (Some(1), Some(1)), "{job}");
}

#[test]
fn a_job_past_its_deadline_deletes_the_pod_and_the_end_says_deadline_exceeded_within_the_two_seconds() {
    let plane = control_plane();
    register_node(plane, "node-amd64", &plane.version, "amd64");
    let gateway = Server::cronpush(&[]);
    let installed = install("cluster", "deadline", &gateway.base);
    let namespace = installed.namespace("deadline", json!({}));
    let mut object = cronjob(&namespace, "slow", "0 3 * * *", json!({}));
    // The Job may run 3 s; its Pod's grace is 1 s, and its main container ignores SIGTERM.
    object["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"] = json!(3);
    object["spec"]["jobTemplate"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = json!(1);
    let object = plane.create(&object);
    job_from(plane, &object, "slow-by-hand");
    let run = NodeRun::bind(plane, pod_of(plane, &namespace, "slow-by-hand"), "node-amd64");
    // The real Job controller deletes the Pod at the deadline; the kubelet stops it.
    let killed = run.run_until_deleted("trap '' TERM; exec sleep 60");
    assert_eq!(killed.main["exitCode"], 137, "SIGKILL at the end of the grace period");
    let (status, took) = killed
        .sidecar_exit
        .unwrap_or_else(|| panic!("the sidecar outlived the kubelet's 2 s: {}", run.log("cronpush-sidecar")));
    assert_eq!(status.code(), Some(0), "{}", run.log("cronpush-sidecar"));
    assert!(took < Duration::from_secs(2), "{took:?}");

    // The relay read the Job's verdict, which the Job controller writes only on the Job.
    let series = series_of(&gateway, "slow");
    let group = format!("cronjob=\"slow\",instance=\"\",job=\"cronpush\",namespace=\"{namespace}\"");
    let info = format!(
        "cronjob_last_termination_info{{container=\"main-batch\",{group},reason=\"DeadlineExceeded\",signal=\"\"}}"
    );
    assert!(has(&series, &info, "1"), "{series:#?}\n{}", run.log("cronpush-sidecar"));
    assert!(has(&series, &format!("cronjob_last_result{{{group},result=\"unknown\"}}"), "1"), "{series:#?}");
    let path = format!("/apis/batch/v1/namespaces/{namespace}/jobs/slow-by-hand");
    plane.wait_for(&path, WAIT, |job| job_condition(job, "Failed", Some("DeadlineExceeded")));
}

#[test]
fn a_job_whose_every_attempt_fails_ends_as_a_failure_on_its_last_attempt() {
    let plane = control_plane();
    register_node(plane, "node-amd64", &plane.version, "amd64");
    let gateway = Server::cronpush(&[]);
    let installed = install("cluster", "exhausted", &gateway.base);
    let namespace = installed.namespace("exhausted", json!({}));
    let mut object = cronjob(&namespace, "broken", "0 3 * * *", json!({}));
    object["spec"]["jobTemplate"]["spec"]["backoffLimit"] = json!(1);
    let object = plane.create(&object);
    job_from(plane, &object, "broken-by-hand");
    let group = format!("cronjob=\"broken\",instance=\"\",job=\"cronpush\",namespace=\"{namespace}\"");
    for (attempt, result) in [(1, "retrying"), (2, "failure")] {
        let pods = pods_of(plane, &namespace, "broken-by-hand", attempt);
        NodeRun::bind(plane, pods[attempt - 1].clone(), "node-amd64").run_to_end("exit 5");
        let series = series_of(&gateway, "broken");
        assert!(has(&series, &format!("cronjob_last_result{{{group},result=\"{result}\"}}"), "1"), "{series:#?}");
        assert!(has(&series, &format!("cronjob_last_attempt{{{group}}}"), &attempt.to_string()), "{series:#?}");
    }
    // The Job controller agrees: the second failure was one too many.
    let path = format!("/apis/batch/v1/namespaces/{namespace}/jobs/broken-by-hand");
    plane.wait_for(&path, WAIT, |job| job_condition(job, "Failed", Some("BackoffLimitExceeded")));
}

#[test]
fn under_a_limit_range_and_a_quota_the_patched_pod_is_admitted_with_the_defaults_filled_in() {
    let plane = control_plane();
    let installed = install("cluster", "quota", "http://gateway.example:9091");
    let namespace = installed.namespace("quota", json!({}));
    // LimitRanger fills these into every container that sets none, ours included when the
    // in-tree plugins run again after our patch (plugin/pkg/admission/limitranger).
    plane.create(
        &json!({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "defaults", "namespace": namespace},
        "spec": {"limits": [{"type": "Container", "default": {"cpu": "200m", "memory": "64Mi"},
                             "defaultRequest": {"cpu": "50m", "memory": "32Mi"}}]}}),
    );
    // The quota evaluator requires every container, init containers included, to set what a
    // quota tracks (pkg/quota/v1/evaluator/core/pods.go).
    plane.create(
        &json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "team", "namespace": namespace},
        "spec": {"hard": {"requests.cpu": "2", "requests.memory": "1Gi", "limits.cpu": "4", "limits.memory": "2Gi",
                          "pods": "10"}}}),
    );
    // The quota controller has computed the quota's first usage: admission checks against it.
    plane.wait_for(&format!("/api/v1/namespaces/{namespace}/resourcequotas/team"), WAIT, |q| {
        !q["status"]["used"].is_null()
    });
    let object = plane.create(&cronjob(&namespace, "limited", "0 3 * * *", json!({})));
    job_from(plane, &object, "limited-by-hand");
    let pod = pod_of(plane, &namespace, "limited-by-hand");
    assert_eq!(init_container_names(&pod), ["cronpush-start", "cronpush-sidecar"]);
    for container in pod["spec"]["initContainers"].as_array().unwrap() {
        let resources = &container["resources"];
        // Ours as configured, and as the CPU limit the LimitRange's default, which the webhook
        // sets itself rather than leave to LimitRanger.
        assert_eq!(resources["requests"], json!({"cpu": "10m", "memory": "16Mi"}), "{container}");
        assert_eq!(resources["limits"], json!({"cpu": "200m", "memory": "32Mi"}), "{container}");
    }
    let quota = plane.wait_for(&format!("/api/v1/namespaces/{namespace}/resourcequotas/team"), WAIT, |q| {
        q["status"]["used"]["pods"] == "1"
    });
    assert_eq!(quota["status"]["used"]["pods"], "1", "{quota}");
}

#[test]
fn an_old_node_in_the_real_api_server_stops_injection_through_the_shipped_rbac() {
    let plane = control_plane();
    // A 1.28 kubelet refuses a Pod with a native sidecar. The Node is tainted from its
    // registration on, so that only Pods that tolerate the taint may land there: the other tests
    // of this binary share the control plane, and their Pods may not land on it.
    let taint = json!({"key": "cronpush.test/old-kubelet", "value": "true", "effect": "NoSchedule"});
    register_tainted_node(plane, "node-1-28", "v1.28.15", "amd64", json!([taint]));
    let installed = install("cluster", "old-node", "http://gateway.example:9091");
    let namespace = installed.namespace("old-node", json!({}));

    let mut tolerating = cronjob(&namespace, "tolerating", "0 3 * * *", json!({}));
    tolerating["spec"]["jobTemplate"]["spec"]["template"]["spec"]["tolerations"] =
        json!([{"key": "cronpush.test/old-kubelet", "operator": "Exists", "effect": "NoSchedule"}]);
    let tolerating = plane.create(&tolerating);
    job_from(plane, &tolerating, "tolerating-by-hand");
    let pod = pod_of(plane, &namespace, "tolerating-by-hand");
    assert!(init_container_names(&pod).is_empty(), "a Pod that may land on the 1.28 node: {pod}");
    assert!(pod["metadata"]["annotations"]["cronpush.io/status"].is_null(), "{pod}");

    // A Pod that does not tolerate the taint cannot land there: injected. Both verdicts need
    // the Nodes, which the webhook reads with the shipped RBAC alone.
    let elsewhere = plane.create(&cronjob(&namespace, "elsewhere", "0 3 * * *", json!({})));
    job_from(plane, &elsewhere, "elsewhere-by-hand");
    assert_eq!(
        init_container_names(&pod_of(plane, &namespace, "elsewhere-by-hand")),
        ["cronpush-start", "cronpush-sidecar"]
    );

    let metrics = installed.webhook.metrics();
    assert!(metrics.contains("outcome=\"skipped\",reason=\"old_kubelet\"} 1\n"), "{metrics}");
    assert!(!metrics.contains("reason=\"nodes_unknown\""), "{metrics}");
}

/// Creates a LimitRange or a ResourceQuota in `namespace`; a quota once the quota controller has
/// computed its usage, which admission checks against (and the webhook's cache has seen it).
fn policy(plane: &ControlPlane, namespace: &str, kind: &str, name: &str, spec: Value) {
    plane.create(&json!({"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": namespace},
                         "spec": spec}));
    if kind == "ResourceQuota" {
        plane.wait_for(&format!("/api/v1/namespaces/{namespace}/resourcequotas/{name}"), WAIT, |q| {
            !q["status"]["used"].is_null()
        });
    }
}

/// A CronJob whose main container sets `resources`, and whose Pod sets `pod_resources` (pod-level
/// `spec.resources`) unless null.
fn cronjob_with_resources(namespace: &str, name: &str, resources: Value, pod_resources: Value) -> Value {
    let mut object = cronjob(namespace, name, "0 3 * * *", json!({}));
    let template = &mut object["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    template["containers"][0]["resources"] = resources;
    if !pod_resources.is_null() {
        template["resources"] = pod_resources;
    }
    object
}

/// The resources of our two containers in a Pod the API server stored, which must be the same.
fn injected_resources(pod: &Value) -> Value {
    assert_eq!(init_container_names(pod), ["cronpush-start", "cronpush-sidecar"], "{pod}");
    let containers = pod["spec"]["initContainers"].as_array().unwrap();
    assert_eq!(containers[0]["resources"], containers[1]["resources"], "{pod}");
    containers[0]["resources"].clone()
}

fn skipped(installed: &Installed, reason: &str) -> u64 {
    let series = format!("cronpush_webhook_admissions_total{{outcome=\"skipped\",reason=\"{reason}\"}} ");
    installed.webhook.metrics().lines().find_map(|l| l.strip_prefix(&series)).map_or(0, |v| v.parse().unwrap())
}

#[test]
fn a_quota_on_cpu_limits_with_no_default_admits_the_pod_with_a_cpu_limit_on_ours() {
    let plane = control_plane();
    let installed = install("cluster", "cpu-quota", "http://gateway.example:9091");
    let namespace = installed.namespace("cpu-quota", json!({}));
    // With a quota on limits.cpu, every container must set one (pods.go `Constraints`), and no
    // LimitRange default fills it in: containers without one made the Job's Pod forbidden.
    let hard = json!({"requests.cpu": "1", "requests.memory": "1Gi", "limits.cpu": "2", "limits.memory": "1Gi"});
    policy(plane, &namespace, "ResourceQuota", "team", json!({"hard": hard}));
    let own = json!({"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "64Mi"}});
    let object = plane.create(&cronjob_with_resources(&namespace, "limited", own, Value::Null));
    job_from(plane, &object, "limited-by-hand");
    assert_eq!(
        injected_resources(&pod_of(plane, &namespace, "limited-by-hand")),
        json!({"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "100m", "memory": "32Mi"}})
    );
}

#[test]
fn limit_ranges_that_refuse_the_configured_resources_get_resources_they_accept() {
    let plane = control_plane();
    let installed = install("cluster", "limit-ranges", "http://gateway.example:9091");
    // A memory limit at most 1.5 times the request: 16Mi and 32Mi would be refused.
    let ratio = installed.namespace("limit-ratio", json!({}));
    let item = json!({"type": "Container", "maxLimitRequestRatio": {"memory": "1500m"}});
    policy(plane, &ratio, "LimitRange", "ratio", json!({"limits": [item]}));
    // At least 48Mi of memory per container: 16Mi would be refused.
    let minimum = installed.namespace("limit-min", json!({}));
    let item = json!({"type": "Container", "min": {"memory": "48Mi"}});
    policy(plane, &minimum, "LimitRange", "minimum", json!({"limits": [item]}));

    let own = json!({"requests": {"memory": "64Mi"}, "limits": {"memory": "64Mi"}});
    for (namespace, expected) in [
        (&ratio, json!({"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "24Mi"}})),
        (&minimum, json!({"requests": {"cpu": "10m", "memory": "48Mi"}, "limits": {"memory": "48Mi"}})),
    ] {
        let object = plane.create(&cronjob_with_resources(namespace, "bounded", own.clone(), Value::Null));
        job_from(plane, &object, "bounded-by-hand");
        assert_eq!(injected_resources(&pod_of(plane, namespace, "bounded-by-hand")), expected, "{namespace}");
    }
}

#[test]
fn a_quota_that_takes_the_pod_but_not_the_injection_admits_the_pod_as_written() {
    let plane = control_plane();
    let installed = install("cluster", "quota-full", "http://gateway.example:9091");
    let namespace = installed.namespace("quota-full", json!({}));
    // 72Mi of requests left: the Job's 64Mi fit, with our 16Mi beside it they would not.
    policy(plane, &namespace, "ResourceQuota", "small", json!({"hard": {"requests.memory": "72Mi"}}));
    let own = json!({"requests": {"memory": "64Mi"}, "limits": {"memory": "64Mi"}});
    let object = plane.create(&cronjob_with_resources(&namespace, "tight", own, Value::Null));
    job_from(plane, &object, "tight-by-hand");
    let pod = pod_of(plane, &namespace, "tight-by-hand");
    assert!(init_container_names(&pod).is_empty(), "{pod}");
    assert_eq!(skipped(&installed, "resources_refused"), 1);
}

#[test]
fn pod_level_resources_are_kept_valid_or_the_pod_is_left_alone() {
    let plane = control_plane();
    let installed = install("cluster", "pod-level", "http://gateway.example:9091");
    let namespace = installed.namespace("pod-level", json!({}));
    // The Pod's spec.resources must cover its containers' requests added up, ours included
    // (validation.go `validatePodResourceConsistency`). Room left: injected.
    let roomy = json!({"requests": {"cpu": "500m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}});
    let object = plane.create(&cronjob_with_resources(&namespace, "roomy", json!({}), roomy));
    job_from(plane, &object, "roomy-by-hand");
    let pod = pod_of(plane, &namespace, "roomy-by-hand");
    injected_resources(&pod);
    assert_eq!(pod["spec"]["resources"]["requests"], json!({"cpu": "500m", "memory": "128Mi"}), "{pod}");

    // The main container takes all of it: with ours the Pod would be invalid; left alone.
    let full = json!({"requests": {"memory": "64Mi"}});
    let own = json!({"requests": {"memory": "64Mi"}});
    let object = plane.create(&cronjob_with_resources(&namespace, "full", own, full));
    job_from(plane, &object, "full-by-hand");
    assert!(init_container_names(&pod_of(plane, &namespace, "full-by-hand")).is_empty());
    assert_eq!(skipped(&installed, "resources_refused"), 1);
}
