//! The broker configuration keys Tributary understands, with Kafka's names and defaults.
//!
//! One table drives parsing, the unknown-key check and `docs/configuration.md`.

/// A supported broker key: its name, its default (as written in `server.properties`) and a
/// one-line description.
#[derive(Debug, Clone, Copy)]
pub struct KeySpec {
    /// Kafka's key name.
    pub name: &'static str,
    /// Default value, as text; `None` means "no default" (optional or derived).
    pub default: Option<&'static str>,
    /// What the key controls.
    pub doc: &'static str,
}

const fn key(name: &'static str, default: Option<&'static str>, doc: &'static str) -> KeySpec {
    KeySpec { name, default, doc }
}

/// Every key the broker reads. Values are Kafka 2.8's defaults unless the doc says otherwise.
pub const SUPPORTED_KEYS: &[KeySpec] = &[
    key(
        "broker.id",
        Some("0"),
        "This broker's id (>= 0). Kafka's automatic id generation is not supported.",
    ),
    key(
        "broker.rack",
        None,
        "Rack of this broker, reported in metadata.",
    ),
    key(
        "listeners",
        Some("PLAINTEXT://:9092"),
        "The gRPC listener, `PLAINTEXT://host:port` (empty host = all interfaces; port 0 = any free port).",
    ),
    key(
        "advertised.listeners",
        None,
        "The address clients are told to use; defaults to `listeners` (with the bound port and, for an empty host, 127.0.0.1).",
    ),
    key(
        "log.dirs",
        None,
        "Comma-separated data directories; overrides `log.dir`.",
    ),
    key(
        "log.dir",
        Some("/tmp/tributary-logs"),
        "Data directory used when `log.dirs` is unset (Kafka's default is /tmp/kafka-logs; ours avoids clashing with a Kafka install).",
    ),
    key(
        "zookeeper.connect",
        None,
        "ZooKeeper connect string with optional chroot; the broker registers there. Unset = standalone.",
    ),
    key(
        "zookeeper.session.timeout.ms",
        Some("18000"),
        "ZooKeeper session timeout.",
    ),
    key(
        "zookeeper.connection.timeout.ms",
        None,
        "ZooKeeper connection timeout (defaults to the session timeout).",
    ),
    key(
        "num.partitions",
        Some("1"),
        "Partitions of a topic created without an explicit count.",
    ),
    key(
        "default.replication.factor",
        Some("1"),
        "Replication factor of a topic created without an explicit one.",
    ),
    key(
        "auto.create.topics.enable",
        Some("false"),
        "Create unknown topics on Metadata requests. Kafka defaults to true; Tributary defaults to false so a typo never creates a topic.",
    ),
    key("delete.topic.enable", Some("true"), "Allow DeleteTopics."),
    key(
        "min.insync.replicas",
        Some("1"),
        "Smallest ISR that accepts acks=all writes (topic-level override: min.insync.replicas).",
    ),
    key(
        "unclean.leader.election.enable",
        Some("false"),
        "Allow electing an out-of-sync replica (topic-level override).",
    ),
    key(
        "auto.leader.rebalance.enable",
        Some("true"),
        "The controller periodically moves leadership back to preferred replicas when a broker's imbalance exceeds leader.imbalance.per.broker.percentage.",
    ),
    key(
        "leader.imbalance.check.interval.seconds",
        Some("300"),
        "How often the controller checks the leader imbalance.",
    ),
    key(
        "leader.imbalance.per.broker.percentage",
        Some("10"),
        "Share of a broker's preferred partitions led elsewhere that triggers a preferred election.",
    ),
    key(
        "controlled.shutdown.enable",
        Some("true"),
        "On SIGTERM, ask the controller to move this broker's leaderships away before stopping.",
    ),
    key(
        "controlled.shutdown.max.retries",
        Some("3"),
        "Controlled shutdown attempts before stopping anyway.",
    ),
    key(
        "controlled.shutdown.retry.backoff.ms",
        Some("5000"),
        "Pause between controlled shutdown attempts.",
    ),
    key(
        "message.max.bytes",
        Some("1048588"),
        "Largest record batch accepted (topic-level: max.message.bytes).",
    ),
    key(
        "socket.request.max.bytes",
        Some("104857600"),
        "Largest gRPC message accepted by the broker.",
    ),
    key(
        "log.segment.bytes",
        Some("1073741824"),
        "Segment size before rolling (topic-level: segment.bytes).",
    ),
    key(
        "log.roll.ms",
        None,
        "Segment age before rolling; overrides log.roll.hours (topic-level: segment.ms).",
    ),
    key(
        "log.roll.hours",
        Some("168"),
        "Segment age before rolling, in hours.",
    ),
    key(
        "log.retention.ms",
        None,
        "How long to keep data; overrides minutes/hours; -1 = forever (topic-level: retention.ms).",
    ),
    key(
        "log.retention.minutes",
        None,
        "How long to keep data, in minutes; overrides hours.",
    ),
    key(
        "log.retention.hours",
        Some("168"),
        "How long to keep data, in hours.",
    ),
    key(
        "log.retention.bytes",
        Some("-1"),
        "Partition size above which the oldest segments are deleted; -1 = no limit (topic-level: retention.bytes).",
    ),
    key(
        "log.retention.check.interval.ms",
        Some("300000"),
        "How often retention runs.",
    ),
    key(
        "log.index.size.max.bytes",
        Some("10485760"),
        "Size of each offset/time index file (topic-level: segment.index.bytes).",
    ),
    key(
        "log.index.interval.bytes",
        Some("4096"),
        "Bytes between offset index entries (topic-level: index.interval.bytes).",
    ),
    key(
        "log.flush.interval.messages",
        Some("9223372036854775807"),
        "fsync after this many records (topic-level: flush.messages); default never.",
    ),
    key(
        "log.flush.interval.ms",
        None,
        "fsync a partition this long after its last flush (topic-level: flush.ms); default never.",
    ),
    key(
        "log.flush.offset.checkpoint.interval.ms",
        Some("60000"),
        "How often recovery points and log start offsets are checkpointed.",
    ),
    key(
        "log.message.timestamp.type",
        Some("CreateTime"),
        "CreateTime or LogAppendTime (topic-level: message.timestamp.type).",
    ),
    key(
        "log.segment.delete.delay.ms",
        Some("60000"),
        "Delay before a deleted segment's files are removed (topic-level: file.delete.delay.ms).",
    ),
    key(
        "log.cleanup.policy",
        Some("delete"),
        "delete, compact or compact,delete (topic-level: cleanup.policy).",
    ),
    key(
        "log.cleaner.enable",
        Some("true"),
        "Run the log cleaner, which compacts logs whose cleanup.policy includes compact.",
    ),
    key(
        "log.cleaner.threads",
        Some("1"),
        "Cleaner threads; Tributary runs one cleaner task whatever the value (>= 1).",
    ),
    key(
        "log.cleaner.backoff.ms",
        Some("15000"),
        "Pause of the cleaner when no log needs cleaning.",
    ),
    key(
        "log.cleaner.dedupe.buffer.size",
        Some("134217728"),
        "Memory for the cleaner's key -> latest offset map; a larger dirty part is cleaned in several passes.",
    ),
    key(
        "log.cleaner.delete.retention.ms",
        Some("86400000"),
        "How long tombstones stay after their segment was cleaned (topic-level: delete.retention.ms).",
    ),
    key(
        "log.cleaner.min.cleanable.ratio",
        Some("0.5"),
        "Smallest dirty / cleanable bytes ratio that gets a log cleaned (topic-level: min.cleanable.dirty.ratio).",
    ),
    key(
        "log.cleaner.min.compaction.lag.ms",
        Some("0"),
        "Records younger than this are not compacted (topic-level: min.compaction.lag.ms).",
    ),
    key(
        "log.cleaner.max.compaction.lag.ms",
        Some("9223372036854775807"),
        "A log with dirty data older than this is cleaned whatever its dirty ratio (topic-level: max.compaction.lag.ms).",
    ),
    key(
        "replica.lag.time.max.ms",
        Some("30000"),
        "A follower that has not caught up with the leader's log end for this long leaves the ISR.",
    ),
    key(
        "replica.fetch.wait.max.ms",
        Some("500"),
        "Long poll of a follower's fetch: how long the leader holds it when there is nothing new.",
    ),
    key(
        "replica.fetch.max.bytes",
        Some("1048576"),
        "Bytes a follower asks for per partition per fetch (soft: a larger first batch still comes).",
    ),
    key(
        "replica.fetch.response.max.bytes",
        Some("10485760"),
        "Bytes a follower asks for per fetch response, all partitions together (soft).",
    ),
    key(
        "replica.fetch.backoff.ms",
        Some("500"),
        "Pause of a follower's fetch loop after an error (Kafka: 1000).",
    ),
    key(
        "replica.socket.timeout.ms",
        Some("10000"),
        "Longest wait for a leader's answer to a follower, long poll included; must be above replica.fetch.wait.max.ms (Kafka: 30000).",
    ),
    key(
        "num.replica.fetchers",
        Some("1"),
        "Fetch loops (each one connection and task) per leader broker.",
    ),
    key(
        "offsets.topic.num.partitions",
        Some("50"),
        "Partitions of `__consumer_offsets`, created on the first FindCoordinator (1 to 10000). Groups map over the topic's real partition count, so changing this later has no effect on an existing topic.",
    ),
    key(
        "offsets.topic.replication.factor",
        Some("3"),
        "Replication factor of `__consumer_offsets`; capped, with a warning, to the live brokers when the topic is created (Kafka refuses to create it instead).",
    ),
    key(
        "offsets.topic.segment.bytes",
        Some("104857600"),
        "Segment size of `__consumer_offsets` (its `segment.bytes` override).",
    ),
    key(
        "offset.metadata.max.bytes",
        Some("4096"),
        "Longest metadata string an OffsetCommit may store per partition (at most 32767); longer ones get OFFSET_METADATA_TOO_LARGE.",
    ),
    key(
        "offsets.commit.timeout.ms",
        Some("5000"),
        "How long an OffsetCommit waits for every in-sync replica of the group's `__consumer_offsets` partition before answering REQUEST_TIMED_OUT.",
    ),
    key(
        "offsets.load.buffer.size",
        Some("5242880"),
        "Bytes read per step when a new coordinator loads a `__consumer_offsets` partition.",
    ),
    key(
        "offsets.retention.minutes",
        Some("10080"),
        "How long the committed offsets of a group without members are kept: from when the group became Empty (Kafka 2.1+, KIP-211), or from the commit for groups that never had members; a consumer group's offsets of topics it no longer subscribes to expire this long after their commit. Expired offsets get tombstones in `__consumer_offsets`.",
    ),
    key(
        "offsets.retention.check.interval.ms",
        Some("600000"),
        "How often the group coordinator looks for expired offsets (and removes Empty groups left without offsets).",
    ),
    key(
        "group.min.session.timeout.ms",
        Some("6000"),
        "Shortest session timeout a JoinGroup may ask for; shorter ones get INVALID_SESSION_TIMEOUT.",
    ),
    key(
        "group.max.session.timeout.ms",
        Some("1800000"),
        "Longest session timeout a JoinGroup may ask for; longer ones get INVALID_SESSION_TIMEOUT.",
    ),
    key(
        "group.initial.rebalance.delay.ms",
        Some("3000"),
        "How long the first rebalance of a group without members waits for more members, extended by the same while members keep arriving (within the rebalance timeout); 0 = no wait.",
    ),
];

/// Keys from Kafka's own `server.properties` that make no sense for Tributary (network thread
/// pools, socket buffers, JMX...). They are accepted with a warning, so a Kafka config file
/// can be reused; any other unknown key is an error.
pub const IGNORED_KAFKA_KEYS: &[&str] = &[
    "num.network.threads",
    "num.io.threads",
    "socket.send.buffer.bytes",
    "socket.receive.buffer.bytes",
    "num.recovery.threads.per.data.dir",
    "transaction.state.log.replication.factor",
    "transaction.state.log.min.isr",
    "listener.security.protocol.map",
    "inter.broker.listener.name",
    "queued.max.requests",
    "jmx.port",
    "metric.reporters",
];

/// The spec of a supported key.
pub fn spec(name: &str) -> Option<&'static KeySpec> {
    SUPPORTED_KEYS.iter().find(|k| k.name == name)
}
