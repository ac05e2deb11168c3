//! Durations in Go's syntax (`90s`, `1h30m`, `1.5h`), as Prometheus' tools, the Pushgateway's
//! flags and robfig/cron's `@every` write them: one parser for all of cronpush's uses.

use std::time::Duration;

/// Why a flag's value is not a duration: `why` is [`parse`]'s reason, or `negative`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a duration: {why}")]
pub struct NotADuration {
    text: String,
    why: &'static str,
}

/// A flag's duration: Go's syntax, not negative.
pub fn flag(text: &str) -> Result<Duration, NotADuration> {
    let err = |why| NotADuration { text: text.to_string(), why };
    let nanos = parse(text).map_err(err)?;
    u64::try_from(nanos).map(Duration::from_nanos).map_err(|_| err("negative"))
}

/// Go's `time.Duration.String()` for whole milliseconds and up: `5m0s`, `1h0m0s`, `250ms`.
pub fn format(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (h, m) = (ms / 3_600_000, (ms / 60_000) % 60);
    let s = (ms % 60_000) as f64 / 1000.0;
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, m) => format!("{m}m{s}s"),
        (h, m) => format!("{h}h{m}m{s}s"),
    }
}

const INVALID: &str = "invalid duration (expected e.g. 90s, 1h30m, 1.5h)";

/// Go's `time.ParseDuration`, in nanoseconds: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+` with the units
/// ns, us, µs, μs, ms, s, m and h.
pub fn parse(text: &str) -> Result<i64, &'static str> {
    let mut rest = text.as_bytes();
    let negative = rest.first() == Some(&b'-');
    if let Some(b'-' | b'+') = rest.first() {
        rest = &rest[1..];
    }
    if rest == b"0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(INVALID);
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let (nanos, after) = component(rest)?;
        // Go adds without checking for wrap-around first; the check after it is all it has.
        total = total.wrapping_add(nanos);
        if total > 1 << 63 {
            return Err(INVALID);
        }
        rest = after;
    }
    match (negative, i64::try_from(total)) {
        (true, _) => Ok(0_i64.wrapping_sub_unsigned(total)),
        (false, Ok(total)) => Ok(total),
        (false, Err(_)) => Err(INVALID),
    }
}

/// One number and unit of a duration, in nanoseconds, and what follows it.
fn component(text: &[u8]) -> Result<(u64, &[u8]), &'static str> {
    if !text.first().is_some_and(|c| *c == b'.' || c.is_ascii_digit()) {
        return Err(INVALID);
    }
    let (whole, rest) = leading_int(text).ok_or(INVALID)?;
    let has_whole = rest.len() != text.len();
    let (fraction, scale, has_fraction, rest) = match rest.strip_prefix(b".") {
        Some(after_point) => {
            let (fraction, scale, rest) = leading_fraction(after_point);
            (fraction, scale, rest.len() != after_point.len(), rest)
        }
        None => (0, 1.0, false, rest),
    };
    if !has_whole && !has_fraction {
        return Err(INVALID);
    }
    let unit_length = rest.iter().position(|c| *c == b'.' || c.is_ascii_digit()).unwrap_or(rest.len());
    if unit_length == 0 {
        return Err("missing unit (one of ns, us, ms, s, m, h)");
    }
    let (unit, rest) = rest.split_at(unit_length);
    let unit = unit_nanos(unit).ok_or("unknown unit (one of ns, us, ms, s, m, h)")?;
    if whole > (1 << 63) / unit {
        return Err(INVALID);
    }
    let mut nanos = whole * unit;
    if fraction > 0 {
        // Go: "float64 is needed to be nanosecond accurate for fractions of hours."
        nanos += (fraction as f64 * (unit as f64 / scale)) as u64;
        if nanos > 1 << 63 {
            return Err(INVALID);
        }
    }
    Ok((nanos, rest))
}

fn unit_nanos(unit: &[u8]) -> Option<u64> {
    Some(match unit {
        b"ns" => 1,
        b"us" => 1_000,
        // U+00B5 MICRO SIGN and U+03BC GREEK SMALL LETTER MU, as Go accepts both.
        [0xc2, 0xb5, b's'] | [0xce, 0xbc, b's'] => 1_000,
        b"ms" => 1_000_000,
        b"s" => 1_000_000_000,
        b"m" => 60_000_000_000,
        b"h" => 3_600_000_000_000,
        _ => return None,
    })
}

/// Go's `leadingInt`: digits up to 2^63, `None` past it.
fn leading_int(text: &[u8]) -> Option<(u64, &[u8])> {
    let digits = text.iter().take_while(|c| c.is_ascii_digit()).count();
    let mut value: u64 = 0;
    for digit in &text[..digits] {
        if value > (1 << 63) / 10 {
            return None;
        }
        value = value * 10 + u64::from(digit - b'0');
        if value > 1 << 63 {
            return None;
        }
    }
    Some((value, &text[digits..]))
}

/// Go's `leadingFraction`: the digits after the point as a number and its scale; digits past
/// the precision of a u64 are skipped, not an error.
fn leading_fraction(text: &[u8]) -> (u64, f64, &[u8]) {
    let digits = text.iter().take_while(|c| c.is_ascii_digit()).count();
    let (mut value, mut scale, mut overflow) = (0_u64, 1.0_f64, false);
    for digit in &text[..digits] {
        if overflow || value > ((1 << 63) - 1) / 10 {
            overflow = true;
            continue;
        }
        let next = value * 10 + u64::from(digit - b'0');
        if next > 1 << 63 {
            overflow = true;
            continue;
        }
        value = next;
        scale *= 10.0;
    }
    (value, scale, &text[digits..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let cases: [(&str, i64); 14] = [
            ("0", 0),
            ("-0", 0),
            ("1h", 3_600_000_000_000),
            ("1h30m", 5_400_000_000_000),
            ("1.5h", 5_400_000_000_000),
            ("+90s", 90_000_000_000),
            ("-5m", -300_000_000_000),
            (".5s", 500_000_000),
            ("1.s", 1_000_000_000),
            ("2h45m30.5s", 9_930_500_000_000),
            ("300ms", 300_000_000),
            ("7\u{b5}s", 7_000),
            ("7\u{3bc}s", 7_000),
            ("9223372036854775807ns", i64::MAX),
        ];
        for (text, nanos) in cases {
            assert_eq!(parse(text), Ok(nanos), "{text}");
        }
        assert_eq!(parse("-9223372036854775808ns"), Ok(i64::MIN));
        for text in ["", "-", "1", "1d", "h", ".s", "1h ", " 1h", "1.5.5h", "9223372036854775808ns", "2562048h"] {
            assert!(parse(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn durations_read_and_print_like_go() {
        assert_eq!(flag("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(flag("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(flag("250ms").unwrap(), Duration::from_millis(250));
        assert!(flag("5").is_err() && flag("").is_err() && flag("1x").is_err());
        assert_eq!(format(Duration::from_secs(300)), "5m0s");
        assert_eq!(format(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(format(Duration::from_secs(2)), "2s");
        assert_eq!(format(Duration::from_millis(1500)), "1.5s");
    }
}
