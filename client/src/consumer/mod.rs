//! Fetching records: one-shot unary fetches, the pipelined [`PartitionConsumer`] of one
//! partition, and the [`Consumer`] of assigned partitions built on it.
//!
//! The consumer's decisions are pure and tested on their own: `assignment` (positions,
//! pauses, lazy seeks, the reset policy), `buffer` (which fetched records may be returned),
//! `assignors` and `protocol` (the group leader's assignment and the consumer protocol's
//! bytes); `poll` does the I/O, `membership` and `subscribe` the group's.

mod assignment;
mod assignors;
mod buffer;
mod decode;
mod membership;
mod poll;
mod protocol;
mod stream;
mod subscribe;

use tributary_proto::v1 as pb;
use tributary_record::{DecodedRecord, Header};

use crate::{Client, ClientError};

pub use assignment::{OffsetReset, TopicPartition};
pub use assignors::{Assignment, Assignor, Member};
pub use buffer::ConsumerRecord;
pub use decode::{BatchInfo, decode_fetched_batches};
pub use membership::{Delivery, GroupOptions};
pub use poll::{Consumer, ConsumerOptions};
pub use protocol::by_topic;
pub use stream::PartitionConsumer;
pub use subscribe::RebalanceListener;

/// Limits and long-poll settings of a fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchOptions {
    /// Soft limit on the response size (the first batch is always returned whole).
    pub max_bytes: i32,
    /// How long the broker may wait for `min_bytes` before answering.
    pub max_wait_ms: i32,
    /// Answer as soon as this many bytes are available.
    pub min_bytes: i32,
}

impl Default for FetchOptions {
    /// 8 MiB responses (large enough to amortise per-request costs), a 500 ms long poll that
    /// ends at the first byte.
    fn default() -> Self {
        FetchOptions {
            max_bytes: 8 * 1024 * 1024,
            max_wait_ms: 500,
            min_bytes: 1,
        }
    }
}

impl FetchOptions {
    pub(crate) fn validate(&self) -> Result<(), ClientError> {
        let bad = |argument, reason: &str| {
            Err(ClientError::InvalidArgument {
                argument,
                reason: reason.to_owned(),
            })
        };
        if self.max_bytes <= 0 {
            return bad("max_bytes", "must be positive");
        }
        if self.max_bytes as usize > crate::MAX_MESSAGE_SIZE - 1024 * 1024 {
            return bad(
                "max_bytes",
                "must leave room in the 64 MiB message limit (at most 63 MiB)",
            );
        }
        if self.max_wait_ms < 0 {
            return bad("max_wait_ms", "must not be negative");
        }
        if self.min_bytes < 0 {
            return bad("min_bytes", "must not be negative");
        }
        Ok(())
    }
}

/// The records of one partition returned by one fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchResult {
    /// The offset this fetch read from.
    pub fetch_offset: i64,
    /// Records at or above the fetch offset, in offset order.
    pub records: Vec<DecodedRecord>,
    /// The partition's HW: offsets below it are committed.
    pub high_watermark: i64,
    /// The earliest offset still stored.
    pub log_start_offset: i64,
    /// The offset the next appended record will get (LEO).
    pub log_end_offset: i64,
    /// Where the next fetch should start: after the last complete batch returned, or the
    /// fetch offset if there was none.
    pub next_offset: i64,
    /// The data batches the records came from (their timestamp type), in offset order. Empty
    /// for broker-decoded fetches ([`Client::fetch_decoded`]).
    pub batches: Vec<BatchInfo>,
}

pub(crate) fn fetch_request(
    request_id: u64,
    topic: &str,
    partition: i32,
    offset: i64,
    options: &FetchOptions,
    format: pb::RecordFormat,
) -> pb::FetchRequest {
    pb::FetchRequest {
        request_id,
        replica_id: -1,
        max_wait_ms: options.max_wait_ms,
        min_bytes: options.min_bytes,
        max_bytes: options.max_bytes,
        format: format as i32,
        topics: vec![pb::TopicFetchData {
            topic: topic.to_owned(),
            partitions: vec![pb::FetchPartition {
                partition,
                fetch_offset: offset,
                // 0 would mean the broker's 1 MiB default, so the request limit is repeated.
                partition_max_bytes: options.max_bytes,
                current_leader_epoch: -1,
                last_fetched_epoch: None,
            }],
        }],
    }
}

