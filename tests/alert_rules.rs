//! The Prometheus side of cronpush (manifests/prometheus). promtool (Debian's `prometheus` 2.42)
//! checks both rule files and the scrape configuration, and runs every unit test in
//! manifests/prometheus/tests. rules.yml is the one source: the PrometheusRule must carry its
//! groups word for word, the kube-state-metrics variant must be its alerts plus the documented
//! joins, every alert must be tested firing and quiet, and no expression may read a series that
//! nothing exports.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use support::prometheus::{GATEWAY_OWN_SERIES, GATEWAY_SERIES, PUSHED_SERIES};
use support::promql::{self, Token};

const RULES: &str = "rules.yml";
const KSM_RULES: &str = "rules-kube-state-metrics.yml";
const SCRAPE_CONFIG: &str = "prometheus.yml";
const AGENT_CONFIG: &str = "agent.yml";
const PROMETHEUS_RULE: &str = "kubernetes/prometheusrule.yml";
const SERVICE_MONITOR: &str = "kubernetes/servicemonitor.yml";
const UNIT_TESTS: &str = "tests";

/// What Prometheus writes for every target.
const SCRAPE: [&str; 1] = ["up"];
/// kube-state-metrics' CronJob series (its docs/cronjob-metrics.md): for KSM_RULES only.
const KUBE_STATE_METRICS: [&str; 13] = [
    "kube_cronjob_annotations",
    "kube_cronjob_created",
    "kube_cronjob_info",
    "kube_cronjob_labels",
    "kube_cronjob_metadata_resource_version",
    "kube_cronjob_next_schedule_time",
    "kube_cronjob_spec_failed_job_history_limit",
    "kube_cronjob_spec_starting_deadline_seconds",
    "kube_cronjob_spec_successful_job_history_limit",
    "kube_cronjob_spec_suspend",
    "kube_cronjob_status_active",
    "kube_cronjob_status_last_schedule_time",
    "kube_cronjob_status_last_successful_time",
];

/// The joins KSM_RULES documents in its header: a suspended CronJob, and the groups whose
/// CronJob kube-state-metrics does not know (while it knows any CronJob at all).
const SUSPENDED_JOIN: &str = "unless on(cluster, namespace, cronjob) (kube_cronjob_spec_suspend == 1)";
const ORPHANED_GROUPS: &str = concat!(
    r#"push_time_seconds{cronjob!=""} unless on(cluster, namespace, cronjob) kube_cronjob_info"#,
    " and on(cluster) group by (cluster) (kube_cronjob_info)"
);
/// The alerts a suspended CronJob silences.
const SILENCED_WHEN_SUSPENDED: [&str; 2] = ["CronJobNotScheduled", "CronJobNotSucceededRecently"];
/// The alert about the gateway itself, which no CronJob's state may silence.
const GATEWAY_DOWN: &str = "CronpushGatewayDown";
/// The alerts only KSM_RULES has, and its group's name (distinct from rules.yml's).
const KSM_ONLY_ALERTS: [&str; 2] = ["CronJobMetricsMissing", "CronJobGroupOrphaned"];
const KSM_GROUP: &str = "cronpush-kube-state-metrics";

// ---------------------------------------------------------------------------------------------
// promtool
// ---------------------------------------------------------------------------------------------

#[test]
fn promtool_accepts_both_rule_files() {
    for file in [RULES, KSM_RULES] {
        let output = promtool(&["check", "rules", file], &dir(""));
        assert_succeeded(&format!("promtool check rules {file}"), &output);
    }
}

/// `check config` also loads the rule files the configuration names, relative to it: check a
/// copy with those files beside it, as a user would lay them out.
#[test]
fn promtool_accepts_the_scrape_configuration() {
    let config = yaml(SCRAPE_CONFIG);
    let copy = tempfile::tempdir().expect("temporary directory");
    std::fs::copy(dir(SCRAPE_CONFIG), copy.path().join(SCRAPE_CONFIG)).expect("copy the configuration");
    let rule_files = strings(&config["rule_files"]);
    assert!(!rule_files.is_empty(), "{SCRAPE_CONFIG} names no rule file");
    for file in &rule_files {
        std::fs::copy(dir(file), copy.path().join(file)).unwrap_or_else(|e| panic!("copy {file}: {e}"));
    }
    let output = promtool(&["check", "config", SCRAPE_CONFIG], copy.path());
    assert_succeeded("promtool check config", &output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(&format!("Checking {RULES}")), "check config did not check {RULES}:\n{stdout}");
}

