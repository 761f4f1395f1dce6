//! Pure decisions of OffsetCommit: whether the committer may commit for the group (Kafka's
//! `GroupCoordinator.handleCommitOffsets`, in its order) and whether one partition's offset is
//! acceptable.

use super::error::GroupError;
use super::state::{Group, GroupState};

/// The generation of a commit from outside group management.
pub const NO_GENERATION: i32 = -1;

/// Whether `member_id` at `generation` may commit offsets for `group` (`None`: the coordinator
/// does not know the group):
///
/// | group                    | generation | member          | outcome                      |
/// |--------------------------|------------|-----------------|------------------------------|
/// | unknown                  | < 0        | any             | accepted (creates the group) |
/// | unknown                  | >= 0       | any             | ILLEGAL_GENERATION           |
/// | Dead                     | any        | any             | COORDINATOR_NOT_AVAILABLE    |
/// | Empty                    | < 0        | any             | accepted                     |
/// | CompletingRebalance      | any        | any             | REBALANCE_IN_PROGRESS        |
/// | other                    | any        | not a member    | UNKNOWN_MEMBER_ID            |
/// | other                    | ≠ current  | member          | ILLEGAL_GENERATION           |
/// | other                    | = current  | member          | accepted                     |
///
/// As in Kafka a commit with generation -1 to an Empty group is accepted whatever member id
/// it names: the member id means nothing outside group management.
pub fn check_committer(
    group_id: &str,
    group: Option<&Group>,
    generation: i32,
    member_id: &str,
) -> Result<(), GroupError> {
    let Some(group) = group else {
        return if generation < 0 {
            Ok(())
        } else {
            Err(GroupError::IllegalGeneration {
                group: group_id.to_owned(),
                received: generation,
                current: NO_GENERATION,
            })
        };
    };
    match group.state {
        GroupState::Dead => Err(GroupError::CoordinatorNotAvailable {
            group: group_id.to_owned(),
            reason: "the group is being removed".to_owned(),
        }),
        GroupState::Empty if generation < 0 => Ok(()),
        GroupState::CompletingRebalance => Err(GroupError::RebalanceInProgress {
            group: group_id.to_owned(),
        }),
        _ if !group.members.contains_key(member_id) => Err(GroupError::UnknownMember {
            group: group_id.to_owned(),
            member_id: member_id.to_owned(),
        }),
        _ if generation != group.generation => Err(GroupError::IllegalGeneration {
            group: group_id.to_owned(),
            received: generation,
            current: group.generation,
        }),
        _ => Ok(()),
    }
}

/// Whether a group id can be used: non-empty (Kafka still accepts an empty id in OffsetCommit
/// for pre-0.9 clients; Tributary has none) and short enough for the `int16` length of the
/// offsets records.
pub fn check_group_id(group_id: &str) -> Result<(), GroupError> {
    let reason = if group_id.is_empty() {
        "the group id is empty"
    } else if group_id.len() > i16::MAX as usize {
        "the group id is longer than 32767 bytes"
    } else {
        return Ok(());
    };
    Err(GroupError::InvalidGroupId {
        group: group_id.chars().take(64).collect(),
        reason,
    })
}

/// Whether one partition's metadata fits `offset.metadata.max.bytes` (compared in UTF-8
/// bytes; Kafka compares UTF-16 characters, the same for ASCII).
pub fn metadata_fits(metadata: &str, max_bytes: usize) -> bool {
    metadata.len() <= max_bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::state::Member;

    fn group(state: GroupState, generation: i32, members: &[&str]) -> Group {
        Group {
            state,
            generation,
            members: members
                .iter()
                .map(|m| {
                    (
                        (*m).to_owned(),
                        Member::joining(*m, "client", 10_000, 10_000, Vec::new(), 0),
                    )
                })
                .collect(),
            ..Group::empty()
        }
    }

    #[derive(Debug, PartialEq)]
    enum Outcome {
        Accepted,
        IllegalGeneration,
        UnknownMember,
        Rebalancing,
        NotAvailable,
    }

    fn outcome(result: Result<(), GroupError>) -> Outcome {
        match result {
            Ok(()) => Outcome::Accepted,
            Err(GroupError::IllegalGeneration { .. }) => Outcome::IllegalGeneration,
            Err(GroupError::UnknownMember { .. }) => Outcome::UnknownMember,
            Err(GroupError::RebalanceInProgress { .. }) => Outcome::Rebalancing,
            Err(GroupError::CoordinatorNotAvailable { .. }) => Outcome::NotAvailable,
            Err(other) => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn committers_are_checked_in_kafkas_order() {
        use Outcome::*;
        let empty = group(GroupState::Empty, 0, &[]);
        let stable = group(GroupState::Stable, 4, &["m1", "m2"]);
        let completing = group(GroupState::CompletingRebalance, 5, &["m1"]);
        let preparing = group(GroupState::PreparingRebalance, 4, &["m1"]);
        let dead = group(GroupState::Dead, 4, &[]);
        let table: &[(Option<&Group>, i32, &str, Outcome)] = &[
            // Simple commits: generation -1 on an unknown or Empty group.
            (None, -1, "", Accepted),
            (None, -1, "someone", Accepted),
            (Some(&empty), -1, "", Accepted),
            (Some(&empty), -1, "someone", Accepted),
            // A generation on a group without that generation or member.
            (None, 0, "", IllegalGeneration),
            (None, 3, "m1", IllegalGeneration),
            (Some(&empty), 0, "", UnknownMember),
            (Some(&empty), 0, "m1", UnknownMember),
            (Some(&empty), 7, "m1", UnknownMember),
            // A group with members.
            (Some(&stable), 4, "m1", Accepted),
            (Some(&stable), 3, "m1", IllegalGeneration),
            (Some(&stable), 5, "m2", IllegalGeneration),
            (Some(&stable), 4, "m9", UnknownMember),
            (Some(&stable), -1, "", UnknownMember),
            (Some(&preparing), 4, "m1", Accepted),
            (Some(&completing), 5, "m1", Rebalancing),
            (Some(&completing), -1, "", Rebalancing),
            (Some(&dead), -1, "", NotAvailable),
        ];
        for (group, generation, member, expected) in table {
            let got = outcome(check_committer("g", *group, *generation, member));
            assert_eq!(
                &got,
                expected,
                "{:?} generation {generation} member {member:?}",
                group.map(|g| g.state)
            );
        }
    }

    #[test]
    fn group_ids_must_be_non_empty_and_fit_an_int16() {
        assert!(check_group_id("g").is_ok());
        assert!(check_group_id(&"x".repeat(32_767)).is_ok());
        assert!(matches!(
            check_group_id(""),
            Err(GroupError::InvalidGroupId { .. })
        ));
        assert!(matches!(
            check_group_id(&"x".repeat(32_768)),
            Err(GroupError::InvalidGroupId { .. })
        ));
    }

    #[test]
    fn metadata_is_limited_in_bytes() {
        assert!(metadata_fits("", 0));
        assert!(metadata_fits("abcd", 4));
        assert!(!metadata_fits("abcde", 4));
        assert!(!metadata_fits("é", 1), "two UTF-8 bytes");
    }
}
