//! The real `cronpush webhook` binary, with certificates from the real `cronpush certs`, driven
//! over TLS exactly as kube-apiserver drives a webhook: HTTPS POST of an AdmissionReview to the
//! Service's DNS name, the server certificate verified against the caBundle. A small fake API
//! server (tests/support/kube_api.rs) answers what the webhook asks Kubernetes (Jobs,
//! CronJobs and Nodes: lists, watches and GETs) as kube-apiserver would; it can also be down.
//!
//! Why on the fake and not on the real control plane of tests/cluster.rs: each test here needs an
//! API server that a real one cannot easily be made to be (down; answering 404 for a Job the Pod
//! names; reporting 1.28 at `/version`; holding a Job whose watch event is still in flight;
//! counting requests by path to tell a cache hit from a read; holding old and arm nodes that the
//! other tests of one real control plane would share), or sends reviews no API server
//! sends (malformed ones, a Pod that does not decode, the article's Pod as a fixture), and answers
//! in milliseconds. What the real API server decides (selection, owners, the schedule slot, the
//! admission chain after the patch, reinvocation) is tested there.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::kube_api::FakeApi;
use support::webhook::{
    HOST, Webhook, article_pod_review, cronjob_owner, env_of, job, node, patched, pod_review, sample_cronjob,
    status_annotation,
};

// ---- The tests ----------------------------------------------------------------------------

#[test]
fn a_cronjob_pod_gets_both_containers_with_the_facts_from_the_api() {
    let api = FakeApi::start();
    let name = "sample-cronjob-29396160";
    let scheduled = json!({"batch.kubernetes.io/cronjob-scheduled-timestamp": "2025-11-22T00:00:00Z"});
    api.put(job(name, Some(cronjob_owner(true)), scheduled));
    api.put(sample_cronjob());
    let webhook = Webhook::start(&api.url());
    let review = pod_review(name);
    let pod = patched(&review, &webhook.review(&review));
    let names: Vec<&str> =
        pod.spec.as_ref().unwrap().init_containers.iter().flatten().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["cronpush-start", "cronpush-sidecar"]);
    assert_eq!(env_of(&pod, "cronpush-start", "CRONPUSH_SCHEDULE").as_deref(), Some("*/1 * * * *"));
    assert_eq!(env_of(&pod, "cronpush-start", "CRONPUSH_SCHEDULED_TIME").as_deref(), Some("1763769600"));
    assert_eq!(env_of(&pod, "cronpush-start", "CRONPUSH_GRACE_SECONDS").as_deref(), Some("30"));
    assert_eq!(env_of(&pod, "cronpush-start", "CRONPUSH_GATEWAY_URL").as_deref(), Some("http://pi:8080/pushgateway"));
    let ca = env_of(&pod, "cronpush-sidecar", "CRONPUSH_RELAY_CA").unwrap();
    assert_eq!(ca.as_bytes(), webhook.ca.as_slice(), "the sidecar gets the CA to verify the relay with");
    assert_eq!(status_annotation(&pod)["facts"], "api");
    // Reinvoked on the patched Pod (reinvocationPolicy: IfNeeded), it changes nothing.
    let mut again = review.clone();
    again["request"]["object"] = serde_json::to_value(&pod).unwrap();
    assert!(webhook.review(&again).get("patch").is_none());
}

