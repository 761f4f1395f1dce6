//! Admin writes (`zk::admin`) against a real ZooKeeper: exact znode contents as Kafka writes
//! them (compared with the zk-layout golden fixtures), and the typed refusals.

mod common;

use common::{close, connect_ready, start_zookeeper};
use tributary_controller::zk::AdminZkError;
use tributary_controller::zk::admin::{
    add_partitions, create_topic, delete_config_change, read_config_change, read_topic_assignment,
    read_topic_config, read_topics, read_topics_queued_for_deletion, request_topic_deletion,
    set_topic_config,
};
use tributary_zk_layout::payloads::{EntityConfig, TopicAssignment};
use tributary_zk_layout::{BrokerId, PartitionId, ZkVersion, paths};

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../zk-layout/tests/fixtures/",
            $name
        ))
        .trim()
    };
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).expect("UTF-8 payload")
}

/// The assignment of `topic_v3.json`: p0 [2,3,1], p1 [3,1,2].
fn orders_assignment() -> TopicAssignment {
    let partitions = [(0, [2, 3, 1]), (1, [3, 1, 2])]
        .into_iter()
        .map(|(p, replicas)| (PartitionId(p), replicas.map(BrokerId).to_vec()))
        .collect();
    TopicAssignment::new(partitions, "cMr3GpVESX2L3byPGf93lQ".into())
}

fn config(pairs: &[(&str, &str)]) -> EntityConfig {
    EntityConfig::new(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )
}

