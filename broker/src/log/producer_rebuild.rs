//! Rebuilding a partition's idempotent-producer state ([`ProducerStates`]) from its log: the
//! newest snapshot at or below the log end, then the headers of every batch from the
//! snapshot's offset on (one `pread` of a header per batch; the records are not read).

use std::path::Path;

use super::LogError;
use super::producer_snapshot;
use super::producer_state::{BatchSequence, ProducerStates, last_sequence};
use super::recovery::read_header_at;
use super::segment::Segment;
use tributary_record::BatchHeader;

/// The producer state of a log whose batches are `segments`, readable from `log_start` to
/// `log_end`.
pub(crate) fn rebuild(
    dir: &Path,
    segments: &[Segment],
    log_start: i64,
    log_end: i64,
) -> Result<ProducerStates, LogError> {
    let (from, mut states) = producer_snapshot::load_latest(dir, log_end)?
        .unwrap_or((log_start, ProducerStates::default()));
    states.remove_before(log_start);
    let from = from.max(log_start);
    for segment in segments.iter().filter(|s| s.next_offset() > from) {
        let snapshot = segment.read_snapshot(from.max(segment.base_offset()));
        let mut position = snapshot.start;
        while let Some(header) =
            read_header_at(&snapshot.file, &snapshot.path, position, snapshot.end)?
        {
            if header.last_offset() >= from {
                record(&mut states, &header);
            }
            position += header.total_size() as u64;
        }
    }
    Ok(states)
}

/// Records `header` in `states` if it is a batch of an idempotent producer.
pub(crate) fn record(states: &mut ProducerStates, header: &BatchHeader) {
    if let Some(batch) = sequence_of(header) {
        states.record(header.producer_id, header.producer_epoch, batch);
    }
}

/// The sequence range and offsets of a batch with a producer id; `None` for others.
pub(crate) fn sequence_of(header: &BatchHeader) -> Option<BatchSequence> {
    (header.producer_id >= 0 && header.base_sequence >= 0).then(|| BatchSequence {
        first_sequence: header.base_sequence,
        last_sequence: last_sequence(header.base_sequence, header.last_offset_delta),
        first_offset: header.base_offset,
        last_offset: header.last_offset(),
    })
}
