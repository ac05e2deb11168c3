//! The ResourceQuota admission plugin's verdict on a Pod, as it judges the patched Pod after the
//! webhook: which quotas apply (their scopes), which resources every container must then set,
//! and whether what the Pod adds fits in what is left (`hard − used`). Each rule follows
//! pkg/quota/v1/evaluator/core/pods.go, named after its function there.

use k8s_openapi::api::core::v1::{PodSpec, ResourceQuota, ScopedResourceSelectorRequirement};

use super::pod_resources::{Amounts, PodDemand, amounts};
use super::quantity::{Milli, show};

/// Whether `quota` counts this Pod: every scope of its `scopes` and `scopeSelector` matches
/// (`podMatchesScopeFunc`). `best_effort` is the Pod's QoS class once patched.
pub fn applies(quota: &ResourceQuota, spec: &PodSpec, best_effort: bool) -> bool {
    let Some(quota_spec) = &quota.spec else { return false };
    let listed = quota_spec.scopes.iter().flatten().map(|scope| ScopedResourceSelectorRequirement {
        scope_name: scope.clone(),
        operator: "Exists".into(),
        values: None,
    });
    let selected = quota_spec.scope_selector.iter().flat_map(|s| s.match_expressions.iter().flatten()).cloned();
    listed.chain(selected).all(|scope| matches_scope(&scope, spec, best_effort))
}

fn matches_scope(scope: &ScopedResourceSelectorRequirement, spec: &PodSpec, best_effort: bool) -> bool {
    // `IsTerminating`: a deadline of the Pod's own (not the Job's).
    let terminating = spec.active_deadline_seconds.is_some_and(|s| s >= 0);
    match scope.scope_name.as_str() {
        "Terminating" => terminating,
        "NotTerminating" => !terminating,
        "BestEffort" => best_effort,
        "NotBestEffort" => !best_effort,
        "PriorityClass" => priority_class_matches(scope, spec.priority_class_name.as_deref().filter(|p| !p.is_empty())),
        "CrossNamespacePodAffinity" => uses_cross_namespace_affinity(spec),
        _ => false,
    }
}

/// `podMatchesSelector`: the scope as a label selector over `{PriorityClass: <name>}`.
fn priority_class_matches(scope: &ScopedResourceSelectorRequirement, class: Option<&str>) -> bool {
    let values = scope.values.as_deref().unwrap_or_default();
    match scope.operator.as_str() {
        "Exists" => class.is_some(),
        "DoesNotExist" => class.is_none(),
        "In" => class.is_some_and(|c| values.iter().any(|v| v == c)),
        "NotIn" => !class.is_some_and(|c| values.iter().any(|v| v == c)),
        _ => false,
    }
}

/// `usesCrossNamespacePodAffinity`: a pod (anti-)affinity term that names namespaces or selects them.
fn uses_cross_namespace_affinity(spec: &PodSpec) -> bool {
    let Some(affinity) = &spec.affinity else { return false };
    let cross = |term: &k8s_openapi::api::core::v1::PodAffinityTerm| {
        term.namespaces.as_ref().is_some_and(|n| !n.is_empty()) || term.namespace_selector.is_some()
    };
    let affinity_terms = affinity.pod_affinity.iter().flat_map(|a| {
        let required = a.required_during_scheduling_ignored_during_execution.iter().flatten();
        let preferred =
            a.preferred_during_scheduling_ignored_during_execution.iter().flatten().map(|w| &w.pod_affinity_term);
        required.chain(preferred)
    });
    let anti_terms = affinity.pod_anti_affinity.iter().flat_map(|a| {
        let required = a.required_during_scheduling_ignored_during_execution.iter().flatten();
        let preferred =
            a.preferred_during_scheduling_ignored_during_execution.iter().flatten().map(|w| &w.pod_affinity_term);
        required.chain(preferred)
    });
    affinity_terms.chain(anti_terms).any(cross)
}

