//! Consumer groups end to end on three real brokers: `Consumer::subscribe` members split a
//! topic's partitions, read every record once, refuse stale commits, and take over the
//! partitions of a member that vanished without leaving once its session times out.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::cluster::{LIMIT, create, eventually, start_cluster_with};
use support::groups::produce_numbered;
use tributary_client::{
    Client, Consumer, ConsumerOptions, ErrorCode, GroupOffset, GroupOptions, OffsetReset,
    TopicPartition,
};
use tributary_integration_tests::ZooKeeper;

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
    produce_numbered(client, TOPIC, PARTITIONS, from..from + per_partition).await;
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

/// A `tributary consume --group` child process and the (partition, offset) lines it printed.
struct CliMember {
    child: std::process::Child,
    printed: Arc<Mutex<Vec<(i32, i64)>>>,
}

impl CliMember {
    fn start(bootstrap: &str, group: &str) -> CliMember {
        use std::io::BufRead;
        let mut child = std::process::Command::new(
            tributary_integration_tests::cli_binary().expect("tributary binary"),
        )
        .args([
            "--bootstrap-server",
            bootstrap,
            "consume",
            TOPIC,
            "--group",
            group,
        ])
        .args([
            "--from-beginning",
            "--session-timeout-ms",
            "3000",
            "-f",
            "%p %o",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start tributary consume --group");
        let stdout = child.stdout.take().expect("piped stdout");
        let printed = Arc::new(Mutex::new(Vec::new()));
        let sink = printed.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let mut fields = line.split(' ');
                if let (Some(Ok(p)), Some(Ok(o))) = (
                    fields.next().map(str::parse::<i32>),
                    fields.next().map(str::parse::<i64>),
                ) {
                    sink.lock().unwrap().push((p, o));
                }
            }
        });
        CliMember { child, printed }
    }

    fn printed(&self) -> Vec<(i32, i64)> {
        self.printed.lock().unwrap().clone()
    }
}

