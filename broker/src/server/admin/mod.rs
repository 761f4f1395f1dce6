//! The Admin service, one file per request family. Any broker answers: writes go to ZooKeeper
//! through `tributary_controller::zk::admin` (unfenced, as Kafka's `AdminZkClient`), the
//! controller carries them out, and requests that change topics wait until this broker's
//! metadata cache shows the change ([`await_visible`]).
//!
//! What is shared here: the ZooKeeper session check, the mapping of ZooKeeper and placement
//! errors to per-topic codes, the request timeout, and duplicate detection.

mod configs;
mod create;
mod delete;
mod describe;
mod elect;
mod partitions;

use std::collections::HashMap;
use std::time::Duration;

use tributary_controller::placement::PlacementError;
use tributary_controller::zk::{AdminZkError, ZkClient, ZkError};
use tributary_proto::v1::ErrorCode;

use super::errors::{PartitionError, error_chain};
use crate::metadata_cache::MetadataSnapshot;
use crate::state::BrokerState;

pub use configs::{alter_configs, describe_configs};
pub use create::create_topics;
pub(crate) use create::{TopicDefaults, create_one, load_cluster};
pub use delete::delete_topics;
pub use describe::describe_topics;
pub use elect::elect_leaders;
pub use partitions::create_partitions;

/// Most partitions one topic may have (a guard against typos such as 1000000).
pub const MAX_PARTITIONS: i32 = 10_000;
/// The wait of CreateTopics, DeleteTopics and CreatePartitions when `timeout_ms` is 0 (Kafka's
/// admin client default).
pub const DEFAULT_TIMEOUT_MS: i32 = 30_000;

/// `timeout_ms` of a request (0 or negative → [`DEFAULT_TIMEOUT_MS`]).
fn request_timeout(timeout_ms: i32) -> Duration {
    let ms = if timeout_ms <= 0 {
        DEFAULT_TIMEOUT_MS
    } else {
        timeout_ms
    };
    Duration::from_millis(ms.unsigned_abs().into())
}

/// The current ZooKeeper session, or the retriable error every admin request gives between
/// sessions.
fn session(state: &BrokerState) -> Result<ZkClient, PartitionError> {
    state.zk_client().ok_or_else(|| {
        PartitionError::new(
            ErrorCode::RequestTimedOut,
            "this broker has no ZooKeeper session at the moment (reconnecting); retry",
        )
    })
}

/// A ZooKeeper failure as a per-topic error: retriable ones (connection loss, expiry) become
/// REQUEST_TIMED_OUT, the rest UNKNOWN_SERVER_ERROR; the message carries the cause chain.
fn zk_error(error: &ZkError) -> PartitionError {
    let code = if error.is_retriable() || error.is_session_lost() {
        ErrorCode::RequestTimedOut
    } else {
        ErrorCode::UnknownServerError
    };
    PartitionError::new(code, error_chain(error))
}

/// An admin write's refusal as a per-topic error.
fn admin_error(error: &AdminZkError) -> PartitionError {
    match error {
        AdminZkError::TopicExists { .. } => {
            PartitionError::new(ErrorCode::TopicAlreadyExists, error.to_string())
        }
        AdminZkError::UnknownTopic { .. } => {
            PartitionError::new(ErrorCode::UnknownTopicOrPartition, error.to_string())
        }
        AdminZkError::AssignmentChanged { .. } => {
            PartitionError::new(ErrorCode::RequestTimedOut, format!("{error}; retry"))
        }
        AdminZkError::Zk(zk) => zk_error(zk),
    }
}

/// A placement refusal as a per-topic error.
fn placement_error(error: &PlacementError) -> PartitionError {
    let code = match error {
        PlacementError::InvalidPartitionCount { .. }
        | PlacementError::PartitionCountNotIncreased { .. } => ErrorCode::InvalidPartitions,
        PlacementError::InvalidReplicationFactor { .. }
        | PlacementError::NoLiveBrokers
        | PlacementError::ReplicationFactorTooLarge { .. } => ErrorCode::InvalidReplicationFactor,
        PlacementError::EmptyExistingAssignment
        | PlacementError::ExistingAssignmentHasGap { .. } => ErrorCode::InvalidReplicaAssignment,
    };
    PartitionError::new(code, error.to_string())
}

