//! Admin operations on a three-broker cluster, checked the way an operator would: adding
//! partitions, topic config changes reaching the brokers without a restart, preferred leader
//! election (ElectLeaders forwarded to the controller, the `/admin/preferred_replica_election`
//! znode, and the automatic rebalance), and a rolling restart under continuous production.
//!
//! A broker that was killed or shut down re-enters the ISR by itself once its fetchers have
//! caught up (the leader writes the ISR change and notifies the controller), so the scenarios
//! only wait for full ISRs ([`wait_for_full_isrs`]) where an operator would.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tonic::transport::{Channel, Endpoint};
use tributary_integration_tests::{Broker, ZooKeeper};
use tributary_proto::v1::broker_client::BrokerClient;
use tributary_proto::v1::{
    AlterConfigsRequest, AlterConfigsResult, AlterConfigsTopic, ConfigSource,
    CreatePartitionsRequest, CreatePartitionsResult, CreatePartitionsTopic, DescribeConfigsRequest,
    ElectLeadersPartition, ElectLeadersRequest, ElectLeadersResponse, ErrorCode, MetadataRequest,
    TopicConfigDescription,
};
use tributary_zk_layout::payloads::{EntityConfig, Payload, TopicAssignment};
use tributary_zk_layout::{BrokerId, PartitionId};
use zookeeper_client as zk;

use support::cluster::{
    LIMIT, agreed_partitions, controller_in_zk, create, eventually, partition_state,
    produce_to_leader, start_cluster, start_cluster_with, topic_metadata, zk_client,
};
use support::{batch, produce_raw, records, t0};

// ---------------------------------------------------------------------------------------------
// Helpers

/// Waits until every broker's metadata shows full ISRs for `topic` (no under-replicated
/// partition, as an operator checks before stopping the next broker).
async fn wait_for_full_isrs(brokers: &[&Broker], topic: &str, partitions: i32) {
    agreed_partitions(brokers, topic, partitions as usize, |p| {
        p.leader >= 0 && p.isr.len() == p.replicas.len() && p.offline_replicas.is_empty()
    })
    .await;
}

async fn create_partitions(broker: &Broker, topic: &str, count: i32) -> CreatePartitionsResult {
    let mut admin = broker.admin_client().expect("admin client");
    let response = admin
        .create_partitions(CreatePartitionsRequest {
            topics: vec![CreatePartitionsTopic {
                name: topic.into(),
                count,
            }],
            ..Default::default()
        })
        .await
        .expect("CreatePartitions call")
        .into_inner();
    response.results.into_iter().next().expect("one result")
}

async fn alter_configs(
    broker: &Broker,
    topic: &str,
    set: &[(&str, &str)],
    delete: &[&str],
) -> AlterConfigsResult {
    let mut admin = broker.admin_client().expect("admin client");
    let response = admin
        .alter_configs(AlterConfigsRequest {
            topics: vec![AlterConfigsTopic {
                name: topic.into(),
                set: set
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                delete: delete.iter().map(|k| k.to_string()).collect(),
            }],
            validate_only: false,
        })
        .await
        .expect("AlterConfigs call")
        .into_inner();
    response.results.into_iter().next().expect("one result")
}

async fn describe_configs(broker: &Broker, topic: &str) -> TopicConfigDescription {
    let mut admin = broker.admin_client().expect("admin client");
    let response = admin
        .describe_configs(DescribeConfigsRequest {
            topics: vec![topic.into()],
        })
        .await
        .expect("DescribeConfigs call")
        .into_inner();
    let description = response.topics.into_iter().next().expect("one description");
    assert_eq!(
        description.error_code,
        ErrorCode::None as i32,
        "describe {topic} at broker {}: {}",
        broker.id(),
        description.error_message
    );
    description
}

