//! Topics: create, delete, list, describe, add partitions.

use std::collections::BTreeMap;

use tributary_proto::v1 as pb;

use super::{Admin, AdminOptions, timeout_ms};
use crate::error::check;
use crate::response::topic_result;
use crate::{ClientError, ErrorCode};

/// A topic to create: `NewTopic::new("orders").partitions(3).replication_factor(2)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    /// Topic name: 1 to 249 characters from `[a-zA-Z0-9._-]`, not `.` or `..` (the broker
    /// checks; `INVALID_TOPIC_EXCEPTION`).
    pub name: String,
    /// Number of partitions; `None`: the broker's `num.partitions`.
    pub partitions: Option<i32>,
    /// Replication factor; `None`: the broker's `default.replication.factor`.
    pub replication_factor: Option<i32>,
    /// Topic-level configuration overrides (`retention.ms` -> `86400000`).
    pub configs: BTreeMap<String, String>,
}

impl NewTopic {
    /// A topic with the broker's default partition count and replication factor.
    pub fn new(name: impl Into<String>) -> Self {
        NewTopic {
            name: name.into(),
            partitions: None,
            replication_factor: None,
            configs: BTreeMap::new(),
        }
    }

    /// Sets the number of partitions.
    pub fn partitions(self, partitions: i32) -> Self {
        NewTopic {
            partitions: Some(partitions),
            ..self
        }
    }

    /// Sets the replication factor.
    pub fn replication_factor(self, replication_factor: i32) -> Self {
        NewTopic {
            replication_factor: Some(replication_factor),
            ..self
        }
    }

    /// Adds a configuration override.
    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.configs.insert(key.into(), value.into());
        self
    }

    /// The request entry; a count given must be positive (0 is how the wire says "default").
    fn to_wire(&self) -> Result<pb::NewTopic, ClientError> {
        let positive = |value: Option<i32>, argument: &'static str| match value {
            None => Ok(0),
            Some(n) if n > 0 => Ok(n),
            Some(n) => Err(ClientError::InvalidArgument {
                argument,
                reason: format!("{n}: must be at least 1"),
            }),
        };
        Ok(pb::NewTopic {
            name: self.name.clone(),
            num_partitions: positive(self.partitions, "partitions")?,
            replication_factor: positive(self.replication_factor, "replication_factor")?,
            configs: self.configs.clone().into_iter().collect(),
        })
    }
}

/// What the broker reports after creating a topic (or validating its creation).
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

impl PartitionInfo {
    /// Whether some replica is not in sync: the ISR is smaller than the replica set (Kafka's
    /// `UnderReplicatedPartitions`). A partition without a leader counts when its ISR is short.
    pub fn is_under_replicated(&self) -> bool {
        self.isr.len() < self.replicas.len()
    }

    /// Whether the partition has no leader, so it can be neither written nor read (Kafka's
    /// `OfflinePartitionsCount`).
    pub fn is_offline(&self) -> bool {
        self.leader.is_none()
    }
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

impl TopicDescription {
    /// Whether the topic is internal: its name starts with `__` (the broker's rule for
    /// `TopicMetadata.is_internal`, such as `__consumer_offsets`).
    pub fn is_internal(&self) -> bool {
        is_internal_name(&self.name)
    }

    /// The replication factor: the replica count of partition 0 (0 for no partitions).
    pub fn replication_factor(&self) -> usize {
        self.partitions.first().map_or(0, |p| p.replicas.len())
    }
}

pub(crate) fn is_internal_name(name: &str) -> bool {
    name.starts_with("__")
}

/// One topic of [`Admin::list_topics`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicListing {
    /// Topic name.
    pub name: String,
    /// Whether the topic is internal (such as `__consumer_offsets`).
    pub is_internal: bool,
    /// The number of partitions.
    pub partitions: usize,
}

/// Options of [`Admin::list_topics`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListTopicsOptions {
    /// List internal topics too (Kafka's `listInternal`; off by default).
    pub include_internal: bool,
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

