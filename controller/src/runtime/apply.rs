//! Applies a decision's ZooKeeper writes through the [`FencedWriter`].

use std::collections::BTreeSet;

use tributary_zk_layout::payloads::PartitionState;
use tributary_zk_layout::{PartitionId, paths};

use crate::cluster::{ClusterModel, TopicPartition};
use crate::decision::ZkWrite;
use crate::model::LeaderAndIsr;
use crate::zk::{FencedWriter, ZkError};

/// Writes `writes` in order. Returns the partitions whose conditional write lost a race (the
/// znode changed under us, BADVERSION, or a state to create already existed): their requests
/// must be dropped and their state re-read. Any other error stops the writes and is returned:
/// `ControllerMoved` means another controller is acting, and anything else leaves ZooKeeper and
/// the model out of step, so the caller resigns and the next controller reloads.
pub(crate) async fn apply_writes(
    writer: &FencedWriter,
    model: &mut ClusterModel,
    writes: &[ZkWrite],
) -> Result<BTreeSet<TopicPartition>, ZkError> {
    let mut lost = BTreeSet::new();
    for write in writes {
        match write {
            ZkWrite::CreatePartitionStates { topic, states } => {
                let payloads: Vec<(PartitionId, PartitionState)> =
                    states.iter().map(|(p, s)| (*p, payload(s))).collect();
                match writer.create_partition_states(topic, &payloads).await {
                    Ok(versions) => {
                        for ((partition, _), version) in payloads.iter().zip(versions) {
                            model.record_written(topic, *partition, version);
                        }
                    }
                    Err(ZkError::NodeExists { .. }) => {
                        lost.extend(
                            states
                                .keys()
                                .map(|p| TopicPartition::new(topic.clone(), *p)),
                        );
                    }
                    Err(error) => return Err(error),
                }
            }
            ZkWrite::SetPartitionState {
                partition,
                state,
                expected_version,
            } => match writer
                .set_partition_state(
                    &partition.topic,
                    partition.partition,
                    &payload(state),
                    *expected_version,
                )
                .await
            {
                Ok(version) => {
                    model.record_written(&partition.topic, partition.partition, version);
                }
                Err(ZkError::BadVersion { .. } | ZkError::NoNode { .. }) => {
                    lost.insert(partition.clone());
                }
                Err(error) => return Err(error),
            },
            ZkWrite::DeleteTopicZnodes { topic } => writer.delete_topic_znodes(topic).await?,
            ZkWrite::DeleteAdminDeleteTopic { topic } => {
                writer
                    .delete_recursively(&paths::delete_topic(topic))
                    .await?;
            }
            ZkWrite::DeleteAdminPreferredReplicaElection => {
                writer
                    .delete_recursively(paths::preferred_replica_election())
                    .await?;
            }
        }
    }
    Ok(lost)
}

/// The znode payload of a partition state.
pub(crate) fn payload(state: &LeaderAndIsr) -> PartitionState {
    PartitionState::new(
        state.leader,
        state.leader_epoch,
        state.isr.clone(),
        state.controller_epoch,
    )
}
