//! `cronpush sidecar`, the native sidecar: idles until the kubelet's SIGTERM, which comes once
//! every main container has exited (kubernetes.md §3), then learns how they ended, pushes the
//! end metrics and the Job's own custom metrics, and exits 0, all before the Pod's grace period
//! runs out. What it cannot learn in time it pushes as `unknown`, never as a success.
//!
//! When the webhook told it to (`CRONPUSH_LOG_LINES`), a sidecar whose run failed then asks the
//! relay for the failed containers' last log lines and delivers them to the gateway
//! (`PUT /api/v1/runs/logs/...`): last, so that the metrics go out exactly as they would
//! without, and harmlessly refused by a plain Pushgateway.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::Args;
use jiff::Timestamp;
use reqwest::Url;
use tokio::time::Instant;

use super::end_metrics::{EndMetrics, RunResult, Watch};
use super::exit_source::{ExitSource, OwnPod, RelaySetupError};
use super::gateway_client::{Failure, PushError, Pusher};
use super::group::GatewayUrlError;
use super::process::run_contained;
use super::run::{Run, RunArgs, non_negative_seconds};
use crate::contract::{env, parse_log_lines};
use crate::exit_status::ExitReport;
use crate::shutdown::{Shutdown, StopSignal};

/// The Pod's `terminationGracePeriodSeconds` when the webhook did not say: the API default.
const DEFAULT_GRACE: Duration = Duration::from_secs(30);
/// A longer grace period is taken as this: the Pod's own limit is a day.
const MAX_GRACE: Duration = Duration::from_secs(86_400);
/// Kept back from the grace period: the kubelet kills at its end, and the push must be done.
const GRACE_MARGIN: Duration = Duration::from_secs(3);
/// The least the sidecar gives itself, even when the grace period is tiny.
const MIN_BUDGET: Duration = Duration::from_secs(1);
/// The least the kubelet gives a sidecar after the main containers stopped, however little of
/// a deletion's grace period is left (`minimumGracePeriodInSeconds`, kuberuntime_container.go
/// `killContainer`; KEP 753).
const KILL_FLOOR: Duration = Duration::from_secs(2);
/// Kept back from the floor: the kubelet's SIGTERM took time to arrive, and exiting takes some.
const FLOOR_MARGIN: Duration = Duration::from_millis(300);
/// The first push's share of the floor.
const FLOOR_PUSH_TIME: Duration = Duration::from_millis(800);

/// The push's share of the time when `CRONPUSH_TIMEOUT_SECONDS` is not given.
const DEFAULT_PUSH_TIME: Duration = Duration::from_secs(5);
/// A custom metrics file larger than this is not pushed: it is a mistake, not metrics.
const MAX_METRICS_FILE: u64 = 4 << 20;
/// Less time than this left after the pushes is not worth asking for log lines.
const LEAST_LOGS_TIME: Duration = Duration::from_millis(500);
/// The most the log lines may take, asked and delivered: the relay reads them within 2 s, and
/// the run is over; a sidecar that lingers only holds up the Pod's end.
const MOST_LOGS_TIME: Duration = Duration::from_secs(5);

/// `url::ParseError`, named through reqwest's `Url`: cronpush does not depend on `url` itself.
type UrlParseError = <Url as std::str::FromStr>::Err;

