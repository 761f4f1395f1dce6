//! Offset expiry as pure rules (Kafka 2.8's `GroupMetadata.removeExpiredOffsets`, the
//! KIP-211 semantics of Kafka 2.1+): which committed offsets of a group have outlived
//! `offsets.retention.minutes`, and whether the group itself goes. [`super::manage`] applies
//! them every `offsets.retention.check.interval.ms` and writes the tombstones.
//!
//! | group                                                  | an offset expires when                        |
//! |--------------------------------------------------------|-----------------------------------------------|
//! | Empty, had members (protocol type set)                 | now − (when it became Empty) ≥ retention; the commit time when that is unknown |
//! | no protocol type (only ever simple commits)            | now − commit time ≥ retention                 |
//! | "consumer" with members, subscriptions known           | its topic is subscribed by no member and now − commit time ≥ retention |
//! | any other (members of another protocol, unknown subscriptions) | never                                 |
//!
//! In every case an offset whose commit is still pending (appended, not yet replicated) does
//! not expire, and an offset stored with an explicit expiry (a v1 record) expires at that time
//! instead. A group left Empty without offsets (nor pending commits or pending member ids) is
//! removed, with a tombstone for its metadata.

use std::collections::BTreeSet;

use prost::Message;
use tributary_proto::v1::ConsumerSubscription;

use super::membership::CONSUMER_PROTOCOL_TYPE;
use super::state::{Group, GroupState};

/// What the expiry check does to one group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expiry {
    /// The offsets that expired, sorted.
    pub offsets: Vec<(String, i32)>,
    /// The group goes too (Empty, nothing left).
    pub remove_group: bool,
}

impl Expiry {
    /// Nothing to do.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty() && !self.remove_group
    }
}

/// The topics the members of a "consumer" group subscribe to (the union of their
/// `ConsumerSubscription`s for the group's protocol); `None` when the group has no members,
/// is of another protocol type, or a member's subscription is missing or does not decode.
pub fn subscribed_topics(group: &Group) -> Option<BTreeSet<String>> {
    if group.protocol_type.as_deref() != Some(CONSUMER_PROTOCOL_TYPE) || group.members.is_empty() {
        return None;
    }
    let protocol = group.protocol.as_deref()?;
    let mut topics = BTreeSet::new();
    for member in group.members.values() {
        let (_, metadata) = member.protocols.iter().find(|(name, _)| name == protocol)?;
        let subscription = ConsumerSubscription::decode(metadata.as_ref()).ok()?;
        topics.extend(subscription.topics);
    }
    Some(topics)
}

/// From when an offset's retention runs.
#[derive(Debug, Clone, Copy)]
enum Since {
    /// Its commit.
    Commit,
    /// When the group became Empty (its commit when that is unknown).
    Emptied(Option<i64>),
}

