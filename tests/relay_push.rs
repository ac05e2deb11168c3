//! The relay's push mode (`cronpush webhook --push-mode=relay`), end to end with every cronpush
//! part real: the webhook admits the Job's Pod, `cronpush start` and `cronpush sidecar` run as
//! the kubelet runs them (tests/support/kubelet.rs) and push through the relay with their Pod's
//! projected token, and the relay forwards into the README's Pi gateway, which serves TLS with a
//! certificate from a private CA and asks for basic auth (`--web.config.file`).
//!
//! kube-apiserver's part is the fake API server of tests/support/kube_api.rs: the Pods, Jobs and
//! CronJobs with their owner references (the Job controller sets the Pod's, the CronJob
//! controller the Job's, each with `controller: true` and the owner's uid:
//! pkg/controller/job/job_controller.go, pkg/controller/cronjob/utils.go `getJobFromTemplate2`),
//! and the TokenReview of projected tokens with the pod-bound extras
//! (pkg/serviceaccount/claims.go); an expired token or one for another audience is refused there
//! as kube-apiserver refuses it. Why on the fake: the tokens of Pods that are not a CronJob's, or
//! that expired, are made at will here; the relay's TokenReview against the real API server is in
//! tests/cluster.rs.

use std::time::Duration;

use base64::Engine;
use serde_json::json;
use support::kube_api::TokenIdentity;
use support::kubelet::{CronJobRun, PodContainers as _, Run, run_main, run_start, stop_sidecar};
use support::tls_gateway::{GATEWAY_PASSWORD, GATEWAY_USER, TlsGateway};
use support::webhook::{HOST, pod_review};

/// The webhook flags of the relay's push mode, reaching `gateway` with its CA and credentials.
fn relay_mode(gateway: &TlsGateway, more: &[&str]) -> Vec<&'static str> {
    let mut flags = vec![
        "--push-mode=relay".to_string(),
        format!("--gateway-ca-file={}", gateway.ca_file()),
        format!("--gateway-username={GATEWAY_USER}"),
        format!("--gateway-password={GATEWAY_PASSWORD}"),
    ];
    flags.extend(more.iter().map(|f| f.to_string()));
    // `CronJobRun` keeps flags for the life of the test.
    flags.into_iter().map(|f| &*Box::leak(f.into_boxed_str())).collect()
}

fn admit(gateway: &TlsGateway, flags: Vec<&'static str>) -> Run {
    let spec = CronJobRun { webhook_flags: flags, ..CronJobRun::article() };
    Run::admit_run(spec, &gateway.url, |_| {})
}

/// The Pod's projected token, as the kubelet wrote it into the token volume.
fn token_of(run: &Run) -> String {
    std::fs::read_to_string(run.mounts["cronpush-token"].join("token")).unwrap()
}

/// A push through the relay, as a pusher (or a Job holding a token) would send it.
fn push(run: &Run, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
    let client = run.webhook.client(HOST);
    let mut request =
        client.request(method.parse().unwrap(), run.webhook.url(&format!("/v1/push{path}"))).body(body.to_string());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let reply = request.send().unwrap();
    (reply.status().as_u16(), reply.text().unwrap())
}

/// The pushed results the gateway holds, by CronJob: what a push through the relay would add
/// (the webhook itself pushes each created run's facts into the group on its own).
fn results(gateway: &TlsGateway) -> Vec<String> {
    let scrape = gateway.scrape();
    let mut results: Vec<String> = scrape
        .lines()
        .filter(|l| l.starts_with("cronjob_last_result{") || l.starts_with("cronjob_custom_"))
        .filter_map(|l| l.split("cronjob=\"").nth(1)?.split('"').next().map(str::to_string))
        .collect();
    results.sort();
    results.dedup();
    results
}

/// Pushes the relay forwarded, by its own count.
fn forwarded(run: &Run) -> usize {
    let metrics = run.webhook.metrics();
    let line = metrics.lines().find(|l| l.starts_with("cronpush_webhook_relay_pushes_total{outcome=\"forwarded\"}"));
    line.map_or(0, |l| l.rsplit(' ').next().unwrap().parse().unwrap())
}

const OWN_GROUP: &str = "/metrics/job/cronpush/namespace/batch/cronjob/sample-cronjob";

