//! Clients that connect and stop, against the real binary (issue 19): the gateway with the file
//! limit a new user's shell gives it (1,024; the shipped unit's LimitNOFILE raises it to 65,536)
//! and 10,000 connections that send half a request's head and then nothing; a body that
//! trickles; a kept-alive connection left idle; a TLS handshake never finished; and the
//! webhook's port under the same. Short timeouts from the flags keep it fast.
//!
//! What it checks: the gateway keeps answering an honest client while it is out of file
//! descriptors, closes every stalled connection within its timeouts, does not spin while
//! `accept` fails, and says so in its log without a line per attempt.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use support::https::Connection;
use support::{Server, cpu_seconds, cronpush_binary, listening_address, read_log};

/// A new user's default soft limit (and systemd's for services without LimitNOFILE).
const NOFILE: u32 = 1024;
/// Far more than the limit: most must wait in the listen queue or be refused.
const STALLED: usize = 10_000;
const TIMEOUTS: [&str; 3] = ["--web.read-header-timeout=1s", "--web.read-body-timeout=1s", "--web.idle-timeout=2s"];
/// Half of a push's head: what a slow or broken client leaves the server waiting on.
const HALF_HEAD: &[u8] = b"PUT /metrics/job/stalled HTTP/1.1\r\nHost: pi\r\nContent-Le";
/// How long a stalled client waits to connect: while the listen queue is full the kernel drops
/// its SYN, and the client sends it again after 1 s, so some get in as the queue drains.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Floods run one at a time: two at once on a small machine measure each other.
static FLOOD: std::sync::Mutex<()> = std::sync::Mutex::new(());
/// What `accept` failing puts in the log (http_server/accept.rs).
const ACCEPT_FAILING: &str = "cannot accept connections";

/// The test opens more sockets than a default soft limit allows: raise it to the hard limit.
fn raise_own_file_limit() {
    let pid = std::process::id().to_string();
    let hard = Command::new("prlimit").args(["--pid", &pid, "--nofile", "--output=HARD", "--noheadings"]).output();
    let hard = String::from_utf8(hard.expect("prlimit (util-linux)").stdout).expect("UTF-8");
    let raised = Command::new("prlimit").args(["--pid", &pid, &format!("--nofile={}:", hard.trim())]).status();
    assert!(raised.expect("prlimit").success(), "cannot raise the test's own file limit to {hard}");
}

/// How one stalled connection ended, seen from the client.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fate {
    /// Not connected within the connect timeout: the listen queue was full.
    NotConnected,
    /// Closed by the server (EOF or reset) this long after it connected.
    Closed(Duration),
    /// The server answered something, which a half head does not deserve.
    Answered,
    /// Still open for the client when the test stopped waiting: a connection the server's
    /// kernel never completed ([`established_at`] says why), or one the server failed to close.
    Open,
}

/// Connects, sends `greeting`, and waits until the server closes the connection or `give_up`.
async fn stall(address: SocketAddr, greeting: &'static [u8], give_up: tokio::time::Instant) -> Fate {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let connect = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(address)).await;
    let Ok(Ok(mut stream)) = connect else {
        return Fate::NotConnected;
    };
    let connected = Instant::now();
    if stream.write_all(greeting).await.is_err() {
        return Fate::Closed(connected.elapsed());
    }
    let mut buffer = [0; 512];
    match tokio::time::timeout_at(give_up, stream.read(&mut buffer)).await {
        Ok(Ok(0) | Err(_)) => Fate::Closed(connected.elapsed()),
        Ok(Ok(_)) => Fate::Answered,
        Err(_) => Fate::Open,
    }
}

/// `count` connections at once, each sending `greeting` and stalling; their fates when all are
/// closed or `within` has passed.
fn stall_many(address: SocketAddr, count: usize, greeting: &'static [u8], within: Duration) -> Vec<Fate> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(async {
        let give_up = tokio::time::Instant::now() + within;
        let tasks: Vec<_> = (0..count).map(|_| tokio::spawn(stall(address, greeting, give_up))).collect();
        let mut fates = Vec::with_capacity(count);
        for task in tasks {
            fates.push(task.await.expect("task"));
        }
        fates
    })
}

