//! Admin writes to ZooKeeper (Kafka's `AdminZkClient`): topic creation, deletion requests,
//! added partitions and topic config changes, plus the reads admin requests need.
//!
//! These writes are **not fenced** with `/controller_epoch` (any broker serves the Admin API,
//! as in Kafka): the controller reacts to them through its watches on `/brokers/topics`,
//! `/brokers/topics/<t>` and `/admin/delete_topics`; brokers react to `/config/changes`.
//!
//! What each write leaves in ZooKeeper (payloads in `tributary_zk_layout::payloads`):
//!
//! | call | znodes |
//! |---|---|
//! | [`create_topic`] | `/config/topics/<t>` (`{"version":1,"config":{...}}`, possibly `{}`) then `/brokers/topics/<t>` (v3 assignment), in one multi |
//! | [`request_topic_deletion`] | `/admin/delete_topics/<t>` (no data) |
//! | [`add_partitions`] | conditional setData of `/brokers/topics/<t>` |
//! | [`set_topic_config`] | `/config/topics/<t>` and `/config/changes/config_change_<seq>` (`{"version":2,"entity_path":"topics/<t>"}`), in one multi |
//!
//! Kafka writes the config before the assignment without atomicity; one multi keeps the same
//! order (a watcher of `/brokers/topics` always finds the config) and never leaves a config
//! without its topic.

use tributary_zk_layout::payloads::{
    ConfigChangeNotification, DELETE_TOPIC_DATA, EntityConfig, Payload, TopicAssignment,
};
use tributary_zk_layout::{ZkVersion, paths};

use super::client::{ZkClient, ZnodeStat};
use super::error::ZkError;
use super::ops::{CreateKind, OpResult, ZkOp};

/// Attempts at a write whose precondition (node present or absent) raced with another admin.
const RACE_ATTEMPTS: usize = 3;

/// Why an admin write was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminZkError {
    /// `/brokers/topics/<t>` already exists (possibly queued for deletion, not yet gone).
    #[error("topic {topic:?} already exists")]
    TopicExists {
        /// The topic.
        topic: String,
    },
    /// `/brokers/topics/<t>` does not exist.
    #[error("topic {topic:?} does not exist")]
    UnknownTopic {
        /// The topic.
        topic: String,
    },
    /// The assignment changed since it was read (another CreatePartitions, or a reassignment).
    #[error(
        "the assignment of topic {topic:?} changed concurrently (expected zkVersion {expected})"
    )]
    AssignmentChanged {
        /// The topic.
        topic: String,
        /// The zkVersion the caller read.
        expected: ZkVersion,
    },
    /// Any other ZooKeeper failure (connection loss, expiry, undecodable payload...).
    #[error(transparent)]
    Zk(#[from] ZkError),
}

impl AdminZkError {
    /// Whether the same request may succeed if sent again (connection loss, lost race, no
    /// session).
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::AssignmentChanged { .. } => true,
            Self::Zk(error) => error.is_retriable() || error.is_session_lost(),
            Self::TopicExists { .. } | Self::UnknownTopic { .. } => false,
        }
    }
}

/// One `/config/changes/config_change_<seq>` notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigChange {
    /// The child name (`config_change_0000000042`).
    pub name: String,
    /// The sequence number ZooKeeper appended.
    pub sequence: u64,
    /// `<type>/<name>` (`topics/orders`); `None` when the payload is not a v2 notification.
    pub entity_path: Option<String>,
    /// The znode's creation time, ms since the epoch (the server's clock).
    pub ctime_ms: i64,
}

impl ConfigChange {
    /// The topic named by a `topics/<t>` notification.
    pub fn topic(&self) -> Option<&str> {
        self.entity_path.as_deref()?.strip_prefix("topics/")
    }
}

/// Creates a topic: its config overrides then its assignment, in one multi. A leftover
/// `/config/topics/<t>` without a topic (Kafka may leave one after a failed creation) is
/// overwritten, as Kafka's `setOrCreateEntityConfigs` does.
pub async fn create_topic(
    client: &ZkClient,
    topic: &str,
    assignment: &TopicAssignment,
    config: &EntityConfig,
) -> Result<(), AdminZkError> {
    let topic_path = paths::topic(topic);
    let config_path = paths::topic_config(topic);
    let mut attempt = 0;
    loop {
        attempt += 1;
        if client.exists(&topic_path).await?.is_some() {
            return Err(AdminZkError::TopicExists {
                topic: topic.to_owned(),
            });
        }
        let config_op = match client.exists(&config_path).await? {
            Some(stat) => ZkOp::set(&config_path, config.encode(), Some(stat.version)),
            None => ZkOp::create(&config_path, config.encode()),
        };
        let ops = [config_op, ZkOp::create(&topic_path, assignment.encode())];
        match client.multi(&ops).await {
            Ok(_) => return Ok(()),
            Err(ZkError::NodeExists { path }) if path == topic_path => {
                return Err(AdminZkError::TopicExists {
                    topic: topic.to_owned(),
                });
            }
            // Another admin created or changed the leftover config meanwhile: look again.
            Err(
                ZkError::NodeExists { path }
                | ZkError::BadVersion { path }
                | ZkError::NoNode { path },
            ) if path == config_path && attempt < RACE_ATTEMPTS => {}
            Err(error) => return Err(error.into()),
        }
    }
}

/// Queues a topic for deletion (`/admin/delete_topics/<t>`); the controller does the rest and
/// removes the request when done. Returns `false` when it was already queued.
pub async fn request_topic_deletion(client: &ZkClient, topic: &str) -> Result<bool, AdminZkError> {
    if client.exists(&paths::topic(topic)).await?.is_none() {
        return Err(AdminZkError::UnknownTopic {
            topic: topic.to_owned(),
        });
    }
    match client
        .create_persistent(&paths::delete_topic(topic), DELETE_TOPIC_DATA)
        .await
    {
        Ok(_) => Ok(true),
        Err(ZkError::NodeExists { .. }) => Ok(false),
        Err(error) => Err(error.into()),
    }
}

