//! Properties of the text format parser and writer, over generated input: the parser never
//! panics on any bytes, and what the writer writes, the parser reads back as the same families.

use cronpush::exposition::{protobuf, text_parse, text_write};
use cronpush::proto::client::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType, Untyped};
use proptest::prelude::*;

fn label_name() -> impl Strategy<Value = String> {
    "[a-zA-Z_][a-zA-Z0-9_]{0,8}".prop_filter("reserved", |n| !n.starts_with("__"))
}

fn family() -> impl Strategy<Value = MetricFamily> {
    let value = prop_oneof![any::<f64>().prop_filter("NaN never compares equal", |v| !v.is_nan()), Just(f64::INFINITY)];
    let metric = (prop::collection::btree_map(label_name(), "\\PC{0,12}", 0..4), value);
    (
        "[a-zA-Z_:][a-zA-Z0-9_:]{0,12}",
        // The format cannot carry leading blanks in HELP: the parser skips them, as Go's does.
        prop::option::of("[a-zA-Z0-9.!(]\\PC{0,19}"),
        prop_oneof![Just(MetricType::Counter), Just(MetricType::Gauge), Just(MetricType::Untyped)],
        prop::collection::vec(metric, 1..4),
    )
        .prop_map(|(name, help, ty, metrics)| {
            // Distinct label sets only: one series per set in a family.
            let mut seen = std::collections::BTreeSet::new();
            let metric = metrics
                .into_iter()
                .filter(|(labels, _)| seen.insert(labels.clone()))
                .map(|(labels, v)| Metric {
                    label: labels.into_iter().map(|(n, v)| LabelPair { name: Some(n), value: Some(v) }).collect(),
                    gauge: (ty == MetricType::Gauge).then_some(Gauge { value: Some(v) }),
                    counter: (ty == MetricType::Counter).then_some(Counter { value: Some(v), ..Default::default() }),
                    untyped: (ty == MetricType::Untyped).then_some(Untyped { value: Some(v) }),
                    ..Default::default()
                })
                .collect();
            MetricFamily { name: Some(name), help, r#type: Some(ty as i32), metric, unit: None }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_parser_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = text_parse::parse(&bytes);
    }

    #[test]
    fn the_parser_never_panics_on_near_valid_text(text in "[a-z_{}=\",# \\t\\n\\\\0-9.eE+-]{0,200}") {
        let _ = text_parse::parse(text.as_bytes());
    }

    #[test]
    fn the_protobuf_decoder_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = protobuf::decode_delimited(&bytes);
    }

    #[test]
    fn written_text_reads_back_the_same(family in family()) {
        let text = text_write::to_text(std::slice::from_ref(&family));
        let parsed = text_parse::parse(text.as_bytes()).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        // Negative zero is written as 0, and compares equal to it.
        prop_assert_eq!(parsed, vec![family]);
    }
}
