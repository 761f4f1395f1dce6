//! The automatic leader rebalance decision (`auto.leader.rebalance.enable`, checked every
//! `leader.imbalance.check.interval.seconds` = 300 s, first after 5 s).
//!
//! For each broker B, among the partitions whose **preferred replica** (first assigned) is B:
//!
//! ```text
//! imbalance(B) = #(preferring B and led by someone else, or by nobody) / #(preferring B)
//! ```
//!
//! When `imbalance(B) > leader.imbalance.per.broker.percentage / 100` (default 10), a preferred
//! election runs for those of B's partitions where it can succeed: B is live (not shutting down)
//! and in the ISR.
//!
//! Worked example, threshold 10 %: broker 1 is preferred for 10 partitions and leads 9 of them →
//! 1/10 = 10 %, not above the threshold, nothing happens. It leads 8 → 2/10 = 20 % → preferred
//! election for the 2 partitions, if broker 1 is in their ISR.
//!
//! The comparison is exact integer arithmetic (`not_led × 100 > percentage × preferred`). Kafka
//! compares doubles (`notLed.toDouble / total > percentage.toDouble / 100`); IEEE division is
//! correctly rounded, so a ratio exactly on the threshold gives equal doubles there too and the
//! two agree (they could only differ for counts near 2^50).
//!
//! Callers leave out topics queued for deletion and skip the whole check while a reassignment is
//! in progress, as Kafka does.

use std::collections::{BTreeMap, BTreeSet};

use tributary_zk_layout::BrokerId;

use crate::model::LeaderAndIsr;

/// One partition as the rebalance check sees it.
#[derive(Debug, Clone, Copy)]
pub struct PartitionLeadership<'a> {
    /// The replicas in preference order; the first is the preferred leader.
    pub replicas: &'a [BrokerId],
    /// The current leader and ISR.
    pub leader_and_isr: &'a LeaderAndIsr,
}

/// One broker's leadership balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BrokerImbalance {
    /// Partitions whose preferred replica is this broker. Invariant: `>= 1` in a computed map.
    pub preferred: usize,
    /// Of those, partitions it does not lead. Invariant: `not_led <= preferred`.
    pub not_led: usize,
}

impl BrokerImbalance {
    /// `not_led / preferred`, for logs and metrics.
    pub fn ratio(&self) -> f64 {
        if self.preferred == 0 {
            0.0
        } else {
            self.not_led as f64 / self.preferred as f64
        }
    }

    /// Whether the ratio is strictly above `percentage` %, computed exactly.
    pub fn exceeds(&self, percentage: u32) -> bool {
        debug_assert!(self.not_led <= self.preferred);
        (self.not_led as u128) * 100 > u128::from(percentage) * (self.preferred as u128)
    }
}

/// The outcome of one rebalance check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebalanceDecision<K> {
    /// Every broker that is the preferred replica of at least one partition.
    pub imbalance: BTreeMap<BrokerId, BrokerImbalance>,
    /// The partitions to run a preferred election for (empty: nothing to do).
    pub elect: BTreeSet<K>,
}

