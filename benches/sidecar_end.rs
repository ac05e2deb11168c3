//! How fast a run's end reaches the gateway after the kubelet's SIGTERM to the sidecar. When a
//! Pod is deleted (the Job's deadline, a drain, an eviction) and its main container ignores
//! SIGTERM, the kubelet gives the sidecar its floor of 2 s, so the end must be acknowledged well
//! within it: the target is a p99 under 500 ms.
//!
//! Every part is real and on loopback: the webhook (its relay), the gateway, and `cronpush
//! sidecar` started for each run as the kubelet starts it (tests/support/kubelet.rs), against
//! the fake API server of the tests, which holds the Pod and answers the TokenReview. For each
//! of SIDECAR_RUNS runs (default 200) per case, the sidecar is started, waited for until it
//! listens, and sent SIGTERM; measured are the time from the SIGTERM to the gateway's
//! acknowledgement (the sidecar's "pushed the end metrics" log line, written when the gateway
//! has answered; millisecond timestamps) and to the sidecar's exit. Each push is checked on the
//! gateway.
//!
//! The cases:
//! - deleted: the Pod has its `deletionTimestamp` and the main container is still "running" in
//!   the status, as the kubelet leaves it until every container has stopped (kubelet.go
//!   `SyncTerminatingPod`): the sidecar pushes what is known at once;
//! - ended by itself: the main container's end is already in the status.
//!
//! Run with `scripts/bench-webhook` (or `cargo bench --bench sidecar_end`).

use std::time::{Duration, Instant};

use serde_json::json;
use support::Server;
use support::kubelet::{MAIN, PodContainers as _, Run, sigterm};

const TARGET: Duration = Duration::from_millis(500);
/// The group of the fixtures' CronJob, batch/sample-cronjob.
const GROUP: &str = "/metrics/job/cronpush/namespace/batch/cronjob/sample-cronjob";

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// The timestamp of the sidecar's log line that says the gateway acknowledged the end.
fn acknowledged_at(log: &str) -> Option<jiff::Timestamp> {
    let line = log.lines().find(|l| l.contains("msg=\"pushed the end metrics\""))?;
    line.strip_prefix("ts=")?.split(' ').next()?.parse().ok()
}

/// Sets the Pod's state for a run of a case.
type Prepare = dyn Fn(&Run, usize);

struct Case {
    name: &'static str,
    to_ack: Vec<Duration>,
    to_exit: Vec<Duration>,
    errors: usize,
}

/// One run: the Pod's state set by `prepare`, the sidecar started and stopped.
fn measure(run: &Run, gateway: &Server, case: &mut Case, index: usize, prepare: &Prepare) {
    prepare(run, index);
    // No earlier run's end stands in for this one's.
    assert_eq!(gateway.delete(GROUP).status, 202);
    let mut sidecar = run.start_sidecar();
    let wall = jiff::Timestamp::now();
    let at = Instant::now();
    sigterm(&sidecar);
    let status = sidecar.wait().unwrap();
    let to_exit = at.elapsed();
    let log = run.log("cronpush-sidecar");
    let ack = acknowledged_at(&log);
    let pushed = gateway.pushed_series().iter().any(|s| s.starts_with("cronjob_last_result{"));
    match (status.code(), ack) {
        (Some(0), Some(ack)) if pushed => {
            case.to_ack.push(Duration::try_from(ack - wall).unwrap_or_default());
            case.to_exit.push(to_exit);
        }
        _ => {
            case.errors += 1;
            eprintln!("sidecar end bench: {} run {index} failed ({status}):\n{log}", case.name);
        }
    }
}

fn main() {
    let runs: usize = std::env::var("SIDECAR_RUNS").ok().and_then(|n| n.parse().ok()).unwrap_or(200);
    cronpush::tls::install_crypto_provider();
    let gateway = Server::cronpush(&[]);
    let run = Run::admit(&gateway.base, 30);
    let deleted = |run: &Run, index: usize| {
        run.api.modify("pods", &run.spec.namespace, &run.spec.pod, |pod| {
            pod["metadata"]["deletionTimestamp"] = json!(jiff::Timestamp::now().to_string());
            pod["metadata"]["deletionGracePeriodSeconds"] = json!(30);
            pod["status"] = json!({"phase": "Running", "containerStatuses": [{"name": MAIN, "image": "busybox",
                "imageID": "", "ready": true, "restartCount": index % 3,
                "state": {"running": {"startedAt": "2025-11-22T00:00:03Z"}}}]});
        });
    };
    let ended = |run: &Run, index: usize| {
        run.api.modify("pods", &run.spec.namespace, &run.spec.pod, |pod| {
            pod["metadata"].as_object_mut().unwrap().remove("deletionTimestamp");
            pod["status"] = json!({"phase": "Running", "containerStatuses": [{"name": MAIN, "image": "busybox",
                "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": (index % 2) as i32, "reason": "Completed",
                    "startedAt": "2025-11-22T00:00:03Z", "finishedAt": "2025-11-22T00:04:10Z"}}}]});
        });
    };
    let cases: [(&'static str, &Prepare); 2] =
        [("deleted, main container killed (2 s floor)", &deleted), ("ended by itself, status in", &ended)];
    // One run to warm the gateway and the relay up (first TLS session, first TokenReview).
    let mut warm = Case { name: "warm-up", to_ack: Vec::new(), to_exit: Vec::new(), errors: 0 };
    measure(&run, &gateway, &mut warm, 0, &ended);
    let mut results = Vec::new();
    for (name, prepare) in cases {
        eprintln!("sidecar end bench: {runs} runs, {name}");
        let mut case = Case { name, to_ack: Vec::new(), to_exit: Vec::new(), errors: 0 };
        for index in 0..runs {
            measure(&run, &gateway, &mut case, index, prepare);
        }
        case.to_ack.sort();
        case.to_exit.sort();
        results.push(case);
    }
    let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1000.0);
    println!("| sidecar SIGTERM to ... | runs | p50 | p99 | max | target | p99 / target |");
    println!("|---|---|---|---|---|---|---|");
    let mut failed = warm.errors;
    for case in &results {
        failed += case.errors;
        if case.to_ack.is_empty() {
            continue;
        }
        let p99 = quantile(&case.to_ack, 0.99);
        println!(
            "| gateway's acknowledgement: {} | {} | {} | {} | {} | < {} | {:.2} |",
            case.name,
            case.to_ack.len(),
            ms(quantile(&case.to_ack, 0.5)),
            ms(p99),
            ms(*case.to_ack.last().unwrap()),
            ms(TARGET),
            p99.as_secs_f64() / TARGET.as_secs_f64()
        );
        println!(
            "| exit: {} | {} | {} | {} | {} | < 2000 ms | {:.2} |",
            case.name,
            case.to_exit.len(),
            ms(quantile(&case.to_exit, 0.5)),
            ms(quantile(&case.to_exit, 0.99)),
            ms(*case.to_exit.last().unwrap()),
            quantile(&case.to_exit, 0.99).as_secs_f64() / 2.0
        );
    }
    println!("| runs without a pushed end | {failed} | | | | 0 | |");
    if failed > 0 {
        std::process::exit(1);
    }
}
