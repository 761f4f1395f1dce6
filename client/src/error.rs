//! The client's error type and the broker's error codes.

use tributary_proto::v1 as pb;
use tributary_record::RecordError;

/// Everything that can go wrong in a client call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The bootstrap address is not a usable URI.
    #[error("invalid bootstrap address {address:?}")]
    InvalidAddress {
        /// The address as given.
        address: String,
        /// Why tonic refused it.
        #[source]
        source: tonic::transport::Error,
    },
    /// The TCP/HTTP2 connection to the broker could not be established.
    #[error("cannot connect to {address}")]
    Connect {
        /// The URI connected to.
        address: String,
        /// The transport failure.
        #[source]
        source: tonic::transport::Error,
    },
    /// A gRPC call failed as a whole (transport failure, `INVALID_ARGUMENT`, `UNAVAILABLE`, ...).
    #[error("{operation} request failed")]
    Rpc {
        /// The RPC, e.g. `"Produce"`.
        operation: &'static str,
        /// The gRPC status returned (or synthesised by tonic for transport failures).
        #[source]
        source: tonic::Status,
    },
    /// The broker refused the request for one topic or partition.
    #[error("{}: {code}{}", display_target(topic, *partition), display_message(message))]
    Broker {
        /// The topic concerned.
        topic: String,
        /// The partition concerned; `None` for topic-level errors (admin calls).
        partition: Option<i32>,
        /// The broker's error code.
        code: ErrorCode,
        /// The broker's explanation (may be empty).
        message: String,
    },
    /// The broker's answer lacks the result for a topic or partition the request named, or
    /// a streamed answer carries an unexpected request id.
    #[error("malformed {operation} response for {}: {reason}", display_target(topic, *partition))]
    MalformedResponse {
        /// The RPC.
        operation: &'static str,
        /// The topic concerned.
        topic: String,
        /// The partition concerned.
        partition: Option<i32>,
        /// What is wrong.
        reason: String,
    },
    /// The group coordinator refused a group request as a whole (nothing was committed).
    #[error("group {group:?}: {code}{}", display_message(message))]
    Group {
        /// The group id.
        group: String,
        /// The coordinator's error code.
        code: ErrorCode,
        /// The coordinator's explanation (may be empty).
        message: String,
    },
    /// A fetched record batch could not be decoded.
    #[error("corrupt record batch in {topic}-{partition} at offset {offset}")]
    CorruptBatch {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The fetch offset of the response that held the batch.
        offset: i64,
        /// What the decoder found.
        #[source]
        source: RecordError,
    },
    /// A fetch returned bytes but not one complete batch: the batch at `offset` is larger than
    /// the fetch's `max_bytes`.
    #[error(
        "{topic}-{partition}: the batch at offset {offset} does not fit in max_bytes={max_bytes}"
    )]
    BatchTooLarge {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The fetch offset.
        offset: i64,
        /// The limit used.
        max_bytes: i32,
    },
    /// A streaming producer or consumer was closed (its stream ended or failed earlier).
    #[error("the {operation} stream is closed")]
    StreamClosed {
        /// The RPC.
        operation: &'static str,
    },
    /// A consumer's fetch offset is outside the partition's log (below the log start offset or
    /// above the log end offset) and its `auto_offset_reset` is
    /// [`OffsetReset::None`](crate::OffsetReset::None): the application must seek.
    #[error(
        "{topic}-{partition}: OFFSET_OUT_OF_RANGE: fetch offset {offset} is outside the log and \
         auto.offset.reset is none (seek to a valid offset)"
    )]
    OffsetOutOfRange {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The offset the consumer tried to fetch.
        offset: i64,
    },
    /// A consumer has no position for an assigned partition (never sought) and its
    /// `auto_offset_reset` is [`OffsetReset::None`](crate::OffsetReset::None).
    #[error(
        "{topic}-{partition}: no position to fetch from and auto.offset.reset is none (seek first)"
    )]
    NoOffset {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },
    /// The call needs a feature this version does not have yet.
    #[error("{operation} is not supported yet: {reason}")]
    NotSupported {
        /// The call, e.g. `"Consumer::subscribe"`.
        operation: &'static str,
        /// What is missing and what to use instead.
        reason: &'static str,
    },
    /// An argument was refused before anything was sent.
    #[error("invalid argument {argument}: {reason}")]
    InvalidArgument {
        /// The argument's name.
        argument: &'static str,
        /// Why it is invalid.
        reason: String,
    },
}

