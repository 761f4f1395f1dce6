//! `Produce` / `ProduceStream`: validate, append to the leader's log, answer per partition.
//! A partition this broker does not lead gets NOT_LEADER_OR_FOLLOWER naming the leader.
//!
//! `acks=0` and `acks=1` are answered after the local append. `acks=-1` is refused with
//! NOT_ENOUGH_REPLICAS (nothing written) when the ISR is smaller than `min.insync.replicas`,
//! and otherwise answered once the high watermark passes the batch, i.e. every ISR member
//! has it (REQUEST_TIMED_OUT after `timeout_ms`, NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR
//! shrank below `min.insync.replicas` meanwhile).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tonic::Status;
use tributary_proto::v1::{
    ErrorCode, PartitionProduceData, PartitionProduceResponse, ProduceRequest, ProduceResponse,
    TopicProduceResponse,
};
use tributary_record::{BatchBuilder, Header, Record};

use super::errors::{PartitionError, invalid_argument};
use super::leadership::{check_leader, from_append_error, leader_partition, not_leader_error};
use crate::log::{AppendInfo, TopicPartition};
use crate::replica::Partition;
use crate::state::{BrokerState, now_ms};
use tokio::time::Instant;

/// How long an `acks=-1` produce waits for replication when the request says 0 (Kafka's
/// producer `request.timeout.ms` default).
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;

/// An `acks=-1` append waiting for the high watermark to pass it.
struct Replicating {
    topic_index: usize,
    partition_index: usize,
    partition: Arc<Partition>,
    info: AppendInfo,
    generation: u64,
    min_insync_replicas: usize,
}

/// Handles one produce request. `acks=-1` appends are answered once the high watermark
/// passes them (all waited for together, up to `timeout_ms`); the wait is asynchronous, so
/// other requests on the connection and the broker go on meanwhile.
pub async fn produce(
    state: &BrokerState,
    request: ProduceRequest,
) -> Result<ProduceResponse, Status> {
    check_shape(&request)?;
    let acks = request.acks;
    let timeout_ms = match request.timeout_ms {
        0 => DEFAULT_TIMEOUT_MS,
        ms => u64::try_from(ms).unwrap_or(DEFAULT_TIMEOUT_MS),
    };
    let deadline = Instant::now() + Duration::from_millis(timeout_ms);
    let mut topics = Vec::with_capacity(request.topics.len());
    let mut replicating = Vec::new();
    for (topic_index, topic_data) in request.topics.into_iter().enumerate() {
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
            let result = match result {
                Ok(appended) if acks == -1 => {
                    replicating.push(Replicating {
                        topic_index,
                        partition_index: partitions.len(),
                        info: appended.info.clone(),
                        partition: appended.partition,
                        generation: appended.generation,
                        min_insync_replicas: appended.min_insync_replicas,
                    });
                    Ok(appended.info)
                }
                other => other.map(|appended| appended.info),
            };
            partitions.push(partition_response(partition, acks, result));
        }
        topics.push(TopicProduceResponse {
            topic: topic_data.topic,
            partitions,
        });
    }
    let waited = futures::future::join_all(replicating.iter().map(|r| {
        wait_for_replication(
            state,
            &r.partition,
            r.info.last_offset + 1,
            r.generation,
            r.min_insync_replicas,
            deadline,
        )
    }))
    .await;
    for (r, outcome) in replicating.iter().zip(waited) {
        if let Err(error) = outcome {
            let slot = &mut topics[r.topic_index].partitions[r.partition_index];
            *slot = partition_response(slot.partition, acks, Err(error));
        }
    }
    Ok(ProduceResponse {
        request_id: request.request_id,
        topics,
    })
}

/// Waits until the high watermark reaches `required` (every ISR member has the batch), then
/// checks the ISR still has `min_insync_replicas` members (else
/// NOT_ENOUGH_REPLICAS_AFTER_APPEND: the records are in the log and committed, but were not
/// as durable as asked). Lost leadership → NOT_LEADER_OR_FOLLOWER; `deadline` →
/// REQUEST_TIMED_OUT. In both cases the records may or may not survive.
async fn wait_for_replication(
    state: &BrokerState,
    partition: &Partition,
    required: i64,
    generation: u64,
    min_insync_replicas: usize,
    deadline: Instant,
) -> Result<(), PartitionError> {
    let tp = partition.topic_partition();
    let mut changes = partition.subscribe();
    loop {
        if !partition.is_leader() || partition.leadership_generation() != generation {
            return Err(check_leader(state, partition)
                .err()
                .unwrap_or_else(|| not_leader_error(tp, None)));
        }
        if partition.high_watermark() >= required {
            let isr = partition.isr_size();
            if isr < min_insync_replicas {
                return Err(PartitionError::new(
                    ErrorCode::NotEnoughReplicasAfterAppend,
                    format!(
                        "{tp}: the records up to offset {} were written, but the ISR shrank to {isr} below min.insync.replicas={min_insync_replicas} while waiting",
                        required - 1
                    ),
                ));
            }
            return Ok(());
        }
        match tokio::time::timeout_at(deadline, changes.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(not_leader_error(tp, None)),
            Err(_) => {
                return Err(PartitionError::new(
                    ErrorCode::RequestTimedOut,
                    format!(
                        "{tp}: not replicated to all {} in-sync replicas in time (high watermark {}, needed {required}); the records may or may not be committed later",
                        partition.isr_size(),
                        partition.high_watermark()
                    ),
                ));
            }
        }
    }
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

/// A successful append.
struct Appended {
    info: AppendInfo,
    partition: Arc<Partition>,
    /// The partition's leadership generation when the append was accepted.
    generation: u64,
    min_insync_replicas: usize,
}

fn append(
    state: &BrokerState,
    topic: &str,
    data: PartitionProduceData,
    acks: i32,
) -> Result<Appended, PartitionError> {
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
    // acks=-1: the ISR must have min.insync.replicas members before anything is written.
    let min_insync = usize::try_from(state.min_insync_replicas(topic)).unwrap_or(0);
    let generation = partition.leadership_generation();
    let info = partition
        .append_as_leader(batches, now, (acks == -1).then_some(min_insync))
        .map_err(|e| from_append_error(state, &e))?;
    Ok(Appended {
        info,
        partition,
        generation,
        min_insync_replicas: min_insync,
    })
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
