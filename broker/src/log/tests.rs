//! Integration-style tests of the storage engine.
