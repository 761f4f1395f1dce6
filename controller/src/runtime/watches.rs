//! The controller's ZooKeeper watches: one persistent recursive watch per subtree it reacts to
//! (ZooKeeper 3.6+), turned into coarse "this part of the tree changed" signals. The loop then
//! re-reads that part (watch events carry no data, and several changes may be coalesced).
//!
//! Persistent watches may lose events across a reconnection (ZOOKEEPER-4698), so a
//! reconnection is reported as [`WatchSignal::Reconnected`] and the loop re-reads everything.

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use zookeeper_client as zk;

use crate::zk::{ZkClient, ZkError};

/// A part of the tree the controller reacts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Dirty {
    /// `/brokers/ids/<id>` appeared, vanished or changed.
    Brokers,
    /// `/brokers/topics/<t>` appeared, vanished or was rewritten (new partitions).
    Topics,
    /// `/admin/delete_topics/<t>` appeared.
    Deletions,
    /// `/isr_change_notification/isr_change_<seq>` appeared.
    IsrNotifications,
    /// `/admin/preferred_replica_election` appeared or changed.
    PreferredElection,
}

/// What the watch tasks tell the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WatchSignal {
    /// A part of the tree changed.
    Changed(Dirty),
    /// The connection came back after a disconnection: events may have been lost.
    Reconnected,
    /// The session ended: the controller must resign.
    SessionEnded(zk::SessionState),
}

/// The subtrees watched.
const ROOTS: [&str; 4] = [
    "/brokers/ids",
    "/brokers/topics",
    "/admin",
    "/isr_change_notification",
];

/// Which part of the tree a node event's path belongs to (`None`: not interesting, such as a
/// partition state written by the controller itself).
pub(crate) fn classify(path: &str, event: zk::EventType) -> Option<Dirty> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["brokers", "ids", _] => Some(Dirty::Brokers),
        ["brokers", "topics", _] => Some(Dirty::Topics),
        ["admin", "delete_topics", _] if event != zk::EventType::NodeDeleted => {
            Some(Dirty::Deletions)
        }
        ["isr_change_notification", _] if event == zk::EventType::NodeCreated => {
            Some(Dirty::IsrNotifications)
        }
        ["admin", "preferred_replica_election"] if event != zk::EventType::NodeDeleted => {
            Some(Dirty::PreferredElection)
        }
        _ => None,
    }
}

/// Adds the watches and spawns one task per watch forwarding signals to `signals`. The tasks
/// end with the session, or when `signals` is dropped (the loop stopped); abort them to stop
/// them earlier.
pub(crate) async fn subscribe(
    client: &ZkClient,
    signals: mpsc::UnboundedSender<WatchSignal>,
) -> Result<Vec<JoinHandle<()>>, ZkError> {
    let mut tasks = Vec::new();
    // Make sure the roots exist (they are persistent paths, but an operator may have removed
    // `/isr_change_notification`); watching a missing path works but is surprising.
    for root in ROOTS {
        client.ensure_path(root).await?;
    }
    for root in ROOTS {
        let mut watcher = client
            .raw()
            .watch(root, zk::AddWatchMode::PersistentRecursive)
            .await
            .map_err(|err| ZkError::from_zk(root, err))?;
        let signals = signals.clone();
        tasks.push(tokio::spawn(async move {
            let mut disconnected = false;
            loop {
                let event = watcher.changed().await;
                let signal = match event.event_type {
                    zk::EventType::Session => {
                        let state = event.session_state;
                        if state.is_terminated() {
                            let _ = signals.send(WatchSignal::SessionEnded(state));
                            // No more events after a terminal state (and `changed` would panic).
                            return;
                        }
                        if state == zk::SessionState::Disconnected {
                            disconnected = true;
                            continue;
                        }
                        if !std::mem::take(&mut disconnected) {
                            continue;
                        }
                        WatchSignal::Reconnected
                    }
                    kind => match classify(&event.path, kind) {
                        Some(dirty) => WatchSignal::Changed(dirty),
                        None => continue,
                    },
                };
                if signals.send(signal).is_err() {
                    return;
                }
            }
        }));
    }
    Ok(tasks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use zk::EventType::{NodeCreated, NodeDataChanged, NodeDeleted};

    #[test]
    fn paths_map_to_the_part_of_the_tree_the_controller_rereads() {
        let cases = [
            ("/brokers/ids/3", NodeDeleted, Some(Dirty::Brokers)),
            ("/brokers/ids/3", NodeCreated, Some(Dirty::Brokers)),
            ("/brokers/ids", NodeDataChanged, None),
            ("/brokers/topics/orders", NodeCreated, Some(Dirty::Topics)),
            (
                "/brokers/topics/orders",
                NodeDataChanged,
                Some(Dirty::Topics),
            ),
            (
                "/brokers/topics/orders/partitions/0/state",
                NodeDataChanged,
                None,
            ),
            ("/brokers/topics/orders/partitions", NodeCreated, None),
            (
                "/admin/delete_topics/orders",
                NodeCreated,
                Some(Dirty::Deletions),
            ),
            ("/admin/delete_topics/orders", NodeDeleted, None),
            (
                "/isr_change_notification/isr_change_0000000001",
                NodeCreated,
                Some(Dirty::IsrNotifications),
            ),
            (
                "/isr_change_notification/isr_change_0000000001",
                NodeDeleted,
                None,
            ),
            (
                "/admin/preferred_replica_election",
                NodeCreated,
                Some(Dirty::PreferredElection),
            ),
            ("/admin/preferred_replica_election", NodeDeleted, None),
            ("/admin/reassign_partitions", NodeCreated, None),
        ];
        for (path, event, expected) in cases {
            assert_eq!(classify(path, event), expected, "{path} {event:?}");
        }
    }
}
