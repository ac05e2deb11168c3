//! The injection: `cronpush-start` (an init container) and `cronpush-sidecar` (a native
//! sidecar, `restartPolicy: Always`) appended at the END of `initContainers`, a projected
//! service-account token volume for the sidecar, and the `cronpush.io/status` annotation.
//!
//! Appending last matters: sidecars declared earlier (service meshes) are already up when ours
//! push, and ours is stopped first, while the network still works. The patch is built as
//! explicit operations against the Pod as the API server sent it, never by diffing re-serialized
//! structs, which would drop fields the structs do not know.

use std::collections::BTreeMap;

use json_patch::PatchOperation;
use json_patch::jsonptr::PointerBuf;
use k8s_openapi::api::core::v1::{
    Capabilities, Container, EmptyDirVolumeSource, EnvVar, EnvVarSource, ObjectFieldSelector, Pod, PodSpec,
    ProjectedVolumeSource, ResourceRequirements, SeccompProfile, SecretKeySelector, SecurityContext,
    ServiceAccountTokenProjection, Volume, VolumeMount, VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde::Serialize;
use serde_json::json;

use super::relay_ca::RelayCa;
use super::resolve::RunFacts;
use crate::contract::{
    API_TOKEN_DIR, INJECTED_LABEL, INJECTED_LABEL_VALUE, LOG_LINES_ANNOTATION, METRICS_FILE_ANNOTATION,
    NO_API_TOKEN_VOLUME, SIDECAR_CONTAINER, START_CONTAINER, STATUS_ANNOTATION, TOKEN_DIR, TOKEN_FILE, TOKEN_VOLUME,
    env, parse_log_lines,
};

/// The API's default `terminationGracePeriodSeconds`.
const DEFAULT_TERMINATION_GRACE_SECONDS: i64 = 30;

/// Everything about the injected containers that the cluster operator chooses.
#[derive(Debug, Clone)]
pub struct InjectionConfig {
    pub image: String,
    pub image_pull_policy: Option<String>,
    pub gateway_url: String,
    /// The grouping key's `job` value.
    pub job_label: String,
    /// The grouping key's `cluster` value, if the webhook was given one.
    pub cluster_name: Option<String>,
    pub relay_url: String,
    /// The CA bundle the sidecar trusts for the relay, PEM, following `--tls-ca-file`.
    pub relay_ca_pem: RelayCa,
    pub token_audience: String,
    pub token_expiration_seconds: i64,
    pub cpu_request: String,
    pub memory_request: String,
    pub cpu_limit: Option<String>,
    pub memory_limit: String,
    /// How long `cronpush start` may take before it gives up (it always exits 0).
    pub start_timeout_seconds: u32,
    /// `--failed-run-logs`: whether a CronJob's `cronpush.io/log-lines` is honoured.
    pub failed_run_logs: bool,
    /// `--gateway-ca-file`'s PEM, handed to both containers.
    pub gateway_ca_pem: Option<String>,
    /// `--gateway-credentials-secret`: the Secret both containers take the gateway's basic-auth
    /// credentials from.
    pub gateway_credentials_secret: Option<String>,
    /// Where the containers push: to the gateway, or through the relay.
    pub push_mode: PushMode,
}

/// `--push-mode`: where the injected containers push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushMode {
    /// To the gateway, with the CA and the credentials Secret the webhook hands over.
    Direct,
    /// To the relay at `url` (`/v1/push` beside the exit status), with the Pod's projected token:
    /// the relay forwards each push to the Pod's own CronJob's group, and the Pod holds no
    /// gateway secret.
    Relay { url: String },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InjectionError {
    #[error("the Pod already has a volume named {0}")]
    VolumeNameTaken(&'static str),
    #[error("the Pod already has a container named {0}, which cronpush did not inject")]
    ContainerNameTaken(&'static str),
    #[error("a Windows Pod: cronpush's containers run on Linux nodes only")]
    WindowsPod,
    #[error("the Pod has no spec")]
    NoSpec,
}

/// The patch, and what the Pod's owner should hear about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Injection {
    pub ops: Vec<Add>,
    pub warnings: Vec<String>,
}

impl Injection {
    /// The patch as the API server reads it: a JSON array of operations.
    pub fn patch_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.ops).expect("k8s types serialize")
    }

    /// The same operations as `json_patch` reads them, to apply the patch to a Pod's JSON.
    pub fn operations(&self) -> Vec<PatchOperation> {
        serde_json::from_slice(&self.patch_json()).expect("the patch is JSON patch operations")
    }
}