/// Why the sidecar has no source to learn the end of the run from.
#[derive(Debug, thiserror::Error)]
enum ExitSourceError {
    #[error("{0} is not set")]
    NotSet(&'static str),
    #[error("{name}={url:?} is not a URL: {source}", name = env::RELAY_URL)]
    RelayUrl { url: String, source: UrlParseError },
    #[error("{name}={0} is not https: the token never travels in clear", name = env::RELAY_URL)]
    RelayNotHttps(Url),
    #[error("{name}={0:?} is neither relay nor api", name = env::EXIT_STATUS_SOURCE)]
    UnknownSource(String),
    #[error(transparent)]
    Relay(#[from] RelaySetupError),
}

/// Why the custom metrics file is not pushed (a missing file is no error: none was written).
#[derive(Debug, thiserror::Error)]
enum MetricsFileError {
    #[error("{0}")]
    Unreadable(#[source] std::io::Error),
    #[error("{0} bytes, more than the {MAX_METRICS_FILE} allowed")]
    TooLarge(u64),
}

/// Why a push of the run's metrics did not happen; `target` is the redacted URL.
#[derive(Debug, thiserror::Error)]
enum NotPushed {
    #[error(transparent)]
    GatewayUrl(#[from] GatewayUrlError),
    #[error("{source} after {} attempts ({target})", .source.attempts().0)]
    Failed { target: String, source: PushError },
    #[error("the deadline passed ({target})")]
    Deadline { target: String },
}

#[derive(Args, Debug, Clone, Default)]
pub struct SidecarArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// The relay to learn the exit status from (the webhook's /v1/exit-status).
    #[arg(long, env = env::RELAY_URL)]
    pub relay_url: Option<String>,
    /// The CA bundle (PEM text, not a path) that signed the relay's certificate.
    #[arg(long, env = env::RELAY_CA)]
    pub relay_ca: Option<String>,
    /// The projected service-account token presented to the relay.
    #[arg(long, env = env::TOKEN_FILE)]
    pub token_file: Option<String>,
    /// A file of Prometheus text that the Job wrote on a shared volume; pushed into the same
    /// group after the end metrics.
    #[arg(long, env = env::METRICS_FILE)]
    pub metrics_file: Option<String>,
    /// `relay` (default), or `api` to read the own Pod through the Kubernetes API, for clusters
    /// that let the Pod's service account get and watch its Pod.
    #[arg(long, env = env::EXIT_STATUS_SOURCE)]
    pub exit_status_source: Option<String>,
    /// The Pod's terminationGracePeriodSeconds: the sidecar is done before it runs out.
    #[arg(long, env = env::TERMINATION_GRACE_SECONDS)]
    pub termination_grace_seconds: Option<String>,
    /// When the run fails, deliver this many of the last lines of each failed main container's
    /// log (1 to 1000, read by the relay) to the gateway, after the metrics.
    #[arg(long, env = env::LOG_LINES)]
    pub log_lines: Option<String>,
}

/// The role's whole process; returns, never exits or panics, so that the caller exits 0.
pub fn main(args: SidecarArgs) {
    crate::logging::init(args.run.log_level(), args.run.log_format());
    run_contained("sidecar", run(args));
}

pub async fn run(args: SidecarArgs) {
    // The kubelet starts the main containers only once the sidecar has started.
    let started = Timestamp::now();
    let (run, ignored) = args.run.resolve();
    for input in &ignored {
        tracing::warn!("{input}");
    }
    let grace = match args.termination_grace_seconds.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
        None => DEFAULT_GRACE,
        Some(text) => match non_negative_seconds(text) {
            Ok(seconds) => Duration::from_secs_f64(seconds.min(MAX_GRACE.as_secs_f64())),
            Err(why) => {
                tracing::warn!("ignoring {}={text:?}: {why}", env::TERMINATION_GRACE_SECONDS);
                DEFAULT_GRACE
            }
        },
    };
    let log_lines = match args.log_lines.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
        None => None,
        Some(text) => {
            parse_log_lines(text).inspect_err(|why| tracing::warn!("ignoring {}: {why}", env::LOG_LINES)).ok()
        }
    };
    // Everything the end needs is made ready now: after SIGTERM, the time may be 2 s.
    let source = exit_source(&args).inspect_err(|why| tracing::error!("cannot learn how the run will end: {why}"));
    let pusher = match args
        .run
        .access
        .resolve()
        .map_err(|e| e.to_string())
        .and_then(|access| Pusher::new(&access).map_err(|e| e.to_string()))
    {
        Ok(pusher) => Some(pusher),
        Err(e) => {
            tracing::error!("cannot push the end of the run: {e}");
            None
        }
    };
    if !end_of_run(run.pod_name.as_deref()).await {
        return;
    }
    let watch = Watch { from: started, until: Timestamp::now() };
    let end =
        End { run: &run, pusher: pusher.as_ref(), watch, withheld: AtomicBool::new(false), failed: Mutex::new(None) };
    let pod = OwnPod { namespace: run.group.namespace.clone(), name: run.pod_name.clone().unwrap_or_default() };
    let sigterm = Instant::now();
    let floor = sigterm + KILL_FLOOR - FLOOR_MARGIN;
    // A run that ended by itself gets the Pod's whole grace period (kubernetes.md §3).
    let natural = sigterm + grace.saturating_sub(GRACE_MARGIN).max(MIN_BUDGET);
    let source = match source {
        Ok(source) => source,
        Err(_) => {
            end.push(None, natural).await;
            end.push_custom(args.metrics_file.as_deref(), natural).await;
            return;
        }
    };
    // First, the Pod as it stands, in time for a push before the kubelet's floor.
    let first = match source.learn(&pod, sigterm, floor - FLOOR_PUSH_TIME).await {
        Ok(report) => report,
        Err(why) => {
            // Nothing known, not even whether the Pod is being deleted: "unknown" goes out
            // before the floor, and the source is asked again while the grace period lasts.
            tracing::warn!(source = source.describe(), "cannot learn how the run ended yet: {why}");
            end.push(None, floor).await;
            end.push_custom(args.metrics_file.as_deref(), floor).await;
            let learn_by = natural - push_time(&run, sigterm, natural);
            match source.learn(&pod, learn_by, learn_by).await {
                Ok(report) => {
                    let deadline = deadline(&report, floor, natural);
                    end.finish(&report, &source, deadline).await;
                    end.deliver_logs(&source, &pod, log_lines, deadline).await;
                }
                Err(why) => tracing::error!(source = source.describe(), "cannot learn how the run ended: {why}"),
            }
            return;
        }
    };
    let deadline = deadline(&first, floor, natural);
    if first.complete || first.pod_ending() {
        // A Pod ended as a whole (deleted, evicted, past its deadline): the kubelet may kill
        // the sidecar at the floor, and writes the main containers' ends only once the sidecar
        // has stopped too (kubelet.go `SyncTerminatingPod`: one status before `killPod`, the
        // next after every container is gone). Waiting would learn nothing more.
        end.finish(&first, &source, deadline).await;
    } else {
        // The main containers ended by themselves and the kubelet's status is on its way: the
        // Pod's whole grace period is there to wait for it.
        let learn_by = deadline - push_time(&run, sigterm, deadline);
        match source.learn(&pod, learn_by, learn_by).await {
            Ok(report) => end.finish(&report, &source, deadline).await,
            Err(why) => {
                tracing::error!(source = source.describe(), "cannot learn how the run ended: {why}");
                end.finish(&first, &source, deadline).await;
            }
        }
    }
    end.push_custom(args.metrics_file.as_deref(), deadline).await;
    end.deliver_logs(&source, &pod, log_lines, deadline).await;
}

/// The push's share of the time left: `CRONPUSH_TIMEOUT_SECONDS` when given, at most half.
fn push_time(run: &Run, sigterm: Instant, deadline: Instant) -> Duration {
    run.timeout.unwrap_or(DEFAULT_PUSH_TIME).min(deadline.saturating_duration_since(sigterm) / 2)
}

/// When the kubelet kills the sidecar: for a Pod being deleted, at its `deletionTimestamp` (less
/// a margin for the clocks of the node and the API server), never before the floor; for any
/// other Pod ended as a whole, the floor (the kubelet's grace for evictions is its own setting,
/// often 0); for a run that ended by itself, the Pod's grace period.
fn deadline(report: &ExitReport, floor: Instant, natural: Instant) -> Instant {
    match &report.deletion {
        Some(deletion) => {
            let at = deletion.timestamp.parse::<Timestamp>().ok();
            let left = at.and_then(|at| Duration::try_from(at - Timestamp::now()).ok()).unwrap_or_default();
            (Instant::now() + left.saturating_sub(GRACE_MARGIN)).clamp(floor, natural.max(floor))
        }
        None if report.pod_ending() => floor,
        None => natural,
    }
}

/// The run's end, pushed once or twice: what is known at once, then the final state.
struct End<'a> {
    run: &'a Run,
    pusher: Option<&'a Pusher>,
    watch: Watch,
    /// Set when the run's CronJob was deleted with its group: nothing more is pushed.
    withheld: AtomicBool,
    /// Set when the last end pushed was not a success: its log lines are worth delivering.
    failed: Mutex<Option<FailedEnd>>,
}

