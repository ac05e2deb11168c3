//! What the store has written to the disk, by the push log's appends and by its checkpoints,
//! for the gateway's own metrics (`cronpush_store_*`): on a Pi's SD card, bytes written are what
//! wears it out, and a checkpoint's bytes, spread over the appends it took in, belong to the cost
//! of a push as much as the append itself (scripts/bench-store reads them so).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Default)]
pub struct DiskCounts {
    pub log_appends: AtomicU64,
    /// The bytes the appends handed to the disk: the sectors (or pages) they wrote.
    pub log_written_bytes: AtomicU64,
    /// The log's room the appends took: their frames, and the ends of pages a frame skipped.
    pub log_used_bytes: AtomicU64,
    pub checkpoints: AtomicU64,
    /// The log's room the checkpoints emptied (frames read at a start included): with the bytes
    /// they wrote, what a byte of room costs, to be spread over the pushes that took it.
    pub checkpointed_log_bytes: AtomicU64,
    /// The bytes the checkpoints caused to be written, as Linux counts them for the writing thread
    /// (`/proc/thread-self/io`, `write_bytes`): the B-tree's pages and the log's new header.
    pub checkpoint_written_bytes: AtomicU64,
}

impl DiskCounts {
    pub fn appended(&self, used_bytes: u64, written_bytes: u64) {
        self.log_appends.fetch_add(1, Relaxed);
        self.log_used_bytes.fetch_add(used_bytes, Relaxed);
        self.log_written_bytes.fetch_add(written_bytes, Relaxed);
    }

    pub fn checkpointed(&self, log_bytes: u64, written_bytes: u64) {
        self.checkpoints.fetch_add(1, Relaxed);
        self.checkpointed_log_bytes.fetch_add(log_bytes, Relaxed);
        self.checkpoint_written_bytes.fetch_add(written_bytes, Relaxed);
    }
}

/// The bytes this thread has caused to be written to disk so far; `None` where the kernel does
/// not count them (not Linux, or without task I/O accounting).
pub fn written_by_this_thread() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/thread-self/io").ok()?;
    io.lines().find_map(|line| line.strip_prefix("write_bytes:")).and_then(|n| n.trim().parse().ok())
}