#[test]
fn runs_through_the_relay_are_recorded_in_a_tls_gateway_with_basic_auth() {
    let gateway = TlsGateway::start();
    let run = admit(&gateway, relay_mode(&gateway, &[]));

    // The patch itself, as the API server receives it, holds no secret: the pushers get the
    // relay's URL and CA and their token's path, never the gateway's password or a key.
    let response = run.webhook.review(&pod_review("sample-cronjob-29396160"));
    let patch = base64::engine::general_purpose::STANDARD.decode(response["patch"].as_str().unwrap()).unwrap();
    let patch = String::from_utf8(patch).unwrap();
    for secret in [GATEWAY_PASSWORD, "PRIVATE KEY", "secretKeyRef", "CRONPUSH_GATEWAY_PASSWORD", "Basic "] {
        assert!(!patch.contains(secret), "the patch holds {secret:?}: {patch}");
    }
    let start_env = run.environment("cronpush-start");
    let var = |name: &str| start_env.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    assert_eq!(var("CRONPUSH_GATEWAY_URL"), Some(format!("https://{}/v1/push", run.webhook.address)));
    assert!(var("CRONPUSH_GATEWAY_CA").is_some_and(|ca| ca.contains("BEGIN CERTIFICATE")));
    assert!(var("CRONPUSH_GATEWAY_TOKEN_FILE").is_some(), "{start_env:?}");

    run_start(&run);
    assert!(run.log("cronpush-start").contains("pushed the start metrics"), "{}", run.log("cronpush-start"));
    assert_eq!(gateway.groups(), ["cronpush/batch/sample-cronjob"]);
    let mut sidecar = run.start_sidecar();
    run.report_main(&run_main("exit 3"));
    stop_sidecar(&run, &mut sidecar, Duration::from_secs(30));
    let scrape = gateway.scrape();
    let result = scrape.lines().find(|l| l.starts_with("cronjob_last_result{")).unwrap_or_else(|| panic!("{scrape}"));
    assert!(result.contains("result=\"failure\"") && result.contains("cronjob=\"sample-cronjob\""), "{result}");
    assert!(scrape.contains("cronjob_last_exit_code{container=\"main-batch\""), "{scrape}");
    assert!(
        run.webhook.metrics().contains("cronpush_webhook_relay_pushes_total{outcome=\"forwarded\"} 2"),
        "{}",
        run.webhook.metrics()
    );
}

#[test]
fn a_pods_token_writes_its_own_cronjobs_group_and_nothing_else() {
    let gateway = TlsGateway::start();
    let run = admit(&gateway, relay_mode(&gateway, &[]));
    let other =
        run.next_run(CronJobRun::at("batch", "other", json!({}), "2025-11-22T00:00:00Z".parse().unwrap()), |_| {});
    let token = token_of(&run);
    let body = "cronjob_last_result{result=\"success\"} 1\n";

    let refused = [
        ("POST", "/metrics/job/cronpush/namespace/batch/cronjob/other", "may push only into its CronJob's group"),
        ("PUT", "/metrics/job/intruder/namespace/batch/cronjob/sample-cronjob", "may push only"),
        ("POST", "/metrics/job/cronpush/namespace/batch/cronjob/sample-cronjob/cluster/eu-1", "may push only"),
        ("POST", "/metrics/job/cronpush/namespace/ops/cronjob/sample-cronjob", "may push only"),
        ("PUT", "/api/v1/runs/logs/job/cronpush/namespace/batch/cronjob/other", "may push only"),
        ("DELETE", OWN_GROUP, "cannot delete groups"),
    ];
    for (method, path, why) in refused {
        let (status, answer) = push(&run, method, path, Some(&token), body);
        assert_eq!(status, 403, "{method} {path}: {answer}");
        assert!(answer.contains(why), "{method} {path}: {answer}");
    }
    assert_eq!((results(&gateway), forwarded(&run)), (Vec::new(), 0), "nothing was forwarded");

    let (status, answer) = push(&run, "POST", OWN_GROUP, Some(&token), body);
    assert_eq!(status, 200, "{answer}");
    // The other CronJob's Pod writes its own group with its own token.
    let (status, answer) =
        push(&other, "POST", "/metrics/job/cronpush/namespace/batch/cronjob/other", Some(&token_of(&other)), body);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(results(&gateway), ["other", "sample-cronjob"]);
    let (status, _) = push(&run, "DELETE", "/metrics/job/cronpush/namespace/batch/cronjob/other", Some(&token), "");
    assert_eq!(status, 403);
    assert_eq!(gateway.groups(), ["cronpush/batch/other", "cronpush/batch/sample-cronjob"], "nothing deleted");
    assert_eq!(results(&gateway), ["other", "sample-cronjob"]);
}

