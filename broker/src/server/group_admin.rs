//! `tributary.v1.GroupCoordinator` group administration: ListGroups, DescribeGroups and
//! DeleteGroups. Checks the request's shape (INVALID_ARGUMENT), hands each group to
//! [`crate::group`] and turns the outcomes into per-group results.

use prost::Message;
use tonic::Status;
use tributary_proto::v1::{
    ConsumerAssignment, DeleteGroupResult, DeleteGroupsRequest, DeleteGroupsResponse,
    DescribeGroupsRequest, DescribeGroupsResponse, DescribedGroup, DescribedGroupMember, ErrorCode,
    ListGroupsRequest, ListGroupsResponse, ListedGroup,
};

use super::errors::{error_chain, group_error_code, invalid_argument};
use crate::group::{self, CONSUMER_PROTOCOL_TYPE, GroupState, GroupSummary};
use crate::state::BrokerState;

/// Handles ListGroups: the groups this broker coordinates.
pub fn list_groups(
    state: &BrokerState,
    request: ListGroupsRequest,
) -> Result<ListGroupsResponse, Status> {
    let states = request
        .states_filter
        .iter()
        .map(|name| {
            GroupState::parse(name).ok_or_else(|| {
                invalid_argument(format!(
                    "ListGroups: unknown group state {name:?} (Empty, PreparingRebalance, CompletingRebalance, Stable or Dead)"
                ))
            })
        })
        .collect::<Result<Vec<GroupState>, Status>>()?;
    let listing = group::list_groups(state, &states);
    let (error_code, error_message) = if listing.loading.is_empty() {
        (ErrorCode::None, String::new())
    } else {
        (
            ErrorCode::CoordinatorLoadInProgress,
            format!(
                "__consumer_offsets partitions {:?} are still being loaded: their groups are not listed; retry",
                listing.loading
            ),
        )
    };
    Ok(ListGroupsResponse {
        error_code: error_code as i32,
        error_message,
        groups: listing
            .groups
            .into_iter()
            .map(|overview| ListedGroup {
                group_id: overview.group_id,
                protocol_type: overview.protocol_type,
                group_state: overview.state.name().to_owned(),
            })
            .collect(),
    })
}

/// Handles DescribeGroups: one result per requested id, in order.
pub fn describe_groups(
    state: &BrokerState,
    request: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    DescribeGroupsResponse {
        groups: request
            .group_ids
            .into_iter()
            .map(|group_id| match group::describe_group(state, &group_id) {
                Ok(summary) => described(group_id, summary),
                Err(error) => DescribedGroup {
                    error_code: group_error_code(&error) as i32,
                    error_message: error_chain(&error),
                    group_id,
                    group_state: String::new(),
                    protocol_type: String::new(),
                    protocol_name: String::new(),
                    generation_id: -1,
                    leader: String::new(),
                    members: Vec::new(),
                },
            })
            .collect(),
    }
}

/// The answer for one described group; a consumer group's assignments are also decoded (in
/// Stable, where they are shown at all).
fn described(group_id: String, summary: GroupSummary) -> DescribedGroup {
    let consumer =
        summary.protocol_type == CONSUMER_PROTOCOL_TYPE && summary.state == GroupState::Stable;
    DescribedGroup {
        error_code: ErrorCode::None as i32,
        error_message: String::new(),
        group_id,
        group_state: summary.state.name().to_owned(),
        protocol_type: summary.protocol_type,
        protocol_name: summary.protocol,
        generation_id: summary.generation,
        leader: summary.leader,
        members: summary
            .members
            .into_iter()
            .map(|member| DescribedGroupMember {
                assignment: consumer
                    .then(|| ConsumerAssignment::decode(member.assignment.as_ref()).ok())
                    .flatten(),
                member_id: member.member_id,
                group_instance_id: String::new(),
                client_id: member.client_id,
                client_host: member.client_host,
                member_metadata: member.metadata,
                member_assignment: member.assignment,
            })
            .collect(),
    }
}

/// Handles DeleteGroups: one result per requested id, in order.
pub async fn delete_groups(
    state: &BrokerState,
    request: DeleteGroupsRequest,
) -> Result<DeleteGroupsResponse, Status> {
    let mut seen = std::collections::HashSet::new();
    if let Some(twice) = request
        .group_ids
        .iter()
        .find(|id| !seen.insert(id.as_str()))
    {
        return Err(invalid_argument(format!(
            "DeleteGroups: group {twice:?} is named twice"
        )));
    }
    let mut results = Vec::with_capacity(request.group_ids.len());
    for group_id in request.group_ids {
        let result = group::delete_group(state, &group_id).await;
        let (error_code, error_message) = match &result {
            Ok(()) => (ErrorCode::None, String::new()),
            Err(error) => {
                tracing::info!(group = %group_id, error = %error_chain(error), "DeleteGroups refused");
                (group_error_code(error), error_chain(error))
            }
        };
        results.push(DeleteGroupResult {
            group_id,
            error_code: error_code as i32,
            error_message,
        });
    }
    Ok(DeleteGroupsResponse { results })
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use tributary_proto::v1::ConsumerTopicPartitions;

    use super::*;
    use crate::group::MemberSummary;

    fn summary(state: GroupState, protocol_type: &str, assignment: Bytes) -> GroupSummary {
        GroupSummary {
            state,
            protocol_type: protocol_type.into(),
            protocol: "range".into(),
            generation: 4,
            leader: "m".into(),
            members: vec![MemberSummary {
                member_id: "m".into(),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                metadata: Bytes::from_static(b"meta"),
                assignment,
            }],
        }
    }

    #[test]
    fn consumer_assignments_are_decoded_when_stable() {
        let assignment = ConsumerAssignment {
            partitions: vec![ConsumerTopicPartitions {
                topic: "t".into(),
                partitions: vec![0, 2],
            }],
            user_data: Bytes::new(),
        };
        let bytes = Bytes::from(assignment.encode_to_vec());
        let answer = described(
            "g".into(),
            summary(GroupState::Stable, "consumer", bytes.clone()),
        );
        assert_eq!(
            (
                answer.group_state.as_str(),
                answer.generation_id,
                answer.leader.as_str()
            ),
            ("Stable", 4, "m")
        );
        let member = &answer.members[0];
        assert_eq!(member.assignment.as_ref(), Some(&assignment));
        assert_eq!(member.member_assignment, bytes);
        assert_eq!(member.client_host, "/127.0.0.1");
        // Another protocol type: bytes only; bytes that do not decode: none.
        let other = described("g".into(), summary(GroupState::Stable, "connect", bytes));
        assert_eq!(other.members[0].assignment, None);
        let garbage = described(
            "g".into(),
            summary(
                GroupState::Stable,
                "consumer",
                Bytes::from_static(b"\xff\xff"),
            ),
        );
        assert_eq!(garbage.members[0].assignment, None);
    }

    #[test]
    fn unknown_state_names_are_refused() {
        let state = crate::server::control_tests::broker(&tempfile::tempdir().unwrap());
        let refused = list_groups(
            &state,
            ListGroupsRequest {
                states_filter: vec!["stable".into(), "Sleeping".into()],
            },
        )
        .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument);
        assert!(refused.message().contains("\"Sleeping\""));
        let listed = list_groups(
            &state,
            ListGroupsRequest {
                states_filter: vec!["stable".into(), "EMPTY".into()],
            },
        )
        .unwrap();
        assert_eq!(listed.error_code, ErrorCode::None as i32);
        assert!(listed.groups.is_empty());
    }
}
