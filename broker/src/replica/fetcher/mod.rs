//! Follower fetchers: `num.replica.fetchers` fetch loops per leader broker (1 by default),
//! copying the leader's log for every partition this broker follows from it (Kafka's
//! `ReplicaFetcherManager`). A partition goes to loop `abs(31 * javaHash(topic) + partition)
//! mod num.replica.fetchers` of its leader, as in Kafka.
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
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tributary_zk_layout::{BrokerId, LeaderEpoch};

use super::Partition;
use crate::log::TopicPartition;

/// Which fetch loop a partition belongs to: the leader, where to reach it, and the loop's
/// index among that leader's `num.replica.fetchers`.
type FetcherKey = (BrokerId, String, u32);

/// How the fetch loops fetch (the `replica.fetch.*` broker keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchSettings {
    /// `replica.fetch.wait.max.ms`: the long poll of each fetch.
    pub wait_max_ms: i32,
    /// `replica.fetch.max.bytes`: per partition, soft (a larger first batch still comes).
    pub max_bytes: i32,
    /// `replica.fetch.response.max.bytes`: per fetch response, soft.
    pub response_max_bytes: i32,
    /// `replica.fetch.backoff.ms`: pause after an error.
    pub backoff: Duration,
    /// `replica.socket.timeout.ms`: longest wait for any answer, long poll included.
    pub socket_timeout: Duration,
    /// `num.replica.fetchers`: fetch loops per leader broker.
    pub fetchers_per_leader: u32,
}

impl Default for FetchSettings {
    /// Kafka's defaults, except a 500 ms backoff (Kafka: 1000) so a partition whose leader has
    /// not applied its LeaderAndIsr yet starts replicating sooner, and a 10 s socket timeout
    /// (Kafka: 30000) so a paused leader holds its followers' loops for less long.
    fn default() -> Self {
        Self {
            wait_max_ms: 500,
            max_bytes: 1_048_576,
            response_max_bytes: 10_485_760,
            backoff: Duration::from_millis(500),
            socket_timeout: Duration::from_secs(10),
            fetchers_per_leader: 1,
        }
    }
}

/// Java's `String.hashCode` (UTF-16 code units), which Kafka uses to spread partitions over
/// fetchers and consumer groups over `__consumer_offsets` partitions.
pub(crate) fn java_string_hash(text: &str) -> i32 {
    text.encode_utf16().fold(0i32, |hash, unit| {
        hash.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// The fetch loop (of `fetchers` per leader) that fetches `tp`: Kafka's
/// `abs(31 * topic.hashCode + partition) % numFetchers`.
fn fetcher_index(tp: &TopicPartition, fetchers: u32) -> u32 {
    let hash = java_string_hash(&tp.topic)
        .wrapping_mul(31)
        .wrapping_add(tp.partition);
    kafka_abs(hash) as u32 % fetchers.max(1)
}

/// Kafka's `Utils.abs`: the absolute value, with `i32::MIN` mapped to 0 (not to itself).
pub(crate) fn kafka_abs(value: i32) -> i32 {
    if value == i32::MIN { 0 } else { value.abs() }
}

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
    settings: FetchSettings,
    fetchers: Mutex<Fetchers>,
}

impl FetcherManager {
    /// No fetch loops yet; `me` is this broker (the `replica_id` of its fetches).
    pub fn new(me: BrokerId, settings: FetchSettings) -> Self {
        Self {
            me,
            settings,
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
        let index = fetcher_index(&tp, self.settings.fetchers_per_leader);
        let key = (leader, endpoint, index);
        let (me, settings) = (self.me, self.settings);
        let fetcher = fetchers.running.entry(key.clone()).or_insert_with(|| {
            let (commands, receiver) = mpsc::unbounded_channel();
            tracing::info!(leader = leader.0, endpoint = %key.1, fetcher = index, "starting a fetcher");
            let task = tokio::spawn(leader_fetcher::run(
                me,
                key.0,
                key.1.clone(),
                settings,
                receiver,
            ));
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
        self.lock().assigned.get(tp).map(|(leader, _, _)| *leader)
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
            tracing::info!(leader = key.0.0, endpoint = %key.1, fetcher = key.2, "stopping an idle fetcher");
            // Dropping the sender ends the loop once it has read the queued commands.
            fetchers.running.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_string_hash_matches_java() {
        // Printed by Java 17's jshell: "topic".hashCode() and so on.
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("topic"), 110_546_223);
        assert_eq!(java_string_hash("__consumer_offsets"), -970_371_369);
        assert_eq!(java_string_hash("héllo"), 103_094_734);
    }

    #[test]
    fn partitions_spread_over_the_fetchers_of_a_leader_as_in_kafka() {
        let tp = |p| TopicPartition::new("topic", p);
        assert!((0..8).all(|p| fetcher_index(&tp(p), 1) == 0));
        // Math.abs(31 * "topic".hashCode() + p) % 3 in jshell, for p = 0..3.
        let indexes: Vec<u32> = (0..4).map(|p| fetcher_index(&tp(p), 3)).collect();
        assert_eq!(indexes, [1, 0, 2, 1]);
    }
}
