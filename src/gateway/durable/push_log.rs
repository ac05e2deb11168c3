//! The push log: the store file's write-ahead log, so that an acknowledged push costs the disk
//! the sector or two its frame lies in, at the end of what was written before (one `fdatasync`;
//! sector_writes.rs), not the eight scattered pages a B-tree commit rewrites (benches/README.md,
//! "The next store", measured the candidates). Each group commit appends one frame holding the
//! changed groups' records; now and then the groups the log holds go to the store file in one
//! transaction (a checkpoint) and the log starts again (persistence.rs decides when).
//!
//! The file (`<store file>.log`, beside it):
//! - page 0: two header slots, 512 bytes apart (two sectors): a magic, the format version, the
//!   log's epoch and a CRC. The valid slot with the highest epoch is the log's; starting again
//!   writes the next epoch into the other slot, so a header cut short by a crash leaves the
//!   previous one standing.
//! - then the room, made of zeros when the file is created, written page by page so that no
//!   later `fdatasync` has a block to allocate or a file size to change (ext4 would journal
//!   either; benches/README.md). Each epoch writes its frames from the start of the room again,
//!   over the frames of earlier epochs.
//! - a frame: magic, epoch, length and CRC-32 of what follows, then the changes. A frame of at
//!   most a page never crosses a page boundary: when it does not fit in the rest of the page it
//!   starts on the next, and the rest is left as it is (zeros, or an earlier epoch's bytes), so
//!   that one push alone writes within one page.
//!
//! Reading: frames of the log's epoch, in order, until one that does not check out. That is the
//! end: a frame cut short by a crash was never acknowledged (its `fdatasync` had not returned),
//! and what follows it is room or an earlier epoch's frames. But when a frame of the log's epoch
//! checks out anywhere after that end, acknowledged pushes lie beyond damage: the log is refused
//! as damaged rather than read short.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;

use super::persistence::Change;
use super::sector_writes::SectorWrites;

pub const PAGE: u64 = 4096;
/// The room of a new log: how much it takes before a checkpoint. About 30,000 of the pushes a
/// CronJob makes alone (15 deflated frames to a page), two weeks of the article's 50 hourly
/// CronJobs; each checkpoint rewrites the groups changed since the last one in the redb file, so
/// a larger room spreads that over more pushes (scripts/bench-store: 1 MiB cost 0.9 to 2.7 KiB a
/// push at 1,000 and 10,000 groups).
pub const ROOM: u64 = 8 << 20;
/// A log shorter than this (cut short after it was made) gets its room made again.
const LEAST_ROOM: u64 = 64 << 10;
const FILE_MAGIC: &[u8; 8] = b"cronpush";
const VERSION: u32 = 1;
const SLOTS: [u64; 2] = [0, 512];
const SLOT_BYTES: usize = 20;
/// A frame whose changes are deflated (raw DEFLATE): about half the bytes, as a group's record
/// repeats its grouping labels in every series (490 bytes of the end-of-run push's record are 250
/// deflated), so that more pushes fit in a sector and in the room.
const DEFLATED_FRAME: u32 = u32::from_le_bytes(*b"CPL2");
/// A frame whose changes are as they are: what the log's first version wrote, read still.
const PLAIN_FRAME: u32 = u32::from_le_bytes(*b"CPL1");
const FRAME_HEADER: u64 = 16;

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("neither of its headers is a cronpush push log's")]
    NoHeader,
    #[error("a frame at byte {at} does not check out, and a good one follows at byte {next}")]
    DamagedBeforeTheEnd { at: u64, next: u64 },
    #[error("a frame at byte {at} does not hold changes: {why}")]
    Unreadable { at: u64, why: &'static str },
}

pub struct PushLog {
    writes: SectorWrites,
    epoch: u32,
    /// The slot that holds `epoch`.
    slot: usize,
    /// Where the next frame goes.
    end: u64,
    /// Where the room ends: the file's size.
    room_end: u64,
    /// What the file holds from the page `end` is in up to `end`: what a write of the next frame
    /// has to write again around it when it writes whole sectors.
    tail: Vec<u8>,
    /// Bytes the appends wrote since opening, as the disk took them (whole sectors or pages).
    written: u64,
}

