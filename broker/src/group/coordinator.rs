//! The group coordinator's map of shards: one per `__consumer_offsets` partition this broker
//! leads, created when LeaderAndIsr makes it leader (then loaded from the log) and dropped when
//! it stops leading. The map changes only here, driven by the replica manager's role events
//! ([`run`]); requests look shards up and lock one at a time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use tokio::sync::{mpsc, watch};
use tributary_zk_layout::LeaderEpoch;

use super::config::GroupSettings;
use super::error::GroupError;
use super::offsets_topic::{OFFSETS_TOPIC, partition_for};
use super::shard::{Groups, Shard, ShardStatus, Waiters};
use crate::replica::{Role, RoleEvent};
use crate::state::BrokerState;

/// The shards this broker leads, and the settings.
#[derive(Debug)]
pub struct GroupCoordinator {
    settings: GroupSettings,
    /// Partition id → its shard. Written only by the role-event task; each shard has its own
    /// lock, so requests of different partitions never wait for each other.
    shards: RwLock<HashMap<i32, Arc<Mutex<Shard>>>>,
    /// Source of [`Shard::incarnation`]s.
    next_incarnation: AtomicU64,
}

/// What a role event asks of the coordinator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardChange {
    /// Load the partition into the new shard of this incarnation.
    Load {
        /// The shard's incarnation.
        incarnation: u64,
    },
    /// Nothing to load (not an offsets partition, still leading, or a shard was dropped).
    None,
}

/// A locked shard that has finished loading.
pub(crate) struct LoadedShard<'a> {
    guard: MutexGuard<'a, Shard>,
}

impl LoadedShard<'_> {
    /// The shard's incarnation.
    pub(crate) fn incarnation(&self) -> u64 {
        self.guard.incarnation
    }

    /// Its groups.
    pub(crate) fn groups(&mut self) -> &mut Groups {
        self.parts().0
    }

    /// Its groups and the requests parked on them.
    pub(crate) fn parts(&mut self) -> (&mut Groups, &mut Waiters) {
        let shard = &mut *self.guard;
        match &mut shard.status {
            ShardStatus::Loaded(groups) => (groups, &mut shard.waiters),
            ShardStatus::Loading => unreachable!("a LoadedShard is only made from a loaded shard"),
        }
    }
}

fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    // Every change of a shard is a single assignment or map update: a panic elsewhere cannot
    // leave it half-changed.
    shard
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl GroupCoordinator {
    /// A coordinator leading nothing yet.
    pub fn new(settings: GroupSettings) -> Self {
        Self {
            settings,
            shards: RwLock::new(HashMap::new()),
            next_incarnation: AtomicU64::new(1),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &GroupSettings {
        &self.settings
    }

    /// Applies a role change of `__consumer_offsets` partition `partition`: a new leadership
    /// creates a loading shard (Leader → Leader with a new epoch keeps the shard: this broker
    /// wrote every record since it loaded); any other role drops the shard.
    pub fn on_role_change(
        &self,
        partition: i32,
        role: Role,
        previous: Option<Role>,
        leader_epoch: LeaderEpoch,
    ) -> ShardChange {
        let mut shards = self.shards.write().expect("shard map lock");
        if role != Role::Leader {
            if shards.remove(&partition).is_some() {
                tracing::info!(
                    partition,
                    ?role,
                    "no longer coordinating the groups of __consumer_offsets partition"
                );
            }
            return ShardChange::None;
        }
        if previous == Some(Role::Leader)
            && let Some(shard) = shards.get(&partition)
        {
            lock(shard).leader_epoch = leader_epoch;
            return ShardChange::None;
        }
        let incarnation = self.next_incarnation.fetch_add(1, Ordering::Relaxed);
        shards.insert(
            partition,
            Arc::new(Mutex::new(Shard::loading(incarnation, leader_epoch))),
        );
        ShardChange::Load { incarnation }
    }

    /// Installs the groups a load read, if the shard is still the incarnation that started it
    /// (a newer leadership or the loss of it makes the result stale). Returns whether it was
    /// installed.
    pub fn finish_load(&self, partition: i32, incarnation: u64, groups: Groups) -> bool {
        let Some(shard) = self.shard(partition) else {
            return false;
        };
        let mut shard = lock(&shard);
        if shard.incarnation != incarnation || !matches!(shard.status, ShardStatus::Loading) {
            return false;
        }
        shard.status = ShardStatus::Loaded(groups);
        true
    }

    /// Whether the shard of `partition` is loading under `incarnation` (a load keeps going
    /// only while it is).
    pub fn is_loading(&self, partition: i32, incarnation: u64) -> bool {
        self.shard(partition).is_some_and(|shard| {
            let shard = lock(&shard);
            shard.incarnation == incarnation && matches!(shard.status, ShardStatus::Loading)
        })
    }

    /// The partitions this broker leads (loaded or not).
    pub(crate) fn partitions(&self) -> Vec<i32> {
        let mut partitions: Vec<i32> = self
            .shards
            .read()
            .expect("shard map lock")
            .keys()
            .copied()
            .collect();
        partitions.sort_unstable();
        partitions
    }

    fn shard(&self, partition: i32) -> Option<Arc<Mutex<Shard>>> {
        self.shards
            .read()
            .expect("shard map lock")
            .get(&partition)
            .cloned()
    }

    /// Runs `f` on the loaded shard of `partition` (the partition of `group_id`) under its
    /// lock: NOT_COORDINATOR when this broker does not lead it, COORDINATOR_LOAD_IN_PROGRESS
    /// while it loads.
    pub(crate) fn with_loaded<R>(
        &self,
        group_id: &str,
        partition: i32,
        f: impl FnOnce(LoadedShard<'_>) -> R,
    ) -> Result<R, GroupError> {
        let shard = self
            .shard(partition)
            .ok_or_else(|| GroupError::NotCoordinator {
                group: group_id.to_owned(),
                partition,
            })?;
        let guard = lock(&shard);
        if matches!(guard.status, ShardStatus::Loading) {
            return Err(GroupError::LoadInProgress {
                group: group_id.to_owned(),
                partition,
            });
        }
        Ok(f(LoadedShard { guard }))
    }
}

/// The number of `__consumer_offsets` partitions in this broker's metadata (`None` before the
/// topic exists).
pub fn offsets_partition_count(state: &BrokerState) -> Option<i32> {
    state.metadata.read(|snapshot| {
        snapshot
            .topics
            .get(OFFSETS_TOPIC)
            .and_then(|partitions| i32::try_from(partitions.len()).ok())
            .filter(|count| *count > 0)
    })
}

/// The offsets partition of `group_id`, or NOT_COORDINATOR when the topic is not known here
/// (then this broker leads none of it).
pub fn group_partition(state: &BrokerState, group_id: &str) -> Result<i32, GroupError> {
    offsets_partition_count(state)
        .map(|count| partition_for(group_id, count))
        .ok_or_else(|| GroupError::NotCoordinator {
            group: group_id.to_owned(),
            partition: -1,
        })
}

/// The coordinator's event task: follows the replica manager's role events for
/// `__consumer_offsets` and starts a load for every new leadership, until `shutdown`; and
/// starts the membership timers' task and the offset expiry task.
pub async fn run(
    state: Arc<BrokerState>,
    mut roles: mpsc::UnboundedReceiver<RoleEvent>,
    mut shutdown: watch::Receiver<bool>,
) {
    tokio::spawn(super::rebalance::run_timers(
        state.clone(),
        shutdown.clone(),
    ));
    tokio::spawn(super::manage::run_expiry(state.clone(), shutdown.clone()));
    loop {
        let event = tokio::select! {
            event = roles.recv() => match event {
                Some(event) => event,
                None => return,
            },
            _ = shutdown.changed() => return,
        };
        if event.topic_partition.topic != OFFSETS_TOPIC {
            continue;
        }
        let partition = event.topic_partition.partition;
        let change =
            state
                .groups
                .on_role_change(partition, event.role, event.previous, event.leader_epoch);
        if let ShardChange::Load { incarnation } = change {
            tracing::info!(
                partition,
                leader_epoch = event.leader_epoch.0,
                "loading the groups of __consumer_offsets partition"
            );
            tokio::spawn(super::load::load(state.clone(), partition, incarnation));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coordinator() -> GroupCoordinator {
        GroupCoordinator::new(GroupSettings::default())
    }

    fn status(coordinator: &GroupCoordinator, partition: i32) -> &'static str {
        match coordinator.with_loaded("g", partition, |_| ()) {
            Ok(()) => "loaded",
            Err(GroupError::LoadInProgress { .. }) => "loading",
            Err(GroupError::NotCoordinator { .. }) => "not coordinator",
            Err(other) => panic!("{other}"),
        }
    }

    #[test]
    fn leadership_creates_loads_and_drops_shards() {
        let c = coordinator();
        let epoch = LeaderEpoch;
        assert_eq!(status(&c, 3), "not coordinator");
        let ShardChange::Load { incarnation: first } =
            c.on_role_change(3, Role::Leader, None, epoch(1))
        else {
            panic!("a new leadership loads");
        };
        assert_eq!(status(&c, 3), "loading");
        assert!(c.is_loading(3, first));
        assert!(c.finish_load(3, first, Groups::new()));
        assert_eq!(status(&c, 3), "loaded");
        assert!(!c.finish_load(3, first, Groups::new()), "loaded once");

        // Still the leader at a newer epoch: the cache stays.
        assert_eq!(
            c.on_role_change(3, Role::Leader, Some(Role::Leader), epoch(2)),
            ShardChange::None
        );
        assert_eq!(status(&c, 3), "loaded");

        // Leadership lost: the shard goes; a load of the old incarnation finishing late
        // installs nothing.
        let ShardChange::Load {
            incarnation: second,
        } = c.on_role_change(4, Role::Leader, Some(Role::Follower), epoch(5))
        else {
            panic!("a new leadership loads");
        };
        c.on_role_change(4, Role::Follower, Some(Role::Leader), epoch(6));
        assert!(!c.is_loading(4, second));
        assert!(!c.finish_load(4, second, Groups::new()));
        assert_eq!(status(&c, 4), "not coordinator");

        // Leading again: a new incarnation, so the first load's result cannot land.
        let ShardChange::Load { incarnation: third } =
            c.on_role_change(4, Role::Leader, Some(Role::Follower), epoch(7))
        else {
            panic!("a new leadership loads");
        };
        assert_ne!(second, third);
        assert!(!c.finish_load(4, second, Groups::new()));
        assert!(c.finish_load(4, third, Groups::new()));
        c.on_role_change(3, Role::Stopped, Some(Role::Leader), epoch(2));
        assert_eq!(status(&c, 3), "not coordinator");
        assert_eq!(status(&c, 4), "loaded");
    }
}
