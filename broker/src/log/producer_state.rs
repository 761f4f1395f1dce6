//! The idempotent producers of one partition (Kafka's `ProducerStateManager`, without
//! transactions): per producer id, its epoch and the sequence ranges and offsets of its last
//! [`MAX_CACHED_BATCHES`] batches. Pure: no files, no clock (the snapshot file is in
//! `producer_snapshot.rs`, the rebuild from the log in `producer_rebuild.rs`).
//!
//! A producer numbers the records it sends to a partition 0, 1, 2, ... (wrapping to 0 after
//! `i32::MAX`); a batch carries its first record's number (`base_sequence`) and covers
//! `base_sequence ..= base_sequence + last_offset_delta`. The leader accepts a batch when it
//! continues the producer's last one, answers an exact repeat of one of the cached batches
//! with that batch's original offsets (a retry whose first attempt was written), and refuses
//! anything else, so that retries never duplicate or reorder records:
//!
//! | producer known? | epoch vs known   | batch                                   | answer                         |
//! |-----------------|------------------|-----------------------------------------|--------------------------------|
//! | no              | any              | first sequence 0                        | append                         |
//! | no              | any              | first sequence ≠ 0                      | `UNKNOWN_PRODUCER_ID`          |
//! | yes             | older            | any                                     | `INVALID_PRODUCER_EPOCH`       |
//! | yes             | newer            | first sequence 0                        | append (the new epoch resets)  |
//! | yes             | newer            | first sequence ≠ 0                      | `OUT_OF_ORDER_SEQUENCE_NUMBER` |
//! | yes             | same             | same first and last as a cached batch   | duplicate: original offsets    |
//! | yes             | same             | first = last known + 1 (wrapping)       | append                         |
//! | yes             | same             | anything else                           | `OUT_OF_ORDER_SEQUENCE_NUMBER` |
//!
//! Followers and the rebuild after a restart [`record`](ProducerStates::record) batches
//! without checks: the leader checked them.

use std::collections::{HashMap, VecDeque};

use thiserror::Error;

/// Batches remembered per producer (Kafka's 5, hence at most 5 requests in flight per
/// partition for an idempotent producer).
pub const MAX_CACHED_BATCHES: usize = 5;

/// One appended batch of an idempotent producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSequence {
    /// Sequence of its first record.
    pub first_sequence: i32,
    /// Sequence of its last record (`first_sequence + records - 1`, wrapping at `i32::MAX`).
    pub last_sequence: i32,
    /// Offset of its first record.
    pub first_offset: i64,
    /// Offset of its last record. Invariant: `first_offset <= last_offset`.
    pub last_offset: i64,
}

/// What the partition knows of one producer id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerEntry {
    /// Its latest epoch.
    pub epoch: i16,
    /// Its last batches of that epoch, oldest first. Invariant: 1 to [`MAX_CACHED_BATCHES`]
    /// batches, ascending offsets.
    pub batches: VecDeque<BatchSequence>,
}

impl ProducerEntry {
    fn last(&self) -> &BatchSequence {
        self.batches
            .back()
            .expect("an entry has at least one batch")
    }

    fn push(&mut self, epoch: i16, batch: BatchSequence) {
        if epoch != self.epoch {
            self.epoch = epoch;
            self.batches.clear();
        }
        self.batches.push_back(batch);
        while self.batches.len() > MAX_CACHED_BATCHES {
            self.batches.pop_front();
        }
    }
}

/// A batch the leader may append, or the answer it already had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// It continues the producer's sequence (or starts it): append it.
    Append,
    /// A repeat of a batch already in the log: answer with its offsets, append nothing.
    Duplicate(BatchSequence),
}

