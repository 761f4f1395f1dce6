//! Golden fixtures: each file in `tests/fixtures/` is a payload byte for byte as Kafka 2.8
//! writes it (zkCli dumps of real clusters). Decoding gives the expected values; encoding the
//! value of a current-version payload gives the fixture's bytes back.

use std::collections::BTreeMap;
use std::fmt::Debug;

use tributary_zk_layout::payloads::{
    BrokerRegistration, ClusterId, ConfigChangeNotification, ControllerRegistration, EndPoint,
    EntityConfig, IsrChangeNotification, LogDirEventNotification, PartitionReassignment,
    PartitionState, PreferredReplicaElection, ProducerIdBlock, ReassignPartitions, TopicAssignment,
    TopicPartitionRef, decode_controller_epoch, encode_controller_epoch,
};
use tributary_zk_layout::{
    BrokerId, ControllerEpoch, LeaderEpoch, PartitionId, Payload, PayloadError, PayloadKind,
};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|err| panic!("cannot read {path}: {err}"))
}

/// decode(fixture) == expected, encode(expected) == fixture, and decode(encode(x)) == x.
fn assert_golden<T: Payload + PartialEq + Debug>(name: &str, expected: &T) {
    let bytes = fixture(name);
    let decoded = T::decode(&bytes).unwrap_or_else(|err| panic!("{name}: {err:?}"));
    assert_eq!(&decoded, expected, "decoding {name}");
    assert_eq!(
        String::from_utf8_lossy(&expected.encode()),
        String::from_utf8_lossy(&bytes),
        "encoding {name}"
    );
    assert_eq!(
        &T::decode(&expected.encode()).ok().as_ref(),
        &Some(expected),
        "round trip {name}"
    );
}

fn brokers(ids: &[i32]) -> Vec<BrokerId> {
    ids.iter().copied().map(BrokerId).collect()
}

#[test]
fn controller() {
    assert_golden(
        "controller.json",
        &ControllerRegistration::new(BrokerId(2), 1_611_591_513_363),
    );
}

#[test]
fn controller_epoch_is_bare_text() {
    let bytes = fixture("controller_epoch.txt");
    assert_eq!(
        decode_controller_epoch(&bytes).ok(),
        Some(ControllerEpoch(7))
    );
    assert_eq!(encode_controller_epoch(ControllerEpoch(7)), bytes);
}

#[test]
fn broker_registration_v5() {
    let expected = BrokerRegistration::new(
        &[EndPoint::plaintext("192.168.28.128", 9092)],
        None,
        1_610_264_776_275,
    );
    assert_golden("broker_v5.json", &expected);
}

#[test]
fn broker_registration_v4_decodes() {
    let decoded = BrokerRegistration::decode(&fixture("broker_v4.json")).map_err(|e| e.to_string());
    let decoded = decoded.expect("v4 decodes");
    assert_eq!(decoded.version, 4);
    assert!(decoded.features.is_empty());
    assert_eq!(decoded.host.as_deref(), Some("10.0.0.5"));
    assert_eq!(decoded.port, 9092);
    assert_eq!(decoded.timestamp, 1_589_503_263_654);
    assert_eq!(
        decoded.parsed_endpoints(),
        vec![EndPoint::plaintext("10.0.0.5", 9092)]
    );
}

#[test]
fn broker_registration_tolerates_unknown_keys() {
    // Confluent Platform adds "tags"; Kafka 3.x may add more.
    let json = br#"{"features":{},"listener_security_protocol_map":{"BROKER":"PLAINTEXT"},"endpoints":["BROKER://broker1:9091"],"jmx_port":-1,"port":9091,"host":"broker1","version":5,"tags":{},"timestamp":"1673382717473"}"#;
    let decoded = BrokerRegistration::decode(json).map_err(|e| e.to_string());
    assert_eq!(
        decoded.map(|r| r.endpoints),
        Ok(vec!["BROKER://broker1:9091".to_owned()])
    );
}

#[test]
fn topic_assignment_v3() {
    let partitions = BTreeMap::from([
        (PartitionId(0), brokers(&[2, 3, 1])),
        (PartitionId(1), brokers(&[3, 1, 2])),
    ]);
    assert_golden(
        "topic_v3.json",
        &TopicAssignment::new(partitions, "cMr3GpVESX2L3byPGf93lQ".to_owned()),
    );
}

