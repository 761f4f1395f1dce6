//! The leader epoch cache of a log: for every leader epoch that wrote to the log, the offset
//! of its first batch (Kafka's `LeaderEpochFileCache`, KIP-101). Pure: values in, values out;
//! the `leader-epoch-checkpoint` file that persists it is `leader_epoch_file.rs`.
//!
//! A follower that (re)joins asks the leader for the end offset of its own latest epoch
//! ([`LeaderEpochCache::end_offset_for`] on the leader) and truncates to it, never to its
//! own high watermark: the HW lags the leader's by a fetch round trip, so truncating to it
//! can drop committed records (KIP-101).
//!
//! Worked example: a log whose batches carry epochs `0 0 0 | 1 1 | 3` at offsets `0..6` has
//! the entries `(0, 0) (1, 3) (3, 5)`, and with log end offset 6:
//!
//! | requested epoch | answer | why |
//! |---|---|---|
//! | 0 | (0, 3) | epoch 0 ends where epoch 1 starts |
//! | 2 | (1, 5) | largest epoch ≤ 2 is 1; it ends where epoch 3 starts |
//! | 3 | (3, 6) | the latest epoch ends at the log end |
//! | 4 | undefined | newer than anything the log has seen |

/// `epoch` wrote its first batch at `start_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct EpochEntry {
    /// The leader epoch (≥ 0).
    pub epoch: i32,
    /// The base offset of the first batch of that epoch (≥ 0).
    pub start_offset: i64,
}

/// What [`LeaderEpochCache::assign`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assigned {
    /// The latest entry already has this epoch and starts at or before the offset.
    Unchanged,
    /// The entry was appended after removing `removed`: entries whose epoch is ≥ the new one
    /// or whose start offset is ≥ the new one (normally none, or one entry starting at the same
    /// offset: a leader that was elected but wrote nothing).
    Appended {
        /// The displaced entries, oldest first.
        removed: Vec<EpochEntry>,
    },
    /// A negative epoch or offset (a batch written without a leader epoch); ignored.
    Invalid,
}

impl Assigned {
    /// Whether the cache changed.
    pub fn changed(&self) -> bool {
        matches!(self, Assigned::Appended { .. })
    }

    /// Whether the assignment displaced entries other than one starting at the same offset,
    /// which means batches arrived with epochs out of order (worth a warning).
    pub fn displaced_data(&self, start_offset: i64) -> bool {
        match self {
            Assigned::Appended { removed } => {
                removed.len() > 1
                    || removed
                        .first()
                        .is_some_and(|e| e.start_offset != start_offset)
            }
            _ => false,
        }
    }
}

/// Why a list of entries is not a valid cache (for the checkpoint reader).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidEntries {
    /// Index of the first offending entry.
    pub index: usize,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// The epochs of one log, oldest first.