/// The agent of one cluster ("Beyond one Prometheus"): valid for agent mode, scraping the
/// gateway under the watched name with its pushed labels, every sample labelled with its
/// cluster, and remote-written.
#[test]
fn promtool_accepts_the_agent_configuration() {
    let output = promtool(&["check", "config", "--agent", AGENT_CONFIG], &dir(""));
    assert_succeeded("promtool check config --agent", &output);
    let config = yaml(AGENT_CONFIG);
    let text = |v: &Value| v.as_str().is_some_and(|s| !s.is_empty());
    assert!(text(&config["global"]["external_labels"]["cluster"]), "{AGENT_CONFIG}: no cluster external label");
    let gateway = array(&config["scrape_configs"]).iter().find(|job| job["job_name"].as_str() == Some(&gateway_job()));
    let gateway = gateway.unwrap_or_else(|| panic!("{AGENT_CONFIG} does not scrape the gateway as {}", gateway_job()));
    assert_eq!(gateway["honor_labels"], Value::Bool(true), "{AGENT_CONFIG}: the pushed labels must stay");
    assert!(array(&config["remote_write"]).iter().all(|w| text(&w["url"])), "{AGENT_CONFIG}: remote_write");
    assert!(!array(&config["remote_write"]).is_empty(), "{AGENT_CONFIG}: no remote_write");
    assert!(config.get("rule_files").is_none(), "an agent evaluates no rules");
}

/// Every file in manifests/prometheus/tests, each in its own promtool, all at once.
#[test]
fn promtool_unit_tests_pass() {
    let files = unit_test_files();
    let runs: Vec<_> = files
        .iter()
        .map(|file| {
            let child = Command::new(support::peer("promtool"))
                .args(["test", "rules"])
                .arg(file)
                .current_dir(dir(UNIT_TESTS))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start promtool");
            (file, child)
        })
        .collect();
    let failures: Vec<String> = runs
        .into_iter()
        .filter_map(|(file, child)| {
            let output = child.wait_with_output().expect("wait for promtool");
            (!output.status.success()).then(|| format!("{}:\n{}", file.display(), combined(&output)))
        })
        .collect();
    assert!(failures.is_empty(), "promtool test rules failed:\n\n{}", failures.join("\n\n"));
}

// ---------------------------------------------------------------------------------------------
// Coverage of the unit tests
// ---------------------------------------------------------------------------------------------