/// Names that appear more than once in a request (each such entry fails with INVALID_REQUEST,
/// as Kafka does).
fn duplicated<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for name in names {
        *counts.entry(name).or_default() += 1;
    }
    let mut names: Vec<String> = counts
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(name, _)| name.to_owned())
        .collect();
    names.sort();
    names
}

/// The error of a name listed twice.
fn duplicate_error(name: &str) -> PartitionError {
    PartitionError::new(
        ErrorCode::InvalidRequest,
        format!("topic {name:?} appears more than once in the request"),
    )
}

/// Whether every partition `0..count` of `topic` has a leader in `snapshot`.
fn all_partitions_led(snapshot: &MetadataSnapshot, topic: &str, count: i32) -> bool {
    snapshot.topics.get(topic).is_some_and(|partitions| {
        (0..count).all(|p| {
            partitions
                .get(&p)
                .is_some_and(|partition| partition.leader >= 0)
        })
    })
}

/// Waits until `visible` holds in this broker's metadata cache or `deadline` passes; on
/// timeout the error says the change was `accepted` and is still in progress.
async fn await_visible(
    state: &BrokerState,
    deadline: tokio::time::Instant,
    visible: impl FnMut(&MetadataSnapshot) -> bool,
    in_progress: impl FnOnce() -> String,
) -> Result<(), PartitionError> {
    let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
    if state.metadata.wait_until(remaining, visible).await {
        Ok(())
    } else {
        Err(PartitionError::new(
            ErrorCode::RequestTimedOut,
            in_progress(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::metadata_cache::CachedPartition;

    #[test]
    fn timeouts_default_to_thirty_seconds() {
        assert_eq!(request_timeout(0), Duration::from_secs(30));
        assert_eq!(request_timeout(-5), Duration::from_secs(30));
        assert_eq!(request_timeout(1500), Duration::from_millis(1500));
    }

    #[test]
    fn duplicates_are_found_once_each() {
        assert_eq!(duplicated(["a", "b", "a", "c", "a", "b"]), vec!["a", "b"]);
        assert!(duplicated(["a", "b"]).is_empty());
    }

    #[test]
    fn a_topic_is_visible_when_every_partition_has_a_leader() {
        let partition = |leader| CachedPartition {
            leader,
            leader_epoch: 0,
            isr: vec![],
            replicas: vec![],
            offline_replicas: vec![],
            zk_version: 0,
        };
        let mut snapshot = MetadataSnapshot::default();
        assert!(!all_partitions_led(&snapshot, "t", 2));
        snapshot.topics.insert(
            "t".into(),
            BTreeMap::from([(0, partition(1)), (1, partition(-1))]),
        );
        assert!(!all_partitions_led(&snapshot, "t", 2));
        assert!(all_partitions_led(&snapshot, "t", 1));
        snapshot
            .topics
            .get_mut("t")
            .map(|t| t.insert(1, partition(2)));
        assert!(all_partitions_led(&snapshot, "t", 2));
        assert!(!all_partitions_led(&snapshot, "t", 3));
    }

    #[test]
    fn placement_errors_get_kafkas_codes() {
        let too_large = PlacementError::ReplicationFactorTooLarge {
            replication_factor: 3,
            live_brokers: 1,
        };
        let error = placement_error(&too_large);
        assert_eq!(error.code, ErrorCode::InvalidReplicationFactor);
        assert!(error.message.contains('3') && error.message.contains('1'));
        assert_eq!(
            placement_error(&PlacementError::PartitionCountNotIncreased {
                current: 3,
                requested: 2
            })
            .code,
            ErrorCode::InvalidPartitions
        );
    }
}
