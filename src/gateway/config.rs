//! The gateway's command line, under the reference Pushgateway's flag names so that a unit file
//! or a script written for it works unchanged. Everything is parsed and checked here, before
//! any port is bound.
//!
//! The reference is the latest Pushgateway release (1.11): its own flags (main.go), the ones
//! exporter-toolkit adds (web/kingpinflag/flag.go: `--web.listen-address`, `--web.config.file`,
//! `--web.systemd-socket`) and prometheus/common's (promslog/flag/flag.go: `--log.level`,
//! `--log.format`). kingpin, which parses them upstream, also takes `--no-NAME` for every
//! boolean flag (its help shows `--[no-]NAME`), so each boolean here has a hidden negation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use super::store::limits::{DEFAULT_MAX_BODY_BYTES, Limits};
use super::store::runs::{DEFAULT_MAX_LOG_BYTES, DEFAULT_RUNS, DEFAULT_TOTAL_RUNS};
use super::web::{WebConfig, WebConfigError};
use crate::exposition::names::NameRules;
use crate::go_duration;

#[derive(Args, Debug, Clone)]
pub struct GatewayArgs {
    /// Addresses to listen on for the web interface, the API and telemetry (repeatable).
    #[arg(long = "web.listen-address", default_value = ":9091", env = "CRONPUSH_LISTEN_ADDRESS")]
    pub listen_address: Vec<String>,

    /// Serve on the sockets systemd passes (socket activation, LISTEN_FDS) instead of
    /// --web.listen-address, as the reference does (Linux only). TCP sockets only.
    #[arg(long = "web.systemd-socket", overrides_with = "no_systemd_socket")]
    pub systemd_socket: bool,
    #[arg(long = "no-web.systemd-socket", hide = true)]
    no_systemd_socket: bool,

    /// Path under which the gateway's own and all pushed metrics are exposed.
    #[arg(long = "web.telemetry-path", default_value = "/metrics")]
    pub telemetry_path: String,

    /// The URL under which the gateway is reached from outside (behind a reverse proxy, say
    /// http://pi:8080/pushgateway/). Its path is the default route prefix.
    #[arg(long = "web.external-url", default_value = "")]
    pub external_url: String,

    /// Prefix of every route; defaults to the path of --web.external-url.
    #[arg(long = "web.route-prefix", default_value = "")]
    pub route_prefix: String,

    /// Enable shutdown via HTTP (PUT or POST /-/quit).
    #[arg(long = "web.enable-lifecycle", overrides_with = "no_enable_lifecycle")]
    pub enable_lifecycle: bool,
    #[arg(long = "no-web.enable-lifecycle", hide = true)]
    no_enable_lifecycle: bool,

    /// Enable the admin API (PUT /api/v1/admin/wipe).
    #[arg(long = "web.enable-admin-api", overrides_with = "no_enable_admin_api")]
    pub enable_admin_api: bool,
    #[arg(long = "no-web.enable-admin-api", hide = true)]
    no_enable_admin_api: bool,

    /// The store file: every change is written to it before it is acknowledged, so pushes
    /// survive a crash or power loss. Empty keeps pushed metrics in memory only.
    #[arg(long = "persistence.file", default_value = "", env = "CRONPUSH_PERSISTENCE_FILE")]
    pub persistence_file: String,

    /// Accepted for compatibility with the reference, which writes its file at this interval
    /// (5m when not given); cronpush writes every change before it answers, so there is no
    /// interval, and setting it only logs that.
    #[arg(long = "persistence.interval", value_parser = go_duration::flag)]
    pub persistence_interval: Option<Duration>,

    /// When the store file is damaged or not a cronpush store, move it aside (renamed to
    /// `<file>.damaged-<unix time>`) and start empty, instead of refusing to start. Not in the
    /// reference.
    #[arg(long = "persistence.start-empty-if-damaged")]
    pub start_empty_if_damaged: bool,

    /// Answer pushes with 202 before checking them against the store. cronpush still refuses
    /// an inconsistent push (it is logged and its failure time set), so scrapes never break.
    #[arg(long = "push.disable-consistency-check", overrides_with = "no_disable_consistency_check")]
    pub disable_consistency_check: bool,
    #[arg(long = "no-push.disable-consistency-check", hide = true)]
    no_disable_consistency_check: bool,

