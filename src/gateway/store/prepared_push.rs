//! A push made ready outside the store's lock: deduplicated by family name, labelled with its
//! grouping key, hashed for the series index, and rendered in the forms the store keeps. What
//! is left for the lock is only the check against the store and the bookkeeping, so pushes and
//! scrapes hold it briefly.

use std::collections::BTreeMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash, Hasher};

use super::family::{PUSH_FAILURE_TIME, PUSH_TIME, StoredFamily};
use super::grouping::GroupingKey;
use super::runs::{self, RunEvent};
use crate::proto::client::{LabelPair, MetricFamily};

/// PUT replaces the whole group; POST replaces only the families it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushMethod {
    Replace,
    Update,
}

/// Hashes a series (family name and labels) for the store's series index. Keyed at random per
/// process, so that no one can push series chosen to collide.
#[derive(Clone, Default)]
pub struct SeriesHasher(RandomState);

impl SeriesHasher {
    pub fn hash(&self, name: &str, labels: &[LabelPair]) -> u64 {
        let mut hasher = self.0.build_hasher();
        name.hash(&mut hasher);
        for label in labels {
            label.name().hash(&mut hasher);
            label.value().hash(&mut hasher);
        }
        hasher.finish()
    }
}

pub struct PreparedPush {
    pub key: GroupingKey,
    pub method: PushMethod,
    pub families: BTreeMap<String, PreparedFamily>,
    /// A pushed sample carries a timestamp: the push is refused before anything else.
    pub has_timestamps: bool,
    /// What the push tells about a run of its CronJob, read here, outside the store's lock; none
    /// for a group put back from the store file, whose history is read from the file.
    pub run: Option<RunEvent>,
}

pub struct PreparedFamily {
    /// As pushed, with the grouping labels applied: what the checks read.
    pub family: MetricFamily,
    /// What the group will keep, taken by the store when the push is applied; boxed as the group
    /// keeps it, so that the allocation is made here, before the store's lock.
    pub stored: Option<Box<StoredFamily>>,
}

impl PreparedPush {
    pub fn new(hasher: &SeriesHasher, key: GroupingKey, method: PushMethod, pushed: Vec<MetricFamily>) -> PreparedPush {
        let mut by_name: BTreeMap<String, MetricFamily> = BTreeMap::new();
        for family in pushed {
            // The gateway owns the timestamp families; pushed ones are overwritten, as the
            // reference documents.
            if matches!(family.name(), PUSH_TIME | PUSH_FAILURE_TIME) {
                continue;
            }
            // A name repeated in one protobuf push: the last one wins.
            by_name.insert(family.name().to_string(), family);
        }
        let has_timestamps = by_name.values().flat_map(|f| &f.metric).any(|m| m.timestamp_ms.is_some());
        let run = runs::event(&key, &by_name);
        let families = by_name
            .into_iter()
            .map(|(name, mut family)| {
                let stored = (!has_timestamps).then(|| {
                    sanitize(&mut family, &key);
                    let hashes = family.metric.iter().map(|m| hasher.hash(&name, &m.label)).collect();
                    Box::new(StoredFamily::new(&family, hashes, 0))
                });
                (name, PreparedFamily { family, stored })
            })
            .collect();
        PreparedPush { key, method, families, has_timestamps, run }
    }
}

/// Forces the grouping labels onto every series, gives it `instance=""` when it has no
/// instance, and sorts its labels by name: what the group will expose.
fn sanitize(family: &mut MetricFamily, key: &GroupingKey) {
    for metric in &mut family.metric {
        for (name, value) in key.labels() {
            match metric.label.iter_mut().find(|l| l.name() == name) {
                Some(label) => label.value = Some(value.clone()),
                None => metric.label.push(LabelPair { name: Some(name.clone()), value: Some(value.clone()) }),
            }
        }
        if !metric.label.iter().any(|l| l.name() == "instance") {
            metric.label.push(LabelPair { name: Some("instance".into()), value: Some(String::new()) });
        }
        metric.label.sort_by(|a, b| a.name().cmp(b.name()));
    }
}
