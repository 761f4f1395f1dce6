//! What a [`Consumer`](crate::Consumer) reads and from where: the assigned partitions, their
//! positions, pauses and pending offset lookups (pure: values in, values out; the consumer does
//! the lookups and the fetches).
//!
//! A partition's life, in the states below (Kafka's `SubscriptionState`):
//!
//! ```text
//!   assign ──▶ AwaitingLookup(spec) ──list_offsets──▶ Positioned(offset) ──fetch──▶ Positioned(next)
//!                   ▲          seek_to_beginning/end/timestamp │ ▲ seek(offset)
//!                   └──────────── OFFSET_OUT_OF_RANGE + reset ─┘ │
//!                                                               (any state)
//! ```
//!
//! A new partition has no position: the first poll looks one up with the reset policy
//! (`auto.offset.reset`), or fails with [`ClientError::NoOffset`] under `none`. Pausing keeps the
//! position and stops fetching.

use std::collections::BTreeMap;

use crate::{ClientError, OffsetSpec};

/// A topic and one of its partitions.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
}

impl TopicPartition {
    /// `topic`-`partition`.
    pub fn new(topic: impl Into<String>, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// What the consumer does when a partition has no position, or its position is outside the log
/// (Kafka's `auto.offset.reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OffsetReset {
    /// Start at the log start offset.
    Earliest,
    /// Start at the high watermark: only records produced from now on (Kafka's default).
    #[default]
    Latest,
    /// Fail: [`ClientError::NoOffset`] without a position, [`ClientError::OffsetOutOfRange`]
    /// when the broker answers OFFSET_OUT_OF_RANGE.
    None,
}

impl OffsetReset {
    /// The lookup the policy asks for; `None` for [`OffsetReset::None`].
    pub fn lookup(self) -> Option<OffsetSpec> {
        match self {
            OffsetReset::Earliest => Some(OffsetSpec::Earliest),
            OffsetReset::Latest => Some(OffsetSpec::Latest),
            OffsetReset::None => None,
        }
    }
}

impl std::str::FromStr for OffsetReset {
    type Err = String;

    /// `earliest`, `latest` or `none` (Kafka's values; case-insensitive).
    fn from_str(text: &str) -> Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "earliest" => Ok(OffsetReset::Earliest),
            "latest" => Ok(OffsetReset::Latest),
            "none" => Ok(OffsetReset::None),
            _ => Err(format!("{text:?}: must be earliest, latest or none")),
        }
    }
}

