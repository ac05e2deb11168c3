//! The five-field language of robfig/cron v3 `ParseStandard` (parser.go `getField`,
//! `getRange`, `parseIntOrName`), accepted and refused exactly as there, quirks included: `?`
//! is `*` in every field, `N/step` means `N-max/step`, `*-anything` is `*`, empty list items
//! (`1,,2`) are dropped, numbers may carry a `+` sign or leading zeros (Go's `strconv.Atoi`).

use super::error::{Field, FieldProblem, ScheduleError};

/// The values one field allows, a bit each, and whether the field contained a `*` or `?` that
/// no step above 1 followed (robfig's `starBit`), which decides how the day fields combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Values {
    bits: u64,
    star: bool,
}

impl Values {
    const NONE: Values = Values { bits: 0, star: false };

    pub(super) fn contains(self, value: impl Into<i64>) -> bool {
        u32::try_from(value.into()).is_ok_and(|value| value < 64 && self.bits >> value & 1 == 1)
    }

    fn union(self, other: Values) -> Values {
        Values { bits: self.bits | other.bits, star: self.star || other.star }
    }
}

/// A parsed schedule: robfig's `SpecSchedule` without its seconds field, which is always 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Fields {
    pub(super) minute: Values,
    pub(super) hour: Values,
    pub(super) day_of_month: Values,
    pub(super) month: Values,
    pub(super) day_of_week: Values,
}

impl Fields {
    /// Five whitespace-separated fields (Go's `strings.Fields` and Rust's `split_whitespace`
    /// split on the same Unicode White_Space characters).
    pub(super) fn parse(spec: &str) -> Result<Fields, ScheduleError> {
        let parts: Vec<&str> = spec.split_whitespace().collect();
        let [minute, hour, day_of_month, month, day_of_week] = parts[..] else {
            return Err(ScheduleError::FieldCount { found: parts.len(), spec: spec.to_string() });
        };
        Ok(Fields {
            minute: parse_field(minute, Field::Minute)?,
            hour: parse_field(hour, Field::Hour)?,
            day_of_month: parse_field(day_of_month, Field::DayOfMonth)?,
            month: parse_field(month, Field::Month)?,
            day_of_week: parse_field(day_of_week, Field::DayOfWeek)?,
        })
    }

    /// robfig's `parseDescriptor`, minus `@every`: exact, lower-case names only. Each macro's
    /// fields, star bits included, are those of the five-field schedule it stands for.
    pub(super) fn from_macro(name: &str) -> Option<Fields> {
        let spec = match name {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            _ => return None,
        };
        Fields::parse(spec).ok()
    }

    /// robfig's `dayMatches`: when either day field has the star, both must match (so the other
    /// one decides); when both are restricted, either may match (Vixie cron's rule).
    pub(super) fn day_matches(&self, day_of_month: i8, sunday_zero_weekday: i8) -> bool {
        let by_date = self.day_of_month.contains(day_of_month);
        let by_weekday = self.day_of_week.contains(sunday_zero_weekday);
        if self.day_of_month.star || self.day_of_week.star { by_date && by_weekday } else { by_date || by_weekday }
    }

    /// False when a field allows nothing at all (robfig accepts a field of only commas), so
    /// that the search can give up at once instead of walking five years minute by minute.
    pub(super) fn can_match(&self) -> bool {
        let days = if self.day_of_month.star || self.day_of_week.star {
            self.day_of_month.bits != 0 && self.day_of_week.bits != 0
        } else {
            self.day_of_month.bits != 0 || self.day_of_week.bits != 0
        };
        days && self.minute.bits != 0 && self.hour.bits != 0 && self.month.bits != 0
    }
}

const fn bounds(field: Field) -> (u32, u32) {
    match field {
        Field::Minute => (0, 59),
        Field::Hour => (0, 23),
        Field::DayOfMonth => (1, 31),
        Field::Month => (1, 12),
        Field::DayOfWeek => (0, 6),
    }
}

const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// robfig's `getField`: a comma-separated list; `strings.FieldsFunc` drops empty items.
fn parse_field(text: &str, field: Field) -> Result<Values, ScheduleError> {
    text.split(',').filter(|part| !part.is_empty()).try_fold(Values::NONE, |values, part| {
        let range = parse_range(part, field).map_err(|problem| ScheduleError::Field {
            field,
            part: part.to_string(),
            problem,
        })?;
        Ok(values.union(range))
    })
}

