//! The differential suite: each case sends the same requests to two releases of the reference
//! Pushgateway, today's (built from the Go module proxy by scripts/build-pushgateway, at the
//! version scripts/pushgateway/go.mod pins) and Debian's 1.5.1, and to cronpush, and compares
//! what a client and a scraper see: status codes, error messages (exactly, or by the prefix the
//! reference keeps stable), redirect targets, the pushed series and TYPE/HELP lines in
//! `/metrics`, and the groups in `/api/v1/metrics`.
//!
//! cronpush follows today's release. Where 1.5.1 answered otherwise, the step or case says since
//! which release upstream changed, with `.changed_in(release, what)` or `.state_changed_in(...)`,
//! and the test checks that 1.5.1 still differs there (so that a stale mark fails). Where
//! cronpush differs from both on purpose, the step or case says so with `.differs(status, why)`
//! or `.state_differs(why)`, and the test asserts cronpush's behaviour instead. Both lists are in
//! the README.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use cronpush::proto::client::{
    Bucket, BucketSpan, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType,
};
use prost::Message;
use serde_json::Value;
use support::{Release, Reply, Server, eventually, pushed_series};

const CONSISTENCY: &str = "pushed metrics are invalid or inconsistent with existing metrics: ";
const PROTOBUF: &str = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