/// The offsets of `group` expired at `now` with retention `retention_ms`, and whether the
/// group goes (see the module table).
pub fn expire(group: &Group, now: i64, retention_ms: i64) -> Expiry {
    let rule = match (&group.protocol_type, group.state) {
        (Some(_), GroupState::Empty) => Some((Since::Emptied(group.state_timestamp), None)),
        (None, _) => Some((Since::Commit, None)),
        (Some(_), _) => subscribed_topics(group).map(|topics| (Since::Commit, Some(topics))),
    };
    let offsets: Vec<(String, i32)> = match rule {
        None => Vec::new(),
        Some((since, subscribed)) => group
            .offsets
            .iter()
            .filter(|((topic, partition), committed)| {
                let start = match since {
                    Since::Commit => committed.commit_timestamp,
                    Since::Emptied(at) => at.unwrap_or(committed.commit_timestamp),
                };
                !subscribed.as_ref().is_some_and(|s| s.contains(topic))
                    && !group
                        .pending_commits
                        .contains_key(&(topic.clone(), *partition))
                    && match committed.expire_timestamp {
                        Some(expire_at) => now >= expire_at,
                        None => now.saturating_sub(start) >= retention_ms,
                    }
            })
            .map(|(key, _)| key.clone())
            .collect(),
    };
    let remove_group = group.state == GroupState::Empty
        && group.offsets.len() == offsets.len()
        && group.pending_commits.is_empty()
        && group.pending_members.is_empty();
    Expiry {
        offsets,
        remove_group,
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::group::state::{CommittedOffset, Member};

    const RETENTION: i64 = 1000;

    fn committed(commit_timestamp: i64) -> CommittedOffset {
        CommittedOffset {
            offset: 1,
            leader_epoch: None,
            metadata: String::new(),
            commit_timestamp,
            expire_timestamp: None,
            record_offset: 0,
        }
    }

    fn subscription(topics: &[&str]) -> Bytes {
        ConsumerSubscription {
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            owned_partitions: Vec::new(),
            generation: -1,
            user_data: Bytes::new(),
        }
        .encode_to_vec()
        .into()
    }

    /// A group with offsets of `t-0` committed at 100 and `u-0` committed at 500.
    fn with_offsets(mut group: Group) -> Group {
        group.offsets.insert(("t".into(), 0), committed(100));
        group.offsets.insert(("u".into(), 0), committed(500));
        group
    }

    /// Simple commits only: no protocol type, Empty.
    fn simple() -> Group {
        with_offsets(Group::empty())
    }

    /// A consumer group that became Empty at `since` (`None`: unknown, an old record).
    fn emptied(since: Option<i64>) -> Group {
        let mut group = with_offsets(Group::empty());
        group.protocol_type = Some(CONSUMER_PROTOCOL_TYPE.into());
        group.state_timestamp = since;
        group
    }

    /// A Stable consumer group whose member subscribes to `topics` (`None`: metadata that
    /// does not decode).
    fn consuming(protocol_type: &str, topics: Option<&[&str]>) -> Group {
        let mut group = with_offsets(Group::empty());
        group.state = GroupState::Stable;
        group.state_timestamp = Some(50);
        group.protocol_type = Some(protocol_type.into());
        group.protocol = Some("range".into());
        let metadata = topics.map_or(Bytes::from_static(b"\xff\xff\xff"), subscription);
        let member = Member::joining(
            "m",
            "c",
            10_000,
            10_000,
            vec![("range".into(), metadata)],
            0,
        );
        group.leader = Some("m".into());
        group.members.insert("m".into(), member);
        group
    }

    fn expired(group: &Group, now: i64) -> (Vec<&'static str>, bool) {
        let expiry = expire(group, now, RETENTION);
        let names = expiry
            .offsets
            .iter()
            .map(|(topic, _)| if topic == "t" { "t-0" } else { "u-0" })
            .collect();
        (names, expiry.remove_group)
    }

    #[test]
    fn offsets_expire_by_kafkas_rules() {
        // (group, now, expired offsets, group removed)
        let table: Vec<(&str, Group, i64, Vec<&str>, bool)> = vec![
            // Simple groups: each offset RETENTION after its commit; the group goes with
            // the last offset.
            ("simple, young", simple(), 1099, vec![], false),
            ("simple, t old", simple(), 1100, vec!["t-0"], false),
            ("simple, both old", simple(), 1500, vec!["t-0", "u-0"], true),
            // KIP-211: an Empty consumer group keeps every offset until RETENTION after it
            // became Empty, however old the commits.
            ("emptied at 2000", emptied(Some(2000)), 2999, vec![], false),
            (
                "emptied at 2000, later",
                emptied(Some(2000)),
                3000,
                vec!["t-0", "u-0"],
                true,
            ),
            // Unknown emptying time (a v0/v1 record): the commit time counts.
            ("emptied, unknown", emptied(None), 1100, vec!["t-0"], false),
            // A Stable consumer group: subscribed topics never expire; others after their
            // commit.
            (
                "stable, subscribed to both",
                consuming("consumer", Some(&["t", "u"])),
                99_999,
                vec![],
                false,
            ),
            (
                "stable, subscribed to u",
                consuming("consumer", Some(&["u"])),
                1100,
                vec!["t-0"],
                false,
            ),
            (
                "stable, subscribed to u, early",
                consuming("consumer", Some(&["u"])),
                1099,
                vec![],
                false,
            ),
            // Subscriptions unknown (do not decode) or another protocol type: nothing.
            (
                "stable, undecodable",
                consuming("consumer", None),
                99_999,
                vec![],
                false,
            ),
            (
                "stable, connect",
                consuming("connect", Some(&[])),
                99_999,
                vec![],
                false,
            ),
        ];
        for (name, group, now, offsets, removed) in table {
            assert_eq!(expired(&group, now), (offsets, removed), "{name}");
        }
    }

    #[test]
    fn pending_commits_explicit_expiry_and_pending_members() {
        // A pending commit keeps its partition (and so the group).
        let mut group = simple();
        group.add_pending("t", 0, 42);
        assert_eq!(expired(&group, 5000), (vec!["u-0"], false));
        group.finish_pending("t", 0, 42);
        assert_eq!(expired(&group, 5000), (vec!["t-0", "u-0"], true));

        // A v1 record's explicit expire_timestamp wins over the retention.
        let mut group = emptied(Some(2000));
        group
            .offsets
            .get_mut(&("u".into(), 0))
            .unwrap()
            .expire_timestamp = Some(600);
        assert_eq!(expired(&group, 600), (vec!["u-0"], false));

        // An Empty group without offsets goes, unless a member id handed out is still
        // expected to join, or it has members.
        let mut group = Group::empty();
        assert_eq!(expired(&group, 0), (vec![], true));
        group.pending_members.insert("m".into(), 10_000);
        assert_eq!(expired(&group, 0), (vec![], false));
        assert!(expire(&consuming("consumer", Some(&["t", "u"])), 0, RETENTION).is_empty());
    }

    #[test]
    fn subscriptions_are_decoded_from_the_members_metadata() {
        let group = consuming("consumer", Some(&["a", "b"]));
        assert_eq!(
            subscribed_topics(&group),
            Some(["a".to_owned(), "b".to_owned()].into())
        );
        assert_eq!(subscribed_topics(&consuming("consumer", None)), None);
        assert_eq!(subscribed_topics(&consuming("connect", Some(&["a"]))), None);
        assert_eq!(subscribed_topics(&Group::empty()), None);
        // A member that does not support the group's protocol: unknown.
        let mut group = consuming("consumer", Some(&["a"]));
        group.protocol = Some("roundrobin".into());
        assert_eq!(subscribed_topics(&group), None);
    }
}
