//! Last replica standing, with three real brokers and ZooKeeper: the last in-sync replica dies
//! and comes back having lost part of its log, as after a power loss that dropped its page
//! cache (simulated by cutting its segment file while it is down). Classic Kafka would
//! re-elect it and the other replicas would truncate to it, losing records acknowledged with
//! `acks=all`. Tributary keeps the partition offline until every replica has described its
//! log, then elects the most advanced one; nothing acknowledged is lost.

mod support;

use tributary_integration_tests::{Broker, ZooKeeper};
use tributary_proto::v1::ErrorCode;
use tributary_zk_layout::BrokerId;

use support::cluster::{
    LIMIT, agreed_partitions, eventually, partition_state, segment_files, start_cluster_with,
    zk_client,
};
use support::replicas::{by_id, consume, create_replicated, identical_logs, produce};

#[tokio::test]
async fn an_unclean_last_isr_member_does_not_lead_until_every_replica_compared_logs() {
    let zookeeper = ZooKeeper::start().unwrap();
    let mut brokers = start_cluster_with(
        &zookeeper,
        &[1, 2, 3],
        &[("replica.lag.time.max.ms", "2000")],
    )
    .await;
    let client = zk_client(&zookeeper).await;
    create_replicated(&brokers[0], "standing", "2").await;
    let all: Vec<&Broker> = brokers.iter().collect();
    let placed = agreed_partitions(&all, "standing", 1, |p| p.leader >= 0 && p.isr.len() == 3)
        .await
        .remove(0);
    let last = placed.leader;
    let others: Vec<i32> = placed
        .replicas
        .iter()
        .copied()
        .filter(|&b| b != last)
        .collect();

    // 60 records acknowledged by all three replicas.
    for i in 0..20 {
        let result = produce(
            by_id(&brokers, last),
            "standing",
            -1,
            10_000,
            &format!("s{i}-"),
        )
        .await;
        assert_eq!(
            result.error_code,
            ErrorCode::None as i32,
            "{}",
            result.error_message
        );
    }
    let acknowledged = consume(by_id(&brokers, last), "standing").await;
    assert_eq!(acknowledged.len(), 60);
    identical_logs(&all, "standing").await;

    // The followers die: the ISR shrinks to the leader alone. Then the leader dies too, and
    // with it the whole cluster (as in a power loss), so its state stays "led by the last
    // ISR member" until a controller returns.
    let index_of = |id: i32, brokers: &[Broker]| brokers.iter().position(|b| b.id() == id).unwrap();
    for &id in &others {
        let i = index_of(id, &brokers);
        brokers[i].kill9().unwrap();
    }
    eventually("the ISR down to the leader", LIMIT, || async {
        let (state, _) = partition_state(&client, "standing", 0).await;
        (state.isr == vec![BrokerId(last)] && state.leader == BrokerId(last)).then_some(())
    })
    .await;
    let i_last = index_of(last, &brokers);
    brokers[i_last].kill9().unwrap();

    // While it is down, its page cache "loses" the second half of the log.
    let segments = segment_files(&brokers[i_last].data_dir(), "standing", 0);
    assert_eq!(segments.len(), 1, "{segments:?}");
    let full = std::fs::metadata(&segments[0]).unwrap().len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&segments[0])
        .unwrap();
    file.set_len(full / 2).unwrap();
    drop(file);

    // One follower and the damaged last ISR member return; the other follower is still down,
    // so the logs cannot all be compared: the partition stays offline and the controller
    // says why.
    let i_first_back = index_of(others[0], &brokers);
    brokers[i_first_back].restart().await.unwrap();
    brokers[i_last].restart().await.unwrap();
    eventually("the controller waiting for the missing replica", LIMIT, || async {
        brokers
            .iter()
            .any(|b| b.log_tail(4000).contains("partition stays offline: its last in-sync replica was recovered after an unclean shutdown"))
            .then_some(())
    })
    .await;
    let (state, _) = partition_state(&client, "standing", 0).await;
    assert_eq!(
        state.leader,
        BrokerId::NONE,
        "the damaged replica must not lead yet"
    );

    // The last replica returns: the most advanced log (a follower's) leads, and the damaged
    // replica catches up from it instead of the others truncating to it.
    let i_second_back = index_of(others[1], &brokers);
    brokers[i_second_back].restart().await.unwrap();
    let (leader, _) = eventually("a leader after comparing logs", LIMIT, || async {
        let (state, _) = partition_state(&client, "standing", 0).await;
        (state.leader != BrokerId::NONE).then_some((state.leader.0, state.isr))
    })
    .await;
    assert_ne!(leader, last, "the replica that lost records was elected");
    assert!(
        brokers.iter().any(|b| b
            .log_tail(4000)
            .contains("leader elected after comparing every replica's log")),
        "the controller did not log the comparison"
    );
    let all: Vec<&Broker> = brokers.iter().collect();
    agreed_partitions(&all, "standing", 1, |p| {
        p.leader == leader && p.isr.len() == 3
    })
    .await;
    assert_eq!(
        consume(by_id(&brokers, leader), "standing").await,
        acknowledged,
        "acknowledged records were lost or moved"
    );
    identical_logs(&all, "standing").await;
    // The marks are gone once the partition has a leader again.
    for broker in &brokers {
        let dir = segment_files(&broker.data_dir(), "standing", 0)[0]
            .parent()
            .unwrap()
            .to_path_buf();
        assert!(
            !dir.join("needs-verification").exists(),
            "broker {} still marks its replica as unverified",
            broker.id()
        );
    }
}
