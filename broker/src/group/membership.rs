//! Group membership as pure decisions (Kafka's `GroupCoordinator` join/sync/heartbeat/leave
//! rules): a request or a clock tick and the group in, the changed group, the answer and the
//! [`Effect`]s out. No locks, no clock, no I/O: the caller ([`super::rebalance`]) passes `now`
//! (ms since the epoch), parks the requests that wait, and carries out the effects.
//!
//! ```text
//!            join (new member)                       all known members re-joined,
//!   Empty ─────────────────────▶ PreparingRebalance ─ or rebalance deadline ──▶ CompletingRebalance
//!     ▲   (initial delay first)   ▲   │ no member left: Empty, generation + 1     │ leader's SyncGroup
//!     │                           │   ▼                                           ▼ stored
//!     └── last member leaves/expires during a rebalance       Stable ◀────────────┘
//!                                 └── join (new member, changed protocols, leader re-join),
//!                                     leave, session expiry, from Stable or CompletingRebalance
//! ```
//!
//! Timers are deadlines stored in the group and checked by [`tick`]: a member's session
//! (`last_heard_ms + session_timeout_ms`; not while it waits for a join or sync answer), an
//! id handed out with MEMBER_ID_REQUIRED (forgotten after the session timeout), the rebalance
//! deadline (the longest rebalance timeout of the members), and the initial delay.

use bytes::Bytes;

use super::error::GroupError;
use super::state::{Group, GroupState, InitialDelay, Member};

/// The protocol type whose metadata Tributary's clients define (any other is accepted as
/// opaque bytes).
pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// The membership settings (from [`super::GroupSettings`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// `group.min.session.timeout.ms`.
    pub min_session_ms: i32,
    /// `group.max.session.timeout.ms`.
    pub max_session_ms: i32,
    /// `group.initial.rebalance.delay.ms`.
    pub initial_delay_ms: i32,
}

/// A JoinGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRequest {
    /// Empty on a first join.
    pub member_id: String,
    /// Static membership id; must be empty.
    pub group_instance_id: String,
    /// The client's id.
    pub client_id: String,
    /// The address the request came from, as Kafka writes it (`/127.0.0.1`; empty when
    /// unknown).
    pub client_host: String,
    /// Session timeout (ms).
    pub session_timeout_ms: i32,
    /// Rebalance timeout (ms).
    pub rebalance_timeout_ms: i32,
    /// The protocol type.
    pub protocol_type: String,
    /// Protocols with metadata, most preferred first.
    pub protocols: Vec<(String, Bytes)>,
}

/// A successful JoinGroup answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    /// The generation.
    pub generation: i32,
    /// The group's protocol type.
    pub protocol_type: String,
    /// The chosen protocol.
    pub protocol: String,
    /// The leader's id.
    pub leader: String,
    /// The member's id.
    pub member_id: String,
    /// Every member's metadata for the protocol, for the leader only (by member id).
    pub members: Vec<(String, Bytes)>,
}

/// How a JoinGroup or SyncGroup is answered.
#[derive(Debug)]
pub enum Reply<T> {
    /// At once.
    Now(Result<T, GroupError>),
    /// Later, by an [`Effect`] naming the member.
    Parked,
}

/// Something the caller must do after a decision.
#[derive(Debug)]
pub enum Effect {
    /// Answer the member's parked JoinGroup.
    Join {
        /// The member.
        member_id: String,
        /// The answer.
        outcome: Result<Joined, GroupError>,
    },
    /// Answer the member's parked SyncGroup.
    Sync {
        /// The member.
        member_id: String,
        /// Its assignment, or why there is none.
        outcome: Result<Bytes, GroupError>,
    },
    /// Store the group's metadata (a GroupMetadataValue of the group as it is now) in
    /// `__consumer_offsets`, then report with [`stored`] for this generation.
    Store {
        /// The generation stored.
        generation: i32,
    },
}

