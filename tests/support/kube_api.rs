//! A small fake kube-apiserver for the tests that need one (none can be installed here). It
//! keeps JSON objects by resource, namespace and name, and answers what cronpush asks the way
//! kube-apiserver does:
//! - GET of one object; a missing one is a `Status` with reason NotFound and code 404;
//! - a list (`items` and `metadata.resourceVersion`), cluster-wide or in one namespace, paged
//!   with `limit` and `continue`;
//! - a watch (`?watch=true&resourceVersion=N`): newline-delimited `{"type","object"}` events for
//!   every change after N, the connection held open while nothing changes, `fieldSelector=
//!   metadata.name=<name>` honoured (a relay watches one Pod that way);
//! - `labelSelector` on lists and watches, with the existence (`key`, `!key`) and equality
//!   (`key=value`, `key==value`, `key!=value`) requirements of apimachinery's
//!   pkg/labels/selector.go (the relay's shared watch selects `cronpush.io/injected`). A watch
//!   filters each event by the object it carries; kube-apiserver's cacher also turns a change
//!   of labels into ADDED or DELETED (cacher.go), which cronpush never needs: its label is set
//!   when the Pod is created and never changes;
//! - `POST .../tokenreviews`: the TokenReview of a token registered with `add_token`, with the
//!   audiences and the pod-bound user extras of a projected service-account token; a token
//!   registered with `add_expired_token` is refused as expired;
//! - `GET .../pods/<name>/log`: a container's log as the kubelet serves it (set with
//!   `set_log`, as the container runtime's CRI log would hold it), with `container`,
//!   `tailLines` and `limitBytes` as kube-apiserver and the kubelet read them (below, at
//!   `pod_log`); `forbid_pod_logs` answers 403 as for a webhook without the `pods/log` RBAC;
//! - `/version`, with a settable minor version;
//! - Nodes, cluster-scoped at `/api/v1/nodes` (list, watch, GET), as kube-apiserver serves
//!   them (pkg/registry/core/node/strategy.go: `NamespaceScoped` is false): an object without `metadata.namespace` is kept under no namespace, and a
//!   cluster-wide path selects it.
//!
//! Every change bumps one resourceVersion counter, as etcd's revision does. Requests are counted
//! by path, so a test can tell a cache hit from an API call.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// What a registered token stands for, as the TokenReview API would report it.
#[derive(Clone, Debug)]
pub struct TokenIdentity {
    pub namespace: String,
    pub service_account: String,
    /// Empty: a legacy token bound to no Pod.
    pub pod_name: String,
    pub pod_uid: String,
    /// The audiences the token was issued for.
    pub audiences: Vec<String>,
}

