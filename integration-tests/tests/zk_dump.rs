//! What an operator sees with `zkCli.sh` (through `deploy/zk-dump.sh`) reads exactly like
//! classic Kafka: the same paths, and payloads with the same keys, in the same order, with the
//! same JSON types as the fixtures written the way Kafka writes them (`zk-layout/tests/fixtures`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use tributary_integration_tests::{Broker, BrokerConfig, ZooKeeper};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(repo_root().join("zk-layout/tests/fixtures").join(name))
        .expect("fixture")
}

/// The keys of a JSON object in document order, each with the type of its value.
fn shape(json: &str) -> Vec<(String, &'static str)> {
    let value: serde_json::Value =
        serde_json::from_str(json).unwrap_or_else(|e| panic!("not JSON ({e}): {json}"));
    let object = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {json}"));
    // serde_json keeps document order only with preserve_order; read the keys from the text.
    let mut keys: Vec<(usize, String)> = object
        .keys()
        .map(|k| {
            (
                json.find(&format!("\"{k}\":")).expect("key in text"),
                k.clone(),
            )
        })
        .collect();
    keys.sort();
    keys.into_iter()
        .map(|(_, k)| {
            let kind = match &object[&k] {
                serde_json::Value::Null => "null",
                serde_json::Value::Bool(_) => "bool",
                serde_json::Value::Number(_) => "number",
                serde_json::Value::String(_) => "string",
                serde_json::Value::Array(_) => "array",
                serde_json::Value::Object(_) => "object",
            };
            (k, kind)
        })
        .collect()
}

fn dump(server: &str) -> (Vec<String>, BTreeMap<String, String>) {
    let output = std::process::Command::new(repo_root().join("deploy/zk-dump.sh"))
        .arg(server)
        .output()
        .expect("run deploy/zk-dump.sh");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "zk-dump failed: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut paths = Vec::new();
    let mut payloads = BTreeMap::new();
    for line in text.lines() {
        if let Some((path, data)) = line.split_once(" = ") {
            payloads.insert(path.to_owned(), data.to_owned());
        } else if line.starts_with('/') {
            paths.push(line.to_owned());
        }
    }
    (paths, payloads)
}

#[tokio::test]
async fn the_tree_and_payloads_read_like_kafkas_in_zkcli() {
    let zookeeper = ZooKeeper::start().unwrap();
    let connect = format!("{}/kafka", zookeeper.connect_string());
    let _one = Broker::start(BrokerConfig::new(1, connect.clone()))
        .await
        .unwrap();
    let _two = Broker::start(BrokerConfig::new(2, connect.clone()))
        .await
        .unwrap();
    // A topic with a config override, so its assignment, config and partition states exist.
    let mut admin = _one.admin_client().unwrap();
    let created = admin
        .create_topics(tributary_proto::v1::CreateTopicsRequest {
            topics: vec![tributary_proto::v1::NewTopic {
                name: "orders".into(),
                num_partitions: 2,
                replication_factor: 2,
                configs: [("retention.ms".to_string(), "86400000".to_string())].into(),
            }],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.results[0].error_code, 0, "{:?}", created.results[0]);
    // A config change, so a /config/changes notification exists.
    let altered = admin
        .alter_configs(tributary_proto::v1::AlterConfigsRequest {
            topics: vec![tributary_proto::v1::AlterConfigsTopic {
                name: "orders".into(),
                set: [("segment.ms".to_string(), "3600000".to_string())].into(),
                delete: vec![],
            }],
            validate_only: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(altered.results[0].error_code, 0, "{:?}", altered.results[0]);
    // Let the election and the topic's states settle (asynchronous).
    let mut tries = 0;
    let (paths, payloads) = loop {
        let (paths, payloads) = dump(&connect);
        let settled = payloads.contains_key("/controller")
            && payloads.contains_key("/brokers/topics/orders/partitions/1/state");
        if settled || tries == 50 {
            break (paths, payloads);
        }
        tries += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    for path in [
        "/admin/delete_topics",
        "/brokers/ids",
        "/brokers/seqid",
        "/brokers/topics",
        "/cluster/id",
        "/config/brokers",
        "/config/changes",
        "/config/clients",
        "/config/ips",
        "/config/topics",
        "/config/users",
        "/consumers",
        "/controller",
        "/controller_epoch",
        "/isr_change_notification",
        "/latest_producer_id_block",
        "/log_dir_event_notification",
        "/brokers/ids/1",
        "/brokers/ids/2",
        "/brokers/topics/orders",
        "/brokers/topics/orders/partitions/0/state",
        "/config/topics/orders",
    ] {
        assert!(
            paths.iter().any(|p| p == path),
            "{path} missing from {paths:?}"
        );
    }

    assert_eq!(
        shape(&payloads["/controller"]),
        shape(&fixture("controller.json"))
    );
    assert_eq!(
        shape(&payloads["/cluster/id"]),
        shape(&fixture("cluster_id.json"))
    );
    assert_eq!(
        shape(&payloads["/brokers/ids/1"]),
        shape(&fixture("broker_v5.json"))
    );
    assert_eq!(
        shape(&payloads["/brokers/ids/2"]),
        shape(&fixture("broker_v5.json"))
    );
    assert_eq!(
        shape(&payloads["/brokers/topics/orders"]),
        shape(&fixture("topic_v3.json"))
    );
    assert_eq!(
        shape(&payloads["/brokers/topics/orders/partitions/0/state"]),
        shape(&fixture("partition_state.json"))
    );
    assert_eq!(
        shape(&payloads["/config/topics/orders"]),
        shape(&fixture("topic_config.json"))
    );
    let changes: Vec<&String> = payloads
        .keys()
        .filter(|path| path.starts_with("/config/changes/config_change_"))
        .collect();
    assert!(
        !changes.is_empty(),
        "no config change notification in {paths:?}"
    );
    for change in changes {
        assert_eq!(
            shape(&payloads[change]),
            shape(&fixture("config_change.json"))
        );
    }
    assert!(
        payloads["/config/topics/orders"].contains(r#""retention.ms":"86400000""#),
        "{}",
        payloads["/config/topics/orders"]
    );
    let epoch = &payloads["/controller_epoch"];
    assert!(
        epoch.chars().all(|c| c.is_ascii_digit()),
        "plain decimal text like Kafka's: {epoch}"
    );
    assert_eq!(epoch, "1");
}
