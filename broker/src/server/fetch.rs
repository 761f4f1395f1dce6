//! `Fetch` / `FetchStream`: read batches (or decoded records) from partitions, long-polling
//! until `min_bytes` are available or `max_wait_ms` passes.
//!
//! Consumers (`replica_id < 0`) read below the high watermark and their long polls wake when
//! it moves; followers (`replica_id` = their broker id) read up to the log end, their long
//! polls wake on appends, and their fetch offset is recorded as their log end offset (see
//! [`crate::replica::Partition::record_follower_fetch`]).
//!
//! Only the leader serves fetches, consumers' and followers' alike: a
//! request with the current leader epoch to a broker that does not lead the partition gets
//! NOT_LEADER_OR_FOLLOWER naming the leader. As in Kafka, the leader epoch is checked first
//! (an older one is FENCED_LEADER_EPOCH, a newer one UNKNOWN_LEADER_EPOCH), and the role is
//! checked on every read, so a long poll that loses leadership answers at once.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;
use tokio::time::Instant;
use tonic::Status;
use tributary_proto::v1::{
    ConsumedRecord, DivergingEpoch, ErrorCode, FetchPartition, FetchRequest, FetchResponse,
    PartitionFetchResponse, RecordFormat, RecordHeader, TimestampType as ProtoTimestampType,
    TopicFetchResponse,
};
use tributary_record::{BatchIter, TimestampType, decode_records};

use super::errors::{PartitionError, from_log_error, invalid_argument, record_error_code};
use super::leadership::{check_current_epoch, check_leader, hosted_partition};
use crate::log::TopicPartition;
use crate::replica::Partition;
use crate::state::{BrokerState, now_ms};
use tributary_zk_layout::BrokerId;

/// Response size limit when the request says 0 (Kafka's fetch.max.bytes default).
pub const DEFAULT_MAX_BYTES: usize = 52_428_800;
/// Per-partition limit when the request says 0 (Kafka's max.partition.fetch.bytes default).
pub const DEFAULT_PARTITION_MAX_BYTES: usize = 1_048_576;
/// Longest long poll accepted, so a forgotten request cannot pin resources forever.
pub const MAX_WAIT_LIMIT_MS: i32 = 300_000;

/// One partition of the request, resolved.
struct Slot {
    topic_index: usize,
    request: FetchPartition,
    partition: Result<Arc<Partition>, PartitionError>,
    /// Where the requester's log parts from this leader's (see [`diverging_epoch`]).
    diverging: Option<(i32, i64)>,
}

/// Handles one fetch request.
pub async fn fetch(state: &BrokerState, request: FetchRequest) -> Result<FetchResponse, Status> {
    check_shape(&request)?;
    let format = RecordFormat::try_from(request.format).map_err(|_| {
        invalid_argument(format!(
            "format {} is not a known RecordFormat",
            request.format
        ))
    })?;
    let consumer = request.replica_id < 0;
    let max_bytes = if request.max_bytes == 0 {
        DEFAULT_MAX_BYTES
    } else {
        request.max_bytes as usize
    };
    let min_bytes = request.min_bytes.max(1) as usize;
    let deadline = Instant::now() + Duration::from_millis(request.max_wait_ms as u64);

    let mut topic_names = Vec::with_capacity(request.topics.len());
    let mut slots = Vec::new();
    for (topic_index, topic) in request.topics.into_iter().enumerate() {
        for p in topic.partitions {
            let tp = TopicPartition {
                topic: topic.topic.clone(),
                partition: p.partition,
            };
            let partition = hosted_partition(state, &tp);
            let diverging = partition
                .as_ref()
                .ok()
                .and_then(|partition| diverging_epoch(partition, &p));
            slots.push(Slot {
                topic_index,
                request: p,
                partition,
                diverging,
            });
        }
        topic_names.push(topic.topic);
    }
    if !consumer {
        record_follower_fetches(state, BrokerId(request.replica_id), &slots);
    }
    // Subscribe before the first read so an append between the read and the wait still wakes
    // us: consumers wait for the high watermark to move, followers for appends.
    let mut watchers: Vec<watch::Receiver<i64>> = slots
        .iter()
        .filter_map(|s| {
            s.partition.as_ref().ok().map(|p| {
                if consumer {
                    p.subscribe()
                } else {
                    p.subscribe_log_end()
                }
            })
        })
        .collect();

    loop {
        let (results, bytes, errors) = read_all(state, &slots, consumer, max_bytes, format);
        let errors = errors || slots.iter().any(|s| s.diverging.is_some());
        let waited_out = request.max_wait_ms == 0 || Instant::now() >= deadline;
        if bytes >= min_bytes || errors || waited_out || watchers.is_empty() {
            return Ok(assemble(request.request_id, topic_names, &slots, results));
        }
        if !wait_for_change(&mut watchers, deadline).await {
            let (results, _, _) = read_all(state, &slots, consumer, max_bytes, format);
            return Ok(assemble(request.request_id, topic_names, &slots, results));
        }
    }
}

