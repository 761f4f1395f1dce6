//! The [`Producer`] handle: checks and admits records (metadata, size, buffer memory) and
//! appends them to the accumulator, all in the caller's task; the sender task does the rest.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tokio::time::Instant;

use super::ProducerOptions;
use super::accumulator::Accumulator;
use super::buffer::BufferPool;
use super::error::ProduceError;
use super::record::{DeliveryFuture, ProducerRecord};
use super::sender::Sender;
use crate::{Client, ClientError};

/// A batching producer, like Kafka's Java producer without idempotence. Cheap to clone: clones
/// share one accumulator and one sender task. Needs a tokio runtime.
///
/// [`Producer::send`] admits a record and returns a [`DeliveryFuture`] for its offset:
///
/// ```no_run
/// # async fn example(client: &tributary_client::Client) -> Result<(), Box<dyn std::error::Error>> {
/// use tributary_client::{Producer, ProducerOptions, ProducerRecord};
/// let producer = Producer::new(client, ProducerOptions::default())?;
/// let delivery = producer.send(ProducerRecord::new("orders", "v").with_key("k")).await?;
/// let written = delivery.await?;
/// println!("{}-{}@{}", written.topic, written.partition, written.offset);
/// producer.close().await;
/// # Ok(()) }
/// ```
///
/// **Batching.** Each partition has one open batch; it is sent when it reaches `batch_size`
/// bytes or `linger` has passed since its first record (or on [`Producer::flush`] and
/// [`Producer::close`]). Batches for partitions led by the same broker share a request, up to
/// `max_request_size`; up to `max_in_flight_requests_per_connection` requests per broker are
/// pipelined on one `ProduceStream`.
///
/// **Back-pressure.** Records hold `buffer_memory` from `send` until they are acknowledged or
/// fail. When it is used up, `send` waits, for `max_block` at most, then fails with
/// [`ProduceError::BufferExhausted`]; a record is never dropped silently.
///
/// **Delivery.** Failed batches are retried (after `retry_backoff`, with fresh metadata when the
/// leader may have moved) on retriable errors — `NOT_LEADER_OR_FOLLOWER`, `LEADER_NOT_AVAILABLE`,
/// `REQUEST_TIMED_OUT`, `NOT_ENOUGH_REPLICAS(_AFTER_APPEND)`, lost connections — until
/// `delivery_timeout` after the record was accepted; then the record fails with
/// [`ProduceError::DeliveryTimeout`]. Other errors fail the batch's records at once. Delivery is
/// at least once: a retry after a lost answer may write a batch twice.
///
/// **Ordering.** A partition's records are written in `send` order, with one exception. When a
/// batch fails, later batches of the partition that are not yet sent wait; the failed batch is
/// re-sent alone, and the partition resumes pipelining once it is acknowledged. Nothing is sent
/// to a new leader while requests to the old one are unanswered. A leader change or a lost
/// connection fails every later batch in flight as well, so they are all re-sent in order. But
/// if a batch fails while a *later* batch already in flight succeeds (a `REQUEST_TIMED_OUT` or
/// `NOT_ENOUGH_REPLICAS` on one request only), the retried batch lands after it: like the Java
/// client without idempotence, strict order then needs
/// `max_in_flight_requests_per_connection = 1`. The idempotent producer (sequence numbers per
/// batch) will remove this exception.
#[derive(Debug, Clone)]
pub struct Producer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: Client,
    options: ProducerOptions,
    /// The batches not yet handed to the sender task (shared with it).
    accumulator: Arc<Accumulator>,
    buffer: Arc<BufferPool>,
    closed: AtomicBool,
    /// Set by the sender task when it has stopped.
    done: watch::Receiver<bool>,
}

impl Drop for Inner {
    /// The last handle is gone: the sender delivers what was accepted, then stops.
    fn drop(&mut self) {
        self.accumulator.close();
    }
}

impl Producer {
    /// A producer sending through `client`'s connections and metadata; starts its task on the
    /// current tokio runtime. Fails if the options are inconsistent
    /// ([`ProducerOptions::validate`]).
    pub fn new(client: &Client, options: ProducerOptions) -> Result<Producer, ClientError> {
        options.validate()?;
        let accumulator = Arc::new(Accumulator::new(options.batch_size, options.partitioner));
        let buffer = Arc::new(BufferPool::new(options.buffer_memory));
        let (done_sender, done) = watch::channel(false);
        let sender = Sender::new(
            client.clone(),
            options,
            Arc::clone(&accumulator),
            Arc::clone(&buffer),
        );
        tokio::spawn(sender.run(done_sender));
        Ok(Producer {
            inner: Arc::new(Inner {
                client: client.clone(),
                options,
                accumulator,
                buffer,
                closed: AtomicBool::new(false),
                done,
            }),
        })
    }

