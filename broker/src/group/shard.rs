//! One `__consumer_offsets` partition this broker leads, and the groups it holds. The
//! coordinator keeps each shard behind its own short `std::sync::Mutex` (never held across an
//! await); everything here is pure.

use std::collections::HashMap;

use tokio::sync::oneshot;
use tributary_zk_layout::LeaderEpoch;

use super::error::GroupError;
use super::membership::Joined;
use super::records::{self, GroupMetadataValue, MemberMetadata, OffsetsKey, OffsetsRecordError};
use super::state::{CommittedOffset, Group, GroupState, Member};

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

/// Requests parked until a rebalance step answers them, by (group id, member id). Dropping a
/// sender (the shard unloads) answers its request NOT_COORDINATOR.
#[derive(Debug, Default)]
pub struct Waiters {
    /// Parked JoinGroups.
    pub joins: HashMap<(String, String), oneshot::Sender<Result<Joined, GroupError>>>,
    /// Parked SyncGroups.
    pub syncs: HashMap<(String, String), oneshot::Sender<Result<bytes::Bytes, GroupError>>>,
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
    /// The parked membership requests of its groups.
    pub waiters: Waiters,
}

impl Shard {
    /// A shard whose load has just started.
    pub fn loading(incarnation: u64, leader_epoch: LeaderEpoch) -> Self {
        Self {
            incarnation,
            leader_epoch,
            status: ShardStatus::Loading,
            waiters: Waiters::default(),
        }
    }
}

/// Applies one record of the partition (at `record_offset`, value `None` = tombstone) to
/// `groups`, as a load replays the log from its start:
/// * an offset commit stores the offset (creating the group, Empty, if needed); its tombstone
///   removes the offset;
/// * a group metadata record sets the group's generation, protocol, leader and members (Stable
///   with members, else Empty); its tombstone removes a group that has no offsets left (or
///   empties its membership).
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
                            expire_timestamp: value.expire_timestamp,
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
            Some(value) => {
                let value = records::decode_group_metadata_value(value)?;
                restore_membership(groups.entry(group).or_insert_with(Group::empty), value);
            }
            None => {
                if groups.get(&group).is_some_and(|g| g.offsets.is_empty()) {
                    groups.remove(&group);
                } else if let Some(existing) = groups.get_mut(&group) {
                    restore_membership(
                        existing,
                        GroupMetadataValue {
                            protocol_type: String::new(),
                            generation: existing.generation,
                            protocol: None,
                            leader: None,
                            current_state_timestamp: -1,
                            members: Vec::new(),
                        },
                    );
                }
            }
        },
    }
    Ok(())
}

/// The stored form of `group`'s membership (a completed rebalance: Stable or
/// CompletingRebalance with the leader's assignments, or Empty). The state timestamp is the
/// group's (`now` when it has none), as Kafka writes its `currentStateTimestamp`.
pub fn membership_value(group: &Group, now: i64) -> GroupMetadataValue {
    let protocol = group.protocol.clone();
    GroupMetadataValue {
        protocol_type: group.protocol_type.clone().unwrap_or_default(),
        generation: group.generation,
        protocol: protocol.clone(),
        leader: group.leader.clone(),
        current_state_timestamp: group.state_timestamp.unwrap_or(now),
        members: group
            .members
            .values()
            .map(|m| MemberMetadata {
                member_id: m.member_id.clone(),
                group_instance_id: None,
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                session_timeout_ms: m.session_timeout_ms,
                subscription: protocol
                    .as_deref()
                    .map(|p| m.metadata(p))
                    .unwrap_or_default(),
                assignment: m.assignment.clone(),
            })
            .collect(),
    }
}