/// Handles a JoinGroup. `new_member_id` makes the id of a first join.
pub fn join(
    group_id: &str,
    group: &mut Group,
    request: JoinRequest,
    timeouts: Timeouts,
    now: i64,
    new_member_id: impl FnOnce(&str) -> String,
) -> (Reply<Joined>, Vec<Effect>) {
    let refuse = |error| (Reply::Now(Err(error)), Vec::new());
    if !request.group_instance_id.is_empty() {
        return refuse(GroupError::StaticMembership {
            group: group_id.to_owned(),
        });
    }
    if request.session_timeout_ms < timeouts.min_session_ms
        || request.session_timeout_ms > timeouts.max_session_ms
    {
        return refuse(GroupError::InvalidSessionTimeout {
            group: group_id.to_owned(),
            timeout_ms: request.session_timeout_ms,
            min_ms: timeouts.min_session_ms,
            max_ms: timeouts.max_session_ms,
        });
    }
    if group.state == GroupState::Dead {
        return refuse(GroupError::CoordinatorNotAvailable {
            group: group_id.to_owned(),
            reason: "the group is being removed".to_owned(),
        });
    }
    if let Err(reason) = protocols_fit(group, &request) {
        return refuse(GroupError::InconsistentProtocol {
            group: group_id.to_owned(),
            reason,
        });
    }
    if request.member_id.is_empty() {
        let member_id = new_member_id(&request.client_id);
        group.pending_members.insert(
            member_id.clone(),
            now + i64::from(request.session_timeout_ms),
        );
        return refuse(GroupError::MemberIdRequired {
            group: group_id.to_owned(),
            member_id,
        });
    }
    let mut effects = Vec::new();
    if group.pending_members.remove(&request.member_id).is_some() {
        add_member(group, &request, now);
        prepare_rebalance(
            group_id,
            group,
            timeouts.initial_delay_ms,
            now,
            &mut effects,
        );
        try_complete_join(group_id, group, now, &mut effects);
        return (Reply::Parked, effects);
    }
    let Some(member) = group.members.get(&request.member_id) else {
        return refuse(unknown_member(group_id, &request.member_id));
    };
    let unchanged = member.protocols == request.protocols;
    let is_leader = group.leader.as_deref() == Some(request.member_id.as_str());
    let answer_now = match group.state {
        GroupState::CompletingRebalance => unchanged,
        GroupState::Stable => unchanged && !is_leader,
        _ => false,
    };
    let member = group
        .members
        .get_mut(&request.member_id)
        .expect("looked up");
    member.last_heard_ms = now;
    if answer_now {
        // A follower that lost the answer, or re-joins without change: the current generation
        // stands (Kafka answers from the group as it is).
        let joined = current_generation(group, &request.member_id);
        return (Reply::Now(Ok(joined)), effects);
    }
    update_member(member, &request);
    member.awaiting_join = true;
    if std::mem::take(&mut member.awaiting_sync) {
        effects.push(Effect::Sync {
            member_id: request.member_id.clone(),
            outcome: Err(rebalancing(group_id)),
        });
    }
    prepare_rebalance(
        group_id,
        group,
        timeouts.initial_delay_ms,
        now,
        &mut effects,
    );
    try_complete_join(group_id, group, now, &mut effects);
    (Reply::Parked, effects)
}

/// Handles a SyncGroup; `assignments` count only from the leader.
pub fn sync(
    group_id: &str,
    group: Option<&mut Group>,
    member_id: &str,
    generation: i32,
    assignments: Vec<(String, Bytes)>,
    now: i64,
) -> (Reply<Bytes>, Vec<Effect>) {
    let group = match check_member(group_id, group, member_id, generation) {
        Ok(group) => group,
        Err(error) => return (Reply::Now(Err(error)), Vec::new()),
    };
    let member = group.members.get_mut(member_id).expect("checked");
    member.last_heard_ms = now;
    match group.state {
        GroupState::CompletingRebalance => {
            member.awaiting_sync = true;
            let mut effects = Vec::new();
            if group.leader.as_deref() == Some(member_id) {
                let mut assignments: std::collections::HashMap<String, Bytes> =
                    assignments.into_iter().collect();
                for (id, member) in &mut group.members {
                    member.assignment = assignments.remove(id).unwrap_or_default();
                }
                effects.push(Effect::Store {
                    generation: group.generation,
                });
            }
            (Reply::Parked, effects)
        }
        GroupState::Stable => (Reply::Now(Ok(member.assignment.clone())), Vec::new()),
        _ => (Reply::Now(Err(rebalancing(group_id))), Vec::new()),
    }
}

/// Reports that the metadata of `generation` was stored (or why not): the members waiting for
/// their assignment get it and the group becomes Stable; after a failure they get the error
/// and the group rebalances. Stale reports (another generation by now) change nothing.
pub fn stored(
    group_id: &str,
    group: &mut Group,
    generation: i32,
    result: Result<(), String>,
    now: i64,
) -> Vec<Effect> {
    let mut effects = Vec::new();
    if group.state != GroupState::CompletingRebalance || group.generation != generation {
        return effects;
    }
    match result {
        Ok(()) => {
            group.transition(GroupState::Stable, now);
            for (id, member) in &mut group.members {
                if std::mem::take(&mut member.awaiting_sync) {
                    effects.push(Effect::Sync {
                        member_id: id.clone(),
                        outcome: Ok(member.assignment.clone()),
                    });
                }
            }
        }
        Err(reason) => {
            for (id, member) in &mut group.members {
                member.assignment = Bytes::new();
                if std::mem::take(&mut member.awaiting_sync) {
                    effects.push(Effect::Sync {
                        member_id: id.clone(),
                        outcome: Err(GroupError::CoordinatorNotAvailable {
                            group: group_id.to_owned(),
                            reason: reason.clone(),
                        }),
                    });
                }
            }
            prepare_rebalance(group_id, group, 0, now, &mut effects);
        }
    }
    effects
}