#[test]
fn jobs_and_cronjobs_come_from_the_watch_caches_and_a_job_younger_than_the_cache_is_read() {
    let api = FakeApi::start();
    let old = "sample-cronjob-29396160";
    api.put(job(old, Some(cronjob_owner(true)), json!({})));
    api.put(sample_cronjob());
    let webhook = Webhook::start(&api.url());
    // kube's watcher lists, hands the list to the cache, and only then opens the watch: a
    // second request to each collection means both caches hold what the list returned.
    let synced = support::eventually(Duration::from_secs(10), || {
        api.requests("/apis/batch/v1/jobs") >= 2 && api.requests("/apis/batch/v1/cronjobs") >= 2
    });
    assert!(synced, "the webhook never watched Jobs and CronJobs");
    for _ in 0..20 {
        let review = pod_review(old);
        assert_eq!(status_annotation(&patched(&review, &webhook.review(&review)))["facts"], "api");
    }
    assert_eq!(api.requests(&format!("/apis/batch/v1/namespaces/batch/jobs/{old}")), 0, "a cached Job is not read");
    assert_eq!(api.requests("/apis/batch/v1/namespaces/batch/cronjobs/sample-cronjob"), 0);
    // A Job whose watch event is still in flight when its Pod arrives: read directly.
    let young = "sample-cronjob-29396161";
    api.put_unannounced(job(young, Some(cronjob_owner(true)), json!({})));
    let review = pod_review(young);
    let pod = patched(&review, &webhook.review(&review));
    assert_eq!(env_of(&pod, "cronpush-start", "CRONPUSH_SCHEDULED_TIME").as_deref(), Some("1763769660"));
    assert_eq!(api.requests(&format!("/apis/batch/v1/namespaces/batch/jobs/{young}")), 1);
}

#[test]
fn a_manual_run_is_injected_without_a_schedule_slot() {
    let api = FakeApi::start();
    let manual = json!({"cronjob.kubernetes.io/instantiate": "manual"});
    api.put(job("by-hand", Some(cronjob_owner(false)), manual));
    api.put(sample_cronjob());
    let webhook = Webhook::start(&api.url());
    let review = pod_review("by-hand");
    let pod = patched(&review, &webhook.review(&review));
    assert_eq!(env_of(&pod, "cronpush-start", "CRONPUSH_CRONJOB").as_deref(), Some("sample-cronjob"));
    assert_eq!(env_of(&pod, "cronpush-start", "CRONPUSH_SCHEDULED_TIME").as_deref(), Some(""), "empty: no slot");
}

#[test]
fn a_job_without_a_cronjob_is_left_alone() {
    let api = FakeApi::start();
    api.put(job("plain", None, json!({})));
    let webhook = Webhook::start(&api.url());
    let response = webhook.review(&pod_review("plain"));
    assert!(response.get("patch").is_none() && response.get("patchType").is_none(), "{response}");
    let metrics = webhook.metrics();
    assert!(metrics.contains(&admissions("skipped", "not_cronjob_pod", 1)), "{metrics}");
}

#[test]
fn with_the_api_down_the_job_name_decides_and_a_warning_says_so() {
    let api = FakeApi::start();
    api.put(node("worker-1", "v1.33.1", "amd64"));
    let webhook = Webhook::start(&api.url());
    // The Node cache has its first list once the watch follows it.
    let synced = support::eventually(Duration::from_secs(10), || api.requests("/api/v1/nodes") >= 2);
    assert!(synced, "the webhook never watched Nodes");
    drop(api);
    let review = pod_review("sample-cronjob-29396160");
    let started = Instant::now();
    let response = webhook.review(&review);
    assert!(started.elapsed() < Duration::from_secs(4), "admission waited {:?}", started.elapsed());
    let pod = patched(&review, &response);
    assert_eq!(status_annotation(&pod)["facts"], "job-name");
    assert_eq!(env_of(&pod, "cronpush-start", "CRONPUSH_CRONJOB").as_deref(), Some("sample-cronjob"));
    assert!(response["warnings"][0].as_str().unwrap().contains("unreachable"), "{response}");
    // A Job name that no CronJob makes is not guessed at: allowed unchanged, and said why.
    let response = webhook.review(&pod_review("hand-made"));
    assert!(response.get("patch").is_none());
    let warning = response["warnings"][0].as_str().unwrap();
    assert!(warning.starts_with("cronpush: not injected: Kubernetes API unreachable"), "{response}");
    let metrics = webhook.metrics();
    assert!(metrics.contains(&admissions("injected", "job-name", 1)), "{metrics}");
    assert!(metrics.contains(&admissions("skipped", "api_unreachable", 1)), "{metrics}");
}