/// robfig's `getRange`: `*`, `?`, `N`, `N-M`, each optionally followed by `/step`.
fn parse_range(part: &str, field: Field) -> Result<Values, FieldProblem> {
    let (min, max) = bounds(field);
    let mut range_and_step = part.split('/');
    let range = range_and_step.next().unwrap_or_default();
    let step = range_and_step.next();
    let low_and_high: Vec<&str> = range.split('-').collect();
    let (start, mut end, mut star) = match low_and_high[..] {
        // Whatever follows a `*-` is ignored, as robfig ignores it.
        ["*" | "?", ..] => (u64::from(min), u64::from(max), true),
        [single] => {
            let value = value(single, field)?;
            (value, value, false)
        }
        [low, high] => (value(low, field)?, value(high, field)?, false),
        _ => return Err(FieldProblem::TooManyHyphens),
    };
    if range_and_step.next().is_some() {
        return Err(FieldProblem::TooManySlashes);
    }
    let step = match step {
        None => 1,
        Some(step) => {
            let step = number(step)?;
            if low_and_high.len() == 1 {
                end = u64::from(max);
            }
            // `*/1` keeps the star, which matters for the day rule; `*/2` does not.
            star &= step <= 1;
            step
        }
    };
    check_range(field, start, end, step)?;
    let step = usize::try_from(step).unwrap_or(usize::MAX);
    Ok(Values { bits: (start..=end).step_by(step).fold(0, |bits, value| bits | 1 << value), star })
}

/// The bounds checks of `getRange`, in its order.
fn check_range(field: Field, start: u64, end: u64, step: u64) -> Result<(), FieldProblem> {
    let (min, max) = bounds(field);
    let (min, max) = (u64::from(min), u64::from(max));
    if start < min {
        Err(FieldProblem::BelowMinimum { value: start, min })
    } else if end > max && field == Field::DayOfWeek && end == 7 {
        Err(FieldProblem::SundayAsSeven)
    } else if end > max {
        Err(FieldProblem::AboveMaximum { value: end, max })
    } else if start > end {
        Err(FieldProblem::ReversedRange { start, end })
    } else if step == 0 {
        Err(FieldProblem::ZeroStep)
    } else {
        Ok(())
    }
}

/// robfig's `parseIntOrName`: a month or weekday name, in any case, or a number.
fn value(token: &str, field: Field) -> Result<u64, FieldProblem> {
    let names: &[&str] = match field {
        Field::Month => &MONTHS,
        Field::DayOfWeek => &WEEKDAYS,
        _ => &[],
    };
    let first = if field == Field::Month { 1 } else { 0 };
    match names.iter().position(|name| go_lowercase_is(token, name)) {
        Some(index) => Ok(index as u64 + first),
        None => number(token),
    }
}

/// Whether Go's `strings.ToLower(token)` equals `name` (lower-case ASCII). Only two non-ASCII
/// letters lower-case to ASCII in Go: U+0130 (İ) to `i` and the Kelvin sign to `k`, so robfig
/// reads `FRİ` as Friday.
fn go_lowercase_is(token: &str, name: &str) -> bool {
    let go_lower = |c: char| match c {
        '\u{130}' => 'i',
        '\u{212a}' => 'k',
        c => c.to_ascii_lowercase(),
    };
    token.chars().map(go_lower).eq(name.chars())
}

/// robfig's `mustParseInt`: Go's `strconv.Atoi` (an optional sign and ASCII digits, which is
/// what Rust's `i64::from_str` accepts too), then no negatives.
fn number(token: &str) -> Result<u64, FieldProblem> {
    match token.parse::<i64>() {
        Ok(number) => u64::try_from(number).map_err(|_| FieldProblem::Negative(number)),
        Err(_) => Err(unsupported_feature(token)
            .map(|feature| FieldProblem::Unsupported { token: token.to_string(), feature })
            .unwrap_or_else(|| FieldProblem::NotANumber(token.to_string()))),
    }
}

