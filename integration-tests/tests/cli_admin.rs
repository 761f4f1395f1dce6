//! The operator commands of the `tributary` CLI (`topics`, `cluster`, `offsets`, `configs`)
//! against real brokers, read the way an operator reads them: an under-replicated partition
//! after a replica is killed with SIGKILL, the brokers and the controller, and failures that
//! end with one `error:` line and the documented exit status.

mod support;

use std::process::Output;
use std::time::Duration;

use tributary_integration_tests::{Broker, ZooKeeper, cli_binary, free_port};

use support::cluster::{
    LIMIT, agreed_partitions, controller_in_zk, eventually, start_cluster, zk_client,
};
use support::{batch, produce_ok, records, start, t0};

/// Exit statuses from docs/cli.md.
const FAILED: i32 = 1;
const USAGE: i32 = 2;
const UNREACHABLE: i32 = 3;
const UNKNOWN_TOPIC: i32 = 4;

/// Runs `tributary --bootstrap-server <broker> args...`.
fn cli(broker: &Broker, args: &[&str]) -> Output {
    broker
        .cli()
        .expect("tributary binary")
        .args(args)
        .output()
        .expect("run tributary")
}

/// Runs `tributary --bootstrap-server <address> args...`.
fn cli_at(address: &str, args: &[&str]) -> Output {
    std::process::Command::new(cli_binary().expect("tributary binary"))
        .args(["--bootstrap-server", address])
        .args(args)
        .output()
        .expect("run tributary")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts success and returns stdout.
fn ok(what: &str, output: Output) -> String {
    assert!(
        output.status.success(),
        "{what}: {:?}\nstdout: {}\nstderr: {}",
        output.status,
        stdout(&output),
        stderr(&output)
    );
    stdout(&output)
}

/// Asserts the exit status and that stderr is one `error: ` line containing `needle`.
fn fails(what: &str, output: Output, status: i32, needle: &str) {
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(status), "{what}: stderr: {err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{what}: one line on stderr, got {err:?}");
    assert!(
        lines[0].starts_with("error: ") && lines[0].contains(needle),
        "{what}: {err:?} should name {needle:?}"
    );
}

/// The partition rows of `topics describe` output (lines after a `PARTITION` header).
fn partition_rows(describe: &str) -> Vec<Vec<String>> {
    describe
        .lines()
        .filter(|line| line.starts_with("  ") && !line.trim_start().starts_with("PARTITION"))
        .map(|line| line.split_whitespace().map(str::to_owned).collect())
        .collect()
}

