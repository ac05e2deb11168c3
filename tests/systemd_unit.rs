//! The gateway's systemd unit (`manifests/gateway/cronpush-gateway.service`) and its
//! `/etc/default` file: systemd accepts the unit without a warning, rates its sandboxing, keeps
//! the hardening the issue asks for, and its command line — with every example of the default
//! file — starts the real binary, which answers, ignores the reload signal and saves on SIGTERM.
//!
//! `systemd-analyze` (Debian's `systemd`) is installed by `scripts/test`; missing, it is a
//! failure, never a skip.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use support::Server;

const UNIT: &str = include_str!("../manifests/gateway/cronpush-gateway.service");
const UNIT_NAME: &str = "cronpush-gateway.service";
const DEFAULTS: &str = include_str!("../manifests/gateway/cronpush-gateway.default");
/// Where the unit expects the binary; the tests point it at the one cargo built.
const INSTALLED_BINARY: &str = "/usr/bin/cronpush";
/// The variable the default file sets and ExecStart expands.
const ARGS_VARIABLE: &str = "CRONPUSH_GATEWAY_ARGS";
/// `systemd-analyze security` rates the unit 1.1 with systemd 252: what is left is the network
/// a gateway needs (AF_INET/AF_INET6/AF_UNIX, no PrivateNetwork, no IP allow list), the host's
/// root directory and ProtectClock's read access to the RTC. Any loosening fails here.
const MAX_EXPOSURE: f64 = 1.1;

// ---------------------------------------------------------------------------------------------
// Reading the unit and the default file

/// Every `Key=value` of the unit with its section, in order (a key may repeat).
fn settings(unit: &str) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut settings = Vec::new();
    for line in unit.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
        } else if let Some((key, value)) = line.split_once('=') {
            settings.push((section.clone(), key.trim().to_string(), value.trim().to_string()));
        }
    }
    settings
}

/// The values of `key` in `section`, in order.
fn values(section: &str, key: &str) -> Vec<String> {
    settings(UNIT).into_iter().filter(|(s, k, _)| s == section && k == key).map(|(_, _, v)| v).collect()
}

/// The single value of `key` in `section`.
fn value(section: &str, key: &str) -> String {
    match values(section, key).as_slice() {
        [one] => one.clone(),
        other => panic!("[{section}] {key}= is set {} times in the unit, expected once: {other:?}", other.len()),
    }
}

/// The value of `CRONPUSH_GATEWAY_ARGS=` on one line of the default file, quotes removed, as
/// systemd's EnvironmentFile= reads it.
fn args_assignment(line: &str) -> Option<String> {
    let value = line.trim().strip_prefix(ARGS_VARIABLE)?.strip_prefix('=')?;
    Some(value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value).to_string())
}

