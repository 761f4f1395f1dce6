//! Replica placement for CreateTopics and CreatePartitions.
//!
//! The rule: sort the live broker ids and drop duplicates; replica `j` of partition `i` goes to
//! the broker at index `(i + j) mod n` of that sorted list, so the first replica (the preferred
//! leader) rotates over the brokers and leaderships are spread evenly.
//!
//! Worked example, 6 partitions × RF 3 over brokers `[1, 2, 3]`:
//!
//! ```text
//! p0 [1, 2, 3]   p1 [2, 3, 1]   p2 [3, 1, 2]
//! p3 [1, 2, 3]   p4 [2, 3, 1]   p5 [3, 1, 2]
//! ```
//!
//! Difference from Kafka (`AdminUtils.assignReplicasToBrokers`, rack-unaware): Kafka starts at a
//! random index and, each time `i` reaches a positive multiple of `n`, shifts the followers by one
//! more place so that the same replica pairs do not repeat (n = 5: Kafka puts p5 on `[0, 2, 3]`
//! where this rule gives `[0, 1, 2]`). The two agree exactly for `i < n` with Kafka's start index
//! and shift fixed at 0. Tributary keeps the simpler deterministic rule (documented in
//! `docs/zookeeper-layout.md`); a topic written directly to ZooKeeper with Kafka's placement is
//! still accepted, since the controller only reads assignments.

use std::collections::BTreeMap;

use thiserror::Error;
use tributary_zk_layout::{BrokerId, PartitionId};

/// A topic's replica assignment: partition id → replicas in preference order.
pub type Assignment = BTreeMap<PartitionId, Vec<BrokerId>>;

/// Why a placement request was refused. Messages carry the numbers the operator asked for.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PlacementError {
    /// Fewer than one partition requested.
    #[error("number of partitions must be at least 1, got {partitions}")]
    InvalidPartitionCount {
        /// The requested number of partitions.
        partitions: i32,
    },
    /// Fewer than one replica requested.
    #[error("replication factor must be at least 1, got {replication_factor}")]
    InvalidReplicationFactor {
        /// The requested replication factor.
        replication_factor: i32,
    },
    /// No broker is registered, so nothing can host a replica.
    #[error("no live brokers to place replicas on")]
    NoLiveBrokers,
    /// More replicas per partition than distinct live brokers.
    #[error(
        "replication factor {replication_factor} is larger than the number of live brokers ({live_brokers})"
    )]
    ReplicationFactorTooLarge {
        /// The requested replication factor.
        replication_factor: i32,
        /// The number of distinct live brokers.
        live_brokers: usize,
    },
    /// CreatePartitions on a topic with no partitions in its assignment.
    #[error("the existing assignment has no partitions to extend")]
    EmptyExistingAssignment,
    /// The existing assignment's partition ids are not `0..count`.
    #[error("the existing assignment of {count} partitions has no partition {missing}")]
    ExistingAssignmentHasGap {
        /// The number of partitions in the existing assignment.
        count: usize,
        /// The first id in `0..count` that is absent.
        missing: PartitionId,
    },
    /// CreatePartitions can only add partitions.
    #[error("the topic has {current} partitions; the new total must be larger, got {requested}")]
    PartitionCountNotIncreased {
        /// The number of partitions the topic has.
        current: usize,
        /// The requested new total.
        requested: i32,
    },
}

/// Assigns `replication_factor` replicas to each of `partitions` partitions over `live_brokers`
/// (in any order; duplicates ignored): replica `j` of partition `i` → `sorted[(i + j) mod n]`.
///
/// ```
/// # use tributary_controller::placement::assign_replicas;
/// # use tributary_zk_layout::{BrokerId, PartitionId};
/// let live = [BrokerId(3), BrokerId(1), BrokerId(2)];
/// let assignment = assign_replicas(4, 2, &live).unwrap();
/// assert_eq!(assignment[&PartitionId(0)], [BrokerId(1), BrokerId(2)]);
/// assert_eq!(assignment[&PartitionId(2)], [BrokerId(3), BrokerId(1)]);
/// assert_eq!(assignment[&PartitionId(3)], [BrokerId(1), BrokerId(2)]);
/// ```
pub fn assign_replicas(
    partitions: i32,
    replication_factor: i32,
    live_brokers: &[BrokerId],
) -> Result<Assignment, PlacementError> {
    if partitions < 1 {
        return Err(PlacementError::InvalidPartitionCount { partitions });
    }
    let sorted = validated_brokers(replication_factor, live_brokers)?;
    Ok((0..partitions)
        .map(|i| (PartitionId(i), replicas_for(i, replication_factor, &sorted)))
        .collect())
}

