//! The Control service and the data path together, on a broker state without ZooKeeper:
//! LeaderAndIsr brings partitions online, fencing refuses stale requests, followers and other
//! brokers' partitions answer NOT_LEADER_OR_FOLLOWER, StopReplica deletes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use tokio::sync::watch;
use tributary_proto::v1::{
    BrokerInfo, ControlHeader, ControlledShutdownRequest, ErrorCode, FetchPartition, FetchRequest,
    LeaderAndIsrRequest, ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
    PartitionProduceData, PartitionState, ProduceRequest, Record, StopReplicaRequest,
    TopicFetchData, TopicPartitionRef, TopicProduceData, UpdateMetadataRequest,
};

use super::{control, control_forward, fetch, list_offsets, produce};
use crate::config::BrokerConfig;
use crate::controller_candidate::ControllerView;
use crate::log::{LogManager, TopicPartition};
use crate::metadata_cache::MetadataCache;
use crate::replica::{ReplicaManager, Role};
use crate::state::BrokerState;
use crate::topic_configs::TopicConfigs;

pub(crate) const ME: i32 = 1;
const BROKER_EPOCH: i64 = 100;

/// A broker state without ZooKeeper, broker id [`ME`], logs in `dir` (also used by the group
/// coordinator's tests).
pub(crate) fn broker(dir: &tempfile::TempDir) -> Arc<BrokerState> {
    broker_with(dir, &[])
}

