//! Floats as Prometheus' Go tooling reads and writes them.
//!
//! Exposition text must look the way client_golang writes it (`1.795597252300431e+09`, `+Inf`),
//! and a pushed value must be accepted or refused exactly as the reference's text parser does.

use std::fmt::Write;

/// Go's `strconv.FormatFloat(v, 'g', -1, 64)`: the shortest digits that round-trip, in `%e`
/// form when the decimal exponent is below -4 or at least 6 (Go's rule for shortest `%g`).
/// Infinities are `+Inf`/`-Inf` and NaN is `NaN`, as both the text format and Go's `%v` spell them.
pub fn write_go(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
        return;
    }
    if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
        return;
    }
    if v == 0.0 {
        out.push_str(if v.is_sign_negative() { "-0" } else { "0" });
        return;
    }
    // Whole numbers below a million print as integers in Go's %g: the common case of counts,
    // codes and small gauges, without the general path's work.
    if v.fract() == 0.0 && v.abs() < 1e6 {
        let _ = write!(out, "{}", v as i64);
        return;
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "1.2345e-7".
    let mut sci = StackText::default();
    let _ = write!(sci, "{:e}", v.abs());
    let (mantissa, exp) = sci.as_str().split_once('e').expect("LowerExp always has an exponent");
    let exp: i32 = exp.parse().expect("LowerExp exponent is an integer");
    let mut digit_buf = StackText::default();
    for c in mantissa.chars().filter(|c| *c != '.') {
        let _ = digit_buf.write_char(c);
    }
    let digits = digit_buf.as_str();
    if v < 0.0 {
        out.push('-');
    }
    if !(-4..6).contains(&exp) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
        return;
    }
    let point = exp + 1; // digits before the decimal point
    if point <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-point) as usize));
        out.push_str(digits);
    } else if point as usize >= digits.len() {
        out.push_str(digits);
        out.extend(std::iter::repeat_n('0', point as usize - digits.len()));
    } else {
        out.push_str(&digits[..point as usize]);
        out.push('.');
        out.push_str(&digits[point as usize..]);
    }
}

/// A float as the text exposition writes a sample value: like [`write_go`], but negative
/// zero is `0` (client_golang's writer special-cases zero).
pub fn write_sample(out: &mut String, v: f64) {
    if v == 0.0 {
        out.push('0');
    } else {
        write_go(out, v);
    }
}

/// A small text buffer on the stack: a float's shortest form fits in 32 bytes.
#[derive(Default)]
struct StackText {
    buf: [u8; 32],
    len: usize,
}

impl StackText {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).expect("only ASCII is written")
    }
}

impl Write for StackText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

pub fn to_go_string(v: f64) -> String {
    let mut s = String::new();
    write_go(&mut s, v);
    s
}

/// Parses a float the way the reference's text parser does (Go's `strconv.ParseFloat`, with
/// `p`, `P` and `_` refused): decimal forms, `Inf`/`Infinity`/`NaN` in any case, and an error,
/// not infinity, when a finite literal is out of range.
pub fn parse_go(s: &str) -> Option<f64> {
    if s.is_empty() || s.contains(['p', 'P', '_']) {
        return None;
    }
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    if unsigned.eq_ignore_ascii_case("inf") || unsigned.eq_ignore_ascii_case("infinity") {
        return s.parse().ok();
    }
    if unsigned.eq_ignore_ascii_case("nan") {
        // Go takes no sign on NaN.
        return (unsigned.len() == s.len()).then_some(f64::NAN);
    }
    // Rust also reads "infinity"-like words and hex-free decimals; anything alphabetic left
    // over here is not a Go float.
    if !unsigned.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-')) {
        return None;
    }
    let v: f64 = s.parse().ok()?;
    // Go reports overflow as an error (ErrRange) where Rust saturates to infinity.
    if v.is_infinite() { None } else { Some(v) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_go_shortest_g() {
        let cases: &[(f64, &str)] = &[
            (3.25, "3.25"),
            (1e10, "1e+10"),
            (123456789.0, "1.23456789e+08"),
            (1234567.0, "1.234567e+06"),
            (123456.0, "123456"),
            (1e-7, "1e-07"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.7955973838327801e9, "1.7955973838327801e+09"),
            (1.795597252300431e9, "1.795597252300431e+09"),
            (-2.5, "-2.5"),
            (7.0, "7"),
            (-42.0, "-42"),
            (999999.0, "999999"),
            (1e6, "1e+06"),
            (123456789012.0, "1.23456789012e+11"),
            (100.0, "100"),
            (1e21, "1e+21"),
            (1e-300, "1e-300"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (-0.0, "-0"),
            (0.5, "0.5"),
            (0.000123, "0.000123"),
        ];
        for (v, want) in cases {
            assert_eq!(to_go_string(*v), *want, "formatting {v:?}");
        }
        let mut s = String::new();
        write_sample(&mut s, -0.0);
        assert_eq!(s, "0");
        assert_eq!(to_go_string(f64::NAN), "NaN");
    }

    #[test]
    fn parses_like_go_parse_float() {
        for ok in ["1", "-1.5", "1e3", "1E-3", ".5", "5.", "+Inf", "-inf", "Infinity", "NaN", "nan", "1e-400"] {
            assert!(parse_go(ok).is_some(), "{ok} should parse");
        }
        for bad in ["", "1e400", "-1e400", "0x1p3", "1_000", "+NaN", "abc", "1\r", "1,5", "infx", "1e"] {
            assert!(parse_go(bad).is_none(), "{bad} should be refused");
        }
    }
}
