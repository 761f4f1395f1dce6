//! The partitions this broker hosts, by topic-partition, and the highest controller epoch it
//! has accepted a control request from.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use tokio::sync::{Mutex, MutexGuard, mpsc};
use tributary_zk_layout::{BrokerId, ControllerEpoch, LeaderEpoch};

use super::isr::IsrUpdate;
use super::isr_writer::IsrChange;
use super::role::{LeaderAndIsrState, Role, RoleChange};
use crate::log::{Log, LogConfig, LogError, LogManager, TopicPartition};
use crate::replica::Partition;

/// Owns the map of hosted partitions. Lookups take a short read lock; the map changes only
/// when control requests (LeaderAndIsr, StopReplica) are applied, one at a time: the Control
/// service holds [`ReplicaManager::lock_controller_epoch`] for the whole of each request.
#[derive(Debug)]
pub struct ReplicaManager {
    logs: Arc<LogManager>,
    partitions: RwLock<HashMap<TopicPartition, Arc<Partition>>>,
    /// The highest controller epoch a control request was accepted from (`None` before the
    /// first). Its lock also serialises control requests, so a fence check and the changes it
    /// admits cannot interleave with another request's.
    controller_epoch: Mutex<Option<ControllerEpoch>>,
    /// ISR changes leaders decided, for the ISR writer (the only task that writes them to
    /// ZooKeeper).
    isr_changes: mpsc::UnboundedSender<IsrChange>,
    /// The receiving end, until the ISR writer takes it.
    isr_change_receiver: std::sync::Mutex<Option<mpsc::UnboundedReceiver<IsrChange>>>,
    /// Who is told of every role change applied ([`ReplicaManager::subscribe_roles`]).
    role_subscribers: std::sync::Mutex<Vec<mpsc::UnboundedSender<RoleEvent>>>,
}

/// A role change applied to a hosted partition (LeaderAndIsr or StopReplica), for the
/// components that follow leadership (the group coordinator loads the `__consumer_offsets`
/// partitions this broker comes to lead and drops those it stops leading).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleEvent {
    /// The partition.
    pub topic_partition: TopicPartition,
    /// The role now ([`Role::Stopped`] also when the replica was deleted).
    pub role: Role,
    /// The role before (`None`: not hosted).
    pub previous: Option<Role>,
    /// The leader epoch now.
    pub leader_epoch: LeaderEpoch,
}

