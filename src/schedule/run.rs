//! The scheduled time of a run, as the CronJob controller records it on the Job: in its name,
//! `<cronjob>-<scheduled Unix time / 60>` (cronjob_controllerv2.go `getJobName`,
//! `getTimeHashInMinutes`), and in the annotation
//! [`SCHEDULED_TIMESTAMP_ANNOTATION`](crate::contract::SCHEDULED_TIMESTAMP_ANNOTATION), written as
//! `scheduledTime.In(zone).Format(time.RFC3339)` (utils.go `getJobFromTemplate2`).

use jiff::Timestamp;

use super::error::ScheduleError;

/// No controller wrote a minute count before this: Kubernetes 1.20 (2020-12-08) introduced the
/// controller that names Jobs by minutes; the one before it used Unix seconds. The bound also
/// keeps hand-made names such as `backup-2024` or `backup-20260101` from reading as times.
const EARLIEST_SCHEDULED_TIME: Timestamp = Timestamp::constant(1_607_385_600, 0);
/// Nor will one write a count past this; a seconds-based name read as minutes lands in the
/// fifth millennium.
const LATEST_SCHEDULED_TIME: Timestamp = Timestamp::constant(4_102_444_800, 0);

/// The scheduled time a controller-made Job's name carries; `None` for any other name: a prefix
/// other than exactly `<cronjob>-`, a suffix that is not all ASCII digits or has a leading zero
/// (the controller writes `%d`), or a time outside what a controller can have written.
pub fn scheduled_time_from_job_name(cronjob: &str, job: &str) -> Option<Timestamp> {
    let minutes = job.strip_prefix(cronjob)?.strip_prefix('-')?;
    if cronjob.is_empty() || minutes.starts_with('0') || !minutes.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let seconds = minutes.parse::<i64>().ok()?.checked_mul(60)?;
    let scheduled = Timestamp::from_second(seconds).ok()?;
    (EARLIEST_SCHEDULED_TIME..LATEST_SCHEDULED_TIME).contains(&scheduled).then_some(scheduled)
}

/// The value of `batch.kubernetes.io/cronjob-scheduled-timestamp`: RFC 3339 with a `Z` or a
/// numeric offset, e.g. `2026-03-08T01:30:00-05:00`, optionally with fractional seconds.
pub fn parse_scheduled_timestamp_annotation(value: &str) -> Result<Timestamp, ScheduleError> {
    let refuse = |reason: String| ScheduleError::ScheduledTimestamp { value: value.to_string(), reason };
    if !looks_like_rfc3339(value) {
        return Err(refuse("expected YYYY-MM-DDThh:mm:ss followed by Z or an offset such as -05:00".into()));
    }
    value.parse().map_err(|error: jiff::Error| refuse(error.to_string()))
}

/// The shape Go's `time.RFC3339` layout requires; jiff's own parser also takes forms such as a
/// space for the `T` or a `[zone]` suffix, which no controller writes.
fn looks_like_rfc3339(value: &str) -> bool {
    let bytes = value.as_bytes();
    let date_and_time = bytes.len() >= 20
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes[10] == b'T'
        && bytes[13] == b':'
        && bytes[16] == b':';
    let offset = value.ends_with('Z')
        || (bytes.len() >= 25 && matches!(bytes[bytes.len() - 6], b'+' | b'-') && bytes[bytes.len() - 3] == b':');
    date_and_time && offset && value.is_ascii()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn job_names_carry_unix_minutes() {
        // 29_542_410 minutes = 2026-03-03T13:30:00Z.
        assert_eq!(scheduled_time_from_job_name("backup", "backup-29542410"), Some(at("2026-03-03T13:30:00Z")));
        assert_eq!(scheduled_time_from_job_name("db-backup", "db-backup-29542410"), Some(at("2026-03-03T13:30:00Z")));
        assert_eq!(
            scheduled_time_from_job_name("a", "a-26789760"),
            Some(at("2020-12-08T00:00:00Z")),
            "the first day of minute names"
        );
    }

    #[test]
    fn other_names_carry_nothing() {
        let refused = [
            ("backup", "backup-manual-29544210"),
            ("backup", "db-backup-29544210"),
            ("db", "db-backup-29544210"),
            ("backup", "backup29544210"),
            ("backup", "backup-"),
            ("backup", "backup-029544210"),
            ("backup", "backup-+29544210"),
            ("backup", "backup-29544210x"),
            ("backup", "backup-2954421\u{0660}"),
            ("backup", "backup-2024"),
            ("backup", "backup-20260101"),
            ("backup", "backup-1581724860"),
            ("backup", "backup-99999999999999999999999"),
            ("", "-29544210"),
            ("backup", "backup-26789759"),
        ];
        for (cronjob, job) in refused {
            assert_eq!(scheduled_time_from_job_name(cronjob, job), None, "{cronjob} {job}");
        }
    }

    #[test]
    fn annotations_are_rfc3339() {
        let cases = [
            ("2026-03-08T01:30:00-05:00", "2026-03-08T06:30:00Z"),
            ("2026-03-08T06:30:00Z", "2026-03-08T06:30:00Z"),
            ("2026-10-25T02:30:00+01:00", "2026-10-25T01:30:00Z"),
            ("2026-03-08T06:30:00.5Z", "2026-03-08T06:30:00.5Z"),
        ];
        for (value, expected) in cases {
            assert_eq!(parse_scheduled_timestamp_annotation(value), Ok(at(expected)), "{value}");
        }
        for value in [
            "",
            "2026-03-08",
            "2026-03-08 06:30:00Z",
            "2026-03-08T06:30:00",
            "2026-03-08T06:30:00-0500",
            "2026-03-08T06:30:00Z[UTC]",
            "2026-13-08T06:30:00Z",
            "2026-02-30T06:30:00Z",
            "1741415400",
            "2026-03-08T06:30:00\u{ff3a}",
        ] {
            assert!(
                matches!(parse_scheduled_timestamp_annotation(value), Err(ScheduleError::ScheduledTimestamp { .. })),
                "{value:?}"
            );
        }
    }
}
