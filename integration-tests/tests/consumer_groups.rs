//! Consumer groups end to end on three real brokers: `Consumer::subscribe` members split a
//! topic's partitions, read every record once, refuse stale commits, and take over the
//! partitions of a member that vanished without leaving once its session times out.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use support::cluster::{LIMIT, create, eventually, start_cluster_with};
use tributary_client::{
    Acks, Client, Consumer, ConsumerOptions, ErrorCode, GroupOffset, GroupOptions, OffsetReset,
    TopicPartition,
};
use tributary_integration_tests::ZooKeeper;
use tributary_record::Record;

const TOPIC: &str = "events";
const PARTITIONS: i32 = 6;

/// Short timers so the scenario runs in seconds: 1 s minimum session, a 500 ms initial delay.
const BROKER_OVERRIDES: &[(&str, &str)] = &[
    ("group.min.session.timeout.ms", "1000"),
    ("group.initial.rebalance.delay.ms", "500"),
    ("offsets.topic.num.partitions", "5"),
];

fn group_options(group: &str) -> GroupOptions {
    GroupOptions {
        session_timeout: Duration::from_secs(3),
        heartbeat_interval: Duration::from_millis(300),
        max_poll_interval: Duration::from_secs(10),
        // At-least-once with explicit commits after processing each poll.
        enable_auto_commit: false,
        ..GroupOptions::new(group)
    }
}

async fn produce(client: &Client, from: usize, per_partition: usize) {
    for partition in 0..PARTITIONS {
        let records: Vec<Record> = (from..from + per_partition)
            .map(|i| Record {
                key: None,
                value: Some(Bytes::from(format!("p{partition}-{i}"))),
                timestamp: 1_700_000_000_000,
                headers: vec![],
            })
            .collect();
        client
            .produce(TOPIC, partition, &records, Acks::All)
            .await
            .expect("produce");
    }
}

/// What one running member reports.
#[derive(Debug, Default)]
struct Seen {
    /// (partition, offset) of every record it was handed.
    records: Vec<(i32, i64)>,
    /// Its generation and partitions after its last poll.
    generation: i32,
    member_id: String,
    assignment: Vec<TopicPartition>,
}

/// Runs a subscribed consumer that commits after each poll, until `stop`.
fn spawn_member(
    client: Client,
    group: &str,
    stop: Arc<AtomicBool>,
) -> (Arc<Mutex<Seen>>, tokio::task::JoinHandle<Consumer>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let report = seen.clone();
    let options = ConsumerOptions {
        auto_offset_reset: OffsetReset::Earliest,
        group: Some(group_options(group)),
        ..ConsumerOptions::default()
    };
    let handle = tokio::spawn(async move {
        let mut consumer = Consumer::new(&client, options).expect("consumer");
        consumer.subscribe(&[TOPIC]).expect("subscribe");
        while !stop.load(Ordering::Acquire) {
            let records = consumer
                .poll(Duration::from_millis(200))
                .await
                .expect("poll");
            if !records.is_empty() {
                consumer
                    .commit_sync()
                    .await
                    .expect("commit after processing");
            }
            let mut seen = report.lock().unwrap();
            seen.records
                .extend(records.iter().map(|r| (r.partition, r.offset)));
            if let Some((generation, member_id)) = consumer.group_generation() {
                seen.generation = generation;
                seen.member_id = member_id;
            }
            seen.assignment = consumer.assignment();
        }
        consumer
    });
    (seen, handle)
}

fn records_of(members: &[&Arc<Mutex<Seen>>]) -> Vec<(i32, i64)> {
    members
        .iter()
        .flat_map(|m| m.lock().unwrap().records.clone())
        .collect()
}

