//! Which segments retention deletes: a pure decision over segment summaries (no files).
//!
//! Kafka's three rules (`Log.deleteOldSegments`), applied to the oldest segments first and
//! stopping at the first segment that is kept:
//!
//! * **time**: `now − largest_timestamp > retention.ms` (`retention.ms` < 0 disables it);
//! * **size**: while `total − (sizes of the segments deleted so far) − segment size ≥
//!   retention.bytes` (`retention.bytes` < 0 disables it);
//! * **log start**: the segment lies wholly below the log start offset (DeleteRecords).
//!
//! A segment is only deletable if it lies wholly below the high watermark (its upper bound —
//! the next segment's base offset, or the log end for the last one — is ≤ HW), and an empty
//! active segment is never deleted. Kafka applies the rules one after the other; because each
//! deletes a prefix of the segment list and the size rule only looks at the sizes of that
//! prefix, the result is the longest of the three prefixes. If the prefix includes the active
//! segment, the log must roll a fresh empty segment first.

/// What retention needs to know about one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentSummary {
    /// First offset of the segment.
    pub base_offset: i64,
    /// Offset after its last batch (the next segment's base offset, or the log end).
    pub next_offset: i64,
    /// Size of its `.log` in bytes.
    pub size_bytes: u64,
    /// Largest batch timestamp in it (or its file's modification time when it has none).
    pub largest_timestamp: i64,
}

/// The retention settings of a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// `retention.ms`, negative = unlimited.
    pub retention_ms: i64,
    /// `retention.bytes`, negative = unlimited.
    pub retention_bytes: i64,
}

/// The decision: delete the `delete_count` oldest segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionDecision {
    /// How many of the oldest segments to delete.
    pub delete_count: usize,
    /// Whether the active (last) segment is among them, so a new segment must be rolled
    /// before deleting.
    pub roll_first: bool,
}

