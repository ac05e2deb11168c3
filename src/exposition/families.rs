//! Building the metric families that cronpush writes itself: the gateway's and the webhook's own
//! metrics, and the runs the pushers report. One way to write a family, its labels and its
//! series, so that every role's exposition is assembled alike.

use crate::proto::client::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};

/// A family of the given type holding `metric`.
pub fn family(name: &str, help: &str, ty: MetricType, metric: Vec<Metric>) -> MetricFamily {
    MetricFamily { name: Some(name.into()), help: Some(help.into()), r#type: Some(ty as i32), metric, unit: None }
}

/// A gauge family holding `metric`.
pub fn gauges(name: &str, help: &str, metric: Vec<Metric>) -> MetricFamily {
    family(name, help, MetricType::Gauge, metric)
}

/// A gauge family of one series.
pub fn gauge_family(name: &str, help: &str, labels: Vec<LabelPair>, value: f64) -> MetricFamily {
    gauges(name, help, vec![gauge(labels, value)])
}

pub fn label(name: &str, value: &str) -> LabelPair {
    LabelPair { name: Some(name.into()), value: Some(value.into()) }
}

pub fn labels(pairs: &[(&str, &str)]) -> Vec<LabelPair> {
    pairs.iter().map(|(name, value)| label(name, value)).collect()
}

/// A gauge series.
pub fn gauge(label: Vec<LabelPair>, value: f64) -> Metric {
    Metric { label, gauge: Some(Gauge { value: Some(value) }), ..Metric::default() }
}

/// A counter series.
pub fn counter(label: Vec<LabelPair>, value: f64) -> Metric {
    Metric { label, counter: Some(Counter { value: Some(value), ..Counter::default() }), ..Metric::default() }
}

/// A time as a metric value: Unix seconds, to the millisecond (exact for whole seconds, and no
/// run's start or end needs more).
#[cfg(feature = "roles")]
pub fn unix_seconds(t: jiff::Timestamp) -> f64 {
    t.as_millisecond() as f64 / 1000.0
}
