//! The webhook's kustomize manifests (manifests/webhook) as a user deploys them: rendered by
//! Debian's kubectl 1.20, whose embedded kustomize v2.0.3 is the oldest these manifests promise
//! to work with, every document parsed into the Kubernetes API types, and checked for what
//! kube-apiserver, the kubelet and the scheduler will do with them. The last test runs the
//! deploy steps of manifests/README.md with the real `cronpush certs`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;

use k8s_openapi::api::admissionregistration::v1::{MutatingWebhook, MutatingWebhookConfiguration};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, Namespace, PodSpec, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;
use support::kustomize::{self, one, repo, typed};

const BASE: &str = "manifests/webhook/base";
const CLUSTER: &str = "manifests/webhook/overlays/cluster";
const NAMESPACE_OVERLAY: &str = "manifests/webhook/overlays/namespace";
const CERT_MANAGER: &str = "manifests/webhook/overlays/cert-manager";
const CUSTOM_EXAMPLE: &str = "manifests/webhook/examples/custom";
const FAILED_RUN_LOGS: &str = "manifests/webhook/overlays/failed-run-logs";
const GATEWAY_TLS: &str = "manifests/webhook/overlays/gateway-tls";
const RELAY_PUSH: &str = "manifests/webhook/overlays/relay-push";
const EVERY_RENDERING: [&str; 8] =
    [BASE, CLUSTER, NAMESPACE_OVERLAY, CERT_MANAGER, CUSTOM_EXAMPLE, FAILED_RUN_LOGS, GATEWAY_TLS, RELAY_PUSH];

const OWN_NAMESPACE: &str = "cronpush";
const SYSTEM_NAMESPACES: [&str; 3] = ["kube-system", "kube-public", "kube-node-lease"];
/// The label the apiserver puts on every namespace (1.21+), which the selectors key on.
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";
/// DESIGN.md "Names": the namespace opt-in and the pod opt-out.
const INJECT_LABEL: &str = "cronpush.io/inject";
/// Mirrors the webhook's own test (src/webhook/selection.rs): the Pod's controller is a batch/v1 Job.
const JOB_OWNED_CONDITION: &str = "has(object.metadata.ownerReferences) && \
     object.metadata.ownerReferences.exists(r, r.apiVersion == 'batch/v1' && r.kind == 'Job' && \
     has(r.controller) && r.controller)";
const INJECT_CA_FROM: &str = "cert-manager.io/inject-ca-from";

/// The deploy steps of manifests/README.md that the last test performs.
const README_CERTS: &str =
    "cronpush certs --service cronpush-webhook --namespace cronpush --out certs > certs/ca-bundle";
const README_SED: &str = r#"sed "s|caBundle: \"\"|caBundle: $(cat certs/ca-bundle)|""#;
/// What that sed replaces, as kubectl 1.20 prints the empty placeholder.
const EMPTY_CA_BUNDLE: &str = r#"caBundle: """#;

// ---------------------------------------------------------------------------------------------
// Rendering and parsing
// ---------------------------------------------------------------------------------------------

/// Everything one `kubectl kustomize` printed, by kind.
#[derive(Default)]
struct Rendered {
    namespaces: Vec<Namespace>,
    service_accounts: Vec<ServiceAccount>,
    cluster_roles: Vec<ClusterRole>,
    cluster_role_bindings: Vec<ClusterRoleBinding>,
    deployments: Vec<Deployment>,
    disruption_budgets: Vec<PodDisruptionBudget>,
    services: Vec<Service>,
    webhook_configurations: Vec<MutatingWebhookConfiguration>,
    /// cert-manager's Issuers and Certificates, which k8s-openapi has no types for.
    cert_manager: Vec<Value>,
}

/// The YAML `kubectl kustomize <dir>` prints, with the kubectl users of Debian have. Each of
/// `EVERY_RENDERING` is rendered once per run of this test binary, whichever test asks first:
/// the tests only read it, and kubectl takes a while to start.
fn render_text(dir: &'static str) -> &'static str {
    static TEXTS: [OnceLock<String>; EVERY_RENDERING.len()] = [const { OnceLock::new() }; EVERY_RENDERING.len()];
    TEXTS[rendering_index(dir)].get_or_init(|| kustomize::render(dir))
}

/// `render_text(dir)` parsed, once per run like the text.
fn render(dir: &'static str) -> &'static Rendered {
    static PARSED: [OnceLock<Rendered>; EVERY_RENDERING.len()] = [const { OnceLock::new() }; EVERY_RENDERING.len()];
    PARSED[rendering_index(dir)].get_or_init(|| parse(render_text(dir)).unwrap_or_else(|e| panic!("{dir}: {e}")))
}

fn rendering_index(dir: &str) -> usize {
    EVERY_RENDERING.iter().position(|d| *d == dir).unwrap_or_else(|| panic!("{dir} is not in EVERY_RENDERING"))
}

fn succeeded(output: &Output, what: &str) -> Vec<u8> {
    assert!(output.status.success(), "{what} failed: {}", String::from_utf8_lossy(&output.stderr));
    output.stdout.clone()
}

/// Splits kubectl's multi-document output and parses each document into its API type. Any kind
/// not listed here fails: a new object needs its own checks.
fn parse(yaml: &str) -> Result<Rendered, String> {
    let mut rendered = Rendered::default();
    for (document, raw) in kustomize::documents(yaml)? {
        let api_version = raw["apiVersion"].as_str().unwrap_or_default();
        let kind = raw["kind"].as_str().unwrap_or_default();
        match (api_version, kind) {
            ("v1", "Namespace") => rendered.namespaces.push(typed(document, &raw)?),
            ("v1", "ServiceAccount") => rendered.service_accounts.push(typed(document, &raw)?),
            ("v1", "Service") => rendered.services.push(typed(document, &raw)?),
            ("rbac.authorization.k8s.io/v1", "ClusterRole") => rendered.cluster_roles.push(typed(document, &raw)?),
            ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
                rendered.cluster_role_bindings.push(typed(document, &raw)?)
            }
            ("apps/v1", "Deployment") => rendered.deployments.push(typed(document, &raw)?),
            ("policy/v1", "PodDisruptionBudget") => rendered.disruption_budgets.push(typed(document, &raw)?),
            ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration") => {
                rendered.webhook_configurations.push(typed(document, &raw)?)
            }
            ("cert-manager.io/v1", "Issuer" | "Certificate") => rendered.cert_manager.push(raw),
            other => return Err(format!("unexpected kind {other:?}: give it its own checks in this test")),
        }
    }
    Ok(rendered)
}

