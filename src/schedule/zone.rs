//! Time zones as the CronJob controller resolves them: `.spec.timeZone`, or a `TZ=`/`CRON_TZ=`
//! prefix that robfig/cron's `Parse` reads off the schedule.

use jiff::tz::{TimeZone, TimeZoneDatabase};

use super::error::ScheduleError;

/// `.spec.timeZone`: `None` when unset (`None` or empty). Validation (`validateTimeZone`)
/// refuses `Local` in any case, then the name must load.
pub(super) fn field_zone(name: Option<&str>) -> Result<Option<TimeZone>, ScheduleError> {
    match name {
        None | Some("") => Ok(None),
        Some(name) if name.eq_ignore_ascii_case("Local") => Err(ScheduleError::LocalTimeZone(name.to_string())),
        Some(name) => load_location(name).map(Some),
    }
}

/// Go's `time.LoadLocation` against the IANA database bundled into the binary. `""` and `UTC`
/// are UTC without a lookup; `Local` would be the kube-controller-manager's zone. Go finds zone
/// files by exact name, while jiff ignores case, so the spelling is checked too.
pub(super) fn load_location(name: &str) -> Result<TimeZone, ScheduleError> {
    match name {
        "" | "UTC" => Ok(TimeZone::UTC),
        "Local" => Err(ScheduleError::LocalTimeZone(name.to_string())),
        _ => TimeZoneDatabase::bundled()
            .get(name)
            .ok()
            .filter(|zone| zone.iana_name() == Some(name))
            .ok_or_else(|| ScheduleError::UnknownTimeZone(name.to_string())),
    }
}

/// robfig's `Parse`: a schedule starting `TZ=` or `CRON_TZ=` names its zone up to the first
/// space, and the rest, trimmed, is the schedule. `Some((zone name, schedule))` when there is a
/// prefix. Without a space robfig slices out of bounds and panics; that is an error here.
pub(super) fn split_prefix(spec: &str) -> Result<Option<(&str, &str)>, ScheduleError> {
    let Some(rest) = spec.strip_prefix("TZ=").or_else(|| spec.strip_prefix("CRON_TZ=")) else {
        return Ok(None);
    };
    match rest.split_once(' ') {
        Some((name, schedule)) => Ok(Some((name, schedule.trim()))),
        None => Err(ScheduleError::TimeZonePrefix(spec.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_names_are_exact() {
        assert_eq!(load_location("America/New_York").unwrap().iana_name(), Some("America/New_York"));
        assert_eq!(load_location("Etc/UTC").unwrap().iana_name(), Some("Etc/UTC"));
        assert_eq!(load_location("US/Eastern").unwrap().iana_name(), Some("US/Eastern"));
        assert_eq!(load_location("UTC").unwrap(), TimeZone::UTC);
        assert_eq!(load_location("").unwrap(), TimeZone::UTC);
        for name in ["america/new_york", "utc", "Mars/Olympus_Mons", "../etc/passwd", "EST5EDT "] {
            assert_eq!(load_location(name).unwrap_err(), ScheduleError::UnknownTimeZone(name.into()), "{name}");
        }
        assert!(matches!(load_location("Local"), Err(ScheduleError::LocalTimeZone(_))));
    }

    #[test]
    fn an_unset_field_is_none_and_local_is_refused() {
        assert_eq!(field_zone(None), Ok(None));
        assert_eq!(field_zone(Some("")), Ok(None));
        assert!(matches!(field_zone(Some("local")), Err(ScheduleError::LocalTimeZone(_))));
        assert!(field_zone(Some("Europe/Berlin")).unwrap().is_some());
    }

    #[test]
    fn prefixes_end_at_the_first_space() {
        assert_eq!(split_prefix("0 * * * *"), Ok(None));
        assert_eq!(split_prefix("TZ=Europe/Berlin 0 3 * * *"), Ok(Some(("Europe/Berlin", "0 3 * * *"))));
        assert_eq!(split_prefix("CRON_TZ=UTC   @daily  "), Ok(Some(("UTC", "@daily"))));
        assert_eq!(split_prefix("TZ= 0 * * * *"), Ok(Some(("", "0 * * * *"))));
        assert_eq!(split_prefix(" TZ=UTC 0 * * * *"), Ok(None), "only at the very start");
        assert_eq!(split_prefix("tz=UTC 0 * * * *"), Ok(None), "upper case only");
        assert!(matches!(split_prefix("TZ=UTC"), Err(ScheduleError::TimeZonePrefix(_))));
        assert_eq!(split_prefix("TZ=UTC\t0 * * * *"), Ok(Some(("UTC\t0", "* * * *"))), "a space, not a tab");
    }
}
