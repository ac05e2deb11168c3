//! The relay inside the real `cronpush webhook` binary, over verified TLS as the sidecar reaches
//! it. The fake API server (tests/support/kube_api.rs) plays kube-apiserver: TokenReview of
//! projected tokens with the pod-bound extras, the list and watch of injected Pods (label
//! selector), and for a Pod injected before the label the Pod GET and the one-Pod watch; the test plays
//! the kubelet by writing the containers' terminated states into the Pod's status, sometimes
//! after the sidecar has already asked (the kubelet's status sync is asynchronous).
//!
//! Why on the fake: the relay's edges need a status written at a chosen moment relative to the
//! sidecar's question, an expired token, a legacy token bound to no Pod, and an API server that
//! is gone, all in milliseconds. The relay's TokenReview and Pod watch against the real API
//! server, with tokens from the TokenRequest API, are tested in tests/cluster.rs.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::kube_api::{FakeApi, TokenIdentity};
use support::webhook::{HOST, Webhook};

const POD: &str = "backup-29396160-x7k2p";
const POD_UID: &str = "3c1f0d9e-pod";

/// A running Job Pod with two main containers and the injected sidecar, labelled as the webhook
/// labels what it injects.
fn running_pod() -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": POD, "namespace": "ops", "uid": POD_UID,
                        "labels": {"job-name": "backup-29396160", "cronpush.io/injected": "true"}},
           "spec": {"initContainers": [{"name": "cronpush-start", "image": "cronpush"},
                                       {"name": "cronpush-sidecar", "image": "cronpush", "restartPolicy": "Always"}],
                    "containers": [{"name": "main", "image": "busybox"}, {"name": "uploader", "image": "busybox"}]},
           "status": {"phase": "Running", "containerStatuses": [
               container_status("main", json!({"running": {"startedAt": "2025-11-22T00:00:03Z"}})),
               container_status("uploader", json!({"running": {"startedAt": "2025-11-22T00:00:03Z"}}))]}})
}

fn container_status(name: &str, state: Value) -> Value {
    json!({"name": name, "image": "busybox", "imageID": "", "ready": false, "restartCount": 0, "state": state})
}

fn terminated(exit_code: i32, reason: &str) -> Value {
    json!({"terminated": {"exitCode": exit_code, "reason": reason,
                          "startedAt": "2025-11-22T00:00:03Z", "finishedAt": "2025-11-22T00:04:10Z"}})
}

/// The kubelet reporting that both main containers ended.
fn finish(api: &FakeApi, main: Value, uploader: Value) {
    api.modify("pods", "ops", POD, |pod| {
        pod["status"]["containerStatuses"] =
            json!([container_status("main", main), container_status("uploader", uploader)]);
    });
}

fn identity(pod: &str, uid: &str, audience: &str) -> TokenIdentity {
    TokenIdentity {
        namespace: "ops".into(),
        service_account: "default".into(),
        pod_name: pod.into(),
        pod_uid: uid.into(),
        audiences: vec![audience.into()],
    }
}

/// A cluster with the Pod and the sidecar's token, and the webhook pointed at it.
fn setup() -> (FakeApi, Webhook) {
    let api = FakeApi::start();
    api.put(running_pod());
    api.add_token("sidecar-token", identity(POD, POD_UID, "cronpush"));
    let webhook = Webhook::start(&api.url());
    (api, webhook)
}

