//! `tributary.v1.GroupCoordinator` membership RPCs: JoinGroup, SyncGroup, Heartbeat and
//! LeaveGroup. Checks the request's shape (INVALID_ARGUMENT), hands it to [`crate::group`] and
//! turns the outcome into the response (a refusal is an error code, never a gRPC status).

use std::sync::Arc;

use tonic::Status;
use tributary_proto::v1::{
    ErrorCode, HeartbeatRequest, HeartbeatResponse, JoinGroupMember, JoinGroupRequest,
    JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, SyncGroupRequest, SyncGroupResponse,
};

use super::errors::{error_chain, group_error_code, invalid_argument};
use crate::group::{self, GroupError, JoinRequest};
use crate::state::BrokerState;

/// The code and message of an outcome.
fn code_of(result: &Result<impl Sized, GroupError>) -> (i32, String) {
    match result {
        Ok(_) => (ErrorCode::None as i32, String::new()),
        Err(error) => (group_error_code(error) as i32, error_chain(error)),
    }
}

/// The address a request came from as Kafka records a member's `client_host`
/// (`InetAddress.toString()`: `/127.0.0.1`); empty when the transport does not say.
pub fn client_host<T>(request: &tonic::Request<T>) -> String {
    request
        .remote_addr()
        .map(|address| format!("/{}", address.ip()))
        .unwrap_or_default()
}

/// Handles JoinGroup from `client_host` (see [`client_host`]).
pub async fn join_group(
    state: &Arc<BrokerState>,
    request: JoinGroupRequest,
    client_host: String,
) -> Result<JoinGroupResponse, Status> {
    if request.rebalance_timeout_ms <= 0 {
        return Err(invalid_argument(format!(
            "JoinGroup: rebalance_timeout_ms must be positive, got {}",
            request.rebalance_timeout_ms
        )));
    }
    if let Some(name) = request
        .protocols
        .iter()
        .map(|p| p.name.as_str())
        .find(|name| name.is_empty())
    {
        return Err(invalid_argument(format!(
            "JoinGroup: protocol name {name:?} is empty"
        )));
    }
    let join = JoinRequest {
        member_id: request.member_id,
        group_instance_id: request.group_instance_id,
        client_id: request.client_id,
        client_host,
        session_timeout_ms: request.session_timeout_ms,
        rebalance_timeout_ms: request.rebalance_timeout_ms,
        protocol_type: request.protocol_type,
        protocols: request
            .protocols
            .into_iter()
            .map(|p| (p.name, p.metadata))
            .collect(),
    };
    let asked_id = join.member_id.clone();
    let result = group::join_group(state, &request.group_id, join).await;
    let (error_code, error_message) = code_of(&result);
    Ok(match result {
        Ok(joined) => JoinGroupResponse {
            error_code,
            error_message,
            generation_id: joined.generation,
            protocol_type: joined.protocol_type,
            protocol_name: joined.protocol,
            leader: joined.leader,
            member_id: joined.member_id,
            members: joined
                .members
                .into_iter()
                .map(|(member_id, metadata)| JoinGroupMember {
                    member_id,
                    metadata,
                })
                .collect(),
        },
        Err(error) => JoinGroupResponse {
            error_code,
            error_message,
            generation_id: -1,
            protocol_type: String::new(),
            protocol_name: String::new(),
            leader: String::new(),
            member_id: match error {
                GroupError::MemberIdRequired { member_id, .. } => member_id,
                _ => asked_id,
            },
            members: Vec::new(),
        },
    })
}

/// Handles SyncGroup.
pub async fn sync_group(
    state: &Arc<BrokerState>,
    request: SyncGroupRequest,
) -> Result<SyncGroupResponse, Status> {
    let mut seen = std::collections::HashSet::new();
    if let Some(twice) = request
        .assignments
        .iter()
        .find(|a| !seen.insert(a.member_id.as_str()))
    {
        return Err(invalid_argument(format!(
            "SyncGroup: member {:?} is assigned twice",
            twice.member_id
        )));
    }
    let assignments = request
        .assignments
        .into_iter()
        .map(|a| (a.member_id, a.assignment))
        .collect();
    let result = group::sync_group(
        state,
        &request.group_id,
        &request.member_id,
        request.generation_id,
        assignments,
    )
    .await;
    let (error_code, error_message) = code_of(&result);
    Ok(SyncGroupResponse {
        error_code,
        error_message,
        assignment: result.unwrap_or_default(),
    })
}

/// Handles Heartbeat.
pub fn heartbeat(state: &BrokerState, request: HeartbeatRequest) -> HeartbeatResponse {
    let result = group::heartbeat(
        state,
        &request.group_id,
        &request.member_id,
        request.generation_id,
    );
    let (error_code, error_message) = code_of(&result);
    HeartbeatResponse {
        error_code,
        error_message,
    }
}

/// Handles LeaveGroup.
pub fn leave_group(state: &Arc<BrokerState>, request: LeaveGroupRequest) -> LeaveGroupResponse {
    let result = group::leave_group(state, &request.group_id, &request.member_id);
    let (error_code, error_message) = code_of(&result);
    LeaveGroupResponse {
        error_code,
        error_message,
    }
}
