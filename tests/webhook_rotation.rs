//! Certificate rotation through the real binary, seen from kube-apiserver's side. `cronpush
//! webhook` serves from a directory laid out as the kubelet lays out a Secret volume; while
//! clients keep sending AdmissionReviews, over connections opened before the rotation and over
//! new ones, the kubelet swaps in a certificate from a second `cronpush certs` run, a new CA.
//! The clients trust a caBundle holding both CAs, as during a CA rotation. Nothing may fail: no
//! handshake, no review, no kept-alive connection; and new handshakes must get the new
//! certificate within seconds, never the old one again.
//!
//! tests/tls.rs covers the same reload at library level (renewals from one CA, in-place writes,
//! broken pairs); this test checks that the binary wires it up for a Secret volume.

use base64::Engine as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_rustls::client::TlsStream;

use support::https;
use support::kube_api::FakeApi;

const SERVICE: &str = "cronpush-webhook";
const NAMESPACE: &str = "cronpush";
/// The name kube-apiserver dials for the Service, and verifies the certificate for.
const SERVICE_HOST: &str = "cronpush-webhook.cronpush.svc";
/// How long any one wait may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(10);
/// How soon after the swap new handshakes must get the new certificate. The webhook reloads on
/// the directory's events after a 200 ms settle (about 0.25 s in all here), and polls the files
/// every 5 s in case no event comes.
const ROTATION_DEADLINE: Duration = Duration::from_secs(4);
/// Reviews each kept-alive connection must carry after the new certificate is served.
const REVIEWS_AFTER: u64 = 20;
/// Handshakes each fresh-connection client must make after its first with the new certificate.
const HANDSHAKES_AFTER: u64 = 5;

// ---- Certificates, on disk as the kubelet writes a Secret volume ------------------------------

/// One `cronpush certs` run: a CA and a serving pair it signed.
struct Issued {
    ca: Vec<u8>,
    cert: Vec<u8>,
    key: Vec<u8>,
}

impl Issued {
    fn generate(out: &Path) -> Issued {
        support::issue_certs(out, &["--service", SERVICE, "--namespace", NAMESPACE]);
        let read = |name: &str| std::fs::read(out.join(name)).expect("a generated file");
        Issued { ca: read("ca.crt"), cert: read("tls.crt"), key: read("tls.key") }
    }

    fn leaf(&self) -> Vec<u8> {
        CertificateDer::from_pem_slice(&self.cert).expect("a PEM certificate").to_vec()
    }
}

/// A `kubernetes.io/tls` Secret mounted as a volume. Each key is a symlink into `..data`, itself
/// a symlink to a timestamped directory; the kubelet's atomic writer updates it by writing a new
/// timestamped directory, pointing a new `..data_tmp` symlink at it, renaming that over `..data`
/// (the one atomic step), and removing the old directory.
struct SecretVolume {
    dir: PathBuf,
    current: Option<String>,
    writes: u32,
}

impl SecretVolume {
    const KEYS: [&str; 3] = ["ca.crt", "tls.crt", "tls.key"];

    fn create(dir: &Path, issued: &Issued) -> SecretVolume {
        let mut volume = SecretVolume { dir: dir.to_owned(), current: None, writes: 0 };
        volume.write(issued);
        for key in SecretVolume::KEYS {
            std::os::unix::fs::symlink(format!("..data/{key}"), dir.join(key)).expect("a key symlink");
        }
        volume
    }

    fn write(&mut self, issued: &Issued) {
        self.writes += 1;
        let timestamped = format!("..2026_11_25_10_00_0{}.{:09}", self.writes, 417_208_133 + self.writes);
        let new = self.dir.join(&timestamped);
        std::fs::create_dir(&new).expect("a timestamped directory");
        for (key, bytes) in SecretVolume::KEYS.iter().zip([&issued.ca, &issued.cert, &issued.key]) {
            std::fs::write(new.join(key), bytes).expect("a key file");
        }
        std::os::unix::fs::symlink(&timestamped, self.dir.join("..data_tmp")).expect("..data_tmp");
        std::fs::rename(self.dir.join("..data_tmp"), self.dir.join("..data")).expect("the ..data swap");
        if let Some(old) = self.current.replace(timestamped) {
            std::fs::remove_dir_all(self.dir.join(old)).expect("remove the old directory");
        }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(key)
    }
}