/// What opening found: the changes of the log's epoch, oldest first.
pub struct Replayed {
    pub changes: Vec<Change>,
    pub frames: usize,
}

impl PushLog {
    /// The log beside the store file at `store`.
    pub fn path_for(store: &Path) -> PathBuf {
        let mut name = store.as_os_str().to_owned();
        name.push(".log");
        PathBuf::from(name)
    }

    /// Opens the log at `path`, making it (header and room) when there is none, and reads its
    /// changes.
    pub fn open(path: &Path) -> Result<(PushLog, Replayed), LogError> {
        if !path.exists() {
            create(path, ROOM)?;
        }
        let mut file = OpenOptions::new().read(true).write(true).open(path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let (epoch, slot) = header(&bytes).ok_or(LogError::NoHeader)?;
        let (frames, end) = read_frames(&bytes, epoch)?;
        let mut changes = Vec::new();
        for (at, stored) in &frames {
            decode(stored, &mut changes).map_err(|why| LogError::Unreadable { at: *at, why })?;
        }
        // A log cut short after it was made (a crash while making it is caught by the rename):
        // make the room again.
        let mut room_end = bytes.len() as u64;
        if room_end < PAGE + LEAST_ROOM {
            write_zeros(&file, room_end, PAGE + ROOM)?;
            file.sync_all()?;
            room_end = PAGE + ROOM;
        }
        let replayed = Replayed { changes, frames: frames.len() };
        let tail = bytes[(end - end % PAGE) as usize..end as usize].to_vec();
        let writes = SectorWrites::new(path, file);
        Ok((PushLog { writes, epoch, slot, end, room_end, tail, written: 0 }, replayed))
    }

    /// Appends one frame of `changes`, on disk when this returns `Ok(true)`; `Ok(false)` when
    /// it does not fit in what is left of the room (nothing was written: checkpoint, start
    /// again, and append it then, or put it in the store file when it is larger than the room).
    pub fn append(&mut self, changes: &[Change]) -> std::io::Result<bool> {
        let frame = frame(self.epoch, changes);
        let mut start = self.end;
        let len = frame.len() as u64;
        let left_in_page = PAGE - start % PAGE;
        if len <= PAGE && len > left_in_page {
            start += left_in_page;
        }
        if start + len > self.room_end {
            return Ok(false);
        }
        // The frame with what precedes it in its page: the frames before it, or nothing when it
        // starts a page.
        let (page, mut image) =
            if start == self.end { (start - self.tail.len() as u64, self.tail.clone()) } else { (start, Vec::new()) };
        let from = image.len();
        image.extend_from_slice(&frame);
        self.written += self.writes.write(page, &image, from, image.len())?;
        self.end = start + len;
        self.tail = image.split_off(image.len() - (self.end % PAGE) as usize);
        Ok(true)
    }

    /// Starts the log again, empty, after a checkpoint put what it held into the store file.
    pub fn start_again(&mut self) -> std::io::Result<()> {
        let (epoch, slot) = (self.epoch.wrapping_add(1).max(1), 1 - self.slot);
        // Page 0 as it will be: the new slot, and the current one as it is, should the new one
        // be written as part of a whole page.
        let mut page = vec![0; PAGE as usize];
        let [at, current] = [SLOTS[slot], SLOTS[self.slot]].map(|at| at as usize);
        page[current..current + SLOT_BYTES].copy_from_slice(&slot_bytes(self.epoch));
        page[at..at + SLOT_BYTES].copy_from_slice(&slot_bytes(epoch));
        self.writes.write(0, &page, at, at + SLOT_BYTES)?;
        (self.epoch, self.slot, self.end) = (epoch, slot, PAGE);
        self.tail.clear();
        Ok(())
    }

    /// Bytes of frames the log holds.
    pub fn used(&self) -> u64 {
        self.end - PAGE
    }

    /// Bytes the appends have written since the log was opened.
    pub fn written(&self) -> u64 {
        self.written
    }
}

/// Makes the log with `room` bytes of room: the header and the room, in a file of its own renamed
/// into place, so that a crash leaves either no log or a whole one.
pub(crate) fn create(path: &Path, room: u64) -> std::io::Result<()> {
    let mut making = path.as_os_str().to_owned();
    making.push(".new");
    let making = PathBuf::from(making);
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(&making)?;
    file.write_all_at(&slot_bytes(1), SLOTS[0])?;
    write_zeros(&file, SLOT_BYTES as u64, PAGE + room)?;
    file.sync_all()?;
    std::fs::rename(&making, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Zeros from `from` to `to`, a page at a time: Linux counts a large page-cache folio as written
/// whole when one byte of it changes later (benches/README.md).
fn write_zeros(file: &File, from: u64, to: u64) -> std::io::Result<()> {
    let zeros = [0u8; PAGE as usize];
    let mut at = from;
    while at < to {
        let n = (PAGE - at % PAGE).min(to - at);
        file.write_all_at(&zeros[..n as usize], at)?;
        at += n;
    }
    Ok(())
}

fn slot_bytes(epoch: u32) -> [u8; SLOT_BYTES] {
    let mut slot = [0; SLOT_BYTES];
    slot[..8].copy_from_slice(FILE_MAGIC);
    slot[8..12].copy_from_slice(&VERSION.to_le_bytes());
    slot[12..16].copy_from_slice(&epoch.to_le_bytes());
    let crc = crc32fast::hash(&slot[8..16]);
    slot[16..20].copy_from_slice(&crc.to_le_bytes());
    slot
}

/// The epoch of the valid slot with the highest epoch, and that slot.
fn header(bytes: &[u8]) -> Option<(u32, usize)> {
    let mut best: Option<(u32, usize)> = None;
    for (i, at) in SLOTS.iter().enumerate() {
        let slot = bytes.get(*at as usize..*at as usize + SLOT_BYTES)?;
        let valid =
            &slot[..8] == FILE_MAGIC && u32_at(slot, 8) == VERSION && crc32fast::hash(&slot[8..16]) == u32_at(slot, 16);
        let epoch = u32_at(slot, 12);
        if valid && best.is_none_or(|(e, _)| epoch > e) {
            best = Some((epoch, i));
        }
    }
    best
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("four bytes"))
}

fn frame(epoch: u32, changes: &[Change]) -> Vec<u8> {
    let mut deflater = DeflateEncoder::new(Vec::new(), Compression::fast());
    deflater.write_all(&payload(changes)).expect("writing to memory");
    framed(DEFLATED_FRAME, epoch, &deflater.finish().expect("writing to memory"))
}

/// The changes of a frame, as they are before deflating.
fn payload(changes: &[Change]) -> Vec<u8> {
    let mut payload = Vec::new();
    payload.extend_from_slice(&(changes.len() as u32).to_le_bytes());
    for (key, record) in changes {
        payload.extend_from_slice(&(key.len() as u32).to_le_bytes());
        payload.extend_from_slice(key.as_bytes());
        match record {
            Some(record) => {
                payload.push(1);
                payload.extend_from_slice(&(record.len() as u32).to_le_bytes());
                payload.extend_from_slice(record);
            }
            None => payload.push(0),
        }
    }
    payload
}

fn framed(magic: u32, epoch: u32, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(FRAME_HEADER as usize + payload.len());
    frame.extend_from_slice(&magic.to_le_bytes());
    frame.extend_from_slice(&epoch.to_le_bytes());
    frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    frame.extend_from_slice(&checksum(epoch, payload).to_le_bytes());
    frame.extend_from_slice(payload);
    frame
}

fn checksum(epoch: u32, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&epoch.to_le_bytes());
    hasher.update(&(payload.len() as u32).to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

/// A frame's payload as the file holds it.
struct Stored<'a> {
    deflated: bool,
    payload: &'a [u8],
}

impl Stored<'_> {
    /// The frame's length in the file.
    fn len(&self) -> u64 {
        FRAME_HEADER + self.payload.len() as u64
    }
}

fn is_frame_magic(magic: u32) -> bool {
    magic == DEFLATED_FRAME || magic == PLAIN_FRAME
}

/// The payload of a frame of `epoch` that checks out at `at`, if one does.
fn frame_at(bytes: &[u8], at: u64, epoch: u32) -> Option<Stored<'_>> {
    let at = usize::try_from(at).ok()?;
    let header = bytes.get(at..at.checked_add(FRAME_HEADER as usize)?)?;
    if !is_frame_magic(u32_at(header, 0)) || u32_at(header, 4) != epoch {
        return None;
    }
    let len = u32_at(header, 8) as usize;
    let start = at + FRAME_HEADER as usize;
    let payload = bytes.get(start..start.checked_add(len)?)?;
    let stored = Stored { deflated: u32_at(header, 0) == DEFLATED_FRAME, payload };
    (checksum(epoch, payload) == u32_at(header, 12)).then_some(stored)
}

