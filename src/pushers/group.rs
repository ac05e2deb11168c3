//! The group a CronJob's runs push to, `/metrics/job/<job>/namespace/<ns>/cronjob/<name>`
//! (DESIGN.md "Grouping key and metrics"), with `/cluster/<name>` after the job when the webhook
//! names its cluster (`--cluster-name`), and its URL on the gateway.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Url;

/// What a path segment may hold unescaped: RFC 3986's unreserved characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// The grouping key of one CronJob: one group per CronJob, so that each run's pushes replace
/// the previous run's series. `namespace` and `cronjob` match kube-state-metrics' labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub job: String,
    /// The cluster, when one gateway serves several: the same namespace and CronJob may exist
    /// in each. Without it the key is the one groups had before, so their series carry on.
    pub cluster: Option<String>,
    pub namespace: String,
    pub cronjob: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayUrlError {
    #[error("no gateway URL (set {})", crate::contract::env::GATEWAY_URL)]
    Missing,
    #[error("the gateway URL {url:?} is not a URL: {reason}")]
    Invalid { url: String, reason: String },
    #[error("the gateway URL {url:?} is neither http nor https")]
    Scheme { url: String },
}

impl Group {
    /// The push path, each value encoded as the Pushgateway's clients do.
    pub fn path(&self) -> String {
        let mut path = String::from("/metrics");
        let cluster = self.cluster.as_ref().map(|cluster| ("cluster", cluster));
        let key =
            [Some(("job", &self.job)), cluster, Some(("namespace", &self.namespace)), Some(("cronjob", &self.cronjob))];
        for (name, value) in key.into_iter().flatten() {
            path.push('/');
            path.push_str(&segments(name, value));
        }
        path
    }

    /// The group's URL on the gateway at `gateway`, under the gateway's path prefix if it has
    /// one (`http://pi:8080/pushgateway` pushes to `/pushgateway/metrics/...`).
    pub fn url(&self, gateway: Option<&str>) -> Result<Url, GatewayUrlError> {
        gateway_url(gateway, &self.path())
    }

    /// Where the gateway takes the run's failed containers' last log lines: the group named as
    /// in its push URL, under `/api/v1/runs/logs` instead of `/metrics` (a cronpush gateway's
    /// own route; a plain Pushgateway answers 404 or 405).
    pub fn run_logs_url(&self, gateway: Option<&str>) -> Result<Url, GatewayUrlError> {
        let path = self.path();
        gateway_url(gateway, &format!("/api/v1/runs/logs{}", path.strip_prefix("/metrics").unwrap_or(&path)))
    }
}

/// `path` on the gateway at `gateway`, under the gateway's path prefix if it has one.
fn gateway_url(gateway: Option<&str>, path: &str) -> Result<Url, GatewayUrlError> {
    let gateway = gateway.filter(|g| !g.trim().is_empty()).ok_or(GatewayUrlError::Missing)?.trim();
    let mut url = Url::parse(gateway)
        .map_err(|e| GatewayUrlError::Invalid { url: gateway.to_string(), reason: e.to_string() })?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(GatewayUrlError::Scheme { url: gateway.to_string() });
    }
    let path = format!("{}{path}", url.path().trim_end_matches('/'));
    url.set_path(&path);
    Ok(url)
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{job={:?},", self.job)?;
        if let Some(cluster) = &self.cluster {
            write!(f, "cluster={cluster:?},")?;
        }
        write!(f, "namespace={:?},cronjob={:?}}}", self.namespace, self.cronjob)
    }
}

/// `name/value`, or `name@base64/<base64url>` for a value a path segment cannot carry: one with
/// a `/`, an empty one (`=`), and `.` or `..`, which URL parsers resolve as dot segments even
/// when percent-encoded.
fn segments(name: &str, value: &str) -> String {
    if value.is_empty() {
        format!("{name}@base64/=")
    } else if value.contains('/') || value == "." || value == ".." {
        format!("{name}@base64/{}", URL_SAFE_NO_PAD.encode(value))
    } else {
        format!("{name}/{}", utf8_percent_encode(value, SEGMENT))
    }
}

