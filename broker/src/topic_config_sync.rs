//! Keeps [`TopicConfigs`](crate::topic_configs::TopicConfigs) and the hosted logs in step with
//! `/config/topics/<t>`: loaded when the broker starts hosting a topic ([`ensure_loaded`]), and
//! refreshed by the config watcher ([`run`]) when a `/config/changes/config_change_<seq>`
//! notification names the topic (Kafka's `DynamicConfigManager` with its
//! `ZkNodeChangeNotificationListener`).
//!
//! The watcher, per ZooKeeper session:
//! 1. lists `/config/changes` with a one-shot child watch;
//! 2. for each notification whose sequence number is greater than the last one processed (all
//!    of them on start and after a new session), reloads `/config/topics/<t>` and gives every
//!    hosted partition of the topic its new `LogConfig`;
//! 3. deletes notifications older than [`CHANGE_EXPIRATION_MS`] (by the znode's ctime), as
//!    Kafka's brokers purge them;
//! 4. waits for the watch to fire (then goes back to 1), for a new session, or for `stop`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tributary_controller::zk::admin::{
    ConfigChange, delete_config_change, read_config_change, read_topic_config,
};
use tributary_controller::zk::{ZkClient, ZkError};
use tributary_zk_layout::paths;

use crate::log::TopicPartition;
use crate::state::{BrokerState, now_ms};

/// Notifications older than this are deleted (Kafka's `changeExpirationMs`: 15 minutes).
pub const CHANGE_EXPIRATION_MS: i64 = 15 * 60 * 1000;
/// Pause after a ZooKeeper error before listing again on the same session.
const RETRY_BACKOFF: Duration = Duration::from_millis(500);

/// Loads the overrides of `topic` from ZooKeeper unless already known. Without a session the
/// broker defaults apply until the next load.
pub async fn ensure_loaded(state: &BrokerState, topic: &str) -> Result<(), ZkError> {
    if state.topic_configs.contains(topic) {
        return Ok(());
    }
    reload(state, topic).await
}

/// Reads `/config/topics/<topic>` and replaces the known overrides (none if it is absent).
pub async fn reload(state: &BrokerState, topic: &str) -> Result<(), ZkError> {
    let Some(client) = state.zk_client() else {
        return Ok(());
    };
    let config = read_topic_config(&client, topic).await?.config;
    state.topic_configs.set(topic, config);
    Ok(())
}

/// The notifications to process, in sequence order: those after `last_processed` (all of
/// them when `None`).
pub fn pending_changes(
    changes: &[ConfigChange],
    last_processed: Option<u64>,
) -> Vec<&ConfigChange> {
    let mut pending: Vec<&ConfigChange> = changes
        .iter()
        .filter(|change| last_processed.is_none_or(|last| change.sequence > last))
        .collect();
    pending.sort_by_key(|change| change.sequence);
    pending
}

/// The notifications to delete: created more than [`CHANGE_EXPIRATION_MS`] before `now_ms`.
pub fn expired_changes(changes: &[ConfigChange], now_ms: i64) -> Vec<&ConfigChange> {
    changes
        .iter()
        .filter(|change| change.ctime_ms.saturating_add(CHANGE_EXPIRATION_MS) < now_ms)
        .collect()
}

/// Runs the config watcher until `stop` becomes true (or the session channel closes). Spawn
/// it once the broker has its state: `tokio::spawn(topic_config_sync::run(state, stop_rx))`.
pub async fn run(state: Arc<BrokerState>, mut stop: watch::Receiver<bool>) {
    let mut sessions = state.zk.clone();
    loop {
        if *stop.borrow() {
            return;
        }
        let client = sessions.borrow_and_update().clone();
        if let Some(client) = client {
            // A new session: every existing notification is processed once.
            let mut last_processed = None;
            match watch_session(
                &state,
                &client,
                &mut last_processed,
                &mut stop,
                &mut sessions,
            )
            .await
            {
                SessionExit::Stop => return,
                SessionExit::NewSession => continue,
                SessionExit::SessionLost => {}
            }
        }
        // No usable session: wait for the keeper to publish the next one.
        tokio::select! {
            _ = stop.changed() => return,
            changed = sessions.changed() => if changed.is_err() { return },
        }
    }
}

enum SessionExit {
    Stop,
    /// The session keeper published another session.
    NewSession,
    /// This session is over; wait for the next.
    SessionLost,
}

