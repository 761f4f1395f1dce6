//! Partition leader election: Kafka's `PartitionLeaderElectionAlgorithms` and `Election` as pure
//! functions from (assignment, current leader and ISR, live brokers) to the next [`LeaderAndIsr`].
//!
//! Every strategy walks the replicas **in assignment order** (the first one is the preferred
//! leader) and every election bumps the leader epoch by one, even when the same broker is chosen
//! again, because brokers apply a LeaderAndIsr request only when the epoch moves forward.
//!
//! | strategy | leader | new ISR |
//! |---|---|---|
//! | [`offline_election`] | first replica live and in ISR; else, if unclean election is allowed, first live replica | ISR ∩ live; `[leader]` after an unclean election |
//! | [`preferred_election`] | the first replica, only if live and in ISR | unchanged |
//! | [`controlled_shutdown_election`] | first replica live, in ISR and not shutting down | ISR − shutting down |
//! | [`reassignment_election`] | first replica of the *target* set live and in ISR | unchanged |
//!
//! [`initial_leader_and_isr`] brings a new partition online, and [`remove_replicas_from_isr`]
//! applies the OfflineReplica transition's ISR shrink ("the ISR is never emptied").
//!
//! "Live" means Kafka's `liveBrokerIds`: registered in `/brokers/ids` and **not** in the
//! controlled-shutdown set, so a broker that is shutting down never wins an election.

use std::collections::BTreeSet;

use thiserror::Error;
use tributary_zk_layout::{BrokerId, ControllerEpoch};

use crate::model::{LeaderAndIsr, broker_list};

/// What every election looks at for one partition.
#[derive(Debug, Clone, Copy)]
pub struct ElectionInput<'a> {
    /// The replicas in preference order (for [`reassignment_election`], the target replicas).
    pub assignment: &'a [BrokerId],
    /// The partition's current state, as last read from its state znode.
    pub current: &'a LeaderAndIsr,
    /// Brokers registered in `/brokers/ids` and not shutting down.
    pub live_brokers: &'a BTreeSet<BrokerId>,
    /// The epoch of the controller making the decision; stamped on the result.
    pub controller_epoch: ControllerEpoch,
}

/// A successful election: the state to write and whether it was unclean.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Elected {
    /// The new state; its leader epoch is the current one + 1.
    pub leader_and_isr: LeaderAndIsr,
    /// True when the leader was not in the ISR (possible data loss; Kafka counts these in
    /// `UncleanLeaderElectionsPerSec`).
    pub unclean: bool,
}

/// Why no leader could be chosen. The partition keeps (or gets) leader `-1` until a replica
/// becomes eligible; the caller adds the topic-partition when it logs or wraps this error.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ElectionError {
    /// The partition has no replicas at all.
    #[error("the replica assignment is empty")]
    EmptyAssignment,
    /// Clean election found no replica that is both live and in the ISR.
    #[error(
        "no replica of {} is live and in the ISR {} (live replicas: {})",
        broker_list(.replicas),
        broker_list(.isr),
        broker_list(.live_replicas)
    )]
    NoLiveReplicaInIsr {
        /// The replicas considered, in preference order.
        replicas: Vec<BrokerId>,
        /// The current ISR.
        isr: Vec<BrokerId>,
        /// The replicas that are live (none of them in the ISR).
        live_replicas: Vec<BrokerId>,
    },
    /// No replica is live, so not even an unclean election (or a first election) can choose one.
    #[error("no replica of {} is live", broker_list(.replicas))]
    NoLiveReplica {
        /// The replicas considered, in preference order.
        replicas: Vec<BrokerId>,
    },
    /// Preferred election: the first replica is not live or not in the ISR.
    #[error(
        "preferred replica {preferred} cannot lead: {}",
        match (.live, .in_isr) {
            (false, false) => "it is not live and not in the ISR",
            (false, true) => "it is not live",
            _ => "it is not in the ISR",
        }
    )]
    PreferredReplicaNotEligible {
        /// The first replica of the assignment.
        preferred: BrokerId,
        /// Whether it is live.
        live: bool,
        /// Whether it is in the ISR.
        in_isr: bool,
    },
    /// Preferred election: the preferred replica already leads (Kafka's ELECTION_NOT_NEEDED).
    #[error("preferred replica {leader} already leads the partition")]
    ElectionNotNeeded {
        /// The current (and preferred) leader.
        leader: BrokerId,
    },
    /// Controlled shutdown: every live in-ISR replica is on a broker that is shutting down.
    #[error(
        "no replica of {} is live, in the ISR {} and not shutting down (shutting down: {})",
        broker_list(.replicas),
        broker_list(.isr),
        broker_list(.shutting_down)
    )]
    NoReplicaOutsideShutdown {
        /// The replicas considered, in preference order.
        replicas: Vec<BrokerId>,
        /// The current ISR.
        isr: Vec<BrokerId>,
        /// The brokers shutting down.
        shutting_down: Vec<BrokerId>,
    },
}

