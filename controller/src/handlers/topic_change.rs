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
                        written_at_zxid: None,
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

#[cfg(test)]
mod tests {
    use tributary_zk_layout::{BrokerId, PartitionId};

    use super::*;
    use crate::event::Event;
    use crate::handlers::fixtures::*;
    use crate::handlers::handle;
    use crate::placement::assign_replicas;

    #[test]
    fn six_partitions_rf3_on_three_brokers_lead_on_first_replicas_with_full_isr() {
        let mut model = cluster(&[1, 2, 3]);
        let assignment = assign_replicas(6, 3, &ids(&[1, 2, 3])).unwrap();
        let topics = BTreeMap::from([(
            "orders".to_string(),
            TopicModel {
                assignment,
                topic_id: "id".into(),
            },
        )]);
        let decision = handle(&mut model, Event::TopicsChanged { topics });

        let isr = ["[1, 2, 3]", "[2, 3, 1]", "[3, 1, 2]"];
        let leaders = (0..6).map(|p| format!("{} e0 {}", p % 3 + 1, isr[p % 3]));
        let states: Vec<String> = leaders.collect();
        let mut expected = vec![format!(
            "create orders: {}",
            states
                .iter()
                .enumerate()
                .map(|(p, s)| format!("{p} {{{s}}}"))
                .collect::<Vec<_>>()
                .join(", ")
        )];
        let partitions = |suffix: &str| {
            states
                .iter()
                .enumerate()
                .map(|(p, s)| format!("orders-{p} {{{s}}} v0{suffix}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        for to in 1..=3 {
            expected.push(format!("LeaderAndIsr → {to}: {}", partitions(" new")));
        }
        for to in 1..=3 {
            expected.push(format!(
                "UpdateMetadata → {to}: brokers [1, 2, 3]; {}",
                partitions("")
            ));
        }
        let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
        assert_decision(&decision, &expected);
        let first = &model.partition_states[&tp("orders", 0)];
        assert_eq!(first.leader_and_isr, state(1, 0, &[1, 2, 3]));
        assert_eq!(first.zk_version, ZkVersion(0));
    }

    #[test]
    fn dead_replicas_are_left_out_and_a_partition_without_live_replica_stays_new() {
        let mut model = cluster(&[1, 2]);
        let topics = BTreeMap::from([("t".to_string(), topic(&[&[3, 1, 2], &[3]]))]);
        let decision = handle(&mut model, Event::TopicsChanged { topics });
        assert_decision(
            &decision,
            &[
                "create t: 0 {1 e0 [1, 2]}",
                "LeaderAndIsr → 1: t-0 {1 e0 [1, 2]} v0 new",
                "LeaderAndIsr → 2: t-0 {1 e0 [1, 2]} v0 new",
                "UpdateMetadata → 1: brokers [1, 2]; t-0 {1 e0 [1, 2]} v0 offline [3]",
                "UpdateMetadata → 2: brokers [1, 2]; t-0 {1 e0 [1, 2]} v0 offline [3]",
            ],
        );
        assert!(!model.partition_states.contains_key(&tp("t", 1)));

        // Broker 3 registers: the New partition comes online with it as leader.
        let decision = handle(
            &mut model,
            Event::BrokersChanged {
                live: registrations(&[1, 2, 3]),
            },
        );
        assert_decision(
            &decision,
            &[
                "create t: 1 {3 e0 [3]}",
                "LeaderAndIsr → 3: t-0 {1 e0 [1, 2]} v0, t-1 {3 e0 [3]} v0 new",
                "UpdateMetadata → 1: brokers [1, 2, 3]; t-0 {1 e0 [1, 2]} v0, t-1 {3 e0 [3]} v0",
                "UpdateMetadata → 2: brokers [1, 2, 3]; t-0 {1 e0 [1, 2]} v0, t-1 {3 e0 [3]} v0",
                "UpdateMetadata → 3: brokers [1, 2, 3]; t-0 {1 e0 [1, 2]} v0, t-1 {3 e0 [3]} v0",
            ],
        );
    }

    #[test]
    fn only_added_partitions_of_a_known_topic_are_created() {
        let mut model = cluster(&[1, 2]);
        add_topic(&mut model, "t", &[(&[1, 2], 1, 4, &[1, 2])]);
        let topics = BTreeMap::from([("t".to_string(), topic(&[&[2, 1], &[2, 1]]))]);
        let decision = handle(&mut model, Event::TopicsChanged { topics });
        assert_decision(
            &decision,
            &[
                "create t: 1 {2 e0 [2, 1]}",
                "LeaderAndIsr → 1: t-1 {2 e0 [2, 1]} v0 new",
                "LeaderAndIsr → 2: t-1 {2 e0 [2, 1]} v0 new",
                "UpdateMetadata → 1: brokers [1, 2]; t-1 {2 e0 [2, 1]} v0",
                "UpdateMetadata → 2: brokers [1, 2]; t-1 {2 e0 [2, 1]} v0",
            ],
        );
        // The existing partition's replicas are not reassigned.
        assert_eq!(
            model.topics["t"].assignment[&PartitionId(0)],
            [BrokerId(1), BrokerId(2)]
        );
    }
}
