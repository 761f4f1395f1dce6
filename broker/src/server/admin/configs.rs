//! `DescribeConfigs` and `AlterConfigs` for topics. Overrides live in `/config/topics/<t>`; a
//! change is announced with a `/config/changes/config_change_<seq>` notification that every
//! broker's config watcher (`topic_config_sync::run`) applies to the partitions it hosts.
//!
//! The pure parts: [`broker_default`] (the value a topic gets without an override),
//! [`config_entries`] (effective values and their source) and [`altered`] (an incremental
//! change applied to the current overrides).

use std::collections::{BTreeMap, BTreeSet};

use tonic::Status;
use tributary_controller::zk::admin::{read_topic_config, read_topics, set_topic_config};
use tributary_proto::v1::{
    AlterConfigsRequest, AlterConfigsResponse, AlterConfigsResult, AlterConfigsTopic, ConfigEntry,
    ConfigSource, DescribeConfigsRequest, DescribeConfigsResponse, ErrorCode,
    TopicConfigDescription,
};
use tributary_record::TimestampType;
use tributary_zk_layout::paths;
use tributary_zk_layout::payloads::EntityConfig;

use super::{admin_error, duplicate_error, duplicated, session, zk_error};
use crate::config::{BrokerConfig, TOPIC_CONFIG_KEYS, validate_topic_configs};
use crate::server::errors::PartitionError;
use crate::state::BrokerState;

/// Kafka writes "never" (and unlimited) as Long.MAX_VALUE; the log config holds u64::MAX.
fn as_long(value: u64) -> String {
    i64::try_from(value).unwrap_or(i64::MAX).to_string()
}

/// The value a topic gets for `key` without an override (this broker's configuration), or
/// `None` for a key that is not a topic-level key.
pub(crate) fn broker_default(config: &BrokerConfig, key: &str) -> Option<String> {
    let log = &config.log_defaults;
    Some(match key {
        "cleanup.policy" => log.cleanup_policy.to_string(),
        "delete.retention.ms" => log.delete_retention_ms.to_string(),
        "min.cleanable.dirty.ratio" => log.min_cleanable_dirty_ratio.get().to_string(),
        "min.compaction.lag.ms" => log.min_compaction_lag_ms.to_string(),
        "max.compaction.lag.ms" => log.max_compaction_lag_ms.to_string(),
        "file.delete.delay.ms" => log.file_delete_delay_ms.to_string(),
        "flush.messages" => as_long(log.flush_messages),
        "flush.ms" => as_long(log.flush_ms),
        "index.interval.bytes" => log.index_interval_bytes.to_string(),
        "max.message.bytes" => log.max_message_bytes.to_string(),
        "message.timestamp.type" => match log.message_timestamp_type {
            TimestampType::CreateTime => "CreateTime".to_owned(),
            TimestampType::LogAppendTime => "LogAppendTime".to_owned(),
        },
        "min.insync.replicas" => config.min_insync_replicas.to_string(),
        "retention.bytes" => log.retention_bytes.to_string(),
        "retention.ms" => log.retention_ms.to_string(),
        "segment.bytes" => log.segment_bytes.to_string(),
        "segment.index.bytes" => log.segment_index_bytes.to_string(),
        "segment.ms" => log.segment_ms.to_string(),
        "unclean.leader.election.enable" => config.unclean_leader_election_enable.to_string(),
        _ => return None,
    })
}

/// Every topic-level key with its effective value: the override when there is one, else the
/// broker default. Sorted by key.
pub(crate) fn config_entries(
    config: &BrokerConfig,
    overrides: &BTreeMap<String, String>,
) -> Vec<ConfigEntry> {
    let mut keys: Vec<&str> = TOPIC_CONFIG_KEYS.to_vec();
    keys.sort_unstable();
    keys.into_iter()
        .filter_map(|key| {
            let (value, source) = match overrides.get(key) {
                Some(value) => (value.clone(), ConfigSource::TopicOverride),
                None => (broker_default(config, key)?, ConfigSource::BrokerDefault),
            };
            Some(ConfigEntry {
                name: key.to_owned(),
                value,
                source: source as i32,
            })
        })
        .collect()
}

/// `current` with `set` applied and `delete` removed. A key both set and deleted is refused
/// (INVALID_REQUEST); deleting a key that is not overridden is fine. The result is not
/// validated here.
pub(crate) fn altered(
    current: &BTreeMap<String, String>,
    set: &BTreeMap<String, String>,
    delete: &[String],
) -> Result<BTreeMap<String, String>, PartitionError> {
    let deleted: BTreeSet<&String> = delete.iter().collect();
    if let Some(both) = set.keys().find(|key| deleted.contains(key)) {
        return Err(PartitionError::new(
            ErrorCode::InvalidRequest,
            format!("config key {both:?} is both set and deleted"),
        ));
    }
    let mut next = current.clone();
    next.extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
    next.retain(|key, _| !deleted.contains(key));
    Ok(next)
}

