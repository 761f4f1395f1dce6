//! The [`Consumer`]: assigned partitions read through [`PartitionConsumer`] fetch streams, with
//! positions, seeks, pauses and the reset policy decided by [`Assignment`] and
//! [`FetchBuffer`] (pure), and the I/O (offset lookups, starting and stopping fetch streams)
//! done here.
//!
//! ```text
//!   poll ──▶ lookups (ListOffsets) for partitions without a position
//!        ──▶ one PartitionConsumer (FetchStream to the leader) per fetchable partition
//!        ──▶ FetchBuffer.drain: records whose fetch offset is still the position
//!        ──▶ else wait for the first completed fetch (or the timeout), take all ready ones
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use tokio_stream::{StreamExt, StreamMap};

use super::assignment::{Assignment, OffsetReset, TopicPartition};
use super::buffer::{ConsumerRecord, FetchBuffer, consumer_records};
use super::membership::{GroupMember, GroupOptions};
use super::subscribe::Listener;
use super::{FetchOptions, FetchResult, PartitionConsumer};
use crate::{Client, ClientError, ErrorCode, OffsetSpec};

/// Settings of a [`Consumer`] (Kafka's consumer configs of the same meaning in brackets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerOptions {
    /// The fetch of each partition: `max_bytes` is per partition (`max.partition.fetch.bytes`,
    /// 1 MiB), `max_wait_ms` the long poll (`fetch.max.wait.ms`, 500), `min_bytes`
    /// (`fetch.min.bytes`, 1).
    pub fetch: FetchOptions,
    /// What to do without a position or after OFFSET_OUT_OF_RANGE (`auto.offset.reset`,
    /// latest).
    pub auto_offset_reset: OffsetReset,
    /// Most records one [`Consumer::poll`] returns (`max.poll.records`, 500).
    pub max_poll_records: usize,
    /// The consumer group for [`Consumer::subscribe`] (`group.id` and the group settings);
    /// `None` (the default) for manual assignment only.
    pub group: Option<GroupOptions>,
}

impl Default for ConsumerOptions {
    fn default() -> Self {
        ConsumerOptions {
            fetch: FetchOptions {
                max_bytes: 1024 * 1024,
                ..FetchOptions::default()
            },
            auto_offset_reset: OffsetReset::Latest,
            max_poll_records: 500,
            group: None,
        }
    }
}

/// A consumer of explicitly assigned partitions, shaped like Kafka's `KafkaConsumer`.
///
/// ```no_run
/// # async fn example() -> Result<(), tributary_client::ClientError> {
/// use std::time::Duration;
/// use tributary_client::{Client, Consumer, ConsumerOptions, OffsetReset, TopicPartition};
///
/// let client = Client::connect("127.0.0.1:9092").await?;
/// let options = ConsumerOptions { auto_offset_reset: OffsetReset::Earliest, ..Default::default() };
/// let mut consumer = Consumer::new(&client, options)?;
/// consumer.assign([TopicPartition::new("orders", 0), TopicPartition::new("orders", 1)]);
/// consumer.seek_to_beginning([&TopicPartition::new("orders", 1)])?;
/// loop {
///     for record in consumer.poll(Duration::from_millis(500)).await? {
///         println!("{}-{}@{}: {:?}", record.topic, record.partition, record.offset, record.value);
///     }
/// }
/// # }
/// ```
///
/// **Positions.** Each assigned partition has a position: the offset of the next record
/// `poll` returns. A new partition has none until [`Consumer::seek`] or a lazy seek
/// ([`Consumer::seek_to_beginning`], [`Consumer::seek_to_end`],
/// [`Consumer::seek_to_timestamp`], resolved with `ListOffsets` by the next `poll` or
/// [`Consumer::position`]); without one the reset policy
/// ([`ConsumerOptions::auto_offset_reset`]) picks the earliest or latest offset, or `poll`
/// fails with [`ClientError::NoOffset`] under [`OffsetReset::None`]. When the broker answers
/// OFFSET_OUT_OF_RANGE (the position fell below the log start after retention, or is past the
/// end) the policy applies again; under `None`, `poll` fails with
/// [`ClientError::OffsetOutOfRange`] until the application seeks.
///
/// **Fetching.** Each fetchable partition (assigned, positioned, not paused) has a
/// [`PartitionConsumer`]: a `FetchStream` to the partition's leader that sends the next fetch
/// before handing over the current records, so the broker is preparing (or long-polling for)
/// the next records while the application processes these. The streams of the partitions a
/// broker leads share the one HTTP/2 connection to it. A leader move (NOT_LEADER_OR_FOLLOWER,
/// FENCED/UNKNOWN_LEADER_EPOCH, a dead broker) re-routes the stream with fresh metadata at
/// the first offset not yet handed over, within the client's
/// [retry timeout](Client::retry_timeout): no gap, no duplicate.
///
/// **Groups.** With [`ConsumerOptions::group`] set, [`Consumer::subscribe`] joins a consumer
/// group: rebalances run inside `poll` and set the assignment through the same
/// [`Assignment`] state as `assign`; positions start at the group's committed offsets;
/// [`Consumer::commit_sync`], [`Consumer::commit_async`] and auto-commit store the positions
/// (see `subscribe.rs` and docs/client.md).
///
/// A `Consumer` is used by one task (`&mut self`); dropping it stops its fetch streams.
#[derive(Debug)]
pub struct Consumer {
    pub(super) client: Client,
    pub(super) options: ConsumerOptions,
    pub(super) assignment: Assignment,
    buffer: FetchBuffer,
    /// Invariant: only fetchable partitions have a fetcher, and a fetcher's results start at
    /// the partition's position or at the end of what the buffer holds for it.
    fetchers: StreamMap<TopicPartition, PartitionConsumer>,
    topics: HashMap<String, Arc<str>>,
    /// An error met while records were ready: returned by the next `poll`.
    deferred_error: Option<ClientError>,
    /// The group membership after [`Consumer::subscribe`].
    pub(super) member: Option<GroupMember>,
    /// Told about rebalances.
    pub(super) listener: Option<Listener>,
    /// When positions were last committed (auto-commit counts its interval from here).
    pub(super) last_commit: tokio::time::Instant,
}

