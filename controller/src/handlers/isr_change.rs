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

#[cfg(test)]
mod tests {
    use tributary_zk_layout::ZkVersion;

    use super::*;
    use crate::event::Event;
    use crate::handlers::fixtures::*;
    use crate::handlers::handle;

    fn reread(leader: i32, epoch: i32, isr: &[i32], version: i32) -> PartitionModel {
        PartitionModel {
            leader_and_isr: state(leader, epoch, isr),
            zk_version: ZkVersion(version),
            written_at_zxid: None,
        }
    }

    #[test]
    fn a_leader_shrinking_its_isr_reaches_every_broker_without_a_write() {
        let mut model = cluster(&[1, 2, 3]);
        add_topic(
            &mut model,
            "t",
            &[(&[1, 2, 3], 1, 3, &[1, 2, 3]), (&[2, 3], 2, 0, &[2, 3])],
        );
        let partitions = BTreeMap::from([
            (tp("t", 0), reread(1, 3, &[1, 2], 11)),
            // Older than what the model holds: ignored.
            (tp("t", 1), reread(2, 0, &[2], 9)),
            (tp("gone", 0), reread(1, 0, &[1], 1)),
        ]);
        let decision = handle(&mut model, Event::IsrChanged { partitions });
        assert_decision(
            &decision,
            &[
                "UpdateMetadata → 1: brokers [1, 2, 3]; t-0 {1 e3 [1, 2]} v11",
                "UpdateMetadata → 2: brokers [1, 2, 3]; t-0 {1 e3 [1, 2]} v11",
                "UpdateMetadata → 3: brokers [1, 2, 3]; t-0 {1 e3 [1, 2]} v11",
            ],
        );
        assert_eq!(
            model.partition_states[&tp("t", 1)].zk_version,
            ZkVersion(11)
        );
    }

    #[test]
    fn an_election_that_lost_a_race_is_retried_on_the_reread_state() {
        // The model believed [1, 2, 3] in sync; the leader 1 had shrunk the ISR to [1, 3]
        // (version 11) before dying, so the election written at version 10 failed.
        let mut model = cluster(&[2, 3]);
        add_topic(&mut model, "t", &[(&[1, 2, 3], 2, 4, &[2, 3])]);
        model
            .partition_states
            .get_mut(&tp("t", 0))
            .unwrap()
            .zk_version = ZkVersion(11);
        let partitions = BTreeMap::from([(tp("t", 0), reread(1, 3, &[1, 3], 11))]);
        let decision = handle(&mut model, Event::IsrChanged { partitions });
        assert_decision(
            &decision,
            &[
                "set t-0 = {3 e4 [3]} if v11",
                "LeaderAndIsr → 2: t-0 {3 e4 [3]} v12",
                "LeaderAndIsr → 3: t-0 {3 e4 [3]} v12",
                "UpdateMetadata → 2: brokers [2, 3]; t-0 {3 e4 [3]} v12 offline [1]",
                "UpdateMetadata → 3: brokers [2, 3]; t-0 {3 e4 [3]} v12 offline [1]",
            ],
        );
    }
}
