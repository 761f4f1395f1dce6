//! Produce and fetch against a real broker process: raw and structured records, offsets,
//! ListOffsets, long polls and the pipelined streams.

mod support;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use support::*;
use tokio_stream::StreamExt;
use tributary_proto::v1::{
    ErrorCode, PartitionProduceData, ProduceRequest, Record as ProtoRecord, RecordFormat,
    RecordHeader, TimestampType, TopicProduceData,
};
use tributary_record::{BatchHeader, Record};

#[tokio::test]
async fn raw_batches_round_trip_byte_for_byte_with_assigned_offsets() {
    let (_zk, broker) = start().await;
    create_topic(&broker, "raw", 3, &[]).await;
    let mut client = broker.broker_client().unwrap();

    let mut written: Vec<Vec<Record>> = vec![Vec::new(); 3];
    for round in 0..3 {
        for partition in 0..3 {
            // Two batches concatenated in one request.
            let first = records(&format!("p{partition}r{round}a"), 5, round * 100);
            let second = records(&format!("p{partition}r{round}b"), 3, 50 + round * 100);
            let mut both = BytesMut::new();
            both.extend_from_slice(&batch(&first));
            both.extend_from_slice(&batch(&second));
            let (base, last) = produce_ok(&mut client, "raw", partition, both.freeze()).await;
            let expected_base = written[partition as usize].len() as i64;
            assert_eq!(
                (base, last),
                (expected_base, expected_base + 7),
                "partition {partition} round {round}"
            );
            written[partition as usize].extend(first);
            written[partition as usize].extend(second);
        }
    }
    for partition in 0..3 {
        let decoded = read_all(&mut client, "raw", partition, 0).await;
        assert_records(&decoded, &written[partition as usize], 0);
    }

    // The stored batches are the producer's bytes with only base offset and leader epoch changed.
    let fetched = fetch_raw(&mut client, "raw", 1, 0).await;
    let header = BatchHeader::parse(&fetched.batches).unwrap();
    assert_eq!(
        (
            header.base_offset,
            header.partition_leader_epoch,
            header.records_count
        ),
        (0, 0, 5)
    );
    let original = batch(&written[1][..5]);
    assert_eq!(
        &fetched.batches[12..16],
        &0i32.to_be_bytes(),
        "leader epoch 0 stamped"
    );
    assert_eq!(
        &fetched.batches[16..header.total_size()],
        &original[16..],
        "CRC-covered bytes unchanged"
    );

    // Fetching from inside a batch returns the whole batch; the client skips what it did not ask for.
    let fetched = fetch_raw(&mut client, "raw", 2, 3).await;
    assert_eq!(BatchHeader::parse(&fetched.batches).unwrap().base_offset, 0);
    assert_records(&decode_all(&fetched.batches, 3)[..5], &written[2][3..8], 3);
}

