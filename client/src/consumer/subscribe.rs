//! A [`Consumer`] in a consumer group: [`Consumer::subscribe`], the rebalance run inside `poll`
//! (revoke, re-join, assign through the same [`Assignment`](super::assignment::Assignment)
//! state `assign` uses, positions from the committed offsets), commits (`commit_sync`,
//! `commit_async`, auto-commit, at-most-once), and `close`.
//!
//! Committed offset = the next offset to read = the partition's position, as in Kafka.

use tokio::task::JoinHandle;

use super::TopicPartition;
use super::membership::{Delivery, GroupMember};
use super::poll::Consumer;
use crate::{ClientError, GroupOffset};

/// Told about rebalances of a subscribed consumer, from inside `poll` (Kafka's
/// `ConsumerRebalanceListener`, eager protocol: everything is revoked, then assigned).
pub trait RebalanceListener: Send {
    /// Before re-joining, these partitions are taken away. With `enable_auto_commit` their
    /// positions were just committed; otherwise commit after processing each poll (with
    /// [`Consumer::commit_sync`]) so nothing processed is left uncommitted here.
    fn on_partitions_revoked(&mut self, revoked: &[TopicPartition]);
    /// After the rebalance: this member's partitions in the new generation, positioned at
    /// the group's committed offsets (else by `auto_offset_reset`).
    fn on_partitions_assigned(&mut self, assigned: &[TopicPartition]);
}

/// The listener slot (a `Debug` wrapper).
pub(super) struct Listener(pub(super) Box<dyn RebalanceListener>);

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RebalanceListener")
    }
}

impl Consumer {
    /// Joins the group of [`ConsumerOptions::group`](super::ConsumerOptions::group) reading
    /// `topics`: the partitions come from the group's rebalances, run inside [`Consumer::poll`]
    /// (the first poll joins; it may wait for the group's initial rebalance delay). Replaces
    /// any manual assignment. Errors: no group configured, invalid group options.
    pub fn subscribe(&mut self, topics: &[&str]) -> Result<(), ClientError> {
        let Some(options) = self.options.group.clone() else {
            return Err(ClientError::InvalidArgument {
                argument: "group",
                reason: "Consumer::subscribe needs ConsumerOptions::group (group.id)".to_owned(),
            });
        };
        let topics: Vec<String> = topics.iter().map(|t| (*t).to_owned()).collect();
        self.member = Some(GroupMember::new(&self.client, options, topics)?);
        self.assign(Vec::new());
        Ok(())
    }

    /// Calls `listener` on every rebalance.
    pub fn set_rebalance_listener(&mut self, listener: impl RebalanceListener + 'static) {
        self.listener = Some(Listener(Box::new(listener)));
    }

    /// The generation and member id of a subscribed consumer that has joined.
    pub fn group_generation(&self) -> Option<(i32, String)> {
        self.member
            .as_ref()
            .map(|m| m.identity())
            .filter(|(generation, _)| *generation >= 0)
            .map(|(generation, member_id)| (generation, member_id.to_owned()))
    }

    /// Commits the positions of every assigned partition (the next offset to read, i.e. after
    /// every record `poll` has returned) as this member of its generation, and waits for the
    /// coordinator's acknowledgement. Errors: not subscribed; ILLEGAL_GENERATION,
    /// UNKNOWN_MEMBER_ID, REBALANCE_IN_PROGRESS when the group moved on (nothing committed;
    /// the next poll re-joins).
    pub async fn commit_sync(&mut self) -> Result<(), ClientError> {
        let (commit, offsets) = self.prepare_commit()?;
        let result = commit.await_commit(offsets).await;
        self.note_commit_result(&result);
        result
    }

    /// Commits `offsets` (each the next offset to read) as this member of its generation,
    /// instead of the positions: for a caller that tracks what it processed itself (the
    /// broker's streaming consumer commits what its client acknowledged). Errors as
    /// [`Consumer::commit_sync`]; a refusal as stale makes the next poll re-join.
    pub async fn commit_offsets_sync(
        &mut self,
        offsets: &[GroupOffset],
    ) -> Result<(), ClientError> {
        let (commit, _) = self.prepare_commit()?;
        let result = commit.await_commit(offsets.to_vec()).await;
        self.note_commit_result(&result);
        result
    }

    /// Whether the next [`Consumer::poll`] will run a rebalance first (the group asked this
    /// member to join again, or it has not joined yet). A caller that stops polling while it
    /// waits (for its own consumer, say) polls anyway when this is true, so the group's
    /// rebalance does not wait for it.
    pub fn rebalance_pending(&self) -> bool {
        self.member.as_ref().is_some_and(|m| m.needs_rejoin())
    }

