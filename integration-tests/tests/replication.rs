//! Replication with three real brokers and ZooKeeper: followers copy the leader's log
//! byte for byte, the ISR shrinks and expands, `acks=-1` waits for the ISR and respects
//! `min.insync.replicas`, consumers never see records above the high watermark, and a former
//! leader truncates its divergent tail by leader epoch.
//!
//! Replica logs are compared by their segment files: followers append the leader's batches
//! unchanged, so every replica's `.log` files must end up byte-identical.

mod support;

use tributary_integration_tests::{Broker, ZooKeeper};
use tributary_proto::v1::{ErrorCode, PartitionProduceResponse, RecordFormat};
use tributary_zk_layout::BrokerId;

use support::cluster::{
    LIMIT, agreed_partitions, eventually, partition_state, segment_bytes, start_cluster_with,
    topic_metadata, zk_client,
};
use support::{batch, fetch_request, raw_request, records, try_create_topic};

/// Followers leave the ISR after 2 s without catching up.
const LAG: &str = "2000";

async fn create_replicated(broker: &Broker, topic: &str, min_insync: &str) {
    let mut admin = broker.admin_client().unwrap();
    let result = try_create_topic(
        &mut admin,
        topic,
        1,
        3,
        &[("min.insync.replicas", min_insync)],
    )
    .await;
    assert_eq!(
        result.error_code,
        ErrorCode::None as i32,
        "{}",
        result.error_message
    );
}

/// Waits until every live broker agrees partition 0 of `topic` has a leader and an ISR of
/// `isr_size`; returns the leader.
async fn leader_with_isr(brokers: &[&Broker], topic: &str, isr_size: usize) -> i32 {
    agreed_partitions(brokers, topic, 1, |p| {
        p.leader >= 0 && p.isr.len() == isr_size
    })
    .await[0]
        .leader
}

fn by_id(brokers: &[Broker], id: i32) -> &Broker {
    brokers.iter().find(|b| b.id() == id).unwrap()
}

async fn produce(
    broker: &Broker,
    topic: &str,
    acks: i32,
    timeout_ms: i32,
    prefix: &str,
) -> PartitionProduceResponse {
    let mut client = broker.broker_client().unwrap();
    let mut request = raw_request(topic, 0, acks, batch(&records(prefix, 3, 0)));
    request.timeout_ms = timeout_ms;
    let response = client.produce(request).await.unwrap().into_inner();
    response.topics[0].partitions[0].clone()
}

/// Every record a consumer can read from `broker` (the leader): (offset, value).
async fn consume(broker: &Broker, topic: &str) -> Vec<(i64, Vec<u8>)> {
    let mut client = broker.broker_client().unwrap();
    let mut out = Vec::new();
    loop {
        let next = out.last().map_or(0, |(o, _)| o + 1);
        let response = client
            .fetch(fetch_request(topic, 0, next, RecordFormat::Decoded, 0))
            .await
            .unwrap()
            .into_inner();
        let p = &response.topics[0].partitions[0];
        assert_eq!(p.error_code, ErrorCode::None as i32, "{}", p.error_message);
        if p.records.is_empty() {
            return out;
        }
        for r in &p.records {
            assert!(
                r.offset < p.high_watermark,
                "a consumer saw offset {} at or above the HW {}",
                r.offset,
                p.high_watermark
            );
            out.push((r.offset, r.value.clone().unwrap_or_default().to_vec()));
        }
    }
}

/// Waits until the logs of `topic`-0 on every broker are byte-identical and `expected_len`
/// long (when given); returns the length.
async fn identical_logs(brokers: &[&Broker], topic: &str) -> usize {
    eventually("byte-identical replica logs", LIMIT, || async {
        let first = segment_bytes(&brokers[0].data_dir(), topic, 0);
        let same = !first.is_empty()
            && brokers[1..]
                .iter()
                .all(|b| segment_bytes(&b.data_dir(), topic, 0) == first);
        same.then_some(first.len())
    })
    .await
}