/// [`broker`] with extra `server.properties` entries.
pub(crate) fn broker_with(dir: &tempfile::TempDir, overrides: &[(&str, &str)]) -> Arc<BrokerState> {
    let props: BTreeMap<String, String> = [
        ("broker.id", ME.to_string()),
        ("log.dirs", dir.path().display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .chain(
        overrides
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    )
    .collect();
    let config = BrokerConfig::from_properties(&props).unwrap();
    let logs = LogManager::open(&config.log_dirs, config.log_defaults.clone()).unwrap();
    Arc::new(BrokerState {
        cluster_id: "test".into(),
        advertised_host: "127.0.0.1".into(),
        advertised_port: 9092,
        fetchers: crate::replica::FetcherManager::new(
            tributary_zk_layout::BrokerId(ME),
            crate::replica::FetchSettings::default(),
        ),
        replicas: ReplicaManager::new(Arc::new(logs)),
        metadata: MetadataCache::new(),
        topic_configs: TopicConfigs::new(),
        zk: watch::channel(None).1,
        broker_epoch: Arc::new(AtomicI64::new(BROKER_EPOCH)),
        controller: watch::channel(ControllerView::UNKNOWN).1,
        producer_ids: crate::producer_ids::ProducerIdManager::new(tributary_zk_layout::BrokerId(
            ME,
        )),
        groups: crate::group::GroupCoordinator::new(config.groups.clone()),
        config,
    })
}

fn header(controller_epoch: i32, broker_epoch: i64) -> Option<ControlHeader> {
    Some(ControlHeader {
        controller_id: 2,
        controller_epoch,
        broker_epoch,
    })
}

fn partition_state(topic: &str, partition: i32, leader: i32, leader_epoch: i32) -> PartitionState {
    PartitionState {
        topic: topic.into(),
        partition,
        controller_epoch: 5,
        leader,
        leader_epoch,
        isr: vec![1, 2],
        zk_version: leader_epoch,
        replicas: vec![1, 2],
        offline_replicas: vec![],
        is_new: true,
    }
}

fn leader_and_isr(controller_epoch: i32, partitions: Vec<PartitionState>) -> LeaderAndIsrRequest {
    LeaderAndIsrRequest {
        header: header(controller_epoch, BROKER_EPOCH),
        partitions,
        live_leaders: vec![],
    }
}

async fn produce_one(
    state: &BrokerState,
    topic: &str,
    partition: i32,
    acks: i32,
) -> (ErrorCode, String) {
    let request = ProduceRequest {
        request_id: 1,
        acks,
        timeout_ms: 1000,
        topics: vec![TopicProduceData {
            topic: topic.into(),
            partitions: vec![PartitionProduceData {
                partition,
                batches: Default::default(),
                records: vec![Record {
                    value: Some(bytes::Bytes::from_static(b"v")),
                    ..Record::default()
                }],
            }],
        }],
    };
    let response = produce::produce(state, request).await.unwrap();
    let p = &response.topics[0].partitions[0];
    (
        ErrorCode::try_from(p.error_code).unwrap(),
        p.error_message.clone(),
    )
}

async fn fetch_one(state: &BrokerState, topic: &str, partition: i32, epoch: i32) -> ErrorCode {
    let request = FetchRequest {
        request_id: 1,
        replica_id: -1,
        max_wait_ms: 0,
        min_bytes: 0,
        max_bytes: 0,
        format: 0,
        topics: vec![TopicFetchData {
            topic: topic.into(),
            partitions: vec![FetchPartition {
                partition,
                fetch_offset: 0,
                partition_max_bytes: 0,
                current_leader_epoch: epoch,
                last_fetched_epoch: None,
            }],
        }],
    };
    let response = fetch::fetch(state, request).await.unwrap();
    ErrorCode::try_from(response.topics[0].partitions[0].error_code).unwrap()
}

/// A fetch by follower `replica` at `offset`: its acknowledgement of everything below.
async fn follower_fetch(
    state: &BrokerState,
    topic: &str,
    partition: i32,
    replica: i32,
    offset: i64,
    epoch: i32,
) -> ErrorCode {
    let request = FetchRequest {
        request_id: 1,
        replica_id: replica,
        max_wait_ms: 0,
        min_bytes: 0,
        max_bytes: 0,
        format: 0,
        topics: vec![TopicFetchData {
            topic: topic.into(),
            partitions: vec![FetchPartition {
                partition,
                fetch_offset: offset,
                partition_max_bytes: 0,
                current_leader_epoch: epoch,
                last_fetched_epoch: None,
            }],
        }],
    };
    let response = fetch::fetch(state, request).await.unwrap();
    ErrorCode::try_from(response.topics[0].partitions[0].error_code).unwrap()
}

#[tokio::test]
async fn acks_all_is_answered_when_the_follower_fetch_passes_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let state = broker(&dir);
    control::leader_and_isr(
        &state,
        leader_and_isr(5, vec![partition_state("t", 0, ME, 0)]),
    )
    .await
    .unwrap();
    let producing = {
        let state = state.clone();
        tokio::spawn(async move { produce_one(&state, "t", 0, -1).await })
    };
    let leader = state.replicas.get(&TopicPartition::new("t", 0)).unwrap();
    while leader.log().log_end_offset() == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    // The follower's fetch at 0 acknowledges nothing; at 1 it acknowledges the record.
    assert_eq!(
        follower_fetch(&state, "t", 0, 2, 0, 0).await,
        ErrorCode::None
    );
    assert_eq!(leader.high_watermark(), 0);
    assert!(!producing.is_finished());
    assert_eq!(
        follower_fetch(&state, "t", 0, 2, 1, 0).await,
        ErrorCode::None
    );
    assert_eq!(producing.await.unwrap().0, ErrorCode::None);
    assert_eq!(leader.high_watermark(), 1);
}

#[tokio::test]
async fn a_follower_that_catches_up_is_proposed_for_the_isr() {
    let dir = tempfile::tempdir().unwrap();
    let state = broker(&dir);
    let mut changes = state.replicas.take_isr_changes().unwrap();
    let mut entry = partition_state("t", 0, ME, 0);
    entry.isr = vec![ME];
    control::leader_and_isr(&state, leader_and_isr(5, vec![entry]))
        .await
        .unwrap();
    assert_eq!(produce_one(&state, "t", 0, 1).await.0, ErrorCode::None);
    let leader = state.replicas.get(&TopicPartition::new("t", 0)).unwrap();
    assert_eq!(
        leader.high_watermark(),
        1,
        "a lone ISR member commits at once"
    );
    // Behind the HW: not proposed.
    follower_fetch(&state, "t", 0, 2, 0, 0).await;
    assert!(changes.try_recv().is_err());
    // At the HW: proposed once, while the write is pending.
    follower_fetch(&state, "t", 0, 2, 1, 0).await;
    let change = changes.try_recv().unwrap();
    assert_eq!(
        change.update.isr,
        vec![
            tributary_zk_layout::BrokerId(ME),
            tributary_zk_layout::BrokerId(2)
        ]
    );
    follower_fetch(&state, "t", 0, 2, 1, 0).await;
    assert!(changes.try_recv().is_err());
    // The writer reports success: the leader adopts the ISR and its new version.
    leader.complete_isr_update(&change.update, Some(tributary_zk_layout::ZkVersion(7)));
    assert_eq!(leader.isr_size(), 2);
    assert_eq!(
        leader.leader_and_isr().zk_version,
        tributary_zk_layout::ZkVersion(7)
    );
}

fn list_latest(state: &BrokerState, topic: &str, partition: i32) -> ErrorCode {
    let request = ListOffsetsRequest {
        topics: vec![ListOffsetsTopic {
            topic: topic.into(),
            partitions: vec![ListOffsetsPartition {
                partition,
                timestamp: -1,
            }],
        }],
    };
    let response = list_offsets::list_offsets(state, request).unwrap();
    ErrorCode::try_from(response.topics[0].partitions[0].error_code).unwrap()
}

fn codes(results: &[tributary_proto::v1::ControlPartitionResult]) -> Vec<ErrorCode> {
    results
        .iter()
        .map(|r| ErrorCode::try_from(r.error_code).unwrap())
        .collect()
}

#[tokio::test]
async fn leader_and_isr_brings_partitions_online_in_their_roles() {
    let dir = tempfile::tempdir().unwrap();
    let state = broker(&dir);
    let response = control::leader_and_isr(
        &state,
        leader_and_isr(
            5,
            vec![
                partition_state("t", 0, ME, 0),
                partition_state("t", 1, 2, 0),
            ],
        ),
    )
    .await
    .unwrap();
    assert_eq!(response.error_code, ErrorCode::None as i32);
    assert_eq!(
        codes(&response.partitions),
        [ErrorCode::None, ErrorCode::None]
    );

    // acks=-1 waits for every ISR member: broker 2 never fetches, so the HW stays at 0 and
    // the produce times out (after 1 s); its fetch at offset 1 then commits the record.
    assert_eq!(
        produce_one(&state, "t", 0, -1).await.0,
        ErrorCode::RequestTimedOut
    );
    let leader = state.replicas.get(&TopicPartition::new("t", 0)).unwrap();
    assert_eq!(leader.high_watermark(), 0);
    assert_eq!(
        follower_fetch(&state, "t", 0, 2, 1, 0).await,
        ErrorCode::None
    );
    assert_eq!(leader.high_watermark(), 1);
    let (code, message) = produce_one(&state, "t", 1, 1).await;
    assert_eq!(code, ErrorCode::NotLeaderOrFollower);
    assert!(message.contains("broker 2"), "{message}");
    assert_eq!(
        fetch_one(&state, "t", 1, -1).await,
        ErrorCode::NotLeaderOrFollower
    );
    assert_eq!(list_latest(&state, "t", 1), ErrorCode::NotLeaderOrFollower);
    assert_eq!(fetch_one(&state, "t", 0, 0).await, ErrorCode::None);
    assert_eq!(list_latest(&state, "t", 0), ErrorCode::None);
    // The follower's fetch epoch checks come first, as in Kafka.
    assert_eq!(
        fetch_one(&state, "t", 1, 1).await,
        ErrorCode::UnknownLeaderEpoch
    );

    // min.insync.replicas=3 against an ISR of 2.
    state.topic_configs.set(
        "t",
        [("min.insync.replicas".to_owned(), "3".to_owned())].into(),
    );
    assert_eq!(
        produce_one(&state, "t", 0, -1).await.0,
        ErrorCode::NotEnoughReplicas
    );
    assert_eq!(produce_one(&state, "t", 0, 1).await.0, ErrorCode::None);

    // Leadership moves to broker 2 at leader epoch 1: old-epoch fetches are fenced.
    let response = control::leader_and_isr(
        &state,
        leader_and_isr(5, vec![partition_state("t", 0, 2, 1)]),
    )
    .await
    .unwrap();
    assert_eq!(codes(&response.partitions), [ErrorCode::None]);
    assert_eq!(
        produce_one(&state, "t", 0, 1).await.0,
        ErrorCode::NotLeaderOrFollower
    );
    assert_eq!(
        fetch_one(&state, "t", 0, 0).await,
        ErrorCode::FencedLeaderEpoch
    );
    assert_eq!(
        state
            .replicas
            .get(&TopicPartition::new("t", 0))
            .unwrap()
            .role(),
        Role::Follower
    );
}

#[tokio::test]
async fn stale_requests_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = broker(&dir);
    control::leader_and_isr(
        &state,
        leader_and_isr(5, vec![partition_state("t", 0, ME, 3)]),
    )
    .await
    .unwrap();

    // A deposed controller.
    let response = control::leader_and_isr(
        &state,
        leader_and_isr(4, vec![partition_state("t", 0, 2, 9)]),
    )
    .await
    .unwrap();
    assert_eq!(response.error_code, ErrorCode::StaleControllerEpoch as i32);
    assert!(response.partitions.is_empty());
    let stop = control::stop_replica(
        &state,
        StopReplicaRequest {
            header: header(4, BROKER_EPOCH),
            partitions: vec![TopicPartitionRef {
                topic: "t".into(),
                partition: 0,
            }],
            delete: true,
        },
    )
    .await
    .unwrap();
    assert_eq!(stop.error_code, ErrorCode::StaleControllerEpoch as i32);

    // Meant for an earlier registration of this broker; a newer one and -1 are accepted.
    let mut old_registration = leader_and_isr(5, vec![partition_state("t", 0, 2, 9)]);
    old_registration.header = header(5, BROKER_EPOCH - 1);
    let response = control::leader_and_isr(&state, old_registration)
        .await
        .unwrap();
    assert_eq!(response.error_code, ErrorCode::StaleBrokerEpoch as i32);
    let metadata = control::update_metadata(
        &state,
        UpdateMetadataRequest {
            header: header(6, -1),
            live_brokers: vec![],
            partitions: vec![],
            deleted: vec![],
        },
    )
    .await
    .unwrap();
    assert_eq!(metadata.error_code, ErrorCode::None as i32);

    // Same leader epoch again: that partition is refused, the others apply.
    let response = control::leader_and_isr(
        &state,
        leader_and_isr(
            6,
            vec![
                partition_state("t", 0, 2, 3),
                partition_state("t", 1, ME, 0),
            ],
        ),
    )
    .await
    .unwrap();
    assert_eq!(response.error_code, ErrorCode::None as i32);
    assert_eq!(
        codes(&response.partitions),
        [ErrorCode::StaleControllerEpoch, ErrorCode::None]
    );
    assert_eq!(
        produce_one(&state, "t", 0, 1).await.0,
        ErrorCode::None,
        "still leader"
    );

    // Not among the replicas.
    let mut foreign = partition_state("t", 2, 2, 0);
    foreign.replicas = vec![2, 3];
    let response = control::leader_and_isr(&state, leader_and_isr(6, vec![foreign]))
        .await
        .unwrap();
    assert_eq!(
        codes(&response.partitions),
        [ErrorCode::UnknownTopicOrPartition]
    );

    // No header at all.
    let mut headless = leader_and_isr(6, vec![]);
    headless.header = None;
    let status = control::leader_and_isr(&state, headless).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
}

