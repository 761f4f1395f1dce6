//! Which part of a log the cleaner may clean, whether it is worth cleaning now, and how the
//! cleaned segments are grouped: pure decisions over segment summaries (no files).
//!
//! ```text
//!  log start          first dirty offset            end (first uncleanable offset)
//!  |--- clean head ---|---------- dirty ------------|--- too new / above HW ---|-- active --|
//!  (cleaned before)    (written since the last pass)  (left for a later pass)
//! ```
//!
//! * The **active segment is never cleaned**, nor a segment that is not wholly below the high
//!   watermark, nor (from the first dirty one on) a segment whose newest record is younger
//!   than `min.compaction.lag.ms`. The cleanable segments are the longest prefix of the
//!   sealed segments passing those tests; `end` is where that prefix ends, so a pass only
//!   ever rewrites whole sealed segments.
//! * **Dirty ratio** = dirty bytes / (clean + dirty bytes), counting whole segments: a
//!   segment is dirty if it holds any offset at or above the first dirty offset. A log is
//!   cleaned when the ratio reaches `min.cleanable.dirty.ratio`, or when its oldest dirty
//!   segment's first batch is older than `max.compaction.lag.ms` (Kafka's rule).
//! * The first dirty offset is the cleaner checkpoint; a value outside `[log start, active
//!   segment base]` (the log was truncated or retention passed it) restarts at the log start.

use std::ops::Range;

/// What the cleaner needs to know about one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentStats {
    /// First offset of the segment (its file name).
    pub base_offset: i64,
    /// Offset after its last batch (the next segment's base offset, or the log end).
    pub next_offset: i64,
    /// Size of its `.log` in bytes.
    pub size_bytes: u64,
    /// Largest batch timestamp (or the file's modification time when no batch has one).
    pub largest_timestamp: i64,
    /// Max timestamp of its first batch, if it has a batch.
    pub first_timestamp: Option<i64>,
}

/// The compaction settings of a log (`LogConfig`'s cleaner fields).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompactionPolicy {
    /// `min.cleanable.dirty.ratio`.
    pub min_dirty_ratio: f64,
    /// `min.compaction.lag.ms`.
    pub min_lag_ms: i64,
    /// `max.compaction.lag.ms`.
    pub max_lag_ms: i64,
}

/// The cleanable part of a log.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cleanable {
    /// The first offset not cleaned yet. Invariant: `log start <= first_dirty_offset`.
    pub first_dirty_offset: i64,
    /// The first offset this pass must not touch: the end of the last cleanable segment (the
    /// first segment's base offset when none is cleanable).
    pub end_offset: i64,
    /// How many segments, from the first, are cleanable (they end at `end_offset`).
    pub segment_count: usize,
    /// Bytes of cleanable segments wholly below the first dirty offset.
    pub clean_bytes: u64,
    /// Bytes of cleanable segments holding dirty offsets.
    pub dirty_bytes: u64,
    /// The oldest dirty segment started more than `max.compaction.lag.ms` ago.
    pub overdue: bool,
}

impl Cleanable {
    /// dirty / (clean + dirty) bytes; 0 for an empty range.
    pub fn dirty_ratio(&self) -> f64 {
        let total = self.clean_bytes + self.dirty_bytes;
        if total == 0 {
            0.0
        } else {
            self.dirty_bytes as f64 / total as f64
        }
    }

    /// Whether a pass is due: something is dirty and the ratio reached the minimum, or the
    /// maximum compaction lag passed.
    pub fn should_clean(&self, policy: CompactionPolicy) -> bool {
        self.dirty_bytes > 0 && (self.overdue || self.dirty_ratio() >= policy.min_dirty_ratio)
    }
}