/// NewPartition → OnlinePartition: leader = the first live replica, ISR = every live replica in
/// assignment order, leader epoch 0. With no live replica the partition stays New.
///
/// ```
/// # use std::collections::BTreeSet;
/// # use tributary_controller::election::initial_leader_and_isr;
/// # use tributary_zk_layout::{BrokerId, ControllerEpoch, LeaderEpoch};
/// let live: BTreeSet<_> = [BrokerId(2), BrokerId(3)].into();
/// let state = initial_leader_and_isr(&[BrokerId(1), BrokerId(2), BrokerId(3)], &live, ControllerEpoch(7)).unwrap();
/// assert_eq!((state.leader, state.leader_epoch), (BrokerId(2), LeaderEpoch(0)));
/// assert_eq!(state.isr, [BrokerId(2), BrokerId(3)]);
/// ```
pub fn initial_leader_and_isr(
    assignment: &[BrokerId],
    live_brokers: &BTreeSet<BrokerId>,
    controller_epoch: ControllerEpoch,
) -> Result<LeaderAndIsr, ElectionError> {
    if assignment.is_empty() {
        return Err(ElectionError::EmptyAssignment);
    }
    let live = live_replicas(assignment, live_brokers);
    match live.first() {
        Some(&leader) => Ok(LeaderAndIsr::initial(leader, live, controller_epoch)),
        None => Err(ElectionError::NoLiveReplica {
            replicas: assignment.to_vec(),
        }),
    }
}

/// The leader died, or an Offline/New partition is coming back: the first replica that is live
/// and in the ISR leads, and the ISR keeps only its live members. If there is none and
/// `unclean_allowed` (`unclean.leader.election.enable`, broker default or topic override, or an
/// unclean ElectLeaders request), the first live replica leads alone: ISR = `[it]`.
///
/// ```
/// # use std::collections::BTreeSet;
/// # use tributary_controller::{election::{offline_election, ElectionInput}, model::LeaderAndIsr};
/// # use tributary_zk_layout::{BrokerId, ControllerEpoch, LeaderEpoch};
/// let b = |ids: &[i32]| ids.iter().copied().map(BrokerId).collect::<Vec<_>>();
/// // Broker 1 led [1, 2, 3] with ISR [1, 3] and died.
/// let current = LeaderAndIsr { leader: BrokerId(1), leader_epoch: LeaderEpoch(4), isr: b(&[1, 3]), controller_epoch: ControllerEpoch(2) };
/// let live: BTreeSet<_> = b(&[2, 3]).into_iter().collect();
/// let input = ElectionInput { assignment: &b(&[1, 2, 3]), current: &current, live_brokers: &live, controller_epoch: ControllerEpoch(2) };
/// let elected = offline_election(input, false).unwrap();
/// // 2 is live but out of sync: 3 leads, epoch 5, ISR [3].
/// assert_eq!((elected.leader_and_isr.leader, elected.leader_and_isr.leader_epoch), (BrokerId(3), LeaderEpoch(5)));
/// assert_eq!(elected.leader_and_isr.isr, b(&[3]));
/// assert!(!elected.unclean);
/// ```
pub fn offline_election(
    input: ElectionInput<'_>,
    unclean_allowed: bool,
) -> Result<Elected, ElectionError> {
    let ElectionInput {
        assignment,
        current,
        live_brokers,
        controller_epoch,
    } = input;
    if assignment.is_empty() {
        return Err(ElectionError::EmptyAssignment);
    }
    if let Some(leader) = first_live_in_isr(assignment, current, live_brokers) {
        let isr = current
            .isr
            .iter()
            .copied()
            .filter(|b| live_brokers.contains(b))
            .collect();
        return Ok(Elected {
            leader_and_isr: current.next(leader, isr, controller_epoch),
            unclean: false,
        });
    }
    let live = live_replicas(assignment, live_brokers);
    match (unclean_allowed, live.first()) {
        (true, Some(&leader)) => Ok(Elected {
            leader_and_isr: current.next(leader, vec![leader], controller_epoch),
            unclean: true,
        }),
        (true, None) => Err(ElectionError::NoLiveReplica {
            replicas: assignment.to_vec(),
        }),
        (false, _) => Err(ElectionError::NoLiveReplicaInIsr {
            replicas: assignment.to_vec(),
            isr: current.isr.clone(),
            live_replicas: live,
        }),
    }
}

