//! What the webhook knows of each namespace's LimitRanges and ResourceQuotas, which judge the
//! patched Pod after the webhook: watch-fed caches of both, as for Nodes (see `node_cache`).
//! Until both first lists have arrived, the namespace's are read directly. When neither
//! answers, they are not known, and the webhook injects nothing rather than risk a Pod that
//! the API server would refuse.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{LimitRange, ResourceQuota};
use kube::api::ListParams;
use kube::runtime::reflector::Store;
use kube::{Api, Client};

use super::watch_cache::{is_ready, watch_into_cache};

/// A namespace's LimitRanges and ResourceQuotas.
#[derive(Debug, Clone, Default)]
pub struct Policies {
    pub limit_ranges: Vec<Arc<LimitRange>>,
    pub quotas: Vec<Arc<ResourceQuota>>,
}

/// Why a namespace's LimitRanges and ResourceQuotas are not known.
#[derive(Debug, thiserror::Error)]
pub enum PoliciesUnavailable {
    #[error("no Kubernetes configuration")]
    NoKubernetes,
    #[error("listing the {kind} of {namespace}: {source}")]
    List {
        /// `LimitRanges` or `ResourceQuotas`.
        kind: &'static str,
        namespace: String,
        source: kube::Error,
    },
}

pub type PoliciesFuture<'a> = Pin<Box<dyn Future<Output = Result<Policies, PoliciesUnavailable>> + Send + 'a>>;

/// Where admission learns a namespace's LimitRanges and ResourceQuotas.
pub trait NamespacePolicies: Send + Sync {
    fn of<'a>(&'a self, namespace: &'a str) -> PoliciesFuture<'a>;
}

pub struct PolicyCache {
    client: Client,
    limit_ranges: Store<LimitRange>,
    quotas: Store<ResourceQuota>,
}

impl PolicyCache {
    /// Starts watching LimitRanges and ResourceQuotas of every namespace in the background.
    pub fn start(client: Client) -> PolicyCache {
        PolicyCache {
            limit_ranges: watch_into_cache(Api::all(client.clone()), "LimitRanges", |_| ()),
            quotas: watch_into_cache(Api::all(client.clone()), "ResourceQuotas", |_| ()),
            client,
        }
    }

    async fn current(&self, namespace: &str) -> Result<Policies, PoliciesUnavailable> {
        if is_ready(&self.limit_ranges) && is_ready(&self.quotas) {
            let in_namespace = |ns: Option<&String>| ns.is_some_and(|ns| ns == namespace);
            return Ok(Policies {
                limit_ranges: self
                    .limit_ranges
                    .state()
                    .into_iter()
                    .filter(|r| in_namespace(r.metadata.namespace.as_ref()))
                    .collect(),
                quotas: self
                    .quotas
                    .state()
                    .into_iter()
                    .filter(|q| in_namespace(q.metadata.namespace.as_ref()))
                    .collect(),
            });
        }
        let limit_ranges = Api::<LimitRange>::namespaced(self.client.clone(), namespace)
            .list(&ListParams::default())
            .await
            .map_err(|source| PoliciesUnavailable::List { kind: "LimitRanges", namespace: namespace.into(), source })?;
        let quotas = Api::<ResourceQuota>::namespaced(self.client.clone(), namespace)
            .list(&ListParams::default())
            .await
            .map_err(|source| PoliciesUnavailable::List {
                kind: "ResourceQuotas",
                namespace: namespace.into(),
                source,
            })?;
        Ok(Policies {
            limit_ranges: limit_ranges.items.into_iter().map(Arc::new).collect(),
            quotas: quotas.items.into_iter().map(Arc::new).collect(),
        })
    }
}

impl NamespacePolicies for PolicyCache {
    fn of<'a>(&'a self, namespace: &'a str) -> PoliciesFuture<'a> {
        Box::pin(self.current(namespace))
    }
}

/// The policies when there is no Kubernetes configuration at all: never known.
pub struct NoPolicies;

impl NamespacePolicies for NoPolicies {
    fn of<'a>(&'a self, _namespace: &'a str) -> PoliciesFuture<'a> {
        Box::pin(std::future::ready(Err(PoliciesUnavailable::NoKubernetes)))
    }
}
