//! The TLS server as kube-apiserver and the injected sidecars meet it: certificates from
//! `cronpush certs`, a rustls client that trusts only that CA and dials `x.y.svc`, HTTP/1.1 and
//! HTTP/2 over ALPN, certificate rotation on disk while traffic flows, and graceful shutdown.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Path as UrlPath;
use axum::http::Version;
use axum::routing::get;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use cronpush::certs::{CertsArgs, run as certs};
use cronpush::http_server::{ServeOptions, serve_with};
use cronpush::tls::{Reload, ReloadHandle, ReloadOptions, ReloadingCert, TlsError};

/// The name kube-apiserver dials for Service `x` in namespace `y`.
const SERVICE_NAME: &str = "x.y.svc";
const PATIENCE: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Certificates

/// A CA from `cronpush certs` and a place to renew serving pairs from it.
struct Pki {
    dir: tempfile::TempDir,
    ca_pem: Vec<u8>,
}

#[derive(Clone)]
struct Pair {
    cert: Vec<u8>,
    key: Vec<u8>,
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        certs(&args(dir.path(), false)).expect("cronpush certs");
        let ca_pem = std::fs::read(dir.path().join("ca.crt")).expect("ca.crt");
        Self { dir, ca_pem }
    }

    fn pair(&self) -> Pair {
        let read = |name| std::fs::read(self.dir.path().join(name)).expect("read pair");
        Pair { cert: read("tls.crt"), key: read("tls.key") }
    }

    /// A new serving pair from the same CA, as `cronpush certs --renew` makes it.
    fn renewed(&self) -> Pair {
        certs(&args(self.dir.path(), true)).expect("cronpush certs --renew");
        self.pair()
    }
}

fn args(out: &Path, renew: bool) -> CertsArgs {
    CertsArgs {
        service: "x".into(),
        namespace: "y".into(),
        out: out.to_owned(),
        force: false,
        renew,
        extra_names: vec![],
    }
}

fn leaf_der(pair: &Pair) -> Vec<u8> {
    CertificateDer::from_pem_slice(&pair.cert).expect("leaf").to_vec()
}

/// A Secret volume as the kubelet writes it: the files are symlinks into `..data`, a symlink to
/// a timestamped directory, and an update swaps `..data` with one rename.
struct SecretVolume {
    dir: PathBuf,
    generation: u32,
}

impl SecretVolume {
    fn create(dir: &Path, pair: &Pair) -> Self {
        let mut volume = Self { dir: dir.to_owned(), generation: 0 };
        volume.update(pair);
        for name in ["tls.crt", "tls.key"] {
            std::os::unix::fs::symlink(format!("..data/{name}"), dir.join(name)).expect("file symlink");
        }
        volume
    }

    fn update(&mut self, pair: &Pair) {
        let old = self.timestamped();
        self.generation += 1;
        let new = self.timestamped();
        std::fs::create_dir(self.dir.join(&new)).expect("timestamped dir");
        std::fs::write(self.dir.join(&new).join("tls.crt"), &pair.cert).expect("write cert");
        std::fs::write(self.dir.join(&new).join("tls.key"), &pair.key).expect("write key");
        std::os::unix::fs::symlink(&new, self.dir.join("..data_tmp")).expect("..data_tmp");
        std::fs::rename(self.dir.join("..data_tmp"), self.dir.join("..data")).expect("swap ..data");
        let _ = std::fs::remove_dir_all(self.dir.join(old));
    }

    fn timestamped(&self) -> String {
        format!("..2026_11_25_10_00_00.{:09}", self.generation)
    }

    fn cert(&self) -> PathBuf {
        self.dir.join("tls.crt")
    }

    fn key(&self) -> PathBuf {
        self.dir.join("tls.key")
    }
}

// ---------------------------------------------------------------------------------------------
// Server

fn app() -> Router {
    Router::new().route("/", get(|version: Version| async move { format!("{version:?}") })).route(
        "/sleep/{millis}",
        get(|UrlPath(millis): UrlPath<u64>| async move {
            tokio::time::sleep(Duration::from_millis(millis)).await;
            "slept"
        }),
    )
}

