//! `tributary.v1.Control`, the broker's side of the control plane.
//!
//! From the controller: `LeaderAndIsr` (lead or follow partitions), `UpdateMetadata` (feed
//! the metadata cache) and `StopReplica` (stop serving, and delete for topic deletion). Each
//! is fenced by [`crate::control_fence`] under the replica manager's control lock, so control
//! requests apply one at a time and a deposed controller changes nothing. Every applied
//! request is logged at info level with the controller epoch.
//!
//! To the controller: `ControlledShutdown` and `ElectPreferredLeaders` arrive at whichever
//! broker is the controller and are passed to its running loop; any other broker answers
//! NOT_CONTROLLER (see [`super::control_forward`]).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use tonic::Status;
use tributary_proto::v1::{
    BrokerInfo, ControlHeader, ControlPartitionResult, ErrorCode, LeaderAndIsrRequest,
    LeaderAndIsrResponse, PartitionState, StopReplicaRequest, StopReplicaResponse,
    UpdateMetadataRequest, UpdateMetadataResponse,
};
use tributary_zk_layout::{BrokerEpoch, BrokerId, ControllerEpoch, LeaderEpoch, ZkVersion};

use super::errors::{PartitionError, error_chain, invalid_argument};
use crate::control_fence::{self, FenceError, RequestHeader};
use crate::log::TopicPartition;
use crate::metadata_cache::{CachedBroker, CachedPartition};
use crate::replica::{LeaderAndIsrState, Role, RoleError, role_for};
use crate::state::BrokerState;
use crate::topic_config_sync;

/// The code a fencing refusal is answered with.
fn fence_code(error: &FenceError) -> ErrorCode {
    match error {
        // Kafka answers a stale leader epoch with STALE_CONTROLLER_EPOCH too: the decision
        // comes from an older controller state.
        FenceError::StaleControllerEpoch { .. } | FenceError::StaleLeaderEpoch { .. } => {
            ErrorCode::StaleControllerEpoch
        }
        FenceError::StaleBrokerEpoch { .. } => ErrorCode::StaleBrokerEpoch,
    }
}

/// The header of a control request; a request without one is malformed.
fn header_of(header: Option<ControlHeader>, request: &str) -> Result<RequestHeader, Status> {
    let header = header.ok_or_else(|| invalid_argument(format!("{request}: header is missing")))?;
    Ok(RequestHeader {
        controller_id: BrokerId(header.controller_id),
        controller_epoch: ControllerEpoch(header.controller_epoch),
        broker_epoch: BrokerEpoch(header.broker_epoch),
    })
}

/// Refuses a request naming a partition without a topic, with a negative id, or twice.
pub(super) fn check_partitions<'a>(
    request: &str,
    partitions: impl IntoIterator<Item = (&'a str, i32)>,
) -> Result<(), Status> {
    let mut seen = HashSet::new();
    for (topic, partition) in partitions {
        if topic.is_empty() || partition < 0 {
            return Err(invalid_argument(format!(
                "{request}: invalid partition {topic:?} {partition}"
            )));
        }
        if !seen.insert((topic, partition)) {
            return Err(invalid_argument(format!(
                "{request}: topic {topic:?} partition {partition} appears more than once"
            )));
        }
    }
    Ok(())
}

/// Checks the header while holding the control lock (`highest`) and, if admitted, raises the
/// highest controller epoch seen.
fn admit(
    state: &BrokerState,
    highest: &mut Option<ControllerEpoch>,
    header: &RequestHeader,
    request: &str,
) -> Result<(), PartitionError> {
    let broker_epoch = state.broker_epoch();
    match control_fence::check_request(header, *highest, broker_epoch) {
        Ok(()) => {
            *highest = Some(control_fence::raise_highest(
                *highest,
                header.controller_epoch,
            ));
            Ok(())
        }
        Err(error) => {
            tracing::warn!(
                controller_id = header.controller_id.0,
                controller_epoch = header.controller_epoch.0,
                broker_epoch = header.broker_epoch.0,
                %error,
                "refused {request}"
            );
            Err(PartitionError::new(fence_code(&error), error.to_string()))
        }
    }
}

