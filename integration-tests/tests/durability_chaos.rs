//! The replication headline guarantee under chaos: with RF 3, `min.insync.replicas=2` and
//! `acks=-1`, no acknowledged record is ever lost, moved or duplicated, and no record a consumer
//! saw ever disappears — while brokers (partition leaders and the controller among them) are
//! killed with SIGKILL and restarted, or frozen with SIGSTOP past their ZooKeeper session and
//! thawed.
//!
//! Two producer tasks send small acks=-1 batches to the current leader of each partition
//! (found through Metadata; on any retriable error they refresh and retry with *fresh* values,
//! so a value appearing twice in the log is a real duplication, not a client retry). A consumer
//! task reads both partitions continuously from the leader. Meanwhile the test cycles through
//! kill/restart and pause/resume steps for about 20 s, waiting for full ISRs after each step.
//! At the end it waits for full ISRs and HW == log end on the leader, then checks, per
//! partition: offsets are dense from 0, every acknowledged batch is at its acknowledged offsets
//! with its values, no value appears twice, every record the consumer saw is still there at
//! the same offset, and all three replicas' segment files are byte-identical (followers append
//! the leader's batches unchanged, so this is "each replica would serve the same log").
//!
//! On failure, broker logs are copied to a directory named in the panic message.

mod support;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tonic::transport::Channel;
use tributary_integration_tests::{Broker, ZooKeeper};
use tributary_proto::v1::broker_client::BrokerClient;
use tributary_proto::v1::{ErrorCode, MetadataRequest, RecordFormat};
use tributary_record::Record;

use support::cluster::{
    LIMIT, agreed_partitions, controller_in_zk_opt, eventually, segment_bytes, start_cluster_with,
    zk_client,
};
use support::{batch, decode_all, fetch_request, raw_request, read_all, t0, try_create_topic};

const TOPIC: &str = "chaos";
const PARTITIONS: i32 = 2;
const CHAOS: Duration = Duration::from_secs(20);
/// Longer than the 3 s ZooKeeper session the harness configures.
const PAUSE: Duration = Duration::from_millis(4500);
const RPC_TIMEOUT: Duration = Duration::from_secs(4);

type Clients = Arc<HashMap<i32, BrokerClient<Channel>>>;

/// An acknowledged produce: partition, base offset, values in order.
#[derive(Debug, Clone)]
struct Ack {
    partition: i32,
    base: i64,
    values: Vec<String>,
}

#[derive(Default)]
struct Shared {
    acks: Vec<Ack>,
    /// partition -> (offset, value) in the order the consumer saw them.
    observed: HashMap<i32, Vec<(i64, String)>>,
    /// Anything the tasks noticed that is wrong by itself.
    violations: Vec<String>,
    produce_errors: HashMap<String, usize>,
}

fn stamp(start: Instant) -> String {
    format!("{:>6.2}s", start.elapsed().as_secs_f64())
}

/// The leader of `partition` according to the first broker that answers Metadata with one.
async fn find_leader(clients: &Clients, partition: i32) -> Option<i32> {
    let mut ids: Vec<&i32> = clients.keys().collect();
    ids.sort();
    for id in ids {
        let mut client = clients[id].clone();
        let request = MetadataRequest {
            topics: vec![TOPIC.into()],
        };
        let Ok(Ok(response)) =
            tokio::time::timeout(Duration::from_secs(1), client.metadata(request)).await
        else {
            continue;
        };
        let response = response.into_inner();
        let leader = response
            .topics
            .iter()
            .find(|t| t.topic == TOPIC)
            .and_then(|t| t.partitions.iter().find(|p| p.partition == partition))
            .map(|p| p.leader);
        if let Some(leader) = leader.filter(|&l| l >= 0) {
            return Some(leader);
        }
    }
    None
}

fn retriable(code: i32) -> bool {
    [
        ErrorCode::NotLeaderOrFollower,
        ErrorCode::LeaderNotAvailable,
        ErrorCode::RequestTimedOut,
        ErrorCode::NotEnoughReplicas,
        ErrorCode::NotEnoughReplicasAfterAppend,
        ErrorCode::BrokerNotAvailable,
        ErrorCode::UnknownTopicOrPartition,
    ]
    .iter()
    .any(|c| *c as i32 == code)
}

