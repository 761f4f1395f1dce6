//! Where a follower truncates before fetching from a new leader (KIP-101, KIP-279): pure.
//!
//! The follower asks the leader (OffsetForLeaderEpoch) where its own latest epoch `E` ends in
//! the leader's log. The leader answers the largest epoch it knows at or below `E` and that
//! epoch's end offset:
//!
//! * it knows `E` → the logs agree up to the end offset: truncate to it (or keep the LEO if it
//!   is below);
//! * it answers an older epoch `e` that the follower also has → truncate to the smaller of
//!   both end offsets of `e`;
//! * the follower does not have `e` either → truncate to where the follower's largest epoch
//!   below `e` ends and ask again (KIP-279: fast back-to-back leader changes);
//! * the leader knows no epoch at or below `E` (`-1/-1`), or the follower has no epochs at all
//!   → truncate to the follower's high watermark. This is the one case where Kafka still uses
//!   the HW, and only because nothing better is known: both logs hold data from epochs the
//!   other cannot compare. Records above the HW were never committed, so dropping them loses
//!   nothing acknowledged with `acks=all`.

/// The follower's next step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Truncate to this offset (a no-op at or beyond the LEO) and start fetching.
    TruncateTo(i64),
    /// Truncate to this offset, then ask the leader again with the new latest epoch.
    TruncateAndAskAgain(i64),
}

/// The step for a follower whose latest epoch is `latest_epoch` (`None`: no epochs), given
/// the leader's answer (`None`: `-1/-1`) and the follower's own `end_offset_for_epoch`.
pub fn step(
    latest_epoch: Option<i32>,
    leader_answer: Option<(i32, i64)>,
    follower_end_for: impl Fn(i32) -> Option<(i32, i64)>,
    log_end_offset: i64,
    high_watermark: i64,
) -> Step {
    let (Some(latest), Some((leader_epoch, leader_end))) = (latest_epoch, leader_answer) else {
        return Step::TruncateTo(high_watermark.min(log_end_offset));
    };
    if leader_epoch == latest {
        return Step::TruncateTo(leader_end.min(log_end_offset));
    }
    match follower_end_for(leader_epoch) {
        Some((epoch, own_end)) if epoch == leader_epoch => {
            Step::TruncateTo(leader_end.min(own_end).min(log_end_offset))
        }
        Some((_, own_end)) if own_end < log_end_offset => Step::TruncateAndAskAgain(own_end),
        // Nothing older to compare: fall back as for an undefined answer.
        _ => Step::TruncateTo(high_watermark.min(log_end_offset)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A follower epoch cache as `(epoch, start)` entries, with `end_offset_for` following
    /// `LeaderEpochCache::end_offset_for`.
    fn cache(entries: &'static [(i32, i64)], leo: i64) -> impl Fn(i32) -> Option<(i32, i64)> {
        move |requested| {
            let index = entries.iter().rposition(|&(e, _)| e <= requested)?;
            let end = entries.get(index + 1).map_or(leo, |&(_, start)| start);
            Some((entries[index].0, end))
        }
    }

    #[test]
    fn truncation_steps() {
        // Leader knows the follower's latest epoch: its end offset, capped at the LEO.
        assert_eq!(
            step(
                Some(3),
                Some((3, 40)),
                cache(&[(0, 0), (3, 20)], 50),
                50,
                10
            ),
            Step::TruncateTo(40)
        );
        assert_eq!(
            step(
                Some(3),
                Some((3, 60)),
                cache(&[(0, 0), (3, 20)], 50),
                50,
                10
            ),
            Step::TruncateTo(50)
        );
        // The follower's epoch 3 was never the leader's: the leader's epoch 1 ends at 15,
        // the follower's epoch 1 at 20 → 15.
        assert_eq!(
            step(
                Some(3),
                Some((1, 15)),
                cache(&[(0, 0), (1, 5), (3, 20)], 50),
                50,
                10
            ),
            Step::TruncateTo(15)
        );
        // KIP-279: the follower does not have the leader's epoch 1 either: drop its epoch 2
        // (to 10, where its epoch 0 ends) and ask again about epoch 0.
        assert_eq!(
            step(
                Some(3),
                Some((1, 15)),
                cache(&[(0, 0), (2, 10), (3, 20)], 50),
                50,
                4
            ),
            Step::TruncateAndAskAgain(10)
        );
        // Undefined answer or no epochs: the high watermark.
        assert_eq!(
            step(Some(3), None, cache(&[(3, 0)], 50), 50, 12),
            Step::TruncateTo(12)
        );
        assert_eq!(
            step(None, Some((2, 9)), cache(&[], 0), 7, 3),
            Step::TruncateTo(3)
        );
    }
}
