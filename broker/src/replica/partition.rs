//! One partition replica hosted by this broker: its log plus the replication state around it.
//!
//! In this single-broker milestone every partition has one replica, this broker is its leader
//! at leader epoch 0, and the ISR is just this broker, so the high watermark equals the log end
//! offset after every append. The replication milestone adds followers and the real ISR/HW
//! rules here.

use std::sync::Arc;

use bytes::BytesMut;
use tokio::sync::watch;

use crate::log::{AppendInfo, Log, LogError, TopicPartition};

/// A partition replica and its high watermark.
///
/// Invariant: `log_start_offset <= high_watermark <= log_end_offset`.
#[derive(Debug)]
pub struct Partition {
    topic_partition: TopicPartition,
    log: Arc<Log>,
    leader_epoch: i32,
    /// The high watermark; long-polling fetches wait on changes of this channel.
    high_watermark: watch::Sender<i64>,
}

impl Partition {
    /// Wraps an open log; this broker leads it at `leader_epoch`.
    pub fn new(topic_partition: TopicPartition, log: Arc<Log>, leader_epoch: i32) -> Self {
        let (high_watermark, _) = watch::channel(log.log_end_offset());
        Self {
            topic_partition,
            log,
            leader_epoch,
            high_watermark,
        }
    }

    /// Which partition this is.
    pub fn topic_partition(&self) -> &TopicPartition {
        &self.topic_partition
    }

    /// The underlying log.
    pub fn log(&self) -> &Arc<Log> {
        &self.log
    }

    /// The current leader epoch.
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch
    }

    /// Size of the in-sync replica set (always 1 before replication lands).
    pub fn isr_size(&self) -> usize {
        1
    }

    /// Offsets below this are committed and visible to consumers.
    pub fn high_watermark(&self) -> i64 {
        *self.high_watermark.borrow()
    }

    /// A receiver that sees every high watermark change (for long polls).
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.high_watermark.subscribe()
    }

    /// Appends producer batches as leader and advances the high watermark.
    pub fn append_as_leader(&self, batches: BytesMut, now_ms: i64) -> Result<AppendInfo, LogError> {
        let info = self
            .log
            .append_as_leader(batches, self.leader_epoch, now_ms)?;
        self.advance_high_watermark(self.log.log_end_offset());
        Ok(info)
    }

    /// Moves the high watermark forward (never backward: concurrent appenders may report
    /// their end offsets out of order).
    fn advance_high_watermark(&self, offset: i64) {
        self.high_watermark.send_if_modified(|hw| {
            if offset > *hw {
                *hw = offset;
                true
            } else {
                false
            }
        });
    }
}
