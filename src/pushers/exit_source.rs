//! Where the sidecar learns how the main containers ended: from the relay (the default; Job
//! Pods need no RBAC) or, with `--exit-status-source=api`, by reading its own Pod through the
//! Kubernetes API when its service account may.

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use reqwest::{StatusCode, Url};
use tokio::time::Instant;

use super::gateway_client::causes;
use crate::exit_status::{ExitReport, watch_until_exited};

/// Left for the relay's answer to travel back after its wait ends.
const ANSWER_MARGIN: Duration = Duration::from_millis(500);
const RETRY_DELAY: Duration = Duration::from_millis(250);
/// Less time than this left is not worth an attempt; with less than [`ANSWER_MARGIN`] left,
/// the relay is asked not to wait, only to read the Pod as it stands.
const SHORTEST_ATTEMPT: Duration = Duration::from_millis(100);

pub enum ExitSource {
    Relay {
        url: Url,
        /// Trusts only the roots of the relay's CA bundle (`CRONPUSH_RELAY_CA`); built before
        /// the run ends, so that the end costs no setup.
        client: reqwest::Client,
        /// The projected token, read at each attempt since the kubelet rotates it.
        token_file: PathBuf,
    },
    Api,
}

/// Why the relay cannot be asked: its CA bundle, or the client that trusts only it.
#[derive(Debug, thiserror::Error)]
pub enum RelaySetupError {
    #[error("the relay's CA (CRONPUSH_RELAY_CA) is not PEM: {0}")]
    CaNotPem(#[source] reqwest::Error),
    #[error("no relay CA (CRONPUSH_RELAY_CA) to verify the relay with")]
    NoCa,
    #[error("cannot build the relay client: {0}")]
    Client(#[source] reqwest::Error),
}

/// Why nothing was learned of how the main containers ended.
#[derive(Debug, thiserror::Error)]
pub enum NotLearned {
    #[error("no attempt fit before the deadline")]
    NoAttempt,
    #[error("only the relay reads logs, and the exit status comes from the Kubernetes API")]
    NoRelay,
    #[error("cannot read the token {}: {source}", .path.display())]
    Token { path: PathBuf, source: std::io::Error },
    #[error("reading the relay's answer: {0}")]
    ReadAnswer(#[source] reqwest::Error),
    #[error("the relay's answer is not an exit report: {0}")]
    NotAReport(#[source] serde_json::Error),
    /// `message` is the relay's, trimmed.
    #[error("the relay answered {status}: {message}")]
    RelayRefused { status: StatusCode, message: String },
    #[error("cannot reach the relay: {}", causes(.0))]
    RelayUnreachable(#[source] reqwest::Error),
    #[error("no Kubernetes client: {0}")]
    NoClient(#[source] kube::Error),
    /// The API refused the read (401, 403 or 404): asking again would not help.
    #[error("reading Pod {namespace}/{name}: {source}")]
    PodRefused { namespace: String, name: String, source: Box<kube::core::Status> },
    #[error("reading Pod {namespace}/{name}: {source}")]
    PodUnread { namespace: String, name: String, source: kube::Error },
}

/// The Pod the sidecar runs in.
pub struct OwnPod {
    pub namespace: String,
    pub name: String,
}

impl ExitSource {
    /// The relay as a source: checks the CA bundle and builds the client that trusts only it.
    pub fn relay(url: Url, ca_pem: &str, token_file: PathBuf) -> Result<ExitSource, RelaySetupError> {
        crate::tls::install_crypto_provider();
        let roots = reqwest::Certificate::from_pem_bundle(ca_pem.as_bytes()).map_err(RelaySetupError::CaNotPem)?;
        if roots.is_empty() {
            return Err(RelaySetupError::NoCa);
        }
        let client = roots
            .into_iter()
            .fold(reqwest::Client::builder().use_rustls_tls().tls_built_in_root_certs(false), |b, root| {
                b.add_root_certificate(root)
            })
            .connect_timeout(Duration::from_secs(2))
            .build()
            .map_err(RelaySetupError::Client)?;
        Ok(ExitSource::Relay { url, client, token_file })
    }

    pub fn describe(&self) -> String {
        match self {
            ExitSource::Relay { url, .. } => format!("the relay at {url}"),
            ExitSource::Api => "the Kubernetes API".into(),
        }
    }

    /// The main containers' ends as they stand, waited for until `wait_until` while some have
    /// not ended; failed attempts are retried until `deadline`. An incomplete report (the wait
    /// ran out) is still an answer; an error means nothing was learned.
    pub async fn learn(&self, pod: &OwnPod, wait_until: Instant, deadline: Instant) -> Result<ExitReport, NotLearned> {
        let wait_until = wait_until.min(deadline);
        match self {
            ExitSource::Relay { url, client, token_file } => {
                from_relay(url, client, token_file, pod, wait_until, deadline, None).await
            }
            ExitSource::Api => from_api(pod, wait_until, deadline).await,
        }
    }

    /// The last `lines` lines of the failed main containers' logs, which only the relay can
    /// read (with the webhook's RBAC, not the Pod's), asked for once the end is pushed: the Pod
    /// as it stands, without waiting.
    pub async fn failed_logs(&self, pod: &OwnPod, lines: u32, deadline: Instant) -> Result<ExitReport, NotLearned> {
        match self {
            ExitSource::Relay { url, client, token_file } => {
                from_relay(url, client, token_file, pod, Instant::now(), deadline, Some(lines)).await
            }
            ExitSource::Api => Err(NotLearned::NoRelay),
        }
    }
}

async fn from_relay(
    url: &Url,
    client: &reqwest::Client,
    token_file: &PathBuf,
    pod: &OwnPod,
    wait_until: Instant,
    deadline: Instant,
    log_lines: Option<u32>,
) -> Result<ExitReport, NotLearned> {
    let mut last_error = NotLearned::NoAttempt;
    loop {
        let now = Instant::now();
        let left = deadline.saturating_duration_since(now);
        if left < SHORTEST_ATTEMPT {
            return Err(last_error);
        }
        let token = match std::fs::read_to_string(token_file) {
            Ok(token) => token.trim().to_string(),
            Err(source) => return Err(NotLearned::Token { path: token_file.clone(), source }),
        };
        let wait = wait_until.saturating_duration_since(now).min(left.saturating_sub(ANSWER_MARGIN));
        let mut asked = url.clone();
        asked
            .query_pairs_mut()
            .append_pair("namespace", &pod.namespace)
            .append_pair("pod", &pod.name)
            .append_pair("wait", &format!("{:.3}", wait.as_secs_f64()));
        if let Some(lines) = log_lines {
            asked.query_pairs_mut().append_pair("logLines", &lines.to_string());
        }
        let attempt = client.get(asked).bearer_auth(token).timeout(left).send().await;
        match attempt {
            Ok(reply) if reply.status() == StatusCode::OK => {
                let body = reply.bytes().await.map_err(NotLearned::ReadAnswer)?;
                return serde_json::from_slice(&body).map_err(NotLearned::NotAReport);
            }
            Ok(reply) => {
                let status = reply.status();
                let message = reply.text().await.unwrap_or_default();
                let why = NotLearned::RelayRefused { status, message: message.trim().to_string() };
                // A refused token or a malformed question stays refused; an overloaded or
                // restarting relay may answer the next time.
                if !(status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS) {
                    return Err(why);
                }
                last_error = why;
            }
            Err(e) => last_error = NotLearned::RelayUnreachable(e),
        }
        tokio::time::sleep(RETRY_DELAY.min(deadline.saturating_duration_since(Instant::now()))).await;
    }
}

async fn from_api(pod: &OwnPod, wait_until: Instant, deadline: Instant) -> Result<ExitReport, NotLearned> {
    let client = kube::Client::try_default().await.map_err(NotLearned::NoClient)?;
    let pods: Api<Pod> = Api::namespaced(client, &pod.namespace);
    let mut last_error = NotLearned::NoAttempt;
    while Instant::now() < deadline {
        match tokio::time::timeout_at(deadline, pods.get(&pod.name)).await {
            Ok(Ok(own)) => return Ok(watch_until_exited(&pods, own, wait_until).await),
            Ok(Err(kube::Error::Api(source))) if matches!(source.code, 401 | 403 | 404) => {
                return Err(NotLearned::PodRefused {
                    namespace: pod.namespace.clone(),
                    name: pod.name.clone(),
                    source,
                });
            }
            Ok(Err(source)) => {
                last_error = NotLearned::PodUnread { namespace: pod.namespace.clone(), name: pod.name.clone(), source }
            }
            Err(_) => break,
        }
        tokio::time::sleep(RETRY_DELAY.min(deadline.saturating_duration_since(Instant::now()))).await;
    }
    Err(last_error)
}
