//! manifests/grafana/cronpush.json, the CronJob dashboard, checked against the real thing: every
//! panel query and every template variable's query, with the variables substituted as Grafana
//! substitutes them, is parsed by a real Prometheus (Debian's 2.42) scraping the real cronpush
//! gateway; every metric the queries read is one cronpush pushes or the gateway or Prometheus
//! provides; and after realistic pushes of CronJobs of the same name in two namespaces and in
//! two clusters, the repeated row has one copy per CronJob (its options made as Grafana makes
//! them), and each copy's queries read that CronJob alone and show its own data.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use support::Server;
use support::prometheus::{GATEWAY_SERIES, PUSHED_SERIES};
use support::promql::{self, Token};

/// How long Prometheus may take to show a push (1 s scrape and rule intervals, loaded box).
const SCRAPE_WAIT: Duration = Duration::from_secs(60);

/// Every series a query may read: what cronpush pushes (README, "What a CronJob run pushes"),
/// what the gateway adds to each group, and what Prometheus makes itself.
fn known_metric(name: &str) -> bool {
    PUSHED_SERIES.contains(&name) || GATEWAY_SERIES.contains(&name) || ["ALERTS", "up"].contains(&name)
}

/// The filter every panel selector must carry: the repeated row's CronJob. The `cronjob`
/// variable's value is that CronJob's exact selector, `[cluster="…",]cronjob="…",namespace="…"`. `raw`, since
/// Grafana regex-escapes a multi-value variable's plain `$cronjob`: a `.` in a CronJob name
/// would become `\.`, which an equality matcher takes literally.
const ROW_FILTER: &str = "${cronjob:raw}";

/// The `cronjob` variable: one option per cluster, namespace and CronJob name. Grafana's
/// `query_result` makes an option of each series, the line
/// `{cluster="…",cronjob="…",namespace="…",row="…/…/…"} 1 <ms>` (labels sorted, as Prometheus
/// answers; no cluster, and a row starting with `/`, for groups without one); the regex keeps the
/// selector as the option's value and `[cluster/]namespace/cronjob` as its text.
const ROW_QUERY: &str = r#"query_result(label_join(count by (cluster, namespace, cronjob) (cronjob_info{cluster=~"$cluster", namespace=~"$namespace"}), "row", "/", "cluster", "namespace", "cronjob"))"#;
const ROW_REGEX: &str =
    r#"/^\{(?<value>(?:cluster="[^"]*",)?cronjob="[^"]*",namespace="[^"]*"),row="\/?(?<text>[^"]*)"\}/"#;

/// What the multi-value `namespace` variable stands for with All (`allValue: .+`).
const ALL: &str = ".+";
/// What the `cluster` variable stands for with All (`allValue: .*`: groups without one too).
const ALL_CLUSTERS: &str = ".*";

/// A CronJob's selector: the `cronjob` variable's value for it.
fn row_selector(namespace: &str, cronjob: &str) -> String {
    format!(r#"cronjob="{cronjob}",namespace="{namespace}""#)
}

/// The selector of a CronJob in a named cluster.
fn cluster_row_selector(cluster: &str, namespace: &str, cronjob: &str) -> String {
    format!(r#"cluster="{cluster}",{}"#, row_selector(namespace, cronjob))
}

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn dashboard() -> Value {
    let path = repo("manifests/grafana/cronpush.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()))
}

fn array(value: &Value) -> &[Value] {
    value.as_array().map(Vec::as_slice).unwrap_or_default()
}

/// Every panel, rows' nested panels (collapsed rows keep theirs inside) included.
fn all_panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(panels: &'a [Value], out: &mut Vec<&'a Value>) {
        for panel in panels {
            out.push(panel);
            walk(array(&panel["panels"]), out);
        }
    }
    let mut out = Vec::new();
    walk(array(&dashboard["panels"]), &mut out);
    out
}

/// Every target's PromQL, named by panel title and refId.
fn panel_exprs(dashboard: &Value) -> Vec<(String, String)> {
    all_panels(dashboard)
        .into_iter()
        .flat_map(|panel| {
            array(&panel["targets"]).iter().filter_map(move |target| {
                let expr = target["expr"].as_str()?;
                let title = panel["title"].as_str().unwrap_or("?");
                Some((format!("panel {} {title:?} target {}", panel["id"], target["refId"]), expr.to_string()))
            })
        })
        .collect()
}

/// Every query variable's query (a string, or the query editor's object with `query`).
fn variable_queries(dashboard: &Value) -> Vec<(String, String)> {
    array(&dashboard["templating"]["list"])
        .iter()
        .filter(|v| v["type"] == "query")
        .map(|v| {
            let query = v["query"].as_str().or_else(|| v["query"]["query"].as_str());
            let query = query.unwrap_or_else(|| panic!("variable {} has no query: {v}", v["name"]));
            (format!("variable {}", v["name"]), query.to_string())
        })
        .collect()
}

fn variable<'a>(dashboard: &'a Value, name: &str) -> &'a Value {
    array(&dashboard["templating"]["list"])
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no variable {name}"))
}