#[derive(Default)]
struct Inner {
    /// (resource, namespace, name) → object. Resource is the plural path segment, e.g. `jobs`.
    objects: BTreeMap<(String, String, String), Value>,
    /// Every change, in order: (resourceVersion, resource, namespace, name, type, object).
    log: Vec<(u64, String, String, String, &'static str, Value)>,
    revision: u64,
    tokens: HashMap<String, TokenIdentity>,
    /// Tokens that were issued once and whose `exp` has passed.
    expired_tokens: HashSet<String>,
    minor: String,
    requests: HashMap<String, usize>,
    watches: usize,
    token_reviews: Vec<Value>,
    /// (namespace, pod, container) → what the container wrote, stdout and stderr interleaved.
    container_logs: HashMap<(String, String, String), Vec<u8>>,
    /// Whether `pods/log` is refused, as for a client without that RBAC.
    pod_logs_forbidden: bool,
}

struct Shared {
    inner: Mutex<Inner>,
    changed: tokio::sync::Notify,
}

/// A handle on the fake API server; its clones are the same server (several runs of a test on
/// one cluster).
#[derive(Clone)]
pub struct FakeApi {
    pub address: SocketAddr,
    shared: Arc<Shared>,
    /// Serves for as long as a handle lives.
    _runtime: Arc<tokio::runtime::Runtime>,
}

impl FakeApi {
    pub fn start() -> FakeApi {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let inner = Inner { minor: "33".into(), ..Inner::default() };
        let shared = Arc::new(Shared { inner: Mutex::new(inner), changed: tokio::sync::Notify::new() });
        let app = Router::new().fallback(serve).with_state(shared.clone());
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let address = listener.local_addr().unwrap();
        runtime.spawn(async move { axum::serve(listener, app).await });
        FakeApi { address, shared, _runtime: Arc::new(runtime) }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The minor version `/version` reports, e.g. "28+".
    pub fn set_minor(&self, minor: &str) {
        self.shared.inner.lock().unwrap().minor = minor.into();
    }

    /// Creates or replaces an object (ADDED or MODIFIED for watchers), stamping its
    /// resourceVersion. The resource is taken from `kind`.
    pub fn put(&self, object: Value) {
        let mut object = object;
        let resource = resource_of(object["kind"].as_str().expect("an object has a kind"));
        let namespace = object["metadata"]["namespace"].as_str().unwrap_or_default().to_string();
        let name = object["metadata"]["name"].as_str().expect("an object has a name").to_string();
        let mut inner = self.shared.inner.lock().unwrap();
        inner.revision += 1;
        let revision = inner.revision;
        object["metadata"]["resourceVersion"] = json!(revision.to_string());
        let key = (resource.clone(), namespace.clone(), name.clone());
        let kind = if inner.objects.contains_key(&key) { "MODIFIED" } else { "ADDED" };
        inner.objects.insert(key, object.clone());
        inner.log.push((revision, resource, namespace, name, kind, object));
        drop(inner);
        self.shared.changed.notify_waiters();
    }

    /// Stores an object that watchers have not heard of yet: a change whose event is still in
    /// flight, e.g. a Job the Job controller created a moment before its Pod.
    pub fn put_unannounced(&self, object: Value) {
        let resource = resource_of(object["kind"].as_str().expect("an object has a kind"));
        let namespace = object["metadata"]["namespace"].as_str().unwrap_or_default().to_string();
        let name = object["metadata"]["name"].as_str().expect("an object has a name").to_string();
        self.shared.inner.lock().unwrap().objects.insert((resource, namespace, name), object);
    }

    /// The stored object, if any.
    pub fn get(&self, resource: &str, namespace: &str, name: &str) -> Option<Value> {
        let inner = self.shared.inner.lock().unwrap();
        inner.objects.get(&(resource.into(), namespace.into(), name.into())).cloned()
    }

    /// Changes a stored object in place, as an update through the API would.
    pub fn modify(&self, resource: &str, namespace: &str, name: &str, change: impl FnOnce(&mut Value)) {
        let mut object = self.get(resource, namespace, name).expect("the object exists");
        change(&mut object);
        self.put(object);
    }

    /// Deletes an object (DELETED for watchers, with the object as it was last), as
    /// `kubectl delete` does once finalizers are done.
    pub fn remove(&self, resource: &str, namespace: &str, name: &str) {
        let mut inner = self.shared.inner.lock().unwrap();
        let key = (resource.to_string(), namespace.to_string(), name.to_string());
        let mut object = inner.objects.remove(&key).expect("the object exists");
        inner.revision += 1;
        let revision = inner.revision;
        object["metadata"]["resourceVersion"] = json!(revision.to_string());
        inner.log.push((revision, key.0, key.1, key.2, "DELETED", object));
        drop(inner);
        self.shared.changed.notify_waiters();
    }

    /// Registers a bearer token that TokenReview will authenticate.
    pub fn add_token(&self, token: &str, identity: TokenIdentity) {
        self.shared.inner.lock().unwrap().tokens.insert(token.into(), identity);
    }

    /// Registers a token that was issued but has expired: TokenReview refuses it as expired.
    pub fn add_expired_token(&self, token: &str) {
        self.shared.inner.lock().unwrap().expired_tokens.insert(token.into());
    }

    /// How many requests reached `path` (without the query).
    pub fn requests(&self, path: &str) -> usize {
        self.shared.inner.lock().unwrap().requests.get(path).copied().unwrap_or(0)
    }

    /// How many requests reached the server, on any path.
    pub fn requests_total(&self) -> usize {
        self.shared.inner.lock().unwrap().requests.values().sum()
    }

    /// How many watches were opened, on any path.
    pub fn watches(&self) -> usize {
        self.shared.inner.lock().unwrap().watches
    }

    /// Sets what a container of a Pod wrote, as the container runtime's log holds it.
    pub fn set_log(&self, namespace: &str, pod: &str, container: &str, log: impl Into<Vec<u8>>) {
        let key = (namespace.to_string(), pod.to_string(), container.to_string());
        self.shared.inner.lock().unwrap().container_logs.insert(key, log.into());
    }

    /// Refuses `pods/log` from now on, as kube-apiserver refuses a client without that RBAC.
    pub fn forbid_pod_logs(&self) {
        self.shared.inner.lock().unwrap().pod_logs_forbidden = true;
    }

    /// The TokenReview requests received, as sent.
    pub fn token_reviews(&self) -> Vec<Value> {
        self.shared.inner.lock().unwrap().token_reviews.clone()
    }

    /// A kubeconfig naming this server, written into `dir`.
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        kubeconfig(dir, &self.url())
    }
}

/// A kubeconfig naming `server` (reachable or not), written into `dir`; no credentials.
pub fn kubeconfig(dir: &Path, server: &str) -> PathBuf {
    let path = dir.join("kubeconfig");
    let config = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {server}\nusers:\n- name: fake\n  \
         user: {{}}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\ncurrent-context: fake\n"
    );
    std::fs::write(&path, config).unwrap();
    path
}

