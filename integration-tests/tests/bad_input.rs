//! Bad input is refused with a clear error and changes nothing: after every refusal the log
//! holds exactly the good records written before it.

mod support;

use bytes::{Bytes, BytesMut};
use support::*;
use tonic::Code;
use tributary_proto::v1::{
    ErrorCode, FetchPartition, PartitionProduceData, ProduceRequest, Record as ProtoRecord,
    RecordFormat, TopicFetchData, TopicProduceData,
};
use tributary_record::Record;

/// A topic with some good data, and the records it holds.
async fn seeded(broker: &tributary_integration_tests::Broker) -> Vec<Record> {
    create_topic(broker, "guarded", 1, &[("max.message.bytes", "2048")]).await;
    let mut client = broker.broker_client().unwrap();
    let good = records("good", 5, 1_000);
    produce_ok(&mut client, "guarded", 0, batch(&good)).await;
    good
}

async fn assert_unchanged(broker: &tributary_integration_tests::Broker, good: &[Record]) {
    let mut client = broker.broker_client().unwrap();
    assert_eq!(
        latest(&mut client, "guarded", 0).await,
        good.len() as i64,
        "nothing was appended"
    );
    assert_records(&read_all(&mut client, "guarded", 0, 0).await, good, 0);
}

fn code_of(result: &tributary_proto::v1::PartitionProduceResponse) -> ErrorCode {
    ErrorCode::try_from(result.error_code).expect("known error code")
}

#[tokio::test]
async fn corrupt_truncated_oversized_and_garbage_batches_are_refused() {
    let (_zk, broker) = start().await;
    let good = seeded(&broker).await;
    let mut client = broker.broker_client().unwrap();
    let valid = batch(&records("new", 3, 2_000));

    let mut flipped = valid.to_vec();
    let last = flipped.len() - 1;
    flipped[last] ^= 0xff; // inside the last record's value: only the CRC notices
    let mut truncated = valid.to_vec();
    truncated.truncate(valid.len() - 5);
    let mut trailing = valid.to_vec();
    trailing.extend_from_slice(b"junk");
    let mut second_bad = valid.to_vec();
    second_bad.extend_from_slice(&flipped);
    let oversized = batch(&records("big", 100, 3_000)); // > max.message.bytes=2048
    assert!(oversized.len() > 2048);
    let garbage: Vec<u8> = (0..200u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8)
        .collect();
    let mut garbage_magic2 = garbage.clone();
    garbage_magic2[16] = 2;
    let mut not_gzip = valid.to_vec();
    not_gzip[22] |= 1; // gzip codec bit; CRC recomputed so only the codec is wrong
    let crc = crc32fast::hash(&not_gzip[21..]);
    not_gzip[17..21].copy_from_slice(&crc.to_be_bytes());
    let mut unassigned_codec = valid.to_vec();
    unassigned_codec[22] |= 5; // codec 5 does not exist
    let crc = crc32fast::hash(&unassigned_codec[21..]);
    unassigned_codec[17..21].copy_from_slice(&crc.to_be_bytes());

    let cases: Vec<(&str, Vec<u8>, &[ErrorCode])> = vec![
        (
            "flipped byte (CRC mismatch)",
            flipped.clone(),
            &[ErrorCode::CorruptMessage],
        ),
        ("truncated batch", truncated, &[ErrorCode::CorruptMessage]),
        ("trailing garbage", trailing, &[ErrorCode::CorruptMessage]),
        (
            "second of two batches corrupt",
            second_bad,
            &[ErrorCode::CorruptMessage],
        ),
        (
            "oversized batch",
            oversized.to_vec(),
            &[ErrorCode::MessageTooLarge],
        ),
        (
            "garbage bytes",
            garbage,
            &[ErrorCode::CorruptMessage, ErrorCode::UnsupportedVersion],
        ),
        (
            "garbage with magic 2",
            garbage_magic2,
            &[ErrorCode::CorruptMessage],
        ),
        (
            "gzip codec bits on records that are not gzip",
            not_gzip,
            &[ErrorCode::CorruptMessage],
        ),
        (
            "unassigned codec",
            unassigned_codec,
            &[ErrorCode::UnsupportedCompressionType],
        ),
        ("a few bytes", vec![1, 2, 3], &[ErrorCode::CorruptMessage]),
    ];
    for (what, bytes, expected) in cases {
        let result = produce_raw(&mut client, "guarded", 0, Bytes::from(bytes)).await;
        let code = code_of(&result);
        assert!(
            expected.contains(&code),
            "{what}: got {code:?} ({})",
            result.error_message
        );
        assert!(
            !result.error_message.is_empty(),
            "{what}: the error says what is wrong"
        );
        assert_eq!(result.base_offset, -1, "{what}");
        assert_unchanged(&broker, &good).await;
    }

    // The log still takes good data afterwards, at the next offset.
    assert_eq!(produce_ok(&mut client, "guarded", 0, valid).await, (5, 7));
}

