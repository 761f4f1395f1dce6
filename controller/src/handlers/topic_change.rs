//! Topics created or extended (Kafka's `TopicChange` and `PartitionModifications`): every new
//! partition goes NewPartition → OnlinePartition.
//!
//! Initial state: leader = the first live replica in assignment order, ISR = every live replica
//! (in assignment order), leader epoch 0, stamped with this controller's epoch. The state znodes of
//! a topic are created in one write; LeaderAndIsr with `is_new` goes to the ISR members and
//! UpdateMetadata to every broker.
//!
//! A partition with no live replica gets no state znode and stays New (Kafka logs a failed
//! NewPartition → OnlinePartition transition); it is initialized when one of its replicas'
//! brokers registers ([`super::broker_change`]) or at the next failover.
//!
//! Changes to the replicas of an existing partition (reassignment) are not handled: a changed
//! replica list is ignored, as are topics queued for deletion.

use std::collections::BTreeMap;

use tracing::warn;

use crate::cluster::{ClusterModel, PartitionModel, TopicModel};
use crate::decision::{Decision, RequestBatch, ZkWrite};
use crate::election::initial_leader_and_isr;
use tributary_zk_layout::ZkVersion;

/// Adds new topics and new partitions of known topics to the model and brings them online.
pub fn handle_topics_changed(
    model: &mut ClusterModel,
    topics: BTreeMap<String, TopicModel>,
) -> Decision {
    for (name, topic) in topics {
        if model.is_being_deleted(&name) {
            continue;
        }
        match model.topics.get_mut(&name) {
            None => {
                model.topics.insert(name, topic);
            }
            Some(known) => {
                for (partition, replicas) in topic.assignment {
                    known.assignment.entry(partition).or_insert(replicas);
                }
            }
        }
    }
    let mut decision = Decision::default();
    let mut batch = RequestBatch::default();
    initialize_new_partitions(model, &mut decision, &mut batch);
    batch.finish(model, &mut decision);
    decision
}

/// NewPartition → OnlinePartition for every partition (of a topic not being deleted) that has
/// no state yet and at least one live replica.
pub(crate) fn initialize_new_partitions(
    model: &mut ClusterModel,
    decision: &mut Decision,
    batch: &mut RequestBatch,
) {
    let electable = model.electable_brokers();
    let mut created: BTreeMap<String, BTreeMap<_, _>> = BTreeMap::new();
    for tp in model.active_partitions() {
        if model.partition_states.contains_key(&tp) {
            continue;
        }
        match initial_leader_and_isr(model.replicas(&tp), &electable, model.controller_epoch) {
            Ok(state) => {
                batch.leader_and_isr(state.isr.iter().copied(), &tp, true);
                batch.update_metadata([tp.clone()]);
                created
                    .entry(tp.topic.clone())
                    .or_default()
                    .insert(tp.partition, state.clone());
                model.partition_states.insert(
                    tp,
                    PartitionModel {
                        leader_and_isr: state,
                        zk_version: ZkVersion(0),
                    },
                );
            }
            Err(error) => warn!(partition = %tp, %error, "new partition stays offline"),
        }
    }
    for (topic, states) in created {
        decision
            .zk_writes
            .push(ZkWrite::CreatePartitionStates { topic, states });
    }
}