impl Admin {
    /// Creates a topic (`CreateTopics`, bootstrap broker). Returns once every partition has a
    /// leader in that broker's metadata; with [`AdminOptions::validate_only`] only checks.
    ///
    /// Errors: [`ClientError::InvalidArgument`] for a partition count or replication factor
    /// below 1; broker codes `TOPIC_ALREADY_EXISTS`, `INVALID_TOPIC_EXCEPTION`,
    /// `INVALID_PARTITIONS`, `INVALID_REPLICATION_FACTOR` (more than the live brokers),
    /// `INVALID_CONFIG`, and `REQUEST_TIMED_OUT` after [`AdminOptions::timeout`] (the topic
    /// was created and is still starting).
    pub async fn create_topic(
        &self,
        topic: &NewTopic,
        options: &AdminOptions,
    ) -> Result<CreatedTopic, ClientError> {
        let request = pb::CreateTopicsRequest {
            topics: vec![topic.to_wire()?],
            validate_only: options.validate_only,
            timeout_ms: timeout_ms(options.timeout),
        };
        let response = self
            .client
            .admin_service()
            .create_topics(request)
            .await
            .map_err(ClientError::rpc("CreateTopics"))?;
        let result = topic_result(response.into_inner().results, "CreateTopics", &topic.name)?;
        Ok(CreatedTopic {
            name: result.name,
            num_partitions: result.num_partitions,
            replication_factor: result.replication_factor,
        })
    }

    /// Deletes a topic and all its data (`DeleteTopics`, bootstrap broker). Returns once the
    /// topic is gone from that broker's metadata.
    ///
    /// Errors: [`ClientError::InvalidArgument`] with [`AdminOptions::validate_only`] (the API
    /// cannot validate a deletion); broker codes `UNKNOWN_TOPIC_OR_PARTITION`,
    /// `TOPIC_DELETION_DISABLED` (`delete.topic.enable=false`), `REQUEST_TIMED_OUT` after
    /// [`AdminOptions::timeout`] (the deletion is queued and goes on).
    pub async fn delete_topic(
        &self,
        name: &str,
        options: &AdminOptions,
    ) -> Result<(), ClientError> {
        if options.validate_only {
            return Err(ClientError::InvalidArgument {
                argument: "validate_only",
                reason: "DeleteTopics has no validate-only mode".to_owned(),
            });
        }
        let request = pb::DeleteTopicsRequest {
            topics: vec![name.to_owned()],
            timeout_ms: timeout_ms(options.timeout),
        };
        let response = self
            .client
            .admin_service()
            .delete_topics(request)
            .await
            .map_err(ClientError::rpc("DeleteTopics"))?;
        topic_result(response.into_inner().results, "DeleteTopics", name).map(|_| ())
    }

    /// Grows `topic` to `total_partitions` partitions (`CreatePartitions`, bootstrap broker);
    /// the new ones get partition 0's replication factor. Waits like
    /// [`create_topic`](Self::create_topic); [`AdminOptions::validate_only`] only checks.
    ///
    /// Errors: broker codes `INVALID_PARTITIONS` (not larger than the current count, or more
    /// than 10000), `UNKNOWN_TOPIC_OR_PARTITION`, `INVALID_REPLICATION_FACTOR` (too few live
    /// brokers), `INVALID_TOPIC_EXCEPTION` (being deleted), `REQUEST_TIMED_OUT`.
    pub async fn create_partitions(
        &self,
        topic: &str,
        total_partitions: i32,
        options: &AdminOptions,
    ) -> Result<(), ClientError> {
        let request = pb::CreatePartitionsRequest {
            topics: vec![pb::CreatePartitionsTopic {
                name: topic.to_owned(),
                count: total_partitions,
            }],
            validate_only: options.validate_only,
            timeout_ms: timeout_ms(options.timeout),
        };
        let response = self
            .client
            .admin_service()
            .create_partitions(request)
            .await
            .map_err(ClientError::rpc("CreatePartitions"))?;
        topic_result(response.into_inner().results, "CreatePartitions", topic).map(|_| ())
    }

