//! The gateway's store on disk: one redb file (a crash-safe, copy-on-write B-tree) holding
//! every group, one record per group, keyed by its grouping key, and in front of it the push log
//! (push_log.rs, `<file>.log`), which takes each commit as one block appended. A commit is on
//! disk (`fdatasync`) when `write` returns, so a push acknowledged after it survives `kill -9`
//! and power loss. When the log's room is full, a checkpoint writes the groups it holds to the
//! redb file in one transaction and the log starts again; a commit larger than the room goes to
//! the redb file directly. Opening reads the redb file and then the log over it. The journal
//! (journal.rs) decides when to write; this file only knows the files.
//!
//! Why a log in front of the B-tree: a redb commit rewrites about eight scattered 4 KiB pages
//! (the group's leaf, the branches above it, the allocator state and the header), 32 KiB for a
//! 169-byte push; the log writes one block at the end of what it wrote before. The numbers, and
//! the engines measured against each other, are in benches/README.md ("The next store").
//!
//! A record is a protobuf `Group` (proto/store.proto), the same in both files. A file that is
//! not a cronpush store, or is damaged, is an error, never an empty gateway: the caller stops,
//! or moves the file aside when the operator asked to start empty
//! (`--persistence.start-empty-if-damaged`). A file of the version before the log is a store
//! with an empty log.

use std::collections::{BTreeMap, HashMap};
use std::io::ErrorKind;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use prost::Message;
use redb::{Database, DatabaseError, ReadableDatabase, ReadableTable, TableDefinition, TableHandle};

use super::disk_counts::{DiskCounts, written_by_this_thread};
use super::push_log::{LogError, PushLog};
use crate::gateway::store::cronjob_series::ContainerEnd;
use crate::gateway::store::runs::{ContainerLog, RunEnd, RunHistory, RunRecord};
use crate::gateway::store::{Group as StoreGroup, GroupingKey, Nanos, Store};
use crate::proto::client::{LabelPair, MetricFamily};
use crate::proto::store::{
    ContainerEnd as StoredContainerEnd, ContainerLog as StoredContainerLog, Group, Run, RunEnd as StoredRunEnd,
    StoredFamily,
};

/// Every group, by `GroupingKey`'s display form (`{instance="i",job="j"}`), which is unique.
const GROUPS: TableDefinition<&str, &[u8]> = TableDefinition::new("cronpush.groups.v1");

/// redb's page cache. The gateway keeps every group in memory anyway; the cache only has to
/// hold the pages a commit touches, and the default (1 GiB) is more than a Pi has.
const CACHE_BYTES: usize = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("cannot open {path}: {source}")]
    Open { path: PathBuf, source: std::io::Error },
    #[error("{path} is in use by another process (is another gateway running on it?)")]
    InUse { path: PathBuf },
    #[error(
        "{path} is not a cronpush store or is damaged: {why}. Nothing was changed. To start with an \
         empty store on purpose, pass --persistence.start-empty-if-damaged: the file is then \
         moved aside, not deleted"
    )]
    Damaged { path: PathBuf, why: Damage },
    #[error("cannot move the damaged {path} aside: {source}")]
    MoveAside { path: PathBuf, source: std::io::Error },
    #[error("cannot write to {path}: {why}")]
    Write { path: PathBuf, why: WriteFailure },
}

/// Why the store file cannot be read back: redb's own words, or ours.
#[derive(Debug, thiserror::Error)]
pub enum Damage {
    #[error("reading it failed")]
    Panicked,
    #[error("reading its groups failed")]
    GroupsPanicked,
    #[error("{0}")]
    Database(DatabaseError),
    #[error("it is a redb database without cronpush's groups (it has {0:?})")]
    Foreign(String),
    #[error("{0}")]
    Transaction(redb::TransactionError),
    #[error("{0}")]
    Storage(redb::StorageError),
    #[error("{0}")]
    Table(redb::TableError),
    #[error("the record of group {key}: {why}")]
    Record { key: String, why: prost::DecodeError },
    #[error("{0}")]
    Log(LogError),
}

/// Why a batch could not be written: opening the file again, or the transaction.
#[derive(Debug, thiserror::Error)]
pub enum WriteFailure {
    #[error("{0}")]
    Reopen(DatabaseError),
    #[error("{0}")]
    Transaction(redb::Error),
    #[error("the push log: {0}")]
    Log(std::io::Error),
}

