//! The web UI: the groups page at the UI root (the Pushgateway's page), the CronJob board and
//! the status page, rendered on the server with askama templates (web/templates), which escape
//! every value by default: whatever was pushed is shown as text, never as markup. Reading needs
//! no script; the one small script only sends the delete and wipe requests of the admin API.
//! Every asset is compiled into the binary, so the UI works on a Pi without a network.

use askama::Template;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::board::{self, CronJobRow, Status, duration_words, exit_words};
use crate::exposition::float::to_go_string;
use crate::exposition::text_write::{single_value, type_name};
use crate::gateway::config::Config;
use crate::gateway::store::clock::{rfc3339, seconds, timestamp};
use crate::gateway::store::{Group, GroupingKey, Nanos, PUSH_FAILURE_TIME, PUSH_TIME, Store};
use crate::proto::client::{Metric, MetricType};

/// Sent with every page: the pages load nothing but their own assets, and nothing runs but the
/// embedded script, even if a pushed value ever slipped through the escaping.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// An embedded asset under `<prefix>/static/`: its content type and bytes.
pub fn asset(name: &str) -> Option<(&'static str, &'static [u8])> {
    match name {
        "cronpush.css" => Some(("text/css; charset=utf-8", include_bytes!("../../../web/static/cronpush.css"))),
        "cronpush.js" => Some(("text/javascript; charset=utf-8", include_bytes!("../../../web/static/cronpush.js"))),
        "favicon.svg" => Some(("image/svg+xml", include_bytes!("../../../web/static/favicon.svg"))),
        _ => None,
    }
}

/// What every page shares: the header's links and which of them is this page.
struct Chrome<'a> {
    title: &'a str,
    prefix: &'a str,
    metrics_path: String,
    current: &'static str,
}

impl<'a> Chrome<'a> {
    fn new(config: &'a Config, title: &'a str, current: &'static str) -> Chrome<'a> {
        Chrome {
            title,
            prefix: &config.external_prefix,
            metrics_path: format!("{}{}", config.external_prefix, config.telemetry_path),
            current,
        }
    }
}

/// A moment, relative to the page's rendering and absolute (UTC).
struct When {
    relative: String,
    absolute: String,
}

impl When {
    fn nanos(nanos: Nanos, now: Nanos) -> Option<When> {
        (nanos != 0).then(|| When::seconds(seconds(nanos), now))
    }

    fn seconds(seconds: f64, now: Nanos) -> When {
        let delta = seconds - self::seconds(now);
        let relative = if delta.abs() < 0.5 {
            "now".to_string()
        } else if delta < 0.0 {
            format!("{} ago", duration_words(delta))
        } else {
            format!("in {}", duration_words(delta))
        };
        let absolute = timestamp(seconds).map_or_else(String::new, |t| {
            t.round(jiff::Unit::Second).map_or_else(|_| t.to_string(), |t| t.to_string())
        });
        When { relative, absolute }
    }
}

#[derive(Template)]
#[template(path = "groups.html")]
struct GroupsPage<'a> {
    chrome: Chrome<'a>,
    groups: Vec<GroupView>,
    admin_api: bool,
    wipe_url: String,
    /// The names of each group's own timestamp series, which the article looks for.
    push_time: &'static str,
    push_failure_time: &'static str,
}

struct GroupView {
    /// The grouping key, `job="x", instance="y"`.
    key: Vec<(String, String)>,
    anchor: String,
    last_push: Option<When>,
    last_failure: Option<When>,
    failing: bool,
    delete_url: String,
    families: Vec<FamilyView>,
}

struct FamilyView {
    name: String,
    type_name: &'static str,
    help: String,
    series: Vec<SeriesView>,
}

struct SeriesView {
    /// The series' labels beyond the grouping key's, which the group's heading shows.
    labels: Vec<(String, String)>,
    value: String,
}