/// The plural resource of a kind, as in the API paths.
fn resource_of(kind: &str) -> String {
    match kind {
        "Pod" => "pods".into(),
        "Job" => "jobs".into(),
        "CronJob" => "cronjobs".into(),
        "Node" => "nodes".into(),
        other => format!("{}s", other.to_lowercase()),
    }
}

fn json_reply(status: StatusCode, value: Value) -> Response {
    (status, [("content-type", "application/json")], value.to_string()).into_response()
}

/// kube-apiserver's error body: a `Status`.
fn status_reply(code: StatusCode, reason: &str, message: String) -> Response {
    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                        "reason": reason, "code": code.as_u16(), "message": message});
    json_reply(code, status)
}

/// A request path taken apart: `/api/v1/...` or `/apis/<group>/<version>/...`, then optionally
/// `namespaces/<ns>/`, then `<resource>[/<name>]`.
struct Target {
    resource: String,
    namespace: Option<String>,
    name: Option<String>,
    /// E.g. `log` in `pods/<name>/log`.
    subresource: Option<String>,
}

fn parse_target(path: &str) -> Option<Target> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let rest = match parts.as_slice() {
        ["api", "v1", rest @ ..] => rest,
        ["apis", _group, _version, rest @ ..] => rest,
        _ => return None,
    };
    match rest {
        ["namespaces", ns, resource] => Some(Target {
            resource: resource.to_string(),
            namespace: Some(ns.to_string()),
            name: None,
            subresource: None,
        }),
        ["namespaces", ns, resource, name] => Some(Target {
            resource: resource.to_string(),
            namespace: Some(ns.to_string()),
            name: Some(name.to_string()),
            subresource: None,
        }),
        ["namespaces", ns, resource, name, subresource] => Some(Target {
            resource: resource.to_string(),
            namespace: Some(ns.to_string()),
            name: Some(name.to_string()),
            subresource: Some(subresource.to_string()),
        }),
        [resource] => Some(Target { resource: resource.to_string(), namespace: None, name: None, subresource: None }),
        _ => None,
    }
}

fn query_pairs(query: Option<&str>) -> HashMap<String, String> {
    let decode = |s: &str| percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
    query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').map(|(k, v)| (decode(k), decode(v))).unwrap_or((decode(p), String::new())))
        .collect()
}

