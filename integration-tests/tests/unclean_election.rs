//! Unclean leader election with replicated data, three real brokers and ZooKeeper. Two topics
//! live through the same failures: every replica but the leader dies, the leader takes
//! `acks=1` writes alone, then dies too, and an out-of-sync replica returns first.
//!
//! - `unclean.leader.election.enable=true`: the out-of-sync replica leads at once (the
//!   controller logs the unclean election); the records only the old leader had are lost, and
//!   the old leader truncates them by leader epoch when it returns, so all logs agree.
//! - `false` (the default): the partition waits; when the old leader returns, the logs are
//!   compared and it leads again with every record.

mod support;

use tributary_integration_tests::{Broker, ZooKeeper};
use tributary_proto::v1::ErrorCode;
use tributary_zk_layout::BrokerId;

use support::cluster::{
    LIMIT, agreed_partitions, eventually, partition_state, start_cluster_with, zk_client,
};
use support::replicas::{by_id, consume, identical_logs, produce};
use support::try_create_topic;

/// (offset, which write) of each record: the producer prefix of its value.
fn writes(records: &[(i64, Vec<u8>)]) -> Vec<(i64, String)> {
    records
        .iter()
        .map(|(offset, v)| {
            let value = String::from_utf8_lossy(v);
            let prefix = value.split("-value-").next().unwrap_or_default();
            (*offset, prefix.to_owned())
        })
        .collect()
}

fn expected(first: &str, second: &str) -> Vec<(i64, String)> {
    (0..6)
        .map(|o| (o, if o < 3 { first } else { second }.to_owned()))
        .collect()
}

#[tokio::test]
async fn unclean_election_trades_the_lone_leaders_writes_for_availability_only_when_enabled() {
    let zookeeper = ZooKeeper::start().unwrap();
    let mut brokers = start_cluster_with(
        &zookeeper,
        &[1, 2, 3],
        // Two fetch loops per leader: the two topics replicate over separate loops.
        &[
            ("replica.lag.time.max.ms", "2000"),
            ("num.replica.fetchers", "2"),
        ],
    )
    .await;
    let client = zk_client(&zookeeper).await;
    let mut admin = brokers[0].admin_client().unwrap();
    for (topic, unclean) in [("dirty", "true"), ("clean", "false")] {
        let result = try_create_topic(
            &mut admin,
            topic,
            1,
            3,
            &[
                ("unclean.leader.election.enable", unclean),
                ("min.insync.replicas", "1"),
            ],
        )
        .await;
        assert_eq!(result.error_code, 0, "{}", result.error_message);
    }
    let all: Vec<&Broker> = brokers.iter().collect();
    let dirty = agreed_partitions(&all, "dirty", 1, |p| p.leader >= 0 && p.isr.len() == 3)
        .await
        .remove(0);
    let clean = agreed_partitions(&all, "clean", 1, |p| p.leader >= 0 && p.isr.len() == 3)
        .await
        .remove(0);
    // Partition 0 of both is placed on brokers [1, 2, 3] ((0 + j) mod 3), led by broker 1.
    assert_eq!(
        (dirty.replicas.clone(), dirty.leader),
        (clean.replicas, clean.leader)
    );
    let (old_leader, first_back, last_back) =
        (dirty.replicas[0], dirty.replicas[1], dirty.replicas[2]);
    let index_of = |id: i32, brokers: &[Broker]| brokers.iter().position(|b| b.id() == id).unwrap();

    for topic in ["dirty", "clean"] {
        let committed = produce(by_id(&brokers, old_leader), topic, -1, 10_000, "committed-").await;
        assert_eq!(
            committed.error_code,
            ErrorCode::None as i32,
            "{}",
            committed.error_message
        );
    }
    // The followers die; the leader alone takes acks=1 writes.
    for id in [first_back, last_back] {
        let i = index_of(id, &brokers);
        brokers[i].kill9().unwrap();
    }
    eventually("the ISRs down to the leader", LIMIT, || async {
        let (d, _) = partition_state(&client, "dirty", 0).await;
        let (c, _) = partition_state(&client, "clean", 0).await;
        (d.isr == vec![BrokerId(old_leader)] && c.isr == vec![BrokerId(old_leader)]).then_some(())
    })
    .await;
    for topic in ["dirty", "clean"] {
        let alone = produce(by_id(&brokers, old_leader), topic, 1, 10_000, "alone-").await;
        assert_eq!(
            alone.error_code,
            ErrorCode::None as i32,
            "{}",
            alone.error_message
        );
        assert_eq!(alone.base_offset, 3);
    }
    let i_old = index_of(old_leader, &brokers);
    brokers[i_old].kill9().unwrap();

    // An out-of-sync replica returns first.
    let i_first = index_of(first_back, &brokers);
    brokers[i_first].restart().await.unwrap();
    eventually(
        "the dirty topic led by the out-of-sync replica",
        LIMIT,
        || async {
            let (state, _) = partition_state(&client, "dirty", 0).await;
            (state.leader == BrokerId(first_back)).then_some(())
        },
    )
    .await;
    assert!(
        brokers[i_first]
            .log_tail(4000)
            .contains("unclean leader election"),
        "the controller did not log the unclean election"
    );
    let (state, _) = partition_state(&client, "clean", 0).await;
    assert_eq!(state.leader, BrokerId::NONE, "the clean topic must wait");
    // The new leader has applied its LeaderAndIsr once its metadata says so (the controller
    // sends both in that order on one queue).
    agreed_partitions(&[&brokers[i_first]], "dirty", 1, |p| p.leader == first_back).await;
    let after = produce(by_id(&brokers, first_back), "dirty", 1, 10_000, "after-").await;
    assert_eq!(
        after.error_code,
        ErrorCode::None as i32,
        "{}",
        after.error_message
    );
    assert_eq!(
        after.base_offset, 3,
        "the unclean leader continues from its own log end"
    );

    // Everyone returns.
    let i_last = index_of(last_back, &brokers);
    brokers[i_last].restart().await.unwrap();
    brokers[i_old].restart().await.unwrap();
    let all: Vec<&Broker> = brokers.iter().collect();
    agreed_partitions(&all, "dirty", 1, |p| {
        p.leader == first_back && p.isr.len() == 3
    })
    .await;
    agreed_partitions(&all, "clean", 1, |p| {
        p.leader == old_leader && p.isr.len() == 3
    })
    .await;

    // dirty: the lone leader's writes are gone everywhere, its log truncated to the new one.
    let dirty_records = consume(by_id(&brokers, first_back), "dirty").await;
    assert_eq!(writes(&dirty_records), expected("committed-", "after-"));
    identical_logs(&all, "dirty").await;
    // clean: nothing lost, the old leader leads again with its writes.
    let clean_records = consume(by_id(&brokers, old_leader), "clean").await;
    assert_eq!(writes(&clean_records), expected("committed-", "alone-"));
    identical_logs(&all, "clean").await;
}
