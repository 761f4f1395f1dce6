//! The controller's model of the cluster (Kafka's `ControllerContext`): what it read from
//! ZooKeeper at failover, kept current by the handlers.
//!
//! Only the controller loop owns a [`ClusterModel`]; handlers mutate it to the state the cluster
//! will be in **once their decision is applied**. In particular a partition-state write moves
//! [`PartitionModel::zk_version`] to the version the write will produce (a successful conditional
//! `setData` moves it by exactly one; a create yields 0), so the LeaderAndIsr requests of the same
//! decision carry the version the leader needs for its own conditional ISR writes. The loop
//! confirms the real version with [`ClusterModel::record_written`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use tributary_zk_layout::{BrokerEpoch, BrokerId, ControllerEpoch, PartitionId, ZkVersion};

use crate::last_replica::ReplicaLog;
use crate::model::LeaderAndIsr;
use crate::placement::Assignment;

/// A topic-partition, ordered by topic then partition (printed `orders-3`, as Kafka does).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    /// The topic name.
    pub topic: String,
    /// The partition number.
    pub partition: PartitionId,
}

impl TopicPartition {
    /// `TopicPartition::new("orders", 3)`.
    pub fn new(topic: impl Into<String>, partition: impl Into<PartitionId>) -> Self {
        Self {
            topic: topic.into(),
            partition: partition.into(),
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// A broker registered in `/brokers/ids/<id>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveBroker {
    /// The czxid of its registration znode. A larger epoch for the same id is a bounce.
    pub epoch: BrokerEpoch,
    /// The advertised host of its (single, PLAINTEXT) listener.
    pub host: String,
    /// The advertised port.
    pub port: u16,
    /// `broker.rack`, if set.
    pub rack: Option<String>,
}

/// A topic as `/brokers/topics/<t>` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicModel {
    /// Partition → replicas in preference order (the first is the preferred leader).
    /// Invariant: every replica list is non-empty and has no duplicates.
    pub assignment: Assignment,
    /// The topic id (a base64 UUID), as written in the assignment znode.
    pub topic_id: String,
}

/// A partition's state znode, as last written or read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionModel {
    /// The content of `/brokers/topics/<t>/partitions/<p>/state`.
    pub leader_and_isr: LeaderAndIsr,
    /// The znode's data version: the `expected_version` of the next conditional write.
    pub zk_version: ZkVersion,
    /// The zxid of the znode's last write, when the state was read from ZooKeeper (`None` once
    /// this controller wrote it). A leader registered after it (broker epoch = czxid of
    /// `/brokers/ids/<id>`, larger) restarted since it was named, unseen by this controller.
    pub written_at_zxid: Option<i64>,
}

/// Progress of one topic deletion (Kafka's `TopicDeletionManager` replica states, per broker:
/// a StopReplica request covers all of the topic's replicas on a broker).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TopicDeletion {
    /// Brokers sent StopReplica(delete = true) and not yet confirmed (ReplicaDeletionStarted).
    /// Invariant: disjoint from `done`; a broker that dies leaves this set (it becomes
    /// ReplicaDeletionIneligible) and is sent the request again when it returns.
    pub started: BTreeSet<BrokerId>,
    /// Brokers that confirmed the deletion of all their replicas (ReplicaDeletionSuccessful).
    pub done: BTreeSet<BrokerId>,
}

