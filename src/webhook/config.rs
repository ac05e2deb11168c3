//! The webhook's command line. Every flag has an environment fallback (for the Deployment) and
//! is checked before anything is bound.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::injection::{InjectionConfig, PushMode};
use super::node_fit::{NotAPlatform, Platform};
use super::relay_ca::{RelayCa, RelayCaError};
use super::relay_push::PushLimits;
use super::resource_fit::{ResourceFlagError, Wanted};
use crate::go_duration;
use crate::http_server::{SMALLEST_HTTP1_READ_BUFFER, ServeOptions};
use crate::pushers::gateway_access::{GatewayAccess, GatewayAccessArgs, GatewayAccessError, read_ca_file};

#[derive(Args, Debug, Clone)]
pub struct WebhookArgs {
    /// The serving certificate (PEM), reloaded when it changes on disk.
    #[arg(long, env = "CRONPUSH_TLS_CERT_FILE", default_value = "certs/tls.crt")]
    pub tls_cert_file: PathBuf,
    /// The serving certificate's key (PEM).
    #[arg(long, env = "CRONPUSH_TLS_KEY_FILE", default_value = "certs/tls.key")]
    pub tls_key_file: PathBuf,
    /// The CA that signed the serving certificate (PEM), handed to the sidecar so that it can
    /// verify the relay.
    #[arg(long, env = "CRONPUSH_TLS_CA_FILE", default_value = "certs/ca.crt")]
    pub tls_ca_file: PathBuf,
    /// Address to serve HTTPS on (admission, relay, health, metrics). There is no plain HTTP.
    #[arg(long, env = "CRONPUSH_LISTEN_ADDRESS", default_value = "0.0.0.0:8443")]
    pub listen_address: String,
    /// Where the injected containers push, e.g. http://cronpush-gateway.cronpush.svc:9091 or a
    /// URL with a path prefix such as http://pi:8080/pushgateway.
    #[arg(long, env = "CRONPUSH_GATEWAY_URL")]
    pub gateway_url: String,
    /// The CA (PEM file) that signed the gateway's certificate, when the gateway serves TLS
    /// with one no public root vouches for (a Pi's, from a private CA): handed to the injected
    /// containers, which then trust it beside the public roots. Read at start.
    #[arg(long, env = "CRONPUSH_GATEWAY_CA_FILE")]
    pub gateway_ca_file: Option<PathBuf>,
    /// A Secret, in each injected Pod's namespace, with the keys `username` and `password`
    /// for the gateway's basic auth: the injected containers take them from it (the Pod spec
    /// names the Secret, never the password). Optional in the Pod: without it in a namespace,
    /// the pushes go without credentials and the gateway says 401, which the pushers log.
    #[arg(long, env = "CRONPUSH_GATEWAY_CREDENTIALS_SECRET")]
    pub gateway_credentials_secret: Option<String>,
    /// Basic auth for the webhook's own requests to the gateway (reading the groups, pushing
    /// missed runs, deleting deleted CronJobs' groups); give the password by its variable, from
    /// a Secret (the gateway-tls overlay does), not on the command line.
    #[arg(long, env = "CRONPUSH_GATEWAY_USERNAME")]
    pub gateway_username: Option<String>,
    #[arg(long, env = "CRONPUSH_GATEWAY_PASSWORD", hide_env_values = true)]
    pub gateway_password: Option<String>,
    /// Where the injected containers push. `direct`: to --gateway-url, with the CA and the
    /// credentials Secret handed to them. `relay`: to this webhook's relay (`/v1/push` beside
    /// --relay-url) with their Pod's projected token; the relay forwards a push only into the
    /// group of the Pod's own CronJob, never deletes, and reaches the gateway with the webhook's
    /// own CA and credentials, so that no Job Pod holds a gateway secret.
    #[arg(long, env = "CRONPUSH_PUSH_MODE", value_enum, default_value_t = PushModeFlag::Direct)]
    pub push_mode: PushModeFlag,
    /// The largest push the relay forwards, in bytes (the sidecar pushes a metrics file of at
    /// most 4 MiB).
    #[arg(long, env = "CRONPUSH_RELAY_MAX_PUSH_BYTES", default_value_t = 4 << 20,
          value_parser = clap::value_parser!(u64).range(1024..=(1 << 30)))]
    pub relay_max_push_bytes: u64,
    /// How many pushes one Pod may make through the relay per minute (and at once); a run makes
    /// four at most, and retries when the gateway is away.
    #[arg(long, env = "CRONPUSH_RELAY_MAX_PUSHES_PER_MINUTE", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub relay_max_pushes_per_minute: u32,
    /// The `job` label of the grouping key the injected containers push under.
    #[arg(long, env = "CRONPUSH_JOB", default_value = "cronpush")]
    pub job_label: String,
    /// This cluster's name, when one gateway serves several clusters: the injected containers
    /// add `cluster=NAME` to their grouping key, and the webhook changes or deletes only the
    /// groups of its own cluster. Without it the key has no `cluster` label, as before.
    #[arg(long, env = "CRONPUSH_CLUSTER_NAME")]
    pub cluster_name: Option<String>,
    /// The image the injected containers run (this same binary).
    #[arg(long, env = "CRONPUSH_IMAGE")]
    pub image: String,
    /// The platforms the image of --image is built for, comma-separated (os/arch or
    /// os/arch/variant); nothing is injected into a Pod that may land on a node of another
    /// (its `kubernetes.io/os` and `kubernetes.io/arch` labels). The default is what the
    /// repository's Dockerfile builds.
    #[arg(long, env = "CRONPUSH_IMAGE_PLATFORMS", value_delimiter = ',', default_value = "linux/amd64,linux/arm64")]
    pub image_platforms: Vec<String>,
    #[arg(long, env = "CRONPUSH_IMAGE_PULL_POLICY", default_value = "IfNotPresent")]
    pub image_pull_policy: String,
    /// The relay's URL as the sidecar reaches it (this webhook's Service).
    #[arg(long, env = "CRONPUSH_RELAY_URL", default_value = "https://cronpush-webhook.cronpush.svc/v1/exit-status")]
    pub relay_url: String,
    /// Audience of the sidecar's projected token; the relay accepts no other.
    #[arg(long, env = "CRONPUSH_TOKEN_AUDIENCE", default_value = "cronpush")]
    pub token_audience: String,
    /// Life of the sidecar's projected token (Kubernetes' minimum is 600).
    #[arg(long, env = "CRONPUSH_TOKEN_EXPIRATION_SECONDS", default_value_t = 3600,
          value_parser = clap::value_parser!(i64).range(600..=86_400))]
    pub token_expiration_seconds: i64,
    #[arg(long, env = "CRONPUSH_CPU_REQUEST", default_value = "10m")]
    pub cpu_request: String,
    #[arg(long, env = "CRONPUSH_MEMORY_REQUEST", default_value = "16Mi")]
    pub memory_request: String,
    /// No CPU limit by default: throttling a pusher at the end of a run helps no one.
    #[arg(long, env = "CRONPUSH_CPU_LIMIT")]
    pub cpu_limit: Option<String>,
    #[arg(long, env = "CRONPUSH_MEMORY_LIMIT", default_value = "32Mi")]
    pub memory_limit: String,
    /// How long `cronpush start` may try before giving up (it always exits 0).
    #[arg(long, env = "CRONPUSH_START_TIMEOUT_SECONDS", default_value_t = 5)]
    pub start_timeout_seconds: u32,
    /// Namespaces never injected, comma-separated; the webhook's own is added (POD_NAMESPACE).
    #[arg(
        long,
        env = "CRONPUSH_EXCLUDE_NAMESPACES",
        value_delimiter = ',',
        default_value = "kube-system,kube-public,kube-node-lease"
    )]
    pub exclude_namespaces: Vec<String>,
    /// The webhook's own namespace, from the Downward API.
    #[arg(long, env = "POD_NAMESPACE")]
    pub own_namespace: Option<String>,
    /// The longest a sidecar may wait at the relay for its Pod's containers to end; a sidecar
    /// asks for what is left of its own deadline, up to this.
    #[arg(long, env = "CRONPUSH_RELAY_MAX_WAIT", default_value = "2m", value_parser = go_duration::flag)]
    pub relay_max_wait: Duration,
    /// How many sidecars may wait at the relay at once. One in the shared watch costs about
    /// 23 KiB (its TLS connection and request), one of a Pod injected before the
    /// `cronpush.io/injected` label about 70 KiB and a watch of its own (benches/relay.rs), so
    /// 1000 fit the manifests' 128 MiB limit.
    #[arg(long, env = "CRONPUSH_RELAY_MAX_WAITING", default_value_t = 1000)]
    pub relay_max_waiting: usize,
    /// Delete a CronJob's group from the gateway (--gateway-url) when the CronJob is deleted,
    /// and, after each complete list of CronJobs, the groups of CronJobs that no longer exist.
    /// Off by default: the Pushgateway keeps groups until they are deleted.
    #[arg(long, env = "CRONPUSH_DELETE_GROUPS_OF_DELETED_CRONJOBS")]
    pub delete_groups_of_deleted_cronjobs: bool,
    /// Keep the last lines of a failed run's logs with the run in the gateway, for CronJobs
    /// annotated `cronpush.io/log-lines: "N"`: the relay reads them from `pods/log` (which the
    /// failed-run-logs overlay allows) and the sidecar delivers them. Off by default: logs can
    /// hold secrets.
    #[arg(long, env = "CRONPUSH_FAILED_RUN_LOGS")]
    pub failed_run_logs: bool,
    /// How long admission waits for the Kubernetes API, all reads together: for the run's Job
    /// and CronJob before falling back to the Job's name, and for the Nodes (until they are
    /// cached) before injecting nothing.
    #[arg(long, env = "CRONPUSH_RESOLVE_TIMEOUT", default_value = "2s", value_parser = go_duration::flag)]
    pub resolve_timeout: Duration,
    /// How long a client may take over the TLS handshake and its first request's head, and over
    /// each later HTTP/1.1 head from its first byte; a slower connection is closed. Only the head: a
    /// sidecar's request then waits at the relay as long as --relay-max-wait allows.
    #[arg(long, env = "CRONPUSH_READ_HEADER_TIMEOUT", default_value = "10s", value_parser = go_duration::flag)]
    pub read_header_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request before it is closed;
    /// longer than the 90 s kube-apiserver keeps an idle connection to a webhook, so that it
    /// closes first.
    #[arg(long, env = "CRONPUSH_IDLE_TIMEOUT", default_value = "2m", value_parser = go_duration::flag)]
    pub idle_timeout: Duration,
    #[arg(long = "log.level", default_value = "info", value_parser = ["debug", "info", "warn", "error"])]
    pub log_level: String,
    #[arg(long = "log.format", default_value = "logfmt", value_parser = ["logfmt", "json"])]
    pub log_format: String,
}

