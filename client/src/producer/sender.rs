//! The producer task: the one owner of every partition's batches, the partitioner's state, the
//! produce streams and the in-flight requests. `send` only enqueues [`Command`]s; the decisions
//! are the pure functions of `batch.rs` and `partitioner.rs`.
//!
//! ```text
//!  Producer::send ──Command::Append──▶ ┌──────────── producer task (this file) ─────────────┐
//!  Producer::flush ─Command::Flush───▶ │ partition → append to the open batch (accumulate)  │
//!  Producer::close ─Command::Close───▶ │ drain: close due batches, expire old ones, pick    │
//!                                      │   sendable heads, one request per broker          │──▶ BrokerStream
//!                                      │ answers: complete records / requeue for a retry    │◀── (ProduceStream,
//!                                      └────────────────────────────────────────────────────┘    one per broker)
//! ```
//!
//! The loop waits on three things: commands, answers to requests in flight (or their
//! `request.timeout.ms`), and the next instant something becomes due (a linger, a retry
//! backoff, a delivery deadline, a metadata refresh).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};
use tokio::time::Instant;
use tributary_proto::v1 as pb;
use tributary_record::Record;

use super::batch::{
    AfterFailure, ClosedBatch, OpenBatch, PartitionQueue, Reply, SendCheck, after_failure,
    check_send, open_batch_due,
};
use super::broker_stream::{BrokerStream, OPERATION};
use super::error::ProduceError;
use super::fast_hash::FastMap;
use super::partitioner::PartitionChooser;
use super::{ProduceAck, ProducerOptions};
use crate::response::partition_result;
use crate::{Client, ClientError, PartitionLeader};

/// Commands from the [`Producer`](super::Producer) handles.
#[derive(Debug)]
pub(super) enum Command {
    Append(Append),
    /// Answer once every record appended before this command is complete.
    Flush(oneshot::Sender<()>),
    /// Send everything, then stop; answer when done.
    Close(oneshot::Sender<()>),
}

/// One accepted record.
#[derive(Debug)]
pub(super) struct Append {
    pub(super) topic: String,
    pub(super) partition: Option<i32>,
    /// The topic's partition count when `send` looked (the partitioner's modulus).
    pub(super) partitions: i32,
    pub(super) record: Record,
    pub(super) permit: OwnedSemaphorePermit,
    pub(super) reply: Reply,
}

/// A topic's partitions that have had records.
#[derive(Debug)]
struct TopicQueues {
    name: Arc<str>,
    partitions: FastMap<i32, PartitionQueue>,
}

/// A produce request being assembled for one broker.
struct Draft {
    leader: PartitionLeader,
    batches: Vec<(Arc<str>, i32, ClosedBatch)>,
    bytes: usize,
}

/// A request sent and not answered yet.
struct InFlight {
    broker: i32,
    batches: Vec<(Arc<str>, i32, ClosedBatch)>,
}

/// The answer to a request: its id, the response or why none came, and whether the cause was
/// `request.timeout.ms` (the stream is then abandoned).
type Answer = (u64, Result<pb::ProduceResponse, Arc<ClientError>>, bool);

pub(super) struct Engine {
    client: Client,
    options: ProducerOptions,
    topics: FastMap<String, TopicQueues>,
    chooser: PartitionChooser,
    rng: StdRng,
    next_batch_id: u64,
    /// Ids of the batches not completed yet (open, ready or in flight).
    incomplete: BTreeSet<u64>,
    /// Flush waiters: done once no batch with an id below theirs is incomplete.
    flushes: Vec<(u64, oneshot::Sender<()>)>,
    closing: bool,
    close_waiters: Vec<oneshot::Sender<()>>,
    streams: HashMap<i32, BrokerStream>,
    broker_in_flight: HashMap<i32, usize>,
    requests: HashMap<u64, InFlight>,
    answers: FuturesUnordered<BoxFuture<'static, Answer>>,
    /// Topics with a batch waiting for a leader.
    metadata_needed: BTreeSet<String>,
    refresh: FuturesUnordered<BoxFuture<'static, ()>>,
    last_refresh: Option<Instant>,
}