/// A frame's payload and where the frame starts.
type Frame<'a> = (u64, Stored<'a>);

/// The frames of `epoch` from the start of the room, and where the next one would go.
fn read_frames(bytes: &[u8], epoch: u32) -> Result<(Vec<Frame<'_>>, u64), LogError> {
    let mut frames = Vec::new();
    let mut at = PAGE;
    let room_end = bytes.len() as u64;
    loop {
        if let Some(stored) = frame_at(bytes, at, epoch) {
            at += stored.len();
            frames.push((at - stored.len(), stored));
            continue;
        }
        // The rest of a page that the next frame did not fit in: it starts on the next page. Not
        // when a frame of this epoch starts here (one that does not check out is damage or the
        // torn end), nor when the next page's frame would have fit here (then it would be here).
        let page_end = (at / PAGE + 1) * PAGE;
        let here = bytes.get(at as usize..at as usize + 8);
        let frame_here = here.is_some_and(|h| is_frame_magic(u32_at(h, 0)) && u32_at(h, 4) == epoch);
        let moved = |stored: &Stored| stored.len() > page_end - at;
        let padded = !at.is_multiple_of(PAGE) && page_end < room_end && !frame_here;
        match frame_at(bytes, page_end, epoch).filter(|stored| padded && moved(stored)) {
            Some(stored) => {
                at = page_end + stored.len();
                frames.push((page_end, stored));
            }
            None => break,
        }
    }
    // The end. A frame of this epoch that checks out beyond it means damage, not a torn write.
    let mut next = at + 1;
    while next + FRAME_HEADER <= room_end {
        let window = &bytes[next as usize..];
        let of_this_epoch = |w: &[u8]| is_frame_magic(u32_at(w, 0)) && u32_at(w, 4) == epoch;
        let Some(found) = window.windows(8).position(of_this_epoch) else { break };
        let candidate = next + found as u64;
        if frame_at(bytes, candidate, epoch).is_some() {
            return Err(LogError::DamagedBeforeTheEnd { at, next: candidate });
        }
        next = candidate + 1;
    }
    Ok((frames, at))
}

