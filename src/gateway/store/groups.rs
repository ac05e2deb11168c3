//! The gateway's state: groups of metric families, each named by a grouping key, and the
//! indexes that let a push be checked against everything stored in time proportional to the
//! push, not to the store (the reference re-gathers the whole store on every push).
//!
//! The store knows nothing of HTTP or files. It keeps one invariant: whatever it holds can be
//! scraped. A push that would break that is refused and changes nothing but the group's
//! failure time.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::clock::Nanos;
use super::consistency::{self, Problem};
use super::family::StoredFamily;
use super::grouping::GroupingKey;
use super::prepared_push::{PreparedPush, PushMethod, SeriesHasher};
use super::runs::{ContainerLog, DEFAULT_MAX_LOG_BYTES, DEFAULT_RUNS, DEFAULT_TOTAL_RUNS, EndedAttempt, RunHistory};
use crate::exposition::text_write;
use crate::proto::client::{LabelPair, MetricFamily, MetricType};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PushError {
    #[error(
        "pushed metrics are invalid or inconsistent with existing metrics: pushed metrics must not have timestamps"
    )]
    Timestamps,
    #[error("pushed metrics are invalid or inconsistent with existing metrics: {}", list(.0))]
    Inconsistent(Vec<Problem>),
}

/// Why log lines were not kept with a run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogsRefusal {
    #[error("no group {0}: log lines are kept with a run of an existing group")]
    NoGroup(String),
    #[error("group {0} has no ended run to keep log lines with")]
    NoEndedRun(String),
}

/// The problems as client_golang's multi-error lists them.
fn list(problems: &[Problem]) -> String {
    match problems {
        [one] => one.to_string(),
        many => {
            let mut s = format!("{} error(s) occurred:", many.len());
            for p in many {
                s.push_str("\n* ");
                s.push_str(&p.to_string());
            }
            s
        }
    }
}

pub struct Group {
    pub key: GroupingKey,
    /// Boxed: a map node has room for eleven entries, so a group of one family kept in place
    /// took eleven families' room (1.7 KB a group; scripts/bench's memory rows).
    pub families: BTreeMap<String, Box<StoredFamily>>,
    pub last_push: Nanos,
    pub last_failure: Nanos,
    pub created: Nanos,
    /// `{instance="",job="j"}`, the labels of the group's own timestamp series, rendered once.
    pub series_labels: String,
    /// The last runs of the group's CronJob, when cronpush's pushers report on one.
    pub history: RunHistory,
}

impl Group {
    fn new(key: GroupingKey, now: Nanos) -> Group {
        let series_labels = render_labels(key.with_default_instance().labels());
        Group {
            key,
            families: BTreeMap::new(),
            last_push: 0,
            last_failure: 0,
            created: now,
            series_labels,
            history: RunHistory::default(),
        }
    }

    /// Whether the last change to the group succeeded (the UI's and JSON API's flag).
    pub fn last_push_successful(&self) -> bool {
        self.last_failure <= self.last_push
    }

    /// When the group was last changed by a successful push; its creation when it never was
    /// (a group created by a refused push), so that such a group is not old from birth.
    pub fn last_success(&self) -> Nanos {
        if self.last_push != 0 { self.last_push } else { self.created }
    }
}

/// What a family name stands for across the store.
struct NameEntry {
    ty: MetricType,
    /// The groups holding a family of this name, by slot.
    slots: BTreeSet<u32>,
    /// A name of the gateway's own metrics: its type is fixed even when no group holds it.
    builtin: bool,
}

/// Which groups hold a series with a given hash. Nearly always one.
enum Owners {
    One(u32),
    Many(Vec<u32>),
}

pub struct Store {
    slots: Vec<Option<Group>>,
    free: Vec<u32>,
    by_key: HashMap<GroupingKey, u32>,
    names: BTreeMap<String, NameEntry>,
    series: HashMap<u64, Owners>,
    hasher: SeriesHasher,
    /// Bumped by every change, so that callers can tell whether anything happened.
    generation: u64,
    /// The groups changed since they were last taken, when a durable store asks to know.
    changed: Option<HashSet<GroupingKey>>,
    /// How many runs each CronJob's history keeps (`--history.runs`).
    history_runs: usize,
    /// How many runs all the histories keep together (`--history.max-runs`).
    history_total: usize,
    /// How many runs the histories hold now.
    runs_held: usize,
    /// How many bytes of log lines all the histories keep together (`--history.max-log-bytes`).
    max_log_bytes: usize,
    /// How many bytes of log lines the histories hold now.
    log_bytes_held: usize,
}

