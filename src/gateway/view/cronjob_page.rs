//! A CronJob's page (`/cronjobs/<namespace>/<cronjob>`): how it has been doing lately, the
//! question a person asks after an alert. Its status as the board judges it, its schedule and
//! next slot, a chart of its runs' durations against its maximum run time, and its run history
//! as a table, newest first, with links to the board and to its group. Rendered on the server
//! like every page (ui.rs): no script, nothing fetched from elsewhere.
//!
//! A CronJob has one group per `job` label and per cluster; `?cluster=` keeps one cluster's,
//! and each group left gets a section of its own.

use askama::Template;

use super::board::{self, CronJobRow, duration_words, exit_words, failed_words};
use super::duration_chart::{self, Chart, Sample};
use super::run_view::{self, Outcome};
use super::selection::encode;
use super::ui::{Chrome, When, cronjob_page_url, group_url, render, run_title};
use crate::gateway::config::Config;
use crate::gateway::store::clock::seconds;
use crate::gateway::store::runs::{RunEnd, RunRecord};
use crate::gateway::store::{Group, Nanos, Store};

#[derive(Template)]
#[template(path = "cronjob.html")]
struct CronJobPage<'a> {
    chrome: Chrome<'a>,
    namespace: &'a str,
    board_url: String,
    namespace_url: String,
    sections: Vec<Section>,
    width: f64,
    height: f64,
}

/// One group of the CronJob.
struct Section {
    /// The grouping key, when the page holds more than one group and must say which.
    key: Option<String>,
    status: &'static str,
    reason: String,
    schedule: String,
    timezone: String,
    concurrency_policy: String,
    next: Option<When>,
    next_overdue: bool,
    max_run: String,
    grace: String,
    page_url: String,
    group_url: String,
    json_url: String,
    chart: Chart,
    runs: Vec<RunRow>,
}

struct RunRow {
    /// The row's id, which a mark on the board can point at.
    id: String,
    class: &'static str,
    outcome: &'static str,
    scheduled: Option<When>,
    start: Option<When>,
    end: Option<When>,
    duration: String,
    exit: String,
    /// How many Pods it took, and what the failed attempt before the last said.
    attempts: String,
    /// The failed containers' last log lines, when the sidecar delivered them.
    logs: Vec<LogView>,
}

/// One container's last log lines, shown as text in a `<pre>` (askama escapes it: a line that
/// holds markup is shown, never run).
struct LogView {
    /// `main-batch`, or `main-batch, attempt 1` for a retried attempt's.
    title: String,
    text: String,
    truncated: bool,
    /// Unfolded: the newest run's lines, the ones a person came for after an alert.
    open: bool,
}

/// The page of `namespace/cronjob` (of one cluster's, when given), or none when no group of it
/// is a CronJob's.
pub fn page(
    store: &Store,
    config: &Config,
    namespace: &str,
    cronjob: &str,
    cluster: Option<&str>,
    now: Nanos,
) -> Option<String> {
    let now_seconds = seconds(now);
    let prefix = &config.external_prefix;
    let mut groups: Vec<(&Group, CronJobRow)> = store
        .groups()
        .filter(|g| g.key.get("namespace") == Some(namespace) && g.key.get("cronjob") == Some(cronjob))
        .filter(|g| cluster.is_none_or(|c| g.key.get("cluster") == Some(c)))
        .filter_map(|g| board::row(g, now_seconds).map(|row| (g, row)))
        .collect();
    if groups.is_empty() {
        return None;
    }
    groups.sort_by(|(a, _), (b, _)| a.key.labels().cmp(b.key.labels()));
    let several = groups.len() > 1;
    let sections = groups.iter().map(|(group, row)| section(group, row, prefix, several, now)).collect();
    let title = format!("{namespace}/{cronjob}");
    Some(render(&CronJobPage {
        chrome: Chrome::new(config, &title, "cronjobs"),
        namespace,
        board_url: format!("{prefix}/cronjobs"),
        namespace_url: format!("{prefix}/cronjobs?namespace={}", encode(namespace)),
        sections,
        width: duration_chart::WIDTH,
        height: duration_chart::HEIGHT,
    }))
}