/// Takes the result for `topic`/`partition` out of a response and checks its error code.
pub(crate) fn partition_result(
    response: pb::FetchResponse,
    topic: &str,
    partition: i32,
) -> Result<pb::PartitionFetchResponse, ClientError> {
    crate::response::partition_result(
        response
            .topics
            .into_iter()
            .filter(|t| t.topic == topic)
            .flat_map(|t| t.partitions),
        "Fetch",
        topic,
        partition,
    )
}

/// Decodes a RAW partition result fetched from `offset`.
pub(crate) fn raw_result(
    result: pb::PartitionFetchResponse,
    topic: &str,
    offset: i64,
    max_bytes: i32,
) -> Result<FetchResult, ClientError> {
    let decoded =
        decode::decode_fetch(topic, result.partition, offset, &result.batches, max_bytes)?;
    Ok(FetchResult {
        fetch_offset: offset,
        records: decoded.records,
        high_watermark: result.high_watermark,
        log_start_offset: result.log_start_offset,
        log_end_offset: result.log_end_offset,
        next_offset: decoded.next_offset,
        batches: decoded.batches,
    })
}

fn from_consumed(record: pb::ConsumedRecord) -> DecodedRecord {
    DecodedRecord {
        offset: record.offset,
        timestamp: record.timestamp_ms,
        key: record.key,
        value: record.value,
        headers: record
            .headers
            .into_iter()
            .map(|h| Header {
                key: h.key,
                value: h.value,
            })
            .collect(),
    }
}

impl Client {
    /// One unary fetch of one partition from its leader (retried while the leader moves), its
    /// result error-checked.
    async fn fetch_one(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: i32,
        max_wait_ms: i32,
        format: pb::RecordFormat,
    ) -> Result<pb::PartitionFetchResponse, ClientError> {
        let options = FetchOptions {
            max_bytes,
            max_wait_ms,
            min_bytes: 1,
        };
        options.validate()?;
        self.on_leader(topic, partition, |leader| {
            let request = fetch_request(
                self.next_request_id(),
                topic,
                partition,
                offset,
                &options,
                format,
            );
            async move {
                let response = leader
                    .broker_service()
                    .fetch(request)
                    .await
                    .map_err(ClientError::rpc("Fetch"))?;
                partition_result(response.into_inner(), topic, partition)
            }
        })
        .await
    }

    /// Fetches raw batches of one partition from `offset` and decodes them here. Records below
    /// `offset` (a batch may start earlier) and a trailing partial batch are dropped.
    pub async fn fetch(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: i32,
        max_wait_ms: i32,
    ) -> Result<FetchResult, ClientError> {
        let result = self
            .fetch_one(
                topic,
                partition,
                offset,
                max_bytes,
                max_wait_ms,
                pb::RecordFormat::Raw,
            )
            .await?;
        raw_result(result, topic, offset, max_bytes)
    }

    /// Fetches records of one partition decoded by the broker (`format = DECODED`).
    pub async fn fetch_decoded(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: i32,
        max_wait_ms: i32,
    ) -> Result<FetchResult, ClientError> {
        let result = self
            .fetch_one(
                topic,
                partition,
                offset,
                max_bytes,
                max_wait_ms,
                pb::RecordFormat::Decoded,
            )
            .await?;
        let records: Vec<DecodedRecord> = result
            .records
            .into_iter()
            .filter(|r| r.offset >= offset)
            .map(from_consumed)
            .collect();
        let next_offset = records.last().map_or(offset, |r| r.offset + 1);
        Ok(FetchResult {
            fetch_offset: offset,
            records,
            high_watermark: result.high_watermark,
            log_start_offset: result.log_start_offset,
            log_end_offset: result.log_end_offset,
            next_offset,
            batches: Vec::new(),
        })
    }
}
