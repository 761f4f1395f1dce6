//! Building group requests and reading their answers (pure: messages in, values out).

use tributary_proto::v1::{
    OffsetCommitPartition, OffsetCommitResponse, OffsetCommitTopic, OffsetFetchResponse,
    OffsetFetchTopic,
};

use super::{CommittedOffset, GroupOffset};
use crate::error::check;
use crate::{ClientError, ErrorCode, TopicPartition};

/// The group-level error of an answer, if any.
pub(super) fn group_error(group: &str, code: i32, message: &str) -> Option<ClientError> {
    match ErrorCode::from_wire(code) {
        ErrorCode::None => None,
        code => Some(ClientError::Group {
            group: group.to_owned(),
            code,
            message: message.to_owned(),
        }),
    }
}

/// Consecutive entries of the same topic share one topic entry (request order is kept).
fn by_topic<T, P>(
    items: impl IntoIterator<Item = T>,
    topic_of: impl Fn(&T) -> &str,
    partition_of: impl Fn(T) -> P,
) -> Vec<(String, Vec<P>)> {
    let mut topics: Vec<(String, Vec<P>)> = Vec::new();
    for item in items {
        let topic = topic_of(&item).to_owned();
        let partition = partition_of(item);
        match topics.last_mut() {
            Some((last, partitions)) if *last == topic => partitions.push(partition),
            _ => topics.push((topic, vec![partition])),
        }
    }
    topics
}

pub(super) fn commit_topics(offsets: &[GroupOffset]) -> Vec<OffsetCommitTopic> {
    by_topic(
        offsets,
        |o| o.topic.as_str(),
        |o| OffsetCommitPartition {
            partition: o.partition,
            offset: o.offset,
            leader_epoch: o.leader_epoch.unwrap_or(-1),
            metadata: o.metadata.clone(),
        },
    )
    .into_iter()
    .map(|(topic, partitions)| OffsetCommitTopic { topic, partitions })
    .collect()
}

pub(super) fn fetch_topics(partitions: &[TopicPartition]) -> Vec<OffsetFetchTopic> {
    by_topic(partitions, |tp| tp.topic.as_str(), |tp| tp.partition)
        .into_iter()
        .map(|(topic, partitions)| OffsetFetchTopic { topic, partitions })
        .collect()
}

/// `Ok` when every partition was committed; else the group-level error or the first
/// partition's refusal.
pub(super) fn commit_outcome(
    group: &str,
    response: OffsetCommitResponse,
) -> Result<(), ClientError> {
    if let Some(error) = group_error(group, response.error_code, &response.error_message) {
        return Err(error);
    }
    for topic in &response.topics {
        for partition in &topic.partitions {
            check(
                partition.error_code,
                &partition.error_message,
                &topic.topic,
                Some(partition.partition),
            )?;
        }
    }
    Ok(())
}

pub(super) fn fetch_outcome(
    group: &str,
    response: OffsetFetchResponse,
) -> Result<Vec<(TopicPartition, Option<CommittedOffset>)>, ClientError> {
    if let Some(error) = group_error(group, response.error_code, &response.error_message) {
        return Err(error);
    }
    let mut found = Vec::new();
    for topic in response.topics {
        for p in topic.partitions {
            check(
                p.error_code,
                &p.error_message,
                &topic.topic,
                Some(p.partition),
            )?;
            let committed = (p.offset >= 0).then(|| CommittedOffset {
                offset: p.offset,
                leader_epoch: (p.leader_epoch >= 0).then_some(p.leader_epoch),
                metadata: p.metadata,
            });
            found.push((
                TopicPartition::new(topic.topic.clone(), p.partition),
                committed,
            ));
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use tributary_proto::v1::{
        OffsetCommitPartitionResult, OffsetCommitTopicResult, OffsetFetchPartitionResult,
        OffsetFetchTopicResult,
    };

    use super::*;

    #[test]
    fn requests_group_consecutive_partitions_of_a_topic() {
        let topics = commit_topics(&[
            GroupOffset::new("a", 0, 5),
            GroupOffset::new("a", 1, 6),
            GroupOffset::new("b", 0, 7),
        ]);
        assert_eq!(topics.len(), 2);
        assert_eq!(topics[0].partitions.len(), 2);
        assert_eq!(topics[0].partitions[1].leader_epoch, -1);
        let topics = fetch_topics(&[TopicPartition::new("a", 0), TopicPartition::new("b", 3)]);
        assert_eq!(topics[1].topic, "b");
        assert_eq!(topics[1].partitions, [3]);
    }

    #[test]
    fn answers_become_values_or_errors() {
        let refused = OffsetCommitResponse {
            error_code: ErrorCode::IllegalGeneration.wire_value(),
            error_message: "stale".into(),
            topics: vec![],
        };
        let error = commit_outcome("g", refused).unwrap_err();
        assert_eq!(error.to_string(), "group \"g\": ILLEGAL_GENERATION: stale");
        let partial = OffsetCommitResponse {
            error_code: 0,
            error_message: String::new(),
            topics: vec![OffsetCommitTopicResult {
                topic: "t".into(),
                partitions: vec![
                    OffsetCommitPartitionResult {
                        partition: 0,
                        error_code: 0,
                        error_message: String::new(),
                    },
                    OffsetCommitPartitionResult {
                        partition: 1,
                        error_code: ErrorCode::OffsetMetadataTooLarge.wire_value(),
                        error_message: "too long".into(),
                    },
                ],
            }],
        };
        let error = commit_outcome("g", partial).unwrap_err();
        assert_eq!(error.error_code(), Some(ErrorCode::OffsetMetadataTooLarge));
        assert!(error.to_string().starts_with("t-1"));

        let fetched = OffsetFetchResponse {
            error_code: 0,
            error_message: String::new(),
            topics: vec![OffsetFetchTopicResult {
                topic: "t".into(),
                partitions: vec![
                    OffsetFetchPartitionResult {
                        partition: 0,
                        offset: 12,
                        leader_epoch: 3,
                        metadata: "m".into(),
                        error_code: 0,
                        error_message: String::new(),
                    },
                    OffsetFetchPartitionResult {
                        partition: 1,
                        offset: -1,
                        leader_epoch: -1,
                        metadata: String::new(),
                        error_code: 0,
                        error_message: String::new(),
                    },
                ],
            }],
        };
        let found = fetch_outcome("g", fetched).unwrap();
        assert_eq!(
            found[0].1,
            Some(CommittedOffset {
                offset: 12,
                leader_epoch: Some(3),
                metadata: "m".into()
            })
        );
        assert_eq!(found[1], (TopicPartition::new("t", 1), None));
    }
}
