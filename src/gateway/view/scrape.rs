//! What `GET /metrics` answers: the gateway's own families and every group's, merged by name,
//! sorted by name, with each group's `push_time_seconds` and `push_failure_time_seconds`.

use std::collections::BTreeSet;

use crate::exposition::escaping::Escaping;
use crate::exposition::{float, protobuf, text_write};
use crate::gateway::store::clock::seconds;
use crate::gateway::store::{
    Group, Nanos, PUSH_FAILURE_TIME, PUSH_FAILURE_TIME_HELP, PUSH_TIME, PUSH_TIME_HELP, Store,
};
use crate::proto::client::{Gauge, Metric, MetricFamily, MetricType};

/// The scrape in text format 0.0.4, names written in the scheme the scraper asked for. Pushed
/// series are copied from text rendered at push time, so a scrape costs little more than its
/// size; only a family with a name the legacy rules refuse is written anew for a scheme that
/// escapes it.
pub fn write_text(store: &Store, own: &[MetricFamily], escaping: Escaping, out: &mut String) {
    for name in all_names(store, own) {
        let own_family = own.iter().find(|f| f.name() == name);
        let header_at = out.len();
        if let Some(timestamps) = timestamp_field(name) {
            text_write::write_header(out, name, timestamp_help(name), MetricType::Gauge);
            for group in store.groups() {
                out.push_str(name);
                if group.key.needs_escaping() && escaping != Escaping::AllowUtf8 {
                    let family = timestamp_family(name, std::iter::once(group));
                    text_write::write_labels(out, &escaping.family(&family).metric[0].label, None);
                } else {
                    out.push_str(&group.series_labels);
                }
                out.push(' ');
                float::write_sample(out, seconds(timestamps(group)));
                out.push('\n');
            }
            continue;
        }
        let named = store.named(name);
        let (ty, help) = match (own_family, &named) {
            // A pushed family named like one of ours shows our help, as in the reference.
            (Some(f), _) => (f.r#type(), f.help()),
            (None, Some(n)) => (n.ty, n.help),
            (None, None) => continue,
        };
        let written_name = escaping.name(name);
        text_write::write_header(out, &written_name, help, ty);
        let samples_at = out.len();
        if let Some(f) = own_family {
            for metric in &f.metric {
                text_write::write_metric(out, name, ty, metric);
            }
        }
        for stored in named.iter().flat_map(|n| &n.families) {
            if stored.needs_escaping() && escaping != Escaping::AllowUtf8 {
                let family = stored.to_family(name);
                for metric in &escaping.family(&family).metric {
                    text_write::write_metric(out, &written_name, ty, metric);
                }
            } else {
                out.push_str(stored.text());
            }
        }
        // A family without samples is left out, header and all.
        if out.len() == samples_at {
            out.truncate(header_at);
        }
    }
}

/// The scrape as length-delimited protobuf, for clients that ask for it, names written in the
/// scheme the scraper asked for. Pushed metrics are copied as the records encoded at push time,
/// but for a family with a name that the scheme escapes.
pub fn write_protobuf(store: &Store, own: &[MetricFamily], escaping: Escaping, out: &mut Vec<u8>) {
    for name in all_names(store, own) {
        let own_family = own.iter().find(|f| f.name() == name);
        if timestamp_field(name).is_some() {
            let family = timestamp_family(name, store.groups());
            protobuf::encode_delimited(&escaping.family(&family), out);
            continue;
        }
        let named = store.named(name);
        let header = match (own_family, &named) {
            (Some(f), _) => MetricFamily { metric: Vec::new(), ..f.clone() },
            (None, Some(n)) => MetricFamily {
                name: Some(escaping.name(name).into_owned()),
                help: (!n.help.is_empty()).then(|| n.help.to_string()),
                r#type: Some(n.ty as i32),
                metric: Vec::new(),
                unit: (!n.unit.is_empty()).then(|| n.unit.to_string()),
            },
            (None, None) => continue,
        };
        let mut own_records = Vec::new();
        for metric in own_family.iter().flat_map(|f| &f.metric) {
            prost::encoding::message::encode(4, metric, &mut own_records);
        }
        let mut escaped_records = Vec::new();
        for stored in named.iter().flat_map(|n| &n.families).filter(|f| f.needs_escaping()) {
            if escaping != Escaping::AllowUtf8 {
                for metric in &escaping.family(&stored.to_family(name)).metric {
                    prost::encoding::message::encode(4, metric, &mut escaped_records);
                }
            }
        }
        let mut parts: Vec<&[u8]> = vec![&own_records, &escaped_records];
        parts.extend(
            named
                .iter()
                .flat_map(|n| &n.families)
                .filter(|f| !f.needs_escaping() || escaping == Escaping::AllowUtf8)
                .map(|f| f.records()),
        );
        if parts.iter().any(|p| !p.is_empty()) {
            protobuf::encode_delimited_parts(&header, &parts, out);
        }
    }
}

fn all_names<'a>(store: &'a Store, own: &'a [MetricFamily]) -> BTreeSet<&'a str> {
    let mut names: BTreeSet<&str> = store.family_names().chain(own.iter().map(|f| f.name())).collect();
    if store.group_count() > 0 {
        names.insert(PUSH_TIME);
        names.insert(PUSH_FAILURE_TIME);
    }
    names
}

fn timestamp_field(name: &str) -> Option<fn(&Group) -> Nanos> {
    match name {
        PUSH_TIME => Some(|g| g.last_push),
        PUSH_FAILURE_TIME => Some(|g| g.last_failure),
        _ => None,
    }
}

/// The groups' `push_time_seconds` or `push_failure_time_seconds`, as a family.
fn timestamp_family<'a>(name: &str, groups: impl Iterator<Item = &'a Group>) -> MetricFamily {
    let timestamps = timestamp_field(name).unwrap_or(|g| g.last_push);
    MetricFamily {
        name: Some(name.to_string()),
        help: Some(timestamp_help(name).into()),
        r#type: Some(MetricType::Gauge as i32),
        metric: groups
            .map(|g| Metric {
                label: timestamp_labels(g),
                gauge: Some(Gauge { value: Some(seconds(timestamps(g))) }),
                ..Default::default()
            })
            .collect(),
        unit: None,
    }
}

