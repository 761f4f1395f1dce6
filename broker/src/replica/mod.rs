//! Partition replicas hosted by this broker (the replication milestone adds followers,
//! the ISR and fetchers here).

mod manager;
mod partition;

pub use manager::ReplicaManager;
pub use partition::Partition;
