//! The webhook's decisions on AdmissionReviews shaped exactly as kube-apiserver sends them for
//! Pods the Job controller creates: `generateName`, no name, often no namespace in the object,
//! the controller's labels, one controller ownerReference, the job-tracking finalizer.

use base64::Engine;
use serde_json::{Value, json};

use super::admission_review::{self, Answer};
use super::injection::{self, InjectionConfig};
use super::resolve::{FactsSource, RunFacts};
use super::selection::{self, SkipReason};
use crate::contract::{
    API_TOKEN_DIR, INJECTED_LABEL, INJECTED_LABEL_VALUE, NO_API_TOKEN_VOLUME, SIDECAR_CONTAINER, START_CONTAINER,
    STATUS_ANNOTATION, TOKEN_DIR, TOKEN_FILE, TOKEN_VOLUME,
};
use k8s_openapi::api::core::v1::Pod;

/// The article's CronJob pod template (`sample-cronjob`, an init container that pushes, a
/// busybox main container), as the Job controller creates it for the run at `minutes`.
fn article_pod(minutes: i64) -> Value {
    let job = format!("sample-cronjob-{minutes}");
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": format!("{job}-"),
            "labels": {
                "batch.kubernetes.io/controller-uid": "0f7ef9a1-5c3e-4c55-9d1e-6a1f0b6c2e10",
                "batch.kubernetes.io/job-name": job,
                "controller-uid": "0f7ef9a1-5c3e-4c55-9d1e-6a1f0b6c2e10",
                "job-name": job
            },
            "ownerReferences": [{
                "apiVersion": "batch/v1", "kind": "Job", "name": job,
                "uid": "0f7ef9a1-5c3e-4c55-9d1e-6a1f0b6c2e10", "controller": true, "blockOwnerDeletion": true
            }],
            "finalizers": ["batch.kubernetes.io/job-tracking"]
        },
        "spec": {
            "initContainers": [{
                "name": "push-metrics", "image": "uzimihsr/golang-sample-job:latest",
                "imagePullPolicy": "IfNotPresent", "args": ["--endpoint=192.168.3.200:9091"]
            }],
            "containers": [{
                "name": "main-batch", "image": "busybox",
                "args": ["/bin/sh", "-c", "date; echo Hello from the Kubernetes cluster"]
            }],
            "restartPolicy": "Never",
            "someFieldFromANewerKubernetes": {"kept": true}
        }
    })
}

fn review(pod: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "name": "",
            "namespace": "batch",
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:job-controller", "groups": ["system:serviceaccounts"]},
            "object": pod,
            "oldObject": null,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
        }
    }))
    .unwrap()
}

pub(super) fn config() -> InjectionConfig {
    InjectionConfig {
        image: "ghcr.io/cronpush/cronpush:0.1.0".into(),
        image_pull_policy: Some("IfNotPresent".into()),
        gateway_url: "http://pi:8080/pushgateway".into(),
        job_label: "cronpush".into(),
        cluster_name: None,
        relay_url: "https://cronpush-webhook.cronpush.svc:443/v1/exit-status".into(),
        relay_ca_pem: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into(),
        token_audience: "cronpush".into(),
        token_expiration_seconds: 3600,
        cpu_request: "10m".into(),
        memory_request: "16Mi".into(),
        cpu_limit: None,
        memory_limit: "32Mi".into(),
        start_timeout_seconds: 5,
        failed_run_logs: false,
        gateway_ca_pem: None,
        gateway_credentials_secret: None,
        push_mode: crate::webhook::injection::PushMode::Direct,
    }
}

fn facts() -> RunFacts {
    RunFacts {
        cronjob: "sample-cronjob".into(),
        job: "sample-cronjob-29396160".into(),
        schedule: Some("*/1 * * * *".into()),
        time_zone: None,
        scheduled_time: Some(29_396_160 * 60),
        concurrency_policy: Some("Allow".into()),
        cronjob_created: Some(1_763_700_000),
        cronjob_last_success: Some(1_763_769_542),
        grace_seconds: Some(30),
        starting_deadline_seconds: None,
        max_run_seconds: None,
        log_lines: None,
        source: FactsSource::Api,
    }
}