impl Store {
    /// An empty store that knows the names and types of the gateway's own metrics, so that a
    /// push cannot give them another type.
    pub fn new(builtin: &[(&str, MetricType)]) -> Store {
        let mut names = BTreeMap::new();
        for (name, ty) in builtin {
            names.insert(name.to_string(), NameEntry { ty: *ty, slots: BTreeSet::new(), builtin: true });
        }
        Store {
            slots: Vec::new(),
            free: Vec::new(),
            by_key: HashMap::new(),
            names,
            series: HashMap::new(),
            hasher: SeriesHasher::default(),
            generation: 0,
            changed: None,
            history_runs: DEFAULT_RUNS,
            history_total: DEFAULT_TOTAL_RUNS,
            runs_held: 0,
            max_log_bytes: DEFAULT_MAX_LOG_BYTES,
            log_bytes_held: 0,
        }
    }

    /// How many bytes of log lines the histories keep together from now on; 0 keeps none.
    pub fn keep_log_bytes(&mut self, max: usize) {
        self.max_log_bytes = max;
    }

    /// How many bytes of log lines the histories hold now.
    pub fn log_bytes_held(&self) -> usize {
        self.log_bytes_held
    }

    /// Keeps the last lines of failed containers' logs with the run of `key`'s group that `ended`
    /// names (see [`RunHistory::attach_logs`]), then forgets the oldest lines of any group beyond
    /// `--history.max-log-bytes`: the runs themselves stay.
    pub fn attach_logs(
        &mut self,
        key: &GroupingKey,
        ended: EndedAttempt,
        logs: Vec<ContainerLog>,
    ) -> Result<(), LogsRefusal> {
        let slot = *self.by_key.get(key).ok_or_else(|| LogsRefusal::NoGroup(key.to_string()))?;
        let group = self.slots[slot as usize].as_mut().expect("indexed slots hold a group");
        let before = group.history.log_bytes();
        if !group.history.attach_logs(ended, logs) {
            return Err(LogsRefusal::NoEndedRun(key.to_string()));
        }
        self.log_bytes_held = self.log_bytes_held - before + group.history.log_bytes();
        self.generation += 1;
        self.note_change(key);
        self.hold_logs_within_total();
        Ok(())
    }

    /// Forgets the oldest log lines, whichever CronJob's they are, until all histories hold at
    /// most `--history.max-log-bytes`. Only a store at the bound scans its groups.
    fn hold_logs_within_total(&mut self) {
        while self.log_bytes_held > self.max_log_bytes {
            let oldest = self
                .slots
                .iter_mut()
                .flatten()
                .filter_map(|g| g.history.oldest_logs().map(|at| (at, g)))
                .min_by(|a, b| a.0.total_cmp(&b.0));
            let Some((_, group)) = oldest else { break };
            let before = group.history.log_bytes();
            group.history.forget_oldest_logs();
            let forgotten = before - group.history.log_bytes();
            let key = group.key.clone();
            self.log_bytes_held -= forgotten;
            self.note_change(&key);
            if forgotten == 0 {
                break;
            }
        }
    }

    /// How many runs each CronJob's history keeps from now on, and all of them together; 0
    /// keeps none.
    pub fn keep_runs(&mut self, per_cronjob: usize, total: usize) {
        self.history_runs = per_cronjob;
        self.history_total = total;
    }

    /// How many runs the histories hold now.
    pub fn runs_held(&self) -> usize {
        self.runs_held
    }

    /// Forgets the oldest run of the CronJob with the most runs until the histories hold at most
    /// `--history.max-runs` together: the CronJobs share the room, and a CronJob that runs rarely
    /// keeps its last runs while a frequent one gives up its oldest. Only a store at the bound
    /// scans its groups, once per run it takes in.
    fn hold_runs_within_total(&mut self) {
        while self.runs_held > self.history_total {
            let fullest = self.slots.iter_mut().flatten().max_by_key(|g| g.history.len());
            let Some(group) = fullest.filter(|g| !g.history.is_empty()) else { break };
            let logs_before = group.history.log_bytes();
            group.history.forget_oldest();
            self.log_bytes_held -= logs_before - group.history.log_bytes();
            let key = group.key.clone();
            self.runs_held -= 1;
            self.note_change(&key);
        }
    }

    /// From now on, remembers which groups change, for `take_changes`.
    pub fn track_changes(&mut self) {
        self.changed.get_or_insert_with(HashSet::new);
    }

    /// The groups created, changed or removed since the last call, as of `generation()`.
    pub fn take_changes(&mut self) -> Vec<GroupingKey> {
        self.changed.as_mut().map(|c| c.drain().collect()).unwrap_or_default()
    }

    /// Puts groups back among the changed ones, when writing them out failed.
    pub fn mark_changed(&mut self, keys: impl IntoIterator<Item = GroupingKey>) {
        if let Some(changed) = self.changed.as_mut() {
            changed.extend(keys);
        }
    }

