//! Streaming consume for thin clients (`tributary.v1.GroupConsumer.ConsumeStream`): the broker
//! that receives the stream is the group member on the client's behalf.
//!
//! The member is the Rust client's [`tributary_client::Consumer`], connected to this broker's
//! own listener: it already joins, syncs, heartbeats in the background, assigns as leader,
//! routes fetches to partition leaders across leader moves, and commits as the member, so the
//! stream adds only what is new: credit, sequence numbers, and the messages (`ledger.rs`, pure)
//! and the loop between the client and the consumer (`session.rs`). Going through gRPC to
//! itself costs a loopback hop per request; driving the coordinator and replica code directly
//! would duplicate the client's membership and routing logic.

mod error;
mod ledger;
mod session;

pub use error::ConsumeError;
pub use session::run;
