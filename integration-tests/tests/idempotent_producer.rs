//! The idempotent producer against real brokers and ZooKeeper: producer ids come from blocks
//! claimed in `/latest_producer_id_block`; the leader answers a repeated batch with its original
//! offsets (also after a kill -9 and restart, from the rebuilt producer state) and refuses gaps
//! and fenced epochs; and a `Producer` with idempotence whose answers get lost (leader paused
//! past `request.timeout.ms`) and whose leader is killed delivers every record exactly once, in
//! order.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tributary_client::{Acks, Client, Producer, ProducerOptions, ProducerRecord};
use tributary_integration_tests::ZooKeeper;
use tributary_proto::v1::{ErrorCode, InitProducerIdRequest};
use tributary_record::{BatchBuilder, Record};
use tributary_zk_layout::payloads::{Payload, ProducerIdBlock};

use support::client_reads::{partition_records, value_text};
use support::cluster::{LIMIT, agreed_partitions, eventually, start_cluster, zk_client};
use support::produce_raw;

/// A batch of `count` records of `producer` at `epoch` starting at `sequence`.
fn producer_batch(producer: i64, epoch: i16, sequence: i32, count: usize) -> Bytes {
    let mut builder = BatchBuilder::new().producer(producer, epoch, sequence);
    for i in 0..count {
        builder.push(&Record {
            value: Some(Bytes::from(format!("{producer}/{sequence}+{i}"))),
            timestamp: 1_700_000_000_000,
            ..Record::default()
        });
    }
    builder.build()
}

async fn init_producer_id(broker: &tributary_integration_tests::Broker) -> (i64, i32) {
    let response = broker
        .broker_client()
        .unwrap()
        .init_producer_id(InitProducerIdRequest::default())
        .await
        .expect("InitProducerId")
        .into_inner();
    assert_eq!(
        response.error_code,
        ErrorCode::None as i32,
        "{}",
        response.error_message
    );
    (response.producer_id, response.producer_epoch)
}

