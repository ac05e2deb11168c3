//! The shipped alert rules, end to end: a real cronpush gateway, a real Prometheus (Debian's
//! `prometheus` 2.42) loading `manifests/prometheus/rules.yml` byte for byte, with a 1 s scrape
//! and evaluation interval and `honor_labels: true`, and CronJob runs played by the kubelet
//! emulation of tests/support/kubelet.rs with the real webhook, `cronpush start` and
//! `cronpush sidecar`. Every assertion goes through Prometheus' HTTP API.
//!
//! The article's CronJob runs every minute (`*/1 * * * *`). Time is compressed by choosing each
//! run's schedule slot (the Job's `batch.kubernetes.io/cronjob-scheduled-timestamp`) and the
//! CronJob's `cronpush.io/grace-seconds` and `cronpush.io/max-run-seconds`; the rules and their
//! `for:` are the shipped ones. Four CronJobs, each in its own namespace, run side by side
//! against the one Prometheus:
//! - a successful run: no alert, not even once its (3 s) maximum run time is long past;
//! - a failing run (exit 3): CronJobFailed fires with the container, reason Error and value 3,
//!   and resolves when the next run succeeds;
//! - a run that never finishes (its Pod vanishes: the sidecar is killed, never pushes the end):
//!   CronJobRunningTooLong, pending once the maximum run time is over, firing 30 s later, and
//!   resolved when a later run of that CronJob completes;
//! - a schedule that stops after a success (its CronJob controller stops starting it):
//!   CronJobNotScheduled, pending once the next slot plus the 2 s grace is over, firing 30 s
//!   later, and resolved when the schedule resumes (a new run starts at the latest slot);
//! - runs that overlap (Allow): a run ends after the next one started, and that next one's Pod
//!   vanishes: CronJobRunningTooLong for it, although an end came after its start; resolved by a
//!   later run's end;
//! - a `concurrencyPolicy: Forbid` run that outlasts its next slot: CronJobRunningTooLong once
//!   its 3 s are over, and not CronJobNotScheduled (the controller skips the slot while the run
//!   goes); the run ends past `startingDeadlineSeconds`, the controller waits for the next slot
//!   (its end pushes it), whose run starts on time;
//! - a failed Pod that its Job retries (`backoffLimit` 1): quiet; the second Pod fails too, the
//!   Job fails, and CronJobFailed fires; the next slot's success resolves it;
//! - a CronJob suspended after a success: the webhook pushes it, and nothing fires past its next
//!   slot, grace and `for:`.
//!
//! Those with nothing to play after their slots have a 600 s grace. At every poll, any alert
//! active (pending or firing) beyond the expected ones fails the test, CronpushGatewayDown
//! included; each expected alert is allowed only until it is seen resolved, and none is left:
//! each pages exactly once.
//!
//! Why on the fake: time is compressed by choosing each run's schedule slot, which a real CronJob
//! controller would only reach by waiting for the real minutes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::Server;
use support::kubelet::{CronJobRun, MAIN, PodContainers as _, Run, run_start, run_to_end, wait};
use support::prometheus::SCRAPE_JOB;

const SHIPPED_ALERTS: [&str; 7] = [
    "CronJobExitStatusUnknown",
    "CronJobFailed",
    "CronJobNotScheduled",
    "CronJobNotSucceededRecently",
    "CronJobPushFailing",
    "CronJobRunningTooLong",
    "CronpushGatewayDown",
];
/// The shipped `for:` of the timing alerts.
const FOR_SECONDS: f64 = 30.0;
/// Prometheus' scrape and evaluation intervals here, in seconds.
const SCRAPE_AND_EVALUATION: f64 = 1.0;
/// How long after its condition holds an alert may take to show: a scrape (1 s), an evaluation
/// (1 s) and the API, on a loaded 2-core box.
const SLACK: f64 = 15.0;

const SUCCESS_NS: &str = "alerting-success";
const FAILURE_NS: &str = "alerting-failure";
const STUCK_NS: &str = "alerting-stuck";
const STOPPED_NS: &str = "alerting-stopped";
const OVERLAP_NS: &str = "alerting-overlap";
const FORBID_NS: &str = "alerting-forbid";
const RETRIED_NS: &str = "alerting-retried";
const PAUSED_NS: &str = "alerting-paused";
const CRONJOB: &str = "report";

