//! `Log`: one partition's segments: loading, read, flush, truncation and retention (the
//! append path is in `append.rs`, the leader epoch queries and file in `leader_epoch_file.rs`).
//!
//! # Concurrency
//!
//! One short `std::sync::Mutex` per log guards the segment list. Appends validate batches
//! (the per-record work) *before* taking it and hold it only to assign offsets, write and
//! update indexes. Reads hold it only to find the segment and index position, then read with
//! `pread` on an `Arc`'d file handle. fsyncs run outside it too. There is no lock shared
//! between partitions on the append or read path.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use bytes::Bytes;

use super::leader_epoch::LeaderEpochCache;
use super::leader_epoch_file::{self, LoadedEpochs};
use super::load::{LoadedSegments, delete_segment_files, load_segments};
use super::producer_state::ProducerStates;
use super::read::{find_offset_for_timestamp, read_batches};
use super::retention::{RetentionPolicy, SegmentSummary, segments_to_delete};
use super::segment::Segment;
use super::verification;
use super::{LogConfig, LogError, TopicPartition};
use super::{producer_rebuild, producer_snapshot};

/// What a read returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadResult {
    /// Zero or more whole batches, byte for byte as stored.
    pub batches: Bytes,
    /// The log start offset when the read started.
    pub log_start_offset: i64,
    /// The log end offset when the read started.
    pub log_end_offset: i64,
}

/// Everything the mutex guards.
#[derive(Debug)]
pub(crate) struct LogState {
    /// Invariants: never empty; sorted by base offset without overlap; every segment but the
    /// last is sealed.
    pub(crate) segments: Vec<Segment>,
    /// Invariant: `segments[0].base_offset() <= log_start_offset <= log end offset`.
    pub(crate) log_start_offset: i64,
    /// Invariant: `recovery_point <= log end offset`.
    pub(crate) recovery_point: i64,
    /// The log cleaner's checkpoint (see `cleaner/`). Invariant: `<= log end offset`
    /// (truncation lowers it); below the log start it means "from the log start".
    pub(crate) first_dirty_offset: i64,
    /// Records appended since the last flush (for `flush.messages`).
    pub(crate) unflushed_records: u64,
    /// When the last flush finished (for `flush.ms`).
    pub(crate) last_flush_ms: i64,
    /// `*.deleted` files and when to unlink them.
    pub(crate) pending_deletions: Vec<(i64, PathBuf)>,
    /// Set by `close`: no more appends.
    pub(crate) closed: bool,
    /// Which leader epoch wrote which offsets. Invariant: every start offset is in
    /// `[log_start_offset, log end offset]`.
    pub(crate) leader_epochs: LeaderEpochCache,
    /// Bumped on every change of `leader_epochs`.
    pub(crate) leader_epochs_version: u64,
    /// The version last written to `leader-epoch-checkpoint`. Invariant: when it differs from
    /// `leader_epochs_version` the recovery point does not advance (flush writes the file
    /// first).
    pub(crate) leader_epochs_persisted: u64,
    /// The idempotent producers' sequence state. Invariant: what a rebuild from the log's
    /// batches would give (every append, truncation and retention pass updates it).
    pub(crate) producers: ProducerStates,
}

impl LogState {
    pub(crate) fn active(&self) -> &Segment {
        self.segments.last().expect("a log always has a segment")
    }

    pub(crate) fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .last_mut()
            .expect("a log always has a segment")
    }

    pub(crate) fn log_end_offset(&self) -> i64 {
        self.active().next_offset()
    }

    /// Records a change of the leader epoch cache (`changed` as returned by its methods).
    pub(crate) fn leader_epochs_changed(&mut self, changed: bool) -> bool {
        if changed {
            self.leader_epochs_version += 1;
        }
        changed
    }

    /// Index of the segment that holds `offset` (the last with base offset ≤ `offset`, or 0).
    fn segment_index_for(&self, offset: i64) -> usize {
        self.segments
            .partition_point(|s| s.base_offset() <= offset)
            .saturating_sub(1)
    }
}

