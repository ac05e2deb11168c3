//! The real `cronpush webhook` binary, with certificates from the real `cronpush certs`, driven
//! over TLS exactly as kube-apiserver drives a webhook: HTTPS POST of an AdmissionReview to the
//! Service's DNS name, the server certificate verified against the caBundle. A small fake API
//! server (tests/support/kube_api.rs) answers what the webhook asks Kubernetes (Jobs and
//! CronJobs: lists, watches and GETs) as kube-apiserver would; it can also be down.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::kube_api::FakeApi;
use support::webhook::{
    HOST, Webhook, cronjob_owner, env_of, job, patched, pod_review, sample_cronjob, status_annotation,
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
