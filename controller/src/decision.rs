//! What a handler decides: ZooKeeper writes, then requests to brokers, then maybe a reply.
//!
//! The loop applies a [`Decision`] in order: every [`ZkWrite`] through the fenced writer (a multi
//! whose first op checks `/controller_epoch`; a failed check → resign), then every
//! [`BrokerRequest`] through the per-broker senders (FIFO per broker), then the [`Reply`] to the
//! RPC that caused the event. Requests are already addressed: UpdateMetadata appears once per
//! registered broker, LeaderAndIsr only for the registered replicas concerned.
//!
//! If a conditional state write fails with BADVERSION, the loop removes that partition from the
//! requests with [`Decision::drop_partitions`], re-reads the znode and feeds it back as
//! [`Event::IsrChanged`](crate::event::Event::IsrChanged).

use std::collections::{BTreeMap, BTreeSet};

use tributary_zk_layout::{BrokerEpoch, BrokerId, PartitionId, ZkVersion};

use crate::cluster::{ClusterModel, LiveBroker, TopicPartition};
use crate::handlers::controlled_shutdown::ControlledShutdownError;
use crate::handlers::preferred_leader::ElectLeaderError;
use crate::last_replica::Comparison;
use crate::model::LeaderAndIsr;

/// The outcome of handling one event. Empty when nothing is to be done.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Decision {
    /// ZooKeeper writes, applied first, in order, each fenced.
    pub zk_writes: Vec<ZkWrite>,
    /// Control requests, sent after the writes succeeded.
    pub requests: Vec<BrokerRequest>,
    /// The answer to the RPC that caused the event, if any.
    pub reply: Option<Reply>,
    /// Partitions whose new leader came from an unclean election (an out-of-sync replica):
    /// the loop logs each one as a warning, since records the old ISR acknowledged may be lost.
    pub unclean_elections: Vec<TopicPartition>,
    /// What happened to leaderless partitions whose last in-sync replica needed verification
    /// (see [`crate::last_replica`]): the loop logs each one.
    pub last_replica_notes: Vec<LastReplicaNote>,
}

/// A leaderless partition whose candidate leader was recovered after an unclean shutdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LastReplicaNote {
    /// It stays offline until these replicas return and describe their logs.
    Waiting {
        /// The partition.
        partition: TopicPartition,
        /// The last in-sync replica, which needs verification.
        candidate: BrokerId,
        /// The replicas not live.
        missing: Vec<BrokerId>,
    },
    /// Every replica's log was compared and the most advanced one now leads.
    Elected {
        /// The partition.
        partition: TopicPartition,
        /// The comparison.
        comparison: Comparison,
        /// The new leader.
        leader: BrokerId,
    },
}

/// One fenced ZooKeeper write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZkWrite {
    /// Create `/brokers/topics/<t>/partitions/<p>/state` (and its parents) for new partitions;
    /// each created znode has version 0.
    CreatePartitionStates {
        /// The topic.
        topic: String,
        /// The initial state of each new partition.
        states: BTreeMap<PartitionId, LeaderAndIsr>,
    },
    /// Conditional `setData` of a partition's state znode.
    SetPartitionState {
        /// The partition.
        partition: TopicPartition,
        /// The new content.
        state: LeaderAndIsr,
        /// The version the znode must have; the write makes it `expected_version + 1`.
        expected_version: ZkVersion,
    },
    /// Delete `/brokers/topics/<t>` recursively and `/config/topics/<t>`.
    DeleteTopicZnodes {
        /// The topic.
        topic: String,
    },
    /// Delete `/admin/delete_topics/<t>`.
    DeleteAdminDeleteTopic {
        /// The topic.
        topic: String,
    },
    /// Delete `/admin/preferred_replica_election` once its election has run.
    DeleteAdminPreferredReplicaElection,
}

