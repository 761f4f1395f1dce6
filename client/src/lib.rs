//! Tributary client library.