fn all_offsets(per_partition: i64) -> BTreeSet<(i32, i64)> {
    (0..PARTITIONS)
        .flat_map(|p| (0..per_partition).map(move |o| (p, o)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_split_partitions_read_once_refuse_stale_commits_and_take_over() {
    let zookeeper = ZooKeeper::start().unwrap();
    let brokers = start_cluster_with(&zookeeper, &[1, 2, 3], BROKER_OVERRIDES).await;
    create(&brokers[0], TOPIC, PARTITIONS, 3).await;
    let client = Client::connect(&brokers[0].bootstrap_server())
        .await
        .unwrap()
        .with_retry_timeout(Duration::from_secs(60));
    produce(&client, 0, 100).await;

    // Three members of "readers", one member of "auditors".
    let stop = Arc::new(AtomicBool::new(false));
    let stop_first = Arc::new(AtomicBool::new(false));
    let (a, a_task) = spawn_member(client.clone(), "readers", stop_first.clone());
    let (b, b_task) = spawn_member(client.clone(), "readers", stop.clone());
    let (c, c_task) = spawn_member(client.clone(), "readers", stop.clone());
    let (auditor, auditor_task) = spawn_member(client.clone(), "auditors", stop.clone());

    // Together they read every record once, in a generation giving each two partitions.
    let members = [&a, &b, &c];
    eventually(
        "the readers to settle and read everything",
        LIMIT * 2,
        || async {
            let settled = {
                let views: Vec<_> = members.iter().map(|m| m.lock().unwrap()).collect();
                views
                    .iter()
                    .all(|v| v.assignment.len() == 2 && v.generation == views[0].generation)
            };
            (settled && records_of(&members).len() >= 600).then_some(())
        },
    )
    .await;
    let read = records_of(&members);
    let distinct: BTreeSet<(i32, i64)> = read.iter().copied().collect();
    assert_eq!(distinct, all_offsets(100), "every record");
    assert_eq!(read.len(), 600, "exactly once when nobody fails");
    let owned: BTreeSet<TopicPartition> = members
        .iter()
        .flat_map(|m| m.lock().unwrap().assignment.clone())
        .collect();
    assert_eq!(owned.len(), 6, "disjoint 2/2/2: {owned:?}");

    // The other group read everything too, on its own.
    eventually("the auditor to read everything", LIMIT, || async {
        (auditor.lock().unwrap().records.len() >= 600).then_some(())
    })
    .await;
    let audited: BTreeSet<(i32, i64)> = auditor.lock().unwrap().records.iter().copied().collect();
    assert_eq!(audited, all_offsets(100));

    // Commits naming a stale generation or an unknown member are refused; nothing changes.
    let group = client.group("readers").unwrap();
    let all: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(TOPIC, p))
        .collect();
    let before = group.committed(&all).await.unwrap();
    assert!(
        before
            .iter()
            .all(|(_, c)| c.as_ref().map(|c| c.offset) == Some(100))
    );
    let (generation, member_id) = {
        let seen = a.lock().unwrap();
        (seen.generation, seen.member_id.clone())
    };
    let rewind = [GroupOffset::new(TOPIC, 0, 3)];
    let stale = group.commit_as(generation - 1, &member_id, &rewind).await;
    assert_eq!(
        stale.unwrap_err().error_code(),
        Some(ErrorCode::IllegalGeneration)
    );
    let unknown = group.commit_as(generation, "nobody", &rewind).await;
    assert_eq!(
        unknown.unwrap_err().error_code(),
        Some(ErrorCode::UnknownMemberId)
    );
    let simple = group.commit(&rewind).await;
    assert_eq!(
        simple.unwrap_err().error_code(),
        Some(ErrorCode::UnknownMemberId)
    );
    assert_eq!(group.committed(&all).await.unwrap(), before);

    // Member a vanishes without leaving (its task ends and the consumer is dropped: no
    // LeaveGroup, no heartbeat). After its 3 s session the others take its partitions over
    // from the committed offsets: no record skipped.
    stop_first.store(true, Ordering::Release);
    drop(a_task.await.unwrap());
    let a_partitions = a.lock().unwrap().assignment.clone();
    produce(&client, 100, 20).await;
    let survivors = [&b, &c];
    eventually(
        "b and c to take over and read the new records",
        LIMIT * 2,
        || async {
            let covered: BTreeSet<TopicPartition> = survivors
                .iter()
                .flat_map(|m| m.lock().unwrap().assignment.clone())
                .collect();
            let read: BTreeSet<(i32, i64)> = records_of(&[&a, &b, &c]).into_iter().collect();
            (covered.len() == 6 && read == all_offsets(120)).then_some(())
        },
    )
    .await;
    let taken_over: Vec<TopicPartition> = a_partitions.clone();
    for tp in &taken_over {
        let by_survivors: BTreeMap<i64, usize> = survivors
            .iter()
            .flat_map(|m| m.lock().unwrap().records.clone())
            .filter(|(p, _)| *p == tp.partition)
            .fold(BTreeMap::new(), |mut counts, (_, offset)| {
                *counts.entry(offset).or_default() += 1;
                counts
            });
        assert!(
            by_survivors.keys().all(|offset| *offset >= 100),
            "{tp}: resumed at a's committed offset 100, read again nothing a committed"
        );
    }

    stop.store(true, Ordering::Release);
    for task in [b_task, c_task, auditor_task] {
        let consumer = task.await.unwrap();
        consumer.close().await.expect("close leaves the group");
    }
}