/// One JSON patch `add` operation. Its value stays typed until the answer is written: building
/// `serde_json::Value` trees of the containers and writing those again was nearly half of the
/// instructions of building and writing the patch (cachegrind).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Add {
    op: &'static str,
    path: PointerBuf,
    value: Addition,
}

/// What an `add` puts into the Pod.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Addition {
    Containers(Vec<Container>),
    Container(Box<Container>),
    Volumes(Vec<Volume>),
    Volume(Box<Volume>),
    Text(String),
    Map(BTreeMap<String, String>),
}

/// The JSON patch that injects `facts`' run into `pod`, with the configured resources.
pub fn patch(pod: &Pod, facts: &RunFacts, config: &InjectionConfig) -> Result<Injection, InjectionError> {
    patch_with(pod, facts, config, &configured_resources(config))
}

/// The Pod's spec when cronpush can inject into it at all, or why not.
pub fn refusal(pod: &Pod) -> Result<&PodSpec, InjectionError> {
    let spec = pod.spec.as_ref().ok_or(InjectionError::NoSpec)?;
    refuse_collisions(spec)?;
    if is_windows(spec) {
        return Err(InjectionError::WindowsPod);
    }
    Ok(spec)
}

/// The JSON patch that injects `facts`' run into `pod`, each injected container with `resources`
/// (see `resource_fit`).
pub fn patch_with(
    pod: &Pod,
    facts: &RunFacts,
    config: &InjectionConfig,
    resources: &ResourceRequirements,
) -> Result<Injection, InjectionError> {
    let spec = refusal(pod)?;
    let mut warnings = Vec::new();
    let mut sidecar = sidecar_container(facts, config, resources);
    let sidecar_env = sidecar.env.get_or_insert_with(Vec::new);
    // The kubelet gives the sidecar the Pod's grace period after SIGTERM; it must finish within.
    let grace = spec.termination_grace_period_seconds.unwrap_or(DEFAULT_TERMINATION_GRACE_SECONDS);
    sidecar_env.push(value_env(env::TERMINATION_GRACE_SECONDS, &grace.to_string()));
    let metrics_file = pod.metadata.annotations.as_ref().and_then(|a| a.get(METRICS_FILE_ANNOTATION));
    if let Some(path) = metrics_file {
        match shared_mount(spec, path) {
            Some(mount) => {
                sidecar_env.push(value_env(env::METRICS_FILE, path));
                sidecar.volume_mounts.get_or_insert_with(Vec::new).push(mount);
            }
            None => warnings.push(format!(
                "cronpush: {METRICS_FILE_ANNOTATION}={path:?} is on no volume mounted into a main container; \
                 the custom metrics will not be pushed"
            )),
        }
    }
    // Logs can hold secrets: lines are asked for only when the cluster's operator allowed it
    // (the flag, with the overlay's pods/log RBAC) and the CronJob's owner asked (the annotation).
    match facts.log_lines.as_deref().filter(|_| config.failed_run_logs).map(parse_log_lines) {
        Some(Ok(lines)) => sidecar_env.push(value_env(env::LOG_LINES, &lines.to_string())),
        Some(Err(why)) => warnings.push(format!(
            "cronpush: the CronJob's {LOG_LINES_ANNOTATION}: {why}; no log lines will be kept for this run"
        )),
        None => {}
    }
    let containers = vec![start_container(facts, config, resources), sidecar];
    let volumes = vec![token_volume(config), no_api_token_volume()];
    let mut ops = Vec::new();
    let init_containers = ["spec", "initContainers"];
    append_all(
        &mut ops,
        &init_containers,
        spec.init_containers.is_some(),
        containers,
        Addition::Container,
        Addition::Containers,
    );
    append_all(&mut ops, &["spec", "volumes"], spec.volumes.is_some(), volumes, Addition::Volume, Addition::Volumes);
    let status = status_annotation(facts);
    if pod.metadata.annotations.is_some() {
        ops.push(add(&["metadata", "annotations", STATUS_ANNOTATION], Addition::Text(status)));
    } else {
        ops.push(add(&["metadata", "annotations"], one_entry(STATUS_ANNOTATION, status)));
    }
    // The label that puts the Pod into the relay's shared watch. The Job controller's own labels
    // (job-name, controller-uid) are always there, but a Pod without labels is patched too.
    let injected = INJECTED_LABEL_VALUE.to_string();
    if pod.metadata.labels.is_some() {
        ops.push(add(&["metadata", "labels", INJECTED_LABEL], Addition::Text(injected)));
    } else {
        ops.push(add(&["metadata", "labels"], one_entry(INJECTED_LABEL, injected)));
    }
    Ok(Injection { ops, warnings })
}

