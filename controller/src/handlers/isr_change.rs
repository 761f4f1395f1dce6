//! Partition states re-read from ZooKeeper (Kafka's `IsrChangeNotification`): leaders changed
//! their ISR (no leader epoch bump), or a conditional write of this controller lost a race.
//!
//! Each re-read state replaces the model's unless it is older (smaller znode version: the read
//! happened before a write the model already holds). Adopted partitions go to every broker in
//! UpdateMetadata, and are then repaired like after a broker change, so an election that lost a
//! race with a leader's ISR write is retried on the fresh state. Partitions of unknown topics or
//! topics being deleted are ignored.

use std::collections::BTreeMap;

use crate::cluster::{ClusterModel, PartitionModel, TopicPartition};
use crate::decision::{Decision, RequestBatch};
use crate::handlers::broker_change::repair_partitions;

/// Adopts the re-read states and tells every broker.
pub fn handle_isr_changed(
    model: &mut ClusterModel,
    partitions: BTreeMap<TopicPartition, PartitionModel>,
) -> Decision {
    let mut decision = Decision::default();
    let mut batch = RequestBatch::default();
    let mut adopted = Vec::new();
    for (tp, reread) in partitions {
        if model.is_being_deleted(&tp.topic) || model.replicas(&tp).is_empty() {
            continue;
        }
        if model
            .partition_states
            .get(&tp)
            .is_some_and(|known| reread.zk_version < known.zk_version)
        {
            continue;
        }
        model.partition_states.insert(tp.clone(), reread);
        batch.update_metadata([tp.clone()]);
        adopted.push(tp);
    }
    repair_partitions(model, &adopted, &mut decision, &mut batch);
    batch.finish(model, &mut decision);
    decision
}
