//! The manifests as users render them: `kubectl kustomize` from Debian's kubectl 1.20 (embedded
//! kustomize v2.0.3, the oldest the manifests promise to work with), and each document parsed
//! into its Kubernetes API type as strictly as `kubectl apply` validates it.

use std::process::Command;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use super::repo;

/// Where ./scripts/test unpacks Debian's kubernetes-client.
const KUBECTL: &str = "target/peers/kubernetes-client/usr/bin/kubectl";

/// The YAML `kubectl kustomize <dir>` prints (`dir` relative to the repository).
pub fn render(dir: &str) -> String {
    let kubectl = repo(KUBECTL);
    assert!(
        kubectl.is_file(),
        "Debian's kubectl is missing at {}: run ./scripts/test, which unpacks it there",
        kubectl.display()
    );
    let output = Command::new(&kubectl).arg("kustomize").arg(repo(dir)).output().expect("run kubectl kustomize");
    assert!(output.status.success(), "kubectl kustomize {dir} failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("UTF-8 YAML")
}

/// The documents of a multi-document YAML stream, each with its untyped form.
pub fn documents(yaml: &str) -> Result<Vec<(&str, Value)>, String> {
    yaml.split("\n---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_saphyr::from_str(d).map(|raw| (d, raw)).map_err(|e| format!("not YAML: {e}\n{d}")))
        .collect()
}

/// The document as its API type, refusing any field the type does not know: `kubectl apply`
/// (strict field validation) rejects those, and a misspelt field would otherwise just vanish.
pub fn typed<T: DeserializeOwned + Serialize>(document: &str, raw: &Value) -> Result<T, String> {
    let object: T = serde_saphyr::from_str(document).map_err(|e| format!("{e}\n{document}"))?;
    let round_trip = serde_json::to_value(&object).expect("API objects serialize");
    let mut differences = Vec::new();
    differ(raw, &round_trip, String::new(), &mut differences);
    if differences.is_empty() {
        Ok(object)
    } else {
        Err(format!("fields unknown to the Kubernetes 1.33 API or mistyped: {differences:?}\n{document}"))
    }
}

/// The JSON paths where `raw` holds something that `parsed` does not.
fn differ(raw: &Value, parsed: &Value, path: String, out: &mut Vec<String>) {
    match (raw, parsed) {
        (Value::Object(raw), Value::Object(parsed)) => {
            for (key, value) in raw {
                match parsed.get(key) {
                    Some(other) => differ(value, other, format!("{path}.{key}"), out),
                    None => out.push(format!("{path}.{key}")),
                }
            }
        }
        (Value::Array(raw), Value::Array(parsed)) if raw.len() == parsed.len() => {
            for (i, (value, other)) in raw.iter().zip(parsed).enumerate() {
                differ(value, other, format!("{path}[{i}]"), out);
            }
        }
        _ if raw != parsed => out.push(path),
        _ => {}
    }
}

/// The single object of a kind, which a rendering has exactly one of.
pub fn one<'a, T>(objects: &'a [T], what: &str) -> &'a T {
    assert_eq!(objects.len(), 1, "exactly one {what}");
    &objects[0]
}