/// A URL without its user name and password, for the logs.
pub fn redacted(url: &Url) -> String {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::store::GroupingKey;
    use percent_encoding::percent_decode_str;

    fn group(job: &str, namespace: &str, cronjob: &str) -> Group {
        Group { job: job.into(), cluster: None, namespace: namespace.into(), cronjob: cronjob.into() }
    }

    /// The key a gateway reads from the path, as its router splits and decodes it.
    fn read_back(path: &str) -> Vec<(String, String)> {
        let rest = path.strip_prefix("/metrics/").unwrap();
        let (route, rest) = rest.split_once('/').unwrap();
        let (job, labels) = rest.split_once('/').map_or((rest, String::new()), |(j, l)| (j, format!("/{l}")));
        let job = percent_decode_str(job).decode_utf8().unwrap();
        let labels = percent_decode_str(&labels).decode_utf8().unwrap();
        GroupingKey::from_path(&job, route == "job@base64", &labels).unwrap().labels().to_vec()
    }

    #[test]
    fn plain_values_are_path_segments() {
        assert_eq!(group("cronpush", "prod", "backup").path(), "/metrics/job/cronpush/namespace/prod/cronjob/backup");
        assert_eq!(group("a b", "ns", "c%d").path(), "/metrics/job/a%20b/namespace/ns/cronjob/c%25d");
    }

    #[test]
    fn a_named_cluster_comes_after_the_job_and_reads_back() {
        let group = Group { cluster: Some("eu/west 1".into()), ..group("cronpush", "prod", "backup") };
        assert_eq!(group.path(), "/metrics/job/cronpush/cluster@base64/ZXUvd2VzdCAx/namespace/prod/cronjob/backup");
        let key = read_back(&group.path());
        assert!(key.contains(&("cluster".into(), "eu/west 1".into())), "{key:?}");
        assert_eq!(group.to_string(), r#"{job="cronpush",cluster="eu/west 1",namespace="prod",cronjob="backup"}"#);
    }

    #[test]
    fn slashes_empty_and_dot_values_are_base64() {
        assert_eq!(group("a/b", "", "..").path(), "/metrics/job@base64/YS9i/namespace@base64/=/cronjob@base64/Li4");
    }

    #[test]
    fn gateways_read_back_the_values() {
        for (job, namespace, cronjob) in [
            ("cronpush", "prod", "backup"),
            ("a/b", "", "."),
            ("Προμηθεύς", "x?y#z", "100%"),
            ("job@base64", "..", "a b+c"),
        ] {
            let mut want = vec![
                ("cronjob".to_string(), cronjob.to_string()),
                ("job".to_string(), job.to_string()),
                ("namespace".to_string(), namespace.to_string()),
            ];
            want.sort();
            assert_eq!(read_back(&group(job, namespace, cronjob).path()), want, "{job} {namespace} {cronjob}");
        }
    }

    #[test]
    fn the_gateway_url_keeps_its_prefix() {
        let g = group("cronpush", "prod", "backup");
        let url = |gateway| g.url(Some(gateway)).map(|u| u.to_string());
        let tail = "metrics/job/cronpush/namespace/prod/cronjob/backup";
        assert_eq!(url("http://gw:9091"), Ok(format!("http://gw:9091/{tail}")));
        assert_eq!(url("http://gw:9091/"), Ok(format!("http://gw:9091/{tail}")));
        assert_eq!(url("http://pi:8080/pushgateway"), Ok(format!("http://pi:8080/pushgateway/{tail}")));
        assert_eq!(url("https://pi/pushgateway/ "), Ok(format!("https://pi/pushgateway/{tail}")));
    }

    #[test]
    fn unusable_gateway_urls_are_told_apart() {
        let g = group("cronpush", "prod", "backup");
        assert_eq!(g.url(None), Err(GatewayUrlError::Missing));
        assert_eq!(g.url(Some(" ")), Err(GatewayUrlError::Missing));
        assert!(matches!(g.url(Some("gateway:9091")), Err(GatewayUrlError::Scheme { .. })));
        assert!(matches!(g.url(Some("ftp://gateway")), Err(GatewayUrlError::Scheme { .. })));
        assert!(matches!(g.url(Some("http://")), Err(GatewayUrlError::Invalid { .. })));
    }

    #[test]
    fn log_lines_go_to_the_groups_runs_under_the_gateways_prefix() {
        let g = Group { cluster: Some("eu/1".into()), ..group("cronpush", "prod", "backup") };
        let url = g.run_logs_url(Some("http://pi:8080/pushgateway/")).unwrap().to_string();
        assert_eq!(
            url,
            "http://pi:8080/pushgateway/api/v1/runs/logs/job/cronpush/cluster@base64/ZXUvMQ/namespace/prod/cronjob/backup"
        );
        let dots = group("cronpush", "..", "a b").run_logs_url(Some("http://gw:9091")).unwrap().to_string();
        assert_eq!(dots, "http://gw:9091/api/v1/runs/logs/job/cronpush/namespace@base64/Li4/cronjob/a%20b");
    }

    #[test]
    fn logs_never_show_credentials() {
        let url = group("j", "n", "c").url(Some("https://user:secret@gw/pg")).unwrap();
        assert_eq!(redacted(&url), "https://gw/pg/metrics/job/j/namespace/n/cronjob/c");
    }
}
