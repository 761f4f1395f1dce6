//! Group administration on real brokers: a group with two `Consumer::subscribe` members is
//! listed (`tributary groups list`, every broker asked), described with its members and their
//! partitions, refused deletion while it has members and deleted once they closed — its
//! offsets then stay gone across a restart of its coordinator; and offsets expire after
//! `offsets.retention.minutes` by Kafka's rules (a simple group after its commit, a consumer
//! group only once it has been Empty that long, never while its members subscribe).

mod support;

use support::groups::produce_numbered;

use std::collections::BTreeSet;
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::cluster::{LIMIT, create, eventually, start_cluster_with};
use tributary_client::{
    Client, Consumer, ConsumerOptions, ErrorCode, GroupOffset, GroupOptions, GroupState,
    OffsetReset, TopicPartition,
};
use tributary_integration_tests::{Broker, ZooKeeper};

const TOPIC: &str = "events";

/// Runs `tributary --bootstrap-server <broker> args...`.
fn cli(broker: &Broker, args: &[&str]) -> Output {
    broker
        .cli()
        .expect("tributary binary")
        .args(args)
        .output()
        .expect("run tributary")
}

/// [`cli`], asserting success; returns stdout.
fn ok(broker: &Broker, args: &[&str]) -> String {
    let output = cli(broker, args);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{args:?}: {:?}\nstdout: {stdout}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn group_options(group: &str) -> GroupOptions {
    GroupOptions {
        client_id: format!("{group}-app"),
        session_timeout: Duration::from_secs(6),
        heartbeat_interval: Duration::from_millis(500),
        max_poll_interval: Duration::from_secs(20),
        enable_auto_commit: false,
        ..GroupOptions::new(group)
    }
}

async fn produce(client: &Client, partitions: i32, per_partition: usize) {
    produce_numbered(client, TOPIC, partitions, 0..per_partition).await;
}

/// What a running member reports.
#[derive(Debug, Default)]
struct Seen {
    read: usize,
    generation: i32,
    member_id: String,
    assignment: Vec<TopicPartition>,
}

/// A subscribed consumer that commits after each poll that returned records, until `stop`;
/// then it closes (LeaveGroup).
fn spawn_member(
    client: Client,
    group: &str,
    stop: Arc<AtomicBool>,
) -> (Arc<Mutex<Seen>>, tokio::task::JoinHandle<()>) {
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
                consumer.commit_sync().await.expect("commit");
            }
            let mut seen = report.lock().unwrap();
            seen.read += records.len();
            if let Some((generation, member_id)) = consumer.group_generation() {
                seen.generation = generation;
                seen.member_id = member_id;
            }
            seen.assignment = consumer.assignment();
        }
        consumer.close().await.expect("close leaves the group");
    });
    (seen, handle)
}

