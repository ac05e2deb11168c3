//! The injected containers' requests and limits, chosen so that what judges the patched Pod
//! after the webhook accepts it: LimitRanger (per container and per Pod), the ResourceQuota
//! plugin, and the validation of pod-level resources (`spec.resources`). The operator's values
//! (`--cpu-request` and the like) are kept where they pass, raised to a LimitRange's minimum,
//! lowered to its maximum or ratio, and a limit is added where a LimitRange or a quota demands
//! one. Where no values can pass, the reason says which policy refuses them, and nothing is
//! injected.

use k8s_openapi::api::core::v1::{PodSpec, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::injection::InjectionConfig;
use super::limit_range::{self, Item, LimitRangeViolation, highest_within_ratio};
use super::namespace_policies::Policies;
use super::pod_resources::{Demand, POD_LEVEL_RESOURCES, PodDemand};
use super::quantity::{self, Milli, show};
use super::resource_quota::{self, QuotaViolation};
use crate::contract::{SIDECAR_CONTAINER, START_CONTAINER};

/// The least memory limit a pusher gets: about twice the highest peak measured (`start`, 8.6 MiB:
/// scripts/footprint, README). Below it a pusher could be OOM-killed, and a killed `start`
/// fails the Pod.
pub const MEMORY_FLOOR: Milli = 16 * 1024 * 1024 * 1000;

/// The CPU limit when one must be set and neither the operator nor a LimitRange's default
/// names one: ten times the default request, so that a push is not throttled for long.
const CPU_LIMIT_WHEN_REQUIRED: Milli = 100;

/// Why the operator's values (`--cpu-request` and the like) cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceFlagError {
    #[error("{flag} {value:?} is not a resource quantity (e.g. 10m, 16Mi)")]
    NotAQuantity { flag: &'static str, value: String },
    #[error("--cpu-limit is below --cpu-request")]
    CpuLimitBelowRequest,
    #[error("--memory-limit is below --memory-request")]
    MemoryLimitBelowRequest,
    #[error("--memory-limit is below {}, which the pushers need", quantity::memory(MEMORY_FLOOR))]
    MemoryLimitBelowFloor,
}

/// Why no requests and limits for the injected containers pass the namespace's policies: which
/// policy refuses them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceMisfit {
    #[error(transparent)]
    Flags(#[from] ResourceFlagError),
    #[error(
        "the LimitRanges ask a container for at least {} and at most {} of {resource}",
        show(.resource, *.min),
        show(.resource, *.max)
    )]
    CrossedBounds { resource: String, min: Milli, max: Milli },
    #[error("a LimitRange bounds the {resource} limit by the request, and the request is 0")]
    RatioOfZero { resource: String },
    #[error(
        "the LimitRanges allow a container {} of memory, and the pushers need {}",
        show("memory", *.limit),
        show("memory", MEMORY_FLOOR)
    )]
    MemoryBelowFloor { limit: Milli },
    /// The validation of pod-level resources.
    #[error(
        "the Pod's spec.resources requests {} of {resource}, and its containers would need {} with cronpush's",
        show(.resource, *.pod),
        show(.resource, *.containers)
    )]
    PodLevelResources { resource: &'static str, pod: Milli, containers: Milli },
    #[error(transparent)]
    LimitRange(#[from] LimitRangeViolation),
    #[error(transparent)]
    Quota(#[from] QuotaViolation),
}

/// The operator's values for each injected container, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    pub cpu_request: Milli,
    pub cpu_limit: Option<Milli>,
    pub memory_request: Milli,
    pub memory_limit: Milli,
}

impl Wanted {
    pub fn of(config: &InjectionConfig) -> Result<Wanted, ResourceFlagError> {
        Wanted::parse(&config.cpu_request, config.cpu_limit.as_deref(), &config.memory_request, &config.memory_limit)
    }

    /// The flags' values, checked: quantities, each limit at least its request, and memory for
    /// the pushers.
    pub fn parse(
        cpu_request: &str,
        cpu_limit: Option<&str>,
        memory_request: &str,
        memory_limit: &str,
    ) -> Result<Wanted, ResourceFlagError> {
        let parse = |flag: &'static str, value: &str| match quantity::milli(value) {
            Some(amount) if amount >= 0 => Ok(amount),
            _ => Err(ResourceFlagError::NotAQuantity { flag, value: value.to_string() }),
        };
        let wanted = Wanted {
            cpu_request: parse("--cpu-request", cpu_request)?,
            cpu_limit: cpu_limit.map(|l| parse("--cpu-limit", l)).transpose()?,
            memory_request: parse("--memory-request", memory_request)?,
            memory_limit: parse("--memory-limit", memory_limit)?,
        };
        if wanted.cpu_limit.is_some_and(|l| l < wanted.cpu_request) {
            return Err(ResourceFlagError::CpuLimitBelowRequest);
        }
        if wanted.memory_limit < wanted.memory_request {
            return Err(ResourceFlagError::MemoryLimitBelowRequest);
        }
        if wanted.memory_limit < MEMORY_FLOOR {
            return Err(ResourceFlagError::MemoryLimitBelowFloor);
        }
        Ok(wanted)
    }
}

