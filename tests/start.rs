//! `cronpush start`, the real binary, as the kubelet runs it: with the environment the webhook's
//! injection writes (the Downward API resolved as the kubelet resolves it), pushing to the real
//! cronpush gateway and to the reference Pushgateway, and against every way a gateway can fail.
//! Whatever happens it exits 0, within its timeout: a failed init container fails the Job.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::core::v1::Pod;
use serde_json::json;

use cronpush::contract::{START_CONTAINER, env};
use cronpush::webhook::injection;
use cronpush::webhook::resolve::{FactsSource, RunFacts};
use support::webhook::injection_config;
use support::{Server, eventually, free_port, pushed_series};

/// The group every case pushes to: job `cronpush`, namespace `prod`, CronJob `backup`.
const GROUP_PATH: &str = "/metrics/job/cronpush/namespace/prod/cronjob/backup";
/// The group's labels as a scrape shows them, between the series' own labels.
const GROUP: &str = r#"cronjob="backup",instance="",job="cronpush",namespace="prod""#;
/// The failure cases' deadline, and what the process may take beyond it to start and exit.
const TIMEOUT: Duration = Duration::from_secs(2);
const MARGIN: Duration = Duration::from_millis(1500);

// ---------------------------------------------------------------------------------------------
// Running `cronpush start`

/// The environment of one `cronpush start`, and its command line.
#[derive(Clone)]
struct Start {
    env: Vec<(String, String)>,
    args: Vec<String>,
}

struct Finished {
    code: Option<i32>,
    elapsed: Duration,
    stderr: String,
    /// Unix seconds just before the process started and just after it ended.
    began: f64,
    ended: f64,
}

/// The facts of a scheduled run of `backup`, 2026-03-03T13:30:00Z (Unix minute 29542410).
fn facts() -> RunFacts {
    RunFacts {
        cronjob: "backup".into(),
        job: "backup-29542410".into(),
        schedule: Some("*/15 * * * *".into()),
        scheduled_time: Some(1_772_544_600),
        source: FactsSource::Api,
        ..RunFacts::default()
    }
}

