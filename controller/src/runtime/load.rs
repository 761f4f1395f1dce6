//! Reads of the cluster's state from ZooKeeper, for failover and for each watch event. Every
//! function reads fresh data (no caching) and skips znodes deleted between a list and a get.

use std::collections::{BTreeMap, BTreeSet};

use tributary_zk_layout::payloads::{
    EntityConfig, IsrChangeNotification, PartitionState, PreferredReplicaElection, TopicAssignment,
};
use tributary_zk_layout::{BrokerId, paths};

use crate::cluster::{ClusterModel, LiveBroker, PartitionModel, TopicModel, TopicPartition};
use crate::model::LeaderAndIsr;
use crate::zk::{ZkClient, ZkError, live_brokers};

/// The topic config key that allows unclean elections.
pub(crate) const UNCLEAN_KEY: &str = "unclean.leader.election.enable";

/// Everything the controller needs, as a fresh [`ClusterModel`] (Kafka's
/// `initializeControllerContext`).
pub(crate) async fn load_model(
    client: &ZkClient,
    mut model: ClusterModel,
) -> Result<ClusterModel, ZkError> {
    model.live_brokers = read_brokers(client).await?;
    model.topics = read_topics(client).await?;
    let all: Vec<TopicPartition> = model
        .topics
        .iter()
        .flat_map(|(name, topic)| {
            topic
                .assignment
                .keys()
                .map(move |&p| TopicPartition::new(name.clone(), p))
        })
        .collect();
    model.partition_states = read_partition_states(client, &all).await?;
    let queued = read_deletions(client).await?;
    model.topics_to_delete = queued
        .into_iter()
        .filter(|t| model.topics.contains_key(t))
        .map(|t| (t, Default::default()))
        .collect();
    model.unclean_overrides = read_unclean_overrides(client, model.topics.keys()).await?;
    Ok(model)
}

/// Registered brokers with their epochs and endpoints.
pub(crate) async fn read_brokers(
    client: &ZkClient,
) -> Result<BTreeMap<BrokerId, LiveBroker>, ZkError> {
    Ok(live_brokers(client)
        .await?
        .into_iter()
        .filter_map(|(id, epoch, registration)| {
            let endpoint = registration.parsed_endpoints().into_iter().next()?;
            Some((
                id,
                LiveBroker {
                    epoch,
                    host: endpoint.host,
                    port: endpoint.port,
                    rack: registration.rack,
                },
            ))
        })
        .collect())
}

/// Every topic's assignment. Topics whose assignment does not decode are skipped with a
/// warning (an operator's hand-written znode must not stop the controller).
pub(crate) async fn read_topics(
    client: &ZkClient,
) -> Result<BTreeMap<String, TopicModel>, ZkError> {
    let mut topics = BTreeMap::new();
    for name in client.children(paths::brokers_topics()).await? {
        match client
            .get_payload_if_exists::<TopicAssignment>(&paths::topic(&name))
            .await
        {
            Ok(Some((assignment, _))) => {
                if let Some(model) = topic_model(&name, assignment) {
                    topics.insert(name, model);
                }
            }
            Ok(None) => {}
            Err(error @ ZkError::Payload { .. }) => {
                tracing::warn!(topic = %name, %error, "ignoring a topic whose assignment cannot be read");
            }
            Err(error) => return Err(error),
        }
    }
    Ok(topics)
}

/// A topic's model from its assignment znode; `None` (with a warning) when an assignment is
/// unusable (an empty or duplicated replica list).
fn topic_model(name: &str, assignment: TopicAssignment) -> Option<TopicModel> {
    for (partition, replicas) in &assignment.partitions {
        let unique: BTreeSet<_> = replicas.iter().collect();
        if replicas.is_empty() || unique.len() != replicas.len() {
            tracing::warn!(topic = %name, %partition, ?replicas, "ignoring a topic with an invalid replica list");
            return None;
        }
    }
    Some(TopicModel {
        assignment: assignment.partitions,
        topic_id: assignment.topic_id.unwrap_or_default(),
    })
}

