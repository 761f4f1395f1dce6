//! The [`BatchSender`]: pre-built batches pipelined on one `ProduceStream` per partition leader,
//! requests routed by the client's metadata and re-sent to the new leader when one moves. The
//! lower-level alternative to the record-level [`Producer`](super::Producer), for callers that build
//! their own batches (benchmarks, tools).
//!
//! ```text
//!  send_batch(topic, partition) ──▶ leader cached? ──yes──▶ that broker's BrokerStream (queued now)
//!                                         │ no                         │
//!                                         ▼                            ▼ ack, or an error
//!                                the returned future looks the    NOT_LEADER_OR_FOLLOWER, a lost
//!                                leader up, then queues            connection, ...: the future
//!                                                                  refreshes metadata and re-sends
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use tokio::sync::oneshot;
use tributary_proto::v1 as pb;
use tributary_record::{Compression, Record};

use super::broker_stream::{BrokerStream, OPERATION};
use super::{Acks, ProduceAck, ack_from_response, build_batch, produce_request};
use crate::{Client, ClientError, PartitionLeader};

/// Settings of a [`BatchSender`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSenderOptions {
    /// Replicas that must have each batch before it is acknowledged.
    pub acks: Acks,
    /// How long the broker may wait for `acks=all` replication; 0 = the broker default (30 s).
    pub timeout_ms: i32,
    /// Codec for the batches [`BatchSender::send_records`] builds (default none). Batches given
    /// to [`BatchSender::send_batch`] are sent as they are.
    pub compression: Compression,
}

impl Default for BatchSenderOptions {
    fn default() -> Self {
        BatchSenderOptions {
            acks: Acks::Leader,
            timeout_ms: 0,
            compression: Compression::None,
        }
    }
}

/// A pipelined sender of pre-built batches: many in flight on one `ProduceStream` per partition
/// leader. Most applications want the record-level [`Producer`](super::Producer), which batches,
/// partitions, bounds memory and orders retries by itself.
/// Cheap to clone; clones share the streams.
///
/// [`BatchSender::send_batch`] returns a future for the batch's acknowledgement; a caller keeps N
/// requests in flight by holding N futures (for example in a `FuturesOrdered`). The producer
/// itself does not limit the number in flight: the caller bounds it, which also bounds the
/// memory held by queued batches.
///
/// Ordering: when the client already knows the partition's leader, the request is queued on
/// that leader's stream before `send_batch` returns, and a stream's requests are appended and
/// acknowledged in send order. Otherwise the request leaves when the future is first polled,
/// after a metadata lookup; call [`Client::leader_for`] (or [`Client::refresh_metadata`]) first
/// to keep the order from the first batch on. A batch refused because the leader moved
/// (`NOT_LEADER_OR_FOLLOWER`, a lost connection, ...) is re-sent to the new leader for up to
/// [`Client::retry_timeout`]; such a retry may overtake later batches of the same partition,
/// and one re-sent after a lost connection may have been written already.
#[derive(Debug, Clone)]
pub struct BatchSender {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: Client,
    options: BatchSenderOptions,
    streams: Mutex<Streams>,
}

#[derive(Debug, Default)]
struct Streams {
    /// Set by [`BatchSender::close`]; nothing more is sent, retries included.
    closed: bool,
    /// Broker id -> the stream to it. A stream that ended is replaced on the next send.
    by_broker: HashMap<i32, BrokerStream>,
}

impl BatchSender {
    /// A producer sending through `client`'s connections. Streams are opened on first use,
    /// one per leader.
    pub fn new(client: &Client, options: BatchSenderOptions) -> BatchSender {
        BatchSender {
            inner: Arc::new(Inner {
                client: client.clone(),
                options,
                streams: Mutex::new(Streams::default()),
            }),
        }
    }

    /// The options this producer was created with.
    pub fn options(&self) -> BatchSenderOptions {
        self.inner.options
    }

