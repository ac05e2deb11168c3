//! One admission decision, from request to answer: select, resolve, check the nodes the Pod may
//! land on, choose resources that the namespace's policies accept, inject. Every failure on
//! the way allows the Pod unchanged with a warning: a CronJob never fails or waits because of
//! cronpush (the configuration's `failurePolicy: Ignore` covers the webhook being down).

use std::time::Duration;

use k8s_openapi::api::core::v1::{PodSpec, ResourceRequirements};
use tokio::time::{Instant, timeout_at};

use super::admission_review::{Answer, Review};
use super::created_runs::CreatedRuns;
use super::injection::{self, InjectionConfig, InjectionError};
use super::namespace_policies::NamespacePolicies;
use super::node_cache::Nodes;
use super::node_fit::{self, NodeMisfit, Platform};
use super::resolve::{self, FactsSource, Resolution, Resolve};
use super::resource_fit;
use super::selection::{self, SkipReason};
use crate::pushers::group::Group;

pub struct Admitter {
    pub injection: InjectionConfig,
    pub excluded_namespaces: Vec<String>,
    pub resolver: Box<dyn Resolve>,
    pub nodes: Box<dyn Nodes>,
    /// The namespaces' LimitRanges and ResourceQuotas.
    pub policies: Box<dyn NamespacePolicies>,
    /// The platforms the image of the injected containers is built for.
    pub image_platforms: Vec<Platform>,
    /// How long to wait for the API, for the run's facts and the nodes together; well under
    /// the webhook's `timeoutSeconds`.
    pub resolve_timeout: Duration,
    /// Where the slots of injected runs go; none without a gateway to tell (tests).
    pub created_runs: Option<CreatedRuns>,
}

/// What happened, for the webhook's own metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Injected(FactsSource),
    Skipped(SkipReason),
}

impl Admitter {
    pub async fn admit(&self, review: &Review) -> (Answer, Outcome) {
        let request = &review.request;
        let candidate = match selection::select(request, &self.excluded_namespaces) {
            Ok(candidate) => candidate,
            Err(SkipReason::MalformedPod) => {
                let why = match &review.undecodable_pod {
                    Some(e) => format!("the Pod does not decode: {e}"),
                    None => "the review carries no Pod".to_string(),
                };
                return not_injected(vec![], why, SkipReason::MalformedPod);
            }
            Err(reason) => return (Answer::default(), Outcome::Skipped(reason)),
        };
        if let Some(why) = self.resolver.unsupported() {
            return not_injected(vec![], why, SkipReason::UnsupportedKubernetes);
        }
        let mut warnings = Vec::new();
        let deadline = Instant::now() + self.resolve_timeout;
        let resolution = timeout_at(deadline, self.resolver.resolve(&candidate))
            .await
            .unwrap_or_else(|_| Resolution::Unreachable(format!("no answer within {:?}", self.resolve_timeout)));
        let facts = match resolution {
            Resolution::Run(facts) => *facts,
            Resolution::NotCronJob => return (Answer::default(), Outcome::Skipped(SkipReason::NotCronJobPod)),
            Resolution::UnknownOwner(why) => return not_injected(warnings, why, SkipReason::UnknownOwner),
            Resolution::Unreachable(why) => match resolve::from_job_name(&candidate.job_name) {
                Some(facts) => {
                    warnings
                        .push(format!("cronpush: Kubernetes API unreachable ({why}); CronJob taken from the Job name"));
                    facts
                }
                None => {
                    let why = format!("Kubernetes API unreachable ({why}) and the Job name names no CronJob run");
                    return not_injected(warnings, why, SkipReason::ApiUnreachable);
                }
            },
        };
        let pod = request.object.as_ref().expect("selection passed only requests with a Pod");
        // The Pod's own reasons first, then the nodes, then the namespace's policies.
        let spec = match injection::refusal(pod) {
            Ok(spec) => spec,
            Err(e) => return not_injected(warnings, &e, refusal_reason(&e)),
        };
        if let Err((why, reason)) = self.check_nodes(spec, deadline).await {
            return not_injected(warnings, why, reason);
        }
        let resources = match self.fit_resources(&candidate.namespace, spec, deadline).await {
            Ok(resources) => resources,
            Err((why, reason)) => return not_injected(warnings, why, reason),
        };
        match injection::patch_with(pod, &facts, &self.injection, &resources) {
            Ok(injection) => {
                let patch = injection.patch_json();
                warnings.extend(injection.warnings);
                // A dry run creates nothing.
                if let (Some(created), Some(slot), false) = (&self.created_runs, facts.scheduled_time, request.dry_run)
                {
                    let group = Group {
                        job: self.injection.job_label.clone(),
                        cluster: self.injection.cluster_name.clone(),
                        namespace: candidate.namespace.clone(),
                        cronjob: facts.cronjob.clone(),
                    };
                    created.created(group, slot);
                }
                (Answer { patch: Some(patch), warnings }, Outcome::Injected(facts.source))
            }
            Err(e) => not_injected(warnings, &e, refusal_reason(&e)),
        }
    }