/// What happened to a flood of stalled connections.
#[derive(Debug)]
struct Tally {
    not_connected: usize,
    closed: usize,
    answered: usize,
    open: usize,
    /// The longest a connected one stayed open.
    longest: Duration,
}

fn tally(fates: &[Fate]) -> Tally {
    let count = |wanted: fn(&Fate) -> bool| fates.iter().filter(|f| wanted(f)).count();
    Tally {
        not_connected: count(|f| *f == Fate::NotConnected),
        closed: count(|f| matches!(f, Fate::Closed(_))),
        answered: count(|f| *f == Fate::Answered),
        open: count(|f| *f == Fate::Open),
        longest: fates
            .iter()
            .filter_map(|f| if let Fate::Closed(after) = f { Some(*after) } else { None })
            .max()
            .unwrap_or_default(),
    }
}

/// Pushes and scrapes as an honest client would, until `stop`; each round's time.
fn push_and_scrape_until(gateway: &Server, stop: &std::sync::atomic::AtomicBool) -> Vec<Duration> {
    let mut rounds = Vec::new();
    let mut round = 0;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        round += 1;
        let started = Instant::now();
        let pushed = gateway.put("/metrics/job/honest", &format!("honest_round {round}\n"));
        assert_eq!(pushed.status, 200, "{}", pushed.body);
        let scrape = gateway.get("/metrics");
        assert_eq!(scrape.status, 200);
        let landed = format!("honest_round{{instance=\"\",job=\"honest\"}} {round}");
        assert!(scrape.body.contains(&landed), "the push is in the scrape: {landed}");
        rounds.push(started.elapsed());
        std::thread::sleep(Duration::from_millis(200));
    }
    rounds
}

#[test]
fn ten_thousand_stalled_connections_do_not_take_the_gateway_down() {
    let _alone = FLOOD.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    raise_own_file_limit();
    let binary = cronpush_binary().to_str().expect("UTF-8 path");
    let limit = format!("--nofile={NOFILE}:{NOFILE}");
    let gateway = Server::start(Path::new("prlimit"), &[&limit, "--", binary, "gateway"], &TIMEOUTS, "");
    let address = SocketAddr::from(([127, 0, 0, 1], gateway.port));
    let (cpu_before, started) = (cpu_seconds(gateway.pid()), Instant::now());

    let stop = std::sync::atomic::AtomicBool::new(false);
    let (fates, rounds, out_of_files) = std::thread::scope(|scope| {
        let honest = scope.spawn(|| {
            std::thread::sleep(Duration::from_millis(300));
            push_and_scrape_until(&gateway, &stop)
        });
        let watch = scope.spawn(|| cpu_while_out_of_files(gateway.pid(), NOFILE as usize, &stop));
        let fates = stall_many(address, STALLED, HALF_HEAD, Duration::from_secs(15));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (fates, honest.join().expect("the honest client"), watch.join().expect("the watch"))
    });
    let (cpu, wall) = (cpu_seconds(gateway.pid()) - cpu_before, started.elapsed());
    let tally = tally(&fates);
    let half_open_only = tally.open;
    let all_closed = support::eventually(Duration::from_secs(5), || established_at(gateway.port) == 0);
    let held = open_files(gateway.pid());
    let log = gateway.stderr();
    let accept_lines: Vec<&str> = log.lines().filter(|l| l.contains("accept")).collect();
    let failing_lines = accept_lines.iter().filter(|l| l.contains(ACCEPT_FAILING)).count();
    eprintln!(
        "{STALLED} stalled connections, file limit {NOFILE}: {tally:?}; all done in {wall:.1?}, \
         gateway CPU {cpu:.2} s, {out_of_files}; honest rounds {rounds:.2?}; the log about accept:\n{}",
        accept_lines.join("\n")
    );

    assert!(tally.closed > NOFILE as usize, "more were served than the file limit allows at once: {tally:?}");
    assert_eq!(tally.answered, 0, "a half head is not answered: {tally:?}");
    assert!(all_closed, "every connection the gateway got was closed: {tally:?}; it holds {held} files");
    assert!(held < 50, "the gateway holds {held} files after the flood");
    assert_eq!(tally.closed + tally.not_connected + half_open_only, STALLED);
    // Accepted at once or after waiting in the listen queue for earlier ones to be closed.
    assert!(tally.longest < Duration::from_secs(15), "{tally:?}");
    // Each round asserted its push landed in the scrape; the first waits to be accepted.
    assert!(rounds.len() >= 3, "the honest client kept getting through while the flood lasted: {rounds:?}");
    assert!(failing_lines >= 1, "the gateway ran out of file descriptors and said so:\n{log}");
    let most_lines = 2 + wall.as_secs() as usize / 10;
    assert!(failing_lines <= most_lines, "{failing_lines} lines about accept in {wall:?}: not one per attempt");
    assert!(cpu < wall.as_secs_f64() * 0.5, "{cpu:.2} s of CPU in {wall:.1?}");
    assert!(out_of_files.wall > Duration::from_millis(500), "the gateway was out of file descriptors: {out_of_files}");
    assert!(out_of_files.share() < 0.25, "accept spins while out of file descriptors: {out_of_files}");
    assert_eq!(gateway.get("/-/healthy").status, 200);
}

