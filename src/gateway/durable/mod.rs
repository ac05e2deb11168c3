//! Durability: the store kept in a file, so that what a push was acknowledged for survives a
//! restart, `kill -9` and power loss.
//!
//! - `persistence.rs`: the store file itself (redb), its records, and putting them back;
//! - `push_log.rs`: the store file's write-ahead log, which takes each commit as one block
//!   appended, until a checkpoint puts what it holds into the store file;
//! - `sector_writes.rs`: how the log's bytes reach the disk, whole sectors written direct;
//! - `disk_counts.rs`: what the appends and the checkpoints wrote, for the gateway's metrics;
//! - `journal.rs`: group commit, how handlers wait until their change is on disk.
//!
//! This room reads and restores the store and knows nothing of HTTP or of the `Gateway`; the task
//! that writes the store's changes runs on the `Gateway` and lives beside it
//! (gateway/journal_writer.rs). The store, in turn, knows nothing of files.

pub mod disk_counts;
pub mod journal;
pub mod persistence;
pub mod push_log;
mod sector_writes;