struct Server {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<io::Result<()>>,
    reload: ReloadHandle,
}

impl Server {
    async fn start(cert: &Path, key: &Path, reload: ReloadOptions, serve: ServeOptions) -> Self {
        Self::start_with_app(cert, key, reload, serve, app()).await
    }

    async fn start_with_app(cert: &Path, key: &Path, reload: ReloadOptions, serve: ServeOptions, app: Router) -> Self {
        cronpush::tls::install_crypto_provider();
        let (config, handle) = ReloadingCert::spawn_with(cert, key, reload).expect("load the pair");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (shutdown, signalled) = oneshot::channel::<()>();
        let task = tokio::spawn(serve_with(
            listener,
            Some(config),
            app,
            async move {
                let _ = signalled.await;
            },
            serve,
        ));
        Self { addr, shutdown: Some(shutdown), task, reload: handle }
    }

    fn signal_shutdown(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// Events only: a poll this slow shows the change came from the directory watch.
fn events_only() -> ReloadOptions {
    ReloadOptions { poll_interval: Duration::from_secs(3600), ..ReloadOptions::default() }
}

// ---------------------------------------------------------------------------------------------
// Client: what kube-apiserver does

fn connector_trusting(
    ca_pem: &[u8],
    alpn: &[&[u8]],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert.expect("CA")).expect("root");
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(versions)
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    TlsConnector::from(Arc::new(config))
}

#[derive(Clone)]
struct Client {
    ca_pem: Arc<Vec<u8>>,
    addr: SocketAddr,
}

impl Client {
    async fn connect_as(&self, name: &str, alpn: &[&[u8]]) -> io::Result<TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(self.addr).await?;
        let name = ServerName::try_from(name.to_owned()).map_err(io::Error::other)?;
        let connector = connector_trusting(&self.ca_pem, alpn, rustls::DEFAULT_VERSIONS);
        tokio::time::timeout(PATIENCE, connector.connect(name, tcp)).await?
    }

    async fn connect(&self, alpn: &[&[u8]]) -> io::Result<TlsStream<TcpStream>> {
        self.connect_as(SERVICE_NAME, alpn).await
    }

    /// The leaf certificate a new handshake gets.
    async fn served_leaf(&self) -> io::Result<Vec<u8>> {
        let tls = self.connect(&[b"http/1.1"]).await?;
        Ok(peer_leaf(&tls))
    }

