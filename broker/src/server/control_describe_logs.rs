//! `Control.DescribeReplicaLogs`: the controller asks the replicas of a leaderless partition
//! what their logs hold before it elects one (see `docs/replication.md`, "Last replica
//! standing"). Read-only; fenced like the other controller requests so a deposed controller
//! learns nothing it could act on.

use std::sync::Arc;

use tonic::Status;
use tributary_proto::v1::{
    DescribeReplicaLogsRequest, DescribeReplicaLogsResponse, ErrorCode, ReplicaLogState,
};

use super::control::open_request;
use crate::log::TopicPartition;
use crate::state::BrokerState;

/// Describes each requested partition's log on this broker's disks.
pub async fn describe_replica_logs(
    state: &Arc<BrokerState>,
    request: DescribeReplicaLogsRequest,
) -> Result<DescribeReplicaLogsResponse, Status> {
    let listed = request
        .partitions
        .iter()
        .map(|p| (p.topic.as_str(), p.partition));
    let opened = match open_request(state, request.header, "DescribeReplicaLogs", listed).await? {
        Ok(opened) => opened,
        Err(refused) => {
            return Ok(DescribeReplicaLogsResponse {
                error_code: refused.code as i32,
                error_message: refused.message,
                partitions: Vec::new(),
            });
        }
    };
    let header = &opened.header;
    let partitions: Vec<ReplicaLogState> = request
        .partitions
        .iter()
        .map(|p| {
            let tp = TopicPartition::new(p.topic.clone(), p.partition);
            let described = state.replicas.describe_log(&tp);
            tracing::info!(
                topic_partition = %tp,
                controller_epoch = header.controller_epoch.0,
                log = ?described,
                "DescribeReplicaLogs: reporting this replica's log"
            );
            match described {
                Some(log) => ReplicaLogState {
                    topic: tp.topic,
                    partition: tp.partition,
                    has_log: true,
                    last_leader_epoch: log.last_leader_epoch.unwrap_or(-1),
                    log_end_offset: log.log_end_offset,
                    needs_verification: log.needs_verification,
                },
                None => ReplicaLogState {
                    topic: tp.topic,
                    partition: tp.partition,
                    has_log: false,
                    last_leader_epoch: -1,
                    log_end_offset: 0,
                    needs_verification: true,
                },
            }
        })
        .collect();
    Ok(DescribeReplicaLogsResponse {
        error_code: ErrorCode::None as i32,
        error_message: String::new(),
        partitions,
    })
}