/// A control request to one broker. `broker_epoch` is the recipient's registered epoch, which
/// the broker compares with its own (older → STALE_BROKER_EPOCH).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerRequest {
    /// Become leader or follower of these partitions.
    LeaderAndIsr {
        /// The recipient, a replica of every partition listed.
        to: BrokerId,
        /// The recipient's broker epoch.
        broker_epoch: BrokerEpoch,
        /// The partitions, in order.
        partitions: Vec<PartitionLeadership>,
        /// Endpoints of the leaders named in `partitions` (Kafka's `LiveLeaders`).
        live_leaders: BTreeMap<BrokerId, LiveBroker>,
    },
    /// Refresh the metadata cache; sent to every registered broker.
    UpdateMetadata {
        /// The recipient.
        to: BrokerId,
        /// The recipient's broker epoch.
        broker_epoch: BrokerEpoch,
        /// Every registered broker (shutting-down ones included, as Kafka does).
        live_brokers: BTreeMap<BrokerId, LiveBroker>,
        /// Partitions whose state changed (or all of them, for a joining broker or failover).
        partitions: Vec<PartitionMetadata>,
        /// Partitions of topics being deleted: to drop from the cache (Kafka's leader -2).
        deleted: Vec<TopicPartition>,
    },
    /// Describe these partitions' logs (for a leaderless partition's election).
    DescribeReplicaLogs {
        /// The recipient, a replica of every partition listed.
        to: BrokerId,
        /// The recipient's broker epoch.
        broker_epoch: BrokerEpoch,
        /// The partitions, in order.
        partitions: Vec<TopicPartition>,
    },
    /// Stop serving and fetching these partitions, and delete them if `delete`.
    StopReplica {
        /// The recipient.
        to: BrokerId,
        /// The recipient's broker epoch.
        broker_epoch: BrokerEpoch,
        /// The partitions, in order.
        partitions: Vec<TopicPartition>,
        /// Whether to delete the logs (topic deletion) or only stop (controlled shutdown).
        delete: bool,
    },
}

impl BrokerRequest {
    /// The recipient.
    pub fn to(&self) -> BrokerId {
        match self {
            Self::LeaderAndIsr { to, .. }
            | Self::UpdateMetadata { to, .. }
            | Self::DescribeReplicaLogs { to, .. }
            | Self::StopReplica { to, .. } => *to,
        }
    }
}

/// One partition in a LeaderAndIsr request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLeadership {
    /// The partition.
    pub partition: TopicPartition,
    /// Its leader, leader epoch, ISR and controller epoch.
    pub leader_and_isr: LeaderAndIsr,
    /// The full assignment, in preference order.
    pub replicas: Vec<BrokerId>,
    /// True for a partition just created (the broker creates an empty log without looking for
    /// an old one).
    pub is_new: bool,
    /// The state znode's version after this decision, for the leader's conditional ISR writes.
    pub zk_version: ZkVersion,
}

/// One partition in an UpdateMetadata request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMetadata {
    /// The partition.
    pub partition: TopicPartition,
    /// Its leader, leader epoch, ISR and controller epoch.
    pub leader_and_isr: LeaderAndIsr,
    /// The full assignment, in preference order.
    pub replicas: Vec<BrokerId>,
    /// Replicas on brokers that are not registered.
    pub offline_replicas: Vec<BrokerId>,
    /// The state znode's version.
    pub zk_version: ZkVersion,
}

/// The answer to the RPC behind the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// ControlledShutdown response: the partitions (RF > 1) the broker still leads, or why the
    /// request was refused.
    ControlledShutdown(Result<Vec<TopicPartition>, ControlledShutdownError>),
    /// Preferred election (ElectLeaders) result per requested partition.
    PreferredElection(BTreeMap<TopicPartition, Result<(), ElectLeaderError>>),
}

impl Decision {
    /// Whether there is nothing to apply.
    pub fn is_empty(&self) -> bool {
        self.zk_writes.is_empty()
            && self.requests.is_empty()
            && self.reply.is_none()
            && self.last_replica_notes.is_empty()
    }

