//! What a pusher knows about the run it belongs to: the environment the webhook writes
//! (DESIGN.md "Names", [`crate::contract::env`]), or the same values as flags.
//!
//! Every value is taken as text and read here, leniently: a value that cannot be used is
//! reported as [`Ignored`] and the pusher goes on without it. A strict parser would turn a typo
//! in someone's CronJob into a failed init container, which fails the Job (kubernetes.md §3).

use std::fmt;
use std::time::Duration;

use clap::Args;

use super::gateway_access::GatewayAccessArgs;
use jiff::Timestamp;

use super::group::Group;
use crate::contract::env;
use crate::schedule::{Schedule, ScheduleError, scheduled_time_from_job_name};

/// The `job` value of the grouping key when none is given.
pub const DEFAULT_JOB: &str = "cronpush";
/// The CronJob API's default `spec.concurrencyPolicy`.
pub const DEFAULT_CONCURRENCY_POLICY: &str = "Allow";
/// The longest deadline a pusher takes; a larger one is cut to it. Waiting longer for a gateway
/// that is away would hold up the Job for a metric, and ten minutes already outlasts a restart.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(600);

/// The pushers' command line. Every flag falls back to its variable of the injection contract,
/// and every value is optional text, checked by [`RunArgs::resolve`], never by clap.
#[derive(Args, Debug, Clone, Default)]
pub struct RunArgs {
    /// The gateway to push to, http or https, possibly with a path prefix
    /// (http://pi:8080/pushgateway).
    #[arg(long, env = env::GATEWAY_URL)]
    pub gateway_url: Option<String>,
    #[command(flatten)]
    pub access: GatewayAccessArgs,
    /// The `job` value of the grouping key [default: cronpush].
    #[arg(long, env = env::JOB)]
    pub job: Option<String>,
    /// The `cluster` value of the grouping key, when one gateway serves several clusters.
    #[arg(long, env = env::CLUSTER)]
    pub cluster: Option<String>,
    /// The Pod's namespace: the `namespace` value of the grouping key.
    #[arg(long, env = env::NAMESPACE)]
    pub namespace: Option<String>,
    /// The Pod's name, for the logs.
    #[arg(long, env = env::POD_NAME)]
    pub pod_name: Option<String>,
    /// The CronJob's name: the `cronjob` value of the grouping key.
    #[arg(long, env = env::CRONJOB)]
    pub cronjob: Option<String>,
    /// The Job's name; `<cronjob>-<Unix minutes>` tells the scheduled time when it is not given.
    #[arg(long, env = env::JOB_NAME)]
    pub job_name: Option<String>,
    /// The CronJob's `spec.schedule`.
    #[arg(long, env = env::SCHEDULE)]
    pub schedule: Option<String>,
    /// The CronJob's `spec.timeZone`; empty means UTC.
    #[arg(long, env = env::TIME_ZONE)]
    pub time_zone: Option<String>,
    /// The run's scheduled time in Unix seconds. Absent: read from the Job's name. Empty: the
    /// run was started by hand and has no schedule slot.
    #[arg(long, env = env::SCHEDULED_TIME)]
    pub scheduled_time: Option<String>,
    /// How late a run may start before it counts as missed, in seconds.
    #[arg(long, env = env::GRACE_SECONDS)]
    pub grace_seconds: Option<String>,
    /// The CronJob's `spec.startingDeadlineSeconds`.
    #[arg(long, env = env::STARTING_DEADLINE_SECONDS)]
    pub starting_deadline_seconds: Option<String>,
    /// How long a run may take before it counts as stuck, in seconds.
    #[arg(long, env = env::MAX_RUN_SECONDS)]
    pub max_run_seconds: Option<String>,
    /// The CronJob's `spec.concurrencyPolicy` [default: Allow].
    #[arg(long, env = env::CONCURRENCY_POLICY)]
    pub concurrency_policy: Option<String>,
    /// When the CronJob was created, in Unix seconds.
    #[arg(long, env = env::CRONJOB_CREATED)]
    pub cronjob_created: Option<String>,
    /// When the CronJob's last successful Job finished, in Unix seconds, as its
    /// `status.lastSuccessfulTime` said when the run's Pod was created.
    #[arg(long, env = env::CRONJOB_LAST_SUCCESS)]
    pub cronjob_last_success: Option<String>,
    /// How long the pusher may try, in seconds, before it gives up (and still exits 0).
    #[arg(long, env = env::TIMEOUT_SECONDS)]
    pub timeout_seconds: Option<String>,
    /// debug, info, warn or error [default: info].
    #[arg(long = "log.level")]
    pub log_level: Option<String>,
    /// logfmt or json [default: logfmt].
    #[arg(long = "log.format")]
    pub log_format: Option<String>,
}