impl Engine {
    pub(super) fn new(client: Client, options: ProducerOptions) -> Engine {
        Engine {
            client,
            options,
            topics: FastMap::default(),
            chooser: PartitionChooser::new(options.partitioner),
            rng: StdRng::from_rng(&mut rand::rng()),
            next_batch_id: 0,
            incomplete: BTreeSet::new(),
            flushes: Vec::new(),
            closing: false,
            close_waiters: Vec::new(),
            streams: HashMap::new(),
            broker_in_flight: HashMap::new(),
            requests: HashMap::new(),
            answers: FuturesUnordered::new(),
            metadata_needed: BTreeSet::new(),
            refresh: FuturesUnordered::new(),
            last_refresh: None,
        }
    }

    /// Runs until closed (or every handle is dropped) and every accepted record is complete.
    pub(super) async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut received = Vec::with_capacity(1024);
        let mut commands_open = true;
        // Whether something happened that a drain could act on. Records added to a batch that
        // is already open change nothing until a slot frees up or a timer fires, so under load
        // most command chunks skip the drain.
        let mut dirty = true;
        let mut wake = None;
        loop {
            if dirty {
                wake = self.drain(Instant::now());
                dirty = false;
            }
            if self.closing && self.incomplete.is_empty() && self.answers.is_empty() {
                break;
            }
            let sleep_until = wake.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                biased;
                Some((request_id, answer, timed_out)) = self.answers.next(), if !self.answers.is_empty() => {
                    self.on_answer(request_id, answer, timed_out, Instant::now());
                    dirty = true;
                }
                count = commands.recv_many(&mut received, 1024), if commands_open => {
                    if count == 0 {
                        // Every handle is gone: deliver what was accepted, then stop.
                        commands_open = false;
                        self.closing = true;
                        dirty = true;
                    }
                    let now = Instant::now();
                    for command in received.drain(..) {
                        dirty |= self.on_command(command, now);
                    }
                }
                Some(()) = self.refresh.next(), if !self.refresh.is_empty() => dirty = true,
                () = tokio::time::sleep_until(sleep_until), if wake.is_some() => dirty = true,
            }
        }
        for (_, stream) in self.streams.drain() {
            if let Some(reader) = stream.finish() {
                let _ = reader.await;
            }
        }
        for waiter in self.close_waiters.drain(..) {
            let _ = waiter.send(());
        }
    }

    /// Applies a command; says whether a drain may now have something to do.
    fn on_command(&mut self, command: Command, now: Instant) -> bool {
        match command {
            Command::Append(append) => self.append(append, now),
            Command::Flush(reply) => {
                let upto = self.next_batch_id;
                self.flushes.push((upto, reply));
                self.answer_flushes();
                true
            }
            Command::Close(reply) => {
                self.closing = true;
                self.close_waiters.push(reply);
                true
            }
        }
    }

    /// Puts one record into its partition's open batch (opening or closing batches as needed).
    /// Returns whether a batch was opened or closed.
    fn append(&mut self, append: Append, now: Instant) -> bool {
        let Append {
            topic,
            partition,
            partitions,
            record,
            permit,
            reply,
        } = append;
        let batch_size = self.options.batch_size;
        let compression = self.options.compression;
        let client = &self.client;
        let queues = self
            .topics
            .entry(topic)
            .or_insert_with_key(|name| TopicQueues {
                name: Arc::from(name.as_str()),
                partitions: FastMap::default(),
            });
        let choice = self.chooser.choose(
            &queues.name,
            partition,
            record.key.as_deref(),
            partitions,
            || client.available_partitions(&queues.name),
            &mut self.rng,
        );
        let mut partition = choice.partition;
        if choice.sticky
            && queues
                .partitions
                .get(&partition)
                .is_none_or(|queue| queue.needs_new_batch(&record, batch_size))
        {
            let available = client.available_partitions(&queues.name);
            partition = self.chooser.next_sticky(
                &queues.name,
                partition,
                partitions,
                &available,
                &mut self.rng,
            );
        }
        let queue = queues.partitions.entry(partition).or_default();
        let opens = queue.needs_new_batch(&record, batch_size);
        if opens {
            queue.close_open(compression);
        }
        let open = queue.open.get_or_insert_with(|| {
            let id = self.next_batch_id;
            self.next_batch_id += 1;
            self.incomplete.insert(id);
            OpenBatch::new(id, now, queue.next_sequence, batch_size)
        });
        open.push(&record, reply, permit);
        let full = open.is_full(batch_size);
        if full {
            queue.close_open(compression);
        }
        opens || full
    }

    /// Fails expired batches and sends what may be sent: the oldest ready batch of each
    /// partition, or its open batch once due (full batches are closed by `append`). An open
    /// batch is closed only when a request can take it at once, so while every slot to its
    /// leader is busy it keeps filling (with `linger` 0 too), as in Kafka. Returns when to look
    /// again if nothing else happens first.
    fn drain(&mut self, now: Instant) -> Option<Instant> {
        let mut wake: Option<Instant> = None;
        let mut soonest = |at: Instant| {
            wake = Some(wake.map_or(at, |current| current.min(at)));
        };
        let force = self.closing || !self.flushes.is_empty();
        let options = self.options;
        let compression = options.compression;
        let mut drafts: HashMap<i32, Draft> = HashMap::new();
        let mut expired: Vec<(Arc<str>, i32, ClosedBatch)> = Vec::new();
        let mut to_send: Vec<Draft> = Vec::new();
        for queues in self.topics.values_mut() {
            for (&partition, queue) in &mut queues.partitions {
                // Batches not in flight expire at their delivery deadline (an answer that is
                // on its way is always awaited, as in Kafka). The ready queue is in creation
                // order, so the oldest is in front.
                while let Some(front) = queue.ready.front() {
                    let deadline = front.deadline(options.delivery_timeout);
                    if deadline > now {
                        soonest(deadline);
                        break;
                    }
                    let batch = queue.ready.pop_front().expect("front exists");
                    expired.push((Arc::clone(&queues.name), partition, batch));
                }
                // An open batch that could not be sent (no leader) expires the same way.
                if let Some(open) = &queue.open {
                    let deadline = open.created() + options.delivery_timeout;
                    if deadline <= now && queue.ready.is_empty() {
                        queue.close_open(compression);
                        let batch = queue.ready.pop_front().expect("just closed");
                        expired.push((Arc::clone(&queues.name), partition, batch));
                    } else {
                        soonest(deadline);
                    }
                }
                let open_due = match &queue.open {
                    Some(open) => match open_batch_due(open, now, options.linger, force) {
                        Ok(()) => true,
                        Err(at) => {
                            soonest(at);
                            false
                        }
                    },
                    None => false,
                };
                if queue.ready.is_empty() && !open_due {
                    continue;
                }
                let Some(leader) = self.client.cached_leader(&queues.name, partition) else {
                    self.metadata_needed.insert(queues.name.to_string());
                    continue;
                };
                let broker = leader.broker_id();
                loop {
                    if queue.ready.is_empty() {
                        let due = queue.open.as_ref().is_some_and(|open| {
                            open_batch_due(open, now, options.linger, force).is_ok()
                        });
                        if !due || (queue.in_flight > 0 && queue.in_flight_broker != Some(broker)) {
                            break;
                        }
                        let open_bytes = queue.open.as_ref().map_or(0, |o| o.size_in_bytes());
                        if !has_slot(
                            &drafts,
                            &to_send,
                            &self.broker_in_flight,
                            &options,
                            broker,
                            &queues.name,
                            partition,
                            open_bytes,
                        ) {
                            break;
                        }
                        queue.close_open(compression);
                    }
                    match check_send(queue, broker, now) {
                        SendCheck::Go => {}
                        SendCheck::Until(at) => {
                            soonest(at);
                            break;
                        }
                        SendCheck::InFlight | SendCheck::Empty => break,
                    }
                    let head_bytes = queue.ready.front().map_or(0, |b| b.bytes.len());
                    if !has_slot(
                        &drafts,
                        &to_send,
                        &self.broker_in_flight,
                        &options,
                        broker,
                        &queues.name,
                        partition,
                        head_bytes,
                    ) {
                        break;
                    }
                    let joins = joins_draft(
                        drafts.get(&broker),
                        &options,
                        &queues.name,
                        partition,
                        head_bytes,
                    );
                    if !joins {
                        if let Some(full) = drafts.remove(&broker) {
                            to_send.push(full);
                        }
                        drafts.insert(
                            broker,
                            Draft {
                                leader: leader.clone(),
                                batches: Vec::new(),
                                bytes: 0,
                            },
                        );
                    }
                    let batch = queue.ready.pop_front().expect("checked by check_send");
                    let draft = drafts.get_mut(&broker).expect("inserted above");
                    draft.bytes += batch.bytes.len();
                    draft
                        .batches
                        .push((Arc::clone(&queues.name), partition, batch));
                    queue.in_flight += 1;
                    queue.in_flight_broker = Some(broker);
                }
            }
        }
        to_send.extend(drafts.into_values());
        for draft in to_send {
            self.send_request(draft);
        }
        for (topic, partition, batch) in expired {
            self.fail_expired(&topic, partition, batch);
        }
        self.answer_flushes();
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
            if let Some(queue) = self
                .topics
                .get_mut(&*topic)
                .and_then(|queues| queues.partitions.get_mut(&partition))
            {
                queue.in_flight = queue.in_flight.saturating_sub(1);
                if queue.in_flight == 0 {
                    queue.in_flight_broker = None;
                }
            }
            let outcome = match &answer {
                Ok(response) => partition_ack(response, &topic, partition).map_err(Arc::new),
                Err(error) => Err(Arc::clone(error)),
            };
            match outcome {
                Ok(ack) => self.complete(&topic, partition, batch, Ok(ack)),
                Err(error) => self.on_failure(&topic, partition, batch, error, now),
            }
        }
        self.answer_flushes();
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
        match after_failure(&error, now, deadline, self.options.retry_backoff) {
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
                match self
                    .topics
                    .get_mut(&**topic)
                    .and_then(|queues| queues.partitions.get_mut(&partition))
                {
                    Some(queue) => queue.requeue(batch),
                    None => self.complete(topic, partition, batch, Err(ProduceError::Closed)),
                }
            }
            AfterFailure::TimedOut => {
                let failure = ProduceError::DeliveryTimeout {
                    topic: topic.to_string(),
                    partition,
                    delivery_timeout: self.options.delivery_timeout,
                    attempts: batch.attempts,
                    last_error: Some(error),
                };
                self.complete(topic, partition, batch, Err(failure));
            }
            AfterFailure::Refused => {
                let failure = ProduceError::Refused {
                    topic: topic.to_string(),
                    partition,
                    source: error,
                };
                self.complete(topic, partition, batch, Err(failure));
            }
        }
    }

    fn fail_expired(&mut self, topic: &Arc<str>, partition: i32, batch: ClosedBatch) {
        let failure = ProduceError::DeliveryTimeout {
            topic: topic.to_string(),
            partition,
            delivery_timeout: self.options.delivery_timeout,
            attempts: batch.attempts,
            last_error: batch.last_error.clone(),
        };
        self.complete(topic, partition, batch, Err(failure));
    }

    fn complete(
        &mut self,
        topic: &Arc<str>,
        partition: i32,
        batch: ClosedBatch,
        outcome: Result<ProduceAck, ProduceError>,
    ) {
        self.incomplete.remove(&batch.id);
        batch.complete(topic, partition, outcome);
    }

    fn answer_flushes(&mut self) {
        if self.flushes.is_empty() {
            return;
        }
        let oldest = self.incomplete.first().copied().unwrap_or(u64::MAX);
        let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.flushes)
            .into_iter()
            .partition(|(upto, _)| oldest >= *upto);
        self.flushes = waiting;
        for (_, reply) in done {
            let _ = reply.send(());
        }
    }
}