#[test]
fn with_the_api_down_since_the_start_the_nodes_are_unknown_and_nothing_is_injected() {
    let closed = format!("127.0.0.1:{}", support::free_port());
    let webhook = Webhook::start(&format!("http://{closed}"));
    let started = Instant::now();
    let response = webhook.review(&pod_review("sample-cronjob-29396160"));
    assert!(started.elapsed() < Duration::from_secs(4), "admission waited {:?}", started.elapsed());
    // The Job name would give the facts, but no node is known: any could be old.
    assert!(response.get("patch").is_none() && response.get("patchType").is_none(), "{response}");
    let warnings = response["warnings"].as_array().unwrap();
    assert!(warnings[0].as_str().unwrap().contains("unreachable"), "{response}");
    let last = warnings.last().unwrap().as_str().unwrap();
    assert!(last.starts_with("cronpush: not injected: the cluster's nodes are not known"), "{response}");
    assert!(webhook.metrics().contains(&admissions("skipped", "nodes_unknown", 1)));
}

#[test]
fn a_pod_that_is_no_valid_pod_is_allowed_unchanged_with_a_warning_and_counted() {
    let api = FakeApi::start();
    let name = "sample-cronjob-29396160";
    api.put(job(name, Some(cronjob_owner(true)), json!({})));
    api.put(sample_cronjob());
    let webhook = Webhook::start(&api.url());
    // `spec.containers` a string: no Pod of k8s-openapi's, but a well-formed review.
    let mut review = pod_review(name);
    review["request"]["object"]["spec"]["containers"] = json!("main-batch");
    let response = webhook.review(&review);
    assert!(response.get("patch").is_none() && response.get("patchType").is_none(), "{response}");
    let warning = response["warnings"][0].as_str().unwrap();
    assert!(warning.starts_with("cronpush: not injected: the Pod does not decode"), "{response}");
    // A Pod without a spec decodes, and cannot be injected either.
    let mut review = pod_review(name);
    review["request"]["object"].as_object_mut().unwrap().remove("spec");
    let response = webhook.review(&review);
    assert!(response.get("patch").is_none(), "{response}");
    assert!(response["warnings"][0].as_str().unwrap().contains("no spec"), "{response}");
    let metrics = webhook.metrics();
    assert!(metrics.contains(&admissions("skipped", "malformed_pod", 2)), "{metrics}");
    assert!(!metrics.contains("outcome=\"malformed\""), "a review that parsed is no malformed review: {metrics}");
    // The webhook is still well: a good Pod after them is injected.
    let review = pod_review(name);
    assert_eq!(status_annotation(&patched(&review, &webhook.review(&review)))["facts"], "api");
}

#[test]
fn a_job_or_cronjob_the_api_does_not_know_gets_no_injection_and_a_warning() {
    let api = FakeApi::start();
    let webhook = Webhook::start(&api.url());
    // The Job is gone (404): its name looks like a CronJob's run, but the API, which answered,
    // is believed over the name; the Pod is allowed unchanged.
    let gone = "sample-cronjob-29396160";
    let response = webhook.review(&pod_review(gone));
    assert!(response.get("patch").is_none() && response.get("patchType").is_none(), "{response}");
    assert_eq!(response["warnings"], json!([format!("cronpush: not injected: Job batch/{gone} not found")]));
    assert!(api.requests(&format!("/apis/batch/v1/namespaces/batch/jobs/{gone}")) >= 1, "the Job was asked for");
    // The Job is there and names a CronJob that is gone (404).
    let orphan = "sample-cronjob-29396161";
    api.put(job(orphan, Some(cronjob_owner(true)), json!({})));
    let response = webhook.review(&pod_review(orphan));
    assert!(response.get("patch").is_none() && response.get("patchType").is_none(), "{response}");
    assert_eq!(response["warnings"], json!(["cronpush: not injected: CronJob batch/sample-cronjob not found"]));
    assert!(api.requests("/apis/batch/v1/namespaces/batch/cronjobs/sample-cronjob") >= 1, "the CronJob was asked for");
    let metrics = webhook.metrics();
    assert!(metrics.contains(&admissions("skipped", "unknown_owner", 2)), "{metrics}");
    assert!(!metrics.contains("outcome=\"injected\""), "{metrics}");
}