/// One partition's log. `Send + Sync`; share it as `Arc<Log>`.
#[derive(Debug)]
pub struct Log {
    pub(crate) dir: PathBuf,
    pub(crate) topic_partition: TopicPartition,
    pub(crate) config: RwLock<LogConfig>,
    pub(crate) state: Mutex<LogState>,
    /// Copies of the state's offsets for lock-free getters (written under the lock).
    pub(crate) log_end_offset: AtomicI64,
    pub(crate) log_start_offset: AtomicI64,
    /// Serialises writes of `leader-epoch-checkpoint` (never taken on the append path unless
    /// the append changed the cache).
    pub(crate) leader_epoch_writer: Mutex<()>,
    /// Recovered after an unclean shutdown and not yet checked against the other replicas
    /// (mirrors the `needs-verification` file; see `verification.rs`).
    pub(crate) needs_verification: AtomicBool,
}

/// What a flush covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FlushScope {
    /// Every segment at or above the recovery point, up to the log end.
    Everything,
    /// Only sealed segments (the deferred flush at roll), up to the active segment's base.
    SealedSegments,
}

impl Log {
    /// Opens (or creates, if `dir` does not exist) the log in `dir`, named
    /// `<topic>-<partition>`.
    ///
    /// * `recovery_point`, `log_start_offset`: the checkpointed values (0 if none).
    /// * `clean_shutdown`: the log dir had the clean-shutdown marker. Without it every segment
    ///   from the one containing the recovery point is re-validated, the first invalid byte
    ///   truncates its segment and all later segments are deleted, and indexes are rebuilt.
    pub fn open(
        dir: &Path,
        config: LogConfig,
        recovery_point: i64,
        log_start_offset: i64,
        clean_shutdown: bool,
        now_ms: i64,
    ) -> Result<Log, LogError> {
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let topic_partition =
            TopicPartition::parse_dir_name(name).ok_or_else(|| LogError::InvalidLogDirName {
                path: dir.to_path_buf(),
            })?;
        let LoadedSegments {
            segments,
            log_start_offset: log_start,
            recovery_point,
        } = load_segments(
            dir,
            &topic_partition,
            &config,
            recovery_point,
            log_start_offset,
            clean_shutdown,
            now_ms,
        )?;
        let log_end = segments.last().map_or(0, Segment::next_offset);
        let needs_verification = verification::load(dir, clean_shutdown)?;
        let LoadedEpochs { cache, needs_write } = leader_epoch_file::load(
            dir,
            &topic_partition,
            &segments,
            log_start,
            log_end,
            (!clean_shutdown).then_some(recovery_point),
        )?;
        let producers = producer_rebuild::rebuild(dir, &segments, log_start, log_end)?;
        let state = LogState {
            producers,
            segments,
            log_start_offset: log_start,
            recovery_point,
            first_dirty_offset: log_start,
            unflushed_records: 0,
            last_flush_ms: now_ms,
            pending_deletions: Vec::new(),
            closed: false,
            leader_epochs: cache,
            leader_epochs_version: u64::from(needs_write),
            leader_epochs_persisted: 0,
        };
        let log = Log {
            dir: dir.to_path_buf(),
            topic_partition,
            config: RwLock::new(config),
            log_end_offset: AtomicI64::new(log_end),
            log_start_offset: AtomicI64::new(log_start),
            state: Mutex::new(state),
            leader_epoch_writer: Mutex::new(()),
            needs_verification: AtomicBool::new(needs_verification),
        };
        log.persist_leader_epochs()?;
        Ok(log)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, LogState> {
        // A panic while holding the lock leaves the state consistent at batch granularity
        // (every mutation that can fail is done before the bookkeeping), so keep going.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn publish_offsets(&self, state: &LogState) {
        debug_assert!(
            state.log_start_offset <= state.log_end_offset(),
            "log start beyond the log end"
        );
        debug_assert!(
            state.recovery_point <= state.log_end_offset(),
            "recovery point beyond the log end"
        );
        debug_assert!(
            state
                .leader_epochs
                .entries()
                .first()
                .is_none_or(|e| { e.start_offset >= state.log_start_offset })
                && state
                    .leader_epochs
                    .entries()
                    .last()
                    .is_none_or(|e| { e.start_offset <= state.log_end_offset() }),
            "leader epoch entries outside [log start, log end]"
        );
        self.log_end_offset
            .store(state.log_end_offset(), Ordering::Release);
        self.log_start_offset
            .store(state.log_start_offset, Ordering::Release);
    }

    /// Reads whole batches starting with the batch containing `offset`, up to `max_bytes`
    /// (with `min_one_batch` the first batch is returned whole even if larger), excluding
    /// batches whose last offset is ≥ `max_offset` (the HW, for consumers).
    ///
    /// `offset == log end` gives empty batches; `offset < log start` or `> log end` is
    /// [`LogError::OffsetOutOfRange`]. Batches come from one segment per call.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        max_offset: Option<i64>,
        min_one_batch: bool,
    ) -> Result<ReadResult, LogError> {
        let (snapshot, log_start_offset, log_end_offset) = {
            let state = self.lock();
            let (log_start, log_end) = (state.log_start_offset, state.log_end_offset());
            if offset < log_start || offset > log_end {
                return Err(LogError::OffsetOutOfRange {
                    topic_partition: self.topic_partition.clone(),
                    requested: offset,
                    log_start,
                    log_end,
                });
            }
            let empty = ReadResult {
                batches: Bytes::new(),
                log_start_offset: log_start,
                log_end_offset: log_end,
            };
            if offset == log_end || max_offset.is_some_and(|max| offset >= max) {
                return Ok(empty);
            }
            let mut index = state.segment_index_for(offset);
            while offset >= state.segments[index].next_offset() && index + 1 < state.segments.len()
            {
                index += 1;
            }
            (
                state.segments[index].read_snapshot(offset),
                log_start,
                log_end,
            )
        };
        let batches = read_batches(&snapshot, offset, max_bytes, max_offset, min_one_batch)?;
        Ok(ReadResult {
            batches,
            log_start_offset,
            log_end_offset,
        })
    }

