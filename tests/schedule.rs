//! CronJob schedule maths against slots worked out by hand, following robfig/cron v3 (what the
//! Kubernetes CronJob controller runs), and properties over generated schedules.
//!
//! Every expected slot below was also confirmed with robfig/cron v3's `ParseStandard` and
//! `Next`, compiled with Go and fed the same time zone database.

use std::collections::BTreeSet;

use cronpush::schedule::{
    Field, FieldProblem, Schedule, ScheduleError, parse_scheduled_timestamp_annotation, scheduled_time_from_job_name,
};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;

fn at(text: &str) -> Timestamp {
    text.parse().unwrap_or_else(|error| panic!("{text}: {error}"))
}

fn schedule(spec: &str, zone: Option<&str>) -> Schedule {
    Schedule::parse(spec, zone).unwrap_or_else(|error| panic!("{spec:?} {zone:?}: {error}"))
}

fn slots(spec: &str, zone: Option<&str>, after: &str, count: usize) -> Vec<Timestamp> {
    schedule(spec, zone).slots_after(at(after)).take(count).collect()
}

fn assert_slots(spec: &str, zone: Option<&str>, after: &str, expected: &[&str]) {
    let expected: Vec<Timestamp> = expected.iter().map(|text| at(text)).collect();
    assert_eq!(slots(spec, zone, after, expected.len()), expected, "{spec:?} in {zone:?} after {after}");
}

const NEW_YORK: Option<&str> = Some("America/New_York");
const BERLIN: Option<&str> = Some("Europe/Berlin");

#[test]
fn steps_restart_every_hour() {
    assert_slots(
        "*/7 * * * *",
        None,
        "2026-05-01T10:50:00Z",
        &["2026-05-01T10:56:00Z", "2026-05-01T11:00:00Z", "2026-05-01T11:07:00Z"],
    );
}

#[test]
fn macros() {
    assert_slots("@weekly", None, "2026-03-04T12:00:00Z", &["2026-03-08T00:00:00Z", "2026-03-15T00:00:00Z"]);
    assert_slots("@hourly", None, "2026-12-31T23:30:00Z", &["2027-01-01T00:00:00Z", "2027-01-01T01:00:00Z"]);
    assert_slots("@monthly", None, "2026-01-15T00:00:00Z", &["2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z"]);
    assert_slots("@yearly", None, "2026-01-01T00:00:00Z", &["2027-01-01T00:00:00Z"]);
    assert_slots("@daily", Some("Asia/Kolkata"), "2026-06-01T00:00:00Z", &["2026-06-02T00:00:00+05:30"]);
}

#[test]
fn day_of_month_and_day_of_week() {
    // Both restricted: the 1st OR a Monday.
    assert_slots(
        "0 0 1 * MON",
        None,
        "2026-05-31T00:00:00Z",
        &[
            "2026-06-01T00:00:00Z",
            "2026-06-08T00:00:00Z",
            "2026-06-15T00:00:00Z",
            "2026-06-22T00:00:00Z",
            "2026-06-29T00:00:00Z",
            "2026-07-01T00:00:00Z",
            "2026-07-06T00:00:00Z",
        ],
    );
    // Day-of-week is `*`: day-of-month alone decides (odd days).
    assert_slots(
        "0 0 */2 * *",
        None,
        "2026-01-29T12:00:00Z",
        &["2026-01-31T00:00:00Z", "2026-02-01T00:00:00Z", "2026-02-03T00:00:00Z"],
    );
    // Day-of-month is `*`: day-of-week alone decides.
    assert_slots("0 0 * * 1-5", None, "2026-03-06T12:00:00Z", &["2026-03-09T00:00:00Z", "2026-03-10T00:00:00Z"]);
    // The 1st, the 15th OR a Friday.
    assert_slots(
        "0 0 1,15 * 5",
        None,
        "2026-05-01T00:00:00Z",
        &[
            "2026-05-08T00:00:00Z",
            "2026-05-15T00:00:00Z",
            "2026-05-22T00:00:00Z",
            "2026-05-29T00:00:00Z",
            "2026-06-01T00:00:00Z",
            "2026-06-05T00:00:00Z",
        ],
    );
}