#[test]
fn the_articles_pod_keeps_its_pusher_first_and_only_the_sidecar_gets_the_token() {
    let api = FakeApi::start();
    let name = "sample-cronjob-29396160";
    api.put(job(name, Some(cronjob_owner(true)), json!({})));
    api.put(sample_cronjob());
    let webhook = Webhook::start(&api.url());
    for automount in [true, false] {
        let review = article_pod_review(name, automount);
        let original = &review["request"]["object"];
        let response = webhook.review(&review);
        let pod = patched(&review, &response);
        let raw = serde_json::to_value(&pod).unwrap();
        let spec = pod.spec.as_ref().unwrap();
        let init = spec.init_containers.as_ref().unwrap();
        let names: Vec<&str> = init.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["push-metrics", "cronpush-start", "cronpush-sidecar"], "automount {automount}");
        assert_eq!(raw["spec"]["initContainers"][0], original["spec"]["initContainers"][0], "push-metrics unchanged");
        assert_eq!(raw["spec"]["containers"], original["spec"]["containers"], "main-batch unchanged");
        assert_eq!(spec.automount_service_account_token, (!automount).then_some(false));
        let (start, sidecar) = (&init[1], &init[2]);
        assert_eq!(sidecar.restart_policy.as_deref(), Some("Always"), "a native sidecar");
        assert_eq!(start.restart_policy, None, "a regular init container");
        for ours in [start, sidecar] {
            let sc = ours.security_context.as_ref().unwrap();
            assert_eq!(sc.run_as_non_root, Some(true), "{}", ours.name);
            assert!(sc.run_as_user.is_some_and(|uid| uid != 0), "{}", ours.name);
            assert_eq!(sc.allow_privilege_escalation, Some(false), "{}", ours.name);
            assert_eq!(sc.privileged, None, "{}", ours.name);
            let capabilities = sc.capabilities.as_ref().unwrap();
            assert_eq!((capabilities.drop.as_deref(), capabilities.add.as_ref()), (Some(&["ALL".into()][..]), None));
            assert_eq!(sc.seccomp_profile.as_ref().unwrap().type_, "RuntimeDefault", "{}", ours.name);
            assert_eq!(sc.read_only_root_filesystem, Some(true), "{}", ours.name);
            assert_eq!(ours.image.as_deref(), Some("cronpush:test"));
        }
        // The projected token of our audience, mounted into the sidecar and nowhere else.
        let volumes = spec.volumes.as_ref().unwrap();
        let tokens: Vec<_> = volumes
            .iter()
            .filter(|v| {
                let sources = v.projected.iter().flat_map(|p| p.sources.iter().flatten());
                sources
                    .filter_map(|s| s.service_account_token.as_ref())
                    .any(|t| t.audience.as_deref() == Some("cronpush"))
            })
            .collect();
        assert_eq!(tokens.len(), 1, "one token volume of our audience: {volumes:?}");
        let token = &tokens[0].name;
        let mounting: Vec<&str> = init
            .iter()
            .chain(&spec.containers)
            .filter(|c| c.volume_mounts.iter().flatten().any(|m| &m.name == token))
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(mounting, ["cronpush-sidecar"], "automount {automount}");
        let mount = sidecar.volume_mounts.iter().flatten().find(|m| &m.name == token).unwrap();
        assert_eq!(mount.read_only, Some(true));
        let token_file = env_of(&pod, "cronpush-sidecar", "CRONPUSH_TOKEN_FILE").unwrap();
        assert!(token_file.starts_with(&format!("{}/", mount.mount_path.trim_end_matches('/'))), "{token_file}");
        // The cluster's own API token is none of ours: both containers mount an empty volume
        // over its path, which keeps the ServiceAccount plugin from mounting it when it runs
        // again after us (tests/cluster.rs sees the real plugin skip them), and nothing else.
        for ours in [start, sidecar] {
            let over_token: Vec<&str> = ours
                .volume_mounts
                .iter()
                .flatten()
                .filter(|m| m.mount_path == "/var/run/secrets/kubernetes.io/serviceaccount")
                .map(|m| m.name.as_str())
                .collect();
            assert_eq!(over_token, ["cronpush-no-api-token"], "{}", ours.name);
        }
        assert_eq!(start.volume_mounts.as_ref().unwrap().len(), 1);
        assert_eq!(sidecar.volume_mounts.as_ref().unwrap().len(), 2);
        let nothing = volumes.iter().find(|v| v.name == "cronpush-no-api-token").unwrap();
        assert!(nothing.empty_dir.is_some(), "{nothing:?}");
        // Reinvoked on its own result, it changes nothing.
        let mut again = review.clone();
        again["request"]["object"] = raw;
        assert!(webhook.review(&again).get("patch").is_none());
    }
}

