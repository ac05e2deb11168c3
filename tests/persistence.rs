//! The store file and process life, with the real binary: what was pushed survives a clean
//! restart and `kill -9` (tests/durability.rs does that under load), an idle gateway writes
//! nothing (SD cards wear out), SIGHUP does no harm (Debian's unit for the reference sends it on
//! reload, and the reference dies of it), and a damaged or foreign file stops the start with a
//! clear error instead of silently becoming an empty gateway, unless the operator asks to start
//! empty, and then the file is kept aside.

use std::time::Duration;

use support::Server;

fn api_groups(server: &Server) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_str(&server.get("/api/v1/metrics").body).unwrap();
    v["data"].as_array_mut().unwrap().sort_by_key(|g| g["labels"].to_string());
    v
}

#[test]
fn a_clean_restart_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state/gateway.data");
    let flag = format!("--persistence.file={}", file.display());
    let mut server = Server::cronpush(&[&flag]);
    assert_eq!(server.put("/metrics/job/a/instance/i", "# HELP x An x.\n# TYPE x counter\nx{l=\"v\"} 3\n").status, 200);
    assert_eq!(
        server
            .put(
                "/metrics/job/b/path@base64/L3Zhci90bXA",
                "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 2\nh_count 3\n"
            )
            .status,
        200
    );
    assert_eq!(server.put("/metrics/job/b/path@base64/L3Zhci90bXA", "y 1 123\n").status, 400);
    assert_eq!(server.put("/metrics/job/gone", "z 1\n").status, 200);
    assert_eq!(server.delete("/metrics/job/gone").status, 202);
    let (lines, groups) = (server.exact_pushed_lines(), api_groups(&server));
    server.signal("TERM");
    assert_eq!(server.wait_exit(Duration::from_secs(15)), Some(0));
    assert!(file.exists(), "SIGTERM saves the store");

    let restarted = Server::cronpush(&[&flag]);
    assert_eq!(restarted.exact_pushed_lines(), lines);
    assert_eq!(api_groups(&restarted), groups);
}

#[test]
fn an_acknowledged_push_survives_kill_9_without_any_interval() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gateway.redb");
    let flag = format!("--persistence.file={}", file.display());
    // The reference writes its file at --persistence.interval; cronpush at every push, so the
    // interval (accepted for compatibility) changes nothing.
    let mut server = Server::cronpush(&[&flag, "--persistence.interval=1h"]);
    assert_eq!(server.put("/metrics/job/a", "x 1\n").status, 200);
    assert_eq!(server.post("/metrics/job/a", "y 2\n").status, 200);
    assert_eq!(server.put("/metrics/job/b", "z 3\n").status, 200);
    assert_eq!(server.delete("/metrics/job/b").status, 202);
    let lines = server.exact_pushed_lines();
    server.signal("KILL");
    server.wait_exit(Duration::from_secs(10));
    let restarted = Server::cronpush(&[&flag]);
    assert_eq!(restarted.exact_pushed_lines(), lines);
    assert!(!lines.iter().any(|l| l.starts_with('z')), "the deleted group stays deleted");
}

/// A CronJob's run history (`GET /api/v1/cronjobs/<namespace>/<cronjob>/runs`), as the real
/// pushers leave it: acknowledged means on disk, so it survives `kill -9`, and it is deleted with
/// its group.
#[test]
fn a_run_history_survives_kill_9_and_goes_with_its_group() {
    let dir = tempfile::tempdir().unwrap();
    let flag = format!("--persistence.file={}", dir.path().join("gateway.redb").display());
    let group = "/metrics/job/cronpush/namespace/batch/cronjob/backup";
    let runs = |server: &Server| -> serde_json::Value {
        let answer = server.get("/api/v1/cronjobs/batch/backup/runs");
        assert_eq!(answer.status, 200, "{}", answer.body);
        serde_json::from_str::<serde_json::Value>(&answer.body).unwrap()["data"]["cronjobs"].clone()
    };
    let mut server = Server::cronpush(&[&flag]);
    let start =
        "cronjob_last_start_timestamp_seconds 1800000002\ncronjob_last_scheduled_timestamp_seconds 1800000000\n";
    let end = "cronjob_last_completion_timestamp_seconds 1800000012\ncronjob_last_result{result=\"success\"} 1\n\
               cronjob_last_exit_code{container=\"main\"} 0\ncronjob_last_ended_scheduled_timestamp_seconds 1800000000\n";
    assert_eq!(server.post(group, start).status, 200);
    assert_eq!(server.post(group, end).status, 200);
    let before = runs(&server);
    assert_eq!(before[0]["runs"][0]["end"]["result"], "success", "{before}");
    server.signal("KILL");
    server.wait_exit(Duration::from_secs(10));

    let restarted = Server::cronpush(&[&flag]);
    assert_eq!(runs(&restarted), before);
    assert_eq!(restarted.delete(group).status, 202);
    assert_eq!(runs(&restarted), serde_json::json!([]));
}

