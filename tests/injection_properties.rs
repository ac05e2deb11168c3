//! Properties of the injection over many generated Pods (init containers, native sidecars of
//! other tools, volumes, annotations, security contexts, names that collide with ours): the
//! patch always applies, nothing the user wrote is changed or lost, our containers come last,
//! and a second admission of the result injects nothing.

use cronpush::webhook::admission_review;
use cronpush::webhook::injection;
use cronpush::webhook::resolve::{FactsSource, RunFacts};
use cronpush::webhook::selection::{self, SkipReason};
use k8s_openapi::api::core::v1::Pod;
use proptest::prelude::*;
use serde_json::{Value, json};
use support::webhook::injection_config;

fn facts() -> RunFacts {
    RunFacts {
        cronjob: "c".into(),
        job: "c-29396160".into(),
        scheduled_time: Some(1),
        source: FactsSource::Api,
        ..RunFacts::default()
    }
}

fn container() -> impl Strategy<Value = Value> {
    (
        prop_oneof![
            4 => Just("app".to_string()),
            4 => "[a-z][a-z0-9-]{0,12}",
            1 => Just("cronpush-start".to_string()),
            1 => Just("cronpush-sidecar".to_string()),
        ],
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(name, sidecar, secure)| {
            let mut c = json!({"name": name, "image": "busybox", "args": ["sh", "-c", "true"]});
            if sidecar {
                c["restartPolicy"] = json!("Always");
            }
            if secure {
                c["securityContext"] = json!({"runAsUser": 1000, "capabilities": {"add": ["NET_ADMIN"]}});
            }
            c
        })
}

fn pod() -> impl Strategy<Value = Value> {
    (
        prop::option::of(prop::collection::vec(container(), 0..4)),
        prop::collection::vec(container(), 1..3),
        prop::option::of(prop::collection::vec(
            prop_oneof![
                Just("data".to_string()),
                "[a-z]{1,8}",
                Just("cronpush-token".to_string()),
                Just("cronpush-no-api-token".to_string())
            ],
            0..3,
        )),
        prop::option::of(prop::collection::btree_map("[a-z.]{1,10}/[a-z]{1,8}", "\\PC{0,10}", 0..3)),
        any::<bool>(),
    )
        .prop_map(|(init, containers, volumes, annotations, automount)| {
            let mut pod = json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"generateName": "c-29396160-", "ownerReferences": [{
                    "apiVersion": "batch/v1", "kind": "Job", "name": "c-29396160", "uid": "u", "controller": true}]},
                "spec": {"containers": containers, "restartPolicy": "Never", "automountServiceAccountToken": automount,
                         "securityContext": {"fsGroup": 2000}}
            });
            if let Some(init) = init {
                pod["spec"]["initContainers"] = json!(init);
            }
            if let Some(volumes) = volumes {
                let volumes: Vec<Value> = volumes.into_iter().map(|n| json!({"name": n, "emptyDir": {}})).collect();
                pod["spec"]["volumes"] = json!(volumes);
            }
            if let Some(annotations) = annotations {
                pod["metadata"]["annotations"] = json!(annotations);
            }
            pod
        })
}

fn review(pod: &Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "namespace": "ns", "operation": "CREATE", "userInfo": {}, "object": pod}}))
    .unwrap()
}

/// Every value of `original` is found unchanged in `patched`; arrays may only have grown at
/// their end, objects only gained keys.
fn preserved(original: &Value, patched: &Value) -> bool {
    match (original, patched) {
        (Value::Object(a), Value::Object(b)) => a.iter().all(|(k, v)| b.get(k).is_some_and(|w| preserved(v, w))),
        (Value::Array(a), Value::Array(b)) => a.len() <= b.len() && a.iter().zip(b).all(|(v, w)| preserved(v, w)),
        (a, b) => a == b,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_patch_applies_keeps_everything_and_is_idempotent(pod in pod()) {
        let request = admission_review::parse(&review(&pod)).unwrap().request;
        let typed = request.object.clone().unwrap();
        let names = typed.spec.iter().flat_map(|s| s.init_containers.iter().flatten().chain(&s.containers));
        let has_ours = names.map(|c| c.name.as_str()).any(|n| n == "cronpush-start" || n == "cronpush-sidecar");
        // None of these Pods carries our mark: every one is a candidate.
        if let Err(skip) = selection::select(&request, &[]) {
            return Err(TestCaseError::fail(format!("unexpected skip {skip:?}")));
        }
        let ops = match injection::patch(&typed, &facts(), &injection_config()) {
            // Exactly the Pods with a container named like ours are refused as a collision.
            Err(injection::InjectionError::ContainerNameTaken(_)) => {
                prop_assert!(has_ours);
                return Ok(());
            }
            Ok(injection) => {
                prop_assert!(!has_ours);
                injection.operations()
            }
            Err(injection::InjectionError::VolumeNameTaken(taken)) => {
                let volumes = typed.spec.as_ref().unwrap().volumes.iter().flatten();
                prop_assert!(["cronpush-token", "cronpush-no-api-token"].contains(&taken));
                prop_assert!(volumes.map(|v| v.name.as_str()).any(|n| n == taken));
                return Ok(());
            }
            Err(e) => return Err(TestCaseError::fail(e.to_string())),
        };
        let mut patched = pod.clone();
        json_patch::patch(&mut patched, &ops).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(preserved(&pod, &patched), "something the user wrote changed:\n{pod}\n{patched}");
        let result: Pod = serde_json::from_value(patched.clone()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let init: Vec<String> = result.spec.unwrap().init_containers.unwrap().into_iter().map(|c| c.name).collect();
        prop_assert_eq!(&init[init.len() - 2..], &["cronpush-start".to_string(), "cronpush-sidecar".to_string()]);
        let again = admission_review::parse(&review(&patched)).unwrap().request;
        prop_assert_eq!(selection::select(&again, &[]), Err(SkipReason::AlreadyInjected));
    }
}