/// The dashboard's variables replaced the way Grafana replaces them before sending a query:
/// `cluster` and `namespace` as All, `${cronjob:raw}` as the repeated row's CronJob (its
/// selector, `row`). Any other spelling of `cronjob` is left in place, and fails.
fn substitute(expr: &str, row: &str) -> String {
    let mut out = expr.replace(ROW_FILTER, row);
    while let Some(start) = out.find("${cluster:") {
        let end = start + out[start..].find('}').expect("closing brace");
        out.replace_range(start..=end, ALL_CLUSTERS);
    }
    for spelling in ["${cluster}", "[[cluster]]", "$cluster"] {
        out = out.replace(spelling, ALL_CLUSTERS);
    }
    // `${namespace:format}` first, then the plain spellings.
    while let Some(start) = out.find("${namespace:") {
        let end = start + out[start..].find('}').expect("closing brace");
        out.replace_range(start..=end, ALL);
    }
    for spelling in ["${namespace}", "[[namespace]]", "$namespace"] {
        out = out.replace(spelling, ALL);
    }
    for (name, value) in [("$__rate_interval", "1m"), ("$__interval", "15s"), ("$__range", "1h")] {
        out = out.replace(&format!("${{{}}}", &name[1..]), value).replace(name, value);
    }
    assert!(!out.contains('$') && !out.contains("[["), "unknown variable left in {out:?} (from {expr:?})");
    out
}

/// How Grafana sends a query to Prometheus.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Api {
    /// `label_values(selector, label)`: the series API.
    Series,
    /// `query_result(expr)` and panel targets: an instant query.
    Query,
}

/// A variable query's PromQL and how Grafana sends it: the selector of
/// `label_values(selector, label)`, the expression of `query_result(expr)`.
fn variable_promql(what: &str, query: &str) -> (String, Api) {
    let query = query.trim();
    if let Some(inner) = query.strip_prefix("label_values(").and_then(|q| q.strip_suffix(')')) {
        let (selector, _label) = inner.rsplit_once(',').unwrap_or_else(|| panic!("{what}: {query:?} has no selector"));
        return (selector.trim().to_string(), Api::Series);
    }
    let expr = query.strip_prefix("query_result(").and_then(|q| q.strip_suffix(')'));
    let expr = expr.unwrap_or_else(|| panic!("{what}: {query:?} is neither label_values(…, …) nor query_result(…)"));
    (expr.to_string(), Api::Query)
}

// ---------------------------------------------------------------------------------------------
// A variable's options, made from Prometheus' answer as Grafana makes them
// ---------------------------------------------------------------------------------------------