/// Whether a batch of `bytes` for `topic`/`partition` can join the request being drafted for
/// `broker`: one batch per partition per request, at most `max.request.size` of batches (a
/// larger single batch still goes alone).
fn joins_draft(
    draft: Option<&Draft>,
    options: &ProducerOptions,
    topic: &str,
    partition: i32,
    bytes: usize,
) -> bool {
    draft.is_some_and(|draft| {
        draft.bytes + bytes <= options.max_request_size
            && !draft
                .batches
                .iter()
                .any(|(t, p, _)| *p == partition && &**t == topic)
    })
}

/// Whether a batch can go to `broker` in this drain: it joins the current draft, or a new
/// request fits under `max.in.flight.requests.per.connection`.
#[allow(clippy::too_many_arguments)]
fn has_slot(
    drafts: &HashMap<i32, Draft>,
    to_send: &[Draft],
    broker_in_flight: &HashMap<i32, usize>,
    options: &ProducerOptions,
    broker: i32,
    topic: &str,
    partition: i32,
    bytes: usize,
) -> bool {
    let drafted = drafts.get(&broker);
    if joins_draft(drafted, options, topic, partition, bytes) {
        return true;
    }
    let requests = broker_in_flight.get(&broker).copied().unwrap_or(0)
        + to_send
            .iter()
            .filter(|d| d.leader.broker_id() == broker)
            .count()
        + usize::from(drafted.is_some());
    requests < options.max_in_flight_requests_per_connection
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