#[tokio::test]
async fn partitions_elsewhere_are_redirected_and_stop_replica_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let state = broker(&dir);
    control::update_metadata(
        &state,
        UpdateMetadataRequest {
            header: header(5, BROKER_EPOCH),
            live_brokers: vec![BrokerInfo {
                id: 3,
                host: "b3".into(),
                port: 9092,
                rack: None,
                broker_epoch: Some(77),
            }],
            partitions: vec![partition_state("u", 0, 3, 0)],
            deleted: vec![],
        },
    )
    .await
    .unwrap();
    // Metadata answers with the controller epoch and the broker epochs the controller sent.
    let snapshot = state.metadata.snapshot();
    assert_eq!(snapshot.controller_epoch, 5);
    assert_eq!(snapshot.broker(3).and_then(|b| b.epoch), Some(77));
    let (code, message) = produce_one(&state, "u", 0, 1).await;
    assert_eq!(code, ErrorCode::NotLeaderOrFollower);
    assert!(message.contains("broker 3"), "{message}");
    assert_eq!(
        fetch_one(&state, "u", 0, -1).await,
        ErrorCode::NotLeaderOrFollower
    );
    assert_eq!(
        produce_one(&state, "nope", 0, 1).await.0,
        ErrorCode::UnknownTopicOrPartition
    );

    control::leader_and_isr(
        &state,
        leader_and_isr(5, vec![partition_state("t", 0, ME, 0)]),
    )
    .await
    .unwrap();
    state.topic_configs.set("t", BTreeMap::new());
    let tp_ref = TopicPartitionRef {
        topic: "t".into(),
        partition: 0,
    };
    let stop = |delete| StopReplicaRequest {
        header: header(5, BROKER_EPOCH),
        partitions: vec![tp_ref.clone()],
        delete,
    };
    let response = control::stop_replica(&state, stop(false)).await.unwrap();
    assert_eq!(codes(&response.partitions), [ErrorCode::None]);
    // A stopped replica answers like an unhosted one (this cache does not know "t").
    assert_eq!(
        produce_one(&state, "t", 0, 1).await.0,
        ErrorCode::UnknownTopicOrPartition
    );
    assert!(state.topic_configs.contains("t"));

    let response = control::stop_replica(&state, stop(true)).await.unwrap();
    assert_eq!(codes(&response.partitions), [ErrorCode::None]);
    assert!(state.replicas.get(&TopicPartition::new("t", 0)).is_none());
    assert!(!dir.path().join("t-0").exists());
    assert!(!state.topic_configs.contains("t"));
    // Deleting again succeeds: the controller may retry.
    let response = control::stop_replica(&state, stop(true)).await.unwrap();
    assert_eq!(codes(&response.partitions), [ErrorCode::None]);
}