/// The shared Prometheus (tests/support/prometheus.rs) evaluating the shipped rules.
struct Prometheus(support::prometheus::Prometheus);

impl Prometheus {
    fn start(gateway: &Server) -> Prometheus {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/prometheus/rules.yml");
        let prometheus = support::prometheus::Prometheus::start(gateway, Some(&shipped), &[]);
        let rules = prometheus.rules_copy();
        assert_eq!(std::fs::read(&rules).unwrap(), std::fs::read(&shipped).unwrap(), "the rules, byte for byte");
        Prometheus(prometheus)
    }

    fn log(&self) -> String {
        self.0.log()
    }

    fn api(&self, path: &str, query: &[(&str, &str)]) -> Value {
        let (_, json) = self.0.get(path, query);
        assert_eq!(json["status"], "success", "GET {path} {query:?} failed: {json}");
        json["data"].clone()
    }

    /// The active (pending or firing) alerts, from `/api/v1/alerts`.
    fn alerts(&self) -> Vec<Alert> {
        let data = self.api("/api/v1/alerts", &[]);
        data["alerts"].as_array().expect("alerts").iter().map(Alert::from_json).collect()
    }

    /// An instant query's result count.
    fn count(&self, expr: &str) -> usize {
        self.api("/api/v1/query", &[("query", expr)])["result"].as_array().map_or(0, |r| r.len())
    }

    fn value(&self, expr: &str) -> Option<f64> {
        let data = self.api("/api/v1/query", &[("query", expr)]);
        data["result"][0]["value"][1].as_str().map(|v| v.parse().expect("a number"))
    }
}

#[derive(Debug, Clone)]
struct Alert {
    name: String,
    state: String,
    labels: BTreeMap<String, String>,
    value: f64,
    /// When the alert became pending, Unix seconds.
    active_at: f64,
}

impl Alert {
    fn from_json(a: &Value) -> Alert {
        let labels: BTreeMap<String, String> = serde_json::from_value(a["labels"].clone()).expect("labels");
        let active_at: jiff::Timestamp = a["activeAt"].as_str().expect("activeAt").parse().expect("a time");
        Alert {
            name: labels["alertname"].clone(),
            state: a["state"].as_str().expect("state").to_string(),
            value: a["value"].as_str().expect("value").parse().expect("a number"),
            active_at: active_at.as_nanosecond() as f64 / 1e9,
            labels,
        }
    }

    fn namespace(&self) -> &str {
        self.labels.get("namespace").map_or("", String::as_str)
    }

    fn is(&self, name: &str, namespace: &str) -> bool {
        self.name == name && self.namespace() == namespace
    }

