//! The Tributary controller (run inside every broker; the elected one acts).
//!
//! # Picture
//!
//! ```text
//!  ZooKeeper watches ─┐                                   ┌─► fenced ZooKeeper writer
//!  control RPCs ──────┼─► event queue ─► controller loop ─┤   (multi: check /controller_epoch + op)
//!  timers (rebalance)─┘                  │         ▲      └─► broker client
//!                                        ▼         │          (LeaderAndIsr, UpdateMetadata, StopReplica)
//!                           handler(model, event) → decision
//! ```
//!
//! - Watches, RPCs and timers only **enqueue events**; one loop drains the queue and is the only
//!   writer of the controller's model of the cluster.
//! - Handlers are pure: `(model, event) → decision` (ZooKeeper writes + requests to brokers).
//!   They are built from the pure modules below: no tokio, no files, no ZooKeeper in them.
//! - The loop applies a decision through the fenced ZooKeeper writer (every write is a multi
//!   whose first op checks the version of `/controller_epoch`; a failed check means this
//!   controller was superseded and must resign) and then through the broker client.
//!
//! # Pure decision modules
//!
//! - [`placement`]: replica assignment for CreateTopics / CreatePartitions
//!   (replica `j` of partition `i` on sorted live broker `(i + j) mod n`).
//! - [`election`]: leader election strategies (offline and unclean, preferred, controlled
//!   shutdown, reassignment), first leader of a new partition, ISR shrink on replica failure.
//! - [`partition_state`]: the partition and replica state machines' legal transitions.
//! - [`last_replica`]: electing a leader for a partition whose last in-sync replica returns
//!   after an unclean shutdown (compare every replica's log first).
//! - [`rebalance`]: the auto leader rebalance decision (`leader.imbalance.per.broker.percentage`).
//! - [`model`]: [`LeaderAndIsr`](model::LeaderAndIsr), the value elections produce.
//! - [`cluster`], [`event`], [`decision`], [`handlers`]: the controller's model of the cluster,
//!   the events the loop feeds it, and the pure handlers ([`handlers::handle`]) that turn
//!   `(model, event)` into a decision (ZooKeeper writes, broker requests, a reply).
//!
//! # I/O
//!
//! - [`zk`]: the ZooKeeper access layer: client and persistent paths, `/cluster/id`, broker
//!   registration (broker epoch = czxid), controller election with lost-reply detection, and the
//!   [`FencedWriter`](zk::FencedWriter) through which every controller write goes.
//!
//! # Glossary
//!
//! - **ISR** (in-sync replicas): the replicas caught up with the leader; only they may become
//!   leader in a clean election, and a produce with `acks=all` waits for all of them.
//! - **LEO** (log end offset): the offset after the last record in a replica's log.
//! - **HW** (high watermark): the offset up to which every ISR member has the records, i.e. the
//!   minimum LEO over the ISR; consumers only see records below it.

pub mod cluster;
pub mod decision;
pub mod election;
pub mod event;
pub mod handlers;
pub mod last_replica;
pub mod model;
pub mod partition_state;
pub mod placement;
pub mod rebalance;
pub mod runtime;
pub mod zk;
