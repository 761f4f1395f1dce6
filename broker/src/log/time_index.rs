//! The time index (`<base offset>.timeindex`): largest timestamp so far → offset.
//!
//! # File format (version 0, no header)
//!
//! ```text
//! entry i, at byte 12*i:
//!   0  8  timestamp        i64 BE  largest batch max_timestamp appended so far in the segment
//!   8  4  relative_offset  u32 BE  base offset − segment base offset of the first batch
//!                                  appended *after* every batch covered by `timestamp`
//! ```
//!
//! An entry (T, O) promises: every batch before offset O has max timestamp ≤ T. Entries are
//! written alongside offset-index entries, only when the segment's max timestamp grew since
//! the previous time-index entry, so timestamps strictly increase. When a segment is sealed a
//! final entry with the segment's max timestamp is added (if it grew), so the last entry of a
//! sealed segment is its largest timestamp (used by time-based retention after a restart).
//!
//! **Deviation from Kafka:** Kafka stores the offset of the record that carried the max
//! timestamp; Tributary stores the next batch's base offset, which makes the lookup rule
//! below a one-liner. Preallocation, trimming and rebuild-after-crash are as for the offset
//! index.

use std::path::Path;

use super::LogError;
use super::index_file::IndexFile;

/// Size of one entry in bytes.
pub(crate) const ENTRY_SIZE: usize = 12;

/// The time index of one segment.
#[derive(Debug)]
pub(crate) struct TimeIndex {
    base_offset: i64,
    file: IndexFile,
}

impl TimeIndex {
    pub(crate) fn create(path: &Path, base_offset: i64, max_bytes: u64) -> Result<Self, LogError> {
        Ok(Self {
            base_offset,
            file: IndexFile::create(path, ENTRY_SIZE, max_bytes)?,
        })
    }

    pub(crate) fn open(
        path: &Path,
        base_offset: i64,
        preallocate: Option<u64>,
    ) -> Result<Self, LogError> {
        Ok(Self {
            base_offset,
            file: IndexFile::open(path, ENTRY_SIZE, preallocate)?,
        })
    }

    pub(crate) fn entries(&self) -> usize {
        self.file.entries()
    }

    pub(crate) fn free_entries(&self) -> usize {
        self.file.free_entries()
    }

    /// Entry `i` as (timestamp, absolute offset).
    pub(crate) fn entry(&self, i: usize) -> (i64, i64) {
        let bytes = self.file.entry(i);
        let mut timestamp = [0u8; 8];
        timestamp.copy_from_slice(&bytes[..8]);
        let relative = u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        (
            i64::from_be_bytes(timestamp),
            self.base_offset + i64::from(relative),
        )
    }

    /// The last entry, if any.
    pub(crate) fn last_entry(&self) -> Option<(i64, i64)> {
        self.entries().checked_sub(1).map(|i| self.entry(i))
    }

    /// Appends (timestamp, offset) if `timestamp` is larger than the last entry's.
    pub(crate) fn maybe_append(&mut self, timestamp: i64, offset: i64) {
        if self.last_entry().is_some_and(|(last, _)| last >= timestamp) || self.file.is_full() {
            return;
        }
        let relative = u32::try_from(offset - self.base_offset).expect("relative offset fits u32");
        let mut entry = [0u8; ENTRY_SIZE];
        entry[..8].copy_from_slice(&timestamp.to_be_bytes());
        entry[8..].copy_from_slice(&relative.to_be_bytes());
        self.file.push(&entry);
    }

    /// The offset to start scanning from when looking for the first batch with max timestamp
    /// ≥ `target`: the offset of the greatest entry with timestamp < `target` (every batch
    /// before it is older than `target`), or the segment base offset.
    pub(crate) fn lookup(&self, target: i64) -> i64 {
        let (mut low, mut high) = (0usize, self.entries());
        while low < high {
            let mid = low + (high - low) / 2;
            if self.entry(mid).0 < target {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        if low == 0 {
            self.base_offset
        } else {
            self.entry(low - 1).1
        }
    }

    /// Drops entries whose offset is beyond `next_offset` (they describe truncated batches).
    pub(crate) fn truncate_to_offset(&mut self, next_offset: i64) {
        let keep = (0..self.entries())
            .take_while(|&i| self.entry(i).1 <= next_offset)
            .count();
        self.file.truncate_entries(keep);
    }

    /// Whole entries only, increasing timestamps and offsets, last offset ≤ `next_offset`.
    pub(crate) fn sanity_check(&self, next_offset: i64) -> bool {
        // `is_multiple_of` needs Rust 1.87; the workspace's rust-version is 1.85.
        #[allow(clippy::manual_is_multiple_of)]
        if self.file.file_len() % ENTRY_SIZE != 0 {
            return false;
        }
        let mut previous: Option<(i64, i64)> = None;
        for i in 0..self.entries() {
            let entry = self.entry(i);
            if previous.is_some_and(|p| p.0 >= entry.0 || p.1 > entry.1) || entry.1 > next_offset {
                return false;
            }
            previous = Some(entry);
        }
        true
    }

    /// Grows the file back to `max_bytes` (a sealed segment becoming active again).
    pub(crate) fn preallocate(&mut self, max_bytes: u64) -> Result<(), LogError> {
        self.file.preallocate(max_bytes)
    }

    pub(crate) fn trim(&mut self) -> Result<(), LogError> {
        self.file.trim()
    }

    pub(crate) fn flush(&self) -> Result<(), LogError> {
        self.file.flush()
    }

    pub(crate) fn path(&self) -> &Path {
        self.file.path()
    }

    pub(crate) fn file(&self) -> &std::sync::Arc<std::fs::File> {
        self.file.file()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_only_when_timestamp_grows_and_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000050.timeindex");
        let mut index = TimeIndex::create(&path, 50, 120).unwrap();
        assert_eq!(index.free_entries(), 10);
        index.maybe_append(1_000, 60);
        index.maybe_append(900, 70); // not larger: skipped
        index.maybe_append(1_000, 75); // equal: skipped
        index.maybe_append(2_000, 80);
        assert_eq!(index.entries(), 2);
        assert_eq!(index.lookup(500), 50);
        assert_eq!(
            index.lookup(1_000),
            50,
            "batches before 60 may still reach 1000"
        );
        assert_eq!(index.lookup(1_001), 60);
        assert_eq!(index.lookup(5_000), 80);
        assert!(index.sanity_check(80));
        assert!(!index.sanity_check(79));
        index.trim().unwrap();
        drop(index);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 24);
        assert_eq!(&bytes[..12], &[0, 0, 0, 0, 0, 0, 0x03, 0xE8, 0, 0, 0, 10]);
        let mut reopened = TimeIndex::open(&path, 50, None).unwrap();
        assert_eq!(reopened.last_entry(), Some((2_000, 80)));
        reopened.truncate_to_offset(70);
        assert_eq!(reopened.last_entry(), Some((1_000, 60)));
    }
}
