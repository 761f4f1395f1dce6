//! Controller failover (Kafka's `onControllerFailover`, after the loop loaded the model).
//!
//! In order:
//! 1. UpdateMetadata with every partition to every registered broker, so they know the broker
//!    list before any LeaderAndIsr;
//! 2. replicas on unregistered brokers go offline and leaderless partitions get a leader
//!    (the same repair as after a broker change: offline election, ISR shrink, leader -1 when
//!    nothing is electable); New partitions with a live replica are created;
//! 3. LeaderAndIsr for every partition (not being deleted) to its registered replicas, and
//!    UpdateMetadata for the partitions step 2 changed;
//! 4. pending topic deletions resume (StopReplica(delete = true) to registered replica brokers).

use crate::cluster::ClusterModel;
use crate::decision::{Decision, RequestBatch};
use crate::handlers::broker_change::repair_partitions;
use crate::handlers::{topic_change, topic_deletion};

/// Takes over the cluster described by `model`.
pub fn handle_startup(model: &mut ClusterModel) -> Decision {
    let mut decision = Decision::default();
    let mut announce = RequestBatch::default();
    for &broker in model.live_brokers.keys() {
        announce.full_metadata_to(broker);
    }
    announce.finish(model, &mut decision);

    let mut batch = RequestBatch::default();
    let active = model.active_partitions();
    repair_partitions(model, &active, &mut decision, &mut batch);
    topic_change::initialize_new_partitions(model, &mut decision, &mut batch);
    for tp in &active {
        let registered: Vec<_> = model
            .replicas(tp)
            .iter()
            .copied()
            .filter(|b| model.is_registered(*b))
            .collect();
        batch.leader_and_isr(registered, tp, false);
    }
    topic_deletion::resume_deletions(model, &mut decision, &mut batch);
    batch.finish(model, &mut decision);
    decision
}
