//! Consumer groups' committed offsets (`__consumer_offsets`, FindCoordinator, OffsetCommit,
//! OffsetFetch) on real brokers: the first FindCoordinator creates the topic as Kafka does,
//! commits survive the coordinator's `kill -9` and a restart of every broker, and bad commits
//! are refused without changing anything.

mod support;

use std::time::Duration;

use support::cluster::{LIMIT, create, eventually, start_cluster, start_cluster_with, zk_client};
use support::latest;
use tributary_client::{
    Client, ClientError, CommittedOffset, ErrorCode, GroupOffset, TopicPartition,
};
use tributary_integration_tests::{Broker, ZooKeeper};
use tributary_proto::v1::group_coordinator_client::GroupCoordinatorClient;
use tributary_proto::v1::{
    FindCoordinatorRequest, OffsetCommitPartition, OffsetCommitRequest, OffsetCommitTopic,
    OffsetFetchRequest,
};
use tributary_zk_layout::payloads::{EntityConfig, Payload, TopicAssignment};

const OFFSETS_TOPIC: &str = "__consumer_offsets";

fn offset(topic: &str, partition: i32, offset: i64, metadata: &str) -> GroupOffset {
    GroupOffset {
        leader_epoch: Some(0),
        metadata: metadata.into(),
        ..GroupOffset::new(topic, partition, offset)
    }
}

fn committed(offsets: &[GroupOffset]) -> Vec<(TopicPartition, CommittedOffset)> {
    offsets
        .iter()
        .map(|o| {
            (
                TopicPartition::new(o.topic.clone(), o.partition),
                CommittedOffset {
                    offset: o.offset,
                    leader_epoch: o.leader_epoch,
                    metadata: o.metadata.clone(),
                },
            )
        })
        .collect()
}

/// A client bootstrapped through `broker`, retrying group requests for up to 60 s (a killed
/// coordinator is replaced only after its 3 s ZooKeeper session expires and the controller,
/// possibly itself re-elected, moves 50 partitions).
async fn client_via(broker: &Broker) -> Client {
    Client::connect(&broker.bootstrap_server())
        .await
        .expect("connect")
        .with_retry_timeout(Duration::from_secs(60))
}

fn coordinator_service(broker: &Broker) -> GroupCoordinatorClient<tonic::transport::Channel> {
    GroupCoordinatorClient::new(broker.channel().expect("channel"))
}

