//! `OffsetForLeaderEpoch`: where a leader epoch ends in the leader's log, so a new follower can
//! truncate exactly the records the leader does not have (KIP-101, KIP-279).

use tonic::Status;
use tributary_proto::v1::{
    EpochEndOffset, ErrorCode, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse,
    OffsetForLeaderEpochTopicResult,
};

use super::errors::{PartitionError, invalid_argument};
use super::leadership::{check_current_epoch, leader_partition};
use crate::log::TopicPartition;
use crate::state::BrokerState;

/// Handles one OffsetForLeaderEpoch request; each partition is answered on its own.
pub fn offset_for_leader_epoch(
    state: &BrokerState,
    request: OffsetForLeaderEpochRequest,
) -> Result<OffsetForLeaderEpochResponse, Status> {
    for (t, topic) in request.topics.iter().enumerate() {
        if topic.topic.is_empty() {
            return Err(invalid_argument(format!("topics[{t}].topic is empty")));
        }
    }
    let topics = request
        .topics
        .into_iter()
        .map(|topic| OffsetForLeaderEpochTopicResult {
            partitions: topic
                .partitions
                .iter()
                .map(|p| {
                    let tp = TopicPartition::new(topic.topic.clone(), p.partition);
                    match end_offset(state, &tp, p.current_leader_epoch, p.leader_epoch) {
                        Ok((leader_epoch, end_offset)) => EpochEndOffset {
                            partition: p.partition,
                            error_code: ErrorCode::None as i32,
                            error_message: String::new(),
                            leader_epoch,
                            end_offset,
                        },
                        Err(e) => EpochEndOffset {
                            partition: p.partition,
                            error_code: e.code as i32,
                            error_message: e.message,
                            leader_epoch: -1,
                            end_offset: -1,
                        },
                    }
                })
                .collect(),
            topic: topic.topic,
        })
        .collect();
    Ok(OffsetForLeaderEpochResponse { topics })
}

/// `(epoch, end offset)` for `requested` in the leader's log; `(-1, -1)` when it knows no epoch
/// at or below it.
fn end_offset(
    state: &BrokerState,
    tp: &TopicPartition,
    current_leader_epoch: i32,
    requested: i32,
) -> Result<(i32, i64), PartitionError> {
    let partition = leader_partition(state, tp)?;
    check_current_epoch(tp, current_leader_epoch, partition.leader_epoch().0)?;
    Ok(partition
        .log()
        .end_offset_for_epoch(requested)
        .unwrap_or((-1, -1)))
}