pub fn groups_page(store: &Store, config: &Config, now: Nanos) -> String {
    let mut groups: Vec<&Group> = store.groups().collect();
    // By job, then by the rest of the key: a job's groups stay together.
    groups.sort_by(|a, b| (a.key.get("job"), a.key.labels()).cmp(&(b.key.get("job"), b.key.labels())));
    let groups = groups.into_iter().map(|g| group_view(g, &config.external_prefix, now)).collect();
    render(&GroupsPage {
        chrome: Chrome::new(config, "Groups", "groups"),
        groups,
        admin_api: config.enable_admin_api,
        wipe_url: format!("{}/api/v1/admin/wipe", config.external_prefix),
        push_time: PUSH_TIME,
        push_failure_time: PUSH_FAILURE_TIME,
    })
}

fn group_view(group: &Group, prefix: &str, now: Nanos) -> GroupView {
    let key = group.key.labels().to_vec();
    let families = group
        .families
        .iter()
        .map(|(name, stored)| FamilyView {
            name: name.clone(),
            type_name: type_name(stored.ty()),
            help: stored.help().to_string(),
            series: stored
                .metrics()
                .iter()
                .map(|m| SeriesView {
                    labels: m
                        .label
                        .iter()
                        .filter(|l| group.key.get(l.name()) != Some(l.value()))
                        .map(|l| (l.name().to_string(), l.value().to_string()))
                        .collect(),
                    value: series_value(stored.ty(), m),
                })
                .collect(),
        })
        .collect();
    GroupView {
        key,
        anchor: anchor(&group.key),
        last_push: When::nanos(group.last_push, now),
        last_failure: When::nanos(group.last_failure, now),
        failing: !group.last_push_successful(),
        delete_url: format!("{prefix}{}", group.key.push_path()),
        families,
    }
}

/// The id of a group's element on the groups page, which the board links to.
fn anchor(key: &GroupingKey) -> String {
    format!("group-{}", URL_SAFE_NO_PAD.encode(key.to_string()))
}

/// A series' value as the text format writes it; summaries and histograms in brief.
fn series_value(ty: MetricType, metric: &Metric) -> String {
    match ty {
        MetricType::Counter | MetricType::Gauge | MetricType::Untyped => {
            to_go_string(single_value(ty, metric).unwrap_or_default())
        }
        MetricType::Summary => {
            let summary = metric.summary.clone().unwrap_or_default();
            let mut parts = vec![
                format!("count {}", summary.sample_count()),
                format!("sum {}", to_go_string(summary.sample_sum())),
            ];
            parts.extend(
                summary
                    .quantile
                    .iter()
                    .map(|q| format!("{{quantile=\"{}\"}} {}", to_go_string(q.quantile()), to_go_string(q.value()))),
            );
            parts.join(" · ")
        }
        MetricType::Histogram | MetricType::GaugeHistogram => {
            let histogram = metric.histogram.clone().unwrap_or_default();
            let mut parts = vec![
                format!("count {}", histogram.sample_count()),
                format!("sum {}", to_go_string(histogram.sample_sum())),
            ];
            parts.extend(
                histogram
                    .bucket
                    .iter()
                    .map(|b| format!("{{le=\"{}\"}} {}", to_go_string(b.upper_bound()), b.cumulative_count())),
            );
            if !histogram.positive_span.is_empty()
                || !histogram.negative_span.is_empty()
                || histogram.zero_count.is_some()
            {
                parts.push("native buckets".to_string());
            }
            parts.join(" · ")
        }
    }
}

#[derive(Template)]
#[template(path = "cronjobs.html")]
struct BoardPage<'a> {
    chrome: Chrome<'a>,
    rows: Vec<RowView>,
    counts: Vec<(&'static str, usize)>,
    json_url: String,
}

struct RowView {
    /// The row's cluster, and whether it is the first row of its cluster on a board that has
    /// clusters (then a heading names it).
    cluster: String,
    cluster_starts: bool,
    status: &'static str,
    reason: String,
    namespace: String,
    cronjob: String,
    group_anchor: String,
    schedule: String,
    timezone: String,
    last_start: Option<When>,
    last_end: Option<When>,
    running: bool,
    duration: String,
    exit: String,
    next: Option<When>,
    next_overdue: bool,
}

