//! The sender task (Kafka's `Sender`): takes the batches that can be sent out of the
//! [`Accumulator`], encodes them, groups them into one request per broker, and owns everything
//! after that: the produce streams, the requests in flight, and failed batches waiting for a
//! retry. The decisions are the pure functions of `batch.rs`.
//!
//! ```text
//!  Accumulator ──take (sealed or due batches)──▶ ┌──────── sender task (this file) ────────┐
//!    ▲   │ wake: a batch opened or filled,       │ retries first, then fresh batches;       │──▶ BrokerStream
//!    │   └ flush, close                          │ one request per broker, pipelined        │◀── (ProduceStream,
//!    └──────────── completed(ids) ────────────── │ answers: complete batches / requeue      │    one per broker)
//!                                                └──────────────────────────────────────────┘
//! ```
//!
//! The loop waits on four things: news from the accumulator, answers to requests in flight (or
//! their `request.timeout.ms`), a metadata refresh, and the next instant something becomes due
//! (a linger, a retry backoff, a delivery deadline).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;
use tributary_proto::v1 as pb;

use super::accumulator::{Accumulator, Candidate, Offer};
use super::batch::{
    AfterFailure, BatchOutcome, ClosedBatch, PartitionFlight, SendCheck, after_failure,
    retry_unless_late,
};
use super::broker_stream::{BrokerStream, OPERATION};
use super::buffer::BufferPool;
use super::error::ProduceError;
use super::fast_hash::FastMap;
use super::idempotence::{Idempotence, SequenceFailure, init_producer_id, sequence_failure};
use super::{ProduceAck, ProducerOptions};
use crate::response::partition_result;
use crate::{Client, ClientError, PartitionLeader};

/// A produce request being assembled for one broker.
struct Draft {
    leader: PartitionLeader,
    /// The partitions placed in it (one batch each), in placement order.
    members: Vec<(Arc<str>, i32)>,
    /// Their batch bytes (before compression for fresh batches).
    bytes: usize,
    batches: Vec<(Arc<str>, i32, ClosedBatch)>,
}

/// The requests one drain sends: where each batch goes, decided before fresh batches are
/// encoded.
#[derive(Default)]
struct Plan {
    drafts: Vec<Draft>,
    /// Broker -> the draft still taking batches.
    current: HashMap<i32, usize>,
}

impl Plan {
    /// Finds a request for a batch of `bytes` of `topic`/`partition` led by `leader`: the
    /// broker's current draft (one batch per partition, at most `max.request.size` of batches;
    /// a larger single batch still goes alone), or a new one while the broker has fewer than
    /// `max.in.flight.requests.per.connection` requests. Returns the draft's index.
    fn place(
        &mut self,
        leader: &PartitionLeader,
        topic: &Arc<str>,
        partition: i32,
        bytes: usize,
        broker_in_flight: usize,
        options: &ProducerOptions,
    ) -> Option<usize> {
        let broker = leader.broker_id();
        let current = self.current.get(&broker).copied();
        let joins = current.is_some_and(|index| {
            let draft = &self.drafts[index];
            draft.bytes + bytes <= options.max_request_size
                && !draft
                    .members
                    .iter()
                    .any(|(t, p)| *p == partition && t == topic)
        });
        let index = if joins {
            current.expect("joins implies a draft")
        } else {
            let drafted = self
                .drafts
                .iter()
                .filter(|d| d.leader.broker_id() == broker)
                .count();
            if broker_in_flight + drafted >= options.max_in_flight_requests_per_connection {
                return None;
            }
            self.drafts.push(Draft {
                leader: leader.clone(),
                members: Vec::new(),
                bytes: 0,
                batches: Vec::new(),
            });
            self.current.insert(broker, self.drafts.len() - 1);
            self.drafts.len() - 1
        };
        let draft = &mut self.drafts[index];
        draft.bytes += bytes;
        draft.members.push((Arc::clone(topic), partition));
        Some(index)
    }
}

/// A request sent and not answered yet.
struct InFlight {
    broker: i32,
    batches: Vec<(Arc<str>, i32, ClosedBatch)>,
}

/// The answer to a request: its id, the response or why none came, and whether the cause was
/// `request.timeout.ms` (the stream is then abandoned).
type Answer = (u64, Result<pb::ProduceResponse, Arc<ClientError>>, bool);