/// The time a process spent with all its file descriptors in use, and the CPU it used then.
struct OutOfFiles {
    wall: Duration,
    cpu: f64,
}

impl OutOfFiles {
    /// The share of one core used while out of descriptors: near 1 when `accept` spins.
    fn share(&self) -> f64 {
        if self.wall.is_zero() { 0.0 } else { self.cpu / self.wall.as_secs_f64() }
    }
}

impl std::fmt::Display for OutOfFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "out of file descriptors for {:.1?} using {:.2} s of CPU ({:.0}% of a core)",
            self.wall,
            self.cpu,
            self.share() * 100.0
        )
    }
}

/// Samples `pid` every 100 ms until `stop`: the intervals that begin and end with at least
/// `limit` - 8 files open (the last few taken and given back by accepts as connections close)
/// are time spent out of descriptors.
fn cpu_while_out_of_files(pid: u32, limit: usize, stop: &std::sync::atomic::AtomicBool) -> OutOfFiles {
    let full = |files: usize| files + 8 >= limit;
    let mut out = OutOfFiles { wall: Duration::ZERO, cpu: 0.0 };
    let mut last = (Instant::now(), cpu_seconds(pid), open_files(pid));
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        let now = (Instant::now(), cpu_seconds(pid), open_files(pid));
        if full(last.2) && full(now.2) {
            out.wall += now.0 - last.0;
            out.cpu += now.1 - last.1;
        }
        last = now;
    }
    out
}

/// How many TCP connections the kernel holds established on the server's side of `port`, the
/// ones waiting in the listen queue included.
///
/// Not all connections a flooding client sees open: when the listen queue is full as the
/// client's last handshake ACK arrives, the kernel drops that ACK and keeps only a half-open
/// request, which it completes at its next SYN-ACK (1, 2, 4, 8, 16 s later) if the queue then
/// has room. Until then the client thinks it is connected while the server knows nothing of
/// it; no timeout of the gateway's can close what it was never given.
fn established_at(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    let local_port = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.len() > 3 && fields[1].ends_with(&local_port) && fields[3] == "01"
        })
        .count()
}

/// How many files `pid` has open: a dozen when it holds no connection.
fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |entries| entries.count())
}

/// A raw connection to `address` with a read timeout long enough for any check here.
fn connect(address: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(address).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("read timeout");
    stream
}

/// Reads until the server closes the connection (EOF or reset); what it sent and when it closed.
fn read_until_closed(stream: &mut TcpStream) -> (String, Instant) {
    let mut received = Vec::new();
    let mut buffer = [0; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                panic!("still open after 10 s; received {:?}", String::from_utf8_lossy(&received))
            }
            Err(_) => break,
        }
    }
    (String::from_utf8_lossy(&received).into_owned(), Instant::now())
}

fn between(elapsed: Duration, low: f64, high: f64) -> bool {
    (low..high).contains(&elapsed.as_secs_f64())
}

