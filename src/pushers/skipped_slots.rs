//! When a CronJob with `concurrencyPolicy: Forbid` starts again after a run that outlasted its
//! next slots. The CronJob controller skips the slots that come while one of its Jobs is active
//! (pkg/controller/cronjob/cronjob_controllerv2.go, event `JobAlreadyActive`). Once the Job has
//! ended, it starts the most recent skipped slot at once, unless that slot is more than
//! `startingDeadlineSeconds` old (event `MissSchedule`); then nothing starts before the next
//! slot. The start pusher pushed the slot after the run's own as the next one; in the second
//! case the sidecar pushes the real next one, or the CronJob would look late until then.

use jiff::Timestamp;

use super::run::Run;
use crate::schedule::Schedule;

/// The next slot the controller will start after this run ended at `ended`, when that is not
/// the one the start pushed: a Forbid run that outlasted a slot, and the most recent skipped
/// slot past its starting deadline. `None` otherwise (the pushed slot stands, or a start follows
/// at once and pushes its own).
pub fn next_slot_after_skipped(run: &Run, schedule: &Schedule, ended: Timestamp) -> Option<Timestamp> {
    if run.concurrency_policy != "Forbid" {
        return None;
    }
    let next = schedule.next_after(run.scheduled_time?)?;
    if next > ended {
        return None;
    }
    // Without a starting deadline every skipped slot is still worth starting.
    let deadline = run.starting_deadline_seconds?;
    let most_recent = schedule.last_at_or_before(ended)?;
    // The controller's test: `scheduledTime + startingDeadlineSeconds` before now.
    let age = (ended.as_millisecond() - most_recent.as_millisecond()) as f64 / 1000.0;
    if age > deadline { schedule.next_after(ended) } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pushers::run::RunArgs;

    fn run(policy: &str, deadline: Option<&str>) -> Run {
        let args = RunArgs {
            concurrency_policy: Some(policy.into()),
            starting_deadline_seconds: deadline.map(String::from),
            scheduled_time: Some("600".into()),
            ..RunArgs::default()
        };
        args.resolve().0
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    #[test]
    fn a_forbid_run_past_its_slots_with_a_starting_deadline_waits_for_the_next_slot() {
        let every_ten = Schedule::parse("*/10 * * * *", None).unwrap();
        // Ended at 2100: the skipped slot 1800 is 300 s old, past a deadline of 60 s.
        assert_eq!(next_slot_after_skipped(&run("Forbid", Some("60")), &every_ten, at(2100)), Some(at(2400)));
        // Within the deadline, or with none, the controller starts the slot 1800 at once.
        assert_eq!(next_slot_after_skipped(&run("Forbid", Some("600")), &every_ten, at(2100)), None);
        assert_eq!(next_slot_after_skipped(&run("Forbid", None), &every_ten, at(2100)), None);
        // Ended before its next slot: nothing was skipped.
        assert_eq!(next_slot_after_skipped(&run("Forbid", Some("60")), &every_ten, at(1100)), None);
        // Allow and Replace never skip a slot for a running Job.
        assert_eq!(next_slot_after_skipped(&run("Allow", Some("60")), &every_ten, at(2100)), None);
        assert_eq!(next_slot_after_skipped(&run("Replace", Some("60")), &every_ten, at(2100)), None);
    }
}
