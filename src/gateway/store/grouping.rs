//! Grouping keys: the label set in a push URL that names a group,
//! `/metrics/job/<JOB>{/<LABEL_NAME>/<LABEL_VALUE>}`, with the reference's `@base64` forms.

use std::fmt;

use base64::Engine;
use base64::alphabet::URL_SAFE;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use std::borrow::Cow;

use crate::exposition::escaping;
use crate::exposition::names::{NameRules, go_quote, is_reserved_label_name};

const BASE64_SUFFIX: &str = "@base64";

/// A value as a `@base64` path segment: base64url without padding, `=` for the empty value, as
/// the reference documents.
pub fn base64_segment(value: &str) -> String {
    if value.is_empty() { "=".to_string() } else { URL_SAFE_NO_PAD.encode(value) }
}

/// base64url as the reference decodes it: padding stripped first, so any amount is fine, and
/// stray bits in the last character are tolerated (Go's non-strict decoder).
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);

/// The labels that identify a group, sorted by name; `job` is always among them.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupingKey(Vec<(String, String)>);

/// Why a push or delete URL names no group. The texts start as the reference's do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("improper label name {}", go_quote(.0))]
    ImproperLabelName(String),
    #[error("odd number of components in label string {}", go_quote(.0))]
    OddComponents(String),
    #[error("job name is required")]
    EmptyJob,
    #[error("invalid base64 encoding in job name {}: {why}", go_quote(decoded))]
    JobBase64 { decoded: String, why: Base64Error },
    #[error("invalid base64 encoding for label {name}={}: {why}", go_quote(value))]
    LabelBase64 { name: String, value: String, why: Base64Error },
}

/// Why a base64url segment does not decode, in the words of Go's decoder.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Base64Error {
    #[error("illegal base64 data at input byte {0}")]
    IllegalByte(usize),
    #[error("illegal base64 data: bad padding")]
    BadPadding,
    #[error("decoded value is not valid UTF-8")]
    NotUtf8,
}

impl GroupingKey {
    /// Builds a key from URL parts, already percent-decoded: the job segment (base64url when
    /// the route was `job@base64`) and the rest of the path (`""` or `/name/value/...`).
    /// Checks run in the reference's order, so the first problem reported is the same.
    pub fn from_path(job: &str, job_is_base64: bool, labels: &str) -> Result<Self, KeyError> {
        Self::from_path_with(job, job_is_base64, labels, NameRules::Legacy)
    }

    /// [`GroupingKey::from_path`] with the names a push may use: with the UTF-8 rules
    /// (`--push.enable-utf8-names`), a label name in the path may be written in the `values`
    /// escaping (`U__http_2e_method` for `http.method`), as handler/push.go reads it.
    pub fn from_path_with(job: &str, job_is_base64: bool, labels: &str, rules: NameRules) -> Result<Self, KeyError> {
        let job = if job_is_base64 {
            decode_base64(job).map_err(|why| KeyError::JobBase64 { decoded: String::new(), why })?
        } else {
            job.to_string()
        };
        let mut pairs = split_labels(labels, rules)?;
        if job.is_empty() {
            return Err(KeyError::EmptyJob);
        }
        // The job from the route wins over a `job` label later in the path.
        pairs.retain(|(name, _)| name != "job");
        pairs.push(("job".to_string(), job));
        Ok(Self::from_unique(pairs))
    }

    /// Whether a label name in it is one the legacy rules refuse (pushed with
    /// `--push.enable-utf8-names`), which a scrape may have to write escaped.
    pub fn needs_escaping(&self) -> bool {
        self.0.iter().any(|(name, _)| !crate::exposition::names::is_valid_metric_name(name))
    }

    /// A key from label pairs, as restored from disk. Later pairs win over earlier ones.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Option<Self> {
        let mut unique: Vec<(String, String)> = Vec::new();
        for (name, value) in pairs {
            unique.retain(|(n, _)| *n != name);
            unique.push((name, value));
        }
        let key = Self::from_unique(unique);
        key.get("job").is_some_and(|j| !j.is_empty()).then_some(key)
    }

    fn from_unique(mut pairs: Vec<(String, String)>) -> Self {
        pairs.sort();
        GroupingKey(pairs)
    }

    pub fn labels(&self) -> &[(String, String)] {
        &self.0
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The key's push path with every value in `@base64` form, which reads back as this key
    /// whatever its values hold: `/`, `.`, `%` or nothing.
    pub fn push_path(&self) -> String {
        let mut path = format!("/metrics/job{BASE64_SUFFIX}/{}", base64_segment(self.get("job").unwrap_or_default()));
        for (name, value) in self.0.iter().filter(|(name, _)| name != "job") {
            path.push_str(&format!("/{name}{BASE64_SUFFIX}/{}", base64_segment(value)));
        }
        path
    }

    /// The same key with `instance=""` added when it has no `instance`: the labels every series
    /// of the group carries, and those of its `push_time_seconds`.
    pub fn with_default_instance(&self) -> GroupingKey {
        if self.get("instance").is_some() {
            return self.clone();
        }
        let mut pairs = self.0.clone();
        pairs.push(("instance".into(), String::new()));
        Self::from_unique(pairs)
    }

    /// The other key whose series would coincide with this one's: `{job=j}` and
    /// `{job=j,instance=""}` are two groups but expose the same series.
    pub fn twin(&self) -> Option<GroupingKey> {
        match self.get("instance") {
            None => Some(self.with_default_instance()),
            Some("") => Some(Self::from_unique(self.0.iter().filter(|(n, _)| n != "instance").cloned().collect())),
            Some(_) => None,
        }
    }
}

