//! The group coordinator's settings (the `offsets.*` broker keys, parsed in
//! [`crate::config`]).

/// The `offsets.*` and `offset.*` broker keys; defaults are Kafka 2.8's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSettings {
    /// `offsets.topic.num.partitions`: partitions of `__consumer_offsets` when it is created
    /// (default 50). Changing it later does not change the topic: groups map over the topic's
    /// real partition count.
    pub offsets_topic_num_partitions: i32,
    /// `offsets.topic.replication.factor`: its replication factor (default 3), capped to the
    /// live brokers at creation.
    pub offsets_topic_replication_factor: i32,
    /// `offsets.topic.segment.bytes`: its segment size (default 100 MiB).
    pub offsets_topic_segment_bytes: u64,
    /// `offset.metadata.max.bytes`: longest metadata string of a commit (default 4096; at most
    /// 32767, the `int16` length of the record field).
    pub offset_metadata_max_bytes: usize,
    /// `offsets.commit.timeout.ms`: how long a commit waits for every in-sync replica
    /// (default 5000).
    pub offsets_commit_timeout_ms: u64,
    /// `offsets.load.buffer.size`: bytes read per step while loading a partition (default
    /// 5 MiB; a larger first batch is still read whole).
    pub offsets_load_buffer_size: usize,
    /// `offsets.retention.minutes`, in ms: how long after an Empty group became Empty (or,
    /// for groups without a known time, after the commit) its offsets are kept (default
    /// 10080 minutes = 7 days).
    pub offsets_retention_ms: i64,
    /// `offsets.retention.check.interval.ms`: how often expired offsets are looked for
    /// (default 600000).
    pub offsets_retention_check_interval_ms: u64,
    /// `group.min.session.timeout.ms`: the shortest session timeout a member may ask for
    /// (default 6000).
    pub group_min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`: the longest (default 1800000).
    pub group_max_session_timeout_ms: i32,
    /// `group.initial.rebalance.delay.ms`: how long the first rebalance of a group without
    /// members waits for more members (default 3000; 0 = none).
    pub group_initial_rebalance_delay_ms: i32,
}

impl Default for GroupSettings {
    fn default() -> Self {
        Self {
            offsets_topic_num_partitions: 50,
            offsets_topic_replication_factor: 3,
            offsets_topic_segment_bytes: 104_857_600,
            offset_metadata_max_bytes: 4096,
            offsets_commit_timeout_ms: 5000,
            offsets_load_buffer_size: 5_242_880,
            offsets_retention_ms: 10_080 * 60_000,
            offsets_retention_check_interval_ms: 600_000,
            group_min_session_timeout_ms: 6000,
            group_max_session_timeout_ms: 1_800_000,
            group_initial_rebalance_delay_ms: 3000,
        }
    }
}