impl Rendered {
    fn deployment(&self) -> &Deployment {
        one(&self.deployments, "Deployment")
    }

    fn pod_spec(&self) -> &PodSpec {
        self.deployment().spec.as_ref().and_then(|s| s.template.spec.as_ref()).expect("pod template spec")
    }

    fn pod_labels(&self) -> &BTreeMap<String, String> {
        let spec = self.deployment().spec.as_ref().expect("spec");
        spec.template.metadata.as_ref().and_then(|m| m.labels.as_ref()).expect("pod template labels")
    }

    fn container(&self) -> &Container {
        one(&self.pod_spec().containers, "container")
    }

    fn service(&self) -> &Service {
        one(&self.services, "Service")
    }

    fn webhook(&self) -> &MutatingWebhook {
        let configuration = one(&self.webhook_configurations, "MutatingWebhookConfiguration");
        one(configuration.webhooks.as_deref().unwrap_or_default(), "webhook")
    }

    fn namespace_selector(&self) -> &LabelSelector {
        self.webhook().namespace_selector.as_ref().expect("a namespaceSelector")
    }

    fn cert_manager(&self, kind: &str, name: &str) -> &Value {
        let found = self.cert_manager.iter().find(|o| o["kind"] == kind && o["metadata"]["name"] == name);
        found.unwrap_or_else(|| panic!("no cert-manager {kind} {name}"))
    }
}

// ---------------------------------------------------------------------------------------------
// Small readers shared by the checks
// ---------------------------------------------------------------------------------------------

/// The value of a `--name=value` argument.
fn flag<'a>(container: &'a Container, name: &str) -> &'a str {
    let prefix = format!("--{name}=");
    let args = container.args.iter().flatten();
    let values: Vec<&str> = args.filter_map(|a| a.strip_prefix(prefix.as_str())).collect();
    assert_eq!(values.len(), 1, "exactly one --{name}= among {:?}", container.args);
    values[0]
}

/// The container port an IntOrString names, resolved as the kubelet and kube-proxy do.
fn container_port(container: &Container, port: &IntOrString) -> i32 {
    let ports = container.ports.iter().flatten();
    match port {
        IntOrString::Int(number) => ports.map(|p| p.container_port).find(|p| p == number),
        IntOrString::String(name) => ports.filter(|p| p.name.as_deref() == Some(name)).map(|p| p.container_port).next(),
    }
    .unwrap_or_else(|| panic!("port {port:?} is none of the container's ports"))
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// A namespace's labels as the apiserver has them: its name label, plus `extra`.
fn namespace(name: &str, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut all = labels(extra);
    all.insert(NAMESPACE_NAME_LABEL.to_string(), name.to_string());
    all
}

/// Whether a label selector selects an object with these labels, as the apiserver evaluates it.
fn selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let by_labels = selector.match_labels.iter().flatten().all(|(k, v)| labels.get(k) == Some(v));
    let by_expressions = selector.match_expressions.iter().flatten().all(|e| {
        let value = labels.get(&e.key);
        let values = e.values.as_deref().unwrap_or_default();
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            other => panic!("no such label selector operator {other:?}"),
        }
    });
    by_labels && by_expressions
}

/// Evaluates the matchCondition as kube-apiserver does, with the Pod under admission as
/// `object`, in an independent CEL implementation (cel-interpreter; the API server's is
/// cel-go): exactly the Pods a Job controls are sent.
fn assert_job_owned_condition(expression: &str) {
    let program = cel_interpreter::Program::compile(expression).expect("the matchCondition is CEL");
    let owner = |api_version: &str, kind: &str, controller: Option<bool>| {
        let mut reference = serde_json::json!({"apiVersion": api_version, "kind": kind, "name": "x", "uid": "u"});
        if let Some(controller) = controller {
            reference["controller"] = controller.into();
        }
        reference
    };
    let cases = [
        ("a Job's Pod", serde_json::json!([owner("batch/v1", "Job", Some(true))]), true),
        (
            "a Job's Pod among other owners",
            serde_json::json!([owner("v1", "Node", None), owner("batch/v1", "Job", Some(true))]),
            true,
        ),
        ("a ReplicaSet's Pod", serde_json::json!([owner("apps/v1", "ReplicaSet", Some(true))]), false),
        ("a Job that does not control it", serde_json::json!([owner("batch/v1", "Job", Some(false))]), false),
        ("a Job reference without controller", serde_json::json!([owner("batch/v1", "Job", None)]), false),
        ("another group's Job", serde_json::json!([owner("example.com/v1", "Job", Some(true))]), false),
        ("a Pod without owners", serde_json::Value::Null, false),
    ];
    for (what, owners, sent) in cases {
        let mut pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "p-"}});
        if !owners.is_null() {
            pod["metadata"]["ownerReferences"] = owners;
        }
        let mut context = cel_interpreter::Context::default();
        context.add_variable("object", &pod).unwrap();
        let value = program.execute(&context).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(value, cel_interpreter::Value::Bool(sent), "{what}: {pod}");
    }
}

