//! [`FencedWriter`]: every controller write, fenced by the controller epoch.
//!
//! A controller that was paused or partitioned past its session may still believe it leads
//! while a newer controller already acts (guarantee 3 of the architecture: at most one
//! controller acts at a time). Every write therefore goes through [`FencedWriter::write`],
//! which puts a version check of `/controller_epoch` first in the same multi, as Kafka does
//! since 2.1 (KAFKA-6082, `wrapRequestWithControllerEpochCheck`). Only an election moves that
//! version, so a stale controller's multi fails as a whole and writes nothing.

use std::collections::BTreeSet;

use tributary_zk_layout::payloads::{PartitionState, Payload, TopicAssignment};
use tributary_zk_layout::{ControllerEpoch, PartitionId, ZkVersion, paths};

use super::client::ZkClient;
use super::error::ZkError;
use super::ops::{MultiFailure, OpResult, ZkOp};

/// The elected controller's writer: `(epoch, epoch_zk_version)` as won in the election.
#[derive(Debug, Clone)]
pub struct FencedWriter {
    client: ZkClient,
    epoch: ControllerEpoch,
    /// zkVersion of `/controller_epoch` right after our election wrote `epoch` into it.
    epoch_zk_version: ZkVersion,
}

impl FencedWriter {
    pub fn new(client: ZkClient, epoch: ControllerEpoch, epoch_zk_version: ZkVersion) -> Self {
        Self {
            client,
            epoch,
            epoch_zk_version,
        }
    }

    /// The epoch this controller was elected with (for `controller_epoch` fields and requests).
    pub fn epoch(&self) -> ControllerEpoch {
        self.epoch
    }

    pub fn epoch_zk_version(&self) -> ZkVersion {
        self.epoch_zk_version
    }

    pub fn client(&self) -> &ZkClient {
        &self.client
    }

    /// **The** controller write: one multi {check `/controller_epoch` is at our zkVersion;
    /// `ops`...}. Returns the results of `ops` (without the check).
    ///
    /// A failed check is [`ZkError::ControllerMoved`]: the caller must resign. A failed op is
    /// that op's error with its path (e.g. `BadVersion` of a partition state); nothing was
    /// written in either case. A `Retriable` error leaves it unknown whether the multi applied:
    /// re-read before retrying.
    pub async fn write(&self, ops: Vec<ZkOp>) -> Result<Vec<OpResult>, ZkError> {
        let mut fenced = Vec::with_capacity(ops.len() + 1);
        fenced.push(ZkOp::Check {
            path: paths::controller_epoch().to_owned(),
            version: self.epoch_zk_version,
        });
        fenced.extend(ops);
        match self.client.multi_raw(&fenced).await {
            Ok(mut results) => {
                results.remove(0);
                Ok(results)
            }
            // BadVersion: a newer election bumped the epoch. NoNode: the epoch node was
            // removed under us, so we cannot prove we still lead either.
            Err(MultiFailure::Op { index: 0, .. }) => Err(ZkError::ControllerMoved {
                expected_epoch_zk_version: self.epoch_zk_version,
            }),
            Err(MultiFailure::Op { index, source }) => {
                Err(ZkError::from_zk(fenced[index].path(), source))
            }
            Err(MultiFailure::Request(source)) => {
                Err(ZkError::from_zk(paths::controller_epoch(), source))
            }
        }
    }

    /// Creates the state znodes of new partitions, with their missing parents
    /// (`.../partitions`, `.../partitions/<p>`), in one fenced multi. Returns each state's
    /// zkVersion (0, freshly created). Fails with `NodeExists` if a state already exists.
    pub async fn create_partition_states(
        &self,
        topic: &str,
        states: &[(PartitionId, PartitionState)],
    ) -> Result<Vec<ZkVersion>, ZkError> {
        let partitions_path = paths::topic_partitions(topic);
        // Which parents exist is read before the multi; if someone creates one in between the
        // multi fails with NodeExists and the caller retries with a fresh read.
        let (parent_exists, existing): (bool, BTreeSet<String>) =
            match self.client.children(&partitions_path).await {
                Ok(children) => (true, children.into_iter().collect()),
                Err(ZkError::NoNode { .. }) => (false, BTreeSet::new()),
                Err(err) => return Err(err),
            };
        let mut ops = Vec::new();
        if !parent_exists {
            ops.push(ZkOp::create(partitions_path, Vec::new()));
        }
        for (partition, state) in states {
            if !existing.contains(&partition.to_string()) {
                ops.push(ZkOp::create(
                    paths::partition(topic, *partition),
                    Vec::new(),
                ));
            }
            ops.push(ZkOp::create(
                paths::partition_state(topic, *partition),
                state.encode(),
            ));
        }
        self.write(ops).await?;
        Ok(states.iter().map(|_| ZkVersion(0)).collect())
    }

