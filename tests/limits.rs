//! The push limits against the real binary: each one at its value and one over, the answer's
//! status and message, and a store left exactly as it was by every refusal. And what users
//! pushed comes back escaped, as text in the HTML UI and as proper strings from the JSON API.

use std::io::Write;

use base64::Engine;
use serde_json::Value;
use support::{Reply, Server};

/// Everything a refusal must leave as it was: the scrape, timestamps included, and the JSON API.
fn state(server: &Server) -> (Vec<String>, String) {
    (server.exact_pushed_lines(), server.get("/api/v1/metrics").body)
}

fn assert_refused(reply: &Reply, status: u16, flag: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert!(reply.body.contains(flag), "the message names {flag}: {}", reply.body);
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A valid push of exactly `len` bytes: one sample, then a comment filling the rest.
fn body_of(len: usize) -> Vec<u8> {
    let sample = "filler 1\n";
    let mut body = format!("{sample}#{}\n", "x".repeat(len - sample.len() - 2)).into_bytes();
    body.truncate(len);
    assert_eq!(body.len(), len);
    body
}

#[test]
fn body_size_is_limited_before_and_after_gzip() {
    let server = Server::cronpush(&["--push.max-body-bytes=200"]);
    assert_eq!(server.request("PUT", "/metrics/job/j", &[], body_of(200)).status, 200);
    let before = state(&server);

    let over = server.request("PUT", "/metrics/job/j", &[], body_of(201));
    assert_refused(&over, 413, "--push.max-body-bytes");
    assert!(over.body.contains("larger than 200 bytes"), "{}", over.body);
    let gzipped = gzip(&body_of(201));
    assert!(gzipped.len() < 200);
    let inflated = server.request("PUT", "/metrics/job/j", &[("Content-Encoding", "gzip")], gzipped);
    assert_refused(&inflated, 413, "--push.max-body-bytes");
    assert_eq!(state(&server), before, "a refused push changed the store");

    let at = server.request("PUT", "/metrics/job/j", &[("Content-Encoding", "gzip")], gzip(&body_of(200)));
    assert_eq!(at.status, 200, "{}", at.body);
}

#[test]
fn series_per_push_are_limited() {
    let server = Server::cronpush(&["--push.max-series=3"]);
    // The gateway's own timestamp families are not the push's series.
    let three = "a{x=\"1\"} 1\na{x=\"2\"} 1\nb 1\npush_time_seconds 5\n";
    assert_eq!(server.put("/metrics/job/j", three).status, 200);
    let before = state(&server);

    for method in ["PUT", "POST"] {
        for path in ["/metrics/job/j", "/metrics/job/new"] {
            let over = server.request(method, path, &[], "a{x=\"1\"} 1\na{x=\"2\"} 1\nb 1\nc 1\n");
            assert_refused(&over, 413, "--push.max-series");
            assert!(over.body.contains("4 series, more than 3"), "{}", over.body);
        }
    }
    assert_eq!(state(&server), before, "a refused push changed the store");
    assert_eq!(server.post("/metrics/job/k", "c 1\nd 1\ne 1\n").status, 200);
}

#[test]
fn label_values_are_limited_in_series_and_grouping_key() {
    let server = Server::cronpush(&["--push.max-label-value-length=8"]);
    assert_eq!(server.put("/metrics/job/j/instance/12345678", "a{x=\"12345678\"} 1\n").status, 200);
    let before = state(&server);

    let in_series = server.put("/metrics/job/j/instance/12345678", "a{x=\"123456789\"} 1\n");
    assert_refused(&in_series, 400, "--push.max-label-value-length");
    assert!(in_series.body.contains("label \"x\" in metric \"a\" is 9 bytes long, more than 8"), "{}", in_series.body);
    // Bytes, not characters: four two-byte letters fit, five do not.
    assert_eq!(server.put("/metrics/job/k", "b{x=\"éééé\"} 1\n").status, 200);
    let before_utf8 = state(&server);
    assert_refused(&server.put("/metrics/job/k", "b{x=\"ééééé\"} 1\n"), 400, "--push.max-label-value-length");
    assert_eq!(state(&server), before_utf8);

    let in_key = server.put("/metrics/job/j/instance/123456789", "");
    assert_refused(&in_key, 400, "--push.max-label-value-length");
    assert!(in_key.body.contains("label \"instance\" in the grouping key"), "{}", in_key.body);
    assert_refused(&server.put("/metrics/job/123456789", "a 1\n"), 400, "--push.max-label-value-length");
    server.delete("/metrics/job/k");
    assert_eq!(state(&server), before, "a refused push changed the store");
}

#[test]
fn groups_are_limited_and_a_delete_frees_a_slot() {
    let server = Server::cronpush(&["--push.max-groups=2"]);
    assert_eq!(server.put("/metrics/job/a", "m{g=\"a\"} 1\n").status, 200);
    assert_eq!(server.put("/metrics/job/b", "m{g=\"b\"} 1\n").status, 200);
    let before = state(&server);

    let over = server.put("/metrics/job/c", "m{g=\"c\"} 1\n");
    assert_refused(&over, 507, "--push.max-groups");
    assert!(over.body.contains("holds 2 groups"), "{}", over.body);
    assert_refused(&server.post("/metrics/job/c", ""), 507, "--push.max-groups");
    // Not even an inconsistent push's failure time is recorded for a group there is no room for.
    assert_refused(&server.put("/metrics/job/c", "m 1 1234\n"), 507, "--push.max-groups");
    assert_eq!(server.delete("/metrics/job/c").status, 202, "deleting a group that is not there is fine");
    assert_eq!(state(&server), before, "a refused push changed the store");

    // The groups that exist take pushes as before.
    assert_eq!(server.put("/metrics/job/a", "m{g=\"a\"} 2\n").status, 200);
    assert_eq!(server.post("/metrics/job/b", "n 1\n").status, 200);
    assert_eq!(server.delete("/metrics/job/a").status, 202);
    assert_eq!(server.put("/metrics/job/c", "m{g=\"c\"} 1\n").status, 200);
    assert_refused(&server.put("/metrics/job/d", "m{g=\"d\"} 1\n"), 507, "--push.max-groups");
    let groups: Value = serde_json::from_str(&server.get("/api/v1/metrics").body).unwrap();
    let jobs: Vec<&str> =
        groups["data"].as_array().unwrap().iter().map(|g| g["labels"]["job"].as_str().unwrap()).collect();
    assert_eq!(jobs.len(), 2);
    assert!(jobs.contains(&"b") && jobs.contains(&"c"), "{jobs:?}");
}

#[test]
fn limits_answer_even_when_the_consistency_check_is_deferred() {
    // The 202 of --push.disable-consistency-check promises a later check of consistency, not
    // that limits are waived: they are decided first and answered as such.
    let server = Server::cronpush(&["--push.disable-consistency-check", "--push.max-series=1", "--push.max-groups=1"]);
    assert_eq!(server.put("/metrics/job/a", "x 1\n").status, 202);
    let before = state(&server);
    assert_refused(&server.put("/metrics/job/a", "x 1\ny 1\n"), 413, "--push.max-series");
    assert_refused(&server.put("/metrics/job/b", "x 1\n"), 507, "--push.max-groups");
    assert_eq!(state(&server), before);
}

#[test]
fn by_default_only_the_body_is_limited() {
    let server = Server::cronpush(&[]);
    let many: String = (0..2_000).map(|i| format!("s{{i=\"{i}\",v=\"{}\"}} 1\n", "v".repeat(1_000))).collect();
    assert_eq!(server.put("/metrics/job/many", &many).status, 200);
    for i in 0..300 {
        assert_eq!(server.put(&format!("/metrics/job/g{i}"), "").status, 200);
    }
}

#[test]
fn what_users_pushed_is_escaped_in_html_and_json() {
    let server = Server::cronpush(&[]);
    let hostile = "<script>alert(\"x&y\")</script>'";
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hostile);
    let help = "<script>help(\"&\")</script>'";
    let body = format!("# HELP m {help}\n# TYPE m gauge\nm{{v=\"<b>&\\\"q\\\"</b>\"}} 1\n");
    let reply = server.put(&format!("/metrics/job/j/tag@base64/{encoded}"), &body);
    assert_eq!(reply.status, 200, "{}", reply.body);

    let page = server.get("/");
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    // The page's own script is the only one; what was pushed is escaped (askama writes
    // numeric character references).
    assert_eq!(page.body.matches("<script").count(), 1, "raw markup in the page:\n{}", page.body);
    assert!(!page.body.contains("<b>"), "raw markup in the page:\n{}", page.body);
    assert!(page.body.contains("&#60;script&#62;alert(&#34;x&#38;y&#34;)&#60;/script&#62;&#39;"), "{}", page.body);
    assert!(page.body.contains("&#60;script&#62;help(&#34;&#38;&#34;)&#60;/script&#62;&#39;"), "{}", page.body);

    let api = server.get("/api/v1/metrics");
    let json: Value = serde_json::from_str(&api.body).expect("the JSON API answers JSON");
    let group = &json["data"][0];
    assert_eq!(group["labels"]["tag"], hostile);
    assert_eq!(group["m"]["help"], help);
    assert_eq!(group["m"]["metrics"][0]["labels"]["v"], "<b>&\"q\"</b>");
    assert_eq!(group["m"]["metrics"][0]["labels"]["tag"], hostile);
}
