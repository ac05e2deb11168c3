//! Pushing one body to the gateway before a deadline: POST, retried with bounded, jittered
//! backoff while the failure may pass, given up at once when the gateway refuses the body.

use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::CONTENT_TYPE;
use reqwest::{StatusCode, Url};
use tokio::time::Instant;

use super::gateway_access::GatewayAccess;

/// The text exposition format, as client_golang's push package sends it.
pub const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The body of a delivery of log lines.
pub const JSON: &str = "application/json";

/// Connecting includes the DNS lookup and the TLS handshake; a gateway that takes longer is
/// better retried on a fresh connection than waited for.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const FIRST_PAUSE: Duration = Duration::from_millis(100);
const LONGEST_PAUSE: Duration = Duration::from_secs(1);
/// How much of a refusal's body goes into the error: the reference's messages are one line.
const MESSAGE_LIMIT: usize = 1024;
/// The header with which the relay marks a refusal that the same push would meet again (the
/// gateway's certificate does not verify at the relay, the gateway refuses the relay's
/// credentials): a 5xx, but not one to retry until the deadline.
pub const NOT_RETRIED_HEADER: &str = "cronpush-not-retried";

/// An HTTP client for pushes, built once per process.
pub struct Pusher {
    client: reqwest::Client,
    /// Basic auth for every request, when the access gives it.
    credentials: Option<(String, String)>,
    /// The file of the bearer token sent with every request, when the access names one.
    token_file: Option<std::path::PathBuf>,
}

/// How many requests a push took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempts(pub u32);

impl fmt::Display for Attempts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} attempt{}", self.0, if self.0 == 1 { "" } else { "s" })
    }
}

/// Why a push did not happen.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    /// The gateway answered, and retrying the same body would get the same answer.
    #[error("the gateway refused the push ({attempts}): {failure}")]
    Refused { attempts: Attempts, failure: Failure },
    /// The gateway's certificate does not verify, and will not on the next attempt either.
    #[error("the gateway cannot be trusted ({attempts}): {failure}")]
    Untrusted { attempts: Attempts, failure: Failure },
    /// Every attempt failed in a way that might have passed, until the deadline.
    #[error("gave up at the deadline after {attempts}; the last: {last}")]
    Deadline { attempts: Attempts, last: Failure },
}

impl PushError {
    pub fn attempts(&self) -> Attempts {
        match self {
            PushError::Client(_) => Attempts(0),
            PushError::Refused { attempts, .. }
            | PushError::Untrusted { attempts, .. }
            | PushError::Deadline { attempts, .. } => *attempts,
        }
    }
}

/// How one attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// An HTTP answer other than 2xx, with the start of its body (the gateway's reason).
    Status { status: StatusCode, message: String },
    /// An answer from the relay that says the push would meet the same failure again.
    NotRetried { status: StatusCode, message: String },
    /// The gateway's certificate does not verify (unknown issuer, expired, another name): the
    /// next attempt would meet the same certificate.
    Certificate(String),
    /// No answer within the time the attempt had.
    TimedOut { after: Duration },
    /// The request never got an answer: DNS, connection, TLS, or the connection dropped.
    Transport(String),
    /// The request could not even be built; it never will be.
    Request(String),
    /// The deadline had passed before the first attempt.
    NoTimeLeft,
}

impl Failure {
    /// Whether the same request might succeed later: the gateway was unreachable, busy or
    /// broken. A 4xx other than 429 says the body or URL is wrong, and stays so.
    fn may_pass(&self) -> bool {
        match self {
            Failure::Status { status, .. } => status.is_server_error() || *status == StatusCode::TOO_MANY_REQUESTS,
            Failure::TimedOut { .. } | Failure::Transport(_) => true,
            Failure::NotRetried { .. } | Failure::Certificate(_) | Failure::Request(_) | Failure::NoTimeLeft => false,
        }
    }

