//! The batching `Producer` against real brokers and ZooKeeper: every delivery future names the
//! offset its record is read back at and keys land on Kafka's murmur2 partition; a full buffer
//! fails `send` after `max.block.ms` instead of dropping records; and a leader killed with
//! SIGKILL in the middle of a run loses no acknowledged record and keeps each partition's order.

mod support;

use support::client_reads::{partition_records, value_text};

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tributary_client::{
    Acks, Client, DeliveryFuture, ProduceError, Producer, ProducerOptions, ProducerRecord,
    partition_for_key,
};
use tributary_integration_tests::ZooKeeper;

use support::cluster::{LIMIT, agreed_partitions, start_cluster, start_cluster_with};

/// Every record of `topic`-`partition` from offset 0: offset -> (key, value).
async fn read_partition(
    client: &Client,
    topic: &str,
    partition: i32,
) -> BTreeMap<i64, (Option<Bytes>, String)> {
    partition_records(client, topic, partition)
        .await
        .iter()
        .map(|r| (r.offset, (r.key.clone(), value_text(r))))
        .collect()
}

#[tokio::test]
async fn deliveries_name_the_offsets_records_are_read_back_at_and_keys_follow_murmur2() {
    let zookeeper = ZooKeeper::start().expect("start ZooKeeper");
    let brokers = start_cluster(&zookeeper, &[1, 2, 3]).await;
    let client = Client::connect(&brokers[0].bootstrap_server())
        .await
        .expect("connect");
    const PARTITIONS: i32 = 6;
    client
        .create_topic("mixed", PARTITIONS, 1, &[])
        .await
        .expect("create topic");
    let all: Vec<_> = brokers.iter().collect();
    agreed_partitions(&all, "mixed", PARTITIONS as usize, |p| p.leader >= 0).await;

    let producer = Producer::new(
        &client,
        ProducerOptions {
            linger: Duration::from_millis(10),
            batch_size: 4096,
            acks: Acks::All,
            ..ProducerOptions::default()
        },
    )
    .expect("producer");
    const RECORDS: usize = 3000;
    let mut sent: Vec<(Option<Bytes>, String, DeliveryFuture)> = Vec::new();
    for i in 0..RECORDS {
        let value = format!("v{i}");
        let mut record = ProducerRecord::new("mixed", value.clone())
            .with_header("i", Some(Bytes::from(i.to_string())));
        if i % 2 == 0 {
            record = record.with_key(format!("key-{}", i % 97));
        }
        let key = record.key.clone();
        let delivery = producer.send(record).await.expect("send");
        sent.push((key, value, delivery));
    }
    let mut delivered = Vec::new();
    for (key, value, delivery) in sent {
        let written = tokio::time::timeout(LIMIT, delivery)
            .await
            .expect("delivery in time")
            .unwrap_or_else(|error| panic!("{value}: {error}"));
        delivered.push((key, value, written));
    }
    producer.close().await;

    let mut logs = HashMap::new();
    for partition in 0..PARTITIONS {
        logs.insert(partition, read_partition(&client, "mixed", partition).await);
    }
    let stored: usize = logs.values().map(BTreeMap::len).sum();
    assert_eq!(stored, RECORDS, "every record once, nothing else");
    let mut keyless_partitions = std::collections::BTreeSet::new();
    let mut last_offset: HashMap<i32, i64> = HashMap::new();
    for (key, value, written) in &delivered {
        let found = logs[&written.partition].get(&written.offset);
        assert_eq!(
            found.map(|(k, v)| (k, v)),
            Some((key, value)),
            "{value} acknowledged at mixed-{}@{}",
            written.partition,
            written.offset
        );
        match key {
            Some(key) => assert_eq!(
                written.partition,
                partition_for_key(key, PARTITIONS),
                "{value}: key {key:?} must land where Kafka's murmur2 puts it"
            ),
            None => {
                keyless_partitions.insert(written.partition);
            }
        }
        // Send order is offset order within a partition.
        let previous = last_offset.insert(written.partition, written.offset);
        assert!(previous.is_none_or(|p| p < written.offset), "{value}");
    }
    assert!(
        keyless_partitions.len() > 1,
        "sticky partitioning moves on after each batch: {keyless_partitions:?}"
    );
}