#[tokio::test]
async fn create_topic_writes_kafkas_bytes_and_refuses_an_existing_topic() {
    let zookeeper = start_zookeeper();
    let client = connect_ready(&zookeeper, "/tributary").await;
    let overrides = config(&[("retention.ms", "86400000"), ("cleanup.policy", "compact")]);

    create_topic(&client, "orders", &orders_assignment(), &overrides)
        .await
        .expect("create");

    let (assignment, _) = client.get(&paths::topic("orders")).await.expect("get");
    assert_eq!(text(assignment), fixture!("topic_v3.json"));
    let (config_bytes, _) = client
        .get(&paths::topic_config("orders"))
        .await
        .expect("get");
    assert_eq!(text(config_bytes), fixture!("topic_config.json"));

    let again = create_topic(&client, "orders", &orders_assignment(), &overrides).await;
    assert!(
        matches!(&again, Err(AdminZkError::TopicExists { topic }) if topic == "orders"),
        "{again:?}"
    );

    // No overrides: Kafka still writes the config node, with an empty map.
    create_topic(&client, "plain", &orders_assignment(), &config(&[]))
        .await
        .expect("create plain");
    let (config_bytes, _) = client
        .get(&paths::topic_config("plain"))
        .await
        .expect("get");
    assert_eq!(text(config_bytes), r#"{"version":1,"config":{}}"#);

    assert_eq!(
        read_topics(&client).await.expect("read"),
        vec!["orders".to_owned(), "plain".to_owned()]
    );
    let (read, stat) = read_topic_assignment(&client, "orders")
        .await
        .expect("read")
        .expect("present");
    assert_eq!(read, orders_assignment());
    assert_eq!(stat.version, ZkVersion(0));
    assert!(
        read_topic_assignment(&client, "nope")
            .await
            .expect("read")
            .is_none()
    );
    assert_eq!(
        read_topic_config(&client, "orders").await.expect("read"),
        overrides
    );
    assert_eq!(
        read_topic_config(&client, "nope").await.expect("read"),
        config(&[])
    );
    close(client).await;
}

#[tokio::test]
async fn a_leftover_config_without_its_topic_is_overwritten() {
    let zookeeper = start_zookeeper();
    let client = connect_ready(&zookeeper, "/tributary").await;
    client
        .create_persistent(
            &paths::topic_config("ghost"),
            br#"{"version":1,"config":{"retention.ms":"1"}}"#,
        )
        .await
        .expect("leftover");
    create_topic(
        &client,
        "ghost",
        &orders_assignment(),
        &config(&[("segment.ms", "5")]),
    )
    .await
    .expect("create over a leftover config");
    assert_eq!(
        read_topic_config(&client, "ghost").await.expect("read"),
        config(&[("segment.ms", "5")])
    );
    close(client).await;
}

#[tokio::test]
async fn deletion_requests_are_queued_once_and_only_for_existing_topics() {
    let zookeeper = start_zookeeper();
    let client = connect_ready(&zookeeper, "/tributary").await;
    let unknown = request_topic_deletion(&client, "orders").await;
    assert!(
        matches!(&unknown, Err(AdminZkError::UnknownTopic { topic }) if topic == "orders"),
        "{unknown:?}"
    );

    create_topic(&client, "orders", &orders_assignment(), &config(&[]))
        .await
        .expect("create");
    assert!(
        request_topic_deletion(&client, "orders")
            .await
            .expect("queue")
    );
    assert!(
        !request_topic_deletion(&client, "orders")
            .await
            .expect("queued twice is fine")
    );
    let (data, _) = client
        .get(&paths::delete_topic("orders"))
        .await
        .expect("get");
    assert!(data.is_empty(), "Kafka's deletion request has no data");
    assert_eq!(
        read_topics_queued_for_deletion(&client)
            .await
            .expect("read"),
        vec!["orders".to_owned()]
    );
    close(client).await;
}

#[tokio::test]
async fn added_partitions_are_a_conditional_write() {
    let zookeeper = start_zookeeper();
    let client = connect_ready(&zookeeper, "/tributary").await;
    create_topic(&client, "orders", &orders_assignment(), &config(&[]))
        .await
        .expect("create");
    let (mut assignment, stat) = read_topic_assignment(&client, "orders")
        .await
        .expect("read")
        .expect("present");
    assignment
        .partitions
        .insert(PartitionId(2), vec![BrokerId(1), BrokerId(2), BrokerId(3)]);

    let new_stat = add_partitions(&client, "orders", &assignment, stat.version)
        .await
        .expect("extend");
    assert_eq!(new_stat.version, ZkVersion(1));
    let (read, _) = read_topic_assignment(&client, "orders")
        .await
        .expect("read")
        .expect("present");
    assert_eq!(read.partitions.len(), 3);
    assert_eq!(read.topic_id.as_deref(), Some("cMr3GpVESX2L3byPGf93lQ"));

    // A writer holding the old version lost the race.
    let stale = add_partitions(&client, "orders", &assignment, stat.version).await;
    assert!(
        matches!(&stale, Err(AdminZkError::AssignmentChanged { expected, .. }) if *expected == stat.version),
        "{stale:?}"
    );
    assert!(stale.is_err_and(|e| e.is_retriable()));
    let missing = add_partitions(&client, "nope", &assignment, ZkVersion(0)).await;
    assert!(
        matches!(missing, Err(AdminZkError::UnknownTopic { .. })),
        "{missing:?}"
    );
    close(client).await;
}

#[tokio::test]
async fn config_changes_write_the_config_and_a_sequential_notification() {
    let zookeeper = start_zookeeper();
    let client = connect_ready(&zookeeper, "/tributary").await;
    let unknown = set_topic_config(&client, "orders", &config(&[("retention.ms", "1")])).await;
    assert!(
        matches!(unknown, Err(AdminZkError::UnknownTopic { .. })),
        "{unknown:?}"
    );
    // The refused change left nothing behind.
    assert!(
        client
            .children(paths::config_changes())
            .await
            .expect("ls")
            .is_empty()
    );
    assert!(
        client
            .exists(&paths::topic_config("orders"))
            .await
            .expect("stat")
            .is_none()
    );

    create_topic(&client, "orders", &orders_assignment(), &config(&[]))
        .await
        .expect("create");
    let overrides = config(&[("cleanup.policy", "compact"), ("retention.ms", "86400000")]);
    let first = set_topic_config(&client, "orders", &overrides)
        .await
        .expect("change");
    assert!(first.starts_with(paths::config_change_prefix()), "{first}");
    let (notification, _) = client.get(&first).await.expect("get");
    assert_eq!(text(notification), fixture!("config_change.json"));
    let (config_bytes, _) = client
        .get(&paths::topic_config("orders"))
        .await
        .expect("get");
    assert_eq!(text(config_bytes), fixture!("topic_config.json"));

    let second = set_topic_config(&client, "orders", &config(&[]))
        .await
        .expect("change again");
    assert_eq!(
        read_topic_config(&client, "orders").await.expect("read"),
        config(&[])
    );

    let children = client.children(paths::config_changes()).await.expect("ls");
    assert_eq!(children.len(), 2);
    let mut changes = Vec::new();
    for child in &children {
        changes.push(
            read_config_change(&client, child)
                .await
                .expect("read")
                .expect("present"),
        );
    }
    assert!(changes[0].sequence < changes[1].sequence);
    assert_eq!(
        first,
        format!("{}/{}", paths::config_changes(), changes[0].name)
    );
    assert_eq!(
        second,
        format!("{}/{}", paths::config_changes(), changes[1].name)
    );
    assert_eq!(changes[0].topic(), Some("orders"));
    let now = tributary_zk_layout::payloads::now_millis();
    assert!(
        (now - changes[0].ctime_ms).abs() < 60_000,
        "ctime is the server's clock"
    );

    delete_config_change(&client, &changes[0].name)
        .await
        .expect("purge");
    delete_config_change(&client, &changes[0].name)
        .await
        .expect("purging twice is fine");
    assert!(
        read_config_change(&client, &changes[0].name)
            .await
            .expect("read")
            .is_none()
    );
    assert!(
        read_config_change(&client, "not_a_change")
            .await
            .expect("read")
            .is_none()
    );
    close(client).await;
}