fn decode(stored: &Stored, changes: &mut Vec<Change>) -> Result<(), &'static str> {
    let mut inflated = Vec::new();
    let mut cursor = stored.payload;
    if stored.deflated {
        DeflateDecoder::new(stored.payload).read_to_end(&mut inflated).map_err(|_| "its changes do not inflate")?;
        cursor = &inflated;
    }
    let mut take = |n: usize| -> Result<&[u8], &'static str> {
        if cursor.len() < n {
            return Err("it ends inside a change");
        }
        let (head, rest) = cursor.split_at(n);
        cursor = rest;
        Ok(head)
    };
    let count = u32::from_le_bytes(take(4)?.try_into().expect("four bytes"));
    for _ in 0..count {
        let key_len = u32::from_le_bytes(take(4)?.try_into().expect("four bytes")) as usize;
        let key = std::str::from_utf8(take(key_len)?).map_err(|_| "a key is not UTF-8")?.to_string();
        let record = match take(1)?[0] {
            0 => None,
            1 => {
                let len = u32::from_le_bytes(take(4)?.try_into().expect("four bytes")) as usize;
                Some(take(len)?.to_vec())
            }
            _ => return Err("a change is neither a record nor a deletion"),
        };
        changes.push((key, record));
    }
    if !cursor.is_empty() {
        return Err("bytes follow its changes");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(key: &str, record: &[u8]) -> Change {
        (key.to_string(), Some(record.to_vec()))
    }

    /// Bytes that do not deflate.
    fn noise(len: usize) -> Vec<u8> {
        let mut state = 0x2545_f491_u32;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                state as u8
            })
            .collect()
    }

    /// The room of the tests' logs: small, so that a test fills it, and cuts it, quickly.
    const TEST_ROOM: u64 = LEAST_ROOM;

    fn opened(path: &Path) -> (PushLog, Vec<Change>) {
        if !path.exists() {
            create(path, TEST_ROOM).unwrap();
        }
        let (log, replayed) = PushLog::open(path).unwrap();
        (log, replayed.changes)
    }

    #[test]
    fn appended_changes_come_back_in_order_and_a_new_epoch_starts_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.log");
        let (mut log, changes) = opened(&path);
        assert!(changes.is_empty());
        let first = vec![change("{job=\"a\"}", b"one"), ("{job=\"b\"}".to_string(), None)];
        let second = vec![change("{job=\"a\"}", &[7; 5000])];
        assert!(log.append(&first).unwrap());
        assert!(log.append(&second).unwrap());
        drop(log);
        let (mut log, changes) = opened(&path);
        assert_eq!(changes, [first, second.clone()].concat());
        log.start_again().unwrap();
        assert!(log.append(&[change("{job=\"c\"}", b"three")]).unwrap());
        drop(log);
        assert_eq!(opened(&path).1, vec![change("{job=\"c\"}", b"three")], "the earlier epoch is gone");
    }

    #[test]
    fn a_small_frame_never_crosses_a_page_and_the_room_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.log");
        let (mut log, _) = opened(&path);
        let record = noise(300);
        let len = frame(log.epoch, &[change("{job=\"a\"}", &record)]).len() as u64;
        assert!(len > 300, "noise does not deflate");
        let mut appended = 0;
        while log.append(&[change("{job=\"a\"}", &record)]).unwrap() {
            appended += 1;
            let start = log.end - len;
            assert_eq!(start / PAGE, (log.end - 1) / PAGE, "frame {appended} crosses a page");
        }
        assert_eq!(appended as u64, PAGE / len * TEST_ROOM / PAGE, "as many frames of {len} bytes as fit in a page");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), PAGE + TEST_ROOM, "the file never grows");
        drop(log);
        assert_eq!(opened(&path).1.len(), appended);
        // Again over the earlier epoch's frames, with frames of another size: the rest of a page
        // that a frame was moved off holds old bytes now, not zeros.
        let (mut log, _) = opened(&path);
        log.start_again().unwrap();
        let record = noise(500);
        let mut again = 0;
        while log.append(&[change("{job=\"b\"}", &record)]).unwrap() {
            again += 1;
        }
        drop(log);
        let changes = opened(&path).1;
        assert_eq!((changes.len(), changes.iter().all(|(k, _)| k == "{job=\"b\"}")), (again, true));
    }

    /// A crash while a frame was written leaves any prefix of it on disk: every cut is read as
    /// the log without that frame, in a fresh room and over an earlier epoch's frames alike.
    #[test]
    fn a_frame_cut_at_every_byte_is_dropped_and_the_rest_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.log");
        let (mut log, _) = opened(&path);
        let kept = vec![change("{job=\"kept\"}", b"acknowledged")];
        assert!(log.append(&kept).unwrap());
        let at = log.end;
        let torn = frame(log.epoch, &[change("{job=\"torn\"}", &[9; 200])]);
        drop(log);
        let whole = std::fs::read(&path).unwrap();
        for earlier_epoch in [false, true] {
            let mut base = whole.clone();
            if earlier_epoch {
                // What an earlier epoch left where the torn frame goes.
                let old = frame(0, &[change("{job=\"old\"}", &[5; 400])]);
                base[at as usize..at as usize + old.len()].copy_from_slice(&old);
            }
            for cut in 0..=torn.len() {
                let mut bytes = base.clone();
                bytes[at as usize..at as usize + cut].copy_from_slice(&torn[..cut]);
                std::fs::write(&path, &bytes).unwrap();
                let (log, changes) = opened(&path);
                let expected = if cut == torn.len() {
                    [kept.clone(), vec![change("{job=\"torn\"}", &[9; 200])]].concat()
                } else {
                    kept.clone()
                };
                assert_eq!(changes, expected, "cut at {cut}, earlier epoch {earlier_epoch}");
                assert_eq!(log.end, if cut == torn.len() { at + torn.len() as u64 } else { at });
            }
        }
    }

    /// The log's first version wrote its changes as they are: such a log (a gateway stopped by a
    /// crash before the upgrade) is read, and deflated frames follow its frames.
    #[test]
    fn a_log_of_plain_frames_is_read_and_appended_to() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.log");
        create(&path, TEST_ROOM).unwrap();
        let first = vec![change("{job=\"a\"}", b"one"), ("{job=\"b\"}".to_string(), None)];
        let second = vec![change("{job=\"c\"}", &[3; 4000])];
        let mut bytes = std::fs::read(&path).unwrap();
        let mut at = PAGE as usize;
        for changes in [&first, &second] {
            let plain = framed(PLAIN_FRAME, 1, &payload(changes));
            // The first version's rule too: a frame of at most a page starts on the next page
            // when it does not fit in this one.
            at = if plain.len() > PAGE as usize - at % PAGE as usize { at.next_multiple_of(PAGE as usize) } else { at };
            bytes[at..at + plain.len()].copy_from_slice(&plain);
            at += plain.len();
        }
        std::fs::write(&path, &bytes).unwrap();
        let (mut log, changes) = opened(&path);
        assert_eq!(changes, [first.clone(), second.clone()].concat());
        let third = vec![change("{job=\"a\"}", b"three")];
        assert!(log.append(&third).unwrap());
        drop(log);
        assert_eq!(opened(&path).1, [first, second, third].concat());
    }

    #[test]
    fn garbage_after_the_last_good_frame_is_not_a_frame() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.log");
        let (mut log, _) = opened(&path);
        let kept = vec![change("{job=\"kept\"}", b"acknowledged")];
        assert!(log.append(&kept).unwrap());
        let at = log.end as usize;
        drop(log);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[at..at + 3 * PAGE as usize].copy_from_slice(&noise(3 * PAGE as usize));
        // A frame header of this epoch amid the garbage, with nothing valid behind it.
        bytes[at + 100..at + 104].copy_from_slice(&DEFLATED_FRAME.to_le_bytes());
        bytes[at + 104..at + 108].copy_from_slice(&1u32.to_le_bytes());
        std::fs::write(&path, &bytes).unwrap();
        let (mut log, changes) = opened(&path);
        assert_eq!(changes, kept);
        // And the next append goes where the garbage began.
        assert!(log.append(&[change("{job=\"next\"}", b"x")]).unwrap());
        drop(log);
        assert_eq!(opened(&path).1.len(), 2);
    }

    #[test]
    fn damage_with_good_frames_behind_it_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.log");
        let (mut log, _) = opened(&path);
        for i in 0..3 {
            assert!(log.append(&[change(&format!("{{job=\"{i}\"}}"), b"acknowledged")]).unwrap());
        }
        drop(log);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[PAGE as usize + 20] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let Err(e) = PushLog::open(&path) else { panic!("read a damaged log short") };
        assert!(matches!(e, LogError::DamagedBeforeTheEnd { .. }), "{e}");
    }

    #[test]
    fn a_header_cut_short_leaves_the_previous_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.log");
        let (mut log, _) = opened(&path);
        assert!(log.append(&[change("{job=\"a\"}", b"1")]).unwrap());
        let slot = SLOTS[1 - log.slot] as usize;
        drop(log);
        let mut bytes = std::fs::read(&path).unwrap();
        let next = slot_bytes(2);
        bytes[slot..slot + 10].copy_from_slice(&next[..10]);
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(opened(&path).1, vec![change("{job=\"a\"}", b"1")]);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[..PAGE as usize].fill(0);
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(PushLog::open(&path), Err(LogError::NoHeader)));
    }

    #[test]
    fn a_new_log_has_the_whole_room_and_a_log_cut_short_gets_it_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.log");
        let (mut log, _) = PushLog::open(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), PAGE + ROOM);
        assert!(log.append(&[change("{job=\"a\"}", b"1")]).unwrap());
        drop(log);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..2 * PAGE as usize]).unwrap();
        let (log, replayed) = PushLog::open(&path).unwrap();
        assert_eq!(replayed.changes, vec![change("{job=\"a\"}", b"1")]);
        assert_eq!((log.room_end, std::fs::metadata(&path).unwrap().len()), (PAGE + ROOM, PAGE + ROOM));
    }
}
