//! The pipelined partition consumer over the `FetchStream` RPC.
//!
//! A background task owns the stream. When a response arrives it reads only the batch headers
//! to learn the next offset, sends the next fetch at once, and only then decodes the records
//! and hands them over. So the broker is already preparing fetch k+1 (or long-polling for it)
//! while the caller processes the records of fetch k. The hand-over channel holds one decoded
//! result, which bounds memory to about three responses.
//!
//! The stream goes to the partition's leader. When the leader moves (`NOT_LEADER_OR_FOLLOWER`,
//! a lost connection, the stream ended by a broker shutting down, ...) the task fetches fresh
//! metadata and opens a stream to the new leader at the first offset not yet handed over,
//! backing off like [`Client::on_leader`]; the retry budget ([`Client::retry_timeout`]) starts
//! again after every successful fetch, so a consumer survives any number of leader changes.

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tributary_proto::v1 as pb;

use super::{FetchOptions, FetchResult, fetch_request, partition_result, raw_result};
use crate::{Client, ClientError, PartitionLeader};

const OPERATION: &str = "FetchStream";

/// Reads one partition continuously from a starting offset.
///
/// Each [`PartitionConsumer::next`] returns the next fetch's records (possibly none, after a
/// long poll that found nothing), fetched from the partition's leader wherever it moves. The
/// first error that re-routing does not cure ends the consumer: later calls return
/// [`ClientError::StreamClosed`]. Dropping the consumer stops its task.
#[derive(Debug)]
pub struct PartitionConsumer {
    results: mpsc::Receiver<Result<FetchResult, ClientError>>,
    task: tokio::task::JoinHandle<()>,
    topic: String,
    partition: i32,
    position: i64,
}

impl PartitionConsumer {
    /// Starts reading `topic`/`partition` at `offset` (an absolute offset; look one up with
    /// [`Client::list_offsets`]).
    pub fn new(
        client: &Client,
        topic: &str,
        partition: i32,
        offset: i64,
        options: FetchOptions,
    ) -> Result<PartitionConsumer, ClientError> {
        options.validate()?;
        if offset < 0 {
            return Err(ClientError::InvalidArgument {
                argument: "offset",
                reason: format!("{offset} is negative"),
            });
        }
        let (sender, results) = mpsc::channel(1);
        let fetcher = Fetcher {
            client: client.clone(),
            topic: topic.to_owned(),
            partition,
            options,
        };
        let task = tokio::spawn(fetcher.run(offset, sender));
        Ok(PartitionConsumer {
            results,
            task,
            topic: topic.to_owned(),
            partition,
            position: offset,
        })
    }

    /// The topic read.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The partition read.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// The offset of the next record [`PartitionConsumer::next`] will return.
    pub fn position(&self) -> i64 {
        self.position
    }

    /// The next fetch's records.
    pub async fn next(&mut self) -> Result<FetchResult, ClientError> {
        match self.results.recv().await {
            Some(Ok(result)) => {
                self.position = result.next_offset;
                Ok(result)
            }
            Some(Err(error)) => {
                self.results.close();
                Err(error)
            }
            None => Err(ClientError::StreamClosed {
                operation: OPERATION,
            }),
        }
    }
}

/// The same results as [`PartitionConsumer::next`], as a stream that ends after the first
/// error (so a `StreamMap` of consumers drops a failed one by itself).
impl tokio_stream::Stream for PartitionConsumer {
    type Item = Result<FetchResult, ClientError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let polled = self.results.poll_recv(cx);
        match &polled {
            std::task::Poll::Ready(Some(Ok(result))) => self.position = result.next_offset,
            std::task::Poll::Ready(Some(Err(_))) => self.results.close(),
            _ => {}
        }
        polled
    }
}

impl Drop for PartitionConsumer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Debug)]
struct Fetcher {
    client: Client,
    topic: String,
    partition: i32,
    options: FetchOptions,
}

impl Fetcher {
    fn request(&self, offset: i64) -> pb::FetchRequest {
        fetch_request(
            self.client.next_request_id(),
            &self.topic,
            self.partition,
            offset,
            &self.options,
            pb::RecordFormat::Raw,
        )
    }

