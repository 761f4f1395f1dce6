//! The append path of a [`Log`]: validation outside the lock, then offsets, roll and one
//! write under it.

use bytes::BytesMut;
use tributary_record::{
    RecordError, TimestampType, set_base_offset, set_partition_leader_epoch, validate_batch,
    validate_records,
};

use std::collections::HashMap;

use super::batch::{PendingBatch, frame};
use super::log::LogState;
use super::producer_rebuild::sequence_of;
use super::producer_snapshot;
use super::producer_state::SequenceCheck;
use super::segment::{BatchMeta, Segment};
use super::{Log, LogConfig, LogError};

/// What an append did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the first appended record.
    pub base_offset: i64,
    /// Offset of the last appended record.
    pub last_offset: i64,
    /// The broker time stamped into the batches for `LogAppendTime` topics, else -1.
    pub log_append_time: i64,
    /// The log start offset after the append.
    pub log_start_offset: i64,
    /// Number of records appended.
    pub records: u32,
    /// Number of bytes appended.
    pub bytes: usize,
    /// The batches repeat one already in the log (an idempotent producer's retry): nothing
    /// was appended, and the offsets are those of the original.
    pub duplicate: bool,
}

impl Log {
    fn invalid(&self, batch_index: usize, source: RecordError) -> LogError {
        LogError::InvalidBatch {
            topic_partition: self.topic_partition.clone(),
            batch_index,
            source,
        }
    }

    /// Validates every batch in `batches` (one or more concatenated v2 batches from an
    /// untrusted producer: exact lengths, magic, CRC, records, size ≤ `max.message.bytes` per
    /// batch, no trailing bytes; a compressed batch is decompressed, at most
    /// `MAX_DECOMPRESSED_RECORDS_SIZE` bytes, to check its records and their count, and stored
    /// still compressed, as produced), then assigns offsets from the log end offset, stamps
    /// `leader_epoch` (and the append time for `LogAppendTime` topics) and appends them.
    /// When `leader_epoch` is not the log's latest epoch, it is recorded as starting at the
    /// append's first offset and `leader-epoch-checkpoint` is rewritten.
    ///
    /// Batches of an idempotent producer (producer id ≥ 0) must continue its sequence (see
    /// `producer_state.rs`): an exact repeat of one of its last 5 batches appends nothing and
    /// answers the original's offsets (`AppendInfo::duplicate`); a gap, a reordering or a
    /// fenced epoch is [`LogError::Sequence`].
    ///
    /// All or nothing: on a validation error nothing is appended; on an I/O error the segment
    /// is truncated back to its previous size, so the log stays consistent and usable.
    pub fn append_as_leader(
        &self,
        batches: BytesMut,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        let (max_message_bytes, timestamp_type) = {
            let config = self.config.read().unwrap_or_else(|p| p.into_inner());
            (config.max_message_bytes, config.message_timestamp_type)
        };
        let bytes = batches.freeze();
        let mut pending = frame(&bytes, &self.topic_partition, |index, header, batch| {
            let size = header.total_size();
            if size > max_message_bytes as usize {
                return Err(LogError::MessageTooLarge {
                    topic_partition: self.topic_partition.clone(),
                    size,
                    max: max_message_bytes,
                });
            }
            if header.records_count == 0 {
                return Err(self.invalid(
                    index,
                    RecordError::InvalidHeader {
                        reason: "batch has no records",
                    },
                ));
            }
            validate_records(&batch)
                .map(|_| ())
                .map_err(|e| self.invalid(index, e))
        })?;
        // The validation slices are gone, so this is the same buffer, not a copy.
        let mut buf = bytes
            .try_into_mut()
            .unwrap_or_else(|shared| BytesMut::from(&shared[..]));
        let log_append_time = timestamp_type == TimestampType::LogAppendTime;
        if log_append_time {
            for batch in &mut pending {
                tributary_record::set_log_append_time(
                    &mut buf[batch.position..batch.position + batch.header.total_size()],
                    now_ms,
                );
                batch.header.max_timestamp = now_ms;
            }
        }
        let mut info = self.append_locked(&mut buf, &pending, true, leader_epoch, now_ms)?;
        if log_append_time {
            info.log_append_time = now_ms;
        }
        Ok(info)
    }

    /// Appends batches fetched from the leader **unchanged** (offsets and leader epochs kept):
    /// each batch's framing, magic and CRC are checked (`InvalidBatch`; compressed records are
    /// not decompressed: the leader validated them and the CRC covers them), and the first must
    /// start at the log end offset with every next one starting where the previous ended
    /// (`NonContiguousAppend`; when `cleanup.policy` includes `compact`, a batch may also
    /// start later, past batches the leader's cleaner removed); nothing is appended otherwise.
    /// Idempotent producers' batches update the producer state unchecked (the leader checked
    /// them). Every batch whose
    /// `partition_leader_epoch` differs from the log's latest epoch updates the leader epoch
    /// cache (the epoch starts at the batch's base offset), which is then checkpointed. Rolls
    /// and indexes as for leader appends.
    pub fn append_as_follower(&self, batches: BytesMut) -> Result<AppendInfo, LogError> {
        let bytes = batches.freeze();
        let pending = frame(&bytes, &self.topic_partition, |index, _, batch| {
            validate_batch(&batch)
                .map(|_| ())
                .map_err(|e| self.invalid(index, e))
        })?;
        let mut buf = bytes
            .try_into_mut()
            .unwrap_or_else(|shared| BytesMut::from(&shared[..]));
        self.append_locked(&mut buf, &pending, false, 0, super::now_ms())
    }

