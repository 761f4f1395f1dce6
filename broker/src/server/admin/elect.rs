//! `ElectLeaders` (preferred replica): run by the controller. On the controller broker the
//! request goes straight to the running controller loop (`ControllerView::handle`); on any
//! other broker it is forwarded to the controller's `Control.ElectPreferredLeaders`, found
//! through the controller id this broker knows and the controller's endpoint in the metadata
//! cache.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tonic::Status;
use tonic::transport::Endpoint;
use tributary_controller::cluster::TopicPartition;
use tributary_controller::handlers::preferred_leader::ElectLeaderError;
use tributary_controller::runtime::ControllerHandle;
use tributary_proto::v1::control_client::ControlClient;
use tributary_proto::v1::{
    ElectLeadersRequest, ElectLeadersResponse, ElectLeadersResult, ElectPreferredLeadersRequest,
    ErrorCode, TopicPartitionRef,
};

use crate::server::errors::{PartitionError, elect_leader_code};
use crate::state::BrokerState;

/// How long connecting to the controller may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the controller may take to run the elections (it writes every partition's state
/// znode and sends LeaderAndIsr).
const ELECTION_TIMEOUT: Duration = Duration::from_secs(30);

/// Handles ElectLeaders.
pub async fn elect_leaders(
    state: &BrokerState,
    request: ElectLeadersRequest,
) -> Result<ElectLeadersResponse, Status> {
    let view = state.controller.borrow().clone();
    let outcome = match (view.handle, view.controller) {
        (Some(handle), _) => elect_locally(&handle, request).await,
        (None, Some(controller)) if controller.0 == state.broker_id() => Err(PartitionError::new(
            ErrorCode::RequestTimedOut,
            "this broker was elected controller but its controller loop is not running yet; retry",
        )),
        (None, Some(controller)) => forward(state, controller.0, request).await,
        (None, None) => Err(PartitionError::new(
            ErrorCode::RequestTimedOut,
            "no controller is known at the moment; retry",
        )),
    };
    Ok(outcome.unwrap_or_else(|error| ElectLeadersResponse {
        error_code: error.code as i32,
        error_message: error.message,
        partitions: Vec::new(),
    }))
}

async fn elect_locally(
    handle: &ControllerHandle,
    request: ElectLeadersRequest,
) -> Result<ElectLeadersResponse, PartitionError> {
    let partitions: BTreeSet<TopicPartition> = request
        .partitions
        .into_iter()
        .map(|p| TopicPartition::new(p.topic, p.partition))
        .collect();
    let outcomes = handle.elect_preferred(partitions).await.map_err(|error| {
        PartitionError::new(ErrorCode::NotController, format!("{error}; retry"))
    })?;
    Ok(ElectLeadersResponse {
        error_code: ErrorCode::None as i32,
        error_message: String::new(),
        partitions: local_results(outcomes),
    })
}

/// The controller loop's answer as per-partition results.
fn local_results(
    outcomes: BTreeMap<TopicPartition, Result<(), ElectLeaderError>>,
) -> Vec<ElectLeadersResult> {
    outcomes
        .into_iter()
        .map(|(tp, outcome)| {
            let (code, message) = match outcome {
                Ok(()) => (ErrorCode::None, String::new()),
                Err(error) => (
                    elect_leader_code(&error),
                    crate::server::errors::error_chain(&error),
                ),
            };
            ElectLeadersResult {
                topic: tp.topic,
                partition: tp.partition.0,
                error_code: code as i32,
                error_message: message,
            }
        })
        .collect()
}

async fn forward(
    state: &BrokerState,
    controller: i32,
    request: ElectLeadersRequest,
) -> Result<ElectLeadersResponse, PartitionError> {
    let Some(broker) = state.metadata.read(|s| s.broker(controller).cloned()) else {
        return Err(PartitionError::new(
            ErrorCode::RequestTimedOut,
            format!(
                "the controller (broker {controller}) is not in this broker's metadata yet; retry"
            ),
        ));
    };
    let address = format!("http://{}:{}", broker.host, broker.port);
    let unreachable = |what: String| {
        PartitionError::new(
            ErrorCode::RequestTimedOut,
            format!("cannot reach the controller (broker {controller} at {address}): {what}"),
        )
    };
    let endpoint = Endpoint::from_shared(address.clone())
        .map_err(|e| unreachable(e.to_string()))?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(ELECTION_TIMEOUT);
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| unreachable(crate::server::errors::error_chain(&e)))?;
    let forwarded = ElectPreferredLeadersRequest {
        partitions: request
            .partitions
            .into_iter()
            .map(|p| TopicPartitionRef {
                topic: p.topic,
                partition: p.partition,
            })
            .collect(),
    };
    let response = ControlClient::new(channel)
        .elect_preferred_leaders(forwarded)
        .await
        .map_err(|status| {
            let code = match status.code() {
                tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => {
                    ErrorCode::RequestTimedOut
                }
                _ => ErrorCode::UnknownServerError,
            };
            PartitionError::new(
                code,
                format!(
                    "the controller (broker {controller}) failed the election: {}",
                    status.message()
                ),
            )
        })?
        .into_inner();
    Ok(ElectLeadersResponse {
        error_code: response.error_code,
        error_message: response.error_message,
        partitions: response
            .partitions
            .into_iter()
            .map(|p| ElectLeadersResult {
                topic: p.topic,
                partition: p.partition,
                error_code: p.error_code,
                error_message: p.error_message,
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_results_are_in_partition_order_with_their_codes() {
        let tp = TopicPartition::new("t", 0);
        let results = local_results(BTreeMap::from([
            (TopicPartition::new("t", 1), Ok(())),
            (
                tp.clone(),
                Err(ElectLeaderError::UnknownTopicOrPartition { partition: tp }),
            ),
        ]));
        assert_eq!(results[0].partition, 0);
        assert_eq!(
            results[0].error_code,
            ErrorCode::UnknownTopicOrPartition as i32
        );
        assert_eq!(results[1].error_code, ErrorCode::None as i32);
    }
}
