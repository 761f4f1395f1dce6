//! Record codec.