impl Consumer {
    /// A consumer with nothing assigned.
    pub fn new(client: &Client, options: ConsumerOptions) -> Result<Consumer, ClientError> {
        options.fetch.validate()?;
        if options.max_poll_records == 0 {
            return Err(ClientError::InvalidArgument {
                argument: "max_poll_records",
                reason: "must be positive".to_owned(),
            });
        }
        Ok(Consumer {
            client: client.clone(),
            options,
            assignment: Assignment::default(),
            buffer: FetchBuffer::default(),
            fetchers: StreamMap::new(),
            topics: HashMap::new(),
            deferred_error: None,
            member: None,
            listener: None,
            last_commit: tokio::time::Instant::now(),
        })
    }

    /// Reads exactly these partitions from now on (replacing the previous assignment).
    /// Partitions already assigned keep their position and pause state; new ones start
    /// without a position (see the reset policy).
    pub fn assign(&mut self, partitions: impl IntoIterator<Item = TopicPartition>) {
        self.assignment.assign(partitions);
        let assigned = self.assignment.assigned();
        let gone: Vec<TopicPartition> = self
            .fetchers
            .keys()
            .filter(|tp| !assigned.contains(tp))
            .cloned()
            .collect();
        for tp in gone {
            self.stop(&tp);
        }
    }

