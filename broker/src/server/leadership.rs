//! Whether a data-path request (Produce, Fetch, ListOffsets) reached the partition's leader,
//! and the NOT_LEADER_OR_FOLLOWER answer, naming the leader, when it did not.

use std::sync::Arc;

use tributary_proto::v1::ErrorCode;
use tributary_zk_layout::BrokerId;

use super::errors::{PartitionError, from_log_error};
use crate::log::TopicPartition;
use crate::replica::{AppendError, Partition, Role};
use crate::state::BrokerState;

/// The answer for a partition this broker does not host: NOT_LEADER_OR_FOLLOWER naming the
/// leader if the metadata cache knows the partition (`cached_leader`), else
/// UNKNOWN_TOPIC_OR_PARTITION.
fn not_hosted_error(tp: &TopicPartition, cached_leader: Option<BrokerId>) -> PartitionError {
    match cached_leader {
        Some(leader) => not_leader_error(tp, (leader != BrokerId::NONE).then_some(leader)),
        None => PartitionError::new(
            ErrorCode::UnknownTopicOrPartition,
            format!("{tp}: unknown topic or partition (not in this broker's metadata)"),
        ),
    }
}

/// The leader to name when this broker hosts the partition but is not its leader: the
/// metadata cache's if it knows the partition (UpdateMetadata follows every leadership
/// change), else the one LeaderAndIsr gave the hosted replica.
fn leader_to_name(partition_leader: BrokerId, cached_leader: Option<BrokerId>) -> Option<BrokerId> {
    let leader = cached_leader.unwrap_or(partition_leader);
    (leader != BrokerId::NONE).then_some(leader)
}

fn cached_leader(state: &BrokerState, tp: &TopicPartition) -> Option<BrokerId> {
    state.metadata.partition(tp).map(|p| BrokerId(p.leader))
}

/// The NOT_LEADER_OR_FOLLOWER error for `tp`, naming `leader` when there is one.
pub fn not_leader_error(tp: &TopicPartition, leader: Option<BrokerId>) -> PartitionError {
    let message = match leader {
        Some(leader) => {
            format!("{tp}: this broker is not the leader; the leader is broker {leader}")
        }
        None => {
            format!("{tp}: this broker is not the leader; the partition has no leader right now")
        }
    };
    PartitionError::new(ErrorCode::NotLeaderOrFollower, message)
}

/// The partition if this broker hosts it (as leader or follower); otherwise NOT_LEADER_OR_FOLLOWER if
/// the metadata cache knows it, UNKNOWN_TOPIC_OR_PARTITION if not.
pub fn hosted_partition(
    state: &BrokerState,
    tp: &TopicPartition,
) -> Result<Arc<Partition>, PartitionError> {
    // A stopped replica (its broker shutting down, or its topic being deleted) serves nothing.
    state
        .replicas
        .get(tp)
        .filter(|p| p.role() != Role::Stopped)
        .ok_or_else(|| not_hosted_error(tp, cached_leader(state, tp)))
}

/// NOT_LEADER_OR_FOLLOWER if this broker does not lead the hosted `partition`.
pub fn check_leader(state: &BrokerState, partition: &Partition) -> Result<(), PartitionError> {
    let role = partition.role();
    if role == Role::Leader {
        return Ok(());
    }
    let tp = partition.topic_partition();
    let leader = leader_to_name(partition.leader(), cached_leader(state, tp));
    Err(not_leader_error(tp, leader))
}

/// The partition if this broker leads it, otherwise the error to answer.
pub fn leader_partition(
    state: &BrokerState,
    tp: &TopicPartition,
) -> Result<Arc<Partition>, PartitionError> {
    let partition = hosted_partition(state, tp)?;
    check_leader(state, &partition)?;
    Ok(partition)
}

/// The requester's idea of the current leader epoch against the partition's: older →
/// FENCED_LEADER_EPOCH (it missed a leader change), newer → UNKNOWN_LEADER_EPOCH (this broker
/// has not heard of it yet); -1 skips the check.
pub fn check_current_epoch(
    tp: &TopicPartition,
    requested: i32,
    current: i32,
) -> Result<(), PartitionError> {
    if requested >= 0 && requested < current {
        return Err(PartitionError::new(
            ErrorCode::FencedLeaderEpoch,
            format!("{tp}: request leader epoch {requested} is older than the current {current}"),
        ));
    }
    if requested > current {
        return Err(PartitionError::new(
            ErrorCode::UnknownLeaderEpoch,
            format!("{tp}: request leader epoch {requested} is newer than the current {current}"),
        ));
    }
    Ok(())
}

/// Maps a refused or failed append.
pub fn from_append_error(state: &BrokerState, error: &AppendError) -> PartitionError {
    match error {
        AppendError::NotLeader {
            topic_partition,
            leader,
            ..
        } => not_leader_error(
            topic_partition,
            leader_to_name(*leader, cached_leader(state, topic_partition)),
        ),
        AppendError::NotEnoughReplicas { .. } => {
            PartitionError::new(ErrorCode::NotEnoughReplicas, error.to_string())
        }
        AppendError::Log(log_error) => from_log_error(log_error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_not_hosted_are_redirected_when_known() {
        let tp = TopicPartition::new("t", 0);
        let table = [
            (
                Some(BrokerId(2)),
                ErrorCode::NotLeaderOrFollower,
                "broker 2",
            ),
            (
                Some(BrokerId::NONE),
                ErrorCode::NotLeaderOrFollower,
                "no leader",
            ),
            (None, ErrorCode::UnknownTopicOrPartition, "unknown"),
        ];
        for (cached, code, says) in table {
            let error = not_hosted_error(&tp, cached);
            assert_eq!(error.code, code, "{cached:?}");
            assert!(error.message.contains(says), "{}", error.message);
        }
    }

    #[test]
    fn the_cached_leader_is_named_first_then_the_partitions_own() {
        let table = [
            (2, Some(BrokerId(3)), Some(BrokerId(3))),
            (2, None, Some(BrokerId(2))),
            (-1, None, None),
            (2, Some(BrokerId::NONE), None),
        ];
        for (own, cached, expected) in table {
            assert_eq!(leader_to_name(BrokerId(own), cached), expected);
        }
    }

    #[test]
    fn not_leader_names_the_leader() {
        let tp = TopicPartition::new("orders", 3);
        let error = not_leader_error(&tp, Some(BrokerId(2)));
        assert_eq!(error.code, ErrorCode::NotLeaderOrFollower);
        assert!(error.message.contains("broker 2"), "{}", error.message);
        assert!(error.message.contains("orders-3"), "{}", error.message);
    }
}