    /// Conditional update of one partition state (leader election, controller ISR change).
    /// Returns the new zkVersion; `BadVersion` means someone (the leader) changed it: re-read.
    pub async fn set_partition_state(
        &self,
        topic: &str,
        partition: PartitionId,
        state: &PartitionState,
        expected: ZkVersion,
    ) -> Result<ZkVersion, ZkError> {
        let path = paths::partition_state(topic, partition);
        let results = self
            .write(vec![ZkOp::set(path, state.encode(), Some(expected))])
            .await?;
        Ok(set_version(&results).unwrap_or(ZkVersion(expected.0 + 1)))
    }

    /// Rewrites a topic's assignment (reassignment, added partitions).
    pub async fn set_topic_assignment(
        &self,
        topic: &str,
        assignment: &TopicAssignment,
        expected: Option<ZkVersion>,
    ) -> Result<ZkVersion, ZkError> {
        let ops = vec![ZkOp::set(
            paths::topic(topic),
            assignment.encode(),
            expected,
        )];
        let results = self.write(ops).await?;
        Ok(set_version(&results).unwrap_or(ZkVersion(0)))
    }

    /// Deletes one node (e.g. `/admin/preferred_replica_election`). `NoNode` is an error; use
    /// [`delete_children`](Self::delete_children) for idempotent clean-up.
    pub async fn delete(&self, path: &str, expected: Option<ZkVersion>) -> Result<(), ZkError> {
        self.write(vec![ZkOp::delete(path, expected)])
            .await
            .map(drop)
    }

    /// Deletes processed notification children (`isr_change_0000000042`, ...) of `parent` in one
    /// fenced multi. Children already gone are skipped (read first), so a retry after a lost
    /// reply does not fail.
    pub async fn delete_children(&self, parent: &str, names: &[String]) -> Result<(), ZkError> {
        let present: BTreeSet<String> = self.client.children(parent).await?.into_iter().collect();
        let ops: Vec<ZkOp> = names
            .iter()
            .filter(|name| present.contains(*name))
            .map(|name| ZkOp::delete(format!("{parent}/{name}"), None))
            .collect();
        if ops.is_empty() {
            return Ok(());
        }
        self.write(ops).await.map(drop)
    }

    /// Deletes `path` and everything below it in one fenced multi (children first). A missing
    /// `path` is not an error. The whole subtree goes in one request, so it must fit in
    /// ZooKeeper's `jute.maxbuffer` (1 MiB: tens of thousands of partitions).
    pub async fn delete_recursively(&self, path: &str) -> Result<(), ZkError> {
        let mut subtree = Vec::new();
        if !self.collect_subtree(path, &mut subtree).await? {
            return Ok(());
        }
        // Collected parents first; deleting in reverse order removes children first.
        let ops = subtree
            .into_iter()
            .rev()
            .map(|p| ZkOp::delete(p, None))
            .collect();
        self.write(ops).await.map(drop)
    }

    /// The znodes of a deleted topic: `/brokers/topics/<t>` (recursively), `/config/topics/<t>`
    /// and `/admin/delete_topics/<t>`, in that order as Kafka's `TopicDeletionManager`, each a
    /// fenced write; missing ones are skipped.
    pub async fn delete_topic_znodes(&self, topic: &str) -> Result<(), ZkError> {
        self.delete_recursively(&paths::topic(topic)).await?;
        self.delete_recursively(&paths::topic_config(topic)).await?;
        self.delete_recursively(&paths::delete_topic(topic)).await
    }

    /// Appends `path` and its descendants, parents before children. False if `path` is absent.
    async fn collect_subtree(&self, path: &str, out: &mut Vec<String>) -> Result<bool, ZkError> {
        let mut pending = vec![path.to_owned()];
        while let Some(next) = pending.pop() {
            let children = match self.client.children(&next).await {
                Ok(children) => children,
                Err(ZkError::NoNode { .. }) if next == path => return Ok(false),
                // Deleted concurrently: the multi below will say so if it matters.
                Err(ZkError::NoNode { .. }) => continue,
                Err(err) => return Err(err),
            };
            pending.extend(children.iter().map(|child| format!("{next}/{child}")));
            out.push(next);
        }
        Ok(true)
    }
}

fn set_version(results: &[OpResult]) -> Option<ZkVersion> {
    results.iter().find_map(|result| match result {
        OpResult::Set { stat } => Some(stat.version),
        _ => None,
    })
}
