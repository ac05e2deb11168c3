//! What the webhook learns about the run a candidate Pod belongs to: its CronJob, schedule and
//! deadlines. The Kubernetes API is the source (see `kube_resolver`); when it cannot be reached,
//! the Job's name is the fallback, since the CronJob controller names Jobs
//! `<cronjob>-<scheduled Unix minutes>`.

use std::future::Future;
use std::pin::Pin;

use super::selection::Candidate;

/// The facts the injected containers receive through their environment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunFacts {
    pub cronjob: String,
    pub job: String,
    pub schedule: Option<String>,
    /// `spec.timeZone`; `None` is UTC.
    pub time_zone: Option<String>,
    /// The run's scheduled time, Unix seconds; `None` for a run started by hand.
    pub scheduled_time: Option<i64>,
    pub concurrency_policy: Option<String>,
    /// The CronJob's creation, Unix seconds.
    pub cronjob_created: Option<i64>,
    /// The CronJob's `status.lastSuccessfulTime`, Unix seconds.
    pub cronjob_last_success: Option<i64>,
    pub grace_seconds: Option<i64>,
    /// `spec.startingDeadlineSeconds`.
    pub starting_deadline_seconds: Option<i64>,
    pub max_run_seconds: Option<i64>,
    /// The CronJob's `cronpush.io/log-lines` as written, read only with `--failed-run-logs`.
    pub log_lines: Option<String>,
    pub source: FactsSource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FactsSource {
    #[default]
    Api,
    /// Guessed from the Job's name because the API could not be asked.
    JobName,
}

impl FactsSource {
    pub fn as_str(self) -> &'static str {
        match self {
            FactsSource::Api => "api",
            FactsSource::JobName => "job-name",
        }
    }
}

pub enum Resolution {
    /// Boxed: the facts are large, the other answers small.
    Run(Box<RunFacts>),
    /// The Job exists and no CronJob owns it.
    NotCronJob,
    /// The API answered that the Job or its CronJob does not exist (deleted meanwhile); no
    /// fallback, since the Job's name would describe a run that is gone.
    UnknownOwner(String),
    /// The API could not answer; the reason goes into a warning and the log.
    Unreachable(String),
}

pub type ResolveFuture<'a> = Pin<Box<dyn Future<Output = Resolution> + Send + 'a>>;

/// Learns the facts of a candidate's run.
pub trait Resolve: Send + Sync {
    fn resolve<'a>(&'a self, candidate: &'a Candidate) -> ResolveFuture<'a>;

    /// Why this cluster cannot run the injection, when it cannot: an API server older than
    /// 1.29 has no native sidecars by default, and the Pod would never complete.
    fn unsupported(&self) -> Option<String> {
        None
    }
}

/// Native sidecars (`restartPolicy: Always` on init containers) are on by default from 1.29.
pub const MINIMUM_MINOR: u32 = 29;

/// Whether a Kubernetes version, as `/version` reports it ("1", "28+"), is too old.
pub fn too_old(major: &str, minor: &str) -> Option<String> {
    let digits = |s: &str| s.chars().take_while(char::is_ascii_digit).collect::<String>().parse::<u32>().ok();
    let (major_n, minor_n) = (digits(major)?, digits(minor)?);
    (major_n == 1 && minor_n < MINIMUM_MINOR).then(|| {
        format!(
            "Kubernetes {major}.{minor} has no native sidecars by default; cronpush needs 1.{MINIMUM_MINOR} or newer"
        )
    })
}

/// The resolver when there is no Kubernetes configuration at all: every Pod falls back to its
/// Job's name.
pub struct NoApi(pub String);

impl Resolve for NoApi {
    fn resolve<'a>(&'a self, _: &'a Candidate) -> ResolveFuture<'a> {
        Box::pin(std::future::ready(Resolution::Unreachable(self.0.clone())))
    }
}

/// The facts a Job's name gives away: `<cronjob>-<Unix minutes>`, read by the same rules as the
/// schedule module (digits only, a time the controller could have named). Nothing for names of
/// another shape, which a CronJob does not produce.
pub fn from_job_name(job: &str) -> Option<RunFacts> {
    let (cronjob, _) = job.rsplit_once('-')?;
    let scheduled = crate::schedule::scheduled_time_from_job_name(cronjob, job)?;
    Some(RunFacts {
        cronjob: cronjob.to_string(),
        job: job.to_string(),
        scheduled_time: Some(scheduled.as_second()),
        source: FactsSource::JobName,
        ..RunFacts::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_before_1_29_are_refused() {
        assert!(too_old("1", "28+").unwrap().contains("1.28+"));
        assert!(too_old("1", "29").is_none());
        assert!(too_old("1", "33").is_none());
        assert!(too_old("2", "0").is_none());
        assert!(too_old("", "x").is_none(), "an unreadable version is not a refusal");
    }

    #[test]
    fn reads_the_controllers_job_names() {
        let facts = from_job_name("sample-cronjob-29396160").unwrap();
        assert_eq!(facts.cronjob, "sample-cronjob");
        assert_eq!(facts.scheduled_time, Some(29_396_160 * 60));
        assert_eq!(facts.source, FactsSource::JobName);
        for other in ["manual", "x-", "-123", "backup-20261125-manual", "a-12b", "backup-20260101"] {
            assert!(from_job_name(other).is_none(), "{other}");
        }
    }
}