/// The resources each injected container gets, or why the patched Pod could not pass.
pub fn fit(
    spec: &PodSpec,
    config: &InjectionConfig,
    policies: &Policies,
) -> Result<ResourceRequirements, ResourceMisfit> {
    let wanted = Wanted::of(config)?;
    let original = PodDemand::of(spec);
    // Our containers set a memory limit, so the patched Pod is never BestEffort.
    let quotas: Vec<_> = policies.quotas.iter().filter(|q| resource_quota::applies(q, spec, false)).collect();
    let quota_wants_limit = |resource: &str| {
        !original.has_pod_level_resources()
            && quotas.iter().any(|q| resource_quota::tracks(q, &format!("limits.{resource}")))
    };
    let items: Vec<Item<'_>> = limit_range::items(&policies.limit_ranges, "Container").collect();
    let cpu = choose("cpu", wanted.cpu_request, wanted.cpu_limit, &items, quota_wants_limit("cpu"))?;
    let memory =
        choose("memory", wanted.memory_request, Some(wanted.memory_limit), &items, quota_wants_limit("memory"))?;
    if let (_, Some(limit)) = memory
        && limit < MEMORY_FLOOR
    {
        return Err(ResourceMisfit::MemoryBelowFloor { limit });
    }

    let mut patched = original.clone();
    for (name, sidecar) in [(START_CONTAINER, false), (SIDECAR_CONTAINER, true)] {
        let mut ours = Demand { name: name.into(), sidecar, ..Demand::default() };
        for (resource, (request, limit)) in [("cpu", cpu), ("memory", memory)] {
            ours.requests.insert(resource.into(), request);
            ours.limits.extend(limit.map(|l| (resource.to_string(), l)));
        }
        // What LimitRanger fills in when it runs again after the webhook (ephemeral storage, ...).
        limit_range::fill_defaults(&mut ours, &policies.limit_ranges);
        limit_range::check_container(&ours, &policies.limit_ranges)?;
        patched.init.push(ours);
    }
    check_pod_level_resources(&patched)?;
    limit_range::check_pod(&patched, &policies.limit_ranges)?;
    for quota in quotas {
        resource_quota::check_containers_set(quota, &patched)?;
        resource_quota::check_headroom(quota, &patched, &original)?;
    }

    // The operator's own spelling where a value is kept, so that a namespace without policies
    // gets exactly what was configured.
    let spell = |resource: &str, amount: Milli, configured: Option<&String>| {
        let kept = configured.filter(|c| quantity::milli(c) == Some(amount));
        Quantity(kept.cloned().unwrap_or_else(|| show(resource, amount)))
    };
    let requests = [
        ("cpu", spell("cpu", cpu.0, Some(&config.cpu_request))),
        ("memory", spell("memory", memory.0, Some(&config.memory_request))),
    ];
    let limits = [
        cpu.1.map(|l| ("cpu", spell("cpu", l, config.cpu_limit.as_ref()))),
        memory.1.map(|l| ("memory", spell("memory", l, Some(&config.memory_limit)))),
    ];
    Ok(ResourceRequirements {
        requests: Some(requests.into_iter().map(|(r, q)| (r.to_string(), q)).collect()),
        limits: Some(limits.into_iter().flatten().map(|(r, q)| (r.to_string(), q)).collect()),
        ..ResourceRequirements::default()
    })
}

