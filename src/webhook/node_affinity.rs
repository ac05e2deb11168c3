//! Which nodes a Pod may land on, judged from the Pod as admitted, the way the scheduler and the
//! kubelet judge it. The webhook uses it to ask only about the nodes that matter: a Pod pinned
//! to new amd64 nodes may be injected in a cluster that also has old or arm nodes.
//!
//! The rules, and the Kubernetes source each follows:
//! - `spec.nodeName`: the scheduler is bypassed and the kubelet of that node runs the Pod
//!   (pkg/scheduler/framework/plugins/nodename/node_name.go);
//! - `spec.nodeSelector`: every pair is a label the node has with that value, and the required
//!   node affinity's `nodeSelectorTerms` are ORed, a term's `matchExpressions` and `matchFields`
//!   ANDed, an empty term matching nothing and a term with an invalid requirement matching
//!   nothing (k8s.io/component-helpers/scheduling/corev1/nodeaffinity/nodeaffinity.go,
//!   `GetRequiredNodeAffinity`, `newNodeSelectorTerm`, `nodeSelectorRequirementsAsSelector`);
//! - each operator as k8s.io/apimachinery/pkg/labels/selector.go `Requirement.Matches`: `In`,
//!   `NotIn` (true for a node without the label), `Exists`, `DoesNotExist`, `Gt` and `Lt`
//!   (the label and the one value read as base-10 int64, compared strictly);
//! - `matchFields` on `metadata.name` with `In` or `NotIn` and exactly one value
//!   (nodeaffinity.go `nodeSelectorRequirementsAsFieldSelector`);
//! - taints with effect `NoSchedule` or `NoExecute` that the Pod does not tolerate keep the
//!   scheduler away (pkg/scheduler/framework/plugins/tainttoleration/taint_toleration.go, with
//!   k8s.io/api/core/v1/toleration.go `ToleratesTaint`); a Pod with `spec.nodeName` meets only
//!   `NoExecute` (pkg/kubelet/lifecycle/predicate.go).
//!
//! Where a rule cannot be read for sure, the node counts as one the Pod may land on: the webhook
//! then errs on the side of not injecting. For the same reason the taints the node lifecycle
//! controller sets and lifts by itself (`node.kubernetes.io/not-ready`, `unreachable`,
//! `unschedulable` from a cordon, the pressure taints, the cloud provider's `uninitialized`)
//! are not counted: a cordoned or briefly unready node takes Pods again soon after.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, NodeSelectorRequirement, NodeSelectorTerm, PodSpec, Taint, Toleration};

/// Taint key prefixes of taints that come and go with a node's condition, not its purpose.
const TRANSIENT_TAINT_PREFIXES: [&str; 2] = ["node.kubernetes.io/", "node.cloudprovider.kubernetes.io/"];

/// Whether the Pod of `spec` may run on `node`.
pub fn may_land_on(spec: &PodSpec, node: &Node) -> bool {
    let name = node.metadata.name.as_deref().unwrap_or_default();
    let no_labels = BTreeMap::new();
    let labels = node.metadata.labels.as_ref().unwrap_or(&no_labels);
    let bound = spec.node_name.as_deref().filter(|n| !n.is_empty());
    if bound.is_some_and(|bound| bound != name) {
        return false;
    }
    let selector = spec.node_selector.iter().flatten().all(|(key, value)| labels.get(key) == Some(value));
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref());
    let affinity = required.is_none_or(|r| r.node_selector_terms.iter().any(|t| term_matches(t, name, labels)));
    let effects: &[&str] = if bound.is_some() { &["NoExecute"] } else { &["NoSchedule", "NoExecute"] };
    let tolerations = spec.tolerations.as_deref().unwrap_or_default();
    let taints = node.spec.as_ref().and_then(|s| s.taints.as_deref()).unwrap_or_default();
    let kept_away = taints
        .iter()
        .filter(|t| effects.contains(&t.effect.as_str()) && !is_transient(t))
        .any(|t| !tolerations.iter().any(|toleration| tolerates(toleration, t)));
    selector && affinity && !kept_away
}

/// An empty term matches nothing; so does a term with a requirement the API would not parse.
fn term_matches(term: &NodeSelectorTerm, name: &str, labels: &BTreeMap<String, String>) -> bool {
    let expressions = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if expressions.is_empty() && fields.is_empty() {
        return false;
    }
    expressions.iter().all(|r| label_matches(r, labels) == Some(true))
        && fields.iter().all(|r| field_matches(r, name) == Some(true))
}