    fn note_change(&mut self, key: &GroupingKey) {
        if let Some(changed) = self.changed.as_mut()
            && !changed.contains(key)
        {
            changed.insert(key.clone());
        }
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn group_count(&self) -> usize {
        self.by_key.len()
    }

    pub fn group(&self, key: &GroupingKey) -> Option<&Group> {
        self.by_key.get(key).and_then(|&slot| self.slots[slot as usize].as_ref())
    }

    /// Every group, in the order they were created (slot order).
    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.slots.iter().flatten()
    }

    /// The hasher of the series index, for preparing pushes outside the lock.
    pub fn series_hasher(&self) -> SeriesHasher {
        self.hasher.clone()
    }

    /// Applies a push, or refuses it and records the failure time.
    pub fn apply_push(
        &mut self,
        key: GroupingKey,
        method: PushMethod,
        families: Vec<MetricFamily>,
        now: Nanos,
    ) -> Result<(), PushError> {
        let mut prepared = PreparedPush::new(&self.hasher, key, method, families);
        self.apply_prepared(&mut prepared, now)
    }

    /// Applies a push prepared with this store's hasher, or refuses it and records the failure
    /// time: the last step of a push (push_pipeline.rs), timestamps checked first, then
    /// consistency. What the store does not keep stays in `push`, to be dropped outside the lock.
    pub fn apply_prepared(&mut self, push: &mut PreparedPush, now: Nanos) -> Result<(), PushError> {
        let slot = self.by_key.get(&push.key).copied();
        let result = if push.has_timestamps {
            Err(PushError::Timestamps)
        } else {
            let problems = self.check(slot, push);
            if problems.is_empty() { Ok(()) } else { Err(PushError::Inconsistent(problems)) }
        };
        match result {
            Ok(()) => self.apply(slot, push, now),
            Err(_) => self.record_failure(slot, &push.key, now),
        }
        self.generation += 1;
        if self.by_key.contains_key(&push.key) {
            self.note_change(&push.key);
        }
        result
    }

    /// Removes a group. Deleting a group that does not exist is not an error.
    pub fn delete(&mut self, key: &GroupingKey) {
        if let Some(slot) = self.by_key.remove(key) {
            let group = self.slots[slot as usize].take().expect("indexed slots hold a group");
            self.runs_held = self.runs_held.saturating_sub(group.history.len());
            self.log_bytes_held = self.log_bytes_held.saturating_sub(group.history.log_bytes());
            for (name, family) in &group.families {
                self.unindex(slot, name, family);
            }
            self.free.push(slot);
            self.generation += 1;
            self.note_change(key);
        }
    }

    /// Removes every group whose last successful push is before `cutoff`, as `delete` would,
    /// and returns their keys. Only push times are read until a group is found stale.
    pub fn expire(&mut self, cutoff: Nanos) -> Vec<GroupingKey> {
        let stale: Vec<GroupingKey> =
            self.groups().filter(|g| g.last_success() < cutoff).map(|g| g.key.clone()).collect();
        for key in &stale {
            self.delete(key);
        }
        stale
    }

    /// Removes every group.
    pub fn wipe(&mut self) {
        let keys: Vec<GroupingKey> = self.by_key.keys().cloned().collect();
        for key in keys {
            self.delete(&key);
        }
    }

    /// Puts back a group read from disk, through the same checks as a push, so that a file
    /// from an older or foreign gateway cannot make the store unscrapable.
    pub fn restore(
        &mut self,
        key: GroupingKey,
        families: Vec<(MetricFamily, Nanos)>,
        last_push: Nanos,
        last_failure: Nanos,
        created: Nanos,
        history: RunHistory,
    ) -> Result<(), PushError> {
        let written: HashMap<String, Nanos> = families.iter().map(|(f, t)| (f.name().to_string(), *t)).collect();
        let families: Vec<MetricFamily> = families.into_iter().map(|(f, _)| f).collect();
        let mut prepared = PreparedPush::new(&self.hasher, key.clone(), PushMethod::Replace, families);
        // Not a push: the history is the one written, not one read again from these families.
        prepared.run = None;
        self.apply_prepared(&mut prepared, created)?;
        let slot = self.by_key[&key];
        let group = self.slots[slot as usize].as_mut().expect("just pushed");
        for (name, family) in group.families.iter_mut() {
            family.written = written.get(name).copied().unwrap_or(created);
        }
        group.last_push = last_push;
        group.last_failure = last_failure;
        group.created = created;
        group.history = history;
        group.history.keep_last(self.history_runs);
        self.runs_held += group.history.len();
        self.log_bytes_held += group.history.log_bytes();
        self.hold_runs_within_total();
        self.hold_logs_within_total();
        Ok(())
    }

