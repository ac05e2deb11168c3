//! Whether the injected containers can run on every node the Pod may land on (see
//! `node_affinity`): a kubelet of 1.29 or newer, since older ones refuse a native sidecar (1.28)
//! or run it as an init container that never exits (1.27 and older), and a node platform the
//! image given to `--image` is built for. Where either fails, nothing is injected.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, PodSpec};

use super::node_affinity::may_land_on;
use super::resolve::MINIMUM_MINOR;

/// The label the kubelet sets from the architecture it was built for (`runtime.GOARCH`).
pub const ARCH_LABEL: &str = "kubernetes.io/arch";
/// The label the kubelet sets from its operating system (`runtime.GOOS`).
pub const OS_LABEL: &str = "kubernetes.io/os";

/// Why the Pod may land on a node where the injected containers would break it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeMisfit {
    /// The node's kubelet is older than 1.29, or reports a version that cannot be read.
    OldKubelet { node: String, version: String },
    /// The node's platform is not among those the image is built for.
    Platform { node: String, platform: String },
}

impl fmt::Display for NodeMisfit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeMisfit::OldKubelet { node, version } if kubelet_minor(version).is_none() => {
                write!(f, "node {node} reports kubelet version {version:?}, which cronpush cannot read")
            }
            NodeMisfit::OldKubelet { node, version } => {
                write!(f, "node {node} runs kubelet {version}; native sidecars need 1.{MINIMUM_MINOR}+")
            }
            NodeMisfit::Platform { node, platform } => {
                write!(f, "node {node} is {platform}, which the image is not built for (--image-platforms)")
            }
        }
    }
}

/// The first misfit (by node name, so that the answer is stable) among the nodes the Pod may
/// land on; old kubelets first. No node at all is no misfit: a Pod that can land nowhere yet
/// breaks nothing.
pub fn misfit(spec: &PodSpec, nodes: &[Arc<Node>], platforms: &[Platform]) -> Option<NodeMisfit> {
    let candidates: Vec<&Node> =
        nodes.iter().map(|node| node.as_ref()).filter(|node| may_land_on(spec, node)).collect();
    first_by_node(candidates.iter().filter_map(|node| old_kubelet(node)))
        .or_else(|| first_by_node(candidates.iter().filter_map(|node| foreign_platform(node, platforms))))
}

fn old_kubelet(node: &Node) -> Option<NodeMisfit> {
    let info = node.status.as_ref().and_then(|s| s.node_info.as_ref());
    let version = info.map(|i| i.kubelet_version.clone()).unwrap_or_default();
    let new_enough = kubelet_minor(&version).is_some_and(|(major, minor)| major > 1 || minor >= MINIMUM_MINOR);
    (!new_enough).then(|| NodeMisfit::OldKubelet { node: name(node), version })
}

fn foreign_platform(node: &Node, platforms: &[Platform]) -> Option<NodeMisfit> {
    let (os, arch) = node_platform(node);
    let built = platforms.iter().any(|p| p.os == os && p.arch == arch);
    (!built).then(|| NodeMisfit::Platform { node: name(node), platform: format!("{os}/{arch}") })
}

fn first_by_node(found: impl Iterator<Item = NodeMisfit>) -> Option<NodeMisfit> {
    found.min_by(|a, b| node_of(a).cmp(node_of(b)))
}

fn node_of(misfit: &NodeMisfit) -> &str {
    match misfit {
        NodeMisfit::OldKubelet { node, .. } | NodeMisfit::Platform { node, .. } => node,
    }
}

fn name(node: &Node) -> String {
    node.metadata.name.clone().unwrap_or_default()
}