/// Decides which partitions get a preferred election, given each partition's assignment and
/// current leader and ISR, the live brokers (registered and not shutting down) and
/// `leader.imbalance.per.broker.percentage`.
///
/// ```
/// # use std::collections::BTreeSet;
/// # use tributary_controller::{model::LeaderAndIsr, rebalance::{auto_rebalance, PartitionLeadership}};
/// # use tributary_zk_layout::{BrokerId, ControllerEpoch, LeaderEpoch};
/// let b = |ids: &[i32]| ids.iter().copied().map(BrokerId).collect::<Vec<_>>();
/// let state = |leader| LeaderAndIsr { leader: BrokerId(leader), leader_epoch: LeaderEpoch(1), isr: b(&[1, 2]), controller_epoch: ControllerEpoch(1) };
/// let (p0, p1, r0, r1) = (state(1), state(1), b(&[1, 2]), b(&[2, 1]));
/// // Broker 2 came back: it prefers p1 but broker 1 leads both partitions.
/// let partitions = [
///     ("p0", PartitionLeadership { replicas: &r0, leader_and_isr: &p0 }),
///     ("p1", PartitionLeadership { replicas: &r1, leader_and_isr: &p1 }),
/// ];
/// let live: BTreeSet<_> = b(&[1, 2]).into_iter().collect();
/// let decision = auto_rebalance(partitions, &live, 10);
/// assert_eq!(decision.elect, BTreeSet::from(["p1"]));
/// ```
pub fn auto_rebalance<'a, K: Ord>(
    partitions: impl IntoIterator<Item = (K, PartitionLeadership<'a>)>,
    live_brokers: &BTreeSet<BrokerId>,
    imbalance_percentage: u32,
) -> RebalanceDecision<K> {
    let mut imbalance: BTreeMap<BrokerId, BrokerImbalance> = BTreeMap::new();
    let mut not_led: BTreeMap<BrokerId, Vec<(K, PartitionLeadership<'a>)>> = BTreeMap::new();
    for (key, partition) in partitions {
        let Some(&preferred) = partition.replicas.first() else {
            continue;
        };
        let counts = imbalance.entry(preferred).or_default();
        counts.preferred += 1;
        if partition.leader_and_isr.leader != preferred {
            counts.not_led += 1;
            not_led.entry(preferred).or_default().push((key, partition));
        }
    }
    let mut elect = BTreeSet::new();
    for (broker, partitions) in not_led {
        if !imbalance[&broker].exceeds(imbalance_percentage) || !live_brokers.contains(&broker) {
            continue;
        }
        elect.extend(
            partitions
                .into_iter()
                .filter(|(_, p)| p.leader_and_isr.isr.contains(&broker))
                .map(|(key, _)| key),
        );
    }
    RebalanceDecision { imbalance, elect }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_zk_layout::{ControllerEpoch, LeaderEpoch};

    /// A partition: (replicas, leader, isr).
    type Row = (&'static [i32], i32, &'static [i32]);

    fn ids(raw: &[i32]) -> Vec<BrokerId> {
        raw.iter().copied().map(BrokerId).collect()
    }

    fn decide(rows: &[Row], live: &[i32], percentage: u32) -> RebalanceDecision<usize> {
        let owned: Vec<(Vec<BrokerId>, LeaderAndIsr)> = rows
            .iter()
            .map(|(replicas, leader, isr)| {
                let state = LeaderAndIsr {
                    leader: BrokerId(*leader),
                    leader_epoch: LeaderEpoch(1),
                    isr: ids(isr),
                    controller_epoch: ControllerEpoch(1),
                };
                (ids(replicas), state)
            })
            .collect();
        let live: BTreeSet<BrokerId> = ids(live).into_iter().collect();
        auto_rebalance(
            owned.iter().enumerate().map(|(i, (replicas, state))| {
                (
                    i,
                    PartitionLeadership {
                        replicas,
                        leader_and_isr: state,
                    },
                )
            }),
            &live,
            percentage,
        )
    }

    /// `total` partitions preferring broker 1 (replicas [1, 2], ISR [1, 2]); the first
    /// `not_led` of them are led by broker 2.
    fn preferring_one(total: usize, not_led: usize) -> Vec<Row> {
        (0..total)
            .map(|i| -> Row { (&[1, 2], if i < not_led { 2 } else { 1 }, &[1, 2]) })
            .collect()
    }

    #[test]
    fn rebalance_table() {
        struct Case {
            name: &'static str,
            rows: Vec<Row>,
            live: &'static [i32],
            percentage: u32,
            elect: &'static [usize],
        }
        let cases = [
            Case {
                name: "balanced",
                rows: preferring_one(10, 0),
                live: &[1, 2],
                percentage: 10,
                elect: &[],
            },
            Case {
                name: "exactly 10 % is not above the 10 % threshold",
                rows: preferring_one(10, 1),
                live: &[1, 2],
                percentage: 10,
                elect: &[],
            },
            Case {
                name: "20 % is above 10 %",
                rows: preferring_one(10, 2),
                live: &[1, 2],
                percentage: 10,
                elect: &[0, 1],
            },
            Case {
                name: "1 of 9 (11.1 %) is above 10 %",
                rows: preferring_one(9, 1),
                live: &[1, 2],
                percentage: 10,
                elect: &[0],
            },
            Case {
                name: "exactly on the threshold: 3/10 at 30 % (as in Kafka, whose doubles agree)",
                rows: preferring_one(10, 3),
                live: &[1, 2],
                percentage: 30,
                elect: &[],
            },
            Case {
                name: "threshold 0: any imbalance triggers",
                rows: preferring_one(10, 1),
                live: &[1, 2],
                percentage: 0,
                elect: &[0],
            },
            Case {
                name: "threshold 100: never triggers",
                rows: preferring_one(2, 2),
                live: &[1, 2],
                percentage: 100,
                elect: &[],
            },
            Case {
                name: "preferred broker not live (or shutting down)",
                rows: preferring_one(2, 2),
                live: &[2],
                percentage: 10,
                elect: &[],
            },
            Case {
                name: "preferred replica out of the ISR is counted but not elected",
                rows: vec![(&[1, 2], 2, &[2]), (&[1, 2], 2, &[2, 1])],
                live: &[1, 2],
                percentage: 10,
                elect: &[1],
            },
            Case {
                name: "leaderless partition counts as not led",
                rows: vec![(&[1, 2], -1, &[1]), (&[1, 2], 1, &[1, 2])],
                live: &[1, 2],
                percentage: 10,
                elect: &[0],
            },
            Case {
                name: "only the imbalanced broker's partitions",
                rows: vec![
                    (&[1, 2, 3], 1, &[1, 2, 3]),
                    (&[1, 2, 3], 1, &[1, 2, 3]),
                    (&[2, 3, 1], 3, &[1, 2, 3]),
                    (&[3, 1, 2], 3, &[1, 2, 3]),
                ],
                live: &[1, 2, 3],
                percentage: 10,
                elect: &[2],
            },
            Case {
                name: "partitions with no replicas are ignored",
                rows: vec![(&[], -1, &[]), (&[1], 1, &[1])],
                live: &[1],
                percentage: 10,
                elect: &[],
            },
        ];
        for case in cases {
            let decision = decide(&case.rows, case.live, case.percentage);
            let elect: Vec<usize> = decision.elect.into_iter().collect();
            assert_eq!(elect, case.elect, "{}", case.name);
        }
    }

    #[test]
    fn imbalance_counts_per_preferred_broker() {
        let rows: Vec<Row> = vec![
            (&[1, 2], 1, &[1, 2]),
            (&[1, 2], 2, &[1, 2]),
            (&[2, 1], 2, &[1, 2]),
            (&[2, 1], 1, &[1, 2]),
            (&[2, 1], 1, &[1, 2]),
        ];
        let decision = decide(&rows, &[1, 2], 10);
        let expected = BTreeMap::from([
            (
                BrokerId(1),
                BrokerImbalance {
                    preferred: 2,
                    not_led: 1,
                },
            ),
            (
                BrokerId(2),
                BrokerImbalance {
                    preferred: 3,
                    not_led: 2,
                },
            ),
        ]);
        assert_eq!(decision.imbalance, expected);
        assert_eq!(decision.imbalance[&BrokerId(1)].ratio(), 0.5);
        assert_eq!(decision.elect, BTreeSet::from([1, 3, 4]));
    }

    #[test]
    fn exceeds_table() {
        let cases = [
            (0, 0, 10, false),
            (1, 0, 0, false),
            (1, 1, 0, true),
            (10, 1, 10, false),
            (10, 2, 10, true),
            (10, 3, 30, false),
            (3, 1, 33, true),
            (3, 1, 34, false),
        ];
        for (preferred, not_led, percentage, expected) in cases {
            let imbalance = BrokerImbalance { preferred, not_led };
            assert_eq!(
                imbalance.exceeds(percentage),
                expected,
                "{imbalance:?} at {percentage}%"
            );
        }
    }
}
