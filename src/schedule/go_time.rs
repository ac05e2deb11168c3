//! The parts of Go's `time` package that robfig's `Next` relies on, with Go's semantics rather
//! than jiff's: `time.Date` resolves a wall clock time in a gap or an overlap its own way, and
//! `AddDate` normalises overflowing months and days.

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Span, Timestamp};

pub(super) const SECOND: SignedDuration = SignedDuration::from_secs(1);
pub(super) const MINUTE: SignedDuration = SignedDuration::from_mins(1);
pub(super) const HOUR: SignedDuration = SignedDuration::from_hours(1);

/// `t.Truncate(unit)`: rounds down on the absolute time line. Go measures from year 1, whose
/// start is a whole number of minutes before the Unix epoch, so flooring Unix time agrees.
pub(super) fn truncate(t: Timestamp, unit: SignedDuration) -> Option<Timestamp> {
    let unit = unit.as_nanos();
    Timestamp::from_nanosecond(t.as_nanosecond().div_euclid(unit) * unit).ok()
}

/// `time.Date(...)` for a valid wall clock time. For a time in a gap or an overlap Go looks the
/// offset up as if the wall clock were UTC, then looks again at the instant that offset gives
/// when the first guess does not hold there (time.go `Date`). So a New York 02:30 in the March
/// gap becomes 01:30 EST, a Berlin 02:30 in the March gap 03:30 CEST, and a repeated hour
/// resolves to the earlier instant west of Greenwich and to the later one east of it.
pub(super) fn date(tz: &TimeZone, wall_clock: DateTime) -> Option<Timestamp> {
    let as_if_utc = TimeZone::UTC.to_timestamp(wall_clock).ok()?;
    let guess = offset_at(tz, as_if_utc);
    let offset = offset_at(tz, as_if_utc.checked_sub(guess).ok()?);
    as_if_utc.checked_sub(offset).ok()
}

/// `t.AddDate(0, months, days)`, given `t`'s wall clock reading: the same wall clock time that
/// many months and days on, with Go's normalisation (January 31 plus one month is March 3 or 2),
/// resolved like [`date`].
pub(super) fn add_date(tz: &TimeZone, wall_clock: DateTime, months: i64, days: i64) -> Option<Timestamp> {
    let month_index = i64::from(wall_clock.year()) * 12 + i64::from(wall_clock.month()) - 1 + months;
    let year = i16::try_from(month_index.div_euclid(12)).ok()?;
    let month = i8::try_from(month_index.rem_euclid(12) + 1).ok()?;
    let day_offset = i64::from(wall_clock.day()) - 1 + days;
    let day = Date::new(year, month, 1).ok()?.checked_add(Span::new().try_days(day_offset).ok()?).ok()?;
    date(tz, day.to_datetime(wall_clock.time()))
}

fn offset_at(tz: &TimeZone, t: Timestamp) -> SignedDuration {
    SignedDuration::from_secs(i64::from(tz.to_offset(t).seconds()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(name: &str) -> TimeZone {
        jiff::tz::TimeZoneDatabase::bundled().get(name).unwrap()
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn wall(text: &str) -> DateTime {
        text.parse().unwrap()
    }

    #[test]
    fn date_resolves_gaps_and_overlaps_the_go_way() {
        let (new_york, berlin) = (zone("America/New_York"), zone("Europe/Berlin"));
        let cases = [
            (&new_york, "2026-03-08T02:30", "2026-03-08T06:30:00Z"), // gap: 01:30 EST
            (&new_york, "2026-11-01T01:30", "2026-11-01T05:30:00Z"), // overlap: the earlier, EDT
            (&new_york, "2026-07-01T12:00", "2026-07-01T16:00:00Z"),
            (&berlin, "2026-03-29T02:30", "2026-03-29T01:30:00Z"), // gap: 03:30 CEST
            (&berlin, "2026-10-25T02:30", "2026-10-25T01:30:00Z"), // overlap: the later, CET
            (&berlin, "2026-01-15T00:00", "2026-01-14T23:00:00Z"),
        ];
        for (tz, wall_clock, expected) in cases {
            assert_eq!(date(tz, wall(wall_clock)), Some(at(expected)), "{wall_clock}");
        }
    }

    #[test]
    fn add_date_normalises_like_go() {
        let utc = TimeZone::UTC;
        assert_eq!(add_date(&utc, wall("2026-01-31T10:00"), 1, 0), Some(at("2026-03-03T10:00:00Z")));
        assert_eq!(add_date(&utc, wall("2024-01-31T10:00"), 1, 0), Some(at("2024-03-02T10:00:00Z")));
        assert_eq!(add_date(&utc, wall("2026-12-01T00:00"), 1, 0), Some(at("2027-01-01T00:00:00Z")));
        assert_eq!(add_date(&utc, wall("2026-02-28T00:00"), 0, 1), Some(at("2026-03-01T00:00:00Z")));
        assert_eq!(add_date(&utc, wall("9999-12-30T00:00"), 0, 1), None);
        let new_york = zone("America/New_York");
        assert_eq!(add_date(&new_york, wall("2026-03-07T00:00"), 0, 1), Some(at("2026-03-08T05:00:00Z")));
        assert_eq!(add_date(&new_york, wall("2026-03-08T00:00"), 0, 1), Some(at("2026-03-09T04:00:00Z")));
    }

    #[test]
    fn truncate_floors_on_the_time_line() {
        assert_eq!(truncate(at("2026-03-08T06:30:59.9Z"), MINUTE), Some(at("2026-03-08T06:30:00Z")));
        assert_eq!(truncate(at("1969-12-31T23:59:59.5Z"), SECOND), Some(at("1969-12-31T23:59:59Z")));
        assert_eq!(truncate(at("1969-12-31T23:59:30Z"), MINUTE), Some(at("1969-12-31T23:59:00Z")));
    }
}
