//! The web UI: the groups page at the UI root (the Pushgateway's page), the CronJob board and
//! the status page, rendered on the server with askama templates (web/templates), which escape
//! every value by default: whatever was pushed is shown as text, never as markup. Reading needs
//! no script; the one small script only sends the delete and wipe requests of the admin API.
//! Every asset is compiled into the binary, so the UI works on a Pi without a network.

use askama::Template;

use super::board::{self, BOARD_STATUSES, CronJobRow, Status, duration_words, exit_words};
use super::run_view::{self, Outcome};
use super::selection::{BOARD_PAGE, GROUPS_PAGE, Page, Selection, encode, group_id};
use crate::exposition::float::to_go_string;
use crate::exposition::text_write::{single_value, type_name};
use crate::gateway::config::Config;
use crate::gateway::store::clock::{rfc3339, seconds, timestamp};
use crate::gateway::store::runs::RunRecord;
use crate::gateway::store::{Group, GroupingKey, Nanos, PUSH_FAILURE_TIME, PUSH_TIME, Store};
use crate::proto::client::{Metric, MetricType};

/// Sent with every page: the pages load nothing but their own assets, and nothing runs but the
/// embedded script, even if a pushed value ever slipped through the escaping.
/// Forms (the filters) send only to the gateway itself.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The groups page's statuses: whether a group's last push was accepted.
pub const GROUP_STATUSES: &[&str] = &["failing", "ok"];

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
pub(super) struct Chrome<'a> {
    pub(super) title: &'a str,
    pub(super) prefix: &'a str,
    pub(super) metrics_path: String,
    pub(super) current: &'static str,
}

impl<'a> Chrome<'a> {
    pub(super) fn new(config: &'a Config, title: &'a str, current: &'static str) -> Chrome<'a> {
        Chrome {
            title,
            prefix: &config.external_prefix,
            metrics_path: format!("{}{}", config.external_prefix, config.telemetry_path),
            current,
        }
    }
}

/// A moment, relative to the page's rendering and absolute (UTC).
pub(super) struct When {
    pub(super) relative: String,
    pub(super) absolute: String,
}

impl When {
    fn nanos(nanos: Nanos, now: Nanos) -> Option<When> {
        (nanos != 0).then(|| When::seconds(seconds(nanos), now))
    }