#[test]
fn month_ends_and_leap_days() {
    assert_slots(
        "0 0 31 * *",
        None,
        "2026-01-31T00:00:00Z",
        &[
            "2026-03-31T00:00:00Z",
            "2026-05-31T00:00:00Z",
            "2026-07-31T00:00:00Z",
            "2026-08-31T00:00:00Z",
            "2026-10-31T00:00:00Z",
            "2026-12-31T00:00:00Z",
            "2027-01-31T00:00:00Z",
        ],
    );
    assert_slots("0 0 29 2 *", None, "2026-01-01T00:00:00Z", &["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"]);
}

#[test]
fn across_the_year_boundary() {
    assert_slots("59 23 31 12 *", None, "2026-12-31T23:59:00Z", &["2027-12-31T23:59:00Z"]);
    assert_slots("0 0 1 1 *", None, "2026-12-31T23:59:59.5Z", &["2027-01-01T00:00:00Z"]);
    assert_slots("0 0 1 1 *", Some("Pacific/Auckland"), "2026-12-31T10:59:59Z", &["2026-12-31T11:00:00Z"]);
}

#[test]
fn time_zones() {
    assert_slots(
        "0 9 * * *",
        BERLIN,
        "2026-03-27T00:00:00Z",
        &["2026-03-27T09:00:00+01:00", "2026-03-28T09:00:00+01:00", "2026-03-29T09:00:00+02:00"],
    );
    assert_slots("0 12 * * *", None, "2026-07-01T00:00:00Z", &["2026-07-01T12:00:00Z"]);
    assert_slots("0 12 * * *", Some(""), "2026-07-01T00:00:00Z", &["2026-07-01T12:00:00Z"]);
    assert_slots("0 12 * * *", Some("UTC"), "2026-07-01T00:00:00Z", &["2026-07-01T12:00:00Z"]);
    // A grandfathered prefix (Kubernetes 1.22-1.28) counts when .spec.timeZone is unset.
    assert_slots("TZ=America/New_York 0 12 * * *", None, "2026-07-01T00:00:00Z", &["2026-07-01T12:00:00-04:00"]);
    assert_slots("CRON_TZ=Europe/Berlin @daily", Some(""), "2026-07-01T00:00:00Z", &["2026-07-02T00:00:00+02:00"]);
    assert_eq!(schedule("0 0 * * *", BERLIN).time_zone().iana_name(), Some("Europe/Berlin"));
    assert_eq!(schedule("0 0 * * *", None).time_zone(), &TimeZone::UTC);
}

#[test]
fn spring_forward_new_york() {
    // 2026-03-08: 02:00 EST becomes 03:00 EDT.
    assert_slots(
        "0 * * * *",
        NEW_YORK,
        "2026-03-08T00:30:00-05:00",
        &["2026-03-08T01:00:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-08T04:00:00-04:00"],
    );
    // 02:30 does not exist that day, and robfig does not run the slot at all.
    assert_slots(
        "30 2 * * *",
        NEW_YORK,
        "2026-03-07T00:00:00-05:00",
        &["2026-03-07T02:30:00-05:00", "2026-03-09T02:30:00-04:00"],
    );
    assert_slots(
        "*/30 1-3 * * *",
        NEW_YORK,
        "2026-03-08T00:00:00-05:00",
        &[
            "2026-03-08T01:00:00-05:00",
            "2026-03-08T01:30:00-05:00",
            "2026-03-08T03:00:00-04:00",
            "2026-03-08T03:30:00-04:00",
            "2026-03-09T01:00:00-04:00",
        ],
    );
}

