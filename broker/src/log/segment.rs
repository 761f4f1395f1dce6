//! A segment: one `.log` file of whole batches plus its offset and time indexes.
//!
//! # File format of `<20-digit base offset>.log` (version 0)
//!
//! The concatenation of v2 record batches exactly as `docs/record-format.md` describes them
//! (base offset, length, leader epoch, magic 2, CRC, ...), with nothing in between and no
//! header or trailer. Base offsets strictly increase; the file name is the base offset of the
//! segment (the first batch's base offset, or the next offset to be written if empty).
//!
//! After a crash the file may end with a torn batch or hold garbage written by a lost page;
//! recovery ([`Segment::recover`]) truncates it at the first invalid byte.
//!
//! # Active and sealed
//!
//! The last segment of a log is *active*: it takes appends and its indexes are preallocated.
//! Every other segment is *sealed*: immutable, its indexes trimmed to size and ending with a
//! time-index entry holding the segment's largest timestamp. `sealed` says which; only
//! [`Segment::seal`] turns an active segment into a sealed one, and only truncation of the
//! log (`Log::truncate_to`) makes a sealed segment active again.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tributary_record::{BatchHeader, RecordError, validate_batch};

use super::offset_index::OffsetIndex;
use super::recovery::{ScanEnd, read_header_at, scan_batches};
use super::time_index::TimeIndex;
use super::{LogConfig, LogError};

/// The 20-digit zero-padded file name stem of a segment.
pub(crate) fn file_stem(base_offset: i64) -> String {
    format!("{base_offset:020}")
}

/// What a batch contributes to a segment's bookkeeping.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchMeta {
    pub(crate) base_offset: i64,
    pub(crate) last_offset: i64,
    pub(crate) max_timestamp: i64,
    pub(crate) size: usize,
}

impl From<&BatchHeader> for BatchMeta {
    fn from(header: &BatchHeader) -> Self {
        Self {
            base_offset: header.base_offset,
            last_offset: header.last_offset(),
            max_timestamp: header.max_timestamp,
            size: header.total_size(),
        }
    }
}

/// Where a read starts: everything a reader needs to do its I/O without the log's lock.
#[derive(Debug, Clone)]
pub(crate) struct ReadSnapshot {
    pub(crate) file: Arc<File>,
    pub(crate) path: PathBuf,
    /// Position of an indexed batch at or before the target.
    pub(crate) start: u64,
    /// Size of the segment when the snapshot was taken: bytes up to here are complete batches.
    pub(crate) end: u64,
}

/// Outcome of recovering one segment.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct RecoveryOutcome {
    /// Bytes cut from the end of the file (0 when it was intact).
    pub(crate) truncated_bytes: u64,
}

/// One segment of a log.
#[derive(Debug)]
pub(crate) struct Segment {
    base_offset: i64,
    log_path: PathBuf,
    file: Arc<File>,
    /// Bytes of complete batches. Invariant: equals the `.log` file length (a failed write is
    /// truncated back).
    size: u64,
    /// Offset after the last batch. Invariant: `base_offset <= next_offset`.
    next_offset: i64,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    /// Bytes appended since the last offset-index entry (or the segment start).
    bytes_since_index_entry: u64,
    /// `index.interval.bytes` in force.
    index_interval_bytes: u64,
    /// Largest batch max_timestamp, or -1 when no batch carried a timestamp.
    max_timestamp: i64,
    /// Max timestamp of the first batch (`segment.ms` counts from it), if any.
    first_batch_timestamp: Option<i64>,
    /// When this process created or loaded the segment (the `segment.ms` fallback).
    created_ms: i64,
    sealed: bool,
}

impl Segment {
    fn paths(dir: &Path, base_offset: i64) -> (PathBuf, PathBuf, PathBuf) {
        Self::paths_with_suffix(dir, base_offset, "")
    }

    /// The `.log`, `.index` and `.timeindex` paths of a segment, each followed by `suffix`
    /// (`""` for a live segment, `".cleaned"` for one the cleaner is writing).
    pub(crate) fn paths_with_suffix(
        dir: &Path,
        base_offset: i64,
        suffix: &str,
    ) -> (PathBuf, PathBuf, PathBuf) {
        let stem = file_stem(base_offset);
        (
            dir.join(format!("{stem}.log{suffix}")),
            dir.join(format!("{stem}.index{suffix}")),
            dir.join(format!("{stem}.timeindex{suffix}")),
        )
    }

