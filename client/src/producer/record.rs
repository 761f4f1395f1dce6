//! What an application hands the [`Producer`](super::Producer) and what it gets back.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tributary_record::{Header, Record};

use super::batch::BatchResult;
use super::error::ProduceError;

/// A record to send: the topic, an optional partition, key, value, timestamp and headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerRecord {
    /// The topic.
    pub topic: String,
    /// The partition; `None` lets the producer's [`Partitioner`](super::Partitioner) choose.
    pub partition: Option<i32>,
    /// The key; with the default partitioner it picks the partition (murmur2, as Kafka does).
    pub key: Option<Bytes>,
    /// The value; `None` is a null value (a tombstone on compacted topics).
    pub value: Option<Bytes>,
    /// Create time in ms since the epoch; `None` is the time `send` is called.
    pub timestamp: Option<i64>,
    /// Headers, in order.
    pub headers: Vec<Header>,
}

impl ProducerRecord {
    /// A keyless record with `value` for `topic`.
    pub fn new(topic: impl Into<String>, value: impl Into<Bytes>) -> Self {
        ProducerRecord {
            topic: topic.into(),
            value: Some(value.into()),
            ..ProducerRecord::default()
        }
    }

    /// With `key`.
    #[must_use]
    pub fn with_key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// With an explicit partition (the partitioner is not consulted).
    #[must_use]
    pub fn with_partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// With a create time (ms since the epoch).
    #[must_use]
    pub fn with_timestamp(mut self, timestamp_ms: i64) -> Self {
        self.timestamp = Some(timestamp_ms);
        self
    }

    /// With one more header.
    #[must_use]
    pub fn with_header(mut self, key: impl Into<String>, value: Option<Bytes>) -> Self {
        self.headers.push(Header {
            key: key.into(),
            value,
        });
        self
    }

    /// An upper bound of the record's encoded size in a batch: what it counts against
    /// `buffer.memory` and `max.request.size` (Kafka's `estimateSizeInBytesUpperBound`, with
    /// 5-byte varints for each length and 10-byte ones for the deltas).
    pub fn size_upper_bound(&self) -> usize {
        let len = |bytes: &Option<Bytes>| bytes.as_ref().map_or(0, Bytes::len);
        let headers: usize = self
            .headers
            .iter()
            .map(|h| 10 + h.key.len() + len(&h.value))
            .sum();
        // length, attributes, timestamp delta, offset delta, key length, value length, header count
        5 + 1 + 10 + 5 + 5 + 5 + 5 + len(&self.key) + len(&self.value) + headers
    }

    pub(crate) fn into_record(self, now_ms: impl FnOnce() -> i64) -> (String, Option<i32>, Record) {
        let record = Record {
            key: self.key,
            value: self.value,
            timestamp: self.timestamp.unwrap_or_else(now_ms),
            headers: self.headers,
        };
        (self.topic, self.partition, record)
    }
}

/// Where an acknowledged record was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition the partitioner (or the record) chose.
    pub partition: i32,
    /// The record's offset; -1 with `acks=0` (the broker does not say).
    pub offset: i64,
    /// The record's create time, or the broker's append time if the topic uses LogAppendTime.
    pub timestamp: i64,
}

/// Resolves when the broker has acknowledged the record (or it failed for good): the record's
/// [`RecordMetadata`] or a [`ProduceError`]. Dropping it does not cancel the send.
///
/// A batch has one outcome shared by the futures of all its records; each future adds its
/// record's position in the batch to the batch's base offset.
#[derive(Debug)]
#[must_use = "the delivery future reports whether the record was written"]
pub struct DeliveryFuture {
    pub(crate) batch: BatchResult,
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
    /// The record's offset relative to its batch's base offset.
    pub(crate) relative_offset: u32,
    /// The record's create time.
    pub(crate) timestamp: i64,
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata, ProduceError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let outcome = std::task::ready!(Pin::new(&mut this.batch).poll(cx));
        Poll::Ready(match outcome {
            Ok(Ok(ack)) => Ok(RecordMetadata {
                topic: Arc::clone(&this.topic),
                partition: this.partition,
                offset: if ack.base_offset >= 0 {
                    ack.base_offset + i64::from(this.relative_offset)
                } else {
                    -1
                },
                timestamp: ack.log_append_time.unwrap_or(this.timestamp),
            }),
            Ok(Err(error)) => Err(error),
            // The batch was dropped without an outcome: the producer task stopped.
            Err(_dropped) => Err(ProduceError::Closed),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_bound_covers_the_encoded_size() {
        let record = ProducerRecord::new("t", vec![b'v'; 300])
            .with_key("key")
            .with_header("h", Some(Bytes::from_static(b"hv")))
            .with_timestamp(5);
        let bound = record.size_upper_bound();
        let (_, _, encoded) = record.into_record(|| 0);
        let mut builder = tributary_record::BatchBuilder::new();
        let empty = builder.size_in_bytes();
        builder.push(&encoded);
        let actual = builder.size_in_bytes() - empty;
        assert!(
            bound >= actual && bound < actual + 40,
            "{bound} vs {actual}"
        );
    }
}
