//! The admin calls as [`Client`] methods, from before [`Admin`] existed: kept so existing
//! callers compile, each a shorthand for the `Admin` method it names. New code uses `Admin`.

use std::time::Duration;

#[cfg(doc)]
use super::Admin;
use super::{
    AdminOptions, ConfigChange, CreatedTopic, ElectionResult, ListTopicsOptions, NewTopic,
    TopicConfig, TopicDescription,
};
use crate::{Client, ClientError};

/// The topic calls as they were before [`Admin`]: kept for existing callers, each a shorthand
/// for the `Admin` method.
impl Client {
    /// Creates a topic. `partitions` or `replication_factor` 0 means the broker default.
    /// Returns once every partition has a leader, or fails with `REQUEST_TIMED_OUT` after the
    /// broker's default wait (30 s) while creation goes on. See [`Admin::create_topic`].
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
        let default_if_zero = |n: i32| (n != 0).then_some(n);
        let topic = NewTopic {
            name: name.to_owned(),
            partitions: default_if_zero(partitions),
            replication_factor: default_if_zero(replication_factor),
            configs: configs.iter().cloned().collect(),
        };
        let options = AdminOptions::default().with_timeout(timeout);
        self.admin().create_topic(&topic, &options).await
    }

    /// Deletes a topic and all its data. See [`Admin::delete_topic`].
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
        let options = AdminOptions::default().with_timeout(timeout);
        self.admin().delete_topic(name, &options).await
    }

    /// Grows `topic` to `total_partitions` partitions. See [`Admin::create_partitions`].
    pub async fn create_partitions(
        &self,
        topic: &str,
        total_partitions: i32,
        timeout: Duration,
    ) -> Result<(), ClientError> {
        let options = AdminOptions::default().with_timeout(timeout);
        self.admin()
            .create_partitions(topic, total_partitions, &options)
            .await
    }

    /// Describes the named topics (all when `names` is empty). See [`Admin::describe_topics`].
    pub async fn describe_topics(
        &self,
        names: &[&str],
    ) -> Result<Vec<TopicDescription>, ClientError> {
        self.admin().describe_topics(names).await
    }

    /// The names of all topics, internal ones included, sorted. See [`Admin::list_topics`].
    pub async fn list_topics(&self) -> Result<Vec<String>, ClientError> {
        let options = ListTopicsOptions {
            include_internal: true,
        };
        let topics = self.admin().list_topics(options).await?;
        Ok(topics.into_iter().map(|topic| topic.name).collect())
    }
}

/// The config calls as they were before [`Admin`], kept for existing callers.
impl Client {
    /// The configuration of the named topics (all when `topics` is empty). See
    /// [`Admin::describe_configs`].
    pub async fn describe_configs(&self, topics: &[&str]) -> Result<Vec<TopicConfig>, ClientError> {
        self.admin().describe_configs(topics).await
    }

    /// Changes `topic`'s overrides: sets the `set` keys and removes the `delete` keys. See
    /// [`Admin::alter_configs`], which also refuses empty and contradictory changes before
    /// sending; this sends them as they are.
    pub async fn alter_configs(
        &self,
        topic: &str,
        set: &[(String, String)],
        delete: &[String],
        validate_only: bool,
    ) -> Result<(), ClientError> {
        let change = ConfigChange {
            set: set.iter().cloned().collect(),
            delete: delete.iter().cloned().collect(),
        };
        self.admin()
            .send_alter_configs(topic, &change, validate_only)
            .await
    }
}

/// The election call as it was before [`Admin`], kept for existing callers.
impl Client {
    /// See [`Admin::elect_preferred_leaders`].
    pub async fn elect_leaders(
        &self,
        partitions: &[(String, i32)],
    ) -> Result<Vec<ElectionResult>, ClientError> {
        self.admin().elect_preferred_leaders(partitions).await
    }
}
