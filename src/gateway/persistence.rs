//! Keeping the store across restarts. The store is written whole to one file, atomically
//! (temporary file, fsync, rename, fsync of the directory), as the reference does at its
//! `--persistence.interval` and on shutdown.
//!
//! The file holds a protobuf `Snapshot` (proto/snapshot.proto) behind a magic line and a
//! CRC-32, so that a truncated or foreign file is recognised and never taken for an empty store.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use prost::Message;

use super::grouping::GroupingKey;
use super::store::{Nanos, Store};
use crate::proto::client::{LabelPair, MetricFamily};
use crate::proto::snapshot::{Group, Snapshot, StoredFamily};

const MAGIC: &[u8] = b"cronpush-snapshot-v1\n";

#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a cronpush snapshot or is damaged: {why}")]
    Corrupt { path: PathBuf, why: String },
}

/// Where the store is kept between runs. One small interface, so that a durable per-push
/// store can take the place of the snapshot file.
pub trait Persistence: Send + Sync {
    /// What was saved last, or nothing on a first start.
    fn load(&self) -> Result<Option<Snapshot>, PersistError>;
    fn save(&self, snapshot: &Snapshot) -> Result<(), PersistError>;
}

pub struct SnapshotFile {
    path: PathBuf,
}

impl SnapshotFile {
    pub fn new(path: impl Into<PathBuf>) -> SnapshotFile {
        SnapshotFile { path: path.into() }
    }
}

impl Persistence for SnapshotFile {
    fn load(&self) -> Result<Option<Snapshot>, PersistError> {
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(PersistError::Read { path: self.path.clone(), source }),
        };
        let corrupt = |why: &str| PersistError::Corrupt { path: self.path.clone(), why: why.into() };
        let rest = bytes.strip_prefix(MAGIC).ok_or_else(|| corrupt("it does not start with the snapshot header"))?;
        if rest.len() < 4 {
            return Err(corrupt("it ends before its checksum"));
        }
        let (crc, body) = rest.split_at(4);
        if u32::from_le_bytes(crc.try_into().expect("4 bytes")) != crc32fast::hash(body) {
            return Err(corrupt("its checksum does not match (truncated or overwritten)"));
        }
        Snapshot::decode(body).map(Some).map_err(|e| corrupt(&e.to_string()))
    }

    fn save(&self, snapshot: &Snapshot) -> Result<(), PersistError> {
        let body = snapshot.encode_to_vec();
        let write_err = |source| PersistError::Write { path: self.path.clone(), source };
        let dir = self.path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let name = self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        static SAVES: AtomicU64 = AtomicU64::new(0);
        let attempt = SAVES.fetch_add(1, Ordering::Relaxed);
        let temp = dir.join(format!(".{name}.in_progress.{}.{attempt}", std::process::id()));
        let result = (|| {
            let mut file = File::options().write(true).create(true).truncate(true).open(&temp)?;
            set_private(&file)?;
            file.write_all(MAGIC)?;
            file.write_all(&crc32fast::hash(&body).to_le_bytes())?;
            file.write_all(&body)?;
            file.sync_all()?;
            fs::rename(&temp, &self.path)?;
            // The rename itself is durable only once the directory is.
            File::open(dir)?.sync_all()
        })();
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result.map_err(write_err)
    }
}

#[cfg(unix)]
fn set_private(file: &File) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn set_private(_: &File) -> std::io::Result<()> {
    Ok(())
}

/// Everything the store holds, as it will be saved.
pub fn snapshot(store: &Store) -> Snapshot {
    let groups = store
        .groups()
        .map(|g| Group {
            grouping_key: pairs(g.key.labels()),
            families: g
                .families
                .iter()
                .map(|(name, f)| StoredFamily { family: f.encode(name), written_unix_nanos: f.written })
                .collect(),
            last_push_unix_nanos: g.last_push,
            last_failure_unix_nanos: g.last_failure,
        })
        .collect();
    Snapshot { groups }
}

/// Puts a saved snapshot into a fresh store. Groups that no longer pass the store's checks
/// are left out and reported, rather than making the store unscrapable.
pub fn restore(store: &mut Store, snapshot: Snapshot, now: Nanos) -> Vec<String> {
    let mut skipped = Vec::new();
    for group in snapshot.groups {
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
        let created = [group.last_push_unix_nanos, group.last_failure_unix_nanos]
            .into_iter()
            .filter(|t| *t > 0)
            .min()
            .unwrap_or(now);
        if let Err(e) =
            store.restore(key.clone(), families, group.last_push_unix_nanos, group.last_failure_unix_nanos, created)
        {
            skipped.push(format!("group {key}: {e}"));
        }
    }
    skipped
}

fn pairs(labels: &[(String, String)]) -> Vec<LabelPair> {
    labels.iter().map(|(n, v)| LabelPair { name: Some(n.clone()), value: Some(v.clone()) }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::text_parse::parse;
    use crate::gateway::scrape::write_text;
    use crate::gateway::store::PushMethod;

    #[test]
    fn a_saved_store_comes_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let file = SnapshotFile::new(dir.path().join("state"));
        assert!(file.load().unwrap().is_none(), "a first start finds nothing");
        let mut store = Store::new(&[]);
        let key = GroupingKey::from_path("j", false, "/path@base64/L3Zhci90bXA").unwrap();
        store
            .push(key.clone(), PushMethod::Replace, parse(b"# HELP a x\n# TYPE a counter\na{l=\"v\"} 1\n").unwrap(), 5)
            .unwrap();
        store.push(key, PushMethod::Update, parse(b"b 1 123\n").unwrap(), 7).unwrap_err();
        file.save(&snapshot(&store)).unwrap();
        let mut back = Store::new(&[]);
        assert!(restore(&mut back, file.load().unwrap().unwrap(), 9).is_empty());
        let (mut before, mut after) = (String::new(), String::new());
        write_text(&store, &[], &mut before);
        write_text(&back, &[], &mut after);
        assert_eq!(before, after);
        assert!(after.contains("push_failure_time_seconds{instance=\"\",job=\"j\",path=\"/var/tmp\"} 7e-09"));
    }

    #[test]
    fn a_damaged_file_is_an_error_not_an_empty_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        let file = SnapshotFile::new(&path);
        let mut store = Store::new(&[]);
        store
            .push(GroupingKey::from_path("j", false, "").unwrap(), PushMethod::Replace, parse(b"a 1\n").unwrap(), 5)
            .unwrap();
        file.save(&snapshot(&store)).unwrap();
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        assert!(matches!(file.load(), Err(PersistError::Corrupt { .. })));
        fs::write(&path, b"gob data from the reference").unwrap();
        assert!(matches!(file.load(), Err(PersistError::Corrupt { .. })));
    }
}
