//! Writer for the text exposition format 0.0.4, laid out as client_golang writes it.

use super::float::{write_go, write_sample};
use super::names::is_valid_metric_name;
use crate::proto::client::{LabelPair, Metric, MetricFamily, MetricType};

/// Appends one family: `# HELP` (when there is help), `# TYPE`, then its samples.
pub fn write_family(out: &mut String, family: &MetricFamily) {
    write_header(out, family.name(), family.help(), family.r#type());
    for metric in &family.metric {
        write_metric(out, family.name(), family.r#type(), metric);
    }
}

pub fn write_header(out: &mut String, name: &str, help: &str, ty: MetricType) {
    if !help.is_empty() {
        out.push_str("# HELP ");
        write_name(out, name);
        out.push(' ');
        escape_into(out, help, false);
        out.push('\n');
    }
    out.push_str("# TYPE ");
    write_name(out, name);
    out.push(' ');
    out.push_str(type_name(ty));
    out.push('\n');
}

pub fn type_name(ty: MetricType) -> &'static str {
    match ty {
        MetricType::Counter => "counter",
        MetricType::Gauge => "gauge",
        MetricType::Summary => "summary",
        MetricType::Histogram | MetricType::GaugeHistogram => "histogram",
        MetricType::Untyped => "untyped",
    }
}

/// The one value of a counter, gauge or untyped metric (0 when the metric lacks it, as the
/// text format writes it); `None` for the types with several samples.
pub fn single_value(ty: MetricType, metric: &Metric) -> Option<f64> {
    match ty {
        MetricType::Counter => Some(metric.counter.as_ref().map_or(0.0, |c| c.value())),
        MetricType::Gauge => Some(metric.gauge.as_ref().map_or(0.0, |g| g.value())),
        MetricType::Untyped => Some(metric.untyped.as_ref().map_or(0.0, |u| u.value())),
        MetricType::Summary | MetricType::Histogram | MetricType::GaugeHistogram => None,
    }
}

/// Appends the sample lines of one metric of a family named `name` of type `ty`.
pub fn write_metric(out: &mut String, name: &str, ty: MetricType, metric: &Metric) {
    match ty {
        MetricType::Counter => {
            let value = metric.counter.as_ref().map_or(0.0, |c| c.value());
            write_sample_line(out, name, "", &metric.label, None, value);
        }
        MetricType::Gauge => {
            let value = metric.gauge.as_ref().map_or(0.0, |g| g.value());
            write_sample_line(out, name, "", &metric.label, None, value);
        }
        MetricType::Untyped => {
            let value = metric.untyped.as_ref().map_or(0.0, |u| u.value());
            write_sample_line(out, name, "", &metric.label, None, value);
        }
        MetricType::Summary => {
            let summary = metric.summary.clone().unwrap_or_default();
            for q in &summary.quantile {
                write_sample_line(out, name, "", &metric.label, Some(("quantile", q.quantile())), q.value());
            }
            write_sample_line(out, name, "_sum", &metric.label, None, summary.sample_sum());
            write_count_line(out, name, &metric.label, summary.sample_count() as f64);
        }
        MetricType::Histogram | MetricType::GaugeHistogram => {
            let histogram = metric.histogram.clone().unwrap_or_default();
            let count = if histogram.sample_count_float.is_some() {
                histogram.sample_count_float()
            } else {
                histogram.sample_count() as f64
            };
            let mut saw_inf = false;
            for bucket in &histogram.bucket {
                let cumulative = if bucket.cumulative_count_float.is_some() {
                    bucket.cumulative_count_float()
                } else {
                    bucket.cumulative_count() as f64
                };
                saw_inf |= bucket.upper_bound() == f64::INFINITY;
                write_sample_line(out, name, "_bucket", &metric.label, Some(("le", bucket.upper_bound())), cumulative);
            }
            // A histogram always shows its +Inf bucket, taken from the count when not pushed.
            if !saw_inf {
                write_sample_line(out, name, "_bucket", &metric.label, Some(("le", f64::INFINITY)), count);
            }
            write_sample_line(out, name, "_sum", &metric.label, None, histogram.sample_sum());
            write_count_line(out, name, &metric.label, count);
        }
    }
}

fn write_count_line(out: &mut String, name: &str, labels: &[LabelPair], count: f64) {
    write_sample_line(out, name, "_count", labels, None, count);
}

fn write_sample_line(
    out: &mut String,
    name: &str,
    suffix: &str,
    labels: &[LabelPair],
    extra: Option<(&str, f64)>,
    value: f64,
) {
    // A suffix (`_bucket`, `_sum`, `_count`) keeps a name valid or not as it was.
    if is_valid_metric_name(name) {
        out.push_str(name);
        out.push_str(suffix);
        write_labels(out, labels, extra);
    } else {
        // A name the legacy rules refuse goes quoted inside the braces, as the first of them
        // (prometheus/common's expfmt/text_create.go, writeNameAndLabelPairs).
        out.push_str("{\"");
        escape_into(out, name, true);
        out.push_str(suffix);
        out.push('"');
        if !labels.is_empty() || extra.is_some() {
            out.push(',');
            write_label_pairs(out, labels, extra);
        }
        out.push('}');
    }
    out.push(' ');
    write_sample(out, value);
    out.push('\n');
}

/// Appends `{a="1",b="2"}` (nothing for no labels), with an extra float-valued label such as
/// `le` or `quantile` last.
pub fn write_labels(out: &mut String, labels: &[LabelPair], extra: Option<(&str, f64)>) {
    if labels.is_empty() && extra.is_none() {
        return;
    }
    out.push('{');
    write_label_pairs(out, labels, extra);
    out.push('}');
}

/// `a="1",b="2"`, with the extra label last.
fn write_label_pairs(out: &mut String, labels: &[LabelPair], extra: Option<(&str, f64)>) {
    for (i, label) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_name(out, label.name());
        out.push_str("=\"");
        escape_into(out, label.value(), true);
        out.push('"');
    }
    if let Some((extra_name, extra_value)) = extra {
        if !labels.is_empty() {
            out.push(',');
        }
        out.push_str(extra_name);
        out.push_str("=\"");
        write_go(out, extra_value);
        out.push('"');
    }
}

