//! One consumer group as its coordinator holds it in memory: state, generation, members and
//! committed offsets. Pure data and rules; the shard that owns it ([`super::shard`]) applies
//! them under its lock, and [`super::membership`] moves groups between the states.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

/// Kafka's group states (see [`super::membership`] for the transitions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    /// No members; offsets may be committed with generation -1, and expire
    /// `offsets.retention.minutes` after the group became Empty (see [`super::expiry`]).
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
    /// Deleted and expired groups leave the shard at once, so this is mostly the state
    /// DescribeGroups reports for a group the coordinator does not know.
    Dead,
}

impl GroupState {
    /// Kafka's name of the state.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }

    /// Every state, in Kafka's order.
    pub const ALL: [GroupState; 5] = [
        GroupState::Empty,
        GroupState::PreparingRebalance,
        GroupState::CompletingRebalance,
        GroupState::Stable,
        GroupState::Dead,
    ];

    /// The state named `name` (Kafka's names, any case).
    pub fn parse(name: &str) -> Option<GroupState> {
        GroupState::ALL
            .into_iter()
            .find(|state| state.name().eq_ignore_ascii_case(name))
    }
}

/// A group member.
///
/// Invariant: `awaiting_join` and `awaiting_sync` are never both set; a member awaiting either
/// has a parked request in the shard's waiters (or had one whose caller went away).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The id the coordinator assigned at JoinGroup (`<client id>-<random hex>`).
    pub member_id: String,
    /// The client's id, as given at JoinGroup.
    pub client_id: String,
    /// The address it joined from, as Kafka writes it (`/127.0.0.1`); empty when unknown.
    pub client_host: String,
    /// Removed when nothing is heard from it for this long (ms).
    pub session_timeout_ms: i32,
    /// How long a rebalance waits for it to re-join (ms).
    pub rebalance_timeout_ms: i32,
    /// The protocols it supports with its metadata for each, most preferred first.
    pub protocols: Vec<(String, Bytes)>,
    /// Its assignment in the current generation (empty until the leader's SyncGroup).
    pub assignment: Bytes,
    /// It has (re-)joined the rebalance in progress and waits for the JoinGroup answer.
    pub awaiting_join: bool,
    /// It sent SyncGroup and waits for the assignment.
    pub awaiting_sync: bool,
    /// When the coordinator last heard from it (ms since the epoch): a join, sync, heartbeat
    /// or commit.
    pub last_heard_ms: i64,
    /// Order of arrival in the group: the earliest remaining member becomes the leader when
    /// the leader goes.
    pub join_sequence: u64,
}

impl Member {
    /// A member that has just joined (awaiting the join's answer).
    pub fn joining(
        member_id: impl Into<String>,
        client_id: impl Into<String>,
        session_timeout_ms: i32,
        rebalance_timeout_ms: i32,
        protocols: Vec<(String, Bytes)>,
        now: i64,
    ) -> Self {
        Self {
            member_id: member_id.into(),
            client_id: client_id.into(),
            client_host: String::new(),
            session_timeout_ms,
            rebalance_timeout_ms,
            protocols,
            assignment: Bytes::new(),
            awaiting_join: true,
            awaiting_sync: false,
            last_heard_ms: now,
            join_sequence: 0,
        }
    }

    /// Its metadata for `protocol` (empty when it does not support it).
    pub fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, metadata)| metadata.clone())
            .unwrap_or_default()
    }

    /// When its session ends unless it is heard from again.
    pub fn session_deadline(&self) -> i64 {
        self.last_heard_ms + i64::from(self.session_timeout_ms)
    }
}

/// The initial rebalance delay of a group that had no members (Kafka's `InitialDelayedJoin`):
/// the first rebalance waits `group.initial.rebalance.delay.ms` so that members starting
/// together land in one generation, and waits again (by the delay, within the rebalance
/// timeout) while new members keep arriving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitialDelay {
    /// When the current wait ends (ms since the epoch).
    pub until_ms: i64,
    /// How much longer the waits may be extended in total (ms).
    pub remaining_ms: i64,
    /// The length of one wait (the setting, capped to the rebalance timeout).
    pub step_ms: i64,
    /// A member arrived during the current wait.
    pub member_arrived: bool,
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
    /// The explicit expiry of an `OffsetCommitValue` v1 record (ms), `None` otherwise (this
    /// broker never writes one; Kafka 2.1+ neither).
    pub expire_timestamp: Option<i64>,
    /// Offset of the commit's record in `__consumer_offsets`: of two commits of the same
    /// partition the one later in the log wins, whatever order their replication completes
    /// in, so the cache always equals what a reload of the log gives.
    pub record_offset: i64,
}

