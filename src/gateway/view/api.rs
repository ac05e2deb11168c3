//! The JSON API under `/api/v1/`, in the reference's shapes so that scripts and UIs written
//! against the Pushgateway read cronpush the same way.

use std::time::SystemTime;

use serde_json::{Map, Value, json};

use super::native_histogram;
use super::selection::Selection;
use crate::exposition::float::to_go_string;
use crate::exposition::text_write::single_value;
use crate::gateway::config::Config;
use crate::gateway::store::clock::{nanos_since_epoch, rfc3339, seconds};
use crate::gateway::store::{
    Group, Nanos, PUSH_FAILURE_TIME, PUSH_FAILURE_TIME_HELP, PUSH_TIME, PUSH_TIME_HELP, Store,
};
use crate::proto::client::{LabelPair, Metric, MetricFamily, MetricType};

/// The headers every API answer carries, as the reference's.
pub const CORS_HEADERS: [(&str, &str); 5] = [
    ("Access-Control-Allow-Headers", "Accept, Authorization, Content-Type, Origin"),
    ("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS"),
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Expose-Headers", "Date"),
    ("Cache-Control", "no-cache, no-store, must-revalidate"),
];

/// `GET /api/v1/metrics`: one object per group, holding its families by name beside `labels`
/// and `last_push_successful`. The reference lets a family named `labels` clobber the group's
/// labels; here the group's own keys win. The groups page's filters narrow it (the reference
/// takes none, and answers every group without them, as this does).
pub fn metrics(store: &Store, selection: &Selection) -> String {
    // One group's JSON at a time: the whole answer as one value tree would cost many times the
    // store's own memory.
    let mut out = String::from(r#"{"status":"success","data":["#);
    for (i, g) in store.groups().filter(|g| selection.admits_group(g)).enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&group(g).to_string());
    }
    out.push_str("]}");
    out
}

fn group(group: &Group) -> Value {
    let mut object = Map::new();
    for (name, stored) in &group.families {
        object.insert(name.clone(), family(&stored.to_family(name), stored.written));
    }
    for (name, help, value) in
        [(PUSH_TIME, PUSH_TIME_HELP, group.last_push), (PUSH_FAILURE_TIME, PUSH_FAILURE_TIME_HELP, group.last_failure)]
    {
        let labels = super::scrape::timestamp_labels(group);
        let metric = json!({"labels": label_map(&labels), "value": to_go_string(seconds(value))});
        let written = if value == 0 { group.created } else { value };
        object.insert(
            name.into(),
            json!({"time_stamp": rfc3339(written), "type": "GAUGE", "help": help, "metrics": [metric]}),
        );
    }
    let key: Map<String, Value> = group.key.labels().iter().map(|(n, v)| (n.clone(), json!(v))).collect();
    object.insert("labels".into(), Value::Object(key));
    object.insert("last_push_successful".into(), json!(group.last_push_successful()));
    Value::Object(object)
}