/// The controller's view of the cluster.
///
/// Invariants (hold between events; `debug_check_invariants` asserts them in tests):
/// - `shutting_down ⊆ live_brokers.keys()`;
/// - every key of `partition_states` is a partition of a topic in `topics`; a partition of a
///   topic without an entry is New (no live replica when it was created);
/// - every key of `topics_to_delete` is in `topics`;
/// - every partition's leader is [`BrokerId::NONE`] or a registered broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterModel {
    /// This controller's epoch; stamped on every state it writes.
    pub controller_epoch: ControllerEpoch,
    /// Registered brokers (children of `/brokers/ids`), including those shutting down.
    pub live_brokers: BTreeMap<BrokerId, LiveBroker>,
    /// Brokers in controlled shutdown: registered, but never elected leader.
    pub shutting_down: BTreeSet<BrokerId>,
    /// Topics by name.
    pub topics: BTreeMap<String, TopicModel>,
    /// Leader and ISR of every partition that has a state znode.
    pub partition_states: BTreeMap<TopicPartition, PartitionModel>,
    /// Topics queued for deletion (`/admin/delete_topics/<t>`): excluded from elections and from
    /// LeaderAndIsr, announced with deleted markers in UpdateMetadata.
    pub topics_to_delete: BTreeMap<String, TopicDeletion>,
    /// `unclean.leader.election.enable` of the broker configuration.
    pub unclean_default: bool,
    /// Topic-level `unclean.leader.election.enable` overrides (`/config/topics/<t>`).
    pub unclean_overrides: BTreeMap<String, bool>,
    /// Logs described by replicas of leaderless partitions (DescribeReplicaLogs), kept only
    /// while the partition is leaderless and the broker registered (see [`crate::last_replica`]).
    pub replica_logs: BTreeMap<TopicPartition, BTreeMap<BrokerId, ReplicaLog>>,
    /// DescribeReplicaLogs requests sent and not answered yet, so they are not repeated.
    pub replica_logs_asked: BTreeSet<(TopicPartition, BrokerId)>,
}

impl ClusterModel {
    /// An empty cluster seen by the controller of `controller_epoch`.
    pub fn new(controller_epoch: ControllerEpoch) -> Self {
        Self {
            controller_epoch,
            live_brokers: BTreeMap::new(),
            shutting_down: BTreeSet::new(),
            topics: BTreeMap::new(),
            partition_states: BTreeMap::new(),
            topics_to_delete: BTreeMap::new(),
            unclean_default: false,
            unclean_overrides: BTreeMap::new(),
            replica_logs: BTreeMap::new(),
            replica_logs_asked: BTreeSet::new(),
        }
    }

    /// Whether `broker` is registered (shutting down or not).
    pub fn is_registered(&self, broker: BrokerId) -> bool {
        self.live_brokers.contains_key(&broker)
    }

    /// Brokers that may lead (Kafka's `liveBrokerIds`): registered and not shutting down.
    pub fn electable_brokers(&self) -> BTreeSet<BrokerId> {
        self.live_brokers
            .keys()
            .copied()
            .filter(|b| !self.shutting_down.contains(b))
            .collect()
    }

    /// Whether an unclean election may pick an out-of-sync replica of `topic`.
    pub fn unclean_allowed(&self, topic: &str) -> bool {
        self.unclean_overrides
            .get(topic)
            .copied()
            .unwrap_or(self.unclean_default)
    }

    /// The replicas of a partition in preference order (empty if unknown).
    pub fn replicas(&self, tp: &TopicPartition) -> &[BrokerId] {
        self.topics
            .get(&tp.topic)
            .and_then(|t| t.assignment.get(&tp.partition))
            .map_or(&[], Vec::as_slice)
    }

    /// Whether `topic` is queued for deletion.
    pub fn is_being_deleted(&self, topic: &str) -> bool {
        self.topics_to_delete.contains_key(topic)
    }

    /// Every partition of every topic not being deleted, in order.
    pub fn active_partitions(&self) -> Vec<TopicPartition> {
        self.topics
            .iter()
            .filter(|(name, _)| !self.is_being_deleted(name))
            .flat_map(|(name, topic)| {
                topic
                    .assignment
                    .keys()
                    .map(move |&p| TopicPartition::new(name.clone(), p))
            })
            .collect()
    }

    /// The loop's confirmation of a successful state write: the version ZooKeeper returned.
    /// Unknown partitions (deleted meanwhile) are ignored.
    pub fn record_written(&mut self, topic: &str, partition: PartitionId, new_version: ZkVersion) {
        let tp = TopicPartition::new(topic, partition);
        if let Some(state) = self.partition_states.get_mut(&tp) {
            state.zk_version = new_version;
        }
    }