#[tokio::test]
async fn requests_for_the_controller_need_a_running_controller() {
    let dir = tempfile::tempdir().unwrap();
    let state = broker(&dir);
    let response = control_forward::controlled_shutdown(
        &state,
        ControlledShutdownRequest {
            broker_id: 3,
            broker_epoch: 7,
        },
    )
    .await
    .unwrap();
    assert_eq!(response.error_code, ErrorCode::NotController as i32);
}

/// A follower fetch saying its last fetched epoch: the response's diverging epoch, if any, and
/// the partition's high watermark after it.
async fn follower_fetch_with_epoch(
    state: &BrokerState,
    offset: i64,
    last_fetched_epoch: i32,
) -> (Option<(i32, i64)>, usize) {
    let request = FetchRequest {
        request_id: 1,
        replica_id: 2,
        max_wait_ms: 500,
        min_bytes: 1,
        max_bytes: 0,
        format: 0,
        topics: vec![TopicFetchData {
            topic: "t".into(),
            partitions: vec![FetchPartition {
                partition: 0,
                fetch_offset: offset,
                partition_max_bytes: 0,
                current_leader_epoch: 1,
                last_fetched_epoch: Some(last_fetched_epoch),
            }],
        }],
    };
    let response = fetch::fetch(state, request).await.unwrap();
    let p = &response.topics[0].partitions[0];
    assert_eq!(p.error_code, ErrorCode::None as i32, "{}", p.error_message);
    (
        p.diverging_epoch.as_ref().map(|d| (d.epoch, d.end_offset)),
        p.batches.len(),
    )
}