impl ReplicaManager {
    /// A manager over the given log manager, hosting nothing yet.
    pub fn new(logs: Arc<LogManager>) -> Self {
        let (isr_changes, receiver) = mpsc::unbounded_channel();
        Self {
            logs,
            partitions: RwLock::new(HashMap::new()),
            controller_epoch: Mutex::new(None),
            isr_changes,
            isr_change_receiver: std::sync::Mutex::new(Some(receiver)),
            role_subscribers: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Every role change applied from now on, in the order applied.
    pub fn subscribe_roles(&self) -> mpsc::UnboundedReceiver<RoleEvent> {
        let (sender, receiver) = mpsc::unbounded_channel();
        self.lock_role_subscribers().push(sender);
        receiver
    }

    fn lock_role_subscribers(
        &self,
    ) -> std::sync::MutexGuard<'_, Vec<mpsc::UnboundedSender<RoleEvent>>> {
        self.role_subscribers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn publish_role(&self, tp: &TopicPartition, change: RoleChange, leader_epoch: LeaderEpoch) {
        let event = RoleEvent {
            topic_partition: tp.clone(),
            role: change.to,
            previous: change.from,
            leader_epoch,
        };
        // A subscriber that went away is dropped.
        self.lock_role_subscribers()
            .retain(|subscriber| subscriber.send(event.clone()).is_ok());
    }

    /// The ISR changes to write, for the one ISR writer task (`None` once taken).
    pub fn take_isr_changes(&self) -> Option<mpsc::UnboundedReceiver<IsrChange>> {
        self.isr_change_receiver
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }

    /// Hands an ISR change a leader decided to the ISR writer.
    pub fn submit_isr_change(&self, partition: Arc<Partition>, update: IsrUpdate) {
        tracing::info!(
            topic_partition = %partition.topic_partition(),
            from = ?partition.isr(),
            to = ?update.isr,
            leader_epoch = update.leader_epoch.0,
            "ISR change decided"
        );
        // Without a writer (unit tests, shutdown) the change stays pending, as when
        // ZooKeeper is unreachable.
        let _ = self.isr_changes.send(IsrChange { partition, update });
    }

    /// One ISR shrink pass over the partitions this broker leads (every
    /// `replica.lag.time.max.ms / 2`, as Kafka).
    pub fn shrink_isrs(&self, now_ms: i64, max_lag_ms: i64) {
        let leaders: Vec<Arc<Partition>> = self
            .partitions
            .read()
            .expect("partition map lock")
            .values()
            .filter(|p| p.is_leader())
            .cloned()
            .collect();
        for partition in leaders {
            if let Some(update) = partition.maybe_shrink_isr(now_ms, max_lag_ms) {
                self.submit_isr_change(partition, update);
            }
        }
    }

    /// Waits for the control-request lock; the guard holds the highest controller epoch seen,
    /// which the holder raises when it accepts a request.
    pub async fn lock_controller_epoch(&self) -> MutexGuard<'_, Option<ControllerEpoch>> {
        self.controller_epoch.lock().await
    }

    /// The partition, if hosted here (in any role).
    pub fn get(&self, tp: &TopicPartition) -> Option<Arc<Partition>> {
        self.partitions
            .read()
            .expect("partition map lock")
            .get(tp)
            .cloned()
    }

    /// The leader epoch of a hosted partition (what LeaderAndIsr is fenced against).
    pub fn leader_epoch(&self, tp: &TopicPartition) -> Option<LeaderEpoch> {
        self.get(tp).map(|p| p.leader_epoch())
    }

    /// Whether any partition of `topic` is hosted.
    pub fn hosts_topic(&self, topic: &str) -> bool {
        self.partitions
            .read()
            .expect("partition map lock")
            .keys()
            .any(|tp| tp.topic == topic)
    }

    /// Becomes leader of `tp` as LeaderAndIsr decided, opening (or creating) its log with
    /// `config` if it is not hosted yet. Touches the disk: call off the async workers.
    pub fn make_leader(
        &self,
        tp: &TopicPartition,
        state: LeaderAndIsrState,
        config: LogConfig,
    ) -> Result<RoleChange, LogError> {
        self.apply_leader_and_isr(tp, Role::Leader, state, config)
    }

    /// Becomes a follower of `tp` as LeaderAndIsr decided, opening (or creating) its log with
    /// `config` if it is not hosted yet. The log is kept but produce is refused; the caller
    /// points a fetcher at `state.leader` ([`super::fetcher::FetcherManager`]).
    pub fn make_follower(
        &self,
        tp: &TopicPartition,
        state: LeaderAndIsrState,
        config: LogConfig,
    ) -> Result<RoleChange, LogError> {
        self.apply_leader_and_isr(tp, Role::Follower, state, config)
    }

    fn apply_leader_and_isr(
        &self,
        tp: &TopicPartition,
        role: Role,
        state: LeaderAndIsrState,
        config: LogConfig,
    ) -> Result<RoleChange, LogError> {
        let leader_epoch = state.leader_epoch;
        let change = self.change_or_add(tp, role, state, config)?;
        self.publish_role(tp, change, leader_epoch);
        Ok(change)
    }

    fn change_or_add(
        &self,
        tp: &TopicPartition,
        role: Role,
        state: LeaderAndIsrState,
        config: LogConfig,
    ) -> Result<RoleChange, LogError> {
        let has_leader = state.leader != BrokerId::NONE;
        if let Some(existing) = self.get(tp) {
            existing.log().set_config(config);
            if has_leader {
                mark_verified(existing.log());
            }
            return Ok(existing.change_role(role, Some(state)));
        }
        // Logs found on disk at start-up were opened with the broker defaults; this applies
        // the topic's overrides to them.
        let log = self.logs.get_or_create(tp, config.clone())?;
        log.set_config(config);
        if has_leader {
            mark_verified(&log);
        }
        let stored_high_watermark = self.logs.stored_high_watermark(tp);
        let partition = Arc::new(Partition::new(
            tp.clone(),
            log,
            role,
            state,
            stored_high_watermark,
        ));
        self.partitions
            .write()
            .expect("partition map lock")
            .insert(tp.clone(), partition);
        Ok(RoleChange {
            from: None,
            to: role,
        })
    }

    /// StopReplica: stops serving `tp`. Without `delete` the partition stays hosted in the
    /// [`Role::Stopped`] role (its log and leader epoch are kept); with `delete` it is no
    /// longer hosted and its data is deleted, also when it was never hosted since start-up
    /// (a log left on disk by a topic deleted while this broker was down). Stopping a
    /// partition this broker does not have succeeds. Touches the disk: call off the async
    /// workers.
    pub fn stop(&self, tp: &TopicPartition, delete: bool) -> Result<(), LogError> {
        if !delete {
            if let Some(partition) = self.get(tp) {
                let change = partition.change_role(Role::Stopped, None);
                self.publish_role(tp, change, partition.leader_epoch());
            }
            return Ok(());
        }
        let removed = self
            .partitions
            .write()
            .expect("partition map lock")
            .remove(tp);
        if let Some(partition) = removed {
            let change = partition.change_role(Role::Stopped, None);
            self.publish_role(tp, change, partition.leader_epoch());
            // Long polls on a deleted follower or stopped replica too.
            partition.wake_waiters();
        }
        self.logs.delete(tp)
    }

    /// What the controller compares before electing the last in-sync replica after an unclean
    /// shutdown (DescribeReplicaLogs): the latest leader epoch, the log end offset and whether
    /// the log still needs verification, for any log on this broker's disks (hosted or not);
    /// `None` when there is no log.
    pub fn describe_log(&self, tp: &TopicPartition) -> Option<ReplicaLogState> {
        let log = self.logs.get(tp)?;
        Some(ReplicaLogState {
            last_leader_epoch: log.latest_epoch(),
            log_end_offset: log.log_end_offset(),
            needs_verification: log.needs_verification(),
        })
    }

    /// The high watermark of a hosted partition (for retention and the HW checkpoint);
    /// `None` for a partition that is not hosted.
    pub fn high_watermark(&self, tp: &TopicPartition) -> Option<i64> {
        self.get(tp).map(|p| p.high_watermark())
    }
}

#[cfg(test)]
mod tests {
    use tributary_zk_layout::{BrokerId, ZkVersion};

