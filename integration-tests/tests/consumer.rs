//! The `Consumer` and `tributary consume` against real brokers: reading on through a leader
//! killed with SIGKILL without gaps or duplicates, seeks and the reset policy, compressed
//! batches, and the CLI round-tripping lines through `--format` and `--json`.

mod support;

use support::client_reads::{partition_records, value_text};

use std::io::Write;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tributary_client::{
    Acks, Client, ClientError, Compression, Consumer, ConsumerOptions, ConsumerRecord,
    FetchOptions, OffsetReset, Record, TimestampType, TopicPartition,
};
use tributary_integration_tests::{Broker, ZooKeeper};

use support::cluster::{LIMIT, start_cluster};
use support::t0;

fn value_records(prefix: &str, from: usize, count: usize, base_timestamp: i64) -> Vec<Record> {
    (from..from + count)
        .map(|i| Record {
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(format!("{prefix}-{i}"))),
            timestamp: base_timestamp + i as i64,
            headers: Vec::new(),
        })
        .collect()
}

fn options(reset: OffsetReset) -> ConsumerOptions {
    ConsumerOptions {
        auto_offset_reset: reset,
        ..ConsumerOptions::default()
    }
}

fn summary(records: &[ConsumerRecord]) -> Vec<(i32, i64, String)> {
    records
        .iter()
        .map(|r| {
            let value = r.value.clone().unwrap_or_default();
            (
                r.partition,
                r.offset,
                String::from_utf8_lossy(&value).into_owned(),
            )
        })
        .collect()
}

/// Polls until `count` records arrived, failing after [`LIMIT`].
async fn poll_until(consumer: &mut Consumer, count: usize) -> Vec<ConsumerRecord> {
    let started = Instant::now();
    let mut seen = Vec::new();
    while seen.len() < count {
        assert!(
            started.elapsed() < LIMIT,
            "only {} of {count} records after {LIMIT:?}",
            seen.len()
        );
        seen.extend(
            consumer
                .poll(Duration::from_millis(200))
                .await
                .expect("poll"),
        );
    }
    seen
}

/// Every (partition, offset, value) of `partition`, read back through the client.
async fn log_of(client: &Client, topic: &str, partition: i32) -> Vec<(i32, i64, String)> {
    partition_records(client, topic, partition)
        .await
        .iter()
        .map(|r| (partition, r.offset, value_text(r)))
        .collect()
}

