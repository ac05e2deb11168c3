//! The admission benchmark: the real `cronpush webhook` (target/release/cronpush) answering
//! AdmissionReviews over TLS keep-alive connections, as kube-apiserver calls it for every Pod
//! the cluster creates. Admission sits on that path, so the issue sets two targets on this
//! 2-core machine: at least 5,000 reviews/s, and a p99 latency under 2 ms at that rate.
//!
//! The webhook runs as in a cluster, against a fake kube-apiserver (tests/support/kube_api.rs)
//! holding one CronJob and the Jobs it made; its watch-fed caches are synced before anything is
//! measured, so every review takes the cache-hit path. Reviews are shaped as kube-apiserver sends
//! them (a defaulted Job Pod, the service-account volume, tolerations, managedFields), with the
//! Job varying over all the Jobs and a new uid each time; the server certificate is verified
//! against the CA from `cronpush certs` for the Service's DNS name, as with a caBundle.
//!
//! Measured in one run, over C HTTP/1.1 keep-alive connections, then over one HTTP/2 connection
//! carrying C streams (kube-apiserver speaks HTTP/2 to a webhook when ALPN allows):
//!   * throughput, closed loop: each connection (stream) sends its next review as soon as the
//!     last is answered, after a warm-up: reviews/s, p50, p99, max;
//!   * latency at the target rate, open loop: a pacing thread schedules reviews at a fixed rate
//!     over the connections, and latency counts from each review's scheduled send time, so an
//!     answer that comes late also counts against the reviews that had to wait for it (no
//!     coordinated omission): p50, p99, p99.9, max, and the rate achieved;
//!   * the webhook's CPU time per review (utime + stime from /proc) and its resident memory.
//!
//! There is no reference admission webhook on this machine to compare with, so the table gives
//! each result's ratio to its target instead. Client and webhook share the two cores: the
//! client's own CPU (TLS, HTTP, checking every answer) lowers the closed-loop numbers.
//!
//! Every answer is checked (HTTP 200, the uid echoed, allowed, a JSONPatch, no warning) and one
//! in 1,024 is applied to its Pod and read back; at the end, the webhook's own counter of
//! injections with facts from the API must equal the reviews sent. A run with any error prints
//! the table marked INVALID and exits 1.
//!
//! Run by `scripts/bench-webhook`, which documents the knobs (BENCH_* environment variables).

#![forbid(unsafe_code)]

mod check;
mod client;
mod fixtures;
mod load;
mod relay_load;
mod report;
mod webhook;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use client::{Client, Connection, Protocol};
use fixtures::{Bodies, CRONJOB, JOBS_NAMESPACE, cronjob, job, job_name};
use kube_api::FakeApi;
use load::{Reviewer, Samples, closed_loop, open_loop};
use report::{cpus, table};
use support::{https, kube_api};
use webhook::{Webhook, clock_ticks_per_second, cpu_time, memory_mib};

const TARGET_RATE: f64 = 5_000.0;
const TARGET_P99_MS: f64 = 2.0;

// ---- Knobs -----------------------------------------------------------------------------------

struct Knobs {
    seconds: u64,
    warmup_seconds: u64,
    connections: usize,
    rate: u64,
    jobs: usize,
    http2: bool,
    /// The webhook on CPU 1 only (with `taskset`), for telling its latency from the client's
    /// competition for the cores; scripts/bench-webhook then keeps the client on CPU 0.
    pin: bool,
    /// Where table.md and webhook.log go.
    dir: PathBuf,
    /// BENCH_BIN, else the binary cargo built along with this benchmark: target/release/cronpush.
    binary: PathBuf,
    /// Sidecars waiting at the relay during the last open loop (0: no such loop).
    relay_sidecars: usize,
}

