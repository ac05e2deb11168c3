//! What waiting sidecars cost the relay. At the top of the hour many CronJobs end together, and
//! each sidecar whose Pod status has not arrived yet waits at the relay, which holds one watch
//! on the API server per waiting Pod. This benchmark starts the real webhook (release build)
//! against the fake API server of the tests, makes N sidecars wait at once over verified TLS,
//! each with its own projected token, then lets the kubelet's status updates land for all Pods
//! and measures:
//! - the webhook's resident memory per waiting sidecar, and its CPU time while they wait;
//! - the time from a Pod's status update to its sidecar's answer (p50, p99, max);
//! - that every answer is complete and right.
//!
//! No reference relay exists to compare with; the table gives the measured values and, for the
//! latency, the sidecar's usual budget (the Pod's 30 s grace period less margins).
//!
//! Run with `scripts/bench-webhook` (or `cargo bench --bench relay`); `RELAY_SIDECARS=N` sets N
//! (default 1000).

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::kube_api::{FakeApi, TokenIdentity};
use support::webhook::{HOST, Webhook};

fn pod(index: usize) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": format!("job-{index}-x7k2p"), "namespace": "batch", "uid": format!("uid-{index}")},
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

fn status_kib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

fn waiting(webhook: &Webhook) -> usize {
    let metrics = webhook.client(HOST).get(webhook.url("/metrics")).send().unwrap().text().unwrap();
    let line = metrics.lines().find(|l| l.starts_with("cronpush_webhook_relay_waiting ")).unwrap();
    line.rsplit(' ').next().unwrap().parse::<f64>().unwrap() as usize
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn main() {
    let sidecars: usize = std::env::var("RELAY_SIDECARS").ok().and_then(|n| n.parse().ok()).unwrap_or(1000);
    cronpush::tls::install_crypto_provider();
    let api = FakeApi::start();
    for index in 0..sidecars {
        api.put(pod(index));
        let identity = TokenIdentity {
            namespace: "batch".into(),
            service_account: "default".into(),
            pod_name: format!("job-{index}-x7k2p"),
            pod_uid: format!("uid-{index}"),
            audiences: vec!["cronpush".into()],
        };
        api.add_token(&format!("token-{index}"), identity);
    }
    let webhook = Webhook::start(&api.url());
    let pid = webhook.pid();
    // Warm the process up with one full question and answer, so that its first-use allocations
    // (TLS, the kube client, the TokenReview path) are not counted per sidecar.
    terminate(&api, 0);
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&webhook.ca).unwrap())
        .resolve(HOST, webhook.address)
        .pool_max_idle_per_host(sidecars)
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
    let (status, _, _) = runtime.block_on(ask(0)).unwrap();
    assert_eq!(status, 200, "the warm-up question was answered");
    std::thread::sleep(Duration::from_secs(1));
    let rss_before = status_kib(pid, "VmRSS:");

    eprintln!("relay bench: {} sidecars start waiting", sidecars - 1);
    let started = Instant::now();
    let handles: Vec<_> = (1..sidecars).map(|index| runtime.spawn(ask(index))).collect();
    while waiting(&webhook) < sidecars - 1 {
        assert!(started.elapsed() < Duration::from_secs(60), "only {} of {} waiting", waiting(&webhook), sidecars - 1);
        std::thread::sleep(Duration::from_millis(50));
    }
    let all_waiting = started.elapsed();
    std::thread::sleep(Duration::from_secs(2));
    let rss_waiting = status_kib(pid, "VmRSS:");
    let cpu_before = cpu_seconds(pid);
    std::thread::sleep(Duration::from_secs(5));
    let idle_cpu = cpu_seconds(pid) - cpu_before;
    let api_connections = api.requests("/api/v1/namespaces/batch/pods");

    eprintln!("relay bench: the kubelet reports every Pod's end");
    let updated: Arc<Vec<Instant>> = Arc::new(
        (1..sidecars)
            .map(|index| {
                terminate(&api, index);
                Instant::now()
            })
            .collect(),
    );
    let mut latencies = Vec::new();
    let mut errors = 0;
    for (offset, handle) in handles.into_iter().enumerate() {
        match runtime.block_on(handle).unwrap() {
            Ok((200, body, at)) => {
                let report: Value = serde_json::from_str(&body).unwrap();
                let index = offset + 1;
                let right = report["complete"] == true
                    && report["containers"][0]["terminated"]["exitCode"] == json!((index % 2) as i32)
                    && report["pod"] == format!("job-{index}-x7k2p");
                if !right {
                    errors += 1;
                }
                latencies.push(at.saturating_duration_since(updated[offset]));
            }
            Ok((status, body, _)) => {
                errors += 1;
                eprintln!("relay bench: answer {status}: {body}");
            }
            Err(e) => {
                errors += 1;
                eprintln!("relay bench: {e}");
            }
        }
    }
    latencies.sort();
    let per_sidecar = (rss_waiting - rss_before) / (sidecars - 1) as f64;
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
    println!("| measure | cronpush | yardstick |");
    println!("|---|---|---|");
    println!(
        "| sidecars waiting at once | {} (all waiting after {:.1} s) | - |",
        sidecars - 1,
        all_waiting.as_secs_f64()
    );
    println!(
        "| webhook RSS before / while they wait | {:.1} / {:.1} MiB | - |",
        rss_before / 1024.0,
        rss_waiting / 1024.0
    );
    println!("| RSS per waiting sidecar | {per_sidecar:.1} KiB | - |");
    println!("| webhook CPU while they wait, 5 s | {:.0} ms | - |", idle_cpu * 1000.0);
    println!("| watch requests to the API server | {api_connections} | one per waiting Pod |");
    println!(
        "| status update to answer, p50 / p99 / max | {} / {} / {} | 27 s sidecar budget (30 s grace) |",
        ms(quantile(&latencies, 0.5)),
        ms(quantile(&latencies, 0.99)),
        ms(*latencies.last().unwrap())
    );
    println!("| wrong or missing answers | {errors} | 0 |");
    if errors > 0 {
        std::process::exit(1);
    }
}
