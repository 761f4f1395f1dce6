//! `DeleteTopics`: queue each topic in `/admin/delete_topics/<t>` (the controller stops and
//! deletes the replicas, then removes the topic), then wait until this broker's metadata cache
//! no longer lists it and the controller has removed `/brokers/topics/<t>` (every replica
//! deleted), so that a success means the name can be used again. A replica broker that is down
//! holds the deletion up: the answer is then REQUEST_TIMED_OUT, and the deletion completes when
//! the broker returns.

use tonic::Status;
use tributary_controller::zk::admin::request_topic_deletion;
use tributary_proto::v1::{
    DeleteTopicResult, DeleteTopicsRequest, DeleteTopicsResponse, ErrorCode,
};

use super::{admin_error, await_visible, duplicate_error, duplicated, request_timeout, session};
use crate::server::errors::PartitionError;
use tributary_zk_layout::paths;

/// How often DeleteTopics checks whether the controller finished the deletion.
const DELETION_POLL: std::time::Duration = std::time::Duration::from_millis(50);
use crate::state::BrokerState;

/// Handles DeleteTopics: each topic succeeds or fails on its own.
pub async fn delete_topics(
    state: &BrokerState,
    request: DeleteTopicsRequest,
) -> Result<DeleteTopicsResponse, Status> {
    let deadline = tokio::time::Instant::now() + request_timeout(request.timeout_ms);
    let duplicates = duplicated(request.topics.iter().map(String::as_str));
    let mut queued = Vec::with_capacity(request.topics.len());
    for name in &request.topics {
        let outcome = if duplicates.contains(name) {
            Err(duplicate_error(name))
        } else {
            queue_one(state, name).await
        };
        queued.push(outcome);
    }
    let mut results = Vec::with_capacity(queued.len());
    for (name, outcome) in request.topics.into_iter().zip(queued) {
        let outcome = match outcome {
            Ok(()) => {
                let in_progress = || {
                    format!(
                        "topic {name:?} is queued for deletion; it is still being deleted (in progress)"
                    )
                };
                match await_visible(
                    state,
                    deadline,
                    |snapshot| !snapshot.topics.contains_key(&name),
                    in_progress,
                )
                .await
                {
                    Ok(()) => await_deleted(state, &name, deadline).await.map_err(|()| {
                        PartitionError::new(ErrorCode::RequestTimedOut, in_progress())
                    }),
                    Err(error) => Err(error),
                }
            }
            Err(error) => Err(error),
        };
        let (code, message) = match outcome {
            Ok(()) => (ErrorCode::None, String::new()),
            Err(error) => (error.code, error.message),
        };
        results.push(DeleteTopicResult {
            name,
            error_code: code as i32,
            error_message: message,
        });
    }
    Ok(DeleteTopicsResponse { results })
}

async fn queue_one(state: &BrokerState, name: &str) -> Result<(), PartitionError> {
    if !state.config.delete_topic_enable {
        return Err(PartitionError::new(
            ErrorCode::TopicDeletionDisabled,
            "topic deletion is disabled (delete.topic.enable=false)",
        ));
    }
    let client = session(state)?;
    let newly_queued = request_topic_deletion(&client, name)
        .await
        .map_err(|e| admin_error(&e))?;
    if newly_queued {
        tracing::info!(topic = %name, "queued topic for deletion");
    }
    Ok(())
}

/// Polls until `/brokers/topics/<name>` is gone; `Err` at `deadline`. A missing session or a
/// ZooKeeper error counts as "not yet".
async fn await_deleted(
    state: &BrokerState,
    name: &str,
    deadline: tokio::time::Instant,
) -> Result<(), ()> {
    let path = paths::topic(name);
    loop {
        if let Some(client) = state.zk_client()
            && let Ok(None) = client.exists(&path).await
        {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(());
        }
        tokio::time::sleep(DELETION_POLL).await;
    }
}
