//! How the push log's bytes reach the disk: whole sectors, written past the page cache
//! (`O_DIRECT`), so that a push costs the disk the 512-byte sector or two its frame lies in, not
//! the 4 KiB page the page cache would write back for it (Linux writes back, and counts in
//! `/proc/PID/io`, whole pages). Where the file system or the device does not take 512-byte
//! direct writes, 4 KiB ones; where it takes none (a file system without `O_DIRECT`), writes
//! through the page cache, as before. Either way each write is followed by `fdatasync`, which
//! also empties the device's own write cache: direct writes alone do not.
//!
//! A direct write covers whole blocks, so the caller hands over what those blocks hold around
//! the bytes it means to write: an image of the file from a page boundary. What lies past the
//! image, up to the end of the last block, is written as zeros (the push log keeps nothing there
//! that it reads: room, or frames of an earlier epoch).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

/// A logical sector: what nearly every disk, SD card and SSD takes as its smallest write.
const SECTOR: u64 = 512;
/// A page: the alignment every `O_DIRECT` implementation takes, and the memory alignment of the
/// buffers written.
const PAGE: u64 = 4096;

pub struct SectorWrites {
    /// Through the page cache: how the log is read, and written when direct writes are refused.
    file: File,
    /// Past it; `None` once the file system refused direct writes.
    direct: Option<File>,
    /// The size of a direct write's blocks: a sector, or a page when sectors were refused.
    block: u64,
}

impl SectorWrites {
    /// Writes to `file`, opened at `path`, direct where the file system takes it.
    pub fn new(path: &Path, file: File) -> SectorWrites {
        let direct = OpenOptions::new().write(true).custom_flags(libc::O_DIRECT).open(path);
        if let Err(e) = &direct {
            tracing::info!(file = %path.display(), error = %e,
                "the file system takes no direct writes: the push log is written through the page cache, 4 KiB a push");
        }
        SectorWrites { file, direct: direct.ok(), block: SECTOR }
    }

    /// Through the page cache only, as on a file system without `O_DIRECT`.
    #[cfg(test)]
    pub fn buffered(file: File) -> SectorWrites {
        SectorWrites { file, direct: None, block: SECTOR }
    }

    /// Puts `image[from..to]` at `at + from` on disk (`fdatasync`), and says how many bytes that
    /// wrote: the blocks written direct, or the pages the page cache writes back. `at` is a page
    /// boundary and `image[..from]` is what the file holds there already.
    pub fn write(&mut self, at: u64, image: &[u8], from: usize, to: usize) -> std::io::Result<u64> {
        debug_assert!(at.is_multiple_of(PAGE) && from <= to && to <= image.len());
        while let Some(direct) = &self.direct {
            match write_blocks(direct, self.block, at, image, from, to) {
                Ok(written) => return direct.sync_data().map(|()| written),
                // An alignment the device refuses: nothing was written. Larger blocks, then none.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    if self.block < PAGE {
                        self.block = PAGE;
                    } else {
                        tracing::info!(error = %e,
                            "the file system refuses direct writes: the push log is written through the page cache, 4 KiB a push");
                        self.direct = None;
                    }
                }
                Err(e) => return Err(e),
            }
        }
        self.file.write_all_at(&image[from..to], at + from as u64)?;
        self.file.sync_data()?;
        Ok(covering(PAGE, from, to))
    }
}

/// Writes the `block`-sized blocks that `image[from..to]` lies in, from a buffer aligned to a page
/// (direct writes need their memory aligned too), zeros past the image.
fn write_blocks(file: &File, block: u64, at: u64, image: &[u8], from: usize, to: usize) -> std::io::Result<u64> {
    let first = from as u64 / block * block;
    let end = first + covering(block, from, to);
    let len = (end - first) as usize;
    let mut room = vec![0u8; len + PAGE as usize];
    // The address as a number only, to find the first page boundary in the buffer.
    let skip = (PAGE as usize - (room.as_ptr() as usize) % PAGE as usize) % PAGE as usize;
    let buffer = &mut room[skip..skip + len];
    let held = &image[first as usize..image.len().min(end as usize)];
    buffer[..held.len()].copy_from_slice(held);
    file.write_all_at(buffer, at + first)?;
    Ok(len as u64)
}

