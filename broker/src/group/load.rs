//! Loading a `__consumer_offsets` partition this broker has come to lead: replay it from the
//! log start into a fresh set of groups, then install them in the shard.
//!
//! The load reads up to the log end offset the partition had when the load started, after
//! waiting for the high watermark to reach it: records a previous leader wrote but had not
//! committed are in this leader's log too and become committed once the followers have them,
//! so loading only below the HW as it was at election would forget commits that every replica
//! ends up holding. Meanwhile requests get COORDINATOR_LOAD_IN_PROGRESS. Nothing else appends
//! to the partition during the load (commits are refused until it ends).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tributary_record::{BatchIter, RecordError};

use super::shard::{Groups, replay, start_sessions};
use crate::log::{LogError, TopicPartition};
use crate::replica::Partition;
use crate::state::BrokerState;

use super::offsets_topic::OFFSETS_TOPIC;

/// Pause before retrying a load that failed to read the log (an I/O error).
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// Why a load could not read its partition.
#[derive(Debug, thiserror::Error)]
enum LoadError {
    /// The log could not be read.
    #[error(transparent)]
    Log(#[from] LogError),
    /// A stored batch does not decode.
    #[error("{topic_partition}: the batch at offset {offset} does not decode")]
    Batch {
        /// The partition.
        topic_partition: TopicPartition,
        /// The batch's base offset (or the read offset for a bad header).
        offset: i64,
        /// The codec's error.
        #[source]
        source: RecordError,
    },
}

/// Loads partition `partition` for the shard `incarnation`, retrying after read failures,
/// until it is installed or the shard is gone (leadership lost meanwhile).
pub async fn load(state: Arc<BrokerState>, partition: i32, incarnation: u64) {
    let tp = TopicPartition::new(OFFSETS_TOPIC, partition);
    loop {
        if !state.groups.is_loading(partition, incarnation) {
            return;
        }
        let Some(replica) = state.replicas.get(&tp).filter(|p| p.is_leader()) else {
            return;
        };
        let Some(end) = committed_end(&state, &replica, partition, incarnation).await else {
            return;
        };
        let buffer = state.groups.settings().offsets_load_buffer_size;
        let reading = replica.clone();
        let started = std::time::Instant::now();
        let read = tokio::task::spawn_blocking(move || read_groups(&reading, end, buffer)).await;
        match read {
            Ok(Ok((mut groups, records))) => {
                start_sessions(&mut groups, crate::state::now_ms());
                let group_count = groups.len();
                if state.groups.finish_load(partition, incarnation, groups) {
                    tracing::info!(
                        partition,
                        groups = group_count,
                        records,
                        end_offset = end,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "loaded the groups of __consumer_offsets partition"
                    );
                }
                return;
            }
            Ok(Err(error)) => {
                tracing::error!(topic_partition = %tp, %error, "cannot load __consumer_offsets partition; retrying");
            }
            Err(error) => {
                tracing::error!(topic_partition = %tp, %error, "load task failed; retrying");
            }
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

/// The log end offset at the start of the load, once the high watermark has reached it;
/// `None` if the shard stopped loading or the replica stopped leading first.
async fn committed_end(
    state: &BrokerState,
    replica: &Partition,
    partition: i32,
    incarnation: u64,
) -> Option<i64> {
    let end = replica.log().log_end_offset();
    let mut changes = replica.subscribe();
    loop {
        if !replica.is_leader() || !state.groups.is_loading(partition, incarnation) {
            return None;
        }
        if replica.high_watermark() >= end {
            return Some(end);
        }
        // The HW channel also wakes on a leadership loss; the periodic check covers a shard
        // dropped without one (StopReplica of a partition already stopped).
        let _ = tokio::time::timeout(Duration::from_millis(500), changes.changed()).await;
    }
}

/// Replays the records of `[log start, end)` into groups; returns them and the number of
/// records read. Control batches (transaction markers) are skipped; a record whose key or
/// value does not decode is skipped with a warning (Kafka refuses to load the partition
/// instead, which leaves every group on it without a coordinator).
fn read_groups(replica: &Partition, end: i64, buffer: usize) -> Result<(Groups, u64), LoadError> {
    let log = replica.log();
    let mut groups = Groups::new();
    let mut records = 0u64;
    let mut offset = log.log_start_offset();
    while offset < end {
        let read = log.read(offset, buffer, Some(end), true)?;
        if read.batches.is_empty() {
            break;
        }
        let mut next = offset;
        for item in BatchIter::new(&read.batches) {
            let (header, bytes) = item.map_err(|source| LoadError::Batch {
                topic_partition: replica.topic_partition().clone(),
                offset: next,
                source,
            })?;
            next = header.next_offset();
            if header.attributes.is_control() {
                continue;
            }
            let batch = read.batches.slice_ref(bytes);
            replay_batch(replica.topic_partition(), &batch, &mut groups, &mut records).map_err(
                |source| LoadError::Batch {
                    topic_partition: replica.topic_partition().clone(),
                    offset: header.base_offset,
                    source,
                },
            )?;
        }
        if next <= offset {
            break;
        }
        offset = next;
    }
    Ok((groups, records))
}

fn replay_batch(
    tp: &TopicPartition,
    batch: &Bytes,
    groups: &mut Groups,
    records: &mut u64,
) -> Result<(), RecordError> {
    let decoded = tributary_record::decode_records(batch)?;
    for record in decoded {
        *records += 1;
        let Some(key) = record.key.as_deref() else {
            tracing::warn!(topic_partition = %tp, offset = record.offset, "skipping a record without a key");
            continue;
        };
        if let Err(error) = replay(groups, key, record.value.as_deref(), record.offset) {
            tracing::warn!(topic_partition = %tp, offset = record.offset, %error, "skipping a record that does not decode");
        }
    }
    Ok(())
}
