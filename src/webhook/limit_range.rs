//! LimitRanger's rules, as the API server applies them to a Pod after the webhook (the in-tree
//! mutating plugins run again once a webhook changed the object: apiserver
//! pkg/admission/reinvocation.go, webhook/mutating/dispatcher.go `SetShouldReinvoke`). Each rule
//! follows plugin/pkg/admission/limitranger/admission.go, named after its function there.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{LimitRange, LimitRangeItem};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::pod_resources::{Amounts, Demand, PodDemand, amounts};
use super::quantity::{self, Milli, show};

/// The items of one `type` (`Container` or `Pod`) of every LimitRange of a namespace, with the
/// name of the LimitRange each comes from.
pub fn items<'a>(limit_ranges: &'a [impl AsRef<LimitRange>], kind: &'a str) -> impl Iterator<Item = Item<'a>> + 'a {
    limit_ranges.iter().flat_map(move |range| {
        let range = range.as_ref();
        let name = range.metadata.name.as_deref().unwrap_or("");
        range
            .spec
            .iter()
            .flat_map(|spec| &spec.limits)
            .filter(move |item| item.type_ == kind)
            .map(move |item| Item { limit_range: name, item })
    })
}

#[derive(Clone, Copy)]
pub struct Item<'a> {
    pub limit_range: &'a str,
    pub item: &'a LimitRangeItem,
}

impl Item<'_> {
    pub fn min(&self, resource: &str) -> Option<Milli> {
        self.get(&self.item.min, resource)
    }
    pub fn max(&self, resource: &str) -> Option<Milli> {
        self.get(&self.item.max, resource)
    }
    pub fn max_ratio(&self, resource: &str) -> Option<Milli> {
        self.get(&self.item.max_limit_request_ratio, resource)
    }
    pub fn default_limit(&self, resource: &str) -> Option<Milli> {
        self.get(&self.item.default, resource)
    }

    fn get(&self, list: &Option<BTreeMap<String, Quantity>>, resource: &str) -> Option<Milli> {
        list.as_ref()?.get(resource).and_then(|q| quantity::milli(&q.0))
    }
}

/// `mergeContainerResources`: a container gets each default request and limit of the
/// namespace's `Container` items that it does not set itself; the first LimitRange wins.
pub fn fill_defaults(container: &mut Demand, limit_ranges: &[impl AsRef<LimitRange>]) {
    for Item { item, .. } in items(limit_ranges, "Container") {
        for (list, target) in [(&item.default, &mut container.limits), (&item.default_request, &mut container.requests)]
        {
            for (resource, amount) in amounts(list.as_ref()) {
                target.entry(resource).or_insert(amount);
            }
        }
    }
}

/// A LimitRange that refuses the patched Pod: which one, for which container (none: the Pod as
/// a whole), and the constraint broken (boxed: it is large, and rare).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitRangeViolation {
    #[error("LimitRange {limit_range}: container {container}: {broken}")]
    Container {
        limit_range: String,
        container: String,
        #[source]
        broken: Box<BrokenConstraint>,
    },
    #[error("LimitRange {limit_range}: {broken}")]
    Pod {
        limit_range: String,
        #[source]
        broken: Box<BrokenConstraint>,
    },
}

/// A constraint of one LimitRange item that requests and limits break, in LimitRanger's words;
/// `kind` is the item's `type` (`Container` or `Pod`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokenConstraint {
    #[error("minimum {resource} usage per {kind} is {}, and no request is specified", show(.resource, *.min))]
    NoRequest { kind: &'static str, resource: String, min: Milli },
    #[error(
        "minimum {resource} usage per {kind} is {}, but request is {}",
        show(.resource, *.min),
        show(.resource, *.request)
    )]
    RequestBelowMin { kind: &'static str, resource: String, min: Milli, request: Milli },
    #[error(
        "minimum {resource} usage per {kind} is {}, but limit is {}",
        show(.resource, *.min),
        show(.resource, *.limit)
    )]
    LimitBelowMin { kind: &'static str, resource: String, min: Milli, limit: Milli },
    #[error("maximum {resource} usage per {kind} is {}, and no limit is specified", show(.resource, *.max))]
    NoLimit { kind: &'static str, resource: String, max: Milli },
    #[error(
        "maximum {resource} usage per {kind} is {}, but limit is {}",
        show(.resource, *.max),
        show(.resource, *.limit)
    )]
    LimitAboveMax { kind: &'static str, resource: String, max: Milli, limit: Milli },
    #[error(
        "maximum {resource} usage per {kind} is {}, but request is {}",
        show(.resource, *.max),
        show(.resource, *.request)
    )]
    RequestAboveMax { kind: &'static str, resource: String, max: Milli, request: Milli },
    #[error("{resource} max limit to request ratio per {kind} needs a non-zero request and limit")]
    RatioWithoutBoth { kind: &'static str, resource: String },
    #[error(
        "{resource} max limit to request ratio per {kind} is {}, but the limit is {} for a request of {}",
        *.ratio as f64 / 1000.0,
        show(.resource, *.limit),
        show(.resource, *.request)
    )]
    AboveRatio { kind: &'static str, resource: String, ratio: Milli, request: Milli, limit: Milli },
}

