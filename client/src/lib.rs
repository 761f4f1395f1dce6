//! Tributary client library: admin, produce, fetch and offset lookups over gRPC.
//!
//! Everything starts from a [`Client`], which owns an HTTP/2 connection (a tonic `Channel`) to a
//! bootstrap broker, and one to each partition leader it has sent requests to:
//!
//! * admin: [`Admin`] (from [`Admin::connect`] or [`Client::admin`]), Kafka's `AdminClient`:
//!   topics ([`Admin::create_topic`], [`Admin::delete_topic`], [`Admin::list_topics`],
//!   [`Admin::describe_topics`], [`Admin::create_partitions`]), configuration
//!   ([`Admin::describe_configs`], [`Admin::alter_configs`]), the cluster
//!   ([`Admin::describe_cluster`], [`Admin::metadata`]) and preferred leader elections
//!   ([`Admin::elect_preferred_leaders`]). The older `Client` methods of the same names
//!   remain as shorthands;
//! * produce: the batching [`Producer`] (records in, a [`DeliveryFuture`] per record out; Kafka's
//!   batching, partitioners, buffer bounds, retries, ordering and [`Compression`] codecs, see
//!   `docs/client.md`); [`BatchSender`] for pre-built batches pipelined on the `ProduceStream`
//!   RPC; [`Client::produce`] (builds one batch client-side and sends the raw bytes;
//!   [`Client::produce_compressed`] compresses it) and [`Client::produce_structured`] (the
//!   broker encodes), one unary call each;
//! * fetch: [`Client::fetch`] (raw batches decoded here), [`Client::fetch_decoded`] (decoded by
//!   the broker), and the pipelined [`PartitionConsumer`] over the `FetchStream` RPC, which sends
//!   the next fetch before handing the current records to the caller;
//! * consume: the [`Consumer`] of assigned partitions, shaped like Kafka's `KafkaConsumer`
//!   (`assign`, `poll`, `seek*`, `position`, `pause`/`resume`, `auto.offset.reset` as
//!   [`OffsetReset`]), one pipelined `PartitionConsumer` per partition underneath;
//! * offsets: [`Client::list_offsets`] with an [`OffsetSpec`];
//! * consumer groups: [`Group`] (from [`Client::group`]) commits and reads a group's offsets
//!   through its coordinator ([`Group::commit`], [`Group::committed`],
//!   [`Group::committed_all`]), following the coordinator when it moves.
//!
//! Failures are [`ClientError`]s; a broker's per-partition refusal carries an [`ErrorCode`] whose
//! [`ErrorCode::is_retriable`] says whether retrying can help.
//!
//! Requests for a partition (produce, fetch, offset lookups, the `Producer`, `BatchSender` and
//! `PartitionConsumer` streams) go to the partition's leader: the client learns leaders and
//! broker addresses from `Metadata` (see [`Client::leader_for`], [`Client::refresh_metadata`])
//! and keeps one connection per broker. When a leader moves (`NOT_LEADER_OR_FOLLOWER`,
//! `LEADER_NOT_AVAILABLE`, an unreachable broker, ...) the request is retried against the new
//! leader with fresh metadata for up to [`Client::retry_timeout`] (default
//! [`DEFAULT_RETRY_TIMEOUT`]). A produce retried after a lost connection may have been
//! written already (at-least-once, like Kafka without idempotence); the [`Producer`] has its
//! own bound instead, `delivery.timeout.ms`. Admin calls and `Metadata` go to the bootstrap
//! broker.
//!
//! Glossary: HW = high watermark (offsets below it are committed and visible to consumers),
//! LEO = log end offset, ISR = in-sync replicas.

mod admin;
mod client;
mod consumer;
mod error;
mod group;
mod offsets;
mod producer;
mod response;
mod routing;

#[cfg(test)]
mod fake_broker;
#[cfg(test)]
mod throughput_checks;

pub use admin::{
    Admin, AdminOptions, BrokerInfo, ClusterDescription, ClusterHealth, ClusterMetadata,
    ConfigChange, ConfigSource, ConfigValue, CreatedTopic, ElectionResult, ListTopicsOptions,
    NewTopic, PartitionInfo, TopicConfig, TopicDescription, TopicListing, TopicMetadata,
};
pub use client::{Client, MAX_MESSAGE_SIZE, bootstrap_uri};
pub use consumer::{
    Assignment, Assignor, BatchInfo, Consumer, ConsumerOptions, ConsumerRecord, Delivery,
    FetchOptions, FetchResult, GroupOptions, Member, OffsetReset, PartitionConsumer,
    RebalanceListener, TopicPartition, by_topic, decode_fetched_batches,
};
pub use error::{ClientError, ErrorCode};
pub use group::{
    CommittedOffset, Coordinator, Generation, Group, GroupDescription, GroupListing, GroupMember,
    GroupOffset, GroupState, JoinOutcome, JoinRequest, NO_GENERATION,
};
pub use offsets::{ListedOffset, OffsetSpec};
pub use producer::{
    Acks, BatchSender, BatchSenderOptions, DeliveryFuture, Partitioner, ProduceAck, ProduceError,
    Producer, ProducerOptions, ProducerRecord, RecordMetadata, murmur2, partition_for_key,
    to_positive,
};
pub use routing::{DEFAULT_RETRY_TIMEOUT, PartitionLeader};

/// The record codec types used in this API.
pub use tributary_record::{
    BatchBuilder, Compression, DecodedRecord, Header, Record, TimestampType,
};
