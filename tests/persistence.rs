//! Persistence and process life, with the real binary: what was pushed survives a clean
//! restart, the file is written at the interval, SIGHUP does no harm (Debian's unit for the
//! reference sends it on reload, and the reference dies of it), and a damaged file stops the
//! start with a clear error instead of silently becoming an empty gateway.

mod support;

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
fn the_store_is_saved_at_the_interval_without_a_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gateway.data");
    let flag = format!("--persistence.file={}", file.display());
    let mut server = Server::cronpush(&[&flag, "--persistence.interval=1s"]);
    assert_eq!(server.put("/metrics/job/a", "x 1\n").status, 200);
    assert!(support::eventually(Duration::from_secs(10), || file.exists()), "not saved within the interval");
    let lines = server.exact_pushed_lines();
    server.signal("KILL");
    server.wait_exit(Duration::from_secs(10));
    let restarted = Server::cronpush(&[&flag]);
    assert_eq!(restarted.exact_pushed_lines(), lines);
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

#[test]
fn a_damaged_file_stops_the_start_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gateway.data");
    std::fs::write(&file, b"not a snapshot at all").unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_cronpush"))
        .args(["gateway", "--web.listen-address=127.0.0.1:0", &format!("--persistence.file={}", file.display())])
        .output()
        .unwrap();
    assert!(!output.status.success(), "started on a damaged file");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&file.display().to_string()) && stderr.contains("damaged"), "{stderr}");
    assert_eq!(std::fs::read(&file).unwrap(), b"not a snapshot at all", "the file is kept as it was");
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
