//! Helpers shared by the scenario tests: raw gRPC calls with the generated clients (so tests can
//! send exactly the bytes they want, bad ones included) and batch building.
#![allow(dead_code)]

pub mod client_reads;
pub mod cluster;
pub mod groups;
pub mod replicas;

use std::collections::HashMap;

use bytes::Bytes;
use tonic::transport::Channel;
use tributary_integration_tests::{Broker, BrokerConfig, ZooKeeper};
use tributary_proto::v1::admin_client::AdminClient;
use tributary_proto::v1::broker_client::BrokerClient;
use tributary_proto::v1::{
    CreateTopicResult, CreateTopicsRequest, ErrorCode, FetchPartition, FetchRequest,
    ListOffsetsPartition, ListOffsetsPartitionResponse, ListOffsetsRequest, ListOffsetsTopic,
    NewTopic, PartitionFetchResponse, PartitionProduceData, PartitionProduceResponse,
    ProduceRequest, RecordFormat, TopicFetchData, TopicProduceData,
};
use tributary_record::{BatchBuilder, BatchIter, DecodedRecord, Record, decode_records};

/// ZooKeeper plus one broker with extra `server.properties` entries.
pub async fn start_with(overrides: &[(&str, &str)]) -> (ZooKeeper, Broker) {
    let zookeeper = ZooKeeper::start().expect("start ZooKeeper");
    let mut config = BrokerConfig::new(1, zookeeper.connect_string());
    for (key, value) in overrides {
        config = config.with_override(*key, *value);
    }
    let broker = Broker::start(config).await.expect("start broker");
    (zookeeper, broker)
}

/// ZooKeeper plus one broker with default settings.
pub async fn start() -> (ZooKeeper, Broker) {
    start_with(&[]).await
}

/// Creates a topic, returning the per-topic result (not asserting success).
pub async fn try_create_topic(
    admin: &mut AdminClient<Channel>,
    name: &str,
    partitions: i32,
    replication_factor: i32,
    configs: &[(&str, &str)],
) -> CreateTopicResult {
    let configs: HashMap<String, String> = configs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let response = admin
        .create_topics(CreateTopicsRequest {
            topics: vec![NewTopic {
                name: name.into(),
                num_partitions: partitions,
                replication_factor,
                configs,
            }],
            ..Default::default()
        })
        .await
        .expect("CreateTopics call")
        .into_inner();
    response.results.into_iter().next().expect("one result")
}

/// Creates a topic and asserts it worked.
pub async fn create_topic(broker: &Broker, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    let mut admin = broker.admin_client().expect("admin client");
    let result = try_create_topic(&mut admin, name, partitions, 0, configs).await;
    assert_eq!(
        result.error_code,
        ErrorCode::None as i32,
        "create {name}: {}",
        result.error_message
    );
}

/// A recent wall-clock time, fixed for the test process. Record timestamps are offsets from it:
/// 1970 timestamps would make every segment older than `segment.ms` and `retention.ms`.
pub fn t0() -> i64 {
    static T0: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *T0.get_or_init(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970");
        now.as_millis() as i64 - 60_000
    })
}

/// `n` records with recognisable keys, values, headers and timestamps increasing from
/// `t0() + base_timestamp`.
pub fn records(prefix: &str, n: usize, base_timestamp: i64) -> Vec<Record> {
    let base_timestamp = t0() + base_timestamp;
    (0..n)
        .map(|i| Record {
            key: if i % 4 == 3 {
                None
            } else {
                Some(Bytes::from(format!("{prefix}-key-{i}")))
            },
            value: Some(Bytes::from(format!(
                "{prefix}-value-{i}-{}",
                "x".repeat(i % 7)
            ))),
            timestamp: base_timestamp + i as i64,
            headers: vec![tributary_record::Header {
                key: "i".into(),
                value: Some(Bytes::from(i.to_string())),
            }],
        })
        .collect()
}

/// One uncompressed batch of `records`.
pub fn batch(records: &[Record]) -> Bytes {
    let mut builder = BatchBuilder::new();
    for record in records {
        builder.push(record);
    }
    builder.build()
}

/// Produce request for one partition with raw batch bytes.
pub fn raw_request(topic: &str, partition: i32, acks: i32, batches: Bytes) -> ProduceRequest {
    ProduceRequest {
        request_id: 0,
        acks,
        timeout_ms: 0,
        topics: vec![TopicProduceData {
            topic: topic.into(),
            partitions: vec![PartitionProduceData {
                partition,
                batches,
                records: vec![],
            }],
        }],
    }
}

/// Sends raw batches to one partition; returns that partition's result.
pub async fn produce_raw(
    client: &mut BrokerClient<Channel>,
    topic: &str,
    partition: i32,
    batches: Bytes,
) -> PartitionProduceResponse {
    let response = client
        .produce(raw_request(topic, partition, 1, batches))
        .await
        .expect("Produce call")
        .into_inner();
    response.topics[0].partitions[0].clone()
}

