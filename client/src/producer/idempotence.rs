//! The idempotent producer's bookkeeping (Kafka's `TransactionManager` without transactions),
//! owned by the sender task: the producer id and epoch, the next sequence number of each
//! partition, and when a new producer id is needed. Pure apart from [`init_producer_id`].
//!
//! The rules that make retries safe:
//! - A batch gets its sequence numbers once, when the sender encodes it, in the partition's
//!   record order; every retry sends the same bytes, so the leader recognises a retry whose
//!   first attempt was written and answers it with the original offsets.
//! - The leader refuses a batch that does not continue the sequence with
//!   `OUT_OF_ORDER_SEQUENCE_NUMBER`. While an earlier batch of the same partition is waiting
//!   for its retry, that is expected (the later batch was in flight when the earlier one
//!   failed) and the batch is retried after it, in order.
//! - When a batch that was sent fails for good (its delivery timeout passed, or the broker
//!   refused it), the leader's idea of the sequence can no longer be known: the producer stops
//!   sending, waits until nothing is in flight, takes a **new producer id** and stamps the
//!   batches waiting for a retry again, numbering every partition from 0. `UNKNOWN_PRODUCER_ID`
//!   (the partition lost the producer's state, e.g. to retention) is handled the same way, and
//!   the batch that got it is retried under the new id.

use std::sync::Arc;

use tributary_proto::v1 as pb;

use super::batch::ProducerStamp;
use super::fast_hash::FastMap;
use crate::{Client, ClientError, ErrorCode};

const OPERATION: &str = "InitProducerId";

/// The sender's idempotence state.
#[derive(Debug, Default)]
pub(crate) struct Idempotence {
    /// The producer id and epoch in use; `None` before the first InitProducerId answer.
    producer: Option<(i64, i16)>,
    /// A batch failed for good (or a partition forgot the producer): take a new producer id
    /// before sending anything else.
    reset_needed: bool,
    /// The next sequence of each partition under `producer`.
    sequences: FastMap<Arc<str>, FastMap<i32, i32>>,
}

impl Idempotence {
    /// Whether a (new) producer id is needed before anything may be sent.
    pub(crate) fn needs_producer_id(&self) -> bool {
        self.producer.is_none() || self.reset_needed
    }

    /// Asks for a new producer id (see the module docs).
    pub(crate) fn request_reset(&mut self) {
        self.reset_needed = true;
    }

    /// Starts using `producer_id`/`epoch`: every partition's sequence restarts at 0.
    pub(crate) fn install(&mut self, producer_id: i64, epoch: i16) {
        self.producer = Some((producer_id, epoch));
        self.reset_needed = false;
        self.sequences.clear();
    }

    /// The stamp of the next batch of `topic`/`partition`, holding `records` records, and
    /// advances the partition's sequence.
    ///
    /// # Panics
    /// Before a producer id was installed (the sender sends nothing until then).
    pub(crate) fn stamp(
        &mut self,
        topic: &Arc<str>,
        partition: i32,
        records: usize,
    ) -> ProducerStamp {
        let (producer_id, epoch) = self.producer.expect("a producer id is installed");
        if !self.sequences.contains_key(&**topic) {
            self.sequences.insert(Arc::clone(topic), FastMap::default());
        }
        let next = self
            .sequences
            .get_mut(&**topic)
            .expect("inserted above")
            .entry(partition)
            .or_insert(0);
        let base_sequence = *next;
        *next = advance(base_sequence, records);
        ProducerStamp {
            producer_id,
            epoch,
            base_sequence,
        }
    }
}

/// The sequence `records` after `sequence` (Kafka's wrap: after `i32::MAX` comes 0).
pub(crate) fn advance(sequence: i32, records: usize) -> i32 {
    let modulus = i64::from(i32::MAX) + 1;
    ((i64::from(sequence) + records as i64) % modulus) as i32
}

/// How the idempotent producer treats a broker code beyond the usual retriable ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SequenceFailure {
    /// Not a sequence matter: the usual rules apply.
    Usual,
    /// Retry it after the earlier batch it waits for.
    RetryInOrder,
    /// Retry it under a new producer id.
    RetryAfterReset,
}

