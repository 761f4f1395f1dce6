//! `CreateTopics`: validate each topic (pure, [`plan_topic`]), place its replicas on the live
//! brokers, write `/config/topics/<t>` and `/brokers/topics/<t>`, then wait until every
//! partition has a leader in this broker's metadata cache.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use tonic::Status;
use tributary_controller::placement::assign_replicas;
use tributary_controller::zk::admin::{create_topic, read_topics};
use tributary_controller::zk::live_brokers;
use tributary_proto::v1::{
    CreateTopicResult, CreateTopicsRequest, CreateTopicsResponse, ErrorCode, NewTopic,
};
use tributary_zk_layout::BrokerId;
use tributary_zk_layout::payloads::{EntityConfig, TopicAssignment};

use super::{
    MAX_PARTITIONS, admin_error, all_partitions_led, await_visible, duplicate_error, duplicated,
    placement_error, request_timeout, session, zk_error,
};
use crate::config::validate_topic_configs;
use crate::server::errors::PartitionError;
use crate::state::BrokerState;
use crate::topics::{names_collide, validate_topic_name};

/// What a valid CreateTopics entry creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TopicPlan {
    /// Number of partitions (the request's, or `num.partitions` for 0).
    pub partitions: i32,
    /// Replication factor (the request's, or `default.replication.factor` for 0).
    pub replication_factor: i32,
    /// Validated topic-level overrides.
    pub configs: BTreeMap<String, String>,
}

/// The broker defaults a plan falls back on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TopicDefaults {
    /// `num.partitions`.
    pub num_partitions: i32,
    /// `default.replication.factor`.
    pub replication_factor: i32,
}

