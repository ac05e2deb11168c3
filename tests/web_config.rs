//! `--web.config.file` through the real binary: HTTPS with a verifying client, basic auth with
//! right, wrong and missing passwords, the same file given to the reference Pushgateway with the
//! same answers, files that must stop the start, and a certificate replaced on disk.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{NotReady, REFERENCE, listening_address, peer, read_log, wait_ready};

const USER: &str = "alice";
const PASSWORD: &str = "s3cret";

/// A CA and a serving pair for 127.0.0.1 from `cronpush certs`.
fn issue(out: &Path) -> Vec<u8> {
    support::issue_certs(out, &["--extra-name", "127.0.0.1"]);
    std::fs::read(out.join("ca.crt")).expect("ca.crt")
}

/// A directory holding the pair and a web config naming it by relative paths.
struct Site {
    dir: tempfile::TempDir,
    ca: Vec<u8>,
}

impl Site {
    fn new() -> Site {
        let dir = tempfile::tempdir().expect("temporary directory");
        let ca = issue(dir.path());
        Site { dir, ca }
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).expect("write web config");
        path
    }

    fn tls_with_auth(&self) -> PathBuf {
        let hash = bcrypt::hash(PASSWORD, 4).expect("bcrypt");
        self.write(
            "web.yml",
            &format!(
                "tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n\
                 http_server_config:\n  headers:\n    X-Frame-Options: deny\n\
                 basic_auth_users:\n  {USER}: {hash}\n"
            ),
        )
    }
}

fn https_client(ca: &[u8]) -> reqwest::blocking::Client {
    cronpush::tls::install_crypto_provider();
    reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca).expect("CA certificate"))
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("HTTPS client")
}

/// Who to present as.
#[derive(Debug, Clone, Copy)]
enum Credentials {
    Right,
    WrongPassword,
    UnknownUser,
    Missing,
}

struct Answer {
    status: u16,
    challenge: Option<String>,
    frame_options: Option<String>,
    body: String,
}

fn request(
    client: &reqwest::blocking::Client,
    method: &str,
    url: &str,
    body: &str,
    who: Credentials,
) -> reqwest::Result<Answer> {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = client.request(method, url).body(body.to_owned());
    request = match who {
        Credentials::Right => request.basic_auth(USER, Some(PASSWORD)),
        Credentials::WrongPassword => request.basic_auth(USER, Some("wrong")),
        Credentials::UnknownUser => request.basic_auth("mallory", Some(PASSWORD)),
        Credentials::Missing => request,
    };
    let response = request.send()?;
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (challenge, frame_options) = (header("www-authenticate"), header("x-frame-options"));
    Ok(Answer { status: response.status().as_u16(), challenge, frame_options, body: response.text()? })
}

/// A gateway process on port 0 (the port it bound is read from its log once it is ready),
/// killed when dropped.
struct Running {
    child: Child,
    port: Option<u16>,
    stderr: PathBuf,
    _logs: tempfile::TempDir,
}

impl Running {
    fn cronpush(web_config: &Path) -> Running {
        Running::start(Path::new(env!("CARGO_BIN_EXE_cronpush")), &["gateway"], web_config)
    }

    fn reference(web_config: &Path) -> Running {
        Running::start(&peer(REFERENCE), &["--persistence.file="], web_config)
    }

