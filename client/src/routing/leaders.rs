//! The client's picture of who leads what: the last `Metadata` answer, kept per topic (pure: no
//! connections, no I/O).

use std::collections::HashMap;

use crate::{ClientError, ClusterMetadata, ErrorCode, TopicMetadata};

/// Where one partition's requests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LeaderAddress {
    /// The leader's broker id.
    pub(crate) broker_id: i32,
    /// `http://host:port` from the leader's advertised listener.
    pub(crate) uri: String,
    /// The leader epoch the metadata reported.
    pub(crate) leader_epoch: i32,
}

/// Live brokers and, per topic, the partitions as the last `Metadata` answer naming the topic
/// described them. A topic is absent until metadata for it has been fetched, and again after
/// [`LeaderTable::forget`].
#[derive(Debug, Default)]
pub(crate) struct LeaderTable {
    /// Broker id -> `http://host:port`, from the latest answer (every answer lists all live
    /// brokers).
    brokers: HashMap<i32, String>,
    /// Topic -> its metadata (possibly a topic-level error such as an unknown topic).
    topics: HashMap<String, TopicMetadata>,
}

impl LeaderTable {
    /// Takes in a `Metadata` answer: the broker list is replaced, and each topic it describes
    /// replaces what was known about that topic.
    pub(crate) fn update(&mut self, metadata: &ClusterMetadata) {
        self.brokers = metadata
            .brokers
            .iter()
            .map(|b| (b.id, format!("http://{}:{}", b.host, b.port)))
            .collect();
        for topic in &metadata.topics {
            self.topics.insert(topic.name.clone(), topic.clone());
        }
    }

    /// Drops what is known about `topic`, so the next lookup asks for fresh metadata.
    pub(crate) fn forget(&mut self, topic: &str) {
        self.topics.remove(topic);
    }

    /// The addresses of every known broker except `except` (a URI), by broker id.
    pub(crate) fn other_brokers(&self, except: &str) -> Vec<(i32, String)> {
        let mut others: Vec<(i32, String)> = self
            .brokers
            .iter()
            .filter(|(_, uri)| uri.as_str() != except)
            .map(|(&id, uri)| (id, uri.clone()))
            .collect();
        others.sort();
        others
    }

    /// How many partitions `topic` has: `None` when the topic has not been looked up, else the
    /// count or the topic-level error the metadata carried (an unknown topic, ...).
    pub(crate) fn partition_count(&self, topic: &str) -> Option<Result<i32, ClientError>> {
        let metadata = self.topics.get(topic)?;
        Some(match &metadata.error {
            Some((code, message)) => Err(ClientError::Broker {
                topic: topic.to_owned(),
                partition: None,
                code: *code,
                message: message.clone(),
            }),
            None if metadata.partitions.is_empty() => Err(ClientError::Broker {
                topic: topic.to_owned(),
                partition: None,
                code: ErrorCode::UnknownTopicOrPartition,
                message: "the topic has no partitions in the client's metadata".to_owned(),
            }),
            None => Ok(metadata.partitions.len() as i32),
        })
    }

    /// The partitions of `topic` whose leader is a live broker, in partition order (empty when
    /// the topic is unknown or none has a leader).
    pub(crate) fn available_partitions(&self, topic: &str) -> Vec<i32> {
        let Some(metadata) = self.topics.get(topic) else {
            return Vec::new();
        };
        let mut available: Vec<i32> = metadata
            .partitions
            .iter()
            .filter(|p| p.leader.is_some_and(|id| self.brokers.contains_key(&id)))
            .map(|p| p.partition)
            .collect();
        available.sort_unstable();
        available
    }

