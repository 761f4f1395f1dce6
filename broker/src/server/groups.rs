//! `tributary.v1.GroupCoordinator`: FindCoordinator, OffsetCommit and OffsetFetch. Checks the
//! request's shape (INVALID_ARGUMENT), hands it to [`crate::group`], and turns the outcome into
//! the response: a group-level code (repeated in every partition result, as Kafka answers) or
//! one outcome per partition.

use tonic::Status;
use tributary_proto::v1::{
    BrokerInfo, ErrorCode, FindCoordinatorRequest, FindCoordinatorResponse, OffsetCommitPartition,
    OffsetCommitPartitionResult, OffsetCommitRequest, OffsetCommitResponse, OffsetCommitTopic,
    OffsetCommitTopicResult, OffsetFetchPartitionResult, OffsetFetchRequest, OffsetFetchResponse,
    OffsetFetchTopicResult,
};

use super::control::check_partitions;
use super::errors::{error_chain, group_error_code, invalid_argument};
use crate::group::{self, CommitEntry, CommitRequest, CommittedOffset, EntryRefusal, GroupError};
use crate::state::BrokerState;

/// Handles FindCoordinator.
pub async fn find_coordinator(
    state: &BrokerState,
    request: FindCoordinatorRequest,
) -> Result<FindCoordinatorResponse, Status> {
    Ok(
        match group::find_coordinator(state, &request.group_id).await {
            Ok(found) => FindCoordinatorResponse {
                error_code: ErrorCode::None as i32,
                error_message: String::new(),
                coordinator: Some(BrokerInfo {
                    id: found.broker_id,
                    host: found.host,
                    port: i32::from(found.port),
                    rack: found.rack,
                    broker_epoch: None,
                }),
                partition: found.partition,
            },
            Err(error) => FindCoordinatorResponse {
                error_code: group_error_code(&error) as i32,
                error_message: error_chain(&error),
                coordinator: None,
                partition: -1,
            },
        },
    )
}

/// Handles OffsetCommit.
pub async fn offset_commit(
    state: &BrokerState,
    request: OffsetCommitRequest,
) -> Result<OffsetCommitResponse, Status> {
    check_partitions(
        "OffsetCommit",
        request
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| (t.topic.as_str(), p.partition))),
    )?;
    let commit = CommitRequest {
        group_id: request.group_id,
        generation: request.generation_id,
        member_id: request.member_id,
        entries: request
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| commit_entry(&t.topic, p)))
            .collect(),
    };
    let outcomes = match group::commit(state, &commit).await {
        Ok(outcomes) => outcomes,
        Err(error) => {
            let code = group_error_code(&error);
            log_commit_refusal(&error, code);
            let message = error_chain(&error);
            return Ok(OffsetCommitResponse {
                error_code: code as i32,
                error_message: message.clone(),
                topics: commit_results(&request.topics, |_| (code, message.clone())),
            });
        }
    };
    let mut outcomes = outcomes.into_iter();
    Ok(OffsetCommitResponse {
        error_code: ErrorCode::None as i32,
        error_message: String::new(),
        topics: commit_results(&request.topics, |_| match outcomes.next() {
            Some(Ok(())) => (ErrorCode::None, String::new()),
            Some(Err(refusal)) => (refusal_code(&refusal), refusal.to_string()),
            None => (
                ErrorCode::UnknownServerError,
                "no outcome for this partition".to_owned(),
            ),
        }),
    })
}

fn commit_entry(topic: &str, p: &OffsetCommitPartition) -> CommitEntry {
    CommitEntry {
        topic: topic.to_owned(),
        partition: p.partition,
        offset: p.offset,
        leader_epoch: (p.leader_epoch >= 0).then_some(p.leader_epoch),
        metadata: p.metadata.clone(),
    }
}

fn refusal_code(refusal: &EntryRefusal) -> ErrorCode {
    match refusal {
        EntryRefusal::MetadataTooLarge { .. } => ErrorCode::OffsetMetadataTooLarge,
        EntryRefusal::UnknownTopicOrPartition { .. } => ErrorCode::UnknownTopicOrPartition,
    }
}

/// Refusals of the committer are worth a line (a zombie member, a misconfigured client);
/// the retriable coordinator answers are routine during a leader change.
fn log_commit_refusal(error: &GroupError, code: ErrorCode) {
    match code {
        ErrorCode::NotCoordinator
        | ErrorCode::CoordinatorLoadInProgress
        | ErrorCode::CoordinatorNotAvailable => {
            tracing::debug!(error = %error_chain(error), "OffsetCommit refused");
        }
        _ => tracing::info!(error = %error_chain(error), "OffsetCommit refused"),
    }
}

