//! The one place that turns internal errors into gRPC statuses and per-partition error codes.

use tonic::Status;
use tributary_proto::v1::ErrorCode;
use tributary_record::RecordError;

use tributary_controller::election::ElectionError;
use tributary_controller::handlers::preferred_leader::ElectLeaderError;

use crate::consume::ConsumeError;
use crate::group::GroupError;
use crate::log::{LogError, SequenceError};
use crate::replica::AppendError;

/// A per-partition outcome: an error code plus a message for humans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionError {
    /// Kafka-numbered code.
    pub code: ErrorCode,
    /// What happened, naming the topic-partition.
    pub message: String,
}

impl PartitionError {
    /// An error with a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The partition does not exist here.
    pub fn unknown(topic: &str, partition: i32) -> Self {
        Self::new(
            ErrorCode::UnknownTopicOrPartition,
            format!("topic {topic:?} partition {partition} does not exist on this broker"),
        )
    }
}

/// Maps a storage error to the code a client sees.
pub fn from_log_error(error: &LogError) -> PartitionError {
    let code = match error {
        LogError::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
        LogError::InvalidBatch { source, .. } => record_error_code(source),
        LogError::MessageTooLarge { .. } => ErrorCode::MessageTooLarge,
        LogError::Io { .. } => ErrorCode::KafkaStorageError,
        LogError::Sequence { source, .. } => match source {
            SequenceError::OutOfOrder { .. } => ErrorCode::OutOfOrderSequenceNumber,
            SequenceError::InvalidEpoch { .. } => ErrorCode::InvalidProducerEpoch,
            SequenceError::UnknownProducer { .. } => ErrorCode::UnknownProducerId,
        },
        _ => ErrorCode::UnknownServerError,
    };
    PartitionError::new(code, error_chain(error))
}

/// Maps a codec error (bad bytes from a client) to its code.
pub fn record_error_code(error: &RecordError) -> ErrorCode {
    match error {
        RecordError::UnsupportedMagic { .. } => ErrorCode::UnsupportedVersion,
        RecordError::UnsupportedCompression { .. } => ErrorCode::UnsupportedCompressionType,
        // A compressed records section that does not decompress is corrupt, as in Kafka.
        RecordError::Decompression { .. } => ErrorCode::CorruptMessage,
        _ => ErrorCode::CorruptMessage,
    }
}

/// The error and its causes, joined with ": ".
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The code for one partition whose preferred leader election did not happen, as Kafka answers
/// ElectLeaders with the preferred strategy: the partition is unknown, no election was needed,
/// or (any other reason) the preferred replica cannot lead now.
pub fn elect_leader_code(error: &ElectLeaderError) -> ErrorCode {
    match error {
        ElectLeaderError::UnknownTopicOrPartition { .. }
        | ElectLeaderError::Election {
            source: ElectionError::EmptyAssignment,
            ..
        } => ErrorCode::UnknownTopicOrPartition,
        ElectLeaderError::Election {
            source: ElectionError::ElectionNotNeeded { .. },
            ..
        } => ErrorCode::ElectionNotNeeded,
        ElectLeaderError::NotInitialized { .. } | ElectLeaderError::Election { .. } => {
            ErrorCode::PreferredLeaderNotAvailable
        }
    }
}

/// The code of a group-level refusal (Kafka's, including its translation of append failures
/// for commits: a storage error means this broker cannot coordinate → NOT_COORDINATOR).
pub fn group_error_code(error: &GroupError) -> ErrorCode {
    match error {
        GroupError::InvalidGroupId { .. } => ErrorCode::InvalidGroupId,
        GroupError::NotCoordinator { .. } => ErrorCode::NotCoordinator,
        GroupError::LoadInProgress { .. } => ErrorCode::CoordinatorLoadInProgress,
        GroupError::CoordinatorNotAvailable { .. } => ErrorCode::CoordinatorNotAvailable,
        GroupError::IllegalGeneration { .. } => ErrorCode::IllegalGeneration,
        GroupError::UnknownMember { .. } => ErrorCode::UnknownMemberId,
        GroupError::RebalanceInProgress { .. } => ErrorCode::RebalanceInProgress,
        GroupError::MemberIdRequired { .. } => ErrorCode::MemberIdRequired,
        GroupError::InvalidSessionTimeout { .. } => ErrorCode::InvalidSessionTimeout,
        GroupError::InconsistentProtocol { .. } => ErrorCode::InconsistentGroupProtocol,
        GroupError::StaticMembership { .. } => ErrorCode::InvalidRequest,
        GroupError::GroupIdNotFound { .. } => ErrorCode::GroupIdNotFound,
        GroupError::NonEmptyGroup { .. } => ErrorCode::NonEmptyGroup,
        GroupError::CommitTooLarge { .. } => ErrorCode::InvalidCommitOffsetSize,
        GroupError::ReplicationTimedOut { .. } => ErrorCode::RequestTimedOut,
        GroupError::Append {
            source: AppendError::Log(LogError::Io { .. }),
            ..
        } => ErrorCode::NotCoordinator,
        GroupError::Append { .. } => ErrorCode::UnknownServerError,
    }
}

/// A request that is malformed as a whole.
pub fn invalid_argument(message: impl Into<String>) -> Status {
    Status::invalid_argument(message.into())
}