async fn isr_in_zk(client: &zookeeper_client::Client, topic: &str) -> Vec<i32> {
    let (state, _) = partition_state(client, topic, 0).await;
    state.isr.iter().map(|b| b.0).collect()
}

#[tokio::test]
async fn acks_all_writes_reach_every_replica_and_survive_leader_failures() {
    let zookeeper = ZooKeeper::start().unwrap();
    let mut brokers =
        start_cluster_with(&zookeeper, &[1, 2, 3], &[("replica.lag.time.max.ms", LAG)]).await;
    create_replicated(&brokers[0], "durable", "2").await;
    let all: Vec<&Broker> = brokers.iter().collect();
    let leader = leader_with_isr(&all, "durable", 3).await;

    let mut acknowledged = Vec::new();
    for i in 0..10 {
        let result = produce(
            by_id(&brokers, leader),
            "durable",
            -1,
            10_000,
            &format!("d{i}-"),
        )
        .await;
        assert_eq!(
            result.error_code,
            ErrorCode::None as i32,
            "{}",
            result.error_message
        );
        assert_eq!(result.base_offset, i * 3);
        acknowledged.push(result.last_offset);
    }
    let expected = consume(by_id(&brokers, leader), "durable").await;
    assert_eq!(
        expected.len(),
        30,
        "acks=-1 records are committed when acknowledged"
    );
    identical_logs(&all, "durable").await;

    // Kill the leaders in turn: each next leader serves exactly the same records.
    let mut dead = vec![leader];
    for _ in 0..2 {
        let victim = *dead.last().unwrap();
        brokers
            .iter_mut()
            .find(|b| b.id() == victim)
            .unwrap()
            .kill9()
            .unwrap();
        let live: Vec<&Broker> = brokers.iter().filter(|b| !dead.contains(&b.id())).collect();
        let next = eventually("a new leader", LIMIT, || async {
            let meta = topic_metadata(live[0], "durable").await?;
            let leader = meta.partitions[0].leader;
            (leader >= 0 && !dead.contains(&leader)).then_some(leader)
        })
        .await;
        let served = eventually("all records from the new leader", LIMIT, || async {
            let records = consume(by_id(&brokers, next), "durable").await;
            (records.len() >= expected.len()).then_some(records)
        })
        .await;
        assert_eq!(
            served, expected,
            "leader {next} serves what leader {victim} acknowledged"
        );
        dead.push(next);
    }
}

#[tokio::test]
async fn a_killed_follower_leaves_the_isr_and_rejoins_after_catching_up() {
    let zookeeper = ZooKeeper::start().unwrap();
    let mut brokers =
        start_cluster_with(&zookeeper, &[1, 2, 3], &[("replica.lag.time.max.ms", LAG)]).await;
    create_replicated(&brokers[0], "rejoin", "2").await;
    let all: Vec<&Broker> = brokers.iter().collect();
    let leader = leader_with_isr(&all, "rejoin", 3).await;
    let follower = [1, 2, 3].into_iter().find(|&b| b != leader).unwrap();
    let zk = zk_client(&zookeeper).await;

    brokers
        .iter_mut()
        .find(|b| b.id() == follower)
        .unwrap()
        .kill9()
        .unwrap();
    // Writes go on with the two others (min.insync.replicas=2) once the follower is out.
    eventually("the killed follower out of the ISR", LIMIT, || async {
        (!isr_in_zk(&zk, "rejoin").await.contains(&follower)).then_some(())
    })
    .await;
    for i in 0..5 {
        let result = produce(
            by_id(&brokers, leader),
            "rejoin",
            -1,
            10_000,
            &format!("w{i}-"),
        )
        .await;
        assert_eq!(
            result.error_code,
            ErrorCode::None as i32,
            "{}",
            result.error_message
        );
    }

    brokers
        .iter_mut()
        .find(|b| b.id() == follower)
        .unwrap()
        .restart()
        .await
        .unwrap();
    eventually("the restarted follower back in the ISR", LIMIT, || async {
        isr_in_zk(&zk, "rejoin")
            .await
            .contains(&BrokerId(follower).0)
            .then_some(())
    })
    .await;
    let all: Vec<&Broker> = brokers.iter().collect();
    leader_with_isr(&all, "rejoin", 3).await;
    identical_logs(&all, "rejoin").await;
    let result = produce(by_id(&brokers, leader), "rejoin", -1, 10_000, "after-").await;
    assert_eq!(
        result.error_code,
        ErrorCode::None as i32,
        "{}",
        result.error_message
    );
    assert_eq!(result.base_offset, 15);
}