/// What the webhook's /metrics says of one unlabelled series.
fn gauge(webhook: &Webhook, name: &str) -> f64 {
    let metrics = webhook.client(HOST).get(webhook.url("/metrics")).send().unwrap().text().unwrap();
    let line = metrics.lines().find(|l| l.split(' ').next() == Some(name)).unwrap_or_else(|| panic!("{metrics}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// Requests for the one Pod, and for the Pods of its namespace: what a sidecar waiting with a
/// watch of its own costs (a GET, then a watch with a field selector).
fn own_pod_requests(api: &FakeApi) -> usize {
    api.requests(&format!("/api/v1/namespaces/ops/pods/{POD}")) + api.requests("/api/v1/namespaces/ops/pods")
}

fn ask(webhook: &Webhook, token: Option<&str>, query: &str) -> (u16, String) {
    let mut request = webhook.client(HOST).get(webhook.url(&format!("/v1/exit-status{query}")));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let reply = request.send().unwrap();
    (reply.status().as_u16(), reply.text().unwrap())
}

#[test]
fn a_finished_pod_is_answered_at_once_with_every_main_container() {
    let (api, webhook) = setup();
    finish(&api, terminated(0, "Completed"), terminated(137, "OOMKilled"));
    let (status, body) = ask(&webhook, Some("sidecar-token"), &format!("?namespace=ops&pod={POD}&wait=10"));
    assert_eq!(status, 200, "{body}");
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["complete"], true);
    assert_eq!(report["uid"], POD_UID);
    assert_eq!(report["containers"][0]["name"], "main");
    assert_eq!(report["containers"][0]["terminated"]["exitCode"], 0);
    assert_eq!(report["containers"][1]["terminated"]["reason"], "OOMKilled");
    assert_eq!(report["containers"][1]["terminated"]["finishedAt"], "2025-11-22T00:04:10Z");
    // The relay asked for its own audience, so a token for the API server is refused upstream.
    let reviews = api.token_reviews();
    assert_eq!(reviews.last().unwrap()["spec"]["audiences"], json!(["cronpush"]));
}

#[test]
fn a_status_that_arrives_after_the_question_is_waited_for_in_the_shared_watch() {
    let (api, webhook) = setup();
    let started = Instant::now();
    let (status, body) = std::thread::scope(|threads| {
        let asking = threads.spawn(|| ask(&webhook, Some("sidecar-token"), "?wait=20"));
        // The sidecar is waiting at the relay before the kubelet's update lands.
        assert!(
            support::eventually(Duration::from_secs(10), || gauge(&webhook, "cronpush_webhook_relay_waiting") == 1.0)
        );
        std::thread::sleep(Duration::from_millis(300));
        finish(&api, terminated(3, "Error"), terminated(0, "Completed"));
        asking.join().unwrap()
    });
    assert_eq!(status, 200, "{body}");
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (report["complete"].clone(), report["containers"][0]["terminated"]["exitCode"].clone()),
        (json!(true), json!(3))
    );
    assert!(started.elapsed() < Duration::from_secs(10), "answered when the status arrived, not at the deadline");
    let metrics = webhook.client(HOST).get(webhook.url("/metrics")).send().unwrap().text().unwrap();
    assert!(metrics.contains("cronpush_webhook_relay_requests_total{outcome=\"complete\"} 1"), "{metrics}");
    assert!(metrics.contains("cronpush_webhook_relay_waiting 0"), "{metrics}");
    assert!(metrics.contains("cronpush_webhook_relay_watched_pods 1"), "{metrics}");
    // Learned from the one list and watch of injected Pods: nothing asked about this Pod alone.
    assert_eq!(own_pod_requests(&api), 0);
    assert!(api.requests("/api/v1/pods") >= 1);
}

#[test]
fn a_sidecar_costs_one_token_review_however_often_it_asks() {
    let (api, webhook) = setup();
    for _ in 0..3 {
        let (status, body) = ask(&webhook, Some("sidecar-token"), "?wait=0");
        assert_eq!(status, 200, "{body}");
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["complete"], false);
    }
    finish(&api, terminated(0, "Completed"), terminated(0, "Completed"));
    let answered = support::eventually(Duration::from_secs(5), || {
        let (_, body) = ask(&webhook, Some("sidecar-token"), "?wait=2");
        serde_json::from_str::<Value>(&body).unwrap()["complete"] == true
    });
    assert!(answered);
    assert_eq!(api.token_reviews().len(), 1, "the first review is remembered");
    // A refused token is never remembered: each question is reviewed again.
    for _ in 0..2 {
        assert_eq!(ask(&webhook, Some("forged"), "").0, 401);
    }
    assert_eq!(api.token_reviews().len(), 3);
}

