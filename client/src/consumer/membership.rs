//! A subscribed consumer's membership: the join/sync loop of a rebalance (the leader assigns
//! with the chosen assignor) and the background heartbeat that notices when the group wants
//! the member to join again. The [`super::Consumer`] runs a rebalance inside `poll` when
//! [`GroupMember::needs_rejoin`] says so.
//!
//! ```text
//!   poll ─▶ needs_rejoin? ─▶ JoinGroup ─MEMBER_ID_REQUIRED─▶ JoinGroup with the id
//!                               │ leader: Metadata (partition counts), assign, encode
//!                               ▼
//!                            SyncGroup ─▶ assignment ─▶ Consumer::assign + committed offsets
//!            REBALANCE_IN_PROGRESS / ILLEGAL_GENERATION: join again;
//!            UNKNOWN_MEMBER_ID: join again with an empty member id
//!   heartbeat task: every heartbeat.interval.ms; those three codes set needs_rejoin
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use tokio::task::JoinHandle;

use super::TopicPartition;
use super::assignors::Assignor;
use super::protocol::{
    PROTOCOL_TYPE, decode_assignment, decode_subscription, encode_subscription, leader_assignments,
};
use crate::{Client, ClientError, ErrorCode, Group, JoinOutcome, JoinRequest};

/// The group settings of a subscribing consumer (Kafka's consumer configs in brackets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOptions {
    /// The group (`group.id`).
    pub group_id: String,
    /// The client id, the prefix of the member id (`client.id`, "tributary").
    pub client_id: String,
    /// Assignors offered, most preferred first (`partition.assignment.strategy`, range).
    pub assignors: Vec<Assignor>,
    /// Removed from the group without a heartbeat for this long (`session.timeout.ms`, 10 s;
    /// within the broker's `group.min/max.session.timeout.ms`).
    pub session_timeout: Duration,
    /// Time between heartbeats (`heartbeat.interval.ms`, 3 s; at most a third of the session
    /// timeout, so two may be lost).
    pub heartbeat_interval: Duration,
    /// How long a rebalance waits for this member to re-join, which it does in `poll`
    /// (`max.poll.interval.ms`, 300 s; sent as the rebalance timeout).
    pub max_poll_interval: Duration,
    /// Commit the positions by itself (`enable.auto.commit`, true): in `poll`, every
    /// `auto_commit_interval`, and before partitions are revoked.
    pub enable_auto_commit: bool,
    /// (`auto.commit.interval.ms`, 5 s.)
    pub auto_commit_interval: Duration,
    /// When to commit: after processing (the default) or before handing records over.
    pub delivery: Delivery,
}

/// The delivery guarantee of a subscribed consumer's commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Delivery {
    /// Commit positions of records already handed over, i.e. processed when the application
    /// polls again: after a crash, the records since the last commit are read again.
    #[default]
    AtLeastOnce,
    /// `poll` commits the positions after the records it returns before returning them: after
    /// a crash nothing is read twice, and records handed over but not processed are lost.
    AtMostOnce,
}

impl GroupOptions {
    /// Kafka's defaults for `group_id`.
    pub fn new(group_id: impl Into<String>) -> GroupOptions {
        GroupOptions {
            group_id: group_id.into(),
            client_id: "tributary".to_owned(),
            assignors: vec![Assignor::Range],
            session_timeout: Duration::from_secs(10),
            heartbeat_interval: Duration::from_secs(3),
            max_poll_interval: Duration::from_secs(300),
            enable_auto_commit: true,
            auto_commit_interval: Duration::from_secs(5),
            delivery: Delivery::AtLeastOnce,
        }
    }

    pub(super) fn validate(&self) -> Result<(), ClientError> {
        let bad = |argument, reason: &str| {
            Err(ClientError::InvalidArgument {
                argument,
                reason: reason.to_owned(),
            })
        };
        if self.group_id.is_empty() {
            return bad("group_id", "must not be empty");
        }
        if self.assignors.is_empty() {
            return bad("assignors", "name at least one assignor");
        }
        if self.heartbeat_interval.is_zero() || self.heartbeat_interval >= self.session_timeout {
            return bad(
                "heartbeat_interval",
                "must be positive and shorter than the session timeout",
            );
        }
        if millis(self.max_poll_interval) <= 0 || millis(self.session_timeout) <= 0 {
            return bad("max_poll_interval", "timeouts must be at least 1 ms");
        }
        Ok(())
    }
}