#[tokio::test]
async fn a_consumer_reads_on_through_a_leader_kill_without_gaps_or_duplicates() {
    let zookeeper = ZooKeeper::start().expect("start ZooKeeper");
    let mut brokers = start_cluster(&zookeeper, &[1, 2, 3]).await;
    let admin = Client::connect(&brokers[0].bootstrap_server())
        .await
        .expect("connect");
    admin
        .create_topic("moving", 2, 3, &[])
        .await
        .expect("create topic");
    let victim = admin
        .leader_for("moving", 0)
        .await
        .expect("leader")
        .broker_id();
    let victim_index = brokers.iter().position(|b| b.id() == victim).unwrap();
    let survivor = &brokers[(victim_index + 1) % brokers.len()];
    let producer = Client::connect(&survivor.bootstrap_server())
        .await
        .expect("connect");
    for chunk in 0..20 {
        for partition in 0..2 {
            producer
                .produce(
                    "moving",
                    partition,
                    &value_records(&format!("p{partition}"), chunk * 10, 10, t0()),
                    Acks::All,
                )
                .await
                .expect("produce before the kill");
        }
    }

    // Small fetches and polls, so the kill lands in the middle of the reading.
    let client = Client::connect(&survivor.bootstrap_server())
        .await
        .expect("connect");
    let mut consumer = Consumer::new(
        &client,
        ConsumerOptions {
            group: None,
            fetch: FetchOptions {
                max_bytes: 512,
                max_wait_ms: 100,
                min_bytes: 1,
            },
            auto_offset_reset: OffsetReset::Earliest,
            max_poll_records: 10,
        },
    )
    .expect("consumer");
    consumer.assign([
        TopicPartition::new("moving", 0),
        TopicPartition::new("moving", 1),
    ]);
    let mut consumed = poll_until(&mut consumer, 60).await;
    assert!(consumed.len() < 400, "read too fast: {}", consumed.len());

    brokers[victim_index].kill9().expect("kill the leader");
    // More records, written to the new leader once the controller has elected it.
    for chunk in 20..25 {
        for partition in 0..2 {
            producer
                .produce(
                    "moving",
                    partition,
                    &value_records(&format!("p{partition}"), chunk * 10, 10, t0()),
                    Acks::All,
                )
                .await
                .expect("produce after the kill");
        }
    }
    let new_leader = producer.leader_for("moving", 0).await.expect("leader");
    assert_ne!(new_leader.broker_id(), victim);

    // The log may hold a record twice if a produce was retried after a lost connection
    // (at-least-once), so the reference is the log itself: the consumer must return exactly
    // its records, in offset order, each once.
    let mut expected = log_of(&producer, "moving", 0).await;
    expected.extend(log_of(&producer, "moving", 1).await);
    assert!(expected.len() >= 500, "{}", expected.len());
    consumed.extend(poll_until(&mut consumer, expected.len() - consumed.len()).await);
    let mut got = summary(&consumed);
    got.sort_by_key(|(partition, offset, _)| (*partition, *offset));
    assert_eq!(got.len(), expected.len(), "duplicates or extra records");
    assert_eq!(got, expected);
    // Per partition the records came in offset order, and the positions are at the end.
    for partition in 0..2 {
        let offsets: Vec<i64> = consumed
            .iter()
            .filter(|r| r.partition == partition)
            .map(|r| r.offset)
            .collect();
        assert!(offsets.windows(2).all(|w| w[1] == w[0] + 1), "p{partition}");
        let tp = TopicPartition::new("moving", partition);
        assert_eq!(
            consumer.position(&tp).await.unwrap(),
            *offsets.last().unwrap() + 1
        );
    }
    for value in ["p0-0", "p0-199", "p0-249", "p1-249"] {
        assert!(
            got.iter().any(|(_, _, v)| v == value),
            "{value} was acknowledged but not consumed"
        );
    }
    assert!(
        consumer
            .poll(Duration::from_millis(300))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn seeks_and_the_reset_policy_behave_as_documented() {
    let (_zookeeper, broker) = support::start().await;
    let client = Client::connect(&broker.bootstrap_server())
        .await
        .expect("connect");
    client
        .create_topic("seeks", 1, 1, &[])
        .await
        .expect("create topic");
    let base = t0();
    // Offsets 0..10 plain, 10..20 zstd: timestamps base + offset.
    client
        .produce("seeks", 0, &value_records("v", 0, 10, base), Acks::All)
        .await
        .expect("produce");
    client
        .produce_compressed(
            "seeks",
            0,
            &value_records("v", 10, 10, base),
            Acks::All,
            Compression::Zstd,
        )
        .await
        .expect("produce zstd");
    let tp = TopicPartition::new("seeks", 0);
    let values = |records: &[ConsumerRecord]| -> Vec<String> {
        summary(records).into_iter().map(|(_, _, v)| v).collect()
    };

    // auto.offset.reset=earliest without a position: everything, compressed batch included.
    let mut earliest = Consumer::new(&client, options(OffsetReset::Earliest)).unwrap();
    earliest.assign([tp.clone()]);
    let all = poll_until(&mut earliest, 20).await;
    assert_eq!(
        values(&all),
        (0..20).map(|i| format!("v-{i}")).collect::<Vec<_>>()
    );
    assert_eq!(all[13].timestamp, base + 13);
    assert_eq!(all[13].timestamp_type, TimestampType::CreateTime);
    assert_eq!(all[13].key.as_deref(), Some(&b"k13"[..]));
    assert_eq!(&*all[13].topic, "seeks");

    // seek_to_timestamp: the first record at or after it; after the last record: the end.
    earliest.seek_to_timestamp([&tp], base + 12).unwrap();
    assert_eq!(earliest.position(&tp).await.unwrap(), 12);
    assert_eq!(
        poll_until(&mut earliest, 8).await[0].value.as_deref(),
        Some(&b"v-12"[..])
    );
    earliest.seek_to_timestamp([&tp], base + 1_000_000).unwrap();
    assert_eq!(earliest.position(&tp).await.unwrap(), 20);
    // seek_to_beginning, then seek_to_end, and an absolute seek into the compressed batch.
    earliest.seek_to_beginning([&tp]).unwrap();
    assert_eq!(poll_until(&mut earliest, 1).await[0].offset, 0);
    earliest.seek_to_end([&tp]).unwrap();
    assert!(
        earliest
            .poll(Duration::from_millis(300))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(earliest.position(&tp).await.unwrap(), 20);
    earliest.seek(&tp, 15).unwrap();
    assert_eq!(poll_until(&mut earliest, 5).await[0].offset, 15);

    // latest: only records produced after the position was looked up.
    let mut latest = Consumer::new(&client, options(OffsetReset::Latest)).unwrap();
    latest.assign([tp.clone()]);
    assert!(
        latest
            .poll(Duration::from_millis(300))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(latest.position(&tp).await.unwrap(), 20);
    client
        .produce("seeks", 0, &value_records("v", 20, 1, base), Acks::All)
        .await
        .expect("produce");
    assert_eq!(values(&poll_until(&mut latest, 1).await), vec!["v-20"]);

    // none: no position is an error, and so is an offset past the end.
    let mut none = Consumer::new(&client, options(OffsetReset::None)).unwrap();
    none.assign([tp.clone()]);
    let error = none.poll(Duration::from_millis(300)).await.unwrap_err();
    assert!(matches!(error, ClientError::NoOffset { .. }), "{error}");
    none.seek(&tp, 500).unwrap();
    let error = none.poll(Duration::from_secs(10)).await.unwrap_err();
    assert!(
        matches!(error, ClientError::OffsetOutOfRange { offset: 500, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("OFFSET_OUT_OF_RANGE"), "{error}");
    // ...and under earliest / latest the same offset resets.
    earliest.seek(&tp, 500).unwrap();
    assert_eq!(poll_until(&mut earliest, 1).await[0].offset, 0);
    latest.seek(&tp, 500).unwrap();
    assert!(
        latest
            .poll(Duration::from_millis(500))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(latest.position(&tp).await.unwrap(), 21);

    // pause / resume.
    latest.pause([&tp]).unwrap();
    client
        .produce("seeks", 0, &value_records("v", 21, 1, base), Acks::All)
        .await
        .expect("produce");
    assert!(
        latest
            .poll(Duration::from_millis(500))
            .await
            .unwrap()
            .is_empty()
    );
    latest.resume([&tp]).unwrap();
    assert_eq!(values(&poll_until(&mut latest, 1).await), vec!["v-21"]);
}

fn expect_success(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{what}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

fn produce_lines(broker: &Broker, topic: &str, partition: i32, input: &[u8]) {
    let mut produce = broker
        .cli()
        .unwrap()
        .args(["produce", topic, "--partition", &partition.to_string()])
        .args([
            "--key-separator",
            ":",
            "--header",
            "src=cli",
            "--acks",
            "-1",
        ])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tributary produce");
    produce.stdin.take().unwrap().write_all(input).unwrap();
    let output = produce.wait_with_output().unwrap();
    expect_success("tributary produce", &output);
}

#[tokio::test]
async fn the_cli_round_trips_lines_through_format_and_json() {
    let (_zookeeper, broker) = support::start().await;
    let client = Client::connect(&broker.bootstrap_server())
        .await
        .expect("connect");
    client
        .create_topic("lines", 2, 1, &[])
        .await
        .expect("create topic");
    let lines: Vec<String> = (0..5).map(|i| format!("key{i}:value {i} ünï")).collect();
    produce_lines(
        &broker,
        "lines",
        0,
        format!("{}\n", lines.join("\n")).as_bytes(),
    );
    // Partition 1: one line whose value is not UTF-8.
    produce_lines(&broker, "lines", 1, b"bin:\xff\xfex\n");

    let output = broker
        .cli()
        .unwrap()
        .args(["consume", "lines", "-p", "0", "--from-beginning", "-c", "5"])
        .args(["-f", "%t|%p|%o|%k|%s|%h|%K|%S"])
        .output()
        .unwrap();
    expect_success("consume --format", &output);
    let printed: Vec<String> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let expected: Vec<String> = (0..5)
        .map(|i| {
            let value = format!("value {i} ünï");
            format!("lines|0|{i}|key{i}|{value}|src=cli|4|{}", value.len())
        })
        .collect();
    assert_eq!(printed, expected);
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("Processed a total of 5 messages"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // --json over every partition (the default), with a timestamp start.
    let output = broker
        .cli()
        .unwrap()
        .args(["consume", "lines", "--from-timestamp", "0", "--json"])
        .args(["--max-messages", "6", "--timeout-ms", "20000"])
        .output()
        .unwrap();
    expect_success("consume --json", &output);
    let mut objects: Vec<serde_json::Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect();
    objects.sort_by_key(|o| (o["partition"].as_i64(), o["offset"].as_i64()));
    assert_eq!(objects.len(), 6);
    for (i, object) in objects[..5].iter().enumerate() {
        assert_eq!(object["topic"], "lines");
        assert_eq!(object["partition"], 0);
        assert_eq!(object["offset"], i as i64);
        assert_eq!(object["key"], format!("key{i}"));
        assert_eq!(object["value"], format!("value {i} ünï"));
        assert!(object.get("value_encoding").is_none());
        assert_eq!(object["timestamp_type"], "create_time");
        assert!(object["timestamp"].as_i64().unwrap() > 0);
        assert_eq!(
            object["headers"],
            serde_json::json!([{"key": "src", "value": "cli"}])
        );
    }
    let binary = &objects[5];
    assert_eq!(
        (binary["partition"].as_i64(), binary["offset"].as_i64()),
        (Some(1), Some(0))
    );
    assert_eq!(binary["key"], "bin");
    assert_eq!(binary["value"], "//54");
    assert_eq!(binary["value_encoding"], "base64");

    // Errors: one line on stderr and a failure exit code.
    let failures: [(&[&str], &str); 2] = [
        (
            &["consume", "lines", "-p", "0", "--offset", "100"],
            "OFFSET_OUT_OF_RANGE",
        ),
        (
            &["consume", "no-such-topic", "--from-beginning"],
            "UNKNOWN_TOPIC_OR_PARTITION",
        ),
    ];
    for (args, expected) in failures {
        let output = broker.cli().unwrap().args(args).output().unwrap();
        assert!(!output.status.success(), "{args:?} succeeded");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: {stderr}");
        assert!(
            lines[0].starts_with("error: ") && lines[0].contains(expected),
            "{args:?}: {stderr}"
        );
    }
}