/// The status a consume stream ends with (see `GroupConsumer.ConsumeStream` in
/// consume.proto): malformed input INVALID_ARGUMENT, an unknown topic NOT_FOUND, the reset
/// policy NONE FAILED_PRECONDITION, a coordinator's refusal of the member's settings
/// INVALID_ARGUMENT, anything else the member could not get past UNAVAILABLE.
pub fn consume_status(error: &ConsumeError) -> Status {
    use tributary_client::{ClientError, ErrorCode as ClientCode};
    let message = error_chain(error);
    match error {
        ConsumeError::UnknownTopic { .. } => Status::not_found(message),
        ConsumeError::Consumer(
            ClientError::NoOffset { .. } | ClientError::OffsetOutOfRange { .. },
        ) => Status::failed_precondition(message),
        ConsumeError::Consumer(ClientError::InvalidArgument { .. }) => {
            Status::invalid_argument(message)
        }
        ConsumeError::Consumer(client) => match client.error_code() {
            Some(
                ClientCode::InvalidSessionTimeout
                | ClientCode::InvalidGroupId
                | ClientCode::InconsistentGroupProtocol,
            ) => Status::invalid_argument(message),
            _ => Status::unavailable(message),
        },
        _ => Status::invalid_argument(message),
    }
}

#[cfg(test)]
mod tests {
    use tributary_controller::cluster::TopicPartition;
    use tributary_zk_layout::BrokerId;

    use super::*;

    #[test]
    fn refused_preferred_elections_get_kafkas_codes() {
        let tp = TopicPartition::new("t", 0);
        let election = |source| ElectLeaderError::Election {
            partition: tp.clone(),
            source,
        };
        let table = [
            (
                ElectLeaderError::UnknownTopicOrPartition {
                    partition: tp.clone(),
                },
                ErrorCode::UnknownTopicOrPartition,
            ),
            (
                election(ElectionError::EmptyAssignment),
                ErrorCode::UnknownTopicOrPartition,
            ),
            (
                election(ElectionError::ElectionNotNeeded {
                    leader: BrokerId(1),
                }),
                ErrorCode::ElectionNotNeeded,
            ),
            (
                election(ElectionError::PreferredReplicaNotEligible {
                    preferred: BrokerId(1),
                    live: false,
                    in_isr: true,
                }),
                ErrorCode::PreferredLeaderNotAvailable,
            ),
            (
                election(ElectionError::NoLiveReplica {
                    replicas: vec![BrokerId(1)],
                }),
                ErrorCode::PreferredLeaderNotAvailable,
            ),
            (
                ElectLeaderError::NotInitialized {
                    partition: tp.clone(),
                },
                ErrorCode::PreferredLeaderNotAvailable,
            ),
        ];
        for (error, code) in table {
            assert_eq!(elect_leader_code(&error), code, "{error}");
        }
    }

    #[test]
    fn group_refusals_get_kafkas_codes() {
        let group = || "g".to_owned();
        let io = AppendError::Log(LogError::Io {
            context: "writing segment".into(),
            path: "/x".into(),
            source: std::io::Error::other("disk"),
        });
        let table = [
            (
                GroupError::InvalidGroupId {
                    group: group(),
                    reason: "empty",
                },
                ErrorCode::InvalidGroupId,
            ),
            (
                GroupError::NotCoordinator {
                    group: group(),
                    partition: 1,
                },
                ErrorCode::NotCoordinator,
            ),
            (
                GroupError::LoadInProgress {
                    group: group(),
                    partition: 1,
                },
                ErrorCode::CoordinatorLoadInProgress,
            ),
            (
                GroupError::IllegalGeneration {
                    group: group(),
                    received: 3,
                    current: -1,
                },
                ErrorCode::IllegalGeneration,
            ),
            (
                GroupError::UnknownMember {
                    group: group(),
                    member_id: "m".into(),
                },
                ErrorCode::UnknownMemberId,
            ),
            (
                GroupError::ReplicationTimedOut {
                    group: group(),
                    timeout_ms: 5000,
                },
                ErrorCode::RequestTimedOut,
            ),
            (
                GroupError::GroupIdNotFound { group: group() },
                ErrorCode::GroupIdNotFound,
            ),
            (
                GroupError::NonEmptyGroup {
                    group: group(),
                    state: "Stable",
                    members: 2,
                },
                ErrorCode::NonEmptyGroup,
            ),
            (
                GroupError::Append {
                    group: group(),
                    source: io,
                },
                ErrorCode::NotCoordinator,
            ),
        ];
        for (error, code) in table {
            assert_eq!(group_error_code(&error), code, "{error}");
        }
    }

    #[test]
    fn bad_batches_get_kafkas_codes() {
        let decompression = RecordError::Decompression {
            source: tributary_record::CompressionError::Corrupt {
                codec: tributary_record::Compression::Zstd,
                detail: "unknown frame descriptor".into(),
            },
        };
        let table = [
            (decompression, ErrorCode::CorruptMessage),
            (
                RecordError::CrcMismatch {
                    stored: 1,
                    computed: 2,
                },
                ErrorCode::CorruptMessage,
            ),
            (
                RecordError::UnsupportedCompression { codec: 5 },
                ErrorCode::UnsupportedCompressionType,
            ),
            (
                RecordError::UnsupportedMagic { magic: 1 },
                ErrorCode::UnsupportedVersion,
            ),
        ];
        for (error, code) in table {
            assert_eq!(record_error_code(&error), code, "{error}");
        }
    }
}
