//! A broker's presence in ZooKeeper: the cluster id, the ephemeral `/brokers/ids/<id>` in
//! Kafka's format (its czxid is the broker epoch), refusal of a duplicate id, re-registration
//! after a session expiry, and the chroot of `zookeeper.connect`.

mod support;

use std::time::{Duration, Instant};

use tributary_integration_tests::{Broker, BrokerConfig, ZooKeeper};
use tributary_proto::v1::MetadataRequest;
use tributary_zk_layout::payloads::{BrokerRegistration, ClusterId, EndPoint, Payload};
use zookeeper_client as zk;

async fn zk_client(zookeeper: &ZooKeeper, chroot: &str) -> zk::Client {
    zk::Client::connector()
        .with_session_timeout(Duration::from_secs(10))
        .connect(&format!("{}{chroot}", zookeeper.connect_string()))
        .await
        .expect("connect to ZooKeeper")
}

/// The registration znode's data and czxid, if it exists.
async fn registration(client: &zk::Client, id: i32) -> Option<(Vec<u8>, i64)> {
    match client.get_data(&format!("/brokers/ids/{id}")).await {
        Ok((data, stat)) => Some((data, stat.czxid)),
        Err(zk::Error::NoNode) => None,
        Err(e) => panic!("reading /brokers/ids/{id}: {e}"),
    }
}

