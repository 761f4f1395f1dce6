//! Pure leader-side replication rules (Kafka 2.8 `Partition`/`Replica`): follower progress,
//! the high watermark, and when the ISR expands or shrinks. Values in, values out; the
//! [`Partition`](super::Partition) applies them under its lock and the
//! [`isr_writer`](super::isr_writer) writes the resulting ISR to ZooKeeper.

use std::collections::BTreeMap;

use tributary_zk_layout::{BrokerId, ControllerEpoch, LeaderEpoch, ZkVersion};

/// An ISR change a leader decided: the partition state znode rewritten with `isr`, keeping
/// leader, leader epoch and controller epoch, conditionally on `zk_version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrUpdate {
    /// The leader (this broker).
    pub leader: BrokerId,
    /// The leader epoch the decision was made under; the write is abandoned if the znode
    /// holds another one.
    pub leader_epoch: LeaderEpoch,
    /// The controller epoch of the LeaderAndIsr that made this broker leader (copied back).
    pub controller_epoch: ControllerEpoch,
    /// The state znode's version the leader last knew.
    pub zk_version: ZkVersion,
    /// The new ISR.
    pub isr: Vec<BrokerId>,
}

/// What the leader knows about one follower, from its fetches.
///
/// Invariant: `log_end_offset` is -1 (unknown: no fetch since this broker became leader) or
/// at most the leader's LEO when it was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerProgress {
    /// The follower's LEO: the fetch offset of its last fetch (the fetch offset *is* the
    /// acknowledgement of everything below it).
    pub log_end_offset: i64,
    /// The last time (ms) the follower was known to have reached the leader's LEO.
    pub last_caught_up_ms: i64,
    /// The leader's LEO when the follower's previous fetch arrived.
    pub leader_end_at_last_fetch: i64,
    /// When the follower's previous fetch arrived (ms).
    pub last_fetch_ms: i64,
}

impl FollowerProgress {
    /// The progress a new leader starts with (Kafka's `resetReplicaState`): LEO unknown, ISR
    /// members count as caught up now (so they are not shrunk at once), others never.
    pub fn on_leadership(in_isr: bool, now_ms: i64) -> Self {
        Self {
            log_end_offset: -1,
            last_caught_up_ms: if in_isr { now_ms } else { 0 },
            leader_end_at_last_fetch: -1,
            last_fetch_ms: 0,
        }
    }

    /// Records a follower fetch at `fetch_offset` while the leader's LEO is `leader_end`.
    ///
    /// Caught up (Kafka's `updateFetchState`): a fetch at the leader's LEO is caught up now; a
    /// fetch at or beyond the leader's LEO of the *previous* fetch proves the follower was
    /// caught up at that previous fetch. A fetch beyond the leader's LEO (a follower that has
    /// not truncated its divergent tail yet) is not an acknowledgement and changes nothing.
    pub fn record_fetch(&mut self, fetch_offset: i64, leader_end: i64, now_ms: i64) {
        if fetch_offset > leader_end {
            return;
        }
        if fetch_offset >= leader_end {
            self.last_caught_up_ms = self.last_caught_up_ms.max(now_ms);
        } else if fetch_offset >= self.leader_end_at_last_fetch
            && self.leader_end_at_last_fetch >= 0
        {
            self.last_caught_up_ms = self.last_caught_up_ms.max(self.last_fetch_ms);
        }
        self.log_end_offset = fetch_offset;
        self.leader_end_at_last_fetch = leader_end;
        self.last_fetch_ms = now_ms;
    }
}

/// The high watermark the ISR allows: the minimum LEO over the ISR, the leader (`me`, whose
/// LEO is `leader_end`) included. A member with unknown progress (-1) holds it at -1, which
/// the caller's forward-only rule turns into "unchanged".
///
/// Example: leader LEO 10, ISR {1 (leader), 2 at 7, 3 at 9} → 7; add non-ISR replica 4 at 2
/// → still 7 (only the ISR counts).
pub fn high_watermark(
    me: BrokerId,
    leader_end: i64,
    isr: &[BrokerId],
    followers: &BTreeMap<BrokerId, FollowerProgress>,
) -> i64 {
    isr.iter()
        .filter(|&&replica| replica != me)
        .map(|replica| followers.get(replica).map_or(-1, |f| f.log_end_offset))
        .fold(leader_end, i64::min)
}

/// Whether a follower outside the ISR may join it: its LEO has reached the high watermark
/// and the start offset of the leader's current epoch (KAFKA-7128: otherwise a replica
/// without the data the current leader committed could join and later be elected).
pub fn may_join_isr(follower_end: i64, high_watermark: i64, epoch_start_offset: i64) -> bool {
    follower_end >= 0 && follower_end >= high_watermark && follower_end >= epoch_start_offset
}