/// Preferred replica election (admin request, `/admin/preferred_replica_election`, auto
/// rebalance): only the first replica may lead, only if it is live and in the ISR; the ISR is
/// unchanged. Refused with [`ElectionError::ElectionNotNeeded`] when it already leads.
///
/// Worked example: assignment `[1, 2, 3]`, leader 2 at epoch 6, ISR `[2, 3, 1]`, all live →
/// leader 1, epoch 7, ISR `[2, 3, 1]`.
pub fn preferred_election(input: ElectionInput<'_>) -> Result<Elected, ElectionError> {
    let ElectionInput {
        assignment,
        current,
        live_brokers,
        controller_epoch,
    } = input;
    let Some(&preferred) = assignment.first() else {
        return Err(ElectionError::EmptyAssignment);
    };
    let live = live_brokers.contains(&preferred);
    let in_isr = current.isr.contains(&preferred);
    if !(live && in_isr) {
        return Err(ElectionError::PreferredReplicaNotEligible {
            preferred,
            live,
            in_isr,
        });
    }
    if current.leader == preferred {
        return Err(ElectionError::ElectionNotNeeded { leader: preferred });
    }
    Ok(Elected {
        leader_and_isr: current.next(preferred, current.isr.clone(), controller_epoch),
        unclean: false,
    })
}

/// Controlled shutdown of the brokers in `shutting_down`, for a partition one of them leads:
/// the first replica that is live, in the ISR and not shutting down leads; the shutting-down
/// brokers leave the ISR.
///
/// Worked example: assignment `[1, 2, 3]`, leader 1, ISR `[1, 2, 3]`, broker 1 shutting down
/// → leader 2, ISR `[2, 3]`.
pub fn controlled_shutdown_election(
    input: ElectionInput<'_>,
    shutting_down: &BTreeSet<BrokerId>,
) -> Result<Elected, ElectionError> {
    let ElectionInput {
        assignment,
        current,
        live_brokers,
        controller_epoch,
    } = input;
    if assignment.is_empty() {
        return Err(ElectionError::EmptyAssignment);
    }
    let leader = assignment.iter().copied().find(|b| {
        live_brokers.contains(b) && current.isr.contains(b) && !shutting_down.contains(b)
    });
    match leader {
        Some(leader) => {
            let isr = current
                .isr
                .iter()
                .copied()
                .filter(|b| !shutting_down.contains(b))
                .collect();
            Ok(Elected {
                leader_and_isr: current.next(leader, isr, controller_epoch),
                unclean: false,
            })
        }
        None => Err(ElectionError::NoReplicaOutsideShutdown {
            replicas: assignment.to_vec(),
            isr: current.isr.clone(),
            shutting_down: shutting_down.iter().copied().collect(),
        }),
    }
}

/// Reassignment completing while the leader is outside the target replicas (or dead): the first
/// replica of the **target** set (`input.assignment`) that is live and in the ISR leads; the ISR
/// is unchanged (the removed replicas leave it afterwards through their OfflineReplica
/// transition).
///
/// Worked example: target `[4, 5, 6]`, leader 1, ISR `[1, 2, 3, 5, 4, 6]`, all live → leader 4.
pub fn reassignment_election(input: ElectionInput<'_>) -> Result<Elected, ElectionError> {
    let ElectionInput {
        assignment,
        current,
        live_brokers,
        controller_epoch,
    } = input;
    if assignment.is_empty() {
        return Err(ElectionError::EmptyAssignment);
    }
    match first_live_in_isr(assignment, current, live_brokers) {
        Some(leader) => Ok(Elected {
            leader_and_isr: current.next(leader, current.isr.clone(), controller_epoch),
            unclean: false,
        }),
        None => Err(ElectionError::NoLiveReplicaInIsr {
            replicas: assignment.to_vec(),
            isr: current.isr.clone(),
            live_replicas: live_replicas(assignment, live_brokers),
        }),
    }
}