/// The named groups of `regex`'s first match in each of `lines` (`None`: no match), as
/// JavaScript finds them: evaluated by Node.js, whose engine (V8) is the browser's that runs
/// Grafana's variable code. `regex` is written `/…/flags`, as in the dashboard.
fn js_regex_groups(regex: &str, lines: &[String]) -> Vec<Option<BTreeMap<String, String>>> {
    const SCRIPT: &str = r#"
const [written, lines] = JSON.parse(process.argv[1]);
const [, source, flags] = written.match(/^\/(.*)\/([a-z]*)$/s);
const regex = new RegExp(source, flags);
const groups = lines.map((line) => { const m = line.match(regex); return m ? (m.groups ?? {}) : null; });
process.stdout.write(JSON.stringify(groups));
"#;
    let out = std::process::Command::new("node")
        .args(["-e", SCRIPT, &json!([regex, lines]).to_string()])
        .output()
        .expect("node (Debian package nodejs) runs");
    assert!(out.status.success(), "node: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("node answers JSON")
}

/// A `query_result` variable's options as Grafana makes them from an instant query's result:
/// each series as the line `name{k="v",…} value milliseconds`, kept when the variable's regex
/// matches it; the named groups `value` and `text` stand in for each other when one is missing;
/// the first option of a value wins. (text, value) pairs.
fn query_result_options(result: &[Value], regex: &str) -> Vec<(String, String)> {
    let lines: Vec<String> = result
        .iter()
        .map(|series| {
            let mut labels = series["metric"].as_object().cloned().unwrap_or_default();
            let name = labels.remove("__name__").and_then(|n| n.as_str().map(String::from)).unwrap_or_default();
            let pairs: Vec<String> =
                labels.iter().map(|(k, v)| format!("{k}=\"{}\"", v.as_str().unwrap_or_default())).collect();
            let at = series["value"][0].as_f64().expect("a time") * 1000.0;
            format!("{name}{{{}}} {} {at}", pairs.join(","), series["value"][1].as_str().expect("a value"))
        })
        .collect();
    let mut options: Vec<(String, String)> = Vec::new();
    for groups in js_regex_groups(regex, &lines).into_iter().flatten() {
        let (value, text) = match (groups.get("value"), groups.get("text")) {
            (Some(value), Some(text)) => (value.clone(), text.clone()),
            (Some(one), None) | (None, Some(one)) => (one.clone(), one.clone()),
            (None, None) => panic!("{regex:?} has neither a value nor a text group"),
        };
        if !options.iter().any(|(_, v)| *v == value) {
            options.push((text, value));
        }
    }
    options
}

// ---------------------------------------------------------------------------------------------
// The series a PromQL expression reads
// ---------------------------------------------------------------------------------------------

/// The selectors of a PromQL expression: each metric name with its `{...}` matchers, if any.
/// Function calls, aggregators, keywords, strings, label names in braces and in
/// `by`/`without`/`on`/`ignoring`/`group_left`/`group_right` lists, durations and numbers are
/// not metric names.
fn selectors(expr: &str) -> Vec<(String, Option<String>)> {
    let tokens = promql::tokens(expr);
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            Token::Matchers(matchers) => out.push((String::new(), Some(matchers.clone()))),
            Token::Word(word) if !promql::is_keyword(word) => match tokens.get(i + 1) {
                // a function call
                Some(Token::Open) => {}
                Some(Token::Matchers(matchers)) => {
                    out.push((word.clone(), Some(matchers.clone())));
                    i += 1;
                }
                _ => out.push((word.clone(), None)),
            },
            _ => {}
        }
        i += 1;
    }
    out
}

fn metric_names(expr: &str) -> BTreeSet<String> {
    selectors(expr).into_iter().map(|(name, _)| name).filter(|name| !name.is_empty()).collect()
}

/// Every PromQL expression of the dashboard, named, with how Grafana sends it: panel targets as
/// they are, the selector of each `label_values(…)` and the expression of each `query_result(…)`
/// variable query.
fn all_promql(dashboard: &Value) -> Vec<(String, String, Api)> {
    let mut all: Vec<_> = panel_exprs(dashboard).into_iter().map(|(what, expr)| (what, expr, Api::Query)).collect();
    for (what, query) in variable_queries(dashboard) {
        let (expr, api) = variable_promql(&what, &query);
        all.push((what, expr, api));
    }
    all
}