fn millis(duration: Duration) -> i32 {
    i32::try_from(duration.as_millis()).unwrap_or(i32::MAX)
}

/// What the heartbeat task and the consumer share.
#[derive(Debug, Default)]
struct Shared {
    /// The group asked this member to join again (or it never joined).
    rejoin: Arc<AtomicBool>,
    /// The generation and member id to heartbeat with; generation -1 pauses the heartbeat.
    identity: Mutex<(i32, String)>,
}

/// A consumer's membership of its group.
#[derive(Debug)]
pub(super) struct GroupMember {
    pub(super) group: Group,
    pub(super) options: GroupOptions,
    topics: Vec<String>,
    member_id: String,
    generation: i32,
    owned: Vec<TopicPartition>,
    shared: Arc<Shared>,
    heartbeat: JoinHandle<()>,
}

impl Drop for GroupMember {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

/// The group's answers that mean "join again".
pub(super) fn is_rejoin(error: &ClientError) -> bool {
    matches!(
        error.error_code(),
        Some(
            ErrorCode::RebalanceInProgress
                | ErrorCode::IllegalGeneration
                | ErrorCode::UnknownMemberId
        )
    )
}

impl GroupMember {
    /// A member of `options.group_id` subscribing to `topics`; it joins at the first
    /// [`GroupMember::rejoin`].
    pub(super) fn new(
        client: &Client,
        options: GroupOptions,
        topics: Vec<String>,
    ) -> Result<GroupMember, ClientError> {
        options.validate()?;
        let group = client.group(options.group_id.clone())?;
        let shared = Arc::new(Shared {
            rejoin: Arc::new(AtomicBool::new(true)),
            identity: Mutex::new((-1, String::new())),
        });
        let heartbeat = tokio::spawn(heartbeat(
            group.clone(),
            shared.clone(),
            options.heartbeat_interval,
        ));
        Ok(GroupMember {
            group,
            options,
            topics,
            member_id: String::new(),
            generation: -1,
            owned: Vec::new(),
            shared,
            heartbeat,
        })
    }

    /// Whether a rebalance must run before the next fetch.
    pub(super) fn needs_rejoin(&self) -> bool {
        self.shared.rejoin.load(Ordering::Acquire)
    }

    /// Asks for a rebalance at the next poll (after a commit was refused as stale).
    pub(super) fn request_rejoin(&self) {
        self.shared.rejoin.store(true, Ordering::Release);
    }

    /// The flag a background commit sets when refused as stale.
    pub(super) fn rejoin_flag(&self) -> Arc<AtomicBool> {
        self.shared.rejoin.clone()
    }

    /// The generation and member id (generation -1 before the first join).
    pub(super) fn identity(&self) -> (i32, &str) {
        (self.generation, &self.member_id)
    }