#[test]
fn an_api_server_older_than_1_29_gets_no_injection_and_a_reason() {
    let api = FakeApi::start();
    api.set_minor("28+");
    let name = "sample-cronjob-29396160";
    api.put(job(name, Some(cronjob_owner(true)), json!({})));
    api.put(sample_cronjob());
    let webhook = Webhook::start(&api.url());
    // The version is learned in the background right after start.
    let deadline = Instant::now() + Duration::from_secs(10);
    let response = loop {
        let response = webhook.review(&pod_review(name));
        if response.get("patch").is_none() || Instant::now() > deadline {
            break response;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(response.get("patch").is_none(), "a 1.28 cluster must not get native sidecars: {response}");
    assert!(response["warnings"][0].as_str().unwrap().contains("1.28+"), "{response}");
    let metrics = webhook.metrics();
    assert!(metrics.contains("reason=\"unsupported_kubernetes\""), "{metrics}");
}

#[test]
fn bad_reviews_get_400_and_the_certificate_is_checked_for_the_service_name() {
    let closed = format!("127.0.0.1:{}", support::free_port());
    let webhook = Webhook::start(&format!("http://{closed}"));
    let reply = webhook.client(HOST).post(webhook.url("/mutate")).body("{not json").send().unwrap();
    assert_eq!(reply.status(), 400);
    assert!(reply.text().unwrap().contains("malformed AdmissionReview"));
    let mut no_uid = pod_review("x");
    no_uid["request"].as_object_mut().unwrap().remove("uid");
    let mut v1beta1 = pod_review("x");
    v1beta1["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let mut no_request = pod_review("x");
    no_request.as_object_mut().unwrap().remove("request");
    for (body, says) in [(no_uid, "uid"), (v1beta1, "admission.k8s.io/v1beta1"), (no_request, "no request")] {
        let reply = webhook.client(HOST).post(webhook.url("/mutate")).body(body.to_string()).send().unwrap();
        assert_eq!(reply.status(), 400, "{body}");
        let text = reply.text().unwrap();
        assert!(text.starts_with("malformed AdmissionReview: ") && text.contains(says), "{text}");
    }
    assert!(webhook.metrics().contains(&admissions("malformed", "", 4)));
    let wrong =
        webhook.client("evil.example.com").get(format!("https://evil.example.com:{}/healthz", webhook.address.port()));
    assert!(wrong.send().is_err(), "a name outside the certificate must fail verification");
    let plain = reqwest::blocking::get(format!("http://{}/healthz", webhook.address));
    assert!(plain.is_err() || !plain.unwrap().status().is_success(), "no plain HTTP");
}

// ---- Nodes: the kubelets and platforms the Pod may land on -------------------------------

/// The API with the sample CronJob's run, its Job and CronJob, and `nodes`.
fn api_with_nodes(nodes: &[Value]) -> FakeApi {
    let api = FakeApi::start();
    api.put(job(RUN, Some(cronjob_owner(true)), json!({})));
    api.put(sample_cronjob());
    for node in nodes {
        api.put(node.clone());
    }
    api
}

const RUN: &str = "sample-cronjob-29396160";

/// The run's Pod, with a node selector when given.
fn pod_review_selecting(node_selector: Value) -> Value {
    let mut review = pod_review(RUN);
    if !node_selector.is_null() {
        review["request"]["object"]["spec"]["nodeSelector"] = node_selector;
    }
    review
}

fn injected(response: &Value) -> bool {
    response["patchType"] == "JSONPatch"
}

#[test]
fn with_every_node_at_1_29_or_newer_the_pod_is_injected() {
    let api = api_with_nodes(&[
        node("eks-1", "v1.29.8-eks-a737599", "amd64"),
        node("k3s-1", "v1.31.2+k3s1", "arm64"),
        node("gke-1", "v1.30.4-gke.1348000", "amd64"),
    ]);
    let webhook = Webhook::start(&api.url());
    let review = pod_review(RUN);
    let response = webhook.review(&review);
    let pod = patched(&review, &response);
    assert_eq!(status_annotation(&pod)["facts"], "api");
    assert!(response.get("warnings").is_none(), "{response}");
}

#[test]
fn an_old_kubelet_the_pod_may_land_on_stops_injection_and_a_selector_that_excludes_it_does_not() {
    let mut old = node("old-1", "v1.28.15", "amd64");
    old["metadata"]["labels"]["pool"] = json!("legacy");
    let mut new = node("new-1", "v1.33.1", "amd64");
    new["metadata"]["labels"]["pool"] = json!("batch");
    let api = api_with_nodes(&[new, old]);
    let webhook = Webhook::start(&api.url());
    // May land anywhere, the 1.28 node included: its kubelet would refuse the native sidecar.
    let response = webhook.review(&pod_review_selecting(Value::Null));
    assert!(!injected(&response), "{response}");
    assert_eq!(
        response["warnings"],
        json!(["cronpush: not injected: node old-1 runs kubelet v1.28.15; native sidecars need 1.29+"])
    );
    // Pinned to the new pool by its nodeSelector: the old node does not matter.
    let review = pod_review_selecting(json!({"pool": "batch"}));
    assert_eq!(status_annotation(&patched(&review, &webhook.review(&review)))["facts"], "api");
    // The same through required node affinity.
    let mut review = pod_review(RUN);
    review["request"]["object"]["spec"]["affinity"] = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
        {"nodeSelectorTerms": [{"matchExpressions": [{"key": "pool", "operator": "NotIn", "values": ["legacy"]}]}]}}});
    assert!(injected(&webhook.review(&review)));
    let metrics = webhook.metrics();
    assert!(metrics.contains(&admissions("skipped", "old_kubelet", 1)), "{metrics}");
    assert!(metrics.contains(&admissions("injected", "api", 2)), "{metrics}");
}