/// `None` when the requirement is invalid (the whole term then matches nothing).
fn label_matches(requirement: &NodeSelectorRequirement, labels: &BTreeMap<String, String>) -> Option<bool> {
    let values = requirement.values.as_deref().unwrap_or_default();
    let value = labels.get(&requirement.key);
    match requirement.operator.as_str() {
        "In" if !values.is_empty() => Some(value.is_some_and(|v| values.contains(v))),
        "NotIn" if !values.is_empty() => Some(value.is_none_or(|v| !values.contains(v))),
        "Exists" if values.is_empty() => Some(value.is_some()),
        "DoesNotExist" if values.is_empty() => Some(value.is_none()),
        operator @ ("Gt" | "Lt") => {
            let [bound] = values else { return None };
            let bound: i64 = bound.parse().ok()?;
            let Some(Ok(have)) = value.map(|v| v.parse::<i64>()) else { return Some(false) };
            Some(if operator == "Gt" { have > bound } else { have < bound })
        }
        _ => None,
    }
}

fn field_matches(requirement: &NodeSelectorRequirement, name: &str) -> Option<bool> {
    let [value] = requirement.values.as_deref().unwrap_or_default() else { return None };
    // A field the node does not have reads as empty, as fields.Set does.
    let field = if requirement.key == "metadata.name" { name } else { "" };
    match requirement.operator.as_str() {
        "In" => Some(field == value.as_str()),
        "NotIn" => Some(field != value.as_str()),
        _ => None,
    }
}

/// k8s.io/api/core/v1/toleration.go `ToleratesTaint`. An operator this code does not know
/// (newer Kubernetes adds some) counts as tolerating: the node is then among those the Pod may
/// land on, which can only keep the webhook from injecting.
fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    if toleration.effect.as_deref().is_some_and(|e| !e.is_empty() && e != taint.effect) {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or_default();
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or_default() {
        "Exists" => true,
        "" | "Equal" => toleration.value.as_deref().unwrap_or_default() == taint.value.as_deref().unwrap_or_default(),
        _ => true,
    }
}

