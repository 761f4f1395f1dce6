//! Cluster metadata (`Metadata`): the brokers, the controller, and the health of the
//! partitions (offline, under-replicated) summed up in pure code.

use std::collections::BTreeSet;

use tonic::transport::Channel;
use tributary_proto::v1 as pb;
use tributary_proto::v1::broker_client::BrokerClient;

use super::Admin;
use super::topics::PartitionInfo;
use crate::{Client, ClientError, ErrorCode};

/// A live broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    /// `broker.id`.
    pub id: i32,
    /// Advertised host.
    pub host: String,
    /// Advertised gRPC port.
    pub port: i32,
    /// Rack, if configured.
    pub rack: Option<String>,
    /// The broker epoch (the czxid of its `/brokers/ids/<id>` registration), when the
    /// answering broker knows it.
    pub epoch: Option<i64>,
}

impl BrokerInfo {
    /// `host:port`, as `--bootstrap-server` takes it.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// A topic as described by `Metadata`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMetadata {
    /// Topic name.
    pub name: String,
    /// `None`, or the topic-level error (`UNKNOWN_TOPIC_OR_PARTITION` for a missing topic).
    pub error: Option<(ErrorCode, String)>,
    /// Whether the topic is internal (such as `__consumer_offsets`).
    pub is_internal: bool,
    /// Partitions in partition order.
    pub partitions: Vec<PartitionInfo>,
}

/// The cluster as one broker sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterMetadata {
    /// The cluster id.
    pub cluster_id: String,
    /// The controller's broker id, if known.
    pub controller_id: Option<i32>,
    /// The controller epoch the answering broker last saw, if any.
    pub controller_epoch: Option<i32>,
    /// Live brokers.
    pub brokers: Vec<BrokerInfo>,
    /// The requested topics (all topics when none were named).
    pub topics: Vec<TopicMetadata>,
}

/// The answer of [`Admin::describe_cluster`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDescription {
    /// The cluster id (22 characters, ZooKeeper's `/cluster/id`).
    pub cluster_id: String,
    /// The controller's broker id as the answering broker last saw it; `None` when unknown.
    pub controller_id: Option<i32>,
    /// The epoch of the last controller request the answering broker accepted (ZooKeeper's
    /// `/controller_epoch` then); `None` before any.
    pub controller_epoch: Option<i32>,
    /// The live brokers, by id.
    pub brokers: Vec<BrokerInfo>,
    /// Topic and partition counts and the partitions that need attention.
    pub health: ClusterHealth,
}

/// Partition health over every topic, from one metadata snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterHealth {
    /// Topics (internal ones included).
    pub topics: usize,
    /// Partitions of all topics.
    pub partitions: usize,
    /// Partitions without a leader ([`PartitionInfo::is_offline`]).
    pub offline_partitions: usize,
    /// Partitions whose ISR is smaller than the replica set
    /// ([`PartitionInfo::is_under_replicated`]).
    pub under_replicated_partitions: usize,
    /// Brokers that hold a replica but are not alive, sorted.
    pub offline_brokers: Vec<i32>,
}

impl ClusterHealth {
    /// Sums up `topics`; topics with an error (none in an all-topics answer) count with the
    /// partitions they list.
    pub fn of(topics: &[TopicMetadata]) -> ClusterHealth {
        let mut health = ClusterHealth {
            topics: topics.len(),
            ..ClusterHealth::default()
        };
        let mut offline_brokers = BTreeSet::new();
        for partition in topics.iter().flat_map(|topic| &topic.partitions) {
            health.partitions += 1;
            health.offline_partitions += usize::from(partition.is_offline());
            health.under_replicated_partitions += usize::from(partition.is_under_replicated());
            offline_brokers.extend(partition.offline_replicas.iter().copied());
        }
        health.offline_brokers = offline_brokers.into_iter().collect();
        health
    }
}

impl From<pb::TopicMetadata> for TopicMetadata {
    fn from(t: pb::TopicMetadata) -> Self {
        TopicMetadata {
            error: match ErrorCode::from_wire(t.error_code) {
                ErrorCode::None => None,
                code => Some((code, t.error_message)),
            },
            name: t.topic,
            is_internal: t.is_internal,
            partitions: t.partitions.into_iter().map(PartitionInfo::from).collect(),
        }
    }
}

impl Admin {
    /// The cluster id, the controller, the live brokers and the partitions' health, from one
    /// `Metadata` call for every topic on the bootstrap broker. Errors: only whole-call
    /// failures.
    pub async fn describe_cluster(&self) -> Result<ClusterDescription, ClientError> {
        let metadata = self.metadata(&[]).await?;
        let mut brokers = metadata.brokers;
        brokers.sort_by_key(|broker| broker.id);
        Ok(ClusterDescription {
            health: ClusterHealth::of(&metadata.topics),
            cluster_id: metadata.cluster_id,
            controller_id: metadata.controller_id,
            controller_epoch: metadata.controller_epoch,
            brokers,
        })
    }

