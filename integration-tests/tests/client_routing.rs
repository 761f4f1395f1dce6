//! The client library and the `tributary` CLI against three brokers, bootstrapped through one:
//! every partition's requests reach its leader wherever the controller placed it, and after the
//! leader of a replicated partition is killed the client finds the new leader by itself.

mod support;

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Output, Stdio};
use std::time::Duration;
use support::client_reads::{partition_records, value_text};

use bytes::Bytes;
use tributary_client::{
    Acks, BatchSender, BatchSenderOptions, Client, FetchOptions, PartitionConsumer, Record,
};
use tributary_integration_tests::{Broker, BrokerConfig, ZooKeeper};

/// Long enough for a leader killed with SIGKILL to be replaced: the harness's 3 s ZooKeeper
/// session has to expire first, and the controller may have died with it.
const LIMIT: Duration = Duration::from_secs(30);

async fn start_cluster(zookeeper: &ZooKeeper) -> Vec<Broker> {
    let mut brokers = Vec::new();
    for id in 1..=3 {
        brokers.push(
            Broker::start(BrokerConfig::new(id, zookeeper.connect_string()))
                .await
                .expect("start broker"),
        );
    }
    brokers
}

fn records(prefix: &str, count: usize) -> Vec<Record> {
    (0..count)
        .map(|i| Record {
            key: None,
            value: Some(Bytes::from(format!("{prefix}-{i}"))),
            timestamp: -1,
            headers: Vec::new(),
        })
        .collect()
}

fn values(fetched: &[tributary_client::DecodedRecord]) -> Vec<String> {
    fetched
        .iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap_or_default().to_vec()).unwrap())
        .collect()
}

