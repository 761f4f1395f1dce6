//! JoinGroup, SyncGroup, Heartbeat and LeaveGroup at the coordinator, and the membership
//! timers: the decisions are [`super::membership`]'s, made under the shard's lock; this module
//! parks the requests that wait (a oneshot per member in the shard's
//! [`Waiters`](super::shard::Waiters)), carries out
//! the effects (answers, storing a GroupMetadataValue in `__consumer_offsets`) and ticks the
//! clock.
//!
//! Storing is like a commit: appended under the lock, then awaited (acks=-1) outside it, then
//! reported back with [`membership::stored`] under the lock, if the shard is still the same
//! incarnation.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::sync::{oneshot, watch};
use tributary_record::{BatchBuilder, Record};

use super::commit::check_group_id;
use super::coordinator::{LoadedShard, group_partition};
use super::error::GroupError;
use super::membership::{self, Effect, JoinRequest, Joined, Reply, Timeouts};
use super::offsets::{append_as_coordinator, replicated};
use super::records::{group_metadata_key, group_metadata_value};
use super::shard::membership_value;
use super::state::Group;
use crate::state::{BrokerState, now_ms};

/// How often the timers are checked. Session and rebalance deadlines are thus met within
/// 100 ms, small next to the 6 s minimum session timeout (and the 3 s initial delay).
const TICK: Duration = Duration::from_millis(100);

/// A request's answer: decided, or to come through a parked oneshot.
enum Answer<T> {
    Now(Result<T, GroupError>),
    Later(oneshot::Receiver<Result<T, GroupError>>),
}

fn timeouts(state: &BrokerState) -> Timeouts {
    let settings = state.groups.settings();
    Timeouts {
        min_session_ms: settings.group_min_session_timeout_ms,
        max_session_ms: settings.group_max_session_timeout_ms,
        initial_delay_ms: settings.group_initial_rebalance_delay_ms,
    }
}

/// A new member id: the client id, a dash and 128 random bits in hex (Kafka's shape, with a
/// UUID there).
fn new_member_id(client_id: &str) -> String {
    format!("{client_id}-{:032x}", rand::random::<u128>())
}

/// Handles a JoinGroup: answered at once or once the rebalance completes.
pub async fn join_group(
    state: &Arc<BrokerState>,
    group_id: &str,
    request: JoinRequest,
) -> Result<Joined, GroupError> {
    check_group_id(group_id)?;
    let partition = group_partition(state, group_id)?;
    let timeouts = timeouts(state);
    let member_id = request.member_id.clone();
    let parked = state.groups.with_loaded(group_id, partition, |mut shard| {
        let now = now_ms();
        let (groups, waiters) = shard.parts();
        let group = groups
            .entry(group_id.to_owned())
            .or_insert_with(Group::empty);
        let (reply, effects) =
            membership::join(group_id, group, request, timeouts, now, new_member_id);
        let parked = park(reply, &mut waiters.joins, group_id, &member_id);
        apply(state, &mut shard, partition, group_id, effects);
        parked
    })?;
    answered(parked, group_id, partition).await
}

/// Handles a SyncGroup: answered at once (Stable, or an error) or once the leader's
/// assignments are stored.
pub async fn sync_group(
    state: &Arc<BrokerState>,
    group_id: &str,
    member_id: &str,
    generation: i32,
    assignments: Vec<(String, Bytes)>,
) -> Result<Bytes, GroupError> {
    check_group_id(group_id)?;
    let partition = group_partition(state, group_id)?;
    let parked = state.groups.with_loaded(group_id, partition, |mut shard| {
        let (groups, waiters) = shard.parts();
        let (reply, effects) = membership::sync(
            group_id,
            groups.get_mut(group_id),
            member_id,
            generation,
            assignments,
            now_ms(),
        );
        let parked = park(reply, &mut waiters.syncs, group_id, member_id);
        apply(state, &mut shard, partition, group_id, effects);
        parked
    })?;
    answered(parked, group_id, partition).await
}

type Parked<T> = HashMap<(String, String), oneshot::Sender<Result<T, GroupError>>>;

/// The answer of a decision: at once, or through a oneshot parked for the member (a parked
/// request it replaces gets REBALANCE_IN_PROGRESS).
fn park<T>(reply: Reply<T>, waiters: &mut Parked<T>, group_id: &str, member_id: &str) -> Answer<T> {
    match reply {
        Reply::Now(result) => Answer::Now(result),
        Reply::Parked => {
            let (sender, receiver) = oneshot::channel();
            let key = (group_id.to_owned(), member_id.to_owned());
            if let Some(previous) = waiters.insert(key, sender) {
                let _ = previous.send(Err(GroupError::RebalanceInProgress {
                    group: group_id.to_owned(),
                }));
            }
            Answer::Later(receiver)
        }
    }
}

/// Waits for a parked answer; a dropped sender means the shard was unloaded.
async fn answered<T>(answer: Answer<T>, group_id: &str, partition: i32) -> Result<T, GroupError> {
    match answer {
        Answer::Now(result) => result,
        Answer::Later(receiver) => receiver.await.unwrap_or_else(|_| {
            Err(GroupError::NotCoordinator {
                group: group_id.to_owned(),
                partition,
            })
        }),
    }
}