    fn check(&self, slot: Option<u32>, push: &PreparedPush) -> Vec<Problem> {
        let group = slot.and_then(|s| self.slots[s as usize].as_ref());
        // The type a name will have once this push is applied, leaving the push itself aside.
        let remaining_type = |name: &str| -> Option<MetricType> {
            let entry = self.names.get(name)?;
            let ours = slot.is_some_and(|s| entry.slots.contains(&s));
            let replaced = ours && (push.method == PushMethod::Replace || push.families.contains_key(name));
            let holders = entry.slots.len() - usize::from(replaced);
            (entry.builtin || holders > 0).then_some(entry.ty)
        };
        let pushed_type = |name: &str| push.families.get(name).map(|p| p.family.r#type());
        let mut problems = Vec::new();
        if group.is_none()
            && let Some(twin) = push.key.twin().filter(|t| self.by_key.contains_key(t))
        {
            problems.push(Problem::TwinGroup { key: push.key.with_default_instance(), twin });
        }
        for (name, prepared) in &push.families {
            let family = &prepared.family;
            consistency::check_family(family, &remaining_type, &pushed_type, &mut problems);
            let hashes = prepared.stored.as_ref().map_or(&[][..], |s| s.hashes());
            // Series of this push by hash, so that equal hashes sit side by side.
            let mut by_hash: Vec<(u64, usize)> = hashes.iter().copied().zip(0..).collect();
            by_hash.sort_unstable();
            for (i, (metric, &hash)) in family.metric.iter().zip(hashes).enumerate() {
                let first_with_hash = by_hash.partition_point(|&(h, _)| h < hash);
                let duplicate_in_push = by_hash[first_with_hash..]
                    .iter()
                    .take_while(|&&(h, j)| h == hash && j < i)
                    .any(|&(_, j)| family.metric[j].label == metric.label);
                let duplicate_in_store = || {
                    self.owners(hash)
                        .filter(|&owner| Some(owner) != slot)
                        .any(|owner| self.holds_series(owner, name, &metric.label))
                };
                if duplicate_in_push || duplicate_in_store() {
                    problems.push(Problem::Duplicate { name: name.clone(), metric: metric.clone() });
                }
            }
        }
        problems
    }

    fn apply(&mut self, slot: Option<u32>, push: &mut PreparedPush, now: Nanos) {
        let slot = slot.unwrap_or_else(|| self.create(push.key.clone(), now));
        let mut group = self.slots[slot as usize].take().expect("slot holds a group");
        let replaced: Vec<String> = match push.method {
            PushMethod::Replace => group.families.keys().cloned().collect(),
            PushMethod::Update => group.families.keys().filter(|n| push.families.contains_key(*n)).cloned().collect(),
        };
        for name in replaced {
            let family = group.families.remove(&name).expect("listed from this map");
            self.unindex(slot, &name, &family);
        }
        for (name, prepared) in &mut push.families {
            let mut stored = prepared.stored.take().expect("a checked push is prepared whole");
            stored.written = now;
            self.index(slot, name, &stored);
            group.families.insert(name.clone(), stored);
        }
        group.last_push = now;
        if let Some(event) = push.run.take() {
            let (before, logs_before) = (group.history.len(), group.history.log_bytes());
            group.history.record(event, self.history_runs);
            self.runs_held = self.runs_held.saturating_sub(before) + group.history.len();
            self.log_bytes_held = self.log_bytes_held.saturating_sub(logs_before) + group.history.log_bytes();
        }
        self.slots[slot as usize] = Some(group);
        self.hold_runs_within_total();
    }

    fn record_failure(&mut self, slot: Option<u32>, key: &GroupingKey, now: Nanos) {
        let slot = match slot {
            Some(slot) => slot,
            // The reference creates the group even when that makes every scrape fail (its
            // timestamp series duplicating a twin group's); we create it only when it is safe.
            None if key.twin().is_some_and(|t| self.by_key.contains_key(&t)) => return,
            None => self.create(key.clone(), now),
        };
        if let Some(group) = self.slots[slot as usize].as_mut() {
            group.last_failure = now;
        }
    }

    fn create(&mut self, key: GroupingKey, now: Nanos) -> u32 {
        let group = Group::new(key.clone(), now);
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(group);
                slot
            }
            None => {
                self.slots.push(Some(group));
                (self.slots.len() - 1) as u32
            }
        };
        self.by_key.insert(key, slot);
        slot
    }

    fn index(&mut self, slot: u32, name: &str, family: &StoredFamily) {
        let entry = self.names.entry(name.to_string()).or_insert_with(|| NameEntry {
            ty: family.ty(),
            slots: BTreeSet::new(),
            builtin: false,
        });
        entry.ty = family.ty();
        entry.slots.insert(slot);
        for &hash in family.hashes() {
            match self.series.get_mut(&hash) {
                None => {
                    self.series.insert(hash, Owners::One(slot));
                }
                Some(Owners::One(other)) => {
                    let other = *other;
                    self.series.insert(hash, Owners::Many(vec![other, slot]));
                }
                Some(Owners::Many(owners)) => owners.push(slot),
            }
        }
    }

    fn unindex(&mut self, slot: u32, name: &str, family: &StoredFamily) {
        if let Some(entry) = self.names.get_mut(name) {
            entry.slots.remove(&slot);
            if entry.slots.is_empty() && !entry.builtin {
                self.names.remove(name);
            }
        }
        for &hash in family.hashes() {
            match self.series.get_mut(&hash) {
                Some(Owners::One(owner)) if *owner == slot => {
                    self.series.remove(&hash);
                }
                Some(Owners::Many(owners)) => {
                    if let Some(i) = owners.iter().position(|o| *o == slot) {
                        owners.swap_remove(i);
                    }
                    if let [last] = owners[..] {
                        self.series.insert(hash, Owners::One(last));
                    }
                }
                _ => {}
            }
        }
    }

    fn owners(&self, hash: u64) -> impl Iterator<Item = u32> + '_ {
        let (one, many): (Option<u32>, &[u32]) = match self.series.get(&hash) {
            None => (None, &[]),
            Some(Owners::One(o)) => (Some(*o), &[]),
            Some(Owners::Many(v)) => (None, v.as_slice()),
        };
        one.into_iter().chain(many.iter().copied())
    }

    fn holds_series(&self, slot: u32, name: &str, labels: &[LabelPair]) -> bool {
        self.slots[slot as usize]
            .as_ref()
            .and_then(|g| g.families.get(name))
            .is_some_and(|f| f.metrics().iter().any(|m| m.label == labels))
    }

    /// The names of stored families, in byte order.
    pub fn family_names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().filter(|(_, e)| !e.slots.is_empty()).map(|(n, _)| n.as_str())
    }

    /// Everything stored under one family name, across groups in group order.
    pub fn named(&self, name: &str) -> Option<Named<'_>> {
        let entry = self.names.get(name).filter(|e| !e.slots.is_empty())?;
        let families: Vec<&StoredFamily> = entry
            .slots
            .iter()
            .filter_map(|&s| self.slots[s as usize].as_ref()?.families.get(name).map(|f| &**f))
            .collect();
        // Groups may disagree on HELP; the longest-standing group with one decides, so the
        // answer does not change from scrape to scrape.
        let help = families.iter().map(|f| f.help()).find(|h| !h.is_empty()).unwrap_or("");
        // The unit likewise (the reference takes the first group's, in map order).
        let unit = families.iter().map(|f| f.unit()).find(|u| !u.is_empty()).unwrap_or("");
        Some(Named { ty: entry.ty, help, unit, families })
    }
}