#[test]
fn a_pod_deleted_while_its_sidecar_waits_is_answered_as_deleted() {
    let (api, webhook) = setup();
    let (status, body) = std::thread::scope(|threads| {
        let asking = threads.spawn(|| ask(&webhook, Some("sidecar-token"), "?wait=20"));
        assert!(
            support::eventually(Duration::from_secs(10), || gauge(&webhook, "cronpush_webhook_relay_waiting") == 1.0)
        );
        // A graceful delete: the API server sets deletionTimestamp (MODIFIED), and removes the
        // Pod once the kubelet has stopped it (DELETED), its containers' ends never written.
        api.modify("pods", "ops", POD, |pod| {
            pod["metadata"]["deletionTimestamp"] = json!("2025-11-22T00:05:00Z");
            pod["metadata"]["deletionGracePeriodSeconds"] = json!(30);
        });
        std::thread::sleep(Duration::from_millis(300));
        api.remove("pods", "ops", POD);
        asking.join().unwrap()
    });
    assert_eq!(status, 200, "{body}");
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["complete"], false);
    assert_eq!(report["deletion"]["timestamp"], "2025-11-22T00:05:00Z", "{report}");
    assert!(
        support::eventually(Duration::from_secs(5), || gauge(&webhook, "cronpush_webhook_relay_watched_pods") == 0.0)
    );
    // Asked again, the Pod is no more, as the API server would say.
    let (status, body) = ask(&webhook, Some("sidecar-token"), "?wait=1");
    assert_eq!(status, 404, "{body}");
}

#[test]
fn a_pod_injected_before_the_label_is_read_and_watched_alone() {
    let api = FakeApi::start();
    let mut pod = running_pod();
    pod["metadata"]["labels"].as_object_mut().unwrap().remove("cronpush.io/injected");
    api.put(pod);
    api.add_token("sidecar-token", identity(POD, POD_UID, "cronpush"));
    let webhook = Webhook::start(&api.url());
    let (status, body) = std::thread::scope(|threads| {
        let asking = threads.spawn(|| ask(&webhook, Some("sidecar-token"), "?wait=20"));
        // It holds a watch of its own before the kubelet's update lands.
        assert!(support::eventually(Duration::from_secs(10), || api.requests("/api/v1/namespaces/ops/pods") >= 1));
        std::thread::sleep(Duration::from_millis(300));
        finish(&api, terminated(3, "Error"), terminated(0, "Completed"));
        asking.join().unwrap()
    });
    assert_eq!(status, 200, "{body}");
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (report["complete"].clone(), report["containers"][0]["terminated"]["exitCode"].clone()),
        (json!(true), json!(3))
    );
    assert_eq!(api.requests(&format!("/api/v1/namespaces/ops/pods/{POD}")), 1, "read once");
}

#[test]
fn when_the_wait_runs_out_the_answer_says_incomplete() {
    let (api, webhook) = setup();
    finish(&api, terminated(0, "Completed"), json!({"running": {"startedAt": "2025-11-22T00:00:03Z"}}));
    let started = Instant::now();
    let (status, body) = ask(&webhook, Some("sidecar-token"), "?wait=1");
    assert_eq!(status, 200, "{body}");
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["complete"], false);
    assert_eq!(report["containers"][0]["terminated"]["exitCode"], 0);
    assert!(report["containers"][1].get("terminated").is_none(), "{report}");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(4), "waited {took:?}");
}

/// The webhook's connection timeouts bound a request's head and the pause between requests,
/// never a sidecar's wait once its head is in (issue 19): with both at 1 s, a 3 s wait is
/// answered in full.
#[test]
fn a_wait_longer_than_the_connection_timeouts_is_answered_in_full() {
    let api = FakeApi::start();
    api.put(running_pod());
    api.add_token("sidecar-token", identity(POD, POD_UID, "cronpush"));
    let flags = ["--read-header-timeout=1s", "--idle-timeout=1s"];
    let webhook = Webhook::start_with_flags(&api.url(), "http://pi:8080/pushgateway", &flags);
    let started = Instant::now();
    let (status, body) = ask(&webhook, Some("sidecar-token"), "?wait=3");
    assert_eq!(status, 200, "{body}");
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["complete"], false, "{report}");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(2900) && took < Duration::from_secs(6), "waited {took:?}");
}

