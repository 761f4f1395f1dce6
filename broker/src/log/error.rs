//! `LogError`: every way the storage engine can fail, with the partition, offset or path.

use std::path::PathBuf;

use tributary_record::RecordError;

use super::TopicPartition;
use super::producer_state::SequenceError;

/// Errors of the storage engine. Each variant carries what a caller needs to map it to a
/// Kafka-style error code and what an operator needs to find the problem.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A read asked for an offset outside `[log start, log end]`.
    #[error(
        "offset {requested} is out of range for {topic_partition}: valid offsets are {log_start}..={log_end}"
    )]
    OffsetOutOfRange {
        /// The partition.
        topic_partition: TopicPartition,
        /// The offset asked for.
        requested: i64,
        /// The log start offset at the time of the request.
        log_start: i64,
        /// The log end offset at the time of the request.
        log_end: i64,
    },
    /// A batch handed to an append is malformed; nothing was appended.
    #[error("invalid record batch {batch_index} appended to {topic_partition}")]
    InvalidBatch {
        /// The partition.
        topic_partition: TopicPartition,
        /// Position of the offending batch in the request (0-based).
        batch_index: usize,
        /// What is wrong with it.
        #[source]
        source: RecordError,
    },
    /// A batch is larger than `max.message.bytes`; nothing was appended.
    #[error("record batch of {size} bytes for {topic_partition} exceeds max.message.bytes = {max}")]
    MessageTooLarge {
        /// The partition.
        topic_partition: TopicPartition,
        /// Size of the batch, including the 12-byte log overhead.
        size: usize,
        /// The configured `max.message.bytes`.
        max: u32,
    },
    /// Follower batches do not continue the log (wrong first offset, gap or overlap).
    #[error("batches for {topic_partition} start at offset {found}, expected {expected}")]
    NonContiguousAppend {
        /// The partition.
        topic_partition: TopicPartition,
        /// The offset the next batch must start at.
        expected: i64,
        /// The base offset found.
        found: i64,
    },
    /// A file operation failed.
    #[error("{context} {}", path.display())]
    Io {
        /// What the engine was doing ("writing segment", "fsync of", ...).
        context: String,
        /// The file or directory concerned.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A segment holds bytes that are not a valid batch where one must start (found by a
    /// read; recovery truncates such data instead of reporting it).
    #[error("corrupt record batch at byte {position} of {}", path.display())]
    CorruptSegment {
        /// The `.log` file.
        path: PathBuf,
        /// Byte position of the bad header.
        position: u64,
        /// What is wrong.
        #[source]
        source: RecordError,
    },
    /// Another process (or another `LogManager`) holds the log directory's `.lock`.
    #[error(
        "log directory {} is locked by another broker process (its .lock file is held)",
        path.display()
    )]
    LogDirLocked {
        /// The log directory.
        path: PathBuf,
    },
    /// A directory handed to `Log::open` is not named `<topic>-<partition>`.
    #[error("log directory {} is not named <topic>-<partition>", path.display())]
    InvalidLogDirName {
        /// The directory.
        path: std::path::PathBuf,
    },
    /// A checkpoint file does not follow the documented format.
    #[error("corrupt checkpoint file {} at line {line}: {reason}", path.display())]
    CorruptCheckpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// The same partition has a directory in two log dirs.
    #[error("{topic_partition} has a log in both {} and {}", first.display(), second.display())]
    DuplicateLog {
        /// The partition.
        topic_partition: TopicPartition,
        /// The directory loaded first.
        first: PathBuf,
        /// The other directory.
        second: PathBuf,
    },
    /// A batch of an idempotent producer does not continue its sequence, or comes from a
    /// fenced epoch; nothing of the append was written.
    #[error("{topic_partition}: {source}")]
    Sequence {
        /// The partition.
        topic_partition: TopicPartition,
        /// What is wrong with the sequence.
        #[source]
        source: SequenceError,
    },
    /// The log was closed (broker shutdown or partition deleted) and takes no more writes.
    #[error("log for {topic_partition} is closed")]
    Closed {
        /// The partition.
        topic_partition: TopicPartition,
    },
}

impl LogError {
    pub(crate) fn io(
        context: impl Into<String>,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            context: context.into(),
            path: path.into(),
            source,
        }
    }
}