/// The families of one name across groups, as a scrape merges them.
pub struct Named<'a> {
    pub ty: MetricType,
    pub help: &'a str,
    pub unit: &'a str,
    pub families: Vec<&'a StoredFamily>,
}

/// `{a="1",b="2"}` with text-format escaping.
pub fn render_labels(pairs: &[(String, String)]) -> String {
    let labels: Vec<LabelPair> =
        pairs.iter().map(|(n, v)| LabelPair { name: Some(n.clone()), value: Some(v.clone()) }).collect();
    let mut rendered = String::new();
    text_write::write_labels(&mut rendered, &labels, None);
    rendered
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::text_parse::parse;
    use crate::gateway::store::runs::{ContainerLog, EndedAttempt};

    fn key(job: &str, labels: &str) -> GroupingKey {
        GroupingKey::from_path(job, false, labels).unwrap()
    }

    fn push(store: &mut Store, key: &GroupingKey, method: PushMethod, text: &str) -> Result<(), PushError> {
        store.apply_push(key.clone(), method, parse(text.as_bytes()).unwrap(), 1)
    }

    fn names(store: &Store, key: &GroupingKey) -> Vec<String> {
        store.group(key).unwrap().families.keys().cloned().collect()
    }

    /// Only a CronJob's group, named as cronpush's pushers name it, keeps a run history; a PUT
    /// of other series keeps it too (it is not a series), and a refused push adds nothing.
    #[test]
    fn a_cronjobs_group_keeps_its_runs() {
        let mut store = Store::new(&[]);
        let start =
            "cronjob_last_start_timestamp_seconds 1800000002\ncronjob_last_scheduled_timestamp_seconds 1800000000\n";
        let cronjob = key("cronpush", "/namespace/batch/cronjob/backup");
        let elsewhere = key("cronpush", "/namespace/batch");
        push(&mut store, &cronjob, PushMethod::Update, start).unwrap();
        push(&mut store, &elsewhere, PushMethod::Update, start).unwrap();
        assert_eq!(store.group(&cronjob).unwrap().history.len(), 1);
        assert!(store.group(&elsewhere).unwrap().history.is_empty(), "no cronjob label: not a CronJob's group");
        push(&mut store, &cronjob, PushMethod::Replace, "other 1\n").unwrap();
        push(&mut store, &cronjob, PushMethod::Update, "cronjob_last_start_timestamp_seconds 1 2\n").unwrap_err();
        assert_eq!(store.group(&cronjob).unwrap().history.len(), 1);
        store.keep_runs(0, 100);
        push(&mut store, &cronjob, PushMethod::Update, start).unwrap();
        assert!(store.group(&cronjob).unwrap().history.is_empty(), "--history.runs=0 keeps none");
        assert_eq!(store.runs_held(), 0);
    }

    /// `--history.max-runs` bounds all histories together: the CronJob with the most runs gives
    /// up its oldest, so one that runs every minute cannot push out a nightly one's last runs,
    /// and a deleted group gives its room back.
    #[test]
    fn the_histories_share_one_bound() {
        let mut store = Store::new(&[]);
        store.track_changes();
        store.keep_runs(50, 5);
        let start = |slot: u64| {
            format!("cronjob_last_start_timestamp_seconds {slot}\ncronjob_last_scheduled_timestamp_seconds {slot}\n")
        };
        let nightly = key("cronpush", "/namespace/batch/cronjob/nightly");
        let minutely = key("cronpush", "/namespace/batch/cronjob/minutely");
        for day in 0..2 {
            push(&mut store, &nightly, PushMethod::Update, &start(1_800_000_000 + day * 86_400)).unwrap();
        }
        store.take_changes();
        for minute in 0..10 {
            push(&mut store, &minutely, PushMethod::Update, &start(1_800_000_000 + minute * 60)).unwrap();
        }
        assert_eq!(store.runs_held(), 5);
        assert_eq!(store.group(&nightly).unwrap().history.len(), 2, "the nightly one keeps its runs");
        let kept: Vec<f64> = store.group(&minutely).unwrap().history.runs().filter_map(|r| r.slot).collect();
        assert_eq!(kept, vec![1_800_000_420.0, 1_800_000_480.0, 1_800_000_540.0], "the newest");
        assert!(!store.take_changes().contains(&nightly), "nothing to write for the untouched group");
        store.delete(&minutely);
        assert_eq!(store.runs_held(), 2);
        push(&mut store, &nightly, PushMethod::Update, &start(1_800_172_800)).unwrap();
        assert_eq!(store.group(&nightly).unwrap().history.len(), 3, "room given back");
    }

    /// A failed run of `cronjob` for `slot`, its start and end pushed.
    fn failed_run(store: &mut Store, cronjob: &GroupingKey, slot: u64) {
        let run =
            format!("cronjob_last_start_timestamp_seconds {slot}\ncronjob_last_scheduled_timestamp_seconds {slot}\n");
        push(store, cronjob, PushMethod::Update, &run).unwrap();
        let end = format!(
            "cronjob_last_completion_timestamp_seconds {}\ncronjob_last_result{{result=\"failure\"}} 1\n\
             cronjob_last_ended_scheduled_timestamp_seconds {slot}\n",
            slot + 10
        );
        push(store, cronjob, PushMethod::Update, &end).unwrap();
    }

    fn lines(store: &mut Store, cronjob: &GroupingKey, slot: u64, bytes: usize) -> Result<(), LogsRefusal> {
        let ended = EndedAttempt { slot: Some(slot as f64), attempt: None };
        let logs = vec![ContainerLog { container: "main".into(), text: "x".repeat(bytes), truncated: false }];
        store.attach_logs(cronjob, ended, logs)
    }

    fn has_lines(store: &Store, cronjob: &GroupingKey) -> Vec<bool> {
        let history = &store.group(cronjob).unwrap().history;
        history.runs().map(|r| r.end.as_ref().is_some_and(|e| !e.logs.is_empty())).collect()
    }

    /// `--history.max-log-bytes` bounds the lines of all histories together: beyond it the oldest
    /// lines go, whichever CronJob's, and the runs stay; a group deleted, or a run forgotten,
    /// gives its lines' room back.
    #[test]
    fn the_log_lines_share_one_bound_and_go_with_their_runs() {
        let mut store = Store::new(&[]);
        store.track_changes();
        store.keep_runs(3, 100);
        store.keep_log_bytes(3 * 1004);
        let (nightly, hourly) =
            (key("cronpush", "/namespace/batch/cronjob/nightly"), key("cronpush", "/namespace/batch/cronjob/hourly"));
        failed_run(&mut store, &nightly, 1_800_000_000);
        lines(&mut store, &nightly, 1_800_000_000, 1000).unwrap();
        for hour in 1..=3 {
            let slot = 1_800_000_000 + hour * 3600;
            failed_run(&mut store, &hourly, slot);
            store.take_changes();
            lines(&mut store, &hourly, slot, 1000).unwrap();
            assert!(store.take_changes().contains(&hourly), "written with its group");
        }
        assert_eq!(store.log_bytes_held(), 3 * 1004);
        assert_eq!(has_lines(&store, &nightly), vec![false], "the oldest lines went; the run stays");
        assert_eq!(has_lines(&store, &hourly), vec![true, true, true]);
        // A fourth hourly run pushes the first out of its history (--history.runs=3), lines too.
        failed_run(&mut store, &hourly, 1_800_000_000 + 4 * 3600);
        assert_eq!(store.log_bytes_held(), 2 * 1004);
        store.delete(&hourly);
        assert_eq!(store.log_bytes_held(), 0, "deleted with the group");
        assert_eq!(lines(&mut store, &hourly, 1_800_003_600, 10), Err(LogsRefusal::NoGroup(hourly.to_string())));
        store.keep_log_bytes(0);
        lines(&mut store, &nightly, 1_800_000_000, 10).unwrap();
        assert_eq!((store.log_bytes_held(), has_lines(&store, &nightly)), (0, vec![false]), "0 keeps none");
    }

    #[test]
    fn put_replaces_and_post_updates() {
        let mut store = Store::new(&[]);
        let k = key("j", "");
        push(&mut store, &k, PushMethod::Replace, "a 1\nb 2\n").unwrap();
        push(&mut store, &k, PushMethod::Update, "a{x=\"1\"} 10\nc 3\n").unwrap();
        assert_eq!(names(&store, &k), ["a", "b", "c"]);
        let a = &store.group(&k).unwrap().families["a"];
        assert_eq!(a.series_count(), 1, "POST replaces a family as a whole");
        push(&mut store, &k, PushMethod::Replace, "d 1\n").unwrap();
        assert_eq!(names(&store, &k), ["d"]);
    }

    #[test]
    fn grouping_labels_are_forced_and_instance_defaults_to_empty() {
        let mut store = Store::new(&[]);
        let k = key("j", "/instance/i1");
        push(&mut store, &k, PushMethod::Replace, "a{job=\"other\",instance=\"i2\",x=\"y\"} 1\n").unwrap();
        let labels = &store.group(&k).unwrap().families["a"].metrics()[0].label;
        let got: Vec<(&str, &str)> = labels.iter().map(|l| (l.name(), l.value())).collect();
        assert_eq!(got, [("instance", "i1"), ("job", "j"), ("x", "y")]);
    }

    #[test]
    fn refuses_type_clashes_across_groups_and_changes_nothing() {
        let mut store = Store::new(&[]);
        push(&mut store, &key("a", ""), PushMethod::Replace, "# TYPE m counter\nm 1\n").unwrap();
        let err = push(&mut store, &key("b", ""), PushMethod::Replace, "# TYPE m gauge\nm 1\n").unwrap_err();
        assert!(err.to_string().contains("is not a COUNTER"), "{err}");
        let b = store.group(&key("b", "")).unwrap();
        assert!(b.families.is_empty() && b.last_failure == 1 && b.last_push == 0);
        // The same group may change the type of its own family.
        push(&mut store, &key("a", ""), PushMethod::Replace, "# TYPE m gauge\nm 1\n").unwrap();
    }

    #[test]
    fn refuses_duplicate_series_across_groups() {
        let mut store = Store::new(&[]);
        push(&mut store, &key("j", ""), PushMethod::Replace, "a{x=\"1\"} 1\n").unwrap();
        let err = push(&mut store, &key("j", "/x/1"), PushMethod::Replace, "a 2\n").unwrap_err();
        assert!(err.to_string().contains("was collected before with the same name and label values"), "{err}");
        // Once the first group is gone, the second may push.
        store.delete(&key("j", ""));
        push(&mut store, &key("j", "/x/1"), PushMethod::Replace, "a 2\n").unwrap();
    }

    #[test]
    fn twin_groups_are_refused_without_breaking_the_store() {
        let mut store = Store::new(&[]);
        push(&mut store, &key("j", "/instance@base64/="), PushMethod::Replace, "a 1\n").unwrap();
        assert!(push(&mut store, &key("j", ""), PushMethod::Replace, "b 1\n").is_err());
        assert!(store.group(&key("j", "")).is_none(), "no group whose timestamps would duplicate");
    }

    #[test]
    fn refuses_suffix_collisions() {
        let mut store = Store::new(&[]);
        push(&mut store, &key("a", ""), PushMethod::Replace, "# TYPE s summary\ns_sum 1\ns_count 1\n").unwrap();
        let err = push(&mut store, &key("b", ""), PushMethod::Replace, "s_count 1\n").unwrap_err();
        assert!(err.to_string().contains("collides with previously collected summary named \"s\""), "{err}");
        push(&mut store, &key("b", ""), PushMethod::Replace, "s_bucket 1\n").unwrap();
        push(&mut store, &key("c", ""), PushMethod::Replace, "h_bucket 1\n").unwrap();
        let err = push(&mut store, &key("d", ""), PushMethod::Replace, "# TYPE h histogram\nh_count 1\n").unwrap_err();
        assert!(err.to_string().contains("collides"), "{err}");
    }

    #[test]
    fn refuses_timestamps_and_reserved_labels() {
        let mut store = Store::new(&[]);
        let err = push(&mut store, &key("j", ""), PushMethod::Replace, "a 1 1234\n").unwrap_err();
        assert_eq!(err, PushError::Timestamps);
        let err = push(&mut store, &key("j", ""), PushMethod::Replace, "i{__x=\"y\"} 1\n").unwrap_err();
        assert!(err.to_string().ends_with("has a label with an invalid name: __x"), "{err}");
    }

    #[test]
    fn builtin_types_are_fixed() {
        let mut store = Store::new(&[("process_open_fds", MetricType::Gauge)]);
        assert!(
            push(
                &mut store,
                &key("j", ""),
                PushMethod::Replace,
                "# TYPE process_open_fds counter\nprocess_open_fds 1\n"
            )
            .is_err()
        );
        push(&mut store, &key("j", ""), PushMethod::Replace, "# TYPE process_open_fds gauge\nprocess_open_fds 1\n")
            .unwrap();
    }

    #[test]
    fn empty_push_keeps_the_group() {
        let mut store = Store::new(&[]);
        let k = key("j", "");
        push(&mut store, &k, PushMethod::Update, "").unwrap();
        assert!(store.group(&k).unwrap().families.is_empty());
        push(&mut store, &k, PushMethod::Replace, "a 1\n").unwrap();
        push(&mut store, &k, PushMethod::Update, "").unwrap();
        assert_eq!(names(&store, &k), ["a"]);
        push(&mut store, &k, PushMethod::Replace, "").unwrap();
        assert!(names(&store, &k).is_empty());
    }

    #[test]
    fn delete_frees_names_and_series() {
        let mut store = Store::new(&[]);
        push(&mut store, &key("a", ""), PushMethod::Replace, "# TYPE m counter\nm 1\n").unwrap();
        store.delete(&key("a", ""));
        store.delete(&key("never", ""));
        push(&mut store, &key("b", ""), PushMethod::Replace, "# TYPE m gauge\nm 1\n").unwrap();
        assert_eq!(store.group_count(), 1);
        store.wipe();
        assert_eq!(store.group_count(), 0);
    }

    #[test]
    fn expire_removes_only_groups_pushed_before_the_cutoff() {
        let mut store = Store::new(&[]);
        let at = |store: &mut Store, job: &str, text: &str, now: Nanos| {
            store.apply_push(key(job, ""), PushMethod::Replace, parse(text.as_bytes()).unwrap(), now)
        };
        at(&mut store, "old", "# TYPE m counter\nm{x=\"1\"} 1\n", 10).unwrap();
        at(&mut store, "new", "n 1\n", 30).unwrap();
        at(&mut store, "repushed", "r 1\n", 10).unwrap();
        at(&mut store, "repushed", "r 2\n", 30).unwrap();
        // Created by a refused push at 25: judged by its creation, not by a push time of 0.
        assert!(at(&mut store, "refused", "t 1 5\n", 25).is_err());
        let generation = store.generation();
        assert!(store.expire(10).is_empty(), "pushed at the cutoff is not before it");
        assert_eq!(store.generation(), generation, "nothing expired, nothing changed");
        assert_eq!(store.expire(20), [key("old", "")]);
        assert_eq!(store.group_count(), 3);
        // Its names and series are free again, as after a DELETE.
        at(&mut store, "other", "# TYPE m gauge\nm{x=\"1\"} 1\n", 40).unwrap();
    }

    #[test]
    fn changed_groups_are_tracked_only_when_asked() {
        let mut store = Store::new(&[]);
        push(&mut store, &key("untracked", ""), PushMethod::Replace, "a 1\n").unwrap();
        store.track_changes();
        assert!(store.take_changes().is_empty(), "nothing before tracking began");
        push(&mut store, &key("a", ""), PushMethod::Replace, "x 1\n").unwrap();
        push(&mut store, &key("b", ""), PushMethod::Replace, "y 1 5\n").unwrap_err();
        store.delete(&key("untracked", ""));
        store.delete(&key("never-existed", ""));
        let mut changed = store.take_changes();
        changed.sort();
        assert_eq!(changed, [key("a", ""), key("b", ""), key("untracked", "")]);
        assert!(store.take_changes().is_empty(), "taken once");
        store.mark_changed([key("a", "")]);
        store.wipe();
        let mut changed = store.take_changes();
        changed.sort();
        assert_eq!(changed, [key("a", ""), key("b", "")]);
    }
}