    use super::*;
    use crate::replica::AppendError;

    fn manager() -> (tempfile::TempDir, ReplicaManager) {
        let dir = tempfile::tempdir().unwrap();
        let logs = LogManager::open(&[dir.path().to_path_buf()], LogConfig::default()).unwrap();
        (dir, ReplicaManager::new(Arc::new(logs)))
    }

    fn state(leader: i32, leader_epoch: i32) -> LeaderAndIsrState {
        LeaderAndIsrState {
            controller_epoch: ControllerEpoch(1),
            leader: BrokerId(leader),
            leader_epoch: LeaderEpoch(leader_epoch),
            isr: vec![BrokerId(leader)],
            replicas: vec![BrokerId(1), BrokerId(2)],
            zk_version: ZkVersion(leader_epoch),
        }
    }

    fn one_batch() -> bytes::BytesMut {
        let mut builder = tributary_record::BatchBuilder::new();
        builder.push(&tributary_record::Record {
            value: Some(bytes::Bytes::from_static(b"v")),
            ..tributary_record::Record::default()
        });
        bytes::BytesMut::from(&builder.build_vec()[..])
    }

    #[test]
    fn leader_appends_with_its_epoch_follower_refuses_and_leadership_comes_back() {
        let (_dir, replicas) = manager();
        let tp = TopicPartition::new("t", 0);
        let change = replicas
            .make_leader(&tp, state(1, 3), LogConfig::default())
            .unwrap();
        assert!(change.gains_leadership());
        let partition = replicas.get(&tp).unwrap();
        partition.append_as_leader(one_batch(), 0, None).unwrap();
        assert_eq!(partition.high_watermark(), 1);
        assert_eq!(partition.leader_epoch(), LeaderEpoch(3));

        let change = replicas
            .make_follower(&tp, state(2, 4), LogConfig::default())
            .unwrap();
        assert!(change.loses_leadership());
        let refused = partition.append_as_leader(one_batch(), 0, None);
        assert!(
            matches!(
                refused,
                Err(AppendError::NotLeader {
                    leader: BrokerId(2),
                    ..
                })
            ),
            "{refused:?}"
        );
        assert_eq!(
            partition.log().log_end_offset(),
            1,
            "the follower keeps its log"
        );

        replicas
            .make_leader(&tp, state(1, 5), LogConfig::default())
            .unwrap();
        let info = partition.append_as_leader(one_batch(), 0, None).unwrap();
        assert_eq!(info.base_offset, 1);
        assert_eq!(partition.high_watermark(), 2);
    }

    #[test]
    fn min_insync_replicas_is_checked_against_the_real_isr() {
        let (_dir, replicas) = manager();
        let tp = TopicPartition::new("t", 0);
        replicas
            .make_leader(&tp, state(1, 0), LogConfig::default())
            .unwrap();
        let partition = replicas.get(&tp).unwrap();
        partition.append_as_leader(one_batch(), 0, Some(1)).unwrap();
        let refused = partition.append_as_leader(one_batch(), 0, Some(2));
        assert!(
            matches!(
                refused,
                Err(AppendError::NotEnoughReplicas {
                    isr: 1,
                    min_insync_replicas: 2,
                    ..
                })
            ),
            "{refused:?}"
        );
        assert_eq!(partition.log().log_end_offset(), 1, "nothing was written");
    }

