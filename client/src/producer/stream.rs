//! The pipelined producer over the bidirectional `ProduceStream` RPC.
//!
//! ```text
//!  send_batch ──lock──▶ pending.push_back(id, reply) ──▶ request channel ──▶ ProduceStream
//!                                                                               │
//!  reply futures ◀── pending.pop_front() matches request_id ◀── reader task ◀───┘
//! ```
//!
//! The broker answers a stream's requests in order, so the oldest pending request owns the
//! next response. Registering the request and queueing it happen under one short lock, so
//! the pending queue and the wire order always agree even when clones of the producer send
//! from several tasks.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tributary_proto::v1 as pb;
use tributary_record::Record;

use super::{Acks, ProduceAck, ack_from_response, build_batch, produce_request};
use crate::{Client, ClientError};

const OPERATION: &str = "ProduceStream";

/// Settings of a [`Producer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerOptions {
    /// Replicas that must have each batch before it is acknowledged.
    pub acks: Acks,
    /// How long the broker may wait for `acks=all` replication; 0 = the broker default (30 s).
    pub timeout_ms: i32,
}

impl Default for ProducerOptions {
    fn default() -> Self {
        ProducerOptions {
            acks: Acks::Leader,
            timeout_ms: 0,
        }
    }
}

type Reply = oneshot::Sender<Result<ProduceAck, ClientError>>;

#[derive(Debug)]
struct Pending {
    request_id: u64,
    topic: String,
    partition: i32,
    reply: Reply,
}

#[derive(Debug)]
struct State {
    /// `None` once the stream has ended or failed; nothing more can be sent.
    requests: Option<mpsc::UnboundedSender<pb::ProduceRequest>>,
    /// Requests sent and not yet answered, oldest first.
    /// Invariant: in the order their requests were queued on `requests`.
    pending: VecDeque<Pending>,
    /// Why the stream ended, if it failed with a status.
    failure: Option<tonic::Status>,
}

impl State {
    fn closed_error(&self) -> ClientError {
        match &self.failure {
            Some(status) => ClientError::Rpc {
                operation: OPERATION,
                source: status.clone(),
            },
            None => ClientError::StreamClosed {
                operation: OPERATION,
            },
        }
    }

    /// Stops accepting requests and fails every pending one.
    fn close(&mut self, failure: Option<tonic::Status>) {
        self.requests = None;
        if self.failure.is_none() {
            self.failure = failure;
        }
        for pending in self.pending.drain(..) {
            let error = match &self.failure {
                Some(status) => ClientError::Rpc {
                    operation: OPERATION,
                    source: status.clone(),
                },
                None => ClientError::StreamClosed {
                    operation: OPERATION,
                },
            };
            let _ = pending.reply.send(Err(error));
        }
    }
}

/// A pipelined producer: many batches in flight on one `ProduceStream`, acknowledged in
/// order. Cheap to clone; clones share the stream.
///
/// [`Producer::send_batch`] queues the request at once and returns a future for its
/// acknowledgement, so a caller keeps N requests in flight by holding N futures (for example in
/// a `FuturesOrdered`). The producer itself does not limit the number in flight: the caller
/// bounds it, which also bounds the memory held by queued batches.
#[derive(Debug, Clone)]
pub struct Producer {
    handle: Arc<Handle>,
    client: Client,
    options: ProducerOptions,
    reader: Arc<tokio::task::JoinHandle<()>>,
}

impl Producer {
    /// Opens a produce stream on `client`'s connection. The stream is opened in the
    /// background: a failure to open it fails the first sends.
    pub fn new(client: &Client, options: ProducerOptions) -> Producer {
        let (requests, receiver) = mpsc::unbounded_channel();
        let state = Arc::new(Mutex::new(State {
            requests: Some(requests),
            pending: VecDeque::new(),
            failure: None,
        }));
        let reader = tokio::spawn(read_responses(client.clone(), receiver, Arc::clone(&state)));
        Producer {
            handle: Arc::new(Handle { state }),
            client: client.clone(),
            options,
            reader: Arc::new(reader),
        }
    }

    /// The options this producer was created with.
    pub fn options(&self) -> ProducerOptions {
        self.options
    }

    /// Requests sent and not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        lock(&self.handle.state).pending.len()
    }

    /// Queues one or more complete, concatenated v2 batches for `topic`/`partition` and returns
    /// a future for the acknowledgement. The request is on its way before the future is
    /// polled; acknowledgements arrive in send order.
    pub fn send_batch(
        &self,
        topic: &str,
        partition: i32,
        batch: Bytes,
    ) -> impl Future<Output = Result<ProduceAck, ClientError>> + Send + 'static {
        let (reply, acknowledged) = oneshot::channel();
        let queued = self.enqueue(topic, partition, batch, reply);
        async move {
            queued?;
            acknowledged.await.unwrap_or(Err(ClientError::StreamClosed {
                operation: OPERATION,
            }))
        }
    }

    /// Builds one batch from `records` and sends it like [`Producer::send_batch`].
    pub fn send_records(
        &self,
        topic: &str,
        partition: i32,
        records: &[Record],
    ) -> impl Future<Output = Result<ProduceAck, ClientError>> + Send + 'static {
        self.send_batch(topic, partition, build_batch(records))
    }

    /// Stops sending (for every clone), and, if this is the last clone, waits for every
    /// outstanding acknowledgement and for the stream to end.
    pub async fn close(self) {
        let Producer { handle, reader, .. } = self;
        lock(&handle.state).requests = None;
        drop(handle);
        if let Ok(reader) = Arc::try_unwrap(reader) {
            let _ = reader.await;
        }
    }

    fn enqueue(
        &self,
        topic: &str,
        partition: i32,
        batch: Bytes,
        reply: Reply,
    ) -> Result<(), ClientError> {
        let request_id = self.client.next_request_id();
        let data = pb::PartitionProduceData {
            partition,
            batches: batch,
            records: Vec::new(),
        };
        let request = produce_request(
            request_id,
            self.options.acks,
            self.options.timeout_ms,
            topic,
            data,
        );
        let mut state = lock(&self.handle.state);
        let Some(requests) = &state.requests else {
            return Err(state.closed_error());
        };
        if requests.send(request).is_err() {
            return Err(state.closed_error());
        }
        state.pending.push_back(Pending {
            request_id,
            topic: topic.to_owned(),
            partition,
            reply,
        });
        Ok(())
    }
}