    /// The leader of `topic`/`partition`: `None` when the topic has not been looked up (fetch
    /// metadata first), else the leader or why there is none usable. The errors carry broker
    /// error codes, so [`ClientError::needs_metadata_refresh`] tells whether waiting may help.
    pub(crate) fn leader(
        &self,
        topic: &str,
        partition: i32,
    ) -> Option<Result<LeaderAddress, ClientError>> {
        let metadata = self.topics.get(topic)?;
        let refused = |code: ErrorCode, message: String| ClientError::Broker {
            topic: topic.to_owned(),
            partition: Some(partition),
            code,
            message,
        };
        if let Some((code, message)) = &metadata.error {
            return Some(Err(refused(*code, message.clone())));
        }
        let Some(info) = metadata
            .partitions
            .iter()
            .find(|p| p.partition == partition)
        else {
            return Some(Err(refused(
                ErrorCode::UnknownTopicOrPartition,
                format!(
                    "the topic has {} partitions in the client's metadata",
                    metadata.partitions.len()
                ),
            )));
        };
        let Some(leader) = info.leader else {
            return Some(Err(refused(
                info.error.unwrap_or(ErrorCode::LeaderNotAvailable),
                "no leader in the client's metadata".to_owned(),
            )));
        };
        let Some(uri) = self.brokers.get(&leader) else {
            return Some(Err(refused(
                ErrorCode::LeaderNotAvailable,
                format!("leader {leader} is not among the live brokers in the client's metadata"),
            )));
        };
        Some(Ok(LeaderAddress {
            broker_id: leader,
            uri: uri.clone(),
            leader_epoch: info.leader_epoch,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BrokerInfo, PartitionInfo};

    fn partition(partition: i32, leader: Option<i32>) -> PartitionInfo {
        PartitionInfo {
            partition,
            leader,
            leader_epoch: 3,
            replicas: vec![1, 2],
            isr: vec![1, 2],
            offline_replicas: vec![],
            error: leader.is_none().then_some(ErrorCode::LeaderNotAvailable),
        }
    }

    fn metadata(brokers: &[i32], topics: Vec<TopicMetadata>) -> ClusterMetadata {
        ClusterMetadata {
            cluster_id: "c".into(),
            controller_id: Some(1),
            controller_epoch: Some(1),
            brokers: brokers
                .iter()
                .map(|&id| BrokerInfo {
                    id,
                    host: "h".into(),
                    port: 9000 + id,
                    rack: None,
                    epoch: None,
                })
                .collect(),
            topics,
        }
    }

    fn topic(name: &str, partitions: Vec<PartitionInfo>) -> TopicMetadata {
        TopicMetadata {
            name: name.into(),
            error: None,
            is_internal: false,
            partitions,
        }
    }

    #[test]
    fn lookups() {
        let mut table = LeaderTable::default();
        table.update(&metadata(
            &[1, 2],
            vec![
                topic(
                    "t",
                    vec![
                        partition(0, Some(1)),
                        partition(1, Some(2)),
                        partition(2, None),
                    ],
                ),
                topic("gone-leader", vec![partition(0, Some(7))]),
                TopicMetadata {
                    error: Some((ErrorCode::UnknownTopicOrPartition, "no such topic".into())),
                    ..topic("missing", vec![])
                },
            ],
        ));
        type Expected = Option<Result<(i32, &'static str), ErrorCode>>;
        let table_cases: [(&str, i32, Expected); 7] = [
            ("t", 0, Some(Ok((1, "http://h:9001")))),
            ("t", 1, Some(Ok((2, "http://h:9002")))),
            ("t", 2, Some(Err(ErrorCode::LeaderNotAvailable))),
            ("t", 3, Some(Err(ErrorCode::UnknownTopicOrPartition))),
            ("gone-leader", 0, Some(Err(ErrorCode::LeaderNotAvailable))),
            ("missing", 0, Some(Err(ErrorCode::UnknownTopicOrPartition))),
            ("never-asked", 0, None),
        ];
        for (name, p, expected) in table_cases {
            let found = table.leader(name, p).map(|result| {
                result
                    .map(|leader| (leader.broker_id, leader.uri))
                    .map_err(|error| error.error_code().unwrap())
            });
            let expected =
                expected.map(|result| result.map(|(id, uri): (i32, &str)| (id, uri.to_owned())));
            assert_eq!(found, expected, "{name}-{p}");
        }
        assert_eq!(table.partition_count("t").unwrap().unwrap(), 3);
        assert!(table.partition_count("missing").unwrap().is_err());
        assert!(table.partition_count("never-asked").is_none());
        assert_eq!(table.available_partitions("t"), vec![0, 1]);
        assert!(table.available_partitions("gone-leader").is_empty());
        let error = table.leader("t", 2).unwrap().unwrap_err();
        assert!(error.needs_metadata_refresh(), "{error}");
        assert_eq!(table.leader("t", 0).unwrap().unwrap().leader_epoch, 3);
    }

    #[test]
    fn updates_replace_per_topic_and_forget_clears() {
        let mut table = LeaderTable::default();
        table.update(&metadata(
            &[1, 2],
            vec![
                topic("a", vec![partition(0, Some(1))]),
                topic("b", vec![partition(0, Some(1))]),
            ],
        ));
        // A later answer about `a` only: `a` moves, `b` is kept, the broker list is replaced.
        table.update(&metadata(
            &[2, 3],
            vec![topic("a", vec![partition(0, Some(2))])],
        ));
        assert_eq!(table.leader("a", 0).unwrap().unwrap().broker_id, 2);
        assert_eq!(
            table.leader("b", 0).unwrap().unwrap_err().error_code(),
            Some(ErrorCode::LeaderNotAvailable),
            "broker 1 is no longer live"
        );
        assert_eq!(
            table.other_brokers("http://h:9002"),
            vec![(3, "http://h:9003".to_owned())]
        );
        table.forget("a");
        assert!(table.leader("a", 0).is_none());
    }
}