    /// Whether `tp`'s leader registered after its state was last written (read from
    /// ZooKeeper): it restarted or re-registered since it was named, while no controller
    /// watched, so what it holds is not known.
    pub fn leader_registered_since_state(&self, tp: &TopicPartition) -> bool {
        let Some(state) = self.partition_states.get(tp) else {
            return false;
        };
        let (Some(written), Some(leader)) = (
            state.written_at_zxid,
            self.live_brokers.get(&state.leader_and_isr.leader),
        ) else {
            return false;
        };
        leader.epoch.0 > written
    }

    /// Forgets log descriptions of partitions that have a leader (or no longer exist) and of
    /// brokers that are not registered.
    pub fn forget_stale_replica_logs(&mut self) {
        let leaderless =
            |tp: &TopicPartition, states: &BTreeMap<TopicPartition, PartitionModel>| {
                states
                    .get(tp)
                    .is_some_and(|s| s.leader_and_isr.leader == BrokerId::NONE)
            };
        let states = &self.partition_states;
        let brokers = &self.live_brokers;
        self.replica_logs.retain(|tp, logs| {
            logs.retain(|b, _| brokers.contains_key(b));
            !logs.is_empty() && leaderless(tp, states)
        });
        self.replica_logs_asked
            .retain(|(tp, b)| brokers.contains_key(b) && leaderless(tp, states));
    }

    /// Asserts the invariants documented on the type (debug builds only).
    pub fn debug_check_invariants(&self) {
        debug_assert!(
            self.shutting_down.iter().all(|b| self.is_registered(*b)),
            "a broker shutting down is not registered"
        );
        debug_assert!(
            self.partition_states
                .keys()
                .all(|tp| !self.replicas(tp).is_empty()),
            "a partition state has no assignment"
        );
        debug_assert!(
            self.topics_to_delete
                .keys()
                .all(|t| self.topics.contains_key(t)),
            "a topic queued for deletion is unknown"
        );
        debug_assert!(
            self.partition_states.iter().all(|(tp, s)| {
                let leader = s.leader_and_isr.leader;
                leader == BrokerId::NONE
                    || self.is_registered(leader)
                    || self.is_being_deleted(&tp.topic)
            }),
            "a partition is led by an unregistered broker"
        );
    }
}

#[cfg(test)]
mod tests {
    use tributary_zk_layout::LeaderEpoch;

    use super::*;

    #[test]
    fn unclean_override_beats_the_default() {
        let mut model = ClusterModel::new(ControllerEpoch(1));
        model.unclean_overrides.insert("a".into(), true);
        model.unclean_overrides.insert("b".into(), false);
        assert!(model.unclean_allowed("a"));
        assert!(!model.unclean_allowed("b"));
        assert!(!model.unclean_allowed("c"));
        model.unclean_default = true;
        assert!(!model.unclean_allowed("b"));
        assert!(model.unclean_allowed("c"));
    }

    #[test]
    fn record_written_sets_the_version_of_known_partitions_only() {
        let mut model = ClusterModel::new(ControllerEpoch(1));
        model.topics.insert(
            "t".into(),
            TopicModel {
                assignment: [(PartitionId(0), vec![BrokerId(1)])].into(),
                topic_id: "id".into(),
            },
        );
        let tp = TopicPartition::new("t", 0);
        model.partition_states.insert(
            tp.clone(),
            PartitionModel {
                leader_and_isr: LeaderAndIsr {
                    leader: BrokerId::NONE,
                    leader_epoch: LeaderEpoch(0),
                    isr: vec![BrokerId(1)],
                    controller_epoch: ControllerEpoch(1),
                },
                zk_version: ZkVersion(0),
                written_at_zxid: None,
            },
        );
        model.record_written("t", PartitionId(0), ZkVersion(3));
        model.record_written("gone", PartitionId(0), ZkVersion(9));
        assert_eq!(model.partition_states[&tp].zk_version, ZkVersion(3));
        assert_eq!(model.partition_states.len(), 1);
        assert_eq!(tp.to_string(), "t-0");
    }
}
