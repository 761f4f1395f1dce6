//! One cleaning pass over one [`Log`]: decide under the lock, read and write without it,
//! swap each cleaned segment in under it.
//!
//! The lock is held to snapshot the segments (a few field copies per segment) and for each
//! swap (a handful of renames, three directory fsyncs and the opening of the cleaned segment
//! from its fresh indexes). Appends to the active segment, reads and the flush scheduler
//! otherwise run concurrently with the pass. A reader that took a snapshot of a replaced
//! segment keeps reading it through its open handle; one that comes after finds the same
//! offsets in the cleaned segment (offsets never change), or the next surviving batch.

use super::super::log::LogState;
use super::super::segment::Segment;
use super::super::{Log, LogConfig, LogError};
use super::copy::{PassRules, SourceSegment, scan, write_cleaned};
use super::plan::{Cleanable, CompactionPolicy, SegmentStats, cleanable, group_segments};
use super::retain::delete_horizon_ms;
use super::swap::{self, discard_cleaned};

/// What a pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanOutcome {
    /// Cleaned segments swapped in.
    pub segments_swapped: usize,
    /// Bytes of the segments they replaced.
    pub bytes_before: u64,
    /// Bytes of the cleaned segments.
    pub bytes_after: u64,
    /// The first dirty offset after the pass.
    pub first_dirty_offset: i64,
    /// Whether the pass stopped early (shutdown, or the log changed under it).
    pub interrupted: bool,
}

/// The compaction settings of `config`.
pub(crate) fn compaction_policy(config: &LogConfig) -> CompactionPolicy {
    CompactionPolicy {
        min_dirty_ratio: config.min_cleanable_dirty_ratio.get(),
        min_lag_ms: config.min_compaction_lag_ms,
        max_lag_ms: config.max_compaction_lag_ms,
    }
}

fn segment_stats(state: &LogState) -> Vec<SegmentStats> {
    state
        .segments
        .iter()
        .map(|s| SegmentStats {
            base_offset: s.base_offset(),
            next_offset: s.next_offset(),
            size_bytes: s.size(),
            largest_timestamp: s.largest_timestamp(),
            first_timestamp: s.first_batch_timestamp().filter(|t| *t >= 0),
        })
        .collect()
}

impl Log {
    /// The cleanable part of the log now (`None` if its policy does not compact or it is
    /// closed). The cleaner uses it to pick the dirtiest log first.
    pub fn cleanable(&self, now_ms: i64, high_watermark: i64) -> Option<(Cleanable, bool)> {
        let config = self.config();
        if !config.cleanup_policy.compact {
            return None;
        }
        let state = self.lock();
        if state.closed {
            return None;
        }
        let policy = compaction_policy(&config);
        let c = cleanable(
            &segment_stats(&state),
            state.log_start_offset,
            state.first_dirty_offset,
            high_watermark,
            now_ms,
            policy,
        );
        Some((c, c.should_clean(policy)))
    }

    /// The cleaner checkpoint: every offset below it has been through a cleaning pass.
    pub fn first_dirty_offset(&self) -> i64 {
        self.lock().first_dirty_offset
    }

    /// Restores the cleaner checkpoint read from `cleaner-offset-checkpoint` (clamped to the
    /// log; a value beyond the active segment is corrected at the next pass).
    pub fn restore_first_dirty_offset(&self, offset: i64) {
        let mut state = self.lock();
        state.first_dirty_offset = offset.clamp(state.log_start_offset, state.log_end_offset());
    }

