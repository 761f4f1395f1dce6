//! The controller's event handlers: `(model, event) → decision`, one file per event family.
//!
//! Each handler mutates the [`ClusterModel`] to the state the cluster will be in once its
//! [`Decision`] is applied, and returns that decision; none does I/O. [`handle`] dispatches.
//!
//! | event | handler | Kafka |
//! |---|---|---|
//! | [`Event::Startup`] | [`startup::handle_startup`] | `onControllerFailover` |
//! | [`Event::BrokersChanged`] | [`broker_change::handle_brokers_changed`] | `BrokerChange`: `onBrokerStartup`, `onBrokerFailure` |
//! | [`Event::TopicsChanged`] | [`topic_change::handle_topics_changed`] | `TopicChange`, `PartitionModifications` |
//! | [`Event::TopicDeletionRequested`], [`Event::ReplicaDeletionDone`] | [`topic_deletion`] | `TopicDeletion`, `TopicDeletionStopReplicaResponseReceived` |
//! | [`Event::IsrChanged`] | [`isr_change::handle_isr_changed`] | `IsrChangeNotification` |
//! | [`Event::PreferredElection`], [`Event::AutoRebalanceTick`] | [`preferred_leader`] | `ReplicaLeaderElection`, `AutoPreferredReplicaLeaderElection` |
//! | [`Event::ControlledShutdown`] | [`controlled_shutdown::handle_controlled_shutdown`] | `ControlledShutdown` |
//! | [`Event::ReplicaLogsDescribed`] | [`replica_logs::handle_replica_logs_described`] | none (KIP-966's idea for ZooKeeper mode; see [`crate::last_replica`]) |
//!
//! Not handled (yet): partition reassignment, log dir failures, topic config changes (the loop
//! updates [`ClusterModel::unclean_overrides`] directly), `delete.topic.enable = false`.

pub mod broker_change;
pub mod controlled_shutdown;
pub mod isr_change;
pub mod preferred_leader;
pub mod replica_logs;
pub mod startup;
pub mod topic_change;
pub mod topic_deletion;

use crate::cluster::ClusterModel;
use crate::decision::Decision;
use crate::event::Event;

/// Handles one event: the only entry point the controller loop needs.
pub fn handle(model: &mut ClusterModel, event: Event) -> Decision {
    let decision = match event {
        Event::Startup => startup::handle_startup(model),
        Event::BrokersChanged { live } => broker_change::handle_brokers_changed(model, live),
        Event::TopicsChanged { topics } => topic_change::handle_topics_changed(model, topics),
        Event::TopicDeletionRequested { topics } => {
            topic_deletion::handle_deletion_requested(model, topics)
        }
        Event::ReplicaDeletionDone { topic, broker } => {
            topic_deletion::handle_replica_deletion_done(model, &topic, broker)
        }
        Event::IsrChanged { partitions } => isr_change::handle_isr_changed(model, partitions),
        Event::PreferredElection {
            partitions,
            from_admin_znode,
        } => preferred_leader::handle_preferred_election(model, partitions, from_admin_znode),
        Event::AutoRebalanceTick {
            imbalance_percentage,
        } => preferred_leader::handle_auto_rebalance(model, imbalance_percentage),
        Event::ControlledShutdown {
            broker,
            broker_epoch,
        } => controlled_shutdown::handle_controlled_shutdown(model, broker, broker_epoch),
        Event::ReplicaLogsDescribed {
            broker,
            asked,
            logs,
        } => replica_logs::handle_replica_logs_described(model, broker, &asked, logs),
    };
    model.forget_stale_replica_logs();
    model.debug_check_invariants();
    decision
}

/// Builders for handler tests and a one-line-per-item rendering of decisions, so a test can
/// assert an exact decision in a readable table.
#[cfg(test)]
pub(crate) mod fixtures {
    use std::collections::BTreeMap;

    use tributary_zk_layout::{BrokerEpoch, BrokerId, ControllerEpoch, LeaderEpoch, ZkVersion};