fn display_message(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

fn display_target(topic: &str, partition: Option<i32>) -> String {
    match partition {
        Some(partition) => format!("{topic}-{partition}"),
        None => format!("topic {topic:?}"),
    }
}

impl ClientError {
    /// Whether repeating the same call later may succeed (a leader moved, a timeout, the
    /// broker being briefly unavailable).
    pub fn is_retriable(&self) -> bool {
        match self {
            ClientError::Broker { code, .. } | ClientError::Group { code, .. } => {
                code.is_retriable()
            }
            ClientError::Connect { .. } => true,
            ClientError::Rpc { source, .. } => matches!(
                source.code(),
                tonic::Code::Unavailable
                    | tonic::Code::DeadlineExceeded
                    | tonic::Code::ResourceExhausted
            ),
            _ => false,
        }
    }

    /// Whether the request should be retried after fetching fresh metadata: the broker
    /// answered with a code saying the leader may have moved
    /// ([`ErrorCode::needs_metadata_refresh`]), or the broker could not be reached at all (a
    /// dead leader is only replaced in the metadata). The data-path calls retry these by
    /// themselves, within the client's retry timeout.
    pub fn needs_metadata_refresh(&self) -> bool {
        match self {
            ClientError::Broker { code, .. } => code.needs_metadata_refresh(),
            ClientError::Connect { .. } => true,
            ClientError::Rpc { source, .. } => is_transport_failure(source),
            _ => false,
        }
    }

    /// The broker error code, if the broker refused the request.
    pub fn error_code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Broker { code, .. } | ClientError::Group { code, .. } => Some(*code),
            ClientError::OffsetOutOfRange { .. } => Some(ErrorCode::OffsetOutOfRange),
            _ => None,
        }
    }

    pub(crate) fn rpc(operation: &'static str) -> impl FnOnce(tonic::Status) -> ClientError {
        move |source| ClientError::Rpc { operation, source }
    }
}

/// Whether `status` reports a lost or refused connection rather than an answer from the
/// broker: `UNAVAILABLE`, or a status tonic made locally from a transport error (those carry
/// the error as their source; a status received from a broker never does). A stream cut by a
/// broker that died arrives as the latter, often with code `UNKNOWN` or `INTERNAL`.
fn is_transport_failure(status: &tonic::Status) -> bool {
    status.code() == tonic::Code::Unavailable || std::error::Error::source(status).is_some()
}

