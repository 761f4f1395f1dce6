//! Topic configuration: `DescribeConfigs` (overrides and effective values) and the incremental
//! `AlterConfigs`.

use std::collections::BTreeMap;

use tributary_proto::v1 as pb;

use crate::error::check;
use crate::response::topic_result;
use crate::{Client, ClientError};

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

impl Client {
    /// The configuration of the named topics (all topics when `topics` is empty). Fails with
    /// the first topic-level error (e.g. `UNKNOWN_TOPIC_OR_PARTITION`).
    pub async fn describe_configs(&self, topics: &[&str]) -> Result<Vec<TopicConfig>, ClientError> {
        let request = pb::DescribeConfigsRequest {
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
        };
        let response = self
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

    /// Changes `topic`'s overrides: sets the `set` keys and removes the `delete` keys (the
    /// broker default applies again). The result is validated as a whole (`INVALID_CONFIG`);
    /// with `validate_only` nothing is stored.
    pub async fn alter_configs(
        &self,
        topic: &str,
        set: &[(String, String)],
        delete: &[String],
        validate_only: bool,
    ) -> Result<(), ClientError> {
        let request = pb::AlterConfigsRequest {
            topics: vec![pb::AlterConfigsTopic {
                name: topic.to_owned(),
                set: set.iter().cloned().collect(),
                delete: delete.to_vec(),
            }],
            validate_only,
        };
        let response = self
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
    use crate::{Client, ConfigSource, ErrorCode};

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
}
