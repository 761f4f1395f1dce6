//! The Tributary broker.
