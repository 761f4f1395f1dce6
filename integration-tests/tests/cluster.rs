//! A three-broker cluster coordinated through a real ZooKeeper: topic placement, leaders and
//! ISR as the controller decides them, metadata from any broker, leader failover after kill -9,
//! a frozen controller fenced by its successor, topic deletion, topics written straight into
//! ZooKeeper, and controlled shutdown.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tributary_integration_tests::{Broker, ZooKeeper};
use tributary_proto::v1::{DeleteTopicsRequest, ErrorCode, MetadataRequest};
use tributary_zk_layout::payloads::{PartitionState, Payload, TopicAssignment};
use tributary_zk_layout::{BrokerId, PartitionId};
use zookeeper_client as zk;

use support::cluster::{
    LIMIT, agreed_partitions, controller_in_zk, controller_in_zk_opt, create, eventually,
    partition_state, produce_to_leader, start_cluster, topic_metadata, zk_client,
};
use support::{batch, produce_raw, records, t0, try_create_topic};

#[tokio::test]
async fn topics_are_placed_led_and_announced_as_the_controller_decides() {
    let zookeeper = ZooKeeper::start().unwrap();
    let brokers = start_cluster(&zookeeper, &[1, 2, 3]).await;
    let all: Vec<&Broker> = brokers.iter().collect();
    let client = zk_client(&zookeeper).await;

    // Ask a broker that is not necessarily the controller.
    create(&brokers[2], "placed", 6, 3).await;

    // Exactly the (i + j) mod n assignment over the sorted live brokers [1, 2, 3].
    let (data, _) = client.get_data("/brokers/topics/placed").await.unwrap();
    let assignment = TopicAssignment::decode(&data).unwrap();
    let ids = [1, 2, 3];
    let expected: BTreeMap<PartitionId, Vec<BrokerId>> = (0..6)
        .map(|i: i32| {
            let replicas = (0..3)
                .map(|j| BrokerId(ids[((i + j) % 3) as usize]))
                .collect();
            (PartitionId(i), replicas)
        })
        .collect();
    assert_eq!(assignment.partitions, expected);
    assert!(
        client.get_data("/config/topics/placed").await.is_ok(),
        "the topic's config znode exists"
    );

    // The controller wrote each state: leader = first replica, ISR = all replicas, epoch 0.
    let (_, controller_epoch) = controller_in_zk(&client).await;
    for (partition, replicas) in &expected {
        let (state, _) = partition_state(&client, "placed", partition.0).await;
        assert_eq!(state.leader, replicas[0], "partition {partition}");
        assert_eq!(state.isr, *replicas, "partition {partition}");
        assert_eq!(state.leader_epoch.0, 0);
        assert_eq!(state.controller_epoch.0, controller_epoch);
    }

    // Every broker answers Metadata the same way, from its cache.
    let partitions = agreed_partitions(&all, "placed", 6, |p| p.leader >= 0).await;
    for p in &partitions {
        let replicas: Vec<i32> = expected[&PartitionId(p.partition)]
            .iter()
            .map(|b| b.0)
            .collect();
        assert_eq!(p.replicas, replicas);
        assert_eq!(p.leader, replicas[0]);
        assert_eq!(p.isr, replicas);
        assert!(p.offline_replicas.is_empty());
    }
    let mut any = brokers[1].broker_client().unwrap();
    let everything = any
        .metadata(MetadataRequest { topics: vec![] })
        .await
        .unwrap()
        .into_inner();
    let mut broker_ids: Vec<i32> = everything.brokers.iter().map(|b| b.id).collect();
    broker_ids.sort();
    assert_eq!(broker_ids, vec![1, 2, 3]);

    // The leader takes writes; a follower refuses them and names the leader.
    let (leader, base) = produce_to_leader(&all, "placed", 0, LIMIT).await;
    assert_eq!((leader, base), (1, 0));
    let follower = brokers.iter().find(|b| b.id() == 2).unwrap();
    let mut client2 = follower.broker_client().unwrap();
    let refused = produce_raw(&mut client2, "placed", 0, batch(&records("x", 1, t0()))).await;
    assert_eq!(refused.error_code, ErrorCode::NotLeaderOrFollower as i32);
    assert!(
        refused.error_message.contains('1'),
        "the error names the leader: {}",
        refused.error_message
    );

    // Bad inputs are refused with clear errors.
    let mut admin = brokers[0].admin_client().unwrap();
    let too_many = try_create_topic(&mut admin, "wide", 1, 4, &[]).await;
    assert_eq!(
        too_many.error_code,
        ErrorCode::InvalidReplicationFactor as i32
    );
    assert!(
        too_many.error_message.contains('4') && too_many.error_message.contains('3'),
        "{}",
        too_many.error_message
    );
    let again = try_create_topic(&mut admin, "placed", 1, 1, &[]).await;
    assert_eq!(again.error_code, ErrorCode::TopicAlreadyExists as i32);
    let collides = try_create_topic(&mut admin, "pla_ced", 1, 1, &[]).await;
    assert_eq!(
        collides.error_code,
        ErrorCode::None as i32,
        "{}",
        collides.error_message
    );
    let collides = try_create_topic(&mut admin, "pla.ced", 1, 1, &[]).await;
    assert_eq!(collides.error_code, ErrorCode::InvalidTopicException as i32);
    let bad_name = try_create_topic(&mut admin, "no spaces", 1, 1, &[]).await;
    assert_eq!(bad_name.error_code, ErrorCode::InvalidTopicException as i32);
}