/// The node's OS and architecture from its labels, else from what its kubelet reports in
/// `status.nodeInfo`; a part known from neither is `unknown`, which no image is built for.
fn node_platform(node: &Node) -> (String, String) {
    let label = |key: &str| node.metadata.labels.as_ref().and_then(|l| l.get(key)).filter(|v| !v.is_empty()).cloned();
    let info = node.status.as_ref().and_then(|s| s.node_info.as_ref());
    let reported = |value: Option<&String>| value.filter(|v| !v.is_empty()).cloned();
    let os = label(OS_LABEL).or_else(|| reported(info.map(|i| &i.operating_system)));
    let arch = label(ARCH_LABEL).or_else(|| reported(info.map(|i| &i.architecture)));
    (os.unwrap_or_else(|| "unknown".into()), arch.unwrap_or_else(|| "unknown".into()))
}

/// Major and minor of a kubelet version as nodes report it: `v1.30.4`, `v1.29.8-eks-a737599`,
/// `v1.31.2+k3s1`, `v1.30.4-gke.1348000`, with or without the `v`. `None` when it does not
/// start with `<major>.<minor>`.
pub fn kubelet_minor(version: &str) -> Option<(u32, u32)> {
    let version = version.trim();
    let version = version.strip_prefix('v').unwrap_or(version);
    let mut parts = version.splitn(3, '.');
    let major = parts.next()?;
    let minor = parts.next()?;
    // The minor ends at the patch's dot, or at a suffix on a version without a patch.
    let minor = minor.split(['-', '+']).next()?;
    let number = |s: &str| (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten();
    Some((number(major)?, number(minor)?))
}

/// A platform an image is built for, as `docker buildx --platform` names it: `os/arch` or
/// `os/arch/variant`. Nodes carry no variant (`kubernetes.io/arch` is `arm` for every 32-bit
/// ARM), so the variant is kept for the record and not compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
}

/// A platform that is not written `os/arch` or `os/arch/variant`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is no platform: write os/arch or os/arch/variant in lower case, as in linux/amd64 or linux/arm/v7")]
pub struct NotAPlatform(String);

impl FromStr for Platform {
    type Err = NotAPlatform;

