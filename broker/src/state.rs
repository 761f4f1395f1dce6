//! What every request handler shares: configuration, identity, hosted partitions, topics.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::config::{BrokerConfig, effective_log_config};
use crate::log::{LogConfig, TopicPartition};
use crate::replica::ReplicaManager;
use crate::topics::{TopicDefinition, TopicStore};

/// Shared broker state. Each piece has one owner: the replica manager owns the partitions, the
/// topic store (behind its mutex, taken only by admin operations and metadata reads) owns topic
/// definitions.
#[derive(Debug)]
pub struct BrokerState {
    /// Validated configuration.
    pub config: BrokerConfig,
    /// Cluster id from `meta.properties`.
    pub cluster_id: String,
    /// Host advertised to clients.
    pub advertised_host: String,
    /// Port advertised to clients.
    pub advertised_port: u16,
    /// Hosted partitions.
    pub replicas: ReplicaManager,
    /// Topic definitions.
    pub topics: Mutex<TopicStore>,
    /// Who the controller is (published by the controller candidate).
    pub controller: tokio::sync::watch::Receiver<crate::controller_candidate::ControllerView>,
}

impl BrokerState {
    /// The log settings of a topic: broker defaults plus its overrides.
    pub fn log_config_for(&self, overrides: &BTreeMap<String, String>) -> LogConfig {
        // Overrides were validated when stored; fall back to the defaults if a hand-edited
        // registry holds something invalid (and say so).
        effective_log_config(&self.config.log_defaults, overrides).unwrap_or_else(|error| {
            tracing::warn!(%error, "ignoring invalid stored topic config");
            self.config.log_defaults.clone()
        })
    }

    /// A topic's definition.
    pub fn topic(&self, name: &str) -> Option<TopicDefinition> {
        self.topics
            .lock()
            .expect("topic store lock")
            .get(name)
            .cloned()
    }

    /// `min.insync.replicas` for a topic (topic override, else the broker default).
    pub fn min_insync_replicas(&self, topic: &str) -> i32 {
        self.topic(topic)
            .and_then(|t| {
                t.configs
                    .get("min.insync.replicas")
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(self.config.min_insync_replicas)
    }

    /// Starts hosting every partition of every stored topic (at start-up).
    pub fn host_stored_topics(&self) -> Result<usize, crate::log::LogError> {
        let topics: Vec<(String, TopicDefinition)> = self
            .topics
            .lock()
            .expect("topic store lock")
            .topics()
            .clone()
            .into_iter()
            .collect();
        let mut hosted = 0;
        for (name, def) in topics {
            let config = self.log_config_for(&def.configs);
            for partition in 0..def.partitions {
                self.replicas.host(
                    &TopicPartition {
                        topic: name.clone(),
                        partition,
                    },
                    config.clone(),
                )?;
                hosted += 1;
            }
        }
        Ok(hosted)
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
