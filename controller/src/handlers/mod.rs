//! The controller's event handlers: `(model, event) → decision`, one file per event family.
//!
//! Each handler mutates the [`ClusterModel`] to the state the cluster will be in once its
//! [`Decision`] is applied, and returns that decision; none does I/O. [`handle`] dispatches.
//!
//! | event | handler | Kafka |
//! |---|---|---|
//! | [`Event::Startup`] | [`startup::handle_startup`] | `onControllerFailover` |
//! | [`Event::BrokersChanged`] | [`broker_change::handle_brokers_changed`] | `BrokerChange`: `onBrokerStartup`, `onBrokerFailure` |
//! | [`Event::TopicsChanged`] | [`topic_change::handle_topics_changed`] | `TopicChange`, `PartitionModifications` |
//! | [`Event::TopicDeletionRequested`], [`Event::ReplicaDeletionDone`] | [`topic_deletion`] | `TopicDeletion`, `TopicDeletionStopReplicaResponseReceived` |
//! | [`Event::IsrChanged`] | [`isr_change::handle_isr_changed`] | `IsrChangeNotification` |
//! | [`Event::PreferredElection`], [`Event::AutoRebalanceTick`] | [`preferred_leader`] | `ReplicaLeaderElection`, `AutoPreferredReplicaLeaderElection` |
//! | [`Event::ControlledShutdown`] | [`controlled_shutdown::handle_controlled_shutdown`] | `ControlledShutdown` |
//!
//! Not handled (yet): partition reassignment, log dir failures, topic config changes (the loop
//! updates [`ClusterModel::unclean_overrides`] directly), `delete.topic.enable = false`.

pub mod broker_change;
pub mod controlled_shutdown;
pub mod isr_change;
pub mod preferred_leader;
pub mod startup;
pub mod topic_change;
pub mod topic_deletion;

use crate::cluster::ClusterModel;
use crate::decision::Decision;
use crate::event::Event;

/// Handles one event: the only entry point the controller loop needs.
pub fn handle(model: &mut ClusterModel, event: Event) -> Decision {
    let decision = match event {
        Event::Startup => startup::handle_startup(model),
        Event::BrokersChanged { live } => broker_change::handle_brokers_changed(model, live),
        Event::TopicsChanged { topics } => topic_change::handle_topics_changed(model, topics),
        Event::TopicDeletionRequested { topics } => {
            topic_deletion::handle_deletion_requested(model, topics)
        }
        Event::ReplicaDeletionDone { topic, broker } => {
            topic_deletion::handle_replica_deletion_done(model, &topic, broker)
        }
        Event::IsrChanged { partitions } => isr_change::handle_isr_changed(model, partitions),
        Event::PreferredElection {
            partitions,
            from_admin_znode,
        } => preferred_leader::handle_preferred_election(model, partitions, from_admin_znode),
        Event::AutoRebalanceTick {
            imbalance_percentage,
        } => preferred_leader::handle_auto_rebalance(model, imbalance_percentage),
        Event::ControlledShutdown {
            broker,
            broker_epoch,
        } => controlled_shutdown::handle_controlled_shutdown(model, broker, broker_epoch),
    };
    model.debug_check_invariants();
    decision
}