impl Knobs {
    fn from_env() -> Result<Knobs, String> {
        let number = |name: &str, default: u64| -> Result<u64, String> {
            match std::env::var(name) {
                Err(_) => Ok(default),
                Ok(v) => v.parse::<u64>().ok().filter(|n| *n > 0).ok_or(format!("{name} must be a positive integer")),
            }
        };
        let flag = |name: &str, default: bool| match std::env::var(name).as_deref() {
            Err(_) => Ok(default),
            Ok("1") => Ok(true),
            Ok("0") => Ok(false),
            Ok(other) => Err(format!("{name} must be 0 or 1, got {other:?}")),
        };
        let from_root = |p: String| Path::new(env!("CARGO_MANIFEST_DIR")).join(p);
        Ok(Knobs {
            seconds: number("BENCH_SECONDS", 10)?,
            warmup_seconds: number("BENCH_WARMUP_SECONDS", 2)?,
            connections: number("BENCH_CONNECTIONS", 4)? as usize,
            rate: number("BENCH_RATE", TARGET_RATE as u64)?,
            jobs: number("BENCH_JOBS", 100)? as usize,
            http2: flag("BENCH_HTTP2", true)?,
            pin: flag("BENCH_PIN", false)?,
            dir: from_root(std::env::var("BENCH_DIR").unwrap_or_else(|_| "bench-results/webhook".into())),
            binary: std::env::var("BENCH_BIN").map(from_root).unwrap_or_else(|_| env!("CARGO_BIN_EXE_cronpush").into()),
            relay_sidecars: match std::env::var("BENCH_RELAY_SIDECARS") {
                Err(_) => 10_000,
                Ok(v) => v.parse().map_err(|_| "BENCH_RELAY_SIDECARS must be a number".to_string())?,
            },
        })
    }
}

// ---- The run ---------------------------------------------------------------------------------------

/// One measured phase: what the client saw and what the webhook spent.
struct Phase {
    samples: Samples,
    elapsed: Duration,
    cpu: Duration,
}

impl Phase {
    fn reviews(&self) -> usize {
        self.samples.latencies.len()
    }

    fn rate(&self) -> f64 {
        self.reviews() as f64 / self.elapsed.as_secs_f64()
    }

    fn cpu_us_per_review(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.reviews().max(1) as f64
    }

    fn busy_percent(&self) -> f64 {
        self.cpu.as_secs_f64() / self.elapsed.as_secs_f64() * 100.0
    }
}

/// Both loops over one protocol.
struct Loops {
    /// The connections, as the table names them.
    name: String,
    closed: Phase,
    open: Phase,
    /// How late the pacer sent each review of the open loop, nanoseconds, sorted.
    pacer_lag: Vec<u64>,
}

/// The open loop while sidecars wait at the relay and their Pods' ends land.
struct RelayBurst {
    sidecars: usize,
    /// Sidecars answered with their own Pod's end.
    right: usize,
    open: Phase,
    /// The webhook's RSS with every sidecar waiting, MiB.
    rss_waiting: f64,
}

struct Results {
    http1: Loops,
    http2: Option<Loops>,
    relay: Option<RelayBurst>,
    rss_idle: f64,
    rss_end: f64,
    rss_peak: f64,
    api_gets: usize,
    invalid: Vec<String>,
}

struct Bench<'a> {
    knobs: Knobs,
    api: &'a FakeApi,
    webhook: Webhook,
    client: Client,
    reviewer: Arc<Reviewer>,
    clock_ticks: f64,
}

