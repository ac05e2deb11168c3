//! Metric and label names, with the legacy (pre-UTF-8) rules that Pushgateway 1.5.1 and
//! Prometheus 2.42 enforce, and the UTF-8 rules of Pushgateway 1.11's `--push.enable-utf8-names`.

/// Which names a push may use: prometheus/common's `model.ValidationScheme`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NameRules {
    /// `[a-zA-Z_:][a-zA-Z0-9_:]*` for metrics, no colon for labels; the default.
    #[default]
    Legacy,
    /// Any name that is not empty (`--push.enable-utf8-names`); a Rust string is UTF-8 already.
    Utf8,
}

impl NameRules {
    pub fn is_valid_metric_name(self, name: &str) -> bool {
        match self {
            NameRules::Legacy => is_valid_metric_name(name),
            NameRules::Utf8 => !name.is_empty(),
        }
    }

    pub fn is_valid_label_name(self, name: &str) -> bool {
        match self {
            NameRules::Legacy => is_valid_label_name(name),
            NameRules::Utf8 => !name.is_empty(),
        }
    }
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`
pub fn is_valid_metric_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if is_metric_name_start(b)) && bytes.all(is_metric_name_continuation)
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`
pub fn is_valid_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if is_label_name_start(b)) && bytes.all(is_label_name_continuation)
}

/// Names starting with `__` are reserved for Prometheus' internal use.
pub fn is_reserved_label_name(name: &str) -> bool {
    name.starts_with("__")
}

pub fn is_metric_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b':'
}

pub fn is_metric_name_continuation(b: u8) -> bool {
    is_metric_name_start(b) || b.is_ascii_digit()
}

pub fn is_label_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

pub fn is_label_name_continuation(b: u8) -> bool {
    is_label_name_start(b) || b.is_ascii_digit()
}

/// Go's `%q` for strings, so that error messages read like the reference's.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        push_escaped(&mut out, c, '"');
    }
    out.push('"');
    out
}

/// Go's `%q` for bytes that are not necessarily UTF-8: invalid bytes become `\xNN`.
pub fn go_quote_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_escaped(&mut out, c, '"');
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out.push('"');
    out
}

/// Go's `%q` for a byte, which prints it as a quoted character literal such as `'='`.
pub fn go_quote_byte(b: u8) -> String {
    let mut out = String::from("'");
    push_escaped(&mut out, char::from(b), '\'');
    out.push('\'');
    out
}

fn push_escaped(out: &mut String, c: char, quote: char) {
    match c {
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\u{b}' => out.push_str("\\v"),
        c if c == quote => {
            out.push('\\');
            out.push(c);
        }
        c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
        c => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_valid_metric_name("f:g"));
        assert!(is_valid_metric_name("_x1"));
        assert!(!is_valid_metric_name("1x"));
        assert!(!is_valid_metric_name("bad-name"));
        assert!(!is_valid_metric_name(""));
        assert!(is_valid_label_name("a_1"));
        assert!(!is_valid_label_name("a:b"));
        assert!(!is_valid_label_name("a-b"));
        assert!(is_reserved_label_name("__x"));
    }

    #[test]
    fn quotes_like_go() {
        assert_eq!(go_quote("a\"b\n"), r#""a\"b\n""#);
        assert_eq!(go_quote_bytes(b"\xff"), r#""\xff""#);
        assert_eq!(go_quote_byte(b'='), "'='");
        assert_eq!(go_quote_byte(b'\n'), r"'\n'");
    }
}