/// Writes the extended assignment of a topic, only if `/brokers/topics/<t>` is still at
/// `expected` (the version read with [`read_topic_assignment`]). Returns the new stat.
pub async fn add_partitions(
    client: &ZkClient,
    topic: &str,
    assignment: &TopicAssignment,
    expected: ZkVersion,
) -> Result<ZnodeStat, AdminZkError> {
    match client
        .set(&paths::topic(topic), &assignment.encode(), Some(expected))
        .await
    {
        Ok(stat) => Ok(stat),
        Err(ZkError::BadVersion { .. }) => Err(AdminZkError::AssignmentChanged {
            topic: topic.to_owned(),
            expected,
        }),
        Err(ZkError::NoNode { .. }) => Err(AdminZkError::UnknownTopic {
            topic: topic.to_owned(),
        }),
        Err(error) => Err(error.into()),
    }
}

/// Replaces a topic's config overrides and announces the change with a
/// `/config/changes/config_change_<seq>` notification, in one multi. Returns the
/// notification's path. The topic must exist (Kafka's `changeTopicConfig`).
pub async fn set_topic_config(
    client: &ZkClient,
    topic: &str,
    config: &EntityConfig,
) -> Result<String, AdminZkError> {
    let topic_path = paths::topic(topic);
    let config_path = paths::topic_config(topic);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let Some(topic_stat) = client.exists(&topic_path).await? else {
            return Err(AdminZkError::UnknownTopic {
                topic: topic.to_owned(),
            });
        };
        let config_op = match client.exists(&config_path).await? {
            Some(_) => ZkOp::set(&config_path, config.encode(), None),
            None => ZkOp::create(&config_path, config.encode()),
        };
        let ops = [
            // The topic must still exist when the config is written.
            ZkOp::Check {
                path: topic_path.clone(),
                version: topic_stat.version,
            },
            config_op,
            ZkOp::Create {
                path: paths::config_change_prefix().to_owned(),
                data: ConfigChangeNotification::for_topic(topic).encode(),
                kind: CreateKind::PersistentSequential,
            },
        ];
        match client.multi(&ops).await {
            Ok(results) => {
                return Ok(match results.into_iter().last() {
                    Some(OpResult::Created { path }) => path,
                    _ => paths::config_change_prefix().to_owned(),
                });
            }
            Err(ZkError::NoNode { path }) if path == topic_path => {
                return Err(AdminZkError::UnknownTopic {
                    topic: topic.to_owned(),
                });
            }
            // The assignment changed (partitions added) or the config appeared or vanished
            // meanwhile: look again.
            Err(
                ZkError::BadVersion { .. } | ZkError::NodeExists { .. } | ZkError::NoNode { .. },
            ) if attempt < RACE_ATTEMPTS => {}
            Err(error) => return Err(error.into()),
        }
    }
}

/// The names of all topics (children of `/brokers/topics`), sorted.
pub async fn read_topics(client: &ZkClient) -> Result<Vec<String>, ZkError> {
    client.children(paths::brokers_topics()).await
}

/// The topics queued for deletion (children of `/admin/delete_topics`), sorted.
pub async fn read_topics_queued_for_deletion(client: &ZkClient) -> Result<Vec<String>, ZkError> {
    client.children(paths::admin_delete_topics()).await
}

/// A topic's assignment and the stat of `/brokers/topics/<t>` (its version is the token for
/// [`add_partitions`]), `None` when the topic does not exist.
pub async fn read_topic_assignment(
    client: &ZkClient,
    topic: &str,
) -> Result<Option<(TopicAssignment, ZnodeStat)>, ZkError> {
    client.get_payload_if_exists(&paths::topic(topic)).await
}

/// A topic's config overrides (`/config/topics/<t>`), empty when the node is absent.
pub async fn read_topic_config(client: &ZkClient, topic: &str) -> Result<EntityConfig, ZkError> {
    Ok(client
        .get_payload_if_exists::<EntityConfig>(&paths::topic_config(topic))
        .await?
        .map_or_else(
            || EntityConfig::new(Default::default()),
            |(config, _)| config,
        ))
}

/// Reads one notification (`child` as listed under `/config/changes`); `None` when it is gone
/// or its name is not a `config_change_<seq>`.
pub async fn read_config_change(
    client: &ZkClient,
    child: &str,
) -> Result<Option<ConfigChange>, ZkError> {
    let prefix = paths::last_component(paths::config_change_prefix());
    let Some(sequence) = paths::sequence_number(child, prefix) else {
        return Ok(None);
    };
    let path = format!("{}/{child}", paths::config_changes());
    let (data, stat) = match client.raw().get_data(&path).await {
        Ok(found) => found,
        Err(zookeeper_client::Error::NoNode) => return Ok(None),
        Err(error) => return Err(ZkError::from_zk(&path, error)),
    };
    let entity_path = ConfigChangeNotification::decode(&data)
        .ok()
        .map(|notification| notification.entity_path);
    Ok(Some(ConfigChange {
        name: child.to_owned(),
        sequence,
        entity_path,
        ctime_ms: stat.ctime,
    }))
}

/// Deletes a notification (the purge of old ones); already gone is fine.
pub async fn delete_config_change(client: &ZkClient, child: &str) -> Result<(), ZkError> {
    let path = format!("{}/{child}", paths::config_changes());
    match client.delete(&path, None).await {
        Ok(()) | Err(ZkError::NoNode { .. }) => Ok(()),
        Err(error) => Err(error),
    }
}