/// A group's record as the journal hands it over: its key and its state, or `None` when the
/// group is gone.
pub type Change = (String, Option<Vec<u8>>);

pub struct StoreFile {
    path: PathBuf,
    files: Mutex<Files>,
    counts: Arc<DiskCounts>,
}

struct Files {
    /// `None` after a failed write: redb refuses every later write on a database that hit an
    /// I/O error ("Previous I/O error occurred"), so the next write opens the file again, which
    /// also repairs what the failed commit left.
    db: Option<Database>,
    log: PushLog,
    /// What the log holds, the newest record of each group: the next checkpoint's transaction.
    logged: HashMap<String, Option<Vec<u8>>>,
}

impl StoreFile {
    /// Opens the store at `path` and its log, creating them (and their directory) on a first
    /// start, and reads every group. When a file is damaged and `start_empty_if_damaged` is set,
    /// it is renamed to `<its path>.damaged-<unix seconds>` and an empty one takes its place; the
    /// new name is returned with it.
    pub fn open(
        path: &Path,
        start_empty_if_damaged: bool,
    ) -> Result<(StoreFile, Vec<Group>, Option<PathBuf>), PersistError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| PersistError::Open { path: path.into(), source })?;
        }
        match open_and_read(path) {
            Err(PersistError::Damaged { path: damaged, why }) if start_empty_if_damaged => {
                let seconds = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
                let aside = PathBuf::from(format!("{}.damaged-{seconds}", damaged.display()));
                std::fs::rename(&damaged, &aside)
                    .map_err(|source| PersistError::MoveAside { path: damaged.clone(), source })?;
                tracing::warn!(file = %damaged.display(), moved_to = %aside.display(), reason = %why,
                    "the store file was damaged; moved it aside and started empty, as asked");
                let (file, groups) = open_and_read(path)?;
                Ok((file, groups, Some(aside)))
            }
            other => other.map(|(file, groups)| (file, groups, None)),
        }
    }

    /// Puts what the log holds into the redb file and starts the log again: at a clean stop, so
    /// that the redb file alone holds every group (a backup of it, or the version before the log,
    /// finds them all).
    pub fn checkpoint(&self) -> Result<(), PersistError> {
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        if files.logged.is_empty() {
            return Ok(());
        }
        self.checkpoint_locked(&mut files)
    }

    fn checkpoint_locked(&self, files: &mut Files) -> Result<(), PersistError> {
        let before = written_by_this_thread();
        let logged = files.logged.iter().map(|(key, record)| (key.as_str(), record.as_deref()));
        commit(&self.path, &mut files.db, logged)?;
        let log_bytes = files.log.used();
        files.log.start_again().map_err(|e| self.failed(WriteFailure::Log(e)))?;
        let written = before.zip(written_by_this_thread()).map_or(0, |(before, after)| after.saturating_sub(before));
        self.counts.checkpointed(log_bytes, written);
        tracing::debug!(groups = files.logged.len(), "checkpoint: the push log's groups are in the store file");
        files.logged.clear();
        Ok(())
    }

    /// Writes a batch of changes, on disk when this returns: appended to the log, or, when the
    /// log is full, after a checkpoint.
    pub fn write(&self, changes: Vec<Change>) -> Result<(), PersistError> {
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        let files = &mut *files;
        if !self.append(files, &changes)? {
            // The log is full: its groups go to the redb file first, and only then does the log
            // start again. Were this batch written to redb before the log started again, a crash
            // in between would read the log's older records over it.
            self.checkpoint_locked(files)?;
            if !self.append(files, &changes)? {
                // Larger than the whole room (a wipe, a large push): straight into the redb file,
                // with the log empty behind it.
                return commit(&self.path, &mut files.db, borrowed(&changes));
            }
        }
        files.logged.extend(changes);
        Ok(())
    }

    /// Appends `changes` to the log; `false` when they do not fit in its room.
    fn append(&self, files: &mut Files, changes: &[Change]) -> Result<bool, PersistError> {
        let (used, written) = (files.log.used(), files.log.written());
        let appended = files.log.append(changes).map_err(|e| self.failed(WriteFailure::Log(e)))?;
        if appended {
            self.counts.appended(files.log.used() - used, files.log.written() - written);
        }
        Ok(appended)
    }

    /// What the store has written to the disk so far.
    pub fn counts(&self) -> Arc<DiskCounts> {
        self.counts.clone()
    }

    fn failed(&self, why: WriteFailure) -> PersistError {
        PersistError::Write { path: self.path.clone(), why }
    }
}

