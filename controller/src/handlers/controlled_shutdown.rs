//! ControlledShutdown from a stopping broker (Kafka's `doControlledShutdown`).
//!
//! The broker joins the shutting-down set (registered, never elected). For each partition with
//! more than one replica that it hosts:
//! - it leads → controlled-shutdown election (first replica live, in ISR, not shutting down;
//!   ISR minus the shutting-down brokers); LeaderAndIsr to the registered replicas (it included:
//!   it becomes a follower and refuses produce from now on, like Kafka's
//!   `liveOrShuttingDownReplicas`);
//! - it follows → StopReplica(delete = false) to it, and it leaves the ISR (never emptying it;
//!   leader epoch bumped); LeaderAndIsr to the other registered replicas.
//!
//! The reply lists the partitions (RF > 1) it still leads; the broker retries while that is not
//! empty. Single-replica partitions are not moved and not reported. A request carrying an older
//! broker epoch than the registration is refused (STALE_BROKER_EPOCH); so is one from an
//! unregistered broker.

use std::collections::BTreeSet;

use thiserror::Error;
use tributary_zk_layout::{BrokerEpoch, BrokerId};

use crate::cluster::{ClusterModel, TopicPartition};
use crate::decision::{Decision, Reply, RequestBatch};
use crate::election::{ElectionInput, controlled_shutdown_election, remove_replicas_from_isr};

/// Why a ControlledShutdown request was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ControlledShutdownError {
    /// The broker is not in `/brokers/ids` (BROKER_NOT_AVAILABLE).
    #[error("broker {broker} is not registered")]
    BrokerNotRegistered {
        /// The requesting broker.
        broker: BrokerId,
    },
    /// The request comes from an older incarnation of the broker (STALE_BROKER_EPOCH).
    #[error(
        "broker {broker} sent broker epoch {requested}, older than its registration's {registered}"
    )]
    StaleBrokerEpoch {
        /// The requesting broker.
        broker: BrokerId,
        /// The epoch in the request.
        requested: BrokerEpoch,
        /// The epoch of the current registration.
        registered: BrokerEpoch,
    },
}

/// Moves `broker`'s leaderships and follower replicas away and replies with what it still leads.
pub fn handle_controlled_shutdown(
    model: &mut ClusterModel,
    broker: BrokerId,
    broker_epoch: BrokerEpoch,
) -> Decision {
    let refuse = |error| Decision {
        reply: Some(Reply::ControlledShutdown(Err(error))),
        ..Decision::default()
    };
    let Some(registration) = model.live_brokers.get(&broker) else {
        return refuse(ControlledShutdownError::BrokerNotRegistered { broker });
    };
    if broker_epoch < registration.epoch {
        return refuse(ControlledShutdownError::StaleBrokerEpoch {
            broker,
            requested: broker_epoch,
            registered: registration.epoch,
        });
    }
    model.shutting_down.insert(broker);
    let electable = model.electable_brokers();
    let controller_epoch = model.controller_epoch;
    let mut decision = Decision::default();
    let mut batch = RequestBatch::default();
    let hosted: Vec<TopicPartition> = model
        .active_partitions()
        .into_iter()
        .filter(|tp| {
            let replicas = model.replicas(tp);
            replicas.len() > 1 && replicas.contains(&broker)
        })
        .collect();
    for tp in &hosted {
        let Some(state) = model.partition_states.get(tp) else {
            continue;
        };
        let current = &state.leader_and_isr;
        if current.leader == broker {
            let input = ElectionInput {
                assignment: model.replicas(tp),
                current,
                live_brokers: &electable,
                controller_epoch,
            };
            if let Ok(elected) = controlled_shutdown_election(input, &model.shutting_down) {
                decision.set_partition_state(model, tp, elected.leader_and_isr);
                batch.partition_changed(model, tp);
            }
        } else {
            batch.stop_replica(broker, tp, false);
            let leaving = BTreeSet::from([broker]);
            if let Some(next) = remove_replicas_from_isr(current, &leaving, controller_epoch) {
                decision.set_partition_state(model, tp, next);
                let others: Vec<BrokerId> = model
                    .replicas(tp)
                    .iter()
                    .copied()
                    .filter(|b| *b != broker && model.is_registered(*b))
                    .collect();
                batch.leader_and_isr(others, tp, false);
                batch.update_metadata([tp.clone()]);
            }
        }
    }
    batch.finish(model, &mut decision);
    let remaining = hosted
        .into_iter()
        .filter(|tp| {
            model
                .partition_states
                .get(tp)
                .is_some_and(|s| s.leader_and_isr.leader == broker)
        })
        .collect();
    decision.reply = Some(Reply::ControlledShutdown(Ok(remaining)));
    decision
}
