//! Why a record was not sent or not delivered.

use std::sync::Arc;
use std::time::Duration;

use crate::ClientError;

/// Why [`Producer::send`](super::Producer::send) refused a record, or why its delivery failed.
/// Cheap to clone: a failed batch hands the same error to each of its records.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProduceError {
    /// The producer was closed before the record was accepted (or its task stopped).
    #[error("the producer is closed")]
    Closed,
    /// The record names a partition the topic does not have.
    #[error("{topic}-{partition}: the topic has {partitions} partitions (0..{partitions})")]
    UnknownPartition {
        /// The topic.
        topic: String,
        /// The partition asked for.
        partition: i32,
        /// How many partitions the topic has in the client's metadata.
        partitions: i32,
    },
    /// The record alone is larger than `max.request.size` or `buffer.memory`.
    #[error("the record is {size} bytes, more than {setting} ({limit} bytes)")]
    RecordTooLarge {
        /// The record's size as counted against the limits (an upper bound of its encoded size).
        size: usize,
        /// The limit it exceeds.
        limit: usize,
        /// The setting that sets the limit (`max.request.size` or `buffer.memory`).
        setting: &'static str,
    },
    /// `send` waited `max.block.ms` for buffer memory: records are accepted faster than the
    /// brokers acknowledge them (or a leader is unreachable). Nothing was queued.
    #[error(
        "no room for {requested} bytes in buffer.memory ({buffer_memory} bytes) after waiting max.block.ms ({waited:?}): the brokers are not keeping up or not reachable; the record was not sent"
    )]
    BufferExhausted {
        /// Bytes the record needed.
        requested: usize,
        /// The producer's `buffer.memory`.
        buffer_memory: usize,
        /// How long `send` waited (`max.block.ms`).
        waited: Duration,
    },
    /// The topic's metadata could not be had within `max.block.ms` (an unknown topic, no
    /// broker reachable).
    #[error("no metadata for topic {topic:?} within max.block.ms ({waited:?})")]
    Metadata {
        /// The topic.
        topic: String,
        /// How long `send` waited.
        waited: Duration,
        /// The last failure.
        #[source]
        source: Arc<ClientError>,
    },
    /// The record was not acknowledged within `delivery.timeout.ms`. It may still have been
    /// written if its last attempt's answer was lost.
    #[error(
        "{topic}-{partition}: not delivered within delivery.timeout.ms ({delivery_timeout:?}) after {attempts} attempt(s)"
    )]
    DeliveryTimeout {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The producer's `delivery.timeout.ms`.
        delivery_timeout: Duration,
        /// Requests that carried the record's batch.
        attempts: u32,
        /// The last attempt's failure, if there was one.
        #[source]
        last_error: Option<Arc<ClientError>>,
    },
    /// The broker refused the record's batch with an error that retrying cannot cure
    /// (`MESSAGE_TOO_LARGE`, `INVALID_REQUIRED_ACKS`, a missing topic, ...), or the answer was
    /// malformed.
    #[error("{topic}-{partition}: the batch was refused")]
    Refused {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The broker's refusal.
        #[source]
        source: Arc<ClientError>,
    },
}

impl ProduceError {
    /// The broker error code behind the failure, if a broker refused the batch.
    pub fn error_code(&self) -> Option<crate::ErrorCode> {
        match self {
            ProduceError::Refused { source, .. } => source.error_code(),
            ProduceError::DeliveryTimeout {
                last_error: Some(source),
                ..
            } => source.error_code(),
            _ => None,
        }
    }
}