    /// Removes `failed` partitions from LeaderAndIsr and UpdateMetadata requests (their state
    /// write failed, so the state in them is not the one in ZooKeeper); LeaderAndIsr requests
    /// left empty are dropped.
    pub fn drop_partitions(&mut self, failed: &BTreeSet<TopicPartition>) {
        for request in &mut self.requests {
            match request {
                BrokerRequest::LeaderAndIsr { partitions, .. } => {
                    partitions.retain(|p| !failed.contains(&p.partition));
                }
                BrokerRequest::UpdateMetadata { partitions, .. } => {
                    partitions.retain(|p| !failed.contains(&p.partition));
                }
                BrokerRequest::DescribeReplicaLogs { .. } | BrokerRequest::StopReplica { .. } => {}
            }
        }
        self.requests.retain(|r| {
            !matches!(r, BrokerRequest::LeaderAndIsr { partitions, .. } if partitions.is_empty())
        });
    }

    /// Appends another decision's writes and requests (`other`'s reply wins if set).
    pub(crate) fn append(&mut self, other: Decision) {
        self.zk_writes.extend(other.zk_writes);
        self.requests.extend(other.requests);
        self.unclean_elections.extend(other.unclean_elections);
        self.last_replica_notes.extend(other.last_replica_notes);
        if other.reply.is_some() {
            self.reply = other.reply;
        }
    }

    /// Asks `to` (a registered replica) to describe `tp`'s log, unless it was already asked
    /// and has not answered; joins an earlier DescribeReplicaLogs of this decision to `to`.
    pub(crate) fn describe_replica_log(
        &mut self,
        model: &mut ClusterModel,
        to: BrokerId,
        tp: &TopicPartition,
    ) {
        let Some(broker) = model.live_brokers.get(&to) else {
            return;
        };
        if !model.replica_logs_asked.insert((tp.clone(), to)) {
            return;
        }
        let existing = self.requests.iter_mut().find_map(|r| match r {
            BrokerRequest::DescribeReplicaLogs {
                to: recipient,
                partitions,
                ..
            } if *recipient == to => Some(partitions),
            _ => None,
        });
        match existing {
            Some(partitions) => partitions.push(tp.clone()),
            None => self.requests.push(BrokerRequest::DescribeReplicaLogs {
                to,
                broker_epoch: broker.epoch,
                partitions: vec![tp.clone()],
            }),
        }
    }

    /// Records a conditional state write and applies it to the model: the model's partition
    /// moves to `state` at version `expected + 1`.
    pub(crate) fn set_partition_state(
        &mut self,
        model: &mut ClusterModel,
        tp: &TopicPartition,
        state: LeaderAndIsr,
    ) {
        let Some(current) = model.partition_states.get_mut(tp) else {
            debug_assert!(false, "no state for {tp}");
            return;
        };
        self.zk_writes.push(ZkWrite::SetPartitionState {
            partition: tp.clone(),
            state: state.clone(),
            expected_version: current.zk_version,
        });
        current.leader_and_isr = state;
        current.zk_version = ZkVersion(current.zk_version.0 + 1);
        current.written_at_zxid = None;
    }
}

/// Collects the requests of one decision and addresses them when finished (Kafka's
/// `ControllerBrokerRequestBatch`): one LeaderAndIsr per recipient with the partitions' final
/// states, one UpdateMetadata per registered broker, one StopReplica per recipient and flag.
#[derive(Debug, Default)]
pub(crate) struct RequestBatch {
    /// Recipient → partition → is_new.
    leader_and_isr: BTreeMap<BrokerId, BTreeMap<TopicPartition, bool>>,
    /// `Some` → UpdateMetadata goes to every registered broker, with these partitions.
    metadata: Option<BTreeSet<TopicPartition>>,
    /// Brokers whose UpdateMetadata carries every partition (joining broker, failover).
    full_metadata_to: BTreeSet<BrokerId>,
    /// (recipient, delete) → partitions.
    stop_replica: BTreeMap<(BrokerId, bool), BTreeSet<TopicPartition>>,
}