/// One group.
///
/// Invariants: `state == Empty` implies `members` is empty; `leader` is a member whenever
/// `members` is not empty (and `None` otherwise); `rebalance_deadline_ms` and `initial_delay`
/// are set only in PreparingRebalance; every record offset in `pending_commits` is a commit
/// appended to the log and not yet reported back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The group's state.
    pub state: GroupState,
    /// When it entered that state (ms since the epoch; Kafka's `currentStateTimestamp`),
    /// `None` when unknown: a group made by a commit or loaded from offsets only, or from a
    /// GroupMetadataValue older than v2. Offsets of an Empty group expire this long after it.
    pub state_timestamp: Option<i64>,
    /// The generation; 0 for a group that never completed a rebalance (Kafka's initial value).
    pub generation: i32,
    /// The members' protocol type ("consumer"); kept when the last member goes, as Kafka
    /// does, so `None` only for a group that never had members.
    pub protocol_type: Option<String>,
    /// The protocol chosen for the current generation.
    pub protocol: Option<String>,
    /// The leader's member id.
    pub leader: Option<String>,
    /// Members by member id.
    pub members: BTreeMap<String, Member>,
    /// Ids handed out with MEMBER_ID_REQUIRED and not yet used to join, with the time (ms)
    /// after which they are forgotten (the requested session timeout).
    pub pending_members: BTreeMap<String, i64>,
    /// When the rebalance in progress stops waiting for members to re-join (ms).
    pub rebalance_deadline_ms: Option<i64>,
    /// The initial delay of a rebalance that started from Empty.
    pub initial_delay: Option<InitialDelay>,
    /// The next [`Member::join_sequence`].
    pub next_join_sequence: u64,
    /// Committed offsets by (topic, partition).
    pub offsets: BTreeMap<(String, i32), CommittedOffset>,
    /// Commits appended to the log and still waiting for replication, by (topic, partition):
    /// their record offsets. Such a partition's offset does not expire (the tombstone would
    /// land after the commit in the log and delete it), and a deletion writes a tombstone for
    /// it too (Kafka's `pendingOffsetCommits`).
    pub pending_commits: BTreeMap<(String, i32), BTreeSet<i64>>,
}

impl Group {
    /// A group without members or offsets: Empty, generation 0.
    pub fn empty() -> Self {
        Self {
            state: GroupState::Empty,
            state_timestamp: None,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            pending_members: BTreeMap::new(),
            rebalance_deadline_ms: None,
            initial_delay: None,
            next_join_sequence: 0,
            offsets: BTreeMap::new(),
            pending_commits: BTreeMap::new(),
        }
    }

    /// Moves the group to `state` at `now` (Kafka's `transitionTo`).
    pub fn transition(&mut self, state: GroupState, now: i64) {
        self.state = state;
        self.state_timestamp = Some(now);
    }

    /// Notes a commit of (`topic`, `partition`) appended at `record_offset` and not yet
    /// replicated.
    pub fn add_pending(&mut self, topic: &str, partition: i32, record_offset: i64) {
        self.pending_commits
            .entry((topic.to_owned(), partition))
            .or_default()
            .insert(record_offset);
    }

    /// Forgets a pending commit; whether it was pending (a group deleted and made anew
    /// meanwhile no longer knows it, and must not store it).
    pub fn finish_pending(&mut self, topic: &str, partition: i32, record_offset: i64) -> bool {
        let key = (topic.to_owned(), partition);
        let Some(pending) = self.pending_commits.get_mut(&key) else {
            return false;
        };
        let was = pending.remove(&record_offset);
        if pending.is_empty() {
            self.pending_commits.remove(&key);
        }
        was
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
            expire_timestamp: None,
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

    #[test]
    fn pending_commits_are_tracked_by_record_offset() {
        let mut group = Group::empty();
        group.add_pending("t", 0, 5);
        group.add_pending("t", 0, 6);
        assert!(group.finish_pending("t", 0, 5));
        assert!(!group.finish_pending("t", 0, 5), "once");
        assert!(group.pending_commits.contains_key(&("t".into(), 0)));
        assert!(group.finish_pending("t", 0, 6));
        assert!(group.pending_commits.is_empty());
        assert!(!group.finish_pending("u", 1, 1), "never pending");
    }

    #[test]
    fn states_parse_by_kafkas_names_in_any_case() {
        for state in GroupState::ALL {
            assert_eq!(GroupState::parse(state.name()), Some(state));
            assert_eq!(
                GroupState::parse(&state.name().to_ascii_lowercase()),
                Some(state)
            );
        }
        assert_eq!(
            GroupState::parse("completingrebalance"),
            Some(GroupState::CompletingRebalance)
        );
        assert_eq!(GroupState::parse("Stabl"), None);
    }
}
