//! One partition replica hosted by this broker: its log, its role and leadership as the
//! controller last set them, and its high watermark. The rules are in the
//! [module documentation](super).

use std::sync::{Arc, RwLock, RwLockReadGuard};

use bytes::BytesMut;
use tokio::sync::watch;
use tributary_zk_layout::{BrokerId, LeaderEpoch};

use super::role::{LeaderAndIsrState, Role, RoleChange};
use crate::log::{AppendInfo, Log, LogError, TopicPartition};

/// Why an append as leader was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// This broker does not lead the partition (any more).
    #[error(
        "{topic_partition}: this broker is not the leader (it is {role:?}); the leader is broker {leader} at leader epoch {leader_epoch}"
    )]
    NotLeader {
        /// The partition.
        topic_partition: TopicPartition,
        /// This broker's role for it.
        role: Role,
        /// The leader as last set by LeaderAndIsr ([`BrokerId::NONE`] when none).
        leader: BrokerId,
        /// Its leader epoch.
        leader_epoch: LeaderEpoch,
    },
    /// `acks=-1` and the ISR is smaller than `min.insync.replicas`; nothing was written.
    #[error(
        "{topic_partition}: {isr} in-sync replicas, min.insync.replicas is {min_insync_replicas}; nothing was written"
    )]
    NotEnoughReplicas {
        /// The partition.
        topic_partition: TopicPartition,
        /// The ISR size.
        isr: usize,
        /// The required minimum.
        min_insync_replicas: usize,
    },
    /// The log refused the batches or failed to write them.
    #[error(transparent)]
    Log(#[from] LogError),
}

/// Role and leadership, changed together under one lock.
#[derive(Debug, Clone)]
struct Leadership {
    role: Role,
    state: LeaderAndIsrState,
}

/// A partition replica.
///
/// Invariant: `log_start_offset <= high_watermark <= log_end_offset`.
#[derive(Debug)]
pub struct Partition {
    topic_partition: TopicPartition,
    log: Arc<Log>,
    /// Appends hold the read lock for their whole duration, so a role change (write lock)
    /// never lands in the middle of one: every accepted batch carries the leader epoch it was
    /// accepted under, and no batch is accepted after leadership is lost.
    leadership: RwLock<Leadership>,
    /// The high watermark; long-polling fetches wait on changes of this channel (and are also
    /// woken, with the value unchanged, when the replica loses leadership).
    high_watermark: watch::Sender<i64>,
}

impl Partition {
    /// Wraps an open log with the role and leadership LeaderAndIsr gave it. The high watermark
    /// starts at `stored_high_watermark` (the last checkpointed one, already clamped to the
    /// log) or, without one, at the log end offset; a leader then moves it to its log end
    /// offset (the pre-replication rule, as in [`Partition::change_role`]).
    pub fn new(
        topic_partition: TopicPartition,
        log: Arc<Log>,
        role: Role,
        state: LeaderAndIsrState,
        stored_high_watermark: Option<i64>,
    ) -> Self {
        let initial = stored_high_watermark.unwrap_or_else(|| log.log_end_offset());
        let (high_watermark, _) = watch::channel(initial);
        let partition = Self {
            topic_partition,
            log,
            leadership: RwLock::new(Leadership { role, state }),
            high_watermark,
        };
        if role == Role::Leader {
            partition.advance_high_watermark(partition.log.log_end_offset());
        }
        partition
    }

    /// Which partition this is.
    pub fn topic_partition(&self) -> &TopicPartition {
        &self.topic_partition
    }

    /// The underlying log.
    pub fn log(&self) -> &Arc<Log> {
        &self.log
    }

    fn read_leadership(&self) -> RwLockReadGuard<'_, Leadership> {
        self.leadership
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// This broker's role for the partition.
    pub fn role(&self) -> Role {
        self.read_leadership().role
    }

    /// Whether this broker leads the partition.
    pub fn is_leader(&self) -> bool {
        self.role() == Role::Leader
    }

    /// The leadership as the controller last set it.
    pub fn leader_and_isr(&self) -> LeaderAndIsrState {
        self.read_leadership().state.clone()
    }

    /// The leader's broker id ([`BrokerId::NONE`] when the partition has none).
    pub fn leader(&self) -> BrokerId {
        self.read_leadership().state.leader
    }

    /// The current leader epoch.
    pub fn leader_epoch(&self) -> LeaderEpoch {
        self.read_leadership().state.leader_epoch
    }

    /// Size of the in-sync replica set as the controller last set it.
    pub fn isr_size(&self) -> usize {
        self.read_leadership().state.isr.len()
    }

    /// Offsets below this are committed and visible to consumers.
    pub fn high_watermark(&self) -> i64 {
        *self.high_watermark.borrow()
    }

    /// A receiver that sees every high watermark change (for long polls).
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.high_watermark.subscribe()
    }

    /// Appends producer batches as leader, stamping the current leader epoch, and advances
    /// the high watermark. With `min_insync_replicas` (`acks=-1`), refuses the append when
    /// the ISR is smaller.
    pub fn append_as_leader(
        &self,
        batches: BytesMut,
        now_ms: i64,
        min_insync_replicas: Option<usize>,
    ) -> Result<AppendInfo, AppendError> {
        let leadership = self.read_leadership();
        if leadership.role != Role::Leader {
            return Err(AppendError::NotLeader {
                topic_partition: self.topic_partition.clone(),
                role: leadership.role,
                leader: leadership.state.leader,
                leader_epoch: leadership.state.leader_epoch,
            });
        }
        let isr = leadership.state.isr.len();
        if let Some(min) = min_insync_replicas
            && isr < min
        {
            return Err(AppendError::NotEnoughReplicas {
                topic_partition: self.topic_partition.clone(),
                isr,
                min_insync_replicas: min,
            });
        }
        let info = self
            .log
            .append_as_leader(batches, leadership.state.leader_epoch.0, now_ms)?;
        // Pre-replication rule: the leader's HW is its LEO.
        self.advance_high_watermark(self.log.log_end_offset());
        Ok(info)
    }

    /// Applies a LeaderAndIsr decision (`state`) or a StopReplica (`state` is `None`: the
    /// leadership is kept, only the role changes). The caller has fenced the leader epoch.
    pub(super) fn change_role(&self, role: Role, state: Option<LeaderAndIsrState>) -> RoleChange {
        let change = {
            let mut leadership = self
                .leadership
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(state) = state {
                debug_assert!(
                    state.leader_epoch >= leadership.state.leader_epoch,
                    "{}: leader epoch must not go back",
                    self.topic_partition
                );
                leadership.state = state;
            }
            let change = RoleChange {
                from: Some(leadership.role),
                to: role,
            };
            leadership.role = role;
            change
        };
        if change.gains_leadership() {
            // Pre-replication rule: the new leader's HW is its LEO.
            self.advance_high_watermark(self.log.log_end_offset());
        }
        if change.loses_leadership() {
            self.wake_waiters();
        }
        change
    }

    /// Wakes long polls without moving the high watermark, so they re-check the role.
    pub(super) fn wake_waiters(&self) {
        self.high_watermark.send_modify(|_| {});
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