/// Bytes the process has caused to be written to storage, from /proc/<pid>/io.
fn bytes_written(server: &Server) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{}/io", server.pid())).expect("/proc/<pid>/io");
    io.lines().find_map(|l| l.strip_prefix("write_bytes: ")).expect("write_bytes").trim().parse().unwrap()
}

#[test]
fn an_idle_gateway_writes_nothing() {
    // On the real disk, not a tmpfs, so that writes are counted.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let flag = format!("--persistence.file={}", dir.path().join("gateway.redb").display());
    let server = Server::cronpush(&[&flag]);
    assert_eq!(server.put("/metrics/job/a", "x 1\n").status, 200);
    let before = bytes_written(&server);
    // Scrapes, the UI and the API read; time passes. None of it writes.
    for _ in 0..20 {
        assert_eq!(server.get("/metrics").status, 200);
        assert_eq!(server.get("/api/v1/metrics").status, 200);
        assert_eq!(server.get("/").status, 200);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(bytes_written(&server), before, "the idle gateway wrote to its disk");
    // The counter does count the gateway's writes: a push writes.
    assert_eq!(server.put("/metrics/job/a", "x 2\n").status, 200);
    assert!(bytes_written(&server) > before, "a push wrote nothing: the check above proves nothing");
}

/// A sample's value in a scrape of the gateway.
fn own_value(server: &Server, name: &str) -> f64 {
    let scrape = server.get("/metrics").body;
    let line = scrape.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("no {name}"));
    line[name.len() + 1..].parse().unwrap()
}

/// A push costs the disk the sector or two its record lies in (512 bytes each, written past the
/// page cache), not a 4 KiB page: what wears a Pi's SD card. The gateway's own metrics count the
/// same bytes, so that an operator sees them.
#[test]
fn a_push_costs_the_disk_its_sectors_and_the_metrics_say_so() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let flag = format!("--persistence.file={}", dir.path().join("gateway.redb").display());
    let server = Server::cronpush(&[&flag]);
    let body = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/benches/gateway/end-of-run.txt")).unwrap();
    let before = bytes_written(&server);
    for i in 0..50 {
        assert_eq!(server.post(&format!("/metrics/job/nightly/instance/{i}"), &body).status, 200);
    }
    let written = bytes_written(&server) - before;
    assert_eq!(own_value(&server, "cronpush_store_log_appends_total"), 50.0, "one append a push");
    assert_eq!(own_value(&server, "cronpush_store_log_written_bytes_total"), written as f64, "what the metric says");
    assert!(written.is_multiple_of(512) && written <= 50 * 1024, "{written} bytes for 50 pushes");
    assert_eq!(own_value(&server, "cronpush_store_checkpoints_total"), 0.0);
}

#[test]
fn sighup_does_no_harm() {
    let mut server = Server::cronpush(&[]);
    assert_eq!(server.put("/metrics/job/a", "x 1\n").status, 200);
    server.signal("HUP");
    std::thread::sleep(Duration::from_millis(300));
    assert!(server.is_running(), "SIGHUP killed the gateway:\n{}", server.stderr());
    assert!(server.pushed_series().contains(&"x{instance=\"\",job=\"a\"} 1".to_string()));
    assert!(server.stderr().contains("SIGHUP"), "the log says what happened:\n{}", server.stderr());
}

