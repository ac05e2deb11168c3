//! manifests/grafana/cronpush.json, the CronJob dashboard, checked against the real thing: every
//! panel query and every template variable's series selector, with the variables substituted as
//! Grafana substitutes them, is parsed by a real Prometheus (Debian's 2.42) scraping the real
//! cronpush gateway; every metric the queries read is one cronpush pushes or the gateway or
//! Prometheus provides; and after a realistic push of one CronJob's group, every panel shows data.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use support::Server;
use support::prometheus::{GATEWAY_SERIES, PUSHED_SERIES};

/// How long Prometheus may take to show a push (1 s scrape and rule intervals, loaded box).
const SCRAPE_WAIT: Duration = Duration::from_secs(60);

/// Every series a query may read: what cronpush pushes (README, "What a CronJob run pushes"),
/// what the gateway adds to each group, and what Prometheus makes itself.
fn known_metric(name: &str) -> bool {
    PUSHED_SERIES.contains(&name) || GATEWAY_SERIES.contains(&name) || ["ALERTS", "up"].contains(&name)
}

/// The filter every panel selector must carry, so that the variables (and the repeated row) apply.
const FILTERS: &[&str] = &[r#"namespace=~"$namespace""#, r#"cronjob=~"$cronjob""#];

/// A regex value each multi-value variable takes, as Grafana's "All" does with `allValue: .+`.
const ALL: &str = ".+";

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

/// The dashboard's variables replaced the way Grafana replaces them before sending a query.
fn substitute(expr: &str) -> String {
    let mut out = expr.to_string();
    for name in ["namespace", "cronjob"] {
        // `${name:format}` first, then the plain spellings.
        while let Some(start) = out.find(&format!("${{{name}:")) {
            let end = start + out[start..].find('}').expect("closing brace");
            out.replace_range(start..=end, ALL);
        }
        for spelling in [format!("${{{name}}}"), format!("[[{name}]]"), format!("${name}")] {
            out = out.replace(&spelling, ALL);
        }
    }
    for (name, value) in [("$__rate_interval", "1m"), ("$__interval", "15s"), ("$__range", "1h")] {
        out = out.replace(&format!("${{{}}}", &name[1..]), value).replace(name, value);
    }
    assert!(!out.contains('$') && !out.contains("[["), "unknown variable left in {out:?} (from {expr:?})");
    out
}

/// `label_values(selector, label)` → the selector; `label_values(label)` → none.
fn label_values_selector(query: &str) -> Option<String> {
    let inner = query.trim().strip_prefix("label_values(")?.strip_suffix(')')?;
    let (selector, _label) = inner.rsplit_once(',')?;
    Some(selector.trim().to_string())
}

const AGGREGATORS: &[&str] =
    &["sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk", "quantile"];
const GROUPINGS: &[&str] = &["by", "without", "on", "ignoring", "group_left", "group_right"];
const KEYWORDS: &[&str] = &["and", "or", "unless", "bool", "offset", "atan2", "inf", "nan", "start", "end"];

/// Skips from an opening bracket at `i` past its matching close, strings included.
fn skip_balanced(chars: &[char], mut i: usize, open: char, close: char) -> usize {
    let mut depth = 0;
    while i < chars.len() {
        match chars[i] {
            '"' | '\'' | '`' => i = skip_string(chars, i),
            c if c == open => {
                depth += 1;
                i += 1;
            }
            c if c == close => {
                depth -= 1;
                i += 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    panic!("unbalanced {open}{close} in {:?}", chars.iter().collect::<String>())
}

fn skip_string(chars: &[char], i: usize) -> usize {
    let quote = chars[i];
    let mut j = i + 1;
    while j < chars.len() && chars[j] != quote {
        j += if chars[j] == '\\' && quote != '`' { 2 } else { 1 };
    }
    j + 1
}

fn next_non_space(chars: &[char], mut i: usize) -> usize {
    while i < chars.len() && chars[i].is_whitespace() {
        i += 1;
    }
    i
}

/// The selectors of a PromQL expression: each metric name with its `{...}` matchers, if any.
/// Function calls, aggregators, keywords, strings, label names in braces and in
/// `by`/`without`/`on`/`ignoring`/`group_left`/`group_right` lists, durations and numbers are
/// not metric names.
fn selectors(expr: &str) -> Vec<(String, Option<String>)> {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i = skip_string(&chars, i);
        } else if c == '{' {
            let end = skip_balanced(&chars, i, '{', '}');
            out.push((String::new(), Some(chars[i..end].iter().collect())));
            i = end;
        } else if c == '[' {
            i = skip_balanced(&chars, i, '[', ']');
        } else if c.is_ascii_digit() || c == '.' {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.' || chars[i] == '_') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = next_non_space(&chars, i);
            let lower = word.to_ascii_lowercase();
            if GROUPINGS.contains(&lower.as_str()) {
                if chars.get(next) == Some(&'(') {
                    i = skip_balanced(&chars, next, '(', ')');
                }
            } else if AGGREGATORS.contains(&lower.as_str()) || KEYWORDS.contains(&lower.as_str()) {
                // not a metric
            } else if chars.get(next) == Some(&'(') {
                // a function call
            } else if chars.get(next) == Some(&'{') {
                let end = skip_balanced(&chars, next, '{', '}');
                out.push((word, Some(chars[next..end].iter().collect())));
                i = end;
            } else {
                out.push((word, None));
            }
        } else {
            i += 1;
        }
    }
    out
}

fn metric_names(expr: &str) -> BTreeSet<String> {
    selectors(expr).into_iter().map(|(name, _)| name).filter(|name| !name.is_empty()).collect()
}

/// Every PromQL expression of the dashboard, named: panel targets as they are, and the series
/// selector inside each `label_values(...)` variable query.
fn all_promql(dashboard: &Value) -> Vec<(String, String)> {
    let mut all = panel_exprs(dashboard);
    for (what, query) in variable_queries(dashboard) {
        let selector = label_values_selector(&query)
            .unwrap_or_else(|| panic!("{what}: {query:?} is not label_values(<selector>, <label>)"));
        all.push((what, selector));
    }
    all
}

#[test]
fn the_dashboard_is_a_grafana_dashboard_over_a_prometheus_variable() {
    let dashboard = dashboard();
    let schema = dashboard["schemaVersion"].as_u64().expect("schemaVersion");
    assert!((36..=41).contains(&schema), "schemaVersion {schema}");
    assert!(dashboard["uid"].as_str().is_some_and(|u| !u.is_empty()), "a stable uid");

    let variables: BTreeMap<&str, &Value> = array(&dashboard["templating"]["list"])
        .iter()
        .map(|v| (v["name"].as_str().expect("variable name"), v))
        .collect();
    let datasource = variables.get("datasource").expect("a datasource variable");
    assert_eq!(datasource["type"], "datasource");
    assert_eq!(datasource["query"], "prometheus");
    for (name, selector) in [("namespace", "cronjob_info"), ("cronjob", r#"cronjob_info{namespace=~"$namespace"}"#)] {
        let variable = variables.get(name).unwrap_or_else(|| panic!("a {name} variable"));
        assert_eq!(variable["type"], "query", "{name}");
        assert_eq!(variable["multi"], true, "{name} is multi-value");
        assert_eq!(variable["includeAll"], true, "{name} has All");
        assert_eq!(variable["datasource"]["uid"], "${datasource}", "{name}");
        let query = variable["query"]["query"].as_str().or(variable["query"].as_str()).expect("query");
        assert_eq!(query, format!("label_values({selector}, {name})"), "{name}");
    }

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
    assert!(rows.iter().any(|r| r["repeat"] == "cronjob"), "one row per CronJob: a row repeated over $cronjob");

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
    assert_eq!(mapped, BTreeSet::from(["success", "failure", "unknown"]));
    let next = panels.iter().find(|p| p["title"] == "Next expected run").expect("next run");
    assert_eq!(next["fieldConfig"]["defaults"]["unit"], "dateTimeFromNow");
}

#[test]
fn every_selector_filters_on_the_variables_and_reads_a_known_metric() {
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
            for filter in FILTERS {
                if !matchers.contains(filter) {
                    problems.push(format!("{what}: selector {name}{matchers} does not filter on {filter}"));
                }
            }
        }
    }
    for (what, selector) in variable_queries(&dashboard)
        .into_iter()
        .map(|(what, q)| (what, label_values_selector(&q).unwrap_or_else(|| panic!("{q:?}"))))
    {
        for name in metric_names(&selector) {
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
    assert_eq!(label_values_selector(r#"label_values(m{a=~"$a"}, b)"#).as_deref(), Some(r#"m{a=~"$a"}"#));
    assert_eq!(
        substitute(r#"rate(m{a=~"$namespace", b=~"${cronjob}", c=~"${namespace:regex}"}[$__rate_interval])"#),
        r#"rate(m{a=~".+", b=~".+", c=~".+"}[1m])"#
    );
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

    /// How many series an instant query returns, or why Prometheus refused it.
    fn query(&self, expr: &str) -> Result<usize, String> {
        let (status, json) = self.api("/api/v1/query", &[("query", expr)]);
        if status != 200 || json["status"] != "success" {
            return Err(format!("HTTP {status}: {} {}", json["errorType"], json["error"]));
        }
        Ok(array(&json["data"]["result"]).len())
    }

    /// How many series match a selector, or why Prometheus refused it.
    fn series(&self, selector: &str) -> Result<usize, String> {
        let (status, json) = self.api("/api/v1/series", &[("match[]", selector)]);
        if status != 200 || json["status"] != "success" {
            return Err(format!("HTTP {status}: {} {}", json["errorType"], json["error"]));
        }
        Ok(array(&json["data"]).len())
    }
}

/// One CronJob's group as `cronpush start` and `cronpush sidecar` leave it after a failed run:
/// hourly, started 3.5 s after its slot two minutes ago, container `main` exited 1 after 40 s.
fn failed_run_group(now: f64) -> String {
    let slot = (now / 60.0).floor() * 60.0 - 120.0;
    let start = slot + 3.5;
    let end = start + 40.0;
    format!(
        "cronjob_info{{schedule=\"0 * * * *\",timezone=\"UTC\",concurrency_policy=\"Forbid\"}} 1\n\
         cronjob_last_start_timestamp_seconds {start}\n\
         cronjob_last_scheduled_timestamp_seconds {slot}\n\
         cronjob_next_scheduled_timestamp_seconds {next}\n\
         cronjob_schedule_period_seconds 3600\n\
         cronjob_schedule_grace_seconds 300\n\
         cronjob_max_run_duration_seconds 3600\n\
         cronjob_last_completion_timestamp_seconds {end}\n\
         cronjob_last_result{{result=\"failure\"}} 1\n\
         cronjob_last_exit_code{{container=\"main\"}} 1\n\
         cronjob_last_exit_code{{container=\"uploader\"}} 0\n\
         cronjob_last_termination_info{{container=\"main\",reason=\"Error\",signal=\"\"}} 1\n\
         cronjob_last_termination_info{{container=\"uploader\",reason=\"Completed\",signal=\"\"}} 1\n\
         cronjob_last_duration_seconds 40\n\
         cronjob_last_success_timestamp_seconds {previous}\n\
         cronjob_last_failure_timestamp_seconds {end}\n",
        next = slot + 3600.0,
        previous = end - 3600.0,
    )
}

/// Prometheus parses every query and variable selector of the dashboard, and once a failed run
/// of batch/backup has been pushed and scraped (and CronJobFailed fires), every panel query and
/// every variable selector returns at least one series: the dashboard shows data.
#[test]
fn prometheus_parses_every_query_and_every_panel_shows_a_pushed_cronjob() {
    let dashboard = dashboard();
    let promql = all_promql(&dashboard);
    let variables: Vec<String> = variable_queries(&dashboard).into_iter().map(|(what, _)| what).collect();
    let gateway = Server::cronpush(&[]);
    let prometheus = Prometheus::start(&gateway);

    // (a) It parses: a syntax error is an HTTP 400 with errorType bad_data, before any data.
    let mut problems = Vec::new();
    for (what, expr) in &promql {
        let expr = substitute(expr);
        let answer = if variables.contains(what) { prometheus.series(&expr) } else { prometheus.query(&expr) };
        if let Err(error) = answer {
            problems.push(format!("{what}: Prometheus refuses {expr:?}: {error}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // (b) It shows data: push a realistic group, then every query returns a series.
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs_f64();
    let path = "/metrics/job/cronpush/namespace/batch/cronjob/backup";
    let reply = gateway.post(path, &failed_run_group(now));
    assert_eq!(reply.status, 200, "POST {path}: {}", reply.body);

    let deadline = Instant::now() + SCRAPE_WAIT;
    let mut pending: Vec<&(String, String)> = promql.iter().collect();
    while !pending.is_empty() {
        pending.retain(|(what, expr)| {
            let expr = substitute(expr);
            let answer = if variables.contains(what) { prometheus.series(&expr) } else { prometheus.query(&expr) };
            !matches!(answer, Ok(n) if n > 0)
        });
        if pending.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            let (_, targets) = prometheus.api("/api/v1/targets", &[]);
            let (_, alerts) = prometheus.api("/api/v1/alerts", &[]);
            let empty: Vec<String> = pending.iter().map(|(what, expr)| format!("{what}: {expr}")).collect();
            panic!(
                "no series within {SCRAPE_WAIT:?} for:\n{}\ntargets: {targets}\nalerts: {alerts}\nlog:\n{}",
                empty.join("\n"),
                prometheus.log()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }

    // The outcome panel maps the failure to 2, the exit codes are the pushed ones.
    let (_, json) = prometheus.api("/api/v1/query", &[("query", &substitute(&panel_expr(&dashboard, "Last outcome")))]);
    assert_eq!(json["data"]["result"][0]["value"][1], "2", "failure maps to 2: {json}");
    let (_, json) =
        prometheus.api("/api/v1/query", &[("query", &substitute(&panel_expr(&dashboard, "Lateness of last start")))]);
    assert_eq!(json["data"]["result"][0]["value"][1], "3.5", "started 3.5 s late: {json}");
}

fn panel_expr(dashboard: &Value, title: &str) -> String {
    let panel = all_panels(dashboard).into_iter().find(|p| p["title"] == title).unwrap_or_else(|| panic!("{title}"));
    panel["targets"][0]["expr"].as_str().expect("expr").to_string()
}
