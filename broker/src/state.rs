//! What every request handler shares: configuration, identity, hosted partitions, the metadata
//! cache, topic configuration overrides, the ZooKeeper session and who the controller is.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use tokio::sync::watch;
use tributary_controller::zk::ZkClient;
use tributary_zk_layout::BrokerEpoch;

use crate::config::{BrokerConfig, effective_log_config};
use crate::controller_candidate::ControllerView;
use crate::group::GroupCoordinator;
use crate::log::LogConfig;
use crate::metadata_cache::MetadataCache;
use crate::producer_ids::ProducerIdManager;
use crate::replica::{FetcherManager, ReplicaManager};
use crate::topic_configs::TopicConfigs;

/// Shared broker state. Each piece has one owner: the replica manager owns the partitions, the
/// Control service writes the metadata cache, the config watcher writes the topic configs, the
/// session keeper publishes the session and the broker epoch, the controller candidate
/// publishes the controller view, the group coordinator's role-event task changes which
/// offsets partitions it serves.
#[derive(Debug)]
pub struct BrokerState {
    /// Validated configuration.
    pub config: BrokerConfig,
    /// Cluster id (`/cluster/id`, also in `meta.properties`).
    pub cluster_id: String,
    /// Host advertised to clients.
    pub advertised_host: String,
    /// Port advertised to clients.
    pub advertised_port: u16,
    /// Hosted partitions.
    pub replicas: ReplicaManager,
    /// The fetch loops copying the leaders' logs into the partitions this broker follows.
    pub fetchers: FetcherManager,
    /// The cluster as the controller last described it.
    pub metadata: MetadataCache,
    /// Topic-level configuration overrides.
    pub topic_configs: TopicConfigs,
    /// The current ZooKeeper session (`None` between a session expiry and the next session).
    pub zk: watch::Receiver<Option<ZkClient>>,
    /// The czxid of this broker's current `/brokers/ids/<id>` registration.
    pub broker_epoch: Arc<AtomicI64>,
    /// Who the controller is (published by the controller candidate).
    pub controller: watch::Receiver<ControllerView>,
    /// Producer ids for idempotent producers (this broker's block).
    pub producer_ids: ProducerIdManager,
    /// The group coordinator: the `__consumer_offsets` partitions this broker leads and their
    /// groups.
    pub groups: GroupCoordinator,
}

impl BrokerState {
    /// This broker's id.
    pub fn broker_id(&self) -> i32 {
        self.config.broker_id
    }

    /// The current broker epoch.
    pub fn broker_epoch(&self) -> BrokerEpoch {
        BrokerEpoch(self.broker_epoch.load(Ordering::Acquire))
    }

    /// The current ZooKeeper session, if any.
    pub fn zk_client(&self) -> Option<ZkClient> {
        self.zk.borrow().clone()
    }

    /// The log settings of a topic: broker defaults plus its known overrides.
    pub fn log_config_for(&self, topic: &str) -> LogConfig {
        // Overrides were validated when written; fall back to the defaults if a hand-written
        // znode holds something invalid (and say so).
        effective_log_config(&self.config.log_defaults, &self.topic_configs.get(topic))
            .unwrap_or_else(|error| {
                tracing::warn!(%topic, %error, "ignoring invalid topic config override");
                self.config.log_defaults.clone()
            })
    }

    /// `min.insync.replicas` for a topic (topic override, else the broker default).
    pub fn min_insync_replicas(&self, topic: &str) -> i32 {
        self.topic_configs
            .get(topic)
            .get("min.insync.replicas")
            .and_then(|v| v.parse().ok())
            .unwrap_or(self.config.min_insync_replicas)
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
