//! A throwaway measurement for issue 18, part 2, not wired into the gateway: what a store writes
//! to the disk for one small commit made durable (fsync or fdatasync) before it returns, the way
//! the gateway acknowledges a push. Each engine gets a new directory, KEYS keys of a 169-byte
//! value written in one commit, then COMMITS commits of one key each (a random one of the KEYS),
//! one at a time. Per commit it reports the bytes the process caused to be written
//! (/proc/self/io `write_bytes`) and, when given the block device's stat file, what reached the
//! device (write requests, bytes, cache flushes: these also hold what the filesystem's journal
//! wrote, which `write_bytes` does not); then the files the engine keeps, and how long opening
//! it again and reading every key takes.
//!
//! The engines: redb as the gateway uses it today (one transaction per commit); fjall (an LSM
//! tree with a journal) persisted with `SyncData` and with `SyncAll`; and two forms of a small
//! log of our own (a record per commit, its length and CRC-32 first): appended to the end of the
//! file; written into room made ahead with `set_len` (a hole, as okaywal and fjall make it); and
//! written into zeros written ahead, so that `fdatasync` has no file size and no block
//! allocation to write.
//!
//! Run: `cargo run --release --example store_commit -- DIR [KEYS] [COMMITS] [DEVICE_STAT]`,
//! with DIR on the filesystem to measure (scripts/bench-store's loop device gives clean device
//! counters: /sys/block/loopN/stat). DIR is emptied first.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

const VALUE_BYTES: usize = 169;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// One engine under test: the same three operations for each.
trait Engine {
    fn name(&self) -> &'static str;
    /// Writes every key in one commit (the preload, not measured).
    fn load(&mut self, keys: &[String], value: &[u8]) -> Result<()>;
    /// One key, durable when this returns.
    fn commit(&mut self, key: &str, value: &[u8]) -> Result<()>;
    /// Opens the store at `dir` again and reads every key; returns how many there are.
    fn reopen(dir: &Path) -> Result<usize>
    where
        Self: Sized;
}

// ---------------------------------------------------------------------------------------------
// redb, as src/gateway/durable/persistence.rs uses it

const REDB_TABLE: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("groups");

struct Redb(redb::Database);

impl Redb {
    fn open(dir: &Path) -> Result<Redb> {
        Ok(Redb(redb::Database::builder().set_cache_size(16 << 20).create(dir.join("store.redb"))?))
    }
}

impl Engine for Redb {
    fn name(&self) -> &'static str {
        "redb (today)"
    }
    fn load(&mut self, keys: &[String], value: &[u8]) -> Result<()> {
        let tx = self.0.begin_write()?;
        {
            let mut table = tx.open_table(REDB_TABLE)?;
            for key in keys {
                table.insert(key.as_str(), value)?;
            }
        }
        tx.commit()?;
        Ok(())
    }
    fn commit(&mut self, key: &str, value: &[u8]) -> Result<()> {
        let tx = self.0.begin_write()?;
        tx.open_table(REDB_TABLE)?.insert(key, value)?;
        tx.commit()?;
        Ok(())
    }
    fn reopen(dir: &Path) -> Result<usize> {
        use redb::{ReadableDatabase, ReadableTable};
        let db = Redb::open(dir)?;
        let tx = db.0.begin_read()?;
        let table = tx.open_table(REDB_TABLE)?;
        let mut n = 0;
        for entry in table.iter()? {
            entry?;
            n += 1;
        }
        Ok(n)
    }
}

// ---------------------------------------------------------------------------------------------
// fjall: an LSM tree whose journal takes every write

struct Fjall {
    db: fjall::Database,
    keyspace: fjall::Keyspace,
    mode: fjall::PersistMode,
}

impl Fjall {
    fn open(dir: &Path, mode: fjall::PersistMode) -> Result<Fjall> {
        // The journal is persisted by hand, as the gateway's writer would after each batch.
        let db = fjall::Database::builder(dir.join("fjall")).manual_journal_persist(true).open()?;
        let keyspace = db.keyspace("groups", fjall::KeyspaceCreateOptions::default)?;
        Ok(Fjall { db, keyspace, mode })
    }
}

impl Engine for Fjall {
    fn name(&self) -> &'static str {
        match self.mode {
            fjall::PersistMode::SyncAll => "fjall 3 (SyncAll: fsync)",
            _ => "fjall 3 (SyncData: fdatasync)",
        }
    }
    fn load(&mut self, keys: &[String], value: &[u8]) -> Result<()> {
        let mut batch = self.db.batch();
        for key in keys {
            batch.insert(&self.keyspace, key.as_str(), value);
        }
        batch.commit()?;
        self.db.persist(fjall::PersistMode::SyncAll)?;
        Ok(())
    }
    fn commit(&mut self, key: &str, value: &[u8]) -> Result<()> {
        self.keyspace.insert(key, value)?;
        self.db.persist(self.mode)?;
        Ok(())
    }
    fn reopen(dir: &Path) -> Result<usize> {
        let f = Fjall::open(dir, fjall::PersistMode::SyncData)?;
        let mut n = 0;
        for guard in f.keyspace.iter() {
            guard.into_inner()?;
            n += 1;
        }
        Ok(n)
    }
}

