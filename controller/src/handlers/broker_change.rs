//! `/brokers/ids` changed: brokers joined, died or bounced (Kafka's `onBrokerStartup` and
//! `onBrokerFailure`).
//!
//! - **Death**: the broker leaves the model; every partition it led gets an offline election
//!   (first replica live and in ISR, in assignment order; unclean if the topic allows it); it
//!   leaves every other ISR (never emptying one); a partition left without an electable replica
//!   gets leader -1 and keeps its last ISR member. Each change bumps the leader epoch, is written
//!   conditionally and sent as LeaderAndIsr to the partition's registered replicas; UpdateMetadata
//!   goes to every broker even when no partition changed (they learn the broker is gone). Its
//!   pending topic deletions become ineligible until it returns.
//! - **Join**: UpdateMetadata to every broker, carrying all partitions to the new one;
//!   LeaderAndIsr (current state, so it follows) for every partition it hosts; leaderless
//!   partitions it makes electable get a leader; New partitions it makes placeable are created;
//!   its pending topic deletions resume. Leadership does not move back (that is the preferred
//!   election's job).
//! - **Bounce** (same id, larger broker epoch): death, then join.
//!
//! A registration with a *smaller* epoch than the known one is a stale read and is ignored.

use std::collections::{BTreeMap, BTreeSet};

use tributary_zk_layout::BrokerId;

use crate::cluster::{ClusterModel, LiveBroker, TopicPartition};
use crate::decision::{Decision, RequestBatch};
use crate::election::{ElectionInput, offline_election, remove_replicas_from_isr};
use crate::handlers::{topic_change, topic_deletion};

/// Compares `live` with the model's registered brokers and handles deaths, then joins.
pub fn handle_brokers_changed(
    model: &mut ClusterModel,
    live: BTreeMap<BrokerId, LiveBroker>,
) -> Decision {
    let mut dead = BTreeSet::new();
    let mut joined = BTreeSet::new();
    for (id, known) in &model.live_brokers {
        match live.get(id) {
            None => {
                dead.insert(*id);
            }
            Some(now) if now.epoch > known.epoch => {
                dead.insert(*id);
                joined.insert(*id);
            }
            Some(_) => {}
        }
    }
    joined.extend(
        live.keys()
            .filter(|id| !model.live_brokers.contains_key(id))
            .copied(),
    );
    let mut decision = Decision::default();
    if !dead.is_empty() {
        decision.append(on_brokers_failed(model, &dead));
    }
    if !joined.is_empty() {
        for id in &joined {
            model.live_brokers.insert(*id, live[id].clone());
        }
        decision.append(on_brokers_joined(model, &joined));
    }
    decision
}

/// The brokers in `dead` are gone: they leave the model, then every partition is repaired.
pub fn on_brokers_failed(model: &mut ClusterModel, dead: &BTreeSet<BrokerId>) -> Decision {
    for id in dead {
        model.live_brokers.remove(id);
        model.shutting_down.remove(id);
        for deletion in model.topics_to_delete.values_mut() {
            deletion.started.remove(id);
        }
    }
    let mut decision = Decision::default();
    let mut batch = RequestBatch::default();
    batch.update_metadata([]);
    repair_partitions(model, &model.active_partitions(), &mut decision, &mut batch);
    batch.finish(model, &mut decision);
    decision
}

/// The brokers in `joined` are registered in the model: tell them everything and bring their
/// replicas online.
pub fn on_brokers_joined(model: &mut ClusterModel, joined: &BTreeSet<BrokerId>) -> Decision {
    let mut decision = Decision::default();
    let mut batch = RequestBatch::default();
    for id in joined {
        batch.full_metadata_to(*id);
    }
    let active = model.active_partitions();
    for tp in &active {
        let hosted: Vec<BrokerId> = model
            .replicas(tp)
            .iter()
            .copied()
            .filter(|b| joined.contains(b))
            .collect();
        batch.leader_and_isr(hosted, tp, false);
    }
    repair_partitions(model, &active, &mut decision, &mut batch);
    topic_change::initialize_new_partitions(model, &mut decision, &mut batch);
    topic_deletion::resume_deletions(model, &mut decision, &mut batch);
    batch.finish(model, &mut decision);
    decision
}

/// Brings each partition in `tps` in line with the registered brokers (Kafka's OfflinePartition
/// → OnlinePartition plus the OfflineReplica ISR shrink, in one write per partition):
///
/// - leader unregistered or -1 → offline election; if nothing is electable, leader -1 and the
///   unregistered members leave the ISR (the last one stays);
/// - leader registered → unregistered members leave the ISR (the last one stays).
///
/// Partitions needing no change are left alone, so this is idempotent. Partitions without a
/// state (New) are the job of [`topic_change::initialize_new_partitions`].
pub(crate) fn repair_partitions(
    model: &mut ClusterModel,
    tps: &[TopicPartition],
    decision: &mut Decision,
    batch: &mut RequestBatch,
) {
    let electable = model.electable_brokers();
    let controller_epoch = model.controller_epoch;
    for tp in tps {
        let Some(state) = model.partition_states.get(tp) else {
            continue;
        };
        let current = &state.leader_and_isr;
        let mut gone: BTreeSet<BrokerId> = current
            .isr
            .iter()
            .copied()
            .filter(|b| !model.is_registered(*b))
            .collect();
        let next = if model.is_registered(current.leader) {
            remove_replicas_from_isr(current, &gone, controller_epoch)
        } else {
            let input = ElectionInput {
                assignment: model.replicas(tp),
                current,
                live_brokers: &electable,
                controller_epoch,
            };
            match offline_election(input, model.unclean_allowed(&tp.topic)) {
                Ok(elected) => Some(elected.leader_and_isr),
                Err(_) => {
                    if current.leader != BrokerId::NONE {
                        gone.insert(current.leader);
                    }
                    remove_replicas_from_isr(current, &gone, controller_epoch)
                }
            }
        };
        if let Some(next) = next {
            decision.set_partition_state(model, tp, next);
            batch.partition_changed(model, tp);
        }
    }
}