/// A pushed end that was not a success, and the attempt it named, so that the gateway keeps
/// the log lines with that attempt's end.
#[derive(Debug, Clone, Copy)]
struct FailedEnd {
    attempt: Option<u32>,
}

impl End<'_> {
    /// Pushes what the report says, and says in the log what it lacks.
    async fn finish(&self, report: &ExitReport, source: &ExitSource, deadline: Instant) {
        if report.cronjob_deleted {
            // Pushing would bring back the group that the webhook deleted with the CronJob, with
            // the failure of a Pod that the garbage collector killed.
            tracing::info!("the run's CronJob was deleted, and its group with it: not pushing the end");
            self.withheld.store(true, Ordering::Relaxed);
            return;
        }
        if !report.complete {
            tracing::warn!(source = source.describe(), "not every main container's end was known in time");
        }
        if let Some(reason) = report.ended_because() {
            tracing::info!(reason, "the Pod was ended as a whole");
        } else if let Some(deletion) = &report.deletion {
            tracing::info!(deletion = deletion.timestamp, "the Pod was deleted");
        }
        self.push(Some(report), deadline).await;
    }

    async fn push(&self, report: Option<&ExitReport>, deadline: Instant) {
        let Some(pusher) = self.pusher else { return };
        let schedule = self.run.schedule().and_then(Result::ok);
        let end = EndMetrics::new(report, self.watch).of_run(self.run, schedule.as_ref());
        let pushed = push_end(pusher, self.run, &end, deadline).await;
        let failed = (pushed && end.result != RunResult::Success).then_some(FailedEnd { attempt: end.attempt });
        *self.failed.lock().unwrap_or_else(|e| e.into_inner()) = failed;
    }

    /// Delivers the failed run's last log lines to the gateway, when the webhook asked for them
    /// and the end pushed was not a success: the relay reads them (the Pod itself may not), the
    /// gateway keeps them with the run. A gateway that does not know the request (a plain
    /// Pushgateway) refuses it, which changes nothing; whatever fails is only logged.
    async fn deliver_logs(&self, source: &ExitSource, pod: &OwnPod, lines: Option<u32>, deadline: Instant) {
        let (Some(lines), Some(pusher)) = (lines, self.pusher) else { return };
        let Some(failed) = *self.failed.lock().unwrap_or_else(|e| e.into_inner()) else { return };
        if self.withheld.load(Ordering::Relaxed) {
            return;
        }
        if deadline.saturating_duration_since(Instant::now()) < LEAST_LOGS_TIME {
            tracing::warn!("no time left to deliver the failed run's log lines");
            return;
        }
        let deadline = deadline.min(Instant::now() + MOST_LOGS_TIME);
        let logs = match source.failed_logs(pod, lines, deadline).await {
            Ok(report) => report.logs,
            Err(why) => {
                tracing::warn!(source = source.describe(), "cannot learn the failed run's log lines: {why}");
                return;
            }
        };
        if logs.is_empty() {
            tracing::info!("no log lines of the failed containers to deliver (see the webhook's log)");
            return;
        }
        let url = match self.run.group.run_logs_url(self.run.gateway_url.as_deref()) {
            Ok(url) => url,
            Err(why) => {
                tracing::warn!("not delivering the failed run's log lines: {why}");
                return;
            }
        };
        let target = super::group::redacted(&url);
        let containers = logs.len();
        let body = serde_json::json!({
            "slot": self.run.scheduled_time.map(|t| t.as_second()),
            "attempt": failed.attempt,
            "logs": logs,
        });
        match tokio::time::timeout_at(deadline, pusher.put_json(&url, body.to_string(), deadline)).await {
            Ok(Ok(attempts)) => {
                tracing::info!(
                    url = target,
                    attempts = attempts.0,
                    containers,
                    "delivered the failed run's last log lines"
                )
            }
            Ok(Err(PushError::Refused { failure: Failure::Status { status, .. }, .. }))
                if matches!(status.as_u16(), 404 | 405) =>
            {
                tracing::info!(
                    url = target,
                    "the gateway does not keep log lines ({status}: a plain Pushgateway, or an older cronpush); the metrics are pushed all the same"
                )
            }
            Ok(Err(why)) => tracing::warn!(url = target, "could not deliver the failed run's log lines: {why}"),
            Err(_) => tracing::warn!(url = target, "could not deliver the failed run's log lines before the deadline"),
        }
    }

    async fn push_custom(&self, metrics_file: Option<&str>, deadline: Instant) {
        if self.withheld.load(Ordering::Relaxed) {
            return;
        }
        if let (Some(pusher), Some(path)) = (self.pusher, metrics_file.filter(|p| !p.is_empty())) {
            push_custom(pusher, self.run, PathBuf::from(path), deadline).await;
        }
    }
}