/// ExecStart's words after the binary, with `$CRONPUSH_GATEWAY_ARGS` expanded as systemd does
/// an unquoted `$VAR`: split on whitespace, nothing when empty.
fn exec_start_args(gateway_args: &str) -> Vec<String> {
    let exec_start = value("Service", "ExecStart");
    let mut words = exec_start.split_whitespace();
    assert_eq!(words.next(), Some(INSTALLED_BINARY), "ExecStart must run {INSTALLED_BINARY}: {exec_start}");
    words
        .flat_map(|word| {
            if word == format!("${ARGS_VARIABLE}") {
                gateway_args.split_whitespace().map(String::from).collect()
            } else {
                assert!(!word.contains('$'), "ExecStart expands an unexpected variable: {word}");
                vec![word.to_string()]
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// systemd-analyze

/// The unit, runnable here: in a fresh directory under its own name, ExecStart pointing at the
/// binary cargo built (`verify` checks that the executable exists).
struct InstalledUnit {
    dir: tempfile::TempDir,
}

impl InstalledUnit {
    fn new(unit: &str) -> InstalledUnit {
        let dir = tempfile::tempdir().expect("temporary directory");
        let exec_start = format!("ExecStart={INSTALLED_BINARY} ");
        assert!(unit.contains(&exec_start), "the unit has no line starting with {exec_start:?}");
        let here = unit.replace(&exec_start, &format!("ExecStart={} ", env!("CARGO_BIN_EXE_cronpush")));
        std::fs::write(dir.path().join(UNIT_NAME), here).expect("write the unit");
        InstalledUnit { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join(UNIT_NAME)
    }
}

fn systemd_analyze(args: &[&str], unit: &Path) -> Output {
    Command::new("systemd-analyze")
        .args(args)
        .arg(unit)
        .output()
        .unwrap_or_else(|e| panic!("cannot run systemd-analyze ({e}): install Debian's `systemd` (scripts/test does)"))
}

/// `systemd-analyze verify`: `Ok` when it passes without a word about the unit, else what it
/// said. Unknown keys, keys in the wrong section and bad values are only warnings with exit 0,
/// so stderr counts as much as the exit status.
fn verify(unit: &Path) -> Result<(), String> {
    let output = systemd_analyze(&["verify"], unit);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let about_us: Vec<&str> = stderr.lines().filter(|l| l.contains("cronpush")).collect();
    if output.status.success() && about_us.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "systemd-analyze verify {} exited with {}:\n{stderr}{}",
            unit.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout)
        ))
    }
}

#[test]
fn systemd_verifies_the_unit_without_a_warning() {
    let unit = InstalledUnit::new(UNIT);
    if let Err(report) = verify(&unit.path()) {
        panic!("{report}");
    }
}

/// The check above bites: a key in the wrong section (StartLimitIntervalSec=, an easy mistake) is
/// only a warning to systemd, and a failure here.
#[test]
fn a_misplaced_key_fails_verification() {
    let misplaced = UNIT.replace("[Service]\n", "[Service]\nStartLimitIntervalSec=120s\n");
    assert!(
        verify(&InstalledUnit::new(&misplaced).path()).is_err(),
        "verify accepted StartLimitIntervalSec in [Service]"
    );
}

#[test]
fn the_sandbox_exposure_stays_low() {
    let unit = InstalledUnit::new(UNIT);
    let output = systemd_analyze(&["security", "--offline=yes", "--no-pager"], &unit.path());
    let table = String::from_utf8_lossy(&output.stdout);
    let report = format!("{table}{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "systemd-analyze security failed with {}:\n{report}", output.status);
    // "→ Overall exposure level for cronpush-gateway.service: 1.1 OK 🙂"
    let prefix = format!("Overall exposure level for {UNIT_NAME}: ");
    let exposure: f64 = table
        .lines()
        .find_map(|l| l.split_once(&prefix).map(|(_, rest)| rest))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|score| score.parse().ok())
        .unwrap_or_else(|| panic!("no overall exposure level in the output:\n{report}"));
    assert!(exposure <= MAX_EXPOSURE, "exposure {exposure} is above {MAX_EXPOSURE}:\n{report}");
}

// ---------------------------------------------------------------------------------------------
// What the unit must keep

#[test]
fn the_unit_keeps_the_hardening_the_issue_names() {
    let own_user = value("Service", "DynamicUser") == "yes"
        || values("Service", "User").iter().any(|u| !u.is_empty() && u != "root" && u != "0");
    assert!(own_user, "the gateway must run as its own user (DynamicUser=yes or User=<not root>)");
    for (key, expected) in [
        ("StateDirectory", "cronpush"),
        ("ProtectSystem", "strict"),
        ("NoNewPrivileges", "yes"),
        ("CapabilityBoundingSet", ""),
        ("AmbientCapabilities", ""),
        ("KillSignal", "SIGTERM"),
        ("Restart", "on-failure"),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
        ("EnvironmentFile", "-/etc/default/cronpush-gateway"),
    ] {
        assert_eq!(value("Service", key), expected, "[Service] {key}=");
    }
    // The store goes where the sandbox lets it write: the state directory.
    let state_file = format!("--persistence.file=/var/lib/{}/", value("Service", "StateDirectory"));
    assert!(
        exec_start_args("").iter().any(|a| a.starts_with(&state_file)),
        "ExecStart must keep the store under the state directory ({state_file}…)"
    );
    assert_eq!(values("Install", "WantedBy"), ["multi-user.target"]);
}

#[test]
fn the_default_file_sets_no_flags_and_its_examples_are_commented_out() {
    let active: Vec<String> =
        DEFAULTS.lines().filter(|l| !l.trim_start().starts_with('#')).filter_map(args_assignment).collect();
    assert_eq!(active, [""], "the default file must set {ARGS_VARIABLE}=\"\" exactly once");
    assert!(examples().len() >= 3, "the default file lost its examples");
}

/// The commented-out `#CRONPUSH_GATEWAY_ARGS="…"` examples of the default file.
fn examples() -> Vec<String> {
    DEFAULTS.lines().filter_map(|l| l.trim().strip_prefix('#')).filter_map(args_assignment).collect()
}

// ---------------------------------------------------------------------------------------------
// The unit's command line, run for real

/// Runs ExecStart with `gateway_args` as the default file's value, the state directory moved
/// to a temporary one and a free loopback port instead of any listen address; ready when
/// `{prefix}/-/ready` answers.
fn start_as_the_unit_does(gateway_args: &str, state_dir: &Path, prefix: &str) -> Server {
    let args: Vec<String> = exec_start_args(gateway_args)
        .into_iter()
        .map(|arg| {
            if arg.starts_with("--web.listen-address=") {
                "--web.listen-address=127.0.0.1:0".to_string()
            } else {
                arg.replace("=/var/lib/cronpush/", &format!("={}/", state_dir.display()))
            }
        })
        .collect();
    assert_eq!(args.first().map(String::as_str), Some("gateway"), "ExecStart must run `cronpush gateway`");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start(Path::new(env!("CARGO_BIN_EXE_cronpush")), &["gateway"], &args[1..], prefix)
}

#[test]
fn the_units_command_line_serves_ignores_reload_and_saves_on_stop() {
    let state = tempfile::tempdir().expect("temporary directory");
    let mut server = start_as_the_unit_does("", state.path(), "");
    assert_eq!(server.get("/-/ready").status, 200);
    assert_eq!(server.put("/metrics/job/backup", "last_success 1\n").status, 200);

    server.signal("HUP"); // ExecReload
    std::thread::sleep(Duration::from_millis(300));
    assert!(server.is_running(), "`systemctl reload` killed the gateway:\n{}", server.stderr());
    assert_eq!(server.get("/-/ready").status, 200);

    server.signal("TERM"); // KillSignal
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0), "{}", server.stderr());
    let store = state.path().join("gateway.data");
    assert!(store.is_file(), "no store at {} after SIGTERM:\n{}", store.display(), server.stderr());
    let restarted = start_as_the_unit_does("", state.path(), "");
    assert!(restarted.get("/metrics").body.contains("last_success{"), "the push did not survive a restart");
}