impl Start {
    /// The environment the webhook gives `cronpush-start` for `facts`, in a Pod of namespace
    /// `prod`, with the Downward API fields resolved as the kubelet resolves them.
    fn injected(facts: RunFacts) -> Start {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("{}-x7k2q", facts.job), "namespace": "prod", "ownerReferences": [{
                "apiVersion": "batch/v1", "kind": "Job", "name": facts.job, "uid": "u", "controller": true}]},
            "spec": {"containers": [{"name": "app", "image": "busybox"}], "restartPolicy": "Never"}
        });
        let typed: Pod = serde_json::from_value(pod.clone()).unwrap();
        let ops = injection::patch(&typed, &facts, &injection_config()).expect("injection").operations();
        let mut patched = pod.clone();
        json_patch::patch(&mut patched, &ops).expect("the patch applies");
        let patched: Pod = serde_json::from_value(patched).unwrap();
        let containers = patched.spec.unwrap().init_containers.unwrap();
        let start = containers.into_iter().find(|c| c.name == START_CONTAINER).expect("the start container");
        assert_eq!(start.args.as_deref(), Some(&["start".to_string()][..]));
        let env = start
            .env
            .unwrap_or_default()
            .into_iter()
            .map(|var| {
                let value = match (var.value, var.value_from.and_then(|from| from.field_ref)) {
                    (Some(value), _) => value,
                    (None, Some(field)) if field.field_path == "metadata.namespace" => "prod".to_string(),
                    (None, Some(field)) if field.field_path == "metadata.name" => format!("{}-x7k2q", facts.job),
                    other => panic!("the kubelet emulation does not know {}: {other:?}", var.name),
                };
                (var.name, value)
            })
            .collect();
        Start { env, args: Vec::new() }
    }

    fn set(mut self, name: &str, value: &str) -> Start {
        self.env.retain(|(n, _)| n != name);
        self.env.push((name.to_string(), value.to_string()));
        self
    }

    fn without(mut self, name: &str) -> Start {
        self.env.retain(|(n, _)| n != name);
        self
    }

    fn gateway(self, url: &str) -> Start {
        self.set(env::GATEWAY_URL, url)
    }

    fn arg(mut self, arg: &str) -> Start {
        self.args.push(arg.to_string());
        self
    }

    /// Runs the binary with exactly this environment; a run that outlives any sane bound is
    /// killed and reported, so that a hang fails the test instead of stalling it.
    fn run(&self) -> Finished {
        let logs = tempfile::tempdir().unwrap();
        let stderr_path = logs.path().join("stderr");
        let began = unix_now();
        let clock = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_cronpush"))
            .arg("start")
            .args(&self.args)
            .env_clear()
            .envs(self.env.iter().map(|(n, v)| (n, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .expect("cronpush start");
        let code = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status.code();
            }
            if clock.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                panic!("cronpush start did not exit within 20 s");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let elapsed = clock.elapsed();
        let stderr = std::fs::read_to_string(&stderr_path).unwrap();
        Finished { code, elapsed, stderr, began, ended: unix_now() }
    }
}

impl Finished {
    /// Exit 0, within the deadline and the margin, with `line` (the clear outcome) in the logs.
    fn assert_bounded(&self, case: &str, line: &str) {
        assert_eq!(self.code, Some(0), "{case}: exit code; stderr:\n{}", self.stderr);
        assert!(self.elapsed < TIMEOUT + MARGIN, "{case}: took {:?}; stderr:\n{}", self.elapsed, self.stderr);
        assert!(self.stderr.contains(line), "{case}: no {line:?} in stderr:\n{}", self.stderr);
        println!("{case}: exit 0 after {:?}", self.elapsed);
    }

    fn assert_pushed(&self) {
        assert_eq!(self.code, Some(0), "stderr:\n{}", self.stderr);
        assert!(self.stderr.contains("pushed the start metrics"), "stderr:\n{}", self.stderr);
    }
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs_f64()
}

// ---------------------------------------------------------------------------------------------
// What the gateways show

/// Where a run by hand pushes its start.
const STARTED_BY_HAND: &str = "cronjob_last_manual_start_timestamp_seconds";

/// The group's `cronjob_*` series on `server` (scraped at `metrics_path`), once there are
/// `count` of them; the start time, checked to lie within the run, reads `T`.
fn start_series(server: &Server, metrics_path: &str, count: usize, run: &Finished) -> Vec<String> {
    let scrape = || pushed_series(&server.get(metrics_path).body);
    let ours = |lines: Vec<String>| lines.into_iter().filter(|l| l.starts_with("cronjob_")).collect::<Vec<_>>();
    // The reference applies pushes from a queue: wait until this run's are visible.
    eventually(Duration::from_secs(5), || ours(scrape()).len() >= count);
    ours(scrape())
        .into_iter()
        .map(|line| {
            let start = ["cronjob_last_start_timestamp_seconds", STARTED_BY_HAND]
                .into_iter()
                .find_map(|name| Some((name, line.strip_prefix(&format!("{name}{{{GROUP}}} "))?)));
            let Some((name, value)) = start else { return line };
            let started: f64 = value.parse().unwrap();
            // Millisecond precision: the bounds are widened by one.
            assert!(
                run.began - 0.001 <= started && started <= run.ended + 0.001,
                "start time {started} outside the run [{}, {}]",
                run.began,
                run.ended
            );
            format!("{name}{{{GROUP}}} T")
        })
        .collect()
}

/// The expected lines: `cronjob_info` with its labels, then `name value` pairs, all in the
/// group, sorted as a scrape sorts them.
fn expected(concurrency_policy: &str, schedule: &str, timezone: &str, samples: &[(&str, &str)]) -> Vec<String> {
    let mut lines = vec![
        format!(
            "cronjob_info{{concurrency_policy=\"{concurrency_policy}\",{GROUP},schedule=\"{schedule}\",\
             timezone=\"{timezone}\"}} 1"
        ),
        format!("cronjob_last_start_timestamp_seconds{{{GROUP}}} T"),
    ];
    lines.extend(samples.iter().map(|(name, value)| format!("cronjob_{name}{{{GROUP}}} {value}")));
    lines.sort();
    lines
}

/// Runs `start` against a fresh cronpush gateway and a fresh reference Pushgateway, and checks
/// that both show exactly `want`.
fn assert_pushes(start: Start, want: Vec<String>) {
    for server in [Server::cronpush(&[]), Server::reference(&[])] {
        let run = start.clone().gateway(&server.base).run();
        run.assert_pushed();
        assert_eq!(start_series(&server, "/metrics", want.len(), &run), want, "on {}", server.base);
    }
}

// ---------------------------------------------------------------------------------------------
// The series, on both gateways

#[test]
fn a_scheduled_run_pushes_its_slot() {
    // The CronJob was created 2025-11-21T04:40:00Z (1763700000).
    let facts = RunFacts { concurrency_policy: Some("Forbid".into()), cronjob_created: Some(1_763_700_000), ..facts() };
    // Slot 1772544600 = 2026-03-03T13:30:00Z; the next quarter hour, 13:45:00Z, is 1772545500.
    let want = expected(
        "Forbid",
        "*/15 * * * *",
        "UTC",
        &[
            ("created_timestamp_seconds", "1.7637e+09"),
            ("last_scheduled_timestamp_seconds", "1.7725446e+09"),
            ("previous_scheduled_timestamp_seconds", "1.7725437e+09"),
            ("next_scheduled_timestamp_seconds", "1.7725455e+09"),
            ("schedule_period_seconds", "900"),
            ("schedule_grace_seconds", "300"),
            ("max_run_duration_seconds", "900"),
        ],
    );
    assert_pushes(Start::injected(facts), want);
}

#[test]
fn without_a_scheduled_time_the_job_name_tells_it() {
    let facts = RunFacts { schedule: Some("30 13 * * *".into()), grace_seconds: Some(600), ..facts() };
    let start = Start::injected(facts).without(env::SCHEDULED_TIME);
    // backup-29542410: minute 29542410 is 1772544600 s, 2026-03-03T13:30:00Z; the next 13:30
    // is a day later, 1772631000.
    let want = expected(
        "Allow",
        "30 13 * * *",
        "UTC",
        &[
            ("last_scheduled_timestamp_seconds", "1.7725446e+09"),
            ("previous_scheduled_timestamp_seconds", "1.7724582e+09"),
            ("next_scheduled_timestamp_seconds", "1.772631e+09"),
            ("schedule_period_seconds", "86400"),
            ("schedule_grace_seconds", "600"),
            ("max_run_duration_seconds", "86400"),
        ],
    );
    assert_pushes(start, want);
}

#[test]
fn a_run_by_hand_pushes_no_slots() {
    // `kubectl create job --from=cronjob/backup backup-manual-x1`: the webhook finds no slot
    // and sets CRONPUSH_SCHEDULED_TIME empty.
    let facts = RunFacts {
        job: "backup-manual-x1".into(),
        schedule: Some("0 * * * *".into()),
        scheduled_time: None,
        ..facts()
    };
    let start = Start::injected(facts);
    assert!(start.env.contains(&(env::SCHEDULED_TIME.to_string(), String::new())));
    // Its start goes under a name of its own, so that the scheduled run the timing rules
    // follow stays the one they follow; and nothing of the schedule, which is the scheduled
    // runs' to push.
    let mut want = expected("Allow", "0 * * * *", "UTC", &[]);
    for line in &mut want {
        *line = line.replace("cronjob_last_start_timestamp_seconds", STARTED_BY_HAND);
    }
    assert_pushes(start, want);
}

#[test]
fn slots_are_counted_in_the_cronjobs_time_zone() {
    let facts = RunFacts {
        schedule: Some("0 3 * * *".into()),
        time_zone: Some("Europe/Berlin".into()),
        // 2026-03-28 03:00 CET (+01:00) = 02:00:00Z.
        scheduled_time: Some(1_774_663_200),
        ..facts()
    };
    // Berlin springs forward that night: the next 03:00 is CEST (+02:00), 2026-03-29T01:00:00Z
    // = 1774746000, 23 hours (82800 s) later. In UTC it would have been 24 hours.
    let want = expected(
        "Allow",
        "0 3 * * *",
        "Europe/Berlin",
        &[
            ("last_scheduled_timestamp_seconds", "1.7746632e+09"),
            ("previous_scheduled_timestamp_seconds", "1.7745768e+09"),
            ("next_scheduled_timestamp_seconds", "1.774746e+09"),
            ("schedule_period_seconds", "82800"),
            ("schedule_grace_seconds", "300"),
            ("max_run_duration_seconds", "82800"),
        ],
    );
    assert_pushes(Start::injected(facts), want);
}

#[test]
fn weekly_with_a_maximum_run_time() {
    let facts = RunFacts {
        schedule: Some("@weekly".into()),
        // Sunday 2026-03-01T00:00:00Z; @weekly is `0 0 * * 0`, the next is 2026-03-08, 1772928000.
        scheduled_time: Some(1_772_323_200),
        max_run_seconds: Some(3600),
        ..facts()
    };
    let want = expected(
        "Allow",
        "@weekly",
        "UTC",
        &[
            ("last_scheduled_timestamp_seconds", "1.7723232e+09"),
            ("previous_scheduled_timestamp_seconds", "1.7717184e+09"),
            ("next_scheduled_timestamp_seconds", "1.772928e+09"),
            ("schedule_period_seconds", "604800"),
            ("schedule_grace_seconds", "300"),
            ("max_run_duration_seconds", "3600"),
        ],
    );
    assert_pushes(Start::injected(facts), want);
}

#[test]
fn every_seventh_minute_has_a_short_last_period() {
    let facts = RunFacts {
        schedule: Some("*/7 * * * *".into()),
        // 2026-03-03T13:56:00Z = 1772546160: minute 56 is the hour's last multiple of 7, so
        // the next slot is 14:00:00Z = 1772546400, four minutes later.
        scheduled_time: Some(1_772_546_160),
        ..facts()
    };
    let want = expected(
        "Allow",
        "*/7 * * * *",
        "UTC",
        &[
            ("last_scheduled_timestamp_seconds", "1.77254616e+09"),
            ("previous_scheduled_timestamp_seconds", "1.77254574e+09"),
            ("next_scheduled_timestamp_seconds", "1.7725464e+09"),
            ("schedule_period_seconds", "240"),
            ("schedule_grace_seconds", "300"),
            ("max_run_duration_seconds", "240"),
        ],
    );
    assert_pushes(Start::injected(facts), want);
}

#[test]
fn a_gateway_url_with_a_path_prefix() {
    let want = expected(
        "Allow",
        "*/15 * * * *",
        "UTC",
        &[
            ("last_scheduled_timestamp_seconds", "1.7725446e+09"),
            ("previous_scheduled_timestamp_seconds", "1.7725437e+09"),
            ("next_scheduled_timestamp_seconds", "1.7725455e+09"),
            ("schedule_period_seconds", "900"),
            ("schedule_grace_seconds", "300"),
            ("max_run_duration_seconds", "900"),
        ],
    );
    let flags = ["--web.route-prefix=/pushgateway"];
    let servers = [
        (Server::cronpush_at(&flags, "/pushgateway"), "/pushgateway"),
        (Server::reference_at(&flags, "/pushgateway"), "/pushgateway/"),
    ];
    for (server, suffix) in servers {
        let run = Start::injected(facts()).gateway(&format!("{}{suffix}", server.base)).run();
        run.assert_pushed();
        assert_eq!(start_series(&server, "/pushgateway/metrics", want.len(), &run), want, "on {}", server.base);
    }
}

#[test]
fn the_next_run_replaces_its_series_and_keeps_the_rest_of_the_group() {
    for server in [Server::cronpush(&[]), Server::reference(&[])] {
        // The end phase of an earlier run, pushed into the same group.
        let reply = server.post(GROUP_PATH, "# TYPE cronjob_last_exit_code gauge\ncronjob_last_exit_code 3\n");
        assert!(reply.status < 300, "{reply:?}");
        let start = Start::injected(facts()).gateway(&server.base);
        start.run().assert_pushed();
        // The next slot, 13:45:00Z = 1772545500; its next is 14:00:00Z = 1772546400.
        let run = start.set(env::SCHEDULED_TIME, "1772545500").set(env::JOB_NAME, "backup-29542425").run();
        run.assert_pushed();
        let want = expected(
            "Allow",
            "*/15 * * * *",
            "UTC",
            &[
                ("last_exit_code", "3"),
                ("last_scheduled_timestamp_seconds", "1.7725455e+09"),
                ("previous_scheduled_timestamp_seconds", "1.7725446e+09"),
                ("next_scheduled_timestamp_seconds", "1.7725464e+09"),
                ("schedule_period_seconds", "900"),
                ("schedule_grace_seconds", "300"),
                ("max_run_duration_seconds", "900"),
            ],
        );
        // The reference applies pushes from a queue: wait for the second run's slot.
        let second = format!("cronjob_last_scheduled_timestamp_seconds{{{GROUP}}} 1.7725455e+09");
        eventually(Duration::from_secs(5), || pushed_series(&server.get("/metrics").body).contains(&second));
        assert_eq!(start_series(&server, "/metrics", want.len(), &run), want, "on {}", server.base);
    }
}

#[test]
fn garbage_is_ignored_and_the_rest_pushed() {
    for server in [Server::cronpush(&[]), Server::reference(&[])] {
        let run = Start::injected(facts())
            .gateway(&server.base)
            .set(env::GRACE_SECONDS, "abc")
            .set(env::SCHEDULE, "61 * * * *")
            .set(env::SCHEDULED_TIME, "soon")
            .set(env::TIMEOUT_SECONDS, "-3")
            .arg("--no-such-flag")
            .run();
        run.assert_pushed();
        for said in [
            "unexpected argument '--no-such-flag'",
            "ignoring CRONPUSH_GRACE_SECONDS",
            "ignoring CRONPUSH_SCHEDULED_TIME",
            "ignoring CRONPUSH_TIMEOUT_SECONDS",
            "cannot read the schedule",
        ] {
            assert!(run.stderr.contains(said), "no {said:?} in:\n{}", run.stderr);
        }
        // The slot still comes from the Job's name (1772544600); without a schedule there is
        // no next slot, no period and so no maximum run time.
        let want = expected(
            "Allow",
            "61 * * * *",
            "UTC",
            &[("last_scheduled_timestamp_seconds", "1.7725446e+09"), ("schedule_grace_seconds", "300")],
        );
        assert_eq!(start_series(&server, "/metrics", want.len(), &run), want, "on {}", server.base);
    }
}

// ---------------------------------------------------------------------------------------------
// Failing gateways: always exit 0, within the deadline

fn failing(gateway: &str) -> Start {
    Start::injected(facts()).gateway(gateway).set(env::TIMEOUT_SECONDS, &TIMEOUT.as_secs().to_string())
}

const GAVE_UP: &str = "could not push the start metrics; the Job goes on";

#[test]
fn gateway_down() {
    let run = failing(&format!("http://127.0.0.1:{}", free_port())).run();
    run.assert_bounded("connection refused", GAVE_UP);
    assert!(run.stderr.contains("Connection refused"), "{}", run.stderr);
}

#[test]
fn gateway_that_never_answers() {
    // The kernel completes the handshake into the backlog; nobody ever reads or answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let run = failing(&format!("http://{}", listener.local_addr().unwrap())).run();
    run.assert_bounded("no answer", GAVE_UP);
    assert!(run.stderr.contains("no answer within"), "{}", run.stderr);
}

#[test]
fn gateway_name_that_does_not_resolve() {
    let run = failing("http://cronpush-gateway.invalid:9091").run();
    run.assert_bounded("DNS failure", GAVE_UP);
}

#[test]
fn https_to_a_plain_http_gateway() {
    let server = Server::cronpush(&[]);
    let run = failing(&format!("https://127.0.0.1:{}", server.port)).run();
    run.assert_bounded("TLS to plain HTTP", GAVE_UP);
}

#[test]
fn https_to_an_untrusted_certificate() {
    let address = untrusted_tls_server();
    let run = failing(&format!("https://{address}")).run();
    run.assert_bounded("untrusted certificate", GAVE_UP);
    assert!(run.stderr.contains("certificate"), "{}", run.stderr);
}

#[test]
fn no_gateway_url() {
    let run = Start::injected(facts()).without(env::GATEWAY_URL).run();
    run.assert_bounded("no gateway URL", "no gateway URL (set CRONPUSH_GATEWAY_URL)");
    assert!(run.elapsed < Duration::from_millis(500), "{:?}", run.elapsed);
}

#[test]
fn a_refused_body_is_not_retried() {
    let gateway = ScriptedGateway::start(&[(400, "text format parsing error in line 1: unexpected end of input")]);
    let run = failing(&gateway.url()).run();
    run.assert_bounded("400", GAVE_UP);
    assert!(run.stderr.contains("400 Bad Request: text format parsing error in line 1"), "{}", run.stderr);
    assert_eq!(gateway.requests().len(), 1, "a 400 is final");
}

#[test]
fn a_broken_gateway_is_retried_until_the_deadline() {
    let gateway = ScriptedGateway::start(&[(500, "broken")]);
    let run = failing(&gateway.url()).run();
    run.assert_bounded("500", GAVE_UP);
    assert!(run.stderr.contains("500 Internal Server Error: broken"), "{}", run.stderr);
    assert!(gateway.requests().len() > 2, "{} requests", gateway.requests().len());
}

#[test]
fn retries_get_the_push_through() {
    let gateway = ScriptedGateway::start(&[(500, "busy"), (500, "busy"), (202, "")]);
    let run = failing(&gateway.url()).run();
    run.assert_bounded("500, 500, 202", "pushed the start metrics");
    assert!(run.stderr.contains("attempts=3"), "{}", run.stderr);
    let requests = gateway.requests();
    assert_eq!(requests.len(), 3);
    for request in &requests {
        assert_eq!(request.head.lines().next(), Some(format!("POST {GROUP_PATH} HTTP/1.1").as_str()));
        let head = request.head.to_ascii_lowercase();
        assert!(head.contains("\r\ncontent-type: text/plain; version=0.0.4; charset=utf-8\r\n"), "{}", request.head);
        assert!(request.body.starts_with("# HELP cronjob_info "), "{}", request.body);
        assert_eq!(request.body, requests[0].body, "every attempt sends the same body");
    }
}

// ---------------------------------------------------------------------------------------------
// Gateways that misbehave on purpose

/// An HTTP server that answers each request with the next status of its script (the last one
/// repeats) and records what it was sent.
struct ScriptedGateway {
    address: std::net::SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
}

#[derive(Debug, Clone)]
struct Request {
    head: String,
    body: String,
}

impl ScriptedGateway {
    fn start(script: &[(u16, &str)]) -> ScriptedGateway {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let script: Vec<(u16, String)> = script.iter().map(|(s, m)| (*s, m.to_string())).collect();
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let Some(request) = read_request(&mut stream) else { continue };
                let mut seen = seen.lock().unwrap();
                let (status, message) = &script[seen.len().min(script.len() - 1)];
                seen.push(request);
                let length = message.len();
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: text/plain\r\ncontent-length: {length}\r\n\
                     connection: close\r\n\r\n{message}"
                );
                let _ = stream.write_all(answer.as_bytes());
            }
        });
        ScriptedGateway { address, requests }
    }

    fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

fn read_request(stream: &mut TcpStream) -> Option<Request> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut buf).ok().filter(|n| *n > 0)?;
        bytes.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&bytes[..head_end]).into_owned();
    let length = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
        .unwrap_or(0);
    while bytes.len() < head_end + length {
        let n = stream.read(&mut buf).ok().filter(|n| *n > 0)?;
        bytes.extend_from_slice(&buf[..n]);
    }
    Some(Request { head, body: String::from_utf8_lossy(&bytes[head_end..]).into_owned() })
}

/// A TLS server with a self-signed certificate for 127.0.0.1: the name matches, the issuer is
/// trusted by no one, so every handshake fails on the client's side.
fn untrusted_tls_server() -> std::net::SocketAddr {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let chain = vec![certified.cert.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let Ok(mut connection) = rustls::ServerConnection::new(config.clone()) else { continue };
            while connection.is_handshaking() {
                if connection.complete_io(&mut stream).is_err() {
                    break;
                }
            }
        }
    });
    address
}
