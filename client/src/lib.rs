//! Tributary client library: admin, produce, fetch and offset lookups over gRPC.
//!
//! Everything starts from a [`Client`], which owns one HTTP/2 connection (a tonic `Channel`) to a
//! bootstrap broker:
//!
//! * admin: [`Client::create_topic`], [`Client::delete_topic`], [`Client::describe_topics`],
//!   [`Client::list_topics`], [`Client::metadata`], [`Client::create_partitions`];
//!   configuration: [`Client::describe_configs`], [`Client::alter_configs`]; preferred leader
//!   elections: [`Client::elect_leaders`];
//! * produce: [`Client::produce`] (builds one batch client-side and sends the raw bytes),
//!   [`Client::produce_structured`] (the broker encodes), and the pipelined [`Producer`] over the
//!   `ProduceStream` RPC, which keeps several requests in flight on one stream;
//! * fetch: [`Client::fetch`] (raw batches decoded here), [`Client::fetch_decoded`] (decoded by
//!   the broker), and the pipelined [`PartitionConsumer`] over the `FetchStream` RPC, which sends
//!   the next fetch before handing the current records to the caller;
//! * offsets: [`Client::list_offsets`] with an [`OffsetSpec`].
//!
//! Failures are [`ClientError`]s; a broker's per-partition refusal carries an [`ErrorCode`] whose
//! [`ErrorCode::is_retriable`] says whether retrying can help.
//!
//! This milestone talks to one broker (the bootstrap): requests that must reach a partition's
//! leader succeed only when that broker leads the partition (otherwise the error is
//! `NOT_LEADER_OR_FOLLOWER`). Leader routing, partitioners and retries come with the richer
//! producer and consumer.
//!
//! Glossary: HW = high watermark (offsets below it are committed and visible to consumers),
//! LEO = log end offset, ISR = in-sync replicas.

mod admin;
mod client;
mod configs;
mod consumer;
mod elect;
mod error;
mod offsets;
mod producer;
mod response;

#[cfg(test)]
mod fake_broker;
#[cfg(test)]
mod throughput_checks;

pub use admin::{
    BrokerInfo, ClusterMetadata, CreatedTopic, PartitionInfo, TopicDescription, TopicMetadata,
};
pub use client::{Client, MAX_MESSAGE_SIZE, bootstrap_uri};
pub use configs::{ConfigSource, ConfigValue, TopicConfig};
pub use consumer::{FetchOptions, FetchResult, PartitionConsumer, decode_fetched_batches};
pub use elect::ElectionResult;
pub use error::{ClientError, ErrorCode};
pub use offsets::{ListedOffset, OffsetSpec};
pub use producer::{Acks, ProduceAck, Producer, ProducerOptions};

/// The record codec types used in this API.
pub use tributary_record::{BatchBuilder, DecodedRecord, Header, Record};
