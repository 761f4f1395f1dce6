//! The one task that writes leader-decided ISR changes to ZooKeeper (Kafka 2.8's ZooKeeper
//! path, `Partition.expandIsr`/`shrinkIsr` → `ReplicationUtils.updateLeaderAndIsr`, then
//! `ReplicaManager.maybePropagateIsrChanges`).
//!
//! For each [`IsrChange`]: a conditional `setData` of
//! `/brokers/topics/<t>/partitions/<p>/state` on the version the leader knows, keeping leader,
//! leader epoch and controller epoch. A BADVERSION or a lost reply is resolved by re-reading
//! the znode: another leader epoch there means this broker no longer leads at the epoch of
//! the change, which is abandoned (the LeaderAndIsr that follows brings the truth); the
//! same epoch means the znode was last written by this leader (only the controller changes
//! the epoch), so its version is adopted — and if it already holds the new ISR, the write
//! landed. Every change that landed is then announced in one
//! `/isr_change_notification/isr_change_<seq>` child, so the controller re-reads the states
//! and sends UpdateMetadata to every broker.
//!
//! Kafka delays the notification (2.5 s batches, up to 60 s) to protect the controller from
//! ISR churn on large clusters; here it is written at once, after each batch of changes the
//! writer found queued, which keeps metadata fresh for clients and tests at the price of
//! more notifications under churn.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tributary_controller::zk::{ZkClient, ZkError};
use tributary_zk_layout::payloads::{
    IsrChangeNotification, PartitionState, Payload, TopicPartitionRef,
};
use tributary_zk_layout::{PartitionId, ZkVersion, paths};

use super::Partition;
use super::isr::IsrUpdate;

/// An ISR change decided by a partition's leader, to write.
#[derive(Debug)]
pub struct IsrChange {
    /// The partition, told the outcome.
    pub partition: Arc<Partition>,
    /// The change.
    pub update: IsrUpdate,
}

/// Pause between attempts when ZooKeeper does not answer or there is no session.
const RETRY_BACKOFF: Duration = Duration::from_millis(500);
/// Attempts per change before it is abandoned (the partition keeps its old ISR; the next
/// shrink pass or follower fetch proposes it again).
const MAX_ATTEMPTS: usize = 20;

/// What one conditional write ended as.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// The znode holds the new ISR at this version.
    Written(ZkVersion),
    /// The leader epoch moved (or the znode is gone): not ours to change any more.
    Abandoned,
}

/// Runs until `shutdown` turns true or the senders are gone.
pub async fn run(
    mut changes: mpsc::UnboundedReceiver<IsrChange>,
    sessions: watch::Receiver<Option<ZkClient>>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let first = tokio::select! {
            change = changes.recv() => match change {
                Some(change) => change,
                None => return,
            },
            _ = shutdown.changed() => return,
        };
        let mut batch = vec![first];
        while let Ok(more) = changes.try_recv() {
            batch.push(more);
        }
        let mut written = Vec::new();
        for change in batch {
            let outcome = write_with_retries(&sessions, &change.update, &change.partition).await;
            let tp = change.partition.topic_partition().clone();
            match outcome {
                Outcome::Written(version) => {
                    tracing::info!(
                        topic_partition = %tp,
                        isr = ?change.update.isr,
                        zk_version = version.0,
                        "ISR updated in ZooKeeper"
                    );
                    change
                        .partition
                        .complete_isr_update(&change.update, Some(version));
                    written.push(TopicPartitionRef::new(tp.topic, PartitionId(tp.partition)));
                }
                Outcome::Abandoned => {
                    tracing::info!(
                        topic_partition = %tp,
                        isr = ?change.update.isr,
                        leader_epoch = change.update.leader_epoch.0,
                        "ISR change abandoned: the partition state moved on (a newer leader epoch); waiting for LeaderAndIsr"
                    );
                    change.partition.complete_isr_update(&change.update, None);
                }
            }
        }
        if !written.is_empty() {
            notify(&sessions, written).await;
        }
    }
}

async fn write_with_retries(
    sessions: &watch::Receiver<Option<ZkClient>>,
    update: &IsrUpdate,
    partition: &Partition,
) -> Outcome {
    let tp = partition.topic_partition();
    let path = paths::partition_state(&tp.topic, PartitionId(tp.partition));
    let mut expected = update.zk_version;
    for attempt in 0..MAX_ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(RETRY_BACKOFF).await;
        }
        // A newer LeaderAndIsr arrived meanwhile: the change belongs to an old epoch.
        if !partition.is_leader() || partition.leader_epoch() != update.leader_epoch {
            return Outcome::Abandoned;
        }
        let Some(client) = sessions.borrow().clone() else {
            continue;
        };
        match write_once(&client, &path, update, expected).await {
            Ok(outcome) => return outcome,
            Err(Retry::WithVersion(version)) => expected = version,
            Err(Retry::Later(error)) => {
                tracing::warn!(%path, %error, "ISR write failed; retrying");
            }
        }
    }
    Outcome::Abandoned
}

