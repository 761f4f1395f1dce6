//! Fencing of the controller's requests (LeaderAndIsr, UpdateMetadata, StopReplica), as pure
//! decisions. The rules are those of the header of `proto/tributary/v1/control.proto`:
//!
//! * a request whose controller epoch is older than the highest this broker has accepted comes
//!   from a deposed controller: refused whole (STALE_CONTROLLER_EPOCH), nothing applied;
//! * a request whose broker epoch is older than this broker's current registration was meant
//!   for a previous incarnation of it: refused whole (STALE_BROKER_EPOCH). A newer one is
//!   accepted (the broker may not have noticed its own re-registration yet), and so is -1
//!   ("not set");
//! * per partition in LeaderAndIsr: a leader epoch not greater than the one the hosted
//!   partition has is an old or repeated decision: that partition is refused
//!   (STALE_CONTROLLER_EPOCH, Kafka's code for it) and left unchanged. A partition not hosted
//!   yet accepts any leader epoch.
//!
//! The Control service holds the replica manager's control lock while it checks and applies,
//! so a check and what it admits are not interleaved with another request.

use tributary_zk_layout::{BrokerEpoch, BrokerId, ControllerEpoch, LeaderEpoch};

use crate::log::TopicPartition;

/// The broker epoch a controller sends when it does not know the recipient's.
pub const BROKER_EPOCH_NOT_SET: BrokerEpoch = BrokerEpoch(-1);

/// Who sent a control request and for which incarnation of this broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHeader {
    /// The controller's broker id.
    pub controller_id: BrokerId,
    /// The controller's epoch.
    pub controller_epoch: ControllerEpoch,
    /// This broker's epoch as the controller knows it ([`BROKER_EPOCH_NOT_SET`] if unknown).
    pub broker_epoch: BrokerEpoch,
}

/// Why a control request, or one partition of it, was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FenceError {
    /// The sender is a deposed controller.
    #[error(
        "controller {controller} sent controller epoch {received}, older than {highest}, the highest this broker has seen"
    )]
    StaleControllerEpoch {
        /// The sender.
        controller: BrokerId,
        /// The epoch in the request.
        received: ControllerEpoch,
        /// The highest epoch accepted so far.
        highest: ControllerEpoch,
    },
    /// The request was meant for an earlier registration of this broker.
    #[error(
        "broker epoch {received} in the request is older than this broker's current registration {current}"
    )]
    StaleBrokerEpoch {
        /// The epoch in the request.
        received: BrokerEpoch,
        /// This broker's current epoch.
        current: BrokerEpoch,
    },
    /// A LeaderAndIsr entry is not newer than what the partition already has.
    #[error(
        "{topic_partition}: leader epoch {received} is not newer than the current {current}; partition left unchanged"
    )]
    StaleLeaderEpoch {
        /// The partition.
        topic_partition: TopicPartition,
        /// The leader epoch in the entry.
        received: LeaderEpoch,
        /// The partition's current leader epoch.
        current: LeaderEpoch,
    },
}

/// Checks a whole request. `highest_seen` is the highest controller epoch accepted so far
/// (`None` before the first request); `current_broker_epoch` is this broker's registration.
///
/// ```
/// # use tributary_broker::control_fence::*;
/// # use tributary_zk_layout::{BrokerEpoch, BrokerId, ControllerEpoch};
/// let header = RequestHeader {
///     controller_id: BrokerId(1),
///     controller_epoch: ControllerEpoch(4),
///     broker_epoch: BrokerEpoch(100),
/// };
/// // Epoch 4 after 5 comes from a deposed controller.
/// assert!(check_request(&header, Some(ControllerEpoch(5)), BrokerEpoch(100)).is_err());
/// // Epoch 4 after 3 comes from a newly elected one.
/// assert!(check_request(&header, Some(ControllerEpoch(3)), BrokerEpoch(100)).is_ok());
/// ```
pub fn check_request(
    header: &RequestHeader,
    highest_seen: Option<ControllerEpoch>,
    current_broker_epoch: BrokerEpoch,
) -> Result<(), FenceError> {
    if let Some(highest) = highest_seen
        && header.controller_epoch < highest
    {
        return Err(FenceError::StaleControllerEpoch {
            controller: header.controller_id,
            received: header.controller_epoch,
            highest,
        });
    }
    if header.broker_epoch != BROKER_EPOCH_NOT_SET && header.broker_epoch < current_broker_epoch {
        return Err(FenceError::StaleBrokerEpoch {
            received: header.broker_epoch,
            current: current_broker_epoch,
        });
    }
    Ok(())
}

