//! Last replica standing: electing a leader for a partition whose every in-sync replica died,
//! without trusting a replica that may have lost acknowledged records in an unclean shutdown.
//!
//! Classic Kafka keeps the last ISR member in the ISR when it dies and re-elects it when it
//! returns. If that broker lost its page cache (power loss, kernel crash), its log is shorter
//! than what it acknowledged; the other replicas then truncate to it and committed records are
//! gone (KIP-966 fixed this for KRaft only). Tributary's rule, for a partition with leader `-1`
//! (and unclean election not allowed):
//!
//! 1. the candidate is the first replica, in assignment order, that is live and in the ISR
//!    (none → the partition stays offline, as before);
//! 2. the controller asks the live replicas to describe their logs (Control
//!    `DescribeReplicaLogs`);
//! 3. if the candidate's log was **not** recovered after an unclean shutdown, it is elected as
//!    before (a clean election: it holds everything it acknowledged);
//! 4. otherwise the partition stays offline until **every** replica has described its log,
//!    then the replica with the greatest `(last leader epoch, log end offset)` leads alone
//!    (ties: the candidate, then assignment order). Every record acknowledged with
//!    `acks=all` reached the follower that left the ISR last, so the most advanced log holds
//!    it; the others truncate to it by leader epoch as usual.
//!
//! The cost is availability: after an unclean shutdown of the last in-sync replica the
//! partition waits for all its replicas (an operator can instead allow an unclean election).
//! See `docs/replication.md`, "Last replica standing".
//!
//! Worked example: replicas `[1, 2, 3]`, leader -1 at epoch 7, ISR `[1]`; broker 1 returns with
//! `needs_verification` and log `(epoch 6, end 100)`, broker 2 has `(6, 130)`, broker 3
//! `(5, 90)` → broker 2 leads at epoch 8 with ISR `[2]`.

use std::collections::BTreeMap;

use tributary_zk_layout::BrokerId;

use crate::election::{Elected, ElectionError, ElectionInput, offline_election};

/// One replica's log as its broker described it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaLog {
    /// The latest leader epoch in its epoch cache; -1 when it has none (or no log at all).
    pub last_leader_epoch: i32,
    /// Its log end offset (0 without a log).
    pub log_end_offset: i64,
    /// Recovered after an unclean shutdown and not checked since (always true without a log).
    pub needs_verification: bool,
}

impl ReplicaLog {
    /// The order in which logs are "more advanced": later leader epoch, then longer log.
    fn progress(&self) -> (i32, i64) {
        (self.last_leader_epoch, self.log_end_offset)
    }
}

/// What to do about one leaderless partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaderlessOutcome {
    /// Elect this (clean, or the most advanced replica once every log was compared).
    Elect {
        /// The new state (ISR = the leader alone after a comparison).
        elected: Elected,
        /// Set when the candidate needed verification and the logs were compared.
        compared: Option<Comparison>,
    },
    /// Ask these live replicas to describe their logs first.
    Describe(Vec<BrokerId>),
    /// The candidate needs verification and these replicas are not live: stay offline.
    Wait {
        /// The first live ISR member.
        candidate: BrokerId,
        /// Replicas whose logs cannot be compared yet.
        missing: Vec<BrokerId>,
    },
    /// No live replica is in the ISR.
    Unelectable(ElectionError),
}

/// The comparison behind an election after the candidate's unclean shutdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    /// The live ISR member that needed verification.
    pub candidate: BrokerId,
    /// Every replica's log, by broker.
    pub logs: BTreeMap<BrokerId, ReplicaLog>,
}