#[test]
fn a_trickling_body_gets_408_and_is_closed_at_its_deadline() {
    let gateway = Server::cronpush(&TIMEOUTS);
    let mut stream = connect(SocketAddr::from(([127, 0, 0, 1], gateway.port)));
    stream.write_all(b"PUT /metrics/job/trickle HTTP/1.1\r\nHost: pi\r\nContent-Length: 1000\r\n\r\n").expect("head");
    let started = Instant::now();
    let mut writer = stream.try_clone().expect("clone");
    // A byte every 200 ms: never a pause long enough for a per-read timeout.
    let trickle = std::thread::spawn(move || {
        for _ in 0..100 {
            if writer.write_all(b"#").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let (answer, closed) = read_until_closed(&mut stream);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("--web.read-body-timeout"), "{answer}");
    assert!(between(closed - started, 0.9, 3.0), "closed after {:?}", closed - started);
    trickle.join().expect("writer");
    assert!(!gateway.get("/metrics").body.contains("trickle"), "nothing of the body was kept");
}

#[test]
fn an_idle_kept_alive_connection_is_closed_after_the_idle_timeout_and_a_slow_head_sooner() {
    let gateway = Server::cronpush(&TIMEOUTS);
    let address = SocketAddr::from(([127, 0, 0, 1], gateway.port));
    let request = b"GET /-/healthy HTTP/1.1\r\nHost: pi\r\n\r\n";
    let answered = |stream: &mut TcpStream| {
        stream.write_all(request).expect("request");
        let mut buffer = [0; 1024];
        let n = stream.read(&mut buffer).expect("answer");
        assert!(buffer[..n].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&buffer[..n]));
        Instant::now()
    };

    // Idle after an answer: the idle timeout (2 s), not the header timeout (1 s).
    let mut idle = connect(address);
    let first = answered(&mut idle);
    // Still good for another request within the idle timeout.
    std::thread::sleep(Duration::from_millis(1300));
    let second = answered(&mut idle);
    assert!(second - first > Duration::from_secs(1), "kept alive past the header timeout");
    let (_, closed) = read_until_closed(&mut idle);
    assert!(between(closed - second, 1.9, 3.5), "closed {:?} after the answer", closed - second);

    // The next head started, then stalled: the header timeout from its first byte.
    let mut slow = connect(address);
    answered(&mut slow);
    std::thread::sleep(Duration::from_millis(300));
    slow.write_all(HALF_HEAD).expect("half a head");
    let stalled = Instant::now();
    let (answer, closed) = read_until_closed(&mut slow);
    assert_eq!(answer, "", "a stalled head is closed unanswered");
    assert!(between(closed - stalled, 0.9, 1.8), "closed {:?} after the head stalled", closed - stalled);
}

/// The gateway serving HTTPS (--web.config.file), killed when dropped.
struct HttpsGateway {
    child: Child,
    address: SocketAddr,
    ca: Vec<u8>,
    _dir: tempfile::TempDir,
}

impl HttpsGateway {
    fn start() -> HttpsGateway {
        let dir = tempfile::tempdir().expect("temporary directory");
        support::issue_certs(dir.path(), &["--extra-name", "127.0.0.1"]);
        let config = dir.path().join("web.yml");
        std::fs::write(&config, "tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n").expect("web.yml");
        let log = dir.path().join("stderr");
        let mut child = Command::new(cronpush_binary())
            .args(["gateway", "--web.listen-address=127.0.0.1:0"])
            .arg(format!("--web.config.file={}", config.display()))
            .args(TIMEOUTS)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("start the gateway");
        let mut address = None;
        let ready = support::wait_ready(&mut child, Duration::from_secs(20), || {
            address = listening_address(&read_log(&log));
            address.is_some()
        });
        assert!(ready.is_ok(), "the gateway did not listen:\n{}", read_log(&log));
        let ca = std::fs::read(dir.path().join("ca.crt")).expect("ca.crt");
        HttpsGateway { child, address: address.expect("address"), ca, _dir: dir }
    }
}

impl Drop for HttpsGateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_tls_handshake_that_never_completes_is_cut_off_at_the_header_timeout() {
    let gateway = HttpsGateway::start();
    // Connected and silent; and the first bytes of a ClientHello, then nothing.
    let client_hello_start: &[u8] = &[0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00];
    for greeting in [&[][..], client_hello_start] {
        let mut stream = connect(gateway.address);
        stream.write_all(greeting).expect("greeting");
        let started = Instant::now();
        let (answer, closed) = read_until_closed(&mut stream);
        assert_eq!(answer, "", "nothing is sent to an unfinished handshake");
        assert!(between(closed - started, 0.9, 3.0), "closed after {:?}", closed - started);
    }
    // An honest client still gets its answer.
    cronpush::tls::install_crypto_provider();
    let client = reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&gateway.ca).expect("CA"))
        .timeout(Duration::from_secs(10))
        .build()
        .expect("HTTPS client");
    let healthy = client.get(format!("https://{}/-/healthy", gateway.address)).send().expect("GET over TLS");
    assert_eq!(healthy.status(), 200);
}

