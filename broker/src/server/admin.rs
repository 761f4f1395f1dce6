//! `CreateTopics`, `DeleteTopics`, `DescribeTopics`: being moved to ZooKeeper.

use tonic::Status;
use tributary_proto::v1::{
    CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
    DescribeTopicsRequest, DescribeTopicsResponse,
};

use crate::state::BrokerState;

/// Most partitions one topic may have (a guard against typos such as 1000000).
pub const MAX_PARTITIONS: i32 = 10_000;

/// Handles CreateTopics.
pub fn create_topics(
    _state: &BrokerState,
    _request: CreateTopicsRequest,
) -> Result<CreateTopicsResponse, Status> {
    Err(Status::unimplemented("being moved to ZooKeeper"))
}

/// Handles DeleteTopics.
pub fn delete_topics(
    _state: &BrokerState,
    _request: DeleteTopicsRequest,
) -> Result<DeleteTopicsResponse, Status> {
    Err(Status::unimplemented("being moved to ZooKeeper"))
}

/// Handles DescribeTopics.
pub fn describe_topics(
    _state: &BrokerState,
    _request: DescribeTopicsRequest,
) -> Result<DescribeTopicsResponse, Status> {
    Err(Status::unimplemented("being moved to ZooKeeper"))
}
