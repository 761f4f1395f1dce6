//! The ZooKeeper znode tree and JSON payloads, exactly as classic Kafka writes them.
//!
//! (The full tree, one function per path and one type per payload arrive with the ZooKeeper
//! coordination issue; [`ids`] holds the newtypes shared with the controller.)

pub mod ids;

pub use ids::{BrokerEpoch, BrokerId, ControllerEpoch, LeaderEpoch, PartitionId, ZkVersion};
