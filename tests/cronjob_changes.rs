//! What the webhook tells the gateway of CronJobs themselves (src/webhook/cronjob_changes.rs):
//! suspended, resumed, given another schedule or time zone. The real webhook and gateway, and
//! the fake API server of tests/support/kube_api.rs, whose watch sends MODIFIED events as
//! kube-apiserver does when a CronJob's spec or status is updated (`kubectl patch cronjob x -p
//! '{"spec":{"suspend":true}}'`, or the CronJob controller writing `status.lastScheduleTime`).
//!
//! Why on the fake: the times of the next slots are checked against the clock here, and the
//! changes made while no webhook ran need the webhook stopped and started again.

use std::time::Duration;

use jiff::{Timestamp, ToSpan as _, tz::TimeZone};
use serde_json::{Value, json};
use support::Server;
use support::kube_api::FakeApi;
use support::webhook::Webhook;

const NIGHTLY: &str = "/metrics/job/cronpush/namespace/batch/cronjob/nightly";

fn cronjob(name: &str, schedule: &str) -> Value {
    json!({"apiVersion": "batch/v1", "kind": "CronJob",
           "metadata": {"name": name, "namespace": "batch", "uid": format!("uid-{name}")},
           "spec": {"schedule": schedule,
                    "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "busybox"}]}}}}}})
}

/// The value of `family`'s series in batch/`cronjob`'s group, and its labels, from a scrape.
fn series(gateway: &Server, cronjob: &str, family: &str) -> Option<(String, f64)> {
    gateway.pushed_series().into_iter().find_map(|line| {
        let rest = line.strip_prefix(&format!("{family}{{"))?;
        let (labels, value) = rest.rsplit_once("} ")?;
        labels.contains(&format!("cronjob=\"{cronjob}\"")).then(|| (labels.to_string(), value.parse().unwrap()))
    })
}

/// batch/nightly's last push, as the gateway scrapes it.
fn push_time(gateway: &Server) -> String {
    let scrape = gateway.get("/metrics").body;
    let line = scrape.lines().find(|l| l.starts_with("push_time_seconds{") && l.contains("cronjob=\"nightly\""));
    line.expect("nightly's push time").to_string()
}

fn value(gateway: &Server, cronjob: &str, family: &str) -> Option<f64> {
    series(gateway, cronjob, family).map(|(_, v)| v)
}

/// Waits until `family` of batch/`cronjob` has `want`.
fn wait_for(gateway: &Server, cronjob: &str, family: &str, want: f64) {
    let seen = support::eventually(Duration::from_secs(20), || value(gateway, cronjob, family) == Some(want));
    assert!(seen, "{family} of {cronjob} never became {want}: {:#?}", gateway.pushed_series());
}

fn modify(api: &FakeApi, name: &str, change: impl FnOnce(&mut Value)) {
    api.modify("cronjobs", "batch", name, change);
}

/// The start push of an earlier run of batch/nightly (`*/5 * * * *`), its next slot long past.
fn group_of_a_run(gateway: &Server) {
    let body = "cronjob_info{schedule=\"*/5 * * * *\",timezone=\"UTC\",concurrency_policy=\"Allow\"} 1\n\
                cronjob_last_scheduled_timestamp_seconds 1700000100\n\
                cronjob_next_scheduled_timestamp_seconds 1700000400\ncronjob_schedule_period_seconds 300\n";
    assert_eq!(gateway.post(NIGHTLY, body).status, 200);
}

/// Waits until the webhook's watches of CronJobs (its resolver's, and the one that follows
/// their changes) have listed them, and then a second for the comparison with the groups.
fn listed(api: &FakeApi) {
    assert!(support::eventually(Duration::from_secs(20), || api.requests("/apis/batch/v1/cronjobs") >= 2));
    std::thread::sleep(Duration::from_secs(1));
}

#[test]
fn suspended_resumed_and_edited_cronjobs_tell_their_group() {
    let api = FakeApi::start();
    api.put(cronjob("nightly", "*/5 * * * *"));
    api.put(cronjob("elsewhere", "*/5 * * * *"));
    let gateway = Server::cronpush(&[]);
    group_of_a_run(&gateway);
    let _webhook = Webhook::start_with(&api.url(), &gateway.base);
    listed(&api);
    // Nothing differs: nothing is pushed.
    assert_eq!(value(&gateway, "nightly", "cronjob_suspended"), None);

    // Suspended: the group says so, and keeps the run's facts.
    modify(&api, "nightly", |c| c["spec"]["suspend"] = json!(true));
    wait_for(&gateway, "nightly", "cronjob_suspended", 1.0);
    assert_eq!(value(&gateway, "nightly", "cronjob_next_scheduled_timestamp_seconds"), Some(1_700_000_400.0));
    // A CronJob whose Pods cronpush never injected has no group, and gets none.
    modify(&api, "elsewhere", |c| c["spec"]["suspend"] = json!(true));
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        gateway.pushed_series().iter().all(|l| !l.contains("cronjob=\"elsewhere\"")),
        "{:#?}",
        gateway.pushed_series()
    );

    // Resumed: the next slot is the first after now, as the controller counts it.
    let resumed = Timestamp::now();
    modify(&api, "nightly", |c| c["spec"]["suspend"] = json!(false));
    wait_for(&gateway, "nightly", "cronjob_suspended", 0.0);
    let next = value(&gateway, "nightly", "cronjob_next_scheduled_timestamp_seconds").unwrap();
    let now = Timestamp::now().as_second() as f64;
    assert!(next > resumed.as_second() as f64 && next <= now + 300.0 && next % 300.0 == 0.0, "next {next}, now {now}");
    assert_eq!(value(&gateway, "nightly", "cronjob_schedule_period_seconds"), Some(300.0));

    // Status only (the controller's lastScheduleTime): nothing is pushed.
    let pushed = push_time(&gateway);
    modify(&api, "nightly", |c| c["status"] = json!({"lastScheduleTime": "2026-12-01T00:00:00Z"}));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(push_time(&gateway), pushed);

    // Another schedule in another time zone: the info and the next 03:00 in Berlin.
    modify(&api, "nightly", |c| {
        c["spec"]["schedule"] = json!("0 3 * * *");
        c["spec"]["timeZone"] = json!("Europe/Berlin");
    });
    let edited = support::eventually(Duration::from_secs(20), || {
        series(&gateway, "nightly", "cronjob_info").is_some_and(|(labels, _)| labels.contains("schedule=\"0 3 * * *\""))
    });
    assert!(edited, "{:#?}", gateway.pushed_series());
    let (labels, _) = series(&gateway, "nightly", "cronjob_info").unwrap();
    assert!(
        labels.contains("timezone=\"Europe/Berlin\"") && labels.contains("concurrency_policy=\"Allow\""),
        "{labels}"
    );
    let berlin = TimeZone::get("Europe/Berlin").unwrap();
    let today = Timestamp::now().to_zoned(berlin.clone()).date().at(3, 0, 0, 0).to_zoned(berlin).unwrap();
    let want = if today.timestamp() > Timestamp::now() { today } else { today.checked_add(1.day()).unwrap() };
    assert_eq!(
        value(&gateway, "nightly", "cronjob_next_scheduled_timestamp_seconds"),
        Some(want.timestamp().as_second() as f64)
    );
}

#[test]
fn changes_made_while_no_webhook_ran_are_caught_up() {
    let api = FakeApi::start();
    api.put(cronjob("nightly", "*/5 * * * *"));
    let gateway = Server::cronpush(&[]);
    group_of_a_run(&gateway);
    modify(&api, "nightly", |c| c["spec"]["suspend"] = json!(true));
    let _webhook = Webhook::start_with(&api.url(), &gateway.base);
    wait_for(&gateway, "nightly", "cronjob_suspended", 1.0);
}
