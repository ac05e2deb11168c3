//! One admission decision, from request to answer: select, resolve, inject. Every failure on
//! the way allows the Pod unchanged with a warning: a CronJob never fails or waits because of
//! cronpush (the configuration's `failurePolicy: Ignore` covers the webhook being down).

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::core::admission::AdmissionRequest;

use super::admission::Answer;
use super::injection::{self, InjectionConfig};
use super::resolve::{self, FactsSource, Resolution, Resolve};
use super::selection::{self, SkipReason};

pub struct Admitter {
    pub injection: InjectionConfig,
    pub excluded_namespaces: Vec<String>,
    pub resolver: Box<dyn Resolve>,
    /// How long to wait for the API; well under the webhook's `timeoutSeconds`.
    pub resolve_timeout: Duration,
}

/// What happened, for the webhook's own metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Injected(FactsSource),
    Skipped(SkipReason),
}

impl Admitter {
    pub async fn admit(&self, request: &AdmissionRequest<Pod>) -> (Answer, Outcome) {
        let candidate = match selection::select(request, &self.excluded_namespaces) {
            Ok(candidate) => candidate,
            Err(reason) => return (Answer::default(), Outcome::Skipped(reason)),
        };
        if let Some(why) = self.resolver.unsupported() {
            let answer = Answer { patch: None, warnings: vec![format!("cronpush: not injected: {why}")] };
            return (answer, Outcome::Skipped(SkipReason::UnsupportedKubernetes));
        }
        let mut warnings = Vec::new();
        let resolution = tokio::time::timeout(self.resolve_timeout, self.resolver.resolve(&candidate))
            .await
            .unwrap_or_else(|_| Resolution::Unreachable(format!("no answer within {:?}", self.resolve_timeout)));
        let facts = match resolution {
            Resolution::Run(facts) => facts,
            Resolution::NotCronJob => return (Answer::default(), Outcome::Skipped(SkipReason::NotCronJobPod)),
            Resolution::Unreachable(why) => match resolve::from_job_name(&candidate.job_name) {
                Some(facts) => {
                    warnings
                        .push(format!("cronpush: Kubernetes API unreachable ({why}); CronJob taken from the Job name"));
                    facts
                }
                None => {
                    return (
                        Answer { patch: None, warnings: vec![format!("cronpush: not injected: {why}")] },
                        Outcome::Skipped(SkipReason::NotCronJobPod),
                    );
                }
            },
        };
        let pod = request.object.as_ref().expect("selection passed only requests with a Pod");
        match injection::patch(pod, &facts, &self.injection) {
            Ok(injection) => {
                warnings.extend(injection.warnings);
                (Answer { patch: Some(injection.ops), warnings }, Outcome::Injected(facts.source))
            }
            Err(e) => {
                warnings.push(format!("cronpush: not injected: {e}"));
                (Answer { patch: None, warnings }, Outcome::Skipped(SkipReason::NameCollision))
            }
        }
    }
}
