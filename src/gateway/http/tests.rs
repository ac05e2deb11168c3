//! The push API's answers in process: the route table, the handlers and the store, driven
//! through the router with `tower::ServiceExt::oneshot`, without a socket or a binary, so that a
//! maintainer has an answer in seconds. The statuses and messages expected here are those the
//! reference, Debian's Pushgateway 1.5.1, gave to the same requests; tests/differential.rs stays
//! the proof, comparing both binaries request by request.

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