/// Waits for SIGTERM (the kubelet) or SIGINT. The handlers are in place before the log line
/// says so. False when they cannot be installed: then the end cannot be noticed, and the sidecar
/// waits to be ended by SIGTERM's default action, as any container without handlers is, rather
/// than exit and be restarted by the kubelet over and over (it is a restartable init container).
async fn end_of_run(pod: Option<&str>) -> bool {
    let shutdown = match Shutdown::install() {
        Ok(shutdown) => shutdown,
        Err(e) => {
            tracing::error!(error = %e, "the end of the run will not be pushed");
            std::future::pending::<()>().await;
            return false;
        }
    };
    tracing::info!(pod, "waiting for the end of the run (SIGTERM)");
    match shutdown.requested().await {
        StopSignal::Terminate => tracing::info!("SIGTERM: the main containers have ended"),
        StopSignal::Interrupt => tracing::info!("SIGINT: pushing the end of the run"),
    }
    true
}

fn exit_source(args: &SidecarArgs) -> Result<ExitSource, ExitSourceError> {
    match args.exit_status_source.as_deref().map(str::trim).unwrap_or("relay") {
        "api" => Ok(ExitSource::Api),
        "relay" | "" => {
            let url =
                args.relay_url.as_deref().filter(|u| !u.is_empty()).ok_or(ExitSourceError::NotSet(env::RELAY_URL))?;
            let url = Url::parse(url).map_err(|source| ExitSourceError::RelayUrl { url: url.to_string(), source })?;
            if url.scheme() != "https" {
                return Err(ExitSourceError::RelayNotHttps(url));
            }
            let ca_pem = args
                .relay_ca
                .as_deref()
                .filter(|c| !c.trim().is_empty())
                .ok_or(ExitSourceError::NotSet(env::RELAY_CA))?;
            let token_file =
                args.token_file.clone().filter(|t| !t.is_empty()).ok_or(ExitSourceError::NotSet(env::TOKEN_FILE))?;
            Ok(ExitSource::relay(url, ca_pem, token_file.into())?)
        }
        other => Err(ExitSourceError::UnknownSource(other.to_string())),
    }
}

