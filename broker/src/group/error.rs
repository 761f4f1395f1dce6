//! Why the coordinator refused a group request as a whole. `server/groups` maps each to its
//! Kafka error code.

use crate::replica::AppendError;

/// A group-level refusal or failure: nothing was committed (or read).
#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    /// The group id is empty or too long for the offsets records.
    #[error("invalid group id {group:?}: {reason}")]
    InvalidGroupId {
        /// The id as given.
        group: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// This broker does not lead the group's `__consumer_offsets` partition.
    #[error(
        "this broker is not the coordinator of group {group:?} (it does not lead __consumer_offsets partition {partition}); call FindCoordinator"
    )]
    NotCoordinator {
        /// The group.
        group: String,
        /// Its offsets partition.
        partition: i32,
    },
    /// This broker leads the partition and is still reading it.
    #[error(
        "group {group:?}: __consumer_offsets partition {partition} is still being loaded; retry"
    )]
    LoadInProgress {
        /// The group.
        group: String,
        /// Its offsets partition.
        partition: i32,
    },
    /// No coordinator can serve the group right now (the offsets topic is being created, its
    /// partition has no leader, the group is dead, or too few replicas are in sync).
    #[error("the coordinator of group {group:?} is not available: {reason}")]
    CoordinatorNotAvailable {
        /// The group.
        group: String,
        /// Why.
        reason: String,
    },
    /// The commit names a generation other than the group's.
    #[error("group {group:?} is at generation {current}; the commit names generation {received}")]
    IllegalGeneration {
        /// The group.
        group: String,
        /// The generation in the request.
        received: i32,
        /// The group's generation (-1 for a group the coordinator does not know).
        current: i32,
    },
    /// The commit names a member the group does not have.
    #[error("group {group:?} has no member {member_id:?}")]
    UnknownMember {
        /// The group.
        group: String,
        /// The member id in the request.
        member_id: String,
    },
    /// The group is rebalancing (or the member's wait was cut short by a new rebalance).
    #[error("group {group:?} is rebalancing; join the group again")]
    RebalanceInProgress {
        /// The group.
        group: String,
    },
    /// A first JoinGroup (empty member id): join again with the id given.
    #[error("group {group:?}: join again with member id {member_id:?}")]
    MemberIdRequired {
        /// The group.
        group: String,
        /// The id the coordinator gave the member.
        member_id: String,
    },
    /// The session timeout is outside the broker's range.
    #[error(
        "group {group:?}: session timeout {timeout_ms} ms is outside [{min_ms}, {max_ms}] (group.min/max.session.timeout.ms)"
    )]
    InvalidSessionTimeout {
        /// The group.
        group: String,
        /// The timeout asked for.
        timeout_ms: i32,
        /// `group.min.session.timeout.ms`.
        min_ms: i32,
        /// `group.max.session.timeout.ms`.
        max_ms: i32,
    },
    /// The member's protocols do not fit the group.
    #[error("group {group:?}: inconsistent group protocol: {reason}")]
    InconsistentProtocol {
        /// The group.
        group: String,
        /// What does not fit.
        reason: String,
    },
    /// A JoinGroup names a `group_instance_id` (static membership is not supported).
    #[error("group {group:?}: static membership (group_instance_id) is not supported")]
    StaticMembership {
        /// The group.
        group: String,
    },
    /// DeleteGroups: the coordinator knows no such group.
    #[error("group {group:?} does not exist")]
    GroupIdNotFound {
        /// The group.
        group: String,
    },
    /// DeleteGroups: the group has members.
    #[error(
        "group {group:?} is {state} with {members} member(s); only a group without members can be deleted"
    )]
    NonEmptyGroup {
        /// The group.
        group: String,
        /// Its state's name.
        state: &'static str,
        /// How many members it has.
        members: usize,
    },
    /// The commit's records are larger than the offsets topic accepts.
    #[error("group {group:?}: the commit is too large for __consumer_offsets ({source})")]
    CommitTooLarge {
        /// The group.
        group: String,
        /// The log's refusal.
        #[source]
        source: AppendError,
    },
    /// The append to the offsets partition failed or could not be replicated.
    #[error("group {group:?}: storing the commit failed")]
    Append {
        /// The group.
        group: String,
        /// The cause.
        #[source]
        source: AppendError,
    },
    /// Every in-sync replica did not confirm the commit within `offsets.commit.timeout.ms`.
    #[error(
        "group {group:?}: the commit was not replicated within {timeout_ms} ms; it may or may not be committed"
    )]
    ReplicationTimedOut {
        /// The group.
        group: String,
        /// The timeout.
        timeout_ms: u64,
    },
}