async fn serve(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let path = request.uri().path().to_string();
    let query = query_pairs(request.uri().query());
    *shared.inner.lock().unwrap().requests.entry(path.clone()).or_default() += 1;
    if path == "/version" {
        let minor = shared.inner.lock().unwrap().minor.clone();
        let info = json!({"major": "1", "minor": minor, "gitVersion": format!("v1.{}.0", minor.trim_end_matches('+')),
                          "gitCommit": "", "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
                          "goVersion": "go1.24", "compiler": "gc", "platform": "linux/amd64"});
        return json_reply(StatusCode::OK, info);
    }
    let Some(target) = parse_target(&path) else {
        return status_reply(StatusCode::NOT_FOUND, "NotFound", format!("the server could not find {path}"));
    };
    if request.method() == Method::POST && target.resource == "tokenreviews" {
        let body = axum::body::to_bytes(request.into_body(), 1 << 20).await.unwrap_or_default();
        return token_review(&shared, &body);
    }
    if request.method() != Method::GET {
        return status_reply(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "not supported here".into());
    }
    match (&target.name, query.get("watch").map(String::as_str)) {
        (Some(name), _) if target.resource == "pods" && target.subresource.as_deref() == Some("log") => {
            pod_log(&shared, target.namespace.as_deref().unwrap_or_default(), name, &query)
        }
        (Some(_), _) if target.subresource.is_some() => {
            status_reply(StatusCode::NOT_FOUND, "NotFound", format!("the server could not find {path}"))
        }
        (Some(name), _) => get_one(&shared, &target, name),
        (None, Some("true" | "1")) => watch(shared, target, &query),
        (None, _) => list(&shared, &target, &query),
    }
}