#[tokio::test]
async fn killing_a_leader_moves_leadership_to_an_isr_member_and_its_return_makes_it_a_follower() {
    let zookeeper = ZooKeeper::start().unwrap();
    let mut brokers = start_cluster(&zookeeper, &[1, 2, 3]).await;
    let client = zk_client(&zookeeper).await;
    create(&brokers[0], "failover", 3, 3).await;
    let all: Vec<&Broker> = brokers.iter().collect();
    agreed_partitions(&all, "failover", 3, |p| p.leader >= 0 && p.isr.len() == 3).await;

    // Kill the leader of a partition it leads that is not the controller, so the measured
    // failover is a leader election (controller failover is measured in controller_election).
    let (controller, _) = controller_in_zk(&client).await;
    let partitions = topic_metadata(&brokers[0], "failover")
        .await
        .unwrap()
        .partitions;
    let victim_partition = partitions
        .iter()
        .find(|p| p.leader != controller)
        .expect("a partition led by a non-controller");
    let victim = victim_partition.leader;
    let partition = victim_partition.partition;
    let (before, _) = partition_state(&client, "failover", partition).await;
    produce_to_leader(&all, "failover", partition, LIMIT).await;

    let index = brokers.iter().position(|b| b.id() == victim).unwrap();
    let killed_at = Instant::now();
    brokers[index].kill9().unwrap();
    let survivors: Vec<&Broker> = brokers.iter().filter(|b| b.id() != victim).collect();
    let (new_leader, _) = produce_to_leader(&survivors, "failover", partition, LIMIT).await;
    let took = killed_at.elapsed();
    eprintln!(
        "leader failover after kill -9: {took:?} from kill to the first produce acknowledged by the new leader (zookeeper.session.timeout.ms=3000)"
    );
    assert_ne!(new_leader, victim);

    // The new leader is the first live ISR member in assignment order, with a bumped epoch and
    // the dead broker out of the ISR; metadata lists it offline.
    let (after, _) = partition_state(&client, "failover", partition).await;
    let expected_leader = before.isr.iter().copied().find(|b| b.0 != victim).unwrap();
    assert_eq!(after.leader, expected_leader);
    assert_eq!(after.leader_epoch.0, before.leader_epoch.0 + 1);
    assert!(!after.isr.contains(&BrokerId(victim)));
    let seen = agreed_partitions(&survivors, "failover", 3, |p| {
        p.leader != victim && p.offline_replicas == vec![victim]
    })
    .await;
    assert!(seen.iter().all(|p| !p.isr.contains(&victim)));

    // The broker comes back: it is a live replica again (a follower), leadership stays put.
    brokers[index].restart().await.unwrap();
    let all: Vec<&Broker> = brokers.iter().collect();
    let back = agreed_partitions(&all, "failover", 3, |p| p.offline_replicas.is_empty()).await;
    let moved = back.iter().find(|p| p.partition == partition).unwrap();
    assert_eq!(moved.leader, expected_leader.0);
    let mut returned = brokers[index].broker_client().unwrap();
    let refused = produce_raw(
        &mut returned,
        "failover",
        partition,
        batch(&records("x", 1, t0())),
    )
    .await;
    assert_eq!(refused.error_code, ErrorCode::NotLeaderOrFollower as i32);
}