#[test]
fn fall_back_new_york() {
    // 2026-11-01: 02:00 EDT becomes 01:00 EST, so 01:xx happens twice.
    assert_slots(
        "0 * * * *",
        NEW_YORK,
        "2026-11-01T00:30:00-04:00",
        &["2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00", "2026-11-01T02:00:00-05:00"],
    );
    // robfig walks the repeated hour twice: the 01:30 slot runs in both offsets.
    assert_slots(
        "30 1 * * *",
        NEW_YORK,
        "2026-10-31T00:00:00-04:00",
        &[
            "2026-10-31T01:30:00-04:00",
            "2026-11-01T01:30:00-04:00",
            "2026-11-01T01:30:00-05:00",
            "2026-11-02T01:30:00-05:00",
        ],
    );
}

#[test]
fn spring_forward_berlin() {
    // 2026-03-29: 02:00 CET becomes 03:00 CEST.
    assert_slots(
        "0 * * * *",
        BERLIN,
        "2026-03-29T00:30:00+01:00",
        &["2026-03-29T01:00:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-29T04:00:00+02:00"],
    );
    assert_slots(
        "30 2 * * *",
        BERLIN,
        "2026-03-28T00:00:00+01:00",
        &["2026-03-28T02:30:00+01:00", "2026-03-30T02:30:00+02:00"],
    );
}

#[test]
fn fall_back_berlin() {
    // 2026-10-25: 03:00 CEST becomes 02:00 CET, so 02:xx happens twice.
    assert_slots(
        "0 * * * *",
        BERLIN,
        "2026-10-25T01:30:00+02:00",
        &["2026-10-25T02:00:00+02:00", "2026-10-25T02:00:00+01:00", "2026-10-25T03:00:00+01:00"],
    );
    assert_slots(
        "30 2 * * *",
        BERLIN,
        "2026-10-24T00:00:00+02:00",
        &[
            "2026-10-24T02:30:00+02:00",
            "2026-10-25T02:30:00+02:00",
            "2026-10-25T02:30:00+01:00",
            "2026-10-26T02:30:00+01:00",
        ],
    );
}

#[test]
fn the_most_recent_slot() {
    let cases = [
        ("30 2 * * *", NEW_YORK, "2026-03-08T12:00:00Z", Some("2026-03-07T02:30:00-05:00")),
        ("30 1 * * *", NEW_YORK, "2026-11-01T01:00:00-05:00", Some("2026-11-01T01:30:00-04:00")),
        ("30 1 * * *", NEW_YORK, "2026-11-01T02:00:00-05:00", Some("2026-11-01T01:30:00-05:00")),
        ("*/7 * * * *", None, "2026-05-01T11:06:59.9Z", Some("2026-05-01T11:00:00Z")),
        ("*/7 * * * *", None, "2026-05-01T11:07:00Z", Some("2026-05-01T11:07:00Z")),
        ("@yearly", BERLIN, "2026-06-01T00:00:00Z", Some("2026-01-01T00:00:00+01:00")),
        // Seven years back, beyond robfig's five-year horizon.
        ("0 0 29 2 *", None, "2103-06-01T00:00:00Z", Some("2096-02-29T00:00:00Z")),
        ("0 0 30 2 *", None, "2026-06-01T00:00:00Z", None),
        ("@every 1h", None, "2026-06-01T00:00:00Z", None),
    ];
    for (spec, zone, t, expected) in cases {
        assert_eq!(schedule(spec, zone).last_at_or_before(at(t)), expected.map(at), "{spec:?} {zone:?} at {t}");
    }
}