/// Applies the answer's patch, decoded from its base64 wire form, to the raw Pod.
fn apply(pod: &Value, answer: &Answer) -> Value {
    let wire: Value = serde_json::from_slice(&admission_review::respond("uid", answer)).unwrap();
    assert_eq!(wire["response"]["patchType"], "JSONPatch");
    let bytes = base64::engine::general_purpose::STANDARD.decode(wire["response"]["patch"].as_str().unwrap()).unwrap();
    let patch: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
    let mut patched = pod.clone();
    json_patch::patch(&mut patched, &patch).unwrap();
    patched
}

fn inject(pod: &Value) -> Value {
    let typed: Pod = serde_json::from_value(pod.clone()).unwrap();
    let injection = injection::patch(&typed, &facts(), &config()).unwrap();
    apply(pod, &Answer { patch: Some(injection.patch_json()), warnings: injection.warnings })
}

#[test]
fn selects_job_pods_from_the_request() {
    let request = admission_review::parse(&review(article_pod(29_396_160))).unwrap().request;
    let candidate = selection::select(&request, &[]).unwrap();
    assert_eq!(candidate.namespace, "batch", "taken from the request: the object has none");
    assert_eq!(candidate.job_name, "sample-cronjob-29396160");
    assert_eq!(selection::select(&request, &["batch".into()]), Err(SkipReason::ExcludedNamespace));
}

#[test]
fn leaves_other_pods_alone() {
    let mut plain = article_pod(1);
    plain["metadata"].as_object_mut().unwrap().remove("ownerReferences");
    let request = admission_review::parse(&review(plain)).unwrap().request;
    assert_eq!(selection::select(&request, &[]), Err(SkipReason::NotJobPod));

    let mut replica_set = article_pod(1);
    replica_set["metadata"]["ownerReferences"][0]["kind"] = json!("ReplicaSet");
    replica_set["metadata"]["ownerReferences"][0]["apiVersion"] = json!("apps/v1");
    assert_eq!(
        selection::select(&admission_review::parse(&review(replica_set)).unwrap().request, &[]),
        Err(SkipReason::NotJobPod)
    );

    let mut opted_out = article_pod(1);
    opted_out["metadata"]["labels"]["cronpush.io/inject"] = json!("disabled");
    assert_eq!(
        selection::select(&admission_review::parse(&review(opted_out)).unwrap().request, &[]),
        Err(SkipReason::OptedOut)
    );

    let mut update: Value = serde_json::from_slice(&review(article_pod(1))).unwrap();
    update["request"]["operation"] = json!("UPDATE");
    let request = admission_review::parse(&serde_json::to_vec(&update).unwrap()).unwrap().request;
    assert_eq!(selection::select(&request, &[]), Err(SkipReason::NotPodCreate));
}

