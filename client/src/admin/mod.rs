//! The admin client: topics, topic configuration, the cluster's shape and preferred leader
//! elections, like Kafka's `AdminClient`.
//!
//! [`Admin`] wraps a [`Client`] and sends every request to its bootstrap broker: any broker
//! serves the `Admin` service and `Metadata` (a broker writes topic changes to ZooKeeper and
//! the controller carries them out; `ElectLeaders` is forwarded to the controller by the
//! receiving broker). Nothing here retries: an admin change is not idempotent
//! (a timed-out creation may have happened), so the caller decides.
//!
//! Errors, for every method:
//! * [`ClientError::InvalidArgument`]: refused before anything was sent (a partition count of 0,
//!   an empty config change, ...);
//! * [`ClientError::Rpc`]: the call failed as a whole; [`ClientError::needs_metadata_refresh`]
//!   is true when the broker could not be reached (a transport failure, `UNAVAILABLE`);
//! * [`ClientError::Broker`]: the broker refused the topic, with Kafka's [`ErrorCode`]
//!   (`UNKNOWN_TOPIC_OR_PARTITION`, `TOPIC_ALREADY_EXISTS`, `INVALID_CONFIG`, and
//!   `REQUEST_TIMED_OUT`, retriable, when the broker has no ZooKeeper session or the change did
//!   not become visible within the timeout; the change then still goes on);
//! * [`ClientError::MalformedResponse`]: the answer lacks the topic the request named.
//!
//! Files: `topics.rs` (create, delete, list, describe, add partitions), `configs.rs`
//! (describe and alter topic configs), `cluster.rs` (metadata, brokers and partition health),
//! `elect.rs` (preferred leader elections); `compat.rs` keeps the older `Client` methods.

mod cluster;
mod compat;
mod configs;
mod elect;
mod topics;

use std::time::Duration;

pub(crate) use cluster::fetch_metadata;
pub use cluster::{BrokerInfo, ClusterDescription, ClusterHealth, ClusterMetadata, TopicMetadata};
pub use configs::{ConfigChange, ConfigSource, ConfigValue, TopicConfig};
pub use elect::ElectionResult;
pub use topics::{
    CreatedTopic, ListTopicsOptions, NewTopic, PartitionInfo, TopicDescription, TopicListing,
};

#[cfg(doc)]
use crate::ErrorCode;
use crate::{Client, ClientError};

/// Kafka's `AdminClient` for a Tributary cluster. Cheap to clone (it shares the
/// [`Client`]'s connection).
///
/// ```no_run
/// # async fn example() -> Result<(), tributary_client::ClientError> {
/// use tributary_client::{Admin, AdminOptions, NewTopic};
///
/// let admin = Admin::connect("127.0.0.1:9092").await?;
/// let topic = NewTopic::new("orders").partitions(3).replication_factor(3);
/// admin.create_topic(&topic, &AdminOptions::default()).await?;
/// for partition in &admin.describe_topic("orders").await?.partitions {
///     if partition.is_under_replicated() {
///         println!("orders-{} is under-replicated", partition.partition);
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Admin {
    client: Client,
}

/// Options of the calls that change topics ([`Admin::create_topic`],
/// [`Admin::create_partitions`], [`Admin::delete_topic`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AdminOptions {
    /// Check the request on the broker without changing anything (create calls only; a
    /// deletion cannot be validated).
    pub validate_only: bool,
    /// How long the broker waits for the change to show in its metadata before it answers
    /// `REQUEST_TIMED_OUT` (the change still goes on). `Duration::ZERO`: the broker default,
    /// 30 s.
    pub timeout: Duration,
}

impl AdminOptions {
    /// Only validate ([`AdminOptions::validate_only`]).
    pub fn validate_only() -> Self {
        AdminOptions {
            validate_only: true,
            ..AdminOptions::default()
        }
    }

    /// Wait at most `timeout` ([`AdminOptions::timeout`]).
    pub fn with_timeout(self, timeout: Duration) -> Self {
        AdminOptions { timeout, ..self }
    }
}

impl Admin {
    /// Connects to the broker at `bootstrap` (`host:port` or `http://host:port`). Fails with
    /// [`ClientError::InvalidArgument`] or [`ClientError::InvalidAddress`] for a bad address,
    /// [`ClientError::Connect`] when nothing answers there.
    pub async fn connect(bootstrap: &str) -> Result<Admin, ClientError> {
        Ok(Admin::new(Client::connect(bootstrap).await?))
    }

    /// The admin client over an existing client's bootstrap connection.
    pub fn new(client: Client) -> Admin {
        Admin { client }
    }

    /// The underlying client (for produce, fetch and offset lookups).
    pub fn client(&self) -> &Client {
        &self.client
    }
}

impl Client {
    /// An [`Admin`] sharing this client's connection.
    pub fn admin(&self) -> Admin {
        Admin::new(self.clone())
    }
}

/// A request's `timeout_ms` (0 = the broker default), saturating at `i32::MAX`.
pub(crate) fn timeout_ms(timeout: Duration) -> i32 {
    i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX)
}