/// The broker's per-topic or per-partition error codes (Kafka's numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// Success.
    None,
    /// The offset is below the log start offset or above the log end offset.
    OffsetOutOfRange,
    /// A record batch failed its CRC or structural checks.
    CorruptMessage,
    /// The topic or partition does not exist on this broker.
    UnknownTopicOrPartition,
    /// The partition has no leader at the moment.
    LeaderNotAvailable,
    /// This broker is not the leader (or follower) for the partition.
    NotLeaderOrFollower,
    /// The request did not complete within its timeout.
    RequestTimedOut,
    /// The broker named in the request is not registered.
    BrokerNotAvailable,
    /// A batch is larger than the topic's `max.message.bytes`.
    MessageTooLarge,
    /// A control request carried an older controller epoch.
    StaleControllerEpoch,
    /// An offset commit's metadata is longer than `offset.metadata.max.bytes`.
    OffsetMetadataTooLarge,
    /// The group coordinator is still loading the group's state.
    CoordinatorLoadInProgress,
    /// No coordinator can serve the group right now.
    CoordinatorNotAvailable,
    /// The broker is not the group's coordinator.
    NotCoordinator,
    /// The topic name is not legal.
    InvalidTopic,
    /// The records of one partition exceed the request size limit.
    RecordListTooLarge,
    /// The ISR is smaller than `min.insync.replicas`; nothing was written.
    NotEnoughReplicas,
    /// Appended, but the ISR shrank below `min.insync.replicas`.
    NotEnoughReplicasAfterAppend,
    /// acks must be -1, 0 or 1.
    InvalidRequiredAcks,
    /// The generation is not the group's current one.
    IllegalGeneration,
    /// JoinGroup: another protocol type, no protocols, or none every member supports.
    InconsistentGroupProtocol,
    /// The group id is not valid.
    InvalidGroupId,
    /// The member id is not a member of the group.
    UnknownMemberId,
    /// JoinGroup: the session timeout is outside the broker's allowed range.
    InvalidSessionTimeout,
    /// The group is rebalancing.
    RebalanceInProgress,
    /// An offset commit is too large for the offsets topic.
    InvalidCommitOffsetSize,
    /// A record timestamp is out of the accepted range.
    InvalidTimestamp,
    /// The batch format version is not supported.
    UnsupportedVersion,
    /// A topic with this name already exists.
    TopicAlreadyExists,
    /// The number of partitions is not valid.
    InvalidPartitions,
    /// The replication factor is not valid.
    InvalidReplicationFactor,
    /// An explicit replica assignment is not valid.
    InvalidReplicaAssignment,
    /// A configuration key or value is not valid.
    InvalidConfig,
    /// The request is malformed for this partition.
    InvalidRequest,
    /// An idempotent producer's batch does not continue its sequence (a gap or a reordering).
    OutOfOrderSequenceNumber,
    /// Reserved with Kafka's meaning (duplicates are answered with the original offsets).
    DuplicateSequenceNumber,
    /// The producer epoch is older than the partition's: the producer was fenced.
    InvalidProducerEpoch,
    /// The log directory failed.
    KafkaStorageError,
    /// The partition does not know the producer id and the batch does not start a sequence.
    UnknownProducerId,
    /// DeleteGroups: the group still has members.
    NonEmptyGroup,
    /// The group does not exist.
    GroupIdNotFound,
    /// JoinGroup: the coordinator gave the member an id; join again with it.
    MemberIdRequired,
    /// Topic deletion is disabled on the cluster.
    TopicDeletionDisabled,
    /// The request must go to the controller.
    NotController,
    /// A control request was meant for an older incarnation of the broker.
    StaleBrokerEpoch,
    /// The request's leader epoch is older than the current one.
    FencedLeaderEpoch,
    /// The request's leader epoch is newer than the broker knows.
    UnknownLeaderEpoch,
    /// The compression codec is not supported.
    UnsupportedCompressionType,
    /// The preferred replica is not alive or not in sync.
    PreferredLeaderNotAvailable,
    /// No replica may become leader.
    EligibleLeadersNotAvailable,
    /// The partition is already led by the replica the election would pick.
    ElectionNotNeeded,
    /// Any other server-side failure.
    UnknownServerError,
    /// A number this client does not know (a newer broker).
    Unrecognized(i32),
}

