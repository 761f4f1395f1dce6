//! `ListOffsets`: earliest, latest (high watermark) or first offset at a timestamp, answered
//! by the partition's leader only (others answer NOT_LEADER_OR_FOLLOWER naming the leader).

use tonic::Status;
use tributary_proto::v1::{
    ErrorCode, ListOffsetsPartitionResponse, ListOffsetsRequest, ListOffsetsResponse,
    ListOffsetsTopicResponse,
};

use super::errors::{PartitionError, from_log_error, invalid_argument};
use super::leadership::leader_partition;
use crate::log::TopicPartition;
use crate::state::BrokerState;

/// `timestamp` value asking for the earliest offset.
pub const EARLIEST: i64 = -2;
/// `timestamp` value asking for the latest offset.
pub const LATEST: i64 = -1;

/// Handles one ListOffsets request.
pub fn list_offsets(
    state: &BrokerState,
    request: ListOffsetsRequest,
) -> Result<ListOffsetsResponse, Status> {
    for (t, topic) in request.topics.iter().enumerate() {
        if topic.topic.is_empty() {
            return Err(invalid_argument(format!("topics[{t}].topic is empty")));
        }
        if let Some(p) = topic.partitions.iter().find(|p| p.timestamp < EARLIEST) {
            return Err(invalid_argument(format!(
                "topic {:?} partition {}: timestamp {} is not -2 (earliest), -1 (latest) or a time >= 0",
                topic.topic, p.partition, p.timestamp
            )));
        }
    }
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let result = lookup(state, &topic.topic, p.partition, p.timestamp);
                    match result {
                        Ok((offset, timestamp)) => ListOffsetsPartitionResponse {
                            partition: p.partition,
                            error_code: ErrorCode::None as i32,
                            error_message: String::new(),
                            offset,
                            timestamp,
                        },
                        Err(e) => ListOffsetsPartitionResponse {
                            partition: p.partition,
                            error_code: e.code as i32,
                            error_message: e.message,
                            offset: -1,
                            timestamp: -1,
                        },
                    }
                })
                .collect();
            ListOffsetsTopicResponse {
                topic: topic.topic,
                partitions,
            }
        })
        .collect();
    Ok(ListOffsetsResponse { topics })
}

fn lookup(
    state: &BrokerState,
    topic: &str,
    partition: i32,
    timestamp: i64,
) -> Result<(i64, i64), PartitionError> {
    let tp = TopicPartition {
        topic: topic.to_owned(),
        partition,
    };
    let p = leader_partition(state, &tp)?;
    let high_watermark = p.high_watermark();
    match timestamp {
        EARLIEST => Ok((p.log().log_start_offset(), -1)),
        LATEST => Ok((high_watermark, -1)),
        ts => match p
            .log()
            .offset_for_timestamp(ts)
            .map_err(|e| from_log_error(&e))?
        {
            // Only committed records are visible to consumers.
            Some((offset, found_ts)) if offset < high_watermark => Ok((offset, found_ts)),
            _ => Ok((-1, -1)),
        },
    }
}