#[tokio::test]
async fn structured_records_are_encoded_by_the_broker_and_decoded_on_request() {
    let (_zk, broker) = start().await;
    create_topic(&broker, "structured", 1, &[]).await;
    let mut client = broker.broker_client().unwrap();
    let input = vec![
        ProtoRecord {
            key: Some(Bytes::from_static(b"k1")),
            value: Some(Bytes::from_static(b"v1")),
            timestamp_ms: Some(1_000),
            headers: vec![],
        },
        ProtoRecord {
            key: None,
            value: None,
            timestamp_ms: Some(2_000),
            headers: vec![RecordHeader {
                key: "h".into(),
                value: None,
            }],
        },
        ProtoRecord {
            key: None,
            value: Some(Bytes::from_static(b"now")),
            timestamp_ms: None,
            headers: vec![],
        },
    ];
    let response = client
        .produce(ProduceRequest {
            request_id: 9,
            acks: -1,
            timeout_ms: 0,
            topics: vec![TopicProduceData {
                topic: "structured".into(),
                partitions: vec![PartitionProduceData {
                    partition: 0,
                    batches: Bytes::new(),
                    records: input.clone(),
                }],
            }],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.request_id, 9);
    let result = &response.topics[0].partitions[0];
    assert_eq!(
        result.error_code,
        ErrorCode::None as i32,
        "{}",
        result.error_message
    );
    assert_eq!((result.base_offset, result.last_offset), (0, 2));

    let fetched = client
        .fetch(fetch_request("structured", 0, 1, RecordFormat::Decoded, 0))
        .await
        .unwrap()
        .into_inner();
    let partition = &fetched.topics[0].partitions[0];
    assert_eq!(
        partition.error_code,
        ErrorCode::None as i32,
        "{}",
        partition.error_message
    );
    assert!(
        partition.batches.is_empty(),
        "decoded format carries no raw bytes"
    );
    let got = &partition.records;
    assert_eq!(got.len(), 2, "records below fetch_offset are filtered");
    assert_eq!(
        (
            got[0].offset,
            got[0].key.clone(),
            got[0].value.clone(),
            got[0].timestamp_ms
        ),
        (1, None, None, 2_000)
    );
    assert_eq!(
        got[0].headers,
        vec![RecordHeader {
            key: "h".into(),
            value: None
        }]
    );
    assert_eq!(got[0].timestamp_type, TimestampType::CreateTime as i32);
    assert_eq!(got[1].value.as_deref(), Some(&b"now"[..]));
    assert!(
        got[1].timestamp_ms > 1_600_000_000_000,
        "absent timestamp means broker time"
    );
    assert_eq!(partition.high_watermark, 3);
}

#[tokio::test]
async fn list_offsets_finds_earliest_latest_and_by_timestamp() {
    let (_zk, broker) = start().await;
    create_topic(&broker, "times", 1, &[]).await;
    let mut client = broker.broker_client().unwrap();
    assert_eq!(list_offset(&mut client, "times", 0, -2).await.offset, 0);
    assert_eq!(latest(&mut client, "times", 0).await, 0);
    for (i, ts) in [1_000i64, 2_000, 3_000].iter().enumerate() {
        let recs = records(&format!("t{i}"), 10, *ts);
        produce_ok(&mut client, "times", 0, batch(&recs)).await;
    }
    assert_eq!(list_offset(&mut client, "times", 0, -2).await.offset, 0);
    assert_eq!(latest(&mut client, "times", 0).await, 30);
    let at = list_offset(&mut client, "times", 0, t0() + 2_000).await;
    assert_eq!(
        at.error_code,
        ErrorCode::None as i32,
        "{}",
        at.error_message
    );
    assert!(
        (10..=20).contains(&at.offset),
        "first offset at or after ts 2000 is in the second batch: {}",
        at.offset
    );
    let past_end = list_offset(&mut client, "times", 0, t0() + 10_000).await;
    assert_eq!(past_end.offset, -1, "no record at or after that time");
}

#[tokio::test]
async fn a_long_poll_wakes_up_when_data_is_appended() {
    let (_zk, broker) = start().await;
    create_topic(&broker, "poll", 1, &[]).await;
    let mut producer = broker.broker_client().unwrap();
    let mut consumer = broker.broker_client().unwrap();

    // No data: a short long poll ends empty at its deadline.
    let empty = consumer
        .fetch(fetch_request("poll", 0, 0, RecordFormat::Raw, 200))
        .await
        .unwrap()
        .into_inner();
    assert!(empty.topics[0].partitions[0].batches.is_empty());

    // A two-minute long poll must be woken by the append, long before its deadline.
    let waiting = tokio::spawn(async move {
        consumer
            .fetch(fetch_request("poll", 0, 0, RecordFormat::Decoded, 120_000))
            .await
            .unwrap()
            .into_inner()
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "the fetch should be waiting for data"
    );
    let sent = records("wake", 1, 42);
    produce_ok(&mut producer, "poll", 0, batch(&sent)).await;
    let response = tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .expect("the append did not wake the long poll")
        .unwrap();
    let partition = &response.topics[0].partitions[0];
    assert_eq!(partition.records.len(), 1);
    assert_eq!(partition.records[0].value, sent[0].value);
}

#[tokio::test]
async fn streams_answer_every_request_in_order() {
    let (_zk, broker) = start().await;
    create_topic(&broker, "streamed", 2, &[]).await;
    let mut client = broker.broker_client().unwrap();

    let requests: Vec<ProduceRequest> = (0..40u64)
        .map(|i| {
            let mut request = raw_request(
                "streamed",
                (i % 2) as i32,
                1,
                batch(&records(&format!("s{i}"), 4, 7)),
            );
            request.request_id = 1000 + i;
            request
        })
        .collect();
    let mut responses = client
        .produce_stream(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    let mut next_offset = [0i64; 2];
    for i in 0..40u64 {
        let response = responses
            .next()
            .await
            .expect("one response per request")
            .unwrap();
        assert_eq!(
            response.request_id,
            1000 + i,
            "responses come back in request order"
        );
        let p = &response.topics[0].partitions[0];
        assert_eq!(p.error_code, ErrorCode::None as i32, "{}", p.error_message);
        let slot = (i % 2) as usize;
        assert_eq!(p.base_offset, next_offset[slot]);
        next_offset[slot] += 4;
    }
    assert!(
        responses.next().await.is_none(),
        "the stream ends when the client stops sending"
    );

    // Pipelined fetches: one response per request, in order.
    let fetches: Vec<_> = (0..5)
        .map(|i| {
            let mut request = fetch_request("streamed", 0, i * 4, RecordFormat::Decoded, 0);
            request.request_id = i as u64;
            request
        })
        .collect();
    let mut responses = client
        .fetch_stream(tokio_stream::iter(fetches))
        .await
        .unwrap()
        .into_inner();
    for i in 0..5i64 {
        let response = responses.next().await.unwrap().unwrap();
        assert_eq!(response.request_id, i as u64);
        assert_eq!(response.topics[0].partitions[0].records[0].offset, i * 4);
    }
}

#[tokio::test]
async fn metadata_and_health_describe_the_broker() {
    let (_zk, broker) = start().await;
    create_topic(&broker, "meta", 2, &[]).await;
    let mut client = broker.broker_client().unwrap();
    let metadata = client
        .metadata(tributary_proto::v1::MetadataRequest {
            topics: vec!["meta".into(), "missing".into()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(metadata.cluster_id.len(), 22, "Kafka-style cluster id");
    assert_eq!(metadata.brokers.len(), 1);
    assert_eq!(metadata.brokers[0].port, i32::from(broker.port()));
    let meta = &metadata.topics[0];
    assert_eq!(meta.partitions.len(), 2);
    assert!(
        meta.partitions
            .iter()
            .all(|p| p.leader == 1 && p.replicas == [1] && p.isr == [1] && p.leader_epoch == 0)
    );
    assert_eq!(
        metadata.topics[1].error_code,
        ErrorCode::UnknownTopicOrPartition as i32
    );
    // The cluster id is stable across restarts (it lives in meta.properties).
    let cluster_id = metadata.cluster_id.clone();
    let mut broker = broker;
    broker.restart().await.unwrap();
    // The metadata cache fills when the controller's UpdateMetadata arrives after the restart.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let again = loop {
        let again = broker
            .broker_client()
            .unwrap()
            .metadata(tributary_proto::v1::MetadataRequest { topics: vec![] })
            .await
            .unwrap()
            .into_inner();
        if !again.topics.is_empty() || std::time::Instant::now() > deadline {
            break again;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(again.cluster_id, cluster_id);
    assert_eq!(again.topics.len(), 1, "topics survive a restart");
}