    /// Cleans the log if it is due (see `cleaner/plan.rs`): keeps the latest record per key
    /// below the end of the cleanable part, drops tombstones past the delete horizon, swaps
    /// the cleaned segments in and advances the first dirty offset. `stop` is polled between
    /// segments; when it returns true the pass ends early, leaving the log consistent.
    /// `budget_bytes` bounds the key map (`log.cleaner.dedupe.buffer.size`).
    pub fn clean(
        &self,
        now_ms: i64,
        high_watermark: i64,
        budget_bytes: usize,
        stop: &dyn Fn() -> bool,
    ) -> Result<CleanOutcome, LogError> {
        let config = self.config();
        let policy = compaction_policy(&config);
        let (plan, sources) = {
            let state = self.lock();
            if state.closed || !config.cleanup_policy.compact {
                return Ok(CleanOutcome {
                    first_dirty_offset: state.first_dirty_offset,
                    ..CleanOutcome::default()
                });
            }
            let stats = segment_stats(&state);
            let plan = cleanable(
                &stats,
                state.log_start_offset,
                state.first_dirty_offset,
                high_watermark,
                now_ms,
                policy,
            );
            if !plan.should_clean(policy) {
                return Ok(CleanOutcome {
                    first_dirty_offset: state.first_dirty_offset,
                    ..CleanOutcome::default()
                });
            }
            let sources: Vec<SourceSegment> = state.segments[..plan.segment_count]
                .iter()
                .map(|s| SourceSegment {
                    base_offset: s.base_offset(),
                    next_offset: s.next_offset(),
                    size: s.size(),
                    modified_ms: s.modified_ms(),
                    file: std::sync::Arc::clone(s.file()),
                    path: s.log_path().to_path_buf(),
                })
                .collect();
            (plan, sources)
        };
        let scanned = scan(&sources, plan.first_dirty_offset, budget_bytes, stop)?;
        let sources = &sources[..scanned.mapped_segments];
        let mut outcome = CleanOutcome {
            first_dirty_offset: plan.first_dirty_offset,
            interrupted: scanned.mapped_segments == 0,
            ..CleanOutcome::default()
        };
        let Some(last_source) = sources.last() else {
            return Ok(outcome);
        };
        let end_offset = last_source.next_offset;
        let last_clean_modified = sources
            .iter()
            .take_while(|s| s.next_offset <= plan.first_dirty_offset)
            .map(|s| s.modified_ms)
            .last();
        let rules = PassRules {
            scan: &scanned,
            delete_horizon_ms: delete_horizon_ms(last_clean_modified, config.delete_retention_ms),
        };
        let stats: Vec<SegmentStats> = sources
            .iter()
            .map(|s| SegmentStats {
                base_offset: s.base_offset,
                next_offset: s.next_offset,
                size_bytes: s.size,
                largest_timestamp: s.modified_ms,
                first_timestamp: None,
            })
            .collect();
        for group in group_segments(&stats, config.effective_segment_bytes()) {
            if stop() {
                outcome.interrupted = true;
                return Ok(outcome);
            }
            let group = &sources[group];
            let Some(cleaned) = write_cleaned(&self.dir, group, &rules, &config, now_ms)? else {
                continue;
            };
            if !self.swap_in(group, cleaned.base_offset, &config, now_ms)? {
                outcome.interrupted = true;
                return Ok(outcome);
            }
            outcome.segments_swapped += 1;
            outcome.bytes_before += cleaned.bytes_before;
            outcome.bytes_after += cleaned.bytes_after;
        }
        let mut state = self.lock();
        state.first_dirty_offset = state.first_dirty_offset.max(end_offset);
        outcome.first_dirty_offset = state.first_dirty_offset;
        drop(state);
        tracing::info!(
            topic_partition = %self.topic_partition, swapped = outcome.segments_swapped,
            bytes_before = outcome.bytes_before, bytes_after = outcome.bytes_after,
            keys = scanned.map.len(), first_dirty_offset = outcome.first_dirty_offset,
            "cleaned log"
        );
        Ok(outcome)
    }

    /// Replaces the segments of `group` by the cleaned segment `new_base` (see `swap.rs`).
    /// `false` (and the cleaned files deleted) when the log no longer holds exactly those
    /// sealed segments: retention, truncation or deletion got there first.
    fn swap_in(
        &self,
        group: &[SourceSegment],
        new_base: i64,
        config: &LogConfig,
        now_ms: i64,
    ) -> Result<bool, LogError> {
        let old_bases: Vec<i64> = group.iter().map(|s| s.base_offset).collect();
        let group_end = group.last().map_or(new_base, |s| s.next_offset);
        let mut state = self.lock();
        let position = state
            .segments
            .iter()
            .position(|s| s.base_offset() == new_base);
        let unchanged = position.is_some_and(|at| {
            let run = &state.segments[at..];
            run.len() > group.len()
                && run.iter().zip(group).all(|(s, g)| {
                    s.is_sealed() && s.base_offset() == g.base_offset && s.size() == g.size
                })
        });
        let (Some(at), true, false) = (position, unchanged, state.closed) else {
            drop(state);
            discard_cleaned(&self.dir, new_base);
            tracing::info!(topic_partition = %self.topic_partition, new_base, "log changed during cleaning; cleaned segment discarded");
            return Ok(false);
        };
        swap::execute(&self.dir, &swap::plan(&self.dir, new_base, &old_bases))?;
        let (segment, _) =
            Segment::open(&self.dir, new_base, Some(group_end), false, config, now_ms)?;
        state.segments.splice(at..at + group.len(), [segment]);
        let due = now_ms.saturating_add(config.file_delete_delay_ms.min(i64::MAX as u64) as i64);
        for path in swap::deleted_paths(&self.dir, &old_bases) {
            state.pending_deletions.push((due, path));
        }
        Ok(true)
    }
}