/// Handles DescribeConfigs (no topics named: every topic in `/brokers/topics`).
pub async fn describe_configs(
    state: &BrokerState,
    request: DescribeConfigsRequest,
) -> Result<DescribeConfigsResponse, Status> {
    let names = if request.topics.is_empty() {
        // Listing every topic needs ZooKeeper; without it there is nothing to answer per topic.
        let listed = match session(state) {
            Ok(client) => read_topics(&client).await.map_err(|e| zk_error(&e)),
            Err(error) => Err(error),
        };
        listed.map_err(|error| Status::unavailable(error.message))?
    } else {
        request.topics
    };
    let mut topics = Vec::with_capacity(names.len());
    for name in names {
        topics.push(match describe_one(state, &name).await {
            Ok(overrides) => TopicConfigDescription {
                entries: config_entries(&state.config, &overrides),
                overrides: overrides.into_iter().collect(),
                name,
                error_code: ErrorCode::None as i32,
                error_message: String::new(),
            },
            Err(error) => TopicConfigDescription {
                name,
                error_code: error.code as i32,
                error_message: error.message,
                overrides: Default::default(),
                entries: Vec::new(),
            },
        });
    }
    Ok(DescribeConfigsResponse { topics })
}

async fn describe_one(
    state: &BrokerState,
    name: &str,
) -> Result<BTreeMap<String, String>, PartitionError> {
    let client = session(state)?;
    if client
        .exists(&paths::topic(name))
        .await
        .map_err(|e| zk_error(&e))?
        .is_none()
    {
        return Err(unknown(name));
    }
    Ok(read_topic_config(&client, name)
        .await
        .map_err(|e| zk_error(&e))?
        .config)
}

/// Handles AlterConfigs: each topic succeeds or fails on its own.
pub async fn alter_configs(
    state: &BrokerState,
    request: AlterConfigsRequest,
) -> Result<AlterConfigsResponse, Status> {
    let duplicates = duplicated(request.topics.iter().map(|t| t.name.as_str()));
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let outcome = if duplicates.contains(&topic.name) {
            Err(duplicate_error(&topic.name))
        } else {
            alter_one(state, &topic, request.validate_only).await
        };
        let (code, message) = match outcome {
            Ok(()) => (ErrorCode::None, String::new()),
            Err(error) => (error.code, error.message),
        };
        results.push(AlterConfigsResult {
            name: topic.name,
            error_code: code as i32,
            error_message: message,
        });
    }
    Ok(AlterConfigsResponse { results })
}

async fn alter_one(
    state: &BrokerState,
    topic: &AlterConfigsTopic,
    validate_only: bool,
) -> Result<(), PartitionError> {
    let name = &topic.name;
    let set: BTreeMap<String, String> = topic.set.clone().into_iter().collect();
    // Checked before any ZooKeeper access: a malformed change fails the same way everywhere.
    altered(&BTreeMap::new(), &set, &topic.delete)?;
    let current = describe_one(state, name).await?;
    let next = altered(&current, &set, &topic.delete)?;
    validate_topic_configs(&next)
        .map_err(|e| PartitionError::new(ErrorCode::InvalidConfig, e.to_string()))?;
    if validate_only {
        return Ok(());
    }
    let client = session(state)?;
    let notification = set_topic_config(&client, name, &EntityConfig::new(next))
        .await
        .map_err(|e| admin_error(&e))?;
    tracing::info!(topic = %name, %notification, "changed topic config");
    Ok(())
}

fn unknown(name: &str) -> PartitionError {
    PartitionError::new(
        ErrorCode::UnknownTopicOrPartition,
        format!("topic {name:?} does not exist"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn config() -> BrokerConfig {
        BrokerConfig::from_properties(&BTreeMap::new()).expect("defaults are valid")
    }

    #[test]
    fn every_topic_key_has_a_broker_default_that_validates() {
        let config = config();
        for key in TOPIC_CONFIG_KEYS {
            let value = broker_default(&config, key).unwrap_or_else(|| panic!("{key}"));
            validate_topic_configs(&map(&[(key, &value)]))
                .unwrap_or_else(|e| panic!("default of {key} does not validate: {e}"));
        }
        assert_eq!(broker_default(&config, "retention.hours"), None);
        assert_eq!(
            broker_default(&config, "flush.messages").as_deref(),
            Some("9223372036854775807")
        );
    }

    #[test]
    fn entries_are_sorted_and_name_their_source() {
        let entries = config_entries(&config(), &map(&[("retention.ms", "1000")]));
        assert_eq!(entries.len(), TOPIC_CONFIG_KEYS.len());
        assert!(entries.windows(2).all(|w| w[0].name < w[1].name));
        let retention = entries.iter().find(|e| e.name == "retention.ms").unwrap();
        assert_eq!(retention.value, "1000");
        assert_eq!(retention.source, ConfigSource::TopicOverride as i32);
        let segment = entries.iter().find(|e| e.name == "segment.bytes").unwrap();
        assert_eq!(segment.value, "1073741824");
        assert_eq!(segment.source, ConfigSource::BrokerDefault as i32);
    }

    #[test]
    fn incremental_changes() {
        let current = map(&[("retention.ms", "1"), ("segment.ms", "2")]);
        let next = altered(
            &current,
            &map(&[("retention.ms", "5"), ("flush.ms", "3")]),
            &["segment.ms".into(), "never.set".into()],
        )
        .unwrap();
        assert_eq!(next, map(&[("flush.ms", "3"), ("retention.ms", "5")]));
        let both = altered(&current, &map(&[("a", "1")]), &["a".into()]).unwrap_err();
        assert_eq!(both.code, ErrorCode::InvalidRequest);
    }
}
