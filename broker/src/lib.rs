//! The Tributary broker.
pub mod log;
