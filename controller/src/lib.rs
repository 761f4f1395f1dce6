//! The Tributary controller (run inside every broker; the elected one acts).

pub mod election;
pub mod model;
pub mod placement;
