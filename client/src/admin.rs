//! Topic management and cluster metadata.

use std::collections::BTreeMap;
use std::time::Duration;

use tonic::transport::Channel;
use tributary_proto::v1 as pb;
use tributary_proto::v1::broker_client::BrokerClient;

use crate::error::check;
use crate::response::topic_result;
use crate::{Client, ClientError, ErrorCode};

/// What the broker reports after creating a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedTopic {
    /// Topic name.
    pub name: String,
    /// The number of partitions the topic got.
    pub num_partitions: i32,
    /// The replication factor the topic got.
    pub replication_factor: i32,
}

/// One partition as described by `Metadata` or `DescribeTopics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// Partition id.
    pub partition: i32,
    /// The leader's broker id; `None` when the partition has no leader.
    pub leader: Option<i32>,
    /// The current leader epoch.
    pub leader_epoch: i32,
    /// All replicas, the preferred leader first.
    pub replicas: Vec<i32>,
    /// The in-sync replicas.
    pub isr: Vec<i32>,
    /// Replicas whose broker is down.
    pub offline_replicas: Vec<i32>,
    /// `None`, or why the partition is unavailable (e.g. `LEADER_NOT_AVAILABLE`).
    pub error: Option<ErrorCode>,
}

/// A topic as described by `DescribeTopics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    /// Topic name.
    pub name: String,
    /// Partitions in partition order.
    pub partitions: Vec<PartitionInfo>,
    /// Topic-level configuration overrides.
    pub configs: BTreeMap<String, String>,
}

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
    /// Live brokers.
    pub brokers: Vec<BrokerInfo>,
    /// The requested topics (all topics when none were named).
    pub topics: Vec<TopicMetadata>,
}

/// A request's `timeout_ms` (0 = the broker default), saturating at `i32::MAX`.
pub(crate) fn timeout_ms(timeout: Duration) -> i32 {
    i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX)
}

fn non_negative(id: i32) -> Option<i32> {
    (id >= 0).then_some(id)
}

fn error_of(code: i32) -> Option<ErrorCode> {
    match ErrorCode::from_wire(code) {
        ErrorCode::None => None,
        code => Some(code),
    }
}

impl From<pb::PartitionMetadata> for PartitionInfo {
    fn from(p: pb::PartitionMetadata) -> Self {
        PartitionInfo {
            partition: p.partition,
            leader: non_negative(p.leader),
            leader_epoch: p.leader_epoch,
            replicas: p.replicas,
            isr: p.isr,
            offline_replicas: p.offline_replicas,
            error: error_of(p.error_code),
        }
    }
}

impl From<pb::TopicMetadata> for TopicMetadata {
    fn from(t: pb::TopicMetadata) -> Self {
        TopicMetadata {
            error: error_of(t.error_code).map(|code| (code, t.error_message)),
            name: t.topic,
            is_internal: t.is_internal,
            partitions: t.partitions.into_iter().map(PartitionInfo::from).collect(),
        }
    }
}

