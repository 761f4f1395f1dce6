//! OffsetCommit and OffsetFetch at the coordinator: check (pure, [`super::commit`]), append to
//! the group's `__consumer_offsets` partition, wait until every in-sync replica has the
//! records (acks=-1), then update the shard's cache; fetches answer from the cache.
//!
//! The committer check and the append happen under the shard's lock, so records enter the log
//! in the order their checks passed; the wait happens outside it. The cache changes only after
//! the high watermark passes the records, so an answer never shows an offset a new leader
//! could lose.

use std::time::Duration;

use bytes::BytesMut;
use tokio::time::Instant;
use tributary_record::{BatchBuilder, Record};

use super::commit::{check_committer, check_group_id, metadata_fits};
use super::coordinator::group_partition;
use super::error::GroupError;
use super::membership;
use super::offsets_topic::OFFSETS_TOPIC;
use super::records::{OffsetCommitValue, offset_commit_key, offset_commit_value};
use super::state::{CommittedOffset, Group};
use crate::log::{LogError, TopicPartition};
use crate::replica::{AppendError, Partition};
use crate::state::{BrokerState, now_ms};

/// One partition's offset to commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitEntry {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The next offset to consume.
    pub offset: i64,
    /// Leader epoch of the last consumed record, if known.
    pub leader_epoch: Option<i32>,
    /// The committer's metadata.
    pub metadata: String,
}

/// An OffsetCommit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitRequest {
    /// The group.
    pub group_id: String,
    /// The committer's generation (-1 outside group management).
    pub generation: i32,
    /// The committer's member id (empty outside group management).
    pub member_id: String,
    /// The offsets.
    pub entries: Vec<CommitEntry>,
}

/// Why one partition of a commit was not committed (the others were).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryRefusal {
    /// The metadata is longer than `offset.metadata.max.bytes`.
    #[error(
        "{topic}-{partition}: metadata of {size} bytes exceeds offset.metadata.max.bytes={max}"
    )]
    MetadataTooLarge {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// The metadata's size in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The topic-partition is not in this broker's metadata.
    #[error("{topic}-{partition}: unknown topic or partition")]
    UnknownTopicOrPartition {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
    },
}

/// Commits `request`: one outcome per entry, in order, or a group-level error (nothing
/// committed).
pub async fn commit(
    state: &BrokerState,
    request: &CommitRequest,
) -> Result<Vec<Result<(), EntryRefusal>>, GroupError> {
    let group_id = request.group_id.as_str();
    check_group_id(group_id)?;
    let partition = group_partition(state, group_id)?;
    let max = state.groups.settings().offset_metadata_max_bytes;
    let outcomes: Vec<Result<(), EntryRefusal>> = request
        .entries
        .iter()
        .map(|entry| check_entry(state, entry, max))
        .collect();
    let accepted: Vec<&CommitEntry> = request
        .entries
        .iter()
        .zip(&outcomes)
        .filter(|(_, outcome)| outcome.is_ok())
        .map(|(entry, _)| entry)
        .collect();
    let now = now_ms();

    let (incarnation, appended) =
        state
            .groups
            .with_loaded(group_id, partition, |mut shard| {
                check_committer(
                    group_id,
                    shard.groups().get(group_id),
                    request.generation,
                    &request.member_id,
                )?;
                if accepted.is_empty() {
                    return Ok((shard.incarnation(), None));
                }
                if request.generation >= 0 {
                    membership::heard_from(
                        shard.groups().get_mut(group_id).expect("checked"),
                        &request.member_id,
                        now,
                    );
                }
                let appended = append_as_coordinator(
                    state,
                    group_id,
                    partition,
                    commit_batch(group_id, &accepted, now),
                )?;
                // A simple commit to an unknown group creates it (Empty), as in Kafka.
                let group = shard
                    .groups()
                    .entry(group_id.to_owned())
                    .or_insert_with(Group::empty);
                for (index, entry) in accepted.iter().enumerate() {
                    group.add_pending(&entry.topic, entry.partition, appended.1 + index as i64);
                }
                Ok((shard.incarnation(), Some(appended)))
            })??;

    let Some((replica, base_offset, generation)) = appended else {
        return Ok(outcomes);
    };
    let required = base_offset + accepted.len() as i64;
    let result = replicated(state, group_id, partition, &replica, required, generation).await;

    // Whatever the outcome, the commits are no longer pending; replicated ones go into the
    // cache.
    let finished = state.groups.with_loaded(group_id, partition, |mut shard| {
        if shard.incarnation() != incarnation {
            return false;
        }
        // The group is gone if it was deleted meanwhile (its tombstones follow this commit in
        // the log): nothing to store.
        let Some(group) = shard.groups().get_mut(group_id) else {
            return true;
        };
        for (index, entry) in accepted.iter().enumerate() {
            let record_offset = base_offset + index as i64;
            let pending = group.finish_pending(&entry.topic, entry.partition, record_offset);
            if pending && result.is_ok() {
                group.store_offset(
                    &entry.topic,
                    entry.partition,
                    CommittedOffset {
                        offset: entry.offset,
                        leader_epoch: entry.leader_epoch,
                        metadata: entry.metadata.clone(),
                        commit_timestamp: now,
                        expire_timestamp: None,
                        record_offset,
                    },
                );
            }
        }
        true
    });
    result?;
    if !finished? {
        return Err(GroupError::NotCoordinator {
            group: group_id.to_owned(),
            partition,
        });
    }
    Ok(outcomes)
}

