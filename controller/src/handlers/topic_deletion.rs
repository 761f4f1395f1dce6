//! Topic deletion (Kafka's `TopicDeletionManager`, `delete.topic.enable = true`).
//!
//! 1. `/admin/delete_topics/<t>` appears: the topic is queued; UpdateMetadata to every broker
//!    marks its partitions deleted (Kafka's leader -2), so clients stop seeing it; it is left
//!    out of elections and LeaderAndIsr from now on.
//! 2. Every registered broker hosting replicas of it gets StopReplica(delete = true) for them
//!    (ReplicaDeletionStarted). A broker that is down is ineligible: deletion waits for it and
//!    resumes when it registers again (also when it dies after the request was sent).
//! 3. [`Event::ReplicaDeletionDone`](crate::event::Event::ReplicaDeletionDone) from every
//!    replica broker: `/brokers/topics/<t>` (recursively), `/config/topics/<t>` and
//!    `/admin/delete_topics/<t>` are deleted and the topic leaves the model.
//!
//! A request for an unknown topic only removes its `/admin/delete_topics/<t>` node.

use std::collections::BTreeSet;

use tributary_zk_layout::BrokerId;

use crate::cluster::{ClusterModel, TopicDeletion, TopicPartition};
use crate::decision::{Decision, RequestBatch, ZkWrite};

/// Queues `topics` for deletion and starts deleting their replicas.
pub fn handle_deletion_requested(model: &mut ClusterModel, topics: BTreeSet<String>) -> Decision {
    let mut decision = Decision::default();
    let mut batch = RequestBatch::default();
    for topic in topics {
        let Some(known) = model.topics.get(&topic) else {
            decision
                .zk_writes
                .push(ZkWrite::DeleteAdminDeleteTopic { topic });
            continue;
        };
        if model.is_being_deleted(&topic) {
            continue;
        }
        let partitions: Vec<TopicPartition> = known
            .assignment
            .keys()
            .map(|&p| TopicPartition::new(topic.clone(), p))
            .collect();
        batch.update_metadata(partitions);
        model
            .topics_to_delete
            .insert(topic, TopicDeletion::default());
    }
    resume_deletions(model, &mut decision, &mut batch);
    batch.finish(model, &mut decision);
    decision
}

/// `broker` deleted its replicas of `topic`; completes the deletion when it was the last one.
pub fn handle_replica_deletion_done(
    model: &mut ClusterModel,
    topic: &str,
    broker: BrokerId,
) -> Decision {
    let Some(deletion) = model.topics_to_delete.get_mut(topic) else {
        return Decision::default();
    };
    deletion.started.remove(&broker);
    deletion.done.insert(broker);
    let mut decision = Decision::default();
    let mut batch = RequestBatch::default();
    resume_deletions(model, &mut decision, &mut batch);
    batch.finish(model, &mut decision);
    decision
}

/// For every queued topic: completes it if every replica broker confirmed, else sends
/// StopReplica(delete = true) to the registered replica brokers not yet asked.
pub(crate) fn resume_deletions(
    model: &mut ClusterModel,
    decision: &mut Decision,
    batch: &mut RequestBatch,
) {
    let queued: Vec<String> = model.topics_to_delete.keys().cloned().collect();
    for topic in queued {
        let assignment = &model.topics[&topic].assignment;
        let replica_brokers: BTreeSet<BrokerId> = assignment.values().flatten().copied().collect();
        let deletion = &model.topics_to_delete[&topic];
        let pending: Vec<BrokerId> = replica_brokers
            .difference(&deletion.done)
            .copied()
            .collect();
        if pending.is_empty() {
            complete_deletion(model, topic, decision);
            continue;
        }
        let to_ask: Vec<BrokerId> = pending
            .into_iter()
            .filter(|b| model.is_registered(*b) && !deletion.started.contains(b))
            .collect();
        for broker in &to_ask {
            for (&partition, replicas) in assignment {
                if replicas.contains(broker) {
                    batch.stop_replica(
                        *broker,
                        &TopicPartition::new(topic.clone(), partition),
                        true,
                    );
                }
            }
        }
        if let Some(deletion) = model.topics_to_delete.get_mut(&topic) {
            deletion.started.extend(to_ask);
        }
    }
}

