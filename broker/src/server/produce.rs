//! `Produce` / `ProduceStream`: validate, append to the leader's log, answer per partition.
//! A partition this broker does not lead gets NOT_LEADER_OR_FOLLOWER naming the leader.

use std::collections::HashSet;

use bytes::BytesMut;
use tonic::Status;
use tributary_proto::v1::{
    ErrorCode, PartitionProduceData, PartitionProduceResponse, ProduceRequest, ProduceResponse,
    TopicProduceResponse,
};
use tributary_record::{BatchBuilder, Header, Record};

use super::errors::{PartitionError, invalid_argument};
use super::leadership::{from_append_error, leader_partition};
use crate::log::{AppendInfo, TopicPartition};
use crate::state::{BrokerState, now_ms};

/// Handles one produce request.
pub async fn produce(
    state: &BrokerState,
    request: ProduceRequest,
) -> Result<ProduceResponse, Status> {
    check_shape(&request)?;
    let acks = request.acks;
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic_data in request.topics {
        let mut partitions = Vec::with_capacity(topic_data.partitions.len());
        for data in topic_data.partitions {
            let partition = data.partition;
            let result = if !matches!(acks, -1..=1) {
                Err(PartitionError::new(
                    ErrorCode::InvalidRequiredAcks,
                    format!("acks={acks} is not valid; use -1 (all), 0 or 1"),
                ))
            } else {
                append(state, &topic_data.topic, data, acks)
            };
            partitions.push(partition_response(partition, acks, result));
        }
        topics.push(TopicProduceResponse {
            topic: topic_data.topic,
            partitions,
        });
    }
    Ok(ProduceResponse {
        request_id: request.request_id,
        topics,
    })
}

/// Refuses requests that are malformed as a whole: they change nothing.
fn check_shape(request: &ProduceRequest) -> Result<(), Status> {
    if request.timeout_ms < 0 {
        return Err(invalid_argument(format!(
            "timeout_ms must be >= 0, got {}",
            request.timeout_ms
        )));
    }
    let mut seen = HashSet::new();
    for (t, topic) in request.topics.iter().enumerate() {
        if topic.topic.is_empty() {
            return Err(invalid_argument(format!("topics[{t}].topic is empty")));
        }
        for p in &topic.partitions {
            if !seen.insert((topic.topic.as_str(), p.partition)) {
                return Err(invalid_argument(format!(
                    "topic {:?} partition {} appears more than once in the request",
                    topic.topic, p.partition
                )));
            }
        }
    }
    Ok(())
}

fn append(
    state: &BrokerState,
    topic: &str,
    data: PartitionProduceData,
    acks: i32,
) -> Result<AppendInfo, PartitionError> {
    let tp = TopicPartition {
        topic: topic.to_owned(),
        partition: data.partition,
    };
    let partition = leader_partition(state, &tp)?;
    let now = now_ms();
    let batches = match (data.batches.is_empty(), data.records.is_empty()) {
        (false, true) => BytesMut::from(&data.batches[..]),
        (true, false) => encode_structured(data.records, now)?,
        (false, false) => {
            return Err(PartitionError::new(
                ErrorCode::InvalidRequest,
                format!("{tp}: set either `batches` or `records`, not both"),
            ));
        }
        (true, true) => {
            return Err(PartitionError::new(
                ErrorCode::InvalidRequest,
                format!("{tp}: no records to append"),
            ));
        }
    };
    // acks=-1: the ISR as the controller last set it must reach min.insync.replicas.
    let min_insync_replicas =
        (acks == -1).then(|| usize::try_from(state.min_insync_replicas(topic)).unwrap_or(0));
    partition
        .append_as_leader(batches, now, min_insync_replicas)
        .map_err(|e| from_append_error(state, &e))
}

/// Encodes structured records into one batch (for clients without a batch encoder).
fn encode_structured(
    records: Vec<tributary_proto::v1::Record>,
    now: i64,
) -> Result<BytesMut, PartitionError> {
    let mut builder =
        BatchBuilder::with_capacity(64 + records.iter().map(approximate_size).sum::<usize>());
    for record in records {
        builder.push(&Record {
            key: record.key,
            value: record.value,
            timestamp: record.timestamp_ms.unwrap_or(now),
            headers: record
                .headers
                .into_iter()
                .map(|h| Header {
                    key: h.key,
                    value: h.value,
                })
                .collect(),
        });
    }
    Ok(BytesMut::from(&builder.build_vec()[..]))
}

fn approximate_size(record: &tributary_proto::v1::Record) -> usize {
    24 + record.key.as_ref().map_or(0, |k| k.len())
        + record.value.as_ref().map_or(0, |v| v.len())
        + record
            .headers
            .iter()
            .map(|h| h.key.len() + h.value.as_ref().map_or(0, |v| v.len()) + 8)
            .sum::<usize>()
}

fn partition_response(
    partition: i32,
    acks: i32,
    result: Result<AppendInfo, PartitionError>,
) -> PartitionProduceResponse {
    match result {
        Ok(info) if acks == 0 => PartitionProduceResponse {
            partition,
            error_code: ErrorCode::None as i32,
            error_message: String::new(),
            base_offset: -1,
            last_offset: -1,
            log_append_time_ms: -1,
            log_start_offset: info.log_start_offset,
        },
        Ok(info) => PartitionProduceResponse {
            partition,
            error_code: ErrorCode::None as i32,
            error_message: String::new(),
            base_offset: info.base_offset,
            last_offset: info.last_offset,
            log_append_time_ms: info.log_append_time,
            log_start_offset: info.log_start_offset,
        },
        Err(error) => PartitionProduceResponse {
            partition,
            error_code: error.code as i32,
            error_message: error.message,
            base_offset: -1,
            last_offset: -1,
            log_append_time_ms: -1,
            log_start_offset: -1,
        },
    }
}