#[test]
fn a_node_that_joins_later_with_an_old_kubelet_stops_injection_from_then_on() {
    let api = api_with_nodes(&[node("new-1", "v1.33.1", "amd64")]);
    let webhook = Webhook::start(&api.url());
    let synced = support::eventually(Duration::from_secs(10), || api.requests("/api/v1/nodes") >= 2);
    assert!(synced, "the webhook never watched Nodes");
    assert!(injected(&webhook.review(&pod_review(RUN))));
    // A 1.27 kubelet registers: it would run the sidecar as an init container that never exits.
    api.put(node("joined-late", "v1.27.16", "amd64"));
    let stopped = support::eventually(Duration::from_secs(10), || !injected(&webhook.review(&pod_review(RUN))));
    assert!(stopped, "the webhook kept injecting after an old node joined");
    let response = webhook.review(&pod_review(RUN));
    assert!(response["warnings"][0].as_str().unwrap().contains("node joined-late runs kubelet v1.27.16"), "{response}");
    assert_eq!(api.requests("/api/v1/nodes"), 2, "learned from the watch, not by listing at each admission");
    // It leaves again: injection resumes.
    api.remove("nodes", "", "joined-late");
    let resumed = support::eventually(Duration::from_secs(10), || injected(&webhook.review(&pod_review(RUN))));
    assert!(resumed, "the webhook did not resume once the old node was gone");
}