fn complete_deletion(model: &mut ClusterModel, topic: String, decision: &mut Decision) {
    model.topics.remove(&topic);
    model.topics_to_delete.remove(&topic);
    model.unclean_overrides.remove(&topic);
    model.partition_states.retain(|tp, _| tp.topic != topic);
    decision.zk_writes.push(ZkWrite::DeleteTopicZnodes {
        topic: topic.clone(),
    });
    decision
        .zk_writes
        .push(ZkWrite::DeleteAdminDeleteTopic { topic });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::handlers::fixtures::*;
    use crate::handlers::handle;

    fn done(model: &mut ClusterModel, broker: i32) -> Decision {
        handle(
            model,
            Event::ReplicaDeletionDone {
                topic: "t".into(),
                broker: BrokerId(broker),
            },
        )
    }

    #[test]
    fn deletion_waits_for_a_dead_replica_broker_then_completes() {
        let mut model = cluster(&[1, 2]);
        add_topic(
            &mut model,
            "t",
            &[(&[1, 2], 1, 0, &[1, 2]), (&[2, 3], 2, 1, &[2])],
        );
        add_topic(&mut model, "keep", &[(&[3, 1], 1, 2, &[1])]);
        let decision = handle(
            &mut model,
            Event::TopicDeletionRequested {
                topics: BTreeSet::from(["t".to_string(), "unknown".to_string()]),
            },
        );
        assert_decision(
            &decision,
            &[
                "delete /admin/delete_topics/unknown",
                "UpdateMetadata → 1: brokers [1, 2]; t-0 deleted, t-1 deleted",
                "UpdateMetadata → 2: brokers [1, 2]; t-0 deleted, t-1 deleted",
                "StopReplica(delete) → 1: t-0",
                "StopReplica(delete) → 2: t-0, t-1",
            ],
        );
        assert!(done(&mut model, 1).is_empty());
        assert!(done(&mut model, 2).is_empty());
        assert!(model.topics.contains_key("t"), "waits for broker 3");

        // Broker 3 returns: no LeaderAndIsr for the deleted topic, deletion resumes on it.
        let decision = handle(
            &mut model,
            Event::BrokersChanged {
                live: registrations(&[1, 2, 3]),
            },
        );
        assert_decision(
            &decision,
            &[
                "LeaderAndIsr → 3: keep-0 {1 e2 [1]} v10",
                "UpdateMetadata → 1: brokers [1, 2, 3]; keep-0 {1 e2 [1]} v10",
                "UpdateMetadata → 2: brokers [1, 2, 3]; keep-0 {1 e2 [1]} v10",
                "UpdateMetadata → 3: brokers [1, 2, 3]; keep-0 {1 e2 [1]} v10, \
                 t-0 deleted, t-1 deleted",
                "StopReplica(delete) → 3: t-1",
            ],
        );

        let decision = done(&mut model, 3);
        assert_decision(
            &decision,
            &["delete topic t", "delete /admin/delete_topics/t"],
        );
        assert!(!model.topics.contains_key("t"));
        assert!(!model.topics_to_delete.contains_key("t"));
        assert!(model.partition_states.keys().all(|tp| tp.topic == "keep"));
    }

    #[test]
    fn a_replica_broker_dying_after_the_request_is_asked_again_when_it_returns() {
        let mut model = cluster(&[1, 2]);
        add_topic(&mut model, "t", &[(&[1, 2], 1, 0, &[1, 2])]);
        handle(
            &mut model,
            Event::TopicDeletionRequested {
                topics: BTreeSet::from(["t".to_string()]),
            },
        );
        // 2 dies before answering; the deleted topic gets no election.
        let decision = handle(
            &mut model,
            Event::BrokersChanged {
                live: registrations(&[1]),
            },
        );
        assert_decision(&decision, &["UpdateMetadata → 1: brokers [1]"]);
        assert!(done(&mut model, 1).is_empty());
        let decision = handle(
            &mut model,
            Event::BrokersChanged {
                live: registrations(&[1, 2]),
            },
        );
        assert_decision(
            &decision,
            &[
                "UpdateMetadata → 1: brokers [1, 2]",
                "UpdateMetadata → 2: brokers [1, 2]; t-0 deleted",
                "StopReplica(delete) → 2: t-0",
            ],
        );
        assert_decision(
            &done(&mut model, 2),
            &["delete topic t", "delete /admin/delete_topics/t"],
        );
    }
}
