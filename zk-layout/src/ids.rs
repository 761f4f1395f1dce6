//! Newtypes for the identifiers and epochs that travel through ZooKeeper payloads and control
//! requests, so a broker id cannot be passed where a leader epoch is expected.
//!
//! Each serializes as the bare integer Kafka writes (`"leader":2`, `"leader_epoch":7`).

use serde::{Deserialize, Serialize};

macro_rules! id_newtype {
    ($(#[$doc:meta])* $name:ident($inner:ty)) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub $inner);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<$inner> for $name {
            fn from(value: $inner) -> Self {
                Self(value)
            }
        }
    };
}

id_newtype!(
    /// A broker's `broker.id`. `-1` in a leader field means "no leader".
    BrokerId(i32)
);
id_newtype!(
    /// A partition number within a topic (0-based).
    PartitionId(i32)
);
id_newtype!(
    /// The partition leader epoch: starts at 0, +1 on every leader change (and on every
    /// controller-driven ISR change).
    LeaderEpoch(i32)
);
id_newtype!(
    /// The controller epoch (`/controller_epoch`): +1 on every successful election.
    ControllerEpoch(i32)
);
id_newtype!(
    /// A broker epoch: the czxid of the broker's `/brokers/ids/<id>` registration.
    BrokerEpoch(i64)
);
id_newtype!(
    /// A ZooKeeper data version (`Stat.version`), the optimistic-concurrency token.
    ZkVersion(i32)
);

impl BrokerId {
    /// The "no leader" marker in partition state (`"leader":-1`).
    pub const NONE: BrokerId = BrokerId(-1);
}