/// The lines of `text` that start with `prefix` followed by spaces.
fn rows<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|line| {
            line.strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with(' '))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_is_listed_described_and_deleted_only_once_its_members_are_gone() {
    let zookeeper = ZooKeeper::start().unwrap();
    let mut brokers = start_cluster_with(
        &zookeeper,
        &[1, 2, 3],
        &[
            ("group.min.session.timeout.ms", "1000"),
            ("group.initial.rebalance.delay.ms", "500"),
            ("offsets.topic.num.partitions", "6"),
        ],
    )
    .await;
    create(&brokers[0], TOPIC, 4, 3).await;
    let client = Client::connect(&brokers[0].bootstrap_server())
        .await
        .unwrap()
        .with_retry_timeout(Duration::from_secs(60));
    produce(&client, 4, 25).await;

    // Two members of "readers"; "ops" has only simple commits.
    let stop = Arc::new(AtomicBool::new(false));
    let (a, a_task) = spawn_member(client.clone(), "readers", stop.clone());
    let (b, b_task) = spawn_member(client.clone(), "readers", stop.clone());
    let ops = client.group("ops").unwrap();
    ops.commit(&[GroupOffset::new(TOPIC, 0, 10)])
        .await
        .expect("simple commit");
    eventually(
        "the readers to settle and read everything",
        LIMIT * 2,
        || async {
            let (a, b) = (a.lock().unwrap(), b.lock().unwrap());
            (a.assignment.len() == 2
                && b.assignment.len() == 2
                && a.generation == b.generation
                && a.read + b.read >= 100)
                .then_some(())
        },
    )
    .await;
    let (a_id, a_partitions) = {
        let a = a.lock().unwrap();
        (a.member_id.clone(), a.assignment.clone())
    };
    let (b_id, b_partitions) = {
        let b = b.lock().unwrap();
        (b.member_id.clone(), b.assignment.clone())
    };
    let readers = client.group("readers").unwrap();
    let coordinator = readers.find_coordinator().await.unwrap();

    // The library: described with both members and their partitions.
    let description = eventually("readers to be Stable with commits", LIMIT, || async {
        let description = readers.describe().await.ok()?;
        let committed = readers.committed_all().await.ok()?;
        (description.state == GroupState::Stable
            && committed.len() == 4
            && committed.iter().all(|(_, c)| c.offset == 25))
        .then_some(description)
    })
    .await;
    assert_eq!(
        (
            description.protocol_type.as_str(),
            description.protocol.as_str()
        ),
        ("consumer", "range")
    );
    assert_eq!(description.coordinator.broker_id, coordinator.broker_id);
    let members: BTreeSet<(String, String, String, Vec<TopicPartition>)> = description
        .members
        .iter()
        .map(|m| {
            let mut partitions = m.assignment.clone();
            partitions.sort();
            (
                m.member_id.clone(),
                m.client_id.clone(),
                m.client_host.clone(),
                partitions,
            )
        })
        .collect();
    let mut expected = BTreeSet::new();
    for (id, partitions) in [(&a_id, &a_partitions), (&b_id, &b_partitions)] {
        let mut partitions = partitions.clone();
        partitions.sort();
        expected.insert((
            id.clone(),
            "readers-app".to_owned(),
            "/127.0.0.1".to_owned(),
            partitions,
        ));
    }
    assert_eq!(members, expected);

    // `groups list` asks every broker: each group once, with its coordinator.
    let listed = ok(&brokers[1], &["groups", "list"]);
    let ops_coordinator = ops.find_coordinator().await.unwrap().broker_id;
    assert_eq!(listed.lines().next(), Some("GROUP    COORDINATOR  STATE"));
    assert!(
        listed.contains(&format!("ops      {ops_coordinator:<11}  Empty\n")),
        "{listed}"
    );
    assert!(
        listed.contains(&format!("readers  {:<11}  Stable\n", coordinator.broker_id)),
        "{listed}"
    );
    assert_eq!(listed.lines().count(), 3, "{listed}");
    let stable = client
        .admin()
        .list_groups(&[GroupState::Stable])
        .await
        .unwrap();
    assert_eq!(
        stable
            .iter()
            .map(|g| g.group_id.as_str())
            .collect::<Vec<_>>(),
        ["readers"]
    );
    assert_eq!(
        ok(&brokers[2], &["groups", "list", "--state", "empty"])
            .lines()
            .count(),
        2
    );

    // `groups describe`: the members, and each partition's owner.
    let described = ok(&brokers[0], &["groups", "describe", "readers"]);
    assert!(
        described.contains(&format!(
            "state Stable, protocol consumer/range, generation {}, 2 members\n",
            description.generation_id
        )),
        "{described}"
    );
    for (id, partitions) in [(&a_id, &a_partitions), (&b_id, &b_partitions)] {
        let member_rows = rows(&described, id);
        // One member row, one lag row per owned partition.
        assert_eq!(member_rows.len(), 1, "{described}");
        assert!(member_rows[0].contains("readers-app"), "{described}");
        assert!(member_rows[0].contains("/127.0.0.1"), "{described}");
        let mut ids: Vec<i32> = partitions.iter().map(|tp| tp.partition).collect();
        ids.sort_unstable();
        let ids: Vec<String> = ids.iter().map(i32::to_string).collect();
        assert!(
            member_rows[0].ends_with(&format!("{TOPIC}({})", ids.join(","))),
            "{described}"
        );
        for tp in partitions {
            let lag_rows = rows(&described, &format!("{TOPIC}  {}", tp.partition));
            assert_eq!(lag_rows.len(), 1, "{described}");
            let cells: Vec<&str> = lag_rows[0].split_whitespace().collect();
            assert_eq!(
                cells,
                [TOPIC, &tp.partition.to_string(), "25", "25", "0", id]
            );
        }
    }
    assert!(described.ends_with("total lag 0\n"), "{described}");

    // Deletion is refused while the group has members: one line, exit status 1, nothing
    // deleted.
    let refused = cli(&brokers[0], &["groups", "delete", "readers"]);
    let stderr = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr,
        "error: deleting group \"readers\": group \"readers\": NON_EMPTY_GROUP: group \"readers\" \
         is Stable with 2 member(s); only a group without members can be deleted\n"
    );
    let refused = readers.delete().await.unwrap_err();
    assert_eq!(refused.error_code(), Some(ErrorCode::NonEmptyGroup));
    assert_eq!(readers.committed_all().await.unwrap().len(), 4);

    // The members close (LeaveGroup): the group is Empty and can be deleted.
    stop.store(true, Ordering::Release);
    a_task.await.unwrap();
    b_task.await.unwrap();
    eventually("readers to be Empty", LIMIT, || async {
        (readers.describe().await.ok()?.state == GroupState::Empty).then_some(())
    })
    .await;
    assert_eq!(
        ok(&brokers[2], &["groups", "delete", "readers"]),
        "deleted group readers\n"
    );
    assert!(readers.committed_all().await.unwrap().is_empty());
    let all: Vec<TopicPartition> = (0..4).map(|p| TopicPartition::new(TOPIC, p)).collect();
    assert!(
        readers
            .committed(&all)
            .await
            .unwrap()
            .iter()
            .all(|(_, c)| c.is_none())
    );
    assert_eq!(readers.describe().await.unwrap().state, GroupState::Dead);
    let gone = cli(&brokers[0], &["groups", "delete", "readers"]);
    assert_eq!(
        gone.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&gone.stderr)
    );
    assert!(String::from_utf8_lossy(&gone.stderr).contains("GROUP_ID_NOT_FOUND"));
    let listed = ok(&brokers[0], &["groups", "list"]);
    assert!(!listed.contains("readers"), "{listed}");

    // The coordinator restarts: whoever leads the partition now (a replica that had the
    // tombstones), and the restarted broker once it leads again (from its own log), knows
    // nothing of the group. "ops" keeps its offsets.
    let index = brokers
        .iter()
        .position(|b| b.id() == coordinator.broker_id)
        .unwrap();
    brokers[index]
        .restart()
        .await
        .expect("restart the coordinator");
    let via = brokers[(index + 1) % 3].bootstrap_server();
    let client = Client::connect(&via)
        .await
        .unwrap()
        .with_retry_timeout(Duration::from_secs(60));
    let readers = client.group("readers").unwrap();
    assert!(readers.committed_all().await.unwrap().is_empty());
    assert_eq!(readers.describe().await.unwrap().state, GroupState::Dead);
    let admin = client.admin();
    eventually(
        "the restarted broker to coordinate readers again",
        LIMIT * 2,
        || async {
            let _ = admin
                .elect_preferred_leaders(&[(
                    "__consumer_offsets".to_owned(),
                    coordinator.partition,
                )])
                .await;
            let now = readers.find_coordinator().await.ok()?;
            (now.broker_id == coordinator.broker_id).then_some(())
        },
    )
    .await;
    assert!(readers.committed_all().await.unwrap().is_empty());
    assert_eq!(readers.describe().await.unwrap().state, GroupState::Dead);
    let ops = client.group("ops").unwrap();
    assert_eq!(
        ops.committed_all()
            .await
            .unwrap()
            .into_iter()
            .map(|(tp, c)| (tp.partition, c.offset))
            .collect::<Vec<_>>(),
        [(0, 10)]
    );
    let listed = admin.list_groups(&[]).await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|g| g.group_id.as_str())
            .collect::<Vec<_>>(),
        ["ops"]
    );
}

