//! CronJob schedules as the Kubernetes CronJob controller reads them.
//!
//! Both the API server's validation (`validateScheduleFormat` in pkg/apis/batch/validation) and
//! the controller (pkg/controller/cronjob) hand `.spec.schedule` to robfig/cron v3
//! `ParseStandard`, and the controller finds every slot with its `SpecSchedule.Next`. This module
//! mirrors both, not Debian's cron: five fields, `?` for `*`, `N/step` meaning `N-max/step`, no
//! `L`/`W`/`#`, no seconds, Sunday only as 0, lower-case macros including `@midnight` and
//! `@every`, and robfig's daylight-saving behaviour (see [`Schedule::next_after`]).
//!
//! croner, the cron crate the project started with, is not used: it disagrees with robfig on
//! exactly the points this module exists for (a slot in a spring-forward gap, a slot in a
//! repeated hour, `*/1` in a day field, the five-year search horizon), and its parser accepts
//! a language the API server refuses. Parsing, matching and iteration are a port of robfig's
//! (spec.go and parser.go as vendored by kubernetes), compared with robfig itself, compiled with
//! Go and given the same time zone database, over 300,000 generated schedules, zones and
//! instants: the same schedules accepted, the same slots found.

mod error;
mod every;
mod fields;
mod go_time;
mod next;
mod run;
mod zone;

use jiff::{SignedDuration, Timestamp, tz::TimeZone};

pub use error::{Field, FieldProblem, ScheduleError};
pub use run::{parse_scheduled_timestamp_annotation, scheduled_time_from_job_name};

use fields::Fields;

/// How far back [`Schedule::last_at_or_before`] looks: twice the longest gap between two slots
/// of any valid schedule (`0 0 29 2 *` across 2100, which is no leap year: eight years).
const LOOKBACK: SignedDuration = SignedDuration::from_hours(16 * 366 * 24);

/// A parsed CronJob schedule together with the time zone its slots are counted in.
#[derive(Debug, Clone)]
pub struct Schedule {
    rule: Rule,
    time_zone: TimeZone,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Rule {
    /// Five fields or one of the calendar macros (`@daily`, ...).
    Fields(Fields),
    /// `@every <duration>`: robfig's `ConstantDelaySchedule`, whole seconds, at least one.
    Every(SignedDuration),
}

impl Schedule {
    /// Parses `.spec.schedule` with `.spec.timeZone`, accepting exactly what Kubernetes accepts.
    ///
    /// `time_zone` `None` or `Some("")` means unset, and cronpush then counts in UTC (DESIGN.md,
    /// `CRONPUSH_TIME_ZONE`). The controller itself uses the kube-controller-manager's local
    /// zone there, which is UTC on almost every cluster and unknowable from a Pod. Zone names
    /// come from the IANA database bundled into the binary, spelled exactly (Go's
    /// `time.LoadLocation` is case-sensitive).
    ///
    /// A `TZ=<zone> ` or `CRON_TZ=<zone> ` prefix in the schedule is honoured when `time_zone`
    /// is unset: Kubernetes 1.22-1.28 accepted it by accident (robfig/cron v3 parses it), 1.29
    /// refuses it on create but still allows updates of CronJobs that already had it
    /// (kubernetes#116252), and the controller's `formatSchedule` still passes it to robfig. A
    /// schedule mentioning `TZ` together with `.spec.timeZone` is refused, as the API server
    /// refuses it.
    pub fn parse(spec: &str, time_zone: Option<&str>) -> Result<Schedule, ScheduleError> {
        if spec.is_empty() {
            return Err(ScheduleError::Empty);
        }
        let field_zone = zone::field_zone(time_zone)?;
        if field_zone.is_some() && spec.contains("TZ") {
            let time_zone = time_zone.unwrap_or_default().to_string();
            return Err(ScheduleError::TwoTimeZones { schedule: spec.to_string(), time_zone });
        }
        let (prefix_zone, body) = match zone::split_prefix(spec)? {
            Some((name, body)) => (Some(zone::load_location(name)?), body),
            None => (None, spec),
        };
        let rule = Rule::parse(body)?;
        Ok(Schedule { rule, time_zone: prefix_zone.or(field_zone).unwrap_or(TimeZone::UTC) })
    }

    /// The time zone the slots are counted in.
    pub fn time_zone(&self) -> &TimeZone {
        &self.time_zone
    }

