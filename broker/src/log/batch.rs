//! Batch-level work of an append: splitting a request into batches, and the one header edit
//! the record crate does not export (LogAppendTime stamping).
//!
//! The record crate keeps its field positions private; the log needs one more in-place edit
//! (LogAppendTime stamping), so the positions it touches are repeated here from the v2 layout
//! (`docs/record-format.md`): attributes at byte 21 (i16), max_timestamp at 35 (i64), CRC at
//! 17 (u32, covering bytes 21..end).

use bytes::Bytes;
use tributary_record::{
    Attributes, BatchHeader, BatchIter, RecordError, TimestampType, compute_crc,
};

use super::{LogError, TopicPartition};

const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
const MAX_TIMESTAMP_AT: usize = 35;

/// Sets attribute bit 3 (LogAppendTime) and `max_timestamp = now_ms` in the single batch
/// `batch`, then recomputes its CRC (both fields are CRC-covered).
pub(crate) fn stamp_log_append_time(batch: &mut [u8], now_ms: i64) {
    let attributes = i16::from_be_bytes([batch[ATTRIBUTES_AT], batch[ATTRIBUTES_AT + 1]]);
    let attributes = Attributes(attributes).with_timestamp_type(TimestampType::LogAppendTime);
    batch[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.0.to_be_bytes());
    batch[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&now_ms.to_be_bytes());
    let crc = compute_crc(batch);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}

/// A framed (and validated) batch of an append request, waiting for its offset.
#[derive(Debug)]
pub(crate) struct PendingBatch {
    /// Byte position of the batch in the request.
    pub(crate) position: usize,
    /// Its header as parsed (offsets are assigned later).
    pub(crate) header: BatchHeader,
}

/// Splits `bytes` into batches, checking exact framing (at least one batch, no trailing
/// bytes) and running `check` on each (index, header, the batch's bytes). Every framing
/// problem is `InvalidBatch` with the index of the offending batch.
pub(crate) fn frame(
    bytes: &Bytes,
    topic_partition: &TopicPartition,
    mut check: impl FnMut(usize, &BatchHeader, Bytes) -> Result<(), LogError>,
) -> Result<Vec<PendingBatch>, LogError> {
    let invalid = |batch_index, source| LogError::InvalidBatch {
        topic_partition: topic_partition.clone(),
        batch_index,
        source,
    };
    let mut batches = Vec::new();
    let mut iter = BatchIter::new(bytes);
    let mut position = 0;
    for (index, item) in iter.by_ref().enumerate() {
        let (header, _) = item.map_err(|e| invalid(index, e))?;
        let size = header.total_size();
        check(index, &header, bytes.slice(position..position + size))?;
        batches.push(PendingBatch { position, header });
        position += size;
    }
    if iter.consumed() != bytes.len() || batches.is_empty() {
        let rest = &bytes[iter.consumed()..];
        let error = match BatchHeader::parse(rest) {
            Err(error) => error,
            Ok(header) => RecordError::LengthMismatch {
                declared: header.total_size(),
                actual: rest.len(),
            },
        };
        return Err(invalid(batches.len(), error));
    }
    Ok(batches)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use tributary_record::{BatchBuilder, Record, validate_batch};

    use super::*;

    #[test]
    fn log_append_time_stamp_keeps_the_batch_valid() {
        let mut builder = BatchBuilder::new();
        builder.push(&Record {
            value: Some(Bytes::from_static(b"v")),
            timestamp: 5,
            ..Record::default()
        });
        let mut batch = builder.build_vec();
        stamp_log_append_time(&mut batch, 1234);
        let header = validate_batch(&batch).expect("valid after stamping");
        assert_eq!(header.max_timestamp, 1234);
        assert_eq!(
            header.attributes.timestamp_type(),
            TimestampType::LogAppendTime
        );
        assert_eq!(header.first_timestamp, 5);
    }
}
