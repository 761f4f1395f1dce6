//! The internal topic `__consumer_offsets`: which partition holds a group, and what the topic
//! is created with. Pure.

use std::collections::BTreeMap;

use crate::replica::fetcher::{java_string_hash, kafka_abs};

use super::config::GroupSettings;

/// The topic holding every group's committed offsets (and, later, its membership).
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// The `__consumer_offsets` partition of `group_id` when the topic has `partitions`
/// partitions: Kafka's `Utils.abs(groupId.hashCode) % partitions`. Every broker computes the
/// same, so any broker can answer FindCoordinator.
pub fn partition_for(group_id: &str, partitions: i32) -> i32 {
    debug_assert!(partitions > 0);
    kafka_abs(java_string_hash(group_id)) % partitions.max(1)
}

/// How the topic is created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetsTopicPlan {
    /// `offsets.topic.num.partitions`.
    pub partitions: i32,
    /// `offsets.topic.replication.factor`, capped to the live brokers.
    pub replication_factor: i32,
    /// `Some(configured)` when the replication factor was capped (worth a warning: the
    /// topic keeps the smaller factor after more brokers join).
    pub capped_from: Option<i32>,
    /// Topic overrides: `cleanup.policy=compact` (only the latest commit per key matters) and
    /// `segment.bytes` = `offsets.topic.segment.bytes` (small segments so the cleaner can get
    /// at them sooner).
    pub configs: BTreeMap<String, String>,
}

/// The plan for `__consumer_offsets` with `live_brokers` brokers alive (at least 1: the
/// broker asking). Kafka refuses to create the topic until enough brokers are alive; Tributary
/// caps the replication factor instead, so a small or starting cluster can commit at once.
pub fn plan(settings: &GroupSettings, live_brokers: usize) -> OffsetsTopicPlan {
    let live = i32::try_from(live_brokers).unwrap_or(i32::MAX).max(1);
    let configured = settings.offsets_topic_replication_factor;
    let replication_factor = configured.min(live);
    OffsetsTopicPlan {
        partitions: settings.offsets_topic_num_partitions,
        replication_factor,
        capped_from: (replication_factor < configured).then_some(configured),
        configs: BTreeMap::from([
            ("cleanup.policy".to_owned(), "compact".to_owned()),
            (
                "segment.bytes".to_owned(),
                settings.offsets_topic_segment_bytes.to_string(),
            ),
        ]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_map_to_partitions_as_in_kafka() {
        // Utils.abs("...".hashCode()) % 50 as Kafka computes it (hash codes printed by a Java
        // program on this machine): "" → 0; "a" → 97; "group" → 98629247; "my-group" →
        // -1906497762; "console-consumer-12345" → 158455506; "polygenelubricants" → i32::MIN,
        // which Utils.abs maps to 0.
        let table = [
            ("", 0),
            ("a", 47),
            ("group", 47),
            ("my-group", 12),
            ("console-consumer-12345", 6),
            ("polygenelubricants", 0),
        ];
        for (group, partition) in table {
            assert_eq!(partition_for(group, 50), partition, "{group:?}");
        }
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
        assert_eq!(partition_for("group", 1), 0);
        assert_eq!(partition_for("group", 7), 98_629_247 % 7);
    }

    fn settings(partitions: i32, replication_factor: i32) -> GroupSettings {
        GroupSettings {
            offsets_topic_num_partitions: partitions,
            offsets_topic_replication_factor: replication_factor,
            ..GroupSettings::default()
        }
    }

    #[test]
    fn the_replication_factor_is_capped_to_the_live_brokers() {
        let full = plan(&settings(50, 3), 5);
        assert_eq!((full.partitions, full.replication_factor), (50, 3));
        assert_eq!(full.capped_from, None);
        assert_eq!(full.configs["cleanup.policy"], "compact");
        assert_eq!(full.configs["segment.bytes"], "104857600");

        let small = plan(&settings(50, 3), 2);
        assert_eq!(small.replication_factor, 2);
        assert_eq!(small.capped_from, Some(3));
        assert_eq!(plan(&settings(4, 3), 0).replication_factor, 1);
    }
}