#[tokio::test]
async fn describe_marks_under_replicated_partitions_after_a_replica_is_killed() {
    let zookeeper = ZooKeeper::start().unwrap();
    let mut brokers = start_cluster(&zookeeper, &[1, 2, 3]).await;
    let zk = zk_client(&zookeeper).await;

    let created = ok(
        "topics create",
        cli(
            &brokers[0],
            &[
                "topics",
                "create",
                "replicated",
                "--partitions",
                "3",
                "--replication-factor",
                "3",
            ],
        ),
    );
    assert_eq!(
        created,
        "Created topic replicated with 3 partitions and replication factor 3.\n"
    );
    {
        let all: Vec<&Broker> = brokers.iter().collect();
        agreed_partitions(&all, "replicated", 3, |p| p.leader >= 0 && p.isr.len() == 3).await;
    }

    // Healthy: every partition ok, nothing under-replicated.
    let describe = ok(
        "topics describe",
        cli(&brokers[0], &["topics", "describe", "replicated"]),
    );
    let rows = partition_rows(&describe);
    assert_eq!(rows.len(), 3, "{describe}");
    assert!(rows.iter().all(|row| row[6] == "ok"), "{describe}");
    let under = ok(
        "topics describe --under-replicated",
        cli(&brokers[0], &["topics", "describe", "--under-replicated"]),
    );
    assert_eq!(under, "", "no partition is under-replicated yet");

    // `cluster`: every broker with its address and broker epoch (its registration's czxid),
    // the controller and its epoch as ZooKeeper names them.
    let (controller, epoch) = controller_in_zk(&zk).await;
    let cluster = ok("cluster", cli(&brokers[1], &["cluster"]));
    assert!(cluster.contains("Brokers: 3\n"), "{cluster}");
    assert!(
        cluster.contains(&format!("Controller: {controller} (epoch {epoch})\n")),
        "{cluster}"
    );
    for broker in &brokers {
        let row = cluster
            .lines()
            .find(|line| line.split_whitespace().next() == Some(&broker.id().to_string()))
            .unwrap_or_else(|| panic!("broker {} not listed: {cluster}", broker.id()));
        assert!(row.contains(&broker.bootstrap_server()), "{row}");
        let (_, registration) = zk
            .get_data(&format!("/brokers/ids/{}", broker.id()))
            .await
            .expect("registration");
        assert_eq!(
            row.split_whitespace().nth(3),
            Some(registration.czxid.to_string().as_str()),
            "{row}"
        );
        assert_eq!(
            row.contains("controller"),
            broker.id() == controller,
            "{row}"
        );
    }
    assert!(
        cluster.contains("Under-replicated partitions: 0\n"),
        "{cluster}"
    );
    assert_eq!(
        ok(
            "cluster describe",
            cli(&brokers[1], &["cluster", "describe"])
        ),
        cluster
    );

    // Kill broker 3 outright; its replicas drop out of every ISR once its session expires.
    brokers[2].kill9().expect("kill -9 broker 3");
    let describe = eventually("broker 3 out of every ISR", LIMIT, || async {
        let output = cli(&brokers[0], &["topics", "describe", "replicated"]);
        let text = stdout(&output);
        let rows = partition_rows(&text);
        (output.status.success()
            && rows.len() == 3
            && rows.iter().all(|row| row[6] == "under-replicated"))
        .then_some(text)
    })
    .await;
    for row in partition_rows(&describe) {
        // PARTITION LEADER LEADER_EPOCH REPLICAS ISR OFFLINE STATUS
        assert_ne!(row[1], "3", "{describe}");
        assert_eq!(row[3].split(',').count(), 3, "{describe}");
        assert!(!row[4].split(',').any(|id| id == "3"), "{describe}");
        assert_eq!(row[5], "3", "{describe}");
    }
    let under = ok(
        "topics describe --under-replicated",
        cli(
            &brokers[0],
            &["topics", "describe", "--under-replicated-partitions"],
        ),
    );
    assert_eq!(partition_rows(&under).len(), 3, "{under}");
    assert!(under.starts_with("Topic: replicated\t"), "{under}");
    assert_eq!(
        ok(
            "topics describe --unavailable",
            cli(&brokers[0], &["topics", "describe", "--unavailable"]),
        ),
        "",
        "every partition still has a leader"
    );

    let cluster = eventually("cluster without broker 3", LIMIT, || async {
        let text = stdout(&cli(&brokers[0], &["cluster"]));
        text.contains("Brokers: 2\n").then_some(text)
    })
    .await;
    assert!(
        cluster.contains("Under-replicated partitions: 3\n"),
        "{cluster}"
    );
    assert!(cluster.contains("Offline partitions: 0\n"), "{cluster}");
    assert!(
        cluster.contains("Offline brokers with replicas: 3\n"),
        "{cluster}"
    );
    let (controller, epoch) = controller_in_zk(&zk).await;
    assert!(
        cluster.contains(&format!("Controller: {controller} (epoch {epoch})\n")),
        "{cluster}"
    );
}

