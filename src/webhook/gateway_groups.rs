//! The gateway as the webhook sees it: the CronJob groups of its `job` label and its cluster,
//! read from the JSON API (`GET /api/v1/metrics`, the reference's shape), and where each group
//! lives. Another cluster's groups on a shared gateway are never this webhook's to change.

use std::time::Duration;

use k8s_openapi::api::batch::v1::CronJob;

use base64::Engine as _;

use crate::pushers::gateway_access::GatewayAccess;
use crate::pushers::gateway_client::TEXT_FORMAT;
use crate::pushers::group::{GatewayUrlError, Group};

/// A CronJob, as its group names it: namespace and name.
pub type Name = (String, String);

/// The name of a CronJob's group.
pub fn name_of(cronjob: &CronJob) -> Name {
    (cronjob.metadata.namespace.clone().unwrap_or_default(), cronjob.metadata.name.clone().unwrap_or_default())
}

/// How long one request to the gateway may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the gateway's groups could not be read, or a push into one was not taken.
#[derive(Debug, thiserror::Error)]
pub enum GatewayGroupsError {
    #[error(transparent)]
    Request(reqwest::Error),
    #[error("{url} answered {status}")]
    ReadRefused { url: String, status: reqwest::StatusCode },
    #[error("{url}: {source}")]
    ReadBody { url: String, source: reqwest::Error },
    #[error("{url}: {source}")]
    NotJson { url: String, source: serde_json::Error },
    #[error(transparent)]
    GroupUrl(#[from] GatewayUrlError),
    #[error("the gateway answered {0}")]
    PushRefused(reqwest::StatusCode),
}

/// The gateway, and which of its groups are cronpush's.
#[derive(Clone)]
pub struct GatewayGroups {
    pub gateway_url: String,
    pub job_label: String,
    /// The `cluster` of this webhook's groups (`--cluster-name`); `None`: groups without one.
    pub cluster: Option<String>,
    pub http: reqwest::Client,
}

/// One CronJob group on the gateway.
pub struct GroupOnGateway {
    pub name: Name,
    /// The last successful push, Unix seconds; 0 for a group never pushed successfully.
    pub pushed: f64,
    /// The group as the JSON API gives it: its families by name.
    pub json: serde_json::Value,
}

impl GroupOnGateway {
    /// The value of the first series of `family`, if the group has it.
    pub fn value(&self, family: &str) -> Option<f64> {
        self.json[family]["metrics"][0]["value"].as_str().and_then(|v| v.parse::<f64>().ok())
    }

    /// A label of the first series of `family`, if the group has it.
    pub fn label(&self, family: &str, label: &str) -> Option<&str> {
        self.json[family]["metrics"][0]["labels"][label].as_str()
    }
}

impl GatewayGroups {
    /// The HTTP client the webhook talks to the gateway with: trusting the public roots and the
    /// access's CA, and sending its credentials with every request (marked sensitive, so they
    /// never show in a debug line).
    pub fn http_client(access: &GatewayAccess) -> Result<reqwest::Client, reqwest::Error> {
        let mut builder = access.client_builder()?;
        if let Some((user, password)) = &access.credentials {
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            let mut value = reqwest::header::HeaderValue::try_from(format!("Basic {token}"))
                .expect("base64 is a valid header value");
            value.set_sensitive(true);
            builder = builder.default_headers([(reqwest::header::AUTHORIZATION, value)].into_iter().collect());
        }
        builder.build()
    }

    /// This job label's and this cluster's CronJob groups on the gateway.
    pub async fn read(&self) -> Result<Vec<GroupOnGateway>, GatewayGroupsError> {
        let url = format!("{}/api/v1/metrics", self.gateway_url.trim_end_matches('/'));
        let response =
            self.http.get(&url).timeout(REQUEST_TIMEOUT).send().await.map_err(GatewayGroupsError::Request)?;
        if !response.status().is_success() {
            return Err(GatewayGroupsError::ReadRefused { url, status: response.status() });
        }
        let bytes =
            response.bytes().await.map_err(|source| GatewayGroupsError::ReadBody { url: url.clone(), source })?;
        let mut body: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|source| GatewayGroupsError::NotJson { url, source })?;
        let mut groups = Vec::new();
        let data = match body["data"].take() {
            serde_json::Value::Array(data) => data,
            _ => Vec::new(),
        };
        for json in data {
            let label = |name: &str| json["labels"][name].as_str().map(str::to_string);
            if label("job").as_deref() != Some(self.job_label.as_str()) || label("cluster") != self.cluster {
                continue;
            }
            let (Some(namespace), Some(cronjob)) = (label("namespace"), label("cronjob")) else { continue };
            let mut group = GroupOnGateway { name: (namespace, cronjob), pushed: 0.0, json };
            // A group never pushed successfully has none; it is as old as can be.
            group.pushed = group.value("push_time_seconds").unwrap_or(0.0);
            groups.push(group);
        }
        Ok(groups)
    }

    /// The group of the CronJob `name`.
    pub fn group(&self, (namespace, cronjob): &Name) -> Group {
        Group {
            job: self.job_label.clone(),
            cluster: self.cluster.clone(),
            namespace: namespace.clone(),
            cronjob: cronjob.clone(),
        }
    }

    /// POSTs `body` (text format) into `group` within `timeout`: what is pushed replaces the same
    /// families there.
    pub async fn push(&self, group: &Group, body: String, timeout: Duration) -> Result<(), GatewayGroupsError> {
        let url = group.url(Some(&self.gateway_url))?;
        let request = self.http.post(url).header("Content-Type", TEXT_FORMAT).body(body);
        match request.timeout(timeout).send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(GatewayGroupsError::PushRefused(r.status())),
            Err(e) => Err(GatewayGroupsError::Request(e)),
        }
    }

    /// Deletes the group of the CronJob `name`; `why` goes into the log.
    pub async fn delete(&self, name: &Name, why: &str) {
        let group = self.group(name);
        let url = match group.url(Some(&self.gateway_url)) {
            Ok(url) => url,
            Err(e) => return tracing::warn!(error = %e, "cannot name the group to delete"),
        };
        match self.http.delete(url).timeout(REQUEST_TIMEOUT).send().await {
            Ok(r) if r.status().is_success() => {
                tracing::info!(%group, reason = why, "deleted the group from the gateway")
            }
            Ok(r) => tracing::warn!(%group, status = %r.status(), "the gateway refused to delete the group"),
            Err(e) => tracing::warn!(%group, error = %e, "cannot delete the group from the gateway"),
        }
    }
}
