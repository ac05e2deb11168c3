//! The article's CronJob, its Jobs, and their Pods as kube-apiserver sends them for admission:
//! the fake API server's objects and the review bodies, built once.

use bytes::{Bytes, BytesMut};
use serde_json::{Value, json};

/// The namespace of the CronJob and its Pods.
pub const JOBS_NAMESPACE: &str = "batch";
pub const CRONJOB: &str = "sample-cronjob";
/// The first run's scheduled time, in Unix minutes (2025-11-22T00:00:00Z): the Job controller
/// names each Job `<cronjob>-<minutes>`.
pub const FIRST_MINUTES: i64 = 29_396_160;

pub fn job_name(index: usize) -> String {
    format!("{CRONJOB}-{}", FIRST_MINUTES + index as i64)
}

fn job_uid(index: usize) -> String {
    format!("0f7ef9a1-5c3e-4c55-9d1e-{index:012x}")
}

pub fn cronjob() -> Value {
    json!({"apiVersion": "batch/v1", "kind": "CronJob",
           "metadata": {"name": CRONJOB, "namespace": JOBS_NAMESPACE, "uid": "7c4d2f1e-0b9a-4e8f-a1d2-3c4b5a6f7e80"},
           "spec": {"schedule": "*/1 * * * *", "concurrencyPolicy": "Allow", "startingDeadlineSeconds": 30,
                    "jobTemplate": {"spec": {"template": {"spec": {
                        "containers": [{"name": "main-batch", "image": "busybox"}], "restartPolicy": "Never"}}}}}})
}

pub fn job(index: usize) -> Value {
    let scheduled = jiff::Timestamp::from_second((FIRST_MINUTES + index as i64) * 60).expect("a valid time");
    json!({"apiVersion": "batch/v1", "kind": "Job",
           "metadata": {"name": job_name(index), "namespace": JOBS_NAMESPACE, "uid": job_uid(index),
                        "annotations": {"batch.kubernetes.io/cronjob-scheduled-timestamp": scheduled.to_string()},
                        "labels": {"batch.kubernetes.io/controller-uid": job_uid(index)},
                        "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": CRONJOB,
                                             "uid": "7c4d2f1e-0b9a-4e8f-a1d2-3c4b5a6f7e80", "controller": true,
                                             "blockOwnerDeletion": true}]},
           "spec": {"backoffLimit": 6, "completions": 1, "parallelism": 1,
                    "template": {"spec": {"containers": [{"name": "main-batch", "image": "busybox"}],
                                          "restartPolicy": "Never"}}}})
}

/// The Pod the Job controller creates for the article's CronJob (an init container that pushes,
/// a busybox main container), after the API server's defaulting and the ServiceAccount plugin:
/// what a mutating webhook actually receives.
fn pod(index: usize) -> Value {
    let (job, uid) = (job_name(index), job_uid(index));
    let mounts = json!([{"name": "kube-api-access-7x2kq", "readOnly": true,
                         "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]);
    let container = |name: &str, image: &str, args: Value, pull: &str| {
        json!({"name": name, "image": image, "args": args, "resources": {}, "volumeMounts": mounts,
               "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
               "imagePullPolicy": pull})
    };
    let managed = json!({
        "f:metadata": {"f:finalizers": {".": {}, "v:\"batch.kubernetes.io/job-tracking\"": {}}, "f:generateName": {},
                       "f:labels": {".": {}, "f:job-name": {}}, "f:ownerReferences": {".": {}}},
        "f:spec": {"f:containers": {}, "f:initContainers": {}, "f:restartPolicy": {}}
    });
    let namespace_field = json!({"apiVersion": "v1", "fieldPath": "metadata.namespace"});
    let toleration =
        |key: &str| json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300});
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "generateName": format!("{job}-"), "creationTimestamp": null,
            "labels": {"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": job,
                       "controller-uid": uid, "job-name": job},
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": job, "uid": uid,
                                 "controller": true, "blockOwnerDeletion": true}],
            "finalizers": ["batch.kubernetes.io/job-tracking"],
            "managedFields": [{"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1",
                               "time": "2025-11-22T00:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": managed}]
        },
        "spec": {
            "volumes": [{"name": "kube-api-access-7x2kq", "projected": {"defaultMode": 420, "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": namespace_field}]}}]}}],
            "initContainers": [container("push-metrics", "uzimihsr/golang-sample-job:latest",
                                         json!(["--endpoint=192.168.3.200:9091"]), "IfNotPresent")],
            "containers": [container("main-batch", "busybox",
                                     json!(["/bin/sh", "-c", "date; echo Hello from the Kubernetes cluster"]),
                                     "Always")],
            "restartPolicy": "Never", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default", "serviceAccount": "default", "securityContext": {},
            "schedulerName": "default-scheduler",
            "tolerations": [toleration("node.kubernetes.io/not-ready"), toleration("node.kubernetes.io/unreachable")],
            "priority": 0, "enableServiceLinks": true, "preemptionPolicy": "PreemptLowerPriority"
        },
        "status": {}
    })
}

/// A marker where each review's uid goes; unique in the body.
const UID_MARKER: &str = "@@UID@@";

fn review(pod: &Value) -> Value {
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
           "request": {"uid": UID_MARKER,
                       "kind": {"group": "", "version": "v1", "kind": "Pod"},
                       "resource": {"group": "", "version": "v1", "resource": "pods"},
                       "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
                       "requestResource": {"group": "", "version": "v1", "resource": "pods"},
                       "name": "", "namespace": JOBS_NAMESPACE, "operation": "CREATE",
                       "userInfo": {"username": "system:serviceaccount:kube-system:job-controller",
                                    "uid": "5d9b1c7e-2f4a-4b8c-9e6d-1a2b3c4d5e6f",
                                    "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system",
                                               "system:authenticated"]},
                       "object": pod, "oldObject": null, "dryRun": false,
                       "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}}})
}

/// Every review body, built once: the serialized review of each Job's Pod, split where the uid
/// goes, so that a request costs the client one copy.
pub struct Bodies {
    /// Each Job's review, before and after its uid.
    pub parts: Vec<(Bytes, Bytes)>,
    /// Each Job's Pod, for the deep check.
    pub pods: Vec<Value>,
}

impl Bodies {
    pub fn new(jobs: usize) -> Bodies {
        let pods: Vec<Value> = (0..jobs).map(pod).collect();
        let parts = pods
            .iter()
            .map(|pod| {
                let text = review(pod).to_string();
                let (before, after) = text.split_once(UID_MARKER).expect("the uid marker is in the review");
                (Bytes::copy_from_slice(before.as_bytes()), Bytes::copy_from_slice(after.as_bytes()))
            })
            .collect();
        Bodies { parts, pods }
    }

    pub fn body(&self, job: usize, uid: &str) -> Bytes {
        let (before, after) = &self.parts[job];
        let mut body = BytesMut::with_capacity(before.len() + uid.len() + after.len());
        body.extend_from_slice(before);
        body.extend_from_slice(uid.as_bytes());
        body.extend_from_slice(after);
        body.freeze()
    }

    pub fn size(&self) -> usize {
        self.body(0, &uid(0, 0)).len()
    }
}

/// A uid shaped like the API server's (a UUID), unique per client task and request.
pub fn uid(task: usize, seq: u64) -> String {
    format!("{task:08x}-b3c0-4d1e-8f00-{seq:012x}")
}