    async fn run(self, mut offset: i64, results: mpsc::Sender<Result<FetchResult, ClientError>>) {
        let mut started = tokio::time::Instant::now();
        let mut retry = 0;
        loop {
            let mut delivered = false;
            let outcome = match self.client.lookup_leader(&self.topic, self.partition).await {
                Ok(leader) => {
                    self.fetch_loop(&leader, &mut offset, &mut delivered, &results)
                        .await
                }
                Err(error) => Err(error),
            };
            let error = match outcome {
                Ok(()) => return,
                Err(error) => error,
            };
            if delivered {
                started = tokio::time::Instant::now();
                retry = 0;
            }
            retry += 1;
            let delay = if error.needs_metadata_refresh()
                || matches!(error, ClientError::StreamClosed { .. })
            {
                self.client.retry.delay_before(retry, started.elapsed())
            } else {
                None
            };
            let Some(delay) = delay else {
                let _ = results.send(Err(error)).await;
                return;
            };
            tracing::debug!(topic = %self.topic, partition = self.partition, offset, retry, %error,
                "re-opening the fetch stream");
            self.client.forget_leaders(&self.topic);
            tokio::time::sleep(delay).await;
        }
    }

    /// Fetches from `leader` until an error (returned) or until the consumer is dropped
    /// (`Ok`). `offset` follows the records handed over; `delivered` says whether any were.
    async fn fetch_loop(
        &self,
        leader: &PartitionLeader,
        offset: &mut i64,
        delivered: &mut bool,
        results: &mpsc::Sender<Result<FetchResult, ClientError>>,
    ) -> Result<(), ClientError> {
        let (requests, receiver) = mpsc::channel(2);
        let mut request_id = self.send(&requests, self.request(*offset)).await?;
        let mut responses = leader
            .broker_service()
            .fetch_stream(ReceiverStream::new(receiver))
            .await
            .map_err(ClientError::rpc(OPERATION))?
            .into_inner();
        loop {
            let response = responses
                .message()
                .await
                .map_err(ClientError::rpc(OPERATION))?
                .ok_or(ClientError::StreamClosed {
                    operation: OPERATION,
                })?;
            if response.request_id != request_id {
                return Err(ClientError::MalformedResponse {
                    operation: OPERATION,
                    topic: self.topic.clone(),
                    partition: Some(self.partition),
                    reason: format!(
                        "response {} while waiting for {request_id}",
                        response.request_id
                    ),
                });
            }
            let result = partition_result(response, &self.topic, self.partition)?;
            let next_offset = next_offset_of(&result.batches, *offset);
            request_id = self.send(&requests, self.request(next_offset)).await?;
            let fetched = raw_result(result, &self.topic, *offset, self.options.max_bytes)?;
            debug_assert_eq!(fetched.next_offset, next_offset);
            if results.send(Ok(fetched)).await.is_err() {
                return Ok(());
            }
            *offset = next_offset;
            *delivered = true;
        }
    }

    async fn send(
        &self,
        requests: &mpsc::Sender<pb::FetchRequest>,
        request: pb::FetchRequest,
    ) -> Result<u64, ClientError> {
        let id = request.request_id;
        requests
            .send(request)
            .await
            .map_err(|_| ClientError::StreamClosed {
                operation: OPERATION,
            })?;
        Ok(id)
    }
}