/// A metric or label name as it is when the legacy rules allow it, else quoted and escaped
/// (expfmt/text_create.go, writeName: the legacy metric-name rules for both, so a label name
/// with a colon stays unquoted).
fn write_name(out: &mut String, name: &str) {
    if is_valid_metric_name(name) {
        out.push_str(name);
    } else {
        out.push('"');
        escape_into(out, name, true);
        out.push('"');
    }
}

/// Escapes `\` and newlines, and `"` too inside label values.
fn escape_into(out: &mut String, s: &str, quote: bool) {
    if !s.contains(['\\', '\n', '"']) {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

/// Convenience for tests and small outputs.
pub fn to_text(families: &[MetricFamily]) -> String {
    let mut out = String::new();
    for family in families {
        write_family(&mut out, family);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::text_parse::parse;
    use super::*;

    #[test]
    fn round_trips_through_the_parser() {
        let text = "# HELP g A \\\\ gauge\\nwith lines.\n# TYPE g gauge\ng{a=\"q\\\"\\\\\\n\"} 3.5\n\
                    # TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n\
                    # TYPE s summary\ns{quantile=\"0.5\"} 1\ns_sum 3\ns_count 2\n\
                    # TYPE u untyped\nu 1e+10\n";
        let families = parse(text.as_bytes()).unwrap();
        assert_eq!(to_text(&families), text);
    }

    // As prometheus/common's expfmt writes UTF-8 names (text_create_test.go).
    #[test]
    fn quotes_the_names_the_legacy_rules_refuse() {
        let family = MetricFamily {
            name: Some("name.with.dots".into()),
            help: Some("x".into()),
            r#type: Some(MetricType::Histogram as i32),
            metric: vec![Metric {
                label: vec![
                    LabelPair { name: Some("a:b".into()), value: Some("1".into()) },
                    LabelPair { name: Some("label\"quoted".into()), value: Some("v".into()) },
                ],
                histogram: Some(crate::proto::client::Histogram { sample_count: Some(1), ..Default::default() }),
                ..Default::default()
            }],
            unit: None,
        };
        assert_eq!(
            to_text(&[family]),
            "# HELP \"name.with.dots\" x\n# TYPE \"name.with.dots\" histogram\n\
             {\"name.with.dots_bucket\",a:b=\"1\",\"label\\\"quoted\"=\"v\",le=\"+Inf\"} 1\n\
             {\"name.with.dots_sum\",a:b=\"1\",\"label\\\"quoted\"=\"v\"} 0\n\
             {\"name.with.dots_count\",a:b=\"1\",\"label\\\"quoted\"=\"v\"} 1\n"
        );
    }

    #[test]
    fn adds_the_inf_bucket_from_the_count() {
        let families = parse(b"# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_count 5\nh_sum 2\n").unwrap();
        assert!(to_text(&families).contains("h_bucket{le=\"+Inf\"} 5\n"));
    }
}
