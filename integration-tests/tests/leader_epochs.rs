//! Leader epochs on the wire: every batch a leader appends carries its epoch, and
//! OffsetForLeaderEpoch tells a would-be follower where each epoch ends in the leader's log (the
//! truncation point of KIP-101), fenced by the requester's idea of the current epoch.

mod support;

use tributary_integration_tests::{Broker, ZooKeeper};
use tributary_proto::v1::{
    EpochEndOffset, ErrorCode, OffsetForLeaderEpochPartition, OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochTopic,
};

use support::cluster::{LIMIT, agreed_partitions, create, eventually, start_cluster};
use support::{batch, fetch_raw, raw_request, records, t0};

async fn epoch_end(broker: &Broker, topic: &str, current: i32, epoch: i32) -> EpochEndOffset {
    let mut client = broker.broker_client().unwrap();
    let response = client
        .offset_for_leader_epoch(OffsetForLeaderEpochRequest {
            replica_id: -1,
            topics: vec![OffsetForLeaderEpochTopic {
                topic: topic.into(),
                partitions: vec![OffsetForLeaderEpochPartition {
                    partition: 0,
                    current_leader_epoch: current,
                    leader_epoch: epoch,
                }],
            }],
        })
        .await
        .unwrap()
        .into_inner();
    response.topics[0].partitions[0].clone()
}

#[tokio::test]
async fn each_epoch_ends_where_the_next_leader_started_writing() {
    let zookeeper = ZooKeeper::start().unwrap();
    let mut brokers = start_cluster(&zookeeper, &[1, 2]).await;
    create(&brokers[0], "epochs", 1, 2).await;
    let all: Vec<&Broker> = brokers.iter().collect();
    agreed_partitions(&all, "epochs", 1, |p| p.leader == 1).await;

    // Epoch 0 on broker 1: three records, stamped with epoch 0, acknowledged once broker 2
    // has copied them (acks=-1), so they are committed and visible.
    let mut leader = brokers[0].broker_client().unwrap();
    let response = leader
        .produce(raw_request("epochs", 0, -1, batch(&records("a", 3, t0()))))
        .await
        .unwrap()
        .into_inner();
    let result = &response.topics[0].partitions[0];
    assert_eq!(result.error_code, 0, "{}", result.error_message);
    assert_eq!((result.base_offset, result.last_offset), (0, 2));
    let fetched = fetch_raw(&mut leader, "epochs", 0, 0).await;
    let header = tributary_record::BatchHeader::parse(&fetched.batches).unwrap();
    assert_eq!(
        header.partition_leader_epoch, 0,
        "the leader stamps its epoch"
    );

    let answer = epoch_end(&brokers[0], "epochs", 0, 0).await;
    assert_eq!(
        answer.error_code,
        ErrorCode::None as i32,
        "{}",
        answer.error_message
    );
    assert_eq!(
        (answer.leader_epoch, answer.end_offset),
        (0, 3),
        "the latest epoch ends at the log end"
    );
    // Fencing by the requester's current epoch, and only the leader answers.
    assert_eq!(
        epoch_end(&brokers[0], "epochs", 7, 0).await.error_code,
        ErrorCode::UnknownLeaderEpoch as i32
    );
    assert_eq!(
        epoch_end(&brokers[1], "epochs", 0, 0).await.error_code,
        ErrorCode::NotLeaderOrFollower as i32
    );
    // An epoch the leader has never seen (newer than its latest) is undefined.
    let unknown = epoch_end(&brokers[0], "epochs", -1, 5).await;
    assert_eq!((unknown.leader_epoch, unknown.end_offset), (-1, -1));

    // Broker 1 dies; broker 2 leads at epoch 1. It replicated the three epoch-0 records, so
    // epoch 1 starts at offset 3, and OffsetForLeaderEpoch(0) says epoch 0 ends there: a
    // returning broker 1 keeps its three records and truncates nothing.
    brokers[0].kill9().unwrap();
    let survivors: Vec<&Broker> = brokers.iter().filter(|b| b.id() == 2).collect();
    agreed_partitions(&survivors, "epochs", 1, |p| {
        p.leader == 2 && p.leader_epoch == 1
    })
    .await;
    let mut new_leader = brokers[1].broker_client().unwrap();
    let (base, _) = eventually("a produce at the new leader", LIMIT, || {
        let mut client = new_leader.clone();
        async move {
            let result =
                support::produce_raw(&mut client, "epochs", 0, batch(&records("b", 2, t0()))).await;
            (result.error_code == 0).then_some((result.base_offset, result.last_offset))
        }
    })
    .await;
    assert_eq!(base, 3);
    let fetched = fetch_raw(&mut new_leader, "epochs", 0, 3).await;
    let header = tributary_record::BatchHeader::parse(&fetched.batches).unwrap();
    assert_eq!(header.partition_leader_epoch, 1);

    let answer = epoch_end(&brokers[1], "epochs", 1, 0).await;
    assert_eq!(
        answer.error_code,
        ErrorCode::None as i32,
        "{}",
        answer.error_message
    );
    assert_eq!(
        (answer.leader_epoch, answer.end_offset),
        (0, 3),
        "epoch 0 ends where epoch 1 started on the new leader: {answer:?}"
    );
    let latest = epoch_end(&brokers[1], "epochs", 1, 1).await;
    assert_eq!((latest.leader_epoch, latest.end_offset), (1, 5));
    // A requester that missed the leader change is fenced.
    assert_eq!(
        epoch_end(&brokers[1], "epochs", 0, 0).await.error_code,
        ErrorCode::FencedLeaderEpoch as i32
    );
}