#[tokio::test]
async fn a_controller_frozen_past_its_session_is_fenced_by_its_successor() {
    let zookeeper = ZooKeeper::start().unwrap();
    let mut brokers = start_cluster(&zookeeper, &[1, 2, 3]).await;
    let client = zk_client(&zookeeper).await;
    create(&brokers[0], "fenced", 3, 3).await;
    let all: Vec<&Broker> = brokers.iter().collect();
    agreed_partitions(&all, "fenced", 3, |p| p.leader >= 0).await;
    let (old, old_epoch) = controller_in_zk(&client).await;

    let index = brokers.iter().position(|b| b.id() == old).unwrap();
    brokers[index].pause().unwrap();
    let (new, new_epoch) = eventually("a new controller", LIMIT, || async {
        let (c, e) = controller_in_zk_opt(&client).await?;
        (c != old).then_some((c, e))
    })
    .await;
    assert!(new_epoch > old_epoch);
    // The new controller moved the frozen broker's leaderships away.
    let others: Vec<&Broker> = brokers.iter().filter(|b| b.id() != old).collect();
    agreed_partitions(&others, "fenced", 3, |p| p.leader >= 0 && p.leader != old).await;
    let states_before: Vec<(PartitionState, i32)> = {
        let mut v = Vec::new();
        for p in 0..3 {
            v.push(partition_state(&client, "fenced", p).await);
        }
        v
    };

    // Resumed, the old controller learns it lost: it writes nothing (every write would fail
    // the /controller_epoch check), and every broker agrees on the new controller.
    brokers[index].resume().unwrap();
    let all: Vec<&Broker> = brokers.iter().collect();
    eventually("everyone agreeing on the new controller", LIMIT, || async {
        for broker in &all {
            let mut c = broker.broker_client().ok()?;
            let meta = c
                .metadata(MetadataRequest { topics: vec![] })
                .await
                .ok()?
                .into_inner();
            if meta.controller_id != new {
                return None;
            }
        }
        Some(())
    })
    .await;
    assert_eq!(controller_in_zk(&client).await, (new, new_epoch));
    for (p, (state, version)) in states_before.iter().enumerate() {
        let (now, now_version) = partition_state(&client, "fenced", p as i32).await;
        // Only the new controller may have written since, and the leaders that put the old
        // broker back into their ISR once it caught up (they copy the controller epoch of
        // their last LeaderAndIsr, the new controller's); nothing carries the old epoch again.
        assert!(now.controller_epoch.0 >= state.controller_epoch.0);
        assert_ne!(
            now.controller_epoch.0, old_epoch,
            "partition {p} rewritten by the fenced controller"
        );
        assert!(now_version >= *version);
    }
    // The cluster still works.
    produce_to_leader(&all, "fenced", 0, LIMIT).await;
}

fn has_partition_dirs(broker: &Broker, topic: &str) -> bool {
    std::fs::read_dir(broker.data_dir())
        .map(|entries| {
            entries.flatten().any(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_prefix(topic)
                    .and_then(|rest| rest.strip_prefix('-'))
                    .is_some_and(|p| {
                        p.parse::<i32>().is_ok() || p.contains(".delete") || p.contains('.')
                    })
            })
        })
        .unwrap_or(false)
}

