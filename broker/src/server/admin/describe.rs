//! `DescribeTopics`: partitions from this broker's metadata cache (what the controller last
//! sent), config overrides from `/config/topics/<t>`.

use tonic::Status;
use tributary_controller::zk::admin::read_topic_config;
use tributary_proto::v1::{
    DescribeTopicsRequest, DescribeTopicsResponse, ErrorCode, TopicDescription,
};

use super::{session, zk_error};
use crate::server::errors::PartitionError;
use crate::server::metadata::{partitions_of, requested_or_all};
use crate::state::BrokerState;

/// Handles DescribeTopics (no topics named: every topic in the metadata cache).
pub async fn describe_topics(
    state: &BrokerState,
    request: DescribeTopicsRequest,
) -> Result<DescribeTopicsResponse, Status> {
    let snapshot = state.metadata.snapshot();
    let names = requested_or_all(&snapshot, request.topics);
    let mut topics = Vec::with_capacity(names.len());
    for name in names {
        let Some(partitions) = snapshot.topics.get(&name) else {
            topics.push(failed(
                name.clone(),
                PartitionError::new(
                    ErrorCode::UnknownTopicOrPartition,
                    format!("topic {name:?} does not exist"),
                ),
            ));
            continue;
        };
        let configs = match session(state) {
            Ok(client) => read_topic_config(&client, &name)
                .await
                .map_err(|e| zk_error(&e)),
            Err(error) => Err(error),
        };
        match configs {
            Ok(configs) => topics.push(TopicDescription {
                partitions: partitions_of(partitions),
                configs: configs.config.into_iter().collect(),
                name,
                error_code: ErrorCode::None as i32,
                error_message: String::new(),
            }),
            Err(error) => topics.push(failed(name, error)),
        }
    }
    Ok(DescribeTopicsResponse { topics })
}

fn failed(name: String, error: PartitionError) -> TopicDescription {
    TopicDescription {
        name,
        error_code: error.code as i32,
        error_message: error.message,
        partitions: Vec::new(),
        configs: Default::default(),
    }
}