pub fn board_page(store: &Store, config: &Config, now: Nanos) -> String {
    let now_seconds = seconds(now);
    let rows = board::rows(store, now_seconds);
    let counts = [Status::Failed, Status::Late, Status::Unknown, Status::Running, Status::Suspended, Status::Ok]
        .into_iter()
        .map(|s| (s.as_str(), rows.iter().filter(|r| r.status == s).count()))
        .collect();
    let mut views: Vec<RowView> = rows.iter().map(|r| row_view(r, now)).collect();
    if rows.iter().any(|r| r.cluster.is_some()) {
        let mut previous = None;
        for (view, row) in views.iter_mut().zip(&rows) {
            view.cluster_starts = previous != Some(&row.cluster);
            previous = Some(&row.cluster);
        }
    }
    let rows = views;
    render(&BoardPage {
        chrome: Chrome::new(config, "CronJobs", "cronjobs"),
        rows,
        counts,
        json_url: format!("{}/api/v1/cronjobs", config.external_prefix),
    })
}

fn row_view(row: &CronJobRow, now: Nanos) -> RowView {
    let now_seconds = seconds(now);
    let duration = if row.running {
        row.last_start.map(|s| format!("{} so far", duration_words(now_seconds - s))).unwrap_or_default()
    } else {
        row.last_duration_seconds.map(duration_words).unwrap_or_default()
    };
    let exit = row
        .containers
        .iter()
        .map(|c| if row.containers.len() > 1 { format!("{}: {}", c.container, exit_words(c)) } else { exit_words(c) })
        .collect::<Vec<_>>()
        .join(", ");
    RowView {
        cluster: row.cluster.clone().unwrap_or_default(),
        cluster_starts: false,
        status: row.status.as_str(),
        reason: row.reason.clone(),
        namespace: row.namespace.clone(),
        cronjob: row.cronjob.clone(),
        group_anchor: anchor(&row.key),
        schedule: row.schedule.clone().unwrap_or_default(),
        timezone: row.timezone.clone().unwrap_or_default(),
        last_start: row.last_start.map(|s| When::seconds(s, now)),
        last_end: row.last_completion.map(|s| When::seconds(s, now)),
        running: row.running,
        duration,
        exit: if row.running && !exit.is_empty() { format!("previous run: {exit}") } else { exit },
        next: row.next_scheduled.map(|s| When::seconds(s, now)),
        next_overdue: row.next_scheduled.is_some_and(|n| now_seconds - n > row.grace_seconds.unwrap_or(0.0)),
    }
}

/// `GET /api/v1/cronjobs`.
pub fn board_json(store: &Store, now: Nanos) -> String {
    let now = seconds(now);
    board::json(&board::rows(store, now), now)
}

#[derive(Template)]
#[template(path = "status.html")]
struct StatusPage<'a> {
    chrome: Chrome<'a>,
    version: &'static str,
    revision: &'static str,
    started: When,
    uptime: String,
    groups: usize,
    flags: Vec<(&'a str, &'a str)>,
}

pub fn status_page(store: &Store, config: &Config, started: Nanos, now: Nanos) -> String {
    render(&StatusPage {
        chrome: Chrome::new(config, "Status", "status"),
        version: env!("CARGO_PKG_VERSION"),
        revision: option_env!("CRONPUSH_REVISION").unwrap_or("unknown"),
        started: When::nanos(started, now).unwrap_or(When { relative: String::new(), absolute: rfc3339(started) }),
        uptime: duration_words(seconds(now - started)),
        groups: store.group_count(),
        flags: config.flags.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect(),
    })
}

fn render(page: &impl Template) -> String {
    // The templates are checked when the binary is compiled; what can fail at run time is only
    // writing into the String, which does not fail.
    page.render().unwrap_or_else(|e| format!("<!DOCTYPE html><p>The page could not be rendered: {e}</p>"))
}
