//! Per-log configuration (`LogConfig`), with Kafka's topic-level key names and defaults.

use tributary_record::TimestampType;

/// Configuration of one partition's log. Field names follow Kafka's topic-level keys
/// (`segment.bytes` → `segment_bytes`); defaults are Kafka 2.8's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes`: roll when the active segment would grow beyond this (default 1 GiB).
    /// Positions in the offset index are 32-bit, so values above `i32::MAX` act as `i32::MAX`.
    pub segment_bytes: u64,
    /// `segment.ms`: roll a non-empty segment this long after its first batch's timestamp
    /// (default 7 days).
    pub segment_ms: i64,
    /// `segment.index.bytes`: preallocated size of each index file (default 10 MiB), rounded
    /// down to a multiple of the entry size. A full index forces a roll.
    pub segment_index_bytes: u64,
    /// `index.interval.bytes`: an offset-index entry is added once more than this many bytes
    /// were appended since the previous entry (default 4096).
    pub index_interval_bytes: u64,
    /// `retention.ms`: delete sealed segments whose largest timestamp is older (-1 = never;
    /// default 7 days).
    pub retention_ms: i64,
    /// `retention.bytes`: delete the oldest sealed segments while the log is larger (-1 = never,
    /// the default).
    pub retention_bytes: i64,
    /// `flush.messages`: fsync after this many records since the last flush (`u64::MAX` = never,
    /// the default: durability comes from replication).
    pub flush_messages: u64,
    /// `flush.ms`: the flush scheduler fsyncs a log this long after its last flush (`u64::MAX` =
    /// never, the default).
    pub flush_ms: u64,
    /// `max.message.bytes`: largest batch accepted, including the 12-byte log overhead
    /// (default 1048588 = 1 MiB + 12).
    pub max_message_bytes: u32,
    /// `message.timestamp.type`: `LogAppendTime` makes the broker overwrite each batch's max
    /// timestamp with its clock on append (default `CreateTime`).
    pub message_timestamp_type: TimestampType,
    /// `file.delete.delay.ms`: deleted segments are renamed to `*.deleted` and unlinked this
    /// much later (default 60 s), so in-flight readers finish.
    pub file_delete_delay_ms: u64,
    /// `cleanup.policy`: `delete` (the default), `compact`, or both.
    pub cleanup_policy: CleanupPolicy,
    /// `delete.retention.ms`: how long the cleaner keeps a tombstone once its segment is in
    /// the clean part of the log (default 1 day).
    pub delete_retention_ms: i64,
    /// `min.cleanable.dirty.ratio`: the cleaner only cleans a log whose dirty part is at least
    /// this fraction of its cleanable bytes (default 0.5).
    pub min_cleanable_dirty_ratio: DirtyRatio,
    /// `min.compaction.lag.ms`: a segment is only cleaned once its newest record is this old
    /// (default 0).
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: a log whose oldest dirty segment started longer ago than this
    /// is cleaned whatever its dirty ratio (default `i64::MAX`, never).
    pub max_compaction_lag_ms: i64,
}

/// `cleanup.policy`: what happens to old data. Kafka's values are `delete`, `compact` and
/// `compact,delete` (either order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CleanupPolicy {
    /// Retention (`retention.ms`, `retention.bytes`) deletes old segments.
    pub delete: bool,
    /// The log cleaner keeps the latest record per key.
    pub compact: bool,
}

impl CleanupPolicy {
    /// `cleanup.policy=delete`, the default.
    pub const DELETE: Self = Self {
        delete: true,
        compact: false,
    };
    /// `cleanup.policy=compact`.
    pub const COMPACT: Self = Self {
        delete: false,
        compact: true,
    };

    /// Parses Kafka's list syntax (`delete`, `compact`, `compact,delete`, spaces allowed);
    /// `None` for an empty list or an unknown entry.
    pub fn parse(text: &str) -> Option<Self> {
        let mut policy = Self {
            delete: false,
            compact: false,
        };
        for part in text.split(',').map(str::trim) {
            match part {
                "delete" => policy.delete = true,
                "compact" => policy.compact = true,
                _ => return None,
            }
        }
        (policy.delete || policy.compact).then_some(policy)
    }
}