/// promtool passes a test of an alert name that no rule has when it expects no alert: every
/// name must exist. And each alert of both rule files needs a test where it fires, with its
/// exact labels and annotations, and one where it stays quiet.
#[test]
fn every_alert_is_tested_firing_and_quiet() {
    let mut firing: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut quiet: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in unit_test_files() {
        let test = yaml(&format!("{UNIT_TESTS}/{}", file.file_name().unwrap().to_string_lossy()));
        let rule_files: Vec<String> = strings(&test["rule_files"])
            .iter()
            .map(|f| Path::new(f).file_name().expect("a file name").to_string_lossy().into_owned())
            .collect();
        assert!(!rule_files.is_empty(), "{} names no rule file", file.display());
        let known: BTreeSet<String> = rule_files.iter().flat_map(|f| alert_names(&yaml(f))).collect();
        for case in array(&test["tests"]).iter().flat_map(|t| array(&t["alert_rule_test"])) {
            let name = case["alertname"].as_str().expect("alertname").to_string();
            assert!(known.contains(&name), "{}: no rule file of the test has an alert {name}", file.display());
            let expected = array(&case["exp_alerts"]);
            let exact = expected.iter().all(|a| non_empty(&a["exp_labels"]) && non_empty(&a["exp_annotations"]));
            for rule_file in &rule_files {
                if expected.is_empty() {
                    quiet.entry(rule_file.clone()).or_default().insert(name.clone());
                } else if exact {
                    firing.entry(rule_file.clone()).or_default().insert(name.clone());
                }
            }
        }
    }
    for rule_file in [RULES, KSM_RULES] {
        for alert in alert_names(&yaml(rule_file)) {
            let tested =
                |cases: &BTreeMap<String, BTreeSet<String>>| cases.get(rule_file).is_some_and(|s| s.contains(&alert));
            assert!(tested(&firing), "{rule_file}: no unit test shows {alert} firing, with labels and annotations");
            assert!(tested(&quiet), "{rule_file}: no unit test shows {alert} quiet");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Drift from rules.yml
// ---------------------------------------------------------------------------------------------

#[test]
fn the_prometheus_rule_carries_the_groups_of_rules_yml() {
    let rule = yaml(PROMETHEUS_RULE);
    assert_eq!(rule["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(rule["kind"], "PrometheusRule");
    assert_eq!(rule["metadata"]["name"], "cronpush");
    assert_eq!(rule["metadata"]["namespace"], "cronpush");
    let source = yaml(RULES);
    if rule["spec"]["groups"] != source["groups"] {
        let copies: BTreeMap<String, &Value> = alerts(&rule["spec"]).into_iter().map(|a| (alert_name(a), a)).collect();
        let first = alerts(&source).into_iter().find(|a| copies.get(&alert_name(a)) != Some(a));
        panic!(
            "{PROMETHEUS_RULE}: spec.groups differ from the groups of {RULES} (regenerate it as its header says); \
             first differing alert in {RULES}:\n{first:#?}\nin {PROMETHEUS_RULE}:\n{:#?}",
            first.and_then(|a| copies.get(&alert_name(a)))
        );
    }
}

/// Same alerts, same `for`, labels and annotations; each expression rules.yml's in parentheses
/// followed by exactly the joins the file's header documents.
#[test]
fn the_kube_state_metrics_rules_are_rules_yml_joined() {
    let source = yaml(RULES);
    let joined = yaml(KSM_RULES);
    let groups = array(&joined["groups"]);
    let names: Vec<&str> = groups.iter().filter_map(|g| g["name"].as_str()).collect();
    assert_eq!(names, [KSM_GROUP], "{KSM_RULES}: one group, named apart from {RULES}'s");
    let by_name: BTreeMap<String, &Value> = alerts(&joined).into_iter().map(|a| (alert_name(a), a)).collect();

    let orphaned = format!("unless on(cluster, namespace, cronjob) ({ORPHANED_GROUPS})");
    for alert in alerts(&source) {
        let name = alert_name(alert);
        let copy = by_name.get(&name).unwrap_or_else(|| panic!("{KSM_RULES} has no alert {name}"));
        for key in ["for", "labels", "annotations"] {
            assert_eq!(copy[key], alert[key], "{KSM_RULES}: {name}'s {key} differs from {RULES}");
        }
        let base = expr(alert);
        let want = if name == GATEWAY_DOWN {
            base.to_string()
        } else if SILENCED_WHEN_SUSPENDED.contains(&name.as_str()) {
            format!("({base}) {SUSPENDED_JOIN} {orphaned}")
        } else {
            format!("({base}) {orphaned}")
        };
        assert_eq!(normalized(expr(copy)), normalized(&want), "{KSM_RULES}: {name} is not {RULES}'s plus its joins");
    }

    let shared = alert_names(&source);
    let mut own: Vec<&str> = by_name.keys().map(String::as_str).filter(|n| !shared.contains(*n)).collect();
    own.sort_unstable();
    let mut want_own = KSM_ONLY_ALERTS;
    want_own.sort_unstable();
    assert_eq!(own, want_own, "{KSM_RULES}: alerts beyond those of {RULES}");
    let orphan_alert = by_name["CronJobGroupOrphaned"];
    assert_eq!(normalized(expr(orphan_alert)), normalized(ORPHANED_GROUPS), "the orphans silenced are those reported");

    let header = header_comment(&std::fs::read_to_string(dir(KSM_RULES)).expect("read"));
    for join in [SUSPENDED_JOIN, &orphaned] {
        assert!(normalized(&header).contains(&normalized(join)), "{KSM_RULES}'s header does not document {join}");
    }
    assert!(header.contains("INSTEAD of rules.yml"), "{KSM_RULES}'s header must say it replaces {RULES}");
}

/// Each expression reads what the pushers and the gateway export, or (in KSM_RULES only) what
/// kube-state-metrics exports; and the pushers' series are still spelt so in the source.
#[test]
fn expressions_read_only_exported_series() {
    let ours: BTreeSet<&str> =
        PUSHED_SERIES.iter().chain(&GATEWAY_SERIES).chain(&GATEWAY_OWN_SERIES).chain(&SCRAPE).copied().collect();
    let with_ksm: BTreeSet<&str> = ours.iter().chain(&KUBE_STATE_METRICS).copied().collect();
    for (file, allowed) in [(RULES, &ours), (PROMETHEUS_RULE, &ours), (KSM_RULES, &with_ksm)] {
        let document = yaml(file);
        let rules = if file == PROMETHEUS_RULE { alerts(&document["spec"]) } else { alerts(&document) };
        assert!(!rules.is_empty(), "{file}: no alerts");
        for alert in rules {
            let names = metric_names(expr(alert));
            assert!(!names.is_empty(), "{file}: {} reads no series", alert_name(alert));
            let unknown: Vec<&String> = names.iter().filter(|n| !allowed.contains(n.as_str())).collect();
            assert!(unknown.is_empty(), "{file}: {} reads {unknown:?}, which nothing exports", alert_name(alert));
        }
    }
    let source = rust_sources(&repo("src"));
    for name in PUSHED_SERIES.iter().chain(&GATEWAY_SERIES).chain(&GATEWAY_OWN_SERIES) {
        assert!(source.contains(&format!("\"{name}\"")), "no \"{name}\" in src/: renamed? Update the rules too");
    }
}

#[test]
fn the_scrape_job_keeps_the_pushed_labels_under_the_watched_name() {
    let watched = gateway_job();
    let config = yaml(SCRAPE_CONFIG);
    assert_eq!(strings(&config["rule_files"]), [RULES], "{SCRAPE_CONFIG} loads {RULES}");
    let jobs = array(&config["scrape_configs"]);
    let job = jobs
        .iter()
        .find(|j| j["job_name"] == watched.as_str())
        .unwrap_or_else(|| panic!("{SCRAPE_CONFIG} has no scrape job {watched}, which {GATEWAY_DOWN} watches"));
    assert_eq!(job["honor_labels"], true, "{SCRAPE_CONFIG}: the gateway's job must honor the pushed labels");
    let targets = array(&job["static_configs"]).iter().flat_map(|c| strings(&c["targets"])).collect::<Vec<_>>();
    assert_eq!(targets, ["cronpush-gateway.cronpush.svc:9091"]);

    let monitor = yaml(SERVICE_MONITOR);
    assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(monitor["kind"], "ServiceMonitor");
    let spec = &monitor["spec"];
    let job_label = spec["jobLabel"].as_str().expect("jobLabel: the operator would name the job after the Service");
    assert_eq!(
        spec["selector"]["matchLabels"][job_label],
        watched.as_str(),
        "the ServiceMonitor's job is not {watched}"
    );
    assert_eq!(spec["selector"]["matchLabels"]["app.kubernetes.io/name"], "cronpush-gateway");
    let endpoints = array(&spec["endpoints"]);
    assert!(!endpoints.is_empty());
    for endpoint in endpoints {
        assert_eq!(endpoint["port"], "http");
        assert_eq!(endpoint["honorLabels"], true, "{SERVICE_MONITOR}: honorLabels");
    }
}

#[test]
fn metric_names_skip_functions_keywords_labels_and_strings() {
    let names = metric_names(
        r#"group by (namespace, cronjob) (a_total{job="x", le=~"b|c"}[5m] offset 1h) unless on(namespace) b
           * on(job) group_left(reason, signal) max without (container) (c) > bool 2e3 and absent(up{job="d"})
           or floor(time() - e:recorded) or max by (x) ({__name__=~"f|g_seconds"})"#,
    );
    assert_eq!(
        names,
        ["a_total", "b", "c", "e:recorded", "f", "g_seconds", "up"].map(String::from).into_iter().collect()
    );
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A path under manifests/prometheus.
fn dir(path: &str) -> PathBuf {
    repo("manifests/prometheus").join(path)
}

fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(dir(path)).unwrap_or_else(|e| panic!("read {path}: {e}"));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path} is not YAML: {e}"))
}

fn promtool(args: &[&str], cwd: &Path) -> Output {
    Command::new(support::peer("promtool")).args(args).current_dir(cwd).output().expect("run promtool")
}

fn combined(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

fn assert_succeeded(what: &str, output: &Output) {
    assert!(output.status.success(), "{what} failed ({}):\n{}", output.status, combined(output));
}

fn unit_test_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir(UNIT_TESTS))
        .expect("manifests/prometheus/tests")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no unit tests in manifests/prometheus/tests");
    files
}

fn array(value: &Value) -> &[Value] {
    value.as_array().map(Vec::as_slice).unwrap_or_default()
}

fn strings(value: &Value) -> Vec<String> {
    array(value).iter().map(|v| v.as_str().expect("a string").to_string()).collect()
}

fn non_empty(value: &Value) -> bool {
    value.as_object().is_some_and(|o| !o.is_empty())
}

/// The alerting rules of every group of a document with `groups`.
fn alerts(document: &Value) -> Vec<&Value> {
    array(&document["groups"]).iter().flat_map(|g| array(&g["rules"])).filter(|r| r["alert"].is_string()).collect()
}

fn alert_name(alert: &Value) -> String {
    alert["alert"].as_str().expect("alert name").to_string()
}

fn alert_names(document: &Value) -> BTreeSet<String> {
    alerts(document).into_iter().map(alert_name).collect()
}

fn expr(alert: &Value) -> &str {
    alert["expr"].as_str().unwrap_or_else(|| panic!("{} has no expr", alert_name(alert)))
}

/// The scrape job CronpushGatewayDown watches; every `up{job=...}` of both files must agree.
fn gateway_job() -> String {
    let mut jobs = BTreeSet::new();
    for file in [RULES, KSM_RULES] {
        for alert in alerts(&yaml(file)) {
            let mut rest = expr(alert);
            while let Some(at) = rest.find("up{job=\"") {
                let after = &rest[at + "up{job=\"".len()..];
                let end = after.find('"').expect("closing quote");
                jobs.insert(after[..end].to_string());
                rest = &after[end..];
            }
        }
    }
    assert_eq!(jobs.len(), 1, "the rules watch these scrape jobs: {jobs:?}");
    jobs.pop_first().unwrap()
}

/// Whitespace collapsed, and none just inside parentheses: `(\n  a\n)` is `(a)`.
fn normalized(expr: &str) -> String {
    let collapsed = expr.split_whitespace().collect::<Vec<_>>().join(" ");
    collapsed.replace("( ", "(").replace(" )", ")")
}

/// The comment lines before `groups:`, without their `#`.
fn header_comment(text: &str) -> String {
    text.lines()
        .take_while(|l| !l.starts_with("groups:"))
        .filter_map(|l| l.trim_start().strip_prefix('#'))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every `.rs` file under `dir`, concatenated.
fn rust_sources(dir: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            text.push_str(&rust_sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            text.push_str(&std::fs::read_to_string(&path).expect("read a source file"));
        }
    }
    text
}

/// The metric names a PromQL expression reads: identifiers that are not keywords, functions
/// (a name before `(`), label names (in `{}` and after on/by/...), strings or durations.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let tokens = promql::tokens(expr);
    let mut names = BTreeSet::new();
    for (i, token) in tokens.iter().enumerate() {
        match token {
            Token::Matchers(matchers) => {
                // A selector by name, `{__name__=~"a|b"}`, reads each of its alternatives.
                let selector = &matchers[1..matchers.len() - 1];
                if let Some(alternatives) =
                    selector.trim().strip_prefix("__name__=~\"").and_then(|s| s.strip_suffix('"'))
                {
                    names.extend(alternatives.split('|').map(String::from));
                }
            }
            Token::Word(word) if !promql::is_keyword(word) && tokens.get(i + 1) != Some(&Token::Open) => {
                names.insert(word.clone());
            }
            _ => {}
        }
    }
    names
}