    pub(super) fn seconds(seconds: f64, now: Nanos) -> When {
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
    filters: Filters,
    pager: Pager,
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
    /// Shown unfolded: the one group a link asked for.
    open: bool,
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

/// The filter form above a list, filled in with the selection it shows.
struct Filters {
    /// Where the form sends its query: the page itself.
    action: String,
    clusters: Vec<(String, bool)>,
    namespace: String,
    /// The statuses the page knows, and which one is chosen.
    statuses: Vec<(&'static str, bool)>,
    text: String,
    /// Whether anything narrows the list, and the link that shows everything again.
    filtered: bool,
    clear_url: String,
}

impl Filters {
    fn new(action: String, selection: &Selection, clusters: Vec<String>, statuses: &[&'static str]) -> Filters {
        Filters {
            clusters: clusters.into_iter().map(|c| (c.clone(), selection.cluster.as_ref() == Some(&c))).collect(),
            namespace: selection.namespace.clone().unwrap_or_default(),
            statuses: statuses
                .iter()
                .map(|s| (*s, selection.statuses.len() == 1 && selection.statuses[0] == *s))
                .collect(),
            text: selection.text.clone(),
            filtered: selection.is_filtered(),
            clear_url: action.clone(),
            action,
        }
    }
}

/// Where a list is: `101-200 of 10000`, and the links to the pages beside.
struct Pager {
    first_shown: usize,
    last_shown: usize,
    total: usize,
    number: usize,
    count: usize,
    previous: Option<String>,
    next: Option<String>,
}

impl Pager {
    fn new(url: &str, selection: &Selection, page: Page) -> Pager {
        let link = |number: usize| format!("{url}{}", selection.query_with(None, Some(number)));
        Pager {
            first_shown: if page.total == 0 { 0 } else { page.start + 1 },
            last_shown: page.end,
            total: page.total,
            number: page.number,
            count: page.count,
            previous: (page.number > 1).then(|| link(page.number - 1)),
            next: (page.number < page.count).then(|| link(page.number + 1)),
        }
    }
}

/// Every cluster named by a grouping key, for the filter form.
fn clusters<'a>(names: impl Iterator<Item = Option<&'a str>>) -> Vec<String> {
    let set: std::collections::BTreeSet<&str> = names.flatten().collect();
    set.into_iter().map(str::to_string).collect()
}

pub fn groups_page(store: &Store, config: &Config, selection: &Selection, now: Nanos) -> String {
    let groups = selected_groups(store, selection);
    let page = selection.page_of(groups.len(), GROUPS_PAGE);
    let url = format!("{}/", config.external_prefix);
    let views = groups[page.start..page.end]
        .iter()
        .map(|g| group_view(g, &config.external_prefix, now, selection.group.is_some()))
        .collect();
    render(&GroupsPage {
        chrome: Chrome::new(config, "Groups", "groups"),
        groups: views,
        filters: Filters::new(
            url.clone(),
            selection,
            clusters(store.groups().map(|g| g.key.get("cluster"))),
            GROUP_STATUSES,
        ),
        pager: Pager::new(&url, selection, page),
        admin_api: config.enable_admin_api,
        wipe_url: format!("{}/api/v1/admin/wipe", config.external_prefix),
        push_time: PUSH_TIME,
        push_failure_time: PUSH_FAILURE_TIME,
    })
}

/// The groups a selection asks for: problems first (a group whose last push was refused), then
/// by job, then by the rest of the key, so that a job's groups stay together.
fn selected_groups<'a>(store: &'a Store, selection: &Selection) -> Vec<&'a Group> {
    let mut groups: Vec<&Group> = store.groups().filter(|g| selection.admits_group(g)).collect();
    groups.sort_by(|a, b| {
        (a.last_push_successful(), a.key.get("job"), a.key.labels()).cmp(&(
            b.last_push_successful(),
            b.key.get("job"),
            b.key.labels(),
        ))
    });
    groups
}

fn group_view(group: &Group, prefix: &str, now: Nanos, open: bool) -> GroupView {
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
        open,
        last_push: When::nanos(group.last_push, now),
        last_failure: When::nanos(group.last_failure, now),
        failing: !group.last_push_successful(),
        delete_url: format!("{prefix}{}", group.key.push_path()),
        families,
    }
}

/// The id of a group's element on the groups page, which the board links to.
pub(super) fn anchor(key: &GroupingKey) -> String {
    format!("group-{}", group_id(key))
}

/// The groups page showing only the group of `key`, unfolded.
pub(super) fn group_url(prefix: &str, key: &GroupingKey) -> String {
    format!("{prefix}/?group={}#{}", group_id(key), anchor(key))
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
    /// Each status, how many CronJobs the other filters leave with it, and the link that shows
    /// only those.
    counts: Vec<(&'static str, usize, String)>,
    /// Whether the store holds any CronJob at all (else the page says how one appears).
    any: bool,
    filters: Filters,
    pager: Pager,
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
    page_url: String,
    /// The last runs, oldest first: a mark each.
    runs: Vec<Mark>,
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

/// One run in a row's strip: coloured by its outcome, saying it when pointed at.
struct Mark {
    class: &'static str,
    title: String,
}

/// How many runs a row's strip shows.
const STRIP_RUNS: usize = 10;

pub fn board_page(store: &Store, config: &Config, selection: &Selection, now: Nanos) -> String {
    let now_seconds = seconds(now);
    let all = board::rows(store, now_seconds);
    let any = !all.is_empty();
    let cluster_names = clusters(all.iter().map(|r| r.cluster.as_deref()));
    let (rows, counts) = select_rows(all, selection);
    let url = format!("{}/cronjobs", config.external_prefix);
    let counts = counts
        .into_iter()
        .map(|(status, count)| {
            (status.as_str(), count, format!("{url}{}", selection.query_with(Some(&[status.as_str()]), None)))
        })
        .collect();
    let page = selection.page_of(rows.len(), BOARD_PAGE);
    let shown = &rows[page.start..page.end];
    let mut views: Vec<RowView> = shown.iter().map(|r| row_view(store, r, &config.external_prefix, now)).collect();
    if shown.iter().any(|r| r.cluster.is_some()) {
        let mut previous = None;
        for (view, row) in views.iter_mut().zip(shown) {
            view.cluster_starts = previous != Some(&row.cluster);
            previous = Some(&row.cluster);
        }
    }
    render(&BoardPage {
        chrome: Chrome::new(config, "CronJobs", "cronjobs"),
        rows: views,
        counts,
        any,
        filters: Filters::new(url.clone(), selection, cluster_names, BOARD_STATUSES),
        pager: Pager::new(&url, selection, page),
        json_url: format!("{}/api/v1/cronjobs{}", config.external_prefix, selection.query_with(None, None)),
    })
}

/// The rows a selection asks for, in the board's order, and how many of each status its other
/// filters leave (the counts above the board, which link to one status each).
fn select_rows(rows: Vec<CronJobRow>, selection: &Selection) -> (Vec<CronJobRow>, Vec<(Status, usize)>) {
    let mut counts: Vec<(Status, usize)> = Status::ALL.iter().map(|s| (*s, 0)).collect();
    let mut selected = Vec::new();
    for row in rows {
        let names = [row.namespace.as_str(), row.cronjob.as_str(), row.job.as_str()];
        if !selection.admits(row.cluster.as_deref(), Some(&row.namespace), names) {
            continue;
        }
        if let Some(count) = counts.iter_mut().find(|(s, _)| *s == row.status) {
            count.1 += 1;
        }
        if selection.admits_status(row.status.as_str()) {
            selected.push(row);
        }
    }
    (selected, counts)
}

fn row_view(store: &Store, row: &CronJobRow, prefix: &str, now: Nanos) -> RowView {
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
    let runs = store.group(&row.key).map_or_else(Vec::new, |group| strip(group, row, now));
    RowView {
        cluster: row.cluster.clone().unwrap_or_default(),
        cluster_starts: false,
        status: row.status.as_str(),
        reason: row.reason.clone(),
        namespace: row.namespace.clone(),
        cronjob: row.cronjob.clone(),
        page_url: cronjob_page_url(prefix, row),
        runs,
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

/// The marks of a row's last runs, oldest first.
fn strip(group: &Group, row: &CronJobRow, now: Nanos) -> Vec<Mark> {
    let judged = run_view::judged(&group.history, row.max_run_duration_seconds, seconds(now));
    let shown = &judged[judged.len().saturating_sub(STRIP_RUNS)..];
    shown.iter().map(|(run, outcome)| Mark { class: outcome.class(), title: run_title(run, *outcome, now) }).collect()
}

/// What a run's mark or bar says when pointed at: how it went, and when it started.
pub(super) fn run_title(run: &RunRecord, outcome: Outcome, now: Nanos) -> String {
    let when = run.start.or(run.slot).map(|s| When::seconds(s, now).absolute).unwrap_or_default();
    run_view::summary(run, outcome, seconds(now), &when)
}

/// A CronJob's page: `/cronjobs/<namespace>/<cronjob>`, and its cluster's when it has one.
pub(super) fn cronjob_page_url(prefix: &str, row: &CronJobRow) -> String {
    let cluster = row.cluster.as_ref().map(|c| format!("?cluster={}", encode(c))).unwrap_or_default();
    format!("{prefix}/cronjobs/{}/{}{cluster}", encode(&row.namespace), encode(&row.cronjob))
}

/// `GET /api/v1/cronjobs`: what the selection asks for; one page of it when a page is asked for.
pub fn board_json(store: &Store, selection: &Selection, now: Nanos) -> String {
    let now = seconds(now);
    let (rows, _) = select_rows(board::rows(store, now), selection);
    if selection.page.is_none() && selection.per_page.is_none() {
        return board::json(&rows, now, None);
    }
    let page = selection.page_of(rows.len(), BOARD_PAGE);
    board::json(&rows[page.start..page.end], now, Some(page))
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

pub(super) fn render(page: &impl Template) -> String {
    // The templates are checked when the binary is compiled; what can fail at run time is only
    // writing into the String, which does not fail.
    page.render().unwrap_or_else(|e| format!("<!DOCTYPE html><p>The page could not be rendered: {e}</p>"))
}
