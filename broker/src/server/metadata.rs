//! `Metadata` and the partition descriptions shared with `DescribeTopics`.

use tonic::Status;
use tributary_proto::v1::{
    BrokerInfo, ErrorCode, MetadataRequest, MetadataResponse, PartitionMetadata, TopicMetadata,
};

use crate::log::TopicPartition;
use crate::state::BrokerState;
use crate::topics::TopicDefinition;

/// Handles one Metadata request.
pub fn metadata(state: &BrokerState, request: MetadataRequest) -> Result<MetadataResponse, Status> {
    let store = state.topics.lock().expect("topic store lock");
    let names = store.requested_or_all(request.topics);
    let topics = names
        .into_iter()
        .map(|name| match store.get(&name) {
            Some(def) => TopicMetadata {
                partitions: partitions_of(state, &name, def),
                is_internal: name.starts_with("__"),
                topic: name,
                error_code: ErrorCode::None as i32,
                error_message: String::new(),
            },
            None => TopicMetadata {
                error_message: format!("topic {name:?} does not exist"),
                topic: name,
                error_code: ErrorCode::UnknownTopicOrPartition as i32,
                is_internal: false,
                partitions: Vec::new(),
            },
        })
        .collect();
    Ok(MetadataResponse {
        cluster_id: state.cluster_id.clone(),
        controller_id: state.controller.borrow().controller.map_or(-1, |id| id.0),
        brokers: vec![BrokerInfo {
            id: state.config.broker_id,
            host: state.advertised_host.clone(),
            port: i32::from(state.advertised_port),
            rack: state.config.rack.clone(),
        }],
        topics,
    })
}

/// Per-partition metadata of a topic hosted on this (single) broker.
pub fn partitions_of(
    state: &BrokerState,
    topic: &str,
    def: &TopicDefinition,
) -> Vec<PartitionMetadata> {
    let me = state.config.broker_id;
    (0..def.partitions)
        .map(|partition| {
            let hosted = state.replicas.get(&TopicPartition {
                topic: topic.to_owned(),
                partition,
            });
            match hosted {
                Some(p) => PartitionMetadata {
                    partition,
                    error_code: ErrorCode::None as i32,
                    leader: me,
                    leader_epoch: p.leader_epoch(),
                    replicas: vec![me],
                    isr: vec![me],
                    offline_replicas: Vec::new(),
                },
                None => PartitionMetadata {
                    partition,
                    error_code: ErrorCode::LeaderNotAvailable as i32,
                    leader: -1,
                    leader_epoch: -1,
                    replicas: vec![me],
                    isr: Vec::new(),
                    offline_replicas: vec![me],
                },
            }
        })
        .collect()
}