impl Bench<'_> {
    /// Starts the webhook against `api` (which holds the CronJob and its Jobs) and returns once
    /// its caches hold them.
    async fn set_up(knobs: Knobs, api: &FakeApi) -> Result<Bench<'_>, String> {
        std::fs::create_dir_all(&knobs.dir).map_err(|e| format!("{}: {e}", knobs.dir.display()))?;
        let log_path = knobs.dir.join("webhook.log");
        let mut webhook = Webhook::start(&knobs.binary, knobs.pin, api, &log_path)?;
        let client = Client::new(webhook.address, &webhook.ca_pem);
        webhook.wait_ready(&client, &log_path).await?;
        // kube's watcher lists, hands the list to the cache, and only then opens the watch: a
        // second request to each collection means both caches hold what the list returned.
        let watched = support::eventually_async(Duration::from_secs(20), async || {
            api.requests("/apis/batch/v1/jobs") >= 2 && api.requests("/apis/batch/v1/cronjobs") >= 2
        })
        .await;
        if !watched {
            return Err("the webhook never watched Jobs and CronJobs".into());
        }
        let reviewer = Arc::new(Reviewer {
            bodies: Bodies::new(knobs.jobs),
            answered: AtomicU64::default(),
            answer_bytes: AtomicU64::default(),
        });
        Ok(Bench { knobs, api, webhook, client, reviewer, clock_ticks: clock_ticks_per_second() })
    }

    /// Runs a phase and adds what the webhook's CPU did meanwhile.
    async fn measure<T>(&self, phase: impl Future<Output = (T, Samples, Duration)>) -> (T, Phase) {
        let before = cpu_time(self.webhook.pid(), self.clock_ticks);
        let (kept, samples, elapsed) = phase.await;
        let cpu = cpu_time(self.webhook.pid(), self.clock_ticks).saturating_sub(before);
        (kept, Phase { samples, elapsed, cpu })
    }

    async fn connect(&self, n: usize) -> Result<Vec<Connection>, String> {
        let mut connections = Vec::new();
        for _ in 0..n {
            connections.push(self.client.connect(Protocol::Http1).await?);
        }
        Ok(connections)
    }

    async fn run(&self) -> Result<Results, String> {
        let rss_idle = memory_mib(self.webhook.pid(), "VmRSS:");
        let api_gets_before = self.api_gets();
        let mut invalid = Vec::new();
        let http1 = self.loops(Protocol::Http1, &mut invalid).await?;
        let http2 = if self.knobs.http2 { Some(self.loops(Protocol::Http2, &mut invalid).await?) } else { None };
        let relay = match self.knobs.relay_sidecars {
            0 => None,
            n => Some(self.under_relay_burst(n, &mut invalid).await?),
        };
        invalid.extend(self.check_webhook_counted().await);
        let pid = self.webhook.pid();
        Ok(Results {
            http1,
            http2,
            relay,
            rss_idle,
            rss_end: memory_mib(pid, "VmRSS:"),
            rss_peak: memory_mib(pid, "VmHWM:"),
            api_gets: self.api_gets() - api_gets_before,
            invalid,
        })
    }

    /// A warm-up, the closed loop and the open loop over the same connections: C of them for
    /// HTTP/1.1, one with C streams for HTTP/2.
    async fn loops(&self, protocol: Protocol, invalid: &mut Vec<String>) -> Result<Loops, String> {
        let (k, reviewer) = (&self.knobs, &self.reviewer);
        let (seconds, warmup) = (Duration::from_secs(k.seconds), Duration::from_secs(k.warmup_seconds));
        let (name, connections) = match protocol {
            Protocol::Http1 => (format!("{} HTTP/1.1 connections", k.connections), self.connect(k.connections).await?),
            Protocol::Http2 => (
                format!("1 HTTP/2 connection x {} streams", k.connections),
                self.client.connect(Protocol::Http2).await?.streams(k.connections),
            ),
        };
        log(&format!(
            "{name}: warm-up {} s, closed loop {} s, open loop at {}/s {} s",
            k.warmup_seconds, k.seconds, k.rate, k.seconds
        ));
        let (connections, warmed, _) = closed_loop(reviewer, connections, warmup).await;
        let (connections, closed) = self.measure(closed_loop(reviewer, connections, seconds)).await;
        let (pacer_lag, open) = self.measure(open_loop(reviewer, connections, k.rate, seconds)).await;
        for (phase, samples) in [("warm-up", &warmed), ("closed loop", &closed.samples), ("open loop", &open.samples)] {
            invalid.extend(errors_of(&format!("{name}, {phase}"), samples));
        }
        Ok(Loops { name, closed, open, pacer_lag })
    }

    /// `n` sidecars ask the relay (over 10 s) and wait; then the open loop over HTTP/1.1 runs while
    /// their Pods' ends land over it.
    async fn under_relay_burst(&self, n: usize, invalid: &mut Vec<String>) -> Result<RelayBurst, String> {
        let k = &self.knobs;
        let seconds = Duration::from_secs(k.seconds);
        log(&format!("the relay: {n} injected Pods, their sidecars ask and wait"));
        relay_load::add_pods(self.api, n);
        self.wait_for_gauge("cronpush_webhook_relay_watched_pods", n).await?;
        let asks = relay_load::ask_all(self.webhook.address, &self.webhook.ca_pem, n, Duration::from_secs(10)).await?;
        self.wait_for_gauge("cronpush_webhook_relay_waiting", n).await?;
        let rss_waiting = memory_mib(self.webhook.pid(), "VmRSS:");
        log(&format!("open loop at {}/s for {} s while the {n} Pods' ends land", k.rate, k.seconds));
        let connections = self.connect(k.connections).await?;
        let ((_, open), ()) = tokio::join!(
            self.measure(open_loop(&self.reviewer, connections, k.rate, seconds)),
            relay_load::land_ends(self.api, n, seconds),
        );
        invalid.extend(errors_of("open loop under the relay's burst", &open.samples));
        let (right, wrong) = relay_load::right_answers(asks).await;
        if right != n {
            invalid.push(format!("the relay answered {right} of {n} sidecars right, e.g. {wrong:?}"));
        }
        Ok(RelayBurst { sidecars: n, right, open, rss_waiting })
    }

    /// Polls the webhook's /metrics until the unlabelled gauge `name` reaches `value` (60 s).
    async fn wait_for_gauge(&self, name: &str, value: usize) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = None;
        while Instant::now() < deadline {
            let mut connection = self.client.connect(Protocol::Http1).await?;
            let (_, body) = connection.get("/metrics").await?;
            let text = String::from_utf8_lossy(&body).into_owned();
            last = text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse::<f64>().ok());
            if last.is_some_and(|v| v as usize >= value) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(format!("{name} reached {last:?}, not {value}, within 60 s"))
    }

    /// Direct GETs of single Jobs and of the CronJob: what cache misses cost.
    fn api_gets(&self) -> usize {
        let job = |i| self.api.requests(&format!("/apis/batch/v1/namespaces/{JOBS_NAMESPACE}/jobs/{}", job_name(i)));
        let jobs: usize = (0..self.knobs.jobs).map(job).sum();
        jobs + self.api.requests(&format!("/apis/batch/v1/namespaces/{JOBS_NAMESPACE}/cronjobs/{CRONJOB}"))
    }

    /// The webhook's own count of injections with facts from the API must equal the reviews it
    /// answered: none fell back to the Job's name, none was skipped.
    async fn check_webhook_counted(&self) -> Vec<String> {
        let answered = self.reviewer.answered.load(Ordering::Relaxed);
        let series = "cronpush_webhook_admissions_total{outcome=\"injected\",reason=\"api\"} ";
        let metrics = match self.client.connect(Protocol::Http1).await {
            Ok(mut connection) => connection.get("/metrics").await.map(|(_, body)| body),
            Err(e) => Err(e),
        };
        let counted = metrics.ok().and_then(|body| {
            let text = String::from_utf8_lossy(&body).into_owned();
            text.lines().find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse::<f64>().ok()))
        });
        match counted {
            Some(n) if n as u64 == answered => Vec::new(),
            other => vec![format!("the webhook counted {other:?} injections from the API; {answered} were answered")],
        }
    }
}

