//! `@every <duration>`: robfig's `ConstantDelaySchedule` (constantdelay.go). The API server
//! accepts it for CronJobs, since validation is nothing but `cron.ParseStandard`, and the
//! controller runs it (kubernetes#104012 is about `@every 6h` CronJobs); the Kubernetes
//! documentation just never mentions it.

use jiff::{SignedDuration, Timestamp};

use super::error::ScheduleError;
use super::go_time::{self, SECOND};
use crate::go_duration;

/// The delay `Every` keeps: whole seconds, at least one (`@every 0s` and `@every -5m` run every
/// second, as robfig rounds them up).
pub(super) fn parse(text: &str) -> Result<SignedDuration, ScheduleError> {
    let nanos =
        go_duration::parse(text).map_err(|reason| ScheduleError::EveryDuration { value: text.to_string(), reason })?;
    let seconds = nanos.div_euclid(1_000_000_000).max(1);
    Ok(SignedDuration::from_secs(seconds))
}

/// robfig's `ConstantDelaySchedule.Next`: the delay after `t`, rounded down to the second.
pub(super) fn next(delay: SignedDuration, after: Timestamp) -> Option<Timestamp> {
    go_time::truncate(after, SECOND)?.checked_add(delay).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_keeps_whole_seconds_and_at_least_one() {
        let seconds = |text| parse(text).map(|delay| delay.as_secs());
        assert_eq!(seconds("6h"), Ok(21_600));
        assert_eq!(seconds("1.9s"), Ok(1));
        assert_eq!(seconds("0s"), Ok(1));
        assert_eq!(seconds("-5m"), Ok(1));
        assert_eq!(seconds("90m"), Ok(5_400));
        assert!(matches!(parse("5 minutes"), Err(ScheduleError::EveryDuration { .. })));
    }

    #[test]
    fn every_counts_from_the_second_before() {
        let t: Timestamp = "2026-03-08T06:30:15.75Z".parse().unwrap();
        let delay = SignedDuration::from_mins(5);
        assert_eq!(next(delay, t), Some("2026-03-08T06:35:15Z".parse().unwrap()));
    }
}
