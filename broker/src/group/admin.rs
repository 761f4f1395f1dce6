//! ListGroups, DescribeGroups and DeleteGroups as pure decisions (Kafka's
//! `GroupCoordinator.handleListGroups`, `handleDescribeGroup` and `handleDeleteGroups`): the
//! groups in, the listing, the description or the refusal and the tombstones out.
//! [`super::manage`] runs them under the shard's lock and does the I/O.

use bytes::Bytes;
use tributary_record::{BatchBuilder, Record};

use super::error::GroupError;
use super::records::{group_metadata_key, offset_commit_key};
use super::shard::Groups;
use super::state::{Group, GroupState};

/// One group as ListGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOverview {
    /// The group id.
    pub group_id: String,
    /// The members' protocol type; "" for a group that never had members.
    pub protocol_type: String,
    /// Its state.
    pub state: GroupState,
}

/// One member as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSummary {
    /// Its id.
    pub member_id: String,
    /// Its client id.
    pub client_id: String,
    /// Where it joined from (`/127.0.0.1`), "" when unknown.
    pub client_host: String,
    /// Its metadata for the group's protocol (empty unless the group is Stable).
    pub metadata: Bytes,
    /// Its assignment (empty unless the group is Stable).
    pub assignment: Bytes,
}

/// One group as DescribeGroups shows it (Kafka's `GroupSummary`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSummary {
    /// Its state (Dead for a group the coordinator does not know).
    pub state: GroupState,
    /// The members' protocol type ("" when it never had members).
    pub protocol_type: String,
    /// The current generation's protocol ("" without members).
    pub protocol: String,
    /// The generation (-1 for Dead).
    pub generation: i32,
    /// The leader's member id ("" without members).
    pub leader: String,
    /// The members, by member id.
    pub members: Vec<MemberSummary>,
}

/// The groups of one shard in `states` (every state when empty), sorted by group id.
pub fn list(groups: &Groups, states: &[GroupState]) -> Vec<GroupOverview> {
    let mut listed: Vec<GroupOverview> = groups
        .iter()
        .filter(|(_, group)| states.is_empty() || states.contains(&group.state))
        .map(|(group_id, group)| GroupOverview {
            group_id: group_id.clone(),
            protocol_type: group.protocol_type.clone().unwrap_or_default(),
            state: group.state,
        })
        .collect();
    listed.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    listed
}

/// The description of `group` (`None`: the coordinator does not know it, described as Dead,
/// as Kafka does). Members' metadata and assignments are shown only in Stable, as in Kafka:
/// during a rebalance they are not settled.
pub fn describe(group: Option<&Group>) -> GroupSummary {
    let Some(group) = group.filter(|g| g.state != GroupState::Dead) else {
        return GroupSummary {
            state: GroupState::Dead,
            protocol_type: String::new(),
            protocol: String::new(),
            generation: -1,
            leader: String::new(),
            members: Vec::new(),
        };
    };
    let stable = group.state == GroupState::Stable;
    let protocol = group.protocol.clone().unwrap_or_default();
    GroupSummary {
        state: group.state,
        protocol_type: group.protocol_type.clone().unwrap_or_default(),
        protocol: if group.members.is_empty() {
            String::new()
        } else {
            protocol.clone()
        },
        generation: group.generation,
        leader: group.leader.clone().unwrap_or_default(),
        members: group
            .members
            .values()
            .map(|m| MemberSummary {
                member_id: m.member_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: if stable {
                    m.metadata(&protocol)
                } else {
                    Bytes::new()
                },
                assignment: if stable {
                    m.assignment.clone()
                } else {
                    Bytes::new()
                },
            })
            .collect(),
    }
}

/// Whether `group` may be deleted (Kafka's `handleDeleteGroups`):
///
/// | group                                        | outcome            |
/// |----------------------------------------------|--------------------|
/// | unknown                                      | GROUP_ID_NOT_FOUND |
/// | Dead                                         | GROUP_ID_NOT_FOUND |
/// | Empty                                        | deleted            |
/// | PreparingRebalance, CompletingRebalance, Stable | NON_EMPTY_GROUP |
pub fn check_delete(group_id: &str, group: Option<&Group>) -> Result<(), GroupError> {
    match group.map(|g| g.state) {
        None | Some(GroupState::Dead) => Err(GroupError::GroupIdNotFound {
            group: group_id.to_owned(),
        }),
        Some(GroupState::Empty) => Ok(()),
        Some(state) => Err(GroupError::NonEmptyGroup {
            group: group_id.to_owned(),
            state: state.name(),
            members: group.map_or(0, |g| g.members.len()),
        }),
    }
}

