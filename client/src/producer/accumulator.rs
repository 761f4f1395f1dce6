//! The record accumulator (Kafka's `RecordAccumulator`): every batch that has not been handed
//! to the sender task, per partition, behind one short mutex, with the partitioner's state.
//!
//! ```text
//!  Producer::send ──append──▶ ┌ Accumulator (Mutex) ───────────────────────┐
//!   (caller's task)           │ topic → partition → [sealed.., open] batches │──take──▶ sender task
//!  Producer::flush/close ───▶ │ flushes, closed, incomplete batch ids       │◀─completed─ (owns
//!                             └─────────────────────────────────────────────┘   requests, retries)
//! ```
//!
//! `send` encodes its record into the partition's open batch under the lock and leaves: no
//! message to the sender task per record, one completion per batch. The sender is woken only
//! when a batch opens or fills (or on flush and close), and takes out the batches it can send
//! now ([`Accumulator::take`]); it encodes them outside the lock. Only these methods touch the
//! batches; the lock is never held across an `.await` or while a batch is compressed.

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::Notify;
use tokio::time::Instant;
use tributary_record::Record;

use super::batch::{OpenBatch, open_batch_due};
use super::error::ProduceError;
use super::fast_hash::FastMap;
use super::partitioner::{PartitionChooser, Partitioner};
use super::record::DeliveryFuture;
use crate::Client;

#[derive(Debug)]
pub(crate) struct Accumulator {
    state: Mutex<State>,
    batch_size: usize,
    /// Woken when a batch opens or fills, on flush and on close: the sender has something new
    /// to look at. (`notify_one` keeps a permit, so a wake-up before the sender waits is kept.)
    sender_wake: Notify,
    /// Woken (every waiter) when batches complete or the sender stops: flushes wait on it.
    progress: Notify,
}

#[derive(Debug)]
struct State {
    topics: FastMap<Arc<str>, TopicBatches>,
    chooser: PartitionChooser,
    rng: StdRng,
    next_batch_id: u64,
    /// Ids of the batches not completed yet: here, in flight or waiting for a retry.
    incomplete: BTreeSet<u64>,
    /// Flushes under way: while any is, every open batch is due at once.
    flushes: usize,
    /// No more records are accepted; everything accepted is sent at once.
    closed: bool,
    /// The sender task has stopped.
    stopped: bool,
}

#[derive(Debug)]
struct TopicBatches {
    /// The topic (the map's key too), shared with every delivery future.
    name: Arc<str>,
    partitions: FastMap<i32, PartitionBatches>,
}

/// One partition's batches not handed to the sender.
#[derive(Debug, Default)]
struct PartitionBatches {
    /// Oldest first. Invariant: ascending ids; only the last may be open (`last_open`).
    batches: VecDeque<OpenBatch>,
    /// Whether the last batch still takes records.
    last_open: bool,
}

impl PartitionBatches {
    fn open(&self) -> Option<&OpenBatch> {
        self.batches.back().filter(|_| self.last_open)
    }

    /// Whether `record` would need a new batch (the sticky partitioner moves on then).
    fn needs_new_batch(&self, record: &Record, batch_size: usize) -> bool {
        !self
            .open()
            .is_some_and(|open| open.fits(record, batch_size))
    }

    fn seal(&mut self) {
        self.last_open = false;
    }
}

/// A batch with its topic and partition.
pub(crate) type PartitionBatch = (Arc<str>, i32, OpenBatch);

/// What the sender decides about the oldest batch of a partition that [`Accumulator::take`]
/// offers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offer {
    /// Take it (and offer the next one of the partition).
    Take,
    /// Leave it and the partition's later batches for now.
    Leave,
}

/// A partition's batch the sender may take: what it needs to decide.
#[derive(Debug)]
pub(crate) struct Candidate<'a> {
    pub(crate) topic: &'a Arc<str>,
    pub(crate) partition: i32,
    /// Bytes before compression.
    pub(crate) bytes: usize,
}