    fn from_str(text: &str) -> Result<Platform, NotAPlatform> {
        let word = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let parts: Vec<&str> = text.trim().split('/').collect();
        match parts.as_slice() {
            [os, arch] if word(os) && word(arch) => {
                Ok(Platform { os: os.to_string(), arch: arch.to_string(), variant: None })
            }
            [os, arch, variant] if word(os) && word(arch) && word(variant) => {
                Ok(Platform { os: os.to_string(), arch: arch.to_string(), variant: Some(variant.to_string()) })
            }
            _ => Err(NotAPlatform(text.to_string())),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn reads_the_versions_real_nodes_report() {
        for (version, expected) in [
            ("v1.30.4", Some((1, 30))),
            ("v1.29.8-eks-a737599", Some((1, 29))),
            ("v1.31.2+k3s1", Some((1, 31))),
            ("v1.30.4-gke.1348000", Some((1, 30))),
            ("v1.28.15", Some((1, 28))),
            ("1.33.1", Some((1, 33))),
            ("v1.32+rke2r1", Some((1, 32))),
            ("v1.30.0-alpha.1", Some((1, 30))),
            ("v2.0.0", Some((2, 0))),
            ("", None),
            ("v1", None),
            ("unknown", None),
            ("v1.x.3", None),
            ("v1.-29.0", None),
            ("v1..0", None),
        ] {
            assert_eq!(kubelet_minor(version), expected, "{version:?}");
        }
    }

    #[test]
    fn platforms_parse_and_bad_ones_say_how_to_write_them() {
        let arm: Platform = "linux/arm/v7".parse().unwrap();
        assert_eq!((arm.os.as_str(), arm.arch.as_str(), arm.variant.as_deref()), ("linux", "arm", Some("v7")));
        assert_eq!(" linux/amd64 ".parse::<Platform>().unwrap().to_string(), "linux/amd64");
        for bad in ["", "linux", "amd64", "linux/", "/amd64", "Linux/AMD64", "linux/amd64/v1/x", "linux amd64"] {
            let e = bad.parse::<Platform>().unwrap_err().to_string();
            assert!(e.contains("os/arch") && e.contains(&format!("{bad:?}")), "{bad:?}: {e}");
        }
    }

    fn node(name: &str, version: &str, labels: Value) -> Arc<Node> {
        Arc::new(
            serde_json::from_value(json!({"metadata": {"name": name, "labels": labels},
                "status": {"nodeInfo": {"kubeletVersion": version, "architecture": "amd64", "operatingSystem": "linux",
                    "bootID": "", "containerRuntimeVersion": "", "kernelVersion": "", "kubeProxyVersion": "",
                    "machineID": "", "osImage": "", "systemUUID": ""}}}))
            .unwrap(),
        )
    }

    fn spec(node_selector: Value) -> PodSpec {
        serde_json::from_value(json!({"containers": [{"name": "main"}], "nodeSelector": node_selector})).unwrap()
    }

    fn shipped() -> Vec<Platform> {
        vec!["linux/amd64".parse().unwrap(), "linux/arm64".parse().unwrap()]
    }

    #[test]
    fn only_the_nodes_the_pod_may_land_on_count() {
        let nodes = [
            node("new", "v1.31.2+k3s1", json!({"pool": "new", "kubernetes.io/arch": "arm64"})),
            node("old", "v1.28.15", json!({"pool": "old"})),
            node("older", "v1.27.3", json!({"pool": "old"})),
        ];
        let anywhere = misfit(&spec(json!({})), &nodes, &shipped()).unwrap();
        assert_eq!(anywhere, NodeMisfit::OldKubelet { node: "old".into(), version: "v1.28.15".into() });
        assert_eq!(anywhere.to_string(), "node old runs kubelet v1.28.15; native sidecars need 1.29+");
        assert_eq!(misfit(&spec(json!({"pool": "new"})), &nodes, &shipped()), None);
        assert_eq!(misfit(&spec(json!({"pool": "none"})), &nodes, &shipped()), None, "no node: nothing to break");
        assert_eq!(misfit(&spec(json!({})), &[], &shipped()), None);
    }

    #[test]
    fn an_unreadable_version_counts_as_old() {
        let nodes = [node("odd", "custom-build", json!({}))];
        let found = misfit(&spec(json!({})), &nodes, &shipped()).unwrap();
        assert_eq!(found.to_string(), "node odd reports kubelet version \"custom-build\", which cronpush cannot read");
    }

    #[test]
    fn a_node_of_another_platform_is_a_misfit_from_its_label_or_its_status() {
        let nodes = [
            node("x86", "v1.33.1", json!({"kubernetes.io/arch": "amd64", "kubernetes.io/os": "linux"})),
            node("pi", "v1.33.1", json!({"kubernetes.io/arch": "arm", "kubernetes.io/os": "linux"})),
        ];
        let found = misfit(&spec(json!({})), &nodes, &shipped()).unwrap();
        assert_eq!(found, NodeMisfit::Platform { node: "pi".into(), platform: "linux/arm".into() });
        let with_arm = [shipped(), vec!["linux/arm/v7".parse().unwrap()]].concat();
        assert_eq!(misfit(&spec(json!({})), &nodes, &with_arm), None, "the variant is not compared");
        let arm_only = ["linux/arm64".parse().unwrap()];
        let found = misfit(&spec(json!({"kubernetes.io/arch": "amd64"})), &nodes, &arm_only).unwrap();
        assert_eq!(found, NodeMisfit::Platform { node: "x86".into(), platform: "linux/amd64".into() });
        // Without labels, what the kubelet reports in status.nodeInfo.
        let unlabelled = [node("bare", "v1.33.1", json!({}))];
        assert!(misfit(&spec(json!({})), &unlabelled, &arm_only).unwrap().to_string().contains("linux/amd64"));
        // Old kubelets are reported before platforms.
        let both =
            [node("a-arm", "v1.33.1", json!({"kubernetes.io/arch": "arm"})), node("z-old", "v1.28.0", json!({}))];
        assert!(matches!(misfit(&spec(json!({})), &both, &shipped()), Some(NodeMisfit::OldKubelet { .. })));
    }
}