/// The effective value of `key` and its source, as DescribeConfigs lists it.
fn entry(description: &TopicConfigDescription, key: &str) -> (String, ConfigSource) {
    let entry = description
        .entries
        .iter()
        .find(|e| e.name == key)
        .unwrap_or_else(|| panic!("{key} not described: {:?}", description.entries));
    (
        entry.value.clone(),
        ConfigSource::try_from(entry.source).expect("known source"),
    )
}

async fn elect_leaders(broker: &Broker, topic: &str, partitions: i32) -> ElectLeadersResponse {
    let mut admin = broker.admin_client().expect("admin client");
    admin
        .elect_leaders(ElectLeadersRequest {
            partitions: (0..partitions)
                .map(|partition| ElectLeadersPartition {
                    topic: topic.into(),
                    partition,
                })
                .collect(),
        })
        .await
        .expect("ElectLeaders call")
        .into_inner()
}

/// Each partition's first replica, from `/brokers/topics/<topic>`.
async fn preferred_leaders(client: &zk::Client, topic: &str) -> BTreeMap<i32, i32> {
    let (data, _) = client
        .get_data(&format!("/brokers/topics/{topic}"))
        .await
        .expect("topic assignment");
    TopicAssignment::decode(&data)
        .expect("assignment payload")
        .partitions
        .iter()
        .map(|(p, replicas)| (p.0, replicas[0].0))
        .collect()
}

