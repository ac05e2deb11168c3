//! A unit file written for the latest Pushgateway release (1.11,
//! `tests/upstream/pushgateway-1.11.service`, every flag of its `--help` set) starts the real
//! cronpush binary with the same command line, which then serves, lists every flag in
//! `/api/v1/status` as upstream does, and says in its log which flags have nothing to do here.
//! `--web.systemd-socket` is served on a socket passed by `systemd-socket-activate` (Debian's
//! `systemd`, which `scripts/test` installs for tests/systemd_unit.rs).

use std::time::Duration;

use serde_json::Value;
use support::Server;

const UNIT: &str = include_str!("upstream/pushgateway-1.11.service");

/// The unit's ExecStart words after the binary, continued lines joined, as systemd reads them.
fn exec_start_flags() -> Vec<String> {
    let mut words = Vec::new();
    for line in UNIT.lines().skip_while(|l| !l.starts_with("ExecStart=")) {
        words.extend(line.split_whitespace().filter(|w| *w != "\\").map(String::from));
        if !line.ends_with('\\') {
            break;
        }
    }
    assert_eq!(words.first().map(String::as_str), Some("ExecStart=/usr/bin/pushgateway"));
    words.split_off(1)
}

#[test]
fn a_pushgateway_1_11_unit_starts_cronpush_which_serves_and_lists_every_flag() {
    let store = tempfile::tempdir().unwrap();
    let store_file = store.path().join("metrics");
    // Only where the test must not take the machine's ports or files: the listen addresses
    // become ports the system picks, the store file a temporary one. Everything else is as
    // written.
    let flags: Vec<String> = exec_start_flags()
        .into_iter()
        .map(|flag| match flag.split_once('=') {
            Some(("--web.listen-address", _)) => "--web.listen-address=127.0.0.1:0".into(),
            Some(("--persistence.file", _)) => format!("--persistence.file={}", store_file.display()),
            _ => flag,
        })
        .collect();
    let args: Vec<&str> = flags.iter().map(String::as_str).collect();
    let gateway = Server::cronpush(&args);

    // --push.disable-consistency-check: 202, as upstream answers it.
    assert_eq!(gateway.put("/metrics/job/nightly", "backup_ok 1\n").status, 202);
    assert!(gateway.pushed_series().iter().any(|s| s == "backup_ok{instance=\"\",job=\"nightly\"} 1"));
    // --push.enable-utf8-names: a quoted name and a U__ label name in the path are taken, and
    // scraped with the default (underscores) escaping.
    assert_eq!(gateway.put("/metrics/job/utf8/U__http_2e_method/get", "{\"backup.ok\"} 1\n").status, 202);
    assert!(
        gateway.pushed_series().iter().any(|s| s == "backup_ok{http_method=\"get\",instance=\"\",job=\"utf8\"} 1"),
        "{:?}",
        gateway.pushed_series()
    );

    let status: Value = serde_json::from_str(&gateway.get("/api/v1/status").body).unwrap();
    let listed = status["data"]["flags"].as_object().unwrap();
    let names: Vec<&str> = listed.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "log.format",
            "log.level",
            "persistence.file",
            "persistence.interval",
            "push.disable-consistency-check",
            "push.enable-utf8-names",
            "web.config.file",
            "web.enable-admin-api",
            "web.enable-lifecycle",
            "web.external-url",
            "web.listen-address",
            "web.route-prefix",
            "web.systemd-socket",
            "web.telemetry-path",
        ]
    );
    for (name, value) in [
        ("log.format", "json"),
        ("log.level", "debug"),
        ("persistence.interval", "1m0s"),
        ("push.disable-consistency-check", "true"),
        ("push.enable-utf8-names", "true"),
        ("web.enable-admin-api", "true"),
        ("web.enable-lifecycle", "true"),
        ("web.external-url", "http://pi:8080/pushgateway/"),
        ("web.route-prefix", "/"),
        ("web.systemd-socket", "false"),
    ] {
        assert_eq!(listed[name], value, "{name}");
    }

    let log = gateway.stderr();
    assert!(log.contains("--persistence.interval is accepted and has nothing to do here"), "{log}");
}

/// `--web.systemd-socket` serves on the socket systemd passes, and binds no
/// --web.listen-address, as exporter-toolkit does; without a passed socket it does not start.
#[test]
fn web_systemd_socket_serves_on_the_socket_systemd_passes() {
    let activate = support::peer("systemd-socket-activate");
    let binary = support::cronpush_binary().to_str().unwrap().to_string();
    // systemd-socket-activate binds the port and starts cronpush with it as fd 3 (LISTEN_FDS,
    // LISTEN_PID); `Server::start` then finds the port in cronpush's log.
    let listen = format!("127.0.0.1:{}", support::free_port());
    let leading = ["-l", listen.as_str(), binary.as_str(), "gateway"];
    // It starts the program on the first connection only, as systemd does by default: knock.
    let knock = listen.clone();
    std::thread::spawn(move || {
        support::eventually(Duration::from_secs(10), || std::net::TcpStream::connect(&knock).is_ok())
    });
    let gateway = Server::start(&activate, &leading, &["--web.systemd-socket"], "");
    assert!(gateway.stderr().contains("listening on a socket from systemd"), "{}", gateway.stderr());
    assert_eq!(gateway.put("/metrics/job/activated", "up 1\n").status, 200);
    assert!(gateway.pushed_series().iter().any(|s| s == "up{instance=\"\",job=\"activated\"} 1"));

    let alone = std::process::Command::new(support::cronpush_binary())
        .args(["gateway", "--web.systemd-socket", "--web.listen-address=127.0.0.1:0"])
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_PID")
        .output()
        .unwrap();
    assert!(!alone.status.success());
    let said = String::from_utf8_lossy(&alone.stderr);
    assert!(said.contains("no socket activation file descriptors found"), "{said}");
}

/// kingpin's own flags of the 1.11 `--help`: `--version` (to stdout since 1.9) and `-h`.
#[test]
fn version_and_help_are_answered_on_stdout() {
    for flag in ["--version", "-h", "--help"] {
        let out = std::process::Command::new(support::cronpush_binary()).args(["gateway", flag]).output().unwrap();
        assert!(out.status.success(), "{flag}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(!out.stdout.is_empty(), "{flag}");
    }
}