/// The offset after the last complete batch, reading headers only (cheap, so the next fetch
/// leaves before decoding starts). Malformed bytes are left for the decoder to report.
fn next_offset_of(batches: &[u8], fetch_offset: i64) -> i64 {
    tributary_record::BatchIter::new(batches)
        .map_while(Result::ok)
        .fold(fetch_offset, |next, (header, _)| {
            next.max(header.next_offset())
        })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use tributary_record::Record;

    use super::*;
    use crate::fake_broker::FakeBroker;
    use crate::{Acks, OffsetSpec};

    fn records(from: usize, count: usize) -> Vec<Record> {
        (from..from + count)
            .map(|i| Record {
                key: Some(Bytes::from(format!("k{i}"))),
                value: Some(Bytes::from(format!("v{i}"))),
                timestamp: 1000 + i as i64,
                headers: vec![],
            })
            .collect()
    }

    #[tokio::test]
    async fn reads_everything_in_order_then_long_polls_for_more() {
        let (address, broker) = FakeBroker::start().await;
        broker.create("t", 1);
        let client = Client::connect(&address).await.unwrap();
        for chunk in 0..10 {
            client
                .produce("t", 0, &records(chunk * 10, 10), Acks::Leader)
                .await
                .unwrap();
        }
        // Small max_bytes forces many fetches; start inside the first batch.
        let options = FetchOptions {
            max_bytes: 300,
            max_wait_ms: 200,
            min_bytes: 1,
        };
        let mut consumer = PartitionConsumer::new(&client, "t", 0, 3, options).unwrap();
        let mut seen = Vec::new();
        while seen.len() < 97 {
            let result = tokio::time::timeout(Duration::from_secs(5), consumer.next())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(result.high_watermark, 100);
            seen.extend(result.records.into_iter().map(|r| r.offset));
        }
        assert_eq!(seen, (3..100).collect::<Vec<i64>>());
        assert_eq!(consumer.position(), 100);

        // A produce while the consumer is long-polling is delivered promptly.
        let producer_client = client.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            producer_client
                .produce("t", 0, &records(100, 1), Acks::Leader)
                .await
                .unwrap();
        });
        let mut late = Vec::new();
        while late.is_empty() {
            late = tokio::time::timeout(Duration::from_secs(5), consumer.next())
                .await
                .unwrap()
                .unwrap()
                .records;
        }
        assert_eq!(late[0].offset, 100);
        assert_eq!(late[0].value.as_deref(), Some(&b"v100"[..]));
    }

    #[tokio::test]
    async fn errors_end_the_consumer() {
        let (address, broker) = FakeBroker::start().await;
        broker.create("t", 1);
        let client = Client::connect(&address).await.unwrap();
        let mut consumer =
            PartitionConsumer::new(&client, "t", 0, 50, FetchOptions::default()).unwrap();
        let error = consumer.next().await.unwrap_err();
        assert_eq!(error.error_code(), Some(crate::ErrorCode::OffsetOutOfRange));
        assert!(matches!(
            consumer.next().await,
            Err(ClientError::StreamClosed { .. })
        ));
        assert!(PartitionConsumer::new(&client, "t", 0, -1, FetchOptions::default()).is_err());
    }

    #[tokio::test]
    async fn the_consumer_follows_the_leader() {
        let (addresses, brokers) = FakeBroker::start_cluster(2).await;
        brokers[0].create("t", 1);
        brokers[0].set_leader("t", 0, 2);
        let client = Client::connect(&addresses[0]).await.unwrap();
        client
            .produce("t", 0, &records(0, 5), Acks::Leader)
            .await
            .unwrap();
        let options = FetchOptions {
            max_wait_ms: 50,
            ..FetchOptions::default()
        };
        let mut consumer = PartitionConsumer::new(&client, "t", 0, 0, options).unwrap();
        let first = consumer.next().await.unwrap();
        assert_eq!(first.records.len(), 5);

        // The leader moves to broker 1: broker 2 refuses the pending fetch, and the consumer
        // carries on from broker 1 at offset 5 without surfacing an error.
        brokers[0].set_leader("t", 0, 1);
        client
            .produce("t", 0, &records(5, 3), Acks::Leader)
            .await
            .unwrap();
        let mut seen = Vec::new();
        while seen.len() < 3 {
            let result = tokio::time::timeout(Duration::from_secs(5), consumer.next())
                .await
                .unwrap()
                .unwrap();
            seen.extend(result.records.into_iter().map(|r| r.offset));
        }
        assert_eq!(seen, vec![5, 6, 7]);
    }

    #[tokio::test]
    async fn unary_fetches_and_offsets() {
        let (address, broker) = FakeBroker::start().await;
        broker.create("t", 1);
        let client = Client::connect(&address).await.unwrap();
        let ack = client
            .produce("t", 0, &records(0, 5), Acks::Leader)
            .await
            .unwrap();
        assert_eq!((ack.base_offset, ack.last_offset), (0, 4));
        let ack = client
            .produce_structured("t", 0, &records(5, 5), Acks::All)
            .await
            .unwrap();
        assert_eq!((ack.base_offset, ack.last_offset), (5, 9));

        let raw = client.fetch("t", 0, 2, 1 << 20, 0).await.unwrap();
        assert_eq!(
            raw.records.iter().map(|r| r.offset).collect::<Vec<_>>(),
            (2..10).collect::<Vec<_>>()
        );
        assert_eq!(raw.next_offset, 10);
        let decoded = client.fetch_decoded("t", 0, 2, 1 << 20, 0).await.unwrap();
        assert_eq!(decoded.records, raw.records);
        assert_eq!(decoded.next_offset, 10);
        assert!(client.fetch("t", 0, 0, -1, 0).await.is_err());

        let earliest = client
            .list_offsets("t", 0, OffsetSpec::Earliest)
            .await
            .unwrap();
        let latest = client
            .list_offsets("t", 0, OffsetSpec::Latest)
            .await
            .unwrap();
        let at = client
            .list_offsets("t", 0, OffsetSpec::Timestamp(1007))
            .await
            .unwrap();
        let none = client
            .list_offsets("t", 0, OffsetSpec::Timestamp(5000))
            .await
            .unwrap();
        assert_eq!(
            (earliest.offset, latest.offset, at.offset, none.offset),
            (Some(0), Some(10), Some(7), None)
        );
        let impatient = client
            .clone()
            .with_retry_timeout(Duration::from_millis(200));
        let error = impatient
            .list_offsets("nope", 0, OffsetSpec::Latest)
            .await
            .unwrap_err();
        assert_eq!(
            error.error_code(),
            Some(crate::ErrorCode::UnknownTopicOrPartition)
        );
    }
}