    /// The first offset of the log start onwards whose record timestamp is ≥ `timestamp_ms`
    /// (found via the first batch whose max timestamp is ≥ it, Kafka's ListOffsets), with
    /// that record's timestamp; `None` if every batch is older.
    pub fn offset_for_timestamp(&self, timestamp_ms: i64) -> Result<Option<(i64, i64)>, LogError> {
        let snapshots: Vec<_> = {
            let state = self.lock();
            state
                .segments
                .iter()
                .filter(|s| s.max_timestamp() >= timestamp_ms)
                .map(|s| s.timestamp_snapshot(timestamp_ms))
                .collect()
        };
        let log_start = self.log_start_offset();
        for snapshot in snapshots {
            if let Some((offset, timestamp)) = find_offset_for_timestamp(&snapshot, timestamp_ms)? {
                return Ok(Some((offset.max(log_start), timestamp)));
            }
        }
        Ok(None)
    }

    /// fsyncs every segment holding offsets at or above the recovery point (and their
    /// indexes), then advances the recovery point to the log end offset seen at the start.
    /// A leader epoch cache change not yet in `leader-epoch-checkpoint` is written first.
    pub fn flush(&self) -> Result<(), LogError> {
        self.flush_scope(FlushScope::Everything)
    }

    /// fsyncs sealed segments above the recovery point and advances it to the active
    /// segment's base offset: the deferred "flush at roll". A no-op when nothing rolled.
    pub(crate) fn flush_sealed(&self) -> Result<(), LogError> {
        self.flush_scope(FlushScope::SealedSegments)
    }

