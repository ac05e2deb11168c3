//! robfig/cron v3 `SpecSchedule.Next` (spec.go), which the CronJob controller calls for every
//! slot it considers, ported step by step. Its daylight-saving behaviour comes from how it moves:
//! months and days by wall clock (`AddDate`), hours and minutes on the absolute time line
//! (`Add`). So a wall clock time in a spring-forward gap is never reached and a repeated hour is
//! walked twice.

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use super::fields::Fields;
use super::go_time::{self, HOUR, MINUTE, SECOND};

/// robfig gives up when the search passes the starting year plus five.
const SEARCH_YEARS: i16 = 5;

/// A ceiling on the walk's steps, so that no time zone can make it spin. A search that can
/// succeed needs a few thousand at most: about 2,200 days in six years, 24 hours, 60 minutes.
const MAX_STEPS: u32 = 100_000;

/// The first slot after `after`, or `None` when robfig would return Go's zero time.
pub(super) fn next(fields: &Fields, tz: &TimeZone, after: Timestamp) -> Option<Timestamp> {
    if !fields.can_match() {
        return None;
    }
    // "Start at the earliest possible time (the upcoming second)."
    let start = go_time::truncate(after, SECOND)?.checked_add(SECOND).ok()?;
    let mut walk =
        Walk { fields, tz, t: start, wall_clock: tz.to_datetime(start), added: false, steps_left: MAX_STEPS };
    let year_limit = walk.wall_clock.year() + SEARCH_YEARS;
    loop {
        if walk.wall_clock.year() > year_limit {
            return None;
        }
        if !walk.pass()? {
            return Some(walk.t);
        }
    }
}

/// The state of one search: robfig's `t` (with its wall clock reading) and `added` ("a field
/// has been incremented").
struct Walk<'a> {
    fields: &'a Fields,
    tz: &'a TimeZone,
    t: Timestamp,
    wall_clock: DateTime,
    added: bool,
    steps_left: u32,
}

impl Walk<'_> {
    /// One pass from robfig's `WRAP` label, field by field from the month down; `Some(true)`
    /// when a field wrapped around and the pass must start again, `Some(false)` when `t` is a
    /// slot, `None` when the walk failed.
    fn pass(&mut self) -> Option<bool> {
        Some(self.months()? || self.days()? || self.hours()? || self.minutes()? || self.seconds()?)
    }

    fn months(&mut self) -> Option<bool> {
        while !self.fields.month.contains(self.wall_clock.month()) {
            self.step()?;
            self.reset_once(|walk| walk.midnight(walk.wall_clock.date().first_of_month()))?;
            self.move_to(go_time::add_date(self.tz, self.wall_clock, 1, 0)?);
            if self.wall_clock.month() == 1 {
                return Some(true);
            }
        }
        Some(false)
    }

    fn days(&mut self) -> Option<bool> {
        while !self.day_matches() {
            self.step()?;
            self.reset_once(|walk| walk.midnight(walk.wall_clock.date()))?;
            self.move_to(go_time::add_date(self.tz, self.wall_clock, 0, 1)?);
            // robfig: "Notice if the hour is no longer midnight due to DST. Add an hour if it's
            // 23, subtract an hour if it's 1."
            let hour = i64::from(self.wall_clock.hour());
            if hour != 0 {
                let shift = if hour > 12 { 24 - hour } else { -hour };
                self.move_to(self.t.checked_add(SignedDuration::from_hours(shift)).ok()?);
            }
            if self.wall_clock.day() == 1 {
                return Some(true);
            }
        }
        Some(false)
    }

    fn hours(&mut self) -> Option<bool> {
        while !self.fields.hour.contains(self.wall_clock.hour()) {
            self.step()?;
            self.reset_once(|walk| {
                let hour_start = walk.wall_clock.with().minute(0).second(0).subsec_nanosecond(0).build().ok()?;
                go_time::date(walk.tz, hour_start)
            })?;
            self.move_to(self.t.checked_add(HOUR).ok()?);
            if self.wall_clock.hour() == 0 {
                return Some(true);
            }
        }
        Some(false)
    }

    fn minutes(&mut self) -> Option<bool> {
        while !self.fields.minute.contains(self.wall_clock.minute()) {
            self.step()?;
            self.reset_once(|walk| go_time::truncate(walk.t, MINUTE))?;
            self.move_to(self.t.checked_add(MINUTE).ok()?);
            if self.wall_clock.minute() == 0 {
                return Some(true);
            }
        }
        Some(false)
    }

    /// The seconds field of a five-field schedule allows only 0.
    fn seconds(&mut self) -> Option<bool> {
        while self.wall_clock.second() != 0 {
            self.step()?;
            self.reset_once(|walk| go_time::truncate(walk.t, SECOND))?;
            self.move_to(self.t.checked_add(SECOND).ok()?);
            if self.wall_clock.second() == 0 {
                return Some(true);
            }
        }
        Some(false)
    }

    fn day_matches(&self) -> bool {
        let wall_clock = self.wall_clock;
        self.fields.day_matches(wall_clock.day(), wall_clock.weekday().to_sunday_zero_offset())
    }

    /// The first time any field moves, robfig first resets the fields below it ("added").
    fn reset_once(&mut self, reset: impl FnOnce(&Self) -> Option<Timestamp>) -> Option<()> {
        if !self.added {
            self.added = true;
            let t = reset(self)?;
            self.move_to(t);
        }
        Some(())
    }

    /// `time.Date(y, m, d, 0, 0, 0, 0, loc)`.
    fn midnight(&self, date: Date) -> Option<Timestamp> {
        go_time::date(self.tz, date.to_datetime(Time::midnight()))
    }

    fn move_to(&mut self, t: Timestamp) {
        self.t = t;
        self.wall_clock = self.tz.to_datetime(t);
    }

    fn step(&mut self) -> Option<()> {
        self.steps_left = self.steps_left.checked_sub(1)?;
        Some(())
    }
}