impl ErrorCode {
    /// Maps the wire value of `tributary.v1.ErrorCode`.
    pub fn from_wire(value: i32) -> ErrorCode {
        use pb::ErrorCode as P;
        let Ok(known) = P::try_from(value) else {
            return ErrorCode::Unrecognized(value);
        };
        match known {
            P::None => ErrorCode::None,
            P::OffsetOutOfRange => ErrorCode::OffsetOutOfRange,
            P::CorruptMessage => ErrorCode::CorruptMessage,
            P::UnknownTopicOrPartition => ErrorCode::UnknownTopicOrPartition,
            P::LeaderNotAvailable => ErrorCode::LeaderNotAvailable,
            P::NotLeaderOrFollower => ErrorCode::NotLeaderOrFollower,
            P::BrokerNotAvailable => ErrorCode::BrokerNotAvailable,
            P::RequestTimedOut => ErrorCode::RequestTimedOut,
            P::MessageTooLarge => ErrorCode::MessageTooLarge,
            P::StaleControllerEpoch => ErrorCode::StaleControllerEpoch,
            P::InvalidTopicException => ErrorCode::InvalidTopic,
            P::RecordListTooLarge => ErrorCode::RecordListTooLarge,
            P::NotEnoughReplicas => ErrorCode::NotEnoughReplicas,
            P::NotEnoughReplicasAfterAppend => ErrorCode::NotEnoughReplicasAfterAppend,
            P::InvalidRequiredAcks => ErrorCode::InvalidRequiredAcks,
            P::InvalidTimestamp => ErrorCode::InvalidTimestamp,
            P::UnsupportedVersion => ErrorCode::UnsupportedVersion,
            P::TopicAlreadyExists => ErrorCode::TopicAlreadyExists,
            P::InvalidPartitions => ErrorCode::InvalidPartitions,
            P::InvalidReplicationFactor => ErrorCode::InvalidReplicationFactor,
            P::InvalidReplicaAssignment => ErrorCode::InvalidReplicaAssignment,
            P::InvalidConfig => ErrorCode::InvalidConfig,
            P::InvalidRequest => ErrorCode::InvalidRequest,
            P::OutOfOrderSequenceNumber => ErrorCode::OutOfOrderSequenceNumber,
            P::DuplicateSequenceNumber => ErrorCode::DuplicateSequenceNumber,
            P::InvalidProducerEpoch => ErrorCode::InvalidProducerEpoch,
            P::KafkaStorageError => ErrorCode::KafkaStorageError,
            P::UnknownProducerId => ErrorCode::UnknownProducerId,
            P::TopicDeletionDisabled => ErrorCode::TopicDeletionDisabled,
            P::NotController => ErrorCode::NotController,
            P::StaleBrokerEpoch => ErrorCode::StaleBrokerEpoch,
            P::FencedLeaderEpoch => ErrorCode::FencedLeaderEpoch,
            P::UnknownLeaderEpoch => ErrorCode::UnknownLeaderEpoch,
            P::UnsupportedCompressionType => ErrorCode::UnsupportedCompressionType,
            P::PreferredLeaderNotAvailable => ErrorCode::PreferredLeaderNotAvailable,
            P::EligibleLeadersNotAvailable => ErrorCode::EligibleLeadersNotAvailable,
            P::ElectionNotNeeded => ErrorCode::ElectionNotNeeded,
            P::OffsetMetadataTooLarge => ErrorCode::OffsetMetadataTooLarge,
            P::CoordinatorLoadInProgress => ErrorCode::CoordinatorLoadInProgress,
            P::CoordinatorNotAvailable => ErrorCode::CoordinatorNotAvailable,
            P::NotCoordinator => ErrorCode::NotCoordinator,
            P::IllegalGeneration => ErrorCode::IllegalGeneration,
            P::InconsistentGroupProtocol => ErrorCode::InconsistentGroupProtocol,
            P::InvalidSessionTimeout => ErrorCode::InvalidSessionTimeout,
            P::MemberIdRequired => ErrorCode::MemberIdRequired,
            P::InvalidGroupId => ErrorCode::InvalidGroupId,
            P::UnknownMemberId => ErrorCode::UnknownMemberId,
            P::RebalanceInProgress => ErrorCode::RebalanceInProgress,
            P::InvalidCommitOffsetSize => ErrorCode::InvalidCommitOffsetSize,
            P::NonEmptyGroup => ErrorCode::NonEmptyGroup,
            P::GroupIdNotFound => ErrorCode::GroupIdNotFound,
            P::UnknownServerError => ErrorCode::UnknownServerError,
        }
    }