/// `--push-mode`'s values.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushModeFlag {
    Direct,
    Relay,
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookConfigError {
    #[error("--gateway-url {0:?} is not an http(s) URL")]
    GatewayUrl(String),
    #[error("--relay-url {0:?} must be an https URL: the sidecar's token never travels in clear")]
    RelayUrl(String),
    #[error(transparent)]
    Ca(#[from] RelayCaError),
    #[error("--image must not be empty")]
    Image,
    #[error("--cluster-name {0:?} must be a name without control characters or surrounding spaces")]
    ClusterName(String),
    #[error("--image-platforms: {0}")]
    ImagePlatforms(#[source] NotAPlatform),
    #[error("--image-platforms: names no platform, e.g. linux/amd64")]
    NoImagePlatforms,
    #[error(transparent)]
    Resources(#[from] ResourceFlagError),
    #[error("--{flag} must be more than 0s")]
    ZeroTimeout { flag: &'static str },
    #[error("the gateway's access: {0}")]
    GatewayCa(#[source] GatewayAccessError),
    #[error("--gateway-credentials-secret {0:?} is not a Secret's name (lower-case letters, digits, '-' and '.')")]
    CredentialsSecret(String),
    #[error(
        "--gateway-credentials-secret is for --push-mode=direct: through the relay the Pods hold no gateway \
         credentials (give the webhook its own, CRONPUSH_GATEWAY_USERNAME and CRONPUSH_GATEWAY_PASSWORD)"
    )]
    CredentialsInRelayMode,
    #[error("--relay-url {0:?} must end in /v1/exit-status for --push-mode=relay, which pushes to /v1/push beside it")]
    RelayPushUrl(String),
}

impl WebhookArgs {
    /// The injection settings, checked; reads the CA file handed to the sidecar.
    pub fn injection(&self) -> Result<InjectionConfig, WebhookConfigError> {
        if !(self.gateway_url.starts_with("http://") || self.gateway_url.starts_with("https://")) {
            return Err(WebhookConfigError::GatewayUrl(self.gateway_url.clone()));
        }
        if !self.relay_url.starts_with("https://") {
            return Err(WebhookConfigError::RelayUrl(self.relay_url.clone()));
        }
        if self.image.trim().is_empty() {
            return Err(WebhookConfigError::Image);
        }
        Wanted::parse(&self.cpu_request, self.cpu_limit.as_deref(), &self.memory_request, &self.memory_limit)?;
        let cluster_name = self.cluster_name()?;
        let gateway_credentials_secret = self.gateway_credentials_secret()?;
        let push_mode = self.push_mode()?;
        if push_mode != PushMode::Direct && gateway_credentials_secret.is_some() {
            return Err(WebhookConfigError::CredentialsInRelayMode);
        }
        let relay_ca_pem = RelayCa::load(&self.tls_ca_file)?;
        let gateway_ca_pem = self.gateway_ca_pem()?;

        Ok(InjectionConfig {
            image: self.image.clone(),
            image_pull_policy: Some(self.image_pull_policy.clone()),
            gateway_url: self.gateway_url.trim_end_matches('/').to_string(),
            job_label: self.job_label.clone(),
            cluster_name,
            relay_url: self.relay_url.clone(),
            relay_ca_pem,
            token_audience: self.token_audience.clone(),
            token_expiration_seconds: self.token_expiration_seconds,
            cpu_request: self.cpu_request.clone(),
            memory_request: self.memory_request.clone(),
            cpu_limit: self.cpu_limit.clone(),
            memory_limit: self.memory_limit.clone(),
            start_timeout_seconds: self.start_timeout_seconds,
            failed_run_logs: self.failed_run_logs,
            gateway_ca_pem,
            gateway_credentials_secret,
            push_mode,
        })
    }

    /// `--push-mode`, with the relay's push URL beside its exit status.
    fn push_mode(&self) -> Result<PushMode, WebhookConfigError> {
        match self.push_mode {
            PushModeFlag::Direct => Ok(PushMode::Direct),
            PushModeFlag::Relay => {
                let base = self.relay_url.trim_end_matches('/').strip_suffix("/v1/exit-status");
                let base = base.ok_or_else(|| WebhookConfigError::RelayPushUrl(self.relay_url.clone()))?;
                Ok(PushMode::Relay { url: format!("{base}/v1/push") })
            }
        }
    }

    /// What the relay lets one Pod push.
    pub fn push_limits(&self) -> PushLimits {
        PushLimits {
            max_bytes: usize::try_from(self.relay_max_push_bytes).unwrap_or(usize::MAX),
            per_minute: self.relay_max_pushes_per_minute,
        }
    }

    /// How the webhook itself reaches the gateway: the CA of `--gateway-ca-file` and its own
    /// credentials, checked as the pushers check theirs.
    pub fn gateway_access(&self) -> Result<GatewayAccess, WebhookConfigError> {
        GatewayAccessArgs {
            gateway_ca: None,
            gateway_ca_file: self.gateway_ca_file.clone(),
            gateway_username: self.gateway_username.clone(),
            gateway_password: self.gateway_password.clone(),
            gateway_token_file: None,
        }
        .resolve()
        .map_err(WebhookConfigError::GatewayCa)
    }

    /// `--gateway-ca-file`'s PEM, checked to hold certificates.
    fn gateway_ca_pem(&self) -> Result<Option<String>, WebhookConfigError> {
        let Some(path) = &self.gateway_ca_file else { return Ok(None) };
        let (pem, _) = read_ca_file(path).map_err(WebhookConfigError::GatewayCa)?;
        Ok(Some(pem))
    }

    /// `--gateway-credentials-secret`, checked as a Secret's name (a DNS-1123 subdomain).
    fn gateway_credentials_secret(&self) -> Result<Option<String>, WebhookConfigError> {
        match self.gateway_credentials_secret.as_deref() {
            None | Some("") => Ok(None),
            Some(name)
                if name.len() <= 253
                    && name.split('.').all(|part| {
                        !part.is_empty()
                            && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                            && !part.starts_with('-')
                            && !part.ends_with('-')
                    }) =>
            {
                Ok(Some(name.to_string()))
            }
            Some(name) => Err(WebhookConfigError::CredentialsSecret(name.to_string())),
        }
    }

    /// How the HTTPS port holds its connections, checked.
    pub fn serve_options(&self) -> Result<ServeOptions, WebhookConfigError> {
        for (flag, timeout) in [("read-header-timeout", self.read_header_timeout), ("idle-timeout", self.idle_timeout)]
        {
            if timeout.is_zero() {
                return Err(WebhookConfigError::ZeroTimeout { flag });
            }
        }
        Ok(ServeOptions {
            header_read_timeout: self.read_header_timeout,
            idle_timeout: self.idle_timeout,
            // A sidecar's or kube-apiserver's body is small and sent at once; what takes long at
            // the relay is the answer, which no timeout here may cut.
            body_timeout: None,
            // hyper's smallest read buffer. Its default ceiling makes a connection whose request
            // arrives in two reads (the HTTP/2 sniffing hands the first bytes over apart) double
            // the buffer to 16 KiB; a sidecar waiting at the relay holds it for minutes, and
            // thousands wait at the top of the hour (benches/relay.rs). Request heads stay far
            // below it; bodies are read through it in pieces.
            http1_read_buffer: Some(SMALLEST_HTTP1_READ_BUFFER),
            ..ServeOptions::default()
        })
    }

    /// `--cluster-name`, checked; empty is none.
    pub fn cluster_name(&self) -> Result<Option<String>, WebhookConfigError> {
        match self.cluster_name.as_deref() {
            None | Some("") => Ok(None),
            Some(name) if name.trim() != name || name.chars().any(char::is_control) => {
                Err(WebhookConfigError::ClusterName(name.to_string()))
            }
            Some(name) => Ok(Some(name.to_string())),
        }
    }

    /// The platforms of `--image`, checked: at least one, each `os/arch[/variant]`.
    pub fn image_platforms(&self) -> Result<Vec<Platform>, WebhookConfigError> {
        let platforms = self
            .image_platforms
            .iter()
            .filter(|p| !p.trim().is_empty())
            .map(|p| p.parse::<Platform>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(WebhookConfigError::ImagePlatforms)?;
        if platforms.is_empty() {
            return Err(WebhookConfigError::NoImagePlatforms);
        }
        Ok(platforms)
    }

    /// The namespaces never injected, the webhook's own included (a webhook that injects its
    /// own Pods can deadlock itself: h3poteto/fluentd-sidecar-injector#77).
    pub fn excluded_namespaces(&self) -> Vec<String> {
        let mut excluded: Vec<String> =
            self.exclude_namespaces.iter().map(|n| n.trim().to_string()).filter(|n| !n.is_empty()).collect();
        excluded.extend(self.own_namespace.clone());
        excluded
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        webhook: WebhookArgs,
    }

    fn args(flags: &[&str]) -> WebhookArgs {
        let mut all = vec!["webhook", "--gateway-url=https://pi:9091", "--image=cronpush:test"];
        all.extend(flags);
        Cli::try_parse_from(all).unwrap().webhook
    }

    #[test]
    fn the_relays_push_url_is_beside_its_exit_status() {
        let relay = args(&["--push-mode=relay", "--relay-url=https://hook.cronpush.svc:443/v1/exit-status"]);
        assert_eq!(relay.push_mode().unwrap(), PushMode::Relay { url: "https://hook.cronpush.svc:443/v1/push".into() });
        assert_eq!(args(&[]).push_mode().unwrap(), PushMode::Direct, "direct by default");
        let elsewhere = args(&["--push-mode=relay", "--relay-url=https://hook.cronpush.svc/relay"]);
        assert!(matches!(elsewhere.push_mode(), Err(WebhookConfigError::RelayPushUrl(_))));
        let limits = args(&["--relay-max-push-bytes=2048", "--relay-max-pushes-per-minute=3"]).push_limits();
        assert_eq!((limits.max_bytes, limits.per_minute), (2048, 3));
        assert!(Cli::try_parse_from(["webhook", "--gateway-url=x", "--image=x", "--push-mode=sideways"]).is_err());
        assert!(
            Cli::try_parse_from(["webhook", "--gateway-url=x", "--image=x", "--relay-max-pushes-per-minute=0"])
                .is_err()
        );
    }

    #[test]
    fn a_credentials_secret_has_no_place_in_the_relays_push_mode() {
        let relay = args(&["--push-mode=relay", "--gateway-credentials-secret=cronpush-gateway"]);
        assert!(
            matches!(relay.injection(), Err(WebhookConfigError::CredentialsInRelayMode)),
            "{:?}",
            relay.injection().err()
        );
    }
}
