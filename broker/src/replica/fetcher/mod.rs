//! Follower fetchers: one fetch loop per leader broker, copying the leader's log for every
//! partition this broker follows from it (Kafka's `ReplicaFetcherManager` with
//! `num.replica.fetchers=1`).
//!
//! ```text
//!   LeaderAndIsr (control.rs)
//!        │ follow(partition, leader, endpoint, epoch) / stop_following(tp)
//!        ▼
//!   FetcherManager ── one command channel per (leader, endpoint) ──► leader_fetcher::run
//!                                                                    │ OffsetForLeaderEpoch → truncate
//!                                                                    │ Fetch(replica_id=me) → append_as_follower
//!                                                                    ▼ follower HW = min(leader HW, LEO)
//! ```
//!
//! The manager only routes: each fetch loop owns its partitions' fetch state; the partition
//! itself refuses a follower append or truncation once a LeaderAndIsr has changed its role or
//! epoch, so a fetch loop that is a step behind cannot write into a replica that leads.

mod leader_fetcher;
pub mod truncation;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tributary_zk_layout::{BrokerId, LeaderEpoch};

use super::Partition;
use crate::log::TopicPartition;

/// Which fetch loop a partition belongs to: the leader and where to reach it.
type FetcherKey = (BrokerId, String);

/// A request to a fetch loop.
#[derive(Debug)]
enum Command {
    /// Fetch this partition (again) for this leader epoch: truncate first, then fetch.
    Add {
        partition: Arc<Partition>,
        leader_epoch: LeaderEpoch,
    },
    /// Stop fetching this partition.
    Remove(TopicPartition),
}

#[derive(Debug)]
struct Fetcher {
    commands: mpsc::UnboundedSender<Command>,
    partitions: usize,
    task: JoinHandle<()>,
}

#[derive(Debug, Default)]
struct Fetchers {
    running: HashMap<FetcherKey, Fetcher>,
    assigned: HashMap<TopicPartition, FetcherKey>,
}

/// Starts, re-points and stops the fetch loops. Called by the Control service while it
/// holds the control lock, so assignments change one request at a time.
#[derive(Debug)]
pub struct FetcherManager {
    me: BrokerId,
    fetchers: Mutex<Fetchers>,
}

impl FetcherManager {
    /// No fetch loops yet; `me` is this broker (the `replica_id` of its fetches).
    pub fn new(me: BrokerId) -> Self {
        Self {
            me,
            fetchers: Mutex::new(Fetchers::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Fetchers> {
        self.fetchers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Fetches `partition` from `leader` at `endpoint` (`host:port`) for `leader_epoch`,
    /// moving it from the fetch loop it was in. Without a leader or an endpoint it is not
    /// fetched until the next LeaderAndIsr. Must be called within the tokio runtime.
    pub fn follow(
        &self,
        partition: Arc<Partition>,
        leader: BrokerId,
        endpoint: Option<String>,
        leader_epoch: LeaderEpoch,
    ) {
        let tp = partition.topic_partition().clone();
        let mut fetchers = self.lock();
        remove(&mut fetchers, &tp);
        let endpoint = match endpoint {
            Some(endpoint) if leader != BrokerId::NONE && leader != self.me => endpoint,
            _ => {
                tracing::warn!(topic_partition = %tp, leader = leader.0, "not fetching: the leader or its endpoint is unknown; waiting for the next LeaderAndIsr");
                return;
            }
        };
        let key = (leader, endpoint);
        let me = self.me;
        let fetcher = fetchers.running.entry(key.clone()).or_insert_with(|| {
            let (commands, receiver) = mpsc::unbounded_channel();
            tracing::info!(leader = leader.0, endpoint = %key.1, "starting a fetcher");
            let task = tokio::spawn(leader_fetcher::run(me, key.0, key.1.clone(), receiver));
            Fetcher {
                commands,
                partitions: 0,
                task,
            }
        });
        fetcher.partitions += 1;
        let _ = fetcher.commands.send(Command::Add {
            partition,
            leader_epoch,
        });
        fetchers.assigned.insert(tp, key);
    }

    /// Stops fetching `tp` (it became leader, stopped, or was deleted).
    pub fn stop_following(&self, tp: &TopicPartition) {
        remove(&mut self.lock(), tp);
    }

    /// The leader `tp` is fetched from, if any (for tests and logs).
    pub fn fetching_from(&self, tp: &TopicPartition) -> Option<BrokerId> {
        self.lock().assigned.get(tp).map(|(leader, _)| *leader)
    }

    /// Stops every fetch loop (before the logs are closed at shutdown).
    pub async fn shutdown(&self) {
        let tasks: Vec<JoinHandle<()>> = {
            let mut fetchers = self.lock();
            fetchers.assigned.clear();
            fetchers.running.drain().map(|(_, f)| f.task).collect()
        };
        for task in tasks {
            task.abort();
            let _ = task.await;
        }
    }
}

/// Takes `tp` out of its fetch loop; a loop left without partitions stops.
fn remove(fetchers: &mut Fetchers, tp: &TopicPartition) {
    let Some(key) = fetchers.assigned.remove(tp) else {
        return;
    };
    if let Some(fetcher) = fetchers.running.get_mut(&key) {
        let _ = fetcher.commands.send(Command::Remove(tp.clone()));
        fetcher.partitions -= 1;
        if fetcher.partitions == 0 {
            tracing::info!(leader = key.0.0, endpoint = %key.1, "stopping an idle fetcher");
            // Dropping the sender ends the loop once it has read the queued commands.
            fetchers.running.remove(&key);
        }
    }
}
