//! How long and how often a request whose partition leader moved is retried (pure: values in,
//! values out; the caller sleeps).

use std::time::Duration;

/// The default budget of [`RetryPolicy::timeout`]: 30 s. A leader killed with `kill -9` is
/// replaced only after its ZooKeeper session expires (`zookeeper.session.timeout.ms`, 18 s by
/// default) and the controller elects a successor, so a shorter budget would fail requests that
/// a short wait would have carried through the failover.
pub const DEFAULT_RETRY_TIMEOUT: Duration = Duration::from_secs(30);

/// First pause before a retry: the broker side of a leader change (UpdateMetadata reaching
/// every broker) usually completes within tens of milliseconds.
const INITIAL_BACKOFF: Duration = Duration::from_millis(50);

/// Longest pause between two attempts, so a failover that completes is noticed within a second.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Bounded retries with exponential backoff: 50 ms, 100 ms, 200 ms, ... capped at 1 s, for at
/// most `timeout` from the first attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryPolicy {
    /// No retry starts later than this after the first attempt.
    pub(crate) timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            timeout: DEFAULT_RETRY_TIMEOUT,
        }
    }
}

impl RetryPolicy {
    /// The pause before retry number `retry` (1 for the first retry), or `None` when the retry
    /// would start after the budget, counted from the first attempt (`elapsed` ago).
    pub(crate) fn delay_before(&self, retry: u32, elapsed: Duration) -> Option<Duration> {
        let exponent = retry.saturating_sub(1).min(16);
        let delay = INITIAL_BACKOFF
            .saturating_mul(1 << exponent)
            .min(MAX_BACKOFF);
        (elapsed.saturating_add(delay) <= self.timeout).then_some(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_second_within_the_budget() {
        let policy = RetryPolicy {
            timeout: Duration::from_secs(10),
        };
        let ms = Duration::from_millis;
        let table = [
            (1, ms(0), Some(ms(50))),
            (2, ms(50), Some(ms(100))),
            (3, ms(150), Some(ms(200))),
            (5, ms(750), Some(ms(800))),
            (6, ms(1550), Some(ms(1000))),
            (40, ms(5000), Some(ms(1000))),
            (u32::MAX, ms(5000), Some(ms(1000))),
            // The retry would start after the budget: give up.
            (7, ms(9500), None),
            (1, ms(9990), None),
            (1, ms(9950), Some(ms(50))),
        ];
        for (retry, elapsed, expected) in table {
            assert_eq!(
                policy.delay_before(retry, elapsed),
                expected,
                "retry {retry} after {elapsed:?}"
            );
        }
        let no_retries = RetryPolicy {
            timeout: Duration::ZERO,
        };
        assert_eq!(no_retries.delay_before(1, Duration::ZERO), None);
    }
}