async fn producer(id: usize, clients: Clients, shared: Arc<Mutex<Shared>>, stop: Arc<AtomicBool>) {
    let mut attempt = 0u64;
    let mut leaders: HashMap<i32, i32> = HashMap::new();
    while !stop.load(Ordering::Relaxed) {
        attempt += 1;
        let partition = (attempt % PARTITIONS as u64) as i32;
        let leader = match leaders.get(&partition) {
            Some(&l) => l,
            None => match find_leader(&clients, partition).await {
                Some(l) => {
                    leaders.insert(partition, l);
                    l
                }
                None => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // Fresh values for every attempt: a retried, unacknowledged batch never repeats.
        let values: Vec<String> = (0..3).map(|i| format!("p{id}-a{attempt}-r{i}")).collect();
        let records: Vec<Record> = values
            .iter()
            .enumerate()
            .map(|(i, v)| Record {
                key: None,
                value: Some(Bytes::from(v.clone())),
                timestamp: t0() + attempt as i64 * 10 + i as i64,
                headers: vec![],
            })
            .collect();
        let mut request = raw_request(TOPIC, partition, -1, batch(&records));
        request.timeout_ms = 3000;
        let mut client = clients[&leader].clone();
        let outcome = tokio::time::timeout(RPC_TIMEOUT, client.produce(request)).await;
        let error = match outcome {
            Err(_) => "rpc-timeout".to_string(),
            Ok(Err(status)) => format!("rpc-{:?}", status.code()),
            Ok(Ok(response)) => {
                let p = response.into_inner().topics[0].partitions[0].clone();
                if p.error_code == ErrorCode::None as i32 {
                    let mut s = shared.lock().unwrap();
                    if p.last_offset != p.base_offset + 2 {
                        s.violations.push(format!(
                            "producer {id}: ack for 3 records with base {} last {}",
                            p.base_offset, p.last_offset
                        ));
                    }
                    s.acks.push(Ack {
                        partition,
                        base: p.base_offset,
                        values,
                    });
                    continue;
                }
                if !retriable(p.error_code) {
                    shared.lock().unwrap().violations.push(format!(
                        "producer {id}: non-retriable error {} on {TOPIC}-{partition} at broker {leader}: {}",
                        p.error_code, p.error_message
                    ));
                }
                format!("code-{}", p.error_code)
            }
        };
        *shared
            .lock()
            .unwrap()
            .produce_errors
            .entry(error)
            .or_default() += 1;
        leaders.remove(&partition);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn consumer(clients: Clients, shared: Arc<Mutex<Shared>>, stop: Arc<AtomicBool>) {
    let mut next: HashMap<i32, i64> = (0..PARTITIONS).map(|p| (p, 0)).collect();
    let mut leaders: HashMap<i32, i32> = HashMap::new();
    while !stop.load(Ordering::Relaxed) {
        for partition in 0..PARTITIONS {
            let leader = match leaders.get(&partition) {
                Some(&l) => l,
                None => match find_leader(&clients, partition).await {
                    Some(l) => {
                        leaders.insert(partition, l);
                        l
                    }
                    None => continue,
                },
            };
            let offset = next[&partition];
            let mut client = clients[&leader].clone();
            let request = fetch_request(TOPIC, partition, offset, RecordFormat::Raw, 100);
            let Ok(Ok(response)) = tokio::time::timeout(RPC_TIMEOUT, client.fetch(request)).await
            else {
                leaders.remove(&partition);
                continue;
            };
            let p = response.into_inner().topics[0].partitions[0].clone();
            if p.error_code != ErrorCode::None as i32 {
                leaders.remove(&partition);
                continue;
            }
            let records = decode_all(&p.batches, offset);
            let mut s = shared.lock().unwrap();
            let mut expected = offset;
            for r in records {
                if r.offset != expected {
                    s.violations.push(format!(
                        "consumer: {TOPIC}-{partition} from broker {leader} jumped from expected offset {expected} to {}",
                        r.offset
                    ));
                }
                if r.offset >= p.high_watermark {
                    s.violations.push(format!(
                        "consumer: {TOPIC}-{partition} broker {leader} served offset {} at/above HW {}",
                        r.offset, p.high_watermark
                    ));
                }
                let value =
                    String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned();
                s.observed
                    .entry(partition)
                    .or_default()
                    .push((r.offset, value));
                expected = r.offset + 1;
            }
            next.insert(partition, expected);
        }
    }
}

fn index_of(brokers: &[Broker], id: i32) -> usize {
    brokers.iter().position(|b| b.id() == id).unwrap()
}

async fn full_isr(brokers: &[Broker]) {
    let all: Vec<&Broker> = brokers.iter().collect();
    agreed_partitions(&all, TOPIC, PARTITIONS as usize, |p| {
        p.leader >= 0 && p.isr.len() == 3
    })
    .await;
}

/// Copies broker logs out of their temporary directories (removed on drop) and returns where.
fn keep_logs(brokers: &[Broker], timeline: &[String]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("durability-chaos-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for b in brokers {
        let _ = std::fs::copy(b.log_path(), dir.join(format!("broker-{}.log", b.id())));
    }
    std::fs::write(dir.join("timeline.txt"), timeline.join("\n")).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_records_survive_kills_and_pauses() {
    let start = Instant::now();
    let zookeeper = ZooKeeper::start().unwrap();
    let mut brokers = start_cluster_with(
        &zookeeper,
        &[1, 2, 3],
        &[("replica.lag.time.max.ms", "2000")],
    )
    .await;
    let mut admin = brokers[0].admin_client().unwrap();
    let created = try_create_topic(
        &mut admin,
        TOPIC,
        PARTITIONS,
        3,
        &[("min.insync.replicas", "2")],
    )
    .await;
    assert_eq!(
        created.error_code,
        ErrorCode::None as i32,
        "{}",
        created.error_message
    );
    full_isr(&brokers).await;
    let zk = zk_client(&zookeeper).await;

    let clients: Clients = Arc::new(
        brokers
            .iter()
            .map(|b| (b.id(), b.broker_client().unwrap()))
            .collect(),
    );
    let shared = Arc::new(Mutex::new(Shared::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for id in 0..2 {
        tasks.push(tokio::spawn(producer(
            id,
            clients.clone(),
            shared.clone(),
            stop.clone(),
        )));
    }
    let consumer_stop = Arc::new(AtomicBool::new(false));
    let consumer_task = tokio::spawn(consumer(
        clients.clone(),
        shared.clone(),
        consumer_stop.clone(),
    ));

    let mut timeline = vec![format!("{} cluster up, topic created", stamp(start))];
    let chaos_start = Instant::now();
    let mut step = 0usize;
    while chaos_start.elapsed() < CHAOS {
        let meta_leader = |p: i32| {
            let clients = clients.clone();
            async move { find_leader(&clients, p).await.unwrap_or(1) }
        };
        let controller = controller_in_zk_opt(&zk).await.map_or(1, |(c, _)| c);
        let (victim, kill, why) = match step % 6 {
            0 => (meta_leader(0).await, true, "leader of partition 0"),
            1 => (controller, false, "controller"),
            2 => (controller, true, "controller"),
            3 => (meta_leader(1).await, false, "leader of partition 1"),
            4 => (meta_leader(1).await, true, "leader of partition 1"),
            _ => {
                let l = meta_leader(0).await;
                (
                    [1, 2, 3].into_iter().find(|&b| b != l).unwrap(),
                    false,
                    "a follower of partition 0",
                )
            }
        };
        let i = index_of(&brokers, victim);
        if kill {
            timeline.push(format!("{} kill -9 broker {victim} ({why})", stamp(start)));
            brokers[i].kill9().unwrap();
            brokers[i].restart().await.unwrap();
            timeline.push(format!("{} broker {victim} restarted", stamp(start)));
        } else {
            timeline.push(format!("{} SIGSTOP broker {victim} ({why})", stamp(start)));
            brokers[i].pause().unwrap();
            tokio::time::sleep(PAUSE).await;
            brokers[i].resume().unwrap();
            timeline.push(format!("{} SIGCONT broker {victim}", stamp(start)));
        }
        full_isr(&brokers).await;
        timeline.push(format!("{} full ISRs", stamp(start)));
        step += 1;
    }

    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    timeline.push(format!("{} producers stopped", stamp(start)));
    full_isr(&brokers).await;
    let all: Vec<&Broker> = brokers.iter().collect();
    let meta = agreed_partitions(&all, TOPIC, PARTITIONS as usize, |p| {
        p.leader >= 0 && p.isr.len() == 3
    })
    .await;
    // Let the consumer catch up to the end before stopping it.
    for p in &meta {
        let leader = &brokers[index_of(&brokers, p.leader)];
        let hw = eventually("HW == log end on the leader", LIMIT, || async {
            let mut client = leader.broker_client().ok()?;
            let r = client
                .fetch(fetch_request(TOPIC, p.partition, 0, RecordFormat::Raw, 0))
                .await
                .ok()?
                .into_inner();
            let r = &r.topics[0].partitions[0];
            (r.error_code == ErrorCode::None as i32 && r.high_watermark == r.log_end_offset)
                .then_some(r.high_watermark)
        })
        .await;
        eventually("the consumer at the end", LIMIT, || async {
            let s = shared.lock().unwrap();
            let seen = s
                .observed
                .get(&p.partition)
                .and_then(|v| v.last())
                .map_or(0, |(o, _)| o + 1);
            (seen >= hw).then_some(())
        })
        .await;
    }
    consumer_stop.store(true, Ordering::Relaxed);
    consumer_task.await.unwrap();
    let shared = std::mem::take(&mut *shared.lock().unwrap());

    let mut violations = shared.violations.clone();
    let mut summary = Vec::new();
    for p in &meta {
        let partition = p.partition;
        let leader = &brokers[index_of(&brokers, p.leader)];
        let mut client = leader.broker_client().unwrap();
        let log = read_all(&mut client, TOPIC, partition, 0).await;
        let values: Vec<String> = log
            .iter()
            .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
            .collect();
        // Dense offsets from 0, no reordering.
        for (i, r) in log.iter().enumerate() {
            if r.offset != i as i64 {
                violations.push(format!(
                    "{TOPIC}-{partition}: record #{i} on leader {} has offset {}",
                    p.leader, r.offset
                ));
                break;
            }
        }
        // No value twice.
        let mut seen = HashSet::new();
        for (i, v) in values.iter().enumerate() {
            if !seen.insert(v) {
                violations.push(format!(
                    "{TOPIC}-{partition}: value {v} duplicated (again at offset {i})"
                ));
            }
        }
        // Every acknowledged batch at its offsets.
        let acks: Vec<&Ack> = shared
            .acks
            .iter()
            .filter(|a| a.partition == partition)
            .collect();
        let mut lost = 0;
        for a in &acks {
            for (j, v) in a.values.iter().enumerate() {
                let offset = a.base + j as i64;
                let at = values.get(offset as usize);
                if at != Some(v) {
                    lost += 1;
                    let elsewhere = values.iter().position(|x| x == v);
                    violations.push(format!(
                        "{TOPIC}-{partition}: acknowledged {v} at offset {offset}, log has {at:?} there (value found at {elsewhere:?})"
                    ));
                }
            }
        }
        // Nothing the consumer saw disappeared.
        let observed = shared.observed.get(&partition).cloned().unwrap_or_default();
        for (offset, v) in &observed {
            let at = values.get(*offset as usize);
            if at != Some(v) {
                violations.push(format!(
                    "{TOPIC}-{partition}: consumer saw {v} at offset {offset}, log now has {at:?}"
                ));
            }
        }
        // Every replica holds the same bytes.
        let mut lens = Vec::new();
        let mut same = false;
        for _ in 0..100 {
            let logs: Vec<Vec<u8>> = brokers
                .iter()
                .map(|b| segment_bytes(&b.data_dir(), TOPIC, partition))
                .collect();
            lens = logs.iter().map(|l| l.len()).collect();
            if logs.iter().all(|l| *l == logs[0]) && !logs[0].is_empty() {
                same = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if !same {
            violations.push(format!(
                "{TOPIC}-{partition}: replica segment files differ (lengths by broker 1,2,3: {lens:?})"
            ));
        }
        summary.push(format!(
            "{TOPIC}-{partition}: {} records, {} acknowledged batches ({lost} acknowledged records missing), consumer saw {}",
            log.len(),
            acks.len(),
            observed.len()
        ));
    }
    timeline.push(format!("{} checked", stamp(start)));
    let mut errors: Vec<(String, usize)> = shared.produce_errors.into_iter().collect();
    errors.sort();
    eprintln!("timeline:\n  {}", timeline.join("\n  "));
    eprintln!("summary:\n  {}", summary.join("\n  "));
    eprintln!("retried produce errors: {errors:?}");
    assert!(
        shared.acks.len() > 50,
        "too few acknowledged writes to mean anything: {}",
        shared.acks.len()
    );
    if !violations.is_empty() {
        let dir = keep_logs(&brokers, &timeline);
        let shown: Vec<&String> = violations.iter().take(40).collect();
        panic!(
            "{} violations (first {}):\n  {}\nbroker logs and timeline kept in {}",
            violations.len(),
            shown.len(),
            shown
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n  "),
            dir.display()
        );
    }
}
