//! The storage engine: per partition, an append-only log of v2 record batches kept in
//! segment files, with sparse memory-mapped indexes, retention, flushing and crash recovery.
//!
//! ```text
//! LogManager ── one per broker: log.dirs (locked), placement, checkpoints, background tasks
//!   ├─ Log ───── one per partition (Arc<Log>, one short Mutex): append, read, roll, truncate
//!   │    └─ Segment ── <base>.log + OffsetIndex (<base>.index) + TimeIndex (<base>.timeindex)
//!   └─ cleaner ── compaction of `cleanup.policy=compact` logs (see `cleaner/mod.rs`)
//! ```
//!
//! The on-disk formats, the roll/retention/flush/recovery rules and crash behaviour are
//! documented in `docs/storage.md` and on the types that own each file.
//!
//! # Glossary
//!
//! * **LEO** (log end offset): the offset the next appended record gets; one past the last
//!   record in the log.
//! * **HW** (high watermark): the offset below which every record is replicated to the whole
//!   ISR; consumers only read below it. The log does not own it: reads take it as
//!   `max_offset` and retention takes it as a callback.
//! * **Log start offset**: the first offset still readable; the base offset of the first
//!   segment, or a larger value checkpointed in `log-start-offset-checkpoint`. Retention
//!   advances it. Invariant: `log start <= LEO`.
//! * **Recovery point**: every offset below it has been fsync'd. After an unclean shutdown,
//!   recovery re-validates from the segment containing it. Invariant: `recovery point <= LEO`.
//! * **Segment**: one `.log` file and its two indexes; the last one is *active* (takes
//!   appends), the others are *sealed*.
//! * **First dirty offset**: the log cleaner's checkpoint; every offset below it has been
//!   through a compaction pass (`cleaner/`). Invariant: `log start <= first dirty <= LEO`.
//! * **ISR**: the in-sync replicas (see `replica/`), mentioned here only through the HW.
//! * **Leader epoch**: the controller's number for a leadership term of the partition; the
//!   leader stamps it into every batch it appends. The log keeps, per epoch, the offset of
//!   its first batch (`leader_epoch.rs`, `leader-epoch-checkpoint`) so that a follower can
//!   truncate to the end of its last epoch as the leader saw it (KIP-101).

mod append;
mod batch;
mod checkpoint;
pub mod cleaner;
mod config;
mod error;
mod index_file;
mod leader_epoch;
mod leader_epoch_file;
mod load;
#[allow(clippy::module_inception)]
mod log;
mod manager;
mod offset_index;
mod producer_rebuild;
mod producer_snapshot;
pub mod producer_state;
mod read;
mod recovery;
pub mod retention;
mod segment;
mod time_index;
mod verification;

#[cfg(test)]
mod tests;

use std::fmt;

pub use append::AppendInfo;
pub use checkpoint::{
    CLEANER_OFFSET_CHECKPOINT, LOG_START_OFFSET_CHECKPOINT, RECOVERY_POINT_CHECKPOINT,
    REPLICATION_OFFSET_CHECKPOINT,
};
pub use config::{CleanupPolicy, DirtyRatio, LogConfig};
pub use error::LogError;
pub use leader_epoch::{Assigned, EpochEntry, InvalidEntries, LeaderEpochCache};
pub use leader_epoch_file::LEADER_EPOCH_CHECKPOINT;
pub use log::{Log, ReadResult};
pub use manager::{CLEAN_SHUTDOWN_MARKER, HighWatermarkFn, LOCK_FILE, LogManager};
pub use producer_state::{BatchSequence, SequenceError};
pub use verification::NEEDS_VERIFICATION_FILE;

/// A partition of a topic. Its log directory is named `<topic>-<partition>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// Topic name (Kafka's rules: `[a-zA-Z0-9._-]`, so it may contain `-`).
    pub topic: String,
    /// Partition number, ≥ 0.
    pub partition: i32,
}

impl TopicPartition {
    /// The partition `partition` of `topic`.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }

    /// The log directory name, `<topic>-<partition>`.
    pub fn dir_name(&self) -> String {
        self.to_string()
    }

    /// Parses a log directory name, splitting at the *last* `-` (topics may contain `-`).
    pub fn parse_dir_name(name: &str) -> Option<Self> {
        let (topic, digits) = name.rsplit_once('-')?;
        let partition: i32 = digits.parse().ok()?;
        // Canonical decimal only: "01" or "+1" would not round-trip to the same directory.
        if topic.is_empty() || partition < 0 || partition.to_string() != digits {
            return None;
        }
        Some(Self::new(topic, partition))
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// Wall-clock time in ms since the epoch (for paths that take no `now` argument).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