/// The slot behind a run's: the monthly schedule's February behind March, the weekday
/// schedule's Friday behind Monday, the skipped spring-forward night, and `@every`'s interval.
#[test]
fn the_previous_slot() {
    let cases = [
        ("0 0 1 * *", None, "2027-03-01T00:00:00Z", Some("2027-02-01T00:00:00Z")),
        ("0 9 * * 1-5", None, "2026-03-09T09:00:00Z", Some("2026-03-06T09:00:00Z")),
        ("30 2 * * *", NEW_YORK, "2026-03-09T02:30:00-04:00", Some("2026-03-07T02:30:00-05:00")),
        ("30 1 * * *", NEW_YORK, "2026-11-01T01:30:00-05:00", Some("2026-11-01T01:30:00-04:00")),
        ("@every 90m", None, "2026-03-07T02:30:00Z", Some("2026-03-07T01:00:00Z")),
        ("0 0 29 2 *", None, "2028-02-29T00:00:00Z", Some("2024-02-29T00:00:00Z")),
    ];
    for (spec, zone, slot, expected) in cases {
        assert_eq!(schedule(spec, zone).previous_before(at(slot)), expected.map(at), "{spec:?} {zone:?} before {slot}");
    }
}

#[test]
fn periods() {
    let hours = |spec: &str, zone, slot: &str| schedule(spec, zone).period_at(at(slot)).map(|p| p.as_hours());
    assert_eq!(hours("0 9 * * 1-5", None, "2026-03-06T09:00:00Z"), Some(72), "Friday to Monday");
    assert_eq!(hours("0 9 * * 1-5", None, "2026-03-09T09:00:00Z"), Some(24));
    assert_eq!(hours("30 2 * * *", NEW_YORK, "2026-03-07T02:30:00-05:00"), Some(47), "the gap skips a day");
    assert_eq!(hours("0 0 * * *", NEW_YORK, "2026-03-08T00:00:00-05:00"), Some(23));
    assert_eq!(hours("30 1 * * *", NEW_YORK, "2026-11-01T01:30:00-04:00"), Some(1), "the repeated hour");
    assert_eq!(hours("30 1 * * *", NEW_YORK, "2026-11-01T01:30:00-05:00"), Some(24));
    assert_eq!(hours("@every 90m", None, "2026-03-07T02:30:00Z"), Some(1));
    assert_eq!(schedule("@every 90m", None).period_at(at("2026-03-07T02:30:00Z")), Some(SignedDuration::from_mins(90)));
    assert_eq!(hours("0 0 30 2 *", None, "2026-03-07T02:30:00Z"), None);
}

#[test]
fn robfig_searches_five_years_ahead_at_most() {
    let leap_day = schedule("0 0 29 2 *", None);
    assert_eq!(leap_day.next_after(at("2097-03-01T00:00:00Z")), None, "2104 is past 2097 + 5");
    assert_eq!(leap_day.next_after(at("2099-01-01T00:00:00Z")), Some(at("2104-02-29T00:00:00Z")));
    assert_eq!(schedule("0 0 30 2 *", None).next_after(at("2026-01-01T00:00:00Z")), None);
    assert_eq!(schedule("0 0 , * *", None).next_after(at("2026-01-01T00:00:00Z")), None, "a field of commas");
}

#[test]
fn a_slot_that_would_not_advance_ends_the_search() {
    // At Chatham's fall-back robfig's Next returns this very instant again, which would spin
    // the controller's loop; cronpush reports no next slot instead.
    let t = at("2022-04-03T02:54:00+12:45");
    assert_eq!(schedule("54 3 * * 0,5,6", Some("Pacific/Chatham")).next_after(t), None);
}

#[test]
fn every() {
    let every = schedule("@every 1h30m", None);
    assert_eq!(every.next_after(at("2026-03-08T06:30:15.5Z")), Some(at("2026-03-08T08:00:15Z")));
    assert_eq!(every.last_at_or_before(at("2026-03-08T06:30:15Z")), None);
    assert_eq!(schedule("@every 0s", None).next_after(at("2026-03-08T06:30:15Z")), Some(at("2026-03-08T06:30:16Z")));
}

