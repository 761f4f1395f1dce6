//! `Metadata` and the partition descriptions shared with `DescribeTopics`, answered from the
//! metadata cache (what the controller last sent in UpdateMetadata), so every broker gives the
//! same answer.

use std::collections::BTreeMap;

use tonic::Status;
use tributary_proto::v1::{
    BrokerInfo, ErrorCode, MetadataRequest, MetadataResponse, PartitionMetadata, TopicMetadata,
};

use crate::metadata_cache::{CachedPartition, MetadataSnapshot};
use crate::state::BrokerState;

/// Handles one Metadata request.
pub fn metadata(state: &BrokerState, request: MetadataRequest) -> Result<MetadataResponse, Status> {
    let snapshot = state.metadata.snapshot();
    let topics = requested_or_all(&snapshot, request.topics)
        .into_iter()
        .map(|name| match snapshot.topics.get(&name) {
            Some(partitions) => TopicMetadata {
                partitions: partitions_of(partitions),
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
        brokers: with_self(state, brokers_of(&snapshot)),
        topics,
        controller_epoch: snapshot.controller_epoch,
    })
}

/// `requested`, or every cached topic when nothing is requested.
pub fn requested_or_all(snapshot: &MetadataSnapshot, requested: Vec<String>) -> Vec<String> {
    if requested.is_empty() {
        snapshot.topics.keys().cloned().collect()
    } else {
        requested
    }
}

/// The live brokers, by id.
pub fn brokers_of(snapshot: &MetadataSnapshot) -> Vec<BrokerInfo> {
    snapshot
        .brokers
        .iter()
        .map(|(&id, b)| BrokerInfo {
            id,
            host: b.host.clone(),
            port: i32::from(b.port),
            rack: b.rack.clone(),
            broker_epoch: b.epoch,
        })
        .collect()
}

/// `brokers` plus this broker if the cache does not list it yet (before the controller's first
/// UpdateMetadata arrives): a broker answering requests is live.
fn with_self(state: &BrokerState, mut brokers: Vec<BrokerInfo>) -> Vec<BrokerInfo> {
    if !brokers.iter().any(|b| b.id == state.broker_id()) {
        brokers.push(BrokerInfo {
            id: state.broker_id(),
            host: state.advertised_host.clone(),
            port: i32::from(state.advertised_port),
            rack: state.config.rack.clone(),
            broker_epoch: Some(state.broker_epoch().0),
        });
        brokers.sort_by_key(|b| b.id);
    }
    brokers
}

/// Per-partition metadata of a topic, in partition order.
pub fn partitions_of(partitions: &BTreeMap<i32, CachedPartition>) -> Vec<PartitionMetadata> {
    partitions
        .iter()
        .map(|(&partition, p)| PartitionMetadata {
            partition,
            error_code: if p.leader < 0 {
                ErrorCode::LeaderNotAvailable as i32
            } else {
                ErrorCode::None as i32
            },
            leader: p.leader,
            leader_epoch: p.leader_epoch,
            replicas: p.replicas.clone(),
            isr: p.isr.clone(),
            offline_replicas: p.offline_replicas.clone(),
        })
        .collect()
}
