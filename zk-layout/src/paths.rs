//! One function per znode path, relative to the chroot.
//!
//! Every path here starts at the chroot given in `zookeeper.connect`
//! (`127.0.0.1:2181/tributary` → `/tributary/brokers/ids/1`); the ZooKeeper client applies the
//! chroot, so nothing in this module knows about it. The names and shapes are Kafka 2.8's
//! (`ZkData.scala`), so `zkCli.sh ls -R /` on a Tributary cluster reads like a Kafka one.

use crate::ids::{BrokerId, PartitionId};

/// The paths every broker ensures at start-up (created empty when missing, parents first), in
/// Kafka 2.8's order (`ZkData.PersistentZkPaths`; `/config/ips` since 2.8, KIP-612). Parents
/// such as `/brokers` and `/config` are implied and created on the way.
pub const PERSISTENT_PATHS: &[&str] = &[
    "/consumers",
    "/brokers/ids",
    "/brokers/topics",
    "/config/changes",
    "/admin/delete_topics",
    "/brokers/seqid",
    "/isr_change_notification",
    "/latest_producer_id_block",
    "/log_dir_event_notification",
    "/config/topics",
    "/config/clients",
    "/config/users",
    "/config/brokers",
    "/config/ips",
];

/// `/controller`: EPHEMERAL, held by the elected controller.
pub fn controller() -> &'static str {
    "/controller"
}

/// `/controller_epoch`: PERSISTENT, the controller epoch as bare decimal text.
pub fn controller_epoch() -> &'static str {
    "/controller_epoch"
}

/// `/brokers/ids`: parent of the live brokers' ephemeral registrations.
pub fn broker_ids() -> &'static str {
    "/brokers/ids"
}

/// `/brokers/ids/<id>`: EPHEMERAL broker registration; its czxid is the broker epoch.
pub fn broker_id(id: BrokerId) -> String {
    format!("/brokers/ids/{id}")
}

/// `/brokers/topics`: parent of the topic assignments.
pub fn brokers_topics() -> &'static str {
    "/brokers/topics"
}

/// `/brokers/topics/<topic>`: the topic's replica assignment.
pub fn topic(name: &str) -> String {
    format!("/brokers/topics/{name}")
}

/// `/brokers/topics/<topic>/partitions`: empty parent, written by the controller.
pub fn topic_partitions(name: &str) -> String {
    format!("/brokers/topics/{name}/partitions")
}

/// `/brokers/topics/<topic>/partitions/<p>`: empty parent of the partition's `state`.
pub fn partition(name: &str, partition: PartitionId) -> String {
    format!("/brokers/topics/{name}/partitions/{partition}")
}

/// `/brokers/topics/<topic>/partitions/<p>/state`: leader, leader epoch and ISR.
pub fn partition_state(name: &str, partition: PartitionId) -> String {
    format!("/brokers/topics/{name}/partitions/{partition}/state")
}

/// `/admin/delete_topics`: parent of the deletion requests.
pub fn admin_delete_topics() -> &'static str {
    "/admin/delete_topics"
}

/// `/admin/delete_topics/<topic>`: a request to delete the topic (no data).
pub fn delete_topic(name: &str) -> String {
    format!("/admin/delete_topics/{name}")
}

/// `/admin/preferred_replica_election`: partitions whose preferred replica should lead.
pub fn preferred_replica_election() -> &'static str {
    "/admin/preferred_replica_election"
}

/// `/admin/reassign_partitions`: the legacy (pre-2.4 API) reassignment request.
pub fn reassign_partitions() -> &'static str {
    "/admin/reassign_partitions"
}

/// `/isr_change_notification`: parent of the sequential ISR change notifications.
pub fn isr_change_notification() -> &'static str {
    "/isr_change_notification"
}

/// `/isr_change_notification/isr_change_`: the prefix of a PERSISTENT_SEQUENTIAL
/// notification; ZooKeeper appends a 10-digit counter (`isr_change_0000000042`).
pub fn isr_change_prefix() -> &'static str {
    "/isr_change_notification/isr_change_"
}

/// `/config/topics`: parent of the per-topic config overrides.
pub fn config_topics() -> &'static str {
    "/config/topics"
}

/// `/config/topics/<topic>`: the topic's config overrides.
pub fn topic_config(name: &str) -> String {
    format!("/config/topics/{name}")
}