/// Why the leader refuses a batch of an idempotent producer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SequenceError {
    /// A gap or a reordering: the batch does not continue the producer's last batch.
    #[error(
        "producer {producer_id} (epoch {epoch}): expected sequence {expected}, the batch starts at {found}"
    )]
    OutOfOrder {
        producer_id: i64,
        epoch: i16,
        expected: i32,
        found: i32,
    },
    /// An older epoch than the partition has seen: a fenced producer.
    #[error("producer {producer_id}: epoch {found} is older than the current epoch {current}")]
    InvalidEpoch {
        producer_id: i64,
        current: i16,
        found: i16,
    },
    /// The partition has no state for the producer (never seen, or its batches were deleted)
    /// and the batch does not start a sequence.
    #[error(
        "producer {producer_id} is not known to this partition and the batch starts at sequence {found}, not 0"
    )]
    UnknownProducer { producer_id: i64, found: i32 },
}

/// The sequence after `sequence` (Kafka's wrap: `i32::MAX` is followed by 0).
pub fn next_sequence(sequence: i32) -> i32 {
    if sequence == i32::MAX {
        0
    } else {
        sequence + 1
    }
}

/// The sequence of the last record of a batch starting at `first` with `last_offset_delta`.
pub fn last_sequence(first: i32, last_offset_delta: i32) -> i32 {
    // Computed in i64 so the wrap is explicit: i32::MAX + 1 is 0.
    let last = i64::from(first) + i64::from(last_offset_delta);
    if last > i64::from(i32::MAX) {
        (last - i64::from(i32::MAX) - 1) as i32
    } else {
        last as i32
    }
}

/// Every known producer of a partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
}

