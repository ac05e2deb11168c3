//! The real `cronpush webhook` binary, with certificates from the real `cronpush certs`, driven
//! over TLS exactly as kube-apiserver drives a webhook: HTTPS POST of an AdmissionReview to the
//! Service's DNS name, the server certificate verified against the caBundle. A small fake API
//! server (tests/support/kube_api.rs) answers what the webhook asks Kubernetes (Jobs and
//! CronJobs: lists, watches and GETs) as kube-apiserver would; it can also be down.

mod support;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};
use support::kube_api::{FakeApi, kubeconfig};

const SERVICE: &str = "cronpush-webhook";
const NAMESPACE: &str = "cronpush";
const HOST: &str = "cronpush-webhook.cronpush.svc";

// ---- The webhook process ------------------------------------------------------------------

struct Webhook {
    child: Child,
    address: SocketAddr,
    ca: Vec<u8>,
    _dir: tempfile::TempDir,
}

impl Drop for Webhook {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Webhook {
    /// Generates certificates with `cronpush certs` and starts `cronpush webhook` with a
    /// kubeconfig naming `api_server`.
    fn start(api_server: &str) -> Webhook {
        let dir = tempfile::tempdir().unwrap();
        let certs = dir.path().join("certs");
        let status = Command::new(env!("CARGO_BIN_EXE_cronpush"))
            .args(["certs", "--service", SERVICE, "--namespace", NAMESPACE, "--out"])
            .arg(&certs)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_cronpush"))
            .arg("webhook")
            .arg(format!("--tls-cert-file={}", certs.join("tls.crt").display()))
            .arg(format!("--tls-key-file={}", certs.join("tls.key").display()))
            .arg(format!("--tls-ca-file={}", certs.join("ca.crt").display()))
            .arg(format!("--listen-address={address}"))
            .args(["--gateway-url=http://pi:8080/pushgateway", "--image=cronpush:test", "--resolve-timeout=1s"])
            .env("KUBECONFIG", kubeconfig(dir.path(), api_server))
            .env("POD_NAMESPACE", NAMESPACE)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let ca = std::fs::read(certs.join("ca.crt")).unwrap();
        let webhook = Webhook { child, address, ca, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while webhook.client(HOST).get(format!("https://{HOST}:{port}/healthz")).send().is_err() {
            assert!(Instant::now() < deadline, "the webhook did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        webhook
    }

    /// A client that trusts only the caBundle and reaches the webhook under `host`, as the API
    /// server reaches the Service.
    fn client(&self, host: &str) -> reqwest::blocking::Client {
        cronpush::tls::install_crypto_provider();
        reqwest::blocking::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&self.ca).unwrap())
            .resolve(host, self.address)
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
    }

    fn url(&self, path: &str) -> String {
        format!("https://{HOST}:{}{path}", self.address.port())
    }

    /// POSTs a review as kube-apiserver does (with its `?timeout=` query) and returns the
    /// response object.
    fn review(&self, body: &Value) -> Value {
        let reply = self
            .client(HOST)
            .post(self.url("/mutate?timeout=5s"))
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .unwrap();
        assert_eq!(reply.status(), 200);
        let review: Value = serde_json::from_slice(&reply.bytes().unwrap()).unwrap();
        assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(review["response"]["uid"], body["request"]["uid"], "the uid is echoed");
        assert_eq!(review["response"]["allowed"], true, "cronpush never denies a Pod");
        review["response"].clone()
    }
}

// ---- Fixtures: the article's CronJob and the Pod its Job controller creates ----------------

fn job(name: &str, owner: Option<Value>, annotations: Value) -> Value {
    json!({"apiVersion": "batch/v1", "kind": "Job",
           "metadata": {"name": name, "namespace": "batch", "uid": "job-uid", "annotations": annotations,
                        "ownerReferences": owner.into_iter().collect::<Vec<_>>()},
           "spec": {"template": {"spec": {"containers": [{"name": "main-batch", "image": "busybox"}]}}}})
}

fn cronjob_owner(controller: bool) -> Value {
    json!({"apiVersion": "batch/v1", "kind": "CronJob", "name": "sample-cronjob", "uid": "cj-uid", "controller": controller})
}

fn sample_cronjob() -> Value {
    json!({"apiVersion": "batch/v1", "kind": "CronJob",
           "metadata": {"name": "sample-cronjob", "namespace": "batch", "uid": "cj-uid"},
           "spec": {"schedule": "*/1 * * * *", "concurrencyPolicy": "Allow", "startingDeadlineSeconds": 30,
                    "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "main-batch", "image": "busybox"}]}}}}}})
}

fn pod_review(job: &str) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": format!("uid-{job}"),
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "name": "", "namespace": "batch", "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:job-controller"},
            "object": {
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"generateName": format!("{job}-"), "labels": {"batch.kubernetes.io/job-name": job, "job-name": job},
                             "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": job, "uid": "job-uid",
                                                  "controller": true, "blockOwnerDeletion": true}],
                             "finalizers": ["batch.kubernetes.io/job-tracking"]},
                "spec": {"containers": [{"name": "main-batch", "image": "busybox"}], "restartPolicy": "Never"}
            },
            "oldObject": null, "dryRun": false
        }
    })
}