impl Accumulator {
    pub(crate) fn new(batch_size: usize, partitioner: Partitioner) -> Accumulator {
        Accumulator {
            state: Mutex::new(State {
                topics: FastMap::default(),
                chooser: PartitionChooser::new(partitioner),
                rng: StdRng::from_rng(&mut rand::rng()),
                next_batch_id: 0,
                incomplete: BTreeSet::new(),
                flushes: 0,
                closed: false,
                stopped: false,
            }),
            batch_size,
            sender_wake: Notify::new(),
            progress: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing under the lock panics halfway through a change; a poisoned state is usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Places `record` (the partitioner decides unless `explicit`; `partitions` is the topic's
    /// partition count) and appends it to that partition's open batch, opening one when needed.
    /// `reserved` is the buffer memory the record holds. Returns its delivery future. The clock
    /// is read only when a batch opens (its linger and delivery deadline start then).
    pub(crate) fn append(
        &self,
        client: &Client,
        topic: &str,
        explicit: Option<i32>,
        partitions: i32,
        record: &Record,
        reserved: usize,
    ) -> Result<DeliveryFuture, ProduceError> {
        let batch_size = self.batch_size;
        let mut guard = self.lock();
        let state = &mut *guard;
        if state.closed {
            return Err(ProduceError::Closed);
        }
        if !state.topics.contains_key(topic) {
            let name: Arc<str> = Arc::from(topic);
            let batches = TopicBatches {
                name: Arc::clone(&name),
                partitions: FastMap::default(),
            };
            state.topics.insert(name, batches);
        }
        let TopicBatches {
            name,
            partitions: queues,
        } = state.topics.get_mut(topic).expect("inserted above");
        let choice = state.chooser.choose(
            name,
            explicit,
            record.key.as_deref(),
            partitions,
            || client.available_partitions(name),
            &mut state.rng,
        );
        let mut partition = choice.partition;
        if choice.sticky
            && queues
                .get(&partition)
                .is_none_or(|queue| queue.needs_new_batch(record, batch_size))
        {
            let available = client.available_partitions(name);
            partition =
                state
                    .chooser
                    .next_sticky(name, partition, partitions, &available, &mut state.rng);
        }
        let queue = queues.entry(partition).or_default();
        let mut wake = false;
        if queue.needs_new_batch(record, batch_size) {
            queue.seal();
            let id = state.next_batch_id;
            state.next_batch_id += 1;
            state.incomplete.insert(id);
            queue
                .batches
                .push_back(OpenBatch::new(id, Instant::now(), batch_size));
            queue.last_open = true;
            wake = true;
        }
        let open = queue.batches.back_mut().expect("an open batch");
        let (relative_offset, batch) = open.push(record, reserved);
        if open.is_full(batch_size) {
            queue.seal();
            wake = true;
        }
        let delivery = DeliveryFuture {
            batch,
            topic: Arc::clone(name),
            partition,
            relative_offset,
            timestamp: record.timestamp,
        };
        drop(guard);
        if wake {
            self.sender_wake.notify_one();
        }
        Ok(delivery)
    }

    /// Takes out the batches the sender can send now, oldest first per partition: sealed ones,
    /// and the open one once due (`linger` has passed since its first record, or a flush or
    /// close is under way). `offer` is the sender's decision per batch (leader, request slots,
    /// retries pending); an open batch is sealed only when it is taken, so while every slot is
    /// busy it keeps filling. Returns the batches taken and the next instant a lingering batch
    /// becomes due.
    pub(crate) fn take(
        &self,
        now: Instant,
        linger: Duration,
        mut offer: impl FnMut(Candidate<'_>) -> Offer,
    ) -> (Vec<PartitionBatch>, Option<Instant>) {
        let mut guard = self.lock();
        let state = &mut *guard;
        let force = state.closed || state.flushes > 0;
        let mut taken = Vec::new();
        let mut wake: Option<Instant> = None;
        for (topic, queues) in &mut state.topics {
            for (&partition, queue) in queues.partitions.iter_mut() {
                while let Some(front) = queue.batches.front() {
                    let is_open = queue.last_open && queue.batches.len() == 1;
                    if is_open && let Err(due) = open_batch_due(front.created(), now, linger, force)
                    {
                        wake = Some(wake.map_or(due, |w| w.min(due)));
                        break;
                    }
                    let candidate = Candidate {
                        topic,
                        partition,
                        bytes: front.size_in_bytes(),
                    };
                    if offer(candidate) == Offer::Leave {
                        break;
                    }
                    if is_open {
                        queue.seal();
                    }
                    let batch = queue.batches.pop_front().expect("front exists");
                    taken.push((Arc::clone(topic), partition, batch));
                }
            }
        }
        (taken, wake)
    }

    /// Removes the batches (sealed or open) whose delivery deadline has passed, to be failed;
    /// and returns the earliest deadline still ahead.
    pub(crate) fn expire(
        &self,
        now: Instant,
        delivery_timeout: Duration,
    ) -> (Vec<PartitionBatch>, Option<Instant>) {
        let mut guard = self.lock();
        let mut expired = Vec::new();
        let mut next: Option<Instant> = None;
        for (topic, queues) in &mut guard.topics {
            for (&partition, queue) in queues.partitions.iter_mut() {
                // Oldest first: the first batch still in time ends the partition's expiries.
                while let Some(front) = queue.batches.front() {
                    let deadline = front.deadline(delivery_timeout);
                    if deadline > now {
                        next = Some(next.map_or(deadline, |n| n.min(deadline)));
                        break;
                    }
                    if queue.batches.len() == 1 {
                        queue.seal();
                    }
                    let batch = queue.batches.pop_front().expect("front exists");
                    expired.push((Arc::clone(topic), partition, batch));
                }
            }
        }
        (expired, next)
    }

    /// Records that the batches `ids` are complete (acknowledged or failed for good).
    pub(crate) fn completed(&self, ids: impl IntoIterator<Item = u64>) {
        let mut state = self.lock();
        let mut any = false;
        for id in ids {
            any |= state.incomplete.remove(&id);
        }
        drop(state);
        if any {
            self.progress.notify_waiters();
        }
    }

    /// Sends every open batch now and waits until every batch opened before the call is
    /// complete (or the sender stopped).
    pub(crate) async fn flush(&self) {
        let upto = {
            let mut state = self.lock();
            state.flushes += 1;
            state.next_batch_id
        };
        self.sender_wake.notify_one();
        loop {
            let progress = self.progress.notified();
            tokio::pin!(progress);
            progress.as_mut().enable();
            {
                let state = self.lock();
                let oldest = state.incomplete.first().copied().unwrap_or(u64::MAX);
                if oldest >= upto || state.stopped {
                    break;
                }
            }
            progress.await;
        }
        self.lock().flushes -= 1;
    }

    /// Stops accepting records; everything accepted is sent at once.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.sender_wake.notify_one();
    }

    /// Whether the producer is closed and every accepted batch is complete: the sender may stop.
    pub(crate) fn finished(&self) -> bool {
        let state = self.lock();
        state.closed && state.incomplete.is_empty()
    }

    /// Called by the sender task when it stops: flushes waiting now return.
    pub(crate) fn sender_stopped(&self) {
        self.lock().stopped = true;
        self.progress.notify_waiters();
    }

    /// Resolves when the sender should look at the batches again.
    pub(crate) async fn wait_for_news(&self) {
        self.sender_wake.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::fake_broker::FakeBroker;

    fn record(size: usize) -> Record {
        Record {
            key: None,
            value: Some(Bytes::from(vec![b'x'; size])),
            timestamp: 1000,
            headers: Vec::new(),
        }
    }

    #[tokio::test]
    async fn batches_leave_in_order_and_an_open_one_only_when_due_and_taken() {
        let (address, broker) = FakeBroker::start().await;
        broker.create("t", 2);
        let client = Client::connect(&address).await.unwrap();
        let accumulator = Accumulator::new(1000, Partitioner::Default);
        let now = Instant::now();
        let linger = Duration::from_millis(5);
        // 8 records of ~110 bytes fill a 1000-byte batch: 20 records make 2 sealed + 1 open.
        let deliveries: Vec<DeliveryFuture> = (0..20)
            .map(|_| {
                accumulator
                    .append(&client, "t", Some(1), 2, &record(100), 10)
                    .unwrap()
            })
            .collect();
        let offsets: Vec<u32> = deliveries.iter().map(|d| d.relative_offset).collect();
        assert_eq!(offsets[..9], [0, 1, 2, 3, 4, 5, 6, 7, 0]);

        // The sender declines: nothing leaves, and the open batch's linger is reported.
        let (taken, due) = accumulator.take(now, linger, |_| Offer::Leave);
        assert!(taken.is_empty());
        assert_eq!(due, None, "a sealed batch in front hides the open one");
        // It takes one: the oldest.
        let mut offers = 0;
        let (taken, due) = accumulator.take(now, linger, |candidate| {
            assert_eq!((&**candidate.topic, candidate.partition), ("t", 1));
            offers += 1;
            if offers == 1 {
                Offer::Take
            } else {
                Offer::Leave
            }
        });
        assert_eq!(taken.iter().map(|(_, _, b)| b.id).collect::<Vec<_>>(), [0]);
        assert_eq!(due, None);
        // Everything it may: the second sealed batch; the open one is not due yet.
        let (taken, due) = accumulator.take(now, linger, |_| Offer::Take);
        assert_eq!(taken.iter().map(|(_, _, b)| b.id).collect::<Vec<_>>(), [1]);
        let due = due.expect("the open batch lingers");
        assert!(due >= now + linger && due <= Instant::now() + linger);
        // Once due, the open batch is sealed as it is taken; new records open a new batch.
        let (taken, due) = accumulator.take(due, linger, |_| Offer::Take);
        assert_eq!(
            taken
                .iter()
                .map(|(_, _, b)| (b.id, b.len()))
                .collect::<Vec<_>>(),
            [(2, 4)]
        );
        assert_eq!(due, None);
        let next = accumulator
            .append(&client, "t", Some(1), 2, &record(100), 10)
            .unwrap();
        assert_eq!(next.relative_offset, 0);

        // Expiry removes what is past delivery.timeout.ms; flush and close force the rest out.
        let (expired, next_deadline) =
            accumulator.expire(now + Duration::from_secs(1), Duration::from_secs(2));
        assert!(expired.is_empty());
        assert!(next_deadline.is_some_and(|at| at >= now + Duration::from_secs(2)));
        accumulator.close();
        let (taken, _) = accumulator.take(now, linger, |_| Offer::Take);
        assert_eq!(taken.len(), 1, "closing makes the open batch due at once");
        let error = accumulator
            .append(&client, "t", Some(1), 2, &record(1), 10)
            .unwrap_err();
        assert!(matches!(error, ProduceError::Closed));
        assert!(!accumulator.finished(), "4 batches are not complete");
        accumulator.completed([0, 1, 2, 3]);
        assert!(accumulator.finished());
    }
}