#[test]
fn wrong_missing_or_foreign_tokens_get_no_pod_data() {
    let (api, webhook) = setup();
    finish(&api, terminated(0, "Completed"), terminated(0, "Completed"));
    api.add_token("api-server-token", identity(POD, POD_UID, "https://kubernetes.default.svc"));
    api.add_token("other-pod-token", identity("other-29396160-abcde", "other-uid", "cronpush"));
    api.add_token("earlier-pod-token", identity(POD, "uid-of-an-earlier-pod", "cronpush"));
    let unbound = TokenIdentity { pod_name: String::new(), ..identity(POD, POD_UID, "cronpush") };
    api.add_token("unbound-token", unbound);
    // The Pod's own token, once its hour is over (the kubelet failed to rotate it).
    api.add_token("expired-token", identity(POD, POD_UID, "cronpush"));
    api.add_expired_token("expired-token");
    let cases: [(Option<&str>, String, u16, &str); 9] = [
        (None, String::new(), 401, "bearer token"),
        (Some("forged"), String::new(), 401, "refused"),
        (Some("expired-token"), format!("?namespace=ops&pod={POD}"), 401, "token has expired"),
        (Some("api-server-token"), String::new(), 401, "refused"),
        (Some("other-pod-token"), format!("?namespace=ops&pod={POD}"), 403, "not to the Pod asked about"),
        (Some("sidecar-token"), "?namespace=ops&pod=other-29396160-abcde".into(), 403, "not to the Pod asked about"),
        (Some("earlier-pod-token"), String::new(), 403, "earlier Pod"),
        (Some("unbound-token"), String::new(), 403, "not bound to a Pod"),
        (Some("sidecar-token"), "?wait=soon".into(), 400, "not a number"),
    ];
    for (token, query, want, message) in cases {
        let (status, body) = ask(&webhook, token, &query);
        assert_eq!(status, want, "token {token:?} query {query:?}: {body}");
        assert!(body.contains(message), "token {token:?}: {body}");
        assert!(!body.contains("exitCode") && !body.contains("Completed"), "no pod data leaks: {body}");
    }
    let reply = webhook.client(HOST).get(webhook.url("/v1/exit-status")).send().unwrap();
    assert_eq!(reply.headers()["www-authenticate"], "Bearer");
}

#[test]
fn a_pod_ended_whole_is_answered_with_its_own_reason() {
    let (api, webhook) = setup();
    // activeDeadlineSeconds passed: the kubelet kills the containers and marks the Pod.
    api.modify("pods", "ops", POD, |pod| {
        pod["status"]["phase"] = json!("Failed");
        pod["status"]["reason"] = json!("DeadlineExceeded");
        pod["status"]["message"] = json!("Pod was active on the node longer than the specified deadline");
        pod["status"]["containerStatuses"] = json!([
            container_status("main", terminated(137, "Error")),
            container_status("uploader", terminated(137, "Error"))
        ]);
    });
    let (status, body) = ask(&webhook, Some("sidecar-token"), "?wait=5");
    assert_eq!(status, 200, "{body}");
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((report["complete"].clone(), report["reason"].clone()), (json!(true), json!("DeadlineExceeded")));
    assert_eq!(report["containers"][0]["terminated"]["reason"], "Error");
    // A Pod whose containers ended by themselves has no reason of its own to answer.
    let (api, webhook) = setup();
    finish(&api, terminated(0, "Completed"), terminated(0, "Completed"));
    let (_, body) = ask(&webhook, Some("sidecar-token"), "?wait=5");
    assert!(serde_json::from_str::<Value>(&body).unwrap().get("reason").is_none(), "{body}");
}

#[test]
fn without_an_api_server_the_relay_says_unavailable() {
    let closed = format!("127.0.0.1:{}", support::free_port());
    let webhook = Webhook::start(&format!("http://{closed}"));
    let (status, body) = ask(&webhook, Some("sidecar-token"), "?wait=1");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("TokenReview"), "{body}");
}
