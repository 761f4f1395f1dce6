//! The controller's partition and replica state machines: which transitions are legal.
//!
//! The states live only in the controller's memory (rebuilt on failover from ZooKeeper); the
//! side effects of each transition (LeaderAndIsr, StopReplica, ISR edits) are decided by the
//! handlers. A transition from a state not in the target's valid previous states is a bug in the
//! caller, reported as [`IllegalTransition`] (Kafka logs it and skips that partition/replica).
//!
//! | partition state | valid previous states |
//! |---|---|
//! | NewPartition | NonExistent |
//! | OnlinePartition, OfflinePartition | New, Online, Offline |
//! | NonExistentPartition | Offline |
//!
//! | replica state | valid previous states |
//! |---|---|
//! | NewReplica | NonExistent |
//! | OnlineReplica, OfflineReplica | New, Online, Offline, ReplicaDeletionIneligible |
//! | ReplicaDeletionStarted | Offline |
//! | ReplicaDeletionSuccessful | ReplicaDeletionStarted |
//! | ReplicaDeletionIneligible | Offline, ReplicaDeletionStarted |
//! | NonExistentReplica | ReplicaDeletionSuccessful |
//!
//! Worked example: a topic deletion whose broker is down takes that broker's replica
//! Online → Offline → ReplicaDeletionStarted → ReplicaDeletionIneligible, and, when the broker is
//! back, → Offline → ReplicaDeletionStarted → ReplicaDeletionSuccessful → NonExistent.

use std::fmt;

use thiserror::Error;

/// A state of one of the two machines, with Kafka's table of valid previous states.
pub trait MachineState: Copy + Eq + fmt::Debug + fmt::Display + 'static {
    /// The machine's name in messages: `"partition"` or `"replica"`.
    const MACHINE: &'static str;

    /// The states from which a transition into `self` is legal.
    fn valid_previous_states(self) -> &'static [Self];
}

/// Whether `from → to` is a legal transition (Kafka's `validPreviousStates` check).
///
/// ```
/// # use tributary_controller::partition_state::{valid_transition, PartitionState};
/// assert!(valid_transition(PartitionState::Offline, PartitionState::Online));
/// assert!(!valid_transition(PartitionState::Online, PartitionState::NonExistent));
/// ```
pub fn valid_transition<S: MachineState>(from: S, to: S) -> bool {
    to.valid_previous_states().contains(&from)
}

/// `Ok(to)` if `from → to` is legal, else the typed error.
pub fn transition<S: MachineState>(from: S, to: S) -> Result<S, IllegalTransition<S>> {
    if valid_transition(from, to) {
        Ok(to)
    } else {
        Err(IllegalTransition { from, to })
    }
}

/// A transition that the state machine does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error(
    "illegal {} state transition from {from} to {to} (valid previous states of {to}: {})",
    S::MACHINE,
    list(to.valid_previous_states())
)]
pub struct IllegalTransition<S: MachineState> {
    /// The current state.
    pub from: S,
    /// The requested state.
    pub to: S,
}

fn list<S: fmt::Display>(states: &[S]) -> String {
    states
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A partition's state in the controller (Kafka's `PartitionState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PartitionState {
    /// Never created, or deleted.
    NonExistent,
    /// Has an assignment but no leader and ISR yet.
    New,
    /// Has a live leader.
    Online,
    /// Its leader died and no replacement could be elected (leader `-1`), or it is being deleted.
    Offline,
}

impl PartitionState {
    /// Every state, for tables.
    pub const ALL: [PartitionState; 4] =
        [Self::NonExistent, Self::New, Self::Online, Self::Offline];
}

impl MachineState for PartitionState {
    const MACHINE: &'static str = "partition";

    fn valid_previous_states(self) -> &'static [Self] {
        use PartitionState::*;
        match self {
            NonExistent => &[Offline],
            New => &[NonExistent],
            Online | Offline => &[New, Online, Offline],
        }
    }
}

impl fmt::Display for PartitionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Kafka's names, as they appear in its state-change log.
        f.write_str(match self {
            Self::NonExistent => "NonExistentPartition",
            Self::New => "NewPartition",
            Self::Online => "OnlinePartition",
            Self::Offline => "OfflinePartition",
        })
    }
}

/// A replica's state in the controller (Kafka's `ReplicaState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReplicaState {
    /// Not assigned, or fully deleted.
    NonExistent,
    /// Just assigned (topic creation or reassignment); may only become a follower.
    New,
    /// Hosted on a live broker; a leader or a follower.
    Online,
    /// Its broker is dead or shutting down, or it is about to be deleted.
    Offline,
    /// StopReplica(delete = true) was sent.
    ReplicaDeletionStarted,
    /// The broker confirmed the deletion.
    ReplicaDeletionSuccessful,
    /// The deletion failed or the broker is down; retried when the broker returns.
    ReplicaDeletionIneligible,
}

impl ReplicaState {
    /// Every state, for tables.
    pub const ALL: [ReplicaState; 7] = [
        Self::NonExistent,
        Self::New,
        Self::Online,
        Self::Offline,
        Self::ReplicaDeletionStarted,
        Self::ReplicaDeletionSuccessful,
        Self::ReplicaDeletionIneligible,
    ];
}

impl MachineState for ReplicaState {
    const MACHINE: &'static str = "replica";

    fn valid_previous_states(self) -> &'static [Self] {
        use ReplicaState::*;
        match self {
            NonExistent => &[ReplicaDeletionSuccessful],
            New => &[NonExistent],
            Online | Offline => &[New, Online, Offline, ReplicaDeletionIneligible],
            ReplicaDeletionStarted => &[Offline],
            ReplicaDeletionSuccessful => &[ReplicaDeletionStarted],
            ReplicaDeletionIneligible => &[Offline, ReplicaDeletionStarted],
        }
    }
}

