//! The group coordinator: consumer groups' committed offsets and membership, stored in the
//! internal topic `__consumer_offsets` and served by the leader of the group's partition.
//!
//! ```text
//!   group/
//!     offsets_topic.rs  pure: group → partition (Java String.hashCode), how the topic is created
//!     records.rs        pure: Kafka's binary keys and values of __consumer_offsets (golden-tested)
//!     state.rs          pure: a group (state, generation, members, offsets)
//!     commit.rs         pure: who may commit (Kafka's checks, as a table), group id and metadata rules
//!     membership.rs     pure: JoinGroup/SyncGroup/Heartbeat/LeaveGroup and the timers as decisions
//!     rebalance.rs      the membership RPCs and timers: parking requests, storing group metadata
//!     shard.rs          pure: one offsets partition's groups, and replaying its records
//!     coordinator.rs    the shards this broker leads, driven by the replica manager's role events
//!     load.rs           reading a newly led partition from its log start into a shard
//!     offsets.rs        OffsetCommit (append, acks=-1 wait, cache) and OffsetFetch (cache)
//!     admin.rs          pure: ListGroups / DescribeGroups answers, who may be deleted, tombstones
//!     expiry.rs         pure: which offsets outlived offsets.retention.minutes (KIP-211)
//!     manage.rs         ListGroups, DescribeGroups, DeleteGroups (acks=-1) and the expiry task
//!     find_coordinator.rs  the coordinator of a group; creating __consumer_offsets on first use
//!     config.rs         the offsets.* settings
//!     error.rs          group-level refusals
//! ```
//!
//! Leadership decides everything: LeaderAndIsr making this broker leader of partition `p` of
//! `__consumer_offsets` creates a loading shard for `p` (COORDINATOR_LOAD_IN_PROGRESS until the
//! partition is replayed); losing the leadership drops it (NOT_COORDINATOR). Commits are
//! appended to `p` and answered once the high watermark passes them, and so is each completed
//! rebalance's GroupMetadataValue and each deletion's tombstones. Offsets of groups without
//! members expire after `offsets.retention.minutes`. `docs/groups.md` has the whole picture.

mod admin;
mod commit;
mod config;
mod coordinator;
mod error;
mod expiry;
mod find_coordinator;
mod load;
mod manage;
mod membership;
mod offsets;
pub mod offsets_topic;
mod rebalance;
pub mod records;
mod shard;
mod state;

pub use admin::{GroupOverview, GroupSummary, MemberSummary};
pub use config::GroupSettings;
pub use coordinator::{GroupCoordinator, run};
pub use error::GroupError;
pub use find_coordinator::{CoordinatorLookup, find_coordinator};
pub use manage::{Expired, Listing, delete_group, describe_group, expire_partition, list_groups};
pub use membership::{CONSUMER_PROTOCOL_TYPE, JoinRequest, Joined};
pub use offsets::{CommitEntry, CommitRequest, EntryRefusal, commit, fetch};
pub use offsets_topic::{OFFSETS_TOPIC, partition_for};
pub use rebalance::{heartbeat, join_group, leave_group, sync_group};
pub use state::{CommittedOffset, GroupState};

#[cfg(test)]
mod tests;