    fn flush_scope(&self, scope: FlushScope) -> Result<(), LogError> {
        let sealed_only = scope == FlushScope::SealedSegments;
        let (handles, target, counted) = {
            let state = self.lock();
            let target = if sealed_only {
                state.active().base_offset()
            } else {
                state.log_end_offset()
            };
            if target <= state.recovery_point && (sealed_only || state.unflushed_records == 0) {
                return Ok(());
            }
            let handles: Vec<(Arc<File>, PathBuf)> = state
                .segments
                .iter()
                .filter(|s| {
                    s.next_offset() > state.recovery_point
                        || s.base_offset() >= state.recovery_point
                })
                .filter(|s| !sealed_only || s.is_sealed())
                .flat_map(|s| s.sync_handles())
                .collect();
            (
                handles,
                target,
                if sealed_only {
                    0
                } else {
                    state.unflushed_records
                },
            )
        };
        // The epoch file must describe the data before the recovery point passes it: unclean
        // recovery only re-reads epochs from the recovery point on.
        self.persist_leader_epochs()?;
        for (file, path) in &handles {
            file.sync_data()
                .map_err(|e| LogError::io("fsync of", path, e))?;
        }
        // Segment files created by rolls since the last flush are only durable once their
        // directory entries are.
        super::checkpoint::sync_dir(&self.dir)?;
        let mut state = self.lock();
        state.recovery_point = state.recovery_point.max(target).min(state.log_end_offset());
        state.unflushed_records = state.unflushed_records.saturating_sub(counted);
        if !sealed_only {
            state.last_flush_ms = super::now_ms();
        }
        Ok(())
    }

    /// Removes every record at or after `offset` (the batch containing `offset` goes whole,
    /// so the log end may end up below `offset`). Used by replication; a no-op at or beyond
    /// the log end. Below the first segment the log is emptied and restarts at `offset`.
    /// Leader epoch entries starting at or after the new log end go too (all of them when
    /// the log is emptied), and `leader-epoch-checkpoint` is rewritten.
    pub fn truncate_to(&self, offset: i64) -> Result<(), LogError> {
        let config = self.config();
        let mut state = self.lock();
        if offset >= state.log_end_offset() {
            return Ok(());
        }
        if offset <= state.segments[0].base_offset() || offset < state.log_start_offset {
            self.empty_and_start_at(&mut state, offset, &config)?;
        } else {
            let index = state.segment_index_for(offset);
            for segment in state.segments.drain(index + 1..) {
                drop_segment_now(&segment)?;
            }
            state.active_mut().truncate_to(offset, &config)?;
            state.log_start_offset = state.log_start_offset.min(state.log_end_offset());
            let log_end = state.log_end_offset();
            let changed = state.leader_epochs.truncate_from_end(log_end);
            state.leader_epochs_changed(changed);
        }
        self.truncate_producers(&mut state)?;
        state.recovery_point = state.recovery_point.min(state.log_end_offset());
        state.first_dirty_offset = state.first_dirty_offset.min(state.log_end_offset());
        self.publish_offsets(&state);
        tracing::info!(topic_partition = %self.topic_partition, offset, log_end = state.log_end_offset(), "truncated log");
        drop(state);
        self.persist_leader_epochs()
    }

    /// Deletes every record and restarts the log, empty, at `offset` (Kafka's
    /// `truncateFullyAndStartAt`): for a follower whose LEO is below the leader's log start
    /// (the leader deleted, by retention, what the follower would fetch next). The leader
    /// epoch cache is emptied and `leader-epoch-checkpoint` rewritten.
    pub fn truncate_fully_and_start_at(&self, offset: i64) -> Result<(), LogError> {
        let config = self.config();
        let mut state = self.lock();
        self.empty_and_start_at(&mut state, offset, &config)?;
        self.truncate_producers(&mut state)?;
        // An empty log has nothing to recover.
        state.recovery_point = state.log_end_offset();
        self.publish_offsets(&state);
        tracing::info!(topic_partition = %self.topic_partition, offset, "emptied the log and restarted it");
        drop(state);
        self.persist_leader_epochs()
    }

