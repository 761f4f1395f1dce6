//! Preferred replica election: explicit (ElectLeaders API, `/admin/preferred_replica_election`)
//! and automatic (the rebalance timer, [`crate::rebalance::auto_rebalance`]).
//!
//! The first replica of the assignment becomes leader only if it is live (registered, not
//! shutting down) and in the ISR; the ISR is unchanged and the leader epoch bumped. Each elected
//! partition is written conditionally, sent as LeaderAndIsr to its registered replicas and as
//! UpdateMetadata to every broker. Topics being deleted are skipped.

use std::collections::{BTreeMap, BTreeSet};

use thiserror::Error;

use crate::cluster::{ClusterModel, TopicPartition};
use crate::decision::{Decision, Reply, RequestBatch, ZkWrite};
use crate::election::{ElectionError, ElectionInput, preferred_election};
use crate::rebalance::{PartitionLeadership, auto_rebalance};

/// Why a requested preferred election did not happen (per partition, in the reply).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ElectLeaderError {
    /// No such topic or partition, or its topic is being deleted.
    #[error("unknown topic or partition {partition}")]
    UnknownTopicOrPartition {
        /// The partition requested.
        partition: TopicPartition,
    },
    /// The partition has never had a live replica (it is New).
    #[error("partition {partition} has no leader and ISR yet")]
    NotInitialized {
        /// The partition requested.
        partition: TopicPartition,
    },
    /// The election strategy refused (preferred replica not live or not in ISR, or already
    /// leading: ELECTION_NOT_NEEDED).
    #[error("preferred election for {partition} failed")]
    Election {
        /// The partition requested.
        partition: TopicPartition,
        /// The strategy's reason.
        #[source]
        source: ElectionError,
    },
}

/// Runs a preferred election for each of `partitions`. The reply lists the outcome per
/// partition; a request from `/admin/preferred_replica_election` gets no reply and the znode is
/// deleted.
pub fn handle_preferred_election(
    model: &mut ClusterModel,
    partitions: BTreeSet<TopicPartition>,
    from_admin_znode: bool,
) -> Decision {
    let mut decision = Decision::default();
    let mut batch = RequestBatch::default();
    let results = elect_preferred(model, partitions, &mut decision, &mut batch);
    batch.finish(model, &mut decision);
    if from_admin_znode {
        decision
            .zk_writes
            .push(ZkWrite::DeleteAdminPreferredReplicaElection);
    } else {
        decision.reply = Some(Reply::PreferredElection(results));
    }
    decision
}

/// The auto-rebalance check: preferred elections for the partitions of every broker whose
/// leadership imbalance exceeds `imbalance_percentage` %.
pub fn handle_auto_rebalance(model: &mut ClusterModel, imbalance_percentage: u32) -> Decision {
    let electable = model.electable_brokers();
    let elect = auto_rebalance(
        model
            .partition_states
            .iter()
            .filter(|(tp, _)| !model.is_being_deleted(&tp.topic))
            .map(|(tp, state)| {
                let leadership = PartitionLeadership {
                    replicas: model.replicas(tp),
                    leader_and_isr: &state.leader_and_isr,
                };
                (tp.clone(), leadership)
            }),
        &electable,
        imbalance_percentage,
    )
    .elect;
    let mut decision = Decision::default();
    let mut batch = RequestBatch::default();
    elect_preferred(model, elect, &mut decision, &mut batch);
    batch.finish(model, &mut decision);
    decision
}

fn elect_preferred(
    model: &mut ClusterModel,
    partitions: BTreeSet<TopicPartition>,
    decision: &mut Decision,
    batch: &mut RequestBatch,
) -> BTreeMap<TopicPartition, Result<(), ElectLeaderError>> {
    let electable = model.electable_brokers();
    let mut results = BTreeMap::new();
    for tp in partitions {
        let result = if model.is_being_deleted(&tp.topic) || model.replicas(&tp).is_empty() {
            Err(ElectLeaderError::UnknownTopicOrPartition {
                partition: tp.clone(),
            })
        } else if let Some(state) = model.partition_states.get(&tp) {
            let input = ElectionInput {
                assignment: model.replicas(&tp),
                current: &state.leader_and_isr,
                live_brokers: &electable,
                controller_epoch: model.controller_epoch,
            };
            match preferred_election(input) {
                Ok(elected) => {
                    decision.set_partition_state(model, &tp, elected.leader_and_isr);
                    batch.partition_changed(model, &tp);
                    Ok(())
                }
                Err(source) => Err(ElectLeaderError::Election {
                    partition: tp.clone(),
                    source,
                }),
            }
        } else {
            Err(ElectLeaderError::NotInitialized {
                partition: tp.clone(),
            })
        };
        results.insert(tp, result);
    }
    results
}

