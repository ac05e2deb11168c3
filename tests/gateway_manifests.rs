//! The gateway's kustomize manifests (manifests/gateway/kubernetes) and the container image's
//! Dockerfile: rendered by Debian's kubectl 1.20 (embedded kustomize v2.0.3, the oldest these
//! manifests promise to work with), every document parsed into the Kubernetes API types, checked
//! against the ServiceMonitor that scrapes the gateway, and the StatefulSet's command line run
//! with the real binary.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Container, HTTPGetAction, PodSpec, Probe, Service};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use support::Server;
use support::kustomize::{self, one, typed};

const GATEWAY: &str = "manifests/gateway/kubernetes";
const SERVICE_MONITOR: &str = include_str!("../manifests/prometheus/kubernetes/servicemonitor.yml");
const DOCKERFILE: &str = include_str!("../Dockerfile");

const NAMESPACE: &str = "cronpush";
const NAME: &str = "cronpush-gateway";
const PERSISTENCE_FLAG: &str = "--persistence.file=";
const LISTEN_FLAG: &str = "--web.listen-address=";
/// The user of distroless's `nonroot` images, which the securityContext runs as.
const NONROOT: i64 = 65532;

// ---------------------------------------------------------------------------------------------
// Rendering and parsing (as tests/manifests.rs does)

#[derive(Default)]
struct Rendered {
    services: Vec<Service>,
    stateful_sets: Vec<StatefulSet>,
}

fn render() -> Rendered {
    parse(&kustomize::render(GATEWAY)).unwrap_or_else(|e| panic!("{GATEWAY}: {e}"))
}

/// Any kind not listed here fails: a Namespace in particular would conflict with the webhook
/// base's, which creates `cronpush`.
fn parse(yaml: &str) -> Result<Rendered, String> {
    let mut rendered = Rendered::default();
    for (document, raw) in kustomize::documents(yaml)? {
        match (raw["apiVersion"].as_str().unwrap_or_default(), raw["kind"].as_str().unwrap_or_default()) {
            ("v1", "Service") => rendered.services.push(typed(document, &raw)?),
            ("apps/v1", "StatefulSet") => rendered.stateful_sets.push(typed(document, &raw)?),
            other => return Err(format!("unexpected kind {other:?}: give it its own checks in this test")),
        }
    }
    Ok(rendered)
}

impl Rendered {
    fn service(&self) -> &Service {
        one(&self.services, "Service")
    }

    fn stateful_set(&self) -> &StatefulSet {
        one(&self.stateful_sets, "StatefulSet")
    }

    fn pod_spec(&self) -> &PodSpec {
        self.stateful_set().spec.as_ref().and_then(|s| s.template.spec.as_ref()).expect("pod template spec")
    }

    fn pod_labels(&self) -> &BTreeMap<String, String> {
        let spec = self.stateful_set().spec.as_ref().expect("spec");
        spec.template.metadata.as_ref().and_then(|m| m.labels.as_ref()).expect("pod template labels")
    }

    fn container(&self) -> &Container {
        one(&self.pod_spec().containers, "container")
    }

    fn args(&self) -> &[String] {
        self.container().args.as_deref().expect("container args")
    }

    fn flag(&self, prefix: &str) -> &str {
        let found = self.args().iter().find_map(|a| a.strip_prefix(prefix));
        found.unwrap_or_else(|| panic!("no {prefix}… among {:?}", self.args()))
    }
}

// ---------------------------------------------------------------------------------------------
// The Service and what scrapes it

#[test]
fn the_service_reaches_the_gateway_pod_on_its_named_port() {
    let rendered = render();
    let service = rendered.service();
    assert_eq!(service.metadata.name.as_deref(), Some(NAME));
    assert_eq!(service.metadata.namespace.as_deref(), Some(NAMESPACE));
    let spec = service.spec.as_ref().expect("service spec");
    let selector = spec.selector.as_ref().expect("a selector");
    let pod_labels = rendered.pod_labels();
    for (key, value) in selector {
        assert_eq!(pod_labels.get(key), Some(value), "the Service selects {key}={value}, the pods lack it");
    }

    let container_port = one(rendered.container().ports.as_deref().unwrap_or_default(), "container port");
    let port = one(spec.ports.as_deref().unwrap_or_default(), "Service port");
    assert_eq!(port.port, 9091);
    let target = container_port.name.clone().expect("a named container port");
    assert_eq!(port.target_port, Some(IntOrString::String(target)));
    assert_eq!(container_port.container_port, 9091);
    assert_eq!(rendered.flag(LISTEN_FLAG), format!(":{}", container_port.container_port), "listens on its port");
}