#[tokio::test]
async fn operator_commands_and_their_failures() {
    let (_zookeeper, broker) = start().await;

    // create: validate only, then for real; list with and without internal topics.
    let validated = ok(
        "topics create --validate-only",
        cli(
            &broker,
            &[
                "topics",
                "create",
                "orders",
                "--partitions",
                "2",
                "--validate-only",
            ],
        ),
    );
    assert_eq!(
        validated,
        "Would create topic orders with 2 partitions and replication factor 1.\n"
    );
    assert_eq!(ok("topics list", cli(&broker, &["topics", "list"])), "");
    ok(
        "topics create",
        cli(
            &broker,
            &[
                "topics",
                "create",
                "orders",
                "--partitions",
                "2",
                "--config",
                "retention.ms=3600000",
            ],
        ),
    );
    ok(
        "topics create internal",
        cli(
            &broker,
            &["topics", "create", "__internal", "--partitions", "1"],
        ),
    );
    assert_eq!(
        ok("topics list", cli(&broker, &["topics", "list"])),
        "__internal\norders\n"
    );
    assert_eq!(
        ok(
            "topics list --exclude-internal",
            cli(&broker, &["topics", "list", "--exclude-internal"]),
        ),
        "orders\n"
    );
    assert_eq!(
        ok(
            "topics create --if-not-exists",
            cli(&broker, &["topics", "create", "orders", "--if-not-exists"]),
        ),
        "Topic orders already exists.\n"
    );

    // alter: the partition count only, like kafka-topics.sh --alter.
    ok(
        "topics alter --validate-only",
        cli(
            &broker,
            &[
                "topics",
                "alter",
                "orders",
                "--partitions",
                "3",
                "--validate-only",
            ],
        ),
    );
    assert_eq!(
        ok(
            "topics alter",
            cli(&broker, &["topics", "alter", "orders", "--partitions", "3"]),
        ),
        "Topic orders now has 3 partitions.\n"
    );
    let describe = ok(
        "topics describe",
        cli(&broker, &["topics", "describe", "orders"]),
    );
    assert!(
        describe.starts_with(
            "Topic: orders\tPartitionCount: 3\tReplicationFactor: 1\tConfigs: retention.ms=3600000\n"
        ),
        "{describe}"
    );

    // offsets: earliest, latest and by timestamp.
    support::wait_online(&broker, "orders", 3).await;
    let mut client = broker.broker_client().unwrap();
    produce_ok(&mut client, "orders", 1, batch(&records("o", 5, 0))).await;
    let table = ok(
        "offsets --timestamp",
        cli(
            &broker,
            &["offsets", "orders", "--timestamp", &(t0() + 3).to_string()],
        ),
    );
    assert_eq!(
        table,
        "PARTITION  EARLIEST  LATEST  AT_TIMESTAMP\n\
         0          0         0       -\n\
         1          0         5       3\n\
         2          0         0       -\n"
    );
    let one = ok(
        "offsets --partition",
        cli(&broker, &["offsets", "orders", "--partition", "1"]),
    );
    assert_eq!(one, "PARTITION  EARLIEST  LATEST\n1          0         5\n");

    // Failures: one line on stderr, the documented status, and quickly (no 30 s retry).
    let started = std::time::Instant::now();
    fails(
        "describe unknown",
        cli(&broker, &["topics", "describe", "nosuch"]),
        UNKNOWN_TOPIC,
        "UNKNOWN_TOPIC_OR_PARTITION",
    );
    fails(
        "delete unknown",
        cli(&broker, &["topics", "delete", "nosuch"]),
        UNKNOWN_TOPIC,
        "deleting topic nosuch",
    );
    ok(
        "delete --if-exists",
        cli(&broker, &["topics", "delete", "nosuch", "--if-exists"]),
    );
    fails(
        "offsets unknown topic",
        cli(&broker, &["offsets", "nosuch"]),
        UNKNOWN_TOPIC,
        "UNKNOWN_TOPIC_OR_PARTITION",
    );
    fails(
        "offsets unknown partition",
        cli(&broker, &["offsets", "orders", "--partition", "9"]),
        UNKNOWN_TOPIC,
        "orders-9",
    );
    fails(
        "configs describe unknown",
        cli(&broker, &["configs", "describe", "--topic", "nosuch"]),
        UNKNOWN_TOPIC,
        "UNKNOWN_TOPIC_OR_PARTITION",
    );
    fails(
        "create existing",
        cli(&broker, &["topics", "create", "orders"]),
        FAILED,
        "TOPIC_ALREADY_EXISTS",
    );
    fails(
        "replication factor above the live brokers",
        cli(
            &broker,
            &["topics", "create", "wide", "--replication-factor", "3"],
        ),
        FAILED,
        "INVALID_REPLICATION_FACTOR",
    );
    fails(
        "shrink",
        cli(&broker, &["topics", "alter", "orders", "--partitions", "2"]),
        FAILED,
        "INVALID_PARTITIONS",
    );
    fails(
        "bad config",
        cli(
            &broker,
            &[
                "configs",
                "alter",
                "--topic",
                "orders",
                "--set",
                "retention.ms=soon",
            ],
        ),
        FAILED,
        "INVALID_CONFIG",
    );
    fails(
        "bad topic name",
        cli(&broker, &["topics", "create", "no spaces"]),
        FAILED,
        "INVALID_TOPIC_EXCEPTION",
    );
    fails(
        "alter --config",
        cli(&broker, &["topics", "alter", "orders", "--config", "a=b"]),
        USAGE,
        "configs alter",
    );
    fails(
        "alter without a change",
        cli(&broker, &["topics", "alter", "orders"]),
        USAGE,
        "--partitions",
    );
    fails(
        "configs alter without a change",
        cli(&broker, &["configs", "alter", "--topic", "orders"]),
        USAGE,
        "nothing to change",
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );

    // clap's usage errors: status 2 (several lines of usage, so only the status is checked).
    for args in [
        &["topics", "create", "t", "--partitions", "0"][..],
        &["offsets", "orders", "--partition", "-1"],
        &["cluster", "explode"],
        &["topics", "describe", "--no-such-flag"],
    ] {
        let output = cli(&broker, args);
        assert_eq!(
            output.status.code(),
            Some(USAGE),
            "{args:?}: {}",
            stderr(&output)
        );
    }

    // Nothing listens on the port: status 3, for every admin command.
    let closed = format!("127.0.0.1:{}", free_port().unwrap());
    for args in [
        &["cluster"][..],
        &["topics", "list"],
        &["topics", "describe"],
        &["offsets", "orders"],
    ] {
        let output = cli_at(&closed, args);
        fails(
            &format!("{args:?} unreachable"),
            output,
            UNREACHABLE,
            &closed,
        );
    }
    let output = cli_at("https://127.0.0.1:1", &["cluster"]);
    fails("TLS address", output, USAGE, "no TLS");
}