/// Sends raw batches and asserts success; returns (base, last) offsets.
pub async fn produce_ok(
    client: &mut BrokerClient<Channel>,
    topic: &str,
    partition: i32,
    batches: Bytes,
) -> (i64, i64) {
    let result = produce_raw(client, topic, partition, batches).await;
    assert_eq!(
        result.error_code,
        ErrorCode::None as i32,
        "produce: {}",
        result.error_message
    );
    (result.base_offset, result.last_offset)
}

/// One-partition fetch request.
pub fn fetch_request(
    topic: &str,
    partition: i32,
    offset: i64,
    format: RecordFormat,
    max_wait_ms: i32,
) -> FetchRequest {
    FetchRequest {
        request_id: 0,
        replica_id: -1,
        max_wait_ms,
        min_bytes: 1,
        max_bytes: 0,
        format: format as i32,
        topics: vec![TopicFetchData {
            topic: topic.into(),
            partitions: vec![FetchPartition {
                partition,
                fetch_offset: offset,
                partition_max_bytes: 8 << 20,
                current_leader_epoch: -1,
                last_fetched_epoch: None,
            }],
        }],
    }
}

/// Fetches one partition raw (no wait) and returns the partition result.
pub async fn fetch_raw(
    client: &mut BrokerClient<Channel>,
    topic: &str,
    partition: i32,
    offset: i64,
) -> PartitionFetchResponse {
    let response = client
        .fetch(fetch_request(
            topic,
            partition,
            offset,
            RecordFormat::Raw,
            0,
        ))
        .await
        .expect("Fetch call")
        .into_inner();
    response.topics[0].partitions[0].clone()
}

/// Decodes raw fetched batches, keeping records at or above `from`.
pub fn decode_all(batches: &Bytes, from: i64) -> Vec<DecodedRecord> {
    let mut out = Vec::new();
    let mut iter = BatchIter::new(batches);
    for item in iter.by_ref() {
        let (_, range) = item.expect("well-formed batch header");
        let batch = batches.slice_ref(range);
        out.extend(
            decode_records(&batch)
                .expect("valid batch")
                .into_iter()
                .filter(|r| r.offset >= from),
        );
    }
    out
}

/// Reads the whole partition from `from` to the high watermark.
pub async fn read_all(
    client: &mut BrokerClient<Channel>,
    topic: &str,
    partition: i32,
    from: i64,
) -> Vec<DecodedRecord> {
    let mut out = Vec::new();
    let mut offset = from;
    loop {
        let result = fetch_raw(client, topic, partition, offset).await;
        assert_eq!(
            result.error_code,
            ErrorCode::None as i32,
            "fetch: {}",
            result.error_message
        );
        let records = decode_all(&result.batches, offset);
        if records.is_empty() {
            assert_eq!(
                offset, result.high_watermark,
                "no records returned below the high watermark"
            );
            return out;
        }
        offset = records.last().expect("non-empty").offset + 1;
        out.extend(records);
    }
}

/// ListOffsets for one partition with the given spec (-2 earliest, -1 latest, or a timestamp).
pub async fn list_offset(
    client: &mut BrokerClient<Channel>,
    topic: &str,
    partition: i32,
    timestamp: i64,
) -> ListOffsetsPartitionResponse {
    let response = client
        .list_offsets(ListOffsetsRequest {
            topics: vec![ListOffsetsTopic {
                topic: topic.into(),
                partitions: vec![ListOffsetsPartition {
                    partition,
                    timestamp,
                }],
            }],
        })
        .await
        .expect("ListOffsets call")
        .into_inner();
    response.topics[0].partitions[0].clone()
}

/// The latest offset (high watermark) of a partition.
pub async fn latest(client: &mut BrokerClient<Channel>, topic: &str, partition: i32) -> i64 {
    let result = list_offset(client, topic, partition, -1).await;
    assert_eq!(
        result.error_code,
        ErrorCode::None as i32,
        "{}",
        result.error_message
    );
    result.offset
}

/// Asserts that `decoded` holds exactly `expected`, in order, from offset `base`.
pub fn assert_records(decoded: &[DecodedRecord], expected: &[Record], base: i64) {
    assert_eq!(decoded.len(), expected.len(), "record count");
    for (i, (d, e)) in decoded.iter().zip(expected).enumerate() {
        assert_eq!(d.offset, base + i as i64, "offset of record {i}");
        assert_eq!(d.key, e.key, "key of record {i}");
        assert_eq!(d.value, e.value, "value of record {i}");
        assert_eq!(d.timestamp, e.timestamp, "timestamp of record {i}");
        assert_eq!(d.headers, e.headers, "headers of record {i}");
    }
}

/// Waits (up to 30 s) until `broker` leads partitions `0..partitions` of `topic`: after a
/// restart, partitions come online when the controller's LeaderAndIsr arrives.
pub async fn wait_online(broker: &Broker, topic: &str, partitions: i32) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut client = broker.broker_client().expect("broker client");
    for partition in 0..partitions {
        loop {
            let result = list_offset(&mut client, topic, partition, -1).await;
            if result.error_code == ErrorCode::None as i32 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{topic}-{partition} not online on broker {}: {}",
                broker.id(),
                result.error_message
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}
