//! The push API's answers in process: the route table, the handlers and the store, driven
//! through the router with `tower::ServiceExt::oneshot`, without a socket or a binary, so that a
//! maintainer has an answer in seconds. The statuses and messages expected here are those the
//! reference, Debian's Pushgateway 1.5.1, gave to the same requests; tests/differential.rs stays
//! the proof, comparing both binaries request by request. Snappy bodies, which 1.5.1 does not
//! read, follow the source of the latest release (1.11: main.go and golang/snappy's reader).

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tower::ServiceExt;

use super::app;
use crate::gateway::Gateway;
use crate::gateway::config::from_flags;
use crate::gateway::store::Store;
use crate::gateway::view::own_metrics::BUILTIN;

const CONSISTENCY: &str = "pushed metrics are invalid or inconsistent with existing metrics: ";

/// A gateway without a store file, as `cronpush gateway FLAGS` would serve it.
fn gateway(flags: &[&str]) -> Router {
    app(Arc::new(Gateway::new(from_flags(flags), Store::new(BUILTIN))))
}

async fn send(gateway: &Router, method: &str, path: &str, body: &str) -> (StatusCode, String) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from(body.to_string()))
        .unwrap();
    let answer = gateway.clone().oneshot(request).await.unwrap();
    let status = answer.status();
    let body = axum::body::to_bytes(answer.into_body(), usize::MAX).await.unwrap();
    (status, String::from_utf8_lossy(&body).trim_end().to_string())
}

async fn scrape(gateway: &Router) -> String {
    let (status, text) = send(gateway, "GET", "/metrics", "").await;
    assert_eq!(status, StatusCode::OK);
    text
}

#[tokio::test]
async fn a_push_is_kept_scraped_and_deleted() {
    let gateway = gateway(&[]);
    assert_eq!(send(&gateway, "PUT", "/metrics/job/nightly/instance/pi", "backup_ok 1\n").await.0, StatusCode::OK);
    assert!(scrape(&gateway).await.contains("backup_ok{instance=\"pi\",job=\"nightly\"} 1"));
    assert_eq!(send(&gateway, "DELETE", "/metrics/job/nightly/instance/pi", "").await.0, StatusCode::ACCEPTED);
    assert!(!scrape(&gateway).await.contains("backup_ok"));
}

#[tokio::test]
async fn a_grouping_key_that_names_no_group_is_refused() {
    let gateway = gateway(&[]);
    let cases = [
        ("/metrics/job@base64/===", StatusCode::BAD_REQUEST, "job name is required"),
        ("/metrics/job/a/__name__/1", StatusCode::BAD_REQUEST, "improper label name \"__name__\""),
        ("/metrics/job/a/b", StatusCode::BAD_REQUEST, "odd number of components in label string \"/b\""),
    ];
    for (path, status, message) in cases {
        assert_eq!(send(&gateway, "PUT", path, "x 1\n").await, (status, message.to_string()), "{path}");
    }
    // An empty job segment names no group: the reference redirects (307) where cronpush says
    // not found (404); both keep nothing (tests/differential.rs, an_empty_job_segment...).
    let (status, _) = send(&gateway, "PUT", "/metrics/job/", "x 1\n").await;
    assert!(status.is_redirection() || status.is_client_error(), "{status}");
    assert!(!scrape(&gateway).await.contains("x{"));
}

