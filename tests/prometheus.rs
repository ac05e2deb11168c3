//! A real Prometheus (Debian's `prometheus` 2.42) scrapes the real cronpush binary, set up as in
//! the article: a scrape job for the gateway with `honor_labels: true`, pushes made the way the
//! article's curl makes them, and the article's alert expression evaluated by Prometheus itself.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use support::Server;
use support::clients;
use support::prometheus::SCRAPE_JOB;

/// How long Prometheus may take to show a push: a 1 s scrape interval, on a loaded 2-core box.
const SCRAPE_WAIT: Duration = Duration::from_secs(30);

/// The shared Prometheus (tests/support/prometheus.rs), with this file's queries.
struct Prometheus(support::prometheus::Prometheus);

impl Prometheus {
    fn start(gateway: &Server, features: &[&str]) -> Prometheus {
        Prometheus(support::prometheus::Prometheus::start(gateway, None, features))
    }

    /// An instant query through the HTTP API: each series' labels and value (as Prometheus
    /// prints it).
    fn query(&self, expr: &str) -> Vec<(BTreeMap<String, String>, String)> {
        let reply = support::client()
            .get(format!("{}/api/v1/query", self.0.base))
            .query(&[("query", expr)])
            .send()
            .unwrap_or_else(|e| panic!("query {expr}: {e}"));
        let text = reply.text().unwrap_or_else(|e| panic!("query {expr}: {e}"));
        let json: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("query {expr}: not JSON ({e}): {text}"));
        assert_eq!(json["status"], "success", "query {expr} failed: {json}");
        let result = json["data"]["result"].as_array().unwrap_or_else(|| panic!("query {expr}: no result: {json}"));
        result
            .iter()
            .map(|r| {
                let labels = serde_json::from_value(r["metric"].clone()).expect("labels");
                let value = r["value"][1].as_str().unwrap_or_else(|| panic!("query {expr}: no float value: {r}"));
                (labels, value.to_string())
            })
            .collect()
    }

    /// Queries until `done` accepts the result, and fails with the last result and the scrape
    /// target's state after `SCRAPE_WAIT`.
    fn wait_for(
        &self,
        expr: &str,
        what: &str,
        done: impl Fn(&[(BTreeMap<String, String>, String)]) -> bool,
    ) -> Vec<(BTreeMap<String, String>, String)> {
        let deadline = Instant::now() + SCRAPE_WAIT;
        loop {
            let result = self.query(expr);
            if done(&result) {
                return result;
            }
            if Instant::now() > deadline {
                let targets = support::client()
                    .get(format!("{}/api/v1/targets", self.0.base))
                    .send()
                    .and_then(|r| r.text())
                    .unwrap_or_else(|e| e.to_string());
                panic!(
                    "{expr} did not show {what} within {SCRAPE_WAIT:?}; last result: {result:?}\ntargets: {targets}"
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Pushes like the article's `echo "some_metric 3.14" | curl --data-binary @- <url>`: a POST
/// whose Content-Type is curl's default form encoding, which a gateway must read as text.
fn curl_push(gateway: &Server, path: &str, body: &str) {
    let reply = gateway.request("POST", path, &[("Content-Type", "application/x-www-form-urlencoded")], body);
    assert_eq!(reply.status, 200, "POST {path} failed: {}", reply.body);
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
}

/// The article's setup end to end: cronpush runs as the article's systemd unit runs the
/// Pushgateway (behind a proxy path, routes at `/`), Prometheus scrapes it with
/// `honor_labels: true`, and a curl-style push of `some_metric` shows up as
/// `some_metric{job="some_job"}` (the pushed job, no instance) with the latest pushed value.
/// `push_time_seconds` is queryable, the gateway target is up, and the article's
/// "not scheduled" alert expression is quiet right after a push.
#[test]
fn prometheus_sees_pushed_metrics_under_the_pushed_job() {
    let gateway = Server::cronpush(&["--web.external-url=http://localhost:8080/pushgateway/", "--web.route-prefix=/"]);
    curl_push(&gateway, "/metrics/job/some_job", "some_metric 3.14\n");
    let prometheus = Prometheus::start(&gateway, &[]);

    let pushed = labels(&[("__name__", "some_metric"), ("job", "some_job")]);
    prometheus.wait_for("some_metric", "3.14 under job some_job", |r| r == [(pushed.clone(), "3.14".to_string())]);

    // The article's later pushes: the latest value replaces the earlier one.
    curl_push(&gateway, "/metrics/job/some_job", "some_metric 1.41\n");
    curl_push(&gateway, "/metrics/job/some_job", "some_metric 2.71\n");
    prometheus.wait_for("some_metric", "2.71 under job some_job", |r| r == [(pushed.clone(), "2.71".to_string())]);

    let push_time = labels(&[("__name__", "push_time_seconds"), ("job", "some_job")]);
    let result = prometheus
        .wait_for(r#"push_time_seconds{job="some_job"}"#, "the push time", |r| r.len() == 1 && r[0].0 == push_time);
    let pushed_at: f64 = result[0].1.parse().expect("push_time_seconds is a number");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs_f64();
    assert!((now - pushed_at).abs() < 120.0, "push_time_seconds {pushed_at} is not the push's time (now {now})");

    let up = labels(&[("__name__", "up"), ("job", SCRAPE_JOB), ("instance", &format!("127.0.0.1:{}", gateway.port))]);
    prometheus
        .wait_for(&format!(r#"up{{job="{SCRAPE_JOB}"}}"#), "the gateway up", |r| r == [(up.clone(), "1".to_string())]);

    // The article's CronJobNotScheduled expression: quiet, while its negation holds, so the
    // quiet is the push time's doing and not a missing series.
    assert_eq!(prometheus.query(r#"time() - push_time_seconds{job="some_job"} > 120"#), [], "the alert would fire");
    assert_eq!(prometheus.query(r#"time() - push_time_seconds{job="some_job"} <= 120"#).len(), 1);
}

/// Prometheus 2.42 asks for the protobuf exposition only with `--enable-feature=native-histograms`.
/// Scraping cronpush that way works: a classic histogram pushed as text has its buckets
/// queryable, and a native histogram pushed by client_golang (protobuf) reaches PromQL's
/// histogram functions, which only a protobuf scrape can carry. A second, default Prometheus
/// scraping the same gateway as text shows the difference: `le="1"` instead of protobuf's
/// `le="1.0"`, and no native histogram.
#[test]
fn prometheus_scrapes_protobuf_when_it_asks_for_native_histograms() {
    let gateway = Server::cronpush(&[]);
    let body = "# TYPE some_hist histogram\nsome_hist_bucket{le=\"0.5\"} 1\nsome_hist_bucket{le=\"1\"} 2\n\
                some_hist_bucket{le=\"+Inf\"} 3\nsome_hist_sum 2.5\nsome_hist_count 3\n";
    let reply = gateway.put("/metrics/job/hist_job", body);
    assert_eq!(reply.status, 200, "pushing some_hist failed: {}", reply.body);
    let ran = clients::run(
        Command::new(&clients::go_programs().pusher).args([
            format!("-url={}", gateway.base).as_str(),
            "-job=native_job",
            "-native=some_native=0.5,1,2,3",
        ]),
        Duration::from_secs(60),
    );
    assert!(ran.status.success(), "pushing the native histogram failed: {ran:?}");

    let protobuf = Prometheus::start(&gateway, &["native-histograms"]);
    let text = Prometheus::start(&gateway, &[]);

    // Prometheus' protobuf parser renders bucket bounds as floats (`1.0`); its text parser keeps
    // the exposition's `1`.
    let bucket = |le: &str| labels(&[("__name__", "some_hist_bucket"), ("job", "hist_job"), ("le", le)]);
    protobuf.wait_for(r#"some_hist_bucket{le="1.0"}"#, "the 1.0 bucket from a protobuf scrape", |r| {
        r == [(bucket("1.0"), "2".to_string())]
    });
    let mut buckets = protobuf.query("some_hist_bucket");
    buckets.sort();
    assert_eq!(
        buckets,
        [(bucket("+Inf"), "3".to_string()), (bucket("0.5"), "1".to_string()), (bucket("1.0"), "2".to_string())]
    );
    protobuf.wait_for(r#"some_hist_count{job="hist_job"}"#, "the count", |r| r.len() == 1 && r[0].1 == "3");
    protobuf.wait_for(r#"some_hist_sum{job="hist_job"}"#, "the sum", |r| r.len() == 1 && r[0].1 == "2.5");

    let native = labels(&[("job", "native_job")]);
    protobuf.wait_for("histogram_count(some_native)", "the native histogram's count", |r| {
        r == [(native.clone(), "4".to_string())]
    });
    protobuf.wait_for("histogram_sum(some_native)", "the native histogram's sum", |r| {
        r == [(native.clone(), "6.5".to_string())]
    });

    text.wait_for(r#"some_hist_bucket{le="1"}"#, "the 1 bucket from a text scrape", |r| {
        r == [(bucket("1"), "2".to_string())]
    });
    // As text, the native histogram is only its +Inf bucket, sum and count.
    text.wait_for(r#"some_native_count{job="native_job"}"#, "the native histogram's count as text", |r| {
        r.len() == 1 && r[0].1 == "4"
    });
    assert_eq!(text.query("histogram_count(some_native)"), [], "a text scrape cannot carry a native histogram");
}