/// Spellings Kubernetes accepts, each meaning the same slots as a plain one.
#[test]
fn accepted_spellings() {
    let same = [
        ("? ? ? ? ?", None, "* * * * *", None),
        ("5/15 * * * *", None, "5,20,35,50 * * * *", None),
        ("*-30 * * * *", None, "* * * * *", None),
        ("1,,2, * * * *", None, "1,2 * * * *", None),
        ("+5 007 * * *", None, "5 7 * * *", None),
        ("0 0 * jan-MAR Mon-fri", None, "0 0 * 1-3 1-5", None),
        ("0 0 * * FR\u{130}", None, "0 0 * * 5", None),
        ("0 0 */1 * 1", None, "0 0 * * 1", None),
        ("@midnight", None, "0 0 * * *", None),
        ("@daily", None, "0 0 * * *", None),
        ("@annually", None, "0 0 1 1 *", None),
        ("@yearly", None, "0 0 1 1 *", None),
        ("@monthly", None, "0 0 1 * *", None),
        ("@weekly", None, "0 0 * * 0", None),
        ("@hourly", None, "0 * * * *", None),
        ("  0\t3 *\n* * ", None, "0 3 * * *", None),
        ("TZ=Europe/Berlin 0 3 * * *", None, "0 3 * * *", BERLIN),
        ("CRON_TZ=Etc/UTC 0 3 * * *", None, "0 3 * * *", None),
        ("TZ= 0 3 * * *", None, "0 3 * * *", None),
    ];
    let from = "2026-01-01T00:00:00Z";
    for (spec, zone, plain, plain_zone) in same {
        assert_eq!(slots(spec, zone, from, 30), slots(plain, plain_zone, from, 30), "{spec:?}");
    }
}

#[test]
fn refused_schedules() {
    let field = |field, part: &str, problem| ScheduleError::Field { field, part: part.into(), problem };
    let cases = [
        ("", None, ScheduleError::Empty),
        ("   ", None, ScheduleError::FieldCount { found: 0, spec: "   ".into() }),
        ("0 0 * * * *", None, ScheduleError::FieldCount { found: 6, spec: "0 0 * * * *".into() }),
        (" @daily", None, ScheduleError::FieldCount { found: 1, spec: " @daily".into() }),
        ("0 0 * * 7", None, field(Field::DayOfWeek, "7", FieldProblem::SundayAsSeven)),
        ("0 0 * * 1-7", None, field(Field::DayOfWeek, "1-7", FieldProblem::SundayAsSeven)),
        ("60 * * * *", None, field(Field::Minute, "60", FieldProblem::AboveMaximum { value: 60, max: 59 })),
        ("* 24 * * *", None, field(Field::Hour, "24", FieldProblem::AboveMaximum { value: 24, max: 23 })),
        ("* * 0 * *", None, field(Field::DayOfMonth, "0", FieldProblem::BelowMinimum { value: 0, min: 1 })),
        ("* * 32 * *", None, field(Field::DayOfMonth, "32", FieldProblem::AboveMaximum { value: 32, max: 31 })),
        ("* * * 13 *", None, field(Field::Month, "13", FieldProblem::AboveMaximum { value: 13, max: 12 })),
        ("* * * * MON-SUN", None, field(Field::DayOfWeek, "MON-SUN", FieldProblem::ReversedRange { start: 1, end: 0 })),
        ("*/0 * * * *", None, field(Field::Minute, "*/0", FieldProblem::ZeroStep)),
        ("0 0 * * SUNDAY", None, field(Field::DayOfWeek, "SUNDAY", FieldProblem::NotANumber("SUNDAY".into()))),
        (
            "0 0 L * *",
            None,
            field(Field::DayOfMonth, "L", FieldProblem::Unsupported { token: "L".into(), feature: "L (last day)" }),
        ),
        (
            "0 0 15W * *",
            None,
            field(
                Field::DayOfMonth,
                "15W",
                FieldProblem::Unsupported { token: "15W".into(), feature: "W (nearest weekday)" },
            ),
        ),
        (
            "0 0 * * 1#2",
            None,
            field(
                Field::DayOfWeek,
                "1#2",
                FieldProblem::Unsupported { token: "1#2".into(), feature: "# (nth weekday of the month)" },
            ),
        ),
        ("@DAILY", None, ScheduleError::UnknownMacro("@DAILY".into())),
        ("@daily ", None, ScheduleError::UnknownMacro("@daily ".into())),
        ("@reboot", None, ScheduleError::UnknownMacro("@reboot".into())),
        ("@every", None, ScheduleError::UnknownMacro("@every".into())),
        ("0 * * * *", Some("Mars/Olympus_Mons"), ScheduleError::UnknownTimeZone("Mars/Olympus_Mons".into())),
        ("0 * * * *", Some("america/new_york"), ScheduleError::UnknownTimeZone("america/new_york".into())),
        ("0 * * * *", Some("Local"), ScheduleError::LocalTimeZone("Local".into())),
        ("TZ=Nowhere 0 * * * *", None, ScheduleError::UnknownTimeZone("Nowhere".into())),
        ("CRON_TZ=Local 0 * * * *", None, ScheduleError::LocalTimeZone("Local".into())),
        ("TZ=UTC", None, ScheduleError::TimeZonePrefix("TZ=UTC".into())),
        (
            "TZ=UTC 0 * * * *",
            BERLIN,
            ScheduleError::TwoTimeZones { schedule: "TZ=UTC 0 * * * *".into(), time_zone: "Europe/Berlin".into() },
        ),
    ];
    for (spec, zone, expected) in cases {
        assert_eq!(Schedule::parse(spec, zone).unwrap_err(), expected, "{spec:?} {zone:?}");
    }
    assert!(matches!(Schedule::parse("@every 5 minutes", None), Err(ScheduleError::EveryDuration { .. })));
}

