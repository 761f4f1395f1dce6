//! `InitProducerId`: a new producer id (epoch 0) for an idempotent producer, from this
//! broker's block (see `producer_ids.rs`).

use tonic::Status;
use tributary_proto::v1::{ErrorCode, InitProducerIdRequest, InitProducerIdResponse};

use super::errors::{error_chain, invalid_argument};
use crate::state::BrokerState;

/// Handles one InitProducerId request.
pub async fn init_producer_id(
    state: &BrokerState,
    request: InitProducerIdRequest,
) -> Result<InitProducerIdResponse, Status> {
    if !request.transactional_id.is_empty() {
        return Err(invalid_argument(
            "transactional_id is set, but transactions are not supported",
        ));
    }
    Ok(match state.producer_ids.next_id(state.zk_client()).await {
        Ok(producer_id) => InitProducerIdResponse {
            error_code: ErrorCode::None.into(),
            error_message: String::new(),
            producer_id,
            producer_epoch: 0,
        },
        Err(error) => {
            tracing::warn!(error = %error_chain(&error), "InitProducerId failed");
            InitProducerIdResponse {
                error_code: ErrorCode::RequestTimedOut.into(),
                error_message: error_chain(&error),
                producer_id: -1,
                producer_epoch: -1,
            }
        }
    })
}