impl ProducerStates {
    /// The producer's entry, if known.
    pub fn get(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    /// Number of known producers.
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// Whether no producer is known.
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Every entry, by producer id (for the snapshot file).
    pub fn entries(&self) -> impl Iterator<Item = (i64, &ProducerEntry)> {
        self.producers.iter().map(|(&id, entry)| (id, entry))
    }

    /// The leader's decision for a batch (see the module table). `pending` holds entries of
    /// earlier batches of the same request, not yet in the table; it takes precedence.
    pub fn check(
        &self,
        pending: &HashMap<i64, ProducerEntry>,
        producer_id: i64,
        epoch: i16,
        first_sequence: i32,
        last_sequence: i32,
    ) -> Result<SequenceCheck, SequenceError> {
        let Some(entry) = pending
            .get(&producer_id)
            .or_else(|| self.producers.get(&producer_id))
        else {
            return if first_sequence == 0 {
                Ok(SequenceCheck::Append)
            } else {
                Err(SequenceError::UnknownProducer {
                    producer_id,
                    found: first_sequence,
                })
            };
        };
        if epoch < entry.epoch {
            return Err(SequenceError::InvalidEpoch {
                producer_id,
                current: entry.epoch,
                found: epoch,
            });
        }
        if epoch > entry.epoch {
            return if first_sequence == 0 {
                Ok(SequenceCheck::Append)
            } else {
                Err(SequenceError::OutOfOrder {
                    producer_id,
                    epoch,
                    expected: 0,
                    found: first_sequence,
                })
            };
        }
        if let Some(original) = entry
            .batches
            .iter()
            .find(|b| b.first_sequence == first_sequence && b.last_sequence == last_sequence)
        {
            return Ok(SequenceCheck::Duplicate(*original));
        }
        let expected = next_sequence(entry.last().last_sequence);
        if first_sequence == expected {
            Ok(SequenceCheck::Append)
        } else {
            Err(SequenceError::OutOfOrder {
                producer_id,
                epoch,
                expected,
                found: first_sequence,
            })
        }
    }

    /// Stages an accepted batch in `pending` (a request's later batches are checked against
    /// it); [`commit`](Self::commit) moves it into the table once the batches are written.
    pub fn stage(
        &self,
        pending: &mut HashMap<i64, ProducerEntry>,
        producer_id: i64,
        epoch: i16,
        batch: BatchSequence,
    ) {
        let entry = pending.entry(producer_id).or_insert_with(|| {
            self.producers
                .get(&producer_id)
                .cloned()
                .unwrap_or_else(|| ProducerEntry {
                    epoch,
                    batches: VecDeque::new(),
                })
        });
        entry.push(epoch, batch);
    }

    /// Takes the staged entries of a written request.
    pub fn commit(&mut self, pending: HashMap<i64, ProducerEntry>) {
        self.producers.extend(pending);
    }

    /// Records a batch that is in the log (a follower's append, the rebuild from the log)
    /// without checking it. A batch at or below the producer's last known offset is already
    /// counted and ignored, so a rebuild may start from a snapshot that overlaps the log.
    pub fn record(&mut self, producer_id: i64, epoch: i16, batch: BatchSequence) {
        match self.producers.get_mut(&producer_id) {
            Some(entry) if entry.last().last_offset >= batch.first_offset => {}
            Some(entry) => entry.push(epoch, batch),
            None => {
                self.producers.insert(
                    producer_id,
                    ProducerEntry {
                        epoch,
                        batches: VecDeque::from([batch]),
                    },
                );
            }
        }
    }

    /// Puts back a producer's entry as read from a snapshot.
    pub fn restore(&mut self, producer_id: i64, entry: ProducerEntry) {
        if !entry.batches.is_empty() {
            self.producers.insert(producer_id, entry);
        }
    }

    /// Forgets the batches at or above `offset` (a truncation). Returns `false` when a
    /// producer lost every cached batch: what it had before them is unknown here, and the
    /// caller must rebuild the state from the log.
    pub fn truncate_to(&mut self, offset: i64) -> bool {
        let mut complete = true;
        self.producers.retain(|_, entry| {
            entry.batches.retain(|b| b.first_offset < offset);
            complete &= !entry.batches.is_empty();
            !entry.batches.is_empty()
        });
        complete
    }

    /// Forgets producers whose last batch ends below `log_start_offset` (retention deleted
    /// their records, so a replica rebuilt from the log would not know them either).
    pub fn remove_before(&mut self, log_start_offset: i64) {
        self.producers
            .retain(|_, entry| entry.last().last_offset >= log_start_offset);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(first_sequence: i32, last_sequence: i32, first_offset: i64) -> BatchSequence {
        let records = i64::from(last_sequence.wrapping_sub(first_sequence)) + 1;
        BatchSequence {
            first_sequence,
            last_sequence,
            first_offset,
            last_offset: first_offset + records - 1,
        }
    }

    /// Producer 7 at epoch 2 with batches 0..=4 (offsets 100..=104) and 5..=9 (offsets 105..).
    fn known() -> ProducerStates {
        let mut states = ProducerStates::default();
        states.record(7, 2, batch(0, 4, 100));
        states.record(7, 2, batch(5, 9, 105));
        states
    }

    #[test]
    fn the_leaders_decisions_follow_the_table() {
        use SequenceCheck::{Append, Duplicate};
        let states = known();
        let none = HashMap::new();
        let out_of_order = |epoch, expected, found| {
            Err(SequenceError::OutOfOrder {
                producer_id: 7,
                epoch,
                expected,
                found,
            })
        };
        let table = [
            // (producer, epoch, first, last, expected)
            (8, 0, 0, 3, Ok(Append)),
            (
                8,
                0,
                5,
                9,
                Err(SequenceError::UnknownProducer {
                    producer_id: 8,
                    found: 5,
                }),
            ),
            (
                7,
                1,
                10,
                12,
                Err(SequenceError::InvalidEpoch {
                    producer_id: 7,
                    current: 2,
                    found: 1,
                }),
            ),
            (7, 3, 0, 4, Ok(Append)),
            (7, 3, 10, 12, out_of_order(3, 0, 10)),
            (7, 2, 0, 4, Ok(Duplicate(batch(0, 4, 100)))),
            (7, 2, 5, 9, Ok(Duplicate(batch(5, 9, 105)))),
            (7, 2, 10, 12, Ok(Append)),
            (7, 2, 11, 12, out_of_order(2, 10, 11)),
            (7, 2, 5, 7, out_of_order(2, 10, 5)),
            (7, 2, 0, 9, out_of_order(2, 10, 0)),
        ];
        for (producer, epoch, first, last, expected) in table {
            assert_eq!(
                states.check(&none, producer, epoch, first, last),
                expected,
                "producer {producer} epoch {epoch} {first}..={last}"
            );
        }
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let mut states = ProducerStates::default();
        for i in 0..7 {
            states.record(1, 0, batch(i * 10, i * 10 + 9, i64::from(i) * 10));
        }
        let entry = states.get(1).unwrap();
        assert_eq!(entry.batches.len(), MAX_CACHED_BATCHES);
        assert_eq!(entry.batches.front().unwrap().first_sequence, 20);
        // The sixth-newest batch is too old to recognise as a duplicate.
        assert!(matches!(
            states.check(&HashMap::new(), 1, 0, 10, 19),
            Err(SequenceError::OutOfOrder { expected: 70, .. })
        ));
    }

    #[test]
    fn sequences_wrap_after_i32_max() {
        assert_eq!(next_sequence(i32::MAX), 0);
        assert_eq!(next_sequence(41), 42);
        assert_eq!(last_sequence(i32::MAX - 1, 3), 1);
        assert_eq!(last_sequence(10, 0), 10);
        let mut states = ProducerStates::default();
        states.record(1, 0, batch(i32::MAX - 4, i32::MAX, 0));
        assert_eq!(
            states.check(&HashMap::new(), 1, 0, 0, 4),
            Ok(SequenceCheck::Append)
        );
    }

    #[test]
    fn a_request_with_several_batches_is_checked_in_order() {
        let states = known();
        let mut pending = HashMap::new();
        assert_eq!(
            states.check(&pending, 7, 2, 10, 11),
            Ok(SequenceCheck::Append)
        );
        states.stage(&mut pending, 7, 2, batch(10, 11, 110));
        // The second batch continues the first, not the table.
        assert_eq!(
            states.check(&pending, 7, 2, 12, 12),
            Ok(SequenceCheck::Append)
        );
        assert!(
            states
                .check(&pending, 7, 2, 10, 11)
                .is_ok_and(|c| c == SequenceCheck::Duplicate(batch(10, 11, 110)))
        );
        let mut table = states.clone();
        assert_eq!(table, known(), "staging does not touch the table");
        table.commit(pending);
        assert_eq!(
            table.get(7).unwrap().batches.back(),
            Some(&batch(10, 11, 110))
        );
    }

    #[test]
    fn a_new_epoch_starts_afresh() {
        let mut states = known();
        states.record(7, 3, batch(0, 0, 200));
        let entry = states.get(7).unwrap();
        assert_eq!((entry.epoch, entry.batches.len()), (3, 1));
    }

    #[test]
    fn recording_a_batch_twice_counts_it_once() {
        let mut states = known();
        states.record(7, 2, batch(5, 9, 105));
        assert_eq!(states, known());
    }

    #[test]
    fn truncation_forgets_batches_and_says_when_a_rebuild_is_needed() {
        let mut states = known();
        states.record(9, 0, batch(0, 0, 107));
        assert!(
            !states.clone().truncate_to(100),
            "producer 7 lost everything"
        );
        let mut cut = states.clone();
        assert!(!cut.truncate_to(106), "producer 9 lost its only batch");
        assert!(cut.truncate_to(107) || cut.get(9).is_none());
        let mut kept = states;
        assert!(kept.truncate_to(108));
        assert_eq!(kept.get(9).unwrap().batches.len(), 1);
        let mut only_seven = known();
        assert!(only_seven.truncate_to(105));
        assert_eq!(
            only_seven.get(7).unwrap().batches,
            VecDeque::from([batch(0, 4, 100)])
        );
    }

    #[test]
    fn retention_forgets_producers_whose_records_are_gone() {
        let mut states = known();
        states.record(9, 0, batch(0, 0, 300));
        states.remove_before(200);
        assert!(states.get(7).is_none());
        assert!(states.get(9).is_some());
    }
}