/// Pushes the end metrics; true when the gateway took them.
async fn push_end(pusher: &Pusher, run: &Run, end: &EndMetrics, deadline: Instant) -> bool {
    let body = end.to_text();
    tracing::debug!(body, "end metrics");
    match post(pusher, run, body, deadline).await {
        Ok((target, attempts)) => {
            tracing::info!(
                url = target,
                attempts,
                result = end.result.as_str(),
                pod = run.pod_name,
                "pushed the end metrics"
            );
            true
        }
        Err(why) => {
            tracing::error!(result = end.result.as_str(), "could not push the end metrics: {why}");
            false
        }
    }
}

/// The Job's own metrics, if it wrote any; a missing file is the common case, not an error.
async fn push_custom(pusher: &Pusher, run: &Run, path: PathBuf, deadline: Instant) {
    let body = match read_metrics_file(&path) {
        Ok(Some(body)) => body,
        Ok(None) => {
            tracing::info!(path = %path.display(), "no custom metrics written");
            return;
        }
        Err(why) => {
            tracing::warn!(path = %path.display(), "not pushing the custom metrics: {why}");
            return;
        }
    };
    match post(pusher, run, body, deadline).await {
        Ok((target, attempts)) => {
            tracing::info!(url = target, attempts, path = %path.display(), "pushed the custom metrics")
        }
        Err(why) => tracing::error!(path = %path.display(), "could not push the custom metrics: {why}"),
    }
}

fn read_metrics_file(path: &PathBuf) -> Result<Option<String>, MetricsFileError> {
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(MetricsFileError::Unreadable(e)),
    };
    if metadata.len() > MAX_METRICS_FILE {
        return Err(MetricsFileError::TooLarge(metadata.len()));
    }
    let text = std::fs::read_to_string(path).map_err(MetricsFileError::Unreadable)?;
    Ok((!text.trim().is_empty()).then_some(text))
}

/// POSTs to the run's group before the deadline: the redacted URL and the attempts, or why not.
async fn post(pusher: &Pusher, run: &Run, body: String, deadline: Instant) -> Result<(String, u32), NotPushed> {
    let url = run.group.url(run.gateway_url.as_deref())?;
    let target = super::group::redacted(&url);
    match tokio::time::timeout_at(deadline, pusher.post(&url, body, deadline)).await {
        Ok(Ok(attempts)) => Ok((target, attempts.0)),
        Ok(Err(source)) => Err(NotPushed::Failed { target, source }),
        Err(_) => Err(NotPushed::Deadline { target }),
    }
}
