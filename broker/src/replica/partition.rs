//! One partition replica hosted by this broker: its log, its role and leadership as the
//! controller last set them, its high watermark and, as leader, its followers' progress. The
//! rules are in the [module documentation](super) and, pure, in [`super::isr`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard};

use bytes::BytesMut;
use tokio::sync::watch;
use tributary_zk_layout::{BrokerId, LeaderEpoch, ZkVersion};

use super::isr::{self, FollowerProgress, IsrUpdate};
use super::role::{LeaderAndIsrState, Role, RoleChange};
use crate::log::{AppendInfo, Log, LogError, TopicPartition};

/// Why a follower-side change (append, truncation) was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum FollowerError {
    /// The replica is no longer a follower at the leader epoch the fetcher works for (a
    /// LeaderAndIsr changed it); the fetcher drops the data.
    #[error(
        "{topic_partition}: not a follower at leader epoch {expected} any more (role {role:?}, leader epoch {current})"
    )]
    NotFollower {
        /// The partition.
        topic_partition: TopicPartition,
        /// The role now.
        role: Role,
        /// The epoch the fetcher fetched for.
        expected: LeaderEpoch,
        /// The epoch now.
        current: LeaderEpoch,
    },
    /// The log refused the batches or failed.
    #[error(transparent)]
    Log(#[from] LogError),
}

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
    /// +1 every time this replica becomes leader: an `acks=-1` wait that sees another value
    /// knows its records may have been truncated in between.
    generation: u64,
}

/// What a leader tracks about replication. Reset when this broker becomes leader.
#[derive(Debug, Default)]
struct LeaderProgress {
    /// Every other replica's progress, from its fetches.
    followers: BTreeMap<BrokerId, FollowerProgress>,
    /// The LEO when the current leader epoch began (the epoch's start offset): a follower
    /// joins the ISR only once it has reached it.
    epoch_start_offset: i64,
    /// An ISR change handed to the ISR writer and not confirmed yet; no other is proposed
    /// meanwhile. For the high watermark the ISR counts as the union of both (a follower
    /// being added must already have the records), so it is never overstated.
    pending: Option<IsrUpdate>,
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
    /// Leader-side replication state. Lock order: `leadership` before `progress`.
    progress: Mutex<LeaderProgress>,
    /// The high watermark; consumer long polls and `acks=-1` produces wait on changes of this
    /// channel (and are also woken, with the value unchanged, when the replica loses
    /// leadership or its ISR changes).
    high_watermark: watch::Sender<i64>,
    /// The log end offset after leader appends: follower long polls wait on it, so a
    /// follower's fetch answers as soon as there is something to copy.
    log_end: watch::Sender<i64>,
}

