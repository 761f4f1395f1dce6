//! The pure bookkeeping of one consume stream: the client's credit, the sequence numbers of
//! the Records messages, what each delivered, and which offsets a Commit stands for. No I/O;
//! `session.rs` feeds it and acts on its answers.
//!
//! Worked example: credit 3, pending `t-0@5, t-0@6, t-1@9, t-1@10`. [`Ledger::deliver`] takes
//! three records as two messages, sequence 1 = `t-0 [5, 6]` and sequence 2 = `t-1 [9]`; credit
//! 0; `t-1@10` stays pending. A Commit through sequence 1 stands for `t-0 → 7`; through 2 for
//! `t-0 → 7, t-1 → 10`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use tributary_client::TopicPartition;

/// What the ledger needs to know of a record.
pub trait Positioned {
    /// The record's topic.
    fn topic(&self) -> &str;
    /// Its partition.
    fn partition(&self) -> i32;
    /// Its offset.
    fn offset(&self) -> i64;
}

/// Consecutive records of one partition, to send as one Records message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch<R> {
    /// The message's sequence number (1, 2, ...).
    pub sequence: u64,
    /// The partition.
    pub partition: TopicPartition,
    /// At least one record, in offset order.
    pub records: Vec<R>,
}

/// A Commit the client asked for, checked against the assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitPlan {
    /// Commit these offsets (sorted; possibly none).
    Offsets(Vec<(TopicPartition, i64)>),
    /// Refused: this partition is not assigned to the stream.
    NotAssigned(TopicPartition),
}

/// One Records message as far as commits care.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Delivered {
    sequence: u64,
    partition: TopicPartition,
    /// The offset after the message's last record.
    next_offset: i64,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Records the client still allows. Invariant: records delivered so far never exceed the
    /// credit granted so far (`delivered + credit == granted`).
    credit: u64,
    /// The sequence of the last Records message (0 before the first).
    last_sequence: u64,
    /// Records messages of the current assignment, in sequence order; dropped at a rebalance
    /// (their partitions may belong to another member now) and when committed.
    delivered: VecDeque<Delivered>,
    /// The current assignment.
    assigned: BTreeSet<TopicPartition>,
}

impl Ledger {
    /// A ledger allowing `initial_credit` records.
    pub fn new(initial_credit: u32) -> Ledger {
        Ledger {
            credit: u64::from(initial_credit),
            ..Ledger::default()
        }
    }

    /// The client grants `records` more.
    pub fn grant(&mut self, records: u32) {
        self.credit += u64::from(records);
    }

    /// Records the client still allows.
    pub fn credit(&self) -> u64 {
        self.credit
    }

    /// A new assignment: what was delivered before can no longer be committed through a
    /// sequence. Returns the previous assignment (revoked).
    pub fn assign(&mut self, partitions: &[TopicPartition]) -> Vec<TopicPartition> {
        self.delivered.clear();
        let previous = std::mem::replace(&mut self.assigned, partitions.iter().cloned().collect());
        previous.into_iter().collect()
    }

    /// Takes at most the credit's worth of records from the front of `pending`, grouped into
    /// batches of consecutive records of one partition, and notes them as delivered.
    pub fn deliver<R: Positioned>(&mut self, pending: &mut VecDeque<R>) -> Vec<Batch<R>> {
        let mut batches: Vec<Batch<R>> = Vec::new();
        while self.credit > 0
            && let Some(record) = pending.pop_front()
        {
            self.credit -= 1;
            let same = batches.last().is_some_and(|b| {
                b.partition.topic == record.topic() && b.partition.partition == record.partition()
            });
            if same {
                batches.last_mut().expect("checked").records.push(record);
            } else {
                self.last_sequence += 1;
                batches.push(Batch {
                    sequence: self.last_sequence,
                    partition: TopicPartition::new(record.topic(), record.partition()),
                    records: vec![record],
                });
            }
        }
        for batch in &batches {
            let last = batch.records.last().expect("a batch has a record");
            self.delivered.push_back(Delivered {
                sequence: batch.sequence,
                partition: batch.partition.clone(),
                next_offset: last.offset() + 1,
            });
        }
        batches
    }

    /// The offsets a Commit through `sequence` stands for: per partition, the offset after
    /// the last record delivered in a message with sequence `<= sequence` since the latest
    /// assignment. Sorted by partition.
    pub fn through(&self, sequence: u64) -> Vec<(TopicPartition, i64)> {
        let mut offsets = BTreeMap::new();
        for d in self.delivered.iter().take_while(|d| d.sequence <= sequence) {
            offsets.insert(d.partition.clone(), d.next_offset);
        }
        offsets.into_iter().collect()
    }

    /// A commit through `sequence` succeeded: those messages need not be remembered.
    pub fn committed_through(&mut self, sequence: u64) {
        while self
            .delivered
            .front()
            .is_some_and(|d| d.sequence <= sequence)
        {
            self.delivered.pop_front();
        }
    }

