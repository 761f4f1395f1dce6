//! [`ControllerHandle`]: how the rest of the broker talks to the running controller loop
//! (ControlledShutdown and preferred elections arrive as RPCs on whichever broker is
//! controller; the Control service passes them in here).

use std::collections::{BTreeMap, BTreeSet};

use tokio::sync::{mpsc, oneshot};
use tributary_zk_layout::{BrokerEpoch, BrokerId};

use crate::cluster::TopicPartition;
use crate::handlers::controlled_shutdown::ControlledShutdownError;
use crate::handlers::preferred_leader::ElectLeaderError;

/// A request from an RPC to the controller loop, with the channel for its answer.
#[derive(Debug)]
pub enum ControllerRequest {
    /// A broker asks to move its leaderships away before it stops.
    ControlledShutdown {
        /// The broker stopping.
        broker: BrokerId,
        /// Its broker epoch.
        broker_epoch: BrokerEpoch,
        /// Where the answer goes: the partitions it still leads, or why it was refused.
        reply: oneshot::Sender<Result<Vec<TopicPartition>, ControlledShutdownError>>,
    },
    /// Elect the preferred replica of these partitions.
    ElectPreferred {
        /// The partitions; empty means every partition.
        partitions: BTreeSet<TopicPartition>,
        /// Where the answer goes: one result per partition.
        reply: oneshot::Sender<BTreeMap<TopicPartition, Result<(), ElectLeaderError>>>,
    },
}

/// Why a request could not be answered by the controller loop.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum HandleError {
    /// The loop stopped (this broker resigned or is shutting down): ask the new controller.
    #[error("this broker is no longer the controller")]
    NotController,
}

/// A cheap, cloneable sender of requests to the running controller loop.
#[derive(Debug, Clone)]
pub struct ControllerHandle {
    requests: mpsc::Sender<ControllerRequest>,
}

impl ControllerHandle {
    /// A handle and the receiving end the loop drains.
    pub fn channel() -> (Self, mpsc::Receiver<ControllerRequest>) {
        let (requests, rx) = mpsc::channel(64);
        (Self { requests }, rx)
    }

    /// Runs a controlled shutdown for `broker`.
    pub async fn controlled_shutdown(
        &self,
        broker: BrokerId,
        broker_epoch: BrokerEpoch,
    ) -> Result<Result<Vec<TopicPartition>, ControlledShutdownError>, HandleError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(ControllerRequest::ControlledShutdown {
                broker,
                broker_epoch,
                reply,
            })
            .await
            .map_err(|_| HandleError::NotController)?;
        answer.await.map_err(|_| HandleError::NotController)
    }

    /// Runs a preferred leader election (empty `partitions`: all partitions).
    pub async fn elect_preferred(
        &self,
        partitions: BTreeSet<TopicPartition>,
    ) -> Result<BTreeMap<TopicPartition, Result<(), ElectLeaderError>>, HandleError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(ControllerRequest::ElectPreferred { partitions, reply })
            .await
            .map_err(|_| HandleError::NotController)?;
        answer.await.map_err(|_| HandleError::NotController)
    }
}