/// Computes the cleanable part of a log. `segments` are oldest first; the last one is the
/// active segment. `checkpoint` is the stored first dirty offset.
pub fn cleanable(
    segments: &[SegmentStats],
    log_start_offset: i64,
    checkpoint: i64,
    high_watermark: i64,
    now_ms: i64,
    policy: CompactionPolicy,
) -> Cleanable {
    let active_base = segments.last().map_or(log_start_offset, |s| s.base_offset);
    let first_dirty_offset = if (log_start_offset..=active_base).contains(&checkpoint) {
        checkpoint
    } else {
        log_start_offset
    };
    let sealed = &segments[..segments.len().saturating_sub(1)];
    let young = |s: &SegmentStats| s.largest_timestamp > now_ms.saturating_sub(policy.min_lag_ms);
    let segment_count = sealed
        .iter()
        .take_while(|s| {
            let dirty = s.next_offset > first_dirty_offset;
            s.next_offset <= high_watermark && !(dirty && young(s))
        })
        .count();
    let cleanable = &segments[..segment_count];
    let is_dirty = |s: &&SegmentStats| s.next_offset > first_dirty_offset;
    let dirty_bytes = cleanable
        .iter()
        .filter(is_dirty)
        .map(|s| s.size_bytes)
        .sum();
    let clean_bytes = cleanable
        .iter()
        .filter(|s| !is_dirty(s))
        .map(|s| s.size_bytes)
        .sum();
    let overdue = cleanable
        .iter()
        .find(is_dirty)
        .map(|s| s.first_timestamp.unwrap_or(s.largest_timestamp))
        .is_some_and(|started| {
            policy.max_lag_ms != i64::MAX && started < now_ms.saturating_sub(policy.max_lag_ms)
        });
    Cleanable {
        first_dirty_offset,
        end_offset: cleanable
            .last()
            .map_or(segments.first().map_or(0, |s| s.base_offset), |s| {
                s.next_offset
            }),
        segment_count,
        clean_bytes,
        dirty_bytes,
        overdue,
    }
}