/// A group's committed offsets: of `partitions` (in that order, `None` where nothing is
/// committed), or of every partition it committed (sorted) when `partitions` is `None`.
pub fn fetch(
    state: &BrokerState,
    group_id: &str,
    partitions: Option<&[(String, i32)]>,
) -> Result<Vec<(String, i32, Option<CommittedOffset>)>, GroupError> {
    check_group_id(group_id)?;
    let partition = group_partition(state, group_id)?;
    state.groups.with_loaded(group_id, partition, |mut shard| {
        let group = shard.groups().get(group_id);
        match partitions {
            Some(asked) => asked
                .iter()
                .map(|(topic, partition)| {
                    let committed = group
                        .and_then(|g| g.offsets.get(&(topic.clone(), *partition)))
                        .cloned();
                    (topic.clone(), *partition, committed)
                })
                .collect(),
            None => group
                .map(|g| {
                    g.offsets
                        .iter()
                        .map(|((topic, partition), committed)| {
                            (topic.clone(), *partition, Some(committed.clone()))
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    })
}

fn check_entry(state: &BrokerState, entry: &CommitEntry, max: usize) -> Result<(), EntryRefusal> {
    if !metadata_fits(&entry.metadata, max) {
        return Err(EntryRefusal::MetadataTooLarge {
            topic: entry.topic.clone(),
            partition: entry.partition,
            size: entry.metadata.len(),
            max,
        });
    }
    let tp = TopicPartition::new(entry.topic.clone(), entry.partition);
    if state.metadata.partition(&tp).is_none() {
        return Err(EntryRefusal::UnknownTopicOrPartition {
            topic: entry.topic.clone(),
            partition: entry.partition,
        });
    }
    Ok(())
}

/// Appends `batch` to the group's offsets partition as its leader (called under the shard's
/// lock, so records enter the log in the order their decisions were made). Returns the
/// replica, the batch's base offset and the leadership generation to wait under.
pub(super) fn append_as_coordinator(
    state: &BrokerState,
    group_id: &str,
    partition: i32,
    batch: BytesMut,
) -> Result<(std::sync::Arc<Partition>, i64, u64), GroupError> {
    let replica = offsets_leader(state, group_id, partition)?;
    let generation = replica.leadership_generation();
    let min_insync = usize::try_from(state.min_insync_replicas(OFFSETS_TOPIC)).unwrap_or(1);
    let info = replica
        .append_as_leader(batch, now_ms(), Some(min_insync))
        .map_err(|source| append_refusal(group_id, partition, source))?;
    Ok((replica, info.base_offset, generation))
}

/// Waits until every in-sync replica has the records below `required` (acks=-1), up to
/// `offsets.commit.timeout.ms`.
pub(super) async fn replicated(
    state: &BrokerState,
    group_id: &str,
    partition: i32,
    replica: &Partition,
    required: i64,
    generation: u64,
) -> Result<(), GroupError> {
    let timeout_ms = state.groups.settings().offsets_commit_timeout_ms;
    let deadline = Instant::now() + Duration::from_millis(timeout_ms);
    wait_until_replicated(replica, required, generation, deadline)
        .await
        .map_err(|waited| match waited {
            Waited::LostLeadership => GroupError::NotCoordinator {
                group: group_id.to_owned(),
                partition,
            },
            Waited::TimedOut => GroupError::ReplicationTimedOut {
                group: group_id.to_owned(),
                timeout_ms,
            },
        })
}

/// The offsets partition's replica, if this broker leads it.
fn offsets_leader(
    state: &BrokerState,
    group_id: &str,
    partition: i32,
) -> Result<std::sync::Arc<Partition>, GroupError> {
    state
        .replicas
        .get(&TopicPartition::new(OFFSETS_TOPIC, partition))
        .filter(|replica| replica.is_leader())
        .ok_or_else(|| GroupError::NotCoordinator {
            group: group_id.to_owned(),
            partition,
        })
}

/// One uncompressed batch with a record per accepted entry, in order.
fn commit_batch(group_id: &str, entries: &[&CommitEntry], now: i64) -> BytesMut {
    let mut builder = BatchBuilder::new();
    for entry in entries {
        builder.push(&Record {
            key: Some(offset_commit_key(group_id, &entry.topic, entry.partition)),
            value: Some(offset_commit_value(&OffsetCommitValue {
                offset: entry.offset,
                leader_epoch: entry.leader_epoch.unwrap_or(-1),
                metadata: entry.metadata.clone(),
                commit_timestamp: now,
                expire_timestamp: None,
            })),
            timestamp: now,
            headers: Vec::new(),
        });
    }
    BytesMut::from(&builder.build_vec()[..])
}

/// Kafka's translation of append failures for commits (`GroupMetadataManager.storeOffsets`):
/// not leading → NOT_COORDINATOR; too few in-sync replicas → COORDINATOR_NOT_AVAILABLE; too
/// large → INVALID_COMMIT_OFFSET_SIZE; the rest is reported as the append failure.
fn append_refusal(group_id: &str, partition: i32, source: AppendError) -> GroupError {
    let group = group_id.to_owned();
    match source {
        AppendError::NotLeader { .. } => GroupError::NotCoordinator { group, partition },
        AppendError::NotEnoughReplicas { .. } => GroupError::CoordinatorNotAvailable {
            group,
            reason: source.to_string(),
        },
        AppendError::Log(LogError::MessageTooLarge { .. }) => {
            GroupError::CommitTooLarge { group, source }
        }
        source => GroupError::Append { group, source },
    }
}

/// How a wait for replication ended without success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waited {
    /// The replica stopped leading (or led again in between: its records may be gone).
    LostLeadership,
    /// The deadline passed.
    TimedOut,
}

/// Waits until the high watermark reaches `required` while the replica leads in the same
/// leadership `generation`.
async fn wait_until_replicated(
    replica: &Partition,
    required: i64,
    generation: u64,
    deadline: Instant,
) -> Result<(), Waited> {
    let mut changes = replica.subscribe();
    loop {
        if !replica.is_leader() || replica.leadership_generation() != generation {
            return Err(Waited::LostLeadership);
        }
        if replica.high_watermark() >= required {
            return Ok(());
        }
        match tokio::time::timeout_at(deadline, changes.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(Waited::LostLeadership),
            Err(_) => return Err(Waited::TimedOut),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_zk_layout::BrokerId;

    #[test]
    fn append_failures_translate_as_in_kafka() {
        let tp = TopicPartition::new(OFFSETS_TOPIC, 7);
        let not_leader = AppendError::NotLeader {
            topic_partition: tp.clone(),
            role: crate::replica::Role::Follower,
            leader: BrokerId(2),
            leader_epoch: tributary_zk_layout::LeaderEpoch(3),
        };
        assert!(matches!(
            append_refusal("g", 7, not_leader),
            GroupError::NotCoordinator { partition: 7, .. }
        ));
        let few = AppendError::NotEnoughReplicas {
            topic_partition: tp.clone(),
            isr: 1,
            min_insync_replicas: 2,
        };
        assert!(matches!(
            append_refusal("g", 7, few),
            GroupError::CoordinatorNotAvailable { .. }
        ));
        let large = AppendError::Log(LogError::MessageTooLarge {
            topic_partition: tp,
            size: 2_000_000,
            max: 1_048_588,
        });
        assert!(matches!(
            append_refusal("g", 7, large),
            GroupError::CommitTooLarge { .. }
        ));
    }

    #[test]
    fn a_commit_batch_holds_one_keyed_record_per_entry() {
        let entries = [
            CommitEntry {
                topic: "t".into(),
                partition: 0,
                offset: 5,
                leader_epoch: Some(2),
                metadata: "m".into(),
            },
            CommitEntry {
                topic: "t".into(),
                partition: 1,
                offset: 9,
                leader_epoch: None,
                metadata: String::new(),
            },
        ];
        let refs: Vec<&CommitEntry> = entries.iter().collect();
        let batch = commit_batch("g", &refs, 1234).freeze();
        let records = tributary_record::decode_records(&batch).unwrap();
        assert_eq!(records.len(), 2);
        let mut groups = super::super::shard::Groups::new();
        for record in &records {
            assert_eq!(record.timestamp, 1234);
            super::super::shard::replay(
                &mut groups,
                record.key.as_deref().unwrap(),
                record.value.as_deref(),
                record.offset,
            )
            .unwrap();
        }
        let group = &groups["g"];
        let first = &group.offsets[&("t".into(), 0)];
        assert_eq!(
            (first.offset, first.leader_epoch, first.metadata.as_str()),
            (5, Some(2), "m")
        );
        let second = &group.offsets[&("t".into(), 1)];
        assert_eq!((second.offset, second.leader_epoch), (9, None));
    }
}