    async fn wait_until_served(&self, expected: &[u8]) {
        let deadline = Instant::now() + PATIENCE;
        while self.served_leaf().await.expect("handshake") != expected {
            assert!(Instant::now() < deadline, "the new certificate was not served within {PATIENCE:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn peer_leaf(tls: &TlsStream<TcpStream>) -> Vec<u8> {
    tls.get_ref().1.peer_certificates().and_then(|chain| chain.first()).map(|c| c.to_vec()).unwrap_or_default()
}

fn alpn(tls: &TlsStream<TcpStream>) -> Option<Vec<u8>> {
    tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec)
}

/// An HTTP connection over TLS, HTTP/1.1 or HTTP/2 as ALPN decided.
enum Http {
    One(hyper::client::conn::http1::SendRequest<Empty<Bytes>>),
    Two(hyper::client::conn::http2::SendRequest<Empty<Bytes>>),
}

impl Http {
    async fn over(tls: TlsStream<TcpStream>) -> io::Result<Self> {
        let h2 = alpn(&tls).as_deref() == Some(b"h2");
        let io = TokioIo::new(tls);
        if h2 {
            let (sender, connection) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await.map_err(io::Error::other)?;
            tokio::spawn(connection);
            Ok(Self::Two(sender))
        } else {
            let (sender, connection) = hyper::client::conn::http1::handshake(io).await.map_err(io::Error::other)?;
            tokio::spawn(connection);
            Ok(Self::One(sender))
        }
    }

    async fn get(&mut self, path: &str) -> io::Result<(u16, String)> {
        let request = Request::get(format!("https://{SERVICE_NAME}{path}"))
            .header("host", SERVICE_NAME)
            .body(Empty::new())
            .map_err(io::Error::other)?;
        let response = match self {
            Self::One(sender) => {
                sender.ready().await.map_err(io::Error::other)?;
                sender.send_request(request).await
            }
            Self::Two(sender) => {
                sender.ready().await.map_err(io::Error::other)?;
                sender.send_request(request).await
            }
        }
        .map_err(io::Error::other)?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.map_err(io::Error::other)?.to_bytes();
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}

async fn get_once(client: &Client, alpn: &[&[u8]], path: &str) -> io::Result<(u16, String)> {
    Http::over(client.connect(alpn).await?).await?.get(path).await
}

/// One GET over HTTP/2 with the h2 crate itself. hyper's HTTP/2 client cannot tell whether an
/// in-flight request survives a graceful shutdown: right after handing a request to h2 it
/// checks the connection again, and if the server's GOAWAY arrived in between it fails that
/// request, although the stream was sent and the server answers it (hyper 1.x,
/// proto/h2/client.rs, "Check poll_ready() again"). h2 fails a stream only when the server
/// refuses or resets it.
async fn h2_get_once(client: &Client, path: &str) -> io::Result<(u16, String)> {
    let (mut sender, connection) =
        h2::client::handshake(client.connect(&[b"h2"]).await?).await.map_err(io::Error::other)?;
    tokio::spawn(connection);
    let request = Request::get(format!("https://{SERVICE_NAME}{path}")).body(()).map_err(io::Error::other)?;
    let (response, _) = sender.send_request(request, true).map_err(io::Error::other)?;
    let response = response.await.map_err(io::Error::other)?;
    let status = response.status().as_u16();
    let mut body = response.into_body();
    let mut text = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(io::Error::other)?;
        let _ = body.flow_control().release_capacity(chunk.len());
        text.extend_from_slice(&chunk);
    }
    Ok((status, String::from_utf8_lossy(&text).into_owned()))
}

// ---------------------------------------------------------------------------------------------
// Traffic that must not notice a rotation

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failures: Mutex<Vec<String>>,
}

impl Tally {
    fn record(&self, what: &str, outcome: io::Result<(u16, String)>) {
        match outcome {
            Ok((200, _)) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
            }
            Ok((status, body)) => self.fail(format!("{what}: status {status}: {body}")),
            Err(e) => self.fail(format!("{what}: {e}")),
        }
    }

    fn fail(&self, failure: String) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.push(failure);
        }
    }
}

/// Requests over one kept-alive HTTP/1.1 connection, one kept-alive HTTP/2 connection, and
/// over new connections, until stopped.
struct Traffic {
    stop: Arc<AtomicBool>,
    kept_alive: Arc<Tally>,
    fresh: Arc<Tally>,
    tasks: Vec<JoinHandle<()>>,
}

impl Traffic {
    async fn start(client: &Client) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (kept_alive, fresh) = (Arc::new(Tally::default()), Arc::new(Tally::default()));
        let mut tasks = Vec::new();
        for protocol in [&b"http/1.1"[..], b"h2"] {
            let mut http = Http::over(client.connect(&[protocol]).await.expect("connect")).await.expect("http");
            let (stop, tally) = (stop.clone(), kept_alive.clone());
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    tally.record("kept-alive", http.get("/").await);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }));
        }
        let (client, stop_fresh, tally) = (client.clone(), stop.clone(), fresh.clone());
        tasks.push(tokio::spawn(async move {
            let protocols: [&[u8]; 2] = [b"http/1.1", b"h2"];
            for protocol in protocols.iter().cycle() {
                if stop_fresh.load(Ordering::Relaxed) {
                    break;
                }
                tally.record("new connection", get_once(&client, &[protocol], "/").await);
            }
        }));
        Self { stop, kept_alive, fresh, tasks }
    }

    fn counts(&self) -> (u64, u64) {
        (self.kept_alive.ok.load(Ordering::Relaxed), self.fresh.ok.load(Ordering::Relaxed))
    }

    /// Stops and asserts that every request succeeded and that both kinds kept flowing.
    async fn finish(self, before_rotation: (u64, u64)) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.expect("traffic task");
        }
        for tally in [&self.kept_alive, &self.fresh] {
            let failures = tally.failures.lock().map(|f| f.clone()).unwrap_or_default();
            assert!(failures.is_empty(), "requests failed: {failures:?}");
        }
        let after = (self.kept_alive.ok.load(Ordering::Relaxed), self.fresh.ok.load(Ordering::Relaxed));
        assert!(after.0 > before_rotation.0 + 10, "kept-alive connections kept working: {before_rotation:?} {after:?}");
        assert!(after.1 > before_rotation.1 + 10, "new connections kept working: {before_rotation:?} {after:?}");
    }
}