/// The OfflineReplica transition's ISR edit: drop `removed` from the ISR and, if the leader is
/// among them, set the leader to `-1`; bump the leader epoch. **The ISR is never emptied**: when
/// every member would go, one stays (the current leader if it was in the ISR, else the first
/// member), so the ISR records who had the latest data and a clean election can resume when that
/// broker returns.
///
/// Returns `None` when nothing changes (no removed broker leads or is in the ISR, or only the
/// kept sole member would go), so the caller writes nothing. Kafka applies this one replica at
/// a time and writes even an unchanged ISR with a new epoch; the end state is the same.
///
/// Worked example: leader 1, epoch 3, ISR `[1, 2]`; brokers 1 and 2 die → leader -1, epoch 4,
/// ISR `[1]`.
pub fn remove_replicas_from_isr(
    current: &LeaderAndIsr,
    removed: &BTreeSet<BrokerId>,
    controller_epoch: ControllerEpoch,
) -> Option<LeaderAndIsr> {
    let leader = if removed.contains(&current.leader) {
        BrokerId::NONE
    } else {
        current.leader
    };
    let mut isr: Vec<BrokerId> = current
        .isr
        .iter()
        .copied()
        .filter(|b| !removed.contains(b))
        .collect();
    if isr.is_empty() {
        let kept = if current.isr.contains(&current.leader) {
            Some(current.leader)
        } else {
            current.isr.first().copied()
        };
        isr.extend(kept);
    }
    if leader == current.leader && isr == current.isr {
        return None;
    }
    Some(current.next(leader, isr, controller_epoch))
}

fn first_live_in_isr(
    replicas: &[BrokerId],
    current: &LeaderAndIsr,
    live_brokers: &BTreeSet<BrokerId>,
) -> Option<BrokerId> {
    replicas
        .iter()
        .copied()
        .find(|b| live_brokers.contains(b) && current.isr.contains(b))
}