    /// Requests sent and not yet acknowledged, over all streams.
    pub fn in_flight(&self) -> usize {
        self.inner
            .lock()
            .by_broker
            .values()
            .map(BrokerStream::in_flight)
            .sum()
    }

    /// Sends one or more complete, concatenated v2 batches to `topic`/`partition`'s leader and
    /// returns a future for the acknowledgement (see the type's docs for ordering and
    /// retries).
    pub fn send_batch(
        &self,
        topic: &str,
        partition: i32,
        batch: Bytes,
    ) -> impl Future<Output = Result<ProduceAck, ClientError>> + Send + 'static + use<> {
        let inner = Arc::clone(&self.inner);
        let topic = topic.to_owned();
        let queued = inner
            .client
            .cached_leader(&topic, partition)
            .map(|leader| inner.enqueue(&leader, &topic, partition, batch.clone()));
        async move { inner.deliver(&topic, partition, batch, queued).await }
    }

    /// Builds one batch from `records` (compressed with the options' codec) and sends it like
    /// [`BatchSender::send_batch`].
    pub fn send_records(
        &self,
        topic: &str,
        partition: i32,
        records: &[Record],
    ) -> impl Future<Output = Result<ProduceAck, ClientError>> + Send + 'static + use<> {
        self.send_batch(
            topic,
            partition,
            build_batch(records, self.inner.options.compression),
        )
    }

    /// Stops sending (for every clone; sends and retries after this fail with
    /// [`ClientError::StreamClosed`]) and waits until every request already on a stream is
    /// acknowledged and the streams have ended.
    pub async fn close(self) {
        let streams: Vec<BrokerStream> = {
            let mut streams = self.inner.lock();
            streams.closed = true;
            streams
                .by_broker
                .drain()
                .map(|(_, stream)| stream)
                .collect()
        };
        for stream in streams {
            if let Some(reader) = stream.finish() {
                let _ = reader.await;
            }
        }
    }
}

