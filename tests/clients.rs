//! Real Prometheus client libraries push to the real cronpush binary: the Go program of the
//! article the project started from, client_golang's push package (Push, Add, Delete), and
//! Python's prometheus_client (push_to_gateway, pushadd_to_gateway, delete_from_gateway).
//! Where a step can be compared, the same client steps also run against the reference
//! Pushgateway and both must expose the same pushed series: that is what "drop-in" means to a
//! user who swaps one for the other.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::Server;
use support::clients::{Ran, go_programs, run};

/// A client run that takes longer than this is hung, not slow.
const CLIENT_LIMIT: Duration = Duration::from_secs(60);

/// The article's group: job `sample_job` plus `sample_label="sample_label_value"`.
const ARTICLE_SERIES: &str = r#"{instance="",job="sample_job",sample_label="sample_label_value"}"#;

/// The grouping key the Go pusher tests use: a value with '/', an empty value, and a value with a
/// space (which client_golang sends query-escaped as `+`, and the reference keeps as `+`).
const GO_GROUP: [&str; 6] = ["-group", "path=/var/tmp", "-group", "empty=", "-group", "sp=a b"];
const GO_LABELS: &str = r#"empty="",instance="",job="go_job",path="/var/tmp",sp="a+b""#;

/// The value of the sample line `series value` in a scrape, if there is exactly that series.
fn sample(scrape: &str, series: &str) -> Option<String> {
    scrape.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (s, v) = l.rsplit_once(' ')?;
        (s == series).then(|| v.to_string())
    })
}

fn scrape(server: &Server) -> String {
    let reply = server.get("/metrics");
    assert_eq!(reply.status, 200, "GET /metrics failed: {}", reply.body);
    reply.body
}

/// Asserts every `series value` pair is in the scrape, listing the pushed series if not.
fn assert_samples(server: &Server, expected: &[(String, &str)]) {
    let body = scrape(server);
    for (series, value) in expected {
        assert_eq!(
            sample(&body, series).as_deref(),
            Some(*value),
            "{series} in cronpush's scrape; pushed series:\n{}",
            support::pushed_series(&body).join("\n")
        );
    }
}

/// Pushed series with the values that differ from run to run (random values, `_created` times)
/// replaced by `T`, plus the HELP and TYPE lines of the pushed families, so that two gateways fed
/// by the same client steps compare equal. Sorted: the order of series is not compared.
fn comparable(server: &Server, volatile: &[&str]) -> Vec<String> {
    let body = scrape(server);
    let own = ["go_", "process_", "pushgateway_", "promhttp_"];
    let headers = body.lines().filter(|l| {
        let name = l.split(' ').nth(2).unwrap_or("");
        (l.starts_with("# HELP ") || l.starts_with("# TYPE ")) && !own.iter().any(|p| name.starts_with(p))
    });
    let samples = support::pushed_series(&body).into_iter().map(|line| {
        let (series, value) = line.rsplit_once(' ').expect("sample line");
        let name = series.split('{').next().unwrap_or(series);
        if name.ends_with("_created") || volatile.contains(&name) {
            format!("{series} T")
        } else {
            format!("{series} {value}")
        }
    });
    let mut lines: Vec<String> = headers.map(str::to_string).chain(samples).collect();
    lines.sort();
    lines
}

/// Asserts both gateways expose the same pushed series. Polls briefly, because the reference
/// only queues a DELETE before answering 202.
fn assert_same_series(cronpush: &Server, reference: &Server, volatile: &[&str], after: &str) {
    let mut last = (Vec::new(), Vec::new());
    let same = support::eventually(Duration::from_secs(10), || {
        last = (comparable(cronpush, volatile), comparable(reference, volatile));
        last.0 == last.1
    });
    assert!(
        same,
        "after {after}, cronpush and the reference differ:\ncronpush:\n{}\nreference:\n{}",
        last.0.join("\n"),
        last.1.join("\n")
    );
}

fn now_seconds() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs_f64()
}

