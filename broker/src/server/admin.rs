//! `CreateTopics`, `DeleteTopics`, `DescribeTopics` (topics stored locally until the
//! ZooKeeper milestone).

use std::collections::{BTreeMap, HashMap};

use tonic::Status;
use tributary_proto::v1::{
    CreateTopicResult, CreateTopicsRequest, CreateTopicsResponse, DeleteTopicResult,
    DeleteTopicsRequest, DeleteTopicsResponse, DescribeTopicsRequest, DescribeTopicsResponse,
    ErrorCode, NewTopic, TopicDescription,
};

use super::errors::{PartitionError, error_chain, from_log_error};
use super::metadata::partitions_of;
use crate::config::validate_topic_configs;
use crate::log::TopicPartition;
use crate::state::BrokerState;
use crate::topics::{TopicDefinition, TopicStore, names_collide, validate_topic_name};

/// Most partitions one topic may have (a guard against typos such as 1000000).
pub const MAX_PARTITIONS: i32 = 10_000;
/// Live brokers in this single-broker milestone.
const LIVE_BROKERS: i32 = 1;

/// Handles CreateTopics: each topic succeeds or fails on its own.
pub fn create_topics(
    state: &BrokerState,
    request: CreateTopicsRequest,
) -> Result<CreateTopicsResponse, Status> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for topic in &request.topics {
        *counts.entry(topic.name.as_str()).or_default() += 1;
    }
    let duplicated: Vec<String> = counts
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(name, _)| (*name).to_owned())
        .collect();
    let mut store = state.topics.lock().expect("topic store lock");
    let results = request
        .topics
        .iter()
        .map(|topic| {
            let outcome = if duplicated.contains(&topic.name) {
                Err(PartitionError::new(
                    ErrorCode::InvalidRequest,
                    format!(
                        "topic {:?} appears more than once in the request",
                        topic.name
                    ),
                ))
            } else {
                create_one(state, &mut store, topic, request.validate_only)
            };
            match outcome {
                Ok(def) => CreateTopicResult {
                    name: topic.name.clone(),
                    error_code: ErrorCode::None as i32,
                    error_message: String::new(),
                    num_partitions: def.partitions,
                    replication_factor: def.replication_factor,
                },
                Err(e) => CreateTopicResult {
                    name: topic.name.clone(),
                    error_code: e.code as i32,
                    error_message: e.message,
                    num_partitions: -1,
                    replication_factor: -1,
                },
            }
        })
        .collect();
    Ok(CreateTopicsResponse { results })
}

fn create_one(
    state: &BrokerState,
    store: &mut TopicStore,
    topic: &NewTopic,
    validate_only: bool,
) -> Result<TopicDefinition, PartitionError> {
    let def = validate_new_topic(state, store, topic)?;
    if validate_only {
        return Ok(def);
    }
    store
        .put(&topic.name, def.clone())
        .map_err(|e| PartitionError::new(ErrorCode::KafkaStorageError, error_chain(&e)))?;
    let config = state.log_config_for(&def.configs);
    for partition in 0..def.partitions {
        let tp = TopicPartition {
            topic: topic.name.clone(),
            partition,
        };
        if let Err(error) = state.replicas.host(&tp, config.clone()) {
            // Undo: a topic is created whole or not at all.
            for created in 0..partition {
                let _ = state.replicas.delete(&TopicPartition {
                    topic: topic.name.clone(),
                    partition: created,
                });
            }
            let _ = store.remove(&topic.name);
            return Err(from_log_error(&error));
        }
    }
    tracing::info!(topic = %topic.name, partitions = def.partitions, "created topic");
    Ok(def)
}

