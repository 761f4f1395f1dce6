//! The broker's metadata cache: the cluster as the controller last described it in
//! UpdateMetadata (Kafka's `MetadataCache`). `Metadata` and `DescribeTopics` answer from it, so
//! any broker can tell a client where every partition's leader is.
//!
//! One writer (the Control service applying UpdateMetadata) replaces entries under a short
//! write lock; readers take a consistent snapshot. Every change bumps a generation counter on a
//! watch channel so that admin requests can wait for their topic to appear or disappear.

use std::collections::BTreeMap;
use std::sync::RwLock;

use tokio::sync::watch;

use crate::log::TopicPartition;

/// A live broker as UpdateMetadata lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedBroker {
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: u16,
    /// `broker.rack`, if set.
    pub rack: Option<String>,
    /// The broker epoch (czxid of its registration) as the controller sent it, if it did.
    pub epoch: Option<i64>,
}

/// One partition's replication state as the controller decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedPartition {
    /// The leader's broker id, -1 when none.
    pub leader: i32,
    /// The leader epoch.
    pub leader_epoch: i32,
    /// In-sync replicas.
    pub isr: Vec<i32>,
    /// All replicas in preference order.
    pub replicas: Vec<i32>,
    /// Replicas on brokers that are down.
    pub offline_replicas: Vec<i32>,
    /// Version of the partition's state znode.
    pub zk_version: i32,
}

/// The state behind the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataSnapshot {
    /// The controller epoch of the last UpdateMetadata applied; -1 before any.
    pub controller_epoch: i32,
    /// Live brokers by id.
    pub brokers: BTreeMap<i32, CachedBroker>,
    /// Partitions by topic, then partition id.
    pub topics: BTreeMap<String, BTreeMap<i32, CachedPartition>>,
}

impl Default for MetadataSnapshot {
    fn default() -> Self {
        Self {
            controller_epoch: -1,
            brokers: BTreeMap::new(),
            topics: BTreeMap::new(),
        }
    }
}

impl MetadataSnapshot {
    /// One partition's state, if known.
    pub fn partition(&self, tp: &TopicPartition) -> Option<&CachedPartition> {
        self.topics.get(&tp.topic)?.get(&tp.partition)
    }

    /// The endpoint of `broker`, if live.
    pub fn broker(&self, broker: i32) -> Option<&CachedBroker> {
        self.brokers.get(&broker)
    }
}

/// The cache. See the module documentation.
#[derive(Debug)]
pub struct MetadataCache {
    state: RwLock<MetadataSnapshot>,
    generation: watch::Sender<u64>,
}

impl Default for MetadataCache {
    fn default() -> Self {
        Self::new()
    }
}

impl MetadataCache {
    /// An empty cache (no brokers, no topics) until the first UpdateMetadata.
    pub fn new() -> Self {
        Self {
            state: RwLock::new(MetadataSnapshot::default()),
            generation: watch::channel(0).0,
        }
    }

    /// A copy of the whole cache.
    pub fn snapshot(&self) -> MetadataSnapshot {
        self.state.read().expect("metadata cache lock").clone()
    }

    /// Reads under the lock without copying.
    pub fn read<R>(&self, f: impl FnOnce(&MetadataSnapshot) -> R) -> R {
        f(&self.state.read().expect("metadata cache lock"))
    }

    /// One partition's state, if known.
    pub fn partition(&self, tp: &TopicPartition) -> Option<CachedPartition> {
        self.read(|s| s.partition(tp).cloned())
    }

    /// Applies an UpdateMetadata: replaces the broker list, upserts `partitions` and removes
    /// `deleted` (a topic left without partitions disappears).
    /// Records the controller epoch of an UpdateMetadata about to be applied (the Control
    /// service fenced it, so it never goes backwards).
    pub fn set_controller_epoch(&self, epoch: i32) {
        let mut state = self.state.write().expect("metadata cache lock");
        state.controller_epoch = state.controller_epoch.max(epoch);
    }

    pub fn apply(
        &self,
        brokers: BTreeMap<i32, CachedBroker>,
        partitions: Vec<(TopicPartition, CachedPartition)>,
        deleted: &[TopicPartition],
    ) {
        {
            let mut state = self.state.write().expect("metadata cache lock");
            state.brokers = brokers;
            for (tp, partition) in partitions {
                state
                    .topics
                    .entry(tp.topic)
                    .or_default()
                    .insert(tp.partition, partition);
            }
            for tp in deleted {
                if let Some(topic) = state.topics.get_mut(&tp.topic) {
                    topic.remove(&tp.partition);
                    if topic.is_empty() {
                        state.topics.remove(&tp.topic);
                    }
                }
            }
        }
        self.generation.send_modify(|g| *g += 1);
    }

    /// A receiver woken after every [`apply`](Self::apply).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// Waits until `done(snapshot)` holds or `timeout` passes; returns whether it held.
    pub async fn wait_until(
        &self,
        timeout: std::time::Duration,
        mut done: impl FnMut(&MetadataSnapshot) -> bool,
    ) -> bool {
        let mut changes = self.subscribe();
        let wait = async {
            loop {
                if self.read(&mut done) {
                    return;
                }
                if changes.changed().await.is_err() {
                    return;
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.is_ok() && self.read(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(leader: i32) -> CachedPartition {
        CachedPartition {
            leader,
            leader_epoch: 0,
            isr: vec![leader],
            replicas: vec![leader],
            offline_replicas: vec![],
            zk_version: 0,
        }
    }

    fn tp(topic: &str, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }

    #[test]
    fn apply_upserts_and_deletes_and_drops_empty_topics() {
        let cache = MetadataCache::new();
        cache.apply(
            BTreeMap::new(),
            vec![
                (tp("a", 0), part(1)),
                (tp("a", 1), part(2)),
                (tp("b", 0), part(1)),
            ],
            &[],
        );
        cache.apply(BTreeMap::new(), vec![(tp("a", 1), part(3))], &[tp("b", 0)]);
        let snap = cache.snapshot();
        assert_eq!(snap.partition(&tp("a", 1)).unwrap().leader, 3);
        assert_eq!(snap.partition(&tp("a", 0)).unwrap().leader, 1);
        assert!(!snap.topics.contains_key("b"));
    }

    #[tokio::test]
    async fn wait_until_sees_a_later_apply_and_times_out_otherwise() {
        let cache = std::sync::Arc::new(MetadataCache::new());
        let writer = cache.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            writer.apply(BTreeMap::new(), vec![(tp("a", 0), part(1))], &[]);
        });
        assert!(
            cache
                .wait_until(std::time::Duration::from_secs(10), |s| s
                    .topics
                    .contains_key("a"))
                .await
        );
        assert!(
            !cache
                .wait_until(std::time::Duration::from_millis(10), |s| s
                    .topics
                    .contains_key("z"))
                .await
        );
    }
}
