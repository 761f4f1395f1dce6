//! Producing records: the batching [`Producer`] (records in, delivery futures out), the
//! lower-level [`BatchSender`] for pre-built batches, and one-shot unary calls.
//!
//! ```text
//!  handle.rs       Producer: admits records (metadata, size, buffer.memory) in the caller's task
//!  accumulator.rs  the batches not yet sent, per partition, behind one short mutex; `send`
//!                  appends to them in the caller's task, the sender takes them out
//!  sender.rs       the sender task: takes ready batches, owns streams, requests in flight, retries
//!  batch.rs        open/closed batches, a partition's flight state, the pure send/retry/linger
//!                  decisions
//!  partitioner.rs  murmur2 keys, sticky and round-robin placement (pure)
//!  buffer.rs       buffer.memory as a semaphore of bytes
//!  broker_stream.rs one pipelined ProduceStream per broker (shared with BatchSender)
//! ```

mod accumulator;
mod batch;
mod batch_sender;
mod broker_stream;
mod buffer;
mod error;
mod fast_hash;
mod handle;
mod idempotence;
mod options;
mod partitioner;
mod record;
mod sender;

use bytes::Bytes;
use tributary_proto::v1 as pb;
use tributary_record::{BatchBuilder, Compression, Record};

use crate::response::partition_result;
use crate::{Client, ClientError};

pub use batch_sender::{BatchSender, BatchSenderOptions};
pub use error::ProduceError;
pub use handle::Producer;
pub use options::ProducerOptions;
pub use partitioner::{Partitioner, murmur2, partition_for_key, to_positive};
pub use record::{DeliveryFuture, ProducerRecord, RecordMetadata};

/// How many replicas must have a write before the broker acknowledges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Acks {
    /// `acks=0`: the broker answers at once; offsets in the ack are -1.
    None,
    /// `acks=1`: after the leader's local append.
    #[default]
    Leader,
    /// `acks=-1`: after every in-sync replica has the write.
    All,
}

impl Acks {
    /// The wire value (0, 1 or -1).
    pub fn to_wire(self) -> i32 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }

    /// Parses the wire value; `all` is accepted for -1.
    pub fn parse(text: &str) -> Result<Acks, ClientError> {
        match text.trim() {
            "0" => Ok(Acks::None),
            "1" => Ok(Acks::Leader),
            "-1" | "all" => Ok(Acks::All),
            other => Err(ClientError::InvalidArgument {
                argument: "acks",
                reason: format!("{other:?}: must be -1 (all), 0 or 1"),
            }),
        }
    }
}

/// The broker's acknowledgement of one produced batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProduceAck {
    /// Offset of the first record appended (-1 with `acks=0`).
    pub base_offset: i64,
    /// Offset of the last record appended (-1 with `acks=0`).
    pub last_offset: i64,
    /// The broker's append time if the topic uses LogAppendTime.
    pub log_append_time: Option<i64>,
}

/// Builds one batch from `records` (offset deltas 0, 1, ...), its records compressed with
/// `compression`.
pub(crate) fn build_batch(records: &[Record], compression: Compression) -> Bytes {
    let capacity: usize = records
        .iter()
        .map(|r| 32 + r.key.as_ref().map_or(0, Bytes::len) + r.value.as_ref().map_or(0, Bytes::len))
        .sum();
    let mut builder = BatchBuilder::with_capacity(tributary_record::HEADER_SIZE + capacity)
        .compression(compression);
    for record in records {
        builder.push(record);
    }
    builder.build()
}

pub(crate) fn produce_request(
    request_id: u64,
    acks: Acks,
    timeout_ms: i32,
    topic: &str,
    partition: pb::PartitionProduceData,
) -> pb::ProduceRequest {
    pb::ProduceRequest {
        request_id,
        acks: acks.to_wire(),
        timeout_ms,
        topics: vec![pb::TopicProduceData {
            topic: topic.to_owned(),
            partitions: vec![partition],
        }],
    }
}

/// Extracts the result for `topic`/`partition` from a response.
pub(crate) fn ack_from_response(
    response: pb::ProduceResponse,
    topic: &str,
    partition: i32,
) -> Result<ProduceAck, ClientError> {
    let result = partition_result(
        response
            .topics
            .into_iter()
            .filter(|t| t.topic == topic)
            .flat_map(|t| t.partitions),
        "Produce",
        topic,
        partition,
    )?;
    Ok(ProduceAck {
        base_offset: result.base_offset,
        last_offset: result.last_offset,
        log_append_time: (result.log_append_time_ms >= 0).then_some(result.log_append_time_ms),
    })
}

fn to_proto_record(record: &Record) -> pb::Record {
    pb::Record {
        key: record.key.clone(),
        value: record.value.clone(),
        timestamp_ms: (record.timestamp >= 0).then_some(record.timestamp),
        headers: record
            .headers
            .iter()
            .map(|h| pb::RecordHeader {
                key: h.key.clone(),
                value: h.value.clone(),
            })
            .collect(),
    }
}

fn require_records(records: &[Record]) -> Result<(), ClientError> {
    if records.is_empty() {
        return Err(ClientError::InvalidArgument {
            argument: "records",
            reason: "at least one record is needed".to_owned(),
        });
    }
    Ok(())
}