impl fmt::Display for ReplicaState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NonExistent => "NonExistentReplica",
            Self::New => "NewReplica",
            Self::Online => "OnlineReplica",
            Self::Offline => "OfflineReplica",
            Self::ReplicaDeletionStarted => "ReplicaDeletionStarted",
            Self::ReplicaDeletionSuccessful => "ReplicaDeletionSuccessful",
            Self::ReplicaDeletionIneligible => "ReplicaDeletionIneligible",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks `valid_transition` over the full from × to grid against the list of legal pairs.
    fn check_grid<S: MachineState>(all: &[S], legal: &[(S, S)]) {
        for &from in all {
            for &to in all {
                let expected = legal.contains(&(from, to));
                assert_eq!(valid_transition(from, to), expected, "{from} -> {to}");
                assert_eq!(
                    transition(from, to),
                    if expected {
                        Ok(to)
                    } else {
                        Err(IllegalTransition { from, to })
                    },
                    "{from} -> {to}"
                );
            }
        }
    }

    #[test]
    fn partition_transition_grid() {
        use PartitionState::*;
        check_grid(
            &PartitionState::ALL,
            &[
                (NonExistent, New),
                (New, Online),
                (New, Offline),
                (Online, Online),
                (Online, Offline),
                (Offline, Online),
                (Offline, Offline),
                (Offline, NonExistent),
            ],
        );
    }

    #[test]
    fn replica_transition_grid() {
        use ReplicaState::*;
        check_grid(
            &ReplicaState::ALL,
            &[
                (NonExistent, New),
                (New, Online),
                (New, Offline),
                (Online, Online),
                (Online, Offline),
                (Offline, Online),
                (Offline, Offline),
                (ReplicaDeletionIneligible, Online),
                (ReplicaDeletionIneligible, Offline),
                (Offline, ReplicaDeletionStarted),
                (ReplicaDeletionStarted, ReplicaDeletionSuccessful),
                (Offline, ReplicaDeletionIneligible),
                (ReplicaDeletionStarted, ReplicaDeletionIneligible),
                (ReplicaDeletionSuccessful, NonExistent),
            ],
        );
    }

    #[test]
    fn deletion_with_a_broker_down_then_back() {
        use ReplicaState::*;
        let path = [
            Online,
            Offline,
            ReplicaDeletionStarted,
            ReplicaDeletionIneligible,
            Offline,
            ReplicaDeletionStarted,
            ReplicaDeletionSuccessful,
            NonExistent,
        ];
        for pair in path.windows(2) {
            assert_eq!(transition(pair[0], pair[1]), Ok(pair[1]));
        }
    }

    #[test]
    fn illegal_transition_messages() {
        let cases = [
            (
                transition(PartitionState::Online, PartitionState::NonExistent)
                    .unwrap_err()
                    .to_string(),
                "illegal partition state transition from OnlinePartition to NonExistentPartition \
                 (valid previous states of NonExistentPartition: OfflinePartition)",
            ),
            (
                transition(ReplicaState::Online, ReplicaState::ReplicaDeletionStarted)
                    .unwrap_err()
                    .to_string(),
                "illegal replica state transition from OnlineReplica to ReplicaDeletionStarted \
                 (valid previous states of ReplicaDeletionStarted: OfflineReplica)",
            ),
        ];
        for (got, expected) in cases {
            assert_eq!(got, expected);
        }
    }
}