/// Changes as `write_to` takes them, without copying a record.
fn borrowed(changes: &[Change]) -> impl Iterator<Item = (&str, Option<&[u8]>)> {
    changes.iter().map(|(key, record)| (key.as_str(), record.as_deref()))
}

/// Writes `changes` to the redb file at `path` in one transaction, opening it again after a
/// failed write (`db` is `None` then, see [`Files::db`]).
fn commit<'a>(
    path: &Path,
    db: &mut Option<Database>,
    changes: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>,
) -> Result<(), PersistError> {
    let failed = |why| PersistError::Write { path: path.into(), why };
    let open = match db.take() {
        Some(open) => open,
        None => database(path, false).map_err(|e| failed(WriteFailure::Reopen(e)))?,
    };
    write_to(&open, changes).map_err(|e| failed(WriteFailure::Transaction(e)))?;
    *db = Some(open);
    Ok(())
}

/// One transaction holding every change; committed (fsync) when this returns `Ok`.
fn write_to<'a>(
    db: &Database,
    changes: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>,
) -> Result<(), redb::Error> {
    let tx = db.begin_write()?;
    {
        let mut table = tx.open_table(GROUPS)?;
        for (key, record) in changes {
            match record {
                Some(bytes) => table.insert(key, bytes).map(drop)?,
                None => table.remove(key).map(drop)?,
            }
        }
    }
    tx.commit()?;
    Ok(())
}

/// The store file as redb opens it, with a cache sized for a Pi; `check_integrity` reads every
/// page's checksum first (at start-up; not when opening again after a failed write).
fn database(path: &Path, check_integrity: bool) -> Result<Database, DatabaseError> {
    Database::builder().set_cache_size(CACHE_BYTES).set_check_integrity_on_open(check_integrity).create(path)
}