/// The expressions of a selector, as (key, operator, values), for exact comparisons.
fn expressions(selector: &LabelSelector) -> BTreeSet<(String, String, BTreeSet<String>)> {
    assert!(selector.match_labels.as_ref().is_none_or(|l| l.is_empty()), "expressions only: {selector:?}");
    let expressions = selector.match_expressions.iter().flatten();
    expressions.map(|e| (e.key.clone(), e.operator.clone(), e.values.iter().flatten().cloned().collect())).collect()
}

fn expression(key: &str, operator: &str, values: &[&str]) -> (String, String, BTreeSet<String>) {
    (key.to_string(), operator.to_string(), values.iter().map(|v| v.to_string()).collect())
}

/// The names a client may use for a Service from inside the cluster; the serving certificate
/// must carry the one kube-apiserver dials (`<name>.<namespace>.svc`).
fn service_dns_names(service: &Service) -> BTreeSet<String> {
    let name = service.metadata.name.as_deref().expect("Service name");
    let namespace = service.metadata.namespace.as_deref().expect("Service namespace");
    [
        name.to_string(),
        format!("{name}.{namespace}"),
        format!("{name}.{namespace}.svc"),
        format!("{name}.{namespace}.svc.cluster.local"),
    ]
    .into()
}

/// The Secret the webhook's TLS files come from, after checking that each `--tls-*-file` lies
/// in a read-only mount of it under the Secret key of the same name.
fn tls_secret(rendered: &Rendered) -> String {
    let (pod, container) = (rendered.pod_spec(), rendered.container());
    let mut secrets = BTreeSet::new();
    let mut keys = BTreeSet::new();
    for file in ["tls-cert-file", "tls-key-file", "tls-ca-file"] {
        let path = Path::new(flag(container, file));
        let (dir, key) = (path.parent().expect("a directory"), path.file_name().expect("a file name"));
        let mount = container.volume_mounts.iter().flatten().find(|m| Path::new(&m.mount_path) == dir);
        let mount = mount.unwrap_or_else(|| panic!("--{file} {path:?} is in no volume mount"));
        assert_eq!(mount.read_only, Some(true), "the TLS mount is read-only");
        assert!(mount.sub_path.is_none(), "no subPath: a subPath mount never sees the Secret's rotation");
        let volume = pod.volumes.iter().flatten().find(|v| v.name == mount.name).expect("the mount's volume");
        let secret = volume.secret.as_ref().expect("the TLS volume is a Secret volume");
        // Without `items`, each Secret key is a file of that name.
        assert!(secret.items.is_none(), "Secret keys are the file names");
        secrets.insert(secret.secret_name.clone().expect("secretName"));
        keys.insert(key.to_string_lossy().into_owned());
    }
    // The keys `cronpush certs` writes and cert-manager's Secrets hold.
    assert_eq!(keys, ["ca.crt", "tls.crt", "tls.key"].map(String::from).into());
    assert_eq!(secrets.len(), 1, "one Secret holds the certificate, its key and the CA");
    secrets.pop_first().expect("one Secret")
}

// ---------------------------------------------------------------------------------------------
// What every rendering must get right
// ---------------------------------------------------------------------------------------------

/// Every rendering builds with kustomize v2.0.3 and writes each namespaced object's namespace
/// itself (no `namespace:` transformer), so `kubectl apply` never falls back to the context's.
#[test]
fn every_rendering_builds_and_names_its_namespace() {
    for dir in EVERY_RENDERING {
        let rendered = render(dir);
        let ns = one(&rendered.namespaces, "Namespace");
        assert_eq!(ns.metadata.name.as_deref(), Some(OWN_NAMESPACE), "{dir}");
        let ns_labels = ns.metadata.labels.as_ref().expect("Namespace labels");
        // The webhook's own pods must pass Pod Security "restricted", so its namespace enforces it.
        assert_eq!(ns_labels.get("pod-security.kubernetes.io/enforce").map(String::as_str), Some("restricted"));

        let namespaced = [
            &one(&rendered.service_accounts, "ServiceAccount").metadata,
            &rendered.deployment().metadata,
            &rendered.service().metadata,
            &one(&rendered.disruption_budgets, "PodDisruptionBudget").metadata,
        ];
        for metadata in namespaced {
            assert_eq!(metadata.namespace.as_deref(), Some(OWN_NAMESPACE), "{dir}: {:?}", metadata.name);
        }
        for object in &rendered.cert_manager {
            assert_eq!(object["metadata"]["namespace"], OWN_NAMESPACE, "{dir}: {object}");
        }
    }
}

/// Every permission a rendering's ClusterRole grants, as (API group, resource, verb).
fn granted(dir: &'static str) -> BTreeSet<(String, String, String)> {
    let role = one(&render(dir).cluster_roles, "ClusterRole");
    assert!(role.aggregation_rule.is_none(), "{dir}: an aggregated role could grow");
    let mut granted = BTreeSet::new();
    for rule in role.rules.iter().flatten() {
        assert!(rule.resource_names.is_none() && rule.non_resource_urls.is_none(), "{dir}: {rule:?}");
        for group in rule.api_groups.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                for verb in &rule.verbs {
                    granted.insert((group.clone(), resource.clone(), verb.clone()));
                }
            }
        }
    }
    granted
}

