//! One consumer group as its coordinator holds it in memory: state, generation, members and
//! committed offsets. Pure data and rules; the shard that owns it ([`super::shard`]) applies
//! them under its lock.

use std::collections::BTreeMap;

/// Kafka's group states. This version creates groups in [`GroupState::Empty`] only (groups
/// without members, committing with generation -1); JoinGroup, SyncGroup and Heartbeat will
/// move them through the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    /// No members; offsets may be committed with generation -1 (and expire, later, after
    /// `offsets.retention.minutes`).
    Empty,
    /// Members are (re)joining; commits get REBALANCE_IN_PROGRESS from members not yet in
    /// the new generation.
    PreparingRebalance,
    /// Every member joined the new generation; the leader's assignment is awaited. Commits
    /// get REBALANCE_IN_PROGRESS.
    CompletingRebalance,
    /// Members have their assignment and heartbeat.
    Stable,
    /// The group is being removed (its partition moved away, or it was deleted); nothing is
    /// accepted (COORDINATOR_NOT_AVAILABLE, so the client looks for the coordinator again).
    Dead,
}

/// A group member. Only the id for now: session and rebalance timeouts, protocols and the
/// assignment come with JoinGroup and SyncGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The id the coordinator assigned at JoinGroup.
    pub member_id: String,
}

/// An offset as committed for one topic-partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The next offset to consume.
    pub offset: i64,
    /// The leader epoch of the last consumed record, `None` when unknown.
    pub leader_epoch: Option<i32>,
    /// The committer's metadata.
    pub metadata: String,
    /// When the commit was accepted (ms since the epoch).
    pub commit_timestamp: i64,
    /// Offset of the commit's record in `__consumer_offsets`: of two commits of the same
    /// partition the one later in the log wins, whatever order their replication completes
    /// in, so the cache always equals what a reload of the log gives.
    pub record_offset: i64,
}

/// One group.
///
/// Invariant: `state == Empty` exactly when `members` is empty, except transiently during a
/// rebalance (a later step).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The group's state.
    pub state: GroupState,
    /// The generation; 0 for a group that never completed a rebalance (Kafka's initial value).
    pub generation: i32,
    /// Members by member id.
    pub members: BTreeMap<String, Member>,
    /// Committed offsets by (topic, partition).
    pub offsets: BTreeMap<(String, i32), CommittedOffset>,
}

impl Group {
    /// A group without members or offsets: Empty, generation 0.
    pub fn empty() -> Self {
        Self {
            state: GroupState::Empty,
            generation: 0,
            members: BTreeMap::new(),
            offsets: BTreeMap::new(),
        }
    }

    /// Stores `committed` unless the cache holds a commit that is later in the log.
    pub fn store_offset(&mut self, topic: &str, partition: i32, committed: CommittedOffset) {
        let key = (topic.to_owned(), partition);
        if self
            .offsets
            .get(&key)
            .is_none_or(|existing| existing.record_offset <= committed.record_offset)
        {
            self.offsets.insert(key, committed);
        }
    }

    /// Removes the offset of (`topic`, `partition`) if no later commit replaced it (a
    /// tombstone at `record_offset`).
    pub fn remove_offset(&mut self, topic: &str, partition: i32, record_offset: i64) {
        let key = (topic.to_owned(), partition);
        if self
            .offsets
            .get(&key)
            .is_some_and(|existing| existing.record_offset <= record_offset)
        {
            self.offsets.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committed(offset: i64, record_offset: i64) -> CommittedOffset {
        CommittedOffset {
            offset,
            leader_epoch: None,
            metadata: String::new(),
            commit_timestamp: 0,
            record_offset,
        }
    }

    #[test]
    fn the_commit_later_in_the_log_wins_whatever_the_order_it_arrives_in() {
        let mut group = Group::empty();
        group.store_offset("t", 0, committed(10, 5));
        group.store_offset("t", 0, committed(7, 3));
        assert_eq!(group.offsets[&("t".into(), 0)].offset, 10);
        group.store_offset("t", 0, committed(12, 6));
        assert_eq!(group.offsets[&("t".into(), 0)].offset, 12);

        // A tombstone earlier in the log than the cached commit leaves it; a later one
        // removes it.
        group.remove_offset("t", 0, 4);
        assert!(group.offsets.contains_key(&("t".into(), 0)));
        group.remove_offset("t", 0, 9);
        assert!(group.offsets.is_empty());
    }
}