    /// Kafka's numeric code (`UnknownServerError` is -1 there, 1000 on our wire; this returns
    /// the wire value).
    pub fn wire_value(self) -> i32 {
        use pb::ErrorCode as P;
        let known = match self {
            ErrorCode::None => P::None,
            ErrorCode::OffsetOutOfRange => P::OffsetOutOfRange,
            ErrorCode::CorruptMessage => P::CorruptMessage,
            ErrorCode::UnknownTopicOrPartition => P::UnknownTopicOrPartition,
            ErrorCode::LeaderNotAvailable => P::LeaderNotAvailable,
            ErrorCode::NotLeaderOrFollower => P::NotLeaderOrFollower,
            ErrorCode::BrokerNotAvailable => P::BrokerNotAvailable,
            ErrorCode::RequestTimedOut => P::RequestTimedOut,
            ErrorCode::MessageTooLarge => P::MessageTooLarge,
            ErrorCode::StaleControllerEpoch => P::StaleControllerEpoch,
            ErrorCode::InvalidTopic => P::InvalidTopicException,
            ErrorCode::RecordListTooLarge => P::RecordListTooLarge,
            ErrorCode::NotEnoughReplicas => P::NotEnoughReplicas,
            ErrorCode::NotEnoughReplicasAfterAppend => P::NotEnoughReplicasAfterAppend,
            ErrorCode::InvalidRequiredAcks => P::InvalidRequiredAcks,
            ErrorCode::InvalidTimestamp => P::InvalidTimestamp,
            ErrorCode::UnsupportedVersion => P::UnsupportedVersion,
            ErrorCode::TopicAlreadyExists => P::TopicAlreadyExists,
            ErrorCode::InvalidPartitions => P::InvalidPartitions,
            ErrorCode::InvalidReplicationFactor => P::InvalidReplicationFactor,
            ErrorCode::InvalidReplicaAssignment => P::InvalidReplicaAssignment,
            ErrorCode::InvalidConfig => P::InvalidConfig,
            ErrorCode::InvalidRequest => P::InvalidRequest,
            ErrorCode::OutOfOrderSequenceNumber => P::OutOfOrderSequenceNumber,
            ErrorCode::DuplicateSequenceNumber => P::DuplicateSequenceNumber,
            ErrorCode::InvalidProducerEpoch => P::InvalidProducerEpoch,
            ErrorCode::KafkaStorageError => P::KafkaStorageError,
            ErrorCode::UnknownProducerId => P::UnknownProducerId,
            ErrorCode::TopicDeletionDisabled => P::TopicDeletionDisabled,
            ErrorCode::NotController => P::NotController,
            ErrorCode::StaleBrokerEpoch => P::StaleBrokerEpoch,
            ErrorCode::FencedLeaderEpoch => P::FencedLeaderEpoch,
            ErrorCode::UnknownLeaderEpoch => P::UnknownLeaderEpoch,
            ErrorCode::UnsupportedCompressionType => P::UnsupportedCompressionType,
            ErrorCode::PreferredLeaderNotAvailable => P::PreferredLeaderNotAvailable,
            ErrorCode::EligibleLeadersNotAvailable => P::EligibleLeadersNotAvailable,
            ErrorCode::ElectionNotNeeded => P::ElectionNotNeeded,
            ErrorCode::OffsetMetadataTooLarge => P::OffsetMetadataTooLarge,
            ErrorCode::CoordinatorLoadInProgress => P::CoordinatorLoadInProgress,
            ErrorCode::CoordinatorNotAvailable => P::CoordinatorNotAvailable,
            ErrorCode::NotCoordinator => P::NotCoordinator,
            ErrorCode::IllegalGeneration => P::IllegalGeneration,
            ErrorCode::InconsistentGroupProtocol => P::InconsistentGroupProtocol,
            ErrorCode::InvalidSessionTimeout => P::InvalidSessionTimeout,
            ErrorCode::MemberIdRequired => P::MemberIdRequired,
            ErrorCode::InvalidGroupId => P::InvalidGroupId,
            ErrorCode::UnknownMemberId => P::UnknownMemberId,
            ErrorCode::RebalanceInProgress => P::RebalanceInProgress,
            ErrorCode::InvalidCommitOffsetSize => P::InvalidCommitOffsetSize,
            ErrorCode::NonEmptyGroup => P::NonEmptyGroup,
            ErrorCode::GroupIdNotFound => P::GroupIdNotFound,
            ErrorCode::UnknownServerError => P::UnknownServerError,
            ErrorCode::Unrecognized(value) => return value,
        };
        known as i32
    }