#[test]
fn the_patched_pod_holds_both_containers_last_and_keeps_everything_else() {
    let pod = article_pod(29_396_160);
    let patched = inject(&pod);
    // Nothing the user wrote is lost, not even a field this build's types do not know.
    assert_eq!(patched["spec"]["someFieldFromANewerKubernetes"], json!({"kept": true}));
    assert_eq!(patched["spec"]["containers"], pod["spec"]["containers"]);
    assert_eq!(patched["spec"]["initContainers"][0], pod["spec"]["initContainers"][0]);
    assert_eq!(patched["metadata"]["finalizers"], pod["metadata"]["finalizers"]);

    let typed: Pod = serde_json::from_value(patched).unwrap();
    let spec = typed.spec.unwrap();
    let init: Vec<&str> = spec.init_containers.iter().flatten().map(|c| c.name.as_str()).collect();
    assert_eq!(init, ["push-metrics", START_CONTAINER, SIDECAR_CONTAINER], "appended at the end");
    let sidecar = &spec.init_containers.as_ref().unwrap()[2];
    assert_eq!(sidecar.restart_policy.as_deref(), Some("Always"));
    assert_eq!(sidecar.volume_mounts.as_ref().unwrap()[0].name, TOKEN_VOLUME);
    let start = &spec.init_containers.as_ref().unwrap()[1];
    // Neither container gets the Pod's API token, not even when the ServiceAccount plugin runs
    // again after us: both mount nothing over its path. Only the sidecar has our token.
    let mounts = |c: &k8s_openapi::api::core::v1::Container| -> Vec<(String, String, Option<bool>)> {
        c.volume_mounts.iter().flatten().map(|m| (m.name.clone(), m.mount_path.clone(), m.read_only)).collect()
    };
    let empty = (NO_API_TOKEN_VOLUME.to_string(), API_TOKEN_DIR.to_string(), Some(true));
    assert_eq!(mounts(start), std::slice::from_ref(&empty));
    assert_eq!(mounts(sidecar)[1..], [empty]);
    let volumes = spec.volumes.as_ref().unwrap();
    let nothing = volumes.iter().find(|v| v.name == NO_API_TOKEN_VOLUME).unwrap();
    assert_eq!(nothing.empty_dir, Some(Default::default()), "an empty directory, nothing else");
    assert!(start.restart_policy.is_none());
    let env = |c: &k8s_openapi::api::core::v1::Container, name: &str| {
        c.env.iter().flatten().find(|e| e.name == name).cloned()
    };
    assert_eq!(env(start, "CRONPUSH_SCHEDULED_TIME").unwrap().value.as_deref(), Some("1763769600"));
    assert_eq!(env(start, "CRONPUSH_SCHEDULE").unwrap().value.as_deref(), Some("*/1 * * * *"));
    assert_eq!(env(start, "CRONPUSH_CRONJOB_CREATED").unwrap().value.as_deref(), Some("1763700000"));
    assert_eq!(env(start, "CRONPUSH_CRONJOB_LAST_SUCCESS").unwrap().value.as_deref(), Some("1763769542"));
    assert!(env(start, "CRONPUSH_TIME_ZONE").is_none(), "unknown facts are left out");
    assert_eq!(
        env(start, "CRONPUSH_POD_NAME").unwrap().value_from.unwrap().field_ref.unwrap().field_path,
        "metadata.name"
    );
    assert!(env(sidecar, "CRONPUSH_RELAY_CA").is_some() && env(start, "CRONPUSH_RELAY_CA").is_none());
    let volume = spec.volumes.unwrap().into_iter().find(|v| v.name == TOKEN_VOLUME).unwrap();
    let token = volume.projected.unwrap().sources.unwrap()[0].service_account_token.clone().unwrap();
    assert_eq!((token.audience.as_deref(), token.expiration_seconds), (Some("cronpush"), Some(3600)));
    let status = &typed.metadata.annotations.unwrap()[STATUS_ANNOTATION];
    assert!(status.contains("\"cronjob\":\"sample-cronjob\""), "{status}");
}

#[test]
fn injected_containers_pass_the_restricted_profile() {
    let typed: Pod = serde_json::from_value(inject(&article_pod(1))).unwrap();
    for c in typed.spec.unwrap().init_containers.unwrap().iter().skip(1) {
        let sc = c.security_context.as_ref().unwrap();
        assert_eq!(sc.run_as_non_root, Some(true), "{}", c.name);
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(sc.capabilities.as_ref().unwrap().drop.as_deref(), Some(&["ALL".to_string()][..]));
        assert_eq!(sc.seccomp_profile.as_ref().unwrap().type_, "RuntimeDefault");
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        let resources = c.resources.as_ref().unwrap();
        assert!(resources.requests.as_ref().unwrap().contains_key("memory"));
        assert!(resources.limits.as_ref().unwrap().contains_key("memory"));
    }
}

#[test]
fn containers_of_our_names_that_we_did_not_inject_are_a_collision_not_an_injection() {
    for (list, ours) in [("initContainers", START_CONTAINER), ("containers", SIDECAR_CONTAINER)] {
        let mut pod = article_pod(1);
        let mut containers = pod["spec"][list].as_array().cloned().unwrap_or_default();
        containers.push(json!({"name": ours, "image": "someone-elses:1"}));
        pod["spec"][list] = json!(containers);
        let request = admission_review::parse(&review(pod.clone())).unwrap().request;
        assert!(selection::select(&request, &[]).is_ok(), "no mark of ours: a candidate");
        let typed: Pod = serde_json::from_value(pod).unwrap();
        let refused = injection::patch(&typed, &facts(), &config());
        assert_eq!(refused, Err(injection::InjectionError::ContainerNameTaken(ours)));
        let said = refused.unwrap_err().to_string();
        assert_eq!(said, format!("the Pod already has a container named {ours}, which cronpush did not inject"));
    }
}