/// A Pod that already holds a volume or a container of our names (which cronpush did not put
/// there: an injected Pod is recognised by its annotation before this) is left alone rather than
/// given a second one, which the API server would refuse.
fn refuse_collisions(spec: &PodSpec) -> Result<(), InjectionError> {
    for ours in [TOKEN_VOLUME, NO_API_TOKEN_VOLUME] {
        if spec.volumes.iter().flatten().any(|v| v.name == ours) {
            return Err(InjectionError::VolumeNameTaken(ours));
        }
    }
    let containers = || spec.init_containers.iter().flatten().chain(&spec.containers);
    for ours in [START_CONTAINER, SIDECAR_CONTAINER] {
        if containers().any(|c| c.name == ours) {
            return Err(InjectionError::ContainerNameTaken(ours));
        }
    }
    Ok(())
}

/// A Pod for Windows nodes: by `spec.os.name`, or by a node selector that only Windows nodes
/// match. Our image is Linux-only, and the API server refuses `runAsUser`, `seccompProfile` and
/// `capabilities` in a Windows Pod (pkg/apis/core/validation, validateWindows).
fn is_windows(spec: &PodSpec) -> bool {
    let by_os = spec.os.as_ref().is_some_and(|os| os.name == "windows");
    let by_selector =
        spec.node_selector.as_ref().and_then(|s| s.get("kubernetes.io/os")).is_some_and(|os| os == "windows");
    by_os || by_selector
}

/// The main container's volume that holds `path`, mounted the same way but read-only, so the
/// sidecar finds the file where the Job wrote it. The deepest mount wins, as in the container.
fn shared_mount(spec: &PodSpec, path: &str) -> Option<VolumeMount> {
    let covers = |mount: &VolumeMount| {
        let dir = mount.mount_path.trim_end_matches('/');
        path.strip_prefix(dir).is_some_and(|rest| rest.starts_with('/') && rest.len() > 1)
    };
    let mount = spec
        .containers
        .iter()
        .flat_map(|c| c.volume_mounts.iter().flatten())
        .filter(|m| covers(m))
        .max_by_key(|m| m.mount_path.trim_end_matches('/').len())?;
    // Not the main container's mountPropagation: Bidirectional is refused on an unprivileged
    // container (pkg/apis/core/validation, validateMountPropagation), and a read-only view needs
    // none.
    Some(VolumeMount { read_only: Some(true), recursive_read_only: None, mount_propagation: None, ..mount.clone() })
}

/// Appends `items` to the array at `path`, creating it when the Pod has none: `add` to `-`
/// needs the array to exist.
fn append_all<T>(
    ops: &mut Vec<Add>,
    path: &[&str],
    exists: bool,
    items: Vec<T>,
    one: fn(Box<T>) -> Addition,
    all: fn(Vec<T>) -> Addition,
) {
    if exists {
        let mut tokens = path.to_vec();
        tokens.push("-");
        for item in items {
            ops.push(add(&tokens, one(Box::new(item))));
        }
    } else {
        ops.push(add(path, all(items)));
    }
}

fn add(tokens: &[&str], value: Addition) -> Add {
    // jsonptr escapes `/` and `~` in tokens itself.
    Add { op: "add", path: PointerBuf::from_tokens(tokens.iter().copied()), value }
}

fn one_entry(key: &str, value: String) -> Addition {
    Addition::Map(BTreeMap::from([(key.to_string(), value)]))
}