/// The highest controller epoch seen once a request from `accepted` has been admitted.
pub fn raise_highest(
    highest_seen: Option<ControllerEpoch>,
    accepted: ControllerEpoch,
) -> ControllerEpoch {
    highest_seen.map_or(accepted, |highest| highest.max(accepted))
}

/// Checks one LeaderAndIsr entry against the partition's current leader epoch (`None` when
/// the partition is not hosted: any epoch is accepted).
pub fn check_leader_epoch(
    topic_partition: &TopicPartition,
    received: LeaderEpoch,
    current: Option<LeaderEpoch>,
) -> Result<(), FenceError> {
    match current {
        Some(current) if received <= current => Err(FenceError::StaleLeaderEpoch {
            topic_partition: topic_partition.clone(),
            received,
            current,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(controller_epoch: i32, broker_epoch: i64) -> RequestHeader {
        RequestHeader {
            controller_id: BrokerId(1),
            controller_epoch: ControllerEpoch(controller_epoch),
            broker_epoch: BrokerEpoch(broker_epoch),
        }
    }

    #[test]
    fn request_fencing_table() {
        // (request controller epoch, request broker epoch, highest seen, current broker
        // epoch, expected)
        let stale_controller = |received, highest| {
            Err(FenceError::StaleControllerEpoch {
                controller: BrokerId(1),
                received: ControllerEpoch(received),
                highest: ControllerEpoch(highest),
            })
        };
        let stale_broker = |received, current| {
            Err(FenceError::StaleBrokerEpoch {
                received: BrokerEpoch(received),
                current: BrokerEpoch(current),
            })
        };
        let table = [
            // First request ever: any controller epoch.
            (1, 100, None, 100, Ok(())),
            // Same controller again, and a newly elected one.
            (5, 100, Some(5), 100, Ok(())),
            (6, 100, Some(5), 100, Ok(())),
            // A deposed controller.
            (4, 100, Some(5), 100, stale_controller(4, 5)),
            // Controller epoch is checked first.
            (4, 50, Some(5), 100, stale_controller(4, 5)),
            // Meant for an earlier registration of this broker.
            (5, 99, Some(5), 100, stale_broker(99, 100)),
            // The broker has not noticed its own re-registration yet.
            (5, 101, Some(5), 100, Ok(())),
            // "Not set".
            (5, -1, Some(5), 100, Ok(())),
        ];
        for (controller_epoch, broker_epoch, highest, current, expected) in table {
            let header = header(controller_epoch, broker_epoch);
            assert_eq!(
                check_request(&header, highest.map(ControllerEpoch), BrokerEpoch(current)),
                expected,
                "{header:?} highest {highest:?} current {current}"
            );
        }
    }

    #[test]
    fn highest_controller_epoch_only_rises() {
        assert_eq!(raise_highest(None, ControllerEpoch(3)), ControllerEpoch(3));
        assert_eq!(
            raise_highest(Some(ControllerEpoch(3)), ControllerEpoch(4)),
            ControllerEpoch(4)
        );
        assert_eq!(
            raise_highest(Some(ControllerEpoch(4)), ControllerEpoch(4)),
            ControllerEpoch(4)
        );
    }

    #[test]
    fn leader_epoch_must_grow_for_hosted_partitions() {
        let tp = TopicPartition::new("t", 0);
        let table = [
            (0, None, true),
            (7, None, true),
            (4, Some(3), true),
            (3, Some(3), false),
            (2, Some(3), false),
        ];
        for (received, current, accepted) in table {
            let result = check_leader_epoch(&tp, LeaderEpoch(received), current.map(LeaderEpoch));
            assert_eq!(result.is_ok(), accepted, "{received} vs {current:?}");
        }
        assert_eq!(
            check_leader_epoch(&tp, LeaderEpoch(3), Some(LeaderEpoch(3))),
            Err(FenceError::StaleLeaderEpoch {
                topic_partition: tp.clone(),
                received: LeaderEpoch(3),
                current: LeaderEpoch(3),
            })
        );
    }
}