/// The (topic, partition)s whose offsets a deletion of `group` tombstones: every committed
/// one and every one with a commit still pending (its record is in the log before the
/// tombstone, so the tombstone wins), sorted.
pub fn deleted_offsets(group: &Group) -> Vec<(String, i32)> {
    let mut keys: Vec<(String, i32)> = group
        .offsets
        .keys()
        .chain(group.pending_commits.keys())
        .cloned()
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// A key of `__consumer_offsets` to tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tombstone {
    /// A committed offset of the group.
    Offset(String, i32),
    /// The group's metadata.
    Group,
}

/// The largest batch of tombstones built at once (key bytes): well under the offsets topic's
/// default `max.message.bytes` (1 MiB), whatever the group and topic names.
const MAX_TOMBSTONE_BATCH_BYTES: usize = 256 * 1024;

/// Batches of tombstone records for `group_id`'s keys, in order, none larger than
/// [`MAX_TOMBSTONE_BATCH_BYTES`] of keys (unless one key alone is): each batch with the
/// tombstones it holds.
pub fn tombstone_batches(
    group_id: &str,
    tombstones: Vec<Tombstone>,
    now: i64,
) -> Vec<(Bytes, Vec<Tombstone>)> {
    let mut batches = Vec::new();
    let mut builder = BatchBuilder::new();
    let mut held: Vec<Tombstone> = Vec::new();
    let mut bytes = 0;
    for tombstone in tombstones {
        let key = match &tombstone {
            Tombstone::Offset(topic, partition) => offset_commit_key(group_id, topic, *partition),
            Tombstone::Group => group_metadata_key(group_id),
        };
        if !held.is_empty() && bytes + key.len() > MAX_TOMBSTONE_BATCH_BYTES {
            batches.push((Bytes::from(builder.build_vec()), std::mem::take(&mut held)));
            builder = BatchBuilder::new();
            bytes = 0;
        }
        bytes += key.len();
        builder.push(&Record {
            key: Some(key),
            value: None,
            timestamp: now,
            headers: Vec::new(),
        });
        held.push(tombstone);
    }
    if !held.is_empty() {
        batches.push((Bytes::from(builder.build_vec()), held));
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::shard::replay;
    use crate::group::state::{CommittedOffset, Member};

    fn committed(offset: i64) -> CommittedOffset {
        CommittedOffset {
            offset,
            leader_epoch: None,
            metadata: String::new(),
            commit_timestamp: 0,
            expire_timestamp: None,
            record_offset: offset,
        }
    }

    fn member(id: &str) -> Member {
        let mut member = Member::joining(
            id,
            "client",
            10_000,
            30_000,
            vec![("range".into(), Bytes::from_static(b"sub"))],
            0,
        );
        member.client_host = "/10.0.0.1".into();
        member.assignment = Bytes::from(format!("assigned to {id}"));
        member.awaiting_join = false;
        member
    }

    fn group(state: GroupState, members: &[&str]) -> Group {
        let mut group = Group::empty();
        group.state = state;
        group.generation = 3;
        group.protocol_type = Some("consumer".into());
        group.protocol = (!members.is_empty()).then(|| "range".to_owned());
        group.leader = members.first().map(|m| (*m).to_owned());
        for id in members {
            group.members.insert((*id).to_owned(), member(id));
        }
        group
    }

    #[test]
    fn deletion_is_for_empty_groups_only() {
        let empty = group(GroupState::Empty, &[]);
        let simple = Group::empty();
        let dead = group(GroupState::Dead, &[]);
        let table: &[(Option<&Group>, Result<(), &str>)] = &[
            (None, Err("GROUP_ID_NOT_FOUND")),
            (Some(&dead), Err("GROUP_ID_NOT_FOUND")),
            (Some(&empty), Ok(())),
            (Some(&simple), Ok(())),
            (
                Some(&group(GroupState::Stable, &["a", "b"])),
                Err("NON_EMPTY_GROUP"),
            ),
            (
                Some(&group(GroupState::PreparingRebalance, &["a"])),
                Err("NON_EMPTY_GROUP"),
            ),
            (
                Some(&group(GroupState::CompletingRebalance, &["a"])),
                Err("NON_EMPTY_GROUP"),
            ),
        ];
        for (group, expected) in table {
            let got = check_delete("g", *group).map_err(|error| match error {
                GroupError::GroupIdNotFound { .. } => "GROUP_ID_NOT_FOUND",
                GroupError::NonEmptyGroup { .. } => "NON_EMPTY_GROUP",
                other => panic!("{other}"),
            });
            assert_eq!(&got, expected, "{:?}", group.map(|g| g.state));
        }
        let refusal = check_delete("g", Some(&group(GroupState::Stable, &["a", "b"])));
        assert_eq!(
            refusal.unwrap_err().to_string(),
            "group \"g\" is Stable with 2 member(s); only a group without members can be deleted"
        );
    }

    #[test]
    fn descriptions_show_members_and_assignments_when_stable() {
        let stable = group(GroupState::Stable, &["a", "b"]);
        let summary = describe(Some(&stable));
        assert_eq!(
            (
                summary.state,
                summary.protocol_type.as_str(),
                summary.protocol.as_str(),
                summary.generation,
                summary.leader.as_str()
            ),
            (GroupState::Stable, "consumer", "range", 3, "a")
        );
        assert_eq!(
            summary.members[1],
            MemberSummary {
                member_id: "b".into(),
                client_id: "client".into(),
                client_host: "/10.0.0.1".into(),
                metadata: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"assigned to b"),
            }
        );
        // Mid-rebalance the members are listed without metadata or assignment (Kafka's
        // summaryNoMetadata).
        let rebalancing = describe(Some(&group(GroupState::CompletingRebalance, &["a"])));
        assert_eq!(rebalancing.members.len(), 1);
        assert!(rebalancing.members[0].metadata.is_empty());
        assert!(rebalancing.members[0].assignment.is_empty());
        // Unknown groups are Dead; Empty ones keep their protocol type but no protocol.
        let unknown = describe(None);
        assert_eq!((unknown.state, unknown.generation), (GroupState::Dead, -1));
        assert!(unknown.members.is_empty());
        let empty = describe(Some(&group(GroupState::Empty, &[])));
        assert_eq!(
            (
                empty.state,
                empty.protocol_type.as_str(),
                empty.protocol.as_str()
            ),
            (GroupState::Empty, "consumer", "")
        );
        assert_eq!(describe(Some(&Group::empty())).protocol_type, "");
    }

    #[test]
    fn listings_filter_by_state_and_sort() {
        let mut groups = Groups::new();
        groups.insert("z".into(), group(GroupState::Stable, &["a"]));
        groups.insert("b".into(), Group::empty());
        groups.insert("m".into(), group(GroupState::Empty, &[]));
        let names = |listed: Vec<GroupOverview>| -> Vec<(String, String, &'static str)> {
            listed
                .into_iter()
                .map(|o| (o.group_id, o.protocol_type, o.state.name()))
                .collect()
        };
        assert_eq!(
            names(list(&groups, &[])),
            [
                ("b".into(), "".into(), "Empty"),
                ("m".into(), "consumer".into(), "Empty"),
                ("z".into(), "consumer".into(), "Stable"),
            ]
        );
        assert_eq!(
            names(list(&groups, &[GroupState::Stable, GroupState::Dead])),
            [("z".into(), "consumer".into(), "Stable")]
        );
        assert!(list(&groups, &[GroupState::PreparingRebalance]).is_empty());
    }

    #[test]
    fn a_deletion_tombstones_committed_and_pending_offsets_then_the_group() {
        let mut group = Group::empty();
        group.offsets.insert(("t".into(), 0), committed(5));
        group.offsets.insert(("t".into(), 1), committed(6));
        group.add_pending("t", 1, 9);
        group.add_pending("u", 0, 10);
        assert_eq!(
            deleted_offsets(&group),
            [("t".into(), 0), ("t".into(), 1), ("u".into(), 0)]
        );

        // Replaying the log with the tombstones after the commits leaves nothing.
        let mut groups = Groups::new();
        groups.insert("g".into(), group.clone());
        let mut tombstones: Vec<Tombstone> = deleted_offsets(&group)
            .into_iter()
            .map(|(t, p)| Tombstone::Offset(t, p))
            .collect();
        tombstones.push(Tombstone::Group);
        let batches = tombstone_batches("g", tombstones.clone(), 7);
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].1, tombstones);
        let records = tributary_record::decode_records(&batches[0].0).unwrap();
        assert_eq!(records.len(), 4);
        for (i, record) in records.iter().enumerate() {
            assert_eq!((record.value.as_ref(), record.timestamp), (None, 7));
            replay(
                &mut groups,
                record.key.as_deref().unwrap(),
                None,
                20 + i as i64,
            )
            .unwrap();
        }
        assert!(groups.is_empty(), "{groups:?}");
    }

    #[test]
    fn many_tombstones_are_split_into_batches() {
        let topic = "t".repeat(1000);
        let tombstones: Vec<Tombstone> = (0..600)
            .map(|p| Tombstone::Offset(topic.clone(), p))
            .chain([Tombstone::Group])
            .collect();
        let batches = tombstone_batches("g", tombstones.clone(), 0);
        assert!(batches.len() >= 3, "{}", batches.len());
        let held: Vec<Tombstone> = batches.iter().flat_map(|(_, t)| t.clone()).collect();
        assert_eq!(held, tombstones, "every key once, in order");
        for (batch, held) in &batches {
            assert!(batch.len() < 512 * 1024);
            assert_eq!(
                tributary_record::decode_records(batch).unwrap().len(),
                held.len()
            );
        }
    }
}