/// The run as far as the inputs tell it.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub gateway_url: Option<String>,
    pub group: Group,
    pub pod_name: Option<String>,
    pub job_name: Option<String>,
    /// `None` when not given or empty.
    pub schedule: Option<String>,
    /// `None` (UTC) when not given or empty.
    pub time_zone: Option<String>,
    /// The schedule slot this run was created for; `None` for a run started by hand, or one
    /// whose slot nothing tells.
    pub scheduled_time: Option<Timestamp>,
    pub concurrency_policy: String,
    pub cronjob_created: Option<Timestamp>,
    pub cronjob_last_success: Option<Timestamp>,
    pub grace_seconds: Option<f64>,
    /// `spec.startingDeadlineSeconds`: `None` when the CronJob sets none.
    pub starting_deadline_seconds: Option<f64>,
    pub max_run_seconds: Option<f64>,
    /// `None` when not given: each pusher has its own default.
    pub timeout: Option<Duration>,
}

/// An input that was given but cannot be used; the pusher goes on as if it were absent.
#[derive(Debug, Clone)]
pub struct Ignored {
    /// The variable of the contract (or its flag) that carried the value.
    pub input: &'static str,
    pub value: String,
    pub why: UnusableValue,
}

/// Equal when they say the same: jiff's error, which one reason holds, has no equality.
impl PartialEq for Ignored {
    fn eq(&self, other: &Ignored) -> bool {
        (self.input, &self.value, self.why.to_string()) == (other.input, &other.value, other.why.to_string())
    }
}

impl Eq for Ignored {}

/// Why a value that was given cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UnusableValue {
    #[error("expected whole Unix seconds, such as 1772544600")]
    NotUnixSeconds,
    #[error("not a time: {0}")]
    NotATime(#[source] jiff::Error),
    #[error("expected a number of seconds, 0 or more")]
    NotNonNegativeSeconds,
    #[error("expected a number of seconds above 0")]
    NotPositiveSeconds,
}

impl fmt::Display for Ignored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ignoring {}={:?}: {}", self.input, self.value, self.why)
    }
}

impl RunArgs {
    /// Reads every input; what cannot be used comes back as [`Ignored`], never as an error.
    pub fn resolve(&self) -> (Run, Vec<Ignored>) {
        let mut ignored = Vec::new();
        let cronjob = self.cronjob.clone().unwrap_or_default();
        let job_name = non_empty(&self.job_name);
        let group = Group {
            job: non_empty(&self.job).unwrap_or_else(|| DEFAULT_JOB.to_string()),
            cluster: non_empty(&self.cluster),
            namespace: self.namespace.clone().unwrap_or_default(),
            cronjob: cronjob.clone(),
        };
        let scheduled_time = match self.scheduled_time.as_deref() {
            Some("") => None,
            Some(text) => match unix_seconds(text) {
                Ok(time) => Some(time),
                Err(why) => {
                    ignored.push(Ignored { input: env::SCHEDULED_TIME, value: text.to_string(), why });
                    slot_from_job_name(&cronjob, job_name.as_deref())
                }
            },
            None => slot_from_job_name(&cronjob, job_name.as_deref()),
        };
        let run = Run {
            gateway_url: non_empty(&self.gateway_url),
            group,
            pod_name: non_empty(&self.pod_name),
            job_name,
            schedule: non_empty(&self.schedule),
            time_zone: non_empty(&self.time_zone),
            scheduled_time,
            concurrency_policy: non_empty(&self.concurrency_policy)
                .unwrap_or_else(|| DEFAULT_CONCURRENCY_POLICY.to_string()),
            cronjob_created: read(&mut ignored, env::CRONJOB_CREATED, &self.cronjob_created, unix_seconds),
            cronjob_last_success: read(
                &mut ignored,
                env::CRONJOB_LAST_SUCCESS,
                &self.cronjob_last_success,
                unix_seconds,
            ),
            grace_seconds: read(&mut ignored, env::GRACE_SECONDS, &self.grace_seconds, non_negative_seconds),
            starting_deadline_seconds: read(
                &mut ignored,
                env::STARTING_DEADLINE_SECONDS,
                &self.starting_deadline_seconds,
                non_negative_seconds,
            ),
            max_run_seconds: read(&mut ignored, env::MAX_RUN_SECONDS, &self.max_run_seconds, positive_seconds),
            timeout: read(&mut ignored, env::TIMEOUT_SECONDS, &self.timeout_seconds, timeout),
        };
        (run, ignored)
    }

    pub fn log_level(&self) -> &str {
        self.log_level.as_deref().unwrap_or("info")
    }

    pub fn log_format(&self) -> &str {
        self.log_format.as_deref().unwrap_or("logfmt")
    }
}

impl Run {
    /// The CronJob's schedule in its time zone; `None` when the run was given no schedule.
    pub fn schedule(&self) -> Option<Result<Schedule, ScheduleError>> {
        let spec = self.schedule.as_deref()?;
        Some(Schedule::parse(spec, self.time_zone.as_deref()))
    }
}

fn non_empty(value: &Option<String>) -> Option<String> {
    value.clone().filter(|v| !v.is_empty())
}

fn slot_from_job_name(cronjob: &str, job_name: Option<&str>) -> Option<Timestamp> {
    scheduled_time_from_job_name(cronjob, job_name?)
}