impl Client {
    /// Creates a topic. `partitions` or `replication_factor` 0 means the broker default.
    /// Returns once every partition has a leader, or fails with `REQUEST_TIMED_OUT` after the
    /// broker's default wait (30 s) while creation goes on; see
    /// [`create_topic_with_timeout`](Self::create_topic_with_timeout).
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i32,
        configs: &[(String, String)],
    ) -> Result<CreatedTopic, ClientError> {
        self.create_topic_with_timeout(
            name,
            partitions,
            replication_factor,
            configs,
            Duration::ZERO,
        )
        .await
    }

    /// [`create_topic`](Self::create_topic) waiting at most `timeout` for the partitions'
    /// leaders (`Duration::ZERO`: the broker default, 30 s).
    pub async fn create_topic_with_timeout(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i32,
        configs: &[(String, String)],
        timeout: Duration,
    ) -> Result<CreatedTopic, ClientError> {
        if partitions < 0 || replication_factor < 0 {
            return Err(ClientError::InvalidArgument {
                argument: if partitions < 0 {
                    "partitions"
                } else {
                    "replication_factor"
                },
                reason: "must be positive (or 0 for the broker default)".to_owned(),
            });
        }
        let request = pb::CreateTopicsRequest {
            topics: vec![pb::NewTopic {
                name: name.to_owned(),
                num_partitions: partitions,
                replication_factor,
                configs: configs.iter().cloned().collect(),
            }],
            validate_only: false,
            timeout_ms: timeout_ms(timeout),
        };
        let response = self
            .admin_service()
            .create_topics(request)
            .await
            .map_err(ClientError::rpc("CreateTopics"))?;
        let result = topic_result(response.into_inner().results, "CreateTopics", name)?;
        Ok(CreatedTopic {
            name: result.name,
            num_partitions: result.num_partitions,
            replication_factor: result.replication_factor,
        })
    }

    /// Deletes a topic and all its data. Returns once the topic is gone from the broker's
    /// metadata, or fails with `REQUEST_TIMED_OUT` after the broker's default wait (30 s) while
    /// deletion goes on.
    pub async fn delete_topic(&self, name: &str) -> Result<(), ClientError> {
        self.delete_topic_with_timeout(name, Duration::ZERO).await
    }

    /// [`delete_topic`](Self::delete_topic) waiting at most `timeout` (`Duration::ZERO`: the
    /// broker default, 30 s).
    pub async fn delete_topic_with_timeout(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<(), ClientError> {
        let request = pb::DeleteTopicsRequest {
            topics: vec![name.to_owned()],
            timeout_ms: timeout_ms(timeout),
        };
        let response = self
            .admin_service()
            .delete_topics(request)
            .await
            .map_err(ClientError::rpc("DeleteTopics"))?;
        topic_result(response.into_inner().results, "DeleteTopics", name).map(|_| ())
    }

    /// Grows `topic` to `total_partitions` partitions (it must be larger than the current
    /// count, else `INVALID_PARTITIONS`). Waits like [`create_topic_with_timeout`](Self::create_topic_with_timeout).
    pub async fn create_partitions(
        &self,
        topic: &str,
        total_partitions: i32,
        timeout: Duration,
    ) -> Result<(), ClientError> {
        let request = pb::CreatePartitionsRequest {
            topics: vec![pb::CreatePartitionsTopic {
                name: topic.to_owned(),
                count: total_partitions,
            }],
            validate_only: false,
            timeout_ms: timeout_ms(timeout),
        };
        let response = self
            .admin_service()
            .create_partitions(request)
            .await
            .map_err(ClientError::rpc("CreatePartitions"))?;
        topic_result(response.into_inner().results, "CreatePartitions", topic).map(|_| ())
    }

    /// Describes the named topics (all topics when `names` is empty). Fails with the first
    /// topic-level error (e.g. `UNKNOWN_TOPIC_OR_PARTITION`).
    pub async fn describe_topics(
        &self,
        names: &[&str],
    ) -> Result<Vec<TopicDescription>, ClientError> {
        let request = pb::DescribeTopicsRequest {
            topics: names.iter().map(|name| (*name).to_owned()).collect(),
        };
        let response = self
            .admin_service()
            .describe_topics(request)
            .await
            .map_err(ClientError::rpc("DescribeTopics"))?;
        let mut topics = Vec::new();
        for topic in response.into_inner().topics {
            check(topic.error_code, &topic.error_message, &topic.name, None)?;
            topics.push(TopicDescription {
                name: topic.name,
                partitions: topic
                    .partitions
                    .into_iter()
                    .map(PartitionInfo::from)
                    .collect(),
                configs: topic.configs.into_iter().collect(),
            });
        }
        Ok(topics)
    }

    /// The names of all topics, sorted.
    pub async fn list_topics(&self) -> Result<Vec<String>, ClientError> {
        let metadata = self.metadata(&[]).await?;
        let mut names: Vec<String> = metadata
            .topics
            .into_iter()
            .map(|topic| topic.name)
            .collect();
        names.sort();
        Ok(names)
    }

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
        controller_id: non_negative(response.controller_id),
        brokers: response
            .brokers
            .into_iter()
            .map(|b| BrokerInfo {
                id: b.id,
                host: b.host,
                port: b.port,
                rack: b.rack,
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
    use std::time::Duration;

    use crate::fake_broker::FakeBroker;
    use crate::{Client, ErrorCode};

    #[tokio::test]
    async fn partitions_are_added_and_timeouts_are_sent() {
        let (address, broker) = FakeBroker::start().await;
        let client = Client::connect(&address).await.unwrap();
        client.create_topic("t", 2, 1, &[]).await.unwrap();
        client
            .create_partitions("t", 4, Duration::from_millis(1500))
            .await
            .unwrap();
        assert_eq!(broker.state.lock().unwrap().last_admin_timeout_ms, 1500);
        assert_eq!(client.partitions_of("t").await.unwrap(), vec![0, 1, 2, 3]);
        let error = client
            .create_partitions("t", 4, Duration::ZERO)
            .await
            .unwrap_err();
        assert_eq!(error.error_code(), Some(ErrorCode::InvalidPartitions));
        client
            .delete_topic_with_timeout("t", Duration::from_secs(3))
            .await
            .unwrap();
        assert_eq!(broker.state.lock().unwrap().last_admin_timeout_ms, 3000);
        assert_eq!(super::timeout_ms(Duration::from_secs(u64::MAX)), i32::MAX);
    }

    #[tokio::test]
    async fn topic_lifecycle() {
        let (address, _broker) = FakeBroker::start().await;
        let client = Client::connect(&address).await.unwrap();
        let created = client
            .create_topic("b", 3, 1, &[("retention.ms".into(), "1000".into())])
            .await
            .unwrap();
        assert_eq!(created.num_partitions, 3);
        client.create_topic("a", 0, 0, &[]).await.unwrap();
        let error = client.create_topic("a", 1, 1, &[]).await.unwrap_err();
        assert_eq!(error.error_code(), Some(ErrorCode::TopicAlreadyExists));
        assert!(client.create_topic("c", -1, 1, &[]).await.is_err());

        assert_eq!(
            client.list_topics().await.unwrap(),
            vec!["a".to_owned(), "b".to_owned()]
        );
        let described = client.describe_topics(&["b"]).await.unwrap();
        assert_eq!(described[0].partitions.len(), 3);
        assert_eq!(described[0].partitions[2].leader, Some(1));
        assert_eq!(client.partitions_of("b").await.unwrap(), vec![0, 1, 2]);
        let metadata = client.metadata(&["zzz"]).await.unwrap();
        assert_eq!(
            metadata.topics[0].error.as_ref().map(|e| e.0),
            Some(ErrorCode::UnknownTopicOrPartition)
        );
        assert_eq!(metadata.controller_id, Some(1));

        client.delete_topic("a").await.unwrap();
        let error = client.delete_topic("a").await.unwrap_err();
        assert_eq!(error.error_code(), Some(ErrorCode::UnknownTopicOrPartition));
        assert!(client.describe_topics(&["a"]).await.is_err());
    }
}