#[tokio::test]
async fn unknown_topics_partitions_bad_acks_and_empty_partitions_are_refused() {
    let (_zk, broker) = start().await;
    let good = seeded(&broker).await;
    let mut client = broker.broker_client().unwrap();
    let valid = batch(&records("x", 2, 1));

    let unknown_topic = produce_raw(&mut client, "nope", 0, valid.clone()).await;
    assert_eq!(code_of(&unknown_topic), ErrorCode::UnknownTopicOrPartition);
    assert!(
        unknown_topic.error_message.contains("nope"),
        "{}",
        unknown_topic.error_message
    );
    let unknown_partition = produce_raw(&mut client, "guarded", 7, valid.clone()).await;
    assert_eq!(
        code_of(&unknown_partition),
        ErrorCode::UnknownTopicOrPartition
    );

    let bad_acks = client
        .produce(raw_request("guarded", 0, 2, valid.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        bad_acks.topics[0].partitions[0].error_code,
        ErrorCode::InvalidRequiredAcks as i32
    );

    let both = ProduceRequest {
        request_id: 0,
        acks: 1,
        timeout_ms: 0,
        topics: vec![TopicProduceData {
            topic: "guarded".into(),
            partitions: vec![PartitionProduceData {
                partition: 0,
                batches: valid.clone(),
                records: vec![ProtoRecord {
                    value: Some(Bytes::from_static(b"v")),
                    ..Default::default()
                }],
            }],
        }],
    };
    let response = client.produce(both).await.unwrap().into_inner();
    assert_eq!(
        response.topics[0].partitions[0].error_code,
        ErrorCode::InvalidRequest as i32
    );
    let neither = produce_raw(&mut client, "guarded", 0, Bytes::new()).await;
    assert_eq!(code_of(&neither), ErrorCode::InvalidRequest);

    // Fetch and ListOffsets on unknown topics, and out-of-range offsets.
    let fetched = fetch_raw(&mut client, "nope", 0, 0).await;
    assert_eq!(
        fetched.error_code,
        ErrorCode::UnknownTopicOrPartition as i32
    );
    let negative = fetch_raw(&mut client, "guarded", 0, -1).await;
    assert_eq!(
        negative.error_code,
        ErrorCode::OffsetOutOfRange as i32,
        "{}",
        negative.error_message
    );
    assert_eq!(
        (negative.log_start_offset, negative.log_end_offset),
        (0, 5),
        "range is reported"
    );
    let beyond = fetch_raw(&mut client, "guarded", 0, 6).await;
    assert_eq!(beyond.error_code, ErrorCode::OffsetOutOfRange as i32);
    let at_end = fetch_raw(&mut client, "guarded", 0, 5).await;
    assert_eq!(
        at_end.error_code,
        ErrorCode::None as i32,
        "the log end is a valid (empty) position"
    );
    assert!(at_end.batches.is_empty());
    assert_eq!(
        list_offset(&mut client, "nope", 0, -1).await.error_code,
        ErrorCode::UnknownTopicOrPartition as i32
    );

    assert_unchanged(&broker, &good).await;
}

#[tokio::test]
async fn malformed_requests_fail_as_a_whole_with_invalid_argument() {
    let (_zk, broker) = start_with(&[("socket.request.max.bytes", "1048576")]).await;
    let good = seeded(&broker).await;
    let mut client = broker.broker_client().unwrap();
    let valid = batch(&records("x", 2, 1));

    let mut empty_topic = raw_request("", 0, 1, valid.clone());
    empty_topic.topics[0].topic.clear();
    let status = client.produce(empty_topic).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("topic is empty"),
        "{}",
        status.message()
    );

    let mut duplicate = raw_request("guarded", 0, 1, valid.clone());
    let again = duplicate.topics[0].partitions[0].clone();
    duplicate.topics[0].partitions.push(again);
    let status = client.produce(duplicate).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("more than once"),
        "{}",
        status.message()
    );

    let mut negative_timeout = raw_request("guarded", 0, 1, valid.clone());
    negative_timeout.timeout_ms = -5;
    assert_eq!(
        client.produce(negative_timeout).await.unwrap_err().code(),
        Code::InvalidArgument
    );

    let mut bad_fetch = fetch_request("guarded", 0, 0, RecordFormat::Raw, 0);
    bad_fetch.max_bytes = -1;
    let status = client.fetch(bad_fetch).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("max_bytes"),
        "{}",
        status.message()
    );
    let mut bad_format = fetch_request("guarded", 0, 0, RecordFormat::Raw, 0);
    bad_format.format = 7;
    assert_eq!(
        client.fetch(bad_format).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    let mut bad_partition_max = fetch_request("guarded", 0, 0, RecordFormat::Raw, 0);
    bad_partition_max.topics = vec![TopicFetchData {
        topic: "guarded".into(),
        partitions: vec![FetchPartition {
            partition: 0,
            fetch_offset: 0,
            partition_max_bytes: -3,
            current_leader_epoch: -1,
            last_fetched_epoch: None,
        }],
    }];
    assert_eq!(
        client.fetch(bad_partition_max).await.unwrap_err().code(),
        Code::InvalidArgument
    );

    // A request above socket.request.max.bytes is refused by the transport.
    let huge = Bytes::from(vec![0u8; 2 << 20]);
    let status = client
        .produce(raw_request("guarded", 0, 1, huge))
        .await
        .unwrap_err();
    assert!(
        matches!(status.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{status}"
    );

    // Bytes that are not a protobuf message at all.
    let channel = broker.channel().unwrap();
    let mut raw = tonic::client::Grpc::new(channel);
    raw.ready().await.unwrap();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/tributary.v1.Broker/Produce");
    let status = raw
        .unary::<Vec<u8>, Vec<u8>, _>(
            tonic::Request::new(vec![0xff, 0xff, 0xff, 0x07, 0x01]),
            path,
            RawCodec,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(status.code(), Code::Internal | Code::InvalidArgument),
        "{status}"
    );

    assert_unchanged(&broker, &good).await;
}

/// Sends and receives raw bytes, to put undecodable messages on the wire.
#[derive(Debug, Clone, Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), Self::Error> {
        use bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, Self::Error> {
        use bytes::Buf;
        let mut out = vec![0; src.remaining()];
        src.copy_to_slice(&mut out);
        Ok(Some(out))
    }
}

#[tokio::test]
async fn min_insync_replicas_above_the_isr_refuses_acks_all_and_appends_nothing() {
    let (_zk, broker) = start().await;
    create_topic(&broker, "strict", 1, &[("min.insync.replicas", "2")]).await;
    let mut client = broker.broker_client().unwrap();
    let response = client
        .produce(raw_request("strict", 0, -1, batch(&records("a", 1, 1))))
        .await
        .unwrap()
        .into_inner();
    let p = &response.topics[0].partitions[0];
    assert_eq!(
        p.error_code,
        ErrorCode::NotEnoughReplicas as i32,
        "{}",
        p.error_message
    );
    assert_eq!(latest(&mut client, "strict", 0).await, 0);
    // acks=1 does not need the ISR.
    produce_ok(&mut client, "strict", 0, batch(&records("a", 1, 1))).await;
    let _ = BytesMut::new();
}