/// Reads an optional value with `parse`; an empty value counts as absent.
fn read<T>(
    ignored: &mut Vec<Ignored>,
    input: &'static str,
    value: &Option<String>,
    parse: impl Fn(&str) -> Result<T, UnusableValue>,
) -> Option<T> {
    let text = value.as_deref().filter(|v| !v.trim().is_empty())?;
    parse(text.trim()).map_err(|why| ignored.push(Ignored { input, value: text.to_string(), why })).ok()
}

fn unix_seconds(text: &str) -> Result<Timestamp, UnusableValue> {
    let seconds: i64 = text.trim().parse().map_err(|_| UnusableValue::NotUnixSeconds)?;
    Timestamp::from_second(seconds).map_err(UnusableValue::NotATime)
}

pub(super) fn non_negative_seconds(text: &str) -> Result<f64, UnusableValue> {
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() && value >= 0.0 => Ok(value),
        _ => Err(UnusableValue::NotNonNegativeSeconds),
    }
}

fn positive_seconds(text: &str) -> Result<f64, UnusableValue> {
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() && value > 0.0 => Ok(value),
        _ => Err(UnusableValue::NotPositiveSeconds),
    }
}

fn timeout(text: &str) -> Result<Duration, UnusableValue> {
    let value = positive_seconds(text)?;
    Ok(Duration::from_secs_f64(value.min(MAX_TIMEOUT.as_secs_f64())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> RunArgs {
        RunArgs {
            gateway_url: Some("http://gateway:9091".into()),
            namespace: Some("prod".into()),
            cronjob: Some("backup".into()),
            job_name: Some("backup-29542410".into()),
            ..RunArgs::default()
        }
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn the_scheduled_time_is_given_read_from_the_job_name_or_absent() {
        let given = RunArgs { scheduled_time: Some("1772548200".into()), ..args() };
        assert_eq!(given.resolve().0.scheduled_time, Some(at("2026-03-03T14:30:00Z")));
        // Absent: 29_542_410 minutes is 2026-03-03T13:30:00Z.
        assert_eq!(args().resolve().0.scheduled_time, Some(at("2026-03-03T13:30:00Z")));
        let by_hand = RunArgs { scheduled_time: Some(String::new()), ..args() };
        assert_eq!(by_hand.resolve(), (Run { scheduled_time: None, ..args().resolve().0 }, vec![]));
        let other_name = RunArgs { job_name: Some("backup-manual-x1".into()), ..args() };
        assert_eq!(other_name.resolve().0.scheduled_time, None);
    }

    #[test]
    fn a_garbled_scheduled_time_falls_back_to_the_job_name() {
        let (run, ignored) = RunArgs { scheduled_time: Some("soon".into()), ..args() }.resolve();
        assert_eq!(run.scheduled_time, Some(at("2026-03-03T13:30:00Z")));
        assert_eq!(ignored.len(), 1);
        assert!(ignored[0].to_string().starts_with("ignoring CRONPUSH_SCHEDULED_TIME=\"soon\": "), "{}", ignored[0]);
    }

    #[test]
    fn defaults_fill_what_is_absent_or_empty() {
        let (run, ignored) = RunArgs { job: Some(String::new()), time_zone: Some(String::new()), ..args() }.resolve();
        assert!(ignored.is_empty());
        assert_eq!(
            run.group,
            Group { job: "cronpush".into(), cluster: None, namespace: "prod".into(), cronjob: "backup".into() }
        );
        assert_eq!(run.concurrency_policy, "Allow");
        assert_eq!((run.time_zone, run.schedule, run.grace_seconds, run.timeout), (None, None, None, None));
    }

    #[test]
    fn numbers_are_read_leniently() {
        let (run, ignored) = RunArgs {
            grace_seconds: Some(" 600 ".into()),
            max_run_seconds: Some("1.5".into()),
            timeout_seconds: Some("2".into()),
            ..args()
        }
        .resolve();
        assert!(ignored.is_empty(), "{ignored:?}");
        assert_eq!((run.grace_seconds, run.max_run_seconds), (Some(600.0), Some(1.5)));
        assert_eq!(run.timeout, Some(Duration::from_secs(2)));

        let (run, ignored) = RunArgs {
            grace_seconds: Some("abc".into()),
            max_run_seconds: Some("0".into()),
            timeout_seconds: Some("86400".into()),
            ..args()
        }
        .resolve();
        assert_eq!((run.grace_seconds, run.max_run_seconds, run.timeout), (None, None, Some(MAX_TIMEOUT)));
        let inputs: Vec<_> = ignored.iter().map(|i| i.input).collect();
        assert_eq!(inputs, [env::GRACE_SECONDS, env::MAX_RUN_SECONDS]);
        for bad in ["-1", "NaN", "inf", "1e999", "5s"] {
            let (run, ignored) = RunArgs { timeout_seconds: Some(bad.into()), ..args() }.resolve();
            assert_eq!((run.timeout, ignored.len()), (None, 1), "{bad}");
        }
    }
}