impl RequestBatch {
    /// LeaderAndIsr for `tp` to each of `brokers`.
    pub(crate) fn leader_and_isr(
        &mut self,
        brokers: impl IntoIterator<Item = BrokerId>,
        tp: &TopicPartition,
        is_new: bool,
    ) {
        for broker in brokers {
            *self
                .leader_and_isr
                .entry(broker)
                .or_default()
                .entry(tp.clone())
                .or_default() |= is_new;
        }
    }

    /// LeaderAndIsr for `tp` to its registered replicas, and `tp` in UpdateMetadata to all.
    pub(crate) fn partition_changed(&mut self, model: &ClusterModel, tp: &TopicPartition) {
        let replicas: Vec<BrokerId> = model
            .replicas(tp)
            .iter()
            .copied()
            .filter(|b| model.is_registered(*b))
            .collect();
        self.leader_and_isr(replicas, tp, false);
        self.update_metadata([tp.clone()]);
    }

    /// UpdateMetadata to every registered broker, including these partitions (possibly none:
    /// the broker list changed).
    pub(crate) fn update_metadata(&mut self, tps: impl IntoIterator<Item = TopicPartition>) {
        self.metadata.get_or_insert_with(BTreeSet::new).extend(tps);
    }

    /// UpdateMetadata to every registered broker; `broker`'s carries every partition.
    pub(crate) fn full_metadata_to(&mut self, broker: BrokerId) {
        self.update_metadata([]);
        self.full_metadata_to.insert(broker);
    }

    /// StopReplica for `tp` to `broker`.
    pub(crate) fn stop_replica(&mut self, broker: BrokerId, tp: &TopicPartition, delete: bool) {
        self.stop_replica
            .entry((broker, delete))
            .or_default()
            .insert(tp.clone());
    }

    /// Appends the addressed requests to `decision`: LeaderAndIsr, then UpdateMetadata, then
    /// StopReplica, each in broker order. States are read from `model` now, so a partition
    /// changed twice in one decision is sent once, in its final state. Unregistered recipients,
    /// partitions without state and topics being deleted are left out of LeaderAndIsr.
    pub(crate) fn finish(self, model: &ClusterModel, decision: &mut Decision) {
        let epoch_of = |b: BrokerId| model.live_brokers.get(&b).map(|l| l.epoch);
        for (to, partitions) in self.leader_and_isr {
            let Some(broker_epoch) = epoch_of(to) else {
                continue;
            };
            let partitions: Vec<PartitionLeadership> = partitions
                .into_iter()
                .filter(|(tp, _)| !model.is_being_deleted(&tp.topic))
                .filter_map(|(tp, is_new)| {
                    let state = model.partition_states.get(&tp)?;
                    Some(PartitionLeadership {
                        replicas: model.replicas(&tp).to_vec(),
                        leader_and_isr: state.leader_and_isr.clone(),
                        is_new,
                        zk_version: state.zk_version,
                        partition: tp,
                    })
                })
                .collect();
            if partitions.is_empty() {
                continue;
            }
            let live_leaders = partitions
                .iter()
                .filter_map(|p| {
                    let leader = p.leader_and_isr.leader;
                    Some((leader, model.live_brokers.get(&leader)?.clone()))
                })
                .collect();
            decision.requests.push(BrokerRequest::LeaderAndIsr {
                to,
                broker_epoch,
                partitions,
                live_leaders,
            });
        }
        if let Some(changed) = self.metadata {
            let everything: BTreeSet<TopicPartition> = model
                .topics
                .iter()
                .flat_map(|(name, t)| {
                    t.assignment
                        .keys()
                        .map(move |&p| TopicPartition::new(name.clone(), p))
                })
                .collect();
            for (&to, broker) in &model.live_brokers {
                let tps = if self.full_metadata_to.contains(&to) {
                    &everything
                } else {
                    &changed
                };
                let (partitions, deleted) = metadata_of(model, tps);
                decision.requests.push(BrokerRequest::UpdateMetadata {
                    to,
                    broker_epoch: broker.epoch,
                    live_brokers: model.live_brokers.clone(),
                    partitions,
                    deleted,
                });
            }
        }
        for ((to, delete), partitions) in self.stop_replica {
            let Some(broker_epoch) = epoch_of(to) else {
                continue;
            };
            decision.requests.push(BrokerRequest::StopReplica {
                to,
                broker_epoch,
                partitions: partitions.into_iter().collect(),
                delete,
            });
        }
    }
}