/// Decides for a partition whose leader is `-1` (see the module doc). `logs` are the replicas'
/// descriptions received so far; `input.live_brokers` are the electable brokers.
pub fn leaderless_election(
    input: ElectionInput<'_>,
    logs: &BTreeMap<BrokerId, ReplicaLog>,
) -> LeaderlessOutcome {
    let elected = match offline_election(input, false) {
        Ok(elected) => elected,
        Err(error) => return LeaderlessOutcome::Unelectable(error),
    };
    let candidate = elected.leader_and_isr.leader;
    let live: Vec<BrokerId> = input
        .assignment
        .iter()
        .copied()
        .filter(|b| input.live_brokers.contains(b))
        .collect();
    let undescribed: Vec<BrokerId> = live
        .iter()
        .copied()
        .filter(|b| !logs.contains_key(b))
        .collect();
    let Some(candidate_log) = logs.get(&candidate) else {
        return LeaderlessOutcome::Describe(undescribed);
    };
    if !candidate_log.needs_verification {
        return LeaderlessOutcome::Elect {
            elected,
            compared: None,
        };
    }
    if !undescribed.is_empty() {
        return LeaderlessOutcome::Describe(undescribed);
    }
    let missing: Vec<BrokerId> = input
        .assignment
        .iter()
        .copied()
        .filter(|b| !live.contains(b))
        .collect();
    if !missing.is_empty() {
        return LeaderlessOutcome::Wait { candidate, missing };
    }
    // Every replica is live and described: the most advanced log leads; ties go to the
    // candidate, then to the earlier replica in the assignment.
    let mut winner = candidate;
    for &replica in input.assignment {
        if logs[&replica].progress() > logs[&winner].progress() {
            winner = replica;
        }
    }
    let compared = input.assignment.iter().map(|b| (*b, logs[b])).collect();
    LeaderlessOutcome::Elect {
        elected: Elected {
            leader_and_isr: input
                .current
                .next(winner, vec![winner], input.controller_epoch),
            unclean: false,
        },
        compared: Some(Comparison {
            candidate,
            logs: compared,
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use tributary_zk_layout::{ControllerEpoch, LeaderEpoch};

    use super::*;
    use crate::model::LeaderAndIsr;

    fn ids(raw: &[i32]) -> Vec<BrokerId> {
        raw.iter().copied().map(BrokerId).collect()
    }

    fn leaderless(isr: &[i32]) -> LeaderAndIsr {
        LeaderAndIsr {
            leader: BrokerId::NONE,
            leader_epoch: LeaderEpoch(7),
            isr: ids(isr),
            controller_epoch: ControllerEpoch(2),
        }
    }

    fn log(epoch: i32, end: i64, needs_verification: bool) -> ReplicaLog {
        ReplicaLog {
            last_leader_epoch: epoch,
            log_end_offset: end,
            needs_verification,
        }
    }

    fn decide(isr: &[i32], live: &[i32], logs: &[(i32, ReplicaLog)]) -> LeaderlessOutcome {
        let current = leaderless(isr);
        let live: BTreeSet<BrokerId> = ids(live).into_iter().collect();
        let assignment = ids(&[1, 2, 3]);
        let logs = logs.iter().map(|(b, l)| (BrokerId(*b), *l)).collect();
        leaderless_election(
            ElectionInput {
                assignment: &assignment,
                current: &current,
                live_brokers: &live,
                controller_epoch: ControllerEpoch(3),
            },
            &logs,
        )
    }

    fn leader_of(outcome: &LeaderlessOutcome) -> (BrokerId, Vec<BrokerId>, LeaderEpoch) {
        match outcome {
            LeaderlessOutcome::Elect { elected, .. } => (
                elected.leader_and_isr.leader,
                elected.leader_and_isr.isr.clone(),
                elected.leader_and_isr.leader_epoch,
            ),
            other => panic!("expected an election, got {other:?}"),
        }
    }

    #[test]
    fn the_candidate_and_the_other_live_replicas_are_asked_first() {
        assert_eq!(
            decide(&[1], &[1, 3], &[]),
            LeaderlessOutcome::Describe(ids(&[1, 3]))
        );
        // Only those not described yet.
        assert_eq!(
            decide(&[1], &[1, 3], &[(3, log(6, 10, false))]),
            LeaderlessOutcome::Describe(ids(&[1]))
        );
    }

    #[test]
    fn a_verified_candidate_is_elected_at_once_as_in_a_clean_election() {
        let outcome = decide(&[1], &[1], &[(1, log(6, 100, false))]);
        assert_eq!(
            leader_of(&outcome),
            (BrokerId(1), ids(&[1]), LeaderEpoch(8))
        );
        assert!(matches!(
            outcome,
            LeaderlessOutcome::Elect { compared: None, .. }
        ));
    }

    #[test]
    fn an_unverified_candidate_waits_for_every_replica() {
        assert_eq!(
            decide(
                &[1],
                &[1, 2],
                &[(1, log(6, 100, true)), (2, log(6, 130, false))]
            ),
            LeaderlessOutcome::Wait {
                candidate: BrokerId(1),
                missing: ids(&[3])
            }
        );
        // A live replica not yet described is asked, even if another is missing.
        assert_eq!(
            decide(&[1], &[1, 2], &[(1, log(6, 100, true))]),
            LeaderlessOutcome::Describe(ids(&[2]))
        );
    }

    #[test]
    fn the_most_advanced_log_leads_once_every_replica_is_described() {
        let logs = [
            (1, log(6, 100, true)),
            (2, log(6, 130, false)),
            (3, log(5, 90, false)),
        ];
        let outcome = decide(&[1], &[1, 2, 3], &logs);
        assert_eq!(
            leader_of(&outcome),
            (BrokerId(2), ids(&[2]), LeaderEpoch(8))
        );
        let LeaderlessOutcome::Elect {
            elected,
            compared: Some(comparison),
        } = outcome
        else {
            panic!("expected a compared election");
        };
        assert!(!elected.unclean);
        assert_eq!(comparison.candidate, BrokerId(1));
        assert_eq!(comparison.logs.len(), 3);

        // A later epoch beats a longer log.
        let logs = [
            (1, log(6, 100, true)),
            (2, log(5, 300, false)),
            (3, log(7, 101, true)),
        ];
        assert_eq!(leader_of(&decide(&[1], &[1, 2, 3], &logs)).0, BrokerId(3));
    }

    #[test]
    fn ties_keep_the_candidate_then_assignment_order() {
        let logs = [
            (1, log(6, 100, false)),
            (2, log(6, 100, true)),
            (3, log(6, 100, false)),
        ];
        // Candidate 2 (the only ISR member) keeps it on a tie.
        assert_eq!(leader_of(&decide(&[2], &[1, 2, 3], &logs)).0, BrokerId(2));
        let logs = [
            (1, log(6, 90, true)),
            (2, log(6, 100, false)),
            (3, log(6, 100, false)),
        ];
        assert_eq!(leader_of(&decide(&[1], &[1, 2, 3], &logs)).0, BrokerId(2));
    }

    #[test]
    fn without_a_live_isr_member_nothing_is_asked() {
        assert!(matches!(
            decide(&[1], &[2, 3], &[]),
            LeaderlessOutcome::Unelectable(ElectionError::NoLiveReplicaInIsr { .. })
        ));
    }
}
