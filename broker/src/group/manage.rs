//! ListGroups, DescribeGroups and DeleteGroups at the coordinator, and the offset expiry task:
//! the decisions are [`super::admin`]'s and [`super::expiry`]'s, made under the shard's lock;
//! this module appends the tombstones and waits for them.
//!
//! A deletion appends its tombstones under the lock (so they land in the log after every
//! commit already appended for the group), removes the group from the cache at once, and
//! answers once every in-sync replica has them (acks=-1), as a commit does. Expiry appends its
//! tombstones without waiting (as Kafka does): the cache forgets the offsets at once, and a
//! coordinator that loses them in a leader change expires them again.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::sync::watch;

use super::admin::{self, GroupOverview, GroupSummary, Tombstone, tombstone_batches};
use super::commit::check_group_id;
use super::coordinator::group_partition;
use super::error::GroupError;
use super::expiry;
use super::offsets::{append_as_coordinator, replicated};
use super::shard::Groups;
use super::state::GroupState;
use crate::state::{BrokerState, now_ms};

/// What ListGroups found on this broker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// The groups of the loaded partitions it leads, sorted by group id.
    pub groups: Vec<GroupOverview>,
    /// The partitions it leads that are still loading (their groups are missing).
    pub loading: Vec<i32>,
}

/// The groups this broker coordinates, in `states` (every state when empty).
pub fn list_groups(state: &BrokerState, states: &[GroupState]) -> Listing {
    let mut listing = Listing::default();
    for partition in state.groups.partitions() {
        match state.groups.with_loaded("", partition, |mut shard| {
            admin::list(shard.groups(), states)
        }) {
            Ok(groups) => listing.groups.extend(groups),
            Err(GroupError::LoadInProgress { .. }) => listing.loading.push(partition),
            // Dropped since `partitions()`: no longer this broker's groups.
            Err(_) => {}
        }
    }
    listing.groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    listing
}

/// Describes `group_id` (Dead when the coordinator does not know it).
pub fn describe_group(state: &BrokerState, group_id: &str) -> Result<GroupSummary, GroupError> {
    check_group_id(group_id)?;
    let partition = group_partition(state, group_id)?;
    state.groups.with_loaded(group_id, partition, |mut shard| {
        admin::describe(shard.groups().get(group_id))
    })
}

/// Deletes `group_id` if it has no members: tombstones for every offset and the group's
/// metadata, answered once replicated (acks=-1, up to `offsets.commit.timeout.ms`).
pub async fn delete_group(state: &BrokerState, group_id: &str) -> Result<(), GroupError> {
    check_group_id(group_id)?;
    let partition = group_partition(state, group_id)?;
    let (replica, required, generation) =
        state
            .groups
            .with_loaded(group_id, partition, |mut shard| {
                let groups = shard.groups();
                admin::check_delete(group_id, groups.get(group_id))?;
                let group = groups.get(group_id).expect("checked");
                let mut tombstones: Vec<Tombstone> = admin::deleted_offsets(group)
                    .into_iter()
                    .map(|(topic, partition)| Tombstone::Offset(topic, partition))
                    .collect();
                let offsets = tombstones.len();
                tombstones.push(Tombstone::Group);
                let mut appended = None;
                let mut done: Vec<Tombstone> = Vec::new();
                for (batch, held) in tombstone_batches(group_id, tombstones, now_ms()) {
                    match append_as_coordinator(
                        state,
                        group_id,
                        partition,
                        BytesMut::from(&batch[..]),
                    ) {
                        Ok((replica, base_offset, generation)) => {
                            appended = Some((replica, base_offset + held.len() as i64, generation));
                            done.extend(held);
                        }
                        Err(error) => {
                            // The batches already appended stand: forget their offsets so the
                            // cache still equals the log; the group stays.
                            forget(groups, group_id, &done);
                            return Err(error);
                        }
                    }
                }
                groups.remove(group_id);
                tracing::info!(group = group_id, offsets, "group deleted");
                Ok(appended.expect("a deletion appends at least the group's tombstone"))
            })??;
    replicated(state, group_id, partition, &replica, required, generation).await
}

/// Removes from the cache what `tombstones` (appended to the log) delete.
fn forget(groups: &mut Groups, group_id: &str, tombstones: &[Tombstone]) {
    for tombstone in tombstones {
        match tombstone {
            Tombstone::Offset(topic, partition) => {
                if let Some(group) = groups.get_mut(group_id) {
                    let key = (topic.clone(), *partition);
                    group.offsets.remove(&key);
                    // A pending commit of this partition is now behind the tombstone.
                    group.pending_commits.remove(&key);
                }
            }
            Tombstone::Group => {
                groups.remove(group_id);
            }
        }
    }
}

/// What one expiry pass did on a partition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expired {
    /// Offsets tombstoned.
    pub offsets: usize,
    /// Groups removed.
    pub groups: usize,
}

/// Applies the expiry rules at `now` to the groups of `partition` (if this broker leads it
/// and has loaded it): appends the tombstones and forgets what they delete.
pub fn expire_partition(state: &BrokerState, partition: i32, now: i64) -> Expired {
    let retention_ms = state.groups.settings().offsets_retention_ms;
    state
        .groups
        .with_loaded("", partition, |mut shard| {
            let groups = shard.groups();
            let mut plans: Vec<(String, expiry::Expiry)> = groups
                .iter()
                .map(|(id, group)| (id.clone(), expiry::expire(group, now, retention_ms)))
                .filter(|(_, expiry)| !expiry.is_empty())
                .collect();
            plans.sort_by(|a, b| a.0.cmp(&b.0));
            let mut expired = Expired::default();
            for (group_id, plan) in plans {
                let mut tombstones: Vec<Tombstone> = plan
                    .offsets
                    .into_iter()
                    .map(|(topic, partition)| Tombstone::Offset(topic, partition))
                    .collect();
                if plan.remove_group {
                    tombstones.push(Tombstone::Group);
                }
                for (batch, held) in tombstone_batches(&group_id, tombstones, now) {
                    if let Err(error) = append_as_coordinator(
                        state,
                        &group_id,
                        partition,
                        BytesMut::from(&batch[..]),
                    ) {
                        // Tried again at the next check.
                        tracing::warn!(group = %group_id, %error, "writing the tombstones of expired offsets failed");
                        return expired;
                    }
                    for tombstone in &held {
                        match tombstone {
                            Tombstone::Offset(..) => expired.offsets += 1,
                            Tombstone::Group => expired.groups += 1,
                        }
                    }
                    forget(groups, &group_id, &held);
                }
                tracing::debug!(group = %group_id, "expired offsets");
            }
            expired
        })
        .unwrap_or_default()
}

/// The expiry task: every `offsets.retention.check.interval.ms` (the first time one interval
/// after start-up, as in Kafka), expires offsets on every partition this broker leads, until
/// `shutdown`.
pub async fn run_expiry(state: Arc<BrokerState>, mut shutdown: watch::Receiver<bool>) {
    let every = Duration::from_millis(state.groups.settings().offsets_retention_check_interval_ms);
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = shutdown.changed() => return,
        }
        let started = std::time::Instant::now();
        let mut total = Expired::default();
        for partition in state.groups.partitions() {
            let expired = expire_partition(&state, partition, now_ms());
            total.offsets += expired.offsets;
            total.groups += expired.groups;
        }
        if total != Expired::default() {
            tracing::info!(
                offsets = total.offsets,
                groups = total.groups,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "removed expired offsets and empty groups"
            );
        }
    }
}