    fn start(program: &Path, leading: &[&str], web_config: &Path) -> Running {
        let logs = tempfile::tempdir().expect("temporary directory");
        let stderr = logs.path().join("stderr");
        let child = Command::new(program)
            .args(leading)
            .arg("--web.listen-address=127.0.0.1:0")
            .arg(format!("--web.config.file={}", web_config.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).expect("log file"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        Running { child, port: None, stderr, _logs: logs }
    }

    fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://127.0.0.1:{}{path}", self.port.expect("wait_ready first"))
    }

    fn stderr(&self) -> String {
        read_log(&self.stderr)
    }

    /// Waits for the port the server logs, then polls `/-/ready` over HTTPS with the right
    /// credentials.
    fn wait_ready(&mut self, client: &reqwest::blocking::Client) {
        let mut port = None;
        let waited = wait_ready(&mut self.child, Duration::from_secs(20), || {
            port = port.or_else(|| listening_address(&read_log(&self.stderr)).map(|a| a.port()));
            port.is_some_and(|port| {
                let url = format!("https://127.0.0.1:{port}/-/ready");
                request(client, "GET", &url, "", Credentials::Right).is_ok_and(|a| a.status == 200)
            })
        });
        match waited {
            Ok(()) => self.port = port,
            Err(NotReady::Exited(status)) => {
                panic!("the server exited with {status} before it was ready:\n{}", self.stderr())
            }
            Err(NotReady::TimedOut) => panic!("the server was not ready within 20 s:\n{}", self.stderr()),
        }
    }

    /// The exit code of a start that must fail, and what it said.
    fn refused(mut self) -> (Option<i32>, String) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return (status.code(), self.stderr());
            }
            assert!(Instant::now() < deadline, "the server started anyway:\n{}", self.stderr());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn pushes_and_scrapes_go_over_verified_https_and_plain_http_is_refused() {
    let site = Site::new();
    let config = site.write("web.yml", "tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n");
    let client = https_client(&site.ca);
    let mut gateway = Running::cronpush(&config);
    gateway.wait_ready(&client);

    let pushed =
        request(&client, "PUT", &gateway.url("https", "/metrics/job/nightly"), "backup_ok 1\n", Credentials::Missing)
            .expect("HTTPS push");
    assert_eq!(pushed.status, 200, "{}", pushed.body);
    let scraped = request(&client, "GET", &gateway.url("https", "/metrics"), "", Credentials::Missing).expect("scrape");
    assert_eq!(scraped.status, 200);
    assert!(scraped.body.contains("backup_ok{instance=\"\",job=\"nightly\"} 1"), "{}", scraped.body);

    let plain = request(&support::client(), "GET", &gateway.url("http", "/metrics"), "", Credentials::Missing);
    assert!(plain.is_err() || plain.is_ok_and(|a| a.status >= 400), "plain HTTP was served over the TLS port");
    // A client that trusts another CA does not get through either.
    let stranger = https_client(&issue(tempfile::tempdir().expect("temporary directory").path()));
    assert!(request(&stranger, "GET", &gateway.url("https", "/metrics"), "", Credentials::Missing).is_err());
}

#[test]
fn basic_auth_answers_as_the_reference_does_with_the_same_file() {
    let site = Site::new();
    let config = site.tls_with_auth();
    let client = https_client(&site.ca);
    let mut ours = Running::cronpush(&config);
    let mut reference = Running::reference(&config);
    ours.wait_ready(&client);
    reference.wait_ready(&client);

    let requests = [
        ("PUT", "/metrics/job/nightly", "backup_ok 1\n"),
        ("GET", "/metrics", ""),
        ("GET", "/-/ready", ""),
        ("GET", "/-/healthy", ""),
        ("GET", "/api/v1/status", ""),
        ("DELETE", "/metrics/job/nightly", ""),
    ];
    let everyone = [Credentials::Missing, Credentials::WrongPassword, Credentials::UnknownUser, Credentials::Right];
    for (method, path, body) in requests {
        for who in everyone {
            let answer = |server: &Running| {
                request(&client, method, &server.url("https", path), body, who)
                    .unwrap_or_else(|e| panic!("{method} {path} as {who:?}: {e}"))
            };
            let (mine, theirs) = (answer(&ours), answer(&reference));
            let context = format!("{method} {path} as {who:?}");
            assert_eq!(mine.status, theirs.status, "{context}: {}", mine.body);
            assert_eq!(mine.challenge, theirs.challenge, "{context}");
            assert_eq!(mine.frame_options, theirs.frame_options, "{context}");
            if matches!(who, Credentials::Right) {
                assert!(mine.status < 300, "{context}: {}", mine.body);
            } else {
                assert_eq!((mine.status, mine.challenge.as_deref()), (401, Some("Basic")), "{context}");
                assert_eq!(mine.body, theirs.body, "{context}");
            }
        }
    }
}

#[test]
fn a_file_that_cannot_be_honoured_stops_the_start_with_a_clear_message() {
    let site = Site::new();
    let hash = bcrypt::hash(PASSWORD, 4).expect("bcrypt");
    let cases = [
        (
            "unknown key",
            "tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n  cert_fil: x\n".to_owned(),
            "cert_fil",
        ),
        ("unknown section", format!("basic_auth:\n  {USER}: {hash}\n"), "basic_auth"),
        (
            "missing certificate",
            "tls_server_config:\n  cert_file: gone.crt\n  key_file: tls.key\n".to_owned(),
            "gone.crt",
        ),
        ("bad bcrypt hash", format!("basic_auth_users:\n  {USER}: {PASSWORD}\n"), "bcrypt"),
        (
            "TLS 1.0",
            "tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n  min_version: TLS10\n".to_owned(),
            "TLS10",
        ),
        ("not YAML", "tls_server_config: [\n".to_owned(), "web.yml"),
    ];
    for (what, contents, mentioned) in cases {
        let config = site.write("web.yml", &contents);
        let (code, stderr) = Running::cronpush(&config).refused();
        assert!(code.is_some_and(|c| c != 0), "{what}: exit code {code:?}");
        assert!(stderr.contains(mentioned), "{what}: the message does not mention {mentioned:?}:\n{stderr}");
    }
    let (code, stderr) = Running::cronpush(&site.dir.path().join("absent.yml")).refused();
    assert!(code.is_some_and(|c| c != 0) && stderr.contains("absent.yml"), "{stderr}");
}

#[test]
fn new_handshakes_get_a_certificate_replaced_on_disk() {
    let site = Site::new();
    let config = site.tls_with_auth();
    let old_client = https_client(&site.ca);
    let mut gateway = Running::cronpush(&config);
    gateway.wait_ready(&old_client);

    let next = tempfile::tempdir().expect("temporary directory");
    let new_client = https_client(&issue(next.path()));
    let url = gateway.url("https", "/-/healthy");
    assert!(request(&new_client, "GET", &url, "", Credentials::Right).is_err(), "served the new CA's pair early");
    for name in ["tls.key", "tls.crt"] {
        // As a deployment tool writes: a new file renamed over the old one.
        let staged = site.dir.path().join(format!(".{name}.new"));
        std::fs::copy(next.path().join(name), &staged).expect("stage");
        std::fs::rename(&staged, site.dir.path().join(name)).expect("replace");
    }
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        // A new client each time: a new connection, so a new handshake.
        let fresh = https_client(&std::fs::read(next.path().join("ca.crt")).expect("ca.crt"));
        if request(&fresh, "GET", &url, "", Credentials::Right).is_ok_and(|a| a.status == 200) {
            break;
        }
        assert!(Instant::now() < deadline, "the new certificate was not served:\n{}", gateway.stderr());
        std::thread::sleep(Duration::from_millis(100));
    }
    let fresh_old = https_client(&site.ca);
    assert!(request(&fresh_old, "GET", &url, "", Credentials::Right).is_err(), "the old certificate came back");
}

