//! Shared by the black-box tests: start the real `cronpush` binary, or a reference Pushgateway
//! (Debian's `prometheus-pushgateway` 1.5.1, or today's release that scripts/build-pushgateway
//! builds), on a free loopback port, and talk HTTP to it.
//!
//! A missing peer is a failure with a clear message, never a skip: `scripts/test` installs them.
//!
//! A crate of its own (`cronpush-test-support`, a dev-dependency of the root package, named
//! `support` in the tests and benchmarks), not a module each test includes with `mod support;`:
//! a module is compiled into every test binary, where each helper that binary does not call
//! is dead code, so the module needed a blanket `#![allow(dead_code)]` that also hid what no
//! test calls at all; and the benchmarks could only reach it with `#[path]`. As a library its
//! public helpers are its interface, compiled once, and the compiler still reports every
//! private item nothing uses. Splitting it into modules each test declares would not have
//! sufficed: within one module, too, each binary calls only some of the helpers.
//!
//! A library is not told where cargo put the `cronpush` binary (`CARGO_BIN_EXE_cronpush` is
//! given to the root package's tests and benchmarks only): [`cronpush_binary`] finds it beside
//! the running test.

pub mod clients;
pub mod control_plane;
pub mod https;
pub mod kube_api;
pub mod kubelet;
pub mod kustomize;
pub mod node;
pub mod prometheus;
pub mod promql;
pub mod tls_gateway;
pub mod webhook;

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const REFERENCE: &str = "prometheus-pushgateway";

/// The Pushgateway releases the tests compare cronpush with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Release {
    /// Debian's `prometheus-pushgateway` (1.5.1), what the suite compared with first.
    Debian,
    /// The latest release, built from the Go module proxy at the version that
    /// scripts/pushgateway/go.mod pins: the one cronpush follows where the two differ.
    Today,
}

impl Release {
    /// The release's program; a clear failure when it is missing.
    pub fn program(self) -> PathBuf {
        match self {
            Release::Debian => peer(REFERENCE),
            Release::Today => {
                let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo("target"));
                let path = target.join("peers").join(format!("pushgateway-{}", today_version())).join("pushgateway");
                assert!(
                    path.is_file(),
                    "{} is missing: run ./scripts/test (or scripts/build-pushgateway), which builds it",
                    path.display()
                );
                path
            }
        }
    }
}

/// The version of today's Pushgateway that scripts/pushgateway/go.mod pins, as `v1.11.5`.
pub fn today_version() -> String {
    let go_mod = std::fs::read_to_string(repo("scripts/pushgateway/go.mod")).expect("scripts/pushgateway/go.mod");
    go_mod
        .lines()
        .find_map(|l| l.trim().strip_prefix("require github.com/prometheus/pushgateway "))
        .map(|v| v.trim().to_string())
        .expect("scripts/pushgateway/go.mod requires github.com/prometheus/pushgateway")
}

/// A running gateway process, killed when dropped.
pub struct Server {
    child: Option<Child>,
    pub port: u16,
    pub base: String,
    ready_path: String,
    stderr_path: PathBuf,
    _logs: tempfile::TempDir,
}

impl Server {
    /// The real cronpush binary that cargo built for these tests.
    pub fn cronpush(args: &[&str]) -> Server {
        Server::cronpush_at(args, "")
    }

    /// cronpush serving under a route prefix; `base` stays the root, readiness is polled under
    /// the prefix.
    pub fn cronpush_at(args: &[&str], prefix: &str) -> Server {
        Server::start(cronpush_binary(), &["gateway"], args, prefix)
    }

    /// The reference Pushgateway, memory only unless `args` say otherwise.
    pub fn reference(args: &[&str]) -> Server {
        Server::reference_at(args, "")
    }

    pub fn reference_at(args: &[&str], prefix: &str) -> Server {
        Server::release_at(Release::Debian, args, prefix)
    }

    /// A given Pushgateway release, memory only unless `args` say otherwise.
    pub fn release_at(release: Release, args: &[&str], prefix: &str) -> Server {
        let mut all = vec!["--persistence.file="];
        all.extend_from_slice(args);
        Server::start(&release.program(), &[], &all, prefix)
    }