    /// The locked half of an append: offsets, roll, write, bookkeeping, `flush.messages`.
    fn append_locked(
        &self,
        buf: &mut BytesMut,
        pending: &[PendingBatch],
        assign_offsets: bool,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        let config = self.config();
        let records: u32 = pending.iter().map(|b| b.header.records_count as u32).sum();
        let mut metas = Vec::with_capacity(pending.len());
        let mut state = self.lock();
        if state.closed {
            return Err(LogError::Closed {
                topic_partition: self.topic_partition.clone(),
            });
        }
        let mut next_offset = state.log_end_offset();
        let mut epochs = Vec::new();
        let mut producers = HashMap::new();
        for batch in pending {
            let mut header = batch.header;
            if assign_offsets {
                let slice = &mut buf[batch.position..];
                set_base_offset(slice, next_offset);
                set_partition_leader_epoch(slice, leader_epoch);
                header.base_offset = next_offset;
                header.partition_leader_epoch = leader_epoch;
            } else if header.base_offset < next_offset
                || (header.base_offset != next_offset && !config.cleanup_policy.compact)
            {
                // A compacted leader log has gaps where the cleaner removed whole batches
                // (offsets never change), so a compacted follower accepts a forward jump.
                return Err(LogError::NonContiguousAppend {
                    topic_partition: self.topic_partition.clone(),
                    expected: next_offset,
                    found: header.base_offset,
                });
            }
            if let Some(sequence) = sequence_of(&header) {
                let (producer_id, epoch) = (header.producer_id, header.producer_epoch);
                if assign_offsets {
                    let check = state
                        .producers
                        .check(
                            &producers,
                            producer_id,
                            epoch,
                            sequence.first_sequence,
                            sequence.last_sequence,
                        )
                        .map_err(|source| LogError::Sequence {
                            topic_partition: self.topic_partition.clone(),
                            source,
                        })?;
                    if let SequenceCheck::Duplicate(original) = check {
                        return Ok(AppendInfo {
                            base_offset: original.first_offset,
                            last_offset: original.last_offset,
                            log_append_time: -1,
                            log_start_offset: state.log_start_offset,
                            records: 0,
                            bytes: 0,
                            duplicate: true,
                        });
                    }
                }
                state
                    .producers
                    .stage(&mut producers, producer_id, epoch, sequence);
            }
            // Cheap on the hot path: only an epoch change is remembered.
            let latest = epochs
                .last()
                .map(|&(epoch, _)| epoch)
                .or(state.leader_epochs.latest_epoch());
            if latest != Some(header.partition_leader_epoch) && header.partition_leader_epoch >= 0 {
                epochs.push((header.partition_leader_epoch, header.base_offset));
            }
            metas.push(BatchMeta::from(&header));
            next_offset = header.next_offset();
        }
        let base_offset = metas.first().map_or(next_offset, |m| m.base_offset);
        let last_offset = next_offset - 1;
        if state
            .active()
            .should_roll(buf.len() as u64, metas.len(), last_offset, now_ms, &config)
        {
            self.roll(&mut state, &config, now_ms)?;
        }
        state.active_mut().append(buf, &metas, &config)?;
        state.producers.commit(producers);
        let mut epochs_changed = false;
        for (epoch, start_offset) in epochs {
            let assigned = state.leader_epochs.assign(epoch, start_offset);
            if assigned.displaced_data(start_offset) {
                tracing::warn!(
                    topic_partition = %self.topic_partition, epoch, start_offset, ?assigned,
                    "a batch with an older leader epoch than the log's latest displaced epoch entries"
                );
            }
            epochs_changed |= state.leader_epochs_changed(assigned.changed());
        }
        state.unflushed_records += u64::from(records);
        self.publish_offsets(&state);
        let flush_now = state.unflushed_records >= config.flush_messages;
        let info = AppendInfo {
            base_offset,
            last_offset,
            log_append_time: -1,
            log_start_offset: state.log_start_offset,
            records,
            bytes: buf.len(),
            duplicate: false,
        };
        drop(state);
        if epochs_changed && let Err(error) = self.persist_leader_epochs() {
            // The batches are in the log; the next flush retries the file before it moves
            // the recovery point past them, so failing the append would only cause a retry
            // that duplicates them.
            tracing::error!(%error, topic_partition = %self.topic_partition, "could not write the leader epoch checkpoint");
        }
        if flush_now {
            self.flush()?;
        }
        Ok(info)
    }

    /// Starts a new active segment at the log end offset and seals the old one. Its fsync is
    /// left to the flush scheduler ([`Log::flush_sealed`]), which advances the recovery point.
    pub(crate) fn roll(
        &self,
        state: &mut LogState,
        config: &LogConfig,
        now_ms: i64,
    ) -> Result<(), LogError> {
        let base = state.log_end_offset();
        let segment = Segment::create(&self.dir, base, config, now_ms)?;
        if let Err(error) = state.active_mut().seal() {
            tracing::warn!(%error, topic_partition = %self.topic_partition, "could not trim the indexes of a rolled segment");
        }
        state.segments.push(segment);
        // A restart re-reads the producer state from here on, not from the log start.
        if let Err(error) = producer_snapshot::write(&self.dir, base, &state.producers) {
            tracing::warn!(%error, topic_partition = %self.topic_partition, "could not write the producer state snapshot");
        }
        tracing::debug!(topic_partition = %self.topic_partition, base, "rolled a new segment");
        Ok(())
    }
}
