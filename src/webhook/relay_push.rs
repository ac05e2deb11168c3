//! The relay's push mode (`--push-mode=relay`): the injected pushers push to the relay instead of
//! the gateway, and the relay forwards each push to its CronJob's group with the webhook's own
//! connection to the gateway (its CA, its credentials), so that Job Pods hold no gateway secret.
//!
//! A push is forwarded only when
//! - its bearer token is a projected token for the relay's audience, bound to a Pod (the same
//!   TokenReview as the exit status);
//! - that Pod is a run of a CronJob: its controller is a Job, and the Job's a CronJob (by uid);
//! - the URL names exactly that CronJob's group, as the webhook injects it (`job`, `cluster`
//!   when set, `namespace`, `cronjob`), and writes it (`PUT`/`POST` of metrics, `PUT` of run log
//!   lines); a Pod never deletes a group;
//! - the Pod is within its rate (`push_rates`) and the body within the size limit.
//!
//! The relay then forwards to the group's canonical URL, which it builds itself rather than
//! passing the pusher's path on, so that the gateway cannot read a path differently from the
//! relay. Only the body and its `Content-Type` and `Content-Encoding` go on; the token stays.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::gateway_groups::{GatewayGroups, REQUEST_TIMEOUT};
use super::push_rates::PushRates;
use super::relay::{Relay, RelayError};
use crate::gateway::http::handlers::decode_path;
use crate::gateway::http::router::{Route, RouteTable, Routing};
use crate::gateway::store::GroupingKey;
use crate::pushers::gateway_client::{NOT_RETRIED_HEADER, causes, certificate_problem};
use crate::pushers::group::Group;

/// How much of the gateway's answer is passed back: its messages are one line.
const ANSWER_LIMIT: usize = 4096;

/// Where on the gateway a push goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// `/metrics/job/...`: series.
    Metrics,
    /// `/api/v1/runs/logs/job/...`: a failed run's last log lines.
    RunLogs,
}

/// The relay's limits on what one Pod pushes.
#[derive(Debug, Clone, Copy)]
pub struct PushLimits {
    /// The largest body, as sent (compressed or not).
    pub max_bytes: usize,
    /// Pushes per Pod per minute, and in a burst.
    pub per_minute: u32,
}

pub struct RelayPush {
    gateway: GatewayGroups,
    max_bytes: usize,
    rates: PushRates,
}

/// One push as the pusher sent it.
pub struct Push {
    pub token: Option<String>,
    pub method: Method,
    /// The path after `/v1/push`, as sent (percent-encoded).
    pub path: String,
    pub headers: HeaderMap,
    pub body: Body,
}

impl RelayPush {
    pub fn new(gateway: GatewayGroups, limits: PushLimits) -> RelayPush {
        RelayPush { gateway, max_bytes: limits.max_bytes, rates: PushRates::new(limits.per_minute) }
    }

    /// Checks the push, forwards it, and gives the gateway's answer.
    pub async fn push(&self, relay: &Relay, push: Push) -> Result<Response, RelayError> {
        let (client, owner) = relay.verified_pod(push.token.as_deref()).await?;
        let (destination, named) = named_group(&push.method, &push.path)?;
        let cronjob = relay.cronjob_of(&client, &owner).await?;
        let group = self.gateway.group(&(owner.namespace.clone(), cronjob));
        if named.labels() != group_key(&group).labels() {
            return Err(RelayError::Forbidden(format!(
                "Pod {}/{} may push only into its CronJob's group {group}, not into {}",
                owner.namespace,
                owner.name,
                key_text(&named)
            )));
        }
        self.rates.take(&owner.uid).map_err(|retry_after| RelayError::TooMany {
            why: format!(
                "Pod {}/{} pushes too often; try again in {:.1} s",
                owner.namespace,
                owner.name,
                retry_after.as_secs_f64()
            ),
            retry_after,
        })?;
        let body = self.read_body(push.body, &push.headers).await?;
        self.forward(&push.method, destination, &group, &push.headers, body).await
    }