fn errors_of(phase: &str, samples: &Samples) -> Vec<String> {
    if samples.errors == 0 {
        return Vec::new();
    }
    vec![format!("{phase}: {} failed reviews, e.g. {:?}", samples.errors, samples.first_errors)]
}

fn log(message: &str) {
    eprintln!("bench-webhook: {message}");
}

// ---- main ------------------------------------------------------------------------------------------

fn main() {
    cronpush::tls::install_crypto_provider();
    let knobs = Knobs::from_env().unwrap_or_else(|e| {
        log(&format!("error: {e}"));
        std::process::exit(2)
    });
    let load_at_start = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split(' ').take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    // The fake API server runs its own runtime: started, and later dropped, outside the client's.
    let api = FakeApi::start();
    api.put(cronjob());
    for i in 0..knobs.jobs {
        api.put(job(i));
    }
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(cpus()).enable_all().build().expect("a runtime");
    let outcome = runtime.block_on(async {
        let bench = Bench::set_up(knobs, &api).await?;
        let results = bench.run().await?;
        let table = table(&bench, &results, &load_at_start);
        Ok::<_, String>((table, results.invalid.is_empty(), bench.knobs.dir.clone()))
    });
    let (table, valid, dir) = outcome.unwrap_or_else(|e| {
        log(&format!("error: {e}"));
        std::process::exit(1)
    });
    let path = dir.join("table.md");
    if let Err(e) = std::fs::write(&path, &table) {
        log(&format!("cannot write {}: {e}", path.display()));
    }
    println!();
    print!("{table}");
    let _ = std::io::stdout().flush();
    log(&format!("table and webhook log in {}", dir.display()));
    runtime.shutdown_background();
    drop(api);
    std::process::exit(if valid { 0 } else { 1 });
}