/// The committed offset of `events-0` for `group`, if any.
async fn committed(client: &Client, group: &str) -> Option<i64> {
    client
        .group(group)
        .unwrap()
        .committed(&[TopicPartition::new(TOPIC, 0)])
        .await
        .expect("OffsetFetch")[0]
        .1
        .as_ref()
        .map(|c| c.offset)
}

/// Sleeps until `deadline` (at once if it passed).
async fn sleep_until(deadline: Instant) {
    tokio::time::sleep(deadline.saturating_duration_since(Instant::now())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_expire_after_the_retention_by_kafkas_rules() {
    // The shortest retention Kafka's key allows: one minute, checked every 200 ms.
    let zookeeper = ZooKeeper::start().unwrap();
    let mut brokers = start_cluster_with(
        &zookeeper,
        &[1],
        &[
            ("offsets.retention.minutes", "1"),
            ("offsets.retention.check.interval.ms", "200"),
            ("group.min.session.timeout.ms", "1000"),
            ("group.initial.rebalance.delay.ms", "0"),
            ("offsets.topic.num.partitions", "3"),
        ],
    )
    .await;
    let broker = &mut brokers[0];
    create(broker, TOPIC, 1, 1).await;
    let client = Client::connect(&broker.bootstrap_server())
        .await
        .unwrap()
        .with_retry_timeout(Duration::from_secs(30));
    produce(&client, 1, 5).await;
    let retention = Duration::from_secs(60);

    // "simple": a commit from outside group management. "stay": a member that keeps
    // subscribing. "left": a member that leaves after a while.
    client
        .group("simple")
        .unwrap()
        .commit(&[GroupOffset::new(TOPIC, 0, 3)])
        .await
        .unwrap();
    let simple_committed = Instant::now();
    let stop_stay = Arc::new(AtomicBool::new(false));
    let stop_left = Arc::new(AtomicBool::new(false));
    let (_stay, stay_task) = spawn_member(client.clone(), "stay", stop_stay.clone());
    let (_left, left_task) = spawn_member(client.clone(), "left", stop_left.clone());
    eventually("both members to commit", LIMIT, || async {
        (committed(&client, "stay").await == Some(5) && committed(&client, "left").await == Some(5))
            .then_some(())
    })
    .await;
    let members_committed = Instant::now();
    tokio::time::sleep(Duration::from_secs(20)).await;
    stop_left.store(true, Ordering::Release);
    left_task.await.unwrap();
    let left_emptied = Instant::now();
    let admin = client.admin();
    let state_of = |group: &'static str| {
        let admin = admin.clone();
        async move { admin.describe_group(group).await.unwrap().state }
    };
    assert_eq!(state_of("left").await, GroupState::Empty);

    // The simple group's offset goes one retention after its commit, and the group with it.
    assert_eq!(committed(&client, "simple").await, Some(3));
    eventually(
        "the simple group's offset to expire",
        retention + LIMIT,
        || async { committed(&client, "simple").await.is_none().then_some(()) },
    )
    .await;
    assert!(simple_committed.elapsed() >= retention);
    assert_eq!(
        state_of("simple").await,
        GroupState::Dead,
        "the group went too"
    );

    // One retention after their commits, the members' offsets are still there: "stay" is
    // Stable and subscribes to the topic, "left" has been Empty for less than a retention
    // (Kafka before 2.1 would have expired it by now).
    sleep_until(members_committed + retention + Duration::from_secs(3)).await;
    assert!(
        left_emptied.elapsed() < retention,
        "the test ran too slowly"
    );
    assert_eq!(committed(&client, "stay").await, Some(5));
    assert_eq!(committed(&client, "left").await, Some(5));

    // One retention after "left" became Empty, its offsets go, and the group.
    eventually("the left group's offset to expire", LIMIT, || async {
        committed(&client, "left").await.is_none().then_some(())
    })
    .await;
    assert!(left_emptied.elapsed() >= retention - Duration::from_secs(1));
    assert_eq!(state_of("left").await, GroupState::Dead);
    assert_eq!(committed(&client, "stay").await, Some(5));
    let listed = admin.list_groups(&[]).await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|g| (g.group_id.as_str(), g.state.clone()))
            .collect::<Vec<_>>(),
        [("stay", GroupState::Stable)]
    );

    // The tombstones are in the log: a restart brings neither group back.
    stop_stay.store(true, Ordering::Release);
    stay_task.await.unwrap();
    broker.restart().await.unwrap();
    let client = Client::connect(&broker.bootstrap_server())
        .await
        .unwrap()
        .with_retry_timeout(Duration::from_secs(30));
    assert_eq!(committed(&client, "simple").await, None);
    assert_eq!(committed(&client, "left").await, None);
    assert_eq!(committed(&client, "stay").await, Some(5));
}