#[test]
fn quit_saves_the_store_too() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gateway.data");
    let flag = format!("--persistence.file={}", file.display());
    let mut server = Server::cronpush(&[&flag, "--web.enable-lifecycle"]);
    assert_eq!(server.put("/metrics/job/a", "x 1\n").status, 200);
    assert_eq!(server.post("/-/quit", "").status, 200);
    assert_eq!(server.wait_exit(Duration::from_secs(15)), Some(0));
    let restarted = Server::cronpush(&[&flag]);
    assert!(restarted.pushed_series().contains(&"x{instance=\"\",job=\"a\"} 1".to_string()));
}

/// Starts the gateway on `file`, which must fail at once; returns what it printed.
fn start_fails(file: &std::path::Path) -> String {
    let logs = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cronpush"))
        .args(["gateway", "--web.listen-address=127.0.0.1:0", &format!("--persistence.file={}", file.display())])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(logs.path().join("stderr")).unwrap())
        .spawn()
        .unwrap();
    let exited = support::eventually(Duration::from_secs(20), || child.try_wait().unwrap().is_some());
    let stderr = std::fs::read_to_string(logs.path().join("stderr")).unwrap();
    if !exited {
        let _ = child.kill();
        panic!("started on the damaged {}:\n{stderr}", file.display());
    }
    assert!(!child.wait().unwrap().success(), "started on the damaged {}:\n{stderr}", file.display());
    stderr
}

/// Found in the record of the one group of `store_file`.
const MARKER: &str = "a-label-value-to-find-the-record-by";

/// A store file as the gateway leaves it, with one group in it.
fn store_file(dir: &std::path::Path) -> std::path::PathBuf {
    let file = dir.join("gateway.redb");
    let mut server = Server::cronpush(&[&format!("--persistence.file={}", file.display())]);
    assert_eq!(server.put("/metrics/job/a", &format!("x{{l=\"{MARKER}\"}} 1\n")).status, 200);
    server.signal("TERM");
    assert_eq!(server.wait_exit(Duration::from_secs(15)), Some(0));
    file
}

#[test]
fn a_damaged_or_foreign_file_stops_the_start_with_a_clear_error_and_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let healthy = std::fs::read(store_file(dir.path())).unwrap();
    // The reference Pushgateway's own file (Go gob), as a user switching over would have it.
    let reference_file = dir.path().join("reference.store");
    let reference_flag = format!("--persistence.file={}", reference_file.display());
    let mut reference = Server::start(&support::peer(support::REFERENCE), &[], &[&reference_flag], "");
    assert_eq!(reference.put("/metrics/job/a", "x 1\n").status, 200);
    reference.signal("TERM");
    reference.wait_exit(Duration::from_secs(15));
    // The group's own record damaged, as by a bad SD card block (damage to free space is
    // harmless and rightly goes unnoticed).
    let at = healthy.windows(MARKER.len()).position(|w| w == MARKER.as_bytes()).expect("the record is in the file");
    let mut flipped = healthy.clone();
    for byte in &mut flipped[at..at + 8] {
        *byte ^= 0x5a;
    }
    let cases: [(&str, Vec<u8>); 4] = [
        ("garbage", b"not a store at all".to_vec()),
        ("the reference's file", std::fs::read(&reference_file).expect("the reference wrote its file")),
        ("a truncated store", healthy[..healthy.len() / 3].to_vec()),
        ("a store with a damaged page", flipped),
    ];
    for (what, bytes) in cases {
        let file = dir.path().join("damaged.redb");
        std::fs::write(&file, &bytes).unwrap();
        let stderr = start_fails(&file);
        assert!(
            stderr.contains(&file.display().to_string())
                && stderr.contains("damaged")
                && stderr.contains("--persistence.start-empty-if-damaged"),
            "{what}: {stderr}"
        );
        assert!(std::fs::read(&file).unwrap() == bytes, "{what}: the file is kept as it was");
        std::fs::remove_file(&file).unwrap();
    }
}

