//! One `__consumer_offsets` partition this broker leads, and the groups it holds. The
//! coordinator keeps each shard behind its own short `std::sync::Mutex` (never held across an
//! await); everything here is pure.

use std::collections::HashMap;

use tributary_zk_layout::LeaderEpoch;

use super::records::{self, OffsetsKey, OffsetsRecordError};
use super::state::{CommittedOffset, Group};

/// The groups of one partition, by group id.
pub type Groups = HashMap<String, Group>;

/// Where a shard is in its life.
#[derive(Debug)]
pub enum ShardStatus {
    /// Becoming leader started a load of the partition; requests get
    /// COORDINATOR_LOAD_IN_PROGRESS.
    Loading,
    /// The groups as of the partition's end; requests are served.
    Loaded(Groups),
}

/// A partition this broker leads.
#[derive(Debug)]
pub struct Shard {
    /// Distinguishes successive leaderships of the same partition on this broker: a load or
    /// a commit started under one incarnation never changes another.
    pub incarnation: u64,
    /// The partition's leader epoch (for logs and diagnostics).
    pub leader_epoch: LeaderEpoch,
    /// Loading or loaded.
    pub status: ShardStatus,
}

impl Shard {
    /// A shard whose load has just started.
    pub fn loading(incarnation: u64, leader_epoch: LeaderEpoch) -> Self {
        Self {
            incarnation,
            leader_epoch,
            status: ShardStatus::Loading,
        }
    }
}

/// Applies one record of the partition (at `record_offset`, value `None` = tombstone) to
/// `groups`, as a load replays the log from its start:
/// * an offset commit stores the offset (creating the group, Empty, if needed); its tombstone
///   removes the offset;
/// * a group metadata record makes the group known; its tombstone removes a group that has no
///   offsets left. Membership in its value is not read yet: it comes with JoinGroup/SyncGroup.
///
/// A key or value that does not decode is an error; the caller skips the record and says so.
pub fn replay(
    groups: &mut Groups,
    key: &[u8],
    value: Option<&[u8]>,
    record_offset: i64,
) -> Result<(), OffsetsRecordError> {
    match records::decode_key(key)? {
        OffsetsKey::OffsetCommit {
            group,
            topic,
            partition,
        } => match value {
            Some(value) => {
                let value = records::decode_offset_commit_value(value)?;
                groups
                    .entry(group)
                    .or_insert_with(Group::empty)
                    .store_offset(
                        &topic,
                        partition,
                        CommittedOffset {
                            offset: value.offset,
                            leader_epoch: (value.leader_epoch >= 0).then_some(value.leader_epoch),
                            metadata: value.metadata,
                            commit_timestamp: value.commit_timestamp,
                            record_offset,
                        },
                    );
            }
            None => {
                if let Some(existing) = groups.get_mut(&group) {
                    existing.remove_offset(&topic, partition, record_offset);
                }
            }
        },
        OffsetsKey::GroupMetadata { group } => match value {
            Some(_) => {
                groups.entry(group).or_insert_with(Group::empty);
            }
            None => {
                if groups.get(&group).is_some_and(|g| g.offsets.is_empty()) {
                    groups.remove(&group);
                }
            }
        },
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::records::{
        OffsetCommitValue, group_metadata_key, offset_commit_key, offset_commit_value,
    };

    fn value(offset: i64, leader_epoch: i32) -> bytes::Bytes {
        offset_commit_value(&OffsetCommitValue {
            offset,
            leader_epoch,
            metadata: format!("at {offset}"),
            commit_timestamp: 1000 + offset,
            expire_timestamp: None,
        })
    }

    #[test]
    fn replaying_a_log_gives_the_latest_commit_of_every_partition() {
        let mut groups = Groups::new();
        let log: Vec<(bytes::Bytes, Option<bytes::Bytes>)> = vec![
            (offset_commit_key("a", "t", 0), Some(value(5, 1))),
            (offset_commit_key("a", "t", 1), Some(value(7, -1))),
            (offset_commit_key("b", "t", 0), Some(value(1, 0))),
            (offset_commit_key("a", "t", 0), Some(value(9, 2))),
            (offset_commit_key("a", "t", 1), None),
            (
                group_metadata_key("c"),
                Some(bytes::Bytes::from_static(b"opaque")),
            ),
            (group_metadata_key("b"), None),
        ];
        for (record_offset, (key, value)) in log.iter().enumerate() {
            replay(&mut groups, key, value.as_deref(), record_offset as i64).unwrap();
        }
        let a = &groups["a"];
        let committed = &a.offsets[&("t".into(), 0)];
        assert_eq!(
            (
                committed.offset,
                committed.leader_epoch,
                committed.record_offset
            ),
            (9, Some(2), 3)
        );
        assert_eq!(committed.metadata, "at 9");
        assert!(!a.offsets.contains_key(&("t".into(), 1)), "tombstoned");
        assert_eq!(
            groups["b"].offsets[&("t".into(), 0)].leader_epoch,
            Some(0),
            "a group metadata tombstone leaves a group with offsets"
        );
        assert!(groups["c"].offsets.is_empty());
        assert_eq!(groups.len(), 3);

        // A tombstone of an unknown group changes nothing; a bad key is an error.
        replay(&mut groups, &offset_commit_key("z", "t", 0), None, 10).unwrap();
        assert!(!groups.contains_key("z"));
        assert!(replay(&mut groups, &[0, 9], None, 11).is_err());
    }
}