// ---- The webhook process ----------------------------------------------------------------------

struct Webhook {
    child: Child,
    address: SocketAddr,
    log: PathBuf,
}

impl Drop for Webhook {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Webhook {
    /// `cronpush webhook` serving the volume's pair, with a kubeconfig naming `api`.
    fn start(volume: &SecretVolume, work: &Path, api: &FakeApi) -> Webhook {
        let address = SocketAddr::from(([127, 0, 0, 1], support::free_port()));
        let log = work.join("webhook.log");
        let log_file = std::fs::File::create(&log).expect("a log file");
        let child = Command::new(env!("CARGO_BIN_EXE_cronpush"))
            .arg("webhook")
            .arg(format!("--tls-cert-file={}", volume.path("tls.crt").display()))
            .arg(format!("--tls-key-file={}", volume.path("tls.key").display()))
            .arg(format!("--tls-ca-file={}", volume.path("ca.crt").display()))
            .arg(format!("--listen-address={address}"))
            .args(["--gateway-url=http://pi:8080/pushgateway", "--image=cronpush:test", "--resolve-timeout=1s"])
            .env("KUBECONFIG", api.kubeconfig(work))
            .env("POD_NAMESPACE", NAMESPACE)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("a log file"))
            .stderr(log_file)
            .spawn()
            .expect("start cronpush webhook");
        Webhook { child, address, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn wait_ready(&mut self, client: &Client) {
        let child = &mut self.child;
        let mut exited = None;
        let ready = support::eventually_async(PATIENCE, async || {
            if let Ok(tls) = client.connect(b"http/1.1").await
                && let Ok(mut http) = Http::over(tls).await
                && http.send(Method::GET, "/healthz", Bytes::new()).await.is_ok_and(|(status, _)| status == 200)
            {
                return true;
            }
            exited = child.try_wait().ok().flatten();
            exited.is_some()
        })
        .await;
        if let Some(status) = exited {
            panic!("the webhook exited with {status}:\n{}", self.log());
        }
        assert!(ready, "the webhook did not come up:\n{}", self.log());
    }
}

// ---- The client: kube-apiserver with a caBundle ---------------------------------------------------

/// Dials the webhook's address under the Service's name, trusting the CAs given; a handshake
/// that takes longer than PATIENCE fails.
#[derive(Clone)]
struct Client(https::Client);

impl Client {
    fn trusting(address: SocketAddr, cas: &[&[u8]]) -> Client {
        Client(https::Client::trusting(address, SERVICE_HOST, cas))
    }

    async fn connect(&self, alpn: &[u8]) -> Result<TlsStream<TcpStream>, String> {
        match tokio::time::timeout(PATIENCE, self.0.handshake(alpn)).await {
            Ok(Ok(tls)) => Ok(tls),
            Ok(Err(e)) => Err(format!("handshake failed: {e}")),
            Err(_) => Err("handshake timed out".into()),
        }
    }
}

fn served_leaf(tls: &TlsStream<TcpStream>) -> Vec<u8> {
    tls.get_ref().1.peer_certificates().and_then(|chain| chain.first()).map(|c| c.to_vec()).unwrap_or_default()
}

/// An HTTP connection over TLS: HTTP/1.1 or HTTP/2, as ALPN settled.
struct Http(https::Connection);

impl Http {
    async fn over(tls: TlsStream<TcpStream>) -> Result<Http, String> {
        https::Connection::over(tls).await.map(Http)
    }

    async fn send(&mut self, method: Method, path: &str, body: Bytes) -> Result<(u16, Bytes), String> {
        let request = Request::builder()
            .method(method)
            .uri(format!("https://{SERVICE_HOST}{path}"))
            .header("host", SERVICE_HOST)
            .header("content-type", "application/json")
            .body(Full::new(body))
            .map_err(|e| e.to_string())?;
        tokio::time::timeout(PATIENCE, self.0.send(request)).await.unwrap_or_else(|_| Err("no answer".into()))
    }