    /// Brings the producer state and the snapshots in line with a log just truncated: the
    /// batches past the new log end are forgotten, and when a producer lost every batch the
    /// state is rebuilt from the log.
    fn truncate_producers(&self, state: &mut LogState) -> Result<(), LogError> {
        let log_end = state.log_end_offset();
        producer_snapshot::delete_above(&self.dir, log_end)?;
        state.producers.remove_before(state.log_start_offset);
        if !state.producers.truncate_to(log_end) {
            state.producers = producer_rebuild::rebuild(
                &self.dir,
                &state.segments,
                state.log_start_offset,
                log_end,
            )?;
        }
        Ok(())
    }

    fn empty_and_start_at(
        &self,
        state: &mut LogState,
        offset: i64,
        config: &LogConfig,
    ) -> Result<(), LogError> {
        for segment in state.segments.drain(..) {
            drop_segment_now(&segment)?;
        }
        state.segments.push(Segment::create(
            &self.dir,
            offset.max(0),
            config,
            super::now_ms(),
        )?);
        state.log_start_offset = offset.max(0);
        state.first_dirty_offset = state.log_start_offset;
        let changed = state.leader_epochs.clear();
        state.leader_epochs_changed(changed);
        Ok(())
    }

    /// One retention pass (see [`segments_to_delete`]): deletes whole segments by time, size
    /// and log start, never beyond `high_watermark`; rolls first if every segment goes. The
    /// leader epoch cache follows the new log start. Time and size apply only when
    /// `cleanup.policy` includes `delete` (a `compact`-only log keeps its data; the cleaner
    /// shrinks it), as in Kafka.
    /// Deleted segments are renamed `*.deleted` and unlinked after `file.delete.delay.ms`.
    /// Returns the number of segments deleted.
    pub fn apply_retention(&self, now_ms: i64, high_watermark: i64) -> Result<usize, LogError> {
        let config = self.config();
        let mut state = self.lock();
        if state.closed {
            return Ok(0);
        }
        let summaries: Vec<SegmentSummary> = state
            .segments
            .iter()
            .map(|s| SegmentSummary {
                base_offset: s.base_offset(),
                next_offset: s.next_offset(),
                size_bytes: s.size(),
                largest_timestamp: s.largest_timestamp(),
            })
            .collect();
        let policy = if config.cleanup_policy.delete {
            RetentionPolicy {
                retention_ms: config.retention_ms,
                retention_bytes: config.retention_bytes,
            }
        } else {
            RetentionPolicy {
                retention_ms: -1,
                retention_bytes: -1,
            }
        };
        let decision = segments_to_delete(
            &summaries,
            policy,
            now_ms,
            high_watermark,
            state.log_start_offset,
        );
        if decision.delete_count == 0 {
            return Ok(0);
        }
        if decision.roll_first {
            self.roll(&mut state, &config, now_ms)?;
        }
        let due = now_ms.saturating_add(config.file_delete_delay_ms.min(i64::MAX as u64) as i64);
        let deleted: Vec<Segment> = state.segments.drain(..decision.delete_count).collect();
        for segment in deleted {
            for path in segment.rename_for_deletion()? {
                state.pending_deletions.push((due, path));
            }
        }
        state.log_start_offset = state.log_start_offset.max(state.segments[0].base_offset());
        let log_start = state.log_start_offset;
        state.producers.remove_before(log_start);
        let changed = state.leader_epochs.truncate_from_start(log_start);
        state.leader_epochs_changed(changed);
        self.publish_offsets(&state);
        tracing::info!(
            topic_partition = %self.topic_partition, deleted = decision.delete_count,
            log_start = state.log_start_offset, "retention deleted segments"
        );
        drop(state);
        self.persist_leader_epochs()?;
        Ok(decision.delete_count)
    }

