//! A partition's batches and the decisions about them (pure: `now` is an argument; no tokio
//! timers, no I/O). The producer task owns every [`PartitionQueue`] and acts on these answers.
//!
//! A batch's life: [`OpenBatch`] (records are encoded into it as they arrive) → closed by
//! [`OpenBatch::close`] when full, lingered long enough, flushed or the producer closes →
//! [`ClosedBatch`] in the partition's ready queue → in flight in one produce request → acknowledged
//! (each record's delivery future gets its offset), or failed and put back in the ready queue in
//! its original place for a retry, or failed for good.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, oneshot};
use tokio::time::Instant;
use tributary_record::{BatchBuilder, Compression, Record};

use super::error::ProduceError;
use super::record::RecordMetadata;
use crate::{ClientError, ProduceAck};

/// Where one record's outcome goes.
pub(crate) type Reply = oneshot::Sender<Result<RecordMetadata, ProduceError>>;

/// A record waiting in a batch: its delivery future's sender and its create time.
#[derive(Debug)]
struct PendingRecord {
    reply: Reply,
    timestamp: i64,
}

/// The batch a partition is filling.
#[derive(Debug)]
pub(crate) struct OpenBatch {
    /// Producer-wide, increasing in creation order; orders a partition's batches.
    id: u64,
    builder: BatchBuilder,
    records: Vec<PendingRecord>,
    /// The buffer memory its records hold; released when the batch completes.
    permit: Option<OwnedSemaphorePermit>,
    created: Instant,
    /// Records appended to the partition before this batch (wrapping at `i32::MAX` as Kafka's
    /// sequence numbers do): the batch's base sequence once the idempotent producer sets one.
    base_sequence: i32,
}

impl OpenBatch {
    pub(crate) fn new(id: u64, created: Instant, base_sequence: i32, batch_size: usize) -> Self {
        OpenBatch {
            id,
            // Room for a full batch up front (as Kafka allocates batch.size per batch), so the
            // buffer never grows by copying; capped for very large batch sizes.
            builder: BatchBuilder::with_capacity(batch_size.min(4 * 1024 * 1024)),
            records: Vec::new(),
            permit: None,
            created,
            base_sequence,
        }
    }

    /// Whether `record` may join this batch: it keeps the batch within `batch_size`, or the
    /// batch is empty (a record larger than `batch.size` travels alone).
    pub(crate) fn fits(&self, record: &Record, batch_size: usize) -> bool {
        self.builder.is_empty() || self.builder.size_with(record) <= batch_size
    }

    pub(crate) fn push(&mut self, record: &Record, reply: Reply, permit: OwnedSemaphorePermit) {
        self.builder.push(record);
        self.records.push(PendingRecord {
            reply,
            timestamp: record.timestamp,
        });
        match &mut self.permit {
            Some(held) => held.merge(permit),
            None => self.permit = Some(permit),
        }
    }

    /// Whether no further record can be expected to fit.
    pub(crate) fn is_full(&self, batch_size: usize) -> bool {
        self.builder.size_in_bytes() >= batch_size
    }

    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    /// When the first record was added.
    pub(crate) fn created(&self) -> Instant {
        self.created
    }

    /// Bytes the batch has so far.
    pub(crate) fn size_in_bytes(&self) -> usize {
        self.builder.size_in_bytes()
    }

    /// Ends the batch. **The one place a batch is encoded**: its records are compressed with
    /// `compression` (`compression.type`) here, and the producer id, epoch and `base_sequence`
    /// of the idempotent producer (`BatchBuilder::producer`) will be set here too.
    pub(crate) fn close(self, compression: Compression) -> ClosedBatch {
        let record_count = self.records.len();
        ClosedBatch {
            id: self.id,
            base_sequence: self.base_sequence,
            record_count,
            bytes: self.builder.compression(compression).build(),
            records: self.records,
            permit: self.permit,
            created: self.created,
            attempts: 0,
            retry_at: None,
            last_error: None,
        }
    }
}

/// A batch encoded and waiting to be sent (or re-sent), or in flight.
#[derive(Debug)]
pub(crate) struct ClosedBatch {
    pub(crate) id: u64,
    /// See [`OpenBatch`]; unused until the idempotent producer.
    pub(crate) base_sequence: i32,
    pub(crate) record_count: usize,
    /// The encoded v2 batch, sent as is by every attempt.
    pub(crate) bytes: Bytes,
    records: Vec<PendingRecord>,
    permit: Option<OwnedSemaphorePermit>,
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