/// One request of a case, and what cronpush must answer when it differs from the reference.
#[derive(Clone)]
struct Step {
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    ours: Option<(u16, &'static str)>,
    changed: Option<(&'static str, &'static str)>,
    status_only: bool,
}

fn step(method: &'static str, path: &str, body: impl Into<Vec<u8>>) -> Step {
    Step {
        method,
        path: path.into(),
        headers: Vec::new(),
        body: body.into(),
        ours: None,
        changed: None,
        status_only: false,
    }
}
fn put(path: &str, body: &str) -> Step {
    step("PUT", path, body)
}
fn post(path: &str, body: &str) -> Step {
    step("POST", path, body)
}
fn delete(path: &str) -> Step {
    step("DELETE", path, "")
}
fn get(path: &str) -> Step {
    step("GET", path, "")
}

impl Step {
    fn header(mut self, name: &'static str, value: &str) -> Step {
        self.headers.push((name, value.into()));
        self
    }
    /// cronpush answers `status` here, on purpose, for the reason given.
    fn differs(mut self, status: u16, why: &'static str) -> Step {
        self.ours = Some((status, why));
        self
    }
    /// Upstream changed this answer in `release` (1.5.1 answered otherwise): cronpush follows
    /// today's release here, and 1.5.1 is checked to still differ.
    fn changed_in(mut self, release: &'static str, what: &'static str) -> Step {
        self.changed = Some((release, what));
        self
    }
    /// Compare the status only: the message is a decoder's own wording.
    fn status_only(mut self) -> Step {
        self.status_only = true;
        self
    }
}

#[derive(Default)]
struct Case {
    flags: Vec<&'static str>,
    prefix: &'static str,
    help_may_differ: bool,
    state_differs: Option<&'static str>,
    state_changed: Option<(&'static str, &'static str)>,
    new_flag: Option<&'static str>,
}

fn case() -> Case {
    Case::default()
}

impl Case {
    fn flags(mut self, flags: &[&'static str]) -> Case {
        self.flags = flags.to_vec();
        self
    }
    /// The route prefix the flags set, for readiness polling and state comparison.
    fn prefix(mut self, prefix: &'static str) -> Case {
        self.prefix = prefix;
        self
    }
    /// Groups disagree on HELP: the reference picks one at random per scrape.
    fn help_may_differ(mut self) -> Case {
        self.help_may_differ = true;
        self
    }
    /// The final state differs on purpose; the caller asserts cronpush's own.
    fn state_differs(mut self, why: &'static str) -> Case {
        self.state_differs = Some(why);
        self
    }

    /// Upstream changed what the groups hold after these steps in `release`: cronpush's state
    /// is compared with today's release only, and 1.5.1's is checked to still differ.
    fn state_changed_in(mut self, release: &'static str, what: &'static str) -> Case {
        self.state_changed = Some((release, what));
        self
    }

    /// The flags include one that 1.5.1 does not have (it would not start): compared with
    /// today's release only.
    fn new_flag(mut self, flag: &'static str) -> Case {
        self.new_flag = Some(flag);
        self
    }

    /// Runs the steps on cronpush and both releases and compares; returns today's release and
    /// cronpush for further assertions.
    fn run(self, steps: &[Step]) -> (Server, Server) {
        let today = Server::release_at(Release::Today, &self.flags, self.prefix);
        let debian = self.new_flag.is_none().then(|| Server::release_at(Release::Debian, &self.flags, self.prefix));
        let ours = Server::cronpush_at(&self.flags, self.prefix);
        for (i, s) in steps.iter().enumerate() {
            let want = send(&today, s);
            let got = send(&ours, s);
            let what = format!("step {} ({} {})", i + 1, s.method, s.path);
            match s.ours {
                Some((status, why)) => {
                    assert_ne!(want.status, status, "{what}: today's release now agrees; drop .differs ({why})");
                    assert_eq!(
                        got.status, status,
                        "{what}: cronpush should answer {status} ({why}); body {:?}",
                        got.body
                    );
                }
                None => compare_replies(&format!("{what}, against today's release"), s, &want, &got),
            }
            let Some(debian) = &debian else { continue };
            let old = send(debian, s);
            match s.changed {
                Some((release, changed)) => assert!(
                    replies_differ(s, &old, &want),
                    "{what}: 1.5.1 now answers as today's release; drop .changed_in({release}, {changed})"
                ),
                None if s.ours.is_none() => compare_replies(&format!("{what}, against 1.5.1"), s, &old, &got),
                None => {}
            }
        }
        if self.state_differs.is_none() {
            same_state(&today, &ours, self.help_may_differ, "today's release");
            let Some(debian) = &debian else { return (today, ours) };
            match self.state_changed {
                Some((release, changed)) => assert_ne!(
                    state(debian, self.help_may_differ),
                    state(&today, self.help_may_differ),
                    "1.5.1 now holds what today's release does; drop .state_changed_in({release}, {changed})"
                ),
                None => same_state(debian, &ours, self.help_may_differ, "1.5.1"),
            }
        }
        (today, ours)
    }
}

/// Asserts that cronpush holds what the reference does after the same steps.
fn same_state(reference: &Server, ours: &Server, help_may_differ: bool, name: &str) {
    // The reference applies deletes (202) from a queue: give it a moment.
    let same = eventually(Duration::from_secs(3), || state(reference, help_may_differ) == state(ours, help_may_differ));
    if !same {
        assert_eq!(state(ours, help_may_differ), state(reference, help_may_differ), "the stores differ from {name}'s");
    }
}

fn send(server: &Server, s: &Step) -> Reply {
    let headers: Vec<(&str, &str)> = s.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    server.request(s.method, &s.path, &headers, s.body.clone())
}

/// Whether two releases answered a step differently, in what [`compare_replies`] compares.
fn replies_differ(s: &Step, a: &Reply, b: &Reply) -> bool {
    a.status != b.status
        || ((300..400).contains(&a.status) && a.header("location") != b.header("location"))
        || (a.status >= 400 && !s.status_only && message(&a.body) != message(&b.body))
}

fn compare_replies(what: &str, s: &Step, want: &Reply, got: &Reply) {
    assert_eq!(got.status, want.status, "{what}: status; reference said {:?}, cronpush said {:?}", want.body, got.body);
    if (300..400).contains(&want.status) {
        assert_eq!(got.header("location"), want.header("location"), "{what}: redirect target");
    }
    if want.status >= 400 && !s.status_only {
        assert_eq!(
            message(&got.body),
            message(&want.body),
            "{what}: error message\nreference: {}\ncronpush:  {}",
            want.body,
            got.body
        );
    }
}

/// The part of an error message that must match: all of it, except for consistency errors,
/// whose details embed the protobuf text form of a metric (unstable across versions) and
/// whose order depends on Go map iteration; for those the class prefix.
fn message(body: &str) -> String {
    let text = body.trim_end_matches('\n');
    if let Some(rest) = text.strip_prefix(CONSISTENCY) {
        if rest == "pushed metrics must not have timestamps" {
            return text.into();
        }
        return CONSISTENCY.into();
    }
    if text.starts_with("invalid base64") {
        // The reason after the colon is Go's decoder wording.
        return text.split(": ").next().unwrap_or(text).into();
    }
    text.into()
}

/// What a scraper and an API client see of the pushed data, in a comparable form.
fn state(server: &Server, help_may_differ: bool) -> (Vec<String>, Vec<String>, Value) {
    let scrape = server.get("/metrics");
    assert_eq!(scrape.status, 200, "scrape failed: {}", scrape.body);
    let headers: Vec<String> = scrape
        .body
        .lines()
        .filter(|l| l.starts_with("# TYPE ") || (!help_may_differ && l.starts_with("# HELP ")))
        .filter(|l| !support::is_own_metric(&l[7..]))
        .map(String::from)
        .collect();
    let api = server.get("/api/v1/metrics");
    assert_eq!(api.status, 200);
    let json: Value = serde_json::from_str(&api.body).expect("JSON");
    (pushed_series(&scrape.body), headers, normalize_groups(&json, help_may_differ))
}

/// `/api/v1/metrics` with write times dropped, timestamp values reduced to 0 or T, and
/// groups and metrics sorted (the reference returns them in map order).
fn normalize_groups(json: &Value, help_may_differ: bool) -> Value {
    assert_eq!(json["status"], "success");
    let mut groups: Vec<Value> = json["data"]
        .as_array()
        .expect("data array")
        .iter()
        .map(|group| {
            let mut out = serde_json::Map::new();
            for (name, value) in group.as_object().expect("group object") {
                if name == "labels" || name == "last_push_successful" {
                    out.insert(name.clone(), value.clone());
                    continue;
                }
                let mut family = value.clone();
                let object = family.as_object_mut().expect("family object");
                object.remove("time_stamp");
                if help_may_differ {
                    object.remove("help");
                }
                let timestamps = name == "push_time_seconds" || name == "push_failure_time_seconds";
                let metrics = object.get_mut("metrics").and_then(Value::as_array_mut).expect("metrics");
                for m in metrics.iter_mut() {
                    if timestamps {
                        let v = m["value"].as_str().unwrap_or_default();
                        m["value"] = Value::from(if v == "0" { "0" } else { "T" });
                    }
                }
                metrics.sort_by_key(|m| m["labels"].to_string());
                out.insert(name.clone(), family);
            }
            Value::Object(out)
        })
        .collect();
    groups.sort_by_key(|g| g["labels"].to_string());
    Value::Array(groups)
}

fn family(name: &str, ty: MetricType, metrics: Vec<Metric>) -> MetricFamily {
    MetricFamily {
        name: Some(name.into()),
        help: Some(format!("{name} help")),
        r#type: Some(ty as i32),
        metric: metrics,
        unit: None,
    }
}

fn gauge(labels: &[(&str, &str)], value: f64) -> Metric {
    Metric {
        label: labels
            .iter()
            .map(|(n, v)| LabelPair { name: Some(n.to_string()), value: Some(v.to_string()) })
            .collect(),
        gauge: Some(Gauge { value: Some(value) }),
        ..Default::default()
    }
}

fn counter(labels: &[(&str, &str)], value: f64) -> Metric {
    Metric { counter: Some(Counter { value: Some(value), ..Default::default() }), gauge: None, ..gauge(labels, 0.0) }
}

fn delimited(families: &[MetricFamily]) -> Vec<u8> {
    let mut body = Vec::new();
    for f in families {
        f.encode_length_delimited(&mut body).expect("encode");
    }
    body
}

fn protobuf_push(method: &'static str, path: &str, families: &[MetricFamily]) -> Step {
    step(method, path, delimited(families)).header("Content-Type", PROTOBUF)
}

fn gzip(text: &str) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(text.as_bytes()).expect("gzip");
    encoder.finish().expect("gzip")
}

// ---- The push URL: grouping keys -------------------------------------------------------

#[test]
fn put_and_post_to_a_plain_job() {
    case().run(&[put("/metrics/job/j", "a 1\n"), post("/metrics/job/k", "b 2\n")]);
}

#[test]
fn labels_in_the_path() {
    case().run(&[put("/metrics/job/j/instance/i/x/y", "a 1\n")]);
}

#[test]
fn base64_job_with_a_slash() {
    case().run(&[put("/metrics/job@base64/Zm9vL2Jhcg/instance@base64/aW5zdA", "a 1\n")]);
}

#[test]
fn base64_label_value_with_slashes() {
    case().run(&[put("/metrics/job/directory_cleaner/path@base64/L3Zhci90bXA", "a 1\n")]);
}

#[test]
fn base64_empty_value() {
    case().run(&[put("/metrics/job/j/first@base64/=/second/foo", "a 1\n")]);
}

#[test]
fn base64_unicode_value() {
    case().run(&[put("/metrics/job/titan2/name@base64/zqDPgc6_zrzOt864zrXPjc-C", "a 1\n")]);
}

#[test]
fn base64_padding_is_optional() {
    case().run(&[
        put("/metrics/job/j/a@base64/YQ", "a 1\n"),
        post("/metrics/job/j/a@base64/YQ=", "b 1\n"),
        post("/metrics/job/j/a@base64/YQ==", "c 1\n"),
    ]);
}

#[test]
fn base64_errors() {
    case().run(&[
        put("/metrics/job/j/x@base64/a.b", "a 1\n"),
        put("/metrics/job/j/x@base64/Y=Q", "a 1\n"),
        put("/metrics/job/j/x@base64/Y", "a 1\n"),
        put("/metrics/job/j/x@base64/YQ+", "a 1\n"),
        put("/metrics/job@base64/a.b", "a 1\n"),
    ]);
}

#[test]
fn empty_job_is_refused() {
    case().run(&[put("/metrics/job@base64/=", "a 1\n"), put("/metrics/job@base64/==", "a 1\n")]);
}

#[test]
fn improper_label_names() {
    case().run(&[
        put("/metrics/job/j/a-b/1", "a 1\n"),
        put("/metrics/job/j/__x/1", "a 1\n"),
        put("/metrics/job/j/1x/1", "a 1\n"),
        put("/metrics/job/j/x@base64@base64/YQ", "a 1\n"),
        delete("/metrics/job/j/a-b/1"),
    ]);
}

#[test]
fn odd_component_counts() {
    case().run(&[
        put("/metrics/job/j/a/b/c", "a 1\n"),
        put("/metrics/job/j/a/b/", "a 1\n"),
        put("/metrics/job/a%2Fb", "a 1\n"),
        delete("/metrics/job/j/a"),
    ]);
}

#[test]
fn trailing_slash_after_the_job() {
    case().run(&[put("/metrics/job/j/", "a 1\n")]);
}

#[test]
fn percent_decoding_and_plus_signs() {
    case().run(&[
        put("/metrics/job/j/x/%CE%A0%CF%81", "a 1\n"),
        put("/metrics/job/k/x/a+b", "a 1\n"),
        put("/metrics/job/l/x/a%20b", "a 1\n"),
    ]);
}

#[test]
fn job_in_the_path_labels_is_ignored_and_last_repeat_wins() {
    case().run(&[put("/metrics/job/j4/job/other", "a 1\n"), put("/metrics/job/j5/x/1/x/2", "a 1\n")]);
}

#[test]
fn unclean_paths_are_redirected() {
    case().run(&[
        // httprouter's fixed-path redirect: 307 but for GET, so that the body is sent again.
        put("/metrics/job/j/first//second/foo", "a 1\n").changed_in("after 1.5.1", "307 for PUT, POST, DELETE"),
        put("/metrics/job/j/./x/1", "a 1\n"),
        delete("/metrics/job//j").changed_in("after 1.5.1", "307 for PUT, POST, DELETE"),
        get("/metrics/../metrics"),
    ]);
}

#[test]
fn an_empty_job_segment_names_no_group() {
    let (reference, ours) = case().run(&[]);
    for server in [&reference, &ours] {
        let status = server.put("/metrics/job/", "a 1\n").status;
        assert!((300..500).contains(&status), "PUT /metrics/job/ answered {status}");
    }
}

// ---- Bodies: text format 0.0.4 -----------------------------------------------------------

#[test]
fn text_syntax_errors_name_the_line() {
    case().state_changed_in("after 1.5.1", "the gauge histogram is kept").run(&[
        put("/metrics/job/j", "a 1"),
        put("/metrics/job/j", "a 1\r\n"),
        put("/metrics/job/j", "a 1\nb{c-d=\"1\"} 2\n"),
        put("/metrics/job/j", "# HELP w x\n# HELP w y\nw 1\n"),
        put("/metrics/job/j", "s 1\n# TYPE s gauge\n"),
        put("/metrics/job/j", "# TYPE f foo\nf 1\n"),
        put("/metrics/job/j", "# TYPE g gaugehistogram\ng 1\n").changed_in("after 1.5.1", "gaugehistogram is a type"),
        put("/metrics/job/j", "c{a=\"1\",a=\"2\"} 1\n"),
        put("/metrics/job/j", "c{__name__=\"x\"} 1\n"),
        put("/metrics/job/j", "a 1 3 3\n"),
        put("/metrics/job/j", "a 1 x\n"),
        put("/metrics/job/j", "a x\n"),
        put("/metrics/job/j", "a{x=\"1\" 1\n"),
        put("/metrics/job/j", "a{x=\"\\q\"} 1\n"),
        put("/metrics/job/j", "a{x=1} 1\n"),
        put("/metrics/job/j", "-a 1\n"),
        put("/metrics/job/j", "a 1e400\n"),
        put("/metrics/job/j", "a 0x1p3\n"),
        put("/metrics/job/j", "# HELP h bad \\t escape\n"),
        put("/metrics/job/j", "# TYPE s summary\ns{quantile=\"x\"} 1\n"),
        put("/metrics/job/j", "# TYPE h histogram\nh_bucket{le=\"y\"} 1\n"),
    ]);
}

#[test]
fn gauge_histograms_in_text() {
    // prometheus/common's parser reads them as histograms (`_bucket`, `_sum`, `_count`), so
    // OpenMetrics' `_gsum` and `_gcount` are families of their own. 1.5.1's parser took the
    // type but kept the samples as untyped families.
    case().state_changed_in("after 1.5.1", "a gauge histogram's samples are its own").run(&[
        put(
            "/metrics/job/j",
            "# TYPE g gauge_histogram\ng_bucket{le=\"1\"} 1\ng_bucket{le=\"+Inf\"} 2\ng_sum 3\ng_count 2\n",
        ),
        put(
            "/metrics/job/k",
            "# TYPE h gaugehistogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_gsum 3\nh_gcount 2\n",
        )
        .changed_in("after 1.5.1", "gaugehistogram is a type"),
    ]);
}

// ---- UTF-8 names (--push.enable-utf8-names, since 1.11) ------------------------------------

const UTF8_NAMES: &str = "--push.enable-utf8-names";

#[test]
fn utf8_names_in_text_pushes() {
    let (today, ours) = case().flags(&[UTF8_NAMES]).new_flag(UTF8_NAMES).run(&[
        put("/metrics/job/a", "{\"my.metric\", \"a.b\"=\"x\"} 1\n"),
        put("/metrics/job/b", "# HELP \"my.gauge\" Some help.\n# TYPE \"my.gauge\" gauge\n{\"my.gauge\"} 2\n"),
        put("/metrics/job/c", "plain{\"la.b\"=\"y\",ok=\"z\"} 3\n"),
        put("/metrics/job/d", "# TYPE \"h.x\" histogram\n{\"h.x_bucket\",le=\"1\"} 1\n{\"h.x_bucket\",le=\"+Inf\"} 2\n{\"h.x_count\"} 2\n{\"h.x_sum\"} 1.5\n"),
        put("/metrics/job/e", "{\"花火\",\"läbel\"=\"v\"} 4\n{\"quote\\\"d\\\\\"} 5\n"),
        put("/metrics/job/f", "{\"x\"} 1\n{\"x\"} 2\n"),
    ]);
    same_scrapes(&today, &ours);
}

#[test]
fn utf8_name_syntax_errors() {
    case().flags(&[UTF8_NAMES]).new_flag(UTF8_NAMES).run(&[
        put("/metrics/job/j", "{\"a\",\"b\"} 1\n"),
        put("/metrics/job/j", "{} 1\n"),
        put("/metrics/job/j", "{a=\"1\"} 1\n"),
        put("/metrics/job/j", "{\"a\" 1\n"),
        put("/metrics/job/j", "{\"a\"x} 1\n"),
        put("/metrics/job/j", "{\"a\\q\"} 1\n"),
        put("/metrics/job/j", "{\"a\nb\"} 1\n"),
        put("/metrics/job/j", "{\"\"} 1\n"),
        put("/metrics/job/j", "x{\"\"=\"1\"} 1\n"),
        put("/metrics/job/j", "x{\"__name__\"=\"1\"} 1\n"),
        put("/metrics/job/j", "# TYPE \"a.b\"gauge\n"),
        step("PUT", "/metrics/job/j", b"{\"a\xff\"} 1\n".to_vec()),
    ]);
}

#[test]
fn utf8_names_without_the_flag_are_refused() {
    case().state_changed_in("1.11.0", "the quoted legacy name is kept").run(&[
        put("/metrics/job/j", "{\"my.metric\"} 1\n").changed_in("1.11.0", "quoted names are read"),
        put("/metrics/job/j", "{\"legacy_name\"} 1\n").changed_in("1.11.0", "quoted names are read"),
        put("/metrics/job/j", "x{\"a.b\"=\"1\"} 1\n").changed_in("1.11.0", "quoted names are read"),
        put("/metrics/job/j", "# TYPE \"my.gauge\" gauge\n").changed_in("1.11.0", "quoted names are read"),
        put("/metrics/job/j/a.b/1", "x 1\n"),
        put("/metrics/job/j/U__a_2e_b/1", "x 1\n"),
    ]);
}

#[test]
fn utf8_label_names_in_the_path() {
    let (today, ours) = case().flags(&[UTF8_NAMES]).new_flag(UTF8_NAMES).run(&[
        put("/metrics/job/a/U__http_2e_method/get", "x 1\n"),
        put("/metrics/job/b/a.b/v", "x 1\n"),
        put("/metrics/job/c/U__bad_2e/v", "x 1\n"),
        put("/metrics/job/d/U____x/v", "x 1\n"),
        put("/metrics/job/e/U__a_2e_b@base64/dg", "x 1\n"),
        put("/metrics/job/f/__x/v", "x 1\n"),
        put("/metrics/job/g/U___2e_/v", "x 1\n"),
        delete("/metrics/job/a/U__http_2e_method/get"),
        put("/metrics/job/h/U__a_2e_b/1/a.b/2", "x 1\n"),
    ]);
    same_scrapes(&today, &ours);
}

#[test]
fn float_histograms_in_text() {
    case().state_changed_in("1.10.0", "float counts are kept").run(&[
        put(
            "/metrics/job/a",
            "# TYPE h histogram\nh_bucket{le=\"1\"} 0.5\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n",
        ),
        put("/metrics/job/b", "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 2.5\n"),
        put("/metrics/job/c", "# TYPE h histogram\nh_bucket{le=\"1\"} -0.5\n").changed_in("1.10.0", "float counts"),
        put("/metrics/job/d", "# TYPE h histogram\nh_count -1.5\n").changed_in("1.10.0", "float counts"),
        put("/metrics/job/e", "# TYPE h histogram\nh_bucket{le=\"1\"} -1\n").changed_in("1.10.0", "float counts"),
    ]);
}

#[test]
fn invalid_utf8_label_value() {
    case().run(&[step("PUT", "/metrics/job/j", b"c{a=\"\xff\"} 1\n".to_vec())]);
}

#[test]
fn timestamps_are_refused_and_recorded_as_a_failure() {
    case().run(&[
        put("/metrics/job/j", "a 1\n"),
        put("/metrics/job/j", "a 1 1234\n"),
        post("/metrics/job/k", "b 2 5\n"),
    ]);
}

#[test]
fn comments_only_and_lone_type_lines() {
    case().run(&[
        put("/metrics/job/j", "# just a comment\n\n# TYPE x gauge\n# HELP y nothing\n"),
        put("/metrics/job/k", "# UNIT x seconds\n# EOF\n"),
    ]);
}

#[test]
fn openmetrics_bodies_are_read_as_text() {
    case().run(&[put("/metrics/job/j", "# TYPE foo counter\nfoo_total 3\nfoo_created 1.7e9\n")]);
}

#[test]
fn names_with_colons_and_label_escapes() {
    case()
        .run(&[put("/metrics/job/j", "f:g 1\na{x=\"q\\\"\\\\\\n\",y=\"\"} 2\n# HELP h two\\nlines \\\\ here\nh 1\n")]);
}

#[test]
fn special_values() {
    case().run(&[put(
        "/metrics/job/j",
        "a +Inf\nb -Inf\nc NaN\nd -0\ne 1e10\nf 1.5e-7\ng 123456789\nh 0.0001\ni -1.25\n",
    )]);
}

#[test]
fn summaries_and_histograms() {
    case().run(&[put(
        "/metrics/job/j",
        "# HELP s A summary.\n# TYPE s summary\ns{x=\"a\",quantile=\"0.5\"} 1\ns{x=\"a\",quantile=\"0.9\"} 2\ns_sum{x=\"a\"} 3\ns_count{x=\"a\"} 2\n\
         # TYPE h histogram\nh_bucket{le=\"0.5\"} 1\nh_bucket{le=\"1\"} 2\nh_sum 3\nh_count 5\n",
    )]);
}

#[test]
fn content_types_other_than_protobuf_are_text() {
    case().run(&[
        put("/metrics/job/a", "a 1\n").header("Content-Type", "application/json"),
        put("/metrics/job/b", "b 1\n").header("Content-Type", "application/x-www-form-urlencoded"),
        put("/metrics/job/c", "c 1\n").header("Content-Type", "text/plain; version=0.0.4; charset=utf-8"),
        put("/metrics/job/d", "d 1\n").header("Content-Type", "application/openmetrics-text; version=1.0.0"),
        put("/metrics/job/e", "e 1\n").header("Content-Type", "not a media type;;"),
    ]);
}

// ---- Bodies: delimited protobuf ------------------------------------------------------------

#[test]
fn protobuf_push_put_and_post() {
    let families = [
        family("g", MetricType::Gauge, vec![gauge(&[("x", "1")], 3.5), gauge(&[("x", "2")], 4.0)]),
        family(
            "c",
            MetricType::Counter,
            vec![Metric { counter: Some(Counter { value: Some(7.0), ..Default::default() }), ..Default::default() }],
        ),
    ];
    case().run(&[
        protobuf_push("PUT", "/metrics/job/j", &families),
        protobuf_push("POST", "/metrics/job/j", &families[..1]),
    ]);
}

#[test]
fn protobuf_content_type_needs_every_parameter() {
    let body = delimited(&[family("g", MetricType::Gauge, vec![gauge(&[], 1.0)])]);
    case().run(&[
        step("PUT", "/metrics/job/a", body.clone())
            .header("Content-Type", "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily"),
        step("PUT", "/metrics/job/b", body.clone()).header(
            "Content-Type",
            "Application/Vnd.Google.Protobuf;Encoding=delimited;PROTO=\"io.prometheus.client.MetricFamily\"",
        ),
        step("PUT", "/metrics/job/c", body)
            .header("Content-Type", "application/vnd.google.protobuf; encoding=delimited"),
    ]);
}

#[test]
fn protobuf_repeated_family_last_one_wins() {
    let first = family("g", MetricType::Gauge, vec![gauge(&[], 1.0)]);
    let second = family("g", MetricType::Gauge, vec![gauge(&[("y", "2")], 2.0)]);
    case().run(&[protobuf_push("PUT", "/metrics/job/j", &[first, second])]);
}

#[test]
fn protobuf_truncated_body() {
    let mut body = delimited(&[family("g", MetricType::Gauge, vec![gauge(&[], 1.0)])]);
    body.truncate(body.len() - 2);
    case().run(&[step("PUT", "/metrics/job/j", body).header("Content-Type", PROTOBUF).status_only()]);
}

#[test]
fn protobuf_type_mismatch_and_bad_label_name() {
    let mismatch =
        family("g", MetricType::Gauge, vec![Metric { counter: Some(Counter::default()), ..Default::default() }]);
    let bad_label = family("h", MetricType::Gauge, vec![gauge(&[("bad-l", "x")], 1.0)]);
    let reserved = family("i", MetricType::Gauge, vec![gauge(&[("__x", "x")], 1.0)]);
    case().state_changed_in("1.11.0", "the push with bad-l is kept").run(&[
        protobuf_push("PUT", "/metrics/job/j", &[mismatch]),
        protobuf_push("PUT", "/metrics/job/k", &[bad_label]).changed_in("1.11.0", "UTF-8 label names in protobuf"),
        protobuf_push("PUT", "/metrics/job/l", &[reserved]),
    ]);
}

#[test]
fn protobuf_names_beyond_the_legacy_rules() {
    // Since 1.11 the reference checks a protobuf push's names by client_golang's UTF-8 rules
    // (any name, labels not empty nor starting with `__`), with or without
    // `--push.enable-utf8-names`, and a scrape writes them escaped unless asked otherwise.
    let dotted = family("my.metric", MetricType::Gauge, vec![gauge(&[("a.b", "x"), ("ok", "y")], 1.0)]);
    let digit = family("1x", MetricType::Gauge, vec![gauge(&[("1l", "x")], 1.0)]);
    // 1.5.1 kept this one too, and then wrote a scrape that Prometheus could not parse.
    let dashed = family("bad-name", MetricType::Gauge, vec![gauge(&[], 1.0)]);
    let empty_label = family("e", MetricType::Gauge, vec![gauge(&[("", "x")], 1.0)]);
    let utf8 = family("花火", MetricType::Counter, vec![counter(&[("läbel", "v")], 2.0)]);
    case().state_changed_in("1.11.0", "the pushes with such names are kept").run(&[
        protobuf_push("PUT", "/metrics/job/a", &[dotted]).changed_in("1.11.0", "UTF-8 names in protobuf"),
        protobuf_push("PUT", "/metrics/job/b", &[digit]).changed_in("1.11.0", "UTF-8 names in protobuf"),
        protobuf_push("PUT", "/metrics/job/c", &[dashed]),
        protobuf_push("PUT", "/metrics/job/d", &[empty_label]),
        protobuf_push("PUT", "/metrics/job/e", &[utf8]).changed_in("1.11.0", "UTF-8 names in protobuf"),
    ]);
}

#[test]
fn protobuf_family_without_a_name_is_refused() {
    let (today, ours) = case().state_differs("cronpush keeps only the named family").run(&[
        put("/metrics/job/a", "a 1\n"),
        protobuf_push("PUT", "/metrics/job/c", &[family("", MetricType::Gauge, vec![gauge(&[], 1.0)])]).differs(
            400,
            "a family without a name: both releases take it, and then every scrape of /metrics \
             comes back without any group's series",
        ),
    ]);
    assert!(today.pushed_series().is_empty(), "today's release still scrapes: {:?}", today.pushed_series());
    assert!(ours.pushed_series().contains(&"a{instance=\"\",job=\"a\"} 1".to_string()));
}

#[test]
fn protobuf_units_are_kept() {
    // On purpose: `MetricFamily.unit` comes back in the protobuf scrape (the text format 0.0.4
    // has no place for it).
    let with_unit = |name: &str, unit: &str, job: &str| MetricFamily {
        unit: Some(unit.into()),
        ..family(name, MetricType::Gauge, vec![gauge(&[("x", job)], 1.0)])
    };
    let (today, ours) = case().run(&[
        protobuf_push("PUT", "/metrics/job/a", &[with_unit("size_bytes", "bytes", "a")]),
        protobuf_push("PUT", "/metrics/job/b", &[with_unit("took_seconds", "seconds", "b")]),
        protobuf_push("PUT", "/metrics/job/c", &[with_unit("took_seconds", "seconds", "c")]),
    ]);
    let units = |server: &Server| -> BTreeMap<String, String> {
        let reply =
            support::send(&support::client(), "GET", &server.url("/metrics"), &[("Accept", PROTOBUF)], Vec::new());
        cronpush::exposition::protobuf::decode_delimited(&reply.bytes)
            .expect("delimited protobuf")
            .into_iter()
            .filter(|f| !support::is_own_metric(f.name()))
            .map(|f| (f.name().to_string(), f.unit().to_string()))
            .collect()
    };
    // Today's release drops the unit on the way (its store copies families without it); a
    // client that pushed one gets it back from cronpush.
    assert_eq!(units(&today)["took_seconds"], "", "today's release now keeps units");
    assert_eq!(units(&ours)["took_seconds"], "seconds");
    assert_eq!(units(&ours)["size_bytes"], "bytes");
    assert_eq!(units(&ours)["push_time_seconds"], "");
}

// ---- Histograms in /api/v1/metrics: native (1.8), float (1.10) ------------------------------

fn histogram_family(name: &str, histogram: Histogram) -> MetricFamily {
    family(name, MetricType::Histogram, vec![Metric { histogram: Some(histogram), ..Default::default() }])
}

fn span(offset: i32, length: u32) -> BucketSpan {
    BucketSpan { offset: Some(offset), length: Some(length) }
}

#[test]
fn native_histograms_in_the_api() {
    // Schema 8 from index -300 to 299: every one of the 256 fractions a bound is made of, on
    // both sides of zero, with gaps and empty buckets between spans.
    let fine = Histogram {
        sample_count: Some(1200),
        sample_sum: Some(12.5),
        schema: Some(8),
        zero_threshold: Some(1e-128),
        zero_count: Some(3),
        positive_span: vec![span(-300, 300), span(0, 300)],
        positive_delta: (0..600).map(|i| if i % 7 == 0 { -1 } else { 1 }).collect(),
        negative_span: vec![span(-2, 3), span(5, 2)],
        negative_delta: vec![1, 1, -2, 4, 0],
        ..Default::default()
    };
    let coarse = Histogram {
        sample_count: Some(5),
        sample_sum: Some(-3.0),
        schema: Some(-4),
        zero_threshold: Some(0.0),
        positive_span: vec![span(60, 5)],
        positive_delta: vec![1, 0, 0, 0, 1],
        negative_span: vec![span(0, 2)],
        negative_delta: vec![2, -1],
        ..Default::default()
    };
    let float = Histogram {
        sample_count_float: Some(7.5),
        sample_sum: Some(2.25),
        schema: Some(3),
        zero_threshold: Some(0.25),
        zero_count_float: Some(0.5),
        positive_span: vec![span(-3, 2), span(2, 3)],
        positive_count: vec![1.5, 0.0, 2.0, 1.25, 0.75],
        negative_span: vec![span(1, 1)],
        negative_count: vec![1.5],
        ..Default::default()
    };
    let classic_float = Histogram {
        sample_count_float: Some(3.5),
        sample_sum: Some(4.0),
        bucket: vec![
            Bucket { upper_bound: Some(1.0), cumulative_count_float: Some(1.5), ..Default::default() },
            Bucket { upper_bound: Some(f64::INFINITY), cumulative_count_float: Some(3.5), ..Default::default() },
        ],
        ..Default::default()
    };
    let only_zero = Histogram {
        sample_count: Some(2),
        schema: Some(1),
        zero_count: Some(2),
        zero_threshold: Some(0.5),
        positive_span: vec![span(0, 0)],
        ..Default::default()
    };
    let (today, ours) =
        case().state_differs("the bounds differ in the last place; compared below").run(&[protobuf_push(
            "PUT",
            "/metrics/job/h",
            &[
                histogram_family("fine", fine),
                histogram_family("coarse", coarse),
                histogram_family("float", float),
                histogram_family("classic_float", classic_float),
                histogram_family("only_zero", only_zero),
            ],
        )]);
    assert_eq!(ours.pushed_series(), today.pushed_series());
    let histograms = |server: &Server| -> Value {
        let json: Value = serde_json::from_str(&server.get("/api/v1/metrics").body).expect("JSON");
        let mut group = json["data"][0].clone();
        for name in ["labels", "last_push_successful", "push_time_seconds", "push_failure_time_seconds"] {
            group.as_object_mut().expect("group").remove(name);
        }
        for family in group.as_object_mut().expect("group").values_mut() {
            family.as_object_mut().expect("family").remove("time_stamp");
        }
        group
    };
    let (want, got) = (histograms(&today), histograms(&ours));
    assert_eq!(got.as_object().map(|o| o.len()), Some(5));
    // Prometheus' precalculated table of bounds (model/histogram/generic.go) is below the true
    // 2^(k/256)/2 by up to four units in the last place for two thirds of its entries, and no
    // rule found reproduces it; cronpush writes the nearest float. Everything else is equal.
    let mut bounds = 0;
    for (name, family) in want.as_object().expect("families") {
        let (want_buckets, got_buckets) = (&family["metrics"][0]["buckets"], &got[name]["metrics"][0]["buckets"]);
        let without_buckets = |f: &Value| {
            let mut f = f.clone();
            f["metrics"][0].as_object_mut().expect("metric").remove("buckets");
            f
        };
        assert_eq!(without_buckets(&got[name]), without_buckets(family), "{name}");
        let Some(want_rows) = want_buckets.as_array() else {
            assert_eq!(got_buckets, want_buckets, "{name}: classic buckets");
            continue;
        };
        let got_rows = got_buckets.as_array().unwrap_or_else(|| panic!("{name}: {got_buckets}"));
        assert_eq!(got_rows.len(), want_rows.len(), "{name}");
        for (g, w) in got_rows.iter().zip(want_rows) {
            assert_eq!((&g[0], &g[3]), (&w[0], &w[3]), "{name}: boundaries and count of {w}");
            for i in [1, 2] {
                let (a, b): (f64, f64) =
                    (g[i].as_str().unwrap().parse().unwrap(), w[i].as_str().unwrap().parse().unwrap());
                let ulps = (a.to_bits() as i64 - b.to_bits() as i64).abs();
                assert!(ulps <= 4, "{name}: bound {a} against {b}, {ulps} apart");
                bounds += 1;
            }
        }
    }
    assert!(bounds > 1200, "{bounds} bounds compared");
}

#[test]
fn protobuf_duplicate_series_in_one_family() {
    let dup = family("g", MetricType::Gauge, vec![gauge(&[("x", "1")], 1.0), gauge(&[("x", "1")], 2.0)]);
    case().run(&[protobuf_push("PUT", "/metrics/job/j", &[dup])]);
}

#[test]
fn protobuf_timestamps_are_refused() {
    let mut metric = gauge(&[], 1.0);
    metric.timestamp_ms = Some(1234);
    case().run(&[protobuf_push("PUT", "/metrics/job/j", &[family("g", MetricType::Gauge, vec![metric])])]);
}

#[test]
fn protobuf_empty_body_is_an_empty_push() {
    case().run(&[step("PUT", "/metrics/job/j", Vec::new()).header("Content-Type", PROTOBUF)]);
}

// ---- Request compression ---------------------------------------------------------------------

#[test]
fn gzip_bodies() {
    case().run(&[
        step("PUT", "/metrics/job/j", gzip("a 1\nb 2\n")).header("Content-Encoding", "gzip"),
        step("PUT", "/metrics/job/k", b"not gzip".to_vec()).header("Content-Encoding", "gzip"),
        step("PUT", "/metrics/job/k", b"certainly not gzip\n".to_vec()).header("Content-Encoding", "gzip"),
        step("DELETE", "/metrics/job/k", Vec::new()).header("Content-Encoding", "gzip"),
        step("PUT", "/metrics/job/l", Vec::new()).header("Content-Encoding", "gzip"),
        step("PUT", "/metrics/job/m", "c 3\n").header("Content-Encoding", "deflate"),
    ]);
}

#[test]
fn truncated_gzip_is_refused() {
    // Without its trailer the stream's checksum cannot be checked; 1.5.1 took whatever
    // inflated.
    let body = gzip("a 1\n");
    let (_, ours) = case().state_changed_in("1.6.0", "nothing is stored").run(&[step(
        "PUT",
        "/metrics/job/k",
        body[..body.len() - 4].to_vec(),
    )
    .header("Content-Encoding", "gzip")
    .changed_in("1.6.0", "a gzip body must be whole")]);
    assert!(ours.pushed_series().is_empty());
}

fn snappy(text: &str) -> Vec<u8> {
    let mut encoder = snap::write::FrameEncoder::new(Vec::new());
    encoder.write_all(text.as_bytes()).expect("snappy");
    encoder.into_inner().expect("snappy")
}

#[test]
fn snappy_bodies() {
    // Since 1.6 the reference reads `Content-Encoding: snappy` with golang/snappy's framed
    // reader; 1.5.1 parsed the compressed bytes as text.
    let body = snappy("# TYPE a gauge\na{x=\"1\"} 1\n");
    let snappy_step = |path: &str, bytes: Vec<u8>| step("PUT", path, bytes).header("Content-Encoding", "snappy");
    let mut bad_checksum = body.clone();
    let last = bad_checksum.len() - 1;
    bad_checksum[last] ^= 0xff;
    case().state_changed_in("1.6.0", "snappy bodies are read").run(&[
        snappy_step("/metrics/job/j", body.clone()).changed_in("1.6.0", "snappy bodies are read"),
        snappy_step("/metrics/job/k", body[..body.len() - 3].to_vec()).changed_in("1.6.0", "snappy bodies are read"),
        snappy_step("/metrics/job/l", bad_checksum).changed_in("1.6.0", "snappy bodies are read"),
        snappy_step("/metrics/job/m", b"not snappy at all".to_vec()).changed_in("1.6.0", "snappy bodies are read"),
        snappy_step("/metrics/job/n", Vec::new()),
    ]);
}

#[test]
fn gzip_header_is_case_insensitive() {
    case().state_changed_in("1.6.0", "the push lands").run(&[step("PUT", "/metrics/job/j", gzip("a 1\n"))
        .header("Content-Encoding", "GZIP")
        .changed_in("1.6.0", "GZIP is inflated too; 1.5.1 parsed the compressed bytes as text")]);
}

// ---- Semantics of PUT, POST, DELETE ---------------------------------------------------------

#[test]
fn put_replaces_the_whole_group() {
    case().run(&[put("/metrics/job/j", "a 1\nb 2\n"), put("/metrics/job/j", "c 3\n")]);
}

#[test]
fn post_replaces_same_named_families_only() {
    case().run(&[put("/metrics/job/j", "a 1\nb 2\n"), post("/metrics/job/j", "a{x=\"1\"} 10\nc 3\n")]);
}

#[test]
fn empty_put_keeps_the_group_with_its_timestamps() {
    case().run(&[put("/metrics/job/j", "a 1\n"), put("/metrics/job/j", "")]);
}

#[test]
fn empty_post_creates_or_touches_a_group() {
    case().run(&[post("/metrics/job/new", ""), put("/metrics/job/j", "a 1\n"), post("/metrics/job/j", "")]);
}

#[test]
fn grouping_labels_are_forced_onto_series() {
    case().run(&[
        put("/metrics/job/j/instance/i1", "a{job=\"other\",instance=\"i2\",x=\"y\"} 1\n"),
        put("/metrics/job/k", "a{instance=\"i2\"} 1\nb 2\n"),
    ]);
}

#[test]
fn delete_removes_one_group_only() {
    case().run(&[
        put("/metrics/job/j", "a 1\n"),
        put("/metrics/job/j/instance/i", "b 1\n"),
        delete("/metrics/job/j"),
        delete("/metrics/job/never-pushed"),
    ]);
}

#[test]
fn delete_then_push_again() {
    case().run(&[put("/metrics/job/j", "a 1\n"), delete("/metrics/job/j"), put("/metrics/job/j", "b 1\n")]);
}

#[test]
fn delete_with_base64_key() {
    case().run(&[
        put("/metrics/job/j/path@base64/L3Zhci90bXA", "a 1\n"),
        delete("/metrics/job/j/path@base64/L3Zhci90bXA=="),
    ]);
}

#[test]
fn pushed_timestamp_families_are_overwritten() {
    case().run(&[put("/metrics/job/j", "push_time_seconds 5\na 1\n")]);
}

#[test]
fn pushed_failure_time_on_an_existing_group_is_overwritten() {
    // The reference stores the user's value here (a quirk its README denies); cronpush always
    // shows the real failure time.
    let (_, ours) = case()
        .state_differs("the user's push_failure_time_seconds is not stored")
        .run(&[put("/metrics/job/j", "a 1\n"), post("/metrics/job/j", "push_failure_time_seconds 5\n")]);
    assert!(ours.pushed_series().contains(&"push_failure_time_seconds{instance=\"\",job=\"j\"} 0".to_string()));
}

// ---- The consistency check ----------------------------------------------------------------

#[test]
fn type_clash_across_groups() {
    case().run(&[
        put("/metrics/job/a", "# TYPE m counter\nm 1\n"),
        put("/metrics/job/b", "# TYPE m gauge\nm 1\n"),
        put("/metrics/job/a", "# TYPE m gauge\nm 2\n"),
    ]);
}

#[test]
fn type_clash_with_the_gateways_own_metrics() {
    case().run(&[
        put("/metrics/job/a", "# TYPE process_open_fds counter\nprocess_open_fds 1\n"),
        put("/metrics/job/b", "# TYPE pushgateway_http_requests_total gauge\npushgateway_http_requests_total 1\n"),
    ]);
}

#[test]
fn go_runtime_names_are_free_in_cronpush() {
    // The reference exports Go runtime metrics; cronpush has none, so a `go_goroutines`
    // counter clashes with nothing.
    case().state_differs("the push lands in cronpush only").run(&[put(
        "/metrics/job/a",
        "# TYPE go_goroutines counter\ngo_goroutines 1\n",
    )
    .differs(200, "cronpush exports no go_* metrics")]);
}

#[test]
fn duplicate_series_across_groups() {
    case().run(&[put("/metrics/job/j", "a{x=\"1\"} 1\n"), put("/metrics/job/j/x/1", "a 2\n")]);
}

#[test]
fn duplicate_series_within_a_text_body() {
    case().run(&[put("/metrics/job/j", "a 1\na 2\n")]);
}

#[test]
fn summary_and_histogram_suffix_collisions() {
    case().run(&[
        put("/metrics/job/a", "# TYPE s summary\ns_sum 1\ns_count 1\n"),
        put("/metrics/job/b", "s_count 1\n"),
        put("/metrics/job/c", "s_bucket 1\n"),
        put("/metrics/job/d", "h_bucket 1\n"),
        put("/metrics/job/e", "# TYPE h histogram\nh_count 1\n"),
    ]);
}

#[test]
fn reserved_label_in_the_body() {
    case().run(&[put("/metrics/job/j", "i{__x=\"y\"} 1\n")]);
}

#[test]
fn failure_time_survives_a_later_success() {
    case().run(&[put("/metrics/job/j", "a 1 1\n"), put("/metrics/job/j", "a 1\n")]);
}

#[test]
fn a_failed_push_leaves_the_group_untouched() {
    case().run(&[
        put("/metrics/job/a", "# TYPE m counter\nm 1\n"),
        put("/metrics/job/b", "x 1\n"),
        post("/metrics/job/b", "# TYPE m gauge\nm 1\ny 2\n"),
    ]);
}

#[test]
fn help_conflicts_resolve_to_one_of_the_pushed() {
    let (_, ours) = case()
        .help_may_differ()
        .run(&[put("/metrics/job/a", "# HELP m First.\nm 1\n"), put("/metrics/job/b", "# HELP m Second.\nm 2\n")]);
    // cronpush picks deterministically: the longest-standing group's.
    for _ in 0..5 {
        assert!(ours.get("/metrics").body.contains("# HELP m First.\n"));
    }
}

#[test]
fn twin_grouping_keys_do_not_break_the_scrape() {
    // `{job=j}` and `{job=j,instance=""}` expose the same series. The reference refuses the
    // second push but creates its group anyway, after which every scrape fails with 500.
    let (reference, ours) = case().state_differs("the reference can no longer be scraped").run(&[
        put("/metrics/job/j/instance@base64/=", "a 1\n"),
        put("/metrics/job/j", "b 1\n"),
        get("/metrics").differs(200, "cronpush does not create a group that would break scrapes"),
    ]);
    assert_eq!(reference.get("/metrics").status, 500);
    assert_eq!(
        ours.pushed_series(),
        [
            "a{instance=\"\",job=\"j\"} 1",
            "push_failure_time_seconds{instance=\"\",job=\"j\"} 0",
            "push_time_seconds{instance=\"\",job=\"j\"} T",
        ]
    );
}

#[test]
fn disabled_consistency_check_still_keeps_scrapes_working() {
    let (reference, ours) = case()
        .flags(&["--push.disable-consistency-check"])
        .state_differs("the reference stored the clash")
        .run(&[put("/metrics/job/a", "# TYPE m counter\nm 1\n"), put("/metrics/job/b", "# TYPE m gauge\nm 1\n")]);
    assert!(eventually(Duration::from_secs(3), || reference.get("/metrics").status == 500));
    assert_eq!(ours.get("/metrics").status, 200);
    assert!(!ours.pushed_series().iter().any(|l| l.contains("job=\"b\"") && l.starts_with("m{")));
}

#[test]
fn timestamps_are_refused_even_without_the_check() {
    case()
        .flags(&["--push.disable-consistency-check"])
        .run(&[put("/metrics/job/j", "a 1 1234\n"), put("/metrics/job/k", "a 1\n")]);
}

// ---- The rest of the HTTP surface ----------------------------------------------------------

#[test]
fn methods_options_and_unknown_paths() {
    case().run(&[
        get("/metrics/job/j"),
        step("OPTIONS", "/metrics/job/j", ""),
        post("/metrics", ""),
        get("/nothing/here"),
        get("/-/healthy"),
        get("/-/ready"),
        step("OPTIONS", "/api/v1/metrics", ""),
    ]);
}

#[test]
fn head_requests_are_answered() {
    case().run(&[step("HEAD", "/metrics", "").differs(200, "HEAD works like GET; the reference answers 405")]);
}

#[test]
fn lifecycle_api_is_off_by_default() {
    case().run(&[put("/-/quit", ""), post("/-/quit", ""), get("/-/quit")]);
}

#[test]
fn lifecycle_api_quits_when_enabled() {
    let (mut reference, mut ours) = case().flags(&["--web.enable-lifecycle"]).run(&[put("/metrics/job/j", "a 1\n")]);
    for server in [&mut reference, &mut ours] {
        let reply = server.post("/-/quit", "");
        assert_eq!((reply.status, reply.body.as_str()), (200, "Requesting termination... Goodbye!"));
        assert_eq!(server.wait_exit(Duration::from_secs(15)), Some(0));
    }
}

#[test]
fn admin_wipe() {
    case().run(&[put("/api/v1/admin/wipe", ""), put("/metrics/job/j", "a 1\n")]);
    let (_, ours) = case().flags(&["--web.enable-admin-api"]).run(&[
        put("/metrics/job/j", "a 1\n"),
        put("/metrics/job/k", "b 1\n"),
        put("/api/v1/admin/wipe", ""),
        get("/api/v1/admin/wipe"),
    ]);
    assert!(ours.pushed_series().is_empty());
}

#[test]
fn api_cors_headers() {
    let (reference, ours) = case().run(&[put("/metrics/job/j", "a 1\n")]);
    for path in ["/api/v1/metrics", "/api/v1/status"] {
        let (want, got) = (reference.get(path), ours.get(path));
        for name in [
            "access-control-allow-headers",
            "access-control-allow-methods",
            "access-control-allow-origin",
            "access-control-expose-headers",
            "cache-control",
            "content-type",
        ] {
            assert_eq!(got.header(name), want.header(name), "{path}: {name}");
        }
    }
}

#[test]
fn api_status_shape() {
    let (reference, ours) = case().run(&[]);
    let (want, got): (Value, Value) = (
        serde_json::from_str(&reference.get("/api/v1/status").body).unwrap(),
        serde_json::from_str(&ours.get("/api/v1/status").body).unwrap(),
    );
    assert_eq!(got["status"], want["status"]);
    let keys = |v: &Value, at: &str| -> Vec<String> { v["data"][at].as_object().unwrap().keys().cloned().collect() };
    assert_eq!(keys(&got, "build_information"), keys(&want, "build_information"));
    // Every flag cronpush shares with the reference shows the same default; cronpush also lists
    // the flags upstream added after 1.5.1 (the latest release's, src/gateway/config.rs), and
    // every flag 1.5.1 lists but Debian's own --web.local-assets.
    const SINCE_1_5_1: &[&str] = &["push.enable-utf8-names"];
    let (want_flags, got_flags) = (&want["data"]["flags"], &got["data"]["flags"]);
    for (name, value) in got_flags.as_object().unwrap() {
        if name != "web.listen-address" && !SINCE_1_5_1.contains(&name.as_str()) {
            assert_eq!(Some(value), want_flags.get(name), "flag {name}");
        }
    }
    for name in want_flags.as_object().unwrap().keys().filter(|n| *n != "web.local-assets") {
        assert!(got_flags.get(name).is_some(), "cronpush does not list the reference's flag {name}");
    }
    assert!(got["data"]["start_time"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn scrape_as_protobuf_and_gzip() {
    let (reference, ours) = case().run(&[put("/metrics/job/j", "# TYPE a gauge\na{x=\"1\"} 1\n")]);
    for accept in [PROTOBUF, "text/plain;version=0.0.4"] {
        let (want, got) = (
            support::send(&support::client(), "GET", &reference.url("/metrics"), &[("Accept", accept)], Vec::new()),
            support::send(&support::client(), "GET", &ours.url("/metrics"), &[("Accept", accept)], Vec::new()),
        );
        assert_eq!(got.header("content-type"), want.header("content-type"), "Accept: {accept}");
    }
    let families = |server: &Server| -> BTreeMap<String, usize> {
        let reply =
            support::send(&support::client(), "GET", &server.url("/metrics"), &[("Accept", PROTOBUF)], Vec::new());
        cronpush::exposition::protobuf::decode_delimited(&reply.bytes)
            .expect("delimited protobuf")
            .into_iter()
            .filter(|f| matches!(f.name(), "a" | "push_time_seconds" | "push_failure_time_seconds"))
            .map(|f| (f.name().to_string(), f.metric.len()))
            .collect()
    };
    assert_eq!(families(&ours), families(&reference));
    let gz =
        support::send(&support::client(), "GET", &ours.url("/metrics"), &[("Accept-Encoding", "gzip")], Vec::new());
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz.bytes[..]), &mut text).unwrap();
    assert_eq!(pushed_series(&text), ours.pushed_series());
}

#[test]
fn scrapes_escape_names_as_asked() {
    // Names only a protobuf push can bring without `--push.enable-utf8-names`.
    let utf8 = family("my.metric", MetricType::Gauge, vec![gauge(&[("a.b", "x"), ("c_d", "y")], 1.0)]);
    let emoji = family("label with 😱", MetricType::Counter, vec![counter(&[("花火", "v")], 2.0)]);
    let (today, ours) = case().state_changed_in("1.11.0", "UTF-8 names in protobuf").run(&[
        protobuf_push("PUT", "/metrics/job/j", &[utf8, emoji]).changed_in("1.11.0", "UTF-8 names in protobuf"),
        put("/metrics/job/k", "# TYPE plain_total counter\nplain_total{x=\"1\"} 3\n"),
    ]);
    same_scrapes(&today, &ours);
    let scrape = |server: &Server, accept: &str| {
        support::send(&support::client(), "GET", &server.url("/metrics"), &[("Accept", accept)], Vec::new())
    };
    for escaping in ["underscores", "dots", "values", "allow-utf-8"] {
        let accept = format!("{PROTOBUF}; escaping={escaping}");
        let names = |server: &Server| -> Vec<(String, Vec<String>)> {
            let reply = scrape(server, &accept);
            let mut families: Vec<(String, Vec<String>)> =
                cronpush::exposition::protobuf::decode_delimited(&reply.bytes)
                    .expect("delimited protobuf")
                    .into_iter()
                    .filter(|f| !support::is_own_metric(f.name()))
                    .map(|f| {
                        let labels = f.metric.iter().flat_map(|m| &m.label).map(|l| l.name().to_string()).collect();
                        (f.name().to_string(), labels)
                    })
                    .collect();
            families.sort();
            families
        };
        assert_eq!(names(&ours), names(&today), "Accept: {accept}");
        assert_eq!(scrape(&ours, &accept).header("content-type"), scrape(&today, &accept).header("content-type"));
    }
}

/// Asserts that cronpush's text scrape, asked for each name escaping, has the pushed series,
/// TYPE and HELP lines and `Content-Type` that today's release's has.
fn same_scrapes(today: &Server, ours: &Server) {
    let scrape = |server: &Server, accept: &str| {
        support::send(&support::client(), "GET", &server.url("/metrics"), &[("Accept", accept)], Vec::new())
    };
    for accept in [
        "",
        "text/plain;version=0.0.4",
        "text/plain;version=1.0.0;escaping=allow-utf-8",
        "text/plain;version=0.0.4;escaping=dots",
        "text/plain;version=0.0.4;escaping=values",
        "text/plain;escaping=underscores",
        "text/plain;version=0.0.4;escaping=bogus",
        "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8,text/plain;version=0.0.4;q=0.5",
    ] {
        let (want, got) = (scrape(today, accept), scrape(ours, accept));
        assert_eq!(got.header("content-type"), want.header("content-type"), "Accept: {accept}");
        let lines = |body: &str| -> Vec<String> {
            let mut series = pushed_series(body);
            series.extend(
                body.lines().filter(|l| l.starts_with("# ") && !support::is_own_metric(&l[7..])).map(String::from),
            );
            series.sort();
            series
        };
        assert_eq!(lines(&got.body), lines(&want.body), "Accept: {accept}");
    }
}

#[test]
fn status_lists_the_flags_of_today_s_release() {
    for flags in [&[][..], &["--push.enable-utf8-names", "--persistence.interval=1m", "--log.level=debug"][..]] {
        let (today, ours) = case().flags(flags).new_flag("--push.enable-utf8-names").run(&[]);
        let listed = |server: &Server| -> Value {
            let mut status: Value = serde_json::from_str(&server.get("/api/v1/status").body).expect("JSON");
            let flags = status["data"]["flags"].as_object_mut().expect("flags");
            flags.remove("web.listen-address");
            Value::Object(flags.clone())
        };
        assert_eq!(listed(&ours), listed(&today), "with {flags:?}");
    }
}

#[test]
fn route_prefix_and_telemetry_path() {
    let flags = ["--web.route-prefix=/pg", "--web.telemetry-path=/prom"];
    let (reference, ours) =
        case().flags(&flags).prefix("/pg").state_differs("checked through the prefix below").run(&[
            put("/pg/metrics/job/x", "a 1\n"),
            get("/pg/prom"),
            get("/pg/-/healthy"),
            get("/pg/api/v1/status"),
            get("/metrics"),
            get("/prom"),
            get("/-/healthy"),
            get("/api/v1/status"),
            put("/metrics/job/x", "a 1\n"),
        ]);
    let series = |s: &Server| pushed_series(&s.get("/pg/prom").body);
    assert_eq!(series(&ours), series(&reference));
}

#[test]
fn external_url_sets_the_prefix() {
    let flags = ["--web.external-url=http://localhost:8080/pushgateway/"];
    let (reference, ours) = case()
        .flags(&flags)
        .prefix("/pushgateway")
        .state_differs("checked through the prefix below")
        .run(&[put("/pushgateway/metrics/job/x", "a 1\n"), get("/pushgateway/metrics"), get("/metrics")]);
    let series = |s: &Server| pushed_series(&s.get("/pushgateway/metrics").body);
    assert_eq!(series(&ours), series(&reference));
}

#[test]
fn the_articles_nginx_flags_keep_routes_at_the_root() {
    // The article runs `--web.external-url=http://localhost:8080/pushgateway/ --web.route-prefix=/`
    // behind nginx, which strips the prefix.
    let flags = ["--web.external-url=http://localhost:8080/pushgateway/", "--web.route-prefix=/"];
    case().flags(&flags).run(&[put("/metrics/job/some_job", "some_metric 3.14\n"), get("/pushgateway/metrics")]);
}
