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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::handlers::fixtures::*;
    use crate::handlers::handle;

    fn shutdown(model: &mut ClusterModel, broker: i32, epoch: i64) -> Decision {
        handle(
            model,
            Event::ControlledShutdown {
                broker: BrokerId(broker),
                broker_epoch: BrokerEpoch(epoch),
            },
        )
    }

    #[test]
    fn leadership_moves_away_followers_stop_and_nothing_remains() {
        let mut model = cluster(&[1, 2, 3]);
        add_topic(
            &mut model,
            "t",
            &[
                (&[1, 2, 3], 1, 3, &[1, 2, 3]),
                (&[2, 1, 3], 2, 0, &[2, 1, 3]),
                (&[1], 1, 0, &[1]),
            ],
        );
        let decision = shutdown(&mut model, 1, 101);
        assert_decision(
            &decision,
            &[
                "set t-0 = {2 e4 [2, 3]} if v10",
                "set t-1 = {2 e1 [2, 3]} if v11",
                "LeaderAndIsr → 1: t-0 {2 e4 [2, 3]} v11",
                "LeaderAndIsr → 2: t-0 {2 e4 [2, 3]} v11, t-1 {2 e1 [2, 3]} v12",
                "LeaderAndIsr → 3: t-0 {2 e4 [2, 3]} v11, t-1 {2 e1 [2, 3]} v12",
                "UpdateMetadata → 1: brokers [1, 2, 3]; t-0 {2 e4 [2, 3]} v11, t-1 {2 e1 [2, 3]} v12",
                "UpdateMetadata → 2: brokers [1, 2, 3]; t-0 {2 e4 [2, 3]} v11, t-1 {2 e1 [2, 3]} v12",
                "UpdateMetadata → 3: brokers [1, 2, 3]; t-0 {2 e4 [2, 3]} v11, t-1 {2 e1 [2, 3]} v12",
                "StopReplica → 1: t-1",
            ],
        );
        // The single-replica partition stays led by 1 and is not reported.
        assert_eq!(decision.reply, Some(Reply::ControlledShutdown(Ok(vec![]))));
        assert!(model.shutting_down.contains(&BrokerId(1)));

        // While shutting down, 1 is not elected even when it is the only live ISR member left.
        let decision = handle(
            &mut model,
            Event::BrokersChanged {
                live: registrations(&[1, 3]),
            },
        );
        assert_eq!(
            describe(&decision)[..2],
            ["set t-0 = {3 e5 [3]} if v11", "set t-1 = {3 e2 [3]} if v12"]
        );
    }

    #[test]
    fn a_partition_with_no_other_eligible_replica_remains() {
        let mut model = cluster(&[1, 2]);
        add_topic(&mut model, "t", &[(&[1, 2], 1, 3, &[1])]);
        let decision = shutdown(&mut model, 1, 101);
        assert_decision(&decision, &[]);
        assert_eq!(
            decision.reply,
            Some(Reply::ControlledShutdown(Ok(vec![tp("t", 0)])))
        );
    }

    #[test]
    fn a_stale_broker_epoch_or_an_unknown_broker_is_refused() {
        let mut model = cluster(&[1, 2]);
        add_topic(&mut model, "t", &[(&[1, 2], 1, 3, &[1, 2])]);
        let before = model.clone();
        let decision = shutdown(&mut model, 1, 100);
        assert_decision(&decision, &[]);
        assert_eq!(
            decision.reply,
            Some(Reply::ControlledShutdown(Err(
                ControlledShutdownError::StaleBrokerEpoch {
                    broker: BrokerId(1),
                    requested: BrokerEpoch(100),
                    registered: BrokerEpoch(101),
                }
            )))
        );
        let decision = shutdown(&mut model, 9, 1);
        assert_eq!(
            decision.reply,
            Some(Reply::ControlledShutdown(Err(
                ControlledShutdownError::BrokerNotRegistered {
                    broker: BrokerId(9)
                }
            )))
        );
        assert_eq!(model, before);
        // A newer epoch than the registration the controller read is accepted (KAFKA-9839).
        let decision = shutdown(&mut model, 1, 900);
        assert_eq!(describe(&decision)[0], "set t-0 = {2 e4 [2]} if v10");
    }
}