fn expect_success(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{what}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Every value of `topic`-`partition` from offset 0, read back through the client.
async fn read_all(client: &Client, topic: &str, partition: i32) -> Vec<String> {
    partition_records(client, topic, partition)
        .await
        .iter()
        .map(value_text)
        .collect()
}

#[tokio::test]
async fn library_and_cli_reach_every_partition_leader_through_one_broker() {
    let zookeeper = ZooKeeper::start().expect("start ZooKeeper");
    let brokers = start_cluster(&zookeeper).await;
    let client = Client::connect(&brokers[0].bootstrap_server())
        .await
        .expect("connect");
    client
        .create_topic("spread", 6, 1, &[])
        .await
        .expect("create topic");

    let mut leaders = BTreeSet::new();
    for partition in 0..6 {
        let leader = client
            .leader_for("spread", partition)
            .await
            .expect("leader");
        leaders.insert(leader.broker_id());
    }
    assert!(
        leaders.len() >= 2,
        "6 partitions on 3 brokers should have several leaders, got {leaders:?}"
    );

    // The library: unary produce, a streamed producer, unary fetches and a stream consumer.
    for partition in 0..6 {
        let ack = client
            .produce(
                "spread",
                partition,
                &records(&format!("lib{partition}"), 3),
                Acks::All,
            )
            .await
            .unwrap_or_else(|error| panic!("produce to spread-{partition}: {error}"));
        assert_eq!((ack.base_offset, ack.last_offset), (0, 2));
    }
    let producer = BatchSender::new(&client, BatchSenderOptions::default());
    let acks: Vec<_> = (0..6)
        .map(|partition| {
            producer.send_records(
                "spread",
                partition,
                &records(&format!("stream{partition}"), 2),
            )
        })
        .collect();
    for ack in acks {
        assert_eq!(ack.await.expect("streamed produce").base_offset, 3);
    }
    producer.close().await;
    for partition in 0..6 {
        let mut expected: Vec<String> = (0..3).map(|i| format!("lib{partition}-{i}")).collect();
        expected.extend((0..2).map(|i| format!("stream{partition}-{i}")));
        assert_eq!(read_all(&client, "spread", partition).await, expected);

        let mut consumer =
            PartitionConsumer::new(&client, "spread", partition, 0, FetchOptions::default())
                .expect("consumer");
        let mut consumed = Vec::new();
        while consumed.len() < 5 {
            let fetched = tokio::time::timeout(LIMIT, consumer.next())
                .await
                .expect("consumer timed out")
                .expect("consume");
            consumed.extend(values(&fetched.records));
        }
        assert_eq!(consumed, expected, "spread-{partition} through a consumer");
    }

    // The CLI, bootstrapped through another broker: produce to and consume from every partition.
    let cli_broker = &brokers[1];
    for partition in 0..6 {
        let mut produce = cli_broker
            .cli()
            .unwrap()
            .args(["produce", "spread", "--partition", &partition.to_string()])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tributary produce");
        let lines: String = (0..4).map(|i| format!("cli{partition}-{i}\n")).collect();
        produce
            .stdin
            .take()
            .unwrap()
            .write_all(lines.as_bytes())
            .unwrap();
        let output = produce.wait_with_output().unwrap();
        expect_success(&format!("tributary produce spread-{partition}"), &output);
    }
    let mut all_lines = BTreeSet::new();
    for partition in 0..6 {
        let output = cli_broker
            .cli()
            .unwrap()
            .args(["consume", "spread", "--from-beginning", "--partition"])
            .arg(partition.to_string())
            .args(["--max-messages", "9", "--timeout-ms", "20000"])
            .output()
            .unwrap();
        expect_success(&format!("tributary consume spread-{partition}"), &output);
        let lines: Vec<String> = String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        assert_eq!(lines.len(), 9, "spread-{partition}: {lines:?}");
        assert_eq!(
            lines[5..],
            (0..4)
                .map(|i| format!("cli{partition}-{i}"))
                .collect::<Vec<_>>()
        );
        all_lines.extend(lines);
    }
    assert_eq!(all_lines.len(), 6 * 9, "every record of the topic, once");

    let output = cli_broker
        .cli()
        .unwrap()
        .args(["offsets", "spread"])
        .output()
        .unwrap();
    expect_success("tributary offsets", &output);
    let table = String::from_utf8(output.stdout).unwrap();
    let latest: Vec<&str> = table
        .lines()
        .skip(1)
        .map(|line| line.split_whitespace().last().unwrap())
        .collect();
    assert_eq!(latest, vec!["9"; 6], "{table}");
}

#[tokio::test]
async fn produce_follows_the_new_leader_after_the_old_one_is_killed() {
    let zookeeper = ZooKeeper::start().expect("start ZooKeeper");
    let mut brokers = start_cluster(&zookeeper).await;
    let admin = Client::connect(&brokers[0].bootstrap_server())
        .await
        .expect("connect");
    admin
        .create_topic("failover", 1, 3, &[])
        .await
        .expect("create topic");
    let old_leader = admin
        .leader_for("failover", 0)
        .await
        .expect("leader")
        .broker_id();
    let leader_index = brokers.iter().position(|b| b.id() == old_leader).unwrap();
    let survivor_index = (leader_index + 1) % brokers.len();

    // One client bootstrapped through a survivor, one through the broker about to die (its
    // metadata refresh has to fall back to the other brokers it learnt about).
    let via_survivor = Client::connect(&brokers[survivor_index].bootstrap_server())
        .await
        .expect("connect");
    let via_victim = Client::connect(&brokers[leader_index].bootstrap_server())
        .await
        .expect("connect");
    let ack = via_survivor
        .produce("failover", 0, &records("before", 2), Acks::All)
        .await
        .expect("produce before the kill");
    assert_eq!(ack.base_offset, 0);
    via_victim
        .refresh_metadata(&["failover"])
        .await
        .expect("metadata");
    let producer = BatchSender::new(&via_survivor, BatchSenderOptions::default());
    producer
        .send_records("failover", 0, &records("stream-before", 1))
        .await
        .expect("streamed produce before the kill");

    brokers[leader_index].kill9().expect("kill the leader");

    let ack = via_survivor
        .produce("failover", 0, &records("after", 2), Acks::All)
        .await
        .expect("produce after the kill, once the controller moved the leader");
    assert!(ack.base_offset >= 0, "{ack:?}");
    let new_leader = via_survivor
        .leader_for("failover", 0)
        .await
        .expect("new leader");
    assert_ne!(new_leader.broker_id(), old_leader);
    producer
        .send_records("failover", 0, &records("stream-after", 1))
        .await
        .expect("streamed produce after the kill");
    via_victim
        .produce("failover", 0, &records("victim-bootstrap", 1), Acks::All)
        .await
        .expect("produce through a client whose bootstrap broker died");

    // What was acknowledged with acks=all before the kill was on every ISR member, so the
    // new leader has it, first and in order; then what was written to the new leader.
    let seen = read_all(&via_survivor, "failover", 0).await;
    assert_eq!(seen[..2], ["before-0", "before-1"], "{seen:?}");
    for value in ["after-0", "after-1", "stream-after-0", "victim-bootstrap-0"] {
        assert!(
            seen.iter().any(|v| v == value),
            "{value} missing from {seen:?}"
        );
    }
}
