//! `ControlledShutdown` and `ElectPreferredLeaders`: requests for the controller. The broker
//! that is the controller passes them to its running loop through the
//! [`ControllerHandle`](tributary_controller::runtime::ControllerHandle); any other broker (or
//! one whose loop has stopped) answers NOT_CONTROLLER, naming the controller when it knows it.

use std::collections::BTreeSet;

use tonic::Status;
use tributary_controller::cluster::TopicPartition as ControllerTopicPartition;
use tributary_controller::handlers::controlled_shutdown::ControlledShutdownError;
use tributary_controller::runtime::{ControllerHandle, HandleError};
use tributary_proto::v1::{
    ControlPartitionResult, ControlledShutdownRequest, ControlledShutdownResponse,
    ElectPreferredLeadersRequest, ElectPreferredLeadersResponse, ErrorCode, TopicPartitionRef,
};
use tributary_zk_layout::{BrokerEpoch, BrokerId, PartitionId};

use super::errors::{elect_leader_code, error_chain, invalid_argument};
use crate::state::BrokerState;

/// The code a refused controlled shutdown is answered with.
fn controlled_shutdown_code(error: &ControlledShutdownError) -> ErrorCode {
    match error {
        ControlledShutdownError::BrokerNotRegistered { .. } => ErrorCode::BrokerNotAvailable,
        ControlledShutdownError::StaleBrokerEpoch { .. } => ErrorCode::StaleBrokerEpoch,
    }
}

/// The running controller loop's handle if this broker is the controller, otherwise the
/// NOT_CONTROLLER message. The handle is cloned out so no borrow of the watch channel is held
/// across an await.
fn controller_handle(state: &BrokerState) -> Result<ControllerHandle, String> {
    let view = state.controller.borrow();
    match (&view.handle, view.controller) {
        (Some(handle), _) => Ok(handle.clone()),
        (None, Some(controller)) if controller != BrokerId(state.broker_id()) => Err(format!(
            "broker {} is not the controller; the controller is broker {controller}",
            state.broker_id()
        )),
        (None, _) => Err(format!(
            "broker {} is not the controller and no running controller is known",
            state.broker_id()
        )),
    }
}

fn not_controller(message: String) -> (ErrorCode, String) {
    (ErrorCode::NotController, message)
}

fn topic_partition_ref(tp: &ControllerTopicPartition) -> TopicPartitionRef {
    TopicPartitionRef {
        topic: tp.topic.clone(),
        partition: tp.partition.0,
    }
}

/// Handles ControlledShutdown (on the controller).
pub async fn controlled_shutdown(
    state: &BrokerState,
    request: ControlledShutdownRequest,
) -> Result<ControlledShutdownResponse, Status> {
    let broker = BrokerId(request.broker_id);
    let broker_epoch = BrokerEpoch(request.broker_epoch);
    let outcome = match controller_handle(state) {
        Err(message) => Err(not_controller(message)),
        Ok(handle) => match handle.controlled_shutdown(broker, broker_epoch).await {
            Ok(Ok(remaining)) => Ok(remaining),
            Ok(Err(error)) => Err((controlled_shutdown_code(&error), error.to_string())),
            Err(error @ HandleError::NotController) => Err(not_controller(error.to_string())),
        },
    };
    Ok(match outcome {
        Ok(remaining) => {
            tracing::info!(
                broker = broker.0,
                broker_epoch = broker_epoch.0,
                still_leading = remaining.len(),
                "controlled shutdown step done"
            );
            ControlledShutdownResponse {
                error_code: ErrorCode::None as i32,
                error_message: String::new(),
                remaining: remaining.iter().map(topic_partition_ref).collect(),
            }
        }
        Err((code, message)) => {
            tracing::info!(broker = broker.0, broker_epoch = broker_epoch.0, ?code, %message, "controlled shutdown refused");
            ControlledShutdownResponse {
                error_code: code as i32,
                error_message: message,
                remaining: Vec::new(),
            }
        }
    })
}

/// Handles ElectPreferredLeaders (on the controller). An empty request means every partition.
pub async fn elect_preferred_leaders(
    state: &BrokerState,
    request: ElectPreferredLeadersRequest,
) -> Result<ElectPreferredLeadersResponse, Status> {
    let mut partitions = BTreeSet::new();
    for p in &request.partitions {
        if p.topic.is_empty() || p.partition < 0 {
            return Err(invalid_argument(format!(
                "ElectPreferredLeaders: invalid partition {:?} {}",
                p.topic, p.partition
            )));
        }
        partitions.insert(ControllerTopicPartition::new(
            p.topic.clone(),
            PartitionId(p.partition),
        ));
    }
    let refused = |message: String| ElectPreferredLeadersResponse {
        error_code: ErrorCode::NotController as i32,
        error_message: message,
        partitions: Vec::new(),
    };
    let handle = match controller_handle(state) {
        Ok(handle) => handle,
        Err(message) => return Ok(refused(message)),
    };
    let results = match handle.elect_preferred(partitions).await {
        Ok(results) => results,
        Err(error @ HandleError::NotController) => return Ok(refused(error.to_string())),
    };
    let elected = results.values().filter(|r| r.is_ok()).count();
    tracing::info!(
        partitions = results.len(),
        elected,
        "preferred leader election done"
    );
    let partitions = results
        .into_iter()
        .map(|(tp, outcome)| {
            let (code, message) = match outcome {
                Ok(()) => (ErrorCode::None, String::new()),
                Err(error) => (elect_leader_code(&error), error_chain(&error)),
            };
            ControlPartitionResult {
                topic: tp.topic,
                partition: tp.partition.0,
                error_code: code as i32,
                error_message: message,
            }
        })
        .collect();
    Ok(ElectPreferredLeadersResponse {
        error_code: ErrorCode::None as i32,
        error_message: String::new(),
        partitions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controlled_shutdown_refusals_map_to_their_codes() {
        assert_eq!(
            controlled_shutdown_code(&ControlledShutdownError::BrokerNotRegistered {
                broker: BrokerId(3)
            }),
            ErrorCode::BrokerNotAvailable
        );
        assert_eq!(
            controlled_shutdown_code(&ControlledShutdownError::StaleBrokerEpoch {
                broker: BrokerId(3),
                requested: BrokerEpoch(1),
                registered: BrokerEpoch(2),
            }),
            ErrorCode::StaleBrokerEpoch
        );
    }
}