// ---------------------------------------------------------------------------------------------
// A small log of our own: [length u32][crc32 of the rest u32][key length u16][key][value]

struct Log {
    file: File,
    /// Where the next record goes.
    end: u64,
    room: Room,
}

/// How the log's file makes room for the next records.
#[derive(Clone, Copy, PartialEq)]
enum Room {
    /// None ahead: each record grows the file.
    Append,
    /// `set_len` ahead (a hole: no blocks until written), as okaywal and fjall preallocate.
    Hole,
    /// Zeros written ahead, so that the blocks exist before the records reach them.
    Zeros,
}

const ROOM_BYTES: u64 = 1 << 20;

impl Log {
    fn open(dir: &Path, room: Room) -> Result<Log> {
        let path = dir.join("store.log");
        let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path)?;
        let end = replay(&mut file, &mut HashMap::new())?;
        let mut log = Log { file, end, room };
        log.make_room()?;
        File::open(dir)?.sync_all()?;
        Ok(log)
    }

    /// At least a page of room after the end, unless the log appends.
    fn make_room(&mut self) -> Result<()> {
        let len = self.file.metadata()?.len();
        if self.room == Room::Append || len >= self.end + 4096 {
            return Ok(());
        }
        match self.room {
            Room::Hole => self.file.set_len(len + ROOM_BYTES)?,
            _ => {
                // Page by page: one large write would put the room in large page-cache folios,
                // and `write_bytes` counts a whole folio for each small record written into it
                // (the device still gets only the block that changed).
                self.file.seek(SeekFrom::Start(len))?;
                for _ in 0..ROOM_BYTES / 4096 {
                    self.file.write_all(&[0; 4096])?;
                }
            }
        }
        self.file.sync_all()?;
        Ok(())
    }

    fn append(&mut self, records: &[(&str, &[u8])]) -> Result<()> {
        let mut buf = Vec::new();
        for (key, value) in records {
            let mut body = Vec::with_capacity(2 + key.len() + value.len());
            body.extend_from_slice(&(key.len() as u16).to_le_bytes());
            body.extend_from_slice(key.as_bytes());
            body.extend_from_slice(value);
            buf.extend_from_slice(&(body.len() as u32).to_le_bytes());
            buf.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
            buf.extend_from_slice(&body);
        }
        self.file.seek(SeekFrom::Start(self.end))?;
        self.file.write_all(&buf)?;
        self.file.sync_data()?;
        self.end += buf.len() as u64;
        Ok(())
    }
}

/// Reads records from the start until the end, a zero length (preallocated space) or a record
/// that is cut or fails its CRC (a torn write: everything after it is ignored); returns where
/// the next record goes.
fn replay(file: &mut File, keys: &mut HashMap<String, Vec<u8>>) -> Result<u64> {
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(0))?;
    file.read_to_end(&mut bytes)?;
    let mut at = 0usize;
    while let Some(header) = bytes.get(at..at + 8) {
        let len = u32::from_le_bytes(header[..4].try_into()?) as usize;
        let crc = u32::from_le_bytes(header[4..].try_into()?);
        let Some(body) = bytes.get(at + 8..at + 8 + len) else { break };
        if len < 2 || crc32fast::hash(body) != crc {
            break;
        }
        let key_len = u16::from_le_bytes(body[..2].try_into()?) as usize;
        let Some(key) = body.get(2..2 + key_len) else { break };
        keys.insert(String::from_utf8_lossy(key).into_owned(), body[2 + key_len..].to_vec());
        at += 8 + len;
    }
    Ok(at as u64)
}

impl Engine for Log {
    fn name(&self) -> &'static str {
        match self.room {
            Room::Append => "own log, appended",
            Room::Hole => "own log, into set_len room (a hole)",
            Room::Zeros => "own log, into zeros written ahead",
        }
    }
    fn load(&mut self, keys: &[String], value: &[u8]) -> Result<()> {
        let records: Vec<(&str, &[u8])> = keys.iter().map(|k| (k.as_str(), value)).collect();
        self.append(&records)
    }
    fn commit(&mut self, key: &str, value: &[u8]) -> Result<()> {
        self.make_room()?;
        self.append(&[(key, value)])
    }
    fn reopen(dir: &Path) -> Result<usize> {
        let mut keys = HashMap::new();
        replay(&mut File::open(dir.join("store.log"))?, &mut keys)?;
        Ok(keys.len())
    }
}

