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