#[test]
fn the_service_monitor_selects_the_service() {
    let monitor: Value = serde_saphyr::from_str(SERVICE_MONITOR).expect("servicemonitor.yml is YAML");
    let rendered = render();
    let service = rendered.service();
    let labels = service.metadata.labels.clone().unwrap_or_default();
    let match_labels = monitor["spec"]["selector"]["matchLabels"].as_object().expect("matchLabels");
    assert!(!match_labels.is_empty());
    for (key, value) in match_labels {
        assert_eq!(labels.get(key).map(String::as_str), value.as_str(), "the Service lacks the label {key}");
    }
    let namespaces = monitor["spec"]["namespaceSelector"]["matchNames"].as_array().expect("matchNames");
    assert!(namespaces.iter().any(|n| n == NAMESPACE), "the ServiceMonitor looks in {namespaces:?}");

    let job_label = monitor["spec"]["jobLabel"].as_str().expect("jobLabel");
    assert_eq!(labels.get(job_label).map(String::as_str), Some(NAME), "job=\"{NAME}\" comes from {job_label}");
    let port_names: Vec<_> = service.spec.as_ref().and_then(|s| s.ports.as_ref()).into_iter().flatten().collect();
    for endpoint in monitor["spec"]["endpoints"].as_array().expect("endpoints") {
        let name = endpoint["port"].as_str().expect("endpoint port name");
        assert!(port_names.iter().any(|p| p.name.as_deref() == Some(name)), "no Service port named {name}");
    }
}

// ---------------------------------------------------------------------------------------------
// The StatefulSet

#[test]
fn one_replica_keeps_its_store_on_the_claimed_volume() {
    let rendered = render();
    let set = rendered.stateful_set();
    assert_eq!(set.metadata.namespace.as_deref(), Some(NAMESPACE));
    let spec = set.spec.as_ref().expect("spec");
    assert_eq!(spec.replicas, Some(1), "the store is a single file: one gateway");
    assert_eq!(spec.service_name.as_deref(), Some(NAME));
    let selector = spec.selector.match_labels.as_ref().expect("matchLabels");
    assert!(selector.iter().all(|(k, v)| rendered.pod_labels().get(k) == Some(v)), "selector matches the pods");
    assert_eq!(rendered.args().first().map(String::as_str), Some("gateway"));

    let claim = one(spec.volume_claim_templates.as_deref().unwrap_or_default(), "volumeClaimTemplate");
    let claim_name = claim.metadata.name.as_deref().expect("claim name");
    let storage = claim.spec.as_ref().and_then(|s| s.resources.as_ref()).and_then(|r| r.requests.as_ref());
    assert!(storage.and_then(|r| r.get("storage")).is_some(), "the claim requests storage");
    let mounts = rendered.container().volume_mounts.as_deref().unwrap_or_default();
    let mount = mounts.iter().find(|m| m.name == claim_name).expect("the claim is mounted");
    assert_ne!(mount.read_only, Some(true));
    let file = Path::new(rendered.flag(PERSISTENCE_FLAG));
    assert!(
        file.starts_with(&mount.mount_path) && file != Path::new(&mount.mount_path),
        "{} lies outside the volume at {}",
        file.display(),
        mount.mount_path
    );
    assert_eq!(rendered.pod_spec().termination_grace_period_seconds, Some(30), "time to save on SIGTERM");
}

fn http_get<'a>(probe: Option<&'a Probe>, what: &str) -> &'a HTTPGetAction {
    probe.and_then(|p| p.http_get.as_ref()).unwrap_or_else(|| panic!("no HTTP {what}"))
}

#[test]
fn probes_ask_the_gateway_whether_it_is_ready_and_healthy() {
    let rendered = render();
    let container = rendered.container();
    let port = container.ports.as_deref().unwrap_or_default()[0].name.clone().expect("port name");
    let ready = http_get(container.readiness_probe.as_ref(), "readinessProbe");
    let live = http_get(container.liveness_probe.as_ref(), "livenessProbe");
    assert_eq!(ready.path.as_deref(), Some("/-/ready"));
    assert_eq!(live.path.as_deref(), Some("/-/healthy"));
    for probe in [ready, live] {
        assert_eq!(probe.port, IntOrString::String(port.clone()));
        assert_ne!(probe.scheme.as_deref(), Some("HTTPS"), "the gateway serves plain HTTP");
    }
}