#[test]
fn a_windows_pod_gets_nothing() {
    let mut by_os = article_pod(1);
    by_os["spec"]["os"] = json!({"name": "windows"});
    let mut by_selector = article_pod(1);
    by_selector["spec"]["nodeSelector"] = json!({"kubernetes.io/os": "windows"});
    for pod in [by_os, by_selector] {
        let typed: Pod = serde_json::from_value(pod).unwrap();
        assert_eq!(injection::patch(&typed, &facts(), &config()), Err(injection::InjectionError::WindowsPod));
    }
    let mut linux = article_pod(1);
    linux["spec"]["os"] = json!({"name": "linux"});
    linux["spec"]["nodeSelector"] = json!({"kubernetes.io/os": "linux"});
    assert!(injection::patch(&serde_json::from_value(linux).unwrap(), &facts(), &config()).is_ok());
}

#[test]
fn injection_is_idempotent() {
    let once = inject(&article_pod(1));
    let request = admission_review::parse(&review(once)).unwrap().request;
    assert_eq!(selection::select(&request, &[]), Err(SkipReason::AlreadyInjected));
}

#[test]
fn pods_without_init_containers_volumes_or_annotations_get_the_arrays_created() {
    let mut pod = article_pod(1);
    pod["spec"].as_object_mut().unwrap().remove("initContainers");
    let typed: Pod = serde_json::from_value(inject(&pod)).unwrap();
    let names: Vec<String> = typed.spec.unwrap().init_containers.unwrap().into_iter().map(|c| c.name).collect();
    assert_eq!(names, [START_CONTAINER, SIDECAR_CONTAINER]);

    let mut annotated = article_pod(1);
    annotated["metadata"]["annotations"] = json!({"team": "data"});
    let patched = inject(&annotated);
    assert_eq!(patched["metadata"]["annotations"]["team"], "data");
    assert!(patched["metadata"]["annotations"][STATUS_ANNOTATION].is_string());
}

#[test]
fn an_injected_pod_is_labelled_for_the_relays_watch_whatever_labels_it_had() {
    let labelled = inject(&article_pod(1));
    assert_eq!(labelled["metadata"]["labels"][INJECTED_LABEL], INJECTED_LABEL_VALUE);
    assert_eq!(labelled["metadata"]["labels"]["job-name"], article_pod(1)["metadata"]["labels"]["job-name"]);
    let mut bare = article_pod(1);
    bare["metadata"].as_object_mut().unwrap().remove("labels");
    assert_eq!(inject(&bare)["metadata"]["labels"], json!({ INJECTED_LABEL: INJECTED_LABEL_VALUE }));
}

#[test]
fn a_taken_volume_name_is_refused_not_overwritten() {
    let mut pod = article_pod(1);
    for ours in [TOKEN_VOLUME, NO_API_TOKEN_VOLUME] {
        pod["spec"]["volumes"] = json!([{"name": ours, "emptyDir": {}}]);
        let typed: Pod = serde_json::from_value(pod.clone()).unwrap();
        let refused = injection::patch(&typed, &facts(), &config());
        assert_eq!(refused, Err(injection::InjectionError::VolumeNameTaken(ours)));
    }
}