/// Kills `victim` with SIGKILL, waits until none of `topic`'s partitions is led by it in the
/// survivors' metadata, restarts it and waits until every broker lists it as a live replica
/// again. Returns the partitions it preferred (and led before).
async fn bounce_leader(
    brokers: &mut [Broker],
    victim: i32,
    topic: &str,
    partitions: i32,
) -> Vec<i32> {
    let index = brokers
        .iter()
        .position(|b| b.id() == victim)
        .expect("victim");
    brokers[index].kill9().expect("kill -9");
    {
        let survivors: Vec<&Broker> = brokers.iter().filter(|b| b.id() != victim).collect();
        agreed_partitions(&survivors, topic, partitions as usize, |p| {
            p.leader >= 0 && p.leader != victim
        })
        .await;
    }
    brokers[index].restart().await.expect("restart");
    let all: Vec<&Broker> = brokers.iter().collect();
    let back = agreed_partitions(&all, topic, partitions as usize, |p| {
        p.leader >= 0 && p.offline_replicas.is_empty()
    })
    .await;
    back.iter()
        .filter(|p| p.replicas[0] == victim)
        .map(|p| p.partition)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// 1. CreatePartitions

#[tokio::test]
async fn create_partitions_continues_the_placement_and_the_new_partitions_take_writes() {
    let zookeeper = ZooKeeper::start().unwrap();
    let brokers = start_cluster(&zookeeper, &[1, 2, 3]).await;
    let all: Vec<&Broker> = brokers.iter().collect();
    let client = zk_client(&zookeeper).await;
    create(&brokers[0], "grown", 3, 2).await;
    agreed_partitions(&all, "grown", 3, |p| p.leader >= 0).await;
    let (data, _) = client.get_data("/brokers/topics/grown").await.unwrap();
    let before = TopicAssignment::decode(&data).unwrap();

    // Asked of a broker that is not necessarily the controller.
    let result = create_partitions(&brokers[2], "grown", 5).await;
    assert_eq!(
        result.error_code,
        ErrorCode::None as i32,
        "{}",
        result.error_message
    );

    // Existing partitions untouched; partition i gets sorted live brokers (i + j) mod 3.
    let ids = [1, 2, 3];
    let mut expected = before.partitions.clone();
    for i in 3..5 {
        let replicas = (0..2).map(|j| BrokerId(ids[(i + j) % 3])).collect();
        expected.insert(PartitionId(i as i32), replicas);
    }
    let (data, after_version) = {
        let (data, stat) = client.get_data("/brokers/topics/grown").await.unwrap();
        (data, stat.version)
    };
    let after = TopicAssignment::decode(&data).unwrap();
    assert_eq!(after.partitions, expected);
    assert_eq!(after.topic_id, before.topic_id, "the topic id is kept");

    // Every broker lists five led partitions; a new partition's leader is its first replica
    // and takes writes.
    let partitions = agreed_partitions(&all, "grown", 5, |p| p.leader >= 0).await;
    for p in &partitions {
        let replicas: Vec<i32> = expected[&PartitionId(p.partition)]
            .iter()
            .map(|b| b.0)
            .collect();
        assert_eq!(p.replicas, replicas, "partition {}", p.partition);
        assert_eq!(p.leader, replicas[0], "partition {}", p.partition);
    }
    let (leader, base) = produce_to_leader(&all, "grown", 4, LIMIT).await;
    assert_eq!((leader, base), (2, 0));

    // Bad input changes nothing.
    for count in [5, 2] {
        let refused = create_partitions(&brokers[0], "grown", count).await;
        assert_eq!(
            refused.error_code,
            ErrorCode::InvalidPartitions as i32,
            "count {count}: {}",
            refused.error_message
        );
        assert!(
            refused.error_message.contains('5'),
            "the message names the current count: {}",
            refused.error_message
        );
    }
    let unknown = create_partitions(&brokers[1], "never-was", 4).await;
    assert_eq!(
        unknown.error_code,
        ErrorCode::UnknownTopicOrPartition as i32,
        "{}",
        unknown.error_message
    );
    let (data, stat) = client.get_data("/brokers/topics/grown").await.unwrap();
    assert_eq!(
        stat.version, after_version,
        "assignment rewritten by a refused request"
    );
    assert_eq!(TopicAssignment::decode(&data).unwrap().partitions, expected);
    let mut children = client
        .list_children("/brokers/topics/grown/partitions")
        .await
        .unwrap();
    children.sort();
    assert_eq!(children, ["0", "1", "2", "3", "4"]);
    assert!(
        client
            .check_stat("/brokers/topics/never-was")
            .await
            .unwrap()
            .is_none()
    );
}

// ---------------------------------------------------------------------------------------------
// 2. AlterConfigs / DescribeConfigs

/// `/config/changes` children, sorted.
async fn config_changes(client: &zk::Client) -> Vec<String> {
    let mut children = client.list_children("/config/changes").await.unwrap();
    children.sort();
    children
}

#[tokio::test]
async fn a_topic_config_change_reaches_the_partition_leader_without_a_restart() {
    let zookeeper = ZooKeeper::start().unwrap();
    let brokers = start_cluster(&zookeeper, &[1, 2, 3]).await;
    let all: Vec<&Broker> = brokers.iter().collect();
    let client = zk_client(&zookeeper).await;
    create(&brokers[0], "tuned", 1, 3).await;
    agreed_partitions(&all, "tuned", 1, |p| p.leader >= 0).await;

    // A batch of about 4 KiB is accepted under the default max.message.bytes (1048588).
    let big: Vec<_> = records("big", 8, t0())
        .into_iter()
        .map(|mut r| {
            r.value = Some(bytes::Bytes::from(vec![b'v'; 512]));
            r
        })
        .collect();
    let big = batch(&big);
    assert!(big.len() > 4000, "{} bytes", big.len());
    let small = batch(&records("small", 1, t0()));
    assert!(small.len() < 1024, "{} bytes", small.len());
    let (leader, _) = produce_to_leader(&all, "tuned", 0, LIMIT).await;
    let leader_broker = brokers.iter().find(|b| b.id() == leader).unwrap();
    let mut at_leader = leader_broker.broker_client().unwrap();
    let accepted = produce_raw(&mut at_leader, "tuned", 0, big.clone()).await;
    assert_eq!(
        accepted.error_code,
        ErrorCode::None as i32,
        "{}",
        accepted.error_message
    );

    // Set through a broker that does not lead the partition.
    let changes_before = config_changes(&client).await;
    let elsewhere = brokers.iter().find(|b| b.id() != leader).unwrap();
    let result = alter_configs(elsewhere, "tuned", &[("max.message.bytes", "1024")], &[]).await;
    assert_eq!(
        result.error_code,
        ErrorCode::None as i32,
        "{}",
        result.error_message
    );

    let (data, _) = client.get_data("/config/topics/tuned").await.unwrap();
    let stored = EntityConfig::decode(&data).unwrap();
    assert_eq!(
        stored.config.get("max.message.bytes").map(String::as_str),
        Some("1024")
    );
    let changes_after = config_changes(&client).await;
    let new: Vec<&String> = changes_after
        .iter()
        .filter(|c| !changes_before.contains(c))
        .collect();
    assert_eq!(new.len(), 1, "one notification: {changes_after:?}");
    assert!(new[0].starts_with("config_change_"), "{}", new[0]);
    let (payload, _) = client
        .get_data(&format!("/config/changes/{}", new[0]))
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8(payload).unwrap(),
        r#"{"version":2,"entity_path":"topics/tuned"}"#
    );

    // Every broker describes it as a topic override.
    for broker in &brokers {
        let description = describe_configs(broker, "tuned").await;
        assert_eq!(
            description
                .overrides
                .get("max.message.bytes")
                .map(String::as_str),
            Some("1024"),
            "broker {}",
            broker.id()
        );
        assert_eq!(
            entry(&description, "max.message.bytes"),
            ("1024".to_owned(), ConfigSource::TopicOverride),
            "broker {}",
            broker.id()
        );
    }

    // The running leader applies it: the big batch is refused, a small one still goes in.
    let refused = eventually("the leader to refuse a 4 KiB batch", LIMIT, || {
        let (big, mut client) = (big.clone(), at_leader.clone());
        async move {
            let result = produce_raw(&mut client, "tuned", 0, big).await;
            (result.error_code != ErrorCode::None as i32).then_some(result)
        }
    })
    .await;
    assert_eq!(
        refused.error_code,
        ErrorCode::MessageTooLarge as i32,
        "{}",
        refused.error_message
    );
    let small_ok = produce_raw(&mut at_leader, "tuned", 0, small).await;
    assert_eq!(
        small_ok.error_code,
        ErrorCode::None as i32,
        "{}",
        small_ok.error_message
    );

    // Deleting the override restores the broker default, in ZooKeeper and at the leader.
    let result = alter_configs(&brokers[0], "tuned", &[], &["max.message.bytes"]).await;
    assert_eq!(
        result.error_code,
        ErrorCode::None as i32,
        "{}",
        result.error_message
    );
    let (data, _) = client.get_data("/config/topics/tuned").await.unwrap();
    assert!(
        !EntityConfig::decode(&data)
            .unwrap()
            .config
            .contains_key("max.message.bytes")
    );
    for broker in &brokers {
        let description = describe_configs(broker, "tuned").await;
        assert!(!description.overrides.contains_key("max.message.bytes"));
        assert_eq!(
            entry(&description, "max.message.bytes"),
            ("1048588".to_owned(), ConfigSource::BrokerDefault),
            "broker {}",
            broker.id()
        );
    }
    eventually("the leader to accept a 4 KiB batch again", LIMIT, || {
        let (big, mut client) = (big.clone(), at_leader.clone());
        async move {
            let result = produce_raw(&mut client, "tuned", 0, big).await;
            (result.error_code == ErrorCode::None as i32).then_some(())
        }
    })
    .await;

    // Invalid keys and values are refused and nothing is written.
    let (data_before, stat_before) = client.get_data("/config/topics/tuned").await.unwrap();
    let changes_before = config_changes(&client).await;
    for (key, value) in [
        ("no.such.key", "1"),
        ("max.message.bytes", "lots"),
        ("max.message.bytes", "-1"),
        ("cleanup.policy", "sometimes"),
    ] {
        let result = alter_configs(&brokers[1], "tuned", &[(key, value)], &[]).await;
        assert_eq!(
            result.error_code,
            ErrorCode::InvalidConfig as i32,
            "{key}={value}: {}",
            result.error_message
        );
        assert!(
            result.error_message.contains(key),
            "{}",
            result.error_message
        );
    }
    let (data_after, stat_after) = client.get_data("/config/topics/tuned").await.unwrap();
    assert_eq!(data_after, data_before);
    assert_eq!(stat_after.version, stat_before.version);
    assert_eq!(config_changes(&client).await, changes_before);
}