    /// The injected containers' resources, chosen so that the namespace's LimitRanges and
    /// ResourceQuotas accept the patched Pod (see `resource_fit`).
    async fn fit_resources(
        &self,
        namespace: &str,
        spec: &PodSpec,
        deadline: Instant,
    ) -> Result<ResourceRequirements, (String, SkipReason)> {
        let policies = match timeout_at(deadline, self.policies.of(namespace)).await {
            Ok(Ok(policies)) => policies,
            Ok(Err(why)) => {
                let why = format!("the namespace's LimitRanges and ResourceQuotas are not known ({why})");
                return Err((why, SkipReason::PoliciesUnknown));
            }
            Err(_) => {
                let why = format!(
                    "the namespace's LimitRanges and ResourceQuotas are not known (no answer within {:?})",
                    self.resolve_timeout
                );
                return Err((why, SkipReason::PoliciesUnknown));
            }
        };
        resource_fit::fit(spec, &self.injection, &policies)
            .map_err(|why| (why.to_string(), SkipReason::ResourcesRefused))
    }

    /// Whether every node the Pod may land on runs what the injection needs.
    async fn check_nodes(&self, spec: &PodSpec, deadline: Instant) -> Result<(), (String, SkipReason)> {
        let nodes = match timeout_at(deadline, self.nodes.nodes()).await {
            Ok(Ok(nodes)) => nodes,
            Ok(Err(why)) => {
                return Err((format!("the cluster's nodes are not known ({why})"), SkipReason::NodesUnknown));
            }
            Err(_) => {
                let why = format!("the cluster's nodes are not known (no answer within {:?})", self.resolve_timeout);
                return Err((why, SkipReason::NodesUnknown));
            }
        };
        match node_fit::misfit(spec, &nodes, &self.image_platforms) {
            None => Ok(()),
            Some(misfit @ NodeMisfit::OldKubelet { .. }) => Err((misfit.to_string(), SkipReason::OldKubelet)),
            Some(misfit @ NodeMisfit::Platform { .. }) => Err((misfit.to_string(), SkipReason::UnsupportedPlatform)),
        }
    }
}

fn refusal_reason(e: &InjectionError) -> SkipReason {
    match e {
        InjectionError::VolumeNameTaken(_) | InjectionError::ContainerNameTaken(_) => SkipReason::NameCollision,
        InjectionError::WindowsPod => SkipReason::WindowsPod,
        InjectionError::NoSpec => SkipReason::MalformedPod,
    }
}

/// The Pod allowed unchanged, with the warnings so far and one saying why nothing was injected.
fn not_injected(mut warnings: Vec<String>, why: impl std::fmt::Display, reason: SkipReason) -> (Answer, Outcome) {
    warnings.push(format!("cronpush: not injected: {why}"));
    (Answer { patch: None, warnings }, Outcome::Skipped(reason))
}
