//! Tributary's gRPC API, generated from `proto/tributary/v1/tributary.proto` (with
//! `control.proto`, `group.proto` and `consume.proto`).
//!
//! This crate holds no logic: the `.proto` files are the contract, and any language can talk to a
//! broker with nothing but them (the broker also serves gRPC reflection from [`FILE_DESCRIPTOR_SET`]).

/// Version 1 of the API (`package tributary.v1`).
pub mod v1 {
    #![allow(missing_docs, clippy::all, missing_debug_implementations)]
    tonic::include_proto!("tributary.v1");
}

/// The encoded `FileDescriptorSet` of every Tributary `.proto` file, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/tributary_descriptor.bin"));