impl fmt::Display for GroupingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (name, value)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{name}={}", go_quote(value))?;
        }
        f.write_str("}")
    }
}

fn split_labels(labels: &str, rules: NameRules) -> Result<Vec<(String, String)>, KeyError> {
    if labels.len() <= 1 {
        return Ok(Vec::new());
    }
    let components: Vec<&str> = labels.split('/').collect();
    if components.len().is_multiple_of(2) {
        return Err(KeyError::OddComponents(labels.to_string()));
    }
    let mut pairs: Vec<(String, String)> = Vec::new();
    for pair in components[1..].chunks(2) {
        let (name, value) = (pair[0], pair[1]);
        let trimmed = name.strip_suffix(BASE64_SUFFIX).unwrap_or(name);
        let unescaped = match rules {
            NameRules::Legacy => Cow::Borrowed(trimmed),
            NameRules::Utf8 => escaping::unescape_values(trimmed),
        };
        // The reserved prefix is checked on the name as written, as upstream does.
        if !rules.is_valid_label_name(&unescaped) || is_reserved_label_name(trimmed) {
            return Err(KeyError::ImproperLabelName(trimmed.to_string()));
        }
        let value = if trimmed == name {
            value.to_string()
        } else {
            decode_base64(value).map_err(|why| KeyError::LabelBase64 {
                name: trimmed.to_string(),
                value: value.to_string(),
                why,
            })?
        };
        // A repeated name: the last one wins, as in the reference.
        pairs.retain(|(n, _)| *n != *unescaped);
        pairs.push((unescaped.into_owned(), value));
    }
    Ok(pairs)
}

/// base64url with optional padding; `=` alone is the empty string.
fn decode_base64(value: &str) -> Result<String, Base64Error> {
    let bytes = BASE64URL.decode(value.trim_end_matches('=')).map_err(|e| match e {
        base64::DecodeError::InvalidByte(at, _) | base64::DecodeError::InvalidLastSymbol(at, _) => {
            Base64Error::IllegalByte(at)
        }
        base64::DecodeError::InvalidLength(len) => Base64Error::IllegalByte(len),
        base64::DecodeError::InvalidPadding => Base64Error::BadPadding,
    })?;
    String::from_utf8(bytes).map_err(|_| Base64Error::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(job: &str, b64: bool, labels: &str) -> Result<Vec<(String, String)>, String> {
        GroupingKey::from_path(job, b64, labels).map(|k| k.0).map_err(|e| e.to_string())
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn reads_the_reference_examples() {
        assert_eq!(
            key("directory_cleaner", false, "/path@base64/L3Zhci90bXA").unwrap(),
            pairs(&[("job", "directory_cleaner"), ("path", "/var/tmp")])
        );
        assert_eq!(
            key("Zm9vL2Jhcg", true, "/instance@base64/aW5zdA").unwrap(),
            pairs(&[("instance", "inst"), ("job", "foo/bar")])
        );
        assert_eq!(
            key("j", false, "/first@base64/=/second/foo").unwrap(),
            pairs(&[("first", ""), ("job", "j"), ("second", "foo")])
        );
        assert_eq!(
            key("titan2", false, "/name@base64/zqDPgc6_zrzOt864zrXPjc-C").unwrap(),
            pairs(&[("job", "titan2"), ("name", "Προμηθεύς")])
        );
        assert_eq!(key("j4", false, "/job/other").unwrap(), pairs(&[("job", "j4")]));
        assert_eq!(key("j", false, "/x/1/x/2").unwrap(), pairs(&[("job", "j"), ("x", "2")]));
        assert_eq!(key("j", false, "/").unwrap(), pairs(&[("job", "j")]));
        for padded in ["YQ", "YQ=", "YQ=="] {
            assert_eq!(key("j", false, &format!("/a@base64/{padded}")).unwrap(), pairs(&[("a", "a"), ("job", "j")]));
        }
    }

    #[test]
    fn refuses_like_the_reference() {
        assert_eq!(key("j", false, "/a-b/1").unwrap_err(), "improper label name \"a-b\"");
        assert_eq!(key("j", false, "/__x/1").unwrap_err(), "improper label name \"__x\"");
        assert_eq!(key("j", false, "/x@base64@base64/1").unwrap_err(), "improper label name \"x@base64\"");
        assert_eq!(key("j", false, "/a/b/c").unwrap_err(), "odd number of components in label string \"/a/b/c\"");
        assert_eq!(key("j", false, "/a/b/").unwrap_err(), "odd number of components in label string \"/a/b/\"");
        assert_eq!(key("=", true, "").unwrap_err(), "job name is required");
        assert!(key("Y=Q", false, "").is_ok(), "a plain job is taken as it is");
        assert!(key("a.b", true, "").unwrap_err().starts_with("invalid base64 encoding in job name"));
        assert!(
            key("j", false, "/x@base64/a.b").unwrap_err().starts_with("invalid base64 encoding for label x=\"a.b\"")
        );
        assert!(key("j", false, "/x@base64/Y=Q").is_err());
        assert!(key("j", false, "/x@base64/Y").is_err());
    }

    #[test]
    fn twins_share_their_series() {
        let plain = GroupingKey::from_path("j", false, "").unwrap();
        let with_instance = GroupingKey::from_path("j", false, "/instance@base64/=").unwrap();
        assert_eq!(plain.twin(), Some(with_instance.clone()));
        assert_eq!(with_instance.twin(), Some(plain));
        assert_eq!(GroupingKey::from_path("j", false, "/instance/i").unwrap().twin(), None);
    }
}
