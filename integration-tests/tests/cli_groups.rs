//! `tributary groups describe|reset-offsets` against a real broker: the lag an operator reads
//! after a group committed part of a topic, a dry run that changes nothing, and resets that
//! commit clamped offsets. Groups with members, `groups list` and `groups delete` are in
//! `group_admin.rs`.

mod support;

use std::process::Output;

use tributary_client::{Client, GroupOffset, TopicPartition};
use tributary_integration_tests::Broker;

use support::{batch, create_topic, produce_ok, records, start_with};

/// Runs `tributary --bootstrap-server <broker> args...` and returns stdout, asserting success.
fn ok(broker: &Broker, args: &[&str]) -> String {
    let output: Output = broker
        .cli()
        .expect("tributary binary")
        .args(args)
        .output()
        .expect("run tributary");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{args:?}: {:?}\nstdout: {stdout}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

async fn committed(client: &Client, group: &str) -> Vec<Option<i64>> {
    let partitions = [
        TopicPartition::new("lagging", 0),
        TopicPartition::new("lagging", 1),
    ];
    client
        .group(group)
        .unwrap()
        .committed(&partitions)
        .await
        .expect("committed offsets")
        .into_iter()
        .map(|(_, c)| c.map(|c| c.offset))
        .collect()
}

#[tokio::test]
async fn describe_shows_lag_and_reset_offsets_moves_it_only_with_execute() {
    let (_zookeeper, broker) = start_with(&[("offsets.topic.num.partitions", "3")]).await;
    create_topic(&broker, "lagging", 2, &[]).await;
    let mut raw = broker.broker_client().unwrap();
    produce_ok(&mut raw, "lagging", 0, batch(&records("a", 10, 0))).await;
    produce_ok(&mut raw, "lagging", 1, batch(&records("b", 4, 0))).await;
    let client = Client::connect(&broker.bootstrap_server()).await.unwrap();
    let group = client.group("ops").unwrap();
    group
        .commit(&[
            GroupOffset::new("lagging", 0, 3),
            GroupOffset::new("lagging", 1, 4),
        ])
        .await
        .expect("commit");

    let described = ok(&broker, &["groups", "describe", "ops"]);
    assert!(
        described.starts_with("group ops: coordinator broker 1"),
        "{described}"
    );
    let lines: Vec<&str> = described.lines().skip(1).collect();
    assert_eq!(
        lines,
        [
            "state Empty, generation 0, no members",
            "TOPIC    PARTITION  COMMITTED  LOG-END  LAG  CONSUMER-ID",
            "lagging  0          3          10       7    -",
            "lagging  1          4          4        0    -",
            "total lag 7",
        ]
    );

    // A dry run shows the plan and commits nothing.
    let planned = ok(
        &broker,
        &[
            "groups",
            "reset-offsets",
            "ops",
            "--topic",
            "lagging",
            "--to-earliest",
        ],
    );
    assert!(planned.contains("dry run"), "{planned}");
    assert!(
        planned.contains("lagging  0          3          0"),
        "{planned}"
    );
    assert_eq!(committed(&client, "ops").await, [Some(3), Some(4)]);

    // --execute commits; shifts are clamped to the log.
    ok(
        &broker,
        &[
            "groups",
            "reset-offsets",
            "ops",
            "--topic",
            "lagging",
            "--partitions",
            "0",
            "--shift-by",
            "-5",
            "--execute",
        ],
    );
    assert_eq!(committed(&client, "ops").await, [Some(0), Some(4)]);
    ok(
        &broker,
        &[
            "groups",
            "reset-offsets",
            "ops",
            "--topic",
            "lagging",
            "--to-offset",
            "8",
            "--execute",
        ],
    );
    assert_eq!(committed(&client, "ops").await, [Some(8), Some(4)]);
    ok(
        &broker,
        &[
            "groups",
            "reset-offsets",
            "ops",
            "--topic",
            "lagging",
            "--to-latest",
            "--execute",
        ],
    );
    assert_eq!(committed(&client, "ops").await, [Some(10), Some(4)]);
    // A group that committed nothing, and bad arguments.
    assert!(
        ok(&broker, &["groups", "describe", "nobody"])
            .ends_with("state Dead (the coordinator knows no such group)\nno committed offsets\n")
    );
    let bad = broker
        .cli()
        .unwrap()
        .args([
            "groups",
            "reset-offsets",
            "ops",
            "--topic",
            "lagging",
            "--partitions",
            "7",
            "--to-earliest",
        ])
        .output()
        .unwrap();
    assert_eq!(
        bad.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    assert_eq!(committed(&client, "ops").await, [Some(10), Some(4)]);
}