/// A follower's fetch offset acknowledges everything below it: the leader records it (which
/// may advance the high watermark) and writes the ISR expansion it may allow. Done once per
/// request, when it arrives (as Kafka), and only for partitions this broker leads at the
/// follower's epoch.
fn record_follower_fetches(state: &BrokerState, replica: BrokerId, slots: &[Slot]) {
    let now = now_ms();
    for slot in slots {
        let Ok(partition) = &slot.partition else {
            continue;
        };
        // A diverging log acknowledges nothing: its fetch offset is not the leader's.
        if slot.diverging.is_some() {
            continue;
        }
        let tp = partition.topic_partition();
        if check_current_epoch(
            tp,
            slot.request.current_leader_epoch,
            partition.leader_epoch().0,
        )
        .is_err()
        {
            continue;
        }
        if let Some(update) =
            partition.record_follower_fetch(replica, slot.request.fetch_offset, now)
        {
            state.replicas.submit_isr_change(partition.clone(), update);
        }
    }
}

/// Where the requester's log parts from this leader's, when the request says its
/// `last_fetched_epoch` (Kafka's check from KIP-320/KIP-595): the largest epoch this leader knows
/// at or below it and that epoch's end offset, if the leader does not know that epoch or its log
/// for it ends below `fetch_offset`; `(-1, -1)` when the leader knows no such epoch. `None` when
/// the logs agree, the request does not say, or this broker does not lead (the read answers
/// that).
fn diverging_epoch(partition: &Partition, request: &FetchPartition) -> Option<(i32, i64)> {
    let last_fetched = request.last_fetched_epoch?;
    if !partition.is_leader() {
        return None;
    }
    match partition.log().end_offset_for_epoch(last_fetched) {
        Some((epoch, end)) if epoch == last_fetched && end >= request.fetch_offset => None,
        Some(found) => Some(found),
        None => Some((-1, -1)),
    }
}

/// Waits until any watched value (HW or LEO) moves or the deadline passes; false on timeout.
async fn wait_for_change(watchers: &mut [watch::Receiver<i64>], deadline: Instant) -> bool {
    let woke = {
        let changes =
            futures::future::select_all(watchers.iter_mut().map(|w| Box::pin(w.changed())));
        tokio::time::timeout_at(deadline, changes).await.is_ok()
    };
    if woke {
        for w in watchers.iter_mut() {
            w.borrow_and_update();
        }
    }
    woke
}

