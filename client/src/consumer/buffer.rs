//! Records fetched and not yet returned by [`Consumer::poll`](crate::Consumer::poll), and the
//! record type it returns (pure).
//!
//! Fetches arrive ahead of the application (the next one is in flight while it processes the
//! current one), so a completed fetch waits here. It is returned only if its partition's position
//! is still the offset it was fetched from ([`Assignment::accepts`]): a seek, a pause or a reset
//! in the meantime makes it stale, and it is dropped. That check, with positions that only move
//! forward from the offset the records start at, is what rules out gaps and duplicates.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use tributary_record::{Header, TimestampType};

use super::FetchResult;
use super::assignment::{Assignment, TopicPartition};

/// One record returned by [`Consumer::poll`](crate::Consumer::poll).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// The topic (shared by the records of one fetch).
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
    /// Milliseconds since the Unix epoch: the producer's create time, or the broker's append
    /// time for a topic with `message.timestamp.type=LogAppendTime` (see `timestamp_type`).
    pub timestamp: i64,
    /// What `timestamp` means (the batch's attribute bit 3).
    pub timestamp_type: TimestampType,
    /// The key; `None` is null.
    pub key: Option<Bytes>,
    /// The value; `None` is null (a tombstone).
    pub value: Option<Bytes>,
    /// The headers, in order.
    pub headers: Vec<Header>,
}

/// The records of one fetch, each given the timestamp type of its batch.
pub(crate) fn consumer_records(
    topic: &Arc<str>,
    partition: i32,
    fetched: FetchResult,
) -> VecDeque<ConsumerRecord> {
    let mut batches = fetched.batches.iter().peekable();
    fetched
        .records
        .into_iter()
        .map(|record| {
            while batches
                .next_if(|batch| batch.next_offset <= record.offset)
                .is_some()
            {}
            let timestamp_type = batches
                .peek()
                .filter(|batch| batch.base_offset <= record.offset)
                .map_or(TimestampType::CreateTime, |batch| batch.timestamp_type);
            ConsumerRecord {
                topic: Arc::clone(topic),
                partition,
                offset: record.offset,
                timestamp: record.timestamp,
                timestamp_type,
                key: record.key,
                value: record.value,
                headers: record.headers,
            }
        })
        .collect()
}

#[derive(Debug)]
struct Completed {
    partition: TopicPartition,
    /// The offset the remaining records start at (the fetch offset, then just after the last
    /// record returned).
    position: i64,
    records: VecDeque<ConsumerRecord>,
    /// Where the next fetch starts: after the fetch's last batch. Invariant: >= `position`.
    next_offset: i64,
}

/// Completed fetches in arrival order.
#[derive(Debug, Default)]
pub(crate) struct FetchBuffer {
    completed: VecDeque<Completed>,
}

impl FetchBuffer {
    /// Keeps the records of a fetch of `partition` from `fetch_offset`.
    pub(crate) fn push(
        &mut self,
        partition: TopicPartition,
        fetch_offset: i64,
        records: VecDeque<ConsumerRecord>,
        next_offset: i64,
    ) {
        debug_assert!(next_offset >= fetch_offset);
        self.completed.push_back(Completed {
            partition,
            position: fetch_offset,
            records,
            next_offset,
        });
    }

    /// Drops everything buffered for `partition` (after a seek, a pause or an unassign).
    pub(crate) fn discard(&mut self, partition: &TopicPartition) {
        self.completed.retain(|c| &c.partition != partition);
    }

    /// The offset the last buffered fetch of `partition` ends at, if any is buffered (where a
    /// new fetcher should start).
    pub(crate) fn buffered_until(&self, partition: &TopicPartition) -> Option<i64> {
        self.completed
            .iter()
            .rev()
            .find(|c| &c.partition == partition)
            .map(|c| c.next_offset)
    }

