//! Limits on what a push may bring: its body size, its series, the length of its label values,
//! and how many groups the store may hold. The reference has none of them; a small device needs
//! them so that one careless or hostile client cannot take its memory.
//!
//! Every check here runs before the store changes, so a refused push changes nothing, not even a
//! group's failure time. All but the group count are decided from the push alone, before the
//! store's lock is taken. Each refusal names its limit and the flag that sets it.

use super::grouping::GroupingKey;
use super::groups::Store;
use super::prepared_push::PreparedPush;

/// The reference takes any body; 64 MiB (before and after gzip) keeps a gzip bomb from
/// exhausting a Raspberry Pi's memory while no real push comes near it.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 << 20;

/// The configured limits. 0 means "no limit" for each of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of a push body, as received and again after gunzipping.
    pub max_body_bytes: usize,
    /// Series in one push, over all its families.
    pub max_series: usize,
    /// Bytes of any label value, in the series and in the grouping key.
    pub max_label_value_length: usize,
    /// Groups the store holds; only a push that would create a group is refused.
    pub max_groups: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_body_bytes: DEFAULT_MAX_BODY_BYTES, max_series: 0, max_label_value_length: 0, max_groups: 0 }
    }
}

/// Why a push was refused by a limit. The HTTP edge maps each kind to its status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("request body is larger than {limit} bytes, the limit set by --push.max-body-bytes")]
    BodyTooLarge { limit: usize },
    #[error("the push has {count} series, more than {limit}, the limit set by --push.max-series")]
    TooManySeries { count: usize, limit: usize },
    #[error(
        "the value of label {label:?} in {place} is {length} bytes long, more than {limit}, \
         the limit set by --push.max-label-value-length"
    )]
    LabelValueTooLong { label: String, place: String, length: usize, limit: usize },
    #[error(
        "the gateway holds {held} groups and --push.max-groups is {limit}: a push may not create \
         another; delete a group or raise the limit"
    )]
    TooManyGroups { held: usize, limit: usize },
}

impl Limits {
    /// The body limit as a byte count to read up to: `usize::MAX` when there is none.
    pub fn body_bytes(&self) -> usize {
        if self.max_body_bytes == 0 { usize::MAX } else { self.max_body_bytes }
    }

    /// The limits a push can be held to on its own, without the store.
    pub fn check_push(&self, push: &PreparedPush) -> Result<(), LimitError> {
        if self.max_series > 0 {
            let count: usize = push.families.values().map(|p| p.family.metric.len()).sum();
            if count > self.max_series {
                return Err(LimitError::TooManySeries { count, limit: self.max_series });
            }
        }
        if self.max_label_value_length > 0 {
            let limit = self.max_label_value_length;
            let too_long = |label: &str, value: &str, place: &dyn Fn() -> String| {
                (value.len() > limit).then(|| LimitError::LabelValueTooLong {
                    label: label.to_string(),
                    place: place(),
                    length: value.len(),
                    limit,
                })
            };
            for (name, value) in push.key.labels() {
                if let Some(e) = too_long(name, value, &|| "the grouping key".to_string()) {
                    return Err(e);
                }
            }
            for (family, prepared) in &push.families {
                for label in prepared.family.metric.iter().flat_map(|m| &m.label) {
                    if let Some(e) = too_long(label.name(), label.value(), &|| format!("metric {family:?}")) {
                        return Err(e);
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether the store has room for the push's group: always, when the group exists. Called
    /// under the store's lock, right before the push is applied.
    pub fn check_groups(&self, store: &Store, key: &GroupingKey) -> Result<(), LimitError> {
        let held = store.group_count();
        if self.max_groups > 0 && held >= self.max_groups && store.group(key).is_none() {
            return Err(LimitError::TooManyGroups { held, limit: self.max_groups });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::text_parse::parse;
    use crate::gateway::store::prepared_push::{PushMethod, SeriesHasher};

    fn prepared(job: &str, labels: &str, text: &str) -> PreparedPush {
        let key = GroupingKey::from_path(job, false, labels).unwrap();
        PreparedPush::new(&SeriesHasher::default(), key, PushMethod::Replace, parse(text.as_bytes()).unwrap())
    }

    #[test]
    fn no_limits_by_default_but_the_body() {
        let limits = Limits::default();
        let huge = format!("a{{x=\"{}\"}} 1\nb 1\nc 1\n", "v".repeat(100_000));
        assert_eq!(limits.check_push(&prepared("j", "", &huge)), Ok(()));
        assert_eq!(limits.body_bytes(), DEFAULT_MAX_BODY_BYTES);
        assert_eq!(Limits { max_body_bytes: 0, ..limits }.body_bytes(), usize::MAX);
    }

    #[test]
    fn counts_series_over_every_family_and_leaves_the_gateways_own_out() {
        let limits = Limits { max_series: 3, ..Limits::default() };
        assert_eq!(
            limits.check_push(&prepared("j", "", "a{x=\"1\"} 1\na{x=\"2\"} 1\nb 1\npush_time_seconds 1\n")),
            Ok(())
        );
        let err = limits.check_push(&prepared("j", "", "a{x=\"1\"} 1\na{x=\"2\"} 1\nb 1\nc 1\n")).unwrap_err();
        assert_eq!(err, LimitError::TooManySeries { count: 4, limit: 3 });
        assert!(err.to_string().contains("--push.max-series"), "{err}");
    }

    #[test]
    fn label_values_are_measured_in_bytes_in_series_and_key() {
        let limits = Limits { max_label_value_length: 4, ..Limits::default() };
        assert_eq!(limits.check_push(&prepared("jjjj", "/i/abcd", "a{x=\"éé\"} 1\n")), Ok(()));
        let err = limits.check_push(&prepared("j", "", "a{x=\"ééé\"} 1\n")).unwrap_err();
        assert!(matches!(err, LimitError::LabelValueTooLong { length: 6, limit: 4, .. }), "{err}");
        assert!(err.to_string().contains("metric \"a\""), "{err}");
        // An empty push still names its group.
        let err = limits.check_push(&prepared("jobby", "", "")).unwrap_err();
        assert!(err.to_string().contains("label \"job\" in the grouping key"), "{err}");
        assert!(err.to_string().contains("--push.max-label-value-length"), "{err}");
    }

    #[test]
    fn only_a_new_group_needs_room() {
        let limits = Limits { max_groups: 1, ..Limits::default() };
        let mut store = Store::new(&[]);
        let a = GroupingKey::from_path("a", false, "").unwrap();
        let b = GroupingKey::from_path("b", false, "").unwrap();
        assert_eq!(limits.check_groups(&store, &a), Ok(()));
        store.apply_push(a.clone(), PushMethod::Replace, Vec::new(), 1).unwrap();
        assert_eq!(limits.check_groups(&store, &a), Ok(()));
        assert_eq!(limits.check_groups(&store, &b), Err(LimitError::TooManyGroups { held: 1, limit: 1 }));
        store.delete(&a);
        assert_eq!(limits.check_groups(&store, &b), Ok(()));
    }
}