enum Retry {
    /// The znode is at another version of the same leader epoch: write again on it.
    WithVersion(ZkVersion),
    /// ZooKeeper did not answer (or the session is gone): try again later.
    Later(ZkError),
}

async fn write_once(
    client: &ZkClient,
    path: &str,
    update: &IsrUpdate,
    expected: ZkVersion,
) -> Result<Outcome, Retry> {
    let desired = PartitionState::new(
        update.leader,
        update.leader_epoch,
        update.isr.clone(),
        update.controller_epoch,
    );
    match client.set(path, &desired.encode(), Some(expected)).await {
        Ok(stat) => return Ok(Outcome::Written(stat.version)),
        Err(ZkError::NoNode { .. }) => return Ok(Outcome::Abandoned),
        Err(ZkError::BadVersion { .. }) => {}
        Err(error) if error.is_retriable() => {}
        Err(error) => return Err(Retry::Later(error)),
    }
    // BADVERSION or no reply: read what is there.
    let found = match client.get_payload_if_exists::<PartitionState>(path).await {
        Ok(found) => found,
        Err(error) => return Err(Retry::Later(error)),
    };
    match resolve(&desired, found.map(|(state, stat)| (state, stat.version))) {
        Resolution::Landed(version) => Ok(Outcome::Written(version)),
        Resolution::Abandon => Ok(Outcome::Abandoned),
        Resolution::RetryOn(version) => Err(Retry::WithVersion(version)),
    }
}

/// How a failed or unanswered conditional write is resolved from the znode as re-read.
#[derive(Debug, PartialEq, Eq)]
enum Resolution {
    /// The znode holds exactly what was written: the write landed, its reply was lost.
    Landed(ZkVersion),
    /// Another leader epoch (or leader), or no znode: stop.
    Abandon,
    /// Same leader and epoch, other content: adopt the version and write again.
    RetryOn(ZkVersion),
}

fn resolve(desired: &PartitionState, found: Option<(PartitionState, ZkVersion)>) -> Resolution {
    let Some((current, version)) = found else {
        return Resolution::Abandon;
    };
    if current.leader != desired.leader || current.leader_epoch != desired.leader_epoch {
        return Resolution::Abandon;
    }
    if current.isr == desired.isr && current.controller_epoch == desired.controller_epoch {
        return Resolution::Landed(version);
    }
    Resolution::RetryOn(version)
}

/// Creates the notification, retrying while ZooKeeper does not answer. A lost reply may
/// leave two notifications; the controller handles duplicates (it re-reads the states).
async fn notify(sessions: &watch::Receiver<Option<ZkClient>>, partitions: Vec<TopicPartitionRef>) {
    let payload = IsrChangeNotification::new(partitions).encode();
    for attempt in 0..MAX_ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(RETRY_BACKOFF).await;
        }
        let Some(client) = sessions.borrow().clone() else {
            continue;
        };
        match client
            .create_sequential(paths::isr_change_prefix(), &payload)
            .await
        {
            Ok(path) => {
                tracing::debug!(%path, "published ISR change notification");
                return;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot publish the ISR change notification; retrying");
            }
        }
    }
    tracing::error!(
        "gave up publishing an ISR change notification; metadata stays stale until the next change"
    );
}

#[cfg(test)]
mod tests {
    use tributary_zk_layout::{BrokerId, ControllerEpoch, LeaderEpoch};

    use super::*;

    fn state(leader: i32, epoch: i32, isr: &[i32], controller_epoch: i32) -> PartitionState {
        PartitionState::new(
            BrokerId(leader),
            LeaderEpoch(epoch),
            isr.iter().copied().map(BrokerId).collect(),
            ControllerEpoch(controller_epoch),
        )
    }

    #[test]
    fn a_failed_write_is_resolved_from_the_znode() {
        let desired = state(1, 4, &[1, 2, 3], 7);
        let table = [
            (None, Resolution::Abandon),
            (
                Some((state(1, 4, &[1, 2, 3], 7), ZkVersion(9))),
                Resolution::Landed(ZkVersion(9)),
            ),
            (
                Some((state(1, 4, &[1, 2], 7), ZkVersion(9))),
                Resolution::RetryOn(ZkVersion(9)),
            ),
            (
                Some((state(1, 5, &[1, 2, 3], 8), ZkVersion(9))),
                Resolution::Abandon,
            ),
            (
                Some((state(2, 4, &[2, 3], 7), ZkVersion(9))),
                Resolution::Abandon,
            ),
        ];
        for (found, expected) in table {
            assert_eq!(resolve(&desired, found.clone()), expected, "{found:?}");
        }
    }
}