impl Partition {
    /// Wraps an open log with the role and leadership LeaderAndIsr gave it. The high watermark
    /// starts at `stored_high_watermark` (the last checkpointed one, already clamped to the
    /// log) or, without one, at the log start offset (Kafka: nothing is known to be
    /// committed); a leader then advances it as its ISR allows (at once to its LEO when it is
    /// the only ISR member).
    pub fn new(
        topic_partition: TopicPartition,
        log: Arc<Log>,
        role: Role,
        state: LeaderAndIsrState,
        stored_high_watermark: Option<i64>,
    ) -> Self {
        let initial = stored_high_watermark.unwrap_or_else(|| log.log_start_offset());
        let (high_watermark, _) = watch::channel(initial);
        let (log_end, _) = watch::channel(log.log_end_offset());
        let partition = Self {
            topic_partition,
            log,
            leadership: RwLock::new(Leadership {
                role,
                state,
                generation: 0,
            }),
            progress: Mutex::new(LeaderProgress::default()),
            high_watermark,
            log_end,
        };
        if role == Role::Leader {
            let leadership = partition.read_leadership();
            partition.start_leading(&leadership.state, true, crate::state::now_ms());
            partition.maybe_advance_high_watermark(&leadership);
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

    fn lock_progress(&self) -> MutexGuard<'_, LeaderProgress> {
        self.progress
            .lock()
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

    /// How many times this replica became leader (see `Leadership::generation`).
    pub fn leadership_generation(&self) -> u64 {
        self.read_leadership().generation
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

    /// Size of the in-sync replica set (as the controller last set it, or as this leader
    /// last wrote it to ZooKeeper).
    pub fn isr_size(&self) -> usize {
        self.read_leadership().state.isr.len()
    }

    /// The in-sync replicas (see [`Partition::isr_size`]).
    pub fn isr(&self) -> Vec<BrokerId> {
        self.read_leadership().state.isr.clone()
    }

    /// Offsets below this are committed and visible to consumers.
    pub fn high_watermark(&self) -> i64 {
        *self.high_watermark.borrow()
    }

    /// A receiver that sees every high watermark change (for consumer long polls and
    /// `acks=-1` produces).
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.high_watermark.subscribe()
    }

    /// A receiver that sees every leader append (for follower long polls).
    pub fn subscribe_log_end(&self) -> watch::Receiver<i64> {
        self.log_end.subscribe()
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
        self.log_end.send_replace(self.log.log_end_offset());
        self.maybe_advance_high_watermark(&leadership);
        Ok(info)
    }

    /// Leader: records a fetch by follower `replica` at `fetch_offset` (its LEO: the fetch
    /// acknowledges everything below it), advances the high watermark if the ISR allows, and
    /// returns an ISR expansion to write when the follower may join (see
    /// [`isr::may_join_isr`]). Does nothing on a replica that does not lead, for a broker that
    /// is not a replica, or for the leader itself.
    pub fn record_follower_fetch(
        &self,
        replica: BrokerId,
        fetch_offset: i64,
        now_ms: i64,
    ) -> Option<IsrUpdate> {
        let leadership = self.read_leadership();
        let state = &leadership.state;
        if leadership.role != Role::Leader
            || replica == state.leader
            || !state.replicas.contains(&replica)
        {
            return None;
        }
        let leader_end = self.log.log_end_offset();
        let mut progress = self.lock_progress();
        let follower = progress
            .followers
            .entry(replica)
            .or_insert_with(|| FollowerProgress::on_leadership(false, now_ms));
        follower.record_fetch(fetch_offset, leader_end, now_ms);
        let follower_end = follower.log_end_offset;
        self.advance_locked(state, leader_end, &progress);
        if state.isr.contains(&replica) || progress.pending.is_some() {
            return None;
        }
        if !isr::may_join_isr(
            follower_end,
            self.high_watermark(),
            progress.epoch_start_offset,
        ) {
            return None;
        }
        let mut isr = state.isr.clone();
        isr.push(replica);
        let update = self.proposal(state, isr);
        progress.pending = Some(update.clone());
        Some(update)
    }

    /// Leader: the ISR without its out-of-sync members (see [`isr::out_of_sync`]), to write,
    /// if any member is out of sync and no other change is pending. The leader stays.
    pub fn maybe_shrink_isr(&self, now_ms: i64, max_lag_ms: i64) -> Option<IsrUpdate> {
        let leadership = self.read_leadership();
        let state = &leadership.state;
        if leadership.role != Role::Leader {
            return None;
        }
        let mut progress = self.lock_progress();
        if progress.pending.is_some() {
            return None;
        }
        let leader_end = self.log.log_end_offset();
        let out = isr::out_of_sync(
            state.leader,
            leader_end,
            &state.isr,
            &progress.followers,
            now_ms,
            max_lag_ms,
        );
        if out.is_empty() {
            return None;
        }
        let isr = state
            .isr
            .iter()
            .copied()
            .filter(|r| !out.contains(r))
            .collect();
        let update = self.proposal(state, isr);
        progress.pending = Some(update.clone());
        Some(update)
    }

    fn proposal(&self, state: &LeaderAndIsrState, isr: Vec<BrokerId>) -> IsrUpdate {
        IsrUpdate {
            leader: state.leader,
            leader_epoch: state.leader_epoch,
            controller_epoch: state.controller_epoch,
            zk_version: state.zk_version,
            isr,
        }
    }

    /// The ISR writer's outcome for `update`: `Some(version)` when the state znode now holds
    /// it at `version` (adopted if this broker still leads at that epoch), `None` when it was
    /// abandoned (the leader epoch moved: a LeaderAndIsr brings the truth). Either way the
    /// change is no longer pending; waiters are woken (the HW or the ISR size may change).
    pub fn complete_isr_update(&self, update: &IsrUpdate, written: Option<ZkVersion>) {
        {
            let mut leadership = self
                .leadership
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let mut progress = self.lock_progress();
            if progress.pending.as_ref() == Some(update) {
                progress.pending = None;
            }
            if let Some(version) = written
                && leadership.role == Role::Leader
                && leadership.state.leader_epoch == update.leader_epoch
            {
                leadership.state.isr = update.isr.clone();
                leadership.state.zk_version = version;
            }
        }
        let leadership = self.read_leadership();
        self.maybe_advance_high_watermark(&leadership);
        drop(leadership);
        self.wake_waiters();
    }

    /// Follower: appends batches fetched from the leader unchanged, if this replica still
    /// follows at `leader_epoch`. Holds the leadership read lock, so a role change cannot
    /// interleave.
    pub fn append_as_follower(
        &self,
        leader_epoch: LeaderEpoch,
        batches: BytesMut,
    ) -> Result<AppendInfo, FollowerError> {
        let leadership = self.read_leadership();
        self.check_follower(&leadership, leader_epoch)?;
        Ok(self.log.append_as_follower(batches)?)
    }

    /// Follower: truncates the log to `offset` (see [`Log::truncate_to`]) if this replica still
    /// follows at `leader_epoch`; the high watermark is clamped to the new LEO.
    pub fn truncate_as_follower(
        &self,
        leader_epoch: LeaderEpoch,
        offset: i64,
    ) -> Result<(), FollowerError> {
        let leadership = self.read_leadership();
        self.check_follower(&leadership, leader_epoch)?;
        self.log.truncate_to(offset)?;
        let end = self.log.log_end_offset();
        self.high_watermark.send_if_modified(|hw| {
            let clamped = (*hw).min(end);
            std::mem::replace(hw, clamped) != clamped
        });
        Ok(())
    }

    /// Follower: empties the log and restarts it at `offset` (the leader's log start, beyond
    /// this follower's LEO), if this replica still follows at `leader_epoch`.
    pub fn restart_as_follower_at(
        &self,
        leader_epoch: LeaderEpoch,
        offset: i64,
    ) -> Result<(), FollowerError> {
        let leadership = self.read_leadership();
        self.check_follower(&leadership, leader_epoch)?;
        self.log.truncate_fully_and_start_at(offset)?;
        let start = self.log.log_start_offset();
        self.high_watermark
            .send_if_modified(|hw| std::mem::replace(hw, start) != start);
        Ok(())
    }

    /// Follower: HW = min(the leader's HW from a fetch response, own LEO), if this replica
    /// still follows at `leader_epoch`. Unlike a leader's, a follower's HW may go back (after
    /// a truncation); it is never below the log start.
    pub fn update_follower_high_watermark(&self, leader_epoch: LeaderEpoch, leader_hw: i64) {
        let leadership = self.read_leadership();
        if self.check_follower(&leadership, leader_epoch).is_err() || leader_hw < 0 {
            return;
        }
        let value = leader_hw
            .min(self.log.log_end_offset())
            .max(self.log.log_start_offset());
        self.high_watermark
            .send_if_modified(|hw| std::mem::replace(hw, value) != value);
    }

    fn check_follower(
        &self,
        leadership: &Leadership,
        leader_epoch: LeaderEpoch,
    ) -> Result<(), FollowerError> {
        if leadership.role == Role::Follower && leadership.state.leader_epoch == leader_epoch {
            return Ok(());
        }
        Err(FollowerError::NotFollower {
            topic_partition: self.topic_partition.clone(),
            role: leadership.role,
            expected: leader_epoch,
            current: leadership.state.leader_epoch,
        })
    }

    /// Applies a LeaderAndIsr decision (`state`) or a StopReplica (`state` is `None`: the
    /// leadership is kept, only the role changes). The caller has fenced the leader epoch.
    pub(super) fn change_role(&self, role: Role, state: Option<LeaderAndIsrState>) -> RoleChange {
        let change = {
            let mut leadership = self
                .leadership
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let new_state = state.is_some();
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
            if change.gains_leadership() {
                leadership.generation += 1;
            }
            if role == Role::Leader && new_state {
                self.start_leading(
                    &leadership.state,
                    change.gains_leadership(),
                    crate::state::now_ms(),
                );
            }
            change
        };
        if role == Role::Leader {
            let leadership = self.read_leadership();
            self.maybe_advance_high_watermark(&leadership);
        } else {
            // A follower's HW never exceeds its LEO (a leader's HW may be lower than its
            // LEO; it stays where it was).
            let end = self.log.log_end_offset();
            self.high_watermark.send_if_modified(|hw| {
                let clamped = (*hw).min(end);
                std::mem::replace(hw, clamped) != clamped
            });
        }
        // Long polls re-check the role; acks=-1 waiters the ISR.
        self.wake_waiters();
        change
    }

    /// A LeaderAndIsr makes (or keeps) this replica leader at a new leader epoch: the epoch
    /// starts at the LEO; a new leader forgets its followers' progress (ISR members count as
    /// caught up now), a continuing one keeps it. Any pending ISR change belongs to the old
    /// epoch and is dropped (its write will fail on the epoch check).
    fn start_leading(&self, state: &LeaderAndIsrState, new_leader: bool, now_ms: i64) {
        let mut progress = self.lock_progress();
        progress.epoch_start_offset = self.log.log_end_offset();
        progress.pending = None;
        if new_leader {
            progress.followers.clear();
        }
        progress
            .followers
            .retain(|replica, _| state.replicas.contains(replica));
        for &replica in &state.replicas {
            if replica != state.leader {
                progress.followers.entry(replica).or_insert_with(|| {
                    FollowerProgress::on_leadership(state.isr.contains(&replica), now_ms)
                });
            }
        }
    }

    /// Wakes long polls and `acks=-1` waiters without moving the high watermark, so they
    /// re-check the role and the ISR.
    pub(super) fn wake_waiters(&self) {
        self.high_watermark.send_modify(|_| {});
        self.log_end.send_modify(|_| {});
    }

    /// Leader: moves the high watermark to the minimum LEO over the ISR (and any pending
    /// addition), never backward.
    fn maybe_advance_high_watermark(&self, leadership: &Leadership) {
        if leadership.role != Role::Leader {
            return;
        }
        let leader_end = self.log.log_end_offset();
        let progress = self.lock_progress();
        self.advance_locked(&leadership.state, leader_end, &progress);
    }

    fn advance_locked(
        &self,
        state: &LeaderAndIsrState,
        leader_end: i64,
        progress: &LeaderProgress,
    ) {
        let mut candidate =
            isr::high_watermark(state.leader, leader_end, &state.isr, &progress.followers);
        if let Some(pending) = &progress.pending {
            candidate = candidate.min(isr::high_watermark(
                state.leader,
                leader_end,
                &pending.isr,
                &progress.followers,
            ));
        }
        self.high_watermark.send_if_modified(|hw| {
            if candidate > *hw {
                debug_assert!(candidate <= leader_end, "HW beyond the LEO");
                *hw = candidate;
                true
            } else {
                false
            }
        });
    }
}