/// `PodValidateLimitFunc` for one container: every `Container` item's min, max and
/// maxLimitRequestRatio.
pub fn check_container(container: &Demand, limit_ranges: &[impl AsRef<LimitRange>]) -> Result<(), LimitRangeViolation> {
    for item in items(limit_ranges, "Container") {
        check(item, "Container", &container.requests, &container.limits).map_err(|broken| {
            LimitRangeViolation::Container {
                limit_range: item.limit_range.to_string(),
                container: container.name.clone(),
                broken: Box::new(broken),
            }
        })?;
    }
    Ok(())
}

/// `PodValidateLimitFunc` for the whole Pod: every `Pod` item, against the Pod's requests and
/// limits added up (`podRequests`, `podLimits`).
pub fn check_pod(pod: &PodDemand, limit_ranges: &[impl AsRef<LimitRange>]) -> Result<(), LimitRangeViolation> {
    let (requests, limits) = (pod.requests(), pod.limits());
    for item in items(limit_ranges, "Pod") {
        check(item, "Pod", &requests, &limits).map_err(|broken| LimitRangeViolation::Pod {
            limit_range: item.limit_range.to_string(),
            broken: Box::new(broken),
        })?;
    }
    Ok(())
}

fn check(item: Item<'_>, kind: &'static str, requests: &Amounts, limits: &Amounts) -> Result<(), BrokenConstraint> {
    for (resource, min) in amounts(item.item.min.as_ref()) {
        min_constraint(kind, &resource, min, requests.get(&resource), limits.get(&resource))?;
    }
    for (resource, max) in amounts(item.item.max.as_ref()) {
        max_constraint(kind, &resource, max, requests.get(&resource), limits.get(&resource))?;
    }
    for (resource, ratio) in amounts(item.item.max_limit_request_ratio.as_ref()) {
        ratio_constraint(kind, &resource, ratio, requests.get(&resource), limits.get(&resource))?;
    }
    Ok(())
}

/// `minConstraint`: a request is required and, like a limit if any, may not be below the minimum.
fn min_constraint(
    kind: &'static str,
    resource: &str,
    min: Milli,
    request: Option<&Milli>,
    limit: Option<&Milli>,
) -> Result<(), BrokenConstraint> {
    match (request, limit) {
        (None, _) => Err(BrokenConstraint::NoRequest { kind, resource: resource.into(), min }),
        (Some(&request), _) if request < min => {
            Err(BrokenConstraint::RequestBelowMin { kind, resource: resource.into(), min, request })
        }
        (_, Some(&limit)) if limit < min => {
            Err(BrokenConstraint::LimitBelowMin { kind, resource: resource.into(), min, limit })
        }
        _ => Ok(()),
    }
}

/// `maxConstraint`: a limit is required and, like a request if any, may not be above the maximum.
fn max_constraint(
    kind: &'static str,
    resource: &str,
    max: Milli,
    request: Option<&Milli>,
    limit: Option<&Milli>,
) -> Result<(), BrokenConstraint> {
    match (request, limit) {
        (_, None) => Err(BrokenConstraint::NoLimit { kind, resource: resource.into(), max }),
        (_, Some(&limit)) if limit > max => {
            Err(BrokenConstraint::LimitAboveMax { kind, resource: resource.into(), max, limit })
        }
        (Some(&request), _) if request > max => {
            Err(BrokenConstraint::RequestAboveMax { kind, resource: resource.into(), max, request })
        }
        _ => Ok(()),
    }
}

/// `limitRequestRatioConstraint`: both are required and non-zero, and limit ÷ request may not
/// exceed the ratio. Compared in floating point exactly as there, so that a limit chosen at the
/// ratio is judged as the API server judges it.
fn ratio_constraint(
    kind: &'static str,
    resource: &str,
    ratio: Milli,
    request: Option<&Milli>,
    limit: Option<&Milli>,
) -> Result<(), BrokenConstraint> {
    let (Some(&request), Some(&limit)) = (request.filter(|r| **r != 0), limit.filter(|l| **l != 0)) else {
        return Err(BrokenConstraint::RatioWithoutBoth { kind, resource: resource.into() });
    };
    if within_ratio(request, limit, ratio) {
        Ok(())
    } else {
        Err(BrokenConstraint::AboveRatio { kind, resource: resource.into(), ratio, request, limit })
    }
}

pub fn within_ratio(request: Milli, limit: Milli, ratio: Milli) -> bool {
    (limit as f64 / request as f64) * 1000.0 <= ratio as f64
}

/// The highest limit that `ratio` allows for `request`.
pub fn highest_within_ratio(request: Milli, ratio: Milli) -> Milli {
    let mut limit = request.saturating_mul(ratio) / 1000;
    while limit > request && !within_ratio(request, limit, ratio) {
        limit -= 1;
    }
    limit.max(request)
}