fn live_replicas(replicas: &[BrokerId], live_brokers: &BTreeSet<BrokerId>) -> Vec<BrokerId> {
    replicas
        .iter()
        .copied()
        .filter(|b| live_brokers.contains(b))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tributary_zk_layout::LeaderEpoch;

    type Expected = Result<LeaderAndIsr, ElectionError>;
    /// (name, target, current, live, expected)
    type ReassignmentCase = (
        &'static str,
        &'static [i32],
        LeaderAndIsr,
        &'static [i32],
        Expected,
    );
    /// (name, current, live, shutting down, expected)
    type ShutdownCase = (
        &'static str,
        LeaderAndIsr,
        &'static [i32],
        &'static [i32],
        Expected,
    );
    /// (name, current, live, expected)
    type PreferredCase = (&'static str, LeaderAndIsr, &'static [i32], Expected);

    const OLD_CONTROLLER: ControllerEpoch = ControllerEpoch(3);
    const CONTROLLER: ControllerEpoch = ControllerEpoch(4);

    fn ids(raw: &[i32]) -> Vec<BrokerId> {
        raw.iter().copied().map(BrokerId).collect()
    }

    fn set(raw: &[i32]) -> BTreeSet<BrokerId> {
        raw.iter().copied().map(BrokerId).collect()
    }

    /// A current state at leader epoch 10 written by the previous controller.
    fn state(leader: i32, isr: &[i32]) -> LeaderAndIsr {
        LeaderAndIsr {
            leader: BrokerId(leader),
            leader_epoch: LeaderEpoch(10),
            isr: ids(isr),
            controller_epoch: OLD_CONTROLLER,
        }
    }

    /// The expected result: leader epoch 11, written by this controller.
    fn next(leader: i32, isr: &[i32]) -> LeaderAndIsr {
        LeaderAndIsr {
            leader: BrokerId(leader),
            leader_epoch: LeaderEpoch(11),
            isr: ids(isr),
            controller_epoch: CONTROLLER,
        }
    }

    fn input<'a>(
        assignment: &'a [BrokerId],
        current: &'a LeaderAndIsr,
        live: &'a BTreeSet<BrokerId>,
    ) -> ElectionInput<'a> {
        ElectionInput {
            assignment,
            current,
            live_brokers: live,
            controller_epoch: CONTROLLER,
        }
    }

    #[test]
    fn initial_table() {
        let cases: [(&str, &[i32], &[i32], Expected); 4] = [
            (
                "all live",
                &[1, 2, 3],
                &[1, 2, 3],
                Ok(LeaderAndIsr::initial(
                    BrokerId(1),
                    ids(&[1, 2, 3]),
                    CONTROLLER,
                )),
            ),
            (
                "first replica down: next live leads, ISR keeps assignment order",
                &[3, 1, 2],
                &[1, 2],
                Ok(LeaderAndIsr::initial(BrokerId(1), ids(&[1, 2]), CONTROLLER)),
            ),
            (
                "no live replica: stays New",
                &[1, 2],
                &[3],
                Err(ElectionError::NoLiveReplica {
                    replicas: ids(&[1, 2]),
                }),
            ),
            (
                "empty assignment",
                &[],
                &[1],
                Err(ElectionError::EmptyAssignment),
            ),
        ];
        for (name, assignment, live, expected) in cases {
            assert_eq!(
                initial_leader_and_isr(&ids(assignment), &set(live), CONTROLLER),
                expected,
                "{name}"
            );
        }
    }

    #[test]
    fn offline_table() {
        struct Case {
            name: &'static str,
            assignment: &'static [i32],
            current: LeaderAndIsr,
            live: &'static [i32],
            unclean: bool,
            expected: Result<Elected, ElectionError>,
        }
        let clean = |leader_and_isr| {
            Ok(Elected {
                leader_and_isr,
                unclean: false,
            })
        };
        let cases = [
            Case {
                name: "leader died: first live in-ISR replica in assignment order",
                assignment: &[1, 2, 3],
                current: state(1, &[1, 3, 2]),
                live: &[2, 3],
                unclean: false,
                expected: clean(next(2, &[3, 2])),
            },
            Case {
                name: "live replica out of ISR is skipped",
                assignment: &[1, 2, 3],
                current: state(1, &[1, 3]),
                live: &[2, 3],
                unclean: false,
                expected: clean(next(3, &[3])),
            },
            Case {
                name: "offline partition with a sole ISR member that returns",
                assignment: &[1, 2, 3],
                current: state(-1, &[3]),
                live: &[1, 2, 3],
                unclean: false,
                expected: clean(next(3, &[3])),
            },
            Case {
                name: "clean election preferred over unclean even when allowed",
                assignment: &[1, 2, 3],
                current: state(1, &[1, 3]),
                live: &[2, 3],
                unclean: true,
                expected: clean(next(3, &[3])),
            },
            Case {
                name: "no live ISR member, unclean not allowed",
                assignment: &[1, 2, 3],
                current: state(-1, &[1]),
                live: &[2, 3],
                unclean: false,
                expected: Err(ElectionError::NoLiveReplicaInIsr {
                    replicas: ids(&[1, 2, 3]),
                    isr: ids(&[1]),
                    live_replicas: ids(&[2, 3]),
                }),
            },
            Case {
                name: "no live ISR member, unclean allowed: first live replica alone",
                assignment: &[1, 2, 3],
                current: state(-1, &[1]),
                live: &[3, 2],
                unclean: true,
                expected: Ok(Elected {
                    leader_and_isr: next(2, &[2]),
                    unclean: true,
                }),
            },
            Case {
                name: "nothing live, unclean allowed",
                assignment: &[1, 2],
                current: state(-1, &[1]),
                live: &[5],
                unclean: true,
                expected: Err(ElectionError::NoLiveReplica {
                    replicas: ids(&[1, 2]),
                }),
            },
            Case {
                name: "empty assignment",
                assignment: &[],
                current: state(-1, &[1]),
                live: &[1],
                unclean: true,
                expected: Err(ElectionError::EmptyAssignment),
            },
        ];
        for case in cases {
            let assignment = ids(case.assignment);
            let live = set(case.live);
            let got = offline_election(input(&assignment, &case.current, &live), case.unclean);
            assert_eq!(got, case.expected, "{}", case.name);
        }
    }

    #[test]
    fn preferred_table() {
        let cases: [PreferredCase; 5] = [
            (
                "preferred live and in ISR: leads, ISR unchanged",
                state(2, &[2, 3, 1]),
                &[1, 2, 3],
                Ok(next(1, &[2, 3, 1])),
            ),
            (
                "preferred not in ISR",
                state(2, &[2, 3]),
                &[1, 2, 3],
                Err(ElectionError::PreferredReplicaNotEligible {
                    preferred: BrokerId(1),
                    live: true,
                    in_isr: false,
                }),
            ),
            (
                "preferred dead (still in ISR)",
                state(2, &[2, 1]),
                &[2, 3],
                Err(ElectionError::PreferredReplicaNotEligible {
                    preferred: BrokerId(1),
                    live: false,
                    in_isr: true,
                }),
            ),
            (
                "preferred dead and out of ISR: the second replica is not considered",
                state(3, &[2, 3]),
                &[2, 3],
                Err(ElectionError::PreferredReplicaNotEligible {
                    preferred: BrokerId(1),
                    live: false,
                    in_isr: false,
                }),
            ),
            (
                "preferred already leads",
                state(1, &[1, 2, 3]),
                &[1, 2, 3],
                Err(ElectionError::ElectionNotNeeded {
                    leader: BrokerId(1),
                }),
            ),
        ];
        let assignment = ids(&[1, 2, 3]);
        for (name, current, live, expected) in cases {
            let live = set(live);
            let got = preferred_election(input(&assignment, &current, &live));
            assert_eq!(got.map(|e| e.leader_and_isr), expected, "{name}");
        }
        let current = state(-1, &[1]);
        let nobody = BTreeSet::new();
        let empty = input(&[], &current, &nobody);
        assert_eq!(
            preferred_election(empty),
            Err(ElectionError::EmptyAssignment)
        );
    }

    #[test]
    fn controlled_shutdown_table() {
        let cases: [ShutdownCase; 5] = [
            (
                "leader shutting down: next in-ISR replica leads, leaves ISR",
                state(1, &[1, 2, 3]),
                &[2, 3],
                &[1],
                Ok(next(2, &[2, 3])),
            ),
            (
                "live set that still includes the shutting-down broker",
                state(1, &[1, 2, 3]),
                &[1, 2, 3],
                &[1],
                Ok(next(2, &[2, 3])),
            ),
            (
                "two brokers shutting down",
                state(1, &[1, 2, 3]),
                &[3],
                &[1, 2],
                Ok(next(3, &[3])),
            ),
            (
                "a dead ISR member is skipped but stays in the ISR",
                state(1, &[1, 2, 3]),
                &[3],
                &[1],
                Ok(next(3, &[2, 3])),
            ),
            (
                "only in-ISR replicas are shutting down",
                state(1, &[1, 2]),
                &[2, 3],
                &[1, 2],
                Err(ElectionError::NoReplicaOutsideShutdown {
                    replicas: ids(&[1, 2, 3]),
                    isr: ids(&[1, 2]),
                    shutting_down: ids(&[1, 2]),
                }),
            ),
        ];
        let assignment = ids(&[1, 2, 3]);
        for (name, current, live, shutting_down, expected) in cases {
            let live = set(live);
            let got = controlled_shutdown_election(
                input(&assignment, &current, &live),
                &set(shutting_down),
            );
            assert_eq!(got.map(|e| e.leader_and_isr), expected, "{name}");
        }
    }

    #[test]
    fn reassignment_table() {
        let cases: [ReassignmentCase; 3] = [
            (
                "first target replica live and in ISR; ISR unchanged",
                &[4, 5, 6],
                state(1, &[1, 2, 3, 5, 4, 6]),
                &[1, 2, 3, 4, 5, 6],
                Ok(next(4, &[1, 2, 3, 5, 4, 6])),
            ),
            (
                "skips a dead target replica",
                &[4, 5, 6],
                state(1, &[1, 4, 5, 6]),
                &[1, 5, 6],
                Ok(next(5, &[1, 4, 5, 6])),
            ),
            (
                "no target replica in ISR",
                &[4, 5],
                state(1, &[1]),
                &[1, 4, 5],
                Err(ElectionError::NoLiveReplicaInIsr {
                    replicas: ids(&[4, 5]),
                    isr: ids(&[1]),
                    live_replicas: ids(&[4, 5]),
                }),
            ),
        ];
        for (name, target, current, live, expected) in cases {
            let target = ids(target);
            let live = set(live);
            let got = reassignment_election(input(&target, &current, &live));
            assert_eq!(got.map(|e| e.leader_and_isr), expected, "{name}");
        }
    }

    #[test]
    fn remove_from_isr_table() {
        let cases: [(&str, LeaderAndIsr, &[i32], Option<LeaderAndIsr>); 7] = [
            (
                "follower leaves the ISR",
                state(1, &[1, 2, 3]),
                &[3],
                Some(next(1, &[1, 2])),
            ),
            (
                "leader leaves: leader -1",
                state(1, &[1, 2, 3]),
                &[1],
                Some(next(-1, &[2, 3])),
            ),
            (
                "sole member is kept, leader -1",
                state(1, &[1]),
                &[1],
                Some(next(-1, &[1])),
            ),
            (
                "all members go: the leader is the one kept",
                state(2, &[1, 2, 3]),
                &[1, 2, 3],
                Some(next(-1, &[2])),
            ),
            (
                "all members go, no leader: the first member is kept",
                state(-1, &[3, 1]),
                &[1, 3],
                Some(next(-1, &[3])),
            ),
            (
                "already the sole member with no leader: no write",
                state(-1, &[3]),
                &[3],
                None,
            ),
            (
                "removed broker not in the ISR: no write",
                state(1, &[1, 2]),
                &[3],
                None,
            ),
        ];
        for (name, current, removed, expected) in cases {
            assert_eq!(
                remove_replicas_from_isr(&current, &set(removed), CONTROLLER),
                expected,
                "{name}"
            );
        }
    }

    #[test]
    fn error_messages_name_the_brokers() {
        let cases = [
            (
                ElectionError::NoLiveReplicaInIsr {
                    replicas: ids(&[1, 2, 3]),
                    isr: ids(&[1]),
                    live_replicas: ids(&[2, 3]),
                },
                "no replica of [1, 2, 3] is live and in the ISR [1] (live replicas: [2, 3])",
            ),
            (
                ElectionError::PreferredReplicaNotEligible {
                    preferred: BrokerId(1),
                    live: false,
                    in_isr: true,
                },
                "preferred replica 1 cannot lead: it is not live",
            ),
            (
                ElectionError::NoReplicaOutsideShutdown {
                    replicas: ids(&[1, 2]),
                    isr: ids(&[1, 2]),
                    shutting_down: ids(&[1, 2]),
                },
                "no replica of [1, 2] is live, in the ISR [1, 2] and not shutting down (shutting down: [1, 2])",
            ),
        ];
        for (err, message) in cases {
            assert_eq!(err.to_string(), message);
        }
    }

    proptest! {
        #[test]
        fn offline_election_invariants(
            assignment in proptest::sample::subsequence((0..6).collect::<Vec<i32>>(), 1..=6)
                .prop_shuffle(),
            isr_mask in 0u8..64,
            live_mask in 0u8..64,
            unclean_allowed: bool,
        ) {
            let assignment = ids(&assignment);
            let isr: Vec<BrokerId> = assignment
                .iter()
                .copied()
                .filter(|b| isr_mask & (1 << b.0) != 0)
                .collect();
            let live: BTreeSet<BrokerId> = (0..6).filter(|b| live_mask & (1 << b) != 0).map(BrokerId).collect();
            let current = LeaderAndIsr {
                leader: isr.first().copied().unwrap_or(BrokerId::NONE),
                leader_epoch: LeaderEpoch(10),
                isr: isr.clone(),
                controller_epoch: OLD_CONTROLLER,
            };
            let clean_candidates: Vec<BrokerId> =
                assignment.iter().copied().filter(|b| live.contains(b) && isr.contains(b)).collect();
            let live_replicas: Vec<BrokerId> =
                assignment.iter().copied().filter(|b| live.contains(b)).collect();
            match offline_election(input(&assignment, &current, &live), unclean_allowed) {
                Ok(Elected { leader_and_isr: next, unclean }) => {
                    prop_assert_eq!(next.leader_epoch, LeaderEpoch(11));
                    prop_assert_eq!(next.controller_epoch, CONTROLLER);
                    prop_assert!(next.isr.contains(&next.leader));
                    if unclean {
                        prop_assert!(unclean_allowed && clean_candidates.is_empty());
                        prop_assert_eq!(Some(&next.leader), live_replicas.first());
                        prop_assert_eq!(next.isr, vec![next.leader]);
                    } else {
                        prop_assert_eq!(Some(&next.leader), clean_candidates.first());
                        let expected: Vec<BrokerId> =
                            isr.iter().copied().filter(|b| live.contains(b)).collect();
                        prop_assert_eq!(next.isr, expected);
                    }
                }
                Err(_) => {
                    prop_assert!(clean_candidates.is_empty());
                    prop_assert!(!unclean_allowed || live_replicas.is_empty());
                }
            }
        }
    }
}