/// What the annotation records: our version and what we added, for idempotency and audits.
fn status_annotation(facts: &RunFacts) -> String {
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "injected": [START_CONTAINER, SIDECAR_CONTAINER],
        "cronjob": facts.cronjob,
        "facts": facts.source.as_str(),
    })
    .to_string()
}

fn start_container(facts: &RunFacts, config: &InjectionConfig, resources: &ResourceRequirements) -> Container {
    let mut mounts = vec![no_api_token_mount()];
    // Through the relay, `start` presents the Pod's token as the sidecar does.
    if let PushMode::Relay { .. } = config.push_mode {
        mounts.insert(0, token_mount());
    }
    Container {
        name: START_CONTAINER.into(),
        args: Some(vec!["start".into()]),
        env: Some(run_env(facts, config)),
        volume_mounts: Some(mounts),
        ..base_container(config, resources)
    }
}

fn sidecar_container(facts: &RunFacts, config: &InjectionConfig, resources: &ResourceRequirements) -> Container {
    let mut env = run_env(facts, config);
    env.extend([
        value_env(env::RELAY_URL, &config.relay_url),
        value_env(env::RELAY_CA, &config.relay_ca_pem.current()),
        value_env(env::TOKEN_FILE, TOKEN_FILE),
    ]);
    Container {
        name: SIDECAR_CONTAINER.into(),
        args: Some(vec!["sidecar".into()]),
        env: Some(env),
        // A native sidecar: started before the main containers, stopped after them.
        restart_policy: Some("Always".into()),
        volume_mounts: Some(vec![token_mount(), no_api_token_mount()]),
        ..base_container(config, resources)
    }
}

/// The resources as configured (`--cpu-request` and the like), before any namespace's policies.
pub fn configured_resources(config: &InjectionConfig) -> ResourceRequirements {
    let quantities = |pairs: &[(&str, Option<&String>)]| -> Option<BTreeMap<String, Quantity>> {
        let map: BTreeMap<String, Quantity> =
            pairs.iter().filter_map(|(k, v)| Some((k.to_string(), Quantity((*v)?.clone())))).collect();
        (!map.is_empty()).then_some(map)
    };
    ResourceRequirements {
        requests: quantities(&[("cpu", Some(&config.cpu_request)), ("memory", Some(&config.memory_request))]),
        limits: quantities(&[("cpu", config.cpu_limit.as_ref()), ("memory", Some(&config.memory_limit))]),
        ..ResourceRequirements::default()
    }
}

/// What both containers share: the image, small resources, and a security context that passes
/// the Pod Security "restricted" profile.
fn base_container(config: &InjectionConfig, resources: &ResourceRequirements) -> Container {
    Container {
        image: Some(config.image.clone()),
        image_pull_policy: config.image_pull_policy.clone(),
        resources: Some(resources.clone()),
        security_context: Some(SecurityContext {
            run_as_non_root: Some(true),
            // Numeric, so that the kubelet can check runAsNonRoot whatever the image declares.
            run_as_user: Some(65532),
            run_as_group: Some(65532),
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), add: None }),
            seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".into(), localhost_profile: None }),
            ..SecurityContext::default()
        }),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        ..Container::default()
    }
}