/// CreatePartitions: the existing assignment plus partitions `current..new_total_partitions`,
/// placed by the same rule with `i` = the new partition id and the replication factor of
/// partition 0 of the existing assignment (as Kafka's `AdminZkClient.createPartitions`).
/// Existing partitions are returned unchanged, so the result is what gets written back to
/// `/brokers/topics/<t>`.
///
/// ```
/// # use tributary_controller::placement::{assign_replicas, extend_assignment};
/// # use tributary_zk_layout::{BrokerId, PartitionId};
/// let live = [BrokerId(1), BrokerId(2), BrokerId(3)];
/// let existing = assign_replicas(2, 2, &live).unwrap(); // p0 [1, 2], p1 [2, 3]
/// let extended = extend_assignment(&existing, 4, &live).unwrap();
/// assert_eq!(extended.len(), 4);
/// assert_eq!(extended[&PartitionId(2)], [BrokerId(3), BrokerId(1)]);
/// assert_eq!(extended[&PartitionId(3)], [BrokerId(1), BrokerId(2)]);
/// ```
pub fn extend_assignment(
    existing: &Assignment,
    new_total_partitions: i32,
    live_brokers: &[BrokerId],
) -> Result<Assignment, PlacementError> {
    let Some(first) = existing.values().next() else {
        return Err(PlacementError::EmptyExistingAssignment);
    };
    let current = existing.len();
    if let Some(missing) = (0..current)
        .map(|i| PartitionId(i as i32))
        .find(|p| !existing.contains_key(p))
    {
        return Err(PlacementError::ExistingAssignmentHasGap {
            count: current,
            missing,
        });
    }
    if i64::from(new_total_partitions) <= current as i64 {
        return Err(PlacementError::PartitionCountNotIncreased {
            current,
            requested: new_total_partitions,
        });
    }
    let replication_factor = i32::try_from(first.len()).unwrap_or(i32::MAX);
    let sorted = validated_brokers(replication_factor, live_brokers)?;
    let mut extended = existing.clone();
    for i in current as i32..new_total_partitions {
        extended.insert(PartitionId(i), replicas_for(i, replication_factor, &sorted));
    }
    Ok(extended)
}

/// The sorted, de-duplicated live brokers, after checking the replication factor against them.
fn validated_brokers(
    replication_factor: i32,
    live_brokers: &[BrokerId],
) -> Result<Vec<BrokerId>, PlacementError> {
    if replication_factor < 1 {
        return Err(PlacementError::InvalidReplicationFactor { replication_factor });
    }
    let mut sorted = live_brokers.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.is_empty() {
        return Err(PlacementError::NoLiveBrokers);
    }
    if replication_factor as usize > sorted.len() {
        return Err(PlacementError::ReplicationFactorTooLarge {
            replication_factor,
            live_brokers: sorted.len(),
        });
    }
    Ok(sorted)
}