    /// The options this producer was created with.
    pub fn options(&self) -> ProducerOptions {
        self.inner.options
    }

    /// Bytes of `buffer_memory` not held by records in the producer.
    pub fn available_memory(&self) -> usize {
        self.inner.buffer.available()
    }

    /// Admits `record`: looks up its topic's partition count (cached metadata, or fetched) and
    /// takes its share of buffer memory, each waiting within `max_block` in all; then appends it
    /// to its partition's open batch and returns the future of its delivery. Records sent from
    /// one task are appended in `send` order.
    pub async fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture, ProduceError> {
        let inner = &self.inner;
        if inner.closed.load(Ordering::Acquire) {
            return Err(ProduceError::Closed);
        }
        let max_block = inner.options.max_block;
        // Both waits share max.block.ms; the clock is read only when one has to wait.
        let mut started = None;
        let mut deadline = || *started.get_or_insert_with(Instant::now) + max_block;
        let partitions = match inner.client.cached_partition_count(&record.topic) {
            Some(Ok(count)) => count,
            _ => self.partition_count(&record.topic, deadline()).await?,
        };
        if let Some(partition) = record.partition
            && !(0..partitions).contains(&partition)
        {
            return Err(ProduceError::UnknownPartition {
                topic: record.topic,
                partition,
                partitions,
            });
        }
        let size = record.size_upper_bound();
        if size > inner.options.max_request_size {
            return Err(ProduceError::RecordTooLarge {
                size,
                limit: inner.options.max_request_size,
                setting: "max.request.size",
            });
        }
        let reserved = match inner.buffer.try_reserve(size) {
            Some(reserved) => reserved,
            None => inner.buffer.reserve(size, deadline(), max_block).await?,
        };
        let (topic, partition, record) = record.into_record(now_ms);
        let appended = inner.accumulator.append(
            &inner.client,
            &topic,
            partition,
            partitions,
            &record,
            reserved,
        );
        if appended.is_err() {
            inner.buffer.release(reserved);
        }
        appended
    }

    /// Sends every open batch now and waits until every record `send` accepted before this
    /// call is acknowledged or failed.
    pub async fn flush(&self) {
        self.inner.accumulator.flush().await;
    }