fn is_transient(taint: &Taint) -> bool {
    TRANSIENT_TAINT_PREFIXES.iter().any(|prefix| taint.key.starts_with(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn node(name: &str, labels: Value, taints: Value) -> Node {
        serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}, "spec": {"taints": taints}}))
            .unwrap()
    }

    fn pod(spec: Value) -> PodSpec {
        let mut spec = spec;
        spec["containers"] = json!([{"name": "main"}]);
        serde_json::from_value(spec).unwrap()
    }

    fn affinity(terms: Value) -> Value {
        json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}})
    }

    fn amd64() -> Node {
        node("a", json!({"kubernetes.io/arch": "amd64", "pool": "batch", "cores": "16"}), json!([]))
    }

    fn arm64() -> Node {
        node("b", json!({"kubernetes.io/arch": "arm64", "cores": "4"}), json!([]))
    }

    #[test]
    fn a_pod_without_constraints_may_land_anywhere() {
        assert!(may_land_on(&pod(json!({})), &amd64()));
        assert!(may_land_on(&pod(json!({})), &node("bare", json!(null), json!(null))));
    }

    #[test]
    fn the_node_selector_requires_every_pair() {
        let spec = pod(json!({"nodeSelector": {"kubernetes.io/arch": "amd64", "pool": "batch"}}));
        assert!(may_land_on(&spec, &amd64()));
        assert!(!may_land_on(&spec, &arm64()));
        let spec = pod(json!({"nodeSelector": {"kubernetes.io/arch": "amd64", "pool": "web"}}));
        assert!(!may_land_on(&spec, &amd64()));
    }

    #[test]
    fn terms_are_ored_and_expressions_within_a_term_anded() {
        let either = pod(json!({"affinity": affinity(json!([
            {"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
                                  {"key": "pool", "operator": "In", "values": ["web"]}]},
            {"matchExpressions": [{"key": "cores", "operator": "Lt", "values": ["8"]}]}]))}));
        assert!(!may_land_on(&either, &amd64()), "the first term fails on pool, the second on cores");
        assert!(may_land_on(&either, &arm64()), "the second term");
    }

    #[test]
    fn each_operator_as_the_label_selector_reads_it() {
        let one = |requirement: Value| pod(json!({"affinity": affinity(json!([{"matchExpressions": [requirement]}]))}));
        let cases = [
            (json!({"key": "pool", "operator": "In", "values": ["batch", "web"]}), true, false),
            (json!({"key": "pool", "operator": "NotIn", "values": ["web"]}), true, true),
            (json!({"key": "pool", "operator": "NotIn", "values": ["batch"]}), false, true),
            (json!({"key": "pool", "operator": "Exists"}), true, false),
            (json!({"key": "pool", "operator": "DoesNotExist"}), false, true),
            (json!({"key": "cores", "operator": "Gt", "values": ["4"]}), true, false),
            (json!({"key": "cores", "operator": "Lt", "values": ["16"]}), false, true),
            // Invalid requirements: the term matches nothing.
            (json!({"key": "pool", "operator": "In", "values": []}), false, false),
            (json!({"key": "pool", "operator": "Exists", "values": ["batch"]}), false, false),
            (json!({"key": "cores", "operator": "Gt", "values": ["four"]}), false, false),
            (json!({"key": "cores", "operator": "Gt", "values": ["1", "2"]}), false, false),
            (json!({"key": "pool", "operator": "Matches", "values": ["b.*"]}), false, false),
        ];
        for (requirement, on_amd64, on_arm64) in cases {
            let spec = one(requirement.clone());
            assert_eq!(
                (may_land_on(&spec, &amd64()), may_land_on(&spec, &arm64())),
                (on_amd64, on_arm64),
                "{requirement}"
            );
        }
        let not_a_number = node("c", json!({"cores": "many"}), json!([]));
        assert!(!may_land_on(&one(json!({"key": "cores", "operator": "Gt", "values": ["1"]})), &not_a_number));
    }

    #[test]
    fn an_empty_term_matches_nothing_and_fields_match_the_node_name() {
        let empty = pod(json!({"affinity": affinity(json!([{}]))}));
        assert!(!may_land_on(&empty, &amd64()));
        let by_name = |op: &str| {
            pod(
                json!({"affinity": affinity(json!([{"matchFields": [{"key": "metadata.name", "operator": op, "values": ["a"]}]}]))}),
            )
        };
        assert!(may_land_on(&by_name("In"), &amd64()) && !may_land_on(&by_name("In"), &arm64()));
        assert!(!may_land_on(&by_name("NotIn"), &amd64()) && may_land_on(&by_name("NotIn"), &arm64()));
        assert!(!may_land_on(&by_name("Exists"), &amd64()), "matchFields knows In and NotIn only");
    }

    #[test]
    fn node_name_pins_the_pod_and_still_meets_the_selector() {
        assert!(may_land_on(&pod(json!({"nodeName": "a"})), &amd64()));
        assert!(!may_land_on(&pod(json!({"nodeName": "a"})), &arm64()));
        assert!(!may_land_on(&pod(json!({"nodeName": "a", "nodeSelector": {"pool": "web"}})), &amd64()));
    }

    #[test]
    fn untolerated_durable_taints_keep_the_pod_away() {
        let dedicated = node("gpu", json!({}), json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]));
        assert!(!may_land_on(&pod(json!({})), &dedicated));
        let tolerating = |t: Value| pod(json!({"tolerations": [t]}));
        assert!(may_land_on(&tolerating(json!({"key": "dedicated", "operator": "Equal", "value": "gpu"})), &dedicated));
        assert!(may_land_on(&tolerating(json!({"key": "dedicated", "operator": "Exists"})), &dedicated));
        assert!(may_land_on(&tolerating(json!({"operator": "Exists"})), &dedicated), "tolerates everything");
        assert!(!may_land_on(&tolerating(json!({"key": "dedicated", "value": "cpu"})), &dedicated));
        let wrong_effect = json!({"key": "dedicated", "operator": "Exists", "effect": "NoExecute"});
        assert!(!may_land_on(&tolerating(wrong_effect), &dedicated));
        // PreferNoSchedule does not keep a Pod away; nodeName bypasses NoSchedule.
        let preferred = node("p", json!({}), json!([{"key": "dedicated", "effect": "PreferNoSchedule"}]));
        assert!(may_land_on(&pod(json!({})), &preferred));
        assert!(may_land_on(&pod(json!({"nodeName": "gpu"})), &dedicated));
        // A cordoned or unready node takes Pods again soon: it still counts.
        let cordoned =
            node("c", json!({}), json!([{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]));
        assert!(may_land_on(&pod(json!({})), &cordoned));
    }
}
