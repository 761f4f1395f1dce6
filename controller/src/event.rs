//! What the controller loop feeds to [`handle`](crate::handlers::handle): each ZooKeeper watch,
//! control RPC or timer becomes one [`Event`], carrying the data the loop read for it (handlers do
//! no I/O, so the reads happen before the event is handled).

use std::collections::{BTreeMap, BTreeSet};

use tributary_zk_layout::{BrokerEpoch, BrokerId};

use crate::cluster::{LiveBroker, PartitionModel, TopicModel, TopicPartition};
use crate::last_replica::ReplicaLog;

/// One unit of controller work (Kafka's `ControllerEvent`s, minus those handled by the loop
/// itself: `Reelect`, `Expire`, resignation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// This broker just became controller and the loop has loaded the
    /// [`ClusterModel`](crate::cluster::ClusterModel) from ZooKeeper (Kafka's
    /// `onControllerFailover`).
    Startup,
    /// The children of `/brokers/ids` changed: every registered broker with its epoch (czxid) and
    /// endpoint. Joins, deaths and bounces (same id, larger epoch) are found by comparison.
    BrokersChanged {
        /// The full set of registered brokers.
        live: BTreeMap<BrokerId, LiveBroker>,
    },
    /// The children of `/brokers/topics`, or one topic's assignment, changed: every topic with
    /// its assignment. New topics and added partitions are found by comparison.
    TopicsChanged {
        /// All topics as read (a topic missing here is ignored: deletion goes through
        /// [`Event::TopicDeletionRequested`]).
        topics: BTreeMap<String, TopicModel>,
    },
    /// Children of `/admin/delete_topics`.
    TopicDeletionRequested {
        /// Topics to delete.
        topics: BTreeSet<String>,
    },
    /// A broker answered StopReplica(delete = true) for `topic` without error.
    ReplicaDeletionDone {
        /// The topic.
        topic: String,
        /// The broker that deleted its replicas of the topic.
        broker: BrokerId,
    },
    /// Partition states re-read from ZooKeeper: after `/isr_change_notification` children
    /// appeared, or after a conditional state write of this controller failed with BADVERSION
    /// (the loop re-reads the znode and sends it here; the handler then retries what the
    /// re-read state still needs, such as an election for a dead leader).
    IsrChanged {
        /// Each partition's state znode content and version.
        partitions: BTreeMap<TopicPartition, PartitionModel>,
    },
    /// A preferred replica election was requested (ElectLeaders API or
    /// `/admin/preferred_replica_election`).
    PreferredElection {
        /// The partitions to elect the preferred replica for.
        partitions: BTreeSet<TopicPartition>,
        /// True when it came from `/admin/preferred_replica_election`, which is then deleted.
        from_admin_znode: bool,
    },
    /// The auto leader rebalance timer fired (every `leader.imbalance.check.interval.seconds`).
    AutoRebalanceTick {
        /// `leader.imbalance.per.broker.percentage` (default 10).
        imbalance_percentage: u32,
    },
    /// A broker answered DescribeReplicaLogs (or could not: `logs` is `None` after an error
    /// answer; an undeliverable request ends with the broker's death instead).
    ReplicaLogsDescribed {
        /// The broker that described its replicas' logs.
        broker: BrokerId,
        /// The partitions that were asked.
        asked: Vec<TopicPartition>,
        /// Each partition's log as the broker has it, or `None` if the request was refused.
        logs: Option<BTreeMap<TopicPartition, ReplicaLog>>,
    },
    /// A ControlledShutdown request from a stopping broker.
    ControlledShutdown {
        /// The broker stopping.
        broker: BrokerId,
        /// Its epoch as it knows it; older than the registered one → refused.
        broker_epoch: BrokerEpoch,
    },
}
