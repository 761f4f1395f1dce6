//! Topic configuration: `DescribeConfigs` (overrides and effective values) and the incremental
//! `AlterConfigs`.

use std::collections::{BTreeMap, BTreeSet};

use tributary_proto::v1 as pb;

use super::Admin;
use crate::ClientError;
use crate::error::check;
use crate::response::topic_result;

/// Where an effective configuration value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    /// A topic-level override (`/config/topics/<topic>`).
    TopicOverride,
    /// The broker's default for every topic.
    BrokerDefault,
    /// A source this client does not know.
    Unknown,
}

impl ConfigSource {
    fn from_wire(value: i32) -> Self {
        match pb::ConfigSource::try_from(value) {
            Ok(pb::ConfigSource::TopicOverride) => Self::TopicOverride,
            Ok(pb::ConfigSource::BrokerDefault) => Self::BrokerDefault,
            _ => Self::Unknown,
        }
    }

    /// `topic` or `default`, as the CLI prints it.
    pub fn label(self) -> &'static str {
        match self {
            Self::TopicOverride => "topic",
            Self::BrokerDefault => "default",
            Self::Unknown => "unknown",
        }
    }
}

/// One topic-level key with its effective value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigValue {
    /// The key (`retention.ms`).
    pub name: String,
    /// The effective value.
    pub value: String,
    /// Where it comes from.
    pub source: ConfigSource,
}

/// A topic's configuration as `DescribeConfigs` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicConfig {
    /// Topic name.
    pub name: String,
    /// The overrides as stored.
    pub overrides: BTreeMap<String, String>,
    /// Every topic-level key with its effective value, sorted by key.
    pub entries: Vec<ConfigValue>,
}

/// An incremental change to a topic's overrides:
/// `ConfigChange::default().set("retention.ms", "3600000").delete("segment.ms")`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigChange {
    /// Keys to set (added or replaced).
    pub set: BTreeMap<String, String>,
    /// Keys whose override to remove (the broker default applies again).
    pub delete: BTreeSet<String>,
}

impl ConfigChange {
    /// Sets `key` to `value`.
    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.set.insert(key.into(), value.into());
        self
    }

    /// Removes the override of `key`.
    pub fn delete(mut self, key: impl Into<String>) -> Self {
        self.delete.insert(key.into());
        self
    }

    /// Whether the change sets and removes nothing.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.delete.is_empty()
    }

    /// Refuses an empty change and a key both set and removed (the broker would answer
    /// `INVALID_REQUEST` for the latter).
    fn validate(&self) -> Result<(), ClientError> {
        if self.is_empty() {
            return Err(ClientError::InvalidArgument {
                argument: "change",
                reason: "nothing to set or delete".to_owned(),
            });
        }
        if let Some(key) = self.delete.iter().find(|key| self.set.contains_key(*key)) {
            return Err(ClientError::InvalidArgument {
                argument: "change",
                reason: format!("{key:?} is both set and deleted"),
            });
        }
        Ok(())
    }
}

impl Admin {
    /// The configuration of the named topics, all when `topics` is empty (`DescribeConfigs`,
    /// bootstrap broker): the stored overrides and every topic-level key with its effective
    /// value and [`ConfigSource`] (defaults as the answering broker is configured).
    ///
    /// Errors: the first topic-level error, `UNKNOWN_TOPIC_OR_PARTITION` for a missing topic.
    pub async fn describe_configs(&self, topics: &[&str]) -> Result<Vec<TopicConfig>, ClientError> {
        let request = pb::DescribeConfigsRequest {
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
        };
        let response = self
            .client
            .admin_service()
            .describe_configs(request)
            .await
            .map_err(ClientError::rpc("DescribeConfigs"))?;
        let mut described = Vec::new();
        for topic in response.into_inner().topics {
            check(topic.error_code, &topic.error_message, &topic.name, None)?;
            described.push(TopicConfig {
                name: topic.name,
                overrides: topic.overrides.into_iter().collect(),
                entries: topic
                    .entries
                    .into_iter()
                    .map(|e| ConfigValue {
                        name: e.name,
                        value: e.value,
                        source: ConfigSource::from_wire(e.source),
                    })
                    .collect(),
            });
        }
        Ok(described)
    }

