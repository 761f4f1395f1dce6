//! "Any language works": the Python example in `examples/python/` talks to a real broker with
//! nothing but the `.proto` files (stubs generated at run time) and its own record-batch codec,
//! and the broker's reflection service describes the API with its doc comments; a group
//! consumer of under 40 lines reads and commits through `GroupConsumer.ConsumeStream`.
//!
//! Needs Debian's `python3-grpcio`, `protobuf-compiler` and `protobuf-compiler-grpc`
//! (`deploy/install-deps.sh` installs them). A missing Python or gRPC fails the test with that
//! hint; it is never skipped.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tributary_client::Client;
use tributary_proto::v1::MetadataRequest;

/// Overrides the Python interpreter the test runs.
const PYTHON_ENV: &str = "TRIBUTARY_PYTHON";

/// `examples/python/` in this repository.
fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("examples")
        .join("python")
}

/// The first interpreter that can import grpc and protobuf: `$TRIBUTARY_PYTHON`, else Debian's
/// `/usr/bin/python3` (where apt installs python3-grpcio; a pyenv or venv `python3` earlier on
/// PATH may lack it), else `python3` on PATH.
fn python() -> PathBuf {
    let candidates: Vec<PathBuf> = match std::env::var_os(PYTHON_ENV) {
        Some(path) => vec![path.into()],
        None => vec!["/usr/bin/python3".into(), "python3".into()],
    };
    let mut tried = Vec::new();
    for candidate in &candidates {
        let probe = Command::new(candidate)
            .args(["-c", "import grpc, google.protobuf"])
            .output();
        match probe {
            Ok(output) if output.status.success() => return candidate.clone(),
            Ok(output) => tried.push(format!(
                "{}: {}",
                candidate.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            )),
            Err(error) => tried.push(format!("{}: {error}", candidate.display())),
        }
    }
    panic!(
        "no Python 3 with grpcio and protobuf found; run deploy/install-deps.sh (installs \
         python3-grpcio, protobuf-compiler, protobuf-compiler-grpc) or set {PYTHON_ENV}. \
         Tried:\n  {}",
        tried.join("\n  ")
    );
}

/// Runs `script args...` from `examples/python/` and returns its output, whatever the status.
async fn run_python(script: &str, args: &[&str]) -> Output {
    let mut command = Command::new(python());
    command
        .arg(script)
        .args(args)
        .current_dir(example_dir())
        // Keep __pycache__ out of the source tree.
        .env("PYTHONDONTWRITEBYTECODE", "1");
    tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("python runner task")
        .unwrap_or_else(|error| panic!("cannot run python for {script}: {error}"))
}

/// Stdout of a run that must have succeeded; otherwise panics with both streams.
fn success_stdout(script: &str, output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
    stdout
}

#[tokio::test]
async fn the_batch_codec_matches_the_golden_vectors() {
    let output = run_python("tributary_batch.py", &[]).await;
    let stdout = success_stdout("tributary_batch.py", &output);
    assert!(
        stdout.contains("golden vectors hello and headers match byte for byte"),
        "{stdout}"
    );
}

#[tokio::test]
async fn the_python_example_produces_and_consumes_through_the_leader() {
    let (_zookeeper, broker) = support::start().await;
    let bootstrap = broker.bootstrap_server();
    let output = run_python(
        "produce_consume.py",
        &[
            "--bootstrap",
            &bootstrap,
            "--topic",
            "py-orders",
            "--partitions",
            "3",
            "--count",
            "12",
        ],
    )
    .await;
    let stdout = success_stdout("produce_consume.py", &output);
    for expected in [
        "created topic 'py-orders' with 3 partitions",
        "fetched partition 0: ",
        "a batch with one flipped byte is refused: ERROR_CODE_CORRUPT_MESSAGE",
        "the broker's decoding of partition 0 agrees",
        "OK: 12 records produced to 3 partitions of 'py-orders'",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }

    // Independently of the script: the Rust codec reads what Python wrote.
    let mut client = broker.broker_client().expect("broker client");
    let metadata = client
        .metadata(MetadataRequest {
            topics: vec!["py-orders".into()],
        })
        .await
        .expect("Metadata")
        .into_inner();
    assert_eq!(metadata.topics[0].partitions.len(), 3);
    let mut records = Vec::new();
    for partition in 0..3 {
        records.extend(support::read_all(&mut client, "py-orders", partition, 0).await);
    }
    assert_eq!(records.len(), 12, "every record the script produced");
    for record in &records {
        let key = String::from_utf8_lossy(record.key.as_deref().expect("a key"));
        assert!(key.starts_with("customer-"), "{key}");
        let value = record.value.as_deref().expect("a value");
        let json: serde_json::Value = serde_json::from_slice(value).expect("JSON value");
        assert_eq!(json["customer"], key.as_ref());
        let header = &record.headers[0];
        assert_eq!(
            (header.key.as_str(), header.value.as_deref()),
            ("content-type", Some(&b"application/json"[..]))
        );
    }
}