fn section(group: &Group, row: &CronJobRow, prefix: &str, several: bool, now: Nanos) -> Section {
    let now_seconds = seconds(now);
    let max_run = row.max_run_duration_seconds;
    let judged = run_view::judged(&group.history, max_run, now_seconds);
    let samples: Vec<Sample> = judged
        .iter()
        .map(|(run, outcome)| Sample {
            duration_seconds: run_view::duration(run, *outcome, now_seconds),
            class: outcome.class(),
            title: run_title(run, *outcome, now),
        })
        .collect();
    let mut runs: Vec<RunRow> = judged.iter().rev().map(|(run, outcome)| run_row(run, *outcome, now)).collect();
    if let Some(log) = runs.iter_mut().flat_map(|r| r.logs.iter_mut()).next() {
        log.open = true;
    }
    let cluster = row.cluster.as_ref().map(|c| format!("?cluster={}", encode(c))).unwrap_or_default();
    let json_url =
        format!("{prefix}/api/v1/cronjobs/{}/{}/runs{cluster}", encode(&row.namespace), encode(&row.cronjob));
    Section {
        key: several.then(|| group.key.to_string()),
        status: row.status.as_str(),
        reason: row.reason.clone(),
        schedule: row.schedule.clone().unwrap_or_default(),
        timezone: row.timezone.clone().unwrap_or_default(),
        concurrency_policy: row.concurrency_policy.clone().unwrap_or_default(),
        next: row.next_scheduled.map(|s| When::seconds(s, now)),
        next_overdue: row.next_scheduled.is_some_and(|n| now_seconds - n > row.grace_seconds.unwrap_or(0.0)),
        max_run: max_run.map(duration_words).unwrap_or_default(),
        grace: row.grace_seconds.map(duration_words).unwrap_or_default(),
        page_url: cronjob_page_url(prefix, row),
        group_url: group_url(prefix, &group.key),
        json_url,
        chart: duration_chart::chart(&samples, max_run),
        runs,
    }
}

fn log_views(end: &RunEnd, retried: bool) -> Vec<LogView> {
    end.logs
        .iter()
        .map(|log| LogView {
            title: match end.attempt.filter(|_| retried) {
                Some(attempt) => format!("{}, attempt {attempt}", log.container),
                None => log.container.clone(),
            },
            text: log.text.clone(),
            truncated: log.truncated,
            open: false,
        })
        .collect()
}

fn run_row(run: &RunRecord, outcome: Outcome, now: Nanos) -> RunRow {
    let now_seconds = seconds(now);
    let duration = match run_view::duration(run, outcome, now_seconds) {
        Some(d) if matches!(outcome, Outcome::Running | Outcome::Retrying) => format!("{} so far", duration_words(d)),
        Some(d) => duration_words(d),
        None => String::new(),
    };
    let exit = run
        .end
        .as_ref()
        .map(|end| {
            let several = end.containers.len() > 1;
            let words = end
                .containers
                .iter()
                .map(|c| if several { format!("{}: {}", c.container, exit_words(c)) } else { exit_words(c) });
            words.collect::<Vec<_>>().join(", ")
        })
        .unwrap_or_default();
    let mut attempts = match run.starts {
        0 | 1 => String::new(),
        n => format!("{n} Pods"),
    };
    if let Some(retried) = &run.retried {
        let failed = failed_words(&retried.containers);
        let attempt = retried.attempt.map(|a| format!("attempt {a}")).unwrap_or_else(|| "an attempt".into());
        let what = if failed.is_empty() { "failed".to_string() } else { failed.join(", ") };
        if !attempts.is_empty() {
            attempts.push_str("; ");
        }
        attempts.push_str(&format!("{attempt}: {what}"));
    }
    let id = match run.slot.or(run.start) {
        Some(moment) => format!("run-{}", moment.round() as i64),
        None => format!("run-end-{}", run.end.as_ref().map_or(0, |e| e.completed.round() as i64)),
    };
    // A retried attempt's lines first: it ran first.
    let logs = [(&run.retried, true), (&run.end, false)]
        .into_iter()
        .filter_map(|(end, retried)| end.as_ref().map(|e| (e, retried)))
        .flat_map(|(end, retried)| log_views(end, retried))
        .collect();
    RunRow {
        id,
        class: outcome.class(),
        outcome: outcome.label(),
        scheduled: run.slot.map(|s| When::seconds(s, now)),
        start: run.start.map(|s| When::seconds(s, now)),
        end: run.end.as_ref().map(|e| When::seconds(e.completed, now)),
        duration,
        exit,
        attempts,
        logs,
    }
}