/// The state znodes of `partitions` that exist.
pub(crate) async fn read_partition_states(
    client: &ZkClient,
    partitions: &[TopicPartition],
) -> Result<BTreeMap<TopicPartition, PartitionModel>, ZkError> {
    let mut states = BTreeMap::new();
    for tp in partitions {
        let path = paths::partition_state(&tp.topic, tp.partition);
        match client.get_payload_if_exists::<PartitionState>(&path).await {
            Ok(Some((state, stat))) => {
                states.insert(
                    tp.clone(),
                    PartitionModel {
                        leader_and_isr: LeaderAndIsr {
                            leader: state.leader,
                            leader_epoch: state.leader_epoch,
                            isr: state.isr,
                            controller_epoch: state.controller_epoch,
                        },
                        zk_version: stat.version,
                        written_at_zxid: Some(stat.mzxid),
                    },
                );
            }
            Ok(None) => {}
            Err(error @ ZkError::Payload { .. }) => {
                tracing::warn!(partition = %tp, %error, "ignoring an unreadable partition state");
            }
            Err(error) => return Err(error),
        }
    }
    Ok(states)
}

/// Children of `/admin/delete_topics`.
pub(crate) async fn read_deletions(client: &ZkClient) -> Result<BTreeSet<String>, ZkError> {
    Ok(client
        .children(paths::admin_delete_topics())
        .await?
        .into_iter()
        .collect())
}

/// `unclean.leader.election.enable` overrides of `topics` (from `/config/topics/<t>`).
pub(crate) async fn read_unclean_overrides<'a>(
    client: &ZkClient,
    topics: impl Iterator<Item = &'a String>,
) -> Result<BTreeMap<String, bool>, ZkError> {
    let mut overrides = BTreeMap::new();
    for topic in topics {
        let config = match client
            .get_payload_if_exists::<EntityConfig>(&paths::topic_config(topic))
            .await
        {
            Ok(config) => config,
            Err(ZkError::Payload { .. }) => None,
            Err(error) => return Err(error),
        };
        if let Some(value) = config.and_then(|(c, _)| c.config.get(UNCLEAN_KEY).cloned()) {
            overrides.insert(topic.clone(), value == "true");
        }
    }
    Ok(overrides)
}

/// The pending ISR change notifications: their child names and the partitions they name.
pub(crate) async fn read_isr_notifications(
    client: &ZkClient,
) -> Result<(Vec<String>, BTreeSet<TopicPartition>), ZkError> {
    let names = client.children(paths::isr_change_notification()).await?;
    let mut partitions = BTreeSet::new();
    for name in &names {
        let path = format!("{}/{name}", paths::isr_change_notification());
        match client
            .get_payload_if_exists::<IsrChangeNotification>(&path)
            .await
        {
            Ok(Some((notification, _))) => partitions.extend(
                notification
                    .partitions
                    .into_iter()
                    .map(|p| TopicPartition::new(p.topic, p.partition)),
            ),
            Ok(None) => {}
            Err(ZkError::Payload { path, source }) => {
                tracing::warn!(%path, error = %source, "ignoring an unreadable ISR change notification");
            }
            Err(error) => return Err(error),
        }
    }
    Ok((names, partitions))
}

/// The partitions named in `/admin/preferred_replica_election`, if it exists. An unreadable
/// payload counts as an empty request (the znode is then removed like a processed one).
pub(crate) async fn read_preferred_election(
    client: &ZkClient,
) -> Result<Option<BTreeSet<TopicPartition>>, ZkError> {
    match client
        .get_payload_if_exists::<PreferredReplicaElection>(paths::preferred_replica_election())
        .await
    {
        Ok(found) => Ok(found.map(|(request, _)| {
            request
                .partitions
                .into_iter()
                .map(|p| TopicPartition::new(p.topic, p.partition))
                .collect()
        })),
        Err(ZkError::Payload { path, source }) => {
            tracing::warn!(%path, error = %source, "unreadable preferred replica election request");
            Ok(Some(BTreeSet::new()))
        }
        Err(error) => Err(error),
    }
}
