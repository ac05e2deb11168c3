//! The rules a push must satisfy for the store to stay scrapable: the checks client_golang
//! applies when the reference gathers, applied to one pushed family at a time.

use std::fmt;

use super::grouping::GroupingKey;
use crate::exposition::float::to_go_string;
use crate::exposition::names::{go_quote, is_reserved_label_name};
use crate::proto::client::{Metric, MetricFamily, MetricType};

/// One reason to refuse a push. The texts follow client_golang's, which the reference returns.
#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    InvalidMetricName(String),
    WrongType {
        name: String,
        metric: Metric,
        expected: MetricType,
    },
    InvalidLabelName {
        name: String,
        metric: Metric,
        label: String,
    },
    RepeatedLabelName {
        name: String,
        metric: Metric,
        label: String,
    },
    ReservedLabel {
        name: String,
        metric: Metric,
        label: &'static str,
    },
    Duplicate {
        name: String,
        metric: Metric,
    },
    SuffixOfComposite {
        name: String,
        base: String,
        base_type: MetricType,
    },
    CompositeCollides {
        name: String,
        ty: MetricType,
        other: String,
    },
    /// A new group whose timestamp series would be those of an existing group.
    TwinGroup {
        key: GroupingKey,
        twin: GroupingKey,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::InvalidMetricName(name) => write!(f, "metric name {} is invalid", go_quote(name)),
            Problem::WrongType { name, metric, expected } => {
                write!(
                    f,
                    "collected metric {} {{ {}}} is not a {}",
                    go_quote(name),
                    repr(metric),
                    expected.as_str_name()
                )
            }
            Problem::InvalidLabelName { name, metric, label } => write!(
                f,
                "collected metric {} {{ {}}} has a label with an invalid name: {label}",
                go_quote(name),
                repr(metric)
            ),
            Problem::RepeatedLabelName { name, metric, label } => write!(
                f,
                "collected metric {} {{ {}}} has two or more labels with the same name: {label}",
                go_quote(name),
                repr(metric)
            ),
            Problem::ReservedLabel { name, metric, label } => write!(
                f,
                "collected metric {} {{ {}}} has a label named {} that its type reserves",
                go_quote(name),
                repr(metric),
                go_quote(label)
            ),
            Problem::Duplicate { name, metric } => write!(
                f,
                "collected metric {} {{ {}}} was collected before with the same name and label values",
                go_quote(name),
                repr(metric)
            ),
            Problem::SuffixOfComposite { name, base, base_type } => write!(
                f,
                "collected metric named {} collides with previously collected {} named {}",
                go_quote(name),
                base_type.as_str_name().to_ascii_lowercase(),
                go_quote(base)
            ),
            Problem::CompositeCollides { name, ty, other } => write!(
                f,
                "collected {} named {} collides with previously collected metric named {}",
                ty.as_str_name().to_ascii_lowercase(),
                go_quote(name),
                go_quote(other)
            ),
            Problem::TwinGroup { key, twin } => write!(
                f,
                "collected metric \"push_time_seconds\" {key} was collected before with the same name and label values (group {twin} exists)"
            ),
        }
    }
}

