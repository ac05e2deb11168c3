//! `--push.expire-after`, with the real binary: a group not pushed within the limit disappears
//! from the scrape and the API as if deleted, one pushed again stays, nothing expires without
//! the flag, an expired group stays gone after a restart, and a bad value stops the start.

use std::time::{Duration, Instant, SystemTime};

use support::Server;

/// The jobs of the groups `/api/v1/metrics` lists, sorted.
fn api_jobs(server: &Server) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(&server.get("/api/v1/metrics").body).unwrap();
    let mut jobs: Vec<String> =
        v["data"].as_array().unwrap().iter().map(|g| g["labels"]["job"].as_str().unwrap().to_string()).collect();
    jobs.sort();
    jobs
}

fn scraped(server: &Server, job: &str) -> bool {
    server.pushed_series().iter().any(|s| s.contains(&format!("job=\"{job}\"")))
}

#[test]
fn a_stale_group_expires_and_a_pushed_one_stays() {
    let server = Server::cronpush(&["--push.expire-after=2s"]);
    // Taken before the push, so the gateway's push time is no earlier than this.
    let pushed = Instant::now();
    assert_eq!(server.put("/metrics/job/stale", "s 1\n").status, 200);
    let mut gone_after = None;
    // Past the limit plus a sweep interval, re-pushing `alive` every 500 ms.
    while pushed.elapsed() < Duration::from_millis(4500) {
        assert_eq!(server.put("/metrics/job/alive", "a 1\n").status, 200);
        for _ in 0..5 {
            if gone_after.is_none() && !scraped(&server, "stale") && !api_jobs(&server).contains(&"stale".into()) {
                gone_after = Some(pushed.elapsed());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let gone_after = gone_after.expect("the stale group never expired");
    assert!(gone_after >= Duration::from_secs(2), "expired early, after {gone_after:?}");
    assert!(gone_after < Duration::from_secs(5), "expired late, after {gone_after:?}");
    assert!(scraped(&server, "alive"), "a group pushed every 500 ms expired");
    assert_eq!(api_jobs(&server), ["alive"]);
    let log = server.stderr();
    let expired: Vec<&str> = log.lines().filter(|l| l.contains("expired a group")).collect();
    assert!(expired.len() == 1 && expired[0].contains("stale"), "one line per expired group:\n{log}");
}

#[test]
fn without_the_flag_nothing_expires() {
    let server = Server::cronpush(&[]);
    assert_eq!(server.put("/metrics/job/kept", "k 1\n").status, 200);
    std::thread::sleep(Duration::from_secs(3));
    assert!(scraped(&server, "kept"));
    assert_eq!(api_jobs(&server), ["kept"]);
}

#[test]
fn an_expired_group_is_gone_from_the_file_too() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gateway.data");
    let flag = format!("--persistence.file={}", file.display());
    let mut server = Server::cronpush(&[&flag, "--persistence.interval=1s", "--push.expire-after=2s"]);
    assert_eq!(server.put("/metrics/job/stale", "s 1\n").status, 200);
    // The store file or its push log (`<file>.log`), whichever was written last.
    let log = dir.path().join("gateway.data.log");
    let modified = || [&file, &log].iter().filter_map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok()).max();
    assert!(support::eventually(Duration::from_secs(10), || modified().is_some()), "never saved");
    let saved_with_group: SystemTime = modified().unwrap();
    assert!(support::eventually(Duration::from_secs(5), || api_jobs(&server).is_empty()), "never expired");
    // The expiry marks the store changed, so the file is written again without a shutdown.
    assert!(
        support::eventually(Duration::from_secs(10), || modified() != Some(saved_with_group)),
        "the store was not written after the expiry"
    );
    server.signal("KILL");
    server.wait_exit(Duration::from_secs(10));
    // Restarted without the flag: the group is gone because the file no longer holds it.
    let restarted = Server::cronpush(&[&flag]);
    assert!(api_jobs(&restarted).is_empty());
    assert!(!scraped(&restarted, "stale"));
}

#[test]
fn a_bad_limit_is_refused_at_start() {
    for value in ["soon", "-1s", "5"] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_cronpush"))
            .args(["gateway", "--web.listen-address=127.0.0.1:0", &format!("--push.expire-after={value}")])
            .output()
            .unwrap();
        assert!(!output.status.success(), "started with --push.expire-after={value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("--push.expire-after") && stderr.contains("not a duration"), "{value}: {stderr}");
    }
}