    /// Accepted, as the reference 1.11 has it, so its unit files start; this version still
    /// checks metric and label names against the legacy character set (`[a-zA-Z_:][a-zA-Z0-9_:]*`)
    /// and says so in the log when the flag is set.
    #[arg(long = "push.enable-utf8-names", overrides_with = "no_enable_utf8_names")]
    pub enable_utf8_names: bool,
    #[arg(long = "no-push.enable-utf8-names", hide = true)]
    no_enable_utf8_names: bool,

    /// Largest push body in bytes, as received and again after gunzip or snappy; larger gets
    /// 413. 0: no limit. Not in the reference.
    #[arg(long = "push.max-body-bytes", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,

    /// Most series one push may hold, over all its families; more gets 413. 0: no limit. Not in
    /// the reference.
    #[arg(long = "push.max-series", default_value_t = 0)]
    pub max_series: usize,

    /// Longest label value in bytes, in the pushed series and the grouping key; longer gets 400.
    /// 0: no limit. Not in the reference.
    #[arg(long = "push.max-label-value-length", default_value_t = 0)]
    pub max_label_value_length: usize,

    /// Most groups the gateway holds; a push that would create one more gets 507, while pushes
    /// to existing groups go on. 0: no limit. Not in the reference.
    #[arg(long = "push.max-groups", default_value_t = 0)]
    pub max_groups: usize,

    /// Delete a group once its last successful push is older than this (Go duration, h the
    /// largest unit: 72h). 0: never, as the reference keeps every group. Not in the reference.
    #[arg(long = "push.expire-after", default_value = "0s", value_parser = go_duration::flag)]
    pub expire_after: Duration,

    /// How many runs of each CronJob the run history keeps, read from cronpush's start and end
    /// pushes and kept with the group (in --persistence.file too). 0: none. Not in the reference.
    #[arg(long = "history.runs", default_value_t = DEFAULT_RUNS)]
    pub history_runs: usize,

    /// How many runs all CronJobs' histories keep together (about 400 bytes each in memory); at
    /// the bound, the CronJob with the most runs forgets its oldest. Not in the reference.
    #[arg(long = "history.max-runs", default_value_t = DEFAULT_TOTAL_RUNS)]
    pub history_max_runs: usize,

    /// How many bytes of failed runs' log lines all CronJobs' histories keep together, in memory
    /// and in --persistence.file (the lines come only from a webhook with --failed-run-logs, for
    /// CronJobs annotated cronpush.io/log-lines; at most 16 KiB a container). At the bound the
    /// oldest lines are forgotten; the runs stay. 0: none. Not in the reference.
    #[arg(long = "history.max-log-bytes", default_value_t = DEFAULT_MAX_LOG_BYTES)]
    pub history_max_log_bytes: usize,

    /// How long a client may take to send a request's head (Go duration): from the connection's
    /// start for its first request, the TLS handshake included, and from the first byte for the
    /// next ones on HTTP/1.1. A slower connection is closed without an answer. Not in the
    /// reference.
    #[arg(long = "web.read-header-timeout", default_value = "10s", value_parser = go_duration::flag)]
    pub read_header_timeout: Duration,

    /// How long a client may take to send a request's body once its head is in (Go duration); a
    /// body still arriving then gets 408 and the connection is closed. 0: no limit. Not in the
    /// reference.
    #[arg(long = "web.read-body-timeout", default_value = "1m", value_parser = go_duration::flag)]
    pub read_body_timeout: Duration,

    /// How long a kept-alive connection may wait for its next request (Go duration) before it is
    /// closed. Not in the reference.
    #[arg(long = "web.idle-timeout", default_value = "2m", value_parser = go_duration::flag)]
    pub idle_timeout: Duration,

    /// Path to a configuration file that enables TLS or basic authentication (the Prometheus
    /// exporter-toolkit format, as the reference Pushgateway reads it).
    #[arg(long = "web.config.file", default_value = "")]
    pub web_config_file: String,

    /// Only log messages with the given severity or above.
    #[arg(long = "log.level", default_value = "info", value_parser = ["debug", "info", "warn", "error"])]
    pub log_level: String,