    /// Hands every record its outcome and releases the batch's buffer memory.
    pub(crate) fn complete(
        self,
        topic: &Arc<str>,
        partition: i32,
        outcome: Result<ProduceAck, ProduceError>,
    ) {
        match outcome {
            Ok(ack) => {
                for (index, record) in self.records.into_iter().enumerate() {
                    let offset = if ack.base_offset >= 0 {
                        ack.base_offset + index as i64
                    } else {
                        -1
                    };
                    let _ = record.reply.send(Ok(RecordMetadata {
                        topic: Arc::clone(topic),
                        partition,
                        offset,
                        timestamp: ack.log_append_time.unwrap_or(record.timestamp),
                    }));
                }
            }
            Err(error) => {
                for record in self.records {
                    let _ = record.reply.send(Err(error.clone()));
                }
            }
        }
        drop(self.permit);
    }
}

/// One partition's batches, owned by the producer task.
#[derive(Debug, Default)]
pub(crate) struct PartitionQueue {
    /// The batch being filled.
    pub(crate) open: Option<OpenBatch>,
    /// Closed batches not in flight, oldest first. Invariant: ascending `id` (a batch put back
    /// for a retry goes back to its place), so they are sent in the order records were sent.
    pub(crate) ready: VecDeque<ClosedBatch>,
    /// Requests carrying a batch of this partition and not answered yet.
    pub(crate) in_flight: usize,
    /// The broker those requests went to. Invariant: `Some` when `in_flight > 0`.
    pub(crate) in_flight_broker: Option<i32>,
    /// Records appended so far (wrapping), the next batch's base sequence.
    pub(crate) next_sequence: i32,
}

impl PartitionQueue {
    /// Whether the oldest waiting batch failed before: later batches wait for it.
    pub(crate) fn retrying(&self) -> bool {
        self.ready.front().is_some_and(|batch| batch.attempts > 0)
    }

    /// Puts a failed batch back in its place (by id) for a retry.
    pub(crate) fn requeue(&mut self, batch: ClosedBatch) {
        let at = self.ready.partition_point(|queued| queued.id < batch.id);
        self.ready.insert(at, batch);
    }

    /// Closes the open batch, if any, into the ready queue.
    pub(crate) fn close_open(&mut self, compression: Compression) {
        if let Some(open) = self.open.take() {
            self.next_sequence = self.next_sequence.wrapping_add(open.len() as i32) & i32::MAX;
            self.ready.push_back(open.close(compression));
        }
    }

    /// Whether `record` would need a new batch (the sticky partitioner moves on then).
    pub(crate) fn needs_new_batch(&self, record: &Record, batch_size: usize) -> bool {
        !self
            .open
            .as_ref()
            .is_some_and(|open| open.fits(record, batch_size))
    }
}

/// When an open batch should close: `Ok(())` now, or the instant its `linger` runs out.
/// `force` (a flush, closing, `linger.ms`=0 semantics) closes it at once.
pub(crate) fn open_batch_due(
    open: &OpenBatch,
    now: Instant,
    linger: Duration,
    force: bool,
) -> Result<(), Instant> {
    let due = open.created + linger;
    if force || now >= due {
        Ok(())
    } else {
        Err(due)
    }
}

/// Whether the oldest ready batch of `queue` may be sent to `leader` now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendCheck {
    /// Send it.
    Go,
    /// Not before this instant (retry backoff).
    Until(Instant),
    /// Not until the requests in flight for this partition are answered: a retried batch goes
    /// alone, and nothing goes to a new leader while the old one may still append.
    InFlight,
    /// Nothing is ready.
    Empty,
}