fn timestamp_help(name: &str) -> &'static str {
    if name == PUSH_TIME { PUSH_TIME_HELP } else { PUSH_FAILURE_TIME_HELP }
}

pub fn timestamp_labels(group: &Group) -> Vec<crate::proto::client::LabelPair> {
    group
        .key
        .with_default_instance()
        .labels()
        .iter()
        .map(|(n, v)| crate::proto::client::LabelPair { name: Some(n.clone()), value: Some(v.clone()) })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::text_parse::parse;
    use crate::gateway::store::{GroupingKey, PushMethod};

    #[test]
    fn merges_groups_and_own_metrics_by_name() {
        let mut store = Store::new(&[("process_open_fds", MetricType::Gauge)]);
        let a = GroupingKey::from_path("a", false, "").unwrap();
        let b = GroupingKey::from_path("b", false, "/instance/i").unwrap();
        store
            .apply_push(
                a,
                PushMethod::Replace,
                parse(b"# HELP m From a.\nm 1\nz 1\n").unwrap(),
                1_500_000_000_000_000_000,
            )
            .unwrap();
        store
            .apply_push(
                b,
                PushMethod::Replace,
                parse(b"# HELP m From b.\nm 2\n# TYPE process_open_fds gauge\nprocess_open_fds 3\n").unwrap(),
                2,
            )
            .unwrap();
        let own = vec![MetricFamily {
            name: Some("process_open_fds".into()),
            help: Some("Number of open file descriptors.".into()),
            r#type: Some(MetricType::Gauge as i32),
            metric: vec![Metric { gauge: Some(Gauge { value: Some(7.0) }), ..Default::default() }],
            unit: None,
        }];
        let mut text = String::new();
        write_text(&store, &own, Escaping::Underscores, &mut text);
        let want = "# HELP m From a.\n# TYPE m untyped\nm{instance=\"\",job=\"a\"} 1\nm{instance=\"i\",job=\"b\"} 2\n\
# HELP process_open_fds Number of open file descriptors.\n# TYPE process_open_fds gauge\nprocess_open_fds 7\n\
process_open_fds{instance=\"i\",job=\"b\"} 3\n\
# HELP push_failure_time_seconds Last Unix time when changing this group in the Pushgateway failed.\n\
# TYPE push_failure_time_seconds gauge\npush_failure_time_seconds{instance=\"\",job=\"a\"} 0\npush_failure_time_seconds{instance=\"i\",job=\"b\"} 0\n\
# HELP push_time_seconds Last Unix time when changing this group in the Pushgateway succeeded.\n\
# TYPE push_time_seconds gauge\npush_time_seconds{instance=\"\",job=\"a\"} 1.5e+09\npush_time_seconds{instance=\"i\",job=\"b\"} 2e-09\n\
# TYPE z untyped\nz{instance=\"\",job=\"a\"} 1\n";
        assert_eq!(text, want);
        let mut body = Vec::new();
        write_protobuf(&store, &own, Escaping::Underscores, &mut body);
        let families = protobuf::decode_delimited(&body).unwrap();
        let mut round_trip = String::new();
        for f in &families {
            text_write::write_family(&mut round_trip, f);
        }
        assert_eq!(round_trip, want);
    }
}