    /// The body, whole, or why it is not taken.
    async fn read_body(&self, body: Body, headers: &HeaderMap) -> Result<Bytes, RelayError> {
        let too_large = || {
            RelayError::TooLarge(format!(
                "the push is larger than the relay takes ({} bytes, --relay-max-push-bytes)",
                self.max_bytes
            ))
        };
        let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|length| length > self.max_bytes as u64) {
            return Err(too_large());
        }
        match Limited::new(body, self.max_bytes).collect().await {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
            Err(e) => Err(RelayError::BadRequest(format!("cannot read the push: {e}"))),
        }
    }

    /// Sends the push on to the group's URL on the gateway with the webhook's connection.
    async fn forward(
        &self,
        method: &Method,
        destination: Destination,
        group: &Group,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<Response, RelayError> {
        let gateway = Some(self.gateway.gateway_url.as_str());
        let url = match destination {
            Destination::Metrics => group.url(gateway),
            Destination::RunLogs => group.run_logs_url(gateway),
        }
        .map_err(|e| RelayError::Gateway { why: e.to_string(), retried: false })?;
        let mut request = self.gateway.http.request(method.clone(), url).timeout(REQUEST_TIMEOUT).body(body);
        for name in [header::CONTENT_TYPE, header::CONTENT_ENCODING] {
            if let Some(value) = headers.get(&name) {
                request = request.header(name, value);
            }
        }
        let response = request.send().await.map_err(|e| match certificate_problem(&e) {
            Some(why) => RelayError::Gateway {
                why: format!(
                    "the gateway's certificate does not verify at the relay ({why}); give the webhook the CA that \
                     signed it with --gateway-ca-file"
                ),
                retried: false,
            },
            None => RelayError::Gateway {
                why: format!("the relay cannot reach the gateway: {}", causes(&e.without_url())),
                retried: true,
            },
        })?;
        let status = response.status();
        let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
        let mut answer = response.bytes().await.unwrap_or_default();
        answer.truncate(ANSWER_LIMIT);
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            return Err(RelayError::Gateway {
                why: format!(
                    "the gateway refused the relay's credentials ({status}): {}; check the webhook's \
                     --gateway-username and CRONPUSH_GATEWAY_PASSWORD",
                    String::from_utf8_lossy(&answer).trim()
                ),
                retried: false,
            });
        }
        let mut reply = (status, answer).into_response();
        if let Some(content_type) = content_type {
            reply.headers_mut().insert(header::CONTENT_TYPE, content_type);
        }
        Ok(reply)
    }
}

/// The group a push URL names, read as the gateway reads it (percent-decoded, then its routes
/// and grouping-key rules), and where on the gateway the push goes.
fn named_group(method: &Method, raw_path: &str) -> Result<(Destination, GroupingKey), RelayError> {
    let path = decode_path(raw_path).map_err(|e| RelayError::BadRequest(e.to_string()))?;
    let table = RouteTable { prefix: "", telemetry_path: "/metrics", admin_api: false };
    let (destination, path) = match table.route(method.as_str(), &path) {
        Routing::Handle(Route::Push(path)) if *method == Method::DELETE => {
            return Err(RelayError::Forbidden(format!(
                "a Pod cannot delete groups through the relay (DELETE /metrics{})",
                path_text(&path)
            )));
        }
        Routing::Handle(Route::Push(path)) => (Destination::Metrics, path),
        Routing::Handle(Route::ApiRunLogs(path)) => (Destination::RunLogs, path),
        _ => {
            return Err(RelayError::BadRequest(format!(
                "the relay takes PUT and POST /metrics/job/... and PUT /api/v1/runs/logs/job/... under /v1/push, \
                 not {method} {path}"
            )));
        }
    };
    let key = GroupingKey::from_path(&path.job, path.job_is_base64, &path.labels)
        .map_err(|e| RelayError::BadRequest(format!("the push path names no group: {e}")))?;
    Ok((destination, key))
}

fn path_text(path: &crate::gateway::http::router::PushPath) -> String {
    let job = if path.job_is_base64 { "job@base64" } else { "job" };
    format!("/{job}/{}{}", path.job, path.labels)
}

