//! The Tributary broker: storage engine, partition replicas, gRPC services.
//!
//! Glossary (the only abbreviations used in this crate):
//! * **LEO** — log end offset: the offset the next appended record will get.
//! * **HW** — high watermark: records below it are committed and visible to consumers.
//! * **ISR** — in-sync replicas: the replicas caught up with the leader.
//!
//! Layout: [`config`] (server.properties), [`log`] (segments, indexes, recovery, retention),
//! [`replica`] (hosted partitions and their HW), [`metadata_cache`] (the cluster as the
//! controller describes it), [`topic_configs`] (topic overrides from ZooKeeper), [`topics`] (name
//! rules), [`server`] (one file per request family), [`run`] (start-up and shutdown order).

pub mod config;
pub mod control_fence;
pub mod controller_candidate;
pub mod log;
pub mod meta_properties;
pub mod metadata_cache;
pub mod replica;
pub mod run;
pub mod server;
pub mod state;
pub mod topic_config_sync;
pub mod topic_configs;
pub mod topics;
pub mod zk_session;

pub use run::{BrokerError, run};
