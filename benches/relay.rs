//! The midnight burst at the relay. `0 0 * * *` and `0 * * * *` are the most common schedules,
//! so thousands of runs end within the same minute, and each sidecar asks the relay how its
//! Pod's main containers ended, often before the kubelet has reported it. This benchmark starts
//! the real webhook (release build) against the fake API server of the tests, makes N sidecars
//! (default 10,000) ask within the first part of a minute over verified TLS, each with its own
//! projected token, lets them all wait, then lands the kubelet's status updates over the rest of
//! the minute, and measures, in one run, for each design:
//! - today's: Pods without the `cronpush.io/injected` label (as injected before it existed), so
//!   each waiting sidecar costs a TokenReview, a GET and a watch of its own Pod, within the
//!   shipped `--relay-max-waiting` (1000);
//! - the shared watch: labelled Pods, learned from one list and watch of every injected Pod,
//!   with `--relay-max-waiting` raised to N so that the cost of N waiting sidecars shows.
//!
//! Figures: answers right and refused; API requests per sidecar and watches opened during the
//! burst; the webhook's resident memory while they all wait; its CPU time over the burst; and
//! the time from each Pod's status update to its sidecar's answer (p50, p99, max).
//!
//! Run with `scripts/bench-webhook` (or `cargo bench --bench relay`); `RELAY_SIDECARS=N` sets N,
//! `RELAY_SPREAD_SECONDS=S` the time over which sidecars ask, and again over which their Pods'
//! ends land (default 25: the burst fits in a minute).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::kube_api::{FakeApi, TokenIdentity};
use support::webhook::{HOST, Webhook};
use support::{cpu_seconds, status_kib};

fn pod(index: usize, labelled: bool) -> Value {
    let labels = if labelled {
        json!({"job-name": format!("job-{index}"), "cronpush.io/injected": "true"})
    } else {
        json!({"job-name": format!("job-{index}")})
    };
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": format!("job-{index}-x7k2p"), "namespace": "batch", "uid": format!("uid-{index}"),
                        "labels": labels},
           "spec": {"containers": [{"name": "main", "image": "busybox"}]},
           "status": {"phase": "Running", "containerStatuses": [
               {"name": "main", "image": "busybox", "imageID": "", "ready": true, "restartCount": 0,
                "state": {"running": {"startedAt": "2025-11-22T00:00:03Z"}}}]}})
}

fn terminate(api: &FakeApi, index: usize) {
    api.modify("pods", "batch", &format!("job-{index}-x7k2p"), |pod| {
        pod["status"]["containerStatuses"][0]["state"] =
            json!({"terminated": {"exitCode": (index % 2) as i32, "reason": "Completed",
                                  "startedAt": "2025-11-22T00:00:03Z", "finishedAt": "2025-11-22T00:04:10Z"}});
    });
}

