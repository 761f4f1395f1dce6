//! Values shared by the controller's pure decision modules.
//!
//! [`LeaderAndIsr`] is what an election decides and what the loop writes (conditionally, on the
//! state znode's version) to `/brokers/topics/<t>/partitions/<p>/state` and sends in
//! LeaderAndIsr/UpdateMetadata. The znode version itself is not part of the decision: the shell
//! that performs the conditional write tracks it.

use std::fmt::Write as _;

use tributary_zk_layout::{BrokerId, ControllerEpoch, LeaderEpoch};

/// A partition's leader, leader epoch, ISR and the epoch of the controller that last wrote them.
///
/// Worked example: a partition created by controller epoch 4 on brokers `[1, 2, 3]` starts as
/// `{leader: 1, leader_epoch: 0, isr: [1, 2, 3], controller_epoch: 4}`; when broker 1 dies the
/// offline election produces `{leader: 2, leader_epoch: 1, isr: [2, 3], controller_epoch: 4}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderAndIsr {
    /// The leader, or [`BrokerId::NONE`] when no replica is electable.
    /// Invariant: `leader == BrokerId::NONE || isr.contains(&leader)`.
    pub leader: BrokerId,
    /// +1 on every controller-driven leader or ISR change; brokers apply a LeaderAndIsr request
    /// only when this moves forward. Leader-driven ISR changes keep it.
    pub leader_epoch: LeaderEpoch,
    /// The in-sync replicas. Invariant: no duplicates, and never emptied by the controller once
    /// the partition is online (a sole remaining member is kept even when it is dead).
    pub isr: Vec<BrokerId>,
    /// The epoch of the controller that wrote this state.
    pub controller_epoch: ControllerEpoch,
}

impl LeaderAndIsr {
    /// The state of a partition coming online for the first time: leader epoch 0.
    pub fn initial(
        leader: BrokerId,
        isr: Vec<BrokerId>,
        controller_epoch: ControllerEpoch,
    ) -> Self {
        let state = Self {
            leader,
            leader_epoch: LeaderEpoch(0),
            isr,
            controller_epoch,
        };
        state.debug_check_invariants();
        state
    }

    /// The state after a controller-driven change: the given leader and ISR, the leader epoch
    /// one higher than `self`'s, stamped with `controller_epoch` (Kafka's `newLeaderAndIsr`).
    pub fn next(
        &self,
        leader: BrokerId,
        isr: Vec<BrokerId>,
        controller_epoch: ControllerEpoch,
    ) -> Self {
        let state = Self {
            leader,
            leader_epoch: LeaderEpoch(self.leader_epoch.0 + 1),
            isr,
            controller_epoch,
        };
        state.debug_check_invariants();
        state
    }

    /// Whether a leader is set (`leader != -1`).
    pub fn has_leader(&self) -> bool {
        self.leader != BrokerId::NONE
    }

    fn debug_check_invariants(&self) {
        debug_assert!(
            self.leader == BrokerId::NONE || self.isr.contains(&self.leader),
            "leader {} is not in the ISR {}",
            self.leader,
            broker_list(&self.isr)
        );
        debug_assert!(
            self.isr
                .iter()
                .enumerate()
                .all(|(i, b)| !self.isr[..i].contains(b)),
            "duplicate broker in the ISR {}",
            broker_list(&self.isr)
        );
    }
}

/// Formats broker ids the way operators read them in ZooKeeper: `[1, 2, 3]`.
pub fn broker_list(ids: &[BrokerId]) -> String {
    let mut out = String::from("[");
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{id}");
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(raw: &[i32]) -> Vec<BrokerId> {
        raw.iter().copied().map(BrokerId).collect()
    }

    #[test]
    fn next_bumps_the_leader_epoch_and_stamps_the_controller_epoch() {
        let initial = LeaderAndIsr::initial(BrokerId(1), ids(&[1, 2, 3]), ControllerEpoch(4));
        assert_eq!(initial.leader_epoch, LeaderEpoch(0));
        let next = initial.next(BrokerId(2), ids(&[2, 3]), ControllerEpoch(5));
        assert_eq!(
            next,
            LeaderAndIsr {
                leader: BrokerId(2),
                leader_epoch: LeaderEpoch(1),
                isr: ids(&[2, 3]),
                controller_epoch: ControllerEpoch(5),
            }
        );
        assert!(next.has_leader());
        assert!(
            !initial
                .next(BrokerId::NONE, ids(&[3]), ControllerEpoch(5))
                .has_leader()
        );
    }

    #[test]
    fn broker_list_formats_like_zookeeper_json() {
        for (input, expected) in [
            (&[][..], "[]"),
            (&[7][..], "[7]"),
            (&[1, 2, 3][..], "[1, 2, 3]"),
        ] {
            assert_eq!(broker_list(&ids(input)), expected);
        }
    }
}