/// Checks a CreateTopics entry; returns the definition it would create.
fn validate_new_topic(
    state: &BrokerState,
    store: &TopicStore,
    topic: &NewTopic,
) -> Result<TopicDefinition, PartitionError> {
    let name = &topic.name;
    validate_topic_name(name)
        .map_err(|e| PartitionError::new(ErrorCode::InvalidTopicException, e.to_string()))?;
    if store.get(name).is_some() {
        return Err(PartitionError::new(
            ErrorCode::TopicAlreadyExists,
            format!("topic {name:?} already exists"),
        ));
    }
    if let Some(other) = store
        .topics()
        .keys()
        .find(|existing| names_collide(existing, name))
    {
        return Err(PartitionError::new(
            ErrorCode::InvalidTopicException,
            format!(
                "topic {name:?} collides with existing topic {other:?} ('.' and '_' are treated alike)"
            ),
        ));
    }
    let partitions = match topic.num_partitions {
        0 => state.config.num_partitions,
        n if (1..=MAX_PARTITIONS).contains(&n) => n,
        n => {
            return Err(PartitionError::new(
                ErrorCode::InvalidPartitions,
                format!(
                    "num_partitions must be between 1 and {MAX_PARTITIONS} (or 0 for the default), got {n}"
                ),
            ));
        }
    };
    let replication_factor = match topic.replication_factor {
        0 => state.config.default_replication_factor,
        n => n,
    };
    if replication_factor < 1 {
        return Err(PartitionError::new(
            ErrorCode::InvalidReplicationFactor,
            format!(
                "replication_factor must be >= 1 (or 0 for the default), got {replication_factor}"
            ),
        ));
    }
    if replication_factor > LIVE_BROKERS {
        return Err(PartitionError::new(
            ErrorCode::InvalidReplicationFactor,
            format!(
                "replication factor {replication_factor} is larger than the number of available brokers ({LIVE_BROKERS})"
            ),
        ));
    }
    let configs: BTreeMap<String, String> = topic.configs.clone().into_iter().collect();
    validate_topic_configs(&configs)
        .map_err(|e| PartitionError::new(ErrorCode::InvalidConfig, e.to_string()))?;
    Ok(TopicDefinition {
        partitions,
        replication_factor,
        configs,
    })
}

/// Handles DeleteTopics: removes each topic's data, then its definition.
pub fn delete_topics(
    state: &BrokerState,
    request: DeleteTopicsRequest,
) -> Result<DeleteTopicsResponse, Status> {
    let mut store = state.topics.lock().expect("topic store lock");
    let results = request
        .topics
        .into_iter()
        .map(|name| {
            let outcome = delete_one(state, &mut store, &name);
            let (code, message) = match outcome {
                Ok(()) => (ErrorCode::None, String::new()),
                Err(e) => (e.code, e.message),
            };
            DeleteTopicResult {
                name,
                error_code: code as i32,
                error_message: message,
            }
        })
        .collect();
    Ok(DeleteTopicsResponse { results })
}

fn delete_one(
    state: &BrokerState,
    store: &mut TopicStore,
    name: &str,
) -> Result<(), PartitionError> {
    if !state.config.delete_topic_enable {
        return Err(PartitionError::new(
            ErrorCode::TopicDeletionDisabled,
            "topic deletion is disabled (delete.topic.enable=false)",
        ));
    }
    let def = store.get(name).cloned().ok_or_else(|| {
        PartitionError::new(
            ErrorCode::UnknownTopicOrPartition,
            format!("topic {name:?} does not exist"),
        )
    })?;
    // Data first, then the definition: a crash in between leaves a topic the operator can
    // delete again, never an orphaned log nobody knows about.
    for partition in 0..def.partitions {
        state
            .replicas
            .delete(&TopicPartition {
                topic: name.to_owned(),
                partition,
            })
            .map_err(|e| from_log_error(&e))?;
    }
    store
        .remove(name)
        .map_err(|e| PartitionError::new(ErrorCode::KafkaStorageError, error_chain(&e)))?;
    tracing::info!(topic = %name, "deleted topic");
    Ok(())
}

/// Handles DescribeTopics.
pub fn describe_topics(
    state: &BrokerState,
    request: DescribeTopicsRequest,
) -> Result<DescribeTopicsResponse, Status> {
    let store = state.topics.lock().expect("topic store lock");
    let names = store.requested_or_all(request.topics);
    let topics = names
        .into_iter()
        .map(|name| match store.get(&name) {
            Some(def) => TopicDescription {
                partitions: partitions_of(state, &name, def),
                configs: def.configs.clone().into_iter().collect(),
                name,
                error_code: ErrorCode::None as i32,
                error_message: String::new(),
            },
            None => TopicDescription {
                error_message: format!("topic {name:?} does not exist"),
                name,
                error_code: ErrorCode::UnknownTopicOrPartition as i32,
                partitions: Vec::new(),
                configs: Default::default(),
            },
        })
        .collect();
    Ok(DescribeTopicsResponse { topics })
}