pub(super) struct Sender {
    client: Client,
    options: ProducerOptions,
    accumulator: Arc<Accumulator>,
    buffer: Arc<BufferPool>,
    /// Per partition with requests in flight or retries pending.
    flights: FastMap<Arc<str>, FastMap<i32, PartitionFlight>>,
    streams: HashMap<i32, BrokerStream>,
    broker_in_flight: HashMap<i32, usize>,
    requests: HashMap<u64, InFlight>,
    answers: FuturesUnordered<BoxFuture<'static, Answer>>,
    /// Topics with a batch waiting for a leader.
    metadata_needed: BTreeSet<String>,
    refresh: FuturesUnordered<BoxFuture<'static, ()>>,
    last_refresh: Option<Instant>,
    /// With `enable.idempotence`: the producer id and sequences (see `idempotence.rs`).
    idempotence: Option<Idempotence>,
    /// The InitProducerId call in progress (at most one).
    producer_id_call: FuturesUnordered<BoxFuture<'static, Result<(i64, i16), ClientError>>>,
    /// Not before this instant after a failed InitProducerId.
    next_producer_id_call: Option<Instant>,
}

impl Sender {
    pub(super) fn new(
        client: Client,
        options: ProducerOptions,
        accumulator: Arc<Accumulator>,
        buffer: Arc<BufferPool>,
    ) -> Sender {
        Sender {
            client,
            options,
            accumulator,
            buffer,
            flights: FastMap::default(),
            streams: HashMap::new(),
            broker_in_flight: HashMap::new(),
            requests: HashMap::new(),
            answers: FuturesUnordered::new(),
            metadata_needed: BTreeSet::new(),
            refresh: FuturesUnordered::new(),
            last_refresh: None,
            idempotence: options.idempotence.then(Idempotence::default),
            producer_id_call: FuturesUnordered::new(),
            next_producer_id_call: None,
        }
    }