/// Checks a pushed, sanitized family on its own and against the names that will remain
/// (`remaining_type`, which leaves this push aside) and the rest of the push (`pushed_type`).
/// Duplicate series are the store's to find, with its series index.
pub fn check_family(
    family: &MetricFamily,
    remaining_type: &dyn Fn(&str) -> Option<MetricType>,
    pushed_type: &dyn Fn(&str) -> Option<MetricType>,
    problems: &mut Vec<Problem>,
) {
    let name = family.name();
    // Since 1.11 the reference gathers with client_golang's UTF-8 rules, which take any name
    // (the text parser, not this check, keeps a text push to the legacy names without
    // `--push.enable-utf8-names`), even the empty one; but a family without a name then fails
    // every scrape of the reference's /metrics, all groups' series gone. Refused here.
    if name.is_empty() {
        problems.push(Problem::InvalidMetricName(name.to_string()));
        return;
    }
    let ty = family.r#type();
    if let Some(existing) = remaining_type(name).filter(|t| *t != ty)
        && let Some(metric) = family.metric.first()
    {
        problems.push(Problem::WrongType { name: name.into(), metric: metric.clone(), expected: existing });
    }
    let resulting_type = |n: &str| pushed_type(n).or_else(|| remaining_type(n));
    for suffix in ["_count", "_sum", "_bucket"] {
        let Some(base) = name.strip_suffix(suffix) else { continue };
        match resulting_type(base) {
            Some(MetricType::Summary) if suffix != "_bucket" => problems.push(Problem::SuffixOfComposite {
                name: name.into(),
                base: base.into(),
                base_type: MetricType::Summary,
            }),
            Some(t @ (MetricType::Histogram | MetricType::GaugeHistogram)) => {
                problems.push(Problem::SuffixOfComposite { name: name.into(), base: base.into(), base_type: t })
            }
            _ => {}
        }
    }
    let suffixes: &[&str] = match ty {
        MetricType::Summary => &["_count", "_sum"],
        MetricType::Histogram | MetricType::GaugeHistogram => &["_count", "_sum", "_bucket"],
        _ => &[],
    };
    for suffix in suffixes {
        let other = format!("{name}{suffix}");
        if resulting_type(&other).is_some() {
            problems.push(Problem::CompositeCollides { name: name.into(), ty, other });
        }
    }
    for metric in &family.metric {
        check_metric(name, ty, metric, problems);
    }
}

fn check_metric(name: &str, ty: MetricType, metric: &Metric, problems: &mut Vec<Problem>) {
    let has_value = match ty {
        MetricType::Counter => metric.counter.is_some(),
        MetricType::Gauge => metric.gauge.is_some(),
        MetricType::Untyped => metric.untyped.is_some(),
        MetricType::Summary => metric.summary.is_some(),
        MetricType::Histogram | MetricType::GaugeHistogram => metric.histogram.is_some(),
    };
    if !has_value {
        problems.push(Problem::WrongType { name: name.into(), metric: metric.clone(), expected: ty });
    }
    for (i, label) in metric.label.iter().enumerate() {
        let label_name = label.name();
        // client_golang's checkLabelName (prometheus/labels.go): UTF-8 rules, not reserved.
        if label_name.is_empty() || is_reserved_label_name(label_name) {
            problems.push(Problem::InvalidLabelName {
                name: name.into(),
                metric: metric.clone(),
                label: label_name.into(),
            });
        }
        // Labels are sorted by now, so a repeated name sits next to itself.
        if i > 0 && metric.label[i - 1].name() == label_name {
            problems.push(Problem::RepeatedLabelName {
                name: name.into(),
                metric: metric.clone(),
                label: label_name.into(),
            });
        }
        let reserved = match ty {
            MetricType::Summary => Some("quantile"),
            MetricType::Histogram | MetricType::GaugeHistogram => Some("le"),
            _ => None,
        };
        if let Some(reserved) = reserved.filter(|r| *r == label_name) {
            problems.push(Problem::ReservedLabel { name: name.into(), metric: metric.clone(), label: reserved });
        }
    }
}

/// A metric in the protobuf text form that client_golang's messages embed.
fn repr(metric: &Metric) -> String {
    let mut s = String::new();
    for label in &metric.label {
        s.push_str(&format!("label:<name:{} value:{} > ", go_quote(label.name()), go_quote(label.value())));
    }
    let value = |kind: &str, v: f64| format!("{kind}:<value:{} > ", to_go_string(v));
    if let Some(g) = &metric.gauge {
        s.push_str(&value("gauge", g.value()));
    }
    if let Some(c) = &metric.counter {
        s.push_str(&value("counter", c.value()));
    }
    if let Some(u) = &metric.untyped {
        s.push_str(&value("untyped", u.value()));
    }
    if metric.summary.is_some() {
        s.push_str("summary:<...> ");
    }
    if metric.histogram.is_some() {
        s.push_str("histogram:<...> ");
    }
    s
}
