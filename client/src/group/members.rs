//! The membership RPCs of a [`Group`]: JoinGroup, SyncGroup, Heartbeat, LeaveGroup, one call
//! each (routed to the coordinator and retried across coordinator moves like commits). The
//! consumer's rebalance loop ([`crate::Consumer::subscribe`]) is built on them; they are public
//! for clients that manage membership themselves.

use bytes::Bytes;
use tributary_proto::v1::{
    HeartbeatRequest, JoinGroupProtocol, JoinGroupRequest, LeaveGroupRequest, SyncGroupAssignment,
    SyncGroupRequest,
};

use super::Group;
use super::wire::group_error;
use crate::{ClientError, ErrorCode};

/// What a member asks for when it joins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRequest {
    /// Empty on the first join; then the id the coordinator gave.
    pub member_id: String,
    /// The client's id (the prefix of the member id).
    pub client_id: String,
    /// Session timeout (ms).
    pub session_timeout_ms: i32,
    /// Rebalance timeout (ms).
    pub rebalance_timeout_ms: i32,
    /// The protocol type ("consumer").
    pub protocol_type: String,
    /// Protocols with the member's metadata, most preferred first.
    pub protocols: Vec<(String, Bytes)>,
}

/// A generation as JoinGroup announced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    /// The generation id.
    pub generation_id: i32,
    /// The chosen protocol.
    pub protocol: String,
    /// The leader's member id.
    pub leader: String,
    /// This member's id.
    pub member_id: String,
    /// Every member's metadata (for the leader only).
    pub members: Vec<(String, Bytes)>,
}

/// How a JoinGroup ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinOutcome {
    /// A new generation.
    Joined(Generation),
    /// MEMBER_ID_REQUIRED: join again with this id.
    MemberIdRequired(String),
}

impl Group {
    /// One JoinGroup: waits until the rebalance completes (up to the rebalance timeout).
    pub async fn join(&self, request: &JoinRequest) -> Result<JoinOutcome, ClientError> {
        let message = JoinGroupRequest {
            group_id: self.group_id.clone(),
            session_timeout_ms: request.session_timeout_ms,
            rebalance_timeout_ms: request.rebalance_timeout_ms,
            member_id: request.member_id.clone(),
            group_instance_id: String::new(),
            client_id: request.client_id.clone(),
            protocol_type: request.protocol_type.clone(),
            protocols: request
                .protocols
                .iter()
                .map(|(name, metadata)| JoinGroupProtocol {
                    name: name.clone(),
                    metadata: metadata.clone(),
                })
                .collect(),
        };
        let group = self.group_id.as_str();
        self.on_coordinator(|_, mut service| {
            let message = message.clone();
            async move {
                let response = service
                    .join_group(message)
                    .await
                    .map_err(ClientError::rpc("JoinGroup"))?
                    .into_inner();
                if ErrorCode::from_wire(response.error_code) == ErrorCode::MemberIdRequired {
                    return Ok(JoinOutcome::MemberIdRequired(response.member_id));
                }
                if let Some(error) =
                    group_error(group, response.error_code, &response.error_message)
                {
                    return Err(error);
                }
                Ok(JoinOutcome::Joined(Generation {
                    generation_id: response.generation_id,
                    protocol: response.protocol_name,
                    leader: response.leader,
                    member_id: response.member_id,
                    members: response
                        .members
                        .into_iter()
                        .map(|m| (m.member_id, m.metadata))
                        .collect(),
                }))
            }
        })
        .await
    }

    /// One SyncGroup: the leader passes every member's assignment, the others none; returns
    /// this member's assignment once the leader's is stored.
    pub async fn sync(
        &self,
        generation_id: i32,
        member_id: &str,
        assignments: &[(String, Bytes)],
    ) -> Result<Bytes, ClientError> {
        let message = SyncGroupRequest {
            group_id: self.group_id.clone(),
            generation_id,
            member_id: member_id.to_owned(),
            assignments: assignments
                .iter()
                .map(|(member_id, assignment)| SyncGroupAssignment {
                    member_id: member_id.clone(),
                    assignment: assignment.clone(),
                })
                .collect(),
        };
        let group = self.group_id.as_str();
        self.on_coordinator(|_, mut service| {
            let message = message.clone();
            async move {
                let response = service
                    .sync_group(message)
                    .await
                    .map_err(ClientError::rpc("SyncGroup"))?
                    .into_inner();
                match group_error(group, response.error_code, &response.error_message) {
                    Some(error) => Err(error),
                    None => Ok(response.assignment),
                }
            }
        })
        .await
    }

    /// One Heartbeat. REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION and UNKNOWN_MEMBER_ID come
    /// back as [`ClientError::Group`]: the member must join again.
    pub async fn heartbeat(&self, generation_id: i32, member_id: &str) -> Result<(), ClientError> {
        let message = HeartbeatRequest {
            group_id: self.group_id.clone(),
            generation_id,
            member_id: member_id.to_owned(),
        };
        let group = self.group_id.as_str();
        self.on_coordinator(|_, mut service| {
            let message = message.clone();
            async move {
                let response = service
                    .heartbeat(message)
                    .await
                    .map_err(ClientError::rpc("Heartbeat"))?
                    .into_inner();
                group_error(group, response.error_code, &response.error_message).map_or(Ok(()), Err)
            }
        })
        .await
    }

    /// One LeaveGroup.
    pub async fn leave(&self, member_id: &str) -> Result<(), ClientError> {
        let message = LeaveGroupRequest {
            group_id: self.group_id.clone(),
            member_id: member_id.to_owned(),
        };
        let group = self.group_id.as_str();
        self.on_coordinator(|_, mut service| {
            let message = message.clone();
            async move {
                let response = service
                    .leave_group(message)
                    .await
                    .map_err(ClientError::rpc("LeaveGroup"))?
                    .into_inner();
                group_error(group, response.error_code, &response.error_message).map_or(Ok(()), Err)
            }
        })
        .await
    }
}