#[test]
fn messages_name_the_field_and_the_value() {
    let message = |spec| Schedule::parse(spec, None).unwrap_err().to_string();
    assert_eq!(
        message("0 0 * * 7"),
        "day-of-week field \"7\": 7 is not a day of the week here: the CronJob controller counts 0-6 and Sunday \
         is 0 (allowed: 0-6 or SUN-SAT, Sunday is 0)"
    );
    assert_eq!(message("0 61 * * *"), "hour field \"61\": 61 is above the maximum 23 (allowed: 0-23)");
    assert!(message("0 0 0 * * *").contains("no seconds field"), "{}", message("0 0 0 * * *"));
    assert!(message("0 0 L * *").contains("day-of-month field \"L\""));
    assert!(message("@every 5d").contains("\"5d\""));
}

#[test]
fn the_scheduled_time_of_a_run() {
    assert_eq!(scheduled_time_from_job_name("backup", "backup-29542410"), Some(at("2026-03-03T13:30:00Z")));
    assert_eq!(scheduled_time_from_job_name("backup", "backup-manual-1"), None);
    assert_eq!(scheduled_time_from_job_name("backup", "nightly-backup-29542410"), None);
    assert_eq!(
        parse_scheduled_timestamp_annotation("2026-11-01T01:30:00-05:00"),
        Ok(at("2026-11-01T06:30:00Z")),
        "the controller writes the time in the CronJob's zone"
    );
    assert!(parse_scheduled_timestamp_annotation("yesterday").is_err());
}

// ---------------------------------------------------------------------------------------------
// Properties.

/// One generated field: its text and the values and star bit robfig reads from it.
#[derive(Debug, Clone)]
struct FieldModel {
    text: String,
    values: BTreeSet<u32>,
    star: bool,
}

const BOUNDS: [(u32, u32); 5] = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 6)];
const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

fn name_or_number(field: usize, value: u32, use_name: bool) -> String {
    match field {
        3 if use_name => MONTHS[value as usize - 1].to_uppercase(),
        4 if use_name => WEEKDAYS[value as usize].to_string(),
        _ => value.to_string(),
    }
}