    /// Output format of log messages.
    #[arg(long = "log.format", default_value = "logfmt", value_parser = ["logfmt", "json"])]
    pub log_format: String,
}

/// The checked configuration the gateway runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen_addresses: Vec<String>,
    /// --web.systemd-socket: serve on the sockets systemd passes, not on `listen_addresses`.
    pub systemd_socket: bool,
    pub telemetry_path: String,
    /// `""` or `/something`, never with a trailing slash.
    pub route_prefix: String,
    /// Where browsers reach the routes: the path of --web.external-url, else the route prefix.
    /// Behind a proxy that strips a path (nginx's `location /pushgateway/`), the two differ and
    /// the UI's links must use this one, as the reference's do. Same form as `route_prefix`.
    pub external_prefix: String,
    pub enable_lifecycle: bool,
    pub enable_admin_api: bool,
    pub persistence_file: Option<PathBuf>,
    pub start_empty_if_damaged: bool,
    pub consistency_check: bool,
    /// --push.enable-utf8-names: the names a push may use (legacy unless set, as upstream).
    pub name_rules: NameRules,
    /// Not listed in `flags`: `/api/v1/status` shows the reference's flags with its defaults.
    pub limits: Limits,
    /// --push.expire-after, `None` when 0. Not in `flags`, for the same reason as `limits`.
    pub expire_after: Option<Duration>,
    /// --history.runs: how many runs each CronJob's history keeps.
    pub history_runs: usize,
    /// --history.max-runs: how many runs all the histories keep together.
    pub history_max_runs: usize,
    /// --history.max-log-bytes: how many bytes of log lines all the histories keep together.
    pub history_max_log_bytes: usize,
    /// TLS, headers and basic auth from --web.config.file.
    pub web: WebConfig,
    /// --web.read-header-timeout, --web.read-body-timeout, --web.idle-timeout. Not in `flags`,
    /// for the same reason as `limits`.
    pub timeouts: Timeouts,
    /// Every flag as `/api/v1/status` shows it.
    pub flags: BTreeMap<String, String>,
    /// Flags of the reference that were set and have nothing to do here, for the log.
    pub without_effect: Vec<WithoutEffect>,
}

/// How long each connection may take over what, on every listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub read_header: Duration,
    /// `None`: no limit (0).
    pub read_body: Option<Duration>,
    pub idle: Duration,
}

/// A reference flag that cronpush accepts, so that a unit file written for the reference
/// starts, but that changes nothing here; the log says so once at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WithoutEffect {
    PersistenceInterval,
}

impl WithoutEffect {
    /// The line the log shows.
    pub fn message(self) -> &'static str {
        match self {
            WithoutEffect::PersistenceInterval => {
                "--persistence.interval is accepted and has nothing to do here: every change is written to \
                 --persistence.file before it is acknowledged, so there is no interval to wait"
            }
        }
    }
}

