//! The [`Producer`](super::Producer)'s settings, named and defaulted like Kafka's producer configs.

use std::time::Duration;

use tributary_record::Compression;

use super::{Acks, Partitioner};
use crate::ClientError;

/// Settings of a [`Producer`](super::Producer). Each field is the Kafka producer config named in
/// its doc, with Kafka's default (2.8, without idempotence) unless the doc says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerOptions {
    /// `acks` (default 1): replicas that must have a batch before it is acknowledged.
    pub acks: Acks,
    /// `batch.size` (16384): a partition's open batch is closed and sent once it holds this many
    /// bytes. A single record larger than this goes alone in a batch of its own.
    pub batch_size: usize,
    /// `linger.ms` (0): how long an open batch waits for more records before it is sent. With 0
    /// it leaves as soon as a request slot to its leader is free; batches still form while all
    /// slots are busy.
    pub linger: Duration,
    /// `buffer.memory` (32 MiB): bytes of records accepted by `send` and not yet acknowledged or
    /// failed. When they are used up `send` waits.
    pub buffer_memory: usize,
    /// `max.block.ms` (60 s): how long `send` may wait for buffer memory and for the topic's
    /// metadata before it fails.
    pub max_block: Duration,
    /// `max.in.flight.requests.per.connection` (5): produce requests sent to one broker and not
    /// yet answered. 1 keeps the order of a partition's records even when a batch fails and a
    /// later one succeeds (see the ordering notes on [`Producer`](super::Producer)).
    pub max_in_flight_requests_per_connection: usize,
    /// `max.request.size` (1 MiB): the largest record accepted, and the most batch bytes put
    /// into one request (a single larger batch still goes alone).
    pub max_request_size: usize,
    /// `request.timeout.ms` (30 s): how long the broker waits for `acks=all` replication, and
    /// how long the producer waits for an answer before it gives up on the connection and
    /// retries.
    pub request_timeout: Duration,
    /// `retry.backoff.ms` (100 ms): the pause before a failed batch is sent again.
    pub retry_backoff: Duration,
    /// `delivery.timeout.ms` (120 s): a record not acknowledged this long after `send` accepted
    /// it fails (retries included; `retries` is unbounded as in Kafka 2.1+). Must be at least
    /// `linger + request_timeout`.
    pub delivery_timeout: Duration,
    /// `partitioner.class` (Kafka's default partitioner): where records without an explicit
    /// partition go.
    pub partitioner: Partitioner,
    /// `compression.type` (none): the codec for each batch's records (gzip, snappy, lz4 or
    /// zstd). `batch_size` counts bytes before compression; a batch that would not get smaller
    /// is sent uncompressed.
    pub compression: Compression,
    /// `enable.idempotence` (false, as in Kafka 2.8): the producer takes a producer id from the
    /// cluster and numbers each partition's batches, so the leader drops a retried batch it
    /// already has and refuses one that would leave a gap: retries never duplicate or reorder
    /// records. Requires `acks` = all and at most 5 requests in flight per connection.
    pub idempotence: bool,
}

impl Default for ProducerOptions {
    fn default() -> Self {
        ProducerOptions {
            acks: Acks::Leader,
            batch_size: 16 * 1024,
            linger: Duration::ZERO,
            buffer_memory: 32 * 1024 * 1024,
            max_block: Duration::from_secs(60),
            max_in_flight_requests_per_connection: 5,
            max_request_size: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            retry_backoff: Duration::from_millis(100),
            delivery_timeout: Duration::from_secs(120),
            partitioner: Partitioner::Default,
            compression: Compression::None,
            idempotence: false,
        }
    }
}

impl ProducerOptions {
    /// Checks the settings against each other (Kafka refuses the same combinations).
    pub fn validate(&self) -> Result<(), ClientError> {
        let invalid = |argument: &'static str, reason: String| {
            Err(ClientError::InvalidArgument { argument, reason })
        };
        if self.batch_size == 0 {
            return invalid("batch.size", "must be positive".to_owned());
        }
        if self.max_in_flight_requests_per_connection == 0 {
            return invalid(
                "max.in.flight.requests.per.connection",
                "must be at least 1".to_owned(),
            );
        }
        if self.max_request_size == 0 || self.buffer_memory == 0 {
            return invalid(
                "max.request.size",
                "max.request.size and buffer.memory must be positive".to_owned(),
            );
        }
        if self.buffer_memory > u32::MAX as usize {
            return invalid("buffer.memory", "must be below 4 GiB".to_owned());
        }
        if self.request_timeout.as_millis() > i32::MAX as u128 || self.request_timeout.is_zero() {
            return invalid(
                "request.timeout.ms",
                "must be between 1 ms and i32::MAX ms".to_owned(),
            );
        }
        if self.idempotence && self.acks != Acks::All {
            return invalid(
                "enable.idempotence",
                format!("needs acks=all, not {:?}", self.acks),
            );
        }
        if self.idempotence && self.max_in_flight_requests_per_connection > 5 {
            return invalid(
                "enable.idempotence",
                "needs max.in.flight.requests.per.connection <= 5 (brokers remember 5 batches per producer)"
                    .to_owned(),
            );
        }
        if self.delivery_timeout < self.linger + self.request_timeout {
            return invalid(
                "delivery.timeout.ms",
                format!(
                    "{:?} is shorter than linger.ms + request.timeout.ms ({:?})",
                    self.delivery_timeout,
                    self.linger + self.request_timeout
                ),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_kafkas_and_valid() {
        let options = ProducerOptions::default();
        assert_eq!(options.batch_size, 16384);
        assert_eq!(options.buffer_memory, 33_554_432);
        assert_eq!(options.max_in_flight_requests_per_connection, 5);
        assert_eq!(options.delivery_timeout, Duration::from_secs(120));
        options.validate().unwrap();
        let too_short = ProducerOptions {
            delivery_timeout: Duration::from_secs(10),
            ..options
        };
        let error = too_short.validate().unwrap_err();
        assert!(error.to_string().contains("delivery.timeout.ms"), "{error}");
        let no_flight = ProducerOptions {
            max_in_flight_requests_per_connection: 0,
            ..options
        };
        assert!(no_flight.validate().is_err());
        let idempotent = ProducerOptions {
            idempotence: true,
            acks: Acks::All,
            ..options
        };
        idempotent.validate().unwrap();
        for bad in [
            ProducerOptions {
                acks: Acks::Leader,
                ..idempotent
            },
            ProducerOptions {
                max_in_flight_requests_per_connection: 6,
                ..idempotent
            },
        ] {
            let error = bad.validate().unwrap_err();
            assert!(error.to_string().contains("enable.idempotence"), "{error}");
        }
    }
}