/// One comma-separated part: `N`, `N-M`, `N-M/S`, `N/S`.
fn part(field: usize) -> impl Strategy<Value = (String, BTreeSet<u32>)> {
    let (min, max) = BOUNDS[field];
    (min..=max, min..=max, 1..=max.max(2), 0..4, any::<bool>()).prop_map(move |(a, b, step, form, use_name)| {
        let (low, high) = (a.min(b), a.max(b));
        let text = |value| name_or_number(field, value, use_name);
        match form {
            0 => (text(a), BTreeSet::from([a])),
            1 => (format!("{}-{}", text(low), text(high)), (low..=high).collect()),
            2 => (format!("{}-{}/{step}", text(low), text(high)), (low..=high).step_by(step as usize).collect()),
            _ => (format!("{}/{step}", text(a)), (a..=max).step_by(step as usize).collect()),
        }
    })
}

fn field_model(field: usize, star_weight: u32) -> impl Strategy<Value = FieldModel> {
    let (min, max) = BOUNDS[field];
    let all: BTreeSet<u32> = (min..=max).collect();
    let star = {
        let all = all.clone();
        prop_oneof![Just("*"), Just("?"), Just("*/1")].prop_map(move |text| FieldModel {
            text: text.into(),
            values: all.clone(),
            star: true,
        })
    };
    let stepped = (2..=max).prop_map(move |step| FieldModel {
        text: format!("*/{step}"),
        values: (min..=max).step_by(step as usize).collect(),
        star: false,
    });
    let list = proptest::collection::vec(part(field), 1..=3).prop_map(|parts| FieldModel {
        text: parts.iter().map(|(text, _)| text.as_str()).collect::<Vec<_>>().join(","),
        values: parts.into_iter().flat_map(|(_, values)| values).collect(),
        star: false,
    });
    prop_oneof![star_weight => star, 1 => stepped, 2 => list]
}

/// A five-field schedule and its model. Day and month fields are `*` more often, so that slots
/// come often enough for a minute-by-minute search to find them.
fn spec_model() -> impl Strategy<Value = [FieldModel; 5]> {
    (field_model(0, 1), field_model(1, 2), field_model(2, 4), field_model(3, 6), field_model(4, 4))
        .prop_map(|(minute, hour, day, month, weekday)| [minute, hour, day, month, weekday])
}

fn text_of(model: &[FieldModel; 5]) -> String {
    model.iter().map(|field| field.text.as_str()).collect::<Vec<_>>().join(" ")
}

/// robfig's slots, stated independently of its algorithm: every minute whose wall clock reading
/// matches, with the day rule of `dayMatches`. True for zones whose clocks never jump at
/// midnight, such as these.
fn model_matches(model: &[FieldModel; 5], zone: &TimeZone, t: Timestamp) -> bool {
    let wall = zone.to_datetime(t);
    let has = |field: usize, value: i8| model[field].values.contains(&(value as u32));
    let (by_date, by_weekday) = (has(2, wall.day()), has(4, wall.weekday().to_sunday_zero_offset()));
    let day = if model[2].star || model[4].star { by_date && by_weekday } else { by_date || by_weekday };
    wall.second() == 0 && has(0, wall.minute()) && has(1, wall.hour()) && has(3, wall.month()) && day
}

/// The first matching minute after `t` within `limit` minutes.
fn brute_force_next(model: &[FieldModel; 5], zone: &TimeZone, t: Timestamp, limit: i64) -> Option<Timestamp> {
    let minute = SignedDuration::from_mins(1);
    let floor = Timestamp::from_second(t.as_second().div_euclid(60) * 60).ok()?;
    (1..=limit)
        .map(|n| floor + minute * n as i32)
        .find(|candidate| *candidate > t && model_matches(model, zone, *candidate))
}

fn zone_name() -> impl Strategy<Value = Option<&'static str>> {
    prop_oneof![Just(None), Just(NEW_YORK), Just(BERLIN)]
}