///
/// Invariant: epochs and start offsets are ≥ 0 and strictly increasing.
/// Held by `Log` under its mutex with the further invariant that every start offset lies in
/// `[log start offset, log end offset]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaderEpochCache {
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// A cache holding exactly `entries`, which must satisfy the invariant.
    pub fn from_entries(entries: Vec<EpochEntry>) -> Result<Self, InvalidEntries> {
        for (index, entry) in entries.iter().enumerate() {
            if entry.epoch < 0 || entry.start_offset < 0 {
                return Err(InvalidEntries {
                    index,
                    reason: "negative epoch or start offset",
                });
            }
            if let Some(previous) = index.checked_sub(1).map(|i| entries[i]) {
                if entry.epoch <= previous.epoch {
                    return Err(InvalidEntries {
                        index,
                        reason: "epochs do not strictly increase",
                    });
                }
                if entry.start_offset <= previous.start_offset {
                    return Err(InvalidEntries {
                        index,
                        reason: "start offsets do not strictly increase",
                    });
                }
            }
        }
        Ok(Self { entries })
    }

    /// The entries, oldest first.
    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    /// The newest epoch, if any.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }

    /// Records that `epoch` starts at `start_offset` (Kafka's rule): a no-op when the latest
    /// entry has this epoch and starts at or before `start_offset`; otherwise every entry from
    /// the end whose epoch is ≥ `epoch` or whose start is ≥ `start_offset` is removed, then
    /// the entry is appended. So an epoch older than the latest one is not ignored: the log
    /// now holds data of that epoch after the newer entries' start, and the cache follows the
    /// log (the caller warns, see [`Assigned::displaced_data`]).
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> Assigned {
        if epoch < 0 || start_offset < 0 {
            return Assigned::Invalid;
        }
        if let Some(latest) = self.entries.last()
            && latest.epoch == epoch
            && latest.start_offset <= start_offset
        {
            return Assigned::Unchanged;
        }
        let keep = self
            .entries
            .iter()
            .rposition(|e| e.epoch < epoch && e.start_offset < start_offset)
            .map_or(0, |i| i + 1);
        let removed = self.entries.split_off(keep);
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
        Assigned::Appended { removed }
    }

    /// The answer to OffsetsForLeaderEpoch for `requested_epoch` (Kafka 2.8's `endOffsetFor`):
    /// `(epoch, end offset)` where `epoch` is the largest epoch ≤ `requested_epoch` and the
    /// end offset is the start of the first epoch greater than `requested_epoch`, or
    /// `log_end_offset` when `requested_epoch` is the latest epoch.
    ///
    /// Edge cases, as Kafka 2.8 (`None` is Kafka's UNDEFINED `(-1, -1)`):
    /// * empty cache, negative (undefined) epoch, or an epoch newer than the latest → `None`;
    /// * an epoch older than the first entry → `(requested_epoch, first entry's start)`: the
    ///   older epochs' data is gone from this log (retention), and the follower must not keep
    ///   anything from before this log's earliest known epoch. (Kafka 2.0 answered undefined
    ///   here, which made the follower fall back to truncating to its HW.)
    pub fn end_offset_for(&self, requested_epoch: i32, log_end_offset: i64) -> Option<(i32, i64)> {
        let latest = self.entries.last()?;
        if requested_epoch < 0 || requested_epoch > latest.epoch {
            return None;
        }
        if requested_epoch == latest.epoch {
            return Some((requested_epoch, log_end_offset));
        }
        // Exists: the latest epoch is greater than the requested one.
        let higher = self.entries.partition_point(|e| e.epoch <= requested_epoch);
        let end_offset = self.entries[higher].start_offset;
        match higher.checked_sub(1) {
            Some(floor) => Some((self.entries[floor].epoch, end_offset)),
            None => Some((requested_epoch, end_offset)),
        }
    }

    /// Removes every entry starting at or after `end_offset` (the log was truncated there).
    /// A negative offset is ignored. Returns whether anything changed.
    pub fn truncate_from_end(&mut self, end_offset: i64) -> bool {
        if end_offset < 0 {
            return false;
        }
        let keep = self
            .entries
            .partition_point(|e| e.start_offset < end_offset);
        let changed = keep < self.entries.len();
        self.entries.truncate(keep);
        changed
    }

    /// The log start moved to `start_offset`: entries wholly before it go, and the epoch in
    /// force at `start_offset` now starts there. Returns whether anything changed.
    pub fn truncate_from_start(&mut self, start_offset: i64) -> bool {
        let covering = self
            .entries
            .partition_point(|e| e.start_offset <= start_offset);
        let Some(last_before) = covering.checked_sub(1) else {
            return false;
        };
        let changed = last_before > 0 || self.entries[last_before].start_offset != start_offset;
        self.entries.drain(..last_before);
        self.entries[0].start_offset = start_offset;
        changed
    }

    /// Removes every entry (the log was emptied). Returns whether anything changed.
    pub fn clear(&mut self) -> bool {
        let changed = !self.entries.is_empty();
        self.entries.clear();
        changed
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// (epoch, start offset) pairs of a table row.
    type Pairs = &'static [(i32, i64)];

    fn entries(pairs: &[(i32, i64)]) -> Vec<EpochEntry> {
        pairs
            .iter()
            .map(|&(epoch, start_offset)| EpochEntry {
                epoch,
                start_offset,
            })
            .collect()
    }

    fn cache(pairs: &[(i32, i64)]) -> LeaderEpochCache {
        LeaderEpochCache::from_entries(entries(pairs)).expect("valid entries")
    }

    #[test]
    fn assign_table() {
        // (before, assign (epoch, start), after, changed)
        let cases: &[(Pairs, (i32, i64), Pairs, bool)] = &[
            (&[], (0, 0), &[(0, 0)], true),
            (&[(0, 0)], (0, 10), &[(0, 0)], false),
            (&[(0, 0)], (1, 10), &[(0, 0), (1, 10)], true),
            // Same epoch at an earlier offset: moves the start back.
            (&[(0, 0), (1, 10)], (1, 5), &[(0, 0), (1, 5)], true),
            // A leader elected (epoch 2 assigned at 10) that wrote nothing, then epoch 3.
            (&[(0, 0), (2, 10)], (3, 10), &[(0, 0), (3, 10)], true),
            // An older epoch after newer ones: the newer entries go (the log says so).
            (&[(0, 0), (3, 10)], (2, 20), &[(0, 0), (2, 20)], true),
            (&[(0, 0), (3, 10)], (2, 5), &[(0, 0), (2, 5)], true),
            (&[(1, 0), (3, 10)], (0, 20), &[(0, 20)], true),
            // A newer epoch at an offset below existing starts.
            (
                &[(0, 0), (1, 10), (2, 20)],
                (5, 15),
                &[(0, 0), (1, 10), (5, 15)],
                true,
            ),
            (&[(0, 0)], (-1, 5), &[(0, 0)], false),
            (&[(0, 0)], (1, -1), &[(0, 0)], false),
        ];
        for (before, (epoch, start), after, changed) in cases {
            let mut c = cache(before);
            let outcome = c.assign(*epoch, *start);
            assert_eq!(
                c.entries(),
                entries(after),
                "{before:?} + ({epoch}, {start})"
            );
            assert_eq!(
                outcome.changed(),
                *changed,
                "{before:?} + ({epoch}, {start})"
            );
        }
    }

    #[test]
    fn displaced_data_is_reported_except_for_an_empty_epoch() {
        let mut c = cache(&[(0, 0), (2, 10)]);
        assert!(!c.assign(3, 10).displaced_data(10));
        let mut c = cache(&[(0, 0), (3, 10)]);
        assert!(c.assign(2, 20).displaced_data(20));
        assert!(!c.assign(4, 30).displaced_data(30));
    }

    #[test]
    fn end_offset_for_table() {
        let c = cache(&[(0, 0), (1, 3), (3, 5)]);
        let leo = 6;
        for (requested, expected) in [
            (-1, None),
            (0, Some((0, 3))),
            (1, Some((1, 5))),
            (2, Some((1, 5))),
            (3, Some((3, 6))),
            (4, None),
        ] {
            assert_eq!(
                c.end_offset_for(requested, leo),
                expected,
                "epoch {requested}"
            );
        }
        // Older than the first entry (retention removed the older epochs' data).
        let c = cache(&[(4, 100), (6, 150)]);
        assert_eq!(c.end_offset_for(2, 200), Some((2, 100)));
        assert_eq!(c.end_offset_for(5, 200), Some((4, 150)));
        assert_eq!(c.end_offset_for(6, 200), Some((6, 200)));
        assert_eq!(LeaderEpochCache::new().end_offset_for(0, 0), None);
    }

    #[test]
    fn truncate_from_end_table() {
        let base = [(0, 0), (1, 3), (3, 5)];
        for (end, after, changed) in [
            (6, &base[..], false),
            (5, &base[..2], true),
            (4, &base[..2], true),
            (3, &base[..1], true),
            (0, &base[..0], true),
            (-1, &base[..], false),
        ] {
            let mut c = cache(&base);
            assert_eq!(c.truncate_from_end(end), changed, "end {end}");
            assert_eq!(c.entries(), entries(after), "end {end}");
        }
    }

    #[test]
    fn truncate_from_start_table() {
        let base = [(0, 0), (1, 3), (3, 5)];
        let cases: &[(i64, Pairs, bool)] = &[
            (0, &[(0, 0), (1, 3), (3, 5)], false),
            (2, &[(0, 2), (1, 3), (3, 5)], true),
            (3, &[(1, 3), (3, 5)], true),
            (4, &[(1, 4), (3, 5)], true),
            (9, &[(3, 9)], true),
        ];
        for (start, after, changed) in cases {
            let mut c = cache(&base);
            assert_eq!(c.truncate_from_start(*start), *changed, "start {start}");
            assert_eq!(c.entries(), entries(after), "start {start}");
        }
        let mut c = cache(&[(2, 10)]);
        assert!(!c.truncate_from_start(5), "nothing before the first entry");
        assert_eq!(c.entries(), entries(&[(2, 10)]));
    }

    #[test]
    fn from_entries_rejects_non_monotonic_lists() {
        for (pairs, index) in [
            (&[(0, 0), (0, 5)][..], 1),
            (&[(0, 5), (1, 5)][..], 1),
            (&[(2, 0), (1, 5)][..], 1),
            (&[(-1, 0)][..], 0),
            (&[(0, 0), (1, 2), (2, -3)][..], 2),
        ] {
            let error = LeaderEpochCache::from_entries(entries(pairs)).unwrap_err();
            assert_eq!(error.index, index, "{pairs:?}");
        }
    }

    fn check_invariant(c: &LeaderEpochCache) {
        LeaderEpochCache::from_entries(c.entries().to_vec()).expect("invariant holds");
    }

    /// The cache of a log whose record at offset `i` was written in epoch `epochs[i]`, built
    /// the way appends build it (one assign per batch; here one batch per record).
    fn cache_of_log(epochs: &[i32]) -> LeaderEpochCache {
        let mut c = LeaderEpochCache::new();
        for (offset, &epoch) in epochs.iter().enumerate() {
            c.assign(epoch, offset as i64);
        }
        c
    }

    /// Brute force over the log itself: the end offset of `requested` is the first offset
    /// written in a later epoch (the log end if none); the epoch is the largest one ≤
    /// `requested` that wrote anything (`requested` itself if none did).
    fn brute_force(epochs: &[i32], requested: i32) -> Option<(i32, i64)> {
        let latest = *epochs.last()?;
        if requested < 0 || requested > latest {
            return None;
        }
        let end = epochs
            .iter()
            .position(|&e| e > requested)
            .map_or(epochs.len() as i64, |p| p as i64);
        let epoch = epochs
            .iter()
            .copied()
            .filter(|&e| e <= requested)
            .max()
            .unwrap_or(requested);
        Some((epoch, end))
    }

    #[derive(Debug, Clone)]
    enum Op {
        Assign(i32, i64),
        TruncateFromEnd(i64),
        TruncateFromStart(i64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0i32..12, 0i64..60).prop_map(|(e, o)| Op::Assign(e, o)),
            1 => (-2i64..60).prop_map(Op::TruncateFromEnd),
            1 => (0i64..60).prop_map(Op::TruncateFromStart),
        ]
    }

    /// Epochs of a log: non-decreasing, possibly skipping values.
    fn log_epochs() -> impl Strategy<Value = Vec<i32>> {
        prop::collection::vec(0i32..3, 0..40).prop_map(|steps| {
            let mut epoch = 0;
            steps
                .into_iter()
                .map(|step| {
                    epoch += step;
                    epoch
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn random_operations_keep_the_invariant(ops in prop::collection::vec(op(), 0..40)) {
            let mut c = LeaderEpochCache::new();
            for op in ops {
                match op {
                    Op::Assign(epoch, start) => {
                        let before = c.clone();
                        let outcome = c.assign(epoch, start);
                        prop_assert_eq!(outcome.changed(), before != c);
                        if outcome.changed() {
                            let latest = EpochEntry { epoch, start_offset: start };
                            prop_assert_eq!(c.entries().last(), Some(&latest));
                        }
                    }
                    Op::TruncateFromEnd(end) => {
                        let before = c.clone();
                        prop_assert_eq!(c.truncate_from_end(end), before != c);
                        if end >= 0 {
                            prop_assert!(c.entries().iter().all(|e| e.start_offset < end));
                        }
                    }
                    Op::TruncateFromStart(start) => {
                        let before = c.clone();
                        prop_assert_eq!(c.truncate_from_start(start), before != c);
                        prop_assert!(c.entries().iter().all(|e| e.start_offset >= start) || c == before);
                    }
                }
                check_invariant(&c);
            }
        }

        #[test]
        fn end_offset_for_agrees_with_the_log(epochs in log_epochs(), requested in -1i32..30) {
            let c = cache_of_log(&epochs);
            check_invariant(&c);
            prop_assert_eq!(c.end_offset_for(requested, epochs.len() as i64), brute_force(&epochs, requested));
        }

        #[test]
        fn truncating_the_cache_matches_rebuilding_it_from_the_truncated_log(
            epochs in log_epochs(),
            cut in 0usize..45,
        ) {
            let cut = cut.min(epochs.len());
            let mut c = cache_of_log(&epochs);
            c.truncate_from_end(cut as i64);
            prop_assert_eq!(c, cache_of_log(&epochs[..cut]));
        }

        #[test]
        fn truncating_from_start_keeps_answers_above_the_start(
            epochs in log_epochs(),
            start in 0usize..45,
            requested in 0i32..30,
        ) {
            let start = start.min(epochs.len());
            let mut c = cache_of_log(&epochs);
            c.truncate_from_start(start as i64);
            check_invariant(&c);
            // Only epochs still present at or after the new start keep their exact answers.
            if epochs[start..].contains(&requested) {
                prop_assert_eq!(
                    c.end_offset_for(requested, epochs.len() as i64),
                    brute_force(&epochs, requested)
                );
            }
        }
    }
}