async fn wait_for_some_traffic(traffic: &Traffic) -> (u64, u64) {
    let deadline = Instant::now() + PATIENCE;
    while traffic.counts().0 < 10 || traffic.counts().1 < 5 {
        assert!(Instant::now() < deadline, "no traffic");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    traffic.counts()
}

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_and_http2_by_alpn_with_the_service_name_kube_apiserver_uses() {
    let pki = Pki::new();
    let dir = pki.dir.path();
    let server =
        Server::start(&dir.join("tls.crt"), &dir.join("tls.key"), events_only(), ServeOptions::default()).await;
    let client = Client { ca_pem: Arc::new(pki.ca_pem.clone()), addr: server.addr };

    let tls = client.connect(&[b"h2", b"http/1.1"]).await.expect("handshake");
    assert_eq!(alpn(&tls).as_deref(), Some(&b"h2"[..]), "h2 is preferred when offered");
    assert_eq!(Http::over(tls).await.expect("h2").get("/").await.expect("GET"), (200, "HTTP/2.0".into()));

    let tls = client.connect(&[b"http/1.1"]).await.expect("handshake");
    assert_eq!(alpn(&tls).as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(Http::over(tls).await.expect("h1").get("/").await.expect("GET"), (200, "HTTP/1.1".into()));

    // A client that offers no ALPN at all still gets HTTP/1.1.
    let tls = client.connect(&[]).await.expect("handshake");
    assert_eq!(alpn(&tls), None);
    assert_eq!(Http::over(tls).await.expect("h1").get("/").await.expect("GET"), (200, "HTTP/1.1".into()));

    for name in ["x", "x.y", "x.y.svc.cluster.local"] {
        client.connect_as(name, &[b"h2"]).await.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let wrong = client.connect_as("x.other.svc", &[b"h2"]).await;
    assert!(wrong.is_err(), "a name outside the certificate is refused by the client");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_1_2_and_1_3_are_served_and_tls_1_1_is_not() {
    let pki = Pki::new();
    let dir = pki.dir.path();
    let server =
        Server::start(&dir.join("tls.crt"), &dir.join("tls.key"), events_only(), ServeOptions::default()).await;
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let connector = connector_trusting(&pki.ca_pem, &[b"http/1.1"], &[version]);
        let tcp = TcpStream::connect(server.addr).await.expect("connect");
        let tls = connector.connect(ServerName::try_from(SERVICE_NAME).expect("name"), tcp).await.expect("handshake");
        assert_eq!(tls.get_ref().1.protocol_version(), Some(version.version));
    }
    // rustls cannot speak TLS 1.1, so the ClientHello is written by hand: the same hello says
    // TLS 1.2 (the control, answered by a ServerHello) and then TLS 1.1 (refused).
    let answer = raw_hello_answer(server.addr, [3, 3]).await;
    assert_eq!(answer.get(..3), Some(&[0x16, 3, 3][..]), "a TLS 1.2 handshake record: {answer:?}");
    assert_eq!(answer.get(5), Some(&2), "a ServerHello: {answer:?}");
    let answer = raw_hello_answer(server.addr, [3, 2]).await;
    // An alert record, fatal, protocol_version: the server names the reason and says no more.
    assert_eq!(answer, [0x15, 3, 3, 0, 2, 2, 70], "TLS 1.1 refused");
}

/// Sends a ClientHello with `version` as client_version (and no supported_versions extension,
/// as a TLS 1.1 client sends it) and returns the first bytes of the answer.
async fn raw_hello_answer(addr: SocketAddr, version: [u8; 2]) -> Vec<u8> {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(&client_hello(version)).await.expect("send hello");
    let mut answer = vec![0; 16];
    let mut read = 0;
    while read < answer.len() {
        match tokio::time::timeout(PATIENCE, tcp.read(&mut answer[read..])).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => read += n,
            Err(_) => panic!("no answer to the ClientHello"),
        }
    }
    answer.truncate(read);
    answer
}

fn client_hello(version: [u8; 2]) -> Vec<u8> {
    let with_len16 = |bytes: &[u8]| [&(bytes.len() as u16).to_be_bytes()[..], bytes].concat();
    let name = SERVICE_NAME.as_bytes();
    let server_name = with_len16(&[&[0][..], &with_len16(name)].concat());
    let extensions = [
        &[0x00, 0x00][..],
        &with_len16(&server_name)[..],
        // supported_groups: secp256r1, x25519; ec_point_formats: uncompressed
        &[0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x17, 0x00, 0x1d],
        &[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00],
        // signature_algorithms: ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256, rsa_pkcs1_sha256
        &[0x00, 0x0d, 0x00, 0x08, 0x00, 0x06, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01],
    ]
    .concat();
    // ECDHE-ECDSA/RSA with AES-GCM (TLS 1.2) and with AES-CBC-SHA (what TLS 1.1 clients offer).
    let suites = [0xc0, 0x2b, 0xc0, 0x2f, 0xc0, 0x09, 0xc0, 0x13, 0x00, 0x2f];
    let body = [&version[..], &[7; 32], &[0], &with_len16(&suites), &[1, 0], &with_len16(&extensions)].concat();
    let handshake = [&[1u8][..], &(body.len() as u32).to_be_bytes()[1..], &body].concat();
    [&[0x16, 3, 1][..], &with_len16(&handshake)].concat()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_is_never_served() {
    let pki = Pki::new();
    let dir = pki.dir.path();
    let server =
        Server::start(&dir.join("tls.crt"), &dir.join("tls.key"), events_only(), ServeOptions::default()).await;
    // HTTP/1.1, and HTTP/2 with prior knowledge: all a plain client gets is a TLS alert, then EOF.
    for request in
        [&b"GET / HTTP/1.1\r\nHost: x.y.svc\r\nConnection: close\r\n\r\n"[..], b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"]
    {
        let mut tcp = TcpStream::connect(server.addr).await.expect("connect");
        tcp.write_all(request).await.expect("send");
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(PATIENCE, tcp.read_to_end(&mut answer)).await.expect("the server closes");
        assert!(answer.is_empty() || answer.first() == Some(&0x15), "plain HTTP answered: {answer:?}");
        assert!(!String::from_utf8_lossy(&answer).contains("HTTP/"), "plain HTTP answered: {answer:?}");
    }
    // The server is still up for real clients.
    let client = Client { ca_pem: Arc::new(pki.ca_pem.clone()), addr: server.addr };
    assert_eq!(get_once(&client, &[b"h2"], "/").await.expect("GET").0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_the_handshake_is_cut_off() {
    let pki = Pki::new();
    let dir = pki.dir.path();
    let options = ServeOptions { header_read_timeout: Duration::from_millis(300), ..ServeOptions::default() };
    let server = Server::start(&dir.join("tls.crt"), &dir.join("tls.key"), events_only(), options).await;
    let started = Instant::now();
    let mut silent = TcpStream::connect(server.addr).await.expect("connect");
    let mut buffer = [0; 64];
    let read = tokio::time::timeout(PATIENCE, silent.read(&mut buffer)).await.expect("the server hangs up");
    assert!(matches!(read, Ok(0) | Err(_)), "closed, not answered: {read:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "after about the handshake timeout: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_by_a_secret_volume_symlink_swap() {
    let pki = Pki::new();
    let volume_dir = tempfile::tempdir().expect("tempdir");
    let first = pki.pair();
    let mut volume = SecretVolume::create(volume_dir.path(), &first);
    let server = Server::start(&volume.cert(), &volume.key(), events_only(), ServeOptions::default()).await;
    let client = Client { ca_pem: Arc::new(pki.ca_pem.clone()), addr: server.addr };
    assert_eq!(client.served_leaf().await.expect("handshake"), leaf_der(&first));

    let traffic = Traffic::start(&client).await;
    let before = wait_for_some_traffic(&traffic).await;
    for _ in 0..2 {
        let next = pki.renewed();
        volume.update(&next);
        client.wait_until_served(&leaf_der(&next)).await;
        assert_eq!(server.reload.current().end_entity_cert().map(|c| c.to_vec()).ok(), Some(leaf_der(&next)));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    traffic.finish(before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_by_overwriting_the_files_in_place() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let first = pki.pair();
    write_pair(&cert, &key, &first);
    let server = Server::start(&cert, &key, events_only(), ServeOptions::default()).await;
    let client = Client { ca_pem: Arc::new(pki.ca_pem.clone()), addr: server.addr };
    assert_eq!(client.served_leaf().await.expect("handshake"), leaf_der(&first));

    let traffic = Traffic::start(&client).await;
    let before = wait_for_some_traffic(&traffic).await;
    for _ in 0..2 {
        let next = pki.renewed();
        // Truncate and write, one file after the other: readers can see every state in between.
        write_pair(&cert, &key, &next);
        client.wait_until_served(&leaf_der(&next)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    traffic.finish(before).await;
}

fn write_pair(cert: &Path, key: &Path, pair: &Pair) {
    std::fs::write(cert, &pair.cert).expect("write cert");
    std::fs::write(key, &pair.key).expect("write key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_pair_on_disk_keeps_the_old_certificate_served() {
    let pki = Pki::new();
    let volume_dir = tempfile::tempdir().expect("tempdir");
    let good = pki.pair();
    let mut volume = SecretVolume::create(volume_dir.path(), &good);
    let options = ReloadOptions { poll_interval: Duration::from_millis(200), ..ReloadOptions::default() };
    let server = Server::start(&volume.cert(), &volume.key(), options, ServeOptions::default()).await;
    let client = Client { ca_pem: Arc::new(pki.ca_pem.clone()), addr: server.addr };
    let traffic = Traffic::start(&client).await;
    let before = wait_for_some_traffic(&traffic).await;

    let next = pki.renewed();
    let broken = [
        ("a key that is not the certificate's", Pair { cert: next.cert.clone(), key: good.key.clone() }),
        ("a truncated certificate", Pair { cert: next.cert[..next.cert.len() / 2].to_vec(), key: next.key.clone() }),
        ("no key at all", Pair { cert: next.cert.clone(), key: Vec::new() }),
    ];
    for (what, pair) in broken {
        volume.update(&pair);
        // Several settle and poll periods: time enough for any reload to have happened.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert_eq!(client.served_leaf().await.expect("handshake"), leaf_der(&good), "{what}: old one served");
        let reload = &server.reload;
        let outcome = tokio::task::block_in_place(|| reload.reload_now());
        assert!(
            matches!(
                outcome,
                Err(TlsError::KeyMismatch { .. } | TlsError::Certificate { .. } | TlsError::PrivateKey { .. })
            ),
            "{what}: {outcome:?}"
        );
    }
    let first = tokio::task::block_in_place(|| server.reload.reload_now());
    assert!(first.is_err(), "still broken on disk");
    volume.update(&next);
    client.wait_until_served(&leaf_der(&next)).await;
    let settled = tokio::task::block_in_place(|| server.reload.reload_now());
    assert!(matches!(settled, Ok(Reload::Unchanged)), "{settled:?}");
    traffic.finish(before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_alone_reloads_where_no_events_come() {
    let pki = Pki::new();
    let volume_dir = tempfile::tempdir().expect("tempdir");
    let mut volume = SecretVolume::create(volume_dir.path(), &pki.pair());
    let options =
        ReloadOptions { poll_interval: Duration::from_millis(300), watch_events: false, ..ReloadOptions::default() };
    let server = Server::start(&volume.cert(), &volume.key(), options, ServeOptions::default()).await;
    let client = Client { ca_pem: Arc::new(pki.ca_pem.clone()), addr: server.addr };
    let swapped = pki.renewed();
    volume.update(&swapped);
    client.wait_until_served(&leaf_der(&swapped)).await;
    // Written in place through the symlinks: same paths, same inodes, new contents.
    let overwritten = pki.renewed();
    write_pair(&volume.cert(), &volume.key(), &overwritten);
    client.wait_until_served(&leaf_der(&overwritten)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_in_flight_requests_finish_and_refuses_new_connections() {
    let pki = Pki::new();
    let dir = pki.dir.path();
    let (started, mut requests) = mpsc::unbounded_channel::<()>();
    let app = app().route(
        "/slow",
        get(move || {
            let started = started.clone();
            async move {
                let _ = started.send(());
                tokio::time::sleep(Duration::from_millis(1000)).await;
                "slow done"
            }
        }),
    );
    let mut server =
        Server::start_with_app(&dir.join("tls.crt"), &dir.join("tls.key"), events_only(), ServeOptions::default(), app)
            .await;
    let client = Client { ca_pem: Arc::new(pki.ca_pem.clone()), addr: server.addr };
    let in_flight = [
        tokio::spawn({
            let client = client.clone();
            async move { get_once(&client, &[b"http/1.1"], "/slow").await }
        }),
        tokio::spawn({
            let client = client.clone();
            async move { h2_get_once(&client, "/slow").await }
        }),
    ];
    for _ in 0..2 {
        tokio::time::timeout(PATIENCE, requests.recv()).await.expect("the slow requests started");
    }
    // An idle kept-alive connection is closed by the drain, not waited for.
    let mut idle = Http::over(client.connect(&[b"http/1.1"]).await.expect("connect")).await.expect("http");
    assert_eq!(idle.get("/").await.expect("GET").0, 200);

    let signalled = Instant::now();
    server.signal_shutdown();
    let deadline = Instant::now() + Duration::from_secs(2);
    // A connection the kernel queued before the listener closed is reset; once it is closed,
    // connections are refused. None is served.
    loop {
        match client.connect(&[b"http/1.1"]).await {
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => break,
            Err(e) => assert!(Instant::now() < deadline, "still not refused after 2 s: {e}"),
            Ok(_) => panic!("a TLS connection was accepted after shutdown was signalled"),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for request in in_flight {
        assert_eq!(request.await.expect("task").expect("the in-flight request completes"), (200, "slow done".into()));
    }
    let served = tokio::time::timeout(PATIENCE, &mut server.task).await.expect("serve returns").expect("task");
    served.expect("serve ends cleanly");
    assert!(signalled.elapsed() < Duration::from_secs(3), "drained without waiting for the grace period");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grace_period_bounds_the_drain() {
    let pki = Pki::new();
    let dir = pki.dir.path();
    let options = ServeOptions { grace_period: Duration::from_millis(300), ..ServeOptions::default() };
    let mut server = Server::start(&dir.join("tls.crt"), &dir.join("tls.key"), events_only(), options).await;
    let client = Client { ca_pem: Arc::new(pki.ca_pem.clone()), addr: server.addr };
    let stuck = tokio::spawn(async move { get_once(&client, &[b"h2"], "/sleep/60000").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let signalled = Instant::now();
    server.signal_shutdown();
    let served = tokio::time::timeout(PATIENCE, &mut server.task).await.expect("serve returns").expect("task");
    served.expect("serve ends cleanly");
    assert!(signalled.elapsed() < Duration::from_secs(2), "returned after the grace period: {:?}", signalled.elapsed());
    let outcome = tokio::time::timeout(PATIENCE, stuck).await.expect("the client is released").expect("task");
    assert!(outcome.is_err(), "the stuck request was cut off: {outcome:?}");
}