/// A control request past its opening: the sender, and the control lock, held until this
/// is dropped so the request applies alone.
pub(super) struct Opened<'a> {
    pub(super) header: RequestHeader,
    _lock: tokio::sync::MutexGuard<'a, Option<ControllerEpoch>>,
}

/// The opening every request from the controller shares: a missing header or a malformed
/// partition list is INVALID_ARGUMENT; then, under the control lock, the fence (`Ok(Err)`: a
/// refusal to answer with, nothing applied).
pub(super) async fn open_request<'a, 'p>(
    state: &'a BrokerState,
    header: Option<ControlHeader>,
    request: &str,
    partitions: impl IntoIterator<Item = (&'p str, i32)>,
) -> Result<Result<Opened<'a>, PartitionError>, Status> {
    let header = header_of(header, request)?;
    check_partitions(request, partitions)?;
    let mut highest = state.replicas.lock_controller_epoch().await;
    Ok(
        admit(state, &mut highest, &header, request).map(|()| Opened {
            header,
            _lock: highest,
        }),
    )
}

fn result(tp: &TopicPartition, outcome: Result<(), PartitionError>) -> ControlPartitionResult {
    let (error_code, error_message) = match outcome {
        Ok(()) => (ErrorCode::None, String::new()),
        Err(error) => (error.code, error.message),
    };
    ControlPartitionResult {
        topic: tp.topic.clone(),
        partition: tp.partition,
        error_code: error_code as i32,
        error_message,
    }
}

fn leader_and_isr_state(p: &PartitionState) -> LeaderAndIsrState {
    LeaderAndIsrState {
        controller_epoch: ControllerEpoch(p.controller_epoch),
        leader: BrokerId(p.leader),
        leader_epoch: LeaderEpoch(p.leader_epoch),
        isr: p.isr.iter().copied().map(BrokerId).collect(),
        replicas: p.replicas.iter().copied().map(BrokerId).collect(),
        zk_version: ZkVersion(p.zk_version),
    }
}

/// One partition of a LeaderAndIsr admitted by the fence, about to be applied.
struct Admitted {
    index: usize,
    tp: TopicPartition,
    role: Role,
    state: LeaderAndIsrState,
}