    /// Whether the condition is transient, so the same request may succeed later (Kafka's
    /// `RetriableException` subclasses).
    pub fn is_retriable(self) -> bool {
        matches!(
            self,
            ErrorCode::CorruptMessage
                | ErrorCode::UnknownTopicOrPartition
                | ErrorCode::LeaderNotAvailable
                | ErrorCode::NotLeaderOrFollower
                | ErrorCode::RequestTimedOut
                | ErrorCode::NotEnoughReplicas
                | ErrorCode::NotEnoughReplicasAfterAppend
                | ErrorCode::KafkaStorageError
                | ErrorCode::FencedLeaderEpoch
                | ErrorCode::UnknownLeaderEpoch
                | ErrorCode::CoordinatorLoadInProgress
                | ErrorCode::CoordinatorNotAvailable
                | ErrorCode::NotCoordinator
        )
    }

    /// Whether the group coordinator may have moved, so the client should look it up again
    /// (FindCoordinator) before retrying.
    pub fn needs_coordinator_lookup(self) -> bool {
        matches!(
            self,
            ErrorCode::CoordinatorNotAvailable | ErrorCode::NotCoordinator
        )
    }

    /// Whether the client should refresh its metadata (the leader may have moved) before
    /// retrying.
    pub fn needs_metadata_refresh(self) -> bool {
        matches!(
            self,
            ErrorCode::UnknownTopicOrPartition
                | ErrorCode::LeaderNotAvailable
                | ErrorCode::NotLeaderOrFollower
                | ErrorCode::KafkaStorageError
                | ErrorCode::FencedLeaderEpoch
                | ErrorCode::UnknownLeaderEpoch
        )
    }