    fn state_with_isr(leader: i32, leader_epoch: i32, isr: &[i32]) -> LeaderAndIsrState {
        LeaderAndIsrState {
            isr: isr.iter().copied().map(BrokerId).collect(),
            replicas: vec![BrokerId(1), BrokerId(2), BrokerId(3)],
            ..state(leader, leader_epoch)
        }
    }

    #[test]
    fn the_high_watermark_follows_the_slowest_isr_member_and_lagging_members_are_shrunk() {
        let (_dir, replicas) = manager();
        let tp = TopicPartition::new("t", 0);
        replicas
            .make_leader(&tp, state_with_isr(1, 0, &[1, 2, 3]), LogConfig::default())
            .unwrap();
        let partition = replicas.get(&tp).unwrap();
        for _ in 0..3 {
            partition.append_as_leader(one_batch(), 0, None).unwrap();
        }
        assert_eq!(partition.high_watermark(), 0, "no follower has fetched");
        let now = crate::state::now_ms();
        assert_eq!(partition.record_follower_fetch(BrokerId(2), 3, now), None);
        assert_eq!(partition.high_watermark(), 0, "broker 3 holds it back");
        partition.record_follower_fetch(BrokerId(3), 2, now);
        assert_eq!(partition.high_watermark(), 2);
        // A fetch behind the HW never moves it back.
        partition.record_follower_fetch(BrokerId(3), 1, now);
        assert_eq!(partition.high_watermark(), 2);

        // Within the lag time nobody is out of sync; after it, broker 3 (behind) is, and
        // broker 2 (at the LEO) is not.
        assert_eq!(partition.maybe_shrink_isr(now + 1_000, 10_000), None);
        let shrink = partition
            .maybe_shrink_isr(now + 20_000, 10_000)
            .expect("broker 3 lags");
        assert_eq!(shrink.isr, vec![BrokerId(1), BrokerId(2)]);
        assert_eq!(
            partition.maybe_shrink_isr(now + 20_000, 10_000),
            None,
            "one change at a time"
        );
        partition.complete_isr_update(&shrink, Some(ZkVersion(3)));
        assert_eq!(partition.isr_size(), 2);
        assert_eq!(
            partition.high_watermark(),
            3,
            "the smaller ISR commits more"
        );

        // Broker 3 catches up (LEO ≥ HW and ≥ the epoch start) and is proposed again; a
        // write that was abandoned leaves the ISR as it was.
        let expand = partition
            .record_follower_fetch(BrokerId(3), 3, now + 21_000)
            .expect("broker 3 caught up");
        assert_eq!(expand.isr, vec![BrokerId(1), BrokerId(2), BrokerId(3)]);
        partition.complete_isr_update(&expand, None);
        assert_eq!(partition.isr_size(), 2);
    }

    #[test]
    fn a_follower_joins_only_from_the_start_of_the_current_epoch() {
        let (_dir, replicas) = manager();
        let tp = TopicPartition::new("t", 0);
        replicas
            .make_leader(&tp, state_with_isr(1, 0, &[1]), LogConfig::default())
            .unwrap();
        let partition = replicas.get(&tp).unwrap();
        for _ in 0..2 {
            partition.append_as_leader(one_batch(), 0, None).unwrap();
        }
        // A new epoch starts at offset 2 (leader re-elected with a new epoch).
        replicas
            .make_leader(&tp, state_with_isr(1, 1, &[1]), LogConfig::default())
            .unwrap();
        let now = crate::state::now_ms();
        assert_eq!(partition.record_follower_fetch(BrokerId(2), 1, now), None);
        assert!(
            partition
                .record_follower_fetch(BrokerId(2), 2, now)
                .is_some()
        );
    }

    #[test]
    fn stop_keeps_the_log_and_epoch_and_delete_removes_both() {
        let (_dir, replicas) = manager();
        let tp = TopicPartition::new("t", 0);
        let other = TopicPartition::new("t", 1);
        for p in [&tp, &other] {
            replicas
                .make_leader(p, state(1, 7), LogConfig::default())
                .unwrap();
        }
        replicas.stop(&tp, false).unwrap();
        let partition = replicas.get(&tp).unwrap();
        assert_eq!(partition.role(), Role::Stopped);
        assert_eq!(replicas.leader_epoch(&tp), Some(LeaderEpoch(7)));
        assert!(partition.append_as_leader(one_batch(), 0, None).is_err());

        replicas.stop(&tp, true).unwrap();
        assert!(replicas.get(&tp).is_none());
        assert!(replicas.hosts_topic("t"), "partition 1 is still hosted");
        replicas.stop(&other, true).unwrap();
        assert!(!replicas.hosts_topic("t"));
        // Stopping what is not there succeeds (the controller retries deletions).
        replicas.stop(&tp, true).unwrap();
        replicas.stop(&tp, false).unwrap();
    }