    /// `Metadata` for the named topics (all when `topics` is empty) from the bootstrap
    /// broker. A missing topic is not an error here: its [`TopicMetadata::error`] says
    /// `UNKNOWN_TOPIC_OR_PARTITION`. The answer also updates the client's leader routing.
    pub async fn metadata(&self, topics: &[&str]) -> Result<ClusterMetadata, ClientError> {
        self.client.metadata(topics).await
    }

    /// The partition ids of `topic`. Errors: `UNKNOWN_TOPIC_OR_PARTITION` for a missing
    /// topic, whole-call failures.
    pub async fn partitions_of(&self, topic: &str) -> Result<Vec<i32>, ClientError> {
        self.client.partitions_of(topic).await
    }
}

impl Client {
    /// Cluster metadata for the named topics (all topics when `topics` is empty), as the
    /// bootstrap broker sees it. Per-topic errors are kept in [`TopicMetadata::error`]. The
    /// answer also updates the leaders the data path routes to.
    pub async fn metadata(&self, topics: &[&str]) -> Result<ClusterMetadata, ClientError> {
        let metadata = fetch_metadata(self.broker_service(), topics).await?;
        self.router.record(&metadata);
        Ok(metadata)
    }

    /// The partition ids of a topic, from metadata. Fails if the topic does not exist.
    pub async fn partitions_of(&self, topic: &str) -> Result<Vec<i32>, ClientError> {
        let metadata = self.metadata(&[topic]).await?;
        let found = metadata
            .topics
            .into_iter()
            .find(|t| t.name == topic)
            .ok_or_else(|| ClientError::MalformedResponse {
                operation: "Metadata",
                topic: topic.to_owned(),
                partition: None,
                reason: "no entry for the topic".to_owned(),
            })?;
        if let Some((code, message)) = found.error {
            return Err(ClientError::Broker {
                topic: topic.to_owned(),
                partition: None,
                code,
                message,
            });
        }
        Ok(found.partitions.iter().map(|p| p.partition).collect())
    }
}

/// One `Metadata` call on `service`.
pub(crate) async fn fetch_metadata(
    mut service: BrokerClient<Channel>,
    topics: &[&str],
) -> Result<ClusterMetadata, ClientError> {
    let request = pb::MetadataRequest {
        topics: topics.iter().map(|name| (*name).to_owned()).collect(),
    };
    let response = service
        .metadata(request)
        .await
        .map_err(ClientError::rpc("Metadata"))?
        .into_inner();
    Ok(ClusterMetadata {
        cluster_id: response.cluster_id,
        controller_id: (response.controller_id >= 0).then_some(response.controller_id),
        controller_epoch: (response.controller_epoch > 0).then_some(response.controller_epoch),
        brokers: response
            .brokers
            .into_iter()
            .map(|b| BrokerInfo {
                id: b.id,
                host: b.host,
                port: b.port,
                rack: b.rack,
                epoch: b.broker_epoch,
            })
            .collect(),
        topics: response
            .topics
            .into_iter()
            .map(TopicMetadata::from)
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_broker::FakeBroker;

    fn partition(
        leader: Option<i32>,
        replicas: &[i32],
        isr: &[i32],
        offline: &[i32],
    ) -> PartitionInfo {
        PartitionInfo {
            partition: 0,
            leader,
            leader_epoch: 3,
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            offline_replicas: offline.to_vec(),
            error: None,
        }
    }

    fn topic(name: &str, partitions: Vec<PartitionInfo>) -> TopicMetadata {
        TopicMetadata {
            name: name.into(),
            error: None,
            is_internal: name.starts_with("__"),
            partitions,
        }
    }

    #[test]
    fn health_counts_offline_and_under_replicated_partitions() {
        let topics = [
            topic(
                "orders",
                vec![
                    partition(Some(1), &[1, 2, 3], &[1, 2, 3], &[]),
                    partition(Some(2), &[2, 3, 1], &[2, 1], &[3]),
                    partition(None, &[3], &[3], &[3]),
                ],
            ),
            topic(
                "__consumer_offsets",
                vec![partition(Some(1), &[1, 4], &[1], &[4])],
            ),
            topic("empty", vec![]),
        ];
        assert_eq!(
            ClusterHealth::of(&topics),
            ClusterHealth {
                topics: 3,
                partitions: 4,
                offline_partitions: 1,
                under_replicated_partitions: 2,
                offline_brokers: vec![3, 4],
            }
        );
        assert_eq!(ClusterHealth::of(&[]), ClusterHealth::default());
    }

    #[tokio::test]
    async fn describe_cluster_lists_brokers_and_controller() {
        let (addresses, brokers) = FakeBroker::start_cluster(2).await;
        brokers[0].create("t", 3);
        let admin = Admin::connect(&addresses[1]).await.unwrap();
        let cluster = admin.describe_cluster().await.unwrap();
        assert_eq!(cluster.cluster_id, "fake-cluster");
        assert_eq!(cluster.controller_id, Some(1));
        let ids: Vec<i32> = cluster.brokers.iter().map(|b| b.id).collect();
        assert_eq!(ids, [1, 2]);
        assert_eq!(cluster.brokers[1].address(), addresses[1]);
        assert_eq!(cluster.health.partitions, 3);
        assert_eq!(cluster.health.under_replicated_partitions, 0);
    }
}