#[tokio::test]
async fn a_paused_follower_holds_the_high_watermark_until_the_leader_shrinks_the_isr() {
    let zookeeper = ZooKeeper::start().unwrap();
    // Sessions outlive the pause, so only the leader's lag rule removes the follower.
    let mut brokers = start_cluster_with(
        &zookeeper,
        &[1, 2, 3],
        &[
            ("replica.lag.time.max.ms", LAG),
            ("zookeeper.session.timeout.ms", "30000"),
        ],
    )
    .await;
    create_replicated(&brokers[0], "held", "3").await;
    let all: Vec<&Broker> = brokers.iter().collect();
    let leader = leader_with_isr(&all, "held", 3).await;
    let follower = [1, 2, 3].into_iter().find(|&b| b != leader).unwrap();
    let zk = zk_client(&zookeeper).await;
    let first = produce(by_id(&brokers, leader), "held", -1, 10_000, "ok-").await;
    assert_eq!(
        first.error_code,
        ErrorCode::None as i32,
        "{}",
        first.error_message
    );

    brokers
        .iter_mut()
        .find(|b| b.id() == follower)
        .unwrap()
        .pause()
        .unwrap();
    // The paused follower cannot acknowledge: the write is in the leader's log but not
    // committed, so it times out and consumers do not see it.
    let held = produce(by_id(&brokers, leader), "held", -1, 1_000, "held-").await;
    assert_eq!(
        held.error_code,
        ErrorCode::RequestTimedOut as i32,
        "{}",
        held.error_message
    );
    assert_eq!(consume(by_id(&brokers, leader), "held").await.len(), 3);

    // After replica.lag.time.max.ms the leader drops it from the ISR (in ZooKeeper); with
    // min.insync.replicas=3 writes are now refused, and the held records are committed by
    // the two remaining members.
    eventually("the paused follower out of the ISR", LIMIT, || async {
        (!isr_in_zk(&zk, "held").await.contains(&follower)).then_some(())
    })
    .await;
    let refused = produce(by_id(&brokers, leader), "held", -1, 1_000, "refused-").await;
    assert_eq!(
        refused.error_code,
        ErrorCode::NotEnoughReplicas as i32,
        "{}",
        refused.error_message
    );
    let visible = eventually("the held records committed", LIMIT, || async {
        let records = consume(by_id(&brokers, leader), "held").await;
        (records.len() == 6).then_some(records)
    })
    .await;
    assert_eq!(visible.last().unwrap().0, 5);

    brokers
        .iter_mut()
        .find(|b| b.id() == follower)
        .unwrap()
        .resume()
        .unwrap();
    eventually("the resumed follower back in the ISR", LIMIT, || async {
        isr_in_zk(&zk, "held")
            .await
            .contains(&follower)
            .then_some(())
    })
    .await;
    let all: Vec<&Broker> = brokers.iter().collect();
    leader_with_isr(&all, "held", 3).await;
    let accepted = produce(by_id(&brokers, leader), "held", -1, 10_000, "again-").await;
    assert_eq!(
        accepted.error_code,
        ErrorCode::None as i32,
        "{}",
        accepted.error_message
    );
    assert_eq!(
        accepted.base_offset, 6,
        "the refused write appended nothing"
    );
    identical_logs(&all, "held").await;
}