/// Creates the store file, readable by its owner only (it holds whatever was pushed), unless it
/// exists. redb makes a new store in an empty file.
fn create_private(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Err(e) if e.kind() != ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

fn open_and_read(path: &Path) -> Result<(StoreFile, Vec<Group>), PersistError> {
    create_private(path).map_err(|source| PersistError::Open { path: path.into(), source })?;
    let damaged = |why: Damage| PersistError::Damaged { path: path.into(), why };
    // redb checks every page's checksum on open; in a debug build it may also panic on a file
    // it cannot have written. Either way the file is damaged, not the gateway.
    let opened =
        panic::catch_unwind(AssertUnwindSafe(|| database(path, true))).map_err(|_| damaged(Damage::Panicked))?;
    let db = match opened {
        Ok(db) => db,
        Err(DatabaseError::DatabaseAlreadyOpen) => return Err(PersistError::InUse { path: path.into() }),
        // redb reports a foreign or truncated file as an I/O error of these kinds.
        Err(DatabaseError::Storage(redb::StorageError::Io(source)))
            if !matches!(source.kind(), ErrorKind::InvalidData | ErrorKind::UnexpectedEof) =>
        {
            return Err(PersistError::Open { path: path.into(), source });
        }
        Err(e) => return Err(damaged(Damage::Database(e))),
    };
    let mut groups: BTreeMap<String, Group> = panic::catch_unwind(AssertUnwindSafe(|| read_groups(&db)))
        .map_err(|_| damaged(Damage::GroupsPanicked))?
        .map_err(damaged)?
        .into_iter()
        .collect();
    // The log over the groups: each of its records is a group's whole state, newer than the
    // redb file's (a checkpoint cut short leaves the same states in both, which reads the same).
    let log_path = PushLog::path_for(path);
    let (log, replayed) = PushLog::open(&log_path).map_err(|e| match e {
        LogError::Io(source) => PersistError::Open { path: log_path.clone(), source },
        other => PersistError::Damaged { path: log_path.clone(), why: Damage::Log(other) },
    })?;
    let mut logged = HashMap::new();
    for (key, record) in replayed.changes {
        match &record {
            Some(bytes) => {
                let group = Group::decode(&bytes[..]).map_err(|why| PersistError::Damaged {
                    path: log_path.clone(),
                    why: Damage::Record { key: key.clone(), why },
                })?;
                groups.insert(key.clone(), group);
            }
            None => {
                groups.remove(&key);
            }
        }
        logged.insert(key, record);
    }
    if replayed.frames > 0 {
        tracing::info!(commits = replayed.frames, groups = logged.len(), "read the push log over the store file");
    }
    let files = Files { db: Some(db), log, logged };
    let file = StoreFile { path: path.into(), files: Mutex::new(files), counts: Arc::default() };
    Ok((file, groups.into_values().collect()))
}

fn read_groups(db: &Database) -> Result<Vec<(String, Group)>, Damage> {
    let tx = db.begin_read().map_err(Damage::Transaction)?;
    let tables: Vec<String> = tx.list_tables().map_err(Damage::Storage)?.map(|t| t.name().to_string()).collect();
    if !tables.iter().any(|t| t == GROUPS.name()) {
        // A new file, or a redb database of some other program.
        return match tables.first() {
            None => Ok(Vec::new()),
            Some(other) => Err(Damage::Foreign(other.clone())),
        };
    }
    let table = tx.open_table(GROUPS).map_err(Damage::Table)?;
    let mut groups = Vec::new();
    for entry in table.iter().map_err(Damage::Storage)? {
        let (key, value) = entry.map_err(Damage::Storage)?;
        let key = key.value().to_string();
        let group = Group::decode(value.value()).map_err(|why| Damage::Record { key: key.clone(), why })?;
        groups.push((key, group));
    }
    Ok(groups)
}

/// The record of a group: what `restore` needs to put it back as it was.
pub fn record(group: &StoreGroup) -> Vec<u8> {
    Group {
        grouping_key: group
            .key
            .labels()
            .iter()
            .map(|(n, v)| LabelPair { name: Some(n.clone()), value: Some(v.clone()) })
            .collect(),
        families: group
            .families
            .iter()
            .map(|(name, f)| StoredFamily { family: f.encode(name), written_unix_nanos: f.written })
            .collect(),
        last_push_unix_nanos: group.last_push,
        last_failure_unix_nanos: group.last_failure,
        created_unix_nanos: group.created,
        runs: group.history.runs().map(stored_run).collect(),
    }
    .encode_to_vec()
}

/// Puts groups read from disk into a fresh store. Groups that no longer pass the store's
/// checks are left out and reported, rather than making the store unscrapable.
pub fn restore(store: &mut Store, groups: Vec<Group>, now: Nanos) -> Vec<String> {
    let mut skipped = Vec::new();
    for group in groups {
        let key_pairs = group.grouping_key.iter().map(|l| (l.name().to_string(), l.value().to_string()));
        let Some(key) = GroupingKey::from_pairs(key_pairs) else {
            skipped.push("a group without a job label".to_string());
            continue;
        };
        let mut families: Vec<(MetricFamily, Nanos)> = Vec::new();
        for stored in group.families {
            match MetricFamily::decode(&stored.family[..]) {
                Ok(family) => families.push((family, stored.written_unix_nanos)),
                Err(e) => skipped.push(format!("a family of group {key}: {e}")),
            }
        }
        let created = if group.created_unix_nanos > 0 { group.created_unix_nanos } else { now };
        let history = RunHistory::from_runs(group.runs.into_iter().map(restored_run));
        let (last_push, last_failure) = (group.last_push_unix_nanos, group.last_failure_unix_nanos);
        if let Err(e) = store.restore(key.clone(), families, last_push, last_failure, created, history) {
            skipped.push(format!("group {key}: {e}"));
        }
    }
    skipped
}

fn stored_run(run: &RunRecord) -> Run {
    Run {
        slot: run.slot,
        start: run.start,
        starts: run.starts,
        end: run.end.as_ref().map(stored_end),
        retried: run.retried.as_ref().map(stored_end),
    }
}

fn stored_end(end: &RunEnd) -> StoredRunEnd {
    StoredRunEnd {
        slot: end.slot,
        completed: end.completed,
        duration_seconds: end.duration_seconds,
        result: end.result.clone(),
        attempt: end.attempt,
        containers: end
            .containers
            .iter()
            .map(|c| StoredContainerEnd {
                container: c.container.clone(),
                exit_code: c.exit_code,
                reason: c.reason.clone(),
                signal: c.signal.clone(),
            })
            .collect(),
        logs: end
            .logs
            .iter()
            .map(|l| StoredContainerLog {
                container: l.container.clone(),
                text: l.text.clone(),
                truncated: l.truncated,
            })
            .collect(),
    }
}

fn restored_run(run: Run) -> RunRecord {
    RunRecord {
        slot: run.slot,
        start: run.start,
        starts: run.starts,
        end: run.end.map(restored_end),
        retried: run.retried.map(restored_end),
    }
}

fn restored_end(end: StoredRunEnd) -> RunEnd {
    RunEnd {
        slot: end.slot,
        completed: end.completed,
        duration_seconds: end.duration_seconds,
        result: end.result,
        attempt: end.attempt,
        containers: end
            .containers
            .into_iter()
            .map(|c| ContainerEnd {
                container: c.container,
                exit_code: c.exit_code,
                reason: c.reason,
                signal: c.signal,
            })
            .collect(),
        logs: end
            .logs
            .into_iter()
            .map(|l| ContainerLog { container: l.container, text: l.text, truncated: l.truncated })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::escaping::Escaping;
    use crate::exposition::text_parse::parse;
    use crate::gateway::store::PushMethod;
    use crate::gateway::store::runs::EndedAttempt;
    use crate::gateway::view::scrape::write_text;

    fn changes(store: &mut Store) -> Vec<Change> {
        store.take_changes().into_iter().map(|k| (k.to_string(), store.group(&k).map(record))).collect()
    }

    #[test]
    fn written_groups_come_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/gateway.redb");
        let (file, groups, _) = StoreFile::open(&path, false).unwrap();
        assert!(groups.is_empty(), "a first start finds nothing");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let mut store = Store::new(&[]);
        store.track_changes();
        let key = GroupingKey::from_path("j", false, "/path@base64/L3Zhci90bXA").unwrap();
        store
            .apply_push(
                key.clone(),
                PushMethod::Replace,
                parse(b"# HELP a x\n# TYPE a counter\na{l=\"v\"} 1\n").unwrap(),
                5,
            )
            .unwrap();
        store.apply_push(key.clone(), PushMethod::Update, parse(b"b 1 123\n").unwrap(), 7).unwrap_err();
        // A unit, which only a protobuf push brings and only a protobuf scrape shows.
        let mut sized = parse(b"size_bytes 3\n").unwrap();
        sized[0].unit = Some("bytes".into());
        store.apply_push(key, PushMethod::Update, sized, 7).unwrap();
        let gone = GroupingKey::from_path("gone", false, "").unwrap();
        store.apply_push(gone.clone(), PushMethod::Replace, parse(b"g 1\n").unwrap(), 8).unwrap();
        file.write(changes(&mut store)).unwrap();
        store.delete(&gone);
        file.write(changes(&mut store)).unwrap();
        drop(file);

        let (_file, groups, _) = StoreFile::open(&path, false).unwrap();
        let mut back = Store::new(&[]);
        assert!(restore(&mut back, groups, 9).is_empty());
        let (mut before, mut after) = (String::new(), String::new());
        write_text(&store, &[], Escaping::AllowUtf8, &mut before);
        write_text(&back, &[], Escaping::AllowUtf8, &mut after);
        assert_eq!(before, after);
        assert!(after.contains("push_failure_time_seconds{instance=\"\",job=\"j\",path=\"/var/tmp\"} 7e-09"));
        assert!(!after.contains("gone"), "a deleted group stays deleted");
        assert_eq!(back.named("size_bytes").map(|n| n.unit), Some("bytes"));
    }

    /// A CronJob's group with a finished run and an open one, as cronpush's pushers leave it.
    fn cronjob_with_runs(store: &mut Store) -> GroupingKey {
        let key = GroupingKey::from_path("cronpush", false, "/namespace/batch/cronjob/backup").unwrap();
        let pushes: [&[u8]; 3] = [
            b"cronjob_last_start_timestamp_seconds 1800000002\ncronjob_last_scheduled_timestamp_seconds 1800000000\n",
            b"cronjob_last_completion_timestamp_seconds 1800000012\ncronjob_last_result{result=\"failure\"} 1\n\
              cronjob_last_exit_code{container=\"main\"} 3\ncronjob_last_duration_seconds 10\n\
              cronjob_last_ended_scheduled_timestamp_seconds 1800000000\n",
            b"cronjob_last_start_timestamp_seconds 1800000302\ncronjob_last_scheduled_timestamp_seconds 1800000300\n",
        ];
        for (at, body) in pushes.into_iter().enumerate() {
            store.apply_push(key.clone(), PushMethod::Update, parse(body).unwrap(), at as i64 + 1).unwrap();
        }
        key
    }

    #[test]
    fn a_cronjobs_run_history_comes_back_as_it_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gateway.redb");
        let (file, _, _) = StoreFile::open(&path, false).unwrap();
        let mut store = Store::new(&[]);
        store.track_changes();
        let key = cronjob_with_runs(&mut store);
        file.write(changes(&mut store)).unwrap();
        drop(file);
        let written: Vec<RunRecord> = store.group(&key).unwrap().history.runs().cloned().collect();
        assert_eq!(written.len(), 2);

        let (_file, groups, _) = StoreFile::open(&path, false).unwrap();
        let mut back = Store::new(&[]);
        assert!(restore(&mut back, groups, 9).is_empty());
        let restored: Vec<RunRecord> = back.group(&key).unwrap().history.runs().cloned().collect();
        assert_eq!(restored, written, "not read again from the restored families, which would add a run");
    }

    #[test]
    fn a_record_from_before_the_run_history_opens_with_none() {
        let mut store = Store::new(&[]);
        let key = cronjob_with_runs(&mut store);
        let mut old = Group::decode(&record(store.group(&key).unwrap())[..]).unwrap();
        old.runs.clear();
        let mut back = Store::new(&[]);
        assert!(restore(&mut back, vec![old], 9).is_empty());
        let group = back.group(&key).unwrap();
        assert!(group.history.is_empty());
        assert!(group.families.contains_key("cronjob_last_result"), "its series are all there");
    }

    #[test]
    fn a_smaller_history_runs_keeps_the_newest_on_restore() {
        let mut store = Store::new(&[]);
        let key = cronjob_with_runs(&mut store);
        let group = Group::decode(&record(store.group(&key).unwrap())[..]).unwrap();
        let mut back = Store::new(&[]);
        back.keep_runs(1, 100);
        assert!(restore(&mut back, vec![group], 9).is_empty());
        let runs: Vec<Option<f64>> = back.group(&key).unwrap().history.runs().map(|r| r.slot).collect();
        assert_eq!(runs, vec![Some(1_800_000_300.0)]);
    }

    /// Restoring puts back what was written and reads no run again from the restored series: with
    /// the histories exactly at `--history.max-runs`, a group restored without runs (a record
    /// from before the history) takes no room from the others.
    #[test]
    fn restoring_at_the_bound_forgets_no_run() {
        let mut store = Store::new(&[]);
        let key = cronjob_with_runs(&mut store);
        let group = Group::decode(&record(store.group(&key).unwrap())[..]).unwrap();
        let mut other = group.clone();
        other.grouping_key.iter_mut().find(|l| l.name() == "cronjob").unwrap().value = Some("restore".into());
        other.runs.clear();
        let mut back = Store::new(&[]);
        back.keep_runs(50, 2);
        assert!(restore(&mut back, vec![group, other], 9).is_empty());
        assert_eq!(back.runs_held(), 2);
        assert_eq!(back.group(&key).unwrap().history.len(), 2);
    }

    fn failed_runs_lines(store: &mut Store, key: &GroupingKey, text: &str) {
        let ended = EndedAttempt { slot: Some(1_800_000_000.0), attempt: None };
        let logs = vec![ContainerLog { container: "main".into(), text: text.into(), truncated: true }];
        store.attach_logs(key, ended, logs).unwrap();
    }

    #[test]
    fn a_failed_runs_lines_come_back_with_it_and_a_record_from_before_them_has_none() {
        let mut store = Store::new(&[]);
        let key = cronjob_with_runs(&mut store);
        failed_runs_lines(&mut store, &key, "<script>alert(1)</script>\nexit 3\n");
        let written = Group::decode(&record(store.group(&key).unwrap())[..]).unwrap();
        let mut back = Store::new(&[]);
        assert!(restore(&mut back, vec![written.clone()], 9).is_empty());
        let end = back.group(&key).unwrap().history.runs().next().unwrap().end.clone().unwrap();
        assert_eq!(
            end.logs,
            vec![ContainerLog {
                container: "main".into(),
                text: "<script>alert(1)</script>\nexit 3\n".into(),
                truncated: true
            }]
        );
        assert_eq!(back.log_bytes_held(), store.log_bytes_held(), "counted against the bound again");

        // A file from before the log lines: the field is absent, which reads as none.
        let mut old = written;
        for run in &mut old.runs {
            for end in run.end.iter_mut().chain(run.retried.iter_mut()) {
                end.logs.clear();
            }
        }
        let mut back = Store::new(&[]);
        assert!(restore(&mut back, vec![old], 9).is_empty());
        assert_eq!(back.log_bytes_held(), 0);
        assert_eq!(back.group(&key).unwrap().history.len(), 2, "its runs are all there");
    }

    #[test]
    fn a_smaller_max_log_bytes_forgets_the_lines_on_restore_and_keeps_the_runs() {
        let mut store = Store::new(&[]);
        let key = cronjob_with_runs(&mut store);
        failed_runs_lines(&mut store, &key, &"x".repeat(1000));
        let written = Group::decode(&record(store.group(&key).unwrap())[..]).unwrap();
        let mut back = Store::new(&[]);
        back.keep_log_bytes(100);
        assert!(restore(&mut back, vec![written], 9).is_empty());
        assert_eq!(back.log_bytes_held(), 0);
        let history = &back.group(&key).unwrap().history;
        assert_eq!(history.len(), 2);
        assert!(history.runs().all(|r| r.end.as_ref().is_none_or(|e| e.logs.is_empty())));
    }

    /// A group's key and record, told apart by `n`.
    fn group_record(job: &str, n: i64) -> Change {
        let group = Group {
            grouping_key: vec![LabelPair { name: Some("job".into()), value: Some(job.into()) }],
            last_push_unix_nanos: n,
            ..Group::default()
        };
        (format!("{{job=\"{job}\"}}"), Some(group.encode_to_vec()))
    }

    /// Each group's `last_push_unix_nanos`, by job, as a fresh open reads them.
    fn read_back(path: &Path) -> BTreeMap<String, i64> {
        let (_file, groups, _) = StoreFile::open(path, false).unwrap();
        groups.into_iter().map(|g| (g.grouping_key[0].value().to_string(), g.last_push_unix_nanos)).collect()
    }

    #[test]
    fn a_full_log_goes_into_the_store_file_and_nothing_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gateway.redb");
        // A log with a small room (of 1 MiB), which the commits below fill three times.
        super::super::push_log::create(&PushLog::path_for(&path), 1 << 20).unwrap();
        let (file, _, _) = StoreFile::open(&path, false).unwrap();
        let mut expected = BTreeMap::new();
        // Three rooms' worth of commits of one group each, then a commit larger than the room.
        // Names that do not deflate, so that the log's frames are as large as the names.
        let name = |kind: &str, n: i64| {
            let mut state = 0x9e37_79b9_u64 + n as u64 * 2 + u64::from(kind == "large");
            let noise: String = (0..40)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    format!("{state:016x}")
                })
                .collect();
            format!("{kind}-{n}-{noise}")
        };
        for n in 0..10_000 {
            let job = name("job", n % 700);
            file.write(vec![group_record(&job, n)]).unwrap();
            expected.insert(job, n);
        }
        let large: Vec<Change> = (0..5_000).map(|n| group_record(&name("large", n), n)).collect();
        file.write(large).unwrap();
        expected.extend((0..5_000).map(|n| (name("large", n), n)));
        file.write(vec![(format!("{{job=\"{}\"}}", name("job", 3)), None)]).unwrap();
        expected.remove(&name("job", 3));
        assert!(file.files.lock().unwrap().log.used() < 1024, "the log started again");
        // What the metrics say: every append counted, the checkpoints and what they wrote.
        let counts = file.counts();
        let [appends, used, checkpoints, checkpointed, written] = [
            &counts.log_appends,
            &counts.log_used_bytes,
            &counts.checkpoints,
            &counts.checkpointed_log_bytes,
            &counts.checkpoint_written_bytes,
        ]
        .map(|n| n.load(std::sync::atomic::Ordering::Relaxed));
        assert_eq!(appends, 10_001, "each commit but the one larger than the room");
        assert!(
            checkpoints >= 3 && checkpointed >= 3 << 19 && checkpointed <= used,
            "{checkpoints} {checkpointed} {used}"
        );
        assert!(written > (1 << 20), "{written} bytes written by the checkpoints");
        drop(file);
        assert_eq!(read_back(&path), expected);
    }

    /// A crash after a checkpoint's transaction and before the log started again leaves the same
    /// states in both files; read over each other, they are the states written.
    #[test]
    fn a_checkpoint_cut_short_reads_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gateway.redb");
        let (file, _, _) = StoreFile::open(&path, false).unwrap();
        file.write(vec![group_record("a", 1), group_record("b", 1)]).unwrap();
        file.write(vec![group_record("a", 2), ("{job=\"b\"}".into(), None)]).unwrap();
        {
            let files = file.files.lock().unwrap();
            let logged = files.logged.iter().map(|(key, record)| (key.as_str(), record.as_deref()));
            write_to(files.db.as_ref().unwrap(), logged).unwrap();
        }
        drop(file);
        assert_eq!(read_back(&path), BTreeMap::from([("a".to_string(), 2)]));
    }

    /// A store file of the version before the log: the redb file alone, written as that version
    /// wrote it (one transaction a commit); it opens as a store with an empty log.
    #[test]
    fn a_store_file_from_before_the_log_is_read_and_carried_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gateway.redb");
        create_private(&path).unwrap();
        let db = database(&path, false).unwrap();
        write_to(&db, borrowed(&[group_record("old", 1), group_record("older", 2)])).unwrap();
        drop(db);
        assert!(!PushLog::path_for(&path).exists());
        let (file, groups, _) = StoreFile::open(&path, false).unwrap();
        assert_eq!(groups.len(), 2);
        file.write(vec![group_record("old", 3)]).unwrap();
        file.checkpoint().unwrap();
        drop(file);
        assert_eq!(read_back(&path), BTreeMap::from([("old".to_string(), 3), ("older".to_string(), 2)]));
    }

    #[test]
    fn a_damaged_push_log_is_refused_and_moved_aside_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gateway.redb");
        let (file, _, _) = StoreFile::open(&path, false).unwrap();
        file.write(vec![group_record("kept", 1)]).unwrap();
        file.checkpoint().unwrap();
        for n in 0..3 {
            file.write(vec![group_record(&format!("logged-{n}"), n)]).unwrap();
        }
        drop(file);
        let log = PushLog::path_for(&path);
        let mut bytes = std::fs::read(&log).unwrap();
        bytes[super::super::push_log::PAGE as usize + 24] ^= 0xff;
        std::fs::write(&log, &bytes).unwrap();
        let Err(e) = StoreFile::open(&path, false) else { panic!("opened a damaged log") };
        assert!(matches!(e, PersistError::Damaged { .. }) && e.to_string().contains(".log"), "{e}");
        assert_eq!(std::fs::read(&log).unwrap(), bytes, "kept as it was");
        let (_file, groups, aside) = StoreFile::open(&path, true).unwrap();
        assert_eq!(std::fs::read(aside.expect("moved aside")).unwrap(), bytes);
        assert_eq!(groups.len(), 1, "the store file's groups, without the damaged log's");
    }

    #[test]
    fn a_damaged_file_is_an_error_until_the_operator_asks_to_start_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gateway.redb");
        std::fs::write(&path, b"gob data from the reference Pushgateway").unwrap();
        let Err(e) = StoreFile::open(&path, false) else { panic!("opened a damaged file") };
        assert!(matches!(e, PersistError::Damaged { .. }), "{e}");
        assert!(e.to_string().contains("--persistence.start-empty-if-damaged"), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), b"gob data from the reference Pushgateway");

        let (_file, groups, aside) = StoreFile::open(&path, true).unwrap();
        assert!(groups.is_empty());
        let aside = aside.expect("moved aside");
        assert_eq!(std::fs::read(aside).unwrap(), b"gob data from the reference Pushgateway");
    }
}