    /// Runs until the producer is closed (or every handle dropped) and every accepted record
    /// is complete; then ends the streams and sets `done`.
    pub(super) async fn run(mut self, done: watch::Sender<bool>) {
        loop {
            let wake = self.drain(Instant::now());
            if self.accumulator.finished() && self.answers.is_empty() {
                break;
            }
            let sleep_until = wake.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                biased;
                Some((request_id, answer, timed_out)) = self.answers.next(), if !self.answers.is_empty() => {
                    self.on_answer(request_id, answer, timed_out, Instant::now());
                }
                () = self.accumulator.wait_for_news() => {}
                Some(()) = self.refresh.next(), if !self.refresh.is_empty() => {}
                Some(answer) = self.producer_id_call.next(), if !self.producer_id_call.is_empty() => {
                    self.on_producer_id(answer, Instant::now());
                }
                () = tokio::time::sleep_until(sleep_until), if wake.is_some() => {}
            }
        }
        for (_, stream) in self.streams.drain() {
            if let Some(reader) = stream.finish() {
                let _ = reader.await;
            }
        }
        self.accumulator.sender_stopped();
        let _ = done.send(true);
    }

    /// Fails expired batches and sends what may be sent: each partition's oldest retry once
    /// its backoff is over (alone), else its batches from the accumulator while request slots
    /// to its leader are free. Returns when to look again if nothing else happens first.
    fn drain(&mut self, now: Instant) -> Option<Instant> {
        let mut wake: Option<Instant> = None;
        let mut soonest = |at: Instant| {
            wake = Some(wake.map_or(at, |current| current.min(at)));
        };
        let options = self.options;

        // Batches never sent whose delivery.timeout.ms passed in the accumulator.
        let (expired, next) = self.accumulator.expire(now, options.delivery_timeout);
        if let Some(at) = next {
            soonest(at);
        }
        if !expired.is_empty() {
            let ids: Vec<u64> = expired.iter().map(|(_, _, b)| b.id).collect();
            for (topic, partition, batch) in expired {
                batch.fail(
                    ProduceError::DeliveryTimeout {
                        topic: topic.to_string(),
                        partition,
                        delivery_timeout: options.delivery_timeout,
                        attempts: 0,
                        last_error: None,
                    },
                    &self.buffer,
                );
            }
            self.accumulator.completed(ids);
        }

        // An idempotent producer without a (valid) producer id sends nothing; it asks for one
        // once nothing is in flight, so no old batch can land after a new one.
        let blocked = self
            .idempotence
            .as_ref()
            .is_some_and(Idempotence::needs_producer_id);
        if blocked && self.requests.is_empty() && self.producer_id_call.is_empty() {
            match self.next_producer_id_call {
                Some(at) if at > now => soonest(at),
                _ => {
                    let client = self.client.clone();
                    self.producer_id_call
                        .push(Box::pin(async move { init_producer_id(&client).await }));
                }
            }
        }

        let mut plan = Plan::default();
        let mut timed_out: Vec<(Arc<str>, i32, ClosedBatch)> = Vec::new();
        // Retries first: a partition's retry goes alone, before its later batches.
        for (topic, partitions) in &mut self.flights {
            for (&partition, flight) in partitions.iter_mut() {
                while let Some(front) = flight.retries.front()
                    && front.deadline(options.delivery_timeout) <= now
                {
                    let batch = flight.retries.pop_front().expect("front exists");
                    timed_out.push((Arc::clone(topic), partition, batch));
                }
                if let Some(front) = flight.retries.front() {
                    soonest(front.deadline(options.delivery_timeout));
                }
                if blocked {
                    continue;
                }
                match flight.check_retry(now) {
                    SendCheck::Go => {}
                    SendCheck::Until(at) => {
                        soonest(at);
                        continue;
                    }
                    SendCheck::InFlight | SendCheck::Empty => continue,
                }
                let Some(leader) = self.client.cached_leader(topic, partition) else {
                    self.metadata_needed.insert(topic.to_string());
                    continue;
                };
                let broker = leader.broker_id();
                let bytes = flight.retries.front().map_or(0, |b| b.bytes.len());
                let in_flight = self.broker_in_flight.get(&broker).copied().unwrap_or(0);
                let Some(index) = plan.place(&leader, topic, partition, bytes, in_flight, &options)
                else {
                    continue;
                };
                let batch = flight.retries.pop_front().expect("checked by check_retry");
                plan.drafts[index]
                    .batches
                    .push((Arc::clone(topic), partition, batch));
                flight.in_flight += 1;
                flight.in_flight_broker = Some(broker);
            }
        }

        // Then fresh batches, taken from the accumulator while they can go at once.
        let mut placed: Vec<usize> = Vec::new();
        let accumulator = Arc::clone(&self.accumulator);
        let (taken, due) = accumulator.take(now, options.linger, |candidate: Candidate<'_>| {
            if blocked {
                return Offer::Leave;
            }
            let Candidate {
                topic,
                partition,
                bytes,
            } = candidate;
            let Some(leader) = self.client.cached_leader(topic, partition) else {
                self.metadata_needed.insert(topic.to_string());
                return Offer::Leave;
            };
            let broker = leader.broker_id();
            if let Some(flight) = self.flights.get(&**topic).and_then(|f| f.get(&partition))
                && !flight.may_send_fresh(broker)
            {
                return Offer::Leave;
            }
            let in_flight = self.broker_in_flight.get(&broker).copied().unwrap_or(0);
            match plan.place(&leader, topic, partition, bytes, in_flight, &options) {
                Some(index) => {
                    placed.push(index);
                    let flight = flight_of(&mut self.flights, topic, partition);
                    flight.in_flight += 1;
                    flight.in_flight_broker = Some(broker);
                    Offer::Take
                }
                None => Offer::Leave,
            }
        });
        if let Some(at) = due {
            soonest(at);
        }
        // Encoding (and compressing) happens here, outside the accumulator's lock.
        for ((topic, partition, batch), index) in taken.into_iter().zip(placed) {
            let stamp = self
                .idempotence
                .as_mut()
                .map(|idempotence| idempotence.stamp(&topic, partition, batch.len()));
            let closed = batch.close(options.compression, stamp);
            plan.drafts[index].batches.push((topic, partition, closed));
        }
        for draft in plan.drafts {
            self.send_request(draft);
        }
        if !timed_out.is_empty()
            && let Some(idempotence) = &mut self.idempotence
        {
            idempotence.request_reset();
        }
        for (topic, partition, batch) in timed_out {
            let failure = ProduceError::DeliveryTimeout {
                topic: topic.to_string(),
                partition,
                delivery_timeout: options.delivery_timeout,
                attempts: batch.attempts,
                last_error: batch.last_error.clone(),
            };
            self.complete(batch, Err(failure));
        }
        if !self.metadata_needed.is_empty() {
            let next_refresh = self
                .last_refresh
                .map_or(now, |last| last + options.retry_backoff);
            if self.refresh.is_empty() && next_refresh <= now {
                self.start_refresh(now);
            } else if self.refresh.is_empty() {
                soonest(next_refresh);
            }
        }
        wake
    }

    fn start_refresh(&mut self, now: Instant) {
        let topics: Vec<String> = std::mem::take(&mut self.metadata_needed)
            .into_iter()
            .collect();
        self.last_refresh = Some(now);
        let client = self.client.clone();
        self.refresh.push(Box::pin(async move {
            let names: Vec<&str> = topics.iter().map(String::as_str).collect();
            if let Err(error) = client.refresh_metadata(&names).await {
                tracing::debug!(%error, ?topics, "producer metadata refresh failed");
            }
        }));
    }

    fn send_request(&mut self, draft: Draft) {
        let broker = draft.leader.broker_id();
        let mut topics: Vec<pb::TopicProduceData> = Vec::new();
        for (topic, partition, batch) in &draft.batches {
            let data = pb::PartitionProduceData {
                partition: *partition,
                batches: batch.bytes.clone(),
                records: Vec::new(),
            };
            match topics.iter_mut().find(|t| t.topic == **topic) {
                Some(existing) => existing.partitions.push(data),
                None => topics.push(pb::TopicProduceData {
                    topic: topic.to_string(),
                    partitions: vec![data],
                }),
            }
        }
        let request_id = self.client.next_request_id();
        let request = pb::ProduceRequest {
            request_id,
            acks: self.options.acks.to_wire(),
            timeout_ms: self.options.request_timeout.as_millis() as i32,
            topics,
        };
        if !self.streams.get(&broker).is_some_and(BrokerStream::is_open) {
            self.streams
                .insert(broker, BrokerStream::open(draft.leader.broker_service()));
        }
        let (first_topic, first_partition) = draft
            .batches
            .first()
            .map(|(t, p, _)| (t.to_string(), *p))
            .unwrap_or_default();
        let (reply, answer) = oneshot::channel();
        let sent = self.streams[&broker].send(request, &first_topic, first_partition, reply);
        let mut batches = draft.batches;
        for (_, _, batch) in &mut batches {
            batch.attempts += 1;
        }
        self.requests
            .insert(request_id, InFlight { broker, batches });
        *self.broker_in_flight.entry(broker).or_default() += 1;
        let timeout = self.options.request_timeout;
        let answer: BoxFuture<'static, Answer> = match sent {
            Err(error) => {
                let error = Arc::new(error);
                Box::pin(async move { (request_id, Err(error), false) })
            }
            Ok(()) => Box::pin(async move {
                match tokio::time::timeout(timeout, answer).await {
                    Ok(Ok(result)) => (request_id, result.map_err(Arc::new), false),
                    Ok(Err(_dropped)) => (
                        request_id,
                        Err(Arc::new(ClientError::StreamClosed {
                            operation: OPERATION,
                        })),
                        false,
                    ),
                    Err(_elapsed) => (
                        request_id,
                        Err(Arc::new(ClientError::Rpc {
                            operation: OPERATION,
                            source: tonic::Status::deadline_exceeded(format!(
                                "no answer within request.timeout.ms ({timeout:?})"
                            )),
                        })),
                        true,
                    ),
                }
            }),
        };
        self.answers.push(answer);
    }

    fn on_answer(
        &mut self,
        request_id: u64,
        answer: Result<pb::ProduceResponse, Arc<ClientError>>,
        timed_out: bool,
        now: Instant,
    ) {
        let Some(request) = self.requests.remove(&request_id) else {
            return;
        };
        if let Some(count) = self.broker_in_flight.get_mut(&request.broker) {
            *count = count.saturating_sub(1);
        }
        if timed_out && let Some(stream) = self.streams.remove(&request.broker) {
            // Answers on this stream come in order, so every request behind the late one is
            // stuck too: fail them all now (they are retried in order on a fresh stream).
            stream.abort();
        }
        for (topic, partition, batch) in request.batches {
            let flight = flight_of(&mut self.flights, &topic, partition);
            flight.in_flight = flight.in_flight.saturating_sub(1);
            if flight.in_flight == 0 {
                flight.in_flight_broker = None;
            }
            let outcome = match &answer {
                Ok(response) => partition_ack(response, &topic, partition).map_err(Arc::new),
                Err(error) => Err(Arc::clone(error)),
            };
            match outcome {
                Ok(ack) => self.complete(batch, Ok(ack)),
                Err(error) => self.on_failure(&topic, partition, batch, error, now),
            }
        }
    }

    fn on_failure(
        &mut self,
        topic: &Arc<str>,
        partition: i32,
        mut batch: ClosedBatch,
        error: Arc<ClientError>,
        now: Instant,
    ) {
        let deadline = batch.deadline(self.options.delivery_timeout);
        let backoff = self.options.retry_backoff;
        let decision = match &mut self.idempotence {
            None => after_failure(&error, now, deadline, backoff),
            Some(idempotence) => {
                let flight = flight_of(&mut self.flights, topic, partition);
                let earlier_pending = flight.retries.front().is_some_and(|f| f.id < batch.id);
                match sequence_failure(&error, earlier_pending) {
                    SequenceFailure::Usual => after_failure(&error, now, deadline, backoff),
                    SequenceFailure::RetryInOrder => {
                        retry_unless_late(now, deadline, backoff, false)
                    }
                    SequenceFailure::RetryAfterReset => {
                        idempotence.request_reset();
                        retry_unless_late(now, deadline, backoff, false)
                    }
                }
            }
        };
        if !matches!(decision, AfterFailure::Retry { .. })
            && let Some(idempotence) = &mut self.idempotence
        {
            // The leader may or may not have this batch: its sequence state is unknown now.
            idempotence.request_reset();
        }
        match decision {
            AfterFailure::Retry {
                at,
                refresh_metadata,
            } => {
                tracing::debug!(
                    %topic,
                    partition,
                    base_sequence = batch.base_sequence,
                    records = batch.record_count,
                    attempts = batch.attempts,
                    %error,
                    "retrying a produce batch"
                );
                if refresh_metadata {
                    self.client.forget_leaders(topic);
                    self.metadata_needed.insert(topic.to_string());
                }
                batch.retry_at = Some(at);
                batch.last_error = Some(error);
                flight_of(&mut self.flights, topic, partition).requeue(batch);
            }
            AfterFailure::TimedOut => {
                let failure = ProduceError::DeliveryTimeout {
                    topic: topic.to_string(),
                    partition,
                    delivery_timeout: self.options.delivery_timeout,
                    attempts: batch.attempts,
                    last_error: Some(error),
                };
                self.complete(batch, Err(failure));
            }
            AfterFailure::Refused => {
                let failure = ProduceError::Refused {
                    topic: topic.to_string(),
                    partition,
                    source: error,
                };
                self.complete(batch, Err(failure));
            }
        }
    }

    /// The answer to InitProducerId: install the id and stamp the batches waiting for a retry
    /// again, in each partition's order; or try again after `retry.backoff.ms`.
    fn on_producer_id(&mut self, answer: Result<(i64, i16), ClientError>, now: Instant) {
        let Some(idempotence) = &mut self.idempotence else {
            return;
        };
        match answer {
            Ok((producer_id, epoch)) => {
                tracing::debug!(producer_id, epoch, "idempotent producer id installed");
                idempotence.install(producer_id, epoch);
                self.next_producer_id_call = None;
                for (topic, partitions) in &mut self.flights {
                    for (&partition, flight) in partitions.iter_mut() {
                        for batch in flight.retries.iter_mut() {
                            let stamp = idempotence.stamp(topic, partition, batch.record_count);
                            batch.restamp(stamp);
                        }
                    }
                }
            }
            Err(error) => {
                tracing::warn!(%error, "could not get a producer id; retrying");
                self.next_producer_id_call = Some(now + self.options.retry_backoff);
            }
        }
    }

    fn complete(&mut self, batch: ClosedBatch, outcome: BatchOutcome) {
        let id = batch.id;
        batch.complete(outcome, &self.buffer);
        self.accumulator.completed([id]);
    }
}

/// The sender's state of `topic`/`partition`, created on first use.
fn flight_of<'a>(
    flights: &'a mut FastMap<Arc<str>, FastMap<i32, PartitionFlight>>,
    topic: &Arc<str>,
    partition: i32,
) -> &'a mut PartitionFlight {
    if !flights.contains_key(&**topic) {
        flights.insert(Arc::clone(topic), FastMap::default());
    }
    flights
        .get_mut(&**topic)
        .expect("inserted above")
        .entry(partition)
        .or_default()
}

/// The acknowledgement of `topic`/`partition` in a response that may cover several partitions.
fn partition_ack(
    response: &pb::ProduceResponse,
    topic: &str,
    partition: i32,
) -> Result<ProduceAck, ClientError> {
    let result = partition_result(
        response
            .topics
            .iter()
            .filter(|t| t.topic == topic)
            .flat_map(|t| t.partitions.iter().filter(|p| p.partition == partition))
            .cloned(),
        OPERATION,
        topic,
        partition,
    )?;
    Ok(ProduceAck {
        base_offset: result.base_offset,
        last_offset: result.last_offset,
        log_append_time: (result.log_append_time_ms >= 0).then_some(result.log_append_time_ms),
    })
}
