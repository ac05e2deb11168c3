//! Which Pods the webhook considers: a CREATE of a Pod whose controller is a Job, not opted out,
//! not injected yet, outside the excluded namespaces. Whether that Job belongs to a CronJob is
//! learned afterwards, from the Job itself (see `resolve`).

use k8s_openapi::api::core::v1::Pod;
use kube::core::admission::{AdmissionRequest, Operation};

use crate::contract::{INJECT_DISABLED, POD_INJECT_LABEL, STATUS_ANNOTATION};

/// A Pod of a Job, to be injected if its Job turns out to be a CronJob's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub namespace: String,
    pub job_name: String,
    pub job_uid: String,
}

/// Why a Pod was left alone; each is a label value of the webhook's own metrics. The last four
/// are internal errors, answered open (allowed, unchanged, with a warning).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    NotPodCreate,
    NotJobPod,
    NotCronJobPod,
    OptedOut,
    AlreadyInjected,
    ExcludedNamespace,
    /// The Pod already has a volume or a container of our names, which we did not put there.
    NameCollision,
    /// A Pod for Windows nodes.
    WindowsPod,
    UnsupportedKubernetes,
    /// The Pod may land on a node whose kubelet is older than 1.29 (or unreadable).
    OldKubelet,
    /// The Pod may land on a node of a platform the injected image is not built for.
    UnsupportedPlatform,
    /// The review's Pod is missing, does not decode, or has no spec.
    MalformedPod,
    /// The API could not be asked, and the Job's name gives nothing to fall back on.
    ApiUnreachable,
    /// The API answered that the Pod's Job, or the Job's CronJob, does not exist.
    UnknownOwner,
    /// The cluster's Nodes are not known (not listed yet, and the API could not be asked).
    NodesUnknown,
    /// The namespace's LimitRanges and ResourceQuotas are not known (likewise).
    PoliciesUnknown,
    /// No resources for the injected containers pass the namespace's LimitRanges and
    /// ResourceQuotas, or the Pod's own `spec.resources`.
    ResourcesRefused,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::NotPodCreate => "not_pod_create",
            SkipReason::NotJobPod => "not_job_pod",
            SkipReason::NotCronJobPod => "not_cronjob_pod",
            SkipReason::OptedOut => "opted_out",
            SkipReason::AlreadyInjected => "already_injected",
            SkipReason::ExcludedNamespace => "excluded_namespace",
            SkipReason::NameCollision => "name_collision",
            SkipReason::WindowsPod => "windows_pod",
            SkipReason::UnsupportedKubernetes => "unsupported_kubernetes",
            SkipReason::OldKubelet => "old_kubelet",
            SkipReason::UnsupportedPlatform => "unsupported_platform",
            SkipReason::MalformedPod => "malformed_pod",
            SkipReason::ApiUnreachable => "api_unreachable",
            SkipReason::UnknownOwner => "unknown_owner",
            SkipReason::NodesUnknown => "nodes_unknown",
            SkipReason::PoliciesUnknown => "policies_unknown",
            SkipReason::ResourcesRefused => "resources_refused",
        }
    }
}

pub fn select(request: &AdmissionRequest<Pod>, excluded_namespaces: &[String]) -> Result<Candidate, SkipReason> {
    let is_pod = request.kind.group.is_empty() && request.kind.kind == "Pod";
    if !is_pod || request.operation != Operation::Create || !request.sub_resource.as_deref().unwrap_or("").is_empty() {
        return Err(SkipReason::NotPodCreate);
    }
    let pod = request.object.as_ref().ok_or(SkipReason::MalformedPod)?;
    // Job pods are created with generateName and often without metadata.namespace; the
    // request's namespace is the one that counts.
    let namespace = request.namespace.clone().or_else(|| pod.metadata.namespace.clone()).unwrap_or_default();
    if excluded_namespaces.contains(&namespace) {
        return Err(SkipReason::ExcludedNamespace);
    }
    let labels = pod.metadata.labels.as_ref();
    if labels.and_then(|l| l.get(POD_INJECT_LABEL)).is_some_and(|v| v == INJECT_DISABLED) {
        return Err(SkipReason::OptedOut);
    }
    if is_injected(pod) {
        return Err(SkipReason::AlreadyInjected);
    }
    let owner = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .filter(|o| o.kind == "Job" && o.api_version == "batch/v1")
        .ok_or(SkipReason::NotJobPod)?;
    Ok(Candidate { namespace, job_name: owner.name.clone(), job_uid: owner.uid.clone() })
}

/// Whether the Pod carries our mark: injection is idempotent under `reinvocationPolicy:
/// IfNeeded`. Containers that merely bear our names are no mark of ours: the injection refuses
/// them as a collision, and says so.
pub fn is_injected(pod: &Pod) -> bool {
    pod.metadata.annotations.as_ref().is_some_and(|a| a.contains_key(STATUS_ANNOTATION))
}