/// Names the Quartz/Vixie extension a refused token looks like, for a clearer message.
fn unsupported_feature(token: &str) -> Option<&'static str> {
    let upper = token.to_ascii_uppercase();
    if upper.contains('#') {
        Some("# (nth weekday of the month)")
    } else if upper.contains('L') {
        Some("L (last day)")
    } else if upper.contains('W') {
        Some("W (nearest weekday)")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(text: &str, field: Field) -> Values {
        parse_field(text, field).unwrap()
    }

    fn bits(list: &[u32]) -> u64 {
        list.iter().fold(0, |bits, value| bits | 1 << value)
    }

    fn problem(text: &str, field: Field) -> FieldProblem {
        match parse_field(text, field) {
            Err(ScheduleError::Field { problem, .. }) => problem,
            other => panic!("{text:?}: {other:?}"),
        }
    }

    #[test]
    fn steps_restart_at_the_start_of_the_field() {
        assert_eq!(values("*/7", Field::Minute).bits, bits(&[0, 7, 14, 21, 28, 35, 42, 49, 56]));
        assert_eq!(values("1-30/5", Field::DayOfMonth).bits, bits(&[1, 6, 11, 16, 21, 26]));
        assert_eq!(values("5/15", Field::Minute).bits, bits(&[5, 20, 35, 50]), "N/step is N-max/step");
        assert_eq!(values("*/100", Field::Minute).bits, bits(&[0]), "a step past the end keeps the start");
        assert_eq!(values("*/9223372036854775807", Field::Hour).bits, bits(&[0]));
    }

    #[test]
    fn the_star_survives_only_steps_of_one() {
        for (text, star) in [("*", true), ("?", true), ("*/1", true), ("*,5", true), ("*-5", true), ("*/2", false)] {
            assert_eq!(values(text, Field::DayOfMonth).star, star, "{text}");
        }
        for text in ["1-31", "1-31/1", "5"] {
            assert!(!values(text, Field::DayOfMonth).star, "{text}");
        }
    }

    #[test]
    fn robfig_quirks_are_accepted() {
        assert_eq!(values("*-5", Field::Hour), values("*", Field::Hour), "what follows *- is ignored");
        assert_eq!(values("?", Field::Minute), values("*", Field::Minute), "? works in every field");
        assert_eq!(values("1,,2,", Field::Minute).bits, bits(&[1, 2]), "empty items are dropped");
        assert_eq!(values(",", Field::Minute), Values::NONE, "a field of commas allows nothing");
        assert_eq!(values("+5", Field::Minute).bits, bits(&[5]), "strconv.Atoi takes a sign");
        assert_eq!(values("007", Field::Minute).bits, bits(&[7]), "and leading zeros");
        assert_eq!(values("*/+3", Field::Hour).bits, values("*/3", Field::Hour).bits);
        assert_eq!(values("5-5", Field::Minute).bits, bits(&[5]));
    }

    #[test]
    fn names_are_case_insensitive_whole_words() {
        assert_eq!(values("JAN-mar", Field::Month).bits, bits(&[1, 2, 3]));
        assert_eq!(values("Mon-FRI", Field::DayOfWeek).bits, bits(&[1, 2, 3, 4, 5]));
        assert_eq!(values("sun,SAT", Field::DayOfWeek).bits, bits(&[0, 6]));
        assert_eq!(values("1-fri", Field::DayOfWeek).bits, bits(&[1, 2, 3, 4, 5]));
        assert_eq!(values("FR\u{130}", Field::DayOfWeek).bits, bits(&[5]), "Go lower-cases İ to i");
        assert_eq!(problem("MONDAY", Field::DayOfWeek), FieldProblem::NotANumber("MONDAY".into()));
        assert_eq!(problem("JAN", Field::DayOfWeek), FieldProblem::NotANumber("JAN".into()));
        assert_eq!(problem("MON", Field::Minute), FieldProblem::NotANumber("MON".into()));
        assert_eq!(problem("*/MON", Field::DayOfWeek), FieldProblem::NotANumber("MON".into()), "steps are numbers");
    }

    #[test]
    fn refused_parts_say_why() {
        use FieldProblem::*;
        let cases = [
            ("60", Field::Minute, AboveMaximum { value: 60, max: 59 }),
            ("24", Field::Hour, AboveMaximum { value: 24, max: 23 }),
            ("0", Field::DayOfMonth, BelowMinimum { value: 0, min: 1 }),
            ("32", Field::DayOfMonth, AboveMaximum { value: 32, max: 31 }),
            ("13", Field::Month, AboveMaximum { value: 13, max: 12 }),
            ("7", Field::DayOfWeek, SundayAsSeven),
            ("5-7", Field::DayOfWeek, SundayAsSeven),
            ("MON-SUN", Field::DayOfWeek, ReversedRange { start: 1, end: 0 }),
            ("30-10", Field::Minute, ReversedRange { start: 30, end: 10 }),
            ("*/0", Field::Minute, ZeroStep),
            ("*/-1", Field::Minute, Negative(-1)),
            ("1-2-3", Field::Minute, TooManyHyphens),
            ("*/2/3", Field::Minute, TooManySlashes),
            ("-5", Field::Minute, NotANumber(String::new())),
            ("5-", Field::Minute, NotANumber(String::new())),
            ("/5", Field::Minute, NotANumber(String::new())),
            ("5/", Field::Minute, NotANumber(String::new())),
            ("L", Field::DayOfMonth, Unsupported { token: "L".into(), feature: "L (last day)" }),
            ("15W", Field::DayOfMonth, Unsupported { token: "15W".into(), feature: "W (nearest weekday)" }),
            ("5L", Field::DayOfWeek, Unsupported { token: "5L".into(), feature: "L (last day)" }),
            ("1#2", Field::DayOfWeek, Unsupported { token: "1#2".into(), feature: "# (nth weekday of the month)" }),
            ("99999999999999999999", Field::Minute, NotANumber("99999999999999999999".into())),
            ("٣", Field::Minute, NotANumber("٣".into())),
        ];
        for (text, field, expected) in cases {
            assert_eq!(problem(text, field), expected, "{field} {text:?}");
        }
    }

    #[test]
    fn five_fields_exactly() {
        assert!(Fields::parse("* * * * *").is_ok());
        assert!(Fields::parse(" \t* *\n* * *\u{a0}").is_ok(), "any Unicode white space separates");
        for (spec, found) in [("* * * *", 4), ("0 * * * * *", 6), ("", 0), ("   ", 0)] {
            assert_eq!(Fields::parse(spec), Err(ScheduleError::FieldCount { found, spec: spec.into() }));
        }
    }

    #[test]
    fn the_day_rule_is_robfigs() {
        let fields = |spec| Fields::parse(spec).unwrap();
        // 2026-06-01 is a Monday (weekday 1); 2026-06-02 a Tuesday.
        let first_or_monday = fields("0 0 1 * MON");
        assert!(first_or_monday.day_matches(1, 1) && first_or_monday.day_matches(8, 1));
        assert!(first_or_monday.day_matches(1, 3), "both restricted: either matches");
        assert!(!first_or_monday.day_matches(2, 2));
        let odd_days = fields("0 0 */2 * *");
        assert!(odd_days.day_matches(1, 1) && odd_days.day_matches(3, 3) && !odd_days.day_matches(2, 2));
        let weekdays = fields("0 0 * * 1-5");
        assert!(weekdays.day_matches(1, 1) && !weekdays.day_matches(6, 6) && !weekdays.day_matches(7, 0));
        let steps_of_one = fields("0 0 */1 * 1");
        assert!(steps_of_one.day_matches(1, 1) && !steps_of_one.day_matches(2, 2), "*/1 keeps the star: AND");
        let fifteenth_or_friday = fields("0 0 1,15 * 5");
        assert!(fifteenth_or_friday.day_matches(15, 3) && fifteenth_or_friday.day_matches(5, 5));
        assert!(!fifteenth_or_friday.day_matches(5, 4));
    }

    #[test]
    fn macros_are_exact_and_lower_case() {
        assert_eq!(Fields::from_macro("@daily"), Fields::from_macro("@midnight"));
        assert_eq!(Fields::from_macro("@yearly"), Fields::from_macro("@annually"));
        // parser.go sets the star bit on the `all(...)` fields of a descriptor and on no other.
        let yearly = Fields::from_macro("@yearly").unwrap();
        assert!(yearly.day_of_week.star && !yearly.day_of_month.star && !yearly.month.star);
        let weekly = Fields::from_macro("@weekly").unwrap();
        assert!(weekly.day_of_month.star && weekly.month.star && !weekly.day_of_week.star);
        assert_eq!(weekly.day_of_week.bits, 1, "Sunday");
        for name in ["@DAILY", "@Daily", "@daily ", "@reboot", "@every"] {
            assert_eq!(Fields::from_macro(name), None, "{name}");
        }
    }

    #[test]
    fn fields_that_allow_nothing_never_match() {
        assert!(!Fields::parse(", * * * *").unwrap().can_match());
        assert!(!Fields::parse("0 0 , * *").unwrap().can_match(), "dom allows nothing and dow has the star");
        assert!(Fields::parse("0 0 , * 1").unwrap().can_match(), "both restricted: Mondays still match");
        assert!(Fields::parse("0 0 30 2 *").unwrap().can_match(), "robfig finds out by searching");
    }
}
