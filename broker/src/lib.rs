//! The Tributary broker: storage engine, partition replicas, gRPC services.
//!
//! Glossary (the only abbreviations used in this crate):
//! * **LEO** — log end offset: the offset the next appended record will get.
//! * **HW** — high watermark: records below it are committed and visible to consumers.
//! * **ISR** — in-sync replicas: the replicas caught up with the leader.
//!
//! Layout: [`config`] (server.properties), [`log`] (segments, indexes, recovery, retention),
//! [`replica`] (hosted partitions, their role — leader, follower, stopped — and HW),
//! [`control_fence`] (pure fencing of the controller's requests by controller, broker and leader
//! epoch), [`metadata_cache`] (the cluster as the controller describes it), [`topic_configs`]
//! (topic overrides from ZooKeeper), [`topics`] (name rules), [`group`] (the group coordinator:
//! committed offsets in `__consumer_offsets`), [`server`] (one file per request family,
//! including the `Control` service the controller drives), [`run`](mod@run) (start-up and
//! shutdown order).
//!
//! Partitions come online only through the controller: its LeaderAndIsr makes this broker the
//! leader or a follower of a partition, its UpdateMetadata fills the metadata cache, its
//! StopReplica stops (and for topic deletion deletes) a replica. Produce, Fetch and ListOffsets
//! are served by the partition's leader only; other brokers answer NOT_LEADER_OR_FOLLOWER naming
//! it.

pub mod config;
pub mod consume;
pub mod control_fence;
pub mod controlled_shutdown;
pub mod controller_candidate;
pub mod group;
pub mod log;
pub mod meta_properties;
pub mod metadata_cache;
pub mod producer_ids;
pub mod replica;
pub mod run;
pub mod server;
pub mod state;
pub mod topic_config_sync;
pub mod topic_configs;
pub mod topics;
pub mod zk_session;

pub use run::{BrokerError, run};