#[test]
fn the_pod_meets_pod_security_restricted() {
    let rendered = render();
    let pod = rendered.pod_spec().security_context.as_ref().expect("pod securityContext");
    assert_eq!(pod.run_as_non_root, Some(true));
    assert_eq!(pod.run_as_user, Some(NONROOT));
    assert_eq!(pod.run_as_group, Some(NONROOT));
    assert_eq!(pod.fs_group, Some(NONROOT), "the volume must be writable by the gateway");
    assert_eq!(pod.seccomp_profile.as_ref().map(|s| s.type_.as_str()), Some("RuntimeDefault"));

    let container = rendered.container().security_context.as_ref().expect("container securityContext");
    assert_eq!(container.run_as_non_root, Some(true));
    assert_eq!(container.allow_privilege_escalation, Some(false));
    assert_eq!(container.read_only_root_filesystem, Some(true));
    let drop = container.capabilities.as_ref().and_then(|c| c.drop.clone()).unwrap_or_default();
    assert_eq!(drop, ["ALL"]);
    assert_eq!(container.seccomp_profile.as_ref().map(|s| s.type_.as_str()), Some("RuntimeDefault"));

    let resources = rendered.container().resources.as_ref().expect("resources");
    assert!(resources.requests.as_ref().is_some_and(|r| r.contains_key("memory")), "a memory request");
    assert!(resources.limits.as_ref().is_some_and(|r| r.contains_key("memory")), "a memory limit");
}

// ---------------------------------------------------------------------------------------------
// The image and the command line

/// The lines of the Dockerfile's last stage, continuation lines joined.
fn final_stage() -> Vec<String> {
    let joined = DOCKERFILE.replace("\\\n", " ");
    let lines: Vec<String> =
        joined.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(String::from).collect();
    let last_from = lines.iter().rposition(|l| l.starts_with("FROM ")).expect("a FROM");
    lines[last_from..].to_vec()
}

#[test]
fn the_image_runs_the_binary_as_non_root() {
    let stage = final_stage();
    assert!(stage[0].contains(":nonroot"), "the final stage is distroless nonroot: {}", stage[0]);
    assert!(stage.iter().any(|l| l == "USER 65532:65532"), "runs as 65532: {stage:?}");
    assert!(stage.iter().any(|l| l == r#"ENTRYPOINT ["/usr/bin/cronpush"]"#), "ENTRYPOINT is the binary: {stage:?}");
    assert!(stage.iter().any(|l| l.starts_with("COPY ") && l.ends_with(" /usr/bin/cronpush")), "{stage:?}");
    let expose = stage.iter().find(|l| l.starts_with("EXPOSE ")).expect("EXPOSE");
    assert!(expose.split_whitespace().any(|p| p == "9091"), "{expose}");
    let rendered = render();
    let image = rendered.container().image.as_deref().expect("image");
    assert!(image.starts_with("ghcr.io/cronpush/cronpush:"), "{image}");
}

#[test]
fn the_statefulsets_command_line_serves_and_stops_cleanly() {
    let rendered = render();
    let state = tempfile::tempdir().expect("temporary directory");
    let store = state.path().join(Path::new(rendered.flag(PERSISTENCE_FLAG)).file_name().expect("a file name"));
    // The listen address is replaced by the free loopback port Server::start picks.
    let args: Vec<String> =
        rendered.args()[1..]
            .iter()
            .filter(|a| !a.starts_with(LISTEN_FLAG))
            .map(|a| {
                if a.starts_with(PERSISTENCE_FLAG) {
                    format!("{PERSISTENCE_FLAG}{}", store.display())
                } else {
                    a.clone()
                }
            })
            .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let leading = [rendered.args()[0].as_str()];
    let mut server = Server::start(Path::new(env!("CARGO_BIN_EXE_cronpush")), &leading, &args, "");
    assert_eq!(server.get("/-/healthy").status, 200);
    assert_eq!(server.put("/metrics/job/backup", "last_success 1\n").status, 200);

    server.signal("TERM");
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0), "{}", server.stderr());
    assert!(store.is_file(), "no store at {} after SIGTERM:\n{}", store.display(), server.stderr());
}