type Acknowledgement = oneshot::Receiver<Result<pb::ProduceResponse, ClientError>>;

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Streams> {
        // The map is consistent after every statement; keep serving after a panic elsewhere.
        self.streams.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues the batch on `leader`'s stream, opening one if there is none (or it ended).
    fn enqueue(
        &self,
        leader: &PartitionLeader,
        topic: &str,
        partition: i32,
        batch: Bytes,
    ) -> Result<Acknowledgement, ClientError> {
        let data = pb::PartitionProduceData {
            partition,
            batches: batch,
            records: Vec::new(),
        };
        let request = produce_request(
            self.client.next_request_id(),
            self.options.acks,
            self.options.timeout_ms,
            topic,
            data,
        );
        let mut streams = self.lock();
        if streams.closed {
            return Err(ClientError::StreamClosed {
                operation: OPERATION,
            });
        }
        let broker_id = leader.broker_id();
        if !streams
            .by_broker
            .get(&broker_id)
            .is_some_and(BrokerStream::is_open)
        {
            let stream = BrokerStream::open(leader.broker_service());
            streams.by_broker.insert(broker_id, stream);
        }
        let (reply, acknowledgement) = oneshot::channel();
        streams.by_broker[&broker_id].send(request, topic, partition, reply)?;
        Ok(acknowledgement)
    }

    /// Waits for the acknowledgement of a batch queued by `send_batch` (`queued`, or `None` if
    /// the leader was not cached), re-sending it to the current leader while that helps.
    async fn deliver(
        &self,
        topic: &str,
        partition: i32,
        batch: Bytes,
        mut queued: Option<Result<Acknowledgement, ClientError>>,
    ) -> Result<ProduceAck, ClientError> {
        let started = tokio::time::Instant::now();
        let mut retry = 0;
        loop {
            let attempt = match queued.take() {
                Some(queued) => queued,
                None if self.lock().closed => Err(ClientError::StreamClosed {
                    operation: OPERATION,
                }),
                None => match self.client.lookup_leader(topic, partition).await {
                    Ok(leader) => self.enqueue(&leader, topic, partition, batch.clone()),
                    Err(error) => Err(error),
                },
            };
            let result = match attempt {
                Ok(acknowledgement) => acknowledgement
                    .await
                    .unwrap_or(Err(ClientError::StreamClosed {
                        operation: OPERATION,
                    }))
                    .and_then(|response| ack_from_response(response, topic, partition)),
                Err(error) => Err(error),
            };
            let error = match result {
                Ok(ack) => return Ok(ack),
                Err(error) if self.worth_resending(&error) => error,
                Err(error) => return Err(error),
            };
            retry += 1;
            let Some(delay) = self.client.retry.delay_before(retry, started.elapsed()) else {
                return Err(error);
            };
            tracing::debug!(topic, partition, retry, %error, "re-sending a produce batch");
            self.client.forget_leaders(topic);
            tokio::time::sleep(delay).await;
        }
    }

    /// Whether a failed send should go to the (possibly new) leader again: the leader moved or
    /// was unreachable, or its stream ended while this producer is still open (a broker
    /// shutting down ends its streams).
    fn worth_resending(&self, error: &ClientError) -> bool {
        error.needs_metadata_refresh()
            || (matches!(error, ClientError::StreamClosed { .. }) && !self.lock().closed)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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
        client.refresh_metadata(&["t"]).await.unwrap();
        let producer = BatchSender::new(&client, BatchSenderOptions::default());
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
        let client = Client::connect(&address)
            .await
            .unwrap()
            .with_retry_timeout(Duration::from_millis(300));
        let producer = BatchSender::new(&client, BatchSenderOptions::default());
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
    async fn dropping_the_producer_still_delivers_acks_and_ends_the_stream() {
        let (address, broker) = FakeBroker::start().await;
        broker.create("t", 1);
        let client = Client::connect(&address).await.unwrap();
        client.refresh_metadata(&[]).await.unwrap();
        let producer = BatchSender::new(&client, BatchSenderOptions::default());
        let acknowledged = producer.send_records("t", 0, &[record("x")]);
        drop(producer);
        assert_eq!(acknowledged.await.unwrap().base_offset, 0);
        tokio::time::timeout(Duration::from_secs(5), async {
            while broker.state.lock().unwrap().open_produce_streams > 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the stream ends once the producer is gone");
    }

    #[tokio::test]
    async fn a_closed_producer_fails_sends() {
        let (address, _broker) = FakeBroker::start().await;
        let client = Client::connect(&address).await.unwrap();
        let producer = BatchSender::new(&client, BatchSenderOptions::default());
        producer.clone().close().await;
        let error = producer
            .send_records("t", 0, &[record("x")])
            .await
            .unwrap_err();
        assert!(matches!(error, ClientError::StreamClosed { .. }), "{error}");
    }

    #[tokio::test]
    async fn batches_go_to_each_partitions_leader_and_follow_a_move() {
        let (cluster, brokers) = FakeBroker::start_cluster(2).await;
        brokers[0].create("t", 2);
        brokers[0].set_leader("t", 1, 2);
        let client = Client::connect(&cluster[0]).await.unwrap();
        client.leader_for("t", 0).await.unwrap();
        let producer = BatchSender::new(&client, BatchSenderOptions::default());
        for partition in [0, 1, 0, 1] {
            producer
                .send_records("t", partition, &[record("x")])
                .await
                .unwrap();
        }
        assert_eq!(brokers[0].produce_requests_by(1), 2);
        assert_eq!(brokers[0].produce_requests_by(2), 2);

        // Partition 0 moves to broker 2: broker 1 answers NOT_LEADER_OR_FOLLOWER and the
        // batch is re-sent to broker 2 after a metadata refresh.
        brokers[0].set_leader("t", 0, 2);
        let ack = producer.send_records("t", 0, &[record("y")]).await.unwrap();
        assert_eq!(ack.base_offset, 2);
        assert_eq!(brokers[0].produce_requests_by(1), 3, "one refused attempt");
        assert_eq!(brokers[0].produce_requests_by(2), 3);
        producer.close().await;
    }
}