// ---------------------------------------------------------------------------------------------
// 3. Preferred leader election on request

#[tokio::test]
async fn preferred_leaders_return_on_elect_leaders_and_on_the_admin_znode() {
    let zookeeper = ZooKeeper::start().unwrap();
    // No automatic rebalance: leaders must stay moved until asked.
    let mut brokers = start_cluster_with(
        &zookeeper,
        &[1, 2, 3],
        &[("auto.leader.rebalance.enable", "false")],
    )
    .await;
    let client = zk_client(&zookeeper).await;
    create(&brokers[0], "preferred", 3, 3).await;
    {
        let all: Vec<&Broker> = brokers.iter().collect();
        agreed_partitions(&all, "preferred", 3, |p| p.leader >= 0).await;
    }
    let preferred = preferred_leaders(&client, "preferred").await;
    let (controller, _) = controller_in_zk(&client).await;
    let victim = [1, 2, 3].into_iter().find(|id| *id != controller).unwrap();

    // The victim's partitions fail over and stay with the new leader after it returns.
    let moved = bounce_leader(&mut brokers, victim, "preferred", 3).await;
    assert!(!moved.is_empty(), "broker {victim} prefers a partition");
    for &p in &moved {
        let (state, _) = partition_state(&client, "preferred", p).await;
        assert_ne!(state.leader.0, victim, "partition {p} moved back by itself");
    }
    let all: Vec<&Broker> = brokers.iter().collect();
    let (controller, _) = controller_in_zk(&client).await;
    let asked = brokers.iter().find(|b| b.id() != controller).unwrap();
    // The victim catches up and rejoins the ISR by itself, but leadership stays away from it
    // until asked (no automatic rebalance).
    wait_for_full_isrs(&all, "preferred", 3).await;
    let partitions = topic_metadata(&brokers[0], "preferred")
        .await
        .unwrap()
        .partitions;
    for &p in &moved {
        assert_ne!(
            partitions[p as usize].leader, victim,
            "partition {p} moved back by itself"
        );
    }

    // ElectLeaders at a broker that is not the controller (forwarded to it).
    let response = elect_leaders(asked, "preferred", 3).await;
    assert_eq!(
        response.error_code,
        ErrorCode::None as i32,
        "{}",
        response.error_message
    );
    let codes: BTreeMap<i32, i32> = response
        .partitions
        .iter()
        .map(|r| (r.partition, r.error_code))
        .collect();
    let expected_codes: BTreeMap<i32, i32> = (0..3)
        .map(|p| {
            let code = if moved.contains(&p) {
                ErrorCode::None
            } else {
                ErrorCode::ElectionNotNeeded
            };
            (p, code as i32)
        })
        .collect();
    assert_eq!(codes, expected_codes, "{:?}", response.partitions);
    for p in 0..3 {
        let (state, _) = partition_state(&client, "preferred", p).await;
        assert_eq!(state.leader.0, preferred[&p], "partition {p} in ZooKeeper");
    }
    agreed_partitions(&all, "preferred", 3, |p| {
        p.leader == preferred[&p.partition]
    })
    .await;
    let (leader, _) = produce_to_leader(&all, "preferred", moved[0], LIMIT).await;
    assert_eq!(leader, victim);

    let again = elect_leaders(asked, "preferred", 3).await;
    assert_eq!(
        again.error_code,
        ErrorCode::None as i32,
        "{}",
        again.error_message
    );
    assert_eq!(again.partitions.len(), 3);
    for result in &again.partitions {
        assert_eq!(
            result.error_code,
            ErrorCode::ElectionNotNeeded as i32,
            "partition {}: {}",
            result.partition,
            result.error_message
        );
    }

    // Again, triggered through /admin/preferred_replica_election as kafka-preferred-replica-
    // election.sh --zookeeper does.
    drop(all);
    let moved = bounce_leader(&mut brokers, victim, "preferred", 3).await;
    let all: Vec<&Broker> = brokers.iter().collect();
    wait_for_full_isrs(&all, "preferred", 3).await;
    let partition = moved[0];
    let (state, _) = partition_state(&client, "preferred", partition).await;
    assert_ne!(state.leader.0, victim);
    let payload = format!(
        r#"{{"version":1,"partitions":[{{"topic":"preferred","partition":{partition}}}]}}"#
    );
    client
        .create(
            "/admin/preferred_replica_election",
            payload.as_bytes(),
            &zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all()),
        )
        .await
        .unwrap();
    eventually(
        "the znode's election to run and the znode to go",
        LIMIT,
        || async {
            let (state, _) = partition_state(&client, "preferred", partition).await;
            let gone = client
                .check_stat("/admin/preferred_replica_election")
                .await
                .ok()?
                .is_none();
            (gone && state.leader.0 == victim).then_some(())
        },
    )
    .await;
    agreed_partitions(&all, "preferred", 3, |p| {
        p.partition != partition || p.leader == victim
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// 4. Automatic rebalance

#[tokio::test]
async fn leaders_return_to_preferred_replicas_by_themselves_with_auto_rebalance() {
    let zookeeper = ZooKeeper::start().unwrap();
    let mut brokers = start_cluster_with(
        &zookeeper,
        &[1, 2, 3],
        &[("leader.imbalance.check.interval.seconds", "1")],
    )
    .await;
    let client = zk_client(&zookeeper).await;
    create(&brokers[0], "balanced", 6, 3).await;
    {
        let all: Vec<&Broker> = brokers.iter().collect();
        agreed_partitions(&all, "balanced", 6, |p| p.leader >= 0).await;
    }
    let preferred = preferred_leaders(&client, "balanced").await;
    let (controller, _) = controller_in_zk(&client).await;
    let victim = [1, 2, 3].into_iter().find(|id| *id != controller).unwrap();

    let moved = bounce_leader(&mut brokers, victim, "balanced", 6).await;
    assert_eq!(moved.len(), 2, "broker {victim} prefers 2 of 6 partitions");
    let all: Vec<&Broker> = brokers.iter().collect();
    // Out of the ISR the victim cannot be elected, so leadership is still away.
    for &p in &moved {
        let (state, _) = partition_state(&client, "balanced", p).await;
        if !state.isr.contains(&BrokerId(victim)) {
            assert_ne!(state.leader.0, victim, "partition {p}");
        }
    }
    let started = Instant::now();
    // No request: the controller's check (every second, 100 % > 10 % imbalance) does it.
    eventually(
        "preferred leaders everywhere in ZooKeeper",
        LIMIT,
        || async {
            for p in 0..6 {
                let (state, _) = partition_state(&client, "balanced", p).await;
                if state.leader.0 != preferred[&p] {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
    agreed_partitions(&all, "balanced", 6, |p| p.leader == preferred[&p.partition]).await;
    eprintln!(
        "auto rebalance: preferred leaders back {:?} after broker {victim} rejoined the ISR",
        started.elapsed()
    );
    let (leader, _) = produce_to_leader(&all, "balanced", moved[0], LIMIT).await;
    assert_eq!(leader, victim);
}

// ---------------------------------------------------------------------------------------------
// 5. Rolling restart under production

/// What the producer task saw.
#[derive(Debug, Default)]
struct ProducerLog {
    /// Acknowledged produce requests.
    succeeded: usize,
    /// Answers with a retriable error code, by code.
    retriable: BTreeMap<i32, usize>,
    /// Metadata naming no leader (leader -1) for the partition.
    no_leader_in_metadata: usize,
    /// Metadata answers without the topic, by broker (a broker that just started answers from
    /// an empty cache until the controller's UpdateMetadata arrives; clients ask elsewhere).
    topic_unknown_in_metadata: BTreeMap<i32, usize>,
    /// Produce calls that failed at the transport while their broker was stopping or stopped,
    /// by broker and status code.
    transport_errors: BTreeMap<(i32, String), usize>,
    /// Anything else: (broker, code or status, message).
    unexpected: Vec<(i32, String, String)>,
    /// The longest time from a produce's first attempt to its acknowledgement.
    longest_stall: Duration,
}

/// Produces small batches to partitions 0..partitions in turn, each retried at the leader
/// named by Metadata (asked of each broker in turn) until acknowledged, until `stop` is set.
async fn produce_continuously(
    endpoints: Vec<(i32, Channel)>,
    topic: String,
    partitions: i32,
    log: Arc<Mutex<ProducerLog>>,
    down: Arc<Mutex<BTreeSet<i32>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let retriable = [
        ErrorCode::NotLeaderOrFollower as i32,
        ErrorCode::LeaderNotAvailable as i32,
    ];
    let payload = batch(&records("rolling", 2, t0()));
    let mut round = 0usize;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let partition = (round % partitions as usize) as i32;
        round += 1;
        let first_attempt = Instant::now();
        'attempts: loop {
            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                return;
            }
            // Ask the brokers in turn, starting with a different one each time.
            let mut leader = None;
            for k in 0..endpoints.len() {
                let (via, channel) = &endpoints[(round + k) % endpoints.len()];
                let mut client = BrokerClient::new(channel.clone());
                let Ok(response) = client
                    .metadata(MetadataRequest {
                        topics: vec![topic.clone()],
                    })
                    .await
                else {
                    continue;
                };
                let response = response.into_inner();
                let Some(meta) = response.topics.iter().find(|t| t.topic == topic) else {
                    continue;
                };
                if meta.error_code == ErrorCode::UnknownTopicOrPartition as i32 {
                    *log.lock()
                        .unwrap()
                        .topic_unknown_in_metadata
                        .entry(*via)
                        .or_default() += 1;
                    continue;
                }
                let Some(p) = meta.partitions.iter().find(|p| p.partition == partition) else {
                    log.lock().unwrap().unexpected.push((
                        *via,
                        "metadata".into(),
                        format!("partition {partition} missing: {meta:?}"),
                    ));
                    continue;
                };
                leader = Some(p.leader);
                break;
            }
            let target = match leader {
                Some(id) if id >= 0 => endpoints.iter().find(|(b, _)| *b == id),
                Some(_) => {
                    log.lock().unwrap().no_leader_in_metadata += 1;
                    None
                }
                None => None,
            };
            let Some((target, channel)) = target else {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue 'attempts;
            };
            let mut client = BrokerClient::new(channel.clone());
            let request = support::raw_request(&topic, partition, 1, payload.clone());
            match client.produce(request).await {
                Ok(response) => {
                    let result = &response.into_inner().topics[0].partitions[0];
                    let mut log = log.lock().unwrap();
                    if result.error_code == ErrorCode::None as i32 {
                        log.succeeded += 1;
                        log.longest_stall = log.longest_stall.max(first_attempt.elapsed());
                        break 'attempts;
                    }
                    if retriable.contains(&result.error_code) {
                        *log.retriable.entry(result.error_code).or_default() += 1;
                    } else {
                        log.unexpected.push((
                            *target,
                            format!("{:?}", ErrorCode::try_from(result.error_code)),
                            result.error_message.clone(),
                        ));
                    }
                }
                Err(status) => {
                    let stopping = down.lock().unwrap().contains(target);
                    let mut log = log.lock().unwrap();
                    if stopping {
                        let key = (*target, format!("{:?}", status.code()));
                        *log.transport_errors.entry(key).or_default() += 1;
                    } else {
                        log.unexpected.push((
                            *target,
                            format!("{:?}", status.code()),
                            status.message().to_owned(),
                        ));
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test]
async fn a_rolling_restart_under_production_only_costs_retriable_errors() {
    let zookeeper = ZooKeeper::start().unwrap();
    let mut brokers = start_cluster(&zookeeper, &[1, 2, 3]).await;
    let client = zk_client(&zookeeper).await;
    create(&brokers[0], "rolling", 3, 3).await;
    {
        let all: Vec<&Broker> = brokers.iter().collect();
        agreed_partitions(&all, "rolling", 3, |p| p.leader >= 0).await;
    }
    // Channels reconnect by themselves after a restart (same port); a call to a stopped broker
    // fails fast instead of hanging.
    let endpoints: Vec<(i32, Channel)> = brokers
        .iter()
        .map(|b| {
            let channel = Endpoint::from_shared(b.endpoint())
                .unwrap()
                .connect_timeout(Duration::from_secs(1))
                .timeout(Duration::from_secs(10))
                .connect_lazy();
            (b.id(), channel)
        })
        .collect();
    let log = Arc::new(Mutex::new(ProducerLog::default()));
    let down = Arc::new(Mutex::new(BTreeSet::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let producer = tokio::spawn(produce_continuously(
        endpoints,
        "rolling".into(),
        3,
        log.clone(),
        down.clone(),
        stop.clone(),
    ));
    let succeeded = || log.lock().unwrap().succeeded;
    let progress = |what: String| {
        let target = succeeded() + 10;
        let log = log.clone();
        async move {
            eventually(&what, LIMIT, || {
                let done = log.lock().unwrap().succeeded >= target;
                async move { done.then_some(()) }
            })
            .await
        }
    };
    progress("the producer to start".into()).await;

    // Controller last, as operators do.
    let (controller, _) = controller_in_zk(&client).await;
    let mut order: Vec<i32> = [1, 2, 3]
        .into_iter()
        .filter(|id| *id != controller)
        .collect();
    order.push(controller);
    for id in order {
        let index = brokers.iter().position(|b| b.id() == id).unwrap();
        let started = Instant::now();
        down.lock().unwrap().insert(id);
        brokers[index].terminate().await.expect("clean shutdown");
        eprintln!(
            "rolling restart: broker {id} stopped in {:?}",
            started.elapsed()
        );
        progress(format!("produces while broker {id} is down")).await;
        brokers[index].restart().await.expect("restart");
        let all: Vec<&Broker> = brokers.iter().collect();
        // Before the next broker: back in every ISR (no under-replicated partition).
        wait_for_full_isrs(&all, "rolling", 3).await;
        down.lock().unwrap().remove(&id);
        progress(format!("produces after broker {id} is back")).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    tokio::time::timeout(LIMIT, producer)
        .await
        .expect("producer stops")
        .expect("producer task");

    let log = log.lock().unwrap();
    eprintln!(
        "rolling restart: {} produces acknowledged, longest stall {:?}; retriable answers {:?} \
         (6 = NOT_LEADER_OR_FOLLOWER, 5 = LEADER_NOT_AVAILABLE), leader -1 in metadata {} times, \
         topic unknown in metadata by broker {:?}, transport errors at stopping brokers {:?}",
        log.succeeded,
        log.longest_stall,
        log.retriable,
        log.no_leader_in_metadata,
        log.topic_unknown_in_metadata,
        log.transport_errors
    );
    assert!(
        log.unexpected.is_empty(),
        "non-retriable errors: {:?}",
        log.unexpected
    );
}