/// Replicas of partition `i`. Preconditions: `i >= 0`, `1 <= rf <= sorted.len()`.
fn replicas_for(i: i32, replication_factor: i32, sorted: &[BrokerId]) -> Vec<BrokerId> {
    let n = sorted.len();
    let start = i as usize % n;
    (0..replication_factor as usize)
        .map(|j| sorted[(start + j) % n])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ids(raw: &[i32]) -> Vec<BrokerId> {
        raw.iter().copied().map(BrokerId).collect()
    }

    fn rows(assignment: &Assignment) -> Vec<Vec<i32>> {
        assignment
            .iter()
            .enumerate()
            .map(|(i, (p, replicas))| {
                assert_eq!(p.0, i as i32, "partition ids are 0..n");
                replicas.iter().map(|b| b.0).collect()
            })
            .collect()
    }

    #[test]
    fn assignment_table() {
        struct Case {
            name: &'static str,
            partitions: i32,
            rf: i32,
            live: &'static [i32],
            expected: &'static [&'static [i32]],
        }
        let cases = [
            Case {
                name: "6 partitions x RF 3 over 3 brokers (the issue's example)",
                partitions: 6,
                rf: 3,
                live: &[1, 2, 3],
                expected: &[
                    &[1, 2, 3],
                    &[2, 3, 1],
                    &[3, 1, 2],
                    &[1, 2, 3],
                    &[2, 3, 1],
                    &[3, 1, 2],
                ],
            },
            Case {
                name: "unsorted input ids are sorted first",
                partitions: 3,
                rf: 2,
                live: &[30, 10, 20],
                expected: &[&[10, 20], &[20, 30], &[30, 10]],
            },
            Case {
                name: "duplicate ids count once",
                partitions: 2,
                rf: 2,
                live: &[2, 1, 2, 1],
                expected: &[&[1, 2], &[2, 1]],
            },
            Case {
                name: "n = 5, RF 3: wraps without Kafka's follower shift",
                partitions: 7,
                rf: 3,
                live: &[0, 1, 2, 3, 4],
                expected: &[
                    &[0, 1, 2],
                    &[1, 2, 3],
                    &[2, 3, 4],
                    &[3, 4, 0],
                    &[4, 0, 1],
                    &[0, 1, 2],
                    &[1, 2, 3],
                ],
            },
            Case {
                name: "RF 1",
                partitions: 4,
                rf: 1,
                live: &[5, 7],
                expected: &[&[5], &[7], &[5], &[7]],
            },
            Case {
                name: "RF equal to the broker count",
                partitions: 1,
                rf: 4,
                live: &[4, 3, 2, 1],
                expected: &[&[1, 2, 3, 4]],
            },
            Case {
                name: "single broker",
                partitions: 2,
                rf: 1,
                live: &[9],
                expected: &[&[9], &[9]],
            },
        ];
        for case in cases {
            let assignment = assign_replicas(case.partitions, case.rf, &ids(case.live))
                .unwrap_or_else(|e| panic!("{}: {e}", case.name));
            let expected: Vec<Vec<i32>> = case.expected.iter().map(|r| r.to_vec()).collect();
            assert_eq!(rows(&assignment), expected, "{}", case.name);
        }
    }

    #[test]
    fn refusal_table() {
        let cases: [(i32, i32, &[i32], PlacementError, &str); 6] = [
            (
                0,
                1,
                &[1],
                PlacementError::InvalidPartitionCount { partitions: 0 },
                "number of partitions must be at least 1, got 0",
            ),
            (
                -3,
                1,
                &[1],
                PlacementError::InvalidPartitionCount { partitions: -3 },
                "number of partitions must be at least 1, got -3",
            ),
            (
                1,
                0,
                &[1],
                PlacementError::InvalidReplicationFactor {
                    replication_factor: 0,
                },
                "replication factor must be at least 1, got 0",
            ),
            (
                1,
                1,
                &[],
                PlacementError::NoLiveBrokers,
                "no live brokers to place replicas on",
            ),
            (
                1,
                3,
                &[1, 2],
                PlacementError::ReplicationFactorTooLarge {
                    replication_factor: 3,
                    live_brokers: 2,
                },
                "replication factor 3 is larger than the number of live brokers (2)",
            ),
            (
                1,
                3,
                &[1, 2, 2],
                PlacementError::ReplicationFactorTooLarge {
                    replication_factor: 3,
                    live_brokers: 2,
                },
                "replication factor 3 is larger than the number of live brokers (2)",
            ),
        ];
        for (partitions, rf, live, expected, message) in cases {
            let err = assign_replicas(partitions, rf, &ids(live)).unwrap_err();
            assert_eq!(err, expected);
            assert_eq!(err.to_string(), message);
        }
    }

    #[test]
    fn extend_continues_the_rule_with_the_new_partition_ids() {
        let live = ids(&[1, 2, 3]);
        let existing = assign_replicas(2, 3, &live).unwrap();
        let extended = extend_assignment(&existing, 6, &live).unwrap();
        assert_eq!(extended, assign_replicas(6, 3, &live).unwrap());

        // Existing partitions are kept as they are, even on brokers that are gone.
        let mut old = Assignment::new();
        old.insert(PartitionId(0), ids(&[7, 8]));
        old.insert(PartitionId(1), ids(&[8, 7]));
        let extended = extend_assignment(&old, 4, &ids(&[3, 1, 2])).unwrap();
        assert_eq!(
            rows(&extended),
            vec![vec![7, 8], vec![8, 7], vec![3, 1], vec![1, 2]]
        );
    }

    #[test]
    fn extend_refusal_table() {
        let live = ids(&[1, 2, 3]);
        let three = assign_replicas(3, 3, &live).unwrap();
        let mut gap = three.clone();
        gap.remove(&PartitionId(1));
        let cases: [(&Assignment, i32, &[i32], PlacementError, &str); 5] = [
            (
                &three,
                3,
                &[1, 2, 3],
                PlacementError::PartitionCountNotIncreased {
                    current: 3,
                    requested: 3,
                },
                "the topic has 3 partitions; the new total must be larger, got 3",
            ),
            (
                &three,
                2,
                &[1, 2, 3],
                PlacementError::PartitionCountNotIncreased {
                    current: 3,
                    requested: 2,
                },
                "the topic has 3 partitions; the new total must be larger, got 2",
            ),
            (
                &three,
                5,
                &[1, 2],
                PlacementError::ReplicationFactorTooLarge {
                    replication_factor: 3,
                    live_brokers: 2,
                },
                "replication factor 3 is larger than the number of live brokers (2)",
            ),
            (
                &Assignment::new(),
                5,
                &[1, 2, 3],
                PlacementError::EmptyExistingAssignment,
                "the existing assignment has no partitions to extend",
            ),
            (
                &gap,
                5,
                &[1, 2, 3],
                PlacementError::ExistingAssignmentHasGap {
                    count: 2,
                    missing: PartitionId(1),
                },
                "the existing assignment of 2 partitions has no partition 1",
            ),
        ];
        for (existing, total, live, expected, message) in cases {
            let err = extend_assignment(existing, total, &ids(live)).unwrap_err();
            assert_eq!(err, expected);
            assert_eq!(err.to_string(), message);
        }
    }

    proptest! {
        #[test]
        fn replicas_are_distinct_live_and_leaders_are_even(
            live in proptest::collection::btree_set(0i32..50, 1..8),
            partitions in 1i32..60,
            rf_seed in 0usize..8,
        ) {
            let live: Vec<BrokerId> = live.into_iter().map(BrokerId).collect();
            let rf = (rf_seed % live.len()) as i32 + 1;
            let assignment = assign_replicas(partitions, rf, &live).unwrap();
            prop_assert_eq!(assignment.len(), partitions as usize);
            let mut leaders: BTreeMap<BrokerId, usize> = live.iter().map(|b| (*b, 0)).collect();
            for replicas in assignment.values() {
                prop_assert_eq!(replicas.len(), rf as usize);
                let mut distinct = replicas.clone();
                distinct.sort_unstable();
                distinct.dedup();
                prop_assert_eq!(distinct.len(), replicas.len());
                prop_assert!(replicas.iter().all(|b| live.contains(b)));
                *leaders.get_mut(&replicas[0]).unwrap() += 1;
            }
            let most = leaders.values().max().unwrap();
            let least = leaders.values().min().unwrap();
            prop_assert!(most - least <= 1, "leader counts {:?}", leaders);
        }

        #[test]
        fn extending_equals_assigning_the_total_at_once(
            live in proptest::collection::btree_set(0i32..20, 1..6),
            first in 1i32..20,
            more in 1i32..20,
        ) {
            let live: Vec<BrokerId> = live.into_iter().map(BrokerId).collect();
            let rf = live.len() as i32;
            let existing = assign_replicas(first, rf, &live).unwrap();
            prop_assert_eq!(
                extend_assignment(&existing, first + more, &live).unwrap(),
                assign_replicas(first + more, rf, &live).unwrap()
            );
        }
    }
}