#[tokio::test]
async fn the_python_group_consumer_reads_and_commits_through_a_consume_stream() {
    let (_zookeeper, broker) = support::start().await;
    let bootstrap = broker.bootstrap_server();
    let output = run_python(
        "produce_consume.py",
        &[
            "--bootstrap",
            &bootstrap,
            "--topic",
            "py-group",
            "--count",
            "12",
        ],
    )
    .await;
    success_stdout("produce_consume.py", &output);

    let output = run_python(
        "group_consumer.py",
        &[
            "--bootstrap",
            &bootstrap,
            "--group",
            "py-readers",
            "--topic",
            "py-group",
            "--count",
            "12",
        ],
    )
    .await;
    let stdout = success_stdout("group_consumer.py", &output);
    let lines = std::fs::read_to_string(example_dir().join("group_consumer.py"))
        .expect("the script")
        .lines()
        .count();
    assert!(lines < 40, "the group consumer takes {lines} lines");
    assert!(
        stdout.contains("generation 1: py-group [0, 1, 2]"),
        "{stdout}"
    );
    let mut read: Vec<(i32, i64)> = stdout
        .lines()
        .filter_map(|line| {
            let (partition, offset) = line
                .strip_prefix("py-group-")?
                .split_once(": ")?
                .0
                .split_once('@')?;
            Some((partition.parse().ok()?, offset.parse().ok()?))
        })
        .collect();
    read.sort_unstable();
    assert!(
        stdout.contains("commit: ERROR_CODE_NONE py-group-"),
        "{stdout}"
    );
    assert!(
        stdout.contains("OK: 12 records read and committed as group 'py-readers'"),
        "{stdout}"
    );

    // Independently of the script: every record read once, and the group's committed offsets
    // are each partition's end.
    let mut client = broker.broker_client().expect("broker client");
    let mut expected = Vec::new();
    let mut ends = Vec::new();
    for partition in 0..3 {
        let end = support::latest(&mut client, "py-group", partition).await;
        expected.extend((0..end).map(|offset| (partition, offset)));
        ends.push((partition, Some(end)));
    }
    assert_eq!(read, expected, "every record once:\n{stdout}");
    let client = Client::connect(&bootstrap).await.expect("connect");
    let committed =
        support::client_reads::committed_offsets(&client, "py-readers", "py-group", 3).await;
    assert_eq!(committed, ends);
}

#[tokio::test]
async fn reflection_lists_the_services_and_serves_the_doc_comments() {
    let (_zookeeper, broker) = support::start().await;
    let bootstrap = broker.bootstrap_server();

    let output = run_python("reflect.py", &[&bootstrap]).await;
    let services: Vec<String> = success_stdout("reflect.py", &output)
        .lines()
        .map(str::to_owned)
        .collect();
    for service in [
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "tributary.v1.Admin",
        "tributary.v1.Broker",
    ] {
        assert!(services.iter().any(|s| s == service), "{services:?}");
    }

    let output = run_python("reflect.py", &[&bootstrap, "tributary.v1.Broker"]).await;
    let described = success_stdout("reflect.py", &output);
    assert!(
        described.contains("rpc Produce(ProduceRequest) returns (ProduceResponse);"),
        "{described}"
    );
    assert!(
        described.contains("Send to the partition leader."),
        "the doc comments travel with the descriptors:\n{described}"
    );
}