#[cfg(test)]
mod tests {
    use tributary_zk_layout::BrokerId;

    use super::*;
    use crate::event::Event;
    use crate::handlers::fixtures::*;
    use crate::handlers::handle;

    #[test]
    fn preferred_replica_leads_only_when_live_and_in_isr() {
        let mut model = cluster(&[1, 2, 3]);
        add_topic(
            &mut model,
            "t",
            &[
                (&[1, 2, 3], 2, 4, &[2, 3, 1]),
                (&[1, 2, 3], 2, 4, &[2, 3]),
                (&[4, 1], 1, 0, &[1]),
                (&[1, 2], 1, 0, &[1, 2]),
            ],
        );
        let requested: BTreeSet<_> = [tp("t", 0), tp("t", 1), tp("t", 2), tp("t", 3), tp("x", 0)]
            .into_iter()
            .collect();
        let decision = handle(
            &mut model,
            Event::PreferredElection {
                partitions: requested,
                from_admin_znode: false,
            },
        );
        assert_decision(
            &decision,
            &[
                "set t-0 = {1 e5 [2, 3, 1]} if v10",
                "LeaderAndIsr → 1: t-0 {1 e5 [2, 3, 1]} v11",
                "LeaderAndIsr → 2: t-0 {1 e5 [2, 3, 1]} v11",
                "LeaderAndIsr → 3: t-0 {1 e5 [2, 3, 1]} v11",
                "UpdateMetadata → 1: brokers [1, 2, 3]; t-0 {1 e5 [2, 3, 1]} v11",
                "UpdateMetadata → 2: brokers [1, 2, 3]; t-0 {1 e5 [2, 3, 1]} v11",
                "UpdateMetadata → 3: brokers [1, 2, 3]; t-0 {1 e5 [2, 3, 1]} v11",
            ],
        );
        let election_error = |p, source| {
            Err(ElectLeaderError::Election {
                partition: tp("t", p),
                source,
            })
        };
        let expected = BTreeMap::from([
            (tp("t", 0), Ok(())),
            (
                tp("t", 1),
                election_error(
                    1,
                    ElectionError::PreferredReplicaNotEligible {
                        preferred: BrokerId(1),
                        live: true,
                        in_isr: false,
                    },
                ),
            ),
            (
                tp("t", 2),
                election_error(
                    2,
                    ElectionError::PreferredReplicaNotEligible {
                        preferred: BrokerId(4),
                        live: false,
                        in_isr: false,
                    },
                ),
            ),
            (
                tp("t", 3),
                election_error(
                    3,
                    ElectionError::ElectionNotNeeded {
                        leader: BrokerId(1),
                    },
                ),
            ),
            (
                tp("x", 0),
                Err(ElectLeaderError::UnknownTopicOrPartition {
                    partition: tp("x", 0),
                }),
            ),
        ]);
        assert_eq!(decision.reply, Some(Reply::PreferredElection(expected)));
    }

    #[test]
    fn a_shutting_down_preferred_replica_is_not_elected_and_the_admin_znode_is_deleted() {
        let mut model = cluster(&[1, 2]);
        model.shutting_down.insert(BrokerId(1));
        add_topic(&mut model, "t", &[(&[1, 2], 2, 4, &[2, 1])]);
        let decision = handle(
            &mut model,
            Event::PreferredElection {
                partitions: BTreeSet::from([tp("t", 0)]),
                from_admin_znode: true,
            },
        );
        assert_decision(&decision, &["delete /admin/preferred_replica_election"]);
        assert_eq!(decision.reply, None);
    }

    #[test]
    fn auto_rebalance_elects_the_preferred_replica_of_imbalanced_brokers() {
        let mut model = cluster(&[1, 2]);
        add_topic(
            &mut model,
            "t",
            &[(&[1, 2], 2, 1, &[2, 1]), (&[2, 1], 2, 0, &[2, 1])],
        );
        let tick = |imbalance_percentage| Event::AutoRebalanceTick {
            imbalance_percentage,
        };
        // Broker 1 leads 0 of its 1 preferred partitions: 100 % is not above 100 %.
        assert!(handle(&mut model, tick(100)).is_empty());
        let decision = handle(&mut model, tick(10));
        assert_decision(
            &decision,
            &[
                "set t-0 = {1 e2 [2, 1]} if v10",
                "LeaderAndIsr → 1: t-0 {1 e2 [2, 1]} v11",
                "LeaderAndIsr → 2: t-0 {1 e2 [2, 1]} v11",
                "UpdateMetadata → 1: brokers [1, 2]; t-0 {1 e2 [2, 1]} v11",
                "UpdateMetadata → 2: brokers [1, 2]; t-0 {1 e2 [2, 1]} v11",
            ],
        );
        assert!(handle(&mut model, tick(10)).is_empty(), "balanced now");
    }
}