/// Handles a Heartbeat: NONE in Stable and CompletingRebalance, REBALANCE_IN_PROGRESS in
/// PreparingRebalance (the member must re-join), else the member's or generation's error.
pub fn heartbeat(
    group_id: &str,
    group: Option<&mut Group>,
    member_id: &str,
    generation: i32,
    now: i64,
) -> Result<(), GroupError> {
    let group = check_member(group_id, group, member_id, generation)?;
    group
        .members
        .get_mut(member_id)
        .expect("checked")
        .last_heard_ms = now;
    match group.state {
        GroupState::PreparingRebalance => Err(rebalancing(group_id)),
        _ => Ok(()),
    }
}

/// Handles a LeaveGroup.
pub fn leave(
    group_id: &str,
    group: Option<&mut Group>,
    member_id: &str,
    now: i64,
) -> Result<Vec<Effect>, GroupError> {
    let Some(group) = group.filter(|g| g.members.contains_key(member_id)) else {
        return Err(unknown_member(group_id, member_id));
    };
    let mut effects = Vec::new();
    remove_member(group_id, group, member_id, now, &mut effects);
    Ok(effects)
}

/// Notes that a member committed (a commit counts as a sign of life, as in Kafka).
pub fn heard_from(group: &mut Group, member_id: &str, now: i64) {
    if let Some(member) = group.members.get_mut(member_id) {
        member.last_heard_ms = now;
    }
}

/// Applies the clock: forgets unused pending ids, removes members whose session expired,
/// ends initial delays and completes rebalances whose deadline passed.
pub fn tick(group_id: &str, group: &mut Group, now: i64) -> Vec<Effect> {
    let mut effects = Vec::new();
    let pending_before = group.pending_members.len();
    group.pending_members.retain(|_, until| *until > now);
    let expired: Vec<String> = group
        .members
        .values()
        .filter(|m| !m.awaiting_join && !m.awaiting_sync && m.session_deadline() <= now)
        .map(|m| m.member_id.clone())
        .collect();
    for member_id in expired {
        tracing::info!(group = group_id, member_id, "member session expired");
        remove_member(group_id, group, &member_id, now, &mut effects);
    }
    if let Some(delay) = group.initial_delay
        && delay.until_ms <= now
    {
        if delay.member_arrived && delay.remaining_ms > 0 {
            let step = delay.remaining_ms.min(delay.step_ms);
            group.initial_delay = Some(InitialDelay {
                until_ms: now + step,
                remaining_ms: delay.remaining_ms - step,
                step_ms: delay.step_ms,
                member_arrived: false,
            });
        } else {
            group.initial_delay = None;
            complete_join(group_id, group, now, &mut effects);
            return effects;
        }
    }
    if group.state == GroupState::PreparingRebalance && group.initial_delay.is_none() {
        if group
            .rebalance_deadline_ms
            .is_some_and(|deadline| deadline <= now)
        {
            complete_join(group_id, group, now, &mut effects);
        } else if pending_before != group.pending_members.len() {
            try_complete_join(group_id, group, now, &mut effects);
        }
    }
    effects
}

/// Whether the join's protocols fit the group (Kafka's `supportsProtocols`).
fn protocols_fit(group: &Group, request: &JoinRequest) -> Result<(), String> {
    if request.protocol_type.is_empty() || request.protocols.is_empty() {
        return Err("the join names no protocol type or no protocol".to_owned());
    }
    let others: Vec<&Member> = group
        .members
        .values()
        .filter(|m| m.member_id != request.member_id)
        .collect();
    if others.is_empty() {
        return Ok(());
    }
    if group.protocol_type.as_deref() != Some(request.protocol_type.as_str()) {
        return Err(format!(
            "the group's protocol type is {:?}, the join's {:?}",
            group.protocol_type.as_deref().unwrap_or(""),
            request.protocol_type
        ));
    }
    let common = request.protocols.iter().any(|(name, _)| {
        others
            .iter()
            .all(|m| m.protocols.iter().any(|(n, _)| n == name))
    });
    if common {
        Ok(())
    } else {
        Err("no protocol of the join is supported by every member".to_owned())
    }
}

