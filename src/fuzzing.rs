//! Checks shared by the fuzz targets (`fuzz/`) and their regression test
//! (`tests/fuzz_regressions.rs`): each takes raw fuzz input, runs one parser on it and panics
//! when a property users rely on does not hold. Input the parser refuses is not a failure;
//! only a panic inside the parser, or a broken property of what it accepted, is.

use crate::exposition::names::{is_reserved_label_name, is_valid_label_name, is_valid_metric_name};
use crate::exposition::protobuf::{decode_delimited, encode_delimited};
use crate::exposition::text_parse::parse;
use crate::exposition::text_write::to_text;
use crate::gateway::http::router::{Route, RouteTable, Routing};
use crate::gateway::store::grouping::{GroupingKey, base64_segment};
use crate::proto::client::{LabelPair, MetricFamily, MetricType};

/// A text push that parses is written back (as a scrape shows it) into text that parses to the
/// same families (names, help, types, label sets) and writes back to the very same text.
///
/// The text itself is compared, not the parsed families, because the first write is not
/// lossless and exact equality does not hold: timestamps are not written, a summary or
/// histogram gains `_sum 0` and `_count 0` when none was pushed, a histogram gains its `+Inf`
/// bucket, and NaN values never compare equal. After one write nothing changes any more.
///
/// When a summary or histogram `x` shares the push with a family named `x_sum`, `x_count` or
/// `x_bucket`, the written text is ambiguous (the parser, like the reference's, files such a
/// line under whichever family it met first), so only "no panic" is checked. The gateway's
/// consistency check refuses such pushes, as `client_golang` does.
pub fn check_text_parse(input: &[u8]) {
    let Ok(families) = parse(input) else { return };
    for family in &families {
        assert!(is_valid_metric_name(family.name()), "parsed an invalid metric name {:?}", family.name());
        assert!(!family.metric.is_empty(), "family {:?} parsed without samples", family.name());
    }
    let text = to_text(&families);
    if has_suffix_collision(&families) {
        return;
    }
    let reparsed = parse(text.as_bytes())
        .unwrap_or_else(|e| panic!("the written text does not parse again: {e}\n--- text ---\n{text}"));
    assert_eq!(shape(&reparsed), shape(&families), "the written text parses to other families:\n{text}");
    assert_eq!(to_text(&reparsed), text, "writing the re-parsed families changed the text");
}

/// A family's identity without its values: name, help, type and each metric's labels.
type Shape<'a> = (&'a str, &'a str, MetricType, Vec<&'a [LabelPair]>);

fn shape(families: &[MetricFamily]) -> Vec<Shape<'_>> {
    families
        .iter()
        .map(|f| (f.name(), f.help(), f.r#type(), f.metric.iter().map(|m| m.label.as_slice()).collect()))
        .collect()
}

/// Whether some summary or histogram `x` has a sibling family named like one of its samples.
fn has_suffix_collision(families: &[MetricFamily]) -> bool {
    families.iter().any(|composite| {
        let suffixes: &[&str] = match composite.r#type() {
            MetricType::Summary => &["_sum", "_count"],
            MetricType::Histogram | MetricType::GaugeHistogram => &["_sum", "_count", "_bucket"],
            _ => return false,
        };
        suffixes.iter().any(|suffix| {
            let sample = format!("{}{suffix}", composite.name());
            families.iter().any(|f| f.name() == sample)
        })
    })
}

/// A delimited protobuf push that decodes is re-encoded into a body that decodes to as many
/// families and re-encodes to the same bytes (bytes, not families, are compared: NaN values
/// never compare equal). The text writer must take whatever was decoded without panicking.
pub fn check_protobuf_decode(input: &[u8]) {
    let Ok(families) = decode_delimited(input) else { return };
    let body = encode_all(&families);
    let again = decode_delimited(&body).unwrap_or_else(|e| panic!("the re-encoded body does not decode: {e}"));
    assert_eq!(again.len(), families.len(), "the re-encoded body holds another number of families");
    assert_eq!(encode_all(&again), body, "decoding and re-encoding changed the body");
    let _ = to_text(&families);
}

fn encode_all(families: &[MetricFamily]) -> Vec<u8> {
    let mut body = Vec::new();
    for family in families {
        encode_delimited(family, &mut body);
    }
    body
}

/// Splits fuzz input into the arguments of [`GroupingKey::from_path`]: the first byte's low bit
/// says whether the job is base64, the rest is the job and the label path separated by the
/// first `0xFF` byte (never part of UTF-8), each read as UTF-8 with invalid bytes replaced.
pub fn grouping_key_arguments(input: &[u8]) -> (String, bool, String) {
    let Some((&flags, rest)) = input.split_first() else { return (String::new(), false, String::new()) };
    let (job, labels) = match rest.iter().position(|&b| b == 0xFF) {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, &[][..]),
    };
    (String::from_utf8_lossy(job).into_owned(), flags & 1 == 1, String::from_utf8_lossy(labels).into_owned())
}

/// An accepted grouping key has a non-empty `job`, sorted unique valid label names, and is read
/// back the same from the paths clients build for it: every value in `@base64` form, or plain
/// where a path segment can carry it; and the same again when restored from its pairs.
pub fn check_grouping_key_path(input: &[u8]) {
    let (job, job_is_base64, labels) = grouping_key_arguments(input);
    let Ok(key) = GroupingKey::from_path(&job, job_is_base64, &labels) else { return };
    let _ = key.to_string();
    assert!(key.get("job").is_some_and(|j| !j.is_empty()), "accepted a key without a job: {key}");
    for pair in key.labels().windows(2) {
        assert!(pair[0].0 < pair[1].0, "labels not sorted and unique: {key}");
    }
    for (name, _) in key.labels() {
        assert!(is_valid_label_name(name) && !is_reserved_label_name(name), "accepted the label name {name:?}");
    }

    // The all-@base64 path (the UI's delete buttons use it), through the route table.
    let all_base64 = key.push_path();
    let routes = RouteTable { prefix: "", telemetry_path: "/metrics", admin_api: false };
    let Routing::Handle(Route::Push(push)) = routes.route("DELETE", &all_base64) else {
        panic!("the all-@base64 path {all_base64:?} is not a push route");
    };
    let from_base64 = GroupingKey::from_path(&push.job, push.job_is_base64, &push.labels);
    assert_eq!(from_base64.as_ref(), Ok(&key), "the all-@base64 path {all_base64:?} reads back otherwise");

    let job = key.get("job").expect("checked above");
    let others = || key.labels().iter().filter(|(name, _)| name != "job");

    let plain: String = others()
        .map(|(name, value)| {
            if value.contains('/') {
                format!("/{name}@base64/{}", base64_segment(value))
            } else {
                format!("/{name}/{value}")
            }
        })
        .collect();
    let from_plain = GroupingKey::from_path(job, false, &plain);
    assert_eq!(from_plain.as_ref(), Ok(&key), "the plain path {plain:?} reads back otherwise");

    assert_eq!(GroupingKey::from_pairs(key.labels().to_vec()).as_ref(), Some(&key), "restoring the pairs changed it");
}