/// A ResourceQuota that refuses the patched Pod, in the plugin's words where it has them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuotaViolation {
    /// `Constraints`: containers that do not set a resource the quota tracks.
    #[error("ResourceQuota {quota}: must specify {resource} for: {}", .containers.join(","))]
    NotSet { quota: String, resource: &'static str, containers: Vec<String> },
    /// What the Pod adds to the quota's usage does not fit under `hard`.
    #[error(
        "ResourceQuota {quota}: {resource} would reach {} of {} (used {}, this Pod {})",
        show(unit(.resource), *.used + *.wanted),
        show(unit(.resource), *.hard),
        show(unit(.resource), *.used),
        show(unit(.resource), *.wanted)
    )]
    Exceeded { quota: String, resource: String, hard: Milli, used: Milli, wanted: Milli },
}

/// The compute resources that, once a quota tracks them, every container must set (`validationSet`).
const MUST_SET: [&str; 6] = ["cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory"];

/// `Constraints`: with a quota on CPU or memory, every container must set what it tracks,
/// unless `spec.resources` sets CPU or memory for the whole Pod.
pub fn check_containers_set(quota: &ResourceQuota, pod: &PodDemand) -> Result<(), QuotaViolation> {
    if pod.has_pod_level_resources() {
        return Ok(());
    }
    let hard = hard(quota);
    for tracked in MUST_SET.into_iter().filter(|r| hard.contains_key(*r)) {
        let missing: Vec<String> = pod
            .containers()
            .filter(|c| !usage_of(&c.requests, &c.limits).contains_key(tracked))
            .map(|c| c.name.clone())
            .collect();
        if !missing.is_empty() {
            return Err(QuotaViolation::NotSet {
                quota: name(quota).to_string(),
                resource: tracked,
                containers: missing,
            });
        }
    }
    Ok(())
}

/// Whether what the patched Pod adds to the quota's usage beyond the Pod as it came still fits
/// under `hard`: the resources the injection does not grow are the Pod's own business.
pub fn check_headroom(quota: &ResourceQuota, patched: &PodDemand, original: &PodDemand) -> Result<(), QuotaViolation> {
    let hard = hard(quota);
    let used = amounts(quota.status.as_ref().and_then(|s| s.used.as_ref()));
    let after = usage(patched);
    let before = usage(original);
    for (resource, limit) in &hard {
        let Some(&wanted) = after.get(resource) else { continue };
        if wanted <= before.get(resource).copied().unwrap_or(0) {
            continue;
        }
        let in_use = used.get(resource).copied().unwrap_or(0);
        if in_use + wanted > *limit {
            return Err(QuotaViolation::Exceeded {
                quota: name(quota).to_string(),
                resource: resource.clone(),
                hard: *limit,
                used: in_use,
                wanted,
            });
        }
    }
    Ok(())
}

/// `PodUsageFunc`: what the Pod counts against a quota, from its requests and limits added up.
fn usage(pod: &PodDemand) -> Amounts {
    usage_of(&pod.requests(), &pod.limits())
}

/// `podComputeUsageHelper`: requests count under their own name and `requests.<name>`, limits
/// under `limits.<name>` (for CPU, memory and ephemeral storage; huge pages by request).
fn usage_of(requests: &Amounts, limits: &Amounts) -> Amounts {
    let mut usage = Amounts::new();
    for resource in ["cpu", "memory", "ephemeral-storage"] {
        if let Some(&r) = requests.get(resource) {
            usage.insert(resource.to_string(), r);
            usage.insert(format!("requests.{resource}"), r);
        }
        if let Some(&l) = limits.get(resource) {
            usage.insert(format!("limits.{resource}"), l);
        }
    }
    for (resource, &r) in requests.iter().filter(|(name, _)| name.starts_with("hugepages-")) {
        usage.insert(resource.clone(), r);
        usage.insert(format!("requests.{resource}"), r);
    }
    usage
}

/// Whether the quota sets a hard limit on `resource` (e.g. `limits.cpu`).
pub fn tracks(quota: &ResourceQuota, resource: &str) -> bool {
    quota.spec.as_ref().and_then(|s| s.hard.as_ref()).is_some_and(|h| h.contains_key(resource))
}

fn hard(quota: &ResourceQuota) -> Amounts {
    amounts(quota.spec.as_ref().and_then(|s| s.hard.as_ref()))
}

/// The resource a quota's name counts, for showing amounts: `memory` of `requests.memory`.
fn unit(resource: &str) -> &str {
    resource.rsplit('.').next().unwrap_or(resource)
}

fn name(quota: &ResourceQuota) -> &str {
    quota.metadata.name.as_deref().unwrap_or("")
}