/// Decides which segments to delete. `segments` are oldest first; the last one is the active
/// segment.
pub fn segments_to_delete(
    segments: &[SegmentSummary],
    policy: RetentionPolicy,
    now_ms: i64,
    high_watermark: i64,
    log_start_offset: i64,
) -> RetentionDecision {
    let deletable = |index: usize, segment: &SegmentSummary| {
        let is_last = index + 1 == segments.len();
        segment.next_offset <= high_watermark && !(is_last && segment.size_bytes == 0)
    };
    let prefix = |keep_going: &mut dyn FnMut(&SegmentSummary) -> bool| {
        segments
            .iter()
            .enumerate()
            .take_while(|(index, segment)| deletable(*index, segment) && keep_going(segment))
            .count()
    };

    let by_time = if policy.retention_ms < 0 {
        0
    } else {
        prefix(&mut |s| now_ms.saturating_sub(s.largest_timestamp) > policy.retention_ms)
    };
    let by_size = if policy.retention_bytes < 0 {
        0
    } else {
        let total: u64 = segments.iter().map(|s| s.size_bytes).sum();
        let mut excess = total as i128 - i128::from(policy.retention_bytes);
        prefix(&mut |s| {
            if excess - i128::from(s.size_bytes) >= 0 {
                excess -= i128::from(s.size_bytes);
                true
            } else {
                false
            }
        })
    };
    let by_start = prefix(&mut |s| s.next_offset <= log_start_offset);

    let delete_count = by_time.max(by_size).max(by_start);
    RetentionDecision {
        delete_count,
        roll_first: delete_count > 0 && delete_count == segments.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    /// Segments of 100 offsets each; sizes and timestamps given.
    fn segments(specs: &[(u64, i64)]) -> Vec<SegmentSummary> {
        specs
            .iter()
            .enumerate()
            .map(|(i, &(size_bytes, largest_timestamp))| SegmentSummary {
                base_offset: i as i64 * 100,
                next_offset: (i as i64 + 1) * 100,
                size_bytes,
                largest_timestamp,
            })
            .collect()
    }

    #[test]
    fn decision_table() {
        let now = 10 * DAY;
        let week = RetentionPolicy {
            retention_ms: 7 * DAY,
            retention_bytes: -1,
        };
        let unlimited = RetentionPolicy {
            retention_ms: -1,
            retention_bytes: -1,
        };
        let bytes_250 = RetentionPolicy {
            retention_ms: -1,
            retention_bytes: 250,
        };
        let old = DAY; // 9 days before now
        let new = 9 * DAY;
        struct Case {
            name: &'static str,
            segments: Vec<SegmentSummary>,
            policy: RetentionPolicy,
            high_watermark: i64,
            log_start: i64,
            expect: (usize, bool),
        }
        let cases = [
            Case {
                name: "nothing expired",
                segments: segments(&[(100, new), (100, new), (100, new)]),
                policy: week,
                high_watermark: 300,
                log_start: 0,
                expect: (0, false),
            },
            Case {
                name: "oldest two expired",
                segments: segments(&[(100, old), (100, old), (100, new)]),
                policy: week,
                high_watermark: 300,
                log_start: 0,
                expect: (2, false),
            },
            Case {
                name: "stops at first kept segment",
                segments: segments(&[(100, old), (100, new), (100, old)]),
                policy: week,
                high_watermark: 300,
                log_start: 0,
                expect: (1, false),
            },
            Case {
                name: "all expired: roll first",
                segments: segments(&[(100, old), (100, old)]),
                policy: week,
                high_watermark: 200,
                log_start: 0,
                expect: (2, true),
            },
            Case {
                name: "empty active segment never deleted",
                segments: segments(&[(100, old), (0, old)]),
                policy: week,
                high_watermark: 200,
                log_start: 0,
                expect: (1, false),
            },
            Case {
                name: "high watermark protects",
                segments: segments(&[(100, old), (100, old), (100, old)]),
                policy: week,
                high_watermark: 150,
                log_start: 0,
                expect: (1, false),
            },
            Case {
                name: "unlimited keeps all",
                segments: segments(&[(100, old), (100, old)]),
                policy: unlimited,
                high_watermark: 200,
                log_start: 0,
                expect: (0, false),
            },
            Case {
                name: "size: 400 bytes, keep 250",
                segments: segments(&[(100, new), (100, new), (100, new), (100, new)]),
                policy: bytes_250,
                high_watermark: 400,
                log_start: 0,
                expect: (1, false),
            },
            Case {
                name: "size: exact fit deletes",
                segments: segments(&[(100, new), (100, new), (50, new)]),
                policy: bytes_250,
                high_watermark: 300,
                log_start: 0,
                expect: (0, false),
            },
            Case {
                name: "size: 500 bytes, keep 250",
                segments: segments(&[(150, new), (100, new), (100, new), (150, new)]),
                policy: bytes_250,
                high_watermark: 400,
                log_start: 0,
                expect: (2, false),
            },
            Case {
                name: "log start below",
                segments: segments(&[(100, new), (100, new), (100, new)]),
                policy: unlimited,
                high_watermark: 300,
                log_start: 250,
                expect: (2, false),
            },
            Case {
                name: "time and size: longest prefix",
                segments: segments(&[(100, old), (100, new), (100, new), (100, new)]),
                policy: RetentionPolicy {
                    retention_ms: 7 * DAY,
                    retention_bytes: 150,
                },
                high_watermark: 400,
                log_start: 0,
                expect: (2, false),
            },
            Case {
                name: "no segments",
                segments: vec![],
                policy: week,
                high_watermark: 0,
                log_start: 0,
                expect: (0, false),
            },
        ];
        for case in cases {
            let decision = segments_to_delete(
                &case.segments,
                case.policy,
                now,
                case.high_watermark,
                case.log_start,
            );
            assert_eq!(
                (decision.delete_count, decision.roll_first),
                case.expect,
                "{}",
                case.name
            );
        }
    }
}