    fn from_transport(error: reqwest::Error, after: Duration) -> Failure {
        if error.is_builder() {
            return Failure::Request(causes(&error.without_url()));
        }
        if error.is_timeout() && !error.is_connect() {
            return Failure::TimedOut { after };
        }
        if let Some(why) = certificate_problem(&error) {
            return Failure::Certificate(why);
        }
        Failure::Transport(causes(&error.without_url()))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Status { status, message } if message.is_empty() => write!(f, "the gateway answered {status}"),
            Failure::Status { status, message } => write!(f, "the gateway answered {status}: {message}"),
            Failure::NotRetried { status, message } => write!(f, "the relay answered {status}: {message}"),
            Failure::TimedOut { after } => write!(f, "no answer within {:.1} s", after.as_secs_f64()),
            Failure::Transport(why) => write!(f, "no answer: {why}"),
            Failure::Certificate(why) => write!(
                f,
                "the gateway's certificate does not verify ({why}); give the CA that signed it with {} or \
                 --gateway-ca-file",
                crate::contract::env::GATEWAY_CA
            ),
            Failure::Request(why) => write!(f, "cannot send the request: {why}"),
            Failure::NoTimeLeft => f.write_str("no time left to try"),
        }
    }
}

impl Pusher {
    /// A client that trusts the public roots and the access's CA, and sends its credentials.
    pub fn new(access: &GatewayAccess) -> Result<Pusher, PushError> {
        let client = access
            .client_builder()
            .and_then(|builder| {
                builder
                    .connect_timeout(CONNECT_TIMEOUT)
                    // A redirected POST turns into a GET and loses its body: better to say so.
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
            })
            .map_err(|e| PushError::Client(causes(&e)))?;
        Ok(Pusher { client, credentials: access.credentials.clone(), token_file: access.token_file.clone() })
    }

    /// POSTs `body` (text format) to `url` until it is accepted or `deadline` passes. POST, not
    /// PUT: it replaces only the families it carries, so the start and end pushes of a run
    /// share one group without erasing each other.
    pub async fn post(&self, url: &Url, body: String, deadline: Instant) -> Result<Attempts, PushError> {
        self.send(reqwest::Method::POST, url, body, TEXT_FORMAT, deadline).await
    }

    /// PUTs a JSON `body` to `url`, retried as a push is: the failed run's log lines, which
    /// replace what the gateway held for that run.
    pub async fn put_json(&self, url: &Url, body: String, deadline: Instant) -> Result<Attempts, PushError> {
        self.send(reqwest::Method::PUT, url, body, JSON, deadline).await
    }

    async fn send(
        &self,
        method: reqwest::Method,
        url: &Url,
        body: String,
        content_type: &'static str,
        deadline: Instant,
    ) -> Result<Attempts, PushError> {
        let body = Bytes::from(body);
        let mut attempts = Attempts(0);
        let mut last = Failure::NoTimeLeft;
        let mut pauses = Backoff::default();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(PushError::Deadline { attempts, last });
            }
            attempts.0 += 1;
            last = match self.attempt(&method, url, body.clone(), content_type, left).await {
                Ok(()) => return Ok(attempts),
                Err(failure @ Failure::Certificate(_)) => return Err(PushError::Untrusted { attempts, failure }),
                Err(failure) if !failure.may_pass() => return Err(PushError::Refused { attempts, failure }),
                Err(failure) => failure,
            };
            let pause = pauses.next();
            tracing::debug!(attempt = attempts.0, failure = %last, pause_ms = pause.as_millis() as u64, "push failed");
            if Instant::now() + pause >= deadline {
                return Err(PushError::Deadline { attempts, last });
            }
            tokio::time::sleep(pause).await;
        }
    }

    /// One request, answer read whole, within `left`.
    async fn attempt(
        &self,
        method: &reqwest::Method,
        url: &Url,
        body: Bytes,
        content_type: &'static str,
        left: Duration,
    ) -> Result<(), Failure> {
        let mut request = self
            .client
            .request(method.clone(), url.clone())
            .header(CONTENT_TYPE, content_type)
            .body(body)
            .timeout(left);
        if let Some((user, password)) = &self.credentials {
            request = request.basic_auth(user, Some(password));
        }
        if let Some(path) = &self.token_file {
            // Read for every request: the kubelet replaces a projected token before it expires.
            let token = std::fs::read_to_string(path)
                .map_err(|e| Failure::Request(format!("cannot read the token file {}: {e}", path.display())))?;
            request = request.bearer_auth(token.trim());
        }
        let mut response = request.send().await.map_err(|e| Failure::from_transport(e, left))?;
        let status = response.status();
        let mut message = Vec::new();
        while message.len() < MESSAGE_LIMIT {
            match response.chunk().await {
                Ok(Some(chunk)) => message.extend_from_slice(&chunk),
                Ok(None) => break,
                // The status is known; a body cut short changes nothing about what it says.
                Err(e) if status.is_success() => {
                    tracing::debug!(error = %causes(&e), "the answer was cut short");
                    break;
                }
                Err(e) => return Err(Failure::from_transport(e, left)),
            }
        }
        if status.is_success() {
            return Ok(());
        }
        message.truncate(MESSAGE_LIMIT);
        let message = String::from_utf8_lossy(&message).trim().to_string();
        if response.headers().contains_key(NOT_RETRIED_HEADER) {
            return Err(Failure::NotRetried { status, message });
        }
        Err(Failure::Status { status, message })
    }
}

