//! The webhook under test: the release binary's `cronpush webhook`, started as its Deployment
//! runs it, and what /proc tells about it (CPU time, resident memory).

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::client::{Client, Protocol};
use crate::kube_api::FakeApi;

const SERVICE: &str = "cronpush-webhook";
const NAMESPACE: &str = "cronpush";
/// The name kube-apiserver dials for the webhook's Service, and verifies the certificate for.
pub const SERVICE_HOST: &str = "cronpush-webhook.cronpush.svc";

pub struct Webhook {
    child: Child,
    pub address: SocketAddr,
    pub ca_pem: Vec<u8>,
    _dir: tempfile::TempDir,
}

impl Drop for Webhook {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Webhook {
    /// Certificates from `cronpush certs`, then `cronpush webhook` on a free loopback port with
    /// a kubeconfig naming the fake API server; its log goes to `log`.
    pub fn start(binary: &Path, pin: bool, api: &FakeApi, log: &Path) -> Result<Webhook, String> {
        if !binary.is_file() {
            return Err(format!(
                "{} is not built: run `cargo build --release` (scripts/bench-webhook does)",
                binary.display()
            ));
        }
        let dir = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
        let certs = dir.path().join("certs");
        let made = Command::new(binary)
            .args(["certs", "--service", SERVICE, "--namespace", NAMESPACE, "--out"])
            .arg(&certs)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
        if !made.success() {
            return Err(format!("`cronpush certs` failed: {made}"));
        }
        let address = SocketAddr::from(([127, 0, 0, 1], support::free_port()));
        let log_file = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let mut command = Command::new(if pin { Path::new("taskset") } else { binary });
        if pin {
            command.args(["-c", "1"]).arg(binary);
        }
        let child = command
            .arg("webhook")
            .arg(format!("--tls-cert-file={}", certs.join("tls.crt").display()))
            .arg(format!("--tls-key-file={}", certs.join("tls.key").display()))
            .arg(format!("--tls-ca-file={}", certs.join("ca.crt").display()))
            .arg(format!("--listen-address={address}"))
            .args(["--gateway-url=http://pi:8080/pushgateway", "--image=cronpush:bench"])
            // Room for every sidecar of the relay's burst (benches/admission/relay_load.rs).
            .arg("--relay-max-waiting=1000000")
            .env("KUBECONFIG", api.kubeconfig(dir.path()))
            .env("POD_NAMESPACE", NAMESPACE)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("cannot start {} webhook: {e}", binary.display()))?;
        let ca_pem = std::fs::read(certs.join("ca.crt")).map_err(|e| format!("ca.crt: {e}"))?;
        Ok(Webhook { child, address, ca_pem, _dir: dir })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until `/healthz` answers over TLS; fails early if the process exits.
    pub async fn wait_ready(&mut self, client: &Client, log: &Path) -> Result<(), String> {
        let child = &mut self.child;
        let mut exited = None;
        let ready = support::eventually_async(Duration::from_secs(20), async || {
            if let Ok(mut connection) = client.connect(Protocol::Http1).await
                && connection.get("/healthz").await.is_ok_and(|(status, _)| status == 200)
            {
                return true;
            }
            exited = child.try_wait().ok().flatten();
            exited.is_some()
        })
        .await;
        match exited {
            Some(status) => Err(format!("the webhook exited with {status}; see {}", log.display())),
            None if ready => Ok(()),
            None => Err(format!("the webhook did not come up within 20 s; see {}", log.display())),
        }
    }
}

/// CPU time (user + system) the process has used so far, from /proc/PID/stat.
pub fn cpu_time(pid: u32, clock_ticks: f64) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields 14 and 15, counted after the ")" that ends the command name (which may hold spaces).
    let after_name = stat.rsplit_once(") ").map_or("", |(_, rest)| rest);
    let fields: Vec<f64> = after_name.split(' ').map(|f| f.parse().unwrap_or(0.0)).collect();
    let ticks = fields.get(11).unwrap_or(&0.0) + fields.get(12).unwrap_or(&0.0);
    Duration::from_secs_f64(ticks / clock_ticks)
}

pub fn clock_ticks_per_second() -> f64 {
    let output = Command::new("getconf").arg("CLK_TCK").output().ok();
    output.and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok()).unwrap_or(100.0)
}

/// A `Vm*` line of /proc/PID/status, in MiB.
pub fn memory_mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = status.lines().find_map(|l| l.strip_prefix(field)?.trim().strip_suffix("kB")?.trim().parse::<f64>().ok());
    kib.unwrap_or(0.0) / 1024.0
}