#[test]
fn the_webhooks_port_closes_stalled_handshakes_and_keeps_answering_out_of_descriptors() {
    let _alone = FLOOD.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    raise_own_file_limit();
    // No API server: admission and the relay answer at once, which is all this test needs.
    let webhook = support::webhook::Webhook::start_with_flags(
        "https://127.0.0.1:1",
        "http://127.0.0.1:1",
        &["--read-header-timeout=1s", "--idle-timeout=1s"],
    );
    // As a LimitNOFILE would, at a smaller scale: a quarter of the gateway's.
    let limited = Command::new("prlimit").args(["--pid", &webhook.pid().to_string(), "--nofile=256:256"]).status();
    assert!(limited.expect("prlimit").success());
    let cpu_before = cpu_seconds(webhook.pid());
    let started = Instant::now();
    let client = webhook.client(support::webhook::HOST);
    let healthz = webhook.url("/healthz");
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (fates, answered, out_of_files) = std::thread::scope(|scope| {
        let honest = scope.spawn(|| {
            std::thread::sleep(Duration::from_millis(300));
            client.get(&healthz).send().map(|r| r.status().as_u16())
        });
        let watch = scope.spawn(|| cpu_while_out_of_files(webhook.pid(), 256, &stop));
        let fates = stall_many(webhook.address, 1000, b"\x16\x03\x01\x00\xc8\x01\x00", Duration::from_secs(10));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (fates, honest.join().expect("the honest client"), watch.join().expect("the watch"))
    });
    let (cpu, wall) = (cpu_seconds(webhook.pid()) - cpu_before, started.elapsed());
    let tally = tally(&fates);
    eprintln!(
        "1000 stalled handshakes, file limit 256: {tally:?}; all done in {wall:.1?}, webhook CPU {cpu:.2} s, {out_of_files}"
    );
    assert!(tally.closed > 256, "{tally:?}");
    assert_eq!(tally.answered, 0, "{tally:?}");
    let all_closed = support::eventually(Duration::from_secs(5), || established_at(webhook.address.port()) == 0);
    assert!(all_closed, "every connection the webhook got was closed: {tally:?}");
    assert_eq!(answered.expect("the honest client's request"), 200);
    assert!(webhook.log().contains(ACCEPT_FAILING), "{}", webhook.log());
    assert!(cpu < wall.as_secs_f64() * 0.5, "{cpu:.2} s of CPU in {wall:.1?}");
    assert!(out_of_files.share() < 0.25, "accept spins while out of file descriptors: {out_of_files}");

    // A request answered, then nothing, over HTTP/1.1 and HTTP/2: closed after the idle timeout.
    let tls = support::https::Client::trusting(webhook.address, support::webhook::HOST, &[&webhook.ca]);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    for alpn in [&b"http/1.1"[..], b"h2"] {
        let idle_for = runtime.block_on(async {
            let stream = tls.handshake(alpn).await.expect("handshake");
            let mut connection = Connection::over(stream).await.expect("HTTP");
            let request =
                Request::get("/healthz").header("host", support::webhook::HOST).body(Full::<Bytes>::default());
            let (status, _) = connection.send(request.expect("request")).await.expect("GET /healthz");
            assert_eq!(status, 200);
            let answered = Instant::now();
            let closed = || match &connection {
                Connection::Http1(sender) => sender.is_closed(),
                Connection::Http2(sender) => sender.is_closed(),
            };
            while !closed() && answered.elapsed() < Duration::from_secs(10) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            answered.elapsed()
        });
        let protocol = String::from_utf8_lossy(alpn);
        assert!(between(idle_for, 0.9, 3.0), "{protocol}: closed after {idle_for:?} idle");
    }
}