/// Handles LeaderAndIsr: become leader or follower of each partition.
pub async fn leader_and_isr(
    state: &Arc<BrokerState>,
    request: LeaderAndIsrRequest,
) -> Result<LeaderAndIsrResponse, Status> {
    let partitions = request
        .partitions
        .iter()
        .map(|p| (p.topic.as_str(), p.partition));
    let opened = match open_request(state, request.header, "LeaderAndIsr", partitions).await? {
        Ok(opened) => opened,
        Err(refused) => {
            return Ok(LeaderAndIsrResponse {
                error_code: refused.code as i32,
                error_message: refused.message,
                partitions: Vec::new(),
            });
        }
    };
    let header = &opened.header;

    // Where the leaders named in the request listen, for the follower fetchers.
    let leader_endpoints: BTreeMap<i32, String> = request
        .live_leaders
        .iter()
        .map(|b| (b.id, format!("{}:{}", b.host, b.port)))
        .collect();

    // Decide (pure) for every partition, then load topic configs and apply.
    let me = BrokerId(state.broker_id());
    let mut outcomes: Vec<(TopicPartition, Result<(), PartitionError>)> = Vec::new();
    let mut admitted = Vec::new();
    for (index, p) in request.partitions.iter().enumerate() {
        let tp = TopicPartition::new(p.topic.clone(), p.partition);
        let proposed = leader_and_isr_state(p);
        let current_epoch = state.replicas.leader_epoch(&tp);
        // The same epoch again is routine (a new controller re-sends every state it loaded);
        // only an older one means a stale decision.
        let repeated = current_epoch == Some(proposed.leader_epoch);
        let decision = control_fence::check_leader_epoch(&tp, proposed.leader_epoch, current_epoch)
            .map_err(|e| PartitionError::new(fence_code(&e), e.to_string()))
            .and_then(|()| role_for(me, &tp, &proposed).map_err(|e| role_error(&e)));
        let outcome = match decision {
            Ok(role) => {
                admitted.push(Admitted {
                    index,
                    tp: tp.clone(),
                    role,
                    state: proposed,
                });
                // Replaced by the outcome of applying it.
                Ok(())
            }
            Err(error) if repeated => {
                tracing::info!(
                    topic_partition = %tp,
                    controller_epoch = header.controller_epoch.0,
                    leader_epoch = proposed.leader_epoch.0,
                    "LeaderAndIsr: partition already at this leader epoch; left unchanged"
                );
                Err(error)
            }
            Err(error) => {
                tracing::warn!(
                    topic_partition = %tp,
                    controller_epoch = header.controller_epoch.0,
                    error = %error.message,
                    "LeaderAndIsr: partition refused"
                );
                Err(error)
            }
        };
        outcomes.push((tp, outcome));
    }

    let topics: BTreeSet<&str> = admitted.iter().map(|a| a.tp.topic.as_str()).collect();
    for topic in topics {
        if let Err(error) = topic_config_sync::ensure_loaded(state, topic).await {
            tracing::warn!(
                %topic, %error,
                "cannot load topic config overrides; the broker defaults apply until they are reloaded"
            );
        }
    }

    let applying = state.clone();
    let applied = tokio::task::spawn_blocking(move || {
        admitted
            .into_iter()
            .map(|a| {
                let config = applying.log_config_for(&a.tp.topic);
                let change = match a.role {
                    Role::Leader => applying
                        .replicas
                        .make_leader(&a.tp, a.state.clone(), config),
                    _ => applying
                        .replicas
                        .make_follower(&a.tp, a.state.clone(), config),
                };
                (a, change)
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| Status::internal(format!("LeaderAndIsr task failed: {e}")))?;

    let mut leaders = 0;
    let mut followers = 0;
    for (a, change) in applied {
        let outcome = match change {
            Ok(change) => {
                match a.role {
                    Role::Leader => {
                        leaders += 1;
                        state.fetchers.stop_following(&a.tp);
                    }
                    _ => {
                        followers += 1;
                        follow(state, &a, &leader_endpoints);
                    }
                }
                tracing::info!(
                    topic_partition = %a.tp,
                    role = ?a.role,
                    previous_role = ?change.from,
                    leader = a.state.leader.0,
                    leader_epoch = a.state.leader_epoch.0,
                    isr = ?a.state.isr,
                    zk_version = a.state.zk_version.0,
                    controller_epoch = header.controller_epoch.0,
                    "LeaderAndIsr applied"
                );
                Ok(())
            }
            Err(error) => {
                tracing::error!(topic_partition = %a.tp, error = %error_chain(&error), "LeaderAndIsr: cannot open the log");
                Err(PartitionError::new(
                    ErrorCode::KafkaStorageError,
                    format!("{}: cannot open the log: {}", a.tp, error_chain(&error)),
                ))
            }
        };
        outcomes[a.index].1 = outcome;
    }
    let refused = outcomes.iter().filter(|(_, o)| o.is_err()).count();
    tracing::info!(
        controller_id = header.controller_id.0,
        controller_epoch = header.controller_epoch.0,
        partitions = outcomes.len(),
        leaders,
        followers,
        refused,
        "applied LeaderAndIsr"
    );
    Ok(LeaderAndIsrResponse {
        error_code: ErrorCode::None as i32,
        error_message: String::new(),
        partitions: outcomes
            .iter()
            .map(|(tp, o)| result(tp, o.clone()))
            .collect(),
    })
}

/// Points the fetcher for `a` (now a follower) at its leader: the endpoint from the request's
/// live leaders, else from the metadata cache.
fn follow(state: &BrokerState, a: &Admitted, leader_endpoints: &BTreeMap<i32, String>) {
    let Some(partition) = state.replicas.get(&a.tp) else {
        return;
    };
    let leader = a.state.leader;
    let endpoint = leader_endpoints.get(&leader.0).cloned().or_else(|| {
        state.metadata.read(|snapshot| {
            snapshot
                .broker(leader.0)
                .map(|b| format!("{}:{}", b.host, b.port))
        })
    });
    state
        .fetchers
        .follow(partition, leader, endpoint, a.state.leader_epoch);
}

fn role_error(error: &RoleError) -> PartitionError {
    match error {
        RoleError::NotAReplica { .. } => {
            PartitionError::new(ErrorCode::UnknownTopicOrPartition, error.to_string())
        }
    }
}

fn cached_broker(info: &BrokerInfo) -> Result<(i32, CachedBroker), Status> {
    let port = u16::try_from(info.port).map_err(|_| {
        invalid_argument(format!(
            "UpdateMetadata: broker {} has invalid port {}",
            info.id, info.port
        ))
    })?;
    Ok((
        info.id,
        CachedBroker {
            host: info.host.clone(),
            port,
            rack: info.rack.clone(),
            epoch: info.broker_epoch,
        },
    ))
}

fn cached_partition(p: &PartitionState) -> (TopicPartition, CachedPartition) {
    (
        TopicPartition::new(p.topic.clone(), p.partition),
        CachedPartition {
            leader: p.leader,
            leader_epoch: p.leader_epoch,
            isr: p.isr.clone(),
            replicas: p.replicas.clone(),
            offline_replicas: p.offline_replicas.clone(),
            zk_version: p.zk_version,
        },
    )
}

/// Handles UpdateMetadata: replace the broker list, upsert and delete partition states in
/// the metadata cache.
pub async fn update_metadata(
    state: &BrokerState,
    request: UpdateMetadataRequest,
) -> Result<UpdateMetadataResponse, Status> {
    let brokers = request
        .live_brokers
        .iter()
        .map(cached_broker)
        .collect::<Result<BTreeMap<_, _>, _>>()?;
    check_partitions(
        "UpdateMetadata (deleted)",
        request
            .deleted
            .iter()
            .map(|p| (p.topic.as_str(), p.partition)),
    )?;
    let partitions: Vec<_> = request.partitions.iter().map(cached_partition).collect();
    let deleted: Vec<_> = request
        .deleted
        .iter()
        .map(|p| TopicPartition::new(p.topic.clone(), p.partition))
        .collect();

    let listed = request
        .partitions
        .iter()
        .map(|p| (p.topic.as_str(), p.partition));
    let opened = match open_request(state, request.header, "UpdateMetadata", listed).await? {
        Ok(opened) => opened,
        Err(refused) => {
            return Ok(UpdateMetadataResponse {
                error_code: refused.code as i32,
                error_message: refused.message,
            });
        }
    };
    let header = &opened.header;
    let (broker_count, partition_count) = (brokers.len(), partitions.len());
    state
        .metadata
        .set_controller_epoch(header.controller_epoch.0);
    state.metadata.apply(brokers, partitions, &deleted);
    // A topic being deleted stops taking writes and serving reads here at once; its data goes
    // with the StopReplica(delete) that follows.
    for tp in &deleted {
        state.fetchers.stop_following(tp);
        if let Err(error) = state.replicas.stop(tp, false) {
            tracing::warn!(topic_partition = %tp, %error, "could not stop a replica of a deleted topic");
        }
    }
    tracing::info!(
        controller_id = header.controller_id.0,
        controller_epoch = header.controller_epoch.0,
        live_brokers = broker_count,
        partitions = partition_count,
        deleted = deleted.len(),
        "applied UpdateMetadata"
    );
    Ok(UpdateMetadataResponse {
        error_code: ErrorCode::None as i32,
        error_message: String::new(),
    })
}

/// Handles StopReplica: stop serving each partition, and delete its data if asked. Topic
/// configs are forgotten once no partition of a deleted topic is hosted.
pub async fn stop_replica(
    state: &Arc<BrokerState>,
    request: StopReplicaRequest,
) -> Result<StopReplicaResponse, Status> {
    let listed = request
        .partitions
        .iter()
        .map(|p| (p.topic.as_str(), p.partition));
    let opened = match open_request(state, request.header, "StopReplica", listed).await? {
        Ok(opened) => opened,
        Err(refused) => {
            return Ok(StopReplicaResponse {
                error_code: refused.code as i32,
                error_message: refused.message,
                partitions: Vec::new(),
            });
        }
    };
    let header = &opened.header;
    let delete = request.delete;
    let partitions: Vec<TopicPartition> = request
        .partitions
        .iter()
        .map(|p| TopicPartition::new(p.topic.clone(), p.partition))
        .collect();
    for tp in &partitions {
        state.fetchers.stop_following(tp);
    }
    let stopping = state.clone();
    let outcomes = tokio::task::spawn_blocking(move || {
        let outcomes: Vec<_> = partitions
            .into_iter()
            .map(|tp| {
                let outcome = stopping.replicas.stop(&tp, delete);
                (tp, outcome)
            })
            .collect();
        if delete {
            let topics: BTreeSet<&str> = outcomes.iter().map(|(tp, _)| tp.topic.as_str()).collect();
            for topic in topics {
                if !stopping.replicas.hosts_topic(topic) {
                    stopping.topic_configs.remove(topic);
                }
            }
        }
        outcomes
    })
    .await
    .map_err(|e| Status::internal(format!("StopReplica task failed: {e}")))?;

    let mut results = Vec::with_capacity(outcomes.len());
    let mut failed = 0;
    for (tp, outcome) in outcomes {
        let outcome = outcome.map_err(|error| {
            failed += 1;
            tracing::error!(topic_partition = %tp, delete, error = %error_chain(&error), "StopReplica failed");
            PartitionError::new(
                ErrorCode::KafkaStorageError,
                format!("{tp}: {}", error_chain(&error)),
            )
        });
        if outcome.is_ok() {
            tracing::info!(
                topic_partition = %tp,
                delete,
                controller_epoch = header.controller_epoch.0,
                "StopReplica applied"
            );
        }
        results.push(result(&tp, outcome));
    }
    tracing::info!(
        controller_id = header.controller_id.0,
        controller_epoch = header.controller_epoch.0,
        partitions = results.len(),
        delete,
        failed,
        "applied StopReplica"
    );
    Ok(StopReplicaResponse {
        error_code: ErrorCode::None as i32,
        error_message: String::new(),
        partitions: results,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fencing_refusals_map_to_their_codes() {
        let tp = TopicPartition::new("t", 0);
        let table = [
            (
                FenceError::StaleControllerEpoch {
                    controller: BrokerId(1),
                    received: ControllerEpoch(1),
                    highest: ControllerEpoch(2),
                },
                ErrorCode::StaleControllerEpoch,
            ),
            (
                FenceError::StaleBrokerEpoch {
                    received: BrokerEpoch(1),
                    current: BrokerEpoch(2),
                },
                ErrorCode::StaleBrokerEpoch,
            ),
            (
                FenceError::StaleLeaderEpoch {
                    topic_partition: tp,
                    received: LeaderEpoch(1),
                    current: LeaderEpoch(1),
                },
                ErrorCode::StaleControllerEpoch,
            ),
        ];
        for (error, code) in table {
            assert_eq!(fence_code(&error), code, "{error}");
        }
    }

    #[test]
    fn a_missing_header_or_a_repeated_partition_is_invalid() {
        let missing = header_of(None, "StopReplica").unwrap_err();
        assert_eq!(missing.code(), tonic::Code::InvalidArgument);
        let repeated = check_partitions("StopReplica", [("t", 0), ("t", 0)]).unwrap_err();
        assert_eq!(repeated.code(), tonic::Code::InvalidArgument);
        assert!(check_partitions("StopReplica", [("", 0)]).is_err());
        assert!(check_partitions("StopReplica", [("t", -1)]).is_err());
        assert!(check_partitions("StopReplica", [("t", 0), ("t", 1), ("u", 0)]).is_ok());
    }
}