#[test]
fn the_answer_is_a_v1_review_with_a_base64_patch_and_short_warnings() {
    let answer = Answer { patch: Some(b"[]".to_vec()), warnings: vec!["w".repeat(300)] };
    let wire: Value = serde_json::from_slice(&admission_review::respond("u-1", &answer)).unwrap();
    assert_eq!(wire["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(wire["kind"], "AdmissionReview");
    assert_eq!(wire["response"]["uid"], "u-1");
    assert_eq!(wire["response"]["allowed"], true);
    assert_eq!(wire["response"]["patch"], "W10=", "base64 of []");
    assert!(wire["response"]["warnings"][0].as_str().unwrap().len() < 120);
    let none: Value = serde_json::from_slice(&admission_review::respond("u-2", &Answer::default())).unwrap();
    assert!(none["response"].get("patchType").is_none(), "no patchType without a patch");
}

/// The answer is written by hand (see `respond`): a uid or a warning with quotes, backslashes
/// or control characters still makes a review the API server reads, with the values intact.
#[test]
fn the_answer_escapes_what_it_carries() {
    let uid = "u-\"1\\\n\u{7}";
    let warning = "cronpush: \"/data/x\" is\ton no volume \u{e9}";
    let answer =
        Answer { patch: Some(br#"[{"op":"add","path":"/a","value":"\""}]"#.to_vec()), warnings: vec![warning.into()] };
    let wire: Value = serde_json::from_slice(&admission_review::respond(uid, &answer)).unwrap();
    assert_eq!(wire["response"]["uid"], uid);
    assert_eq!(wire["response"]["warnings"][0], warning);
    let patch = base64::engine::general_purpose::STANDARD.decode(wire["response"]["patch"].as_str().unwrap()).unwrap();
    assert_eq!(patch, answer.patch.unwrap());
}

#[test]
fn malformed_reviews_are_errors_not_panics() {
    let v1 = r#""apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview""#;
    let no_uid = format!(
        r#"{{{v1}, "request": {{"uid": "", "kind": {{"group": "", "version": "v1", "kind": "Pod"}},
        "resource": {{"group": "", "version": "v1", "resource": "pods"}}, "operation": "CREATE", "userInfo": {{}}}}}}"#
    );
    let bodies: Vec<Vec<u8>> = [
        &b""[..],
        b"{",
        b"{}",
        b"[]",
        b"{\"request\": 5}",
        b"\xff\xfe",
        format!("{{{v1}}}").as_bytes(),
        format!("{{{v1}, \"request\": null}}").as_bytes(),
        format!("{{{v1}, \"request\": 5}}").as_bytes(),
        no_uid.as_bytes(),
    ]
    .into_iter()
    .map(<[u8]>::to_vec)
    .collect();
    for body in bodies {
        let error = admission_review::parse(&body).unwrap_err();
        assert!(error.to_string().starts_with("malformed AdmissionReview: "), "{error}");
    }
    let mut old: Value = serde_json::from_slice(&review(article_pod(1))).unwrap();
    old["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let error = admission_review::parse(&serde_json::to_vec(&old).unwrap()).unwrap_err();
    assert!(error.to_string().contains("\"admission.k8s.io/v1beta1\""), "{error}");
}

#[test]
fn a_pod_that_does_not_decode_still_leaves_a_review_to_answer() {
    let mut pod = article_pod(1);
    pod["spec"]["containers"] = json!("main-batch");
    let parsed = admission_review::parse(&review(pod)).unwrap();
    assert_eq!(parsed.request.uid, "705ab4f5-6393-11e8-b7cc-42010a800002");
    assert!(parsed.request.object.is_none());
    assert!(parsed.undecodable_pod.unwrap().to_string().contains("invalid type"));
    assert_eq!(selection::select(&parsed.request, &[]), Err(SkipReason::MalformedPod));
    // An unreadable old object does not matter: only the new one is admitted.
    let mut update: Value = serde_json::from_slice(&review(article_pod(1))).unwrap();
    update["request"]["oldObject"] = json!({"spec": 7});
    let parsed = admission_review::parse(&serde_json::to_vec(&update).unwrap()).unwrap();
    assert!(parsed.undecodable_pod.is_none() && parsed.request.object.is_some());
}

fn sidecar_env(pod: &Value, name: &str) -> Option<String> {
    let sidecar = pod["spec"]["initContainers"].as_array()?.iter().find(|c| c["name"] == "cronpush-sidecar")?;
    sidecar["env"].as_array()?.iter().find(|e| e["name"] == name)?["value"].as_str().map(String::from)
}

/// With `--gateway-ca-file` and `--gateway-credentials-secret`, both containers get the CA as a
/// value (a CA is public) and the credentials from the Secret, optional so that a namespace
/// without it still runs its Jobs; the patch itself names the Secret and holds no password.
#[test]
fn the_gateway_ca_and_credentials_reach_both_containers_without_a_password_in_the_patch() {
    let pod = article_pod(29_396_160);
    let typed: Pod = serde_json::from_value(pod.clone()).unwrap();
    let ca = "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n";
    let config = InjectionConfig {
        gateway_ca_pem: Some(ca.into()),
        gateway_credentials_secret: Some("cronpush-gateway".into()),
        ..config()
    };
    let injection = injection::patch(&typed, &facts(), &config).unwrap();
    let patch = injection.patch_json();
    let patched = apply(&pod, &Answer { patch: Some(patch.clone()), warnings: vec![] });
    for name in ["cronpush-start", "cronpush-sidecar"] {
        let container =
            patched["spec"]["initContainers"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap();
        let env = |var: &str| container["env"].as_array().unwrap().iter().find(|e| e["name"] == var).cloned();
        assert_eq!(env("CRONPUSH_GATEWAY_CA").unwrap()["value"], ca, "{name}");
        for (var, key) in [("CRONPUSH_GATEWAY_USERNAME", "username"), ("CRONPUSH_GATEWAY_PASSWORD", "password")] {
            assert_eq!(
                env(var).unwrap()["valueFrom"],
                json!({"secretKeyRef": {"name": "cronpush-gateway", "key": key, "optional": true}}),
                "{name} {var}"
            );
        }
    }
    // Without the flags, nothing of the kind.
    let plain = inject(&pod);
    assert!(sidecar_env(&plain, "CRONPUSH_GATEWAY_CA").is_none());
    assert!(!plain.to_string().contains("CRONPUSH_GATEWAY_PASSWORD"));
}

/// In the relay's push mode both containers push to the relay (`/v1/push`), trust its CA and
/// present the Pod's projected token, which `start` now mounts too; the gateway's CA and the
/// credentials Secret are not handed over, whatever the webhook was given for itself.
#[test]
fn through_the_relay_both_containers_push_with_the_pods_token_and_no_gateway_secret() {
    let pod = article_pod(29_396_160);
    let typed: Pod = serde_json::from_value(pod.clone()).unwrap();
    let relay_push = "https://cronpush-webhook.cronpush.svc:443/v1/push";
    let config = InjectionConfig {
        gateway_ca_pem: Some("-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n".into()),
        push_mode: injection::PushMode::Relay { url: relay_push.into() },
        ..config()
    };
    let patch = injection::patch(&typed, &facts(), &config).unwrap().patch_json();
    let patched = apply(&pod, &Answer { patch: Some(patch.clone()), warnings: vec![] });
    for name in ["cronpush-start", "cronpush-sidecar"] {
        let container =
            patched["spec"]["initContainers"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap();
        let env = |var: &str| {
            container["env"].as_array().unwrap().iter().find(|e| e["name"] == var).map(|e| e["value"].clone())
        };
        assert_eq!(env("CRONPUSH_GATEWAY_URL"), Some(json!(relay_push)), "{name}");
        assert_eq!(env("CRONPUSH_GATEWAY_CA"), Some(json!(config.relay_ca_pem.current().to_string())), "{name}");
        assert_eq!(env("CRONPUSH_GATEWAY_TOKEN_FILE"), Some(json!(TOKEN_FILE)), "{name}");
        let mounts = container["volumeMounts"].as_array().unwrap();
        assert!(mounts.iter().any(|m| m["name"] == "cronpush-token" && m["mountPath"] == TOKEN_DIR), "{name}");
    }
    let text = String::from_utf8(patch).unwrap();
    assert!(!text.contains("MIIC"), "the gateway's CA is the webhook's own business: {text}");
    assert!(!text.contains("secretKeyRef") && !text.contains("CRONPUSH_GATEWAY_PASSWORD"), "{text}");
}

#[test]
fn the_sidecar_learns_the_grace_period_and_mounts_the_custom_metrics_volume_read_only() {
    let mut pod = article_pod(29_396_160);
    assert_eq!(sidecar_env(&inject(&pod), "CRONPUSH_TERMINATION_GRACE_SECONDS").as_deref(), Some("30"), "the default");
    pod["spec"]["terminationGracePeriodSeconds"] = json!(90);
    pod["metadata"]["annotations"] = json!({"cronpush.io/metrics-file": "/out/metrics/job.prom"});
    pod["spec"]["volumes"] = json!([{"name": "out", "emptyDir": {}}, {"name": "deeper", "emptyDir": {}}]);
    // The main container's mountPropagation is not copied: a read-only view needs none, and
    // Bidirectional is refused on an unprivileged container.
    pod["spec"]["containers"][0]["volumeMounts"] = json!([{"name": "out", "mountPath": "/out"},
        {"name": "deeper", "mountPath": "/out/metrics/", "subPath": "m", "mountPropagation": "Bidirectional"}]);
    let patched = inject(&pod);
    assert_eq!(sidecar_env(&patched, "CRONPUSH_TERMINATION_GRACE_SECONDS").as_deref(), Some("90"));
    assert_eq!(sidecar_env(&patched, "CRONPUSH_METRICS_FILE").as_deref(), Some("/out/metrics/job.prom"));
    let sidecar =
        patched["spec"]["initContainers"].as_array().unwrap().iter().find(|c| c["name"] == "cronpush-sidecar");
    let mounts = &sidecar.unwrap()["volumeMounts"];
    let deeper = mounts.as_array().unwrap().iter().find(|m| m["name"] == "deeper").unwrap();
    assert_eq!(deeper, &json!({"name": "deeper", "mountPath": "/out/metrics/", "subPath": "m", "readOnly": true}));
    assert_eq!(patched["spec"]["containers"], pod["spec"]["containers"], "the main container is not touched");
    // A file on no shared volume: injected all the same, with a warning and no file to push.
    pod["metadata"]["annotations"] = json!({"cronpush.io/metrics-file": "/tmp/job.prom"});
    let typed: Pod = serde_json::from_value(pod.clone()).unwrap();
    let injection = injection::patch(&typed, &facts(), &config()).unwrap();
    assert!(injection.warnings[0].contains("on no volume mounted into a main container"), "{:?}", injection.warnings);
    let patched = apply(&pod, &Answer { patch: Some(injection.patch_json()), warnings: vec![] });
    assert_eq!(sidecar_env(&patched, "CRONPUSH_METRICS_FILE"), None);
}

/// The sidecar is told how many log lines to ask for only when both the operator
/// (`--failed-run-logs`) and the CronJob (`cronpush.io/log-lines`) asked; a value it cannot read
/// is a warning, never a refusal.
#[test]
fn log_lines_need_the_flag_and_the_annotation_and_a_bad_value_is_only_a_warning() {
    let pod = article_pod(29_396_160);
    let typed: Pod = serde_json::from_value(pod.clone()).unwrap();
    let lines = |value: Option<&str>, flag: bool| {
        let facts = RunFacts { log_lines: value.map(String::from), ..facts() };
        let config = InjectionConfig { failed_run_logs: flag, ..config() };
        let injection = injection::patch(&typed, &facts, &config).unwrap();
        let patched = apply(&pod, &Answer { patch: Some(injection.patch_json()), warnings: vec![] });
        (sidecar_env(&patched, "CRONPUSH_LOG_LINES"), injection.warnings)
    };
    assert_eq!(lines(Some("40"), true), (Some("40".into()), vec![]));
    assert_eq!(lines(Some("40"), false), (None, vec![]), "off unless the operator allows it");
    assert_eq!(lines(None, true), (None, vec![]), "off unless the CronJob asks");
    for bad in ["0", "5000", "all"] {
        let (env, warnings) = lines(Some(bad), true);
        assert_eq!(env, None, "{bad}");
        assert_eq!(warnings.len(), 1, "{bad}");
        assert!(
            warnings[0].contains("cronpush.io/log-lines") && warnings[0].contains("from 1 to 1000"),
            "{warnings:?}"
        );
    }
}
