//! `cronpush webhook --delete-groups-of-deleted-cronjobs`, with the real webhook and gateway
//! binaries and the fake API server of tests/support/kube_api.rs, whose watch sends DELETED
//! events as kube-apiserver does. A deleted CronJob's group goes from the gateway; so do the
//! groups of CronJobs deleted while no webhook ran, found once the webhook has listed every
//! CronJob. Nothing else is touched, and without the flag nothing is deleted at all.
//!
//! Why also on the fake: it runs in a second and proves that nothing else is touched and that
//! nothing is deleted without the flag. The same clean-up against the real API server, with the
//! shipped RBAC as the webhook's authority, is in tests/cluster.rs.

use std::time::Duration;

use serde_json::json;
use support::Server;
use support::kube_api::FakeApi;
use support::kubelet::{CronJobRun, PodContainers as _, Run, kill_pod, run_start, start_main};
use support::tls_gateway::{GATEWAY_PASSWORD, GATEWAY_USER, TlsGateway};
use support::webhook::Webhook;

fn cronjob(namespace: &str, name: &str) -> serde_json::Value {
    json!({"apiVersion": "batch/v1", "kind": "CronJob",
           "metadata": {"name": name, "namespace": namespace, "uid": format!("uid-{namespace}-{name}")},
           "spec": {"schedule": "*/5 * * * *",
                    "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "busybox"}]}}}}}})
}

/// The gateway's groups as `job/namespace/cronjob`.
fn groups(gateway: &Server) -> Vec<String> {
    support::group_names(gateway, &["job", "namespace", "cronjob"])
}

fn push(gateway: &Server, path: &str) {
    assert_eq!(gateway.post(path, "cronjob_last_start_time_seconds 1\n").status, 200, "{path}");
}

/// A gateway holding the groups of two live CronJobs, of one deleted while no webhook ran, and
/// a group of another job with the same labels.
fn setup() -> (FakeApi, Server) {
    let api = FakeApi::start();
    api.put(cronjob("batch", "nightly"));
    api.put(cronjob("batch", "hourly"));
    let gateway = Server::cronpush(&[]);
    for path in [
        "/metrics/job/cronpush/namespace/batch/cronjob/nightly",
        "/metrics/job/cronpush/namespace/batch/cronjob/hourly",
        "/metrics/job/cronpush/namespace/batch/cronjob/gone-before",
        "/metrics/job/backup/namespace/batch/cronjob/gone-before",
    ] {
        push(&gateway, path);
    }
    (api, gateway)
}

#[test]
fn the_groups_of_deleted_cronjobs_are_deleted_and_nothing_else() {
    let (api, gateway) = setup();
    let _webhook = Webhook::start_with_flags(&api.url(), &gateway.base, &["--delete-groups-of-deleted-cronjobs"]);
    let caught_up = support::eventually(Duration::from_secs(20), || {
        !groups(&gateway).contains(&"cronpush/batch/gone-before".to_string())
    });
    assert!(caught_up, "the group of a CronJob deleted before the webhook started stayed: {:?}", groups(&gateway));
    assert_eq!(groups(&gateway), ["backup/batch/gone-before", "cronpush/batch/hourly", "cronpush/batch/nightly"]);

    api.remove("cronjobs", "batch", "nightly");
    let deleted = support::eventually(Duration::from_secs(20), || {
        !groups(&gateway).contains(&"cronpush/batch/nightly".to_string())
    });
    assert!(deleted, "the deleted CronJob's group stayed: {:?}", groups(&gateway));
    assert_eq!(groups(&gateway), ["backup/batch/gone-before", "cronpush/batch/hourly"]);

    // A CronJob created now pushes to a group that stays.
    api.put(cronjob("batch", "new"));
    push(&gateway, "/metrics/job/cronpush/namespace/batch/cronjob/new");
    std::thread::sleep(Duration::from_secs(1));
    assert!(groups(&gateway).contains(&"cronpush/batch/new".to_string()));
}

#[test]
fn without_the_flag_no_group_is_deleted() {
    let (api, gateway) = setup();
    let _webhook = Webhook::start_with(&api.url(), &gateway.base);
    // The webhook has listed the CronJobs (its resolver's cache) and heard of the deletion.
    assert!(support::eventually(Duration::from_secs(20), || api.requests("/apis/batch/v1/cronjobs") > 0));
    api.remove("cronjobs", "batch", "nightly");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(groups(&gateway).len(), 4, "{:?}", groups(&gateway));
}

/// The running Pod of a deleted CronJob. The garbage collector deletes the CronJob's Job and
/// then its Pod (background propagation, website concepts/architecture/garbage-collection.md);
/// the kubelet stops the main container, then the sidecar. The end of this run would bring back
/// the group the webhook deleted with the CronJob, with a failure nobody can mend: the relay
/// tells the sidecar that its CronJob is gone, and the sidecar pushes nothing.
#[test]
fn the_last_pod_of_a_deleted_cronjob_does_not_bring_its_group_back() {
    let gateway = Server::cronpush(&[]);
    let spec = CronJobRun { webhook_flags: vec!["--delete-groups-of-deleted-cronjobs"], ..CronJobRun::article() };
    let run = Run::admit_run(spec, &gateway.base, |_| {});
    let group = format!("cronpush/{}/{}", run.spec.namespace, run.spec.cronjob);
    run_start(&run);
    assert!(groups(&gateway).contains(&group), "{:?}", groups(&gateway));
    let mut sidecar = run.start_sidecar();
    let main = start_main("sleep 60");

    run.api.remove("cronjobs", &run.spec.namespace, &run.spec.cronjob);
    let deleted = support::eventually(Duration::from_secs(20), || !groups(&gateway).contains(&group));
    assert!(deleted, "the deleted CronJob's group stayed: {:?}", groups(&gateway));
    run.api.remove("jobs", &run.spec.namespace, &run.spec.job);
    run.delete(30, None);
    let killed = kill_pod(&run, main, &mut sidecar, Duration::from_secs(30));

    let (status, _) = killed.sidecar_exit.expect("the sidecar exits within its time");
    assert_eq!(status.code(), Some(0), "{}", run.log("cronpush-sidecar"));
    assert!(run.log("cronpush-sidecar").contains("not pushing the end"), "{}", run.log("cronpush-sidecar"));
    std::thread::sleep(Duration::from_secs(1));
    assert!(!groups(&gateway).contains(&group), "the end brought the group back: {:?}", groups(&gateway));
}

/// Against a gateway with TLS from a private CA and basic auth, the webhook reads the groups
/// and deletes a deleted CronJob's with the CA of `--gateway-ca-file` and its own credentials;
/// with a wrong password it deletes nothing, and its log says that the gateway refused.
#[test]
fn the_clean_up_reaches_a_gateway_with_tls_and_basic_auth() {
    let api = FakeApi::start();
    api.put(cronjob("batch", "nightly"));
    let gateway = TlsGateway::start();
    for path in
        ["/metrics/job/cronpush/namespace/batch/cronjob/nightly", "/metrics/job/cronpush/namespace/batch/cronjob/gone"]
    {
        gateway.push(path);
    }
    let ca_file = format!("--gateway-ca-file={}", gateway.ca_file());
    let flags = |password: &str| {
        [
            "--delete-groups-of-deleted-cronjobs".to_string(),
            ca_file.clone(),
            format!("--gateway-username={GATEWAY_USER}"),
            format!("--gateway-password={password}"),
        ]
    };
    let wrong = flags("wrong");
    let refused =
        Webhook::start_with_flags(&api.url(), &gateway.url, &wrong.iter().map(String::as_str).collect::<Vec<_>>());
    let said = support::eventually(Duration::from_secs(20), || refused.log().contains("401"));
    assert!(said, "the webhook did not say the gateway refused it:\n{}", refused.log());
    assert_eq!(gateway.groups(), ["cronpush/batch/gone", "cronpush/batch/nightly"]);
    assert!(!refused.log().contains("wrong"), "the password is in the log:\n{}", refused.log());
    drop(refused);

    let right = flags(GATEWAY_PASSWORD);
    let _webhook =
        Webhook::start_with_flags(&api.url(), &gateway.url, &right.iter().map(String::as_str).collect::<Vec<_>>());
    let cleaned = support::eventually(Duration::from_secs(20), || gateway.groups() == ["cronpush/batch/nightly"]);
    assert!(cleaned, "the deleted CronJob's group stayed: {:?}", gateway.groups());
}
