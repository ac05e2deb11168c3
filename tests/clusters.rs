//! Many clusters, one gateway: `cronpush webhook --cluster-name NAME` puts `cluster=NAME` into
//! the grouping key of every run it injects, so that the same `namespace/cronjob` in two
//! clusters are two groups, and its clean-up deletes only its own cluster's groups. Real
//! webhook, `start`, `sidecar` and gateway binaries, the kubelet emulation and the fake API
//! server (tests/support), as in tests/run_end_to_end.rs and tests/cleanup.rs.

use std::time::Duration;

use serde_json::json;
use support::Server;
use support::kube_api::FakeApi;
use support::kubelet::{CronJobRun, Run, run_to_end};
use support::webhook::Webhook;

/// The gateway's groups as `job/cluster/namespace/cronjob`.
fn groups(gateway: &Server) -> Vec<String> {
    support::group_names(gateway, &["job", "cluster", "namespace", "cronjob"])
}

/// The same CronJob run in two clusters, each with its own webhook, into one gateway.
#[test]
fn the_same_cronjob_in_two_clusters_is_two_groups() {
    let gateway = Server::cronpush(&[]);
    for (flag, command) in [("--cluster-name=east", "exit 0"), ("--cluster-name=west", "exit 3")] {
        let spec = CronJobRun { webhook_flags: vec![flag], ..CronJobRun::article() };
        let run = Run::admit_run(spec, &gateway.base, |_| {});
        run_to_end(&run, command);
    }
    let article = CronJobRun::article();
    let (namespace, cronjob) = (&article.namespace, &article.cronjob);
    assert_eq!(
        groups(&gateway),
        [format!("cronpush/east/{namespace}/{cronjob}"), format!("cronpush/west/{namespace}/{cronjob}")]
    );
    let metrics = gateway.get("/metrics").body;
    for (cluster, result) in [("east", "success"), ("west", "failure")] {
        let series = format!(
            "cronjob_last_result{{cluster=\"{cluster}\",cronjob=\"{cronjob}\",instance=\"\",job=\"cronpush\",\
             namespace=\"{namespace}\",result=\"{result}\"}} 1"
        );
        assert!(metrics.contains(&series), "{series} in\n{metrics}");
    }

    // Without the flag the key is the one it always was.
    let run = Run::admit_run(CronJobRun::article(), &gateway.base, |_| {});
    run_to_end(&run, "exit 0");
    assert!(groups(&gateway).contains(&format!("cronpush/-/{namespace}/{cronjob}")), "{:?}", groups(&gateway));
}

fn cronjob(namespace: &str, name: &str) -> serde_json::Value {
    json!({"apiVersion": "batch/v1", "kind": "CronJob",
           "metadata": {"name": name, "namespace": namespace, "uid": format!("uid-{namespace}-{name}")},
           "spec": {"schedule": "*/5 * * * *",
                    "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "busybox"}]}}}}}})
}

#[test]
fn a_webhook_deletes_the_groups_of_its_own_clusters_deleted_cronjobs_only() {
    let api = FakeApi::start();
    api.put(cronjob("batch", "nightly"));
    let gateway = Server::cronpush(&[]);
    for path in [
        "/metrics/job/cronpush/cluster/east/namespace/batch/cronjob/nightly",
        "/metrics/job/cronpush/cluster/west/namespace/batch/cronjob/nightly",
        "/metrics/job/cronpush/cluster/east/namespace/batch/cronjob/gone-before",
        "/metrics/job/cronpush/cluster/west/namespace/batch/cronjob/gone-before",
        "/metrics/job/cronpush/namespace/batch/cronjob/gone-before",
    ] {
        assert_eq!(gateway.post(path, "cronjob_last_start_time_seconds 1\n").status, 200, "{path}");
    }
    let flags = ["--delete-groups-of-deleted-cronjobs", "--cluster-name=east"];
    let _webhook = Webhook::start_with_flags(&api.url(), &gateway.base, &flags);
    let caught_up = support::eventually(Duration::from_secs(20), || {
        !groups(&gateway).contains(&"cronpush/east/batch/gone-before".to_string())
    });
    assert!(caught_up, "east's group of a CronJob deleted before the webhook started stayed: {:?}", groups(&gateway));
    let others = ["cronpush/-/batch/gone-before", "cronpush/west/batch/gone-before", "cronpush/west/batch/nightly"];
    assert_eq!(groups(&gateway), [others[0], "cronpush/east/batch/nightly", others[1], others[2]]);

    // The CronJob deleted in east: west's CronJob of the same name is another's.
    api.remove("cronjobs", "batch", "nightly");
    let deleted = support::eventually(Duration::from_secs(20), || {
        !groups(&gateway).contains(&"cronpush/east/batch/nightly".to_string())
    });
    assert!(deleted, "the deleted CronJob's group stayed: {:?}", groups(&gateway));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(groups(&gateway), others);
}

#[test]
fn a_cluster_name_with_surrounding_spaces_is_refused_at_start() {
    let api = FakeApi::start();
    let webhook = std::process::Command::new(env!("CARGO_BIN_EXE_cronpush"))
        .args(["webhook", "--gateway-url=http://pi:9091", "--image=cronpush:test", "--cluster-name= east"])
        .env("KUBECONFIG", api.kubeconfig(tempfile::tempdir().unwrap().path()))
        .output()
        .unwrap();
    assert!(!webhook.status.success());
    let stderr = String::from_utf8_lossy(&webhook.stderr);
    assert!(stderr.contains("--cluster-name \" east\""), "{stderr}");
}
