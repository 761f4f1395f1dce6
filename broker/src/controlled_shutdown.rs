//! Controlled shutdown (`controlled.shutdown.enable`): before a stopping broker stops serving,
//! it asks the controller to move its leaderships to other in-sync replicas, so clients see a
//! leader change (and retry at the new leader) rather than a dead broker.
//!
//! The controller answers with the partitions the broker still leads (those with no other
//! in-sync replica to take over); the broker retries `controlled.shutdown.max.retries` times,
//! `controlled.shutdown.retry.backoff.ms` apart, then stops anyway, as Kafka does.

use std::time::Duration;

use tonic::transport::Endpoint;
use tributary_controller::runtime::ControllerHandle;
use tributary_proto::v1::control_client::ControlClient;
use tributary_proto::v1::{ControlledShutdownRequest, ErrorCode};
use tributary_zk_layout::BrokerId;

use crate::state::BrokerState;

/// How long one attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// Why one attempt did not finish the job.
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    #[error("no controller is known")]
    NoController,
    #[error("the controller's endpoint is not known")]
    UnknownEndpoint,
    #[error("the controller refused: {0}")]
    Refused(String),
    #[error("{0} partitions still led here")]
    Remaining(usize),
    #[error("request failed: {0}")]
    Rpc(#[from] tonic::Status),
    #[error("bad controller endpoint: {0}")]
    Endpoint(#[from] tonic::transport::Error),
    #[error("timed out")]
    Timeout,
}

/// Runs the controlled shutdown; logs and returns when done or out of attempts.
pub async fn run(state: &BrokerState) {
    let config = &state.config;
    if !config.controlled_shutdown_enable {
        return;
    }
    let attempts = config.controlled_shutdown_max_retries.max(1);
    for attempt in 1..=attempts {
        let outcome = tokio::time::timeout(ATTEMPT_TIMEOUT, attempt_once(state))
            .await
            .unwrap_or(Err(AttemptError::Timeout));
        match outcome {
            Ok(()) => {
                tracing::info!(
                    attempt,
                    "controlled shutdown done: this broker leads no replicated partition"
                );
                return;
            }
            Err(error) => {
                tracing::warn!(attempt, attempts, %error, "controlled shutdown not complete");
                if attempt < attempts {
                    tokio::time::sleep(Duration::from_millis(
                        config.controlled_shutdown_retry_backoff_ms,
                    ))
                    .await;
                }
            }
        }
    }
    tracing::warn!("stopping without a complete controlled shutdown");
}

async fn attempt_once(state: &BrokerState) -> Result<(), AttemptError> {
    let me = BrokerId(state.broker_id());
    let epoch = state.broker_epoch();
    let (controller, local): (Option<BrokerId>, Option<ControllerHandle>) = {
        let view = state.controller.borrow();
        (view.controller, view.handle.clone())
    };
    let controller = controller.ok_or(AttemptError::NoController)?;
    if let Some(handle) = local.filter(|_| controller == me) {
        let remaining = handle
            .controlled_shutdown(me, epoch)
            .await
            .map_err(|e| AttemptError::Refused(e.to_string()))?
            .map_err(|e| AttemptError::Refused(e.to_string()))?;
        return match remaining.len() {
            0 => Ok(()),
            n => Err(AttemptError::Remaining(n)),
        };
    }
    let endpoint = state
        .metadata
        .read(|s| s.broker(controller.0).cloned())
        .ok_or(AttemptError::UnknownEndpoint)?;
    let channel = Endpoint::from_shared(format!("http://{}:{}", endpoint.host, endpoint.port))?
        .connect()
        .await?;
    let response = ControlClient::new(channel)
        .controlled_shutdown(ControlledShutdownRequest {
            broker_id: me.0,
            broker_epoch: epoch.0,
        })
        .await?
        .into_inner();
    if response.error_code != ErrorCode::None as i32 {
        return Err(AttemptError::Refused(response.error_message));
    }
    match response.remaining.len() {
        0 => Ok(()),
        n => Err(AttemptError::Remaining(n)),
    }
}
