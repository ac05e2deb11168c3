//! Kubernetes resource quantities (`10m`, `16Mi`, `1.5Gi`, `2e3`) as whole thousandths, the
//! precision at which LimitRanger and the quota evaluator compare them: apimachinery's
//! pkg/api/resource/quantity.go parses `<number><suffix>` and `MilliValue` rounds up.

/// Thousandths of a unit: millicores for `cpu`, thousandths of a byte for `memory`.
pub type Milli = i128;

/// The quantity in thousandths, rounded up; `None` when it is not a quantity or is absurdly big.
pub fn milli(quantity: &str) -> Option<Milli> {
    let s = quantity.trim();
    let (negative, s) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let number_end = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (number, suffix) = s.split_at(number_end);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if (whole.is_empty() && fraction.is_empty()) || whole.len() + fraction.len() > 30 {
        return None;
    }
    let digits: i128 = format!("{whole}{fraction}").parse().ok()?;
    let (binary_exponent, decimal_exponent): (u32, i32) = match suffix {
        "Ki" => (10, 0),
        "Mi" => (20, 0),
        "Gi" => (30, 0),
        "Ti" => (40, 0),
        "Pi" => (50, 0),
        "Ei" => (60, 0),
        "n" => (0, -9),
        "u" => (0, -6),
        "m" => (0, -3),
        "" => (0, 0),
        "k" => (0, 3),
        "M" => (0, 6),
        "G" => (0, 9),
        "T" => (0, 12),
        "P" => (0, 15),
        "E" => (0, 18),
        exponent if exponent.starts_with(['e', 'E']) => (0, exponent[1..].parse().ok()?),
        _ => return None,
    };
    // digits × 2^binary × 10^(decimal − fraction digits) units, in thousandths.
    let scaled = digits.checked_mul(1i128.checked_shl(binary_exponent)?)?;
    let exponent = decimal_exponent + 3 - fraction.len() as i32;
    let value = if exponent >= 0 {
        scaled.checked_mul(10i128.checked_pow(u32::try_from(exponent).ok()?)?)?
    } else {
        let divisor = 10i128.checked_pow(exponent.unsigned_abs())?;
        // Rounded up, as MilliValue rounds: 1n of a CPU is 1m.
        scaled / divisor + i128::from(scaled % divisor > 0)
    };
    Some(if negative { -value } else { value })
}

/// CPU as Kubernetes writes it: whole cores, or millicores.
pub fn cpu(milli: Milli) -> String {
    if milli % 1000 == 0 { format!("{}", milli / 1000) } else { format!("{milli}m") }
}

/// An amount of `resource` as Kubernetes would write it: CPU in cores, the rest in bytes.
pub fn show(resource: &str, amount: Milli) -> String {
    if resource == "cpu" { cpu(amount) } else { memory(amount) }
}

/// Memory in bytes (rounded up), in Mi or Ki when it is a whole number of them.
pub fn memory(milli: Milli) -> String {
    let bytes = milli / 1000 + i128::from(milli % 1000 > 0);
    match bytes {
        b if b != 0 && b % (1 << 20) == 0 => format!("{}Mi", b >> 20),
        b if b != 0 && b % (1 << 10) == 0 => format!("{}Ki", b >> 10),
        b => format!("{b}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forms_kubernetes_accepts_parse_to_thousandths() {
        assert_eq!(milli("10m"), Some(10));
        assert_eq!(milli("1"), Some(1000));
        assert_eq!(milli("0.5"), Some(500));
        assert_eq!(milli(".5"), Some(500));
        assert_eq!(milli("16Mi"), Some(16 * 1024 * 1024 * 1000));
        assert_eq!(milli("1.5Gi"), Some(3 * 512 * 1024 * 1024 * 1000));
        assert_eq!(milli("128974848"), Some(128_974_848_000));
        assert_eq!(milli("129e6"), Some(129_000_000_000));
        assert_eq!(milli("129M"), Some(129_000_000_000));
        assert_eq!(milli("1E"), Some(1_000_000_000_000_000_000_000));
        assert_eq!(milli("-2k"), Some(-2_000_000));
    }

    #[test]
    fn what_is_finer_than_a_thousandth_rounds_up_as_milli_value_does() {
        assert_eq!(milli("1n"), Some(1));
        assert_eq!(milli("1500u"), Some(2));
        assert_eq!(milli("0.0001"), Some(1));
    }

    #[test]
    fn what_is_not_a_quantity_is_refused() {
        for bad in ["", "m", "Mi", "1.2.3", "1mi", "1 Gi", "ten", "1e", "1e999", "1234567890123456789012345678901"] {
            assert_eq!(milli(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn written_back_as_kubernetes_writes_them() {
        assert_eq!(cpu(10), "10m");
        assert_eq!(cpu(2000), "2");
        assert_eq!(memory(16 * 1024 * 1024 * 1000), "16Mi");
        assert_eq!(memory(24 * 1024 * 1000), "24Ki");
        assert_eq!(memory(1500), "2");
        for q in ["10m", "250m", "3", "16Mi", "24Ki", "1000"] {
            let again =
                if q.ends_with('i') || q == "1000" { memory(milli(q).unwrap()) } else { cpu(milli(q).unwrap()) };
            assert_eq!(milli(&again), milli(q), "{q}");
        }
    }
}