#[tokio::test]
async fn an_invalid_push_says_why_and_changes_nothing() {
    let gateway = gateway(&[]);
    assert_eq!(send(&gateway, "PUT", "/metrics/job/a", "x 1\n").await.0, StatusCode::OK);
    let cases = [
        ("x{a=\"1\"} 1 1234\n", format!("{CONSISTENCY}pushed metrics must not have timestamps")),
        ("bad line here\n", "text format parsing error in line 1: expected float as value, got \"line\"".to_string()),
        (
            "x 1\nx 2\n",
            format!(
                "{CONSISTENCY}collected metric \"x\" {{ label:<name:\"instance\" value:\"\" > label:<name:\"job\" value:\"a\" > untyped:<value:2 > }} was collected before with the same name and label values"
            ),
        ),
    ];
    for (body, message) in cases {
        assert_eq!(send(&gateway, "PUT", "/metrics/job/a", body).await, (StatusCode::BAD_REQUEST, message), "{body}");
    }
    let (status, message) = send(&gateway, "POST", "/metrics/job/b", "# TYPE x gauge\nx 3\n").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        message,
        format!(
            "{CONSISTENCY}collected metric \"x\" {{ label:<name:\"instance\" value:\"\" > label:<name:\"job\" value:\"b\" > gauge:<value:3 > }} is not a UNTYPED"
        )
    );
    let scraped = scrape(&gateway).await;
    assert!(scraped.lines().any(|line| line == "x{instance=\"\",job=\"a\"} 1"), "{scraped}");
    assert!(!scraped.contains("job=\"b\"} 3"), "{scraped}");
}

