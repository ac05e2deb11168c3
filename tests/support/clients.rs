//! The real client programs the black-box tests run (tests/clients.rs, tests/prometheus.rs): the
//! Go programs under tests/clients/, built with Debian's Go and client_golang (GOPATH mode,
//! offline), and a runner that never lets a hung client hang a test.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Where Debian's golang-github-prometheus-client-golang-dev puts the push package.
const CLIENT_GOLANG: &str = "/usr/share/gocode/src/github.com/prometheus/client_golang/prometheus/push";
/// Where Debian's golang-github-golang-snappy-dev puts the snappy reader Pushgateway uses.
const GOLANG_SNAPPY: &str = "/usr/share/gocode/src/github.com/golang/snappy";

/// The built Go programs: the article's `main.go`, the test pusher and golang/snappy's framing.
pub struct GoPrograms {
    pub article: PathBuf,
    pub pusher: PathBuf,
    pub snappy: PathBuf,
}

/// Builds the Go programs once per test binary. The output and Go's build cache live in
/// cargo's per-target temporary directory, so later runs reuse the cache and build in a second.
pub fn go_programs() -> &'static GoPrograms {
    static BUILT: OnceLock<GoPrograms> = OnceLock::new();
    BUILT.get_or_init(|| {
        let go = crate::peer("go");
        assert!(
            Path::new(CLIENT_GOLANG).is_dir(),
            "client_golang is not installed at {CLIENT_GOLANG}; run ./scripts/test, which installs \
             golang-github-prometheus-client-golang-dev"
        );
        assert!(
            Path::new(GOLANG_SNAPPY).is_dir(),
            "golang/snappy is not installed at {GOLANG_SNAPPY}; run ./scripts/test, which installs \
             golang-github-golang-snappy-dev"
        );
        let (tmp, test) = running_test();
        let root = tmp.join("go");
        // One output directory per test binary: cargo may run them concurrently.
        let out = root.join(test);
        let home = root.join("home");
        for dir in [&out, &home] {
            std::fs::create_dir_all(dir).expect("Go build directories");
        }
        let output = Command::new(go)
            .current_dir(crate::repo("."))
            .env("GO111MODULE", "off")
            .env("GOPATH", "/usr/share/gocode")
            .env("GOCACHE", root.join("cache"))
            .env("HOME", &home)
            .env("GOFLAGS", "")
            .env("CGO_ENABLED", "0")
            .arg("build")
            .arg("-o")
            .arg(format!("{}/", out.display()))
            .args(["./tests/clients/article", "./tests/clients/pusher", "./tests/clients/snappy"])
            .output()
            .expect("go build");
        assert!(
            output.status.success(),
            "building the Go clients failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        GoPrograms { article: out.join("article"), pusher: out.join("pusher"), snappy: out.join("snappy") }
    })
}

/// Cargo's temporary directory for tests, `<target>/tmp` (the `CARGO_TARGET_TMPDIR` that only
/// the root package's tests are given), and the running test's name (`clients` of
/// `clients-<hash>`): a test runs from `<target>/<profile>/deps/`.
fn running_test() -> (PathBuf, String) {
    let running = std::env::current_exe().expect("the running test's path");
    let target = running.ancestors().nth(3).expect("a test runs from target/<profile>/deps");
    let file = running.file_stem().and_then(|name| name.to_str()).expect("a test binary's name");
    let test = file.rsplit_once('-').map_or(file, |(name, _hash)| name);
    (target.join("tmp"), test.to_string())
}

/// What a client program did.
#[derive(Debug)]
pub struct Ran {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs a client to completion, killing it after `within` (the Go push client has no timeout of
/// its own, so a gateway that never answers would otherwise hang the test forever).
pub fn run(command: &mut Command, within: Duration) -> Ran {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
    let deadline = Instant::now() + within;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} did not finish within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ran { status, stdout: stdout.join().expect("stdout reader"), stderr: stderr.join().expect("stderr reader") }
}