/// One resource's request and limit for our containers: the operator's, moved into what every
/// `Container` item of the namespace's LimitRanges allows.
fn choose(
    resource: &str,
    request: Milli,
    limit: Option<Milli>,
    items: &[Item<'_>],
    quota_wants_limit: bool,
) -> Result<(Milli, Option<Milli>), ResourceMisfit> {
    let min = items.iter().filter_map(|i| i.min(resource)).max();
    let max = items.iter().filter_map(|i| i.max(resource)).min();
    let ratio = items.iter().filter_map(|i| i.max_ratio(resource)).min();
    let default = items.iter().find_map(|i| i.default_limit(resource));
    if let (Some(min), Some(max)) = (min, max)
        && min > max
    {
        return Err(ResourceMisfit::CrossedBounds { resource: resource.to_string(), min, max });
    }
    let mut request = request.max(min.unwrap_or(0));
    if let Some(max) = max {
        request = request.min(max);
    }
    if ratio.is_some() && request == 0 {
        return Err(ResourceMisfit::RatioOfZero { resource: resource.to_string() });
    }
    let needs_limit = limit.is_some() || max.is_some() || ratio.is_some() || default.is_some() || quota_wants_limit;
    if !needs_limit {
        return Ok((request, None));
    }
    let fallback = if resource == "cpu" { CPU_LIMIT_WHEN_REQUIRED } else { MEMORY_FLOOR };
    let mut limit = limit.or(default).unwrap_or(fallback).max(request);
    if let Some(max) = max {
        limit = limit.min(max);
    }
    if let Some(ratio) = ratio {
        limit = limit.min(highest_within_ratio(request, ratio));
    }
    Ok((request, Some(limit)))
}

/// The validation of pod-level resources: the Pod's requests must cover what its containers ask
/// together, ours included (pkg/apis/core/validation `validatePodResourceConsistency`; the
/// check of limits there is on main containers only, so ours never break it).
fn check_pod_level_resources(patched: &PodDemand) -> Result<(), ResourceMisfit> {
    let containers = patched.container_requests();
    for resource in POD_LEVEL_RESOURCES {
        if let (Some(&pod), Some(&together)) = (patched.pod_requests.get(resource), containers.get(resource))
            && together > pod
        {
            return Err(ResourceMisfit::PodLevelResources { resource, pod, containers: together });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::{Value, json};

    use super::*;
    use crate::webhook::tests::config;

    /// A Pod whose one container sets `resources`, with `more` merged into its spec.
    fn spec(resources: Value, more: Value) -> PodSpec {
        let mut spec = json!({"containers": [{"name": "main", "image": "busybox", "resources": resources}]});
        for (key, value) in more.as_object().unwrap() {
            spec[key] = value.clone();
        }
        serde_json::from_value(spec).unwrap()
    }

    fn limit_range(limits: Value) -> Policies {
        let range = json!({"metadata": {"name": "bounds", "namespace": "batch"}, "spec": {"limits": limits}});
        Policies { limit_ranges: vec![Arc::new(serde_json::from_value(range).unwrap())], quotas: vec![] }
    }

    fn quota(spec: Value, used: Value) -> Policies {
        let quota = json!({"metadata": {"name": "team", "namespace": "batch"}, "spec": spec, "status": {"used": used}});
        Policies { limit_ranges: vec![], quotas: vec![Arc::new(serde_json::from_value(quota).unwrap())] }
    }

    fn fitted(spec: &PodSpec, policies: &Policies) -> Result<Value, ResourceMisfit> {
        fit(spec, &config(), policies).map(|r| serde_json::to_value(r).unwrap())
    }

    #[test]
    fn without_policies_the_configured_resources_are_kept_as_written() {
        let configured = json!({"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "32Mi"}});
        assert_eq!(fitted(&spec(json!({}), json!({})), &Policies::default()), Ok(configured));
    }

    #[test]
    fn a_limit_that_a_quota_or_a_limit_range_demands_is_added() {
        let on_limits = quota(json!({"hard": {"limits.cpu": "2", "limits.memory": "1Gi"}}), json!({}));
        let own = json!({"limits": {"cpu": "1", "memory": "64Mi"}});
        let expected =
            json!({"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "100m", "memory": "32Mi"}});
        assert_eq!(fitted(&spec(own, json!({})), &on_limits), Ok(expected));
        // A LimitRange's default is the operator's choice for containers that set none.
        let defaults = limit_range(json!([{"type": "Container", "default": {"cpu": "300m"}}]));
        assert_eq!(fitted(&spec(json!({}), json!({})), &defaults).unwrap()["limits"]["cpu"], "300m");
    }

    #[test]
    fn the_configured_values_move_into_what_a_limit_range_allows() {
        let ratio = limit_range(json!([{"type": "Container", "maxLimitRequestRatio": {"memory": "1.5"}}]));
        assert_eq!(fitted(&spec(json!({}), json!({})), &ratio).unwrap()["limits"]["memory"], "24Mi");
        let min = limit_range(json!([{"type": "Container", "min": {"memory": "48Mi"}}]));
        let raised = fitted(&spec(json!({}), json!({})), &min).unwrap();
        assert_eq!((&raised["requests"]["memory"], &raised["limits"]["memory"]), (&json!("48Mi"), &json!("48Mi")));
        let max = limit_range(json!([{"type": "Container", "max": {"cpu": "5m"}}]));
        let lowered = fitted(&spec(json!({}), json!({})), &max).unwrap();
        assert_eq!((&lowered["requests"]["cpu"], &lowered["limits"]["cpu"]), (&json!("5m"), &json!("5m")));
    }

    #[test]
    fn no_values_pass_some_limit_ranges_and_the_reason_says_which() {
        let crossed = limit_range(json!([{"type": "Container", "min": {"cpu": "1"}, "max": {"cpu": "500m"}}]));
        let why = fitted(&spec(json!({}), json!({})), &crossed).unwrap_err().to_string();
        assert!(why.contains("at least 1 and at most 500m of cpu"), "{why}");
        let small = limit_range(json!([{"type": "Container", "max": {"memory": "8Mi"}}]));
        let why = fitted(&spec(json!({}), json!({})), &small).unwrap_err().to_string();
        assert!(why.contains("8Mi") && why.contains("16Mi"), "{why}");
        // A ratio on a resource that we do not set, and no default fills in: LimitRanger refuses.
        let storage = limit_range(json!([{"type": "Container", "maxLimitRequestRatio": {"ephemeral-storage": "2"}}]));
        let why = fitted(&spec(json!({}), json!({})), &storage).unwrap_err().to_string();
        assert!(why.contains("LimitRange bounds: container cronpush-start: ephemeral-storage"), "{why}");
    }

    #[test]
    fn a_pod_limit_range_judges_the_pod_with_ours_added_up() {
        let own = json!({"requests": {"memory": "64Mi"}, "limits": {"memory": "64Mi"}});
        // Limits: the main container's 64Mi and the sidecar's 32Mi run together (96Mi).
        let roomy = limit_range(json!([{"type": "Pod", "max": {"memory": "100Mi"}}]));
        assert!(fitted(&spec(own.clone(), json!({})), &roomy).is_ok());
        let tight = limit_range(json!([{"type": "Pod", "max": {"memory": "90Mi"}}]));
        let why = fitted(&spec(own, json!({})), &tight).unwrap_err().to_string();
        assert!(why.contains("maximum memory usage per Pod is 90Mi, but limit is 96Mi"), "{why}");
    }

    #[test]
    fn a_quota_must_have_room_for_what_ours_add() {
        // The quota tracks requests.memory, so every container sets one; the Pod as it came asks
        // 8Mi, with ours 24Mi.
        let own = || spec(json!({"requests": {"memory": "8Mi"}}), json!({}));
        let hard = json!({"hard": {"requests.memory": "64Mi"}});
        assert!(fitted(&own(), &quota(hard.clone(), json!({"requests.memory": "40Mi"}))).is_ok());
        let why = fitted(&own(), &quota(hard, json!({"requests.memory": "50Mi"}))).unwrap_err().to_string();
        assert_eq!(why, "ResourceQuota team: requests.memory would reach 74Mi of 64Mi (used 50Mi, this Pod 24Mi)");
    }

    #[test]
    fn only_the_quotas_whose_scopes_take_the_patched_pod_judge_it() {
        let own = json!({"requests": {"memory": "8Mi"}});
        let full = json!({"requests.memory": "64Mi"});
        let not_terminating = json!({"hard": {"requests.memory": "64Mi"}, "scopes": ["NotTerminating"]});
        let with_deadline = spec(own.clone(), json!({"activeDeadlineSeconds": 60}));
        assert!(fitted(&with_deadline, &quota(not_terminating.clone(), full.clone())).is_ok());
        let why = fitted(&spec(own.clone(), json!({})), &quota(not_terminating, full.clone())).unwrap_err().to_string();
        assert!(why.contains("would reach"), "{why}");
        let high = json!({"hard": {"requests.memory": "64Mi"},
                          "scopeSelector": {"matchExpressions": [{"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}]}});
        let low = spec(own.clone(), json!({"priorityClassName": "low"}));
        assert!(fitted(&low, &quota(high.clone(), full.clone())).is_ok());
        let why = fitted(&spec(own, json!({"priorityClassName": "high"})), &quota(high, full)).unwrap_err().to_string();
        assert!(why.contains("would reach"), "{why}");
        // Our requests make a BestEffort Pod Burstable: a NotBestEffort quota that did not see
        // the Pod as it came judges it, and wants every container to set what it tracks.
        let not_best_effort = json!({"hard": {"requests.cpu": "4"}, "scopes": ["NotBestEffort"]});
        let why = fitted(&spec(json!({}), json!({})), &quota(not_best_effort, json!({}))).unwrap_err().to_string();
        assert_eq!(why, "ResourceQuota team: must specify requests.cpu for: main");
    }

    #[test]
    fn pod_level_resources_must_cover_ours_too() {
        let roomy = json!({"resources": {"requests": {"cpu": "500m", "memory": "128Mi"}}});
        assert!(fitted(&spec(json!({}), roomy), &Policies::default()).is_ok());
        let full = json!({"resources": {"requests": {"memory": "64Mi"}}});
        let why =
            fitted(&spec(json!({"requests": {"memory": "64Mi"}}), full), &Policies::default()).unwrap_err().to_string();
        assert!(why.contains("requests 64Mi of memory, and its containers would need 80Mi"), "{why}");
        // With pod-level resources, a quota no longer asks every container to set them.
        let pod_level = json!({"resources": {"requests": {"memory": "128Mi"}}});
        let tracked = quota(json!({"hard": {"requests.cpu": "4", "limits.cpu": "4"}}), json!({}));
        assert!(fitted(&spec(json!({}), pod_level), &tracked).is_ok());
    }
}
