//! One serde type per znode payload, exactly as Kafka 2.8 writes it.
//!
//! Rules every payload follows:
//! - **Compact JSON, Kafka's key order.** Key order carries no meaning to any parser, but
//!   operators compare `zkCli.sh get` output with Kafka's, so each struct declares its fields in
//!   the order zkCli dumps of real Kafka 2.8 clusters show (serde writes fields in declaration
//!   order). Map contents (partition ids, config keys) are written sorted.
//! - **Kafka's quirks kept**: Java longs written as JSON strings (`"timestamp":"1611591513363"`,
//!   `"block_start":"0"`), the cluster id's `"version":"1"`, and `/controller_epoch` as bare
//!   decimal text rather than JSON. Readers accept a number where Kafka writes a string.
//! - **Forward compatible reads**: unknown keys are ignored; missing required keys and
//!   unsupported versions are a [`PayloadError`] naming the payload kind.

mod admin;
mod broker;
mod cluster;
mod config;
mod controller;
mod topic;

pub use admin::{
    DELETE_TOPIC_DATA, IsrChangeNotification, LogDirEventNotification, PartitionReassignment,
    PreferredReplicaElection, ReassignPartitions, TopicPartitionRef,
};
pub use broker::{BrokerRegistration, EndPoint, FeatureVersionRange};
pub use cluster::{ClusterId, ProducerIdBlock};
pub use config::{ConfigChangeNotification, EntityConfig};
pub use controller::{ControllerRegistration, decode_controller_epoch, encode_controller_epoch};
pub use topic::{PartitionState, TopicAssignment};

use std::fmt;
use std::ops::RangeInclusive;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Which payload a decode failed on; the ZooKeeper layer adds the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadKind {
    Controller,
    ControllerEpoch,
    BrokerRegistration,
    TopicAssignment,
    PartitionState,
    EntityConfig,
    ConfigChangeNotification,
    ClusterId,
    IsrChangeNotification,
    PreferredReplicaElection,
    ReassignPartitions,
    LogDirEventNotification,
    ProducerIdBlock,
}

impl fmt::Display for PayloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Controller => "controller (/controller)",
            Self::ControllerEpoch => "controller epoch (/controller_epoch)",
            Self::BrokerRegistration => "broker registration (/brokers/ids/<id>)",
            Self::TopicAssignment => "topic assignment (/brokers/topics/<topic>)",
            Self::PartitionState => {
                "partition state (/brokers/topics/<topic>/partitions/<p>/state)"
            }
            Self::EntityConfig => "entity config (/config/<type>/<name>)",
            Self::ConfigChangeNotification => "config change notification (/config/changes/*)",
            Self::ClusterId => "cluster id (/cluster/id)",
            Self::IsrChangeNotification => "ISR change notification (/isr_change_notification/*)",
            Self::PreferredReplicaElection => {
                "preferred replica election (/admin/preferred_replica_election)"
            }
            Self::ReassignPartitions => "partition reassignment (/admin/reassign_partitions)",
            Self::LogDirEventNotification => {
                "log dir event notification (/log_dir_event_notification/*)"
            }
            Self::ProducerIdBlock => "producer id block (/latest_producer_id_block)",
        })
    }
}

/// A znode payload that could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// Not JSON, wrong types, or a required key missing.
    #[error("malformed {kind} payload")]
    Malformed {
        kind: PayloadKind,
        #[source]
        source: serde_json::Error,
    },
    /// A version this code does not know how to read.
    #[error("{kind} payload has version {found}, this code reads versions {min} to {max}")]
    UnsupportedVersion {
        kind: PayloadKind,
        found: i64,
        min: i32,
        max: i32,
    },
    /// A text payload (`/controller_epoch`) that is not a decimal integer.
    #[error("{kind} payload is not a decimal integer: {text:?}")]
    NotAnInteger { kind: PayloadKind, text: String },
}

/// A JSON znode payload: encode writes Kafka's bytes; decode checks the version.
pub trait Payload: Serialize + DeserializeOwned {
    /// Which payload this is, for errors.
    const KIND: PayloadKind;
    /// The versions [`decode`](Self::decode) accepts.
    const READABLE_VERSIONS: RangeInclusive<i32>;

    /// The version this value carries (as written or as read).
    fn version(&self) -> i64;

    /// Compact JSON in Kafka's key order.
    fn encode(&self) -> Vec<u8> {
        // These types hold only strings, integers and maps with string or integer keys, for
        // which serde_json cannot fail.
        serde_json::to_vec(self).expect("znode payloads always serialize")
    }

    /// Parses a payload, rejecting versions outside [`READABLE_VERSIONS`](Self::READABLE_VERSIONS).
    fn decode(bytes: &[u8]) -> Result<Self, PayloadError> {
        let value: Self =
            serde_json::from_slice(bytes).map_err(|source| PayloadError::Malformed {
                kind: Self::KIND,
                source,
            })?;
        let found = value.version();
        let versions = Self::READABLE_VERSIONS;
        if found < i64::from(*versions.start()) || found > i64::from(*versions.end()) {
            return Err(PayloadError::UnsupportedVersion {
                kind: Self::KIND,
                found,
                min: *versions.start(),
                max: *versions.end(),
            });
        }
        Ok(value)
    }
}

/// Serde helpers for a Java long that Kafka writes as a JSON string (`"1611591513363"`).
/// Reading also accepts a bare number, which hand-written znodes sometimes contain.
pub(crate) mod long_as_string {
    use serde::de::{self, Deserializer, Visitor};
    use serde::ser::Serializer;
    use std::fmt;

    pub(crate) fn serialize<S: Serializer>(value: &i64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
        struct LongVisitor;
        impl Visitor<'_> for LongVisitor {
            type Value = i64;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer or a string holding one")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
                Ok(v)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
                i64::try_from(v).map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_any(LongVisitor)
    }
}

/// Milliseconds since the Unix epoch, as Kafka stamps its registrations.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}