async fn watch_session(
    state: &BrokerState,
    client: &ZkClient,
    last_processed: &mut Option<u64>,
    stop: &mut watch::Receiver<bool>,
    sessions: &mut watch::Receiver<Option<ZkClient>>,
) -> SessionExit {
    loop {
        let path = paths::config_changes();
        let watcher = match client.raw().list_and_watch_children(path).await {
            Ok((children, watcher)) => {
                if let Err(error) = process(state, client, &children, last_processed).await {
                    tracing::warn!(%error, "cannot process config change notifications; will retry");
                    if error.is_session_lost() {
                        return SessionExit::SessionLost;
                    }
                }
                Some(watcher)
            }
            Err(source) => {
                let error = ZkError::from_zk(path, source);
                if error.is_session_lost() {
                    return SessionExit::SessionLost;
                }
                tracing::warn!(%error, "cannot watch config change notifications; retrying");
                None
            }
        };
        let fired = async {
            match watcher {
                Some(watcher) => {
                    watcher.changed().await;
                }
                None => tokio::time::sleep(RETRY_BACKOFF).await,
            }
        };
        tokio::select! {
            _ = stop.changed() => return SessionExit::Stop,
            changed = sessions.changed() => {
                return if changed.is_err() { SessionExit::Stop } else { SessionExit::NewSession };
            }
            // A child event, or a session event (an expired session then fails the next
            // list with SessionExpired).
            () = fired => {}
        }
    }
}

/// Processes the new notifications among `children`, then purges the expired ones.
async fn process(
    state: &BrokerState,
    client: &ZkClient,
    children: &[String],
    last_processed: &mut Option<u64>,
) -> Result<(), ZkError> {
    let mut changes = Vec::with_capacity(children.len());
    for child in children {
        if let Some(change) = read_config_change(client, child).await? {
            changes.push(change);
        }
    }
    for change in pending_changes(&changes, *last_processed) {
        match change.topic() {
            Some(topic) => apply_topic_change(state, topic).await?,
            None => tracing::debug!(
                notification = %change.name,
                entity = ?change.entity_path,
                "ignoring a config change for another entity type"
            ),
        }
        *last_processed = Some(change.sequence);
    }
    for change in expired_changes(&changes, now_ms()) {
        if let Err(error) = delete_config_change(client, &change.name).await {
            tracing::debug!(%error, notification = %change.name, "cannot purge an old config change notification");
        }
    }
    Ok(())
}

/// Reloads `topic`'s overrides and hands the resulting log settings to every partition of the
/// topic hosted here (partition ids from the metadata cache; the logs are found with
/// `ReplicaManager::get`).
async fn apply_topic_change(state: &BrokerState, topic: &str) -> Result<(), ZkError> {
    let partitions: Vec<i32> = state.metadata.read(|snapshot| {
        snapshot
            .topics
            .get(topic)
            .map(|partitions| partitions.keys().copied().collect())
            .unwrap_or_default()
    });
    let hosted: Vec<_> = partitions
        .into_iter()
        .filter_map(|partition| {
            state.replicas.get(&TopicPartition {
                topic: topic.to_owned(),
                partition,
            })
        })
        .collect();
    if hosted.is_empty() && !state.topic_configs.contains(topic) {
        // Not hosted and never loaded: it is read fresh when this broker starts hosting it.
        return Ok(());
    }
    reload(state, topic).await?;
    let config = state.log_config_for(topic);
    for partition in &hosted {
        partition.log().set_config(config.clone());
    }
    tracing::info!(%topic, partitions = hosted.len(), "applied topic config change");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(sequence: u64, ctime_ms: i64) -> ConfigChange {
        ConfigChange {
            name: format!("config_change_{sequence:010}"),
            sequence,
            entity_path: Some("topics/t".into()),
            ctime_ms,
        }
    }

    #[test]
    fn only_later_notifications_are_pending_in_order() {
        let changes = [change(7, 0), change(3, 0), change(5, 0)];
        let all: Vec<u64> = pending_changes(&changes, None)
            .iter()
            .map(|c| c.sequence)
            .collect();
        assert_eq!(all, [3, 5, 7]);
        let later: Vec<u64> = pending_changes(&changes, Some(5))
            .iter()
            .map(|c| c.sequence)
            .collect();
        assert_eq!(later, [7]);
        assert!(pending_changes(&changes, Some(7)).is_empty());
    }

    #[test]
    fn notifications_expire_after_fifteen_minutes() {
        let now = 10 * CHANGE_EXPIRATION_MS;
        let changes = [
            change(1, now - CHANGE_EXPIRATION_MS - 1),
            change(2, now - CHANGE_EXPIRATION_MS),
            change(3, now),
        ];
        let expired: Vec<u64> = expired_changes(&changes, now)
            .iter()
            .map(|c| c.sequence)
            .collect();
        assert_eq!(expired, [1]);
    }

    #[test]
    fn only_topic_notifications_name_a_topic() {
        let mut other = change(1, 0);
        assert_eq!(other.topic(), Some("t"));
        other.entity_path = Some("clients/app1".into());
        assert_eq!(other.topic(), None);
        other.entity_path = None;
        assert_eq!(other.topic(), None);
    }
}