/// Replaces `group`'s membership with a stored one. Members' sessions start when the load
/// ends ([`start_sessions`]): a member that does not reach the new coordinator within its
/// session timeout is removed. The stored state timestamp (v2+) is kept: for an Empty group it
/// is when the group became Empty, from which its offsets expire.
fn restore_membership(group: &mut Group, value: GroupMetadataValue) {
    let offsets = std::mem::take(&mut group.offsets);
    *group = Group::empty();
    group.offsets = offsets;
    group.generation = value.generation;
    group.state_timestamp =
        (value.current_state_timestamp >= 0).then_some(value.current_state_timestamp);
    group.protocol_type = (!value.protocol_type.is_empty()).then_some(value.protocol_type);
    if value.members.is_empty() {
        return;
    }
    group.state = GroupState::Stable;
    group.protocol = value.protocol.clone();
    group.leader = value.leader;
    let protocol = value.protocol.unwrap_or_default();
    for (sequence, stored) in value.members.into_iter().enumerate() {
        let mut member = Member::joining(
            stored.member_id,
            stored.client_id,
            stored.session_timeout_ms,
            stored.rebalance_timeout_ms,
            vec![(protocol.clone(), stored.subscription)],
            0,
        );
        member.client_host = stored.client_host;
        member.awaiting_join = false;
        member.assignment = stored.assignment;
        member.join_sequence = sequence as u64;
        group.members.insert(member.member_id.clone(), member);
    }
    group.next_join_sequence = group.members.len() as u64;
    if group
        .leader
        .as_ref()
        .is_none_or(|l| !group.members.contains_key(l))
    {
        group.leader = group.members.keys().next().cloned();
    }
}

/// Starts the sessions of loaded members at `now` (the load's end).
pub fn start_sessions(groups: &mut Groups, now: i64) {
    for group in groups.values_mut() {
        for member in group.members.values_mut() {
            member.last_heard_ms = now;
        }
    }
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
                Some(records::group_metadata_value(&membership_value(
                    &Group::empty(),
                    0,
                ))),
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

        // A stored membership is restored Stable; a later empty one empties the group.
        let mut stable = Group::empty();
        stable.state = GroupState::Stable;
        stable.generation = 4;
        stable.protocol_type = Some("consumer".into());
        stable.protocol = Some("range".into());
        stable.leader = Some("m1".into());
        let mut m1 = Member::joining(
            "m1",
            "c",
            10_000,
            30_000,
            vec![("range".into(), bytes::Bytes::from_static(b"sub"))],
            0,
        );
        m1.awaiting_join = false;
        m1.client_host = "/10.0.0.9".into();
        m1.assignment = bytes::Bytes::from_static(b"asg");
        stable.members.insert("m1".into(), m1);
        let value = records::group_metadata_value(&membership_value(&stable, 5));
        replay(&mut groups, &group_metadata_key("a"), Some(&value), 12).unwrap();
        let a = &groups["a"];
        assert_eq!(
            (a.state, a.generation, a.leader.as_deref()),
            (GroupState::Stable, 4, Some("m1"))
        );
        assert_eq!(a.members["m1"], stable.members["m1"]);
        assert_eq!(a.offsets.len(), 1, "offsets stay");
        let mut empty = Group::empty();
        empty.generation = 5;
        empty.protocol_type = Some("consumer".into());
        empty.state_timestamp = Some(4321);
        let value = records::group_metadata_value(&membership_value(&empty, 6));
        replay(&mut groups, &group_metadata_key("a"), Some(&value), 13).unwrap();
        assert_eq!(
            (groups["a"].state, groups["a"].generation),
            (GroupState::Empty, 5)
        );
        assert!(groups["a"].members.is_empty());
        // When it became Empty and its protocol type survive (offset expiry needs both).
        assert_eq!(
            (
                groups["a"].state_timestamp,
                groups["a"].protocol_type.as_deref()
            ),
            (Some(4321), Some("consumer"))
        );

        // A tombstone of an unknown group changes nothing; a bad key is an error.
        replay(&mut groups, &offset_commit_key("z", "t", 0), None, 10).unwrap();
        assert!(!groups.contains_key("z"));
        assert!(replay(&mut groups, &[0, 9], None, 11).is_err());
    }
}