    /// Checks explicit offsets: every partition must be assigned to this stream.
    pub fn explicit(&self, offsets: Vec<(TopicPartition, i64)>) -> CommitPlan {
        if let Some((tp, _)) = offsets.iter().find(|(tp, _)| !self.assigned.contains(tp)) {
            return CommitPlan::NotAssigned(tp.clone());
        }
        let sorted: BTreeMap<TopicPartition, i64> = offsets.into_iter().collect();
        CommitPlan::Offsets(sorted.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Eq)]
    struct R(&'static str, i32, i64);

    impl Positioned for R {
        fn topic(&self) -> &str {
            self.0
        }
        fn partition(&self) -> i32 {
            self.1
        }
        fn offset(&self) -> i64 {
            self.2
        }
    }

    fn tp(topic: &str, partition: i32) -> TopicPartition {
        TopicPartition::new(topic, partition)
    }

    #[test]
    fn the_worked_example() {
        let mut ledger = Ledger::new(3);
        ledger.assign(&[tp("t", 0), tp("t", 1)]);
        let mut pending: VecDeque<R> =
            [R("t", 0, 5), R("t", 0, 6), R("t", 1, 9), R("t", 1, 10)].into();
        let batches = ledger.deliver(&mut pending);
        assert_eq!(
            batches,
            vec![
                Batch {
                    sequence: 1,
                    partition: tp("t", 0),
                    records: vec![R("t", 0, 5), R("t", 0, 6)]
                },
                Batch {
                    sequence: 2,
                    partition: tp("t", 1),
                    records: vec![R("t", 1, 9)]
                },
            ]
        );
        assert_eq!(ledger.credit(), 0);
        assert_eq!(pending, VecDeque::from([R("t", 1, 10)]));
        assert_eq!(ledger.through(0), vec![]);
        assert_eq!(ledger.through(1), vec![(tp("t", 0), 7)]);
        assert_eq!(ledger.through(2), vec![(tp("t", 0), 7), (tp("t", 1), 10)]);
    }

    #[test]
    fn nothing_is_delivered_without_credit_and_credit_adds_up() {
        let mut ledger = Ledger::new(0);
        let mut pending: VecDeque<R> = [R("t", 0, 0), R("t", 0, 1), R("t", 0, 2)].into();
        assert!(ledger.deliver(&mut pending).is_empty());
        assert_eq!(pending.len(), 3);
        ledger.grant(1);
        ledger.grant(1);
        let batches = ledger.deliver(&mut pending);
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].records.len(), 2);
        assert_eq!(ledger.credit(), 0);
        ledger.grant(5);
        let batches = ledger.deliver(&mut pending);
        assert_eq!(batches[0].sequence, 2, "sequences keep counting");
        assert_eq!(ledger.credit(), 4);
    }

    #[test]
    fn a_later_message_of_the_same_partition_moves_its_offset() {
        let mut ledger = Ledger::new(1);
        ledger.assign(&[tp("t", 0)]);
        for offset in [3, 4, 5] {
            ledger.grant(1);
            ledger.deliver(&mut VecDeque::from([R("t", 0, offset)]));
        }
        // Sequences 1, 2, 3 delivered offsets 3, 4, 5 (the first grant was the initial one).
        assert_eq!(ledger.through(2), vec![(tp("t", 0), 5)]);
        assert_eq!(ledger.through(u64::MAX), vec![(tp("t", 0), 6)]);
        ledger.committed_through(2);
        assert_eq!(ledger.through(2), vec![], "sequences 1 and 2 are committed");
        assert_eq!(ledger.through(3), vec![(tp("t", 0), 6)]);
    }

    #[test]
    fn a_rebalance_forgets_what_was_delivered_before() {
        let mut ledger = Ledger::new(10);
        ledger.assign(&[tp("t", 0)]);
        ledger.deliver(&mut VecDeque::from([R("t", 0, 0)]));
        let revoked = ledger.assign(&[tp("t", 1)]);
        assert_eq!(revoked, vec![tp("t", 0)]);
        assert_eq!(ledger.through(1), vec![]);
    }

    #[test]
    fn explicit_offsets_must_be_of_assigned_partitions() {
        let mut ledger = Ledger::new(0);
        ledger.assign(&[tp("t", 0), tp("t", 1)]);
        assert_eq!(
            ledger.explicit(vec![(tp("t", 1), 4), (tp("t", 0), 2)]),
            CommitPlan::Offsets(vec![(tp("t", 0), 2), (tp("t", 1), 4)])
        );
        assert_eq!(
            ledger.explicit(vec![(tp("t", 0), 2), (tp("u", 0), 1)]),
            CommitPlan::NotAssigned(tp("u", 0))
        );
    }
}