/// The treatment of `error` for a batch of a partition that has (or not) an earlier batch
/// waiting for a retry.
pub(crate) fn sequence_failure(
    error: &ClientError,
    earlier_batch_pending: bool,
) -> SequenceFailure {
    match error {
        ClientError::Broker {
            code: ErrorCode::OutOfOrderSequenceNumber,
            ..
        } if earlier_batch_pending => SequenceFailure::RetryInOrder,
        ClientError::Broker {
            code: ErrorCode::UnknownProducerId,
            ..
        } => SequenceFailure::RetryAfterReset,
        _ => SequenceFailure::Usual,
    }
}

/// Asks for a producer id: the bootstrap broker, then the other known brokers.
pub(crate) async fn init_producer_id(client: &Client) -> Result<(i64, i16), ClientError> {
    let mut first_error = None;
    for mut service in client.router.metadata_sources() {
        let answer = service
            .init_producer_id(pb::InitProducerIdRequest::default())
            .await
            .map_err(|source| ClientError::Rpc {
                operation: OPERATION,
                source,
            })
            .and_then(|response| {
                let response = response.into_inner();
                let code = ErrorCode::from_wire(response.error_code);
                if code == ErrorCode::None {
                    Ok((response.producer_id, response.producer_epoch as i16))
                } else {
                    Err(ClientError::Broker {
                        topic: String::new(),
                        partition: None,
                        code,
                        message: response.error_message,
                    })
                }
            });
        match answer {
            Ok(producer) => return Ok(producer),
            Err(error) => {
                tracing::debug!(%error, "InitProducerId failed; trying the next broker");
                first_error.get_or_insert(error);
            }
        }
    }
    Err(first_error.expect("the bootstrap broker is always asked"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_advance_per_partition_and_wrap() {
        assert_eq!(advance(0, 5), 5);
        assert_eq!(advance(i32::MAX, 1), 0);
        assert_eq!(advance(i32::MAX - 1, 3), 1);
        let mut idempotence = Idempotence::default();
        assert!(idempotence.needs_producer_id());
        idempotence.install(42, 0);
        assert!(!idempotence.needs_producer_id());
        let topic: Arc<str> = Arc::from("t");
        let other: Arc<str> = Arc::from("u");
        let stamps = [
            idempotence.stamp(&topic, 0, 3),
            idempotence.stamp(&topic, 0, 2),
            idempotence.stamp(&topic, 1, 4),
            idempotence.stamp(&other, 0, 1),
        ];
        let firsts: Vec<i32> = stamps.iter().map(|s| s.base_sequence).collect();
        assert_eq!(firsts, [0, 3, 0, 0]);
        assert!(stamps.iter().all(|s| s.producer_id == 42 && s.epoch == 0));
        // A reset blocks sending until the new id is in; then every partition starts again.
        idempotence.request_reset();
        assert!(idempotence.needs_producer_id());
        idempotence.install(43, 0);
        let stamp = idempotence.stamp(&topic, 0, 1);
        assert_eq!((stamp.producer_id, stamp.base_sequence), (43, 0));
    }

    #[test]
    fn sequence_errors_are_retried_only_when_that_can_work() {
        let broker = |code| ClientError::Broker {
            topic: "t".into(),
            partition: Some(0),
            code,
            message: String::new(),
        };
        let table = [
            (
                ErrorCode::OutOfOrderSequenceNumber,
                true,
                SequenceFailure::RetryInOrder,
            ),
            (
                ErrorCode::OutOfOrderSequenceNumber,
                false,
                SequenceFailure::Usual,
            ),
            (
                ErrorCode::UnknownProducerId,
                false,
                SequenceFailure::RetryAfterReset,
            ),
            (
                ErrorCode::InvalidProducerEpoch,
                true,
                SequenceFailure::Usual,
            ),
            (ErrorCode::NotLeaderOrFollower, true, SequenceFailure::Usual),
        ];
        for (code, pending, expected) in table {
            assert_eq!(
                sequence_failure(&broker(code), pending),
                expected,
                "{code} {pending}"
            );
        }
    }
}
