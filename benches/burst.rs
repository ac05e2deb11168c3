//! The midnight burst at the gateway. At `0 0 * * *` thousands of CronJobs start together, and
//! end within the minute: each run's `cronpush start` pushes its start, and its sidecar its end.
//! Here N CronJobs (default 10,000), each its own group, push their start spread over the first
//! half of a minute and their end over the second half, with the pushers' own bodies
//! (`StartMetrics`, `EndMetrics`, for `0 0 * * *` in UTC) and their own HTTP client (`Pusher`,
//! which retries what may pass), open loop, into a durable gateway:
//! - cronpush with `--persistence.file` (every push on disk, fsync'd, before its answer), and
//! - the reference Pushgateway 1.5.1 with `--persistence.file` (written every 5 minutes and at
//!   shutdown),
//!
//! one after the other in the same run, on the same cores as the client. Measured: pushes
//! acknowledged; refused (any push that was not acknowledged at its first attempt); lost (a run
//! whose start or end is missing from the gateway's scrape after the burst, and again after the
//! gateway is stopped with SIGTERM and started on the same file); push latency; the gateway's CPU
//! and peak memory.
//!
//! Run with `cargo bench --bench burst`; `BURST_CRONJOBS=N` sets N, `BURST_SECONDS=S` the minute.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cronpush::exit_status::ExitReport;
use cronpush::pushers::end_metrics::{EndMetrics, Watch};
use cronpush::pushers::gateway_client::Pusher;
use cronpush::pushers::group::Group;
use cronpush::pushers::run::Run;
use cronpush::pushers::start_metrics::StartMetrics;
use serde_json::json;
use support::{Server, cpu_seconds, status_kib};

const SCHEDULE: &str = "0 0 * * *";

/// The run of CronJob `index`, as the webhook's environment gives it to the pushers.
fn run(index: usize, gateway: &str, slot: jiff::Timestamp) -> Run {
    Run {
        gateway_url: Some(gateway.to_string()),
        group: Group {
            job: "cronpush".into(),
            cluster: None,
            namespace: format!("team-{}", index % 100),
            cronjob: format!("nightly-{index}"),
        },
        pod_name: Some(format!("nightly-{index}-29396160-x7k2p")),
        job_name: Some(format!("nightly-{index}-29396160")),
        schedule: Some(SCHEDULE.into()),
        time_zone: None,
        scheduled_time: Some(slot),
        concurrency_policy: "Forbid".into(),
        cronjob_created: Some(slot - jiff::SignedDuration::from_hours(24 * 30)),
        cronjob_last_success: Some(slot - jiff::SignedDuration::from_hours(24)),
        grace_seconds: Some(300.0),
        starting_deadline_seconds: Some(300.0),
        max_run_seconds: Some(3600.0),
        timeout: None,
    }
}

/// How run `index` ended: one in ten fails.
fn report(run: &Run, index: usize, started: jiff::Timestamp, ended: jiff::Timestamp) -> ExitReport {
    let (code, reason) = if index.is_multiple_of(10) { (1, "Error") } else { (0, "Completed") };
    serde_json::from_value(json!({
        "namespace": run.group.namespace, "pod": run.pod_name, "uid": format!("uid-{index}"), "complete": true,
        "containers": [{"name": "main", "terminated": {"exitCode": code, "reason": reason,
                        "startedAt": started.to_string(), "finishedAt": ended.to_string()}}]
    }))
    .unwrap()
}

/// The CronJobs whose `family` the gateway's scrape holds.
fn cronjobs_with(scrape: &str, family: &str) -> HashSet<String> {
    scrape
        .lines()
        .filter(|l| l.starts_with(family) && l.as_bytes().get(family.len()) == Some(&b'{'))
        .filter_map(|l| l.split("cronjob=\"").nth(1)?.split('"').next().map(str::to_string))
        .collect()
}

