//! A Pod's resources as the API server adds them up: per container, and for the whole Pod with
//! native sidecars and init containers counted as the scheduler, LimitRanger and the quota
//! evaluator count them (plugin/pkg/admission/limitranger/admission.go `podRequests` and
//! `podLimits`, the same sums as component-helpers/resource/helpers.go `PodRequests`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::quantity::{self, Milli};

/// Quantities by resource name (`cpu`, `memory`, `ephemeral-storage`, ...), in thousandths.
pub type Amounts = BTreeMap<String, Milli>;

/// The resources that pod-level `spec.resources` may set (limitranger `supportedPodLevelResources`).
pub const POD_LEVEL_RESOURCES: [&str; 2] = ["cpu", "memory"];

/// One container's requests and limits; quantities that do not parse are left out (the API
/// server refuses such a Pod whatever is injected).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Demand {
    pub name: String,
    pub requests: Amounts,
    pub limits: Amounts,
    /// A native sidecar (`restartPolicy: Always` on an init container).
    pub sidecar: bool,
}

impl Demand {
    pub fn of(container: &Container) -> Demand {
        let resources = container.resources.as_ref();
        Demand {
            name: container.name.clone(),
            requests: amounts(resources.and_then(|r| r.requests.as_ref())),
            limits: amounts(resources.and_then(|r| r.limits.as_ref())),
            sidecar: container.restart_policy.as_deref() == Some("Always"),
        }
    }
}

/// The quantities of a list that parse.
pub fn amounts(list: Option<&BTreeMap<String, Quantity>>) -> Amounts {
    list.into_iter().flatten().filter_map(|(name, q)| Some((name.clone(), quantity::milli(&q.0)?))).collect()
}

/// The containers of a Pod, in the order the kubelet starts them.
#[derive(Debug, Clone, Default)]
pub struct PodDemand {
    pub init: Vec<Demand>,
    pub main: Vec<Demand>,
    /// `spec.resources`: the Pod-level requests and limits, when set.
    pub pod_requests: Amounts,
    pub pod_limits: Amounts,
}

impl PodDemand {
    pub fn of(spec: &PodSpec) -> PodDemand {
        let pod = spec.resources.as_ref();
        PodDemand {
            init: spec.init_containers.iter().flatten().map(Demand::of).collect(),
            main: spec.containers.iter().map(Demand::of).collect(),
            pod_requests: amounts(pod.and_then(|r| r.requests.as_ref())),
            pod_limits: amounts(pod.and_then(|r| r.limits.as_ref())),
        }
    }

    pub fn containers(&self) -> impl Iterator<Item = &Demand> {
        self.main.iter().chain(&self.init)
    }

    /// Whether `spec.resources` sets CPU or memory (component-helpers `IsPodLevelResourcesSet`).
    pub fn has_pod_level_resources(&self) -> bool {
        POD_LEVEL_RESOURCES.iter().any(|r| self.pod_requests.contains_key(*r) || self.pod_limits.contains_key(*r))
    }

    /// What the containers ask for together, ignoring `spec.resources`
    /// (`AggregateContainerRequests`).
    pub fn container_requests(&self) -> Amounts {
        aggregate(&self.init, &self.main, |d| &d.requests)
    }

    /// The Pod's requests: the containers' together, with `spec.resources` in place of them for
    /// the resources it sets (`podRequests`).
    pub fn requests(&self) -> Amounts {
        overridden(self.container_requests(), &self.pod_requests)
    }

    /// The Pod's limits, counted as its requests are (`podLimits`).
    pub fn limits(&self) -> Amounts {
        overridden(aggregate(&self.init, &self.main, |d| &d.limits), &self.pod_limits)
    }
}

/// Main containers and native sidecars add up; an init container needs what it asks plus the
/// sidecars started before it, and the Pod needs the larger of that and the running total.
fn aggregate(init: &[Demand], main: &[Demand], pick: impl Fn(&Demand) -> &Amounts) -> Amounts {
    let mut total = Amounts::new();
    for container in main {
        add(&mut total, pick(container));
    }
    let mut sidecars = Amounts::new();
    let mut init_peak = Amounts::new();
    for container in init {
        let during = if container.sidecar {
            add(&mut total, pick(container));
            add(&mut sidecars, pick(container));
            sidecars.clone()
        } else {
            let mut during = pick(container).clone();
            add(&mut during, &sidecars);
            during
        };
        for (name, amount) in during {
            let peak = init_peak.entry(name).or_insert(amount);
            *peak = (*peak).max(amount);
        }
    }
    for (name, amount) in init_peak {
        let value = total.entry(name).or_insert(amount);
        *value = (*value).max(amount);
    }
    total
}

fn add(total: &mut Amounts, more: &Amounts) {
    for (name, amount) in more {
        *total.entry(name.clone()).or_insert(0) += amount;
    }
}

fn overridden(mut amounts: Amounts, pod_level: &Amounts) -> Amounts {
    for name in POD_LEVEL_RESOURCES {
        if let Some(amount) = pod_level.get(name) {
            amounts.insert(name.to_string(), *amount);
        }
    }
    amounts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demand(name: &str, cpu: Milli, sidecar: bool) -> Demand {
        Demand { name: name.into(), requests: [("cpu".to_string(), cpu)].into(), limits: Amounts::new(), sidecar }
    }

    #[test]
    fn sidecars_add_up_and_init_containers_count_at_their_peak() {
        // The example of KEP-753's resource section: init 1 (100m) runs alone, sidecar 2 (50m)
        // then runs beside init 3 (300m) and beside the main container (200m).
        let pod = PodDemand {
            init: vec![demand("i1", 100, false), demand("s2", 50, true), demand("i3", 300, false)],
            main: vec![demand("main", 200, false)],
            ..PodDemand::default()
        };
        assert_eq!(pod.requests()["cpu"], 350);
        let quiet = PodDemand { init: vec![demand("i1", 100, false)], main: vec![demand("main", 200, false)], ..pod };
        assert_eq!(quiet.requests()["cpu"], 200);
    }

    #[test]
    fn pod_level_resources_stand_in_for_the_containers_they_set() {
        let pod = PodDemand {
            main: vec![demand("main", 200, false)],
            pod_requests: [("cpu".to_string(), 1000)].into(),
            ..PodDemand::default()
        };
        assert_eq!(pod.requests()["cpu"], 1000);
        assert_eq!(pod.container_requests()["cpu"], 200);
        assert!(pod.has_pod_level_resources());
    }
}
