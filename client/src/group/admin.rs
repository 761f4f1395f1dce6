//! Group administration, like Kafka's `Admin.listConsumerGroups`, `describeConsumerGroups`
//! and `deleteConsumerGroups`: [`Admin::list_groups`] asks every live broker for the groups it
//! coordinates and merges the answers; [`Group::describe`] and [`Group::delete`] go to the
//! group's coordinator (found and retried like commits).

use bytes::Bytes;
use tributary_proto::v1 as pb;

use super::{Coordinator, Group, retry_decision, service};
use crate::routing::RetryPolicy;
use crate::{Admin, ClientError, ErrorCode, TopicPartition};

/// A group's state, as the coordinator reports it (Kafka's names).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GroupState {
    /// No members (offsets may still be committed from outside group management).
    Empty,
    /// Members are (re-)joining.
    PreparingRebalance,
    /// Every member joined; the leader's assignment is awaited.
    CompletingRebalance,
    /// Members have their assignment.
    Stable,
    /// The coordinator does not know the group (it never existed, or was deleted or expired).
    Dead,
    /// A state this client does not know (a newer broker).
    Unknown(String),
}

impl GroupState {
    /// Every state the broker reports, in Kafka's order.
    pub const KNOWN: [GroupState; 5] = [
        GroupState::Empty,
        GroupState::PreparingRebalance,
        GroupState::CompletingRebalance,
        GroupState::Stable,
        GroupState::Dead,
    ];

    /// Kafka's name of the state.
    pub fn name(&self) -> &str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
            GroupState::Unknown(name) => name,
        }
    }

    /// The state named `name` (any case); [`GroupState::Unknown`] for other names.
    pub fn parse(name: &str) -> GroupState {
        GroupState::KNOWN
            .into_iter()
            .find(|state| state.name().eq_ignore_ascii_case(name))
            .unwrap_or_else(|| GroupState::Unknown(name.to_owned()))
    }
}

impl std::fmt::Display for GroupState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One group in [`Admin::list_groups`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// The group id.
    pub group_id: String,
    /// The members' protocol type ("consumer"); "" for a group that only ever had commits
    /// from outside group management.
    pub protocol_type: String,
    /// Its state.
    pub state: GroupState,
    /// The broker coordinating it (the one that listed it).
    pub coordinator: i32,
}

/// One member in a [`GroupDescription`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// The member id the coordinator gave it.
    pub member_id: String,
    /// The client id it joined with.
    pub client_id: String,
    /// The address it joined from (`/127.0.0.1`, as Kafka shows it); "" when unknown.
    pub client_host: String,
    /// Its partitions, decoded from its assignment (consumer groups in state Stable only;
    /// empty otherwise).
    pub assignment: Vec<TopicPartition>,
    /// Its metadata for the group's protocol as the coordinator holds it (Stable only).
    pub metadata: Bytes,
    /// Its assignment's bytes (Stable only).
    pub raw_assignment: Bytes,
}

/// A group as its coordinator describes it ([`Group::describe`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// The group id.
    pub group_id: String,
    /// The coordinator that described it.
    pub coordinator: Coordinator,
    /// Its state ([`GroupState::Dead`] when the coordinator does not know it).
    pub state: GroupState,
    /// The members' protocol type ("" when it never had members).
    pub protocol_type: String,
    /// The current generation's protocol (for consumers the assignor; "" without members).
    pub protocol: String,
    /// The generation (-1 for a Dead group).
    pub generation_id: i32,
    /// The leader's member id ("" without members).
    pub leader: String,
    /// The members, by member id.
    pub members: Vec<GroupMember>,
}

impl GroupDescription {
    /// The member assigned `topic`-`partition`, if any.
    pub fn owner_of(&self, topic: &str, partition: i32) -> Option<&GroupMember> {
        self.members.iter().find(|member| {
            member
                .assignment
                .iter()
                .any(|tp| tp.topic == topic && tp.partition == partition)
        })
    }
}

