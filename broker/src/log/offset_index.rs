//! The sparse offset index (`<base offset>.index`): offset → byte position in the `.log`.
//!
//! # File format (version 0, no header)
//!
//! ```text
//! entry i, at byte 8*i:
//!   0  4  relative_offset  u32 BE  batch base offset − segment base offset
//!   4  4  position         u32 BE  byte position of that batch in the .log file
//! ```
//!
//! Entries are strictly increasing in both fields. One entry is added for the batch that
//! takes the bytes appended since the previous entry past `index.interval.bytes` (the first
//! batch of a segment is never indexed: position 0 is implied).
//!
//! **Deviation from Kafka:** Kafka keys an entry by the batch's *last* offset; Tributary keys
//! it by the batch's *base* offset. Both make "greatest entry ≤ target, then scan forward"
//! correct; the base offset lets the scan start at the batch that contains the target instead
//! of the one before it.
//!
//! The file is preallocated to `segment.index.bytes` (rounded down to a multiple of 8) while
//! the segment is active and trimmed when it is sealed or closed cleanly. It has no checksum:
//! after a crash the active segment's index is rebuilt from the `.log`; a sealed segment's
//! index failing [`OffsetIndex::sanity_check`] is rebuilt too.

use std::path::Path;

use super::LogError;
use super::index_file::IndexFile;

/// Size of one entry in bytes.
pub(crate) const ENTRY_SIZE: usize = 8;

/// The offset index of one segment.
#[derive(Debug)]
pub(crate) struct OffsetIndex {
    base_offset: i64,
    file: IndexFile,
}

impl OffsetIndex {
    /// A new, empty, preallocated index.
    pub(crate) fn create(path: &Path, base_offset: i64, max_bytes: u64) -> Result<Self, LogError> {
        Ok(Self {
            base_offset,
            file: IndexFile::create(path, ENTRY_SIZE, max_bytes)?,
        })
    }

    /// Opens a trimmed index; `preallocate` grows it again for an active segment.
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

    /// Entry `i` as (absolute offset, position).
    pub(crate) fn entry(&self, i: usize) -> (i64, u32) {
        let bytes = self.file.entry(i);
        let relative = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        let position = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
        (self.base_offset + i64::from(relative), position)
    }

    /// Adds an entry for the batch starting at `offset`, stored at `position`.
    pub(crate) fn append(&mut self, offset: i64, position: u32) {
        let relative = u32::try_from(offset - self.base_offset).expect("relative offset fits u32");
        debug_assert!(self.entries() == 0 || self.entry(self.entries() - 1).0 < offset);
        let mut entry = [0u8; ENTRY_SIZE];
        entry[..4].copy_from_slice(&relative.to_be_bytes());
        entry[4..].copy_from_slice(&position.to_be_bytes());
        self.file.push(&entry);
    }

    /// The greatest entry with offset ≤ `target`, or (base offset, 0) when there is none:
    /// the batch containing `target` starts at or after the returned position.
    pub(crate) fn lookup(&self, target: i64) -> (i64, u32) {
        // Number of entries with offset <= target (entries are sorted).
        let (mut low, mut high) = (0usize, self.entries());
        while low < high {
            let mid = low + (high - low) / 2;
            if self.entry(mid).0 <= target {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        if low == 0 {
            (self.base_offset, 0)
        } else {
            self.entry(low - 1)
        }
    }

    /// Drops entries for batches starting at or after `offset`.
    pub(crate) fn truncate_to_offset(&mut self, offset: i64) {
        let keep = (0..self.entries())
            .take_while(|&i| self.entry(i).0 < offset)
            .count();
        self.file.truncate_entries(keep);
    }

    /// Checks what can be checked without the `.log`: whole entries only, increasing offsets
    /// and positions, and the last position inside a `.log` of `log_size` bytes.
    pub(crate) fn sanity_check(&self, log_size: u64) -> bool {
        // `is_multiple_of` needs Rust 1.87; the workspace's rust-version is 1.85.
        #[allow(clippy::manual_is_multiple_of)]
        if self.file.file_len() % ENTRY_SIZE != 0 {
            return false;
        }
        let mut previous: Option<(i64, u32)> = None;
        for i in 0..self.entries() {
            let entry = self.entry(i);
            if previous.is_some_and(|p| p.0 >= entry.0 || p.1 >= entry.1)
                || u64::from(entry.1) >= log_size
            {
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
    fn append_lookup_trim_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000100.index");
        let mut index = OffsetIndex::create(&path, 100, 8 * 4 + 5).unwrap();
        assert_eq!(
            index.free_entries(),
            4,
            "preallocation is rounded down to whole entries"
        );
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 32);
        assert_eq!(
            index.lookup(150),
            (100, 0),
            "empty index points at the segment start"
        );
        index.append(110, 4100);
        index.append(130, 8300);
        index.append(170, 12_500);
        assert_eq!(index.lookup(99), (100, 0));
        assert_eq!(index.lookup(109), (100, 0));
        assert_eq!(index.lookup(110), (110, 4100));
        assert_eq!(index.lookup(129), (110, 4100));
        assert_eq!(index.lookup(131), (130, 8300));
        assert_eq!(index.lookup(1_000), (170, 12_500));
        assert_eq!(index.free_entries(), 1);
        index.trim().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 24);
        assert!(index.sanity_check(20_000));
        assert!(
            !index.sanity_check(12_500),
            "last position must lie inside the log"
        );
        drop(index);

        let mut reopened = OffsetIndex::open(&path, 100, Some(64)).unwrap();
        assert_eq!(reopened.entries(), 3);
        assert_eq!(reopened.free_entries(), 5);
        assert_eq!(reopened.lookup(140), (130, 8300));
        reopened.truncate_to_offset(130);
        assert_eq!(reopened.entries(), 1);
        assert_eq!(reopened.lookup(140), (110, 4100));
    }

    #[test]
    fn golden_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000007.index");
        let mut index = OffsetIndex::create(&path, 7, 1024).unwrap();
        index.append(7 + 3, 0x0102_0304);
        index.trim().unwrap();
        drop(index);
        assert_eq!(std::fs::read(&path).unwrap(), [0, 0, 0, 3, 1, 2, 3, 4]);
    }

    #[test]
    fn sanity_check_rejects_unsorted_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        std::fs::write(&path, [0, 0, 0, 5, 0, 0, 0, 9, 0, 0, 0, 4, 0, 0, 0, 10]).unwrap();
        let index = OffsetIndex::open(&path, 0, None).unwrap();
        assert!(!index.sanity_check(100));
    }
}
