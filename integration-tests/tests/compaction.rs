//! Log compaction on a real broker: a `cleanup.policy=compact` topic keeps the latest value of
//! every key at its original offset, drops older values, and stays so across cleaner runs, a
//! clean restart and a `kill -9`.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use support::client_reads::partition_records;
use support::cluster::eventually;
use support::*;
use tributary_client::Client;
use tributary_record::{DecodedRecord, Record};

const TOPIC: &str = "compacted";
const KEYS: usize = 8;

/// key → (offset, value) of its latest record as produced; `None` value = tombstone.
type Latest = BTreeMap<String, (i64, Option<String>)>;

/// Produces `rounds` rounds of one update per key (one record per batch), tombstoning
/// `key-6` in round `tombstone_round` (if any); returns the offsets written.
async fn produce_rounds(
    broker: &tributary_integration_tests::Broker,
    rounds: std::ops::Range<usize>,
    tombstone_round: Option<usize>,
    latest: &mut Latest,
) {
    let mut client = broker.broker_client().unwrap();
    for round in rounds {
        for key in 0..KEYS {
            let key = format!("key-{key}");
            let value = (tombstone_round != Some(round) || key != "key-6")
                .then(|| format!("{key}-round-{round}-{}", "v".repeat(60)));
            let record = Record {
                key: Some(Bytes::from(key.clone())),
                value: value.clone().map(Bytes::from),
                timestamp: t0() + round as i64,
                headers: vec![],
            };
            let (offset, _) = produce_ok(&mut client, TOPIC, 0, batch(&[record])).await;
            latest.insert(key, (offset, value));
        }
    }
}

/// The topic's first dirty offset in `cleaner-offset-checkpoint` (0 when absent).
fn cleaner_checkpoint(broker: &tributary_integration_tests::Broker) -> i64 {
    let text = std::fs::read_to_string(broker.data_dir().join("cleaner-offset-checkpoint"))
        .unwrap_or_default();
    text.lines()
        .skip(2)
        .find_map(|line| {
            let mut fields = line.split(' ');
            (fields.next() == Some(TOPIC) && fields.next() == Some("0"))
                .then(|| fields.next().unwrap().parse().unwrap())
        })
        .unwrap_or(0)
}

fn key_of(record: &DecodedRecord) -> String {
    String::from_utf8(record.key.as_ref().expect("keyed").to_vec()).unwrap()
}

fn value_of(record: &DecodedRecord) -> Option<String> {
    record
        .value
        .as_ref()
        .map(|v| String::from_utf8(v.to_vec()).unwrap())
}

/// Checks what a consumer reads against what was produced: every key's latest value at its
/// original offset (a tombstoned key: its tombstone there, or nothing once the tombstone
/// expired), no older value of a key below `clean_below`, and every record one that was
/// produced (same key and value) at increasing offsets.
fn check_compacted(read: &[DecodedRecord], latest: &Latest, clean_below: i64) {
    let mut last_offset = -1;
    let mut seen_below: BTreeMap<String, i64> = BTreeMap::new();
    let mut newest: BTreeMap<String, (i64, Option<String>)> = BTreeMap::new();
    for record in read {
        assert!(record.offset > last_offset, "offsets increase");
        last_offset = record.offset;
        let key = key_of(record);
        if let Some(value) = value_of(record) {
            assert!(
                value.starts_with(&format!("{key}-round-")),
                "{key} at {}: {value}",
                record.offset
            );
        }
        if record.offset < clean_below
            && let Some(previous) = seen_below.insert(key.clone(), record.offset)
        {
            panic!(
                "{key} has two records below the cleaned offset {clean_below}: {previous} and {}",
                record.offset
            );
        }
        newest.insert(key, (record.offset, value_of(record)));
    }
    for (key, (offset, value)) in latest {
        match (newest.get(key), value) {
            (Some(found), _) => assert_eq!(found, &(*offset, value.clone()), "{key}"),
            (None, None) => {} // a tombstone past delete.retention.ms: the key is gone
            (None, Some(_)) => panic!("{key}: its latest value at {offset} is missing"),
        }
    }
}

async fn read_compacted(broker: &tributary_integration_tests::Broker) -> Vec<DecodedRecord> {
    let client = Client::connect(&broker.bootstrap_server()).await.unwrap();
    partition_records(&client, TOPIC, 0).await
}

/// Waits until the cleaner has cleaned beyond `offset` (its checkpoint says so) and returns
/// the checkpoint.
async fn cleaned_beyond(broker: &tributary_integration_tests::Broker, offset: i64) -> i64 {
    eventually(
        &format!("the cleaner to clean beyond offset {offset}"),
        Duration::from_secs(60),
        || async {
            let checkpoint = cleaner_checkpoint(broker);
            (checkpoint > offset).then_some(checkpoint)
        },
    )
    .await
}

#[tokio::test]
async fn a_compacted_topic_keeps_the_latest_value_per_key_across_cleaner_runs_and_restarts() {
    let (_zk, mut broker) = start_with(&[
        ("log.cleaner.backoff.ms", "100"),
        ("log.cleaner.min.cleanable.ratio", "0.01"),
        // Checkpoints (the cleaner's too) are also written on this period.
        ("log.flush.offset.checkpoint.interval.ms", "200"),
    ])
    .await;
    create_topic(
        &broker,
        TOPIC,
        1,
        &[
            ("cleanup.policy", "compact"),
            ("segment.bytes", "2048"),
            ("delete.retention.ms", "0"),
        ],
    )
    .await;
    wait_online(&broker, TOPIC, 1).await;

    // 30 rounds × 8 keys of ~100-byte batches: about 12 segments; key-6 deleted in round 20.
    let mut latest = Latest::new();
    produce_rounds(&broker, 0..30, Some(20), &mut latest).await;
    let produced = (30 * KEYS) as i64;
    let checkpoint = cleaned_beyond(&broker, produced / 2).await;
    let read = read_compacted(&broker).await;
    check_compacted(&read, &latest, checkpoint);
    assert!(
        read.len() < produced as usize / 2,
        "older values are gone: {} of {produced} records left",
        read.len()
    );
    assert!(read.iter().all(|r| r.offset < produced));

    // A clean restart: the same records, at the same offsets.
    broker.restart().await.unwrap();
    wait_online(&broker, TOPIC, 1).await;
    let checkpoint = cleaner_checkpoint(&broker).max(checkpoint);
    let after_restart = read_compacted(&broker).await;
    check_compacted(&after_restart, &latest, checkpoint);
    assert!(after_restart.len() <= read.len());

    // More updates (key-6 comes back), more cleaner runs, then kill -9 whenever the cleaner
    // is: whatever it was doing, the restarted broker serves every latest value.
    produce_rounds(&broker, 30..45, None, &mut latest).await;
    let produced = (45 * KEYS) as i64;
    let checkpoint = cleaned_beyond(&broker, 30 * KEYS as i64).await;
    produce_rounds(&broker, 45..50, Some(47), &mut latest).await;
    broker.kill9().unwrap();
    broker.restart().await.unwrap();
    wait_online(&broker, TOPIC, 1).await;
    let after_kill = read_compacted(&broker).await;
    check_compacted(&after_kill, &latest, checkpoint);
    assert!(
        after_kill.len() < produced as usize / 2,
        "{}",
        after_kill.len()
    );

    // The restarted cleaner keeps compacting the new data.
    let checkpoint = cleaned_beyond(&broker, 45 * KEYS as i64).await;
    check_compacted(&read_compacted(&broker).await, &latest, checkpoint);
    broker.terminate().await.unwrap();
}