fn add_member(group: &mut Group, request: &JoinRequest, now: i64) {
    let mut member = Member::joining(
        request.member_id.clone(),
        request.client_id.clone(),
        request.session_timeout_ms,
        request.rebalance_timeout_ms,
        request.protocols.clone(),
        now,
    );
    member.client_host = request.client_host.clone();
    member.join_sequence = group.next_join_sequence;
    group.next_join_sequence += 1;
    if group.members.is_empty() {
        group.protocol_type = Some(request.protocol_type.clone());
    }
    if group.leader.is_none() {
        group.leader = Some(member.member_id.clone());
    }
    group.members.insert(member.member_id.clone(), member);
    if let Some(delay) = &mut group.initial_delay {
        delay.member_arrived = true;
    }
}

fn update_member(member: &mut Member, request: &JoinRequest) {
    member.protocols = request.protocols.clone();
    member.session_timeout_ms = request.session_timeout_ms;
    member.rebalance_timeout_ms = request.rebalance_timeout_ms;
    member.client_id = request.client_id.clone();
    member.client_host = request.client_host.clone();
}

/// Moves the group to PreparingRebalance (if it is not there yet): parked syncs get
/// REBALANCE_IN_PROGRESS; a group that was Empty starts with the initial delay.
fn prepare_rebalance(
    group_id: &str,
    group: &mut Group,
    initial_delay_ms: i32,
    now: i64,
    effects: &mut Vec<Effect>,
) {
    if group.state == GroupState::PreparingRebalance {
        return;
    }
    let from_empty = group.state == GroupState::Empty;
    for (id, member) in &mut group.members {
        member.assignment = Bytes::new();
        if std::mem::take(&mut member.awaiting_sync) {
            effects.push(Effect::Sync {
                member_id: id.clone(),
                outcome: Err(rebalancing(group_id)),
            });
        }
    }
    group.transition(GroupState::PreparingRebalance, now);
    let rebalance_timeout = group
        .members
        .values()
        .map(|m| i64::from(m.rebalance_timeout_ms))
        .max()
        .unwrap_or(0);
    group.rebalance_deadline_ms = Some(now + rebalance_timeout);
    group.initial_delay = None;
    if from_empty && initial_delay_ms > 0 {
        let delay = i64::from(initial_delay_ms).min(rebalance_timeout);
        group.initial_delay = Some(InitialDelay {
            until_ms: now + delay,
            remaining_ms: rebalance_timeout - delay,
            step_ms: delay,
            member_arrived: false,
        });
    }
}

/// Completes the rebalance if every member has re-joined and no id handed out is still
/// expected (Kafka's `hasAllMembersJoined`), outside the initial delay.
fn try_complete_join(group_id: &str, group: &mut Group, now: i64, effects: &mut Vec<Effect>) {
    if group.state == GroupState::PreparingRebalance
        && group.initial_delay.is_none()
        && group.pending_members.is_empty()
        && group.members.values().all(|m| m.awaiting_join)
    {
        complete_join(group_id, group, now, effects);
    }
}

/// Ends the rebalance: members that did not re-join are removed; with none left the group is
/// Empty, else a new generation starts (protocol by vote, leader kept or the earliest
/// member) and every member gets its JoinGroup answer.
fn complete_join(group_id: &str, group: &mut Group, now: i64, effects: &mut Vec<Effect>) {
    let gone: Vec<String> = group
        .members
        .values()
        .filter(|m| !m.awaiting_join)
        .map(|m| m.member_id.clone())
        .collect();
    for member_id in &gone {
        tracing::info!(
            group = group_id,
            member_id,
            "member did not re-join within the rebalance timeout"
        );
        group.members.remove(member_id);
    }
    choose_leader(group);
    group.rebalance_deadline_ms = None;
    group.initial_delay = None;
    group.generation += 1;
    if group.members.is_empty() {
        // The protocol type stays (Kafka keeps it): the group is still a consumer group, and
        // its offsets expire from now on (see `super::expiry`).
        group.transition(GroupState::Empty, now);
        group.protocol = None;
        effects.push(Effect::Store {
            generation: group.generation,
        });
        return;
    }
    group.protocol = Some(select_protocol(group));
    group.transition(GroupState::CompletingRebalance, now);
    let ids: Vec<String> = group.members.keys().cloned().collect();
    for member_id in ids {
        let joined = current_generation(group, &member_id);
        let member = group.members.get_mut(&member_id).expect("listed");
        member.awaiting_join = false;
        member.last_heard_ms = now;
        effects.push(Effect::Join {
            member_id,
            outcome: Ok(joined),
        });
    }
}