fn check_shape(request: &FetchRequest) -> Result<(), Status> {
    if !(0..=MAX_WAIT_LIMIT_MS).contains(&request.max_wait_ms) {
        return Err(invalid_argument(format!(
            "max_wait_ms must be between 0 and {MAX_WAIT_LIMIT_MS}, got {}",
            request.max_wait_ms
        )));
    }
    if request.min_bytes < 0 {
        return Err(invalid_argument(format!(
            "min_bytes must be >= 0, got {}",
            request.min_bytes
        )));
    }
    if request.max_bytes < 0 {
        return Err(invalid_argument(format!(
            "max_bytes must be >= 0, got {}",
            request.max_bytes
        )));
    }
    let mut seen = HashSet::new();
    for (t, topic) in request.topics.iter().enumerate() {
        if topic.topic.is_empty() {
            return Err(invalid_argument(format!("topics[{t}].topic is empty")));
        }
        for p in &topic.partitions {
            if p.partition_max_bytes < 0 {
                return Err(invalid_argument(format!(
                    "topic {:?} partition {}: partition_max_bytes must be >= 0, got {}",
                    topic.topic, p.partition, p.partition_max_bytes
                )));
            }
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

/// What one read produced for one partition.
struct PartitionRead {
    /// Stored bytes read (also when they were decoded into `records`); counts towards
    /// `min_bytes` and `max_bytes`.
    size: usize,
    batches: Bytes,
    records: Vec<ConsumedRecord>,
    high_watermark: i64,
    log_start_offset: i64,
    log_end_offset: i64,
    diverging: Option<(i32, i64)>,
}

/// Reads every slot once. Returns per-slot results, the bytes gathered, and whether any
/// partition failed (a failure answers at once rather than waiting).
fn read_all(
    state: &BrokerState,
    slots: &[Slot],
    consumer: bool,
    max_bytes: usize,
    format: RecordFormat,
) -> (Vec<Result<PartitionRead, PartitionError>>, usize, bool) {
    let mut remaining = max_bytes;
    let mut total = 0;
    let mut errors = false;
    let mut results = Vec::with_capacity(slots.len());
    for slot in slots {
        let first_with_data = total == 0;
        let result = slot
            .partition
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|partition| {
                read_one(
                    state,
                    partition,
                    slot,
                    consumer,
                    remaining,
                    first_with_data,
                    format,
                )
            });
        match &result {
            Ok(read) => {
                total += read.size;
                remaining = remaining.saturating_sub(read.size);
            }
            Err(_) => errors = true,
        }
        results.push(result);
    }
    (results, total, errors)
}

fn read_one(
    state: &BrokerState,
    partition: &Partition,
    slot: &Slot,
    consumer: bool,
    remaining: usize,
    first_with_data: bool,
    format: RecordFormat,
) -> Result<PartitionRead, PartitionError> {
    let (request, diverging) = (&slot.request, slot.diverging);
    let tp = partition.topic_partition();
    let epoch = partition.leader_epoch().0;
    check_current_epoch(tp, request.current_leader_epoch, epoch)?;
    check_leader(state, partition)?;
    let log = partition.log();
    let high_watermark = partition.high_watermark();
    if diverging.is_some() {
        return Ok(PartitionRead {
            size: 0,
            batches: Bytes::new(),
            records: Vec::new(),
            high_watermark,
            log_start_offset: log.log_start_offset(),
            log_end_offset: log.log_end_offset(),
            diverging,
        });
    }
    let limit = if request.partition_max_bytes == 0 {
        DEFAULT_PARTITION_MAX_BYTES
    } else {
        request.partition_max_bytes as usize
    }
    .min(remaining);
    let max_offset = consumer.then_some(high_watermark);
    let visible_end = max_offset.unwrap_or(i64::MAX);
    let nothing_visible =
        request.fetch_offset >= visible_end && request.fetch_offset <= log.log_end_offset();
    let no_room = limit == 0 && !first_with_data;
    let batches = if nothing_visible || no_room {
        Bytes::new()
    } else {
        log.read(request.fetch_offset, limit, max_offset, first_with_data)
            .map_err(|e| from_log_error(&e))?
            .batches
    };
    let records = match format {
        RecordFormat::Raw => Vec::new(),
        RecordFormat::Decoded => decode(tp, &batches, request.fetch_offset)?,
    };
    let size = batches.len();
    let batches = if format == RecordFormat::Raw {
        batches
    } else {
        Bytes::new()
    };
    Ok(PartitionRead {
        size,
        batches,
        records,
        high_watermark,
        log_start_offset: log.log_start_offset(),
        log_end_offset: log.log_end_offset(),
        diverging: None,
    })
}

/// Decodes stored batches into records at or above `from`.
fn decode(
    tp: &TopicPartition,
    batches: &Bytes,
    from: i64,
) -> Result<Vec<ConsumedRecord>, PartitionError> {
    let mut out = Vec::new();
    for item in BatchIter::new(batches) {
        let (header, range) = item.map_err(|e| stored_corruption(tp, &e))?;
        let batch = batches.slice_ref(range);
        let timestamp_type = match header.attributes.timestamp_type() {
            TimestampType::CreateTime => ProtoTimestampType::CreateTime,
            TimestampType::LogAppendTime => ProtoTimestampType::LogAppendTime,
        };
        let records = decode_records(&batch).map_err(|e| {
            PartitionError::new(
                record_error_code(&e),
                format!(
                    "{tp}: cannot decode batch at offset {}: {e}",
                    header.base_offset
                ),
            )
        })?;
        out.extend(records.into_iter().filter(|r| r.offset >= from).map(|r| {
            ConsumedRecord {
                offset: r.offset,
                timestamp_ms: r.timestamp,
                timestamp_type: timestamp_type as i32,
                key: r.key,
                value: r.value,
                headers: r
                    .headers
                    .into_iter()
                    .map(|h| RecordHeader {
                        key: h.key,
                        value: h.value,
                    })
                    .collect(),
                leader_epoch: header.partition_leader_epoch,
            }
        }));
    }
    Ok(out)
}

fn stored_corruption(tp: &TopicPartition, error: &tributary_record::RecordError) -> PartitionError {
    PartitionError::new(
        ErrorCode::CorruptMessage,
        format!("{tp}: stored data is corrupt: {error}"),
    )
}

fn assemble(
    request_id: u64,
    topic_names: Vec<String>,
    slots: &[Slot],
    results: Vec<Result<PartitionRead, PartitionError>>,
) -> FetchResponse {
    let mut topics: Vec<TopicFetchResponse> = topic_names
        .into_iter()
        .map(|topic| TopicFetchResponse {
            topic,
            partitions: Vec::new(),
        })
        .collect();
    for (slot, result) in slots.iter().zip(results) {
        let partition = slot.request.partition;
        let response = match result {
            Ok(read) => PartitionFetchResponse {
                partition,
                error_code: ErrorCode::None as i32,
                error_message: String::new(),
                high_watermark: read.high_watermark,
                log_start_offset: read.log_start_offset,
                log_end_offset: read.log_end_offset,
                batches: read.batches,
                records: read.records,
                diverging_epoch: read
                    .diverging
                    .map(|(epoch, end_offset)| DivergingEpoch { epoch, end_offset }),
            },
            Err(error) => {
                // Where this broker leads the partition, say where its log starts and ends so
                // a client with an out-of-range offset can reset without another round trip.
                let (high_watermark, log_start_offset, log_end_offset) = match &slot.partition {
                    Ok(p) if p.is_leader() => (
                        p.high_watermark(),
                        p.log().log_start_offset(),
                        p.log().log_end_offset(),
                    ),
                    _ => (-1, -1, -1),
                };
                PartitionFetchResponse {
                    partition,
                    error_code: error.code as i32,
                    error_message: error.message,
                    high_watermark,
                    log_start_offset,
                    log_end_offset,
                    batches: Bytes::new(),
                    records: Vec::new(),
                    diverging_epoch: None,
                }
            }
        };
        topics[slot.topic_index].partitions.push(response);
    }
    FetchResponse { request_id, topics }
}