    /// The protobuf name without its prefix, e.g. `NOT_LEADER_OR_FOLLOWER`.
    pub fn name(self) -> String {
        match pb::ErrorCode::try_from(self.wire_value()) {
            Ok(code) => code
                .as_str_name()
                .trim_start_matches("ERROR_CODE_")
                .to_owned(),
            Err(_) => format!("UNRECOGNIZED({})", self.wire_value()),
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

/// `Ok(())` for `NONE`, else a [`ClientError::Broker`].
/// `None` for `NONE`, else the code and message (for results kept per partition).
pub(crate) fn error_of_result(code: i32, message: String) -> Option<(ErrorCode, String)> {
    match ErrorCode::from_wire(code) {
        ErrorCode::None => None,
        code => Some((code, message)),
    }
}

pub(crate) fn check(
    code: i32,
    message: &str,
    topic: &str,
    partition: Option<i32>,
) -> Result<(), ClientError> {
    match ErrorCode::from_wire(code) {
        ErrorCode::None => Ok(()),
        code => Err(ClientError::Broker {
            topic: topic.to_owned(),
            partition,
            code,
            message: message.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_wire_code_round_trips() {
        for value in [
            0, 1, 2, 3, 5, 6, 7, 8, 10, 11, 12, 14, 15, 16, 17, 18, 19, 20, 21, 22, 24, 25, 27, 28,
            32, 35, 36, 37, 38, 39, 40, 41, 42, 56, 68, 69, 73, 74, 75, 76, 77, 80, 83, 84, 1000,
        ] {
            let code = ErrorCode::from_wire(value);
            assert!(!matches!(code, ErrorCode::Unrecognized(_)), "{value}");
            assert_eq!(code.wire_value(), value);
        }
        assert_eq!(ErrorCode::from_wire(4), ErrorCode::Unrecognized(4));
        assert_eq!(ErrorCode::from_wire(4).wire_value(), 4);
    }

    #[test]
    fn names_and_retriability() {
        let table = [
            (6, "NOT_LEADER_OR_FOLLOWER", true, true),
            (1, "OFFSET_OUT_OF_RANGE", false, false),
            (7, "REQUEST_TIMED_OUT", true, false),
            (36, "TOPIC_ALREADY_EXISTS", false, false),
            (19, "NOT_ENOUGH_REPLICAS", true, false),
            (14, "COORDINATOR_LOAD_IN_PROGRESS", true, false),
            (15, "COORDINATOR_NOT_AVAILABLE", true, false),
            (16, "NOT_COORDINATOR", true, false),
            (22, "ILLEGAL_GENERATION", false, false),
            (25, "UNKNOWN_MEMBER_ID", false, false),
            (1000, "UNKNOWN_SERVER_ERROR", false, false),
            (999, "UNRECOGNIZED(999)", false, false),
        ];
        for (value, name, retriable, refresh) in table {
            let code = ErrorCode::from_wire(value);
            assert_eq!(code.to_string(), name);
            assert_eq!(code.is_retriable(), retriable, "{name}");
            assert_eq!(code.needs_metadata_refresh(), refresh, "{name}");
        }
    }

    #[test]
    fn check_maps_codes_to_broker_errors() {
        assert!(check(0, "", "t", Some(0)).is_ok());
        let error = check(3, "no such topic", "t", Some(2)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "t-2: UNKNOWN_TOPIC_OR_PARTITION: no such topic"
        );
        assert_eq!(error.error_code(), Some(ErrorCode::UnknownTopicOrPartition));
        assert!(error.is_retriable());
        let error = check(36, "exists", "t", None).unwrap_err();
        assert_eq!(
            error.to_string(),
            "topic \"t\": TOPIC_ALREADY_EXISTS: exists"
        );
        assert!(!error.is_retriable());
        let error = check(1, "", "t", Some(0)).unwrap_err();
        assert_eq!(error.to_string(), "t-0: OFFSET_OUT_OF_RANGE");
    }

    #[test]
    fn which_errors_refresh_metadata() {
        let rpc = |source| ClientError::Rpc {
            operation: "Produce",
            source,
        };
        let table = [
            (check(6, "", "t", Some(0)).unwrap_err(), true),
            (check(5, "", "t", Some(0)).unwrap_err(), true),
            (check(7, "", "t", Some(0)).unwrap_err(), false),
            (check(1, "", "t", Some(0)).unwrap_err(), false),
            (rpc(tonic::Status::unavailable("connection refused")), true),
            // Answered by a broker: not a transport failure.
            (rpc(tonic::Status::invalid_argument("bad")), false),
            (rpc(tonic::Status::internal("bug")), false),
            (
                rpc(tonic::Status::from_error(Box::new(std::io::Error::from(
                    std::io::ErrorKind::ConnectionReset,
                )))),
                true,
            ),
            (
                ClientError::StreamClosed {
                    operation: "ProduceStream",
                },
                false,
            ),
        ];
        for (error, expected) in table {
            assert_eq!(error.needs_metadata_refresh(), expected, "{error:?}");
        }
    }
}
