//! A partition's batches and the decisions about them (pure: `now` is an argument; no tokio
//! timers, no I/O).
//!
//! A batch's life: [`OpenBatch`] in the accumulator (records are encoded into it as `send`
//! appends them) → sealed when full, lingered long enough, flushed or the producer closes →
//! taken by the sender task, which encodes it with [`OpenBatch::close`] into a [`ClosedBatch`]
//! and sends it → acknowledged (every record's delivery future resolves from the one batch
//! result plus its relative offset), or failed and kept by the sender for a retry at the head
//! of its partition ([`PartitionFlight`]), or failed for good.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use futures::future::Shared;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tributary_record::{BatchBuilder, Compression, Record};

use super::buffer::BufferPool;
use super::error::ProduceError;
use crate::{ClientError, ProduceAck};

/// A batch's outcome, handed once to every record of the batch.
pub(crate) type BatchOutcome = Result<ProduceAck, ProduceError>;

/// The receiving side of a batch's outcome, shared by the delivery futures of its records.
pub(crate) type BatchResult = Shared<oneshot::Receiver<BatchOutcome>>;

/// The batch a partition is filling, or a sealed one waiting for the sender.
#[derive(Debug)]
pub(crate) struct OpenBatch {
    /// Producer-wide, increasing in creation order; orders a partition's batches.
    pub(crate) id: u64,
    builder: BatchBuilder,
    /// Where the batch's outcome goes (once, for every record).
    outcome: oneshot::Sender<BatchOutcome>,
    /// What each record's delivery future holds.
    result: BatchResult,
    /// Bytes of `buffer.memory` its records hold; released when the batch completes.
    reserved: usize,
    created: Instant,
}

impl OpenBatch {
    pub(crate) fn new(id: u64, created: Instant, batch_size: usize) -> Self {
        let (outcome, receiver) = oneshot::channel();
        OpenBatch {
            id,
            // Room for a full batch up front (as Kafka allocates batch.size per batch), so the
            // buffer never grows by copying; capped for very large batch sizes.
            builder: BatchBuilder::with_capacity(batch_size.min(4 * 1024 * 1024)),
            outcome,
            result: receiver.shared(),
            reserved: 0,
            created,
        }
    }

    /// Whether `record` may join this batch: it keeps the batch within `batch_size`, or the
    /// batch is empty (a record larger than `batch.size` travels alone).
    pub(crate) fn fits(&self, record: &Record, batch_size: usize) -> bool {
        self.builder.is_empty() || self.builder.size_with(record) <= batch_size
    }

    /// Appends `record`, which holds `reserved` bytes of buffer memory. Returns the record's
    /// offset relative to the batch's base offset and the batch's shared result.
    pub(crate) fn push(&mut self, record: &Record, reserved: usize) -> (u32, BatchResult) {
        let relative = self.builder.len() as u32;
        self.builder.push(record);
        self.reserved += reserved;
        (relative, self.result.clone())
    }

    /// Whether no further record can be expected to fit.
    pub(crate) fn is_full(&self, batch_size: usize) -> bool {
        self.builder.size_in_bytes() >= batch_size
    }

    pub(crate) fn len(&self) -> usize {
        self.builder.len()
    }

    /// When the first record was added.
    pub(crate) fn created(&self) -> Instant {
        self.created
    }

    /// Bytes the batch has so far (before compression).
    pub(crate) fn size_in_bytes(&self) -> usize {
        self.builder.size_in_bytes()
    }

    /// When the batch fails if it has not been acknowledged.
    pub(crate) fn deadline(&self, delivery_timeout: Duration) -> Instant {
        self.created + delivery_timeout
    }

    /// Ends the batch. **The one place a batch is encoded**: its records are compressed with
    /// `compression` (`compression.type`) here, and an idempotent producer's id, epoch and
    /// base sequence (`stamp`) are set. The sender task calls it outside the accumulator's
    /// lock (a 1 MiB batch takes milliseconds to compress), in each partition's batch order,
    /// so sequence numbers follow the records' order.
    pub(crate) fn close(
        self,
        compression: Compression,
        stamp: Option<ProducerStamp>,
    ) -> ClosedBatch {
        let record_count = self.builder.len();
        let mut builder = self.builder.compression(compression);
        if let Some(stamp) = stamp {
            builder = builder.producer(stamp.producer_id, stamp.epoch, stamp.base_sequence);
        }
        ClosedBatch {
            id: self.id,
            base_sequence: stamp.map_or(-1, |s| s.base_sequence),
            record_count,
            bytes: builder.build(),
            outcome: self.outcome,
            reserved: self.reserved,
            created: self.created,
            attempts: 0,
            retry_at: None,
            last_error: None,
        }
    }

