//! Single-broker scenarios against the real `broker` and `tributary` binaries and ZooKeeper.

mod support;

use std::io::Write as _;
use std::process::Stdio;

use bytes::Bytes;
use tonic::transport::Channel;
use tributary_integration_tests::{Broker, BrokerConfig, ZooKeeper};
use tributary_proto::v1::broker_client::BrokerClient;
use tributary_proto::v1::{
    CreateTopicsRequest, ErrorCode, FetchPartition, FetchRequest, MetadataRequest, NewTopic,
    PartitionProduceData, ProduceRequest, Record, RecordFormat, TopicFetchData, TopicProduceData,
};

async fn start() -> anyhow::Result<(ZooKeeper, Broker)> {
    let zookeeper = ZooKeeper::start()?;
    let broker = Broker::start(BrokerConfig::new(1, zookeeper.connect_string())).await?;
    Ok((zookeeper, broker))
}

async fn create_topic(broker: &Broker, name: &str, partitions: i32) {
    let response = broker
        .admin_client()
        .unwrap()
        .create_topics(CreateTopicsRequest {
            topics: vec![NewTopic {
                name: name.into(),
                num_partitions: partitions,
                ..Default::default()
            }],
            validate_only: false,
            ..Default::default()
        })
        .await
        .expect("CreateTopics")
        .into_inner();
    let result = &response.results[0];
    assert_eq!(
        result.error_code,
        ErrorCode::None as i32,
        "{}",
        result.error_message
    );
    assert_eq!(result.num_partitions, partitions);
}

/// Produces `values` to partition 0 with acks=1 and returns the base offset.
async fn produce(client: &mut BrokerClient<Channel>, topic: &str, values: &[&str]) -> i64 {
    let records = values
        .iter()
        .map(|value| Record {
            value: Some(Bytes::from(value.to_string())),
            ..Default::default()
        })
        .collect();
    let response = client
        .produce(ProduceRequest {
            request_id: 1,
            acks: 1,
            timeout_ms: 0,
            topics: vec![TopicProduceData {
                topic: topic.into(),
                partitions: vec![PartitionProduceData {
                    partition: 0,
                    records,
                    ..Default::default()
                }],
            }],
        })
        .await
        .expect("Produce")
        .into_inner();
    let partition = &response.topics[0].partitions[0];
    assert_eq!(
        partition.error_code,
        ErrorCode::None as i32,
        "{}",
        partition.error_message
    );
    assert_eq!(
        partition.last_offset - partition.base_offset + 1,
        values.len() as i64
    );
    partition.base_offset
}

/// Fetches partition 0 from offset 0, decoded, and returns the values.
async fn fetch_values(client: &mut BrokerClient<Channel>, topic: &str) -> Vec<String> {
    let response = client
        .fetch(FetchRequest {
            request_id: 2,
            replica_id: -1,
            format: RecordFormat::Decoded as i32,
            topics: vec![TopicFetchData {
                topic: topic.into(),
                partitions: vec![FetchPartition {
                    partition: 0,
                    fetch_offset: 0,
                    current_leader_epoch: -1,
                    ..Default::default()
                }],
            }],
            ..Default::default()
        })
        .await
        .expect("Fetch")
        .into_inner();
    let partition = &response.topics[0].partitions[0];
    assert_eq!(
        partition.error_code,
        ErrorCode::None as i32,
        "{}",
        partition.error_message
    );
    let offsets: Vec<i64> = partition
        .records
        .iter()
        .map(|record| record.offset)
        .collect();
    assert_eq!(
        offsets,
        (0..offsets.len() as i64).collect::<Vec<_>>(),
        "offsets must be dense from 0"
    );
    partition
        .records
        .iter()
        .map(|record| {
            String::from_utf8_lossy(record.value.as_deref().unwrap_or_default()).into_owned()
        })
        .collect()
}

#[tokio::test]

async fn broker_starts_and_describes_itself() {
    let (_zookeeper, broker) = start().await.unwrap();
    let metadata = broker
        .broker_client()
        .unwrap()
        .metadata(MetadataRequest { topics: vec![] })
        .await
        .unwrap()
        .into_inner();
    let me = metadata
        .brokers
        .iter()
        .find(|info| info.id == 1)
        .expect("broker 1 in metadata");
    assert_eq!(me.port, i32::from(broker.port()));
}

#[tokio::test]

async fn records_survive_kill9_and_clean_restart() {
    let (_zookeeper, mut broker) = start().await.unwrap();
    create_topic(&broker, "durable", 3).await;
    let mut client = broker.broker_client().unwrap();
    assert_eq!(produce(&mut client, "durable", &["a", "b", "c"]).await, 0);
    assert_eq!(fetch_values(&mut client, "durable").await, ["a", "b", "c"]);

    // Crash: acks=1 data is in the page cache, which survives a process kill.
    broker.kill9().unwrap();
    broker.restart().await.unwrap();
    support::wait_online(&broker, "durable", 3).await;
    let mut client = broker.broker_client().unwrap();
    assert_eq!(fetch_values(&mut client, "durable").await, ["a", "b", "c"]);
    assert_eq!(
        produce(&mut client, "durable", &["d"]).await,
        3,
        "offsets continue after recovery"
    );

    // Clean shutdown and restart.
    let status = broker.terminate().await.unwrap();
    assert!(status.success());
    broker.restart().await.unwrap();
    support::wait_online(&broker, "durable", 3).await;
    let mut client = broker.broker_client().unwrap();
    assert_eq!(
        fetch_values(&mut client, "durable").await,
        ["a", "b", "c", "d"]
    );
}

#[tokio::test]

async fn cli_creates_produces_and_consumes() {
    let (_zookeeper, broker) = start().await.unwrap();
    let output = broker
        .cli()
        .unwrap()
        .args(["topics", "create", "cli", "--partitions", "3"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "topics create: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    let mut produce = broker
        .cli()
        .unwrap()
        .args(["produce", "cli", "--partition", "0"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    produce
        .stdin
        .take()
        .unwrap()
        .write_all(b"one\ntwo\nthree\n")
        .unwrap();
    assert!(produce.wait().unwrap().success());

    let output = broker
        .cli()
        .unwrap()
        .args(["consume", "cli", "--from-beginning", "--max-messages", "3"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "consume: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut values: Vec<String> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    // Written to partition 0 (without --partition the partitioner would pick one).
    values.sort();
    assert_eq!(values, ["one", "three", "two"]);
}