/// The webhook's container mounts the gateway's CA from the Secret `cronpush-gateway-ca` where
/// `--gateway-ca-file` reads it, and takes its own credentials from the Secret
/// `cronpush-gateway-credentials` of its namespace (optional: a gateway may ask for none).
fn reaches_the_gateway_with_the_secrets_of_its_namespace(rendered: &Rendered) {
    let mount = rendered.container().volume_mounts.iter().flatten().find(|m| m.name == "gateway-ca").expect("mount");
    assert_eq!((mount.mount_path.as_str(), mount.read_only), ("/etc/cronpush/gateway", Some(true)));
    let volume = rendered.pod_spec().volumes.iter().flatten().find(|v| v.name == "gateway-ca").expect("volume");
    assert_eq!(volume.secret.as_ref().and_then(|s| s.secret_name.as_deref()), Some("cronpush-gateway-ca"));
    let env = rendered.container().env.clone().unwrap_or_default();
    for (name, key) in [("CRONPUSH_GATEWAY_USERNAME", "username"), ("CRONPUSH_GATEWAY_PASSWORD", "password")] {
        let var = env.iter().find(|e| e.name == name).unwrap_or_else(|| panic!("{name}"));
        let secret = var.value_from.as_ref().and_then(|v| v.secret_key_ref.as_ref()).expect("secretKeyRef");
        assert_eq!(
            (secret.name.as_str(), secret.key.as_str(), secret.optional),
            ("cronpush-gateway-credentials", key, Some(true))
        );
        assert!(var.value.is_none());
    }
}

/// The gateway-tls overlay is the cluster overlay plus the gateway's CA, mounted from its
/// Secret at the path the flag reads, the name of the credentials' Secret for the injected
/// containers, and the same credentials for the webhook's own requests: no password and no new
/// permission (the kubelet, not the webhook, reads the Secrets).
#[test]
fn the_gateway_tls_overlay_hands_over_the_ca_and_names_the_credentials_secret() {
    let (tls, cluster) = (render(GATEWAY_TLS), render(CLUSTER));
    let mut args = cluster.container().args.clone().unwrap_or_default();
    args.push("--gateway-ca-file=/etc/cronpush/gateway/ca.crt".into());
    args.push("--gateway-credentials-secret=cronpush-gateway-credentials".into());
    assert_eq!(tls.container().args.as_ref(), Some(&args));
    // The webhook's own requests carry the credentials, from the Secret of its namespace.
    reaches_the_gateway_with_the_secrets_of_its_namespace(tls);
    assert_eq!(granted(GATEWAY_TLS), granted(CLUSTER), "no new permission");
    assert_eq!(tls.webhook(), cluster.webhook(), "the same Pods are injected");
    for dir in EVERY_RENDERING.iter().filter(|d| ![GATEWAY_TLS, RELAY_PUSH].contains(*d)) {
        assert!(!render(dir).container().args.iter().flatten().any(|a| a.starts_with("--gateway-ca")), "{dir}");
    }
}

/// The relay-push overlay is the cluster overlay plus `--push-mode=relay` and the gateway's CA
/// and credentials for the webhook alone, from the Secrets of its own namespace: it names no
/// Secret for the injected containers (they hold no gateway secret) and grants nothing new (the
/// relay reads the Pods, Jobs and CronJobs that the webhook already watches).
#[test]
fn the_relay_push_overlay_keeps_the_gateways_secrets_in_the_webhooks_namespace() {
    let (relay, cluster) = (render(RELAY_PUSH), render(CLUSTER));
    let mut args = cluster.container().args.clone().unwrap_or_default();
    args.push("--push-mode=relay".into());
    args.push("--gateway-ca-file=/etc/cronpush/gateway/ca.crt".into());
    assert_eq!(relay.container().args.as_ref(), Some(&args));
    reaches_the_gateway_with_the_secrets_of_its_namespace(relay);
    assert!(!args.iter().any(|a| a.starts_with("--gateway-credentials-secret")), "no Secret for the Pods");
    assert_eq!(granted(RELAY_PUSH), granted(CLUSTER), "no new permission");
    assert_eq!(relay.webhook(), cluster.webhook(), "the same Pods are injected");
}

/// The failed-run-logs overlay is the cluster overlay plus exactly two things: `get` on
/// `pods/log` (logs can hold secrets: no other rendering grants it) and `--failed-run-logs`.
#[test]
fn only_the_failed_run_logs_overlay_reads_pod_logs_and_turns_the_lines_on() {
    let pods_log = (String::new(), "pods/log".to_string(), "get".to_string());
    let mut expected = granted(CLUSTER);
    expected.insert(pods_log.clone());
    assert_eq!(granted(FAILED_RUN_LOGS), expected, "exactly one rule more");
    for dir in EVERY_RENDERING.iter().filter(|d| **d != FAILED_RUN_LOGS) {
        assert!(!granted(dir).iter().any(|(_, resource, _)| resource.starts_with("pods/")), "{dir}");
        assert!(!render(dir).container().args.iter().flatten().any(|a| a == "--failed-run-logs"), "{dir}");
    }
    let (logs, cluster) = (render(FAILED_RUN_LOGS), render(CLUSTER));
    let mut args = cluster.container().args.clone().unwrap_or_default();
    args.push("--failed-run-logs".into());
    assert_eq!(logs.container().args.as_ref(), Some(&args));
    assert_eq!(logs.container().image, cluster.container().image);
    assert_eq!(logs.webhook(), cluster.webhook(), "the same Pods are injected");
}