/// `pods/<name>/log`, as kube-apiserver and the kubelet answer it:
/// - the options are checked first (pkg/apis/core/validation `ValidatePodLogOptions`:
///   `tailLines` not negative, `limitBytes` at least 1), a refusal being 422 Invalid;
/// - without the RBAC, 403 Forbidden; a Pod that does not exist, 404;
/// - `container` may be left out only for a Pod of one container, and must name one of the
///   Pod's (pkg/registry/core/pod/strategy.go `LogLocation`, `validateContainer`), else 400;
/// - `tailLines=N` selects the last N lines (0: none), and `limitBytes` then caps what is written
///   from the start of that selection, cutting a line where the limit falls
///   (pkg/kubelet/kuberuntime/logs/logs.go `ReadLogs`, `logWriter.write`); `text/plain`.
fn pod_log(shared: &Shared, namespace: &str, name: &str, query: &HashMap<String, String>) -> Response {
    let number = |key: &str| query.get(key).map(|v| v.parse::<i64>().unwrap_or(-1));
    let (tail, limit) = (number("tailLines"), number("limitBytes"));
    if tail.is_some_and(|t| t < 0) || limit.is_some_and(|l| l < 1) {
        let message = format!("PodLogOptions \"{name}\" is invalid: tailLines or limitBytes out of range");
        return status_reply(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", message);
    }
    let inner = shared.inner.lock().unwrap();
    if inner.pod_logs_forbidden {
        let message = format!(
            "pods \"{name}\" is forbidden: User \"system:serviceaccount:cronpush:cronpush-webhook\" cannot get resource \"pods/log\" in API group \"\" in the namespace \"{namespace}\""
        );
        return status_reply(StatusCode::FORBIDDEN, "Forbidden", message);
    }
    let Some(pod) = inner.objects.get(&("pods".to_string(), namespace.to_string(), name.to_string())) else {
        return status_reply(StatusCode::NOT_FOUND, "NotFound", format!("pods \"{name}\" not found"));
    };
    let names: Vec<&str> = ["initContainers", "containers"]
        .iter()
        .flat_map(|list| pod["spec"][list].as_array().into_iter().flatten())
        .filter_map(|c| c["name"].as_str())
        .collect();
    let main: Vec<&str> =
        pod["spec"]["containers"].as_array().into_iter().flatten().filter_map(|c| c["name"].as_str()).collect();
    let container = match query.get("container") {
        Some(container) if names.contains(&container.as_str()) => container.clone(),
        Some(container) => {
            let message = format!("container {container} is not valid for pod {name}");
            return status_reply(StatusCode::BAD_REQUEST, "BadRequest", message);
        }
        None if names.len() == 1 => names[0].to_string(),
        None => {
            let message =
                format!("a container name must be specified for pod {name}, choose one of: [{}]", main.join(" "));
            return status_reply(StatusCode::BAD_REQUEST, "BadRequest", message);
        }
    };
    let log =
        inner.container_logs.get(&(namespace.to_string(), name.to_string(), container)).cloned().unwrap_or_default();
    drop(inner);
    let lines: Vec<&[u8]> = log.split_inclusive(|b| *b == b'\n').collect();
    let first = tail.map_or(0, |t| lines.len().saturating_sub(usize::try_from(t).unwrap_or(usize::MAX)));
    let mut body: Vec<u8> = lines[first..].concat();
    if let Some(limit) = limit {
        body.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    }
    (StatusCode::OK, [("content-type", "text/plain")], body).into_response()
}

fn get_one(shared: &Shared, target: &Target, name: &str) -> Response {
    let inner = shared.inner.lock().unwrap();
    let key = (target.resource.clone(), target.namespace.clone().unwrap_or_default(), name.to_string());
    match inner.objects.get(&key) {
        Some(object) => json_reply(StatusCode::OK, object.clone()),
        None => status_reply(StatusCode::NOT_FOUND, "NotFound", format!("{} \"{name}\" not found", target.resource)),
    }
}

/// Whether an object at (namespace, name) is selected by the target and the field selector.
fn selected(target: &Target, field_name: Option<&str>, namespace: &str, name: &str) -> bool {
    target.namespace.as_deref().is_none_or(|ns| ns == namespace) && field_name.is_none_or(|n| n == name)
}

/// Whether `object`'s labels meet every requirement of a `labelSelector` (none: all do).
fn labels_match(selector: Option<&str>, object: &Value) -> bool {
    let labels = &object["metadata"]["labels"];
    let value = |key: &str| labels.get(key.trim()).and_then(Value::as_str);
    selector.unwrap_or_default().split(',').filter(|r| !r.trim().is_empty()).all(|requirement| {
        if let Some((key, wanted)) = requirement.split_once("!=") {
            value(key) != Some(wanted.trim())
        } else if let Some((key, wanted)) = requirement.split_once("==").or_else(|| requirement.split_once('=')) {
            value(key) == Some(wanted.trim())
        } else if let Some(key) = requirement.trim().strip_prefix('!') {
            value(key).is_none()
        } else {
            value(requirement).is_some()
        }
    })
}

/// The `metadata.name=<name>` field selector, the only one cronpush uses.
fn field_name(query: &HashMap<String, String>) -> Option<String> {
    query.get("fieldSelector").and_then(|s| s.strip_prefix("metadata.name=")).map(str::to_string)
}

fn list(shared: &Shared, target: &Target, query: &HashMap<String, String>) -> Response {
    let inner = shared.inner.lock().unwrap();
    let name = field_name(query);
    let labels = query.get("labelSelector").map(String::as_str);
    // Paging (`limit`, then `continue`), as kube-apiserver pages a list (website
    // content/en/docs/reference/using-api/api-concepts.md, "Retrieving large results sets in
    // chunks"; KEP-365): a continued list keeps the first page's resourceVersion and goes on
    // after the last key it gave. This fake has no snapshots, so later pages show the objects as
    // they are now; the watch from that resourceVersion then repeats the changes meanwhile, which
    // a watcher applies again.
    let limit = query.get("limit").and_then(|l| l.parse::<usize>().ok()).filter(|l| *l > 0);
    let resumed = query.get("continue").filter(|c| !c.is_empty()).and_then(|c| {
        let mut parts = c.splitn(3, '|');
        Some((parts.next()?.to_string(), parts.next()?.to_string(), parts.next()?.to_string()))
    });
    let version = resumed.as_ref().map_or_else(|| inner.revision.to_string(), |(version, _, _)| version.clone());
    let mut matching = inner.objects.iter().filter(|((resource, ns, n), object)| {
        *resource == target.resource
            && selected(target, name.as_deref(), ns, n)
            && labels_match(labels, object)
            && resumed.as_ref().is_none_or(|(_, after_ns, after_name)| (ns, n) > (after_ns, after_name))
    });
    let items: Vec<Value> = matching.by_ref().take(limit.unwrap_or(usize::MAX)).map(|(_, o)| o.clone()).collect();
    let more = matching.next().is_some();
    let mut metadata = json!({"resourceVersion": version});
    if let (true, Some(last)) = (more, items.last()) {
        let (ns, n) = (
            last["metadata"]["namespace"].as_str().unwrap_or_default(),
            last["metadata"]["name"].as_str().unwrap_or_default(),
        );
        metadata["continue"] = json!(format!("{version}|{ns}|{n}"));
    }
    json_reply(StatusCode::OK, json!({"apiVersion": "v1", "kind": "List", "metadata": metadata, "items": items}))
}

/// A watch: every matching change after the given resourceVersion, then each new one as it
/// happens, for as long as the client stays.
fn watch(shared: Arc<Shared>, target: Target, query: &HashMap<String, String>) -> Response {
    let mut seen: u64 = query.get("resourceVersion").and_then(|v| v.parse().ok()).unwrap_or(0);
    {
        let mut inner = shared.inner.lock().unwrap();
        inner.watches += 1;
        if seen == 0 {
            seen = inner.revision;
        }
    }
    let name = field_name(query);
    let labels = query.get("labelSelector").cloned();
    let events = futures::stream::unfold((shared, seen), move |(shared, mut seen)| {
        let target = Target {
            resource: target.resource.clone(),
            namespace: target.namespace.clone(),
            name: None,
            subresource: None,
        };
        let name = name.clone();
        let labels = labels.clone();
        async move {
            loop {
                let batch = {
                    let notified = shared.changed.notified();
                    tokio::pin!(notified);
                    // Registered before looking, so that a change made meanwhile wakes us.
                    notified.as_mut().enable();
                    let batch = pending_events(&shared, &target, name.as_deref(), labels.as_deref(), &mut seen);
                    if batch.is_empty() {
                        notified.await;
                        continue;
                    }
                    batch
                };
                return Some((Ok::<_, std::io::Error>(batch), (shared, seen)));
            }
        }
    });
    (StatusCode::OK, [("content-type", "application/json")], Body::from_stream(events)).into_response()
}

/// The watch events after `seen` that the target selects, one JSON line each; moves `seen`.
fn pending_events(
    shared: &Shared,
    target: &Target,
    name: Option<&str>,
    labels: Option<&str>,
    seen: &mut u64,
) -> Vec<u8> {
    let inner = shared.inner.lock().unwrap();
    let mut out = Vec::new();
    // The log is in revision order: start after `seen` rather than scan it all at every change.
    let first = inner.log.partition_point(|e| e.0 <= *seen);
    for (revision, resource, ns, n, kind, object) in &inner.log[first..] {
        if *resource == target.resource && selected(target, name, ns, n) && labels_match(labels, object) {
            out.extend(json!({"type": kind, "object": object}).to_string().into_bytes());
            out.push(b'\n');
        }
        *seen = *revision;
    }
    out
}

/// The TokenReview API: authenticated with the user and extras of a pod-bound service-account
/// token when the token is known and was issued for one of the requested audiences.
fn token_review(shared: &Shared, body: &[u8]) -> Response {
    let Ok(review) = serde_json::from_slice::<Value>(body) else {
        return status_reply(StatusCode::BAD_REQUEST, "BadRequest", "not a TokenReview".into());
    };
    let mut inner = shared.inner.lock().unwrap();
    inner.token_reviews.push(review.clone());
    let token = review["spec"]["token"].as_str().unwrap_or_default();
    let wanted: Vec<String> = review["spec"]["audiences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(String::from))
        .collect();
    let status = match inner.tokens.get(token) {
        // kube-apiserver's service-account authenticator checks `exp` before anything else.
        _ if inner.expired_tokens.contains(token) => {
            json!({"authenticated": false, "error": "[invalid bearer token, service account token has expired]"})
        }
        Some(id) => {
            let matching: Vec<&String> =
                id.audiences.iter().filter(|a| wanted.is_empty() || wanted.contains(a)).collect();
            if matching.is_empty() {
                // kube-apiserver: "token audiences ... is invalid for the target audiences".
                json!({"authenticated": false, "error": "[invalid bearer token, token audiences is invalid for the target audiences]"})
            } else {
                // A legacy Secret-based token is bound to no Pod and carries no pod extras.
                let extra = if id.pod_name.is_empty() {
                    json!({})
                } else {
                    json!({"authentication.kubernetes.io/pod-name": [id.pod_name],
                           "authentication.kubernetes.io/pod-uid": [id.pod_uid]})
                };
                json!({"authenticated": true, "audiences": matching,
                       "user": {"username": format!("system:serviceaccount:{}:{}", id.namespace, id.service_account),
                                "uid": "sa-uid",
                                "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{}", id.namespace), "system:authenticated"],
                                "extra": extra}})
            }
        }
        None => {
            json!({"authenticated": false, "error": "[invalid bearer token, square/go-jose: error in cryptographic primitive]"})
        }
    };
    let mut answer = review;
    answer["status"] = status;
    json_reply(StatusCode::CREATED, answer)
}