    /// Fails a batch that was never sent (its delivery deadline passed in the accumulator).
    pub(crate) fn fail(self, error: ProduceError, buffer: &BufferPool) {
        let _ = self.outcome.send(Err(error));
        buffer.release(self.reserved);
    }
}

/// The idempotent producer's fields of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProducerStamp {
    pub(crate) producer_id: i64,
    pub(crate) epoch: i16,
    pub(crate) base_sequence: i32,
}

/// A batch encoded and in flight, or waiting for a retry.
#[derive(Debug)]
pub(crate) struct ClosedBatch {
    pub(crate) id: u64,
    /// The idempotent producer's sequence of its first record, -1 without idempotence.
    pub(crate) base_sequence: i32,
    pub(crate) record_count: usize,
    /// The encoded v2 batch, sent as is by every attempt.
    pub(crate) bytes: Bytes,
    outcome: oneshot::Sender<BatchOutcome>,
    reserved: usize,
    pub(crate) created: Instant,
    /// Requests that carried this batch so far.
    pub(crate) attempts: u32,
    /// Not to be sent before this (the retry backoff).
    pub(crate) retry_at: Option<Instant>,
    /// Why the last attempt failed.
    pub(crate) last_error: Option<Arc<ClientError>>,
}

impl ClosedBatch {
    /// When the batch fails if it has not been acknowledged.
    pub(crate) fn deadline(&self, delivery_timeout: Duration) -> Instant {
        self.created + delivery_timeout
    }

    /// Stamps the batch again for a new producer id (the bytes are copied once and the CRC
    /// recomputed): after the producer id was reset, a batch waiting for a retry.
    pub(crate) fn restamp(&mut self, stamp: ProducerStamp) {
        let mut bytes = self.bytes.to_vec();
        tributary_record::set_producer(
            &mut bytes,
            stamp.producer_id,
            stamp.epoch,
            stamp.base_sequence,
        );
        self.bytes = Bytes::from(bytes);
        self.base_sequence = stamp.base_sequence;
    }

    /// Hands the outcome to every record (one send: each delivery future adds its relative
    /// offset to the base offset) and releases the batch's buffer memory.
    pub(crate) fn complete(self, outcome: BatchOutcome, buffer: &BufferPool) {
        let _ = self.outcome.send(outcome);
        buffer.release(self.reserved);
    }
}

/// The sender task's view of one partition: requests in flight and failed batches waiting for a
/// retry. (Batches never sent stay in the accumulator until the sender takes them.)
#[derive(Debug, Default)]
pub(crate) struct PartitionFlight {
    /// Failed batches to send again, oldest first. Invariant: ascending `id` (a batch goes back
    /// to its place), and every id is below those of the partition's batches still in the
    /// accumulator (those were taken later), so retries go first and in order.
    pub(crate) retries: VecDeque<ClosedBatch>,
    /// Requests carrying a batch of this partition and not answered yet.
    pub(crate) in_flight: usize,
    /// The broker those requests went to. Invariant: `Some` when `in_flight > 0`.
    pub(crate) in_flight_broker: Option<i32>,
}

impl PartitionFlight {
    /// Puts a failed batch back in its place (by id) for a retry.
    pub(crate) fn requeue(&mut self, batch: ClosedBatch) {
        let at = self.retries.partition_point(|queued| queued.id < batch.id);
        self.retries.insert(at, batch);
    }

    /// Whether a batch never sent may go to `leader` now: no retry is pending (it goes first,
    /// alone) and nothing is in flight to another broker (the old leader may still append).
    pub(crate) fn may_send_fresh(&self, leader: i32) -> bool {
        self.retries.is_empty() && (self.in_flight == 0 || self.in_flight_broker == Some(leader))
    }

    /// Whether the oldest retry may be sent now.
    pub(crate) fn check_retry(&self, now: Instant) -> SendCheck {
        let Some(head) = self.retries.front() else {
            return SendCheck::Empty;
        };
        if let Some(at) = head.retry_at
            && at > now
        {
            return SendCheck::Until(at);
        }
        if self.in_flight > 0 {
            return SendCheck::InFlight;
        }
        SendCheck::Go
    }
}

/// When an open batch should be sealed: `Ok(())` now, or the instant its `linger` runs out.
/// `force` (a flush, closing) seals it at once.
pub(crate) fn open_batch_due(
    created: Instant,
    now: Instant,
    linger: Duration,
    force: bool,
) -> Result<(), Instant> {
    let due = created + linger;
    if force || now >= due {
        Ok(())
    } else {
        Err(due)
    }
}

/// Whether a partition's oldest retry may be sent now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendCheck {
    /// Send it.
    Go,
    /// Not before this instant (retry backoff).
    Until(Instant),
    /// Not until the requests in flight for this partition are answered: a retried batch goes
    /// alone.
    InFlight,
    /// Nothing is waiting.
    Empty,
}