#[test]
fn topic_assignment_v2_and_v1_decode() {
    let v2 = TopicAssignment::decode(&fixture("topic_v2.json")).map_err(|e| e.to_string());
    let v2 = v2.expect("v2 decodes");
    assert_eq!((v2.version, v2.topic_id.as_deref()), (2, None));
    assert_eq!(
        v2.partitions,
        BTreeMap::from([(PartitionId(0), brokers(&[0]))])
    );

    let v1 = TopicAssignment::decode(&fixture("topic_v1.json")).map_err(|e| e.to_string());
    let v1 = v1.expect("v1 decodes");
    assert_eq!(v1.version, 1);
    assert!(v1.adding_replicas.is_empty() && v1.removing_replicas.is_empty());
    assert_eq!(v1.partitions[&PartitionId(1)], brokers(&[2, 3, 1]));
}

#[test]
fn partition_state() {
    let expected = PartitionState::new(
        BrokerId(0),
        LeaderEpoch(0),
        brokers(&[0, 1]),
        ControllerEpoch(12),
    );
    assert_golden("partition_state.json", &expected);
}

#[test]
fn topic_config() {
    let config = BTreeMap::from([
        ("cleanup.policy".to_owned(), "compact".to_owned()),
        ("retention.ms".to_owned(), "86400000".to_owned()),
    ]);
    assert_golden("topic_config.json", &EntityConfig::new(config.clone()));
    // Kafka writes config keys in hash order; any order reads the same.
    let kafka_order =
        br#"{"version":1,"config":{"retention.ms":"86400000","cleanup.policy":"compact"}}"#;
    assert_eq!(
        EntityConfig::decode(kafka_order).ok(),
        Some(EntityConfig::new(config))
    );
}

#[test]
fn config_change_notification() {
    assert_golden(
        "config_change.json",
        &ConfigChangeNotification::for_topic("orders"),
    );
}

#[test]
fn cluster_id_version_is_a_string() {
    assert_golden("cluster_id.json", &ClusterId::new("Vw3v5QnGRWqSg6V1m4QpVg"));
}

#[test]
fn isr_change_notification() {
    let expected = IsrChangeNotification::new(vec![
        TopicPartitionRef::new("orders", PartitionId(0)),
        TopicPartitionRef::new("orders", PartitionId(3)),
    ]);
    assert_golden("isr_change.json", &expected);
}

#[test]
fn preferred_replica_election() {
    let expected =
        PreferredReplicaElection::new(vec![TopicPartitionRef::new("orders", PartitionId(0))]);
    assert_golden("preferred_replica_election.json", &expected);
}

#[test]
fn reassign_partitions() {
    let expected = ReassignPartitions::new(vec![PartitionReassignment {
        topic: "orders".to_owned(),
        partition: PartitionId(0),
        replicas: brokers(&[4, 5, 6]),
    }]);
    assert_golden("reassign_partitions.json", &expected);
}

#[test]
fn log_dir_event_notification() {
    assert_golden(
        "log_dir_event.json",
        &LogDirEventNotification::failure(BrokerId(3)),
    );
}

#[test]
fn producer_id_block() {
    assert_golden(
        "producer_id_block.json",
        &ProducerIdBlock::next(None, BrokerId(0)),
    );
}

#[test]
fn decode_errors_name_the_payload_kind() {
    let cases: Vec<(PayloadError, PayloadKind)> = vec![
        (
            ControllerRegistration::decode(b"not json").expect_err("error"),
            PayloadKind::Controller,
        ),
        (
            PartitionState::decode(br#"{"version":1,"leader":0}"#).expect_err("error"),
            PayloadKind::PartitionState,
        ),
        (
            TopicAssignment::decode(br#"{"version":4,"partitions":{}}"#).expect_err("error"),
            PayloadKind::TopicAssignment,
        ),
    ];
    for (err, kind) in cases {
        let found = match &err {
            PayloadError::Malformed { kind, .. }
            | PayloadError::UnsupportedVersion { kind, .. }
            | PayloadError::NotAnInteger { kind, .. } => *kind,
        };
        assert_eq!(found, kind, "{err}");
        assert!(err.to_string().contains(&kind.to_string()));
    }
}