/// Polls until the registration's presence (and czxid, if given) matches, or `limit` passes.
async fn wait_for(
    client: &zk::Client,
    id: i32,
    limit: Duration,
    done: impl Fn(&Option<(Vec<u8>, i64)>) -> bool,
) -> Option<(Vec<u8>, i64)> {
    let deadline = Instant::now() + limit;
    loop {
        let current = registration(client, id).await;
        if done(&current) || Instant::now() > deadline {
            return current;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_broker_registers_in_kafkas_format_and_agrees_on_the_cluster_id() {
    let zookeeper = ZooKeeper::start().unwrap();
    let broker = Broker::start(BrokerConfig::new(1, zookeeper.connect_string()))
        .await
        .unwrap();
    let client = zk_client(&zookeeper, "").await;

    let (data, czxid) = registration(&client, 1).await.expect("registered");
    assert!(czxid > 0, "the broker epoch is the registration's czxid");
    let json: serde_json::Value = serde_json::from_slice(&data).unwrap();
    assert_eq!(json["version"], 5);
    assert_eq!(json["host"], "127.0.0.1");
    assert_eq!(json["port"], i64::from(broker.port()));
    assert_eq!(json["jmx_port"], -1);
    assert_eq!(
        json["endpoints"],
        serde_json::json!([format!("PLAINTEXT://127.0.0.1:{}", broker.port())])
    );
    assert_eq!(
        json["listener_security_protocol_map"],
        serde_json::json!({"PLAINTEXT": "PLAINTEXT"})
    );
    assert!(
        json["timestamp"].is_string(),
        "Kafka writes the timestamp as a string: {json}"
    );
    let decoded = BrokerRegistration::decode(&data).unwrap();
    assert_eq!(
        decoded.parsed_endpoints(),
        vec![EndPoint::plaintext("127.0.0.1", broker.port())]
    );

    // /cluster/id, meta.properties and Metadata all name the same cluster.
    let (cluster, _) = client.get_data("/cluster/id").await.unwrap();
    let cluster = ClusterId::decode(&cluster).unwrap().id;
    assert!(
        String::from_utf8_lossy(&client.get_data("/cluster/id").await.unwrap().0)
            .contains(r#""version":"1""#)
    );
    let meta = std::fs::read_to_string(broker.data_dir().join("meta.properties")).unwrap();
    assert!(meta.contains(&format!("cluster.id={cluster}")), "{meta}");
    let metadata = broker
        .broker_client()
        .unwrap()
        .metadata(MetadataRequest { topics: vec![] })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(metadata.cluster_id, cluster);

    // Every persistent path Kafka's brokers ensure exists.
    for path in [
        "/brokers/topics",
        "/config/topics",
        "/config/changes",
        "/admin/delete_topics",
        "/isr_change_notification",
    ] {
        assert!(
            client.check_stat(path).await.unwrap().is_some(),
            "{path} missing"
        );
    }
}

#[tokio::test]
async fn a_second_broker_with_the_same_id_refuses_to_start() {
    let zookeeper = ZooKeeper::start().unwrap();
    let _first = Broker::start(BrokerConfig::new(7, zookeeper.connect_string()))
        .await
        .unwrap();
    let error = Broker::start(
        BrokerConfig::new(7, zookeeper.connect_string())
            .with_startup_timeout(Duration::from_secs(20)),
    )
    .await
    .expect_err("a duplicate broker.id must not start");
    let text = format!("{error:#}");
    assert!(
        text.contains("another live broker holds broker.id 7"),
        "{text}"
    );
}

#[tokio::test]
async fn clean_shutdown_deregisters_at_once_and_a_restart_gets_a_newer_epoch() {
    let zookeeper = ZooKeeper::start().unwrap();
    // A long session: only an explicit close can remove the registration within the bound.
    let config = BrokerConfig::new(1, zookeeper.connect_string())
        .with_override("zookeeper.session.timeout.ms", 30_000);
    let mut broker = Broker::start(config).await.unwrap();
    let client = zk_client(&zookeeper, "").await;
    let (_, first_epoch) = registration(&client, 1).await.expect("registered");

    broker.terminate().await.unwrap();
    let gone = wait_for(&client, 1, Duration::from_secs(10), |r| r.is_none()).await;
    assert!(
        gone.is_none(),
        "a clean shutdown closes the session, so the registration goes at once"
    );

    broker.restart().await.unwrap();
    let (_, second_epoch) = registration(&client, 1).await.expect("registered again");
    assert!(
        second_epoch > first_epoch,
        "broker epochs grow: {first_epoch} then {second_epoch}"
    );
}

#[tokio::test]
async fn after_kill9_a_restart_waits_for_the_old_registration_and_replaces_it() {
    let zookeeper = ZooKeeper::start().unwrap();
    let mut broker = Broker::start(BrokerConfig::new(1, zookeeper.connect_string()))
        .await
        .unwrap();
    let client = zk_client(&zookeeper, "").await;
    let (_, first_epoch) = registration(&client, 1).await.expect("registered");
    broker.kill9().unwrap();
    // The dead process's session still holds /brokers/ids/1 until it expires (3 s in tests);
    // the restarted broker recognises its own endpoint and waits instead of refusing to start.
    broker.restart().await.unwrap();
    let (_, second_epoch) = registration(&client, 1).await.expect("registered again");
    assert!(second_epoch > first_epoch);
}

#[tokio::test]
async fn after_a_session_expiry_the_broker_registers_again() {
    let zookeeper = ZooKeeper::start().unwrap();
    let mut broker = Broker::start(BrokerConfig::new(3, zookeeper.connect_string()))
        .await
        .unwrap();
    let client = zk_client(&zookeeper, "").await;
    let (_, first_epoch) = registration(&client, 3).await.expect("registered");

    // Frozen past its 3 s session: ZooKeeper expires the session and drops the registration.
    broker.pause().unwrap();
    let gone = wait_for(&client, 3, Duration::from_secs(20), |r| r.is_none()).await;
    broker.resume().unwrap();
    assert!(gone.is_none(), "the frozen broker's registration expires");

    let back = wait_for(&client, 3, Duration::from_secs(30), |r| r.is_some()).await;
    let (_, second_epoch) = back.expect("the broker registers again with a new session");
    assert!(second_epoch > first_epoch);
    // And it still serves.
    let mut data = broker.broker_client().unwrap();
    data.metadata(MetadataRequest { topics: vec![] })
        .await
        .unwrap();
}

#[tokio::test]
async fn the_chroot_of_zookeeper_connect_is_honoured() {
    let zookeeper = ZooKeeper::start().unwrap();
    let connect = format!("{}/tributary/prod", zookeeper.connect_string());
    let _broker = Broker::start(BrokerConfig::new(2, connect)).await.unwrap();
    let chrooted = zk_client(&zookeeper, "/tributary/prod").await;
    assert!(
        registration(&chrooted, 2).await.is_some(),
        "registered under the chroot"
    );
    let root = zk_client(&zookeeper, "").await;
    assert!(
        root.check_stat("/brokers").await.unwrap().is_none(),
        "nothing written outside the chroot"
    );
    assert!(
        root.check_stat("/tributary/prod/cluster/id")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn log_dirs_of_another_cluster_are_refused() {
    let zookeeper = ZooKeeper::start().unwrap();
    let mut broker = Broker::start(BrokerConfig::new(1, zookeeper.connect_string()))
        .await
        .unwrap();
    broker.terminate().await.unwrap();
    // ZooKeeper now belongs to another cluster.
    let client = zk_client(&zookeeper, "").await;
    let other = ClusterId::new("AAAAAAAAAAAAAAAAAAAAAA").encode();
    client.set_data("/cluster/id", &other, None).await.unwrap();
    let error = broker
        .restart()
        .await
        .expect_err("must not join another cluster");
    let text = format!("{error:#}");
    assert!(text.contains("trying to join the wrong cluster"), "{text}");
}