/// The JoinGroup answer of the current generation for `member_id`.
fn current_generation(group: &Group, member_id: &str) -> Joined {
    let leader = group.leader.clone().unwrap_or_default();
    let protocol = group.protocol.clone().unwrap_or_default();
    let members = if leader == member_id {
        group
            .members
            .values()
            .map(|m| (m.member_id.clone(), m.metadata(&protocol)))
            .collect()
    } else {
        Vec::new()
    };
    Joined {
        generation: group.generation,
        protocol_type: group.protocol_type.clone().unwrap_or_default(),
        protocol,
        leader,
        member_id: member_id.to_owned(),
        members,
    }
}

/// The protocol every member supports with the most first-preference votes (each member votes
/// for the first of its protocols that all support); a tie goes to the one the earliest
/// member prefers.
pub fn select_protocol(group: &Group) -> String {
    let mut members: Vec<&Member> = group.members.values().collect();
    members.sort_by_key(|m| m.join_sequence);
    let supported_by_all = |name: &str| {
        members
            .iter()
            .all(|m| m.protocols.iter().any(|(n, _)| n == name))
    };
    let mut votes: Vec<(String, usize)> = Vec::new();
    for member in &members {
        if let Some((name, _)) = member.protocols.iter().find(|(n, _)| supported_by_all(n)) {
            match votes.iter_mut().find(|(n, _)| n == name) {
                Some((_, count)) => *count += 1,
                None => votes.push((name.clone(), 1)),
            }
        }
    }
    // `max_by_key` keeps the last maximum; reversing keeps the earliest member's preference.
    votes
        .into_iter()
        .rev()
        .max_by_key(|(_, count)| *count)
        .map(|(name, _)| name)
        .unwrap_or_default()
}

fn choose_leader(group: &mut Group) {
    if group
        .leader
        .as_ref()
        .is_some_and(|l| group.members.contains_key(l))
    {
        return;
    }
    group.leader = group
        .members
        .values()
        .min_by_key(|m| m.join_sequence)
        .map(|m| m.member_id.clone());
}

/// Removes a member (leave or session expiry): its parked join is answered UNKNOWN_MEMBER_ID,
/// and the group rebalances (or, mid-rebalance, may now complete).
fn remove_member(
    group_id: &str,
    group: &mut Group,
    member_id: &str,
    now: i64,
    effects: &mut Vec<Effect>,
) {
    let Some(member) = group.members.remove(member_id) else {
        return;
    };
    if member.awaiting_join {
        effects.push(Effect::Join {
            member_id: member_id.to_owned(),
            outcome: Err(unknown_member(group_id, member_id)),
        });
    }
    if member.awaiting_sync {
        effects.push(Effect::Sync {
            member_id: member_id.to_owned(),
            outcome: Err(unknown_member(group_id, member_id)),
        });
    }
    choose_leader(group);
    match group.state {
        GroupState::Stable | GroupState::CompletingRebalance => {
            prepare_rebalance(group_id, group, 0, now, effects);
            try_complete_join(group_id, group, now, effects);
        }
        GroupState::PreparingRebalance => try_complete_join(group_id, group, now, effects),
        GroupState::Empty | GroupState::Dead => {}
    }
}

/// The group, if `member_id` is its member at `generation` (Kafka's checks of SyncGroup and
/// Heartbeat, in order).
fn check_member<'a>(
    group_id: &str,
    group: Option<&'a mut Group>,
    member_id: &str,
    generation: i32,
) -> Result<&'a mut Group, GroupError> {
    let Some(group) = group else {
        return Err(unknown_member(group_id, member_id));
    };
    if group.state == GroupState::Dead {
        return Err(GroupError::CoordinatorNotAvailable {
            group: group_id.to_owned(),
            reason: "the group is being removed".to_owned(),
        });
    }
    if !group.members.contains_key(member_id) {
        return Err(unknown_member(group_id, member_id));
    }
    if generation != group.generation {
        return Err(GroupError::IllegalGeneration {
            group: group_id.to_owned(),
            received: generation,
            current: group.generation,
        });
    }
    Ok(group)
}

fn unknown_member(group_id: &str, member_id: &str) -> GroupError {
    GroupError::UnknownMember {
        group: group_id.to_owned(),
        member_id: member_id.to_owned(),
    }
}

fn rebalancing(group_id: &str) -> GroupError {
    GroupError::RebalanceInProgress {
        group: group_id.to_owned(),
    }
}

#[cfg(test)]
#[path = "membership_tests.rs"]
mod tests;