/// A client certificate signed by the site's CA, made with the openssl CLI.
fn client_identity(site: &Site) -> reqwest::Identity {
    let dir = site.dir.path();
    let openssl = |args: &[&str]| {
        let status =
            Command::new("openssl").args(args).current_dir(dir).stdout(Stdio::null()).stderr(Stdio::null()).status();
        assert!(status.expect("openssl").success(), "openssl {args:?} failed");
    };
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage = clientAuth\n").expect("extensions");
    openssl(
        &["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
            .into_iter()
            .chain(["-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=backup-job"])
            .collect::<Vec<_>>(),
    );
    openssl(&[
        "x509",
        "-req",
        "-in",
        "client.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "client.ext",
        "-out",
        "client.crt",
    ]);
    openssl(&["pkcs8", "-topk8", "-nocrypt", "-in", "client.key", "-out", "client.pk8"]);
    let pem =
        [std::fs::read(dir.join("client.crt")).expect("cert"), std::fs::read(dir.join("client.pk8")).expect("key")];
    reqwest::Identity::from_pem(&pem.concat()).expect("client identity")
}

#[test]
fn client_certificates_are_required_and_verified_as_by_the_reference() {
    let site = Site::new();
    let config = site.write(
        "web.yml",
        "tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n  client_ca_file: ca.crt\n  \
         client_auth_type: RequireAndVerifyClientCert\n",
    );
    cronpush::tls::install_crypto_provider();
    let with_cert = reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&site.ca).expect("CA certificate"))
        .identity(client_identity(&site))
        .timeout(Duration::from_secs(10))
        .build()
        .expect("HTTPS client");
    let without_cert = https_client(&site.ca);
    let mut ours = Running::cronpush(&config);
    let mut reference = Running::reference(&config);
    ours.wait_ready(&with_cert);
    reference.wait_ready(&with_cert);
    for server in [&ours, &reference] {
        let url = server.url("https", "/metrics");
        assert!(request(&with_cert, "GET", &url, "", Credentials::Missing).is_ok_and(|a| a.status == 200));
        assert!(request(&without_cert, "GET", &url, "", Credentials::Missing).is_err(), "served {url} without a cert");
    }
}