/// Runs whose start or end the gateway does not hold.
fn lost(gateway: &Server, cronjobs: usize) -> usize {
    let scrape = gateway.get("/metrics").body;
    let started = cronjobs_with(&scrape, "cronjob_last_start_timestamp_seconds");
    let ended = cronjobs_with(&scrape, "cronjob_last_completion_timestamp_seconds");
    (0..cronjobs)
        .filter(|i| !started.contains(&format!("nightly-{i}")) || !ended.contains(&format!("nightly-{i}")))
        .count()
}

struct Outcome {
    acknowledged: usize,
    refused: usize,
    lost_after_burst: usize,
    lost_after_restart: usize,
    latencies: Vec<Duration>,
    took: Duration,
    cpu: f64,
    peak_rss_mib: f64,
    /// From SIGTERM to the process' exit (or to the SIGKILL at STOP_WAIT).
    stopped_in: Duration,
}

/// How long a gateway may take to stop after the burst.
const STOP_WAIT: Duration = Duration::from_secs(180);

fn burst(name: &str, start: impl Fn() -> Server, cronjobs: usize, minute: Duration) -> Outcome {
    let mut gateway = start();
    let pid = gateway.pid();
    let cpu_before = cpu_seconds(pid);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let pusher = Arc::new(Pusher::new(&Default::default()).unwrap());
    let slot = jiff::Timestamp::now().round(jiff::Unit::Minute).unwrap();
    let half = minute / 2;
    eprintln!("burst, {name}: {cronjobs} starts within {half:?}, then {cronjobs} ends within {half:?}");
    let began = Instant::now();
    let mut pushes = Vec::with_capacity(2 * cronjobs);
    for phase in 0..2 {
        for index in 0..cronjobs {
            let due = began + half * phase + half.mul_f64(index as f64 / cronjobs as f64);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            let run = run(index, &gateway.base, slot);
            let now = jiff::Timestamp::now();
            let schedule = run.schedule().and_then(Result::ok);
            let body = if phase == 0 {
                StartMetrics::new(&run, schedule.as_ref(), now).to_text()
            } else {
                let started = now - jiff::SignedDuration::from_secs(25);
                let report = report(&run, index, started, now);
                EndMetrics::new(Some(&report), Watch { from: started, until: now })
                    .of_run(&run, schedule.as_ref())
                    .to_text()
            };
            let url = run.group.url(run.gateway_url.as_deref()).unwrap();
            let pusher = pusher.clone();
            pushes.push(runtime.spawn(async move {
                let sent = Instant::now();
                let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
                let pushed = pusher.post(&url, body, deadline).await;
                (pushed.map(|attempts| attempts.0), sent.elapsed())
            }));
        }
    }
    let (mut acknowledged, mut refused, mut latencies) = (0, 0, Vec::new());
    for push in pushes {
        match runtime.block_on(push).unwrap() {
            (Ok(1), took) => {
                acknowledged += 1;
                latencies.push(took);
            }
            (Ok(_), took) => {
                acknowledged += 1;
                refused += 1;
                latencies.push(took);
            }
            (Err(e), _) => {
                refused += 1;
                if refused <= 3 {
                    eprintln!("burst, {name}: {e}");
                }
            }
        }
    }
    let took = began.elapsed();
    let cpu = cpu_seconds(pid) - cpu_before;
    let peak_rss_mib = status_kib(pid, "VmHWM:") / 1024.0;
    let lost_after_burst = lost(&gateway, cronjobs);
    // A server still working through its backlog gets a few minutes to stop, then SIGKILL:
    // what it had not written by then is lost, and counted so.
    gateway.signal("TERM");
    let stopping = Instant::now();
    while gateway.is_running() && stopping.elapsed() < STOP_WAIT {
        std::thread::sleep(Duration::from_millis(100));
    }
    let stopped_in = stopping.elapsed();
    if gateway.is_running() {
        eprintln!("burst, {name}: still running {STOP_WAIT:?} after SIGTERM; SIGKILL");
        gateway.signal("KILL");
    }
    gateway.wait_exit(Duration::from_secs(10));
    let restarted = start();
    let lost_after_restart = lost(&restarted, cronjobs);
    latencies.sort();
    Outcome {
        acknowledged,
        refused,
        lost_after_burst,
        lost_after_restart,
        latencies,
        took,
        cpu,
        peak_rss_mib,
        stopped_in,
    }
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn main() {
    let cronjobs: usize = std::env::var("BURST_CRONJOBS").ok().and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let minute =
        Duration::from_secs_f64(std::env::var("BURST_SECONDS").ok().and_then(|n| n.parse().ok()).unwrap_or(60.0));
    let dir = tempfile::tempdir().unwrap();
    let ours_file = dir.path().join("cronpush.db");
    let reference_file = dir.path().join("pushgateway.data");
    let persistence = |file: &Path| format!("--persistence.file={}", file.display());
    let ours = burst("cronpush", || Server::cronpush(&[&persistence(&ours_file)]), cronjobs, minute);
    let reference = burst(
        "reference",
        || Server::start(&support::peer("prometheus-pushgateway"), &[], &[&persistence(&reference_file)], ""),
        cronjobs,
        minute,
    );

    let ms = |d: Duration| format!("{:.1}", d.as_secs_f64() * 1000.0);
    let ratio = |a: f64, b: f64| if b > 0.0 { format!("{:.2}", a / b) } else { "-".into() };
    println!(
        "{cronjobs} CronJobs start within {:.0} s and end within the next {:.0} s: {} pushes into a durable gateway",
        minute.as_secs_f64() / 2.0,
        minute.as_secs_f64() / 2.0,
        2 * cronjobs
    );
    println!();
    println!(
        "| measure | cronpush (`--persistence.file`, fsync per push) | reference 1.5.1 (`--persistence.file`) | cronpush / reference |"
    );
    println!("|---|---|---|---|");
    println!("| pushes acknowledged | {} | {} | - |", ours.acknowledged, reference.acknowledged);
    println!(
        "| refused, retried or timed out (the pushers give up after 10 s) | {} | {} | - |",
        ours.refused, reference.refused
    );
    println!("| runs lost after the burst | {} | {} | - |", ours.lost_after_burst, reference.lost_after_burst);
    println!(
        "| runs lost after SIGTERM and a restart | {} | {} | - |",
        ours.lost_after_restart, reference.lost_after_restart
    );
    println!("| burst took | {:.1} s | {:.1} s | - |", ours.took.as_secs_f64(), reference.took.as_secs_f64());
    println!(
        "| SIGTERM to exit after the burst | {:.1} s | {:.1} s | - |",
        ours.stopped_in.as_secs_f64(),
        reference.stopped_in.as_secs_f64()
    );
    for (label, q) in [("p50", 0.5), ("p99", 0.99), ("max", 1.0)] {
        let (a, b) = (quantile(&ours.latencies, q), quantile(&reference.latencies, q));
        println!("| push latency {label}, ms | {} | {} | {} |", ms(a), ms(b), ratio(a.as_secs_f64(), b.as_secs_f64()));
    }
    println!(
        "| gateway CPU over the burst | {:.2} s | {:.2} s | {} |",
        ours.cpu,
        reference.cpu,
        ratio(ours.cpu, reference.cpu)
    );
    println!(
        "| gateway peak RSS | {:.1} MiB | {:.1} MiB | {} |",
        ours.peak_rss_mib,
        reference.peak_rss_mib,
        ratio(ours.peak_rss_mib, reference.peak_rss_mib)
    );
    if ours.refused > 0 || ours.lost_after_burst > 0 || ours.lost_after_restart > 0 || ours.acknowledged != 2 * cronjobs
    {
        std::process::exit(1);
    }
}