    /// Takes up to `max` records, oldest fetch first, advancing the positions in `assignment`.
    /// Stale fetches are dropped; a fetch with no records left (or only control batches) moves
    /// the position to its `next_offset`.
    pub(crate) fn drain(&mut self, assignment: &mut Assignment, max: usize) -> Vec<ConsumerRecord> {
        let mut out = Vec::new();
        while out.len() < max {
            let Some(front) = self.completed.front_mut() else {
                break;
            };
            if !assignment.accepts(&front.partition, front.position) {
                self.completed.pop_front();
                continue;
            }
            let take = front.records.len().min(max - out.len());
            out.extend(front.records.drain(..take));
            let to = match front.records.front() {
                Some(next) => next.offset,
                None => front.next_offset,
            };
            assignment.advance(&front.partition, front.position, to);
            front.position = to;
            if front.records.is_empty() {
                self.completed.pop_front();
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use tributary_record::DecodedRecord;

    use super::*;
    use crate::BatchInfo;

    fn tp(partition: i32) -> TopicPartition {
        TopicPartition::new("t", partition)
    }

    fn records(partition: i32, offsets: std::ops::Range<i64>) -> VecDeque<ConsumerRecord> {
        offsets
            .map(|offset| ConsumerRecord {
                topic: Arc::from("t"),
                partition,
                offset,
                timestamp: 1000 + offset,
                timestamp_type: TimestampType::CreateTime,
                key: None,
                value: Some(Bytes::from(format!("v{offset}"))),
                headers: Vec::new(),
            })
            .collect()
    }

    fn offsets(records: &[ConsumerRecord]) -> Vec<(i32, i64)> {
        records.iter().map(|r| (r.partition, r.offset)).collect()
    }

    #[test]
    fn drains_in_arrival_order_up_to_max_and_advances_positions() {
        let mut assignment = Assignment::default();
        assignment.assign([tp(0), tp(1)]);
        assignment.seek(&tp(0), 0).unwrap();
        assignment.seek(&tp(1), 10).unwrap();
        let mut buffer = FetchBuffer::default();
        // Offsets 3 and 4 of partition 0 are control records: the fetch ends at 5.
        buffer.push(tp(0), 0, records(0, 0..3), 5);
        buffer.push(tp(1), 10, records(1, 10..12), 12);
        assert_eq!(buffer.buffered_until(&tp(0)), Some(5));

        let first = buffer.drain(&mut assignment, 2);
        assert_eq!(offsets(&first), vec![(0, 0), (0, 1)]);
        assert_eq!(assignment.position(&tp(0)).unwrap(), Some(2));
        let rest = buffer.drain(&mut assignment, 10);
        assert_eq!(offsets(&rest), vec![(0, 2), (1, 10), (1, 11)]);
        assert_eq!(assignment.position(&tp(0)).unwrap(), Some(5));
        assert_eq!(assignment.position(&tp(1)).unwrap(), Some(12));
        assert!(buffer.drain(&mut assignment, 10).is_empty());
        assert_eq!(buffer.buffered_until(&tp(0)), None);
    }

    #[test]
    fn stale_and_paused_fetches_are_not_returned() {
        let mut assignment = Assignment::default();
        assignment.assign([tp(0), tp(1)]);
        assignment.seek(&tp(0), 0).unwrap();
        assignment.seek(&tp(1), 0).unwrap();
        let mut buffer = FetchBuffer::default();
        buffer.push(tp(0), 0, records(0, 0..3), 3);
        buffer.push(tp(1), 0, records(1, 0..3), 3);
        // The application seeks partition 0 back to 1 and pauses partition 1.
        assignment.seek(&tp(0), 1).unwrap();
        assignment.set_paused(&tp(1), true).unwrap();
        assert!(buffer.drain(&mut assignment, 10).is_empty());
        assert_eq!(assignment.position(&tp(0)).unwrap(), Some(1));
        assert_eq!(assignment.position(&tp(1)).unwrap(), Some(0));

        // A fetch pushed twice (a new fetcher after an error) is returned once.
        buffer.push(tp(0), 1, records(0, 1..3), 3);
        buffer.push(tp(0), 1, records(0, 1..3), 3);
        assert_eq!(
            offsets(&buffer.drain(&mut assignment, 10)),
            vec![(0, 1), (0, 2)]
        );
        buffer.push(tp(0), 3, records(0, 3..4), 4);
        buffer.discard(&tp(0));
        assert!(buffer.drain(&mut assignment, 10).is_empty());
    }

    #[test]
    fn records_get_the_timestamp_type_of_their_batch() {
        let decoded = |offset| DecodedRecord {
            offset,
            timestamp: offset,
            key: None,
            value: None,
            headers: Vec::new(),
        };
        let fetched = FetchResult {
            fetch_offset: 2,
            records: [2, 3, 4, 7].into_iter().map(decoded).collect(),
            high_watermark: 8,
            log_start_offset: 0,
            log_end_offset: 8,
            next_offset: 8,
            batches: vec![
                BatchInfo {
                    base_offset: 0,
                    next_offset: 4,
                    timestamp_type: TimestampType::CreateTime,
                },
                // 5 and 6 were a control batch, not listed.
                BatchInfo {
                    base_offset: 4,
                    next_offset: 5,
                    timestamp_type: TimestampType::LogAppendTime,
                },
                BatchInfo {
                    base_offset: 7,
                    next_offset: 8,
                    timestamp_type: TimestampType::CreateTime,
                },
            ],
        };
        let records = consumer_records(&Arc::from("t"), 0, fetched);
        let types: Vec<(i64, TimestampType)> = records
            .iter()
            .map(|r| (r.offset, r.timestamp_type))
            .collect();
        assert_eq!(
            types,
            vec![
                (2, TimestampType::CreateTime),
                (3, TimestampType::CreateTime),
                (4, TimestampType::LogAppendTime),
                (7, TimestampType::CreateTime)
            ]
        );
    }
}