/// What `cronpush start` logged and how long it took, run against `gateway` with `env`.
fn start_pusher(gateway: &str, env: &[(&str, &str)]) -> (std::process::ExitStatus, Duration, String) {
    let begun = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_cronpush"))
        .arg("start")
        .env_clear()
        .env("CRONPUSH_GATEWAY_URL", gateway)
        .env("CRONPUSH_NAMESPACE", "batch")
        .env("CRONPUSH_CRONJOB", "backup")
        .env("CRONPUSH_TIMEOUT_SECONDS", "20")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("cronpush start");
    (output.status, begun.elapsed(), String::from_utf8_lossy(&output.stderr).into_owned())
}

/// The article's Pi, with TLS from a private CA and a bcrypt user: the pushers reach it when
/// given the CA (by the variable the webhook injects, or a file) and the credentials apart
/// from the URL; without the CA they give up at once, saying why, instead of retrying a
/// certificate that will not change until their deadline; a wrong password is refused at once.
#[test]
fn the_pushers_reach_a_gateway_with_a_private_ca_and_basic_auth() {
    let site = Site::new();
    let client = https_client(&site.ca);
    let mut gateway = Running::cronpush(&site.tls_with_auth());
    gateway.wait_ready(&client);
    let url = gateway.url("https", "");
    let ca = String::from_utf8(site.ca.clone()).expect("PEM");
    let ca_file = site.write("gateway-ca.pem", &ca);
    let pushed = |who: &str| {
        let groups = request(&client, "GET", &gateway.url("https", "/api/v1/metrics"), "", Credentials::Right)
            .expect("API")
            .body;
        groups.contains(who)
    };

    let (status, took, log) = start_pusher(
        &url,
        &[("CRONPUSH_GATEWAY_CA", &ca), ("CRONPUSH_GATEWAY_USERNAME", USER), ("CRONPUSH_GATEWAY_PASSWORD", PASSWORD)],
    );
    assert!(status.success() && log.contains("pushed the start metrics"), "{took:?}\n{log}");
    assert!(pushed("\"cronjob\":\"backup\""));
    assert!(!log.contains(PASSWORD), "the log shows the password:\n{log}");

    // Credentials in the URL still work, and the CA as a file (a pusher run by hand).
    let with_userinfo = url.replace("https://", &format!("https://{USER}:{PASSWORD}@"));
    let (status, _, log) = start_pusher(&with_userinfo, &[("CRONPUSH_JOB", "by-hand")]);
    assert!(status.success() && log.contains("does not verify"), "{log}");
    let output = Command::new(env!("CARGO_BIN_EXE_cronpush"))
        .args(["start", "--gateway-url", &with_userinfo, "--job", "by-hand", "--namespace", "batch"])
        .args(["--cronjob", "backup", "--gateway-ca-file", ca_file.to_str().unwrap()])
        .env_clear()
        .output()
        .expect("cronpush start");
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && log.contains("pushed the start metrics"), "{log}");
    assert!(pushed("\"job\":\"by-hand\""));

    // Without the CA: one attempt, a clear reason, long before the 20 s deadline.
    let (status, took, log) =
        start_pusher(&url, &[("CRONPUSH_GATEWAY_USERNAME", USER), ("CRONPUSH_GATEWAY_PASSWORD", PASSWORD)]);
    assert!(status.success(), "{log}");
    assert!(took < Duration::from_secs(5), "took {took:?} for a certificate that will not change:\n{log}");
    assert!(
        log.contains("does not verify") && log.contains("UnknownIssuer") && log.contains("CRONPUSH_GATEWAY_CA"),
        "{log}"
    );
    assert!(log.contains("1 attempt"), "{log}");

    // A wrong password: refused at once, and said.
    let (status, took, log) = start_pusher(
        &url,
        &[("CRONPUSH_GATEWAY_CA", &ca), ("CRONPUSH_GATEWAY_USERNAME", USER), ("CRONPUSH_GATEWAY_PASSWORD", "wrong")],
    );
    assert!(status.success() && took < Duration::from_secs(5), "{took:?}\n{log}");
    assert!(log.contains("401"), "{log}");
    // Half the credentials: said, nothing sent, the Job goes on.
    let (status, _, log) = start_pusher(&url, &[("CRONPUSH_GATEWAY_CA", &ca), ("CRONPUSH_GATEWAY_USERNAME", USER)]);
    assert!(status.success() && log.contains("CRONPUSH_GATEWAY_PASSWORD"), "{log}");
}