    /// Describes the named topics, all topics when `names` is empty (`DescribeTopics`,
    /// bootstrap broker): partitions with leader, leader epoch, replicas, ISR and offline
    /// replicas as that broker last heard from the controller, and the config overrides.
    ///
    /// Errors: the first topic-level error, `UNKNOWN_TOPIC_OR_PARTITION` for a missing topic
    /// (or `REQUEST_TIMED_OUT` when the overrides cannot be read from ZooKeeper).
    pub async fn describe_topics(
        &self,
        names: &[&str],
    ) -> Result<Vec<TopicDescription>, ClientError> {
        let request = pb::DescribeTopicsRequest {
            topics: names.iter().map(|name| (*name).to_owned()).collect(),
        };
        let response = self
            .client
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

    /// Describes one topic; see [`describe_topics`](Self::describe_topics).
    pub async fn describe_topic(&self, name: &str) -> Result<TopicDescription, ClientError> {
        self.describe_topics(&[name])
            .await?
            .into_iter()
            .find(|topic| topic.name == name)
            .ok_or_else(|| ClientError::MalformedResponse {
                operation: "DescribeTopics",
                topic: name.to_owned(),
                partition: None,
                reason: "no entry for the topic".to_owned(),
            })
    }

    /// The topics, sorted by name, from `Metadata` (bootstrap broker); internal ones only with
    /// [`ListTopicsOptions::include_internal`]. Errors: only whole-call failures.
    pub async fn list_topics(
        &self,
        options: ListTopicsOptions,
    ) -> Result<Vec<TopicListing>, ClientError> {
        let metadata = self.metadata(&[]).await?;
        let mut topics: Vec<TopicListing> = metadata
            .topics
            .into_iter()
            .filter(|topic| options.include_internal || !topic.is_internal)
            .map(|topic| TopicListing {
                name: topic.name,
                is_internal: topic.is_internal,
                partitions: topic.partitions.len(),
            })
            .collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(topics)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::Client;
    use crate::fake_broker::FakeBroker;

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
        assert_eq!(
            crate::admin::timeout_ms(Duration::from_secs(u64::MAX)),
            i32::MAX
        );
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

    #[tokio::test]
    async fn admin_validates_lists_and_describes() {
        let (address, broker) = FakeBroker::start().await;
        let admin = crate::Admin::connect(&address).await.unwrap();
        let options = crate::AdminOptions::default();
        let topic = NewTopic::new("orders")
            .partitions(2)
            .config("retention.ms", "1000");
        let checked = admin
            .create_topic(&topic, &crate::AdminOptions::validate_only())
            .await
            .unwrap();
        assert_eq!(checked.num_partitions, 2);
        assert!(
            admin.describe_topic("orders").await.is_err(),
            "validate only"
        );
        admin.create_topic(&topic, &options).await.unwrap();
        broker.create("__consumer_offsets", 1);
        let error = admin
            .create_topic(&NewTopic::new("x").partitions(0), &options)
            .await
            .unwrap_err();
        assert!(matches!(
            error,
            ClientError::InvalidArgument {
                argument: "partitions",
                ..
            }
        ));

        let listed = admin
            .list_topics(ListTopicsOptions::default())
            .await
            .unwrap();
        assert_eq!(
            listed,
            vec![TopicListing {
                name: "orders".into(),
                is_internal: false,
                partitions: 2
            }]
        );
        let all = ListTopicsOptions {
            include_internal: true,
        };
        let names: Vec<String> = admin
            .list_topics(all)
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(names, ["__consumer_offsets", "orders"]);

        let described = admin.describe_topic("orders").await.unwrap();
        assert_eq!(described.partitions.len(), 2);
        assert!(!described.is_internal());
        assert_eq!(described.replication_factor(), 1);
        let error = admin.describe_topic("zzz").await.unwrap_err();
        assert_eq!(error.error_code(), Some(ErrorCode::UnknownTopicOrPartition));

        admin
            .create_partitions("orders", 5, &crate::AdminOptions::validate_only())
            .await
            .unwrap();
        assert_eq!(
            admin
                .describe_topic("orders")
                .await
                .unwrap()
                .partitions
                .len(),
            2
        );
        assert!(
            admin
                .delete_topic("orders", &crate::AdminOptions::validate_only())
                .await
                .is_err()
        );
        admin.delete_topic("orders", &options).await.unwrap();
    }

    #[test]
    fn partition_health() {
        let partition = |leader, replicas: &[i32], isr: &[i32]| PartitionInfo {
            partition: 0,
            leader,
            leader_epoch: 0,
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            offline_replicas: vec![],
            error: None,
        };
        /// (leader, replicas, isr, under-replicated, offline)
        type Case = (Option<i32>, &'static [i32], &'static [i32], bool, bool);
        let table: [Case; 5] = [
            (Some(1), &[1, 2, 3], &[1, 2, 3], false, false),
            (Some(1), &[1, 2, 3], &[3, 1], true, false),
            (Some(1), &[1], &[1], false, false),
            (None, &[1, 2], &[1], true, true),
            (None, &[1], &[1], false, true),
        ];
        for (leader, replicas, isr, under, offline) in table {
            let p = partition(leader, replicas, isr);
            assert_eq!(p.is_under_replicated(), under, "{p:?}");
            assert_eq!(p.is_offline(), offline, "{p:?}");
        }
    }
}
