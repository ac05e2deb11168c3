//! What the webhook knows of the cluster's Nodes: a watch-fed cache, as for Jobs and CronJobs
//! (see `kube_resolver`), holding of each Node only what `node_fit` reads (name, labels, taints,
//! the kubelet's version, OS and architecture), so that it stays small on big clusters: a Node's
//! status alone lists every image on it. Until the first list has arrived, a Node list is read
//! directly, as the Job cache reads a Job it has not seen yet. When neither answers, the nodes
//! are not known, and the webhook injects nothing rather than risk a Pod on an old or foreign
//! node.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, NodeSpec, NodeStatus, NodeSystemInfo};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::ListParams;
use kube::runtime::reflector::Store;
use kube::{Api, Client};

use super::watch_cache::{is_ready, watch_into_cache};

/// Why the cluster's Nodes are not known.
#[derive(Debug, thiserror::Error)]
pub enum NodesUnavailable {
    #[error("no Kubernetes configuration")]
    NoKubernetes,
    #[error("listing Nodes: {0}")]
    List(#[source] kube::Error),
}

/// Every Node as far as known, or why they are not known.
pub type NodesFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<Arc<Node>>, NodesUnavailable>> + Send + 'a>>;

/// Where admission learns the cluster's Nodes.
pub trait Nodes: Send + Sync {
    fn nodes(&self) -> NodesFuture<'_>;
}

pub struct NodeCache {
    client: Client,
    store: Store<Node>,
}

impl NodeCache {
    /// Starts watching Nodes in the background.
    pub fn start(client: Client) -> NodeCache {
        let store = watch_into_cache(Api::<Node>::all(client.clone()), "Nodes", slim);
        NodeCache { client, store }
    }

    async fn current(&self) -> Result<Vec<Arc<Node>>, NodesUnavailable> {
        if is_ready(&self.store) {
            return Ok(self.store.state());
        }
        match Api::<Node>::all(self.client.clone()).list(&ListParams::default()).await {
            Ok(list) => Ok(list
                .items
                .into_iter()
                .map(|mut node| {
                    slim(&mut node);
                    Arc::new(node)
                })
                .collect()),
            Err(e) => Err(NodesUnavailable::List(e)),
        }
    }
}

impl Nodes for NodeCache {
    fn nodes(&self) -> NodesFuture<'_> {
        Box::pin(self.current())
    }
}

/// The nodes when there is no Kubernetes configuration at all: never known.
pub struct NoNodes;

impl Nodes for NoNodes {
    fn nodes(&self) -> NodesFuture<'_> {
        Box::pin(std::future::ready(Err(NodesUnavailable::NoKubernetes)))
    }
}

/// Keeps what `node_fit` and `node_affinity` read, and what the cache needs to key the Node.
fn slim(node: &mut Node) {
    let metadata = std::mem::take(&mut node.metadata);
    node.metadata = ObjectMeta {
        name: metadata.name,
        uid: metadata.uid,
        resource_version: metadata.resource_version,
        labels: metadata.labels,
        ..ObjectMeta::default()
    };
    let taints = node.spec.take().and_then(|spec| spec.taints);
    node.spec = Some(NodeSpec { taints, ..NodeSpec::default() });
    let info = node.status.take().and_then(|status| status.node_info).map(|info| NodeSystemInfo {
        kubelet_version: info.kubelet_version,
        architecture: info.architecture,
        operating_system: info.operating_system,
        ..NodeSystemInfo::default()
    });
    node.status = Some(NodeStatus { node_info: info, ..NodeStatus::default() });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_cached_node_keeps_what_the_decision_reads_and_nothing_else() {
        let mut node: Node = serde_json::from_value(json!({
            "metadata": {"name": "worker-1", "uid": "u", "resourceVersion": "7",
                         "labels": {"kubernetes.io/arch": "arm64"}, "annotations": {"big": "x".repeat(1000)}},
            "spec": {"podCIDR": "10.0.0.0/24", "taints": [{"key": "dedicated", "effect": "NoSchedule"}]},
            "status": {"images": [{"names": ["busybox"], "sizeBytes": 1}],
                       "nodeInfo": {"kubeletVersion": "v1.29.8-eks-a737599", "architecture": "arm64",
                                    "operatingSystem": "linux", "osImage": "Bottlerocket", "bootID": "b",
                                    "containerRuntimeVersion": "c", "kernelVersion": "k", "kubeProxyVersion": "",
                                    "machineID": "m", "systemUUID": "s"}}
        }))
        .unwrap();
        slim(&mut node);
        assert_eq!(
            serde_json::to_value(&node).unwrap(),
            json!({"apiVersion": "v1", "kind": "Node",
                   "metadata": {"name": "worker-1", "uid": "u", "resourceVersion": "7",
                                "labels": {"kubernetes.io/arch": "arm64"}},
                   "spec": {"taints": [{"key": "dedicated", "effect": "NoSchedule"}]},
                   "status": {"nodeInfo": {"kubeletVersion": "v1.29.8-eks-a737599", "architecture": "arm64",
                                           "operatingSystem": "linux", "osImage": "", "bootID": "",
                                           "containerRuntimeVersion": "", "kernelVersion": "", "kubeProxyVersion": "",
                                           "machineID": "", "systemUUID": ""}}})
        );
    }
}