    /// Unlinks `*.deleted` files whose delay has passed (all of them if `now_ms` is
    /// `i64::MAX`).
    pub(crate) fn delete_expired_files(&self, now_ms: i64) {
        let expired: Vec<PathBuf> = {
            let mut state = self.lock();
            let (expired, kept) = state
                .pending_deletions
                .drain(..)
                .partition(|(due, _)| *due <= now_ms);
            state.pending_deletions = kept;
            expired.into_iter().map(|(_, path)| path).collect()
        };
        for path in expired {
            if let Err(error) = std::fs::remove_file(&path) {
                tracing::warn!(%error, path = %path.display(), "could not delete segment file");
            }
        }
    }

    /// Clean close: flush, trim the active segment's indexes, unlink pending deletions, and
    /// refuse further appends.
    pub(crate) fn close(&self) -> Result<(), LogError> {
        self.flush()?;
        self.persist_leader_epochs()?;
        let mut state = self.lock();
        state.active_mut().trim_indexes()?;
        state.active().flush_indexes()?;
        state.closed = true;
        // The next start reads the producer state from here instead of the log.
        producer_snapshot::write(&self.dir, state.log_end_offset(), &state.producers)?;
        drop(state);
        self.delete_expired_files(i64::MAX);
        Ok(())
    }

    /// Marks the log closed without flushing (its directory is being deleted).
    pub(crate) fn mark_closed(&self) {
        self.lock().closed = true;
    }

    /// `true` when `flush.ms` elapsed since the last flush.
    pub(crate) fn flush_due(&self, now_ms: i64) -> bool {
        let flush_ms = self.config().flush_ms;
        flush_ms != u64::MAX
            && now_ms.saturating_sub(self.lock().last_flush_ms)
                >= flush_ms.min(i64::MAX as u64) as i64
    }

    /// Whether this log was recovered after an unclean shutdown and has not been checked
    /// against the partition's other replicas since (see `verification.rs`).
    pub fn needs_verification(&self) -> bool {
        self.needs_verification.load(Ordering::Acquire)
    }

    /// Records that the partition has a leader again, chosen by the controller with this
    /// replica's state known: removes the `needs-verification` mark.
    pub fn mark_verified(&self) -> Result<(), LogError> {
        if self.needs_verification.load(Ordering::Acquire) {
            verification::clear(&self.dir)?;
            self.needs_verification.store(false, Ordering::Release);
            tracing::info!(topic_partition = %self.topic_partition, "log verified: the partition has a leader again");
        }
        Ok(())
    }

    /// The recovery point (everything below it is fsync'd).
    pub fn recovery_point(&self) -> i64 {
        self.lock().recovery_point
    }

    /// The partition this log belongs to.
    pub fn topic_partition(&self) -> &TopicPartition {
        &self.topic_partition
    }

    /// The first readable offset.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset.load(Ordering::Acquire)
    }

    /// The offset the next record will get.
    pub fn log_end_offset(&self) -> i64 {
        self.log_end_offset.load(Ordering::Acquire)
    }

    /// The current configuration.
    pub fn config(&self) -> LogConfig {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the configuration (topic config change); takes effect from the next append,
    /// roll or retention pass.
    pub fn set_config(&self, cfg: LogConfig) {
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = cfg;
    }

    /// The log's directory, `<log.dir>/<topic>-<partition>`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Total size of the segments' `.log` files.
    pub fn size_in_bytes(&self) -> u64 {
        self.lock().segments.iter().map(Segment::size).sum()
    }

    /// Number of segments (≥ 1).
    pub fn segment_count(&self) -> usize {
        self.lock().segments.len()
    }

    /// Base offsets of the segments, oldest first.
    pub fn segment_base_offsets(&self) -> Vec<i64> {
        self.lock()
            .segments
            .iter()
            .map(Segment::base_offset)
            .collect()
    }
}

/// Unlinks a segment's files at once (truncation): readers holding its file handle keep
/// reading the unlinked data.
fn drop_segment_now(segment: &Segment) -> Result<(), LogError> {
    let dir = segment.log_path().parent().unwrap_or(Path::new("."));
    delete_segment_files(dir, segment.base_offset())
}
