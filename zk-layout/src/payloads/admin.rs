//! Admin requests and notifications: `/admin/*`, `/isr_change_notification/*`,
//! `/log_dir_event_notification/*`.

use serde::{Deserialize, Serialize};

use super::{Payload, PayloadKind};
use crate::ids::{BrokerId, PartitionId};

/// `/admin/delete_topics/<topic>` carries no data: its existence is the request.
pub const DELETE_TOPIC_DATA: &[u8] = b"";

/// A `{"topic":"orders","partition":0}` entry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TopicPartitionRef {
    pub topic: String,
    pub partition: PartitionId,
}

impl TopicPartitionRef {
    pub fn new(topic: impl Into<String>, partition: PartitionId) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}

/// `/isr_change_notification/isr_change_<seq>` (PERSISTENT_SEQUENTIAL), v1: partitions whose
/// ISR a leader changed. `{"version":1,"partitions":[{"topic":"orders","partition":0}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IsrChangeNotification {
    pub version: i32,
    pub partitions: Vec<TopicPartitionRef>,
}

impl IsrChangeNotification {
    pub const VERSION: i32 = 1;

    pub fn new(partitions: Vec<TopicPartitionRef>) -> Self {
        Self {
            version: Self::VERSION,
            partitions,
        }
    }
}

impl Payload for IsrChangeNotification {
    const KIND: PayloadKind = PayloadKind::IsrChangeNotification;
    const READABLE_VERSIONS: std::ops::RangeInclusive<i32> = 1..=1;

    fn version(&self) -> i64 {
        self.version.into()
    }
}

/// `/admin/preferred_replica_election` (PERSISTENT), v1: partitions whose preferred replica
/// should become leader; the controller deletes the node after processing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreferredReplicaElection {
    pub version: i32,
    pub partitions: Vec<TopicPartitionRef>,
}

impl PreferredReplicaElection {
    pub const VERSION: i32 = 1;

    pub fn new(partitions: Vec<TopicPartitionRef>) -> Self {
        Self {
            version: Self::VERSION,
            partitions,
        }
    }
}

impl Payload for PreferredReplicaElection {
    const KIND: PayloadKind = PayloadKind::PreferredReplicaElection;
    const READABLE_VERSIONS: std::ops::RangeInclusive<i32> = 1..=1;

    fn version(&self) -> i64 {
        self.version.into()
    }
}

/// One partition's target replicas in `/admin/reassign_partitions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionReassignment {
    pub topic: String,
    pub partition: PartitionId,
    pub replicas: Vec<BrokerId>,
}

/// `/admin/reassign_partitions` (PERSISTENT), v1, the legacy reassignment request:
/// `{"version":1,"partitions":[{"topic":"orders","partition":0,"replicas":[4,5,6]}]}`. The
/// controller removes finished partitions and deletes the node when it is empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReassignPartitions {
    pub version: i32,
    pub partitions: Vec<PartitionReassignment>,
}

impl ReassignPartitions {
    pub const VERSION: i32 = 1;

    pub fn new(partitions: Vec<PartitionReassignment>) -> Self {
        Self {
            version: Self::VERSION,
            partitions,
        }
    }
}

impl Payload for ReassignPartitions {
    const KIND: PayloadKind = PayloadKind::ReassignPartitions;
    const READABLE_VERSIONS: std::ops::RangeInclusive<i32> = 1..=1;

    fn version(&self) -> i64 {
        self.version.into()
    }
}

/// `/log_dir_event_notification/log_dir_event_<seq>` (PERSISTENT_SEQUENTIAL), v1:
/// `{"version":1,"broker":3,"event":1}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogDirEventNotification {
    pub version: i32,
    pub broker: BrokerId,
    /// 1 = LogDirFailure, the only event Kafka defines.
    pub event: i32,
}

impl LogDirEventNotification {
    pub const VERSION: i32 = 1;
    pub const LOG_DIR_FAILURE: i32 = 1;

    pub fn failure(broker: BrokerId) -> Self {
        Self {
            version: Self::VERSION,
            broker,
            event: Self::LOG_DIR_FAILURE,
        }
    }
}

impl Payload for LogDirEventNotification {
    const KIND: PayloadKind = PayloadKind::LogDirEventNotification;
    const READABLE_VERSIONS: std::ops::RangeInclusive<i32> = 1..=1;

    fn version(&self) -> i64 {
        self.version.into()
    }
}
