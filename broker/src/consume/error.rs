//! Why a consume stream ended; `server/errors.rs` maps each to its gRPC status.

use tributary_client::ClientError;

/// A consume stream's end other than the client closing it.
#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    /// The first message was not a Subscribe (or there was none).
    #[error("the first message of a consume stream must be a Subscribe")]
    NotSubscribe,
    /// A Subscribe after the first message.
    #[error("a consume stream subscribes once, in its first message")]
    SubscribeAgain,
    /// A client message with no field of its `oneof` set.
    #[error("a client message without a Subscribe, Credit or Commit")]
    EmptyMessage,
    /// A Subscribe with an empty group id.
    #[error("the group id must not be empty (INVALID_GROUP_ID)")]
    EmptyGroupId,
    /// A Subscribe without topics, or with an empty topic name.
    #[error("subscribe to at least one topic, each with a non-empty name")]
    NoTopics,
    /// A negative timeout.
    #[error("{field} must not be negative (got {value})")]
    NegativeTimeout {
        /// The Subscribe field.
        field: &'static str,
        /// Its value.
        value: i32,
    },
    /// A Commit with both or neither of `through_sequence` and `offsets`.
    #[error("a Commit names exactly one of through_sequence and offsets")]
    BadCommit,
    /// A subscribed topic does not exist.
    #[error("topic {topic:?} does not exist (UNKNOWN_TOPIC_OR_PARTITION)")]
    UnknownTopic {
        /// The topic.
        topic: String,
    },
    /// The group member the broker runs for the stream failed (the coordinator refused it, a
    /// leader could not be reached in time, the reset policy NONE met a partition without an
    /// offset).
    #[error("the group consumer failed")]
    Consumer(#[source] ClientError),
}
