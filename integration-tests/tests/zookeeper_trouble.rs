//! A three-broker cluster when ZooKeeper itself is in trouble: frozen past the clients' ping
//! timeout (connections drop and come back on the same sessions), and frozen past every session
//! (all registrations and the controller vanish at once).

mod support;

use std::time::Duration;

use tributary_integration_tests::{Broker, ZooKeeper};
use tributary_proto::v1::ErrorCode;

use support::cluster::{
    LIMIT, agreed_partitions, controller_in_zk, controller_in_zk_opt, create, eventually,
    produce_to_leader, start_cluster, topic_metadata, zk_client,
};
use support::{batch, produce_raw, records, t0};

#[tokio::test]
async fn the_controller_keeps_working_after_every_broker_lost_its_zookeeper_connection() {
    let mut zookeeper = ZooKeeper::start().unwrap();
    let mut brokers = start_cluster(&zookeeper, &[1, 2, 3]).await;
    let client = zk_client(&zookeeper).await;
    create(&brokers[0], "before", 1, 3).await;
    let all: Vec<&Broker> = brokers.iter().collect();
    agreed_partitions(&all, "before", 1, |p| p.leader >= 0).await;
    let (controller, epoch) = controller_in_zk(&client).await;

    // Freeze ZooKeeper for 2.5 s: with 3 s sessions every client goes Disconnected (after 2 s
    // without a ping answer) and reconnects when it resumes, keeping its session. The
    // controller re-reads the whole tree after the reconnection (watch events may be lost
    // across it).
    zookeeper.pause().unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    zookeeper.resume().unwrap();

    // The same controller (or, if a session did expire, a new one) still acts: a new topic
    // comes online, and a leader's death moves leadership.
    create(&brokers[1], "after", 3, 3).await;
    let all: Vec<&Broker> = brokers.iter().collect();
    agreed_partitions(&all, "after", 3, |p| p.leader >= 0).await;
    let (now_controller, now_epoch) = controller_in_zk(&client).await;
    eprintln!(
        "controller before the freeze: {controller} at epoch {epoch}; after: {now_controller} at epoch {now_epoch}"
    );
    // Brokers still hear of config changes (their watcher re-arms on the same session): lower
    // max.message.bytes of "after" and its leaders refuse a 4 KiB batch.
    let mut admin = brokers[2].admin_client().unwrap();
    let altered = admin
        .alter_configs(tributary_proto::v1::AlterConfigsRequest {
            topics: vec![tributary_proto::v1::AlterConfigsTopic {
                name: "after".into(),
                set: [("max.message.bytes".to_string(), "1024".to_string())].into(),
                delete: vec![],
            }],
            validate_only: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(altered.results[0].error_code, 0, "{:?}", altered.results[0]);
    let big = batch(&records(&"x".repeat(4096), 1, t0()));
    eventually(
        "the leader applying the new max.message.bytes",
        LIMIT,
        || {
            let big = big.clone();
            let all = &all;
            async move {
                let meta = topic_metadata(all[0], "after").await?;
                let leader = meta.partitions.iter().find(|p| p.partition == 0)?.leader;
                let target = all.iter().find(|b| b.id() == leader)?;
                let mut client = target.broker_client().ok()?;
                let result = produce_raw(&mut client, "after", 0, big).await;
                (result.error_code == ErrorCode::MessageTooLarge as i32).then_some(())
            }
        },
    )
    .await;

    let victim = [1, 2, 3]
        .into_iter()
        .find(|id| *id != now_controller)
        .unwrap();
    let index = brokers.iter().position(|b| b.id() == victim).unwrap();
    brokers[index].kill9().unwrap();
    let survivors: Vec<&Broker> = brokers.iter().filter(|b| b.id() != victim).collect();
    agreed_partitions(&survivors, "after", 3, |p| {
        p.leader >= 0 && p.leader != victim
    })
    .await;
    for p in 0..3 {
        produce_to_leader(&survivors, "after", p, LIMIT).await;
    }
}

#[tokio::test]
async fn the_cluster_recovers_when_zookeeper_expires_every_session() {
    let mut zookeeper = ZooKeeper::start().unwrap();
    let brokers = start_cluster(&zookeeper, &[1, 2, 3]).await;
    let client = zk_client(&zookeeper).await;
    create(&brokers[0], "survivor", 3, 3).await;
    let all: Vec<&Broker> = brokers.iter().collect();
    agreed_partitions(&all, "survivor", 3, |p| p.leader >= 0).await;
    let (_, epoch) = controller_in_zk(&client).await;
    drop(client);

    // Freeze ZooKeeper well past the 3 s sessions: when it resumes it expires every broker's
    // session (registrations and /controller vanish); brokers register again with new
    // sessions and elect a new controller, which reloads the cluster from ZooKeeper.
    zookeeper.pause().unwrap();
    tokio::time::sleep(Duration::from_secs(6)).await;
    zookeeper.resume().unwrap();

    let client = zk_client(&zookeeper).await;
    let (controller, new_epoch) = eventually("a controller with a newer epoch", LIMIT, || async {
        let (c, e) = controller_in_zk_opt(&client).await?;
        (e > epoch).then_some((c, e))
    })
    .await;
    eprintln!(
        "after every session expired: controller {controller} at epoch {new_epoch} (was {epoch})"
    );
    let (ids, _) = client.get_children("/brokers/ids").await.unwrap();
    let mut ids: Vec<String> = ids;
    ids.sort();
    assert_eq!(ids, ["1", "2", "3"], "every broker registered again");
    agreed_partitions(&all, "survivor", 3, |p| {
        p.leader >= 0 && p.offline_replicas.is_empty()
    })
    .await;
    for p in 0..3 {
        produce_to_leader(&all, "survivor", p, LIMIT).await;
    }
    create(&brokers[1], "newcomer", 2, 3).await;
    agreed_partitions(&all, "newcomer", 2, |p| p.leader >= 0).await;
}
