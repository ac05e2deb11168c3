//! The gateway's own metrics, exposed beside the pushed ones under the reference's names, so
//! that dashboards and alerts written for the Pushgateway (for example on
//! `pushgateway_http_requests_total{code="400",handler="push"}`) keep working.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::exposition::families::{counter, family, gauge, labels};
use crate::gateway::durable::disk_counts::DiskCounts;
use crate::proto::client::{Metric, MetricFamily, MetricType, Quantile, Summary};

/// Names and types a push may not contradict.
pub const BUILTIN: &[(&str, MetricType)] = &[
    ("process_cpu_seconds_total", MetricType::Counter),
    ("process_max_fds", MetricType::Gauge),
    ("process_open_fds", MetricType::Gauge),
    ("process_resident_memory_bytes", MetricType::Gauge),
    ("process_start_time_seconds", MetricType::Gauge),
    ("process_virtual_memory_bytes", MetricType::Gauge),
    ("cronpush_store_checkpoint_written_bytes_total", MetricType::Counter),
    ("cronpush_store_checkpointed_log_bytes_total", MetricType::Counter),
    ("cronpush_store_checkpoints_total", MetricType::Counter),
    ("cronpush_store_log_appends_total", MetricType::Counter),
    ("cronpush_store_log_used_bytes_total", MetricType::Counter),
    ("cronpush_store_log_written_bytes_total", MetricType::Counter),
    ("pushgateway_build_info", MetricType::Gauge),
    ("pushgateway_http_push_duration_seconds", MetricType::Summary),
    ("pushgateway_http_push_size_bytes", MetricType::Summary),
    ("pushgateway_http_requests_total", MetricType::Counter),
];

const OBJECTIVES: [f64; 3] = [0.1, 0.5, 0.9];
/// Quantiles describe the last ten minutes, as client_golang's summaries do by default.
const WINDOW_AGE: Duration = Duration::from_secs(600);
const WINDOW_SIZE: usize = 1024;

pub struct OwnMetrics {
    /// One lock for all counters: a push updates three of them at once.
    counts: Mutex<Counts>,
    start_time: SystemTime,
    /// What the store file has written, when there is one.
    store: OnceLock<Arc<DiskCounts>>,
}

#[derive(Default)]
struct Counts {
    requests: BTreeMap<(u16, &'static str, &'static str), u64>,
    push_durations: BTreeMap<&'static str, Window>,
    push_sizes: BTreeMap<&'static str, Window>,
}

impl Default for OwnMetrics {
    fn default() -> Self {
        OwnMetrics { counts: Mutex::default(), start_time: SystemTime::now(), store: OnceLock::new() }
    }
}

impl OwnMetrics {
    pub fn count_request(&self, code: u16, handler: &'static str, method: &'static str) {
        *self.counts.lock().unwrap_or_else(|e| e.into_inner()).requests.entry((code, handler, method)).or_default() +=
            1;
    }

    /// Counts a push request with its duration and body size.
    pub fn count_push(&self, code: u16, method: &'static str, duration: Duration, size: usize) {
        let now = Instant::now();
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        *counts.requests.entry((code, "push", method)).or_default() += 1;
        counts.push_durations.entry(method).or_default().observe(now, duration.as_secs_f64());
        counts.push_sizes.entry(method).or_default().observe(now, size as f64);
    }

    /// Exposes what the store file writes (`cronpush_store_*`).
    pub fn count_store_writes(&self, counts: Arc<DiskCounts>) {
        let _ = self.store.set(counts);
    }

    /// Every own family, sorted by name.
    pub fn families(&self) -> Vec<MetricFamily> {
        let mut families = process_families(self.start_time);
        if let Some(store) = self.store.get() {
            families.extend(store_families(store));
        }
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        families.push(family(
            "pushgateway_build_info",
            "A metric with a constant '1' value labeled by version and revision from which cronpush was built.",
            MetricType::Gauge,
            vec![gauge(
                labels(&[
                    ("revision", option_env!("CRONPUSH_REVISION").unwrap_or("unknown")),
                    ("version", env!("CARGO_PKG_VERSION")),
                ]),
                1.0,
            )],
        ));
        families.push(summaries(
            "pushgateway_http_push_duration_seconds",
            "HTTP request duration for pushes to the Pushgateway.",
            &counts.push_durations,
        ));
        families.push(summaries(
            "pushgateway_http_push_size_bytes",
            "HTTP request size for pushes to the Pushgateway.",
            &counts.push_sizes,
        ));
        let requests = counts
            .requests
            .iter()
            .map(|((code, handler, method), n)| {
                let code = code.to_string();
                counter(labels(&[("code", &code), ("handler", handler), ("method", method)]), *n as f64)
            })
            .collect();
        families.push(family(
            "pushgateway_http_requests_total",
            "Total HTTP requests processed by the Pushgateway, excluding scrapes.",
            MetricType::Counter,
            requests,
        ));
        families.retain(|f| !f.metric.is_empty());
        families.sort_by(|a, b| a.name().cmp(b.name()));
        families
    }
}

/// The recent observations behind a summary's quantiles, with its all-time count and sum.
#[derive(Default)]
struct Window {
    recent: VecDeque<(Instant, f64)>,
    count: u64,
    sum: f64,
}

