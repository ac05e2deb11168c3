//! Hostile and malformed input against the real binary: every request gets a 4xx with a clear
//! message, never a 5xx or a crash, and the store is left exactly as it was, timestamps included.

use std::io::Write;

use support::Server;

const PROTOBUF: &str = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

/// Method, path, headers, body.
type Request = (&'static str, String, Vec<(&'static str, &'static str)>, Vec<u8>);

/// A small deterministic generator, so that a failure can be replayed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn bytes(&mut self, len: usize, alphabet: &[u8]) -> Vec<u8> {
        (0..len).map(|_| alphabet[self.next() as usize % alphabet.len()]).collect()
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn hostile_requests_are_refused_and_change_nothing() {
    let server = Server::cronpush(&[]);
    assert_eq!(server.put("/metrics/job/baseline/instance/i", "# TYPE kept gauge\nkept{a=\"1\"} 1\n").status, 200);
    let before = server.exact_pushed_lines();

    let mut hostile: Vec<Request> = vec![
        ("PUT", "/metrics/job/baseline/instance/i".into(), vec![], b"kept 1".to_vec()),
        ("PUT", "/metrics/job/baseline/instance/i".into(), vec![], b"\0\0\0\n".to_vec()),
        ("PUT", "/metrics/job/baseline/instance/i".into(), vec![], b"kept{a=\"\xc3\x28\"} 1\n".to_vec()),
        (
            "PUT",
            "/metrics/job/baseline/instance/i".into(),
            vec![],
            format!("kept{{{}}} 1\n", "a=\"1\",".repeat(10_000)).into_bytes(),
        ),
        (
            "PUT",
            "/metrics/job/baseline/instance/i".into(),
            vec![],
            format!("{} 1\n", "x".repeat(100_000)).into_bytes().into_iter().chain(b"{".iter().copied()).collect(),
        ),
        (
            "POST",
            "/metrics/job/baseline/instance/i".into(),
            vec![("Content-Type", PROTOBUF)],
            vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
        ),
        (
            "POST",
            "/metrics/job/baseline/instance/i".into(),
            vec![("Content-Type", PROTOBUF)],
            vec![0x05, 0x0a, 0x03, b'a'],
        ),
        (
            "POST",
            "/metrics/job/baseline/instance/i".into(),
            vec![("Content-Encoding", "gzip")],
            b"\x1f\x8b\x08\0\0\0\0\0\0\xffgarbage".to_vec(),
        ),
        ("PUT", "/metrics/job/baseline/instance/%ff".into(), vec![], b"kept 2\n".to_vec()),
        ("PUT", "/metrics/job/baseline/instance/%zz".into(), vec![], b"kept 2\n".to_vec()),
        ("PUT", "/metrics/job/baseline/instance@base64/%2B%2B".into(), vec![], b"kept 2\n".to_vec()),
        ("PUT", format!("/metrics/job/baseline/{}", "a/".repeat(5_000)), vec![], b"kept 2\n".to_vec()),
        ("DELETE", "/metrics/job/baseline/instance".into(), vec![], vec![]),
        ("DELETE", "/metrics/job@base64/!!!".into(), vec![], vec![]),
    ];
    // A gzip bomb: a small body that inflates past the limit is refused, not inflated.
    let bomb = gzip(&vec![b'#'; 80 << 20]);
    assert!(bomb.len() < 1 << 20);
    hostile.push(("PUT", "/metrics/job/baseline/instance/i".into(), vec![("Content-Encoding", "gzip")], bomb));
    // Random bytes, and random text made of the format's own punctuation.
    let mut rng = Lcg(0x5eed);
    for i in 0..150 {
        let alphabet: &[u8] =
            if i % 2 == 0 { b"a{}=\",# \t\n\\1.eE+-_:TYPEHLP" } else { &[0, 1, 0xff, b'\n', b'{', 0x8b, 0x1f, b'"'] };
        let len = 1 + rng.next() as usize % 300;
        let mut body = rng.bytes(len, alphabet);
        // Keep only the bodies that are not valid pushes: those must change nothing.
        if cronpush::exposition::text_parse::parse(&body).is_ok() {
            body.push(b'{');
        }
        hostile.push(("PUT", "/metrics/job/baseline/instance/i".into(), vec![], body));
    }

    for (method, path, headers, body) in hostile {
        let reply = server.request(method, &path, &headers, body);
        assert!((400..500).contains(&reply.status), "{method} {path}: answered {} {:?}", reply.status, reply.body);
        assert!(!reply.body.trim().is_empty(), "{method} {path}: a refusal must say why");
        assert!(!reply.body.contains("panicked"), "{method} {path}: {}", reply.body);
    }
    assert_eq!(server.exact_pushed_lines(), before, "a refused request changed the store");
    assert_eq!(server.get("/-/healthy").status, 200);
}

#[test]
fn an_oversized_body_gets_413() {
    let server = Server::cronpush(&[]);
    let body = vec![b'#'; (64 << 20) + 1];
    let reply = server.request("PUT", "/metrics/job/big", &[], body);
    assert_eq!(reply.status, 413, "{}", reply.body);
    assert!(reply.body.contains("larger than"), "{}", reply.body);
    assert!(server.get("/api/v1/metrics").body.contains("\"data\":[]"));
}

#[test]
fn refusals_are_counted_like_the_reference() {
    // Users alert on pushgateway_http_requests_total{code="400",handler="push"} (the
    // reference's README recommends it), so refusals must show there.
    let server = Server::cronpush(&[]);
    server.put("/metrics/job/j", "broken");
    server.put("/metrics/job/j", "ok 1\n");
    let scrape = server.get("/metrics").body;
    assert!(
        scrape.contains("pushgateway_http_requests_total{code=\"400\",handler=\"push\",method=\"put\"} 1\n"),
        "{scrape}"
    );
    assert!(
        scrape.contains("pushgateway_http_requests_total{code=\"200\",handler=\"push\",method=\"put\"} 1\n"),
        "{scrape}"
    );
}