/// Shared by the clones of one producer (the reader task holds only the state): when the last
/// clone goes, the request stream is closed, so the broker ends the response stream and the
/// reader task finishes after the last acknowledgement.
#[derive(Debug)]
struct Handle {
    state: Arc<Mutex<State>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        lock(&self.state).requests = None;
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    // A panic while holding this short lock cannot leave the queue half-updated in a way that
    // matters more than the panic itself; keep serving.
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn read_responses(
    client: Client,
    receiver: mpsc::UnboundedReceiver<pb::ProduceRequest>,
    state: Arc<Mutex<State>>,
) {
    let mut responses = match client
        .broker_service()
        .produce_stream(UnboundedReceiverStream::new(receiver))
        .await
    {
        Ok(response) => response.into_inner(),
        Err(status) => {
            lock(&state).close(Some(status));
            return;
        }
    };
    loop {
        match responses.message().await {
            Ok(Some(response)) => {
                let mut guard = lock(&state);
                let Some(pending) = guard.pending.pop_front() else {
                    tracing::warn!(
                        request_id = response.request_id,
                        "produce response without a request"
                    );
                    guard.close(None);
                    return;
                };
                if response.request_id != pending.request_id {
                    let _ = pending.reply.send(Err(ClientError::MalformedResponse {
                        operation: OPERATION,
                        topic: pending.topic.clone(),
                        partition: Some(pending.partition),
                        reason: format!(
                            "response for request {} arrived when {} was expected",
                            response.request_id, pending.request_id
                        ),
                    }));
                    guard.close(None);
                    return;
                }
                drop(guard);
                let _ = pending.reply.send(ack_from_response(
                    response,
                    &pending.topic,
                    pending.partition,
                ));
            }
            Ok(None) => {
                lock(&state).close(None);
                return;
            }
            Err(status) => {
                lock(&state).close(Some(status));
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::stream::{FuturesOrdered, StreamExt};

    use super::*;
    use crate::fake_broker::FakeBroker;

    fn record(value: &str) -> Record {
        Record {
            key: None,
            value: Some(Bytes::copy_from_slice(value.as_bytes())),
            timestamp: 5,
            headers: vec![],
        }
    }

    #[tokio::test]
    async fn pipelined_acks_arrive_in_order() {
        let (address, broker) = FakeBroker::start().await;
        broker.create("t", 2);
        let client = Client::connect(&address).await.unwrap();
        let producer = Producer::new(&client, ProducerOptions::default());
        let mut in_flight = FuturesOrdered::new();
        for i in 0..50 {
            let records = [record(&format!("a{i}")), record(&format!("b{i}"))];
            in_flight.push_back(producer.send_records("t", i % 2, &records));
        }
        let mut acks = Vec::new();
        while let Some(ack) = in_flight.next().await {
            acks.push(ack.unwrap());
        }
        for (i, ack) in acks.iter().enumerate() {
            let expected_base = (i as i64 / 2) * 2;
            assert_eq!(
                (ack.base_offset, ack.last_offset),
                (expected_base, expected_base + 1),
                "request {i}"
            );
        }
        assert_eq!(producer.in_flight(), 0);
        producer.close().await;
        assert_eq!(broker.state.lock().unwrap().produce_requests, 50);
    }

    #[tokio::test]
    async fn broker_errors_fail_only_their_request() {
        let (address, broker) = FakeBroker::start().await;
        broker.create("t", 1);
        let client = Client::connect(&address).await.unwrap();
        let producer = Producer::new(&client, ProducerOptions::default());
        let bad = producer.send_records("missing", 0, &[record("x")]);
        let good = producer.send_records("t", 0, &[record("y")]);
        let error = bad.await.unwrap_err();
        assert_eq!(
            error.error_code(),
            Some(crate::ErrorCode::UnknownTopicOrPartition)
        );
        assert_eq!(good.await.unwrap().base_offset, 0);
    }

    #[tokio::test]
    async fn dropping_the_producer_still_delivers_acks_and_ends_the_reader() {
        let (address, broker) = FakeBroker::start().await;
        broker.create("t", 1);
        let client = Client::connect(&address).await.unwrap();
        let producer = Producer::new(&client, ProducerOptions::default());
        let reader = Arc::clone(&producer.reader);
        let acknowledged = producer.send_records("t", 0, &[record("x")]);
        drop(producer);
        assert_eq!(acknowledged.await.unwrap().base_offset, 0);
        tokio::time::timeout(std::time::Duration::from_secs(5), async {
            while !reader.is_finished() {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the reader task ends once the producer is gone");
    }

    #[tokio::test]
    async fn a_dead_connection_fails_sends() {
        let (address, _broker) = FakeBroker::start().await;
        let client = Client::connect(&address).await.unwrap();
        let producer = Producer::new(&client, ProducerOptions::default());
        producer.clone().close().await;
        let error = producer
            .send_records("t", 0, &[record("x")])
            .await
            .unwrap_err();
        assert!(matches!(error, ClientError::StreamClosed { .. }), "{error}");
    }
}
