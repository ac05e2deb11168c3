//! Name escaping: how a scrape writes metric and label names that the legacy rules do not
//! allow (a name with a dot, say), for a scraper that asked for one of the schemes with the
//! `escaping` parameter of its `Accept` header. Since Pushgateway 1.11 such names can be pushed
//! (`--push.enable-utf8-names`, and any UTF-8 label name in a protobuf push); the reference
//! writes them through prometheus/common's `model.EscapeMetricFamily` and `EscapeName`
//! (model/metric.go), which this follows rule for rule.

use std::borrow::Cow;

use super::names::is_valid_metric_name;
use crate::proto::client::{LabelPair, Metric, MetricFamily};

/// The schemes a scraper can ask for, by their names in `escaping=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Escaping {
    /// `allow-utf-8`: names as they are, quoted in the text format where they need it.
    AllowUtf8,
    /// `underscores`, the default: every character the legacy rules refuse becomes `_`.
    Underscores,
    /// `dots`: `.` becomes `_dot_`, `_` becomes `__`, any other refused character `__`.
    Dots,
    /// `values`: `U__` and each refused character as `_<hex code point>_`, `_` as `__`;
    /// the one scheme that can be undone (the push path's label names use it).
    Values,
}

impl Escaping {
    /// The scheme a scrape uses when its `Accept` names none (prometheus/common's
    /// `model.NameEscapingScheme`).
    pub const DEFAULT: Escaping = Escaping::Underscores;

    /// The scheme named by an `escaping=` value; `None` for a name the reference ignores.
    pub fn parse(value: &str) -> Option<Escaping> {
        match value {
            "allow-utf-8" => Some(Escaping::AllowUtf8),
            "underscores" => Some(Escaping::Underscores),
            "dots" => Some(Escaping::Dots),
            "values" => Some(Escaping::Values),
            _ => None,
        }
    }

    /// The name the scheme goes by in `escaping=`, as a scrape's `Content-Type` says it.
    pub fn as_str(self) -> &'static str {
        match self {
            Escaping::AllowUtf8 => "allow-utf-8",
            Escaping::Underscores => "underscores",
            Escaping::Dots => "dots",
            Escaping::Values => "values",
        }
    }

    /// A name as this scheme writes it. A name the legacy rules allow stays as it is in every
    /// scheme: the reference escapes only the names that need it (`EscapeMetricFamily`), even
    /// where `EscapeName` alone would double a `dots` name's underscores.
    pub fn name(self, name: &str) -> Cow<'_, str> {
        if self == Escaping::AllowUtf8 || name.is_empty() || is_valid_metric_name(name) {
            return Cow::Borrowed(name);
        }
        let mut out = String::with_capacity(name.len() + 8);
        if self == Escaping::Values {
            out.push_str("U__");
        }
        // Go ranges over a string by byte offset: a digit is allowed anywhere but at offset 0.
        for (offset, c) in name.char_indices() {
            let legacy = is_legacy_char(c, offset);
            match self {
                Escaping::Underscores => out.push(if legacy { c } else { '_' }),
                Escaping::Dots => match c {
                    '_' => out.push_str("__"),
                    '.' => out.push_str("_dot_"),
                    c if legacy => out.push(c),
                    _ => out.push_str("__"),
                },
                Escaping::Values => match c {
                    '_' => out.push_str("__"),
                    c if legacy => out.push(c),
                    // Rust's strings hold no invalid code point (Go writes _FFFD_ for one).
                    c => out.push_str(&format!("_{:x}_", c as u32)),
                },
                Escaping::AllowUtf8 => unreachable!("returned above"),
            }
        }
        Cow::Owned(out)
    }

    /// The family with its names as this scheme writes them; borrowed when none needs it.
    pub fn family(self, family: &MetricFamily) -> Cow<'_, MetricFamily> {
        if self == Escaping::AllowUtf8 || !needs_escaping(family) {
            return Cow::Borrowed(family);
        }
        let labels = |metric: &Metric| -> Vec<LabelPair> {
            metric
                .label
                .iter()
                .map(|l| LabelPair { name: Some(self.name(l.name()).into_owned()), value: l.value.clone() })
                .collect()
        };
        Cow::Owned(MetricFamily {
            name: Some(self.name(family.name()).into_owned()),
            metric: family.metric.iter().map(|m| Metric { label: labels(m), ..m.clone() }).collect(),
            ..family.clone()
        })
    }
}