fn gauge(webhook: &Webhook, name: &str) -> usize {
    let metrics = webhook.client(HOST).get(webhook.url("/metrics")).send().unwrap().text().unwrap();
    let line = metrics.lines().find(|l| l.split(' ').next() == Some(name)).unwrap();
    line.rsplit(' ').next().unwrap().parse::<f64>().unwrap() as usize
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// What one design did with the burst.
struct Burst {
    right: usize,
    refused: usize,
    wrong: usize,
    waiting_at_once: usize,
    requests: usize,
    watches: usize,
    rss_before: f64,
    rss_waiting: f64,
    cpu: f64,
    latencies: Vec<Duration>,
}

fn burst(sidecars: usize, spread: Duration, labelled: bool) -> Burst {
    let api = FakeApi::start();
    // Pod 0 warms the process up: its first-use allocations (TLS, the kube client, the
    // TokenReview path) are not the burst's.
    for index in 0..=sidecars {
        api.put(pod(index, labelled));
        let identity = TokenIdentity {
            namespace: "batch".into(),
            service_account: "default".into(),
            pod_name: format!("job-{index}-x7k2p"),
            pod_uid: format!("uid-{index}"),
            audiences: vec!["cronpush".into()],
        };
        api.add_token(&format!("token-{index}"), identity);
    }
    // Today's design as shipped (--relay-max-waiting 1000); the shared watch with room for
    // every sidecar, to measure what they cost.
    let room = format!("--relay-max-waiting={}", if labelled { sidecars + 1 } else { 1000 });
    let webhook = Webhook::start_with_flags(&api.url(), "http://pi:8080/pushgateway", &[&room]);
    let pid = webhook.pid();
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&webhook.ca).unwrap())
        .resolve(HOST, webhook.address)
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let url = webhook.url("/v1/exit-status?wait=90");
    let ask = |index: usize| {
        let request = client.get(&url).bearer_auth(format!("token-{index}"));
        async move {
            let reply = request.send().await.map_err(|e| e.to_string())?;
            let status = reply.status();
            let body = reply.text().await.map_err(|e| e.to_string())?;
            Ok::<_, String>((status.as_u16(), body, Instant::now()))
        }
    };
    terminate(&api, 0);
    let (status, _, _) = runtime.block_on(ask(0)).unwrap();
    assert_eq!(status, 200, "the warm-up question was answered");
    std::thread::sleep(Duration::from_secs(1));
    let rss_before = status_kib(pid, "VmRSS:");
    let (requests_before, watches_before) = (api.requests_total(), api.watches());
    let cpu_before = cpu_seconds(pid);

    let design = if labelled { "shared watch" } else { "today's design" };
    eprintln!("relay bench, {design}: {sidecars} sidecars ask within {spread:?}");
    let started = Instant::now();
    let mut handles = Vec::with_capacity(sidecars);
    for index in 1..=sidecars {
        let due = started + spread.mul_f64(index as f64 / sidecars as f64);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        handles.push(runtime.spawn(ask(index)));
    }
    // Every sidecar has asked; those not refused are waiting (or on their way in).
    let settle = Instant::now();
    let mut waiting_at_once = 0;
    while settle.elapsed() < Duration::from_secs(5) {
        waiting_at_once = waiting_at_once.max(gauge(&webhook, "cronpush_webhook_relay_waiting"));
        if waiting_at_once == sidecars {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let rss_waiting = status_kib(pid, "VmRSS:");

    eprintln!("relay bench, {design}: the kubelet reports every Pod's end within {spread:?}");
    let ends = Instant::now();
    let updated: Arc<Vec<Instant>> = Arc::new(
        (1..=sidecars)
            .map(|index| {
                let due = ends + spread.mul_f64(index as f64 / sidecars as f64);
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
                terminate(&api, index);
                Instant::now()
            })
            .collect(),
    );
    let (mut right, mut refused, mut wrong) = (0, 0, 0);
    let mut latencies = Vec::new();
    for (offset, handle) in handles.into_iter().enumerate() {
        let index = offset + 1;
        match runtime.block_on(handle).unwrap() {
            Ok((200, body, at)) => {
                let report: Value = serde_json::from_str(&body).unwrap();
                let is_right = report["complete"] == true
                    && report["containers"][0]["terminated"]["exitCode"] == json!((index % 2) as i32)
                    && report["pod"] == format!("job-{index}-x7k2p");
                if is_right {
                    right += 1;
                    latencies.push(at.saturating_duration_since(updated[offset]));
                } else {
                    wrong += 1;
                }
            }
            Ok((503, _, _)) => refused += 1,
            Ok((status, body, _)) => {
                wrong += 1;
                eprintln!("relay bench: answer {status}: {body}");
            }
            Err(e) => {
                wrong += 1;
                eprintln!("relay bench: {e}");
            }
        }
    }
    latencies.sort();
    Burst {
        right,
        refused,
        wrong,
        waiting_at_once,
        requests: api.requests_total() - requests_before,
        watches: api.watches() - watches_before,
        rss_before,
        rss_waiting,
        cpu: cpu_seconds(pid) - cpu_before,
        latencies,
    }
}

fn main() {
    let sidecars: usize = std::env::var("RELAY_SIDECARS").ok().and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let spread = Duration::from_secs_f64(
        std::env::var("RELAY_SPREAD_SECONDS").ok().and_then(|n| n.parse().ok()).unwrap_or(25.0),
    );
    cronpush::tls::install_crypto_provider();
    let today = burst(sidecars, spread, false);
    let shared = burst(sidecars, spread, true);

    let ms = |d: Duration| format!("{:.1}", d.as_secs_f64() * 1000.0);
    let per_sidecar = |b: &Burst| b.requests as f64 / sidecars as f64;
    let mib = |kib: f64| kib / 1024.0;
    println!(
        "{sidecars} sidecars ask within {:.0} s, then their Pods' ends land within {:.0} s",
        spread.as_secs_f64(),
        spread.as_secs_f64()
    );
    println!();
    println!(
        "| measure | today's design (a watch per sidecar, at most 1000 waiting) | shared watch (room for all) | target |"
    );
    println!("|---|---|---|---|");
    println!("| right answers | {} | {} | {sidecars} |", today.right, shared.right);
    println!("| refused (503, pushed as `unknown` if never answered) | {} | {} | 0 |", today.refused, shared.refused);
    println!("| wrong or failed answers | {} | {} | 0 |", today.wrong, shared.wrong);
    println!("| sidecars waiting at once | {} | {} | {sidecars} |", today.waiting_at_once, shared.waiting_at_once);
    println!("| API requests per sidecar | {:.2} | {:.2} | at most 1 |", per_sidecar(&today), per_sidecar(&shared));
    println!("| watches opened during the burst | {} | {} | O(1) |", today.watches, shared.watches);
    println!(
        "| webhook RSS before / with every sidecar waiting, MiB | {:.1} / {:.1} | {:.1} / {:.1} | under 64 |",
        mib(today.rss_before),
        mib(today.rss_waiting),
        mib(shared.rss_before),
        mib(shared.rss_waiting)
    );
    println!("| webhook CPU over the burst | {:.2} s | {:.2} s | - |", today.cpu, shared.cpu);
    println!(
        "| status update to answer, p50 / p99 / max, ms | {} / {} / {} | {} / {} / {} | p99 under 100 |",
        ms(quantile(&today.latencies, 0.5)),
        ms(quantile(&today.latencies, 0.99)),
        ms(today.latencies.last().copied().unwrap_or_default()),
        ms(quantile(&shared.latencies, 0.5)),
        ms(quantile(&shared.latencies, 0.99)),
        ms(shared.latencies.last().copied().unwrap_or_default())
    );
    if shared.right != sidecars || shared.wrong > 0 || today.wrong > 0 {
        std::process::exit(1);
    }
}