    /// The labels but `instance` (the gateway's address, which `honor_labels` keeps when the
    /// push has none).
    fn labels_but_instance(&self) -> BTreeMap<String, String> {
        self.labels.iter().filter(|(k, _)| *k != "instance").map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

/// The test's shared state: Prometheus, and which (alert, namespace) may be active right now.
struct Watch {
    prometheus: Prometheus,
    allowed: Mutex<BTreeSet<(String, String)>>,
}

impl Watch {
    /// The active alerts, failing on any that is not allowed at this moment.
    fn alerts(&self) -> Vec<Alert> {
        let alerts = self.prometheus.alerts();
        let allowed = self.allowed.lock().unwrap().clone();
        for alert in &alerts {
            assert!(
                allowed.contains(&(alert.name.clone(), alert.namespace().to_string())),
                "an unexpected alert is {}: {alert:?}\nallowed: {allowed:?}\nall: {alerts:#?}",
                alert.state
            );
        }
        alerts
    }

    /// Polls the alerts until `found` returns something, failing after `deadline`.
    fn until<T>(&self, what: &str, deadline: f64, mut found: impl FnMut(&[Alert]) -> Option<T>) -> T {
        loop {
            let alerts = self.alerts();
            if let Some(t) = found(&alerts) {
                return t;
            }
            assert!(now() < deadline, "{what} did not happen in time; active alerts: {alerts:#?}");
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Keeps checking the alerts (any one not allowed fails the test) while `waiting` holds.
    fn watch_while(&self, mut waiting: impl FnMut() -> bool) {
        while waiting() {
            self.alerts();
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn disallow(&self, name: &str, namespace: &str) {
        self.allowed.lock().unwrap().remove(&(name.to_string(), namespace.to_string()));
    }

    /// Waits until Prometheus has scraped `series`.
    fn wait_for_series(&self, series: &str) {
        let deadline = now() + SLACK;
        while self.prometheus.count(series) == 0 {
            assert!(now() < deadline, "Prometheus did not show {series}");
            self.alerts();
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Waits for `name` in `namespace` to fire after its condition began to hold at
    /// `condition_from` (or once the series were scraped, if later: `pushed`), and checks the
    /// shipped `for:`: pending from the first evaluation after `condition_from`, firing no
    /// earlier than 30 s after that.
    fn fires_after_for(&self, name: &str, namespace: &str, condition_from: f64, pushed: f64) -> Alert {
        let latest_start = condition_from.max(pushed) + SLACK;
        let deadline = latest_start + FOR_SECONDS + SLACK;
        let alert = self.until(&format!("{name} for {namespace} firing"), deadline, |alerts| {
            let alert = alerts.iter().find(|a| a.is(name, namespace))?;
            // Firing no earlier than the `for:` after it became pending (same clock).
            let at = now();
            if alert.state == "pending" {
                assert!(at < alert.active_at + FOR_SECONDS + SLACK, "{name} stayed pending: {alert:?}");
            }
            (alert.state == "firing").then(|| {
                assert!(at >= alert.active_at + FOR_SECONDS, "{name} fired before its for: {alert:?} at {at}");
                alert.clone()
            })
        });
        assert!(
            alert.active_at > condition_from && alert.active_at <= latest_start,
            "{name} for {namespace} became pending at {}, its condition held from {condition_from} (pushed at \
             {pushed})",
            alert.active_at
        );
        alert
    }
}

fn now() -> f64 {
    jiff::Timestamp::now().as_nanosecond() as f64 / 1e9
}

/// The minute slot at or before `t` (Unix seconds).
fn slot_at_or_before(t: f64) -> i64 {
    (t.floor() as i64).div_euclid(60) * 60
}

fn timestamp(seconds: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(seconds).unwrap()
}

fn annotations(grace: &str, max_run: Option<&str>) -> Value {
    let mut a = json!({"cronpush.io/grace-seconds": grace});
    if let Some(max_run) = max_run {
        a["cronpush.io/max-run-seconds"] = json!(max_run);
    }
    a
}

fn expected_labels(name: &str, severity: &str, namespace: &str, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = [
        ("alertname", name),
        ("severity", severity),
        ("job", "cronpush"),
        ("namespace", namespace),
        ("cronjob", CRONJOB),
    ]
    .iter()
    .chain(extra)
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    labels.retain(|_, v| !v.is_empty());
    labels
}

/// A successful run with a 3 s maximum run time: nothing fires, even well past the time at
/// which CronJobRunningTooLong would fire were the completion not seen.
fn successful_run(watch: &Watch, gateway: &Server) {
    let spec = CronJobRun::at(SUCCESS_NS, CRONJOB, annotations("600", Some("3")), timestamp(slot_at_or_before(now())));
    let run = Run::admit_run(spec, &gateway.base, |_| {});
    let started = now();
    run_to_end(&run, "exit 0");
    watch.wait_for_series(&format!(
        r#"cronjob_last_result{{namespace="{SUCCESS_NS}",cronjob="{CRONJOB}",result="success"}} == 1"#
    ));
    let quiet_until = started + 3.0 + FOR_SECONDS + SLACK;
    while now() < quiet_until {
        let alerts = watch.alerts();
        assert!(!alerts.iter().any(|a| a.namespace() == SUCCESS_NS), "{alerts:#?}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A run that exits 3: CronJobFailed fires at once (no `for:`) with the container, reason and
/// code; the next slot's run succeeds and it resolves.
fn failing_then_succeeding_run(watch: &Watch, gateway: &Server) {
    let slot = slot_at_or_before(now());
    let failing = Run::admit_run(
        CronJobRun::at(FAILURE_NS, CRONJOB, annotations("600", None), timestamp(slot)),
        &gateway.base,
        |_| {},
    );
    let terminated = run_to_end(&failing, "exit 3");
    assert_eq!(terminated["exitCode"], 3);
    let failed_at = now();
    let alert = watch.until("CronJobFailed firing", failed_at + SLACK, |alerts| {
        alerts.iter().find(|a| a.is("CronJobFailed", FAILURE_NS) && a.state == "firing").cloned()
    });
    let expected = expected_labels("CronJobFailed", "warning", FAILURE_NS, &[("container", MAIN), ("reason", "Error")]);
    assert_eq!(alert.labels_but_instance(), expected, "{alert:?}");
    assert_eq!(alert.value, 3.0, "the exit code: {alert:?}");
    let fired = now();
    assert_eq!(watch.prometheus.count("cronjob_last_success_timestamp_seconds{namespace=\"alerting-failure\"}"), 0);

    let succeeding = Run::admit_run(
        CronJobRun::at(FAILURE_NS, CRONJOB, annotations("600", None), timestamp(slot + 60)),
        &gateway.base,
        |_| {},
    );
    run_start(&succeeding);
    // Between the next run's start and its end, the last finished run is still the failed one.
    watch.wait_for_series(&format!(
        "cronjob_last_scheduled_timestamp_seconds{{namespace=\"{FAILURE_NS}\"}} == {}",
        slot + 60
    ));
    let alerts = watch.alerts();
    assert!(alerts.iter().any(|a| a.is("CronJobFailed", FAILURE_NS) && a.state == "firing"), "{alerts:#?}");
    let mut sidecar = succeeding.start_sidecar();
    succeeding.report_main(&support::kubelet::run_main("exit 0"));
    support::kubelet::stop_sidecar(&succeeding, &mut sidecar, Duration::from_secs(30));
    let ended = now();
    watch.until("CronJobFailed resolved", ended + SLACK, |alerts| {
        (!alerts.iter().any(|a| a.is("CronJobFailed", FAILURE_NS))).then_some(())
    });
    watch.disallow("CronJobFailed", FAILURE_NS);
    eprintln!(
        "failure: firing {:.1} s after the failed run ended, resolved {:.1} s after the success",
        fired - failed_at,
        now() - ended
    );
    assert_eq!(
        watch.prometheus.count(&format!(r#"cronjob_last_result{{namespace="{FAILURE_NS}",result="success"}} == 1"#)),
        1,
        "resolved by the success"
    );
}

/// A run that starts and whose Pod vanishes (the sidecar killed, nothing pushed at the end):
/// CronJobRunningTooLong once the 3 s maximum run time is over, after its `for:`. The next
/// slot's run completes, and it resolves.
fn run_that_never_finishes(watch: &Watch, gateway: &Server) {
    let slot = slot_at_or_before(now());
    let spec = CronJobRun::at(STUCK_NS, CRONJOB, annotations("600", Some("3")), timestamp(slot));
    let run = Run::admit_run(spec, &gateway.base, |_| {});
    run_start(&run);
    let mut sidecar = run.start_sidecar();
    // The main container runs; then the node is lost: no SIGTERM, no status, no end push.
    sidecar.kill().unwrap();
    assert!(wait(&mut sidecar, Duration::from_secs(5)).is_some());
    let killed = now();
    let series = format!(r#"cronjob_last_start_timestamp_seconds{{namespace="{STUCK_NS}"}}"#);
    watch.wait_for_series(&series);
    let started = watch.prometheus.value(&series).expect("the start");
    assert!(started <= killed, "{started} {killed}");
    let alert = watch.fires_after_for("CronJobRunningTooLong", STUCK_NS, started + 3.0, killed);
    assert_eq!(alert.labels_but_instance(), expected_labels("CronJobRunningTooLong", "warning", STUCK_NS, &[]));
    assert!(alert.value > 3.0 + FOR_SECONDS && alert.value <= now() - started + 1.0, "running for: {alert:?}");
    eprintln!(
        "never finishes: pending {:.1} s and firing by {:.1} s after the start",
        alert.active_at - started,
        now() - started
    );
    assert_eq!(watch.prometheus.count("cronjob_last_result{namespace=\"alerting-stuck\"}"), 0, "nothing at the end");

    let later = Run::admit_run(
        CronJobRun::at(STUCK_NS, CRONJOB, annotations("600", Some("3")), timestamp(slot + 60)),
        &gateway.base,
        |_| {},
    );
    let restarted = now();
    run_to_end(&later, "exit 0");
    watch.wait_for_series(&format!(
        r#"cronjob_last_result{{namespace="{STUCK_NS}",cronjob="{CRONJOB}",result="success"}} == 1"#
    ));
    watch.until("CronJobRunningTooLong resolved", now() + SLACK, |alerts| {
        (!alerts.iter().any(|a| a.is("CronJobRunningTooLong", STUCK_NS))).then_some(())
    });
    watch.disallow("CronJobRunningTooLong", STUCK_NS);
    eprintln!("never finishes: resolved {:.1} s after the next run started", now() - restarted);
}

/// A successful run, then its CronJob stops being started (the controller down): CronJobNotScheduled once the
/// next slot plus the 2 s grace has passed, after its `for:`. The run's slot is the one before
/// the first minute at least 2 s ahead, so the next slot is 2 to 62 s away. Then the CronJob is
/// resumed: a run starts at the latest slot, which moves the next slot ahead, and it resolves.
fn schedule_that_stops(watch: &Watch, gateway: &Server) {
    let next = slot_at_or_before(now() + 2.0 + 59.999);
    let spec = CronJobRun::at(STOPPED_NS, CRONJOB, annotations("2", None), timestamp(next - 60));
    let run = Run::admit_run(spec, &gateway.base, |_| {});
    run_to_end(&run, "exit 0");
    let pushed = now();
    assert!((next as f64) > pushed - 10.0, "the run took long: next slot {next}, now {pushed}");
    watch.wait_for_series(&format!("cronjob_next_scheduled_timestamp_seconds{{namespace=\"{STOPPED_NS}\"}} == {next}"));
    let alert = watch.fires_after_for("CronJobNotScheduled", STOPPED_NS, next as f64 + 2.0, pushed);
    assert_eq!(alert.labels_but_instance(), expected_labels("CronJobNotScheduled", "warning", STOPPED_NS, &[]));
    assert!(alert.value > 2.0 + FOR_SECONDS && alert.value <= now() - next as f64 + 1.0, "seconds late: {alert:?}");
    eprintln!(
        "schedule stops: next slot {:.1} s after the end push; pending {:.1} s and firing by {:.1} s after the slot",
        next as f64 - pushed,
        alert.active_at - next as f64,
        now() - next as f64
    );

    // Its grace is now 600 s, so that the slots after it, which nothing plays, page nothing
    // while the other scenarios go on.
    let resumed_slot = slot_at_or_before(now());
    let resumed = Run::admit_run(
        CronJobRun::at(STOPPED_NS, CRONJOB, annotations("600", None), timestamp(resumed_slot)),
        &gateway.base,
        |_| {},
    );
    let resumed_at = now();
    run_start(&resumed);
    watch.wait_for_series(&format!(
        "cronjob_next_scheduled_timestamp_seconds{{namespace=\"{STOPPED_NS}\"}} == {}",
        resumed_slot + 60
    ));
    watch.until("CronJobNotScheduled resolved", now() + SLACK, |alerts| {
        (!alerts.iter().any(|a| a.is("CronJobNotScheduled", STOPPED_NS))).then_some(())
    });
    watch.disallow("CronJobNotScheduled", STOPPED_NS);
    eprintln!("schedule stops: resolved {:.1} s after the resumed run started", now() - resumed_at);
    // The resumed run ends well, and nothing fires for it.
    let mut sidecar = resumed.start_sidecar();
    resumed.report_main(&support::kubelet::run_main("exit 0"));
    support::kubelet::stop_sidecar(&resumed, &mut sidecar, Duration::from_secs(30));
    watch.wait_for_series(&format!(
        r#"cronjob_last_result{{namespace="{STOPPED_NS}",cronjob="{CRONJOB}",result="success"}} == 1"#
    ));
}

/// Runs that overlap under `concurrencyPolicy: Allow`: the run of `slot` is still going when
/// the run of the next slot starts, whose node is then lost (nothing pushed at its end); the
/// first ends after that start. Its end names its own slot, so the lost run is still running
/// to the rules: CronJobRunningTooLong once its 3 s are over. A later run's end resolves it.
fn runs_that_overlap(watch: &Watch, gateway: &Server) {
    let slot = slot_at_or_before(now());
    let run_of = |slot: i64| {
        let spec = CronJobRun::at(OVERLAP_NS, CRONJOB, annotations("600", Some("3")), timestamp(slot));
        Run::admit_run(spec, &gateway.base, |_| {})
    };
    let first = run_of(slot);
    run_start(&first);
    let mut first_sidecar = first.start_sidecar();
    let second = run_of(slot + 60);
    run_start(&second);
    let mut second_sidecar = second.start_sidecar();
    second_sidecar.kill().unwrap();
    assert!(wait(&mut second_sidecar, Duration::from_secs(5)).is_some());
    let lost = now();
    first.report_main(&support::kubelet::run_main("exit 0"));
    support::kubelet::stop_sidecar(&first, &mut first_sidecar, Duration::from_secs(30));
    watch.wait_for_series(&format!(
        "cronjob_last_ended_scheduled_timestamp_seconds{{namespace=\"{OVERLAP_NS}\"}} == {slot}"
    ));
    let start = format!(r#"cronjob_last_start_timestamp_seconds{{namespace="{OVERLAP_NS}"}}"#);
    let started = watch.prometheus.value(&start).expect("the second run's start");
    let completed =
        watch.prometheus.value(&format!(r#"cronjob_last_completion_timestamp_seconds{{namespace="{OVERLAP_NS}"}}"#));
    assert!(completed.is_some_and(|c| c >= started.floor()), "the first run ended after the second started");
    let alert = watch.fires_after_for("CronJobRunningTooLong", OVERLAP_NS, started + 3.0, lost);
    assert_eq!(alert.labels_but_instance(), expected_labels("CronJobRunningTooLong", "warning", OVERLAP_NS, &[]));
    eprintln!("overlap: firing {:.1} s after the lost run's start", now() - started);

    run_to_end(&run_of(slot + 120), "exit 0");
    watch.until("CronJobRunningTooLong resolved", now() + SLACK, |alerts| {
        (!alerts.iter().any(|a| a.is("CronJobRunningTooLong", OVERLAP_NS))).then_some(())
    });
    watch.disallow("CronJobRunningTooLong", OVERLAP_NS);
}

/// The Forbid scenario's grace, in seconds. The following slot's run starts on time as the test
/// sees it, but up to 1 s of polling and admission on a loaded box, a scrape (1 s) and an
/// evaluation (1 s) can pass before Prometheus sees its start: with 2 s,
/// CronJobNotSucceededRecently could rightly go pending for a start it had not seen yet.
const FORBID_GRACE: i64 = 5;

/// A `concurrencyPolicy: Forbid` run that outlasts its next slot (grace 5 s, maximum 3 s, the
/// fixture's `startingDeadlineSeconds` 30). The CronJob controller skips the slot while the
/// Job is active (cronjob_controllerv2.go, event JobAlreadyActive): CronJobRunningTooLong pages,
/// CronJobNotScheduled does not. The run ends more than 30 s after the skipped slot, so the
/// controller waits for the next slot (event MissSchedule), which the sidecar pushes; that
/// slot's run starts on time, and nothing else pages.
fn forbid_run_past_its_slot(watch: &Watch, gateway: &Server) {
    let run_of = |slot: i64| {
        let spec = CronJobRun {
            concurrency_policy: "Forbid",
            ..CronJobRun::at(FORBID_NS, CRONJOB, annotations(&FORBID_GRACE.to_string(), Some("3")), timestamp(slot))
        };
        Run::admit_run(spec, &gateway.base, |_| {})
    };
    let slot = slot_at_or_before(now());
    let skipped = slot + 60;
    let run = run_of(slot);
    run_start(&run);
    let pushed = now();
    let mut sidecar = run.start_sidecar();
    let start = format!(r#"cronjob_last_start_timestamp_seconds{{namespace="{FORBID_NS}"}}"#);
    watch.wait_for_series(&start);
    let started = watch.prometheus.value(&start).expect("the start");
    watch.fires_after_for("CronJobRunningTooLong", FORBID_NS, started + 3.0, pushed);
    // Past the skipped slot and its grace, with time for a pending alert to show (every poll
    // fails on one, so the `for:` need not pass); then until the most recent slot is more than
    // startingDeadlineSeconds (30) old, and the next one not too close: the controller will
    // wait for that one (MissSchedule). (Within the deadline it would start the most recent
    // slot at once, as soon as the Job ends.)
    let past_deadline = |t: f64| (35.0..50.0).contains(&(t - slot_at_or_before(t) as f64));
    watch.watch_while(|| now() < (skipped + FORBID_GRACE) as f64 + SLACK || !past_deadline(now()));
    run.report_main(&support::kubelet::run_main("exit 0"));
    support::kubelet::stop_sidecar(&run, &mut sidecar, Duration::from_secs(30));
    let ended = now();
    watch.until("CronJobRunningTooLong resolved", ended + SLACK, |alerts| {
        (!alerts.iter().any(|a| a.is("CronJobRunningTooLong", FORBID_NS))).then_some(())
    });
    watch.disallow("CronJobRunningTooLong", FORBID_NS);
    let following = slot_at_or_before(ended) + 60;
    watch.wait_for_series(&format!(
        "cronjob_next_scheduled_timestamp_seconds{{namespace=\"{FORBID_NS}\"}} == {following}"
    ));
    watch.watch_while(|| now() < following as f64);
    run_to_end(&run_of(following), "exit 0");
    watch.wait_for_series(&format!(
        "cronjob_last_ended_scheduled_timestamp_seconds{{namespace=\"{FORBID_NS}\"}} == {following}"
    ));
    eprintln!("forbid: the run ended {:.1} s after the skipped slot", ended - skipped as f64);
}

/// A Job with `backoffLimit` 1: its first Pod fails and the Job runs another (the relay reads
/// the Job, job_controller.go counts failed Pods), which is `retrying` and pages nothing; the
/// second fails too, which fails the Job: CronJobFailed, once. The next slot's success
/// resolves it.
fn retried_then_failed_job(watch: &Watch, gateway: &Server) {
    let slot = slot_at_or_before(now());
    let attempt = |failed_before: i64| {
        let spec = CronJobRun::at(RETRIED_NS, CRONJOB, annotations("600", None), timestamp(slot));
        let run = Run::admit_run(spec, &gateway.base, |_| {});
        run.api.modify("jobs", RETRIED_NS, &run.spec.job, |job| {
            job["spec"]["backoffLimit"] = json!(1);
            job["status"] = json!({"failed": failed_before, "active": 1});
        });
        run
    };
    run_to_end(&attempt(0), "exit 3");
    watch.wait_for_series(&format!(r#"cronjob_last_result{{namespace="{RETRIED_NS}",result="retrying"}} == 1"#));
    // CronJobFailed has no `for:`: it would be active at the next evaluation.
    let quiet_until = now() + 3.0 * SCRAPE_AND_EVALUATION;
    watch.watch_while(|| now() < quiet_until);
    run_to_end(&attempt(1), "exit 3");
    let failed_at = now();
    let alert = watch.until("CronJobFailed firing", failed_at + SLACK, |alerts| {
        alerts.iter().find(|a| a.is("CronJobFailed", RETRIED_NS) && a.state == "firing").cloned()
    });
    assert_eq!(alert.value, 3.0, "{alert:?}");
    let next = Run::admit_run(
        CronJobRun::at(RETRIED_NS, CRONJOB, annotations("600", None), timestamp(slot + 60)),
        &gateway.base,
        |_| {},
    );
    run_to_end(&next, "exit 0");
    watch.until("CronJobFailed resolved", now() + SLACK, |alerts| {
        (!alerts.iter().any(|a| a.is("CronJobFailed", RETRIED_NS))).then_some(())
    });
    watch.disallow("CronJobFailed", RETRIED_NS);
}

/// A successful run, then its CronJob suspended (`kubectl patch cronjob report -p
/// '{"spec":{"suspend":true}}'`): the webhook pushes `cronjob_suspended`, and nothing fires
/// past the next slot (15 to 75 s away), its 2 s grace and the `for:`.
fn suspended_cronjob(watch: &Watch, gateway: &Server) {
    let next = slot_at_or_before(now() + 15.0 + 59.999);
    let spec = CronJobRun::at(PAUSED_NS, CRONJOB, annotations("2", None), timestamp(next - 60));
    let run = Run::admit_run(spec, &gateway.base, |_| {});
    run_to_end(&run, "exit 0");
    run.api.modify("cronjobs", PAUSED_NS, CRONJOB, |cronjob| cronjob["spec"]["suspend"] = json!(true));
    watch.wait_for_series(&format!("cronjob_suspended{{namespace=\"{PAUSED_NS}\"}} == 1"));
    assert!(now() < next as f64, "suspended after its next slot: the test was too slow");
    watch.watch_while(|| now() < next as f64 + 2.0 + FOR_SECONDS + SLACK);
}

#[test]
fn the_shipped_rules_fire_and_resolve_for_real_runs() {
    let gateway = Server::cronpush(&[]);
    let prometheus = Prometheus::start(&gateway);

    // The shipped rule file is loaded, whole, and evaluates without error.
    let loaded = support::eventually(Duration::from_secs(30), || {
        let groups = prometheus.api("/api/v1/rules", &[]);
        let rules: Vec<&Value> =
            groups["groups"].as_array().into_iter().flatten().flat_map(|g| g["rules"].as_array().unwrap()).collect();
        let names: BTreeSet<&str> = rules.iter().filter_map(|r| r["name"].as_str()).collect();
        rules.len() == SHIPPED_ALERTS.len()
            && names == SHIPPED_ALERTS.into_iter().collect()
            && rules.iter().all(|r| r["type"] == "alerting" && r["health"] == "ok")
    });
    assert!(loaded, "the rules: {}\n{}", prometheus.api("/api/v1/rules", &[]), prometheus.log());
    // The gateway is up, and nothing is active (CronpushGatewayDown may be pending for a moment
    // before the first scrape).
    let up = format!(r#"up{{job="{SCRAPE_JOB}"}} == 1"#);
    let quiet =
        support::eventually(Duration::from_secs(30), || prometheus.count(&up) == 1 && prometheus.alerts().is_empty());
    assert!(quiet, "the gateway is not up, or alerts are active: {:?}", prometheus.alerts());

    let allowed = [
        ("CronJobFailed", FAILURE_NS),
        ("CronJobRunningTooLong", STUCK_NS),
        ("CronJobNotScheduled", STOPPED_NS),
        ("CronJobRunningTooLong", OVERLAP_NS),
        ("CronJobRunningTooLong", FORBID_NS),
        ("CronJobFailed", RETRIED_NS),
    ];
    let watch = Watch {
        prometheus,
        allowed: Mutex::new(allowed.iter().map(|(a, n)| (a.to_string(), n.to_string())).collect()),
    };
    let began = Instant::now();
    std::thread::scope(|scope| {
        let watch = &watch;
        let gateway = &gateway;
        scope.spawn(move || schedule_that_stops(watch, gateway));
        scope.spawn(move || run_that_never_finishes(watch, gateway));
        scope.spawn(move || failing_then_succeeding_run(watch, gateway));
        scope.spawn(move || successful_run(watch, gateway));
        scope.spawn(move || runs_that_overlap(watch, gateway));
        scope.spawn(move || forbid_run_past_its_slot(watch, gateway));
        scope.spawn(move || retried_then_failed_job(watch, gateway));
        scope.spawn(move || suspended_cronjob(watch, gateway));
    });

    // Every expected alert fired and resolved: nothing is allowed any more, and nothing is active.
    assert!(watch.allowed.lock().unwrap().is_empty(), "not resolved: {:?}", watch.allowed.lock().unwrap());
    assert!(watch.alerts().is_empty());
    assert_eq!(watch.prometheus.count(&up), 1, "the gateway stayed up");
    eprintln!("scenarios took {:?}", began.elapsed());
}