/// The ISR members (the leader `me` excluded) that are out of sync (Kafka's
/// `getOutOfSyncReplicas`): behind the leader's LEO and not caught up for more than
/// `max_lag_ms`.
pub fn out_of_sync(
    me: BrokerId,
    leader_end: i64,
    isr: &[BrokerId],
    followers: &BTreeMap<BrokerId, FollowerProgress>,
    now_ms: i64,
    max_lag_ms: i64,
) -> Vec<BrokerId> {
    isr.iter()
        .copied()
        .filter(|&replica| replica != me)
        .filter(|replica| match followers.get(replica) {
            Some(f) => f.log_end_offset != leader_end && now_ms - f.last_caught_up_ms > max_lag_ms,
            None => true,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(log_end_offset: i64, last_caught_up_ms: i64) -> FollowerProgress {
        FollowerProgress {
            log_end_offset,
            last_caught_up_ms,
            leader_end_at_last_fetch: -1,
            last_fetch_ms: 0,
        }
    }

    fn ids(list: &[i32]) -> Vec<BrokerId> {
        list.iter().copied().map(BrokerId).collect()
    }

    #[test]
    fn high_watermark_is_the_minimum_log_end_over_the_isr() {
        let me = BrokerId(1);
        let followers: BTreeMap<_, _> = [
            (BrokerId(2), progress(7, 0)),
            (BrokerId(3), progress(9, 0)),
            (BrokerId(4), progress(2, 0)),
            (BrokerId(5), progress(-1, 0)),
        ]
        .into_iter()
        .collect();
        // (leader LEO, ISR, expected)
        let table: &[(i64, &[i32], i64)] = &[
            (10, &[1], 10),
            (10, &[1, 2, 3], 7),
            (10, &[1, 3], 9),
            (8, &[1, 3], 8),
            // Non-ISR replica 4 does not count.
            (10, &[1, 3], 9),
            // Unknown progress holds the HW (forward-only keeps the old one).
            (10, &[1, 3, 5], -1),
            // A member never heard of (not in the map) too.
            (10, &[1, 6], -1),
        ];
        for &(leader_end, isr, expected) in table {
            assert_eq!(
                high_watermark(me, leader_end, &ids(isr), &followers),
                expected,
                "leader end {leader_end}, ISR {isr:?}"
            );
        }
    }

    #[test]
    fn joining_needs_the_high_watermark_and_the_epoch_start() {
        // (follower LEO, HW, epoch start, may join)
        let table = [
            (10, 10, 0, true),
            (11, 10, 0, true),
            (9, 10, 0, false),
            (10, 10, 12, false),
            (12, 10, 12, true),
            (-1, 0, 0, false),
            (0, 0, 0, true),
        ];
        for (end, hw, start, expected) in table {
            assert_eq!(may_join_isr(end, hw, start), expected, "{end} {hw} {start}");
        }
    }

    #[test]
    fn followers_behind_for_longer_than_the_lag_time_are_out_of_sync() {
        let me = BrokerId(1);
        let followers: BTreeMap<_, _> = [
            (BrokerId(2), progress(10, 0)),    // at the LEO: in sync however old
            (BrokerId(3), progress(5, 8_000)), // behind, caught up 2 s ago
            (BrokerId(4), progress(5, 6_000)), // behind, caught up 4 s ago
            (BrokerId(6), progress(-1, 0)),    // never fetched
        ]
        .into_iter()
        .collect();
        let isr = ids(&[1, 2, 3, 4, 5, 6]);
        assert_eq!(
            out_of_sync(me, 10, &isr, &followers, 10_000, 3_000),
            ids(&[4, 5, 6])
        );
        assert_eq!(
            out_of_sync(me, 10, &isr, &followers, 10_000, 5_000),
            ids(&[5, 6])
        );
        assert!(out_of_sync(me, 10, &ids(&[1]), &followers, 10_000, 1).is_empty());
    }

    #[test]
    fn a_fetch_proves_being_caught_up_now_or_at_the_previous_fetch() {
        let mut f = FollowerProgress::on_leadership(false, 1_000);
        assert_eq!(f.last_caught_up_ms, 0);
        // Behind, first fetch: no proof.
        f.record_fetch(5, 10, 2_000);
        assert_eq!((f.log_end_offset, f.last_caught_up_ms), (5, 0));
        // Reached the leader's LEO of the previous fetch (10) while the leader moved to 12:
        // caught up as of the previous fetch.
        f.record_fetch(10, 12, 3_000);
        assert_eq!((f.log_end_offset, f.last_caught_up_ms), (10, 2_000));
        // At the leader's LEO: caught up now.
        f.record_fetch(12, 12, 4_000);
        assert_eq!(f.last_caught_up_ms, 4_000);
        // Beyond the leader's LEO: not an acknowledgement.
        f.record_fetch(20, 12, 5_000);
        assert_eq!((f.log_end_offset, f.last_caught_up_ms), (12, 4_000));

        let member = FollowerProgress::on_leadership(true, 1_000);
        assert_eq!(
            (member.log_end_offset, member.last_caught_up_ms),
            (-1, 1_000)
        );
    }
}