    /// Applies `change` to `topic`'s overrides (`AlterConfigs`, incremental, bootstrap
    /// broker). The resulting overrides are validated as a whole; with `validate_only`
    /// nothing is stored. Every broker applies the change to the partitions it hosts.
    ///
    /// Errors: [`ClientError::InvalidArgument`] for an empty change or a key both set and
    /// deleted; broker codes `INVALID_CONFIG` (naming the key), `UNKNOWN_TOPIC_OR_PARTITION`,
    /// `REQUEST_TIMED_OUT` (no ZooKeeper session).
    pub async fn alter_configs(
        &self,
        topic: &str,
        change: &ConfigChange,
        validate_only: bool,
    ) -> Result<(), ClientError> {
        change.validate()?;
        self.send_alter_configs(topic, change, validate_only).await
    }

    /// `AlterConfigs` for `change` as it is (an empty change only checks that the topic
    /// exists).
    pub(super) async fn send_alter_configs(
        &self,
        topic: &str,
        change: &ConfigChange,
        validate_only: bool,
    ) -> Result<(), ClientError> {
        let request = pb::AlterConfigsRequest {
            topics: vec![pb::AlterConfigsTopic {
                name: topic.to_owned(),
                set: change.set.clone().into_iter().collect(),
                delete: change.delete.iter().cloned().collect(),
            }],
            validate_only,
        };
        let response = self
            .client
            .admin_service()
            .alter_configs(request)
            .await
            .map_err(ClientError::rpc("AlterConfigs"))?;
        topic_result(response.into_inner().results, "AlterConfigs", topic).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use crate::fake_broker::FakeBroker;
    use crate::{Client, ConfigChange, ConfigSource, ErrorCode};

    #[tokio::test]
    async fn alter_then_describe() {
        let (address, broker) = FakeBroker::start().await;
        broker.create("t", 1);
        let client = Client::connect(&address).await.unwrap();
        client
            .alter_configs("t", &[("retention.ms".into(), "1000".into())], &[], false)
            .await
            .unwrap();
        let described = client.describe_configs(&["t"]).await.unwrap();
        assert_eq!(described[0].overrides["retention.ms"], "1000");
        assert_eq!(described[0].entries[0].source, ConfigSource::TopicOverride);
        client
            .alter_configs("t", &[], &["retention.ms".into()], false)
            .await
            .unwrap();
        let described = client.describe_configs(&["t"]).await.unwrap();
        assert!(described[0].overrides.is_empty());
        assert_eq!(described[0].entries[0].source, ConfigSource::BrokerDefault);
        let error = client.describe_configs(&["zzz"]).await.unwrap_err();
        assert_eq!(error.error_code(), Some(ErrorCode::UnknownTopicOrPartition));
        let error = client
            .alter_configs("zzz", &[], &[], false)
            .await
            .unwrap_err();
        assert_eq!(error.error_code(), Some(ErrorCode::UnknownTopicOrPartition));
    }

    #[tokio::test]
    async fn admin_refuses_empty_and_contradictory_changes() {
        let (address, broker) = FakeBroker::start().await;
        broker.create("t", 1);
        let admin = crate::Admin::connect(&address).await.unwrap();
        let error = admin
            .alter_configs("t", &ConfigChange::default(), false)
            .await
            .unwrap_err();
        assert!(matches!(error, crate::ClientError::InvalidArgument { .. }));
        let both = ConfigChange::default()
            .set("retention.ms", "1")
            .delete("retention.ms");
        let error = admin.alter_configs("t", &both, false).await.unwrap_err();
        assert!(
            error.to_string().contains("both set and deleted"),
            "{error}"
        );
        let change = ConfigChange::default().set("retention.ms", "5");
        admin.alter_configs("t", &change, true).await.unwrap();
        assert!(
            admin.describe_configs(&["t"]).await.unwrap()[0]
                .overrides
                .is_empty()
        );
        admin.alter_configs("t", &change, false).await.unwrap();
        assert_eq!(
            admin.describe_configs(&["t"]).await.unwrap()[0].overrides["retention.ms"],
            "5"
        );
    }
}