#[test]
fn tokens_that_are_not_a_cronjob_runs_get_nothing() {
    let gateway = TlsGateway::start();
    let run = admit(&gateway, relay_mode(&gateway, &[]));
    let identity = |pod: &str, uid: &str, audience: &str| TokenIdentity {
        namespace: "batch".into(),
        service_account: "default".into(),
        pod_name: pod.into(),
        pod_uid: uid.into(),
        audiences: vec![audience.into()],
    };
    // A Pod that no Job controls, and the Pod of a Job that no CronJob controls (run by hand).
    run.api.put(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "debug", "namespace": "batch", "uid": "debug-uid"},
        "spec": {"containers": [{"name": "sh", "image": "busybox"}]}}));
    run.api.put(json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "by-hand", "namespace": "batch", "uid": "by-hand-uid"},
        "spec": {"template": {"spec": {"containers": [{"name": "sh", "image": "busybox"}]}}}}));
    run.api.put(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "by-hand-x1", "namespace": "batch", "uid": "by-hand-x1-uid",
                     "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "by-hand",
                                          "uid": "by-hand-uid", "controller": true}]},
        "spec": {"containers": [{"name": "sh", "image": "busybox"}]}}));
    run.api.add_token("debug-token", identity("debug", "debug-uid", "cronpush"));
    run.api.add_token("by-hand-token", identity("by-hand-x1", "by-hand-x1-uid", "cronpush"));
    // The run's own Pod, but a token for the API server rather than for the relay.
    run.api.add_token("api-token", identity(&run.spec.pod, &run.spec.pod_uid, "https://kubernetes.default.svc"));
    run.api.add_expired_token("expired-token");
    let body = "cronjob_last_result{result=\"success\"} 1\n";
    for (token, status, why) in [
        (Some("debug-token"), 403, "no Job controls it"),
        (Some("by-hand-token"), 403, "no CronJob controls its Job"),
        (Some("api-token"), 401, "audience"),
        (Some("expired-token"), 401, "expired"),
        (Some("forged"), 401, "refused"),
        (None, 401, "bearer token"),
    ] {
        let (got, answer) = push(&run, "POST", OWN_GROUP, token, body);
        assert_eq!(got, status, "{token:?}: {answer}");
        assert!(answer.contains(why), "{token:?}: {answer}");
    }
    assert_eq!((results(&gateway), forwarded(&run)), (Vec::new(), 0), "nothing was forwarded");
}

#[test]
fn the_relay_bounds_each_pods_pushes_in_size_and_rate() {
    let gateway = TlsGateway::start();
    let flags = relay_mode(&gateway, &["--relay-max-push-bytes=2048", "--relay-max-pushes-per-minute=3"]);
    let run = admit(&gateway, flags);
    let token = token_of(&run);
    let large = format!("cronjob_custom_bytes{{blob=\"{}\"}} 1\n", "x".repeat(4096));
    let (status, answer) = push(&run, "POST", OWN_GROUP, Some(&token), &large);
    assert_eq!(status, 413, "{answer}");
    assert!(answer.contains("2048 bytes"), "{answer}");
    assert_eq!((results(&gateway), forwarded(&run)), (Vec::new(), 0));
    // The refused push counted: the rate is taken before the body is read, so that a Pod cannot
    // make the relay read body after body either.
    for n in 1..3 {
        let (status, answer) = push(&run, "POST", OWN_GROUP, Some(&token), &format!("cronjob_custom_total {n}\n"));
        assert_eq!(status, 200, "push {n}: {answer}");
    }
    let client = run.webhook.client(HOST);
    let reply = client
        .post(run.webhook.url(&format!("/v1/push{OWN_GROUP}")))
        .bearer_auth(&token)
        .body("cronjob_custom_total 3\n")
        .send()
        .unwrap();
    assert_eq!(reply.status(), 429);
    let retry_after: u64 = reply.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=20).contains(&retry_after), "{retry_after}");
    let scrape = gateway.scrape();
    let last = scrape.lines().find(|l| l.starts_with("cronjob_custom_total{")).unwrap_or_else(|| panic!("{scrape}"));
    assert!(last.ends_with(" 2"), "the last push within the rate is the one the gateway holds: {last}");
}

#[test]
fn failures_at_the_relay_stay_harmless_and_say_why() {
    let gateway = TlsGateway::start();
    // The webhook does not know the CA of the gateway's certificate.
    let untrusting = vec!["--push-mode=relay", "--gateway-username=cronpush", "--gateway-password=pi-s3cret"];
    let run = admit(&gateway, untrusting);
    let took = run_start(&run);
    let log = run.log("cronpush-start");
    assert!(log.contains("certificate does not verify at the relay"), "{log}");
    assert!(log.contains("1 attempt"), "not retried until the deadline: {log}");
    assert!(took < Duration::from_secs(4), "{took:?}");
    assert_eq!(forwarded(&run), 0, "the relay forwarded nothing");

    // With the relay gone, `start` still exits 0 within its timeout (5 s), and the sidecar
    // within the Pod's grace period.
    let grace = 6;
    let spec = CronJobRun {
        webhook_flags: relay_mode(&gateway, &[]),
        termination_grace_seconds: grace,
        ..CronJobRun::article()
    };
    let mut gone = Run::admit_run(spec, &gateway.url, |_| {});
    gone.webhook.stop();
    let took = run_start(&gone);
    assert!(took < Duration::from_secs(7), "{took:?}");
    assert!(gone.log("cronpush-start").contains("could not push the start metrics"), "{}", gone.log("cronpush-start"));
    let mut sidecar = gone.start_sidecar();
    gone.report_main(&run_main("exit 0"));
    let took = stop_sidecar(&gone, &mut sidecar, Duration::from_secs(grace as u64));
    assert!(took < Duration::from_secs(grace as u64), "{took:?}");
    assert!(
        gone.log("cronpush-sidecar").contains("could not push the end metrics"),
        "{}",
        gone.log("cronpush-sidecar")
    );
}