/// Exponential pauses with full jitter: a uniformly random pause up to 100 ms, 200 ms, 400 ms,
/// ... at most 1 s, so that the Pods of many CronJobs scheduled on the same minute do not
/// retry in step against a gateway that is coming back.
#[derive(Default)]
struct Backoff {
    tries: u32,
}

impl Backoff {
    fn next(&mut self) -> Duration {
        let ceiling = FIRST_PAUSE.saturating_mul(1 << self.tries.min(16)).min(LONGEST_PAUSE);
        self.tries += 1;
        ceiling.mul_f64(random_fraction())
    }
}

/// A number in [0, 1) that differs between processes and calls: std's hasher keys are seeded
/// from the operating system's randomness, which is all the jitter needs.
fn random_fraction() -> f64 {
    let bits = RandomState::new().hash_one(std::time::SystemTime::now());
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// What rustls said of the gateway's certificate, if that is why the request failed. rustls'
/// error sits deep in the chain, inside `io::Error`s from the TLS stream, whose own `source`
/// skips the error they hold: those are looked into instead.
pub(crate) fn certificate_problem(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(error);
    while let Some(current) = next {
        if let Some(
            tls @ (rustls::Error::InvalidCertificate(_)
            | rustls::Error::NoCertificatesPresented
            | rustls::Error::UnsupportedNameType),
        ) = current.downcast_ref::<rustls::Error>()
        {
            return Some(tls.to_string());
        }
        next = match current.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            Some(held) => Some(held as &(dyn std::error::Error + 'static)),
            None => current.source(),
        };
    }
    None
}

/// An error and its causes, `a: b: c`, without the repeats layered clients add.
pub(crate) fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_to_a_ceiling_and_are_jittered() {
        let mut backoff = Backoff::default();
        let pauses: Vec<Duration> = (0..8).map(|_| backoff.next()).collect();
        let ceilings = [100, 200, 400, 800, 1000, 1000, 1000, 1000];
        for (pause, ceiling) in pauses.iter().zip(ceilings) {
            assert!(*pause <= Duration::from_millis(ceiling), "{pauses:?}");
        }
        let many: Vec<f64> = (0..64).map(|_| random_fraction()).collect();
        assert!(many.iter().all(|f| (0.0..1.0).contains(f)));
        assert!(many.windows(2).any(|w| w[0] != w[1]), "the jitter does not vary");
    }

    #[test]
    fn only_failures_that_may_pass_are_retried() {
        let status =
            |code: u16| Failure::Status { status: StatusCode::from_u16(code).unwrap(), message: String::new() };
        assert!(status(500).may_pass() && status(503).may_pass() && status(429).may_pass());
        assert!(!status(400).may_pass() && !status(404).may_pass() && !status(301).may_pass());
        assert!(Failure::Transport("connection refused".into()).may_pass());
        assert!(Failure::TimedOut { after: Duration::from_secs(1) }.may_pass());
        assert!(!Failure::Request("bad header".into()).may_pass());
        let at_the_relay = Failure::NotRetried { status: StatusCode::BAD_GATEWAY, message: "certificate".into() };
        assert!(!at_the_relay.may_pass(), "a 502 the relay marks as lasting is not retried");
    }

    #[test]
    fn failures_read_as_sentences() {
        let refused = Failure::Status { status: StatusCode::BAD_REQUEST, message: "text format parsing error".into() };
        let error = PushError::Refused { attempts: Attempts(1), failure: refused };
        assert_eq!(
            error.to_string(),
            "the gateway refused the push (1 attempt): the gateway answered 400 Bad Request: text format parsing error"
        );
        let error =
            PushError::Deadline { attempts: Attempts(3), last: Failure::TimedOut { after: Duration::from_secs(2) } };
        assert_eq!(error.to_string(), "gave up at the deadline after 3 attempts; the last: no answer within 2.0 s");
    }
}