/// RBAC is exactly what the webhook calls: the CronJob and Job caches (list, watch; get on a
/// miss), the Node, LimitRange and ResourceQuota caches, one Pod watched by name for the relay,
/// TokenReviews of the sidecars' tokens; with the failed-run-logs overlay, failed containers'
/// logs too.
#[test]
fn rbac_is_the_least_privilege_set_bound_to_the_webhooks_service_account() {
    let expected: BTreeSet<(String, String, String)> = [
        ("batch", "cronjobs", "get"),
        ("batch", "cronjobs", "list"),
        ("batch", "cronjobs", "watch"),
        ("batch", "jobs", "get"),
        ("batch", "jobs", "list"),
        ("batch", "jobs", "watch"),
        ("", "pods", "get"),
        ("", "pods", "list"),
        ("", "pods", "watch"),
        ("", "nodes", "get"),
        ("", "nodes", "list"),
        ("", "nodes", "watch"),
        ("", "limitranges", "list"),
        ("", "limitranges", "watch"),
        ("", "resourcequotas", "list"),
        ("", "resourcequotas", "watch"),
        ("authentication.k8s.io", "tokenreviews", "create"),
    ]
    .iter()
    .map(|(g, r, v)| (g.to_string(), r.to_string(), v.to_string()))
    .collect();
    for dir in EVERY_RENDERING {
        let rendered = render(dir);
        let role = one(&rendered.cluster_roles, "ClusterRole");
        let mut expected = expected.clone();
        if dir == FAILED_RUN_LOGS {
            expected.insert((String::new(), "pods/log".into(), "get".into()));
        }
        // Exact equality: no wildcard, no Secrets, no write verb beyond TokenReview creation.
        assert_eq!(granted(dir), expected, "{dir}");

        let account = one(&rendered.service_accounts, "ServiceAccount");
        let binding = one(&rendered.cluster_role_bindings, "ClusterRoleBinding");
        assert_eq!(binding.role_ref.api_group, "rbac.authorization.k8s.io");
        assert_eq!(binding.role_ref.kind, "ClusterRole");
        assert_eq!(Some(&binding.role_ref.name), role.metadata.name.as_ref(), "{dir}");
        let subject = one(binding.subjects.as_deref().unwrap_or_default(), "subject");
        assert_eq!(subject.kind, "ServiceAccount");
        assert_eq!(Some(&subject.name), account.metadata.name.as_ref(), "{dir}");
        assert_eq!(subject.namespace.as_deref(), Some(OWN_NAMESPACE), "{dir}");

        // The pods run as that account, with its token (the webhook calls the API).
        let pod = rendered.pod_spec();
        assert_eq!(pod.service_account_name.as_ref(), account.metadata.name.as_ref(), "{dir}");
        assert_ne!(pod.automount_service_account_token, Some(false), "{dir}");
        assert_ne!(account.automount_service_account_token, Some(false), "{dir}");
    }
}

/// Pod Security "restricted" (what the namespace enforces, and what the admission plugin checks),
/// with the pod's settings as the fallback the kubelet applies to the container.
fn assert_restricted(dir: &str, pod: &PodSpec, container: &Container) {
    let pod_context = pod.security_context.as_ref().expect("a pod securityContext");
    let context = container.security_context.as_ref().expect("a container securityContext");
    assert_ne!(pod.host_network, Some(true), "{dir}");
    assert_ne!(pod.host_pid, Some(true), "{dir}");
    assert_ne!(pod.host_ipc, Some(true), "{dir}");
    assert_ne!(context.privileged, Some(true), "{dir}");
    assert_eq!(context.allow_privilege_escalation, Some(false), "{dir}");
    let capabilities = context.capabilities.as_ref().expect("capabilities");
    assert_eq!(capabilities.drop.as_deref(), Some(&["ALL".to_string()][..]), "{dir}");
    assert!(capabilities.add.as_ref().is_none_or(|a| a.is_empty()), "{dir}: no capability added");
    assert_eq!(context.read_only_root_filesystem, Some(true), "{dir}");
    // Set on both levels, so each alone is compliant.
    assert_eq!(pod_context.run_as_non_root, Some(true), "{dir}");
    assert_eq!(context.run_as_non_root, Some(true), "{dir}");
    for (user, group) in
        [(pod_context.run_as_user, pod_context.run_as_group), (context.run_as_user, context.run_as_group)]
    {
        assert_eq!((user, group), (Some(65532), Some(65532)), "{dir}: the distroless nonroot user");
    }
    for profile in [&pod_context.seccomp_profile, &context.seccomp_profile] {
        assert_eq!(profile.as_ref().map(|p| p.type_.as_str()), Some("RuntimeDefault"), "{dir}");
    }
    // "restricted" allows only some volume types; this pod needs Secret volumes alone.
    for volume in pod.volumes.iter().flatten() {
        assert!(volume.secret.is_some() && volume.host_path.is_none(), "{dir}: {volume:?}");
    }
}