/// The grouping key of a CronJob's group, as the gateway stores it.
fn group_key(group: &Group) -> GroupingKey {
    let mut pairs = vec![
        ("job".to_string(), group.job.clone()),
        ("namespace".to_string(), group.namespace.clone()),
        ("cronjob".to_string(), group.cronjob.clone()),
    ];
    pairs.extend(group.cluster.clone().map(|cluster| ("cluster".to_string(), cluster)));
    GroupingKey::from_pairs(pairs).expect("the key has a job")
}

/// A grouping key written as a group is in the logs: `{job="cronpush",namespace="ops",...}`.
fn key_text(key: &GroupingKey) -> String {
    let labels: Vec<String> = key.labels().iter().map(|(name, value)| format!("{name}={value:?}")).collect();
    format!("{{{}}}", labels.join(","))
}

/// A refusal of a push as an answer, with what the pusher needs to act on it: when to try again
/// after a 429, and that trying again is useless after a gateway failure that would come back.
pub fn refusal_headers(error: &RelayError, response: &mut Response) {
    match error {
        RelayError::TooMany { retry_after, .. } => {
            let seconds = retry_after.as_secs_f64().ceil().max(1.0) as u64;
            if let Ok(value) = HeaderValue::try_from(seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        RelayError::Gateway { retried: false, .. } => {
            response.headers_mut().insert(NOT_RETRIED_HEADER, HeaderValue::from_static("true"));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(cluster: Option<&str>) -> Group {
        Group {
            job: "cronpush".into(),
            cluster: cluster.map(str::to_string),
            namespace: "ops".into(),
            cronjob: "backup".into(),
        }
    }

    #[test]
    fn a_push_path_names_the_group_the_gateway_would_store_it_in() {
        for g in [group(None), group(Some("eu-1")), Group { cronjob: "a/b".into(), ..group(None) }] {
            let (destination, key) = named_group(&Method::POST, &g.path()).unwrap();
            assert_eq!((destination, key), (Destination::Metrics, group_key(&g)), "{g}");
            let logs = g.run_logs_url(Some("https://relay/")).unwrap();
            let (destination, key) = named_group(&Method::PUT, logs.path()).unwrap();
            assert_eq!((destination, key), (Destination::RunLogs, group_key(&g)));
        }
        // The same group written otherwise is still that group: the key decides, not the text.
        let (_, key) =
            named_group(&Method::PUT, "/metrics/job@base64/Y3JvbnB1c2g/cronjob/backup/namespace/ops").unwrap();
        assert_eq!(key, group_key(&group(None)));
        let (_, key) =
            named_group(&Method::PUT, "/metrics/job/cronpush/namespace/ops/cronjob/backup/job/other").unwrap();
        assert_eq!(key, group_key(&group(None)), "the route's job wins, as at the gateway");
    }

    #[test]
    fn deletes_and_other_routes_are_refused() {
        let delete = named_group(&Method::DELETE, "/metrics/job/cronpush/namespace/ops/cronjob/backup");
        assert!(matches!(delete, Err(RelayError::Forbidden(ref why)) if why.contains("cannot delete")), "{delete:?}");
        for (method, path) in [
            (Method::GET, "/metrics"),
            (Method::PUT, "/api/v1/admin/wipe"),
            (Method::GET, "/metrics/job/cronpush"),
            (Method::POST, "/api/v1/runs/logs/job/cronpush"),
            (Method::POST, "/metrics/job/cronpush/../x"),
        ] {
            assert!(matches!(named_group(&method, path), Err(RelayError::BadRequest(_))), "{method} {path}");
        }
        assert!(matches!(named_group(&Method::POST, "/metrics/job/cronpush/odd"), Err(RelayError::BadRequest(_))));
        assert!(matches!(named_group(&Method::POST, "/metrics/job/%ff"), Err(RelayError::BadRequest(_))));
    }

    #[test]
    fn a_key_reads_as_a_group_does() {
        assert_eq!(
            key_text(&group_key(&group(Some("eu-1")))),
            r#"{cluster="eu-1",cronjob="backup",job="cronpush",namespace="ops"}"#
        );
    }
}