/// Whether a family has a name that some scheme writes otherwise than it is.
pub fn needs_escaping(family: &MetricFamily) -> bool {
    !is_valid_metric_name(family.name())
        || family.metric.iter().flat_map(|m| &m.label).any(|l| !is_valid_metric_name(l.name()))
}

/// `model.UnescapeName` for the `values` scheme: the name a `U__` name stands for, or the name
/// unchanged when it is not one or does not decode (as the reference does with it).
pub fn unescape_values(name: &str) -> Cow<'_, str> {
    let Some(escaped) = name.strip_prefix("U__") else {
        return Cow::Borrowed(name);
    };
    decode_values(escaped).map_or(Cow::Borrowed(name), Cow::Owned)
}

fn decode_values(escaped: &str) -> Option<String> {
    let bytes = escaped.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'_' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        i += 1;
        match bytes.get(i) {
            None => return None,
            Some(b'_') => {
                out.push(b'_');
                i += 1;
            }
            Some(_) => {
                // Up to six hex digits (U+10FFFF has six), then the closing underscore.
                let end = bytes[i..].iter().position(|&b| b == b'_').map(|n| i + n)?;
                let digits = &escaped[i..end];
                if digits.is_empty() || digits.len() > 6 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                let c = char::from_u32(u32::from_str_radix(digits, 16).ok()?)?;
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                i = end + 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// prometheus/common's `isValidLegacyRune`: the characters of a legacy metric name.
fn is_legacy_char(c: char, offset: usize) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':' || (c.is_ascii_digit() && offset > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The cases of prometheus/common's TestEscapeName (model/metric_test.go), in the schemes a
    // scrape can ask for; its legacy-valid name stays as it is here, as in a scrape.
    #[test]
    fn escapes_as_prometheus_common_does() {
        let cases = [
            // (name, underscores, dots, values)
            ("", "", "", ""),
            ("no:escaping_required", "no:escaping_required", "no:escaping_required", "no:escaping_required"),
            (
                "mysystem.prod.west.cpu.load",
                "mysystem_prod_west_cpu_load",
                "mysystem_dot_prod_dot_west_dot_cpu_dot_load",
                "U__mysystem_2e_prod_2e_west_2e_cpu_2e_load",
            ),
            (
                "mysystem.prod.west.cpu.load_total",
                "mysystem_prod_west_cpu_load_total",
                "mysystem_dot_prod_dot_west_dot_cpu_dot_load__total",
                "U__mysystem_2e_prod_2e_west_2e_cpu_2e_load__total",
            ),
            ("http.status:sum", "http_status:sum", "http_dot_status:sum", "U__http_2e_status:sum"),
            ("label with 😱", "label_with__", "label__with____", "U__label_20_with_20__1f631_"),
            ("花火", "__", "____", "U___82b1__706b_"),
            ("label with \u{100}", "label_with__", "label__with____", "U__label_20_with_20__100_"),
        ];
        for (name, underscores, dots, values) in cases {
            assert_eq!(Escaping::Underscores.name(name), underscores, "{name}");
            assert_eq!(Escaping::Dots.name(name), dots, "{name}");
            assert_eq!(Escaping::Values.name(name), values, "{name}");
            assert_eq!(Escaping::AllowUtf8.name(name), name);
            assert_eq!(unescape_values(values), name, "{values}");
        }
    }

    // prometheus/common's TestValueUnescapeErrors (model/metric_test.go).
    #[test]
    fn undecodable_values_names_stay_as_they_are() {
        let cases = [
            ("U__no:unescapingrequired", "no:unescapingrequired"),
            ("U__capitals_2E_ok", "capitals.ok"),
            ("U__underscores__doubled__", "underscores_doubled_"),
            ("U__underscores_doubled_", "U__underscores_doubled_"),
            ("U__underscores__doubled_", "U__underscores__doubled_"),
            ("U__my__hack_2e_attempt_872348732fabdabbab_", "U__my__hack_2e_attempt_872348732fabdabbab_"),
            ("U__my__hack_2e", "U__my__hack_2e"),
            ("U__bad__utf_2eg_", "U__bad__utf_2eg_"),
            ("U__bad__utf_D900_", "U__bad__utf_D900_"),
        ];
        for (name, want) in cases {
            assert_eq!(unescape_values(name), want, "{name}");
        }
    }

    #[test]
    fn schemes_by_name() {
        for scheme in [Escaping::AllowUtf8, Escaping::Underscores, Escaping::Dots, Escaping::Values] {
            assert_eq!(Escaping::parse(scheme.as_str()), Some(scheme));
        }
        assert_eq!(Escaping::parse("legacy"), None);
    }
}
