//! The README's Pi gateway for tests that reach it as the webhook and the pushers would: the
//! real `cronpush gateway` with a web configuration (`--web.config.file`) that serves TLS with a
//! certificate from a private CA and asks for basic auth.

use std::time::Duration;

/// The README's Pi gateway: TLS from a private CA (`cronpush certs`) and a bcrypt user, on a
/// free port; a client that trusts the CA and presents the user.
pub struct TlsGateway {
    child: std::process::Child,
    pub url: String,
    dir: tempfile::TempDir,
    client: reqwest::blocking::Client,
}

pub const GATEWAY_USER: &str = "cronpush";
pub const GATEWAY_PASSWORD: &str = "pi-s3cret";

impl TlsGateway {
    pub fn start() -> TlsGateway {
        let dir = tempfile::tempdir().unwrap();
        super::issue_certs(dir.path(), &["--extra-name", "127.0.0.1"]);
        let hash = bcrypt::hash(GATEWAY_PASSWORD, 4).unwrap();
        let config = dir.path().join("web.yml");
        std::fs::write(
            &config,
            format!(
                "tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\nbasic_auth_users:\n  {GATEWAY_USER}: {hash}\n"
            ),
        )
        .unwrap();
        let log = dir.path().join("gateway.log");
        let mut child = std::process::Command::new(super::cronpush_binary())
            .args(["gateway", "--web.listen-address=127.0.0.1:0"])
            .arg(format!("--web.config.file={}", config.display()))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        cronpush::tls::install_crypto_provider();
        let ca = std::fs::read(dir.path().join("ca.crt")).unwrap();
        let client = reqwest::blocking::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let mut url = None;
        let ready = super::wait_ready(&mut child, Duration::from_secs(20), || {
            url = url.clone().or_else(|| {
                super::listening_address(&super::read_log(&log)).map(|a| format!("https://127.0.0.1:{}", a.port()))
            });
            url.as_ref().is_some_and(|url| {
                let ready = client.get(format!("{url}/-/ready")).basic_auth(GATEWAY_USER, Some(GATEWAY_PASSWORD));
                ready.send().is_ok_and(|r| r.status().is_success())
            })
        });
        assert!(ready.is_ok(), "the gateway did not come up:\n{}", super::read_log(&log));
        TlsGateway { child, url: url.unwrap(), dir, client }
    }

    pub fn ca_file(&self) -> String {
        self.dir.path().join("ca.crt").display().to_string()
    }

    pub fn push(&self, path: &str) {
        let pushed = self
            .client
            .post(format!("{}{path}", self.url))
            .basic_auth(GATEWAY_USER, Some(GATEWAY_PASSWORD))
            .body("cronjob_last_start_time_seconds 1\n")
            .send()
            .unwrap();
        assert!(pushed.status().is_success(), "{path}: {}", pushed.status());
    }

    /// The gateway's `/metrics`, as Prometheus scrapes it with the user.
    pub fn scrape(&self) -> String {
        let answer = self.client.get(format!("{}/metrics", self.url)).basic_auth(GATEWAY_USER, Some(GATEWAY_PASSWORD));
        answer.send().unwrap().text().unwrap()
    }

    /// The groups as `job/namespace/cronjob`, sorted.
    pub fn groups(&self) -> Vec<String> {
        let answer =
            self.client.get(format!("{}/api/v1/metrics", self.url)).basic_auth(GATEWAY_USER, Some(GATEWAY_PASSWORD));
        let body: serde_json::Value = serde_json::from_str(&answer.send().unwrap().text().unwrap()).unwrap();
        let mut groups: Vec<String> = body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| ["job", "namespace", "cronjob"].map(|n| g["labels"][n].as_str().unwrap_or("-")).join("/"))
            .collect();
        groups.sort();
        groups
    }
}

impl Drop for TlsGateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
