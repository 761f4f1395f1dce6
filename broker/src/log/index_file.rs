//! A memory-mapped file of fixed-size entries: the storage shared by the offset and time
//! indexes.
//!
//! While its segment is active the file is preallocated to its maximum size (a sparse file)
//! and entries are written through the map; `entries` says how many are valid. When the
//! segment is sealed, and on clean close, the file is trimmed to `entries × entry_size`, so
//! after a clean shutdown the entry count is simply the file length divided by the entry size.
//! After a crash the active segment's index is preallocated and full of zeros past the last
//! entry; it is never trusted then (recovery rebuilds it).

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::MmapMut;

use super::LogError;

/// A fixed-entry-size index file mapped into memory.
#[derive(Debug)]
pub(crate) struct IndexFile {
    path: PathBuf,
    file: Arc<File>,
    /// `None` when the file is empty (a zero-length map is not allowed).
    mmap: Option<MmapMut>,
    entry_size: usize,
    /// Invariant: `entries * entry_size <= mmap.len()`.
    entries: usize,
}

impl IndexFile {
    /// Creates (or truncates) the file and preallocates `max_bytes` rounded down to a multiple
    /// of `entry_size`.
    pub(crate) fn create(path: &Path, entry_size: usize, max_bytes: u64) -> Result<Self, LogError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(|e| LogError::io("creating index", path, e))?;
        let mut index = Self {
            path: path.to_path_buf(),
            file: Arc::new(file),
            mmap: None,
            entry_size,
            entries: 0,
        };
        index.resize(max_bytes)?;
        Ok(index)
    }

    /// Opens an existing, trimmed file: every whole entry in it is valid. When `preallocate`
    /// is given (the active segment) the file is grown to that size for further appends.
    pub(crate) fn open(
        path: &Path,
        entry_size: usize,
        preallocate: Option<u64>,
    ) -> Result<Self, LogError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| LogError::io("opening index", path, e))?;
        let len = file
            .metadata()
            .map_err(|e| LogError::io("reading metadata of", path, e))?
            .len();
        let entries = (len / entry_size as u64) as usize;
        let mut index = Self {
            path: path.to_path_buf(),
            file: Arc::new(file),
            mmap: None,
            entry_size,
            entries,
        };
        let target = preallocate.map_or(len, |max| max.max(len));
        index.resize(target)?;
        Ok(index)
    }

    /// Length of the file on disk before any trimming (used for sanity checks).
    pub(crate) fn file_len(&self) -> usize {
        self.mmap.as_ref().map_or(0, |m| m.len())
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The file handle: `fsync` on it also writes pages dirtied through the map (shared
    /// mapping), so a flush can run without holding the segment.
    pub(crate) fn file(&self) -> &Arc<File> {
        &self.file
    }

    pub(crate) fn entries(&self) -> usize {
        self.entries
    }

    pub(crate) fn is_full(&self) -> bool {
        self.free_entries() == 0
    }

    pub(crate) fn free_entries(&self) -> usize {
        self.file_len() / self.entry_size - self.entries
    }

    /// The bytes of entry `i`. Panics if `i >= entries()`.
    pub(crate) fn entry(&self, i: usize) -> &[u8] {
        assert!(i < self.entries, "index entry {i} out of {}", self.entries);
        let map = self.mmap.as_ref().expect("non-empty index is mapped");
        &map[i * self.entry_size..(i + 1) * self.entry_size]
    }

    /// Appends one entry. The caller checks `is_full()` first.
    pub(crate) fn push(&mut self, entry: &[u8]) {
        debug_assert_eq!(entry.len(), self.entry_size);
        let at = self.entries * self.entry_size;
        let map = self
            .mmap
            .as_mut()
            .expect("index with free entries is mapped");
        map[at..at + self.entry_size].copy_from_slice(entry);
        self.entries += 1;
    }

    /// Forgets the entries from `n` on (their bytes are zeroed so a later trim-less reopen
    /// cannot mistake them for valid ones).
    pub(crate) fn truncate_entries(&mut self, n: usize) {
        if n >= self.entries {
            return;
        }
        if let Some(map) = self.mmap.as_mut() {
            map[n * self.entry_size..self.entries * self.entry_size].fill(0);
        }
        self.entries = n;
    }

    /// Shrinks the file to exactly the valid entries.
    pub(crate) fn trim(&mut self) -> Result<(), LogError> {
        self.resize((self.entries * self.entry_size) as u64)
    }

    /// Grows the file to `max_bytes` (rounded down to whole entries) if it is smaller.
    pub(crate) fn preallocate(&mut self, max_bytes: u64) -> Result<(), LogError> {
        if (self.file_len() as u64) < max_bytes {
            self.resize(max_bytes)?;
        }
        Ok(())
    }

    /// Writes dirty pages of the map to disk (`msync`).
    pub(crate) fn flush(&self) -> Result<(), LogError> {
        if let Some(map) = &self.mmap {
            map.flush()
                .map_err(|e| LogError::io("flushing index", &self.path, e))?;
        }
        Ok(())
    }

    /// Sets the file length to `bytes` rounded down to whole entries (never below the valid
    /// entries) and remaps it.
    fn resize(&mut self, bytes: u64) -> Result<(), LogError> {
        let entry = self.entry_size as u64;
        let bytes = (bytes / entry * entry).max((self.entries * self.entry_size) as u64);
        if let Some(map) = self.mmap.take() {
            map.flush()
                .map_err(|e| LogError::io("flushing index", &self.path, e))?;
        }
        self.file
            .set_len(bytes)
            .map_err(|e| LogError::io("resizing index", &self.path, e))?;
        if bytes > 0 {
            // SAFETY: the map is private to this struct, which owns the file; the engine never
            // shrinks an index file while it is mapped (the old map is dropped above) and no
            // other process writes Tributary's files (the log dir is locked).
            let map = unsafe { MmapMut::map_mut(&self.file) }
                .map_err(|e| LogError::io("mapping index", &self.path, e))?;
            self.mmap = Some(map);
        }
        Ok(())
    }
}
