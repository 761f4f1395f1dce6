//! The controller loop as it runs in the elected broker: load the cluster from ZooKeeper, turn
//! watches, RPCs and timers into [`Event`](crate::event::Event)s, apply each
//! [`Decision`](crate::decision::Decision) through the fenced writer and the broker channels.

mod handle;

pub use handle::{ControllerHandle, ControllerRequest, HandleError};