    /// Starts `program` listening on port 0 of 127.0.0.1 (before `args`, so its first listener):
    /// the system picks a free port as it binds, which the server then logs, so no other
    /// process can take the port between choosing and binding it.
    pub fn start(program: &Path, leading: &[&str], args: &[&str], prefix: &str) -> Server {
        let logs = tempfile::tempdir().expect("temporary directory");
        let stderr_path = logs.path().join("stderr");
        let mut command = Command::new(program);
        command
            .args(leading)
            .arg("--web.listen-address=127.0.0.1:0")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_path).expect("log file"));
        let child = command.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        let mut server = Server {
            child: Some(child),
            port: 0,
            base: String::new(),
            ready_path: format!("{prefix}/-/ready"),
            stderr_path,
            _logs: logs,
        };
        server.wait_ready();
        server
    }

    /// Waits until the server has logged the port it bound, then until it is ready there.
    fn wait_ready(&mut self) {
        let client = client();
        let mut address = None;
        let child = self.child.as_mut().expect("running");
        let waited = wait_ready(child, Duration::from_secs(20), || {
            address = address.or_else(|| listening_address(&read_log(&self.stderr_path)));
            address.is_some_and(|address| {
                client.get(format!("http://{address}{}", self.ready_path)).send().is_ok_and(|r| r.status().is_success())
            })
        });
        match (waited, address) {
            (Ok(()), Some(address)) => {
                self.port = address.port();
                self.base = format!("http://127.0.0.1:{}", self.port);
            }
            (Err(NotReady::Exited(status)), _) => {
                panic!("the server exited with {status} before it was ready:\n{}", self.stderr())
            }
            _ => panic!("the server was not ready within 20 s:\n{}", self.stderr()),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn stderr(&self) -> String {
        read_log(&self.stderr_path)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends a signal (by name: TERM, HUP, KILL) with the `kill` command.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill").arg(format!("-{name}")).arg(self.pid().to_string()).status().expect("kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the process to exit and returns its exit code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        let child = self.child.as_mut().expect("running");
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                self.child = None;
                return status.code();
            }
            if Instant::now() > deadline {
                panic!("the server did not exit within {within:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    pub fn get(&self, path: &str) -> Reply {
        send(&client(), "GET", &self.url(path), &[], Vec::new())
    }

    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> Reply {
        send(&client(), method, &self.url(path), headers, body.into())
    }

    pub fn put(&self, path: &str, body: &str) -> Reply {
        self.request("PUT", path, &[], body)
    }

    pub fn post(&self, path: &str, body: &str) -> Reply {
        self.request("POST", path, &[], body)
    }

    pub fn delete(&self, path: &str) -> Reply {
        self.request("DELETE", path, &[], Vec::new())
    }

    /// Every line a scrape shows of the pushed groups, HELP and TYPE included, timestamp
    /// values exact, sorted: what must not change when nothing was pushed.
    pub fn exact_pushed_lines(&self) -> Vec<String> {
        let reply = self.get("/metrics");
        assert_eq!(reply.status, 200, "scrape failed: {}", reply.body);
        let metric_name =
            |l: &str| l.strip_prefix("# HELP ").or_else(|| l.strip_prefix("# TYPE ")).unwrap_or(l).to_string();
        let mut lines: Vec<String> =
            reply.body.lines().filter(|l| !is_own_metric(&metric_name(l))).map(String::from).collect();
        lines.sort();
        lines
    }

    /// The sample lines of a scrape that belong to pushed groups (not the gateway's own
    /// metrics), sorted, with the timestamp series' values reduced to `0` or `T` (a time).
    pub fn pushed_series(&self) -> Vec<String> {
        let reply = self.get("/metrics");
        assert_eq!(reply.status, 200, "scrape failed: {}", reply.body);
        pushed_series(&reply.body)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// An HTTP answer, read whole.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
    pub bytes: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub fn client() -> reqwest::blocking::Client {
    // reqwest's TLS backend is rustls without a bundled provider: ring, as in the binary.
    cronpush::tls::install_crypto_provider();
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("HTTP client")
}

pub fn send(
    client: &reqwest::blocking::Client,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Reply {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = client.request(method, url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.body(body).send().unwrap_or_else(|e| panic!("request to {url} failed: {e:?}"));
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().expect("body").to_vec();
    Reply { status, headers, body: String::from_utf8_lossy(&bytes).into_owned(), bytes }
}

/// See [`Server::pushed_series`].
pub fn pushed_series(scrape: &str) -> Vec<String> {
    let mut lines: Vec<String> = scrape
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter(|l| !is_own_metric(l))
        .map(|l| {
            if l.starts_with("push_time_seconds") || l.starts_with("push_failure_time_seconds") {
                let (series, value) = l.rsplit_once(' ').expect("sample line");
                format!("{series} {}", if value == "0" { "0" } else { "T" })
            } else {
                l.to_string()
            }
        })
        .collect();
    lines.sort();
    lines
}

/// The gateway's groups (its JSON API), each as its values of `labels` joined with `/` (`-` for
/// a label the group lacks), sorted.
pub fn group_names(gateway: &Server, labels: &[&str]) -> Vec<String> {
    let body: serde_json::Value = serde_json::from_str(&gateway.get("/api/v1/metrics").body).unwrap();
    let mut groups: Vec<String> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| labels.iter().map(|n| g["labels"][n].as_str().unwrap_or("-")).collect::<Vec<_>>().join("/"))
        .collect();
    groups.sort();
    groups
}

/// A `/proc/PID/status` field in KiB (`VmRSS:`, `VmHWM:`).
pub fn status_kib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A process' CPU time so far (utime + stime), in seconds.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
    (fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap()) / 100.0
}

/// Whether a metric (or a line starting with its name) is one of a gateway's own.
pub fn is_own_metric(name: &str) -> bool {
    ["go_", "process_", "pushgateway_", "promhttp_", "cronpush_store_"].iter().any(|p| name.starts_with(p))
}

/// A log file as it stands (empty while it does not exist).
pub fn read_log(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut file) = std::fs::File::open(path) {
        let _ = file.read_to_string(&mut text);
    }
    text
}

/// Why a process started to serve never became ready.
#[derive(Debug)]
pub enum NotReady {
    /// It exited first.
    Exited(ExitStatus),
    /// It was still not ready when the time was up.
    TimedOut,
}

/// The one start-and-wait loop of the servers the tests start: polls `ready` every 20 ms until
/// it holds, giving up when `child` exits or `within` has passed.
pub fn wait_ready(child: &mut Child, within: Duration, mut ready: impl FnMut() -> bool) -> Result<(), NotReady> {
    let deadline = Instant::now() + within;
    loop {
        if ready() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(NotReady::Exited(status));
        }
        if Instant::now() > deadline {
            return Err(NotReady::TimedOut);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The address a server that was given port 0 says it listens on, from its log: the first line
/// about listening with an address, in logfmt (cronpush's `msg="listening"
/// address=127.0.0.1:41234`, the reference's `msg="Listening on" address=…`) or in JSON
/// (cronpush's `--log.format=json`: `"address":"…"`).
pub fn listening_address(log: &str) -> Option<SocketAddr> {
    log.lines().filter(|line| line.to_ascii_lowercase().contains("listening")).find_map(|line| {
        let (_, rest) = line.split_once("address=").or_else(|| line.split_once("\"address\":\""))?;
        rest.split(['"', ' ', ',', '}']).next()?.parse().ok()
    })
}

/// A port that was free on 127.0.0.1 a moment ago. Racy: another process may bind it before
/// the server it is meant for does. Only for what cannot bind port 0 and say which port it got
/// (then [`Server::start`]'s way is better): a server whose port must be known before it
/// starts (written into its configuration or another's flags), or an address where nothing
/// listens. [`on_free_port`] starts a server again when the port was taken.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Whether a server's log says it could not listen because another process had the address.
pub fn address_in_use(log: &str) -> bool {
    log.to_ascii_lowercase().contains("address already in use")
}

/// Starts a server on a [`free_port`] with `start`, which returns the server, or its log if it
/// exited before it was ready; again on another port (five times at most) when the log says
/// the port was taken in between.
pub fn on_free_port<T>(what: &str, mut start: impl FnMut(u16) -> Result<T, String>) -> T {
    for _ in 0..5 {
        match start(free_port()) {
            Ok(server) => return server,
            Err(log) if address_in_use(&log) => continue,
            Err(log) => panic!("{what} exited before it was ready:\n{log}"),
        }
    }
    panic!("{what}: five free ports in a row were taken before it could bind them")
}

/// Runs `cronpush certs --out <out>` with `args`, as a user would (without the CRONPUSH_*
/// defaults the environment may hold), and returns what it printed: the caBundle. A failure
/// panics with what the command said.
pub fn issue_certs(out: &Path, args: &[&str]) -> String {
    let output = Command::new(cronpush_binary())
        .arg("certs")
        .args(args)
        .arg("--out")
        .arg(out)
        .env_remove("CRONPUSH_SERVICE")
        .env_remove("CRONPUSH_NAMESPACE")
        .env_remove("CRONPUSH_CERTS_OUT")
        .output()
        .expect("run cronpush certs");
    assert!(output.status.success(), "cronpush certs failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("UTF-8 caBundle")
}

/// The `cronpush` binary that cargo built with the running test or benchmark: they run from
/// `target/<profile>/deps/`, and the binary is `target/<profile>/cronpush` (what
/// `CARGO_BIN_EXE_cronpush` names to them).
pub fn cronpush_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let running = std::env::current_exe().expect("the running test's path");
        let profile = running.parent().and_then(Path::parent).expect("a test runs from target/<profile>/deps");
        let binary = profile.join("cronpush");
        assert!(binary.is_file(), "{} is missing: cargo builds it with the tests and benchmarks", binary.display());
        binary
    })
}

/// A path in the repository (the root package's directory).
pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).expect("tests/support is two levels down").join(path)
}

/// The path of a peer program that `scripts/test` installs; a clear failure when it is missing.
pub fn peer(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!("{name} is not installed; run ./scripts/test, which installs every peer the tests use")
    })
}

/// Polls `check` until it returns true or `within` passes (for the reference's queued writes).
pub fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if check() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// [`eventually`] on a Tokio runtime, where a blocking sleep would hold up the tasks the test
/// waits for: awaits `check` every 20 ms until it returns true or `within` passes.
pub async fn eventually_async(within: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
