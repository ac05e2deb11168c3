//! The webhook's own metrics: admissions by outcome and skip reason, and their latency.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use super::decision::Outcome;
use crate::exposition::families::{counter, family, gauge, label};
use crate::exposition::text_write;
use crate::proto::client::{Bucket, Histogram, Metric, MetricType};

/// Upper bounds of the latency histogram, in seconds: admission must stay far below the
/// webhook configuration's timeout.
const BUCKETS: [f64; 10] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.0];

#[derive(Default)]
pub struct WebhookMetrics {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// (outcome, reason) → count.
    admissions: BTreeMap<(&'static str, &'static str), u64>,
    /// Relay answers by outcome.
    relayed: BTreeMap<&'static str, u64>,
    /// Pushes through the relay by outcome.
    relayed_pushes: BTreeMap<&'static str, u64>,
    bucket_counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl WebhookMetrics {
    pub fn observe(&self, outcome: Option<Outcome>, took: Duration) {
        let key = match outcome {
            Some(Outcome::Injected(source)) => ("injected", source.as_str()),
            Some(Outcome::Skipped(reason)) => ("skipped", reason.as_str()),
            None => ("malformed", ""),
        };
        let seconds = took.as_secs_f64();
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        *inner.admissions.entry(key).or_default() += 1;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                inner.bucket_counts[i] += 1;
            }
        }
        inner.count += 1;
        inner.sum += seconds;
    }

    pub fn observe_relay(&self, outcome: &'static str) {
        *self.inner.lock().unwrap_or_else(|e| e.into_inner()).relayed.entry(outcome).or_default() += 1;
    }

    pub fn observe_relay_push(&self, outcome: &'static str) {
        *self.inner.lock().unwrap_or_else(|e| e.into_inner()).relayed_pushes.entry(outcome).or_default() += 1;
    }

    /// The metrics text; `relay_waiting` is the relay's current count of waiting sidecars,
    /// `watched_pods` the injected Pods its shared watch holds.
    pub fn text(&self, relay_waiting: usize, watched_pods: usize) -> String {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let admissions = inner
            .admissions
            .iter()
            .map(|((outcome, reason), n)| counter(vec![label("outcome", outcome), label("reason", reason)], *n as f64))
            .collect();
        let histogram = Histogram {
            sample_count: Some(inner.count),
            sample_sum: Some(inner.sum),
            bucket: BUCKETS
                .iter()
                .zip(inner.bucket_counts)
                .map(|(b, c)| Bucket { upper_bound: Some(*b), cumulative_count: Some(c), ..Default::default() })
                .collect(),
            ..Default::default()
        };
        let relayed = by_outcome(&inner.relayed);
        let relayed_pushes = by_outcome(&inner.relayed_pushes);
        let families = [
            family(
                "cronpush_webhook_admission_duration_seconds",
                "Time to answer an AdmissionReview.",
                MetricType::Histogram,
                vec![Metric { histogram: Some(histogram), ..Default::default() }],
            ),
            family(
                "cronpush_webhook_admissions_total",
                "AdmissionReviews answered, by outcome (injected, skipped, malformed) and reason; \
                 the reasons malformed_pod, api_unreachable, unknown_owner and nodes_unknown are internal errors, \
                 answered open.",
                MetricType::Counter,
                admissions,
            ),
            family(
                "cronpush_webhook_relay_requests_total",
                "Exit-status requests of sidecars answered by the relay, by outcome.",
                MetricType::Counter,
                relayed,
            ),
            family(
                "cronpush_webhook_relay_pushes_total",
                "Pushes of injected pushers through the relay (--push-mode=relay), by outcome: forwarded, \
                 refused_by_gateway (the gateway refused the body), or the relay's refusal.",
                MetricType::Counter,
                relayed_pushes,
            ),
            family(
                "cronpush_webhook_relay_waiting",
                "Sidecars waiting at the relay for their Pod's containers to end.",
                MetricType::Gauge,
                vec![gauge(Vec::new(), relay_waiting as f64)],
            ),
            family(
                "cronpush_webhook_relay_watched_pods",
                "Injected Pods in the relay's shared watch.",
                MetricType::Gauge,
                vec![gauge(Vec::new(), watched_pods as f64)],
            ),
        ];
        text_write::to_text(&families)
    }
}

/// One counter per outcome.
fn by_outcome(counts: &BTreeMap<&'static str, u64>) -> Vec<Metric> {
    counts.iter().map(|(outcome, n)| counter(vec![label("outcome", outcome)], *n as f64)).collect()
}