/// The description in a DescribeGroups answer for one group (pure).
pub(super) fn description_of(
    coordinator: Coordinator,
    described: pb::DescribedGroup,
) -> Result<GroupDescription, ClientError> {
    if let Some(error) = super::wire::group_error(
        &described.group_id,
        described.error_code,
        &described.error_message,
    ) {
        return Err(error);
    }
    Ok(GroupDescription {
        group_id: described.group_id,
        coordinator,
        state: GroupState::parse(&described.group_state),
        protocol_type: described.protocol_type,
        protocol: described.protocol_name,
        generation_id: described.generation_id,
        leader: described.leader,
        members: described
            .members
            .into_iter()
            .map(|m| GroupMember {
                member_id: m.member_id,
                client_id: m.client_id,
                client_host: m.client_host,
                assignment: m
                    .assignment
                    .map(|a| {
                        a.partitions
                            .into_iter()
                            .flat_map(|t| {
                                let topic = t.topic;
                                t.partitions
                                    .into_iter()
                                    .map(move |p| TopicPartition::new(topic.clone(), p))
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                metadata: m.member_metadata,
                raw_assignment: m.member_assignment,
            })
            .collect(),
    })
}

/// The groups in one broker's ListGroups answer (pure); COORDINATOR_LOAD_IN_PROGRESS is an
/// error (retried by the caller).
pub(super) fn listing_of(
    broker_id: i32,
    response: pb::ListGroupsResponse,
) -> Result<Vec<GroupListing>, ClientError> {
    match ErrorCode::from_wire(response.error_code) {
        ErrorCode::None => {}
        code => {
            return Err(ClientError::Broker {
                topic: super::OFFSETS_TOPIC.to_owned(),
                partition: None,
                code,
                message: format!("broker {broker_id}: {}", response.error_message),
            });
        }
    }
    Ok(response
        .groups
        .into_iter()
        .map(|g| GroupListing {
            group_id: g.group_id,
            protocol_type: g.protocol_type,
            state: GroupState::parse(&g.group_state),
            coordinator: broker_id,
        })
        .collect())
}

/// The listings of every broker as one list, sorted by group id; a group listed by two
/// brokers (its partition changed leader between the calls) is kept once, from the first.
pub(super) fn merge(listings: Vec<Vec<GroupListing>>) -> Vec<GroupListing> {
    let mut merged: Vec<GroupListing> = Vec::new();
    for listing in listings {
        for group in listing {
            if !merged.iter().any(|g| g.group_id == group.group_id) {
                merged.push(group);
            }
        }
    }
    merged.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    merged
}

/// One DeleteGroups answer for one group (pure).
pub(super) fn deletion_of(
    group_id: &str,
    response: pb::DeleteGroupsResponse,
) -> Result<(), ClientError> {
    let result = response
        .results
        .into_iter()
        .find(|r| r.group_id == group_id)
        .ok_or_else(|| ClientError::MalformedResponse {
            operation: "DeleteGroups",
            topic: String::new(),
            partition: None,
            reason: format!("no result for group {group_id:?}"),
        })?;
    match super::wire::group_error(group_id, result.error_code, &result.error_message) {
        None => Ok(()),
        Some(error) => Err(error),
    }
}

/// Whether a failed deletion is retried: like other group requests, except REQUEST_TIMED_OUT
/// (the coordinator already forgot the group; a retry would say GROUP_ID_NOT_FOUND).
fn delete_retry_decision(error: &ClientError) -> (bool, bool) {
    if error.error_code() == Some(ErrorCode::RequestTimedOut) {
        return (false, false);
    }
    retry_decision(error)
}

impl Group {
    /// The group's state, protocol and members with their partitions, from its coordinator
    /// (a group it does not know is [`GroupState::Dead`]). Errors: INVALID_GROUP_ID, and
    /// the coordinator codes once the retries are used up.
    pub async fn describe(&self) -> Result<GroupDescription, ClientError> {
        let request = pb::DescribeGroupsRequest {
            group_ids: vec![self.group_id.clone()],
        };
        let group = self.group_id.as_str();
        self.on_coordinator(|coordinator, mut service| {
            let request = request.clone();
            async move {
                let response = service
                    .describe_groups(request)
                    .await
                    .map_err(ClientError::rpc("DescribeGroups"))?
                    .into_inner();
                let described = response.groups.into_iter().next().ok_or_else(|| {
                    ClientError::MalformedResponse {
                        operation: "DescribeGroups",
                        topic: String::new(),
                        partition: None,
                        reason: format!("no result for group {group:?}"),
                    }
                })?;
                description_of(coordinator, described)
            }
        })
        .await
    }

    /// Deletes the group: allowed only while it has no members (else
    /// [`ErrorCode::NonEmptyGroup`]); [`ErrorCode::GroupIdNotFound`] when the coordinator
    /// knows no such group. Its committed offsets and metadata get tombstones in
    /// `__consumer_offsets`; returns once every in-sync replica has them.
    pub async fn delete(&self) -> Result<(), ClientError> {
        let request = pb::DeleteGroupsRequest {
            group_ids: vec![self.group_id.clone()],
        };
        let group = self.group_id.as_str();
        self.on_coordinator_with(delete_retry_decision, |_, mut service| {
            let request = request.clone();
            async move {
                let response = service
                    .delete_groups(request)
                    .await
                    .map_err(ClientError::rpc("DeleteGroups"))?
                    .into_inner();
                deletion_of(group, response)
            }
        })
        .await
    }
}

impl Admin {
    /// The cluster's groups (in `states`, or all when it is empty), sorted by group id: every
    /// live broker is asked for the groups it coordinates (ListGroups), as Kafka's admin
    /// client does. A broker still loading some of its partitions is asked again within the
    /// client's retry timeout; any broker that cannot answer makes the whole call fail.
    pub async fn list_groups(
        &self,
        states: &[GroupState],
    ) -> Result<Vec<GroupListing>, ClientError> {
        let metadata = self.client().metadata(&[super::OFFSETS_TOPIC]).await?;
        let mut brokers = metadata.brokers;
        brokers.sort_by_key(|broker| broker.id);
        let request = pb::ListGroupsRequest {
            states_filter: states.iter().map(|s| s.name().to_owned()).collect(),
        };
        let policy: RetryPolicy = self.client().retry;
        let mut listings = Vec::with_capacity(brokers.len());
        for broker in brokers {
            let address = format!("http://{}:{}", broker.host, broker.port);
            let started = tokio::time::Instant::now();
            let mut retry = 0;
            let listing = loop {
                let result = async {
                    let response = service(&address)?
                        .list_groups(request.clone())
                        .await
                        .map_err(ClientError::rpc("ListGroups"))?
                        .into_inner();
                    listing_of(broker.id, response)
                }
                .await;
                let error = match result {
                    Ok(listing) => break listing,
                    Err(error) => error,
                };
                let retriable = error.error_code() == Some(ErrorCode::CoordinatorLoadInProgress)
                    || error.needs_metadata_refresh();
                retry += 1;
                match policy.delay_before(retry, started.elapsed()) {
                    Some(delay) if retriable => tokio::time::sleep(delay).await,
                    _ => return Err(error),
                }
            };
            listings.push(listing);
        }
        Ok(merge(listings))
    }

    /// [`Group::describe`] of `group_id`.
    pub async fn describe_group(&self, group_id: &str) -> Result<GroupDescription, ClientError> {
        self.client().group(group_id)?.describe().await
    }

    /// [`Group::delete`] of `group_id`.
    pub async fn delete_group(&self, group_id: &str) -> Result<(), ClientError> {
        self.client().group(group_id)?.delete().await
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    fn coordinator() -> Coordinator {
        Coordinator {
            broker_id: 2,
            address: "http://127.0.0.1:9093".into(),
            partition: 7,
        }
    }

    #[test]
    fn states_parse_in_any_case_and_keep_unknown_names() {
        for state in GroupState::KNOWN {
            assert_eq!(GroupState::parse(&state.name().to_uppercase()), state);
        }
        assert_eq!(
            GroupState::parse("Asleep"),
            GroupState::Unknown("Asleep".into())
        );
        assert_eq!(GroupState::parse("Asleep").to_string(), "Asleep");
    }

    #[test]
    fn descriptions_decode_members_and_their_partitions() {
        let assignment = pb::ConsumerAssignment {
            partitions: vec![
                pb::ConsumerTopicPartitions {
                    topic: "a".into(),
                    partitions: vec![0, 2],
                },
                pb::ConsumerTopicPartitions {
                    topic: "b".into(),
                    partitions: vec![1],
                },
            ],
            user_data: Bytes::new(),
        };
        let described = pb::DescribedGroup {
            error_code: 0,
            error_message: String::new(),
            group_id: "g".into(),
            group_state: "Stable".into(),
            protocol_type: "consumer".into(),
            protocol_name: "range".into(),
            generation_id: 3,
            leader: "m1".into(),
            members: vec![
                pb::DescribedGroupMember {
                    member_id: "m1".into(),
                    group_instance_id: String::new(),
                    client_id: "c".into(),
                    client_host: "/127.0.0.1".into(),
                    member_metadata: Bytes::from_static(b"sub"),
                    member_assignment: assignment.encode_to_vec().into(),
                    assignment: Some(assignment.clone()),
                },
                pb::DescribedGroupMember {
                    member_id: "m2".into(),
                    group_instance_id: String::new(),
                    client_id: "c".into(),
                    client_host: "/127.0.0.1".into(),
                    member_metadata: Bytes::new(),
                    member_assignment: Bytes::new(),
                    assignment: None,
                },
            ],
        };
        let description = description_of(coordinator(), described).unwrap();
        assert_eq!(description.state, GroupState::Stable);
        assert_eq!(description.generation_id, 3);
        assert_eq!(
            description.members[0].assignment,
            [
                TopicPartition::new("a", 0),
                TopicPartition::new("a", 2),
                TopicPartition::new("b", 1)
            ]
        );
        assert!(description.members[1].assignment.is_empty());
        assert_eq!(
            description.owner_of("a", 2).map(|m| m.member_id.as_str()),
            Some("m1")
        );
        assert_eq!(description.owner_of("a", 1), None);

        let refused = pb::DescribedGroup {
            error_code: ErrorCode::NotCoordinator.wire_value(),
            error_message: "moved".into(),
            group_id: "g".into(),
            ..Default::default()
        };
        let error = description_of(coordinator(), refused).unwrap_err();
        assert_eq!(error.error_code(), Some(ErrorCode::NotCoordinator));
    }

    #[test]
    fn listings_are_merged_sorted_and_deduplicated() {
        let listed = |id: &str, state: &str| pb::ListedGroup {
            group_id: id.into(),
            protocol_type: "consumer".into(),
            group_state: state.into(),
        };
        let first = listing_of(
            1,
            pb::ListGroupsResponse {
                error_code: 0,
                error_message: String::new(),
                groups: vec![listed("b", "Stable"), listed("d", "Empty")],
            },
        )
        .unwrap();
        let second = listing_of(
            2,
            pb::ListGroupsResponse {
                error_code: 0,
                error_message: String::new(),
                groups: vec![listed("a", "PreparingRebalance"), listed("d", "Empty")],
            },
        )
        .unwrap();
        let merged: Vec<(String, i32, GroupState)> = merge(vec![first, second])
            .into_iter()
            .map(|g| (g.group_id, g.coordinator, g.state))
            .collect();
        assert_eq!(
            merged,
            [
                ("a".into(), 2, GroupState::PreparingRebalance),
                ("b".into(), 1, GroupState::Stable),
                ("d".into(), 1, GroupState::Empty),
            ]
        );
        let loading = listing_of(
            3,
            pb::ListGroupsResponse {
                error_code: ErrorCode::CoordinatorLoadInProgress.wire_value(),
                error_message: "partitions [4] are still being loaded".into(),
                groups: vec![],
            },
        )
        .unwrap_err();
        assert_eq!(
            loading.error_code(),
            Some(ErrorCode::CoordinatorLoadInProgress)
        );
        assert!(loading.to_string().contains("broker 3"), "{loading}");
    }

    #[test]
    fn deletions_report_the_groups_code_and_timeouts_are_not_retried() {
        let answer = |code: ErrorCode| pb::DeleteGroupsResponse {
            results: vec![pb::DeleteGroupResult {
                group_id: "g".into(),
                error_code: code.wire_value(),
                error_message: "why".into(),
            }],
        };
        assert!(deletion_of("g", answer(ErrorCode::None)).is_ok());
        let refused = deletion_of("g", answer(ErrorCode::NonEmptyGroup)).unwrap_err();
        assert_eq!(refused.to_string(), "group \"g\": NON_EMPTY_GROUP: why");
        assert!(deletion_of("other", answer(ErrorCode::None)).is_err());

        let group = |code| ClientError::Group {
            group: "g".into(),
            code,
            message: String::new(),
        };
        assert_eq!(
            delete_retry_decision(&group(ErrorCode::RequestTimedOut)),
            (false, false)
        );
        assert_eq!(
            delete_retry_decision(&group(ErrorCode::NotCoordinator)),
            (true, true)
        );
        assert_eq!(
            delete_retry_decision(&group(ErrorCode::NonEmptyGroup)),
            (false, false)
        );
    }
}
