//! Batch-level work of an append: splitting a request into framed batches.

use bytes::Bytes;
use tributary_record::{BatchHeader, BatchIter, RecordError};

use super::{LogError, TopicPartition};

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