impl std::fmt::Display for CleanupPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.compact, self.delete) {
            (true, true) => f.write_str("compact,delete"),
            (true, false) => f.write_str("compact"),
            _ => f.write_str("delete"),
        }
    }
}

/// A ratio in `[0, 1]` (`min.cleanable.dirty.ratio`). Compared by value so [`LogConfig`] can
/// stay `Eq`.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct DirtyRatio(f64);

impl Eq for DirtyRatio {}

impl DirtyRatio {
    /// `value` if it is within `[0, 1]`.
    pub fn new(value: f64) -> Option<Self> {
        (0.0..=1.0).contains(&value).then_some(Self(value))
    }

    /// The ratio.
    pub fn get(self) -> f64 {
        self.0
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 1_073_741_824,
            segment_ms: 604_800_000,
            segment_index_bytes: 10_485_760,
            index_interval_bytes: 4096,
            retention_ms: 604_800_000,
            retention_bytes: -1,
            flush_messages: u64::MAX,
            flush_ms: u64::MAX,
            max_message_bytes: 1_048_588,
            message_timestamp_type: TimestampType::CreateTime,
            file_delete_delay_ms: 60_000,
            cleanup_policy: CleanupPolicy::DELETE,
            delete_retention_ms: 86_400_000,
            min_cleanable_dirty_ratio: DirtyRatio(0.5),
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
        }
    }
}

impl LogConfig {
    /// The effective roll size: `segment.bytes`, capped so every position fits the index's
    /// 32-bit position field.
    pub(crate) fn effective_segment_bytes(&self) -> u64 {
        self.segment_bytes.clamp(1, i32::MAX as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleanup_policies_parse_like_kafkas_lists() {
        let both = CleanupPolicy {
            delete: true,
            compact: true,
        };
        for (text, expected) in [
            ("delete", Some(CleanupPolicy::DELETE)),
            ("compact", Some(CleanupPolicy::COMPACT)),
            ("compact,delete", Some(both)),
            ("delete, compact", Some(both)),
            ("", None),
            ("compact,", None),
            ("Compact", None),
            ("retain", None),
        ] {
            assert_eq!(CleanupPolicy::parse(text), expected, "{text:?}");
        }
        assert_eq!(both.to_string(), "compact,delete");
        assert_eq!(CleanupPolicy::COMPACT.to_string(), "compact");
        assert_eq!(CleanupPolicy::DELETE.to_string(), "delete");
        assert!(DirtyRatio::new(1.5).is_none() && DirtyRatio::new(-0.1).is_none());
    }

    #[test]
    fn defaults_are_kafkas() {
        let config = LogConfig::default();
        assert_eq!(config.segment_bytes, 1 << 30);
        assert_eq!(config.segment_ms, 7 * 24 * 3600 * 1000);
        assert_eq!(config.segment_index_bytes, 10 * 1024 * 1024);
        assert_eq!(config.index_interval_bytes, 4096);
        assert_eq!(config.retention_ms, 604_800_000);
        assert_eq!(config.retention_bytes, -1);
        assert_eq!(config.max_message_bytes, 1024 * 1024 + 12);
        assert_eq!(config.message_timestamp_type, TimestampType::CreateTime);
        assert_eq!(config.file_delete_delay_ms, 60_000);
        assert_eq!(config.cleanup_policy, CleanupPolicy::DELETE);
        assert_eq!(config.delete_retention_ms, 86_400_000);
        assert_eq!(config.min_cleanable_dirty_ratio.get(), 0.5);
        assert_eq!(config.min_compaction_lag_ms, 0);
        assert_eq!(config.max_compaction_lag_ms, i64::MAX);
        assert_eq!(config.effective_segment_bytes(), 1 << 30);
        let huge = LogConfig {
            segment_bytes: u64::MAX,
            ..LogConfig::default()
        };
        assert_eq!(huge.effective_segment_bytes(), i32::MAX as u64);
    }
}