/// The topic's assignment and configuration overrides as stored in ZooKeeper.
async fn offsets_topic_in_zk(zookeeper: &ZooKeeper) -> (TopicAssignment, EntityConfig) {
    let zk = zk_client(zookeeper).await;
    let (data, _) = zk
        .get_data(&format!("/brokers/topics/{OFFSETS_TOPIC}"))
        .await
        .expect("the topic's assignment");
    let (config, _) = zk
        .get_data(&format!("/config/topics/{OFFSETS_TOPIC}"))
        .await
        .expect("the topic's config");
    (
        TopicAssignment::decode(&data).unwrap(),
        EntityConfig::decode(&config).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_survive_the_coordinators_death_and_a_full_restart() {
    let zookeeper = ZooKeeper::start().unwrap();
    let mut brokers = start_cluster(&zookeeper, &[1, 2, 3]).await;
    create(&brokers[0], "orders", 3, 3).await;

    // The first FindCoordinator creates __consumer_offsets with Kafka's defaults.
    let client = client_via(&brokers[0]).await;
    let group = client.group("billing").unwrap();
    let coordinator = group
        .find_coordinator()
        .await
        .expect("find the coordinator");
    // Utils.abs("billing".hashCode()) % 50 = abs(-109829509) % 50, as Kafka computes it.
    assert_eq!(coordinator.partition, 9);
    let (assignment, config) = offsets_topic_in_zk(&zookeeper).await;
    assert_eq!(assignment.partitions.len(), 50);
    assert!(
        assignment
            .partitions
            .values()
            .all(|replicas| replicas.len() == 3)
    );
    assert_eq!(config.config["cleanup.policy"], "compact");
    assert_eq!(config.config["segment.bytes"], "104857600");

    let first = [
        offset("orders", 0, 42, "after batch 7"),
        offset("orders", 1, 7, ""),
        offset("orders", 2, 1000, "{\"host\":\"worker-3\"}"),
    ];
    group.commit(&first).await.expect("commit");
    assert_eq!(group.committed_all().await.unwrap(), committed(&first));
    let asked = group
        .committed(&[
            TopicPartition::new("orders", 1),
            TopicPartition::new("orders", 9),
        ])
        .await
        .unwrap();
    assert_eq!(asked[0].1.as_ref().map(|c| c.offset), Some(7));
    assert_eq!(asked[1].1, None, "nothing committed for orders-9");

    // Another broker is not the coordinator.
    let other = brokers
        .iter()
        .find(|b| b.id() != coordinator.broker_id)
        .unwrap();
    let refused = coordinator_service(other)
        .offset_fetch(OffsetFetchRequest {
            group_id: "billing".into(),
            topics: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(refused.error_code, ErrorCode::NotCoordinator.wire_value());

    // kill -9 the coordinator: another replica leads the partition, loads it, and serves the
    // same offsets.
    let killed = coordinator.broker_id;
    let victim = brokers.iter_mut().find(|b| b.id() == killed).unwrap();
    victim.kill9().unwrap();
    let survivor = brokers.iter().find(|b| b.id() != killed).unwrap();
    let client = client_via(survivor).await;
    let group = client.group("billing").unwrap();
    let moved = eventually("a new coordinator", LIMIT * 2, || async {
        let found = group.find_coordinator().await.ok()?;
        (found.broker_id != killed).then_some(found)
    })
    .await;
    assert_eq!(moved.partition, 9);
    assert_eq!(group.committed_all().await.unwrap(), committed(&first));
    let second = [offset("orders", 1, 8, "after failover")];
    group
        .commit(&second)
        .await
        .expect("commit at the new coordinator");

    // Restart every broker on the same data: the offsets are read back from the log.
    for broker in brokers.iter_mut() {
        if broker.is_running() {
            broker.terminate().await.unwrap();
        }
    }
    for broker in brokers.iter_mut() {
        broker.restart().await.unwrap();
    }
    let client = client_via(&brokers[1]).await;
    let group = client.group("billing").unwrap();
    let expected = committed(&[first[0].clone(), second[0].clone(), first[2].clone()]);
    assert_eq!(group.committed_all().await.unwrap(), expected);
    let (assignment, _) = offsets_topic_in_zk(&zookeeper).await;
    assert_eq!(assignment.partitions.len(), 50, "created once");
}

fn raw_commit(
    group_id: &str,
    generation_id: i32,
    member_id: &str,
    partition: i32,
) -> OffsetCommitRequest {
    OffsetCommitRequest {
        group_id: group_id.into(),
        generation_id,
        member_id: member_id.into(),
        topics: vec![OffsetCommitTopic {
            topic: "orders".into(),
            partitions: vec![OffsetCommitPartition {
                partition,
                offset: 999,
                leader_epoch: -1,
                metadata: String::new(),
            }],
        }],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_commits_are_refused_and_change_nothing() {
    // Few offsets partitions keep start-up quick; the replication factor (3 by default) is
    // capped to the two live brokers.
    let zookeeper = ZooKeeper::start().unwrap();
    let brokers = start_cluster_with(
        &zookeeper,
        &[1, 2],
        &[("offsets.topic.num.partitions", "4")],
    )
    .await;
    create(&brokers[0], "orders", 2, 2).await;

    // An empty group id is refused before anything is created.
    let mut any = coordinator_service(&brokers[0]);
    let found = any
        .find_coordinator(FindCoordinatorRequest {
            group_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.error_code, ErrorCode::InvalidGroupId.wire_value());
    let client = client_via(&brokers[0]).await;
    let error = client.group("").unwrap().commit(&[]).await.unwrap_err();
    assert!(
        matches!(
            error,
            ClientError::Group {
                code: ErrorCode::InvalidGroupId,
                ..
            }
        ),
        "{error}"
    );

    let group = client.group("app").unwrap();
    let coordinator = group.find_coordinator().await.unwrap();
    let (assignment, _) = offsets_topic_in_zk(&zookeeper).await;
    assert_eq!(assignment.partitions.len(), 4);
    assert!(
        assignment
            .partitions
            .values()
            .all(|replicas| replicas.len() == 2)
    );
    let baseline = [offset("orders", 0, 10, "m"), offset("orders", 1, 20, "")];
    group.commit(&baseline).await.unwrap();

    let coordinator_broker = brokers
        .iter()
        .find(|b| b.id() == coordinator.broker_id)
        .unwrap();
    let mut data = coordinator_broker.broker_client().unwrap();
    let appended = latest(&mut data, OFFSETS_TOPIC, coordinator.partition).await;
    let mut service = coordinator_service(coordinator_broker);

    // A generation or member the group (Empty, no members) does not have. "never-committed"
    // has the same offsets partition as "app" (Java hash mod 4 = 1 for both).
    for (group_id, generation, member, code) in [
        ("app", 5, "", ErrorCode::UnknownMemberId),
        ("app", 0, "member-1", ErrorCode::UnknownMemberId),
        (
            "never-committed",
            3,
            "member-1",
            ErrorCode::IllegalGeneration,
        ),
    ] {
        let answer = service
            .offset_commit(raw_commit(group_id, generation, member, 0))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            answer.error_code,
            code.wire_value(),
            "{group_id} {generation} {member:?}"
        );
        assert_eq!(
            answer.topics[0].partitions[0].error_code,
            code.wire_value(),
            "repeated per partition"
        );
    }
    let stale = group
        .commit_as(2, "member-1", &[offset("orders", 0, 999, "")])
        .await
        .unwrap_err();
    assert_eq!(
        stale.error_code(),
        Some(ErrorCode::UnknownMemberId),
        "{stale}"
    );

    // Per-partition refusals: metadata too long, a partition that does not exist.
    let too_long = group
        .commit(&[offset("orders", 0, 999, &"x".repeat(4097))])
        .await
        .unwrap_err();
    assert!(
        matches!(
            too_long,
            ClientError::Broker {
                code: ErrorCode::OffsetMetadataTooLarge,
                partition: Some(0),
                ..
            }
        ),
        "{too_long}"
    );
    let unknown = group
        .commit(&[offset("orders", 7, 999, "")])
        .await
        .unwrap_err();
    assert_eq!(
        unknown.error_code(),
        Some(ErrorCode::UnknownTopicOrPartition)
    );

    // A malformed request is INVALID_ARGUMENT.
    let mut twice = raw_commit("app", -1, "", 0);
    twice.topics.push(twice.topics[0].clone());
    let status = service.offset_commit(twice).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);

    // Nothing changed: the same offsets, nothing appended to the group's partition, and the
    // group that was refused a generation does not exist.
    assert_eq!(group.committed_all().await.unwrap(), committed(&baseline));
    assert_eq!(
        latest(&mut data, OFFSETS_TOPIC, coordinator.partition).await,
        appended
    );
    let never = client.group("never-committed").unwrap();
    assert!(never.committed_all().await.unwrap().is_empty());
}