    /// The CA bundle the webhook hands to the sidecar of a Pod it admits now.
    async fn injected_relay_ca(&mut self) -> Result<String, String> {
        let (_, body) = self.send(Method::POST, "/mutate?timeout=10s", pod_review("ca-probe")).await?;
        let review: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        let patch = base64::engine::general_purpose::STANDARD
            .decode(review["response"]["patch"].as_str().ok_or("no patch")?)
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8(patch).map_err(|e| e.to_string())?;
        let ops: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        let env = ops.as_array().into_iter().flatten().flat_map(|op| match &op["value"] {
            Value::Array(containers) => containers.clone(),
            container => vec![container.clone()],
        });
        let sidecar = env.into_iter().find(|c| c["name"] == "cronpush-sidecar").ok_or("no sidecar")?;
        let ca = sidecar["env"].as_array().into_iter().flatten().find(|e| e["name"] == "CRONPUSH_RELAY_CA");
        Ok(ca.and_then(|e| e["value"].as_str()).ok_or("no CRONPUSH_RELAY_CA")?.to_string())
    }

    /// One review of a CronJob's Pod, as kube-apiserver sends it: answered 200, for this uid,
    /// allowed, with a patch.
    async fn review(&mut self, uid: &str) -> Result<(), String> {
        let (status, body) = self.send(Method::POST, "/mutate?timeout=10s", pod_review(uid)).await?;
        let review: Value = serde_json::from_slice(&body).map_err(|e| format!("HTTP {status}, unreadable: {e}"))?;
        let response = &review["response"];
        if status != 200 || response["uid"] != uid || response["allowed"] != true || !response["patch"].is_string() {
            return Err(format!("HTTP {status}: {review}"));
        }
        Ok(())
    }
}

/// A fake API server that knows the run of `pod_review` and a node that can run it (the webhook
/// injects only where it knows the nodes). It runs a runtime of its own, which may be neither
/// started nor dropped within the test's: both happen on a thread of their own.
struct ApiOfTheRun(Option<FakeApi>);

impl ApiOfTheRun {
    fn start() -> ApiOfTheRun {
        let api = std::thread::spawn(FakeApi::start).join().unwrap();
        let job = "sample-cronjob-29396160";
        api.put(support::webhook::job(job, Some(support::webhook::cronjob_owner(true)), json!({})));
        api.put(support::webhook::sample_cronjob());
        api.put(support::webhook::node("worker-1", "v1.33.1", "amd64"));
        ApiOfTheRun(Some(api))
    }

    fn api(&self) -> &FakeApi {
        self.0.as_ref().expect("running until dropped")
    }
}

impl Drop for ApiOfTheRun {
    fn drop(&mut self) {
        let api = self.0.take();
        let _ = std::thread::spawn(move || drop(api)).join();
    }
}

fn pod_review(uid: &str) -> Bytes {
    let job = "sample-cronjob-29396160";
    let review = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": uid, "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "batch", "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:job-controller"},
            "object": {
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"generateName": format!("{job}-"), "labels": {"job-name": job},
                             "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": job,
                                                  "uid": "job-uid", "controller": true}]},
                "spec": {"containers": [{"name": "main-batch", "image": "busybox"}], "restartPolicy": "Never"}
            },
            "oldObject": null, "dryRun": false
        }
    });
    Bytes::from(review.to_string())
}

// ---- Traffic that must not notice the rotation ----------------------------------------------------

/// What one client saw.
#[derive(Default)]
struct Tally {
    reviews: AtomicU64,
    /// Reviews over connections whose handshake got the new certificate.
    new_handshakes: AtomicU64,
    failures: Mutex<Vec<String>>,
}

impl Tally {
    fn fail(&self, failure: String) {
        self.failures.lock().unwrap().push(failure);
    }

    fn reviews(&self) -> u64 {
        self.reviews.load(Ordering::SeqCst)
    }

    fn new_handshakes(&self) -> u64 {
        self.new_handshakes.load(Ordering::SeqCst)
    }
}