    use crate::cluster::{ClusterModel, LiveBroker, PartitionModel, TopicModel, TopicPartition};
    use crate::decision::{BrokerRequest, Decision, ZkWrite};
    use crate::model::{LeaderAndIsr, broker_list};

    /// The controller epoch of every test model.
    pub(crate) const EPOCH: ControllerEpoch = ControllerEpoch(5);

    pub(crate) fn ids(raw: &[i32]) -> Vec<BrokerId> {
        raw.iter().copied().map(BrokerId).collect()
    }

    /// Broker `id` registered with epoch `epoch`.
    pub(crate) fn broker(id: i32, epoch: i64) -> (BrokerId, LiveBroker) {
        (
            BrokerId(id),
            LiveBroker {
                epoch: BrokerEpoch(epoch),
                host: format!("broker-{id}"),
                port: 9092,
                rack: None,
            },
        )
    }

    /// The registrations of `brokers`, each with epoch `100 + id`.
    pub(crate) fn registrations(brokers: &[i32]) -> BTreeMap<BrokerId, LiveBroker> {
        brokers
            .iter()
            .map(|&id| broker(id, 100 + i64::from(id)))
            .collect()
    }

    /// A model with `brokers` registered (epoch `100 + id`) and no topics.
    pub(crate) fn cluster(brokers: &[i32]) -> ClusterModel {
        let mut model = ClusterModel::new(EPOCH);
        model.live_brokers = registrations(brokers);
        model
    }

    pub(crate) fn topic(assignment: &[&[i32]]) -> TopicModel {
        TopicModel {
            assignment: assignment
                .iter()
                .enumerate()
                .map(|(p, replicas)| ((p as i32).into(), ids(replicas)))
                .collect(),
            topic_id: "AAAAAAAAAAAAAAAAAAAAAA".into(),
        }
    }

    pub(crate) fn state(leader: i32, leader_epoch: i32, isr: &[i32]) -> LeaderAndIsr {
        LeaderAndIsr {
            leader: BrokerId(leader),
            leader_epoch: LeaderEpoch(leader_epoch),
            isr: ids(isr),
            controller_epoch: EPOCH,
        }
    }

    pub(crate) fn tp(topic: &str, partition: i32) -> TopicPartition {
        TopicPartition::new(topic, partition)
    }

    /// Adds topic `name` with one partition per `(replicas, leader, leader_epoch, isr)`, each
    /// state at znode version `10 + partition`.
    pub(crate) fn add_topic(
        model: &mut ClusterModel,
        name: &str,
        partitions: &[(&[i32], i32, i32, &[i32])],
    ) {
        let replicas: Vec<&[i32]> = partitions.iter().map(|p| p.0).collect();
        model.topics.insert(name.into(), topic(&replicas));
        for (p, &(_, leader, leader_epoch, isr)) in partitions.iter().enumerate() {
            model.partition_states.insert(
                tp(name, p as i32),
                PartitionModel {
                    leader_and_isr: state(leader, leader_epoch, isr),
                    zk_version: ZkVersion(10 + p as i32),
                    written_at_zxid: None,
                },
            );
        }
    }

    fn show(s: &LeaderAndIsr) -> String {
        format!(
            "{{{} e{} {}}}",
            s.leader,
            s.leader_epoch,
            broker_list(&s.isr)
        )
    }

