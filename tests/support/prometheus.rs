//! A real Prometheus (Debian's package) scraping one gateway every second, as the README's scrape
//! configuration has it (`honor_labels: true`, job `cronpush-gateway`), optionally evaluating a
//! rule file; killed when dropped. The tests that talk to it add their own queries on top.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::{NotReady, Server};

/// The scrape job the shipped rules and the README name.
pub const SCRAPE_JOB: &str = "cronpush-gateway";
/// What `cronpush start` and `cronpush sidecar` push (README, "What a CronJob run pushes").
pub const PUSHED_SERIES: [&str; 23] = [
    "cronjob_info",
    "cronjob_suspended",
    "cronjob_last_created_scheduled_timestamp_seconds",
    "cronjob_created_timestamp_seconds",
    "cronjob_status_last_successful_timestamp_seconds",
    "cronjob_last_start_timestamp_seconds",
    "cronjob_last_manual_start_timestamp_seconds",
    "cronjob_last_scheduled_timestamp_seconds",
    "cronjob_previous_scheduled_timestamp_seconds",
    "cronjob_next_scheduled_timestamp_seconds",
    "cronjob_schedule_period_seconds",
    "cronjob_schedule_grace_seconds",
    "cronjob_max_run_duration_seconds",
    "cronjob_last_completion_timestamp_seconds",
    "cronjob_last_ended_scheduled_timestamp_seconds",
    "cronjob_last_ended_previous_scheduled_timestamp_seconds",
    "cronjob_last_success_scheduled_timestamp_seconds",
    "cronjob_last_result",
    "cronjob_last_exit_code",
    "cronjob_last_termination_info",
    "cronjob_last_duration_seconds",
    "cronjob_last_success_timestamp_seconds",
    "cronjob_last_failure_timestamp_seconds",
];
/// What the gateway adds to every group.
pub const GATEWAY_SERIES: [&str; 2] = ["push_time_seconds", "push_failure_time_seconds"];
/// What the gateway exports of itself that the rules read.
pub const GATEWAY_OWN_SERIES: [&str; 1] = ["process_start_time_seconds"];
const READY_WAIT: Duration = Duration::from_secs(30);

pub struct Prometheus {
    child: Child,
    pub base: String,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus with 1 s scrape and evaluation intervals; `rules` is copied next to its
    /// configuration (see `rules_copy`); `features` go to `--enable-feature`.
    pub fn start(gateway: &Server, rules: Option<&Path>, features: &[&str]) -> Prometheus {
        let dir = tempfile::tempdir().expect("temporary directory");
        let rule_files = match rules {
            Some(rules) => {
                let copy = dir.path().join("rules.yml");
                std::fs::copy(rules, &copy).expect("copy the rules");
                format!("rule_files:\n  - '{}'\n", copy.display())
            }
            None => String::new(),
        };
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n{rule_files}\
                 scrape_configs:\n  - job_name: {SCRAPE_JOB}\n    honor_labels: true\n    \
                 static_configs:\n      - targets: ['127.0.0.1:{}']\n",
                gateway.port
            ),
        )
        .expect("prometheus.yml");
        let flags: Vec<String> = features.iter().map(|f| format!("--enable-feature={f}")).collect();
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        Prometheus::launch(dir, &config, &flags, "--storage.tsdb.path")
    }

    /// Starts Prometheus with the configuration `config` (YAML), `files` copied beside it under
    /// their names, and `flags`. With `agent`, in agent mode (`--enable-feature=agent`, its own
    /// storage flag), as a cluster's scraper that remote-writes.
    pub fn start_config(config: &str, files: &[(&str, &Path)], flags: &[&str], agent: bool) -> Prometheus {
        let dir = tempfile::tempdir().expect("temporary directory");
        for (name, file) in files {
            std::fs::copy(file, dir.path().join(name)).unwrap_or_else(|e| panic!("copy {name}: {e}"));
        }
        let path = dir.path().join("prometheus.yml");
        std::fs::write(&path, config).expect("prometheus.yml");
        let mut flags: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
        let storage = if agent {
            flags.push("--enable-feature=agent".into());
            "--storage.agent.path"
        } else {
            "--storage.tsdb.path"
        };
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        Prometheus::launch(dir, &path, &flags, storage)
    }

    fn launch(dir: tempfile::TempDir, config: &Path, flags: &[&str], storage: &str) -> Prometheus {
        let program = super::peer("prometheus");
        let log = dir.path().join("log");
        let client = super::client();
        // Prometheus logs the address it was given, not the port it bound: its port is chosen first.
        let (child, base) = super::on_free_port("prometheus", |port| {
            let mut child = Command::new(&program)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("{storage}={}", dir.path().join("data").display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .args(flags)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).expect("log file"))
                .spawn()
                .expect("cannot start prometheus");
            let base = format!("http://127.0.0.1:{port}");
            let ready = || client.get(format!("{base}/-/ready")).send().is_ok_and(|r| r.status().is_success());
            match super::wait_ready(&mut child, READY_WAIT, ready) {
                Ok(()) => Ok((child, base)),
                Err(NotReady::Exited(status)) => Err(format!("exit status {status}\n{}", super::read_log(&log))),
                Err(NotReady::TimedOut) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("prometheus was not ready within {READY_WAIT:?}:\n{}", super::read_log(&log))
                }
            }
        });
        Prometheus { child, base, dir }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// The rule file Prometheus reads: the copy of what `start` was given.
    pub fn rules_copy(&self) -> PathBuf {
        self.dir.path().join("rules.yml")
    }

    /// A GET on the HTTP API: the status code and the JSON answer.
    pub fn get(&self, path: &str, params: &[(&str, &str)]) -> (u16, Value) {
        let reply = super::client()
            .get(format!("{}{path}", self.base))
            .query(params)
            .send()
            .unwrap_or_else(|e| panic!("GET {path} {params:?}: {e}"));
        let status = reply.status().as_u16();
        let text = reply.text().unwrap_or_else(|e| panic!("GET {path} {params:?}: {e}"));
        let json =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {path} {params:?}: not JSON ({e}): {text}"));
        (status, json)
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