    /// The assigned partitions, in order.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.assignment.assigned()
    }

    /// The client the consumer fetches with.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The next `poll` returns `partition`'s records from `offset`.
    pub fn seek(&mut self, partition: &TopicPartition, offset: i64) -> Result<(), ClientError> {
        self.assignment.seek(partition, offset)?;
        self.stop(partition);
        Ok(())
    }

    /// The next `poll` starts these partitions at their earliest offset (looked up then).
    pub fn seek_to_beginning<'a>(
        &mut self,
        partitions: impl IntoIterator<Item = &'a TopicPartition>,
    ) -> Result<(), ClientError> {
        self.seek_lookup(partitions, OffsetSpec::Earliest)
    }

    /// The next `poll` starts these partitions at their high watermark (looked up then), so
    /// only records produced later are returned.
    pub fn seek_to_end<'a>(
        &mut self,
        partitions: impl IntoIterator<Item = &'a TopicPartition>,
    ) -> Result<(), ClientError> {
        self.seek_lookup(partitions, OffsetSpec::Latest)
    }

    /// The next `poll` starts these partitions at the first record whose timestamp is at or
    /// after `timestamp` (ms since the epoch), looked up then with `ListOffsets`; a partition
    /// with no such record starts at its high watermark.
    pub fn seek_to_timestamp<'a>(
        &mut self,
        partitions: impl IntoIterator<Item = &'a TopicPartition>,
        timestamp: i64,
    ) -> Result<(), ClientError> {
        self.seek_lookup(partitions, OffsetSpec::Timestamp(timestamp))
    }

    fn seek_lookup<'a>(
        &mut self,
        partitions: impl IntoIterator<Item = &'a TopicPartition>,
        spec: OffsetSpec,
    ) -> Result<(), ClientError> {
        for tp in partitions {
            self.assignment.seek_lookup(tp, spec)?;
            self.stop(tp);
        }
        Ok(())
    }

    /// The offset of the next record `poll` will return for `partition`, looking it up first
    /// if a lazy seek or the reset policy is pending.
    pub async fn position(&mut self, partition: &TopicPartition) -> Result<i64, ClientError> {
        if let Some(offset) = self.assignment.position(partition)? {
            return Ok(offset);
        }
        let lookups = self.assignment.lookups(self.options.auto_offset_reset);
        let spec = match lookups {
            Ok(lookups) => lookups
                .into_iter()
                .find(|(tp, _)| tp == partition)
                .map(|(_, spec)| spec),
            Err(error) => return Err(error),
        };
        if let Some(spec) = spec {
            self.look_up(partition, spec).await?;
        }
        self.assignment
            .position(partition)?
            .ok_or_else(|| ClientError::NoOffset {
                topic: partition.topic.clone(),
                partition: partition.partition,
            })
    }

    /// Stops fetching these partitions; `poll` returns none of their records until
    /// [`Consumer::resume`]. Their positions are kept.
    pub fn pause<'a>(
        &mut self,
        partitions: impl IntoIterator<Item = &'a TopicPartition>,
    ) -> Result<(), ClientError> {
        for tp in partitions {
            self.assignment.set_paused(tp, true)?;
            self.stop(tp);
        }
        Ok(())
    }

    /// Fetches these partitions again from their positions.
    pub fn resume<'a>(
        &mut self,
        partitions: impl IntoIterator<Item = &'a TopicPartition>,
    ) -> Result<(), ClientError> {
        for tp in partitions {
            self.assignment.set_paused(tp, false)?;
        }
        Ok(())
    }

    /// The paused partitions.
    pub fn paused(&self) -> Vec<TopicPartition> {
        self.assignment.paused()
    }

    /// Returns the next records of the assigned partitions, waiting up to `timeout` for some
    /// to arrive (an empty list when none did). At most
    /// [`ConsumerOptions::max_poll_records`]; each partition's records in offset order, and
    /// each record exactly once unless the application seeks back.
    ///
    /// Offset lookups that a seek or the reset policy needs are made first (they retry like
    /// other requests, so they may take longer than `timeout` while a leader moves). Errors:
    /// [`ClientError::NoOffset`] and [`ClientError::OffsetOutOfRange`] under
    /// [`OffsetReset::None`]; any fetch error that re-routing did not cure (the partition's
    /// fetch restarts at its position on the next `poll`).
    pub async fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>, ClientError> {
        let deadline = tokio::time::Instant::now() + timeout;
        if let Some(error) = self.deferred_error.take() {
            return Err(error);
        }
        self.group_step().await?;
        loop {
            self.look_up_positions().await?;
            self.start_fetchers()?;
            let records = self
                .buffer
                .drain(&mut self.assignment, self.options.max_poll_records);
            if !records.is_empty() {
                self.commit_before_handing_over().await?;
                return Ok(records);
            }
            if let Some(error) = self.deferred_error.take() {
                return Err(error);
            }
            if self.fetchers.is_empty() {
                tokio::time::sleep_until(deadline).await;
                return Ok(Vec::new());
            }
            let Ok(Some((tp, first))) =
                tokio::time::timeout_at(deadline, self.fetchers.next()).await
            else {
                return Ok(Vec::new());
            };
            self.take(tp, first)?;
            // Whatever else is ready joins this poll, at most one fetch per partition.
            for _ in 1..self.fetchers.len() {
                match self.fetchers.next().now_or_never() {
                    Some(Some((tp, fetched))) => self.take(tp, fetched)?,
                    _ => break,
                }
            }
        }
    }

    /// Handles one fetcher's result: records into the buffer; OFFSET_OUT_OF_RANGE to the
    /// reset policy; other errors kept for the caller.
    fn take(
        &mut self,
        tp: TopicPartition,
        fetched: Result<FetchResult, ClientError>,
    ) -> Result<(), ClientError> {
        match fetched {
            Ok(fetched) => {
                let topic = self
                    .topics
                    .entry(tp.topic.clone())
                    .or_insert_with(|| Arc::from(tp.topic.as_str()));
                let (fetch_offset, next_offset) = (fetched.fetch_offset, fetched.next_offset);
                let records = consumer_records(topic, tp.partition, fetched);
                self.buffer.push(tp, fetch_offset, records, next_offset);
                Ok(())
            }
            Err(error) => {
                // The fetcher ended with the error; its position is the failed fetch's offset.
                let failed_at = self.fetchers.remove(&tp).map(|f| f.position());
                match (error.error_code(), failed_at) {
                    (Some(ErrorCode::OffsetOutOfRange), Some(offset)) => {
                        tracing::debug!(%tp, offset, "offset out of range");
                        self.buffer.discard(&tp);
                        self.assignment
                            .out_of_range(&tp, offset, self.options.auto_offset_reset)
                    }
                    _ => {
                        tracing::debug!(%tp, %error, "fetch failed");
                        self.deferred_error.get_or_insert(error);
                        Ok(())
                    }
                }
            }
        }
    }

    /// Makes the lookups the positions need (one `ListOffsets` per partition).
    async fn look_up_positions(&mut self) -> Result<(), ClientError> {
        for (tp, spec) in self.assignment.lookups(self.options.auto_offset_reset)? {
            self.look_up(&tp, spec).await?;
        }
        Ok(())
    }

    /// One lookup; a timestamp after the last record means the high watermark.
    async fn look_up(&mut self, tp: &TopicPartition, spec: OffsetSpec) -> Result<(), ClientError> {
        let found = self
            .client
            .list_offsets(&tp.topic, tp.partition, spec)
            .await?
            .offset;
        let offset = match found {
            Some(offset) => offset,
            None => self
                .client
                .list_offsets(&tp.topic, tp.partition, OffsetSpec::Latest)
                .await?
                .offset
                .unwrap_or(0),
        };
        tracing::debug!(%tp, ?spec, offset, "position looked up");
        self.assignment.lookup_done(tp, spec, offset);
        Ok(())
    }

    /// A fetcher for every fetchable partition without one, starting where the buffer's data
    /// for it ends (or at the position); none for the others.
    fn start_fetchers(&mut self) -> Result<(), ClientError> {
        let fetchable = self.assignment.fetchable();
        let idle: Vec<TopicPartition> = self
            .fetchers
            .keys()
            .filter(|tp| !fetchable.iter().any(|(f, _)| f == *tp))
            .cloned()
            .collect();
        for tp in idle {
            self.stop(&tp);
        }
        for (tp, position) in fetchable {
            if self.fetchers.contains_key(&tp) {
                continue;
            }
            let from = self.buffer.buffered_until(&tp).unwrap_or(position);
            let fetcher = PartitionConsumer::new(
                &self.client,
                &tp.topic,
                tp.partition,
                from,
                self.options.fetch,
            )?;
            self.fetchers.insert(tp, fetcher);
        }
        Ok(())
    }

    /// Stops `tp`'s fetcher and drops what it fetched ahead.
    fn stop(&mut self, tp: &TopicPartition) {
        self.fetchers.remove(tp);
        self.buffer.discard(tp);
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use tributary_record::Record;

    use super::*;
    use crate::Acks;
    use crate::fake_broker::FakeBroker;

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

    fn options(reset: OffsetReset) -> ConsumerOptions {
        ConsumerOptions {
            fetch: FetchOptions {
                max_bytes: 300,
                max_wait_ms: 50,
                min_bytes: 1,
            },
            auto_offset_reset: reset,
            max_poll_records: 7,
            group: None,
        }
    }

    /// Polls until `count` records arrived (or 5 s passed), as (partition, offset).
    async fn poll_n(consumer: &mut Consumer, count: usize) -> Vec<(i32, i64)> {
        let started = std::time::Instant::now();
        let mut seen = Vec::new();
        while seen.len() < count && started.elapsed() < Duration::from_secs(5) {
            let polled = consumer.poll(Duration::from_millis(100)).await.unwrap();
            assert!(polled.len() <= 7);
            seen.extend(polled.iter().map(|r| (r.partition, r.offset)));
        }
        seen
    }

    fn of(seen: &[(i32, i64)], partition: i32) -> Vec<i64> {
        seen.iter()
            .filter(|(p, _)| *p == partition)
            .map(|(_, o)| *o)
            .collect()
    }

    #[tokio::test]
    async fn polls_assigned_partitions_seeks_and_pauses() {
        let (address, broker) = FakeBroker::start().await;
        broker.create("t", 2);
        let client = Client::connect(&address).await.unwrap();
        for partition in 0..2 {
            client
                .produce("t", partition, &records(0, 10), Acks::Leader)
                .await
                .unwrap();
        }
        let mut consumer = Consumer::new(&client, options(OffsetReset::Earliest)).unwrap();
        let (p0, p1) = (TopicPartition::new("t", 0), TopicPartition::new("t", 1));
        consumer.assign([p0.clone(), p1.clone()]);
        assert!(matches!(
            consumer.subscribe(&["t"]),
            Err(ClientError::InvalidArgument {
                argument: "group",
                ..
            })
        ));
        let seen = poll_n(&mut consumer, 20).await;
        assert_eq!(of(&seen, 0), (0..10).collect::<Vec<_>>());
        assert_eq!(of(&seen, 1), (0..10).collect::<Vec<_>>());
        assert_eq!(consumer.position(&p0).await.unwrap(), 10);

        // seek back, seek to a timestamp, pause the other partition.
        consumer.seek(&p0, 4).unwrap();
        consumer.seek_to_timestamp([&p1], 1007).unwrap();
        assert_eq!(consumer.position(&p1).await.unwrap(), 7);
        let seen = poll_n(&mut consumer, 9).await;
        assert_eq!(of(&seen, 0), (4..10).collect::<Vec<_>>());
        assert_eq!(of(&seen, 1), vec![7, 8, 9]);

        consumer.pause([&p1]).unwrap();
        assert_eq!(consumer.paused(), vec![p1.clone()]);
        client
            .produce("t", 1, &records(10, 2), Acks::Leader)
            .await
            .unwrap();
        client
            .produce("t", 0, &records(10, 1), Acks::Leader)
            .await
            .unwrap();
        let seen = poll_n(&mut consumer, 1).await;
        assert_eq!(seen, vec![(0, 10)]);
        assert!(
            consumer
                .poll(Duration::from_millis(100))
                .await
                .unwrap()
                .is_empty()
        );
        consumer.resume([&p1]).unwrap();
        assert_eq!(poll_n(&mut consumer, 2).await, vec![(1, 10), (1, 11)]);

        // seek_to_beginning / seek_to_end are resolved lazily.
        consumer.seek_to_end([&p0]).unwrap();
        consumer.seek_to_beginning([&p1]).unwrap();
        assert_eq!(consumer.position(&p0).await.unwrap(), 11);
        let seen = poll_n(&mut consumer, 12).await;
        assert_eq!(of(&seen, 1), (0..12).collect::<Vec<_>>());
        assert!(of(&seen, 0).is_empty());
        // A timestamp after every record: the end.
        consumer.seek_to_timestamp([&p0], 99_999).unwrap();
        assert_eq!(consumer.position(&p0).await.unwrap(), 11);
        assert!(consumer.seek(&TopicPartition::new("t", 5), 0).is_err());
    }

    #[tokio::test]
    async fn reset_policy_without_a_position_and_out_of_range() {
        let (address, broker) = FakeBroker::start().await;
        broker.create("t", 1);
        let client = Client::connect(&address).await.unwrap();
        client
            .produce("t", 0, &records(0, 5), Acks::Leader)
            .await
            .unwrap();
        let p0 = TopicPartition::new("t", 0);

        let mut none = Consumer::new(&client, options(OffsetReset::None)).unwrap();
        none.assign([p0.clone()]);
        let error = none.poll(Duration::from_millis(50)).await.unwrap_err();
        assert!(matches!(error, ClientError::NoOffset { .. }), "{error}");
        none.seek(&p0, 50).unwrap();
        let error = none.poll(Duration::from_secs(5)).await.unwrap_err();
        assert!(
            matches!(error, ClientError::OffsetOutOfRange { offset: 50, .. }),
            "{error}"
        );
        assert_eq!(none.position(&p0).await.unwrap(), 50);
        none.seek(&p0, 3).unwrap();
        assert_eq!(poll_n(&mut none, 2).await, vec![(0, 3), (0, 4)]);

        let mut earliest = Consumer::new(&client, options(OffsetReset::Earliest)).unwrap();
        earliest.assign([p0.clone()]);
        earliest.seek(&p0, 50).unwrap();
        assert_eq!(poll_n(&mut earliest, 5).await.len(), 5);

        let mut latest = Consumer::new(&client, options(OffsetReset::Latest)).unwrap();
        latest.assign([p0.clone()]);
        latest.seek(&p0, 50).unwrap();
        assert!(
            latest
                .poll(Duration::from_millis(300))
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(latest.position(&p0).await.unwrap(), 5);
        client
            .produce("t", 0, &records(5, 1), Acks::Leader)
            .await
            .unwrap();
        assert_eq!(poll_n(&mut latest, 1).await, vec![(0, 5)]);
        assert!(
            Consumer::new(
                &client,
                ConsumerOptions {
                    max_poll_records: 0,
                    ..ConsumerOptions::default()
                }
            )
            .is_err()
        );
    }
}