#[test]
fn the_operator_may_start_empty_and_the_damaged_file_is_moved_aside() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gateway.redb");
    std::fs::write(&file, b"not a store at all").unwrap();
    let flag = format!("--persistence.file={}", file.display());
    let server = Server::cronpush(&[&flag, "--persistence.start-empty-if-damaged"]);
    assert!(server.pushed_series().is_empty());
    let aside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("gateway.redb.damaged-"))
        .collect();
    assert_eq!(aside.len(), 1, "moved aside once: {aside:?}");
    assert_eq!(std::fs::read(&aside[0]).unwrap(), b"not a store at all");
    assert!(server.stderr().contains(&aside[0].display().to_string()), "the log says where:\n{}", server.stderr());
    // The new store works, and the flag does nothing to a healthy file.
    assert_eq!(server.put("/metrics/job/a", "x 1\n").status, 200);
    drop(server);
    let restarted = Server::cronpush(&[&flag, "--persistence.start-empty-if-damaged"]);
    assert!(restarted.pushed_series().contains(&"x{instance=\"\",job=\"a\"} 1".to_string()));
}

#[test]
fn two_gateways_cannot_share_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let flag = format!("--persistence.file={}", dir.path().join("gateway.redb").display());
    let _first = Server::cronpush(&[&flag]);
    let stderr = start_fails(&dir.path().join("gateway.redb"));
    assert!(stderr.contains("in use by another process"), "{stderr}");
}

#[test]
fn bad_flags_are_refused_before_anything_starts() {
    for flags in [
        &["--persistence.interval=5"][..],
        &["--web.external-url=localhost:8080/x"],
        &["--log.level=loud"],
        &["--web.telemetry-path=metrics"],
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_cronpush"))
            .arg("gateway")
            .args(flags)
            .arg("--web.listen-address=127.0.0.1:0")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{flags:?}");
        assert!(!output.stderr.is_empty(), "{flags:?} must say what is wrong");
    }
}

/// Starts the gateway on a damaged store file that --persistence.start-empty-if-damaged would move
/// aside, with `flags` that must refuse the start; checks the file and its folder are left as
/// they were, and returns the exit code and stderr.
fn refused_start_keeps_the_store(dir: &std::path::Path, flags: &[String]) -> (Option<i32>, String) {
    let store = dir.join("gateway.redb");
    std::fs::write(&store, b"not a store file").unwrap();
    let before = std::fs::read_dir(dir).unwrap().count();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_cronpush"))
        .arg("gateway")
        .arg(format!("--persistence.file={}", store.display()))
        .arg("--persistence.start-empty-if-damaged")
        .args(flags)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(std::fs::read(&store).unwrap(), b"not a store file", "{stderr}");
    assert_eq!(std::fs::read_dir(dir).unwrap().count(), before, "nothing written beside the store file");
    (output.status.code(), stderr)
}

#[test]
fn a_bad_listen_address_is_refused_before_the_store_file_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr) = refused_start_keeps_the_store(dir.path(), &["--web.listen-address=9091".into()]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--web.listen-address \"9091\": missing port in address"), "{stderr}");
}

#[test]
fn an_unreadable_certificate_is_refused_before_the_store_file_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, web_config) = (dir.path().join("tls.crt"), dir.path().join("tls.key"), dir.path().join("web.yml"));
    std::fs::write(&cert, "not a certificate\n").unwrap();
    std::fs::write(&key, "not a key\n").unwrap();
    let yaml = format!("tls_server_config:\n  cert_file: {}\n  key_file: {}\n", cert.display(), key.display());
    std::fs::write(&web_config, yaml).unwrap();
    let flags = [format!("--web.config.file={}", web_config.display()), "--web.listen-address=127.0.0.1:0".into()];
    let (code, stderr) = refused_start_keeps_the_store(dir.path(), &flags);
    assert_ne!(code, Some(0), "{stderr}");
    assert!(stderr.contains("tls.crt"), "the error names the certificate: {stderr}");
}