    /// The first slot strictly after `t`, as robfig's `Next` finds it; `None` when there is none
    /// within robfig's horizon (the year of `t` plus five), e.g. `0 0 30 2 *`.
    ///
    /// Daylight saving follows robfig, which walks real hours and minutes: a slot whose wall
    /// clock time falls into a spring-forward gap does not run that day (`30 2 * * *` in New
    /// York skips 2026-03-08), and a slot in an hour the clock repeats runs twice, once in each
    /// offset (`30 1 * * *` in New York runs at 01:30 EDT and 01:30 EST on 2026-11-01).
    pub fn next_after(&self, t: Timestamp) -> Option<Timestamp> {
        let next = match &self.rule {
            Rule::Fields(fields) => next::next(fields, &self.time_zone, t),
            Rule::Every(delay) => every::next(*delay, t),
        };
        // Around some odd transitions robfig returns its input (Pacific/Chatham, April 2022, for
        // `54 3 * * 0,5,6`), which would spin the controller's loop; stop there instead.
        next.filter(|next| *next > t)
    }

    /// The most recent slot at or before `t`: the controller's "most recent scheduled time".
    ///
    /// `None` for `@every`, whose slots have no fixed grid: the controller counts them from the
    /// CronJob's `lastScheduleTime`, which a Pod does not know. In the few zones whose clocks
    /// change at midnight or by half an hour (America/Santiago, Asia/Beirut, Australia/Lord_Howe,
    /// ...) robfig's slots near a change depend on where its search starts; the answer there is
    /// one the controller can reach.
    pub fn last_at_or_before(&self, t: Timestamp) -> Option<Timestamp> {
        if matches!(self.rule, Rule::Every(_)) {
            return None;
        }
        // robfig only searches forwards: find a stretch before `t` whose start has a slot after
        // it by `t` and whose end has none, then halve it down to the second before that slot.
        let (mut early, mut late) = self.bracket_last_slot(t)?;
        while late.duration_since(early) > SignedDuration::from_secs(1) {
            let middle = early.checked_add(late.duration_since(early) / 2).ok()?;
            if self.next_after(middle).is_some_and(|slot| slot <= t) {
                early = middle;
            } else {
                late = middle;
            }
        }
        self.slots_after(early).take_while(|slot| *slot <= t).last()
    }

    /// The slot before `slot`, itself a slot: where the period behind a run begins. For
    /// `@every` it is one interval earlier, as the controller counts those from the last one.
    pub fn previous_before(&self, slot: Timestamp) -> Option<Timestamp> {
        match self.rule {
            Rule::Every(delay) => slot.checked_sub(delay).ok(),
            Rule::Fields(_) => self.last_at_or_before(slot.checked_sub(SignedDuration::from_secs(1)).ok()?),
        }
    }

    /// Two instants before `t`: a slot follows the first by `t`, none follows the second by `t`.
    /// The stretch doubles from a minute until it holds a slot.
    fn bracket_last_slot(&self, t: Timestamp) -> Option<(Timestamp, Timestamp)> {
        let (mut late, mut window) = (t, SignedDuration::from_mins(1));
        while window <= LOOKBACK {
            let early = t.checked_sub(window).ok()?;
            if self.next_after(early).is_some_and(|slot| slot <= t) {
                return Some((early, late));
            }
            (late, window) = (early, window.checked_mul(2)?);
        }
        None
    }

    /// How long after `slot` the next slot comes: what "how often it runs" means at that point.
    /// It varies for schedules such as `0 9 * * 1-5` (a day, or three over a weekend) and around
    /// daylight-saving changes.
    pub fn period_at(&self, slot: Timestamp) -> Option<SignedDuration> {
        Some(self.next_after(slot)?.duration_since(slot))
    }

    /// The slots strictly after `t`, in order.
    pub fn slots_after(&self, t: Timestamp) -> impl Iterator<Item = Timestamp> + '_ {
        std::iter::successors(self.next_after(t), |slot| self.next_after(*slot))
    }
}

impl Rule {
    /// robfig's `Parse` after the time zone prefix: a leading `@` makes the whole rest a
    /// descriptor, matched exactly (no trimming, lower case only).
    fn parse(spec: &str) -> Result<Rule, ScheduleError> {
        if !spec.starts_with('@') {
            return Fields::parse(spec).map(Rule::Fields);
        }
        if let Some(fields) = Fields::from_macro(spec) {
            return Ok(Rule::Fields(fields));
        }
        match spec.strip_prefix("@every ") {
            Some(duration) => every::parse(duration).map(Rule::Every),
            None => Err(ScheduleError::UnknownMacro(spec.to_string())),
        }
    }
}