#[test]
fn deployment_runs_two_restricted_replicas_serving_https_from_its_secret() {
    for dir in EVERY_RENDERING {
        let rendered = render(dir);
        let spec = rendered.deployment().spec.as_ref().expect("Deployment spec");
        let (pod, container) = (rendered.pod_spec(), rendered.container());
        assert_eq!(spec.replicas, Some(2), "{dir}: one replica down must leave one serving");
        // The apiserver rejects a Deployment whose selector does not select its own template.
        assert!(selects(&spec.selector, rendered.pod_labels()), "{dir}");
        assert_restricted(dir, pod, container);

        assert_eq!(container.name, "webhook");
        assert_eq!(container.args.as_ref().and_then(|a| a.first()).map(String::as_str), Some("webhook"));
        // The injected containers run the same binary as the webhook.
        assert_eq!(container.image.as_deref(), Some(flag(container, "image")), "{dir}");
        assert_eq!(flag(container, "log.format"), "json");

        // The webhook listens where its container port says, and is probed there over HTTPS.
        let https = container_port(container, &IntOrString::String("https".into()));
        assert_eq!(flag(container, "listen-address"), format!("0.0.0.0:{https}"), "{dir}");
        for (probe, path) in [(&container.readiness_probe, "/readyz"), (&container.liveness_probe, "/healthz")] {
            let get = probe.as_ref().and_then(|p| p.http_get.as_ref()).expect("an httpGet probe");
            assert_eq!(get.scheme.as_deref(), Some("HTTPS"), "{dir}: there is no plain HTTP port");
            assert_eq!(get.path.as_deref(), Some(path), "{dir}");
            assert_eq!(container_port(container, &get.port), https, "{dir}");
        }

        assert_eq!(tls_secret(rendered), "cronpush-webhook-tls", "{dir}");
        // The webhook leaves its own namespace alone; it learns it from the Downward API.
        let env = container.env.iter().flatten().find(|e| e.name == "POD_NAMESPACE").expect("POD_NAMESPACE");
        let field = env.value_from.as_ref().and_then(|v| v.field_ref.as_ref()).expect("a fieldRef");
        assert_eq!(field.field_path, "metadata.namespace", "{dir}");

        let resources = container.resources.as_ref().expect("resources");
        let quantity = |list: &Option<BTreeMap<String, Quantity>>, name: &str| {
            list.as_ref().and_then(|l| l.get(name)).map(|q| q.0.clone()).unwrap_or_default()
        };
        assert_eq!(quantity(&resources.requests, "cpu"), "50m", "{dir}");
        assert_eq!(quantity(&resources.requests, "memory"), "32Mi", "{dir}");
        assert_eq!(quantity(&resources.limits, "memory"), "128Mi", "{dir}");
        assert_eq!(pod.termination_grace_period_seconds, Some(30), "{dir}");
        assert_spread_over_nodes(dir, pod, rendered.pod_labels());
    }
}

/// The scheduler prefers (does not require) to put the replicas on different nodes.
fn assert_spread_over_nodes(dir: &str, pod: &PodSpec, pod_labels: &BTreeMap<String, String>) {
    let anti_affinity = pod.affinity.as_ref().and_then(|a| a.pod_anti_affinity.as_ref()).expect("podAntiAffinity");
    assert!(anti_affinity.required_during_scheduling_ignored_during_execution.is_none(), "{dir}: preferred only");
    let terms = anti_affinity.preferred_during_scheduling_ignored_during_execution.iter().flatten();
    let on_hostname = terms.map(|t| &t.pod_affinity_term).find(|t| t.topology_key == "kubernetes.io/hostname");
    let term = on_hostname.expect("a preferred anti-affinity on kubernetes.io/hostname");
    assert!(selects(term.label_selector.as_ref().expect("labelSelector"), pod_labels), "{dir}: selects its own pods");
}

/// The Service reaches the webhook's HTTPS port, and the disruption budget keeps one of the
/// Deployment's pods through drains.
#[test]
fn service_and_disruption_budget_select_the_webhook_pods() {
    for dir in EVERY_RENDERING {
        let rendered = render(dir);
        let service = rendered.service().spec.as_ref().expect("Service spec");
        let selector = service.selector.as_ref().expect("a Service selector");
        assert!(selector.iter().all(|(k, v)| rendered.pod_labels().get(k) == Some(v)), "{dir}: selects the pods");
        let port = one(service.ports.as_deref().unwrap_or_default(), "Service port");
        assert_eq!((port.name.as_deref(), port.port), (Some("https"), 443), "{dir}");
        let target = port.target_port.as_ref().expect("targetPort");
        let container = rendered.container();
        assert_eq!(container_port(container, target), container_port(container, &IntOrString::Int(8443)), "{dir}");

        // The sidecars reach the relay through this Service, on its port, by a name the serving
        // certificate carries.
        let relay = flag(container, "relay-url").strip_prefix("https://").expect("an https relay URL");
        let authority = relay.split('/').next().expect("host");
        let (host, relay_port) =
            authority.split_once(':').map_or((authority, 443), |(h, p)| (h, p.parse().expect("port")));
        assert!(service_dns_names(rendered.service()).contains(host), "{dir}: {host} is not the Service");
        assert_eq!(relay_port, port.port, "{dir}");

        let budget = one(&rendered.disruption_budgets, "PodDisruptionBudget").spec.as_ref().expect("PDB spec");
        assert_eq!(budget.min_available, Some(IntOrString::Int(1)), "{dir}");
        let budget_selector = budget.selector.as_ref().expect("a PDB selector");
        assert!(selects(budget_selector, rendered.pod_labels()), "{dir}: the PDB covers the webhook pods");
        let replicas = rendered.deployment().spec.as_ref().and_then(|s| s.replicas).expect("replicas");
        assert!(replicas > 1, "{dir}: with minAvailable 1, one replica would block every drain");
    }
}