/// Where one assigned partition stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    /// Assigned and never sought: the reset policy decides.
    Unknown,
    /// An offset to look up before fetching (a lazy seek, or the reset policy after
    /// OFFSET_OUT_OF_RANGE).
    AwaitingLookup(OffsetSpec),
    /// The offset of the next record to return. Invariant: >= 0.
    Offset(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PartitionState {
    position: Position,
    paused: bool,
}

/// The assigned partitions and their positions. Owned by one [`Consumer`](crate::Consumer).
#[derive(Debug, Default)]
pub(crate) struct Assignment {
    partitions: BTreeMap<TopicPartition, PartitionState>,
}

fn not_assigned(tp: &TopicPartition) -> ClientError {
    ClientError::InvalidArgument {
        argument: "partition",
        reason: format!("{tp} is not assigned to this consumer"),
    }
}

impl Assignment {
    /// Replaces the assignment. Partitions that stay keep their position and pause state; new
    /// ones start without a position.
    pub(crate) fn assign(&mut self, partitions: impl IntoIterator<Item = TopicPartition>) {
        let mut next = BTreeMap::new();
        for tp in partitions {
            let state = self.partitions.remove(&tp).unwrap_or(PartitionState {
                position: Position::Unknown,
                paused: false,
            });
            next.insert(tp, state);
        }
        self.partitions = next;
    }

    /// The assigned partitions, in order.
    pub(crate) fn assigned(&self) -> Vec<TopicPartition> {
        self.partitions.keys().cloned().collect()
    }

    fn state_mut(&mut self, tp: &TopicPartition) -> Result<&mut PartitionState, ClientError> {
        self.partitions.get_mut(tp).ok_or_else(|| not_assigned(tp))
    }

    /// Fetch from `offset` next.
    pub(crate) fn seek(&mut self, tp: &TopicPartition, offset: i64) -> Result<(), ClientError> {
        if offset < 0 {
            return Err(ClientError::InvalidArgument {
                argument: "offset",
                reason: format!("{offset} is negative"),
            });
        }
        self.state_mut(tp)?.position = Position::Offset(offset);
        Ok(())
    }

    /// Look the position up with `spec` before fetching again.
    pub(crate) fn seek_lookup(
        &mut self,
        tp: &TopicPartition,
        spec: OffsetSpec,
    ) -> Result<(), ClientError> {
        spec.to_wire()?;
        self.state_mut(tp)?.position = Position::AwaitingLookup(spec);
        Ok(())
    }

    /// The known position; `Ok(None)` while a lookup is pending.
    pub(crate) fn position(&self, tp: &TopicPartition) -> Result<Option<i64>, ClientError> {
        match self
            .partitions
            .get(tp)
            .ok_or_else(|| not_assigned(tp))?
            .position
        {
            Position::Offset(offset) => Ok(Some(offset)),
            Position::Unknown | Position::AwaitingLookup(_) => Ok(None),
        }
    }

    pub(crate) fn set_paused(
        &mut self,
        tp: &TopicPartition,
        paused: bool,
    ) -> Result<(), ClientError> {
        self.state_mut(tp)?.paused = paused;
        Ok(())
    }

    pub(crate) fn paused(&self) -> Vec<TopicPartition> {
        self.partitions
            .iter()
            .filter(|(_, state)| state.paused)
            .map(|(tp, _)| tp.clone())
            .collect()
    }

    /// The lookups to do before fetching: a pending seek, else the reset policy for a
    /// partition never positioned (paused partitions included, as in Kafka). Fails with
    /// [`ClientError::NoOffset`] for the first unpositioned partition under
    /// [`OffsetReset::None`].
    pub(crate) fn lookups(
        &self,
        policy: OffsetReset,
    ) -> Result<Vec<(TopicPartition, OffsetSpec)>, ClientError> {
        let mut lookups = Vec::new();
        for (tp, state) in &self.partitions {
            let spec = match state.position {
                Position::Offset(_) => continue,
                Position::AwaitingLookup(spec) => spec,
                Position::Unknown => policy.lookup().ok_or_else(|| ClientError::NoOffset {
                    topic: tp.topic.clone(),
                    partition: tp.partition,
                })?,
            };
            lookups.push((tp.clone(), spec));
        }
        Ok(lookups)
    }

    /// Applies the answer to a lookup made with `spec`, unless the application sought
    /// elsewhere meanwhile (or unassigned the partition). `found` is the offset the broker
    /// named.
    pub(crate) fn lookup_done(&mut self, tp: &TopicPartition, spec: OffsetSpec, found: i64) {
        let Some(state) = self.partitions.get_mut(tp) else {
            return;
        };
        let asked = match state.position {
            Position::AwaitingLookup(pending) => pending == spec,
            Position::Unknown => true,
            Position::Offset(_) => false,
        };
        if asked {
            debug_assert!(found >= 0);
            state.position = Position::Offset(found);
        }
    }

    /// The broker answered OFFSET_OUT_OF_RANGE to a fetch from `fetch_offset`. If that is still
    /// the position, the reset policy decides: a lookup, or (under `none`) an error and the
    /// position left as it is. A stale answer (the position moved since) changes nothing.
    pub(crate) fn out_of_range(
        &mut self,
        tp: &TopicPartition,
        fetch_offset: i64,
        policy: OffsetReset,
    ) -> Result<(), ClientError> {
        let Some(state) = self.partitions.get_mut(tp) else {
            return Ok(());
        };
        if state.position != Position::Offset(fetch_offset) {
            return Ok(());
        }
        match policy.lookup() {
            Some(spec) => {
                state.position = Position::AwaitingLookup(spec);
                Ok(())
            }
            None => Err(ClientError::OffsetOutOfRange {
                topic: tp.topic.clone(),
                partition: tp.partition,
                offset: fetch_offset,
            }),
        }
    }

    /// The partitions to fetch now and where from: assigned, not paused, positioned.
    pub(crate) fn fetchable(&self) -> Vec<(TopicPartition, i64)> {
        self.partitions
            .iter()
            .filter(|(_, state)| !state.paused)
            .filter_map(|(tp, state)| match state.position {
                Position::Offset(offset) => Some((tp.clone(), offset)),
                _ => None,
            })
            .collect()
    }

    /// Whether records fetched from `fetch_offset` may be returned: the partition is still
    /// assigned and not paused, and `fetch_offset` is its position (anything else is a fetch
    /// made before a seek).
    pub(crate) fn accepts(&self, tp: &TopicPartition, fetch_offset: i64) -> bool {
        self.partitions
            .get(tp)
            .is_some_and(|state| !state.paused && state.position == Position::Offset(fetch_offset))
    }

    /// Moves the position from `from` to `to` after returning records (or skipping control
    /// batches). Only an accepted fetch moves it.
    pub(crate) fn advance(&mut self, tp: &TopicPartition, from: i64, to: i64) {
        debug_assert!(to >= from, "{tp}: position {from} -> {to}");
        if !self.accepts(tp, from) {
            return;
        }
        if let Some(state) = self.partitions.get_mut(tp) {
            state.position = Position::Offset(to);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(partition: i32) -> TopicPartition {
        TopicPartition::new("t", partition)
    }

    #[test]
    fn new_partitions_follow_the_reset_policy() {
        let mut assignment = Assignment::default();
        assignment.assign([tp(0), tp(1)]);
        assignment.seek(&tp(1), 7).unwrap();
        let table = [
            (OffsetReset::Earliest, Some(OffsetSpec::Earliest)),
            (OffsetReset::Latest, Some(OffsetSpec::Latest)),
        ];
        for (policy, spec) in table {
            assert_eq!(
                assignment.lookups(policy).unwrap(),
                vec![(tp(0), spec.unwrap())]
            );
        }
        assert!(matches!(
            assignment.lookups(OffsetReset::None),
            Err(ClientError::NoOffset { partition: 0, .. })
        ));
        assert_eq!(assignment.fetchable(), vec![(tp(1), 7)]);
        assignment.lookup_done(&tp(0), OffsetSpec::Latest, 40);
        assert_eq!(assignment.fetchable(), vec![(tp(0), 40), (tp(1), 7)]);
        assert!(assignment.lookups(OffsetReset::None).unwrap().is_empty());
    }

    #[test]
    fn lazy_seeks_win_over_stale_lookups() {
        let mut assignment = Assignment::default();
        assignment.assign([tp(0)]);
        assignment
            .seek_lookup(&tp(0), OffsetSpec::Earliest)
            .unwrap();
        assert_eq!(assignment.position(&tp(0)).unwrap(), None);
        assert_eq!(
            assignment.lookups(OffsetReset::None).unwrap(),
            vec![(tp(0), OffsetSpec::Earliest)]
        );
        // The application seeks to the end while the earliest lookup is in flight.
        assignment.seek_lookup(&tp(0), OffsetSpec::Latest).unwrap();
        assignment.lookup_done(&tp(0), OffsetSpec::Earliest, 0);
        assert_eq!(assignment.position(&tp(0)).unwrap(), None);
        assignment.lookup_done(&tp(0), OffsetSpec::Latest, 90);
        assert_eq!(assignment.position(&tp(0)).unwrap(), Some(90));
        // A seek to an absolute offset also wins over a late answer.
        assignment
            .seek_lookup(&tp(0), OffsetSpec::Timestamp(5))
            .unwrap();
        assignment.seek(&tp(0), 3).unwrap();
        assignment.lookup_done(&tp(0), OffsetSpec::Timestamp(5), 60);
        assert_eq!(assignment.position(&tp(0)).unwrap(), Some(3));
        assert!(assignment.seek(&tp(0), -1).is_err());
        assert!(assignment.seek(&tp(9), 1).is_err());
        assert!(
            assignment
                .seek_lookup(&tp(0), OffsetSpec::Timestamp(-4))
                .is_err()
        );
    }

    #[test]
    fn out_of_range_applies_the_policy_to_the_current_position_only() {
        let table = [
            (OffsetReset::Earliest, Ok(Some(OffsetSpec::Earliest))),
            (OffsetReset::Latest, Ok(Some(OffsetSpec::Latest))),
            (OffsetReset::None, Err(())),
        ];
        for (policy, expected) in table {
            let mut assignment = Assignment::default();
            assignment.assign([tp(0)]);
            assignment.seek(&tp(0), 50).unwrap();
            // A stale answer (for a fetch before a seek) changes nothing.
            assignment.out_of_range(&tp(0), 10, policy).unwrap();
            assert_eq!(assignment.position(&tp(0)).unwrap(), Some(50));
            let result = assignment.out_of_range(&tp(0), 50, policy);
            match expected {
                Ok(spec) => {
                    result.unwrap();
                    let lookups = assignment.lookups(OffsetReset::None).unwrap();
                    assert_eq!(lookups.first().map(|(_, s)| *s), spec, "{policy:?}");
                }
                Err(()) => {
                    let error = result.unwrap_err();
                    assert!(
                        matches!(error, ClientError::OffsetOutOfRange { offset: 50, .. }),
                        "{error}"
                    );
                    assert_eq!(error.error_code(), Some(crate::ErrorCode::OffsetOutOfRange));
                    assert!(error.to_string().contains("OFFSET_OUT_OF_RANGE"), "{error}");
                    assert_eq!(assignment.position(&tp(0)).unwrap(), Some(50));
                }
            }
        }
    }

    #[test]
    fn pause_stops_fetching_and_keeps_the_position() {
        let mut assignment = Assignment::default();
        assignment.assign([tp(0), tp(1)]);
        assignment.seek(&tp(0), 5).unwrap();
        assignment.seek(&tp(1), 6).unwrap();
        assignment.set_paused(&tp(0), true).unwrap();
        assert_eq!(assignment.fetchable(), vec![(tp(1), 6)]);
        assert_eq!(assignment.paused(), vec![tp(0)]);
        assert!(!assignment.accepts(&tp(0), 5));
        assignment.advance(&tp(0), 5, 9);
        assert_eq!(assignment.position(&tp(0)).unwrap(), Some(5));
        assignment.set_paused(&tp(0), false).unwrap();
        assert_eq!(assignment.fetchable(), vec![(tp(0), 5), (tp(1), 6)]);
        assert!(assignment.set_paused(&tp(3), true).is_err());
    }

    #[test]
    fn positions_advance_only_from_the_current_position() {
        let mut assignment = Assignment::default();
        assignment.assign([tp(0)]);
        assignment.seek(&tp(0), 10).unwrap();
        assignment.advance(&tp(0), 10, 15);
        assignment.advance(&tp(0), 10, 20); // a duplicate of the first fetch
        assert_eq!(assignment.position(&tp(0)).unwrap(), Some(15));
        assert!(assignment.accepts(&tp(0), 15));
        assert!(!assignment.accepts(&tp(1), 15));
    }

    #[test]
    fn reassigning_keeps_the_state_of_partitions_that_stay() {
        let mut assignment = Assignment::default();
        assignment.assign([tp(0), tp(1)]);
        assignment.seek(&tp(0), 4).unwrap();
        assignment.set_paused(&tp(0), true).unwrap();
        assignment.assign([tp(0), tp(2)]);
        assert_eq!(assignment.assigned(), vec![tp(0), tp(2)]);
        assert_eq!(assignment.position(&tp(0)).unwrap(), Some(4));
        assert_eq!(assignment.paused(), vec![tp(0)]);
        assert!(assignment.position(&tp(1)).is_err());
    }

    #[test]
    fn reset_policy_names() {
        assert_eq!("EARLIEST".parse(), Ok(OffsetReset::Earliest));
        assert_eq!("latest".parse(), Ok(OffsetReset::Latest));
        assert_eq!("none".parse(), Ok(OffsetReset::None));
        assert!("smallest".parse::<OffsetReset>().is_err());
        assert_eq!(OffsetReset::default(), OffsetReset::Latest);
        assert_eq!(tp(3).to_string(), "t-3");
    }
}
