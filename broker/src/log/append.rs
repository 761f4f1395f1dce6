//! The append path of a [`Log`]: validation outside the lock, then offsets, roll and one
//! write under it.

use bytes::BytesMut;
use tributary_record::{
    RecordError, TimestampType, set_base_offset, set_partition_leader_epoch, validate_batch,
    validate_records,
};

use super::batch::{PendingBatch, frame};
use super::log::LogState;
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
    /// batch, no trailing bytes), then assigns offsets from the log end offset, stamps
    /// `leader_epoch` (and the append time for `LogAppendTime` topics) and appends them.
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

    /// Appends batches that already carry offsets (follower replication): they must start at
    /// the log end offset and be contiguous, and each batch's CRC is checked.
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
        for batch in pending {
            let mut header = batch.header;
            if assign_offsets {
                let slice = &mut buf[batch.position..];
                set_base_offset(slice, next_offset);
                set_partition_leader_epoch(slice, leader_epoch);
                header.base_offset = next_offset;
            } else if header.base_offset != next_offset {
                return Err(LogError::NonContiguousAppend {
                    topic_partition: self.topic_partition.clone(),
                    expected: next_offset,
                    found: header.base_offset,
                });
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
        };
        drop(state);
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
        tracing::debug!(topic_partition = %self.topic_partition, base, "rolled a new segment");
        Ok(())
    }
}