/// The interval the reference writes its file at when `--persistence.interval` is not given
/// (main.go's default), shown by `/api/v1/status` as it shows it.
const REFERENCE_PERSISTENCE_INTERVAL: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--web.external-url {0:?} is not an absolute http(s) URL")]
    ExternalUrl(String),
    #[error("--web.telemetry-path {0:?} must start with '/'")]
    TelemetryPath(String),
    #[error("--web.listen-address needs at least one address")]
    NoListenAddress,
    #[error("--web.listen-address {address:?}: {why}")]
    ListenAddress { address: String, why: &'static str },
    #[error("--{flag} must be more than 0s")]
    ZeroTimeout { flag: &'static str },
    #[error(transparent)]
    WebConfig(#[from] WebConfigError),
}

impl GatewayArgs {
    pub fn validate(self) -> Result<Config, ConfigError> {
        let external_path = if self.external_url.is_empty() {
            String::new()
        } else {
            url_path(&self.external_url).ok_or_else(|| ConfigError::ExternalUrl(self.external_url.clone()))?
        };
        if !self.telemetry_path.starts_with('/') {
            return Err(ConfigError::TelemetryPath(self.telemetry_path));
        }
        if self.listen_address.is_empty() {
            return Err(ConfigError::NoListenAddress);
        }
        if let Some((address, why)) =
            self.listen_address.iter().find_map(|address| listen_address_problem(address).map(|why| (address, why)))
        {
            return Err(ConfigError::ListenAddress { address: address.clone(), why });
        }
        for (flag, timeout) in
            [("web.read-header-timeout", self.read_header_timeout), ("web.idle-timeout", self.idle_timeout)]
        {
            if timeout.is_zero() {
                return Err(ConfigError::ZeroTimeout { flag });
            }
        }
        let timeouts = Timeouts {
            read_header: self.read_header_timeout,
            read_body: (!self.read_body_timeout.is_zero()).then_some(self.read_body_timeout),
            idle: self.idle_timeout,
        };
        let web = if self.web_config_file.is_empty() {
            WebConfig::default()
        } else {
            WebConfig::load(Path::new(&self.web_config_file))?
        };
        let prefix = if self.route_prefix.is_empty() { external_path.clone() } else { self.route_prefix.clone() };
        let external_prefix = if self.external_url.is_empty() { prefix.clone() } else { external_path };
        // A boolean and its `--no-` form override each other, so at most one is set: the
        // last given wins, as in kingpin.
        let systemd_socket = self.systemd_socket && !self.no_systemd_socket;
        let enable_lifecycle = self.enable_lifecycle && !self.no_enable_lifecycle;
        let enable_admin_api = self.enable_admin_api && !self.no_enable_admin_api;
        let disable_consistency_check = self.disable_consistency_check && !self.no_disable_consistency_check;
        let enable_utf8_names = self.enable_utf8_names && !self.no_enable_utf8_names;
        let without_effect = [(self.persistence_interval.is_some(), WithoutEffect::PersistenceInterval)]
            .into_iter()
            .filter_map(|(set, what)| set.then_some(what))
            .collect();
        // Every flag the reference 1.11 lists (all but kingpin's --help and --version, as
        // main.go filters them), under its name and with its default where it means the same.
        let flags = BTreeMap::from([
            ("log.format".into(), self.log_format.clone()),
            ("log.level".into(), self.log_level.clone()),
            ("persistence.file".into(), self.persistence_file.clone()),
            (
                "persistence.interval".into(),
                go_duration::format(self.persistence_interval.unwrap_or(REFERENCE_PERSISTENCE_INTERVAL)),
            ),
            ("push.disable-consistency-check".into(), disable_consistency_check.to_string()),
            ("push.enable-utf8-names".into(), enable_utf8_names.to_string()),
            ("web.enable-admin-api".into(), enable_admin_api.to_string()),
            ("web.enable-lifecycle".into(), enable_lifecycle.to_string()),
            ("web.external-url".into(), self.external_url.clone()),
            ("web.listen-address".into(), self.listen_address.join(",")),
            ("web.config.file".into(), self.web_config_file.clone()),
            ("web.route-prefix".into(), self.route_prefix.clone()),
            ("web.systemd-socket".into(), systemd_socket.to_string()),
            ("web.telemetry-path".into(), self.telemetry_path.clone()),
        ]);
        Ok(Config {
            listen_addresses: self.listen_address,
            systemd_socket,
            telemetry_path: self.telemetry_path,
            route_prefix: normalize_prefix(&prefix),
            external_prefix: normalize_prefix(&external_prefix),
            enable_lifecycle,
            enable_admin_api,
            persistence_file: (!self.persistence_file.is_empty()).then(|| PathBuf::from(self.persistence_file)),
            start_empty_if_damaged: self.start_empty_if_damaged,
            consistency_check: !disable_consistency_check,
            name_rules: if enable_utf8_names { NameRules::Utf8 } else { NameRules::Legacy },
            limits: Limits {
                max_body_bytes: self.max_body_bytes,
                max_series: self.max_series,
                max_label_value_length: self.max_label_value_length,
                max_groups: self.max_groups,
            },
            expire_after: (!self.expire_after.is_zero()).then_some(self.expire_after),
            history_runs: self.history_runs,
            history_max_runs: self.history_max_runs,
            history_max_log_bytes: self.history_max_log_bytes,
            web,
            timeouts,
            flags,
            without_effect,
        })
    }
}

/// What is wrong with a listen address, found before anything is read or bound: `host:port` or
/// `:port`, the host an IPv6 address in brackets, as Go's net.SplitHostPort reads it (the
/// reference's messages); the port a number, which is all `server::bind` takes.
fn listen_address_problem(address: &str) -> Option<&'static str> {
    let Some((host, port)) = address.rsplit_once(':') else {
        return Some("missing port in address");
    };
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return Some("too many colons in address");
    }
    port.parse::<u16>().is_err().then_some("the port is not a number from 0 to 65535")
}