    fn open_log_file(path: &Path, create: bool) -> Result<File, LogError> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(create)
            .open(path)
            .map_err(|e| LogError::io("opening segment", path, e))
    }

    /// Creates a new, empty, active segment (replacing any files of the same name).
    pub(crate) fn create(
        dir: &Path,
        base_offset: i64,
        config: &LogConfig,
        now_ms: i64,
    ) -> Result<Self, LogError> {
        Self::create_with_suffix(dir, base_offset, "", config, now_ms)
    }

    /// Like [`Segment::create`], with every file name followed by `suffix`: the log cleaner
    /// writes a cleaned segment as `<base>.log.cleaned` etc. (see `cleaner/swap.rs`).
    pub(crate) fn create_with_suffix(
        dir: &Path,
        base_offset: i64,
        suffix: &str,
        config: &LogConfig,
        now_ms: i64,
    ) -> Result<Self, LogError> {
        let (log_path, index_path, time_path) = Self::paths_with_suffix(dir, base_offset, suffix);
        let file = Self::open_log_file(&log_path, true)?;
        Ok(Self {
            base_offset,
            log_path,
            file: Arc::new(file),
            size: 0,
            next_offset: base_offset,
            offset_index: OffsetIndex::create(
                &index_path,
                base_offset,
                config.segment_index_bytes,
            )?,
            time_index: TimeIndex::create(&time_path, base_offset, config.segment_index_bytes)?,
            bytes_since_index_entry: 0,
            index_interval_bytes: config.index_interval_bytes,
            max_timestamp: -1,
            first_batch_timestamp: None,
            created_ms: now_ms,
            sealed: false,
        })
    }

    /// Opens an existing segment.
    ///
    /// * `next_segment_base`: the base offset of the following segment, `None` for the last one
    ///   (which is opened active).
    /// * `recover`: re-validate every batch and rebuild both indexes (unclean shutdown, from the
    ///   recovery point on). Otherwise the indexes are trusted if they pass their sanity checks
    ///   and rebuilt (with full validation) if they are missing or fail them.
    pub(crate) fn open(
        dir: &Path,
        base_offset: i64,
        next_segment_base: Option<i64>,
        recover: bool,
        config: &LogConfig,
        now_ms: i64,
    ) -> Result<(Self, Option<RecoveryOutcome>), LogError> {
        let (log_path, index_path, time_path) = Self::paths(dir, base_offset);
        let file = Self::open_log_file(&log_path, false)?;
        let size = file
            .metadata()
            .map_err(|e| LogError::io("reading metadata of", &log_path, e))?
            .len();
        let active = next_segment_base.is_none();
        let preallocate = active.then_some(config.segment_index_bytes);
        let indexes = if !recover && index_path.exists() && time_path.exists() {
            Some((
                OffsetIndex::open(&index_path, base_offset, preallocate)?,
                TimeIndex::open(&time_path, base_offset, preallocate)?,
            ))
        } else {
            None
        };
        let (offset_index, time_index, trusted) = match indexes {
            Some((offset_index, time_index)) => (offset_index, time_index, true),
            None => (
                OffsetIndex::create(&index_path, base_offset, config.segment_index_bytes)?,
                TimeIndex::create(&time_path, base_offset, config.segment_index_bytes)?,
                false,
            ),
        };
        let mut segment = Self {
            base_offset,
            log_path,
            file: Arc::new(file),
            size,
            next_offset: next_segment_base.unwrap_or(base_offset),
            offset_index,
            time_index,
            bytes_since_index_entry: 0,
            index_interval_bytes: config.index_interval_bytes,
            max_timestamp: -1,
            first_batch_timestamp: None,
            created_ms: now_ms,
            sealed: !active,
        };
        if trusted && segment.load_from_trusted_indexes(next_segment_base)? {
            if segment.sealed {
                segment.offset_index.trim()?;
                segment.time_index.trim()?;
            }
            return Ok((segment, None));
        }
        let outcome = segment.recover(config)?;
        if segment.sealed {
            segment.seal()?;
        }
        Ok((segment, Some(outcome)))
    }

    /// Fills in the in-memory state from trusted indexes; `false` if they fail the sanity
    /// checks (the caller then recovers the segment).
    fn load_from_trusted_indexes(
        &mut self,
        next_segment_base: Option<i64>,
    ) -> Result<bool, LogError> {
        if !self.offset_index.sanity_check(self.size.max(1)) {
            return Ok(false);
        }
        // The tail after the last index entry is scanned (at most about index.interval.bytes
        // plus one batch) for the last segment's end offset and largest timestamp.
        let (last_indexed_offset, last_indexed_position) = self.offset_index.lookup(i64::MAX);
        let mut pos = u64::from(last_indexed_position);
        let mut next_offset = last_indexed_offset;
        let mut tail_max_timestamp = -1;
        let mut first_batch_timestamp = None;
        while pos < self.size {
            let Some(header) = read_header_at(&self.file, &self.log_path, pos, self.size)
                .ok()
                .flatten()
            else {
                return Ok(false);
            };
            if header.base_offset < next_offset || pos + header.total_size() as u64 > self.size {
                return Ok(false);
            }
            if pos == 0 {
                first_batch_timestamp = Some(header.max_timestamp);
            }
            tail_max_timestamp = tail_max_timestamp.max(header.max_timestamp);
            next_offset = header.next_offset();
            pos += header.total_size() as u64;
        }
        // Invariant: a sealed segment ends exactly where the next one begins (segments roll at
        // the log end, and truncation deletes every later segment). A tail that stops short
        // means the file lost bytes at a batch boundary: recover, so the loader sees the gap.
        if next_segment_base.is_some_and(|next_base| next_offset != next_base) {
            return Ok(false);
        }
        if !self.time_index.sanity_check(next_offset) {
            return Ok(false);
        }
        if first_batch_timestamp.is_none() && self.size > 0 {
            first_batch_timestamp =
                read_header_at(&self.file, &self.log_path, 0, self.size)?.map(|h| h.max_timestamp);
        }
        self.next_offset = next_offset;
        self.first_batch_timestamp = first_batch_timestamp;
        self.max_timestamp = self
            .time_index
            .last_entry()
            .map_or(-1, |(t, _)| t)
            .max(tail_max_timestamp);
        // A reloaded active segment takes its next index entry at the next batch.
        self.bytes_since_index_entry = self.size - u64::from(last_indexed_position);
        Ok(true)
    }

    /// Re-reads every batch (header, length, CRC, increasing offsets), rebuilds both indexes
    /// and truncates the file after the last valid batch.
    pub(crate) fn recover(&mut self, config: &LogConfig) -> Result<RecoveryOutcome, LogError> {
        let (_, index_path, time_path) = Self::paths(
            self.log_path.parent().unwrap_or(Path::new(".")),
            self.base_offset,
        );
        self.offset_index =
            OffsetIndex::create(&index_path, self.base_offset, config.segment_index_bytes)?;
        self.time_index =
            TimeIndex::create(&time_path, self.base_offset, config.segment_index_bytes)?;
        self.bytes_since_index_entry = 0;
        self.index_interval_bytes = config.index_interval_bytes;
        self.max_timestamp = -1;
        self.first_batch_timestamp = None;
        self.next_offset = self.base_offset;
        let file_len = self
            .file
            .metadata()
            .map_err(|e| LogError::io("reading metadata of", &self.log_path, e))?
            .len();
        let file = Arc::clone(&self.file);
        let path = self.log_path.clone();
        let (valid_end, why) = scan_batches(&file, &path, 0, file_len, |batch| {
            validate_batch(batch.bytes)?;
            let header = batch.header;
            if header.base_offset < self.next_offset {
                return Err(RecordError::InvalidHeader {
                    reason: "batch offsets go backwards",
                });
            }
            if header.last_offset() - self.base_offset > i64::from(i32::MAX) {
                return Err(RecordError::InvalidHeader {
                    reason: "offset too far from the segment base",
                });
            }
            self.index_batch(batch.position, &BatchMeta::from(&header));
            Ok(())
        })?;
        if valid_end < file_len {
            tracing::warn!(
                path = %self.log_path.display(), valid_end, file_len, reason = ?why,
                "truncating segment after its last valid batch"
            );
            debug_assert_ne!(why, ScanEnd::Clean);
            self.file
                .set_len(valid_end)
                .map_err(|e| LogError::io("truncating segment", &self.log_path, e))?;
        }
        self.size = valid_end;
        Ok(RecoveryOutcome {
            truncated_bytes: file_len - valid_end,
        })
    }

    /// Updates indexes and bookkeeping for a batch written at `position`.
    fn index_batch(&mut self, position: u64, batch: &BatchMeta) {
        // Like Kafka: an entry once *more than* index.interval.bytes were appended.
        if self.bytes_since_index_entry > self.index_interval_bytes
            && self.offset_index.free_entries() > 0
        {
            self.offset_index.append(batch.base_offset, position as u32);
            if self.max_timestamp >= 0 {
                self.time_index
                    .maybe_append(self.max_timestamp, batch.base_offset);
            }
            self.bytes_since_index_entry = 0;
        }
        self.bytes_since_index_entry += batch.size as u64;
        self.max_timestamp = self.max_timestamp.max(batch.max_timestamp);
        self.first_batch_timestamp
            .get_or_insert(batch.max_timestamp);
        self.next_offset = batch.last_offset + 1;
    }

    /// Whether appending `incoming_bytes` in `batch_count` batches ending at `last_offset`
    /// needs a new segment first (Kafka's `shouldRoll`). An empty segment never rolls.
    pub(crate) fn should_roll(
        &self,
        incoming_bytes: u64,
        batch_count: usize,
        last_offset: i64,
        now_ms: i64,
        config: &LogConfig,
    ) -> bool {
        if self.size == 0 {
            return false;
        }
        let rolling_timestamp = match self.first_batch_timestamp {
            Some(timestamp) if timestamp >= 0 => timestamp,
            _ => self.created_ms,
        };
        self.size + incoming_bytes > config.effective_segment_bytes()
            || now_ms.saturating_sub(rolling_timestamp) > config.segment_ms
            || self.offset_index.free_entries() < batch_count
            || self.time_index.free_entries() < batch_count + 1
            || last_offset - self.base_offset > i64::from(i32::MAX)
    }

    /// Writes `bytes` (whole batches described by `batches`) at the end of the segment. On an
    /// I/O error the file is truncated back and nothing changes.
    pub(crate) fn append(
        &mut self,
        bytes: &[u8],
        batches: &[BatchMeta],
        config: &LogConfig,
    ) -> Result<(), LogError> {
        debug_assert!(!self.sealed, "append to a sealed segment");
        if let Err(error) = self.write_at_end(bytes) {
            // Best effort: if even this fails the next append overwrites the same range.
            let _ = self.file.set_len(self.size);
            return Err(LogError::io("appending to segment", &self.log_path, error));
        }
        self.index_interval_bytes = config.index_interval_bytes;
        let mut position = self.size;
        for batch in batches {
            self.index_batch(position, batch);
            position += batch.size as u64;
        }
        debug_assert_eq!(position, self.size + bytes.len() as u64);
        self.size = position;
        Ok(())
    }

    fn write_at_end(&self, bytes: &[u8]) -> std::io::Result<()> {
        #[cfg(test)]
        if let Some(written) = fault::take_write_failure() {
            // Simulate a disk that fills up part-way through the write.
            self.file
                .write_all_at(&bytes[..written.min(bytes.len())], self.size)?;
            return Err(std::io::Error::from_raw_os_error(28)); // ENOSPC
        }
        self.file.write_all_at(bytes, self.size)
    }

    /// Makes the segment immutable: final time-index entry, indexes trimmed.
    pub(crate) fn seal(&mut self) -> Result<(), LogError> {
        if self.max_timestamp >= 0 {
            self.time_index
                .maybe_append(self.max_timestamp, self.next_offset);
        }
        self.offset_index.trim()?;
        self.time_index.trim()?;
        self.sealed = true;
        Ok(())
    }

    /// Trims the indexes for a clean close (the segment stays usable; the next append finds
    /// no free index entries and rolls).
    pub(crate) fn trim_indexes(&mut self) -> Result<(), LogError> {
        self.offset_index.trim()?;
        self.time_index.trim()
    }

    /// msyncs both indexes (the `.log` is fsync'd through [`Segment::sync_handles`]).
    pub(crate) fn flush_indexes(&self) -> Result<(), LogError> {
        self.offset_index.flush()?;
        self.time_index.flush()
    }

    /// The files to fsync to make this segment durable, so the fsync can run without the
    /// log's lock.
    pub(crate) fn sync_handles(&self) -> [(Arc<File>, PathBuf); 3] {
        [
            (Arc::clone(&self.file), self.log_path.clone()),
            (
                Arc::clone(self.offset_index.file()),
                self.offset_index.path().to_path_buf(),
            ),
            (
                Arc::clone(self.time_index.file()),
                self.time_index.path().to_path_buf(),
            ),
        ]
    }

    /// A snapshot for reading from the batch containing `offset` (`base_offset <= offset <
    /// next_offset`).
    pub(crate) fn read_snapshot(&self, offset: i64) -> ReadSnapshot {
        let (_, position) = self.offset_index.lookup(offset);
        ReadSnapshot {
            file: Arc::clone(&self.file),
            path: self.log_path.clone(),
            start: u64::from(position),
            end: self.size,
        }
    }

    /// A snapshot for finding the first batch with max timestamp ≥ `timestamp`.
    pub(crate) fn timestamp_snapshot(&self, timestamp: i64) -> ReadSnapshot {
        let offset = self.time_index.lookup(timestamp);
        self.read_snapshot(offset)
    }

    /// Removes every batch containing or after `offset` (the batch containing it goes
    /// whole), drops the index entries of removed batches and makes the segment active.
    pub(crate) fn truncate_to(&mut self, offset: i64, config: &LogConfig) -> Result<(), LogError> {
        let (_, start) = self.offset_index.lookup(offset);
        let mut pos = u64::from(start);
        let mut removed_from = None;
        while let Some(header) = read_header_at(&self.file, &self.log_path, pos, self.size)? {
            if header.last_offset() >= offset {
                removed_from = Some(header.base_offset);
                break;
            }
            pos += header.total_size() as u64;
        }
        self.file
            .set_len(pos)
            .map_err(|e| LogError::io("truncating segment", &self.log_path, e))?;
        self.size = pos;
        if let Some(removed_from) = removed_from {
            self.offset_index.truncate_to_offset(removed_from);
            self.time_index.truncate_to_offset(removed_from);
        }
        self.offset_index.preallocate(config.segment_index_bytes)?;
        self.time_index.preallocate(config.segment_index_bytes)?;
        self.sealed = false;
        if !self.load_from_trusted_indexes(None)? {
            self.recover(config)?;
        }
        Ok(())
    }

    /// Renames the segment's files to `<name>.deleted` and returns the new paths; the caller
    /// unlinks them after `file.delete.delay.ms`. Open read snapshots stay valid.
    pub(crate) fn rename_for_deletion(&self) -> Result<Vec<PathBuf>, LogError> {
        let mut renamed = Vec::with_capacity(3);
        for path in [
            self.log_path.as_path(),
            self.offset_index.path(),
            self.time_index.path(),
        ] {
            let mut target = path.as_os_str().to_owned();
            target.push(".deleted");
            let target = PathBuf::from(target);
            std::fs::rename(path, &target)
                .map_err(|e| LogError::io("renaming for deletion", path, e))?;
            renamed.push(target);
        }
        Ok(renamed)
    }

    pub(crate) fn base_offset(&self) -> i64 {
        self.base_offset
    }
    pub(crate) fn next_offset(&self) -> i64 {
        self.next_offset
    }
    pub(crate) fn size(&self) -> u64 {
        self.size
    }
    pub(crate) fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }
    /// Largest batch timestamp, or the `.log`'s modification time when no batch carries one
    /// (what time retention and the cleaner's compaction lag compare with).
    pub(crate) fn largest_timestamp(&self) -> i64 {
        if self.max_timestamp >= 0 {
            self.max_timestamp
        } else {
            self.modified_ms()
        }
    }
    /// Max timestamp of the first batch, if the segment has one.
    pub(crate) fn first_batch_timestamp(&self) -> Option<i64> {
        self.first_batch_timestamp
    }
    /// A shared handle on the `.log` file (the cleaner reads sealed segments without the lock).
    pub(crate) fn file(&self) -> &Arc<File> {
        &self.file
    }
    /// Sets the `.log`'s modification time: a cleaned segment takes the newest of its sources'
    /// so time retention and the tombstone horizon see the data's age, not the cleaning's.
    pub(crate) fn set_modified_ms(&self, modified_ms: i64) -> Result<(), LogError> {
        let time = std::time::UNIX_EPOCH
            + std::time::Duration::from_millis(u64::try_from(modified_ms).unwrap_or(0));
        self.file
            .set_modified(time)
            .map_err(|e| LogError::io("setting the modification time of", &self.log_path, e))
    }
    pub(crate) fn is_sealed(&self) -> bool {
        self.sealed
    }
    pub(crate) fn log_path(&self) -> &Path {
        &self.log_path
    }
    /// Last-modified time of the `.log` in ms (time retention for segments without timestamps).
    pub(crate) fn modified_ms(&self) -> i64 {
        self.file
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(self.created_ms, |d| d.as_millis() as i64)
    }
}

/// Test-only fault injection for the segment write path (per thread, so parallel tests are
/// unaffected).
#[cfg(test)]
pub(crate) mod fault {
    use std::cell::Cell;

    thread_local! {
        static FAIL_NEXT_WRITE: Cell<Option<usize>> = const { Cell::new(None) };
    }

    /// Makes the next segment write on this thread write `written` bytes, then fail with
    /// ENOSPC.
    pub(crate) fn fail_next_write(written: usize) {
        FAIL_NEXT_WRITE.with(|cell| cell.set(Some(written)));
    }

    pub(super) fn take_write_failure() -> Option<usize> {
        FAIL_NEXT_WRITE.with(Cell::take)
    }
}