#[tokio::test]
async fn a_follower_whose_log_diverges_gets_the_diverging_epoch_and_acknowledges_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = broker(&dir);
    let tp = TopicPartition::new("t", 0);
    // Epoch 0 writes offsets 0..2, epoch 1 (after a re-election) writes 2..3.
    control::leader_and_isr(
        &state,
        leader_and_isr(5, vec![partition_state("t", 0, ME, 0)]),
    )
    .await
    .unwrap();
    for _ in 0..2 {
        assert_eq!(produce_one(&state, "t", 0, 1).await.0, ErrorCode::None);
    }
    control::leader_and_isr(
        &state,
        leader_and_isr(5, vec![partition_state("t", 0, ME, 1)]),
    )
    .await
    .unwrap();
    assert_eq!(produce_one(&state, "t", 0, 1).await.0, ErrorCode::None);
    let leader = state.replicas.get(&tp).unwrap();
    let hw = leader.high_watermark();

    // A follower with epoch-0 records up to offset 3: the leader's epoch 0 ends at 2, so the
    // logs part there. It gets no records, at once (no long poll), and the HW stays.
    assert_eq!(
        follower_fetch_with_epoch(&state, 3, 0).await,
        (Some((0, 2)), 0)
    );
    assert_eq!(leader.high_watermark(), hw);
    // An epoch newer than any the leader has (7): undefined, as Kafka's epoch cache answers;
    // the follower falls back to OffsetForLeaderEpoch, which says the same.
    assert_eq!(
        follower_fetch_with_epoch(&state, 3, 7).await,
        (Some((-1, -1)), 0)
    );
    // Consistent logs: fetched as usual.
    assert_eq!(follower_fetch_with_epoch(&state, 2, 0).await.0, None);
    let (diverging, bytes) = follower_fetch_with_epoch(&state, 1, 0).await;
    assert_eq!(diverging, None);
    assert!(bytes > 0);
}