/// Instants between 2000 and 2100, a quarter of them in the weeks around a daylight-saving change.
fn instant() -> impl Strategy<Value = Timestamp> {
    let anywhere = (946_684_800_i64..4_102_444_800, 0..1_000_000_000_i32);
    let near_change = (
        prop_oneof![Just(1_772_953_200_i64), Just(1_793_512_800), Just(1_774_746_000), Just(1_792_890_000)],
        -3 * 86_400..3 * 86_400_i64,
    )
        .prop_map(|(change, offset)| (change + offset, 0));
    prop_oneof![3 => anywhere, 1 => near_change]
        .prop_map(|(second, nanosecond)| Timestamp::new(second, nanosecond).unwrap())
}

proptest! {
    #[test]
    fn slots_are_consistent(model in spec_model(), zone in zone_name(), t in instant()) {
        let schedule = Schedule::parse(&text_of(&model), zone).unwrap();
        let slots: Vec<Timestamp> = schedule.slots_after(t).take(5).collect();
        if let Some(first) = slots.first() {
            prop_assert!(*first > t);
            prop_assert_eq!(schedule.last_at_or_before(*first), Some(*first));
        }
        for pair in slots.windows(2) {
            prop_assert!(pair[0] < pair[1], "{:?}", slots);
        }
        for pair in slots.windows(2) {
            prop_assert_eq!(schedule.previous_before(pair[1]), Some(pair[0]));
        }
        if let Some(last) = schedule.last_at_or_before(t) {
            prop_assert!(last <= t);
            prop_assert_eq!(schedule.next_after(last), schedule.next_after(t), "no slot between {} and {}", last, t);
        }
    }

    #[test]
    fn slots_are_the_matching_wall_clock_minutes(model in spec_model(), zone in zone_name(), t in instant()) {
        let schedule = Schedule::parse(&text_of(&model), zone).unwrap();
        let expected = brute_force_next(&model, schedule.time_zone(), t, 3 * 24 * 60);
        prop_assume!(expected.is_some());
        prop_assert_eq!(schedule.next_after(t), expected, "{}", text_of(&model));
    }

    #[test]
    fn macros_are_consistent(name in prop_oneof![Just("@yearly"), Just("@monthly"), Just("@weekly"), Just("@daily"), Just("@hourly")], zone in zone_name(), t in instant()) {
        let schedule = Schedule::parse(name, zone).unwrap();
        let next = schedule.next_after(t).unwrap();
        prop_assert!(next > t);
        prop_assert_eq!(schedule.last_at_or_before(next), Some(next));
    }

    #[test]
    fn every_is_a_constant_delay(seconds in 1..100_000_i64, t in instant()) {
        let schedule = Schedule::parse(&format!("@every {seconds}s"), None).unwrap();
        let next = schedule.next_after(t).unwrap();
        // Instants after 1970 carry no negative fraction: `as_second` is the whole second before.
        prop_assert_eq!(next, Timestamp::from_second(t.as_second() + seconds).unwrap());
        prop_assert_eq!(schedule.period_at(next), Some(SignedDuration::from_secs(seconds)));
    }

    #[test]
    fn parse_never_panics(spec in "[ *?,/0-9A-Za-z@#=_+.\t-]{0,30}", zone in proptest::option::of("[A-Za-z/_]{0,20}")) {
        if let Ok(schedule) = Schedule::parse(&spec, zone.as_deref()) {
            let t = Timestamp::from_second(1_772_953_200).unwrap();
            let _ = (schedule.next_after(t), schedule.last_at_or_before(t), schedule.period_at(t));
        }
    }

    #[test]
    fn nothing_panics_on_arbitrary_strings(text in any::<String>(), other in any::<String>()) {
        let _ = Schedule::parse(&text, Some(&other));
        let _ = Schedule::parse(&text, None);
        let _ = scheduled_time_from_job_name(&other, &text);
        let _ = parse_scheduled_timestamp_annotation(&text);
    }
}