/// `/config/changes`: parent of the sequential config change notifications.
pub fn config_changes() -> &'static str {
    "/config/changes"
}

/// `/config/changes/config_change_`: the prefix of a PERSISTENT_SEQUENTIAL notification.
pub fn config_change_prefix() -> &'static str {
    "/config/changes/config_change_"
}

/// `/cluster/id`: the cluster id, created by the first broker.
pub fn cluster_id() -> &'static str {
    "/cluster/id"
}

/// `/latest_producer_id_block`: the last claimed block of producer ids.
pub fn latest_producer_id_block() -> &'static str {
    "/latest_producer_id_block"
}

/// `/brokers/seqid`: its zkVersion is the broker id generator's counter.
pub fn brokers_seqid() -> &'static str {
    "/brokers/seqid"
}

/// `/log_dir_event_notification`: parent of the sequential log dir failure events.
pub fn log_dir_event_notification() -> &'static str {
    "/log_dir_event_notification"
}

/// `/log_dir_event_notification/log_dir_event_`: the prefix of a PERSISTENT_SEQUENTIAL event.
pub fn log_dir_event_prefix() -> &'static str {
    "/log_dir_event_notification/log_dir_event_"
}

/// The sequence number of a sequential child name (`isr_change_0000000042` with prefix
/// `isr_change_` → 42), or `None` if the name does not have that shape. Takes the child name as
/// `get_children` returns it, without the parent.
pub fn sequence_number(child_name: &str, name_prefix: &str) -> Option<u64> {
    let digits = child_name.strip_prefix(name_prefix)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The last component of a path (`/isr_change_notification/isr_change_` → `isr_change_`), for
/// matching children against a prefix function above.
pub fn last_component(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Every ancestor of `path`, shortest first, excluding `/` and the path itself
/// (`/brokers/ids` → `["/brokers"]`).
pub fn ancestors(path: &str) -> Vec<&str> {
    path.match_indices('/')
        .map(|(index, _)| &path[..index])
        .filter(|prefix| !prefix.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parametrised_paths() {
        assert_eq!(broker_id(BrokerId(3)), "/brokers/ids/3");
        assert_eq!(topic("orders"), "/brokers/topics/orders");
        assert_eq!(
            topic_partitions("orders"),
            "/brokers/topics/orders/partitions"
        );
        assert_eq!(
            partition("orders", PartitionId(2)),
            "/brokers/topics/orders/partitions/2"
        );
        assert_eq!(
            partition_state("orders", PartitionId(2)),
            "/brokers/topics/orders/partitions/2/state"
        );
        assert_eq!(delete_topic("orders"), "/admin/delete_topics/orders");
        assert_eq!(topic_config("orders"), "/config/topics/orders");
    }

    #[test]
    fn prefixes_sit_under_their_parents() {
        for (parent, prefix) in [
            (isr_change_notification(), isr_change_prefix()),
            (config_changes(), config_change_prefix()),
            (log_dir_event_notification(), log_dir_event_prefix()),
        ] {
            assert_eq!(prefix.rsplit_once('/').map(|(p, _)| p), Some(parent));
        }
    }

    #[test]
    fn sequence_numbers() {
        let prefix = last_component(isr_change_prefix());
        assert_eq!(prefix, "isr_change_");
        assert_eq!(sequence_number("isr_change_0000000042", prefix), Some(42));
        assert_eq!(sequence_number("isr_change_", prefix), None);
        assert_eq!(sequence_number("isr_change_12x", prefix), None);
        assert_eq!(sequence_number("config_change_0000000001", prefix), None);
    }

    #[test]
    fn ancestors_of_a_path() {
        assert_eq!(ancestors("/brokers/ids"), vec!["/brokers"]);
        assert_eq!(ancestors("/a/b/c"), vec!["/a", "/a/b"]);
        assert!(ancestors("/consumers").is_empty());
    }

    #[test]
    fn persistent_paths_are_kafka_28s() {
        assert_eq!(PERSISTENT_PATHS.len(), 14);
        assert!(PERSISTENT_PATHS.contains(&"/config/ips"));
        assert!(
            PERSISTENT_PATHS
                .iter()
                .all(|p| p.starts_with('/') && !p.ends_with('/'))
        );
    }
}
