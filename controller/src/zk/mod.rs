//! The ZooKeeper access layer used by the broker and by the controller event loop.
//!
//! - [`ZkClient`] is one session (chroot from `zookeeper.connect`), typed reads and writes,
//!   start-up paths, session state, clean close.
//! - [`register_broker`] registers the ephemeral `/brokers/ids/<id>` and the broker epoch.
//! - [`create_or_get_cluster_id`] creates or reads `/cluster/id`.
//! - [`try_elect`], [`watch_controller`] and [`resign`] run the controller election.
//! - [`FencedWriter`] makes every controller write, checked against `/controller_epoch`.
//! - [`admin`] holds the unfenced admin writes (create topic, request deletion, add
//!   partitions, change a topic's config) and the reads admin requests need.
//! - [`claim_producer_id_block`] claims producer ids in `/latest_producer_id_block`.
//!
//! Payload encoding lives in `tributary_zk_layout` (pure); this module only moves bytes.
//! Errors are [`ZkError`], which carries the path and says whether a retry can help.

pub mod admin;
mod client;
mod cluster_id;
mod election;
mod error;
mod fenced;
mod ops;
mod producer_ids;
mod registration;

pub use admin::AdminZkError;
pub use client::{ZkClient, ZnodeStat};
pub use cluster_id::create_or_get_cluster_id;
pub use election::{ControllerChange, ElectionOutcome, resign, try_elect, watch_controller};
pub use error::ZkError;
pub use fenced::FencedWriter;
pub use ops::{CreateKind, OpResult, ZkOp};
pub use producer_ids::claim_producer_id_block;
pub use registration::{live_brokers, register_broker};
pub use zookeeper_client::{SessionState, StateWatcher};