pub(crate) fn check_send(queue: &PartitionQueue, leader: i32, now: Instant) -> SendCheck {
    let Some(head) = queue.ready.front() else {
        return SendCheck::Empty;
    };
    if let Some(at) = head.retry_at
        && at > now
    {
        return SendCheck::Until(at);
    }
    if queue.in_flight > 0 && (queue.retrying() || queue.in_flight_broker != Some(leader)) {
        return SendCheck::InFlight;
    }
    SendCheck::Go
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
    let at = now + backoff;
    if at >= deadline {
        return AfterFailure::TimedOut;
    }
    AfterFailure::Retry {
        at,
        refresh_metadata: error.needs_metadata_refresh()
            || matches!(error, ClientError::StreamClosed { .. }),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::sync::Semaphore;

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

    fn permit() -> OwnedSemaphorePermit {
        static MEMORY: std::sync::LazyLock<Arc<Semaphore>> =
            std::sync::LazyLock::new(|| Arc::new(Semaphore::new(Semaphore::MAX_PERMITS)));
        Arc::clone(&MEMORY).try_acquire_many_owned(10).unwrap()
    }

    fn reply() -> (
        Reply,
        oneshot::Receiver<Result<RecordMetadata, ProduceError>>,
    ) {
        oneshot::channel()
    }

    #[test]
    fn batches_fill_up_to_batch_size() {
        let now = Instant::now();
        let mut open = OpenBatch::new(1, now, 0, 1000);
        // An empty batch takes any record, even one larger than batch.size.
        assert!(open.fits(&record(5000), 1000));
        let mut pushed = 0;
        while open.fits(&record(100), 1000) {
            open.push(&record(100), reply().0, permit());
            pushed += 1;
        }
        assert_eq!(pushed, 8, "8 records of ~110 bytes after a 61-byte header");
        assert!(
            !open.is_full(1000),
            "{} bytes",
            open.builder.size_in_bytes()
        );
        let closed = open.close(Compression::None);
        assert!(closed.bytes.len() <= 1000);
        assert_eq!(closed.record_count, 8);
        assert_eq!(
            tributary_record::decode_records(&closed.bytes)
                .unwrap()
                .len(),
            8
        );

        let mut big = OpenBatch::new(2, now, 0, 100);
        big.push(&record(500), reply().0, permit());
        assert!(big.is_full(100));
        assert!(!big.fits(&record(1), 100));
    }

    #[test]
    fn closing_encodes_with_the_producers_codec() {
        let now = Instant::now();
        for codec in Compression::ALL {
            let mut open = OpenBatch::new(1, now, 0, 1 << 20);
            for _ in 0..50 {
                open.push(&record(100), reply().0, permit());
            }
            let closed = open.close(codec);
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
        let open = OpenBatch::new(1, now, 0, 1000);
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
                open_batch_due(&open, now + elapsed, linger, force),
                expected,
                "{elapsed:?} {linger:?} {force}"
            );
        }
    }

    fn closed(id: u64, now: Instant) -> ClosedBatch {
        let mut open = OpenBatch::new(id, now, 0, 1000);
        open.push(&record(10), reply().0, permit());
        open.close(Compression::None)
    }

    #[test]
    fn retried_batches_go_back_in_order_and_alone() {
        let now = Instant::now();
        let mut queue = PartitionQueue::default();
        for id in [3, 4] {
            queue.ready.push_back(closed(id, now));
        }
        assert_eq!(check_send(&queue, 1, now), SendCheck::Go);
        // Two batches in flight to broker 1 fail: they come back before 3 and 4, in order.
        queue.in_flight = 2;
        queue.in_flight_broker = Some(1);
        for id in [2, 1] {
            let mut batch = closed(id, now);
            batch.attempts = 1;
            batch.retry_at = Some(now + Duration::from_millis(100));
            queue.requeue(batch);
            queue.in_flight -= 1;
        }
        assert_eq!(
            queue.ready.iter().map(|b| b.id).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        assert!(queue.retrying());
        assert_eq!(
            check_send(&queue, 2, now),
            SendCheck::Until(now + Duration::from_millis(100))
        );
        let later = now + Duration::from_millis(100);
        assert_eq!(check_send(&queue, 2, later), SendCheck::Go);
        // The retried head is in flight: nothing else of the partition goes until it is answered.
        let head = queue.ready.pop_front().unwrap();
        queue.in_flight = 1;
        queue.in_flight_broker = Some(2);
        assert_eq!(check_send(&queue, 2, later), SendCheck::InFlight);
        drop(head);
        queue.in_flight = 0;
        assert_eq!(check_send(&queue, 2, later), SendCheck::Go);
        // Fresh batches pipeline to one leader, but wait while another broker has some in flight.
        queue.ready.retain(|b| b.attempts == 0);
        queue.in_flight = 3;
        assert_eq!(check_send(&queue, 2, later), SendCheck::Go);
        assert_eq!(check_send(&queue, 3, later), SendCheck::InFlight);
        assert_eq!(
            check_send(&PartitionQueue::default(), 1, now),
            SendCheck::Empty
        );
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
    async fn completion_hands_out_offsets_and_memory() {
        let semaphore = Arc::new(Semaphore::new(100));
        let now = Instant::now();
        let mut open = OpenBatch::new(1, now, 0, 1000);
        let mut receivers = Vec::new();
        for _ in 0..3 {
            let (reply, receiver) = reply();
            open.push(
                &record(1),
                reply,
                semaphore.clone().try_acquire_many_owned(10).unwrap(),
            );
            receivers.push(receiver);
        }
        assert_eq!(semaphore.available_permits(), 70);
        let topic: Arc<str> = Arc::from("t");
        open.close(Compression::None).complete(
            &topic,
            2,
            Ok(ProduceAck {
                base_offset: 40,
                last_offset: 42,
                log_append_time: None,
            }),
        );
        assert_eq!(semaphore.available_permits(), 100);
        for (i, receiver) in receivers.into_iter().enumerate() {
            let metadata = receiver.await.unwrap().unwrap();
            assert_eq!(
                (metadata.partition, metadata.offset, metadata.timestamp),
                (2, 40 + i as i64, 1000)
            );
        }
    }
}