    /// Runs one rebalance: JoinGroup (again after MEMBER_ID_REQUIRED or a stale answer), the
    /// leader's assignment, SyncGroup. Returns this member's partitions.
    pub(super) async fn rejoin(
        &mut self,
        client: &Client,
    ) -> Result<Vec<TopicPartition>, ClientError> {
        self.set_identity(-1);
        loop {
            let metadata = encode_subscription(&self.topics, &self.owned, self.generation);
            let request = JoinRequest {
                member_id: self.member_id.clone(),
                client_id: self.options.client_id.clone(),
                session_timeout_ms: millis(self.options.session_timeout),
                rebalance_timeout_ms: millis(self.options.max_poll_interval),
                protocol_type: PROTOCOL_TYPE.to_owned(),
                protocols: self
                    .options
                    .assignors
                    .iter()
                    .map(|a| (a.name().to_owned(), metadata.clone()))
                    .collect(),
            };
            let generation = match self.group.join(&request).await {
                Ok(JoinOutcome::MemberIdRequired(member_id)) => {
                    self.member_id = member_id;
                    continue;
                }
                Ok(JoinOutcome::Joined(generation)) => generation,
                Err(error) if is_rejoin(&error) => {
                    self.forget_member_if_unknown(&error);
                    continue;
                }
                Err(error) => return Err(error),
            };
            let assignments = if generation.leader == generation.member_id {
                self.assign_as_leader(client, &generation.protocol, &generation.members)
                    .await?
            } else {
                Vec::new()
            };
            match self
                .group
                .sync(generation.generation_id, &self.member_id, &assignments)
                .await
            {
                Ok(assignment) => {
                    let partitions = decode_assignment(&assignment)?;
                    tracing::info!(
                        group = %self.options.group_id,
                        member_id = %self.member_id,
                        generation = generation.generation_id,
                        partitions = partitions.len(),
                        "joined the group"
                    );
                    self.generation = generation.generation_id;
                    self.owned = partitions.clone();
                    self.shared.rejoin.store(false, Ordering::Release);
                    self.set_identity(self.generation);
                    return Ok(partitions);
                }
                Err(error) if is_rejoin(&error) => self.forget_member_if_unknown(&error),
                Err(error) => return Err(error),
            }
        }
    }

    /// Leaves the group (its partitions go to the others at once).
    pub(super) async fn leave(&mut self) -> Result<(), ClientError> {
        self.heartbeat.abort();
        if self.member_id.is_empty() {
            return Ok(());
        }
        let result = self.group.leave(&self.member_id).await;
        self.member_id.clear();
        self.generation = -1;
        match result {
            Err(error) if error.error_code() == Some(ErrorCode::UnknownMemberId) => Ok(()),
            other => other,
        }
    }

    fn forget_member_if_unknown(&mut self, error: &ClientError) {
        if error.error_code() == Some(ErrorCode::UnknownMemberId) {
            self.member_id.clear();
            self.generation = -1;
            self.owned.clear();
        }
    }

    fn set_identity(&self, generation: i32) {
        *self
            .shared
            .identity
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = (generation, self.member_id.clone());
    }

    /// The leader's step: every member's subscription, the partition counts of their topics,
    /// the chosen assignor.
    async fn assign_as_leader(
        &self,
        client: &Client,
        protocol: &str,
        members: &[(String, Bytes)],
    ) -> Result<Vec<(String, Bytes)>, ClientError> {
        let assignor = Assignor::from_name(protocol).unwrap_or(self.options.assignors[0]);
        let members = members
            .iter()
            .map(|(id, metadata)| decode_subscription(id, metadata))
            .collect::<Result<Vec<_>, _>>()?;
        let topics: BTreeSet<&String> = members.iter().flat_map(|m| m.topics.iter()).collect();
        let mut counts = BTreeMap::new();
        for topic in topics {
            match client.partitions_of(topic).await {
                Ok(partitions) => {
                    counts.insert(topic.clone(), partitions.len() as i32);
                }
                // A subscribed topic that does not exist (yet) gets no partitions.
                Err(error) if error.error_code() == Some(ErrorCode::UnknownTopicOrPartition) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(leader_assignments(assignor, &counts, &members))
    }
}

/// The heartbeat task: every `interval`, a Heartbeat with the current identity; the answers
/// that mean "join again" set the flag `poll` checks. Other failures (a coordinator moving)
/// are retried inside the call and otherwise logged: the session timeout decides.
async fn heartbeat(group: Group, shared: Arc<Shared>, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        let (generation, member_id) = shared
            .identity
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if generation < 0 {
            continue;
        }
        match group.heartbeat(generation, &member_id).await {
            Ok(()) => {}
            Err(error) if is_rejoin(&error) => {
                tracing::debug!(group = group.id(), %error, "the group asks to join again");
                shared.rejoin.store(true, Ordering::Release);
            }
            Err(error) => tracing::warn!(group = group.id(), %error, "heartbeat failed"),
        }
    }
}
