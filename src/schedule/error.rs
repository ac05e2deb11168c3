//! Why a schedule, a time zone or a scheduled timestamp was refused.

use std::fmt;

/// One of the five fields of a CronJob schedule, in the order they are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
}

impl Field {
    /// What the field accepts, for error messages.
    fn allowed(self) -> &'static str {
        match self {
            Field::Minute => "0-59",
            Field::Hour => "0-23",
            Field::DayOfMonth => "1-31",
            Field::Month => "1-12 or JAN-DEC",
            Field::DayOfWeek => "0-6 or SUN-SAT, Sunday is 0",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Minute => "minute",
            Field::Hour => "hour",
            Field::DayOfMonth => "day-of-month",
            Field::Month => "month",
            Field::DayOfWeek => "day-of-week",
        })
    }
}

/// What is wrong with one comma-separated part of a field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldProblem {
    #[error("{0:?} is not a number")]
    NotANumber(String),
    #[error("{token:?} uses {feature}, which Kubernetes CronJobs do not support")]
    Unsupported { token: String, feature: &'static str },
    #[error("negative number {0}")]
    Negative(i64),
    #[error("{value} is below the minimum {min}")]
    BelowMinimum { value: u64, min: u64 },
    #[error("{value} is above the maximum {max}")]
    AboveMaximum { value: u64, max: u64 },
    /// Vixie cron reads 7 as Sunday; robfig/cron, and so the CronJob controller, does not.
    #[error("7 is not a day of the week here: the CronJob controller counts 0-6 and Sunday is 0")]
    SundayAsSeven,
    #[error("the range starts at {start}, after its end {end}")]
    ReversedRange { start: u64, end: u64 },
    #[error("the step must be a positive number")]
    ZeroStep,
    #[error("too many hyphens")]
    TooManyHyphens,
    #[error("too many slashes")]
    TooManySlashes,
}

/// Why [`Schedule::parse`](super::Schedule::parse) or
/// [`parse_scheduled_timestamp_annotation`](super::parse_scheduled_timestamp_annotation) refused
/// its input. Every message names the offending value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("the schedule is empty")]
    Empty,
    #[error(
        "expected exactly 5 fields (minute hour day-of-month month day-of-week), found {found} in {spec:?}{hint}",
        hint = if *found == 6 { "; Kubernetes CronJobs have no seconds field" } else { "" }
    )]
    FieldCount { found: usize, spec: String },
    #[error("{field} field {part:?}: {problem} (allowed: {allowed})", allowed = field.allowed())]
    Field { field: Field, part: String, problem: FieldProblem },
    #[error(
        "unknown macro {0:?}: the CronJob controller knows @yearly, @annually, @monthly, @weekly, @daily, \
         @midnight, @hourly and @every <duration>, in lower case"
    )]
    UnknownMacro(String),
    #[error("@every {value:?}: {reason}")]
    EveryDuration { value: String, reason: &'static str },
    #[error("unknown time zone {0:?} (an IANA name such as Europe/Berlin, with that exact spelling)")]
    UnknownTimeZone(String),
    #[error(
        "time zone {0:?} means the kube-controller-manager's own zone, which cronpush cannot know: \
         name an IANA zone"
    )]
    LocalTimeZone(String),
    #[error("{0:?}: a TZ= or CRON_TZ= prefix must be followed by a space and the schedule")]
    TimeZonePrefix(String),
    #[error(
        "schedule {schedule:?} names its own time zone and the time zone {time_zone:?} is set too; \
         Kubernetes refuses that combination"
    )]
    TwoTimeZones { schedule: String, time_zone: String },
    #[error("scheduled timestamp {value:?} is not an RFC 3339 timestamp such as 2026-03-08T02:30:00Z: {reason}")]
    ScheduledTimestamp { value: String, reason: String },
}
