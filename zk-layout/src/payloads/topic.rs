//! `/brokers/topics/<topic>` and `/brokers/topics/<topic>/partitions/<p>/state`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Payload, PayloadKind};
use crate::ids::{BrokerId, ControllerEpoch, LeaderEpoch, PartitionId};

/// `/brokers/topics/<topic>` (PERSISTENT): the replica assignment, v3 as Kafka 2.8 writes it.
///
/// Partition ids are JSON **string** keys; each replica list is in preference order (the first
/// replica is the preferred leader). v1 (≤ 2.3: `version` + `partitions` only) and v2 (2.4–2.7:
/// no `topic_id`) are readable; the missing keys read as empty. Observed order:
/// `{"partitions":{"0":[2,3,1]},"topic_id":"cMr3GpVESX2L3byPGf93lQ","adding_replicas":{},`
/// `"removing_replicas":{},"version":3}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicAssignment {
    pub partitions: BTreeMap<PartitionId, Vec<BrokerId>>,
    /// The topic id (22-char URL-safe base64 of a UUID, no padding); v3 only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_id: Option<String>,
    /// Replicas being added by a reassignment in progress (only partitions under reassignment).
    #[serde(default)]
    pub adding_replicas: BTreeMap<PartitionId, Vec<BrokerId>>,
    /// Replicas being removed by a reassignment in progress.
    #[serde(default)]
    pub removing_replicas: BTreeMap<PartitionId, Vec<BrokerId>>,
    pub version: i32,
}

impl TopicAssignment {
    pub const VERSION: i32 = 3;

    /// A v3 assignment with no reassignment in progress.
    pub fn new(partitions: BTreeMap<PartitionId, Vec<BrokerId>>, topic_id: String) -> Self {
        Self {
            partitions,
            topic_id: Some(topic_id),
            adding_replicas: BTreeMap::new(),
            removing_replicas: BTreeMap::new(),
            version: Self::VERSION,
        }
    }
}

impl Payload for TopicAssignment {
    const KIND: PayloadKind = PayloadKind::TopicAssignment;
    const READABLE_VERSIONS: std::ops::RangeInclusive<i32> = 1..=3;

    fn version(&self) -> i64 {
        self.version.into()
    }
}

/// `/brokers/topics/<topic>/partitions/<p>/state` (PERSISTENT), v1: leader and ISR.
///
/// The znode's zkVersion is the optimistic-concurrency token for every update. Observed order:
/// `{"controller_epoch":12,"leader":0,"version":1,"leader_epoch":0,"isr":[0,1]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    /// Epoch of the controller that made the leadership decision (a leader rewriting its ISR
    /// copies it back unchanged).
    pub controller_epoch: ControllerEpoch,
    /// The leader, or [`BrokerId::NONE`] (-1) when no eligible replica is alive.
    pub leader: BrokerId,
    pub version: i32,
    /// Invariant: only moves forward; +1 on every leader change.
    pub leader_epoch: LeaderEpoch,
    /// Invariant: never empty (a sole remaining member is kept when it dies).
    pub isr: Vec<BrokerId>,
}

impl PartitionState {
    pub const VERSION: i32 = 1;

    pub fn new(
        leader: BrokerId,
        leader_epoch: LeaderEpoch,
        isr: Vec<BrokerId>,
        controller_epoch: ControllerEpoch,
    ) -> Self {
        Self {
            controller_epoch,
            leader,
            version: Self::VERSION,
            leader_epoch,
            isr,
        }
    }
}

impl Payload for PartitionState {
    const KIND: PayloadKind = PayloadKind::PartitionState;
    const READABLE_VERSIONS: std::ops::RangeInclusive<i32> = 1..=1;

    fn version(&self) -> i64 {
        self.version.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payloads::PayloadError;

    #[test]
    fn partition_keys_are_strings_in_numeric_order() {
        let partitions = (0..12)
            .map(|i| (PartitionId(i), vec![BrokerId(i)]))
            .collect();
        let json = TopicAssignment::new(partitions, "AAAAAAAAAAAAAAAAAAAAAA".into()).encode();
        let json = String::from_utf8(json).unwrap_or_default();
        assert!(
            json.starts_with(r#"{"partitions":{"0":[0],"1":[1],"2":[2]"#),
            "{json}"
        );
        assert!(json.contains(r#""10":[10],"11":[11]}"#), "{json}");
    }

    #[test]
    fn non_numeric_partition_key_is_malformed() {
        let err = TopicAssignment::decode(br#"{"version":1,"partitions":{"x":[1]}}"#);
        assert!(matches!(
            err,
            Err(PayloadError::Malformed {
                kind: PayloadKind::TopicAssignment,
                ..
            })
        ));
    }

    #[test]
    fn missing_isr_is_malformed() {
        let err = PartitionState::decode(
            br#"{"controller_epoch":1,"leader":0,"version":1,"leader_epoch":0}"#,
        );
        let message = err
            .map(drop)
            .map_err(|e| format!("{e}: {:?}", std::error::Error::source(&e)));
        assert!(
            matches!(&message, Err(m) if m.contains("partition state") && m.contains("isr")),
            "{message:?}"
        );
    }
}