#[test]
fn an_image_built_for_arm_only_is_not_injected_where_the_pod_may_land_on_amd64() {
    let api = api_with_nodes(&[node("pi-1", "v1.31.2+k3s1", "arm64"), node("nuc-1", "v1.31.2+k3s1", "amd64")]);
    let webhook =
        Webhook::start_with_flags(&api.url(), "http://pi:8080/pushgateway", &["--image-platforms=linux/arm64"]);
    let response = webhook.review(&pod_review_selecting(Value::Null));
    assert!(!injected(&response), "{response}");
    let warning = response["warnings"][0].as_str().unwrap();
    assert_eq!(
        warning,
        "cronpush: not injected: node nuc-1 is linux/amd64, which the image is not built for (--image-platforms)"
    );
    let review = pod_review_selecting(json!({"kubernetes.io/arch": "arm64"}));
    assert!(injected(&webhook.review(&review)), "pinned to the arm64 node");
    let metrics = webhook.metrics();
    assert!(metrics.contains(&admissions("skipped", "unsupported_platform", 1)), "{metrics}");
    assert!(metrics.contains(&admissions("injected", "api", 1)), "{metrics}");
}

#[test]
fn image_platforms_that_name_no_platform_stop_the_webhook_before_it_serves() {
    for (flag, says) in [
        ("--image-platforms=linux", "\"linux\" is no platform: write os/arch"),
        ("--image-platforms=,", "names no platform"),
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_cronpush"))
            .args([
                "webhook",
                "--gateway-url=http://pi:8080",
                "--image=cronpush:test",
                "--listen-address=127.0.0.1:0",
                flag,
            ])
            .output()
            .unwrap();
        assert!(!output.status.success(), "{flag}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("--image-platforms") && stderr.contains(says), "{flag}: {stderr}");
    }
}

#[test]
fn resources_that_are_no_quantities_or_too_small_for_the_pushers_stop_the_webhook_before_it_serves() {
    for (flags, says) in [
        (&["--memory-request=lots"][..], "--memory-request \"lots\" is not a resource quantity"),
        (&["--cpu-limit=5m"], "--cpu-limit is below --cpu-request"),
        (&["--memory-request=8Mi", "--memory-limit=12Mi"], "--memory-limit is below 16Mi, which the pushers need"),
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_cronpush"))
            .args(["webhook", "--gateway-url=http://pi:8080", "--image=cronpush:test", "--listen-address=127.0.0.1:0"])
            .args(flags)
            .output()
            .unwrap();
        assert!(!output.status.success(), "{flags:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says), "{flags:?}: {stderr}");
    }
}

/// The series of `cronpush_webhook_admissions_total` for an outcome and reason, with its count.
fn admissions(outcome: &str, reason: &str, count: u64) -> String {
    format!("cronpush_webhook_admissions_total{{outcome=\"{outcome}\",reason=\"{reason}\"}} {count}\n")
}
