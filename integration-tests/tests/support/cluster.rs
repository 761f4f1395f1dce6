//! Helpers for scenarios with several brokers: starting them, reading the controller's
//! decisions out of ZooKeeper, waiting until every broker's metadata agrees, and producing at
//! whichever broker currently leads a partition.

use std::time::{Duration, Instant};

use tributary_integration_tests::{Broker, BrokerConfig, ZooKeeper};
use tributary_proto::v1::{ErrorCode, MetadataRequest, PartitionMetadata, TopicMetadata};
use tributary_zk_layout::payloads::{
    ControllerRegistration, PartitionState, Payload, decode_controller_epoch,
};
use zookeeper_client as zk;

use super::{batch, produce_raw, records, t0, try_create_topic};

/// How long any single wait in a cluster scenario may take.
pub const LIMIT: Duration = Duration::from_secs(30);

pub async fn start_cluster(zookeeper: &ZooKeeper, ids: &[i32]) -> Vec<Broker> {
    start_cluster_with(zookeeper, ids, &[]).await
}

/// Brokers `ids` with the same extra `server.properties` entries.
pub async fn start_cluster_with(
    zookeeper: &ZooKeeper,
    ids: &[i32],
    overrides: &[(&str, &str)],
) -> Vec<Broker> {
    let mut brokers = Vec::new();
    for &id in ids {
        let mut config = BrokerConfig::new(id, zookeeper.connect_string());
        for (key, value) in overrides {
            config = config.with_override(*key, *value);
        }
        brokers.push(Broker::start(config).await.expect("start broker"));
    }
    brokers
}

pub async fn zk_client(zookeeper: &ZooKeeper) -> zk::Client {
    zk::Client::connector()
        .with_session_timeout(Duration::from_secs(10))
        .connect(&zookeeper.connect_string())
        .await
        .expect("connect to ZooKeeper")
}

pub async fn controller_in_zk(client: &zk::Client) -> (i32, i32) {
    let (data, _) = client.get_data("/controller").await.expect("/controller");
    let controller = ControllerRegistration::decode(&data).unwrap().broker_id.0;
    let (epoch, _) = client.get_data("/controller_epoch").await.unwrap();
    (controller, decode_controller_epoch(&epoch).unwrap().0)
}

/// Polls `check` every 50 ms until it returns `Some`, failing after `limit`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `topic`'s metadata as `broker` answers it (None on any error).
pub async fn topic_metadata(broker: &Broker, topic: &str) -> Option<TopicMetadata> {
    let mut client = broker.broker_client().ok()?;
    let response = client
        .metadata(MetadataRequest {
            topics: vec![topic.into()],
        })
        .await
        .ok()?
        .into_inner();
    response
        .topics
        .into_iter()
        .find(|t| t.topic == topic && t.error_code == ErrorCode::None as i32)
}

/// Waits until every broker in `brokers` reports `topic` with `partitions` partitions that all
/// satisfy `ok`; returns the partitions as the first broker sees them.
pub async fn agreed_partitions(
    brokers: &[&Broker],
    topic: &str,
    partitions: usize,
    ok: impl Fn(&PartitionMetadata) -> bool,
) -> Vec<PartitionMetadata> {
    eventually(&format!("agreed metadata of {topic}"), LIMIT, || async {
        let mut seen: Option<Vec<PartitionMetadata>> = None;
        for broker in brokers {
            let meta = topic_metadata(broker, topic).await?;
            if meta.partitions.len() != partitions || !meta.partitions.iter().all(&ok) {
                return None;
            }
            match &seen {
                Some(first) if *first != meta.partitions => return None,
                Some(_) => {}
                None => seen = Some(meta.partitions),
            }
        }
        seen
    })
    .await
}

pub async fn create(broker: &Broker, topic: &str, partitions: i32, replication_factor: i32) {
    let mut admin = broker.admin_client().unwrap();
    let result = try_create_topic(&mut admin, topic, partitions, replication_factor, &[]).await;
    assert_eq!(
        result.error_code,
        ErrorCode::None as i32,
        "create {topic}: {}",
        result.error_message
    );
}

/// Produces one small batch to the partition's current leader (found through `via`'s
/// metadata), retrying retriable errors until `limit`. Returns (leader, base offset).
pub async fn produce_to_leader(
    brokers: &[&Broker],
    topic: &str,
    partition: i32,
    limit: Duration,
) -> (i32, i64) {
    let payload = batch(&records("r", 3, t0()));
    eventually("a successful produce to the leader", limit, || {
        let payload = payload.clone();
        async move {
            for via in brokers {
                let Some(meta) = topic_metadata(via, topic).await else {
                    continue;
                };
                let leader = meta
                    .partitions
                    .iter()
                    .find(|p| p.partition == partition)?
                    .leader;
                let target = brokers.iter().find(|b| b.id() == leader)?;
                let mut client = target.broker_client().ok()?;
                let result = produce_raw(&mut client, topic, partition, payload.clone()).await;
                if result.error_code == ErrorCode::None as i32 {
                    return Some((leader, result.base_offset));
                }
                return None;
            }
            None
        }
    })
    .await
}

pub async fn partition_state(
    client: &zk::Client,
    topic: &str,
    partition: i32,
) -> (PartitionState, i32) {
    let path = format!("/brokers/topics/{topic}/partitions/{partition}/state");
    let (data, stat) = client.get_data(&path).await.expect(&path);
    (PartitionState::decode(&data).unwrap(), stat.version)
}

pub async fn controller_in_zk_opt(client: &zk::Client) -> Option<(i32, i32)> {
    let (data, _) = client.get_data("/controller").await.ok()?;
    let controller = ControllerRegistration::decode(&data).ok()?.broker_id.0;
    let (epoch, _) = client.get_data("/controller_epoch").await.ok()?;
    Some((controller, decode_controller_epoch(&epoch).ok()?.0))
}

/// The `.log` segment files of `topic`-`partition` under a broker's data directory, in
/// offset order (none if it has no such log).
pub fn segment_files(
    data_dir: &std::path::Path,
    topic: &str,
    partition: i32,
) -> Vec<std::path::PathBuf> {
    use std::path::{Path, PathBuf};
    fn find(dir: &Path, name: &str) -> Option<PathBuf> {
        for entry in std::fs::read_dir(dir).ok()?.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n == name) {
                    return Some(path);
                }
                if let Some(found) = find(&path, name) {
                    return Some(found);
                }
            }
        }
        None
    }
    let Some(dir) = find(data_dir, &format!("{topic}-{partition}")) else {
        return Vec::new();
    };
    let mut segments: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    segments.retain(|p| p.extension().is_some_and(|e| e == "log"));
    segments.sort();
    segments
}

/// The concatenated `.log` segment files of `topic`-`partition` under a broker's data
/// directory (empty if it has none): replicas that copied the leader's batches unchanged
/// compare equal byte for byte.
pub fn segment_bytes(data_dir: &std::path::Path, topic: &str, partition: i32) -> Vec<u8> {
    segment_files(data_dir, topic, partition)
        .iter()
        .flat_map(|p| std::fs::read(p).unwrap_or_default())
        .collect()
}
