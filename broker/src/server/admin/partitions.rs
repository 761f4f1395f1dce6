//! `CreatePartitions`: extend a topic's assignment (new partitions placed on the live brokers
//! by `placement::extend_assignment`), write it back to `/brokers/topics/<t>` conditionally on
//! the version read, then wait until every partition has a leader in this broker's metadata
//! cache. The controller's watch on `/brokers/topics/<t>` starts the new partitions.

use tonic::Status;
use tributary_controller::placement::extend_assignment;
use tributary_controller::zk::admin::{add_partitions, read_topic_assignment};
use tributary_controller::zk::{AdminZkError, ZkClient, live_brokers};
use tributary_proto::v1::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreatePartitionsResult,
    CreatePartitionsTopic, ErrorCode,
};
use tributary_zk_layout::{BrokerId, paths};

use super::{
    MAX_PARTITIONS, admin_error, all_partitions_led, await_visible, duplicate_error, duplicated,
    placement_error, request_timeout, session, zk_error,
};
use crate::server::errors::PartitionError;
use crate::state::BrokerState;

/// Attempts when another writer changed the assignment between our read and our write.
const ATTEMPTS: usize = 3;

/// Handles CreatePartitions: each topic succeeds or fails on its own.
pub async fn create_partitions(
    state: &BrokerState,
    request: CreatePartitionsRequest,
) -> Result<CreatePartitionsResponse, Status> {
    let deadline = tokio::time::Instant::now() + request_timeout(request.timeout_ms);
    let duplicates = duplicated(request.topics.iter().map(|t| t.name.as_str()));
    let mut outcomes = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let outcome = if duplicates.contains(&topic.name) {
            Err(duplicate_error(&topic.name))
        } else {
            extend_one(state, topic, request.validate_only).await
        };
        outcomes.push(outcome);
    }
    let mut results = Vec::with_capacity(outcomes.len());
    for (topic, outcome) in request.topics.into_iter().zip(outcomes) {
        let outcome = match outcome {
            Ok(()) if !request.validate_only => {
                let (name, count) = (&topic.name, topic.count);
                await_visible(
                    state,
                    deadline,
                    |snapshot| all_partitions_led(snapshot, name, count),
                    || {
                        format!(
                            "topic {name:?} now has {count} partitions in ZooKeeper; the new ones do not all have a leader yet (still in progress)"
                        )
                    },
                )
                .await
            }
            other => other,
        };
        let (code, message) = match outcome {
            Ok(()) => (ErrorCode::None, String::new()),
            Err(error) => (error.code, error.message),
        };
        results.push(CreatePartitionsResult {
            name: topic.name,
            error_code: code as i32,
            error_message: message,
        });
    }
    Ok(CreatePartitionsResponse { results })
}

async fn extend_one(
    state: &BrokerState,
    topic: &CreatePartitionsTopic,
    validate_only: bool,
) -> Result<(), PartitionError> {
    let name = &topic.name;
    if !(1..=MAX_PARTITIONS).contains(&topic.count) {
        return Err(PartitionError::new(
            ErrorCode::InvalidPartitions,
            format!(
                "the partition count must be between 1 and {MAX_PARTITIONS}, got {}",
                topic.count
            ),
        ));
    }
    let client = session(state)?;
    for _ in 0..ATTEMPTS {
        match try_extend(&client, name, topic.count, validate_only).await {
            Err(AttemptError::Lost) => continue,
            Err(AttemptError::Refused(error)) => return Err(error),
            Ok(()) => return Ok(()),
        }
    }
    Err(PartitionError::new(
        ErrorCode::RequestTimedOut,
        format!(
            "the assignment of topic {name:?} kept changing concurrently ({ATTEMPTS} attempts); retry"
        ),
    ))
}

enum AttemptError {
    /// The assignment changed between the read and the conditional write.
    Lost,
    /// A final answer.
    Refused(PartitionError),
}

impl From<PartitionError> for AttemptError {
    fn from(error: PartitionError) -> Self {
        Self::Refused(error)
    }
}

async fn try_extend(
    client: &ZkClient,
    name: &str,
    count: i32,
    validate_only: bool,
) -> Result<(), AttemptError> {
    let Some((mut assignment, stat)) = read_topic_assignment(client, name)
        .await
        .map_err(|e| zk_error(&e))?
    else {
        return Err(PartitionError::new(
            ErrorCode::UnknownTopicOrPartition,
            format!("topic {name:?} does not exist"),
        )
        .into());
    };
    if client
        .exists(&paths::delete_topic(name))
        .await
        .map_err(|e| zk_error(&e))?
        .is_some()
    {
        return Err(PartitionError::new(
            ErrorCode::InvalidTopicException,
            format!("topic {name:?} is queued for deletion"),
        )
        .into());
    }
    let live: Vec<BrokerId> = live_brokers(client)
        .await
        .map_err(|e| zk_error(&e))?
        .into_iter()
        .map(|(id, _, _)| id)
        .collect();
    let extended =
        extend_assignment(&assignment.partitions, count, &live).map_err(|e| placement_error(&e))?;
    if validate_only {
        return Ok(());
    }
    let current = assignment.partitions.len();
    assignment.partitions = extended;
    match add_partitions(client, name, &assignment, stat.version).await {
        Ok(_) => {
            tracing::info!(topic = %name, from = current, to = count, "added partitions in ZooKeeper");
            Ok(())
        }
        Err(AdminZkError::AssignmentChanged { .. }) => Err(AttemptError::Lost),
        Err(error) => Err(admin_error(&error).into()),
    }
}