    /// Starts committing the current positions in the background; the handle gives the
    /// outcome. A refusal makes the next poll re-join.
    pub fn commit_async(&mut self) -> Result<JoinHandle<Result<(), ClientError>>, ClientError> {
        let (commit, offsets) = self.prepare_commit()?;
        let rejoin = self.member.as_ref().map(|m| m.rejoin_flag());
        Ok(tokio::spawn(async move {
            let result = commit.await_commit(offsets).await;
            if let (Err(error), Some(rejoin)) = (&result, rejoin)
                && super::membership::is_rejoin(error)
            {
                rejoin.store(true, std::sync::atomic::Ordering::Release);
            }
            result
        }))
    }

    /// Leaves the group (committing first with `enable_auto_commit`) and stops fetching.
    pub async fn close(mut self) -> Result<(), ClientError> {
        let Some(member) = self.member.as_ref() else {
            return Ok(());
        };
        if member.options.enable_auto_commit
            && member.identity().0 >= 0
            && let Err(error) = self.commit_sync().await
        {
            tracing::warn!(%error, "the commit at close failed");
        }
        let mut member = self.member.take().expect("checked");
        member.leave().await
    }

    /// Before fetching: auto-commit when due, and a rebalance when the group asks for one.
    pub(super) async fn group_step(&mut self) -> Result<(), ClientError> {
        let Some(member) = self.member.as_ref() else {
            return Ok(());
        };
        let auto_commit =
            member.options.enable_auto_commit && member.options.delivery == Delivery::AtLeastOnce;
        if auto_commit
            && member.identity().0 >= 0
            && self.last_commit.elapsed() >= member.options.auto_commit_interval
        {
            self.auto_commit("interval").await;
        }
        if self.member.as_ref().is_some_and(|m| m.needs_rejoin()) {
            self.rebalance().await?;
        }
        Ok(())
    }

    /// At-most-once: commits the positions after `records` before they are handed over.
    pub(super) async fn commit_before_handing_over(&mut self) -> Result<(), ClientError> {
        if self
            .member
            .as_ref()
            .is_some_and(|m| m.options.delivery == Delivery::AtMostOnce && m.identity().0 >= 0)
        {
            self.commit_sync().await?;
        }
        Ok(())
    }

    async fn rebalance(&mut self) -> Result<(), ClientError> {
        let revoked = self.assignment();
        if !revoked.is_empty() {
            if self
                .member
                .as_ref()
                .is_some_and(|m| m.options.enable_auto_commit)
            {
                self.auto_commit("revocation").await;
            }
            if let Some(listener) = &mut self.listener {
                listener.0.on_partitions_revoked(&revoked);
            }
            self.assign(Vec::new());
        }
        let member = self.member.as_mut().expect("subscribed");
        let assigned = member.rejoin(&self.client).await?;
        let committed = member.group.committed(&assigned).await?;
        self.assign(assigned.clone());
        for (tp, offset) in committed {
            if let Some(offset) = offset {
                self.seek(&tp, offset.offset)?;
            }
        }
        self.last_commit = tokio::time::Instant::now();
        if let Some(listener) = &mut self.listener {
            listener.0.on_partitions_assigned(&assigned);
        }
        Ok(())
    }

    async fn auto_commit(&mut self, why: &str) {
        if let Err(error) = self.commit_sync().await {
            tracing::warn!(%error, why, "auto-commit failed");
        }
    }

    /// The group and the offsets to commit: every assigned partition with a position.
    fn prepare_commit(&mut self) -> Result<(PendingCommit, Vec<GroupOffset>), ClientError> {
        let Some(member) = self.member.as_ref() else {
            return Err(ClientError::InvalidArgument {
                argument: "commit",
                reason: "the consumer is not subscribed to a group".to_owned(),
            });
        };
        let (generation, member_id) = member.identity();
        let commit = PendingCommit {
            group: member.group.clone(),
            generation,
            member_id: member_id.to_owned(),
        };
        let mut offsets = Vec::new();
        for tp in self.assignment() {
            if let Ok(Some(position)) = self.assignment.position(&tp) {
                offsets.push(GroupOffset::new(tp.topic, tp.partition, position));
            }
        }
        self.last_commit = tokio::time::Instant::now();
        Ok((commit, offsets))
    }

    fn note_commit_result(&self, result: &Result<(), ClientError>) {
        if let (Err(error), Some(member)) = (result, &self.member)
            && super::membership::is_rejoin(error)
        {
            member.request_rejoin();
        }
    }
}

/// A commit about to be sent.
struct PendingCommit {
    group: crate::Group,
    generation: i32,
    member_id: String,
}

impl PendingCommit {
    async fn await_commit(self, offsets: Vec<GroupOffset>) -> Result<(), ClientError> {
        if offsets.is_empty() {
            return Ok(());
        }
        self.group
            .commit_as(self.generation, &self.member_id, &offsets)
            .await
    }
}