    #[test]
    fn subscribers_see_every_role_change_in_order() {
        let (_dir, replicas) = manager();
        let tp = TopicPartition::new("t", 0);
        let mut events = replicas.subscribe_roles();
        replicas
            .make_leader(&tp, state(1, 1), LogConfig::default())
            .unwrap();
        replicas
            .make_leader(&tp, state(1, 2), LogConfig::default())
            .unwrap();
        replicas
            .make_follower(&tp, state(2, 3), LogConfig::default())
            .unwrap();
        replicas.stop(&tp, false).unwrap();
        replicas.stop(&tp, true).unwrap();
        let mut seen = Vec::new();
        while let Ok(event) = events.try_recv() {
            assert_eq!(event.topic_partition, tp);
            seen.push((event.previous, event.role, event.leader_epoch.0));
        }
        assert_eq!(
            seen,
            [
                (None, Role::Leader, 1),
                (Some(Role::Leader), Role::Leader, 2),
                (Some(Role::Leader), Role::Follower, 3),
                (Some(Role::Follower), Role::Stopped, 3),
                (Some(Role::Stopped), Role::Stopped, 3),
            ]
        );
        drop(events);
        // A dropped subscriber is forgotten, not an error.
        replicas
            .make_leader(&tp, state(1, 4), LogConfig::default())
            .unwrap();
    }

    #[tokio::test]
    async fn losing_leadership_wakes_long_polls() {
        let (_dir, replicas) = manager();
        let tp = TopicPartition::new("t", 0);
        replicas
            .make_leader(&tp, state(1, 0), LogConfig::default())
            .unwrap();
        let mut watcher = replicas.get(&tp).unwrap().subscribe();
        watcher.borrow_and_update();
        replicas
            .make_follower(&tp, state(2, 1), LogConfig::default())
            .unwrap();
        assert!(watcher.has_changed().unwrap());
    }

    #[test]
    fn a_restarted_follower_starts_at_its_checkpointed_high_watermark() {
        let dir = tempfile::tempdir().unwrap();
        let (follower, leader) = (TopicPartition::new("t", 0), TopicPartition::new("t", 1));
        {
            let logs = LogManager::open(&[dir.path().to_path_buf()], LogConfig::default()).unwrap();
            for tp in [&follower, &leader] {
                let log = logs.get_or_create(tp, LogConfig::default()).unwrap();
                for _ in 0..3 {
                    log.append_as_leader(one_batch(), 0, 0).unwrap();
                }
            }
            logs.shutdown(&|_: &TopicPartition| Some(1)).unwrap();
        }
        let logs = LogManager::open(&[dir.path().to_path_buf()], LogConfig::default()).unwrap();
        let replicas = ReplicaManager::new(Arc::new(logs));
        replicas
            .make_follower(&follower, state(2, 1), LogConfig::default())
            .unwrap();
        assert_eq!(replicas.high_watermark(&follower), Some(1));
        // A leader that is the only ISR member commits its whole log at once.
        replicas
            .make_leader(&leader, state(1, 1), LogConfig::default())
            .unwrap();
        assert_eq!(replicas.high_watermark(&leader), Some(3));
        assert_eq!(replicas.high_watermark(&TopicPartition::new("t", 9)), None);
    }
}

/// A replica's log as DescribeReplicaLogs reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaLogState {
    /// The latest leader epoch in the log's epoch cache, if any.
    pub last_leader_epoch: Option<i32>,
    /// The log end offset.
    pub log_end_offset: i64,
    /// Recovered after an unclean shutdown and not checked since.
    pub needs_verification: bool,
}

/// The partition has a leader again, chosen by a controller that knew this replica's state:
/// the log no longer needs verification. A failure to remove the mark only means the check
/// is repeated after the next restart, so it is logged, not returned.
fn mark_verified(log: &Log) {
    if let Err(error) = log.mark_verified() {
        tracing::warn!(topic_partition = %log.topic_partition(), %error, "cannot remove the needs-verification mark; it will be checked again after a restart");
    }
}
