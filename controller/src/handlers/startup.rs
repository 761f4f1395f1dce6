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

#[cfg(test)]
mod tests {
    use crate::cluster::TopicDeletion;
    use crate::event::Event;
    use crate::handlers::fixtures::*;
    use crate::handlers::handle;

    #[test]
    fn failover_announces_first_then_elects_and_sends_every_partition_to_its_replicas() {
        // Broker 3 died while there was no controller.
        let mut model = cluster(&[1, 2]);
        add_topic(
            &mut model,
            "t",
            &[(&[3, 1, 2], 3, 2, &[3, 1]), (&[1, 2], 1, 0, &[1, 2])],
        );
        model.topics.insert("n".into(), topic(&[&[2]]));
        add_topic(&mut model, "d", &[(&[2], 2, 0, &[2])]);
        model
            .topics_to_delete
            .insert("d".into(), TopicDeletion::default());

        let decision = handle(&mut model, Event::Startup);
        let announce = "brokers [1, 2]; t-0 {3 e2 [3, 1]} v10 offline [3], \
                        t-1 {1 e0 [1, 2]} v11, d-0 deleted";
        assert_decision(
            &decision,
            &[
                "set t-0 = {1 e3 [1]} if v10",
                "create n: 0 {2 e0 [2]}",
                &format!("UpdateMetadata → 1: {announce}"),
                &format!("UpdateMetadata → 2: {announce}"),
                "LeaderAndIsr → 1: t-0 {1 e3 [1]} v11, t-1 {1 e0 [1, 2]} v11",
                "LeaderAndIsr → 2: n-0 {2 e0 [2]} v0 new, t-0 {1 e3 [1]} v11, \
                 t-1 {1 e0 [1, 2]} v11",
                "UpdateMetadata → 1: brokers [1, 2]; n-0 {2 e0 [2]} v0, \
                 t-0 {1 e3 [1]} v11 offline [3]",
                "UpdateMetadata → 2: brokers [1, 2]; n-0 {2 e0 [2]} v0, \
                 t-0 {1 e3 [1]} v11 offline [3]",
                "StopReplica(delete) → 2: d-0",
            ],
        );
    }
}