#[tokio::test]
async fn deleting_a_topic_removes_its_data_and_znodes_even_on_a_broker_that_was_down() {
    let zookeeper = ZooKeeper::start().unwrap();
    let mut brokers = start_cluster(&zookeeper, &[1, 2, 3]).await;
    let client = zk_client(&zookeeper).await;
    create(&brokers[0], "doomed", 3, 3).await;
    let all: Vec<&Broker> = brokers.iter().collect();
    agreed_partitions(&all, "doomed", 3, |p| p.leader >= 0).await;
    for p in 0..3 {
        produce_to_leader(&all, "doomed", p, LIMIT).await;
    }
    for broker in &brokers {
        assert!(
            has_partition_dirs(broker, "doomed"),
            "broker {} hosts replicas",
            broker.id()
        );
    }

    // Broker 3 is down when the deletion is requested (and is not the controller).
    let (controller, _) = controller_in_zk(&client).await;
    let down = [3, 2, 1].into_iter().find(|id| *id != controller).unwrap();
    let index = brokers.iter().position(|b| b.id() == down).unwrap();
    brokers[index].terminate().await.unwrap();

    let mut admin = brokers[(index + 1) % 3].admin_client().unwrap();
    let response = admin
        .delete_topics(DeleteTopicsRequest {
            topics: vec!["doomed".into()],
            // Broker `down` holds the deletion up: do not wait the default 30 s for it.
            timeout_ms: 2000,
        })
        .await
        .unwrap()
        .into_inner();
    // Accepted, but not complete while a replica broker is down.
    assert_eq!(
        response.results[0].error_code,
        ErrorCode::RequestTimedOut as i32,
        "{:?}",
        response.results[0]
    );
    assert!(response.results[0].error_message.contains("in progress"));
    // Clients stop seeing it at once; the live brokers delete their data; the znodes stay until
    // the down broker has deleted its replicas too.
    let live: Vec<&Broker> = brokers.iter().filter(|b| b.id() != down).collect();
    eventually("the topic gone from live brokers", LIMIT, || async {
        for broker in &live {
            if topic_metadata(broker, "doomed").await.is_some()
                || has_partition_dirs(broker, "doomed")
            {
                return None;
            }
        }
        Some(())
    })
    .await;
    assert!(client.get_data("/admin/delete_topics/doomed").await.is_ok());

    brokers[index].restart().await.unwrap();
    eventually("the deletion to complete", LIMIT, || async {
        let gone = client
            .check_stat("/brokers/topics/doomed")
            .await
            .ok()?
            .is_none()
            && client
                .check_stat("/config/topics/doomed")
                .await
                .ok()?
                .is_none()
            && client
                .check_stat("/admin/delete_topics/doomed")
                .await
                .ok()?
                .is_none();
        (gone && !has_partition_dirs(&brokers[index], "doomed")).then_some(())
    })
    .await;

    // Deleting an unknown topic is refused.
    let mut admin = brokers[0].admin_client().unwrap();
    let response = admin
        .delete_topics(DeleteTopicsRequest {
            topics: vec!["never-was".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        response.results[0].error_code,
        ErrorCode::UnknownTopicOrPartition as i32
    );
}

#[tokio::test]
async fn a_topic_written_straight_into_zookeeper_comes_online() {
    let zookeeper = ZooKeeper::start().unwrap();
    let brokers = start_cluster(&zookeeper, &[1, 2]).await;
    let all: Vec<&Broker> = brokers.iter().collect();
    // Wait for a controller, as an operator would.
    let client = zk_client(&zookeeper).await;
    eventually("a controller", LIMIT, || controller_in_zk_opt(&client)).await;

    // What Kafka's old kafka-topics.sh --zookeeper wrote: the assignment only (version 1, no
    // topic id), no partition states.
    let options = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    client
        .create(
            "/brokers/topics/legacy",
            br#"{"version":1,"partitions":{"0":[2,1],"1":[1,2]}}"#,
            &options,
        )
        .await
        .unwrap();
    let partitions = agreed_partitions(&all, "legacy", 2, |p| p.leader >= 0).await;
    assert_eq!(partitions[0].leader, 2);
    assert_eq!(partitions[1].leader, 1);
    let (state, _) = partition_state(&client, "legacy", 0).await;
    assert_eq!(state.isr, vec![BrokerId(2), BrokerId(1)]);
    produce_to_leader(&all, "legacy", 0, LIMIT).await;
    produce_to_leader(&all, "legacy", 1, LIMIT).await;
}

#[tokio::test]
async fn a_sigterm_moves_leaderships_away_before_the_broker_stops() {
    let zookeeper = ZooKeeper::start().unwrap();
    let mut brokers = start_cluster(&zookeeper, &[1, 2, 3]).await;
    let client = zk_client(&zookeeper).await;
    create(&brokers[0], "rolling", 3, 3).await;
    let all: Vec<&Broker> = brokers.iter().collect();
    agreed_partitions(&all, "rolling", 3, |p| p.leader >= 0).await;

    // Stop a broker that is not the controller: it leads partition(s) of "rolling".
    let (controller, _) = controller_in_zk(&client).await;
    let stopping = [1, 2, 3].into_iter().find(|id| *id != controller).unwrap();
    let index = brokers.iter().position(|b| b.id() == stopping).unwrap();
    let started = Instant::now();
    brokers[index].terminate().await.unwrap();
    let took = started.elapsed();
    // Leadership moved before the registration vanished: the states were rewritten by a
    // controlled shutdown (the ISR still names the stopped broker until it is gone, so look
    // at leaders only) and nobody leads from a stopped broker.
    for p in 0..3 {
        let (state, _) = partition_state(&client, "rolling", p).await;
        assert_ne!(
            state.leader.0, stopping,
            "partition {p} still led by the stopped broker"
        );
    }
    eprintln!("controlled shutdown of broker {stopping} took {took:?}");
    let survivors: Vec<&Broker> = brokers.iter().filter(|b| b.id() != stopping).collect();
    for p in 0..3 {
        produce_to_leader(&survivors, "rolling", p, Duration::from_secs(5)).await;
    }
}

#[tokio::test]
async fn with_no_live_isr_member_the_leader_is_none_unless_the_topic_allows_unclean_election() {
    let zookeeper = ZooKeeper::start().unwrap();
    let mut brokers = start_cluster(&zookeeper, &[1, 2, 3]).await;
    let client = zk_client(&zookeeper).await;
    // Wait for the controller, and keep it (broker 3 when possible) out of the kills below.
    let (controller, _) = eventually("a controller", LIMIT, || controller_in_zk_opt(&client)).await;
    let mut admin = brokers[0].admin_client().unwrap();
    for (topic, unclean) in [("clean", "false"), ("unclean", "true")] {
        let result = try_create_topic(
            &mut admin,
            topic,
            1,
            2,
            &[("unclean.leader.election.enable", unclean)],
        )
        .await;
        assert_eq!(result.error_code, 0, "{}", result.error_message);
    }
    let all: Vec<&Broker> = brokers.iter().collect();
    let clean = agreed_partitions(&all, "clean", 1, |p| p.leader >= 0).await;
    let unclean = agreed_partitions(&all, "unclean", 1, |p| p.leader >= 0).await;
    // Both topics have one partition placed on the same two brokers ((0 + j) mod 3).
    assert_eq!(clean[0].replicas, unclean[0].replicas);
    let (first, second) = (clean[0].replicas[0], clean[0].replicas[1]);
    if controller == first || controller == second {
        eprintln!("the controller ({controller}) is a replica; the kills move it too");
    }

    // The follower dies (it leaves the ISR), then the leader dies (the last ISR member: the
    // ISR keeps it and the leader becomes -1).
    let index_of = |id: i32, brokers: &[Broker]| brokers.iter().position(|b| b.id() == id).unwrap();
    let i_second = index_of(second, &brokers);
    brokers[i_second].kill9().unwrap();
    eventually("the follower out of the ISR", LIMIT, || async {
        let (state, _) = partition_state_opt(&client, "clean", 0).await?;
        (state.isr == vec![BrokerId(first)]).then_some(())
    })
    .await;
    let i_first = index_of(first, &brokers);
    brokers[i_first].kill9().unwrap();
    eventually("no leader", LIMIT, || async {
        let (state, _) = partition_state_opt(&client, "clean", 0).await?;
        (state.leader == BrokerId::NONE && state.isr == vec![BrokerId(first)]).then_some(())
    })
    .await;

    // The out-of-sync replica returns: only the topic that allows it elects it.
    brokers[i_second].restart().await.unwrap();
    eventually(
        "the unclean topic led by the returning replica",
        LIMIT,
        || async {
            let (state, _) = partition_state_opt(&client, "unclean", 0).await?;
            (state.leader == BrokerId(second)).then_some(())
        },
    )
    .await;
    // The controller says so in its log (whichever broker it is now).
    assert!(
        brokers
            .iter()
            .any(|b| b.log_tail(2000).contains("unclean leader election")),
        "no broker logged the unclean election"
    );
    let (state, _) = partition_state(&client, "clean", 0).await;
    assert_eq!(
        state.leader,
        BrokerId::NONE,
        "a clean topic waits for its ISR member"
    );
    // The clean topic comes back when its last ISR member does.
    brokers[i_first].restart().await.unwrap();
    eventually("the clean topic led by its ISR member", LIMIT, || async {
        let (state, _) = partition_state_opt(&client, "clean", 0).await?;
        (state.leader == BrokerId(first)).then_some(())
    })
    .await;
}

async fn partition_state_opt(
    client: &zk::Client,
    topic: &str,
    partition: i32,
) -> Option<(PartitionState, i32)> {
    let path = format!("/brokers/topics/{topic}/partitions/{partition}/state");
    let (data, stat) = client.get_data(&path).await.ok()?;
    Some((PartitionState::decode(&data).ok()?, stat.version))
}