#[tokio::test]
async fn a_full_buffer_fails_send_after_max_block_and_drops_nothing() {
    let (_zookeeper, mut broker) = support::start().await;
    let client = Client::connect(&broker.bootstrap_server())
        .await
        .expect("connect");
    client
        .create_topic("slow", 1, 1, &[])
        .await
        .expect("create topic");
    let max_block = Duration::from_millis(500);
    let producer = Producer::new(
        &client,
        ProducerOptions {
            buffer_memory: 64 * 1024,
            max_block,
            ..ProducerOptions::default()
        },
    )
    .expect("producer");
    let warm_up = producer
        .send(ProducerRecord::new("slow", "warm-up"))
        .await
        .expect("send")
        .await
        .expect("delivered");
    assert_eq!(warm_up.offset, 0);

    // The broker stops answering: requests pile up, then the buffer fills.
    broker.pause().expect("SIGSTOP the broker");
    let value = Bytes::from(vec![b'x'; 1000]);
    let mut accepted = Vec::new();
    let error = loop {
        let started = Instant::now();
        match producer
            .send(ProducerRecord::new("slow", value.clone()))
            .await
        {
            Ok(delivery) => accepted.push(delivery),
            Err(error) => break (error, started.elapsed()),
        }
        assert!(accepted.len() < 1000, "the buffer never filled up");
    };
    broker.resume().expect("SIGCONT the broker");
    let (error, waited) = error;
    assert!(
        matches!(
            error,
            ProduceError::BufferExhausted {
                buffer_memory: 65536,
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("max.block.ms"), "{error}");
    assert!(
        waited >= max_block && waited < max_block + Duration::from_secs(2),
        "{waited:?}"
    );
    assert!(
        accepted.len() > 10 && accepted.len() <= 64,
        "{}",
        accepted.len()
    );

    // Every accepted record is delivered once the broker answers again, in order.
    let mut offsets = Vec::new();
    for delivery in accepted {
        let written = tokio::time::timeout(LIMIT, delivery)
            .await
            .expect("delivery in time")
            .expect("delivered after the pause");
        offsets.push(written.offset);
    }
    let expected: Vec<i64> = (1..=offsets.len() as i64).collect();
    assert_eq!(offsets, expected);
    assert_eq!(
        read_partition(&client, "slow", 0).await.len(),
        offsets.len() + 1
    );
    producer.close().await;
    assert_eq!(producer.available_memory(), 64 * 1024);
}

#[tokio::test]
async fn a_killed_leader_loses_no_acknowledged_record_and_keeps_partition_order() {
    let zookeeper = ZooKeeper::start().expect("start ZooKeeper");
    let mut brokers = start_cluster_with(&zookeeper, &[1, 2, 3], &[]).await;
    let admin = Client::connect(&brokers[0].bootstrap_server())
        .await
        .expect("connect");
    admin
        .create_topic(
            "moving",
            2,
            3,
            &[("min.insync.replicas".to_owned(), "2".to_owned())],
        )
        .await
        .expect("create topic");
    let all: Vec<_> = brokers.iter().collect();
    agreed_partitions(&all, "moving", 2, |p| p.leader >= 0 && p.isr.len() == 3).await;
    let victim = admin
        .leader_for("moving", 0)
        .await
        .expect("leader")
        .broker_id();
    let victim_index = brokers.iter().position(|b| b.id() == victim).unwrap();
    let survivor = &brokers[(victim_index + 1) % brokers.len()];
    let client = Client::connect(&survivor.bootstrap_server())
        .await
        .expect("connect");

    let producer = Producer::new(
        &client,
        ProducerOptions {
            acks: Acks::All,
            linger: Duration::from_millis(5),
            batch_size: 2048,
            ..ProducerOptions::default()
        },
    )
    .expect("producer");
    // Records "<partition>-<sequence>", alternating between the two partitions, for ~6 s; the
    // leader of partition 0 is killed after ~2 s.
    let sending = {
        let producer = producer.clone();
        tokio::spawn(async move {
            let mut sent = Vec::new();
            let started = Instant::now();
            let mut sequence = 0u32;
            while started.elapsed() < Duration::from_secs(6) {
                for _ in 0..10 {
                    let partition = (sequence % 2) as i32;
                    let value = format!("{partition}-{sequence:06}");
                    let record =
                        ProducerRecord::new("moving", value.clone()).with_partition(partition);
                    let delivery = producer.send(record).await.expect("send");
                    sent.push((partition, value, delivery));
                    sequence += 1;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            sent
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    brokers[victim_index].kill9().expect("kill the leader");
    let sent = sending.await.expect("sender task");
    let mut acknowledged: HashMap<i32, Vec<(String, i64)>> = HashMap::new();
    for (partition, value, delivery) in sent {
        let written = tokio::time::timeout(Duration::from_secs(120), delivery)
            .await
            .expect("delivery in time")
            .unwrap_or_else(|error| panic!("{value}: {error}"));
        assert_eq!(written.partition, partition);
        acknowledged
            .entry(partition)
            .or_default()
            .push((value, written.offset));
    }
    producer.close().await;
    let new_leader = client.leader_for("moving", 0).await.expect("new leader");
    assert_ne!(
        new_leader.broker_id(),
        victim,
        "the leader moved during the run"
    );

    for partition in 0..2 {
        let log = read_partition(&client, "moving", partition).await;
        let acks = &acknowledged[&partition];
        assert!(acks.len() > 100, "partition {partition}: {}", acks.len());
        for (value, offset) in acks {
            assert_eq!(
                log.get(offset).map(|(_, v)| v.as_str()),
                Some(value.as_str()),
                "acknowledged {value} at moving-{partition}@{offset} is missing"
            );
        }
        // Acknowledged in send order = stored in send order.
        for pair in acks.windows(2) {
            assert!(
                pair[0].1 < pair[1].1,
                "moving-{partition}: {} at {} but {} at {}",
                pair[0].0,
                pair[0].1,
                pair[1].0,
                pair[1].1
            );
        }
        // What is stored is in send order too, apart from copies re-sent after a lost answer
        // (at-least-once): the first copy of each record comes in order.
        let mut first_seen = std::collections::HashSet::new();
        let firsts: Vec<&String> = log
            .values()
            .map(|(_, v)| v)
            .filter(|v| first_seen.insert(v.as_str()))
            .collect();
        assert!(
            firsts.windows(2).all(|w| w[0] < w[1]),
            "moving-{partition} out of order"
        );
    }
}