#[tokio::test]
async fn methods_and_routes_that_are_not_there() {
    let gateway = gateway(&[]);
    assert_eq!(
        send(&gateway, "PATCH", "/metrics/job/a", "").await,
        (StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed".into())
    );
    assert_eq!(
        send(&gateway, "GET", "/metrics/job/a", "").await,
        (StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed".into())
    );
    assert_eq!(
        send(&gateway, "PUT", "/api/v1/admin/wipe", "").await,
        (StatusCode::NOT_FOUND, "404 page not found".into())
    );
    assert_eq!(
        send(&gateway, "PUT", "/-/quit", "").await,
        (StatusCode::FORBIDDEN, "Lifecycle API is not enabled.".into())
    );
}

/// The run history of issue 17, as a client reads it: `cronpush start` and `cronpush sidecar`
/// push (POST) into the CronJob's group, and the JSON API lists its runs, newest first; the
/// push API's answers are those of any push, and the history goes with its group.
#[tokio::test]
async fn a_cronjobs_runs_are_listed_newest_first_and_deleted_with_its_group() {
    let gateway = gateway(&[]);
    let group = |cluster: &str| format!("/metrics/job/cronpush{cluster}/namespace/batch/cronjob/backup");
    let start = |slot: u64| {
        format!("cronjob_last_start_timestamp_seconds {}\ncronjob_last_scheduled_timestamp_seconds {slot}\n", slot + 2)
    };
    let end = |slot: u64, result: &str, code: i32| {
        format!(
            "cronjob_last_completion_timestamp_seconds {}\ncronjob_last_result{{result=\"{result}\"}} 1\n\
             cronjob_last_exit_code{{container=\"main\"}} {code}\ncronjob_last_duration_seconds 10\n\
             cronjob_last_ended_scheduled_timestamp_seconds {slot}\n",
            slot + 12
        )
    };
    for body in [start(1_800_000_000), end(1_800_000_000, "failure", 3), start(1_800_000_300)] {
        assert_eq!(send(&gateway, "POST", &group(""), &body).await, (StatusCode::OK, String::new()));
    }
    let other = group("/cluster/eu");
    assert_eq!(send(&gateway, "POST", &other, &start(1_800_000_000)).await.0, StatusCode::OK);

    let runs = |query: &'static str| {
        let gateway = gateway.clone();
        async move {
            let (status, body) = send(&gateway, "GET", &format!("/api/v1/cronjobs/batch/backup/runs{query}"), "").await;
            assert_eq!(status, StatusCode::OK);
            serde_json::from_str::<serde_json::Value>(&body).unwrap()["data"]["cronjobs"].clone()
        }
    };
    let both = runs("").await;
    assert_eq!(both.as_array().unwrap().len(), 2, "one per cluster: {both}");
    assert_eq!(runs("?cluster=eu").await.as_array().unwrap().len(), 1, "one cluster's");
    assert_eq!(runs("?cluster=").await.as_array().unwrap().len(), 0, "no group has an empty cluster label");
    let ours: Vec<serde_json::Value> =
        both.as_array().unwrap().iter().filter(|c| c["labels"].get("cluster").is_none()).cloned().collect();
    let listed = &ours[0]["runs"];
    assert_eq!(listed[0]["slot"], 1_800_000_300.0, "newest first: {listed}");
    assert_eq!(listed[0]["end"], serde_json::Value::Null, "still open");
    assert_eq!(listed[1]["end"]["result"], "failure");
    assert_eq!(listed[1]["end"]["containers"][0]["exit_code"], 3.0);
    assert_eq!(ours[0]["labels"]["cronjob"], "backup");

    assert_eq!(send(&gateway, "DELETE", &group(""), "").await.0, StatusCode::ACCEPTED);
    assert_eq!(runs("").await.as_array().unwrap().len(), 1, "the history went with its group");
    assert_eq!(send(&gateway, "GET", "/api/v1/cronjobs/batch/backup/runs/x", "").await.0, StatusCode::NOT_FOUND);
}

/// What `cronpush start` and `cronpush sidecar` push for one run of `namespace/cronjob` that
/// ended with `code`.
fn cronjob_run(slot: u64, code: i32) -> [String; 2] {
    let result = if code == 0 { "success" } else { "failure" };
    [
        format!(
            "cronjob_info{{schedule=\"*/5 * * * *\",timezone=\"UTC\",concurrency_policy=\"Forbid\"}} 1\n\
             cronjob_last_start_timestamp_seconds {}\ncronjob_last_scheduled_timestamp_seconds {slot}\n\
             cronjob_max_run_duration_seconds 600\n",
            slot + 2
        ),
        format!(
            "cronjob_last_completion_timestamp_seconds {}\ncronjob_last_result{{result=\"{result}\"}} 1\n\
             cronjob_last_exit_code{{container=\"main\"}} {code}\ncronjob_last_duration_seconds 10\n\
             cronjob_last_ended_scheduled_timestamp_seconds {slot}\n",
            slot + 12
        ),
    ]
}

async fn get_json(gateway: &Router, path: &str) -> serde_json::Value {
    let (status, body) = send(gateway, "GET", path, "").await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// Thirty CronJobs in two namespaces, every third failed, as filters and pages see them.
async fn thirty_cronjobs() -> Router {
    let gateway = gateway(&[]);
    for i in 0..30 {
        let namespace = if i % 2 == 0 { "team-a" } else { "team-b" };
        let path = format!("/metrics/job/cronpush/namespace/{namespace}/cronjob/report-{i:02}");
        for body in cronjob_run(1_800_000_000, if i % 3 == 0 { 3 } else { 0 }) {
            assert_eq!(send(&gateway, "POST", &path, &body).await.0, StatusCode::OK);
        }
    }
    gateway
}

#[tokio::test]
async fn the_board_api_takes_the_filters_and_pages_of_the_board() {
    let gateway = thirty_cronjobs().await;
    let names = |json: &serde_json::Value| -> Vec<String> {
        json["data"]["cronjobs"].as_array().unwrap().iter().map(|r| r["cronjob"].as_str().unwrap().into()).collect()
    };
    let all = get_json(&gateway, "/api/v1/cronjobs").await;
    assert_eq!(names(&all).len(), 30, "no filter, no page: everything, as before the filters");
    assert!(all["data"].get("total").is_none());

    let failed_a = get_json(&gateway, "/api/v1/cronjobs?namespace=team-a&status=failed").await;
    assert_eq!(names(&failed_a), ["report-00", "report-06", "report-12", "report-18", "report-24"]);
    let text = get_json(&gateway, "/api/v1/cronjobs?q=REPORT-1").await;
    assert_eq!(names(&text).len(), 10, "report-10 to report-19, in any case");
    let either = get_json(&gateway, "/api/v1/cronjobs?status=failed&status=ok&q=report-0").await;
    assert_eq!(names(&either).len(), 10);

    let page = get_json(&gateway, "/api/v1/cronjobs?per_page=7&page=2").await;
    assert_eq!((page["data"]["total"].as_u64(), page["data"]["pages"].as_u64()), (Some(30), Some(5)));
    assert_eq!(names(&page).len(), 7);
    // Problems first, then by namespace and name: the ten failed (five in each namespace) first.
    assert_eq!(names(&page)[0], "report-15", "{page}");

    let (status, body) = send(&gateway, "GET", "/api/v1/cronjobs?status=broken", "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["status"], "error");
    assert!(error["error"].as_str().unwrap().starts_with("unknown status \"broken\""), "{error}");
    let (status, body) = send(&gateway, "GET", "/api/v1/cronjobs?page=0", "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn the_board_page_shows_one_page_of_what_the_filters_leave() {
    let gateway = thirty_cronjobs().await;
    let (status, page) = send(&gateway, "GET", "/cronjobs?namespace=team-b&per_page=4&page=2", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page.matches("<tr class=\"row-").count(), 4, "one page of rows");
    assert!(page.contains("5–8 of 15"), "where the page is in the selection");
    // The pages and the counts link with the filters kept.
    assert!(page.contains("href=\"/cronjobs?namespace=team-b&#38;per_page=4&#38;page=3\""), "next: {page}");
    assert!(page.contains("href=\"/cronjobs?namespace=team-b&#38;per_page=4\""), "previous, the first page");
    assert!(page.contains("href=\"/cronjobs?namespace=team-b&#38;status=failed&#38;per_page=4\">5 failed</a>"));
    assert!(page.contains("<input name=\"namespace\" value=\"team-b\""), "the form shows the selection");
    let (status, body) = send(&gateway, "GET", "/cronjobs?status=broken", "").await;
    assert_eq!((status, body.starts_with("unknown status \"broken\"")), (StatusCode::BAD_REQUEST, true));
    let (_, nothing) = send(&gateway, "GET", "/cronjobs?q=no-such-cronjob", "").await;
    assert!(nothing.contains("nothing matches") && nothing.contains(">show all</a>"), "{nothing}");
}

#[tokio::test]
async fn the_groups_page_and_its_api_take_the_filters() {
    let gateway = thirty_cronjobs().await;
    assert_eq!(send(&gateway, "PUT", "/metrics/job/plain/instance/pi", "backup_ok 1\n").await.0, StatusCode::OK);
    let groups = |json: serde_json::Value| json["data"].as_array().unwrap().len();
    assert_eq!(groups(get_json(&gateway, "/api/v1/metrics").await), 31, "no filter: every group");
    assert_eq!(groups(get_json(&gateway, "/api/v1/metrics?namespace=team-a").await), 15);
    assert_eq!(groups(get_json(&gateway, "/api/v1/metrics?q=pi").await), 1, "any grouping-key value");
    assert_eq!(groups(get_json(&gateway, "/api/v1/metrics?status=failing").await), 0);

    let (status, page) = send(&gateway, "GET", "/?per_page=10&page=4", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page.matches("<details class=\"group").count(), 1, "31 groups, 10 a page: the fourth has one");
    assert!(page.contains("31–31 of 31"), "{page}");
    let (status, _) = send(&gateway, "GET", "/?status=late", "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a group is failing or ok");
}

/// A CronJob's page after real pushes: its runs newest first, the chart with the maximum run
/// time, and the links to the board and its group; a CronJob nobody pushed for is a 404.
#[tokio::test]
async fn a_cronjobs_page_shows_its_runs_and_their_durations() {
    let gateway = gateway(&[]);
    let path = "/metrics/job/cronpush/namespace/batch/cronjob/backup";
    for (i, code) in [0, 3, 0].into_iter().enumerate() {
        for body in cronjob_run(1_800_000_000 + 300 * i as u64, code) {
            assert_eq!(send(&gateway, "POST", path, &body).await.0, StatusCode::OK);
        }
    }
    let (status, page) = send(&gateway, "GET", "/cronjobs/batch/backup", "").await;
    assert_eq!(status, StatusCode::OK);
    let rows: Vec<&str> = page.match_indices("<tr id=\"run-").map(|(i, _)| &page[i + 12..i + 22]).collect();
    assert_eq!(rows, ["1800000600", "1800000300", "1800000000"], "newest first");
    assert_eq!(page.matches("<rect class=\"bar run-success\"").count(), 2);
    assert_eq!(page.matches("<rect class=\"bar run-failure\"").count(), 1);
    assert!(page.contains("maximum run time 10m"), "the limit is drawn");
    assert!(page.contains("<code>*/5 * * * *</code>"));
    assert!(page.contains("href=\"/cronjobs?namespace=batch\""), "to the namespace's board");
    assert!(page.contains("href=\"/?group="), "to its group");
    assert!(page.contains("href=\"/api/v1/cronjobs/batch/backup/runs\""));

    let (_, board) = send(&gateway, "GET", "/cronjobs", "").await;
    assert!(board.contains("<a class=\"strip\" href=\"/cronjobs/batch/backup\"><i class=\"run-success\""), "{board}");
    assert_eq!(board.matches("<i class=\"run-").count(), 3, "a mark per run");

    let (status, body) = send(&gateway, "GET", "/cronjobs/batch/restore", "").await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::NOT_FOUND, "no CronJob batch/restore has reported to this gateway")
    );
    assert_eq!(send(&gateway, "GET", "/cronjobs/batch/backup?cluster=eu", "").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_groups_page_shows_the_failing_groups_first() {
    let gateway = gateway(&[]);
    for job in ["a-first", "b-refused", "c-last"] {
        assert_eq!(send(&gateway, "PUT", &format!("/metrics/job/{job}"), "backup_ok 1\n").await.0, StatusCode::OK);
    }
    // A counter where the gateway holds a gauge of the name: refused, and the group marked.
    let clash = "# TYPE backup_ok counter\nbackup_ok 1\n";
    assert_eq!(send(&gateway, "POST", "/metrics/job/b-refused", clash).await.0, StatusCode::BAD_REQUEST);
    let (_, page) = send(&gateway, "GET", "/", "").await;
    let order: Vec<usize> =
        ["b-refused", "a-first", "c-last"].iter().map(|job| page.find(&format!("\"{job}\"")).unwrap()).collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "the refused group first, then by job: {order:?}");
}

/// Log lines delivered for a failed run of `batch/backup` (slot 1800000000, attempt 1): kept
/// with its end and shown in its runs; a delivery that is not what a sidecar sends, or that
/// names no run, is refused with the reason and changes nothing.
#[tokio::test]
async fn log_lines_are_kept_with_their_run_and_bad_deliveries_change_nothing() {
    let gateway = gateway(&[]);
    let group = "/metrics/job/cronpush/namespace/batch/cronjob/backup";
    let logs = "/api/v1/runs/logs/job/cronpush/namespace/batch/cronjob/backup";
    let runs = "/api/v1/cronjobs/batch/backup/runs";
    let line = r#"{"container":"main","text":"<script>alert(1)</script>\n","truncated":true}"#;
    let delivery = format!(r#"{{"slot":1800000000,"attempt":1,"logs":[{line}]}}"#);

    let (status, text) = send(&gateway, "PUT", logs, &delivery).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{text}");
    assert!(text.starts_with("log lines not kept: no group"), "{text}");
    let start =
        "cronjob_last_start_timestamp_seconds 1800000002\ncronjob_last_scheduled_timestamp_seconds 1800000000\n";
    assert_eq!(send(&gateway, "POST", group, start).await.0, StatusCode::OK);
    let (status, text) = send(&gateway, "PUT", logs, &delivery).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{text}");
    assert!(text.ends_with("has no ended run to keep log lines with"), "{text}");
    let end = "cronjob_last_completion_timestamp_seconds 1800000012\ncronjob_last_result{result=\"failure\"} 1\n\
               cronjob_last_exit_code{container=\"main\"} 3\ncronjob_last_attempt 1\n\
               cronjob_last_ended_scheduled_timestamp_seconds 1800000000\n";
    assert_eq!(send(&gateway, "POST", group, end).await.0, StatusCode::OK);
    let (_, before) = send(&gateway, "GET", runs, "").await;
    assert!(!before.contains("\"logs\""), "no lines, no field: {before}");

    let too_long = format!(r#"{{"logs":[{{"container":"main","text":"{}"}}]}}"#, "x".repeat(16 * 1024 + 1));
    let bad = [
        ("not json", "log lines refused: the body is not the JSON of log lines"),
        (r#"{"logs":[]}"#, "log lines refused: \"logs\" names no container"),
        (too_long.as_str(), "log lines refused: the text of container \"main\" is 16385 bytes"),
        (r#"{"attempt":0,"logs":[{"container":"main","text":""}]}"#, "log lines refused: \"attempt\" counts from 1"),
    ];
    for (body, reason) in bad {
        let (status, text) = send(&gateway, "PUT", logs, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
        assert!(text.starts_with(reason), "{text}");
    }
    let (status, _) = send(&gateway, "PUT", "/api/v1/runs/logs/job/cronpush/__bad/x", &delivery).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a grouping key that names no group");
    assert_eq!(send(&gateway, "GET", runs, "").await.1, before, "a refused delivery changes nothing");
    assert_eq!(send(&gateway, "POST", logs, &delivery).await.0, StatusCode::METHOD_NOT_ALLOWED);

    assert_eq!(send(&gateway, "PUT", logs, &delivery).await.0, StatusCode::OK);
    let (_, after) = send(&gateway, "GET", runs, "").await;
    let json: serde_json::Value = serde_json::from_str(&after).unwrap();
    let kept = &json["data"]["cronjobs"][0]["runs"][0]["end"]["logs"];
    assert_eq!(
        kept,
        &serde_json::json!([{"container": "main", "text": "<script>alert(1)</script>\n", "truncated": true}])
    );
    let scraped = scrape(&gateway).await;
    assert!(!scraped.contains("alert(1)"), "log lines are never series");
}

/// Sends `body` as it is, with the given headers.
async fn send_bytes(gateway: &Router, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> (StatusCode, String) {
    let mut request = Request::builder().method("PUT").uri(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let answer = gateway.clone().oneshot(request.body(Body::from(body)).unwrap()).await.unwrap();
    let status = answer.status();
    let body = axum::body::to_bytes(answer.into_body(), usize::MAX).await.unwrap();
    (status, String::from_utf8_lossy(&body).trim_end().to_string())
}

/// `data` in snappy's framed format, as golang/snappy's `NewBufferedWriter` writes it.
fn snappy_framed(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = snap::write::FrameEncoder::new(Vec::new());
    encoder.write_all(data).unwrap();
    encoder.into_inner().unwrap()
}

const SNAPPY: (&str, &str) = ("Content-Encoding", "snappy");

/// Since 1.6 the reference reads `Content-Encoding: snappy` bodies (main.go, `decodeRequest`,
/// golang/snappy's framed reader), text and protobuf alike, and an empty body is an empty push.
#[tokio::test]
async fn a_snappy_push_in_the_framed_format_is_read_as_upstream_reads_it() {
    let gateway = gateway(&[]);
    let text = "# TYPE backup_ok gauge\nbackup_ok 1\n";
    for encoding in ["snappy", "Snappy", " SNAPPY "] {
        let (status, message) = send_bytes(
            &gateway,
            "/metrics/job/text",
            &[("Content-Encoding", encoding)],
            snappy_framed(text.as_bytes()),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{encoding:?}: {message}");
    }
    assert!(scrape(&gateway).await.contains("backup_ok{instance=\"\",job=\"text\"} 1"));

    let mut protobuf = Vec::new();
    for family in crate::exposition::text_parse::parse(b"# TYPE restore_ok gauge\nrestore_ok 2\n").unwrap() {
        crate::exposition::protobuf::encode_delimited(&family, &mut protobuf);
    }
    let protobuf_type = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";
    let headers = [SNAPPY, ("Content-Type", protobuf_type)];
    assert_eq!(send_bytes(&gateway, "/metrics/job/proto", &headers, snappy_framed(&protobuf)).await.0, StatusCode::OK);
    assert!(scrape(&gateway).await.contains("restore_ok{instance=\"\",job=\"proto\"} 2"));

    // A skippable chunk (0x80 to 0xfd) is skipped, as the framing format says.
    let mut with_skippable = snappy_framed(b"padded 1\n");
    with_skippable.extend_from_slice(&[0x80, 3, 0, 0, 1, 2, 3]);
    assert_eq!(send_bytes(&gateway, "/metrics/job/skip", &[SNAPPY], with_skippable).await.0, StatusCode::OK);
    assert!(scrape(&gateway).await.contains("padded{instance=\"\",job=\"skip\"} 1"));

    assert_eq!(send_bytes(&gateway, "/metrics/job/empty", &[SNAPPY], Vec::new()).await.0, StatusCode::OK);
}

/// A body that golang/snappy's reader cannot read gets 400 and its error's words, and changes
/// nothing: the block format (snappy without framing), plain text, a bad checksum, a cut
/// chunk; a reserved chunk type that may not be skipped is "unsupported" there.
#[tokio::test]
async fn a_damaged_snappy_push_is_refused_with_upstreams_status_and_words() {
    let gateway = gateway(&[]);
    let text = b"damaged 1\n";
    let block = snap::raw::Encoder::new().compress_vec(text).unwrap();
    let framed = snappy_framed(text);
    let mut bad_checksum = framed.clone();
    // The stream identifier is 10 bytes; then the chunk's type, 3 bytes of length, 4 of CRC.
    bad_checksum[14] ^= 0xff;
    let cut = framed[..framed.len() - 2].to_vec();
    let mut reserved = framed[..10].to_vec();
    reserved.extend_from_slice(&[0x02, 1, 0, 0, 0]);
    let cases = [
        ("the block format", block, "snappy: corrupt input"),
        ("plain text", text.to_vec(), "snappy: corrupt input"),
        ("a bad checksum", bad_checksum, "snappy: corrupt input"),
        ("a cut chunk", cut, "snappy: corrupt input"),
        ("a reserved chunk type", reserved, "snappy: unsupported input"),
    ];
    for (what, body, words) in cases {
        assert_eq!(
            send_bytes(&gateway, "/metrics/job/j", &[SNAPPY], body).await,
            (StatusCode::BAD_REQUEST, words.to_string()),
            "{what}"
        );
    }
    assert!(!scrape(&gateway).await.contains("damaged"));
}

/// --push.max-body-bytes holds for the decoded body too, as it does for gzip: a small snappy
/// body that grows past the limit gets 413 and is not kept.
#[tokio::test]
async fn the_body_limit_holds_for_the_decoded_snappy_body() {
    let gateway = gateway(&["--push.max-body-bytes=1000"]);
    // Limits are checked before the body is parsed, so the same line over and over will do.
    let big = "grown 1\n".repeat(500);
    let compressed = snappy_framed(big.as_bytes());
    assert!(compressed.len() < 1000 && big.len() > 1000, "{} bytes from {}", compressed.len(), big.len());
    let (status, message) = send_bytes(&gateway, "/metrics/job/big", &[SNAPPY], compressed).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{message}");
    assert_eq!(message, "request body is larger than 1000 bytes, the limit set by --push.max-body-bytes");
    let small = snappy_framed(b"fits 1\n");
    assert_eq!(send_bytes(&gateway, "/metrics/job/small", &[SNAPPY], small).await.0, StatusCode::OK);
    assert!(!scrape(&gateway).await.contains("grown"));
}

/// `--push.enable-utf8-names` lets a push use any name, as upstream 1.11 does; without it the
/// same pushes are refused and a `U__` label name in the path is an ordinary legacy name.
#[tokio::test]
async fn utf8_names_only_with_the_flag() {
    let legacy = gateway(&[]);
    let utf8 = gateway(&["--push.enable-utf8-names"]);
    for body in ["{\"http.server.requests\"} 1\n", "x{\"http.method\"=\"get\"} 1\n"] {
        let (status, message) = send(&legacy, "PUT", "/metrics/job/utf8", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {message}");
        let (status, message) = send(&utf8, "PUT", "/metrics/job/utf8", body).await;
        assert_eq!(status, StatusCode::OK, "{body}: {message}");
    }
    for (gateway, label) in [(&legacy, "U__http_2e_method"), (&utf8, "http_method")] {
        let (status, message) = send(gateway, "PUT", "/metrics/job/path/U__http_2e_method/get", "x 1\n").await;
        assert_eq!(status, StatusCode::OK, "{message}");
        assert!(scrape(gateway).await.contains(&format!("{label}=\"get\"")), "{label}");
    }
}