/// The Pod after the response's patch, decoded from base64 and applied with json-patch.
fn patched(review: &Value, response: &Value) -> Pod {
    assert_eq!(response["patchType"], "JSONPatch", "{response}");
    let bytes = base64::engine::general_purpose::STANDARD.decode(response["patch"].as_str().unwrap()).unwrap();
    let patch: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
    let mut pod = review["request"]["object"].clone();
    json_patch::patch(&mut pod, &patch).unwrap();
    serde_json::from_value(pod).unwrap()
}

fn env_of(pod: &Pod, container: &str, name: &str) -> Option<String> {
    let c = pod.spec.as_ref()?.init_containers.as_ref()?.iter().find(|c| c.name == container)?;
    c.env.as_ref()?.iter().find(|e| e.name == name)?.value.clone()
}

fn status_annotation(pod: &Pod) -> Value {
    serde_json::from_str(&pod.metadata.annotations.as_ref().unwrap()["cronpush.io/status"]).unwrap()
}

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
    let metrics = webhook.client(HOST).get(webhook.url("/metrics")).send().unwrap().text().unwrap();
    assert!(
        metrics.contains("cronpush_webhook_admissions_total{outcome=\"skipped\",reason=\"not_cronjob_pod\"} 1"),
        "{metrics}"
    );
}

#[test]
fn with_the_api_down_the_job_name_decides_and_a_warning_says_so() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let webhook = Webhook::start(&format!("http://{closed}"));
    let review = pod_review("sample-cronjob-29396160");
    let started = Instant::now();
    let response = webhook.review(&review);
    assert!(started.elapsed() < Duration::from_secs(4), "admission waited {:?}", started.elapsed());
    let pod = patched(&review, &response);
    assert_eq!(status_annotation(&pod)["facts"], "job-name");
    assert_eq!(env_of(&pod, "cronpush-start", "CRONPUSH_CRONJOB").as_deref(), Some("sample-cronjob"));
    assert!(response["warnings"][0].as_str().unwrap().contains("unreachable"), "{response}");
    // A Job name that no CronJob makes is not guessed at.
    let response = webhook.review(&pod_review("hand-made"));
    assert!(response.get("patch").is_none());
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
    let metrics = webhook.client(HOST).get(webhook.url("/metrics")).send().unwrap().text().unwrap();
    assert!(metrics.contains("reason=\"unsupported_kubernetes\""), "{metrics}");
}

#[test]
fn bad_reviews_get_400_and_the_certificate_is_checked_for_the_service_name() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let webhook = Webhook::start(&format!("http://{closed}"));
    let reply = webhook.client(HOST).post(webhook.url("/mutate")).body("{not json").send().unwrap();
    assert_eq!(reply.status(), 400);
    assert!(reply.text().unwrap().contains("malformed AdmissionReview"));
    let wrong =
        webhook.client("evil.example.com").get(format!("https://evil.example.com:{}/healthz", webhook.address.port()));
    assert!(wrong.send().is_err(), "a name outside the certificate must fail verification");
    let plain = reqwest::blocking::get(format!("http://{}/healthz", webhook.address));
    assert!(plain.is_err() || !plain.unwrap().status().is_success(), "no plain HTTP");
}