/// Splits the segments to recopy into runs merged into one cleaned segment each: adjacent
/// segments whose sizes add up to at most `max_bytes` (`segment.bytes`; the sources' sizes
/// bound the cleaned size) and whose offsets all fit the index's 32-bit relative offsets.
/// Every segment is in exactly one group, in order; a segment larger than `max_bytes` is a
/// group of its own.
pub fn group_segments(segments: &[SegmentStats], max_bytes: u64) -> Vec<Range<usize>> {
    let mut groups = Vec::new();
    let mut start = 0;
    while start < segments.len() {
        let base = segments[start].base_offset;
        let mut size = segments[start].size_bytes;
        let mut end = start + 1;
        while let Some(next) = segments.get(end) {
            let fits_offsets = next.next_offset - 1 - base <= i64::from(i32::MAX);
            if size + next.size_bytes > max_bytes || !fits_offsets {
                break;
            }
            size += next.size_bytes;
            end += 1;
        }
        groups.push(start..end);
        start = end;
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000_000;

    /// Segments of 10 offsets each, with the given sizes and largest timestamps; the last is
    /// the active one.
    fn segments(specs: &[(u64, i64)]) -> Vec<SegmentStats> {
        specs
            .iter()
            .enumerate()
            .map(|(i, &(size_bytes, largest_timestamp))| SegmentStats {
                base_offset: i as i64 * 10,
                next_offset: i as i64 * 10 + 10,
                size_bytes,
                largest_timestamp,
                first_timestamp: Some(largest_timestamp - 5),
            })
            .collect()
    }

    fn policy(min_dirty_ratio: f64, min_lag_ms: i64, max_lag_ms: i64) -> CompactionPolicy {
        CompactionPolicy {
            min_dirty_ratio,
            min_lag_ms,
            max_lag_ms,
        }
    }

    #[test]
    fn cleanable_ranges() {
        let old = NOW - 10_000;
        struct Case {
            name: &'static str,
            segments: Vec<SegmentStats>,
            log_start: i64,
            checkpoint: i64,
            high_watermark: i64,
            policy: CompactionPolicy,
            // (first dirty, end, count, clean bytes, dirty bytes, overdue, should clean)
            expect: (i64, i64, usize, u64, u64, bool, bool),
        }
        let default = policy(0.5, 0, i64::MAX);
        let cases = [
            Case {
                name: "never cleaned: everything but the active segment is dirty",
                segments: segments(&[(100, old), (100, old), (100, old)]),
                log_start: 0,
                checkpoint: 0,
                high_watermark: 30,
                policy: default,
                expect: (0, 20, 2, 0, 200, false, true),
            },
            Case {
                name: "only the active segment: nothing to clean",
                segments: segments(&[(100, old)]),
                log_start: 0,
                checkpoint: 0,
                high_watermark: 10,
                policy: default,
                expect: (0, 0, 0, 0, 0, false, false),
            },
            Case {
                name: "dirty ratio 1/3 below 0.5",
                segments: segments(&[(100, old), (100, old), (100, old), (100, old)]),
                log_start: 0,
                checkpoint: 20,
                high_watermark: 40,
                policy: default,
                expect: (20, 30, 3, 200, 100, false, false),
            },
            Case {
                name: "dirty ratio 1/3 reaches 0.3",
                segments: segments(&[(100, old), (100, old), (100, old), (100, old)]),
                log_start: 0,
                checkpoint: 20,
                high_watermark: 40,
                policy: policy(0.3, 0, i64::MAX),
                expect: (20, 30, 3, 200, 100, false, true),
            },
            Case {
                name: "the high watermark stops at the segment it falls in",
                segments: segments(&[(100, old), (100, old), (100, old), (100, old)]),
                log_start: 0,
                checkpoint: 0,
                high_watermark: 25,
                policy: default,
                expect: (0, 20, 2, 0, 200, false, true),
            },
            Case {
                name: "min compaction lag keeps young dirty segments",
                segments: segments(&[(100, old), (100, NOW - 50), (100, old), (100, NOW)]),
                log_start: 0,
                checkpoint: 0,
                high_watermark: 40,
                policy: policy(0.5, 100, i64::MAX),
                expect: (0, 10, 1, 0, 100, false, true),
            },
            Case {
                name: "min compaction lag ignores the clean head",
                segments: segments(&[(100, NOW), (100, old), (100, NOW)]),
                log_start: 0,
                checkpoint: 10,
                high_watermark: 30,
                policy: policy(0.5, 100, i64::MAX),
                expect: (10, 20, 2, 100, 100, false, true),
            },
            Case {
                name: "max compaction lag forces a low ratio",
                segments: segments(&[(100, old), (100, old), (100, old), (10, old), (1, NOW)]),
                log_start: 0,
                checkpoint: 30,
                high_watermark: 50,
                policy: policy(0.9, 0, 1_000),
                expect: (30, 40, 4, 300, 10, true, true),
            },
            Case {
                name: "max compaction lag not reached",
                segments: segments(&[(100, old), (100, old), (100, old), (10, NOW - 10), (1, NOW)]),
                log_start: 0,
                checkpoint: 30,
                high_watermark: 50,
                policy: policy(0.9, 0, 1_000),
                expect: (30, 40, 4, 300, 10, false, false),
            },
            Case {
                name: "checkpoint beyond the active base (truncated log): restart at log start",
                segments: segments(&[(100, old), (100, old), (100, old)]),
                log_start: 0,
                checkpoint: 500,
                high_watermark: 30,
                policy: default,
                expect: (0, 20, 2, 0, 200, false, true),
            },
            Case {
                name: "checkpoint below the log start (retention passed it)",
                segments: segments(&[(100, old), (100, old), (100, old)]),
                log_start: 10,
                checkpoint: 5,
                high_watermark: 30,
                policy: default,
                // The segment wholly below the log start counts as clean.
                expect: (10, 20, 2, 100, 100, false, true),
            },
            Case {
                name: "everything clean",
                segments: segments(&[(100, old), (100, old), (100, old)]),
                log_start: 0,
                checkpoint: 20,
                high_watermark: 30,
                policy: policy(0.0, 0, i64::MAX),
                expect: (20, 20, 2, 200, 0, false, false),
            },
        ];
        for case in cases {
            let c = cleanable(
                &case.segments,
                case.log_start,
                case.checkpoint,
                case.high_watermark,
                NOW,
                case.policy,
            );
            assert_eq!(
                (
                    c.first_dirty_offset,
                    c.end_offset,
                    c.segment_count,
                    c.clean_bytes,
                    c.dirty_bytes,
                    c.overdue,
                    c.should_clean(case.policy)
                ),
                case.expect,
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn groups_merge_adjacent_segments_up_to_segment_bytes() {
        let sized = |sizes: &[u64]| {
            let specs: Vec<(u64, i64)> = sizes.iter().map(|&s| (s, 0)).collect();
            segments(&specs)
        };
        assert!(group_segments(&[], 100).is_empty());
        assert_eq!(group_segments(&sized(&[40, 40, 40]), 100), vec![0..2, 2..3]);
        assert_eq!(group_segments(&sized(&[40, 60, 40]), 100), vec![0..2, 2..3]);
        assert_eq!(
            group_segments(&sized(&[150, 10, 10]), 100),
            vec![0..1, 1..3]
        );
        assert_eq!(group_segments(&sized(&[10, 10, 10]), 1000), vec![0..3]);
        assert_eq!(group_segments(&sized(&[0, 0, 100]), 100), vec![0..3]);
        // Offsets that would not fit a 32-bit relative offset start a new group.
        let mut far = sized(&[1, 1]);
        far[1].base_offset = i64::from(i32::MAX);
        far[1].next_offset = i64::from(i32::MAX) + 10;
        assert_eq!(group_segments(&far, 100), vec![0..1, 1..2]);
    }
}