/// The webhook configuration: fail open, fast, only Pod creations of Job pods, to the Service.
#[test]
fn webhook_configuration_fails_open_and_sees_only_job_pod_creations() {
    for dir in EVERY_RENDERING {
        let rendered = render(dir);
        let webhook = rendered.webhook();
        assert_eq!(webhook.name, "pods.cronpush.io");
        // DESIGN.md "Non-negotiables": a CronJob never fails because of cronpush.
        assert_eq!(webhook.failure_policy.as_deref(), Some("Ignore"), "{dir}");
        assert!(webhook.timeout_seconds.is_some_and(|t| (1..=5).contains(&t)), "{dir}: {:?}", webhook.timeout_seconds);
        // Anything but None/NoneOnDryRun makes the apiserver reject dry-run creations.
        assert_eq!(webhook.side_effects, "None", "{dir}");
        // Called again after later webhooks; the injection is idempotent.
        assert_eq!(webhook.reinvocation_policy.as_deref(), Some("IfNeeded"), "{dir}");
        assert!(webhook.admission_review_versions.iter().any(|v| v == "v1"), "{dir}: the webhook speaks v1");
        assert_eq!(webhook.match_policy.as_deref(), Some("Equivalent"), "{dir}");

        let rule = one(webhook.rules.as_deref().unwrap_or_default(), "rule");
        let strings = |list: &Option<Vec<String>>| list.clone().unwrap_or_default();
        assert_eq!(strings(&rule.operations), ["CREATE"], "{dir}");
        assert_eq!(strings(&rule.api_groups), [""], "{dir}");
        assert_eq!(strings(&rule.api_versions), ["v1"], "{dir}");
        assert_eq!(strings(&rule.resources), ["pods"], "{dir}: no subresource");
        assert_eq!(rule.scope.as_deref(), Some("Namespaced"), "{dir}");

        // kube-apiserver dials the Service: its name, namespace and port, path /mutate.
        let client = &webhook.client_config;
        assert!(client.url.is_none(), "{dir}");
        let target = client.service.as_ref().expect("clientConfig.service");
        let service = rendered.service();
        assert_eq!(Some(&target.name), service.metadata.name.as_ref(), "{dir}");
        assert_eq!(Some(&target.namespace), service.metadata.namespace.as_ref(), "{dir}");
        let service_port = one(service.spec.as_ref().and_then(|s| s.ports.as_deref()).unwrap_or_default(), "port");
        assert_eq!(target.port, Some(service_port.port), "{dir}");
        assert_eq!(target.path.as_deref(), Some("/mutate"), "{dir}");

        // The pod opt-out: a pod labelled cronpush.io/inject=disabled is never sent.
        let objects = webhook.object_selector.as_ref().expect("an objectSelector");
        assert!(!selects(objects, &labels(&[(INJECT_LABEL, "disabled")])), "{dir}");
        assert!(selects(objects, &labels(&[])), "{dir}: unlabelled pods are sent");
        assert!(selects(objects, &labels(&[(INJECT_LABEL, "enabled"), ("app", "x")])), "{dir}");

        // Only pods controlled by a batch/v1 Job reach the webhook (the same test it makes itself).
        let conditions = webhook.match_conditions.as_deref().unwrap_or_default();
        let condition = one(conditions, "matchCondition");
        assert_eq!(condition.name, "job-owned-pods", "{dir}");
        assert_eq!(condition.expression, JOB_OWNED_CONDITION, "{dir}");
        assert_job_owned_condition(&condition.expression);

        // Never its own namespace, whatever labels someone puts on it.
        let never = namespace(OWN_NAMESPACE, &[(INJECT_LABEL, "enabled")]);
        assert!(!selects(rendered.namespace_selector(), &never), "{dir}: a webhook must not gate its own pods");
        assert!(!selects(rendered.namespace_selector(), &namespace(OWN_NAMESPACE, &[])), "{dir}");

        let annotations = one(&rendered.webhook_configurations, "configuration").metadata.annotations.clone();
        let ca_from_cert_manager = annotations.unwrap_or_default().contains_key(INJECT_CA_FROM);
        assert_eq!(ca_from_cert_manager, dir == CERT_MANAGER, "{dir}: only the cert-manager overlay");
        assert_eq!(rendered.cert_manager.is_empty(), dir != CERT_MANAGER, "{dir}");
        // Empty until the deploy step (or cert-manager) fills it, and valid as is.
        assert_eq!(client.ca_bundle.as_ref().map(|b| b.0.len()), Some(0), "{dir}");
    }
}

// ---------------------------------------------------------------------------------------------
// The overlays' namespace selection
// ---------------------------------------------------------------------------------------------

#[test]
fn base_excludes_only_its_own_namespace() {
    let rendered = render(BASE);
    let expected = [expression(NAMESPACE_NAME_LABEL, "NotIn", &[OWN_NAMESPACE])];
    assert_eq!(expressions(rendered.namespace_selector()), expected.into());
}

/// Cluster mode (and cert-manager and failed-run-logs, built on it): every namespace but the three system ones and
/// cronpush's own, labelled or not.
#[test]
fn cluster_overlays_exclude_exactly_the_system_namespaces_and_their_own() {
    let mut excluded = SYSTEM_NAMESPACES.to_vec();
    excluded.push(OWN_NAMESPACE);
    for dir in [CLUSTER, CERT_MANAGER, CUSTOM_EXAMPLE, FAILED_RUN_LOGS] {
        let rendered = render(dir);
        let selector = rendered.namespace_selector();
        assert_eq!(expressions(selector), [expression(NAMESPACE_NAME_LABEL, "NotIn", &excluded)].into(), "{dir}");
        for name in &excluded {
            assert!(!selects(selector, &namespace(name, &[])), "{dir}: {name} is excluded");
        }
        for name in ["default", "team-a", "kube-flannel"] {
            assert!(selects(selector, &namespace(name, &[])), "{dir}: {name} needs no label");
        }
    }
}

/// Namespace mode: only namespaces labelled cronpush.io/inject=enabled.
#[test]
fn namespace_overlay_requires_the_opt_in_label() {
    let rendered = render(NAMESPACE_OVERLAY);
    let selector = rendered.namespace_selector();
    let expected =
        [expression(INJECT_LABEL, "In", &["enabled"]), expression(NAMESPACE_NAME_LABEL, "NotIn", &[OWN_NAMESPACE])];
    assert_eq!(expressions(selector), expected.into());
    assert!(selects(selector, &namespace("team-a", &[(INJECT_LABEL, "enabled")])));
    assert!(!selects(selector, &namespace("team-a", &[])), "no label, no injection");
    assert!(!selects(selector, &namespace("team-a", &[(INJECT_LABEL, "disabled")])));
}