/// What to do with a batch whose attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterFailure {
    /// Send it again at `at`; refresh metadata first if the leader may have moved.
    Retry { at: Instant, refresh_metadata: bool },
    /// Retrying cannot help: fail the records with the broker's error.
    Refused,
    /// It could help, but the next attempt would start after `delivery.timeout.ms`.
    TimedOut,
}

/// Whether an attempt's failure is worth a retry: a retriable broker code
/// (`NOT_LEADER_OR_FOLLOWER`, `LEADER_NOT_AVAILABLE`, `REQUEST_TIMED_OUT`,
/// `NOT_ENOUGH_REPLICAS`, ...), an unreachable broker, or a stream that ended under us (a
/// broker shutting down ends its streams).
pub(crate) fn is_retriable(error: &ClientError) -> bool {
    error.is_retriable()
        || error.needs_metadata_refresh()
        || matches!(error, ClientError::StreamClosed { .. })
}

pub(crate) fn after_failure(
    error: &ClientError,
    now: Instant,
    deadline: Instant,
    backoff: Duration,
) -> AfterFailure {
    if !is_retriable(error) {
        return AfterFailure::Refused;
    }
    retry_unless_late(
        now,
        deadline,
        backoff,
        error.needs_metadata_refresh() || matches!(error, ClientError::StreamClosed { .. }),
    )
}