#[tokio::test]
async fn a_former_leader_truncates_its_unreplicated_tail_by_leader_epoch() {
    let zookeeper = ZooKeeper::start().unwrap();
    let mut brokers = start_cluster_with(
        &zookeeper,
        &[1, 2, 3],
        &[("replica.lag.time.max.ms", "10000")],
    )
    .await;
    create_replicated(&brokers[0], "diverge", "1").await;
    let all: Vec<&Broker> = brokers.iter().collect();
    let old_leader = leader_with_isr(&all, "diverge", 3).await;
    let committed = produce(
        by_id(&brokers, old_leader),
        "diverge",
        -1,
        10_000,
        "committed-",
    )
    .await;
    assert_eq!(
        committed.error_code,
        ErrorCode::None as i32,
        "{}",
        committed.error_message
    );

    // Both followers pause; the leader takes acks=1 writes, then dies. The first may still
    // reach a follower: the answer to the long poll it had in flight is delivered to its
    // socket although the process is stopped. The second cannot (a stopped follower sends
    // no further fetch): it exists on the old leader only.
    let followers: Vec<i32> = [1, 2, 3].into_iter().filter(|&b| b != old_leader).collect();
    for &f in &followers {
        brokers
            .iter_mut()
            .find(|b| b.id() == f)
            .unwrap()
            .pause()
            .unwrap();
    }
    for prefix in ["maybe-", "lost-"] {
        let written = produce(by_id(&brokers, old_leader), "diverge", 1, 0, prefix).await;
        assert_eq!(
            written.error_code,
            ErrorCode::None as i32,
            "{}",
            written.error_message
        );
    }
    brokers
        .iter_mut()
        .find(|b| b.id() == old_leader)
        .unwrap()
        .kill9()
        .unwrap();
    for &f in &followers {
        brokers
            .iter_mut()
            .find(|b| b.id() == f)
            .unwrap()
            .resume()
            .unwrap();
    }

    // A follower becomes leader at a new epoch and writes other records at offsets 3..
    let live: Vec<&Broker> = brokers.iter().filter(|b| b.id() != old_leader).collect();
    let new_leader = eventually("a new leader", LIMIT, || async {
        let meta = topic_metadata(live[0], "diverge").await?;
        let leader = meta.partitions[0].leader;
        (leader >= 0 && leader != old_leader).then_some(leader)
    })
    .await;
    let written = eventually("a write on the new leader", LIMIT, || async {
        let r = produce(by_id(&brokers, new_leader), "diverge", -1, 10_000, "new-").await;
        (r.error_code == ErrorCode::None as i32).then_some(r)
    })
    .await;
    assert!(
        [3, 6].contains(&written.base_offset),
        "the new leader never had the lost records: {}",
        written.base_offset
    );

    // The old leader comes back as a follower, truncates to where epoch 0 ends on the new
    // leader and copies the new records: all logs are identical again.
    brokers
        .iter_mut()
        .find(|b| b.id() == old_leader)
        .unwrap()
        .restart()
        .await
        .unwrap();
    let all: Vec<&Broker> = brokers.iter().collect();
    agreed_partitions(&all, "diverge", 1, |p| p.isr.len() == 3).await;
    identical_logs(&all, "diverge").await;
    let records = consume(by_id(&brokers, new_leader), "diverge").await;
    let values: Vec<String> = records
        .iter()
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        .collect();
    assert_eq!(records.len() as i64, written.base_offset + 3, "{values:?}");
    assert!(values.iter().all(|v| !v.starts_with("lost")), "{values:?}");
    assert!(values.last().unwrap().starts_with("new"), "{values:?}");
    let log = std::fs::read_to_string(by_id(&brokers, old_leader).log_path()).unwrap();
    assert!(
        log.contains("truncated the follower's log"),
        "the old leader truncated"
    );
}