fn family(family: &MetricFamily, written: Nanos) -> Value {
    let mut object = Map::new();
    object.insert("time_stamp".into(), json!(rfc3339(written)));
    object.insert("type".into(), json!(family.r#type().as_str_name()));
    if !family.help().is_empty() {
        object.insert("help".into(), json!(family.help()));
    }
    let metrics: Vec<Value> = family.metric.iter().map(|m| metric(family.r#type(), m)).collect();
    object.insert("metrics".into(), Value::Array(metrics));
    Value::Object(object)
}

fn metric(ty: MetricType, metric: &Metric) -> Value {
    let mut object = Map::new();
    object.insert("labels".into(), label_map(&metric.label));
    let value = match ty {
        MetricType::Counter | MetricType::Gauge | MetricType::Untyped => single_value(ty, metric),
        MetricType::Summary => {
            let summary = metric.summary.clone().unwrap_or_default();
            let quantiles: Map<String, Value> =
                summary.quantile.iter().map(|q| (to_go_string(q.quantile()), json!(to_go_string(q.value())))).collect();
            object.insert("quantiles".into(), Value::Object(quantiles));
            object.insert("count".into(), json!(summary.sample_count().to_string()));
            object.insert("sum".into(), json!(to_go_string(summary.sample_sum())));
            None
        }
        MetricType::Histogram => {
            let histogram = metric.histogram.clone().unwrap_or_default();
            object.insert("sum".into(), json!(to_go_string(histogram.sample_sum())));
            if native_histogram::is_native(&histogram) {
                let (count, buckets) = native_histogram::count_and_buckets(&histogram);
                object.insert("count".into(), json!(count));
                object.insert("buckets".into(), buckets);
                return Value::Object(object);
            }
            // A classic histogram with float counts (Pushgateway 1.10): a positive float count
            // is shown in place of the integer one.
            let float_or =
                |float: f64, integer: u64| if float > 0.0 { to_go_string(float) } else { integer.to_string() };
            let buckets: Map<String, Value> = histogram
                .bucket
                .iter()
                .map(|b| {
                    (to_go_string(b.upper_bound()), json!(float_or(b.cumulative_count_float(), b.cumulative_count())))
                })
                .collect();
            object.insert("buckets".into(), Value::Object(buckets));
            object.insert("count".into(), json!(float_or(histogram.sample_count_float(), histogram.sample_count())));
            None
        }
        // The reference has no shape for these and answers a zero value.
        MetricType::GaugeHistogram => Some(0.0),
    };
    if let Some(v) = value {
        object.insert("value".into(), json!(to_go_string(v)));
    }
    Value::Object(object)
}

fn label_map(labels: &[LabelPair]) -> Value {
    Value::Object(labels.iter().map(|l| (l.name().to_string(), json!(l.value()))).collect())
}

/// `GET /api/v1/status`: build information, every flag as a string, and the start time.
pub fn status(config: &Config, started: SystemTime) -> String {
    json!({
        "status": "success",
        "data": {
            "build_information": {
                "branch": "",
                "buildDate": "",
                "buildUser": "",
                "goVersion": "",
                "revision": option_env!("CRONPUSH_REVISION").unwrap_or("unknown"),
                "version": env!("CARGO_PKG_VERSION"),
            },
            "flags": config.flags,
            "start_time": rfc3339(nanos_since_epoch(started)),
        }
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::text_parse::parse;
    use crate::gateway::store::{GroupingKey, PushMethod};

    #[test]
    fn shapes_groups_like_the_reference() {
        let mut store = Store::new(&[]);
        let key = GroupingKey::from_path("api", false, "/instance/i1").unwrap();
        let body = "# HELP g A gauge.\n# TYPE g gauge\ng{x=\"1\"} 3.5\n# TYPE s summary\ns{quantile=\"0.5\"} 1\ns_sum 3\ns_count 2\n\
                    # TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\nlabels 1\n";
        store.apply_push(key, PushMethod::Replace, parse(body.as_bytes()).unwrap(), 1_795_597_383_832_780_100).unwrap();
        let v: Value = serde_json::from_str(&metrics(&store, &Selection::default())).unwrap();
        let group = &v["data"][0];
        assert_eq!(group["labels"], json!({"instance": "i1", "job": "api"}));
        assert_eq!(group["last_push_successful"], json!(true));
        assert_eq!(group["g"]["type"], "GAUGE");
        assert_eq!(group["g"]["help"], "A gauge.");
        assert_eq!(group["g"]["time_stamp"], "2026-11-25T09:03:03.8327801Z");
        assert_eq!(
            group["g"]["metrics"][0],
            json!({"labels": {"instance": "i1", "job": "api", "x": "1"}, "value": "3.5"})
        );
        assert_eq!(group["s"]["metrics"][0]["quantiles"], json!({"0.5": "1"}));
        assert_eq!(group["h"]["metrics"][0]["buckets"], json!({"1": "1", "+Inf": "2"}));
        assert_eq!(group["push_time_seconds"]["metrics"][0]["value"], "1.7955973838327801e+09");
        assert_eq!(group["push_failure_time_seconds"]["metrics"][0]["value"], "0");
    }
}