/// A retry after `backoff`, unless that would start after the delivery `deadline`.
pub(crate) fn retry_unless_late(
    now: Instant,
    deadline: Instant,
    backoff: Duration,
    refresh_metadata: bool,
) -> AfterFailure {
    let at = now + backoff;
    if at >= deadline {
        return AfterFailure::TimedOut;
    }
    AfterFailure::Retry {
        at,
        refresh_metadata,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    fn record(size: usize) -> Record {
        Record {
            key: None,
            value: Some(Bytes::from(vec![b'x'; size])),
            timestamp: 1000,
            headers: Vec::new(),
        }
    }

    #[test]
    fn batches_fill_up_to_batch_size() {
        let now = Instant::now();
        let mut open = OpenBatch::new(1, now, 1000);
        // An empty batch takes any record, even one larger than batch.size.
        assert!(open.fits(&record(5000), 1000));
        let mut pushed = 0;
        while open.fits(&record(100), 1000) {
            let (relative, _) = open.push(&record(100), 10);
            assert_eq!(relative, pushed);
            pushed += 1;
        }
        assert_eq!(pushed, 8, "8 records of ~110 bytes after a 61-byte header");
        assert!(!open.is_full(1000), "{} bytes", open.size_in_bytes());
        let closed = open.close(Compression::None, None);
        assert!(closed.bytes.len() <= 1000);
        assert_eq!(closed.record_count, 8);
        assert_eq!(
            tributary_record::decode_records(&closed.bytes)
                .unwrap()
                .len(),
            8
        );

        let mut big = OpenBatch::new(2, now, 100);
        let _ = big.push(&record(500), 10);
        assert!(big.is_full(100));
        assert!(!big.fits(&record(1), 100));
    }

    #[test]
    fn closing_encodes_with_the_producers_codec() {
        let now = Instant::now();
        for codec in Compression::ALL {
            let mut open = OpenBatch::new(1, now, 1 << 20);
            for _ in 0..50 {
                let _ = open.push(&record(100), 10);
            }
            let closed = open.close(codec, None);
            let header = tributary_record::validate_records(&closed.bytes).unwrap();
            assert_eq!(header.attributes.compression(), Ok(codec));
            assert_eq!(
                tributary_record::decode_records(&closed.bytes)
                    .unwrap()
                    .len(),
                50
            );
        }
    }

    #[test]
    fn linger_decides_when_an_open_batch_closes() {
        let now = Instant::now();
        let ms = Duration::from_millis;
        let table = [
            // (time since creation, linger, force, expected)
            (ms(0), ms(0), false, Ok(())),
            (ms(0), ms(5), false, Err(now + ms(5))),
            (ms(4), ms(5), false, Err(now + ms(5))),
            (ms(5), ms(5), false, Ok(())),
            (ms(0), ms(5), true, Ok(())),
        ];
        for (elapsed, linger, force, expected) in table {
            assert_eq!(
                open_batch_due(now, now + elapsed, linger, force),
                expected,
                "{elapsed:?} {linger:?} {force}"
            );
        }
    }

    fn closed(id: u64, now: Instant) -> ClosedBatch {
        let mut open = OpenBatch::new(id, now, 1000);
        let _ = open.push(&record(10), 10);
        open.close(Compression::None, None)
    }

    #[test]
    fn retried_batches_go_back_in_order_and_alone() {
        let now = Instant::now();
        let mut flight = PartitionFlight::default();
        assert_eq!(flight.check_retry(now), SendCheck::Empty);
        assert!(flight.may_send_fresh(1));
        // Two batches in flight to broker 1 fail: they come back in order.
        flight.in_flight = 2;
        flight.in_flight_broker = Some(1);
        for id in [2, 1] {
            let mut batch = closed(id, now);
            batch.attempts = 1;
            batch.retry_at = Some(now + Duration::from_millis(100));
            flight.requeue(batch);
            flight.in_flight -= 1;
        }
        assert_eq!(
            flight.retries.iter().map(|b| b.id).collect::<Vec<_>>(),
            [1, 2]
        );
        // Fresh batches wait behind the retries, whichever the leader.
        assert!(!flight.may_send_fresh(1));
        assert_eq!(
            flight.check_retry(now),
            SendCheck::Until(now + Duration::from_millis(100))
        );
        let later = now + Duration::from_millis(100);
        assert_eq!(flight.check_retry(later), SendCheck::Go);
        // The retried head is in flight: the next retry waits until it is answered.
        let head = flight.retries.pop_front().unwrap();
        flight.in_flight = 1;
        flight.in_flight_broker = Some(2);
        assert_eq!(flight.check_retry(later), SendCheck::InFlight);
        drop(head);
        flight.in_flight = 0;
        assert_eq!(flight.check_retry(later), SendCheck::Go);
        // Fresh batches pipeline to one leader, but wait while another broker has some in flight.
        flight.retries.clear();
        flight.in_flight = 3;
        assert!(flight.may_send_fresh(2));
        assert!(!flight.may_send_fresh(3));
    }

    #[test]
    fn failures_are_retried_until_the_delivery_deadline() {
        let now = Instant::now();
        let deadline = now + Duration::from_secs(2);
        let backoff = Duration::from_millis(100);
        let broker = |code: ErrorCode| ClientError::Broker {
            topic: "t".into(),
            partition: Some(0),
            code,
            message: String::new(),
        };
        let retry = |refresh_metadata| AfterFailure::Retry {
            at: now + backoff,
            refresh_metadata,
        };
        let unavailable = ClientError::Rpc {
            operation: "ProduceStream",
            source: tonic::Status::unavailable("connection refused"),
        };
        let table = [
            (broker(ErrorCode::NotLeaderOrFollower), retry(true)),
            (broker(ErrorCode::LeaderNotAvailable), retry(true)),
            (broker(ErrorCode::RequestTimedOut), retry(false)),
            (broker(ErrorCode::NotEnoughReplicas), retry(false)),
            (
                broker(ErrorCode::NotEnoughReplicasAfterAppend),
                retry(false),
            ),
            (unavailable, retry(true)),
            (
                ClientError::StreamClosed {
                    operation: "ProduceStream",
                },
                retry(true),
            ),
            (broker(ErrorCode::MessageTooLarge), AfterFailure::Refused),
            (
                broker(ErrorCode::InvalidRequiredAcks),
                AfterFailure::Refused,
            ),
            (broker(ErrorCode::CorruptMessage), retry(false)),
        ];
        for (error, expected) in table {
            assert_eq!(
                after_failure(&error, now, deadline, backoff),
                expected,
                "{error}"
            );
        }
        let late = deadline - Duration::from_millis(50);
        assert_eq!(
            after_failure(
                &broker(ErrorCode::NotLeaderOrFollower),
                late,
                deadline,
                backoff
            ),
            AfterFailure::TimedOut
        );
        assert_eq!(
            after_failure(&broker(ErrorCode::MessageTooLarge), late, deadline, backoff),
            AfterFailure::Refused
        );
    }

    #[tokio::test]
    async fn one_outcome_per_batch_and_the_memory_comes_back() {
        let buffer = BufferPool::new(100);
        let now = Instant::now();
        let mut open = OpenBatch::new(1, now, 1000);
        let mut results = Vec::new();
        for _ in 0..3 {
            let reserved = buffer.try_reserve(10).unwrap();
            results.push(open.push(&record(1), reserved));
        }
        assert_eq!(buffer.available(), 70);
        let ack = ProduceAck {
            base_offset: 40,
            last_offset: 42,
            log_append_time: None,
        };
        open.close(Compression::None, None)
            .complete(Ok(ack), &buffer);
        assert_eq!(buffer.available(), 100);
        for (i, (relative, result)) in results.into_iter().enumerate() {
            assert_eq!(relative, i as u32);
            assert_eq!(result.await.unwrap().unwrap(), ack);
        }
    }
}