impl Drop for CliMember {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every (partition, offset) any of `members` printed.
fn printed_by(members: &[&CliMember]) -> Vec<(i32, i64)> {
    members.iter().flat_map(|m| m.printed()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_process_killed_with_sigkill_loses_no_record_to_the_group() {
    let zookeeper = ZooKeeper::start().unwrap();
    let brokers = start_cluster_with(&zookeeper, &[1, 2, 3], BROKER_OVERRIDES).await;
    create(&brokers[0], TOPIC, PARTITIONS, 3).await;
    let bootstrap = brokers[0].bootstrap_server();
    let client = Client::connect(&bootstrap)
        .await
        .unwrap()
        .with_retry_timeout(Duration::from_secs(60));
    produce(&client, 0, 100).await;

    // Three `tributary consume --group` processes; each commits after printing a batch.
    let mut members: Vec<CliMember> = (0..3)
        .map(|_| CliMember::start(&bootstrap, "cli"))
        .collect();
    eventually(
        "the three processes to read everything",
        LIMIT * 2,
        || async {
            let views: Vec<&CliMember> = members.iter().collect();
            let read: BTreeSet<(i32, i64)> = printed_by(&views).into_iter().collect();
            (read == all_offsets(100) && members.iter().all(|m| !m.printed().is_empty()))
                .then_some(())
        },
    )
    .await;
    let views: Vec<&CliMember> = members.iter().collect();
    assert_eq!(
        printed_by(&views).len(),
        600,
        "exactly once while nobody fails"
    );

    // More records arrive while one process is killed with SIGKILL: no LeaveGroup, no last
    // commit. What it committed is read back before anyone can take its partitions over.
    produce(&client, 100, 50).await;
    let victim = members.remove(0);
    let victim_partitions: BTreeSet<i32> = victim.printed().iter().map(|(p, _)| *p).collect();
    let mut victim = victim;
    victim.child.kill().expect("SIGKILL");
    victim.child.wait().unwrap();
    let group = client.group("cli").unwrap();
    let all: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(TOPIC, p))
        .collect();
    let committed_at_kill: BTreeMap<i32, i64> = group
        .committed(&all)
        .await
        .unwrap()
        .into_iter()
        .map(|(tp, c)| (tp.partition, c.map_or(0, |c| c.offset)))
        .collect();
    produce(&client, 150, 50).await;

    // The survivors take its partitions over after the 3 s session timeout: every record is
    // printed by someone, and a record printed twice is one the victim printed after its last
    // commit (the at-least-once window), never an older one.
    let survivors: Vec<&CliMember> = members.iter().collect();
    eventually("the survivors to read everything", LIMIT * 2, || async {
        let mut read: BTreeSet<(i32, i64)> = printed_by(&survivors).into_iter().collect();
        read.extend(victim.printed());
        (read == all_offsets(200)).then_some(())
    })
    .await;
    let mut counts: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    for record in printed_by(&survivors).into_iter().chain(victim.printed()) {
        *counts.entry(record).or_default() += 1;
    }
    for ((partition, offset), count) in counts {
        if count > 1 {
            assert!(
                victim_partitions.contains(&partition) && offset >= committed_at_kill[&partition],
                "{partition}@{offset} read {count} times, outside the uncommitted window \
                 (committed {:?})",
                committed_at_kill.get(&partition)
            );
        }
    }
    drop(victim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_coordinators_broker_moves_the_group_with_its_offsets() {
    let zookeeper = ZooKeeper::start().unwrap();
    let mut brokers = start_cluster_with(&zookeeper, &[1, 2, 3], BROKER_OVERRIDES).await;
    create(&brokers[0], TOPIC, PARTITIONS, 3).await;
    let coordinator = {
        let client = Client::connect(&brokers[0].bootstrap_server())
            .await
            .unwrap();
        produce(&client, 0, 100).await;
        client
            .group("movers")
            .unwrap()
            .find_coordinator()
            .await
            .expect("coordinator")
            .broker_id
    };
    // Members and the test talk to a broker that survives.
    let survivor = brokers.iter().find(|b| b.id() != coordinator).unwrap();
    let client = Client::connect(&survivor.bootstrap_server())
        .await
        .unwrap()
        .with_retry_timeout(Duration::from_secs(60));
    let stop = Arc::new(AtomicBool::new(false));
    let (a, a_task) = spawn_member(client.clone(), "movers", stop.clone());
    let (b, b_task) = spawn_member(client.clone(), "movers", stop.clone());
    let members = [&a, &b];
    eventually("the two members to read everything", LIMIT * 2, || async {
        (records_of(&members).into_iter().collect::<BTreeSet<_>>() == all_offsets(100))
            .then_some(())
    })
    .await;
    let group = client.group("movers").unwrap();
    let all: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(TOPIC, p))
        .collect();
    eventually("every partition committed at 100", LIMIT, || async {
        let committed = group.committed(&all).await.ok()?;
        committed
            .iter()
            .all(|(_, c)| c.as_ref().map(|c| c.offset) == Some(100))
            .then_some(())
    })
    .await;

    // The coordinator's broker dies: the offsets partition gets a new leader, which loads the
    // group; the members find it, re-join, and go on from the committed offsets.
    let index = brokers.iter().position(|b| b.id() == coordinator).unwrap();
    brokers[index].kill9().expect("kill -9 the coordinator");
    let moved = eventually("a new coordinator", LIMIT * 2, || async {
        let found = group.find_coordinator().await.ok()?;
        (found.broker_id != coordinator).then_some(found.broker_id)
    })
    .await;
    assert_ne!(moved, coordinator);
    assert!(
        group
            .committed(&all)
            .await
            .unwrap()
            .iter()
            .all(|(_, c)| c.as_ref().map(|c| c.offset) == Some(100)),
        "the new coordinator loaded the offsets"
    );
    produce(&client, 100, 20).await;
    eventually("the members to read the new records", LIMIT * 2, || async {
        (records_of(&members).into_iter().collect::<BTreeSet<_>>() == all_offsets(120))
            .then_some(())
    })
    .await;
    let read = records_of(&members);
    let before_failover = read.iter().filter(|(_, offset)| *offset < 100).count();
    assert_eq!(
        before_failover, 600,
        "nothing committed before the failover is read again"
    );
    eventually("every partition committed at 120", LIMIT, || async {
        let committed = group.committed(&all).await.ok()?;
        committed
            .iter()
            .all(|(_, c)| c.as_ref().map(|c| c.offset) == Some(120))
            .then_some(())
    })
    .await;
    stop.store(true, Ordering::Release);
    for task in [a_task, b_task] {
        task.await.unwrap().close().await.expect("close");
    }
}
