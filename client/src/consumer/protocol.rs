//! The consumer protocol's bytes (protocol type "consumer"): a member's subscription in
//! JoinGroup and its assignment in SyncGroup, as the protobuf messages `ConsumerSubscription`
//! and `ConsumerAssignment` of `group.proto`; and the leader's step: subscriptions and
//! partition counts in, one encoded assignment per member out. Pure.

use std::collections::BTreeMap;

use bytes::Bytes;
use prost::Message;
use tributary_proto::v1 as pb;

use super::TopicPartition;
use super::assignors::{Assignor, Member};
use crate::ClientError;

/// The protocol type of consumer groups.
pub const PROTOCOL_TYPE: &str = "consumer";

/// Partitions grouped by topic (sorted by name), each topic's partition ids ascending, as the
/// consumer protocol's messages carry them.
pub fn by_topic(partitions: &[TopicPartition]) -> Vec<pb::ConsumerTopicPartitions> {
    let mut grouped: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        grouped.entry(&tp.topic).or_default().push(tp.partition);
    }
    grouped
        .into_iter()
        .map(|(topic, mut partitions)| {
            partitions.sort_unstable();
            pb::ConsumerTopicPartitions {
                topic: topic.to_owned(),
                partitions,
            }
        })
        .collect()
}

fn flatten(topics: Vec<pb::ConsumerTopicPartitions>) -> Vec<TopicPartition> {
    topics
        .into_iter()
        .flat_map(|t| {
            let topic = t.topic;
            t.partitions
                .into_iter()
                .map(move |p| TopicPartition::new(topic.clone(), p))
        })
        .collect()
}

fn malformed(what: &str, error: prost::DecodeError) -> ClientError {
    ClientError::MalformedResponse {
        operation: "JoinGroup/SyncGroup",
        topic: String::new(),
        partition: None,
        reason: format!("{what} does not decode: {error}"),
    }
}

/// A member's JoinGroup metadata: its topics, and what it owned in `generation` (-1: none).
pub fn encode_subscription(topics: &[String], owned: &[TopicPartition], generation: i32) -> Bytes {
    pb::ConsumerSubscription {
        topics: topics.to_vec(),
        owned_partitions: by_topic(owned),
        generation,
        user_data: Bytes::new(),
    }
    .encode_to_vec()
    .into()
}

/// Reads member `member_id`'s JoinGroup metadata.
pub fn decode_subscription(member_id: &str, metadata: &[u8]) -> Result<Member, ClientError> {
    let subscription = pb::ConsumerSubscription::decode(metadata)
        .map_err(|e| malformed(&format!("the subscription of member {member_id}"), e))?;
    Ok(Member {
        member_id: member_id.to_owned(),
        topics: subscription.topics.into_iter().collect(),
        owned: flatten(subscription.owned_partitions),
        generation: subscription.generation,
    })
}

/// An assignment as SyncGroup carries it.
pub fn encode_assignment(partitions: &[TopicPartition]) -> Bytes {
    pb::ConsumerAssignment {
        partitions: by_topic(partitions),
        user_data: Bytes::new(),
    }
    .encode_to_vec()
    .into()
}

/// Reads this member's assignment (empty bytes: nothing assigned).
pub fn decode_assignment(bytes: &[u8]) -> Result<Vec<TopicPartition>, ClientError> {
    let assignment =
        pb::ConsumerAssignment::decode(bytes).map_err(|e| malformed("the assignment", e))?;
    Ok(flatten(assignment.partitions))
}

/// The leader's step: every member's assignment with `assignor`, encoded for SyncGroup.
pub fn leader_assignments(
    assignor: Assignor,
    partition_counts: &BTreeMap<String, i32>,
    members: &[Member],
) -> Vec<(String, Bytes)> {
    assignor
        .assign(partition_counts, members)
        .into_iter()
        .map(|(member_id, partitions)| (member_id, encode_assignment(&partitions)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_and_assignments_round_trip() {
        let owned = [TopicPartition::new("b", 1), TopicPartition::new("a", 2)];
        let bytes = encode_subscription(&["a".into(), "b".into()], &owned, 4);
        let member = decode_subscription("m", &bytes).unwrap();
        assert_eq!(member.topics.len(), 2);
        assert_eq!(
            member.owned,
            [TopicPartition::new("a", 2), TopicPartition::new("b", 1)]
        );
        assert_eq!(member.generation, 4);
        let partitions = [TopicPartition::new("t", 3), TopicPartition::new("t", 0)];
        assert_eq!(
            decode_assignment(&encode_assignment(&partitions)).unwrap(),
            [TopicPartition::new("t", 0), TopicPartition::new("t", 3)]
        );
        assert!(decode_assignment(&[]).unwrap().is_empty());
        assert!(decode_assignment(&[0xFF, 0xFF]).is_err());
        assert!(decode_subscription("m", &[0x0A, 0x05]).is_err());
    }

    #[test]
    fn three_members_split_six_partitions_two_each() {
        let counts = BTreeMap::from([("t".to_owned(), 6)]);
        let members: Vec<Member> = ["m1", "m2", "m3"]
            .iter()
            .map(|id| {
                decode_subscription(id, &encode_subscription(&["t".into()], &[], -1)).unwrap()
            })
            .collect();
        for assignor in [Assignor::Range, Assignor::RoundRobin, Assignor::Sticky] {
            let assignments = leader_assignments(assignor, &counts, &members);
            let mut all: Vec<TopicPartition> = Vec::new();
            for (_, bytes) in &assignments {
                let mine = decode_assignment(bytes).unwrap();
                assert_eq!(mine.len(), 2, "{assignor:?}");
                all.extend(mine);
            }
            all.sort();
            assert_eq!(
                all,
                (0..6)
                    .map(|p| TopicPartition::new("t", p))
                    .collect::<Vec<_>>()
            );
        }
    }
}
