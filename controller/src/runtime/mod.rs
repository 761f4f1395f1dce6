//! The controller loop as it runs in the elected broker: load the cluster from ZooKeeper, turn
//! watches, RPCs and timers into [`Event`](crate::event::Event)s, apply each
//! [`Decision`](crate::decision::Decision) through the fenced writer and the broker channels.
//!
//! ```text
//!  persistent watches ──► "part P changed" ─┐
//!  (/brokers/ids, /brokers/topics,          │      re-read P from ZooKeeper
//!   /admin, /isr_change_notification)       ├──►   handle(model, event) ──► fenced writes
//!  RPCs (ControlledShutdown, ElectLeaders) ─┤                               │
//!  broker responses (deletion done) ────────┤                               ▼
//!  auto-rebalance timer ────────────────────┘                  per-broker request queues
//! ```
//!
//! - [`run`] returns when told to stop, when the session ends, or when a write fails: a
//!   `ControllerMoved` write means a newer controller acts; any other write failure leaves the
//!   model out of step with ZooKeeper. Either way the caller resigns and campaigns again (a
//!   re-elected controller reloads everything).
//! - [`ControllerHandle`] is how RPCs that must run in the controller reach the loop.

mod apply;
mod channels;
mod event_loop;
mod handle;
mod load;
mod watches;

use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tributary_zk_layout::BrokerId;

pub use handle::{ControllerHandle, ControllerRequest, HandleError};

use crate::zk::{FencedWriter, ZkError};

/// The broker settings the controller uses.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// This broker's id (the `controller_id` of every request).
    pub me: BrokerId,
    /// `unclean.leader.election.enable` (topic overrides are read from ZooKeeper).
    pub unclean_leader_election: bool,
    /// `auto.leader.rebalance.enable`.
    pub auto_leader_rebalance: bool,
    /// `leader.imbalance.check.interval.seconds`.
    pub rebalance_interval: Duration,
    /// `leader.imbalance.per.broker.percentage`.
    pub imbalance_percentage: u32,
}

/// Why the loop returned.
#[derive(Debug)]
pub enum Exit {
    /// Told to stop (broker shutdown).
    Stopped,
    /// The ZooKeeper session ended.
    SessionEnded,
    /// A ZooKeeper read or write failed; [`ZkError::ControllerMoved`] when fenced.
    Failed(ZkError),
}

/// Runs the controller loop of the controller elected with `writer`'s epoch, serving
/// `requests`, until `stop` changes (see the module documentation for the other exits).
pub async fn run(
    writer: FencedWriter,
    config: RuntimeConfig,
    requests: mpsc::Receiver<ControllerRequest>,
    stop: watch::Receiver<bool>,
) -> Exit {
    event_loop::run(writer, config, requests, stop).await
}
