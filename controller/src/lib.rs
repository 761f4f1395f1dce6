//! The Tributary controller (run inside every broker; the elected one acts).
//!
//! Empty until the ZooKeeper coordination issue: election, fencing, placement and leader
//! election land here as pure functions plus one event loop.