    /// Stops accepting records (for every clone: `send` fails with [`ProduceError::Closed`]),
    /// delivers every record already accepted (retries included, within `delivery_timeout`) and
    /// ends the produce streams.
    pub async fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        self.inner.accumulator.close();
        let mut done = self.inner.done.clone();
        let _ = done.wait_for(|stopped| *stopped).await;
    }

    /// The partition count of `topic`, fetching metadata (with `retry_backoff` between tries)
    /// until `deadline` if the client has none or the topic is not known yet.
    async fn partition_count(&self, topic: &str, deadline: Instant) -> Result<i32, ProduceError> {
        let client = &self.inner.client;
        let backoff = self.inner.options.retry_backoff;
        let mut last_error = match client.cached_partition_count(topic) {
            Some(Ok(count)) => return Ok(count),
            Some(Err(error)) => Some(error),
            None => None,
        };
        loop {
            match client.refresh_metadata(&[topic]).await {
                Ok(()) => match client.cached_partition_count(topic) {
                    Some(Ok(count)) => return Ok(count),
                    Some(Err(error)) => last_error = Some(error),
                    None => {}
                },
                Err(error) => last_error = Some(error),
            }
            let retry_at = Instant::now() + backoff;
            if retry_at >= deadline {
                let source = last_error.unwrap_or(ClientError::Broker {
                    topic: topic.to_owned(),
                    partition: None,
                    code: crate::ErrorCode::UnknownTopicOrPartition,
                    message: "not in the metadata".to_owned(),
                });
                return Err(ProduceError::Metadata {
                    topic: topic.to_owned(),
                    waited: self.inner.options.max_block,
                    source: Arc::new(source),
                });
            }
            tokio::time::sleep_until(retry_at).await;
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as i64
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use bytes::Bytes;

    use super::*;
    use crate::fake_broker::FakeBroker;
    use crate::{ErrorCode, partition_for_key};

    fn options() -> ProducerOptions {
        ProducerOptions {
            linger: Duration::from_millis(5),
            ..ProducerOptions::default()
        }
    }

    /// Every value of `topic`-`partition` with its offset, read back from the fake broker.
    async fn read_back(client: &Client, topic: &str, partition: i32) -> Vec<(i64, String)> {
        let fetched = client.fetch(topic, partition, 0, 1 << 24, 0).await.unwrap();
        fetched
            .records
            .iter()
            .map(|r| {
                let value = String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap();
                (r.offset, value)
            })
            .collect()
    }

    #[tokio::test]
    async fn deliveries_carry_the_offsets_records_are_read_back_at() {
        let (address, broker) = FakeBroker::start().await;
        broker.create("t", 3);
        let client = Client::connect(&address).await.unwrap();
        let producer = Producer::new(&client, options()).unwrap();
        let mut deliveries = Vec::new();
        for i in 0..300 {
            let mut record = ProducerRecord::new("t", format!("v{i}"));
            if i % 2 == 0 {
                record = record.with_key(format!("key{}", i % 17));
            }
            deliveries.push((record.key.clone(), producer.send(record).await.unwrap()));
        }
        let mut written = HashMap::new();
        for (i, (key, delivery)) in deliveries.into_iter().enumerate() {
            let metadata = delivery.await.unwrap();
            if let Some(key) = key {
                assert_eq!(metadata.partition, partition_for_key(&key, 3), "record {i}");
            }
            written.insert((metadata.partition, metadata.offset), format!("v{i}"));
        }
        let mut read = 0;
        for partition in 0..3 {
            let records = read_back(&client, "t", partition).await;
            for (offset, value) in &records {
                assert_eq!(written.get(&(partition, *offset)), Some(value));
            }
            // In send order within the partition.
            let order: Vec<usize> = records
                .iter()
                .map(|(_, v)| v[1..].parse().unwrap())
                .collect();
            assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
            read += records.len();
        }
        assert_eq!(read, 300);
        assert!(
            broker.state.lock().unwrap().produce_requests < 300,
            "records were batched"
        );
        producer.close().await;
        assert_eq!(producer.available_memory(), options().buffer_memory);
        let error = producer
            .send(ProducerRecord::new("t", "late"))
            .await
            .unwrap_err();
        assert!(matches!(error, ProduceError::Closed), "{error}");
    }

    #[tokio::test]
    async fn batches_wait_for_linger_or_size_and_flush_sends_them() {
        let (address, broker) = FakeBroker::start().await;
        broker.create("t", 1);
        let client = Client::connect(&address).await.unwrap();
        let producer = Producer::new(
            &client,
            ProducerOptions {
                linger: Duration::from_secs(600),
                delivery_timeout: Duration::from_secs(3600),
                batch_size: 1000,
                ..ProducerOptions::default()
            },
        )
        .unwrap();
        let requests = || broker.state.lock().unwrap().produce_requests;
        let mut deliveries = Vec::new();
        for _ in 0..5 {
            let record = ProducerRecord::new("t", vec![b'x'; 100]).with_partition(0);
            deliveries.push(producer.send(record).await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(requests(), 0, "5 small records stay in the lingering batch");
        // Past batch.size: the full batch leaves at once, the rest lingers.
        for _ in 0..5 {
            let record = ProducerRecord::new("t", vec![b'x'; 100]).with_partition(0);
            deliveries.push(producer.send(record).await.unwrap());
        }
        tokio::time::timeout(Duration::from_secs(5), async {
            while requests() == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap();
        assert_eq!(requests(), 1);
        producer.flush().await;
        assert_eq!(requests(), 2);
        let offsets: Vec<i64> = futures::future::join_all(deliveries)
            .await
            .into_iter()
            .map(|d| d.unwrap().offset)
            .collect();
        assert_eq!(offsets, (0..10).collect::<Vec<_>>());

        // A short linger sends by itself.
        let short = Producer::new(
            &client,
            ProducerOptions {
                linger: Duration::from_millis(20),
                ..ProducerOptions::default()
            },
        )
        .unwrap();
        let started = Instant::now();
        let delivered = short
            .send(ProducerRecord::new("t", "x"))
            .await
            .unwrap()
            .await
            .unwrap();
        assert_eq!(delivered.offset, 10);
        assert!(started.elapsed() >= Duration::from_millis(20));
    }

    #[tokio::test]
    async fn retries_follow_a_leader_move_in_order() {
        let (addresses, brokers) = FakeBroker::start_cluster(2).await;
        brokers[0].create("t", 1);
        let client = Client::connect(&addresses[0]).await.unwrap();
        let producer = Producer::new(&client, options()).unwrap();
        let first = producer
            .send(ProducerRecord::new("t", "a"))
            .await
            .unwrap()
            .await
            .unwrap();
        assert_eq!(first.offset, 0);
        brokers[0].set_leader("t", 0, 2);
        let mut deliveries = Vec::new();
        for i in 0..50 {
            deliveries.push(
                producer
                    .send(ProducerRecord::new("t", format!("b{i}")))
                    .await
                    .unwrap(),
            );
        }
        for (i, delivery) in deliveries.into_iter().enumerate() {
            assert_eq!(delivery.await.unwrap().offset, 1 + i as i64);
        }
        assert!(
            brokers[0].produce_requests_by(1) >= 2,
            "refused by broker 1"
        );
        assert!(brokers[0].produce_requests_by(2) >= 1);
        let values: Vec<String> = read_back(&client, "t", 0)
            .await
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        let mut expected = vec!["a".to_owned()];
        expected.extend((0..50).map(|i| format!("b{i}")));
        assert_eq!(values, expected);
    }

    #[tokio::test]
    async fn records_fail_clearly_when_they_cannot_be_delivered_or_admitted() {
        let (address, broker) = FakeBroker::start().await;
        broker.create("t", 2);
        // Broker 9 is not live: partition 1 has no usable leader.
        broker.set_leader("t", 1, 9);
        let client = Client::connect(&address).await.unwrap();
        let producer = Producer::new(
            &client,
            ProducerOptions {
                request_timeout: Duration::from_millis(200),
                delivery_timeout: Duration::from_millis(400),
                max_block: Duration::from_millis(300),
                buffer_memory: 2000,
                ..ProducerOptions::default()
            },
        )
        .unwrap();
        let stuck = producer
            .send(ProducerRecord::new("t", vec![b'x'; 900]).with_partition(1))
            .await
            .unwrap();
        let stuck_too = producer
            .send(ProducerRecord::new("t", vec![b'x'; 900]).with_partition(1))
            .await
            .unwrap();
        // The buffer is full of undeliverable records: send waits max.block.ms, then fails.
        let started = Instant::now();
        let error = producer
            .send(ProducerRecord::new("t", vec![b'x'; 900]).with_partition(0))
            .await
            .unwrap_err();
        assert!(
            matches!(error, ProduceError::BufferExhausted { .. }),
            "{error}"
        );
        assert!(started.elapsed() >= Duration::from_millis(300));
        // Within delivery.timeout.ms they fail (not vanish), and free their memory.
        for delivery in [stuck, stuck_too] {
            let error = delivery.await.unwrap_err();
            assert!(
                matches!(error, ProduceError::DeliveryTimeout { partition: 1, .. }),
                "{error}"
            );
        }
        assert_eq!(producer.available_memory(), 2000);
        let ok = producer
            .send(ProducerRecord::new("t", "fits").with_partition(0))
            .await
            .unwrap()
            .await
            .unwrap();
        assert_eq!((ok.partition, ok.offset), (0, 0));

        // Refusals before anything is queued.
        let error = producer
            .send(ProducerRecord::new("t", "x").with_partition(2))
            .await
            .unwrap_err();
        assert!(
            matches!(error, ProduceError::UnknownPartition { partitions: 2, .. }),
            "{error}"
        );
        let error = producer
            .send(ProducerRecord::new("t", Bytes::from(vec![0; 4000])))
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                ProduceError::RecordTooLarge {
                    setting: "buffer.memory",
                    ..
                }
            ),
            "{error}"
        );
        let error = producer
            .send(ProducerRecord::new("missing", "x"))
            .await
            .unwrap_err();
        assert!(matches!(error, ProduceError::Metadata { .. }), "{error}");
        let _ = ErrorCode::None;
    }
}