impl Window {
    fn observe(&mut self, now: Instant, v: f64) {
        if self.recent.len() == WINDOW_SIZE {
            self.recent.pop_front();
        }
        self.recent.push_back((now, v));
        self.count += 1;
        self.sum += v;
    }

    fn quantiles(&self) -> Vec<Quantile> {
        let cutoff = Instant::now().checked_sub(WINDOW_AGE);
        let mut values: Vec<f64> =
            self.recent.iter().filter(|(t, _)| cutoff.is_none_or(|c| *t >= c)).map(|(_, v)| *v).collect();
        values.sort_by(f64::total_cmp);
        OBJECTIVES
            .iter()
            .map(|&q| {
                let value =
                    if values.is_empty() { f64::NAN } else { values[((values.len() - 1) as f64 * q).round() as usize] };
                Quantile { quantile: Some(q), value: Some(value) }
            })
            .collect()
    }
}

fn summaries(name: &str, help: &str, windows: &BTreeMap<&'static str, Window>) -> MetricFamily {
    let metrics = windows
        .iter()
        .map(|(method, w)| Metric {
            label: labels(&[("method", method)]),
            summary: Some(Summary {
                sample_count: Some(w.count),
                sample_sum: Some(w.sum),
                quantile: w.quantiles(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect();
    family(name, help, MetricType::Summary, metrics)
}

/// What the store file has written: a Pi's SD card wears by the bytes written, and a
/// checkpoint's bytes spread over the appends it took in are part of what a push costs.
fn store_families(store: &DiskCounts) -> Vec<MetricFamily> {
    let count = |name: &str, help: &str, n: &AtomicU64| {
        family(name, help, MetricType::Counter, vec![counter(Vec::new(), n.load(Relaxed) as f64)])
    };
    vec![
        count(
            "cronpush_store_checkpoint_written_bytes_total",
            "Bytes the checkpoints of the push log into the store file caused to be written to disk.",
            &store.checkpoint_written_bytes,
        ),
        count(
            "cronpush_store_checkpointed_log_bytes_total",
            "Bytes of the push log's room that checkpoints emptied into the store file.",
            &store.checkpointed_log_bytes,
        ),
        count(
            "cronpush_store_checkpoints_total",
            "Checkpoints of the push log into the store file.",
            &store.checkpoints,
        ),
        count("cronpush_store_log_appends_total", "Appends to the push log, one per group commit.", &store.log_appends),
        count(
            "cronpush_store_log_used_bytes_total",
            "Bytes of the push log's room the appends took; a checkpoint empties the room when it is full.",
            &store.log_used_bytes,
        ),
        count(
            "cronpush_store_log_written_bytes_total",
            "Bytes the appends to the push log wrote to disk (whole sectors, or pages).",
            &store.log_written_bytes,
        ),
    ]
}

fn process_families(start_time: SystemTime) -> Vec<MetricFamily> {
    let start = start_time.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64();
    let mut families = vec![family(
        "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.",
        MetricType::Gauge,
        vec![gauge(Vec::new(), start)],
    )];
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |field: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map(|v| v * 1024.0)
    };
    if let Some(rss) = kib("VmRSS:") {
        families.push(family(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            MetricType::Gauge,
            vec![gauge(Vec::new(), rss)],
        ));
    }
    if let Some(vsz) = kib("VmSize:") {
        families.push(family(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            MetricType::Gauge,
            vec![gauge(Vec::new(), vsz)],
        ));
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        families.push(family(
            "process_open_fds",
            "Number of open file descriptors.",
            MetricType::Gauge,
            vec![gauge(Vec::new(), fds.count() as f64)],
        ));
    }
    let max_fds = std::fs::read_to_string("/proc/self/limits").ok().and_then(|limits| {
        limits.lines().find(|l| l.starts_with("Max open files"))?.split_whitespace().nth(3)?.parse::<f64>().ok()
    });
    if let Some(max) = max_fds {
        families.push(family(
            "process_max_fds",
            "Maximum number of open file descriptors.",
            MetricType::Gauge,
            vec![gauge(Vec::new(), max)],
        ));
    }
    // utime and stime are fields 14 and 15 of /proc/self/stat, in clock ticks (100 per second
    // on every Linux architecture we ship for). The command name may contain spaces, so count
    // from the closing parenthesis.
    let cpu = std::fs::read_to_string("/proc/self/stat").ok().and_then(|stat| {
        let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split_whitespace().collect();
        Some((fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?) / 100.0)
    });
    if let Some(cpu) = cpu {
        families.push(family(
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
            MetricType::Counter,
            vec![counter(Vec::new(), cpu)],
        ));
    }
    families
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_declared_builtin_with_its_type() {
        let own = OwnMetrics::default();
        own.count_push(200, "put", Duration::from_millis(3), 120);
        own.count_store_writes(Arc::default());
        let families = own.families();
        for f in &families {
            assert!(BUILTIN.contains(&(f.name(), f.r#type())), "{} is not declared", f.name());
        }
        assert_eq!(families.len(), BUILTIN.len());
        let summary = families.iter().find(|f| f.name() == "pushgateway_http_push_size_bytes").unwrap();
        assert_eq!(summary.metric[0].summary.as_ref().unwrap().quantile[1].value(), 120.0);
    }
}