fn assert_ok(ran: &Ran, what: &str) {
    assert!(ran.status.success(), "{what} failed ({}):\nstdout: {}\nstderr: {}", ran.status, ran.stdout, ran.stderr);
}

/// Runs the article's program as its CronJob does: `--endpoint=<host>:<port>`, no scheme.
fn run_article(server: &Server, extra: &[&str]) -> Ran {
    let ran = run(
        Command::new(&go_programs().article).arg(format!("--endpoint=127.0.0.1:{}", server.port)).args(extra),
        CLIENT_LIMIT,
    );
    assert_ok(&ran, "the article's Go program");
    ran
}

/// One client_golang call through tests/clients/pusher: `op` is push (PUT), add (POST) or delete.
fn go_pusher(server: &Server, op: &str, job: &str, args: &[&str]) -> Ran {
    run(
        Command::new(&go_programs().pusher)
            .arg(format!("-url={}", server.base))
            .arg(format!("-op={op}"))
            .arg(format!("-job={job}"))
            .args(args),
        CLIENT_LIMIT,
    )
}

/// The article's unmodified `main.go`, built with client_golang and run against cronpush the way
/// its CronJob runs it, succeeds, prints what the article shows, and leaves exactly the series
/// the article's alert rules query: `random_value` in [0,1) with the article's grouping labels and
/// `push_time_seconds` for the group. A second run (the next minute's job) replaces the value.
#[test]
fn article_program_pushes_random_value_with_its_grouping_label() {
    let server = Server::cronpush(&[]);
    let before = now_seconds();
    let ran = run_article(&server, &[]);
    let after = now_seconds();
    assert_eq!(
        ran.stdout.lines().collect::<Vec<_>>(),
        [format!("127.0.0.1:{}", server.port).as_str(), "sample_job", "Metrics pushed successfully."],
        "the article's program printed something else; stderr: {}",
        ran.stderr
    );

    let body = scrape(&server);
    assert!(
        body.contains("# HELP random_value Float64 random value generated by golang.\n# TYPE random_value gauge\n"),
        "random_value's HELP and TYPE:\n{body}"
    );
    let value: f64 = sample(&body, &format!("random_value{ARTICLE_SERIES}"))
        .unwrap_or_else(|| panic!("no random_value{ARTICLE_SERIES} in:\n{body}"))
        .parse()
        .expect("random_value is a number");
    assert!((0.0..1.0).contains(&value), "random_value {value} is not in [0,1)");
    let pushed: f64 = sample(&body, &format!("push_time_seconds{ARTICLE_SERIES}"))
        .unwrap_or_else(|| panic!("no push_time_seconds{ARTICLE_SERIES} in:\n{body}"))
        .parse()
        .expect("push_time_seconds is a number");
    assert!(
        before - 1.0 <= pushed && pushed <= after + 1.0,
        "push_time_seconds {pushed} is not the push's time ({before}..{after})"
    );
    assert_eq!(sample(&body, &format!("push_failure_time_seconds{ARTICLE_SERIES}")).as_deref(), Some("0"));

    // The next run replaces the group (PUT): still one random_value series, a later push time.
    std::thread::sleep(Duration::from_millis(20));
    run_article(&server, &[]);
    let body = scrape(&server);
    assert_eq!(body.lines().filter(|l| l.starts_with("random_value{")).count(), 1, "{body}");
    let again: f64 =
        sample(&body, &format!("push_time_seconds{ARTICLE_SERIES}")).expect("push time").parse().expect("number");
    assert!(again > pushed, "push_time_seconds did not advance on the second run: {pushed} then {again}");

    // Its --job flag names the group's job.
    run_article(&server, &["--job=other_job"]);
    let body = scrape(&server);
    assert!(
        sample(&body, r#"random_value{instance="",job="other_job",sample_label="sample_label_value"}"#).is_some(),
        "--job=other_job did not push to job other_job:\n{body}"
    );
}

/// The article's program leaves the same series in cronpush as in the reference Pushgateway
/// (the random value itself aside), so swapping the gateway under the article's CronJob changes
/// nothing Prometheus or the alert rules see.
#[test]
fn article_program_leaves_the_same_series_as_the_reference() {
    let cronpush = Server::cronpush(&[]);
    let reference = Server::reference(&[]);
    run_article(&cronpush, &[]);
    run_article(&reference, &[]);
    assert_same_series(&cronpush, &reference, &["random_value"], "the article's program");
}

/// client_golang's push package, step by step, against cronpush and the reference alike:
/// Push (PUT) stores a gauge, counter, histogram and summary under a grouping key with a '/'
/// value (sent base64), an empty value (sent as `=`) and a space (sent as `+`); Add (POST)
/// replaces only the families it carries; Push replaces the whole group; Delete removes the
/// group with its timestamps, and deleting it again still satisfies the client (202).
#[test]
fn go_push_add_and_delete_keep_pushgateway_semantics() {
    let cronpush = Server::cronpush(&[]);
    let reference = Server::reference(&[]);
    let s = |name: &str, extra: &str| format!("{name}{{{GO_LABELS}{extra}}}");
    let both = |op: &str, args: &[&str]| {
        for server in [&cronpush, &reference] {
            let ran = go_pusher(server, op, "go_job", &[&GO_GROUP[..], args].concat());
            assert_ok(&ran, &format!("the Go client's {op} to {}", server.base));
        }
    };

    both(
        "push",
        &[
            "-gauge=batch_gauge=1.5",
            "-counter=batch_events_total=3",
            "-histogram=batch_duration_seconds=0.05,0.5,5,50",
            "-summary=batch_size_bytes=1,2,3",
        ],
    );
    assert_samples(
        &cronpush,
        &[
            (s("batch_gauge", ""), "1.5"),
            (s("batch_events_total", ""), "3"),
            (s("batch_duration_seconds_bucket", r#",le="0.1""#), "1"),
            (s("batch_duration_seconds_bucket", r#",le="1""#), "2"),
            (s("batch_duration_seconds_bucket", r#",le="10""#), "3"),
            (s("batch_duration_seconds_bucket", r#",le="+Inf""#), "4"),
            (s("batch_duration_seconds_sum", ""), "55.55"),
            (s("batch_duration_seconds_count", ""), "4"),
            (s("batch_size_bytes", r#",quantile="0.5""#), "2"),
            (s("batch_size_bytes", r#",quantile="0.9""#), "3"),
            (s("batch_size_bytes_sum", ""), "6"),
            (s("batch_size_bytes_count", ""), "3"),
            (s("push_failure_time_seconds", ""), "0"),
        ],
    );
    let body = scrape(&cronpush);
    for ty in [
        "batch_gauge gauge",
        "batch_events_total counter",
        "batch_duration_seconds histogram",
        "batch_size_bytes summary",
    ] {
        assert!(body.contains(&format!("\n# TYPE {ty}\n")), "no `# TYPE {ty}` in:\n{body}");
    }
    assert_same_series(&cronpush, &reference, &[], "Push");

    // Add (POST): batch_gauge is replaced, batch_extra joins, the other families stay.
    both("add", &["-gauge=batch_gauge=2.5", "-gauge=batch_extra=7"]);
    assert_samples(
        &cronpush,
        &[
            (s("batch_gauge", ""), "2.5"),
            (s("batch_extra", ""), "7"),
            (s("batch_events_total", ""), "3"),
            (s("batch_size_bytes_count", ""), "3"),
        ],
    );
    assert_same_series(&cronpush, &reference, &[], "Add");

    // Push (PUT) again: the group now holds only what this push carried.
    both("push", &["-gauge=batch_gauge=9"]);
    assert_samples(&cronpush, &[(s("batch_gauge", ""), "9")]);
    let left: Vec<String> = cronpush.pushed_series().into_iter().filter(|l| !l.starts_with("push_")).collect();
    assert_eq!(left, [format!("{} 9", s("batch_gauge", ""))], "Push did not replace the whole group");
    assert_same_series(&cronpush, &reference, &[], "the second Push");

    // Delete: the group is gone, timestamps and all; deleting it again is still a success.
    both("delete", &[]);
    assert!(
        support::eventually(Duration::from_secs(5), || cronpush.pushed_series().is_empty()),
        "Delete left series behind:\n{}",
        cronpush.pushed_series().join("\n")
    );
    both("delete", &[]);
    assert_same_series(&cronpush, &reference, &[], "Delete");
}

/// When cronpush refuses a push (here `x` pushed as a counter while another group holds `x` as a
/// gauge), client_golang's Push returns an error carrying the status and the gateway's reason, so
/// the job can notice; the refused group records only a failure time, the gauge is untouched, and
/// the reference ends in the same state.
#[test]
fn go_client_gets_an_error_for_a_refused_push() {
    let cronpush = Server::cronpush(&[]);
    let reference = Server::reference(&[]);
    for server in [&cronpush, &reference] {
        assert_ok(&go_pusher(server, "push", "a", &["-gauge=x=1"]), "pushing the gauge x");
        let refused = go_pusher(server, "push", "b", &["-counter=x=2"]);
        assert!(
            !refused.status.success(),
            "the Go client did not report the refused push to {}: {refused:?}",
            server.base
        );
        let expected = format!(
            "unexpected status code 400 while pushing to {}/metrics/job/b: pushed metrics are invalid or inconsistent with existing metrics: ",
            server.base
        );
        assert!(
            refused.stderr.contains(&expected),
            "the Go client's error from {} lacks {expected:?}:\n{}",
            server.base,
            refused.stderr
        );
    }
    let body = scrape(&cronpush);
    assert_eq!(sample(&body, r#"x{instance="",job="a"}"#).as_deref(), Some("1"), "{body}");
    assert!(body.contains("# TYPE x gauge\n"), "{body}");
    assert!(sample(&body, r#"x{instance="",job="b"}"#).is_none(), "the refused counter was stored:\n{body}");
    let failed = sample(&body, r#"push_failure_time_seconds{instance="",job="b"}"#).expect("a failure time for job b");
    assert_ne!(failed, "0", "the refused push left no failure time");
    assert_same_series(&cronpush, &reference, &[], "a refused push");
}

/// `prometheus_client`'s version as (major, minor): gzip pushes came in 0.24, base64 for
/// grouping values with a space in 0.25.
fn python_client_version() -> (u32, u32) {
    let python = support::peer("python3");
    let out = Command::new(python)
        .args(["-c", "import prometheus_client, importlib.metadata as m; print(m.version('prometheus-client'))"])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "the Python package prometheus-client is not installed; run ./scripts/test, which installs it:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// One step of tests/clients/python_push.py against `server` (see the script for the steps).
fn python_push(server: &Server, step: &str) -> Ran {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/python_push.py");
    run(Command::new(support::peer("python3")).arg(&script).arg(&server.base).arg(step), CLIENT_LIMIT)
}

/// Python's prometheus_client, step by step, against cronpush and the reference alike:
/// push_to_gateway (PUT, text format) stores a Counter (as `_total` plus `_created`), a Gauge and a
/// Histogram under a grouping key with a '/' value, an empty value and a space;
/// pushadd_to_gateway (POST) adds a family and keeps the rest; push_to_gateway replaces the
/// group; delete_from_gateway removes it.
#[test]
fn python_push_pushadd_and_delete_keep_pushgateway_semantics() {
    // Before 0.25 the library sent a space as `+`, which both gateways then store literally.
    let space = if python_client_version() >= (0, 25) { "a b" } else { "a+b" };
    let labels = format!(r#"empty="",instance="",job="py_job",path="/var/tmp",who="{space}""#);
    let s = |name: &str, extra: &str| format!("{name}{{{labels}{extra}}}");
    let cronpush = Server::cronpush(&[]);
    let reference = Server::reference(&[]);
    let both = |step: &str| {
        for server in [&cronpush, &reference] {
            assert_ok(&python_push(server, step), &format!("the Python step {step} against {}", server.base));
        }
    };

    both("push");
    assert_samples(
        &cronpush,
        &[
            (s("py_runs_total", ""), "3"),
            (s("py_last_value", ""), "42.5"),
            (s("py_duration_seconds_bucket", r#",le="0.1""#), "1"),
            (s("py_duration_seconds_bucket", r#",le="1""#), "2"),
            (s("py_duration_seconds_bucket", r#",le="10""#), "3"),
            (s("py_duration_seconds_bucket", r#",le="+Inf""#), "3"),
            (s("py_duration_seconds_sum", ""), "5.55"),
            (s("py_duration_seconds_count", ""), "3"),
            (s("push_failure_time_seconds", ""), "0"),
        ],
    );
    let body = scrape(&cronpush);
    for ty in ["py_runs_total counter", "py_runs_created gauge", "py_last_value gauge", "py_duration_seconds histogram"]
    {
        assert!(body.contains(&format!("\n# TYPE {ty}\n")), "no `# TYPE {ty}` in:\n{body}");
    }
    let created: f64 = sample(&body, &s("py_runs_created", "")).expect("py_runs_created").parse().expect("number");
    assert!((now_seconds() - created).abs() < 300.0, "py_runs_created {created} is not a recent time");
    assert_same_series(&cronpush, &reference, &[], "push_to_gateway");

    both("add");
    assert_samples(
        &cronpush,
        &[(s("py_extra", ""), "7"), (s("py_runs_total", ""), "3"), (s("py_last_value", ""), "42.5")],
    );
    assert_same_series(&cronpush, &reference, &[], "pushadd_to_gateway");

    both("replace");
    let left: Vec<String> = cronpush.pushed_series().into_iter().filter(|l| !l.starts_with("push_")).collect();
    assert_eq!(left, [format!("{} 1", s("py_last_value", ""))], "push_to_gateway did not replace the whole group");
    assert_same_series(&cronpush, &reference, &[], "the second push_to_gateway");

    both("delete");
    assert!(
        support::eventually(Duration::from_secs(5), || cronpush.pushed_series().is_empty()),
        "delete_from_gateway left series behind:\n{}",
        cronpush.pushed_series().join("\n")
    );
    assert_same_series(&cronpush, &reference, &[], "delete_from_gateway");
}

/// push_to_gateway with `compression='gzip'` (prometheus_client 0.24 and later) sends a gzipped
/// body with `Content-Encoding: gzip`, and cronpush stores it like the reference does.
#[test]
fn python_gzip_push_lands() {
    let version = python_client_version();
    assert!(
        version >= (0, 24),
        "prometheus_client {version:?} predates compression='gzip'; ./scripts/test installs a current one"
    );
    let cronpush = Server::cronpush(&[]);
    let reference = Server::reference(&[]);
    for server in [&cronpush, &reference] {
        assert_ok(&python_push(server, "gzip"), &format!("the gzip push to {}", server.base));
    }
    assert_samples(&cronpush, &[(r#"py_gzipped{instance="",job="py_gzip"}"#.to_string(), "5")]);
    assert_same_series(&cronpush, &reference, &[], "a gzip push");
}

/// A push that cronpush refuses (a Counter exposed as `py_clash_total` while another group holds
/// a gauge of that name) raises in prometheus_client with the 400 and the gateway's reason, as it
/// does against the reference, and both gateways end in the same state.
#[test]
fn python_client_raises_for_a_refused_push() {
    python_client_version();
    let cronpush = Server::cronpush(&[]);
    let reference = Server::reference(&[]);
    for server in [&cronpush, &reference] {
        assert_ok(&python_push(server, "gauge"), "pushing the gauge py_clash_total");
        let refused = python_push(server, "counter");
        assert!(
            !refused.status.success(),
            "prometheus_client did not raise for the refused push to {}: {refused:?}",
            server.base
        );
        for part in ["HTTPError: HTTP Error 400", "pushed metrics are invalid or inconsistent with existing metrics: "]
        {
            assert!(
                refused.stderr.contains(part),
                "the Python error from {} lacks {part:?}:\n{}",
                server.base,
                refused.stderr
            );
        }
    }
    let body = scrape(&cronpush);
    assert_eq!(sample(&body, r#"py_clash_total{instance="",job="py_a"}"#).as_deref(), Some("1"), "{body}");
    assert!(body.contains("# TYPE py_clash_total gauge\n"), "{body}");
    assert_same_series(&cronpush, &reference, &[], "a refused push");
}

/// Runs tests/clients/snappy (golang/snappy) on `input`: `encode` frames it, `decode` says what
/// the reader Pushgateway 1.6+ wraps a snappy body in makes of it.
fn go_snappy(mode: &str, input: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new(&go_programs().snappy)
        .arg(mode)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("golang/snappy program");
    child.stdin.take().expect("stdin").write_all(input).expect("write to golang/snappy");
    let out = child.wait_with_output().expect("golang/snappy output");
    assert!(out.status.success(), "golang/snappy {mode} failed");
    out.stdout
}

/// Snappy push bodies against golang/snappy itself: a body its writer frames is kept, and for
/// every damaged body cronpush answers 400 with the words golang/snappy's reader gives, which
/// the Pushgateway answers with (main.go decodeRequest, handler/push.go).
#[test]
fn snappy_bodies_are_read_as_golang_snappy_reads_them() {
    let server = Server::cronpush(&[]);
    let framed = go_snappy("encode", b"# TYPE backup_ok gauge\nbackup_ok 1\n");
    let snappy = [("Content-Encoding", "snappy")];
    let reply = server.request("PUT", "/metrics/job/go_snappy", &snappy, framed.clone());
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(server.pushed_series().contains(&"backup_ok{instance=\"\",job=\"go_snappy\"} 1".to_string()));

    // Go's framing: a 10-byte stream identifier, then each chunk's type, 3 bytes of length
    // and (data chunks) a 4-byte checksum.
    let mut bad_checksum = framed.clone();
    bad_checksum[14] ^= 0xff;
    let with = |chunk: &[u8]| [&framed[..10], chunk].concat();
    let damaged = [
        ("plain text", b"backup_ok 2\n".to_vec()),
        ("a bad checksum", bad_checksum),
        ("a cut chunk", framed[..framed.len() - 2].to_vec()),
        ("a cut chunk header", with(&[0x00, 9])),
        ("a reserved chunk type", with(&[0x02, 1, 0, 0, 0])),
        ("a chunk longer than the format allows", with(&[0x00, 0xff, 0xff, 0xff])),
        // 70,000 bytes: past a block, within golang/snappy's buffer; 76,495: just past it.
        ("an uncompressed chunk longer than a block", with(&[0x01, 0x70, 0x11, 0x01])),
        ("a chunk just longer than golang/snappy's buffer", with(&[0x01, 0xcf, 0x2a, 0x01])),
        ("a chunk as long as golang/snappy's buffer", with(&[0x00, 0xce, 0x2a, 0x01])),
        ("a compressed chunk shorter than its checksum", with(&[0x00, 2, 0, 0, 0, 0])),
        ("a second stream identifier of the wrong length", with(&[0xff, 5, 0, 0, b's', b'N', b'a', b'P', b'p'])),
    ];
    for (what, body) in damaged {
        let go_says = String::from_utf8(go_snappy("decode", &body)).expect("text");
        let go_says = go_says.trim_end();
        assert_ne!(go_says, "ok", "{what}: golang/snappy reads it");
        let reply = server.request("PUT", "/metrics/job/go_snappy", &snappy, body);
        assert_eq!((reply.status, reply.body.trim_end()), (400, go_says), "{what}");
    }
    assert!(!server.pushed_series().iter().any(|s| s.contains("backup_ok") && s.ends_with(" 2")));
}