/// The UpdateMetadata entries for `tps`: partitions of unknown or deleting topics become
/// deleted markers; partitions without a state (New) are left out.
fn metadata_of(
    model: &ClusterModel,
    tps: &BTreeSet<TopicPartition>,
) -> (Vec<PartitionMetadata>, Vec<TopicPartition>) {
    let mut partitions = Vec::new();
    let mut deleted = Vec::new();
    for tp in tps {
        if !model.topics.contains_key(&tp.topic) || model.is_being_deleted(&tp.topic) {
            deleted.push(tp.clone());
            continue;
        }
        let Some(state) = model.partition_states.get(tp) else {
            continue;
        };
        let replicas = model.replicas(tp).to_vec();
        partitions.push(PartitionMetadata {
            partition: tp.clone(),
            leader_and_isr: state.leader_and_isr.clone(),
            offline_replicas: replicas
                .iter()
                .copied()
                .filter(|b| !model.is_registered(*b))
                .collect(),
            replicas,
            zk_version: state.zk_version,
        });
    }
    (partitions, deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::fixtures::*;

    #[test]
    fn drop_partitions_strips_failed_writes_from_requests() {
        let mut model = cluster(&[1, 2]);
        add_topic(
            &mut model,
            "t",
            &[(&[1, 2], 1, 0, &[1, 2]), (&[2], 2, 0, &[2])],
        );
        let mut decision = Decision::default();
        let mut batch = RequestBatch::default();
        for (p, next) in [(0, state(-1, 1, &[1])), (1, state(2, 1, &[2]))] {
            let tp = tp("t", p);
            decision.set_partition_state(&mut model, &tp, next);
            batch.partition_changed(&model, &tp);
        }
        batch.stop_replica(BrokerId(1), &tp("t", 0), false);
        batch.finish(&model, &mut decision);
        decision.drop_partitions(&BTreeSet::from([tp("t", 1)]));
        assert_decision(
            &decision,
            &[
                "set t-0 = {-1 e1 [1]} if v10",
                "set t-1 = {2 e1 [2]} if v11",
                "LeaderAndIsr → 1: t-0 {-1 e1 [1]} v11",
                "LeaderAndIsr → 2: t-0 {-1 e1 [1]} v11",
                "UpdateMetadata → 1: brokers [1, 2]; t-0 {-1 e1 [1]} v11",
                "UpdateMetadata → 2: brokers [1, 2]; t-0 {-1 e1 [1]} v11",
                "StopReplica → 1: t-0",
            ],
        );
        assert_eq!(
            model.partition_states[&tp("t", 1)].zk_version,
            ZkVersion(12)
        );
    }

    #[test]
    fn requests_to_unregistered_brokers_are_not_addressed() {
        let mut model = cluster(&[1]);
        add_topic(&mut model, "t", &[(&[1, 2], 1, 0, &[1])]);
        let mut decision = Decision::default();
        let mut batch = RequestBatch::default();
        batch.leader_and_isr(ids(&[1, 2]), &tp("t", 0), true);
        batch.stop_replica(BrokerId(2), &tp("t", 0), true);
        batch.finish(&model, &mut decision);
        assert_decision(&decision, &["LeaderAndIsr → 1: t-0 {1 e0 [1]} v10 new"]);
        assert_eq!(decision.requests[0].to(), BrokerId(1));
    }
}