#[tokio::test]
async fn brokers_hand_out_unique_ids_and_leaders_check_sequences_across_restarts() {
    let zookeeper = ZooKeeper::start().expect("start ZooKeeper");
    let mut brokers = start_cluster(&zookeeper, &[1, 2]).await;

    // Each broker claims its own block of 1000 ids; ids within a block go up by one.
    let (first, epoch) = init_producer_id(&brokers[0]).await;
    let (second, _) = init_producer_id(&brokers[0]).await;
    let (other, _) = init_producer_id(&brokers[1]).await;
    assert_eq!(epoch, 0);
    assert_eq!(second, first + 1);
    assert_eq!(
        (first / 1000 - other / 1000).abs(),
        1,
        "{first} and {other}: two blocks"
    );
    let zk = zk_client(&zookeeper).await;
    let (data, _) = zk.get_data("/latest_producer_id_block").await.unwrap();
    let block = ProducerIdBlock::decode(&data).unwrap();
    assert_eq!((block.block_start, block.block_end), (1000, 1999));
    assert!(
        String::from_utf8(data)
            .unwrap()
            .contains(r#""block_start":"1000","block_end":"1999""#),
        "Kafka writes the ids as strings"
    );
    // Transactions are not supported: refused as a whole.
    let refused = brokers[0]
        .broker_client()
        .unwrap()
        .init_producer_id(InitProducerIdRequest {
            transactional_id: "tx".into(),
            ..InitProducerIdRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);

    // One broker, one replica: the leader is brokers[0].
    brokers.pop().unwrap().terminate().await.unwrap();
    let client = Client::connect(&brokers[0].bootstrap_server())
        .await
        .unwrap();
    client
        .create_topic("seq", 1, 1, &[])
        .await
        .expect("create topic");
    agreed_partitions(&[&brokers[0]], "seq", 1, |p| p.leader >= 0).await;
    let mut raw = brokers[0].broker_client().unwrap();
    let produce = |batch: Bytes| {
        let mut raw = raw.clone();
        async move { produce_raw(&mut raw, "seq", 0, batch).await }
    };
    let a = produce(producer_batch(first, 0, 0, 3)).await;
    assert_eq!((a.error_code, a.base_offset), (ErrorCode::None as i32, 0));
    let b = produce(producer_batch(first, 0, 3, 2)).await;
    assert_eq!((b.error_code, b.base_offset), (ErrorCode::None as i32, 3));
    // The retry of the first batch: its offsets, nothing appended.
    let again = produce(producer_batch(first, 0, 0, 3)).await;
    assert_eq!(
        (again.error_code, again.base_offset, again.last_offset),
        (ErrorCode::None as i32, 0, 2)
    );
    // A gap, an unknown producer, a fenced epoch: refused, nothing appended.
    let gap = produce(producer_batch(first, 0, 9, 1)).await;
    assert_eq!(
        gap.error_code,
        ErrorCode::OutOfOrderSequenceNumber as i32,
        "{}",
        gap.error_message
    );
    let unknown = produce(producer_batch(second, 0, 7, 1)).await;
    assert_eq!(unknown.error_code, ErrorCode::UnknownProducerId as i32);
    let _ = produce(producer_batch(first, 1, 0, 1)).await;
    let fenced = produce(producer_batch(first, 0, 5, 1)).await;
    assert_eq!(fenced.error_code, ErrorCode::InvalidProducerEpoch as i32);

    // kill -9: the restarted leader rebuilds the producer state from its log.
    brokers[0].kill9().unwrap();
    brokers[0].restart().await.expect("restart");
    agreed_partitions(&[&brokers[0]], "seq", 1, |p| p.leader >= 0).await;
    raw = brokers[0].broker_client().unwrap();
    let produce = |batch: Bytes| {
        let mut raw = raw.clone();
        async move { produce_raw(&mut raw, "seq", 0, batch).await }
    };
    // The cache may name the broker leader again before its LeaderAndIsr arrived (after an
    // unclean start the controller first compares the replica's log): retry until it leads.
    // A refused attempt appends nothing, so the retries do not disturb the sequence.
    let after_crash = eventually("the restarted broker to lead again", LIMIT, || {
        let attempt = produce(producer_batch(first, 1, 0, 1));
        async move {
            let result = attempt.await;
            let retriable = [
                ErrorCode::NotLeaderOrFollower,
                ErrorCode::LeaderNotAvailable,
            ]
            .map(|code| code as i32)
            .contains(&result.error_code);
            (!retriable).then_some(result)
        }
    })
    .await;
    assert_eq!(
        (after_crash.error_code, after_crash.base_offset),
        (ErrorCode::None as i32, 5)
    );
    let next = produce(producer_batch(first, 1, 1, 1)).await;
    assert_eq!(
        (next.error_code, next.base_offset),
        (ErrorCode::None as i32, 6)
    );
    let values: Vec<String> = partition_records(&client, "seq", 0)
        .await
        .iter()
        .map(value_text)
        .collect();
    assert_eq!(values.len(), 7, "{values:?}");
}

#[tokio::test]
async fn lost_answers_and_a_killed_leader_neither_duplicate_nor_reorder_records() {
    let zookeeper = ZooKeeper::start().expect("start ZooKeeper");
    let mut brokers = start_cluster(&zookeeper, &[1, 2, 3]).await;
    let admin = Client::connect(&brokers[0].bootstrap_server())
        .await
        .expect("connect");
    admin
        .create_topic(
            "once",
            2,
            3,
            &[("min.insync.replicas".to_owned(), "2".to_owned())],
        )
        .await
        .expect("create topic");
    let all: Vec<_> = brokers.iter().collect();
    agreed_partitions(&all, "once", 2, |p| p.leader >= 0 && p.isr.len() == 3).await;
    let leader_of = |partition| {
        let admin = admin.clone();
        async move {
            admin
                .leader_for("once", partition)
                .await
                .expect("leader")
                .broker_id()
        }
    };
    let paused = leader_of(0).await;
    let paused_index = brokers.iter().position(|b| b.id() == paused).unwrap();
    // The producer talks to a broker that is never paused or killed for its metadata.
    let killed_index = brokers
        .iter()
        .position(|b| b.id() != paused)
        .expect("another broker");
    let bootstrap = brokers
        .iter()
        .position(|b| b.id() != paused && b.id() != brokers[killed_index].id())
        .unwrap();
    let client = Client::connect(&brokers[bootstrap].bootstrap_server())
        .await
        .expect("connect");

    let producer = Producer::new(
        &client,
        ProducerOptions {
            acks: Acks::All,
            idempotence: true,
            linger: Duration::from_millis(5),
            batch_size: 1024,
            // Answers held up by the pause below time out, so their batches are sent again
            // while the paused broker still has the first copies to append.
            request_timeout: Duration::from_millis(400),
            delivery_timeout: Duration::from_secs(120),
            ..ProducerOptions::default()
        },
    )
    .expect("producer");
    let sending = {
        let producer = producer.clone();
        tokio::spawn(async move {
            let mut sent = Vec::new();
            let started = Instant::now();
            let mut sequence = 0u32;
            while started.elapsed() < Duration::from_secs(9) {
                for _ in 0..10 {
                    let partition = (sequence % 2) as i32;
                    let value = format!("{partition}-{sequence:07}");
                    let record =
                        ProducerRecord::new("once", value.clone()).with_partition(partition);
                    let delivery = producer.send(record).await.expect("send");
                    sent.push((partition, value, delivery));
                    sequence += 1;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            sent
        })
    };
    // Lost answers: partition 0's leader stops for 1.5 s (less than the 3 s ZooKeeper session,
    // so it stays leader and appends what it had received once it resumes).
    tokio::time::sleep(Duration::from_secs(2)).await;
    brokers[paused_index].pause().expect("pause");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    brokers[paused_index].resume().expect("resume");
    // A failover: another broker (leading partition 1 or following both) is killed and
    // comes back.
    tokio::time::sleep(Duration::from_secs(2)).await;
    brokers[killed_index].kill9().expect("kill");
    tokio::time::sleep(Duration::from_secs(2)).await;
    brokers[killed_index].restart().await.expect("restart");

    let sent = sending.await.expect("sender task");
    let mut expected: HashMap<i32, Vec<(String, i64)>> = HashMap::new();
    for (partition, value, delivery) in sent {
        let written = tokio::time::timeout(Duration::from_secs(120), delivery)
            .await
            .expect("delivery in time")
            .unwrap_or_else(|error| panic!("{value}: {error}"));
        expected
            .entry(partition)
            .or_default()
            .push((value, written.offset));
    }
    producer.close().await;

    for partition in 0..2 {
        let sent = &expected[&partition];
        assert!(
            sent.len() > 200,
            "once-{partition}: only {} records",
            sent.len()
        );
        let stored: Vec<(i64, String)> =
            tokio::time::timeout(LIMIT, partition_records(&client, "once", partition))
                .await
                .expect("read back")
                .iter()
                .map(|r| (r.offset, value_text(r)))
                .collect();
        // Exactly the records sent, each once, in send order, at the offsets acknowledged.
        let stored_values: Vec<&str> = stored.iter().map(|(_, v)| v.as_str()).collect();
        let sent_values: Vec<&str> = sent.iter().map(|(v, _)| v.as_str()).collect();
        if stored_values != sent_values {
            let mut seen = std::collections::HashSet::new();
            let duplicates: Vec<&&str> = stored_values
                .iter()
                .filter(|v| !seen.insert(**v))
                .take(5)
                .collect();
            panic!(
                "once-{partition}: {} stored, {} sent; duplicates {duplicates:?}",
                stored_values.len(),
                sent_values.len()
            );
        }
        for ((offset, value), (sent_value, acknowledged)) in stored.iter().zip(sent) {
            assert_eq!((value, offset), (sent_value, acknowledged));
        }
    }
}