/// Handles a Heartbeat.
pub fn heartbeat(
    state: &BrokerState,
    group_id: &str,
    member_id: &str,
    generation: i32,
) -> Result<(), GroupError> {
    check_group_id(group_id)?;
    let partition = group_partition(state, group_id)?;
    state.groups.with_loaded(group_id, partition, |mut shard| {
        membership::heartbeat(
            group_id,
            shard.groups().get_mut(group_id),
            member_id,
            generation,
            now_ms(),
        )
    })?
}

/// Handles a LeaveGroup.
pub fn leave_group(
    state: &Arc<BrokerState>,
    group_id: &str,
    member_id: &str,
) -> Result<(), GroupError> {
    check_group_id(group_id)?;
    let partition = group_partition(state, group_id)?;
    state.groups.with_loaded(group_id, partition, |mut shard| {
        let effects = membership::leave(
            group_id,
            shard.groups().get_mut(group_id),
            member_id,
            now_ms(),
        )?;
        tracing::info!(group = group_id, member_id, "member left");
        apply(state, &mut shard, partition, group_id, effects);
        Ok(())
    })?
}

/// The timers' task: every [`TICK`], applies the clock to every group of every loaded shard,
/// until `shutdown`.
pub async fn run_timers(state: Arc<BrokerState>, mut shutdown: watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = shutdown.changed() => return,
        }
        for partition in state.groups.partitions() {
            // NOT_COORDINATOR / loading: nothing to tick.
            let _ = state.groups.with_loaded("", partition, |mut shard| {
                let now = now_ms();
                let ids: Vec<String> = shard.groups().keys().cloned().collect();
                for group_id in ids {
                    let group = shard.groups().get_mut(&group_id).expect("listed");
                    let effects = membership::tick(&group_id, group, now);
                    apply(&state, &mut shard, partition, &group_id, effects);
                }
            });
        }
    }
}

/// Carries out `effects` under the shard's lock: answers parked requests; stores the group's
/// metadata (a failed append is reported back at once, a successful one once replicated).
fn apply(
    state: &Arc<BrokerState>,
    shard: &mut LoadedShard<'_>,
    partition: i32,
    group_id: &str,
    effects: Vec<Effect>,
) {
    let mut queue = effects;
    while !queue.is_empty() {
        let mut next = Vec::new();
        for effect in queue {
            let (groups, waiters) = shard.parts();
            match effect {
                Effect::Join { member_id, outcome } => {
                    answer(&mut waiters.joins, group_id, member_id, outcome);
                }
                Effect::Sync { member_id, outcome } => {
                    answer(&mut waiters.syncs, group_id, member_id, outcome);
                }
                Effect::Store { generation } => {
                    let Some(group) = groups.get_mut(group_id) else {
                        continue;
                    };
                    let batch = metadata_batch(group_id, group);
                    match append_as_coordinator(state, group_id, partition, batch) {
                        Ok((replica, base_offset, leadership)) => {
                            let state = state.clone();
                            let group_id = group_id.to_owned();
                            let incarnation = shard.incarnation();
                            tokio::spawn(async move {
                                let result = replicated(
                                    &state,
                                    &group_id,
                                    partition,
                                    &replica,
                                    base_offset + 1,
                                    leadership,
                                )
                                .await;
                                report_stored(
                                    &state,
                                    partition,
                                    incarnation,
                                    &group_id,
                                    generation,
                                    result,
                                );
                            });
                        }
                        Err(error) => {
                            tracing::warn!(group = group_id, %error, "storing the group's metadata failed");
                            next.extend(membership::stored(
                                group_id,
                                group,
                                generation,
                                Err(error.to_string()),
                                now_ms(),
                            ));
                        }
                    }
                }
            }
        }
        queue = next;
    }
}

/// Reports a finished store to the group (if the shard is still the one that stored).
fn report_stored(
    state: &Arc<BrokerState>,
    partition: i32,
    incarnation: u64,
    group_id: &str,
    generation: i32,
    result: Result<(), GroupError>,
) {
    if let Err(error) = &result {
        tracing::warn!(group = group_id, %error, "the group's metadata was not replicated");
    }
    let _ = state.groups.with_loaded(group_id, partition, |mut shard| {
        if shard.incarnation() != incarnation {
            return;
        }
        let Some(group) = shard.groups().get_mut(group_id) else {
            return;
        };
        let effects = membership::stored(
            group_id,
            group,
            generation,
            result.map_err(|e| e.to_string()),
            now_ms(),
        );
        apply(state, &mut shard, partition, group_id, effects);
    });
}

fn answer<T>(
    waiters: &mut std::collections::HashMap<
        (String, String),
        oneshot::Sender<Result<T, GroupError>>,
    >,
    group_id: &str,
    member_id: String,
    outcome: Result<T, GroupError>,
) {
    if let Some(sender) = waiters.remove(&(group_id.to_owned(), member_id)) {
        // The caller may have gone away (its client timed out): nothing to answer.
        let _ = sender.send(outcome);
    }
}

/// One record: the group's metadata as it is now.
fn metadata_batch(group_id: &str, group: &Group) -> BytesMut {
    let now = now_ms();
    let mut builder = BatchBuilder::new();
    builder.push(&Record {
        key: Some(group_metadata_key(group_id)),
        value: Some(group_metadata_value(&membership_value(group, now))),
        timestamp: now,
        headers: Vec::new(),
    });
    BytesMut::from(&builder.build_vec()[..])
}
