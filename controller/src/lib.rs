//! The Tributary controller (run inside every broker; the elected one acts).
//!
//! So far: [`zk`], the ZooKeeper access layer (registration, election, fenced writes). The
//! pure placement / leader election / state machines and the event loop land next to it.

pub mod zk;