    /// One line per write and request, e.g.
    /// `set t-0 = {2 e1 [2, 3]} if v10` or `LeaderAndIsr → 2: t-0 {2 e1 [2, 3]} v11`.
    pub(crate) fn describe(decision: &Decision) -> Vec<String> {
        let mut lines = Vec::new();
        for write in &decision.zk_writes {
            lines.push(match write {
                ZkWrite::CreatePartitionStates { topic, states } => format!(
                    "create {topic}: {}",
                    states
                        .iter()
                        .map(|(p, s)| format!("{p} {}", show(s)))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                ZkWrite::SetPartitionState {
                    partition,
                    state,
                    expected_version,
                } => {
                    assert_eq!(state.controller_epoch, EPOCH);
                    format!("set {partition} = {} if v{expected_version}", show(state))
                }
                ZkWrite::DeleteTopicZnodes { topic } => format!("delete topic {topic}"),
                ZkWrite::DeleteAdminDeleteTopic { topic } => {
                    format!("delete /admin/delete_topics/{topic}")
                }
                ZkWrite::DeleteAdminPreferredReplicaElection => {
                    "delete /admin/preferred_replica_election".into()
                }
            });
        }
        for request in &decision.requests {
            lines.push(match request {
                BrokerRequest::LeaderAndIsr { to, partitions, .. } => format!(
                    "LeaderAndIsr → {to}: {}",
                    partitions
                        .iter()
                        .map(|p| format!(
                            "{} {} v{}{}",
                            p.partition,
                            show(&p.leader_and_isr),
                            p.zk_version,
                            if p.is_new { " new" } else { "" }
                        ))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                BrokerRequest::UpdateMetadata {
                    to,
                    live_brokers,
                    partitions,
                    deleted,
                    ..
                } => {
                    let brokers: Vec<BrokerId> = live_brokers.keys().copied().collect();
                    let mut items: Vec<String> = partitions
                        .iter()
                        .map(|p| {
                            let offline = if p.offline_replicas.is_empty() {
                                String::new()
                            } else {
                                format!(" offline {}", broker_list(&p.offline_replicas))
                            };
                            format!(
                                "{} {} v{}{offline}",
                                p.partition,
                                show(&p.leader_and_isr),
                                p.zk_version
                            )
                        })
                        .collect();
                    items.extend(deleted.iter().map(|tp| format!("{tp} deleted")));
                    format!(
                        "UpdateMetadata → {to}: brokers {}{}{}",
                        broker_list(&brokers),
                        if items.is_empty() { "" } else { "; " },
                        items.join(", ")
                    )
                }
                BrokerRequest::DescribeReplicaLogs { to, partitions, .. } => format!(
                    "DescribeReplicaLogs → {to}: {}",
                    partitions
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                BrokerRequest::StopReplica {
                    to,
                    partitions,
                    delete,
                    ..
                } => format!(
                    "StopReplica{} → {to}: {}",
                    if *delete { "(delete)" } else { "" },
                    partitions
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        lines
    }

    /// Asserts `describe(decision)` line by line (a readable diff on failure).
    #[track_caller]
    pub(crate) fn assert_decision(decision: &Decision, expected: &[&str]) {
        let actual = describe(decision);
        assert_eq!(actual, expected, "\nactual:\n{}\n", actual.join("\n"));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use proptest::prelude::*;
    use tributary_zk_layout::{BrokerEpoch, BrokerId, ZkVersion};

    use super::fixtures::*;
    use super::*;
    use crate::cluster::{TopicModel, TopicPartition};
    use crate::decision::{BrokerRequest, ZkWrite};
    use crate::placement::assign_replicas;

    /// A step of a random scenario over brokers 1..=4.
    #[derive(Debug, Clone)]
    enum Step {
        /// Registered brokers as a bit mask; `bounce` re-registers broker 1 with a new epoch.
        Brokers {
            mask: u8,
            bounce: bool,
        },
        Shutdown(i32),
        Preferred,
        Rebalance,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            3 => (0u8..16, any::<bool>()).prop_map(|(mask, bounce)| Step::Brokers { mask, bounce }),
            1 => (1i32..=4).prop_map(Step::Shutdown),
            1 => Just(Step::Preferred),
            1 => Just(Step::Rebalance),
        ]
    }

    proptest! {
        /// Whatever happens to the brokers, every decision keeps Kafka's invariants: writes are
        /// conditional on the model's version and move the leader epoch forward by one, ISRs
        /// are never emptied, leaders are registered ISR members, LeaderAndIsr goes only to
        /// registered replicas and UpdateMetadata to every registered broker.
        #[test]
        fn decisions_keep_the_invariants(steps in proptest::collection::vec(step(), 1..25)) {
            let mut model = cluster(&[1, 2, 3, 4]);
            model.unclean_default = false;
            let topics = BTreeMap::from([(
                "t".to_string(),
                TopicModel {
                    assignment: assign_replicas(6, 3, &ids(&[1, 2, 3, 4])).unwrap(),
                    topic_id: "id".into(),
                },
            )]);
            handle(&mut model, Event::TopicsChanged { topics });
            let all: BTreeSet<TopicPartition> = model.partition_states.keys().cloned().collect();
            let mut next_epoch = 1000;
            for step in steps {
                let event = match step {
                    Step::Brokers { mask, bounce } => {
                        let mut live = BTreeMap::new();
                        for id in 1..=4 {
                            if mask & (1 << (id - 1)) != 0 {
                                let known = model.live_brokers.get(&BrokerId(id)).map(|b| b.epoch.0);
                                next_epoch += 1;
                                let epoch = match known {
                                    Some(epoch) if !(bounce && id == 1) => epoch,
                                    _ => next_epoch,
                                };
                                live.insert(BrokerId(id), broker(id, epoch).1);
                            }
                        }
                        Event::BrokersChanged { live }
                    }
                    Step::Shutdown(id) => Event::ControlledShutdown {
                        broker: BrokerId(id),
                        broker_epoch: model
                            .live_brokers
                            .get(&BrokerId(id))
                            .map_or(BrokerEpoch(0), |b| b.epoch),
                    },
                    Step::Preferred => Event::PreferredElection {
                        partitions: all.clone(),
                        from_admin_znode: false,
                    },
                    Step::Rebalance => Event::AutoRebalanceTick { imbalance_percentage: 10 },
                };
                let before = model.clone();
                let decision = handle(&mut model, event);
                // A decision may write a partition twice (a bounce: death, then join); each
                // write is conditional on the version the previous one produced.
                let mut written = before.partition_states.clone();
                for write in &decision.zk_writes {
                    if let ZkWrite::SetPartitionState { partition, state, expected_version } = write {
                        let old = written.get_mut(partition).unwrap();
                        prop_assert_eq!(*expected_version, old.zk_version);
                        prop_assert_eq!(state.leader_epoch.0, old.leader_and_isr.leader_epoch.0 + 1);
                        old.zk_version = ZkVersion(expected_version.0 + 1);
                        old.leader_and_isr = state.clone();
                        model.record_written(&partition.topic, partition.partition, ZkVersion(expected_version.0 + 1));
                    }
                }
                for (tp, state) in &model.partition_states {
                    let s = &state.leader_and_isr;
                    prop_assert!(!s.isr.is_empty(), "{tp} has an empty ISR");
                    prop_assert!(s.isr.iter().all(|b| model.replicas(tp).contains(b)));
                    prop_assert!(
                        s.leader == BrokerId::NONE
                            || (s.isr.contains(&s.leader) && model.is_registered(s.leader)),
                        "{tp}: leader {} not a registered ISR member {:?}", s.leader, s.isr
                    );
                    prop_assert!(s.leader_epoch >= before.partition_states[tp].leader_and_isr.leader_epoch);
                }
                let mut metadata_to = BTreeSet::new();
                for request in &decision.requests {
                    match request {
                        BrokerRequest::LeaderAndIsr { to, partitions, .. } => {
                            for p in partitions {
                                prop_assert!(model.replicas(&p.partition).contains(to));
                                prop_assert!(model.is_registered(*to));
                            }
                        }
                        BrokerRequest::UpdateMetadata { to, .. } => {
                            // Startup and bounces send two rounds (announce / death, then join).
                            metadata_to.insert(*to);
                        }
                        BrokerRequest::DescribeReplicaLogs { to, partitions, .. } => {
                            for tp in partitions {
                                prop_assert!(model.replicas(tp).contains(to));
                                prop_assert!(model.is_registered(*to));
                            }
                        }
                        BrokerRequest::StopReplica { .. } => {}
                    }
                }
                if !metadata_to.is_empty() {
                    let registered: BTreeSet<BrokerId> = model.live_brokers.keys().copied().collect();
                    prop_assert!(metadata_to.is_superset(&registered));
                    prop_assert!(metadata_to.iter().all(|b| registered.contains(b) || before.is_registered(*b)));
                }
            }
        }
    }
}