#[test]
fn every_example_of_the_default_file_starts() {
    for example in examples() {
        let state = tempfile::tempdir().expect("temporary directory");
        let prefix = route_prefix(&example);
        assert!(!example.contains("--persistence.file"), "the unit sets --persistence.file already: {example}");
        assert!(exec_start_args(&example).len() > exec_start_args("").len(), "the example added no flags: {example}");
        let mut server = start_as_the_unit_does(&example, state.path(), &prefix);
        let ready = server.get(&format!("{prefix}/-/ready"));
        assert_eq!(ready.status, 200, "{example}: {}", ready.body);
        server.signal("TERM");
        assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0), "{example}:\n{}", server.stderr());
    }
}

/// Where an example's routes are: `--web.route-prefix`, else the path of `--web.external-url`.
fn route_prefix(example: &str) -> String {
    let flag =
        |name: &str| example.split_whitespace().find_map(|w| w.strip_prefix(name)?.strip_prefix('=')).map(String::from);
    let prefix = flag("--web.route-prefix").filter(|p| !p.is_empty()).or_else(|| {
        let url = flag("--web.external-url")?;
        let rest = url.split_once("://")?.1;
        rest.split_once('/').map(|(_, path)| format!("/{path}"))
    });
    prefix.unwrap_or_default().trim_end_matches('/').to_string()
}