#[test]
fn the_dashboard_is_a_grafana_dashboard_over_a_prometheus_variable() {
    let dashboard = dashboard();
    let schema = dashboard["schemaVersion"].as_u64().expect("schemaVersion");
    assert!((36..=41).contains(&schema), "schemaVersion {schema}");
    assert!(dashboard["uid"].as_str().is_some_and(|u| !u.is_empty()), "a stable uid");

    let datasource = variable(&dashboard, "datasource");
    assert_eq!(datasource["type"], "datasource");
    assert_eq!(datasource["query"], "prometheus");
    let variables = [
        ("cluster", "label_values(cronjob_info, cluster)"),
        ("namespace", r#"label_values(cronjob_info{cluster=~"$cluster"}, namespace)"#),
        ("cronjob", ROW_QUERY),
    ];
    for (name, query) in variables {
        let variable = variable(&dashboard, name);
        assert_eq!(variable["type"], "query", "{name}");
        assert_eq!(variable["multi"], true, "{name} is multi-value");
        assert_eq!(variable["includeAll"], true, "{name} has All");
        assert_eq!(variable["datasource"]["uid"], "${datasource}", "{name}");
        assert_eq!(variable["query"]["query"].as_str().or(variable["query"].as_str()), Some(query), "{name}");
    }
    let cronjob = variable(&dashboard, "cronjob");
    // Grafana's variable editor reads a `query_result` query as type 3 (VarQueryResult).
    assert_eq!(cronjob["query"]["qryType"], 3, "cronjob: a query_result variable");
    assert_eq!(cronjob["regex"], ROW_REGEX, "cronjob: each option's value and text");
    // With All, a repeat takes every option; an allValue would be no selector.
    assert!(cronjob["allValue"].is_null(), "cronjob: no allValue, got {}", cronjob["allValue"]);
    // All clusters must include the groups that have none.
    assert_eq!(variable(&dashboard, "cluster")["allValue"], ALL_CLUSTERS, "cluster: All matches no cluster too");

    let panels = all_panels(&dashboard);
    let mut ids = BTreeSet::new();
    for panel in &panels {
        let id = panel["id"].as_u64().unwrap_or_else(|| panic!("panel without an id: {panel}"));
        assert!(ids.insert(id), "panel id {id} twice");
        for field in ["h", "w", "x", "y"] {
            assert!(panel["gridPos"][field].is_u64(), "panel {id} has no gridPos.{field}");
        }
        if panel["type"] != "row" {
            assert_eq!(panel["datasource"]["uid"], "${datasource}", "panel {id}");
            assert!(!array(&panel["targets"]).is_empty(), "panel {id} has no query");
            for target in array(&panel["targets"]) {
                assert_eq!(target["datasource"]["uid"], "${datasource}", "panel {id} target {}", target["refId"]);
            }
        }
    }
    let rows: Vec<_> = panels.iter().filter(|p| p["type"] == "row").collect();
    assert!(
        rows.iter()
            .any(|r| r["repeat"] == "cronjob" && r["title"].as_str().is_some_and(|t| t.contains("${cronjob:text}"))),
        "one row per CronJob: a row repeated over $cronjob, titled with its namespace/cronjob"
    );

    let titles: BTreeSet<&str> = panels.iter().filter_map(|p| p["title"].as_str()).collect();
    for title in [
        "Last outcome",
        "Exit code per container",
        "Duration over time",
        "Lateness of last start",
        "Next expected run",
        "Firing alerts",
    ] {
        assert!(titles.contains(title), "no panel {title:?}; panels: {titles:?}");
    }
    let outcome = panels.iter().find(|p| p["title"] == "Last outcome").expect("outcome");
    let mapped: BTreeSet<&str> = array(&outcome["fieldConfig"]["defaults"]["mappings"])
        .iter()
        .flat_map(|m| m["options"].as_object().into_iter().flat_map(|o| o.values()))
        .filter_map(|o| o["text"].as_str())
        .collect();
    assert_eq!(mapped, BTreeSet::from(["success", "failure", "unknown", "retrying"]));
    let next = panels.iter().find(|p| p["title"] == "Next expected run").expect("next run");
    assert_eq!(next["fieldConfig"]["defaults"]["unit"], "dateTimeFromNow");
    assert_eq!(next["fieldConfig"]["defaults"]["mappings"][0]["options"]["0"]["text"], "suspended");
}

#[test]
fn every_selector_filters_on_the_row_and_reads_a_known_metric() {
    let dashboard = dashboard();
    let mut problems = Vec::new();
    for (what, expr) in panel_exprs(&dashboard) {
        let found = selectors(&expr);
        if found.is_empty() {
            problems.push(format!("{what}: no series selector in {expr:?}"));
        }
        for (name, matchers) in found {
            if !known_metric(&name) {
                problems.push(format!("{what}: reads {name:?}, which nothing provides"));
            }
            let matchers = matchers.unwrap_or_default();
            if !matchers.contains(ROW_FILTER) {
                problems.push(format!("{what}: selector {name}{matchers} does not filter on the row's {ROW_FILTER}"));
            }
        }
    }
    for (what, query) in variable_queries(&dashboard) {
        for name in metric_names(&variable_promql(&what, &query).0) {
            if !known_metric(&name) {
                problems.push(format!("{what}: reads {name:?}, which nothing provides"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn metric_names_skip_functions_keywords_labels_strings_and_durations() {
    let expr = r#"max by (namespace, cronjob) (rate(foo_total{job="x", bar=~"a{b}"}[5m] offset 1h))
        * on(job, container) group_left(reason, signal) bar_info
        and ignoring(x) (time() - baz:ratio > bool 1e3) or sum without (le) (histogram_quantile(0.9, qux))
        unless count_values("value", up) / 'quoted_thing' "#;
    assert_eq!(
        metric_names(expr),
        ["bar_info", "baz:ratio", "foo_total", "qux", "up"].into_iter().map(String::from).collect::<BTreeSet<_>>()
    );
    assert_eq!(
        selectors(r#"a{x="}"} + b"#),
        vec![("a".to_string(), Some(r#"{x="}"}"#.to_string())), ("b".into(), None)]
    );
    assert_eq!(variable_promql("v", r#"label_values(m{a=~"$a"}, b)"#), (r#"m{a=~"$a"}"#.to_string(), Api::Series));
    assert_eq!(variable_promql("v", "query_result(count(m))"), ("count(m)".to_string(), Api::Query));
    assert_eq!(
        substitute(r#"rate(m{${cronjob:raw}, a=~"$namespace", c=~"${namespace:regex}"}[$__rate_interval])"#, "x=\"y\""),
        r#"rate(m{x="y", a=~".+", c=~".+"}[1m])"#
    );
    // Grafana would regex-escape a plain `$cronjob`: left in place, it fails.
    assert!(std::panic::catch_unwind(|| substitute(r#"m{cronjob=~"$cronjob"}"#, "x=\"y\"")).is_err());
}

#[test]
fn the_row_regex_makes_grafanas_options_from_query_result_lines() {
    let series = |labels: Value| json!({"metric": labels, "value": [1700000000.5, "1"]});
    let result = [
        series(json!({"cronjob": "backup", "namespace": "batch", "row": "batch/backup"})),
        series(json!({"cronjob": "db.vacuum", "namespace": "team-a", "row": "team-a/db.vacuum"})),
        series(json!({"cronjob": "backup", "namespace": "batch", "row": "batch/backup"})),
        series(json!({"namespace": "no-cronjob"})),
        series(json!({"cluster": "east", "cronjob": "backup", "namespace": "batch", "row": "east/batch/backup"})),
        series(json!({"cronjob": "sync", "namespace": "ops", "row": "/ops/sync"})),
    ];
    assert_eq!(
        query_result_options(&result, ROW_REGEX),
        vec![
            ("batch/backup".to_string(), row_selector("batch", "backup")),
            ("team-a/db.vacuum".to_string(), row_selector("team-a", "db.vacuum")),
            ("east/batch/backup".to_string(), cluster_row_selector("east", "batch", "backup")),
            ("ops/sync".to_string(), row_selector("ops", "sync")),
        ]
    );
    // Unanchored, as Grafana's documentation filters `up` by instance.
    let lines = [r#"up{instance="a:9090",job="p"} 1 2"#.to_string()];
    let groups = js_regex_groups(r#"/instance="(?<value>[^"]*)"/"#, &lines);
    assert_eq!(groups, [Some(BTreeMap::from([("value".to_string(), "a:9090".to_string())]))]);
    assert_eq!(js_regex_groups(r#"/^x="(?<value>[^"]+)"/"#, &[r#"x="" 1"#.to_string()]), [None], "+ needs a character");
}

/// The shared Prometheus (tests/support/prometheus.rs) evaluating rules.yml, with this file's
/// queries.
struct Prometheus(support::prometheus::Prometheus);

impl Prometheus {
    fn start(gateway: &Server) -> Prometheus {
        let rules = repo("manifests/prometheus/rules.yml");
        Prometheus(support::prometheus::Prometheus::start(gateway, Some(&rules), &[]))
    }

    fn log(&self) -> String {
        self.0.log()
    }

    /// A GET on the HTTP API: the status code and the JSON answer.
    fn api(&self, path: &str, params: &[(&str, &str)]) -> (u16, Value) {
        self.0.get(path, params)
    }

    /// The series of an instant query (`Api::Query`) or matching a selector (`Api::Series`), as
    /// the API returns them, or why Prometheus refused.
    fn ask(&self, expr: &str, api: Api) -> Result<Vec<Value>, String> {
        let (status, json) = match api {
            Api::Query => self.api("/api/v1/query", &[("query", expr)]),
            Api::Series => self.api("/api/v1/series", &[("match[]", expr)]),
        };
        if status != 200 || json["status"] != "success" {
            return Err(format!("HTTP {status}: {} {}", json["errorType"], json["error"]));
        }
        Ok(array(if api == Api::Query { &json["data"]["result"] } else { &json["data"] }).to_vec())
    }

    /// The `cronjob` variable's options, as Grafana makes them with All namespaces.
    fn rows(&self, dashboard: &Value) -> Vec<(String, String)> {
        let variable = variable(dashboard, "cronjob");
        let (expr, api) = variable_promql("variable cronjob", variable["query"]["query"].as_str().expect("query"));
        assert_eq!(api, Api::Query, "the cronjob variable is a query_result");
        let result = self.ask(&substitute(&expr, "unused"), api).unwrap_or_else(|e| panic!("{expr}: {e}"));
        query_result_options(&result, variable["regex"].as_str().expect("regex"))
    }
}

/// How a CronJob's latest run ended, as `cronpush start` and `cronpush sidecar` leave its group:
/// hourly, the slot two minutes ago, started `late` seconds after it, ended `duration` later.
struct Ended {
    late: f64,
    duration: f64,
    /// failure or unknown
    result: &'static str,
    /// (container, exit code, reason)
    containers: &'static [(&'static str, i32, &'static str)],
    /// Whether the CronJob is suspended (`cronjob_suspended`, pushed by the webhook).
    suspended: bool,
}

/// batch/backup: container `main` exited 1 after 40 s, its uploader 0. CronJobFailed fires.
const FAILED: Ended = Ended {
    late: 3.5,
    duration: 40.0,
    result: "failure",
    containers: &[("main", 1, "Error"), ("uploader", 0, "Completed")],
    suspended: false,
};
/// staging/backup, the same name: the sidecar could not learn how `main` ended (exit code -1).
/// CronJobExitStatusUnknown fires. It has been suspended since: its next run shows suspended.
const UNKNOWN: Ended =
    Ended { late: 7.25, duration: 55.0, result: "unknown", containers: &[("main", -1, "Unknown")], suspended: true };

impl Ended {
    /// The slot of the run, two minutes before the minute of `now`.
    fn slot(now: f64) -> f64 {
        (now / 60.0).floor() * 60.0 - 120.0
    }

    fn group(&self, now: f64) -> String {
        let slot = Ended::slot(now);
        let start = slot + self.late;
        let end = start + self.duration;
        let mut group = format!(
            "cronjob_info{{schedule=\"0 * * * *\",timezone=\"UTC\",concurrency_policy=\"Forbid\"}} 1\n\
             cronjob_last_start_timestamp_seconds {start}\n\
             cronjob_last_scheduled_timestamp_seconds {slot}\n\
             cronjob_next_scheduled_timestamp_seconds {next}\n\
             cronjob_schedule_period_seconds 3600\n\
             cronjob_schedule_grace_seconds 300\n\
             cronjob_max_run_duration_seconds 3600\n\
             cronjob_last_completion_timestamp_seconds {end}\n\
             cronjob_last_result{{result=\"{result}\"}} 1\n\
             cronjob_last_duration_seconds {duration}\n\
             cronjob_last_success_timestamp_seconds {previous}\n",
            next = slot + 3600.0,
            previous = end - 3600.0,
            result = self.result,
            duration = self.duration,
        );
        for (container, code, reason) in self.containers {
            group += &format!(
                "cronjob_last_exit_code{{container=\"{container}\"}} {code}\n\
                 cronjob_last_termination_info{{container=\"{container}\",reason=\"{reason}\",signal=\"\"}} 1\n"
            );
        }
        if self.result == "failure" {
            group += &format!("cronjob_last_failure_timestamp_seconds {end}\n");
        }
        if self.suspended {
            group += "cronjob_suspended 1\n";
        }
        group
    }
}

/// What each panel of a CronJob's row shows, by panel title: (series label or "", value).
fn expected_row(run: &Ended, alert: &str, now: f64) -> BTreeMap<&'static str, BTreeSet<(String, String)>> {
    let one = |value: String| BTreeSet::from([(String::new(), value)]);
    // In milliseconds for Grafana's dateTimeFromNow; 0, which the panel maps to "suspended".
    let next = if run.suspended { 0.0 } else { (Ended::slot(now) + 3600.0) * 1000.0 };
    BTreeMap::from([
        ("Next expected run", one(next.to_string())),
        ("Last outcome", one(if run.result == "failure" { "2" } else { "3" }.to_string())),
        ("Lateness of last start", one(run.late.to_string())),
        (
            "Duration over time",
            BTreeSet::from([(String::new(), run.duration.to_string()), (String::new(), "3600".into())]),
        ),
        (
            "Exit code per container",
            run.containers.iter().map(|(c, code, _)| (c.to_string(), code.to_string())).collect(),
        ),
        ("Firing alerts", BTreeSet::from([(alert.to_string(), "1".to_string())])),
    ])
}

/// The cluster, namespace and cronjob labels of a series' labels.
fn cronjob_labels(labels: &Value) -> (Option<String>, Option<String>, Option<String>) {
    let label = |name: &str| labels[name].as_str().map(String::from);
    (label("cluster"), label("namespace"), label("cronjob"))
}

/// Prometheus parses every query and variable query of the dashboard. Then CronJobs named
/// backup are pushed in batch and in staging, and in ops of clusters east and west (one gateway
/// for both, `--cluster-name`): failed runs and runs whose end is unknown.
/// The `cronjob` variable, made as Grafana makes it, has exactly one option per CronJob, and in
/// each copy of the repeated row every selector of every panel query reads that CronJob alone,
/// every panel shows data, and the data is that CronJob's: its outcome, lateness, duration,
/// exit codes and alert.
#[test]
fn each_row_reads_exactly_its_cronjob_through_a_real_prometheus() {
    let dashboard = dashboard();
    let promql = all_promql(&dashboard);
    let gateway = Server::cronpush(&[]);
    let prometheus = Prometheus::start(&gateway);

    // (a) It parses: a syntax error is an HTTP 400 with errorType bad_data, before any data.
    let mut problems = Vec::new();
    for (what, expr, api) in &promql {
        let expr = substitute(expr, &row_selector("parse", "check"));
        if let Err(error) = prometheus.ask(&expr, *api) {
            problems.push(format!("{what}: Prometheus refuses {expr:?}: {error}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // (b) CronJobs of one name in two namespaces, and in one namespace of two clusters.
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs_f64();
    let cronjobs = [
        (None, "batch", &FAILED, "CronJobFailed"),
        (None, "staging", &UNKNOWN, "CronJobExitStatusUnknown"),
        (Some("east"), "ops", &FAILED, "CronJobFailed"),
        (Some("west"), "ops", &UNKNOWN, "CronJobExitStatusUnknown"),
    ];
    let selector = |cluster: Option<&str>, namespace: &str| match cluster {
        Some(cluster) => cluster_row_selector(cluster, namespace, "backup"),
        None => row_selector(namespace, "backup"),
    };
    for (cluster, namespace, run, _) in &cronjobs {
        let cluster = cluster.map(|c| format!("/cluster/{c}")).unwrap_or_default();
        let path = format!("/metrics/job/cronpush{cluster}/namespace/{namespace}/cronjob/backup");
        let reply = gateway.post(&path, &run.group(now));
        assert_eq!(reply.status, 200, "POST {path}: {}", reply.body);
    }
    let expected_rows: BTreeSet<(String, String)> = cronjobs
        .iter()
        .map(|(cluster, ns, _, _)| {
            let text = cluster.map_or_else(|| format!("{ns}/backup"), |c| format!("{c}/{ns}/backup"));
            (text, selector(*cluster, ns))
        })
        .collect();

    // Until each row's panels all show data (both alerts fire at the first evaluation).
    let deadline = Instant::now() + SCRAPE_WAIT;
    loop {
        let rows: BTreeSet<_> = prometheus.rows(&dashboard).into_iter().collect();
        let empty: Vec<String> = expected_rows
            .iter()
            .flat_map(|(_, row)| promql.iter().map(move |p| (row, p)))
            .filter(
                |(row, (_, expr, api))| !matches!(prometheus.ask(&substitute(expr, row), *api), Ok(s) if !s.is_empty()),
            )
            .map(|(row, (what, expr, _))| format!("row {row}: {what}: {expr}"))
            .collect();
        if rows == expected_rows && empty.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            let (_, alerts) = prometheus.api("/api/v1/alerts", &[]);
            panic!(
                "within {SCRAPE_WAIT:?}: rows {rows:?}, expected {expected_rows:?}; no series for:\n{}\nalerts: \
                 {alerts}\nlog:\n{}",
                empty.join("\n"),
                prometheus.log()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }

    for (cluster, namespace, run, alert) in &cronjobs {
        let row = selector(*cluster, namespace);
        let this = BTreeSet::from([(cluster.map(String::from), namespace.to_string(), "backup".to_string())]);
        let mut shown: BTreeMap<&str, BTreeSet<(String, String)>> = BTreeMap::new();
        for (what, expr, _) in promql.iter().filter(|(what, _, _)| what.starts_with("panel ")) {
            let expr = substitute(expr, &row);
            // Every selector reads this CronJob's series alone.
            let mut read = BTreeSet::new();
            for (name, matchers) in selectors(&expr) {
                let selector = format!("{name}{}", matchers.unwrap_or_default());
                for series in prometheus.ask(&selector, Api::Series).unwrap_or_else(|e| panic!("{selector}: {e}")) {
                    let (cl, ns, cj) = cronjob_labels(&series);
                    read.insert((
                        cl,
                        ns.unwrap_or_else(|| panic!("{series}")),
                        cj.unwrap_or_else(|| panic!("{series}")),
                    ));
                }
            }
            assert_eq!(read, this, "row {row}: {what}: the selectors of {expr:?} read {read:?}");
            // Every series it shows that names a CronJob names this one.
            let title = what.split('"').nth(1).expect("a title");
            for series in prometheus.ask(&expr, Api::Query).expect("parsed before") {
                let (cl, ns, cj) = cronjob_labels(&series["metric"]);
                assert!(cl.as_deref() == *cluster || cl.is_none(), "row {row}: {what}: {series}");
                assert!(ns.is_none_or(|ns| ns == *namespace), "row {row}: {what}: {series}");
                assert!(cj.is_none_or(|cj| cj == "backup"), "row {row}: {what}: {series}");
                let label = ["container", "alertname"].iter().find_map(|l| series["metric"][l].as_str());
                let value = series["value"][1].as_str().expect("a value").to_string();
                shown.entry(title).or_default().insert((label.unwrap_or_default().to_string(), value));
            }
        }
        for (title, expected) in expected_row(run, alert, now) {
            assert_eq!(shown.get(title), Some(&expected), "row {row}: panel {title:?}");
        }
    }
}