/// The two certificates a handshake may present.
struct Leaves {
    old: Vec<u8>,
    new: Vec<u8>,
}

/// Reviews over one connection opened before the rotation, one after the other, until stopped;
/// the first failure ends it (the connection is not replaced, so a drop shows).
async fn keep_alive(mut http: Http, name: &'static str, tally: Arc<Tally>, stop: Arc<AtomicBool>) {
    let mut seq = 0;
    while !stop.load(Ordering::SeqCst) {
        seq += 1;
        if let Err(e) = http.review(&format!("{name}-{seq}")).await {
            return tally.fail(format!("{name}, review {seq}: {e}"));
        }
        tally.reviews.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// A new connection for every review, HTTP/1.1 and HTTP/2 in turn, until stopped. Once a
/// handshake got the new certificate, no later one may get the old.
async fn fresh(client: Client, name: &'static str, leaves: Arc<Leaves>, tally: Arc<Tally>, stop: Arc<AtomicBool>) {
    let mut seen_new = false;
    for (seq, alpn) in [&b"http/1.1"[..], b"h2"].into_iter().cycle().enumerate() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let tls = match client.connect(alpn).await {
            Ok(tls) => tls,
            Err(e) => {
                tally.fail(format!("{name}, connection {seq}: {e}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let leaf = served_leaf(&tls);
        if leaf == leaves.new {
            seen_new = true;
        } else if leaf != leaves.old {
            tally.fail(format!("{name}, connection {seq}: a certificate neither old nor new"));
        } else if seen_new {
            tally.fail(format!("{name}, connection {seq}: the old certificate after the new one"));
        }
        let reviewed = match Http::over(tls).await {
            Ok(mut http) => http.review(&format!("{name}-{seq}")).await,
            Err(e) => Err(e),
        };
        if let Err(e) = reviewed {
            tally.fail(format!("{name}, connection {seq}: {e}"));
            continue;
        }
        tally.reviews.fetch_add(1, Ordering::SeqCst);
        if seen_new {
            tally.new_handshakes.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Two connections kept alive from before the rotation (HTTP/1.1, and HTTP/2, which
/// kube-apiserver prefers), and two clients opening a new connection for every review.
struct Traffic {
    stop: Arc<AtomicBool>,
    kept_alive: Vec<Arc<Tally>>,
    fresh: Vec<Arc<Tally>>,
    clients: Vec<(&'static str, Arc<Tally>, JoinHandle<()>)>,
}

impl Traffic {
    async fn start(client: &Client, leaves: &Arc<Leaves>) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let mut clients = Vec::new();
        for (name, alpn) in [("kept-alive HTTP/1.1", &b"http/1.1"[..]), ("kept-alive HTTP/2", b"h2")] {
            let http = Http::over(client.connect(alpn).await.expect("connect")).await.expect("HTTP");
            let tally = Arc::new(Tally::default());
            clients.push((name, tally.clone(), tokio::spawn(keep_alive(http, name, tally, stop.clone()))));
        }
        for name in ["fresh connections 1", "fresh connections 2"] {
            let tally = Arc::new(Tally::default());
            let task = fresh(client.clone(), name, leaves.clone(), tally.clone(), stop.clone());
            clients.push((name, tally, tokio::spawn(task)));
        }
        let tallies: Vec<Arc<Tally>> = clients.iter().map(|(_, tally, _)| tally.clone()).collect();
        Traffic { stop, kept_alive: tallies[..2].to_vec(), fresh: tallies[2..].to_vec(), clients }
    }

    fn all(&self) -> impl Iterator<Item = &Arc<Tally>> {
        self.kept_alive.iter().chain(&self.fresh)
    }

    fn failures(&self) -> Vec<String> {
        self.all().flat_map(|t| t.failures.lock().unwrap().clone()).collect()
    }

    /// What went wrong so far, for an assertion's message: the first failures and the log.
    fn diagnosis(&self, webhook: &Webhook) -> String {
        let failures = self.failures();
        let first: Vec<&String> = failures.iter().take(10).collect();
        format!("{} failures, first: {first:#?}\nwebhook log:\n{}", failures.len(), webhook.log())
    }

    /// Stops every client and returns how many reviews each got answered.
    async fn stop(self) -> Vec<(&'static str, u64)> {
        self.stop.store(true, Ordering::SeqCst);
        let mut counts = Vec::new();
        for (name, tally, task) in self.clients {
            task.await.expect("a client task");
            counts.push((name, tally.reviews()));
        }
        counts
    }
}

// ---- The test ----------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_ca_swapped_into_the_secret_volume_is_served_without_a_failed_review() {
    cronpush::tls::install_crypto_provider();
    let work = tempfile::tempdir().unwrap();
    let (old, new) = (Issued::generate(&work.path().join("old")), Issued::generate(&work.path().join("new")));
    assert_ne!(old.ca, new.ca, "two runs make two CAs");
    std::fs::create_dir(work.path().join("volume")).unwrap();
    let mut volume = SecretVolume::create(&work.path().join("volume"), &old);
    let api = ApiOfTheRun::start();
    let mut webhook = Webhook::start(&volume, work.path(), api.api());
    let bundle = Client::trusting(webhook.address, &[&old.ca, &new.ca]);
    let only_new = Client::trusting(webhook.address, &[&new.ca]);
    webhook.wait_ready(&bundle).await;
    let leaves = Arc::new(Leaves { old: old.leaf(), new: new.leaf() });
    assert_eq!(served_leaf(&bundle.connect(b"h2").await.unwrap()), leaves.old);
    assert!(only_new.connect(b"h2").await.is_err(), "before the rotation, the new CA alone is not enough");

    let traffic = Traffic::start(&bundle, &leaves).await;
    let flowing = support::eventually_async(PATIENCE, async || traffic.all().all(|t| t.reviews() >= 10)).await;
    assert!(flowing, "no traffic before the rotation: {}", traffic.diagnosis(&webhook));
    let swapped = Instant::now();
    volume.write(&new);
    let served =
        support::eventually_async(PATIENCE, async || traffic.fresh.iter().all(|t| t.new_handshakes() > 0)).await;
    let took = swapped.elapsed();
    assert!(served, "new handshakes never got the new certificate: {}", traffic.diagnosis(&webhook));
    assert!(took < ROTATION_DEADLINE, "the new certificate came after {took:?}: {}", traffic.diagnosis(&webhook));
    // Then both kinds of traffic go on: the fresh handshakes all with the new certificate, the
    // connections from before the rotation with the old one.
    let kept_before: Vec<u64> = traffic.kept_alive.iter().map(|t| t.reviews()).collect();
    let went_on = support::eventually_async(PATIENCE, async || {
        traffic.fresh.iter().all(|t| t.new_handshakes() >= HANDSHAKES_AFTER)
            && traffic.kept_alive.iter().zip(&kept_before).all(|(t, before)| t.reviews() >= before + REVIEWS_AFTER)
    })
    .await;
    let diagnosis = traffic.diagnosis(&webhook);
    let failures = traffic.failures().len();
    let counts = traffic.stop().await;
    assert_eq!(failures, 0, "no handshake, review or connection may fail: {diagnosis}");
    assert!(went_on, "traffic did not go on after the rotation ({counts:?}): {diagnosis}");
    assert_eq!(served_leaf(&only_new.connect(b"h2").await.unwrap()), leaves.new, "the new CA alone now suffices");
    // Pods admitted from now on get the new CA for their sidecars, which will meet the relay
    // with the new certificate (it is reread within a second).
    let mut http = Http::over(only_new.connect(b"http/1.1").await.unwrap()).await.unwrap();
    let mut injected = String::new();
    support::eventually_async(Duration::from_secs(3), async || {
        injected = http.injected_relay_ca().await.unwrap();
        injected.as_bytes() == new.ca.as_slice()
    })
    .await;
    assert_eq!(injected.as_bytes(), new.ca.as_slice(), "sidecars admitted after the rotation trust the new CA");
    eprintln!("the new certificate was served {took:?} after the swap; reviews answered: {counts:?}");
}