// ---------------------------------------------------------------------------------------------
// The measurement

fn proc_io(field: &str) -> Result<u64> {
    let text = fs::read_to_string("/proc/self/io")?;
    let line = text.lines().find(|l| l.starts_with(field)).ok_or("no such field in /proc/self/io")?;
    Ok(line[field.len() + 1..].trim().parse()?)
}

/// Write requests, bytes written and cache flushes of the block device, or zeros.
fn device(stat: Option<&Path>) -> Result<[u64; 3]> {
    let Some(stat) = stat else { return Ok([0; 3]) };
    let f: Vec<u64> = fs::read_to_string(stat)?.split_whitespace().map(|v| v.parse().unwrap_or(0)).collect();
    Ok([f[4], f[6] * 512, f.get(15).copied().unwrap_or(0)])
}

fn settle(dir: &Path) -> Result<()> {
    std::process::Command::new("sync").arg("-f").arg(dir).status()?;
    Ok(())
}

fn tree(dir: &Path) -> Result<(usize, u64)> {
    let (mut files, mut bytes) = (0, 0);
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_dir() {
            let (f, b) = tree(&entry.path())?;
            files += f;
            bytes += b;
        } else {
            files += 1;
            bytes += meta.len();
        }
    }
    Ok((files, bytes))
}

/// A tiny deterministic generator, so that every engine commits the same keys in the same order.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn measure<E: Engine>(
    dir: &Path,
    open: impl Fn(&Path) -> Result<E>,
    keys: &[String],
    commits: usize,
    stat: Option<&Path>,
) -> Result<()> {
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir)?;
    let value = vec![b'x'; VALUE_BYTES];
    let mut engine = open(dir)?;
    engine.load(keys, &value)?;
    settle(dir)?;
    let (b0, d0) = (proc_io("write_bytes")?, device(stat)?);
    let started = Instant::now();
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..commits {
        let key = &keys[(next(&mut rng) % keys.len() as u64) as usize];
        engine.commit(key, &value)?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    settle(dir)?;
    let (b1, d1) = (proc_io("write_bytes")?, device(stat)?);
    let name = engine.name();
    drop(engine);
    let (files, bytes) = tree(dir)?;
    let reopened = Instant::now();
    let n = E::reopen(dir)?;
    let reopen_ms = reopened.elapsed().as_secs_f64() * 1e3;
    assert_eq!(n, keys.len(), "{name} lost keys");
    let per = |v: u64| v as f64 / commits as f64;
    let device_cell = if stat.is_some() {
        format!("{:.2} / {:.0} / {:.2}", per(d1[0] - d0[0]), per(d1[1] - d0[1]), per(d1[2] - d0[2]))
    } else {
        "n/a".into()
    };
    println!(
        "| {name} | {:.0} | {device_cell} | {:.0} | {files} files, {} KiB | {reopen_ms:.1} |",
        per(b1 - b0),
        commits as f64 / elapsed,
        bytes / 1024
    );
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let Some(dir) = args.get(1).map(PathBuf::from) else {
        return Err("usage: store_commit DIR [KEYS] [COMMITS] [DEVICE_STAT]".into());
    };
    let nkeys: usize = args.get(2).map_or(Ok(1000), |v| v.parse())?;
    let commits: usize = args.get(3).map_or(Ok(2000), |v| v.parse())?;
    let stat = args.get(4).map(PathBuf::from);
    let stat = stat.as_deref();
    let keys: Vec<String> = (0..nkeys).map(|i| format!("{{instance=\"g{i}\",job=\"bench\"}}")).collect();
    println!(
        "{commits} commits of one {VALUE_BYTES}-byte value into {nkeys} keys, one at a time, each durable before \
         the next"
    );
    println!();
    println!(
        "| engine | bytes written per commit (`write_bytes`) | device per commit: write requests / bytes / \
         flushes | commits/s | files after | reopen and read all, ms |"
    );
    println!("|---|---|---|---|---|---|");
    measure(&dir.join("redb"), Redb::open, &keys, commits, stat)?;
    measure(&dir.join("fjall-data"), |d| Fjall::open(d, fjall::PersistMode::SyncData), &keys, commits, stat)?;
    measure(&dir.join("fjall-all"), |d| Fjall::open(d, fjall::PersistMode::SyncAll), &keys, commits, stat)?;
    measure(&dir.join("log-append"), |d| Log::open(d, Room::Append), &keys, commits, stat)?;
    measure(&dir.join("log-hole"), |d| Log::open(d, Room::Hole), &keys, commits, stat)?;
    measure(&dir.join("log-zeros"), |d| Log::open(d, Room::Zeros), &keys, commits, stat)?;
    Ok(())
}