/// The environment contract of DESIGN.md: where to push, under which grouping key, and the
/// run's schedule facts. Facts not known are left out, not sent empty (but see the scheduled time).
fn run_env(facts: &RunFacts, config: &InjectionConfig) -> Vec<EnvVar> {
    let gateway_url = match &config.push_mode {
        PushMode::Direct => &config.gateway_url,
        PushMode::Relay { url } => url,
    };
    let mut vars = vec![
        value_env(env::GATEWAY_URL, gateway_url),
        value_env(env::JOB, &config.job_label),
        field_env(env::NAMESPACE, "metadata.namespace"),
        field_env(env::POD_NAME, "metadata.name"),
        value_env(env::CRONJOB, &facts.cronjob),
        value_env(env::JOB_NAME, &facts.job),
        value_env(env::TIMEOUT_SECONDS, &config.start_timeout_seconds.to_string()),
        // Always set: empty tells `start` that the run has no slot (started by hand), which it
        // could not tell from a hand-picked Job name that happens to end in digits.
        value_env(env::SCHEDULED_TIME, &facts.scheduled_time.map(|t| t.to_string()).unwrap_or_default()),
    ];
    let optional = [
        (env::SCHEDULE, facts.schedule.clone()),
        (env::TIME_ZONE, facts.time_zone.clone()),
        (env::CONCURRENCY_POLICY, facts.concurrency_policy.clone()),
        (env::CRONJOB_CREATED, facts.cronjob_created.map(|t| t.to_string())),
        (env::CRONJOB_LAST_SUCCESS, facts.cronjob_last_success.map(|t| t.to_string())),
        (env::GRACE_SECONDS, facts.grace_seconds.map(|s| s.to_string())),
        (env::STARTING_DEADLINE_SECONDS, facts.starting_deadline_seconds.map(|s| s.to_string())),
        (env::MAX_RUN_SECONDS, facts.max_run_seconds.map(|s| s.to_string())),
    ];
    vars.extend(optional.into_iter().filter_map(|(name, value)| Some(value_env(name, &value?))));
    if let Some(cluster) = &config.cluster_name {
        vars.push(value_env(env::CLUSTER, cluster));
    }
    match &config.push_mode {
        PushMode::Direct => {
            if let Some(pem) = &config.gateway_ca_pem {
                vars.push(value_env(env::GATEWAY_CA, pem));
            }
            if let Some(secret) = &config.gateway_credentials_secret {
                vars.push(secret_env(env::GATEWAY_USERNAME, secret, "username"));
                vars.push(secret_env(env::GATEWAY_PASSWORD, secret, "password"));
            }
        }
        // The relay is "the gateway" to the pushers: its CA, and the token as the credentials.
        PushMode::Relay { .. } => {
            vars.push(value_env(env::GATEWAY_CA, &config.relay_ca_pem.current()));
            vars.push(value_env(env::GATEWAY_TOKEN_FILE, TOKEN_FILE));
        }
    }
    vars
}

/// A variable the kubelet reads from a Secret of the Pod's namespace. Optional, so that a
/// namespace without the Secret (or the key) still runs its Jobs: the kubelet then leaves the
/// variable out rather than refusing to start the container (pkg/kubelet/kubelet_pods.go,
/// makeEnvironmentVariables: an optional secretKeyRef whose Secret or key is missing is skipped).
fn secret_env(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector { name: secret.into(), key: key.into(), optional: Some(true) }),
            ..EnvVarSource::default()
        }),
    }
}

fn value_env(name: &str, value: &str) -> EnvVar {
    EnvVar { name: name.into(), value: Some(value.into()), value_from: None }
}

fn field_env(name: &str, field_path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector { api_version: Some("v1".into()), field_path: field_path.into() }),
            ..EnvVarSource::default()
        }),
    }
}

/// The projected token, for the relay.
fn token_mount() -> VolumeMount {
    VolumeMount {
        name: TOKEN_VOLUME.into(),
        mount_path: TOKEN_DIR.into(),
        read_only: Some(true),
        ..VolumeMount::default()
    }
}

/// Nothing, mounted where the ServiceAccount admission plugin would mount the Pod's API token, so
/// that it mounts none into our containers (see [`NO_API_TOKEN_VOLUME`]).
fn no_api_token_mount() -> VolumeMount {
    VolumeMount {
        name: NO_API_TOKEN_VOLUME.into(),
        mount_path: API_TOKEN_DIR.into(),
        read_only: Some(true),
        ..VolumeMount::default()
    }
}

fn no_api_token_volume() -> Volume {
    Volume { name: NO_API_TOKEN_VOLUME.into(), empty_dir: Some(EmptyDirVolumeSource::default()), ..Volume::default() }
}

/// The sidecar's own token for the relay: projected with our audience and a short life, so
/// it exists even when the Pod sets `automountServiceAccountToken: false`.
fn token_volume(config: &InjectionConfig) -> Volume {
    Volume {
        name: TOKEN_VOLUME.into(),
        projected: Some(ProjectedVolumeSource {
            sources: Some(vec![VolumeProjection {
                service_account_token: Some(ServiceAccountTokenProjection {
                    audience: Some(config.token_audience.clone()),
                    expiration_seconds: Some(config.token_expiration_seconds),
                    path: "token".into(),
                }),
                ..VolumeProjection::default()
            }]),
            default_mode: None,
        }),
        ..Volume::default()
    }
}