impl Client {
    /// Appends `records` to a partition as one batch built here (the broker stores the bytes
    /// as sent). One unary call to the partition's leader, retried while the leader moves (see
    /// [`Client::leader_for`]): use a [`Producer`] for throughput.
    pub async fn produce(
        &self,
        topic: &str,
        partition: i32,
        records: &[Record],
        acks: Acks,
    ) -> Result<ProduceAck, ClientError> {
        self.produce_compressed(topic, partition, records, acks, Compression::None)
            .await
    }

    /// Like [`Client::produce`], with the batch's records compressed by `compression` (the
    /// broker stores and serves the batch compressed; consumers decompress it).
    pub async fn produce_compressed(
        &self,
        topic: &str,
        partition: i32,
        records: &[Record],
        acks: Acks,
        compression: Compression,
    ) -> Result<ProduceAck, ClientError> {
        require_records(records)?;
        self.produce_batch(topic, partition, build_batch(records, compression), acks)
            .await
    }

    /// Appends one or more complete, concatenated v2 batches (built with [`BatchBuilder`]) on
    /// the partition's leader.
    pub async fn produce_batch(
        &self,
        topic: &str,
        partition: i32,
        batches: Bytes,
        acks: Acks,
    ) -> Result<ProduceAck, ClientError> {
        let data = pb::PartitionProduceData {
            partition,
            batches,
            records: Vec::new(),
        };
        self.produce_to_leader(acks, topic, data).await
    }

    /// Appends `records` as structured records that the broker encodes into one batch (the
    /// path thin clients use). A negative `timestamp` means "now" on the broker.
    pub async fn produce_structured(
        &self,
        topic: &str,
        partition: i32,
        records: &[Record],
        acks: Acks,
    ) -> Result<ProduceAck, ClientError> {
        require_records(records)?;
        let data = pb::PartitionProduceData {
            partition,
            batches: Bytes::new(),
            records: records.iter().map(to_proto_record).collect(),
        };
        self.produce_to_leader(acks, topic, data).await
    }

    /// One `Produce` of `data` to the partition's leader, retried while the leader moves.
    async fn produce_to_leader(
        &self,
        acks: Acks,
        topic: &str,
        data: pb::PartitionProduceData,
    ) -> Result<ProduceAck, ClientError> {
        let partition = data.partition;
        self.on_leader(topic, partition, |leader| {
            let request = produce_request(self.next_request_id(), acks, 0, topic, data.clone());
            async move {
                let response = leader
                    .broker_service()
                    .produce(request)
                    .await
                    .map_err(ClientError::rpc("Produce"))?;
                ack_from_response(response.into_inner(), topic, partition)
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_parse() {
        assert_eq!(Acks::parse("0").unwrap(), Acks::None);
        assert_eq!(Acks::parse("1").unwrap(), Acks::Leader);
        assert_eq!(Acks::parse("-1").unwrap(), Acks::All);
        assert_eq!(Acks::parse("all").unwrap(), Acks::All);
        assert!(Acks::parse("2").is_err());
        assert_eq!(Acks::All.to_wire(), -1);
    }

    fn response(code: i32) -> pb::ProduceResponse {
        pb::ProduceResponse {
            request_id: 7,
            topics: vec![pb::TopicProduceResponse {
                topic: "t".into(),
                partitions: vec![pb::PartitionProduceResponse {
                    partition: 1,
                    error_code: code,
                    error_message: if code == 0 {
                        String::new()
                    } else {
                        "nope".into()
                    },
                    base_offset: if code == 0 { 10 } else { -1 },
                    last_offset: if code == 0 { 19 } else { -1 },
                    log_append_time_ms: -1,
                    log_start_offset: 0,
                }],
            }],
        }
    }

    #[test]
    fn acks_from_responses() {
        let ack = ack_from_response(response(0), "t", 1).unwrap();
        assert_eq!(
            ack,
            ProduceAck {
                base_offset: 10,
                last_offset: 19,
                log_append_time: None
            }
        );
        let error = ack_from_response(response(6), "t", 1).unwrap_err();
        assert_eq!(
            error.error_code(),
            Some(crate::ErrorCode::NotLeaderOrFollower)
        );
        let error = ack_from_response(response(0), "t", 2).unwrap_err();
        assert!(matches!(error, ClientError::MalformedResponse { .. }));
    }

    #[test]
    fn built_batches_decode() {
        let records: Vec<Record> = (0..3)
            .map(|i| Record {
                key: Some(Bytes::from(format!("k{i}"))),
                value: Some(Bytes::from(format!("v{i}"))),
                timestamp: 1000 + i,
                headers: Vec::new(),
            })
            .collect();
        let decoded =
            tributary_record::decode_records(&build_batch(&records, Compression::None)).unwrap();
        assert_eq!(decoded.len(), 3);
        assert_eq!(decoded[2].value.as_deref(), Some(&b"v2"[..]));
        assert_eq!(decoded[2].timestamp, 1002);
    }

    #[test]
    fn built_batches_carry_the_codec() {
        let records: Vec<Record> = (0..50)
            .map(|i| Record {
                value: Some(Bytes::from(format!("value {i} value value value"))),
                timestamp: 1000 + i,
                ..Record::default()
            })
            .collect();
        let plain = build_batch(&records, Compression::None);
        for codec in Compression::ALL {
            let batch = build_batch(&records, codec);
            let header = tributary_record::validate_records(&batch).unwrap();
            assert_eq!(header.attributes.compression(), Ok(codec));
            let decoded = tributary_record::decode_records(&batch).unwrap();
            assert_eq!(decoded, tributary_record::decode_records(&plain).unwrap());
        }
    }
}