/// Checks one CreateTopics entry against the existing topics and the number of live brokers,
/// in Kafka's order: name, existence, `.`/`_` collision, partitions, replication factor,
/// configs.
pub(crate) fn plan_topic(
    topic: &NewTopic,
    defaults: TopicDefaults,
    existing: &BTreeSet<String>,
    live_brokers: usize,
) -> Result<TopicPlan, PartitionError> {
    let name = &topic.name;
    validate_topic_name(name)
        .map_err(|e| PartitionError::new(ErrorCode::InvalidTopicException, e.to_string()))?;
    if existing.contains(name) {
        return Err(PartitionError::new(
            ErrorCode::TopicAlreadyExists,
            format!("topic {name:?} already exists"),
        ));
    }
    if let Some(other) = existing.iter().find(|other| names_collide(other, name)) {
        return Err(PartitionError::new(
            ErrorCode::InvalidTopicException,
            format!(
                "topic {name:?} collides with existing topic {other:?} ('.' and '_' are treated alike)"
            ),
        ));
    }
    let partitions = match topic.num_partitions {
        0 => defaults.num_partitions,
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
        0 => defaults.replication_factor,
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
    if usize::try_from(replication_factor).map_or(true, |rf| rf > live_brokers) {
        return Err(PartitionError::new(
            ErrorCode::InvalidReplicationFactor,
            format!(
                "replication factor {replication_factor} is larger than the number of live brokers ({live_brokers})"
            ),
        ));
    }
    let configs: BTreeMap<String, String> = topic.configs.clone().into_iter().collect();
    validate_topic_configs(&configs)
        .map_err(|e| PartitionError::new(ErrorCode::InvalidConfig, e.to_string()))?;
    Ok(TopicPlan {
        partitions,
        replication_factor,
        configs,
    })
}

/// A new topic id: 16 random bytes, URL-safe base64 without padding (22 characters), the
/// `topic_id` of Kafka 2.8's v3 assignment.
fn new_topic_id() -> String {
    let bytes: [u8; 16] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Handles CreateTopics: each topic succeeds or fails on its own.
pub async fn create_topics(
    state: &BrokerState,
    request: CreateTopicsRequest,
) -> Result<CreateTopicsResponse, Status> {
    let deadline = tokio::time::Instant::now() + request_timeout(request.timeout_ms);
    let duplicates = duplicated(request.topics.iter().map(|t| t.name.as_str()));
    let mut outcomes: Vec<Result<TopicPlan, PartitionError>> = Vec::new();
    match load_cluster(state).await {
        Err(error) => outcomes.extend(request.topics.iter().map(|_| Err(error.clone()))),
        Ok((client, mut existing, live)) => {
            let defaults = TopicDefaults {
                num_partitions: state.config.num_partitions,
                replication_factor: state.config.default_replication_factor,
            };
            for topic in &request.topics {
                let outcome = if duplicates.contains(&topic.name) {
                    Err(duplicate_error(&topic.name))
                } else {
                    create_one(
                        &client,
                        topic,
                        defaults,
                        &existing,
                        &live,
                        request.validate_only,
                    )
                    .await
                };
                if outcome.is_ok() {
                    // Later entries of this request collide with it too.
                    existing.insert(topic.name.clone());
                }
                outcomes.push(outcome);
            }
        }
    }
    let mut results = Vec::with_capacity(outcomes.len());
    for (topic, outcome) in request.topics.iter().zip(outcomes) {
        let outcome = match outcome {
            Ok(plan) if !request.validate_only => {
                let name = &topic.name;
                await_visible(
                    state,
                    deadline,
                    |snapshot| all_partitions_led(snapshot, name, plan.partitions),
                    || {
                        format!(
                            "topic {name:?} was created; its partitions do not all have a leader yet (still in progress)"
                        )
                    },
                )
                .await
                .map(|()| plan)
            }
            other => other,
        };
        results.push(match outcome {
            Ok(plan) => CreateTopicResult {
                name: topic.name.clone(),
                error_code: ErrorCode::None as i32,
                error_message: String::new(),
                num_partitions: plan.partitions,
                replication_factor: plan.replication_factor,
            },
            Err(error) => CreateTopicResult {
                name: topic.name.clone(),
                error_code: error.code as i32,
                error_message: error.message,
                num_partitions: -1,
                replication_factor: -1,
            },
        });
    }
    Ok(CreateTopicsResponse { results })
}

/// The session, the existing topics and the sorted live broker ids.
pub(crate) async fn load_cluster(
    state: &BrokerState,
) -> Result<
    (
        tributary_controller::zk::ZkClient,
        BTreeSet<String>,
        Vec<BrokerId>,
    ),
    PartitionError,
> {
    let client = session(state)?;
    let existing = read_topics(&client)
        .await
        .map_err(|e| zk_error(&e))?
        .into_iter()
        .collect();
    let live = live_brokers(&client)
        .await
        .map_err(|e| zk_error(&e))?
        .into_iter()
        .map(|(id, _, _)| id)
        .collect();
    Ok((client, existing, live))
}

/// Validates, places and (unless `validate_only`) writes one topic to ZooKeeper; the
/// controller then creates its partitions. The group coordinator creates `__consumer_offsets`
/// through here too.
pub(crate) async fn create_one(
    client: &tributary_controller::zk::ZkClient,
    topic: &NewTopic,
    defaults: TopicDefaults,
    existing: &BTreeSet<String>,
    live: &[BrokerId],
    validate_only: bool,
) -> Result<TopicPlan, PartitionError> {
    let plan = plan_topic(topic, defaults, existing, live.len())?;
    let assignment = assign_replicas(plan.partitions, plan.replication_factor, live)
        .map_err(|e| placement_error(&e))?;
    if validate_only {
        return Ok(plan);
    }
    create_topic(
        client,
        &topic.name,
        &TopicAssignment::new(assignment, new_topic_id()),
        &EntityConfig::new(plan.configs.clone()),
    )
    .await
    .map_err(|e| admin_error(&e))?;
    tracing::info!(
        topic = %topic.name,
        partitions = plan.partitions,
        replication_factor = plan.replication_factor,
        "created topic in ZooKeeper"
    );
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULTS: TopicDefaults = TopicDefaults {
        num_partitions: 4,
        replication_factor: 1,
    };

    fn new_topic(name: &str, partitions: i32, rf: i32, configs: &[(&str, &str)]) -> NewTopic {
        NewTopic {
            name: name.into(),
            num_partitions: partitions,
            replication_factor: rf,
            configs: configs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    fn existing(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn defaults_apply_for_zero() {
        let plan = plan_topic(&new_topic("t", 0, 0, &[]), DEFAULTS, &existing(&[]), 3).unwrap();
        assert_eq!((plan.partitions, plan.replication_factor), (4, 1));
    }

    #[test]
    fn refusals_carry_kafkas_codes() {
        let cases: &[(NewTopic, &[&str], usize, ErrorCode, &str)] = &[
            (
                new_topic("a b", 1, 1, &[]),
                &[],
                1,
                ErrorCode::InvalidTopicException,
                "contains",
            ),
            (
                new_topic("t", 1, 1, &[]),
                &["t"],
                1,
                ErrorCode::TopicAlreadyExists,
                "exists",
            ),
            (
                new_topic("a.b", 1, 1, &[]),
                &["a_b"],
                1,
                ErrorCode::InvalidTopicException,
                "collides",
            ),
            (
                new_topic("t", -1, 1, &[]),
                &[],
                1,
                ErrorCode::InvalidPartitions,
                "between 1 and",
            ),
            (
                new_topic("t", 10_001, 1, &[]),
                &[],
                1,
                ErrorCode::InvalidPartitions,
                "10000",
            ),
            (
                new_topic("t", 1, -2, &[]),
                &[],
                1,
                ErrorCode::InvalidReplicationFactor,
                ">= 1",
            ),
            (
                new_topic("t", 1, 3, &[]),
                &[],
                2,
                ErrorCode::InvalidReplicationFactor,
                "replication factor 3 is larger than the number of live brokers (2)",
            ),
            (
                new_topic("t", 1, 1, &[("retention.ms", "soon")]),
                &[],
                1,
                ErrorCode::InvalidConfig,
                "retention.ms",
            ),
        ];
        for (topic, names, live, code, text) in cases {
            let error = plan_topic(topic, DEFAULTS, &existing(names), *live).unwrap_err();
            assert_eq!(error.code, *code, "{topic:?}: {}", error.message);
            assert!(error.message.contains(text), "{topic:?}: {}", error.message);
        }
    }

    #[test]
    fn topic_ids_are_22_url_safe_characters() {
        let id = new_topic_id();
        assert_eq!(id.len(), 22);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_ne!(id, new_topic_id());
    }
}