/// One result per requested partition, in request order, from `outcome`.
fn commit_results(
    topics: &[OffsetCommitTopic],
    mut outcome: impl FnMut(&OffsetCommitPartition) -> (ErrorCode, String),
) -> Vec<OffsetCommitTopicResult> {
    topics
        .iter()
        .map(|t| OffsetCommitTopicResult {
            topic: t.topic.clone(),
            partitions: t
                .partitions
                .iter()
                .map(|p| {
                    let (code, message) = outcome(p);
                    OffsetCommitPartitionResult {
                        partition: p.partition,
                        error_code: code as i32,
                        error_message: message,
                    }
                })
                .collect(),
        })
        .collect()
}

/// Handles OffsetFetch.
pub async fn offset_fetch(
    state: &BrokerState,
    request: OffsetFetchRequest,
) -> Result<OffsetFetchResponse, Status> {
    if let Some(topic) = request.topics.iter().find(|t| t.partitions.is_empty()) {
        return Err(invalid_argument(format!(
            "OffsetFetch: topic {:?} names no partition",
            topic.topic
        )));
    }
    check_partitions(
        "OffsetFetch",
        request
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| (t.topic.as_str(), *p))),
    )?;
    let asked: Vec<(String, i32)> = request
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.topic.clone(), *p)))
        .collect();
    let asked = (!asked.is_empty()).then_some(asked);
    match group::fetch(state, &request.group_id, asked.as_deref()) {
        Ok(found) => Ok(OffsetFetchResponse {
            error_code: ErrorCode::None as i32,
            error_message: String::new(),
            topics: fetch_results(found),
        }),
        Err(error) => {
            let code = group_error_code(&error);
            let message = error_chain(&error);
            Ok(OffsetFetchResponse {
                error_code: code as i32,
                error_message: message.clone(),
                topics: request
                    .topics
                    .iter()
                    .map(|t| OffsetFetchTopicResult {
                        topic: t.topic.clone(),
                        partitions: t
                            .partitions
                            .iter()
                            .map(|p| fetch_result(*p, None, code, message.clone()))
                            .collect(),
                    })
                    .collect(),
            })
        }
    }
}

/// Groups consecutive entries of the same topic (the request's order, or sorted for a fetch
/// of everything).
fn fetch_results(
    found: Vec<(String, i32, Option<CommittedOffset>)>,
) -> Vec<OffsetFetchTopicResult> {
    let mut topics: Vec<OffsetFetchTopicResult> = Vec::new();
    for (topic, partition, committed) in found {
        let result = fetch_result(
            partition,
            committed.as_ref(),
            ErrorCode::None,
            String::new(),
        );
        match topics.last_mut() {
            Some(last) if last.topic == topic => last.partitions.push(result),
            _ => topics.push(OffsetFetchTopicResult {
                topic,
                partitions: vec![result],
            }),
        }
    }
    topics
}

fn fetch_result(
    partition: i32,
    committed: Option<&CommittedOffset>,
    code: ErrorCode,
    message: String,
) -> OffsetFetchPartitionResult {
    OffsetFetchPartitionResult {
        partition,
        offset: committed.map_or(-1, |c| c.offset),
        leader_epoch: committed.and_then(|c| c.leader_epoch).unwrap_or(-1),
        metadata: committed.map(|c| c.metadata.clone()).unwrap_or_default(),
        error_code: code as i32,
        error_message: message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetch_results_group_partitions_by_topic_in_order() {
        let committed = |offset| CommittedOffset {
            offset,
            leader_epoch: Some(1),
            metadata: "m".into(),
            commit_timestamp: 0,
            expire_timestamp: None,
            record_offset: 0,
        };
        let results = fetch_results(vec![
            ("a".into(), 1, Some(committed(5))),
            ("a".into(), 0, None),
            ("b".into(), 0, Some(committed(7))),
        ]);
        assert_eq!(results.len(), 2);
        assert_eq!(results[0].topic, "a");
        let offsets: Vec<(i32, i64, i32)> = results[0]
            .partitions
            .iter()
            .map(|p| (p.partition, p.offset, p.leader_epoch))
            .collect();
        assert_eq!(offsets, [(1, 5, 1), (0, -1, -1)]);
        assert_eq!(results[1].partitions[0].offset, 7);
    }
}