/// `/` and `` become ``; otherwise one leading `/` and no trailing one.
fn normalize_prefix(prefix: &str) -> String {
    let trimmed = prefix.trim_end_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else if trimmed.starts_with('/') {
        trimmed.to_string()
    } else {
        format!("/{trimmed}")
    }
}

fn url_path(url: &str) -> Option<String> {
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"))?;
    let (host, path) = rest.split_once('/').map_or((rest, ""), |(h, p)| (h, p));
    (!host.is_empty()).then(|| format!("/{path}"))
}

/// The gateway's flags alone, as the binary's command line holds them, for tests.
#[cfg(test)]
#[derive(clap::Parser)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) gateway: GatewayArgs,
}

/// The configuration `cronpush gateway FLAGS` would run with, for tests.
#[cfg(test)]
pub(crate) fn from_flags(flags: &[&str]) -> Config {
    let argv = std::iter::once("gateway").chain(flags.iter().copied());
    <Cli as clap::Parser>::try_parse_from(argv).unwrap().gateway.validate().unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_prefix_comes_from_the_external_url() {
        assert_eq!(normalize_prefix("/"), "");
        assert_eq!(normalize_prefix("pg/"), "/pg");
        assert_eq!(url_path("http://localhost:8080/pushgateway/").unwrap(), "/pushgateway/");
        assert_eq!(url_path("http://localhost:8080").unwrap(), "/");
        assert!(url_path("localhost:8080").is_none());
    }

    #[test]
    fn listen_addresses_are_checked_before_anything_is_bound() {
        for good in [":9091", "0.0.0.0:9091", "127.0.0.1:0", "[::1]:9091", "localhost:9091"] {
            assert_eq!(listen_address_problem(good), None, "{good}");
        }
        assert_eq!(listen_address_problem("9091"), Some("missing port in address"));
        assert_eq!(listen_address_problem("::1:9091"), Some("too many colons in address"));
        assert_eq!(listen_address_problem("pi:"), Some("the port is not a number from 0 to 65535"));
        assert_eq!(listen_address_problem(":70000"), Some("the port is not a number from 0 to 65535"));
    }

    /// A unit file written for the Pushgateway 1.11, every flag of its `--help` set.
    const UPSTREAM_1_11_UNIT: &str = include_str!("../../tests/upstream/pushgateway-1.11.service");

    /// The words of the unit's ExecStart after the binary, its continued lines joined.
    fn exec_start_flags(unit: &str) -> Vec<&str> {
        let mut words = Vec::new();
        for line in unit.lines().skip_while(|l| !l.starts_with("ExecStart=")) {
            words.extend(line.split_whitespace().filter(|w| *w != "\\"));
            if !line.ends_with('\\') {
                break;
            }
        }
        words.into_iter().skip(1).collect()
    }

    /// The names `/api/v1/status` lists upstream: every flag but kingpin's --help and --version.
    const UPSTREAM_1_11_STATUS_FLAGS: &[&str] = &[
        "log.format",
        "log.level",
        "persistence.file",
        "persistence.interval",
        "push.disable-consistency-check",
        "push.enable-utf8-names",
        "web.config.file",
        "web.enable-admin-api",
        "web.enable-lifecycle",
        "web.external-url",
        "web.listen-address",
        "web.route-prefix",
        "web.systemd-socket",
        "web.telemetry-path",
    ];

    #[test]
    fn every_flag_of_the_upstream_1_11_help_is_accepted() {
        let flags = exec_start_flags(UPSTREAM_1_11_UNIT);
        assert_eq!(flags.len(), 15, "{flags:?}");
        let config = from_flags(&flags);
        assert_eq!(config.listen_addresses, [":9091", "127.0.0.1:9092"]);
        assert!(config.enable_lifecycle && config.enable_admin_api && !config.consistency_check);
        assert!(!config.systemd_socket);
        assert_eq!(config.route_prefix, "");
        assert_eq!(config.external_prefix, "/pushgateway");
        assert_eq!(config.without_effect, [WithoutEffect::PersistenceInterval]);
        assert_eq!(config.name_rules, NameRules::Utf8);
        let listed: Vec<&str> = config.flags.keys().map(String::as_str).collect();
        assert_eq!(listed, UPSTREAM_1_11_STATUS_FLAGS);
        assert_eq!(config.flags["push.enable-utf8-names"], "true");
        assert_eq!(config.flags["persistence.interval"], "1m0s");
        assert_eq!(config.flags["web.systemd-socket"], "false");
    }

    #[test]
    fn the_status_shows_upstreams_defaults_and_nothing_is_logged_without_flags() {
        let config = from_flags(&[]);
        let defaults = [
            ("log.format", "logfmt"),
            ("log.level", "info"),
            ("persistence.file", ""),
            ("persistence.interval", "5m0s"),
            ("push.disable-consistency-check", "false"),
            ("push.enable-utf8-names", "false"),
            ("web.config.file", ""),
            ("web.enable-admin-api", "false"),
            ("web.enable-lifecycle", "false"),
            ("web.external-url", ""),
            ("web.listen-address", ":9091"),
            ("web.route-prefix", ""),
            ("web.systemd-socket", "false"),
            ("web.telemetry-path", "/metrics"),
        ];
        let shown: Vec<(&str, &str)> = config.flags.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        assert_eq!(shown, defaults);
        assert!(config.without_effect.is_empty());
    }

    /// kingpin's `--[no-]NAME`: the negation is taken, and the last of the two given wins.
    #[test]
    fn every_boolean_takes_its_no_form_and_the_last_one_wins() {
        let config = from_flags(&[
            "--web.enable-lifecycle",
            "--no-web.enable-lifecycle",
            "--no-web.enable-admin-api",
            "--web.enable-admin-api",
            "--no-push.disable-consistency-check",
            "--push.enable-utf8-names",
            "--no-push.enable-utf8-names",
            "--web.systemd-socket",
            "--no-web.systemd-socket",
        ]);
        assert!(!config.enable_lifecycle && config.enable_admin_api && config.consistency_check);
        assert!(!config.systemd_socket);
        assert_eq!(config.flags["push.enable-utf8-names"], "false");
        assert!(config.without_effect.is_empty());
        assert!(from_flags(&["--no-web.systemd-socket", "--web.systemd-socket"]).systemd_socket);
    }

    #[test]
    fn connection_timeouts_have_defaults_and_zero_means_no_body_limit_only() {
        let defaults = from_flags(&[]).timeouts;
        let s = Duration::from_secs;
        assert_eq!(defaults, Timeouts { read_header: s(10), read_body: Some(s(60)), idle: s(120) });
        let set =
            from_flags(&["--web.read-header-timeout=2s", "--web.read-body-timeout=0", "--web.idle-timeout=1m30s"]);
        assert_eq!(set.timeouts, Timeouts { read_header: s(2), read_body: None, idle: s(90) });
        for zero in ["--web.read-header-timeout=0s", "--web.idle-timeout=0"] {
            let parsed = <Cli as clap::Parser>::try_parse_from(["gateway", zero]).unwrap();
            assert!(matches!(parsed.gateway.validate(), Err(ConfigError::ZeroTimeout { .. })), "{zero}");
        }
    }

    #[test]
    fn links_follow_the_external_url_even_when_the_routes_do_not() {
        let config = from_flags;
        // The article behind nginx: the proxy strips /pushgateway/, the links must keep it.
        let behind = config(&["--web.external-url=http://localhost:8080/pushgateway/", "--web.route-prefix=/"]);
        assert_eq!((behind.route_prefix.as_str(), behind.external_prefix.as_str()), ("", "/pushgateway"));
        let plain = config(&["--web.route-prefix=/pg"]);
        assert_eq!((plain.route_prefix.as_str(), plain.external_prefix.as_str()), ("/pg", "/pg"));
        let default = config(&["--web.external-url=http://pi:9091/pg/"]);
        assert_eq!((default.route_prefix.as_str(), default.external_prefix.as_str()), ("/pg", "/pg"));
    }
}