/// cert-manager: the annotated Certificate issues the very Secret the Deployment mounts, for the
/// Service's names, from a CA Issuer whose CA comes from a self-signed Issuer.
#[test]
fn cert_manager_overlay_issues_the_mounted_secret_for_the_service_names() {
    let rendered = render(CERT_MANAGER);
    let configuration = one(&rendered.webhook_configurations, "configuration");
    let annotations = configuration.metadata.annotations.as_ref().expect("annotations");
    let (namespace, name) = annotations[INJECT_CA_FROM].split_once('/').expect("<namespace>/<certificate>");
    let serving = rendered.cert_manager("Certificate", name);
    assert_eq!(serving["metadata"]["namespace"], namespace);
    assert_eq!(serving["spec"]["secretName"], tls_secret(rendered).as_str());
    let dns_names: BTreeSet<String> = serde_json::from_value(serving["spec"]["dnsNames"].clone()).expect("dnsNames");
    assert_eq!(dns_names, service_dns_names(rendered.service()));

    // The chain: serving Certificate ← CA Issuer ← CA Certificate ← self-signed Issuer.
    assert_eq!(serving["spec"]["issuerRef"]["kind"], "Issuer");
    let ca_issuer = rendered.cert_manager("Issuer", serving["spec"]["issuerRef"]["name"].as_str().expect("issuer"));
    let ca_secret = &ca_issuer["spec"]["ca"]["secretName"];
    let ca_cert =
        rendered.cert_manager.iter().find(|o| o["kind"] == "Certificate" && &o["spec"]["secretName"] == ca_secret);
    let ca_cert = ca_cert.expect("a Certificate writes the CA Issuer's Secret");
    assert_eq!(ca_cert["spec"]["isCA"], true);
    let root = rendered.cert_manager("Issuer", ca_cert["spec"]["issuerRef"]["name"].as_str().expect("issuer"));
    assert!(root["spec"]["selfSigned"].is_object(), "{root}");
}

/// The README's overlay of one's own: image and gateway change, the rest stays as the cluster
/// overlay has it.
#[test]
fn custom_example_changes_image_and_gateway_together() {
    let (custom, cluster) = (render(CUSTOM_EXAMPLE), render(CLUSTER));
    let container = custom.container();
    assert_eq!(container.image.as_deref(), Some("registry.example.com/cronpush:0.1.0"));
    assert_eq!(flag(container, "image"), "registry.example.com/cronpush:0.1.0");
    assert_eq!(flag(container, "gateway-url"), "http://pi.example.com:8080/pushgateway");
    let changed = |arg: &&String| !arg.starts_with("--image=") && !arg.starts_with("--gateway-url=");
    let unchanged = |c: &Container| c.args.iter().flatten().filter(changed).cloned().collect::<Vec<_>>();
    assert_eq!(unchanged(container), unchanged(cluster.container()));
}

// ---------------------------------------------------------------------------------------------
// The documented deploy flow
// ---------------------------------------------------------------------------------------------

/// The Subject Alternative Names of a certificate, as openssl prints them.
fn dns_sans(certificate: &Path) -> BTreeSet<String> {
    let output = Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
        .arg(certificate)
        .output()
        .expect("openssl is missing: run ./scripts/test, which installs it");
    let text = String::from_utf8(succeeded(&output, "openssl x509")).expect("UTF-8");
    text.split([',', '\n']).filter_map(|s| s.trim().strip_prefix("DNS:")).map(String::from).collect()
}

/// manifests/README.md's steps with the real `cronpush certs`: its stdout, pasted by the README's
/// sed into the cluster overlay, is the CA that verifies the certificate the Secret serves, for
/// the very name kube-apiserver dials.
#[test]
fn documented_deploy_flow_fills_the_ca_bundle_with_the_generated_ca() {
    let readme = std::fs::read_to_string(repo("manifests/README.md")).expect("manifests/README.md");
    for step in [README_CERTS, README_SED, "kubectl kustomize manifests/webhook/overlays/cluster |"] {
        assert!(readme.contains(step), "manifests/README.md no longer documents {step:?}");
    }

    let out = tempfile::tempdir().expect("tempdir");
    let stdout = support::issue_certs(out.path(), &["--service", "cronpush-webhook", "--namespace", "cronpush"]);
    // `$(cat certs/ca-bundle)` drops the trailing newline.
    let ca_bundle = stdout.trim_end_matches('\n');

    let text = render_text(CLUSTER);
    assert_eq!(text.matches(EMPTY_CA_BUNDLE).count(), 1, "the sed's pattern, exactly as kubectl prints it");
    let rendered = parse(&text.replace(EMPTY_CA_BUNDLE, &format!("caBundle: {ca_bundle}"))).expect("parses");

    let ca = std::fs::read(out.path().join("ca.crt")).expect("ca.crt");
    let client = &rendered.webhook().client_config;
    assert_eq!(client.ca_bundle.as_ref().map(|b| &b.0), Some(&ca), "the caBundle is the generated CA");

    // The README's Secret holds the files the Deployment reads, under their own names.
    for key in ["ca.crt", "tls.crt", "tls.key"] {
        assert!(out.path().join(key).is_file(), "cronpush certs wrote {key}");
        assert!(readme.contains(&format!("--from-file=certs/{key}")), "the README's Secret has {key}");
    }
    let service = client.service.as_ref().expect("service");
    let dialled = format!("{}.{}.svc", service.name, service.namespace);
    let tls_crt = out.path().join("tls.crt");
    assert!(dns_sans(&tls_crt).contains(&dialled), "tls.crt is valid for {dialled}");
    let verify =
        Command::new("openssl").arg("verify").arg("-CAfile").arg(out.path().join("ca.crt")).arg(&tls_crt).output();
    let verified = succeeded(&verify.expect("run openssl verify"), "openssl verify");
    assert!(String::from_utf8_lossy(&verified).trim_end().ends_with(": OK"), "tls.crt chains to the caBundle");
}