/// The bytes of the `block`-sized blocks that bytes `from..to` lie in.
fn covering(block: u64, from: usize, to: usize) -> u64 {
    (to as u64).div_ceil(block) * block - from as u64 / block * block
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What this thread has had written to disk, as `/proc/PID/io` counts it for the benchmark.
    fn written_by_this_thread() -> u64 {
        super::super::disk_counts::written_by_this_thread().unwrap()
    }

    fn file_of(len: u64) -> (tempfile::TempDir, std::path::PathBuf, File) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
        // A page at a time, as the push log makes its room: a large page-cache folio would be
        // written back whole for one byte changed in it.
        for at in (0..len).step_by(PAGE as usize) {
            file.write_all_at(&[0; PAGE as usize], at).unwrap();
        }
        file.sync_all().unwrap();
        (dir, path, file)
    }

    /// Small writes one after another, each extending the last, as frames are appended: the file
    /// holds exactly what the images said, written direct or through the page cache alike, and a
    /// direct write costs the disk its sectors, not a page.
    #[test]
    fn appends_land_whole_and_cost_their_sectors() {
        let mut expected = vec![0u8; 4 * PAGE as usize];
        let (_dir, path, file) = file_of(4 * PAGE);
        let (_dir2, buffered_path, buffered_file) = file_of(4 * PAGE);
        let mut direct = SectorWrites::new(&path, file);
        let mut buffered = SectorWrites::buffered(buffered_file);
        let (mut direct_bytes, mut buffered_bytes) = (0, 0);
        let (mut direct_expected, mut buffered_expected) = (0, 0);
        let mut end = PAGE as usize;
        for i in 0..40u8 {
            let frame = vec![i + 1; 60 + i as usize * 3];
            // The image from the page the frame starts in, as the push log builds it.
            let page = end / PAGE as usize * PAGE as usize;
            let mut image = expected[page..end].to_vec();
            let from = image.len();
            image.extend_from_slice(&frame);
            let before = written_by_this_thread();
            let said = direct.write(page as u64, &image, from, image.len()).unwrap();
            let between = written_by_this_thread();
            assert_eq!(said, between - before, "what a direct write says it wrote");
            let said = buffered.write(page as u64, &image, from, image.len()).unwrap();
            assert_eq!(said, written_by_this_thread() - between, "what a write through the page cache says it wrote");
            (direct_bytes, buffered_bytes) =
                (direct_bytes + between - before, buffered_bytes + written_by_this_thread() - between);
            expected[end..end + frame.len()].copy_from_slice(&frame);
            let touched = |unit: usize| ((end + frame.len()).div_ceil(unit) - end / unit) as u64 * unit as u64;
            (direct_expected, buffered_expected) = (direct_expected + touched(512), buffered_expected + touched(4096));
            end += frame.len();
        }
        let on_disk = std::fs::read(&path).unwrap();
        assert_eq!(&on_disk[..end], &expected[..end], "direct");
        assert!(on_disk[end..].iter().all(|b| *b == 0), "zeros past the last write");
        assert_eq!(std::fs::read(&buffered_path).unwrap(), expected, "through the page cache");
        assert_eq!(direct.block, SECTOR, "this machine's disk takes 512-byte direct writes");
        // Direct: the sectors each write lies in. Through the page cache: its pages.
        assert_eq!(direct_bytes, direct_expected, "direct");
        assert_eq!(buffered_bytes, buffered_expected, "through the page cache");
        assert!(direct_bytes * 5 < buffered_bytes, "{direct_bytes} direct, {buffered_bytes} through the page cache");
    }

    /// A write of a slot in the middle of an image keeps the image's bytes after it in the
    /// block, as the push log's second header slot needs when blocks are pages.
    #[test]
    fn the_bytes_of_the_image_around_a_write_stay() {
        let (_dir, path, file) = file_of(2 * PAGE);
        let mut writes = SectorWrites::new(&path, file);
        writes.block = PAGE;
        let mut image = vec![7u8; PAGE as usize];
        image[..20].copy_from_slice(&[1; 20]);
        writes.write(0, &image, 0, 20).unwrap();
        let on_disk = std::fs::read(&path).unwrap();
        assert_eq!(&on_disk[..PAGE as usize], &image[..], "the whole page, as the image has it");
        assert!(on_disk[PAGE as usize..].iter().all(|b| *b == 0));
    }
}
